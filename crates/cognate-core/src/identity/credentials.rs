//! Temporary AWS credentials for an identity (GetCredentialsForIdentity), which Cognate itself
//! accepts on SigV4-signed calls (Cognito Sync).
//!
//! Nothing is stored per credential, so any node verifies what another issued: the session
//! token is the credential's claims (access key id, identity, role, expiry) sealed under the
//! master key, and the secret key is a keyed hash of the access key id under a key derived
//! from the master key. A request signed with the key must present its session token; the
//! token names the key it was issued with, so neither works without the other.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cognate_crypto::envelope::Keyring;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::ApiResult;
use crate::sealed::Purpose;

/// How long credentials last: an STS session's default, as Cognito issues them.
pub const LIFETIME: Duration = Duration::from_secs(3600);

/// Names the key the secret keys are derived under.
const SECRET_KEY_LABEL: &str = "temporary-credentials-v1";

/// What a session token carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_key_id: String,
    pub identity_pool_id: String,
    pub identity_id: String,
    pub role_arn: String,
    pub expires_ms: i64,
}

/// Credentials as GetCredentialsForIdentity returns them.
pub struct Issued {
    pub access_key_id: String,
    pub secret_key: String,
    pub session_token: String,
    pub expires_ms: i64,
}

/// Temporary access key ids start with ASIA, as STS's do, then 16 characters of base32.
pub fn is_temporary_key(access_key_id: &str) -> bool {
    access_key_id.len() == 20 && access_key_id.starts_with("ASIA")
}

fn secret_for(keyring: &Keyring, access_key_id: &str) -> String {
    let mac = keyring.derive_key(SECRET_KEY_LABEL).hmac_sha256(access_key_id.as_bytes());
    // 40 characters, like an AWS secret access key.
    STANDARD.encode(&mac[..30])
}

/// Issues credentials for `role_arn` to an identity, for an hour.
pub fn issue(ctx: &Ctx, identity_pool_id: &str, identity_id: &str, role_arn: &str) -> ApiResult<Issued> {
    issue_for(ctx, identity_pool_id, identity_id, role_arn, LIFETIME)
}

/// Issues credentials that last `lifetime`.
pub fn issue_for(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    role_arn: &str,
    lifetime: Duration,
) -> ApiResult<Issued> {
    let suffix = cognate_crypto::ids::random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
    let access_key_id = format!("ASIA{suffix}");
    let expires_ms = ctx.now_ms() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let session = Session {
        access_key_id: access_key_id.clone(),
        identity_pool_id: identity_pool_id.to_owned(),
        identity_id: identity_id.to_owned(),
        role_arn: role_arn.to_owned(),
        expires_ms,
    };
    let session_token = crate::sealed::seal(ctx, Purpose::SessionToken, &session)?;
    Ok(Issued { secret_key: secret_for(&ctx.state.keyring, &access_key_id), access_key_id, session_token, expires_ms })
}

/// Why a temporary key was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No session token, one that does not open, or one issued with another key.
    Invalid,
    /// The credentials' hour is over.
    Expired,
}

/// The secret of a temporary key and the session it belongs to, if `session_token` is the
/// one it was issued with and has not expired.
pub fn resolve(
    keyring: &Keyring,
    now_ms: i64,
    access_key_id: &str,
    session_token: Option<&str>,
) -> Result<(String, Session), Refusal> {
    let token = session_token.ok_or(Refusal::Invalid)?;
    let bytes = keyring.open(token, &Purpose::SessionToken.context()).map_err(|_| Refusal::Invalid)?;
    let session: Session = serde_json::from_slice(&bytes).map_err(|_| Refusal::Invalid)?;
    if !cognate_crypto::ct::eq(session.access_key_id.as_bytes(), access_key_id.as_bytes()) {
        return Err(Refusal::Invalid);
    }
    if session.expires_ms <= now_ms {
        return Err(Refusal::Expired);
    }
    Ok((secret_for(keyring, access_key_id), session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_crypto::envelope::MasterKey;

    fn ring() -> Keyring {
        Keyring::new(MasterKey::generate().expect("key"), vec![])
    }

    fn sealed(keyring: &Keyring, session: &Session) -> String {
        keyring.seal(&serde_json::to_vec(session).expect("json"), &Purpose::SessionToken.context()).expect("seal")
    }

    fn session(expires_ms: i64) -> Session {
        Session {
            access_key_id: "ASIAABCDEFGHIJKLMNOP".into(),
            identity_pool_id: "us-east-1:0c0ffee0-0000-4000-8000-000000000001".into(),
            identity_id: "us-east-1:0c0ffee0-0000-4000-8000-00000000000a".into(),
            role_arn: "arn:aws:iam::000000000000:role/authenticated".into(),
            expires_ms,
        }
    }

    #[test]
    fn a_key_resolves_only_with_its_own_unexpired_session_token() {
        let keyring = ring();
        let token = sealed(&keyring, &session(2_000));
        let (secret, opened) = resolve(&keyring, 1_000, "ASIAABCDEFGHIJKLMNOP", Some(&token)).expect("resolves");
        assert_eq!((secret.len(), opened), (40, session(2_000)));
        assert_eq!(resolve(&keyring, 2_000, "ASIAABCDEFGHIJKLMNOP", Some(&token)), Err(Refusal::Expired));
        assert_eq!(resolve(&keyring, 1_000, "ASIAQQQQQQQQQQQQQQQQ", Some(&token)), Err(Refusal::Invalid));
        assert_eq!(resolve(&keyring, 1_000, "ASIAABCDEFGHIJKLMNOP", None), Err(Refusal::Invalid));
        assert_eq!(resolve(&ring(), 1_000, "ASIAABCDEFGHIJKLMNOP", Some(&token)), Err(Refusal::Invalid));
        let mut altered = token.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("utf8");
        assert_eq!(resolve(&keyring, 1_000, "ASIAABCDEFGHIJKLMNOP", Some(&altered)), Err(Refusal::Invalid));
    }

    #[test]
    fn secrets_differ_by_key_and_master_key() {
        let keyring = ring();
        assert_ne!(secret_for(&keyring, "ASIAAAAAAAAAAAAAAAAA"), secret_for(&keyring, "ASIABBBBBBBBBBBBBBBB"));
        assert_ne!(secret_for(&keyring, "ASIAAAAAAAAAAAAAAAAA"), secret_for(&ring(), "ASIAAAAAAAAAAAAAAAAA"));
        assert!(is_temporary_key("ASIAAAAAAAAAAAAAAAAA") && !is_temporary_key("test"));
    }
}
