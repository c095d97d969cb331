//! Identity pools (cognito-identity): CreateIdentityPool,
//! DescribeIdentityPool, UpdateIdentityPool, DeleteIdentityPool,
//! ListIdentityPools. Every test runs against SQLite and PostgreSQL.

use std::collections::{HashMap, HashSet};

use cognate_e2e::identity::types::CognitoIdentityProvider;
use cognate_e2e::{both_stores, expect_code, ok, sorted, unique_name, Server, ACCOUNT, REGION};

both_stores!(
    create_identity_pool_echoes_every_parameter,
    create_identity_pool_minimal_defaults,
    create_identity_pool_invalid_input,
    update_identity_pool_changes_are_visible,
    update_identity_pool_unknown_pool,
    delete_identity_pool_then_describe_fails,
    list_identity_pools_paginates,
    identity_pool_not_found_and_malformed_ids,
);

/// Everything an identity pool description carries, for comparisons.
#[derive(Debug, Clone, PartialEq)]
struct View {
    id: String,
    name: String,
    allow_unauthenticated: bool,
    allow_classic_flow: bool,
    login_providers: HashMap<String, String>,
    developer_provider_name: Option<String>,
    oidc: Vec<String>,
    cognito: Vec<(String, String, bool)>,
    saml: Vec<String>,
    tags: HashMap<String, String>,
}

macro_rules! view {
    ($out:expr) => {{
        let o = &$out;
        let mut cognito: Vec<(String, String, bool)> = o
            .cognito_identity_providers()
            .iter()
            .map(|p| {
                (
                    p.provider_name().unwrap_or_default().to_string(),
                    p.client_id().unwrap_or_default().to_string(),
                    p.server_side_token_check().unwrap_or(false),
                )
            })
            .collect();
        cognito.sort();
        View {
            id: o.identity_pool_id().to_string(),
            name: o.identity_pool_name().to_string(),
            allow_unauthenticated: o.allow_unauthenticated_identities(),
            allow_classic_flow: o.allow_classic_flow().unwrap_or(false),
            login_providers: o.supported_login_providers().cloned().unwrap_or_default(),
            developer_provider_name: o.developer_provider_name().map(str::to_string),
            oidc: sorted(o.open_id_connect_provider_arns()),
            cognito,
            saml: sorted(o.saml_provider_arns()),
            tags: o.identity_pool_tags().cloned().unwrap_or_default(),
        }
    }};
}

fn assert_identity_pool_id(id: &str) {
    let uuid = id
        .strip_prefix(&format!("{REGION}:"))
        .unwrap_or_else(|| panic!("identity pool id {id:?} does not start with {REGION}:"));
    let groups: Vec<&str> = uuid.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lens, vec![8, 4, 4, 4, 12], "{id:?} is not region:uuid");
    assert!(
        uuid.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id:?} is not a lowercase uuid"
    );
}

async fn user_pool_provider(server: &Server) -> (String, String) {
    let pool =
        ok(server.idp().create_user_pool().pool_name(unique_name("for-identity")).send().await).user_pool.unwrap();
    let pool_id = pool.id().unwrap().to_string();
    let client_id = ok(server.idp().create_user_pool_client().user_pool_id(&pool_id).client_name("web").send().await)
        .user_pool_client
        .and_then(|c| c.client_id)
        .unwrap();
    (format!("cognito-idp.{REGION}.amazonaws.com/{pool_id}"), client_id)
}

