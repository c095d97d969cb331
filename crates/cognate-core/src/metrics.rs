//! Prometheus metrics at `GET /metrics`: requests by operation and outcome, latency
//! histograms by operation, and sign-in outcomes. Counters are per node (Prometheus sums
//! nodes); nothing here is state another node needs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        self.count += 1;
        self.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
    }

    /// The histogram's lines for metric `name` with `labels`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (service, operation, outcome code or "ok") -> count
    requests: BTreeMap<(String, String, String), u64>,
    /// (service, operation) -> latency
    latency: BTreeMap<(String, String), Histogram>,
    /// outcome -> count
    sign_ins: BTreeMap<String, u64>,
    /// Import rows this node processed: (imported, failed).
    import_rows: (u64, u64),
    /// Import jobs this node is running now.
    imports_running: u64,
    /// Final status -> import jobs this node finished.
    imports_finished: BTreeMap<String, u64>,
    /// (trigger, outcome) -> Lambda trigger invocations
    lambda_calls: BTreeMap<(String, String), u64>,
    /// trigger -> time of its invocations
    lambda_latency: BTreeMap<String, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn observe(&self, service: &str, op: &str, outcome: &str, took: Duration) {
        let Ok(mut inner) = self.inner.lock() else { return };
        *inner.requests.entry((service.to_owned(), op.to_owned(), outcome.to_owned())).or_default() += 1;
        inner.latency.entry((service.to_owned(), op.to_owned())).or_default().observe(took);
        if matches!(op, "InitiateAuth" | "AdminInitiateAuth" | "RespondToAuthChallenge" | "AdminRespondToAuthChallenge")
        {
            *inner.sign_ins.entry(outcome.to_owned()).or_default() += 1;
        }
    }

    /// A Lambda trigger invocation and how it ended (ok, function_error, unreachable,
    /// invalid_response).
    pub fn lambda(&self, trigger: &str, outcome: &str, took: Duration) {
        let Ok(mut inner) = self.inner.lock() else { return };
        *inner.lambda_calls.entry((trigger.to_owned(), outcome.to_owned())).or_default() += 1;
        inner.lambda_latency.entry(trigger.to_owned()).or_default().observe(took);
    }

    /// Rows of an import batch this node committed.
    pub fn import_rows(&self, imported: u64, failed: u64) {
        let Ok(mut inner) = self.inner.lock() else { return };
        inner.import_rows.0 += imported;
        inner.import_rows.1 += failed;
    }

    /// Counts an import job as running on this node until the returned guard is dropped.
    pub fn import_running(self: &std::sync::Arc<Self>) -> ImportRunning {
        if let Ok(mut inner) = self.inner.lock() {
            inner.imports_running += 1;
        }
        ImportRunning(std::sync::Arc::clone(self))
    }

    pub fn import_finished(&self, status: &str) {
        let Ok(mut inner) = self.inner.lock() else { return };
        *inner.imports_finished.entry(status.to_owned()).or_default() += 1;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let Ok(inner) = self.inner.lock() else { return String::new() };
        let mut out = String::new();
        out.push_str("# HELP cognate_requests_total API requests by operation and outcome (ok or the error code).\n");
        out.push_str("# TYPE cognate_requests_total counter\n");
        for ((service, op, outcome), n) in &inner.requests {
            let _ = writeln!(
                out,
                "cognate_requests_total{{service=\"{service}\",operation=\"{op}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP cognate_request_duration_seconds Server time per API request.\n");
        out.push_str("# TYPE cognate_request_duration_seconds histogram\n");
        for ((service, op), h) in &inner.latency {
            h.render(
                &mut out,
                "cognate_request_duration_seconds",
                &format!("service=\"{service}\",operation=\"{op}\""),
            );
        }
        out.push_str("# HELP cognate_sign_in_steps_total Sign-in calls by outcome (ok, or the error code).\n");
        out.push_str("# TYPE cognate_sign_in_steps_total counter\n");
        for (outcome, n) in &inner.sign_ins {
            let _ = writeln!(out, "cognate_sign_in_steps_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP cognate_import_rows_total User import rows this node processed, by outcome.\n");
        out.push_str("# TYPE cognate_import_rows_total counter\n");
        let _ = writeln!(out, "cognate_import_rows_total{{outcome=\"imported\"}} {}", inner.import_rows.0);
        let _ = writeln!(out, "cognate_import_rows_total{{outcome=\"failed\"}} {}", inner.import_rows.1);
        out.push_str("# HELP cognate_import_jobs_running User import jobs running on this node.\n");
        out.push_str("# TYPE cognate_import_jobs_running gauge\n");
        let _ = writeln!(out, "cognate_import_jobs_running {}", inner.imports_running);
        out.push_str("# HELP cognate_import_jobs_finished_total User import jobs this node finished, by status.\n");
        out.push_str("# TYPE cognate_import_jobs_finished_total counter\n");
        for (status, n) in &inner.imports_finished {
            let _ = writeln!(out, "cognate_import_jobs_finished_total{{status=\"{status}\"}} {n}");
        }
        if inner.lambda_calls.is_empty() {
            // No trigger has run on this node: no families to show (a histogram without
            // series would have no buckets).
            return out;
        }
        out.push_str("# HELP cognate_lambda_invocations_total Lambda trigger invocations by trigger and outcome.\n");
        out.push_str("# TYPE cognate_lambda_invocations_total counter\n");
        for ((trigger, outcome), n) in &inner.lambda_calls {
            let _ =
                writeln!(out, "cognate_lambda_invocations_total{{trigger=\"{trigger}\",outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP cognate_lambda_duration_seconds Time of Lambda trigger invocations, retries included.\n");
        out.push_str("# TYPE cognate_lambda_duration_seconds histogram\n");
        for (trigger, h) in &inner.lambda_latency {
            h.render(&mut out, "cognate_lambda_duration_seconds", &format!("trigger=\"{trigger}\""));
        }
        out
    }
}

/// An import job running on this node (see [`Metrics::import_running`]).
pub struct ImportRunning(std::sync::Arc<Metrics>);

impl Drop for ImportRunning {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.0.inner.lock() {
            inner.imports_running = inner.imports_running.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("cognito-idp", "InitiateAuth", "ok", Duration::from_micros(700));
        m.observe("cognito-idp", "InitiateAuth", "NotAuthorizedException", Duration::from_millis(20));
        let text = m.render();
        assert!(text
            .contains("cognate_requests_total{service=\"cognito-idp\",operation=\"InitiateAuth\",outcome=\"ok\"} 1"));
        assert!(text.contains("le=\"0.001\"} 1"), "{text}");
        assert!(text.contains("le=\"0.025\"} 2"), "{text}");
        assert!(text.contains("cognate_sign_in_steps_total{outcome=\"NotAuthorizedException\"} 1"));
    }

    #[test]
    fn import_progress() {
        let m = std::sync::Arc::new(Metrics::default());
        let running = m.import_running();
        m.import_rows(100, 2);
        m.import_rows(50, 0);
        assert!(m.render().contains("cognate_import_jobs_running 1\n"));
        drop(running);
        m.import_finished("Succeeded");
        let text = m.render();
        assert!(text.contains("cognate_import_rows_total{outcome=\"imported\"} 150\n"), "{text}");
        assert!(text.contains("cognate_import_rows_total{outcome=\"failed\"} 2\n"), "{text}");
        assert!(text.contains("cognate_import_jobs_running 0\n"), "{text}");
        assert!(text.contains("cognate_import_jobs_finished_total{status=\"Succeeded\"} 1\n"), "{text}");
    }
}
