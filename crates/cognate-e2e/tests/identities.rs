//! Identity pools' identities with the Rust SDK: GetId (guest and with user-pool logins),
//! GetCredentialsForIdentity and the temporary credentials Cognate accepts on SigV4, role
//! rules, ServerSideTokenCheck, DescribeIdentity, ListIdentities, DeleteIdentities. Every
//! test runs against SQLite and PostgreSQL (two nodes sharing PostgreSQL in the last).

use std::collections::{HashMap, HashSet};

use aws_credential_types::Credentials;
use cognate_e2e::identity::types::{
    AmbiguousRoleResolutionType, CognitoIdentityProvider, MappingRule, MappingRuleMatchType, RoleMapping,
    RoleMappingType, RulesConfigurationType,
};
use cognate_e2e::idp::types::{AuthFlowType, ExplicitAuthFlowsType, MessageActionType};
use cognate_e2e::{b64url_decode, both_stores, expect_err, ok, unique_name, ErrInfo, Server, ACCOUNT, REGION};
use serde_json::Value;

both_stores!(
    a_guest_gets_credentials_that_sign_calls,
    guests_are_refused_where_the_pool_allows_none,
    a_login_gets_the_same_identity_every_time_even_in_a_race,
    signed_in_credentials_need_a_login_of_the_identity,
    a_guest_that_signs_in_keeps_its_identity,
    tokens_of_other_clients_and_pools_are_refused,
    server_side_token_check_refuses_signed_out_tokens,
    role_rules_choose_by_group_and_deny_refuses,
    identities_are_listed_described_and_deleted,
    credentials_from_one_node_are_accepted_by_another,
    open_id_tokens_name_the_identity_and_their_keys_are_served,
    developer_identities_are_vouched_for_looked_up_merged_and_unlinked,
    a_user_unlinks_a_login_and_principal_tags_are_kept,
    sts_answers_the_classic_flow_only_where_the_pool_allows_it,
);

const PASSWORD: &str = "Corr3ct-horse!";
const AUTH_ROLE: &str = "arn:aws:iam::000000000000:role/authenticated";
const GUEST_ROLE: &str = "arn:aws:iam::000000000000:role/guest";

/// A user pool with an admin-password client and a confirmed user, and an identity pool
/// that trusts the client.
struct Setup {
    user_pool: String,
    client: String,
    identity_pool: String,
}

impl Setup {
    fn provider(&self) -> String {
        format!("cognito-idp.{REGION}.amazonaws.com/{}", self.user_pool)
    }
}

async fn user_pool_client(server: &Server, pool: &str) -> String {
    ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name(unique_name("app"))
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await)
    .user_pool_client
    .and_then(|c| c.client_id)
    .expect("ClientId")
}

async fn create_user(server: &Server, pool: &str, username: &str) {
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .temporary_password("Temp-Passw0rd")
        .message_action(MessageActionType::Suppress)
        .send()
        .await);
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(username)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
}

async fn setup(server: &Server, allow_guests: bool, server_side_check: bool) -> Setup {
    let user_pool = server.new_pool(|p| p).await;
    let client = user_pool_client(server, &user_pool).await;
    create_user(server, &user_pool, "alice").await;
    let provider = CognitoIdentityProvider::builder()
        .provider_name(format!("cognito-idp.{REGION}.amazonaws.com/{user_pool}"))
        .client_id(&client)
        .server_side_token_check(server_side_check)
        .build();
    let identity_pool = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(unique_name("ids"))
        .allow_unauthenticated_identities(allow_guests)
        .cognito_identity_providers(provider)
        .send()
        .await)
    .identity_pool_id;
    ok(server
        .identity()
        .set_identity_pool_roles()
        .identity_pool_id(&identity_pool)
        .roles("authenticated", AUTH_ROLE)
        .roles("unauthenticated", GUEST_ROLE)
        .send()
        .await);
    Setup { user_pool, client, identity_pool }
}

