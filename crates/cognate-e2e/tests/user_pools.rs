//! User pools: CreateUserPool, DescribeUserPool, UpdateUserPool,
//! DeleteUserPool, ListUserPools, AddCustomAttributes, GetCSVHeader.
//! Every test runs against SQLite and PostgreSQL.

#![allow(clippy::bool_assert_comparison)]

use std::collections::{HashMap, HashSet};

use cognate_e2e::idp::types::{
    AliasAttributeType, AttributeDataType, DeletionProtectionType, NumberAttributeConstraintsType, PasswordPolicyType,
    SchemaAttributeType, SmsConfigurationType, StringAttributeConstraintsType, UserPoolMfaType, UserPoolPolicyType,
    UserPoolTierType, UserPoolType, UsernameAttributeType, VerificationMessageTemplateType, VerifiedAttributeType,
};
use cognate_e2e::{
    both_stores, epoch, expect_code, expect_one_of, now_epoch, ok, sorted, unique_name, Server, ACCOUNT, REGION,
};

both_stores!(
    create_user_pool_echoes_every_parameter,
    create_user_pool_fills_in_defaults,
    create_user_pool_with_alias_attributes,
    create_user_pool_with_sms_mfa_optional,
    create_user_pool_mfa_on_without_sms_is_rejected,
    create_user_pool_username_and_alias_attributes_conflict,
    create_user_pool_with_custom_id_tag,
    describe_user_pool_unknown_and_malformed_ids,
    update_user_pool_changes_are_visible,
    update_user_pool_keeps_the_given_message_template,
    update_user_pool_resets_omitted_settings_to_defaults,
    update_user_pool_unknown_pool,
    delete_user_pool_then_describe_fails,
    delete_user_pool_with_deletion_protection_is_refused,
    delete_user_pool_unknown_pool,
    list_user_pools_max_results_bounds,
    list_user_pools_paginates_every_pool_once,
    add_custom_attributes_then_describe,
    add_custom_attributes_duplicate_is_rejected,
    add_custom_attributes_unknown_pool,
    get_csv_header_lists_attributes,
    custom_attribute_validation,
    create_response_equals_describe_response,
    pool_names_need_not_be_unique,
    concurrent_creates_get_unique_ids,
    list_user_pools_survives_deletes_between_pages,
    list_user_pools_rejects_a_bogus_token,
);

/// `us-east-1_` followed by one or more ASCII letters or digits.
fn assert_pool_id_format(id: &str) {
    let suffix = id
        .strip_prefix(&format!("{REGION}_"))
        .unwrap_or_else(|| panic!("pool id {id:?} does not start with {REGION}_"));
    assert!(
        !suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
        "pool id {id:?} does not match {REGION}_[0-9A-Za-z]+"
    );
}

fn pool_arn(id: &str) -> String {
    format!("arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{id}")
}

fn attr<'a>(pool: &'a UserPoolType, name: &str) -> &'a SchemaAttributeType {
    pool.schema_attributes().iter().find(|a| a.name() == Some(name)).unwrap_or_else(|| {
        let names: Vec<_> = pool.schema_attributes().iter().filter_map(|a| a.name()).collect();
        panic!("schema attribute {name:?} missing; have {names:?}")
    })
}

fn custom_string(name: &str, min: &str, max: &str) -> SchemaAttributeType {
    SchemaAttributeType::builder()
        .name(name)
        .attribute_data_type(AttributeDataType::String)
        .mutable(true)
        .developer_only_attribute(false)
        .string_attribute_constraints(StringAttributeConstraintsType::builder().min_length(min).max_length(max).build())
        .build()
}

fn custom_number(name: &str, min: &str, max: &str) -> SchemaAttributeType {
    SchemaAttributeType::builder()
        .name(name)
        .attribute_data_type(AttributeDataType::Number)
        .mutable(true)
        .number_attribute_constraints(NumberAttributeConstraintsType::builder().min_value(min).max_value(max).build())
        .build()
}

async fn describe(server: &Server, id: &str) -> UserPoolType {
    ok(server.idp().describe_user_pool().user_pool_id(id).send().await)
        .user_pool
        .expect("DescribeUserPool returned no UserPool")
}

async fn create_simple(server: &Server) -> UserPoolType {
    ok(server.idp().create_user_pool().pool_name(unique_name("pool")).send().await)
        .user_pool
        .expect("CreateUserPool returned no UserPool")
}

