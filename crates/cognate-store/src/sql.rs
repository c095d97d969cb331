//! The store traits, implemented once over [`Backend`]/[`Tx`] with SQL that
//! SQLite and PostgreSQL both accept.
//!
//! Concurrency rules that hold on both backends:
//! - inserts use `ON CONFLICT DO NOTHING` and report `AlreadyExists` when no
//!   row was written, which is race-free and leaves the transaction usable;
//! - updates are a single `UPDATE … WHERE version = expected`, atomic on its
//!   own; only when it matches nothing do we look at why;
//! - a check that guards a write (secret counts, one-time codes, a user's
//!   group count) first locks the row it reads (`Tx::lock_rows`), so
//!   concurrent writers serialise;
//! - bounded clean-ups of expired rows lock with `Tx::lock_rows_skip_locked`
//!   and re-check expiry on the rows they delete, so they never wait on (or
//!   delete) a row a concurrent writer is renewing;
//! - the pool's user, group, import job and identity counters are bumped by
//!   the last statement of an insert or delete, so the counter row stays
//!   locked (PostgreSQL) for as short a time as possible, and no other lock
//!   is taken after it; the user and identity counts, bumped by every insert
//!   and delete of their records, are spread over shard rows so that
//!   concurrent writers rarely share one;
//! - writes that take several keys of one kind (an identity's logins, the
//!   two identities of a merge) take them in key order, so that two such
//!   writes cannot each hold a key the other waits for.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::db::{missing_parent_is, single_int, sql_count, sql_limit, to_u64, Backend, Cells, Row, Tx, Value};
use crate::{
    AppClientRecord, AppClientStore, Attempt, AttemptPolicy, AttemptStore, ClientSecretRecord, ClientSecretStore,
    CodeCheck, CodeRecord, CodeStore, DatasetRecord, DomainRecord, DomainStore, Entity, GroupRecord, GroupStore,
    IdentityLogin, IdentityPoolRecord, IdentityPoolStore, IdentityRecord, IdentityStore, ImportJobRecord,
    ImportJobStore, ImportProgress, KeyStore, ManagedLoginBrandingRecord, ManagedLoginBrandingStore, OutboxMessage,
    OutboxStore, RateStore, SigningKeyRecord, Store, StoreError, StoreResult, SyncChange, SyncLimits, SyncPatch,
    SyncRecord, SyncRefusal, SyncStore, SyncUsage, TokenStore, UserIndex, UserPoolRecord, UserPoolStore, UserRecord,
    UserStatus, UserStore, UsernameKey, MAX_RATE_WINDOW_MS, RATE_WINDOW_RETENTION_MS,
};

pub(crate) struct SqlStore<B: Backend> {
    db: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(db: B) -> Self {
        SqlStore { db }
    }
}

// ---------------------------------------------------------------------------
// User pools and identity pools have the same shape; one generic
// implementation serves both tables.

const POOL_COLUMNS: &str = "id, name, created_ms, modified_ms, version, doc";

struct PoolParts<'a> {
    id: &'a str,
    name: &'a str,
    created_ms: i64,
    modified_ms: i64,
    version: i64,
    doc: &'a str,
}

trait PoolLike: Sized {
    const TABLE: &'static str;
    const ENTITY: Entity;
    fn parts(&self) -> PoolParts<'_>;
    fn from_row(row: Row) -> StoreResult<Self>;
}

macro_rules! pool_like {
    ($ty:ident, $table:literal, $entity:expr) => {
        impl PoolLike for $ty {
            const TABLE: &'static str = $table;
            const ENTITY: Entity = $entity;

            fn parts(&self) -> PoolParts<'_> {
                PoolParts {
                    id: &self.id,
                    name: &self.name,
                    created_ms: self.created_ms,
                    modified_ms: self.modified_ms,
                    version: self.version,
                    doc: &self.doc,
                }
            }

            fn from_row(row: Row) -> StoreResult<Self> {
                let mut c = Cells::new(row);
                Ok($ty {
                    id: c.text()?.into(),
                    name: c.text()?,
                    created_ms: c.int()?,
                    modified_ms: c.int()?,
                    version: c.int()?,
                    doc: c.text()?,
                })
            }
        }
    };
}

pool_like!(UserPoolRecord, "user_pools", Entity::UserPool);
pool_like!(IdentityPoolRecord, "identity_pools", Entity::IdentityPool);

impl<B: Backend> SqlStore<B> {
    fn insert_pool<R: PoolLike>(&self, rec: &R) -> StoreResult<()> {
        let p = rec.parts();
        let sql = format!(
            "INSERT INTO {} ({POOL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING",
            R::TABLE
        );
        let params =
            [p.id.into(), p.name.into(), p.created_ms.into(), p.modified_ms.into(), p.version.into(), p.doc.into()];
        match self.db.write(move |tx| tx.execute(&sql, &params))? {
            0 => Err(StoreError::AlreadyExists(R::ENTITY)),
            _ => Ok(()),
        }
    }

    fn get_pool<R: PoolLike>(&self, id: &str) -> StoreResult<Option<R>> {
        let sql = format!("SELECT {POOL_COLUMNS} FROM {} WHERE id = $1", R::TABLE);
        let params = [id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(R::from_row).transpose()
    }

    fn update_pool<R: PoolLike>(&self, rec: &R) -> StoreResult<()> {
        let p = rec.parts();
        let key = [("id", p.id.into())];
        let set = [("name", p.name.into()), ("modified_ms", p.modified_ms.into()), ("doc", p.doc.into())];
        let version = p.version;
        self.db.write(move |tx| cas_update(tx, R::ENTITY, R::TABLE, &key, &set, version))
    }

    fn delete_pool<R: PoolLike>(&self, id: &str) -> StoreResult<bool> {
        // Child rows go with it through ON DELETE CASCADE, in the same
        // statement and therefore atomically.
        let sql = format!("DELETE FROM {} WHERE id = $1", R::TABLE);
        let params = [id.into()];
        Ok(self.db.write(move |tx| {
            let deleted = tx.execute(&sql, &params)?;
            // The outbox's rows name their pool without a foreign key (0014): deleted after
            // the pool row, whose lock an append holds until it commits.
            tx.execute("DELETE FROM outbox WHERE pool_id = $1", &params)?;
            Ok(deleted)
        })? > 0)
    }

    fn list_pools<R: PoolLike>(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<R>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = match after_id {
            Some(after) => (
                format!("SELECT {POOL_COLUMNS} FROM {} WHERE id > $1 ORDER BY id LIMIT $2", R::TABLE),
                vec![after.into(), sql_limit(limit)],
            ),
            None => (format!("SELECT {POOL_COLUMNS} FROM {} ORDER BY id LIMIT $1", R::TABLE), vec![sql_limit(limit)]),
        };
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(R::from_row).collect()
    }

    fn count_pools<R: PoolLike>(&self) -> StoreResult<u64> {
        let sql = format!("SELECT COUNT(*) FROM {}", R::TABLE);
        to_u64(single_int(self.db.read(|tx| tx.query(&sql, &[]))?)?)
    }
}

/// After a CAS update of an `entity` matched nothing: `VersionConflict` if
/// the row exists, `NotFound` otherwise.
fn absent_or_conflict(tx: &mut dyn Tx, entity: Entity, exists_sql: &str, key: &[Value]) -> StoreResult<StoreError> {
    Ok(if tx.query(exists_sql, key)?.is_empty() {
        StoreError::NotFound(entity)
    } else {
        StoreError::VersionConflict(entity)
    })
}

/// The one compare-and-set update every versioned record uses: the row of `table` at `key`
/// (key columns and values) takes `set` (columns and values) and `version` if it is at
/// `version - 1`; otherwise `NotFound` or `VersionConflict`, telling which, and nothing changes.
fn cas_update(
    tx: &mut dyn Tx,
    entity: Entity,
    table: &str,
    key: &[(&str, Value)],
    set: &[(&str, Value)],
    version: i64,
) -> StoreResult<()> {
    let key_match =
        |first: usize| key.iter().enumerate().map(|(i, (c, _))| format!("{c} = ${}", first + i)).collect::<Vec<_>>();
    if let Some(expected) = version.checked_sub(1) {
        let n = key.len();
        let assignments: Vec<String> = set
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = ${}", n + i + 1))
            .chain([format!("version = ${}", n + set.len() + 1)])
            .collect();
        let sql = format!(
            "UPDATE {table} SET {} WHERE {} AND version = ${}",
            assignments.join(", "),
            key_match(1).join(" AND "),
            n + set.len() + 2
        );
        let mut params: Vec<Value> = key.iter().chain(set).map(|(_, v)| v.clone()).collect();
        params.push(version.into());
        params.push(expected.into());
        if tx.execute(&sql, &params)? > 0 {
            return Ok(());
        }
    }
    let exists = format!("SELECT 1 FROM {table} WHERE {}", key_match(1).join(" AND "));
    let key_values: Vec<Value> = key.iter().map(|(_, v)| v.clone()).collect();
    Err(absent_or_conflict(tx, entity, &exists, &key_values)?)
}

impl<B: Backend> UserPoolStore for SqlStore<B> {
    fn insert_user_pool(&self, rec: &UserPoolRecord) -> StoreResult<()> {
        self.insert_pool(rec)
    }
    fn get_user_pool(&self, id: &str) -> StoreResult<Option<UserPoolRecord>> {
        self.get_pool(id)
    }
    fn update_user_pool(&self, rec: &UserPoolRecord) -> StoreResult<()> {
        self.update_pool(rec)
    }
    fn delete_user_pool(&self, id: &str) -> StoreResult<bool> {
        self.delete_pool::<UserPoolRecord>(id)
    }
    fn list_user_pools(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<UserPoolRecord>> {
        self.list_pools(after_id, limit)
    }
    fn count_user_pools(&self) -> StoreResult<u64> {
        self.count_pools::<UserPoolRecord>()
    }
}

impl<B: Backend> IdentityPoolStore for SqlStore<B> {
    fn insert_identity_pool(&self, rec: &IdentityPoolRecord) -> StoreResult<()> {
        self.insert_pool(rec)
    }
    fn get_identity_pool(&self, id: &str) -> StoreResult<Option<IdentityPoolRecord>> {
        self.get_pool(id)
    }
    fn update_identity_pool(&self, rec: &IdentityPoolRecord) -> StoreResult<()> {
        self.update_pool(rec)
    }
    fn delete_identity_pool(&self, id: &str) -> StoreResult<bool> {
        self.delete_pool::<IdentityPoolRecord>(id)
    }
    fn list_identity_pools(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<IdentityPoolRecord>> {
        self.list_pools(after_id, limit)
    }
    fn count_identity_pools(&self) -> StoreResult<u64> {
        self.count_pools::<IdentityPoolRecord>()
    }
}

// ---------------------------------------------------------------------------
// App clients

const CLIENT_COLUMNS: &str = "pool_id, client_id, name, created_ms, modified_ms, version, doc";

fn client_from_row(row: Row) -> StoreResult<AppClientRecord> {
    let mut c = Cells::new(row);
    Ok(AppClientRecord {
        pool_id: c.text()?.into(),
        client_id: c.text()?.into(),
        name: c.text()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        doc: c.text()?,
    })
}

impl<B: Backend> AppClientStore for SqlStore<B> {
    fn insert_app_client(&self, rec: &AppClientRecord, first_secret: Option<&ClientSecretRecord>) -> StoreResult<()> {
        if let Some(s) = first_secret {
            if s.pool_id != *rec.pool_id || s.client_id != *rec.client_id {
                return Err(StoreError::Backend("first secret belongs to a different app client".into()));
            }
        }
        let pool_key = [rec.pool_id.as_str().into()];
        let client = [
            rec.pool_id.as_str().into(),
            rec.client_id.as_str().into(),
            rec.name.as_str().into(),
            rec.created_ms.into(),
            rec.modified_ms.into(),
            rec.version.into(),
            rec.doc.as_str().into(),
        ];
        let secret = first_secret.map(secret_params);
        self.db
            .write(move |tx| {
                // Checked explicitly to tell "no pool" from "duplicate client".
                // Should the pool vanish concurrently, the foreign key still
                // rejects the insert, which maps to NotFound as well.
                if tx.query("SELECT 1 FROM user_pools WHERE id = $1", &pool_key)?.is_empty() {
                    return Err(StoreError::NotFound(Entity::UserPool));
                }
                let inserted = tx.execute(
                    &format!(
                        "INSERT INTO app_clients ({CLIENT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
                    ),
                    &client,
                )?;
                if inserted == 0 {
                    return Err(StoreError::AlreadyExists(Entity::AppClient));
                }
                if let Some(secret) = &secret {
                    insert_secret_row(tx, secret)?;
                }
                Ok(())
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }

    fn get_app_client(&self, pool_id: &str, client_id: &str) -> StoreResult<Option<AppClientRecord>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM app_clients WHERE pool_id = $1 AND client_id = $2");
        let params = [pool_id.into(), client_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(client_from_row).transpose()
    }

    fn get_app_client_by_id(&self, client_id: &str) -> StoreResult<Option<AppClientRecord>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM app_clients WHERE client_id = $1 ORDER BY pool_id LIMIT 1");
        let params = [client_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(client_from_row).transpose()
    }

    fn update_app_client(&self, rec: &AppClientRecord) -> StoreResult<()> {
        let key = [("pool_id", rec.pool_id.as_str().into()), ("client_id", rec.client_id.as_str().into())];
        let set = [
            ("name", rec.name.as_str().into()),
            ("modified_ms", rec.modified_ms.into()),
            ("doc", rec.doc.as_str().into()),
        ];
        let version = rec.version;
        self.db.write(move |tx| cas_update(tx, Entity::AppClient, "app_clients", &key, &set, version))
    }

    fn delete_app_client(&self, pool_id: &str, client_id: &str) -> StoreResult<bool> {
        let params = [pool_id.into(), client_id.into()];
        let n = self
            .db
            .write(move |tx| tx.execute("DELETE FROM app_clients WHERE pool_id = $1 AND client_id = $2", &params))?;
        Ok(n > 0)
    }

    fn list_app_clients(
        &self,
        pool_id: &str,
        after_client_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<AppClientRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = match after_client_id {
            Some(after) => (
                format!(
                    "SELECT {CLIENT_COLUMNS} FROM app_clients \
                     WHERE pool_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3"
                ),
                vec![pool_id.into(), after.into(), sql_limit(limit)],
            ),
            None => (
                format!(
                    "SELECT {CLIENT_COLUMNS} FROM app_clients \
                     WHERE pool_id = $1 ORDER BY client_id LIMIT $2"
                ),
                vec![pool_id.into(), sql_limit(limit)],
            ),
        };
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(client_from_row).collect()
    }

    fn count_app_clients(&self, pool_id: &str) -> StoreResult<u64> {
        let params = [pool_id.into()];
        let rows = self.db.read(|tx| tx.query("SELECT COUNT(*) FROM app_clients WHERE pool_id = $1", &params))?;
        to_u64(single_int(rows)?)
    }
}

// ---------------------------------------------------------------------------
// Client secrets

fn secret_params(s: &ClientSecretRecord) -> [Value; 5] {
    [
        s.pool_id.as_str().into(),
        s.client_id.as_str().into(),
        s.secret_id.as_str().into(),
        s.sealed_secret.as_str().into(),
        s.created_ms.into(),
    ]
}

fn insert_secret_row(tx: &mut dyn Tx, params: &[Value; 5]) -> StoreResult<()> {
    let n = tx.execute(
        "INSERT INTO client_secrets (pool_id, client_id, secret_id, sealed_secret, created_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        params,
    )?;
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::ClientSecret));
    }
    Ok(())
}

/// Locks the app-client row for the rest of the transaction, so that secret
/// count checks and the writes they guard cannot interleave with another
/// process doing the same. Returns false if the client does not exist.
fn lock_client(tx: &mut dyn Tx, client_key: &[Value]) -> StoreResult<bool> {
    let sql = format!("SELECT 1 FROM app_clients WHERE pool_id = $1 AND client_id = $2{}", tx.lock_rows());
    Ok(!tx.query(&sql, client_key)?.is_empty())
}

fn count_secrets(tx: &mut dyn Tx, client_key: &[Value]) -> StoreResult<i64> {
    single_int(tx.query("SELECT COUNT(*) FROM client_secrets WHERE pool_id = $1 AND client_id = $2", client_key)?)
}

impl<B: Backend> ClientSecretStore for SqlStore<B> {
    fn insert_client_secret(&self, rec: &ClientSecretRecord, max_per_client: u64) -> StoreResult<()> {
        let client_key = [rec.pool_id.as_str().into(), rec.client_id.as_str().into()];
        let params = secret_params(rec);
        self.db
            .write(move |tx| {
                if !lock_client(tx, &client_key)? {
                    return Err(StoreError::NotFound(Entity::AppClient));
                }
                if count_secrets(tx, &client_key)? >= sql_count(max_per_client) {
                    return Err(StoreError::LimitExceeded);
                }
                insert_secret_row(tx, &params)
            })
            .map_err(missing_parent_is(Entity::AppClient))
    }

