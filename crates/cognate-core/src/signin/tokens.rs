//! The end of a sign-in: ID, access and refresh tokens, issued with the claims Cognito puts
//! in them; refreshing, rotating and revoking refresh tokens.

use cognate_api::idp::{TimeUnitsType, UserPoolClientType};
use cognate_api::ErrorCode;
use serde_json::{json, Map, Value};

use super::state::RefreshClaims;
use super::step::{device_metadata, not_authorized, Tokens};
use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks::token_source;
use crate::users::{self, lockout, User};
use crate::{devices, hooks, sealed};

/// How the client of a refresh proved itself.
pub enum ClientProof<'a> {
    /// SECRET_HASH over the user's name (InitiateAuth REFRESH_TOKEN_AUTH), checked once the
    /// token names the user.
    SecretHash(Option<&'a str>),
    /// The client secret itself, already checked (GetTokensFromRefreshToken).
    SecretChecked,
}

/// Seconds of a client's token lifetime setting.
pub fn validity_secs(
    value: Option<i32>,
    unit: Option<&TimeUnitsType>,
    default_unit: TimeUnitsType,
    default: i64,
) -> i64 {
    let per_unit = match unit.unwrap_or(&default_unit) {
        TimeUnitsType::Seconds => 1,
        TimeUnitsType::Minutes => 60,
        TimeUnitsType::Hours => 3600,
        _ => 86_400,
    };
    value.map(i64::from).unwrap_or(default) * per_unit
}

/// Issues the tokens of a completed sign-in, after clearing the user's guess counter;
/// `source` is the PreTokenGeneration trigger source naming how the sign-in ended. With
/// device tracking on, a known device is named in the access token; an unknown one is
/// registered and returned as NewDeviceMetadata.
pub(super) async fn complete_sign_in(
    ctx: &Ctx,
    call: &ClientCall,
    mut user: User,
    (auth_time, source): (i64, &str),
    given_device: Option<&str>,
) -> ApiResult<Tokens> {
    lockout::sign_in_succeeded(ctx, &call.pool_id, &user.record.username_key).await?;
    let tracks_devices = call.pool.pool.device_configuration.is_some();
    let known = given_device.filter(|k| user.doc.device(k).is_some()).map(str::to_owned);
    hooks::post_authentication(ctx, call, &user, tracks_devices && known.is_none()).await?;
    if !tracks_devices {
        return issue(ctx, call, &user, (auth_time, source), None, None, None).await;
    }
    let (key, new_device) = match known {
        Some(key) => {
            if let Some(device) = user.doc.device_mut(&key) {
                device.last_auth_ms = ctx.now_ms();
            }
            (key, None)
        }
        None => {
            let device = devices::new_device(ctx, &call.pool_id);
            let metadata = device_metadata(&device.key, &device.group_key);
            let key = device.key.clone();
            user.doc.devices.push(device);
            (key, Some(metadata))
        }
    };
    users::save_user_or_fail(ctx, &call.pool.pool, &mut user).await?;
    let mut tokens = issue(ctx, call, &user, (auth_time, source), None, Some(&key), None).await?;
    tokens.new_device = new_device;
    Ok(tokens)
}

