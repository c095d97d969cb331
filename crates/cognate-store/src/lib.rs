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
mod ids;
mod migrations;
mod pg;
mod pool;
mod sql;
mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::path::Path;
use std::sync::Arc;

pub use ids::{ClientId, IdentityPoolId, PoolId, Sub, UserStatus, UsernameKey};

pub type StoreResult<T> = Result<T, StoreError>;

/// The kinds of record the store keeps, named by [`StoreError`] so that a
/// caller can answer each in its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    UserPool,
    AppClient,
    ClientSecret,
    IdentityPool,
    User,
    Group,
    SigningKey,
    ImportJob,
    Identity,
    /// A login (provider and the provider's user id) linked to an identity.
    IdentityLogin,
    /// A Cognito Sync dataset of an identity.
    Dataset,
    /// A user pool's domain.
    Domain,
    /// An app client's managed login branding style.
    ManagedLoginBranding,
}

impl Entity {
    /// Lower-case words, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::UserPool => "user pool",
            Entity::AppClient => "app client",
            Entity::ClientSecret => "client secret",
            Entity::IdentityPool => "identity pool",
            Entity::User => "user",
            Entity::Group => "group",
            Entity::SigningKey => "signing key",
            Entity::ImportJob => "import job",
            Entity::Identity => "identity",
            Entity::IdentityLogin => "identity login",
            Entity::Dataset => "dataset",
            Entity::Domain => "domain",
            Entity::ManagedLoginBranding => "managed login branding",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the key (or another unique value) of the one being
    /// inserted exists already.
    #[error("{0} already exists")]
    AlreadyExists(Entity),
    /// The record an operation names, or a record it needs (e.g. the pool
    /// of a user being inserted), does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// A compare-and-set update lost: the record is at another version.
    #[error("{0} modified concurrently")]
    VersionConflict(Entity),
    #[error("limit exceeded")]
    LimitExceeded,
    /// An alias key (e.g. a verified email) is already held by another user
    /// of the pool; carries the alias kind (`"email"`, `"phone_number"`…).
    #[error("alias already taken: {0}")]
    AliasTaken(String),
    #[error("storage backend: {0}")]
    Backend(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserPoolRecord {
    pub id: PoolId,
    pub name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub doc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppClientRecord {
    pub pool_id: PoolId,
    pub client_id: ClientId,
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
    pub id: IdentityPoolId,
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
    /// Also deletes the pool's app clients with their secrets and branding styles, its users with
    /// their index rows and codes, its groups and their memberships, its
    /// outbox messages, its signing keys, its token revocations and its
    /// import jobs with their CSVs, atomically.
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
    /// The client with this id in any pool (public operations name a client by id alone).
    /// Generated ids are unique; if several pools hold the same id, the first pool id wins.
    fn get_app_client_by_id(&self, client_id: &str) -> StoreResult<Option<AppClientRecord>>;
    /// Same compare-and-set rule as [`UserPoolStore::update_user_pool`].
    fn update_app_client(&self, rec: &AppClientRecord) -> StoreResult<()>;
    /// Also deletes the client's secrets and its managed login branding style.
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
    /// Also deletes the pool's identities, their logins and their count.
    fn delete_identity_pool(&self, id: &str) -> StoreResult<bool>;
    /// Ordered by id (byte order), strictly after `after_id`.
    fn list_identity_pools(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<IdentityPoolRecord>>;
    fn count_identity_pools(&self) -> StoreResult<u64>;
}

/// An identity of an identity pool (Cognito federated identities): what GetId hands out and
/// credentials are issued for. Updates follow the same compare-and-set rule as
/// [`UserPoolStore::update_user_pool`]; `created_ms` is never changed by an update.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityRecord {
    pub identity_pool_id: IdentityPoolId,
    /// `<region>:<uuid>`; unique among all identities.
    pub identity_id: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    /// JSON text, opaque to the store.
    pub doc: String,
}

/// A login linked to an identity: the provider's name (`cognito-idp.<region>.amazonaws.com/<pool>`,
/// `accounts.google.com`, a developer provider name, ...) and the user's id there. Within an
/// identity pool a login is linked to at most one identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdentityLogin {
    pub provider: String,
    pub subject: String,
}

pub trait IdentityStore: Send + Sync {
    /// Inserts an identity with its logins, atomically. `AlreadyExists(Identity)` on a
    /// duplicate identity id; `AlreadyExists(IdentityLogin)` (and nothing written) if one of
    /// the logins is linked to an identity already, so that of two concurrent first sign-ins
    /// with one login exactly one creates an identity; `NotFound(IdentityPool)` if the pool
    /// does not exist.
    fn insert_identity(&self, rec: &IdentityRecord, logins: &[IdentityLogin]) -> StoreResult<()>;
    fn get_identity(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<Option<IdentityRecord>>;
    /// The identity with this id, whatever its pool (identity ids are unique overall, and
    /// GetCredentialsForIdentity, DescribeIdentity and DeleteIdentities name no pool).
    fn get_identity_by_id(&self, identity_id: &str) -> StoreResult<Option<IdentityRecord>>;
    /// The identity `login` is linked to in the pool.
    fn find_identity_by_login(
        &self,
        identity_pool_id: &str,
        login: &IdentityLogin,
    ) -> StoreResult<Option<IdentityRecord>>;
    /// The identity's logins, ordered by (provider, subject).
    fn list_identity_logins(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<Vec<IdentityLogin>>;
    /// Links `logins` to the identity (a login already linked to it is left as it is);
    /// `AlreadyExists(IdentityLogin)` (and nothing written) if one is linked to another
    /// identity; `NotFound(Identity)` if the identity does not exist.
    fn link_identity_logins(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        logins: &[IdentityLogin],
    ) -> StoreResult<()>;
    /// Unlinks those of `logins` that are linked to the identity; how many were.
    fn unlink_identity_logins(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        logins: &[IdentityLogin],
    ) -> StoreResult<u64>;
    /// Moves every login of `source` to `destination`, copies `source`'s live datasets to
    /// `destination` as merged datasets named `{name}.{source}` (with their live records,
    /// counted in the usage), and deletes `source`, atomically;
    /// `NotFound(Identity)` if either does not exist; an identity merged into itself is left
    /// as it is.
    fn merge_identities(&self, identity_pool_id: &str, source: &str, destination: &str) -> StoreResult<()>;
    /// Compare-and-set update of the identity's `doc`, `modified_ms` and `version`.
    fn update_identity(&self, rec: &IdentityRecord) -> StoreResult<()>;
    /// Deletes the identity and its logins.
    fn delete_identity(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<bool>;
    /// Ordered by identity id (byte order), strictly after `after`; each with its logins.
    /// Served by an index range scan: a page costs the same in a pool of a million.
    fn list_identities(
        &self,
        identity_pool_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(IdentityRecord, Vec<IdentityLogin>)>>;
    /// The pool's number of identities, without a scan of them (0 if the pool does not exist).
    fn count_identities(&self, identity_pool_id: &str) -> StoreResult<u64>;
}

/// A Cognito Sync dataset of an identity. Its `sync_count` rises by one with every change
/// (an UpdateRecords that changes something, a deletion); a deleted dataset is kept as a
/// tombstone (`deleted`, no records) so that clients syncing from before the deletion learn
/// of it, and a later update revives it with its count still rising.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetRecord {
    pub identity_pool_id: IdentityPoolId,
    pub identity_id: String,
    pub name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    /// Who made the last change (a device id, or the caller's identity id).
    pub last_modified_by: String,
    pub sync_count: i64,
    /// Live (not removed) records, and their bytes (key + value, UTF-8).
    pub num_records: i64,
    pub data_bytes: i64,
    pub deleted: bool,
}

/// A record of a dataset. A removed record stays, without a value, so that incremental
/// reads (records changed after a sync count) see removals; it does not count toward the
/// dataset's records or bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncRecord {
    pub key: String,
    pub value: Option<String>,
    /// The dataset's sync count when the record last changed.
    pub sync_count: i64,
    pub modified_ms: i64,
    pub last_modified_by: String,
    pub device_modified_ms: Option<i64>,
}

/// A dataset change queued for delivery (pushes to subscribed devices, the pool's stream):
/// the records it wrote are those of the dataset at `sync_count`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncChange {
    pub id: i64,
    pub identity_pool_id: String,
    pub identity_id: String,
    pub dataset: String,
    pub sync_count: i64,
    pub modified_by: String,
    pub created_ms: i64,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// One change of an UpdateRecords: set `key` to `value`, or remove it (`value` None), if the
/// record is still at `expected_sync_count` (0 for a record that does not exist yet, or was
/// never written).
#[derive(Clone, Debug, PartialEq)]
pub struct SyncPatch {
    pub key: String,
    pub value: Option<String>,
    pub expected_sync_count: i64,
    pub device_modified_ms: Option<i64>,
}

/// Cognito Sync's quotas, checked in the same transaction as the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncLimits {
    pub datasets_per_identity: u64,
    pub records_per_dataset: u64,
    pub bytes_per_dataset: u64,
}

/// Why an UpdateRecords changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncRefusal {
    /// A patch's `expected_sync_count` is not its record's sync count.
    Conflict { key: String },
    /// The identity would have more datasets than allowed.
    TooManyDatasets,
    /// The dataset would have more live records than allowed.
    TooManyRecords,
    /// The dataset would hold more bytes than allowed.
    TooManyBytes,
}

/// An identity's usage, kept exact as datasets change (no scan on reads).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SyncUsage {
    pub datasets: i64,
    pub data_bytes: i64,
    pub modified_ms: i64,
}

pub trait SyncStore: Send + Sync {
    /// The dataset, tombstones included (`deleted`).
    fn get_dataset(&self, identity_pool_id: &str, identity_id: &str, name: &str) -> StoreResult<Option<DatasetRecord>>;
    /// The identity's live datasets, by name (byte order), strictly after `after`.
    fn list_datasets(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<DatasetRecord>>;
    /// Records (removed ones included) whose sync count is above `after_sync_count`, ordered
    /// by (sync_count, key), strictly after `after` = (sync count, key) when given. An index
    /// range scan: a page costs the same in a dataset of any size.
    fn list_sync_records(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        name: &str,
        after_sync_count: i64,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<SyncRecord>>;
    /// The dataset (tombstones included) and [`SyncStore::list_sync_records`]'s page of it, as
    /// of one moment: no record is newer than the dataset's sync count answered with it.
    #[allow(clippy::too_many_arguments)]
    fn list_dataset_records(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        name: &str,
        after_sync_count: i64,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StoreResult<(Option<DatasetRecord>, Vec<SyncRecord>)>;
    /// Applies every patch or none, atomically (two concurrent calls on one dataset are
    /// serialised: each sees the other's result). Creates (or revives) the dataset on its first
    /// change; the dataset's sync count rises by one and every patched record takes it.
    /// Patches that change nothing (a removal of an absent or already removed record) are not
    /// written and do not take the new sync count; a call whose patches all change nothing (or
    /// that has none) writes nothing at all: the dataset's sync count does not rise, and a
    /// dataset that does not exist is not created (the returned dataset is then a never-stored
    /// `deleted` one at sync count 0). Every patch's `expected_sync_count` is checked against
    /// the record as stored before the call; of several patches of one key the last wins.
    /// A limit is refused only by a change that grows past it (`datasets_per_identity`: a new
    /// or revived dataset; records and bytes: a count that rises above the limit), so a
    /// dataset over a lowered limit can still shrink. Refusals are checked in the order
    /// `Conflict`, `TooManyDatasets`, `TooManyRecords`, `TooManyBytes`.
    /// Returns the dataset after the call and the records of the patched keys after it, by
    /// key (a key without a record, e.g. a removal of an absent one, is left out), or why
    /// nothing changed. `NotFound(Identity)` if the identity does not exist.
    /// With `notify`, a call that changes the dataset also queues a [`SyncChange`] in the same
    /// transaction (see [`SyncStore::claim_sync_changes`]).
    #[allow(clippy::too_many_arguments)]
    fn update_sync_records(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        name: &str,
        patches: &[SyncPatch],
        modified_by: &str,
        now_ms: i64,
        limits: &SyncLimits,
        notify: bool,
    ) -> StoreResult<Result<(DatasetRecord, Vec<SyncRecord>), SyncRefusal>>;
    /// Claims up to `limit` queued changes, oldest first, that no one holds (never claimed, or
    /// whose claim ran out by `now_ms`): each is held until `now_ms + lease_ms` and its
    /// `attempts` counts this claim. Claims are exclusive across nodes.
    fn claim_sync_changes(&self, now_ms: i64, lease_ms: i64, limit: usize) -> StoreResult<Vec<SyncChange>>;
    /// Removes a delivered (or abandoned) change; false if it was gone.
    fn finish_sync_change(&self, id: i64) -> StoreResult<bool>;
    /// Hands a claimed change back, due again at `retry_at_ms` (a delivery that failed);
    /// false if it was gone.
    fn retry_sync_change(&self, id: i64, retry_at_ms: i64) -> StoreResult<bool>;
    /// Deletes the dataset's records and leaves a tombstone at the next sync count (its
    /// `modified_ms` is `now_ms`, `last_modified_by` is left as it was); false if there was no
    /// live dataset.
    fn delete_dataset(&self, identity_pool_id: &str, identity_id: &str, name: &str, now_ms: i64) -> StoreResult<bool>;
    /// The identity's usage (0s for one without datasets).
    fn identity_sync_usage(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<SyncUsage>;
    /// The identity pool's usage: `data_bytes` of its live datasets; `datasets` is how many
    /// identities have any live dataset (not how many datasets there are); `modified_ms` the
    /// last sync change in the pool (0s for a pool without any). Deleting an identity (or
    /// merging it into another) deletes its sync data and takes it out of the pool's usage.
    fn pool_sync_usage(&self, identity_pool_id: &str) -> StoreResult<SyncUsage>;
}

/// A user of a user pool. Updates follow the same compare-and-set rule as
/// [`UserPoolStore::update_user_pool`]; `created_ms` and `sub` are never
/// changed by an update.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub pool_id: PoolId,
    /// As the user chose it (shown).
    pub username: String,
    /// The lookup key (lower-cased by the server for case-insensitive
    /// pools); unique per pool.
    pub username_key: UsernameKey,
    /// UUID; unique per pool.
    pub sub: Sub,
    pub status: UserStatus,
    pub enabled: bool,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    /// JSON text, opaque to the store.
    pub attributes: String,
    /// Sealed password verifier, opaque to the store.
    pub password: Option<String>,
    /// Other JSON state, opaque to the store.
    pub doc: String,
}

/// What the store indexes for a user, computed by the server and replaced
/// wholesale on every write of the user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserIndex {
    /// `(attribute, value)` pairs that [`UserStore::search_users`] finds the
    /// user by. Duplicate pairs are stored once.
    pub search: Vec<(String, String)>,
    /// `(kind, key)` pairs, e.g. `("email", "a@b.c")`, each unique among all
    /// users of the pool. Duplicate pairs are stored once.
    pub aliases: Vec<(String, String)>,
}

pub trait UserStore: Send + Sync {
    /// Inserts the user with its index rows and bumps the pool's user count,
    /// atomically. `AlreadyExists` on a duplicate `username_key` or `sub`;
    /// `AliasTaken(kind)` if another user holds one of the aliases;
    /// `NotFound` if the pool does not exist.
    fn insert_user(&self, user: &UserRecord, index: &UserIndex) -> StoreResult<()>;
    /// Compare-and-set update (`VersionConflict` / `NotFound` as for pools)
    /// that also replaces the user's search and alias rows, atomically.
    /// `AliasTaken(kind)` if another user holds one of the new aliases (and
    /// then nothing changes).
    fn update_user(&self, user: &UserRecord, index: &UserIndex) -> StoreResult<()>;
    fn get_user(&self, pool_id: &str, username_key: &UsernameKey) -> StoreResult<Option<UserRecord>>;
    fn get_user_by_sub(&self, pool_id: &str, sub: &str) -> StoreResult<Option<UserRecord>>;
    fn get_user_by_alias(&self, pool_id: &str, kind: &str, key: &str) -> StoreResult<Option<UserRecord>>;
    /// Also deletes the user's index rows, codes and group memberships (not
    /// its outbox messages), and decrements the pool's user count.
    fn delete_user(&self, pool_id: &str, username_key: &UsernameKey) -> StoreResult<bool>;
    /// Ordered by `username_key` (byte order), strictly after `after`.
    fn list_users(&self, pool_id: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<UserRecord>>;
    /// Users with a search pair `(attribute, v)` where `v` equals `value`
    /// (or, with `prefix`, starts with it, compared as Unicode scalar values:
    /// no wildcards), ordered by `(v, username_key)` (byte order), strictly
    /// after `after = (v, username_key)`. A user with several matching values
    /// for the attribute appears once per value. Served by an index range
    /// scan: the cost of a page does not grow with the pool.
    fn search_users(
        &self,
        pool_id: &str,
        attribute: &str,
        value: &str,
        prefix: bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>>;
    /// The pool's number of users, from counters kept beside the pool
    /// (at most 16 rows read); 0 if the pool does not exist.
    fn count_users(&self, pool_id: &str) -> StoreResult<u64>;
}

/// A one-time code (sign-up confirmation, password reset, attribute
/// verification), stored as a hash.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeRecord {
    pub pool_id: String,
    pub username_key: UsernameKey,
    pub purpose: String,
    pub code_hash: String,
    pub expires_ms: i64,
    pub attempts_left: i64,
    pub created_ms: i64,
}

/// The outcome of [`CodeStore::check_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code matched, and has been deleted: it is single use.
    Accepted,
    /// The code did not match; `attempts_left` is the decremented count
    /// (0 means the next check answers `TooManyAttempts`).
    Mismatch { attempts_left: i64 },
    /// `now_ms >= expires_ms`; the code is kept.
    Expired,
    /// No attempts left; the code is kept.
    TooManyAttempts,
    /// There is no code for this user and purpose.
    Missing,
}

pub trait CodeStore: Send + Sync {
    /// Stores the code, replacing any code of the same (pool, user,
    /// purpose). `NotFound` if the user does not exist.
    fn put_code(&self, code: &CodeRecord) -> StoreResult<()>;
    /// Checks a code in one transaction (see [`CodeCheck`]): of several
    /// concurrent checks of the right code, exactly one is `Accepted`.
    fn check_code(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        purpose: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<CodeCheck>;
    /// Like [`CodeStore::check_code`], except that an `Accepted` code is kept
    /// (a mismatch still uses up an attempt): for a check that must come
    /// before other checks of the same request, which may still refuse it.
    fn check_code_keeping_it(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        purpose: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<CodeCheck>;
    /// Like [`CodeStore::check_code`], and when the code is `Accepted`,
    /// applies [`UserStore::update_user`] with `user` and `index` in the same
    /// transaction. If that update fails (`VersionConflict`, `AliasTaken`…)
    /// nothing changes, the code is not consumed, and the error is returned.
    /// `user` must be the user the code belongs to.
    #[allow(clippy::too_many_arguments)]
    fn check_code_and_update_user(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        purpose: &str,
        code_hash: &str,
        now_ms: i64,
        user: &UserRecord,
        index: &UserIndex,
    ) -> StoreResult<CodeCheck>;
    fn delete_code(&self, pool_id: &str, username_key: &UsernameKey, purpose: &str) -> StoreResult<bool>;
}

/// A message Cognate sent (or would have sent), kept for development.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    /// Assigned by the store, increasing; ignored by `append_message`.
    pub id: i64,
    pub pool_id: String,
    pub username: String,
    /// `EMAIL` or `SMS`.
    pub channel: String,
    pub destination: String,
    pub code: Option<String>,
    pub subject: Option<String>,
    pub body: String,
    pub created_ms: i64,
}

/// How long, and how many per pool, outbox messages are kept (see
/// [`OutboxStore::append_message_pruned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxRetention {
    /// Messages with `created_ms` at or before the new message's
    /// `created_ms` minus this are deleted.
    pub max_age_ms: i64,
    /// Most messages kept per pool: beyond it, the pool's oldest go.
    pub max_per_pool: u64,
}

/// The outbox is a log: messages outlive their user, but are deleted with
/// their pool, and [`OutboxStore::append_message_pruned`] bounds it.
pub trait OutboxStore: Send + Sync {
    /// Returns the id assigned to the message: ids increase, and within a
    /// pool they increase in commit order, so paging a pool's messages with
    /// `after_id` never skips one. `NotFound` if the pool does not exist.
    /// Keeps every message (tests, benchmarks); the server appends with
    /// [`OutboxStore::append_message_pruned`].
    fn append_message(&self, msg: &OutboxMessage) -> StoreResult<i64>;
    /// [`OutboxStore::append_message`], and in the same transaction deletes
    /// what `retention` no longer keeps: messages of any pool older than
    /// `max_age_ms` before `msg.created_ms`, and this pool's oldest beyond
    /// `max_per_pool`. The work is bounded (at most a small batch of rows
    /// each, found through indexes), so a backlog, e.g. after the limits
    /// were lowered, drains over the following appends.
    fn append_message_pruned(&self, msg: &OutboxMessage, retention: &OutboxRetention) -> StoreResult<i64>;
    /// Messages matching the given filters, ordered by id, with id strictly
    /// greater than `after_id`.
    fn list_messages(
        &self,
        pool_id: Option<&str>,
        username: Option<&str>,
        after_id: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<OutboxMessage>>;
}

/// A pool's token signing key pair. At most one per (pool, purpose); `kid`
/// is unique within the pool.
#[derive(Clone, Debug, PartialEq)]
pub struct SigningKeyRecord {
    pub pool_id: String,
    pub kid: String,
    /// `"id"` or `"access"`; opaque to the store.
    pub purpose: String,
    /// Sealed private key, opaque to the store.
    pub sealed_private_key: String,
    /// The public key as a JWK, JSON text, opaque to the store.
    pub public_jwk: String,
    pub created_ms: i64,
}

pub trait KeyStore: Send + Sync {
    /// Inserts `rec` unless the pool already has a key for `rec.purpose`;
    /// returns the key stored for that purpose (the existing one if another
    /// node won the race: concurrent callers all get the same key).
    /// `NotFound` if the pool does not exist; `AlreadyExists` if another
    /// purpose's key of the pool already has `rec.kid`.
    fn ensure_signing_key(&self, rec: &SigningKeyRecord) -> StoreResult<SigningKeyRecord>;
    /// All keys of the pool (every purpose), ordered by created_ms then kid
    /// (byte order). Empty if the pool does not exist.
    fn list_signing_keys(&self, pool_id: &str) -> StoreResult<Vec<SigningKeyRecord>>;
}

pub trait TokenStore: Send + Sync {
    /// Marks every token sharing `origin_jti` in the pool as revoked; kept
    /// until `expires_ms` (idempotent; a later call may extend it, never
    /// shorten it). Revocations whose `expires_ms` has passed (wall clock)
    /// are purged a few at a time by later calls. `NotFound` if the pool
    /// does not exist.
    fn revoke_token_family(&self, pool_id: &str, origin_jti: &str, expires_ms: i64) -> StoreResult<()>;
    /// Whether the family is revoked (a revocation not yet purged counts,
    /// even past its `expires_ms`).
    fn is_token_family_revoked(&self, pool_id: &str, origin_jti: &str) -> StoreResult<bool>;
    /// Single-use values (challenge sessions, SRP secret blocks): records
    /// `key` until `expires_ms` and returns true on its first use, false if
    /// it was already used and has not expired (`now_ms < expires_ms` of the
    /// recorded use). An expired entry counts as unused (the new use replaces
    /// it). Each call also purges a bounded number of expired entries. Of
    /// several concurrent calls with the same key, exactly one returns true.
    fn consume_once(&self, key: &str, expires_ms: i64, now_ms: i64) -> StoreResult<bool>;
}

/// The longest fixed window [`RateStore::hit_rate_window`] supports, in
/// milliseconds. The store does not know how long a caller's windows are, so
/// it takes every window to end at most this long after it starts.
pub const MAX_RATE_WINDOW_MS: i64 = 60_000;

/// How long after its end a window's count is kept at least, in
/// milliseconds (a margin for clocks that differ between nodes).
pub const RATE_WINDOW_RETENTION_MS: i64 = 60_000;

/// Fixed-window request counters, shared by every node on the database.
pub trait RateStore: Send + Sync {
    /// Counts one request against `key` in the fixed window that starts at
    /// `window_start_ms`, and returns the window's count after this request
    /// (1 for a window's first request). Atomic in one statement, so every
    /// node sharing the database sees one counter: of `n` concurrent hits on
    /// a window, each gets a different count, and the last gets `n` more than
    /// the window had. Windows are at most [`MAX_RATE_WINDOW_MS`] long; each
    /// call also purges a bounded number of windows that ended before
    /// `now_ms - RATE_WINDOW_RETENTION_MS`, i.e. whose `window_start_ms <=
    /// now_ms - MAX_RATE_WINDOW_MS - RATE_WINDOW_RETENTION_MS` (oldest
    /// first). A purged window hit again (by a node whose clock is that far
    /// behind) counts from 1 anew.
    fn hit_rate_window(&self, key: &str, window_start_ms: i64, now_ms: i64) -> StoreResult<u64>;
}

/// How an [`AttemptStore`] counter locks: the first `free` attempts are
/// allowed; reserving the `free`-th locks the key for `first_lock_ms`, and each
/// attempt after that (reserved once the lock has run out) doubles the lock,
/// up to `max_lock_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptPolicy {
    pub free: u32,
    pub first_lock_ms: i64,
    pub max_lock_ms: i64,
    /// How long a counter is kept after its last counted attempt.
    pub retention_ms: i64,
}

/// The outcome of [`AttemptStore::reserve_attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Counted: this is the `n`-th attempt since the counter was last cleared.
    Allowed(u32),
    /// Not counted: the key is locked until this time.
    Locked(i64),
}

/// Failed-attempt counters with lockout (sign-in, challenge answers, codes),
/// shared by every node on the database. A caller reserves an attempt
/// *before* it evaluates a guess and clears the counter when a guess is
/// right, so of any number of concurrent guesses at most `policy.free` are
/// evaluated before the key locks.
pub trait AttemptStore: Send + Sync {
    /// Atomically (one statement): unless `key` is locked at `now_ms`, counts
    /// one attempt, locking the key as `policy` says once the free attempts
    /// are used up. A locked key is not counted and its lock is not extended.
    fn reserve_attempt(&self, key: &str, policy: &AttemptPolicy, now_ms: i64) -> StoreResult<Attempt>;
    /// The end of the key's lock, if it is locked at `now_ms` (counts nothing).
    fn attempt_lock(&self, key: &str, now_ms: i64) -> StoreResult<Option<i64>>;
    /// Forgets the key's attempts and lock (a right guess, a new code).
    fn clear_attempts(&self, key: &str) -> StoreResult<()>;
}

/// A group of a user pool. Updates follow the same compare-and-set rule as
/// [`UserPoolStore::update_user_pool`]; `created_ms` is never changed by an
/// update, and `name` is the key.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRecord {
    pub pool_id: String,
    /// Unique per pool; listings order by it (byte order).
    pub name: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    /// JSON text, opaque to the store.
    pub doc: String,
    /// Lower wins when the server picks among a user's groups; opaque to the
    /// store.
    pub precedence: Option<i64>,
}

/// A user pool's domain: a prefix domain (`custom` false) or a custom domain. `doc` is
/// opaque JSON; updates are compare-and-set on `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainRecord {
    pub domain: String,
    pub pool_id: String,
    pub custom: bool,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub doc: String,
}

