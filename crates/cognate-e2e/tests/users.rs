//! The administrators' user operations: AdminCreateUser, AdminGetUser,
//! AdminDeleteUser, AdminDisableUser, AdminEnableUser, AdminConfirmSignUp,
//! AdminUpdateUserAttributes, AdminDeleteUserAttributes, AdminSetUserPassword,
//! AdminResetUserPassword and ListUsers (filters, AttributesToGet,
//! pagination), with the messages they send read from the development
//! outbox, and that a failed call changes nothing. Every test runs against
//! SQLite and PostgreSQL; users and codes also survive a restart.

use std::collections::HashSet;

use cognate_e2e::idp::types::{
    AdminCreateUserConfigType, AttributeDataType, DeliveryMediumType, MessageActionType, MessageTemplateType,
    SchemaAttributeType, SmsConfigurationType, StringAttributeConstraintsType, UserAttributeUpdateSettingsType,
    UserType, VerifiedAttributeType,
};
use cognate_e2e::{
    attr, attr_names, attr_of, both_stores, epoch, expect_code, expect_err, expect_one_of, is_uuid, now_epoch, ok, App,
    Server, PASSWORD,
};

both_stores!(
    admin_create_user_sends_an_invitation,
    admin_create_user_generates_a_temporary_password,
    admin_create_user_invites_by_sms_by_default,
    admin_create_user_suppress_and_resend,
    admin_create_user_errors_change_nothing,
    admin_operations_on_unknown_users_and_pools,
    admin_delete_user,
    admin_disable_and_enable_user,
    admin_confirm_sign_up,
    admin_update_user_attributes,
    admin_update_user_attributes_errors_change_nothing,
    admin_update_email_sends_a_verification_code,
    admin_update_email_with_verification_before_update,
    admin_delete_user_attributes,
    admin_set_user_password,
    admin_reset_user_password,
    list_users_filters,
    list_users_filter_errors,
    list_users_attributes_to_get,
    list_users_limit_bounds,
    list_users_paginates_130_users,
    list_users_filter_quoting_and_case,
    list_users_pages_survive_changes_between_pages,
    admin_create_user_in_an_email_username_pool,
    email_alias_conflicts_in_admin_operations,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const SCHEMA_PREFIX: &str = "Attributes did not conform to the schema";

fn sms_configuration() -> SmsConfigurationType {
    SmsConfigurationType::builder()
        .sns_caller_arn("arn:aws:iam::000000000000:role/cognito-sms")
        .external_id("e2e")
        .build()
}

fn custom_tier() -> SchemaAttributeType {
    SchemaAttributeType::builder()
        .name("tier")
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .string_attribute_constraints(StringAttributeConstraintsType::builder().min_length("1").max_length("5").build())
        .build()
}

/// A pool auto-verifying email with a custom attribute `custom:tier`
/// (1..=5 characters), and a client without a secret.
async fn app(server: &Server) -> App {
    let pool =
        server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email).schema(custom_tier())).await;
    server.new_client(&pool, false, false).await
}

/// AdminCreateUser with MessageAction SUPPRESS and a temporary password.
async fn create_user(server: &Server, pool: &str, username: &str, attrs: &[(&str, &str)]) -> UserType {
    let mut req = server
        .idp()
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .temporary_password("Temp-Passw0rd")
        .message_action(MessageActionType::Suppress);
    for (name, value) in attrs {
        req = req.user_attributes(attr(name, value));
    }
    ok(req.send().await).user.expect("AdminCreateUser returned no User")
}

/// A CONFIRMED user with a verified email (created by an administrator).
async fn confirmed_user(server: &Server, pool: &str, username: &str, email: &str) {
    create_user(server, pool, username, &[("email", email), ("email_verified", "true")]).await;
    set_password(server, pool, username, true).await;
}

async fn set_password(server: &Server, pool: &str, username: &str, permanent: bool) {
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(username)
        .password(PASSWORD)
        .permanent(permanent)
        .send()
        .await);
}

/// Sign a user up through the app client (unsigned), leaving it UNCONFIRMED.
async fn sign_up(server: &Server, app: &App, username: &str, attrs: &[(&str, &str)]) -> String {
    let mut req = server.idp_anonymous().sign_up().client_id(&app.client).username(username).password(PASSWORD);
    for (name, value) in attrs {
        req = req.user_attributes(attr(name, value));
    }
    ok(req.send().await).user_sub().to_string()
}

/// Everything AdminGetUser says about a user, in a comparable form.
#[derive(Debug, PartialEq)]
struct UserView {
    username: String,
    status: String,
    enabled: bool,
    attributes: Vec<(String, String)>,
    created: Option<f64>,
    modified: Option<f64>,
}

async fn view(server: &Server, pool: &str, username: &str) -> UserView {
    let u = server.get_user(pool, username).await;
    let mut attributes: Vec<(String, String)> =
        u.user_attributes().iter().map(|a| (a.name().to_string(), a.value().unwrap_or_default().to_string())).collect();
    attributes.sort();
    UserView {
        username: u.username().to_string(),
        status: u.user_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        enabled: u.enabled(),
        attributes,
        created: u.user_create_date().map(epoch),
        modified: u.user_last_modified_date().map(epoch),
    }
}

fn attr_value<'a>(v: &'a UserView, name: &str) -> Option<&'a str> {
    v.attributes.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
}

async fn list_filtered(server: &Server, pool: &str, filter: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(server
            .idp()
            .list_users()
            .user_pool_id(pool)
            .filter(filter)
            .set_pagination_token(token.clone())
            .send()
            .await);
        names.extend(out.users().iter().filter_map(|u| u.username().map(str::to_string)));
        match out.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return names,
        }
    }
}

fn confirm_forgot_req(
    server: &Server,
    app: &App,
    username: &str,
    code: &str,
) -> cognate_e2e::idp::operation::confirm_forgot_password::builders::ConfirmForgotPasswordFluentBuilder {
    server
        .idp_anonymous()
        .confirm_forgot_password()
        .client_id(&app.client)
        .username(username)
        .confirmation_code(code)
        .password("N3w-Passw0rd")
}

fn is_policy_password(p: &str) -> bool {
    p.chars().count() >= 8
        && p.chars().any(|c| c.is_ascii_lowercase())
        && p.chars().any(|c| c.is_ascii_uppercase())
        && p.chars().any(|c| c.is_ascii_digit())
        && p.chars().any(|c| !c.is_ascii_alphanumeric())
}

// ---------------------------------------------------------------------------
// AdminCreateUser
// ---------------------------------------------------------------------------

