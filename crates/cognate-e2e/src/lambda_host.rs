//! `tests/lambda/host.mjs` (a stand-in for Lambda that runs the trigger handlers there, Node
//! and Python) on a free loopback port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct LambdaHost {
    child: Child,
    pub url: String,
}

impl LambdaHost {
    /// Starts the host; Python handlers run with `python` (the clients' venv, or python3).
    pub fn start(python: &std::path::Path) -> LambdaHost {
        LambdaHost::start_with_env(python, &[])
    }

    /// [`LambdaHost::start`] with `env` set for the handlers (as a function's configuration).
    pub fn start_with_env(python: &std::path::Path, env: &[(&str, &str)]) -> LambdaHost {
        let script = crate::repo_root().join("tests/lambda/host.mjs");
        let mut child = Command::new("node")
            .envs(env.iter().copied())
            .arg(&script)
            .arg("0")
            .arg(python)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let stdout = child.stdout.take().expect("host stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("host's first line");
        let port = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("host said {line:?}"));
        LambdaHost { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// The URL of a function as a webhook (`[lambda.functions]`).
    pub fn webhook(&self, name: &str) -> String {
        format!("{}/webhook/{name}", self.url)
    }

    /// The events the host received, in order: `{function, event}`.
    pub async fn calls(&self) -> Vec<Value> {
        let answer = reqwest::get(format!("{}/calls", self.url)).await.expect("GET /calls");
        answer.json().await.expect("calls as JSON")
    }

    /// The events `function` received.
    pub async fn events_of(&self, function: &str) -> Vec<Value> {
        self.calls().await.into_iter().filter(|c| c["function"] == function).map(|c| c["event"].clone()).collect()
    }

    /// The calls of `function` once `count` of them have finished (queued events run after
    /// the host has answered): `{function, event, result}` or `{function, event, error}`.
    /// Panics after 30 seconds.
    pub async fn finished_calls(&self, function: &str, count: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let calls: Vec<Value> = self.calls().await.into_iter().filter(|c| c["function"] == function).collect();
            let done = calls.iter().filter(|c| c.get("result").is_some() || c.get("error").is_some()).count();
            if done >= count {
                return calls;
            }
            assert!(std::time::Instant::now() < deadline, "{function} finished {done} of {count} calls: {calls:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test per name in `mod sqlite` and in `mod postgres`, each starting a [`LambdaHost`] (its
/// Python handlers run by `python3`) and a server that runs functions there
/// (`--lambda-endpoint`), then calling `super::NAME(&server, &host)`.
#[macro_export]
macro_rules! with_lambda_on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let host = $crate::lambda_host::LambdaHost::start(std::path::Path::new("python3"));
                    let server = $crate::Server::sqlite_with(&["--lambda-endpoint", &host.url]).await;
                    super::$name(&server, &host).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let host = $crate::lambda_host::LambdaHost::start(std::path::Path::new("python3"));
                    let Some(server) = $crate::Server::postgres_with(&["--lambda-endpoint", &host.url]).await else {
                        return;
                    };
                    super::$name(&server, &host).await;
                }
            )+
        }
    };
}

/// A trigger function's ARN in the default account and region.
pub fn arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")
}

/// A pool with `config` (and whatever `more` sets) and an app client allowing the password
/// flows (admin and public) and refreshes; returns (pool, client).
pub async fn pool_with_triggers(
    server: &crate::Server,
    config: crate::idp::types::LambdaConfigType,
    more: impl FnOnce(crate::CreatePool) -> crate::CreatePool,
) -> (String, String) {
    use crate::idp::types::ExplicitAuthFlowsType as Flow;
    let pool = server.new_pool(|p| more(p.lambda_config(config))).await;
    let client = crate::ok(
        server
            .idp()
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name(crate::unique_name("app"))
            .explicit_auth_flows(Flow::AllowAdminUserPasswordAuth)
            .explicit_auth_flows(Flow::AllowUserPasswordAuth)
            .explicit_auth_flows(Flow::AllowRefreshTokenAuth)
            .send()
            .await,
    )
    .user_pool_client
    .and_then(|c| c.client_id)
    .expect("client id");
    (pool, client)
}