/// User pools' domains, unique across pools.
pub trait DomainStore: Send + Sync {
    /// `AlreadyExists(Domain)` if the name is any pool's already, or the pool has a domain
    /// of that kind (prefix or custom); `NotFound(UserPool)` if the pool does not exist.
    fn insert_domain(&self, rec: &DomainRecord) -> StoreResult<()>;
    fn get_domain(&self, domain: &str) -> StoreResult<Option<DomainRecord>>;
    /// The pool's domains (at most two), prefix first.
    fn list_pool_domains(&self, pool_id: &str) -> StoreResult<Vec<DomainRecord>>;
    /// Compare-and-set update of `modified_ms`, `version` and `doc`.
    fn update_domain(&self, rec: &DomainRecord) -> StoreResult<()>;
    /// False if the pool has no such domain.
    fn delete_domain(&self, pool_id: &str, domain: &str) -> StoreResult<bool>;
}

/// An app client's managed login branding style. `doc` is opaque JSON (the style's settings
/// and image files, which may reach megabytes: why brandings have rows of their own rather
/// than a place in the pool's document, which most operations read). Updates are
/// compare-and-set on `version`.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedLoginBrandingRecord {
    pub pool_id: String,
    /// Unique per pool (generated ids are UUIDs).
    pub branding_id: String,
    /// The app client the style belongs to; a client has at most one.
    pub client_id: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub doc: String,
}

