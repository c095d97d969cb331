//! Layered configuration: built-in defaults < TOML file (`--config`) < `COGNATE_*` environment
//! < command-line flags. The result is one immutable [`Config`] handed to the server.
//!
//! Every setting is declared once, in a [`settings!`] table: its name gives the flag
//! (`--sigv4-max-skew-seconds`), the environment variable (`COGNATE_SIGV4_MAX_SKEW_SECONDS`) and
//! the TOML key (`sigv4_max_skew_seconds`), and its default is written there once, as the text
//! `--help` shows and that is parsed like a flag's value. [`ServeArgs::resolve`] then only
//! checks values and combines settings into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cognate_api::Sensitive;
pub use cognate_core::settings::{RateLimitConfig, SmtpConfig, SmtpSecurity};
use serde::Deserialize;

/// An access key pair accepted on SigV4-signed operations.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential {{ access_key_id: {:?}, secret_access_key: <redacted> }}", self.access_key_id)
    }
}

/// The documented default pair: what `aws --endpoint-url ...` users set in their shell.
pub const DEFAULT_ACCESS_KEY: &str = "test";
pub const DEFAULT_SECRET_KEY: &str = "test";

/// The region of unsigned calls and of Cognate's own work when `--region` names none; with
/// `--region`, the first one named.
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `--tls`: the certificate source that needs no files of the operator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A local CA (kept in the data dir) signs a certificate for localhost and 127.0.0.1.
    SelfSigned,
    /// Plain HTTP, even when a certificate and key are configured elsewhere.
    Off,
}

// Defaults are written as the text `--help` shows and are parsed as a flag's value would be.
macro_rules! from_str_by_value_enum {
    ($($name:ty),*) => {$(
        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                <$name as clap::ValueEnum>::from_str(text, false)
            }
        }
    )*};
}
from_str_by_value_enum!(LogFormat, TlsMode);

/// Where the HTTPS certificate comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum TlsConfig {
    /// PEM files of the operator's: a certificate chain and its private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A local CA signs a leaf certificate for localhost and 127.0.0.1 at each start. The CA is
    /// created once in the data dir (`ca.pem`, `ca-key.pem`) and reused, or kept in memory with
    /// `--ephemeral`; `ca_file` is one more place its certificate is written for clients.
    SelfSigned { ca_file: Option<PathBuf> },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Everything in memory: no data dir, nothing written.
    pub ephemeral: bool,
    /// `postgres://...` selects PostgreSQL; absent means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL schema holding Cognate's tables.
    pub database_schema: String,
    pub public_url: String,
    /// HTTPS, when on.
    pub tls: Option<TlsConfig>,
    /// The default region: of unsigned calls and of Cognate's own work (seeding, export).
    pub region: String,
    /// The regions served; empty serves every AWS region (see `region.rs`).
    pub regions: Vec<String>,
    pub account_id: String,
    pub credentials: Vec<Credential>,
    pub sigv4_max_skew_seconds: u64,
    /// Development switch: accept any well-formed signature from any access key.
    pub accept_any_signature: bool,
    /// Base64 master key; else `master_key_file`; else (SQLite only) generated in `data_dir`.
    pub master_key: Option<Sensitive<String>>,
    pub master_key_file: Option<PathBuf>,
    /// Older master keys (base64) that still decrypt what they sealed, for rotation.
    pub previous_master_keys: Vec<Sensitive<String>>,
    pub max_request_bytes: usize,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Email delivery; without it email goes only to the outbox.
    pub smtp: Option<SmtpConfig>,
    /// Serve `/_cognate/outbox` to non-loopback clients too (off by default: it shows codes).
    pub outbox_public: bool,
    /// How long outbox messages are kept (they hold live codes and temporary passwords).
    pub outbox_retention_seconds: u64,
    /// Most outbox messages kept per pool; the oldest go first.
    pub outbox_max_per_pool: u64,
    pub rate_limits: RateLimitConfig,
    /// How long a node's claim on a running import job lasts unless renewed; a job whose
    /// node stopped is resumed by another node (or a restart) this long after.
    pub import_lease_seconds: u64,
    /// External identity providers identity pools accept logins from (TOML: [[login_providers]]).
    pub login_providers: Vec<cognate_core::settings::LoginProviderConfig>,
    /// Where identities' credentials come from when not from Cognate itself.
    pub sts_endpoint: Option<String>,
    /// Where Cognito Sync's pushes and stream records go besides the outbox.
    pub sns_endpoint: Option<String>,
    pub kinesis_endpoint: Option<String>,
    /// Lambda's Invoke API, where trigger functions run.
    pub lambda_endpoint: Option<String>,
    /// Trigger functions as webhooks (TOML: [lambda.functions], ARN or name = URL).
    pub lambda_functions: std::collections::BTreeMap<String, String>,
    /// The keyring the codes handed to custom sender triggers are encrypted under.
    pub custom_sender_keyring: Option<std::sync::Arc<cognate_crypto::encryption_sdk::RawAesKeyring>>,
    /// Development only: seconds added to Cognate's clock (see `OffsetClock`).
    pub clock_offset_seconds: i64,
}

/// The `[lambda]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaFile {
    /// Function ARN (or name) -> the URL that receives its events.
    #[serde(default)]
    functions: std::collections::BTreeMap<String, String>,
}

impl Config {
    pub fn uses_default_credentials(&self) -> bool {
        self.credentials
            .iter()
            .any(|c| c.access_key_id == DEFAULT_ACCESS_KEY && c.secret_access_key == DEFAULT_SECRET_KEY)
    }

