//! Test harness for the real-client end-to-end suites of the `cognate` server.
//!
//! Every test starts its own `cognate serve` process on a free loopback port with
//! a fresh data directory (and, for PostgreSQL, a fresh schema), talks to it with
//! the real AWS SDK for Rust (or with raw, self-signed HTTP requests), and kills
//! it when the [`Server`] is dropped.
//!
//! The binary is never built from here: CI builds it first. Its path comes from
//! `COGNATE_BIN`, defaulting to `<repo>/target/debug/cognate`.

pub mod clients;
pub mod lambda_host;

use std::fmt::Debug;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

pub use aws_sdk_cognitoidentity as identity;
pub use aws_sdk_cognitoidentityprovider as idp;
// The shared client configuration is aws-types' (which the SDK crates depend
// on), not aws-config's: this crate does not depend on aws-config (see
// Cargo.toml). Re-exported for the tests that build a client of their own.
pub use aws_types::SdkConfig;
pub use idp::config::{BehaviorVersion, Region};

/// The region every server under test pretends to be in.
pub const REGION: &str = "us-east-1";
/// The account id the server uses in ARNs.
pub const ACCOUNT: &str = "000000000000";
/// Default access key of the server.
pub const ACCESS_KEY: &str = "test";
/// Default secret key of the server.
pub const SECRET_KEY: &str = "test";
/// `X-Amz-Target` prefix of cognito-idp.
pub const IDP_PREFIX: &str = "AWSCognitoIdentityProviderService";
/// `X-Amz-Target` prefix of cognito-identity.
pub const IDENTITY_PREFIX: &str = "AWSCognitoIdentityService";

const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Locating things
// ---------------------------------------------------------------------------

/// Root of the main repository (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// Path of the `cognate` binary under test.
pub fn cognate_bin() -> PathBuf {
    match std::env::var_os("COGNATE_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join("target/debug/cognate"),
    }
}

/// URL of the PostgreSQL database the PostgreSQL variants use.
pub fn test_database_url() -> String {
    std::env::var("COGNATE_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres://root@127.0.0.1:5432/test".to_string())
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------
// Randomness without a dependency
// ---------------------------------------------------------------------------

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    buf
}

/// A random lowercase hex string of `2 * bytes` characters.
pub fn random_hex(bytes: usize) -> String {
    random_bytes(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A unique, readable name for a resource created by a test.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", N.fetch_add(1, Ordering::Relaxed), random_hex(3))
}

/// Standard base64 with padding.
/// Decodes base64url without padding (JWT segments, JWK members).
pub fn b64url_decode(text: &str) -> Vec<u8> {
    let mut standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    aws_smithy_types::base64::decode(&standard).unwrap_or_else(|e| panic!("not base64url ({e}): {text:?}"))
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// PostgreSQL schemas
// ---------------------------------------------------------------------------

/// A PostgreSQL schema reserved for one test; dropped (CASCADE) when the last
/// handle goes away.
#[derive(Debug)]
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    /// Reserve a fresh schema name, or `None` (after saying so loudly) when
    /// PostgreSQL cannot be reached outside CI. In CI an unreachable database
    /// fails the test.
    pub fn reserve() -> Option<Arc<PgSchema>> {
        let url = test_database_url();
        let probe = url.clone();
        // The blocking `postgres` client runs its own runtime: keep it off ours.
        let reachable = std::thread::spawn(move || pg_execute(&probe, "SELECT 1")).join().expect("probe thread");
        if let Err(e) = reachable {
            if in_ci() {
                panic!("PostgreSQL at {url} is unreachable and CI is set: {e}");
            }
            // Written straight to the process's stderr, which the test
            // harness does not capture, once per test binary.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!! SKIPPING the PostgreSQL tests: {url} is unreachable ({e}). \
                     Set COGNATE_TEST_DATABASE_URL or start PostgreSQL; with CI set this fails. !!!\n"
                );
            });
            return None;
        }
        Some(Arc::new(PgSchema { url, name: format!("cognate_e2e_{}", random_hex(6)) }))
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let res = std::thread::spawn(move || pg_execute(&url, &sql)).join();
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop schema {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping schema {} panicked", self.name),
        }
    }
}

/// Run one SQL statement on a plain connection (blocking; call it from a
/// thread that is not inside a tokio runtime).
pub fn pg_execute(url: &str, sql: &str) -> Result<(), String> {
    let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(3));
    let mut client = config.connect(postgres::NoTls).map_err(|e| format!("{e}"))?;
    client.batch_execute(sql).map_err(|e| format!("{e}"))
}

