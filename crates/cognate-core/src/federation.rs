//! Signing in through a pool's OpenID Connect identity provider (the hosted pages'
//! federation): `/oauth2/authorize` with `identity_provider` (or `idp_identifier`) sends the
//! browser to the provider with a sealed `state`; the provider sends it back to
//! `/oauth2/idpresponse`, where its code is exchanged (client_secret_post, as Cognito sends
//! it) for an ID token that is verified (signature against the provider's JWKS, issuer,
//! audience, expiry, nonce), and the access token asks the provider's userinfo endpoint for the
//! user's claims, as Cognito does: many providers put no profile claims in the ID token of a
//! code flow. The user is `{provider}_{sub}` in the pool (EXTERNAL_PROVIDER, created on first
//! sign-in with the provider's claims mapped by the provider's AttributeMapping and the
//! `identities` attribute); then the sign-in ends as a password sign-in does. The pool's
//! InboundFederation function, when it has one, may refuse the sign-in or replace the claims
//! that are mapped.

use std::collections::BTreeMap;

use cognate_api::idp::{IdentityProviderTypeType, UserStatusType};
use cognate_api::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::clients::{load_client, ClientCall};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::fetch::Outgoing;
use crate::lambda::{self, Event, Trigger};
use crate::oauth::{Authorization, HostedSession, SESSION_MS};
use crate::records::StoredIdentityProvider;
use crate::sealed;
use crate::settings::LoginProviderConfig;
use crate::users::{self, NewUser, User, UserDoc};

/// How long a browser may take at the provider.
const STATE_MS: i64 = 10 * 60 * 1000;

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, message)
}

/// What the `state` sent to the provider carries back.
#[derive(Serialize, Deserialize)]
struct FederationState {
    pool: String,
    provider: String,
    authorization: Authorization,
    nonce: String,
    expires_ms: i64,
    /// The redirect URI sent to the provider, which the code exchange must send again (RFC
    /// 6749 4.1.3). Empty in a state sealed before it was kept: the public URL's.
    #[serde(default)]
    redirect_uri: String,
    /// A SAML sign-in's AuthnRequest ID, which the response's InResponseTo must be. Empty
    /// for an OIDC sign-in.
    #[serde(default)]
    saml_request_id: String,
}

/// The provider's endpoints: from its details, or from its issuer's discovery document.
struct Endpoints {
    authorize: String,
    token: String,
    jwks: String,
    issuer: String,
    /// The userinfo endpoint (`attributes_url`, or the discovery document's
    /// `userinfo_endpoint`), when the provider has one.
    userinfo: Option<String>,
}

async fn endpoints(ctx: &Ctx, provider: &StoredIdentityProvider) -> ApiResult<Endpoints> {
    let detail = |key: &str| provider.details.get(key).cloned();
    let issuer = detail("oidc_issuer").ok_or_else(|| refused("The identity provider has no oidc_issuer."))?;
    if let (Some(authorize), Some(token), Some(jwks)) =
        (detail("authorize_url"), detail("token_url"), detail("jwks_uri"))
    {
        return Ok(Endpoints { authorize, token, jwks, issuer, userinfo: detail("attributes_url") });
    }
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let text = ctx.state.fetch.get(&url).await.map_err(|e| {
        ApiError::new(ErrorCode::InternalErrorException, format!("The identity provider's discovery failed: {e}"))
    })?;
    let document: Value = serde_json::from_str(&text).map_err(ApiError::internal)?;
    let field = |name: &str| document.get(name).and_then(Value::as_str).map(str::to_owned);
    let userinfo = detail("attributes_url").or_else(|| field("userinfo_endpoint"));
    match (field("authorization_endpoint"), field("token_endpoint"), field("jwks_uri")) {
        (Some(authorize), Some(token), Some(jwks)) => Ok(Endpoints { authorize, token, jwks, issuer, userinfo }),
        _ => Err(refused("The identity provider's discovery document lacks an endpoint.")),
    }
}

