//! Where SigV4 access keys come from. The protocol layer asks a [`CredentialSource`] for the
//! secret of the access key id a request names (with the session token it presents); what it
//! answers also says whom the key belongs to, and so which [`Principal`] makes the request.

use cognate_api::Sensitive;
use cognate_core::identity::credentials::{self, Refusal};
use cognate_core::Principal;
use cognate_crypto::envelope::Keyring;

use crate::config::Config;

/// A key a [`CredentialSource`] knows.
pub struct ResolvedKey {
    pub secret_access_key: Sensitive<String>,
    /// Whose key it is.
    pub owner: KeyOwner,
}

pub enum KeyOwner {
    /// A long-term key an operator configured: full access, like an IAM administrator.
    Operator,
    /// Temporary credentials issued to an identity (GetCredentialsForIdentity), valid only
    /// with the session token they were issued with, which the source has checked.
    Identity { identity_pool_id: String, identity_id: String },
}

impl ResolvedKey {
    pub fn principal(&self, access_key_id: &str) -> Principal {
        match &self.owner {
            KeyOwner::Operator => Principal::Iam { access_key_id: access_key_id.to_owned() },
            KeyOwner::Identity { identity_pool_id, identity_id } => Principal::Identity {
                access_key_id: access_key_id.to_owned(),
                identity_pool_id: identity_pool_id.clone(),
                identity_id: identity_id.clone(),
            },
        }
    }
}

/// Why a key was not resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Unknown key, or a temporary key without its own session token.
    Unknown,
    /// Temporary credentials past their expiry.
    Expired,
}

/// Resolves an access key id, given the request's `X-Amz-Security-Token`.
pub trait CredentialSource: Send + Sync {
    fn resolve(&self, access_key_id: &str, session_token: Option<&str>) -> Result<ResolvedKey, KeyRefusal>;
}

/// The keys a server accepts: the operators' from its configuration, and temporary keys
/// issued to identities, which any node verifies from the master key alone.
pub struct ServerCredentials<'a> {
    pub config: &'a Config,
    pub keyring: &'a Keyring,
    pub now_ms: i64,
}

impl CredentialSource for ServerCredentials<'_> {
    fn resolve(&self, access_key_id: &str, session_token: Option<&str>) -> Result<ResolvedKey, KeyRefusal> {
        if credentials::is_temporary_key(access_key_id) {
            return match credentials::resolve(self.keyring, self.now_ms, access_key_id, session_token) {
                Ok((secret, session)) => Ok(ResolvedKey {
                    secret_access_key: Sensitive(secret),
                    owner: KeyOwner::Identity {
                        identity_pool_id: session.identity_pool_id,
                        identity_id: session.identity_id,
                    },
                }),
                Err(Refusal::Expired) => Err(KeyRefusal::Expired),
                Err(Refusal::Invalid) => Err(KeyRefusal::Unknown),
            };
        }
        self.config
            .secret_for(access_key_id)
            .map(|secret| ResolvedKey { secret_access_key: Sensitive(secret), owner: KeyOwner::Operator })
            .ok_or(KeyRefusal::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_crypto::envelope::MasterKey;

    #[test]
    fn configured_keys_are_operators_and_temporary_keys_need_their_token() {
        let config = crate::config::ServeArgs::default().resolve().expect("config");
        let keyring = Keyring::new(MasterKey::generate().expect("key"), vec![]);
        let source = ServerCredentials { config: &config, keyring: &keyring, now_ms: 0 };
        let key = source.resolve(crate::config::DEFAULT_ACCESS_KEY, None).expect("default key");
        assert!(matches!(key.principal("test"), Principal::Iam { .. }));
        assert_eq!(source.resolve("AKIDUNKNOWN", None).err(), Some(KeyRefusal::Unknown));
        assert_eq!(source.resolve("ASIAAAAAAAAAAAAAAAAA", None).err(), Some(KeyRefusal::Unknown));
        assert_eq!(source.resolve("ASIAAAAAAAAAAAAAAAAA", Some("forged")).err(), Some(KeyRefusal::Unknown));
    }
}
