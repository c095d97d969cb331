//! Durability: everything survives a restart on the same data dir (SQLite)
//! or schema (PostgreSQL), and two server processes on one PostgreSQL schema
//! see each other's writes.

use std::collections::HashMap;

use cognate_e2e::idp::types::{
    AttributeDataType, DeletionProtectionType, ExplicitAuthFlowsType, OAuthFlowType, PasswordPolicyType,
    SchemaAttributeType, StringAttributeConstraintsType, UserPoolPolicyType, VerifiedAttributeType,
};
use cognate_e2e::{
    expect_code, free_port, ok, pg_schema_exists, run_cognate_to_exit, unique_name, PgSchema, Server, StoreConfig,
};

struct Created {
    pool_id: String,
    client_id: String,
    secret: String,
    identity_pool_id: String,
}

async fn create_everything(server: &Server) -> Created {
    let idp = server.idp();
    let pool = ok(idp
        .create_user_pool()
        .pool_name(unique_name("durable"))
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(11)
                        .require_symbols(false)
                        .require_numbers(true)
                        .build(),
                )
                .build(),
        )
        .schema(
            SchemaAttributeType::builder()
                .name("tenant")
                .attribute_data_type(AttributeDataType::String)
                .mutable(true)
                .string_attribute_constraints(
                    StringAttributeConstraintsType::builder().min_length("1").max_length("32").build(),
                )
                .build(),
        )
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .deletion_protection(DeletionProtectionType::Inactive)
        .user_pool_tags("durable", "yes")
        .send()
        .await)
    .user_pool
    .unwrap();
    let pool_id = pool.id().unwrap().to_string();
    let client = ok(idp
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("durable-client")
        .generate_secret(true)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .callback_urls("https://durable.example.com/cb")
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_flows_user_pool_client(true)
        .supported_identity_providers("COGNITO")
        .send()
        .await)
    .user_pool_client
    .unwrap();
    let identity_pool = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(unique_name("durable identity"))
        .allow_unauthenticated_identities(true)
        .supported_login_providers("graph.facebook.com", "42")
        .identity_pool_tags("durable", "yes")
        .send()
        .await);
    Created {
        pool_id,
        client_id: client.client_id().unwrap().to_string(),
        secret: client.client_secret().expect("secret").to_string(),
        identity_pool_id: identity_pool.identity_pool_id().to_string(),
    }
}

/// Everything that Describe and List say about the created resources.
#[derive(Debug, PartialEq)]
struct Snapshot {
    pool: cognate_e2e::idp::types::UserPoolType,
    client: cognate_e2e::idp::types::UserPoolClientType,
    identity_pool: IdentityPoolView,
    pool_ids: Vec<String>,
    client_secret_ids: Vec<String>,
}

#[derive(Debug, PartialEq)]
struct IdentityPoolView {
    id: String,
    name: String,
    allow_unauthenticated: bool,
    allow_classic_flow: Option<bool>,
    login_providers: Vec<(String, String)>,
    tags: Vec<(String, String)>,
}

fn sorted_map(m: Option<&HashMap<String, String>>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    v.sort();
    v
}

async fn snapshot(server: &Server, c: &Created) -> Snapshot {
    let idp = server.idp();
    let pool = ok(idp.describe_user_pool().user_pool_id(&c.pool_id).send().await).user_pool.unwrap();
    let client = ok(idp.describe_user_pool_client().user_pool_id(&c.pool_id).client_id(&c.client_id).send().await)
        .user_pool_client
        .unwrap();
    assert_eq!(client.client_secret(), Some(c.secret.as_str()));
    let ip = ok(server.identity().describe_identity_pool().identity_pool_id(&c.identity_pool_id).send().await);
    let mut pool_ids: Vec<String> = ok(idp.list_user_pools().max_results(60).send().await)
        .user_pools()
        .iter()
        .filter_map(|p| p.id().map(str::to_string))
        .collect();
    pool_ids.sort();
    let mut client_secret_ids: Vec<String> =
        ok(idp.list_user_pool_client_secrets().user_pool_id(&c.pool_id).client_id(&c.client_id).send().await)
            .client_secrets()
            .iter()
            .filter_map(|s| s.client_secret_id().map(str::to_string))
            .collect();
    client_secret_ids.sort();
    Snapshot {
        pool,
        client,
        identity_pool: IdentityPoolView {
            id: ip.identity_pool_id().to_string(),
            name: ip.identity_pool_name().to_string(),
            allow_unauthenticated: ip.allow_unauthenticated_identities(),
            allow_classic_flow: ip.allow_classic_flow(),
            login_providers: sorted_map(ip.supported_login_providers()),
            tags: sorted_map(ip.identity_pool_tags()),
        },
        pool_ids,
        client_secret_ids,
    }
}