/// Where OIDC providers send the browser back.
const OIDC_PATH: &str = "/oauth2/idpresponse";
/// Where SAML providers post their responses (the ACS URL).
const SAML_PATH: &str = "/saml2/idpresponse";

fn public_redirect_uri(ctx: &Ctx, path: &str) -> String {
    format!("{}{path}", ctx.settings().public_url)
}

/// Where the provider sends the browser back: `/oauth2/idpresponse` on the pool's domain when
/// the sign-in started there (`host`, the authorize request's Host: a prefix domain's
/// `{prefix}.auth.localhost` or a custom domain's name), as Cognito's redirect URI is
/// `https://{user pool domain}/oauth2/idpresponse`, the URL registered at the provider; and
/// so that the hosted session cookie is the domain's, where the next authorize looks for it.
/// Anywhere else, on the public URL. The scheme is the public URL's.
/// A SAML provider's ACS URL is computed the same way, with `/saml2/idpresponse` as `path`.
async fn redirect_uri(ctx: &Ctx, pool_id: &str, host: Option<&str>, path: &str) -> ApiResult<String> {
    let Some(host) = host else {
        return Ok(public_redirect_uri(ctx, path));
    };
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name).to_ascii_lowercase();
    // `{prefix}.auth.localhost` is a prefix domain; any other name can only be a custom one.
    let (lookup, custom) = match name.strip_suffix(".auth.localhost") {
        Some(prefix) => (prefix.to_owned(), false),
        None => (name, true),
    };
    let domain = ctx.store(move |s| s.get_domain(&lookup)).await?;
    match domain {
        Some(domain) if domain.pool_id == pool_id && domain.custom == custom => {
            let public = &ctx.settings().public_url;
            let scheme = public.split_once("://").map_or("http", |(scheme, _)| scheme);
            Ok(format!("{scheme}://{host}{path}"))
        }
        _ => Ok(public_redirect_uri(ctx, path)),
    }
}

/// The provider an authorize request names (`identity_provider`, or an `idp_identifier`), if
/// the client supports it.
pub fn chosen_provider(call: &ClientCall, params: &BTreeMap<String, String>) -> Option<String> {
    let name = match (params.get("identity_provider"), params.get("idp_identifier")) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(identifier)) => call
            .pool
            .identity_providers
            .iter()
            .find(|(_, p)| p.idp_identifiers.iter().any(|i| i == identifier))
            .map(|(name, _)| name.clone()),
        (None, None) => None,
    }?;
    let supported = call.client.supported_identity_providers.iter().flatten().any(|p| *p == name);
    (name != "COGNITO" && supported).then_some(name)
}

/// Where to send the browser to sign in at `provider_name`; `host` is the Host the authorize
/// request came to (see [`redirect_uri`]).
pub async fn start(
    ctx: &Ctx,
    call: &ClientCall,
    authorization: &Authorization,
    provider_name: &str,
    host: Option<&str>,
) -> ApiResult<String> {
    let provider = call
        .pool
        .identity_providers
        .get(provider_name)
        .ok_or_else(|| refused(format!("The identity provider {provider_name} does not exist.")))?;
    if provider.provider_type == IdentityProviderTypeType::Saml.as_str() {
        return start_saml(ctx, call, authorization, (provider_name, provider), host).await;
    }
    if provider.provider_type != IdentityProviderTypeType::Oidc.as_str() {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperationException,
            format!("Cognate signs in through OIDC and SAML identity providers only, not {}.", provider.provider_type),
        ));
    }
    let endpoints = endpoints(ctx, provider).await?;
    let nonce = hex::encode(cognate_crypto::ids::random_bytes::<16>());
    let redirect = redirect_uri(ctx, &call.pool_id, host, OIDC_PATH).await?;
    let state = FederationState {
        pool: call.pool_id.clone(),
        provider: provider_name.to_owned(),
        authorization: authorization.clone(),
        nonce: nonce.clone(),
        expires_ms: ctx.now_ms() + STATE_MS,
        redirect_uri: redirect.clone(),
        saml_request_id: String::new(),
    };
    let state = sealed::seal(ctx, sealed::Purpose::FederationState, &state)?;
    let client_id = provider.details.get("client_id").cloned().unwrap_or_default();
    let scopes = provider.details.get("authorize_scopes").cloned().unwrap_or_else(|| "openid".into());
    let query = crate::aws::form_of(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", &redirect),
        ("scope", &scopes),
        ("state", &state),
        ("nonce", &nonce),
    ]);
    let separator = if endpoints.authorize.contains('?') { '&' } else { '?' };
    Ok(format!("{}{separator}{query}", endpoints.authorize))
}

