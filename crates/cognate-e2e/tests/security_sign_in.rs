//! Regression tests for the sign-in findings of the December 2026 security review (issue 9,
//! items 1-10): guess limits on MFA codes, Sessions and passwords (also under concurrency and
//! across nodes), ChangePassword, refresh-token families (see rotation.rs), deleted clients,
//! user enumeration in pools with PreventUserExistenceErrors, and attribute permissions.
//! Each is tested the way an attacker meets it, with raw requests on the wire.

use std::time::{Duration, Instant};

use cognate_e2e::{both_stores, unique_name, Raw, RawResponse, Server};
use serde_json::{json, Value};

both_stores!(
    mfa_codes_wear_out_their_session_and_count_toward_the_lockout,
    totp_codes_wear_out_their_session,
    user_auth_sessions_do_not_get_around_the_lockout,
    concurrent_wrong_passwords_are_evaluated_at_most_five_times,
    concurrent_right_passwords_all_sign_in,
    change_password_counts_wrong_previous_passwords,
    access_tokens_of_a_deleted_client_stop_working,
    unknown_users_get_the_same_user_auth_answer,
    unknown_users_get_a_stable_srp_salt_and_the_normalised_name,
    code_operations_answer_alike_for_real_and_unknown_users,
    counters_do_not_tell_real_from_unknown_users,
    sign_up_and_get_user_honour_the_clients_attribute_permissions,
    wrong_passwords_and_reset_requests_take_as_long_for_unknown_users,
);

const PASSWORD: &str = "Corr3ct-horse!";
const INCORRECT: &str = "Incorrect username or password.";
const LOCKED: &str = "Password attempts exceeded";

fn error_of(resp: &RawResponse) -> (String, String) {
    (resp.error_type(), resp.error_message())
}

async fn create_pool(raw: &Raw, extra: Value) -> String {
    let mut body = json!({"PoolName": unique_name("sec")});
    merge(&mut body, extra);
    let resp = raw.idp("CreateUserPool", body).await;
    assert_eq!(resp.status, 200, "CreateUserPool: {}", resp.body);
    resp.json()["UserPool"]["Id"].as_str().expect("pool id").to_owned()
}

async fn create_client(raw: &Raw, pool: &str, extra: Value) -> String {
    let mut body = json!({
        "UserPoolId": pool,
        "ClientName": unique_name("app"),
        "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                              "ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    });
    merge(&mut body, extra);
    let resp = raw.idp("CreateUserPoolClient", body).await;
    assert_eq!(resp.status, 200, "CreateUserPoolClient: {}", resp.body);
    resp.json()["UserPoolClient"]["ClientId"].as_str().expect("client id").to_owned()
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(extra)) = (into, extra) {
        into.extend(extra);
    }
}

/// A confirmed user with PASSWORD and the given attributes.
async fn create_user(raw: &Raw, pool: &str, username: &str, attributes: &[(&str, &str)]) {
    let attrs: Vec<Value> = attributes.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect();
    let resp = raw
        .idp(
            "AdminCreateUser",
            json!({"UserPoolId": pool, "Username": username, "MessageAction": "SUPPRESS", "UserAttributes": attrs}),
        )
        .await;
    assert_eq!(resp.status, 200, "AdminCreateUser: {}", resp.body);
    let resp = raw
        .idp(
            "AdminSetUserPassword",
            json!({"UserPoolId": pool, "Username": username, "Password": PASSWORD, "Permanent": true}),
        )
        .await;
    assert_eq!(resp.status, 200, "AdminSetUserPassword: {}", resp.body);
}

async fn password_auth(raw: &Raw, client: &str, username: &str, password: &str) -> RawResponse {
    raw.idp_unsigned(
        "InitiateAuth",
        json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
               "AuthParameters": {"USERNAME": username, "PASSWORD": password}}),
    )
    .await
}

async fn respond(raw: &Raw, client: &str, challenge: &str, session: &str, responses: Value) -> RawResponse {
    raw.idp_unsigned(
        "RespondToAuthChallenge",
        json!({"ClientId": client, "ChallengeName": challenge, "Session": session, "ChallengeResponses": responses}),
    )
    .await
}

fn session_of(resp: &RawResponse) -> String {
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()["Session"].as_str().expect("a Session").to_owned()
}

