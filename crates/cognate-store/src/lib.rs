//! Cognate's storage layer.
//!
//! Records keep their bulky configuration as an opaque JSON text (`doc`, whose
//! format the server owns) next to the few columns needed for lookups,
//! ordering and optimistic concurrency. Times are unix epoch milliseconds.
//!
//! The traits are synchronous: the server calls them inside
//! `tokio::task::spawn_blocking`. Calling them directly on an async worker
//! thread is a contract violation (the PostgreSQL client blocks on its own
//! runtime and would panic there).
//!
//! Two backends implement them with one body of SQL (see `sql.rs`): SQLite
//! (embedded, the default) and PostgreSQL (shared by several server processes).

mod db;
mod pg;
mod pool;
mod sql;
mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::path::Path;
use std::sync::Arc;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    #[error("modified concurrently")]
    VersionConflict,
    #[error("limit exceeded")]
    LimitExceeded,
    #[error("storage backend: {0}")]
    Backend(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserPoolRecord {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub doc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppClientRecord {
    pub pool_id: String,
    pub client_id: String,
    pub name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub doc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientSecretRecord {
    pub pool_id: String,
    pub client_id: String,
    pub secret_id: String,
    pub sealed_secret: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IdentityPoolRecord {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub doc: String,
}

/// Updates are compare-and-set on `version`: the caller passes the record with
/// its *new* version, and the update succeeds only if the stored version is
/// exactly one less. `created_ms` is never changed by an update.
pub trait UserPoolStore: Send + Sync {
    /// `AlreadyExists` on a duplicate id.
    fn insert_user_pool(&self, rec: &UserPoolRecord) -> StoreResult<()>;
    fn get_user_pool(&self, id: &str) -> StoreResult<Option<UserPoolRecord>>;
    /// `VersionConflict` if the stored version is not `rec.version - 1`,
    /// `NotFound` if there is no such pool.
    fn update_user_pool(&self, rec: &UserPoolRecord) -> StoreResult<()>;
    /// Also deletes the pool's app clients and their secrets, atomically.
    fn delete_user_pool(&self, id: &str) -> StoreResult<bool>;
    /// Ordered by id (byte order), strictly after `after_id`.
    fn list_user_pools(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<UserPoolRecord>>;
    fn count_user_pools(&self) -> StoreResult<u64>;
}

pub trait AppClientStore: Send + Sync {
    /// Inserts the client and, atomically with it, its first secret.
    /// `AlreadyExists` on a duplicate (pool_id, client_id); `NotFound` if the
    /// pool does not exist.
    fn insert_app_client(&self, rec: &AppClientRecord, first_secret: Option<&ClientSecretRecord>) -> StoreResult<()>;
    fn get_app_client(&self, pool_id: &str, client_id: &str) -> StoreResult<Option<AppClientRecord>>;
    /// Same compare-and-set rule as [`UserPoolStore::update_user_pool`].
    fn update_app_client(&self, rec: &AppClientRecord) -> StoreResult<()>;
    /// Also deletes the client's secrets.
    fn delete_app_client(&self, pool_id: &str, client_id: &str) -> StoreResult<bool>;
    /// Ordered by client_id (byte order), strictly after `after_client_id`.
    fn list_app_clients(
        &self,
        pool_id: &str,
        after_client_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<AppClientRecord>>;
    fn count_app_clients(&self, pool_id: &str) -> StoreResult<u64>;
}

pub trait ClientSecretStore: Send + Sync {
    /// `LimitExceeded` if the client already has `max_per_client` secrets
    /// (checked in the same transaction as the insert); `NotFound` if the
    /// client does not exist; `AlreadyExists` on a duplicate secret id.
    fn insert_client_secret(&self, rec: &ClientSecretRecord, max_per_client: u64) -> StoreResult<()>;
    /// Ordered by created_ms, then secret_id. Empty if the client does not exist.
    fn list_client_secrets(&self, pool_id: &str, client_id: &str) -> StoreResult<Vec<ClientSecretRecord>>;
    /// `LimitExceeded` if deleting would leave fewer than `keep_at_least`
    /// secrets; `Ok(false)` if there is no such secret (or client).
    fn delete_client_secret(
        &self,
        pool_id: &str,
        client_id: &str,
        secret_id: &str,
        keep_at_least: u64,
    ) -> StoreResult<bool>;
}

pub trait IdentityPoolStore: Send + Sync {
    /// `AlreadyExists` on a duplicate id.
    fn insert_identity_pool(&self, rec: &IdentityPoolRecord) -> StoreResult<()>;
    fn get_identity_pool(&self, id: &str) -> StoreResult<Option<IdentityPoolRecord>>;
    /// Same compare-and-set rule as [`UserPoolStore::update_user_pool`].
    fn update_identity_pool(&self, rec: &IdentityPoolRecord) -> StoreResult<()>;
    fn delete_identity_pool(&self, id: &str) -> StoreResult<bool>;
    /// Ordered by id (byte order), strictly after `after_id`.
    fn list_identity_pools(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<IdentityPoolRecord>>;
    fn count_identity_pools(&self) -> StoreResult<u64>;
}

pub trait Store: UserPoolStore + AppClientStore + ClientSecretStore + IdentityPoolStore + Send + Sync {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Cheap round trip to the database, for health checks.
    fn ping(&self) -> StoreResult<()>;
}

/// Opens (creating if missing) the SQLite database file at `path` and brings
/// its schema up to date.
pub fn open_sqlite(path: &Path) -> StoreResult<Arc<dyn Store>> {
    let backend = sqlite::SqliteBackend::open(path)?;
    Ok(Arc::new(sql::SqlStore::new(backend)))
}

/// Connects to PostgreSQL (`postgres://…` URL or key=value string, no TLS) and
/// brings the schema up to date. Safe to call from several processes at once.
pub fn open_postgres(url: &str) -> StoreResult<Arc<dyn Store>> {
    let backend = pg::PgBackend::open(url, None)?;
    Ok(Arc::new(sql::SqlStore::new(backend)))
}

/// Like [`open_postgres`], but keeps every table in `schema` (created if
/// missing; the name must be `[A-Za-z0-9_]+`), by setting `search_path` on
/// every connection. Meant for test isolation.
pub fn open_postgres_in_schema(url: &str, schema: &str) -> StoreResult<Arc<dyn Store>> {
    let backend = pg::PgBackend::open(url, Some(schema))?;
    Ok(Arc::new(sql::SqlStore::new(backend)))
}
