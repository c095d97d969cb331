//! A login whose token verified, whichever provider issued it.

use cognate_store::IdentityLogin;
use serde_json::{Map, Value};

/// A login whose token verified.
#[derive(Clone, Debug)]
pub struct VerifiedLogin {
    pub login: IdentityLogin,
    /// The key role mappings use for it (`<provider>:<client id>` for user pools).
    pub mapping_key: String,
    /// The token's claims, for role rules.
    pub claims: Map<String, Value>,
}
