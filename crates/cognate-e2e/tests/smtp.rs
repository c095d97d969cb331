//! Email delivery through a real SMTP server: Python's `aiosmtpd` (from PyPI,
//! installed into `crates/cognate-e2e/.venv` on first use) runs
//! `support/smtp_sink.py` on a free loopback port and saves every message it
//! receives; cognate is started with `--smtp-host/--smtp-port/--smtp-security
//! none/--smtp-from`. The email a SignUp sends must carry the same code as the
//! outbox, and that code must confirm the user.
//!
//! Without Python or PyPI the test is skipped loudly; with `CI` set it fails.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cognate_e2e::clients::{in_ci, run_install};
use cognate_e2e::idp::types::{DeliveryMediumType, VerifiedAttributeType};
use cognate_e2e::{attr, attr_of, free_port, ok, Server, PASSWORD};

const AIOSMTPD: &str = "aiosmtpd==1.4.6";
const FROM: &str = "cognate@example.com";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fail in CI, skip loudly elsewhere.
fn unavailable(reason: &str) {
    if in_ci() {
        panic!("the SMTP test needs {AIOSMTPD} in crates/cognate-e2e/.venv and CI is set: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "\n!!! SKIPPING the SMTP test: {reason}. With CI set this fails. !!!\n");
}

/// The venv's python with aiosmtpd importable, creating the venv and
/// installing aiosmtpd when needed.
fn python_with_aiosmtpd() -> Result<PathBuf, String> {
    let venv = crate_dir().join(".venv");
    let python = venv.join("bin/python");
    let has_it = |p: &Path| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_it(&python) {
        return Ok(python);
    }
    if !python.exists() {
        run_install(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run_install(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        AIOSMTPD,
    ]))?;
    if has_it(&python) {
        Ok(python)
    } else {
        Err(format!("{AIOSMTPD} was installed but cannot be imported"))
    }
}

/// The running SMTP sink; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    fn start(python: &Path) -> SmtpSink {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("cognate-smtp-").tempdir().expect("temp dir");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("sink.log")).expect("sink log");
            let mut child = Command::new(python)
                .arg(crate_dir().join("support/smtp_sink.py"))
                .args(["--port", &port.to_string(), "--lifetime", "300", "--dir"])
                .arg(dir.path().join("mail"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .expect("spawn the SMTP sink");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("stdout");
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.trim() == "READY" && connectable(port) {
                return SmtpSink { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.path().join("sink.log")).unwrap_or_default();
            last = format!("stdout {line:?}, stderr {err:?}");
        }
        panic!("the SMTP sink did not start: {last}");
    }

    /// The messages received so far, oldest first.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("read message");
                serde_json::from_str(&text).expect("message JSON")
            })
            .collect()
    }

    /// Wait until at least `n` messages arrived.
    async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn connectable(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn recipients(m: &serde_json::Value) -> Vec<String> {
    m["rcpt_tos"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_code_is_emailed_through_smtp() {
    let python = match tokio::task::spawn_blocking(python_with_aiosmtpd).await.expect("venv task") {
        Ok(p) => p,
        Err(reason) => return unavailable(&reason),
    };
    let sink = SmtpSink::start(&python);
    let port = sink.port.to_string();
    let server = Server::sqlite_with(&[
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port,
        "--smtp-security",
        "none",
        "--smtp-from",
        FROM,
    ])
    .await;

    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email)
                .email_verification_subject("Your Cognate code")
                .email_verification_message("Hello! Your code is {####}.")
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    const TO: &str = "smtp-user@example.com";
    let out = ok(server
        .idp_anonymous()
        .sign_up()
        .client_id(&app.client)
        .username("mailed")
        .password(PASSWORD)
        .user_attributes(attr("email", TO))
        .send()
        .await);
    assert_eq!(out.code_delivery_details().and_then(|d| d.delivery_medium()), Some(&DeliveryMediumType::Email));

    let outbox = server.outbox(&pool, "mailed").await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let code = outbox[0].code.clone().expect("code");

    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1, "the SMTP server received {mail:?}");
    let m = &mail[0];
    assert_eq!(recipients(m), vec![TO.to_string()], "envelope recipients: {m}");
    assert_eq!(m["mail_from"], FROM, "envelope sender: {m}");
    assert!(m["from"].as_str().unwrap_or_default().contains(FROM), "From header: {m}");
    assert!(m["to"].as_str().unwrap_or_default().contains(TO), "To header: {m}");
    assert_eq!(m["subject"], "Your Cognate code");
    let body = m["body"].as_str().unwrap_or_default();
    assert!(body.contains(&code), "the email body {body:?} lacks the outbox code {code}");
    assert_eq!(body.trim_end(), format!("Hello! Your code is {code}."));

    // The emailed code confirms the user.
    ok(server
        .idp_anonymous()
        .confirm_sign_up()
        .client_id(&app.client)
        .username("mailed")
        .confirmation_code(&code)
        .send()
        .await);
    let user = server.get_user(&pool, "mailed").await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    assert_eq!(attr_of(user.user_attributes(), "email_verified"), Some("true"));

    // A password reset is emailed too.
    ok(server.idp_anonymous().forgot_password().client_id(&app.client).username("mailed").send().await);
    let reset = server.latest_code(&pool, "mailed").await;
    let mail = sink.wait_for(2).await;
    assert_eq!(mail.len(), 2);
    assert_eq!(recipients(&mail[1]), vec![TO.to_string()]);
    assert!(mail[1]["body"].as_str().unwrap_or_default().contains(&reset));

    // An SMS goes only to the outbox: nothing more reaches the SMTP server.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("texted")
        .temporary_password("Temp-Passw0rd")
        .user_attributes(attr("phone_number", "+15555550199"))
        .desired_delivery_mediums(DeliveryMediumType::Sms)
        .send()
        .await);
    assert_eq!(server.outbox(&pool, "texted").await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 2, "an SMS was emailed");
}