/// Whether a schema exists (blocking helper run on its own thread).
pub fn pg_schema_exists(url: &str, schema: &str) -> bool {
    let url = url.to_string();
    let schema = schema.to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let row = client
            .query_one("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", &[&schema])
            .expect("query");
        row.get::<_, i64>(0) > 0
    })
    .join()
    .expect("thread")
}

// ---------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------

/// Which store a server runs on.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sqlite,
    Postgres { schema: Arc<PgSchema>, master_key: String },
}

/// A running `cognate serve` process. Killed on drop.
pub struct Server {
    child: Option<Child>,
    port: u16,
    store: StoreConfig,
    data_dir: Arc<tempfile::TempDir>,
    log_path: PathBuf,
    starts: u32,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    /// Serves HTTPS only (`--tls self-signed`): see [`Server::sqlite_tls`].
    tls: bool,
}

impl Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("port", &self.port)
            .field("store", &self.store)
            .field("data_dir", &self.data_dir.path())
            .finish()
    }
}

impl Server {
    /// A server on a fresh SQLite data dir.
    pub async fn sqlite() -> Server {
        let dir = Arc::new(tempdir());
        Server::launch(StoreConfig::Sqlite, dir).await
    }

    /// A server on a fresh SQLite data dir with extra `cognate serve`
    /// arguments (e.g. `["--smtp-host", "127.0.0.1"]`); they are kept for
    /// [`Server::restart`].
    pub async fn sqlite_with(args: &[&str]) -> Server {
        let dir = Arc::new(tempdir());
        Server::launch_with(StoreConfig::Sqlite, dir, args, &[]).await
    }

    /// A server on a fresh SQLite data dir serving HTTPS only (`--tls self-signed`), for the
    /// clients that insist on https (Amplify's hosted-UI URLs). Its local CA is
    /// [`Server::ca_pem`]; [`Server::url`] is `https://127.0.0.1:PORT` and the SDK clients
    /// ([`Server::idp`], ...) trust that CA alone. [`Server::raw`] speaks plain HTTP: not here.
    pub async fn sqlite_tls() -> Server {
        Server::sqlite_with(&["--tls", "self-signed"]).await
    }

    /// A server on a fresh PostgreSQL schema, or `None` when PostgreSQL is not
    /// available outside CI (the skip is printed).
    pub async fn postgres() -> Option<Server> {
        Server::postgres_with(&[]).await
    }

    /// [`Server::postgres`] with extra `cognate serve` arguments.
    pub async fn postgres_with(args: &[&str]) -> Option<Server> {
        let schema = PgSchema::reserve()?;
        let store = StoreConfig::Postgres { schema, master_key: base64(&random_bytes(32)) };
        Some(Server::launch_with(store, Arc::new(tempdir()), args, &[]).await)
    }

    /// A second server process sharing this one's store (same PostgreSQL
    /// schema and master key), with its own data dir and port.
    pub async fn sibling(&self) -> Server {
        assert!(matches!(self.store, StoreConfig::Postgres { .. }), "only PostgreSQL servers can share a store");
        Server::launch(self.store.clone(), Arc::new(tempdir())).await
    }

    /// Like [`Server::sibling`], with extra `cognate serve` arguments.
    pub async fn sibling_with(&self, args: &[&str]) -> Server {
        assert!(matches!(self.store, StoreConfig::Postgres { .. }), "only PostgreSQL servers can share a store");
        Server::launch_with(self.store.clone(), Arc::new(tempdir()), args, &[]).await
    }

    /// Start a server with the given store and data dir.
    pub async fn launch(store: StoreConfig, data_dir: Arc<tempfile::TempDir>) -> Server {
        Server::launch_with(store, data_dir, &[], &[]).await
    }

    /// Start a server with the given store and data dir, extra `cognate serve`
    /// arguments and extra environment variables (which may be `COGNATE_*`).
    pub async fn launch_with(
        store: StoreConfig,
        data_dir: Arc<tempfile::TempDir>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log_path = data_dir.path().join("server-0.log");
        let mut server = Server {
            child: None,
            port: 0,
            store,
            data_dir,
            log_path,
            starts: 0,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tls: args.windows(2).any(|pair| pair == ["--tls", "self-signed"]),
        };
        server.start().await;
        server
    }

    /// The store this server runs on.
    pub fn store(&self) -> &StoreConfig {
        &self.store
    }

