//! Data at rest (issue 9, items 13 and 14): what a copy of the database or the data dir
//! gives an attacker.
//!
//! - Live codes and temporary passwords never reach the store in plain text: the outbox
//!   keeps them sealed under the master key (SQLite: the bytes of every file of the data dir,
//!   WAL included; PostgreSQL: the text of every row of every table), while the outbox
//!   (HTTP and `cognate outbox`) still shows them, and they still work.
//! - The data dir is created 0700 and the database, its WAL and shared-memory files and the
//!   master key file 0600; files an older version left wider are narrowed at start.
//! - The outbox keeps messages for `--outbox-retention-seconds` and at most
//!   `--outbox-max-per-pool` per pool.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cognate_e2e::idp::types::{
    AuthFlowType, ChallengeNameType, DeliveryMediumType, ExplicitAuthFlowsType, MessageActionType,
    VerifiedAttributeType,
};
use cognate_e2e::{attr, cognate_bin, free_port, ok, random_hex, App, Message, Server, StoreConfig, PASSWORD};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A pool auto-verifying email, and a client allowing USER_PASSWORD_AUTH.
async fn app(server: &Server) -> App {
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("at-rest")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await)
    .user_pool_client
    .expect("CreateUserPoolClient returned no client");
    App { pool, client: client.client_id().expect("ClientId").to_string(), secret: None }
}

/// AdminCreateUser with a verified email; sends an invitation unless `suppress`.
async fn admin_create(server: &Server, pool: &str, username: &str, email: &str, temporary: &str, suppress: bool) {
    let mut req = server
        .idp()
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .temporary_password(temporary)
        .user_attributes(attr("email", email))
        .user_attributes(attr("email_verified", "true"))
        .desired_delivery_mediums(DeliveryMediumType::Email);
    if suppress {
        req = req.message_action(MessageActionType::Suppress);
    }
    ok(req.send().await);
}

/// A temporary password no other byte sequence in the store could match by chance.
fn distinctive_password() -> String {
    format!("Tmp-{}-Zq9!", random_hex(12))
}

/// Every byte of every file under `dir`, with the file names (for messages).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read dir {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The text form of every row of every table of the server's PostgreSQL schema.
async fn pg_rows_as_text(schema: &cognate_e2e::PgSchema) -> Vec<(String, String)> {
    let (url, name) = (schema.url.clone(), schema.name.clone());
    // The blocking `postgres` client runs its own runtime: keep it off ours.
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to PostgreSQL");
        let tables: Vec<String> = client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
                 AND table_type = 'BASE TABLE'",
                &[&name],
            )
            .expect("list tables")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut rows = Vec::new();
        for table in tables {
            let sql = format!("SELECT t::text FROM \"{name}\".\"{table}\" t");
            for row in client.query(&sql, &[]).expect("read table") {
                rows.push((table.clone(), row.get::<_, String>(0)));
            }
        }
        rows
    })
    .await
    .expect("PostgreSQL task")
}

/// Asserts that no needle is anywhere in the server's store, and that `present` (stored in
/// plain text on purpose) is: proof that the search reads the real data.
async fn assert_not_at_rest(server: &Server, needles: &[String], present: &str) {
    match server.store() {
        StoreConfig::Sqlite => {
            let files = files_under(&server.serve_data_dir());
            let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
            assert!(names.iter().any(|n| n.ends_with("cognate.db-wal")), "no WAL file to search: {names:?}");
            assert!(files.iter().any(|(_, b)| contains(b, present.as_bytes())), "{present:?} not found in {names:?}");
            for (path, bytes) in &files {
                for needle in needles {
                    assert!(!contains(bytes, needle.as_bytes()), "{} holds {needle:?} in plain text", path.display());
                }
            }
        }
        StoreConfig::Postgres { schema, .. } => {
            let rows = pg_rows_as_text(schema).await;
            assert!(rows.iter().any(|(_, r)| r.contains(present)), "{present:?} not found in any row");
            for (table, row) in &rows {
                for needle in needles {
                    assert!(!row.contains(needle.as_str()), "table {table} holds {needle:?} in plain text: {row}");
                }
            }
        }
    }
}

fn only_message(messages: &[Message], what: &str) -> Message {
    assert_eq!(messages.len(), 1, "{what}: {messages:?}");
    messages[0].clone()
}