    /// What the domain reads of the configuration.
    pub fn settings(&self) -> cognate_core::settings::Settings {
        cognate_core::settings::Settings {
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            public_url: self.public_url.clone(),
            smtp: self.smtp.clone(),
            outbox_retention_seconds: self.outbox_retention_seconds,
            outbox_max_per_pool: self.outbox_max_per_pool,
            rate_limits: self.rate_limits.clone(),
            import_lease_seconds: self.import_lease_seconds,
            login_providers: self.login_providers.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            sns_endpoint: self.sns_endpoint.clone(),
            kinesis_endpoint: self.kinesis_endpoint.clone(),
            lambda_endpoint: self.lambda_endpoint.clone(),
            lambda_functions: self.lambda_functions.clone(),
            custom_sender_keyring: self.custom_sender_keyring.clone(),
            outbound_credentials: self.credentials.first().map(|c| cognate_core::settings::OutboundCredentials {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: c.secret_access_key.clone(),
            }),
        }
    }

    pub fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.credentials.iter().find(|c| c.access_key_id == access_key_id).map(|c| c.secret_access_key.clone())
    }
}

// ---------------------------------------------------------------------------
// The declaration
// ---------------------------------------------------------------------------

/// `name` as its flag spells it (`smtp_host` -> `smtp-host`), or with `env` as its
/// environment variable does (`COGNATE_SMTP_HOST`). `N` is the length of the result.
const fn derive_name<const N: usize>(env: bool, name: &str) -> [u8; N] {
    let lead: &[u8] = if env { b"COGNATE_" } else { b"" };
    let name = name.as_bytes();
    assert!(N == lead.len() + name.len(), "derive_name: wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < lead.len() {
        out[i] = lead[i];
        i += 1;
    }
    let mut j = 0;
    while j < name.len() {
        let b = name[j];
        out[i + j] = if env {
            b.to_ascii_uppercase()
        } else if b == b'_' {
            b'-'
        } else {
            b
        };
        j += 1;
    }
    out
}

/// [`derive_name`] as a `&'static str`, computed at compile time (clap takes the names as
/// static strings).
macro_rules! derived_name {
    ($env:literal, $name:expr) => {{
        const NAME: &str = $name;
        const LEN: usize = NAME.len() + if $env { "COGNATE_".len() } else { 0 };
        const BYTES: [u8; LEN] = derive_name::<LEN>($env, NAME);
        const TEXT: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("setting names are ASCII"),
        };
        TEXT
    }};
}

