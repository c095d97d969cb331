//! State that travels with the client instead of living on a node: challenge sessions, SRP
//! secret blocks and refresh tokens, sealed (AES-256-GCM, bound to their purpose) under the
//! master key. Any node can open them; nobody else can read or forge them.

use serde::{de::DeserializeOwned, Serialize};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// Everything Cognate seals under the master key, each with the context (AES-GCM associated
/// data) it is sealed under, so that a value sealed for one purpose never opens as another:
/// a refresh token is not a challenge session, one user's TOTP secret is not another's. The
/// contexts are stored with the data, so they never change; a test checks that no two
/// purposes can render the same context.
#[derive(Clone, Copy, Debug)]
pub enum Purpose<'a> {
    /// The SRP SECRET_BLOCK handed to the client in PASSWORD_VERIFIER.
    SrpSecretBlock,
    /// The Session of a challenge (RespondToAuthChallenge).
    ChallengeSession,
    /// A refresh token.
    RefreshToken,
    /// A user's password verifier at rest.
    Password { pool_id: &'a str, sub: &'a str },
    /// A user's TOTP secret at rest.
    TotpSecret { pool_id: &'a str, sub: &'a str },
    /// An app client's secret at rest.
    ClientSecret { pool_id: &'a str, client_id: &'a str },
    /// A remembered device's SRP verifier at rest.
    DeviceVerifier { pool_id: &'a str, device_key: &'a str },
    /// A pool's RSA signing key at rest.
    SigningKey { pool_id: &'a str, kid: &'a str },
    /// One field (code, subject, body) of an outbox message.
    Outbox { field: &'a str, pool_id: &'a str, username: &'a str },
    /// The session token of an identity's temporary AWS credentials.
    SessionToken,
    /// An identity pool's RSA key for OpenID tokens, at rest (the kid first: an identity
    /// pool id has a `:` of its own).
    OpenIdKey { identity_pool_id: &'a str, kid: &'a str },
    /// A Cognito Sync SyncSessionToken (ListRecords to UpdateRecords).
    SyncSession,
    /// An OAuth 2.0 authorization code (hosted sign-in to the token endpoint).
    AuthorizationCode,
    /// The hosted pages' sign-in session cookie.
    HostedSession,
    /// An identity provider's client secret at rest (`provider` is `{pool}/{name}`).
    IdpSecret { provider: &'a str },
    /// The `state` a sign-in at an identity provider carries there and back.
    FederationState,
    /// The Session of a CUSTOM_CHALLENGE (its history and private parameters).
    CustomChallengeSession,
}

impl Purpose<'_> {
    /// The sealing context. Each variant starts with its own tag and no tag is a prefix of
    /// another; the ids in a context contain no `:` except its last one (a username, an
    /// identity pool id).
    pub fn context(&self) -> String {
        match *self {
            Purpose::SrpSecretBlock => "srp-secret-block-v1".to_owned(),
            Purpose::ChallengeSession => "challenge-session-v1".to_owned(),
            Purpose::RefreshToken => "refresh-token-v1".to_owned(),
            Purpose::Password { pool_id, sub } => format!("password:{pool_id}:{sub}"),
            Purpose::TotpSecret { pool_id, sub } => format!("totp:{pool_id}:{sub}"),
            Purpose::ClientSecret { pool_id, client_id } => format!("client-secret:{pool_id}:{client_id}"),
            Purpose::DeviceVerifier { pool_id, device_key } => format!("device-verifier:{pool_id}:{device_key}"),
            Purpose::SigningKey { pool_id, kid } => format!("signing-key:{pool_id}:{kid}"),
            Purpose::Outbox { field, pool_id, username } => format!("outbox:{field}:{pool_id}:{username}"),
            Purpose::SessionToken => "session-token-v1".to_owned(),
            Purpose::OpenIdKey { identity_pool_id, kid } => format!("openid-key:{kid}:{identity_pool_id}"),
            Purpose::SyncSession => "sync-session-v1".to_owned(),
            Purpose::AuthorizationCode => "authorization-code-v1".to_owned(),
            Purpose::HostedSession => "hosted-session-v1".to_owned(),
            Purpose::IdpSecret { provider } => format!("idp-secret:{provider}"),
            Purpose::FederationState => "federation-state-v1".to_owned(),
            Purpose::CustomChallengeSession => "custom-challenge-session-v1".to_owned(),
        }
    }
}