/// The provider's answer: the client and authorization the sign-in was for, and the session
/// of the pool's user for the provider's user.
pub async fn finish(ctx: &Ctx, state: &str, code: &str) -> ApiResult<(ClientCall, Authorization, HostedSession)> {
    let state: FederationState = sealed::open(ctx, sealed::Purpose::FederationState, state)
        .filter(|s: &FederationState| s.expires_ms > ctx.now_ms())
        .ok_or_else(|| refused("The sign-in at the identity provider took too long or was not started here."))?;
    let call = load_client(ctx, &state.authorization.client_id).await?;
    if call.pool_id != state.pool {
        return Err(refused("The sign-in was started for another user pool."));
    }
    let provider = call
        .pool
        .identity_providers
        .get(&state.provider)
        .ok_or_else(|| refused(format!("The identity provider {} does not exist.", state.provider)))?
        .clone();
    let endpoints = endpoints(ctx, &provider).await?;
    let client_id = provider.details.get("client_id").cloned().unwrap_or_default();
    let secret = crate::identity_providers::client_secret(ctx, &call.pool_id, &state.provider, &provider)?;
    let redirect =
        if state.redirect_uri.is_empty() { public_redirect_uri(ctx, OIDC_PATH) } else { state.redirect_uri.clone() };
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
        ("client_id", client_id.as_str()),
    ];
    if let Some(secret) = &secret {
        form.push(("client_secret", secret));
    }
    let request = Outgoing {
        method: "POST",
        url: endpoints.token.clone(),
        headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
        body: crate::aws::form_of(&form).into_bytes(),
    };
    let (status, answer) = ctx.state.fetch.send(request).await.map_err(|e| {
        ApiError::new(ErrorCode::InternalErrorException, format!("The identity provider's token endpoint failed: {e}"))
    })?;
    let tokens: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
    let Some(id_token) = tokens.get("id_token").and_then(Value::as_str).filter(|_| status == 200) else {
        return Err(refused(format!("The identity provider refused the code (HTTP {status}).")));
    };
    let config = LoginProviderConfig {
        name: state.provider.clone(),
        issuer: endpoints.issuer.clone(),
        jwks_url: Some(endpoints.jwks.clone()),
        jwks_file: None,
        audiences: None,
    };
    let verified = crate::identity::external::verify(ctx, &config, id_token, Some(&[client_id])).await?;
    if verified.claims.get("nonce").and_then(Value::as_str) != Some(state.nonce.as_str()) {
        return Err(refused("The identity provider's ID token is not for this sign-in (nonce)."));
    }
    let (subject, id_claims) = (verified.login.subject, verified.claims);
    let mut info = None;
    if let (Some(url), Some(access_token)) = (&endpoints.userinfo, tokens.get("access_token").and_then(Value::as_str)) {
        info = Some(user_info(ctx, &provider, url, access_token, &subject).await?);
    }
    // The claims mapped: the ID token's with the userinfo answer's over them. The
    // InboundFederation function sees the token endpoint's answer, the ID token's claims and
    // the userinfo answer, as Cognito shows an OIDC provider's.
    let mut claims = id_claims.clone();
    claims.extend(info.clone().unwrap_or_default());
    let mut said = json!({"tokenResponse": tokens, "idToken": id_claims});
    if let Some(info) = info {
        said["userInfo"] = Value::Object(info);
    }
    let claims = inbound_federation(ctx, &call, (&state.provider, &provider), &subject, claims, said).await?;
    let user = federated_user(ctx, &call, (&state.provider, &provider, None), &subject, &claims).await?;
    let session = session_of(ctx, &call, &user);
    Ok((call, state.authorization, session))
}

