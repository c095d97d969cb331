//! PostgreSQL backend over the synchronous `postgres` client, with a small
//! connection pool. Several server processes may share one database, so:
//! writes run in transactions whose statements are individually atomic (CAS
//! via `UPDATE … WHERE version = …`, row locks where a check precedes a
//! write), and migrations run under a database-wide advisory lock.
//!
//! No TLS: the URL must not require it (`sslmode=require` fails to connect).

use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, GenericClient, NoTls};

use crate::db::{self, Backend, Migration, Row, Tx, Value};
use crate::pool::{Pool, PoolConn};
use crate::{StoreError, StoreResult};

const MIGRATIONS: &[Migration] = crate::migrations::POSTGRES;

const POOL_MAX: usize = 16;
const POOL_WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Key of the session advisory lock serialising migrations across processes
/// ("cognate" in ASCII). Only ever taken around migrations.
const MIGRATION_LOCK_KEY: i64 = 0x0063_6f67_6e61_7465;
/// Attempts for work that failed transiently (deadlock, serialisation
/// failure, connection lost before commit).
const MAX_ATTEMPTS: usize = 3;

pub(crate) struct PgBackend {
    pool: Pool<Client>,
}

impl PoolConn for Client {
    fn is_broken(&self) -> bool {
        self.is_closed()
    }
}

impl PgBackend {
    pub fn open(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        db::check_migration_list(MIGRATIONS)?;
        let mut config: Config = url.parse().map_err(|e| {
            // The URL may hold a password: never echo it.
            StoreError::Backend(format!("invalid PostgreSQL connection string: {e}"))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("cognate");
        }
        let schema = match schema {
            Some(s) => Some(quote_schema(s)?),
            None => None,
        };
        let connect = {
            let schema = schema.clone();
            move || connect(&config, schema.as_deref())
        };
        let mut first = connect()?;
        migrate(&mut first, schema.as_deref())?;
        let pool = Pool::new(POOL_MAX, POOL_WAIT, Box::new(connect));
        pool.put(first);
        Ok(PgBackend { pool })
    }

    fn run<T>(&self, kind: Work, mut f: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        let mut attempt = 1;
        loop {
            let mut conn = self.pool.get()?;
            let outcome = match kind {
                Work::Read => attempt_read(&mut conn, &mut f),
                Work::Write => attempt_write(&mut conn, &mut f, true),
                Work::Counter => attempt_write(&mut conn, &mut f, false),
            };
            let failure = match outcome {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let lost = conn.is_closed();
            drop(conn);
            if lost {
                // The server probably restarted or dropped us; the idle
                // connections are likely dead too and would each fail once.
                self.pool.discard_idle();
            }
            // Work that did not reach COMMIT was rolled back by the server,
            // so running it again is safe. A failed COMMIT on a lost
            // connection is ambiguous and must be reported, not retried.
            let retry = failure.transient || (lost && !failure.at_commit);
            if !retry || attempt >= MAX_ATTEMPTS {
                return Err(failure.error);
            }
            tracing::warn!(attempt, error = %failure.error, "retrying PostgreSQL work");
            attempt += 1;
        }
    }
}

#[derive(Clone, Copy)]
enum Work {
    Read,
    Write,
    /// A write that does not wait for its WAL flush (see [`Backend::write_counter`]).
    Counter,
}

struct Failure {
    error: StoreError,
    /// Deadlock or serialisation failure: the transaction was rolled back.
    transient: bool,
    /// The failure happened while committing.
    at_commit: bool,
}

fn attempt_read<T>(client: &mut Client, f: &mut impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> Result<T, Failure> {
    let mut tx = PgTx { client, transient: false };
    f(&mut tx).map_err(|error| Failure { error, transient: tx.transient, at_commit: false })
}

fn attempt_write<T>(
    client: &mut Client,
    f: &mut impl FnMut(&mut dyn Tx) -> StoreResult<T>,
    flush_before_answer: bool,
) -> Result<T, Failure> {
    let begun = |e: postgres::Error| Failure { transient: is_transient(&e), error: map_err(e), at_commit: false };
    let mut txn = client.transaction().map_err(begun)?;
    if !flush_before_answer {
        // Committed and visible at once, and crash-safe for the server process; only the
        // wait for the WAL flush is skipped (PostgreSQL's asynchronous commit).
        txn.batch_execute("SET LOCAL synchronous_commit = off").map_err(begun)?;
    }
    let mut tx = PgTx { client: &mut txn, transient: false };
    match f(&mut tx) {
        Ok(value) => match txn.commit() {
            Ok(()) => Ok(value),
            Err(e) => Err(Failure {
                // A transient error at commit (e.g. serialisation failure)
                // still means the transaction did not commit.
                transient: is_transient(&e),
                error: map_err(e),
                at_commit: true,
            }),
        },
        Err(error) => {
            let transient = tx.transient;
            // Dropping the transaction rolls it back.
            drop(txn);
            Err(Failure { error, transient, at_commit: false })
        }
    }
}

fn connect(config: &Config, schema: Option<&str>) -> StoreResult<Client> {
    let mut client =
        config.connect(NoTls).map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL: {e}")))?;
    if let Some(schema) = schema {
        client.batch_execute(&format!("SET search_path TO {schema}")).map_err(map_err)?;
    }
    Ok(client)
}

/// Validates a schema name and returns it quoted. The strict charset means
/// quoting cannot be escaped and no case folding surprises.
fn quote_schema(schema: &str) -> StoreResult<String> {
    let valid =
        !schema.is_empty() && schema.len() <= 63 && schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(format!("\"{schema}\""))
    } else {
        Err(StoreError::Backend(format!("invalid schema name {schema:?}: use 1-63 characters from [A-Za-z0-9_]")))
    }
}

/// Brings the schema up to date. `schema` (quoted) is the dedicated schema
/// `connect` put on the `search_path`, if any.
fn migrate(client: &mut Client, schema: Option<&str>) -> StoreResult<()> {
    client.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).map_err(map_err)?;
    let result = migrate_locked(client, schema);
    // Always release; if the connection died the server already released it.
    let unlocked = client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).map_err(map_err);
    result.and(unlocked)
}

