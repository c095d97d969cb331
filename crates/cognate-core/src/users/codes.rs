//! One-time codes: six digits from the CSPRNG, stored only as a keyed hash, single use,
//! expiring, attempt-limited. The store checks and consumes them atomically.

use cognate_crypto::envelope::DerivedKey;
use cognate_store::{CodeCheck, CodeRecord, UsernameKey};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

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

/// Label of the key code hashes are made with, derived from the master key.
const CODE_HASH_KEY_LABEL: &str = "one-time-code-hash";

/// The stored form: HMAC-SHA256 under a key derived from the master key, bound to pool, user
/// and purpose so a hash is useless anywhere else. A code has only a million values, so an
/// unkeyed hash read from a database leak would give the live code at once; without the
/// master key (which is not in the database) the HMAC gives nothing. The key follows the
/// active master key: codes issued before a rotation stop verifying (they live at most 24 h).
pub fn code_hash(ctx: &Ctx, pool_id: &str, username_key: &str, purpose: &str, code: &str) -> String {
    keyed_code_hash(&ctx.state.keyring.derive_key(CODE_HASH_KEY_LABEL), pool_id, username_key, purpose, code)
}

fn keyed_code_hash(key: &DerivedKey, pool_id: &str, username_key: &str, purpose: &str, code: &str) -> String {
    let mut input = Vec::with_capacity(96);
    // v2: keyed (v1 was plain SHA-256 of the same parts; v1 hashes never match a v2 one).
    for part in ["cognate-code-v2", pool_id, username_key, purpose, code.trim()] {
        input.extend_from_slice(part.as_bytes());
        input.push(0);
    }
    hex::encode(key.hmac_sha256(&input))
}

/// Makes `code` (from [`new_code`]) the user's code for `purpose`, replacing any earlier one:
/// for a code whose message is composed before it may replace the one the user has.
pub async fn store(ctx: &Ctx, pool_id: &str, username_key: &UsernameKey, purpose: &str, code: &str) -> ApiResult<()> {
    let record = CodeRecord {
        pool_id: pool_id.to_owned(),
        username_key: username_key.clone(),
        purpose: purpose.to_owned(),
        code_hash: code_hash(ctx, pool_id, username_key, purpose, code),
        expires_ms: ctx.now_ms() + lifetime_ms(purpose),
        attempts_left: ATTEMPTS,
        created_ms: ctx.now_ms(),
    };
    ctx.store(move |s| s.put_code(&record)).await
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

    use cognate_crypto::envelope::{Keyring, MasterKey};

    fn key(byte: u8) -> DerivedKey {
        let ring = Keyring::new(MasterKey::from_bytes(&[byte; 32]).expect("key"), vec![]);
        ring.derive_key(CODE_HASH_KEY_LABEL)
    }

    /// SHA-256 over the parts, NUL-terminated: the unkeyed form anyone can recompute.
    fn plain_sha256(parts: &[&str]) -> String {
        let mut input = Vec::new();
        for part in parts {
            input.extend_from_slice(part.as_bytes());
            input.push(0);
        }
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input))
    }

    #[test]
    fn codes_are_six_digits_and_hashes_are_bound() {
        let code = new_code();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let k = key(1);
        let h = keyed_code_hash(&k, "p", "u", SIGN_UP, &code);
        assert_eq!(h.len(), 64);
        assert_ne!(h, keyed_code_hash(&k, "p", "u", RESET_PASSWORD, &code));
        assert_ne!(h, keyed_code_hash(&k, "p", "v", SIGN_UP, &code));
        assert_ne!(h, keyed_code_hash(&k, "q", "u", SIGN_UP, &code));
        assert_eq!(h, keyed_code_hash(&k, "p", "u", SIGN_UP, &format!(" {code} ")));
        assert_eq!(h, keyed_code_hash(&key(1), "p", "u", SIGN_UP, &code), "stable for one master key");
    }

    /// A database leak must not give live codes: the stored hash is not the plain SHA-256 of
    /// the formula (which an attacker could invert by trying a million codes), and without
    /// the master key it cannot be recomputed.
    #[test]
    fn stored_hashes_need_the_master_key() {
        let code = "123456";
        let h = keyed_code_hash(&key(1), "p", "u", SIGN_UP, code);
        for version in ["cognate-code-v1", "cognate-code-v2"] {
            assert_ne!(h, plain_sha256(&[version, "p", "u", SIGN_UP, code]), "{version}");
        }
        assert_ne!(h, keyed_code_hash(&key(2), "p", "u", SIGN_UP, code), "another master key gives another hash");
    }
}