    /// Whether this server runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.store, StoreConfig::Postgres { .. })
    }

    /// The data directory of this server.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    async fn start(&mut self) {
        let bin = cognate_bin();
        assert!(
            bin.exists(),
            "the cognate binary {} does not exist: build it first \
             (`cargo build -p cognate-server`) or set COGNATE_BIN",
            bin.display()
        );
        let data = self.data_dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create data dir");
        let mut last_err = String::new();
        for attempt in 0..5 {
            self.starts += 1;
            self.log_path = self.data_dir.path().join(format!("server-{}.log", self.starts));
            let port = free_port();
            let log = File::create(&self.log_path).expect("create server log");
            let mut cmd = Command::new(&bin);
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(&data)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log"))
                .stderr(log);
            cmd.env("NO_COLOR", "1");
            // Only what this harness sets may configure the server: no
            // COGNATE_* variable (config file, keys, ...) leaks in.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("COGNATE_") {
                    cmd.env_remove(&key);
                }
            }
            if let StoreConfig::Postgres { schema, master_key } = &self.store {
                cmd.arg("--database-url")
                    .arg(&schema.url)
                    .arg("--database-schema")
                    .arg(&schema.name)
                    .env("COGNATE_MASTER_KEY", master_key);
            }
            cmd.args(&self.extra_args);
            for (k, v) in &self.extra_env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            match wait_healthy(&mut child, port, self.tls).await {
                Ok(()) => {
                    self.child = Some(child);
                    self.port = port;
                    return;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = format!("attempt {attempt}: {e}\n--- server log ---\n{}", read_tail(&self.log_path, 60));
                    // A port race with another test shows up as an early exit;
                    // anything else (a timeout) is not worth retrying.
                    if !e.starts_with("exited") {
                        break;
                    }
                }
            }
        }
        panic!("cognate did not become healthy: {last_err}");
    }

    /// Kill the process (SIGKILL) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server and start it again on the same data dir and store
    /// (the port may change).
    pub async fn restart(&mut self) {
        self.stop();
        self.start().await;
    }

    /// SIGKILL the process, as a crash would, and reap it. Panics unless the
    /// process was still running and died of that signal: a crash test whose
    /// server had already exited by itself would prove nothing. Bring it back
    /// on the same data with [`Server::restart`].
    pub fn kill_hard(&mut self) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        let mut child = self.child.take().expect("kill_hard: the server is not running");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kill_hard: the server had already exited with {status}\n{}", self.log_tail(40));
        }
        // std's Child::kill sends SIGKILL on Unix: no handler, no graceful shutdown.
        child.kill().expect("kill_hard: SIGKILL");
        let status = child.wait().expect("kill_hard: wait");
        assert_eq!(status.signal(), Some(9), "kill_hard: the server did not die of SIGKILL: {status}");
        status
    }

    /// Port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL, e.g. `http://127.0.0.1:1234` (`https://` for [`Server::sqlite_tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The local CA of a server started with `--tls self-signed` (made in its data dir).
    pub fn ca_pem(&self) -> PathBuf {
        assert!(self.tls, "ca_pem: this server does not serve HTTPS");
        self.serve_data_dir().join("ca.pem")
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        read_tail(&self.log_path, lines)
    }

    /// SDK configuration pointing at this server, with retries disabled so
    /// that a 500 fails at once.
    pub fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_with(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "e2e"))
    }

    /// Same as [`Server::sdk_config`] with other credentials.
    pub fn sdk_config_with(&self, creds: Credentials) -> SdkConfig {
        let mut config = SdkConfig::builder();
        if self.tls {
            config.set_http_client(Some(self.https_client()));
        }
        config
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static(REGION))
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .endpoint_url(self.url())
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(30)).build())
            .build()
    }

    /// An HTTPS client trusting this server's local CA and nothing else. (The SDK's default
    /// client reads the trusted roots once per process, so `SSL_CERT_FILE` cannot name a CA
    /// made by a test.)
    fn https_client(&self) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
        let ca = std::fs::read(self.ca_pem()).expect("read the server's ca.pem");
        let context = TlsContext::builder()
            .with_trust_store(TrustStore::empty().with_pem_certificate(ca))
            .build()
            .expect("TLS context");
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https()
    }

    /// A cognito-idp client for this server.
    pub fn idp(&self) -> idp::Client {
        idp::Client::new(&self.sdk_config())
    }

    /// A cognito-identity client for this server.
    pub fn identity(&self) -> identity::Client {
        identity::Client::new(&self.sdk_config())
    }

    /// A raw HTTP helper for this server.
    pub fn raw(&self) -> Raw {
        Raw {
            base: self.url(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("reqwest client"),
        }
    }

    /// A cognito-idp client without credentials, as an app would have: the
    /// operations Cognito authorises by client id (SignUp, ConfirmSignUp,
    /// ForgotPassword, ...) go unsigned.
    pub fn idp_anonymous(&self) -> idp::Client {
        let mut config = SdkConfig::builder();
        if self.tls {
            config.set_http_client(Some(self.https_client()));
        }
        let config = config
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static(REGION))
            .endpoint_url(self.url())
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(30)).build())
            .build();
        idp::Client::new(&config)
    }

    /// The directory given to `cognate serve --data-dir`.
    pub fn serve_data_dir(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// `GET /_cognate/outbox?<query>`, which must answer 200 with a valid
    /// outbox document.
    pub async fn outbox_query(&self, query: &str) -> Vec<Message> {
        let resp = self.raw().get(&format!("/_cognate/outbox?{query}")).await;
        assert_eq!(resp.status, 200, "GET /_cognate/outbox?{query} answered {}: {}", resp.status, resp.body);
        parse_outbox(&resp.body)
    }

    /// Every message the server delivered to `user` of `pool`, oldest first.
    pub async fn outbox(&self, pool: &str, user: &str) -> Vec<Message> {
        self.outbox_query(&format!("pool={}&user={}", url_encode(pool), url_encode(user))).await
    }

    /// The code of the newest message to `user` of `pool` (panics when there
    /// is none).
    pub async fn latest_code(&self, pool: &str, user: &str) -> String {
        let messages = self.outbox(pool, user).await;
        let last = messages.last().unwrap_or_else(|| panic!("the outbox has no message for {user:?} in {pool}"));
        last.code.clone().unwrap_or_else(|| panic!("the newest message for {user:?} has no code: {last:?}"))
    }

    /// `cognate outbox --pool P --user U` on this server's store (data dir,
    /// or PostgreSQL schema and master key). Returns the parsed messages and
    /// the raw standard output.
    pub async fn cli_outbox(&self, pool: &str, user: &str) -> (Vec<Message>, String) {
        let mut cmd = tokio::process::Command::new(cognate_bin());
        cmd.arg("outbox")
            .arg("--pool")
            .arg(pool)
            .arg("--user")
            .arg(user)
            .arg("--data-dir")
            .arg(self.serve_data_dir())
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("COGNATE_") {
                cmd.env_remove(&key);
            }
        }
        if let StoreConfig::Postgres { schema, master_key } = &self.store {
            cmd.arg("--database-url")
                .arg(&schema.url)
                .arg("--database-schema")
                .arg(&schema.name)
                .env("COGNATE_MASTER_KEY", master_key);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .expect("cognate outbox timed out")
            .expect("run cognate outbox");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "cognate outbox failed with {}: stdout {stdout:?} stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (parse_outbox(&stdout), stdout)
    }
}

