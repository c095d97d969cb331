//! Remembered devices as sign-in sees them: a new device registered by a sign-in, whether a
//! device may stand in for MFA, and its SRP verifier.

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::sealed::{self, Purpose};
use crate::users::{Device, User};

/// amazon-cognito-identity-js drops its cached device key only when this message contains
/// "device", so the word must be there.
pub fn device_not_found() -> ApiError {
    ApiError::not_found("Device does not exist.")
}

/// A new device of a user of `pool_id`; its key carries the pool's region, as Cognito's do.
pub fn new_device(ctx: &Ctx, pool_id: &str) -> Device {
    let group =
        cognate_crypto::ids::random_string(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 9);
    Device {
        key: format!(
            "{}_{}",
            crate::region::of_user_pool(pool_id).unwrap_or(&ctx.region),
            cognate_crypto::ids::uuid_v4()
        ),
        group_key: format!("-{group}"),
        name: None,
        secret: None,
        remembered: None,
        created_ms: ctx.now_ms(),
        modified_ms: ctx.now_ms(),
        last_auth_ms: ctx.now_ms(),
    }
}

/// A confirmed device that may stand in for MFA: remembered, or the pool remembers every
/// confirmed device (DeviceOnlyRememberedOnUserPrompt off).
pub fn is_remembered(call: &ClientCall, user: &User, key: &str) -> bool {
    let Some(config) = &call.pool.pool.device_configuration else { return false };
    let Some(device) = user.doc.device(key) else { return false };
    device.secret.is_some()
        && match device.remembered {
            Some(remembered) => remembered,
            None => config.device_only_remembered_on_user_prompt != Some(true),
        }
}

/// The device's SRP verifier and salt (both as the client computed them).
pub fn device_verifier(ctx: &Ctx, pool_id: &str, user: &User, key: &str) -> ApiResult<(Vec<u8>, Vec<u8>)> {
    let device = user.doc.device(key).ok_or_else(device_not_found)?;
    let sealed_secret = device.secret.as_ref().ok_or_else(device_not_found)?;
    let json = sealed::open_bytes(ctx, Purpose::DeviceVerifier { pool_id, device_key: key }, sealed_secret)?;
    let (verifier, salt): (String, String) = serde_json::from_slice(&json).map_err(ApiError::internal)?;
    Ok((hex::decode(verifier).map_err(ApiError::internal)?, hex::decode(salt).map_err(ApiError::internal)?))
}
