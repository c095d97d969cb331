//! GetUserPoolMfaConfig / SetUserPoolMfaConfig and TagResource /
//! UntagResource / ListTagsForResource on user pools. Every test runs against
//! SQLite and PostgreSQL.

use std::collections::HashMap;

use cognate_e2e::idp::types::{SoftwareTokenMfaConfigType, UserPoolMfaType};
use cognate_e2e::{both_stores, expect_code, ok, unique_name, Server, ACCOUNT, REGION};

both_stores!(
    mfa_config_of_a_new_pool_is_off,
    set_mfa_config_software_token_optional,
    set_mfa_config_on_without_a_factor_is_rejected,
    mfa_config_unknown_pool,
    tag_list_untag_pool,
    tags_unknown_resource,
);

async fn new_pool(server: &Server) -> (String, String) {
    let pool = ok(server
        .idp()
        .create_user_pool()
        .pool_name(unique_name("mfa"))
        .user_pool_tags("created", "with-pool")
        .send()
        .await)
    .user_pool
    .unwrap();
    (pool.id.unwrap(), pool.arn.unwrap())
}

async fn mfa_config_of_a_new_pool_is_off(server: &Server) {
    let (id, _) = new_pool(server).await;
    let out = ok(server.idp().get_user_pool_mfa_config().user_pool_id(&id).send().await);
    assert_eq!(out.mfa_configuration(), Some(&UserPoolMfaType::Off));
    assert!(!out.software_token_mfa_configuration().is_some_and(|c| c.enabled()), "TOTP is not enabled on a new pool");
}

async fn set_mfa_config_software_token_optional(server: &Server) {
    let (id, _) = new_pool(server).await;
    let client = server.idp();
    let set = ok(client
        .set_user_pool_mfa_config()
        .user_pool_id(&id)
        .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
        .mfa_configuration(UserPoolMfaType::Optional)
        .send()
        .await);
    assert_eq!(set.mfa_configuration(), Some(&UserPoolMfaType::Optional));
    assert!(set.software_token_mfa_configuration().is_some_and(|c| c.enabled()));

    let got = ok(client.get_user_pool_mfa_config().user_pool_id(&id).send().await);
    assert_eq!(got.mfa_configuration(), Some(&UserPoolMfaType::Optional));
    assert!(got.software_token_mfa_configuration().is_some_and(|c| c.enabled()));

    let pool = ok(client.describe_user_pool().user_pool_id(&id).send().await).user_pool.unwrap();
    assert_eq!(
        pool.mfa_configuration(),
        Some(&UserPoolMfaType::Optional),
        "DescribeUserPool agrees with GetUserPoolMfaConfig"
    );

    // And back off.
    ok(client.set_user_pool_mfa_config().user_pool_id(&id).mfa_configuration(UserPoolMfaType::Off).send().await);
    let got = ok(client.get_user_pool_mfa_config().user_pool_id(&id).send().await);
    assert_eq!(got.mfa_configuration(), Some(&UserPoolMfaType::Off));
    let pool = ok(client.describe_user_pool().user_pool_id(&id).send().await).user_pool.unwrap();
    assert_eq!(pool.mfa_configuration(), Some(&UserPoolMfaType::Off));
}

async fn set_mfa_config_on_without_a_factor_is_rejected(server: &Server) {
    let (id, _) = new_pool(server).await;
    let client = server.idp();
    expect_code(
        client.set_user_pool_mfa_config().user_pool_id(&id).mfa_configuration(UserPoolMfaType::On).send().await,
        "InvalidParameterException",
    );
    let got = ok(client.get_user_pool_mfa_config().user_pool_id(&id).send().await);
    assert_eq!(got.mfa_configuration(), Some(&UserPoolMfaType::Off));
}

async fn mfa_config_unknown_pool(server: &Server) {
    let client = server.idp();
    expect_code(
        client.get_user_pool_mfa_config().user_pool_id("us-east-1_nosuchpool").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        client
            .set_user_pool_mfa_config()
            .user_pool_id("us-east-1_nosuchpool")
            .mfa_configuration(UserPoolMfaType::Off)
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

async fn tag_list_untag_pool(server: &Server) {
    let (id, arn) = new_pool(server).await;
    assert_eq!(arn, format!("arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{id}"));
    let client = server.idp();
    let listed = ok(client.list_tags_for_resource().resource_arn(&arn).send().await);
    assert_eq!(
        listed.tags().cloned().unwrap_or_default(),
        HashMap::from([("created".to_string(), "with-pool".to_string())]),
        "tags given at creation are listed"
    );

    ok(client.tag_resource().resource_arn(&arn).tags("a", "1").tags("b", "2").send().await);
    let listed = ok(client.list_tags_for_resource().resource_arn(&arn).send().await);
    let expected: HashMap<String, String> = [("created", "with-pool"), ("a", "1"), ("b", "2")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(listed.tags().cloned().unwrap_or_default(), expected);

    // Tagging an existing key overwrites its value.
    ok(client.tag_resource().resource_arn(&arn).tags("b", "two").send().await);
    ok(client.untag_resource().resource_arn(&arn).tag_keys("a").tag_keys("created").send().await);
    let listed = ok(client.list_tags_for_resource().resource_arn(&arn).send().await);
    assert_eq!(listed.tags().cloned().unwrap_or_default(), HashMap::from([("b".to_string(), "two".to_string())]));
    // DescribeUserPool shows the same tags.
    let pool = ok(client.describe_user_pool().user_pool_id(&id).send().await).user_pool.unwrap();
    assert_eq!(
        pool.user_pool_tags().cloned().unwrap_or_default(),
        HashMap::from([("b".to_string(), "two".to_string())])
    );
}

async fn tags_unknown_resource(server: &Server) {
    let arn = format!("arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_nosuchpool");
    let client = server.idp();
    expect_code(client.tag_resource().resource_arn(&arn).tags("a", "1").send().await, "ResourceNotFoundException");
    expect_code(client.list_tags_for_resource().resource_arn(&arn).send().await, "ResourceNotFoundException");
    expect_code(client.untag_resource().resource_arn(&arn).tag_keys("a").send().await, "ResourceNotFoundException");
}
