//! OAuth 2.0 for the token endpoint (`/oauth2/token`), GetClientToken and the hosted pages:
//! client_credentials (machine-to-machine: the client authenticates with one of its secrets;
//! the access token carries the granted resource-server scopes, `sub` and `client_id` are the
//! client's, no ID or refresh token), and the authorization code flow (authorize request
//! checks, the hosted sign-in session, codes bound to client, redirect_uri and PKCE, spent
//! once).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cognate_api::idp::{OAuthFlowType, TimeUnitsType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::clients::{load_client, ClientCall};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::sealed;
use crate::signin::step::Tokens;
use crate::signin::tokens::OAuthGrant;

/// Why a grant was refused, as OAuth 2.0 names it (the token endpoint answers
/// `{"error": name}`; GetClientToken maps it to its model's exceptions).
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Unknown client, or the secret does not match.
    InvalidClient,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// A scope the client may not have.
    InvalidScope,
    /// A code that is not this client's, redirect_uri's or verifier's, expired or spent; a
    /// refresh token that is not valid.
    InvalidGrant,
    /// A malformed request.
    InvalidRequest,
    /// A token to revoke that is not a refresh token.
    UnsupportedTokenType,
    /// Something the store or the keys failed at (not the caller's doing).
    Internal(ApiError),
}

impl Refusal {
    pub fn error(&self) -> &'static str {
        match self {
            Refusal::InvalidClient => "invalid_client",
            Refusal::UnauthorizedClient => "unauthorized_client",
            Refusal::InvalidScope => "invalid_scope",
            Refusal::InvalidGrant => "invalid_grant",
            Refusal::InvalidRequest => "invalid_request",
            Refusal::UnsupportedTokenType => "unsupported_token_type",
            Refusal::Internal(_) => "server_error",
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Refusal {
        Refusal::Internal(err)
    }
}

/// An access token granted to a client.
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: i64,
}

/// client_credentials: an access token for `client_id` with the `requested` scopes (all the
/// client's resource-server scopes when none are asked for).
pub async fn client_credentials(
    ctx: &Ctx,
    client_id: &str,
    secret: &str,
    requested: Option<Vec<String>>,
) -> Result<ClientToken, Refusal> {
    let call = authenticated_client(ctx, client_id, Some(secret)).await?;
    // A client without a secret cannot authenticate at all here.
    if !call.has_secret() {
        return Err(Refusal::InvalidClient);
    }
    let client = &call.client;
    let allowed_flow = client.allowed_oauth_flows_user_pool_client == Some(true)
        && client.allowed_oauth_flows.iter().flatten().any(|f| *f == OAuthFlowType::ClientCredentials);
    if !allowed_flow {
        return Err(Refusal::UnauthorizedClient);
    }
    let allowed: Vec<&String> = client
        .allowed_oauth_scopes
        .iter()
        .flatten()
        .filter(|scope| crate::resource_servers::scope_exists(&call.pool, scope))
        .collect();
    let scopes: Vec<String> = match requested {
        Some(requested) if !requested.is_empty() => {
            if requested.iter().any(|scope| !allowed.contains(&scope)) {
                return Err(Refusal::InvalidScope);
            }
            requested
        }
        _ => allowed.into_iter().cloned().collect(),
    };
    if scopes.is_empty() {
        return Err(Refusal::InvalidScope);
    }
    let units = client.token_validity_units.clone().unwrap_or_default();
    let expires_in = crate::signin::tokens::validity_secs(
        client.access_token_validity,
        units.access_token.as_ref(),
        TimeUnitsType::Minutes,
        60,
    );
    let now = ctx.now_ms() / 1000;
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(call.client_id));
    claims.insert("token_use".into(), json!("access"));
    claims.insert("scope".into(), json!(scopes.join(" ")));
    claims.insert("auth_time".into(), json!(now));
    claims.insert("iss".into(), json!(crate::tokens::issuer(ctx, &call.pool_id)));
    claims.insert("exp".into(), json!(now + expires_in));
    claims.insert("iat".into(), json!(now));
    claims.insert("version".into(), json!(2));
    claims.insert("jti".into(), json!(cognate_crypto::ids::uuid_v4()));
    claims.insert("client_id".into(), json!(call.client_id));
    crate::hooks::pre_token_generation_m2m(ctx, &call, &mut claims).await?;
    let keys = crate::tokens::pool_keys(ctx, &call.pool_id, call.pool_created_ms).await?;
    let access_token = tokio::task::spawn_blocking(move || crate::tokens::sign(&keys.access_key, &claims))
        .await
        .map_err(ApiError::internal)??;
    Ok(ClientToken { access_token, expires_in })
}