/// Declares a group of settings. Each line
///
/// ```text
/// name: Type = DEFAULT, "help" [, env "NAME"] [, toml(FileType) [alias "key"]] [, clap(...)];
/// ```
///
/// gives a flag `--<prefix>name` with its `COGNATE_<PREFIX>NAME` variable (or `env`'s) in
/// `$Args`, a TOML key `name` in `$File` (read as `FileType`, converted with `Into`), and a
/// field of `$Values` holding the winner of flag/env over file over default. DEFAULT is a
/// string parsed like the flag's value (`"300"`), `none` (the field stays an `Option`), or
/// `{"text"}` when `resolve` computes the default from other settings (`text` says how, for
/// `--help`). `clap(...)` adds arguments to the flag's `#[arg]`.
macro_rules! settings {
    (@values_ty $ty:ty, none) => { Option<$ty> };
    (@values_ty $ty:ty, {$shown:literal}) => { Option<$ty> };
    (@values_ty $ty:ty, $default:literal) => { $ty };

    (@file_ty $ty:ty) => { $ty };
    (@file_ty $ty:ty, $file_ty:ty) => { $file_ty };

    (@env $prefix:literal, $field:ident) => { derived_name!(true, concat!($prefix, stringify!($field))) };
    (@env $prefix:literal, $field:ident, $env:literal) => { $env };

    (@help $help:literal, none) => { $help };
    (@help $help:literal, {$shown:literal}) => { concat!($help, " [default: ", $shown, "]") };
    (@help $help:literal, $default:literal) => { concat!($help, " [default: ", $default, "]") };

    (@pick $ty:ty, none, $key:expr, $value:expr) => { $value };
    (@pick $ty:ty, {$shown:literal}, $key:expr, $value:expr) => { $value };
    (@pick $ty:ty, $default:literal, $key:expr, $value:expr) => {
        match $value {
            Some(value) => value,
            None => parse_default::<$ty>($key, $default)?,
        }
    };

    // Bool settings are switches: `--ephemeral` alone means true; `--ephemeral false` and
    // `COGNATE_EPHEMERAL=true` work too (their lines add `num_args = 0..=1, default_missing_value`).
    (
        $(#[doc = $args_doc:literal])*
        args $Args:ident, file $File:ident, values $Values:ident, prefixes($flag_prefix:literal, $key_prefix:literal) {
            $(
                $field:ident : $ty:ty = $default:tt, $help:literal
                    $(, env $env:literal)?
                    $(, toml($file_ty:ty) $(alias $alias:literal)?)?
                    $(, clap($($arg:tt)*))?;
            )*
        }
        extra_args { $($extra_args:tt)* }
        extra_file { $($extra_file:tt)* }
    ) => {
        $(#[doc = $args_doc])*
        #[derive(Default, clap::Args)]
        pub struct $Args {
            $(
                #[arg(
                    long = derived_name!(false, concat!($flag_prefix, stringify!($field))),
                    env = settings!(@env $flag_prefix, $field $(, $env)?),
                    help = settings!(@help $help, $default)
                    $(, $($arg)*)?
                )]
                pub $field: Option<$ty>,
            )*
            $($extra_args)*
        }

        /// The TOML form: every key optional, unknown keys rejected.
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $File {
            $(
                $($(#[serde(alias = $alias)])?)?
                $field: Option<settings!(@file_ty $ty $(, $file_ty)?)>,
            )*
            $($extra_file)*
        }

        /// Each setting's winner: flag or environment, else the file, else the default.
        struct $Values {
            $( $field: settings!(@values_ty $ty, $default), )*
        }

        impl $Values {
            /// Takes the declared keys out of `file`, leaving its `extra_file` ones.
            fn merge(args: &$Args, file: &mut $File) -> Result<Self, ConfigError> {
                Ok(Self {
                    $(
                        $field: settings!(
                            @pick $ty,
                            $default,
                            concat!($key_prefix, stringify!($field)),
                            args.$field.clone().or(file.$field.take().map(Into::into))
                        ),
                    )*
                })
            }
        }
    };
}

settings! {
    /// Flags of `cognate serve`; each has a `COGNATE_*` environment form (clap gives the flag
    /// precedence over the variable) and, but for `--config` and `--seed`, a TOML key.
    args ServeArgs, file FileConfig, values Settings, prefixes("", "") {
        listen: String = "127.0.0.1:9229", "Address and port to listen on", clap(value_name = "ADDR:PORT");
        data_dir: PathBuf = "./.cognate", "Directory for the embedded database and generated keys",
            clap(value_name = "DIR");
        ephemeral: bool = "false",
            "Keep everything in memory (SQLite in memory, keys generated at start): no data dir, nothing written",
            clap(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL");
        database_url: String = none, "A postgres:// URL selects PostgreSQL; absent means embedded SQLite in the data dir",
            clap(value_name = "URL");
        database_schema: String = "public", "PostgreSQL schema for Cognate's tables", clap(value_name = "NAME");
        public_url: String = {"http://<listen>, https://<listen> with TLS"},
            "Public base URL (token issuer, pre-signed URLs)", clap(value_name = "URL");
        tls: TlsMode = none,
            "HTTPS with a local CA: `self-signed` creates one in the data dir (ca.pem; kept in memory with --ephemeral) \
             and serves a certificate for localhost and 127.0.0.1 signed by it; `off` turns HTTPS off",
            clap(value_name = "MODE");
        tls_cert: PathBuf = none, "HTTPS certificate chain (PEM), with --tls-key", clap(value_name = "FILE");
        tls_key: PathBuf = none, "Private key (PEM) of --tls-cert", clap(value_name = "FILE");
        tls_ca_file: PathBuf = none,
            "Also write the CA certificate of --tls self-signed here (PEM), for clients to trust; with --ephemeral \
             the only copy written",
            clap(value_name = "FILE");
        region: Vec<String> = {"every AWS region, us-east-1 the default"},
            "AWS region to serve (repeatable, or comma-separated); the first is the region of unsigned calls",
            toml(OneOrMany) alias "regions", clap(value_name = "REGION", value_delimiter = ',');
        account_id: String = "000000000000", "AWS account id reported in ARNs";
        sigv4_max_skew_seconds: u64 = "300", "Accepted clock skew of SigV4-signed requests, in seconds";
        accept_any_signature: bool = "false", "Development only: accept any SigV4 signature from any access key",
            clap(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL");
        master_key: String = none, "Master key (base64 of 32 bytes) encrypting secrets at rest",
            clap(hide_env_values = true);
        master_key_file: PathBuf = none, "File holding the master key (base64)", clap(value_name = "FILE");
        max_request_bytes: usize = "1048576",
            "Largest accepted request body in bytes (Cognito Sync's may be up to 8 MiB: a whole dataset, JSON-escaped)";
        log_format: LogFormat = "text", "Log format";
        log_level: String = "info", "Log filter, e.g. info or cognate=debug", env "COGNATE_LOG";
        outbox_public: bool = "false",
            "Serve /_cognate/outbox to non-loopback clients too (it shows codes: development only)",
            clap(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL");
        // A day, like the longest-lived code.
        outbox_retention_seconds: u64 = "86400", "Seconds outbox messages are kept", clap(value_name = "SECONDS");
        // What one default outbox read returns (its page size): far more than a test run or a
        // developer reads back, while bounding the table (and the index walk that finds a
        // pool's overflow on each append) to a thousand rows a pool.
        outbox_max_per_pool: u64 = "1000", "Most outbox messages kept per user pool, the oldest going first",
            clap(value_name = "COUNT");
        import_lease_seconds: u64 = "30", "Seconds before an import job left by a stopped node is resumed by another",
            clap(value_name = "SECONDS");
        sns_endpoint: String = none,
            "SNS's API (e.g. another AWS emulator's), to which Cognito Sync's silent pushes are published \
             (they always go to the outbox); calls are signed with the first configured access key",
            clap(value_name = "URL");
        kinesis_endpoint: String = none,
            "Kinesis's API (e.g. another AWS emulator's), to which Cognito Streams puts dataset changes and \
             BulkPublish every dataset; without it streaming cannot be enabled",
            clap(value_name = "URL");
        lambda_endpoint: String = none,
            "Lambda's Invoke API (LocalStack, another emulator, a test host) where the pools' trigger functions \
             run; calls are signed with the first configured access key. [lambda.functions] in the TOML file maps \
             a function to a plain HTTP URL instead",
            clap(value_name = "URL");
        // Cognito encrypts these codes with the pool's KMS key (LambdaConfig.KMSKeyID); Cognate
        // has no KMS, so one raw AES wrapping key of the operator's stands in for every pool's.
        custom_sender_key: String = none,
            "Wrapping key (base64 of 32 bytes) of the codes Cognate hands to pools' custom email and SMS sender \
             triggers, as AWS Encryption SDK messages that a raw AES keyring with this key, \
             --custom-sender-key-namespace and --custom-sender-key-name decrypts; without it such pools cannot \
             send codes",
            clap(hide_env_values = true, value_name = "BASE64");
        custom_sender_key_namespace: String = "cognate",
            "Key namespace (the key provider id) of the raw AES keyring that decrypts custom sender codes",
            clap(value_name = "NAMESPACE");
        custom_sender_key_name: String = "custom-sender",
            "Key name of the raw AES keyring that decrypts custom sender codes", clap(value_name = "NAME");
        clock_offset_seconds: i64 = "0",
            "Development only: shift Cognate's clock by this many seconds (negative or positive), to see codes, \
             tokens and credentials expire without waiting; SigV4 date checks keep real time",
            clap(value_name = "SECONDS", allow_hyphen_values = true);
        sts_endpoint: String = none,
            "An STS endpoint (e.g. another AWS emulator's) that issues identities' credentials through \
             AssumeRoleWithWebIdentity with their OpenID tokens, instead of Cognate",
            clap(value_name = "URL");
    }
    extra_args {
        /// TOML configuration file
        #[arg(long, env = derived_name!(true, "config"), value_name = "FILE")]
        pub config: Option<PathBuf>,
        /// Seed file (JSON) applied at start: creates what is missing, leaves what exists
        #[arg(long, env = derived_name!(true, "seed"), value_name = "FILE")]
        pub seed: Option<PathBuf>,
        /// Access key id accepted on signed operations (replaces the default pair `test`/`test`;
        /// TOML: [[credentials]])
        #[arg(long, env = derived_name!(true, "access_key_id"), requires = "secret_access_key")]
        pub access_key_id: Option<String>,
        /// Secret access key for --access-key-id
        #[arg(long, env = derived_name!(true, "secret_access_key"), hide_env_values = true, requires = "access_key_id")]
        pub secret_access_key: Option<String>,
        /// Enforce Cognito's request-rate quotas (TooManyRequestsException) [default: false]
        /// (TOML: [rate_limits] enabled)
        #[arg(long, env = derived_name!(true, "rate_limits"), num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        pub rate_limits: Option<bool>,
        #[command(flatten)]
        pub smtp: SmtpArgs,
    }
    extra_file {
        credentials: Option<Vec<Credential>>,
        previous_master_keys: Option<Vec<String>>,
        rate_limits: Option<RateLimitConfig>,
        smtp: Option<FileSmtp>,
        login_providers: Option<Vec<cognate_core::settings::LoginProviderConfig>>,
        lambda: Option<LambdaFile>,
    }
}

settings! {
    /// `--smtp-*` flags, the `[smtp]` table of the TOML file.
    args SmtpArgs, file FileSmtp, values SmtpSettings, prefixes("smtp_", "smtp.") {
        host: String = none, "SMTP server for email delivery (without it, email goes only to the outbox)";
        port: u16 = {"587 for starttls, 465 for tls, 25 for none"}, "SMTP port";
        security: SmtpSecurity = "starttls", "SMTP security";
        username: String = none, "SMTP user name";
        password: String = none, "SMTP password", clap(hide_env_values = true);
        from: String = "no-reply@cognate.local", "From address of Cognate's email";
    }
    extra_args {}
    extra_file {}
}

/// `region = "eu-west-1"` or `region = ["eu-west-1", "us-east-1"]` (or `regions = [...]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Vec<String> {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

fn parse_default<T: FromStr>(key: &'static str, text: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| ConfigError::Value { key, message: format!("built-in default '{text}': {e}") })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid value for {key}: {message}")]
    Value { key: &'static str, message: String },
}

fn at_least_one(key: &'static str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Value { key, message: "must be at least 1".into() });
    }
    Ok(value)
}

impl ServeArgs {
    /// Merges defaults, the TOML file and these arguments (which already include the env).
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let s = Settings::merge(self, &mut file)?;
        let listen: SocketAddr = s
            .listen
            .parse()
            .map_err(|_| ConfigError::Value { key: "listen", message: format!("'{}' is not ADDR:PORT", s.listen) })?;
        let credentials = match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => {
                vec![Credential { access_key_id: id.clone(), secret_access_key: secret.clone() }]
            }
            _ => file.credentials.unwrap_or_else(|| {
                vec![Credential {
                    access_key_id: DEFAULT_ACCESS_KEY.into(),
                    secret_access_key: DEFAULT_SECRET_KEY.into(),
                }]
            }),
        };
        let database_url = s.database_url.filter(|u| !u.is_empty());
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Value {
                    key: "database_url",
                    message: "only postgres:// URLs are supported (omit it for embedded SQLite)".into(),
                });
            }
            if s.ephemeral {
                return Err(ConfigError::Value {
                    key: "ephemeral",
                    message: "keeps everything in memory, so it takes no database_url".into(),
                });
            }
        }
        let tls = resolve_tls(s.tls, s.tls_cert, s.tls_key, s.tls_ca_file)?;
        let public_url = s
            .public_url
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| default_public_url(listen, tls.is_some()));
        let regions = resolve_regions(s.region.unwrap_or_default())?;
        let region = regions.first().cloned().unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if s.account_id.len() != 12 || !s.account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConfigError::Value { key: "account_id", message: "must be 12 digits".into() });
        }
        let smtp = resolve_smtp(&self.smtp, file.smtp.unwrap_or_default())?;
        let custom_sender_keyring =
            resolve_custom_sender(s.custom_sender_key, &s.custom_sender_key_namespace, &s.custom_sender_key_name)?;
        let mut rate_limits = file.rate_limits.unwrap_or_default();
        if let Some(enabled) = self.rate_limits {
            rate_limits.enabled = enabled;
        }
        if let Some(unknown) =
            rate_limits.per_second.keys().find(|k| !cognate_core::ratelimit::DEFAULTS.iter().any(|(n, _)| n == k))
        {
            return Err(ConfigError::Value {
                key: "rate_limits.per_second",
                message: format!("unknown quota category '{unknown}'"),
            });
        }
        Ok(Config {
            // At least one of each, or the outbox would be emptied as it is written.
            outbox_retention_seconds: at_least_one("outbox_retention_seconds", s.outbox_retention_seconds)?,
            outbox_max_per_pool: at_least_one("outbox_max_per_pool", s.outbox_max_per_pool)?,
            import_lease_seconds: at_least_one("import_lease_seconds", s.import_lease_seconds)?,
            smtp,
            rate_limits,
            outbox_public: s.outbox_public,
            listen,
            data_dir: s.data_dir,
            ephemeral: s.ephemeral,
            database_url,
            database_schema: s.database_schema,
            public_url,
            tls,
            region,
            regions,
            account_id: s.account_id,
            credentials,
            sigv4_max_skew_seconds: s.sigv4_max_skew_seconds,
            accept_any_signature: s.accept_any_signature,
            master_key: s.master_key.map(Sensitive),
            master_key_file: s.master_key_file,
            previous_master_keys: file.previous_master_keys.unwrap_or_default().into_iter().map(Sensitive).collect(),
            max_request_bytes: s.max_request_bytes,
            log_format: s.log_format,
            log_level: s.log_level,
            login_providers: file.login_providers.take().unwrap_or_default(),
            sts_endpoint: s.sts_endpoint.filter(|url| !url.is_empty()),
            sns_endpoint: s.sns_endpoint.filter(|url| !url.is_empty()),
            kinesis_endpoint: s.kinesis_endpoint.filter(|url| !url.is_empty()),
            lambda_endpoint: s.lambda_endpoint.filter(|url| !url.is_empty()),
            lambda_functions: file.lambda.take().unwrap_or_default().functions,
            custom_sender_keyring,
            clock_offset_seconds: s.clock_offset_seconds,
        })
    }
}

