//! Logins from identity providers outside Cognate: OpenID Connect providers an identity pool
//! names by ARN, and social providers that issue JWT ID tokens (accounts.google.com,
//! appleid.apple.com). Each is configured with its issuer and its keys (`login_providers`:
//! a JWKS URL, fetched and kept ten minutes, or a file); its RS256 ID tokens are verified for
//! signature, expiry, issuer and audience. Facebook's and Amazon's logins are access tokens
//! that only their own APIs can check, and SAML assertions need federation: both are refused
//! with a message that says so.

use std::sync::Arc;

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cognate_api::ErrorCode;
use cognate_store::IdentityLogin;
use serde_json::{Map, Value};

use super::verified::VerifiedLogin;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::fetch::Keys;
use crate::settings::LoginProviderConfig;

fn invalid_login(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, format!("Invalid login token. {detail}"))
}

fn provider_unavailable(detail: String) -> ApiError {
    ApiError::new(ErrorCode::ExternalServiceException, detail)
}

/// The configuration of `provider`, if the server has one.
pub fn configured<'a>(ctx: &'a Ctx, provider: &str) -> Option<&'a LoginProviderConfig> {
    ctx.settings().login_providers.iter().find(|p| p.name == provider)
}

/// Verifies an ID token of a configured external provider. `audiences` are the client ids
/// the login may be for (none: any).
pub async fn verify(
    ctx: &Ctx,
    config: &LoginProviderConfig,
    token: &str,
    audiences: Option<&[String]>,
) -> ApiResult<VerifiedLogin> {
    let keys = jwks(ctx, config).await?;
    let claims =
        verify_rs256(&keys, token).ok_or_else(|| invalid_login("Not a valid OpenId Connect identity token."))?;
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid_login("No exp."))?;
    if exp <= ctx.now_ms() / 1000 {
        return Err(invalid_login("Token expired."));
    }
    if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(invalid_login("Issuer doesn't match providerName"));
    }
    let token_audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let audience = match audiences {
        Some(allowed) => token_audiences
            .iter()
            .find(|a| allowed.iter().any(|x| x == *a))
            .ok_or_else(|| invalid_login("Incorrect token audience."))?,
        None => token_audiences.first().ok_or_else(|| invalid_login("No audience."))?,
    }
    .to_string();
    let subject = claims.get("sub").and_then(Value::as_str).ok_or_else(|| invalid_login("No sub."))?.to_owned();
    Ok(VerifiedLogin {
        mapping_key: format!("{}:{audience}", config.name),
        login: IdentityLogin { provider: config.name.clone(), subject },
        claims,
    })
}

/// The provider's keys: from its file, or fetched from its URL (cached).
async fn jwks(ctx: &Ctx, config: &LoginProviderConfig) -> ApiResult<Keys> {
    let (source, text) = match (&config.jwks_file, &config.jwks_url) {
        (Some(path), _) => {
            let path = path.clone();
            let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| provider_unavailable(format!("Cannot read the keys of {}: {e}", config.name)))?;
            (None, text)
        }
        (None, Some(url)) => {
            if let Some(keys) = ctx.state.jwks.get(url) {
                return Ok(keys);
            }
            let text = ctx
                .state
                .fetch
                .get(url)
                .await
                .map_err(|e| provider_unavailable(format!("Cannot fetch the keys of {}: {e}", config.name)))?;
            (Some(url), text)
        }
        (None, None) => {
            return Err(provider_unavailable(format!("No keys are configured for {}.", config.name)));
        }
    };
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| provider_unavailable(format!("The keys of {} are not JSON: {e}", config.name)))?;
    let keys = Arc::new(document.get("keys").and_then(Value::as_array).cloned().unwrap_or_default());
    if let Some(url) = source {
        ctx.state.jwks.put(url, Arc::clone(&keys));
    }
    Ok(keys)
}

/// The claims of `token` if one of the RSA `keys` (JWKs) signed it with RS256.
fn verify_rs256(keys: &[Value], token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return None;
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let key = keys.iter().find(|k| {
        k.get("kty").and_then(Value::as_str) == Some("RSA")
            && (kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
    })?;
    let n = URL_SAFE_NO_PAD.decode(key.get("n")?.as_str()?).ok()?;
    let e = URL_SAFE_NO_PAD.decode(key.get("e")?.as_str()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signed = &token[..token.rfind('.')?];
    RsaPublicKeyComponents { n: &n, e: &e }.verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}