/// A fresh ID token of `username`.
async fn id_token(server: &Server, pool: &str, client: &str, username: &str) -> String {
    let out = ok(server
        .idp()
        .admin_initiate_auth()
        .user_pool_id(pool)
        .client_id(client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await);
    out.authentication_result().and_then(|r| r.id_token()).expect("IdToken").to_string()
}

fn logins(provider: &str, token: &str) -> HashMap<String, String> {
    HashMap::from([(provider.to_owned(), token.to_owned())])
}

async fn get_id(server: &Server, pool: &str, logins: Option<HashMap<String, String>>) -> String {
    ok(server.identity().get_id().identity_pool_id(pool).set_logins(logins).send().await)
        .identity_id
        .expect("IdentityId")
}

/// The role a session token names is not readable by clients; what they can check is that
/// the credentials are well-formed, and that Cognate accepts them.
struct Issued {
    identity_id: String,
    credentials: Credentials,
}

async fn credentials(server: &Server, identity_id: &str, logins: Option<HashMap<String, String>>) -> Issued {
    let out =
        ok(server.identity().get_credentials_for_identity().identity_id(identity_id).set_logins(logins).send().await);
    let c = out.credentials.expect("Credentials");
    let (key, secret, token) =
        (c.access_key_id.expect("key"), c.secret_key.expect("secret"), c.session_token.expect("token"));
    assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    assert_eq!(secret.len(), 40);
    let expires = c.expiration.expect("Expiration").secs();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((expires - now - 3600).abs() < 120, "credentials last an hour: {expires} vs {now}");
    Issued {
        identity_id: out.identity_id.expect("IdentityId"),
        credentials: Credentials::new(key, secret, Some(token), None, "identity"),
    }
}

/// The error of a GetCredentialsForIdentity that must fail.
async fn credentials_refused(server: &Server, identity_id: &str, logins: Option<HashMap<String, String>>) -> ErrInfo {
    expect_err(
        server.identity().get_credentials_for_identity().identity_id(identity_id).set_logins(logins).send().await,
    )
}

/// The error of a GetId that must fail.
async fn get_id_refused(server: &Server, pool: &str, logins: Option<HashMap<String, String>>) -> ErrInfo {
    expect_err(server.identity().get_id().identity_pool_id(pool).set_logins(logins).send().await)
}

/// A call signed with `credentials`: it passes SigV4, and is then refused for what it asks
/// (an identity may not administer pools), which shows the key and session token verified.
async fn assert_accepted(server: &Server, credentials: &Credentials, identity_pool: &str) {
    let client = cognate_e2e::identity::Client::new(&server.sdk_config_with(credentials.clone()));
    let err = expect_err(client.describe_identity_pool().identity_pool_id(identity_pool).send().await);
    assert_eq!((err.status, err.code.as_str()), (400, "AccessDeniedException"), "{err:?}");
}

async fn assert_refused(server: &Server, credentials: Credentials, identity_pool: &str) {
    let client = cognate_e2e::identity::Client::new(&server.sdk_config_with(credentials));
    let err = expect_err(client.describe_identity_pool().identity_pool_id(identity_pool).send().await);
    assert_eq!(err.code, "UnrecognizedClientException", "{err:?}");
}

async fn a_guest_gets_credentials_that_sign_calls(server: &Server) {
    let s = setup(server, true, false).await;
    let id = get_id(server, &s.identity_pool, None).await;
    assert!(id.starts_with(&format!("{REGION}:")), "{id}");
    assert_ne!(get_id(server, &s.identity_pool, None).await, id, "each guest GetId is a new identity");
    let issued = credentials(server, &id, None).await;
    assert_eq!(issued.identity_id, id);
    assert_accepted(server, &issued.credentials, &s.identity_pool).await;
    // The session token is bound to its key and cannot be altered or left out.
    let c = &issued.credentials;
    let token = c.session_token().expect("token").to_owned();
    let mut altered = token.clone().into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("utf8");
    assert_refused(
        server,
        Credentials::new(c.access_key_id(), c.secret_access_key(), Some(altered), None, "x"),
        &s.identity_pool,
    )
    .await;
    assert_refused(
        server,
        Credentials::new(c.access_key_id(), c.secret_access_key(), None, None, "x"),
        &s.identity_pool,
    )
    .await;
    let other = credentials(server, &get_id(server, &s.identity_pool, None).await, None).await.credentials;
    let swapped =
        Credentials::new(c.access_key_id(), c.secret_access_key(), other.session_token().map(str::to_owned), None, "x");
    assert_refused(server, swapped, &s.identity_pool).await;
    let err = credentials_refused(server, &format!("{REGION}:00000000-0000-4000-8000-000000000000"), None).await;
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
}

async fn guests_are_refused_where_the_pool_allows_none(server: &Server) {
    let s = setup(server, false, false).await;
    let err = get_id_refused(server, &s.identity_pool, None).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    assert!(err.message.contains("Unauthenticated access is not supported"), "{}", err.message);
    let before =
        ok(server.identity().list_identities().identity_pool_id(&s.identity_pool).max_results(60).send().await);
    assert!(before.identities().is_empty(), "no identity was created");
    // An account other than the server's names no pool of it.
    let err = expect_err(
        server.identity().get_id().account_id("123456789012").identity_pool_id(&s.identity_pool).send().await,
    );
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
    let _ = ACCOUNT;
}

async fn a_login_gets_the_same_identity_every_time_even_in_a_race(server: &Server) {
    let s = setup(server, true, false).await;
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (server_url, pool, provider, token) =
            (server.identity(), s.identity_pool.clone(), s.provider(), token.clone());
        calls.push(tokio::spawn(async move {
            ok(server_url.get_id().identity_pool_id(pool).set_logins(Some(logins(&provider, &token))).send().await)
                .identity_id
                .expect("IdentityId")
        }));
    }
    let mut ids = HashSet::new();
    for call in calls {
        ids.insert(call.await.expect("task"));
    }
    assert_eq!(ids.len(), 1, "eight racing first sign-ins made {ids:?}");
    let id = ids.into_iter().next().expect("one id");
    // A later token of the same user, and the issuer-derived provider name Amplify sends.
    let later = id_token(server, &s.user_pool, &s.client, "alice").await;
    assert_eq!(get_id(server, &s.identity_pool, Some(logins(&s.provider(), &later))).await, id);
    let amplify_name = format!("{}/{}", server.url().trim_start_matches("http://"), s.user_pool);
    assert_eq!(get_id(server, &s.identity_pool, Some(logins(&amplify_name, &later))).await, id);
    // Another user is another identity.
    create_user(server, &s.user_pool, "bob").await;
    let bob = id_token(server, &s.user_pool, &s.client, "bob").await;
    assert_ne!(get_id(server, &s.identity_pool, Some(logins(&s.provider(), &bob))).await, id);
}

