//! The message triggers: a CustomMessage function (Node, tests/lambda/custom-message.mjs)
//! writes every message Cognate sends, with the real code (or temporary password and user
//! name) put where its placeholders are; a message without them is replaced by the pool's
//! template; a failing function fails the operation with nothing half-done. Custom email and
//! SMS senders (Python, tests/lambda/custom_sender.py) are handed the code, queued, as an AWS
//! Encryption SDK message that the Python SDK decrypts with a raw AES keyring over
//! `--custom-sender-key`; the code it reads confirms the sign-up. SQLite and PostgreSQL.

use cognate_e2e::clients::Py;
use cognate_e2e::idp::operation::sign_up::builders::SignUpFluentBuilder;
use cognate_e2e::idp::types::{
    AuthFlowType, ChallengeNameType, CustomEmailLambdaVersionConfigType, CustomEmailSenderLambdaVersionType,
    CustomSmsLambdaVersionConfigType, CustomSmsSenderLambdaVersionType, DeliveryMediumType, LambdaConfigType,
    SmsConfigurationType, UserPoolMfaType, VerifiedAttributeType,
};
use cognate_e2e::lambda_host::{arn, pool_with_triggers, LambdaHost};
use cognate_e2e::{attr, expect_err, ok, Message, Server, PASSWORD};
use serde_json::{json, Value};

/// The wrapping key of the custom sender codes (base64 of the bytes 0 to 31), given to the
/// server and to the Python handler.
const SENDER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A trigger function's ARN in the default account and region.
/// A host for the Node handlers.
fn node_host(_test: &str) -> Option<LambdaHost> {
    Some(LambdaHost::start(std::path::Path::new("python3")))
}

/// A host whose Python handlers run in the clients' venv (which has `aws-encryption-sdk`)
/// and know the custom sender key; None (a loud skip, a failure in CI) without the venv.
fn python_host(test: &str) -> Option<LambdaHost> {
    let py = Py::get(test)?;
    Some(LambdaHost::start_with_env(&py.python, &[("CUSTOM_SENDER_KEY", SENDER_KEY)]))
}

macro_rules! on_both_stores {
    ($host:ident: $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(host) = super::$host(stringify!($name)) else { return };
                    let args = ["--lambda-endpoint", &host.url, "--custom-sender-key", super::SENDER_KEY];
                    let server = cognate_e2e::Server::sqlite_with(&args).await;
                    super::$name(&server, &host).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(host) = super::$host(stringify!($name)) else { return };
                    let args = ["--lambda-endpoint", &host.url, "--custom-sender-key", super::SENDER_KEY];
                    let Some(server) = cognate_e2e::Server::postgres_with(&args).await else {
                        return;
                    };
                    super::$name(&server, &host).await;
                }
            )+
        }
    };
}

mod custom_message {
    use super::*;
    on_both_stores!(node_host: codes_for_sign_up_reset_and_attributes_are_the_functions_messages,
        invitations_mfa_codes_and_a_failing_function);
}

mod custom_senders {
    use super::*;
    on_both_stores!(python_host: the_custom_senders_decrypt_codes_that_confirm_sign_ups);
}

async fn last_message(server: &Server, pool: &str, user: &str) -> Message {
    server.outbox(pool, user).await.pop().unwrap_or_else(|| panic!("no message for {user}"))
}

/// The last CustomMessage event for `user`.
async fn last_event(host: &LambdaHost, user: &str) -> Value {
    let events = host.events_of("custom-message").await;
    events.into_iter().rev().find(|e| e["userName"] == user).unwrap_or_else(|| panic!("no event for {user}"))
}

/// Checks that the newest message to `user` is the function's for `source`, with its code
/// put in; returns the code.
async fn expect_acme_message(server: &Server, pool: &str, user: &str, source: &str) -> String {
    let message = last_message(server, pool, user).await;
    let code = message.code.clone().expect("a code");
    assert_eq!(message.body, format!("Acme {source}: code {code}"), "{message:?}");
    assert_eq!(message.subject.as_deref(), Some(format!("[Acme] {source}").as_str()));
    code
}