async fn count_pools(server: &Server) -> usize {
    let client = server.idp();
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let out = ok(client.list_user_pools().max_results(60).set_next_token(token.clone()).send().await);
        n += out.user_pools().len();
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return n,
        }
    }
}

/// The checks shared by Create's response and Describe's.
fn check_full_pool(pool: &UserPoolType, name: &str) {
    assert_eq!(pool.name(), Some(name));
    let id = pool.id().expect("Id");
    assert_pool_id_format(id);
    assert_eq!(pool.arn(), Some(pool_arn(id).as_str()));

    let pp = pool.policies().and_then(|p| p.password_policy()).expect("PasswordPolicy");
    assert_eq!(pp.minimum_length(), Some(12));
    assert_eq!(pp.require_uppercase(), true);
    assert_eq!(pp.require_lowercase(), false);
    assert_eq!(pp.require_numbers(), true);
    assert_eq!(pp.require_symbols(), false);
    assert_eq!(pp.temporary_password_validity_days(), 3);

    // A standard attribute made required by the Schema parameter.
    let email = attr(pool, "email");
    assert_eq!(email.required(), Some(true));
    assert_eq!(email.attribute_data_type(), Some(&AttributeDataType::String));

    let tenant = attr(pool, "custom:tenant");
    assert_eq!(tenant.attribute_data_type(), Some(&AttributeDataType::String));
    assert_eq!(tenant.mutable(), Some(true));
    assert_ne!(tenant.required(), Some(true), "custom attributes are never required");
    let sc = tenant.string_attribute_constraints().expect("StringAttributeConstraints of custom:tenant");
    assert_eq!(sc.min_length(), Some("1"));
    assert_eq!(sc.max_length(), Some("64"));

    let level = attr(pool, "custom:level");
    assert_eq!(level.attribute_data_type(), Some(&AttributeDataType::Number));
    let nc = level.number_attribute_constraints().expect("NumberAttributeConstraints of custom:level");
    assert_eq!(nc.min_value(), Some("0"));
    assert_eq!(nc.max_value(), Some("100"));
    assert!(
        !pool.schema_attributes().iter().any(|a| a.name() == Some("tenant")),
        "custom attribute listed without its custom: prefix"
    );

    assert_eq!(pool.auto_verified_attributes(), &[VerifiedAttributeType::Email]);
    assert_eq!(pool.username_attributes(), &[UsernameAttributeType::Email]);
    assert!(pool.alias_attributes().is_empty());
    assert_eq!(pool.mfa_configuration(), Some(&UserPoolMfaType::Off));
    assert_eq!(pool.deletion_protection(), Some(&DeletionProtectionType::Active));
    let tags = pool.user_pool_tags().expect("UserPoolTags");
    assert_eq!(tags.get("team").map(String::as_str), Some("identity"));
    assert_eq!(tags.get("env").map(String::as_str), Some("e2e"));
    assert_eq!(pool.email_verification_subject(), Some("Your code"));
    assert_eq!(pool.email_verification_message(), Some("Your verification code is {####}."));
}

async fn create_user_pool_echoes_every_parameter(server: &Server) {
    let client = server.idp();
    let name = unique_name("full");
    let out = ok(client
        .create_user_pool()
        .pool_name(&name)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(12)
                        .require_uppercase(true)
                        .require_lowercase(false)
                        .require_numbers(true)
                        .require_symbols(false)
                        .temporary_password_validity_days(3)
                        .build(),
                )
                .build(),
        )
        .schema(
            SchemaAttributeType::builder()
                .name("email")
                .attribute_data_type(AttributeDataType::String)
                .required(true)
                .mutable(true)
                .build(),
        )
        .schema(custom_string("tenant", "1", "64"))
        .schema(custom_number("level", "0", "100"))
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .username_attributes(UsernameAttributeType::Email)
        .mfa_configuration(UserPoolMfaType::Off)
        .user_pool_tags("team", "identity")
        .user_pool_tags("env", "e2e")
        .deletion_protection(DeletionProtectionType::Active)
        .email_verification_subject("Your code")
        .email_verification_message("Your verification code is {####}.")
        .send()
        .await);
    let created = out.user_pool.expect("UserPool in CreateUserPool response");
    check_full_pool(&created, &name);

    let described = describe(server, created.id().unwrap()).await;
    check_full_pool(&described, &name);
    assert_eq!(created.id(), described.id());
    assert_eq!(created.creation_date().map(epoch), described.creation_date().map(epoch));
}