async fn restart_keeps_everything(server: &mut Server) {
    let created = create_everything(server).await;
    let before = snapshot(server, &created).await;
    server.restart().await;
    assert!(server.port() > 0);
    let after = snapshot(server, &created).await;
    assert_eq!(before.pool, after.pool, "DescribeUserPool differs after a restart");
    assert_eq!(before.client, after.client, "DescribeUserPoolClient differs after a restart");
    assert_eq!(before.identity_pool, after.identity_pool, "DescribeIdentityPool differs after a restart");
    assert_eq!(before, after);

    // The restarted server keeps working: new resources get new ids.
    let second = create_everything(server).await;
    assert_ne!(second.pool_id, created.pool_id);
    assert_ne!(second.client_id, created.client_id);
    assert_ne!(second.identity_pool_id, created.identity_pool_id);
    // And a delete after the restart sticks across another restart.
    ok(server.idp().delete_user_pool().user_pool_id(&second.pool_id).send().await);
    server.restart().await;
    expect_code(
        server.idp().describe_user_pool().user_pool_id(&second.pool_id).send().await,
        "ResourceNotFoundException",
    );
    let again = snapshot(server, &created).await;
    assert_eq!(again.pool, before.pool);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restart_keeps_everything() {
    let mut server = Server::sqlite().await;
    restart_keeps_everything(&mut server).await;
    let entries: Vec<_> = std::fs::read_dir(server.data_dir().join("data")).expect("data dir").collect();
    assert!(!entries.is_empty(), "the SQLite data dir holds files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_keeps_everything() {
    let Some(mut server) = Server::postgres().await else {
        return;
    };
    restart_keeps_everything(&mut server).await;
    if let StoreConfig::Postgres { schema, .. } = server.store() {
        assert!(pg_schema_exists(&schema.url, &schema.name), "the server created its schema {}", schema.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_servers_share_one_schema() {
    let Some(a) = Server::postgres().await else {
        return;
    };
    let b = a.sibling().await;
    assert_ne!(a.port(), b.port());

    // Written on A ...
    let created = create_everything(&a).await;
    // ... read on B, secret included (both share the master key).
    let on_a = snapshot(&a, &created).await;
    let on_b = snapshot(&b, &created).await;
    assert_eq!(on_a, on_b, "both servers describe the same state");
    assert_eq!(on_b.client.client_secret(), Some(created.secret.as_str()));

    // Updated on B, seen on A.
    ok(b.idp()
        .update_user_pool()
        .user_pool_id(&created.pool_id)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(PasswordPolicyType::builder().minimum_length(17).require_uppercase(true).build())
                .build(),
        )
        .user_pool_tags("updated-by", "b")
        .send()
        .await);
    let seen = ok(a.idp().describe_user_pool().user_pool_id(&created.pool_id).send().await).user_pool.unwrap();
    assert_eq!(
        seen.policies().and_then(|p| p.password_policy()).and_then(|p| p.minimum_length()),
        Some(17),
        "A sees B's update"
    );
    assert_eq!(seen.user_pool_tags().and_then(|t| t.get("updated-by")).map(String::as_str), Some("b"));

    // A pool created on B is listed on A.
    let from_b = ok(b.idp().create_user_pool().pool_name(unique_name("from-b")).send().await)
        .user_pool
        .and_then(|p| p.id)
        .unwrap();
    let listed = ok(a.idp().list_user_pools().max_results(60).send().await);
    assert!(listed.user_pools().iter().any(|p| p.id() == Some(from_b.as_str())));

    // Concurrent creates on both servers: all succeed, all ids differ, and
    // both servers list all of them.
    let mut tasks = Vec::new();
    for (i, server) in [&a, &b].into_iter().cycle().take(16).enumerate() {
        let client = server.idp();
        tasks.push(tokio::spawn(async move { client.create_user_pool().pool_name(format!("race-{i}")).send().await }));
    }
    let mut raced = std::collections::HashSet::new();
    for t in tasks {
        raced.insert(ok(t.await.expect("task")).user_pool.unwrap().id.unwrap());
    }
    assert_eq!(raced.len(), 16, "ids must be unique across servers");
    for server in [&a, &b] {
        let listed: std::collections::HashSet<String> = ok(server.idp().list_user_pools().max_results(60).send().await)
            .user_pools()
            .iter()
            .filter_map(|p| p.id().map(str::to_string))
            .collect();
        assert!(raced.is_subset(&listed), "a server misses pools");
    }

    // Deleted on B: A answers ResourceNotFoundException.
    ok(b.idp().delete_user_pool_client().user_pool_id(&created.pool_id).client_id(&created.client_id).send().await);
    expect_code(
        a.idp().describe_user_pool_client().user_pool_id(&created.pool_id).client_id(&created.client_id).send().await,
        "ResourceNotFoundException",
    );
    ok(b.idp().delete_user_pool().user_pool_id(&created.pool_id).send().await);
    expect_code(a.idp().describe_user_pool().user_pool_id(&created.pool_id).send().await, "ResourceNotFoundException");
    ok(b.identity().delete_identity_pool().identity_pool_id(&created.identity_pool_id).send().await);
    expect_code(
        a.identity().describe_identity_pool().identity_pool_id(&created.identity_pool_id).send().await,
        "ResourceNotFoundException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_master_key_refuses_to_start() {
    let Some(schema) = PgSchema::reserve() else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let listen = format!("127.0.0.1:{}", free_port());
    let (status, output) = run_cognate_to_exit(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            data.path().to_str().unwrap(),
            "--database-url",
            &schema.url,
            "--database-schema",
            &schema.name,
        ],
        &[],
        std::time::Duration::from_secs(10),
    )
    .await;
    let status = status.unwrap_or_else(|| panic!("cognate kept running on PostgreSQL without a master key:\n{output}"));
    assert!(!status.success(), "it must exit with an error: {output}");
    assert!(output.to_lowercase().contains("master"), "the error should mention the master key: {output}");
}
