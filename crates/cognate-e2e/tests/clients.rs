//! Authentication with the real Cognito clients.
//!
//! The client scripts live in `tests/clients/` at the repository root:
//!
//! - `js/`: Node scripts using amazon-cognito-identity-js (SRP, USER_PASSWORD_AUTH,
//!   NEW_PASSWORD_REQUIRED, refreshSession, signOut/globalSignOut, devices),
//!   Amplify JS v6 (signIn, confirmSignIn, fetchAuthSession, signOut, and
//!   an identity pool's guest and signed-in credentials), aws-jwt-verify
//!   (JwtRsaVerifier on the ID and access tokens) and the AWS SDK v3's
//!   `fromCognitoIdentityPool` (whose credentials sign a
//!   @aws-sdk/client-cognito-identity call), pinned by `package-lock.json`;
//! - `py/`: pycognito (AWSSRP with and without a client secret, the Cognito
//!   class that verifies tokens against the JWKS), boto3's admin flows and
//!   identity-pool calls (and a client signing with the temporary
//!   credentials), and the AWS CLI, pinned by `requirements.txt`.
//!
//! Each script takes a JSON object on standard input and prints one JSON
//! object (`ok`, `steps`, `calls`, results). The tests here start a server,
//! set up pools, clients and users with the Rust SDK, run the scripts and
//! check their answers; the token-abuse tests (forged, expired, `alg: none`,
//! wrong kind, other pool, revoked, replayed sessions, lockout) use the Rust
//! SDK and hand-made JWTs directly.
//!
//! On first use the scripts' dependencies are installed (`npm ci` into
//! `tests/clients/js/node_modules`, a venv in `tests/clients/py/.venv`);
//! later runs skip that while the lock files are unchanged. When Node, npm,
//! Python or the registries are missing the client tests are skipped loudly,
//! and with `CI` set they fail.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use cognate_e2e::clients::{note, Js, Py};
use cognate_e2e::identity::types::CognitoIdentityProvider;
use cognate_e2e::idp::operation::initiate_auth::InitiateAuthOutput;
use cognate_e2e::idp::types::{
    AuthFlowType, AuthenticationResultType, ChallengeNameType, DeviceConfigurationType, ExplicitAuthFlowsType as F,
    MessageActionType, PreventUserExistenceErrorTypes, SoftwareTokenMfaConfigType, UserPoolMfaType,
    UsernameAttributeType,
};
use cognate_e2e::{attr, attr_of, b64url_decode, expect_err, is_uuid, ok, App, ErrInfo, Server, PASSWORD, REGION};
use serde_json::{json, Value};

const TEMP_PASSWORD: &str = "Temp0rary!";
const NEW_PASSWORD: &str = "N3wPassw0rd!";
const ALL_FLOWS: &[F] =
    &[F::AllowUserSrpAuth, F::AllowUserPasswordAuth, F::AllowAdminUserPasswordAuth, F::AllowRefreshTokenAuth];

// ---------------------------------------------------------------------------
// JWTs
// ---------------------------------------------------------------------------

fn b64url(data: &[u8]) -> String {
    aws_smithy_types::base64::encode(data)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// Header and claims of a JWS in compact form (not verified).
fn jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWS in compact form (3 parts): {token:?}");
    let part = |p: &str, what: &str| -> Value {
        serde_json::from_slice(&b64url_decode(p))
            .unwrap_or_else(|e| panic!("the JWT {what} is not JSON ({e}): {token}"))
    };
    (part(parts[0], "header"), part(parts[1], "payload"))
}

/// A JWT made of this header, these claims and this (base64url) signature.
fn make_jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()))
}

/// The token with one bit of its signature flipped.
fn flip_signature(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').expect("a JWT");
    let mut bytes = b64url_decode(sig);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    format!("{rest}.{}", b64url(&bytes))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

#[track_caller]
fn int_claim(c: &Value, name: &str) -> i64 {
    c.get(name).and_then(Value::as_i64).unwrap_or_else(|| panic!("claim {name:?} is not an integer: {c}"))
}

#[track_caller]
fn str_claim<'a>(c: &'a Value, name: &str) -> &'a str {
    c.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("claim {name:?} is not a string: {c}"))
}

fn issuer(server: &Server, pool: &str) -> String {
    format!("{}/{pool}", server.url())
}

/// Header and time claims common to ID and access tokens.
#[track_caller]
fn check_common(token: &str, iss: &str, what: &str) -> Value {
    let (header, c) = jwt(token);
    assert_eq!(header["alg"], json!("RS256"), "{what} header {header}");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()), "{what} has no kid: {header}");
    assert_eq!(str_claim(&c, "iss"), iss, "{what} iss: {c}");
    assert!(is_uuid(str_claim(&c, "sub")), "{what} sub is not a UUID: {c}");
    let (iat, exp, auth_time) = (int_claim(&c, "iat"), int_claim(&c, "exp"), int_claim(&c, "auth_time"));
    assert!((iat - now()).abs() < 300, "{what} iat {iat} is not now ({}): {c}", now());
    assert_eq!(exp - iat, 3600, "{what}: exp - iat is not the default hour: {c}");
    assert!(auth_time <= iat && auth_time > now() - 600, "{what} auth_time {auth_time} (iat {iat}): {c}");
    for id in ["jti", "origin_jti", "event_id"] {
        assert!(is_uuid(str_claim(&c, id)), "{what} {id} is not a UUID: {c}");
    }
    c
}

/// An ID token of `app` for `username` (with the verified `email`).
#[track_caller]
fn check_id_token(token: &str, iss: &str, app: &App, username: &str, email: &str) -> Value {
    let c = check_common(token, iss, "ID token");
    assert_eq!(c["token_use"], json!("id"), "ID token token_use: {c}");
    assert_eq!(c["aud"], json!(app.client), "ID token aud: {c}");
    assert_eq!(c["cognito:username"], json!(username), "ID token cognito:username: {c}");
    assert_eq!(c["email"], json!(email), "ID token email: {c}");
    assert_eq!(c["email_verified"], json!(true), "ID token email_verified must be a boolean true: {c}");
    c
}

/// An access token of `app` for `username`.
#[track_caller]
fn check_access_token(token: &str, iss: &str, app: &App, username: &str) -> Value {
    let c = check_common(token, iss, "access token");
    assert_eq!(c["token_use"], json!("access"), "access token token_use: {c}");
    assert_eq!(c["client_id"], json!(app.client), "access token client_id: {c}");
    assert_eq!(c["username"], json!(username), "access token username: {c}");
    assert_eq!(c["scope"], json!("aws.cognito.signin.user.admin"), "access token scope: {c}");
    assert!(c.get("aud").is_none(), "Cognito access tokens have no aud: {c}");
    c
}

/// An ID and an access token of one authentication.
#[track_caller]
fn check_pair(id: &str, access: &str, iss: &str, app: &App, username: &str, email: &str) -> (Value, Value) {
    let i = check_id_token(id, iss, app, username, email);
    let a = check_access_token(access, iss, app, username);
    for same in ["sub", "auth_time", "origin_jti", "event_id"] {
        assert_eq!(i[same], a[same], "the ID and access tokens differ in {same}: {i} / {a}");
    }
    assert_ne!(i["jti"], a["jti"], "the ID and access tokens share a jti");
    (i, a)
}

/// Tokens refreshed from `original`: same user, authentication and origin.
#[track_caller]
fn check_refreshed(original: &Value, refreshed: &Value) {
    for same in ["sub", "auth_time", "origin_jti"] {
        assert_eq!(original[same], refreshed[same], "a refreshed token must keep {same}: {original} / {refreshed}");
    }
    assert_ne!(original["jti"], refreshed["jti"], "a refreshed token reuses the jti");
}

// ---------------------------------------------------------------------------
// Setup with the Rust SDK
// ---------------------------------------------------------------------------

/// A pool with an app client with these auth flows.
async fn app_with(server: &Server, flows: &[F], secret: bool) -> App {
    let pool = server.new_pool(|p| p).await;
    client_in(server, &pool, flows, secret, true).await
}

/// An app client in `pool`.
async fn client_in(server: &Server, pool: &str, flows: &[F], secret: bool, prevent_existence_errors: bool) -> App {
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name(cognate_e2e::unique_name("app"))
        .generate_secret(secret)
        .set_explicit_auth_flows(Some(flows.to_vec()))
        .prevent_user_existence_errors(if prevent_existence_errors {
            PreventUserExistenceErrorTypes::Enabled
        } else {
            PreventUserExistenceErrorTypes::Legacy
        })
        .send()
        .await)
    .user_pool_client
    .expect("CreateUserPoolClient returned no client");
    App {
        pool: pool.to_string(),
        client: client.client_id().expect("ClientId").to_string(),
        secret: client.client_secret().map(str::to_string),
    }
}

fn email_of(username: &str) -> String {
    format!("{username}@example.com")
}

/// A user created with AdminCreateUser and a temporary password (so
/// FORCE_CHANGE_PASSWORD), with a verified email; returns the email.
async fn forced_user(server: &Server, pool: &str, username: &str) -> String {
    let email = email_of(username);
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .temporary_password(TEMP_PASSWORD)
        .message_action(MessageActionType::Suppress)
        .user_attributes(attr("email", &email))
        .user_attributes(attr("email_verified", "true"))
        .send()
        .await);
    email
}

/// A CONFIRMED user with [`PASSWORD`] and a verified email; returns the email.
async fn confirmed_user(server: &Server, pool: &str, username: &str) -> String {
    let email = forced_user(server, pool, username).await;
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(username)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    email
}

/// The three tokens of an authentication result.
#[derive(Debug, Clone)]
struct Tokens {
    id: String,
    access: String,
    refresh: String,
}

#[track_caller]
fn tokens_of(result: Option<&AuthenticationResultType>, what: &str) -> Tokens {
    let r = result.unwrap_or_else(|| panic!("{what}: no AuthenticationResult"));
    Tokens {
        id: r.id_token().unwrap_or_else(|| panic!("{what}: no IdToken")).to_string(),
        access: r.access_token().unwrap_or_else(|| panic!("{what}: no AccessToken")).to_string(),
        refresh: r.refresh_token().unwrap_or_else(|| panic!("{what}: no RefreshToken")).to_string(),
    }
}

/// InitiateAuth USER_PASSWORD_AUTH (unsigned, as apps send it).
async fn password_auth(
    server: &Server,
    app: &App,
    username: &str,
    password: &str,
) -> Result<InitiateAuthOutput, ErrInfo> {
    let mut request = server
        .idp_anonymous()
        .initiate_auth()
        .client_id(&app.client)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password);
    if let Some(hash) = app.hash(username) {
        request = request.auth_parameters("SECRET_HASH", hash);
    }
    sdk_err(request.send().await)
}

/// A successful USER_PASSWORD_AUTH sign-in.
async fn sign_in(server: &Server, app: &App, username: &str, password: &str) -> Tokens {
    match password_auth(server, app, username, password).await {
        Ok(out) => {
            assert!(out.challenge_name().is_none(), "unexpected challenge: {out:?}");
            tokens_of(out.authentication_result(), "InitiateAuth USER_PASSWORD_AUTH")
        }
        Err(e) => panic!("InitiateAuth USER_PASSWORD_AUTH for {username} failed: {e:?}"),
    }
}

/// InitiateAuth REFRESH_TOKEN_AUTH.
async fn refresh(server: &Server, app: &App, username: &str, token: &str) -> Result<InitiateAuthOutput, ErrInfo> {
    let mut request = server
        .idp_anonymous()
        .initiate_auth()
        .client_id(&app.client)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", token);
    if let Some(hash) = app.hash(username) {
        request = request.auth_parameters("SECRET_HASH", hash);
    }
    sdk_err(request.send().await)
}

/// GetUser; the username on success.
async fn get_user(server: &Server, access_token: &str) -> Result<String, ErrInfo> {
    sdk_err(server.idp_anonymous().get_user().access_token(access_token).send().await)
        .map(|out| out.username().to_string())
}

