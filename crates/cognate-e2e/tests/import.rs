//! User import jobs: GetCSVHeader, CreateUserImportJob with a pre-signed URL
//! served by Cognate itself, the CSV upload to it (with `curl -T` and with a
//! plain PUT from Rust; a wrong or missing token is refused and stores
//! nothing), StartUserImportJob, DescribeUserImportJob polled until the job
//! ends (the counters only grow; each failed row is named in the
//! CompletionMessage), the imported users (RESET_REQUIRED with the CSV's
//! attributes, who sign in after ForgotPassword and ConfirmForgotPassword),
//! a header with an unknown column, StopUserImportJob and ListUserImportJobs
//! (newest first, paginated). Every test runs against SQLite and PostgreSQL.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use cognate_e2e::idp::types::{
    AttributeDataType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType, SchemaAttributeType,
    UserImportJobStatusType, UserImportJobType,
};
use cognate_e2e::{
    attr_of, both_stores, epoch, expect_code, expect_err, is_uuid, now_epoch, ok, random_hex, unique_name, App, Server,
    PASSWORD,
};

both_stores!(
    csv_header_lists_standard_attributes_then_custom_ones,
    import_job_with_curl_end_to_end,
    upload_refuses_a_wrong_or_missing_token,
    plain_put_upload_is_single_use_and_unknown_columns_fail_the_job,
    start_needs_an_upload_and_stop_before_start,
    list_user_import_jobs_newest_first_with_paging,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const LOGS_ROLE: &str = "arn:aws:iam::000000000000:role/CognitoImportLogs";

/// The header GetCSVHeader answers for a pool without custom attributes.
const STANDARD_HEADER: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "cognito:mfa_enabled",
    "cognito:username",
];

/// A pool with the custom attribute `custom:tenant` and a client allowing
/// ADMIN_USER_PASSWORD_AUTH.
async fn import_app(server: &Server) -> App {
    let tenant = SchemaAttributeType::builder()
        .name("tenant")
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .build();
    let pool = server.new_pool(|p| p.schema(tenant)).await;
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(unique_name("app"))
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await)
    .user_pool_client
    .expect("CreateUserPoolClient returned no client");
    App { pool, client: client.client_id().expect("ClientId").to_string(), secret: None }
}

async fn csv_header(server: &Server, pool: &str) -> Vec<String> {
    let out = ok(server.idp().get_csv_header().user_pool_id(pool).send().await);
    assert_eq!(out.user_pool_id(), Some(pool), "GetCSVHeader UserPoolId");
    out.csv_header().to_vec()
}

/// One CSV field, quoted when it has to be (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// A CSV line with `values` in their columns of `header`, the others empty;
/// `cognito:mfa_enabled` is `false` unless given.
fn csv_row(header: &[String], values: &[(&str, &str)]) -> String {
    let by_name: HashMap<&str, &str> = values.iter().copied().collect();
    for (name, _) in values {
        assert!(header.iter().any(|h| h == name), "{name} is not a column of {header:?}");
    }
    let fields: Vec<String> = header
        .iter()
        .map(|h| match by_name.get(h.as_str()) {
            Some(v) => csv_field(v),
            None if h == "cognito:mfa_enabled" => "false".to_string(),
            None => String::new(),
        })
        .collect();
    fields.join(",")
}

/// A whole CSV document: the header line, then the rows (CRLF line ends).
fn csv_document(header: &[String], rows: &[Vec<(&str, &str)>]) -> String {
    let mut lines = vec![header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",")];
    lines.extend(rows.iter().map(|r| csv_row(header, r)));
    lines.join("\r\n") + "\r\n"
}

async fn create_job(server: &Server, pool: &str, name: &str) -> UserImportJobType {
    ok(server
        .idp()
        .create_user_import_job()
        .user_pool_id(pool)
        .job_name(name)
        .cloud_watch_logs_role_arn(LOGS_ROLE)
        .send()
        .await)
    .user_import_job
    .expect("CreateUserImportJob returned no UserImportJob")
}

async fn describe_job(server: &Server, pool: &str, job_id: &str) -> UserImportJobType {
    ok(server.idp().describe_user_import_job().user_pool_id(pool).job_id(job_id).send().await)
        .user_import_job
        .expect("DescribeUserImportJob returned no UserImportJob")
}

async fn start_job(server: &Server, pool: &str, job_id: &str) -> UserImportJobType {
    ok(server.idp().start_user_import_job().user_pool_id(pool).job_id(job_id).send().await)
        .user_import_job
        .expect("StartUserImportJob returned no UserImportJob")
}

fn status_of(job: &UserImportJobType) -> &str {
    job.status().map(|s| s.as_str()).unwrap_or_else(|| panic!("the job has no Status: {job:?}"))
}

fn url_of(job: &UserImportJobType) -> &str {
    job.pre_signed_url().unwrap_or_else(|| panic!("the job has no PreSignedUrl: {job:?}"))
}