// ---------------------------------------------------------------------------
// The outbox and the public (client-id authorised) operations
// ---------------------------------------------------------------------------

/// One message of the development outbox (`/_cognate/outbox`).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: i64,
    pub pool_id: String,
    pub username: String,
    /// `EMAIL` or `SMS`.
    pub channel: String,
    pub destination: String,
    pub code: Option<String>,
    pub subject: Option<String>,
    pub body: String,
    /// RFC 3339.
    pub created_at: String,
}

impl Message {
    /// Parse one message, checking every field's type.
    pub fn from_json(v: &serde_json::Value) -> Message {
        let text = |k: &str| -> String {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_else(|| panic!("outbox message field {k:?} is not a string: {v}"))
                .to_string()
        };
        let opt = |k: &str| -> Option<String> {
            match v.get(k) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => panic!("outbox message field {k:?} is not a string or null: {other}"),
            }
        };
        let m = Message {
            id: v
                .get("id")
                .and_then(|x| x.as_i64())
                .unwrap_or_else(|| panic!("outbox message id is not an integer: {v}")),
            pool_id: text("pool_id"),
            username: text("username"),
            channel: text("channel"),
            destination: text("destination"),
            code: opt("code"),
            subject: opt("subject"),
            body: text("body"),
            created_at: text("created_at"),
        };
        assert!(m.channel == "EMAIL" || m.channel == "SMS", "outbox channel {:?} is neither EMAIL nor SMS", m.channel);
        m
    }

    /// Whether `created_at` looks like an RFC 3339 UTC timestamp.
    pub fn created_at_is_rfc3339(&self) -> bool {
        let b = self.created_at.as_bytes();
        b.len() >= 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && (self.created_at.ends_with('Z') || self.created_at[19..].contains(['+', '-']))
    }
}

