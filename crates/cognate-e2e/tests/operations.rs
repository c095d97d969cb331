//! Operating the server: seed files and `cognate export`, Prometheus metrics,
//! start-up errors and graceful shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cognate_e2e::idp::types::{AuthFlowType, ExplicitAuthFlowsType};
use cognate_e2e::{
    base64, cognate_bin, free_port, ok, random_bytes, secret_hash, sorted, Server, StoreConfig, IDENTITY_PREFIX,
    IDP_PREFIX, PASSWORD,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Local helpers: running `cognate` with stdout and stderr kept apart
// ---------------------------------------------------------------------------

/// How long a failing start may take at most.
const QUICK: Duration = Duration::from_secs(5);

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("cognate-ops-").tempdir().expect("temp dir")
}

/// A `cognate` command with no `COGNATE_*` variable from the environment.
fn cognate_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(cognate_bin());
    cmd.args(args).stdin(Stdio::null()).env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("COGNATE_") {
            cmd.env_remove(&key);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The outcome of a `cognate` run that had to end by itself.
#[derive(Debug)]
struct Exit {
    /// `None` when it was still running at the deadline (and was killed).
    status: Option<ExitStatus>,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

/// Run `cognate` with these arguments, waiting at most `timeout` for it to
/// exit by itself.
async fn run_to_exit(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Exit {
    let dir = tempdir();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = cognate_command(args, env);
    cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn cognate");
    let status = wait_exit(&mut child, timeout).await;
    let elapsed = start.elapsed();
    Exit {
        status,
        elapsed,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Wait for a child to exit, killing it after `timeout` (then `None`).
async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a line of stderr is an ordinary log line (`2026-...Z  INFO ...`).
fn is_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

/// Assert `cognate` failed quickly with a non-zero status and exactly one
/// `cognate: error: ...` line (the last one; anything before it is log
/// lines), and return that line.
#[track_caller]
fn assert_start_error(what: &str, exit: &Exit) -> String {
    let status = exit.status.unwrap_or_else(|| panic!("{what}: cognate was still running after {QUICK:?}: {exit:?}"));
    assert!(!status.success(), "{what}: cognate exited successfully: {exit:?}");
    assert!(status.code().is_some(), "{what}: cognate died of a signal instead of exiting: {exit:?}");
    assert!(exit.elapsed < QUICK, "{what}: cognate took {:?} to fail", exit.elapsed);
    let lines: Vec<&str> = exit.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("cognate: error: ")).collect();
    assert_eq!(errors.len(), 1, "{what}: expected exactly one `cognate: error:` line on stderr: {:?}", exit.stderr);
    assert_eq!(lines.last(), errors.first(), "{what}: the error is not the last line of stderr: {:?}", exit.stderr);
    for line in &lines[..lines.len() - 1] {
        assert!(is_log_line(line), "{what}: stray (multi-line?) output on stderr: {line:?} in {:?}", exit.stderr);
    }
    assert!(!exit.stdout.contains("error"), "{what}: the error should go to stderr only, stdout was {:?}", exit.stdout);
    let line = errors[0].to_string();
    assert!(line.len() > "cognate: error: ".len() + 10, "{what}: the error message says nothing: {line:?}");
    line
}

/// `cognate export --data-dir DIR [--with-secrets]`, which must succeed;
/// returns its standard output.
async fn export(data_dir: &Path, with_secrets: bool) -> String {
    let dir = data_dir.to_str().expect("utf-8 path");
    let mut args = vec!["export", "--data-dir", dir];
    if with_secrets {
        args.push("--with-secrets");
    }
    let exit = run_to_exit(&args, &[], Duration::from_secs(30)).await;
    assert!(
        exit.status.is_some_and(|s| s.success()),
        "cognate {args:?} failed: {:?} stderr {:?}",
        exit.status,
        exit.stderr
    );
    exit.stdout
}

/// Every object key anywhere in a JSON document.
fn all_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                all_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------
// 1. Seed files and export
// ---------------------------------------------------------------------------

const POOL: &str = "us-east-1_opsTeam1";
const SECRET_CLIENT: &str = "webclient0000000000000000a";
const SECRET: &str = "fixedsecret0fixedsecret0fixedsecret0fixedsecret0abc";
const PUBLIC_CLIENT: &str = "spaclient0000000000000000b";
const IDENTITY_POOL: &str = "us-east-1:0c0ffee0-0000-4000-8000-000000000001";
const ALICE_PASSWORD: &str = "Corr3ct-horse!";

fn seed_document() -> Value {
    json!({
        "UserPools": [{
            "Id": POOL,
            "PoolName": "team",
            "AutoVerifiedAttributes": ["email"],
            "UserPoolTags": {"env": "e2e"},
            "Clients": [
                {
                    "ClientId": SECRET_CLIENT,
                    "ClientName": "web",
                    "ClientSecret": SECRET,
                    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
                },
                {
                    "ClientId": PUBLIC_CLIENT,
                    "ClientName": "spa",
                    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
                }
            ],
            "Groups": [
                {"GroupName": "admins", "Precedence": 1, "Description": "the admins"},
                {"GroupName": "readers", "Precedence": 5}
            ],
            "Users": [
                {
                    "Username": "alice",
                    "Password": ALICE_PASSWORD,
                    "Groups": ["admins", "readers"],
                    "Attributes": {"email": "alice@example.com", "email_verified": "true", "given_name": "Alice"}
                },
                {
                    "Username": "bob",
                    "Groups": ["readers"],
                    "Attributes": {"email": "bob@example.com"}
                },
                {
                    "Username": "carol",
                    "Password": PASSWORD,
                    "Enabled": false,
                    "Attributes": {"email": "carol@example.com"}
                }
            ]
        }],
        "IdentityPools": [{
            "IdentityPoolId": IDENTITY_POOL,
            "IdentityPoolName": "team_ids",
            "AllowUnauthenticatedIdentities": false
        }]
    })
}

/// USER_PASSWORD_AUTH through an app client; returns the access token.
async fn password_sign_in(server: &Server, client: &str, secret: Option<&str>, user: &str, password: &str) -> String {
    let mut req = server
        .idp_anonymous()
        .initiate_auth()
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .client_id(client)
        .auth_parameters("USERNAME", user)
        .auth_parameters("PASSWORD", password);
    if let Some(secret) = secret {
        req = req.auth_parameters("SECRET_HASH", secret_hash(user, client, secret));
    }
    let out = ok(req.send().await);
    assert!(out.challenge_name().is_none(), "unexpected challenge {:?} for {user}", out.challenge_name());
    let result = out.authentication_result().expect("AuthenticationResult");
    assert!(result.id_token().is_some_and(|t| !t.is_empty()), "no IdToken for {user}");
    result.access_token().expect("AccessToken").to_string()
}

/// The observable state of the seeded pool, as raw JSON answers.
async fn snapshot(server: &Server) -> BTreeMap<&'static str, Value> {
    let raw = server.raw();
    let mut out = BTreeMap::new();
    let calls: [(&'static str, &str, Value); 7] = [
        ("DescribeUserPool", IDP_PREFIX, json!({"UserPoolId": POOL})),
        ("ListUsers", IDP_PREFIX, json!({"UserPoolId": POOL})),
        ("ListGroups", IDP_PREFIX, json!({"UserPoolId": POOL})),
        ("ListUserPoolClients", IDP_PREFIX, json!({"UserPoolId": POOL, "MaxResults": 60})),
        ("DescribeUserPoolClient", IDP_PREFIX, json!({"UserPoolId": POOL, "ClientId": SECRET_CLIENT})),
        ("ListUsersInGroup", IDP_PREFIX, json!({"UserPoolId": POOL, "GroupName": "readers"})),
        ("DescribeIdentityPool", IDENTITY_PREFIX, json!({"IdentityPoolId": IDENTITY_POOL})),
    ];
    for (op, prefix, body) in calls {
        let resp = if prefix == IDP_PREFIX { raw.idp(op, body).await } else { raw.identity(op, body).await };
        assert_eq!(resp.status, 200, "{op} failed: {}", resp.body);
        out.insert(op, resp.json());
    }
    out
}

async fn assert_seeded_state(server: &Server) {
    let idp = server.idp();

    // The pool, with its fixed id.
    let pool = ok(idp.describe_user_pool().user_pool_id(POOL).send().await).user_pool.expect("UserPool");
    assert_eq!(pool.id(), Some(POOL));
    assert_eq!(pool.name(), Some("team"));
    assert_eq!(
        pool.auto_verified_attributes().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        ["email"],
        "AutoVerifiedAttributes of the seeded pool"
    );
    assert_eq!(pool.user_pool_tags().and_then(|t| t.get("env")).map(String::as_str), Some("e2e"));
    let pools = ok(idp.list_user_pools().max_results(60).send().await);
    let ids: Vec<&str> = pools.user_pools().iter().filter_map(|p| p.id()).collect();
    assert_eq!(ids, [POOL], "exactly the seeded pool exists");

    // The clients, with fixed ids and the fixed secret.
    let web = ok(idp.describe_user_pool_client().user_pool_id(POOL).client_id(SECRET_CLIENT).send().await)
        .user_pool_client
        .expect("UserPoolClient");
    assert_eq!(web.client_id(), Some(SECRET_CLIENT));
    assert_eq!(web.client_name(), Some("web"));
    assert_eq!(web.user_pool_id(), Some(POOL));
    assert_eq!(web.client_secret(), Some(SECRET), "the fixed client secret");
    let mut flows: Vec<&str> = web.explicit_auth_flows().iter().map(|f| f.as_str()).collect();
    flows.sort();
    assert_eq!(flows, ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]);
    let spa = ok(idp.describe_user_pool_client().user_pool_id(POOL).client_id(PUBLIC_CLIENT).send().await)
        .user_pool_client
        .expect("UserPoolClient");
    assert_eq!(spa.client_name(), Some("spa"));
    assert_eq!(spa.client_secret(), None, "a seeded client without ClientSecret has no secret");
    assert!(spa.explicit_auth_flows().contains(&ExplicitAuthFlowsType::AllowUserSrpAuth));

    // The groups.
    let groups = ok(idp.list_groups().user_pool_id(POOL).send().await);
    let mut groups: Vec<(String, Option<i32>, Option<String>)> = groups
        .groups()
        .iter()
        .map(|g| (g.group_name().unwrap_or_default().to_string(), g.precedence(), g.description().map(str::to_string)))
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [("admins".to_string(), Some(1), Some("the admins".to_string())), ("readers".to_string(), Some(5), None)]
    );

    // The users.
    assert_eq!(server.usernames(POOL).await, ["alice", "bob", "carol"]);
    let alice = server.get_user(POOL, "alice").await;
    assert_eq!(alice.user_status().map(|s| s.as_str()), Some("CONFIRMED"), "alice has a password");
    assert!(alice.enabled());
    let attrs = alice.user_attributes();
    assert_eq!(cognate_e2e::attr_of(attrs, "email"), Some("alice@example.com"));
    assert_eq!(cognate_e2e::attr_of(attrs, "email_verified"), Some("true"));
    assert_eq!(cognate_e2e::attr_of(attrs, "given_name"), Some("Alice"));
    assert!(cognate_e2e::attr_of(attrs, "sub").is_some_and(cognate_e2e::is_uuid), "alice has a sub: {attrs:?}");
    assert_eq!(server.user_status(POOL, "bob").await, "FORCE_CHANGE_PASSWORD", "bob has no password");
    let carol = server.get_user(POOL, "carol").await;
    assert!(!carol.enabled(), "carol is seeded with Enabled: false");
    assert_eq!(carol.user_status().map(|s| s.as_str()), Some("CONFIRMED"));

    // The memberships, both ways.
    for (user, expected) in [("alice", vec!["admins", "readers"]), ("bob", vec!["readers"]), ("carol", vec![])] {
        let out = ok(idp.admin_list_groups_for_user().user_pool_id(POOL).username(user).send().await);
        let names: Vec<&str> = out.groups().iter().filter_map(|g| g.group_name()).collect();
        assert_eq!(sorted(&names), expected, "groups of {user}");
    }
    let out = ok(idp.list_users_in_group().user_pool_id(POOL).group_name("readers").send().await);
    let names: Vec<&str> = out.users().iter().filter_map(|u| u.username()).collect();
    assert_eq!(sorted(&names), ["alice", "bob"]);

    // Sign-in with the seeded password, through both clients.
    password_sign_in(server, SECRET_CLIENT, Some(SECRET), "alice", ALICE_PASSWORD).await;
    password_sign_in(server, PUBLIC_CLIENT, None, "alice", ALICE_PASSWORD).await;
    // Without the SECRET_HASH the secret client refuses.
    cognate_e2e::expect_code(
        server
            .idp_anonymous()
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(SECRET_CLIENT)
            .auth_parameters("USERNAME", "alice")
            .auth_parameters("PASSWORD", ALICE_PASSWORD)
            .send()
            .await,
        "NotAuthorizedException",
    );
    // A disabled user cannot sign in.
    cognate_e2e::expect_code(
        server
            .idp_anonymous()
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(PUBLIC_CLIENT)
            .auth_parameters("USERNAME", "carol")
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await,
        "NotAuthorizedException",
    );

    // The identity pool, with its fixed id.
    let ip = ok(server.identity().describe_identity_pool().identity_pool_id(IDENTITY_POOL).send().await);
    assert_eq!(ip.identity_pool_id(), IDENTITY_POOL);
    assert_eq!(ip.identity_pool_name(), "team_ids");
    assert!(!ip.allow_unauthenticated_identities());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_creates_everything_and_export_round_trips() {
    let files = tempdir();
    let seed = write_file(files.path(), "seed.json", &serde_json::to_string_pretty(&seed_document()).unwrap());
    let home = Arc::new(tempdir());
    let mut server = Server::launch_with(StoreConfig::Sqlite, home.clone(), &["--seed", path_str(&seed)], &[]).await;
    let data_dir = server.serve_data_dir();

    assert_seeded_state(&server).await;
    let before = snapshot(&server).await;

    // Export while the server runs: SQLite allows a concurrent reader.
    let live = export(&data_dir, true).await;
    let live_json: Value =
        serde_json::from_str(&live).unwrap_or_else(|e| panic!("cognate export is not JSON ({e}): {live}"));
    let pools = live_json["UserPools"].as_array().expect("UserPools array in the export");
    assert_eq!(pools.len(), 1, "{live}");
    let pool = &pools[0];
    assert_eq!(pool["Id"], POOL);
    assert_eq!(pool["PoolName"], "team");
    let clients = pool["Clients"].as_array().expect("Clients");
    let web = clients.iter().find(|c| c["ClientId"] == SECRET_CLIENT).expect("the web client in the export");
    assert_eq!(web["ClientSecret"], SECRET, "--with-secrets exports the secret: {web}");
    let spa = clients.iter().find(|c| c["ClientId"] == PUBLIC_CLIENT).expect("the spa client in the export");
    assert!(spa.get("ClientSecret").is_none_or(Value::is_null), "the spa client has no secret: {spa}");
    let users = pool["Users"].as_array().expect("Users");
    let mut usernames: Vec<&str> = users.iter().filter_map(|u| u["Username"].as_str()).collect();
    usernames.sort();
    assert_eq!(usernames, ["alice", "bob", "carol"]);
    let alice = users.iter().find(|u| u["Username"] == "alice").unwrap();
    assert!(alice.get("Password").is_none(), "passwords are never exported: {alice}");
    assert_eq!(alice["Attributes"]["email"], "alice@example.com");
    let mut alice_groups: Vec<&str> =
        alice["Groups"].as_array().expect("alice's Groups").iter().filter_map(Value::as_str).collect();
    alice_groups.sort();
    assert_eq!(alice_groups, ["admins", "readers"]);
    let carol = users.iter().find(|u| u["Username"] == "carol").unwrap();
    assert_eq!(carol["Enabled"], false, "a disabled user is exported as disabled: {carol}");
    assert!(!live.contains(ALICE_PASSWORD) && !live.contains(PASSWORD), "a password leaked into the export");
    let ip = &live_json["IdentityPools"].as_array().expect("IdentityPools")[0];
    assert_eq!(ip["IdentityPoolId"], IDENTITY_POOL);
    assert_eq!(ip["IdentityPoolName"], "team_ids");

    // Without --with-secrets no secret appears at all.
    let plain = export(&data_dir, false).await;
    let plain_json: Value = serde_json::from_str(&plain).expect("export without secrets is JSON");
    let mut keys = Vec::new();
    all_keys(&plain_json, &mut keys);
    assert!(!keys.iter().any(|k| k == "ClientSecret"), "ClientSecret without --with-secrets: {plain}");
    assert!(!plain.contains(SECRET), "the secret leaked without --with-secrets");
    assert_eq!(plain_json["UserPools"][0]["Id"], POOL);

    // Export with the server stopped, then start again on the same data dir
    // seeded with that export: nothing changes.
    server.stop();
    let stopped = export(&data_dir, true).await;
    let stopped_json: Value = serde_json::from_str(&stopped).expect("export is JSON");
    assert_eq!(stopped_json, live_json, "the export changed between a running and a stopped server");
    let exported = write_file(files.path(), "export.json", &stopped);
    drop(server);
    let server = Server::launch_with(StoreConfig::Sqlite, home.clone(), &["--seed", path_str(&exported)], &[]).await;
    let after = snapshot(&server).await;
    for (op, value) in &before {
        assert_eq!(&after[op], value, "{op} changed after re-seeding with the export");
    }
    assert_seeded_state(&server).await;
    let again = export(&data_dir, true).await;
    assert_eq!(again, stopped, "a second export is not byte-identical to the first");

    // The export is a whole environment: it seeds a fresh data dir to the
    // same state (users without their passwords).
    let fresh = Server::sqlite_with(&["--seed", path_str(&exported)]).await;
    let copy = export(&fresh.serve_data_dir(), true).await;
    assert_eq!(
        serde_json::from_str::<Value>(&copy).expect("export is JSON"),
        stopped_json,
        "seeding a fresh data dir with an export does not reproduce it"
    );
    let web = ok(fresh.idp().describe_user_pool_client().user_pool_id(POOL).client_id(SECRET_CLIENT).send().await)
        .user_pool_client
        .unwrap();
    assert_eq!(web.client_secret(), Some(SECRET));
    assert_eq!(fresh.user_status(POOL, "alice").await, "FORCE_CHANGE_PASSWORD", "the export has no passwords");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_leaves_what_exists_on_restart() {
    let files = tempdir();
    let seed = write_file(files.path(), "seed.json", &seed_document().to_string());
    let mut server = Server::sqlite_with(&["--seed", path_str(&seed)]).await;
    let idp = server.idp();
    // Change what the seed created: a restart with the same seed keeps it.
    ok(idp
        .admin_update_user_attributes()
        .user_pool_id(POOL)
        .username("alice")
        .user_attributes(cognate_e2e::attr("given_name", "Alicia"))
        .send()
        .await);
    ok(idp
        .admin_set_user_password()
        .user_pool_id(POOL)
        .username("alice")
        .password("N3w-password!")
        .permanent(true)
        .send()
        .await);
    ok(idp.update_group().user_pool_id(POOL).group_name("readers").description("changed").send().await);
    let before = snapshot(&server).await;
    server.restart().await;
    let after = snapshot(&server).await;
    for (op, value) in &before {
        assert_eq!(&after[op], value, "{op} changed after a restart with the same seed");
    }
    assert_eq!(server.usernames(POOL).await, ["alice", "bob", "carol"], "no duplicate users");
    let alice = server.get_user(POOL, "alice").await;
    assert_eq!(cognate_e2e::attr_of(alice.user_attributes(), "given_name"), Some("Alicia"));
    password_sign_in(&server, PUBLIC_CLIENT, None, "alice", "N3w-password!").await;
    cognate_e2e::expect_code(
        server
            .idp_anonymous()
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(PUBLIC_CLIENT)
            .auth_parameters("USERNAME", "alice")
            .auth_parameters("PASSWORD", ALICE_PASSWORD)
            .send()
            .await,
        "NotAuthorizedException",
    );
}

/// Start `cognate serve --seed` with this seed text on a fresh data dir: it
/// must fail at once naming every needle (case-insensitively).
async fn assert_seed_rejected(what: &str, name: &str, text: &str, needles: &[&str]) {
    let files = tempdir();
    let seed = write_file(files.path(), name, text);
    let data = tempdir();
    let listen = format!("127.0.0.1:{}", free_port());
    let exit = run_to_exit(
        &["serve", "--listen", &listen, "--data-dir", path_str(data.path()), "--seed", path_str(&seed)],
        &[],
        QUICK,
    )
    .await;
    let line = assert_start_error(what, &exit);
    for needle in needles {
        assert!(
            line.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: the error does not name {needle:?}: {line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_seeds_stop_the_start() {
    assert_seed_rejected("bad JSON", "bad-json.json", "{\"UserPools\": [", &["bad-json.json"]).await;
    assert_seed_rejected(
        "unknown top-level key",
        "seed.json",
        &json!({"UserPools": [], "Bogus": 1}).to_string(),
        &["Bogus"],
    )
    .await;
    let weak = json!({"UserPools": [{
        "Id": "us-east-1_weakPool1", "PoolName": "weak",
        "Users": [{"Username": "weakling", "Password": "short"}]
    }]});
    assert_seed_rejected("password against the policy", "seed.json", &weak.to_string(), &["weakling", "password"])
        .await;
}

/// A membership of a group the seed does not create stops the start, and the
/// message says which user and which group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_error_names_the_missing_group() {
    let unknown_group = json!({"UserPools": [{
        "Id": "us-east-1_grpPool1", "PoolName": "grp",
        "Groups": [{"GroupName": "real-group"}],
        "Users": [{"Username": "member", "Groups": ["real-group", "no-such-group"]}]
    }]});
    assert_seed_rejected(
        "membership of a missing group",
        "seed.json",
        &unknown_group.to_string(),
        &["member", "no-such-group"],
    )
    .await;
}

/// A typo inside an entry (`Pasword`, `Precednce`, ...) must not be silently
/// dropped: the top level rejects unknown keys, and so should every level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rejects_unknown_keys_inside_entries() {
    let user_typo = json!({"UserPools": [{
        "Id": "us-east-1_typoPool1", "PoolName": "typo",
        "Users": [{"Username": "typo", "Pasword": "Passw0rd!!"}]
    }]});
    assert_seed_rejected("unknown key in a user", "seed.json", &user_typo.to_string(), &["Pasword"]).await;
    let group_typo = json!({"UserPools": [{
        "Id": "us-east-1_typoPool2", "PoolName": "typo",
        "Groups": [{"GroupName": "g", "Precednce": 3}]
    }]});
    assert_seed_rejected("unknown key in a group", "seed.json", &group_typo.to_string(), &["Precednce"]).await;
    let pool_typo =
        json!({"UserPools": [{"Id": "us-east-1_typoPool3", "PoolName": "typo", "AutoVerifiedAttribute": ["email"]}]});
    assert_seed_rejected("unknown key in a user pool", "seed.json", &pool_typo.to_string(), &["AutoVerifiedAttribute"])
        .await;
}

// ---------------------------------------------------------------------------
// 2. Metrics
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Metrics {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parse Prometheus text exposition format (strictly enough for tests).
    fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("bad HELP line {line:?}"));
                assert!(!help.trim().is_empty(), "empty HELP for {name}");
                assert!(m.helps.insert(name.to_string(), help.to_string()).is_none(), "HELP twice for {name}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "unknown metric type in {line:?}"
                );
                assert!(
                    !m.samples.iter().any(|s| family_of(&s.name) == name),
                    "TYPE of {name} comes after its samples"
                );
                assert!(m.types.insert(name.to_string(), kind.to_string()).is_none(), "TYPE twice for {name}");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            m.samples.push(parse_sample(line));
        }
        for s in &m.samples {
            let family = family_of(&s.name);
            let kind = m.types.get(family).unwrap_or_else(|| panic!("sample {} has no # TYPE", s.name));
            if s.name != family {
                assert_eq!(kind, "histogram", "{} is suffixed but {family} is a {kind}", s.name);
            }
            assert!(m.helps.contains_key(family), "sample {} has no # HELP", s.name);
        }
        m
    }

    /// The value of the sample with exactly these labels (0 when absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let found: Vec<&Sample> = self.samples.iter().filter(|s| s.name == name && s.labels == want).collect();
        assert!(found.len() <= 1, "duplicate series {name}{want:?}");
        found.first().map(|s| s.value).unwrap_or(0.0)
    }

    fn of(&self, name: &str) -> std::vec::IntoIter<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect::<Vec<_>>().into_iter()
    }
}

fn family_of(name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            return base;
        }
    }
    name
}

