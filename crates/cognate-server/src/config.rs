//! Layered configuration: built-in defaults < TOML file (`--config`) < `COGNATE_*` environment
//! < command-line flags. The result is one immutable [`Config`] handed to the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use cognate_api::Sensitive;
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

/// Outbox messages kept per pool by default: what one default outbox read returns (its page
/// size), far more than a test run or a developer reads back, while bounding the table (and
/// the index walk that finds a pool's overflow on each append) to a thousand rows a pool.
pub const DEFAULT_OUTBOX_MAX_PER_POOL: u64 = 1000;

/// The documented default pair: what `aws --endpoint-url ...` users set in their shell.
pub const DEFAULT_ACCESS_KEY: &str = "test";
pub const DEFAULT_SECRET_KEY: &str = "test";

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Sensitive<String>>,
    pub from: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmtp {
    host: Option<String>,
    port: Option<u16>,
    security: Option<SmtpSecurity>,
    username: Option<String>,
    password: Option<String>,
    from: Option<String>,
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

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://...` selects PostgreSQL; absent means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL schema holding Cognate's tables.
    pub database_schema: String,
    pub public_url: String,
    pub region: String,
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
}

impl Config {
    pub fn uses_default_credentials(&self) -> bool {
        self.credentials
            .iter()
            .any(|c| c.access_key_id == DEFAULT_ACCESS_KEY && c.secret_access_key == DEFAULT_SECRET_KEY)
    }

    pub fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.credentials.iter().find(|c| c.access_key_id == access_key_id).map(|c| c.secret_access_key.clone())
    }
}

/// The TOML file: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_schema: Option<String>,
    public_url: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    credentials: Option<Vec<Credential>>,
    sigv4_max_skew_seconds: Option<u64>,
    accept_any_signature: Option<bool>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    previous_master_keys: Option<Vec<String>>,
    max_request_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    smtp: Option<FileSmtp>,
    outbox_public: Option<bool>,
    outbox_retention_seconds: Option<u64>,
    outbox_max_per_pool: Option<u64>,
    rate_limits: Option<RateLimitConfig>,
    import_lease_seconds: Option<u64>,
}