// ---------------------------------------------------------------------------
// Codes and temporary passwords at rest
// ---------------------------------------------------------------------------

/// AdminCreateUser (invitation with a temporary password), ForgotPassword and SignUp put a
/// temporary password and two live codes in the outbox. None of them, nor the message
/// texts, is anywhere in the store; the outbox (HTTP and CLI, same document) still shows
/// them; and they work: the code confirms the password reset and the sign-up, the temporary
/// password signs in.
async fn codes_and_temporary_passwords_are_sealed_at_rest(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    let tag = random_hex(4);
    let (invited, forgetful, newcomer) = (format!("invited-{tag}"), format!("forgetful-{tag}"), format!("new-{tag}"));
    let forgetful_email = format!("{forgetful}@example.com");

    let temporary = distinctive_password();
    admin_create(server, &pool, &invited, &format!("{invited}@example.com"), &temporary, false).await;
    admin_create(server, &pool, &forgetful, &forgetful_email, &distinctive_password(), true).await;
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username(&forgetful)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    ok(server.idp_anonymous().forgot_password().client_id(&app.client).username(&forgetful).send().await);
    ok(server
        .idp_anonymous()
        .sign_up()
        .client_id(&app.client)
        .username(&newcomer)
        .password(PASSWORD)
        .user_attributes(attr("email", &format!("{newcomer}@example.com")))
        .send()
        .await);

    // The outbox shows the plain messages.
    let invitation = only_message(&server.outbox(&pool, &invited).await, "invitation");
    assert!(invitation.body.contains(&temporary), "{invitation:?}");
    assert!(invitation.body.contains(&invited), "{invitation:?}");
    assert_eq!(invitation.subject.as_deref(), Some("Your temporary password"));
    let reset = only_message(&server.outbox(&pool, &forgetful).await, "reset");
    let reset_code = reset.code.clone().expect("reset code");
    assert!(reset_code.len() == 6 && reset_code.bytes().all(|b| b.is_ascii_digit()), "{reset:?}");
    assert_eq!(reset.body, format!("Your password reset code is {reset_code}. "));
    assert_eq!(reset.destination, forgetful_email);
    let signup = only_message(&server.outbox(&pool, &newcomer).await, "sign-up");
    let signup_code = signup.code.clone().expect("sign-up code");
    assert_eq!(signup.body, format!("Your verification code is {signup_code}. "));
    // `cognate outbox` answers the same document as HTTP.
    for user in [&invited, &forgetful, &newcomer] {
        let (cli, _) = server.cli_outbox(&pool, user).await;
        assert_eq!(cli, server.outbox(&pool, user).await, "cognate outbox for {user}");
    }

    // Nothing of it is stored in plain text (the codes are looked for with their text around
    // them: six digits alone also occur in timestamps).
    let needles = vec![
        temporary.clone(),
        invitation.body.clone(),
        reset.body.clone(),
        signup.body.clone(),
        format!("code is {reset_code}"),
        format!("code is {signup_code}"),
    ];
    assert_not_at_rest(server, &needles, &forgetful_email).await;

    // And they work.
    ok(server
        .idp_anonymous()
        .confirm_forgot_password()
        .client_id(&app.client)
        .username(&forgetful)
        .confirmation_code(&reset_code)
        .password("N3w-Passw0rd!")
        .send()
        .await);
    let signed_in = ok(server
        .idp_anonymous()
        .initiate_auth()
        .client_id(&app.client)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", &forgetful)
        .auth_parameters("PASSWORD", "N3w-Passw0rd!")
        .send()
        .await);
    assert!(signed_in.authentication_result().is_some(), "the new password signs in");
    ok(server
        .idp_anonymous()
        .confirm_sign_up()
        .client_id(&app.client)
        .username(&newcomer)
        .confirmation_code(&signup_code)
        .send()
        .await);
    assert_eq!(server.user_status(&pool, &newcomer).await, "CONFIRMED");
    let challenge = ok(server
        .idp_anonymous()
        .initiate_auth()
        .client_id(&app.client)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", &invited)
        .auth_parameters("PASSWORD", &temporary)
        .send()
        .await);
    assert_eq!(challenge.challenge_name(), Some(&ChallengeNameType::NewPasswordRequired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_codes_and_temporary_passwords_are_sealed_at_rest() {
    let server = Server::sqlite().await;
    codes_and_temporary_passwords_are_sealed_at_rest(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_codes_and_temporary_passwords_are_sealed_at_rest() {
    let Some(server) = Server::postgres().await else {
        return;
    };
    codes_and_temporary_passwords_are_sealed_at_rest(&server).await;
}

/// Codes stay verifiable across a restart (the code hash key is derived from the master
/// key, which the restarted server loads again), and the outbox still opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sealed_outbox_and_code_hashes_survive_a_restart() {
    let mut server = Server::sqlite().await;
    let app = app(&server).await;
    let user = format!("later-{}", random_hex(4));
    admin_create(&server, &app.pool, &user, &format!("{user}@example.com"), &distinctive_password(), true).await;
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(&app.pool)
        .username(&user)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    ok(server.idp_anonymous().forgot_password().client_id(&app.client).username(&user).send().await);
    let before = server.outbox(&app.pool, &user).await;
    server.restart().await;
    assert_eq!(server.outbox(&app.pool, &user).await, before);
    let code = before[0].code.clone().expect("code");
    ok(server
        .idp_anonymous()
        .confirm_forgot_password()
        .client_id(&app.client)
        .username(&user)
        .confirmation_code(&code)
        .password("N3w-Passw0rd!")
        .send()
        .await);
}

// ---------------------------------------------------------------------------
// File modes
// ---------------------------------------------------------------------------

/// A `cognate serve` process on a data dir of the test's choosing (the harness's
/// [`Server`] creates its data dir itself). Killed on drop.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    async fn start(data_dir: &Path, log: &Path) -> Serve {
        let port = free_port();
        let log_file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(cognate_bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file)
            .env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("COGNATE_") {
                cmd.env_remove(&key);
            }
        }
        let mut child = cmd.spawn().expect("spawn cognate");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("cognate exited with {status}: {}", std::fs::read_to_string(log).unwrap_or_default());
            }
            if let Ok(resp) = http.get(format!("{url}/health")).send().await {
                if resp.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "cognate did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Serve { child, url }
    }

    fn idp(&self) -> cognate_e2e::idp::Client {
        use aws_credential_types::provider::SharedCredentialsProvider;
        use aws_credential_types::Credentials;
        use cognate_e2e::{BehaviorVersion, Region, SdkConfig};
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static(cognate_e2e::REGION))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                cognate_e2e::ACCESS_KEY,
                cognate_e2e::SECRET_KEY,
                None,
                None,
                "e2e",
            )))
            .endpoint_url(&self.url)
            .build();
        cognate_e2e::idp::Client::new(&config)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Writes through the server, so that SQLite has its WAL and shared-memory files.