async fn admin_create_user_sends_an_invitation(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.admin_create_user_config(
                AdminCreateUserConfigType::builder()
                    .invite_message_template(
                        MessageTemplateType::builder()
                            .email_subject("Welcome aboard")
                            .email_message("Hello {username}, your temporary password is {####}")
                            .sms_message("Hi {username}: {####}")
                            .build(),
                    )
                    .build(),
            )
        })
        .await;
    let before = now_epoch();
    let user = ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("zoe")
        .temporary_password("Temp-Passw0rd")
        .user_attributes(attr("email", "zoe@example.com"))
        .user_attributes(attr("email_verified", "true"))
        .user_attributes(attr("name", "Zoe"))
        .desired_delivery_mediums(DeliveryMediumType::Email)
        .send()
        .await)
    .user
    .expect("User");
    assert_eq!(user.username(), Some("zoe"));
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("FORCE_CHANGE_PASSWORD"));
    assert!(user.enabled());
    let sub = attr_of(user.attributes(), "sub").expect("sub").to_string();
    assert!(is_uuid(&sub), "sub {sub:?}");
    assert_eq!(attr_of(user.attributes(), "email"), Some("zoe@example.com"));
    assert_eq!(attr_of(user.attributes(), "email_verified"), Some("true"));
    assert_eq!(attr_of(user.attributes(), "name"), Some("Zoe"));
    let created = user.user_create_date().map(epoch).expect("UserCreateDate");
    assert!(created >= before - 5.0 && created <= now_epoch() + 5.0, "UserCreateDate {created}");
    assert!(user.user_last_modified_date().map(epoch).expect("UserLastModifiedDate") >= created - 0.001);

    // AdminGetUser agrees with the response.
    let got = view(server, &pool, "zoe").await;
    assert_eq!(got.status, "FORCE_CHANGE_PASSWORD");
    assert!(got.enabled);
    let mut from_create: Vec<(String, String)> =
        user.attributes().iter().map(|a| (a.name().to_string(), a.value().unwrap_or_default().to_string())).collect();
    from_create.sort();
    assert_eq!(got.attributes, from_create);
    assert_eq!(got.created, Some(created));

    // The invitation, rendered from the pool's template.
    let messages = server.outbox(&pool, "zoe").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m.channel, "EMAIL");
    assert_eq!(m.destination, "zoe@example.com");
    assert_eq!(m.subject.as_deref(), Some("Welcome aboard"));
    assert_eq!(m.body, "Hello zoe, your temporary password is Temp-Passw0rd");
    assert_eq!(m.code.as_deref(), Some("Temp-Passw0rd"));
    assert_eq!(server.usernames(&pool).await, vec!["zoe"]);
}

async fn admin_create_user_generates_a_temporary_password(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("yuri")
        .user_attributes(attr("email", "yuri@example.com"))
        .desired_delivery_mediums(DeliveryMediumType::Email)
        .send()
        .await);
    let messages = server.outbox(&pool, "yuri").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m.channel, "EMAIL");
    assert_eq!(m.destination, "yuri@example.com");
    let temp = m.code.clone().expect("the temporary password is the message's code");
    assert!(is_policy_password(&temp), "generated password {temp:?} breaks the default policy");
    assert!(m.body.contains(&temp), "body {:?}", m.body);
    assert!(m.body.contains("yuri"), "body {:?} names the user", m.body);
    assert!(m.subject.as_deref().is_some_and(|s| !s.is_empty()));
    assert_eq!(server.user_status(&pool, "yuri").await, "FORCE_CHANGE_PASSWORD");

    // Two users get different passwords.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("xena")
        .user_attributes(attr("email", "xena@example.com"))
        .desired_delivery_mediums(DeliveryMediumType::Email)
        .send()
        .await);
    assert_ne!(server.latest_code(&pool, "xena").await, temp);
}

async fn admin_create_user_invites_by_sms_by_default(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.sms_configuration(sms_configuration()).admin_create_user_config(
                AdminCreateUserConfigType::builder()
                    .invite_message_template(
                        MessageTemplateType::builder().sms_message("Hi {username}: {####}").build(),
                    )
                    .build(),
            )
        })
        .await;
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("walt")
        .temporary_password("Temp-Passw0rd")
        .user_attributes(attr("phone_number", "+15555550123"))
        .user_attributes(attr("email", "walt@example.com"))
        .send()
        .await);
    let messages = server.outbox(&pool, "walt").await;
    assert_eq!(messages.len(), 1, "only SMS by default: {messages:?}");
    assert_eq!(messages[0].channel, "SMS");
    assert_eq!(messages[0].destination, "+15555550123");
    assert_eq!(messages[0].body, "Hi walt: Temp-Passw0rd");
    assert_eq!(messages[0].subject, None);
    assert_eq!(messages[0].code.as_deref(), Some("Temp-Passw0rd"));

    // Both media when asked.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("vic")
        .temporary_password("Temp-Passw0rd")
        .user_attributes(attr("phone_number", "+15555550124"))
        .user_attributes(attr("email", "vic@example.com"))
        .desired_delivery_mediums(DeliveryMediumType::Email)
        .desired_delivery_mediums(DeliveryMediumType::Sms)
        .send()
        .await);
    let messages = server.outbox(&pool, "vic").await;
    let mut sent: Vec<(String, String)> = messages.iter().map(|m| (m.channel.clone(), m.destination.clone())).collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![("EMAIL".to_string(), "vic@example.com".to_string()), ("SMS".to_string(), "+15555550124".to_string())]
    );
}

async fn admin_create_user_suppress_and_resend(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let user = create_user(server, &pool, "uma", &[("email", "uma@example.com")]).await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("FORCE_CHANGE_PASSWORD"));
    assert!(server.outbox(&pool, "uma").await.is_empty(), "SUPPRESS sends nothing");
    let sub = attr_of(user.attributes(), "sub").unwrap().to_string();

    // RESEND sends the invitation to the existing user.
    for n in 1..=2 {
        ok(server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("uma")
            .temporary_password("Resent-Passw0rd")
            .message_action(MessageActionType::Resend)
            .desired_delivery_mediums(DeliveryMediumType::Email)
            .send()
            .await);
        let messages = server.outbox(&pool, "uma").await;
        assert_eq!(messages.len(), n, "{messages:?}");
        assert_eq!(messages[n - 1].destination, "uma@example.com");
        assert_eq!(messages[n - 1].code.as_deref(), Some("Resent-Passw0rd"));
    }
    let got = server.get_user(&pool, "uma").await;
    assert_eq!(got.user_status().map(|s| s.as_str()), Some("FORCE_CHANGE_PASSWORD"));
    assert_eq!(attr_of(got.user_attributes(), "sub"), Some(sub.as_str()), "RESEND keeps the user");
    assert_eq!(server.usernames(&pool).await, vec!["uma"]);

    // RESEND needs an existing user...
    expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("nobody")
            .message_action(MessageActionType::Resend)
            .send()
            .await,
        "UserNotFoundException",
    );
    assert_eq!(server.usernames(&pool).await, vec!["uma"]);
    // ...that still has to change its password.
    set_password(server, &pool, "uma", true).await;
    expect_one_of(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("uma")
            .message_action(MessageActionType::Resend)
            .desired_delivery_mediums(DeliveryMediumType::Email)
            .send()
            .await,
        &["UnsupportedUserStateException", "InvalidParameterException"],
    );
    assert_eq!(server.outbox(&pool, "uma").await.len(), 2, "nothing more was sent");
    assert_eq!(server.user_status(&pool, "uma").await, "CONFIRMED");
}