    fn list_client_secrets(&self, pool_id: &str, client_id: &str) -> StoreResult<Vec<ClientSecretRecord>> {
        let params = [pool_id.into(), client_id.into()];
        let rows = self.db.read(|tx| {
            tx.query(
                "SELECT pool_id, client_id, secret_id, sealed_secret, created_ms \
                 FROM client_secrets WHERE pool_id = $1 AND client_id = $2 \
                 ORDER BY created_ms, secret_id",
                &params,
            )
        })?;
        rows.into_iter()
            .map(|row| {
                let mut c = Cells::new(row);
                Ok(ClientSecretRecord {
                    pool_id: c.text()?,
                    client_id: c.text()?,
                    secret_id: c.text()?,
                    sealed_secret: c.text()?,
                    created_ms: c.int()?,
                })
            })
            .collect()
    }

    fn delete_client_secret(
        &self,
        pool_id: &str,
        client_id: &str,
        secret_id: &str,
        keep_at_least: u64,
    ) -> StoreResult<bool> {
        let client_key = [pool_id.into(), client_id.into()];
        let secret_key = [pool_id.into(), client_id.into(), secret_id.into()];
        self.db.write(move |tx| {
            if !lock_client(tx, &client_key)? {
                return Ok(false);
            }
            let exists = !tx
                .query(
                    "SELECT 1 FROM client_secrets \
                     WHERE pool_id = $1 AND client_id = $2 AND secret_id = $3",
                    &secret_key,
                )?
                .is_empty();
            if !exists {
                return Ok(false);
            }
            let remaining = count_secrets(tx, &client_key)?.saturating_sub(1);
            if remaining < sql_count(keep_at_least) {
                return Err(StoreError::LimitExceeded);
            }
            let n = tx.execute(
                "DELETE FROM client_secrets \
                 WHERE pool_id = $1 AND client_id = $2 AND secret_id = $3",
                &secret_key,
            )?;
            Ok(n > 0)
        })
    }
}

// ---------------------------------------------------------------------------
// Users

/// Selected from `users u`, in `user_from_row` order.
const USER_COLUMNS: &str = "u.pool_id, u.username, u.username_key, u.sub, u.status, u.enabled, \
                            u.created_ms, u.modified_ms, u.version, u.attributes, u.password, u.doc";

fn user_from_row(row: Row) -> StoreResult<UserRecord> {
    let mut c = Cells::new(row);
    Ok(UserRecord {
        pool_id: c.text()?.into(),
        username: c.text()?,
        username_key: c.text()?.into(),
        sub: c.text()?.into(),
        status: {
            let name = c.text()?;
            UserStatus::parse(&name).ok_or_else(|| StoreError::Backend(format!("unknown user status {name:?}")))?
        },
        enabled: c.bool()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        attributes: c.text()?,
        password: c.opt_text()?,
        doc: c.text()?,
    })
}

fn users_from_rows(rows: Vec<Row>) -> StoreResult<Vec<UserRecord>> {
    rows.into_iter().map(user_from_row).collect()
}

/// A user's index as sets: duplicates collapse, and updates can diff.
#[derive(Clone)]
struct IndexSets {
    search: BTreeSet<(String, String)>,
    aliases: BTreeSet<(String, String)>,
}

impl IndexSets {
    fn new(index: &UserIndex) -> Self {
        IndexSets { search: index.search.iter().cloned().collect(), aliases: index.aliases.iter().cloned().collect() }
    }
}

/// Most `(attribute, value)` rows per multi-row INSERT.
const SEARCH_ROWS_PER_INSERT: usize = 64;

fn insert_search_rows<'a>(
    tx: &mut dyn Tx,
    pool_id: &str,
    username_key: &str,
    rows: impl Iterator<Item = &'a (String, String)>,
) -> StoreResult<()> {
    let rows: Vec<&(String, String)> = rows.collect();
    for chunk in rows.chunks(SEARCH_ROWS_PER_INSERT) {
        let mut sql = String::from("INSERT INTO user_search (pool_id, username_key, attribute, value) VALUES ");
        let mut params: Vec<Value> = Vec::with_capacity(2 + 2 * chunk.len());
        params.push(pool_id.into());
        params.push(username_key.into());
        for (i, (attribute, value)) in chunk.iter().enumerate() {
            let n = params.len();
            let sep = if i == 0 { "" } else { ", " };
            // Writing to a String cannot fail.
            let _ = write!(sql, "{sep}($1, $2, ${}, ${})", n + 1, n + 2);
            params.push(attribute.as_str().into());
            params.push(value.as_str().into());
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        tx.execute(&sql, &params)?;
    }
    Ok(())
}

fn insert_alias(tx: &mut dyn Tx, pool_id: &str, username_key: &str, kind: &str, key: &str) -> StoreResult<()> {
    let n = tx.execute(
        "INSERT INTO user_aliases (pool_id, kind, alias_key, username_key) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[pool_id.into(), kind.into(), key.into(), username_key.into()],
    )?;
    if n == 0 {
        // The user's own rows were removed first, so the holder is another user.
        return Err(StoreError::AliasTaken(kind.to_owned()));
    }
    Ok(())
}

fn string_pairs(rows: Vec<Row>) -> StoreResult<BTreeSet<(String, String)>> {
    rows.into_iter()
        .map(|row| {
            let mut c = Cells::new(row);
            Ok((c.text()?, c.text()?))
        })
        .collect()
}

/// Makes the user's stored search and alias rows equal to `index`, touching
/// only the rows that change.
fn sync_index(tx: &mut dyn Tx, pool_id: &str, username_key: &str, index: &IndexSets) -> StoreResult<()> {
    let key = [pool_id.into(), username_key.into()];
    let old_search = string_pairs(
        tx.query("SELECT attribute, value FROM user_search WHERE pool_id = $1 AND username_key = $2", &key)?,
    )?;
    for (attribute, value) in old_search.difference(&index.search) {
        tx.execute(
            "DELETE FROM user_search \
             WHERE pool_id = $1 AND attribute = $2 AND value = $3 AND username_key = $4",
            &[pool_id.into(), attribute.as_str().into(), value.as_str().into(), username_key.into()],
        )?;
    }
    insert_search_rows(tx, pool_id, username_key, index.search.difference(&old_search))?;

    let old_aliases = string_pairs(
        tx.query("SELECT kind, alias_key FROM user_aliases WHERE pool_id = $1 AND username_key = $2", &key)?,
    )?;
    for (kind, alias_key) in old_aliases.difference(&index.aliases) {
        tx.execute(
            "DELETE FROM user_aliases WHERE pool_id = $1 AND kind = $2 AND alias_key = $3",
            &[pool_id.into(), kind.as_str().into(), alias_key.as_str().into()],
        )?;
    }
    for (kind, alias_key) in index.aliases.difference(&old_aliases) {
        insert_alias(tx, pool_id, username_key, kind, alias_key)?;
    }
    Ok(())
}

fn insert_user_tx(tx: &mut dyn Tx, user: &UserRecord, index: &IndexSets) -> StoreResult<()> {
    insert_user_rows(tx, user, index)?;
    adjust_user_count(tx, &user.pool_id, &user.username_key, 1)
}

/// The user's own rows: the user, its search rows and its aliases (not the
/// pool's count).
fn insert_user_rows(tx: &mut dyn Tx, user: &UserRecord, index: &IndexSets) -> StoreResult<()> {
    insert_user_row(tx, user)?;
    insert_search_rows(tx, &user.pool_id, &user.username_key, index.search.iter())?;
    for (kind, key) in &index.aliases {
        insert_alias(tx, &user.pool_id, &user.username_key, kind, key)?;
    }
    Ok(())
}

/// The `users` row alone; `AlreadyExists` (with nothing written) if the username or
/// the sub is taken.
fn insert_user_row(tx: &mut dyn Tx, user: &UserRecord) -> StoreResult<()> {
    let n = tx.execute(
        &format!("{INSERT_USERS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"),
        &user_values(user),
    )?;
    // Nothing written: the username or the sub is taken. (A missing pool
    // fails the foreign key instead, which the caller names.)
    if n == 0 {
        return Err(StoreError::AlreadyExists(Entity::User));
    }
    Ok(())
}

/// Number of rows a pool's user count (migration 0009) or identity count
/// (migration 0012) is spread over.
const COUNT_SHARDS: u32 = 16;

/// The count shard a record's writes bump: a hash of its key (a username key,
/// an identity id), so concurrent writes of different records mostly touch
/// different rows. A record's insert and delete hash alike, so no shard goes
/// below zero.
fn count_shard(key: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, which the stored shard
    // numbers do not actually need, but it keeps them reproducible.
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    i64::from(hash % COUNT_SHARDS)
}

const INSERT_USERS: &str = "INSERT INTO users (pool_id, username, username_key, sub, status, enabled, \
                            created_ms, modified_ms, version, attributes, password, doc)";

/// The values of a `users` row, in [`INSERT_USERS`]'s column order.
fn user_values(user: &UserRecord) -> Vec<Value> {
    vec![
        user.pool_id.as_str().into(),
        user.username.as_str().into(),
        user.username_key.as_str().into(),
        user.sub.as_str().into(),
        user.status.as_str().into(),
        user.enabled.into(),
        user.created_ms.into(),
        user.modified_ms.into(),
        user.version.into(),
        user.attributes.as_str().into(),
        user.password.as_deref().into(),
        user.doc.as_str().into(),
    ]
}

/// Most parameters in one statement: under SQLite's limit (32,766) and PostgreSQL's (65,535).
const MAX_STATEMENT_PARAMS: usize = 30_000;

/// `head VALUES (…), (…) tail` for `rows` (all of one width), in as few statements as the
/// parameter limit allows; returns the rows the statements return (`tail` may be RETURNING).
fn insert_many(tx: &mut dyn Tx, head: &str, rows: &[Vec<Value>], tail: &str) -> StoreResult<Vec<Row>> {
    let width = rows.first().map_or(1, Vec::len).max(1);
    let mut returned = Vec::new();
    for chunk in rows.chunks((MAX_STATEMENT_PARAMS / width).max(1)) {
        let mut sql = format!("{head} VALUES ");
        let mut params = Vec::with_capacity(chunk.len() * width);
        for (i, row) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.iter().enumerate() {
                // Writing to a String cannot fail.
                let _ = write!(sql, "{}${}", if j == 0 { "" } else { ", " }, params.len() + 1);
                params.push(value.clone());
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        returned.extend(tx.query(&sql, &params)?);
    }
    Ok(returned)
}

/// Inserts the users of an import batch with a few multi-row statements instead of a few
/// per user (on PostgreSQL each statement is a round trip). Outcomes are those of inserting
/// the users one after the other, in order: a username already taken (by an older user or
/// an earlier row) is `AlreadyExists`; a user one of whose aliases is taken is removed again
/// and retried on its own once the others are in, so that it is refused only if the alias
/// is still held (`AliasTaken`).
fn import_users(tx: &mut dyn Tx, users: &[(UserRecord, IndexSets)]) -> StoreResult<Vec<StoreResult<()>>> {
    let rows: Vec<Vec<Value>> = users.iter().map(|(user, _)| user_values(user)).collect();
    let returned = insert_many(tx, INSERT_USERS, &rows, "ON CONFLICT DO NOTHING RETURNING pool_id, username_key, sub")?;
    let mut inserted: std::collections::HashSet<(String, String, String)> = returned
        .into_iter()
        .map(|row| {
            let mut c = Cells::new(row);
            Ok((c.text()?, c.text()?, c.text()?))
        })
        .collect::<StoreResult<_>>()?;
    // Each row written answers for the first batch row with its key and sub; a later
    // identical row is a duplicate.
    let mut outcomes: Vec<StoreResult<()>> = users
        .iter()
        .map(|(user, _)| {
            let row = (user.pool_id.to_string(), user.username_key.to_string(), user.sub.to_string());
            if inserted.remove(&row) {
                Ok(())
            } else {
                Err(StoreError::AlreadyExists(Entity::User))
            }
        })
        .collect();

    let mut alias_rows = Vec::new();
    for ((user, index), _) in users.iter().zip(&outcomes).filter(|(_, o)| o.is_ok()) {
        for (kind, key) in &index.aliases {
            let values = [user.pool_id.as_str(), kind, key, user.username_key.as_str()];
            alias_rows.push(values.iter().map(|v| Value::from(*v)).collect::<Vec<_>>());
        }
    }
    let held = insert_many(
        tx,
        "INSERT INTO user_aliases (pool_id, kind, alias_key, username_key)",
        &alias_rows,
        "ON CONFLICT DO NOTHING RETURNING pool_id, username_key, kind",
    )?;
    let held: std::collections::HashSet<(String, String, String)> = held
        .into_iter()
        .map(|row| {
            let mut c = Cells::new(row);
            Ok((c.text()?, c.text()?, c.text()?))
        })
        .collect::<StoreResult<_>>()?;
    let mut retry = Vec::new();
    for (i, (user, index)) in users.iter().enumerate() {
        let owner = (user.pool_id.to_string(), user.username_key.to_string());
        let lost =
            index.aliases.iter().any(|(kind, _)| !held.contains(&(owner.0.clone(), owner.1.clone(), kind.clone())));
        if outcomes[i].is_ok() && lost {
            remove_refused_user(tx, user)?;
            // Not inserted for now; the retry below decides.
            outcomes[i] = Err(StoreError::NotFound(Entity::User));
            retry.push(i);
        }
    }

    let mut search_rows = Vec::new();
    for ((user, index), outcome) in users.iter().zip(&outcomes) {
        if outcome.is_err() {
            continue;
        }
        for (attribute, value) in &index.search {
            let values = [user.pool_id.as_str(), user.username_key.as_str(), attribute, value];
            search_rows.push(values.iter().map(|v| Value::from(*v)).collect::<Vec<_>>());
        }
    }
    insert_many(
        tx,
        "INSERT INTO user_search (pool_id, username_key, attribute, value)",
        &search_rows,
        "ON CONFLICT DO NOTHING",
    )?;
    // Removed above; placeholder outcome until retried here.
    for i in retry {
        outcomes[i] = import_one_user(tx, &users[i].0, &users[i].1)?;
    }
    Ok(outcomes)
}

/// Last statement of a user insert or delete (see the module comment): adds
/// `delta` to the pool's count shard for `username_key`. A missing pool fails
/// the foreign key (see [`missing_parent_is`]).
fn adjust_user_count(tx: &mut dyn Tx, pool_id: &str, username_key: &str, delta: i64) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO user_count_shards (pool_id, shard, users) VALUES ($1, $2, $3) \
         ON CONFLICT (pool_id, shard) DO UPDATE SET users = user_count_shards.users + excluded.users",
        &[pool_id.into(), count_shard(username_key).into(), delta.into()],
    )?;
    Ok(())
}

fn update_user_tx(tx: &mut dyn Tx, user: &UserRecord, index: &IndexSets) -> StoreResult<()> {
    let key = [("pool_id", user.pool_id.as_str().into()), ("username_key", user.username_key.as_str().into())];
    let set = [
        ("username", user.username.as_str().into()),
        ("status", user.status.as_str().into()),
        ("enabled", user.enabled.into()),
        ("modified_ms", user.modified_ms.into()),
        ("attributes", user.attributes.as_str().into()),
        ("password", user.password.as_deref().into()),
        ("doc", user.doc.as_str().into()),
    ];
    cas_update(tx, Entity::User, "users", &key, &set, user.version)?;
    sync_index(tx, &user.pool_id, &user.username_key, index)
}

/// The smallest string greater than every string that starts with `prefix`
/// (in code point order, which is UTF-8 byte order), or `None` if there is
/// none (the prefix is empty or all U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
        // `last` was U+10FFFF: carry into the previous character.
    }
    None
}