/// Parse an outbox document `{"messages": [...]}`; the ids must increase.
pub fn parse_outbox(body: &str) -> Vec<Message> {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("the outbox is not JSON ({e}): {body:?}"));
    let list = v
        .get("messages")
        .and_then(|m| m.as_array())
        .unwrap_or_else(|| panic!("the outbox has no \"messages\" array: {body}"));
    let messages: Vec<Message> = list.iter().map(Message::from_json).collect();
    assert!(messages.windows(2).all(|w| w[0].id < w[1].id), "outbox messages are not ordered by id: {body}");
    messages
}

/// A user attribute for the SDK.
pub fn attr(name: &str, value: &str) -> idp::types::AttributeType {
    idp::types::AttributeType::builder().name(name).value(value).build().expect("attribute")
}

/// The value of the attribute `name`, if present.
pub fn attr_of<'a>(attrs: &'a [idp::types::AttributeType], name: &str) -> Option<&'a str> {
    attrs.iter().find(|a| a.name() == name).and_then(|a| a.value())
}

/// The sorted names of a list of attributes.
pub fn attr_names(attrs: &[idp::types::AttributeType]) -> Vec<String> {
    let names: Vec<&str> = attrs.iter().map(|a| a.name()).collect();
    sorted(&names)
}

/// The shape of a JSON value: every leaf replaced by its type name, so that
/// two answers can be compared for structure without their values.
pub fn json_shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(items) => Value::Array(items.iter().map(json_shape).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json_shape(v))).collect()),
    }
}

/// Whether `s` looks like a lowercase hyphenated UUID (a user's `sub`).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

/// Percent-encode a query-string component.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Cognito's `SECRET_HASH`: base64(HMAC-SHA256(key = client secret,
/// message = username + client id)).
pub fn secret_hash(username: &str, client_id: &str, client_secret: &str) -> String {
    let hex =
        aws_sigv4::sign::v4::calculate_signature(client_secret.as_bytes(), format!("{username}{client_id}").as_bytes());
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
    base64(&bytes)
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- last lines of the cognate log ({}) ---\n{}", self.log_path.display(), self.log_tail(40));
        }
        self.stop();
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("cognate-e2e-").tempdir().expect("temp dir")
}

fn read_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Run `cognate` with these arguments and environment (nothing else from
/// `COGNATE_*`), expecting it to exit by itself within `timeout`. Returns the
/// exit status (`None` if it had to be killed) and its output.
pub async fn run_cognate_to_exit(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let dir = tempdir();
    let log_path = dir.path().join("out.log");
    let log = File::create(&log_path).expect("log file");
    let mut cmd = Command::new(cognate_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone().expect("clone")).stderr(log).env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("COGNATE_") {
            cmd.env_remove(&key);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cognate");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    (status, std::fs::read_to_string(&log_path).unwrap_or_default())
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Waits for `GET /health`; for an HTTPS-only server (`tls`), which this plain client cannot
/// ask, for the port to accept connections (the server binds it once set up, CA included).
async fn wait_healthy(child: &mut Child, port: u16, tls: bool) -> Result<(), String> {
    let deadline = Instant::now() + HEALTH_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("exited early with {status}"));
        }
        let up =
            if tls { TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() } else { health_ok(addr) };
        if up {
            // Make sure it is our process that answered, not another test's
            // server that won a race for the same port (ours would then exit
            // at once with a bind error).
            tokio::time::sleep(Duration::from_millis(30)).await;
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("exited early with {status}"));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let what = if tls { "a connection" } else { "GET /health" };
            return Err(format!("timed out after {HEALTH_TIMEOUT:?} waiting for {what} on port {port}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A tiny blocking `GET /health` that does not need a runtime.
fn health_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(1000)));
    let req = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", addr.port());
    if stream.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")
}

// ---------------------------------------------------------------------------
// Raw HTTP with self-made SigV4 signatures
// ---------------------------------------------------------------------------

/// How a raw request is signed.
#[derive(Debug, Clone)]
pub enum Signing {
    /// No `Authorization` header at all.
    None,
    /// Signed with the default credentials, now.
    Valid,
    /// Signed with these credentials at this time.
    With { access_key: String, secret_key: String, time: SystemTime, region: String },
}

impl Signing {
    /// Default access key, wrong secret.
    pub fn wrong_secret() -> Signing {
        Signing::With {
            access_key: ACCESS_KEY.into(),
            secret_key: "not-the-secret".into(),
            time: SystemTime::now(),
            region: REGION.into(),
        }
    }

    /// An access key the server does not know.
    pub fn unknown_key() -> Signing {
        Signing::With {
            access_key: "AKIDUNKNOWNUNKNOWN00".into(),
            secret_key: SECRET_KEY.into(),
            time: SystemTime::now(),
            region: REGION.into(),
        }
    }

    /// Valid credentials, but signed `secs` seconds in the past.
    pub fn aged(secs: u64) -> Signing {
        Signing::With {
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            time: SystemTime::now() - Duration::from_secs(secs),
            region: REGION.into(),
        }
    }
}

/// A response to a raw request.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl RawResponse {
    /// The body parsed as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}); status {}: {:?}", self.status, self.body))
    }

    /// A header value as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// `__type` of an error body, with any namespace (`...#`) and suffix
    /// (`:...`) stripped the way SDKs do.
    pub fn error_type(&self) -> String {
        let v = self.json();
        let raw = v
            .get("__type")
            .and_then(|t| t.as_str())
            .unwrap_or_else(|| panic!("no __type in error body: {}", self.body));
        let raw = raw.split(':').next().unwrap_or(raw);
        raw.rsplit('#').next().unwrap_or(raw).to_string()
    }

    /// `message` (or `Message`) of an error body.
    pub fn error_message(&self) -> String {
        let v = self.json();
        v.get("message").or_else(|| v.get("Message")).and_then(|m| m.as_str()).unwrap_or_default().to_string()
    }

    /// Assert this is a client error (HTTP 400) with the given code, and
    /// return the message.
    #[track_caller]
    pub fn assert_error(&self, code: &str) -> String {
        assert_eq!(self.status, 400, "expected HTTP 400 {code}, got {}: {}", self.status, self.body);
        assert_eq!(self.error_type(), code, "unexpected error body {}", self.body);
        self.error_message()
    }
}