async fn write_something(serve: &Serve) {
    let pool = ok(serve.idp().create_user_pool().pool_name(format!("modes-{}", random_hex(4))).send().await)
        .user_pool
        .and_then(|p| p.id)
        .expect("pool id");
    ok(serve
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("someone")
        .message_action(MessageActionType::Suppress)
        .send()
        .await);
}

/// The data dir (and the missing parents `cognate serve` creates for it) is 0700, the
/// database, its -wal and -shm files and the generated master key 0600, whatever the umask
/// would give; after a restart, files an older version left readable are narrowed again.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_data_dir_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::Builder::new().prefix("cognate-e2e-modes-").tempdir().expect("temp dir");
    let parent = root.path().join("nested");
    let data = parent.join("data");
    let files = ["cognate.db", "cognate.db-wal", "cognate.db-shm", "master.key"].map(|f| data.join(f));
    {
        let serve = Serve::start(&data, &root.path().join("serve-1.log")).await;
        write_something(&serve).await;
        assert_eq!(mode(&data), 0o700, "data dir");
        assert_eq!(mode(&parent), 0o700, "created parent");
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        // Nothing else in the data dir is open to others either.
        for entry in std::fs::read_dir(&data).expect("read data dir") {
            let path = entry.expect("entry").path();
            assert_eq!(mode(&path) & 0o077, 0, "{} is open to others", path.display());
        }
    }
    // As an older version would have left them.
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let serve = Serve::start(&data, &root.path().join("serve-2.log")).await;
    write_something(&serve).await;
    for f in &files {
        assert_eq!(mode(f), 0o600, "{} after a restart", f.display());
    }
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

/// Long enough for the first part of the test to run within it on a loaded machine.
const RETENTION_SECONDS: u64 = 5;
const RETENTION: &[&str] = &["--outbox-retention-seconds", "5", "--outbox-max-per-pool", "3"];