fn migrate_locked(client: &mut Client, schema: Option<&str>) -> StoreResult<()> {
    if let Some(schema) = schema {
        // Under the lock: concurrent `CREATE SCHEMA IF NOT EXISTS` calls can
        // still collide on the catalog's unique index.
        client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).map_err(map_err)?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_ms BIGINT NOT NULL
             )",
        )
        .map_err(map_err)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    let current: i64 = client
        .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[])
        .and_then(|row| row.try_get(0))
        .map_err(map_err)?;
    if current > known {
        return Err(db::newer_schema_error(current, known));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let mut txn = client.transaction().map_err(map_err)?;
        txn.batch_execute(m.sql)
            .map_err(|e| StoreError::Backend(format!("PostgreSQL migration {} failed: {e}", m.name)))?;
        txn.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[&m.version, &db::now_ms()],
        )
        .map_err(map_err)?;
        txn.commit().map_err(map_err)?;
        tracing::info!(migration = m.name, "applied PostgreSQL migration");
    }
    Ok(())
}

fn is_transient(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

fn map_err(e: postgres::Error) -> StoreError {
    match e.code() {
        // A missing parent row (pool, user, client…), e.g. deleted
        // concurrently; named by the store.
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => db::missing_parent(format_args!("postgres: {e}")),
        // Unique keys are never violated by the store's SQL (inserts say ON
        // CONFLICT and report `AlreadyExists` for the entity they insert).
        _ => StoreError::Backend(format!("postgres: {e}")),
    }
}

/// Runs statements on a client or a transaction.
struct PgTx<'a, C: GenericClient> {
    client: &'a mut C,
    /// Set when a statement failed transiently, so the caller can retry the
    /// whole unit of work even though `f` turned the error into a StoreError.
    transient: bool,
}

