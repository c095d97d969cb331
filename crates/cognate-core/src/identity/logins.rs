//! The `Logins` of GetId, GetCredentialsForIdentity and GetOpenIdToken, verified: each maps
//! a provider name to a token, and only a token that really comes from a provider the pool
//! trusts becomes a login (provider and the user's id there).
//!
//! User-pool ID tokens are verified for real: signature (the pool's key), expiry, `token_use`,
//! issuer, `aud` being a client the identity pool names for that user pool, and, with
//! ServerSideTokenCheck, that the token was not revoked or signed out and its user still
//! exists and is enabled. The provider may be named `cognito-idp.<region>.amazonaws.com/<pool>`
//! (what AWS documents) or by the issuer without its scheme (`<host:port>/<pool>`, what Amplify
//! derives from the token); both name the same login.

use std::collections::BTreeMap;

use cognate_api::identity::CognitoIdentityProvider;
use cognate_api::{ErrorCode, Sensitive};
use cognate_store::IdentityLogin;
use serde_json::{Map, Value};

use super::external;
use super::pools::IdentityPoolDoc;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::decode_doc;
use crate::records::PoolDoc;
use crate::tokens;
use crate::users;

pub use super::verified::VerifiedLogin;

fn invalid_login(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, format!("Invalid login token. {detail}"))
}

/// The canonical provider name of a user pool.
pub fn user_pool_provider(pool_id: &str) -> String {
    let region = crate::region::of_user_pool(pool_id).unwrap_or("us-east-1");
    format!("cognito-idp.{region}.amazonaws.com/{pool_id}")
}

/// The user pool a provider name names, in either form: AWS's, or this server's issuer
/// without its scheme.
fn user_pool_of(ctx: &Ctx, provider: &str) -> Option<String> {
    let (host, pool_id) = provider.rsplit_once('/')?;
    crate::region::of_user_pool(pool_id)?;
    let ours = ctx.settings().public_url.split_once("://").map_or(ctx.settings().public_url.as_str(), |(_, h)| h);
    let aws = host.starts_with("cognito-idp.") && host.ends_with(".amazonaws.com");
    (aws || host == ours.trim_end_matches('/')).then(|| pool_id.to_owned())
}

/// The name a login of `provider` is stored under: a user pool's canonical name in either
/// form; other providers as named.
pub fn canonical_provider(ctx: &Ctx, provider: &str) -> String {
    user_pool_of(ctx, provider).map_or_else(|| provider.to_owned(), |pool_id| user_pool_provider(&pool_id))
}

/// The pool's provider entries for a user pool.
fn providers_for<'a>(pool: &'a IdentityPoolDoc, user_pool_id: &str) -> Vec<&'a CognitoIdentityProvider> {
    pool.pool
        .cognito_identity_providers
        .iter()
        .flatten()
        .filter(|p| {
            p.provider_name.as_deref().and_then(|name| name.rsplit_once('/')).is_some_and(|(_, id)| id == user_pool_id)
        })
        .collect()
}

/// Verifies every login; any one that does not verify refuses the call.
pub async fn verify(
    ctx: &Ctx,
    pool: &IdentityPoolDoc,
    logins: Option<&BTreeMap<String, Sensitive<String>>>,
) -> ApiResult<Vec<VerifiedLogin>> {
    let mut verified = Vec::new();
    for (provider, token) in logins.into_iter().flatten() {
        verified.push(verify_one(ctx, pool, provider, token.expose()).await?);
    }
    Ok(verified)
}