/// Managed login branding styles. Deleting an app client, or its pool, deletes its style.
pub trait ManagedLoginBrandingStore: Send + Sync {
    /// `AlreadyExists(ManagedLoginBranding)` if the client has a style already (or the id is
    /// taken); `NotFound(UserPool)` / `NotFound(AppClient)` if the pool / client does not
    /// exist; `LimitExceeded` if the pool already has `max_per_pool` styles (checked in the
    /// same transaction as the insert).
    fn insert_managed_login_branding(&self, rec: &ManagedLoginBrandingRecord, max_per_pool: u64) -> StoreResult<()>;
    fn get_managed_login_branding(
        &self,
        pool_id: &str,
        branding_id: &str,
    ) -> StoreResult<Option<ManagedLoginBrandingRecord>>;
    /// The style of the pool's app client `client_id`, if it has one.
    fn get_client_managed_login_branding(
        &self,
        pool_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ManagedLoginBrandingRecord>>;
    /// Compare-and-set update of `modified_ms`, `version` and `doc`.
    fn update_managed_login_branding(&self, rec: &ManagedLoginBrandingRecord) -> StoreResult<()>;
    /// False if the pool has no such style.
    fn delete_managed_login_branding(&self, pool_id: &str, branding_id: &str) -> StoreResult<bool>;
}

/// Groups, and memberships of users (named by `username_key`) in them.
/// Deleting a group, a user or a pool deletes the memberships hanging off it.
pub trait GroupStore: Send + Sync {
    /// Inserts the group and bumps the pool's group count, atomically.
    /// `AlreadyExists` on a duplicate (pool_id, name); `NotFound` if the pool
    /// does not exist; `LimitExceeded` if the pool already has `max_groups`
    /// groups (checked in the same transaction as the insert).
    fn insert_group(&self, rec: &GroupRecord, max_groups: u64) -> StoreResult<()>;
    fn get_group(&self, pool_id: &str, name: &str) -> StoreResult<Option<GroupRecord>>;
    /// Compare-and-set update of `modified_ms`, `version`, `doc` and
    /// `precedence` (`VersionConflict` / `NotFound` as for pools).
    fn update_group(&self, rec: &GroupRecord) -> StoreResult<()>;
    /// Also deletes the group's memberships, and decrements the pool's group
    /// count, atomically.
    fn delete_group(&self, pool_id: &str, name: &str) -> StoreResult<bool>;
    /// Ordered by name (byte order), strictly after `after`.
    fn list_groups(&self, pool_id: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<GroupRecord>>;
    /// Adds a user to a group; idempotent: `Ok(false)` if the user already
    /// is a member (even at the limit). `NotFound` if the user or the group
    /// does not exist; `LimitExceeded` if the user already is in
    /// `max_groups_per_user` groups (checked in the same transaction as the
    /// insert, so concurrent adds cannot exceed it).
    fn add_user_to_group(
        &self,
        pool_id: &str,
        group: &str,
        username_key: &UsernameKey,
        max_groups_per_user: u64,
    ) -> StoreResult<bool>;
    /// `Ok(false)` if the user is not a member (or the user or group does
    /// not exist).
    fn remove_user_from_group(&self, pool_id: &str, group: &str, username_key: &UsernameKey) -> StoreResult<bool>;
    /// The groups of a user, ordered by name (byte order), strictly after
    /// the group name `after`. (The server orders by precedence itself,
    /// having fetched all of a user's groups.) Empty if the user does not
    /// exist.
    fn list_groups_for_user(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<GroupRecord>>;
    /// The members of a group, ordered by `username_key` (byte order),
    /// strictly after `after`. Served by an index range scan: the cost of a
    /// page does not grow with the group. Empty if the group does not exist.
    fn list_users_in_group(
        &self,
        pool_id: &str,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>>;
}

/// A user import job. Updates follow the same compare-and-set rule as
/// [`UserPoolStore::update_user_pool`]; `created_ms` is never changed by an
/// update, and `job_id` is the key.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportJobRecord {
    pub pool_id: String,
    /// Unique per pool; generated ids are unique across pools too (see
    /// [`ImportJobStore::get_import_job_by_id`]).
    pub job_id: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    /// JSON text, opaque to the store.
    pub doc: String,
    /// While a node imports the job: until when its claim holds (ms since
    /// the epoch). `None` when no node should be importing it.
    pub lease_until_ms: Option<i64>,
}

/// Works out the job record to write once the outcome of each user of an
/// import batch is known (see [`ImportJobStore::import_user_batch`]).
pub type ImportProgress = Box<dyn FnMut(&[StoreResult<()>]) -> ImportJobRecord + Send>;

/// User import jobs, and the CSV file uploaded for each. Deleting a pool
/// deletes its jobs and their CSVs.
pub trait ImportJobStore: Send + Sync {
    /// Inserts the job and bumps the pool's job count, atomically.
    /// `AlreadyExists` on a duplicate (pool_id, job_id); `NotFound` if the
    /// pool does not exist; `LimitExceeded` if the pool already has
    /// `max_jobs` jobs (checked in the same transaction as the insert).
    fn insert_import_job(&self, rec: &ImportJobRecord, max_jobs: u64) -> StoreResult<()>;
    fn get_import_job(&self, pool_id: &str, job_id: &str) -> StoreResult<Option<ImportJobRecord>>;
    /// The job with this id in any pool (upload URLs name the job only).
    /// Generated ids are unique; if several pools hold the same id, the
    /// first pool id (byte order) wins.
    fn get_import_job_by_id(&self, job_id: &str) -> StoreResult<Option<ImportJobRecord>>;
    /// Compare-and-set update of `modified_ms`, `version` and `doc`
    /// (`VersionConflict` / `NotFound` as for pools).
    fn update_import_job(&self, rec: &ImportJobRecord) -> StoreResult<()>;
    /// Newest first: ordered by `(created_ms, job_id)` descending (job ids
    /// in byte order, so jobs created in the same millisecond come in
    /// descending id order), strictly after `after = (created_ms, job_id)`,
    /// i.e. only jobs ordered below that position. Served by an index range
    /// scan: the cost of a page does not grow with the pool.
    fn list_import_jobs(
        &self,
        pool_id: &str,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<ImportJobRecord>>;
    /// Stores the job's uploaded CSV, replacing any earlier upload.
    /// `NotFound` if the job does not exist.
    fn put_import_csv(&self, pool_id: &str, job_id: &str, csv: &[u8]) -> StoreResult<()>;
    /// The job's CSV, byte for byte; `None` if nothing was uploaded (or
    /// the job does not exist).
    fn get_import_csv(&self, pool_id: &str, job_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// One batch of an import, in one transaction: each user is inserted as
    /// [`UserStore::insert_user`] would, but a user refused (`AlreadyExists`,
    /// `AliasTaken`) leaves the others in; the outcomes come back in order.
    /// A pool that no longer exists fails the whole batch with `NotFound`. `progress` is then handed those
    /// outcomes and returns the job record to write, compare-and-set as in
    /// [`ImportJobStore::update_import_job`]: if that fails, nothing of the
    /// batch is kept and its error (`VersionConflict`, `NotFound`) is
    /// returned. Users and progress are thus durable together, so a job
    /// resumed elsewhere never imports a row twice. `progress` may run more
    /// than once.
    fn import_user_batch(
        &self,
        users: Vec<(UserRecord, UserIndex)>,
        progress: ImportProgress,
    ) -> StoreResult<Vec<StoreResult<()>>>;
    /// Extends the lease of a job still at `version` to `lease_until_ms`
    /// without changing its version (a heartbeat of the node importing it,
    /// so that a long batch is not taken for a stalled job); false if the
    /// job is at another version, has no lease, or is gone.
    fn renew_import_lease(&self, pool_id: &str, job_id: &str, version: i64, lease_until_ms: i64) -> StoreResult<bool>;
    /// Jobs whose lease ran out before `now_ms`, oldest lease first, at most
    /// `limit`: jobs a node stopped importing without finishing them.
    fn list_stalled_import_jobs(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ImportJobRecord>>;
}

pub trait Store:
    UserPoolStore
    + AppClientStore
    + ClientSecretStore
    + IdentityPoolStore
    + IdentityStore
    + SyncStore
    + UserStore
    + CodeStore
    + OutboxStore
    + KeyStore
    + TokenStore
    + GroupStore
    + DomainStore
    + ManagedLoginBrandingStore
    + ImportJobStore
    + RateStore
    + AttemptStore
    + Send
    + Sync
{
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

/// Opens a new, private in-memory SQLite database with the same schema and
/// behaviour as [`open_sqlite`]'s, except that nothing outlives the store:
/// the database is gone once the last handle is dropped. For ephemeral
/// servers and tests. Each call opens a distinct database.
pub fn open_sqlite_in_memory() -> StoreResult<Arc<dyn Store>> {
    let backend = sqlite::SqliteBackend::open_in_memory()?;
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