/// Poll DescribeUserImportJob until the job has ended (Succeeded, Failed or
/// Stopped); the counters must never go down on the way.
async fn wait_for_job(server: &Server, pool: &str, job_id: &str) -> UserImportJobType {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut imported, mut failed) = (0i64, 0i64);
    let mut seen = Vec::new();
    loop {
        let job = describe_job(server, pool, job_id).await;
        let status = status_of(&job).to_string();
        assert!(
            job.imported_users() >= imported && job.failed_users() >= failed,
            "the counters went down: ({imported}, {failed}) then ({}, {}): {job:?}",
            job.imported_users(),
            job.failed_users()
        );
        (imported, failed) = (job.imported_users(), job.failed_users());
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        match status.as_str() {
            "Succeeded" | "Failed" | "Stopped" => return job,
            "InProgress" | "Pending" | "Stopping" => {}
            other => panic!("unexpected status {other} while the job runs (statuses so far {seen:?}): {job:?}"),
        }
        assert!(Instant::now() < deadline, "the import job did not end within 60 s (statuses {seen:?}): {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `curl -T file URL`: the HTTP status code and the response body.
fn curl_upload(path: &std::path::Path, url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .arg("-sS")
        .arg("--max-time")
        .arg("30")
        .arg("-w")
        .arg("\n%{http_code}")
        .arg("-T")
        .arg(path)
        .arg(url)
        .output()
        .expect("run curl (is it installed?)");
    assert!(out.status.success(), "curl failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (code.trim().parse().unwrap_or_else(|_| panic!("curl printed no status code: {text:?}")), body.to_string())
}

/// A plain HTTP PUT of `body` to `url`: the status code and the response body.
async fn put(server: &Server, url: &str, body: &str) -> (u16, String) {
    let resp = server.raw().http.put(url).body(body.to_string()).send().await.expect("send PUT");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("read PUT body"))
}

/// `url` with its `token` query parameter replaced (`None`: removed).
fn with_token(url: &str, token: Option<&str>) -> String {
    let (base, _) = url.split_once('?').unwrap_or((url, ""));
    match token {
        Some(t) => format!("{base}?token={t}"),
        None => base.to_string(),
    }
}

async fn admin_sign_in(server: &Server, app: &App, username: &str, password: &str) -> Result<(), String> {
    let res = server
        .idp()
        .admin_initiate_auth()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await;
    match res {
        Ok(out) => {
            let result = out.authentication_result().unwrap_or_else(|| panic!("no AuthenticationResult: {out:?}"));
            assert!(result.access_token().is_some() && result.id_token().is_some(), "{result:?}");
            Ok(())
        }
        Err(e) => Err(expect_err::<(), _>(Err(e)).code),
    }
}

#[track_caller]
fn assert_recent(t: Option<&aws_smithy_types::DateTime>, what: &str) -> f64 {
    let t = epoch(t.unwrap_or_else(|| panic!("{what} is missing")));
    assert!((t - now_epoch()).abs() < 300.0, "{what} {t} is not now ({})", now_epoch());
    t
}

// ---------------------------------------------------------------------------
// GetCSVHeader
// ---------------------------------------------------------------------------

async fn csv_header_lists_standard_attributes_then_custom_ones(server: &Server) {
    // A pool without custom attributes.
    let plain = server.new_pool(|p| p).await;
    assert_eq!(csv_header(server, &plain).await, STANDARD_HEADER, "GetCSVHeader of a plain pool");

    // Custom attributes come after cognito:username, in the schema's order.
    let custom = |name: &str, t: AttributeDataType| {
        SchemaAttributeType::builder().name(name).attribute_data_type(t).mutable(true).build()
    };
    let pool = server
        .new_pool(|p| {
            p.schema(custom("tenant", AttributeDataType::String)).schema(custom("level", AttributeDataType::Number))
        })
        .await;
    let mut expected: Vec<String> = STANDARD_HEADER.iter().map(|s| s.to_string()).collect();
    expected.extend(["custom:tenant".to_string(), "custom:level".to_string()]);
    assert_eq!(csv_header(server, &pool).await, expected, "GetCSVHeader with two custom attributes");

    // AddCustomAttributes adds a column at the end.
    ok(server
        .idp()
        .add_custom_attributes()
        .user_pool_id(&pool)
        .custom_attributes(custom("team", AttributeDataType::String))
        .send()
        .await);
    expected.push("custom:team".into());
    assert_eq!(csv_header(server, &pool).await, expected, "GetCSVHeader after AddCustomAttributes");

    // An unknown pool.
    expect_code(
        server.idp().get_csv_header().user_pool_id("us-east-1_NoSuchPool").send().await,
        "ResourceNotFoundException",
    );
}

// ---------------------------------------------------------------------------
// The whole flow, uploaded with curl
// ---------------------------------------------------------------------------

async fn import_job_with_curl_end_to_end(server: &Server) {
    let app = import_app(server).await;
    let pool = app.pool.as_str();
    // Someone already in the pool: a row with that username must fail.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(pool)
        .username("existing")
        .message_action(MessageActionType::Suppress)
        .send()
        .await);

    let header = csv_header(server, pool).await;
    assert_eq!(header.last().map(String::as_str), Some("custom:tenant"), "{header:?}");

    let bulk: Vec<(String, String)> =
        (0..195).map(|i| (format!("user-{i:03}"), format!("user{i:03}@example.com"))).collect();
    let mut rows: Vec<Vec<(&str, &str)>> = vec![
        // row 2
        vec![
            ("cognito:username", "alice"),
            ("name", "Doe, Alice"),
            ("given_name", "Alice"),
            ("nickname", "say \"hi\""),
            ("email", "alice@example.com"),
            ("email_verified", "true"),
            ("phone_number", "+15555550100"),
            ("phone_number_verified", "false"),
            ("locale", "en-US"),
            ("custom:tenant", "acme"),
        ],
        // row 3
        vec![("cognito:username", "bob"), ("email", "bob@example.com"), ("email_verified", "false")],
        // row 4: an invalid email
        vec![("cognito:username", "carol"), ("email", "not-an-email"), ("email_verified", "true")],
        // row 5: alice again
        vec![("cognito:username", "alice"), ("email", "alice2@example.com"), ("email_verified", "true")],
        // row 6: a user created before the import
        vec![("cognito:username", "existing"), ("email", "existing@example.com"), ("email_verified", "true")],
    ];
    for (name, email) in &bulk {
        rows.push(vec![
            ("cognito:username", name),
            ("email", email),
            ("email_verified", "true"),
            ("custom:tenant", "bulk"),
        ]);
    }
    let csv = csv_document(&header, &rows);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("users.csv");
    std::fs::write(&path, &csv).expect("write the CSV");

    // CreateUserImportJob.
    let job_name = unique_name("import");
    let created = create_job(server, pool, &job_name).await;
    let job_id = created.job_id().expect("JobId").to_string();
    assert!(job_id.starts_with("import-") && job_id.len() > "import-".len(), "JobId {job_id:?}");
    assert_eq!(status_of(&created), "Created");
    assert_eq!(created.job_name(), Some(job_name.as_str()));
    assert_eq!(created.user_pool_id(), Some(pool));
    assert_eq!(created.cloud_watch_logs_role_arn(), Some(LOGS_ROLE));
    assert_recent(created.creation_date(), "CreationDate");
    assert!(created.start_date().is_none() && created.completion_date().is_none(), "{created:?}");
    assert_eq!((created.imported_users(), created.skipped_users(), created.failed_users()), (0, 0, 0));
    let url = url_of(&created).to_string();
    assert!(
        url.starts_with(&format!("{}/", server.url())),
        "the PreSignedUrl {url:?} is not served by {}",
        server.url()
    );
    assert_eq!(describe_job(server, pool, &job_id).await, created, "DescribeUserImportJob differs from Create");

    // Upload with curl, exactly as the AWS documentation shows.
    let (code, body) = curl_upload(&path, &url);
    assert_eq!(code, 200, "curl -T answered {code}: {body:?}");
    // Uploading does not start the job.
    assert_eq!(status_of(&describe_job(server, pool, &job_id).await), "Created");

    // StartUserImportJob.
    let started = start_job(server, pool, &job_id).await;
    assert_eq!(started.job_id(), Some(job_id.as_str()));
    let status = status_of(&started);
    assert!(status == "InProgress" || status == "Pending", "StartUserImportJob answered {status}: {started:?}");
    let start_date = assert_recent(started.start_date(), "StartDate");
    assert!(start_date >= epoch(created.creation_date().expect("CreationDate")), "{started:?}");

    let done = wait_for_job(server, pool, &job_id).await;
    assert_eq!(status_of(&done), "Succeeded", "{done:?}");
    assert_eq!(
        (done.imported_users(), done.failed_users(), done.skipped_users()),
        (197, 3, 0),
        "ImportedUsers, FailedUsers, SkippedUsers: {done:?}"
    );
    let completed = assert_recent(done.completion_date(), "CompletionDate");
    assert!(completed >= start_date, "CompletionDate {completed} before StartDate {start_date}");
    assert_eq!(done.start_date(), started.start_date(), "StartDate changed");
    let message = done.completion_message().unwrap_or_else(|| panic!("no CompletionMessage: {done:?}"));
    for (row, words) in [(4, "email"), (5, "exists"), (6, "exists")] {
        let line = message
            .split("row ")
            .find(|part| part.starts_with(&format!("{row}:")))
            .unwrap_or_else(|| panic!("row {row} is not named in the CompletionMessage {message:?}"));
        assert!(line.to_lowercase().contains(words), "row {row}'s reason does not mention {words:?}: {message:?}");
    }
    for row in [2, 3, 7, 201] {
        assert!(!message.contains(&format!("row {row}:")), "row {row} did not fail: {message:?}");
    }

    // A finished job cannot start again, nor be stopped, nor take a new CSV.
    expect_code(
        server.idp().start_user_import_job().user_pool_id(pool).job_id(&job_id).send().await,
        "PreconditionNotMetException",
    );
    expect_code(
        server.idp().stop_user_import_job().user_pool_id(pool).job_id(&job_id).send().await,
        "PreconditionNotMetException",
    );
    let (code, body) = curl_upload(&path, &url);
    assert!((400..500).contains(&code), "an upload after the start answered {code}: {body:?}");
    assert_eq!(describe_job(server, pool, &job_id).await, done, "the job changed after it ended");

    // The users.
    let names = server.usernames(pool).await;
    assert_eq!(names.len(), 198, "197 imported and the existing one");
    for expected in ["alice", "bob", "existing", "user-000", "user-194"] {
        assert!(names.iter().any(|n| n == expected), "{expected} is missing from {names:?}");
    }
    expect_code(
        server.idp().admin_get_user().user_pool_id(pool).username("carol").send().await,
        "UserNotFoundException",
    );
    let alice = server.get_user(pool, "alice").await;
    assert_eq!(alice.user_status().map(|s| s.as_str()), Some("RESET_REQUIRED"), "{alice:?}");
    assert!(alice.enabled(), "{alice:?}");
    let attrs = alice.user_attributes();
    for (name, value) in [
        ("name", "Doe, Alice"),
        ("given_name", "Alice"),
        ("nickname", "say \"hi\""),
        ("email", "alice@example.com"),
        ("email_verified", "true"),
        ("phone_number", "+15555550100"),
        ("phone_number_verified", "false"),
        ("locale", "en-US"),
        ("custom:tenant", "acme"),
    ] {
        assert_eq!(attr_of(attrs, name), Some(value), "alice's {name}: {attrs:?}");
    }
    assert!(attr_of(attrs, "sub").is_some_and(is_uuid), "alice's sub: {attrs:?}");
    for absent in ["family_name", "address", "cognito:username", "cognito:mfa_enabled", "website"] {
        assert_eq!(attr_of(attrs, absent), None, "alice has {absent}: {attrs:?}");
    }
    let bob = server.get_user(pool, "bob").await;
    assert_eq!(bob.user_status().map(|s| s.as_str()), Some("RESET_REQUIRED"));
    assert_eq!(attr_of(bob.user_attributes(), "email_verified"), Some("false"));
    let bulk_user = server.get_user(pool, "user-123").await;
    assert_eq!(bulk_user.user_status().map(|s| s.as_str()), Some("RESET_REQUIRED"));
    assert_eq!(attr_of(bulk_user.user_attributes(), "email"), Some("user123@example.com"));
    assert_eq!(attr_of(bulk_user.user_attributes(), "custom:tenant"), Some("bulk"));
    // The existing user was left alone.
    let existing = server.get_user(pool, "existing").await;
    assert_eq!(existing.user_status().map(|s| s.as_str()), Some("FORCE_CHANGE_PASSWORD"));
    assert_eq!(attr_of(existing.user_attributes(), "email"), None, "{existing:?}");
    // Every sub is distinct.
    let users = server.list_all_users(pool).await;
    let mut subs: Vec<&str> = users.iter().filter_map(|u| attr_of(u.attributes(), "sub")).collect();
    subs.sort();
    subs.dedup();
    assert_eq!(subs.len(), 198, "the subs are not all distinct");

    // An imported user must reset the password before signing in.
    assert_eq!(
        admin_sign_in(server, &app, "alice", PASSWORD).await,
        Err("PasswordResetRequiredException".to_string()),
        "sign-in before the reset"
    );
    let forgot = ok(server.idp_anonymous().forgot_password().client_id(&app.client).username("alice").send().await);
    let details = forgot.code_delivery_details().unwrap_or_else(|| panic!("no CodeDeliveryDetails: {forgot:?}"));
    assert_eq!(details.delivery_medium().map(|m| m.as_str()), Some("EMAIL"), "{details:?}");
    let messages = server.outbox(pool, "alice").await;
    let last = messages.last().expect("ForgotPassword delivered no message");
    assert_eq!(last.destination, "alice@example.com");
    let code = last.code.clone().expect("the reset message has no code");
    let new_password = format!("N3w-{}!", random_hex(4));
    ok(server
        .idp_anonymous()
        .confirm_forgot_password()
        .client_id(&app.client)
        .username("alice")
        .confirmation_code(&code)
        .password(&new_password)
        .send()
        .await);
    assert_eq!(server.user_status(pool, "alice").await, "CONFIRMED");
    assert_eq!(admin_sign_in(server, &app, "alice", &new_password).await, Ok(()), "sign-in after the reset");
    assert_eq!(
        admin_sign_in(server, &app, "alice", PASSWORD).await,
        Err("NotAuthorizedException".to_string()),
        "a wrong password after the reset"
    );

    // Without a verified email there is nowhere to send a code.
    assert_eq!(admin_sign_in(server, &app, "bob", PASSWORD).await, Err("PasswordResetRequiredException".to_string()));
    expect_code(
        server.idp_anonymous().forgot_password().client_id(&app.client).username("bob").send().await,
        "InvalidParameterException",
    );
    assert_eq!(server.user_status(pool, "bob").await, "RESET_REQUIRED");
}

// ---------------------------------------------------------------------------
// The upload's token
// ---------------------------------------------------------------------------

async fn upload_refuses_a_wrong_or_missing_token(server: &Server) {
    let app = import_app(server).await;
    let pool = app.pool.as_str();
    let header = csv_header(server, pool).await;
    let csv = csv_document(&header, &[vec![("cognito:username", "mallory"), ("email", "m@example.com")]]);
    let job = create_job(server, pool, "guarded").await;
    let job_id = job.job_id().expect("JobId").to_string();
    let url = url_of(&job).to_string();
    let token = url.split_once("token=").map(|(_, t)| t.to_string()).unwrap_or_else(|| panic!("no token in {url}"));
    let other = create_job(server, pool, "other").await;
    let other_token =
        url_of(&other).split_once("token=").map(|(_, t)| t.to_string()).expect("a token in the other URL");
    assert_ne!(token, other_token, "two jobs share an upload token");

    let wrong = random_hex(token.len().div_ceil(2))[..token.len()].to_string();
    for (what, bad_url) in [
        ("a wrong token", with_token(&url, Some(&wrong))),
        ("an empty token", with_token(&url, Some(""))),
        ("no token", with_token(&url, None)),
        ("the other job's token", with_token(&url, Some(&other_token))),
        ("a truncated token", with_token(&url, Some(&token[..token.len() - 1]))),
    ] {
        let (status, body) = put(server, &bad_url, &csv).await;
        assert_eq!(status, 403, "a PUT with {what} answered {status}: {body:?}");
    }
    // curl is refused the same way.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("users.csv");
    std::fs::write(&path, &csv).expect("write the CSV");
    let (status, body) = curl_upload(&path, &with_token(&url, Some(&wrong)));
    assert_eq!(status, 403, "curl with a wrong token answered {status}: {body:?}");

    // Nothing was stored: the job cannot start, and is still Created.
    expect_code(
        server.idp().start_user_import_job().user_pool_id(pool).job_id(&job_id).send().await,
        "PreconditionNotMetException",
    );
    let described = describe_job(server, pool, &job_id).await;
    assert_eq!(described, job, "a refused upload changed the job");

    // A job id that does not exist.
    let missing = with_token(&url, Some(&token)).replace(&job_id, "import-doesnotexist");
    let (status, body) = put(server, &missing, &csv).await;
    assert!((400..500).contains(&status), "a PUT for an unknown job answered {status}: {body:?}");

    // The right token works, and then the job runs.
    let (status, body) = put(server, &url, &csv).await;
    assert_eq!(status, 200, "the PUT with the right token answered {status}: {body:?}");
    start_job(server, pool, &job_id).await;
    let done = wait_for_job(server, pool, &job_id).await;
    assert_eq!(status_of(&done), "Succeeded", "{done:?}");
    assert_eq!((done.imported_users(), done.failed_users()), (1, 0), "{done:?}");
    assert_eq!(server.user_status(pool, "mallory").await, "RESET_REQUIRED");
    // The other job is untouched.
    assert_eq!(status_of(&describe_job(server, pool, other.job_id().expect("JobId")).await), "Created");
}

// ---------------------------------------------------------------------------
// A plain PUT from Rust; an unknown column
// ---------------------------------------------------------------------------

async fn plain_put_upload_is_single_use_and_unknown_columns_fail_the_job(server: &Server) {
    let app = import_app(server).await;
    let pool = app.pool.as_str();
    let header = csv_header(server, pool).await;

    // The pre-signed URL takes one upload: a second one is refused and the first is imported.
    let job = create_job(server, pool, "single-use").await;
    let job_id = job.job_id().expect("JobId").to_string();
    let first: Vec<Vec<(&str, &str)>> = vec![
        vec![("cognito:username", "second-a"), ("email", "a@example.com"), ("custom:tenant", "t1")],
        vec![("cognito:username", "second-b"), ("phone_number", "+15555550123"), ("phone_number_verified", "true")],
    ];
    let first = csv_document(&header, &first);
    let second = csv_document(&header, &[vec![("cognito:username", "second-upload"), ("email", "s@example.com")]]);
    let (status, body) = put(server, url_of(&job), &first).await;
    assert_eq!(status, 200, "PUT answered {status}: {body:?}");
    let (status, body) = put(server, url_of(&job), &second).await;
    assert_eq!(status, 403, "a second PUT answered {status}: {body:?}");
    start_job(server, pool, &job_id).await;
    let done = wait_for_job(server, pool, &job_id).await;
    assert_eq!(status_of(&done), "Succeeded", "{done:?}");
    assert_eq!((done.imported_users(), done.failed_users()), (2, 0), "{done:?}");
    assert_eq!(server.usernames(pool).await, ["second-a", "second-b"], "the second upload was imported");
    let b = server.get_user(pool, "second-b").await;
    assert_eq!(attr_of(b.user_attributes(), "phone_number"), Some("+15555550123"));
    assert_eq!(attr_of(b.user_attributes(), "phone_number_verified"), Some("true"));
    assert_eq!(attr_of(server.get_user(pool, "second-a").await.user_attributes(), "custom:tenant"), Some("t1"));

    // A header with a column GetCSVHeader does not list: the job fails and
    // says which column; nobody is imported.
    let job = create_job(server, pool, "unknown-column").await;
    let job_id = job.job_id().expect("JobId").to_string();
    let mut bad_header = header.clone();
    bad_header.push("shoe_size".into());
    let rows: Vec<Vec<(&str, &str)>> = vec![
        vec![("cognito:username", "never-a"), ("email", "na@example.com"), ("shoe_size", "42")],
        vec![("cognito:username", "never-b"), ("email", "nb@example.com"), ("shoe_size", "43")],
    ];
    let (status, body) = put(server, url_of(&job), &csv_document(&bad_header, &rows)).await;
    assert_eq!(status, 200, "PUT answered {status}: {body:?}");
    start_job(server, pool, &job_id).await;
    let failed = wait_for_job(server, pool, &job_id).await;
    assert_eq!(status_of(&failed), "Failed", "{failed:?}");
    assert_eq!(failed.imported_users(), 0, "{failed:?}");
    let message = failed.completion_message().unwrap_or_else(|| panic!("no CompletionMessage: {failed:?}"));
    assert!(message.contains("shoe_size"), "the CompletionMessage does not name the column: {message:?}");
    assert_recent(failed.completion_date(), "CompletionDate");
    assert_eq!(server.usernames(pool).await, ["second-a", "second-b"], "a failed job imported users");

    // A header without cognito:username fails too.
    let job = create_job(server, pool, "no-username").await;
    let job_id = job.job_id().expect("JobId").to_string();
    let no_username: Vec<String> = header.iter().filter(|h| *h != "cognito:username").cloned().collect();
    let (status, body) =
        put(server, url_of(&job), &csv_document(&no_username, &[vec![("email", "x@example.com")]])).await;
    assert_eq!(status, 200, "PUT answered {status}: {body:?}");
    start_job(server, pool, &job_id).await;
    let failed = wait_for_job(server, pool, &job_id).await;
    assert_eq!(status_of(&failed), "Failed", "{failed:?}");
    let message = failed.completion_message().unwrap_or_default();
    assert!(message.contains("cognito:username"), "the CompletionMessage does not name cognito:username: {message:?}");
    assert_eq!(server.usernames(pool).await.len(), 2);
}

// ---------------------------------------------------------------------------
// Start without an upload; stop before the start; errors
// ---------------------------------------------------------------------------

async fn start_needs_an_upload_and_stop_before_start(server: &Server) {
    let app = import_app(server).await;
    let pool = app.pool.as_str();
    let job = create_job(server, pool, "never-uploaded").await;
    let job_id = job.job_id().expect("JobId").to_string();

    expect_code(
        server.idp().start_user_import_job().user_pool_id(pool).job_id(&job_id).send().await,
        "PreconditionNotMetException",
    );
    assert_eq!(describe_job(server, pool, &job_id).await, job, "a refused start changed the job");

    // StopUserImportJob on a Created job: Stopped at once.
    let stopped = ok(server.idp().stop_user_import_job().user_pool_id(pool).job_id(&job_id).send().await)
        .user_import_job
        .expect("StopUserImportJob returned no UserImportJob");
    assert_eq!(status_of(&stopped), "Stopped", "{stopped:?}");
    assert_eq!(stopped.job_id(), Some(job_id.as_str()));
    assert_recent(stopped.completion_date(), "CompletionDate");
    assert_eq!(describe_job(server, pool, &job_id).await, stopped, "DescribeUserImportJob differs from Stop");
    assert_eq!(stopped.status(), Some(&UserImportJobStatusType::Stopped));

    // A stopped job takes no upload and cannot start or stop again.
    let header = csv_header(server, pool).await;
    let csv = csv_document(&header, &[vec![("cognito:username", "late"), ("email", "late@example.com")]]);
    let (status, body) = put(server, url_of(&job), &csv).await;
    assert!((400..500).contains(&status), "an upload to a stopped job answered {status}: {body:?}");
    expect_code(
        server.idp().start_user_import_job().user_pool_id(pool).job_id(&job_id).send().await,
        "PreconditionNotMetException",
    );
    expect_code(
        server.idp().stop_user_import_job().user_pool_id(pool).job_id(&job_id).send().await,
        "PreconditionNotMetException",
    );
    assert!(server.usernames(pool).await.is_empty());

    // Unknown jobs and pools.
    for res in [
        server.idp().describe_user_import_job().user_pool_id(pool).job_id("import-nosuchjob0").send().await.map(|_| ()),
        server
            .idp()
            .describe_user_import_job()
            .user_pool_id("us-east-1_NoSuchPool")
            .job_id(&job_id)
            .send()
            .await
            .map(|_| ()),
    ] {
        expect_code(res, "ResourceNotFoundException");
    }
    expect_code(
        server.idp().start_user_import_job().user_pool_id(pool).job_id("import-nosuchjob0").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        server.idp().stop_user_import_job().user_pool_id(pool).job_id("import-nosuchjob0").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        server
            .idp()
            .create_user_import_job()
            .user_pool_id("us-east-1_NoSuchPool")
            .job_name("x")
            .cloud_watch_logs_role_arn(LOGS_ROLE)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    // A job of another pool is not found through this one.
    let other = server.new_pool(|p| p).await;
    expect_code(
        server.idp().describe_user_import_job().user_pool_id(&other).job_id(&job_id).send().await,
        "ResourceNotFoundException",
    );
}

// ---------------------------------------------------------------------------
// ListUserImportJobs
// ---------------------------------------------------------------------------

async fn list_user_import_jobs_newest_first_with_paging(server: &Server) {
    let app = import_app(server).await;
    let pool = app.pool.as_str();
    let out = ok(server.idp().list_user_import_jobs().user_pool_id(pool).max_results(10).send().await);
    assert!(out.user_import_jobs().is_empty(), "{out:?}");
    assert!(out.pagination_token().is_none(), "{out:?}");

    let mut ids = Vec::new();
    for i in 0..7 {
        let job = create_job(server, pool, &format!("job-{i}")).await;
        ids.push(job.job_id().expect("JobId").to_string());
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // Another pool's jobs are not listed.
    let other = server.new_pool(|p| p).await;
    create_job(server, &other, "elsewhere").await;
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    // One page with everything.
    let out = ok(server.idp().list_user_import_jobs().user_pool_id(pool).max_results(60).send().await);
    let listed: Vec<String> = out.user_import_jobs().iter().filter_map(|j| j.job_id().map(str::to_string)).collect();
    assert_eq!(listed, newest_first, "ListUserImportJobs is not newest first");
    assert!(out.pagination_token().is_none(), "{out:?}");
    let first = &out.user_import_jobs()[0];
    assert_eq!(first.job_name(), Some("job-6"));
    assert_eq!(status_of(first), "Created");
    assert_eq!(first, &describe_job(server, pool, &ids[6]).await, "the listed job differs from Describe");

    // Pages of 3.
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(server
            .idp()
            .list_user_import_jobs()
            .user_pool_id(pool)
            .max_results(3)
            .set_pagination_token(token.clone())
            .send()
            .await);
        pages.push(out.user_import_jobs().iter().filter_map(|j| j.job_id().map(str::to_string)).collect());
        match out.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
        assert!(pages.len() < 10, "ListUserImportJobs does not stop paginating: {pages:?}");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1], "page sizes: {pages:?}");
    assert_eq!(pages.concat(), newest_first, "pages of 3");

    // A stopped job is still listed, with its new status.
    ok(server.idp().stop_user_import_job().user_pool_id(pool).job_id(&ids[3]).send().await);
    let out = ok(server.idp().list_user_import_jobs().user_pool_id(pool).max_results(60).send().await);
    let statuses: Vec<(&str, &str)> =
        out.user_import_jobs().iter().map(|j| (j.job_id().unwrap_or_default(), status_of(j))).collect();
    assert_eq!(statuses.len(), 7);
    for (id, status) in statuses {
        let expected = if id == ids[3] { "Stopped" } else { "Created" };
        assert_eq!(status, expected, "{id}");
    }

    // MaxResults is required and between 1 and 60.
    let raw = server.raw().idp("ListUserImportJobs", serde_json::json!({ "UserPoolId": pool })).await;
    assert_eq!(raw.status, 400, "ListUserImportJobs without MaxResults answered {}: {}", raw.status, raw.body);
    for bad in [0, 61] {
        let info = expect_err(server.idp().list_user_import_jobs().user_pool_id(pool).max_results(bad).send().await);
        assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "MaxResults {bad}: {info:?}");
    }
    // A token the server never issued.
    let info = expect_err(
        server.idp().list_user_import_jobs().user_pool_id(pool).max_results(3).pagination_token("bogus").send().await,
    );
    assert_eq!(info.status, 400, "a bogus PaginationToken: {info:?}");
    // An unknown pool.
    expect_code(
        server.idp().list_user_import_jobs().user_pool_id("us-east-1_NoSuchPool").max_results(3).send().await,
        "ResourceNotFoundException",
    );
}