async fn create_user_pool_fills_in_defaults(server: &Server) {
    let before = now_epoch();
    let name = unique_name("defaults");
    let created = ok(server.idp().create_user_pool().pool_name(&name).send().await).user_pool.unwrap();
    let id = created.id().unwrap().to_string();
    assert_pool_id_format(&id);
    let pool = describe(server, &id).await;
    assert_eq!(pool.id(), Some(id.as_str()));
    assert_eq!(pool.name(), Some(name.as_str()));
    assert_eq!(pool.arn(), Some(pool_arn(&id).as_str()));

    // Default password policy: 8 characters, all four classes, 7 days.
    let pp = pool.policies().and_then(|p| p.password_policy()).expect("default PasswordPolicy");
    assert_eq!(pp.minimum_length(), Some(8));
    assert_eq!(pp.require_uppercase(), true);
    assert_eq!(pp.require_lowercase(), true);
    assert_eq!(pp.require_numbers(), true);
    assert_eq!(pp.require_symbols(), true);
    assert_eq!(pp.temporary_password_validity_days(), 7);

    // Standard attributes, `sub` first among equals: immutable and required.
    let sub = attr(&pool, "sub");
    assert_eq!(sub.attribute_data_type(), Some(&AttributeDataType::String));
    assert_eq!(sub.mutable(), Some(false));
    assert_eq!(sub.required(), Some(true));
    for name in [
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
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "phone_number",
        "address",
    ] {
        let a = attr(&pool, name);
        assert_eq!(a.attribute_data_type(), Some(&AttributeDataType::String), "{name}");
        assert_eq!(a.mutable(), Some(true), "{name} is mutable by default");
        assert_eq!(a.required(), Some(false), "{name} is optional by default");
    }
    for name in ["email_verified", "phone_number_verified"] {
        assert_eq!(attr(&pool, name).attribute_data_type(), Some(&AttributeDataType::Boolean), "{name}");
    }
    assert_eq!(attr(&pool, "updated_at").attribute_data_type(), Some(&AttributeDataType::Number));
    assert!(
        !pool.schema_attributes().iter().any(|a| a.name().is_some_and(|n| n.starts_with("custom:"))),
        "no custom attributes were asked for"
    );

    assert_eq!(pool.mfa_configuration(), Some(&UserPoolMfaType::Off));
    assert_eq!(pool.deletion_protection(), Some(&DeletionProtectionType::Inactive));
    assert_eq!(pool.estimated_number_of_users(), 0);
    assert_eq!(pool.user_pool_tier(), Some(&UserPoolTierType::Essentials));
    assert!(pool.username_attributes().is_empty());
    assert!(pool.alias_attributes().is_empty());
    let created_at = pool.creation_date().map(epoch).expect("CreationDate");
    let modified_at = pool.last_modified_date().map(epoch).expect("LastModifiedDate");
    assert!(
        created_at >= before - 5.0 && created_at <= now_epoch() + 5.0,
        "CreationDate {created_at} is not about now ({before})"
    );
    assert!(modified_at >= created_at - 0.001);
}

async fn create_user_pool_with_alias_attributes(server: &Server) {
    let name = unique_name("alias");
    let created = ok(server
        .idp()
        .create_user_pool()
        .pool_name(&name)
        .alias_attributes(AliasAttributeType::Email)
        .alias_attributes(AliasAttributeType::PreferredUsername)
        .send()
        .await)
    .user_pool
    .unwrap();
    let pool = describe(server, created.id().unwrap()).await;
    let aliases: Vec<&str> = pool.alias_attributes().iter().map(|a| a.as_str()).collect();
    assert_eq!(sorted(&aliases), vec!["email", "preferred_username"]);
    assert!(pool.username_attributes().is_empty());
}