fn other_code(code: &str) -> String {
    let last = code.bytes().last().unwrap_or(b'0');
    format!("{}{}", &code[..code.len() - 1], if last == b'9' { '0' } else { (last + 1) as char })
}

// ---------------------------------------------------------------------------
// Items 1-4: guess limits

async fn mfa_codes_wear_out_their_session_and_count_toward_the_lockout(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(
        &raw,
        json!({"MfaConfiguration": "ON",
               "SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::000000000000:role/sms", "ExternalId": "x"}}),
    )
    .await;
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "mo", &[("phone_number", "+15555550100"), ("phone_number_verified", "true")]).await;

    let first = password_auth(&raw, &client, "mo", PASSWORD).await;
    assert_eq!(first.json()["ChallengeName"], "SMS_MFA", "{}", first.body);
    let session = session_of(&first);
    let code = server.latest_code(&pool, "mo").await;
    // Three wrong answers are each a wrong code...
    for _ in 0..3 {
        let resp =
            respond(&raw, &client, "SMS_MFA", &session, json!({"USERNAME": "mo", "SMS_MFA_CODE": other_code(&code)}))
                .await;
        assert_eq!(resp.error_type(), "CodeMismatchException", "{}", resp.body);
    }
    // ...then the Session is dead, even for the right code.
    let resp = respond(&raw, &client, "SMS_MFA", &session, json!({"USERNAME": "mo", "SMS_MFA_CODE": code})).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), "Invalid session for the user.".into()));

    // The wrong codes counted toward the user's lockout (1 password + 3 codes so far): the
    // next password is the fifth attempt, and the code after it finds the user locked out.
    let second = password_auth(&raw, &client, "mo", PASSWORD).await;
    let session = session_of(&second);
    let code = server.latest_code(&pool, "mo").await;
    let resp = respond(&raw, &client, "SMS_MFA", &session, json!({"USERNAME": "mo", "SMS_MFA_CODE": code})).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), LOCKED.into()));
    // Once the lock (one second) has passed, the right code on a live Session signs in.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let resp = respond(&raw, &client, "SMS_MFA", &session, json!({"USERNAME": "mo", "SMS_MFA_CODE": code})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.json()["AuthenticationResult"]["AccessToken"].is_string());
}

