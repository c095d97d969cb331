//! JWTs: per-pool RS256 keys (one for ID tokens, one for access tokens, as Cognito does),
//! sealed at rest, parsed once and cached; signing, verification and the JWKS document.
//!
//! Keys are made on first use (RSA generation takes tens of milliseconds, which would
//! otherwise land on every CreateUserPool) and stored with insert-if-absent, so concurrent
//! nodes agree on one key per pool and purpose. A cached key never changes once stored, so
//! caching it in process memory is safe across nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cognate_store::SigningKeyRecord;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

pub const ID: &str = "id";
pub const ACCESS: &str = "access";

pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
    public_der: Vec<u8>,
}

/// A pool's keys, ready to sign and verify.
pub struct PoolKeys {
    pub id_key: Arc<SigningKey>,
    pub access_key: Arc<SigningKey>,
    /// The JWKS `keys` array.
    pub jwks: Vec<Value>,
}

impl PoolKeys {
    fn by_kid(&self, kid: &str) -> Option<(&'static str, &SigningKey)> {
        if self.id_key.kid == kid {
            Some((ID, &self.id_key))
        } else if self.access_key.kid == kid {
            Some((ACCESS, &self.access_key))
        } else {
            None
        }
    }
}

/// Parsed keys by (pool id, pool creation time): a pool deleted and created again under the
/// same custom id gets new keys, not the cached old ones.
#[derive(Default)]
pub struct KeyCache {
    pools: Mutex<HashMap<(String, i64), Arc<PoolKeys>>>,
}

fn key_context(pool_id: &str, kid: &str) -> String {
    crate::sealed::Purpose::SigningKey { pool_id, kid }.context()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Generates a key for `purpose` (blocking: call off the runtime).
fn generate(ctx: &Ctx, pool_id: &str, purpose: &str) -> ApiResult<SigningKeyRecord> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(ApiError::internal)?;
    let pkcs8 = pair.as_der().map_err(ApiError::internal)?;
    let public = pair.public_key();
    let kid = b64(&cognate_crypto::ids::random_bytes::<24>());
    let jwk = json!({
        "alg": "RS256",
        "e": b64(public.exponent().big_endian_without_leading_zero()),
        "kid": kid,
        "kty": "RSA",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "use": "sig",
    });
    let sealed = ctx.state.keyring.seal(pkcs8.as_ref(), &key_context(pool_id, &kid)).map_err(ApiError::internal)?;
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
    let pkcs8 = ctx
        .state
        .keyring
        .open(&record.sealed_private_key, &key_context(&record.pool_id, &record.kid))
        .map_err(ApiError::internal)?;
    let pair = KeyPair::from_pkcs8(&pkcs8).map_err(ApiError::internal)?;
    let public_der = pair.public_key().as_ref().to_vec();
    Ok(SigningKey { kid: record.kid.clone(), pair, public_der })
}

/// The pool's keys, creating them on first use.
pub async fn pool_keys(ctx: &Ctx, pool_id: &str, pool_created_ms: i64) -> ApiResult<Arc<PoolKeys>> {
    let cache_key = (pool_id.to_owned(), pool_created_ms);
    if let Some(keys) = ctx.state.keys.pools.lock().ok().and_then(|m| m.get(&cache_key).cloned()) {
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
    if let Ok(mut map) = ctx.state.keys.pools.lock() {
        map.insert(cache_key, Arc::clone(&keys));
    }
    Ok(keys)
}

/// Signs `claims` as a compact JWS (blocking: call off the runtime).
pub fn sign(key: &SigningKey, claims: &Map<String, Value>) -> ApiResult<String> {
    let header = json!({ "kid": key.kid, "alg": "RS256" });
    let mut token =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(Value::Object(claims.clone()).to_string().as_bytes()));
    let mut signature = vec![0; key.pair.public_modulus_len()];
    key.pair
        .sign(&signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), token.as_bytes(), &mut signature)
        .map_err(ApiError::internal)?;
    token.push('.');
    token.push_str(&b64(&signature));
    Ok(token)
}

/// Why a token was refused (the caller maps it to Cognito's message).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    BadSignature,
    Expired,
    WrongUse,
}

/// The claims of an unverified token, to find its pool before verifying.
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Verifies signature (RS256 with one of the pool's keys of the right purpose only: no
/// `alg: none`, no HMAC confusion), `token_use` and expiry. Returns the claims.
pub fn verify(keys: &PoolKeys, token: &str, purpose: &str, now_secs: i64) -> Result<Map<String, Value>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(Rejection::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(Rejection::BadSignature);
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or(Rejection::BadSignature)?;
    let (key_purpose, key) = keys.by_kid(kid).ok_or(Rejection::BadSignature)?;
    let signature_bytes = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Rejection::Malformed)?;
    let signed = &token[..header_len(token)];
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &key.public_der)
        .verify(signed.as_bytes(), &signature_bytes)
        .map_err(|_| Rejection::BadSignature)?;
    let claims: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(Rejection::Malformed)?;
    if key_purpose != purpose || claims.get("token_use").and_then(Value::as_str) != Some(purpose) {
        return Err(Rejection::WrongUse);
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(Rejection::Malformed)?;
    if exp <= now_secs {
        return Err(Rejection::Expired);
    }
    Ok(claims)
}

/// Length of `header.payload` (what the signature covers).
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

pub fn issuer(ctx: &Ctx, pool_id: &str) -> String {
    format!("{}/{pool_id}", ctx.settings().public_url)
}
