//! Lambda triggers: the pool's functions, written as ordinary Lambda handlers (Node and
//! Python, in tests/lambda), run by a stand-in for Lambda's Invoke API (`--lambda-endpoint`)
//! or as webhooks (`[lambda.functions]`); their events as Cognito sends them, their answers
//! applied (refusals, auto-confirmation, claims and scopes), their failures reported as
//! Cognito's three Lambda errors with nothing half-done. SQLite and PostgreSQL.

use cognate_e2e::idp::types::VerifiedAttributeType;
use cognate_e2e::idp::types::{
    AuthFlowType, ExplicitAuthFlowsType, LambdaConfigType, PreTokenGenerationLambdaVersionType,
    PreTokenGenerationVersionConfigType,
};
use cognate_e2e::lambda_host::{arn, pool_with_triggers, LambdaHost};
use cognate_e2e::{attr, b64url_decode, expect_err, ok, Server, PASSWORD};
use serde_json::{json, Value};

fn host() -> LambdaHost {
    LambdaHost::start(std::path::Path::new("python3"))
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&b64url_decode(payload)).expect("claims")
}

/// A pool with `config` (emails verified by code) and an app client for the password flows.
async fn pool_with(server: &Server, config: LambdaConfigType) -> (String, String) {
    pool_with_triggers(server, config, |p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await
}

async fn confirmed_user(server: &Server, pool: &str, username: &str) {
    let email = format!("{username}@example.com");
    server.confirmed_user(pool, username, &[("email", &email), ("email_verified", "true")]).await;
}

cognate_e2e::with_lambda_on_both_stores!(
    pre_sign_up_refuses_confirms_and_post_confirmation_follows,
    authentication_triggers_and_pre_token_generation_v2,
    pre_token_generation_v1_and_the_ways_a_function_fails,
    custom_auth_asks_the_functions_questions,
    user_migration_at_sign_in_and_at_forgot_password,
    pre_token_generation_v3_shapes_machine_tokens,
    hosted_sign_in_runs_pre_token_generation_once,
    a_careless_define_function_cannot_sign_in_nobody,
);

/// PreSignUp refuses a blocked domain (no user is created, by SignUp or AdminCreateUser),
/// confirms an invited user (no code sent), and PostConfirmation runs when a code confirms.
async fn pre_sign_up_refuses_confirms_and_post_confirmation_follows(server: &Server, host: &LambdaHost) {
    let config =
        LambdaConfigType::builder().pre_sign_up(arn("pre-sign-up")).post_confirmation(arn("post_confirmation")).build();
    let (pool, client) = pool_with(server, config).await;
    let refused = expect_err(
        server
            .idp()
            .sign_up()
            .client_id(&client)
            .username("mallory")
            .password(PASSWORD)
            .user_attributes(attr("email", "mallory@blocked.example"))
            .send()
            .await,
    );
    assert_eq!(
        (refused.status, refused.code.as_str(), refused.message.as_str()),
        (400, "UserLambdaValidationException", "PreSignUp failed with error Sign-ups from blocked.example are closed.")
    );
    let missing = expect_err(server.idp().admin_get_user().user_pool_id(&pool).username("mallory").send().await);
    assert_eq!(missing.code, "UserNotFoundException", "a refused sign-up creates nobody");
    let refused = expect_err(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("mallory")
            .user_attributes(attr("email", "mallory@blocked.example"))
            .send()
            .await,
    );
    assert_eq!(refused.code, "UserLambdaValidationException");

    let invited = ok(server
        .idp()
        .sign_up()
        .client_id(&client)
        .username("ivy")
        .password(PASSWORD)
        .user_attributes(attr("email", "ivy@example.com"))
        .validation_data(attr("invitation", "welcome"))
        .client_metadata("campaign", "winter")
        .send()
        .await);
    assert!(invited.user_confirmed, "the function confirmed the user");
    assert!(invited.code_delivery_details.is_none(), "no code for a confirmed user");
    let ivy = server.get_user(&pool, "ivy").await;
    assert_eq!(ivy.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    let verified = ivy.user_attributes().iter().find(|a| a.name == "email_verified").and_then(|a| a.value.clone());
    assert_eq!(verified.as_deref(), Some("true"), "autoVerifyEmail");

    let events = host.events_of("pre-sign-up").await;
    let event = events.iter().find(|e| e["userName"] == "ivy").expect("PreSignUp for ivy");
    assert_eq!(event["version"], "1");
    assert_eq!(event["triggerSource"], "PreSignUp_SignUp");
    assert_eq!(event["userPoolId"], pool.as_str());
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["callerContext"]["clientId"], client.as_str());
    assert_eq!(event["request"]["userAttributes"], json!({"email": "ivy@example.com"}));
    assert_eq!(event["request"]["validationData"], json!({"invitation": "welcome"}));
    assert_eq!(event["request"]["clientMetadata"], json!({"campaign": "winter"}));
    assert!(
        host.events_of("pre-sign-up").await.iter().any(|e| e["triggerSource"] == "PreSignUp_AdminCreateUser"),
        "AdminCreateUser runs PreSignUp too"
    );

    ok(server
        .idp()
        .sign_up()
        .client_id(&client)
        .username("walt")
        .password(PASSWORD)
        .user_attributes(attr("email", "walt@example.com"))
        .send()
        .await);
    let code = server.latest_code(&pool, "walt").await;
    ok(server
        .idp()
        .confirm_sign_up()
        .client_id(&client)
        .username("walt")
        .confirmation_code(code)
        .client_metadata("source", "email-link")
        .send()
        .await);
    let confirmations = host.events_of("post_confirmation").await;
    assert_eq!(confirmations.len(), 1, "PostConfirmation runs once, for walt only (ivy was confirmed by PreSignUp)");
    let event = &confirmations[0];
    assert_eq!(event["triggerSource"], "PostConfirmation_ConfirmSignUp");
    assert_eq!(event["request"]["userAttributes"]["email"], "walt@example.com");
    assert_eq!(event["request"]["userAttributes"]["email_verified"], "true");
    assert_eq!(event["request"]["userAttributes"]["cognito:user_status"], "CONFIRMED");
    assert_eq!(event["request"]["clientMetadata"], json!({"source": "email-link"}));
}

/// PreAuthentication refuses a suspended user and a banned app (ClientMetadata as
/// validationData); PostAuthentication runs after a sign-in; a V2_0 PreTokenGeneration puts
/// typed claims into both tokens and changes the access token's scopes, at sign-in and refresh.
async fn authentication_triggers_and_pre_token_generation_v2(server: &Server, host: &LambdaHost) {
    let token_config = PreTokenGenerationVersionConfigType::builder()
        .lambda_version(PreTokenGenerationLambdaVersionType::V20)
        .lambda_arn(arn("pre-token-v2"))
        .build()
        .expect("config");
    let config = LambdaConfigType::builder()
        .pre_authentication(arn("pre_authentication"))
        .post_authentication(arn("post-authentication"))
        .pre_token_generation_config(token_config)
        .build();
    let (pool, client) = pool_with(server, config).await;
    confirmed_user(server, &pool, "alice").await;
    confirmed_user(server, &pool, "suspended").await;
    let sign_in = |username: &str, app: Option<&str>| {
        let mut call = server
            .idp()
            .initiate_auth()
            .client_id(&client)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", PASSWORD);
        if let Some(app) = app {
            call = call.client_metadata("app", app);
        }
        call.send()
    };
    let refused = expect_err(sign_in("suspended", None).await);
    assert_eq!(
        (refused.code.as_str(), refused.message.as_str()),
        ("UserLambdaValidationException", "PreAuthentication failed with error This account is suspended.")
    );
    let refused = expect_err(sign_in("alice", Some("banned-app")).await);
    assert_eq!(refused.message, "PreAuthentication failed with error This app may not sign in.");

    let result = ok(sign_in("alice", Some("web")).await).authentication_result.expect("tokens");
    let id = claims(result.id_token().expect("id token"));
    let access = claims(result.access_token().expect("access token"));
    assert_eq!(id["tenant"], json!({"id": 7, "name": "Acme"}), "a JSON object claim in the ID token: {id}");
    assert_eq!((&access["tenant_id"], &access["seats"]), (&json!("t-7"), &json!(25)), "{access}");
    assert_eq!(access["scope"], "orders/read", "scopes added and suppressed: {access}");
    assert_eq!(access["username"], "alice");

    let pre_auth = host.events_of("pre_authentication").await;
    let alice = pre_auth.iter().rev().find(|e| e["userName"] == "alice").expect("PreAuthentication for alice");
    assert_eq!(alice["triggerSource"], "PreAuthentication_Authentication");
    assert_eq!(alice["request"]["validationData"], json!({"app": "web"}));
    assert_eq!(alice["request"]["userNotFound"], false);
    let post_auth = host.events_of("post-authentication").await;
    assert_eq!(post_auth.len(), 1, "PostAuthentication after the one successful sign-in");
    assert_eq!(post_auth[0]["triggerSource"], "PostAuthentication_Authentication");
    assert_eq!(post_auth[0]["request"]["newDeviceUsed"], false);
    let token_events = host.events_of("pre-token-v2").await;
    assert_eq!(token_events[0]["version"], "2");
    assert_eq!(token_events[0]["triggerSource"], "TokenGeneration_Authentication");
    assert_eq!(token_events[0]["request"]["scopes"], json!(["aws.cognito.signin.user.admin"]));

    let refreshed = ok(server
        .idp()
        .initiate_auth()
        .client_id(&client)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", result.refresh_token().expect("refresh token"))
        .send()
        .await)
    .authentication_result
    .expect("refreshed");
    assert_eq!(claims(refreshed.access_token().expect("access"))["tenant_id"], "t-7");
    let token_events = host.events_of("pre-token-v2").await;
    assert_eq!(token_events.last().map(|e| e["triggerSource"].clone()), Some(json!("TokenGeneration_RefreshTokens")));

    // A client hiding user existence: an unknown login meets PreAuthentication too, marked.
    let hiding = server.new_client(&pool, false, true).await;
    ok(server
        .idp()
        .update_user_pool_client()
        .user_pool_id(&pool)
        .client_id(&hiding.client)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .prevent_user_existence_errors(cognate_e2e::idp::types::PreventUserExistenceErrorTypes::Enabled)
        .send()
        .await);
    let unknown = expect_err(
        server
            .idp()
            .initiate_auth()
            .client_id(&hiding.client)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", "ghost")
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await,
    );
    assert_eq!(unknown.message, "Incorrect username or password.");
    let ghost = host.events_of("pre_authentication").await.into_iter().find(|e| e["userName"] == "ghost");
    assert_eq!(ghost.map(|e| e["request"]["userNotFound"].clone()), Some(json!(true)));
}

async fn set_token_function(server: &Server, pool: &str, function: &str) {
    ok(server
        .idp()
        .update_user_pool()
        .user_pool_id(pool)
        .lambda_config(LambdaConfigType::builder().pre_token_generation(arn(function)).build())
        .send()
        .await);
}

async fn admin_sign_in(
    server: &Server,
    pool: &str,
    client: &str,
) -> Result<cognate_e2e::idp::types::AuthenticationResultType, cognate_e2e::ErrInfo> {
    let answer = server
        .idp()
        .admin_initiate_auth()
        .user_pool_id(pool)
        .client_id(client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "bob")
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await;
    match answer {
        Ok(output) => Ok(output.authentication_result.expect("tokens")),
        Err(err) => Err(expect_err::<(), _>(Err(err))),
    }
}

/// V1_0 (the legacy PreTokenGeneration setting): a string claim added and one suppressed in
/// the ID token, groups replaced in both tokens. Then the ways a function fails, each an
/// error Cognito returns and no tokens: a protected claim, a throw, an answer that is not an
/// event, a function slower than 5 seconds (after Cognito's retries), a function nobody runs.
async fn pre_token_generation_v1_and_the_ways_a_function_fails(server: &Server, host: &LambdaHost) {
    let (pool, client) =
        pool_with(server, LambdaConfigType::builder().pre_token_generation(arn("pre_token_v1")).build()).await;
    confirmed_user(server, &pool, "bob").await;
    let tokens = admin_sign_in(server, &pool, &client).await.expect("signed in");
    let (id, access) = (claims(tokens.id_token().expect("id")), claims(tokens.access_token().expect("access")));
    assert_eq!(id["tier"], "gold", "{id}");
    assert!(id.get("email").is_none(), "suppressed: {id}");
    assert_eq!((&id["cognito:groups"], &access["cognito:groups"]), (&json!(["vip"]), &json!(["vip"])));
    assert_eq!(host.events_of("pre_token_v1").await[0]["version"], "1");

    let failures = [
        (
            "pre-token-protected",
            "InvalidLambdaResponseException",
            "The claim sub cannot be added, overridden or suppressed.",
        ),
        ("throws", "UserLambdaValidationException", "PreTokenGeneration failed with error Nope."),
        ("garbage", "InvalidLambdaResponseException", "Unrecognizable lambda output"),
    ];
    for (function, code, message) in failures {
        set_token_function(server, &pool, function).await;
        let err = admin_sign_in(server, &pool, &client).await.expect_err(function);
        assert_eq!((err.status, err.code.as_str(), err.message.as_str()), (400, code, message), "{function}");
    }
    set_token_function(server, &pool, "slow").await;
    let started = std::time::Instant::now();
    let err = admin_sign_in(server, &pool, &client).await.expect_err("slow");
    assert_eq!(err.code, "UnexpectedLambdaException", "{}", err.message);
    assert!(started.elapsed() >= std::time::Duration::from_secs(15), "three attempts of 5 s each");
    set_token_function(server, &pool, "nobody-runs-this").await;
    let err = admin_sign_in(server, &pool, &client).await.expect_err("unknown function");
    assert_eq!(err.code, "UnexpectedLambdaException", "{}", err.message);
    assert!(err.message.contains("Function not found"), "{}", err.message);

    let metrics = reqwest::get(format!("{}/metrics", server.url())).await.expect("metrics").text().await.expect("text");
    // The function that touched a protected claim answered (ok); its answer was refused after.
    for line in [
        "cognate_lambda_invocations_total{trigger=\"PreTokenGeneration\",outcome=\"ok\"} 2",
        "cognate_lambda_invocations_total{trigger=\"PreTokenGeneration\",outcome=\"unreachable\"} 2",
        "cognate_lambda_invocations_total{trigger=\"PreTokenGeneration\",outcome=\"function_error\"} 1",
        "cognate_lambda_invocations_total{trigger=\"PreTokenGeneration\",outcome=\"invalid_response\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// `[lambda.functions]` in the TOML file: functions as plain webhooks, no Lambda API at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_from_the_config_file() {
    let host = host();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("cognate.toml");
    let toml = format!(
        "[lambda.functions]\n\"{}\" = \"{}\"\n\"post_confirmation\" = \"{}\"\n",
        arn("pre-sign-up"),
        host.webhook("pre-sign-up"),
        host.webhook("post_confirmation")
    );
    std::fs::write(&config, toml).expect("config file");
    let server = Server::sqlite_with(&["--config", config.to_str().expect("path")]).await;
    let config =
        LambdaConfigType::builder().pre_sign_up(arn("pre-sign-up")).post_confirmation(arn("post_confirmation")).build();
    let (pool, client) = pool_with(&server, config).await;
    let refused = expect_err(
        server
            .idp()
            .sign_up()
            .client_id(&client)
            .username("mallory")
            .password(PASSWORD)
            .user_attributes(attr("email", "mallory@blocked.example"))
            .send()
            .await,
    );
    assert_eq!(refused.message, "PreSignUp failed with error Sign-ups from blocked.example are closed.");
    let invited = ok(server
        .idp()
        .sign_up()
        .client_id(&client)
        .username("ivy")
        .password(PASSWORD)
        .user_attributes(attr("email", "ivy@example.com"))
        .validation_data(attr("invitation", "welcome"))
        .send()
        .await);
    assert!(invited.user_confirmed);
    assert_eq!(server.user_status(&pool, "ivy").await, "CONFIRMED");
    assert_eq!(host.events_of("pre-sign-up").await.len(), 2);
}

/// The quiz pool: Define, Create and Verify functions for CUSTOM_AUTH.
fn quiz_config() -> LambdaConfigType {
    LambdaConfigType::builder()
        .define_auth_challenge(arn("define-auth-challenge"))
        .create_auth_challenge(arn("create_auth_challenge"))
        .verify_auth_challenge_response(arn("verify-auth-challenge"))
        .build()
}

/// CUSTOM_AUTH: the functions' question, a wrong answer (another question, the history
/// growing), a spent Session refused, the right answer signs in; three wrong answers fail the
/// sign-in; an unknown user, and a pool without the functions, get Cognito's answers.
async fn custom_auth_asks_the_functions_questions(server: &Server, host: &LambdaHost) {
    let (pool, client) = pool_with(server, quiz_config()).await;
    ok(server
        .idp()
        .update_user_pool_client()
        .user_pool_id(&pool)
        .client_id(&client)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowCustomAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await);
    confirmed_user(server, &pool, "carol").await;
    let start = || {
        server
            .idp()
            .initiate_auth()
            .client_id(&client)
            .auth_flow(AuthFlowType::CustomAuth)
            .auth_parameters("USERNAME", "carol")
            .client_metadata("device", "kiosk")
            .send()
    };
    let answer = |session: String, text: &str| {
        server
            .idp()
            .respond_to_auth_challenge()
            .client_id(&client)
            .challenge_name(cognate_e2e::idp::types::ChallengeNameType::CustomChallenge)
            .session(session)
            .challenge_responses("USERNAME", "carol")
            .challenge_responses("ANSWER", text)
            .send()
    };
    let first = ok(start().await);
    assert_eq!(first.challenge_name().map(|c| c.as_str()), Some("CUSTOM_CHALLENGE"));
    let parameters = first.challenge_parameters().expect("parameters");
    assert_eq!(parameters.get("question").map(String::as_str), Some("What is 6 x 7?"));
    assert_eq!(parameters.get("USERNAME").map(String::as_str), Some("carol"));
    assert!(parameters.get("answer").is_none(), "private parameters stay private");
    let session = first.session().expect("session").to_owned();
    let again = ok(answer(session.clone(), "41").await);
    assert_eq!(again.challenge_name().map(|c| c.as_str()), Some("CUSTOM_CHALLENGE"), "a wrong answer: another try");
    let spent = expect_err(answer(session, "42").await);
    assert_eq!(
        (spent.code.as_str(), spent.message.as_str()),
        ("NotAuthorizedException", "Invalid session for the user, session can only be used once.")
    );
    let signed_in = ok(answer(again.session().expect("session").to_owned(), "42").await);
    let tokens = signed_in.authentication_result().expect("tokens");
    assert_eq!(claims(tokens.access_token().expect("access"))["username"], "carol");

    let defines = host.events_of("define-auth-challenge").await;
    assert_eq!(defines.len(), 3, "Define runs at the start and after each answer");
    assert_eq!(defines[0]["triggerSource"], "DefineAuthChallenge_Authentication");
    assert_eq!(defines[0]["request"]["session"], json!([]));
    assert_eq!(defines[0]["request"]["clientMetadata"], json!({"device": "kiosk"}));
    assert_eq!(
        defines[2]["request"]["session"],
        json!([
            {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": "QUIZ"},
            {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": true, "challengeMetadata": "QUIZ"},
        ])
    );
    let verifies = host.events_of("verify-auth-challenge").await;
    assert_eq!(verifies[0]["request"]["privateChallengeParameters"], json!({"answer": "42"}));
    assert_eq!(verifies[0]["request"]["challengeAnswer"], "41");
    assert_eq!(
        host.events_of("create_auth_challenge").await[0]["request"]["userAttributes"]["email"],
        "carol@example.com"
    );

    // Three wrong answers: Define fails the sign-in.
    let mut session = ok(start().await).session().expect("session").to_owned();
    for _ in 0..2 {
        session = ok(answer(session, "0").await).session().expect("session").to_owned();
    }
    let failed = expect_err(answer(session, "0").await);
    assert_eq!(
        (failed.code.as_str(), failed.message.as_str()),
        ("NotAuthorizedException", "Incorrect username or password.")
    );

    let unknown = expect_err(
        server
            .idp()
            .initiate_auth()
            .client_id(&client)
            .auth_flow(AuthFlowType::CustomAuth)
            .auth_parameters("USERNAME", "nobody")
            .send()
            .await,
    );
    assert_eq!(unknown.code, "UserNotFoundException");

    let (plain_pool, plain_client) = pool_with(server, LambdaConfigType::builder().build()).await;
    ok(server
        .idp()
        .update_user_pool_client()
        .user_pool_id(&plain_pool)
        .client_id(&plain_client)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowCustomAuth)
        .send()
        .await);
    confirmed_user(server, &plain_pool, "carol").await;
    let refused = expect_err(
        server
            .idp()
            .initiate_auth()
            .client_id(&plain_client)
            .auth_flow(AuthFlowType::CustomAuth)
            .auth_parameters("USERNAME", "carol")
            .send()
            .await,
    );
    assert_eq!(
        (refused.code.as_str(), refused.message.as_str()),
        ("InvalidParameterException", "Custom auth lambda trigger is not configured for the user pool.")
    );
}

/// The JavaScript clients' CUSTOM_AUTH: amazon-cognito-identity-js (initiateAuth without a
/// password, authenticateUser with SRP first) and Amplify v6 (CUSTOM_WITHOUT_SRP,
/// CUSTOM_WITH_SRP), against the quiz functions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_clients_sign_in_with_custom_auth() {
    let Some(js) = cognate_e2e::clients::Js::get("javascript_clients_sign_in_with_custom_auth") else {
        return;
    };
    let host = host();
    let server = Server::sqlite_with(&["--lambda-endpoint", &host.url]).await;
    let (pool, client) = pool_with(&server, quiz_config()).await;
    ok(server
        .idp()
        .update_user_pool_client()
        .user_pool_id(&pool)
        .client_id(&client)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowCustomAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await);
    confirmed_user(&server, &pool, "dana").await;
    let r = js
        .run(
            "custom-auth.mjs",
            json!({"endpoint": server.url(), "userPoolId": pool, "clientId": client, "username": "dana",
                   "password": PASSWORD, "answer": "42"}),
        )
        .await;
    let question = "What is 6 x 7?";
    assert_eq!(r["identityJs"], json!({"question": question, "afterWrong": question, "username": "dana"}), "{r}");
    assert_eq!(r["identityJsSrp"], json!({"question": question, "username": "dana"}), "{r}");
    let custom_step = "CONFIRM_SIGN_IN_WITH_CUSTOM_CHALLENGE";
    assert_eq!(
        r["amplify"],
        json!({"step": custom_step, "question": question, "done": "DONE", "username": "dana"}),
        "{r}"
    );
    assert_eq!(r["amplifySrp"]["step"], custom_step, "{r}");
    assert_eq!(r["amplifySrp"]["done"], "DONE", "{r}");
    // The SRP-first sign-ins showed Define the password step.
    let defines = host.events_of("define-auth-challenge").await;
    assert!(
        defines.iter().any(|e| e["request"]["session"]
            == json!([{"challengeName": "SRP_A", "challengeResult": true},
                      {"challengeName": "PASSWORD_VERIFIER", "challengeResult": true}])),
        "{defines:?}"
    );
}

/// UserMigration: an unknown login signs in with its old password and becomes a CONFIRMED user
/// (once: the next sign-in finds the user); a wrong old password is the function's refusal and
/// creates nobody; ForgotPassword migrates a user as RESET_REQUIRED and sends the reset code.
async fn user_migration_at_sign_in_and_at_forgot_password(server: &Server, host: &LambdaHost) {
    let (pool, client) =
        pool_with(server, LambdaConfigType::builder().user_migration(arn("user_migration")).build()).await;
    let sign_in = |username: &str, password: &str| {
        server
            .idp()
            .initiate_auth()
            .client_id(&client)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
    };
    for _ in 0..2 {
        let tokens = ok(sign_in("legacy-lee", "Legacy-Passw0rd!").await).authentication_result.expect("tokens");
        assert_eq!(claims(tokens.id_token().expect("id"))["email"], "lee@example.com");
    }
    let migrations = host.events_of("user_migration").await;
    assert_eq!(migrations.len(), 1, "migrated once; then the pool has the user");
    assert_eq!(migrations[0]["triggerSource"], "UserMigration_Authentication");
    assert_eq!(migrations[0]["userName"], "legacy-lee");
    assert_eq!(migrations[0]["request"]["password"], "Legacy-Passw0rd!");
    assert_eq!(server.user_status(&pool, "legacy-lee").await, "CONFIRMED");

    let refused = expect_err(sign_in("legacy-kim", "not-her-password").await);
    assert_eq!(
        (refused.code.as_str(), refused.message.as_str()),
        ("UserLambdaValidationException", "UserMigration failed with error Bad password.")
    );
    let missing = expect_err(server.idp().admin_get_user().user_pool_id(&pool).username("legacy-kim").send().await);
    assert_eq!(missing.code, "UserNotFoundException");

    let delivery = ok(server.idp().forgot_password().client_id(&client).username("legacy-kim").send().await);
    assert_eq!(
        delivery.code_delivery_details().and_then(|d| d.attribute_name()),
        Some("email"),
        "the reset code goes to the migrated email"
    );
    assert_eq!(server.user_status(&pool, "legacy-kim").await, "RESET_REQUIRED");
    let code = server.latest_code(&pool, "legacy-kim").await;
    ok(server
        .idp()
        .confirm_forgot_password()
        .client_id(&client)
        .username("legacy-kim")
        .confirmation_code(code)
        .password(PASSWORD)
        .send()
        .await);
    ok(sign_in("legacy-kim", PASSWORD).await);
    let sources: Vec<Value> =
        host.events_of("user_migration").await.iter().map(|e| e["triggerSource"].clone()).collect();
    assert_eq!(
        json!(sources),
        json!(["UserMigration_Authentication", "UserMigration_Authentication", "UserMigration_ForgotPassword"])
    );
}

/// V3_0 runs for machine-to-machine tokens too (`TokenGeneration_ClientCredentials`), at
/// GetClientToken and at the token endpoint; a failing function refuses the token.
async fn pre_token_generation_v3_shapes_machine_tokens(server: &Server, host: &LambdaHost) {
    let token_config = PreTokenGenerationVersionConfigType::builder()
        .lambda_version(PreTokenGenerationLambdaVersionType::V30)
        .lambda_arn(arn("pre-token-v3"))
        .build()
        .expect("config");
    let (pool, _) =
        pool_with(server, LambdaConfigType::builder().pre_token_generation_config(token_config).build()).await;
    ok(server
        .idp()
        .create_resource_server()
        .user_pool_id(&pool)
        .identifier("orders")
        .name("Orders")
        .scopes(
            cognate_e2e::idp::types::ResourceServerScopeType::builder()
                .scope_name("read")
                .scope_description("Read")
                .build()
                .expect("scope"),
        )
        .scopes(
            cognate_e2e::idp::types::ResourceServerScopeType::builder()
                .scope_name("write")
                .scope_description("Write")
                .build()
                .expect("scope"),
        )
        .send()
        .await);
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("service")
        .generate_secret(true)
        .allowed_o_auth_flows_user_pool_client(true)
        .allowed_o_auth_flows(cognate_e2e::idp::types::OAuthFlowType::ClientCredentials)
        .allowed_o_auth_scopes("orders/read")
        .allowed_o_auth_scopes("orders/write")
        .send()
        .await)
    .user_pool_client
    .expect("client");
    let (id, secret) = (client.client_id.expect("id"), client.client_secret.expect("secret"));
    let token = ok(server.idp().get_client_token().client_id(&id).secret(&secret).send().await)
        .client_authentication_result
        .and_then(|r| r.access_token)
        .expect("token");
    let access = claims(&token);
    assert_eq!(access["service"], format!("svc-{}", &id[..4]), "{access}");
    assert_eq!(access["scope"], "orders/read", "{access}");
    let answer = reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.url()))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token endpoint");
    let body: Value = answer.json().await.expect("json");
    assert_eq!(claims(body["access_token"].as_str().expect("token"))["scope"], "orders/read");
    let events = host.events_of("pre-token-v3").await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        (&events[0]["version"], &events[0]["triggerSource"]),
        (&json!("3"), &json!("TokenGeneration_ClientCredentials"))
    );
    assert_eq!(events[0]["request"]["scopes"], json!(["orders/read", "orders/write"]));

    let failing = PreTokenGenerationVersionConfigType::builder()
        .lambda_version(PreTokenGenerationLambdaVersionType::V30)
        .lambda_arn(arn("throws"))
        .build()
        .expect("config");
    ok(server
        .idp()
        .update_user_pool()
        .user_pool_id(&pool)
        .lambda_config(LambdaConfigType::builder().pre_token_generation_config(failing).build())
        .send()
        .await);
    let refused = expect_err(server.idp().get_client_token().client_id(&id).secret(&secret).send().await);
    assert_eq!(
        (refused.code.as_str(), refused.message.as_str()),
        ("NotAuthorizedException", "PreTokenGeneration failed with error Nope."),
        "GetClientToken's model lists no Lambda errors"
    );
    let answer = reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.url()))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(answer.status().as_u16(), 400);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "PreTokenGeneration failed with error Nope."})
    );
}

