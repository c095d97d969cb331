//! JWTs: per-pool RS256 keys (one for ID tokens, one for access tokens, as Cognito does),
//! sealed at rest, parsed once and cached; signing, verification and the JWKS document.
//!
//! Keys are made on first use (RSA generation takes tens of milliseconds, which would
//! otherwise land on every CreateUserPool) and stored with insert-if-absent, so concurrent
//! nodes agree on one key per pool and purpose. A cached key never changes once stored, so
//! caching it in process memory is safe across nodes.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use cognate_store::SigningKeyRecord;
use serde_json::json;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
pub use crate::jwt::{peek_claims, sign, verify, PoolKeys, Rejection, SigningKey, ACCESS, ID};

fn key_context(pool_id: &str, kid: &str) -> String {
    crate::sealed::Purpose::SigningKey { pool_id, kid }.context()
}

/// A new RSA key (blocking: call off the runtime): its kid, its PKCS#8 private key sealed
/// under the context `seal_as(kid)` names, and its public JWK.
pub fn new_sealed_key(ctx: &Ctx, seal_as: impl Fn(&str) -> String) -> ApiResult<(String, String, serde_json::Value)> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(ApiError::internal)?;
    let pkcs8 = pair.as_der().map_err(ApiError::internal)?;
    let public = pair.public_key();
    let kid = crate::jwt::b64(&cognate_crypto::ids::random_bytes::<24>());
    let jwk = json!({
        "alg": "RS256",
        "e": crate::jwt::b64(public.exponent().big_endian_without_leading_zero()),
        "kid": kid,
        "kty": "RSA",
        "n": crate::jwt::b64(public.modulus().big_endian_without_leading_zero()),
        "use": "sig",
    });
    let sealed = ctx.state.keyring.seal(pkcs8.as_ref(), &seal_as(&kid)).map_err(ApiError::internal)?;
    Ok((kid, sealed, jwk))
}

/// The key [`new_sealed_key`] sealed under `context`.
pub fn open_sealed_key(ctx: &Ctx, kid: &str, sealed: &str, context: &str) -> ApiResult<SigningKey> {
    let pkcs8 = ctx.state.keyring.open(sealed, context).map_err(ApiError::internal)?;
    let pair = KeyPair::from_pkcs8(&pkcs8).map_err(ApiError::internal)?;
    Ok(SigningKey::new(kid.to_owned(), pair))
}

/// Generates a user pool's key for `purpose` (blocking: call off the runtime).
fn generate(ctx: &Ctx, pool_id: &str, purpose: &str) -> ApiResult<SigningKeyRecord> {
    let (kid, sealed, jwk) = new_sealed_key(ctx, |kid| key_context(pool_id, kid))?;
    Ok(SigningKeyRecord {
        pool_id: pool_id.to_owned(),
        kid,
        purpose: purpose.to_owned(),
        sealed_private_key: sealed,
        public_jwk: jwk.to_string(),
        created_ms: ctx.now_ms(),
    })
}

fn parse(ctx: &Ctx, record: &SigningKeyRecord) -> ApiResult<SigningKey> {
    open_sealed_key(ctx, &record.kid, &record.sealed_private_key, &key_context(&record.pool_id, &record.kid))
}

/// The pool's keys, creating them on first use.
pub async fn pool_keys(ctx: &Ctx, pool_id: &str, pool_created_ms: i64) -> ApiResult<Arc<PoolKeys>> {
    let cache_key = (pool_id.to_owned(), pool_created_ms);
    if let Some(keys) = ctx.state.keys.get(&cache_key) {
        return Ok(keys);
    }
    let worker = ctx.clone();
    let pool = pool_id.to_owned();
    let keys = tokio::task::spawn_blocking(move || -> ApiResult<PoolKeys> {
        let store = &worker.state.store;
        let mut records = store.list_signing_keys(&pool)?;
        for purpose in [ID, ACCESS] {
            if !records.iter().any(|r| r.purpose == purpose) {
                let fresh = generate(&worker, &pool, purpose)?;
                records.push(store.ensure_signing_key(&fresh)?);
            }
        }
        let find = |purpose: &str| -> ApiResult<Arc<SigningKey>> {
            let record = records
                .iter()
                .rev()
                .find(|r| r.purpose == purpose)
                .ok_or_else(|| ApiError::internal("signing key missing"))?;
            Ok(Arc::new(parse(&worker, record)?))
        };
        let jwks = records.iter().filter_map(|r| serde_json::from_str(&r.public_jwk).ok()).collect();
        Ok(PoolKeys { id_key: find(ID)?, access_key: find(ACCESS)?, jwks })
    })
    .await
    .map_err(ApiError::internal)??;
    let keys = Arc::new(keys);
    ctx.state.keys.insert(cache_key, Arc::clone(&keys));
    Ok(keys)
}

pub fn issuer(ctx: &Ctx, pool_id: &str) -> String {
    format!("{}/{pool_id}", ctx.settings().public_url)
}

/// The PKCS#8 private key of the pool's ID-token key (made on first use), with its kid: what
/// GetSigningCertificate certifies.
pub async fn id_key_pkcs8(ctx: &Ctx, pool_id: &str, pool_created_ms: i64) -> ApiResult<(String, Vec<u8>)> {
    pool_keys(ctx, pool_id, pool_created_ms).await?;
    let pool = pool_id.to_owned();
    let records = ctx.store(move |s| s.list_signing_keys(&pool)).await?;
    let record = records
        .iter()
        .rev()
        .find(|r| r.purpose == ID)
        .ok_or_else(|| ApiError::internal("the pool's ID-token key is missing"))?;
    let der = ctx
        .state
        .keyring
        .open(&record.sealed_private_key, &key_context(pool_id, &record.kid))
        .map_err(ApiError::internal)?;
    Ok((record.kid.clone(), der))
}