/// Flags of `cognate serve`; each has a `COGNATE_*` environment form (clap gives the flag
/// precedence over the variable).
#[derive(Default, Args)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:9229]
    #[arg(long, env = "COGNATE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Directory for the embedded database and generated keys [default: ./.cognate]
    #[arg(long, env = "COGNATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A postgres:// URL selects PostgreSQL; absent means embedded SQLite in the data dir
    #[arg(long, env = "COGNATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// PostgreSQL schema for Cognate's tables [default: public]
    #[arg(long, env = "COGNATE_DATABASE_SCHEMA", value_name = "NAME")]
    pub database_schema: Option<String>,
    /// TOML configuration file
    #[arg(long, env = "COGNATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Public base URL (token issuer, pre-signed URLs) [default: http://<listen>]
    #[arg(long, env = "COGNATE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// AWS region reported in ids and ARNs [default: us-east-1]
    #[arg(long, env = "COGNATE_REGION")]
    pub region: Option<String>,
    /// AWS account id reported in ARNs [default: 000000000000]
    #[arg(long, env = "COGNATE_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Access key id accepted on signed operations (replaces the default pair `test`/`test`)
    #[arg(long, env = "COGNATE_ACCESS_KEY_ID", requires = "secret_access_key")]
    pub access_key_id: Option<String>,
    /// Secret access key for --access-key-id
    #[arg(long, env = "COGNATE_SECRET_ACCESS_KEY", hide_env_values = true, requires = "access_key_id")]
    pub secret_access_key: Option<String>,
    /// Accepted clock skew of SigV4-signed requests, in seconds [default: 300]
    #[arg(long, env = "COGNATE_SIGV4_MAX_SKEW_SECONDS")]
    pub sigv4_max_skew_seconds: Option<u64>,
    /// Development only: accept any SigV4 signature from any access key
    #[arg(long, env = "COGNATE_ACCEPT_ANY_SIGNATURE")]
    pub accept_any_signature: Option<bool>,
    /// Master key (base64 of 32 bytes) encrypting secrets at rest
    #[arg(long, env = "COGNATE_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// File holding the master key (base64)
    #[arg(long, env = "COGNATE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Largest accepted request body in bytes [default: 1048576]
    #[arg(long, env = "COGNATE_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "COGNATE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or cognate=debug [default: info]
    #[arg(long, env = "COGNATE_LOG")]
    pub log_level: Option<String>,
    /// SMTP server for email delivery (without it, email goes only to the outbox)
    #[arg(long, env = "COGNATE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 587 for starttls, 465 for tls, 25 for none]
    #[arg(long, env = "COGNATE_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// SMTP security: starttls, tls or none [default: starttls]
    #[arg(long, env = "COGNATE_SMTP_SECURITY")]
    pub smtp_security: Option<String>,
    /// SMTP user name
    #[arg(long, env = "COGNATE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password
    #[arg(long, env = "COGNATE_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// From address of Cognate's email [default: no-reply@cognate.local]
    #[arg(long, env = "COGNATE_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// Serve /_cognate/outbox to non-loopback clients too (it shows codes: development only)
    #[arg(long, env = "COGNATE_OUTBOX_PUBLIC")]
    pub outbox_public: Option<bool>,
    /// Seconds outbox messages are kept [default: 86400]
    #[arg(long, env = "COGNATE_OUTBOX_RETENTION_SECONDS", value_name = "SECONDS")]
    pub outbox_retention_seconds: Option<u64>,
    /// Most outbox messages kept per user pool, the oldest going first [default: 1000]
    #[arg(long, env = "COGNATE_OUTBOX_MAX_PER_POOL", value_name = "COUNT")]
    pub outbox_max_per_pool: Option<u64>,
    /// Enforce Cognito's request-rate quotas (TooManyRequestsException) [default: false]
    #[arg(long, env = "COGNATE_RATE_LIMITS")]
    pub rate_limits: Option<bool>,
    /// Seconds before an import job left by a stopped node is resumed by another [default: 30]
    #[arg(long, env = "COGNATE_IMPORT_LEASE_SECONDS", value_name = "SECONDS")]
    pub import_lease_seconds: Option<u64>,
    /// Seed file (JSON) applied at start: creates what is missing, leaves what exists
    #[arg(long, env = "COGNATE_SEED", value_name = "FILE")]
    pub seed: Option<PathBuf>,
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

