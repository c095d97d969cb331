//! How the server is served: which regions (`--region`), in memory (`--ephemeral`), and over
//! HTTPS (`--tls self-signed`), checked with the real clients that care: the Rust AWS SDK
//! trusting the local CA, and aws-jwt-verify (which fetches JWKS over https only) with
//! `NODE_EXTRA_CA_CERTS=ca.pem`.
//!
//! The harness's [`Server`] waits on plain-HTTP `/health` and always passes a data dir, so the
//! ephemeral and HTTPS servers here are started by [`Proc`], which passes only what a test
//! names and waits on the TCP port.
//!
//! The SDK finds its trusted certificates once per process (rustls-native-certs honours
//! `SSL_CERT_FILE`), so each HTTPS client run happens in a child process: this test binary
//! re-run on the ignored test [`tls_sdk_child`], with `SSL_CERT_FILE` set to the CA to trust.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cognate_e2e::clients::Js;
use cognate_e2e::idp::config::{BehaviorVersion, Credentials, Region};
use cognate_e2e::idp::types::{AuthFlowType, ExplicitAuthFlowsType as F, MessageActionType};
use cognate_e2e::{
    cognate_bin, expect_code, free_port, idp, ok, unique_name, Server, Signing, StoreConfig, ACCESS_KEY, IDP_PREFIX,
    PASSWORD, SECRET_KEY,
};
use serde_json::{json, Value};

const START_TIMEOUT: Duration = Duration::from_secs(15);
const CHILD_TIMEOUT: Duration = Duration::from_secs(90);

// Parameters of the child run (see `tls_sdk_child`).
const CHILD_ENDPOINT: &str = "COGNATE_E2E_CHILD_ENDPOINT";
const CHILD_POOL: &str = "COGNATE_E2E_CHILD_POOL";
const CHILD_EXPECT: &str = "COGNATE_E2E_CHILD_EXPECT";
const CHILD_RESULT: &str = "CHILD-RESULT ";

// ---------------------------------------------------------------------------
// Processes started with exactly the arguments a test names
// ---------------------------------------------------------------------------