/// Raw JSON 1.1 requests to a server.
#[derive(Debug, Clone)]
pub struct Raw {
    pub base: String,
    pub http: reqwest::Client,
}

impl Raw {
    /// `POST /` with `X-Amz-Target: <prefix>.<op>` and the given body, signed
    /// as asked for the service `cognito-idp` or `cognito-identity`
    /// (chosen from the prefix).
    pub async fn call(&self, target: &str, body: &str, signing: Signing) -> RawResponse {
        let service = if target.starts_with(IDENTITY_PREFIX) { "cognito-identity" } else { "cognito-idp" };
        let url = format!("{}/", self.base);
        let mut headers = self.base_headers(target);
        let signed = match signing {
            Signing::None => None,
            Signing::Valid => {
                Some((ACCESS_KEY.to_string(), SECRET_KEY.to_string(), SystemTime::now(), REGION.to_string()))
            }
            Signing::With { access_key, secret_key, time, region } => Some((access_key, secret_key, time, region)),
        };
        if let Some((ak, sk, time, region)) = signed {
            let extra = sigv4_headers(&url, &headers, body.as_bytes(), &ak, &sk, time, &region, service);
            headers.extend(extra);
        }
        self.post(&headers, body.as_bytes().to_vec()).await
    }

    /// The headers of an (unsigned) JSON 1.1 request to `target`, including
    /// `host`, in the form [`sigv4_headers`] takes.
    pub fn base_headers(&self, target: &str) -> Vec<(String, String)> {
        vec![
            ("host".into(), self.base.trim_start_matches("http://").to_string()),
            ("content-type".into(), "application/x-amz-json-1.1".to_string()),
            ("x-amz-target".into(), target.to_string()),
        ]
    }

