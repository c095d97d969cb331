//! One-time codes: six digits from the CSPRNG, stored only as a hash, single use, expiring,
//! attempt-limited. The store checks and consumes them atomically.

use cognate_store::{CodeCheck, CodeRecord};

use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;

pub const SIGN_UP: &str = "signup";
pub const RESET_PASSWORD: &str = "reset";
/// Wrong guesses allowed per code before it stops working.
const ATTEMPTS: i64 = 5;

pub fn verify_purpose(attribute: &str) -> String {
    format!("verify:{attribute}")
}

/// Sign-up and attribute codes live 24 hours; password-reset codes one hour (Cognito's values).
fn lifetime_ms(purpose: &str) -> i64 {
    if purpose == RESET_PASSWORD {
        3_600_000
    } else {
        86_400_000
    }
}

pub fn new_code() -> String {
    cognate_crypto::ids::random_string(b"0123456789", 6)
}

/// The stored form. Bound to pool, user and purpose so a hash is useless anywhere else.
pub fn code_hash(pool_id: &str, username_key: &str, purpose: &str, code: &str) -> String {
    let mut input = Vec::with_capacity(96);
    for part in ["cognate-code-v1", pool_id, username_key, purpose, code.trim()] {
        input.extend_from_slice(part.as_bytes());
        input.push(0);
    }
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input))
}

/// Issues a fresh code for `purpose`, replacing any earlier one; returns the plain code for
/// delivery.
pub async fn issue(ctx: &Ctx, pool_id: &str, username_key: &str, purpose: &str) -> ApiResult<String> {
    let code = new_code();
    let record = CodeRecord {
        pool_id: pool_id.to_owned(),
        username_key: username_key.to_owned(),
        purpose: purpose.to_owned(),
        code_hash: code_hash(pool_id, username_key, purpose, &code),
        expires_ms: ctx.now_ms() + lifetime_ms(purpose),
        attempts_left: ATTEMPTS,
        created_ms: ctx.now_ms(),
    };
    ctx.store(move |s| s.put_code(&record)).await?;
    Ok(code)
}

/// Cognito's answer for each outcome of a code check other than acceptance.
pub fn rejection(check: &CodeCheck) -> Option<ApiError> {
    use cognate_api::ErrorCode::*;
    match check {
        CodeCheck::Accepted => None,
        CodeCheck::Mismatch { .. } => {
            Some(ApiError::new(CodeMismatchException, "Invalid verification code provided, please try again."))
        }
        CodeCheck::Expired | CodeCheck::Missing => {
            Some(ApiError::new(ExpiredCodeException, "Invalid code provided, please request a code again."))
        }
        CodeCheck::TooManyAttempts => {
            Some(ApiError::new(LimitExceededException, "Attempt limit exceeded, please try after some time."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_hashes_are_bound() {
        let code = new_code();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let h = code_hash("p", "u", SIGN_UP, &code);
        assert_ne!(h, code_hash("p", "u", RESET_PASSWORD, &code));
        assert_ne!(h, code_hash("p", "v", SIGN_UP, &code));
        assert_eq!(h, code_hash("p", "u", SIGN_UP, &format!(" {code} ")));
    }
}
