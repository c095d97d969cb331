//! OpenID tokens of identities (GetOpenIdToken, GetOpenIdTokenForDeveloperIdentity): RS256
//! JWTs signed with a key of the identity pool (made on first use, sealed at rest in the
//! pool's document), `sub` the identity id and `aud` the identity pool id. Their issuer is
//! `{public-url}/{identity pool id}`, under which Cognate serves the JWKS and a discovery
//! document, so any JWT library (and an STS that trusts the issuer) can verify them.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::pools::{self, StoredKey};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::jwt::{PoolKeys, SigningKey};
use crate::sealed::Purpose;
use crate::tokens;

/// GetOpenIdToken's tokens last ten minutes, as Cognito's do.
pub const DEFAULT_LIFETIME_SECS: i64 = 600;

pub fn issuer(ctx: &Ctx, identity_pool_id: &str) -> String {
    format!("{}/{identity_pool_id}", ctx.settings().public_url)
}

fn key_context(identity_pool_id: &str, kid: &str) -> String {
    Purpose::OpenIdKey { identity_pool_id, kid }.context()
}

/// The pool's key, parsed (and cached: a stored key never changes), creating it on first
/// use. Two nodes creating one at once agree on the one stored first.
pub async fn pool_key(ctx: &Ctx, identity_pool_id: &str) -> ApiResult<Arc<PoolKeys>> {
    let (record, doc) = pools::load(ctx, identity_pool_id).await?;
    let cache_key = (format!("openid:{identity_pool_id}"), record.created_ms);
    if let Some(keys) = ctx.state.keys.get(&cache_key) {
        return Ok(keys);
    }
    let stored = match doc.openid_key {
        Some(stored) => stored,
        None => {
            let worker = ctx.clone();
            let id = identity_pool_id.to_owned();
            let fresh =
                tokio::task::spawn_blocking(move || tokens::new_sealed_key(&worker, |kid| key_context(&id, kid)))
                    .await
                    .map_err(ApiError::internal)??;
            let (kid, sealed_private_key, public_jwk) = fresh;
            let candidate = StoredKey { kid, sealed_private_key, public_jwk };
            let doc = pools::modify(ctx, identity_pool_id, |doc| {
                doc.openid_key.get_or_insert_with(|| candidate.clone());
                Ok(())
            })
            .await?;
            doc.openid_key.ok_or_else(|| ApiError::internal("the OpenID key was not stored"))?
        }
    };
    let key = Arc::new(tokens::open_sealed_key(
        ctx,
        &stored.kid,
        &stored.sealed_private_key,
        &key_context(identity_pool_id, &stored.kid),
    )?);
    // One key serves both halves of the cache's pair; OpenID tokens carry no token_use.
    let keys = Arc::new(PoolKeys { id_key: Arc::clone(&key), access_key: key, jwks: vec![stored.public_jwk] });
    ctx.state.keys.insert(cache_key, Arc::clone(&keys));
    Ok(keys)
}

/// An OpenID token for an identity. `amr` is Cognito's: `["unauthenticated"]`, or
/// `["authenticated", <provider>, <provider>:<how>:<user>]` per login.
pub async fn token(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    amr: Vec<String>,
    lifetime_secs: i64,
) -> ApiResult<String> {
    let keys = pool_key(ctx, identity_pool_id).await?;
    let now = ctx.now_ms() / 1000;
    let arn = pools::identity_pool_arn(ctx, identity_pool_id);
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer(ctx, identity_pool_id)));
    claims.insert("sub".into(), json!(identity_id));
    claims.insert("aud".into(), json!(identity_pool_id));
    claims.insert("amr".into(), json!(amr));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime_secs));
    claims.insert("https://cognito-identity.amazonaws.com/identity-pool-arn".into(), json!(arn));
    let key: Arc<SigningKey> = Arc::clone(&keys.id_key);
    tokio::task::spawn_blocking(move || crate::jwt::sign(&key, &claims)).await.map_err(ApiError::internal)?
}

/// The pool's JWKS `keys`.
pub async fn jwks(ctx: &Ctx, identity_pool_id: &str) -> ApiResult<Vec<Value>> {
    Ok(pool_key(ctx, identity_pool_id).await?.jwks.clone())
}