/// The current RFC 6238 code of a base32 secret (Python's standard library, so the test
/// does not share code with the server's TOTP).
fn totp_now(secret: &str) -> String {
    let script = "import base64,hashlib,hmac,struct,sys,time\n\
        s=sys.argv[1]; k=base64.b32decode(s+'='*(-len(s)%8))\n\
        h=hmac.new(k,struct.pack('>Q',int(time.time())//30),hashlib.sha1).digest()\n\
        o=h[-1]&15; print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))";
    let out = std::process::Command::new("python3").args(["-c", script, secret]).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn totp_codes_wear_out_their_session(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(&raw, json!({})).await;
    let resp = raw
        .idp(
            "SetUserPoolMfaConfig",
            json!({"UserPoolId": pool, "MfaConfiguration": "OPTIONAL",
                   "SoftwareTokenMfaConfiguration": {"Enabled": true}}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "tess", &[]).await;
    let tokens = password_auth(&raw, &client, "tess", PASSWORD).await;
    let access = tokens.json()["AuthenticationResult"]["AccessToken"].as_str().expect("access token").to_owned();
    let secret = raw.idp_unsigned("AssociateSoftwareToken", json!({"AccessToken": access})).await;
    let secret = secret.json()["SecretCode"].as_str().expect("SecretCode").to_owned();
    // Wrong codes to VerifySoftwareToken count toward the lockout like wrong passwords...
    for _ in 0..4 {
        let resp = raw
            .idp_unsigned(
                "VerifySoftwareToken",
                json!({"AccessToken": access, "UserCode": other_code(&totp_now(&secret))}),
            )
            .await;
        assert_eq!(resp.error_type(), "EnableSoftwareTokenMFAException", "{}", resp.body);
    }
    // ...and a right one clears them.
    let resp =
        raw.idp_unsigned("VerifySoftwareToken", json!({"AccessToken": access, "UserCode": totp_now(&secret)})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = raw
        .idp_unsigned(
            "SetUserMFAPreference",
            json!({"AccessToken": access, "SoftwareTokenMfaSettings": {"Enabled": true, "PreferredMfa": true}}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);

    let start = password_auth(&raw, &client, "tess", PASSWORD).await;
    assert_eq!(start.json()["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{}", start.body);
    let session = session_of(&start);
    let answer = |code: String| {
        let (raw, client, session) = (raw.clone(), client.clone(), session.clone());
        async move {
            respond(
                &raw,
                &client,
                "SOFTWARE_TOKEN_MFA",
                &session,
                json!({"USERNAME": "tess", "SOFTWARE_TOKEN_MFA_CODE": code}),
            )
            .await
        }
    };
    for _ in 0..3 {
        let resp = answer(other_code(&totp_now(&secret))).await;
        assert_eq!(resp.error_type(), "CodeMismatchException", "{}", resp.body);
    }
    let resp = answer(totp_now(&secret)).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), "Invalid session for the user.".into()));
}

async fn user_auth_sessions_do_not_get_around_the_lockout(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(&raw, json!({})).await;
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "carol", &[]).await;
    // Sessions are handed out for a username alone; collect some while unlocked.
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let resp = raw
            .idp_unsigned(
                "InitiateAuth",
                json!({"ClientId": client, "AuthFlow": "USER_AUTH", "AuthParameters": {"USERNAME": "carol"}}),
            )
            .await;
        assert_eq!(resp.json()["ChallengeName"], "SELECT_CHALLENGE", "{}", resp.body);
        sessions.push(session_of(&resp));
    }
    let answer = |session: String, password: &'static str| {
        let raw = raw.clone();
        let client = client.clone();
        async move {
            respond(
                &raw,
                &client,
                "SELECT_CHALLENGE",
                &session,
                json!({"USERNAME": "carol", "ANSWER": "PASSWORD", "PASSWORD": password}),
            )
            .await
        }
    };
    let mut sessions = sessions.into_iter();
    for _ in 0..5 {
        let resp = answer(sessions.next().unwrap(), "wrong-Passw0rd").await;
        assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), INCORRECT.into()));
    }
    // Locked: a collected Session gets no further guess, and the right password waits too.
    let resp = answer(sessions.next().unwrap(), "wrong-Passw0rd").await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), LOCKED.into()));
    let resp = answer(sessions.next().unwrap(), PASSWORD).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), LOCKED.into()));
    let resp = password_auth(&raw, &client, "carol", PASSWORD).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), LOCKED.into()));
}

/// How many guesses a lock that starts at one second and doubles lets through in `elapsed`
/// after the first five: one at 1 s, 3 s, 7 s, ...
fn guesses_after_locks(elapsed: Duration) -> usize {
    (1..10).filter(|k| Duration::from_secs((1u64 << k) - 1) < elapsed).count()
}

async fn concurrent_wrong_passwords_are_evaluated_at_most_five_times(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(&raw, json!({})).await;
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "dave", &[]).await;
    // On PostgreSQL half the guessers use a second node on the same database.
    let sibling = if server.is_postgres() { Some(server.sibling().await) } else { None };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for thread in 0..8 {
        let raw = match (&sibling, thread % 2) {
            (Some(other), 1) => other.raw(),
            _ => raw.clone(),
        };
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..8 {
                let resp = password_auth(&raw, &client, "dave", &format!("Wrong-{thread}-{i}!")).await;
                answers.push(error_of(&resp));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.expect("guessing task"));
    }
    let elapsed = started.elapsed();
    let evaluated = answers.iter().filter(|(_, m)| m == INCORRECT).count();
    let refused = answers.iter().filter(|(_, m)| m == LOCKED).count();
    assert_eq!(evaluated + refused, 64, "every answer is one of the two: {answers:?}");
    assert!(
        (5..=5 + guesses_after_locks(elapsed)).contains(&evaluated),
        "{evaluated} wrong passwords were evaluated in {elapsed:?} by 8 concurrent clients"
    );
}

