//! The operations Cognito authorises by app client id instead of a signature:
//! SignUp, ConfirmSignUp, ResendConfirmationCode, ForgotPassword and
//! ConfirmForgotPassword. They run through an SDK client without credentials
//! (and a few through raw unsigned requests); the codes they send are read
//! from the development outbox. Also SECRET_HASH, PreventUserExistenceErrors,
//! message templates and the username settings of a pool (case sensitivity,
//! email as username, email as alias). Every test runs against SQLite and
//! PostgreSQL.

use cognate_e2e::idp::operation::confirm_forgot_password::builders::ConfirmForgotPasswordFluentBuilder;
use cognate_e2e::idp::operation::confirm_sign_up::builders::ConfirmSignUpFluentBuilder;
use cognate_e2e::idp::operation::forgot_password::builders::ForgotPasswordFluentBuilder;
use cognate_e2e::idp::operation::resend_confirmation_code::builders::ResendConfirmationCodeFluentBuilder;
use cognate_e2e::idp::operation::sign_up::builders::SignUpFluentBuilder;
use cognate_e2e::idp::types::{
    AliasAttributeType, AttributeDataType, CodeDeliveryDetailsType, DeliveryMediumType, PasswordPolicyType,
    SchemaAttributeType, SmsConfigurationType, StringAttributeConstraintsType, UserPoolPolicyType,
    UsernameAttributeType, UsernameConfigurationType, VerificationMessageTemplateType, VerifiedAttributeType,
};
use cognate_e2e::{
    attr, attr_of, both_stores, expect_code, expect_err, expect_one_of, is_uuid, json_shape, ok, App, Server, PASSWORD,
};
use serde_json::json;

both_stores!(
    sign_up_sends_a_code_and_confirm_sign_up_confirms,
    sign_up_works_unsigned,
    sign_up_without_auto_verified_attributes_sends_nothing,
    sign_up_code_goes_by_sms_when_the_pool_verifies_phone_numbers,
    sign_up_password_policy,
    sign_up_with_a_relaxed_password_policy,
    sign_up_existing_username_is_refused,
    sign_up_attributes_are_validated_against_the_schema,
    sign_up_unknown_client,
    confirm_sign_up_wrong_code_changes_nothing,
    confirm_sign_up_attempt_limit,
    confirm_sign_up_of_a_confirmed_user_is_refused,
    unknown_users_are_reported_without_prevent_user_existence_errors,
    resend_confirmation_code_sends_a_new_code,
    resend_confirmation_code_of_a_confirmed_user_is_refused,
    forgot_password_and_confirm_forgot_password,
    confirm_forgot_password_errors_change_nothing,
    confirm_forgot_password_attempt_limit,
    forgot_password_needs_a_verified_destination,
    forgot_password_of_a_disabled_user,
    secret_hash_is_required_when_the_client_has_a_secret,
    prevent_user_existence_errors_hides_unknown_users,
    verification_message_template_is_used,
    email_verification_message_is_used,
    usernames_are_case_sensitive_by_default,
    case_insensitive_usernames,
    email_as_username,
    email_alias_must_be_unique_once_verified,
    outbox_filters_and_the_outbox_command,
    usernames_with_special_characters_and_model_limits,
    a_recreated_user_does_not_inherit_old_codes,
    concurrent_sign_ups_of_one_username,
    concurrent_wrong_codes_respect_the_attempt_limit,
    secret_hash_with_rotated_client_secrets,
    codes_of_one_purpose_do_not_serve_another,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A pool auto-verifying email and a client without a secret.
async fn email_app(server: &Server) -> App {
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    server.new_client(&pool, false, false).await
}

fn sign_up_req(
    server: &Server,
    app: &App,
    username: &str,
    password: &str,
    attrs: &[(&str, &str)],
) -> SignUpFluentBuilder {
    let mut req = server
        .idp_anonymous()
        .sign_up()
        .client_id(&app.client)
        .username(username)
        .password(password)
        .set_secret_hash(app.hash(username));
    for (name, value) in attrs {
        req = req.user_attributes(attr(name, value));
    }
    req
}

async fn sign_up(
    server: &Server,
    app: &App,
    username: &str,
    attrs: &[(&str, &str)],
) -> cognate_e2e::idp::operation::sign_up::SignUpOutput {
    ok(sign_up_req(server, app, username, PASSWORD, attrs).send().await)
}

fn confirm_req(server: &Server, app: &App, username: &str, code: &str) -> ConfirmSignUpFluentBuilder {
    server
        .idp_anonymous()
        .confirm_sign_up()
        .client_id(&app.client)
        .username(username)
        .confirmation_code(code)
        .set_secret_hash(app.hash(username))
}

fn resend_req(server: &Server, app: &App, username: &str) -> ResendConfirmationCodeFluentBuilder {
    server
        .idp_anonymous()
        .resend_confirmation_code()
        .client_id(&app.client)
        .username(username)
        .set_secret_hash(app.hash(username))
}

fn forgot_req(server: &Server, app: &App, username: &str) -> ForgotPasswordFluentBuilder {
    server
        .idp_anonymous()
        .forgot_password()
        .client_id(&app.client)
        .username(username)
        .set_secret_hash(app.hash(username))
}

fn confirm_forgot_req(
    server: &Server,
    app: &App,
    username: &str,
    code: &str,
    password: &str,
) -> ConfirmForgotPasswordFluentBuilder {
    server
        .idp_anonymous()
        .confirm_forgot_password()
        .client_id(&app.client)
        .username(username)
        .confirmation_code(code)
        .password(password)
        .set_secret_hash(app.hash(username))
}

/// Sign a user up with an email and confirm it with the code from the outbox.
async fn confirmed_user(server: &Server, app: &App, username: &str, email: &str) {
    sign_up(server, app, username, &[("email", email)]).await;
    let code = server.latest_code(&app.pool, username).await;
    ok(confirm_req(server, app, username, &code).send().await);
}

/// A six-digit code different from `code`.
fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().expect("numeric code");
    format!("{:06}", (n + 1) % 1_000_000)
}

fn assert_code_format(code: &str) {
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "code {code:?} is not six digits");
}

fn assert_email_details(d: Option<&CodeDeliveryDetailsType>, masked: &str) {
    let d = d.expect("CodeDeliveryDetails");
    assert_eq!(d.delivery_medium(), Some(&DeliveryMediumType::Email));
    assert_eq!(d.attribute_name(), Some("email"));
    assert_eq!(d.destination(), Some(masked));
}

async fn user_count(server: &Server, pool: &str) -> usize {
    server.list_all_users(pool).await.len()
}

// ---------------------------------------------------------------------------
// SignUp and ConfirmSignUp
// ---------------------------------------------------------------------------