/// A `cognate serve --listen 127.0.0.1:<port> ARGS` process, its log kept outside every
/// directory the test inspects. Killed on drop.
struct Proc {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Proc {
    /// Starts the server in `cwd` with only `env` added to an environment without `COGNATE_*`,
    /// and waits until it accepts connections.
    async fn start(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Proc {
        let log_dir = tempfile::tempdir().expect("log dir");
        let mut last = String::new();
        for attempt in 1..=5 {
            let port = free_port();
            let log = log_dir.path().join(format!("server-{attempt}.log"));
            let out = File::create(&log).expect("log file");
            let mut cmd = Command::new(cognate_bin());
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .args(args)
                .current_dir(cwd)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone log"))
                .stderr(out)
                .env("NO_COLOR", "1");
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("COGNATE_") {
                    cmd.env_remove(&key);
                }
            }
            cmd.envs(env.iter().copied());
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", cognate_bin().display()));
            match wait_listening(&mut child, port).await {
                Ok(()) => return Proc { child: Some(child), port, log, _log_dir: log_dir },
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("{e}\n--- server log ---\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                    // An early exit is a lost race for the port; anything else is not.
                    if !e.starts_with("exited") {
                        break;
                    }
                }
            }
        }
        panic!("cognate serve {args:?} did not start: {last}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as an operator stops it, and the exit status once it has finished.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let sent = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server did not stop within 15 s of SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Until the port accepts a TCP connection. Enough for HTTPS too: connections made before the
/// server serves wait in the listen backlog.
async fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("exited early with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Ours, not another test's that won the port (ours would exit on the bind error).
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("exited early with {status}"));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {START_TIMEOUT:?} waiting for port {port}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A cognito-idp client for `endpoint`, signing for `region` (or unsigned, like an app).
fn idp_client(endpoint: &str, region: &str, signed: bool) -> idp::Client {
    let mut config = idp::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .retry_config(idp::config::retry::RetryConfig::disabled())
        .timeout_config(
            idp::config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(30)).build(),
        );
    if signed {
        config = config.credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "e2e"));
    }
    idp::Client::from_conf(config.build())
}

/// The names in `dir`, for an assertion that shows what is there.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A pool with a client allowing the password flows, and a CONFIRMED user in it; returns
/// (pool id, client id, username).
async fn pool_client_and_user(admin: &idp::Client) -> (String, String, String) {
    let pool = ok(admin.create_user_pool().pool_name(unique_name("serving")).send().await)
        .user_pool
        .and_then(|p| p.id)
        .expect("pool id");
    let client = ok(admin
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("app")
        .set_explicit_auth_flows(Some(vec![
            F::AllowUserPasswordAuth,
            F::AllowAdminUserPasswordAuth,
            F::AllowRefreshTokenAuth,
        ]))
        .send()
        .await)
    .user_pool_client
    .and_then(|c| c.client_id)
    .expect("client id");
    let username = "eve".to_string();
    ok(admin
        .admin_create_user()
        .user_pool_id(&pool)
        .username(&username)
        .message_action(MessageActionType::Suppress)
        .send()
        .await);
    ok(admin
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username(&username)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    (pool, client, username)
}

/// USER_PASSWORD_AUTH, unsigned as an app sends it; returns (id token, access token).
async fn sign_in(app: &idp::Client, client: &str, username: &str) -> (String, String) {
    let out = ok(app
        .initiate_auth()
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .client_id(client)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await);
    let result = out.authentication_result.expect("tokens, not a challenge");
    (result.id_token.expect("IdToken"), result.access_token.expect("AccessToken"))
}

/// The claims of a JWT (unverified: the signature is checked by the clients under test).
fn claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// Part `index` of a JWT (0 the header, 1 the claims), decoded.
fn jwt_part(token: &str, index: usize) -> Value {
    let payload = token.split('.').nth(index).expect("a JWT");
    let mut text: String = payload
        .chars()
        .map(|c| {
            if c == '-' {
                '+'
            } else if c == '_' {
                '/'
            } else {
                c
            }
        })
        .collect();
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    let bytes = aws_smithy_types::base64::decode(&text).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

// ---------------------------------------------------------------------------
// --region
// ---------------------------------------------------------------------------

fn signed_for(region: &str) -> Signing {
    Signing::With {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        time: SystemTime::now(),
        region: region.into(),
    }
}

/// `ListUserPools` signed for `region`.
async fn list_pools(server: &Server, region: &str) -> cognate_e2e::RawResponse {
    let body = json!({"MaxResults": 60}).to_string();
    server.raw().call(&format!("{IDP_PREFIX}.ListUserPools"), &body, signed_for(region)).await
}

/// A region left out is refused as AWS refuses a credential scoped to a region it does not
/// serve: InvalidSignatureException naming the scope's region.
async fn assert_region_refused(server: &Server, region: &str) {
    let refused = list_pools(server, region).await;
    let message = refused.assert_error("InvalidSignatureException");
    assert!(
        message.contains("Credential should be scoped to a valid region") && message.contains(region),
        "{region}: {message}"
    );
}

#[tokio::test]
async fn region_flag_serves_only_the_regions_named() {
    let server = Server::sqlite_with(&["--region", "eu-west-1"]).await;
    assert_region_refused(&server, "us-east-1").await;
    assert_region_refused(&server, "us-west-2").await;
    // The real SDK, signing for a region left out, gets the same answer.
    let east = idp_client(&server.url(), "us-east-1", true);
    expect_code(east.list_user_pools().max_results(10).send().await, "InvalidSignatureException");

    let west = idp_client(&server.url(), "eu-west-1", true);
    let pool = ok(west.create_user_pool().pool_name(unique_name("west")).send().await).user_pool.expect("pool");
    let id = pool.id.expect("id");
    assert!(id.starts_with("eu-west-1_"), "{id}");
    let listed = list_pools(&server, "eu-west-1").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.json();
    let ids: Vec<&str> =
        listed["UserPools"].as_array().expect("pools").iter().filter_map(|p| p["Id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    // Unsigned calls (an app's sign-in) reach the pool of the one region served.
    let (pool, client, user) = pool_client_and_user(&west).await;
    let (id_token, _) = sign_in(&idp_client(&server.url(), "eu-west-1", false), &client, &user).await;
    assert_eq!(claims(&id_token)["iss"], format!("{}/{pool}", server.url()));
}

#[tokio::test]
async fn region_variable_is_comma_separated() {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let server =
        Server::launch_with(StoreConfig::Sqlite, dir, &[], &[("COGNATE_REGION", "ap-south-1,eu-central-1")]).await;
    for served in ["ap-south-1", "eu-central-1"] {
        let listed = list_pools(&server, served).await;
        assert_eq!(listed.status, 200, "{served}: {}", listed.body);
    }
    assert_region_refused(&server, "us-east-1").await;
}

// ---------------------------------------------------------------------------
// --ephemeral
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ephemeral_serves_everything_and_writes_nothing() {
    // The working directory (where ./.cognate would go), HOME and TMPDIR (where SQLite would
    // put temporary files) start empty and must stay so.
    let (cwd, home, tmp) =
        (tempfile::tempdir().expect("cwd"), tempfile::tempdir().expect("home"), tempfile::tempdir().expect("tmp"));
    let env = [("HOME", home.path().to_str().expect("utf-8")), ("TMPDIR", tmp.path().to_str().expect("utf-8"))];
    let mut server = Proc::start(&["--ephemeral"], &env, cwd.path()).await;
    let url = format!("http://127.0.0.1:{}", server.port);

    let admin = idp_client(&url, "us-east-1", true);
    let (pool, client, user) = pool_client_and_user(&admin).await;
    let app = idp_client(&url, "us-east-1", false);
    let (id_token, access_token) = sign_in(&app, &client, &user).await;
    assert_eq!(claims(&id_token)["cognito:username"], user.as_str());
    let me = ok(app.get_user().access_token(&access_token).send().await);
    assert_eq!(me.username(), user);
    // The signing keys live in memory too: the JWKS that verifies the token is served.
    let http = reqwest::Client::new();
    let jwks = http.get(format!("{url}/{pool}/.well-known/jwks.json")).send().await.expect("GET jwks");
    assert_eq!(jwks.status(), 200);
    let kid = jwks.json::<Value>().await.expect("jwks JSON")["keys"][0]["kid"].clone();
    assert!(!kid.is_null() && jwt_part(&id_token, 0)["kid"] == kid, "the token's kid is in the JWKS");
    // Codes still go to the outbox, which is in memory like the rest.
    let outbox = http.get(format!("{url}/_cognate/outbox")).send().await.expect("GET outbox");
    assert_eq!(outbox.status(), 200);

    let status = server.stop();
    assert!(status.success(), "graceful stop: {status}\n{}", server.log());
    for (name, dir) in [("the working directory", cwd.path()), ("HOME", home.path()), ("TMPDIR", tmp.path())] {
        assert_eq!(entries(dir), Vec::<String>::new(), "--ephemeral wrote to {name}\n{}", server.log());
    }
    assert!(server.log().contains("ephemeral=true"), "{}", server.log());

    // Nothing survives: a new ephemeral server in the same place knows no pool.
    let again = Proc::start(&["--ephemeral"], &env, cwd.path()).await;
    let admin = idp_client(&format!("http://127.0.0.1:{}", again.port), "us-east-1", true);
    expect_code(admin.describe_user_pool().user_pool_id(&pool).send().await, "ResourceNotFoundException");
    drop(again);
    assert_eq!(entries(cwd.path()), Vec::<String>::new());
}

#[tokio::test]
async fn ephemeral_takes_no_database_and_keeps_nothing_to_read() {
    let (status, out) = cognate_e2e::run_cognate_to_exit(
        &["serve", "--ephemeral", "--database-url", "postgres://127.0.0.1:1/x"],
        &[],
        Duration::from_secs(20),
    )
    .await;
    assert!(status.is_some_and(|s| !s.success()), "{out}");
    assert!(out.contains("ephemeral"), "{out}");
    let (status, out) =
        cognate_e2e::run_cognate_to_exit(&["outbox", "--ephemeral"], &[], Duration::from_secs(20)).await;
    assert!(status.is_some_and(|s| !s.success()) && out.contains("--ephemeral"), "{out}");
}

// ---------------------------------------------------------------------------
// --tls self-signed with the Rust SDK
// ---------------------------------------------------------------------------

/// What a child run reported.
fn run_child(endpoint: &str, trust: &Path, pool: Option<&str>, expect: &str) -> Value {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--ignored", "--exact", "tls_sdk_child", "--nocapture", "--test-threads", "1"])
        .env("SSL_CERT_FILE", trust)
        .env_remove("SSL_CERT_DIR")
        .env(CHILD_ENDPOINT, endpoint)
        .env(CHILD_EXPECT, expect)
        .stdin(Stdio::null());
    match pool {
        Some(pool) => cmd.env(CHILD_POOL, pool),
        None => cmd.env_remove(CHILD_POOL),
    };
    let started = Instant::now();
    let out = cmd.output().expect("run the child test");
    assert!(started.elapsed() < CHILD_TIMEOUT, "the child run took {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child run ({expect}) failed: {}\n{stdout}\n{stderr}", out.status);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(CHILD_RESULT).map(|(_, result)| result))
        .unwrap_or_else(|| panic!("the child printed no result (did the filter match?)\n{stdout}\n{stderr}"));
    serde_json::from_str(line).expect("child result JSON")
}

/// Run only by [`sdk_trusts_the_local_ca`], in a process whose `SSL_CERT_FILE` names the CA
/// to trust. With `CHILD_EXPECT=ok` it sets up (or, given `CHILD_POOL`, finds) a pool over
/// HTTPS and signs in; with `untrusted` the first call must fail to connect.
#[tokio::test]
#[ignore = "run by sdk_trusts_the_local_ca in a process of its own"]
async fn tls_sdk_child() {
    let endpoint = std::env::var(CHILD_ENDPOINT).expect("run by sdk_trusts_the_local_ca");
    let expect = std::env::var(CHILD_EXPECT).expect("CHILD_EXPECT");
    let admin = idp_client(&endpoint, "us-east-1", true);
    let result = if expect == "untrusted" {
        let err = admin.list_user_pools().max_results(1).send().await.expect_err("an untrusted certificate");
        assert!(
            matches!(err, aws_smithy_runtime_api::client::result::SdkError::DispatchFailure(_)),
            "not a connection failure: {err:?}"
        );
        json!({"refused": format!("{:?}", aws_smithy_types::error::display::DisplayErrorContext(&err))})
    } else {
        let (pool, client, user) = match std::env::var(CHILD_POOL) {
            Ok(pool) => {
                let described = ok(admin.describe_user_pool().user_pool_id(&pool).send().await);
                assert_eq!(described.user_pool.and_then(|p| p.id).as_deref(), Some(pool.as_str()));
                let clients = ok(admin.list_user_pool_clients().user_pool_id(&pool).send().await);
                let client = clients.user_pool_clients()[0].client_id().expect("client id").to_string();
                (pool, client, "eve".to_string())
            }
            Err(_) => pool_client_and_user(&admin).await,
        };
        let (id_token, _) = sign_in(&idp_client(&endpoint, "us-east-1", false), &client, &user).await;
        json!({"pool": pool, "iss": claims(&id_token)["iss"]})
    };
    // On a line of its own: the harness has written "test tls_sdk_child ... " before it.
    println!("\n{CHILD_RESULT}{result}");
}

#[tokio::test]
async fn sdk_trusts_the_local_ca() {
    let data = tempfile::tempdir().expect("data dir");
    let data_dir = data.path().to_str().expect("utf-8").to_owned();
    let cwd = tempfile::tempdir().expect("cwd");
    let args = ["--data-dir", data_dir.as_str(), "--tls", "self-signed"];
    let mut server = Proc::start(&args, &[], cwd.path()).await;
    let ca = data.path().join("ca.pem");
    let ca_pem = std::fs::read_to_string(&ca).expect("ca.pem in the data dir");
    assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"), "{ca_pem}");
    let key_pem = std::fs::read(data.path().join("ca-key.pem")).expect("ca-key.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("ca-key.pem")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the CA key is owner-only: {mode:o}");
    }

    // The name the leaf is for (localhost), and the issuer on the default https public URL.
    let endpoint = format!("https://localhost:{}", server.port);
    let first = run_child(&endpoint, &ca, None, "ok");
    let pool = first["pool"].as_str().expect("pool").to_owned();
    assert_eq!(first["iss"], format!("https://127.0.0.1:{}/{pool}", server.port));

    // A restart reuses the CA: what trusted it before still does, and the data is there.
    assert!(server.stop().success(), "{}", server.log());
    let server = Proc::start(&args, &[], cwd.path()).await;
    assert_eq!(std::fs::read_to_string(&ca).expect("ca.pem"), ca_pem, "the CA certificate was replaced");
    assert_eq!(std::fs::read(data.path().join("ca-key.pem")).expect("key"), key_pem, "the CA key was replaced");
    let endpoint = format!("https://localhost:{}", server.port);
    let again = run_child(&endpoint, &ca, Some(&pool), "ok");
    assert_eq!(again["pool"], pool.as_str());

    // An ephemeral server's CA is another one, written only where it is told; the first
    // server's certificate is not trusted by it, and its own server is.
    let other = tempfile::tempdir().expect("other");
    let other_ca = other.path().join("other-ca.pem");
    let other_cwd = tempfile::tempdir().expect("cwd");
    let ephemeral = Proc::start(
        &["--ephemeral", "--tls", "self-signed", "--tls-ca-file", other_ca.to_str().expect("utf-8")],
        &[],
        other_cwd.path(),
    )
    .await;
    assert_ne!(std::fs::read_to_string(&other_ca).expect("the ephemeral CA file"), ca_pem);
    assert_eq!(entries(other_cwd.path()), Vec::<String>::new(), "--ephemeral --tls wrote to its cwd");
    let refused = run_child(&endpoint, &other_ca, None, "untrusted");
    assert!(
        refused["refused"].as_str().is_some_and(|e| e.contains("certificate") || e.contains("Issuer")),
        "{refused}"
    );
    let own = run_child(&format!("https://127.0.0.1:{}", ephemeral.port), &other_ca, None, "ok");
    assert_eq!(own["iss"], format!("https://127.0.0.1:{}/{}", ephemeral.port, own["pool"].as_str().expect("pool")));
    assert_eq!(entries(cwd.path()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// --tls self-signed with aws-jwt-verify
// ---------------------------------------------------------------------------

/// `node tls-verify.mjs` with `input`; `ca` becomes NODE_EXTRA_CA_CERTS. Returns the result
/// object, which must say `ok`.
async fn tls_verify(js: &Js, input: &Value, ca: Option<&Path>) -> Value {
    let env: Vec<(&str, &std::ffi::OsStr)> = ca.map(|ca| ("NODE_EXTRA_CA_CERTS", ca.as_os_str())).into_iter().collect();
    js.run_with("tls-verify.mjs", input.clone(), &env).await.ok("tls-verify.mjs")
}

#[tokio::test]
async fn jwt_rsa_verifier_fetches_the_jwks_over_https() {
    let Some(js) = Js::get("jwt_rsa_verifier_fetches_the_jwks_over_https") else { return };
    const POOL: &str = "us-east-1_tlsVerify1";
    const CLIENT: &str = "tlsclient00000000000000000";
    let data = tempfile::tempdir().expect("data dir");
    let seed = data.path().join("seed.json");
    let seed_doc = json!({"UserPools": [{
        "Id": POOL,
        "PoolName": "tls",
        "Clients": [{"ClientId": CLIENT, "ClientName": "web", "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}],
        "Users": [{"Username": "tina", "Password": PASSWORD, "Attributes": {"email": "tina@example.com"}}]
    }]});
    std::fs::write(&seed, seed_doc.to_string()).expect("write the seed");
    let data_dir = data.path().join("data");
    let args = [
        "--data-dir",
        data_dir.to_str().expect("utf-8"),
        "--tls",
        "self-signed",
        "--seed",
        seed.to_str().expect("utf-8"),
    ];
    let cwd = tempfile::tempdir().expect("cwd");
    let server = Proc::start(&args, &[], cwd.path()).await;
    let base = format!("https://127.0.0.1:{}", server.port);
    let issuer = format!("{base}/{POOL}");
    let input = json!({"baseUrl": base, "poolId": POOL, "clientId": CLIENT, "username": "tina", "password": PASSWORD});

    let ca = data_dir.join("ca.pem");
    let verified = tls_verify(&js, &input, Some(&ca)).await;
    assert_eq!(verified["issuer"], issuer.as_str());
    assert_eq!(verified["discoveryIssuer"], issuer.as_str(), "{verified}");
    assert_eq!(verified["jwksUri"], format!("{issuer}/.well-known/jwks.json"), "{verified}");
    let claims = &verified["idPayload"];
    assert_eq!((&claims["iss"], &claims["aud"], &claims["token_use"]), (&json!(issuer), &json!(CLIENT), &json!("id")));
    assert_eq!(claims["cognito:username"], "tina");
    for (what, check) in verified["negative"].as_object().expect("negative checks") {
        assert_eq!(check["rejected"], true, "{what} was accepted: {verified}");
    }

    // Without the CA, Node refuses the certificate: the trust above came from ca.pem.
    let mut untrusted_input = input.clone();
    untrusted_input["expectUntrusted"] = json!(true);
    let untrusted = tls_verify(&js, &untrusted_input, None).await;
    let code = untrusted["untrusted"]["code"].as_str().unwrap_or_default().to_owned();
    assert!(
        ["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"]
            .contains(&code.as_str()),
        "{untrusted}"
    );
}
