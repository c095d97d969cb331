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
    MessageActionType, OAuthFlowType, PreventUserExistenceErrorTypes, SoftwareTokenMfaConfigType, UserPoolMfaType,
    UsernameAttributeType, VerifiedAttributeType,
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

/// A pool where users may turn on TOTP MFA.
async fn pool_with_optional_totp(server: &Server) -> String {
    let pool = server.new_pool(|p| p).await;
    ok(server
        .idp()
        .set_user_pool_mfa_config()
        .user_pool_id(&pool)
        .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
        .mfa_configuration(UserPoolMfaType::Optional)
        .send()
        .await);
    pool
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
    let pool = pool_with_optional_totp(&server).await;
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
        Moto::start_on(cognate_e2e::free_port()).await
    }

    async fn start_on(port: u16) -> Moto {
        let bin = cognate_e2e::clients::clients_dir().join("py/.venv/bin/moto_server");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sync_pushes_and_streams_reach_another_emulators_sns_and_kinesis() {
    let Some(py) = Py::get("boto3_sync_pushes_and_streams_reach_another_emulators_sns_and_kinesis") else {
        return;
    };
    let moto = Moto::start().await;
    let server = Server::sqlite_with(&["--sns-endpoint", &moto.url, "--kinesis-endpoint", &moto.url]).await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let input = json!({"endpoint": server.url(), "motoEndpoint": moto.url, "identityPoolId": pool});
    let r = py.run("boto3_sync_streams.py", input).await;
    let (identity, b) = (script_str(&r, "/identityId"), script_str(&r, "/deviceB"));
    assert_eq!(
        r["endpoints"],
        json!([{"token": "token-a", "enabled": "true"}, {"token": "token-b", "enabled": "true"}]),
        "RegisterDevice made an SNS platform endpoint per device: {r}"
    );
    assert_eq!(r["subscribeUnknown"], json!({"code": "ResourceNotFoundException", "status": 404}), "{r}");
    let push = json!({
        "source": "cognito-sync", "identityPoolId": pool, "identityId": identity,
        "datasetName": "settings", "syncCount": "1",
    });
    assert_eq!(
        r["pushes"],
        json!([{"destination": b, "body": push}]),
        "one silent push, to the subscribed device only (not to A, which wrote): {r}"
    );
    let streamed = &r["streamed"][0];
    assert_eq!(streamed["partitionKey"], json!(identity), "{r}");
    let data = &streamed["data"];
    assert_eq!(
        (&data["identityPoolId"], &data["dataSetName"], &data["syncCount"], &data["payloadType"]),
        (&json!(pool), &json!("settings"), &json!(1), &json!("Inline")),
        "{r}"
    );
    assert_eq!(data["kinesisSyncRecords"][0]["key"], "theme", "{r}");
    assert_eq!(data["kinesisSyncRecords"][0]["value"], "dark", "{r}");
    assert_eq!(data["kinesisSyncRecords"][0]["op"], "replace", "{r}");
    assert_eq!(r["bulk"]["BulkPublishStatus"], "SUCCEEDED", "{r}");
    assert!(r["bulk"]["BulkPublishCompleteTime"].is_string(), "{r}");
    assert_eq!(r["bulkAgain"], json!({"code": "AlreadyStreamedException", "status": 400}), "{r}");
    let all = r["streamedAll"].as_array().expect("records");
    assert_eq!(all.len(), 3, "the change, the bulk publish's dataset, the second change: {r}");
    assert_eq!(all[1]["data"]["kinesisSyncRecords"][0]["value"], "dark", "{r}");
    assert_eq!(all[2]["data"]["kinesisSyncRecords"][0]["value"], "light", "{r}");
    assert_eq!(r["unsubscribeAgain"], json!({"code": "ResourceNotFoundException", "status": 404}), "{r}");
    assert_eq!(r["pushesAfterUnsubscribe"], r["pushes"], "no push after B unsubscribed: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_merged_identities_report_merged_datasets() {
    let Some(py) = Py::get("boto3_merged_identities_report_merged_datasets") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let r = py.run("boto3_sync_merge.py", json!({"endpoint": server.url(), "identityPoolId": pool})).await;
    let merged_name = format!("settings.{}", script_str(&r, "/source"));
    assert_eq!(
        r["merged"],
        json!({"names": [merged_name], "records": [{"Key": "lang", "Value": "fr"}]}),
        "the destination's own records, and the source's dataset named as merged into it: {r}"
    );
    assert_eq!(r["mergedRecords"], json!([{"Key": "theme", "Value": "dark"}]), "live records only: {r}");
    assert_eq!(r["datasets"], json!(["settings", merged_name]), "{r}");
    assert_eq!(r["afterDelete"], json!([]), "a deleted merged dataset is no longer reported: {r}");
    assert_eq!(r["sourceGone"]["code"], "ResourceNotFoundException", "{r}");
}

/// A dataset change acknowledged while the pool's Kinesis does not answer is queued with the
/// change itself: the server is killed (SIGKILL), Kinesis comes up, and after the restart the
/// change reaches the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_record_queued_before_a_crash_is_delivered_after_the_restart() {
    let Some(py) = Py::get("a_stream_record_queued_before_a_crash_is_delivered_after_the_restart") else {
        return;
    };
    let kinesis_port = cognate_e2e::free_port();
    let kinesis = format!("http://127.0.0.1:{kinesis_port}");
    let mut server = Server::sqlite_with(&["--kinesis-endpoint", &kinesis]).await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let params = |phase: &str, server: &Server| json!({"phase": phase, "endpoint": server.url(), "identityPoolId": pool, "motoEndpoint": kinesis});
    let written = py.run("boto3_sync_crash.py", params("write", &server)).await;
    server.kill_hard();
    let _moto = Moto::start_on(kinesis_port).await;
    py.run("boto3_sync_crash.py", params("stream", &server)).await;
    server.restart().await;
    let r = py.run("boto3_sync_crash.py", params("read", &server)).await;
    let records = r["records"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(records.len(), 1, "the change, once: {r}");
    assert_eq!(records[0]["identityId"], written["identityId"], "{r}");
    assert_eq!(records[0]["kinesisSyncRecords"][0]["value"], "dark", "{r}");
}

/// A SQLite server whose clock runs 3,700 s behind real time (`--clock-offset-seconds -3700`),
/// on a data dir the caller keeps: credentials it issues expire an hour after its shifted now,
/// which is 100 s before the real one. GetId and GetCredentialsForIdentity are unsigned, and
/// the admin calls setting up the pool are checked against real time, so the shift matters
/// to nothing but the credentials' expiry.
async fn server_an_hour_behind() -> (Server, Arc<tempfile::TempDir>) {
    let dir = Arc::new(tempfile::Builder::new().prefix("cognate-e2e-").tempdir().expect("temp dir"));
    let server =
        Server::launch_with(cognate_e2e::StoreConfig::Sqlite, dir.clone(), &["--clock-offset-seconds", "-3700"], &[])
            .await;
    (server, dir)
}

/// Stop `behind` and serve its data dir again, on real time.
async fn on_real_time(mut behind: Server, dir: Arc<tempfile::TempDir>) -> Server {
    let store = behind.store().clone();
    behind.stop();
    drop(behind);
    Server::launch(store, dir).await
}

/// Credentials a client got from [`server_an_hour_behind`] expired about 100 s ago.
#[track_caller]
fn assert_expired_100s_ago(expiration: &Value, what: &str) {
    let expires = expiration.as_i64().unwrap_or_else(|| panic!("{what}: no expiration: {expiration}"));
    assert!((expires - (now() - 100)).abs() < 60, "{what}: credentials expire at {expires}, now is {}", now());
}

/// What a client saw of ListRecords and DescribeIdentityUsage signed with expired credentials
/// (ExpiredTokenException, HTTP 400, each), and of ListRecords with new credentials for the
/// same identity (an empty dataset).
#[track_caller]
fn check_expired_refusals(r: &Value, what: &str) {
    for op in ["listRecords", "describeIdentityUsage"] {
        assert_eq!(
            (&r[op]["code"], &r[op]["status"], &r[op]["message"]),
            (
                &json!("ExpiredTokenException"),
                &json!(400),
                &json!("The security token included in the request is expired")
            ),
            "{what}: {op} with expired credentials: {r}"
        );
    }
    assert_eq!((&r["fresh"]["records"], &r["fresh"]["exists"]), (&json!([]), &json!(false)), "{what}: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_cognito_sync_refuses_expired_credentials() {
    let Some(py) = Py::get("boto3_cognito_sync_refuses_expired_credentials") else {
        return;
    };
    let (behind, dir) = server_an_hour_behind().await;
    let app = app_with(&behind, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&behind, &app).await;
    let issued = py
        .run("boto3_sync_expired.py", json!({"endpoint": behind.url(), "identityPoolId": pool, "mode": "issue"}))
        .await;
    check_identity_id(script_str(&issued, "/identityId"), "boto3's guest");
    assert_expired_100s_ago(&issued["credentials"]["Expiration"], "boto3");
    let server = on_real_time(behind, dir).await;
    let input = json!({
        "endpoint": server.url(),
        "identityPoolId": pool,
        "mode": "use",
        "identityId": issued["identityId"],
        "credentials": issued["credentials"],
    });
    let r = py.run("boto3_sync_expired.py", input).await;
    check_expired_refusals(&r, "boto3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_v3_cognito_sync_refuses_expired_credentials() {
    let Some(js) = Js::get("js_v3_cognito_sync_refuses_expired_credentials") else {
        return;
    };
    let (behind, dir) = server_an_hour_behind().await;
    let app = app_with(&behind, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&behind, &app).await;
    let issued =
        js.run("cognito-sync.mjs", json!({"endpoint": behind.url(), "identityPoolId": pool, "mode": "issue"})).await;
    check_identity_id(script_str(&issued, "/identityId"), "the JS v3 guest");
    assert_expired_100s_ago(&issued["credentials"]["expiration"], "JS v3");
    let server = on_real_time(behind, dir).await;
    let input = json!({
        "endpoint": server.url(),
        "identityPoolId": pool,
        "mode": "use",
        "identityId": issued["identityId"],
        "credentials": issued["credentials"],
    });
    let r = js.run("cognito-sync.mjs", input).await;
    check_expired_refusals(&r, "JS v3");
    // Each expired call went out once, signed with the session token: static credentials
    // are not refreshed and the refusal is not retried.
    let sent: Vec<(bool, bool, i64)> = r["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| (c["signed"] == json!(true), c["sessionToken"] == json!(true), c["status"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(sent, [(true, true, 400), (true, true, 400), (true, true, 200)], "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_v3_cognito_sync_cycle_with_an_identitys_credentials() {
    let Some(js) = Js::get("js_v3_cognito_sync_cycle_with_an_identitys_credentials") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let r = js.run("cognito-sync.mjs", json!({"endpoint": server.url(), "identityPoolId": pool})).await;
    let owner = script_str(&r, "/ownerId");
    check_identity_id(owner, "the owner");
    check_identity_id(script_str(&r, "/strangerId"), "the stranger");
    assert_ne!(owner, script_str(&r, "/strangerId"), "{r}");
    let listing = |records: Value, count: i64, sync_count: i64, by: Value, exists: bool| {
        json!({
            "records": records, "count": count, "datasetSyncCount": sync_count, "lastModifiedBy": by,
            "exists": exists, "deletedAfter": false, "merged": [],
        })
    };
    assert_eq!(r["first"], listing(json!([]), 0, 0, Value::Null, false), "device B's first ListRecords: {r}");
    let written_by_a = json!([
        {"Key": "lang", "Value": "fr", "SyncCount": 1, "LastModifiedBy": "device-a"},
        {"Key": "theme", "Value": "dark", "SyncCount": 1, "LastModifiedBy": "device-a"},
    ]);
    assert_eq!(r["updatedA"], written_by_a, "device A's UpdateRecords: {r}");
    assert_eq!(
        (&r["conflict"]["code"], &r["conflict"]["status"]),
        (&json!("ResourceConflictException"), &json!(409)),
        "device B's stale UpdateRecords: {r}"
    );
    assert_eq!(
        r["incrementalB"],
        listing(written_by_a, 2, 1, json!("device-a"), true),
        "device B's ListRecords since 0: A's records, nothing of its refused patch (no font): {r}"
    );
    let written_by_b = json!([
        {"Key": "font", "Value": "serif", "SyncCount": 2, "LastModifiedBy": "device-b"},
        {"Key": "lang", "Value": null, "SyncCount": 2, "LastModifiedBy": "device-b"},
        {"Key": "theme", "Value": "light", "SyncCount": 2, "LastModifiedBy": "device-b"},
    ]);
    assert_eq!(r["resolved"], written_by_b, "device B's resolved UpdateRecords: {r}");
    assert_eq!(
        r["incrementalA"],
        listing(written_by_b, 3, 2, json!("device-b"), true),
        "device A's ListRecords since 1: exactly B's changes: {r}"
    );
    assert_eq!(r["nothingNewer"], listing(json!([]), 0, 2, json!("device-b"), true), "{r}");
    for op in ["listRecords", "updateRecords", "listDatasets"] {
        assert_eq!(
            (&r["foreign"][op]["code"], &r["foreign"][op]["status"]),
            (&json!("NotAuthorizedException"), &json!(403)),
            "{op} with the stranger's credentials: {r}"
        );
    }
    assert_eq!(r["afterForeign"], r["nothingNewer"], "the stranger's UpdateRecords changed nothing: {r}");
    // font+serif and theme+light: 19 bytes in 2 live records.
    let dataset = json!({
        "IdentityId": owner, "DatasetName": "settings", "LastModifiedBy": "device-b",
        "DataStorage": 19, "NumRecords": 2,
    });
    assert_eq!(r["datasets"], json!({"count": 1, "datasets": [dataset]}), "ListDatasets: {r}");
    assert_eq!(r["described"], dataset, "DescribeDataset: {r}");
    assert_eq!(
        r["usage"],
        json!({"IdentityId": owner, "IdentityPoolId": pool, "DatasetCount": 1, "DataStorage": 19}),
        "DescribeIdentityUsage: {r}"
    );
    // Every Cognito Sync request went out signed with a session token, once.
    let statuses: Vec<i64> = r["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            assert_eq!((&c["signed"], &c["sessionToken"]), (&json!(true), &json!(true)), "{c} in {r}");
            c["status"].as_i64().unwrap_or(0)
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 409, 200, 200, 200, 200, 403, 403, 403, 200, 200, 200, 200], "{r}");
}

/// What amazon-cognito-js's sync-manager.mjs reported: two devices of one identity
/// synchronize, B's conflicting theme is resolved with its local value, and A pulls it.
#[track_caller]
fn check_sync_manager(r: &Value) {
    check_identity_id(script_str(r, "/identityId"), "CognitoIdentityCredentials");
    let success = json!("success");
    assert_eq!(r["a1"]["outcome"], success, "device A's first synchronize(): {r}");
    assert_eq!(
        r["b1"],
        json!({"outcome": "success", "values": {"theme": "dark", "lang": "fr"}}),
        "device B's pull: {r}"
    );
    assert_eq!(r["a2"]["outcome"], success, "device A's second synchronize(): {r}");
    assert_eq!(r["conflicts"], json!([{"key": "theme", "local": "light", "remote": "blue"}]), "onConflict: {r}");
    assert_eq!(r["b2"], json!({"outcome": "success", "values": {"theme": "light", "lang": "fr"}}), "{r}");
    assert_eq!(r["a3"], json!({"outcome": "success", "values": {"theme": "light", "lang": "fr"}}), "{r}");
    assert_eq!(
        r["server"],
        json!({"datasetSyncCount": 3, "records": [
            {"Key": "lang", "Value": "fr", "SyncCount": 1},
            {"Key": "theme", "Value": "light", "SyncCount": 3},
        ]}),
        "ListRecords after both devices synchronized: {r}"
    );
    let refused: Vec<&Value> =
        r["calls"].as_array().expect("calls").iter().filter(|c| c["status"] != json!(200)).collect();
    assert!(refused.is_empty(), "calls refused: {refused:?}");
}

/// amazon-cognito-js's CognitoSyncManager (on the AWS SDK v2, as published) synchronizes two
/// devices in Node. Its signer never signs Content-Type (AWS.Signers.V4's unsignableHeaders);
/// Cognate takes that as AWS does when the type is REST-JSON's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_cognito_js_sync_manager_synchronizes_two_devices() {
    let Some(js) = Js::get("amazon_cognito_js_sync_manager_synchronizes_two_devices") else {
        return;
    };
    let server = Server::sqlite().await;
    let app = app_with(&server, ALL_FLOWS, false).await;
    let pool = identity_pool_for(&server, &app).await;
    let r = js.run("sync-manager.mjs", json!({"endpoint": server.url(), "identityPoolId": pool})).await;
    check_sync_manager(&r);
}

// ---------------------------------------------------------------------------
// Resource servers and machine-to-machine tokens
// ---------------------------------------------------------------------------

/// Resource servers and domains through boto3; client_credentials tokens from `/oauth2/token` (both client
/// authentications) and GetClientToken, refused as OAuth 2.0 says; the tokens checked by
/// aws-jwt-verify the way a resource server checks them (issuer, signature, client, scope).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_servers_domains_and_client_credentials_tokens_verified_by_aws_jwt_verify() {
    let (Some(py), Some(js)) = (
        Py::get("resource_servers_domains_and_client_credentials_tokens_verified_by_aws_jwt_verify"),
        Js::get("resource_servers_domains_and_client_credentials_tokens_verified_by_aws_jwt_verify"),
    ) else {
        return;
    };
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    let r = py.run("boto3_m2m.py", json!({"endpoint": server.url(), "poolId": pool})).await;
    let scopes = json!([
        {"ScopeName": "read", "ScopeDescription": "Read orders"},
        {"ScopeName": "write", "ScopeDescription": "Write orders"},
    ]);
    assert_eq!(r["created"], json!({"UserPoolId": pool, "Identifier": "orders", "Name": "Orders", "Scopes": scopes}));
    assert_eq!(r["duplicate"], json!({"code": "InvalidParameterException", "status": 400}), "{r}");
    assert_eq!(r["pages"], json!([["billing"], ["orders"]]), "identifier order, a page at a time: {r}");
    assert_eq!(r["secondPageHasNext"], json!(false), "{r}");
    let invoices = json!({"UserPoolId": pool, "Identifier": "billing", "Name": "Invoices", "Scopes": []});
    assert_eq!((&r["updated"], &r["described"]), (&invoices, &invoices), "an update without scopes has none: {r}");
    assert_eq!(r["unknownScope"], json!({"code": "ScopeDoesNotExistException", "status": 400}), "{r}");
    assert_eq!(r["basic"]["status"], 200, "{r}");
    assert_eq!(r["basic"]["keys"], json!(["access_token", "expires_in", "token_type"]), "no ID or refresh token: {r}");
    assert_eq!(r["basic"]["cache"], "no-store", "{r}");
    assert_eq!(r["post"], json!({"status": 200, "type": "Bearer", "expires": 3600}), "{r}");
    let error = |name: &str| json!({"status": 400, "body": {"error": name}});
    assert_eq!(r["refusals"]["wrongSecret"], error("invalid_client"), "{r}");
    assert_eq!(r["refusals"]["unknownClient"], error("invalid_client"), "{r}");
    assert_eq!(r["refusals"]["notGranted"], error("invalid_scope"), "{r}");
    assert_eq!(r["refusals"]["unsupported"], error("unsupported_grant_type"), "{r}");
    assert_eq!(r["refusals"]["withoutFlow"], error("unauthorized_client"), "{r}");
    assert_eq!(r["getClientToken"], json!({"type": "Bearer", "expires": 3600}), "{r}");
    assert_eq!(r["getClientTokenRefused"], json!({"code": "NotAuthorizedException", "status": 400}), "{r}");
    assert_eq!(r["gone"], json!({"code": "ResourceNotFoundException", "status": 400}), "{r}");
    assert_eq!(
        r["discovery"],
        json!({"token_endpoint": format!("{}/oauth2/token", server.url()),
               "auth": ["client_secret_basic", "client_secret_post"]}),
        "{r}"
    );

    let d = &r["domain"];
    assert_eq!(d["created"], json!({"ManagedLoginVersion": 1}), "no CloudFront target for a prefix domain: {r}");
    let invalid = json!({"code": "InvalidParameterException", "status": 400});
    for refusal in ["taken", "second", "reserved", "notOwner", "deletedTwice"] {
        assert_eq!(d[refusal], invalid, "{refusal}: {r}");
    }
    assert_eq!(d["described"]["UserPoolId"], json!(pool), "{r}");
    assert_eq!(d["described"]["Domain"], "orders-auth", "{r}");
    assert_eq!(d["described"]["Status"], "ACTIVE", "{r}");
    assert_eq!(d["described"]["AWSAccountId"], "000000000000", "{r}");
    assert_eq!(d["unknown"], json!({}), "an unknown domain is described as nothing, as Cognito does: {r}");
    assert_eq!(d["poolShows"], "orders-auth", "DescribeUserPool names the pool's domain: {r}");
    assert_eq!(d["updated"], 2, "{r}");
    assert_eq!(d["freed"], false, "a deleted domain's name is free for another pool: {r}");
    assert_eq!(d["poolAfter"], Value::Null, "{r}");

    let ui = &r["ui"];
    for refusal in ["refusedCss", "refusedImage"] {
        assert_eq!(ui[refusal], invalid, "{refusal}: {r}");
    }
    let css = ".submitButton-customizable { background-color: rgb(0, 51, 102); }";
    assert_eq!(ui["poolWide"], json!({"clientId": "ALL", "css": css, "image": true}), "{r}");
    assert_eq!(ui["logo"], json!({"type": "image/png", "same": true}), "{r}");
    assert_eq!(ui["clientFallsBack"], "ALL", "a client without its own gets the pool's: {r}");
    assert_eq!(
        ui["clientOwn"],
        json!({"clientId": r["clientId"], "css": ".label-customizable { color: red; }", "image": false}),
        "{r}"
    );
    assert_eq!(ui["unknownClient"]["code"], "ResourceNotFoundException", "{r}");

    let idps = &r["idps"];
    assert_eq!(
        idps["created"],
        json!({"ProviderName": "Upstream", "ProviderType": "OIDC", "IdpIdentifiers": ["example.com"],
               "ProviderDetails": {"client_id": "upstream-client", "client_secret": "upstream-secret-value",
                                   "authorize_scopes": "openid email", "oidc_issuer": "https://idp.example.com",
                                   "attributes_request_method": "GET"}}),
        "{r}"
    );
    for (refusal, code) in [
        ("duplicate", "DuplicateProviderException"),
        ("identifierTaken", "DuplicateProviderException"),
        ("googleMisnamed", "InvalidParameterException"),
        ("missingDetails", "InvalidParameterException"),
        ("unknownProvider", "InvalidParameterException"),
        ("deleted", "ResourceNotFoundException"),
    ] {
        assert_eq!(idps[refusal]["code"], code, "{refusal}: {r}");
    }
    assert_eq!(idps["byIdentifier"], "Upstream", "{r}");
    assert_eq!(idps["acr"], json!({"Level2": "urn:example:loa:2"}), "AcrMapping is kept: {r}");
    assert_eq!(idps["pages"], json!([["Google"], ["Upstream"]]), "{r}");
    assert_eq!(idps["updatedMapping"], json!({"email": "mail", "name": "name"}), "{r}");
    assert_eq!(idps["secretKept"], "upstream-secret-value", "an update without details keeps them: {r}");
    assert_eq!(idps["clientProviders"], json!(["COGNITO", "Upstream", "Google"]), "{r}");
    assert_eq!(
        r["signing"],
        json!({"stable": true, "subject": format!("CN={pool}"), "keyInJwks": true, "selfSigned": true}),
        "GetSigningCertificate certifies the pool's published key: {r}"
    );

    let iss = issuer(&server, &pool);
    let tokens = &r["tokens"];
    let v = js
        .run(
            "m2m-verify.mjs",
            json!({
                "issuer": iss,
                "jwksUri": format!("{iss}/.well-known/jwks.json"),
                "clientId": r["clientId"],
                "tokens": {
                    "readWithRead": tokens["basic"], "readWithWrite": tokens["basic"],
                    "allWithWrite": tokens["post"], "getClientToken": tokens["getClientToken"],
                },
                "scopes": {
                    "readWithRead": "orders/read", "readWithWrite": "orders/write",
                    "allWithWrite": "orders/write", "getClientToken": "orders/write",
                },
            }),
        )
        .await;
    let client = r["clientId"].clone();
    assert_eq!(
        v["readWithRead"],
        json!({"verified": true, "scope": "orders/read", "sub": client, "username": null}),
        "{v}"
    );
    assert_eq!(v["readWithWrite"]["verified"], false, "a token without the scope the API needs: {v}");
    assert_eq!(v["allWithWrite"]["scope"], "orders/read orders/write", "every scope of the client: {v}");
    assert_eq!(v["getClientToken"]["scope"], "orders/write", "{v}");
}

/// An app client for the hosted pages: OAuth on, `flow`, `scopes` and one callback URL (more
/// settings chained before `created`).
fn oauth_client(
    server: &Server,
    pool: &str,
    name: &str,
    flow: OAuthFlowType,
    scopes: &[&str],
    callback: &str,
) -> cognate_e2e::idp::operation::create_user_pool_client::builders::CreateUserPoolClientFluentBuilder {
    server
        .idp()
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name(name)
        .allowed_o_auth_flows_user_pool_client(true)
        .allowed_o_auth_flows(flow)
        .set_allowed_o_auth_scopes(Some(scopes.iter().map(|s| s.to_string()).collect()))
        .callback_urls(callback)
}

async fn created(
    builder: cognate_e2e::idp::operation::create_user_pool_client::builders::CreateUserPoolClientFluentBuilder,
) -> cognate_e2e::idp::types::UserPoolClientType {
    ok(builder.send().await).user_pool_client.expect("client")
}

/// The hosted sign-in page and the authorization code flow with PKCE, as a browser without
/// JavaScript drives them: the form, its errors (an unknown user answered as a wrong
/// password, as the API does for a client with PreventUserExistenceErrors), its CSRF token, the code (bound to client, redirect_uri and verifier, spent
/// once), the tokens (scopes, nonce), userInfo, GetUser with the OAuth access token, the
/// session cookie, and what must be refused (a redirect_uri that only starts like a
/// registered one, a PKCE downgrade, a public client without PKCE, a scope not allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_sign_in_and_the_code_flow_with_pkce() {
    let Some(py) = Py::get("hosted_sign_in_and_the_code_flow_with_pkce") else {
        return;
    };
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    let email = confirmed_user(&server, &pool, "alice").await;
    let (callback, signed_out) = ("http://localhost:3000/callback", "http://localhost:3000/signed-out");
    let scopes = ["openid", "email", "aws.cognito.signin.user.admin"];
    let code_client = |name: &str, secret: bool| {
        oauth_client(&server, &pool, name, OAuthFlowType::Code, &scopes, callback)
            .generate_secret(secret)
            .logout_urls(signed_out)
            .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
    };
    let public = created(code_client("spa", false)).await;
    let implicit =
        created(oauth_client(&server, &pool, "legacy-spa", OAuthFlowType::Implicit, &scopes, callback)).await;
    let confidential = created(code_client("web", true)).await;
    let input = json!({
        "endpoint": server.url(), "poolId": pool, "callback": callback,
        "publicClient": public.client_id, "username": "alice", "password": PASSWORD, "logout": signed_out,
        "implicitClient": implicit.client_id, "domain": "shop-login", "otherDomain": "other-login",
        "confidentialClient": {"id": confidential.client_id, "secret": confidential.client_secret},
    });
    let failover = cognate_e2e::idp::types::RoutingType::builder().build();
    let routed = server.idp().create_user_pool_domain().user_pool_id(&pool).domain("shop-login").routing(failover);
    let refused = expect_err(routed.send().await);
    assert_eq!(refused.code, "InvalidParameterException", "no replicas, no failover routing: {}", refused.message);
    ok(server.idp().create_user_pool_domain().user_pool_id(&pool).domain("shop-login").send().await);
    let other = server.new_pool(|p| p).await;
    ok(server.idp().create_user_pool_domain().user_pool_id(&other).domain("other-login").send().await);
    let r = py.run("hosted_code_flow.py", input).await;
    assert_eq!(r["authorize"], json!({"status": 302, "location": "/login"}), "{r}");
    let hidden = json!([
        "_csrf",
        "client_id",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "redirect_uri",
        "response_type",
        "scope",
        "state"
    ]);
    assert_eq!(r["loginPage"], json!({"status": 200, "action": "/login", "hidden": hidden}), "{r}");
    let wrong = &r["refusals"]["wrongPassword"];
    assert_eq!(wrong["status"], 400, "{r}");
    assert_eq!(wrong["error"], "Incorrect username or password.", "{r}");
    assert_eq!(r["refusals"]["unknownUser"], *wrong, "an unknown user looks like a wrong password: {r}");
    assert_eq!(r["refusals"]["noCsrf"], 403, "{r}");
    assert_eq!(r["signedIn"], json!({"status": 302, "to": callback, "state": "st-1", "code": true}), "{r}");
    assert_eq!(
        r["exchange"],
        json!({"status": 200, "keys": ["access_token", "expires_in", "id_token", "refresh_token", "token_type"]}),
        "{r}"
    );
    let id = &r["idClaims"];
    assert_eq!(
        (&id["nonce"], &id["email"], &id["aud"]),
        (&json!("n-1"), &json!(email), &json!(public.client_id)),
        "{r}"
    );
    assert_eq!(r["accessClaims"]["scope"], "openid email aws.cognito.signin.user.admin", "{r}");
    assert_eq!(r["wrongVerifier"], json!([400, {"error": "invalid_grant"}]), "a wrong PKCE verifier: {r}");
    assert_eq!(r["spentCode"], json!([400, {"error": "invalid_grant"}]), "a code is spent once: {r}");
    assert_eq!(r["userInfo"]["email"], json!(email), "{r}");
    assert_eq!(r["userInfo"]["username"], "alice", "{r}");
    assert_eq!(r["userInfo"]["sub"], id["sub"], "{r}");
    assert_eq!(r["getUser"], "alice", "the OAuth access token works on the API: {r}");
    assert_eq!(r["again"], json!({"status": 302, "to": callback, "state": "st-2", "code": true}), "{r}");
    assert_eq!(r["promptLogin"], "/login", "prompt=login shows the form despite the session: {r}");
    assert_eq!(r["promptNone"], "login_required", "{r}");
    assert_eq!(r["loginHint"], true, "login_hint fills in the username: {r}");
    assert_eq!(
        r["refreshed"],
        json!({"status": 200, "keys": ["access_token", "expires_in", "id_token", "token_type"],
               "scope": "openid email aws.cognito.signin.user.admin"}),
        "a refresh keeps the scopes granted: {r}"
    );
    assert_eq!(r["revoked"], json!({"status": 200, "body": ""}), "{r}");
    assert_eq!(r["refreshAfterRevoke"], json!([400, {"error": "invalid_grant"}]), "{r}");
    assert_eq!(r["logoutElsewhere"], json!({"status": 400, "location": null}), "no open redirect: {r}");
    assert_eq!(r["logout"], json!({"status": 302, "location": signed_out}), "{r}");
    assert_eq!(r["afterLogout"], json!({"status": 302, "location": "/login"}), "the session is gone: {r}");
    assert_eq!(
        r["implicit"],
        json!({"status": 302, "query": "", "keys": ["access_token", "expires_in", "id_token", "state", "token_type"],
               "state": "st-i", "nonce": "n-i"}),
        "the implicit flow: tokens in the fragment, no code, no refresh token: {r}"
    );
    assert_eq!(r["implicitNotAllowed"], "unauthorized_client", "{r}");
    assert_eq!(
        r["domains"],
        json!({"own": {"status": 302, "location": "/login"}, "unknown": {"status": 404, "location": null},
               "otherPool": {"status": 400, "location": null}}),
        "a prefix domain serves its own pool only: {r}"
    );
    assert_eq!(r["prefixRedirect"], json!({"status": 400, "location": null}), "never redirected: {r}");
    assert_eq!(r["plainPkce"]["status"], 302, "{r}");
    assert_eq!(r["plainPkce"]["query"]["error"], "invalid_request", "a PKCE downgrade: {r}");
    assert_eq!(r["publicWithoutPkce"]["error"], "invalid_request", "{r}");
    assert_eq!(r["scopeNotAllowed"]["error"], "invalid_scope", "{r}");
    assert_eq!(r["scopeNotAllowed"]["state"], "st-1", "{r}");
    assert_eq!(r["codeOfAnotherClient"], json!({"status": 400, "body": {"error": "invalid_grant"}}), "{r}");
}

/// The hosted pages' challenges, answered on the page: a new password for a user created with
/// a temporary one, and a TOTP code for a user who set up an authenticator through the API
/// with the access token of a hosted sign-in; a wrong answer first each time, then the code
/// for the relying party. Then the forgotten-password pages: the code from the outbox, a new
/// password, a sign-in with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_pages_answer_challenges_and_reset_passwords() {
    let Some(py) = Py::get("hosted_pages_answer_challenges_and_reset_passwords") else {
        return;
    };
    let server = Server::sqlite().await;
    let pool = pool_with_optional_totp(&server).await;
    // Email codes too, so that a user with both factors chooses one (SELECT_MFA_TYPE).
    ok(server
        .idp()
        .set_user_pool_mfa_config()
        .user_pool_id(&pool)
        .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
        .email_mfa_configuration(cognate_e2e::idp::types::EmailMfaConfigType::builder().build())
        .mfa_configuration(UserPoolMfaType::Optional)
        .send()
        .await);
    forced_user(&server, &pool, "carol").await;
    confirmed_user(&server, &pool, "dave").await;
    confirmed_user(&server, &pool, "erin").await;
    let callback = "http://localhost:3000/callback";
    let scopes = ["openid", "aws.cognito.signin.user.admin"];
    let client = created(oauth_client(&server, &pool, "spa", OAuthFlowType::Code, &scopes, callback)).await;
    let input = json!({
        "endpoint": server.url(), "client": client.client_id, "callback": callback,
        "carol": {"username": "carol", "temporary": TEMP_PASSWORD, "password": PASSWORD},
        "dave": {"username": "dave", "password": PASSWORD}, "pool": pool, "reset": "Reset-Passw0rd!",
        "erin": {"username": "erin", "password": PASSWORD},
    });
    let r = py.run("hosted_challenges.py", input).await;
    let new_password = &r["newPassword"];
    assert_eq!((&new_password["title"], &new_password["status"]), (&json!("Set a new password"), &json!(200)), "{r}");
    assert_eq!(new_password["weak"]["status"], 400, "{r}");
    assert!(new_password["weak"]["error"].as_str().is_some_and(|e| e.contains("Password")), "{r}");
    assert_eq!(new_password["done"], json!({"status": 302, "to": callback}), "{r}");
    let totp = &r["totp"];
    assert_eq!((&totp["title"], &totp["status"]), (&json!("Enter your code"), &json!(200)), "{r}");
    assert_eq!(totp["wrong"]["status"], 400, "{r}");
    assert_eq!(totp["done"], json!({"status": 302, "to": callback}), "{r}");
    assert_eq!(
        r["select"],
        json!({"title": "Choose how to confirm your sign-in", "choices": ["SOFTWARE_TOKEN_MFA", "EMAIL_OTP"],
               "next": "Enter your code", "done": {"status": 302, "to": callback}}),
        "a user with two factors chooses one, then answers its code: {r}"
    );
    assert_eq!(r["exchanged"], json!([200, 200, 200, 200, 200]), "{r}");
    assert_eq!(r["forgot"], json!({"title": "Reset your password", "status": 200}), "{r}");
    assert_eq!(r["reset"], json!({"title": "Sign in", "status": 200}), "{r}");
    assert_eq!(r["afterReset"], json!({"status": 302, "to": callback}), "signed in with the new password: {r}");
}

/// Signing in through an OpenID Connect identity provider: another Cognate pool (its hosted
/// pages, discovery, JWKS and token endpoint) is the app pool's provider; the app's tokens
/// name the federated user (`{provider}_{sub}`, the mapped email, the `identities` claim), and
/// a second sign-in finds the same user. AdminLinkProviderForUser makes another provider user
/// sign in as an existing user of the pool; AdminDisableProviderForUser removes the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_sign_in_through_an_oidc_identity_provider() {
    let Some(py) = Py::get("hosted_sign_in_through_an_oidc_identity_provider") else {
        return;
    };
    let server = Server::sqlite().await;
    // The provider: a pool with a user and a confidential client whose callback is the
    // app pool's /oauth2/idpresponse.
    let upstream = server.new_pool(|p| p).await;
    let email = confirmed_user(&server, &upstream, "ursula").await;
    let idp_response = format!("{}/oauth2/idpresponse", server.url());
    let scopes = ["openid", "email"];
    let upstream_client = oauth_client(&server, &upstream, "app-pool", OAuthFlowType::Code, &scopes, &idp_response);
    let idp_client = created(upstream_client.generate_secret(true)).await;
    // The app: its pool names the provider; its client supports it.
    let app_pool = server.new_pool(|p| p).await;
    let mut create = server
        .idp()
        .create_identity_provider()
        .user_pool_id(&app_pool)
        .provider_name("Upstream")
        .provider_type(cognate_e2e::idp::types::IdentityProviderTypeType::Oidc)
        .attribute_mapping("email", "email");
    let issuer = issuer(&server, &upstream);
    let secret = idp_client.client_secret.clone().expect("secret");
    for (key, value) in [
        ("client_id", idp_client.client_id.as_deref().expect("id")),
        ("client_secret", secret.as_str()),
        ("authorize_scopes", "openid email"),
        ("oidc_issuer", issuer.as_str()),
        ("attributes_request_method", "GET"),
    ] {
        create = create.provider_details(key, value);
    }
    ok(create.send().await);
    let callback = "http://localhost:3000/callback";
    let app = oauth_client(&server, &app_pool, "spa", OAuthFlowType::Code, &scopes, callback)
        .supported_identity_providers("COGNITO")
        .supported_identity_providers("Upstream");
    let app = created(app).await;
    // A second provider's user, una, linked to the app pool's own ulrike.
    confirmed_user(&server, &upstream, "una").await;
    confirmed_user(&server, &app_pool, "ulrike").await;
    let una = ok(server.idp().admin_get_user().user_pool_id(&upstream).username("una").send().await);
    let una_sub = una.user_attributes().iter().find(|a| a.name() == "sub").and_then(|a| a.value()).expect("sub");
    let input = json!({
        "endpoint": server.url(), "provider": "Upstream", "username": "ursula", "password": PASSWORD,
        "app": {"client": app.client_id, "callback": callback}, "appPool": app_pool,
        "linked": {"username": "una", "sub": una_sub, "destination": "ulrike"},
    });
    let r = py.run("hosted_federation.py", input).await;
    assert_eq!(
        r["hops"],
        json!(["/oauth2/authorize", "/login", "/oauth2/idpresponse", callback]),
        "app -> the provider's authorize -> its sign-in page -> back -> the app's callback: {r}"
    );
    assert_eq!(r["exchange"], 200, "{r}");
    let username = script_str(&r, "/claims/username");
    assert!(username.starts_with("Upstream_"), "{r}");
    assert_eq!(r["claims"]["email"], json!(email), "the mapped attribute: {r}");
    let identities = &r["claims"]["identities"][0];
    assert_eq!((&identities["providerName"], &identities["providerType"]), (&json!("Upstream"), &json!("OIDC")));
    assert_eq!(format!("Upstream_{}", identities["userId"].as_str().unwrap_or_default()), username, "{r}");
    assert_eq!(r["again"], json!(username), "the same user the second time: {r}");
    assert_eq!(r["loginButton"], true, "{r}");
    assert_eq!(r["linkedSignIn"], "ulrike", "a linked provider user signs in as the user it is linked to: {r}");
    assert_eq!(r["ulrikeIdentities"][0][0]["userId"], json!(una_sub), "{r}");
    assert_eq!(r["linkSignedInAlready"]["code"], "InvalidParameterException", "{r}");
    let after = script_str(&r, "/afterDisable");
    assert_eq!(after, format!("Upstream_{una_sub}"), "the link is gone: una is a user of her own now: {r}");
}