/// The hosted session of a federated user who just signed in.
fn session_of(ctx: &Ctx, call: &ClientCall, user: &User) -> HostedSession {
    HostedSession {
        pool: call.pool_id.clone(),
        user: user.record.username_key.to_string(),
        sub: user.record.sub.to_string(),
        auth_time: ctx.now_ms() / 1000,
        expires_ms: ctx.now_ms() + SESSION_MS,
    }
}

/// A SAML provider's metadata: its MetadataFile, or its MetadataURL's document.
async fn saml_metadata(ctx: &Ctx, provider: &StoredIdentityProvider) -> ApiResult<crate::saml::IdpMetadata> {
    let text = match (provider.details.get("MetadataFile"), provider.details.get("MetadataURL")) {
        (Some(file), _) => file.clone(),
        (None, Some(url)) => ctx.state.fetch.get(url).await.map_err(|e| {
            ApiError::new(
                ErrorCode::InternalErrorException,
                format!("The SAML provider's metadata could not be fetched: {e}"),
            )
        })?,
        (None, None) => return Err(refused("The SAML identity provider has no metadata.")),
    };
    crate::saml::parse_metadata(&text).map_err(refused)
}

/// A SAML sign-in: the IdP's SingleSignOnService with an AuthnRequest (HTTP-Redirect binding)
/// whose ID the sealed RelayState keeps for the response's InResponseTo.
async fn start_saml(
    ctx: &Ctx,
    call: &ClientCall,
    authorization: &Authorization,
    (provider_name, provider): (&str, &StoredIdentityProvider),
    host: Option<&str>,
) -> ApiResult<String> {
    let metadata = saml_metadata(ctx, provider).await?;
    let acs = redirect_uri(ctx, &call.pool_id, host, SAML_PATH).await?;
    let request_id = crate::saml::new_request_id();
    let state = FederationState {
        pool: call.pool_id.clone(),
        provider: provider_name.to_owned(),
        authorization: authorization.clone(),
        nonce: String::new(),
        expires_ms: ctx.now_ms() + STATE_MS,
        redirect_uri: acs.clone(),
        saml_request_id: request_id.clone(),
    };
    let relay_state = sealed::seal(ctx, sealed::Purpose::FederationState, &state)?;
    Ok(crate::saml::authn_request_url(&metadata, &request_id, &call.pool_id, &acs, ctx.now_ms(), &relay_state))
}