async fn create_user_pool_with_sms_mfa_optional(server: &Server) {
    let role = format!("arn:aws:iam::{ACCOUNT}:role/cognito-sms");
    let created = ok(server
        .idp()
        .create_user_pool()
        .pool_name(unique_name("sms"))
        .mfa_configuration(UserPoolMfaType::Optional)
        .auto_verified_attributes(VerifiedAttributeType::PhoneNumber)
        .sms_configuration(SmsConfigurationType::builder().sns_caller_arn(&role).external_id("e2e-external").build())
        .sms_authentication_message("Your code is {####}")
        .send()
        .await)
    .user_pool
    .unwrap();
    let pool = describe(server, created.id().unwrap()).await;
    assert_eq!(pool.mfa_configuration(), Some(&UserPoolMfaType::Optional));
    let sms = pool.sms_configuration().expect("SmsConfiguration");
    assert_eq!(sms.sns_caller_arn(), role.as_str());
    assert_eq!(sms.external_id(), Some("e2e-external"));
    assert_eq!(pool.auto_verified_attributes(), &[VerifiedAttributeType::PhoneNumber]);
    assert_eq!(pool.sms_authentication_message(), Some("Your code is {####}"));
}

async fn create_user_pool_mfa_on_without_sms_is_rejected(server: &Server) {
    let before = count_pools(server).await;
    let res = server
        .idp()
        .create_user_pool()
        .pool_name(unique_name("mfa-on"))
        .mfa_configuration(UserPoolMfaType::On)
        .send()
        .await;
    expect_code(res, "InvalidParameterException");
    assert_eq!(count_pools(server).await, before, "no pool may be created");
}

async fn create_user_pool_username_and_alias_attributes_conflict(server: &Server) {
    let before = count_pools(server).await;
    let res = server
        .idp()
        .create_user_pool()
        .pool_name(unique_name("conflict"))
        .username_attributes(UsernameAttributeType::Email)
        .alias_attributes(AliasAttributeType::PreferredUsername)
        .send()
        .await;
    expect_code(res, "InvalidParameterException");
    assert_eq!(count_pools(server).await, before, "no pool may be created");
}

async fn create_user_pool_with_custom_id_tag(server: &Server) {
    let fixed = format!("{REGION}_myfixedid");
    let created = ok(server
        .idp()
        .create_user_pool()
        .pool_name(unique_name("fixed"))
        .user_pool_tags("_custom_id_", "us-east-1_myfixedid")
        .send()
        .await)
    .user_pool
    .unwrap();
    assert_eq!(created.id(), Some(fixed.as_str()));
    assert_eq!(created.arn(), Some(pool_arn(&fixed).as_str()));
    let pool = describe(server, &fixed).await;
    assert_eq!(pool.id(), Some(fixed.as_str()));

    // The same id again must not replace the existing pool.
    let res = server
        .idp()
        .create_user_pool()
        .pool_name("another")
        .user_pool_tags("_custom_id_", "us-east-1_myfixedid")
        .send()
        .await;
    let info = cognate_e2e::expect_err(res);
    assert_eq!(info.status, 400, "a duplicate custom id is a client error: {info:?}");
    let again = describe(server, &fixed).await;
    assert_eq!(again.name(), pool.name());
    assert_eq!(count_pools(server).await, 1);
}

async fn describe_user_pool_unknown_and_malformed_ids(server: &Server) {
    let client = server.idp();
    let msg = expect_code(
        client.describe_user_pool().user_pool_id("us-east-1_doesnotexist0").send().await,
        "ResourceNotFoundException",
    );
    assert!(msg.contains("us-east-1_doesnotexist0"), "the message should name the pool: {msg:?}");
    expect_code(client.describe_user_pool().user_pool_id("bad").send().await, "InvalidParameterException");
    // Another region's pool id is well-formed but unknown here.
    expect_one_of(
        client.describe_user_pool().user_pool_id("eu-west-1_abcdefghi").send().await,
        &["ResourceNotFoundException", "InvalidParameterException"],
    );
}