/// SignUp, ResendConfirmationCode, ForgotPassword, UpdateUserAttributes and
/// GetUserAttributeVerificationCode: each message is the function's for its trigger source,
/// and the code in it is the one that works. A message without the code's placeholder is
/// replaced by the pool's template; a function refusing a new code leaves the old one working.
async fn codes_for_sign_up_reset_and_attributes_are_the_functions_messages(server: &Server, host: &LambdaHost) {
    let config = LambdaConfigType::builder().custom_message(arn("custom-message")).build();
    let (pool, client) =
        pool_with_triggers(server, config, |p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let idp = server.idp();
    let sign_up = |username: &str| {
        idp.sign_up()
            .client_id(&client)
            .username(username)
            .password(PASSWORD)
            .user_attributes(attr("email", &format!("{username}@example.com")))
    };
    ok(sign_up("walt").client_metadata("campaign", "winter").send().await);
    expect_acme_message(server, &pool, "walt", "CustomMessage_SignUp").await;
    let event = last_event(host, "walt").await;
    assert_eq!((&event["version"], &event["triggerSource"]), (&json!("1"), &json!("CustomMessage_SignUp")));
    assert_eq!(event["callerContext"]["clientId"], client.as_str());
    assert_eq!(event["request"]["codeParameter"], "{####}");
    assert_eq!(event["request"]["usernameParameter"], Value::Null, "only invitations name the user");
    assert_eq!(event["request"]["clientMetadata"], json!({"campaign": "winter"}));
    assert_eq!(event["request"]["userAttributes"]["email"], "walt@example.com");
    assert_eq!(event["request"]["userAttributes"]["cognito:user_status"], "UNCONFIRMED");

    ok(idp.resend_confirmation_code().client_id(&client).username("walt").send().await);
    let code = expect_acme_message(server, &pool, "walt", "CustomMessage_ResendCode").await;
    let confirm = idp.confirm_sign_up().client_id(&client).username("walt").confirmation_code(&code);
    ok(confirm.send().await);

    ok(idp.forgot_password().client_id(&client).username("walt").send().await);
    let code = expect_acme_message(server, &pool, "walt", "CustomMessage_ForgotPassword").await;
    let new_password = format!("{PASSWORD}-2");
    let reset = idp.confirm_forgot_password().client_id(&client).username("walt").confirmation_code(code);
    ok(reset.password(&new_password).send().await);

    let signed_in = idp
        .initiate_auth()
        .client_id(&client)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "walt")
        .auth_parameters("PASSWORD", &new_password)
        .send()
        .await;
    let access = ok(signed_in).authentication_result.and_then(|r| r.access_token).expect("access token");
    let update = idp.update_user_attributes().access_token(&access).user_attributes(attr("email", "w@example.org"));
    ok(update.send().await);
    expect_acme_message(server, &pool, "walt", "CustomMessage_UpdateUserAttribute").await;
    assert_eq!(last_message(server, &pool, "walt").await.destination, "w@example.org");
    let ask = idp.get_user_attribute_verification_code().access_token(&access).attribute_name("email");
    ok(ask.send().await);
    let code = expect_acme_message(server, &pool, "walt", "CustomMessage_VerifyUserAttribute").await;
    ok(idp.verify_user_attribute().access_token(&access).attribute_name("email").code(code).send().await);
    assert_eq!(last_event(host, "walt").await["request"]["userAttributes"]["email"], "w@example.org");

    // A message without the code's placeholder is not sent: the pool's template is.
    ok(sign_up("fred").client_metadata("style", "forgetful").send().await);
    let message = last_message(server, &pool, "fred").await;
    let code = message.code.clone().expect("a code");
    assert_eq!(message.body, format!("Your verification code is {code}. "), "{message:?}");
    assert_eq!(message.subject.as_deref(), Some("Your verification code"));

    // A function refusing a new code's message: the operation fails, the old code still works.
    ok(sign_up("rita").send().await);
    let first = server.latest_code(&pool, "rita").await;
    let refused = idp.resend_confirmation_code().client_id(&client).username("rita").client_metadata("refuse", "yes");
    let refused = expect_err(refused.send().await);
    assert_eq!(
        (refused.status, refused.code.as_str(), refused.message.as_str()),
        (400, "UserLambdaValidationException", "CustomMessage failed with error No message for rita.")
    );
    assert_eq!(server.outbox(&pool, "rita").await.len(), 1, "no second message");
    ok(idp.confirm_sign_up().client_id(&client).username("rita").confirmation_code(first).send().await);
}