/// Issues ID and access tokens (and a refresh token unless `origin` says this is a refresh);
/// an OAuth 2.0 `grant` sets the access token's scopes and the ID token's nonce.
async fn issue(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    (auth_time, source): (i64, &str),
    origin: Option<&RefreshClaims>,
    device_key: Option<&str>,
    grant: Option<&OAuthGrant>,
) -> ApiResult<Tokens> {
    let client = &call.client;
    let units = client.token_validity_units.clone().unwrap_or_default();
    let access_secs =
        validity_secs(client.access_token_validity, units.access_token.as_ref(), TimeUnitsType::Minutes, 60);
    let id_secs = validity_secs(client.id_token_validity, units.id_token.as_ref(), TimeUnitsType::Minutes, 60);
    let refresh_secs =
        validity_secs(client.refresh_token_validity, units.refresh_token.as_ref(), TimeUnitsType::Days, 30);
    let now = ctx.now_ms() / 1000;
    let origin_jti = origin.map(|o| o.origin_jti.clone()).unwrap_or_else(cognate_crypto::ids::uuid_v4);
    let event_id = cognate_crypto::ids::uuid_v4();
    let iss = crate::tokens::issuer(ctx, &call.pool_id);
    let revocable = client.enable_token_revocation != Some(false);

    let mut id = Map::new();
    for (name, value) in readable_attributes(client, user) {
        id.insert(name, value);
    }
    id.insert("sub".into(), json!(user.record.sub.as_str()));
    id.insert("aud".into(), json!(call.client_id));
    id.insert("iss".into(), json!(iss));
    id.insert("cognito:username".into(), json!(user.record.username));
    id.insert("event_id".into(), json!(event_id));
    id.insert("token_use".into(), json!("id"));
    id.insert("auth_time".into(), json!(auth_time));
    id.insert("iat".into(), json!(now));
    id.insert("exp".into(), json!(now + id_secs));
    if revocable {
        id.insert("origin_jti".into(), json!(origin_jti));
        id.insert("jti".into(), json!(cognate_crypto::ids::uuid_v4()));
    }

    let mut access = Map::new();
    access.insert("sub".into(), json!(user.record.sub.as_str()));
    access.insert("iss".into(), json!(iss));
    access.insert("client_id".into(), json!(call.client_id));
    access.insert("event_id".into(), json!(event_id));
    access.insert("token_use".into(), json!("access"));
    let scope = grant.map_or_else(|| "aws.cognito.signin.user.admin".to_owned(), |g| g.scopes.join(" "));
    access.insert("scope".into(), json!(scope));
    if let Some(nonce) = grant.and_then(|g| g.nonce.as_ref()) {
        id.insert("nonce".into(), json!(nonce));
    }
    access.insert("auth_time".into(), json!(auth_time));
    access.insert("iat".into(), json!(now));
    access.insert("exp".into(), json!(now + access_secs));
    access.insert("username".into(), json!(user.record.username));
    if let Some(key) = device_key {
        access.insert("device_key".into(), json!(key));
    }
    if revocable {
        access.insert("origin_jti".into(), json!(origin_jti));
        access.insert("jti".into(), json!(cognate_crypto::ids::uuid_v4()));
    }

    // Groups go into both tokens (roles into the ID token only), as Cognito does.
    for (name, value) in crate::groups::token_claims(ctx, &call.pool_id, &user.record.username_key).await? {
        if name == "cognito:groups" {
            access.insert(name.clone(), value.clone());
        }
        id.insert(name, value);
    }
    if !ctx.hosted_sign_in {
        hooks::pre_token_generation(ctx, call, user, source, &mut id, &mut access).await?;
    }
    let refresh_token = match origin {
        Some(_) => None,
        None => Some(sealed::seal(
            ctx,
            sealed::Purpose::RefreshToken,
            &RefreshClaims {
                pool: call.pool_id.clone(),
                client: call.client_id.clone(),
                user: user.record.username_key.to_string(),
                sub: user.record.sub.to_string(),
                origin_jti: origin_jti.clone(),
                auth_time,
                issued_ms: ctx.now_ms(),
                expires_ms: ctx.now_ms() + refresh_secs * 1000,
                scopes: grant.map(|g| g.scopes.clone()),
            },
        )?),
    };
    let keys = crate::tokens::pool_keys(ctx, &call.pool_id, call.pool_created_ms).await?;
    let (id_token, access_token) = tokio::task::spawn_blocking(move || -> ApiResult<(String, String)> {
        Ok((crate::tokens::sign(&keys.id_key, &id)?, crate::tokens::sign(&keys.access_key, &access)?))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Tokens {
        id_token,
        access_token,
        refresh_token,
        expires_in: i32::try_from(access_secs).unwrap_or(i32::MAX),
        new_device: None,
    })
}

/// The ID token's attribute claims: what the client may read, with Cognito's types
/// (verification flags as booleans, updated_at as a number, custom attributes as strings).
fn readable_attributes(client: &UserPoolClientType, user: &User) -> Vec<(String, Value)> {
    let readable = |name: &str| client.read_attributes.as_ref().is_none_or(|list| list.iter().any(|r| r == name));
    user.attributes
        .iter()
        .filter(|(name, _)| name.as_str() != "sub" && !name.starts_with("dev:") && readable(name))
        .map(|(name, value)| {
            let typed = match name.as_str() {
                "email_verified" | "phone_number_verified" => json!(value == "true"),
                "updated_at" => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(value)),
                // A federated user's identities, as the JSON array Cognito puts in the claim.
                "identities" => serde_json::from_str(value).unwrap_or_else(|_| json!(value)),
                _ => json!(value),
            };
            (name.clone(), typed)
        })
        .collect()
}