// ---------------------------------------------------------------------------
// A job whose node dies carries on elsewhere
// ---------------------------------------------------------------------------

/// Rows of the resumed job: enough batches (1,000 rows each) that the node is
/// killed well before the end.
const RESUMED_ROWS: usize = 5_000;
const SHORT_LEASE: &[&str] = &["--import-lease-seconds", "2"];

/// Uploads RESUMED_ROWS good rows and one more repeating the first username,
/// starts the job, and waits until at least one batch is committed (but not
/// all). Returns the pool, the job id and the rows imported when it returned.
async fn start_long_job(server: &Server) -> (String, String, i64) {
    let pool = server.new_pool(|p| p).await;
    let header = csv_header(server, &pool).await;
    let names: Vec<(String, String)> =
        (0..RESUMED_ROWS).map(|i| (format!("bulk-{i:05}"), format!("bulk{i:05}@example.com"))).collect();
    let mut rows: Vec<Vec<(&str, &str)>> = names
        .iter()
        .map(|(user, email)| vec![("cognito:username", user.as_str()), ("email", email.as_str())])
        .collect();
    rows.push(vec![("cognito:username", "bulk-00000")]);
    let job = create_job(server, &pool, "resumed").await;
    let job_id = job.job_id().expect("JobId").to_string();
    let (status, body) = put(server, url_of(&job), &csv_document(&header, &rows)).await;
    assert_eq!(status, 200, "upload: {body}");
    start_job(server, &pool, &job_id).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = describe_job(server, &pool, &job_id).await;
        assert_eq!(status_of(&job), "InProgress", "the job ended before its node could be killed: {job:?}");
        if job.imported_users() > 0 {
            return (pool, job_id, job.imported_users());
        }
        assert!(Instant::now() < deadline, "no batch committed within 60 s: {job:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of an unlabelled or fully labelled sample in a /metrics scrape.
async fn metric(server: &Server, sample: &str) -> i64 {
    let resp = server.raw().get("/metrics").await;
    assert_eq!(resp.status, 200, "GET /metrics: {}", resp.body);
    let prefix = format!("{sample} ");
    let line = resp.body.lines().find(|l| l.starts_with(&prefix));
    let value = line.unwrap_or_else(|| panic!("no {sample} in /metrics:\n{}", resp.body));
    value[prefix.len()..].trim().parse().unwrap_or_else(|_| panic!("not a number: {value}"))
}

/// After the node that ran the job died with `before` rows seen committed,
/// `survivor` (a restart, or another node) finishes it: every row once, the
/// late duplicate row reported, the pool's user count exact, the survivor's
/// metrics showing the rows it imported itself.
async fn check_resumed(survivor: &Server, pool: &str, job_id: &str, before: i64) {
    let stalled = describe_job(survivor, pool, job_id).await;
    assert!(stalled.imported_users() >= before, "committed progress was lost: {before} then {stalled:?}");
    let job = wait_for_job(survivor, pool, job_id).await;
    let total = RESUMED_ROWS as i64;
    assert_eq!(status_of(&job), "Succeeded", "{job:?}");
    assert_eq!((job.imported_users(), job.failed_users(), job.skipped_users()), (total, 1, 0), "{job:?}");
    let message = job.completion_message().unwrap_or_default();
    let dup_row = format!("row {}: a user with this username already exists", RESUMED_ROWS + 2);
    assert!(message.contains(&dup_row), "CompletionMessage should name the duplicate row: {message}");
    let described = ok(survivor.idp().describe_user_pool().user_pool_id(pool).send().await);
    let estimated = described.user_pool.map(|p| p.estimated_number_of_users);
    assert_eq!(estimated, Some(RESUMED_ROWS as i32), "EstimatedNumberOfUsers");
    let last = ok(survivor
        .idp()
        .admin_get_user()
        .user_pool_id(pool)
        .username(format!("bulk-{:05}", RESUMED_ROWS - 1))
        .send()
        .await);
    assert_eq!(last.user_status().map(|s| s.as_str()), Some("RESET_REQUIRED"));
    let resumed_rows = metric(survivor, "cognate_import_rows_total{outcome=\"imported\"}").await;
    assert!(resumed_rows >= 1 && resumed_rows <= total - before, "the survivor imported {resumed_rows} rows");
    assert_eq!(metric(survivor, "cognate_import_rows_total{outcome=\"failed\"}").await, 1);
    assert_eq!(metric(survivor, "cognate_import_jobs_finished_total{status=\"Succeeded\"}").await, 1);
    assert_eq!(metric(survivor, "cognate_import_jobs_running").await, 0);
}

/// SQLite: the node is killed (SIGKILL) mid-job and started again on its data
/// dir; the new process takes the job over once the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_resumes_its_import_after_restart() {
    let mut server = Server::sqlite_with(SHORT_LEASE).await;
    let (pool, job_id, before) = start_long_job(&server).await;
    server.restart().await;
    check_resumed(&server, &pool, &job_id, before).await;
}

/// PostgreSQL: the node running the job is killed; another node on the same
/// database takes the job over once the lease runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_resumes_the_import_of_a_killed_node() {
    let Some(mut first) = Server::postgres_with(SHORT_LEASE).await else {
        return;
    };
    let second = first.sibling_with(SHORT_LEASE).await;
    let (pool, job_id, before) = start_long_job(&first).await;
    first.stop();
    check_resumed(&second, &pool, &job_id, before).await;
}