/// Eight clients signing one user in at once with the right password (a load test, a retry
/// storm): each reserves an attempt before any is evaluated, so those past the fifth meet a
/// lock; they wait for a sibling's success to clear it and all sign in.
async fn concurrent_right_passwords_all_sign_in(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(&raw, json!({})).await;
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "fay", &[]).await;
    let sibling = if server.is_postgres() { Some(server.sibling().await) } else { None };
    for round in 0..3 {
        let mut tasks = Vec::new();
        for thread in 0..8 {
            let raw = match (&sibling, thread % 2) {
                (Some(other), 1) => other.raw(),
                _ => raw.clone(),
            };
            let client = client.clone();
            tasks.push(tokio::spawn(async move { password_auth(&raw, &client, "fay", PASSWORD).await }));
        }
        for task in tasks {
            let resp = task.await.expect("sign-in task");
            assert_eq!(resp.status, 200, "round {round}: {:?}", error_of(&resp));
        }
    }
}

async fn change_password_counts_wrong_previous_passwords(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(&raw, json!({})).await;
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "erin", &[]).await;
    let tokens = password_auth(&raw, &client, "erin", PASSWORD).await;
    let access = tokens.json()["AuthenticationResult"]["AccessToken"].as_str().expect("access token").to_owned();
    let change = |previous: &'static str| {
        let raw = raw.clone();
        let access = access.clone();
        async move {
            raw.idp_unsigned(
                "ChangePassword",
                json!({"AccessToken": access, "PreviousPassword": previous, "ProposedPassword": "N3w-passw0rd!"}),
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(error_of(&change("Guess-1234!").await), ("NotAuthorizedException".into(), INCORRECT.into()));
    }
    assert_eq!(error_of(&change("Guess-1234!").await), ("NotAuthorizedException".into(), LOCKED.into()));
    // The right previous password waits for the lock too, and so does a sign-in.
    assert_eq!(error_of(&change(PASSWORD).await), ("NotAuthorizedException".into(), LOCKED.into()));
    let resp = password_auth(&raw, &client, "erin", PASSWORD).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), LOCKED.into()));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let resp = change(PASSWORD).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

// ---------------------------------------------------------------------------
// Item 6: deleted app clients

async fn access_tokens_of_a_deleted_client_stop_working(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(&raw, json!({})).await;
    let client = create_client(&raw, &pool, json!({})).await;
    create_user(&raw, &pool, "finn", &[]).await;
    let tokens = password_auth(&raw, &client, "finn", PASSWORD).await;
    let access = tokens.json()["AuthenticationResult"]["AccessToken"].as_str().expect("access token").to_owned();
    assert_eq!(raw.idp_unsigned("GetUser", json!({"AccessToken": access})).await.status, 200);
    let resp = raw.idp("DeleteUserPoolClient", json!({"UserPoolId": pool, "ClientId": client})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = raw.idp_unsigned("GetUser", json!({"AccessToken": access})).await;
    assert_eq!(error_of(&resp), ("NotAuthorizedException".into(), "Invalid Access Token".into()));
}

// ---------------------------------------------------------------------------
// Items 7-9: user enumeration where the client hides user existence

async fn hiding_pool(raw: &Raw, pool_extra: Value) -> (String, String) {
    let pool = create_pool(raw, pool_extra).await;
    let client = create_client(raw, &pool, json!({"PreventUserExistenceErrors": "ENABLED"})).await;
    (pool, client)
}

async fn unknown_users_get_the_same_user_auth_answer(server: &Server) {
    let raw = server.raw();
    let (pool, client) = hiding_pool(&raw, json!({})).await;
    create_user(&raw, &pool, "realuser", &[]).await;
    let start = |username: &'static str| {
        let raw = raw.clone();
        let client = client.clone();
        async move {
            raw.idp_unsigned(
                "InitiateAuth",
                json!({"ClientId": client, "AuthFlow": "USER_AUTH", "AuthParameters": {"USERNAME": username}}),
            )
            .await
        }
    };
    let (real, ghost) = (start("realuser").await, start("ghost").await);
    assert_eq!(real.status, 200, "{}", real.body);
    assert_eq!(ghost.status, real.status, "{}", ghost.body);
    for key in ["ChallengeName", "AvailableChallenges", "ChallengeParameters"] {
        assert_eq!(ghost.json()[key], real.json()[key], "{key}: {} vs {}", ghost.body, real.body);
    }
    // Answering either Session with a wrong password fails the same way.
    let mut errors = Vec::new();
    for (resp, username) in [(&real, "realuser"), (&ghost, "ghost")] {
        let answer = respond(
            &raw,
            &client,
            "SELECT_CHALLENGE",
            &session_of(resp),
            json!({"USERNAME": username, "ANSWER": "PASSWORD", "PASSWORD": "Wrong-passw0rd"}),
        )
        .await;
        errors.push(error_of(&answer));
    }
    assert_eq!(errors[0], ("NotAuthorizedException".into(), INCORRECT.into()));
    assert_eq!(errors[1], errors[0]);
}