async fn admin_create_user_errors_change_nothing(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    create_user(server, &pool, "tess", &[("email", "tess@example.com"), ("name", "Tess")]).await;
    let before = view(server, &pool, "tess").await;

    // The same username again.
    let msg = expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("tess")
            .user_attributes(attr("email", "other@example.com"))
            .send()
            .await,
        "UsernameExistsException",
    );
    assert_eq!(msg, "User account already exists");
    assert_eq!(view(server, &pool, "tess").await, before);
    assert!(server.outbox(&pool, "tess").await.is_empty());

    // A temporary password the policy refuses.
    let msg = expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("bad-password")
            .temporary_password("weak")
            .send()
            .await,
        "InvalidPasswordException",
    );
    assert_eq!(msg, "Password did not conform with policy: Password not long enough");
    let msg = expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("bad-password")
            .temporary_password("nouppercase1!")
            .send()
            .await,
        "InvalidPasswordException",
    );
    assert_eq!(msg, "Password did not conform with policy: Password must have uppercase characters");

    // Attributes the schema refuses.
    for (name, value) in [("shoe_size", "42"), ("custom:tier", "platinum"), ("custom:missing", "x")] {
        let msg = expect_code(
            server
                .idp()
                .admin_create_user()
                .user_pool_id(&pool)
                .username("bad-attrs")
                .user_attributes(attr(name, value))
                .message_action(MessageActionType::Suppress)
                .send()
                .await,
            "InvalidParameterException",
        );
        assert!(msg.starts_with(SCHEMA_PREFIX), "{name}={value}: {msg:?}");
    }
    let msg = expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("bad-email")
            .user_attributes(attr("email", "@nowhere"))
            .message_action(MessageActionType::Suppress)
            .send()
            .await,
        "InvalidParameterException",
    );
    assert!(msg.contains("Invalid email address format."), "{msg:?}");

    // An unknown pool.
    expect_code(
        server.idp().admin_create_user().user_pool_id("us-east-1_doesNotExist").username("tess").send().await,
        "ResourceNotFoundException",
    );

    assert_eq!(server.usernames(&pool).await, vec!["tess"]);
    for name in ["bad-password", "bad-attrs", "bad-email"] {
        assert!(server.outbox(&pool, name).await.is_empty(), "{name} got a message");
    }
}

// ---------------------------------------------------------------------------
// AdminGetUser, AdminDeleteUser, AdminDisableUser, AdminEnableUser
// ---------------------------------------------------------------------------

async fn admin_operations_on_unknown_users_and_pools(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let idp = server.idp();
    const MSG: &str = "User does not exist.";
    let n = "nobody";
    let msgs = [
        expect_code(idp.admin_get_user().user_pool_id(&pool).username(n).send().await, "UserNotFoundException"),
        expect_code(idp.admin_delete_user().user_pool_id(&pool).username(n).send().await, "UserNotFoundException"),
        expect_code(idp.admin_disable_user().user_pool_id(&pool).username(n).send().await, "UserNotFoundException"),
        expect_code(idp.admin_enable_user().user_pool_id(&pool).username(n).send().await, "UserNotFoundException"),
        expect_code(idp.admin_confirm_sign_up().user_pool_id(&pool).username(n).send().await, "UserNotFoundException"),
        expect_code(
            idp.admin_update_user_attributes()
                .user_pool_id(&pool)
                .username(n)
                .user_attributes(attr("name", "N"))
                .send()
                .await,
            "UserNotFoundException",
        ),
        expect_code(
            idp.admin_delete_user_attributes()
                .user_pool_id(&pool)
                .username(n)
                .user_attribute_names("name")
                .send()
                .await,
            "UserNotFoundException",
        ),
        expect_code(
            idp.admin_set_user_password()
                .user_pool_id(&pool)
                .username(n)
                .password(PASSWORD)
                .permanent(true)
                .send()
                .await,
            "UserNotFoundException",
        ),
        expect_code(
            idp.admin_reset_user_password().user_pool_id(&pool).username(n).send().await,
            "UserNotFoundException",
        ),
    ];
    for (i, msg) in msgs.iter().enumerate() {
        assert_eq!(msg, MSG, "operation #{i}");
    }
    assert!(server.list_all_users(&pool).await.is_empty(), "nothing was created");

    // An unknown pool.
    let ghost = "us-east-1_doesNotExist";
    expect_code(idp.admin_get_user().user_pool_id(ghost).username(n).send().await, "ResourceNotFoundException");
    expect_code(idp.list_users().user_pool_id(ghost).send().await, "ResourceNotFoundException");
    expect_code(idp.admin_delete_user().user_pool_id(ghost).username(n).send().await, "ResourceNotFoundException");
    // A user of another pool is not found.
    let other = server.new_pool(|p| p).await;
    create_user(server, &other, "elsewhere", &[]).await;
    expect_code(idp.admin_get_user().user_pool_id(&pool).username("elsewhere").send().await, "UserNotFoundException");
}

async fn admin_delete_user(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let first = create_user(server, &pool, "sid", &[("email", "sid@example.com")]).await;
    create_user(server, &pool, "sue", &[]).await;
    ok(server.idp().admin_delete_user().user_pool_id(&pool).username("sid").send().await);
    let msg = expect_code(
        server.idp().admin_get_user().user_pool_id(&pool).username("sid").send().await,
        "UserNotFoundException",
    );
    assert_eq!(msg, "User does not exist.");
    expect_code(
        server.idp().admin_delete_user().user_pool_id(&pool).username("sid").send().await,
        "UserNotFoundException",
    );
    assert_eq!(server.usernames(&pool).await, vec!["sue"]);

    // The name can be used again, by a new user.
    let second = create_user(server, &pool, "sid", &[]).await;
    assert_ne!(attr_of(second.attributes(), "sub"), attr_of(first.attributes(), "sub"));
    assert_eq!(
        attr_of(server.get_user(&pool, "sid").await.user_attributes(), "email"),
        None,
        "nothing of the deleted user is left"
    );

    // Deleting a pool deletes its users.
    ok(server.idp().delete_user_pool().user_pool_id(&pool).send().await);
    expect_code(server.idp().list_users().user_pool_id(&pool).send().await, "ResourceNotFoundException");
}

async fn admin_disable_and_enable_user(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_user(server, &pool, "rex", &[]).await;
    create_user(server, &pool, "ray", &[]).await;
    let before = view(server, &pool, "rex").await;
    assert!(before.enabled);

    ok(server.idp().admin_disable_user().user_pool_id(&pool).username("rex").send().await);
    let disabled = view(server, &pool, "rex").await;
    assert!(!disabled.enabled);
    assert_eq!(disabled.status, before.status, "disabling keeps the status");
    assert_eq!(disabled.attributes, before.attributes);
    let listed = server.list_all_users(&pool).await;
    let rex = listed.iter().find(|u| u.username() == Some("rex")).expect("rex listed");
    assert!(!rex.enabled(), "ListUsers shows Enabled false");
    assert_eq!(list_filtered(server, &pool, "status = \"Disabled\"").await, vec!["rex"]);
    assert_eq!(list_filtered(server, &pool, "status = \"Enabled\"").await, vec!["ray"]);

    // Disabling twice is fine.
    ok(server.idp().admin_disable_user().user_pool_id(&pool).username("rex").send().await);
    ok(server.idp().admin_enable_user().user_pool_id(&pool).username("rex").send().await);
    assert!(view(server, &pool, "rex").await.enabled);
    assert!(list_filtered(server, &pool, "status = \"Disabled\"").await.is_empty());
    ok(server.idp().admin_enable_user().user_pool_id(&pool).username("rex").send().await);
    assert!(view(server, &pool, "rex").await.enabled);
}

