//! Crash durability: a server under a mixed write load (sign-ups and their
//! confirmations, admin creates, attribute updates, group memberships,
//! sign-ins, a user import) is killed with SIGKILL, started again on the same
//! data (SQLite data dir, or PostgreSQL schema), and every write a client saw
//! acknowledged (HTTP 200) must be there. Writes in flight at the kill may
//! land or not; nothing acknowledged may be lost, and the store must open.
//!
//! Every client task records what it asked for before sending and what was
//! acknowledged after the answer, in one ledger; the checks after the restart
//! read only that ledger. A lost write fails with `ACKNOWLEDGED WRITE LOST`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cognate_e2e::idp::types::{
    AttributeDataType, AuthFlowType, AuthenticationResultType, ExplicitAuthFlowsType, MessageActionType,
    SchemaAttributeType, UserImportJobStatusType, VerifiedAttributeType,
};
use cognate_e2e::{attr, attr_of, idp, ok, parse_outbox, unique_name, url_encode, Server, PASSWORD};

/// How long the load runs at least before the kill...
const LOAD: Duration = Duration::from_millis(2500);
/// ... and at most, waiting for every kind of write to be acknowledged once.
const LOAD_MAX: Duration = Duration::from_secs(10);
/// The writes the load must have had acknowledged for the test to mean much.
const EXPECTED_WRITES: &[&str] = &[
    "SignUp",
    "ConfirmSignUp",
    "InitiateAuth",
    "AdminCreateUser",
    "AdminSetUserPassword",
    "AdminUpdateUserAttributes",
    "AdminAddUserToGroup",
    "AdminInitiateAuth",
    "CreateUserImportJob",
    "upload",
    "StartUserImportJob",
];
/// A task still running this long after the kill has not noticed it: a bug
/// of the test, reported instead of hanging.
const TASK_GRACE: Duration = Duration::from_secs(35);
/// Rows per import job on PostgreSQL: three 1,000-row batches, so that a job
/// is usually part-way when the server dies.
const PG_IMPORT_ROWS: usize = 3000;
/// Rows per import job on SQLite: under one batch. The first 1,000-row batch
/// a SQLite process commits takes several seconds in a debug build (binding
/// its ~12,000 `$N` parameters by name is quadratic) and holds every other
/// write back meanwhile, so the load would be the import alone; a 400-row
/// batch costs a fraction of a second once per process, paid by the import
/// before the load.
const SQLITE_IMPORT_ROWS: usize = 400;
/// The token issuer and pre-signed URLs derive from the public URL, which by
/// default names the listening port; the harness restarts on a new port, so
/// the URL is fixed here, as a deployment behind a name keeps it across
/// restarts. Nothing resolves it: pre-signed URLs are rewritten to the port.
const PUBLIC_URL: &str = "http://cognate-crash.test";
/// Also a short import lease, so that the restarted process takes over a job
/// the killed one held within seconds instead of the default 30.
const SERVE_ARGS: &[&str] = &["--public-url", PUBLIC_URL, "--import-lease-seconds", "2"];
const SIGN_UP_TASKS: usize = 2;
const ADMIN_TASKS: usize = 2;
const GROUPS: usize = 3;
const LOGS_ROLE: &str = "arn:aws:iam::000000000000:role/CognitoImportLogs";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_acknowledged_writes_survive_kill_9() {
    let mut server = Server::sqlite_with(SERVE_ARGS).await;
    crash_and_check(&mut server, SQLITE_IMPORT_ROWS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_acknowledged_writes_survive_kill_9() {
    let Some(mut server) = Server::postgres_with(SERVE_ARGS).await else {
        return;
    };
    crash_and_check(&mut server, PG_IMPORT_ROWS).await;
}

/// An SDK failure in one line: the service's status, code and message, or
/// why no answer came.
fn brief<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => format!(
            "HTTP {} {}: {}",
            se.raw().status().as_u16(),
            se.err().code().unwrap_or("?"),
            se.err().message().unwrap_or("")
        ),
        other => format!("no answer: {}", DisplayErrorContext(other)),
    }
}

// ---------------------------------------------------------------------------
// The ledger of what clients asked for and what was acknowledged
// ---------------------------------------------------------------------------