/// The statement `search_users` runs, or `None` when the cursor already
/// rules out every match.
pub(crate) fn search_statement(
    pool_id: &str,
    attribute: &str,
    value: &str,
    prefix: bool,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Option<(String, Vec<Value>)> {
    let mut params: Vec<Value> = vec![pool_id.into(), attribute.into()];
    // The page is chosen by an inner query on the search index alone, then
    // joined to users: left to themselves, planners that see a pool where
    // most users match may prefer scanning users and sorting everything.
    let mut sql = String::from(
        "SELECT s.pool_id, s.username_key, s.value FROM user_search s \
         WHERE s.pool_id = $1 AND s.attribute = $2",
    );
    let mut bind = |sql: &mut String, cond: &str, values: Vec<Value>| {
        // `cond` uses ?1, ?2… for its own parameters, renumbered here.
        let mut cond = cond.to_owned();
        for (i, v) in values.into_iter().enumerate() {
            params.push(v);
            cond = cond.replace(&format!("?{}", i + 1), &format!("${}", params.len()));
        }
        sql.push_str(" AND ");
        sql.push_str(&cond);
    };
    if prefix {
        let upper = prefix_upper_bound(value);
        // One lower bound suffices: a cursor at or past the prefix subsumes
        // `value >= prefix`, and a cursor before it is subsumed by it.
        match after {
            Some((after_value, after_key)) if after_value >= value => {
                if upper.as_deref().is_some_and(|u| after_value >= u) {
                    return None;
                }
                bind(&mut sql, "(s.value, s.username_key) > (?1, ?2)", vec![after_value.into(), after_key.into()]);
            }
            _ if value.is_empty() => {}
            _ => bind(&mut sql, "s.value >= ?1", vec![value.into()]),
        }
        if let Some(upper) = upper {
            bind(&mut sql, "s.value < ?1", vec![upper.into()]);
        }
    } else {
        bind(&mut sql, "s.value = ?1", vec![value.into()]);
        match after {
            Some((after_value, _)) if after_value > value => return None,
            Some((after_value, after_key)) if after_value == value => {
                bind(&mut sql, "s.username_key > ?1", vec![after_key.into()]);
            }
            _ => {}
        }
    }
    params.push(sql_limit(limit));
    let _ = write!(sql, " ORDER BY s.value, s.username_key LIMIT ${}", params.len());
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM ({sql}) s \
         JOIN users u ON u.pool_id = s.pool_id AND u.username_key = s.username_key \
         ORDER BY s.value, s.username_key"
    );
    Some((sql, params))
}

impl<B: Backend> SqlStore<B> {
    fn read_users(&self, sql: String, params: Vec<Value>) -> StoreResult<Vec<UserRecord>> {
        users_from_rows(self.db.read(|tx| tx.query(&sql, &params))?)
    }

    fn read_user(&self, sql: String, params: Vec<Value>) -> StoreResult<Option<UserRecord>> {
        Ok(self.read_users(sql, params)?.into_iter().next())
    }
}

impl<B: Backend> UserStore for SqlStore<B> {
    fn insert_user(&self, user: &UserRecord, index: &UserIndex) -> StoreResult<()> {
        let user = user.clone();
        let index = IndexSets::new(index);
        self.db.write(move |tx| insert_user_tx(tx, &user, &index)).map_err(missing_parent_is(Entity::UserPool))
    }

    fn update_user(&self, user: &UserRecord, index: &UserIndex) -> StoreResult<()> {
        let user = user.clone();
        let index = IndexSets::new(index);
        // The index rows refer to the user, which the update found.
        self.db.write(move |tx| update_user_tx(tx, &user, &index)).map_err(missing_parent_is(Entity::User))
    }

    fn get_user(&self, pool_id: &str, username_key: &UsernameKey) -> StoreResult<Option<UserRecord>> {
        self.read_user(
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.pool_id = $1 AND u.username_key = $2"),
            vec![pool_id.into(), username_key.into()],
        )
    }

    fn get_user_by_sub(&self, pool_id: &str, sub: &str) -> StoreResult<Option<UserRecord>> {
        self.read_user(
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.pool_id = $1 AND u.sub = $2"),
            vec![pool_id.into(), sub.into()],
        )
    }

    fn get_user_by_alias(&self, pool_id: &str, kind: &str, key: &str) -> StoreResult<Option<UserRecord>> {
        self.read_user(
            format!(
                "SELECT {USER_COLUMNS} FROM user_aliases a \
                 JOIN users u ON u.pool_id = a.pool_id AND u.username_key = a.username_key \
                 WHERE a.pool_id = $1 AND a.kind = $2 AND a.alias_key = $3"
            ),
            vec![pool_id.into(), kind.into(), key.into()],
        )
    }

    fn delete_user(&self, pool_id: &str, username_key: &UsernameKey) -> StoreResult<bool> {
        let key = [pool_id.into(), username_key.into()];
        let (pool_id, key_owned) = (pool_id.to_owned(), username_key.to_owned());
        self.db.write(move |tx| {
            // Index rows and codes go with it through ON DELETE CASCADE.
            if tx.execute("DELETE FROM users WHERE pool_id = $1 AND username_key = $2", &key)? == 0 {
                return Ok(false);
            }
            adjust_user_count(tx, &pool_id, &key_owned, -1)?;
            Ok(true)
        })
    }

    fn list_users(&self, pool_id: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<UserRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = match after {
            Some(after) => (
                format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.pool_id = $1 AND u.username_key > $2 \
                     ORDER BY u.username_key LIMIT $3"
                ),
                vec![pool_id.into(), after.into(), sql_limit(limit)],
            ),
            None => (
                format!("SELECT {USER_COLUMNS} FROM users u WHERE u.pool_id = $1 ORDER BY u.username_key LIMIT $2"),
                vec![pool_id.into(), sql_limit(limit)],
            ),
        };
        self.read_users(sql, params)
    }

    fn search_users(
        &self,
        pool_id: &str,
        attribute: &str,
        value: &str,
        prefix: bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match search_statement(pool_id, attribute, value, prefix, after, limit) {
            Some((sql, params)) => self.read_users(sql, params),
            None => Ok(Vec::new()),
        }
    }

    fn count_users(&self, pool_id: &str) -> StoreResult<u64> {
        let params = [pool_id.into()];
        let rows = self.db.read(|tx| {
            // SUM of a PostgreSQL BIGINT is NUMERIC: cast back.
            tx.query(
                "SELECT CAST(COALESCE(SUM(users), 0) AS BIGINT) FROM user_count_shards WHERE pool_id = $1",
                &params,
            )
        })?;
        to_u64(single_int(rows)?)
    }
}

// ---------------------------------------------------------------------------
// One-time codes

/// Compares two code hashes in time independent of where they differ.
fn same_hash(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The decision of [`CodeStore::check_code`], inside the caller's
/// transaction. The code row is locked first, so concurrent checks of one
/// code serialise and exactly one can be `Accepted`.
fn check_code_tx(
    tx: &mut dyn Tx,
    key: &[Value; 3],
    code_hash: &str,
    now_ms: i64,
    consume: bool,
) -> StoreResult<CodeCheck> {
    let sql = format!(
        "SELECT code_hash, expires_ms, attempts_left FROM user_codes \
         WHERE pool_id = $1 AND username_key = $2 AND purpose = $3{}",
        tx.lock_rows()
    );
    let Some(row) = tx.query(&sql, key)?.into_iter().next() else {
        return Ok(CodeCheck::Missing);
    };
    let mut c = Cells::new(row);
    let (stored_hash, expires_ms, attempts_left) = (c.text()?, c.int()?, c.int()?);
    if now_ms >= expires_ms {
        return Ok(CodeCheck::Expired);
    }
    if attempts_left <= 0 {
        return Ok(CodeCheck::TooManyAttempts);
    }
    if same_hash(&stored_hash, code_hash) {
        if consume {
            tx.execute("DELETE FROM user_codes WHERE pool_id = $1 AND username_key = $2 AND purpose = $3", key)?;
        }
        return Ok(CodeCheck::Accepted);
    }
    tx.execute(
        "UPDATE user_codes SET attempts_left = attempts_left - 1 \
         WHERE pool_id = $1 AND username_key = $2 AND purpose = $3",
        key,
    )?;
    Ok(CodeCheck::Mismatch { attempts_left: attempts_left - 1 })
}

fn code_key(pool_id: &str, username_key: &str, purpose: &str) -> [Value; 3] {
    [pool_id.into(), username_key.into(), purpose.into()]
}

impl<B: Backend> CodeStore for SqlStore<B> {
    fn put_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let params = [
            code.pool_id.as_str().into(),
            code.username_key.as_str().into(),
            code.purpose.as_str().into(),
            code.code_hash.as_str().into(),
            code.expires_ms.into(),
            code.attempts_left.into(),
            code.created_ms.into(),
        ];
        // A missing user fails the foreign key.
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO user_codes (pool_id, username_key, purpose, code_hash, expires_ms, \
                 attempts_left, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (pool_id, username_key, purpose) DO UPDATE SET \
                 code_hash = excluded.code_hash, expires_ms = excluded.expires_ms, \
                 attempts_left = excluded.attempts_left, created_ms = excluded.created_ms",
                    &params,
                )
                .map(|_| ())
            })
            .map_err(missing_parent_is(Entity::User))
    }

    fn check_code(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        purpose: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<CodeCheck> {
        let key = code_key(pool_id, username_key, purpose);
        let code_hash = code_hash.to_owned();
        self.db.write(move |tx| check_code_tx(tx, &key, &code_hash, now_ms, true))
    }

    fn check_code_keeping_it(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        purpose: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<CodeCheck> {
        let key = code_key(pool_id, username_key, purpose);
        let code_hash = code_hash.to_owned();
        self.db.write(move |tx| check_code_tx(tx, &key, &code_hash, now_ms, false))
    }

    fn check_code_and_update_user(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        purpose: &str,
        code_hash: &str,
        now_ms: i64,
        user: &UserRecord,
        index: &UserIndex,
    ) -> StoreResult<CodeCheck> {
        if user.pool_id != pool_id || user.username_key != *username_key {
            return Err(StoreError::Backend("check_code_and_update_user: the user is not the code's owner".into()));
        }
        let key = code_key(pool_id, username_key, purpose);
        let code_hash = code_hash.to_owned();
        let user = user.clone();
        let index = IndexSets::new(index);
        self.db
            .write(move |tx| {
                let check = check_code_tx(tx, &key, &code_hash, now_ms, true)?;
                if check == CodeCheck::Accepted {
                    // An error here rolls back the whole transaction, including
                    // the code's deletion.
                    update_user_tx(tx, &user, &index)?;
                }
                Ok(check)
            })
            .map_err(missing_parent_is(Entity::User))
    }

    fn delete_code(&self, pool_id: &str, username_key: &UsernameKey, purpose: &str) -> StoreResult<bool> {
        let key = code_key(pool_id, username_key, purpose);
        let n = self.db.write(move |tx| {
            tx.execute("DELETE FROM user_codes WHERE pool_id = $1 AND username_key = $2 AND purpose = $3", &key)
        })?;
        Ok(n > 0)
    }
}

// ---------------------------------------------------------------------------
// Outbox

/// Deletes up to [`PURGE_BATCH`] of `pool_id`'s oldest messages beyond its
/// newest `keep`. The boundary is found by walking `keep` entries of the
/// `(pool_id, id)` index from the newest, so the cost is bounded by `keep`,
/// not by the table. Rows another transaction holds (an age purge of another
/// pool's append, which deletes them anyway) are skipped, not waited for:
/// two appends each purging the other's pool could otherwise deadlock.
fn purge_outbox_overflow(tx: &mut dyn Tx, pool_id: &str, keep: u64) -> StoreResult<u64> {
    let sql = format!(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE pool_id = $1 AND id <= \
         (SELECT id FROM outbox WHERE pool_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2) \
         ORDER BY id LIMIT $3{})",
        tx.lock_rows_skip_locked()
    );
    tx.execute(&sql, &[pool_id.into(), sql_count(keep).into(), PURGE_BATCH.into()])
}