// ---------------------------------------------------------------------------
// AdminConfirmSignUp
// ---------------------------------------------------------------------------

async fn admin_confirm_sign_up(server: &Server) {
    let app = app(server).await;
    sign_up(server, &app, "quin", &[("email", "quin@example.com")]).await;
    assert_eq!(server.user_status(&app.pool, "quin").await, "UNCONFIRMED");
    let sent = server.outbox(&app.pool, "quin").await.len();
    ok(server.idp().admin_confirm_sign_up().user_pool_id(&app.pool).username("quin").send().await);
    assert_eq!(server.user_status(&app.pool, "quin").await, "CONFIRMED");
    assert_eq!(server.outbox(&app.pool, "quin").await.len(), sent, "nothing is sent");

    let msg = expect_code(
        server.idp().admin_confirm_sign_up().user_pool_id(&app.pool).username("quin").send().await,
        "NotAuthorizedException",
    );
    assert_eq!(msg, "User cannot be confirmed. Current status is CONFIRMED");

    // A user created by an administrator is not confirmed this way.
    create_user(server, &app.pool, "pia", &[]).await;
    let msg = expect_code(
        server.idp().admin_confirm_sign_up().user_pool_id(&app.pool).username("pia").send().await,
        "NotAuthorizedException",
    );
    assert_eq!(msg, "User cannot be confirmed. Current status is FORCE_CHANGE_PASSWORD");
    assert_eq!(server.user_status(&app.pool, "pia").await, "FORCE_CHANGE_PASSWORD");
}

// ---------------------------------------------------------------------------
// AdminUpdateUserAttributes and AdminDeleteUserAttributes
// ---------------------------------------------------------------------------

async fn admin_update_user_attributes(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    create_user(server, &pool, "otto", &[("email", "otto@example.com"), ("name", "Otto")]).await;
    let before = view(server, &pool, "otto").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("otto")
        .user_attributes(attr("name", "Otto O."))
        .user_attributes(attr("given_name", "Otto"))
        .user_attributes(attr("custom:tier", "gold"))
        .send()
        .await);
    let after = view(server, &pool, "otto").await;
    assert_eq!(attr_value(&after, "name"), Some("Otto O."));
    assert_eq!(attr_value(&after, "given_name"), Some("Otto"));
    assert_eq!(attr_value(&after, "custom:tier"), Some("gold"));
    assert_eq!(attr_value(&after, "email"), Some("otto@example.com"));
    assert_eq!(attr_value(&after, "sub"), attr_value(&before, "sub"));
    assert_eq!(after.status, before.status);
    assert_eq!(after.created, before.created);
    assert!(
        after.modified >= before.modified,
        "UserLastModifiedDate went back: {:?} -> {:?}",
        before.modified,
        after.modified
    );

    // An email and email_verified=true together: no code is needed or sent.
    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("otto")
        .user_attributes(attr("email", "otto@new.example.com"))
        .user_attributes(attr("email_verified", "true"))
        .send()
        .await);
    let after = view(server, &pool, "otto").await;
    assert_eq!(attr_value(&after, "email"), Some("otto@new.example.com"));
    assert_eq!(attr_value(&after, "email_verified"), Some("true"));
    assert!(server.outbox(&pool, "otto").await.is_empty());
}

async fn admin_update_user_attributes_errors_change_nothing(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    create_user(server, &pool, "nell", &[("email", "nell@example.com"), ("name", "Nell"), ("custom:tier", "gold")])
        .await;
    let before = view(server, &pool, "nell").await;
    let update = |attrs: Vec<(&'static str, &'static str)>| {
        let mut req = server.idp().admin_update_user_attributes().user_pool_id(&pool).username("nell");
        for (n, v) in attrs {
            req = req.user_attributes(attr(n, v));
        }
        req
    };

    // One good and one unknown attribute: neither is applied.
    let msg =
        expect_code(update(vec![("name", "Changed"), ("shoe_size", "42")]).send().await, "InvalidParameterException");
    assert!(msg.starts_with(SCHEMA_PREFIX), "{msg:?}");
    let msg = expect_code(
        update(vec![("name", "Changed"), ("custom:tier", "platinum")]).send().await,
        "InvalidParameterException",
    );
    assert!(msg.starts_with(SCHEMA_PREFIX), "{msg:?}");
    let msg = expect_code(
        update(vec![("name", "Changed"), ("email", "not an email")]).send().await,
        "InvalidParameterException",
    );
    assert!(msg.contains("Invalid email address format."), "{msg:?}");
    // sub is immutable.
    expect_code(
        update(vec![("sub", "00000000-0000-4000-8000-000000000000")]).send().await,
        "InvalidParameterException",
    );
    assert_eq!(view(server, &pool, "nell").await, before, "failed updates changed the user");
    assert!(server.outbox(&pool, "nell").await.is_empty());
}

async fn admin_update_email_sends_a_verification_code(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    confirmed_user(server, &pool, "mona", "mona@example.com").await;
    assert!(server.outbox(&pool, "mona").await.is_empty());

    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("mona")
        .user_attributes(attr("email", "mona@new.example.com"))
        .send()
        .await);
    let after = view(server, &pool, "mona").await;
    assert_eq!(attr_value(&after, "email"), Some("mona@new.example.com"));
    assert_eq!(attr_value(&after, "email_verified"), Some("false"));
    assert_eq!(after.status, "CONFIRMED");
    let messages = server.outbox(&pool, "mona").await;
    assert_eq!(messages.len(), 1, "a verification code: {messages:?}");
    assert_eq!(messages[0].channel, "EMAIL");
    assert_eq!(messages[0].destination, "mona@new.example.com");
    let code = messages[0].code.clone().expect("code");
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{code:?}");
    assert!(messages[0].body.contains(&code));

    // A pool that does not auto-verify email sends nothing.
    let quiet = server.new_pool(|p| p).await;
    confirmed_user(server, &quiet, "mona", "mona@example.com").await;
    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&quiet)
        .username("mona")
        .user_attributes(attr("email", "mona@new.example.com"))
        .send()
        .await);
    assert_eq!(attr_of(server.get_user(&quiet, "mona").await.user_attributes(), "email"), Some("mona@new.example.com"));
    assert!(server.outbox(&quiet, "mona").await.is_empty());
}

