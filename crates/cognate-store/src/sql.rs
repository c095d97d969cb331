//! The store traits, implemented once over [`Backend`]/[`Tx`] with SQL that
//! SQLite and PostgreSQL both accept.
//!
//! Concurrency rules that hold on both backends:
//! - inserts use `ON CONFLICT DO NOTHING` and report `AlreadyExists` when no
//!   row was written, which is race-free and leaves the transaction usable;
//! - updates are a single `UPDATE … WHERE version = expected`, atomic on its
//!   own; only when it matches nothing do we look at why;
//! - a check that guards a write (secret counts) first locks the parent
//!   app-client row (`Tx::lock_rows`), so concurrent writers serialise.

use crate::db::{single_int, sql_count, sql_limit, to_u64, Backend, Cells, Row, Tx, Value};
use crate::{
    AppClientRecord, AppClientStore, ClientSecretRecord, ClientSecretStore, IdentityPoolRecord, IdentityPoolStore,
    Store, StoreError, StoreResult, UserPoolRecord, UserPoolStore,
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
    fn parts(&self) -> PoolParts<'_>;
    fn from_row(row: Row) -> StoreResult<Self>;
}

macro_rules! pool_like {
    ($ty:ident, $table:literal) => {
        impl PoolLike for $ty {
            const TABLE: &'static str = $table;

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
                    id: c.text()?,
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

pool_like!(UserPoolRecord, "user_pools");
pool_like!(IdentityPoolRecord, "identity_pools");

impl<B: Backend> SqlStore<B> {
    fn insert_pool<R: PoolLike>(&self, rec: &R) -> StoreResult<()> {
        let p = rec.parts();
        let sql = format!(
            "INSERT INTO {} ({POOL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING",
            R::TABLE
        );
        let params = [
            p.id.into(),
            p.name.into(),
            p.created_ms.into(),
            p.modified_ms.into(),
            p.version.into(),
            p.doc.into(),
        ];
        match self.db.write(|tx| tx.execute(&sql, &params))? {
            0 => Err(StoreError::AlreadyExists),
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
        let update = format!(
            "UPDATE {} SET name = $2, modified_ms = $3, version = $4, doc = $5 \
             WHERE id = $1 AND version = $6",
            R::TABLE
        );
        let exists = format!("SELECT 1 FROM {} WHERE id = $1", R::TABLE);
        let key = [p.id.into()];
        self.db.write(|tx| {
            if let Some(expected) = p.version.checked_sub(1) {
                let params = [
                    p.id.into(),
                    p.name.into(),
                    p.modified_ms.into(),
                    p.version.into(),
                    p.doc.into(),
                    expected.into(),
                ];
                if tx.execute(&update, &params)? > 0 {
                    return Ok(());
                }
            }
            Err(absent_or_conflict(tx, &exists, &key)?)
        })
    }

    fn delete_pool<R: PoolLike>(&self, id: &str) -> StoreResult<bool> {
        // Child rows go with it through ON DELETE CASCADE, in the same
        // statement and therefore atomically.
        let sql = format!("DELETE FROM {} WHERE id = $1", R::TABLE);
        let params = [id.into()];
        Ok(self.db.write(|tx| tx.execute(&sql, &params))? > 0)
    }

    fn list_pools<R: PoolLike>(&self, after_id: Option<&str>, limit: usize) -> StoreResult<Vec<R>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, params) = match after_id {
            Some(after) => (
                format!(
                    "SELECT {POOL_COLUMNS} FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
                    R::TABLE
                ),
                vec![after.into(), sql_limit(limit)],
            ),
            None => (
                format!("SELECT {POOL_COLUMNS} FROM {} ORDER BY id LIMIT $1", R::TABLE),
                vec![sql_limit(limit)],
            ),
        };
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().map(R::from_row).collect()
    }

    fn count_pools<R: PoolLike>(&self) -> StoreResult<u64> {
        let sql = format!("SELECT COUNT(*) FROM {}", R::TABLE);
        to_u64(single_int(self.db.read(|tx| tx.query(&sql, &[]))?)?)
    }
}

/// After a CAS update matched nothing: `VersionConflict` if the row exists,
/// `NotFound` otherwise.
fn absent_or_conflict(tx: &mut dyn Tx, exists_sql: &str, key: &[Value]) -> StoreResult<StoreError> {
    Ok(if tx.query(exists_sql, key)?.is_empty() {
        StoreError::NotFound
    } else {
        StoreError::VersionConflict
    })
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
        pool_id: c.text()?,
        client_id: c.text()?,
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
            if s.pool_id != rec.pool_id || s.client_id != rec.client_id {
                return Err(StoreError::Backend(
                    "first secret belongs to a different app client".into(),
                ));
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
        self.db.write(|tx| {
            // Checked explicitly to tell "no pool" from "duplicate client".
            // Should the pool vanish concurrently, the foreign key still
            // rejects the insert, which maps to NotFound as well.
            if tx
                .query("SELECT 1 FROM user_pools WHERE id = $1", &pool_key)?
                .is_empty()
            {
                return Err(StoreError::NotFound);
            }
            let inserted = tx.execute(
                &format!(
                    "INSERT INTO app_clients ({CLIENT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
                ),
                &client,
            )?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists);
            }
            if let Some(secret) = &secret {
                insert_secret_row(tx, secret)?;
            }
            Ok(())
        })
    }

    fn get_app_client(&self, pool_id: &str, client_id: &str) -> StoreResult<Option<AppClientRecord>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM app_clients WHERE pool_id = $1 AND client_id = $2");
        let params = [pool_id.into(), client_id.into()];
        let rows = self.db.read(|tx| tx.query(&sql, &params))?;
        rows.into_iter().next().map(client_from_row).transpose()
    }

    fn update_app_client(&self, rec: &AppClientRecord) -> StoreResult<()> {
        let key = [rec.pool_id.as_str().into(), rec.client_id.as_str().into()];
        self.db.write(|tx| {
            if let Some(expected) = rec.version.checked_sub(1) {
                let params = [
                    rec.pool_id.as_str().into(),
                    rec.client_id.as_str().into(),
                    rec.name.as_str().into(),
                    rec.modified_ms.into(),
                    rec.version.into(),
                    rec.doc.as_str().into(),
                    expected.into(),
                ];
                let n = tx.execute(
                    "UPDATE app_clients SET name = $3, modified_ms = $4, version = $5, doc = $6 \
                     WHERE pool_id = $1 AND client_id = $2 AND version = $7",
                    &params,
                )?;
                if n > 0 {
                    return Ok(());
                }
            }
            Err(absent_or_conflict(
                tx,
                "SELECT 1 FROM app_clients WHERE pool_id = $1 AND client_id = $2",
                &key,
            )?)
        })
    }

    fn delete_app_client(&self, pool_id: &str, client_id: &str) -> StoreResult<bool> {
        let params = [pool_id.into(), client_id.into()];
        let n = self
            .db
            .write(|tx| tx.execute("DELETE FROM app_clients WHERE pool_id = $1 AND client_id = $2", &params))?;
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
        let rows = self
            .db
            .read(|tx| tx.query("SELECT COUNT(*) FROM app_clients WHERE pool_id = $1", &params))?;
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
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

/// Locks the app-client row for the rest of the transaction, so that secret
/// count checks and the writes they guard cannot interleave with another
/// process doing the same. Returns false if the client does not exist.
fn lock_client(tx: &mut dyn Tx, client_key: &[Value]) -> StoreResult<bool> {
    let sql = format!(
        "SELECT 1 FROM app_clients WHERE pool_id = $1 AND client_id = $2{}",
        tx.lock_rows()
    );
    Ok(!tx.query(&sql, client_key)?.is_empty())
}

fn count_secrets(tx: &mut dyn Tx, client_key: &[Value]) -> StoreResult<i64> {
    single_int(tx.query(
        "SELECT COUNT(*) FROM client_secrets WHERE pool_id = $1 AND client_id = $2",
        client_key,
    )?)
}

impl<B: Backend> ClientSecretStore for SqlStore<B> {
    fn insert_client_secret(&self, rec: &ClientSecretRecord, max_per_client: u64) -> StoreResult<()> {
        let client_key = [rec.pool_id.as_str().into(), rec.client_id.as_str().into()];
        let params = secret_params(rec);
        self.db.write(|tx| {
            if !lock_client(tx, &client_key)? {
                return Err(StoreError::NotFound);
            }
            if count_secrets(tx, &client_key)? >= sql_count(max_per_client) {
                return Err(StoreError::LimitExceeded);
            }
            insert_secret_row(tx, &params)
        })
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
        self.db.write(|tx| {
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

impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn ping(&self) -> StoreResult<()> {
        self.db.ping()
    }
}