/// `POST /saml2/idpresponse`: the SAML provider's response (base64) and the RelayState sent
/// with the request. The response is verified (see [`crate::saml::verify_response`]) against
/// the provider's metadata, this sign-in's request ID and ACS URL and the pool's SP entity
/// ID; the request ID is spent once, so a response cannot be posted twice. Then the sign-in
/// ends as an OIDC one: the NameID is the subject, the attributes the claims mapped.
pub async fn finish_saml(
    ctx: &Ctx,
    relay_state: &str,
    saml_response: &str,
) -> ApiResult<(ClientCall, Authorization, HostedSession)> {
    let state: FederationState = sealed::open(ctx, sealed::Purpose::FederationState, relay_state)
        .filter(|s: &FederationState| s.expires_ms > ctx.now_ms() && !s.saml_request_id.is_empty())
        .ok_or_else(|| refused("The SAML sign-in took too long or was not started here (RelayState)."))?;
    let call = load_client(ctx, &state.authorization.client_id).await?;
    if call.pool_id != state.pool {
        return Err(refused("The sign-in was started for another user pool."));
    }
    let provider = call
        .pool
        .identity_providers
        .get(&state.provider)
        .filter(|p| p.provider_type == IdentityProviderTypeType::Saml.as_str())
        .ok_or_else(|| refused(format!("The SAML identity provider {} does not exist.", state.provider)))?
        .clone();
    let metadata = saml_metadata(ctx, &provider).await?;
    // Parsing, canonicalization, digests and the RSA check are CPU work: off the async runtime.
    let (posted, acs_url, request_id) =
        (saml_response.to_owned(), state.redirect_uri.clone(), state.saml_request_id.clone());
    let (audience, idp, now_ms) = (crate::saml::sp_entity_id(&call.pool_id), metadata.clone(), ctx.now_ms());
    let verified = tokio::task::spawn_blocking(move || {
        let expected = crate::saml::Expected {
            acs_url: &acs_url,
            audience: &audience,
            request_id: &request_id,
            metadata: &idp,
            now_ms,
        };
        crate::saml::verify_response(&posted, &expected)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(refused)?;
    // Spent only once verified: a forged post cannot burn a real sign-in's request.
    let (key, expires, now) = (format!("saml:{}", state.saml_request_id), state.expires_ms, ctx.now_ms());
    if !ctx.store(move |s| s.consume_once(&key, expires, now)).await? {
        return Err(refused("This SAML response was used already."));
    }
    let said = json!({"samlResponse": verified.attributes});
    let claims =
        inbound_federation(ctx, &call, (&state.provider, &provider), &verified.subject, verified.attributes, said)
            .await?;
    // Cognito's `identities` name a SAML user's IdP (its entity ID) as the issuer.
    let issuer = Some(metadata.entity_id.as_str());
    let user = federated_user(ctx, &call, (&state.provider, &provider, issuer), &verified.subject, &claims).await?;
    let session = session_of(ctx, &call, &user);
    Ok((call, state.authorization, session))
}

/// The claims the provider's AttributeMapping maps: `claims` (an OIDC provider's ID token's
/// with its userinfo answer's over them; a SAML assertion's attributes), or, when the pool has
/// an InboundFederation function, its `userAttributesToMap`. `said` is what the function's
/// `request.attributes` shows of the provider's answer.
/// Cognito runs that function on every federated sign-in, before the user is created or
/// found (`InboundFederation_ExternalProvider`, version 1: V1_0 is the only LambdaVersion);
/// an empty or absent `userAttributesToMap` keeps the provider's claims, and a throw refuses
/// the sign-in. The user stays the ID token's subject whatever the function answers.
async fn inbound_federation(
    ctx: &Ctx,
    call: &ClientCall,
    (provider_name, provider): (&str, &StoredIdentityProvider),
    subject: &str,
    claims: Map<String, Value>,
    said: Value,
) -> ApiResult<Map<String, Value>> {
    let Some(function) = Trigger::InboundFederation.function(call.pool.pool.lambda_config.as_ref()) else {
        return Ok(claims);
    };
    let username = format!("{provider_name}_{subject}");
    let event = Event {
        trigger: Trigger::InboundFederation,
        source: "InboundFederation_ExternalProvider",
        pool_id: &call.pool_id,
        user_name: &username,
        client_id: Some(&call.client_id),
        version: "1",
        request: json!({"providerName": provider_name, "providerType": provider.provider_type, "attributes": said}),
    };
    let response = lambda::invoke(ctx, function, event).await?;
    match response.get("userAttributesToMap") {
        None | Some(Value::Null) => Ok(claims),
        Some(Value::Object(mapped)) if mapped.is_empty() => Ok(claims),
        Some(Value::Object(mapped)) => Ok(mapped.clone()),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidLambdaResponseException, "Unrecognizable lambda output")),
    }
}