async fn admin_update_email_with_verification_before_update(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email).user_attribute_update_settings(
                UserAttributeUpdateSettingsType::builder()
                    .attributes_require_verification_before_update(VerifiedAttributeType::Email)
                    .build(),
            )
        })
        .await;
    let app = server.new_client(&pool, false, false).await;
    confirmed_user(server, &pool, "lena", "lena@example.com").await;
    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("lena")
        .user_attributes(attr("email", "lena@new.example.com"))
        .send()
        .await);
    // The old, verified email stays until the new one is verified.
    let after = view(server, &pool, "lena").await;
    assert_eq!(attr_value(&after, "email"), Some("lena@example.com"));
    assert_eq!(attr_value(&after, "email_verified"), Some("true"));
    let messages = server.outbox(&pool, "lena").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].destination, "lena@new.example.com", "the code goes to the new address");

    // An unverified email is replaced at once.
    sign_up(server, &app, "kurt", &[("email", "kurt@example.com")]).await;
    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("kurt")
        .user_attributes(attr("email", "kurt@new.example.com"))
        .send()
        .await);
    let kurt = view(server, &pool, "kurt").await;
    assert_eq!(attr_value(&kurt, "email"), Some("kurt@new.example.com"));
    assert_ne!(attr_value(&kurt, "email_verified"), Some("true"));
}

async fn admin_delete_user_attributes(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.schema(custom_tier()).schema(
                SchemaAttributeType::builder()
                    .name("name")
                    .attribute_data_type(AttributeDataType::String)
                    .required(true)
                    .mutable(true)
                    .build(),
            )
        })
        .await;
    create_user(server, &pool, "jade", &[("name", "Jade"), ("given_name", "J"), ("custom:tier", "gold")]).await;
    let before = view(server, &pool, "jade").await;

    ok(server
        .idp()
        .admin_delete_user_attributes()
        .user_pool_id(&pool)
        .username("jade")
        .user_attribute_names("given_name")
        .user_attribute_names("custom:tier")
        .send()
        .await);
    let after = view(server, &pool, "jade").await;
    assert_eq!(attr_value(&after, "given_name"), None);
    assert_eq!(attr_value(&after, "custom:tier"), None);
    assert_eq!(attr_value(&after, "name"), Some("Jade"));
    assert_eq!(attr_value(&after, "sub"), attr_value(&before, "sub"));

    // A required attribute cannot be deleted; nothing else is deleted either.
    ok(server
        .idp()
        .admin_update_user_attributes()
        .user_pool_id(&pool)
        .username("jade")
        .user_attributes(attr("family_name", "Doe"))
        .send()
        .await);
    let before = view(server, &pool, "jade").await;
    expect_code(
        server
            .idp()
            .admin_delete_user_attributes()
            .user_pool_id(&pool)
            .username("jade")
            .user_attribute_names("family_name")
            .user_attribute_names("name")
            .send()
            .await,
        "InvalidParameterException",
    );
    assert_eq!(view(server, &pool, "jade").await, before);
    // Nor can sub.
    expect_code(
        server
            .idp()
            .admin_delete_user_attributes()
            .user_pool_id(&pool)
            .username("jade")
            .user_attribute_names("sub")
            .send()
            .await,
        "InvalidParameterException",
    );
    assert_eq!(view(server, &pool, "jade").await, before);
}

// ---------------------------------------------------------------------------
// AdminSetUserPassword and AdminResetUserPassword
// ---------------------------------------------------------------------------

async fn admin_set_user_password(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_user(server, &pool, "ian", &[]).await;
    assert_eq!(server.user_status(&pool, "ian").await, "FORCE_CHANGE_PASSWORD");

    // A password the policy refuses changes nothing.
    for (password, reason) in [
        ("Sh0rt!", "Password not long enough"),
        ("NOLOWER1!", "Password must have lowercase characters"),
        ("noupper1!", "Password must have uppercase characters"),
        ("NoNumber!", "Password must have numeric characters"),
        ("NoSymbol1", "Password must have symbol characters"),
    ] {
        let msg = expect_code(
            server
                .idp()
                .admin_set_user_password()
                .user_pool_id(&pool)
                .username("ian")
                .password(password)
                .permanent(true)
                .send()
                .await,
            "InvalidPasswordException",
        );
        assert_eq!(msg, format!("Password did not conform with policy: {reason}"));
    }
    assert_eq!(server.user_status(&pool, "ian").await, "FORCE_CHANGE_PASSWORD");

    set_password(server, &pool, "ian", true).await;
    assert_eq!(server.user_status(&pool, "ian").await, "CONFIRMED");
    set_password(server, &pool, "ian", false).await;
    assert_eq!(server.user_status(&pool, "ian").await, "FORCE_CHANGE_PASSWORD");
    set_password(server, &pool, "ian", true).await;
    assert_eq!(server.user_status(&pool, "ian").await, "CONFIRMED");
    assert!(server.outbox(&pool, "ian").await.is_empty(), "nothing is sent");
}

async fn admin_reset_user_password(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    confirmed_user(server, &pool, "hugo", "hugo@example.com").await;

    ok(server.idp().admin_reset_user_password().user_pool_id(&pool).username("hugo").send().await);
    assert_eq!(server.user_status(&pool, "hugo").await, "RESET_REQUIRED");
    let messages = server.outbox(&pool, "hugo").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].channel, "EMAIL");
    assert_eq!(messages[0].destination, "hugo@example.com");
    let code = messages[0].code.clone().expect("code");
    assert!(messages[0].body.contains(&code));

    // The reset code completes through ConfirmForgotPassword.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    expect_code(confirm_forgot_req(server, &app, "hugo", wrong).send().await, "CodeMismatchException");
    assert_eq!(server.user_status(&pool, "hugo").await, "RESET_REQUIRED");
    ok(confirm_forgot_req(server, &app, "hugo", &code).send().await);
    assert_eq!(server.user_status(&pool, "hugo").await, "CONFIRMED");

    // Without a verified email or phone there is nowhere to send the code.
    create_user(server, &pool, "gus", &[("email", "gus@example.com")]).await;
    set_password(server, &pool, "gus", true).await;
    let before = view(server, &pool, "gus").await;
    expect_code(
        server.idp().admin_reset_user_password().user_pool_id(&pool).username("gus").send().await,
        "InvalidParameterException",
    );
    assert_eq!(view(server, &pool, "gus").await, before);
    assert!(server.outbox(&pool, "gus").await.is_empty());

    // A RESET_REQUIRED user can also be given a password by an administrator.
    ok(server.idp().admin_reset_user_password().user_pool_id(&pool).username("hugo").send().await);
    assert_eq!(server.user_status(&pool, "hugo").await, "RESET_REQUIRED");
    set_password(server, &pool, "hugo", true).await;
    assert_eq!(server.user_status(&pool, "hugo").await, "CONFIRMED");
}

// ---------------------------------------------------------------------------
// ListUsers
// ---------------------------------------------------------------------------