/// The regions named, checked and without repeats, in the order given (the first is the
/// default); none named means every region.
fn resolve_regions(named: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut regions: Vec<String> = Vec::with_capacity(named.len());
    for name in named {
        let name = name.trim();
        if !cognate_core::region::is_region_name(name) {
            return Err(ConfigError::Value { key: "region", message: format!("'{name}' is not a region name") });
        }
        if !regions.iter().any(|r| r == name) {
            regions.push(name.to_owned());
        }
    }
    Ok(regions)
}

fn resolve_tls(
    mode: Option<TlsMode>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca_file: Option<PathBuf>,
) -> Result<Option<TlsConfig>, ConfigError> {
    let tls = match (mode, cert, key) {
        (Some(TlsMode::Off), _, _) => None,
        (Some(TlsMode::SelfSigned), None, None) => Some(TlsConfig::SelfSigned { ca_file: ca_file.clone() }),
        (Some(TlsMode::SelfSigned), _, _) => {
            return Err(ConfigError::Value {
                key: "tls",
                message: "self-signed makes its own certificate: give it or tls_cert/tls_key, not both".into(),
            })
        }
        (None, Some(cert), Some(key)) => Some(TlsConfig::Files { cert, key }),
        (None, Some(_), None) => {
            return Err(ConfigError::Value { key: "tls_cert", message: "needs tls_key, its private key".into() })
        }
        (None, None, Some(_)) => {
            return Err(ConfigError::Value { key: "tls_key", message: "needs tls_cert, its certificate".into() })
        }
        (None, None, None) => None,
    };
    if ca_file.is_some() && !matches!(tls, Some(TlsConfig::SelfSigned { .. })) {
        return Err(ConfigError::Value { key: "tls_ca_file", message: "is written by tls = self-signed only".into() });
    }
    Ok(tls)
}