/// The provider's userinfo answer for `access_token` (with the `attributes_request_method`
/// of its details, GET unless POST; the token in the Authorization header either way, as
/// OpenID Connect Core 5.3.1 asks). Refused when it is not about `subject`, the ID token's
/// `sub`: Core 5.3.4 forbids using claims about anyone else.
async fn user_info(
    ctx: &Ctx,
    provider: &StoredIdentityProvider,
    url: &str,
    access_token: &str,
    subject: &str,
) -> ApiResult<serde_json::Map<String, Value>> {
    let post = provider.details.get("attributes_request_method").is_some_and(|m| m.eq_ignore_ascii_case("POST"));
    let mut headers =
        vec![("authorization".into(), format!("Bearer {access_token}")), ("accept".into(), "application/json".into())];
    if post {
        headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
    }
    let request =
        Outgoing { method: if post { "POST" } else { "GET" }, url: url.to_owned(), headers, body: Vec::new() };
    let (status, answer) = ctx.state.fetch.send(request).await.map_err(|e| {
        ApiError::new(
            ErrorCode::InternalErrorException,
            format!("The identity provider's userinfo endpoint failed: {e}"),
        )
    })?;
    let claims = match serde_json::from_str(&answer) {
        Ok(Value::Object(claims)) if status == 200 => claims,
        _ => {
            return Err(refused(format!(
                "The identity provider's userinfo endpoint refused the access token (HTTP {status})."
            )))
        }
    };
    if claims.get("sub").and_then(Value::as_str) != Some(subject) {
        return Err(refused("The identity provider's userinfo is about another user than its ID token."));
    }
    Ok(claims)
}

/// The pool's user for the provider's user, created on the first sign-in. `issuer` is what
/// the `identities` attribute names as the provider's issuer (null for OIDC providers, a SAML
/// IdP's entity ID).
async fn federated_user(
    ctx: &Ctx,
    call: &ClientCall,
    (provider_name, provider, issuer): (&str, &StoredIdentityProvider, Option<&str>),
    subject: &str,
    claims: &serde_json::Map<String, Value>,
) -> ApiResult<User> {
    let pool = &call.pool.pool;
    // A user the provider's user was linked to (AdminLinkProviderForUser) signs in as itself.
    let (pool_id, link) = (call.pool_id.clone(), format!("{provider_name}:{subject}"));
    if let Some(record) = ctx.store(move |s| s.get_user_by_alias(&pool_id, "provider", &link)).await? {
        let user = User::from_record(record)?;
        if !user.record.enabled {
            return Err(refused("User is disabled."));
        }
        return Ok(user);
    }
    let username = format!("{provider_name}_{subject}");
    if let Some(user) = users::find_user(ctx, &call.pool_id, pool, &username).await? {
        if !user.record.enabled {
            return Err(refused("User is disabled."));
        }
        return Ok(user);
    }
    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    for (attribute, claim) in &provider.attribute_mapping {
        match claims.get(claim) {
            Some(Value::String(text)) => attributes.insert(attribute.clone(), text.clone()),
            Some(Value::Bool(flag)) => attributes.insert(attribute.clone(), flag.to_string()),
            Some(Value::Number(number)) => attributes.insert(attribute.clone(), number.to_string()),
            _ => None,
        };
    }
    // PreSignUp_ExternalProvider may refuse the new user (nothing is created) or verify its
    // contacts; confirmation does not apply to a federated user.
    let decision = crate::hooks::pre_sign_up(
        ctx,
        (&call.pool_id, pool),
        Some(&call.client_id),
        ("PreSignUp_ExternalProvider", &username),
        &attributes,
        &[],
    )
    .await?;
    decision.verify_contacts(&mut attributes);
    let now = ctx.now_ms();
    let identities = json!([{
        "userId": subject,
        "providerName": provider_name,
        "providerType": provider.provider_type,
        "issuer": issuer,
        "primary": "true",
        "dateCreated": now.to_string(),
    }]);
    attributes.insert("identities".into(), identities.to_string());
    let sub = cognate_crypto::ids::uuid_v4();
    attributes.insert("sub".into(), sub.clone());
    // An unguessable password nobody knows: a federated user signs in through the provider.
    let unknown = hex::encode(cognate_crypto::ids::random_bytes::<32>());
    let sealed_password = users::password::seal_password(ctx, &call.pool_id, &sub, &username, &unknown).await?;
    let new = NewUser {
        pool_id: call.pool_id.clone(),
        username,
        sub,
        status: UserStatusType::ExternalProvider,
        attributes,
        sealed_password,
        doc: UserDoc::default(),
    };
    let mut user = User::create(pool, new, now);
    user.prepare_write(now)?;
    let (record, index) = (user.record.clone(), user.index(pool));
    match ctx.store(move |s| Ok(s.insert_user(&record, &index))).await? {
        Ok(()) => Ok(user),
        // Two first sign-ins at once: the other made the user.
        Err(cognate_store::StoreError::AlreadyExists(_)) => {
            users::require_user(ctx, &call.pool_id, pool, &user.record.username).await
        }
        Err(other) => Err(ApiError::internal(other)),
    }
}