async fn signed_in_credentials_need_a_login_of_the_identity(server: &Server) {
    let s = setup(server, true, false).await;
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    let id = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
    let issued = credentials(server, &id, Some(logins(&s.provider(), &token))).await;
    assert_eq!(issued.identity_id, id);
    assert_accepted(server, &issued.credentials, &s.identity_pool).await;
    let err = credentials_refused(server, &id, None).await;
    assert_eq!(err.code, "NotAuthorizedException", "without a login: {err:?}");
    create_user(server, &s.user_pool, "bob").await;
    let bob = id_token(server, &s.user_pool, &s.client, "bob").await;
    let err = credentials_refused(server, &id, Some(logins(&s.provider(), &bob))).await;
    assert_eq!(err.code, "NotAuthorizedException", "another user's login: {err:?}");
    let described = ok(server.identity().describe_identity().identity_id(&id).send().await);
    assert_eq!(described.logins(), [s.provider()]);
}

async fn a_guest_that_signs_in_keeps_its_identity(server: &Server) {
    let s = setup(server, true, false).await;
    let guest = get_id(server, &s.identity_pool, None).await;
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    let issued = credentials(server, &guest, Some(logins(&s.provider(), &token))).await;
    assert_eq!(issued.identity_id, guest, "the guest identity became alice's");
    assert_eq!(get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await, guest);
    // A second guest signing in as alice joins alice's identity.
    let second = get_id(server, &s.identity_pool, None).await;
    let merged = credentials(server, &second, Some(logins(&s.provider(), &token))).await;
    assert_eq!(merged.identity_id, guest);
    let err = expect_err(server.identity().describe_identity().identity_id(&second).send().await);
    assert_eq!(err.code, "ResourceNotFoundException", "the merged guest is gone: {err:?}");
}

