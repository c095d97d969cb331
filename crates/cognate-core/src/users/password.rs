//! Passwords: the pool's policy with Cognito's exact messages, generated temporary passwords,
//! and the stored form — the SRP verifier Cognito's protocol needs, sealed under the master
//! key. No plain or reversible password is kept anywhere.

use cognate_api::idp::{PasswordPolicyType, UserPoolType};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// Cognito's symbol set for RequireSymbols.
const SYMBOLS: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ";

fn policy(pool: &UserPoolType) -> PasswordPolicyType {
    pool.policies.as_ref().and_then(|p| p.password_policy.clone()).unwrap_or_default()
}

fn invalid(reason: &str) -> ApiError {
    ApiError::new(
        cognate_api::ErrorCode::InvalidPasswordException,
        format!("Password did not conform with policy: {reason}"),
    )
}

pub fn check_policy(pool: &UserPoolType, password: &str) -> ApiResult<()> {
    let p = policy(pool);
    let min = usize::try_from(p.minimum_length.unwrap_or(8)).unwrap_or(8);
    if password.chars().count() < min {
        return Err(invalid("Password not long enough"));
    }
    if password.chars().count() > 256 {
        return Err(invalid("Password must be shorter than 256 characters"));
    }
    if p.require_lowercase == Some(true) && !password.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(invalid("Password must have lowercase characters"));
    }
    if p.require_uppercase == Some(true) && !password.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid("Password must have uppercase characters"));
    }
    if p.require_numbers == Some(true) && !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(invalid("Password must have numeric characters"));
    }
    if p.require_symbols == Some(true) && !password.chars().any(|c| SYMBOLS.contains(c) && c != ' ') {
        return Err(invalid("Password must have symbol characters"));
    }
    Ok(())
}

/// A random temporary password that satisfies the pool's policy.
pub fn generate_temporary(pool: &UserPoolType) -> String {
    use cognate_crypto::ids::random_string;
    let min = usize::try_from(policy(pool).minimum_length.unwrap_or(8)).unwrap_or(8).max(12);
    // One of each class first, so every policy is met, then shuffle by random positions.
    let mut chars: Vec<char> = [
        random_string(b"abcdefghijkmnopqrstuvwxyz", 1),
        random_string(b"ABCDEFGHJKLMNPQRSTUVWXYZ", 1),
        random_string(b"23456789", 1),
        random_string(b"^$*.!@#%&", 1),
        random_string(b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min - 4),
    ]
    .concat()
    .chars()
    .collect();
    for i in (1..chars.len()).rev() {
        let [a, b] = cognate_crypto::ids::random_bytes::<2>();
        let j = (usize::from(u16::from_be_bytes([a, b]))) % (i + 1);
        chars.swap(i, j);
    }
    chars.into_iter().collect()
}

/// The stored password: SRP salt and verifier (hex), sealed as a whole.
#[derive(Serialize, Deserialize)]
pub struct StoredVerifier {
    pub salt: String,
    pub verifier: String,
}

/// Computes the verifier (a 3072-bit modular exponentiation, off the async runtime) and
/// seals it. `username` is the internal username the client will use as USER_ID_FOR_SRP.
pub async fn seal_password(ctx: &Ctx, pool_id: &str, sub: &str, username: &str, password: &str) -> ApiResult<String> {
    let pool_name = cognate_crypto::srp::pool_name(pool_id).to_owned();
    let (username, password) = (username.to_owned(), password.to_owned());
    let stored = tokio::task::spawn_blocking(move || {
        let salt = cognate_crypto::srp::new_salt();
        let verifier = cognate_crypto::srp::compute_verifier(&pool_name, &username, &password, &salt);
        StoredVerifier { salt: hex::encode(salt), verifier: hex::encode(verifier) }
    })
    .await
    .map_err(ApiError::internal)?;
    let json = serde_json::to_vec(&stored).map_err(ApiError::internal)?;
    crate::sealed::seal_bytes(ctx, crate::sealed::Purpose::Password { pool_id, sub }, &json)
}

pub fn open_password(ctx: &Ctx, pool_id: &str, sub: &str, sealed: &str) -> ApiResult<StoredVerifier> {
    let json = crate::sealed::open_bytes(ctx, crate::sealed::Purpose::Password { pool_id, sub }, sealed)?;
    serde_json::from_slice(&json).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_api::idp::UserPoolPolicyType;

    fn pool(p: PasswordPolicyType) -> UserPoolType {
        UserPoolType {
            policies: Some(UserPoolPolicyType { password_policy: Some(p), sign_in_policy: None }),
            ..Default::default()
        }
    }

    fn strict() -> UserPoolType {
        pool(PasswordPolicyType {
            minimum_length: Some(8),
            require_lowercase: Some(true),
            require_uppercase: Some(true),
            require_numbers: Some(true),
            require_symbols: Some(true),
            ..Default::default()
        })
    }

    fn message(pool: &UserPoolType, password: &str) -> String {
        check_policy(pool, password).err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn messages_are_cognitos() {
        let p = strict();
        assert_eq!(message(&p, "Ab1!"), "Password did not conform with policy: Password not long enough");
        assert_eq!(
            message(&p, "password1!"),
            "Password did not conform with policy: Password must have uppercase characters"
        );
        assert_eq!(
            message(&p, "PASSWORD1!"),
            "Password did not conform with policy: Password must have lowercase characters"
        );
        assert_eq!(
            message(&p, "Password!!"),
            "Password did not conform with policy: Password must have numeric characters"
        );
        assert_eq!(
            message(&p, "Password11"),
            "Password did not conform with policy: Password must have symbol characters"
        );
        assert!(check_policy(&p, "Password1!").is_ok());
    }

    #[test]
    fn generated_passwords_satisfy_the_strict_policy() {
        let p = strict();
        for _ in 0..200 {
            let generated = generate_temporary(&p);
            assert!(check_policy(&p, &generated).is_ok(), "{generated}");
        }
    }
}