    /// `POST /` with exactly these headers (a `host` entry is left to the
    /// HTTP client) and body.
    pub async fn post(&self, headers: &[(String, String)], body: Vec<u8>) -> RawResponse {
        let url = format!("{}/", self.base);
        let mut req = self.http.post(&url).body(body);
        for (k, v) in headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let resp = req.send().await.expect("send raw request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("read body");
        RawResponse { status, headers, body }
    }

    /// Signed call to a cognito-idp operation with a JSON body.
    pub async fn idp(&self, op: &str, body: serde_json::Value) -> RawResponse {
        self.call(&format!("{IDP_PREFIX}.{op}"), &body.to_string(), Signing::Valid).await
    }

    /// Unsigned call to a cognito-idp operation (the ones Cognito authorises
    /// by app client id: SignUp, ConfirmSignUp, ForgotPassword, ...).
    pub async fn idp_unsigned(&self, op: &str, body: serde_json::Value) -> RawResponse {
        self.call(&format!("{IDP_PREFIX}.{op}"), &body.to_string(), Signing::None).await
    }

    /// Signed call to a cognito-identity operation with a JSON body.
    pub async fn identity(&self, op: &str, body: serde_json::Value) -> RawResponse {
        self.call(&format!("{IDENTITY_PREFIX}.{op}"), &body.to_string(), Signing::Valid).await
    }

    /// `GET <path>`.
    pub async fn get(&self, path: &str) -> RawResponse {
        let resp = self.http.get(format!("{}{}", self.base, path)).send().await.expect("send GET");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("read body");
        RawResponse { status, headers, body }
    }
}

/// The headers (`authorization`, `x-amz-date`, ...) that SigV4-sign a request.
#[allow(clippy::too_many_arguments)]
pub fn sigv4_headers(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    access_key: &str,
    secret_key: &str,
    time: SystemTime,
    region: &str,
    service: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    let identity = Credentials::new(access_key, secret_key, None, None, "e2e-raw").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _sig) = sign(signable, &params).expect("sign").into_parts();
    instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

// ---------------------------------------------------------------------------
// SDK error helpers
// ---------------------------------------------------------------------------

/// What an SDK call failed with.
#[derive(Debug, Clone)]
pub struct ErrInfo {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Unwrap the error of an SDK call that must fail with a service error.
#[track_caller]
pub fn expect_err<T, E>(res: Result<T, SdkError<E, HttpResponse>>) -> ErrInfo
where
    T: Debug,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match res {
        Ok(v) => panic!("expected the call to fail, but it succeeded: {v:?}"),
        Err(SdkError::ServiceError(se)) => {
            let status = se.raw().status().as_u16();
            let err = se.err();
            ErrInfo {
                status,
                code: err.code().unwrap_or_default().to_string(),
                message: err.message().unwrap_or_default().to_string(),
            }
        }
        Err(other) => panic!(
            "expected a service error, got a transport/client failure: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&other)
        ),
    }
}

/// Assert an SDK call failed with HTTP 400 and the given error code; returns
/// the message.
#[track_caller]
pub fn expect_code<T, E>(res: Result<T, SdkError<E, HttpResponse>>, code: &str) -> String
where
    T: Debug,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let info = expect_err(res);
    assert_eq!((info.status, info.code.as_str()), (400, code), "unexpected error (message: {:?})", info.message);
    info.message
}

/// Assert an SDK call failed with HTTP 400 and one of the given codes.
#[track_caller]
pub fn expect_one_of<T, E>(res: Result<T, SdkError<E, HttpResponse>>, codes: &[&str]) -> ErrInfo
where
    T: Debug,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let info = expect_err(res);
    assert_eq!(info.status, 400, "expected a client error, got {info:?}");
    assert!(codes.contains(&info.code.as_str()), "expected one of {codes:?}, got {info:?}");
    info
}

/// Unwrap an SDK result, printing the full error chain on failure.
#[track_caller]
pub fn ok<T, E>(res: Result<T, SdkError<E, HttpResponse>>) -> T
where
    E: std::error::Error + 'static,
{
    match res {
        Ok(v) => v,
        Err(e) => panic!("call failed: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)),
    }
}

/// Seconds since the epoch of an SDK timestamp.
pub fn epoch(t: &aws_smithy_types::DateTime) -> f64 {
    t.as_secs_f64()
}

/// Seconds since the epoch, now.
pub fn now_epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

/// Sorted copy of a list of strings.
pub fn sorted<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.as_ref().to_string()).collect();
    v.sort();
    v
}

/// Generate `sqlite_<name>` and `postgres_<name>` tests from async functions
/// taking a `&Server`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),+ $(,)?) => {
        /// The suite against SQLite.
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::Server::sqlite().await;
                    super::$name(&server).await;
                }
            )+
        }
        /// The same suite against PostgreSQL.
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(server) = $crate::Server::postgres().await else {
                        return;
                    };
                    super::$name(&server).await;
                }
            )+
        }
    };
}

// ---------------------------------------------------------------------------
// Identity pools
// ---------------------------------------------------------------------------

impl Server {
    /// A new identity pool that allows guests (with a guest role), and a guest identity of it
    /// with its temporary credentials (GetCredentialsForIdentity's): (pool, identity,
    /// credentials).
    pub async fn guest_identity(&self) -> (String, String, Credentials) {
        let pool = ok(self
            .identity()
            .create_identity_pool()
            .identity_pool_name(unique_name("guests"))
            .allow_unauthenticated_identities(true)
            .send()
            .await)
        .identity_pool_id;
        let roles = self.identity().set_identity_pool_roles().identity_pool_id(&pool);
        ok(roles.roles("unauthenticated", format!("arn:aws:iam::{ACCOUNT}:role/guest")).send().await);
        let id = ok(self.identity().get_id().identity_pool_id(&pool).send().await).identity_id.expect("IdentityId");
        let credentials = ok(self.identity().get_credentials_for_identity().identity_id(&id).send().await)
            .credentials
            .expect("Credentials");
        let (key, secret) =
            (credentials.access_key_id.expect("AccessKeyId"), credentials.secret_key.expect("SecretKey"));
        (pool, id, Credentials::new(key, secret, credentials.session_token, None, "identity"))
    }
}