async fn tokens_of_other_clients_and_pools_are_refused(server: &Server) {
    let s = setup(server, true, false).await;
    // A client of the same user pool that the identity pool does not name.
    let stranger = user_pool_client(server, &s.user_pool).await;
    let token = id_token(server, &s.user_pool, &stranger, "alice").await;
    let err = get_id_refused(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    // A token of another user pool under this pool's provider name.
    let other_pool = server.new_pool(|p| p).await;
    let other_client = user_pool_client(server, &other_pool).await;
    create_user(server, &other_pool, "alice").await;
    let foreign = id_token(server, &other_pool, &other_client, "alice").await;
    let err = get_id_refused(server, &s.identity_pool, Some(logins(&s.provider(), &foreign))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    // A forged token: the right shape, a signature of nothing.
    let good = id_token(server, &s.user_pool, &s.client, "alice").await;
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[2] = "AAAA";
    let forged = parts.join(".");
    let err = get_id_refused(server, &s.identity_pool, Some(logins(&s.provider(), &forged))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    // A provider the pool does not trust at all.
    let err = get_id_refused(server, &s.identity_pool, Some(logins("accounts.google.com", &good))).await;
    assert_eq!(err.code, "InvalidParameterException", "{err:?}");
}

async fn server_side_token_check_refuses_signed_out_tokens(server: &Server) {
    let s = setup(server, true, true).await;
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    let id = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
    ok(server.idp().admin_user_global_sign_out().user_pool_id(&s.user_pool).username("alice").send().await);
    let err = credentials_refused(server, &id, Some(logins(&s.provider(), &token))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    let fresh = id_token(server, &s.user_pool, &s.client, "alice").await;
    credentials(server, &id, Some(logins(&s.provider(), &fresh))).await;
    // Without the check, a signed-out token still works until it expires, as in Cognito.
    let lax = setup(server, true, false).await;
    let token = id_token(server, &lax.user_pool, &lax.client, "alice").await;
    ok(server.idp().admin_user_global_sign_out().user_pool_id(&lax.user_pool).username("alice").send().await);
    get_id(server, &lax.identity_pool, Some(logins(&lax.provider(), &token))).await;
}

async fn role_rules_choose_by_group_and_deny_refuses(server: &Server) {
    let s = setup(server, true, false).await;
    ok(server.idp().create_group().user_pool_id(&s.user_pool).group_name("admins").send().await);
    ok(server
        .idp()
        .admin_add_user_to_group()
        .user_pool_id(&s.user_pool)
        .username("alice")
        .group_name("admins")
        .send()
        .await);
    create_user(server, &s.user_pool, "bob").await;
    let rule = MappingRule::builder()
        .claim("cognito:groups")
        .match_type(MappingRuleMatchType::Contains)
        .value("admins")
        .role_arn("arn:aws:iam::000000000000:role/admins")
        .build()
        .expect("rule");
    let mapping = RoleMapping::builder()
        .r#type(RoleMappingType::Rules)
        .ambiguous_role_resolution(AmbiguousRoleResolutionType::Deny)
        .rules_configuration(RulesConfigurationType::builder().rules(rule).build().expect("rules"))
        .build()
        .expect("mapping");
    ok(server
        .identity()
        .set_identity_pool_roles()
        .identity_pool_id(&s.identity_pool)
        .roles("authenticated", AUTH_ROLE)
        .roles("unauthenticated", GUEST_ROLE)
        .role_mappings(format!("{}:{}", s.provider(), s.client), mapping)
        .send()
        .await);
    let roles = ok(server.identity().get_identity_pool_roles().identity_pool_id(&s.identity_pool).send().await);
    assert_eq!(roles.roles().map(|r| r.len()), Some(2));
    assert_eq!(roles.role_mappings().map(|m| m.len()), Some(1));
    let alice = id_token(server, &s.user_pool, &s.client, "alice").await;
    let alice_id = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &alice))).await;
    credentials(server, &alice_id, Some(logins(&s.provider(), &alice))).await;
    // Bob is in no group: no rule matches, and Deny refuses.
    let bob = id_token(server, &s.user_pool, &s.client, "bob").await;
    let bob_id = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &bob))).await;
    let err = credentials_refused(server, &bob_id, Some(logins(&s.provider(), &bob))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    // A pool without roles cannot hand out credentials.
    ok(server
        .identity()
        .set_identity_pool_roles()
        .identity_pool_id(&s.identity_pool)
        .set_roles(Some(HashMap::new()))
        .send()
        .await);
    let guest = get_id(server, &s.identity_pool, None).await;
    let err = credentials_refused(server, &guest, None).await;
    assert_eq!(err.code, "InvalidIdentityPoolConfigurationException", "{err:?}");
    // Only the two role names exist.
    let err = expect_err(
        server
            .identity()
            .set_identity_pool_roles()
            .identity_pool_id(&s.identity_pool)
            .roles("admin", AUTH_ROLE)
            .send()
            .await,
    );
    assert_eq!(err.code, "InvalidParameterException", "{err:?}");
}

async fn identities_are_listed_described_and_deleted(server: &Server) {
    let s = setup(server, true, false).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(get_id(server, &s.identity_pool, None).await);
    }
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    made.push(get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await);
    let mut listed = Vec::new();
    let mut next = None;
    loop {
        let page = ok(server
            .identity()
            .list_identities()
            .identity_pool_id(&s.identity_pool)
            .max_results(2)
            .set_next_token(next)
            .send()
            .await);
        assert!(page.identities().len() <= 2);
        listed.extend(page.identities().iter().filter_map(|i| i.identity_id.clone()));
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    let mut sorted_made = made.clone();
    sorted_made.sort();
    assert_eq!(listed, sorted_made, "every identity once, in id order");
    let described = ok(server.identity().describe_identity().identity_id(&made[0]).send().await);
    assert!(described.logins().is_empty() && described.creation_date.is_some());
    let deleted = ok(server
        .identity()
        .delete_identities()
        .identity_ids_to_delete(&made[0])
        .identity_ids_to_delete(&made[5])
        .send()
        .await);
    assert!(deleted.unprocessed_identity_ids().is_empty());
    let err = expect_err(server.identity().describe_identity().identity_id(&made[0]).send().await);
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
    let left = ok(server.identity().list_identities().identity_pool_id(&s.identity_pool).max_results(60).send().await);
    assert_eq!(left.identities().len(), 4);
    // Alice's login was deleted with her identity: she gets a new one.
    let again = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
    assert!(!made.contains(&again));
}