/// AdminCreateUser's invitation names the user and its temporary password where the function
/// put the placeholders; SMS MFA codes are the function's too (and sign the user in). A
/// function that fails an invitation or a sign-up's message leaves nobody created.
async fn invitations_mfa_codes_and_a_failing_function(server: &Server, host: &LambdaHost) {
    let config = LambdaConfigType::builder().custom_message(arn("custom-message")).build();
    let (pool, client) = pool_with_triggers(server, config.clone(), |p| {
        p.auto_verified_attributes(VerifiedAttributeType::Email)
            .mfa_configuration(UserPoolMfaType::On)
            .sms_configuration(
                SmsConfigurationType::builder().sns_caller_arn("arn:aws:iam::000000000000:role/sms").build(),
            )
    })
    .await;
    let idp = server.idp();
    let invite = |username: &str| {
        idp.admin_create_user()
            .user_pool_id(&pool)
            .username(username)
            .user_attributes(attr("email", &format!("{username}@example.com")))
            .desired_delivery_mediums(DeliveryMediumType::Email)
    };
    ok(invite("ivy").send().await);
    let message = last_message(server, &pool, "ivy").await;
    let temporary = message.code.clone().expect("the temporary password");
    assert_eq!(message.body, format!("Acme CustomMessage_AdminCreateUser: ivy code {temporary}"));
    let event = last_event(host, "ivy").await;
    assert_eq!(event["request"]["usernameParameter"], "{username}");
    assert_eq!(event["request"]["codeParameter"], "{####}");
    assert_eq!(event["callerContext"]["clientId"], "CLIENT_ID_NOT_APPLICABLE");
    assert_eq!(event["request"]["userAttributes"]["cognito:user_status"], "FORCE_CHANGE_PASSWORD");

    let refusals = [
        expect_err(invite("mallory").send().await),
        expect_err(
            idp.sign_up()
                .client_id(&client)
                .username("mallory")
                .password(PASSWORD)
                .user_attributes(attr("email", "mallory@example.com"))
                .send()
                .await,
        ),
    ];
    for refused in refusals {
        assert_eq!(
            (refused.code.as_str(), refused.message.as_str()),
            ("UserLambdaValidationException", "CustomMessage failed with error No message for mallory.")
        );
        let missing = expect_err(idp.admin_get_user().user_pool_id(&pool).username("mallory").send().await);
        assert_eq!(missing.code, "UserNotFoundException", "a refused message leaves nobody created");
    }

    server.confirmed_user(&pool, "mo", &[("phone_number", "+15555550100"), ("phone_number_verified", "true")]).await;
    let started = idp
        .initiate_auth()
        .client_id(&client)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "mo")
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await;
    let started = ok(started);
    assert_eq!(started.challenge_name, Some(ChallengeNameType::SmsMfa));
    let message = last_message(server, &pool, "mo").await;
    let code = message.code.clone().expect("an MFA code");
    assert_eq!(
        (message.channel.as_str(), message.body),
        ("SMS", format!("Acme CustomMessage_Authentication: code {code}"))
    );
    assert_eq!(last_event(host, "mo").await["triggerSource"], "CustomMessage_Authentication");
    let answered = idp
        .respond_to_auth_challenge()
        .client_id(&client)
        .challenge_name(ChallengeNameType::SmsMfa)
        .set_session(started.session)
        .challenge_responses("USERNAME", "mo")
        .challenge_responses("SMS_MFA_CODE", code)
        .send()
        .await;
    assert!(ok(answered).authentication_result.is_some(), "the code in the function's message signs mo in");
}

fn sign_up_sam(server: &Server, client: &str) -> SignUpFluentBuilder {
    let sign_up = server.idp().sign_up().client_id(client).username("sam").password(PASSWORD);
    sign_up.user_attributes(attr("email", "sam@example.com"))
}

fn email_sender() -> CustomEmailLambdaVersionConfigType {
    CustomEmailLambdaVersionConfigType::builder()
        .lambda_version(CustomEmailSenderLambdaVersionType::V10)
        .lambda_arn(arn("custom_sender"))
        .build()
        .expect("email sender")
}