async fn list_users_filters(server: &Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    let amy = create_user(
        server,
        &pool,
        "amy",
        &[
            ("email", "amy@example.com"),
            ("name", "Amy Adams"),
            ("given_name", "Amy"),
            ("family_name", "Adams"),
            ("phone_number", "+15550000001"),
            ("preferred_username", "amy_a"),
        ],
    )
    .await;
    set_password(server, &pool, "amy", true).await;
    create_user(server, &pool, "ben", &[("email", "ben@example.com"), ("given_name", "Ben"), ("family_name", "Adams")])
        .await;
    ok(server.idp().admin_disable_user().user_pool_id(&pool).username("ben").send().await);
    sign_up(server, &app, "bea", &[("email", "bea@sample.org"), ("name", "Bea"), ("family_name", "Brown")]).await;
    let amy_sub = attr_of(amy.attributes(), "sub").unwrap().to_string();

    let cases: Vec<(String, Vec<&str>)> = vec![
        ("username = \"amy\"".into(), vec!["amy"]),
        ("username ^= \"be\"".into(), vec!["bea", "ben"]),
        ("username = \"am\"".into(), vec![]),
        ("email = \"ben@example.com\"".into(), vec!["ben"]),
        ("email ^= \"b\"".into(), vec!["bea", "ben"]),
        ("email ^= \"amy@\"".into(), vec!["amy"]),
        ("email = \"amy\"".into(), vec![]),
        ("email = \"nobody@example.com\"".into(), vec![]),
        ("family_name = \"Adams\"".into(), vec!["amy", "ben"]),
        ("given_name ^= \"A\"".into(), vec!["amy"]),
        ("name = \"Bea\"".into(), vec!["bea"]),
        ("name ^= \"Amy\"".into(), vec!["amy"]),
        ("phone_number ^= \"+1555\"".into(), vec!["amy"]),
        ("phone_number = \"+15550000001\"".into(), vec!["amy"]),
        ("preferred_username = \"amy_a\"".into(), vec!["amy"]),
        ("cognito:user_status = \"UNCONFIRMED\"".into(), vec!["bea"]),
        ("cognito:user_status = \"FORCE_CHANGE_PASSWORD\"".into(), vec!["ben"]),
        ("cognito:user_status = \"CONFIRMED\"".into(), vec!["amy"]),
        ("status = \"Disabled\"".into(), vec!["ben"]),
        ("status = \"Enabled\"".into(), vec!["amy", "bea"]),
        (format!("sub = \"{amy_sub}\""), vec!["amy"]),
        (format!("sub ^= \"{}\"", &amy_sub[..8]), vec!["amy"]),
    ];
    for (filter, expected) in cases {
        let got = list_filtered(server, &pool, &filter).await;
        assert_eq!(got, expected, "ListUsers Filter {filter:?}");
    }
    // An empty filter lists everyone.
    assert_eq!(sorted_vec(list_filtered(server, &pool, "").await), vec!["amy", "bea", "ben"]);

    // ListUsers shows each user's attributes, status and flags.
    let users = server.list_all_users(&pool).await;
    let ben = users.iter().find(|u| u.username() == Some("ben")).expect("ben");
    assert!(!ben.enabled());
    assert_eq!(ben.user_status().map(|s| s.as_str()), Some("FORCE_CHANGE_PASSWORD"));
    assert_eq!(attr_of(ben.attributes(), "email"), Some("ben@example.com"));
    assert!(is_uuid(attr_of(ben.attributes(), "sub").unwrap_or_default()));
    assert!(ben.user_create_date().is_some() && ben.user_last_modified_date().is_some());
}

fn sorted_vec(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn list_users_filter_errors(server: &Server) {
    let pool = server.new_pool(|p| p.schema(custom_tier())).await;
    create_user(server, &pool, "abe", &[("email", "abe@example.com")]).await;
    for filter in [
        "email == \"abe@example.com\"",
        "email = abe@example.com",
        "email \"abe@example.com\"",
        "email ~ \"abe\"",
        "email = \"abe@example.com",
        "shoe_size = \"42\"",
        "custom:tier = \"gold\"",
        "= \"abe\"",
        "email = \"a\" and name = \"b\"",
    ] {
        let info = expect_err(server.idp().list_users().user_pool_id(&pool).filter(filter).send().await);
        assert_eq!(
            (info.status, info.code.as_str()),
            (400, "InvalidParameterException"),
            "Filter {filter:?}: {info:?}"
        );
    }
}

async fn list_users_attributes_to_get(server: &Server) {
    let pool = server.new_pool(|p| p.schema(custom_tier())).await;
    create_user(server, &pool, "ada", &[("email", "ada@example.com"), ("name", "Ada"), ("custom:tier", "gold")]).await;
    create_user(server, &pool, "bob", &[("email", "bob@example.com")]).await;

    let out = ok(server.idp().list_users().user_pool_id(&pool).attributes_to_get("email").send().await);
    assert_eq!(out.users().len(), 2);
    for u in out.users() {
        assert_eq!(attr_names(u.attributes()), vec!["email"], "{u:?}");
        assert!(u.user_status().is_some(), "the status is still there");
    }

    let out = ok(server
        .idp()
        .list_users()
        .user_pool_id(&pool)
        .attributes_to_get("name")
        .attributes_to_get("custom:tier")
        .filter("username = \"ada\"")
        .send()
        .await);
    assert_eq!(out.users().len(), 1);
    assert_eq!(attr_names(out.users()[0].attributes()), vec!["custom:tier", "name"]);
    assert_eq!(attr_of(out.users()[0].attributes(), "custom:tier"), Some("gold"));

    // Without AttributesToGet every attribute is returned.
    let out = ok(server.idp().list_users().user_pool_id(&pool).filter("username = \"ada\"").send().await);
    assert_eq!(attr_names(out.users()[0].attributes()), vec!["custom:tier", "email", "name", "sub"]);
}

async fn list_users_limit_bounds(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    for name in ["a1", "a2", "a3"] {
        create_user(server, &pool, name, &[]).await;
    }
    // The model's QueryLimitType is 0..=60: 0 is accepted, 61 and -1 are not.
    for limit in [61, -1, 1000] {
        let info = expect_err(server.idp().list_users().user_pool_id(&pool).limit(limit).send().await);
        assert_eq!((info.status, info.code.as_str()), (400, "InvalidParameterException"), "Limit {limit}: {info:?}");
    }
    let out = ok(server.idp().list_users().user_pool_id(&pool).limit(0).send().await);
    assert!(out.users().len() <= 3, "Limit 0 is within the model's range");
    let out = ok(server.idp().list_users().user_pool_id(&pool).limit(1).send().await);
    assert_eq!(out.users().len(), 1);
    assert!(out.pagination_token().is_some());
    let out = ok(server.idp().list_users().user_pool_id(&pool).limit(60).send().await);
    assert_eq!(out.users().len(), 3);
    assert!(out.pagination_token().is_none(), "no token after the last page");
    // A token that the server never issued.
    let info =
        expect_err(server.idp().list_users().user_pool_id(&pool).pagination_token("not-a-real-token").send().await);
    assert_eq!(info.status, 400, "a bogus PaginationToken: {info:?}");
    // An empty pool.
    let empty = server.new_pool(|p| p).await;
    let out = ok(server.idp().list_users().user_pool_id(&empty).send().await);
    assert!(out.users().is_empty());
    assert!(out.pagination_token().is_none());
}

/// Pages of ListUsers: (usernames of each page).
async fn pages(server: &Server, pool: &str, limit: Option<i32>, filter: Option<&str>) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(server
            .idp()
            .list_users()
            .user_pool_id(pool)
            .set_limit(limit)
            .set_filter(filter.map(str::to_string))
            .set_pagination_token(token.clone())
            .send()
            .await);
        pages.push(out.users().iter().map(|u| u.username().unwrap_or_default().to_string()).collect());
        match out.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return pages,
        }
        assert!(pages.len() < 100, "ListUsers does not stop paginating");
    }
}

