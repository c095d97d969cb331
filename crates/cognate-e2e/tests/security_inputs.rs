//! Hostile input to the import upload URL and to model validation (issue 9, items 15
//! and 16).
//!
//! The pre-signed import URL: an unknown job and a wrong token get the same 403 (no oracle
//! for which jobs exist), the URL expires 15 minutes after CreateUserImportJob and takes one
//! upload, the job id and token are checked before the body is read (a 90 MiB PUT to a
//! job that does not exist is answered before a byte of it is sent, and several of them
//! leave the server's memory alone), and at most two uploads are read at once (S3's 503
//! SlowDown for a third). `curl -T` keeps working, also for a file large enough that curl
//! waits for `100 Continue`.
//!
//! Validation errors never echo a sensitive member's value (a 200 KB password inside the
//! sensitive AuthParameters map), and every error message and `x-amzn-ErrorMessage` header
//! is bounded.

use std::process::Command;
use std::time::Duration;

use cognate_e2e::idp::types::UserImportJobType;
use cognate_e2e::{both_stores, ok, pg_execute, random_hex, unique_name, RawResponse, Server, StoreConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

both_stores!(
    unknown_job_and_wrong_token_get_the_same_403,
    upload_url_is_single_use_and_curl_still_works,
    upload_url_expires_after_15_minutes,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const LOGS_ROLE: &str = "arn:aws:iam::000000000000:role/CognitoImportLogs";
/// The lifetime of an upload URL (Cognito's S3 URLs: 15 minutes).
const URL_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// 90 MiB: what an attacker PUTs to make the server hold memory.
const BIG: usize = 90 * 1024 * 1024;

async fn create_job(server: &Server, pool: &str) -> UserImportJobType {
    ok(server
        .idp()
        .create_user_import_job()
        .user_pool_id(pool)
        .job_name(unique_name("job"))
        .cloud_watch_logs_role_arn(LOGS_ROLE)
        .send()
        .await)
    .user_import_job
    .expect("CreateUserImportJob returned no UserImportJob")
}

fn url_of(job: &UserImportJobType) -> String {
    job.pre_signed_url().unwrap_or_else(|| panic!("the job has no PreSignedUrl: {job:?}")).to_string()
}

fn id_of(job: &UserImportJobType) -> String {
    job.job_id().expect("JobId").to_string()
}

/// `/_cognate/import/<job>?token=<token>` of a pre-signed URL.
fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| panic!("no path in {url}"))
}

fn token_of(url: &str) -> String {
    url.split_once("token=").map(|(_, t)| t.to_string()).unwrap_or_else(|| panic!("no token in {url}"))
}

/// A CSV importing `username` (the standard header of a pool without custom attributes).
async fn csv_for(server: &Server, pool: &str, username: &str) -> String {
    let header = ok(server.idp().get_csv_header().user_pool_id(pool).send().await).csv_header().to_vec();
    let row: Vec<&str> = header
        .iter()
        .map(|h| match h.as_str() {
            "cognito:username" => username,
            "email" => "someone@example.com",
            "cognito:mfa_enabled" => "false",
            _ => "",
        })
        .collect();
    format!("{}\r\n{}\r\n", header.join(","), row.join(","))
}

/// A plain PUT: the status and the response body.
async fn put(server: &Server, url: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let resp = server.raw().http.put(url).body(body).send().await.expect("send PUT");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("read PUT body"))
}

/// `curl -T file URL`: the status and the response body.
fn curl_upload(path: &std::path::Path, url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}", "-T"])
        .arg(path)
        .arg(url)
        .output()
        .expect("run curl (is it installed?)");
    assert!(out.status.success(), "curl failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (code.trim().parse().unwrap_or_else(|_| panic!("curl printed no status code: {text:?}")), body.to_string())
}

#[track_caller]
fn assert_s3_error(status: u16, body: &str, want_status: u16, code: &str, message: &str) {
    assert_eq!(status, want_status, "expected {want_status} {code}, got {status}: {body:?}");
    assert!(body.contains(&format!("<Code>{code}</Code>")), "not S3's {code}: {body:?}");
    assert!(body.contains(&format!("<Message>{message}</Message>")), "not S3's message {message:?}: {body:?}");
}