async fn sign_up_sends_a_code_and_confirm_sign_up_confirms(server: &Server) {
    let app = email_app(server).await;
    let out = sign_up(server, &app, "alice", &[("email", "alice@example.com"), ("name", "Alice")]).await;
    assert!(!out.user_confirmed(), "a new user is not confirmed");
    let sub = out.user_sub().to_string();
    assert!(is_uuid(&sub), "UserSub {sub:?} is not a UUID");
    assert_email_details(out.code_delivery_details(), "a***@e***");

    let user = server.get_user(&app.pool, "alice").await;
    assert_eq!(user.username(), "alice");
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("UNCONFIRMED"));
    assert!(user.enabled());
    assert_eq!(attr_of(user.user_attributes(), "sub"), Some(sub.as_str()));
    assert_eq!(attr_of(user.user_attributes(), "email"), Some("alice@example.com"));
    assert_eq!(attr_of(user.user_attributes(), "name"), Some("Alice"));
    assert_ne!(attr_of(user.user_attributes(), "email_verified"), Some("true"));

    // Exactly one message, by email, to the address given, with the code.
    let messages = server.outbox(&app.pool, "alice").await;
    assert_eq!(messages.len(), 1, "one message after SignUp: {messages:?}");
    let m = &messages[0];
    assert_eq!(m.pool_id, app.pool);
    assert_eq!(m.username, "alice");
    assert_eq!(m.channel, "EMAIL");
    assert_eq!(m.destination, "alice@example.com");
    let code = m.code.clone().expect("the message has a code");
    assert_code_format(&code);
    assert!(m.body.contains(&code), "the body {:?} does not contain the code", m.body);
    assert!(m.subject.as_deref().is_some_and(|s| !s.is_empty()), "an email has a subject: {m:?}");
    assert!(m.created_at_is_rfc3339(), "created_at {:?} is not RFC 3339", m.created_at);

    ok(confirm_req(server, &app, "alice", &code).send().await);
    let user = server.get_user(&app.pool, "alice").await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    assert_eq!(attr_of(user.user_attributes(), "email_verified"), Some("true"));
    assert_eq!(attr_of(user.user_attributes(), "sub"), Some(sub.as_str()), "sub never changes");
    // Confirming sends nothing.
    assert_eq!(server.outbox(&app.pool, "alice").await.len(), 1);

    // A second user gets a different sub and its own message.
    let bob = sign_up(server, &app, "bob", &[("email", "bob@example.org")]).await;
    assert_ne!(bob.user_sub(), sub);
    assert_email_details(bob.code_delivery_details(), "b***@e***");
    assert_eq!(server.outbox(&app.pool, "bob").await.len(), 1);
    assert_eq!(server.usernames(&app.pool).await, vec!["alice", "bob"]);
}

async fn sign_up_works_unsigned(server: &Server) {
    let app = email_app(server).await;
    let raw = server.raw();
    let resp = raw
        .idp_unsigned(
            "SignUp",
            json!({
                "ClientId": app.client,
                "Username": "raw-user",
                "Password": PASSWORD,
                "UserAttributes": [{"Name": "email", "Value": "raw@example.com"}],
            }),
        )
        .await;
    assert_eq!(resp.status, 200, "unsigned SignUp: {}", resp.body);
    let body = resp.json();
    assert_eq!(body["UserConfirmed"], json!(false));
    assert!(is_uuid(body["UserSub"].as_str().unwrap_or_default()), "{body}");
    assert_eq!(
        body["CodeDeliveryDetails"],
        json!({"AttributeName": "email", "DeliveryMedium": "EMAIL", "Destination": "r***@e***"})
    );
    let code = server.latest_code(&app.pool, "raw-user").await;
    let resp = raw
        .idp_unsigned(
            "ConfirmSignUp",
            json!({"ClientId": app.client, "Username": "raw-user", "ConfirmationCode": code}),
        )
        .await;
    assert_eq!(resp.status, 200, "unsigned ConfirmSignUp: {}", resp.body);
    assert_eq!(server.user_status(&app.pool, "raw-user").await, "CONFIRMED");

    // The admin operations still need a signature.
    raw.idp_unsigned("AdminGetUser", json!({"UserPoolId": app.pool, "Username": "raw-user"}))
        .await
        .assert_error("MissingAuthenticationTokenException");
    // And a signed SignUp works too (the SDK with credentials signs it).
    ok(server
        .idp()
        .sign_up()
        .client_id(&app.client)
        .username("signed-user")
        .password(PASSWORD)
        .user_attributes(attr("email", "signed@example.com"))
        .send()
        .await);
    assert_eq!(server.user_status(&app.pool, "signed-user").await, "UNCONFIRMED");
}

async fn sign_up_without_auto_verified_attributes_sends_nothing(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let app = server.new_client(&pool, false, false).await;
    let out = sign_up(server, &app, "quiet", &[("email", "quiet@example.com")]).await;
    assert!(!out.user_confirmed());
    assert!(
        out.code_delivery_details().is_none(),
        "no code is sent when nothing is auto-verified: {:?}",
        out.code_delivery_details()
    );
    assert!(server.outbox(&pool, "quiet").await.is_empty());
    assert_eq!(server.user_status(&pool, "quiet").await, "UNCONFIRMED");

    // No code was issued: any code is "expired".
    let msg = expect_code(confirm_req(server, &app, "quiet", "123456").send().await, "ExpiredCodeException");
    assert_eq!(msg, "Invalid code provided, please request a code again.");
    assert_eq!(server.user_status(&pool, "quiet").await, "UNCONFIRMED");

    // Nothing to resend either.
    expect_code(resend_req(server, &app, "quiet").send().await, "InvalidParameterException");
    assert!(server.outbox(&pool, "quiet").await.is_empty());

    // An administrator confirms such users.
    ok(server.idp().admin_confirm_sign_up().user_pool_id(&pool).username("quiet").send().await);
    assert_eq!(server.user_status(&pool, "quiet").await, "CONFIRMED");
}

async fn sign_up_code_goes_by_sms_when_the_pool_verifies_phone_numbers(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email)
                .auto_verified_attributes(VerifiedAttributeType::PhoneNumber)
                .sms_verification_message("Your SMS code is {####}")
                .sms_configuration(
                    SmsConfigurationType::builder()
                        .sns_caller_arn("arn:aws:iam::000000000000:role/cognito-sms")
                        .external_id("e2e")
                        .build(),
                )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;

    // Phone and email: the code goes by SMS.
    let out =
        sign_up(server, &app, "phoebe", &[("email", "phoebe@example.com"), ("phone_number", "+15555550100")]).await;
    let d = out.code_delivery_details().expect("CodeDeliveryDetails");
    assert_eq!(d.delivery_medium(), Some(&DeliveryMediumType::Sms));
    assert_eq!(d.attribute_name(), Some("phone_number"));
    let dest = d.destination().unwrap_or_default();
    assert!(
        dest.starts_with('+') && dest.ends_with("0100") && dest.contains('*') && !dest.contains("555555"),
        "masked phone number {dest:?}"
    );
    let messages = server.outbox(&pool, "phoebe").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].channel, "SMS");
    assert_eq!(messages[0].destination, "+15555550100");
    assert_eq!(messages[0].subject, None, "an SMS has no subject");
    let code = messages[0].code.clone().expect("code");
    assert_eq!(messages[0].body, format!("Your SMS code is {code}"));
    ok(confirm_req(server, &app, "phoebe", &code).send().await);
    let user = server.get_user(&pool, "phoebe").await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    assert_eq!(attr_of(user.user_attributes(), "phone_number_verified"), Some("true"));
    assert_ne!(
        attr_of(user.user_attributes(), "email_verified"),
        Some("true"),
        "only the attribute the code went to is verified"
    );

    // Email only: the code goes by email.
    let out = sign_up(server, &app, "emma", &[("email", "emma@example.com")]).await;
    assert_email_details(out.code_delivery_details(), "e***@e***");
    let messages = server.outbox(&pool, "emma").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].channel, "EMAIL");
}

async fn sign_up_password_policy(server: &Server) {
    let app = email_app(server).await;
    let cases = [
        ("Sh0rt!", "Password not long enough"),
        ("abc", "Password not long enough"),
        ("PASSWORD1!", "Password must have lowercase characters"),
        ("password1!", "Password must have uppercase characters"),
        ("Password!!", "Password must have numeric characters"),
        ("Password12", "Password must have symbol characters"),
        ("12345678", "Password must have lowercase characters"),
    ];
    for (password, reason) in cases {
        let msg = expect_code(
            sign_up_req(server, &app, "weak", password, &[("email", "weak@example.com")]).send().await,
            "InvalidPasswordException",
        );
        assert_eq!(msg, format!("Password did not conform with policy: {reason}"), "password {password:?}");
    }
    // Nothing was created and nothing sent.
    assert!(server.list_all_users(&app.pool).await.is_empty());
    assert!(server.outbox(&app.pool, "weak").await.is_empty());
    expect_code(
        server.idp().admin_get_user().user_pool_id(&app.pool).username("weak").send().await,
        "UserNotFoundException",
    );
    // The same username then signs up with a good password.
    sign_up(server, &app, "weak", &[("email", "weak@example.com")]).await;
    assert_eq!(server.usernames(&app.pool).await, vec!["weak"]);
}

