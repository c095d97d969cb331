//! Rate limits per Cognito quota category: off by default, enforced with
//! TooManyRequestsException ("Rate exceeded") when configured, shared by nodes on one
//! PostgreSQL database.

use cognate_e2e::{Server, Signing, IDP_PREFIX};

fn config_file(dir: &std::path::Path, per_second: u64) -> String {
    let path = dir.join("cognate.toml");
    std::fs::write(
        &path,
        format!("[rate_limits]\nenabled = true\n[rate_limits.per_second]\nUserPoolRead = {per_second}\n"),
    )
    .expect("write config");
    path.to_string_lossy().into_owned()
}

/// Sends `n` ListUserPools as fast as possible (across `servers`) and counts the throttled ones.
async fn burst(servers: &[&Server], n: usize) -> (usize, usize) {
    let target = format!("{IDP_PREFIX}.ListUserPools");
    let (mut ok, mut throttled) = (0, 0);
    for i in 0..n {
        let resp = servers[i % servers.len()].raw().call(&target, r#"{"MaxResults": 10}"#, Signing::Valid).await;
        if resp.status == 200 {
            ok += 1;
        } else {
            assert_eq!(resp.status, 400, "{}", resp.body);
            assert_eq!(resp.error_type(), "TooManyRequestsException", "{}", resp.body);
            assert!(resp.body.contains("Rate exceeded"), "{}", resp.body);
            throttled += 1;
        }
    }
    (ok, throttled)
}

#[tokio::test]
async fn limits_are_off_by_default() {
    let server = Server::sqlite().await;
    let (ok, throttled) = burst(&[&server], 40).await;
    assert_eq!((ok, throttled), (40, 0));
}

#[tokio::test]
async fn a_configured_category_limit_throttles_with_rate_exceeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), 3);
    let server = Server::sqlite_with(&["--config", &config]).await;
    let (ok, throttled) = burst(&[&server], 30).await;
    // 30 calls take well under the 10 s it would need to stay under 3 per second.
    assert!(throttled > 0, "no call was throttled ({ok} ok)");
    assert!(ok >= 3, "at least the first window's allowance passes ({ok} ok)");
    // Other categories are not affected.
    let resp = server.raw().call(&format!("{IDP_PREFIX}.CreateUserPool"), r#"{"PoolName": "p"}"#, Signing::Valid).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[tokio::test]
async fn nodes_on_one_postgres_database_share_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path(), 4);
    let Some(a) = Server::postgres_with(&["--config", &config]).await else { return };
    let b = a.sibling_with(&["--config", &config]).await;
    let started = std::time::Instant::now();
    let (ok, _) = burst(&[&a, &b], 40).await;
    let seconds = started.elapsed().as_secs() + 1;
    // Together the two nodes allow at most 4 per one-second window.
    assert!(ok as u64 <= 4 * (seconds + 1), "{ok} calls passed in about {seconds} s");
}
