//! The real clients of `tests/clients/` (Node and Python scripts, the AWS CLI), installed on
//! first use and run with one JSON object on standard input; the last line of standard output
//! is the script's JSON result. Installs are pinned by the lock files and skipped while those
//! are unchanged. Without Node, npm, Python or the registries, tests using them are skipped
//! loudly, and with `CI` set they fail.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{repo_root, Server};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
// The AWS SDK v3 packages (credential providers, cognito-identity client) need Node 20.
const MIN_NODE_MAJOR: u32 = 20;

pub fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Fail in CI, skip loudly elsewhere (straight to stderr, which the test
/// harness does not capture).
pub fn unavailable(test: &str, what: &str, reason: &str) {
    if in_ci() {
        panic!("{test} needs the {what} clients of tests/clients and CI is set: {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPING {test}: the {what} clients are unavailable: {reason}. With CI set this fails. !!!\n"
    );
}

pub fn run_install(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Run `install` under an exclusive lock on `tests/clients/.install.lock`, so
/// that test processes running side by side (nextest) install once.
pub fn locked<T>(install: impl FnOnce() -> T) -> T {
    let lock = File::create(clients_dir().join(".install.lock")).expect("create tests/clients/.install.lock");
    lock.lock().expect("lock tests/clients/.install.lock");
    let result = install();
    drop(lock);
    result
}

/// Whether `stamp` holds exactly the bytes of `lock_file` (the installed
/// dependencies match the pinned ones).
fn stamp_matches(stamp: &Path, lock_file: &Path) -> bool {
    match (std::fs::read(stamp), std::fs::read(lock_file)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A line for whoever watches the run (stderr, which the test harness does not capture).
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// `tests/clients/js` with its `node_modules` installed (`npm ci`).
pub fn install_js() -> Result<PathBuf, String> {
    let version = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot read the node version {version:?}"))?;
    if major < MIN_NODE_MAJOR {
        return Err(format!("node {version} is older than {MIN_NODE_MAJOR}"));
    }
    let dir = clients_dir().join("js");
    let lock_file = dir.join("package-lock.json");
    let stamp = dir.join("node_modules/.cognate-installed");
    if stamp_matches(&stamp, &lock_file) {
        return Ok(dir);
    }
    note("installing the JavaScript clients (npm ci in tests/clients/js)...");
    let started = Instant::now();
    run_install(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir))?;
    std::fs::copy(&lock_file, &stamp).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    note(&format!("installed the JavaScript clients in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(dir)
}

/// `tests/clients/py/.venv/bin/python` with `requirements.txt` installed.
pub fn install_py() -> Result<PathBuf, String> {
    let dir = clients_dir().join("py");
    let venv = dir.join(".venv");
    let python = venv.join("bin/python");
    let requirements = dir.join("requirements.txt");
    let stamp = venv.join(".cognate-installed");
    if python.exists() && stamp_matches(&stamp, &requirements) {
        return Ok(python);
    }
    note("installing the Python clients (venv in tests/clients/py/.venv)...");
    let started = Instant::now();
    if !python.exists() {
        run_install(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run_install(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::copy(&requirements, &stamp).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    note(&format!("installed the Python clients in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(python)
}

/// A finished client script.
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<Value>,
}

impl Ran {
    /// The JSON result of a script that must have succeeded.
    #[track_caller]
    pub fn ok(self, what: &str) -> Value {
        match self.json {
            Some(v) if self.success && v["ok"] == json!(true) => v,
            _ => panic!(
                "{what} failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                pretty_or_raw(&self.stdout),
                tail(&self.stderr, 40)
            ),
        }
    }
}

fn pretty_or_raw(s: &str) -> String {
    serde_json::from_str::<Value>(s.trim())
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| s.to_string())
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Run `program args...` with `input` on standard input; the last line of
/// standard output is the JSON result.
pub async fn run_script(program: &Path, args: &[OsString], cwd: &Path, input: &Value) -> Ran {
    run_script_with(program, args, cwd, input, &[]).await
}

/// [`run_script`] with extra environment variables (e.g. `NODE_EXTRA_CA_CERTS`).
pub async fn run_script_with(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    input: &Value,
    env: &[(&str, &std::ffi::OsStr)],
) -> Ran {
    use tokio::io::AsyncWriteExt;

    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Nothing from the environment may point the clients elsewhere.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("AWS_") || key_text.starts_with("NODE_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_PAGER", "")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    // A program that does not read its input (the AWS CLI) may be gone already.
    let _ = stdin.write_all(input.to_string().as_bytes()).await;
    drop(stdin);
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} timed out after {SCRIPT_TIMEOUT:?}", program.display()))
        .expect("wait for the script");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = stdout.lines().rev().find(|l| !l.trim().is_empty()).and_then(|l| serde_json::from_str(l).ok());
    Ran { success: out.status.success(), stdout, stderr, json }
}

/// The Node clients.
pub struct Js {
    pub dir: PathBuf,
}

impl Js {
    /// The installed clients, or `None` after a loud skip (a panic in CI).
    pub fn get(test: &str) -> Option<Js> {
        static SETUP: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        match SETUP.get_or_init(|| locked(install_js)) {
            Ok(dir) => Some(Js { dir: dir.clone() }),
            Err(reason) => {
                unavailable(test, "JavaScript", reason);
                None
            }
        }
    }

    pub async fn run(&self, script: &str, input: Value) -> Value {
        run_script(Path::new("node"), &[self.dir.join(script).into()], &self.dir, &input).await.ok(script)
    }

    /// Runs `script` with extra environment variables; the caller judges the outcome.
    pub async fn run_with(&self, script: &str, input: Value, env: &[(&str, &std::ffi::OsStr)]) -> Ran {
        run_script_with(Path::new("node"), &[self.dir.join(script).into()], &self.dir, &input, env).await
    }
}

/// The Python clients.
pub struct Py {
    pub dir: PathBuf,
    pub python: PathBuf,
}

impl Py {
    pub fn get(test: &str) -> Option<Py> {
        static SETUP: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        match SETUP.get_or_init(|| locked(install_py)) {
            Ok(python) => Some(Py { dir: clients_dir().join("py"), python: python.clone() }),
            Err(reason) => {
                unavailable(test, "Python", reason);
                None
            }
        }
    }

    pub async fn run(&self, script: &str, input: Value) -> Value {
        run_script(&self.python, &[self.dir.join(script).into()], &self.dir, &input).await.ok(script)
    }

    /// `aws <args>` (the AWS CLI v1 of the venv) against `server`; returns
    /// (success, stdout, stderr).
    pub async fn aws(&self, server: &Server, args: &[&str]) -> (bool, String, String) {
        let url = server.url();
        let mut all: Vec<OsString> = vec![self.python.with_file_name("aws").into()];
        all.extend(
            ["--endpoint-url", url.as_str(), "--region", "us-east-1", "--output", "json"]
                .iter()
                .chain(args)
                .map(OsString::from),
        );
        // The CLI's entry point is a Python script: run it with the venv's python.
        let ran = run_script(&self.python, &all, &self.dir, &json!({})).await;
        (ran.success, ran.stdout, ran.stderr)
    }
}
