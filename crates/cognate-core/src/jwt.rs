//! Compact JWS tokens signed with RS256: a pool's two keys (ID and access), signing,
//! verification, and the per-node cache of parsed keys. Loading and creating the keys is
//! [`crate::tokens`]; this file knows nothing of the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};

pub const ID: &str = "id";
pub const ACCESS: &str = "access";

pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
    public_der: Vec<u8>,
}

impl SigningKey {
    pub fn new(kid: String, pair: KeyPair) -> Self {
        let public_der = pair.public_key().as_ref().to_vec();
        SigningKey { kid, pair, public_der }
    }
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

impl KeyCache {
    /// The keys cached for a pool (by id and creation time).
    pub fn get(&self, pool: &(String, i64)) -> Option<Arc<PoolKeys>> {
        self.pools.lock().ok().and_then(|map| map.get(pool).cloned())
    }

    pub fn insert(&self, pool: (String, i64), keys: Arc<PoolKeys>) {
        if let Ok(mut map) = self.pools.lock() {
            map.insert(pool, keys);
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
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
    let (key_purpose, claims) = signed_claims(keys, token)?;
    if key_purpose != purpose || claims.get("token_use").and_then(Value::as_str) != Some(purpose) {
        return Err(Rejection::WrongUse);
    }
    unexpired(claims, now_secs)
}

/// Like [`verify`], for tokens that carry no `token_use` (an identity's OpenID tokens, whose
/// pool has one key): signature and expiry.
pub fn verify_any_use(keys: &PoolKeys, token: &str, now_secs: i64) -> Result<Map<String, Value>, Rejection> {
    let (_, claims) = signed_claims(keys, token)?;
    unexpired(claims, now_secs)
}

fn unexpired(claims: Map<String, Value>, now_secs: i64) -> Result<Map<String, Value>, Rejection> {
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(Rejection::Malformed)?;
    if exp <= now_secs {
        return Err(Rejection::Expired);
    }
    Ok(claims)
}

/// The claims of a token whose RS256 signature one of `keys` made, with that key's purpose.
fn signed_claims(keys: &PoolKeys, token: &str) -> Result<(&'static str, Map<String, Value>), Rejection> {
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
    Ok((key_purpose, claims))
}

/// Length of `header.payload` (what the signature covers).
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}