async fn sign_up_with_a_relaxed_password_policy(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.policies(
                UserPoolPolicyType::builder()
                    .password_policy(
                        PasswordPolicyType::builder()
                            .minimum_length(6)
                            .require_lowercase(false)
                            .require_uppercase(false)
                            .require_numbers(false)
                            .require_symbols(false)
                            .build(),
                    )
                    .build(),
            )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    ok(sign_up_req(server, &app, "simple", "abcdef", &[]).send().await);
    let msg = expect_code(sign_up_req(server, &app, "simpler", "abcde", &[]).send().await, "InvalidPasswordException");
    assert_eq!(msg, "Password did not conform with policy: Password not long enough");

    // Only uppercase required: the lowercase check does not apply.
    let pool = server
        .new_pool(|p| {
            p.policies(
                UserPoolPolicyType::builder()
                    .password_policy(
                        PasswordPolicyType::builder()
                            .minimum_length(8)
                            .require_lowercase(false)
                            .require_uppercase(true)
                            .require_numbers(false)
                            .require_symbols(true)
                            .build(),
                    )
                    .build(),
            )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    ok(sign_up_req(server, &app, "upper", "ABCDEFG!", &[]).send().await);
    let msg = expect_code(sign_up_req(server, &app, "lower", "abcdefg!", &[]).send().await, "InvalidPasswordException");
    assert_eq!(msg, "Password did not conform with policy: Password must have uppercase characters");
    let msg =
        expect_code(sign_up_req(server, &app, "nosymbol", "ABCDEFGH", &[]).send().await, "InvalidPasswordException");
    assert_eq!(msg, "Password did not conform with policy: Password must have symbol characters");
    assert_eq!(server.usernames(&pool).await, vec!["upper"]);
}

async fn sign_up_existing_username_is_refused(server: &Server) {
    let app = email_app(server).await;
    let first = sign_up(server, &app, "dup", &[("email", "dup1@example.com")]).await;
    let msg = expect_code(
        sign_up_req(server, &app, "dup", PASSWORD, &[("email", "dup2@example.com")]).send().await,
        "UsernameExistsException",
    );
    assert_eq!(msg, "User already exists");
    // The first user is untouched and only it got a message.
    let user = server.get_user(&app.pool, "dup").await;
    assert_eq!(attr_of(user.user_attributes(), "email"), Some("dup1@example.com"));
    assert_eq!(attr_of(user.user_attributes(), "sub"), Some(first.user_sub()));
    let messages = server.outbox(&app.pool, "dup").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].destination, "dup1@example.com");

    // A user created by an administrator blocks the name as well.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&app.pool)
        .username("admin-made")
        .message_action(cognate_e2e::idp::types::MessageActionType::Suppress)
        .send()
        .await);
    expect_code(sign_up_req(server, &app, "admin-made", PASSWORD, &[]).send().await, "UsernameExistsException");
    assert_eq!(server.usernames(&app.pool).await, vec!["admin-made", "dup"]);
}

async fn sign_up_attributes_are_validated_against_the_schema(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email)
                .schema(
                    SchemaAttributeType::builder()
                        .name("name")
                        .attribute_data_type(AttributeDataType::String)
                        .required(true)
                        .mutable(true)
                        .build(),
                )
                .schema(
                    SchemaAttributeType::builder()
                        .name("tier")
                        .attribute_data_type(AttributeDataType::String)
                        .mutable(true)
                        .string_attribute_constraints(
                            StringAttributeConstraintsType::builder().min_length("1").max_length("5").build(),
                        )
                        .build(),
                )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    const PREFIX: &str = "Attributes did not conform to the schema";

    // A required attribute is missing.
    let msg = expect_code(
        sign_up_req(server, &app, "u1", PASSWORD, &[("email", "u1@example.com")]).send().await,
        "InvalidParameterException",
    );
    assert!(
        msg.starts_with(PREFIX) && msg.contains("The attribute is required"),
        "missing required attribute: {msg:?}"
    );
    // An attribute the schema does not have.
    let msg = expect_code(
        sign_up_req(
            server,
            &app,
            "u1",
            PASSWORD,
            &[("email", "u1@example.com"), ("name", "U"), ("favourite_colour", "blue")],
        )
        .send()
        .await,
        "InvalidParameterException",
    );
    assert!(msg.starts_with(PREFIX), "unknown attribute: {msg:?}");
    // A custom attribute that does not exist.
    let msg = expect_code(
        sign_up_req(server, &app, "u1", PASSWORD, &[("email", "u1@example.com"), ("name", "U"), ("custom:nope", "x")])
            .send()
            .await,
        "InvalidParameterException",
    );
    assert!(msg.starts_with(PREFIX), "unknown custom attribute: {msg:?}");
    // A custom attribute longer than its MaxLength.
    let msg = expect_code(
        sign_up_req(
            server,
            &app,
            "u1",
            PASSWORD,
            &[("email", "u1@example.com"), ("name", "U"), ("custom:tier", "platinum")],
        )
        .send()
        .await,
        "InvalidParameterException",
    );
    assert!(msg.starts_with(PREFIX), "custom attribute too long: {msg:?}");
    // A malformed email address.
    let msg = expect_code(
        sign_up_req(server, &app, "u1", PASSWORD, &[("email", "not-an-email"), ("name", "U")]).send().await,
        "InvalidParameterException",
    );
    assert!(msg.contains("Invalid email address format."), "bad email: {msg:?}");

    // A malformed phone number.
    expect_code(
        sign_up_req(
            server,
            &app,
            "u1",
            PASSWORD,
            &[("email", "u1@example.com"), ("name", "U"), ("phone_number", "555-0100")],
        )
        .send()
        .await,
        "InvalidParameterException",
    );

    // None of these created a user or sent anything.
    assert_eq!(user_count(server, &pool).await, 0);
    assert!(server.outbox(&pool, "u1").await.is_empty());

    // Valid attributes, including a custom one at its maximum length.
    sign_up(server, &app, "u1", &[("email", "u1@example.com"), ("name", "U"), ("custom:tier", "gold5")]).await;
    let user = server.get_user(&pool, "u1").await;
    assert_eq!(attr_of(user.user_attributes(), "custom:tier"), Some("gold5"));
    assert_eq!(attr_of(user.user_attributes(), "name"), Some("U"));
}

async fn sign_up_unknown_client(server: &Server) {
    let app = email_app(server).await;
    let ghost = App { pool: app.pool.clone(), client: "0123456789abcdefghijklmnop".into(), secret: None };
    expect_code(
        sign_up_req(server, &ghost, "nobody", PASSWORD, &[("email", "n@example.com")]).send().await,
        "ResourceNotFoundException",
    );
    expect_code(forgot_req(server, &ghost, "nobody").send().await, "ResourceNotFoundException");
    expect_code(confirm_req(server, &ghost, "nobody", "123456").send().await, "ResourceNotFoundException");
    assert_eq!(user_count(server, &app.pool).await, 0);

    // A deleted client stops working.
    sign_up(server, &app, "before", &[("email", "before@example.com")]).await;
    ok(server.idp().delete_user_pool_client().user_pool_id(&app.pool).client_id(&app.client).send().await);
    expect_code(
        sign_up_req(server, &app, "after", PASSWORD, &[("email", "after@example.com")]).send().await,
        "ResourceNotFoundException",
    );
    assert_eq!(server.usernames(&app.pool).await, vec!["before"]);
}

async fn confirm_sign_up_wrong_code_changes_nothing(server: &Server) {
    let app = email_app(server).await;
    sign_up(server, &app, "carol", &[("email", "carol@example.com")]).await;
    let code = server.latest_code(&app.pool, "carol").await;
    let msg = expect_code(confirm_req(server, &app, "carol", &wrong_code(&code)).send().await, "CodeMismatchException");
    assert_eq!(msg, "Invalid verification code provided, please try again.");
    let user = server.get_user(&app.pool, "carol").await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("UNCONFIRMED"));
    assert_ne!(attr_of(user.user_attributes(), "email_verified"), Some("true"));
    // Not a code at all.
    expect_one_of(
        confirm_req(server, &app, "carol", "abc").send().await,
        &["CodeMismatchException", "InvalidParameterException"],
    );
    assert_eq!(server.user_status(&app.pool, "carol").await, "UNCONFIRMED");
    // The right code still works after the failures.
    ok(confirm_req(server, &app, "carol", &code).send().await);
    assert_eq!(server.user_status(&app.pool, "carol").await, "CONFIRMED");
}