fn resolve_smtp(args: &SmtpArgs, mut file: FileSmtp) -> Result<Option<SmtpConfig>, ConfigError> {
    let s = SmtpSettings::merge(args, &mut file)?;
    let Some(host) = s.host else {
        return Ok(None);
    };
    let default_port = match s.security {
        SmtpSecurity::Tls => 465,
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::None => 25,
    };
    Ok(Some(SmtpConfig {
        host,
        port: s.port.unwrap_or(default_port),
        security: s.security,
        username: s.username,
        password: s.password.map(Sensitive),
        from: s.from,
    }))
}

/// The raw AES keyring of `--custom-sender-key`, if given.
fn resolve_custom_sender(
    key: Option<String>,
    namespace: &str,
    name: &str,
) -> Result<Option<std::sync::Arc<cognate_crypto::encryption_sdk::RawAesKeyring>>, ConfigError> {
    use base64::Engine as _;
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| ConfigError::Value { key: "custom_sender_key", message: "is not base64 (of 32 bytes)".into() })?;
    let keyring = cognate_crypto::encryption_sdk::RawAesKeyring::new(namespace, name, &bytes).map_err(|e| {
        let key = if bytes.len() == 32 { "custom_sender_key_namespace" } else { "custom_sender_key" };
        ConfigError::Value { key, message: e.to_string() }
    })?;
    Ok(Some(std::sync::Arc::new(keyring)))
}

