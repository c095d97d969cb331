//! SQLite backend: one file in WAL mode, one writer connection behind a mutex
//! (SQLite allows a single writer anyway, and queuing in-process is cheaper
//! than spinning on `SQLITE_BUSY`) and a small pool of reader connections,
//! which WAL lets proceed while a write is in progress.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::db::{self, Backend, Migration, Row, Tx, Value};
use crate::pool::{Pool, PoolConn};
use crate::{StoreError, StoreResult};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_init",
    sql: include_str!("../migrations/sqlite/0001_init.sql"),
}];

const READERS: usize = 4;
/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reader waits for a free pooled connection.
const READER_WAIT: Duration = Duration::from_secs(30);

pub(crate) struct SqliteBackend {
    writer: Mutex<Connection>,
    readers: Pool<Connection>,
}

impl PoolConn for Connection {
    fn is_broken(&self) -> bool {
        false
    }
}

impl SqliteBackend {
    pub fn open(path: &Path) -> StoreResult<Self> {
        db::check_migration_list(MIGRATIONS)?;
        let mut writer = open_connection(path, false)?;
        migrate(&mut writer)?;
        let reader_path = path.to_path_buf();
        let readers = Pool::new(
            READERS,
            READER_WAIT,
            Box::new(move || open_connection(&reader_path, true)),
        );
        Ok(SqliteBackend {
            writer: Mutex::new(writer),
            readers,
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a write closure unwinds through rusqlite's
        // `Transaction`, which rolls back on drop, so the connection is
        // clean even if the mutex got poisoned.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn open_connection(path: &Path, reader: bool) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Backend(format!("opening SQLite database {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    // WAL: readers never block the writer and vice versa.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(map_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "SQLite database {} cannot use WAL journaling (got {mode:?})",
            path.display()
        )));
    }
    // FULL: each commit fsyncs the WAL, so an acknowledged write survives a
    // power cut (NORMAL, the usual WAL pairing, may lose the last commits).
    conn.pragma_update(None, "synchronous", "FULL").map_err(map_err)?;
    // Off by default in SQLite; the cascading deletes depend on it.
    conn.pragma_update(None, "foreign_keys", "ON").map_err(map_err)?;
    if reader {
        // Belt and braces: a read path that tries to write is a bug.
        conn.pragma_update(None, "query_only", "ON").map_err(map_err)?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    for m in MIGRATIONS {
        // IMMEDIATE takes the write lock up front, so two processes opening
        // the same file apply each migration exactly once.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY NOT NULL,
                 applied_ms INTEGER NOT NULL
             ) STRICT;",
        )
        .map_err(map_err)?;
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .map_err(map_err)?;
        if current > known {
            return Err(db::newer_schema_error(current, known));
        }
        if current >= m.version {
            continue;
        }
        tx.execute_batch(m.sql)
            .map_err(|e| StoreError::Backend(format!("SQLite migration {} failed: {e}", m.name)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            rusqlite::params![m.version, db::now_ms()],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
        tracing::info!(migration = m.name, "applied SQLite migration");
    }
    Ok(())
}

fn map_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == ErrorCode::ConstraintViolation {
            match f.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
                    return StoreError::AlreadyExists
                }
                // A missing parent row (pool or client).
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::NotFound,
                _ => {}
            }
        }
    }
    StoreError::Backend(format!("sqlite: {e}"))
}

/// Runs statements on a connection, or on a transaction through its `Deref`.
struct SqliteTx<'a> {
    conn: &'a Connection,
}

impl SqliteTx<'_> {
    fn prepare(&self, sql: &str, params: &[Value]) -> StoreResult<rusqlite::CachedStatement<'_>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        if stmt.parameter_count() != params.len() {
            return Err(StoreError::Backend(format!(
                "statement takes {} parameters, {} given: {sql}",
                stmt.parameter_count(),
                params.len()
            )));
        }
        for (i, value) in params.iter().enumerate() {
            // `$N` is a *named* parameter to SQLite; binding by name keeps the
            // PostgreSQL meaning (the same `$N` may appear several times).
            let name = format!("${}", i + 1);
            let index = stmt
                .parameter_index(&name)
                .map_err(map_err)?
                .ok_or_else(|| StoreError::Backend(format!("statement does not use {name}: {sql}")))?;
            let value = match value {
                Value::Null => SqlValue::Null,
                Value::Int(i) => SqlValue::Integer(*i),
                Value::Text(s) => SqlValue::Text(s.clone()),
            };
            stmt.raw_bind_parameter(index, value).map_err(map_err)?;
        }
        Ok(stmt)
    }
}

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let mut stmt = self.prepare(sql, params)?;
        let n = stmt.raw_execute().map_err(map_err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.prepare(sql, params)?;
        let width = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_err)? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(match row.get_ref(i).map_err(map_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Text(t) => Value::Text(
                        std::str::from_utf8(t)
                            .map_err(|e| StoreError::Backend(format!("sqlite: column {i}: {e}")))?
                            .to_owned(),
                    ),
                    other => {
                        return Err(StoreError::Backend(format!(
                            "sqlite: column {i} has unsupported type {:?}",
                            other.data_type()
                        )))
                    }
                });
            }
            out.push(cells);
        }
        Ok(out)
    }

    fn lock_rows(&self) -> &'static str {
        ""
    }
}

impl Backend for SqliteBackend {
    const NAME: &'static str = "sqlite";

    fn read<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.readers.get()?;
        f(&mut SqliteTx { conn: &conn })
    }

    fn write<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        // Dropping `tx` on the error path rolls back.
        let value = f(&mut SqliteTx { conn: &tx })?;
        tx.commit().map_err(map_err)?;
        Ok(value)
    }

    fn ping(&self) -> StoreResult<()> {
        self.read(|tx| tx.query("SELECT 1", &[]).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn reads_proceed_while_a_write_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let backend = std::sync::Arc::new(SqliteBackend::open(&dir.path().join("db")).unwrap());
        backend
            .write(|tx| {
                tx.execute(
                    "INSERT INTO identity_pools (id, name, created_ms, modified_ms, version, doc)
                     VALUES ($1, $2, 1, 1, 1, '{}')",
                    &["a".into(), "before".into()],
                )
            })
            .unwrap();

        let (in_write, go_read) = mpsc::channel();
        let (read_done, finish_write) = mpsc::channel();
        let b = backend.clone();
        let writer = std::thread::spawn(move || {
            b.write(|tx| {
                tx.execute(
                    "UPDATE identity_pools SET name = $1 WHERE id = $2",
                    &["during".into(), "a".into()],
                )?;
                in_write.send(()).unwrap();
                // Hold the write transaction open until the read has finished.
                finish_write.recv_timeout(Duration::from_secs(10)).unwrap();
                Ok(())
            })
            .unwrap();
        });
        go_read.recv().unwrap();
        let name = backend
            .read(|tx| {
                let rows = tx.query("SELECT name FROM identity_pools WHERE id = $1", &["a".into()])?;
                db::Cells::new(rows.into_iter().next().unwrap()).text()
            })
            .unwrap();
        // The reader sees the last committed state, without waiting.
        assert_eq!(name, "before");
        read_done.send(()).unwrap();
        writer.join().unwrap();
    }

    #[test]
    fn repeated_placeholders_bind_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("db")).unwrap();
        let rows = backend
            .read(|tx| tx.query("SELECT $1 + $1, $2", &[Value::Int(20), Value::Null]))
            .unwrap();
        assert_eq!(rows, vec![vec![Value::Int(40), Value::Null]]);
        let err = backend.read(|tx| tx.query("SELECT $1", &[])).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)));
    }
}
