//! App clients: CreateUserPoolClient, DescribeUserPoolClient,
//! UpdateUserPoolClient, DeleteUserPoolClient, ListUserPoolClients and the
//! client-secret rotation operations. Every test runs against SQLite and
//! PostgreSQL.

use std::collections::HashSet;

use cognate_e2e::idp::types::{
    ExplicitAuthFlowsType, OAuthFlowType, PreventUserExistenceErrorTypes, TimeUnitsType, TokenValidityUnitsType,
    UserPoolClientType,
};
use cognate_e2e::{
    both_stores, epoch, expect_code, expect_err, expect_one_of, now_epoch, ok, sorted, unique_name, Server,
};

both_stores!(
    create_client_with_secret_and_defaults,
    create_client_echoes_every_parameter,
    create_client_with_custom_secret,
    create_client_unknown_pool,
    create_client_invalid_settings_are_rejected,
    client_credentials_without_secret_is_rejected,
    describe_client_unknown_or_wrong_pool,
    update_client_changes_are_visible,
    update_client_unknown_client,
    update_client_resets_omitted_settings_to_defaults,
    delete_client_then_describe_fails,
    delete_pool_deletes_its_clients,
    list_clients_paginates,
    client_secret_rotation,
    client_secret_errors,
);

async fn new_pool(server: &Server) -> String {
    ok(server.idp().create_user_pool().pool_name(unique_name("clients")).send().await)
        .user_pool
        .and_then(|p| p.id)
        .expect("pool id")
}

async fn describe(server: &Server, pool: &str, client: &str) -> UserPoolClientType {
    ok(server.idp().describe_user_pool_client().user_pool_id(pool).client_id(client).send().await)
        .user_pool_client
        .expect("UserPoolClient")
}

async fn count_clients(server: &Server, pool: &str) -> usize {
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let out = ok(server
            .idp()
            .list_user_pool_clients()
            .user_pool_id(pool)
            .max_results(60)
            .set_next_token(token.clone())
            .send()
            .await);
        n += out.user_pool_clients().len();
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return n,
        }
    }
}

fn assert_client_id_format(id: &str) {
    assert_eq!(id.len(), 26, "client id {id:?} is not 26 characters");
    assert!(
        id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "client id {id:?} is not lowercase alphanumeric"
    );
}

fn assert_secret_format(secret: &str) {
    assert!((24..=64).contains(&secret.len()), "secret length {} outside 24..=64", secret.len());
    assert!(
        secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+'),
        "secret {secret:?} does not match [\\w+]+"
    );
}

fn flows(c: &UserPoolClientType) -> Vec<String> {
    let v: Vec<&str> = c.explicit_auth_flows().iter().map(|f| f.as_str()).collect();
    sorted(&v)
}