/// AdminLinkProviderForUser: the provider's user (`source`: provider name and subject) signs
/// in from now on as the pool's user `destination` (a Cognito username). Refused when the
/// provider's user has signed in already (its own user exists), as Cognito refuses merging.
pub async fn link(ctx: &Ctx, pool_id: &str, destination: &str, provider: &str, subject: &str) -> ApiResult<()> {
    let (_, doc) = crate::records::load_pool(ctx, pool_id).await?;
    if !doc.identity_providers.contains_key(provider) {
        return Err(ApiError::invalid_parameter(format!("The identity provider {provider} does not exist.")));
    }
    let pool = &doc.pool;
    if users::find_user(ctx, pool_id, pool, &format!("{provider}_{subject}")).await?.is_some() {
        return Err(ApiError::invalid_parameter(
            "Merging is not currently supported: the provider's user has signed in already (delete that user first).",
        ));
    }
    let mut user = users::require_user(ctx, pool_id, pool, destination).await?;
    let link = format!("{provider}:{subject}");
    if !user.doc.linked_providers.contains(&link) {
        user.doc.linked_providers.push(link);
        let mut identities: Vec<Value> =
            user.attr("identities").and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
        identities.push(json!({
            "userId": subject, "providerName": provider, "providerType": doc.identity_providers[provider].provider_type,
            "issuer": null, "primary": "false", "dateCreated": ctx.now_ms().to_string(),
        }));
        user.attributes.insert("identities".into(), Value::Array(identities).to_string());
    }
    match users::save_user(ctx, pool, &mut user).await? {
        Ok(()) => Ok(()),
        Err(cognate_store::StoreError::AliasTaken(_)) => Err(ApiError::new(
            ErrorCode::AliasExistsException,
            "The provider's user is linked to another user already.",
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}

/// AdminDisableProviderForUser: the provider's user no longer signs in, whether linked to a
/// user (the link goes) or a user of its own (disabled).
pub async fn disable(ctx: &Ctx, pool_id: &str, provider: &str, subject: &str) -> ApiResult<()> {
    let (_, doc) = crate::records::load_pool(ctx, pool_id).await?;
    let pool = &doc.pool;
    let (p, link) = (pool_id.to_owned(), format!("{provider}:{subject}"));
    let linked = ctx
        .store({
            let link = link.clone();
            move |s| s.get_user_by_alias(&p, "provider", &link)
        })
        .await?;
    if let Some(record) = linked {
        let mut user = User::from_record(record)?;
        user.doc.linked_providers.retain(|l| *l != link);
        let identities: Vec<Value> = user
            .attr("identities")
            .and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !(i["providerName"] == provider && i["userId"] == subject))
            .collect();
        user.attributes.insert("identities".into(), Value::Array(identities).to_string());
        users::save_user_or_fail(ctx, pool, &mut user).await?;
        return Ok(());
    }
    match users::find_user(ctx, pool_id, pool, &format!("{provider}_{subject}")).await? {
        Some(mut user) => {
            user.record.enabled = false;
            users::save_user_or_fail(ctx, pool, &mut user).await
        }
        None => Err(ApiError::new(ErrorCode::UserNotFoundException, "User does not exist.")),
    }
}