async fn credentials_from_one_node_are_accepted_by_another(server: &Server) {
    let s = setup(server, true, false).await;
    let issued = credentials(server, &get_id(server, &s.identity_pool, None).await, None).await;
    if server.is_postgres() {
        // Nodes behind one name share one public URL, and so one token issuer.
        let url = server.url();
        let other = server.sibling_with(&["--public-url", &url]).await;
        assert_accepted(&other, &issued.credentials, &s.identity_pool).await;
        let token = id_token(&other, &s.user_pool, &s.client, "alice").await;
        let id = get_id(&other, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
        assert_eq!(get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await, id);
    } else {
        assert_accepted(server, &issued.credentials, &s.identity_pool).await;
    }
}

/// Header and claims of a compact JWS (not verified here).
fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let json = |part: &str| -> Value { serde_json::from_slice(&b64url_decode(part)).expect("JSON") };
    (json(parts[0]), json(parts[1]))
}

async fn open_id_tokens_name_the_identity_and_their_keys_are_served(server: &Server) {
    let s = setup(server, true, false).await;
    let guest = get_id(server, &s.identity_pool, None).await;
    let out = ok(server.identity().get_open_id_token().identity_id(&guest).send().await);
    assert_eq!(out.identity_id.as_deref(), Some(guest.as_str()));
    let (header, claims) = jwt_parts(out.token.as_deref().expect("Token"));
    let issuer = format!("{}/{}", server.url(), s.identity_pool);
    assert_eq!(header["alg"], "RS256");
    assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some(issuer.as_str()), Some(guest.as_str())));
    assert_eq!(claims["aud"], s.identity_pool.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["unauthenticated"]));
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    assert_eq!(lifetime, 600, "ten minutes");
    // The issuer's discovery document and JWKS are served, with the token's key.
    let discovery = server.raw().get(&format!("/{}/.well-known/openid-configuration", s.identity_pool)).await;
    assert_eq!(discovery.status, 200, "{}", discovery.body);
    assert_eq!(discovery.json()["issuer"], issuer.as_str());
    let jwks = server.raw().get(&format!("/{}/.well-known/jwks.json", s.identity_pool)).await.json();
    let kids: Vec<&str> = jwks["keys"].as_array().into_iter().flatten().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids, [header["kid"].as_str().unwrap_or_default()]);
    // A signed-in identity's token says how it signed in; its key is the pool's one key.
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    let alice = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
    let out = ok(server
        .identity()
        .get_open_id_token()
        .identity_id(&alice)
        .set_logins(Some(logins(&s.provider(), &token)))
        .send()
        .await);
    let (header2, claims) = jwt_parts(out.token.as_deref().expect("Token"));
    assert_eq!(header2["kid"], header["kid"]);
    assert_eq!(claims["amr"][0], "authenticated");
    assert_eq!(claims["amr"][1], s.provider().as_str());
    let err = expect_err(server.identity().get_open_id_token().identity_id(&alice).send().await);
    assert_eq!(err.code, "NotAuthorizedException", "a signed-in identity without its login: {err:?}");
    let missing =
        server.raw().get(&format!("/{REGION}:00000000-0000-4000-8000-000000000000/.well-known/jwks.json")).await;
    assert_eq!(missing.status, 404);
}