async fn invite(server: &Server, pool: &str, username: &str) {
    admin_create(server, pool, username, &format!("{username}@example.com"), &distinctive_password(), false).await;
}

async fn pool_outbox(server: &Server, pool: &str) -> Vec<String> {
    let messages = server.outbox_query(&format!("pool={pool}")).await;
    messages.into_iter().map(|m| m.username).collect()
}

/// With a count limit of 3 per pool, a pool keeps its newest three messages (another
/// pool's are not touched); with a retention of 5 s, a message written later removes every
/// older message, of any pool, from the store.
async fn outbox_keeps_messages_for_a_bounded_time_and_count(server: &Server) {
    let busy = server.new_pool(|p| p).await;
    let quiet = server.new_pool(|p| p).await;
    let started = Instant::now();
    invite(server, &quiet, "q1").await;
    for i in 1..=5 {
        invite(server, &busy, &format!("u{i}")).await;
    }
    assert!(started.elapsed() < Duration::from_secs(RETENTION_SECONDS), "too slow to test the count limit alone");
    assert_eq!(pool_outbox(server, &busy).await, ["u3", "u4", "u5"]);
    assert_eq!(pool_outbox(server, &quiet).await, ["q1"]);

    tokio::time::sleep(Duration::from_secs(RETENTION_SECONDS) + Duration::from_millis(300)).await;
    invite(server, &busy, "u6").await;
    assert_eq!(pool_outbox(server, &busy).await, ["u6"]);
    assert!(pool_outbox(server, &quiet).await.is_empty(), "the quiet pool's old message is gone too");
    if let StoreConfig::Postgres { schema, .. } = server.store() {
        let outbox_rows = pg_rows_as_text(schema).await.into_iter().filter(|(t, _)| t == "outbox").count();
        assert_eq!(outbox_rows, 1, "pruned rows are deleted, not hidden");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outbox_keeps_messages_for_a_bounded_time_and_count() {
    let server = Server::sqlite_with(RETENTION).await;
    outbox_keeps_messages_for_a_bounded_time_and_count(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_keeps_messages_for_a_bounded_time_and_count() {
    let Some(server) = Server::postgres_with(RETENTION).await else {
        return;
    };
    outbox_keeps_messages_for_a_bounded_time_and_count(&server).await;
}

/// Zero would empty the outbox as it is written: refused at start, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_retention_settings_are_refused() {
    for (flag, key) in
        [("--outbox-retention-seconds", "outbox_retention_seconds"), ("--outbox-max-per-pool", "outbox_max_per_pool")]
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data").display().to_string();
        let (status, out) = cognate_e2e::run_cognate_to_exit(
            &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data, flag, "0"],
            &[],
            Duration::from_secs(15),
        )
        .await;
        assert!(status.is_some_and(|s| !s.success()), "{flag} 0 was accepted: {out}");
        assert!(out.contains(key), "{flag} 0: {out}");
    }
}

/// An identity provider's client secret is sealed at rest; DescribeIdentityProvider shows it.
async fn identity_provider_secrets_are_sealed_at_rest(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let secret = format!("idp-secret-{}", distinctive_password());
    let details = [
        ("client_id", "upstream-client"),
        ("client_secret", secret.as_str()),
        ("authorize_scopes", "openid"),
        ("oidc_issuer", "https://idp.example.com"),
    ];
    let mut create = server
        .idp()
        .create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Upstream")
        .provider_type(cognate_e2e::idp::types::IdentityProviderTypeType::Oidc);
    for (key, value) in details {
        create = create.provider_details(key, value);
    }
    ok(create.send().await);
    let described =
        ok(server.idp().describe_identity_provider().user_pool_id(&pool).provider_name("Upstream").send().await);
    let shown = described.identity_provider().and_then(|p| p.provider_details()).and_then(|d| d.get("client_secret"));
    assert_eq!(shown, Some(&secret), "DescribeIdentityProvider shows the secret");
    assert_not_at_rest(server, &[secret], "upstream-client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_identity_provider_secrets_are_sealed_at_rest() {
    let server = Server::sqlite().await;
    identity_provider_secrets_are_sealed_at_rest(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_identity_provider_secrets_are_sealed_at_rest() {
    let Some(server) = Server::postgres().await else {
        return;
    };
    identity_provider_secrets_are_sealed_at_rest(&server).await;
}