async fn unknown_users_get_a_stable_srp_salt_and_the_normalised_name(server: &Server) {
    let raw = server.raw();
    let (pool, client) = hiding_pool(&raw, json!({"UsernameConfiguration": {"CaseSensitive": false}})).await;
    create_user(&raw, &pool, "realuser", &[]).await;
    let srp_a = "ab".repeat(384);
    let start = |username: &'static str| {
        let (raw, client, srp_a) = (raw.clone(), client.clone(), srp_a.clone());
        async move {
            let resp = raw
                .idp_unsigned(
                    "InitiateAuth",
                    json!({"ClientId": client, "AuthFlow": "USER_SRP_AUTH",
                           "AuthParameters": {"USERNAME": username, "SRP_A": srp_a}}),
                )
                .await;
            assert_eq!(resp.status, 200, "{username}: {}", resp.body);
            resp.json()["ChallengeParameters"].clone()
        }
    };
    for (typed, normalised) in [("REALUSER", "realuser"), ("GHOST", "ghost")] {
        let (a, b) = (start(typed).await, start(typed).await);
        assert_eq!(a["SALT"], b["SALT"], "{typed}: the salt is the same on every call");
        assert_ne!(a["SRP_B"], b["SRP_B"], "{typed}: B is fresh on every call");
        assert_eq!(a["USER_ID_FOR_SRP"], normalised, "{typed}");
        assert_eq!(a["USERNAME"], normalised, "{typed}");
    }
    // Different unknown users get different salts, as different real users do.
    assert_ne!(start("ghost").await["SALT"], start("phantom").await["SALT"]);
}