async fn create_identity_pool_echoes_every_parameter(server: &Server) {
    let (provider, client_id) = user_pool_provider(server).await;
    let name = unique_name("identity full");
    let oidc = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/login.example.com");
    let saml = format!("arn:aws:iam::{ACCOUNT}:saml-provider/corp");
    let out = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(&name)
        .allow_unauthenticated_identities(true)
        .allow_classic_flow(true)
        .supported_login_providers("graph.facebook.com", "1234567890")
        .supported_login_providers("accounts.google.com", "google-client.apps")
        .developer_provider_name("login.mycompany.myapp")
        .open_id_connect_provider_arns(&oidc)
        .cognito_identity_providers(
            CognitoIdentityProvider::builder()
                .provider_name(&provider)
                .client_id(&client_id)
                .server_side_token_check(true)
                .build(),
        )
        .saml_provider_arns(&saml)
        .identity_pool_tags("team", "identity")
        .send()
        .await);
    let created = view!(out);
    assert_identity_pool_id(&created.id);
    let expected = View {
        id: created.id.clone(),
        name,
        allow_unauthenticated: true,
        allow_classic_flow: true,
        login_providers: HashMap::from([
            ("graph.facebook.com".to_string(), "1234567890".to_string()),
            ("accounts.google.com".to_string(), "google-client.apps".to_string()),
        ]),
        developer_provider_name: Some("login.mycompany.myapp".to_string()),
        oidc: vec![oidc],
        cognito: vec![(provider, client_id, true)],
        saml: vec![saml],
        tags: HashMap::from([("team".to_string(), "identity".to_string())]),
    };
    assert_eq!(created, expected, "CreateIdentityPool response");
    let described = view!(ok(server.identity().describe_identity_pool().identity_pool_id(&created.id).send().await));
    assert_eq!(described, expected, "DescribeIdentityPool");
}

async fn create_identity_pool_minimal_defaults(server: &Server) {
    let name = unique_name("minimal");
    let out = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(&name)
        .allow_unauthenticated_identities(false)
        .send()
        .await);
    let id = out.identity_pool_id().to_string();
    assert_identity_pool_id(&id);
    let d = view!(ok(server.identity().describe_identity_pool().identity_pool_id(&id).send().await));
    assert_eq!(
        d,
        View {
            id,
            name,
            allow_unauthenticated: false,
            allow_classic_flow: false,
            login_providers: HashMap::new(),
            developer_provider_name: None,
            oidc: vec![],
            cognito: vec![],
            saml: vec![],
            tags: HashMap::new(),
        }
    );
    // Names need not be unique.
    let twin = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(&d.name)
        .allow_unauthenticated_identities(false)
        .send()
        .await);
    assert_ne!(twin.identity_pool_id(), d.id);
}

async fn create_identity_pool_invalid_input(server: &Server) {
    let identity = server.identity();
    // The name allows word characters, whitespace and + = , . @ - only.
    expect_code(
        identity
            .create_identity_pool()
            .identity_pool_name("bad/name!")
            .allow_unauthenticated_identities(false)
            .send()
            .await,
        "InvalidParameterException",
    );
    // AllowUnauthenticatedIdentities is required.
    let raw = server.raw().identity("CreateIdentityPool", serde_json::json!({"IdentityPoolName": "noflag"})).await;
    raw.assert_error("InvalidParameterException");
    let listed = ok(identity.list_identity_pools().max_results(60).send().await);
    assert!(listed.identity_pools().is_empty(), "nothing was created");
}

async fn update_identity_pool_changes_are_visible(server: &Server) {
    let identity = server.identity();
    let created = ok(identity
        .create_identity_pool()
        .identity_pool_name(unique_name("before"))
        .allow_unauthenticated_identities(false)
        .supported_login_providers("graph.facebook.com", "111")
        .send()
        .await);
    let id = created.identity_pool_id().to_string();
    let (provider, client_id) = user_pool_provider(server).await;
    let new_name = unique_name("after");
    let updated = view!(ok(identity
        .update_identity_pool()
        .identity_pool_id(&id)
        .identity_pool_name(&new_name)
        .allow_unauthenticated_identities(true)
        .allow_classic_flow(true)
        .supported_login_providers("www.amazon.com", "amzn1.application.abc")
        .cognito_identity_providers(
            CognitoIdentityProvider::builder()
                .provider_name(&provider)
                .client_id(&client_id)
                .server_side_token_check(false)
                .build(),
        )
        .identity_pool_tags("stage", "two")
        .send()
        .await));
    let expected = View {
        id: id.clone(),
        name: new_name,
        allow_unauthenticated: true,
        allow_classic_flow: true,
        login_providers: HashMap::from([("www.amazon.com".to_string(), "amzn1.application.abc".to_string())]),
        developer_provider_name: None,
        oidc: vec![],
        cognito: vec![(provider, client_id, false)],
        saml: vec![],
        tags: HashMap::from([("stage".to_string(), "two".to_string())]),
    };
    assert_eq!(updated, expected, "UpdateIdentityPool response");
    let described = view!(ok(identity.describe_identity_pool().identity_pool_id(&id).send().await));
    assert_eq!(described, expected, "DescribeIdentityPool after the update");
}