/// A sign-in on the hosted pages runs PreTokenGeneration once, for the tokens the relying
/// party gets at the token endpoint (`TokenGeneration_HostedAuth`), with their OAuth scopes.
async fn hosted_sign_in_runs_pre_token_generation_once(server: &Server, host: &LambdaHost) {
    let token_config = PreTokenGenerationVersionConfigType::builder()
        .lambda_version(PreTokenGenerationLambdaVersionType::V20)
        .lambda_arn(arn("pre-token-v2"))
        .build()
        .expect("config");
    let (pool, _) =
        pool_with(server, LambdaConfigType::builder().pre_token_generation_config(token_config).build()).await;
    confirmed_user(server, &pool, "hana").await;
    let callback = "http://localhost:3000/callback";
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("web")
        .generate_secret(true)
        .allowed_o_auth_flows_user_pool_client(true)
        .allowed_o_auth_flows(cognate_e2e::idp::types::OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_scopes("aws.cognito.signin.user.admin")
        .callback_urls(callback)
        .send()
        .await)
    .user_pool_client
    .expect("client");
    let (id, secret) = (client.client_id.expect("id"), client.client_secret.expect("secret"));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http");
    let query =
        format!("client_id={id}&response_type=code&scope=openid+aws.cognito.signin.user.admin&redirect_uri={callback}");
    let login = http.get(format!("{}/login?{query}", server.url())).send().await.expect("login page");
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cognate_csrf="))
        .and_then(|v| v.split(';').next())
        .expect("csrf cookie")
        .to_owned();
    let csrf = cookie.trim_start_matches("cognate_csrf=").to_owned();
    let form = format!("{query}&_csrf={csrf}&username=hana&password={}", PASSWORD.replace('!', "%21"));
    let signed_in = http
        .post(format!("{}/login", server.url()))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("login");
    assert_eq!(signed_in.status().as_u16(), 302, "{:?}", signed_in.text().await);
    let location = signed_in.headers()["location"].to_str().expect("location").to_owned();
    let code = location.split("code=").nth(1).and_then(|c| c.split('&').next()).expect("code").to_owned();
    assert!(host.events_of("pre-token-v2").await.is_empty(), "nothing handed out yet, nothing generated");
    let tokens: Value = http
        .post(format!("{}/oauth2/token", server.url()))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={code}&redirect_uri={callback}"))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access = claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!((&access["tenant_id"], &access["scope"]), (&json!("t-7"), &json!("openid orders/read")), "{access}");
    let events = host.events_of("pre-token-v2").await;
    assert_eq!(events.len(), 1, "one PreTokenGeneration for one hosted sign-in");
    assert_eq!(events[0]["triggerSource"], "TokenGeneration_HostedAuth");
    assert_eq!(events[0]["request"]["scopes"], json!(["openid", "aws.cognito.signin.user.admin"]));
}