/// Debian's Chromium, which scripts/test.sh installs (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The hosted sign-in page in a real browser (headless Chromium driven by playwright-core)
/// with openid-client as the relying party: discovery, PKCE, state and nonce, the page's
/// error for a wrong password, the code exchange with the ID token checked by openid-client,
/// userInfo, a refresh; a new user signing up on the page, confirming with the code from the
/// outbox and signing in; a second authorization signed in by the session cookie; and
/// oidc-client-ts signing in from a single-page app of its own origin. With
/// COGNATE_UPDATE_SCREENSHOTS=1 the pages are saved to docs/hosted-ui/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_in_through_the_hosted_page_in_chromium() {
    let Some(js) = Js::get("openid_client_signs_in_through_the_hosted_page_in_chromium") else {
        return;
    };
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test.sh installs it (apt-get install chromium)"
    );
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    let email = confirmed_user(&server, &pool, "alice").await;
    let callback = format!("http://localhost:{}/callback", cognate_e2e::free_port());
    let scopes = ["openid", "email", "profile"];
    let spa_callback = callback.replace("/callback", "/spa-callback");
    let client = created(
        oauth_client(&server, &pool, "spa", OAuthFlowType::Code, &scopes, &callback).callback_urls(spa_callback),
    )
    .await;
    // The pool's look: CSS on a customizable class and a logo (a 1x1 PNG).
    let png: [u8; 70] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0x60, 0xf8, 0x5f, 0x0f, 0x00, 0x02, 0x87, 0x01, 0x80,
        0xeb, 0x47, 0xba, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    ok(server
        .idp()
        .set_ui_customization()
        .user_pool_id(&pool)
        .css(".submitButton-customizable { background-color: rgb(0, 51, 102); color: white; }")
        .image_file(aws_smithy_types::Blob::new(png.to_vec()))
        .send()
        .await);
    let screenshots = std::env::var_os("COGNATE_UPDATE_SCREENSHOTS")
        .map(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hosted-ui"));
    if let Some(dir) = &screenshots {
        std::fs::create_dir_all(dir).expect("docs/hosted-ui");
    }
    let iss = issuer(&server, &pool);
    let r = js
        .run(
            "hosted-browser.mjs",
            json!({
                "endpoint": server.url(), "poolId": pool,
                "issuer": iss, "clientId": client.client_id, "callback": callback, "chromium": CHROMIUM,
                "username": "alice", "password": PASSWORD, "screenshots": screenshots,
            }),
        )
        .await;
    assert_eq!(r["pages"], json!(["Sign in", "Signed in", "Sign up", "Confirm your account", "Sign in"]), "{r}");
    assert_eq!(r["confirmedNotice"], "Your account is confirmed: sign in.", "{r}");
    assert_eq!(r["signedUp"], json!({"username": "bob", "email": "bob@example.com"}), "{r}");
    assert_eq!(r["wrongPassword"], "Incorrect username or password.", "{r}");
    assert_eq!(
        r["look"],
        json!({"button": "rgb(0, 51, 102)", "logoWidth": 1}),
        "the pool's UI customization styles the page: {r}"
    );
    let claims = &r["claims"];
    assert_eq!(
        (&claims["iss"], &claims["aud"], &claims["email"]),
        (&json!(iss), &json!(client.client_id), &json!(email))
    );
    assert!(claims["nonce"].is_string(), "{r}");
    assert_eq!(r["scope"], "openid email profile", "{r}");
    assert_eq!(r["userInfo"], json!({"sub": claims["sub"], "email": email, "username": "alice"}), "{r}");
    assert_eq!(r["refreshed"], json!({"idToken": true, "sub": claims["sub"]}), "{r}");
    assert_eq!(r["again"], "second", "{r}");
    assert_eq!(
        r["spa"],
        json!({"sub": claims["sub"], "email": email, "scope": "openid email", "expired": false}),
        "oidc-client-ts signed in from a single-page app (discovery, PKCE, the token endpoint over CORS): {r}"
    );
}