fn default_public_url(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if listen.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", listen.port())
    } else {
        format!("{scheme}://{listen}")
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    // toml's message names the offending key, e.g. "unknown field `listne`, expected one of ...".
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: shown, message: e.message().to_owned() })
}
#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cognate.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn defaults_are_documented_values() {
        let cfg = ServeArgs::default().resolve().expect("config");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:9229");
        assert_eq!(cfg.data_dir, PathBuf::from("./.cognate"));
        assert_eq!(cfg.region, "us-east-1");
        assert!(cfg.regions.is_empty(), "every region is served by default");
        assert!(!cfg.ephemeral && cfg.tls.is_none());
        assert_eq!(cfg.account_id, "000000000000");
        assert_eq!(cfg.public_url, "http://127.0.0.1:9229");
        assert!(cfg.uses_default_credentials());
        assert!(!cfg.accept_any_signature);
        assert_eq!(cfg.sigv4_max_skew_seconds, 300);
        assert_eq!((cfg.outbox_retention_seconds, cfg.outbox_max_per_pool), (86_400, 1000));
    }

    #[test]
    fn outbox_retention_settings() {
        let (_dir, path) = file("outbox_retention_seconds = 60\noutbox_max_per_pool = 5\n");
        let cfg = ServeArgs { config: Some(path.clone()), ..Default::default() }.resolve().expect("config");
        assert_eq!((cfg.outbox_retention_seconds, cfg.outbox_max_per_pool), (60, 5));
        let args = ServeArgs { config: Some(path), outbox_max_per_pool: Some(7), ..Default::default() };
        assert_eq!(args.resolve().expect("config").outbox_max_per_pool, 7);
        for args in [
            ServeArgs { outbox_retention_seconds: Some(0), ..Default::default() },
            ServeArgs { outbox_max_per_pool: Some(0), ..Default::default() },
        ] {
            assert!(args.resolve().expect_err("zero").to_string().contains("outbox_"));
        }
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let (_dir, path) = file("listen = \"127.0.0.1:7000\"\nregion = \"eu-west-1\"\n");
        let args =
            ServeArgs { config: Some(path.clone()), region: Some(vec!["ap-south-1".into()]), ..Default::default() };
        let cfg = args.resolve().expect("config");
        assert_eq!(cfg.listen.port(), 7000);
        assert_eq!(cfg.region, "ap-south-1");
        assert_eq!(cfg.public_url, "http://127.0.0.1:7000");
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let (_dir, path) = file("listne = \"127.0.0.1:1\"\n");
        let err = ServeArgs { config: Some(path), ..Default::default() }.resolve().expect_err("must fail");
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let (_dir, path) = file(
            "master_key = \"bWFzdGVyLWtleS12YWx1ZQ==\"\n[[credentials]]\naccess_key_id = \"AKIDX\"\nsecret_access_key = \"very-secret-value\"\n",
        );
        let cfg = ServeArgs { config: Some(path), ..Default::default() }.resolve().expect("config");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("very-secret-value") && !shown.contains("bWFzdGVy"), "{shown}");
        assert_eq!(cfg.secret_for("AKIDX").as_deref(), Some("very-secret-value"));
    }

    #[test]
    fn bad_values_are_named() {
        let err = ServeArgs { listen: Some("nonsense".into()), ..Default::default() }.resolve().expect_err("fail");
        assert!(err.to_string().contains("listen"));
        let err =
            ServeArgs { database_url: Some("mysql://x".into()), ..Default::default() }.resolve().expect_err("fail");
        assert!(err.to_string().contains("database_url"));
    }

    /// `cognate serve ARGS` as clap parses it.
    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        <Cli as clap::Parser>::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    /// The flags, variables and TOML keys are user contracts (README, scripts): the names the
    /// declaration derives must stay these.
    #[test]
    fn flag_and_variable_names_are_the_documented_ones() {
        use clap::Args as _;
        let command = ServeArgs::augment_args(clap::Command::new("serve"));
        let mut actual: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|arg| {
                let long = arg.get_long()?;
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
                Some((long.to_owned(), env))
            })
            .collect();
        actual.sort();
        let mut expected: Vec<(String, String)> = [
            ("listen", "COGNATE_LISTEN"),
            ("data-dir", "COGNATE_DATA_DIR"),
            ("ephemeral", "COGNATE_EPHEMERAL"),
            ("database-url", "COGNATE_DATABASE_URL"),
            ("database-schema", "COGNATE_DATABASE_SCHEMA"),
            ("config", "COGNATE_CONFIG"),
            ("public-url", "COGNATE_PUBLIC_URL"),
            ("tls", "COGNATE_TLS"),
            ("tls-cert", "COGNATE_TLS_CERT"),
            ("tls-key", "COGNATE_TLS_KEY"),
            ("tls-ca-file", "COGNATE_TLS_CA_FILE"),
            ("region", "COGNATE_REGION"),
            ("account-id", "COGNATE_ACCOUNT_ID"),
            ("access-key-id", "COGNATE_ACCESS_KEY_ID"),
            ("secret-access-key", "COGNATE_SECRET_ACCESS_KEY"),
            ("sigv4-max-skew-seconds", "COGNATE_SIGV4_MAX_SKEW_SECONDS"),
            ("accept-any-signature", "COGNATE_ACCEPT_ANY_SIGNATURE"),
            ("master-key", "COGNATE_MASTER_KEY"),
            ("master-key-file", "COGNATE_MASTER_KEY_FILE"),
            ("max-request-bytes", "COGNATE_MAX_REQUEST_BYTES"),
            ("log-format", "COGNATE_LOG_FORMAT"),
            ("log-level", "COGNATE_LOG"),
            ("smtp-host", "COGNATE_SMTP_HOST"),
            ("smtp-port", "COGNATE_SMTP_PORT"),
            ("smtp-security", "COGNATE_SMTP_SECURITY"),
            ("smtp-username", "COGNATE_SMTP_USERNAME"),
            ("smtp-password", "COGNATE_SMTP_PASSWORD"),
            ("smtp-from", "COGNATE_SMTP_FROM"),
            ("outbox-public", "COGNATE_OUTBOX_PUBLIC"),
            ("outbox-retention-seconds", "COGNATE_OUTBOX_RETENTION_SECONDS"),
            ("outbox-max-per-pool", "COGNATE_OUTBOX_MAX_PER_POOL"),
            ("rate-limits", "COGNATE_RATE_LIMITS"),
            ("import-lease-seconds", "COGNATE_IMPORT_LEASE_SECONDS"),
            ("sts-endpoint", "COGNATE_STS_ENDPOINT"),
            ("sns-endpoint", "COGNATE_SNS_ENDPOINT"),
            ("kinesis-endpoint", "COGNATE_KINESIS_ENDPOINT"),
            ("lambda-endpoint", "COGNATE_LAMBDA_ENDPOINT"),
            ("clock-offset-seconds", "COGNATE_CLOCK_OFFSET_SECONDS"),
            ("custom-sender-key", "COGNATE_CUSTOM_SENDER_KEY"),
            ("custom-sender-key-namespace", "COGNATE_CUSTOM_SENDER_KEY_NAMESPACE"),
            ("custom-sender-key-name", "COGNATE_CUSTOM_SENDER_KEY_NAME"),
            ("seed", "COGNATE_SEED"),
        ]
        .iter()
        .map(|(flag, env)| (flag.to_string(), env.to_string()))
        .collect();
        expected.sort();
        assert_eq!(actual, expected);
    }

    #[test]
    fn every_toml_key_is_read() {
        let (_dir, path) = file(
            r#"
listen = "127.0.0.1:7001"
data_dir = "/tmp/cognate-x"
database_schema = "other"
public_url = "https://id.example.com/"
region = "eu-west-1"
account_id = "123456789012"
sigv4_max_skew_seconds = 9
accept_any_signature = true
master_key_file = "/tmp/mk"
previous_master_keys = ["b2xk"]
max_request_bytes = 2048
log_format = "json"
log_level = "debug"
outbox_public = true
outbox_retention_seconds = 5
outbox_max_per_pool = 6
import_lease_seconds = 7
custom_sender_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
custom_sender_key_namespace = "acme"
custom_sender_key_name = "codes"
ephemeral = true
tls_cert = "/tmp/c.pem"
tls_key = "/tmp/k.pem"
[[credentials]]
access_key_id = "A"
secret_access_key = "B"
[smtp]
host = "mail.example.com"
security = "tls"
username = "u"
password = "p"
from = "f@example.com"
[rate_limits]
enabled = true
[lambda.functions]
"arn:aws:lambda:eu-west-1:123456789012:function:welcome" = "http://127.0.0.1:9000/welcome"
"#,
        );
        let cfg = ServeArgs { config: Some(path), ..Default::default() }.resolve().expect("config");
        assert_eq!(cfg.listen.port(), 7001);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/cognate-x"));
        assert_eq!((cfg.database_schema.as_str(), cfg.public_url.as_str()), ("other", "https://id.example.com"));
        assert_eq!((cfg.region.as_str(), cfg.regions.as_slice()), ("eu-west-1", &["eu-west-1".to_string()][..]));
        assert_eq!(cfg.account_id, "123456789012");
        assert_eq!((cfg.sigv4_max_skew_seconds, cfg.max_request_bytes), (9, 2048));
        assert!(cfg.accept_any_signature && cfg.outbox_public && cfg.ephemeral && cfg.rate_limits.enabled);
        assert_eq!(cfg.master_key_file, Some(PathBuf::from("/tmp/mk")));
        assert_eq!(cfg.previous_master_keys.len(), 1);
        assert_eq!((cfg.log_format, cfg.log_level.as_str()), (LogFormat::Json, "debug"));
        assert_eq!((cfg.outbox_retention_seconds, cfg.outbox_max_per_pool, cfg.import_lease_seconds), (5, 6, 7));
        assert_eq!(
            cfg.tls,
            Some(TlsConfig::Files { cert: PathBuf::from("/tmp/c.pem"), key: PathBuf::from("/tmp/k.pem") })
        );
        assert_eq!(cfg.secret_for("A").as_deref(), Some("B"));
        let smtp = cfg.smtp.expect("smtp");
        assert_eq!((smtp.host.as_str(), smtp.port, smtp.security), ("mail.example.com", 465, SmtpSecurity::Tls));
        assert_eq!((smtp.username.as_deref(), smtp.from.as_str()), (Some("u"), "f@example.com"));
        let welcome = cfg.lambda_functions.get("arn:aws:lambda:eu-west-1:123456789012:function:welcome");
        assert_eq!(welcome.map(String::as_str), Some("http://127.0.0.1:9000/welcome"));
        let keyring = cfg.custom_sender_keyring.expect("custom sender keyring");
        let message = keyring.encrypt(b"123456", &Default::default()).expect("encrypt");
        let same = cognate_crypto::encryption_sdk::RawAesKeyring::new("acme", "codes", &(0..32).collect::<Vec<u8>>());
        assert_eq!(same.expect("keyring").decrypt(&message).expect("decrypt").0, b"123456");
    }

    #[test]
    fn the_custom_sender_key_is_32_bytes_of_base64_outside_the_kms_namespace() {
        let cfg = ServeArgs::default().resolve().expect("config");
        assert!(cfg.custom_sender_keyring.is_none(), "no key unless given");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let cfg = parse(&["--custom-sender-key", key]).expect("parse").resolve().expect("config");
        let shown = format!("{cfg:?}");
        assert!(shown.contains("custom-sender") && !shown.contains(key), "named, never shown: {shown}");
        for (bad, setting) in [
            (&["--custom-sender-key", "not base64!"][..], "custom_sender_key"),
            (&["--custom-sender-key", "AAECAwQFBgcICQoLDA0ODw=="][..], "custom_sender_key"),
            (
                &["--custom-sender-key", key, "--custom-sender-key-namespace", "aws-kms"][..],
                "custom_sender_key_namespace",
            ),
        ] {
            let err = parse(bad).expect("parse").resolve().expect_err("must fail");
            assert!(err.to_string().contains(setting), "{bad:?}: {err}");
        }
    }

    #[test]
    fn help_shows_each_default_once_declared() {
        use clap::CommandFactory as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let help = Cli::command().render_long_help().to_string();
        for shown in ["[default: 127.0.0.1:9229]", "[default: ./.cognate]", "[default: 300]", "[default: starttls]"] {
            assert!(help.contains(shown), "{shown} missing from\n{help}");
        }
        // And the values used are those shown.
        let cfg = ServeArgs::default().resolve().expect("config");
        assert_eq!((cfg.max_request_bytes, cfg.log_format, cfg.log_level.as_str()), (1 << 20, LogFormat::Text, "info"));
        assert_eq!((cfg.database_schema.as_str(), cfg.import_lease_seconds), ("public", 30));
    }

    #[test]
    fn regions_repeat_split_and_come_from_toml_in_both_spellings() {
        let cfg = parse(&["--region", "eu-west-1", "--region", "us-west-2,eu-west-1"]).expect("parse").resolve();
        let cfg = cfg.expect("config");
        assert_eq!(cfg.regions, ["eu-west-1", "us-west-2"]);
        assert_eq!(cfg.region, "eu-west-1", "the first region named is the default");
        for text in
            ["region = \"ap-south-1\"", "region = [\"ap-south-1\", \"us-east-2\"]", "regions = [\"ap-south-1\"]"]
        {
            let (_dir, path) = file(text);
            let cfg = ServeArgs { config: Some(path), ..Default::default() }.resolve().expect(text);
            assert_eq!(cfg.region, "ap-south-1", "{text}");
            assert_eq!(cfg.regions[0], "ap-south-1", "{text}");
        }
        let err = parse(&["--region", "moon-base"]).expect("parse").resolve().expect_err("not a region");
        assert!(err.to_string().contains("region") && err.to_string().contains("moon-base"), "{err}");
    }

    #[test]
    fn switches_take_no_value() {
        let args = parse(&["--ephemeral", "--outbox-public", "--listen", "127.0.0.1:1"]).expect("parse");
        assert_eq!((args.ephemeral, args.outbox_public), (Some(true), Some(true)));
        assert_eq!(parse(&["--ephemeral", "false"]).expect("parse").ephemeral, Some(false));
        let err = parse(&["--ephemeral", "--database-url", "postgres://x/y"]).expect("parse").resolve();
        assert!(err.expect_err("ephemeral with a database").to_string().contains("ephemeral"));
    }

    #[test]
    fn tls_spellings() {
        let cfg = parse(&["--tls", "self-signed"]).expect("parse").resolve().expect("config");
        assert_eq!(cfg.tls, Some(TlsConfig::SelfSigned { ca_file: None }));
        assert_eq!(cfg.public_url, "https://127.0.0.1:9229", "TLS makes the default public URL https");
        let cfg = parse(&["--tls-cert", "a.pem", "--tls-key", "b.pem"]).expect("parse").resolve().expect("config");
        assert_eq!(cfg.tls, Some(TlsConfig::Files { cert: "a.pem".into(), key: "b.pem".into() }));
        let cfg = parse(&["--tls", "self-signed", "--ephemeral", "--tls-ca-file", "ca.pem"]).expect("parse");
        assert_eq!(cfg.resolve().expect("config").tls, Some(TlsConfig::SelfSigned { ca_file: Some("ca.pem".into()) }));
        // `off` wins over a certificate configured in a lower layer.
        let (_dir, path) = file("tls_cert = \"a.pem\"\ntls_key = \"b.pem\"\n");
        let args = ServeArgs { config: Some(path), tls: Some(TlsMode::Off), ..Default::default() };
        assert_eq!(args.resolve().expect("config").tls, None);
        for (bad, key) in [
            (&["--tls-cert", "a.pem"][..], "tls_cert"),
            (&["--tls-key", "b.pem"][..], "tls_key"),
            (&["--tls", "self-signed", "--tls-cert", "a.pem", "--tls-key", "b.pem"][..], "tls"),
            (&["--tls-ca-file", "ca.pem"][..], "tls_ca_file"),
        ] {
            let err = parse(bad).expect("parse").resolve().expect_err("must fail");
            assert!(err.to_string().contains(key), "{bad:?}: {err}");
        }
        assert!(parse(&["--tls", "yes-please"]).is_err());
    }
}