impl<B: Backend> SqlStore<B> {
    fn append_outbox(&self, msg: &OutboxMessage, retention: Option<&crate::OutboxRetention>) -> StoreResult<i64> {
        let params = [
            msg.pool_id.as_str().into(),
            msg.username.as_str().into(),
            msg.channel.as_str().into(),
            msg.destination.as_str().into(),
            msg.code.as_deref().into(),
            msg.subject.as_deref().into(),
            msg.body.as_str().into(),
            msg.created_ms.into(),
        ];
        let (pool_id, retention) = (msg.pool_id.clone(), retention.copied());
        let cutoff = retention.map(|r| msg.created_ms.saturating_sub(r.max_age_ms.max(0)));
        self.db
            .write(move |tx| {
                // Locking the pool row first makes a pool's messages take their
                // ids in commit order (on PostgreSQL, sequence values are handed
                // out before commit), so a reader paging with `after_id` cannot
                // skip a message that commits late.
                // A message belongs to a user pool, or to an identity pool (Cognito Sync's pushes).
                let lock = format!("SELECT 1 FROM user_pools WHERE id = $1{}", tx.lock_rows());
                if tx.query(&lock, &params[..1])?.is_empty() {
                    let lock = format!("SELECT 1 FROM identity_pools WHERE id = $1{}", tx.lock_rows());
                    if tx.query(&lock, &params[..1])?.is_empty() {
                        return Err(StoreError::NotFound(Entity::UserPool));
                    }
                }
                // Expired messages of every pool, oldest first through the
                // created_ms index, a batch per append: more than one row per
                // append, so a backlog drains, and a pool that no longer sends
                // still loses its old messages to other pools' appends.
                if let Some(cutoff) = cutoff {
                    purge_up_to(tx, "outbox", "id", "created_ms", cutoff)?;
                }
                let id = single_int(tx.query(
                    "INSERT INTO outbox (pool_id, username, channel, destination, code, subject, body, \
                 created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &params,
                )?)?;
                if let Some(r) = retention {
                    purge_outbox_overflow(tx, &pool_id, r.max_per_pool)?;
                }
                Ok(id)
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }
}

impl<B: Backend> OutboxStore for SqlStore<B> {
    fn append_message(&self, msg: &OutboxMessage) -> StoreResult<i64> {
        self.append_outbox(msg, None)
    }

    fn append_message_pruned(&self, msg: &OutboxMessage, retention: &crate::OutboxRetention) -> StoreResult<i64> {
        self.append_outbox(msg, Some(retention))
    }

    fn list_messages(
        &self,
        pool_id: Option<&str>,
        username: Option<&str>,
        after_id: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<OutboxMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT id, pool_id, username, channel, destination, code, subject, body, created_ms \
             FROM outbox WHERE 1 = 1",
        );
        let mut params: Vec<Value> = Vec::new();
        let conditions = [("pool_id", pool_id.map(Value::from)), ("username", username.map(Value::from))];
        for (column, value) in conditions {
            if let Some(value) = value {
                params.push(value);
                let _ = write!(sql, " AND {column} = ${}", params.len());
            }
        }
        if let Some(after) = after_id {
            params.push(after.into());
            let _ = write!(sql, " AND id > ${}", params.len());
        }
        params.push(sql_limit(limit));
        let _ = write!(sql, " ORDER BY id LIMIT ${}", params.len());
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter()
            .map(|row| {
                let mut c = Cells::new(row);
                Ok(OutboxMessage {
                    id: c.int()?,
                    pool_id: c.text()?,
                    username: c.text()?,
                    channel: c.text()?,
                    destination: c.text()?,
                    code: c.opt_text()?,
                    subject: c.opt_text()?,
                    body: c.text()?,
                    created_ms: c.int()?,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Signing keys

const KEY_COLUMNS: &str = "pool_id, kid, purpose, sealed_private_key, public_jwk, created_ms";

fn key_from_row(row: Row) -> StoreResult<SigningKeyRecord> {
    let mut c = Cells::new(row);
    Ok(SigningKeyRecord {
        pool_id: c.text()?,
        kid: c.text()?,
        purpose: c.text()?,
        sealed_private_key: c.text()?,
        public_jwk: c.text()?,
        created_ms: c.int()?,
    })
}

fn select_key_sql() -> String {
    format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE pool_id = $1 AND purpose = $2")
}

impl<B: Backend> KeyStore for SqlStore<B> {
    fn ensure_signing_key(&self, rec: &SigningKeyRecord) -> StoreResult<SigningKeyRecord> {
        let select = select_key_sql();
        let key = [rec.pool_id.as_str().into(), rec.purpose.as_str().into()];
        // The common case, a key that already exists, needs no write.
        let rows = self.db.read(|tx| tx.query(&select, &key))?;
        if let Some(row) = rows.into_iter().next() {
            return key_from_row(row);
        }
        let pool_key = [rec.pool_id.as_str().into()];
        let params = [
            rec.pool_id.as_str().into(),
            rec.kid.as_str().into(),
            rec.purpose.as_str().into(),
            rec.sealed_private_key.as_str().into(),
            rec.public_jwk.as_str().into(),
            rec.created_ms.into(),
        ];
        self.db.write(move |tx| {
            // Checked explicitly, as for app clients; a pool deleted
            // concurrently still fails the foreign key (NotFound too).
            if tx.query("SELECT 1 FROM user_pools WHERE id = $1", &pool_key)?.is_empty() {
                return Err(StoreError::NotFound(Entity::UserPool));
            }
            // A concurrent insert for the same purpose makes this one wait
            // for its outcome, then do nothing; the SELECT (a new snapshot
            // on PostgreSQL) then reads the winner's key.
            tx.execute(
                &format!(
                    "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)                      ON CONFLICT DO NOTHING"
                ),
                &params,
            )?;
            match tx.query(&select, &key)?.into_iter().next() {
                Some(row) => key_from_row(row),
                // Nothing stored for the purpose: the kid clashed with the
                // key of another purpose.
                None => Err(StoreError::AlreadyExists(Entity::SigningKey)),
            }
        })
        .map_err(missing_parent_is(Entity::UserPool))
    }

    fn list_signing_keys(&self, pool_id: &str) -> StoreResult<Vec<SigningKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE pool_id = $1 ORDER BY created_ms, kid");
        let params = [pool_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(key_from_row).collect()
    }
}

// ---------------------------------------------------------------------------
// Token revocations and single-use values

/// Most expired rows one call purges.
const PURGE_BATCH: i64 = 16;

/// Deletes up to [`PURGE_BATCH`] rows of `table` with `expires_ms <= now_ms`,
/// oldest first, skipping rows other transactions hold. The outer condition
/// is re-checked on each row deleted, so a row renewed concurrently stays.
fn purge_expired(tx: &mut dyn Tx, table: &str, key_columns: &str, now_ms: i64) -> StoreResult<u64> {
    purge_up_to(tx, table, key_columns, "expires_ms", now_ms)
}

/// Deletes up to [`PURGE_BATCH`] rows of `table` with `time_column <=
/// cutoff`, lowest first, skipping rows other transactions hold, and
/// re-checking the condition on each row deleted (see [`purge_expired`]).
fn purge_up_to(tx: &mut dyn Tx, table: &str, key_columns: &str, time_column: &str, cutoff: i64) -> StoreResult<u64> {
    let sql = format!(
        "DELETE FROM {table} WHERE {time_column} <= $1 AND ({key_columns}) IN \
         (SELECT {key_columns} FROM {table} WHERE {time_column} <= $1 ORDER BY {time_column} LIMIT $2{})",
        tx.lock_rows_skip_locked()
    );
    tx.execute(&sql, &[cutoff.into(), PURGE_BATCH.into()])
}

impl<B: Backend> TokenStore for SqlStore<B> {
    fn revoke_token_family(&self, pool_id: &str, origin_jti: &str, expires_ms: i64) -> StoreResult<()> {
        let params = [pool_id.into(), origin_jti.into(), expires_ms.into()];
        let now_ms = crate::db::now_ms();
        self.db
            .write(move |tx| {
                // Purged first, so that this revocation holds until the next call
                // even if it has already expired.
                purge_expired(tx, "token_revocations", "pool_id, origin_jti", now_ms)?;
                // A missing pool fails the foreign key.
                tx.execute(
                    "INSERT INTO token_revocations (pool_id, origin_jti, expires_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (pool_id, origin_jti) DO UPDATE SET expires_ms = excluded.expires_ms \
                 WHERE excluded.expires_ms > token_revocations.expires_ms",
                    &params,
                )
                .map(|_| ())
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }

    fn is_token_family_revoked(&self, pool_id: &str, origin_jti: &str) -> StoreResult<bool> {
        let params = [pool_id.into(), origin_jti.into()];
        let rows = self
            .db
            .read(|tx| tx.query("SELECT 1 FROM token_revocations WHERE pool_id = $1 AND origin_jti = $2", &params))?;
        Ok(!rows.is_empty())
    }

    fn consume_once(&self, key: &str, expires_ms: i64, now_ms: i64) -> StoreResult<bool> {
        let params = [key.into(), expires_ms.into(), now_ms.into()];
        self.db.write(move |tx| {
            purge_expired(tx, "single_use_keys", "use_key", now_ms)?;
            // Writes a row only for a key that is new or whose previous use
            // has expired. Concurrent calls with one key serialise on it:
            // the later ones find the first one's live row and write nothing.
            let n = tx.execute(
                "INSERT INTO single_use_keys (use_key, expires_ms) VALUES ($1, $2) \
                 ON CONFLICT (use_key) DO UPDATE SET expires_ms = excluded.expires_ms \
                 WHERE single_use_keys.expires_ms <= $3",
                &params,
            )?;
            Ok(n > 0)
        })
    }
}

// ---------------------------------------------------------------------------
// Rate windows

impl<B: Backend> RateStore for SqlStore<B> {
    fn hit_rate_window(&self, key: &str, window_start_ms: i64, now_ms: i64) -> StoreResult<u64> {
        let params = [key.into(), window_start_ms.into()];
        // The latest start of a window that ended before
        // `now_ms - RATE_WINDOW_RETENTION_MS`.
        let cutoff = now_ms.saturating_sub(MAX_RATE_WINDOW_MS).saturating_sub(RATE_WINDOW_RETENTION_MS);
        let rows = self.db.write_counter(move |tx| {
            purge_up_to(tx, "rate_windows", "rate_key, window_start_ms", "window_start_ms", cutoff)?;
            // One statement: concurrent hits on a window serialise on its
            // row (or on its key's insert), each counting on top of the last.
            tx.query(
                "INSERT INTO rate_windows (rate_key, window_start_ms, hits) VALUES ($1, $2, 1) \
                 ON CONFLICT (rate_key, window_start_ms) DO UPDATE SET hits = rate_windows.hits + 1 \
                 RETURNING hits",
                &params,
            )
        })?;
        to_u64(single_int(rows)?)
    }
}

// ---------------------------------------------------------------------------
// Attempt counters

/// The SQL for "the lock after the `n`-th attempt" under `policy`, where `n` is
/// the SQL expression `attempts` and `$2` is now: NULL while attempts are free,
/// then `$2 + first_lock_ms` doubling per attempt up to `max_lock_ms`. Only the
/// policy's integers are formatted in, never caller text.
fn lock_after_sql(policy: &AttemptPolicy, attempts: &str) -> String {
    let free = i64::from(policy.free.max(1));
    let mut sql = format!("CASE WHEN {attempts} < {free} THEN NULL");
    let mut wait = policy.first_lock_ms.max(0);
    let mut n = free;
    while wait < policy.max_lock_ms {
        let _ = write!(sql, " WHEN {attempts} = {n} THEN {NOW_PARAM} + {wait}");
        wait = wait.saturating_mul(2);
        n += 1;
    }
    let _ = write!(sql, " ELSE {NOW_PARAM} + {} END", policy.max_lock_ms.max(0));
    sql
}

/// `$2` (now, in ms) typed: PostgreSQL would otherwise infer INTEGER from `$2 + 1000`.
const NOW_PARAM: &str = "CAST($2 AS BIGINT)";

/// A value no other call (on any node) uses: it only has to be unique, not
/// secret. `RandomState` keys are random per process and differ per instance.
fn call_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("{:016x}{:016x}", hasher.finish(), std::process::id())
}

impl<B: Backend> AttemptStore for SqlStore<B> {
    fn reserve_attempt(&self, key: &str, policy: &AttemptPolicy, now_ms: i64) -> StoreResult<Attempt> {
        let nonce = call_nonce();
        let expires_ms = now_ms.saturating_add(policy.retention_ms.max(policy.max_lock_ms));
        let params = [key.into(), now_ms.into(), expires_ms.into(), nonce.clone().into()];
        let locked = "attempt_counters.locked_until_ms > CAST($2 AS BIGINT)";
        // An expired row not purged yet counts from zero, as if it were gone.
        let counted = "CASE WHEN attempt_counters.expires_ms <= $2 THEN 0 ELSE attempt_counters.attempts END";
        // Every SET expression reads the row as it was before this statement,
        // on both backends; a locked row keeps its count, lock and nonce.
        let sql = format!(
            "INSERT INTO attempt_counters (attempt_key, attempts, locked_until_ms, last_nonce, expires_ms) \
             VALUES ($1, 1, {first}, $4, $3) \
             ON CONFLICT (attempt_key) DO UPDATE SET \
             attempts = CASE WHEN {locked} THEN attempt_counters.attempts ELSE {counted} + 1 END, \
             locked_until_ms = CASE WHEN {locked} THEN attempt_counters.locked_until_ms ELSE {next} END, \
             last_nonce = CASE WHEN {locked} THEN attempt_counters.last_nonce ELSE $4 END, \
             expires_ms = CASE WHEN {locked} THEN attempt_counters.expires_ms ELSE $3 END \
             RETURNING attempts, locked_until_ms, last_nonce",
            first = lock_after_sql(policy, "1"),
            next = lock_after_sql(policy, &format!("({counted} + 1)")),
        );
        let rows = self.db.write_counter(move |tx| {
            purge_expired(tx, "attempt_counters", "attempt_key", now_ms)?;
            tx.query(&sql, &params)
        })?;
        let row =
            rows.into_iter().next().ok_or_else(|| StoreError::Backend("attempt upsert returned no row".into()))?;
        let mut c = Cells::new(row);
        let attempts = c.int()?;
        let locked_until = c.opt_int()?;
        let counted_by = c.text()?;
        if counted_by == nonce {
            Ok(Attempt::Allowed(u32::try_from(attempts).unwrap_or(u32::MAX)))
        } else {
            Ok(Attempt::Locked(locked_until.unwrap_or(now_ms)))
        }
    }

    fn attempt_lock(&self, key: &str, now_ms: i64) -> StoreResult<Option<i64>> {
        let params = [key.into(), now_ms.into()];
        let rows = self.db.read(move |tx| {
            tx.query(
                "SELECT locked_until_ms FROM attempt_counters WHERE attempt_key = $1 AND locked_until_ms > $2",
                &params,
            )
        })?;
        match rows.into_iter().next() {
            Some(row) => Cells::new(row).opt_int(),
            None => Ok(None),
        }
    }

    fn clear_attempts(&self, key: &str) -> StoreResult<()> {
        let params = [key.into()];
        self.db.write_counter(move |tx| {
            tx.execute("DELETE FROM attempt_counters WHERE attempt_key = $1", &params).map(|_| ())
        })
    }
}

// ---------------------------------------------------------------------------
// Groups and memberships

/// Selected from `user_groups g`, in `group_from_row` order.
const GROUP_COLUMNS: &str = "g.pool_id, g.name, g.created_ms, g.modified_ms, g.version, g.doc, g.precedence";

/// The per-pool counters that cap how many of a kind of record a pool holds.
#[derive(Clone, Copy)]
enum PoolCounter {
    Groups,
    ImportJobs,
}

/// Counts one more record against a pool's limit: `count` is `[pool id, limit]`. The check and
/// the bump are one atomic UPDATE, which concurrent inserts into the pool serialise on, each
/// re-reading the count it compares. `NotFound(UserPool)` for a missing pool, else
/// `LimitExceeded` at the limit.
fn take_pool_slot(tx: &mut dyn Tx, counter: PoolCounter, count: &[Value; 2]) -> StoreResult<()> {
    let sql = match counter {
        PoolCounter::Groups => "UPDATE user_pools SET group_count = group_count + 1 WHERE id = $1 AND group_count < $2",
        PoolCounter::ImportJobs => {
            "UPDATE user_pools SET import_job_count = import_job_count + 1 WHERE id = $1 AND import_job_count < $2"
        }
    };
    if tx.execute(sql, count)? > 0 {
        return Ok(());
    }
    if tx.query("SELECT 1 FROM user_pools WHERE id = $1", &count[..1])?.is_empty() {
        return Err(StoreError::NotFound(Entity::UserPool));
    }
    Err(StoreError::LimitExceeded)
}

fn group_from_row(row: Row) -> StoreResult<GroupRecord> {
    let mut c = Cells::new(row);
    Ok(GroupRecord {
        pool_id: c.text()?,
        name: c.text()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        doc: c.text()?,
        precedence: c.opt_int()?,
    })
}

fn groups_from_rows(rows: Vec<Row>) -> StoreResult<Vec<GroupRecord>> {
    rows.into_iter().map(group_from_row).collect()
}

/// The statement `list_users_in_group` runs: a page of the membership
/// primary key, in order, joined to users by primary key.
pub(crate) fn group_members_statement(
    pool_id: &str,
    group: &str,
    after: Option<&str>,
    limit: usize,
) -> (String, Vec<Value>) {
    let mut params: Vec<Value> = vec![pool_id.into(), group.into()];
    let mut inner = String::from(
        "SELECT m.pool_id, m.username_key FROM group_members m WHERE m.pool_id = $1 AND m.group_name = $2",
    );
    if let Some(after) = after {
        params.push(after.into());
        let _ = write!(inner, " AND m.username_key > ${}", params.len());
    }
    params.push(sql_limit(limit));
    let _ = write!(inner, " ORDER BY m.username_key LIMIT ${}", params.len());
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM ({inner}) m \
         JOIN users u ON u.pool_id = m.pool_id AND u.username_key = m.username_key \
         ORDER BY m.username_key"
    );
    (sql, params)
}

/// The statement `list_groups_for_user` runs: a page of the membership
/// index by user, in order, joined to groups by primary key.
pub(crate) fn user_groups_statement(
    pool_id: &str,
    username_key: &str,
    after: Option<&str>,
    limit: usize,
) -> (String, Vec<Value>) {
    let mut params: Vec<Value> = vec![pool_id.into(), username_key.into()];
    let mut inner = String::from(
        "SELECT m.pool_id, m.group_name FROM group_members m WHERE m.pool_id = $1 AND m.username_key = $2",
    );
    if let Some(after) = after {
        params.push(after.into());
        let _ = write!(inner, " AND m.group_name > ${}", params.len());
    }
    params.push(sql_limit(limit));
    let _ = write!(inner, " ORDER BY m.group_name LIMIT ${}", params.len());
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM ({inner}) m \
         JOIN user_groups g ON g.pool_id = m.pool_id AND g.name = m.group_name \
         ORDER BY m.group_name"
    );
    (sql, params)
}

impl<B: Backend> GroupStore for SqlStore<B> {
    fn insert_group(&self, rec: &GroupRecord, max_groups: u64) -> StoreResult<()> {
        let params = [
            rec.pool_id.as_str().into(),
            rec.name.as_str().into(),
            rec.created_ms.into(),
            rec.modified_ms.into(),
            rec.version.into(),
            rec.doc.as_str().into(),
            rec.precedence.into(),
        ];
        let count = [rec.pool_id.as_str().into(), sql_count(max_groups).into()];
        self.db
            .write(move |tx| {
                // A missing pool fails the foreign key.
                let n = tx.execute(
                    "INSERT INTO user_groups (pool_id, name, created_ms, modified_ms, version, doc, precedence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &params,
                )?;
                if n == 0 {
                    return Err(StoreError::AlreadyExists(Entity::Group));
                }
                // Last statement (see the module comment).
                take_pool_slot(tx, PoolCounter::Groups, &count)
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }

    fn get_group(&self, pool_id: &str, name: &str) -> StoreResult<Option<GroupRecord>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM user_groups g WHERE g.pool_id = $1 AND g.name = $2");
        let params = [pool_id.into(), name.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(group_from_row).transpose()
    }

    fn update_group(&self, rec: &GroupRecord) -> StoreResult<()> {
        let key = [("pool_id", rec.pool_id.as_str().into()), ("name", rec.name.as_str().into())];
        let set = [
            ("modified_ms", rec.modified_ms.into()),
            ("doc", rec.doc.as_str().into()),
            ("precedence", rec.precedence.into()),
        ];
        let version = rec.version;
        self.db.write(move |tx| cas_update(tx, Entity::Group, "user_groups", &key, &set, version))
    }

    fn delete_group(&self, pool_id: &str, name: &str) -> StoreResult<bool> {
        let key = [pool_id.into(), name.into()];
        self.db.write(move |tx| {
            // Memberships go with it through ON DELETE CASCADE.
            if tx.execute("DELETE FROM user_groups WHERE pool_id = $1 AND name = $2", &key)? == 0 {
                return Ok(false);
            }
            tx.execute("UPDATE user_pools SET group_count = group_count - 1 WHERE id = $1", &key[..1])?;
            Ok(true)
        })
    }

    fn list_groups(&self, pool_id: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<GroupRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = match after {
            Some(after) => (
                format!(
                    "SELECT {GROUP_COLUMNS} FROM user_groups g WHERE g.pool_id = $1 AND g.name > $2 \
                     ORDER BY g.name LIMIT $3"
                ),
                vec![pool_id.into(), after.into(), sql_limit(limit)],
            ),
            None => (
                format!("SELECT {GROUP_COLUMNS} FROM user_groups g WHERE g.pool_id = $1 ORDER BY g.name LIMIT $2"),
                vec![pool_id.into(), sql_limit(limit)],
            ),
        };
        groups_from_rows(self.db.read(|tx| tx.query(&sql, &params))?)
    }

    fn add_user_to_group(
        &self,
        pool_id: &str,
        group: &str,
        username_key: &UsernameKey,
        max_groups_per_user: u64,
    ) -> StoreResult<bool> {
        let user_key = [pool_id.into(), username_key.into()];
        let group_key = [pool_id.into(), group.into()];
        let member = [pool_id.into(), group.into(), username_key.into()];
        let max = sql_count(max_groups_per_user);
        self.db
            .write(move |tx| {
                // Every membership insert for the user locks the user row first,
                // so the count below cannot change before this one commits.
                let lock = format!("SELECT 1 FROM users WHERE pool_id = $1 AND username_key = $2{}", tx.lock_rows());
                if tx.query(&lock, &user_key)?.is_empty() {
                    return Err(StoreError::NotFound(Entity::User));
                }
                if tx.query("SELECT 1 FROM user_groups WHERE pool_id = $1 AND name = $2", &group_key)?.is_empty() {
                    return Err(StoreError::NotFound(Entity::Group));
                }
                let exists = !tx
                    .query(
                        "SELECT 1 FROM group_members WHERE pool_id = $1 AND group_name = $2 AND username_key = $3",
                        &member,
                    )?
                    .is_empty();
                if exists {
                    return Ok(false);
                }
                let count = single_int(tx.query(
                    "SELECT COUNT(*) FROM group_members WHERE pool_id = $1 AND username_key = $2",
                    &user_key,
                )?)?;
                if count >= max {
                    return Err(StoreError::LimitExceeded);
                }
                // The user row is locked; a group deleted concurrently fails the
                // foreign key.
                let n = tx.execute(
                    "INSERT INTO group_members (pool_id, group_name, username_key) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                    &member,
                )?;
                Ok(n > 0)
            })
            .map_err(missing_parent_is(Entity::Group))
    }

    fn remove_user_from_group(&self, pool_id: &str, group: &str, username_key: &UsernameKey) -> StoreResult<bool> {
        let member = [pool_id.into(), group.into(), username_key.into()];
        let n = self.db.write(move |tx| {
            tx.execute(
                "DELETE FROM group_members WHERE pool_id = $1 AND group_name = $2 AND username_key = $3",
                &member,
            )
        })?;
        Ok(n > 0)
    }

    fn list_groups_for_user(
        &self,
        pool_id: &str,
        username_key: &UsernameKey,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<GroupRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = user_groups_statement(pool_id, username_key, after, limit);
        groups_from_rows(self.db.read(|tx| tx.query(&sql, &params))?)
    }

    fn list_users_in_group(
        &self,
        pool_id: &str,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = group_members_statement(pool_id, group, after, limit);
        self.read_users(sql, params)
    }
}

// ---------------------------------------------------------------------------
// User import jobs and their CSVs

const IMPORT_JOB_COLUMNS: &str = "pool_id, job_id, created_ms, modified_ms, version, doc, lease_until_ms";

fn import_job_from_row(row: Row) -> StoreResult<ImportJobRecord> {
    let mut c = Cells::new(row);
    Ok(ImportJobRecord {
        pool_id: c.text()?,
        job_id: c.text()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        doc: c.text()?,
        lease_until_ms: c.opt_int()?,
    })
}

/// The statement `list_import_jobs` runs: a backward range scan of the
/// primary key `(pool_id, created_ms, job_id)`, already in result order.
pub(crate) fn import_jobs_statement(pool_id: &str, after: Option<(i64, &str)>, limit: usize) -> (String, Vec<Value>) {
    match after {
        Some((created_ms, job_id)) => (
            format!(
                "SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs \
                 WHERE pool_id = $1 AND (created_ms, job_id) < ($2, $3) \
                 ORDER BY created_ms DESC, job_id DESC LIMIT $4"
            ),
            vec![pool_id.into(), created_ms.into(), job_id.into(), sql_limit(limit)],
        ),
        None => (
            format!(
                "SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs WHERE pool_id = $1 \
                 ORDER BY created_ms DESC, job_id DESC LIMIT $2"
            ),
            vec![pool_id.into(), sql_limit(limit)],
        ),
    }
}

/// Compare-and-set of a job's `modified_ms`, `version`, `doc` and lease.
fn update_import_job_tx(tx: &mut dyn Tx, rec: &ImportJobRecord) -> StoreResult<()> {
    let key = [("pool_id", rec.pool_id.as_str().into()), ("job_id", rec.job_id.as_str().into())];
    let set = [
        ("modified_ms", rec.modified_ms.into()),
        ("doc", rec.doc.as_str().into()),
        ("lease_until_ms", rec.lease_until_ms.into()),
    ];
    cas_update(tx, Entity::ImportJob, "import_jobs", &key, &set, rec.version)
}

/// Deletes what an import wrote of a user it then refused (its row and aliases; it has no
/// search rows yet).
fn remove_refused_user(tx: &mut dyn Tx, user: &UserRecord) -> StoreResult<()> {
    let key = [user.pool_id.as_str().into(), user.username_key.as_str().into()];
    tx.execute("DELETE FROM user_aliases WHERE pool_id = $1 AND username_key = $2", &key)?;
    tx.execute("DELETE FROM users WHERE pool_id = $1 AND username_key = $2", &key)?;
    Ok(())
}

/// Inserts one user of an import batch (the retry of a user [`import_users`] removed again)
/// so that a refused user leaves the rest of the batch alone. Returns the user's outcome;
/// `Err` only when the transaction itself failed.
///
/// No savepoints: PostgreSQL slows down badly once a transaction holds more than 64
/// subtransactions. Instead every refusal is found before or undone right after: the user
/// row goes in with `ON CONFLICT DO NOTHING`, and if an alias is taken the user's rows
/// written so far are deleted again. (A missing pool fails the foreign key, which fails
/// the whole batch with `NotFound(UserPool)`: its job is gone with the pool anyway.)
fn import_one_user(tx: &mut dyn Tx, user: &UserRecord, index: &IndexSets) -> StoreResult<StoreResult<()>> {
    match insert_user_row(tx, user) {
        Err(refused @ StoreError::AlreadyExists(_)) => return Ok(Err(refused)),
        other => other?,
    }
    for (kind, alias_key) in &index.aliases {
        match insert_alias(tx, &user.pool_id, &user.username_key, kind, alias_key) {
            Ok(()) => {}
            Err(StoreError::AliasTaken(kind)) => {
                remove_refused_user(tx, user)?;
                return Ok(Err(StoreError::AliasTaken(kind)));
            }
            Err(other) => return Err(other),
        }
    }
    insert_search_rows(tx, &user.pool_id, &user.username_key, index.search.iter())?;
    Ok(Ok(()))
}

impl<B: Backend> ImportJobStore for SqlStore<B> {
    fn insert_import_job(&self, rec: &ImportJobRecord, max_jobs: u64) -> StoreResult<()> {
        let params = [
            rec.pool_id.as_str().into(),
            rec.job_id.as_str().into(),
            rec.created_ms.into(),
            rec.modified_ms.into(),
            rec.version.into(),
            rec.doc.as_str().into(),
            rec.lease_until_ms.into(),
        ];
        let count = [rec.pool_id.as_str().into(), sql_count(max_jobs).into()];
        self.db
            .write(move |tx| {
                // A missing pool fails the foreign key.
                let n = tx.execute(
                    &format!(
                        "INSERT INTO import_jobs ({IMPORT_JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT DO NOTHING"
                    ),
                    &params,
                )?;
                if n == 0 {
                    return Err(StoreError::AlreadyExists(Entity::ImportJob));
                }
                // Last statement (see the module comment).
                take_pool_slot(tx, PoolCounter::ImportJobs, &count)
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }

    fn get_import_job(&self, pool_id: &str, job_id: &str) -> StoreResult<Option<ImportJobRecord>> {
        let sql = format!("SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs WHERE pool_id = $1 AND job_id = $2");
        let params = [pool_id.into(), job_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(import_job_from_row).transpose()
    }

    fn get_import_job_by_id(&self, job_id: &str) -> StoreResult<Option<ImportJobRecord>> {
        let sql = format!("SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs WHERE job_id = $1 ORDER BY pool_id LIMIT 1");
        let params = [job_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(import_job_from_row).transpose()
    }

    fn update_import_job(&self, rec: &ImportJobRecord) -> StoreResult<()> {
        let rec = rec.clone();
        self.db.write(move |tx| update_import_job_tx(tx, &rec))
    }

    fn list_import_jobs(
        &self,
        pool_id: &str,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<ImportJobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = import_jobs_statement(pool_id, after, limit);
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(import_job_from_row).collect()
    }

    fn put_import_csv(&self, pool_id: &str, job_id: &str, csv: &[u8]) -> StoreResult<()> {
        let params = [pool_id.into(), job_id.into(), csv.into()];
        self.db
            .write(move |tx| {
                // A missing job fails the foreign key.
                tx.execute(
                    "INSERT INTO import_job_csvs (pool_id, job_id, csv) VALUES ($1, $2, $3) \
                     ON CONFLICT (pool_id, job_id) DO UPDATE SET csv = excluded.csv",
                    &params,
                )
                .map(|_| ())
            })
            .map_err(missing_parent_is(Entity::ImportJob))
    }

    fn get_import_csv(&self, pool_id: &str, job_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let params = [pool_id.into(), job_id.into()];
        let rows = self
            .db
            .read(|tx| tx.query("SELECT csv FROM import_job_csvs WHERE pool_id = $1 AND job_id = $2", &params))?;
        rows.into_iter().next().map(|row| Cells::new(row).blob()).transpose()
    }

    fn import_user_batch(
        &self,
        users: Vec<(UserRecord, UserIndex)>,
        mut progress: ImportProgress,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        let users: Vec<(UserRecord, IndexSets)> = users.into_iter().map(|(u, i)| (u, IndexSets::new(&i))).collect();
        self.db
            .write(move |tx| {
                let outcomes = import_users(tx, &users)?;
                let job = progress(&outcomes);
                update_import_job_tx(tx, &job)?;
                // One count update per pool and shard, last (see the module comment).
                let mut imported: std::collections::BTreeMap<(&str, i64), (&str, i64)> = Default::default();
                for ((user, _), outcome) in users.iter().zip(&outcomes) {
                    if outcome.is_ok() {
                        let key = (user.pool_id.as_str(), count_shard(&user.username_key));
                        imported.entry(key).or_insert((user.username_key.as_str(), 0)).1 += 1;
                    }
                }
                for ((pool_id, _), (username_key, n)) in imported {
                    adjust_user_count(tx, pool_id, username_key, n)?;
                }
                Ok(outcomes)
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }

    fn renew_import_lease(&self, pool_id: &str, job_id: &str, version: i64, lease_until_ms: i64) -> StoreResult<bool> {
        let params = [pool_id.into(), job_id.into(), version.into(), lease_until_ms.into()];
        self.db.write(move |tx| {
            let n = tx.execute(
                "UPDATE import_jobs SET lease_until_ms = $4 \
                 WHERE pool_id = $1 AND job_id = $2 AND version = $3 AND lease_until_ms IS NOT NULL",
                &params,
            )?;
            Ok(n > 0)
        })
    }

    fn list_stalled_import_jobs(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ImportJobRecord>> {
        let sql = format!(
            "SELECT {IMPORT_JOB_COLUMNS} FROM import_jobs \
             WHERE lease_until_ms IS NOT NULL AND lease_until_ms < $1 ORDER BY lease_until_ms LIMIT $2"
        );
        let params = [now_ms.into(), sql_limit(limit)];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(import_job_from_row).collect()
    }
}

// ---------------------------------------------------------------------------
// Identities and their logins

/// Selected from `identities i`, in `identity_from_cells` order.
const IDENTITY_COLUMNS: &str = "i.identity_pool_id, i.identity_id, i.created_ms, i.modified_ms, i.version, i.doc";

fn identity_from_cells(c: &mut Cells) -> StoreResult<IdentityRecord> {
    Ok(IdentityRecord {
        identity_pool_id: c.text()?.into(),
        identity_id: c.text()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        doc: c.text()?,
    })
}

fn identity_from_row(row: Row) -> StoreResult<IdentityRecord> {
    identity_from_cells(&mut Cells::new(row))
}

const INSERT_LOGINS: &str = "INSERT INTO identity_logins (identity_pool_id, provider, subject, identity_id)";

/// The `identity_logins` rows linking `logins` to an identity, once each and in
/// (provider, subject) order: concurrent writers then take the login keys in
/// one order, and cannot deadlock on them.
fn login_rows(identity_pool_id: &str, identity_id: &str, logins: &[IdentityLogin]) -> Vec<Vec<Value>> {
    let logins: BTreeSet<&IdentityLogin> = logins.iter().collect();
    logins
        .into_iter()
        .map(|l| {
            vec![identity_pool_id.into(), l.provider.as_str().into(), l.subject.as_str().into(), identity_id.into()]
        })
        .collect()
}

/// Locks the identity row for the rest of the transaction; false if there is
/// no such identity. Link and merge both lock the identities they work on:
/// otherwise a merge could move the source's logins, miss one that a
/// concurrent link is adding to the source, and then delete that login with
/// the source (by the cascade) although the link succeeded.
fn lock_identity(tx: &mut dyn Tx, key: &[Value; 2]) -> StoreResult<bool> {
    let sql = format!("SELECT 1 FROM identities WHERE identity_pool_id = $1 AND identity_id = $2{}", tx.lock_rows());
    Ok(!tx.query(&sql, key)?.is_empty())
}

/// Last statement of an identity insert or delete (see the module comment):
/// adds `delta` to the pool's count shard for `identity_id`.
fn adjust_identity_count(tx: &mut dyn Tx, identity_pool_id: &str, identity_id: &str, delta: i64) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO identity_count_shards (identity_pool_id, shard, identities) VALUES ($1, $2, $3) \
         ON CONFLICT (identity_pool_id, shard) \
         DO UPDATE SET identities = identity_count_shards.identities + excluded.identities",
        &[identity_pool_id.into(), count_shard(identity_id).into(), delta.into()],
    )?;
    Ok(())
}

/// The statement `list_identities` runs: a page of the primary key, in order,
/// each identity then joined to its logins through the by-identity index. One
/// statement, so that the page and its logins are one snapshot. The logins
/// come in no particular order (asking SQLite for (provider, subject) order
/// costs a sort per identity, although its index has them in that order):
/// the caller sorts each identity's few logins itself.
pub(crate) fn identities_statement(identity_pool_id: &str, after: Option<&str>, limit: usize) -> (String, Vec<Value>) {
    let mut params: Vec<Value> = vec![identity_pool_id.into()];
    let mut inner = format!("SELECT {IDENTITY_COLUMNS} FROM identities i WHERE i.identity_pool_id = $1");
    if let Some(after) = after {
        params.push(after.into());
        let _ = write!(inner, " AND i.identity_id > ${}", params.len());
    }
    params.push(sql_limit(limit));
    let _ = write!(inner, " ORDER BY i.identity_id LIMIT ${}", params.len());
    let sql = format!(
        "SELECT {IDENTITY_COLUMNS}, l.provider, l.subject FROM ({inner}) i \
         LEFT JOIN identity_logins l ON l.identity_id = i.identity_id AND l.identity_pool_id = i.identity_pool_id \
         ORDER BY i.identity_id"
    );
    (sql, params)
}

impl<B: Backend> IdentityStore for SqlStore<B> {
    fn insert_identity(&self, rec: &IdentityRecord, logins: &[IdentityLogin]) -> StoreResult<()> {
        let params = [
            rec.identity_pool_id.as_str().into(),
            rec.identity_id.as_str().into(),
            rec.created_ms.into(),
            rec.modified_ms.into(),
            rec.version.into(),
            rec.doc.as_str().into(),
        ];
        let rows = login_rows(&rec.identity_pool_id, &rec.identity_id, logins);
        let (identity_pool_id, identity_id) = (rec.identity_pool_id.to_string(), rec.identity_id.clone());
        self.db
            .write(move |tx| {
                // A missing pool fails the foreign key; an identity id taken in
                // any pool conflicts on the unique index.
                let n = tx.execute(
                    "INSERT INTO identities (identity_pool_id, identity_id, created_ms, modified_ms, version, doc) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &params,
                )?;
                if n == 0 {
                    return Err(StoreError::AlreadyExists(Entity::Identity));
                }
                // A login another transaction is inserting makes this one wait
                // for its outcome: of two first sign-ins with one login, the
                // second finds it taken. Failing rolls back the identity too.
                let linked = insert_many(tx, INSERT_LOGINS, &rows, "ON CONFLICT DO NOTHING RETURNING provider")?;
                if linked.len() < rows.len() {
                    return Err(StoreError::AlreadyExists(Entity::IdentityLogin));
                }
                // Last statement (see the module comment).
                adjust_identity_count(tx, &identity_pool_id, &identity_id, 1)
            })
            .map_err(missing_parent_is(Entity::IdentityPool))
    }

    fn get_identity(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<Option<IdentityRecord>> {
        let sql =
            format!("SELECT {IDENTITY_COLUMNS} FROM identities i WHERE i.identity_pool_id = $1 AND i.identity_id = $2");
        let params = [identity_pool_id.into(), identity_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(identity_from_row).transpose()
    }

    fn get_identity_by_id(&self, identity_id: &str) -> StoreResult<Option<IdentityRecord>> {
        // The unique index on the id alone finds it, whatever the pool.
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities i WHERE i.identity_id = $1");
        let params = [identity_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(identity_from_row).transpose()
    }

    fn find_identity_by_login(
        &self,
        identity_pool_id: &str,
        login: &IdentityLogin,
    ) -> StoreResult<Option<IdentityRecord>> {
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identity_logins l \
             JOIN identities i ON i.identity_pool_id = l.identity_pool_id AND i.identity_id = l.identity_id \
             WHERE l.identity_pool_id = $1 AND l.provider = $2 AND l.subject = $3"
        );
        let params = [identity_pool_id.into(), login.provider.as_str().into(), login.subject.as_str().into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(identity_from_row).transpose()
    }

    fn list_identity_logins(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<Vec<IdentityLogin>> {
        let params = [identity_pool_id.into(), identity_id.into()];
        let rows = self.db.read(|tx| {
            tx.query(
                "SELECT provider, subject FROM identity_logins \
                 WHERE identity_pool_id = $1 AND identity_id = $2 ORDER BY provider, subject",
                &params,
            )
        })?;
        rows.into_iter()
            .map(|row| {
                let mut c = Cells::new(row);
                Ok(IdentityLogin { provider: c.text()?, subject: c.text()? })
            })
            .collect()
    }

    fn link_identity_logins(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        logins: &[IdentityLogin],
    ) -> StoreResult<()> {
        let key = [identity_pool_id.into(), identity_id.into()];
        let rows = login_rows(identity_pool_id, identity_id, logins);
        self.db
            .write(move |tx| {
                if !lock_identity(tx, &key)? {
                    return Err(StoreError::NotFound(Entity::Identity));
                }
                // A login already linked to this identity is "updated" to what
                // it is, so that it is returned (and locked) like a new one; a
                // login of another identity is neither.
                let linked = insert_many(
                    tx,
                    INSERT_LOGINS,
                    &rows,
                    "ON CONFLICT (identity_pool_id, provider, subject) \
                     DO UPDATE SET identity_id = excluded.identity_id \
                     WHERE identity_logins.identity_id = excluded.identity_id RETURNING provider",
                )?;
                if linked.len() < rows.len() {
                    return Err(StoreError::AlreadyExists(Entity::IdentityLogin));
                }
                Ok(())
            })
            .map_err(missing_parent_is(Entity::Identity))
    }

    fn unlink_identity_logins(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        logins: &[IdentityLogin],
    ) -> StoreResult<u64> {
        let rows = login_rows(identity_pool_id, identity_id, logins);
        self.db.write(move |tx| {
            let mut unlinked = 0;
            for row in &rows {
                unlinked += tx.execute(
                    "DELETE FROM identity_logins \
                     WHERE identity_pool_id = $1 AND provider = $2 AND subject = $3 AND identity_id = $4",
                    row,
                )?;
            }
            Ok(unlinked)
        })
    }

    fn merge_identities(&self, identity_pool_id: &str, source: &str, destination: &str) -> StoreResult<()> {
        let (pool, source, destination) = (identity_pool_id.to_owned(), source.to_owned(), destination.to_owned());
        self.db.write(move |tx| {
            // Locked in identity id order, so that two merges of one pair in
            // opposite directions do not deadlock: the second finds one gone.
            let mut ids = [source.as_str(), destination.as_str()];
            ids.sort_unstable();
            for id in ids {
                if !lock_identity(tx, &[pool.as_str().into(), id.into()])? {
                    return Err(StoreError::NotFound(Entity::Identity));
                }
            }
            if source == destination {
                // Its logins are where they are to go already; deleting it
                // would lose them.
                return Ok(());
            }
            // The login key does not include the identity, so moving a login
            // cannot collide with one the destination holds.
            tx.execute(
                "UPDATE identity_logins SET identity_id = $3 WHERE identity_pool_id = $1 AND identity_id = $2",
                &[pool.as_str().into(), source.as_str().into(), destination.as_str().into()],
            )?;
            // The source's live datasets are copied to the destination as merged datasets,
            // then its sync data goes with it (see "Cognito Sync" for the lock order).
            let (gained, gained_bytes) = copy_merged_datasets(tx, &pool, &source, &destination)?;
            let (lost, lost_bytes) = drop_identity_sync_data(tx, &pool, &source)?;
            tx.execute(
                "DELETE FROM identities WHERE identity_pool_id = $1 AND identity_id = $2",
                &[pool.as_str().into(), source.as_str().into()],
            )?;
            // The two shards in shard order, so that two merges cannot wait on each other.
            let mut shards = [(source.as_str(), lost, lost_bytes), (destination.as_str(), gained, gained_bytes)];
            shards.sort_by_key(|(id, _, _)| count_shard(id));
            for (id, identities, bytes) in shards {
                if identities != 0 || bytes != 0 {
                    adjust_pool_sync_usage(tx, &pool, id, identities, bytes, 0)?;
                }
            }
            // Last statement (see the module comment).
            adjust_identity_count(tx, &pool, &source, -1)
        })
    }

    fn update_identity(&self, rec: &IdentityRecord) -> StoreResult<()> {
        let key = [
            ("identity_pool_id", rec.identity_pool_id.as_str().into()),
            ("identity_id", rec.identity_id.as_str().into()),
        ];
        let set = [("modified_ms", rec.modified_ms.into()), ("doc", rec.doc.as_str().into())];
        let version = rec.version;
        self.db.write(move |tx| cas_update(tx, Entity::Identity, "identities", &key, &set, version))
    }

    fn delete_identity(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<bool> {
        let key = [identity_pool_id.into(), identity_id.into()];
        let (pool, id) = (identity_pool_id.to_owned(), identity_id.to_owned());
        self.db.write(move |tx| {
            // Locked first, then its sync data goes (see "Cognito Sync" for the lock order).
            if !lock_identity(tx, &key)? {
                return Ok(false);
            }
            let (identities, bytes) = drop_identity_sync_data(tx, &pool, &id)?;
            // Its logins go with it through ON DELETE CASCADE.
            if tx.execute("DELETE FROM identities WHERE identity_pool_id = $1 AND identity_id = $2", &key)? == 0 {
                return Ok(false);
            }
            if identities != 0 || bytes != 0 {
                adjust_pool_sync_usage(tx, &pool, &id, identities, bytes, 0)?;
            }
            adjust_identity_count(tx, &pool, &id, -1)?;
            Ok(true)
        })
    }

    fn list_identities(
        &self,
        identity_pool_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(IdentityRecord, Vec<IdentityLogin>)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = identities_statement(identity_pool_id, after, limit);
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        let mut page: Vec<(IdentityRecord, Vec<IdentityLogin>)> = Vec::new();
        // One row per login (or one with NULLs for an identity without any),
        // an identity's rows together.
        for row in rows {
            let mut c = Cells::new(row);
            let identity = identity_from_cells(&mut c)?;
            let login = match (c.opt_text()?, c.opt_text()?) {
                (Some(provider), Some(subject)) => Some(IdentityLogin { provider, subject }),
                _ => None,
            };
            match page.last_mut() {
                Some((last, logins)) if last.identity_id == identity.identity_id => logins.extend(login),
                _ => page.push((identity, login.into_iter().collect())),
            }
        }
        // String order is byte order, the order the listing promises.
        for (_, logins) in &mut page {
            logins.sort_unstable();
        }
        Ok(page)
    }

    fn count_identities(&self, identity_pool_id: &str) -> StoreResult<u64> {
        let params = [identity_pool_id.into()];
        let rows = self.db.read(|tx| {
            // SUM of a PostgreSQL BIGINT is NUMERIC: cast back.
            tx.query(
                "SELECT CAST(COALESCE(SUM(identities), 0) AS BIGINT) FROM identity_count_shards \
                 WHERE identity_pool_id = $1",
                &params,
            )
        })?;
        to_u64(single_int(rows)?)
    }
}

// ---------------------------------------------------------------------------
// User pool domains

const DOMAIN_COLUMNS: &str = "domain, pool_id, custom, created_ms, modified_ms, version, doc";

fn domain_from_row(row: Row) -> StoreResult<DomainRecord> {
    let mut c = Cells::new(row);
    Ok(DomainRecord {
        domain: c.text()?,
        pool_id: c.text()?,
        custom: c.bool()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        doc: c.text()?,
    })
}

impl<B: Backend> DomainStore for SqlStore<B> {
    fn insert_domain(&self, rec: &DomainRecord) -> StoreResult<()> {
        let params = [
            rec.domain.as_str().into(),
            rec.pool_id.as_str().into(),
            rec.custom.into(),
            rec.created_ms.into(),
            rec.modified_ms.into(),
            rec.version.into(),
            rec.doc.as_str().into(),
        ];
        self.db
            .write(move |tx| {
                // Either unique key (the name, or the pool's domain of this kind) refuses it.
                let inserted = tx.execute(
                    &format!(
                        "INSERT INTO user_pool_domains ({DOMAIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                              ON CONFLICT DO NOTHING"
                    ),
                    &params,
                )?;
                if inserted == 0 {
                    return Err(StoreError::AlreadyExists(Entity::Domain));
                }
                Ok(())
            })
            .map_err(missing_parent_is(Entity::UserPool))
    }

    fn get_domain(&self, domain: &str) -> StoreResult<Option<DomainRecord>> {
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM user_pool_domains WHERE domain = $1");
        let params = [domain.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(domain_from_row).transpose()
    }

    fn list_pool_domains(&self, pool_id: &str) -> StoreResult<Vec<DomainRecord>> {
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM user_pool_domains WHERE pool_id = $1 ORDER BY custom");
        let params = [pool_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(domain_from_row).collect()
    }

    fn update_domain(&self, rec: &DomainRecord) -> StoreResult<()> {
        let key = [("domain", rec.domain.as_str().into()), ("pool_id", rec.pool_id.as_str().into())];
        let set = [("modified_ms", rec.modified_ms.into()), ("doc", rec.doc.as_str().into())];
        let version = rec.version;
        self.db.write(move |tx| cas_update(tx, Entity::Domain, "user_pool_domains", &key, &set, version))
    }

    fn delete_domain(&self, pool_id: &str, domain: &str) -> StoreResult<bool> {
        let params = [pool_id.into(), domain.into()];
        Ok(self
            .db
            .write(move |tx| tx.execute("DELETE FROM user_pool_domains WHERE pool_id = $1 AND domain = $2", &params))?
            > 0)
    }
}

// ---------------------------------------------------------------------------
// Managed login branding styles

const BRANDING_COLUMNS: &str = "pool_id, branding_id, client_id, created_ms, modified_ms, version, doc";

fn branding_from_row(row: Row) -> StoreResult<ManagedLoginBrandingRecord> {
    let mut c = Cells::new(row);
    Ok(ManagedLoginBrandingRecord {
        pool_id: c.text()?,
        branding_id: c.text()?,
        client_id: c.text()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        version: c.int()?,
        doc: c.text()?,
    })
}

impl<B: Backend> SqlStore<B> {
    fn select_branding(
        &self,
        key_column: &str,
        pool_id: &str,
        key: &str,
    ) -> StoreResult<Option<ManagedLoginBrandingRecord>> {
        let sql =
            format!("SELECT {BRANDING_COLUMNS} FROM managed_login_brandings WHERE pool_id = $1 AND {key_column} = $2");
        let params = [pool_id.into(), key.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(branding_from_row).transpose()
    }
}

impl<B: Backend> ManagedLoginBrandingStore for SqlStore<B> {
    fn insert_managed_login_branding(&self, rec: &ManagedLoginBrandingRecord, max_per_pool: u64) -> StoreResult<()> {
        let params = [
            rec.pool_id.as_str().into(),
            rec.branding_id.as_str().into(),
            rec.client_id.as_str().into(),
            rec.created_ms.into(),
            rec.modified_ms.into(),
            rec.version.into(),
            rec.doc.as_str().into(),
        ];
        self.db
            .write(move |tx| {
                // The pool row's lock makes concurrent inserts into one pool count one after
                // another, so the limit holds across nodes.
                let lock = format!("SELECT 1 FROM user_pools WHERE id = $1{}", tx.lock_rows());
                if tx.query(&lock, &params[..1])?.is_empty() {
                    return Err(StoreError::NotFound(Entity::UserPool));
                }
                let client_key = [params[0].clone(), params[2].clone()];
                if tx.query("SELECT 1 FROM app_clients WHERE pool_id = $1 AND client_id = $2", &client_key)?.is_empty()
                {
                    return Err(StoreError::NotFound(Entity::AppClient));
                }
                let styled = "SELECT 1 FROM managed_login_brandings WHERE pool_id = $1 AND client_id = $2";
                if !tx.query(styled, &client_key)?.is_empty() {
                    return Err(StoreError::AlreadyExists(Entity::ManagedLoginBranding));
                }
                let count = single_int(
                    tx.query("SELECT COUNT(*) FROM managed_login_brandings WHERE pool_id = $1", &params[..1])?,
                )?;
                if count >= sql_count(max_per_pool) {
                    return Err(StoreError::LimitExceeded);
                }
                let inserted = tx.execute(
                    &format!(
                        "INSERT INTO managed_login_brandings ({BRANDING_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
                    ),
                    &params,
                )?;
                if inserted == 0 {
                    return Err(StoreError::AlreadyExists(Entity::ManagedLoginBranding));
                }
                Ok(())
            })
            // A client deleted after the check above (PostgreSQL) fails the foreign key.
            .map_err(missing_parent_is(Entity::AppClient))
    }

    fn get_managed_login_branding(
        &self,
        pool_id: &str,
        branding_id: &str,
    ) -> StoreResult<Option<ManagedLoginBrandingRecord>> {
        self.select_branding("branding_id", pool_id, branding_id)
    }

    fn get_client_managed_login_branding(
        &self,
        pool_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ManagedLoginBrandingRecord>> {
        self.select_branding("client_id", pool_id, client_id)
    }

    fn update_managed_login_branding(&self, rec: &ManagedLoginBrandingRecord) -> StoreResult<()> {
        let key = [("pool_id", rec.pool_id.as_str().into()), ("branding_id", rec.branding_id.as_str().into())];
        let set = [("modified_ms", rec.modified_ms.into()), ("doc", rec.doc.as_str().into())];
        let version = rec.version;
        self.db.write(move |tx| {
            cas_update(tx, Entity::ManagedLoginBranding, "managed_login_brandings", &key, &set, version)
        })
    }

    fn delete_managed_login_branding(&self, pool_id: &str, branding_id: &str) -> StoreResult<bool> {
        let params = [pool_id.into(), branding_id.into()];
        let sql = "DELETE FROM managed_login_brandings WHERE pool_id = $1 AND branding_id = $2";
        Ok(self.db.write(move |tx| tx.execute(sql, &params))? > 0)
    }
}

impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn ping(&self) -> StoreResult<()> {
        self.db.ping()
    }
}

// ---------------------------------------------------------------------------
// Cognito Sync datasets and records
//
// Lock order, on every path: the identity row (identity deletes and merges
// only), then the dataset row(s), then the identity's usage row, then the
// pool's usage shard (last statement). An update of an existing dataset
// never locks the identity row, so it cannot wait on an identity delete that
// waits on its dataset.

const DATASET_COLUMNS: &str = "identity_pool_id, identity_id, name, created_ms, modified_ms, last_modified_by, \
                               sync_count, num_records, data_bytes, deleted";

const SYNC_RECORD_COLUMNS: &str = "key, value, sync_count, modified_ms, last_modified_by, device_modified_ms";

const INSERT_SYNC_RECORDS: &str = "INSERT INTO sync_records (identity_pool_id, identity_id, dataset, key, value, \
                                   sync_count, modified_ms, last_modified_by, device_modified_ms)";

fn dataset_from_row(row: Row) -> StoreResult<DatasetRecord> {
    let mut c = Cells::new(row);
    Ok(DatasetRecord {
        identity_pool_id: c.text()?.into(),
        identity_id: c.text()?,
        name: c.text()?,
        created_ms: c.int()?,
        modified_ms: c.int()?,
        last_modified_by: c.text()?,
        sync_count: c.int()?,
        num_records: c.int()?,
        data_bytes: c.int()?,
        deleted: c.bool()?,
    })
}

fn sync_record_from_row(row: Row) -> StoreResult<SyncRecord> {
    let mut c = Cells::new(row);
    Ok(SyncRecord {
        key: c.text()?,
        value: c.opt_text()?,
        sync_count: c.int()?,
        modified_ms: c.int()?,
        last_modified_by: c.text()?,
        device_modified_ms: c.opt_int()?,
    })
}

/// A live record's bytes: its key and value, UTF-8.
fn record_bytes(key: &str, value: Option<&str>) -> i64 {
    value.map_or(0, |v| i64::try_from(key.len() + v.len()).unwrap_or(i64::MAX))
}

/// Whether `new` (a record count or byte total) breaks `limit`. A change that
/// does not grow past the limit is allowed, so that a dataset over a lowered
/// limit can still shrink.
fn over_limit(old: i64, new: i64, limit: u64) -> bool {
    new > old && new > sql_count(limit)
}

/// Locks the dataset row (tombstones included) for the rest of the transaction.
fn lock_dataset(tx: &mut dyn Tx, key: &[Value; 3]) -> StoreResult<Option<DatasetRecord>> {
    let sql = format!(
        "SELECT {DATASET_COLUMNS} FROM sync_datasets \
         WHERE identity_pool_id = $1 AND identity_id = $2 AND name = $3{}",
        tx.lock_rows()
    );
    tx.query(&sql, key)?.into_iter().next().map(dataset_from_row).transpose()
}

/// Locks the identity's usage row, inserting a zero one if it has none; its
/// live dataset count, and whether the row was inserted.
fn lock_identity_usage(tx: &mut dyn Tx, key: &[Value; 2]) -> StoreResult<(i64, bool)> {
    let sql = format!(
        "SELECT datasets FROM sync_identity_usage WHERE identity_pool_id = $1 AND identity_id = $2{}",
        tx.lock_rows()
    );
    if let Some(row) = tx.query(&sql, key)?.into_iter().next() {
        return Ok((Cells::new(row).int()?, false));
    }
    // A concurrent insert of the row makes this one wait for its outcome.
    let inserted = tx.execute(
        "INSERT INTO sync_identity_usage (identity_pool_id, identity_id, datasets, data_bytes, modified_ms) \
         VALUES ($1, $2, 0, 0, 0) ON CONFLICT DO NOTHING",
        key,
    )? > 0;
    Ok((single_int(tx.query(&sql, key)?)?, inserted))
}

/// Adds to the identity's usage (whose row [`lock_identity_usage`] or an
/// earlier change made); its live dataset count after.
fn adjust_identity_usage(
    tx: &mut dyn Tx,
    key: &[Value; 2],
    datasets: i64,
    bytes: i64,
    now_ms: i64,
) -> StoreResult<i64> {
    let rows = tx.query(
        "INSERT INTO sync_identity_usage (identity_pool_id, identity_id, datasets, data_bytes, modified_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity_pool_id, identity_id) DO UPDATE SET \
         datasets = sync_identity_usage.datasets + excluded.datasets, \
         data_bytes = sync_identity_usage.data_bytes + excluded.data_bytes, \
         modified_ms = CASE WHEN sync_identity_usage.modified_ms > excluded.modified_ms \
         THEN sync_identity_usage.modified_ms ELSE excluded.modified_ms END \
         RETURNING datasets",
        &[key[0].clone(), key[1].clone(), datasets.into(), bytes.into(), now_ms.into()],
    )?;
    single_int(rows)
}

/// Last statement of a sync write (see the module comment): adds to the pool's
/// usage shard for `identity_id`. `modified_ms` only ever rises.
fn adjust_pool_sync_usage(
    tx: &mut dyn Tx,
    identity_pool_id: &str,
    identity_id: &str,
    identities: i64,
    bytes: i64,
    now_ms: i64,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO sync_pool_usage_shards (identity_pool_id, shard, identities, data_bytes, modified_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity_pool_id, shard) DO UPDATE SET \
         identities = sync_pool_usage_shards.identities + excluded.identities, \
         data_bytes = sync_pool_usage_shards.data_bytes + excluded.data_bytes, \
         modified_ms = CASE WHEN sync_pool_usage_shards.modified_ms > excluded.modified_ms \
         THEN sync_pool_usage_shards.modified_ms ELSE excluded.modified_ms END",
        &[identity_pool_id.into(), count_shard(identity_id).into(), identities.into(), bytes.into(), now_ms.into()],
    )?;
    Ok(())
}

/// Deletes an identity's datasets (their records go by the cascade) and usage
/// row, before the identity itself is deleted, in the lock order of the module
/// comment (the caller holds the identity row); the usage the pool loses
/// (identities, bytes), for [`adjust_pool_sync_usage`].
fn drop_identity_sync_data(tx: &mut dyn Tx, identity_pool_id: &str, identity_id: &str) -> StoreResult<(i64, i64)> {
    let key = [identity_pool_id.into(), identity_id.into()];
    tx.execute("DELETE FROM sync_datasets WHERE identity_pool_id = $1 AND identity_id = $2", &key)?;
    let rows = tx.query(
        "DELETE FROM sync_identity_usage WHERE identity_pool_id = $1 AND identity_id = $2 \
         RETURNING datasets, data_bytes",
        &key,
    )?;
    match rows.into_iter().next() {
        Some(row) => {
            let mut c = Cells::new(row);
            let (datasets, bytes) = (c.int()?, c.int()?);
            Ok((-i64::from(datasets > 0), -bytes))
        }
        None => Ok((0, 0)),
    }
}

/// Copies `source`'s live datasets and their live records to `destination`, each named
/// `{name}.{source}` (the form Cognito Sync's clients look for: a dataset's merged datasets
/// are those named after it and a dot), and counts them in the destination's usage; what
/// the pool's usage gains (identities, bytes); the identity's last change becomes the copied
/// datasets' latest if later. A name the destination already uses is
/// skipped. Merged datasets do not count against the dataset limit: a merge is not refused.
fn copy_merged_datasets(
    tx: &mut dyn Tx,
    identity_pool_id: &str,
    source: &str,
    destination: &str,
) -> StoreResult<(i64, i64)> {
    let rows = tx.query(
        &format!(
            "INSERT INTO sync_datasets ({DATASET_COLUMNS}) SELECT identity_pool_id, $3, name || '.' || $2, created_ms, \
             modified_ms, last_modified_by, sync_count, num_records, data_bytes, deleted FROM sync_datasets \
             WHERE identity_pool_id = $1 AND identity_id = $2 AND deleted = $4 \
             ON CONFLICT DO NOTHING RETURNING name, data_bytes, modified_ms"
        ),
        &[identity_pool_id.into(), source.into(), destination.into(), false.into()],
    )?;
    let mut copied = Vec::with_capacity(rows.len());
    let (mut bytes, mut modified_ms) = (0, 0);
    for row in rows {
        let mut c = Cells::new(row);
        copied.push(c.text()?);
        bytes += c.int()?;
        modified_ms = modified_ms.max(c.int()?);
    }
    for name in &copied {
        let original = name.strip_suffix(&format!(".{source}")).unwrap_or(name);
        tx.execute(
            &format!(
                "{INSERT_SYNC_RECORDS} SELECT identity_pool_id, $3, $4, key, value, sync_count, modified_ms, \
                 last_modified_by, device_modified_ms FROM sync_records \
                 WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset = $5 AND value IS NOT NULL"
            ),
            &[identity_pool_id.into(), source.into(), destination.into(), name.as_str().into(), original.into()],
        )?;
    }
    if copied.is_empty() {
        return Ok((0, 0));
    }
    let key = [identity_pool_id.into(), destination.into()];
    let (before, _) = lock_identity_usage(tx, &key)?;
    let count = i64::try_from(copied.len()).unwrap_or(i64::MAX);
    adjust_identity_usage(tx, &key, count, bytes, modified_ms)?;
    Ok((i64::from(before == 0), bytes))
}

/// The stored records of `keys` (each once) of a dataset, by key.
fn sync_records_by_key(
    tx: &mut dyn Tx,
    key: &[Value; 3],
    keys: &[&str],
) -> StoreResult<std::collections::BTreeMap<String, SyncRecord>> {
    let mut found = std::collections::BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut sql = format!(
            "SELECT {SYNC_RECORD_COLUMNS} FROM sync_records \
             WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset = $3 AND key IN ("
        );
        let mut params: Vec<Value> = key.to_vec();
        for (i, k) in chunk.iter().enumerate() {
            let _ = write!(sql, "{}${}", if i == 0 { "" } else { ", " }, params.len() + 1);
            params.push((*k).into());
        }
        sql.push(')');
        for row in tx.query(&sql, &params)? {
            let record = sync_record_from_row(row)?;
            found.insert(record.key.clone(), record);
        }
    }
    Ok(found)
}

/// The statement `list_sync_records` runs: a range scan of the by-count index
/// from the later of `after_sync_count` and the cursor, already in result order.
pub(crate) fn sync_records_statement(
    identity_pool_id: &str,
    identity_id: &str,
    name: &str,
    after_sync_count: i64,
    after: Option<(i64, &str)>,
    limit: usize,
) -> (String, Vec<Value>) {
    let mut params: Vec<Value> = vec![identity_id.into(), identity_pool_id.into(), name.into()];
    let mut sql = format!(
        "SELECT {SYNC_RECORD_COLUMNS} FROM sync_records \
         WHERE identity_id = $1 AND identity_pool_id = $2 AND dataset = $3"
    );
    // One bound, the tighter: a cursor below `after_sync_count` excludes
    // nothing the count does not.
    match after {
        Some((count, key)) if count >= after_sync_count => {
            params.push(count.into());
            params.push(key.into());
            sql.push_str(" AND (sync_count, key) > ($4, $5)");
        }
        _ => {
            params.push(after_sync_count.into());
            sql.push_str(" AND sync_count > $4");
        }
    }
    params.push(sql_limit(limit));
    let _ = write!(sql, " ORDER BY sync_count, key LIMIT ${}", params.len());
    (sql, params)
}

/// What one key's patches (the last of them wins) do to its record.
struct KeyChange<'a> {
    key: &'a str,
    patch: &'a SyncPatch,
    stored: Option<&'a SyncRecord>,
}

impl KeyChange<'_> {
    fn old_value(&self) -> Option<&str> {
        self.stored.and_then(|r| r.value.as_deref())
    }
    /// Removing a record that is absent or removed already changes nothing.
    fn is_noop(&self) -> bool {
        self.patch.value.is_none() && self.old_value().is_none()
    }
}

#[allow(clippy::too_many_arguments)]
fn update_sync_records_tx(
    tx: &mut dyn Tx,
    identity_pool_id: &str,
    identity_id: &str,
    name: &str,
    patches: &[SyncPatch],
    modified_by: &str,
    now_ms: i64,
    limits: &SyncLimits,
    notify: bool,
) -> StoreResult<Result<(DatasetRecord, Vec<SyncRecord>), SyncRefusal>> {
    let key: [Value; 3] = [identity_pool_id.into(), identity_id.into(), name.into()];
    let identity_key: [Value; 2] = [identity_pool_id.into(), identity_id.into()];
    // Lock the dataset row, creating a placeholder (a tombstone at sync count
    // 0) if there is none, so that there is a row to lock: a concurrent
    // creator waits on this insert. A missing identity fails its foreign key.
    let mut dataset = lock_dataset(tx, &key)?;
    let mut placeholder = false;
    if dataset.is_none() {
        placeholder = tx.execute(
            &format!(
                "INSERT INTO sync_datasets ({DATASET_COLUMNS}) VALUES ($1, $2, $3, $4, $4, $5, 0, 0, 0, $6) \
                 ON CONFLICT DO NOTHING"
            ),
            &[key[0].clone(), key[1].clone(), key[2].clone(), now_ms.into(), modified_by.into(), true.into()],
        )? > 0;
        dataset = lock_dataset(tx, &key)?;
    }
    let Some(dataset) = dataset else {
        return Err(StoreError::Backend("dataset row vanished while locked".into()));
    };
    let drop_placeholder = |tx: &mut dyn Tx| -> StoreResult<()> {
        if placeholder {
            tx.execute(
                "DELETE FROM sync_datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND name = $3",
                &key,
            )?;
        }
        Ok(())
    };

    let keys: BTreeSet<&str> = patches.iter().map(|p| p.key.as_str()).collect();
    let stored = sync_records_by_key(tx, &key, &keys.iter().copied().collect::<Vec<_>>())?;
    for p in patches {
        let at = stored.get(&p.key).map_or(0, |r| r.sync_count);
        if p.expected_sync_count != at {
            drop_placeholder(tx)?;
            return Ok(Err(SyncRefusal::Conflict { key: p.key.clone() }));
        }
    }
    let mut changes: std::collections::BTreeMap<&str, KeyChange<'_>> = std::collections::BTreeMap::new();
    for p in patches {
        changes.insert(&p.key, KeyChange { key: &p.key, patch: p, stored: stored.get(&p.key) });
    }
    let unchanged: Vec<SyncRecord> = changes.values().filter_map(|c| c.stored.cloned()).collect();
    if changes.values().all(KeyChange::is_noop) {
        // Nothing to write: the dataset (the placeholder if there is none,
        // which is not kept) and the patched keys' records as they are.
        drop_placeholder(tx)?;
        return Ok(Ok((dataset, unchanged)));
    }

    let was_live = !dataset.deleted;
    let (old_records, old_bytes) = if was_live { (dataset.num_records, dataset.data_bytes) } else { (0, 0) };
    let (mut new_records, mut new_bytes) = (old_records, old_bytes);
    for c in changes.values() {
        new_records += i64::from(c.patch.value.is_some()) - i64::from(c.old_value().is_some());
        new_bytes += record_bytes(c.key, c.patch.value.as_deref()) - record_bytes(c.key, c.old_value());
    }
    let mut identities_delta = 0;
    let mut refusal = None;
    let mut usage_inserted = false;
    if !was_live {
        let (datasets, inserted) = lock_identity_usage(tx, &identity_key)?;
        usage_inserted = inserted;
        if datasets.saturating_add(1) > sql_count(limits.datasets_per_identity) {
            refusal = Some(SyncRefusal::TooManyDatasets);
        }
        identities_delta = i64::from(datasets == 0);
    }
    if refusal.is_none() && over_limit(old_records, new_records, limits.records_per_dataset) {
        refusal = Some(SyncRefusal::TooManyRecords);
    }
    if refusal.is_none() && over_limit(old_bytes, new_bytes, limits.bytes_per_dataset) {
        refusal = Some(SyncRefusal::TooManyBytes);
    }
    if let Some(refusal) = refusal {
        if usage_inserted {
            tx.execute(
                "DELETE FROM sync_identity_usage WHERE identity_pool_id = $1 AND identity_id = $2",
                &identity_key,
            )?;
        }
        drop_placeholder(tx)?;
        return Ok(Err(refusal));
    }

    let sync_count = dataset.sync_count + 1;
    let mut written = Vec::new();
    let mut rows = Vec::new();
    for c in changes.values().filter(|c| !c.is_noop()) {
        let record = SyncRecord {
            key: c.key.to_owned(),
            value: c.patch.value.clone(),
            sync_count,
            modified_ms: now_ms,
            last_modified_by: modified_by.to_owned(),
            device_modified_ms: c.patch.device_modified_ms,
        };
        rows.push(vec![
            key[0].clone(),
            key[1].clone(),
            key[2].clone(),
            record.key.as_str().into(),
            record.value.as_deref().into(),
            sync_count.into(),
            now_ms.into(),
            modified_by.into(),
            record.device_modified_ms.into(),
        ]);
        written.push(record);
    }
    insert_many(
        tx,
        INSERT_SYNC_RECORDS,
        &rows,
        "ON CONFLICT (identity_pool_id, identity_id, dataset, key) DO UPDATE SET value = excluded.value, \
         sync_count = excluded.sync_count, modified_ms = excluded.modified_ms, \
         last_modified_by = excluded.last_modified_by, device_modified_ms = excluded.device_modified_ms",
    )?;
    tx.execute(
        "UPDATE sync_datasets SET modified_ms = $4, last_modified_by = $5, sync_count = $6, num_records = $7, \
         data_bytes = $8, deleted = $9 WHERE identity_pool_id = $1 AND identity_id = $2 AND name = $3",
        &[
            key[0].clone(),
            key[1].clone(),
            key[2].clone(),
            now_ms.into(),
            modified_by.into(),
            sync_count.into(),
            new_records.into(),
            new_bytes.into(),
            false.into(),
        ],
    )?;
    adjust_identity_usage(tx, &identity_key, i64::from(!was_live), new_bytes - old_bytes, now_ms)?;
    if notify {
        tx.execute(
            "INSERT INTO sync_changes (identity_pool_id, identity_id, dataset, sync_count, modified_by, created_ms, \
             lease_until_ms, attempts) VALUES ($1, $2, $3, $4, $5, $6, 0, 0)",
            &[key[0].clone(), key[1].clone(), key[2].clone(), sync_count.into(), modified_by.into(), now_ms.into()],
        )?;
    }
    // Last statement (see the module comment).
    adjust_pool_sync_usage(tx, identity_pool_id, identity_id, identities_delta, new_bytes - old_bytes, now_ms)?;

    // The patched keys' records after the change, by key.
    let mut records: std::collections::BTreeMap<String, SyncRecord> =
        unchanged.into_iter().map(|r| (r.key.clone(), r)).collect();
    records.extend(written.into_iter().map(|r| (r.key.clone(), r)));
    let dataset = DatasetRecord {
        modified_ms: now_ms,
        last_modified_by: modified_by.to_owned(),
        sync_count,
        num_records: new_records,
        data_bytes: new_bytes,
        deleted: false,
        ..dataset
    };
    Ok(Ok((dataset, records.into_values().collect())))
}

impl<B: Backend> SyncStore for SqlStore<B> {
    fn get_dataset(&self, identity_pool_id: &str, identity_id: &str, name: &str) -> StoreResult<Option<DatasetRecord>> {
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM sync_datasets WHERE identity_pool_id = $1 AND identity_id = $2 AND name = $3"
        );
        let params = [identity_pool_id.into(), identity_id.into(), name.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(dataset_from_row).transpose()
    }

    fn list_datasets(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<DatasetRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut params: Vec<Value> = vec![identity_pool_id.into(), identity_id.into()];
        let mut sql = format!(
            "SELECT {DATASET_COLUMNS} FROM sync_datasets \
             WHERE identity_pool_id = $1 AND identity_id = $2 AND NOT deleted"
        );
        if let Some(after) = after {
            params.push(after.into());
            let _ = write!(sql, " AND name > ${}", params.len());
        }
        params.push(sql_limit(limit));
        let _ = write!(sql, " ORDER BY name LIMIT ${}", params.len());
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(dataset_from_row).collect()
    }

    fn list_sync_records(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        name: &str,
        after_sync_count: i64,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<SyncRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = sync_records_statement(identity_pool_id, identity_id, name, after_sync_count, after, limit);
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(sync_record_from_row).collect()
    }

    fn list_dataset_records(
        &self,
        identity_pool_id: &str,
        identity_id: &str,
        name: &str,
        after_sync_count: i64,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StoreResult<(Option<DatasetRecord>, Vec<SyncRecord>)> {
        // One statement, so one snapshot on both backends: the dataset row joined with the
        // page of its records (the same range scan as list_sync_records), or with nothing.
        let (records, params) =
            sync_records_statement(identity_pool_id, identity_id, name, after_sync_count, after, limit.max(1));
        let columns = DATASET_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
        let record_columns = SYNC_RECORD_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns}, {record_columns} FROM sync_datasets d LEFT JOIN ({records}) r ON 1 = 1 \
             WHERE d.identity_id = $1 AND d.identity_pool_id = $2 AND d.name = $3 ORDER BY r.sync_count, r.key"
        );
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        let mut dataset = None;
        let mut page = Vec::new();
        for mut row in rows {
            let record = row.split_off(10);
            dataset = Some(dataset_from_row(row)?);
            if limit > 0 && !matches!(record.first(), Some(Value::Null) | None) {
                page.push(sync_record_from_row(record)?);
            }
        }
        Ok((dataset, page))
    }

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
    ) -> StoreResult<Result<(DatasetRecord, Vec<SyncRecord>), SyncRefusal>> {
        let (pool, id, name) = (identity_pool_id.to_owned(), identity_id.to_owned(), name.to_owned());
        let (patches, modified_by, limits) = (patches.to_vec(), modified_by.to_owned(), *limits);
        self.db
            .write(move |tx| {
                update_sync_records_tx(tx, &pool, &id, &name, &patches, &modified_by, now_ms, &limits, notify)
            })
            .map_err(missing_parent_is(Entity::Identity))
    }

    fn claim_sync_changes(&self, now_ms: i64, lease_ms: i64, limit: usize) -> StoreResult<Vec<SyncChange>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = now_ms.saturating_add(lease_ms);
        self.db.write(move |tx| {
            // Due changes in id order through sync_changes_due; rows another node is
            // claiming right now are skipped, not waited for.
            let due = format!(
                "SELECT id FROM sync_changes WHERE lease_until_ms <= $1 ORDER BY lease_until_ms, id LIMIT $2{}",
                tx.lock_rows_skip_locked()
            );
            let ids: Vec<i64> = tx
                .query(&due, &[now_ms.into(), sql_limit(limit)])?
                .into_iter()
                .map(|row| Cells::new(row).int())
                .collect::<StoreResult<_>>()?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let rows = tx.query(
                    "UPDATE sync_changes SET lease_until_ms = $2, attempts = attempts + 1 WHERE id = $1 \
                     RETURNING id, identity_pool_id, identity_id, dataset, sync_count, modified_by, created_ms, \
                     attempts",
                    &[id.into(), until.into()],
                )?;
                for row in rows {
                    let mut c = Cells::new(row);
                    claimed.push(SyncChange {
                        id: c.int()?,
                        identity_pool_id: c.text()?,
                        identity_id: c.text()?,
                        dataset: c.text()?,
                        sync_count: c.int()?,
                        modified_by: c.text()?,
                        created_ms: c.int()?,
                        attempts: c.int()?,
                    });
                }
            }
            claimed.sort_by_key(|c| c.id);
            Ok(claimed)
        })
    }

    fn retry_sync_change(&self, id: i64, retry_at_ms: i64) -> StoreResult<bool> {
        let params = [id.into(), retry_at_ms.into()];
        Ok(self.db.write(move |tx| tx.execute("UPDATE sync_changes SET lease_until_ms = $2 WHERE id = $1", &params))?
            > 0)
    }

    fn finish_sync_change(&self, id: i64) -> StoreResult<bool> {
        Ok(self.db.write(move |tx| tx.execute("DELETE FROM sync_changes WHERE id = $1", &[id.into()]))? > 0)
    }

    fn delete_dataset(&self, identity_pool_id: &str, identity_id: &str, name: &str, now_ms: i64) -> StoreResult<bool> {
        let key: [Value; 3] = [identity_pool_id.into(), identity_id.into(), name.into()];
        let (pool, id) = (identity_pool_id.to_owned(), identity_id.to_owned());
        self.db.write(move |tx| {
            let dataset = match lock_dataset(tx, &key)? {
                Some(d) if !d.deleted => d,
                _ => return Ok(false),
            };
            tx.execute(
                "DELETE FROM sync_records WHERE identity_pool_id = $1 AND identity_id = $2 AND dataset = $3",
                &key,
            )?;
            tx.execute(
                "UPDATE sync_datasets SET deleted = $4, sync_count = sync_count + 1, num_records = 0, data_bytes = 0, \
                 modified_ms = $5 WHERE identity_pool_id = $1 AND identity_id = $2 AND name = $3",
                &[key[0].clone(), key[1].clone(), key[2].clone(), true.into(), now_ms.into()],
            )?;
            let identity_key = [key[0].clone(), key[1].clone()];
            let left = adjust_identity_usage(tx, &identity_key, -1, -dataset.data_bytes, now_ms)?;
            // Last statement (see the module comment).
            adjust_pool_sync_usage(tx, &pool, &id, -i64::from(left == 0), -dataset.data_bytes, now_ms)?;
            Ok(true)
        })
    }

    fn identity_sync_usage(&self, identity_pool_id: &str, identity_id: &str) -> StoreResult<SyncUsage> {
        let params = [identity_pool_id.into(), identity_id.into()];
        let rows = self.db.read(|tx| {
            tx.query(
                "SELECT datasets, data_bytes, modified_ms FROM sync_identity_usage \
                 WHERE identity_pool_id = $1 AND identity_id = $2",
                &params,
            )
        })?;
        match rows.into_iter().next() {
            Some(row) => {
                let mut c = Cells::new(row);
                Ok(SyncUsage { datasets: c.int()?, data_bytes: c.int()?, modified_ms: c.int()? })
            }
            None => Ok(SyncUsage::default()),
        }
    }

    fn pool_sync_usage(&self, identity_pool_id: &str) -> StoreResult<SyncUsage> {
        let params = [identity_pool_id.into()];
        let rows = self.db.read(|tx| {
            // SUM of a PostgreSQL BIGINT is NUMERIC: cast back.
            tx.query(
                "SELECT CAST(COALESCE(SUM(identities), 0) AS BIGINT), CAST(COALESCE(SUM(data_bytes), 0) AS BIGINT), \
                 CAST(COALESCE(MAX(modified_ms), 0) AS BIGINT) FROM sync_pool_usage_shards \
                 WHERE identity_pool_id = $1",
                &params,
            )
        })?;
        match rows.into_iter().next() {
            Some(row) => {
                let mut c = Cells::new(row);
                Ok(SyncUsage { datasets: c.int()?, data_bytes: c.int()?, modified_ms: c.int()? })
            }
            None => Ok(SyncUsage::default()),
        }
    }
}