async fn create_client_with_secret_and_defaults(server: &Server) {
    let pool = new_pool(server).await;
    let before = now_epoch();
    let name = unique_name("app");
    let created = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(&name)
        .generate_secret(true)
        .send()
        .await)
    .user_pool_client
    .expect("UserPoolClient in the response");
    let id = created.client_id().expect("ClientId").to_string();
    assert_client_id_format(&id);
    let secret = created.client_secret().expect("ClientSecret").to_string();
    assert_secret_format(&secret);
    assert_eq!(created.user_pool_id(), Some(pool.as_str()));
    assert_eq!(created.client_name(), Some(name.as_str()));

    let c = describe(server, &pool, &id).await;
    assert_eq!(c.client_id(), Some(id.as_str()));
    assert_eq!(c.user_pool_id(), Some(pool.as_str()));
    assert_eq!(c.client_name(), Some(name.as_str()));
    assert_eq!(c.client_secret(), Some(secret.as_str()), "Describe returns the same secret");
    // Token validity defaults: 30 days / 60 minutes / 60 minutes.
    assert_eq!(c.refresh_token_validity(), 30);
    assert_eq!(c.access_token_validity(), Some(60));
    assert_eq!(c.id_token_validity(), Some(60));
    let units = c.token_validity_units().expect("TokenValidityUnits");
    assert_eq!(units.access_token(), Some(&TimeUnitsType::Minutes));
    assert_eq!(units.id_token(), Some(&TimeUnitsType::Minutes));
    assert_eq!(units.refresh_token(), Some(&TimeUnitsType::Days));
    // Documented defaults: token revocation on, 3-minute auth sessions.
    assert_eq!(c.enable_token_revocation(), Some(true));
    assert_eq!(c.auth_session_validity(), Some(3));
    assert_ne!(c.allowed_o_auth_flows_user_pool_client(), Some(true));
    assert!(c.allowed_o_auth_flows().is_empty());
    let created_at = c.creation_date().map(epoch).expect("CreationDate");
    assert!(created_at >= before - 5.0 && created_at <= now_epoch() + 5.0);
    assert!(c.last_modified_date().map(epoch).expect("LastModifiedDate") >= created_at - 0.001);

    // A client without GenerateSecret has none.
    let public = ok(server.idp().create_user_pool_client().user_pool_id(&pool).client_name("public").send().await)
        .user_pool_client
        .unwrap();
    assert_eq!(public.client_secret(), None);
    let public_id = public.client_id().unwrap();
    assert_client_id_format(public_id);
    assert_ne!(public_id, id, "client ids are unique");
    assert_eq!(describe(server, &pool, public_id).await.client_secret(), None);
}

fn check_full_client(c: &UserPoolClientType, name: &str) {
    assert_eq!(c.client_name(), Some(name));
    assert_eq!(flows(c), vec!["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]);
    assert_eq!(c.callback_urls(), &["https://app.example.com/callback"]);
    assert_eq!(c.logout_urls(), &["https://app.example.com/logout"]);
    assert_eq!(c.default_redirect_uri(), Some("https://app.example.com/callback"));
    assert_eq!(c.allowed_o_auth_flows(), &[OAuthFlowType::Code]);
    assert_eq!(sorted(c.allowed_o_auth_scopes()), vec!["email", "openid"]);
    assert_eq!(c.allowed_o_auth_flows_user_pool_client(), Some(true));
    assert_eq!(c.supported_identity_providers(), &["COGNITO"]);
    assert_eq!(sorted(c.read_attributes()), vec!["email", "email_verified", "name"]);
    assert_eq!(sorted(c.write_attributes()), vec!["email", "name"]);
    assert_eq!(c.prevent_user_existence_errors(), Some(&PreventUserExistenceErrorTypes::Enabled));
    assert_eq!(c.enable_token_revocation(), Some(false));
    assert_eq!(c.auth_session_validity(), Some(10));
    assert_eq!(c.refresh_token_validity(), 12);
    assert_eq!(c.access_token_validity(), Some(2));
    assert_eq!(c.id_token_validity(), Some(90));
    let units = c.token_validity_units().expect("TokenValidityUnits");
    assert_eq!(units.access_token(), Some(&TimeUnitsType::Hours));
    assert_eq!(units.id_token(), Some(&TimeUnitsType::Minutes));
    assert_eq!(units.refresh_token(), Some(&TimeUnitsType::Hours));
    assert!(c.client_secret().is_some());
}

async fn create_client_echoes_every_parameter(server: &Server) {
    let pool = new_pool(server).await;
    let name = unique_name("full");
    let created = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(&name)
        .generate_secret(true)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .callback_urls("https://app.example.com/callback")
        .logout_urls("https://app.example.com/logout")
        .default_redirect_uri("https://app.example.com/callback")
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_scopes("email")
        .allowed_o_auth_flows_user_pool_client(true)
        .supported_identity_providers("COGNITO")
        .read_attributes("email")
        .read_attributes("email_verified")
        .read_attributes("name")
        .write_attributes("email")
        .write_attributes("name")
        .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
        .enable_token_revocation(false)
        .auth_session_validity(10)
        .refresh_token_validity(12)
        .access_token_validity(2)
        .id_token_validity(90)
        .token_validity_units(
            TokenValidityUnitsType::builder()
                .access_token(TimeUnitsType::Hours)
                .id_token(TimeUnitsType::Minutes)
                .refresh_token(TimeUnitsType::Hours)
                .build(),
        )
        .send()
        .await)
    .user_pool_client
    .unwrap();
    check_full_client(&created, &name);
    let described = describe(server, &pool, created.client_id().unwrap()).await;
    check_full_client(&described, &name);
    assert_eq!(described.client_secret(), created.client_secret());
}

async fn create_client_with_custom_secret(server: &Server) {
    let pool = new_pool(server).await;
    let secret = "mycustomsecret0123456789ABCDEFxyz";
    let created = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("custom-secret")
        .generate_secret(true)
        .client_secret(secret)
        .send()
        .await)
    .user_pool_client
    .unwrap();
    assert_eq!(created.client_secret(), Some(secret));
    let c = describe(server, &pool, created.client_id().unwrap()).await;
    assert_eq!(c.client_secret(), Some(secret));
}