fn invalid_refresh_token() -> ApiError {
    not_authorized("Invalid Refresh Token")
}

/// Opens and checks a refresh token, then issues fresh ID and access tokens.
pub async fn refresh(ctx: &Ctx, call: &ClientCall, token: &str, proof: ClientProof<'_>) -> ApiResult<Tokens> {
    let claims: RefreshClaims =
        sealed::open(ctx, sealed::Purpose::RefreshToken, token).ok_or_else(invalid_refresh_token)?;
    if claims.pool != call.pool_id || claims.client != call.client_id {
        return Err(invalid_refresh_token());
    }
    if claims.expires_ms <= ctx.now_ms() {
        return Err(not_authorized("Refresh Token has expired"));
    }
    let Some(user) = users::find_user(ctx, &call.pool_id, &call.pool.pool, &claims.user).await? else {
        return Err(invalid_refresh_token());
    };
    if user.record.sub != claims.sub {
        return Err(invalid_refresh_token());
    }
    if let ClientProof::SecretHash(given) = proof {
        call.check_secret_hash(ctx, given, &user.record.username)?;
    }
    let (pool_id, jti) = (call.pool_id.clone(), claims.origin_jti.clone());
    let revoked = ctx.store(move |s| s.is_token_family_revoked(&pool_id, &jti)).await?;
    if revoked || user.doc.tokens_valid_after_ms.is_some_and(|t| claims.issued_ms < t) {
        return Err(not_authorized("Refresh Token has been revoked"));
    }
    if !user.record.enabled {
        return Err(not_authorized("User is disabled."));
    }
    let grant = claims.scopes.clone().map(|scopes| OAuthGrant { scopes, nonce: None });
    let source = (claims.auth_time, token_source::REFRESH_TOKENS);
    issue(ctx, call, &user, source, Some(&claims), None, grant.as_ref()).await
}

/// What an OAuth 2.0 sign-in (the hosted pages) grants besides the user: the scopes, which
/// become the access token's `scope`, and the relying party's nonce, which the ID token
/// carries back.
#[derive(Clone, Debug)]
pub struct OAuthGrant {
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
}

/// Tokens for a user signed in through the hosted pages, with the scopes granted.
pub async fn issue_oauth(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    auth_time: i64,
    grant: &OAuthGrant,
) -> ApiResult<Tokens> {
    issue(ctx, call, user, (auth_time, token_source::HOSTED_AUTH), None, None, Some(grant)).await
}

/// Spends a refresh token of a rotating client and returns its successor (same family). A
/// spent token offered again means two parties hold the family: all of it is revoked, so
/// whoever rotated first (maybe a thief) is cut off too (OAuth 2.0 BCP).
pub async fn rotate_refresh_token(ctx: &Ctx, token: &str) -> ApiResult<String> {
    let claims: RefreshClaims =
        sealed::open(ctx, sealed::Purpose::RefreshToken, token).ok_or_else(invalid_refresh_token)?;
    let spent_key =
        format!("refresh:{}", hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())));
    let (now, until) = (ctx.now_ms(), claims.expires_ms);
    if !ctx.store(move |s| s.consume_once(&spent_key, until, now)).await? {
        let (pool, jti) = (claims.pool.clone(), claims.origin_jti.clone());
        ctx.store(move |s| s.revoke_token_family(&pool, &jti, until)).await?;
        return Err(ApiError::new(ErrorCode::RefreshTokenReuseException, "The refresh token has already been used."));
    }
    let fresh = RefreshClaims { issued_ms: ctx.now_ms(), ..claims };
    sealed::seal(ctx, sealed::Purpose::RefreshToken, &fresh)
}

/// Revokes the family of a refresh token issued to `call`'s client (RevokeToken).
pub async fn revoke(ctx: &Ctx, call: &ClientCall, token: &str) -> ApiResult<()> {
    let Some(claims) = sealed::open::<RefreshClaims>(ctx, sealed::Purpose::RefreshToken, token) else {
        return Err(ApiError::new(ErrorCode::UnsupportedTokenTypeException, "Unsupported token type."));
    };
    if claims.client != call.client_id || claims.pool != call.pool_id {
        return Err(ApiError::invalid_parameter("The token was not issued to this client."));
    }
    let (pool, jti, until) = (claims.pool, claims.origin_jti, claims.expires_ms);
    ctx.store(move |s| s.revoke_token_family(&pool, &jti, until)).await
}
