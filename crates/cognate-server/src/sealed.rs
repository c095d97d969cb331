//! State that travels with the client instead of living on a node: challenge sessions, SRP
//! secret blocks and refresh tokens, sealed (AES-256-GCM, bound to their purpose) under the
//! master key. Any node can open them; nobody else can read or forge them.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;

pub fn seal<T: Serialize>(ctx: &Ctx, purpose: &str, value: &T) -> ApiResult<String> {
    let json = serde_json::to_vec(value).map_err(ApiError::internal)?;
    ctx.state.keyring.seal(&json, purpose).map_err(ApiError::internal)
}

/// `None` for anything that does not open under `purpose` (forged, altered, other purpose).
pub fn open<T: DeserializeOwned>(ctx: &Ctx, purpose: &str, sealed: &str) -> Option<T> {
    let json = ctx.state.keyring.open(sealed, purpose).ok()?;
    serde_json::from_slice(&json).ok()
}

/// A random single-use identifier.
pub fn nonce() -> String {
    hex::encode(cognate_crypto::ids::random_bytes::<16>())
}