/// A write of one user that was sent but not answered when the server died:
/// after the restart it may or may not be there.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Confirm,
    Attributes(Vec<(String, String)>),
    Group(String),
}

#[derive(Debug)]
struct UserFacts {
    /// The operation that created the user (SignUp or AdminCreateUser).
    created_by: &'static str,
    /// Acknowledged attribute values.
    attrs: BTreeMap<String, String>,
    /// Whether a write that makes the user CONFIRMED was acknowledged.
    confirmed: bool,
    /// The status before that write: UNCONFIRMED or FORCE_CHANGE_PASSWORD.
    initial_status: &'static str,
    /// Acknowledged group memberships.
    groups: BTreeSet<String>,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct SignIn {
    username: String,
    via: &'static str,
    refresh: String,
    access: String,
}

#[derive(Debug, Default)]
struct JobFacts {
    job_id: String,
    /// Every row's username starts with it.
    prefix: String,
    uploaded: bool,
    upload_pending: bool,
    started: bool,
    start_pending: bool,
    /// The most rows DescribeUserImportJob reported imported before the kill.
    imported_seen: i64,
    /// The status the job was last described with before the kill.
    status_seen: String,
}

#[derive(Debug, Default)]
struct Ledger {
    users: BTreeMap<String, UserFacts>,
    sign_ins: Vec<SignIn>,
    /// Confirmed sign-up users no task writes to any more: the sign-in task
    /// signs them in.
    ready: Vec<String>,
    jobs: Vec<JobFacts>,
    /// Calls answered 200, per operation (writes, and DescribeUserImportJob).
    acked: BTreeMap<&'static str, u64>,
    /// Failures before the kill (the load is valid, so any is a bug).
    unexpected: Vec<String>,
}

/// What every load task shares.
#[derive(Clone)]
struct Load {
    admin: idp::Client,
    anon: idp::Client,
    http: reqwest::Client,
    base: String,
    pool: String,
    client: String,
    groups: Vec<String>,
    csv_header: Vec<String>,
    /// Rows of each import job's CSV.
    import_rows: usize,
    ledger: Arc<Mutex<Ledger>>,
    /// Set just before the SIGKILL: a failure after it is the crash itself.
    killed: Arc<AtomicBool>,
}

impl Load {
    fn note<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        f(&mut self.ledger.lock().expect("ledger lock"))
    }

    fn user(&self, username: &str, f: impl FnOnce(&mut UserFacts)) {
        self.note(|l| f(l.users.get_mut(username).expect("a user of the ledger")));
    }

    fn failed(&self, what: &str, why: String) {
        if !self.killed.load(Ordering::SeqCst) {
            self.note(|l| l.unexpected.push(format!("{what}: {why}")));
        }
    }