async fn confirm_sign_up_attempt_limit(server: &Server) {
    let app = email_app(server).await;
    sign_up(server, &app, "dora", &[("email", "dora@example.com")]).await;
    let code = server.latest_code(&app.pool, "dora").await;
    let bad = wrong_code(&code);
    for attempt in 1..=5 {
        let info = expect_err(confirm_req(server, &app, "dora", &bad).send().await);
        assert_eq!(
            (info.status, info.code.as_str()),
            (400, "CodeMismatchException"),
            "wrong attempt {attempt}: {info:?}"
        );
    }
    let msg = expect_code(confirm_req(server, &app, "dora", &bad).send().await, "LimitExceededException");
    assert_eq!(msg, "Attempt limit exceeded, please try after some time.");
    // Once the limit is reached even the right code is refused.
    let info = expect_err(confirm_req(server, &app, "dora", &code).send().await);
    assert_eq!(info.status, 400, "the right code after the attempt limit: {info:?}");
    assert_eq!(server.user_status(&app.pool, "dora").await, "UNCONFIRMED");
}

async fn confirm_sign_up_of_a_confirmed_user_is_refused(server: &Server) {
    let app = email_app(server).await;
    sign_up(server, &app, "erin", &[("email", "erin@example.com")]).await;
    let code = server.latest_code(&app.pool, "erin").await;
    ok(confirm_req(server, &app, "erin", &code).send().await);
    let msg = expect_code(confirm_req(server, &app, "erin", &code).send().await, "NotAuthorizedException");
    assert_eq!(msg, "User cannot be confirmed. Current status is CONFIRMED");
    assert_eq!(server.user_status(&app.pool, "erin").await, "CONFIRMED");
}

async fn unknown_users_are_reported_without_prevent_user_existence_errors(server: &Server) {
    let app = email_app(server).await;
    const MSG: &str = "Username/client id combination not found.";
    let msg = expect_code(confirm_req(server, &app, "ghost", "123456").send().await, "UserNotFoundException");
    assert_eq!(msg, MSG);
    let msg = expect_code(resend_req(server, &app, "ghost").send().await, "UserNotFoundException");
    assert_eq!(msg, MSG);
    let msg = expect_code(forgot_req(server, &app, "ghost").send().await, "UserNotFoundException");
    assert_eq!(msg, MSG);
    let msg = expect_code(
        confirm_forgot_req(server, &app, "ghost", "123456", "N3wPassw0rd!").send().await,
        "UserNotFoundException",
    );
    assert_eq!(msg, MSG);
    assert_eq!(user_count(server, &app.pool).await, 0);
    assert!(server.outbox(&app.pool, "ghost").await.is_empty());
}

// ---------------------------------------------------------------------------
// ResendConfirmationCode
// ---------------------------------------------------------------------------

async fn resend_confirmation_code_sends_a_new_code(server: &Server) {
    let app = email_app(server).await;
    sign_up(server, &app, "frank", &[("email", "frank@example.com")]).await;
    let first = server.outbox(&app.pool, "frank").await;
    assert_eq!(first.len(), 1);

    let out = ok(resend_req(server, &app, "frank").send().await);
    assert_email_details(out.code_delivery_details(), "f***@e***");
    let messages = server.outbox(&app.pool, "frank").await;
    assert_eq!(messages.len(), 2, "ResendConfirmationCode adds a message: {messages:?}");
    assert_eq!(messages[0], first[0], "earlier messages are kept as they were");
    assert!(messages[1].id > messages[0].id);
    assert_eq!(messages[1].channel, "EMAIL");
    assert_eq!(messages[1].destination, "frank@example.com");
    let code = messages[1].code.clone().expect("code");
    assert_code_format(&code);
    assert!(messages[1].body.contains(&code));
    assert_eq!(server.user_status(&app.pool, "frank").await, "UNCONFIRMED");

    ok(confirm_req(server, &app, "frank", &code).send().await);
    assert_eq!(server.user_status(&app.pool, "frank").await, "CONFIRMED");
}

async fn resend_confirmation_code_of_a_confirmed_user_is_refused(server: &Server) {
    let app = email_app(server).await;
    confirmed_user(server, &app, "gina", "gina@example.com").await;
    let before = server.outbox(&app.pool, "gina").await;
    expect_code(resend_req(server, &app, "gina").send().await, "InvalidParameterException");
    assert_eq!(server.outbox(&app.pool, "gina").await, before, "nothing was sent");
    assert_eq!(server.user_status(&app.pool, "gina").await, "CONFIRMED");
}

// ---------------------------------------------------------------------------
// ForgotPassword and ConfirmForgotPassword
// ---------------------------------------------------------------------------

async fn forgot_password_and_confirm_forgot_password(server: &Server) {
    let app = email_app(server).await;
    confirmed_user(server, &app, "hank", "hank@example.com").await;
    let before = server.outbox(&app.pool, "hank").await.len();

    let out = ok(forgot_req(server, &app, "hank").send().await);
    assert_email_details(out.code_delivery_details(), "h***@e***");
    let messages = server.outbox(&app.pool, "hank").await;
    assert_eq!(messages.len(), before + 1, "ForgotPassword sends one message");
    let m = messages.last().unwrap();
    assert_eq!(m.channel, "EMAIL");
    assert_eq!(m.destination, "hank@example.com");
    let code = m.code.clone().expect("code");
    assert_code_format(&code);
    assert!(m.body.contains(&code));
    assert_eq!(server.user_status(&app.pool, "hank").await, "CONFIRMED", "ForgotPassword does not change the status");

    ok(confirm_forgot_req(server, &app, "hank", &code, "N3w-Passw0rd").send().await);
    let user = server.get_user(&app.pool, "hank").await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    assert_eq!(attr_of(user.user_attributes(), "email_verified"), Some("true"));

    // Codes are single use.
    let msg = expect_code(
        confirm_forgot_req(server, &app, "hank", &code, "An0ther-Passw0rd").send().await,
        "ExpiredCodeException",
    );
    assert_eq!(msg, "Invalid code provided, please request a code again.");

    // A second request sends a new code; the newest one works.
    ok(forgot_req(server, &app, "hank").send().await);
    let code2 = server.latest_code(&app.pool, "hank").await;
    ok(confirm_forgot_req(server, &app, "hank", &code2, "Th1rd-Passw0rd").send().await);
    assert_eq!(server.user_status(&app.pool, "hank").await, "CONFIRMED");
}

async fn confirm_forgot_password_errors_change_nothing(server: &Server) {
    let app = email_app(server).await;
    confirmed_user(server, &app, "ivy", "ivy@example.com").await;

    // No code was ever issued for a password reset.
    let msg = expect_code(
        confirm_forgot_req(server, &app, "ivy", "123456", "N3w-Passw0rd").send().await,
        "ExpiredCodeException",
    );
    assert_eq!(msg, "Invalid code provided, please request a code again.");

    ok(forgot_req(server, &app, "ivy").send().await);
    let code = server.latest_code(&app.pool, "ivy").await;
    let msg = expect_code(
        confirm_forgot_req(server, &app, "ivy", &wrong_code(&code), "N3w-Passw0rd").send().await,
        "CodeMismatchException",
    );
    assert_eq!(msg, "Invalid verification code provided, please try again.");
    // The right code with a password the policy refuses: the code is not used up.
    let msg =
        expect_code(confirm_forgot_req(server, &app, "ivy", &code, "short").send().await, "InvalidPasswordException");
    assert_eq!(msg, "Password did not conform with policy: Password not long enough");
    let msg = expect_code(
        confirm_forgot_req(server, &app, "ivy", &code, "nouppercase1!").send().await,
        "InvalidPasswordException",
    );
    assert_eq!(msg, "Password did not conform with policy: Password must have uppercase characters");
    assert_eq!(server.user_status(&app.pool, "ivy").await, "CONFIRMED");
    ok(confirm_forgot_req(server, &app, "ivy", &code, "N3w-Passw0rd").send().await);
    assert_eq!(server.user_status(&app.pool, "ivy").await, "CONFIRMED");
}