fn is_metric_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|e| panic!("bad value in {line:?}: {e}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unterminated labels in {line:?}"));
            (name, parse_labels(body, line))
        }
    };
    assert!(is_metric_name(name), "bad metric name in {line:?}");
    Sample { name: name.to_string(), labels, value }
}

fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        assert!(is_metric_name(&key) && !key.contains(':'), "bad label name {key:?} in {line:?}");
        assert_eq!(chars.next(), Some('='), "bad labels in {line:?}");
        assert_eq!(chars.next(), Some('"'), "unquoted label value in {line:?}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        }
        assert!(labels.insert(key.clone(), value).is_none(), "label {key} twice in {line:?}");
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => panic!("unexpected {c:?} in labels of {line:?}"),
        }
    }
    labels
}

/// Check every histogram: buckets per series ascending in `le` and
/// cumulative, ending with `+Inf` equal to `_count`; `_sum` present.
fn check_histograms(m: &Metrics) {
    for (family, kind) in &m.types {
        if kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in m.of(&format!("{family}_bucket")) {
            let mut labels = s.labels.clone();
            let le = labels.remove("le").unwrap_or_else(|| panic!("bucket without le: {s:?}"));
            let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("numeric le") };
            series.entry(labels).or_default().push((le, s.value));
        }
        assert!(!series.is_empty(), "histogram {family} has no buckets");
        for (labels, buckets) in &series {
            for w in buckets.windows(2) {
                assert!(w[0].0 < w[1].0, "{family}{labels:?}: buckets not in ascending le order: {buckets:?}");
                assert!(w[0].1 <= w[1].1, "{family}{labels:?}: buckets not cumulative: {buckets:?}");
            }
            let last = buckets.last().unwrap();
            assert!(last.0.is_infinite(), "{family}{labels:?}: no +Inf bucket: {buckets:?}");
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let count = m.value(&format!("{family}_count"), &pairs);
            assert_eq!(count, last.1, "{family}{labels:?}: _count differs from the +Inf bucket");
            let sums: Vec<&Sample> = m.of(&format!("{family}_sum")).filter(|s| &s.labels == labels).collect();
            assert_eq!(sums.len(), 1, "{family}{labels:?}: expected one _sum");
            assert!(sums[0].value >= 0.0 && sums[0].value.is_finite(), "{family}{labels:?}: bad _sum");
        }
    }
}