    /// Awaits an SDK call. `Some` when the server answered 200 (counted as an
    /// acknowledged `what`); otherwise the failure is noted and the task,
    /// which gets `None`, ends.
    async fn send<T, E>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Option<T>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match call.await {
            Ok(out) => {
                self.note(|l| *l.acked.entry(what).or_default() += 1);
                Some(out)
            }
            Err(err) => {
                self.failed(what, brief(&err));
                None
            }
        }
    }

    /// The newest code the outbox holds for `username`.
    async fn code(&self, username: &str) -> Option<String> {
        let url =
            format!("{}/_cognate/outbox?pool={}&user={}", self.base, url_encode(&self.pool), url_encode(username));
        let body = match self.http.get(&url).send().await {
            Ok(resp) if resp.status().as_u16() == 200 => resp.text().await.ok(),
            Ok(resp) => {
                self.failed("GET /_cognate/outbox", format!("HTTP {}", resp.status()));
                None
            }
            Err(e) => {
                self.failed("GET /_cognate/outbox", format!("no answer: {e}"));
                None
            }
        }?;
        let code = parse_outbox(&body).last().and_then(|m| m.code.clone());
        if code.is_none() {
            self.failed("GET /_cognate/outbox", format!("no code for {username} after its SignUp: {body}"));
        }
        code
    }

    fn signed_in(&self, username: &str, via: &'static str, result: Option<&AuthenticationResultType>) -> bool {
        let tokens = result.and_then(|r| Some((r.refresh_token()?.to_string(), r.access_token()?.to_string())));
        match tokens {
            Some((refresh, access)) => {
                self.note(|l| l.sign_ins.push(SignIn { username: username.to_string(), via, refresh, access }));
                true
            }
            None => {
                self.failed(via, format!("{username}: no access and refresh token in {result:?}"));
                false
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------

/// SignUp, the code from the outbox, ConfirmSignUp, InitiateAuth; again.
async fn sign_ups(load: Load, task: usize) {
    for n in 0.. {
        let username = format!("su{task}-{n}");
        let email = format!("{username}@example.com");
        let tenant = format!("s{task}-{n}");
        let call = load
            .anon
            .sign_up()
            .client_id(&load.client)
            .username(&username)
            .password(PASSWORD)
            .user_attributes(attr("email", &email))
            .user_attributes(attr("custom:tenant", &tenant))
            .send();
        if load.send("SignUp", call).await.is_none() {
            return;
        }
        let attrs = BTreeMap::from([("email".to_string(), email), ("custom:tenant".to_string(), tenant)]);
        load.note(|l| {
            let facts = UserFacts {
                created_by: "SignUp",
                attrs,
                confirmed: false,
                initial_status: "UNCONFIRMED",
                groups: BTreeSet::new(),
                pending: None,
            };
            l.users.insert(username.clone(), facts)
        });
        let Some(code) = load.code(&username).await else { return };
        load.user(&username, |u| u.pending = Some(Pending::Confirm));
        let call =
            load.anon.confirm_sign_up().client_id(&load.client).username(&username).confirmation_code(code).send();
        if load.send("ConfirmSignUp", call).await.is_none() {
            return;
        }
        load.user(&username, |u| {
            u.confirmed = true;
            u.pending = None;
        });
        let call = load
            .anon
            .initiate_auth()
            .client_id(&load.client)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", &username)
            .auth_parameters("PASSWORD", PASSWORD)
            .send();
        let Some(out) = load.send("InitiateAuth", call).await else { return };
        if !load.signed_in(&username, "InitiateAuth", out.authentication_result()) {
            return;
        }
        load.note(|l| l.ready.push(username));
    }
}

/// AdminCreateUser, AdminSetUserPassword (permanent), AdminUpdateUserAttributes,
/// AdminAddUserToGroup twice, AdminInitiateAuth; again.
async fn admin_writes(load: Load, task: usize) {
    for n in 0.. {
        let username = format!("ad{task}-{n}");
        let email = format!("{username}@example.com");
        let tenant = format!("a{task}-{n}");
        let call = load
            .admin
            .admin_create_user()
            .user_pool_id(&load.pool)
            .username(&username)
            .temporary_password(PASSWORD)
            .message_action(MessageActionType::Suppress)
            .user_attributes(attr("email", &email))
            .user_attributes(attr("given_name", "First"))
            .user_attributes(attr("custom:tenant", &tenant))
            .send();
        if load.send("AdminCreateUser", call).await.is_none() {
            return;
        }
        let attrs = BTreeMap::from([
            ("email".to_string(), email),
            ("given_name".to_string(), "First".to_string()),
            ("custom:tenant".to_string(), tenant),
        ]);
        load.note(|l| {
            let facts = UserFacts {
                created_by: "AdminCreateUser",
                attrs,
                confirmed: false,
                initial_status: "FORCE_CHANGE_PASSWORD",
                groups: BTreeSet::new(),
                pending: None,
            };
            l.users.insert(username.clone(), facts)
        });

        load.user(&username, |u| u.pending = Some(Pending::Confirm));
        let call = load
            .admin
            .admin_set_user_password()
            .user_pool_id(&load.pool)
            .username(&username)
            .password(PASSWORD)
            .permanent(true)
            .send();
        if load.send("AdminSetUserPassword", call).await.is_none() {
            return;
        }
        load.user(&username, |u| {
            u.confirmed = true;
            u.pending = None;
        });

        let update = vec![
            ("given_name".to_string(), format!("Second{n}")),
            ("custom:tenant".to_string(), format!("b{task}-{n}")),
        ];
        load.user(&username, |u| u.pending = Some(Pending::Attributes(update.clone())));
        let mut call = load.admin.admin_update_user_attributes().user_pool_id(&load.pool).username(&username);
        for (name, value) in &update {
            call = call.user_attributes(attr(name, value));
        }
        if load.send("AdminUpdateUserAttributes", call.send()).await.is_none() {
            return;
        }
        load.user(&username, |u| {
            u.attrs.extend(update);
            u.pending = None;
        });

        for group in [&load.groups[n % GROUPS], &load.groups[(n + 1) % GROUPS]] {
            load.user(&username, |u| u.pending = Some(Pending::Group(group.clone())));
            let call = load
                .admin
                .admin_add_user_to_group()
                .user_pool_id(&load.pool)
                .username(&username)
                .group_name(group)
                .send();
            if load.send("AdminAddUserToGroup", call).await.is_none() {
                return;
            }
            load.user(&username, |u| {
                u.groups.insert(group.clone());
                u.pending = None;
            });
        }

        if !admin_sign_in(&load, &username).await {
            return;
        }
    }
}

/// One acknowledged AdminInitiateAuth of `username`, noted in the ledger; false once the load
/// should stop (the server was killed or the call failed).
async fn admin_sign_in(load: &Load, username: &str) -> bool {
    let call = load
        .admin
        .admin_initiate_auth()
        .user_pool_id(&load.pool)
        .client_id(&load.client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send();
    let Some(out) = load.send("AdminInitiateAuth", call).await else { return false };
    load.signed_in(username, "AdminInitiateAuth", out.authentication_result())
}

/// AdminInitiateAuth of the confirmed sign-up users, round the list.
async fn sign_ins(load: Load) {
    for n in 0.. {
        let Some(username) = load.note(|l| (!l.ready.is_empty()).then(|| l.ready[n % l.ready.len()].clone())) else {
            if load.killed.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if !admin_sign_in(&load, &username).await {
            return;
        }
    }
}

/// A CSV of `rows` users `<prefix><i>` with an email each.
fn import_csv(header: &[String], prefix: &str, rows: usize) -> String {
    let mut lines = vec![header.join(",")];
    for i in 0..rows {
        let row: Vec<String> = header
            .iter()
            .map(|h| match h.as_str() {
                "cognito:username" => format!("{prefix}{i}"),
                "email" => format!("{prefix}{i}@example.com"),
                "cognito:mfa_enabled" => "false".to_string(),
                _ => String::new(),
            })
            .collect();
        lines.push(row.join(","));
    }
    lines.join("\r\n") + "\r\n"
}

/// Import jobs one after the other.
async fn imports(load: Load) {
    for j in 0.. {
        if import_one(&load, &format!("imp{j}-")).await.is_none() {
            return;
        }
    }
}

/// One import job of users `<prefix><i>`, from CreateUserImportJob until it
/// has ended; `None` (the failure noted) when a call fails.
async fn import_one(load: &Load, prefix: &str) -> Option<()> {
    let call = load
        .admin
        .create_user_import_job()
        .user_pool_id(&load.pool)
        .job_name(prefix.trim_end_matches('-'))
        .cloud_watch_logs_role_arn(LOGS_ROLE)
        .send();
    let out = load.send("CreateUserImportJob", call).await?;
    let Some(job) = out.user_import_job else {
        load.failed("CreateUserImportJob", "no UserImportJob".into());
        return None;
    };
    let (Some(job_id), Some(url)) = (job.job_id, job.pre_signed_url) else {
        load.failed("CreateUserImportJob", "no JobId or PreSignedUrl".into());
        return None;
    };
    let index = load.note(|l| {
        let facts = JobFacts {
            job_id: job_id.clone(),
            prefix: prefix.to_string(),
            upload_pending: true,
            ..JobFacts::default()
        };
        l.jobs.push(facts);
        l.jobs.len() - 1
    });
    let job = |f: &dyn Fn(&mut JobFacts)| load.note(|l| f(&mut l.jobs[index]));

    let Some(path) = url.strip_prefix(PUBLIC_URL) else {
        load.failed("CreateUserImportJob", format!("the PreSignedUrl {url} is not under {PUBLIC_URL}"));
        return None;
    };
    let url = format!("{}{path}", load.base);
    let body = import_csv(&load.csv_header, prefix, load.import_rows);
    match load.http.put(&url).body(body).send().await {
        Ok(resp) if resp.status().as_u16() == 200 => {
            load.note(|l| *l.acked.entry("upload").or_default() += 1);
            job(&|j| {
                j.uploaded = true;
                j.upload_pending = false;
            });
        }
        Ok(resp) => {
            let status = resp.status();
            load.failed("upload", format!("HTTP {status}: {}", resp.text().await.unwrap_or_default()));
            return None;
        }
        Err(e) => {
            load.failed("upload", format!("no answer: {e}"));
            return None;
        }
    }

    job(&|j| j.start_pending = true);
    let call = load.admin.start_user_import_job().user_pool_id(&load.pool).job_id(&job_id).send();
    load.send("StartUserImportJob", call).await?;
    job(&|j| {
        j.started = true;
        j.start_pending = false;
    });

    loop {
        let call = load.admin.describe_user_import_job().user_pool_id(&load.pool).job_id(&job_id).send();
        let out = load.send("DescribeUserImportJob", call).await?;
        let Some(described) = out.user_import_job else {
            load.failed("DescribeUserImportJob", "no UserImportJob".into());
            return None;
        };
        let status = described.status.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default();
        let imported = described.imported_users;
        job(&|j| {
            j.imported_seen = j.imported_seen.max(imported);
            j.status_seen = status.clone();
        });
        match status.as_str() {
            "Succeeded" => return Some(()),
            "Pending" | "InProgress" => tokio::time::sleep(Duration::from_millis(50)).await,
            other => {
                load.failed("DescribeUserImportJob", format!("job {job_id} is {other}: {described:?}"));
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

async fn crash_and_check(server: &mut Server, import_rows: usize) {
    let began = Instant::now();
    let load = setup(server, import_rows).await;
    // One import before the load: on SQLite it pays the slow first batch (see
    // SQLITE_IMPORT_ROWS) that would otherwise stall the load; its users, which
    // the job reported imported, are checked after the crash like the others.
    let warmed = import_one(&load, "pre-").await;
    assert!(warmed.is_some(), "the import before the load failed: {:?}", load.note(|l| l.unexpected.clone()));

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..SIGN_UP_TASKS {
        tasks.spawn(sign_ups(load.clone(), task));
    }
    for task in 0..ADMIN_TASKS {
        tasks.spawn(admin_writes(load.clone(), task));
    }
    tasks.spawn(sign_ins(load.clone()));
    tasks.spawn(imports(load.clone()));

    let load_began = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let all_acked = load.note(|l| EXPECTED_WRITES.iter().all(|op| l.acked.contains_key(op)));
        if (load_began.elapsed() >= LOAD && all_acked) || load_began.elapsed() >= LOAD_MAX {
            break;
        }
    }
    load.killed.store(true, Ordering::SeqCst);
    server.kill_hard();
    let killed_at = Instant::now();
    while let Some(joined) = tokio::time::timeout(TASK_GRACE, tasks.join_next())
        .await
        .unwrap_or_else(|_| panic!("a load task was still running {TASK_GRACE:?} after the kill"))
    {
        joined.expect("a load task panicked");
    }

    let ledger = std::mem::take(&mut *load.ledger.lock().expect("ledger lock"));
    assert!(
        ledger.unexpected.is_empty(),
        "writes failed before the kill (the load is valid):\n{}",
        ledger.unexpected.join("\n")
    );
    // A kill before the load got going would check nothing.
    for op in EXPECTED_WRITES {
        assert!(ledger.acked.contains_key(op), "no {op} was acknowledged in {LOAD_MAX:?}: {:?}", ledger.acked);
    }
    let in_flight = ledger.users.values().filter(|u| u.pending.is_some()).count()
        + ledger.jobs.iter().filter(|j| j.upload_pending || j.start_pending).count();

    // The store must open cleanly on the data the killed process left.
    server.restart().await;
    let restarted_in = killed_at.elapsed();

    let mut lost = Vec::new();
    check_users(server, &load, &ledger, &mut lost).await;
    check_sign_ins(server, &load, &ledger, &mut lost).await;
    check_jobs(server, &load, &ledger, &mut lost).await;
    // It opened; nothing after should have gone wrong on the data it found.
    let log = server.log_tail(usize::MAX);
    if log.contains("panicked") || log.contains(" ERROR ") {
        lost.push(format!("the restarted server logged a panic or an error:\n{}", server.log_tail(40)));
    }
    eprintln!(
        "crash test ({}): acknowledged {:?}; {} users, {} sign-ins, {} import jobs; {in_flight} writes in flight at \
         the kill; restarted in {restarted_in:?}; {:?} in all",
        if server.is_postgres() { "PostgreSQL" } else { "SQLite" },
        ledger.acked,
        ledger.users.len(),
        ledger.sign_ins.len(),
        ledger.jobs.len(),
        began.elapsed()
    );
    assert!(
        lost.is_empty(),
        "ACKNOWLEDGED WRITE LOST (or an unclean reopen) after kill -9 and restart ({} problems):\n{}",
        lost.len(),
        lost.join("\n")
    );
}

/// A pool with a custom attribute, email auto-verified (so that SignUp sends
/// a code), three groups and a client for password sign-in and refresh.
async fn setup(server: &Server, import_rows: usize) -> Load {
    let tenant = SchemaAttributeType::builder()
        .name("tenant")
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .build();
    let pool = server.new_pool(|p| p.schema(tenant).auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(unique_name("crash"))
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await)
    .user_pool_client
    .and_then(|c| c.client_id)
    .expect("CreateUserPoolClient returned no client id");
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let name = format!("group-{g}");
        ok(server.idp().create_group().user_pool_id(&pool).group_name(&name).send().await);
        groups.push(name);
    }
    let csv_header = ok(server.idp().get_csv_header().user_pool_id(&pool).send().await).csv_header().to_vec();
    // The pool's first sign-in creates its signing keys, which takes a second
    // or more in a debug build and would hold every sign-in of the load back:
    // one sign-in before the load. Its tokens are checked after the crash too.
    let warm = "warm-up";
    let idp = server.idp();
    ok(idp
        .admin_create_user()
        .user_pool_id(&pool)
        .username(warm)
        .temporary_password(PASSWORD)
        .message_action(MessageActionType::Suppress)
        .send()
        .await);
    ok(idp
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username(warm)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    let signed_in = ok(idp
        .admin_initiate_auth()
        .user_pool_id(&pool)
        .client_id(&client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", warm)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await);
    let tokens = signed_in.authentication_result().expect("the warm-up sign-in answered no tokens");
    let mut ledger = Ledger::default();
    ledger.sign_ins.push(SignIn {
        username: warm.to_string(),
        via: "AdminInitiateAuth (before the load)",
        refresh: tokens.refresh_token().expect("RefreshToken").to_string(),
        access: tokens.access_token().expect("AccessToken").to_string(),
    });
    Load {
        admin: server.idp(),
        anon: server.idp_anonymous(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("reqwest client"),
        base: server.url(),
        pool,
        client,
        groups,
        csv_header,
        import_rows,
        ledger: Arc::new(Mutex::new(ledger)),
        killed: Arc::new(AtomicBool::new(false)),
    }
}

// ---------------------------------------------------------------------------
// The checks after the restart
// ---------------------------------------------------------------------------

/// Every acknowledged user exists, with its acknowledged status, attributes
/// and groups (or what a write in flight at the kill would have made them).
async fn check_users(server: &Server, load: &Load, ledger: &Ledger, lost: &mut Vec<String>) {
    let idp = server.idp();
    let pool = &load.pool;
    for (username, facts) in &ledger.users {
        let got = match idp.admin_get_user().user_pool_id(pool).username(username).send().await {
            Ok(got) => got,
            Err(e) => {
                lost.push(format!(
                    "{} of {username} was acknowledged; AdminGetUser now: {}",
                    facts.created_by,
                    brief(&e)
                ));
                continue;
            }
        };
        let status = got.user_status().map(|s| s.as_str()).unwrap_or_default();
        let expected: &[&str] = match (&facts.pending, facts.confirmed) {
            (Some(Pending::Confirm), _) => &["CONFIRMED", facts.initial_status],
            (_, true) => &["CONFIRMED"],
            (_, false) => &[facts.initial_status],
        };
        if !expected.contains(&status) {
            lost.push(format!("{username}: status {status}, expected one of {expected:?} ({facts:?})"));
        }
        let attrs = got.user_attributes();
        for (name, value) in &facts.attrs {
            let now = attr_of(attrs, name);
            let in_flight = match &facts.pending {
                Some(Pending::Attributes(update)) => update.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
                _ => None,
            };
            if now != Some(value.as_str()) && (in_flight.is_none() || now != in_flight) {
                lost.push(format!("{username}: {name} is {now:?}, acknowledged {value:?} (in flight: {in_flight:?})"));
            }
        }
        let listed = ok(idp.admin_list_groups_for_user().user_pool_id(pool).username(username).limit(60).send().await);
        let now: BTreeSet<String> = listed.groups().iter().filter_map(|g| g.group_name().map(str::to_string)).collect();
        let in_flight: BTreeSet<String> = match &facts.pending {
            Some(Pending::Group(g)) => BTreeSet::from([g.clone()]),
            _ => BTreeSet::new(),
        };
        let allowed: BTreeSet<String> = facts.groups.union(&in_flight).cloned().collect();
        if !facts.groups.is_subset(&now) || !now.is_subset(&allowed) {
            lost.push(format!(
                "{username}: groups {now:?}, acknowledged {:?} (in flight: {in_flight:?})",
                facts.groups
            ));
        }
    }
}

/// Every acknowledged sign-in's refresh token still refreshes, and its access
/// token is still accepted (the pool's signing keys survived too).
async fn check_sign_ins(server: &Server, load: &Load, ledger: &Ledger, lost: &mut Vec<String>) {
    let anon = server.idp_anonymous();
    for s in &ledger.sign_ins {
        let refreshed = anon
            .initiate_auth()
            .client_id(&load.client)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", &s.refresh)
            .send()
            .await;
        match refreshed {
            Ok(out) if out.authentication_result().and_then(|r| r.access_token()).is_some() => {}
            Ok(out) => lost.push(format!("{} of {}: the refresh answered no access token: {out:?}", s.via, s.username)),
            Err(e) => {
                lost.push(format!("{} of {}: the refresh token no longer refreshes: {}", s.via, s.username, brief(&e)))
            }
        }
        match anon.get_user().access_token(&s.access).send().await {
            Ok(out) if out.username() == s.username => {}
            Ok(out) => lost.push(format!("{} of {}: GetUser answered user {:?}", s.via, s.username, out.username())),
            Err(e) => lost.push(format!("{} of {}: its access token is refused: {}", s.via, s.username, brief(&e))),
        }
    }
}

async fn describe(server: &Server, pool: &str, job_id: &str) -> Result<idp::types::UserImportJobType, String> {
    match server.idp().describe_user_import_job().user_pool_id(pool).job_id(job_id).send().await {
        Ok(out) => out.user_import_job.ok_or_else(|| "no UserImportJob".to_string()),
        Err(e) => Err(brief(&e)),
    }
}

/// The usernames starting with `prefix` (ListUsers with a prefix filter).
async fn users_with_prefix(server: &Server, pool: &str, prefix: &str) -> usize {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let out = ok(server
            .idp()
            .list_users()
            .user_pool_id(pool)
            .filter(format!("username ^= \"{prefix}\""))
            .limit(60)
            .set_pagination_token(token)
            .send()
            .await);
        count += out.users().iter().filter(|u| u.username().is_some_and(|n| n.starts_with(prefix))).count();
        match out.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return count,
        }
    }
}

/// Every acknowledged job exists in a state at least as far as the clients
/// saw; the users it committed exist as its counter says (the counter and the
/// rows are one transaction); and, run to the end by the restarted process,
/// it imports every row exactly once.
async fn check_jobs(server: &Server, load: &Load, ledger: &Ledger, lost: &mut Vec<String>) {
    let pool = &load.pool;
    let mut to_finish = Vec::new();
    for facts in &ledger.jobs {
        let id = &facts.job_id;
        let before = match describe(server, pool, id).await {
            Ok(job) => job,
            Err(e) => {
                lost.push(format!("import job {id}: its CreateUserImportJob was acknowledged; now {e}"));
                continue;
            }
        };
        let status = before.status.as_ref().map(|s| s.as_str()).unwrap_or_default().to_string();
        if before.imported_users < facts.imported_seen {
            lost.push(format!(
                "import job {id}: {} rows reported imported before the kill, {} now",
                facts.imported_seen, before.imported_users
            ));
        }
        if facts.status_seen == "Succeeded" && status != "Succeeded" {
            lost.push(format!("import job {id}: reported Succeeded before the kill, {status} now"));
        }
        // The counter and the users it counts are committed together: a count
        // of the users between two reads of the counter must lie between them.
        let users = users_with_prefix(server, pool, &facts.prefix).await as i64;
        let after = describe(server, pool, id).await.map(|j| j.imported_users).unwrap_or(i64::MAX);
        if users < before.imported_users || users > after {
            lost.push(format!(
                "import job {id}: {users} of its users exist while it counts {} then {after} imported",
                before.imported_users
            ));
        }
        match status.as_str() {
            "Created" if facts.started => {
                lost.push(format!("import job {id}: StartUserImportJob was acknowledged but the job is Created"));
            }
            "Created" if facts.uploaded || facts.upload_pending => {
                // The upload, if it was acknowledged, must have kept the CSV.
                let started = server.idp().start_user_import_job().user_pool_id(pool).job_id(id).send().await;
                match started {
                    Ok(_) => to_finish.push(facts),
                    Err(e) if facts.uploaded => {
                        lost.push(format!(
                            "import job {id}: its upload was acknowledged; StartUserImportJob now: {}",
                            brief(&e)
                        ));
                    }
                    Err(_) => {}
                }
            }
            "Created" => {}
            "Pending" | "InProgress" | "Succeeded" => to_finish.push(facts),
            other => lost.push(format!("import job {id}: {other} after the restart: {before:?}")),
        }
    }
    for facts in to_finish {
        let id = &facts.job_id;
        let deadline = Instant::now() + Duration::from_secs(20);
        let job = loop {
            match describe(server, pool, id).await {
                Ok(job) if job.status == Some(UserImportJobStatusType::Succeeded) => break Some(job),
                Ok(job)
                    if matches!(
                        job.status,
                        Some(UserImportJobStatusType::Pending | UserImportJobStatusType::InProgress)
                    ) => {}
                Ok(job) => {
                    lost.push(format!("import job {id}: ended {:?} after the restart: {job:?}", job.status));
                    break None;
                }
                Err(e) => {
                    lost.push(format!("import job {id}: {e}"));
                    break None;
                }
            }
            if Instant::now() > deadline {
                lost.push(format!("import job {id}: did not finish within 20 s of the restart"));
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let Some(job) = job else { continue };
        let rows = load.import_rows as i64;
        if (job.imported_users, job.failed_users) != (rows, 0) {
            lost.push(format!(
                "import job {id}: {} imported and {} failed of {rows} rows: {job:?}",
                job.imported_users, job.failed_users
            ));
        }
        let users = users_with_prefix(server, pool, &facts.prefix).await;
        if users != load.import_rows {
            lost.push(format!("import job {id}: {users} of its {} users exist", load.import_rows));
        }
        let last = format!("{}{}", facts.prefix, load.import_rows - 1);
        match server.idp().admin_get_user().user_pool_id(pool).username(&last).send().await {
            Ok(user) => {
                let email = attr_of(user.user_attributes(), "email").map(str::to_string);
                if email != Some(format!("{last}@example.com"))
                    || user.user_status().map(|s| s.as_str()) != Some("RESET_REQUIRED")
                {
                    lost.push(format!("import job {id}: {last} was imported as {user:?}"));
                }
            }
            Err(e) => lost.push(format!("import job {id}: {last}: {}", brief(&e))),
        }
    }
}