async fn update_user_pool_changes_are_visible(server: &Server) {
    let client = server.idp();
    let name = unique_name("upd");
    let created =
        ok(client.create_user_pool().pool_name(&name).user_pool_tags("keep", "me").send().await).user_pool.unwrap();
    let id = created.id().unwrap().to_string();
    let original = describe(server, &id).await;

    ok(client
        .update_user_pool()
        .user_pool_id(&id)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(10)
                        .require_uppercase(false)
                        .require_lowercase(true)
                        .require_numbers(false)
                        .require_symbols(true)
                        .temporary_password_validity_days(2)
                        .build(),
                )
                .build(),
        )
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .deletion_protection(DeletionProtectionType::Active)
        .user_pool_tags("keep", "changed")
        .user_pool_tags("added", "yes")
        .email_verification_subject("Updated subject")
        .send()
        .await);

    let pool = describe(server, &id).await;
    let pp = pool.policies().and_then(|p| p.password_policy()).unwrap();
    assert_eq!(pp.minimum_length(), Some(10));
    assert_eq!(pp.require_uppercase(), false);
    assert_eq!(pp.require_lowercase(), true);
    assert_eq!(pp.require_numbers(), false);
    assert_eq!(pp.require_symbols(), true);
    assert_eq!(pp.temporary_password_validity_days(), 2);
    assert_eq!(pool.auto_verified_attributes(), &[VerifiedAttributeType::Email]);
    assert_eq!(pool.deletion_protection(), Some(&DeletionProtectionType::Active));
    let tags = pool.user_pool_tags().expect("tags");
    assert_eq!(tags.get("keep").map(String::as_str), Some("changed"));
    assert_eq!(tags.get("added").map(String::as_str), Some("yes"));
    assert_eq!(pool.email_verification_subject(), Some("Updated subject"));
    // What UpdateUserPool cannot change stays.
    assert_eq!(pool.name(), Some(name.as_str()));
    assert_eq!(pool.id(), Some(id.as_str()));
    assert_eq!(pool.arn(), original.arn());
    assert_eq!(pool.creation_date().map(epoch), original.creation_date().map(epoch));
    assert_eq!(pool.schema_attributes().len(), original.schema_attributes().len());
    assert!(
        pool.last_modified_date().map(epoch) >= original.last_modified_date().map(epoch),
        "LastModifiedDate must not go back"
    );
}

async fn update_user_pool_keeps_the_given_message_template(server: &Server) {
    let client = server.idp();
    let id = ok(client.create_user_pool().pool_name(unique_name("tpl")).send().await).user_pool.unwrap().id.unwrap();
    ok(client
        .update_user_pool()
        .user_pool_id(&id)
        .verification_message_template(
            VerificationMessageTemplateType::builder()
                .email_message("Your code: {####}")
                .email_subject("Welcome")
                .build(),
        )
        .send()
        .await);
    let pool = describe(server, &id).await;
    let template = pool.verification_message_template().expect("template");
    assert_eq!(template.email_message(), Some("Your code: {####}"));
    assert_eq!(template.email_subject(), Some("Welcome"));
    assert_eq!(pool.email_verification_message(), Some("Your code: {####}"));
}

/// AWS documents that UpdateUserPool sets every setting that the request
/// leaves out back to its default value.
async fn update_user_pool_resets_omitted_settings_to_defaults(server: &Server) {
    let client = server.idp();
    let created = ok(client
        .create_user_pool()
        .pool_name(unique_name("reset"))
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(20)
                        .require_uppercase(false)
                        .require_lowercase(false)
                        .require_numbers(false)
                        .require_symbols(false)
                        .build(),
                )
                .build(),
        )
        .deletion_protection(DeletionProtectionType::Active)
        .send()
        .await)
    .user_pool
    .unwrap();
    let id = created.id().unwrap();
    ok(client.update_user_pool().user_pool_id(id).user_pool_tags("only", "tags").send().await);
    let pool = describe(server, id).await;
    let pp = pool.policies().and_then(|p| p.password_policy()).unwrap();
    assert_eq!(pp.minimum_length(), Some(8), "policy back to the default");
    assert_eq!(pp.require_symbols(), true);
    assert_eq!(pool.deletion_protection(), Some(&DeletionProtectionType::Inactive));
}

async fn update_user_pool_unknown_pool(server: &Server) {
    expect_code(
        server.idp().update_user_pool().user_pool_id("us-east-1_nosuchpool").send().await,
        "ResourceNotFoundException",
    );
}