/// The usernames of the 60-user page after `token`.
async fn page_after(server: &Server, pool: &str, token: &str) -> Vec<String> {
    let out = ok(server.idp().list_users().user_pool_id(pool).limit(60).pagination_token(token).send().await);
    out.users().iter().map(|u| u.username().unwrap_or_default().to_string()).collect()
}

async fn list_users_paginates_130_users(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    // user-129 ... user-000 with emails u000 ... u129: ordering by email is
    // the reverse of ordering by username.
    let mut all: Vec<(String, String)> =
        (0..130).map(|i| (format!("user-{:03}", 129 - i), format!("u{i:03}@example.com"))).collect();
    let mut set = tokio::task::JoinSet::new();
    for chunk in all.chunks(13) {
        let chunk = chunk.to_vec();
        let client = server.idp();
        let pool = pool.clone();
        set.spawn(async move {
            for (name, email) in &chunk {
                let parity = if name.ends_with(['0', '2', '4', '6', '8']) { "even" } else { "odd" };
                ok(client
                    .admin_create_user()
                    .user_pool_id(&pool)
                    .username(name)
                    .user_attributes(attr("email", email))
                    .user_attributes(attr("family_name", parity))
                    .message_action(MessageActionType::Suppress)
                    .send()
                    .await);
            }
        });
    }
    while let Some(res) = set.join_next().await {
        res.expect("create task");
    }
    all.sort();
    let names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();

    // Unfiltered, 60 at a time: 60 + 60 + 10, every user exactly once.
    let p = pages(server, &pool, Some(60), None).await;
    assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), vec![60, 60, 10]);
    let seen: Vec<String> = p.concat();
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 130, "duplicates across pages");
    assert_eq!(sorted_vec(seen.clone()), names);
    // The default Limit is 60.
    let d = pages(server, &pool, None, None).await;
    assert_eq!(d.iter().map(Vec::len).collect::<Vec<_>>(), vec![60, 60, 10]);
    // Pages are stable: the same token gives the same page.
    let first = ok(server.idp().list_users().user_pool_id(&pool).limit(60).send().await);
    let token = first.pagination_token().expect("token").to_string();
    let page2 = page_after(server, &pool, &token).await;
    assert_eq!(page2.len(), 60);
    assert_eq!(page_after(server, &pool, &token).await, page2);
    assert_eq!(first.users().len(), 60);
    // Odd page sizes also cover everyone once.
    let p = pages(server, &pool, Some(7), None).await;
    assert_eq!(p.len(), 19);
    assert_eq!(sorted_vec(p.concat()), names);

    // Filtered by an exact value, 20 at a time: 65 users in (value, username) order.
    let even: Vec<String> = names.iter().filter(|n| n.ends_with(['0', '2', '4', '6', '8'])).cloned().collect();
    assert_eq!(even.len(), 65);
    let p = pages(server, &pool, Some(20), Some("family_name = \"even\"")).await;
    assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), vec![20, 20, 20, 5]);
    assert_eq!(p.concat(), even, "same value: sorted by username");

    // Filtered by a prefix: sorted by email, i.e. usernames descending.
    let p = pages(server, &pool, Some(60), Some("email ^= \"u0\"")).await;
    assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), vec![60, 40]);
    let expected: Vec<String> = (0..100).map(|i| format!("user-{:03}", 129 - i)).collect();
    assert_eq!(p.concat(), expected, "sorted by the email value");
    let p = pages(server, &pool, Some(60), Some("email ^= \"u12\"")).await;
    assert_eq!(p.concat(), (120..130).map(|i| format!("user-{:03}", 129 - i)).collect::<Vec<_>>());
}