/// Providers Cognate stores but does not sign in through yet (the social providers) answer
/// with a page that says so; a SAML provider whose metadata names no IdP says what it lacks;
/// and the SAML response endpoint refuses a response it cannot verify (no RelayState of ours)
/// and IdP-initiated responses (no RelayState: not supported). hosted_saml.rs signs in
/// through SAML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_and_social_sign_in_refuse_what_is_not_supported() {
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    let metadata = "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"corp\"/>";
    ok(server
        .idp()
        .create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Corp")
        .provider_type(cognate_e2e::idp::types::IdentityProviderTypeType::Saml)
        .provider_details("MetadataFile", metadata)
        .send()
        .await);
    ok(server
        .idp()
        .create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Facebook")
        .provider_type(cognate_e2e::idp::types::IdentityProviderTypeType::Facebook)
        .provider_details("client_id", "app")
        .provider_details("client_secret", "secret")
        .provider_details("authorize_scopes", "public_profile,email")
        .send()
        .await);
    let callback = "http://localhost:3000/callback";
    let client = created(
        oauth_client(&server, &pool, "web", OAuthFlowType::Code, &["openid"], callback)
            .generate_secret(true)
            .supported_identity_providers("Corp")
            .supported_identity_providers("Facebook"),
    )
    .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http");
    for (provider, says) in [
        ("Corp", "The SAML metadata has no IDPSSODescriptor."),
        ("Facebook", "OIDC and SAML identity providers only, not Facebook"),
    ] {
        let client_id = client.client_id.as_deref().expect("id");
        let answer = http
            .get(format!(
                "{}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={callback}\
                 &identity_provider={provider}",
                server.url()
            ))
            .send()
            .await
            .expect("authorize");
        let status = answer.status().as_u16();
        let page = answer.text().await.expect("page");
        assert!(status >= 400 && page.contains(says), "{provider}: {status} {page}");
    }
    let answer = http
        .post(format!("{}/saml2/idpresponse", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("SAMLResponse=PHNhbWxwOlJlc3BvbnNlLz4%3D&RelayState=x")
        .send()
        .await
        .expect("acs");
    assert_eq!(answer.status().as_u16(), 400);
    assert!(answer.text().await.expect("page").contains("not started here (RelayState)"));
    let answer = http
        .post(format!("{}/saml2/idpresponse", server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("SAMLResponse=PHNhbWxwOlJlc3BvbnNlLz4%3D")
        .send()
        .await
        .expect("acs");
    assert_eq!(answer.status().as_u16(), 501);
    assert!(answer.text().await.expect("page").contains("IdP-initiated SAML sign-in"));
}

/// The hosted pages' other steps in Chromium, in a pool that requires TOTP: a new password
/// for a temporary one, setting up an authenticator app from the page (QR code and key), the
/// code exchanged, logout, the app's code at the next sign-in, a password reset. With
/// COGNATE_UPDATE_SCREENSHOTS set, the pages go to docs/hosted-ui.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_pages_set_up_totp_log_out_and_reset_in_chromium() {
    let Some(js) = Js::get("hosted_pages_set_up_totp_log_out_and_reset_in_chromium") else {
        return;
    };
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p.auto_verified_attributes(VerifiedAttributeType::Email)).await;
    ok(server
        .idp()
        .set_user_pool_mfa_config()
        .user_pool_id(&pool)
        .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
        .mfa_configuration(UserPoolMfaType::On)
        .send()
        .await);
    forced_user(&server, &pool, "carol").await;
    // An identity provider, so that the sign-in page offers a choice of providers.
    ok(server
        .idp()
        .create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Upstream")
        .provider_type(cognate_e2e::idp::types::IdentityProviderTypeType::Oidc)
        .provider_details("client_id", "upstream-client")
        .provider_details("authorize_scopes", "openid email")
        .provider_details("oidc_issuer", issuer(&server, &pool))
        .send()
        .await);
    let port = cognate_e2e::free_port();
    let (callback, signed_out) =
        (format!("http://localhost:{port}/callback"), format!("http://localhost:{port}/signed-out"));
    let client = created(
        oauth_client(&server, &pool, "web", OAuthFlowType::Code, &["openid", "email"], &callback)
            .logout_urls(&signed_out)
            .supported_identity_providers("COGNITO")
            .supported_identity_providers("Upstream"),
    )
    .await;
    let screenshots = std::env::var_os("COGNATE_UPDATE_SCREENSHOTS")
        .map(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hosted-ui"));
    let r = js
        .run(
            "hosted-browser-mfa.mjs",
            json!({
                "endpoint": server.url(), "poolId": pool, "clientId": client.client_id, "callback": callback,
                "signedOut": signed_out, "chromium": CHROMIUM, "username": "carol", "temporary": TEMP_PASSWORD,
                "password": PASSWORD, "reset": "Reset-Passw0rd!", "screenshots": screenshots,
            }),
        )
        .await;
    assert_eq!(
        r["pages"],
        json!([
            "Sign in",
            "Set a new password",
            "Set up your authenticator app",
            "Signed in",
            "Enter your code",
            "Forgot your password?",
            "Reset your password"
        ]),
        "{r}"
    );
    assert!(r["setup"]["qrWidth"].as_u64().is_some_and(|w| w >= 200), "the QR code renders: {r}");
    assert_eq!(r["setup"]["wrong"], "Code mismatch and fail enable Software Token MFA", "{r}");
    assert_eq!(r["exchanged"], json!({"username": "carol", "token_use": "access"}), "{r}");
    assert_eq!(r["loggedOut"], signed_out, "logout goes to the registered logout URL: {r}");
    assert_eq!(r["afterLogout"], "Sign in", "after logout the session no longer signs in: {r}");
    assert_eq!(r["mfaCode"], "second", "{r}");
    assert_eq!(
        r["reset"],
        json!({"notice": "Your password has been reset: sign in.", "next": "Enter your code"}),
        "the new password is accepted (MFA follows): {r}"
    );
}

// ---------------------------------------------------------------------------
// Two nodes on one PostgreSQL schema
// ---------------------------------------------------------------------------

/// A hosted sign-in that moves between two nodes on one PostgreSQL: the form, the code, its
/// exchange (spent once across both), userInfo and the session cookie all work on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hosted_sign_in_across_nodes() {
    let Some(py) = Py::get("postgres_hosted_sign_in_across_nodes") else {
        return;
    };
    let public = format!("http://127.0.0.1:{}", cognate_e2e::free_port());
    let Some(a) = Server::postgres_with(&["--public-url", &public]).await else {
        return;
    };
    let dir = Arc::new(tempfile::Builder::new().prefix("cognate-e2e-").tempdir().expect("temp dir"));
    let b = Server::launch_with(a.store().clone(), dir, &["--public-url", &public], &[]).await;
    let pool = a.new_pool(|p| p).await;
    confirmed_user(&a, &pool, "alice").await;
    let callback = "http://localhost:3000/callback";
    let client = created(oauth_client(&a, &pool, "spa", OAuthFlowType::Code, &["openid"], callback)).await;
    let input = json!({
        "a": a.url(), "b": b.url(), "client": client.client_id, "callback": callback,
        "username": "alice", "password": PASSWORD,
    });
    let r = py.run("hosted_two_nodes.py", input).await;
    assert_eq!(r["signedIn"], json!({"status": 302, "to": callback}), "{r}");
    assert_eq!(r["exchange"], 200, "{r}");
    assert_eq!(r["userInfo"], "alice", "{r}");
    assert_eq!(r["spentOnA"], json!([400, {"error": "invalid_grant"}]), "a code spent on B is spent on A: {r}");
    assert_eq!(r["again"], json!({"status": 302, "to": callback}), "{r}");
}

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