// ---------------------------------------------------------------------------
// The authorization code flow (the hosted pages)

/// How long an authorization code may be exchanged.
const CODE_MS: i64 = 5 * 60 * 1000;
/// How long the hosted pages' sign-in session lasts.
pub const SESSION_MS: i64 = 60 * 60 * 1000;
/// Scopes that only come with `openid`.
const NEEDS_OPENID: &[&str] = &["email", "phone", "profile"];

/// A checked `/oauth2/authorize` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Authorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// response_type=token: the tokens go to the redirect_uri's fragment, no code.
    #[serde(default)]
    pub implicit: bool,
}

/// Why an authorize request was refused.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect_uri cannot be trusted: shown on an error page, never redirected
    /// to (an open redirect otherwise).
    Page(String),
    /// Sent back to the relying party: `redirect_uri?error=...&error_description=...&state=...`.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
    Internal(ApiError),
}

impl From<ApiError> for AuthorizeError {
    fn from(err: ApiError) -> AuthorizeError {
        AuthorizeError::Internal(err)
    }
}

/// Checks an authorize request's parameters: the client (OAuth enabled, the code flow
/// allowed), the redirect_uri (exactly one of its CallbackURLs), the scopes (the client's;
/// all of them when none are asked for) and PKCE (S256 only; required of clients without a
/// secret, which cannot authenticate at the token endpoint).
pub async fn authorize(
    ctx: &Ctx,
    params: &BTreeMap<String, String>,
) -> Result<(ClientCall, Authorization), AuthorizeError> {
    let param = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let Some(client_id) = param("client_id") else {
        return Err(AuthorizeError::Page("The request has no client_id.".into()));
    };
    let call = match load_client(ctx, &client_id).await {
        Ok(call) => call,
        Err(err) if err.type_name() == "ResourceNotFoundException" => {
            return Err(AuthorizeError::Page("The client_id names no app client.".into()))
        }
        Err(err) => return Err(AuthorizeError::Internal(err)),
    };
    let client = &call.client;
    // Exact match: no prefix, no wildcard, no normalisation.
    let redirect_uri = param("redirect_uri")
        .filter(|uri| client.callback_urls.iter().flatten().any(|registered| registered == uri))
        .ok_or_else(|| AuthorizeError::Page("The redirect_uri is not one of the app client's callback URLs.".into()))?;
    let state = param("state");
    let refuse = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: state.clone(),
    };
    let flows: Vec<&OAuthFlowType> = client.allowed_oauth_flows.iter().flatten().collect();
    match param("response_type").as_deref() {
        Some("code")
            if client.allowed_oauth_flows_user_pool_client == Some(true) && flows.contains(&&OAuthFlowType::Code) => {}
        Some("code") => return Err(refuse("unauthorized_client", "The client may not use the code flow.")),
        Some("token")
            if client.allowed_oauth_flows_user_pool_client == Some(true)
                && flows.contains(&&OAuthFlowType::Implicit) => {}
        Some("token") => return Err(refuse("unauthorized_client", "The client may not use the implicit flow.")),
        _ => return Err(refuse("invalid_request", "response_type must be code or token.")),
    }
    let implicit = param("response_type").as_deref() == Some("token");
    let allowed: Vec<&String> = client.allowed_oauth_scopes.iter().flatten().collect();
    let scopes: Vec<String> = match param("scope") {
        Some(asked) => asked.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        None => allowed.iter().map(|s| (*s).clone()).collect(),
    };
    if scopes.is_empty() || scopes.iter().any(|s| !allowed.contains(&s)) {
        return Err(refuse("invalid_scope", "A scope was asked for that the client may not have."));
    }
    if !scopes.iter().any(|s| s == "openid") && scopes.iter().any(|s| NEEDS_OPENID.contains(&s.as_str())) {
        return Err(refuse("invalid_scope", "The email, phone and profile scopes need openid."));
    }
    let code_challenge = match (param("code_challenge"), param("code_challenge_method").as_deref()) {
        (Some(challenge), Some("S256")) => Some(challenge),
        (None, None) => None,
        // "plain", a method without a challenge or the reverse: a downgrade or a mistake.
        _ => return Err(refuse("invalid_request", "PKCE needs code_challenge with code_challenge_method S256.")),
    };
    if code_challenge.is_none() && !call.has_secret() && !implicit {
        return Err(refuse("invalid_request", "A client without a secret must use PKCE (S256)."));
    }
    let nonce = param("nonce");
    let authorization = Authorization { client_id, redirect_uri, state, scopes, nonce, code_challenge, implicit };
    Ok((call, authorization))
}