async fn developer_identities_are_vouched_for_looked_up_merged_and_unlinked(server: &Server) {
    let pool = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(unique_name("dev"))
        .allow_unauthenticated_identities(false)
        .developer_provider_name("login.myapp")
        .send()
        .await)
    .identity_pool_id;
    let vouch = |user: &'static str| {
        server.identity().get_open_id_token_for_developer_identity().identity_pool_id(&pool).logins("login.myapp", user)
    };
    let first = ok(vouch("user-1").send().await);
    let id1 = first.identity_id.clone().expect("IdentityId");
    let (_, claims) = jwt_parts(first.token.as_deref().expect("Token"));
    assert_eq!(claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0), 900, "15 minutes by default");
    assert_eq!(claims["sub"], id1.as_str());
    assert!(claims["amr"].as_array().is_some_and(|a| a.iter().any(|v| v == "login.myapp")), "{claims}");
    assert_eq!(ok(vouch("user-1").send().await).identity_id.as_deref(), Some(id1.as_str()), "same user, same identity");
    let (_, claims) = jwt_parts(ok(vouch("user-1").token_duration(3600).send().await).token.as_deref().expect("Token"));
    assert_eq!(claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0), 3600);
    let err = expect_err(vouch("user-1").token_duration(86_401).send().await);
    assert_eq!(err.code, "InvalidParameterException", "{err:?}");
    let err = expect_err(
        server
            .identity()
            .get_open_id_token_for_developer_identity()
            .identity_pool_id(&pool)
            .logins("other.app", "u")
            .send()
            .await,
    );
    assert_eq!(err.code, "InvalidParameterException", "{err:?}");
    // An unsigned call is refused: only the app's backend may vouch.
    let raw = server
        .raw()
        .call(
            "AWSCognitoIdentityService.GetOpenIdTokenForDeveloperIdentity",
            &serde_json::json!({"IdentityPoolId": pool, "Logins": {"login.myapp": "user-1"}}).to_string(),
            cognate_e2e::Signing::None,
        )
        .await;
    assert_eq!(raw.error_type(), "MissingAuthenticationTokenException", "{}", raw.body);

    let found = ok(server
        .identity()
        .lookup_developer_identity()
        .identity_pool_id(&pool)
        .developer_user_identifier("user-1")
        .send()
        .await);
    assert_eq!(
        (found.identity_id.as_deref(), found.developer_user_identifier_list()),
        (Some(id1.as_str()), &["user-1".to_owned()][..])
    );
    let id2 = ok(vouch("user-2").send().await).identity_id.expect("IdentityId");
    assert_ne!(id2, id1);
    let merged = ok(server
        .identity()
        .merge_developer_identities()
        .identity_pool_id(&pool)
        .developer_provider_name("login.myapp")
        .source_user_identifier("user-2")
        .destination_user_identifier("user-1")
        .send()
        .await);
    assert_eq!(merged.identity_id.as_deref(), Some(id1.as_str()));
    let found =
        ok(server.identity().lookup_developer_identity().identity_pool_id(&pool).identity_id(&id1).send().await);
    assert_eq!(found.developer_user_identifier_list(), ["user-1".to_owned(), "user-2".to_owned()]);
    let err = expect_err(server.identity().describe_identity().identity_id(&id2).send().await);
    assert_eq!(err.code, "ResourceNotFoundException", "the source identity is gone: {err:?}");
    ok(server
        .identity()
        .unlink_developer_identity()
        .identity_pool_id(&pool)
        .identity_id(&id1)
        .developer_provider_name("login.myapp")
        .developer_user_identifier("user-2")
        .send()
        .await);
    let err = expect_err(
        server
            .identity()
            .lookup_developer_identity()
            .identity_pool_id(&pool)
            .developer_user_identifier("user-2")
            .send()
            .await,
    );
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
    let err = expect_err(
        server
            .identity()
            .merge_developer_identities()
            .identity_pool_id(&pool)
            .developer_provider_name("not.mine")
            .source_user_identifier("user-1")
            .destination_user_identifier("user-1")
            .send()
            .await,
    );
    assert_eq!(err.code, "InvalidParameterException", "{err:?}");
}

async fn a_user_unlinks_a_login_and_principal_tags_are_kept(server: &Server) {
    let s = setup(server, true, false).await;
    let token = id_token(server, &s.user_pool, &s.client, "alice").await;
    let id = get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await;
    create_user(server, &s.user_pool, "bob").await;
    let bob = id_token(server, &s.user_pool, &s.client, "bob").await;
    let err = expect_err(
        server
            .identity()
            .unlink_identity()
            .identity_id(&id)
            .set_logins(Some(logins(&s.provider(), &bob)))
            .logins_to_remove(s.provider())
            .send()
            .await,
    );
    assert_eq!(err.code, "NotAuthorizedException", "bob cannot unlink alice's login: {err:?}");
    ok(server
        .identity()
        .unlink_identity()
        .identity_id(&id)
        .set_logins(Some(logins(&s.provider(), &token)))
        .logins_to_remove(s.provider())
        .send()
        .await);
    let described = ok(server.identity().describe_identity().identity_id(&id).send().await);
    assert!(described.logins().is_empty(), "{described:?}");
    assert_ne!(
        get_id(server, &s.identity_pool, Some(logins(&s.provider(), &token))).await,
        id,
        "the login is free again"
    );

    let tags = ok(server
        .identity()
        .get_principal_tag_attribute_map()
        .identity_pool_id(&s.identity_pool)
        .identity_provider_name(s.provider())
        .send()
        .await);
    assert_eq!(tags.use_defaults, Some(true));
    assert_eq!(tags.principal_tags().map(|t| t.len()), Some(2));
    let set = ok(server
        .identity()
        .set_principal_tag_attribute_map()
        .identity_pool_id(&s.identity_pool)
        .identity_provider_name(s.provider())
        .use_defaults(false)
        .principal_tags("department", "custom:dept")
        .send()
        .await);
    assert_eq!(set.use_defaults, Some(false));
    let tags = ok(server
        .identity()
        .get_principal_tag_attribute_map()
        .identity_pool_id(&s.identity_pool)
        .identity_provider_name(s.provider())
        .send()
        .await);
    assert_eq!(tags.principal_tags().and_then(|t| t.get("department")).map(String::as_str), Some("custom:dept"));
    assert_eq!(tags.principal_tags().map(|t| t.len()), Some(1));
}

