//! The basic (classic) flow: an app trades an identity's OpenID token (GetOpenIdToken) for
//! credentials through STS's AssumeRoleWithWebIdentity, which Cognate answers itself for the
//! tokens it issued, so SDKs' basic flow works by changing only the endpoint.
//!
//! STS would check the role's trust policy; Cognate has no IAM, so its stand-in is the
//! identity pool: the pool must allow the classic flow (AllowClassicFlow), and the role must
//! be one the pool names (its authenticated or unauthenticated role as the token's `amr`
//! says, or a role its role mappings can choose).

use std::time::Duration;

use serde_json::Value;

use super::credentials::{self, Issued};
use super::{openid, pools};
use crate::context::Ctx;
use crate::error::ApiError;

/// STS's limits on DurationSeconds.
pub const MIN_DURATION_SECS: u64 = 900;
pub const MAX_DURATION_SECS: u64 = 43_200;
pub const DEFAULT_DURATION_SECS: u64 = 3600;

/// Why STS refuses (its error codes).
#[derive(Debug)]
pub enum Refusal {
    /// ValidationError.
    Invalid(String),
    /// InvalidIdentityToken: not a token Cognate issued, or tampered with.
    InvalidToken(String),
    /// ExpiredTokenException.
    Expired,
    /// AccessDenied: the role is not one the identity pool lets this identity assume.
    AccessDenied(String),
    /// A fault of Cognate's.
    Internal(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Self {
        Refusal::Internal(err)
    }
}

/// What AssumeRoleWithWebIdentity answers.
pub struct Assumed {
    pub credentials: Issued,
    pub subject: String,
    pub audience: String,
    pub provider: String,
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
}

pub async fn assume_role_with_web_identity(
    ctx: &Ctx,
    role_arn: &str,
    session_name: &str,
    token: &str,
    duration_secs: Option<u64>,
) -> Result<Assumed, Refusal> {
    let duration = duration_secs.unwrap_or(DEFAULT_DURATION_SECS);
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&duration) {
        return Err(Refusal::Invalid(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: \
             Member must have value between {MIN_DURATION_SECS} and {MAX_DURATION_SECS}"
        )));
    }
    if session_name.is_empty() || session_name.len() > 64 {
        return Err(Refusal::Invalid("RoleSessionName must be 2 to 64 characters.".into()));
    }
    let invalid = || Refusal::InvalidToken("The ID Token provided is not a valid Cognate OpenID token.".into());
    // The token names its identity pool; only that pool's key may have signed it.
    let unverified = crate::tokens::peek_claims(token).ok_or_else(invalid)?;
    let identity_pool_id = unverified.get("aud").and_then(Value::as_str).ok_or_else(invalid)?.to_owned();
    if !identity_pool_id.contains(':') {
        return Err(invalid());
    }
    let keys = match openid::pool_key(ctx, &identity_pool_id).await {
        Ok(keys) => keys,
        Err(err) if err.type_name() == "ResourceNotFoundException" => return Err(invalid()),
        Err(err) => return Err(err.into()),
    };
    let claims =
        crate::jwt::verify_any_use(&keys, token, ctx.now_ms() / 1000).map_err(|rejection| match rejection {
            crate::jwt::Rejection::Expired => Refusal::Expired,
            _ => invalid(),
        })?;
    let issuer = openid::issuer(ctx, &identity_pool_id);
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
        return Err(invalid());
    }
    let subject = claims.get("sub").and_then(Value::as_str).ok_or_else(invalid)?.to_owned();
    let authenticated =
        claims.get("amr").and_then(Value::as_array).is_some_and(|amr| amr.iter().any(|v| v == "authenticated"));
    let (_, pool) = pools::load(ctx, &identity_pool_id).await?;
    if pool.pool.allow_classic_flow != Some(true) {
        return Err(Refusal::AccessDenied(format!(
            "Identity pool {identity_pool_id} does not allow the basic (classic) flow."
        )));
    }
    if !allowed_roles(&pool, authenticated).iter().any(|r| r == role_arn) {
        return Err(Refusal::AccessDenied(format!(
            "Not authorized to perform sts:AssumeRoleWithWebIdentity on {role_arn}: the identity pool does not name it."
        )));
    }
    let lifetime = Duration::from_secs(duration);
    let credentials = credentials::issue_for(ctx, &identity_pool_id, &subject, role_arn, lifetime)?;
    let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let account = ctx.settings().account_id.clone();
    let role_id = format!("AROA{}", &credentials.access_key_id[4..]);
    Ok(Assumed {
        assumed_role_arn: format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
        assumed_role_id: format!("{role_id}:{session_name}"),
        credentials,
        subject,
        audience: identity_pool_id,
        provider: issuer,
    })
}

/// The roles an identity of `pool` may assume through the classic flow.
fn allowed_roles(pool: &pools::IdentityPoolDoc, authenticated: bool) -> Vec<String> {
    let mut roles = Vec::new();
    if authenticated {
        roles.extend(pool.roles.get(super::roles::AUTHENTICATED).cloned());
        for mapping in pool.role_mappings.values() {
            roles.extend(mapping.rules_configuration.iter().flat_map(|c| &c.rules).map(|r| r.role_arn.clone()));
        }
    } else {
        roles.extend(pool.roles.get(super::roles::UNAUTHENTICATED).cloned());
    }
    roles
}