async fn confirm_forgot_password_attempt_limit(server: &Server) {
    let app = email_app(server).await;
    confirmed_user(server, &app, "jack", "jack@example.com").await;
    ok(forgot_req(server, &app, "jack").send().await);
    let code = server.latest_code(&app.pool, "jack").await;
    let bad = wrong_code(&code);
    for attempt in 1..=5 {
        let info = expect_err(confirm_forgot_req(server, &app, "jack", &bad, "N3w-Passw0rd").send().await);
        assert_eq!(
            (info.status, info.code.as_str()),
            (400, "CodeMismatchException"),
            "wrong attempt {attempt}: {info:?}"
        );
    }
    let msg = expect_code(
        confirm_forgot_req(server, &app, "jack", &bad, "N3w-Passw0rd").send().await,
        "LimitExceededException",
    );
    assert_eq!(msg, "Attempt limit exceeded, please try after some time.");
    let info = expect_err(confirm_forgot_req(server, &app, "jack", &code, "N3w-Passw0rd").send().await);
    assert_eq!(info.status, 400, "the right code after the attempt limit: {info:?}");
}

async fn forgot_password_needs_a_verified_destination(server: &Server) {
    let app = email_app(server).await;
    // Confirmed by an administrator, with an email that was never verified.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&app.pool)
        .username("kate")
        .user_attributes(attr("email", "kate@example.com"))
        .message_action(cognate_e2e::idp::types::MessageActionType::Suppress)
        .send()
        .await);
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(&app.pool)
        .username("kate")
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    assert_eq!(server.user_status(&app.pool, "kate").await, "CONFIRMED");
    expect_code(forgot_req(server, &app, "kate").send().await, "InvalidParameterException");
    assert!(server.outbox(&app.pool, "kate").await.is_empty(), "nothing was sent");
    assert_eq!(server.user_status(&app.pool, "kate").await, "CONFIRMED");
}

async fn forgot_password_of_a_disabled_user(server: &Server) {
    let app = email_app(server).await;
    confirmed_user(server, &app, "liam", "liam@example.com").await;
    let before = server.outbox(&app.pool, "liam").await;
    ok(server.idp().admin_disable_user().user_pool_id(&app.pool).username("liam").send().await);
    let msg = expect_code(forgot_req(server, &app, "liam").send().await, "NotAuthorizedException");
    assert_eq!(msg, "User is disabled.");
    assert_eq!(server.outbox(&app.pool, "liam").await, before, "nothing was sent");

    ok(server.idp().admin_enable_user().user_pool_id(&app.pool).username("liam").send().await);
    ok(forgot_req(server, &app, "liam").send().await);
    assert_eq!(server.outbox(&app.pool, "liam").await.len(), before.len() + 1);
}

// ---------------------------------------------------------------------------
// SECRET_HASH
// ---------------------------------------------------------------------------

async fn secret_hash_is_required_when_the_client_has_a_secret(server: &Server) {
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let app = server.new_client(&pool, true, false).await;
    let secret = app.secret.clone().expect("the client has a secret");
    let no_hash = App { secret: None, ..app.clone() };
    let wrong_secret = App { secret: Some(format!("{secret}x")), ..app.clone() };

    // SignUp: without a hash, with a wrong one, with another user's.
    expect_code(
        sign_up_req(server, &no_hash, "mia", PASSWORD, &[("email", "mia@example.com")]).send().await,
        "NotAuthorizedException",
    );
    expect_code(
        sign_up_req(server, &wrong_secret, "mia", PASSWORD, &[("email", "mia@example.com")]).send().await,
        "NotAuthorizedException",
    );
    expect_code(
        server
            .idp_anonymous()
            .sign_up()
            .client_id(&app.client)
            .username("mia")
            .password(PASSWORD)
            .secret_hash(app.hash("someone-else").unwrap())
            .send()
            .await,
        "NotAuthorizedException",
    );
    assert_eq!(user_count(server, &pool).await, 0, "refused SignUps create no user");
    assert!(server.outbox(&pool, "mia").await.is_empty());

    sign_up(server, &app, "mia", &[("email", "mia@example.com")]).await;
    sign_up(server, &app, "noah", &[("email", "noah@example.com")]).await;

    // ResendConfirmationCode.
    let sent = server.outbox(&pool, "noah").await.len();
    expect_code(resend_req(server, &no_hash, "noah").send().await, "NotAuthorizedException");
    expect_code(resend_req(server, &wrong_secret, "noah").send().await, "NotAuthorizedException");
    assert_eq!(server.outbox(&pool, "noah").await.len(), sent);
    ok(resend_req(server, &app, "noah").send().await);
    assert_eq!(server.outbox(&pool, "noah").await.len(), sent + 1);

    // ConfirmSignUp.
    let code = server.latest_code(&pool, "mia").await;
    expect_code(confirm_req(server, &no_hash, "mia", &code).send().await, "NotAuthorizedException");
    expect_code(confirm_req(server, &wrong_secret, "mia", &code).send().await, "NotAuthorizedException");
    assert_eq!(server.user_status(&pool, "mia").await, "UNCONFIRMED");
    ok(confirm_req(server, &app, "mia", &code).send().await);
    assert_eq!(server.user_status(&pool, "mia").await, "CONFIRMED");

    // ForgotPassword and ConfirmForgotPassword.
    let sent = server.outbox(&pool, "mia").await.len();
    expect_code(forgot_req(server, &no_hash, "mia").send().await, "NotAuthorizedException");
    assert_eq!(server.outbox(&pool, "mia").await.len(), sent);
    ok(forgot_req(server, &app, "mia").send().await);
    let code = server.latest_code(&pool, "mia").await;
    expect_code(
        confirm_forgot_req(server, &no_hash, "mia", &code, "N3w-Passw0rd").send().await,
        "NotAuthorizedException",
    );
    expect_code(
        confirm_forgot_req(server, &wrong_secret, "mia", &code, "N3w-Passw0rd").send().await,
        "NotAuthorizedException",
    );
    ok(confirm_forgot_req(server, &app, "mia", &code, "N3w-Passw0rd").send().await);

    // A client without a secret ignores nothing: it simply needs no hash.
    let public = server.new_client(&pool, false, false).await;
    sign_up(server, &public, "olga", &[("email", "olga@example.com")]).await;
    assert_eq!(server.usernames(&pool).await, vec!["mia", "noah", "olga"]);
}

// ---------------------------------------------------------------------------
// PreventUserExistenceErrors
// ---------------------------------------------------------------------------