// ---------------------------------------------------------------------------
// Users: pools, app clients and look-ups shared by the user suites
// ---------------------------------------------------------------------------

/// A password that satisfies Cognito's default policy (8 characters, upper
/// and lower case, a number and a symbol).
pub const PASSWORD: &str = "Passw0rd!";

/// A user pool and one of its app clients.
#[derive(Debug, Clone)]
pub struct App {
    pub pool: String,
    pub client: String,
    pub secret: Option<String>,
}

impl App {
    /// The `SECRET_HASH` for `username`, when the client has a secret.
    pub fn hash(&self, username: &str) -> Option<String> {
        self.secret.as_deref().map(|secret| secret_hash(username, &self.client, secret))
    }
}

/// The `CreateUserPool` request builder, for [`Server::new_pool`].
pub type CreatePool = idp::operation::create_user_pool::builders::CreateUserPoolFluentBuilder;

impl Server {
    /// Create a user pool named `users-…`, with `configure` adding settings;
    /// returns its id.
    pub async fn new_pool(&self, configure: impl FnOnce(CreatePool) -> CreatePool) -> String {
        let request = self.idp().create_user_pool().pool_name(unique_name("users"));
        ok(configure(request).send().await).user_pool.and_then(|p| p.id).expect("CreateUserPool returned no pool id")
    }

    /// Create an app client in `pool`, with or without a secret and with
    /// PreventUserExistenceErrors ENABLED or LEGACY.
    pub async fn new_client(&self, pool: &str, generate_secret: bool, prevent_existence_errors: bool) -> App {
        use idp::types::PreventUserExistenceErrorTypes as P;
        let client = ok(self
            .idp()
            .create_user_pool_client()
            .user_pool_id(pool)
            .client_name(unique_name("app"))
            .generate_secret(generate_secret)
            .prevent_user_existence_errors(if prevent_existence_errors { P::Enabled } else { P::Legacy })
            .send()
            .await)
        .user_pool_client
        .expect("CreateUserPoolClient returned no client");
        App {
            pool: pool.to_string(),
            client: client.client_id().expect("ClientId").to_string(),
            secret: client.client_secret().map(str::to_string),
        }
    }

    /// A CONFIRMED user of `pool` with [`PASSWORD`] and `attributes`, as an administrator makes
    /// one: AdminCreateUser without a message, then a permanent AdminSetUserPassword.
    pub async fn confirmed_user(&self, pool: &str, username: &str, attributes: &[(&str, &str)]) {
        let mut create = self
            .idp()
            .admin_create_user()
            .user_pool_id(pool)
            .username(username)
            .message_action(idp::types::MessageActionType::Suppress);
        for (name, value) in attributes {
            create = create.user_attributes(attr(name, value));
        }
        ok(create.send().await);
        let password = self.idp().admin_set_user_password().user_pool_id(pool).username(username);
        ok(password.password(PASSWORD).permanent(true).send().await);
    }

    /// AdminGetUser, which must succeed.
    pub async fn get_user(&self, pool: &str, username: &str) -> idp::operation::admin_get_user::AdminGetUserOutput {
        ok(self.idp().admin_get_user().user_pool_id(pool).username(username).send().await)
    }

    /// The user's status as a string (`UNCONFIRMED`, `CONFIRMED`, ...).
    pub async fn user_status(&self, pool: &str, username: &str) -> String {
        self.get_user(pool, username).await.user_status().map(|s| s.as_str().to_string()).unwrap_or_default()
    }

    /// Every user of the pool (ListUsers, all pages).
    pub async fn list_all_users(&self, pool: &str) -> Vec<idp::types::UserType> {
        let mut users = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1000 {
            let out = ok(self.idp().list_users().user_pool_id(pool).set_pagination_token(token.clone()).send().await);
            users.extend(out.users().iter().cloned());
            match out.pagination_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return users,
            }
        }
        panic!("ListUsers did not stop paginating");
    }

    /// The sorted usernames of every user of the pool.
    pub async fn usernames(&self, pool: &str) -> Vec<String> {
        let users = self.list_all_users(pool).await;
        let names: Vec<&str> = users.iter().filter_map(|u| u.username()).collect();
        sorted(&names)
    }
}