/// A pool with a CustomEmailSender and one with a CustomSMSSender: SignUp answers without
/// waiting for the function, which gets the code as an Encryption SDK message bound to the
/// pool; the Python SDK decrypts it, and that code confirms the sign-up. The outbox records
/// the hand-over without the code.
async fn the_custom_senders_decrypt_codes_that_confirm_sign_ups(server: &Server, host: &LambdaHost) {
    let email_sender = email_sender();
    let kms_key = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let config = LambdaConfigType::builder().custom_email_sender(email_sender).kms_key_id(kms_key).build();
    let (pool, client) =
        pool_with_triggers(server, config, |p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let started = std::time::Instant::now();
    let signed_up = sign_up_sam(server, &client).client_metadata("sleep", "3").send().await;
    let details = ok(signed_up).code_delivery_details.expect("where the code went");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "SignUp does not wait for the sender");
    assert_eq!(details.destination(), Some("s***@e***"));
    let calls = host.finished_calls("custom_sender", 1).await;
    let (event, result) = (&calls[0]["event"], &calls[0]["result"]);
    assert!(calls[0].get("error").is_none(), "the handler failed: {}", calls[0]);
    assert_eq!((&event["version"], &event["triggerSource"]), (&json!("1"), &json!("CustomEmailSender_SignUp")));
    assert_eq!(event["request"]["type"], "customEmailSenderRequestV1");
    assert_eq!(event["request"]["userAttributes"]["email"], "sam@example.com");
    assert_eq!(event["request"]["clientMetadata"], json!({"sleep": "3"}));
    assert_eq!(result["algorithm"], "AES_256_GCM_HKDF_SHA512_COMMIT_KEY");
    assert_eq!(result["encryptionContext"], json!({"userpool-id": pool}));
    let code = result["code"].as_str().expect("the decrypted code").to_owned();
    assert!(!event.to_string().contains(&code), "the event never carries the code in the clear");
    let handed = last_message(server, &pool, "sam").await;
    assert_eq!((handed.code, handed.destination.as_str()), (None, "sam@example.com"));
    assert!(handed.body.contains("CustomEmailSender_SignUp"), "{}", handed.body);
    ok(server.idp().confirm_sign_up().client_id(&client).username("sam").confirmation_code(code).send().await);
    assert_eq!(server.user_status(&pool, "sam").await, "CONFIRMED");

    let sms_sender = CustomSmsLambdaVersionConfigType::builder()
        .lambda_version(CustomSmsSenderLambdaVersionType::V10)
        .lambda_arn(arn("custom_sender"))
        .build()
        .expect("SMS sender");
    let config = LambdaConfigType::builder().custom_sms_sender(sms_sender).kms_key_id(kms_key).build();
    let (pool, client) =
        pool_with_triggers(server, config, |p| p.auto_verified_attributes(VerifiedAttributeType::PhoneNumber)).await;
    let sign_up = server.idp().sign_up().client_id(&client).username("sue").password(PASSWORD);
    ok(sign_up.user_attributes(attr("phone_number", "+15555550123")).send().await);
    let calls = host.finished_calls("custom_sender", 2).await;
    let call = calls.iter().find(|c| c["event"]["userName"] == "sue").expect("sue's call");
    assert_eq!(call["event"]["triggerSource"], "CustomSMSSender_SignUp");
    assert_eq!(call["result"]["type"], "customSMSSenderRequestV1");
    let code = call["result"]["code"].as_str().expect("the decrypted code");
    assert_eq!(last_message(server, &pool, "sue").await.channel, "SMS");
    ok(server.idp().confirm_sign_up().client_id(&client).username("sue").confirmation_code(code).send().await);
}

/// Without `--custom-sender-key` a pool with a custom sender cannot send a code: SignUp says
/// so (and creates nobody) rather than pretend it sent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_custom_sender_key_codes_are_refused() {
    let host = LambdaHost::start(std::path::Path::new("python3"));
    let server = Server::sqlite_with(&["--lambda-endpoint", &host.url]).await;
    let config = LambdaConfigType::builder().custom_email_sender(email_sender()).build();
    let (pool, client) =
        pool_with_triggers(&server, config, |p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let refused = expect_err(sign_up_sam(&server, &client).send().await);
    assert_eq!(refused.code, "UnexpectedLambdaException");
    assert!(refused.message.contains("--custom-sender-key"), "{}", refused.message);
    let missing = expect_err(server.idp().admin_get_user().user_pool_id(&pool).username("sam").send().await);
    assert_eq!(missing.code, "UserNotFoundException");
    assert!(host.calls().await.is_empty(), "no function was called");
}