/// Opens a connection and sends only the head of a PUT declaring `length` body bytes
/// (optionally with `Expect: 100-continue`). Returns the stream and the first response
/// head the server sends, or panics if none comes within 10 s (a server that waits for
/// the body never answers).
async fn put_head(server: &Server, path: &str, length: usize, expect: bool) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).await.expect("connect");
    let expect = if expect { "Expect: 100-continue\r\n" } else { "" };
    let head =
        format!("PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {length}\r\n{expect}\r\n", server.port());
    stream.write_all(head.as_bytes()).await.expect("send the request head");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s to a PUT whose body was not sent: the server waits for the body");
    (stream, String::from_utf8_lossy(&got).into_owned())
}

/// The pid of the server listening on `port` (its command line names the port).
fn server_pid(port: u16) -> u32 {
    let listen = format!("127.0.0.1:{port}");
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&b"serve".as_slice()) && args.contains(&listen.as_bytes()) {
            return pid;
        }
    }
    panic!("no cognate process listens on {listen}");
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// Moves the job's creation `ms` milliseconds into the past, straight in the store, so the
/// URL's lifetime is tested without waiting 15 minutes.
async fn age_job(server: &Server, job_id: &str, ms: i64) {
    match server.store() {
        StoreConfig::Sqlite => {
            let db = server.serve_data_dir().join("cognate.db");
            let script = "import sqlite3, sys\n\
                          c = sqlite3.connect(sys.argv[1], timeout=10)\n\
                          n = c.execute('UPDATE import_jobs SET created_ms = created_ms - ? WHERE job_id = ?', \
                          (int(sys.argv[3]), sys.argv[2])).rowcount\n\
                          c.commit()\n\
                          sys.exit(0 if n == 1 else 3)\n";
            let out = Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&db)
                .arg(job_id)
                .arg(ms.to_string())
                .output()
                .expect("run python3");
            assert!(out.status.success(), "aging the job failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        StoreConfig::Postgres { schema, .. } => {
            let (url, name) = (schema.url.clone(), schema.name.clone());
            let sql =
                format!("UPDATE \"{name}\".import_jobs SET created_ms = created_ms - {ms} WHERE job_id = '{job_id}'");
            let res = std::thread::spawn(move || pg_execute(&url, &sql)).join().expect("pg thread");
            res.expect("age the job in PostgreSQL");
        }
    }
}

// ---------------------------------------------------------------------------
// The upload URL: no oracle, one use, a lifetime
// ---------------------------------------------------------------------------

async fn unknown_job_and_wrong_token_get_the_same_403(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let job = create_job(server, &pool).await;
    let (url, job_id) = (url_of(&job), id_of(&job));
    let token = token_of(&url);
    let csv = csv_for(server, &pool, "nobody").await;

    let (base, _) = url.split_once('?').expect("a query string");
    let unknown_job = url.replace(&job_id, "import-doesnotexist");
    let wrong_token = format!("{base}?token={}", random_hex(token.len() / 2));
    let (status, unknown_body) = put(server, &unknown_job, csv.clone()).await;
    assert_s3_error(status, &unknown_body, 403, "AccessDenied", "Access Denied");
    let (status, wrong_body) = put(server, &wrong_token, csv.clone()).await;
    assert_s3_error(status, &wrong_body, 403, "AccessDenied", "Access Denied");
    assert_eq!(unknown_body, wrong_body, "an unknown job and a wrong token are told apart");
    // A malformed query string, no token, and a job id no job can have: the same answer.
    for other in [format!("{base}?token=%ZZ&token=x"), base.to_string(), url.replace(&job_id, &"x".repeat(300))] {
        let (status, body) = put(server, &other, csv.clone()).await;
        assert_eq!((status, body.as_str()), (403, wrong_body.as_str()), "PUT {other}");
    }

    // Neither is read before it is refused: a 90 MiB PUT is answered before its body is
    // sent, and a client waiting for `100 Continue` is never told to send it.
    let unknown_path = path_of(&unknown_job);
    for (what, path) in [("an unknown job", unknown_path.as_str()), ("a wrong token", &path_of(&wrong_token))] {
        for expect in [false, true] {
            let (_stream, head) = put_head(server, path, BIG, expect).await;
            assert!(head.starts_with("HTTP/1.1 403"), "a 90 MiB PUT to {what} (expect {expect}) got: {head:?}");
        }
    }
    // Nor does sending it cost the server memory: six parallel 90 MiB PUTs to jobs that do
    // not exist (before the fix: about 90 MiB of resident memory each).
    let pid = server_pid(server.port());
    let before = peak_rss_kib(pid);
    // One buffer for all six (a `&'static` body is sent without copying it).
    static PAYLOAD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let payload: &'static [u8] = PAYLOAD.get_or_init(|| vec![b'a'; BIG]);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let http = server.raw().http.clone();
        let target = unknown_job.replace("import-doesnotexist", &format!("import-nothing{i}"));
        tasks.push(tokio::spawn(async move {
            // The server may close the connection before the body is through: not an error here.
            let _ = http.put(&target).body(payload).send().await;
        }));
    }
    for task in tasks {
        task.await.expect("PUT task");
    }
    let after = peak_rss_kib(pid);
    assert!(
        after < before + 100 * 1024,
        "six refused 90 MiB PUTs raised the server's peak memory from {before} KiB to {after} KiB"
    );

    // The job is untouched, and the right token still works.
    assert_eq!(put(server, &url, csv).await.0, 200);
}