/// Assert a NotAuthorizedException (HTTP 400) with one of these messages.
#[track_caller]
fn assert_not_authorized<T: std::fmt::Debug>(res: Result<T, ErrInfo>, messages: &[&str], what: &str) {
    match res {
        Ok(v) => panic!("{what}: expected NotAuthorizedException, but it succeeded: {v:?}"),
        Err(e) => assert!(
            e.status == 400 && e.code == "NotAuthorizedException" && messages.contains(&e.message.as_str()),
            "{what}: expected NotAuthorizedException {messages:?}, got {e:?}"
        ),
    }
}

/// Assert a service error (HTTP 400) with this code; returns the message.
#[track_caller]
fn assert_code<T: std::fmt::Debug>(res: Result<T, ErrInfo>, code: &str, what: &str) -> String {
    match res {
        Ok(v) => panic!("{what}: expected {code}, but it succeeded: {v:?}"),
        Err(e) => {
            assert!(e.status == 400 && e.code == code, "{what}: expected {code}, got {e:?}");
            e.message
        }
    }
}

/// An SDK result with the service error as [`ErrInfo`] (a transport failure
/// panics).
fn sdk_err<T, E>(res: Result<T, SdkError<E, HttpResponse>>) -> Result<T, ErrInfo>
where
    T: std::fmt::Debug,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match res {
        Ok(v) => Ok(v),
        Err(e) => Err(expect_err::<T, E>(Err(e))),
    }
}

/// RespondToAuthChallenge PASSWORD_VERIFIER with a `srp_challenge` result of
/// `pycognito_flows.py` (its Session, if any) and these challenge responses.
async fn respond_password_verifier(
    server: &Server,
    app: &App,
    challenge: &Value,
    responses: &Value,
) -> Result<cognate_e2e::idp::operation::respond_to_auth_challenge::RespondToAuthChallengeOutput, ErrInfo> {
    let responses = responses
        .as_object()
        .expect("challengeResponses")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string response").to_string()))
        .collect();
    sdk_err(
        server
            .idp_anonymous()
            .respond_to_auth_challenge()
            .client_id(&app.client)
            .challenge_name(ChallengeNameType::PasswordVerifier)
            .set_session(challenge["session"].as_str().map(str::to_string))
            .set_challenge_responses(Some(responses))
            .send()
            .await,
    )
}

/// The operations a script's `calls` list shows, with their HTTP status.
fn call_list(result: &Value) -> Vec<String> {
    result["calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    let name = c["target"].as_str().or(c["operation"].as_str()).unwrap_or("?");
                    format!("{name} {}", c["status"])
                })
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_called(result: &Value, operation: &str) {
    let calls = call_list(result);
    assert!(
        calls.iter().any(|c| c == &format!("{operation} 200")),
        "expected a successful {operation} among the client's calls {calls:?}"
    );
}

fn script_str<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

// ---------------------------------------------------------------------------
// Tokens, discovery and JWKS (Rust SDK)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_discovery_and_jwks() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;
    let iss = issuer(&server, &app.pool);

    let out = password_auth(&server, &app, "alice", PASSWORD).await.expect("sign in");
    let result = out.authentication_result().expect("AuthenticationResult");
    assert_eq!(result.token_type(), Some("Bearer"));
    assert_eq!(result.expires_in(), 3600);
    let tokens = tokens_of(Some(result), "sign in");
    assert!(!tokens.refresh.is_empty());
    let (id, access) = check_pair(&tokens.id, &tokens.access, &iss, &app, "alice", &email);

    // OIDC discovery.
    let raw = server.raw();
    let discovery = raw.get(&format!("/{}/.well-known/openid-configuration", app.pool)).await;
    assert_eq!(discovery.status, 200, "openid-configuration: {}", discovery.body);
    let d = discovery.json();
    assert_eq!(d["issuer"], json!(iss), "discovery issuer must equal the tokens' iss: {d}");
    let jwks_uri = format!("{iss}/.well-known/jwks.json");
    assert_eq!(d["jwks_uri"], json!(jwks_uri), "discovery jwks_uri: {d}");
    assert!(
        d["id_token_signing_alg_values_supported"].as_array().is_some_and(|a| a.contains(&json!("RS256"))),
        "discovery id_token_signing_alg_values_supported must list RS256: {d}"
    );
    // Every endpoint the document names is served: a relying party follows them all.
    let public_base = iss.trim_end_matches(&format!("/{}", app.pool)).to_owned();
    for (member, url) in d.as_object().expect("discovery object") {
        let Some(url) = url.as_str().filter(|u| u.starts_with("http")) else { continue };
        if member == "issuer" {
            continue;
        }
        let path =
            url.strip_prefix(&public_base).unwrap_or_else(|| panic!("{member} {url} is not under {public_base}"));
        let answer = raw.get(path).await;
        assert_ne!(answer.status, 404, "discovery lists {member} = {url}, which answers 404");
    }

    // JWKS.
    let jwks = raw.get(&format!("/{}/.well-known/jwks.json", app.pool)).await;
    assert_eq!(jwks.status, 200, "jwks.json: {}", jwks.body);
    let keys = jwks.json()["keys"].as_array().cloned().expect("JWKS keys");
    assert!(!keys.is_empty(), "empty JWKS");
    for key in &keys {
        assert_eq!(key["kty"], json!("RSA"), "{key}");
        assert_eq!(key["alg"], json!("RS256"), "{key}");
        assert_eq!(key["use"], json!("sig"), "{key}");
        assert_eq!(key["e"], json!("AQAB"), "{key}");
        let n = b64url_decode(key["n"].as_str().expect("n"));
        assert!(n.len() >= 256, "RSA modulus of {} bits", n.len() * 8);
        assert!(key.get("d").is_none() && key.get("p").is_none(), "the JWKS leaks a private key: {key}");
    }
    let kid = jwt(&tokens.access).0["kid"].clone();
    assert!(keys.iter().any(|k| k["kid"] == kid), "the tokens' kid {kid} is not in the JWKS");

    // GetUser.
    let user = ok(server.idp_anonymous().get_user().access_token(&tokens.access).send().await);
    assert_eq!(user.username(), "alice");
    assert_eq!(attr_of(user.user_attributes(), "email"), Some(email.as_str()));
    assert_eq!(attr_of(user.user_attributes(), "email_verified"), Some("true"));
    assert_eq!(attr_of(user.user_attributes(), "sub"), id["sub"].as_str());

    // Refresh, under both names of the flow.
    for flow in [AuthFlowType::RefreshTokenAuth, AuthFlowType::RefreshToken] {
        let out = ok(server
            .idp_anonymous()
            .initiate_auth()
            .client_id(&app.client)
            .auth_flow(flow.clone())
            .auth_parameters("REFRESH_TOKEN", &tokens.refresh)
            .send()
            .await);
        let r = out.authentication_result().expect("refreshed AuthenticationResult");
        assert!(r.refresh_token().is_none(), "{flow:?} returned a new refresh token");
        let (rid, racc) = check_pair(
            r.id_token().expect("IdToken"),
            r.access_token().expect("AccessToken"),
            &iss,
            &app,
            "alice",
            &email,
        );
        check_refreshed(&id, &rid);
        check_refreshed(&access, &racc);
    }

    // The JWKS of a pool that does not exist.
    let missing = raw.get("/us-east-1_nonexistent/.well-known/jwks.json").await;
    assert!(
        missing.status == 404 || missing.status == 400,
        "the JWKS of an unknown pool answered {}: {}",
        missing.status,
        missing.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lifetimes_and_attribute_claims() {
    use cognate_e2e::idp::types::{
        AttributeDataType, SchemaAttributeType, StringAttributeConstraintsType, TimeUnitsType, TokenValidityUnitsType,
    };
    let server = Server::sqlite().await;
    let pool = server
        .new_pool(|p| {
            p.schema(
                SchemaAttributeType::builder()
                    .name("tier")
                    .attribute_data_type(AttributeDataType::String)
                    .mutable(true)
                    .string_attribute_constraints(StringAttributeConstraintsType::builder().max_length("16").build())
                    .build(),
            )
        })
        .await;
    // Lifetimes of the app client: 5-minute access token, 10-minute ID token.
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("short-lived")
        .set_explicit_auth_flows(Some(ALL_FLOWS.to_vec()))
        .access_token_validity(5)
        .id_token_validity(10)
        .refresh_token_validity(1)
        .token_validity_units(
            TokenValidityUnitsType::builder()
                .access_token(TimeUnitsType::Minutes)
                .id_token(TimeUnitsType::Minutes)
                .refresh_token(TimeUnitsType::Days)
                .build(),
        )
        .send()
        .await)
    .user_pool_client
    .expect("client");
    let app = App { pool: pool.clone(), client: client.client_id().expect("ClientId").to_string(), secret: None };
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username("gina")
        .temporary_password(TEMP_PASSWORD)
        .message_action(MessageActionType::Suppress)
        .user_attributes(attr("email", "gina@example.com"))
        .user_attributes(attr("email_verified", "true"))
        .user_attributes(attr("phone_number", "+15555550100"))
        .user_attributes(attr("phone_number_verified", "false"))
        .user_attributes(attr("name", "Gina"))
        .user_attributes(attr("custom:tier", "gold"))
        .send()
        .await);
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username("gina")
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);

    let out = password_auth(&server, &app, "gina", PASSWORD).await.expect("sign in");
    let result = out.authentication_result().expect("AuthenticationResult");
    assert_eq!(result.expires_in(), 300, "ExpiresIn is the access token's lifetime");
    let tokens = tokens_of(Some(result), "sign in");
    let (_, id) = jwt(&tokens.id);
    let (_, access) = jwt(&tokens.access);
    assert_eq!(int_claim(&access, "exp") - int_claim(&access, "iat"), 300, "access token lifetime: {access}");
    assert_eq!(int_claim(&id, "exp") - int_claim(&id, "iat"), 600, "ID token lifetime: {id}");
    // Attributes in the ID token: *_verified as booleans, custom ones as strings.
    assert_eq!(id["email_verified"], json!(true), "{id}");
    assert_eq!(id["phone_number"], json!("+15555550100"), "{id}");
    assert_eq!(id["phone_number_verified"], json!(false), "{id}");
    assert_eq!(id["name"], json!("Gina"), "{id}");
    assert_eq!(id["custom:tier"], json!("gold"), "{id}");
    assert!(
        access.get("email").is_none() && access.get("custom:tier").is_none(),
        "attributes in the access token: {access}"
    );

    let refreshed = refresh(&server, &app, "gina", &tokens.refresh).await.expect("refresh");
    let r = refreshed.authentication_result().expect("refreshed");
    assert_eq!(r.expires_in(), 300);
    let (_, racc) = jwt(r.access_token().expect("AccessToken"));
    assert_eq!(int_claim(&racc, "exp") - int_claim(&racc, "iat"), 300, "refreshed access token lifetime: {racc}");
}

