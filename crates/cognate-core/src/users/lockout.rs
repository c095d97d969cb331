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
    let probe = key.clone();
    match ctx.store(move |s| s.attempt_lock(&probe, now)).await? {
        Some(until) if !sibling_cleared(ctx, &key, until).await? => Err(attempts_exceeded()),
        _ => Ok(()),
    }
}

/// Reserves one sign-in guess for the user (or the normalised unknown login) before the
/// guess is evaluated; refused while locked out.
///
/// Concurrent sign-ins of one user each reserve an attempt before any is evaluated, so those
/// past the fifth meet a first lock that a sibling's success is about to clear. Such a call
/// waits a moment for the clear and then tries once more; a lock that is not cleared (guesses
/// that failed) still refuses, and only the calls that find the row gone are evaluated, so the
/// number of evaluations before a lock is unchanged.
pub async fn reserve_sign_in(ctx: &Ctx, pool_id: &str, username_key: &str) -> ApiResult<()> {
    let key = sign_in_key(pool_id, username_key);
    match reserve(ctx, key.clone(), &SIGN_IN).await? {
        Attempt::Allowed(_) => Ok(()),
        Attempt::Locked(until) if sibling_cleared(ctx, &key, until).await? => {
            match reserve(ctx, key, &SIGN_IN).await? {
                Attempt::Allowed(_) => Ok(()),
                Attempt::Locked(_) => Err(attempts_exceeded()),
            }
        }
        Attempt::Locked(_) => Err(attempts_exceeded()),
    }
}

/// Whether a first lock on `key` (until `until`) is cleared by a sibling's success within a
/// moment. Longer locks come from failures: waiting on them would only hold the call.
async fn sibling_cleared(ctx: &Ctx, key: &str, until: i64) -> ApiResult<bool> {
    // A first lock set by a sibling that started a little after this call ends a little later.
    if until - ctx.now_ms() > SIGN_IN.first_lock_ms + FIRST_LOCK_SLACK_MS {
        return Ok(false);
    }
    cleared_before(ctx, key, until).await
}

/// Siblings read their request time a little apart: a first lock set by one may end this much
/// later than one second after another's request time.
const FIRST_LOCK_SLACK_MS: i64 = 500;
/// How long a call waits for a sibling's success to clear a first lock, and how often it looks.
const CLEAR_WAIT: std::time::Duration = std::time::Duration::from_millis(300);
const CLEAR_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether `key`'s lock (until `until`) disappears before it would have expired: a success
/// cleared it. A lock that merely runs out does not count.
async fn cleared_before(ctx: &Ctx, key: &str, until: i64) -> ApiResult<bool> {
    let deadline = std::time::Instant::now() + CLEAR_WAIT;
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(CLEAR_POLL).await;
        let now = crate::context::millis(ctx.state.clock.now());
        if now >= until {
            return Ok(false);
        }
        let (probe, at) = (key.to_owned(), now);
        if ctx.store(move |s| s.attempt_lock(&probe, at)).await?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
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