async fn create_client_unknown_pool(server: &Server) {
    expect_code(
        server.idp().create_user_pool_client().user_pool_id("us-east-1_nosuchpool").client_name("x").send().await,
        "ResourceNotFoundException",
    );
}

async fn create_client_invalid_settings_are_rejected(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();

    // Access tokens live between 5 minutes and 1 day.
    expect_code(
        client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name("short")
            .access_token_validity(2)
            .token_validity_units(TokenValidityUnitsType::builder().access_token(TimeUnitsType::Minutes).build())
            .send()
            .await,
        "InvalidParameterException",
    );
    // Refresh tokens live at most 10 years.
    expect_code(
        client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name("long")
            .refresh_token_validity(4000)
            .send()
            .await,
        "InvalidParameterException",
    );
    // Callback URLs must be HTTPS unless they point at localhost.
    expect_code(
        client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name("http")
            .callback_urls("http://app.example.com/callback")
            .allowed_o_auth_flows(OAuthFlowType::Code)
            .allowed_o_auth_scopes("openid")
            .allowed_o_auth_flows_user_pool_client(true)
            .supported_identity_providers("COGNITO")
            .send()
            .await,
        "InvalidParameterException",
    );
    // A write attribute the pool does not have.
    expect_code(
        client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name("attrs")
            .write_attributes("custom:nope")
            .send()
            .await,
        "InvalidParameterException",
    );
    // A scope no resource server defines.
    expect_one_of(
        client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name("scope")
            .callback_urls("https://app.example.com/callback")
            .allowed_o_auth_flows(OAuthFlowType::Code)
            .allowed_o_auth_scopes("nosuchserver/read")
            .allowed_o_auth_flows_user_pool_client(true)
            .supported_identity_providers("COGNITO")
            .send()
            .await,
        &["ScopeDoesNotExistException", "InvalidParameterException"],
    );
    assert_eq!(count_clients(server, &pool).await, 0, "nothing was created");
    // http://localhost is allowed.
    ok(client
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("localhost")
        .callback_urls("http://localhost:3000/callback")
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_flows_user_pool_client(true)
        .supported_identity_providers("COGNITO")
        .send()
        .await);
}

async fn client_credentials_without_secret_is_rejected(server: &Server) {
    let pool = new_pool(server).await;
    let res = server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("m2m")
        .generate_secret(false)
        .allowed_o_auth_flows(OAuthFlowType::ClientCredentials)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_flows_user_pool_client(true)
        .send()
        .await;
    expect_one_of(res, &["InvalidOAuthFlowException", "InvalidParameterException"]);
    assert_eq!(count_clients(server, &pool).await, 0, "nothing was created");
}