async fn list_users_filter_quoting_and_case(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    create_user(server, &pool, "q1", &[("name", "Say \"hi\"")]).await;
    create_user(server, &pool, "q2", &[("name", "Say hello")]).await;
    create_user(server, &pool, "Q3", &[("name", "Zed \\ back")]).await;
    set_password(server, &pool, "q1", true).await;

    let cases: Vec<(&str, Vec<&str>)> = vec![
        // Quotation marks (and backslashes) in a value are escaped with a backslash.
        (r#"name = "Say \"hi\"""#, vec!["q1"]),
        (r#"name ^= "Say \"""#, vec!["q1"]),
        // Sorted by value: `Say "hi"` < `Say hello`.
        (r#"name ^= "Say""#, vec!["q1", "q2"]),
        (r#"name = "Zed \\ back""#, vec!["Q3"]),
        // username is case-sensitive (in a case-sensitive pool).
        (r#"username = "Q3""#, vec!["Q3"]),
        (r#"username = "q3""#, vec![]),
        // cognito:user_status is case-insensitive.
        (r#"cognito:user_status = "confirmed""#, vec!["q1"]),
        (r#"cognito:user_status = "Force_Change_Password""#, vec!["Q3", "q2"]),
    ];
    let mut wrong = Vec::new();
    for (filter, expected) in cases {
        let mut got = list_filtered(server, &pool, filter).await;
        if filter.starts_with("cognito:") {
            got.sort();
        }
        if got != expected {
            wrong.push(format!("Filter {filter:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "ListUsers filters:\n{}", wrong.join("\n"));
}

async fn list_users_pages_survive_changes_between_pages(server: &Server) {
    let pool = server.new_pool(|p| p).await;
    let mut set = tokio::task::JoinSet::new();
    for chunk in 0..6 {
        let client = server.idp();
        let pool = pool.clone();
        set.spawn(async move {
            for i in chunk * 15..(chunk + 1) * 15 {
                ok(client
                    .admin_create_user()
                    .user_pool_id(&pool)
                    .username(format!("p-{i:03}"))
                    .message_action(MessageActionType::Suppress)
                    .send()
                    .await);
            }
        });
    }
    while let Some(res) = set.join_next().await {
        res.expect("create task");
    }
    let first = ok(server.idp().list_users().user_pool_id(&pool).limit(30).send().await);
    let mut seen: Vec<String> = first.users().iter().map(|u| u.username().unwrap_or_default().to_string()).collect();
    assert_eq!(seen.len(), 30);
    let mut token = first.pagination_token().map(str::to_string);

    // Between pages: delete 5 users already seen and 5 not yet seen, add 5.
    let all: Vec<String> = (0..90).map(|i| format!("p-{i:03}")).collect();
    let unseen: Vec<String> = all.iter().filter(|n| !seen.contains(n)).cloned().collect();
    let deleted: Vec<String> = seen[..5].iter().chain(unseen[..5].iter()).cloned().collect();
    for name in &deleted {
        ok(server.idp().admin_delete_user().user_pool_id(&pool).username(name).send().await);
    }
    for i in 0..5 {
        create_user(server, &pool, &format!("new-{i}"), &[]).await;
    }
    while let Some(t) = token {
        let out = ok(server.idp().list_users().user_pool_id(&pool).limit(30).pagination_token(t).send().await);
        seen.extend(out.users().iter().map(|u| u.username().unwrap_or_default().to_string()));
        token = out.pagination_token().filter(|t| !t.is_empty()).map(str::to_string);
        assert!(seen.len() < 500, "ListUsers does not stop paginating");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a user was listed twice: {seen:?}");
    for name in all.iter().filter(|n| !deleted.contains(n)) {
        assert!(seen.contains(name), "{name} was never listed although it always existed");
    }
    for name in &unseen[..5] {
        assert!(!seen.contains(name), "{name} was listed after its deletion");
    }
}

async fn admin_create_user_in_an_email_username_pool(server: &Server) {
    let pool = server.new_pool(|p| p.username_attributes(cognate_e2e::idp::types::UsernameAttributeType::Email)).await;
    let user = create_user(server, &pool, "gail@example.com", &[("name", "Gail")]).await;
    let username = user.username().expect("Username").to_string();
    assert!(is_uuid(&username), "the username {username:?} is a generated UUID");
    assert_eq!(attr_of(user.attributes(), "sub"), Some(username.as_str()));
    assert_eq!(attr_of(user.attributes(), "email"), Some("gail@example.com"));
    let got = server.get_user(&pool, "gail@example.com").await;
    assert_eq!(got.username(), username);
    assert_eq!(attr_of(got.user_attributes(), "name"), Some("Gail"));

    let msg = expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("gail@example.com")
            .message_action(MessageActionType::Suppress)
            .send()
            .await,
        "UsernameExistsException",
    );
    assert_eq!(msg, "An account with the given email already exists.");
    expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("gail")
            .message_action(MessageActionType::Suppress)
            .send()
            .await,
        "InvalidParameterException",
    );
    assert_eq!(server.usernames(&pool).await, vec![username.clone()]);

    // Admin operations take the email.
    ok(server.idp().admin_disable_user().user_pool_id(&pool).username("gail@example.com").send().await);
    assert!(!server.get_user(&pool, &username).await.enabled());
    ok(server.idp().admin_delete_user().user_pool_id(&pool).username("gail@example.com").send().await);
    assert!(server.list_all_users(&pool).await.is_empty());
}

async fn email_alias_conflicts_in_admin_operations(server: &Server) {
    let pool = server
        .new_pool(|p| {
            p.auto_verified_attributes(VerifiedAttributeType::Email)
                .alias_attributes(cognate_e2e::idp::types::AliasAttributeType::Email)
        })
        .await;
    const EMAIL: &str = "owner@example.com";
    create_user(server, &pool, "ann", &[("email", EMAIL), ("email_verified", "true")]).await;
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "ann");

    // An update that would take the alias: refused, nothing changed.
    create_user(server, &pool, "cy", &[("email", "cy@example.com"), ("email_verified", "true")]).await;
    let before = view(server, &pool, "cy").await;
    let msg = expect_code(
        server
            .idp()
            .admin_update_user_attributes()
            .user_pool_id(&pool)
            .username("cy")
            .user_attributes(attr("email", EMAIL))
            .user_attributes(attr("email_verified", "true"))
            .send()
            .await,
        "AliasExistsException",
    );
    assert_eq!(msg, "An account with the given email already exists.");
    assert_eq!(view(server, &pool, "cy").await, before);
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "ann");

    // ForceAliasCreation on AdminCreateUser moves it.
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("bo")
        .user_attributes(attr("email", EMAIL))
        .user_attributes(attr("email_verified", "true"))
        .message_action(MessageActionType::Suppress)
        .force_alias_creation(true)
        .send()
        .await);
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "bo");
    assert_ne!(attr_of(server.get_user(&pool, "ann").await.user_attributes(), "email_verified"), Some("true"));
    // A username in email format is refused in an alias pool.
    expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("dee@example.com")
            .message_action(MessageActionType::Suppress)
            .send()
            .await,
        "InvalidParameterException",
    );
    assert_eq!(server.usernames(&pool).await, vec!["ann", "bo", "cy"]);

    // Without ForceAliasCreation a new user with the same verified email is
    // refused with AliasExistsException (AdminCreateUser's documentation of
    // ForceAliasCreation), and nothing is created.
    let msg = expect_code(
        server
            .idp()
            .admin_create_user()
            .user_pool_id(&pool)
            .username("dan")
            .user_attributes(attr("email", EMAIL))
            .user_attributes(attr("email_verified", "true"))
            .message_action(MessageActionType::Suppress)
            .send()
            .await,
        "AliasExistsException",
    );
    assert_eq!(msg, "An account with the given email already exists.");
    assert_eq!(server.usernames(&pool).await, vec!["ann", "bo", "cy"]);
    assert_eq!(server.get_user(&pool, EMAIL).await.username(), "bo");
}

// ---------------------------------------------------------------------------
// Restarts
// ---------------------------------------------------------------------------

async fn users_and_codes_survive_a_restart(server: &mut Server) {
    let app = app(server).await;
    let pool = app.pool.clone();
    sign_up(server, &app, "pending", &[("email", "pending@example.com"), ("custom:tier", "gold")]).await;
    confirmed_user(server, &pool, "settled", "settled@example.com").await;
    ok(server.idp().admin_disable_user().user_pool_id(&pool).username("settled").send().await);
    let pending = view(server, &pool, "pending").await;
    let settled = view(server, &pool, "settled").await;
    let outbox = server.outbox(&pool, "pending").await;
    let code = server.latest_code(&pool, "pending").await;

    server.restart().await;

    assert_eq!(view(server, &pool, "pending").await, pending);
    assert_eq!(view(server, &pool, "settled").await, settled);
    assert_eq!(server.outbox(&pool, "pending").await, outbox);
    // The code issued before the restart still confirms.
    ok(server
        .idp_anonymous()
        .confirm_sign_up()
        .client_id(&app.client)
        .username("pending")
        .confirmation_code(&code)
        .send()
        .await);
    assert_eq!(server.user_status(&pool, "pending").await, "CONFIRMED");
    assert_eq!(server.usernames(&pool).await, vec!["pending", "settled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_users_and_codes_survive_a_restart() {
    let mut server = Server::sqlite().await;
    users_and_codes_survive_a_restart(&mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users_and_codes_survive_a_restart() {
    let Some(mut server) = Server::postgres().await else {
        return;
    };
    users_and_codes_survive_a_restart(&mut server).await;
}