/// The hosted pages' session: who signed in to which pool, and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostedSession {
    pub pool: String,
    pub user: String,
    pub sub: String,
    pub auth_time: i64,
    pub expires_ms: i64,
}

pub fn seal_session(ctx: &Ctx, session: &HostedSession) -> ApiResult<String> {
    sealed::seal(ctx, sealed::Purpose::HostedSession, session)
}

/// The session a cookie holds, if it is sound, unexpired and of `pool_id`.
pub fn open_session(ctx: &Ctx, cookie: &str, pool_id: &str) -> Option<HostedSession> {
    let session: HostedSession = sealed::open(ctx, sealed::Purpose::HostedSession, cookie)?;
    (session.pool == pool_id && session.expires_ms > ctx.now_ms()).then_some(session)
}

/// What an authorization code carries to the token endpoint.
#[derive(Serialize, Deserialize)]
struct CodeClaims {
    pool: String,
    authorization: Authorization,
    user: String,
    sub: String,
    auth_time: i64,
    jti: String,
    expires_ms: i64,
}

/// A code for `session`'s user, bound to the client, redirect_uri and PKCE challenge.
pub fn issue_code(
    ctx: &Ctx,
    call: &ClientCall,
    authorization: &Authorization,
    session: &HostedSession,
) -> ApiResult<String> {
    let claims = CodeClaims {
        pool: call.pool_id.clone(),
        authorization: authorization.clone(),
        user: session.user.clone(),
        sub: session.sub.clone(),
        auth_time: session.auth_time,
        jti: cognate_crypto::ids::uuid_v4(),
        expires_ms: ctx.now_ms() + CODE_MS,
    };
    sealed::seal(ctx, sealed::Purpose::AuthorizationCode, &claims)
}

/// BASE64URL(SHA-256(verifier)), PKCE's S256.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()))
}