/// A DefineAuthChallenge that issues tokens to anyone still cannot sign in a login that names
/// no user (the client hides user existence, so the functions see `userNotFound: true`).
async fn a_careless_define_function_cannot_sign_in_nobody(server: &Server, host: &LambdaHost) {
    let config = LambdaConfigType::builder()
        .define_auth_challenge(arn("define-issue-always"))
        .create_auth_challenge(arn("create_auth_challenge"))
        .verify_auth_challenge_response(arn("verify-auth-challenge"))
        .build();
    let (pool, _) = pool_with(server, config).await;
    let app = server.new_client(&pool, false, true).await;
    ok(server
        .idp()
        .update_user_pool_client()
        .user_pool_id(&pool)
        .client_id(&app.client)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowCustomAuth)
        .prevent_user_existence_errors(cognate_e2e::idp::types::PreventUserExistenceErrorTypes::Enabled)
        .send()
        .await);
    confirmed_user(server, &pool, "erin").await;
    let start = |username: &str| {
        server
            .idp()
            .initiate_auth()
            .client_id(&app.client)
            .auth_flow(AuthFlowType::CustomAuth)
            .auth_parameters("USERNAME", username)
            .send()
    };
    assert!(ok(start("erin").await).authentication_result.is_some(), "the function's word for a real user");
    let refused = expect_err(start("nobody").await);
    assert_eq!(
        (refused.code.as_str(), refused.message.as_str()),
        ("NotAuthorizedException", "Incorrect username or password.")
    );
    let events = host.events_of("define-issue-always").await;
    assert_eq!(events.last().map(|e| e["request"]["userNotFound"].clone()), Some(json!(true)));
}