impl<C: GenericClient> PgTx<'_, C> {
    fn fail(&mut self, e: postgres::Error) -> StoreError {
        self.transient |= is_transient(&e);
        map_err(e)
    }

    fn prepare<'v>(
        &mut self,
        sql: &str,
        params: &'v [Value],
    ) -> StoreResult<(postgres::Statement, Vec<Box<dyn ToSql + Sync + 'v>>)> {
        // Preparing first tells us the parameter types the server inferred,
        // so one `Value::Int` can bind to BIGINT or INTEGER alike. It costs
        // nothing extra: the client prepares an unnamed statement anyway.
        let stmt = self.client.prepare(sql).map_err(|e| self.fail(e))?;
        let types = stmt.params();
        if types.len() != params.len() {
            return Err(StoreError::Backend(format!(
                "statement takes {} parameters, {} given: {sql}",
                types.len(),
                params.len()
            )));
        }
        let bound = params
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (v, ty))| to_param(v, ty).map_err(|m| bind_error(i, &m, sql)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((stmt, bound))
    }
}

fn bind_error(i: usize, msg: &str, sql: &str) -> StoreError {
    StoreError::Backend(format!("parameter ${}: {msg}: {sql}", i + 1))
}

fn to_param<'v>(v: &'v Value, ty: &Type) -> Result<Box<dyn ToSql + Sync + 'v>, String> {
    let out: Box<dyn ToSql + Sync + 'v> = match v {
        Value::Int(i) if *ty == Type::INT8 => Box::new(*i),
        Value::Int(i) if *ty == Type::INT4 => {
            Box::new(i32::try_from(*i).map_err(|_| format!("{i} does not fit INTEGER"))?)
        }
        Value::Int(i) if *ty == Type::INT2 => {
            Box::new(i16::try_from(*i).map_err(|_| format!("{i} does not fit SMALLINT"))?)
        }
        Value::Bool(b) if *ty == Type::BOOL => Box::new(*b),
        Value::Text(s) if is_text(ty) => Box::new(s.as_str()),
        Value::Blob(b) if *ty == Type::BYTEA => Box::new(b.as_slice()),
        // A NULL must still be typed for the client to accept it.
        Value::Null if *ty == Type::INT8 => Box::new(None::<i64>),
        Value::Null if *ty == Type::INT4 => Box::new(None::<i32>),
        Value::Null if is_text(ty) => Box::new(None::<&str>),
        Value::Null if *ty == Type::BOOL => Box::new(None::<bool>),
        Value::Null if *ty == Type::BYTEA => Box::new(None::<&[u8]>),
        other => return Err(format!("cannot bind {other:?} as {ty}")),
    };
    Ok(out)
}

fn is_text(ty: &Type) -> bool {
    *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::BPCHAR || *ty == Type::NAME
}

fn from_row(row: &postgres::Row) -> StoreResult<Row> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let cell = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int))
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i).map(|v| v.map(|n| Value::Int(n.into())))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i).map(|v| v.map(|n| Value::Int(n.into())))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i).map(|v| v.map(Value::Bool))
        } else if is_text(ty) {
            row.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text))
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Value::Blob))
        } else {
            return Err(StoreError::Backend(format!("postgres: column {} has unsupported type {ty}", col.name())));
        };
        cells.push(cell.map_err(map_err)?.unwrap_or(Value::Null));
    }
    Ok(cells)
}

impl<C: GenericClient> Tx for PgTx<'_, C> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let (stmt, bound) = self.prepare(sql, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref()).collect();
        self.client.execute(&stmt, &refs).map_err(|e| self.fail(e))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let (stmt, bound) = self.prepare(sql, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(&stmt, &refs).map_err(|e| self.fail(e))?;
        rows.iter().map(from_row).collect()
    }

    fn lock_rows(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn lock_rows_skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
}

impl Backend for PgBackend {
    const NAME: &'static str = "postgres";

    fn read<T>(&self, f: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        self.run(Work::Read, f)
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.run(Work::Write, f)
    }

    fn write_counter<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.run(Work::Counter, f)
    }

    fn ping(&self) -> StoreResult<()> {
        self.read(|tx| tx.query("SELECT 1", &[]).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_validated() {
        assert_eq!(quote_schema("t_123").unwrap(), "\"t_123\"");
        for bad in ["", "a-b", "a\"b", "a b", &"x".repeat(64)] {
            assert!(quote_schema(bad).is_err(), "{bad:?}");
        }
    }
}