async fn delete_user_pool_then_describe_fails(server: &Server) {
    let client = server.idp();
    let pool = create_simple(server).await;
    let other = create_simple(server).await;
    let id = pool.id().unwrap();
    ok(client.delete_user_pool().user_pool_id(id).send().await);
    expect_code(client.describe_user_pool().user_pool_id(id).send().await, "ResourceNotFoundException");
    // Deleting again: the pool is gone.
    expect_code(client.delete_user_pool().user_pool_id(id).send().await, "ResourceNotFoundException");
    // Its neighbour is untouched, and the list no longer has it.
    describe(server, other.id().unwrap()).await;
    let listed = ok(client.list_user_pools().max_results(60).send().await);
    let ids: Vec<_> = listed.user_pools().iter().filter_map(|p| p.id()).collect();
    assert_eq!(ids, vec![other.id().unwrap()]);
}

async fn delete_user_pool_with_deletion_protection_is_refused(server: &Server) {
    let client = server.idp();
    let created = ok(client
        .create_user_pool()
        .pool_name(unique_name("protected"))
        .deletion_protection(DeletionProtectionType::Active)
        .send()
        .await)
    .user_pool
    .unwrap();
    let id = created.id().unwrap();
    expect_code(client.delete_user_pool().user_pool_id(id).send().await, "InvalidParameterException");
    let pool = describe(server, id).await;
    assert_eq!(pool.deletion_protection(), Some(&DeletionProtectionType::Active));
    // Turning protection off makes it deletable.
    ok(client.update_user_pool().user_pool_id(id).deletion_protection(DeletionProtectionType::Inactive).send().await);
    ok(client.delete_user_pool().user_pool_id(id).send().await);
    expect_code(client.describe_user_pool().user_pool_id(id).send().await, "ResourceNotFoundException");
}

async fn delete_user_pool_unknown_pool(server: &Server) {
    expect_code(
        server.idp().delete_user_pool().user_pool_id("us-east-1_nosuchpool").send().await,
        "ResourceNotFoundException",
    );
}

async fn list_user_pools_max_results_bounds(server: &Server) {
    let client = server.idp();
    for _ in 0..2 {
        create_simple(server).await;
    }
    for bad in [0, 61] {
        expect_code(client.list_user_pools().max_results(bad).send().await, "InvalidParameterException");
    }
    let one = ok(client.list_user_pools().max_results(1).send().await);
    assert_eq!(one.user_pools().len(), 1);
    assert!(one.next_token().is_some(), "more pools remain");
    let all = ok(client.list_user_pools().max_results(60).send().await);
    assert_eq!(all.user_pools().len(), 2);
    assert!(all.next_token().is_none(), "nothing remains");
    // MaxResults is required.
    let raw = server.raw().idp("ListUserPools", serde_json::json!({})).await;
    raw.assert_error("InvalidParameterException");
}