/// A form-encoded STS call, as SDKs send the Query API.
async fn sts(server: &Server, path: &str, form: &[(&str, &str)]) -> cognate_e2e::RawResponse {
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", cognate_e2e::url_encode(v))).collect();
    let headers = vec![("content-type".to_owned(), "application/x-www-form-urlencoded; charset=utf-8".to_owned())];
    let raw = server.raw();
    if path == "/" {
        raw.post(&headers, body.join("&").into_bytes()).await
    } else {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", server.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        cognate_e2e::RawResponse { status, headers, body: response.text().await.expect("body") }
    }
}

/// AssumeRoleWithWebIdentity's form (without the token when `token` is None).
fn assume_form<'a>(role: &'a str, token: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role),
        ("RoleSessionName", "app"),
    ];
    form.extend(token.map(|t| ("WebIdentityToken", t)));
    form
}

fn xml_text<'a>(body: &'a str, element: &str) -> Option<&'a str> {
    let open = format!("<{element}>");
    let start = body.find(&open)? + open.len();
    Some(&body[start..start + body[start..].find(&format!("</{element}>"))?])
}

async fn sts_answers_the_classic_flow_only_where_the_pool_allows_it(server: &Server) {
    let s = setup(server, true, false).await;
    let guest = get_id(server, &s.identity_pool, None).await;
    let token = ok(server.identity().get_open_id_token().identity_id(&guest).send().await).token.expect("Token");
    // AllowClassicFlow is off: refused.
    let refused = sts(server, "/", &assume_form(GUEST_ROLE, Some(&token))).await;
    assert_eq!((refused.status, xml_text(&refused.body, "Code")), (403, Some("AccessDenied")), "{}", refused.body);
    ok(server
        .identity()
        .update_identity_pool()
        .identity_pool_id(&s.identity_pool)
        .identity_pool_name("classic")
        .allow_unauthenticated_identities(true)
        .allow_classic_flow(true)
        .send()
        .await);
    for path in ["/", "/sts"] {
        let assumed = sts(server, path, &assume_form(GUEST_ROLE, Some(&token))).await;
        assert_eq!(assumed.status, 200, "{}", assumed.body);
        assert_eq!(xml_text(&assumed.body, "SubjectFromWebIdentityToken"), Some(guest.as_str()));
        let key = xml_text(&assumed.body, "AccessKeyId").expect("AccessKeyId");
        let secret = xml_text(&assumed.body, "SecretAccessKey").expect("SecretAccessKey");
        let session = xml_text(&assumed.body, "SessionToken").expect("SessionToken").replace("&amp;", "&");
        assert_accepted(server, &Credentials::new(key, secret, Some(session), None, "sts"), &s.identity_pool).await;
    }
    // The guest may not take the authenticated role, nor any role the pool does not name.
    let refused = sts(server, "/", &assume_form(AUTH_ROLE, Some(&token))).await;
    assert_eq!(xml_text(&refused.body, "Code"), Some("AccessDenied"), "{}", refused.body);
    let missing = sts(server, "/", &assume_form(GUEST_ROLE, None)).await;
    assert_eq!(xml_text(&missing.body, "Code"), Some("MissingParameter"), "{}", missing.body);
    let other = sts(server, "/", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(xml_text(&other.body, "Code"), Some("InvalidAction"), "{}", other.body);
    let forged = sts(server, "/", &assume_form(GUEST_ROLE, Some("e30.e30.AAAA"))).await;
    assert_eq!(xml_text(&forged.body, "Code"), Some("InvalidIdentityToken"), "{}", forged.body);
}

// ---------------------------------------------------------------------------------------
// Logins from providers outside the server: an OpenID Connect provider (another Cognate's
// user pool, whose JWKS the server fetches) and a social provider whose keys come from a
// file (so tests run offline).
// ---------------------------------------------------------------------------------------

/// A user pool of `upstream` with a client and a signed-in user: the issuer, the client and
/// an ID token.
async fn upstream_login(upstream: &Server) -> (String, String, String) {
    let pool = upstream.new_pool(|p| p).await;
    let client = user_pool_client(upstream, &pool).await;
    create_user(upstream, &pool, "carol").await;
    let token = id_token(upstream, &pool, &client, "carol").await;
    (format!("{}/{pool}", upstream.url()), client, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_of_external_oidc_and_social_providers_verify_against_their_keys() {
    let upstream = Server::sqlite().await;
    let (issuer, client, token) = upstream_login(&upstream).await;
    // A second client of the same upstream pool: a token the identity pool does not trust.
    let upstream_pool = issuer.rsplit('/').next().expect("pool").to_owned();
    let other_client = user_pool_client(&upstream, &upstream_pool).await;
    let other_token = id_token(&upstream, &upstream_pool, &other_client, "carol").await;
    let oidc_name = issuer.trim_start_matches("http://").to_owned();
    // The social provider's keys come from a file: the upstream pool's JWKS, saved.
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks =
        upstream.raw().get(&format!("/{}/.well-known/jwks.json", issuer.rsplit('/').next().unwrap_or_default())).await;
    let jwks_file = dir.path().join("google-jwks.json");
    std::fs::write(&jwks_file, &jwks.body).expect("write jwks");
    let config = dir.path().join("cognate.toml");
    std::fs::write(
        &config,
        format!(
            "[[login_providers]]\nname = \"{oidc_name}\"\nissuer = \"{issuer}\"\njwks_url = \"{issuer}/.well-known/jwks.json\"\n\
             audiences = [\"{client}\"]\n\n\
             [[login_providers]]\nname = \"accounts.google.com\"\nissuer = \"{issuer}\"\njwks_file = \"{}\"\n",
            jwks_file.display()
        ),
    )
    .expect("write config");
    let config_arg = config.display().to_string();
    let server = Server::sqlite_with(&["--config", &config_arg]).await;

    let pool = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(unique_name("external"))
        .allow_unauthenticated_identities(false)
        .open_id_connect_provider_arns(format!("arn:aws:iam::000000000000:oidc-provider/{oidc_name}"))
        .supported_login_providers("accounts.google.com", &client)
        .supported_login_providers("graph.facebook.com", "1234567890")
        .send()
        .await)
    .identity_pool_id;
    ok(server
        .identity()
        .set_identity_pool_roles()
        .identity_pool_id(&pool)
        .roles("authenticated", AUTH_ROLE)
        .send()
        .await);

    // The OIDC provider: keys fetched from the upstream server's JWKS URL.
    let oidc = get_id(&server, &pool, Some(logins(&oidc_name, &token))).await;
    assert_eq!(get_id(&server, &pool, Some(logins(&oidc_name, &token))).await, oidc, "same login, same identity");
    let issued = credentials(&server, &oidc, Some(logins(&oidc_name, &token))).await;
    assert_eq!(issued.identity_id, oidc);
    let described = ok(server.identity().describe_identity().identity_id(&oidc).send().await);
    assert_eq!(described.logins(), std::slice::from_ref(&oidc_name));
    let err = get_id_refused(&server, &pool, Some(logins(&oidc_name, &other_token))).await;
    assert_eq!(err.code, "NotAuthorizedException", "a client the provider's audiences do not list: {err:?}");

    // The social provider: keys from a file, audience the pool's app id.
    let google = get_id(&server, &pool, Some(logins("accounts.google.com", &token))).await;
    assert_ne!(google, oidc, "another provider's login is another identity");
    let err = get_id_refused(&server, &pool, Some(logins("accounts.google.com", &other_token))).await;
    assert_eq!(err.code, "NotAuthorizedException", "a token for another app: {err:?}");
    let mut forged: Vec<&str> = token.split('.').collect();
    forged[2] = "AAAA";
    let err = get_id_refused(&server, &pool, Some(logins("accounts.google.com", &forged.join(".")))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");

    // Facebook logins are access tokens only Facebook can check: a clear refusal.
    let err = get_id_refused(&server, &pool, Some(logins("graph.facebook.com", "EAAB-opaque"))).await;
    assert_eq!(err.code, "NotAuthorizedException", "{err:?}");
    assert!(err.message.contains("graph.facebook.com"), "{}", err.message);

    // A provider the pool trusts but the server has no keys for.
    let bare = Server::sqlite().await;
    let unconfigured = ok(bare
        .identity()
        .create_identity_pool()
        .identity_pool_name(unique_name("bare"))
        .allow_unauthenticated_identities(false)
        .open_id_connect_provider_arns(format!("arn:aws:iam::000000000000:oidc-provider/{oidc_name}"))
        .send()
        .await)
    .identity_pool_id;
    let err = get_id_refused(&bare, &unconfigured, Some(logins(&oidc_name, &token))).await;
    assert_eq!(err.code, "ExternalServiceException", "{err:?}");
    assert!(err.message.contains("login_providers"), "{}", err.message);
}