/// Seals bytes for `purpose`.
pub fn seal_bytes(ctx: &Ctx, purpose: Purpose<'_>, plaintext: &[u8]) -> ApiResult<String> {
    ctx.state.keyring.seal(plaintext, &purpose.context()).map_err(ApiError::internal)
}

/// Opens what [`seal_bytes`] sealed for the same `purpose`; anything else is an internal
/// error (stored data that does not open means a wrong master key or tampering).
pub fn open_bytes(ctx: &Ctx, purpose: Purpose<'_>, sealed: &str) -> ApiResult<Vec<u8>> {
    ctx.state.keyring.open(sealed, &purpose.context()).map_err(ApiError::internal)
}

pub fn seal<T: Serialize>(ctx: &Ctx, purpose: Purpose<'_>, value: &T) -> ApiResult<String> {
    let json = serde_json::to_vec(value).map_err(ApiError::internal)?;
    seal_bytes(ctx, purpose, &json)
}

/// `None` for anything that does not open under `purpose` (forged, altered, other purpose).
pub fn open<T: DeserializeOwned>(ctx: &Ctx, purpose: Purpose<'_>, sealed: &str) -> Option<T> {
    let json = ctx.state.keyring.open(sealed, &purpose.context()).ok()?;
    serde_json::from_slice(&json).ok()
}

/// A random single-use identifier.
pub fn nonce() -> String {
    hex::encode(cognate_crypto::ids::random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::Purpose;

    fn every_purpose<'a>(a: &'a str, b: &'a str) -> Vec<Purpose<'a>> {
        vec![
            Purpose::SrpSecretBlock,
            Purpose::ChallengeSession,
            Purpose::RefreshToken,
            Purpose::Password { pool_id: a, sub: b },
            Purpose::TotpSecret { pool_id: a, sub: b },
            Purpose::ClientSecret { pool_id: a, client_id: b },
            Purpose::DeviceVerifier { pool_id: a, device_key: b },
            Purpose::SigningKey { pool_id: a, kid: b },
            Purpose::Outbox { field: "code", pool_id: a, username: b },
            Purpose::SessionToken,
            Purpose::OpenIdKey { identity_pool_id: a, kid: b },
            Purpose::SyncSession,
            Purpose::AuthorizationCode,
            Purpose::HostedSession,
            Purpose::IdpSecret { provider: b },
            Purpose::FederationState,
        ]
    }

    /// The tag before the first `:` (or the whole context) names the purpose: distinct tags
    /// mean that no two purposes render the same context, whatever the ids.
    #[test]
    fn no_two_purposes_render_the_same_context() {
        let tag = |p: &Purpose| p.context().split(':').next().map(str::to_owned).unwrap_or_default();
        let tags: Vec<String> = every_purpose("p", "x").iter().map(tag).collect();
        let mut unique = tags.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), tags.len(), "{tags:?}");
        // Ids that look like other purposes' contexts do not change the tag.
        let adversarial: Vec<String> = every_purpose("totp", "password:p:x").iter().map(tag).collect();
        assert_eq!(adversarial, tags);
    }

    /// Contexts are stored with sealed data: changing one makes existing data unreadable.
    #[test]
    fn contexts_are_stable() {
        let rendered: Vec<String> = every_purpose("us-east-1_P", "s").iter().map(Purpose::context).collect();
        assert_eq!(
            rendered,
            [
                "srp-secret-block-v1",
                "challenge-session-v1",
                "refresh-token-v1",
                "password:us-east-1_P:s",
                "totp:us-east-1_P:s",
                "client-secret:us-east-1_P:s",
                "device-verifier:us-east-1_P:s",
                "signing-key:us-east-1_P:s",
                "outbox:code:us-east-1_P:s",
                "session-token-v1",
                "openid-key:s:us-east-1_P",
                "sync-session-v1",
                "authorization-code-v1",
                "hosted-session-v1",
                "idp-secret:s",
                "federation-state-v1",
            ]
        );
    }
}