// ---------------------------------------------------------------------------
// Token abuse (Rust SDK, hand-made JWTs)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_user_rejects_bad_access_tokens() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let tokens = sign_in(&server, &app, "alice", PASSWORD).await;
    assert_eq!(get_user(&server, &tokens.access).await.expect("GetUser"), "alice");
    let (header, c) = jwt(&tokens.access);
    let signature = tokens.access.rsplit('.').next().expect("signature").to_string();
    let invalid = ["Invalid Access Token"];

    // A flipped signature bit.
    let forged = flip_signature(&tokens.access);
    assert_not_authorized(get_user(&server, &forged).await, &invalid, "flipped signature");

    // Other claims under the real signature.
    let mut mallory = c.clone();
    mallory["username"] = json!("mallory");
    let tampered = make_jwt(&header, &mallory, &signature);
    assert_not_authorized(get_user(&server, &tampered).await, &invalid, "changed claims");

    // alg: none, with and without a signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    for token in [make_jwt(&none, &c, ""), make_jwt(&none, &c, &signature)] {
        assert_not_authorized(get_user(&server, &token).await, &invalid, "alg none");
    }
    // alg: HS256, keyed with the public key (the algorithm-confusion attack).
    let jwks = server.raw().get(&format!("/{}/.well-known/jwks.json", app.pool)).await.json();
    let public_n = jwks["keys"][0]["n"].as_str().unwrap_or_default().to_string();
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let signing_input = format!("{}.{}", b64url(hs.to_string().as_bytes()), b64url(c.to_string().as_bytes()));
    let mac_hex = aws_sigv4::sign::v4::calculate_signature(public_n.as_bytes(), signing_input.as_bytes());
    let mac: Vec<u8> =
        (0..mac_hex.len()).step_by(2).map(|i| u8::from_str_radix(&mac_hex[i..i + 2], 16).expect("hex")).collect();
    let hs256 = format!("{signing_input}.{}", b64url(&mac));
    assert_not_authorized(get_user(&server, &hs256).await, &invalid, "alg HS256");

    // Expired: the same claims an hour and more in the past, signed by nobody.
    let mut old = c.clone();
    old["auth_time"] = json!(now() - 7300);
    old["iat"] = json!(now() - 7200);
    old["exp"] = json!(now() - 3600);
    let expired = make_jwt(&header, &old, &signature);
    assert_not_authorized(
        get_user(&server, &expired).await,
        &["Access Token has expired", "Invalid Access Token"],
        "expired token",
    );

    // An ID token is not an access token.
    assert_not_authorized(get_user(&server, &tokens.id).await, &invalid, "ID token");

    // Another pool: the claims moved to a second pool of the same server.
    let other = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &other.pool, "alice").await;
    let mut moved = c.clone();
    moved["iss"] = json!(issuer(&server, &other.pool));
    moved["client_id"] = json!(other.client);
    let moved = make_jwt(&header, &moved, &signature);
    assert_not_authorized(get_user(&server, &moved).await, &invalid, "token moved to another pool");
    // And a real token of the other pool, presented as this pool's.
    let theirs = sign_in(&server, &other, "alice", PASSWORD).await;
    let (their_header, mut their_claims) = jwt(&theirs.access);
    their_claims["iss"] = json!(issuer(&server, &app.pool));
    their_claims["client_id"] = json!(app.client);
    let their_sig = theirs.access.rsplit('.').next().expect("signature");
    let swapped = make_jwt(&their_header, &their_claims, their_sig);
    assert_not_authorized(get_user(&server, &swapped).await, &invalid, "other pool's token re-labelled");

    // Not a JWT at all.
    for garbage in ["abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"] {
        assert_not_authorized(get_user(&server, garbage).await, &invalid, &format!("garbage {garbage:?}"));
    }

    // A forged token must not sign anyone out.
    let res = sdk_err(server.idp_anonymous().global_sign_out().access_token(&forged).send().await);
    assert_not_authorized(res, &invalid, "GlobalSignOut with a forged token");

    // None of that hurt the real token.
    assert_eq!(get_user(&server, &tokens.access).await.expect("GetUser"), "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_sign_out_revokes_every_session() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let first = sign_in(&server, &app, "alice", PASSWORD).await;
    let second = sign_in(&server, &app, "alice", PASSWORD).await;

    ok(server.idp_anonymous().global_sign_out().access_token(&first.access).send().await);
    let revoked = ["Access Token has been revoked"];
    assert_not_authorized(get_user(&server, &first.access).await, &revoked, "GetUser after GlobalSignOut");
    assert_not_authorized(
        get_user(&server, &second.access).await,
        &revoked,
        "GetUser with another session's token after GlobalSignOut",
    );
    for (what, t) in [("this session", &first), ("another session", &second)] {
        let message = assert_code(
            refresh(&server, &app, "alice", &t.refresh).await,
            "NotAuthorizedException",
            &format!("refresh of {what} after GlobalSignOut"),
        );
        note(&format!("refresh after GlobalSignOut ({what}): {message:?}"));
    }
    assert_not_authorized(
        sdk_err(server.idp_anonymous().global_sign_out().access_token(&first.access).send().await),
        &revoked,
        "GlobalSignOut with a revoked token",
    );

    // Signing in again at once works (a new session is not caught by the
    // sign-out, even within the same second).
    let third = sign_in(&server, &app, "alice", PASSWORD).await;
    assert_eq!(get_user(&server, &third.access).await.expect("GetUser"), "alice");
    refresh(&server, &app, "alice", &third.refresh).await.expect("refresh a new session");

    // AdminUserGlobalSignOut does the same.
    ok(server.idp().admin_user_global_sign_out().user_pool_id(&app.pool).username("alice").send().await);
    assert_not_authorized(get_user(&server, &third.access).await, &revoked, "after AdminUserGlobalSignOut");
    assert_code(
        refresh(&server, &app, "alice", &third.refresh).await,
        "NotAuthorizedException",
        "refresh after AdminUserGlobalSignOut",
    );
    let fourth = sign_in(&server, &app, "alice", PASSWORD).await;
    assert_eq!(get_user(&server, &fourth.access).await.expect("GetUser"), "alice");

    // "AdminDisableUser: deactivates a user profile and revokes all access
    // tokens for the user."
    ok(server.idp().admin_disable_user().user_pool_id(&app.pool).username("alice").send().await);
    assert_not_authorized(
        get_user(&server, &fourth.access).await,
        &["User is disabled.", "Access Token has been revoked"],
        "GetUser of a disabled user",
    );
    assert_code(
        refresh(&server, &app, "alice", &fourth.refresh).await,
        "NotAuthorizedException",
        "refresh of a disabled user",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_revokes_one_session() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let first = sign_in(&server, &app, "alice", PASSWORD).await;
    let second = sign_in(&server, &app, "alice", PASSWORD).await;
    let refreshed = refresh(&server, &app, "alice", &first.refresh).await.expect("refresh");
    let refreshed =
        refreshed.authentication_result().and_then(|r| r.access_token()).expect("refreshed access token").to_string();

    ok(server.idp_anonymous().revoke_token().client_id(&app.client).token(&first.refresh).send().await);
    let message = assert_code(
        refresh(&server, &app, "alice", &first.refresh).await,
        "NotAuthorizedException",
        "refresh with a revoked refresh token",
    );
    note(&format!("refresh with a revoked refresh token: {message:?}"));
    // "Revokes all of the access tokens generated by, and at the same time
    // as, the specified refresh token" (the RevokeToken API reference).
    let revoked = ["Access Token has been revoked"];
    assert_not_authorized(get_user(&server, &first.access).await, &revoked, "the session's access token");
    assert_not_authorized(get_user(&server, &refreshed).await, &revoked, "a refreshed access token");
    // The other session lives on.
    assert_eq!(get_user(&server, &second.access).await.expect("GetUser"), "alice");
    refresh(&server, &app, "alice", &second.refresh).await.expect("refresh the other session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_belong_to_their_client() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let tokens = sign_in(&server, &app, "alice", PASSWORD).await;
    let invalid = ["Invalid Refresh Token"];

    let sibling = client_in(&server, &app.pool, ALL_FLOWS, false, true).await;
    assert_not_authorized(
        refresh(&server, &sibling, "alice", &tokens.refresh).await,
        &invalid,
        "refresh token of another client of the pool",
    );
    let other = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &other.pool, "alice").await;
    assert_not_authorized(
        refresh(&server, &other, "alice", &tokens.refresh).await,
        &invalid,
        "refresh token of another pool",
    );
    assert_not_authorized(
        refresh(&server, &app, "alice", "not-a-refresh-token").await,
        &invalid,
        "garbage refresh token",
    );
    let mut bent = tokens.refresh.clone().into_bytes();
    let middle = bent.len() / 2;
    bent[middle] = if bent[middle] == b'A' { b'B' } else { b'A' };
    assert_not_authorized(
        refresh(&server, &app, "alice", &String::from_utf8(bent).expect("utf8")).await,
        &invalid,
        "refresh token with a changed character",
    );
    refresh(&server, &app, "alice", &tokens.refresh).await.expect("the real refresh token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_password_session_cannot_be_replayed() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = forced_user(&server, &app.pool, "bob").await;
    forced_user(&server, &app.pool, "carol").await;
    let admin = server.idp();

    let challenge = ok(admin
        .admin_initiate_auth()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "bob")
        .auth_parameters("PASSWORD", TEMP_PASSWORD)
        .send()
        .await);
    assert_eq!(challenge.challenge_name(), Some(&ChallengeNameType::NewPasswordRequired));
    assert!(challenge.authentication_result().is_none());
    let session = challenge.session().expect("Session").to_string();
    let params = challenge.challenge_parameters().expect("ChallengeParameters");
    assert_eq!(params.get("USER_ID_FOR_SRP").map(String::as_str), Some("bob"), "{params:?}");
    let required: Value = serde_json::from_str(params.get("requiredAttributes").expect("requiredAttributes"))
        .expect("requiredAttributes is JSON");
    assert_eq!(required, json!([]), "{params:?}");
    let user_attributes: Value =
        serde_json::from_str(params.get("userAttributes").expect("userAttributes")).expect("userAttributes is JSON");
    assert_eq!(user_attributes["email"], json!(email), "{params:?}");

    let answer = |password: &'static str| {
        admin
            .admin_respond_to_auth_challenge()
            .user_pool_id(&app.pool)
            .client_id(&app.client)
            .challenge_name(ChallengeNameType::NewPasswordRequired)
            .session(&session)
            .challenge_responses("USERNAME", "bob")
            .challenge_responses("NEW_PASSWORD", password)
            .send()
    };
    // Bob's session (another one) does not set Carol's password.
    let other_session = ok(admin
        .admin_initiate_auth()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "bob")
        .auth_parameters("PASSWORD", TEMP_PASSWORD)
        .send()
        .await)
    .session
    .expect("Session");
    let swapped = sdk_err(
        admin
            .admin_respond_to_auth_challenge()
            .user_pool_id(&app.pool)
            .client_id(&app.client)
            .challenge_name(ChallengeNameType::NewPasswordRequired)
            .session(&other_session)
            .challenge_responses("USERNAME", "carol")
            .challenge_responses("NEW_PASSWORD", "Car0lsNewPassw0rd!")
            .send()
            .await,
    );
    assert!(swapped.is_err(), "bob's NEW_PASSWORD_REQUIRED session answered for carol: {swapped:?}");
    assert_eq!(server.user_status(&app.pool, "carol").await, "FORCE_CHANGE_PASSWORD");
    assert_not_authorized(
        password_auth(&server, &app, "carol", "Car0lsNewPassw0rd!").await,
        &["Incorrect username or password."],
        "the password set through bob's session",
    );

    let done = ok(answer(NEW_PASSWORD).await);
    let tokens = tokens_of(done.authentication_result(), "AdminRespondToAuthChallenge");
    check_pair(&tokens.id, &tokens.access, &issuer(&server, &app.pool), &app, "bob", &email);
    assert_eq!(server.user_status(&app.pool, "bob").await, "CONFIRMED");

    let message = assert_code(
        sdk_err(answer("An0therPassw0rd!").await),
        "NotAuthorizedException",
        "the same NEW_PASSWORD_REQUIRED session a second time",
    );
    note(&format!("replayed NEW_PASSWORD_REQUIRED session: {message:?}"));
    sign_in(&server, &app, "bob", NEW_PASSWORD).await;
    assert_not_authorized(
        password_auth(&server, &app, "bob", "An0therPassw0rd!").await,
        &["Incorrect username or password."],
        "the replayed password",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_five_wrong_passwords() {
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    // A correct password in between resets the count.
    for _ in 0..3 {
        assert_not_authorized(
            password_auth(&server, &app, "alice", "Wr0ngPassw0rd!").await,
            &["Incorrect username or password."],
            "wrong password",
        );
    }
    sign_in(&server, &app, "alice", PASSWORD).await;
    for attempt in 1..=5 {
        assert_not_authorized(
            password_auth(&server, &app, "alice", "Wr0ngPassw0rd!").await,
            &["Incorrect username or password."],
            &format!("wrong password #{attempt}"),
        );
    }
    assert_not_authorized(
        password_auth(&server, &app, "alice", "Wr0ngPassw0rd!").await,
        &["Password attempts exceeded"],
        "6th wrong password",
    );
    assert_not_authorized(
        password_auth(&server, &app, "alice", PASSWORD).await,
        &["Password attempts exceeded"],
        "the right password while locked out",
    );
    // Other users are not locked out.
    confirmed_user(&server, &app.pool, "carol").await;
    sign_in(&server, &app, "carol", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_flows_and_secret_hash_are_enforced() {
    let server = Server::sqlite().await;
    let srp_only = app_with(&server, &[F::AllowUserSrpAuth, F::AllowRefreshTokenAuth], false).await;
    confirmed_user(&server, &srp_only.pool, "alice").await;
    let message = assert_code(
        password_auth(&server, &srp_only, "alice", PASSWORD).await,
        "InvalidParameterException",
        "USER_PASSWORD_AUTH on a client without ALLOW_USER_PASSWORD_AUTH",
    );
    assert_eq!(message, "USER_PASSWORD_AUTH flow not enabled for this client");
    let admin = sdk_err(
        server
            .idp()
            .admin_initiate_auth()
            .user_pool_id(&srp_only.pool)
            .client_id(&srp_only.client)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", "alice")
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await,
    );
    let message = assert_code(
        admin,
        "InvalidParameterException",
        "ADMIN_USER_PASSWORD_AUTH on a client without ALLOW_ADMIN_USER_PASSWORD_AUTH",
    );
    note(&format!("ADMIN_USER_PASSWORD_AUTH not enabled: {message:?}"));

    let password_only = client_in(&server, &srp_only.pool, &[F::AllowUserPasswordAuth], false, true).await;
    let srp = sdk_err(
        server
            .idp_anonymous()
            .initiate_auth()
            .client_id(&password_only.client)
            .auth_flow(AuthFlowType::UserSrpAuth)
            .auth_parameters("USERNAME", "alice")
            .auth_parameters("SRP_A", "0a1b2c3d")
            .send()
            .await,
    );
    let message = assert_code(srp, "InvalidParameterException", "USER_SRP_AUTH on a client without it");
    note(&format!("USER_SRP_AUTH not enabled: {message:?}"));
    let secret = client_in(&server, &srp_only.pool, ALL_FLOWS, true, true).await;
    assert!(secret.secret.is_some(), "GenerateSecret gave no secret");
    let no_hash = App { secret: None, ..secret.clone() };
    let message = assert_code(
        password_auth(&server, &no_hash, "alice", PASSWORD).await,
        "NotAuthorizedException",
        "no SECRET_HASH for a client with a secret",
    );
    note(&format!("missing SECRET_HASH: {message:?}"));
    let wrong = App { secret: Some("not-the-secret".into()), ..secret.clone() };
    let message = assert_code(
        password_auth(&server, &wrong, "alice", PASSWORD).await,
        "NotAuthorizedException",
        "wrong SECRET_HASH",
    );
    assert_eq!(message, format!("Unable to verify secret hash for client {}", secret.client));
    let tokens = sign_in(&server, &secret, "alice", PASSWORD).await;
    refresh(&server, &secret, "alice", &tokens.refresh).await.expect("refresh with SECRET_HASH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_auth_parameters_are_ignored() {
    // amazon-cognito-identity-js's refreshSession sends
    // "AuthParameters": {"REFRESH_TOKEN": "...", "DEVICE_KEY": null} when it
    // remembers no device; Cognito takes a null map value as absent.
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let tokens = sign_in(&server, &app, "alice", PASSWORD).await;
    let raw = server.raw();
    let refreshed = raw
        .idp_unsigned(
            "InitiateAuth",
            json!({
                "ClientId": app.client,
                "AuthFlow": "REFRESH_TOKEN_AUTH",
                "AuthParameters": {"REFRESH_TOKEN": tokens.refresh, "DEVICE_KEY": null},
            }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "REFRESH_TOKEN_AUTH with DEVICE_KEY: null answered {}", refreshed.body);
    assert!(refreshed.json()["AuthenticationResult"]["AccessToken"].is_string(), "{}", refreshed.body);
    let signed_in = raw
        .idp_unsigned(
            "InitiateAuth",
            json!({
                "ClientId": app.client,
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD, "SECRET_HASH": null},
                "ClientMetadata": {},
            }),
        )
        .await;
    assert_eq!(signed_in.status, 200, "USER_PASSWORD_AUTH with SECRET_HASH: null answered {}", signed_in.body);
}

// ---------------------------------------------------------------------------
// amazon-cognito-identity-js
// ---------------------------------------------------------------------------

fn identity_js_input(server: &Server, app: &App, username: &str, password: &str) -> Value {
    json!({
        "endpoint": format!("{}/", server.url()),
        "userPoolId": app.pool,
        "clientId": app.client,
        "username": username,
        "password": password,
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_js_srp_attributes_refresh_and_revoke() {
    let Some(js) = Js::get("identity_js_srp_attributes_refresh_and_revoke") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;
    let iss = issuer(&server, &app.pool);

    let input = with(
        identity_js_input(&server, &app, "alice", PASSWORD),
        json!({"getUser": true, "refresh": true, "signOut": "revoke"}),
    );
    let r = js.run("cognito-identity.mjs", input).await;
    let calls = call_list(&r);
    assert!(
        calls.starts_with(&["InitiateAuth 200".to_string(), "RespondToAuthChallenge 200".to_string()]),
        "SRP sign-in calls: {calls:?}"
    );
    assert_eq!(r["tokens"]["valid"], json!(true), "the library finds the session invalid: {r}");
    let (id, access) = check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &iss,
        &app,
        "alice",
        &email,
    );
    assert_eq!(r["attributes"]["email"], json!(email), "getUserAttributes: {r}");
    assert_eq!(r["attributes"]["email_verified"], json!("true"), "getUserAttributes: {r}");
    assert_eq!(r["attributes"]["sub"], id["sub"], "getUserAttributes: {r}");
    let (rid, racc) = check_pair(
        script_str(&r, "/refreshed/idToken"),
        script_str(&r, "/refreshed/accessToken"),
        &iss,
        &app,
        "alice",
        &email,
    );
    check_refreshed(&id, &rid);
    check_refreshed(&access, &racc);
    assert_called(&r, "RevokeToken");

    // The library's signOut revoked the session on the server.
    let refresh_token = script_str(&r, "/tokens/refreshToken");
    assert_code(
        refresh(&server, &app, "alice", refresh_token).await,
        "NotAuthorizedException",
        "refresh after the library's signOut",
    );
    assert_not_authorized(
        get_user(&server, script_str(&r, "/refreshed/accessToken")).await,
        &["Access Token has been revoked"],
        "access token after the library's signOut",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_js_user_password_auth_and_global_sign_out() {
    let Some(js) = Js::get("identity_js_user_password_auth_and_global_sign_out") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;

    let input = with(
        identity_js_input(&server, &app, "alice", PASSWORD),
        json!({"flow": "USER_PASSWORD_AUTH", "signOut": "global"}),
    );
    let r = js.run("cognito-identity.mjs", input).await;
    assert_eq!(call_list(&r)[0], "InitiateAuth 200");
    check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &issuer(&server, &app.pool),
        &app,
        "alice",
        &email,
    );
    assert_called(&r, "GlobalSignOut");
    assert_not_authorized(
        get_user(&server, script_str(&r, "/tokens/accessToken")).await,
        &["Access Token has been revoked"],
        "access token after globalSignOut",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_js_new_password_required() {
    let Some(js) = Js::get("identity_js_new_password_required") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = forced_user(&server, &app.pool, "bob").await;
    assert_eq!(server.user_status(&app.pool, "bob").await, "FORCE_CHANGE_PASSWORD");

    let input = with(
        identity_js_input(&server, &app, "bob", TEMP_PASSWORD),
        json!({"newPassword": NEW_PASSWORD, "newAttributes": {}}),
    );
    let r = js.run("cognito-identity.mjs", input).await;
    assert_eq!(r["challenge"]["requiredAttributes"], json!([]), "{r}");
    assert_eq!(r["challenge"]["userAttributes"]["email"], json!(email), "{r}");
    check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &issuer(&server, &app.pool),
        &app,
        "bob",
        &email,
    );
    assert_eq!(server.user_status(&app.pool, "bob").await, "CONFIRMED");
    sign_in(&server, &app, "bob", NEW_PASSWORD).await;
    assert_not_authorized(
        password_auth(&server, &app, "bob", TEMP_PASSWORD).await,
        &["Incorrect username or password."],
        "the temporary password after the change",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_js_sees_cognito_errors() {
    let Some(js) = Js::get("identity_js_sees_cognito_errors") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let legacy = client_in(&server, &app.pool, ALL_FLOWS, false, false).await;
    confirmed_user(&server, &app.pool, "erin").await;
    ok(server.idp().admin_disable_user().user_pool_id(&app.pool).username("erin").send().await);
    ok(server
        .idp_anonymous()
        .sign_up()
        .client_id(&app.client)
        .username("frank")
        .password(PASSWORD)
        .user_attributes(attr("email", &email_of("frank")))
        .send()
        .await);

    let failure = |r: &Value| (r["failure"]["code"].clone(), r["failure"]["message"].clone());
    let expect_failure = json!({"expectFailure": true});
    for flow in ["USER_SRP_AUTH", "USER_PASSWORD_AUTH"] {
        let flow = json!({ "flow": flow });
        let r = js
            .run(
                "cognito-identity.mjs",
                with(
                    with(identity_js_input(&server, &app, "alice", "Wr0ngPassw0rd!"), flow.clone()),
                    expect_failure.clone(),
                ),
            )
            .await;
        assert_eq!(
            failure(&r),
            (json!("NotAuthorizedException"), json!("Incorrect username or password.")),
            "wrong password ({flow}): {r}"
        );
        // PreventUserExistenceErrors ENABLED: an unknown user looks like a wrong password.
        let r = js
            .run(
                "cognito-identity.mjs",
                with(with(identity_js_input(&server, &app, "nobody", PASSWORD), flow.clone()), expect_failure.clone()),
            )
            .await;
        assert_eq!(
            failure(&r),
            (json!("NotAuthorizedException"), json!("Incorrect username or password.")),
            "unknown user, PreventUserExistenceErrors ENABLED ({flow}): {r}"
        );
        // LEGACY: UserNotFoundException.
        let r = js
            .run(
                "cognito-identity.mjs",
                with(
                    with(identity_js_input(&server, &legacy, "nobody", PASSWORD), flow.clone()),
                    expect_failure.clone(),
                ),
            )
            .await;
        assert_eq!(
            failure(&r),
            (json!("UserNotFoundException"), json!("User does not exist.")),
            "unknown user, PreventUserExistenceErrors LEGACY ({flow}): {r}"
        );
        let r = js
            .run(
                "cognito-identity.mjs",
                with(with(identity_js_input(&server, &app, "erin", PASSWORD), flow.clone()), expect_failure.clone()),
            )
            .await;
        assert_eq!(
            failure(&r),
            (json!("NotAuthorizedException"), json!("User is disabled.")),
            "disabled user ({flow}): {r}"
        );
        let r = js
            .run(
                "cognito-identity.mjs",
                with(with(identity_js_input(&server, &app, "frank", PASSWORD), flow.clone()), expect_failure.clone()),
            )
            .await;
        assert_eq!(
            failure(&r),
            (json!("UserNotConfirmedException"), json!("User is not confirmed.")),
            "unconfirmed user ({flow}): {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_js_remembered_device() {
    let Some(js) = Js::get("identity_js_remembered_device") else {
        return;
    };
    let server = Server::sqlite().await;
    let pool = server
        .new_pool(|p| {
            p.device_configuration(
                DeviceConfigurationType::builder()
                    .challenge_required_on_new_device(true)
                    .device_only_remembered_on_user_prompt(false)
                    .build(),
            )
        })
        .await;
    let app = client_in(&server, &pool, ALL_FLOWS, false, true).await;
    let email = confirmed_user(&server, &pool, "alice").await;
    let input = with(identity_js_input(&server, &app, "alice", PASSWORD), json!({"rememberDevice": true}));
    let r = js.run("cognito-identity.mjs", input).await;
    assert_called(&r, "ConfirmDevice");
    assert_called(&r, "UpdateDeviceStatus");
    let second: Vec<String> = r["second"]["calls"]
        .as_array()
        .expect("second sign-in calls")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        second,
        ["InitiateAuth", "RespondToAuthChallenge", "RespondToAuthChallenge", "RespondToAuthChallenge"],
        "PASSWORD_VERIFIER, DEVICE_SRP_AUTH, DEVICE_PASSWORD_VERIFIER: {r}"
    );
    let (_, access) = check_pair(
        script_str(&r, "/second/tokens/idToken"),
        script_str(&r, "/second/tokens/accessToken"),
        &issuer(&server, &pool),
        &app,
        "alice",
        &email,
    );
    assert_eq!(access["device_key"], r["deviceKey"], "the access token names the device: {access}");
}

// ---------------------------------------------------------------------------
// Amplify JS v6
// ---------------------------------------------------------------------------

fn amplify_input(server: &Server, app: &App, username: &str, password: &str) -> Value {
    json!({
        "endpoint": server.url(),
        "userPoolId": app.pool,
        "clientId": app.client,
        "username": username,
        "password": password,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_srp_sign_in_and_sign_out() {
    let Some(js) = Js::get("amplify_srp_sign_in_and_sign_out") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;

    let input = with(amplify_input(&server, &app, "alice", PASSWORD), json!({"getUser": true, "signOut": "local"}));
    let r = js.run("amplify.mjs", input).await;
    let calls = call_list(&r);
    assert!(
        calls.starts_with(&["InitiateAuth 200".to_string(), "RespondToAuthChallenge 200".to_string()]),
        "Amplify's SRP sign-in calls: {calls:?}"
    );
    assert_eq!(r["signInStep"], json!("DONE"), "{r}");
    let (id, _) = check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &issuer(&server, &app.pool),
        &app,
        "alice",
        &email,
    );
    assert_eq!(r["currentUser"]["username"], json!("alice"), "{r}");
    assert_eq!(r["currentUser"]["userId"], id["sub"], "{r}");
    assert_eq!(r["attributes"]["email"], json!(email), "fetchUserAttributes: {r}");
    assert_called(&r, "GetUser");
    assert_called(&r, "RevokeToken");
    assert!(r["tokensLeft"].is_null(), "signOut left tokens in the storage: {r}");

    let refresh_token = script_str(&r, "/tokens/refreshToken");
    assert_code(
        refresh(&server, &app, "alice", refresh_token).await,
        "NotAuthorizedException",
        "refresh after Amplify's signOut",
    );
    assert_not_authorized(
        get_user(&server, script_str(&r, "/tokens/accessToken")).await,
        &["Access Token has been revoked"],
        "access token after Amplify's signOut",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_refreshes_tokens() {
    let Some(js) = Js::get("amplify_refreshes_tokens") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;
    let iss = issuer(&server, &app.pool);

    let input = with(amplify_input(&server, &app, "alice", PASSWORD), json!({"refresh": true}));
    let r = js.run("amplify.mjs", input).await;
    // Amplify >= 6.15 refreshes with GetTokensFromRefreshToken, not
    // InitiateAuth REFRESH_TOKEN_AUTH.
    assert_called(&r, "GetTokensFromRefreshToken");
    let (id, access) = check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &iss,
        &app,
        "alice",
        &email,
    );
    let (rid, racc) = check_pair(
        script_str(&r, "/refreshed/idToken"),
        script_str(&r, "/refreshed/accessToken"),
        &iss,
        &app,
        "alice",
        &email,
    );
    check_refreshed(&id, &rid);
    check_refreshed(&access, &racc);
    assert_eq!(get_user(&server, script_str(&r, "/refreshed/accessToken")).await.expect("GetUser"), "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_new_password_required() {
    let Some(js) = Js::get("amplify_new_password_required") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    // SRP, and USER_PASSWORD_AUTH (InitiateAuth answers the challenge with a
    // Session that RespondToAuthChallenge takes back).
    for (username, flow) in [("bob", "USER_SRP_AUTH"), ("brenda", "USER_PASSWORD_AUTH")] {
        let email = forced_user(&server, &app.pool, username).await;
        let input = with(
            amplify_input(&server, &app, username, TEMP_PASSWORD),
            json!({"newPassword": NEW_PASSWORD, "authFlowType": flow}),
        );
        let r = js.run("amplify.mjs", input).await;
        assert_eq!(r["signInStep"], json!("CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED"), "{flow}: {r}");
        assert_eq!(r["missingAttributes"], json!([]), "{flow}: {r}");
        assert_eq!(r["finalStep"], json!("DONE"), "{flow}: {r}");
        check_pair(
            script_str(&r, "/tokens/idToken"),
            script_str(&r, "/tokens/accessToken"),
            &issuer(&server, &app.pool),
            &app,
            username,
            &email,
        );
        assert_eq!(server.user_status(&app.pool, username).await, "CONFIRMED", "{flow}");
        sign_in(&server, &app, username, NEW_PASSWORD).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_user_password_auth_and_global_sign_out() {
    let Some(js) = Js::get("amplify_user_password_auth_and_global_sign_out") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;

    let input = with(
        amplify_input(&server, &app, "alice", PASSWORD),
        json!({"authFlowType": "USER_PASSWORD_AUTH", "signOut": "global"}),
    );
    let r = js.run("amplify.mjs", input).await;
    assert_eq!(call_list(&r)[0], "InitiateAuth 200");
    check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &issuer(&server, &app.pool),
        &app,
        "alice",
        &email,
    );
    assert_called(&r, "GlobalSignOut");
    assert_not_authorized(
        get_user(&server, script_str(&r, "/tokens/accessToken")).await,
        &["Access Token has been revoked"],
        "access token after Amplify's global signOut",
    );

    // A wrong password reaches Amplify as NotAuthorizedException.
    let input = with(amplify_input(&server, &app, "alice", "Wr0ngPassw0rd!"), json!({"expectFailure": true}));
    let r = js.run("amplify.mjs", input).await;
    assert_eq!(r["failure"]["name"], json!("NotAuthorizedException"), "{r}");
    assert_eq!(r["failure"]["message"], json!("Incorrect username or password."), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_unconfirmed_user_must_confirm() {
    let Some(js) = Js::get("amplify_unconfirmed_user_must_confirm") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    ok(server
        .idp_anonymous()
        .sign_up()
        .client_id(&app.client)
        .username("frank")
        .password(PASSWORD)
        .user_attributes(attr("email", &email_of("frank")))
        .send()
        .await);
    // Amplify turns UserNotConfirmedException into the CONFIRM_SIGN_UP step.
    for flow in ["USER_SRP_AUTH", "USER_PASSWORD_AUTH"] {
        let r = js
            .run("amplify.mjs", with(amplify_input(&server, &app, "frank", PASSWORD), json!({"authFlowType": flow})))
            .await;
        assert_eq!(r["isSignedIn"], json!(false), "{flow}: {r}");
        assert_eq!(r["finalStep"], json!("CONFIRM_SIGN_UP"), "{flow}: {r}");
    }
}

// ---------------------------------------------------------------------------
// aws-jwt-verify
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_jwt_verify_accepts_the_tokens() {
    let Some(js) = Js::get("aws_jwt_verify_accepts_the_tokens") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let tokens = sign_in(&server, &app, "alice", PASSWORD).await;
    let iss = issuer(&server, &app.pool);

    let r = js
        .run(
            "verify.mjs",
            json!({
                "discoveryUrl": format!("{iss}/.well-known/openid-configuration"),
                "issuer": iss,
                "clientId": app.client,
                "idToken": tokens.id,
                "accessToken": tokens.access,
            }),
        )
        .await;
    note(&format!(
        "aws-jwt-verify got the JWKS via {} ({})",
        r["jwksVia"],
        r["jwksUriError"].as_str().unwrap_or("no error")
    ));
    assert_eq!(r["discovery"]["issuer"], json!(iss), "{r}");
    assert_eq!(r["idPayload"]["cognito:username"], json!("alice"), "{r}");
    assert_eq!(r["accessPayload"]["username"], json!("alice"), "{r}");
    for (case, outcome) in r["negative"].as_object().expect("negative checks") {
        assert_eq!(outcome["rejected"], json!(true), "aws-jwt-verify accepted {case}: {outcome}");
    }
}

// ---------------------------------------------------------------------------
// pycognito, boto3, the AWS CLI
// ---------------------------------------------------------------------------

fn py_input(server: &Server, app: &App, username: &str, password: &str) -> Value {
    json!({
        "endpoint": server.url(),
        "userPoolId": app.pool,
        "clientId": app.client,
        "clientSecret": app.secret,
        "username": username,
        "password": password,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pycognito_awssrp_without_and_with_secret() {
    let Some(py) = Py::get("pycognito_awssrp_without_and_with_secret") else {
        return;
    };
    let server = Server::sqlite().await;
    let plain = app_with(&server, ALL_FLOWS, false).await;
    let secret = client_in(&server, &plain.pool, ALL_FLOWS, true, true).await;
    let email = confirmed_user(&server, &plain.pool, "alice").await;
    let iss = issuer(&server, &plain.pool);

    for app in [&plain, &secret] {
        let what = if app.secret.is_some() { "with a secret" } else { "without a secret" };
        let r = py
            .run("pycognito_flows.py", with(py_input(&server, app, "alice", PASSWORD), json!({"mode": "awssrp"})))
            .await;
        assert_eq!(call_list(&r), ["InitiateAuth 200", "RespondToAuthChallenge 200"], "AWSSRP {what}: {r}");
        let result = &r["response"]["AuthenticationResult"];
        assert_eq!(result["TokenType"], json!("Bearer"), "{r}");
        check_pair(script_str(result, "/IdToken"), script_str(result, "/AccessToken"), &iss, app, "alice", &email);
        assert!(result["RefreshToken"].as_str().is_some_and(|t| !t.is_empty()), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pycognito_new_password_challenge_with_secret() {
    let Some(py) = Py::get("pycognito_new_password_challenge_with_secret") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, true).await;
    let email = forced_user(&server, &app.pool, "bob").await;

    let r = py
        .run(
            "pycognito_flows.py",
            with(py_input(&server, &app, "bob", TEMP_PASSWORD), json!({"mode": "awssrp", "newPassword": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(call_list(&r), ["InitiateAuth 200", "RespondToAuthChallenge 200", "RespondToAuthChallenge 200"], "{r}");
    let result = &r["response"]["AuthenticationResult"];
    check_pair(
        script_str(result, "/IdToken"),
        script_str(result, "/AccessToken"),
        &issuer(&server, &app.pool),
        &app,
        "bob",
        &email,
    );
    assert_eq!(server.user_status(&app.pool, "bob").await, "CONFIRMED");
    sign_in(&server, &app, "bob", NEW_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pycognito_verifies_refreshes_and_logs_out() {
    let Some(py) = Py::get("pycognito_verifies_refreshes_and_logs_out") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, true).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;
    let iss = issuer(&server, &app.pool);

    let r = py
        .run("pycognito_flows.py", with(py_input(&server, &app, "alice", PASSWORD), json!({"mode": "cognito"})))
        .await;
    // pycognito verified both tokens (signature with the JWKS, iss, aud,
    // token_use) against {endpoint}/{pool}.
    assert_eq!(r["userPoolUrl"], json!(iss), "{r}");
    check_pair(script_str(&r, "/tokens/idToken"), script_str(&r, "/tokens/accessToken"), &iss, &app, "alice", &email);
    assert_eq!(r["tokens"]["tokenType"], json!("Bearer"), "{r}");
    assert_eq!(r["user"]["username"], json!("alice"), "{r}");
    assert_eq!(r["user"]["attributes"]["email"], json!(email), "{r}");
    check_pair(script_str(&r, "/renewed/idToken"), script_str(&r, "/renewed/accessToken"), &iss, &app, "alice", &email);
    assert_eq!(r["afterLogout"]["rejected"], json!(true), "GetUser after logout: {r}");
    assert_eq!(r["afterLogout"]["code"], json!("NotAuthorizedException"), "{r}");
    assert_eq!(r["afterLogout"]["message"], json!("Access Token has been revoked"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_admin_new_password_and_refresh() {
    let Some(py) = Py::get("boto3_admin_new_password_and_refresh") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, true).await;
    let email = forced_user(&server, &app.pool, "bob").await;
    let iss = issuer(&server, &app.pool);

    let r = py
        .run(
            "boto3_admin.py",
            with(py_input(&server, &app, "bob", TEMP_PASSWORD), json!({"newPassword": NEW_PASSWORD})),
        )
        .await;
    let challenge = &r["challenge"];
    assert_eq!(challenge["ChallengeName"], json!("NEW_PASSWORD_REQUIRED"), "{r}");
    assert!(challenge["Session"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    assert_eq!(challenge["ChallengeParameters"]["USER_ID_FOR_SRP"], json!("bob"), "{r}");
    assert_eq!(challenge["ChallengeParameters"]["requiredAttributes"], json!("[]"), "{r}");
    let user_attributes: Value =
        serde_json::from_str(script_str(challenge, "/ChallengeParameters/userAttributes")).expect("userAttributes");
    assert_eq!(user_attributes["email"], json!(email), "{r}");
    for step in ["answered", "signedIn"] {
        let result = &r[step]["AuthenticationResult"];
        check_pair(script_str(result, "/IdToken"), script_str(result, "/AccessToken"), &iss, &app, "bob", &email);
    }
    let refreshed = &r["refreshed"]["AuthenticationResult"];
    assert!(refreshed.get("RefreshToken").is_none(), "REFRESH_TOKEN_AUTH returned a refresh token: {r}");
    check_pair(script_str(refreshed, "/IdToken"), script_str(refreshed, "/AccessToken"), &iss, &app, "bob", &email);
    assert_eq!(r["user"]["Username"], json!("bob"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_initiate_auth_and_get_user() {
    let Some(py) = Py::get("aws_cli_initiate_auth_and_get_user") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;

    let (success, stdout, stderr) = py
        .aws(
            &server,
            &[
                "cognito-idp",
                "initiate-auth",
                "--auth-flow",
                "USER_PASSWORD_AUTH",
                "--client-id",
                &app.client,
                "--auth-parameters",
                &format!("USERNAME=alice,PASSWORD={PASSWORD}"),
            ],
        )
        .await;
    assert!(success, "aws cognito-idp initiate-auth failed: {stdout}{stderr}");
    let out: Value = serde_json::from_str(&stdout).expect("initiate-auth JSON");
    let result = &out["AuthenticationResult"];
    let access = script_str(result, "/AccessToken").to_string();
    check_pair(script_str(result, "/IdToken"), &access, &issuer(&server, &app.pool), &app, "alice", &email);

    let (success, stdout, stderr) = py.aws(&server, &["cognito-idp", "get-user", "--access-token", &access]).await;
    assert!(success, "aws cognito-idp get-user failed: {stdout}{stderr}");
    let user: Value = serde_json::from_str(&stdout).expect("get-user JSON");
    assert_eq!(user["Username"], json!("alice"), "{user}");

    let (success, stdout, stderr) = py
        .aws(
            &server,
            &[
                "cognito-idp",
                "initiate-auth",
                "--auth-flow",
                "USER_PASSWORD_AUTH",
                "--client-id",
                &app.client,
                "--auth-parameters",
                "USERNAME=alice,PASSWORD=Wr0ngPassw0rd!",
            ],
        )
        .await;
    assert!(!success, "a wrong password succeeded: {stdout}");
    assert!(
        stderr.contains("(NotAuthorizedException)") && stderr.contains("Incorrect username or password."),
        "the CLI's error: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srp_password_verifier_cannot_be_replayed() {
    let Some(py) = Py::get("srp_password_verifier_cannot_be_replayed") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;
    confirmed_user(&server, &app.pool, "mallory").await;
    let challenge_for = |username: &str| {
        py.run(
            "pycognito_flows.py",
            with(py_input(&server, &app, username, PASSWORD), json!({"mode": "srp_challenge"})),
        )
    };

    let challenge = challenge_for("alice").await;
    let params = &challenge["challengeParameters"];
    assert_eq!(params["USER_ID_FOR_SRP"], json!("alice"), "{challenge}");
    assert_eq!(params["USERNAME"], json!("alice"), "{challenge}");
    for key in ["SRP_B", "SALT", "SECRET_BLOCK"] {
        assert!(params[key].as_str().is_some_and(|v| !v.is_empty()), "no {key}: {challenge}");
    }
    let answer = &challenge["challengeResponses"];
    let done = respond_password_verifier(&server, &app, &challenge, answer).await.expect("PASSWORD_VERIFIER");
    let tokens = tokens_of(done.authentication_result(), "PASSWORD_VERIFIER");
    check_pair(&tokens.id, &tokens.access, &issuer(&server, &app.pool), &app, "alice", &email);

    let message = assert_code(
        respond_password_verifier(&server, &app, &challenge, answer).await,
        "NotAuthorizedException",
        "the same PASSWORD_VERIFIER answer (SECRET_BLOCK, signature) a second time",
    );
    note(&format!("replayed PASSWORD_VERIFIER: {message:?}"));

    // A wrong signature on a fresh challenge is a wrong password.
    let fresh = challenge_for("alice").await;
    let mut bad = fresh["challengeResponses"].clone();
    let mut signature = aws_smithy_types::base64::decode(script_str(&bad, "/PASSWORD_CLAIM_SIGNATURE"))
        .expect("PASSWORD_CLAIM_SIGNATURE is base64");
    signature[0] ^= 0x01;
    bad["PASSWORD_CLAIM_SIGNATURE"] = json!(aws_smithy_types::base64::encode(signature));
    assert_not_authorized(
        respond_password_verifier(&server, &app, &fresh, &bad).await,
        &["Incorrect username or password."],
        "a wrong PASSWORD_CLAIM_SIGNATURE",
    );

    // Mallory's proof of her own password does not sign her in as Alice.
    let theirs = challenge_for("mallory").await;
    let mut swapped = theirs["challengeResponses"].clone();
    swapped["USERNAME"] = json!("alice");
    assert_code(
        respond_password_verifier(&server, &app, &theirs, &swapped).await,
        "NotAuthorizedException",
        "mallory's PASSWORD_VERIFIER answer with USERNAME alice",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srp_works_for_every_salt_and_key() {
    // Cognito's SRP pads A, B, S, the salt and x to a positive two's-complement
    // hex string (a leading 00 when the high bit is set): a mismatch shows for
    // about half of the users or sign-ins, so sign many users in many times,
    // with both the JavaScript (BigInteger) and the Python (int) SRP.
    let test = "srp_works_for_every_salt_and_key";
    let (Some(js), Some(py)) = (Js::get(test), Py::get(test)) else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let mut users = Vec::new();
    for i in 0..12 {
        let username = format!("user{i:02}");
        let password = format!("Passw0rd!{i}");
        forced_user(&server, &app.pool, &username).await;
        ok(server
            .idp()
            .admin_set_user_password()
            .user_pool_id(&app.pool)
            .username(&username)
            .password(&password)
            .permanent(true)
            .send()
            .await);
        users.push(json!({"username": username, "password": password}));
    }
    let input = json!({
        "endpoint": format!("{}/", server.url()),
        "userPoolId": app.pool,
        "clientId": app.client,
        "users": users,
        "rounds": 2,
    });
    let r = js.run("srp-many.mjs", input.clone()).await;
    assert_eq!(r["attempts"], json!(24), "{r}");
    assert_eq!(r["failures"], json!([]), "amazon-cognito-identity-js SRP sign-ins failed");
    let mut input = input;
    input["endpoint"] = json!(server.url());
    input["mode"] = json!("srp_many");
    let r = py.run("pycognito_flows.py", input).await;
    assert_eq!(r["attempts"], json!(24), "{r}");
    assert_eq!(r["failures"], json!([]), "pycognito SRP sign-ins failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srp_rejects_a_zero_public_key() {
    // SRP's classic hole: with A = 0 (mod N) the server's secret S is 0 for
    // every password, so a server that does not refuse such an A lets anyone
    // sign in as anyone.
    let Some(py) = Py::get("srp_rejects_a_zero_public_key") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let mut usernames = Vec::new();
    for i in 0..9 {
        let username = format!("victim{i}");
        confirmed_user(&server, &app.pool, &username).await;
        usernames.push(username);
    }
    let r = py
        .run(
            "pycognito_flows.py",
            with(py_input(&server, &app, "unused", "unused"), json!({"mode": "srp_bad_a", "usernames": usernames})),
        )
        .await;
    let outcomes = r["outcomes"].as_array().expect("outcomes");
    for outcome in outcomes {
        assert!(outcome["authenticated"].is_null(), "signed in with A = 0 (mod N) and S = 0: {outcome}\n{r}");
        assert!(outcome["rejectedAt"].is_string(), "{outcome}");
    }
    // Where it is refused (InitiateAuth, or the answer) Cognito does not document.
    note(&format!("SRP_A = 0 (mod N): {}", serde_json::to_string(outcomes).unwrap_or_default()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pycognito_totp_mfa() {
    let Some(py) = Py::get("pycognito_totp_mfa") else {
        return;
    };
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    ok(server
        .idp()
        .set_user_pool_mfa_config()
        .user_pool_id(&pool)
        .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
        .mfa_configuration(UserPoolMfaType::Optional)
        .send()
        .await);
    let app = client_in(&server, &pool, ALL_FLOWS, false, true).await;
    let email = confirmed_user(&server, &pool, "alice").await;
    let r =
        py.run("pycognito_flows.py", with(py_input(&server, &app, "alice", PASSWORD), json!({"mode": "totp"}))).await;
    assert_called(&r, "AssociateSoftwareToken");
    assert_called(&r, "VerifySoftwareToken");
    assert_called(&r, "SetUserMFAPreference");
    check_pair(
        script_str(&r, "/tokens/idToken"),
        script_str(&r, "/tokens/accessToken"),
        &issuer(&server, &pool),
        &app,
        "alice",
        &email,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_as_username_with_srp_clients() {
    let test = "email_as_username_with_srp_clients";
    let (Some(js), Some(py)) = (Js::get(test), Py::get(test)) else {
        return;
    };
    let server = Server::sqlite().await;
    // The pool Amplify's CLI makes by default: the email is the sign-in name,
    // and the username is a generated UUID (USER_ID_FOR_SRP).
    let pool = server.new_pool(|p| p.username_attributes(UsernameAttributeType::Email)).await;
    let app = client_in(&server, &pool, ALL_FLOWS, false, true).await;
    let secret = client_in(&server, &pool, ALL_FLOWS, true, true).await;
    let email = "dana@example.com";
    ok(server
        .idp()
        .admin_create_user()
        .user_pool_id(&pool)
        .username(email)
        .temporary_password(TEMP_PASSWORD)
        .message_action(MessageActionType::Suppress)
        .user_attributes(attr("email_verified", "true"))
        .send()
        .await);
    ok(server
        .idp()
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username(email)
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await);
    let internal = server.get_user(&pool, email).await.username().to_string();
    assert!(is_uuid(&internal), "the username of an email-named user is a UUID, got {internal:?}");
    let iss = issuer(&server, &pool);

    let r = js
        .run("cognito-identity.mjs", with(identity_js_input(&server, &app, email, PASSWORD), json!({"getUser": true})))
        .await;
    check_pair(script_str(&r, "/tokens/idToken"), script_str(&r, "/tokens/accessToken"), &iss, &app, &internal, email);
    assert_eq!(r["attributes"]["email"], json!(email), "{r}");

    let r = js.run("amplify.mjs", amplify_input(&server, &app, email, PASSWORD)).await;
    check_pair(script_str(&r, "/tokens/idToken"), script_str(&r, "/tokens/accessToken"), &iss, &app, &internal, email);
    assert_eq!(r["currentUser"]["username"], json!(internal), "{r}");

    // With a secret: SECRET_HASH over the email in InitiateAuth, over the
    // UUID (the challenge's USERNAME) in RespondToAuthChallenge.
    let r = py
        .run("pycognito_flows.py", with(py_input(&server, &secret, email, PASSWORD), json!({"mode": "awssrp"})))
        .await;
    let result = &r["response"]["AuthenticationResult"];
    check_pair(script_str(result, "/IdToken"), script_str(result, "/AccessToken"), &iss, &secret, &internal, email);

    // USER_PASSWORD_AUTH with the email.
    let tokens = sign_in(&server, &app, email, PASSWORD).await;
    check_pair(&tokens.id, &tokens.access, &iss, &app, &internal, email);
}

// ---------------------------------------------------------------------------
// Identity pools: Amplify, fromCognitoIdentityPool, boto3
// ---------------------------------------------------------------------------

const AUTH_ROLE: &str = "arn:aws:iam::000000000000:role/authenticated";
const GUEST_ROLE: &str = "arn:aws:iam::000000000000:role/guest";

/// The name AWS documents for `app`'s user pool as a login provider.
fn provider_of(app: &App) -> String {
    format!("cognito-idp.{REGION}.amazonaws.com/{}", app.pool)
}

/// An identity pool that allows guests and trusts `app`, with both roles set.
async fn identity_pool_for(server: &Server, app: &App) -> String {
    let provider = CognitoIdentityProvider::builder().provider_name(provider_of(app)).client_id(&app.client).build();
    let pool = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(cognate_e2e::unique_name("ids"))
        .allow_unauthenticated_identities(true)
        .cognito_identity_providers(provider)
        .send()
        .await)
    .identity_pool_id;
    ok(server
        .identity()
        .set_identity_pool_roles()
        .identity_pool_id(&pool)
        .roles("authenticated", AUTH_ROLE)
        .roles("unauthenticated", GUEST_ROLE)
        .send()
        .await);
    pool
}

/// An identity id of this server's region: `us-east-1:<uuid>`.
#[track_caller]
fn check_identity_id(id: &str, what: &str) {
    let uuid = id.strip_prefix(&format!("{REGION}:")).unwrap_or_else(|| panic!("{what}: {id:?} is not {REGION}:…"));
    assert!(is_uuid(uuid), "{what}: {id:?} is not {REGION}:<uuid>");
}

/// Temporary credentials a client reported ({accessKeyId, secretAccessKey, sessionToken,
/// expiration in epoch seconds}), checked for shape and an hour's life.
#[track_caller]
fn script_credentials(v: &Value, what: &str) -> Credentials {
    let key = script_str(v, "/accessKeyId");
    assert!(key.starts_with("ASIA") && key.len() == 20, "{what}: access key {key:?}");
    let secret = script_str(v, "/secretAccessKey");
    assert_eq!(secret.len(), 40, "{what}: secret key {secret:?}");
    let token = script_str(v, "/sessionToken");
    assert!(!token.is_empty(), "{what}: empty session token");
    let expires = v["expiration"].as_i64().unwrap_or_else(|| panic!("{what}: no expiration in {v}"));
    assert!((expires - now() - 3600).abs() < 120, "{what}: credentials expire at {expires}, not in an hour");
    Credentials::new(key, secret, Some(token.to_string()), None, "client")
}

/// Cognate accepts `credentials` on a signed call and then refuses what it asks (an identity
/// may not administer pools): the key, signature and session token verified.
async fn assert_identity_credentials_accepted(server: &Server, credentials: Credentials, pool: &str, what: &str) {
    let client = cognate_e2e::identity::Client::new(&server.sdk_config_with(credentials));
    let err = expect_err(client.describe_identity_pool().identity_pool_id(pool).send().await);
    assert_eq!((err.status, err.code.as_str()), (400, "AccessDeniedException"), "{what}: {err:?}");
}

/// What a client saw of the server's answers to DescribeIdentityPool signed with the
/// temporary credentials (`signed`), with the session token altered and without it: refused
/// for what it asks, then as an unknown signer twice.
#[track_caller]
fn check_refusals(v: &Value, what: &str) {
    assert_eq!(
        (&v["signed"]["code"], &v["signed"]["status"]),
        (&json!("AccessDeniedException"), &json!(400)),
        "{what}: DescribeIdentityPool signed with the identity's credentials: {v}"
    );
    for bad in ["alteredToken", "noToken"] {
        assert_eq!(
            (&v[bad]["code"], &v[bad]["status"]),
            (&json!("UnrecognizedClientException"), &json!(400)),
            "{what}: DescribeIdentityPool signed with {bad}: {v}"
        );
    }
}

/// The logins DescribeIdentity reports for `id`.
async fn logins_of(server: &Server, id: &str) -> Vec<String> {
    ok(server.identity().describe_identity().identity_id(id).send().await).logins.unwrap_or_default()
}

/// GetId with one login, as the Rust SDK sends it.
async fn identity_of(server: &Server, pool: &str, provider: &str, id_token: &str) -> String {
    ok(server.identity().get_id().identity_pool_id(pool).logins(provider, id_token).send().await)
        .identity_id
        .expect("IdentityId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_identity_pool_guest_then_signed_in() {
    let Some(js) = Js::get("amplify_identity_pool_guest_then_signed_in") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let email = confirmed_user(&server, &app.pool, "alice").await;
    let pool = identity_pool_for(&server, &app).await;

    let input = with(amplify_input(&server, &app, "alice", PASSWORD), json!({ "identityPoolId": pool }));
    let r = js.run("amplify-identity.mjs", input).await;
    let calls = call_list(&r);
    // Only the guest's GetId: signed in, Amplify sends the guest identity id it stored with
    // the login, and the server makes that identity alice's.
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("GetId ")).collect::<Vec<_>>(),
        ["GetId 200"],
        "Amplify's calls: {calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("GetCredentialsForIdentity ")).count(),
        2,
        "guest and signed-in GetCredentialsForIdentity: {calls:?}"
    );
    assert_called(&r, "GetUser");

    let guest = script_str(&r, "/guest/identityId");
    check_identity_id(guest, "Amplify's guest identity");
    let signed_in = script_str(&r, "/signedIn/identityId");
    check_identity_id(signed_in, "Amplify's signed-in identity");
    assert_eq!(signed_in, guest, "the guest identity becomes alice's: {r}");
    let guest_credentials = script_credentials(&r["guest"]["credentials"], "Amplify's guest credentials");
    let credentials = script_credentials(&r["signedIn"]["credentials"], "Amplify's signed-in credentials");
    assert_ne!(guest_credentials.access_key_id(), credentials.access_key_id(), "signed in, new credentials: {r}");
    assert_identity_credentials_accepted(&server, credentials, &pool, "Amplify's signed-in credentials").await;

    // What Cognate reports of the identity: alice's login, under the name AWS documents
    // (Amplify sent the issuer-derived `127.0.0.1:PORT/<pool>`).
    let id_token = script_str(&r, "/signedIn/idToken");
    let claims = check_id_token(id_token, &issuer(&server, &app.pool), &app, "alice", &email);
    assert_eq!(logins_of(&server, guest).await, [provider_of(&app)], "DescribeIdentity after Amplify's sign-in");
    assert_eq!(identity_of(&server, &pool, &provider_of(&app), id_token).await, guest, "GetId with alice's token");
    let listed = ok(server.identity().list_identities().identity_pool_id(&pool).max_results(60).send().await);
    let listed: Vec<&str> = listed.identities().iter().filter_map(|i| i.identity_id()).collect();
    assert_eq!(listed, [guest], "the pool's identities after Amplify's session");
    assert_eq!(r["attributes"]["email"], json!(email), "fetchUserAttributes: {r}");
    assert_eq!(r["attributes"]["sub"], claims["sub"], "fetchUserAttributes: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_providers_from_cognito_identity_pool() {
    let Some(js) = Js::get("credential_providers_from_cognito_identity_pool") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let pool = identity_pool_for(&server, &app).await;
    let tokens = sign_in(&server, &app, "alice", PASSWORD).await;

    let input = json!({
        "endpoint": server.url(),
        "identityPoolId": pool,
        "provider": provider_of(&app),
        "idToken": tokens.id,
    });
    let r = js.run("credential-providers.mjs", input).await;
    for who in ["guest", "login"] {
        let v = &r[who];
        check_identity_id(script_str(v, "/identityId"), who);
        check_refusals(v, &format!("fromCognitoIdentityPool ({who})"));
        let credentials = script_credentials(&v["credentials"], who);
        assert_identity_credentials_accepted(&server, credentials, &pool, who).await;
    }
    // Each DescribeIdentityPool went out signed; all but the last of each three with a token.
    let sent: Vec<(bool, bool, i64)> = r["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            assert_eq!(c["target"], json!("DescribeIdentityPool"), "{r}");
            (c["signed"] == json!(true), c["sessionToken"] == json!(true), c["status"].as_i64().unwrap_or(0))
        })
        .collect();
    let three = [(true, true, 400), (true, true, 400), (true, false, 400)];
    assert_eq!(sent, [three, three].concat(), "{r}");

    let guest = script_str(&r, "/guest/identityId");
    let login = script_str(&r, "/login/identityId");
    assert_ne!(guest, login, "{r}");
    assert!(logins_of(&server, guest).await.is_empty(), "the guest identity has no login");
    assert_eq!(logins_of(&server, login).await, [provider_of(&app)], "DescribeIdentity of alice's identity");
    assert_eq!(identity_of(&server, &pool, &provider_of(&app), &tokens.id).await, login, "GetId with alice's token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_identity_pool_ids_credentials_and_signed_calls() {
    let Some(py) = Py::get("boto3_identity_pool_ids_credentials_and_signed_calls") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    confirmed_user(&server, &app.pool, "alice").await;
    let pool = identity_pool_for(&server, &app).await;
    let tokens = sign_in(&server, &app, "alice", PASSWORD).await;

    let input = json!({
        "endpoint": server.url(),
        "identityPoolId": pool,
        "provider": provider_of(&app),
        "idToken": tokens.id,
    });
    let r = py.run("boto3_identity.py", input).await;
    for who in ["guest", "login"] {
        let v = &r[who];
        check_identity_id(script_str(v, "/identityId"), who);
        check_refusals(v, &format!("boto3 ({who})"));
        let credentials = script_credentials(&v["credentials"], who);
        assert_identity_credentials_accepted(&server, credentials, &pool, who).await;
    }
    // GetId and GetCredentialsForIdentity unsigned (as the model says), the rest signed.
    for c in r["calls"].as_array().expect("calls") {
        let unsigned = ["GetId", "GetCredentialsForIdentity"].contains(&c["operation"].as_str().unwrap_or_default());
        assert_eq!(c["signed"], json!(!unsigned), "{c} in {r}");
    }
    let guest = script_str(&r, "/guest/identityId");
    let login = script_str(&r, "/login/identityId");
    assert_ne!(guest, login, "{r}");
    assert_eq!(r["described"]["guest"]["IdentityId"], json!(guest), "{r}");
    assert!(r["described"]["guest"].get("Logins").is_none_or(|l| l == &json!([])), "guest logins: {r}");
    assert_eq!(r["described"]["login"]["IdentityId"], json!(login), "{r}");
    assert_eq!(r["described"]["login"]["Logins"], json!([provider_of(&app)]), "{r}");
    for who in ["guest", "login"] {
        assert!(r["described"][who]["CreationDate"].as_str().is_some_and(|d| !d.is_empty()), "{who}: {r}");
    }
    let mut expected = vec![guest.to_string(), login.to_string()];
    expected.sort();
    assert_eq!(r["listed"], json!(expected), "ListIdentities, in id order");
    assert_eq!(logins_of(&server, login).await, [provider_of(&app)], "DescribeIdentity (Rust SDK)");
    assert_eq!(identity_of(&server, &pool, &provider_of(&app), &tokens.id).await, login, "GetId with alice's token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_classic_flow_through_sts() {
    let Some(py) = Py::get("boto3_classic_flow_through_sts") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    // The basic flow is off by default: AssumeRoleWithWebIdentity refuses it.
    ok(server
        .identity()
        .update_identity_pool()
        .identity_pool_id(&pool)
        .identity_pool_name("classic")
        .allow_unauthenticated_identities(true)
        .allow_classic_flow(true)
        .cognito_identity_providers(
            CognitoIdentityProvider::builder().provider_name(provider_of(&app)).client_id(&app.client).build(),
        )
        .send()
        .await);
    let input = json!({
        "endpoint": server.url(),
        "identityPoolId": pool,
        "guestRole": GUEST_ROLE,
        "otherRole": "arn:aws:iam::000000000000:role/not-the-pools",
    });
    let r = py.run("boto3_classic_flow.py", input).await;
    let identity = script_str(&r, "/identityId");
    check_identity_id(identity, "guest");
    let (_, claims) = jwt(script_str(&r, "/openIdToken"));
    assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some(identity), Some(pool.as_str())), "{claims}");
    let assumed = &r["assumed"];
    assert_eq!(assumed["subject"], json!(identity), "{r}");
    assert_eq!(assumed["audience"], json!(pool), "{r}");
    assert_eq!(assumed["provider"], json!(format!("{}/{pool}", server.url())), "{r}");
    assert_eq!(assumed["assumedRoleArn"], json!("arn:aws:sts::000000000000:assumed-role/guest/classic"), "{r}");
    let c = &assumed["credentials"];
    assert!((c["expiration"].as_i64().unwrap_or(0) - now() - 900).abs() < 120, "DurationSeconds 900: {r}");
    let credentials = Credentials::new(
        script_str(c, "/accessKeyId"),
        script_str(c, "/secretAccessKey"),
        Some(script_str(c, "/sessionToken").to_owned()),
        None,
        "sts",
    );
    assert_identity_credentials_accepted(&server, credentials, &pool, "STS credentials").await;
    assert_eq!((&r["signed"]["code"], &r["signed"]["status"]), (&json!("AccessDeniedException"), &json!(400)), "{r}");
    let refusals = &r["refusals"];
    assert_eq!(
        (&refusals["otherRole"]["code"], &refusals["otherRole"]["status"]),
        (&json!("AccessDenied"), &json!(403))
    );
    assert_eq!(refusals["alteredToken"]["code"], json!("InvalidIdentityToken"), "{r}");
    assert_eq!(refusals["tooLong"]["code"], json!("ValidationError"), "{r}");
}

/// `moto_server` (PyPI moto[server], in the clients' venv) on a free loopback port, stopped
/// when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    async fn start() -> Moto {
        let bin = cognate_e2e::clients::clients_dir().join("py/.venv/bin/moto_server");
        let port = cognate_e2e::free_port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto_server did not listen on {port}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Moto { child, url }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_an_external_sts_work_against_that_emulator() {
    let Some(py) = Py::get("credentials_from_an_external_sts_work_against_that_emulator") else {
        return;
    };
    let moto = Moto::start().await;
    let server = Server::sqlite_with(&["--sts-endpoint", &moto.url]).await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let input = json!({"endpoint": server.url(), "motoEndpoint": moto.url, "identityPoolId": pool});
    let r = py.run("moto_sts.py", input).await;
    check_identity_id(script_str(&r, "/identityId"), "guest");
    // moto's STS assumed the pool's guest role, with the session name Cognito uses.
    assert!(
        script_str(&r, "/callerArn").ends_with(":assumed-role/guest/CognitoIdentityCredentials"),
        "GetCallerIdentity at moto: {r}"
    );
    // They are moto's credentials, not Cognate's: Cognate does not know them.
    let credentials = Credentials::new(
        script_str(&r, "/accessKeyId"),
        script_str(&r, "/secretAccessKey"),
        Some(script_str(&r, "/sessionToken").to_owned()),
        None,
        "moto",
    );
    let client = cognate_e2e::identity::Client::new(&server.sdk_config_with(credentials));
    let err = expect_err(client.describe_identity_pool().identity_pool_id(&pool).send().await);
    assert_eq!(err.code, "UnrecognizedClientException", "{err:?}");
    // A stopped STS is an ExternalServiceException, not a 500.
    drop(moto);
    let guest = ok(server.identity().get_id().identity_pool_id(&pool).send().await).identity_id.expect("IdentityId");
    let err = expect_err(server.identity().get_credentials_for_identity().identity_id(&guest).send().await);
    assert_eq!((err.status, err.code.as_str()), (400, "ExternalServiceException"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_cognito_sync_cycle_with_an_identitys_credentials() {
    let Some(py) = Py::get("boto3_cognito_sync_cycle_with_an_identitys_credentials") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let r = py.run("boto3_sync.py", json!({"endpoint": server.url(), "identityPoolId": pool})).await;
    let identity = script_str(&r, "/identityId");
    assert_eq!(r["first"], json!({"records": [], "datasetSyncCount": 0, "exists": false, "token": true}), "{r}");
    assert_eq!(
        r["afterA"]["records"],
        json!([{"Key": "lang", "Value": "fr", "SyncCount": 1}, {"Key": "theme", "Value": "dark", "SyncCount": 1}]),
        "both records at the dataset's first sync count: {r}"
    );
    assert_eq!((&r["afterA"]["datasetSyncCount"], &r["afterA"]["lastModifiedBy"]), (&json!(1), &json!("device-a")));
    assert_eq!(r["incremental"], json!([]), "nothing changed after sync count 1: {r}");
    assert_eq!(r["conflict"], json!({"code": "ResourceConflictException", "status": 409}), "{r}");
    assert_eq!(
        r["resolved"],
        json!({"records": [
            {"Key": "lang", "Value": null, "SyncCount": 2},
            {"Key": "theme", "Value": "light", "SyncCount": 2},
        ], "datasetSyncCount": 2}),
        "the stale patch wrote nothing (no font); the resolved one did: {r}"
    );
    let dataset = json!({
        "IdentityId": identity, "DatasetName": "settings", "LastModifiedBy": "device-b",
        "DataStorage": 10, "NumRecords": 1,
    });
    assert_eq!(r["datasets"], json!([dataset]), "{r}");
    assert_eq!(r["described"], dataset, "{r}");
    assert_eq!(
        r["usage"],
        json!({"IdentityId": identity, "IdentityPoolId": pool, "DatasetCount": 1, "DataStorage": 10}),
        "{r}"
    );
    assert_eq!(r["foreign"], json!({"code": "NotAuthorizedException", "status": 403}), "{r}");
    assert_eq!(r["afterDelete"], json!({"exists": false, "deletedAfter": true}), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_push_sync_devices_and_configuration() {
    let Some(py) = Py::get("boto3_push_sync_devices_and_configuration") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let r = py.run("boto3_sync_push.py", json!({"endpoint": server.url(), "identityPoolId": pool})).await;
    check_identity_id(script_str(&r, "/identityId"), "guest");
    assert_eq!(r["unconfigured"], json!({"code": "InvalidConfigurationException", "status": 400}), "{r}");
    assert_eq!(r["streamsEnabled"]["code"], json!("InvalidParameterException"), "{r}");
    assert_eq!(r["configuration"], r["got"], "Set answers what Get shows: {r}");
    assert_eq!(r["got"]["PushSync"]["ApplicationArns"], json!(["arn:aws:sns:us-east-1:000000000000:app/GCM/cognate"]));
    assert_eq!(r["events"], json!({"SyncTrigger": "arn:aws:lambda:us-east-1:000000000000:function:sync"}), "{r}");
    let (a, b) = (script_str(&r, "/deviceA"), script_str(&r, "/deviceB"));
    assert!(is_uuid(a) && is_uuid(b) && a != b, "{r}");
    assert_eq!(r["deviceBAgain"], json!(b), "one token, one device: {r}");
}

// ---------------------------------------------------------------------------
// Two nodes on one PostgreSQL schema
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_authentication_across_nodes() {
    let Some(py) = Py::get("postgres_authentication_across_nodes") else {
        return;
    };
    // Both nodes stand behind one public URL, as a deployment does.
    let public = format!("http://127.0.0.1:{}", cognate_e2e::free_port());
    let Some(a) = Server::postgres_with(&["--public-url", &public]).await else {
        return;
    };
    let dir = Arc::new(tempfile::Builder::new().prefix("cognate-e2e-").tempdir().expect("temp dir"));
    let b = Server::launch_with(a.store().clone(), dir, &["--public-url", &public], &[]).await;
    let app = app_with(&a, ALL_FLOWS, false).await;
    let email = confirmed_user(&a, &app.pool, "alice").await;
    forced_user(&a, &app.pool, "bob").await;
    let iss = format!("{public}/{}", app.pool);

    // USER_SRP_AUTH on A, PASSWORD_VERIFIER on B.
    let challenge = py
        .run("pycognito_flows.py", with(py_input(&a, &app, "alice", PASSWORD), json!({"mode": "srp_challenge"})))
        .await;
    let done = respond_password_verifier(&b, &app, &challenge, &challenge["challengeResponses"])
        .await
        .expect("PASSWORD_VERIFIER on node B");
    let tokens = tokens_of(done.authentication_result(), "PASSWORD_VERIFIER on node B");
    check_pair(&tokens.id, &tokens.access, &iss, &app, "alice", &email);

    // B's tokens work on A, and both publish the signing key.
    assert_eq!(get_user(&a, &tokens.access).await.expect("GetUser on A"), "alice");
    assert_eq!(get_user(&b, &tokens.access).await.expect("GetUser on B"), "alice");
    let kid = jwt(&tokens.access).0["kid"].clone();
    for node in [&a, &b] {
        let jwks = node.raw().get(&format!("/{}/.well-known/jwks.json", app.pool)).await.json();
        assert!(
            jwks["keys"].as_array().is_some_and(|k| k.iter().any(|k| k["kid"] == kid)),
            "kid {kid} missing from the JWKS of {}: {jwks}",
            node.url()
        );
    }
    refresh(&a, &app, "alice", &tokens.refresh).await.expect("refresh on A");

    // NEW_PASSWORD_REQUIRED: the session from B answered on A.
    let challenge = ok(b
        .idp()
        .admin_initiate_auth()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "bob")
        .auth_parameters("PASSWORD", TEMP_PASSWORD)
        .send()
        .await);
    let answered = ok(a
        .idp()
        .admin_respond_to_auth_challenge()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .challenge_name(ChallengeNameType::NewPasswordRequired)
        .session(challenge.session().expect("Session"))
        .challenge_responses("USERNAME", "bob")
        .challenge_responses("NEW_PASSWORD", NEW_PASSWORD)
        .send()
        .await);
    tokens_of(answered.authentication_result(), "NEW_PASSWORD_REQUIRED answered on A");

    // GlobalSignOut on B revokes on A.
    ok(b.idp_anonymous().global_sign_out().access_token(&tokens.access).send().await);
    assert_not_authorized(
        get_user(&a, &tokens.access).await,
        &["Access Token has been revoked"],
        "GetUser on A after GlobalSignOut on B",
    );
    assert_code(
        refresh(&a, &app, "alice", &tokens.refresh).await,
        "NotAuthorizedException",
        "refresh on A after GlobalSignOut on B",
    );

    // Failed attempts add up across the nodes.
    for (i, node) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        assert_not_authorized(
            password_auth(node, &app, "alice", "Wr0ngPassw0rd!").await,
            &["Incorrect username or password."],
            &format!("wrong password #{} on {}", i + 1, node.url()),
        );
    }
    assert_not_authorized(
        password_auth(&b, &app, "alice", "Wr0ngPassw0rd!").await,
        &["Password attempts exceeded"],
        "a 6th wrong password on B after five spread over A and B",
    );
    assert_not_authorized(
        password_auth(&a, &app, "alice", PASSWORD).await,
        &["Password attempts exceeded"],
        "the right password on A while locked out",
    );
}