async fn prevent_user_existence_errors_hides_unknown_users(server: &Server) {
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let app = server.new_client(&pool, false, true).await;
    let raw = server.raw();
    // A confirmed user (for ForgotPassword) and an unconfirmed one (for
    // ResendConfirmationCode and ConfirmSignUp).
    confirmed_user(server, &app, "known", "known@example.com").await;
    sign_up(server, &app, "pending", &[("email", "pending@example.com")]).await;

    // ForgotPassword: same status and shape for a real and an unknown user.
    let real = raw.idp_unsigned("ForgotPassword", json!({"ClientId": app.client, "Username": "known"})).await;
    let fake = raw.idp_unsigned("ForgotPassword", json!({"ClientId": app.client, "Username": "nobody"})).await;
    assert_eq!(real.status, 200, "ForgotPassword of a real user: {}", real.body);
    assert_eq!(fake.status, 200, "ForgotPassword of an unknown user: {}", fake.body);
    assert_eq!(json_shape(&fake.json()), json_shape(&real.json()), "{} vs {}", fake.body, real.body);
    let (r, f) = (real.json(), fake.json());
    for key in ["DeliveryMedium", "AttributeName"] {
        assert_eq!(f["CodeDeliveryDetails"][key], r["CodeDeliveryDetails"][key], "{key} gives the unknown user away");
    }

    // ResendConfirmationCode: likewise.
    let real = raw.idp_unsigned("ResendConfirmationCode", json!({"ClientId": app.client, "Username": "pending"})).await;
    let fake = raw.idp_unsigned("ResendConfirmationCode", json!({"ClientId": app.client, "Username": "nobody"})).await;
    assert_eq!(real.status, 200, "{}", real.body);
    assert_eq!(fake.status, 200, "{}", fake.body);
    assert_eq!(json_shape(&fake.json()), json_shape(&real.json()), "{} vs {}", fake.body, real.body);

    // ConfirmSignUp: an unknown user looks like a wrong code.
    let code = server.latest_code(&pool, "pending").await;
    let real = raw
        .idp_unsigned(
            "ConfirmSignUp",
            json!({"ClientId": app.client, "Username": "pending", "ConfirmationCode": wrong_code(&code)}),
        )
        .await;
    let fake = raw
        .idp_unsigned(
            "ConfirmSignUp",
            json!({"ClientId": app.client, "Username": "nobody", "ConfirmationCode": "123456"}),
        )
        .await;
    assert_eq!(real.assert_error("CodeMismatchException"), fake.assert_error("CodeMismatchException"));
    assert_eq!(json_shape(&fake.json()), json_shape(&real.json()));

    // ConfirmForgotPassword: likewise.
    ok(forgot_req(server, &app, "known").send().await);
    let code = server.latest_code(&pool, "known").await;
    let real = raw
        .idp_unsigned(
            "ConfirmForgotPassword",
            json!({"ClientId": app.client, "Username": "known", "ConfirmationCode": wrong_code(&code), "Password": "N3w-Passw0rd"}),
        )
        .await;
    let fake = raw
        .idp_unsigned(
            "ConfirmForgotPassword",
            json!({"ClientId": app.client, "Username": "nobody", "ConfirmationCode": "123456", "Password": "N3w-Passw0rd"}),
        )
        .await;
    assert_eq!(real.assert_error("CodeMismatchException"), fake.assert_error("CodeMismatchException"));

    // Nothing was created or sent for the unknown user.
    assert_eq!(server.usernames(&pool).await, vec!["known", "pending"]);
    assert!(server.outbox(&pool, "nobody").await.is_empty());
    // The real users were not harmed by the wrong codes.
    assert_eq!(server.user_status(&pool, "pending").await, "UNCONFIRMED");
    ok(confirm_forgot_req(server, &app, "known", &code, "N3w-Passw0rd").send().await);

    // The admin operations are not affected by the setting.
    let msg = expect_code(
        server.idp().admin_get_user().user_pool_id(&pool).username("nobody").send().await,
        "UserNotFoundException",
    );
    assert_eq!(msg, "User does not exist.");

    // SignUp still reports an existing username.
    expect_code(
        sign_up_req(server, &app, "known", PASSWORD, &[("email", "again@example.com")]).send().await,
        "UsernameExistsException",
    );

    // A LEGACY client of the same pool still reports unknown users.
    let legacy = server.new_client(&pool, false, false).await;
    expect_code(forgot_req(server, &legacy, "nobody").send().await, "UserNotFoundException");
}

// ---------------------------------------------------------------------------
// Message templates
// ---------------------------------------------------------------------------

async fn verification_message_template_is_used(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email).verification_message_template(
                VerificationMessageTemplateType::builder()
                    .email_subject("Confirm your account")
                    .email_message("Welcome! Your code: {####}.")
                    .default_email_option(cognate_e2e::idp::types::DefaultEmailOptionType::ConfirmWithCode)
                    .build(),
            )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    sign_up(server, &app, "pat", &[("email", "pat@example.com")]).await;
    let messages = server.outbox(&pool, "pat").await;
    assert_eq!(messages.len(), 1);
    let code = messages[0].code.clone().expect("code");
    assert_eq!(messages[0].subject.as_deref(), Some("Confirm your account"));
    assert_eq!(messages[0].body, format!("Welcome! Your code: {code}."));
}

async fn email_verification_message_is_used(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email)
                .email_verification_subject("Verify me")
                .email_verification_message("Code {####} inside")
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    sign_up(server, &app, "quinn", &[("email", "quinn@example.com")]).await;
    let messages = server.outbox(&pool, "quinn").await;
    assert_eq!(messages.len(), 1);
    let code = messages[0].code.clone().expect("code");
    assert_eq!(messages[0].subject.as_deref(), Some("Verify me"));
    assert_eq!(messages[0].body, format!("Code {code} inside"));

    // ResendConfirmationCode uses the same template.
    ok(resend_req(server, &app, "quinn").send().await);
    let messages = server.outbox(&pool, "quinn").await;
    let code = messages[1].code.clone().expect("code");
    assert_eq!(messages[1].body, format!("Code {code} inside"));
}

// ---------------------------------------------------------------------------
// Username settings
// ---------------------------------------------------------------------------

async fn usernames_are_case_sensitive_by_default(server: &Server) {
    let app = email_app(server).await;
    let upper = sign_up(server, &app, "Rose", &[("email", "rose1@example.com")]).await;
    let lower = sign_up(server, &app, "rose", &[("email", "rose2@example.com")]).await;
    assert_ne!(upper.user_sub(), lower.user_sub());
    assert_eq!(server.usernames(&app.pool).await, vec!["Rose", "rose"]);
    expect_code(
        server.idp().admin_get_user().user_pool_id(&app.pool).username("ROSE").send().await,
        "UserNotFoundException",
    );
    let code = server.latest_code(&app.pool, "Rose").await;
    assert_eq!(server.outbox(&app.pool, "Rose").await[0].destination, "rose1@example.com");
    // The code of "Rose" does not confirm "rose".
    let info = expect_err(confirm_req(server, &app, "rose", &code).send().await);
    assert_eq!(info.status, 400);
    ok(confirm_req(server, &app, "Rose", &code).send().await);
    assert_eq!(server.user_status(&app.pool, "Rose").await, "CONFIRMED");
    assert_eq!(server.user_status(&app.pool, "rose").await, "UNCONFIRMED");
}

async fn case_insensitive_usernames(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email).username_configuration(
                UsernameConfigurationType::builder().case_sensitive(false).build().expect("UsernameConfiguration"),
            )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    let out = sign_up(server, &app, "Alice", &[("email", "alice@example.com")]).await;
    for spelling in ["Alice", "alice", "ALICE"] {
        let user = server.get_user(&pool, spelling).await;
        assert!(
            user.username().eq_ignore_ascii_case("alice"),
            "AdminGetUser({spelling:?}) returned {:?}",
            user.username()
        );
        assert_eq!(attr_of(user.user_attributes(), "sub"), Some(out.user_sub()));
    }
    let msg = expect_code(
        sign_up_req(server, &app, "alice", PASSWORD, &[("email", "other@example.com")]).send().await,
        "UsernameExistsException",
    );
    assert_eq!(msg, "User already exists");
    let users = server.list_all_users(&pool).await;
    assert_eq!(users.len(), 1, "one user: {users:?}");
    let stored = users[0].username().unwrap().to_string();

    // Confirm with yet another spelling.
    let code = server.latest_code(&pool, &stored).await;
    ok(confirm_req(server, &app, "aLiCe", &code).send().await);
    assert_eq!(server.user_status(&pool, "ALICE").await, "CONFIRMED");

    // Admin operations and the other public ones take any spelling too.
    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("ALICE")
        .user_attributes(attr("name", "Alice A."))
        .send()
        .await);
    assert_eq!(attr_of(server.get_user(&pool, "alice").await.user_attributes(), "name"), Some("Alice A."));
    ok(forgot_req(server, &app, "aLICE").send().await);
    let code = server.latest_code(&pool, &stored).await;
    ok(confirm_forgot_req(server, &app, "Alice", &code, "N3w-Passw0rd").send().await);
    ok(server.idp().admin_delete_user().user_pool_id(&pool).username("ALICE").send().await);
    assert!(server.list_all_users(&pool).await.is_empty());
}