async fn describe_client_unknown_or_wrong_pool(server: &Server) {
    let pool = new_pool(server).await;
    let other_pool = new_pool(server).await;
    let client = server.idp();
    let msg = expect_code(
        client.describe_user_pool_client().user_pool_id(&pool).client_id("26charsofnothing0000000000").send().await,
        "ResourceNotFoundException",
    );
    assert!(!msg.is_empty(), "the error has a message");
    let id = ok(client.create_user_pool_client().user_pool_id(&pool).client_name("mine").send().await)
        .user_pool_client
        .and_then(|c| c.client_id)
        .unwrap();
    // The client exists, but not in that pool.
    expect_code(
        client.describe_user_pool_client().user_pool_id(&other_pool).client_id(&id).send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        client.describe_user_pool_client().user_pool_id("us-east-1_nosuchpool").client_id(&id).send().await,
        "ResourceNotFoundException",
    );
}

async fn update_client_changes_are_visible(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();
    let created = ok(client
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("before")
        .generate_secret(true)
        .send()
        .await)
    .user_pool_client
    .unwrap();
    let id = created.client_id().unwrap();
    let updated = ok(client
        .update_user_pool_client()
        .user_pool_id(&pool)
        .client_id(id)
        .client_name("after")
        .refresh_token_validity(10)
        .access_token_validity(30)
        .id_token_validity(30)
        .token_validity_units(
            TokenValidityUnitsType::builder()
                .access_token(TimeUnitsType::Minutes)
                .id_token(TimeUnitsType::Minutes)
                .refresh_token(TimeUnitsType::Days)
                .build(),
        )
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .callback_urls("https://new.example.com/cb")
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_flows_user_pool_client(true)
        .supported_identity_providers("COGNITO")
        .send()
        .await)
    .user_pool_client
    .expect("UserPoolClient in the UpdateUserPoolClient response");
    assert_eq!(updated.client_name(), Some("after"));

    let c = describe(server, &pool, id).await;
    assert_eq!(c.client_name(), Some("after"));
    assert_eq!(c.refresh_token_validity(), 10);
    assert_eq!(c.access_token_validity(), Some(30));
    assert_eq!(c.id_token_validity(), Some(30));
    assert_eq!(flows(&c), vec!["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]);
    assert_eq!(c.callback_urls(), &["https://new.example.com/cb"]);
    assert_eq!(c.allowed_o_auth_flows(), &[OAuthFlowType::Code]);
    assert_eq!(c.allowed_o_auth_flows_user_pool_client(), Some(true));
    // The secret and identity do not change on update.
    assert_eq!(c.client_secret(), created.client_secret());
    assert_eq!(c.client_id(), Some(id));
    assert_eq!(c.creation_date().map(epoch), created.creation_date().map(epoch));
    assert!(c.last_modified_date().map(epoch) >= created.last_modified_date().map(epoch));
}

/// AWS documents that UpdateUserPoolClient sets every setting the request
/// leaves out back to its default value.
async fn update_client_resets_omitted_settings_to_defaults(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();
    let created = ok(client
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("configured")
        .callback_urls("https://app.example.com/callback")
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_flows_user_pool_client(true)
        .supported_identity_providers("COGNITO")
        .refresh_token_validity(5)
        .auth_session_validity(12)
        .send()
        .await)
    .user_pool_client
    .unwrap();
    let id = created.client_id().unwrap();
    ok(client.update_user_pool_client().user_pool_id(&pool).client_id(id).client_name("renamed").send().await);
    let c = describe(server, &pool, id).await;
    assert_eq!(c.client_name(), Some("renamed"));
    assert!(c.callback_urls().is_empty(), "{:?}", c.callback_urls());
    assert!(c.allowed_o_auth_flows().is_empty());
    assert!(c.allowed_o_auth_scopes().is_empty());
    assert_ne!(c.allowed_o_auth_flows_user_pool_client(), Some(true));
    assert_eq!(c.refresh_token_validity(), 30);
    assert_eq!(c.auth_session_validity(), Some(3));
}

async fn update_client_unknown_client(server: &Server) {
    let pool = new_pool(server).await;
    expect_code(
        server
            .idp()
            .update_user_pool_client()
            .user_pool_id(&pool)
            .client_id("26charsofnothing0000000000")
            .client_name("x")
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

async fn delete_client_then_describe_fails(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        ids.push(
            ok(client.create_user_pool_client().user_pool_id(&pool).client_name(name).send().await)
                .user_pool_client
                .and_then(|c| c.client_id)
                .unwrap(),
        );
    }
    ok(client.delete_user_pool_client().user_pool_id(&pool).client_id(&ids[0]).send().await);
    expect_code(
        client.describe_user_pool_client().user_pool_id(&pool).client_id(&ids[0]).send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        client.delete_user_pool_client().user_pool_id(&pool).client_id(&ids[0]).send().await,
        "ResourceNotFoundException",
    );
    // The other client is still there.
    describe(server, &pool, &ids[1]).await;
    assert_eq!(count_clients(server, &pool).await, 1);
}

async fn delete_pool_deletes_its_clients(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();
    let id = ok(client.create_user_pool_client().user_pool_id(&pool).client_name("doomed").send().await)
        .user_pool_client
        .and_then(|c| c.client_id)
        .unwrap();
    ok(client.delete_user_pool().user_pool_id(&pool).send().await);
    expect_code(
        client.describe_user_pool_client().user_pool_id(&pool).client_id(&id).send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        client.list_user_pool_clients().user_pool_id(&pool).max_results(10).send().await,
        "ResourceNotFoundException",
    );
}

async fn list_clients_paginates(server: &Server) {
    let pool = new_pool(server).await;
    let other = new_pool(server).await;
    let client = server.idp();
    let mut created = HashSet::new();
    for i in 0..5 {
        let c =
            ok(client.create_user_pool_client().user_pool_id(&pool).client_name(format!("client-{i}")).send().await)
                .user_pool_client
                .unwrap();
        created.insert(c.client_id().unwrap().to_string());
    }
    // A client in another pool must not show up.
    ok(client.create_user_pool_client().user_pool_id(&other).client_name("elsewhere").send().await);

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(client
            .list_user_pool_clients()
            .user_pool_id(&pool)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await);
        pages.push(out.user_pool_clients().len());
        for c in out.user_pool_clients() {
            assert_eq!(c.user_pool_id(), Some(pool.as_str()));
            assert!(c.client_name().is_some_and(|n| n.starts_with("client-")));
            seen.push(c.client_id().unwrap().to_string());
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages.len() <= 5, "pagination does not end");
    }
    assert_eq!(pages, vec![2, 2, 1]);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a client was listed twice");
    assert_eq!(unique, created);

    expect_code(
        client.list_user_pool_clients().user_pool_id(&pool).max_results(0).send().await,
        "InvalidParameterException",
    );
}

async fn client_secret_rotation(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();
    let created = ok(client
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("rotating")
        .generate_secret(true)
        .send()
        .await)
    .user_pool_client
    .unwrap();
    let id = created.client_id().unwrap();

    let list = ok(client.list_user_pool_client_secrets().user_pool_id(&pool).client_id(id).send().await);
    assert_eq!(list.client_secrets().len(), 1, "the generated secret");
    let original_id = list.client_secrets()[0].client_secret_id().expect("ClientSecretId").to_string();
    assert_eq!(list.client_secrets()[0].client_secret_value(), None);

    let added = ok(client.add_user_pool_client_secret().user_pool_id(&pool).client_id(id).send().await)
        .client_secret_descriptor
        .expect("ClientSecretDescriptor");
    let new_id = added.client_secret_id().expect("ClientSecretId").to_string();
    let new_value = added.client_secret_value().expect("the new secret's value is returned once").to_string();
    assert_secret_format(&new_value);
    assert_ne!(Some(new_value.as_str()), created.client_secret());
    assert_ne!(new_id, original_id);
    assert!(added.client_secret_create_date().is_some());

    let list = ok(client.list_user_pool_client_secrets().user_pool_id(&pool).client_id(id).send().await);
    let ids: HashSet<_> = list.client_secrets().iter().map(|s| s.client_secret_id().unwrap().to_string()).collect();
    assert_eq!(ids, HashSet::from([original_id.clone(), new_id.clone()]));
    assert!(
        list.client_secrets().iter().all(|s| s.client_secret_value().is_none()),
        "ListUserPoolClientSecrets must not return secret values"
    );
    assert!(list.client_secrets().iter().all(|s| s.client_secret_create_date().is_some()));

    // At most two secrets.
    let third = expect_err(client.add_user_pool_client_secret().user_pool_id(&pool).client_id(id).send().await);
    assert_eq!(third.status, 400, "{third:?}");
    assert!(["LimitExceededException", "InvalidParameterException"].contains(&third.code.as_str()), "{third:?}");

    // Retire the original secret; the new one remains.
    ok(client
        .delete_user_pool_client_secret()
        .user_pool_id(&pool)
        .client_id(id)
        .client_secret_id(&original_id)
        .send()
        .await);
    let list = ok(client.list_user_pool_client_secrets().user_pool_id(&pool).client_id(id).send().await);
    assert_eq!(list.client_secrets().len(), 1);
    assert_eq!(list.client_secrets()[0].client_secret_id(), Some(new_id.as_str()));
    let c = describe(server, &pool, id).await;
    assert_eq!(c.client_secret(), Some(new_value.as_str()), "Describe shows the remaining secret");

    // The last secret cannot be deleted.
    let last = expect_err(
        client
            .delete_user_pool_client_secret()
            .user_pool_id(&pool)
            .client_id(id)
            .client_secret_id(&new_id)
            .send()
            .await,
    );
    assert_eq!(last.status, 400, "{last:?}");
    let list = ok(client.list_user_pool_client_secrets().user_pool_id(&pool).client_id(id).send().await);
    assert_eq!(list.client_secrets().len(), 1, "the last secret stays");

    // A caller-chosen secret value.
    let custom = "rotatedcustomsecret0123456789abcd";
    let added =
        ok(client.add_user_pool_client_secret().user_pool_id(&pool).client_id(id).client_secret(custom).send().await)
            .client_secret_descriptor
            .unwrap();
    assert_eq!(added.client_secret_value(), Some(custom));
}

async fn client_secret_errors(server: &Server) {
    let pool = new_pool(server).await;
    let client = server.idp();
    let id =
        ok(client.create_user_pool_client().user_pool_id(&pool).client_name("s").generate_secret(true).send().await)
            .user_pool_client
            .and_then(|c| c.client_id)
            .unwrap();
    expect_code(
        client.list_user_pool_client_secrets().user_pool_id(&pool).client_id("26charsofnothing0000000000").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        client.add_user_pool_client_secret().user_pool_id("us-east-1_nosuchpool").client_id(&id).send().await,
        "ResourceNotFoundException",
    );
    let unknown = expect_err(
        client
            .delete_user_pool_client_secret()
            .user_pool_id(&pool)
            .client_id(&id)
            .client_secret_id("nosuchsecretid")
            .send()
            .await,
    );
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert!(["ResourceNotFoundException", "InvalidParameterException"].contains(&unknown.code.as_str()), "{unknown:?}");
    let list = ok(client.list_user_pool_client_secrets().user_pool_id(&pool).client_id(&id).send().await);
    assert_eq!(list.client_secrets().len(), 1);
}
