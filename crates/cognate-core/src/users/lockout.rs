//! Limits on guessing: every place that evaluates a secret a caller offers (a password, an
//! MFA or one-time code, a challenge answer) first reserves an attempt in the store, so the
//! limit holds for concurrent guesses and across nodes (the counter is one atomic upsert,
//! never a read-modify-write of the user).
//!
//! - Sign-in: five free attempts per user, then a lock that starts at one second and doubles
//!   up to 15 minutes (Cognito's documented behaviour). Passwords (every flow, ChangePassword)
//!   and MFA answers share it; it is cleared only when a sign-in completes or a password
//!   check is not followed by an MFA step, so knowing the password does not reset the MFA
//!   guesses. Unknown users of a pool that hides user existence get the same counter, keyed
//!   by the normalised login, so "Password attempts exceeded" tells nothing.
//! - A challenge Session takes three wrong answers; then it is dead.
//! - Sign-up and password-reset codes: five wrong guesses per user until a new code is
//!   issued, counted the same way for unknown users.

use cognate_api::ErrorCode;
use cognate_store::{Attempt, AttemptPolicy};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

const DAY_MS: i64 = 86_400_000;

pub const SIGN_IN: AttemptPolicy =
    AttemptPolicy { free: 5, first_lock_ms: 1_000, max_lock_ms: 15 * 60_000, retention_ms: DAY_MS };

/// A Session lives at most 15 minutes: once locked it stays locked for its whole life.
const SESSION_ANSWERS: AttemptPolicy =
    AttemptPolicy { free: 3, first_lock_ms: 15 * 60_000, max_lock_ms: 15 * 60_000, retention_ms: 15 * 60_000 };

/// Codes live at most 24 hours; a new code clears the counter.
const CODE_GUESSES: AttemptPolicy =
    AttemptPolicy { free: 5, first_lock_ms: DAY_MS, max_lock_ms: DAY_MS, retention_ms: DAY_MS };

fn sign_in_key(pool_id: &str, username_key: &str) -> String {
    format!("signin:{pool_id}:{username_key}")
}

fn code_key(pool_id: &str, username_key: &str, purpose: &str) -> String {
    format!("code:{purpose}:{pool_id}:{username_key}")
}

pub fn attempts_exceeded() -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, "Password attempts exceeded")
}

async fn reserve(ctx: &Ctx, key: String, policy: &'static AttemptPolicy) -> ApiResult<Attempt> {
    let now = ctx.now_ms();
    ctx.store(move |s| s.reserve_attempt(&key, policy, now)).await
}

async fn clear(ctx: &Ctx, key: String) -> ApiResult<()> {
    ctx.store(move |s| s.clear_attempts(&key)).await
}

/// Refuses while the user is locked out, without counting (the start of an SRP sign-in).
pub async fn refuse_if_locked(ctx: &Ctx, pool_id: &str, username_key: &str) -> ApiResult<()> {
    let (key, now) = (sign_in_key(pool_id, username_key), ctx.now_ms());
    match ctx.store(move |s| s.attempt_lock(&key, now)).await? {
        Some(_) => Err(attempts_exceeded()),
        None => Ok(()),
    }
}

/// Reserves one sign-in guess for the user (or the normalised unknown login) before the
/// guess is evaluated; refused while locked out.
pub async fn reserve_sign_in(ctx: &Ctx, pool_id: &str, username_key: &str) -> ApiResult<()> {
    match reserve(ctx, sign_in_key(pool_id, username_key), &SIGN_IN).await? {
        Attempt::Allowed(_) => Ok(()),
        Attempt::Locked(_) => Err(attempts_exceeded()),
    }
}

/// A sign-in went through: the user's failures are forgotten.
pub async fn sign_in_succeeded(ctx: &Ctx, pool_id: &str, username_key: &str) -> ApiResult<()> {
    clear(ctx, sign_in_key(pool_id, username_key)).await
}

/// Reserves one answer on a challenge Session (named by its nonce); a Session that has
/// taken its wrong answers is dead.
pub async fn reserve_session_answer(ctx: &Ctx, session_nonce: &str) -> ApiResult<()> {
    match reserve(ctx, format!("session:{session_nonce}"), &SESSION_ANSWERS).await? {
        Attempt::Allowed(_) => Ok(()),
        Attempt::Locked(_) => Err(ApiError::new(ErrorCode::NotAuthorizedException, "Invalid session for the user.")),
    }
}

/// Reserves one guess at a user's sign-up or reset code (real or not).
pub async fn reserve_code_guess(ctx: &Ctx, pool_id: &str, username_key: &str, purpose: &str) -> ApiResult<()> {
    match reserve(ctx, code_key(pool_id, username_key, purpose), &CODE_GUESSES).await? {
        Attempt::Allowed(_) => Ok(()),
        Attempt::Locked(_) => Err(crate::users::codes::rejection(&cognate_store::CodeCheck::TooManyAttempts)
            .unwrap_or_else(|| ApiError::internal("no answer for too many attempts"))),
    }
}

/// A new code was issued (or, for an unknown user, pretended to be): fresh guesses.
pub async fn clear_code_guesses(ctx: &Ctx, pool_id: &str, username_key: &str, purpose: &str) -> ApiResult<()> {
    clear(ctx, code_key(pool_id, username_key, purpose)).await
}
