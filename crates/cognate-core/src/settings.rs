//! The settings the domain reads. The server's configuration (`cognate serve`'s flags,
//! `COGNATE_*` variables and TOML keys) is declared once there and hands these over.

use cognate_api::Sensitive;
use serde::Deserialize;

#[derive(Clone, Debug)]
pub struct Settings {
    /// The region of unsigned calls and of Cognate's own work (seeding, export, import jobs).
    pub region: String,
    /// AWS account id reported in ARNs.
    pub account_id: String,
    /// Public base URL: token issuers and pre-signed URLs start with it.
    pub public_url: String,
    /// Email delivery; without it email goes only to the outbox.
    pub smtp: Option<SmtpConfig>,
    /// How long outbox messages are kept (they hold live codes and temporary passwords).
    pub outbox_retention_seconds: u64,
    /// Most outbox messages kept per pool; the oldest go first.
    pub outbox_max_per_pool: u64,
    pub rate_limits: RateLimitConfig,
    /// How long a node's claim on a running import job lasts unless renewed.
    pub import_lease_seconds: u64,
    /// Identity providers outside Cognate whose tokens identity pools accept as logins.
    pub login_providers: Vec<LoginProviderConfig>,
    /// An STS that issues identities' credentials (AssumeRoleWithWebIdentity with their
    /// OpenID tokens) instead of Cognate.
    pub sts_endpoint: Option<String>,
    /// SNS's API, to which Cognito Sync's pushes go (besides the outbox).
    pub sns_endpoint: Option<String>,
    /// Kinesis's API, to which Cognito Streams puts dataset changes.
    pub kinesis_endpoint: Option<String>,
    /// Lambda's Invoke API, where the pools' trigger functions run.
    pub lambda_endpoint: Option<String>,
    /// Trigger functions served as plain HTTP endpoints (webhooks), by function ARN or name;
    /// these win over `lambda_endpoint`.
    pub lambda_functions: std::collections::BTreeMap<String, String>,
    /// The keyring that encrypts the codes handed to custom email and SMS sender triggers
    /// (`--custom-sender-key`); without it pools with such a trigger cannot send codes.
    pub custom_sender_keyring: Option<std::sync::Arc<cognate_crypto::encryption_sdk::RawAesKeyring>>,
    /// The access key Cognate signs its own calls to those APIs with.
    pub outbound_credentials: Option<OutboundCredentials>,
}

/// An access key for Cognate's calls to other AWS APIs.
#[derive(Clone)]
pub struct OutboundCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for OutboundCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// An identity provider outside Cognate (an OpenID Connect provider an identity pool names
/// by ARN, or a social provider such as accounts.google.com): where its keys are, so that
/// its ID tokens verify (offline, from a file, when tests need it).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginProviderConfig {
    /// The provider as `Logins` names it: `accounts.google.com`, or an OIDC provider's issuer
    /// without its scheme (the path of its ARN, `arn:aws:iam::<account>:oidc-provider/<name>`).
    pub name: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// Its JWKS, fetched (and kept for ten minutes)...
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// ... or read from a file.
    #[serde(default)]
    pub jwks_file: Option<std::path::PathBuf>,
    /// For OIDC providers, the client ids (`aud`) accepted, as IAM's ClientIDList; any when
    /// absent. Social providers' audience is the app id the identity pool names.
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "tls" => Ok(SmtpSecurity::Tls),
            "starttls" => Ok(SmtpSecurity::Starttls),
            "none" => Ok(SmtpSecurity::None),
            other => Err(format!("invalid value '{other}' [possible values: tls, starttls, none]")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Sensitive<String>>,
    pub from: String,
}

/// Request-rate limits per Cognito quota category. Off by default (local use).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Requests per second by category name (e.g. UserAuthentication = 120); others keep
    /// Cognito's defaults.
    #[serde(default)]
    pub per_second: std::collections::BTreeMap<String, u64>,
}