async fn scrape(server: &Server) -> (Metrics, String) {
    let resp = server.raw().get("/metrics").await;
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.body);
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "GET /metrics content-type {ct:?}");
    (Metrics::parse(&resp.body), resp.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_outcomes_and_sign_ins() {
    let server = Server::sqlite().await;
    let idp = server.idp();
    let pool = server.new_pool(|p| p).await;
    ok(idp.describe_user_pool().user_pool_id(&pool).send().await);
    ok(idp.describe_user_pool().user_pool_id(&pool).send().await);
    cognate_e2e::expect_code(
        idp.describe_user_pool().user_pool_id("us-east-1_doesNotExist").send().await,
        "ResourceNotFoundException",
    );
    cognate_e2e::expect_code(
        server
            .identity()
            .describe_identity_pool()
            .identity_pool_id("us-east-1:00000000-0000-4000-8000-00000000dead")
            .send()
            .await,
        "ResourceNotFoundException",
    );

    // Sign-ins: one good, one with a wrong password.
    let client = ok(idp
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("metrics")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await)
    .user_pool_client
    .unwrap()
    .client_id
    .unwrap();
    ok(idp.admin_create_user().user_pool_id(&pool).username("metered").send().await);
    ok(idp
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username("metered")
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    password_sign_in(&server, &client, None, "metered", PASSWORD).await;
    cognate_e2e::expect_code(
        server
            .idp_anonymous()
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(&client)
            .auth_parameters("USERNAME", "metered")
            .auth_parameters("PASSWORD", "Wr0ng-password!")
            .send()
            .await,
        "NotAuthorizedException",
    );

    // Made-up operations must not become label values.
    let raw = server.raw();
    for target in [
        format!("{IDP_PREFIX}.MadeUpOperationXyzzy"),
        format!("{IDENTITY_PREFIX}.InventedOperationPlugh"),
        "TotallyBogusService.FakeOpFrobnicate".to_string(),
    ] {
        let resp = raw.call(&target, "{}", cognate_e2e::Signing::Valid).await;
        assert!(resp.status >= 400, "{target} answered {}: {}", resp.status, resp.body);
    }

    let (m, text) = scrape(&server).await;
    check_histograms(&m);
    assert_eq!(m.types.get("cognate_requests_total").map(String::as_str), Some("counter"));
    assert_eq!(m.types.get("cognate_request_duration_seconds").map(String::as_str), Some("histogram"));
    assert_eq!(m.types.get("cognate_sign_in_steps_total").map(String::as_str), Some("counter"));

    let req = |op: &str, outcome: &str| {
        m.value("cognate_requests_total", &[("service", "cognito-idp"), ("operation", op), ("outcome", outcome)])
    };
    assert!(req("DescribeUserPool", "ok") >= 2.0, "DescribeUserPool ok count:\n{text}");
    assert!(req("DescribeUserPool", "ResourceNotFoundException") >= 1.0, "DescribeUserPool error count:\n{text}");
    assert!(req("CreateUserPool", "ok") >= 1.0, "CreateUserPool ok count:\n{text}");
    assert!(req("InitiateAuth", "ok") >= 1.0, "InitiateAuth ok count:\n{text}");
    assert!(req("InitiateAuth", "NotAuthorizedException") >= 1.0, "InitiateAuth error count:\n{text}");
    let identity = m.value(
        "cognate_requests_total",
        &[
            ("service", "cognito-identity"),
            ("operation", "DescribeIdentityPool"),
            ("outcome", "ResourceNotFoundException"),
        ],
    );
    assert!(identity >= 1.0, "cognito-identity DescribeIdentityPool error count:\n{text}");

    // The latency histogram has a series for the operations called.
    let count = m.value(
        "cognate_request_duration_seconds_count",
        &[("service", "cognito-idp"), ("operation", "DescribeUserPool")],
    );
    assert!(count >= 3.0, "DescribeUserPool latency count {count}:\n{text}");

    // Sign-in steps.
    let steps: Vec<&Sample> = m.of("cognate_sign_in_steps_total").collect();
    let ok_steps: f64 =
        steps.iter().filter(|s| s.labels.get("outcome").map(String::as_str) == Some("ok")).map(|s| s.value).sum();
    let bad_steps: f64 = steps
        .iter()
        .filter(|s| s.labels.get("outcome").map(String::as_str) == Some("NotAuthorizedException"))
        .map(|s| s.value)
        .sum();
    assert!(ok_steps >= 1.0, "no successful sign-in step counted:\n{text}");
    assert!(bad_steps >= 1.0, "no failed sign-in step counted:\n{text}");

    // Unknown targets: counted as operation="unknown", never by their name.
    for name in ["MadeUpOperationXyzzy", "InventedOperationPlugh", "FakeOpFrobnicate", "TotallyBogusService"] {
        assert!(!text.contains(name), "the made-up name {name} became part of /metrics:\n{text}");
    }
    let unknown: f64 = m
        .of("cognate_requests_total")
        .filter(|s| s.labels.get("operation").map(String::as_str) == Some("unknown"))
        .map(|s| s.value)
        .sum();
    assert!(unknown >= 2.0, "made-up operations are not counted as operation=\"unknown\":\n{text}");
    // Every request counter carries exactly the three labels.
    for s in m.of("cognate_requests_total") {
        let keys: Vec<&str> = s.labels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["operation", "outcome", "service"], "labels of {s:?}");
    }

    // Counters only go up.
    ok(idp.describe_user_pool().user_pool_id(&pool).send().await);
    let (m2, text2) = scrape(&server).await;
    let before = req("DescribeUserPool", "ok");
    let after = m2.value(
        "cognate_requests_total",
        &[("service", "cognito-idp"), ("operation", "DescribeUserPool"), ("outcome", "ok")],
    );
    assert_eq!(after, before + 1.0, "one more DescribeUserPool:\n{text2}");
}

// ---------------------------------------------------------------------------
// 3. Start-up errors
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_already_in_use_fails_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap().to_string();
    let data = tempdir();
    let exit = run_to_exit(&["serve", "--listen", &addr, "--data-dir", path_str(data.path())], &[], QUICK).await;
    let line = assert_start_error("port in use", &exit);
    assert!(line.contains(&addr), "the error does not name {addr}: {line:?}");
    assert!(line.to_lowercase().contains("in use"), "the error does not say the address is in use: {line:?}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_data_dir_fails_clearly() {
    let files = tempdir();
    let regular = write_file(files.path(), "a-file", "not a directory");
    let under_file = regular.join("data");
    for dir in [PathBuf::from("/proc/cognate-nope"), under_file] {
        let listen = format!("127.0.0.1:{}", free_port());
        let exit = run_to_exit(&["serve", "--listen", &listen, "--data-dir", path_str(&dir)], &[], QUICK).await;
        let line = assert_start_error(&format!("data dir {}", dir.display()), &exit);
        assert!(line.contains(path_str(&dir)), "the error does not name the data dir: {line:?}");
        assert!(line.contains("data dir"), "the error does not say it is about the data dir: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_start_up_errors_are_clear() {
    let data = tempdir();
    let key = base64(&random_bytes(32));
    let listen = format!("127.0.0.1:{}", free_port());
    let base = ["serve", "--listen", &listen, "--data-dir", path_str(data.path())];

    let mut args = base.to_vec();
    args.extend(["--database-url", "postgres://root@127.0.0.1:1/test"]);
    let exit = run_to_exit(&args, &[("COGNATE_MASTER_KEY", &key)], QUICK).await;
    let line = assert_start_error("unreachable PostgreSQL", &exit);
    assert!(line.contains("PostgreSQL"), "the error does not name PostgreSQL: {line:?}");
    assert!(!line.contains(&key), "the error shows the master key: {line:?}");

    let exit = run_to_exit(&args, &[], QUICK).await;
    let line = assert_start_error("PostgreSQL without a master key", &exit);
    assert!(line.contains("master key"), "the error does not mention the master key: {line:?}");
    assert!(line.contains("COGNATE_MASTER_KEY"), "the error does not say how to set it: {line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_fails_clearly() {
    let files = tempdir();
    let data = tempdir();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = write_file(
        files.path(),
        "cognate.toml",
        &format!("listen = \"{listen}\"\nregion = \"us-east-1\"\nlisten_adress_typo = \"127.0.0.1:1\"\n"),
    );
    let exit =
        run_to_exit(&["serve", "--config", path_str(&config), "--data-dir", path_str(data.path())], &[], QUICK).await;
    let line = assert_start_error("unknown config key", &exit);
    assert!(line.contains("listen_adress_typo"), "the error does not name the unknown key: {line:?}");
    assert!(
        line.contains(path_str(&config)) || line.contains("cognate.toml"),
        "the error does not name the file: {line:?}"
    );

    let config = write_file(files.path(), "broken.toml", "listen = \n");
    let exit =
        run_to_exit(&["serve", "--config", path_str(&config), "--data-dir", path_str(data.path())], &[], QUICK).await;
    let line = assert_start_error("unparsable config file", &exit);
    assert!(line.contains("broken.toml"), "the error does not name the file: {line:?}");

    let exit = run_to_exit(&["serve", "--listen", "nonsense", "--data-dir", path_str(data.path())], &[], QUICK).await;
    let line = assert_start_error("--listen nonsense", &exit);
    assert!(line.contains("nonsense"), "the error does not show the bad value: {line:?}");
    assert!(line.contains("listen"), "the error does not name the setting: {line:?}");

    let exit =
        run_to_exit(&["serve", "--data-dir", path_str(data.path())], &[("COGNATE_LISTEN", "also-nonsense")], QUICK)
            .await;
    let line = assert_start_error("COGNATE_LISTEN nonsense", &exit);
    assert!(line.contains("also-nonsense"), "the error does not show the bad value: {line:?}");
}

// ---------------------------------------------------------------------------
// 4. Graceful shutdown
// ---------------------------------------------------------------------------

/// Spawn `cognate serve` on a free port and wait for `/health`.
async fn spawn_serve(data: &Path) -> (Child, String, PathBuf) {
    let port = free_port();
    let log = data.join("serve.log");
    let mut cmd = cognate_command(
        &["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", path_str(&data.join("data"))],
        &[],
    );
    let file = std::fs::File::create(&log).expect("log");
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    let mut child = cmd.spawn().expect("spawn cognate serve");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cognate serve exited early with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        if let Ok(resp) = http.get(format!("{base}/health")).send().await {
            if resp.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "cognate serve did not become healthy");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (child, base, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_shut_down_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempdir();
        let (mut child, base, log) = spawn_serve(dir.path()).await;
        let raw = cognate_e2e::Raw { base: base.clone(), http: reqwest::Client::new() };
        let resp = raw.idp("ListUserPools", json!({"MaxResults": 10})).await;
        assert_eq!(resp.status, 200, "{}", resp.body);

        let pid = child.id().to_string();
        let killed = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(killed.success(), "kill {signal} {pid} failed");
        let start = Instant::now();
        let status = wait_exit(&mut child, Duration::from_secs(5)).await;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let status = status.unwrap_or_else(|| panic!("cognate did not exit within 5 s of SIG{signal}: {text}"));
        assert_eq!(status.code(), Some(0), "exit status after {signal} was {status}: {text}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!text.contains("cognate: error"), "an error was reported on {signal}: {text}");
        // The port is free again.
        let addr = base.trim_start_matches("http://");
        assert!(std::net::TcpListener::bind(addr).is_ok(), "port {addr} still in use after shutdown");
        // The data survives: the server can start again on the same dir.
        let (mut again, _, _) = spawn_serve(dir.path()).await;
        let _ = again.kill();
        let _ = again.wait();
    }
}