async fn update_identity_pool_unknown_pool(server: &Server) {
    expect_code(
        server
            .identity()
            .update_identity_pool()
            .identity_pool_id(format!("{REGION}:00000000-0000-4000-8000-000000000000"))
            .identity_pool_name("x")
            .allow_unauthenticated_identities(false)
            .send()
            .await,
        "ResourceNotFoundException",
    );
}

async fn delete_identity_pool_then_describe_fails(server: &Server) {
    let identity = server.identity();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            ok(identity
                .create_identity_pool()
                .identity_pool_name(unique_name("del"))
                .allow_unauthenticated_identities(false)
                .send()
                .await)
            .identity_pool_id()
            .to_string(),
        );
    }
    ok(identity.delete_identity_pool().identity_pool_id(&ids[0]).send().await);
    expect_code(identity.describe_identity_pool().identity_pool_id(&ids[0]).send().await, "ResourceNotFoundException");
    expect_code(identity.delete_identity_pool().identity_pool_id(&ids[0]).send().await, "ResourceNotFoundException");
    ok(identity.describe_identity_pool().identity_pool_id(&ids[1]).send().await);
    let listed = ok(identity.list_identity_pools().max_results(60).send().await);
    let listed: Vec<_> = listed.identity_pools().iter().filter_map(|p| p.identity_pool_id()).collect();
    assert_eq!(listed, vec![ids[1].as_str()]);
}

async fn list_identity_pools_paginates(server: &Server) {
    let identity = server.identity();
    let mut created = HashMap::new();
    for _ in 0..5 {
        let name = unique_name("listed");
        let out = ok(identity
            .create_identity_pool()
            .identity_pool_name(&name)
            .allow_unauthenticated_identities(false)
            .send()
            .await);
        created.insert(out.identity_pool_id().to_string(), name);
    }
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ok(identity.list_identity_pools().max_results(2).set_next_token(token.clone()).send().await);
        pages.push(out.identity_pools().len());
        for p in out.identity_pools() {
            let id = p.identity_pool_id().unwrap().to_string();
            assert_eq!(p.identity_pool_name(), created.get(&id).map(String::as_str));
            seen.push(id);
        }
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages.len() <= 5, "pagination does not end");
    }
    assert_eq!(pages, vec![2, 2, 1]);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a pool was listed twice");
    assert_eq!(unique, created.keys().cloned().collect::<HashSet<_>>());

    expect_code(identity.list_identity_pools().max_results(0).send().await, "InvalidParameterException");
    expect_code(identity.list_identity_pools().max_results(61).send().await, "InvalidParameterException");
    server.raw().identity("ListIdentityPools", serde_json::json!({})).await.assert_error("InvalidParameterException");
}

async fn identity_pool_not_found_and_malformed_ids(server: &Server) {
    let identity = server.identity();
    let unknown = format!("{REGION}:11111111-2222-4333-8444-555555555555");
    let msg = expect_code(
        identity.describe_identity_pool().identity_pool_id(&unknown).send().await,
        "ResourceNotFoundException",
    );
    assert!(!msg.is_empty());
    expect_code(identity.delete_identity_pool().identity_pool_id(&unknown).send().await, "ResourceNotFoundException");
    expect_code(identity.describe_identity_pool().identity_pool_id("bad").send().await, "InvalidParameterException");
}