async fn email_as_username(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email).username_attributes(UsernameAttributeType::Email)
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    let out = sign_up(server, &app, "sam@example.com", &[]).await;
    let sub = out.user_sub().to_string();
    assert!(is_uuid(&sub));
    assert_email_details(out.code_delivery_details(), "s***@e***");

    // The username is the sub; the email is an attribute.
    let user = server.get_user(&pool, "sam@example.com").await;
    assert_eq!(user.username(), sub, "the stored username is the sub");
    assert_eq!(attr_of(user.user_attributes(), "email"), Some("sam@example.com"));
    assert_eq!(attr_of(user.user_attributes(), "sub"), Some(sub.as_str()));
    assert_eq!(server.get_user(&pool, &sub).await.username(), sub);
    assert_eq!(server.usernames(&pool).await, vec![sub.clone()]);

    // The same email again.
    let msg = expect_code(
        sign_up_req(server, &app, "sam@example.com", PASSWORD, &[]).send().await,
        "UsernameExistsException",
    );
    assert_eq!(msg, "An account with the given email already exists.");
    // A username that is not an email.
    expect_code(
        sign_up_req(server, &app, "sam", PASSWORD, &[("email", "sam2@example.com")]).send().await,
        "InvalidParameterException",
    );
    assert_eq!(user_count(server, &pool).await, 1);

    // The code is the user's; confirm by email.
    let messages = server.outbox(&pool, &sub).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].destination, "sam@example.com");
    let code = messages[0].code.clone().expect("code");
    ok(confirm_req(server, &app, "sam@example.com", &code).send().await);
    let user = server.get_user(&pool, "sam@example.com").await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    assert_eq!(attr_of(user.user_attributes(), "email_verified"), Some("true"));

    // ForgotPassword by email too.
    ok(forgot_req(server, &app, "sam@example.com").send().await);
    assert_eq!(server.outbox(&pool, &sub).await.len(), 2);

    // ListUsers finds the user by email.
    let found = ok(server.idp().list_users().user_pool_id(&pool).filter("email = \"sam@example.com\"").send().await);
    assert_eq!(found.users().len(), 1);
    assert_eq!(found.users()[0].username(), Some(sub.as_str()));
}

async fn email_alias_must_be_unique_once_verified(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email).alias_attributes(AliasAttributeType::Email)
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    const EMAIL: &str = "shared@example.com";

    // A username in email format is refused in an alias pool.
    expect_code(
        sign_up_req(server, &app, "tom@example.com", PASSWORD, &[("email", "tom@example.com")]).send().await,
        "InvalidParameterException",
    );
    assert_eq!(user_count(server, &pool).await, 0);

    sign_up(server, &app, "tom", &[("email", EMAIL)]).await;
    // An unverified email is not an alias yet.
    expect_code(
        server.idp().admin_get_user().user_pool_id(&pool).username(EMAIL).send().await,
        "UserNotFoundException",
    );
    let code = server.latest_code(&pool, "tom").await;
    ok(confirm_req(server, &app, "tom", &code).send().await);
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "tom");

    // Another user may sign up with the same email, but confirming it would
    // take the alias: refused, and nothing changes.
    sign_up(server, &app, "uma", &[("email", EMAIL)]).await;
    let code = server.latest_code(&pool, "uma").await;
    let msg = expect_code(confirm_req(server, &app, "uma", &code).send().await, "AliasExistsException");
    assert_eq!(msg, "An account with the given email already exists.");
    assert_eq!(server.user_status(&pool, "uma").await, "UNCONFIRMED");
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "tom");

    // ForceAliasCreation moves the alias (the same code is still good).
    ok(confirm_req(server, &app, "uma", &code).force_alias_creation(true).send().await);
    assert_eq!(server.user_status(&pool, "uma").await, "CONFIRMED");
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "uma");
    let tom = server.get_user(&pool, "tom").await;
    assert_eq!(tom.user_status().map(|s| s.as_str()), Some("CONFIRMED"));
    assert_ne!(
        attr_of(tom.user_attributes(), "email_verified"),
        Some("true"),
        "the previous owner's email is no longer verified"
    );
    assert_eq!(server.usernames(&pool).await, vec!["tom", "uma"]);
}

// ---------------------------------------------------------------------------
// The outbox itself
// ---------------------------------------------------------------------------

async fn outbox_filters_and_the_outbox_command(server: &Server) {
    let app = email_app(server).await;
    let other = email_app(server).await;
    sign_up(server, &app, "vera", &[("email", "vera@example.com")]).await;
    sign_up(server, &app, "walt", &[("email", "walt@example.com")]).await;
    ok(resend_req(server, &app, "vera").send().await);
    ok(resend_req(server, &app, "vera").send().await);
    sign_up(server, &other, "vera", &[("email", "vera@example.net")]).await;

    let vera = server.outbox(&app.pool, "vera").await;
    assert_eq!(vera.len(), 3, "{vera:?}");
    assert!(vera.iter().all(|m| m.username == "vera" && m.pool_id == app.pool));
    assert!(vera.iter().all(|m| m.destination == "vera@example.com"));
    let codes: Vec<&str> = vera.iter().filter_map(|m| m.code.as_deref()).collect();
    assert_eq!(codes.len(), 3);
    for code in &codes {
        assert_code_format(code);
    }
    assert_eq!(server.latest_code(&app.pool, "vera").await, codes[2]);
    assert_eq!(server.outbox(&other.pool, "vera").await.len(), 1);
    assert_eq!(server.outbox(&other.pool, "vera").await[0].destination, "vera@example.net");

    // pool only: every user of the pool.
    let whole = server.outbox_query(&format!("pool={}", cognate_e2e::url_encode(&app.pool))).await;
    assert_eq!(whole.len(), 4);
    let mut users: Vec<&str> = whole.iter().map(|m| m.username.as_str()).collect();
    users.sort();
    users.dedup();
    assert_eq!(users, vec!["vera", "walt"]);
    // after= and limit=.
    let query = format!("pool={}&user=vera", cognate_e2e::url_encode(&app.pool));
    let after = server.outbox_query(&format!("{query}&after={}", vera[0].id)).await;
    assert_eq!(after, vera[1..].to_vec());
    let limited = server.outbox_query(&format!("{query}&limit=1")).await;
    assert_eq!(limited, vera[..1].to_vec());
    let limited = server.outbox_query(&format!("{query}&after={}&limit=1", vera[0].id)).await;
    assert_eq!(limited, vera[1..2].to_vec());
    assert!(server.outbox_query(&format!("{query}&after={}", vera[2].id)).await.is_empty());
    assert!(server.outbox(&app.pool, "nobody").await.is_empty());

    // `cognate outbox` prints the same messages; nothing for an unknown user.
    let (none, stdout) = server.cli_outbox(&app.pool, "nobody").await;
    assert!(none.is_empty(), "cognate outbox for nobody printed {stdout}");
    let (cli, stdout) = server.cli_outbox(&app.pool, "vera").await;
    assert_eq!(cli, vera, "cognate outbox printed {stdout}");
}

// ---------------------------------------------------------------------------
// Edge cases: usernames, re-created users, races, rotated secrets
// ---------------------------------------------------------------------------