impl ServeArgs {
    /// Merges defaults, the TOML file and these arguments (which already include the env).
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = pick(&self.listen, file.listen).unwrap_or_else(|| "127.0.0.1:9229".into());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| ConfigError::Value { key: "listen", message: format!("'{listen_text}' is not ADDR:PORT") })?;
        let log_format = match pick(&self.log_format, None) {
            Some(text) => match text.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Value {
                        key: "log_format",
                        message: format!("'{other}' is not text or json"),
                    })
                }
            },
            None => file.log_format.unwrap_or(LogFormat::Text),
        };
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
        let public_url = pick(&self.public_url, file.public_url)
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| default_public_url(listen));
        let database_url = pick(&self.database_url, file.database_url).filter(|u| !u.is_empty());
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Value {
                    key: "database_url",
                    message: "only postgres:// URLs are supported (omit it for embedded SQLite)".into(),
                });
            }
        }
        let region = pick(&self.region, file.region).unwrap_or_else(|| "us-east-1".into());
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ConfigError::Value { key: "region", message: format!("'{region}' is not a region name") });
        }
        let account_id = pick(&self.account_id, file.account_id).unwrap_or_else(|| "000000000000".into());
        if account_id.len() != 12 || !account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ConfigError::Value { key: "account_id", message: "must be 12 digits".into() });
        }
        let smtp = self.resolve_smtp(file.smtp.unwrap_or_default())?;
        let mut rate_limits = file.rate_limits.unwrap_or_default();
        if let Some(enabled) = self.rate_limits {
            rate_limits.enabled = enabled;
        }
        if let Some(unknown) =
            rate_limits.per_second.keys().find(|k| !crate::ratelimit::DEFAULTS.iter().any(|(n, _)| n == k))
        {
            return Err(ConfigError::Value {
                key: "rate_limits.per_second",
                message: format!("unknown quota category '{unknown}'"),
            });
        }
        let import_lease_seconds = pick(&self.import_lease_seconds, file.import_lease_seconds).unwrap_or(30);
        if import_lease_seconds == 0 {
            return Err(ConfigError::Value { key: "import_lease_seconds", message: "must be at least 1".into() });
        }
        // A day, like the longest-lived code; at least one of each, or the outbox would be
        // emptied as it is written.
        let outbox_retention_seconds =
            pick(&self.outbox_retention_seconds, file.outbox_retention_seconds).unwrap_or(86_400);
        if outbox_retention_seconds == 0 {
            return Err(ConfigError::Value { key: "outbox_retention_seconds", message: "must be at least 1".into() });
        }
        let outbox_max_per_pool =
            pick(&self.outbox_max_per_pool, file.outbox_max_per_pool).unwrap_or(DEFAULT_OUTBOX_MAX_PER_POOL);
        if outbox_max_per_pool == 0 {
            return Err(ConfigError::Value { key: "outbox_max_per_pool", message: "must be at least 1".into() });
        }
        Ok(Config {
            import_lease_seconds,
            outbox_retention_seconds,
            outbox_max_per_pool,
            smtp,
            rate_limits,
            outbox_public: pick(&self.outbox_public, file.outbox_public).unwrap_or(false),
            listen,
            data_dir: pick(&self.data_dir, file.data_dir).unwrap_or_else(|| PathBuf::from("./.cognate")),
            database_url,
            database_schema: pick(&self.database_schema, file.database_schema).unwrap_or_else(|| "public".into()),
            public_url,
            region,
            account_id,
            credentials,
            sigv4_max_skew_seconds: pick(&self.sigv4_max_skew_seconds, file.sigv4_max_skew_seconds).unwrap_or(300),
            accept_any_signature: pick(&self.accept_any_signature, file.accept_any_signature).unwrap_or(false),
            master_key: pick(&self.master_key, file.master_key).map(Sensitive),
            master_key_file: pick(&self.master_key_file, file.master_key_file),
            previous_master_keys: file.previous_master_keys.unwrap_or_default().into_iter().map(Sensitive).collect(),
            max_request_bytes: pick(&self.max_request_bytes, file.max_request_bytes).unwrap_or(1 << 20),
            log_format,
            log_level: pick(&self.log_level, file.log_level).unwrap_or_else(|| "info".into()),
        })
    }
}

impl ServeArgs {
    fn resolve_smtp(&self, file: FileSmtp) -> Result<Option<SmtpConfig>, ConfigError> {
        let Some(host) = pick(&self.smtp_host, file.host) else {
            return Ok(None);
        };
        let security = match pick(&self.smtp_security, None) {
            Some(text) => match text.as_str() {
                "tls" => SmtpSecurity::Tls,
                "starttls" => SmtpSecurity::Starttls,
                "none" => SmtpSecurity::None,
                other => {
                    return Err(ConfigError::Value {
                        key: "smtp.security",
                        message: format!("'{other}' is not starttls, tls or none"),
                    })
                }
            },
            None => file.security.unwrap_or(SmtpSecurity::Starttls),
        };
        let default_port = match security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        };
        Ok(Some(SmtpConfig {
            host,
            port: pick(&self.smtp_port, file.port).unwrap_or(default_port),
            security,
            username: pick(&self.smtp_username, file.username),
            password: pick(&self.smtp_password, file.password).map(Sensitive),
            from: pick(&self.smtp_from, file.from).unwrap_or_else(|| "no-reply@cognate.local".into()),
        }))
    }
}

fn pick<T: Clone>(flag_or_env: &Option<T>, file: Option<T>) -> Option<T> {
    flag_or_env.clone().or(file)
}

fn default_public_url(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
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
        let args = ServeArgs { config: Some(path.clone()), region: Some("ap-south-1".into()), ..Default::default() };
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
}
