//! Lambda triggers with boto3 (`tests/clients/py/boto3_triggers.py`): the pools are made with
//! boto3 (LambdaConfig included), the functions of tests/lambda run in the stand-in Lambda
//! host, and what boto3 gets back is checked here against what Cognito answers: refusals as
//! the modeled exceptions with the functions' messages, auto-confirmation, claims and scopes,
//! the CUSTOM_AUTH questions, migrated users, and the two Lambda errors of a function that is
//! too slow or answers garbage; and the events the functions were given. The AWS CLI's side
//! is tests/cli/triggers.sh.

use cognate_e2e::clients::Py;
use cognate_e2e::lambda_host::LambdaHost;
use cognate_e2e::Server;
use serde_json::{json, Value};

/// A refusal as `clientlib.refusal` reports it: botocore raised the modeled exception of
/// `code` (not a bare ClientError), with this message and HTTP 400.
fn refusal(code: &str, message: &str) -> Value {
    json!({"exception": code, "code": code, "message": message, "status": 400})
}

fn sources(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["triggerSource"].as_str().unwrap_or("?")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sees_every_trigger() {
    let Some(py) = Py::get("boto3_sees_every_trigger") else {
        return;
    };
    let host = LambdaHost::start(&py.python);
    let server = Server::sqlite_with(&["--lambda-endpoint", &host.url]).await;
    let r = py.run("boto3_triggers.py", json!({"endpoint": server.url()})).await;
    sign_up(&r, &host).await;
    authentication(&r, &host).await;
    custom_auth(&r, &host).await;
    migration(&r, &host).await;
    failures(&r, &host).await;
}

/// PreSignUp refuses a blocked domain at SignUp and AdminCreateUser, confirms an invited user;
/// PostConfirmation follows a code confirmation and a password reset.
async fn sign_up(r: &Value, host: &LambdaHost) {
    let out = &r["signUp"];
    let blocked = refusal(
        "UserLambdaValidationException",
        "PreSignUp failed with error Sign-ups from blocked.example are closed.",
    );
    assert_eq!(out["refused"], blocked, "{out}");
    assert_eq!(out["refusedAdmin"], blocked, "{out}");
    assert_eq!(out["malloryAfter"], "UserNotFoundException", "a refused sign-up creates nobody");
    assert_eq!(out["invited"], json!({"confirmed": true, "codeSent": false}), "{out}");
    assert_eq!(out["ivy"]["status"], "CONFIRMED", "{out}");
    assert_eq!(out["ivy"]["attributes"]["email_verified"], "true", "autoVerifyEmail: {out}");
    assert_eq!((&out["walt"]["confirmed"], &out["waltConfirmed"]), (&json!(false), &json!("CONFIRMED")), "{out}");

    let pool = &r["pools"]["signUp"];
    let events = host.events_of("pre-sign-up").await;
    assert_eq!(
        sources(&events),
        ["PreSignUp_SignUp", "PreSignUp_AdminCreateUser", "PreSignUp_SignUp", "PreSignUp_SignUp"],
        "mallory twice, ivy, walt"
    );
    let ivy = &events[2];
    assert_eq!((&ivy["userName"], &ivy["userPoolId"]), (&json!("ivy"), &pool["poolId"]));
    assert_eq!(ivy["callerContext"]["clientId"], pool["clientId"]);
    assert_eq!(ivy["request"]["validationData"], json!({"invitation": "welcome"}));
    assert_eq!(ivy["request"]["clientMetadata"], json!({"campaign": "winter"}));

    let confirmations = host.events_of("post_confirmation").await;
    assert_eq!(
        sources(&confirmations),
        ["PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmForgotPassword"],
        "walt's confirmation and reset; not ivy, whom PreSignUp confirmed"
    );
    assert!(confirmations.iter().all(|e| e["userName"] == "walt"), "{confirmations:?}");
    assert_eq!(confirmations[0]["request"]["clientMetadata"], json!({"source": "email-link"}));
    assert_eq!(confirmations[0]["request"]["userAttributes"]["cognito:user_status"], "CONFIRMED");
}

/// PreAuthentication refuses a suspended user; PostAuthentication follows each sign-in;
/// PreTokenGeneration V2_0 shapes the tokens at sign-in, refresh and a new password.
async fn authentication(r: &Value, host: &LambdaHost) {
    let out = &r["authentication"];
    assert_eq!(
        out["suspended"],
        refusal("UserLambdaValidationException", "PreAuthentication failed with error This account is suspended."),
        "{out}"
    );
    let (id, access) = (&out["id"], &out["access"]);
    assert_eq!(id["tenant"], json!({"id": 7, "name": "Acme"}), "a JSON object claim in the ID token: {id}");
    assert_eq!((&access["tenant_id"], &access["seats"]), (&json!("t-7"), &json!(25)), "{access}");
    assert_eq!(access["scope"], "orders/read", "a scope added, aws.cognito.signin.user.admin suppressed: {access}");
    assert_eq!(access["username"], "alice");
    assert_eq!(out["refreshed"]["tenant_id"], "t-7", "{out}");
    assert_eq!(out["newPassword"]["challenge"], "NEW_PASSWORD_REQUIRED", "{out}");
    assert_eq!(out["newPassword"]["access"]["tenant_id"], "t-7", "{out}");

    let pre_auth = host.events_of("pre_authentication").await;
    let alice = pre_auth.iter().find(|e| e["userName"] == "alice").expect("PreAuthentication for alice");
    assert_eq!(alice["triggerSource"], "PreAuthentication_Authentication");
    assert_eq!(alice["request"]["validationData"], json!({"app": "web"}), "ClientMetadata as validationData");
    let post_auth = host.events_of("post-authentication").await;
    let signed_in: Vec<&Value> = post_auth.iter().map(|e| &e["userName"]).collect();
    assert_eq!(signed_in, [&json!("alice"), &json!("newbie")], "after each sign-in, none after a refusal");
    let tokens = host.events_of("pre-token-v2").await;
    assert_eq!(
        sources(&tokens),
        ["TokenGeneration_Authentication", "TokenGeneration_RefreshTokens", "TokenGeneration_NewPasswordChallenge"]
    );
    assert!(tokens.iter().all(|e| e["version"] == "2"), "{tokens:?}");
}

/// CUSTOM_AUTH with the quiz functions: the question, a wrong answer and another try, tokens.
async fn custom_auth(r: &Value, host: &LambdaHost) {
    let out = &r["quiz"];
    let question =
        json!({"challenge": "CUSTOM_CHALLENGE", "parameters": {"USERNAME": "carol", "question": "What is 6 x 7?"}});
    assert_eq!(out["first"], question, "the private answer stays private: {out}");
    assert_eq!(out["again"], question, "a wrong answer: another try: {out}");
    assert_eq!(out["done"]["challenge"], Value::Null, "{out}");
    assert_eq!(out["done"]["access"]["username"], "carol", "{out}");

    let defines = host.events_of("define-auth-challenge").await;
    assert_eq!(defines.len(), 3, "Define runs at the start and after each answer");
    assert_eq!(defines[0]["request"]["clientMetadata"], json!({"device": "kiosk"}));
    let history = defines[2]["request"]["session"].as_array().cloned().unwrap_or_default();
    let results: Vec<&Value> = history.iter().map(|s| &s["challengeResult"]).collect();
    assert_eq!(results, [&json!(false), &json!(true)], "the wrong answer, then the right one: {history:?}");
    assert_eq!(sources(&host.events_of("create_auth_challenge").await), ["CreateAuthChallenge_Authentication"; 2]);
    let answers: Vec<Value> =
        host.events_of("verify-auth-challenge").await.iter().map(|e| e["request"]["challengeAnswer"].clone()).collect();
    assert_eq!(answers, [json!("41"), json!("42")]);
}

/// UserMigration: a sign-in with the old password migrates the user once; a wrong one is the
/// function's refusal; ForgotPassword migrates a user as RESET_REQUIRED.
async fn migration(r: &Value, host: &LambdaHost) {
    let out = &r["migration"];
    let emails: Vec<&Value> = out["signIns"].as_array().expect("sign-ins").iter().map(|c| &c["email"]).collect();
    assert_eq!(emails, [&json!("lee@example.com"); 2], "{out}");
    assert_eq!(out["lee"]["status"], "CONFIRMED", "{out}");
    assert_eq!(
        out["refused"],
        refusal("UserLambdaValidationException", "UserMigration failed with error Bad password."),
        "{out}"
    );
    assert_eq!(out["kimAfter"], "UserNotFoundException", "a refused migration creates nobody");
    assert_eq!(out["forgot"], json!({"attribute": "email", "status": "RESET_REQUIRED"}), "{out}");
    let events = host.events_of("user_migration").await;
    assert_eq!(
        sources(&events),
        ["UserMigration_Authentication", "UserMigration_Authentication", "UserMigration_ForgotPassword"],
        "lee once (then the pool has him), kim refused, kim at ForgotPassword"
    );
    assert_eq!(events[0]["request"]["password"], "Legacy-Passw0rd!");
}

/// A function slower than 5 seconds (retried, three calls in all) and one answering garbage
/// (not retried): Cognito's two Lambda errors, as boto3's modeled exceptions; nothing created.
async fn failures(r: &Value, host: &LambdaHost) {
    let out = &r["failures"];
    let slow = &out["slow"];
    assert_eq!(
        (&slow["exception"], &slow["code"], &slow["status"]),
        (&json!("UnexpectedLambdaException"), &json!("UnexpectedLambdaException"), &json!(400)),
        "{out}"
    );
    let message = slow["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("PreSignUp invocation failed due to error ")
            && message.contains("Socket timeout while invoking Lambda function"),
        "{message}"
    );
    assert!(out["slowSeconds"].as_f64().unwrap_or_default() >= 15.0, "three attempts of 5 s each: {out}");
    assert_eq!(host.events_of("slow").await.len(), 3, "three attempts");
    assert_eq!(out["samAfter"], "UserNotFoundException", "a failed PreSignUp creates nobody");
    assert_eq!(out["garbage"], refusal("InvalidLambdaResponseException", "Unrecognizable lambda output"), "{out}");
    assert_eq!(host.events_of("garbage").await.len(), 1, "an answer is not retried");
}