async fn usernames_with_special_characters_and_model_limits(server: &Server) {
    let app = email_app(server).await;
    // Any letters, marks, symbols, numbers and punctuation (an email-like
    // username is fine in a pool without username or alias attributes).
    for (i, name) in
        ["dan+test@example.com", "josé", "李雷", "o'brien", "a&b=c?d/e%f", &"x".repeat(128)].into_iter().enumerate()
    {
        let email = format!("special{i}@example.com");
        sign_up(server, &app, name, &[("email", &email)]).await;
        let messages = server.outbox(&app.pool, name).await;
        assert_eq!(messages.len(), 1, "outbox of {name:?}: {messages:?}");
        assert_eq!(messages[0].username, name);
        assert_eq!(messages[0].destination, email);
        let code = messages[0].code.clone().expect("code");
        ok(confirm_req(server, &app, name, &code).send().await);
        assert_eq!(server.get_user(&app.pool, name).await.username(), name);
        assert_eq!(server.user_status(&app.pool, name).await, "CONFIRMED");
    }
    // Outside the model's UsernameType: too long, empty, or with white space.
    let too_long = "y".repeat(129);
    for name in [too_long.as_str(), "has space", "tab\tbed", ""] {
        expect_code(
            sign_up_req(server, &app, name, PASSWORD, &[("email", "bad@example.com")]).send().await,
            "InvalidParameterException",
        );
    }
    // A password with white space does not match the model's PasswordType.
    expect_code(
        sign_up_req(server, &app, "spacey", "Passw0rd! with spaces", &[]).send().await,
        "InvalidParameterException",
    );
    assert_eq!(user_count(server, &app.pool).await, 6);
}

async fn a_recreated_user_does_not_inherit_old_codes(server: &Server) {
    let app = email_app(server).await;
    sign_up(server, &app, "phoenix", &[("email", "old@example.com")]).await;
    let old_code = server.latest_code(&app.pool, "phoenix").await;
    ok(server.idp().admin_delete_user().user_pool_id(&app.pool).username("phoenix").send().await);
    let again = sign_up(server, &app, "phoenix", &[("email", "new@example.com")]).await;
    let new_code = server.latest_code(&app.pool, "phoenix").await;
    if new_code != old_code {
        let info = expect_err(confirm_req(server, &app, "phoenix", &old_code).send().await);
        assert_eq!(info.status, 400, "the deleted user's code: {info:?}");
        assert_eq!(server.user_status(&app.pool, "phoenix").await, "UNCONFIRMED");
    }
    ok(confirm_req(server, &app, "phoenix", &new_code).send().await);
    let user = server.get_user(&app.pool, "phoenix").await;
    assert_eq!(attr_of(user.user_attributes(), "sub"), Some(again.user_sub()));
    assert_eq!(attr_of(user.user_attributes(), "email"), Some("new@example.com"));

    // Likewise a password-reset code does not survive its user.
    ok(forgot_req(server, &app, "phoenix").send().await);
    let reset = server.latest_code(&app.pool, "phoenix").await;
    ok(server.idp().admin_delete_user().user_pool_id(&app.pool).username("phoenix").send().await);
    confirmed_user(server, &app, "phoenix", "newer@example.com").await;
    let info = expect_err(confirm_forgot_req(server, &app, "phoenix", &reset, "N3w-Passw0rd").send().await);
    assert_eq!(info.status, 400, "the deleted user's reset code: {info:?}");
}

async fn concurrent_sign_ups_of_one_username(server: &Server) {
    let app = email_app(server).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let client = server.idp_anonymous();
        let client_id = app.client.clone();
        set.spawn(async move {
            client
                .sign_up()
                .client_id(client_id)
                .username("racer")
                .password(PASSWORD)
                .user_attributes(attr("email", &format!("racer{i}@example.com")))
                .send()
                .await
        });
    }
    let mut won = 0;
    while let Some(res) = set.join_next().await {
        match res.expect("task") {
            Ok(_) => won += 1,
            Err(e) => {
                let info = expect_err::<(), _>(Err(e));
                assert_eq!((info.status, info.code.as_str()), (400, "UsernameExistsException"), "{info:?}");
            }
        }
    }
    assert_eq!(won, 1, "exactly one concurrent SignUp wins");
    assert_eq!(server.usernames(&app.pool).await, vec!["racer"]);
    let messages = server.outbox(&app.pool, "racer").await;
    assert_eq!(messages.len(), 1, "only the winner got a code: {messages:?}");
    let user = server.get_user(&app.pool, "racer").await;
    assert_eq!(attr_of(user.user_attributes(), "email"), Some(messages[0].destination.as_str()));
}

async fn concurrent_wrong_codes_respect_the_attempt_limit(server: &Server) {
    let app = email_app(server).await;
    sign_up(server, &app, "target", &[("email", "target@example.com")]).await;
    let code = server.latest_code(&app.pool, "target").await;
    let bad = wrong_code(&code);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let client = server.idp_anonymous();
        let client_id = app.client.clone();
        let bad = bad.clone();
        set.spawn(async move {
            client.confirm_sign_up().client_id(client_id).username("target").confirmation_code(bad).send().await
        });
    }
    let mut mismatches = 0;
    while let Some(res) = set.join_next().await {
        let info = expect_err(res.expect("task"));
        match info.code.as_str() {
            "CodeMismatchException" => mismatches += 1,
            "LimitExceededException" => {}
            other => panic!("unexpected answer to a wrong code: {other} {info:?}"),
        }
    }
    assert!(mismatches <= 5, "{mismatches} wrong codes were checked concurrently; the limit is 5");
    let info = expect_err(confirm_req(server, &app, "target", &code).send().await);
    assert_eq!(info.status, 400, "the right code after the limit: {info:?}");
    assert_eq!(server.user_status(&app.pool, "target").await, "UNCONFIRMED");
}

async fn secret_hash_with_rotated_client_secrets(server: &Server) {
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let app = server.new_client(&pool, true, false).await;
    let idp = server.idp();
    let original_id = ok(idp.list_user_pool_client_secrets().user_pool_id(&pool).client_id(&app.client).send().await)
        .client_secrets()[0]
        .client_secret_id()
        .expect("ClientSecretId")
        .to_string();
    let added = ok(idp.add_user_pool_client_secret().user_pool_id(&pool).client_id(&app.client).send().await)
        .client_secret_descriptor
        .expect("ClientSecretDescriptor");
    let rotated = App { secret: Some(added.client_secret_value().expect("secret value").to_string()), ..app.clone() };
    // Both secrets are valid while both exist.
    sign_up(server, &app, "old-secret", &[("email", "o@example.com")]).await;
    sign_up(server, &rotated, "new-secret", &[("email", "n@example.com")]).await;
    ok(idp
        .delete_user_pool_client_secret()
        .user_pool_id(&pool)
        .client_id(&app.client)
        .client_secret_id(&original_id)
        .send()
        .await);
    // The deleted one is not.
    expect_code(
        sign_up_req(server, &app, "late", PASSWORD, &[("email", "l@example.com")]).send().await,
        "NotAuthorizedException",
    );
    let code = server.latest_code(&pool, "old-secret").await;
    expect_code(confirm_req(server, &app, "old-secret", &code).send().await, "NotAuthorizedException");
    ok(confirm_req(server, &rotated, "old-secret", &code).send().await);
    assert_eq!(server.usernames(&pool).await, vec!["new-secret", "old-secret"]);
}

async fn codes_of_one_purpose_do_not_serve_another(server: &Server) {
    let app = email_app(server).await;
    // A sign-up code is not a password-reset code...
    sign_up(server, &app, "wren", &[("email", "wren@example.com")]).await;
    let code = server.latest_code(&app.pool, "wren").await;
    let info = expect_err(confirm_forgot_req(server, &app, "wren", &code, "N3w-Passw0rd").send().await);
    assert_eq!(info.status, 400, "a sign-up code reset a password: {info:?}");
    assert_eq!(server.user_status(&app.pool, "wren").await, "UNCONFIRMED");
    // ...and the failed attempt did not use it up.
    ok(confirm_req(server, &app, "wren", &code).send().await);

    // A password-reset code does not confirm a sign-up.
    confirmed_user(server, &app, "xavi", "xavi@example.com").await;
    sign_up(server, &app, "yara", &[("email", "yara@example.com")]).await;
    ok(forgot_req(server, &app, "xavi").send().await);
    let reset = server.latest_code(&app.pool, "xavi").await;
    let info = expect_err(confirm_req(server, &app, "yara", &reset).send().await);
    assert_eq!(info.status, 400, "another user's reset code confirmed yara: {info:?}");
    assert_eq!(server.user_status(&app.pool, "yara").await, "UNCONFIRMED");
    ok(confirm_forgot_req(server, &app, "xavi", &reset, "N3w-Passw0rd").send().await);
}