async fn upload_url_is_single_use_and_curl_still_works(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let job = create_job(server, &pool).await;
    let (url, job_id) = (url_of(&job), id_of(&job));

    // The README's `curl -T users.csv "$URL"`, with a file over 1 MiB so that curl sends
    // `Expect: 100-continue` and waits for it (blank lines are skipped by the import).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("users.csv");
    let csv = csv_for(server, &pool, "first-upload").await + &"\r\n".repeat(800_000);
    std::fs::write(&path, &csv).expect("write the CSV");
    let (status, body) = curl_upload(&path, &url);
    assert_eq!(status, 200, "curl -T to the PreSignedUrl answered {status}: {body:?}");

    // A second upload with the right token is refused, with curl and a plain PUT alike.
    let (status, body) = curl_upload(&path, &url);
    assert_s3_error(status, &body, 403, "AccessDenied", "This pre-signed URL has already been used.");
    let (status, body) = put(server, &url, csv_for(server, &pool, "second-upload").await).await;
    assert_eq!(status, 403, "a second PUT answered {status}: {body:?}");

    // The first upload is what the job imports.
    ok(server.idp().start_user_import_job().user_pool_id(&pool).job_id(&job_id).send().await);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let described = ok(server.idp().describe_user_import_job().user_pool_id(&pool).job_id(&job_id).send().await);
        let status = described.user_import_job().and_then(|j| j.status()).map(|s| s.as_str().to_string());
        if status.as_deref() == Some("Succeeded") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the job did not succeed: {described:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.usernames(&pool).await, ["first-upload"]);
}

async fn upload_url_expires_after_15_minutes(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let csv = csv_for(server, &pool, "late").await;

    // 14 minutes after CreateUserImportJob the URL still works...
    let job = create_job(server, &pool).await;
    age_job(server, &id_of(&job), URL_LIFETIME_MS - 60_000).await;
    let (status, body) = put(server, &url_of(&job), csv.clone()).await;
    assert_eq!(status, 200, "a 14-minute-old URL answered {status}: {body:?}");

    // ...15 minutes after, it has expired (as S3 says it), and stores nothing.
    let job = create_job(server, &pool).await;
    age_job(server, &id_of(&job), URL_LIFETIME_MS + 1000).await;
    let (status, body) = put(server, &url_of(&job), csv.clone()).await;
    assert_s3_error(status, &body, 403, "AccessDenied", "Request has expired");
    let res = server.idp().start_user_import_job().user_pool_id(&pool).job_id(id_of(&job)).send().await;
    assert!(res.is_err(), "a job whose upload expired started: {res:?}");
    // An expired URL with a wrong token says only Access Denied.
    let wrong = format!("{}?token={}", url_of(&job).split_once('?').expect("query").0, random_hex(24));
    let (status, body) = put(server, &wrong, csv).await;
    assert_s3_error(status, &body, 403, "AccessDenied", "Access Denied");
}