async fn verify_one(ctx: &Ctx, pool: &IdentityPoolDoc, provider: &str, token: &str) -> ApiResult<VerifiedLogin> {
    if let Some(user_pool_id) = user_pool_of(ctx, provider) {
        return verify_user_pool_token(ctx, pool, &user_pool_id, token).await;
    }
    if let Some(app_ids) = pool.pool.supported_login_providers.as_ref().and_then(|p| p.get(provider)) {
        if matches!(provider, "graph.facebook.com" | "www.amazon.com") {
            return Err(ApiError::new(
                ErrorCode::NotAuthorizedException,
                format!("Cognate cannot verify {provider} logins: they are access tokens only {provider} can check."),
            ));
        }
        let Some(config) = external::configured(ctx, provider) else {
            return Err(not_configured(provider));
        };
        // Google and others allow several app ids, comma-separated.
        let audiences: Vec<String> = app_ids.split(',').map(|id| id.trim().to_owned()).collect();
        return external::verify(ctx, config, token, Some(&audiences)).await;
    }
    if pool
        .pool
        .open_id_connect_provider_arns
        .iter()
        .flatten()
        .any(|arn| arn.ends_with(&format!(":oidc-provider/{provider}")))
    {
        let Some(config) = external::configured(ctx, provider) else {
            return Err(not_configured(provider));
        };
        return external::verify(ctx, config, token, config.audiences.as_deref()).await;
    }
    if pool.pool.saml_provider_arns.iter().flatten().any(|arn| arn.ends_with(&format!("/{provider}"))) {
        return Err(ApiError::new(
            ErrorCode::NotAuthorizedException,
            format!("Cognate does not verify SAML logins ({provider}) yet."),
        ));
    }
    if pool.pool.developer_provider_name.as_deref() == Some(provider) {
        return Err(ApiError::invalid_parameter(format!(
            "{provider} is the pool's developer provider: use GetOpenIdTokenForDeveloperIdentity."
        )));
    }
    Err(ApiError::invalid_parameter(format!(
        "Invalid identity pool configuration: {provider} is not a login provider of identity pool {}.",
        pool.pool.identity_pool_id
    )))
}

fn not_configured(provider: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ExternalServiceException,
        format!("Cognate has no keys for {provider}: name it in the server's login_providers (issuer and JWKS)."),
    )
}

async fn verify_user_pool_token(
    ctx: &Ctx,
    pool: &IdentityPoolDoc,
    user_pool_id: &str,
    token: &str,
) -> ApiResult<VerifiedLogin> {
    let entries = providers_for(pool, user_pool_id);
    if entries.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid identity pool configuration: user pool {user_pool_id} is not a provider of identity pool {}.",
            pool.pool.identity_pool_id
        )));
    }
    let lookup = user_pool_id.to_owned();
    let record =
        ctx.store(move |s| s.get_user_pool(&lookup)).await?.ok_or_else(|| invalid_login("User pool not found."))?;
    let keys = tokens::pool_keys(ctx, user_pool_id, record.created_ms).await?;
    let claims =
        tokens::verify(&keys, token, tokens::ID, ctx.now_ms() / 1000).map_err(|rejection| match rejection {
            tokens::Rejection::Expired => invalid_login("Token expired."),
            tokens::Rejection::WrongUse => invalid_login("Not an ID token."),
            _ => invalid_login("Not a valid OpenId Connect identity token."),
        })?;
    if claims.get("iss").and_then(Value::as_str) != Some(tokens::issuer(ctx, user_pool_id).as_str()) {
        return Err(invalid_login("Issuer doesn't match providerName"));
    }
    let audience = claims.get("aud").and_then(Value::as_str).unwrap_or_default();
    let Some(entry) = entries.iter().find(|e| e.client_id.as_deref() == Some(audience)) else {
        return Err(invalid_login("Incorrect token audience."));
    };
    let subject = claims.get("sub").and_then(Value::as_str).ok_or_else(|| invalid_login("No sub."))?.to_owned();
    if entry.server_side_token_check == Some(true) {
        check_not_revoked(ctx, user_pool_id, &record.doc, &claims, &subject).await?;
    }
    let provider = user_pool_provider(user_pool_id);
    Ok(VerifiedLogin {
        mapping_key: format!("{}:{audience}", entry.provider_name.as_deref().unwrap_or(&provider)),
        login: IdentityLogin { provider, subject },
        claims,
    })
}

/// ServerSideTokenCheck: the token's family is not revoked, its user was not signed out
/// since it was issued, and the user exists and is enabled.
async fn check_not_revoked(
    ctx: &Ctx,
    user_pool_id: &str,
    pool_doc: &str,
    claims: &Map<String, Value>,
    subject: &str,
) -> ApiResult<()> {
    let revoked = || invalid_login("Token has been revoked.");
    let user_pool: PoolDoc = decode_doc(pool_doc)?;
    let username = claims.get("cognito:username").and_then(Value::as_str).unwrap_or(subject);
    let user = users::find_user(ctx, user_pool_id, &user_pool.pool, username).await?.ok_or_else(revoked)?;
    if user.record.sub != *subject
        || !user.record.enabled
        || crate::access::is_revoked(ctx, user_pool_id, &user, claims).await?
    {
        return Err(revoked());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pool_providers_have_one_canonical_name() {
        assert_eq!(user_pool_provider("eu-west-1_Abc"), "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc");
    }
}