async fn list_user_pools_paginates_every_pool_once(server: &Server) {
    let client = server.idp();
    let mut created = HashMap::new();
    for _ in 0..7 {
        let p = create_simple(server).await;
        created.insert(p.id().unwrap().to_string(), p.name().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(client.list_user_pools().max_results(3).set_next_token(token.clone()).send().await);
        pages.push(out.user_pools().len());
        for p in out.user_pools() {
            let id = p.id().expect("Id in a list entry").to_string();
            assert_eq!(p.name(), created.get(&id).map(String::as_str), "list entry name");
            assert!(p.creation_date().is_some(), "CreationDate in a list entry");
            assert!(p.last_modified_date().is_some());
            seen.push(id);
        }
        match out.next_token() {
            Some(t) => {
                assert!(!t.is_empty(), "an empty NextToken must be omitted");
                token = Some(t.to_string());
            }
            None => break,
        }
        assert!(pages.len() <= 7, "pagination does not end: {pages:?}");
    }
    assert_eq!(pages, vec![3, 3, 1], "page sizes");
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a pool was listed twice: {seen:?}");
    assert_eq!(unique, created.keys().cloned().collect::<HashSet<_>>(), "every pool listed");
}

async fn add_custom_attributes_then_describe(server: &Server) {
    let client = server.idp();
    let pool = create_simple(server).await;
    let id = pool.id().unwrap();
    ok(client
        .add_custom_attributes()
        .user_pool_id(id)
        .custom_attributes(custom_string("department", "0", "128"))
        .custom_attributes(custom_number("age", "0", "150"))
        .send()
        .await);
    let pool = describe(server, id).await;
    let dep = attr(&pool, "custom:department");
    assert_eq!(dep.attribute_data_type(), Some(&AttributeDataType::String));
    let sc = dep.string_attribute_constraints().expect("constraints");
    assert_eq!((sc.min_length(), sc.max_length()), (Some("0"), Some("128")));
    let age = attr(&pool, "custom:age");
    assert_eq!(age.attribute_data_type(), Some(&AttributeDataType::Number));
    let nc = age.number_attribute_constraints().expect("constraints");
    assert_eq!((nc.min_value(), nc.max_value()), (Some("0"), Some("150")));
    // The standard attributes are still there.
    attr(&pool, "sub");
    attr(&pool, "email");
}

async fn add_custom_attributes_duplicate_is_rejected(server: &Server) {
    let client = server.idp();
    let created = ok(client
        .create_user_pool()
        .pool_name(unique_name("dup"))
        .schema(custom_string("tenant", "1", "64"))
        .send()
        .await)
    .user_pool
    .unwrap();
    let id = created.id().unwrap();
    let before = describe(server, id).await;
    expect_code(
        client
            .add_custom_attributes()
            .user_pool_id(id)
            .custom_attributes(custom_string("tenant", "1", "10"))
            .send()
            .await,
        "InvalidParameterException",
    );
    let after = describe(server, id).await;
    assert_eq!(before.schema_attributes(), after.schema_attributes(), "a rejected AddCustomAttributes changes nothing");
    let tenant = attr(&after, "custom:tenant");
    assert_eq!(tenant.string_attribute_constraints().and_then(|c| c.max_length()), Some("64"));
}

async fn add_custom_attributes_unknown_pool(server: &Server) {
    expect_code(
        server
            .idp()
            .add_custom_attributes()
            .user_pool_id("us-east-1_nosuchpool")
            .custom_attributes(custom_string("x", "1", "2"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

async fn get_csv_header_lists_attributes(server: &Server) {
    let client = server.idp();
    let created = ok(client
        .create_user_pool()
        .pool_name(unique_name("csv"))
        .schema(custom_string("tenant", "1", "64"))
        .send()
        .await)
    .user_pool
    .unwrap();
    let id = created.id().unwrap();
    ok(client
        .add_custom_attributes()
        .user_pool_id(id)
        .custom_attributes(custom_string("plan", "1", "16"))
        .send()
        .await);
    let out = ok(client.get_csv_header().user_pool_id(id).send().await);
    assert_eq!(out.user_pool_id(), Some(id));
    let header = out.csv_header();
    for col in ["cognito:username", "email", "email_verified", "phone_number", "custom:tenant", "custom:plan"] {
        assert!(header.iter().any(|h| h == col), "{col} missing from {header:?}");
    }
    let unique: HashSet<_> = header.iter().collect();
    assert_eq!(unique.len(), header.len(), "duplicate columns: {header:?}");
    // The standard columns come first, in the documented order.
    let standard = [
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
    assert_eq!(&header[..standard.len()], &standard[..], "{header:?}");
    assert!(!header.iter().any(|h| h == "sub"), "sub is generated, not imported: {header:?}");
    expect_code(client.get_csv_header().user_pool_id("us-east-1_nosuchpool").send().await, "ResourceNotFoundException");
}

async fn custom_attribute_validation(server: &Server) {
    let client = server.idp();
    let before = count_pools(server).await;
    // Custom attributes cannot be required.
    let required = SchemaAttributeType::builder()
        .name("mandatory")
        .attribute_data_type(AttributeDataType::String)
        .required(true)
        .build();
    expect_code(
        client.create_user_pool().pool_name(unique_name("required")).schema(required.clone()).send().await,
        "InvalidParameterException",
    );
    assert_eq!(count_pools(server).await, before, "no pool may be created");

    let pool = create_simple(server).await;
    let id = pool.id().unwrap();
    let schema_before = describe(server, id).await.schema_attributes().to_vec();
    // Names are at most 20 characters.
    expect_code(
        client
            .add_custom_attributes()
            .user_pool_id(id)
            .custom_attributes(custom_string("abcdefghijklmnopqrstu", "1", "2"))
            .send()
            .await,
        "InvalidParameterException",
    );
    expect_code(
        client.add_custom_attributes().user_pool_id(id).custom_attributes(required).send().await,
        "InvalidParameterException",
    );
    // Two attributes of the same name in one call.
    expect_code(
        client
            .add_custom_attributes()
            .user_pool_id(id)
            .custom_attributes(custom_string("twin", "1", "2"))
            .custom_attributes(custom_string("twin", "1", "3"))
            .send()
            .await,
        "InvalidParameterException",
    );
    assert_eq!(describe(server, id).await.schema_attributes(), &schema_before[..], "rejected calls change nothing");
}

/// `null` in a JSON document, with its path.
fn find_null(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::Null => Some(path.to_string()),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, x)| find_null(x, &format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| find_null(x, &format!("{path}.{k}"))),
        _ => None,
    }
}

async fn create_response_equals_describe_response(server: &Server) {
    let raw = server.raw();
    let created = raw
        .idp(
            "CreateUserPool",
            serde_json::json!({
                "PoolName": "raw-pool",
                "Schema": [{"Name": "tenant", "AttributeDataType": "String"}],
                "AutoVerifiedAttributes": ["email"],
                "UserPoolTags": {"k": "v"}
            }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let created = created.json()["UserPool"].clone();
    let id = created["Id"].as_str().expect("Id").to_string();
    let described = raw.idp("DescribeUserPool", serde_json::json!({"UserPoolId": id})).await;
    assert_eq!(described.status, 200, "{}", described.body);
    let described = described.json()["UserPool"].clone();
    assert_eq!(created, described, "CreateUserPool and DescribeUserPool disagree");
    assert_eq!(find_null(&described, "UserPool"), None, "absent members are omitted, not null");
    for ts in ["CreationDate", "LastModifiedDate"] {
        assert!(described[ts].is_number(), "{ts} must be epoch seconds as a JSON number: {}", described[ts]);
    }
    assert!(described["EstimatedNumberOfUsers"].is_number());
}

async fn pool_names_need_not_be_unique(server: &Server) {
    let client = server.idp();
    let mut ids = HashSet::new();
    for _ in 0..2 {
        let pool = ok(client.create_user_pool().pool_name("same-name").send().await).user_pool.unwrap();
        ids.insert(pool.id.unwrap());
    }
    assert_eq!(ids.len(), 2, "two pools of the same name get two ids");
    assert_eq!(count_pools(server).await, 2);
}

async fn concurrent_creates_get_unique_ids(server: &Server) {
    let client = server.idp();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(
            async move { client.create_user_pool().pool_name(format!("parallel-{i}")).send().await },
        ));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        let pool = ok(t.await.expect("task")).user_pool.unwrap();
        assert_pool_id_format(pool.id().unwrap());
        ids.insert(pool.id.unwrap());
    }
    assert_eq!(ids.len(), 16, "ids must be unique");
    assert_eq!(count_pools(server).await, 16);
}

async fn list_user_pools_survives_deletes_between_pages(server: &Server) {
    let client = server.idp();
    let mut all = HashSet::new();
    for _ in 0..6 {
        all.insert(create_simple(server).await.id.unwrap());
    }
    let first = ok(client.list_user_pools().max_results(2).send().await);
    let first_ids: Vec<String> = first.user_pools().iter().map(|p| p.id().unwrap().to_string()).collect();
    assert_eq!(first_ids.len(), 2);
    let mut token = first.next_token().map(str::to_string);
    assert!(token.is_some());
    // Delete a pool that was already listed: nothing after it may be skipped.
    ok(client.delete_user_pool().user_pool_id(&first_ids[0]).send().await);
    let mut rest = Vec::new();
    while let Some(t) = token {
        let out = ok(client.list_user_pools().max_results(2).next_token(t).send().await);
        rest.extend(out.user_pools().iter().map(|p| p.id().unwrap().to_string()));
        token = out.next_token().map(str::to_string);
        assert!(rest.len() <= 6, "pagination does not end");
    }
    let mut seen: Vec<String> = first_ids.clone();
    seen.extend(rest.iter().cloned());
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a pool was listed twice: {seen:?}");
    assert_eq!(unique, all, "every pool that existed when listing began was listed once");
}

async fn list_user_pools_rejects_a_bogus_token(server: &Server) {
    create_simple(server).await;
    let err = cognate_e2e::expect_err(
        server.idp().list_user_pools().max_results(10).next_token("not-a-token-this-server-issued").send().await,
    );
    assert_eq!(err.status, 400, "a bad token is a client error: {err:?}");
}