async fn code_operations_answer_alike_for_real_and_unknown_users(server: &Server) {
    let raw = server.raw();
    let (pool, client) = hiding_pool(&raw, json!({"AutoVerifiedAttributes": ["email"]})).await;
    create_user(&raw, &pool, "known", &[("email", "known@example.com"), ("email_verified", "true")]).await;
    // A user with no verified contact, and a disabled one.
    create_user(&raw, &pool, "nocontact", &[]).await;
    create_user(&raw, &pool, "disabled", &[("email", "d@example.com"), ("email_verified", "true")]).await;
    assert_eq!(raw.idp("AdminDisableUser", json!({"UserPoolId": pool, "Username": "disabled"})).await.status, 200);

    let call = |op: &'static str, username: &'static str, extra: Value| {
        let (raw, client) = (raw.clone(), client.clone());
        async move {
            let mut body = json!({"ClientId": client, "Username": username});
            merge(&mut body, extra);
            raw.idp_unsigned(op, body).await
        }
    };
    let ghost = |op: &'static str, extra: Value| call(op, "ghost", extra);

    // ConfirmForgotPassword with a weak password: the code is judged first, for everyone.
    let weak = json!({"ConfirmationCode": "123456", "Password": "a"});
    let fake = ghost("ConfirmForgotPassword", weak.clone()).await;
    assert_eq!(fake.error_type(), "CodeMismatchException", "{}", fake.body);
    for user in ["known", "nocontact"] {
        let real = call("ConfirmForgotPassword", user, weak.clone()).await;
        assert_eq!(error_of(&real), error_of(&fake), "ConfirmForgotPassword of {user}");
    }
    // ConfirmSignUp of a confirmed user looks like a wrong code.
    let code = json!({"ConfirmationCode": "123456"});
    let real = call("ConfirmSignUp", "known", code.clone()).await;
    assert_eq!(error_of(&real), error_of(&ghost("ConfirmSignUp", code).await));
    // ForgotPassword and ResendConfirmationCode: a made-up delivery for anyone who cannot get
    // one (no verified contact, disabled, already confirmed), as for an unknown user.
    for (op, user) in [
        ("ForgotPassword", "nocontact"),
        ("ForgotPassword", "disabled"),
        ("ResendConfirmationCode", "known"),
        ("ResendConfirmationCode", "nocontact"),
    ] {
        let (real, fake) = (call(op, user, json!({})).await, ghost(op, json!({})).await);
        assert_eq!(real.status, 200, "{op} of {user}: {}", real.body);
        assert_eq!(fake.status, 200, "{op} of an unknown user: {}", fake.body);
        assert_eq!(cognate_e2e::json_shape(&real.json()), cognate_e2e::json_shape(&fake.json()), "{op} of {user}");
    }
    // A real user with a real code is not harmed: a weak password keeps the code usable.
    assert_eq!(call("ForgotPassword", "known", json!({})).await.status, 200);
    let code = server.latest_code(&pool, "known").await;
    let resp = call("ConfirmForgotPassword", "known", json!({"ConfirmationCode": code, "Password": "a"})).await;
    assert_eq!(resp.error_type(), "InvalidPasswordException", "{}", resp.body);
    let resp =
        call("ConfirmForgotPassword", "known", json!({"ConfirmationCode": code, "Password": "N3w-passw0rd!"})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

async fn counters_do_not_tell_real_from_unknown_users(server: &Server) {
    let raw = server.raw();
    let (pool, client) = hiding_pool(&raw, json!({"AutoVerifiedAttributes": ["email"]})).await;
    create_user(&raw, &pool, "realuser", &[]).await;
    // Six wrong passwords: both answer the same every time, lockout message included.
    for attempt in 1..=6 {
        let real = password_auth(&raw, &client, "realuser", "Wrong-passw0rd").await;
        let fake = password_auth(&raw, &client, "ghostuser", "Wrong-passw0rd").await;
        assert_eq!(error_of(&real), error_of(&fake), "attempt {attempt}");
        let want = if attempt <= 5 { INCORRECT } else { LOCKED };
        assert_eq!(error_of(&real).1, want, "attempt {attempt}");
    }
    // Six wrong sign-up codes for a pending user and for nobody: the same answers.
    let resp = raw
        .idp_unsigned(
            "SignUp",
            json!({"ClientId": client, "Username": "pending", "Password": PASSWORD,
                   "UserAttributes": [{"Name": "email", "Value": "pending@example.com"}]}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let code = server.latest_code(&pool, "pending").await;
    for attempt in 1..=6 {
        let mut answers = Vec::new();
        for username in ["pending", "nobody"] {
            let resp = raw
                .idp_unsigned(
                    "ConfirmSignUp",
                    json!({"ClientId": client, "Username": username, "ConfirmationCode": other_code(&code)}),
                )
                .await;
            answers.push(error_of(&resp));
        }
        assert_eq!(answers[0], answers[1], "attempt {attempt}");
        let want = if attempt <= 5 { "CodeMismatchException" } else { "LimitExceededException" };
        assert_eq!(answers[0].0, want, "attempt {attempt}");
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The timing side of the enumeration findings: a real user and a made-up one cost the same
/// store writes and the same hashing, so their medians stay close. Measured interleaved, one
/// request per user (so no lockout comes into it), against loopback.
async fn wrong_passwords_and_reset_requests_take_as_long_for_unknown_users(server: &Server) {
    const USERS: usize = 30;
    let raw = server.raw();
    let (pool, client) = hiding_pool(&raw, json!({})).await;
    for i in 0..USERS {
        let email = format!("timing{i}@example.com");
        create_user(&raw, &pool, &format!("timing{i}"), &[("email", email.as_str()), ("email_verified", "true")]).await;
    }
    // Warm up both paths.
    for name in ["timing0", "nobody-warm"] {
        let _ = password_auth(&raw, &client, name, "Wrong-passw0rd").await;
    }
    let (mut real, mut fake) = (Vec::new(), Vec::new());
    let (mut real_reset, mut fake_reset) = (Vec::new(), Vec::new());
    for i in 1..USERS {
        for (name, out) in [(format!("timing{i}"), &mut real), (format!("nobody{i}"), &mut fake)] {
            let started = Instant::now();
            let resp = password_auth(&raw, &client, &name, "Wrong-passw0rd").await;
            out.push(started.elapsed());
            assert_eq!(error_of(&resp).1, INCORRECT);
        }
        for (name, out) in [(format!("timing{i}"), &mut real_reset), (format!("nobody{i}"), &mut fake_reset)] {
            let started = Instant::now();
            let resp = raw.idp_unsigned("ForgotPassword", json!({"ClientId": client, "Username": name})).await;
            out.push(started.elapsed());
            assert_eq!(resp.status, 200, "{}", resp.body);
        }
    }
    for (what, real, fake) in [("wrong password", real, fake), ("ForgotPassword", real_reset, fake_reset)] {
        let (real, fake) = (median(real), median(fake));
        let gap = real.abs_diff(fake);
        // Loopback requests to a debug build take a few ms; the bound is wide enough for a
        // shared CI machine and far below the cost of a password check or a code write.
        let bound = Duration::from_millis(3).max(real.max(fake) / 2);
        eprintln!("{what}: median real {real:?}, unknown {fake:?}, gap {gap:?} (bound {bound:?})");
        assert!(gap <= bound, "{what}: median real {real:?} vs unknown {fake:?}");
    }
}

// ---------------------------------------------------------------------------
// Item 10: attribute permissions

async fn sign_up_and_get_user_honour_the_clients_attribute_permissions(server: &Server) {
    let raw = server.raw();
    let pool = create_pool(
        &raw,
        json!({"Schema": [
            {"Name": "role", "AttributeDataType": "String", "Mutable": true},
            {"Name": "secretflag", "AttributeDataType": "String", "Mutable": true, "DeveloperOnlyAttribute": true}
        ]}),
    )
    .await;
    let client = create_client(
        &raw,
        &pool,
        json!({"WriteAttributes": ["email"], "ReadAttributes": ["email", "email_verified"]}),
    )
    .await;
    let sign_up = |username: &'static str, attrs: Value| {
        let (raw, client) = (raw.clone(), client.clone());
        async move {
            raw.idp_unsigned(
                "SignUp",
                json!({"ClientId": client, "Username": username, "Password": PASSWORD, "UserAttributes": attrs}),
            )
            .await
        }
    };
    for (name, value) in [("custom:role", "admin"), ("dev:custom:secretflag", "x")] {
        let resp =
            sign_up("mallory", json!([{"Name": "email", "Value": "m@example.com"}, {"Name": name, "Value": value}]))
                .await;
        assert_eq!(
            error_of(&resp),
            ("NotAuthorizedException".into(), format!("A client attempted to write unauthorized attribute {name}"))
        );
    }
    let resp = raw.idp("AdminGetUser", json!({"UserPoolId": pool, "Username": "mallory"})).await;
    assert_eq!(resp.error_type(), "UserNotFoundException", "a refused SignUp creates no user: {}", resp.body);
    // What the client may write goes through; an admin sets the rest.
    let resp = sign_up("molly", json!([{"Name": "email", "Value": "molly@example.com"}])).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = raw
        .idp(
            "AdminUpdateUserAttributes",
            json!({"UserPoolId": pool, "Username": "molly", "UserAttributes": [{"Name": "custom:role", "Value": "staff"}]}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(raw.idp("AdminConfirmSignUp", json!({"UserPoolId": pool, "Username": "molly"})).await.status, 200);
    // GetUser shows the client what ReadAttributes allow (and sub), not custom:role.
    let admin_client = create_client(&raw, &pool, json!({})).await;
    let tokens = raw
        .idp_unsigned(
            "InitiateAuth",
            json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "molly", "PASSWORD": PASSWORD}}),
        )
        .await;
    let access = tokens.json()["AuthenticationResult"]["AccessToken"].as_str().expect("access token").to_owned();
    let user = raw.idp_unsigned("GetUser", json!({"AccessToken": access})).await;
    let names: Vec<String> = user.json()["UserAttributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|a| a["Name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"email".to_owned()) && names.contains(&"sub".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("custom:")), "{names:?}");
    // A client with no ReadAttributes reads everything but developer-only attributes.
    let tokens = password_auth(&raw, &admin_client, "molly", PASSWORD).await;
    let access = tokens.json()["AuthenticationResult"]["AccessToken"].as_str().expect("access token").to_owned();
    let user = raw.idp_unsigned("GetUser", json!({"AccessToken": access})).await;
    assert!(user.body.contains("custom:role"), "{}", user.body);
}
