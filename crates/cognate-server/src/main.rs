//! `cognate`: a Cognito-compatible identity server.

#[cfg(test)]
mod compat;
mod config;
mod credentials;
mod fetch;
mod front;
mod hosted;
mod http;
#[cfg(test)]
mod layering;
mod oauth;
mod ops;
mod outbox;
mod region;
mod seed;
mod state;
mod sts;
mod tls;
mod wellknown;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use cognate_crypto::envelope::{load_or_create_key_file, Keyring, MasterKey};

use cognate_core::{Clock, Core, Ctx, OffsetClock, SystemClock};

use crate::config::{Config, LogFormat, ServeArgs};
use crate::state::AppState;

#[derive(Parser)]
#[command(name = "cognate", version, about = "A Cognito-compatible identity server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server
    Serve(Box<ServeArgs>),
    /// Print the messages Cognate delivered (codes, invitations) as JSON
    Outbox(Box<OutboxArgs>),
    /// Print the current state as a seed file (JSON) for `cognate serve --seed`
    Export(Box<ExportArgs>),
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Include app client secrets (in plain text)
    #[arg(long)]
    with_secrets: bool,
    /// The same store settings as `cognate serve` (data dir, database URL, config file)
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args)]
struct OutboxArgs {
    /// Only messages of this user pool
    #[arg(long)]
    pool: Option<String>,
    /// Only messages to this username
    #[arg(long)]
    user: Option<String>,
    /// The same store settings as `cognate serve` (data dir, database URL, config file)
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => finish(serve(&args)),
        Command::Outbox(args) => finish(print_outbox(&args)),
        Command::Export(args) => finish(print_export(&args)),
    }
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cognate: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_outbox(args: &OutboxArgs) -> Result<(), String> {
    let config = args.serve.resolve().map_err(|e| e.to_string())?;
    refuse_ephemeral(&config)?;
    if config.database_url.is_none() && !config.data_dir.join("cognate.db").exists() {
        return Err(format!("no Cognate database in {}", config.data_dir.display()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    // The messages are sealed under the master key: the same key `cognate serve` uses.
    let keyring = load_keyring(&config)?;
    let store = runtime.block_on(open_store(&config))?;
    let query =
        cognate_core::outbox::OutboxQuery { pool: args.pool.clone(), user: args.user.clone(), ..Default::default() };
    let body = cognate_core::outbox::read(store.as_ref(), &keyring, &query)
        .map_err(|e| format!("cannot read the outbox: {e}"))?;
    // The store's blocking clients must be dropped off the runtime's threads.
    drop(store);
    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    Ok(())
}

fn print_export(args: &ExportArgs) -> Result<(), String> {
    let config = args.serve.resolve().map_err(|e| e.to_string())?;
    refuse_ephemeral(&config)?;
    if config.database_url.is_none() && !config.data_dir.join("cognate.db").exists() {
        return Err(format!("no Cognate database in {}", config.data_dir.display()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let text = runtime.block_on(async {
        let state = build_state(config).await?;
        let exported = seed::export(&system_ctx(&state), args.with_secrets).await.map_err(|e| e.message)?;
        let mut value = serde_json::to_value(&exported).map_err(|e| e.to_string())?;
        // A client's pool is the entry it sits in: drop the request's own (empty) UserPoolId.
        for pool in value.get_mut("UserPools").and_then(|p| p.as_array_mut()).into_iter().flatten() {
            for client in pool.get_mut("Clients").and_then(|c| c.as_array_mut()).into_iter().flatten() {
                if let Some(entry) = client.as_object_mut() {
                    entry.remove("UserPoolId");
                }
            }
        }
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())
    })?;
    println!("{text}");
    Ok(())
}

/// `cognate outbox` and `export` read what a server kept; an ephemeral one keeps nothing.
fn refuse_ephemeral(config: &Config) -> Result<(), String> {
    if config.ephemeral {
        return Err("an --ephemeral server keeps nothing on disk to read: ask it over HTTP instead".into());
    }
    Ok(())
}

/// A context for work the server does on its own behalf (seeding, export).
fn system_ctx(state: &Arc<AppState>) -> Ctx {
    Ctx::system(&state.core, "system")
}

async fn build_state(config: Config) -> Result<Arc<AppState>, String> {
    // The data dir holds the SQLite database and keys, and the local CA of `--tls self-signed`.
    let self_signed = matches!(config.tls, Some(config::TlsConfig::SelfSigned { .. }));
    if !config.ephemeral && (config.database_url.is_none() || self_signed) {
        create_private_dir(&config.data_dir)
            .map_err(|e| format!("data dir {} is not writable: {e}", config.data_dir.display()))?;
    }
    let keyring = load_keyring(&config)?;
    let store = open_store(&config).await?;
    let core = Arc::new(Core {
        settings: config.settings(),
        store,
        keyring,
        clock: if config.clock_offset_seconds == 0 {
            Arc::new(SystemClock) as Arc<dyn Clock>
        } else {
            tracing::warn!(seconds = config.clock_offset_seconds, "the clock is shifted (--clock-offset-seconds)");
            Arc::new(OffsetClock(config.clock_offset_seconds))
        },
        keys: Default::default(),
        sync_changes: Default::default(),
        metrics: Default::default(),
        node_id: hex::encode(cognate_crypto::ids::random_bytes::<8>()),
        fetch: Arc::new(fetch::HttpFetch::new()?),
        jwks: Default::default(),
    });
    Ok(Arc::new(AppState { config, core }))
}

async fn apply_seed(state: &Arc<AppState>, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
    let parsed = seed::parse(&text).map_err(|e| format!("invalid seed file {}: {e}", path.display()))?;
    let applied = seed::apply(&system_ctx(state), parsed).await.map_err(|e| e.message)?;
    tracing::info!(path = %path.display(), created = applied.created, existing = applied.existing, "seed applied");
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let config = args.resolve().map_err(|e| e.to_string())?;
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(run(config, args.seed.clone()))
}

async fn run(config: Config, seed_file: Option<std::path::PathBuf>) -> Result<(), String> {
    let state = build_state(config).await?;
    let config = &state.config;
    let tls = tls::server_config(config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    if !config.listen.ip().is_loopback() && config.uses_default_credentials() {
        tracing::warn!(
            listen = %config.listen,
            "listening beyond loopback with the default access key pair test/test: anyone who can reach \
             this port can administer every pool. Configure credentials for anything but local development."
        );
    }
    if config.ephemeral && matches!(config.tls, Some(config::TlsConfig::SelfSigned { ca_file: None })) {
        tracing::warn!(
            "--tls self-signed --ephemeral keeps its CA in memory only, so no client can trust this server: \
             give --tls-ca-file FILE to have the CA certificate written there"
        );
    }
    if config.accept_any_signature {
        tracing::warn!("accept_any_signature is on: SigV4 signatures are NOT verified (development only)");
    }
    if let Some(path) = &seed_file {
        apply_seed(&state, path).await?;
    }
    tracing::info!(
        listen = %config.listen,
        store = state.core.store.backend(),
        public_url = %config.public_url,
        tls = tls_description(config),
        ephemeral = config.ephemeral,
        master_key = state.core.keyring.active_key_id(),
        "cognate ready"
    );
    // Import jobs left running by a node that stopped (this one before a restart, or another
    // on the same PostgreSQL) continue here once their lease runs out.
    ops::import_jobs::spawn_stalled_job_watch(Arc::clone(&state.core));
    cognate_core::sync_delivery::spawn(Arc::clone(&state.core));
    let app = http::router(Arc::clone(&state));
    serve_connections(listener, app, tls).await
}

fn tls_description(config: &Config) -> String {
    match &config.tls {
        None => "off".into(),
        Some(config::TlsConfig::Files { cert, .. }) => cert.display().to_string(),
        Some(config::TlsConfig::SelfSigned { ca_file }) => match (config.ephemeral, ca_file) {
            (true, None) => "self-signed (CA in memory only)".into(),
            (true, Some(path)) => format!("self-signed (CA certificate in {})", path.display()),
            (false, _) => {
                format!("self-signed (CA certificate in {})", config.data_dir.join(tls::CA_CERT_FILE).display())
            }
        },
    }
}

/// Serves `app` on `listener`, over TLS when `tls` is given, with graceful shutdown on
/// SIGINT/SIGTERM.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), String> {
    let served = match tls {
        None => {
            axum::serve(NoDelayListener(listener), app.into_make_service_with_connect_info::<PeerAddr>())
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls).map_err(|e| format!("cannot serve TLS: {e}"))?;
            axum::serve(listener, app.into_make_service_with_connect_info::<PeerAddr>())
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    };
    served.map_err(|e| format!("server failed: {e}"))
}

/// The next TCP connection, with TCP_NODELAY set (small request/response round trips otherwise
/// stall on Nagle with some clients).
async fn accept_tcp(listener: &tokio::net::TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                return (stream, addr);
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

struct NoDelayListener(tokio::net::TcpListener);

/// The client's address, for handlers that serve loopback clients only.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, NoDelayListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, NoDelayListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::serve::Listener for NoDelayListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        accept_tcp(&self.0).await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn load_keyring(config: &Config) -> Result<Keyring, String> {
    let active = if let Some(key) = &config.master_key {
        MasterKey::from_base64(key.expose().trim()).map_err(|e| format!("master_key: {e}"))?
    } else if let Some(path) = &config.master_key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read master key file {}: {e}", path.display()))?;
        MasterKey::from_base64(text.trim()).map_err(|e| format!("master key file {}: {e}", path.display()))?
    } else if config.ephemeral {
        // Nothing sealed under it outlives the process.
        MasterKey::generate().map_err(|e| format!("cannot generate a master key: {e}"))?
    } else if config.database_url.is_some() {
        // Every node of a PostgreSQL deployment must decrypt what the others sealed.
        return Err("PostgreSQL needs a master key shared by all nodes: set COGNATE_MASTER_KEY \
                    (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) or --master-key-file"
            .into());
    } else {
        let path = config.data_dir.join("master.key");
        let (key, created) =
            load_or_create_key_file(&path).map_err(|e| format!("cannot load or create {}: {e}", path.display()))?;
        if created {
            tracing::info!(path = %path.display(), "generated a new master key");
        } else {
            // A new key file is created 0600; one left by an older version may be wider.
            restrict_to_owner(&path);
        }
        key
    };
    let older = config
        .previous_master_keys
        .iter()
        .map(|k| MasterKey::from_base64(k.expose().trim()).map_err(|e| format!("previous_master_keys: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Keyring::new(active, older))
}

async fn open_store(config: &Config) -> Result<Arc<dyn cognate_store::Store>, String> {
    let url = config.database_url.clone();
    let schema = config.database_schema.clone();
    let sqlite_path = config.data_dir.join("cognate.db");
    let ephemeral = config.ephemeral;
    let opened = tokio::task::spawn_blocking(move || match url {
        // `resolve` refuses a database URL with --ephemeral.
        None if ephemeral => cognate_store::open_sqlite_in_memory(),
        Some(url) if schema == "public" => cognate_store::open_postgres(&url),
        Some(url) => cognate_store::open_postgres_in_schema(&url, &schema),
        None => {
            private_sqlite_files(&sqlite_path)
                .map_err(|e| cognate_store::StoreError::Backend(format!("{}: {e}", sqlite_path.display())))?;
            cognate_store::open_sqlite(&sqlite_path)
        }
    })
    .await
    .map_err(|e| format!("store start-up failed: {e}"))?;
    opened.map_err(|e| match &config.database_url {
        None if ephemeral => format!("cannot open the in-memory SQLite database: {e}"),
        Some(_) => format!("cannot open the PostgreSQL database: {e}"),
        None => format!("cannot open the SQLite database in {}: {e}", config.data_dir.display()),
    })
}

/// Creates `dir` (and missing parents) readable by the owner only (0700), set at creation so
/// it is never open to others even for an instant. An existing directory is left as the
/// operator made it (it may be shared on purpose), with a warning when others can enter it:
/// the files Cognate keeps in it are owner-only either way.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data dir is open to other users; its files are owner-only, but consider chmod 700"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        builder.create(dir)
    }
}

/// Makes the SQLite database owner-only (0600) before SQLite opens it: a missing file is
/// created empty with that mode (SQLite takes an empty file as a new database), and SQLite
/// creates its `-wal`, `-shm` and `-journal` files with the database file's mode, so none
/// of them is ever readable by others whatever the umask. Files left wider by an older
/// version are narrowed.
fn private_sqlite_files(db: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    drop(options.open(db)?);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        restrict_to_owner(std::path::Path::new(&name));
    }
    Ok(())
}

/// Removes group and other permissions from an existing file of ours (best effort: a file
/// we cannot change is reported, not fatal, as it may be a read-only mount).
fn restrict_to_owner(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot make the file owner-only");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