/// The authorization_code grant: the code checked against the client (authenticated when
/// it has a secret), the redirect_uri and the PKCE verifier, spent once, then tokens with
/// the scopes it was granted. Everything wrong about the code is invalid_grant.
pub async fn exchange_code(
    ctx: &Ctx,
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(Tokens, Vec<String>), Refusal> {
    let call = authenticated_client(ctx, client_id, secret).await?;
    let claims: CodeClaims =
        sealed::open(ctx, sealed::Purpose::AuthorizationCode, code).ok_or(Refusal::InvalidGrant)?;
    let auth = &claims.authorization;
    let bound = claims.pool == call.pool_id
        && auth.client_id == call.client_id
        && redirect_uri == Some(auth.redirect_uri.as_str())
        && claims.expires_ms > ctx.now_ms();
    if !bound {
        return Err(Refusal::InvalidGrant);
    }
    if let Some(challenge) = &auth.code_challenge {
        let matches = verifier.is_some_and(|v| cognate_crypto::ct::eq(s256(v).as_bytes(), challenge.as_bytes()));
        if !matches {
            return Err(Refusal::InvalidGrant);
        }
    }
    let (key, expires, now) = (format!("code:{}", claims.jti), claims.expires_ms, ctx.now_ms());
    if !ctx.store(move |s| s.consume_once(&key, expires, now)).await? {
        return Err(Refusal::InvalidGrant);
    }
    let user = crate::users::find_user(ctx, &call.pool_id, &call.pool.pool, &claims.user).await?;
    let Some(user) = user.filter(|u| u.record.sub == claims.sub && u.record.enabled) else {
        return Err(Refusal::InvalidGrant);
    };
    let grant = OAuthGrant { scopes: auth.scopes.clone(), nonce: auth.nonce.clone() };
    let tokens = crate::signin::tokens::issue_oauth(ctx, &call, &user, claims.auth_time, &grant).await?;
    Ok((tokens, grant.scopes))
}

/// The refresh_token grant: the client authenticated (when it has a secret), then what
/// GetTokensFromRefreshToken does (the scopes the token was granted with are kept; a rotating
/// client gets the token's successor). Whether the tokens include `openid` comes back too.
pub async fn refresh_grant(
    ctx: &Ctx,
    client_id: &str,
    secret: Option<&str>,
    token: &str,
) -> Result<(Tokens, bool), Refusal> {
    let call = authenticated_client(ctx, client_id, secret).await?;
    let scopes = sealed::open::<crate::signin::state::RefreshClaims>(ctx, sealed::Purpose::RefreshToken, token)
        .and_then(|claims| claims.scopes);
    let openid = scopes.as_ref().is_some_and(|s| s.iter().any(|s| s == "openid"));
    let proof = crate::signin::tokens::ClientProof::SecretChecked;
    let mut tokens = crate::signin::tokens::refresh(ctx, &call, token, proof).await.map_err(as_grant_refusal)?;
    let rotating = call
        .client
        .refresh_token_rotation
        .as_ref()
        .is_some_and(|r| r.feature == cognate_api::idp::FeatureType::Enabled);
    if rotating {
        tokens.refresh_token =
            Some(crate::signin::tokens::rotate_refresh_token(ctx, token).await.map_err(as_grant_refusal)?);
    }
    Ok((tokens, openid))
}

/// `/oauth2/revoke`: revokes a refresh token and every token issued from it. An unknown or
/// already revoked token is no error (RFC 7009); one that is not a refresh token is.
pub async fn revoke(ctx: &Ctx, client_id: &str, secret: Option<&str>, token: &str) -> Result<(), Refusal> {
    let call = authenticated_client(ctx, client_id, secret).await?;
    match crate::signin::tokens::revoke(ctx, &call, token).await {
        Ok(()) => Ok(()),
        Err(err) if err.type_name() == "UnsupportedTokenTypeException" => Err(Refusal::UnsupportedTokenType),
        Err(err) if err.type_name() == "InvalidParameterException" => Err(Refusal::InvalidRequest),
        Err(err) => Err(Refusal::Internal(err)),
    }
}

/// The client named, with its secret checked when it has one.
async fn authenticated_client(ctx: &Ctx, client_id: &str, secret: Option<&str>) -> Result<ClientCall, Refusal> {
    let call = match load_client(ctx, client_id).await {
        Ok(call) => call,
        Err(err) if err.type_name() == "ResourceNotFoundException" => return Err(Refusal::InvalidClient),
        Err(err) => return Err(Refusal::Internal(err)),
    };
    if call.has_secret() && !call.check_client_secret(ctx, Some(secret.unwrap_or_default()))? {
        return Err(Refusal::InvalidClient);
    }
    Ok(call)
}

/// A refused refresh is invalid_grant; anything else is the server's.
fn as_grant_refusal(err: ApiError) -> Refusal {
    if err.type_name() == "NotAuthorizedException" {
        Refusal::InvalidGrant
    } else {
        Refusal::Internal(err)
    }
}

/// The implicit flow's tokens for `session`'s user (no refresh token: the browser holds them).
pub async fn implicit_tokens(
    ctx: &Ctx,
    call: &ClientCall,
    authorization: &Authorization,
    session: &HostedSession,
) -> ApiResult<Tokens> {
    let user = crate::users::find_user(ctx, &call.pool_id, &call.pool.pool, &session.user).await?;
    let Some(user) = user.filter(|u| u.record.sub == session.sub && u.record.enabled) else {
        return Err(ApiError::not_authorized("The signed-in user is no longer there."));
    };
    let grant = OAuthGrant { scopes: authorization.scopes.clone(), nonce: authorization.nonce.clone() };
    let mut tokens = crate::signin::tokens::issue_oauth(ctx, call, &user, session.auth_time, &grant).await?;
    tokens.refresh_token = None;
    Ok(tokens)
}