// ---------------------------------------------------------------------------
// At most two uploads are read at once
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_concurrent_upload_is_told_to_slow_down() {
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(url_of(&create_job(&server, &pool).await));
    }
    // Two uploads that have been told to send their body (`100 Continue`: each holds a
    // slot) and then send nothing more.
    let mut held = Vec::new();
    for url in &jobs[..2] {
        let (stream, head) = put_head(&server, &path_of(url), 1000, true).await;
        assert!(head.starts_with("HTTP/1.1 100"), "an authorized upload was not told to continue: {head:?}");
        held.push(stream);
    }
    let csv = csv_for(&server, &pool, "third").await;
    let (status, body) = put(&server, &jobs[2], csv.clone()).await;
    assert_s3_error(status, &body, 503, "SlowDown", "Please reduce your request rate.");

    // Once they hang up, the third goes through; and an upload that never completed did
    // not use up its URL.
    drop(held);
    let (status, body) = put(&server, &jobs[2], csv.clone()).await;
    assert_eq!(status, 200, "after the slots were freed the upload answered {status}: {body:?}");
    let (status, body) = put(&server, &jobs[0], csv).await;
    assert_eq!(status, 200, "the URL of an aborted upload answered {status}: {body:?}");
}

// ---------------------------------------------------------------------------
// Validation errors: no sensitive value, bounded messages
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_bounded(resp: &RawResponse, secret: &str) -> String {
    let header = resp.header("x-amzn-errormessage").expect("an x-amzn-ErrorMessage header");
    assert!(header.len() <= 1024, "x-amzn-ErrorMessage is {} bytes", header.len());
    assert!(resp.body.len() <= 8192, "the error body is {} bytes", resp.body.len());
    assert!(!header.contains(secret), "the header echoes the secret: {}", &header[..200.min(header.len())]);
    assert!(!resp.body.contains(secret), "the body echoes the secret: {}", &resp.body[..200.min(resp.body.len())]);
    resp.error_message()
}

#[tokio::test]
async fn validation_errors_hide_sensitive_values_and_are_capped() {
    let server = Server::sqlite().await;
    let raw = server.raw();

    // A 200 KB password (over StringType's 131072) inside the sensitive AuthParameters map.
    let secret = format!("S3cretValue{}", "x".repeat(200_000));
    let body = json!({
        "ClientId": "aaaaaaaaaa",
        "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": "someone", "PASSWORD": secret},
    });
    let resp = raw.idp_unsigned("InitiateAuth", body).await;
    let message = resp.assert_error("InvalidParameterException");
    assert_eq!(
        message,
        "1 validation error detected: Value at 'authParameters' failed to satisfy constraint: \
         Member must have length less than or equal to 131072"
    );
    assert_bounded(&resp, "S3cretValue");

    // The same inside ChallengeResponses.
    let body = json!({
        "ClientId": "aaaaaaaaaa",
        "ChallengeName": "NEW_PASSWORD_REQUIRED",
        "ChallengeResponses": {"NEW_PASSWORD": secret},
    });
    let resp = raw.idp_unsigned("RespondToAuthChallenge", body).await;
    let message = resp.assert_error("InvalidParameterException");
    assert!(message.contains("Value at 'challengeResponses' failed to satisfy constraint"), "{message}");
    assert_bounded(&resp, "S3cretValue");

    // A value that is not sensitive is echoed in AWS's words, truncated.
    let long = format!("{}_{}", "p".repeat(30_000), "q".repeat(30_000));
    let resp = raw.idp("DescribeUserPool", json!({"UserPoolId": long})).await;
    let message = resp.assert_error("InvalidParameterException");
    assert!(
        message.starts_with(&format!("1 validation error detected: Value '{}...' at 'userPoolId'", "p".repeat(256)))
    );
    assert!(message.ends_with("Member must have length less than or equal to 55"), "{message}");
    assert_bounded(&resp, &"p".repeat(300));

    // Any message is bounded, even one naming an unknown operation the client made up.
    let target = format!("AWSCognitoIdentityProviderService.{}", "Z".repeat(20_000));
    let resp = raw.post(&raw.base_headers(&target), b"{}".to_vec()).await;
    assert_eq!(resp.status, 400, "{}", &resp.body[..200.min(resp.body.len())]);
    assert_bounded(&resp, &"Z".repeat(5000));
}
