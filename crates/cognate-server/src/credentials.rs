//! Where SigV4 access keys come from. The protocol layer asks a [`CredentialSource`] for the
//! secret of the access key id a request names; what it answers also says whom the key
//! belongs to, and so which [`Principal`] the request is made by.

use cognate_api::Sensitive;

use crate::config::Config;
use cognate_core::context::Principal;

/// A key a [`CredentialSource`] knows.
pub struct ResolvedKey {
    pub secret_access_key: Sensitive<String>,
    /// Whose key it is.
    pub owner: KeyOwner,
}

pub enum KeyOwner {
    /// A long-term key an operator configured: full access, like an IAM administrator.
    Operator,
    /// Temporary credentials issued to an identity; a request signed with them must carry
    /// the matching `X-Amz-Security-Token`.
    #[expect(dead_code, reason = "issued by GetCredentialsForIdentity, which the identity-pool store adds (issue 11)")]
    Identity { session_token: Sensitive<String>, identity_pool_id: String, identity_id: String },
}

impl ResolvedKey {
    pub fn principal(&self, access_key_id: &str) -> Principal {
        match &self.owner {
            KeyOwner::Operator => Principal::Iam { access_key_id: access_key_id.to_owned() },
            KeyOwner::Identity { identity_pool_id, identity_id, .. } => Principal::Identity {
                access_key_id: access_key_id.to_owned(),
                identity_pool_id: identity_pool_id.clone(),
                identity_id: identity_id.clone(),
            },
        }
    }

    /// The session token a request signed with this key must present (None: none allowed).
    pub fn session_token(&self) -> Option<&str> {
        match &self.owner {
            KeyOwner::Operator => None,
            KeyOwner::Identity { session_token, .. } => Some(session_token.expose().as_str()),
        }
    }
}

/// Resolves an access key id. Implementations: the configured keys ([`Config`]); the
/// store's temporary credentials follow with identity pools.
pub trait CredentialSource: Send + Sync {
    fn resolve(&self, access_key_id: &str) -> Option<ResolvedKey>;
}

impl CredentialSource for Config {
    fn resolve(&self, access_key_id: &str) -> Option<ResolvedKey> {
        self.secret_for(access_key_id)
            .map(|secret| ResolvedKey { secret_access_key: Sensitive(secret), owner: KeyOwner::Operator })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_keys_are_operators() {
        let config = crate::config::ServeArgs::default().resolve().expect("config");
        let key = config.resolve(crate::config::DEFAULT_ACCESS_KEY).expect("default key");
        assert!(matches!(key.principal("test"), Principal::Iam { .. }));
        assert_eq!(key.session_token(), None);
        assert!(config.resolve("AKIDUNKNOWN").is_none());
    }
}
