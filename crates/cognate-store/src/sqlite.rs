//! SQLite backend: one file in WAL mode, written by one dedicated writer
//! thread that group-commits, and read through a small pool of reader
//! connections, which WAL lets proceed while a write is in progress.
//!
//! Group commit: with `synchronous=FULL` every commit costs an fsync, which
//! would cap writes at the disk's fsync rate. Instead, callers queue their
//! write closures; the writer thread opens one transaction, runs queued
//! closures one after another, each in its own SAVEPOINT (a failing closure
//! rolls back only its own savepoint and gets its own error), and commits
//! once the queue is empty or the batch is full: one fsync for the batch.
//! Only then does it answer the callers, so nothing is acknowledged before
//! it is durable. Under load, requests that arrive during one commit's fsync
//! form the next batch.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::db::{self, Backend, Migration, Row, Tx, Value};
use crate::pool::{Pool, PoolConn};
use crate::{StoreError, StoreResult};

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "0001_init", sql: include_str!("../migrations/sqlite/0001_init.sql") },
    Migration { version: 2, name: "0002_users", sql: include_str!("../migrations/sqlite/0002_users.sql") },
    Migration {
        version: 3,
        name: "0003_client_lookup",
        sql: include_str!("../migrations/sqlite/0003_client_lookup.sql"),
    },
    Migration { version: 4, name: "0004_auth", sql: include_str!("../migrations/sqlite/0004_auth.sql") },
    Migration { version: 5, name: "0005_groups", sql: include_str!("../migrations/sqlite/0005_groups.sql") },
    Migration { version: 6, name: "0006_import_jobs", sql: include_str!("../migrations/sqlite/0006_import_jobs.sql") },
    Migration {
        version: 7,
        name: "0007_rate_windows",
        sql: include_str!("../migrations/sqlite/0007_rate_windows.sql"),
    },
    Migration {
        version: 8,
        name: "0008_import_leases",
        sql: include_str!("../migrations/sqlite/0008_import_leases.sql"),
    },
    Migration {
        version: 9,
        name: "0009_user_count_shards",
        sql: include_str!("../migrations/sqlite/0009_user_count_shards.sql"),
    },
    Migration {
        version: 10,
        name: "0010_attempt_counters",
        sql: include_str!("../migrations/sqlite/0010_attempt_counters.sql"),
    },
    Migration {
        version: 11,
        name: "0011_outbox_retention",
        sql: include_str!("../migrations/sqlite/0011_outbox_retention.sql"),
    },
];

const READERS: usize = 4;
/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reader waits for a free pooled connection.
const READER_WAIT: Duration = Duration::from_secs(30);
/// Most write closures committed together.
const BATCH_CAP: usize = 256;
/// Page cache per connection, in KiB (SQLite's default is 2 MiB). The writer
/// touches random index pages of large tables and benefits most.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

pub(crate) struct SqliteBackend {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Box<dyn WriteJob>>>,
    writer: Option<JoinHandle<()>>,
    /// Transactions the writer has committed (or tried to).
    batches: Arc<AtomicU64>,
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
        let (jobs, queue) = mpsc::channel::<Box<dyn WriteJob>>();
        let batches = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&batches);
        let writer = std::thread::Builder::new()
            .name("cognate-sqlite-writer".into())
            .spawn(move || writer_loop(&writer, &queue, &counter))
            .map_err(|e| StoreError::Backend(format!("starting the SQLite writer thread: {e}")))?;
        let reader_path = path.to_path_buf();
        let readers = Pool::new(READERS, READER_WAIT, Box::new(move || open_connection(&reader_path, true)));
        Ok(SqliteBackend { jobs: Some(jobs), writer: Some(writer), batches, readers })
    }

    #[cfg(test)]
    fn batches(&self) -> u64 {
        self.batches.load(Ordering::SeqCst)
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop once it has answered every
        // queued write; joining it closes the connection (and checkpoints the
        // WAL) before the store is gone.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("the SQLite writer thread panicked");
            }
        }
        tracing::debug!(batches = self.batches.load(Ordering::SeqCst), "SQLite writer stopped");
    }
}

/// A queued write: a closure and the channel its caller waits on.
trait WriteJob: Send {
    /// Runs the closure; true if it succeeded (its savepoint is kept).
    fn run(&mut self, tx: &mut dyn Tx) -> bool;
    /// Answers the caller once the batch's fate is known: the closure's own
    /// result if the batch committed (`failure` is `None`) or the closure
    /// failed; otherwise the batch's failure.
    fn finish(self: Box<Self>, failure: Option<&str>);
}

struct Job<F, T> {
    f: F,
    result: Option<StoreResult<T>>,
    reply: mpsc::SyncSender<StoreResult<T>>,
}

impl<F, T> WriteJob for Job<F, T>
where
    F: FnMut(&mut dyn Tx) -> StoreResult<T> + Send,
    T: Send,
{
    fn run(&mut self, tx: &mut dyn Tx) -> bool {
        let result = (self.f)(tx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failure: Option<&str>) {
        let answer = match (self.result, failure) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(msg)) => Err(StoreError::Backend(msg.to_owned())),
            (None, None) => Err(StoreError::Backend("sqlite: the write panicked".into())),
        };
        // The caller may have gone (its thread panicked): nothing to do.
        let _ = self.reply.send(answer);
    }
}

/// The writer thread: batches queued jobs into transactions until the queue
/// is closed.
fn writer_loop(conn: &Connection, queue: &mpsc::Receiver<Box<dyn WriteJob>>, batches: &AtomicU64) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(BATCH_CAP);
    while let Ok(first) = queue.recv() {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            first.finish(Some(&format!("sqlite: starting a write transaction: {e}")));
            continue;
        }
        let mut failure = None;
        let mut next = Some(first);
        while let Some(mut job) = next.take() {
            let outcome = run_in_savepoint(conn, job.as_mut());
            batch.push(job);
            if let Err(msg) = outcome {
                failure = Some(msg);
                break;
            }
            if batch.len() >= BATCH_CAP {
                break;
            }
            // The batch closes as soon as nobody else is waiting.
            next = queue.try_recv().ok();
        }
        batches.fetch_add(1, Ordering::SeqCst);
        if failure.is_none() {
            if let Err(e) = conn.execute_batch("COMMIT") {
                failure = Some(format!("sqlite: committing: {e}"));
            }
        }
        if failure.is_some() && !conn.is_autocommit() {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rolling back a failed SQLite write batch");
            }
        }
        if let Some(msg) = &failure {
            tracing::error!(error = %msg, writes = batch.len(), "SQLite write batch failed");
        }
        for job in batch.drain(..) {
            job.finish(failure.as_deref());
        }
    }
}

/// Runs one job inside the open transaction, in a savepoint that is kept if
/// the job succeeds and rolled back if it fails. `Err` means the transaction
/// itself is no longer usable, so the whole batch must fail.
fn run_in_savepoint(conn: &Connection, job: &mut dyn WriteJob) -> Result<(), String> {
    let step = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map(|_| ())
            .map_err(|e| format!("sqlite: {sql}: {e}"))
    };
    step("SAVEPOINT job")?;
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&mut SqliteTx { conn })));
    let ok = ran.unwrap_or_else(|_| {
        tracing::error!("a SQLite write closure panicked; rolling back its savepoint");
        false
    });
    if conn.is_autocommit() {
        // Some errors (disk full, I/O) make SQLite roll back the whole
        // transaction: the earlier jobs of the batch are lost too.
        return Err("sqlite: the write transaction was rolled back".into());
    }
    if !ok {
        step("ROLLBACK TO job")?;
    }
    step("RELEASE job")
}

fn open_connection(path: &Path, reader: bool) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Backend(format!("opening SQLite database {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let cache_kib = if reader { READER_CACHE_KIB } else { WRITER_CACHE_KIB };
    conn.pragma_update(None, "cache_size", -cache_kib).map_err(map_err)?;
    // WAL: readers never block the writer and vice versa.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(map_err)?;
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
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY NOT NULL,
                 applied_ms INTEGER NOT NULL
             ) STRICT;",
        )
        .map_err(map_err)?;
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
            .map_err(map_err)?;
        if current > known {
            return Err(db::newer_schema_error(current, known));
        }
        if current >= m.version {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|e| StoreError::Backend(format!("SQLite migration {} failed: {e}", m.name)))?;
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
            let bound = match value {
                Value::Null => stmt.raw_bind_parameter(index, SqlValue::Null),
                Value::Int(i) => stmt.raw_bind_parameter(index, *i),
                Value::Bool(b) => stmt.raw_bind_parameter(index, i64::from(*b)),
                Value::Text(s) => stmt.raw_bind_parameter(index, s.as_str()),
                // Borrowed: an uploaded file is not copied again to bind it.
                Value::Blob(b) => stmt.raw_bind_parameter(index, b.as_slice()),
            };
            bound.map_err(map_err)?;
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
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
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

    fn lock_rows_skip_locked(&self) -> &'static str {
        ""
    }
}

impl Backend for SqliteBackend {
    const NAME: &'static str = "sqlite";

    fn read<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.readers.get()?;
        f(&mut SqliteTx { conn: &conn })
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let gone = || StoreError::Backend("sqlite: the writer thread has stopped".into());
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Box::new(Job { f, result: None, reply });
        self.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        // Blocks until the job's batch has committed (or failed).
        answer.recv().map_err(|_| gone())?
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
            b.write(move |tx| {
                tx.execute("UPDATE identity_pools SET name = $1 WHERE id = $2", &["during".into(), "a".into()])?;
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
        let rows = backend.read(|tx| tx.query("SELECT $1 + $1, $2", &[Value::Int(20), Value::Null])).unwrap();
        assert_eq!(rows, vec![vec![Value::Int(40), Value::Null]]);
        let err = backend.read(|tx| tx.query("SELECT $1", &[])).unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)));
    }

    fn insert_pool(tx: &mut dyn Tx, id: &str) -> StoreResult<u64> {
        tx.execute(
            "INSERT INTO identity_pools (id, name, created_ms, modified_ms, version, doc)
             VALUES ($1, 'n', 1, 1, 1, '{}')",
            &[id.into()],
        )
    }

    fn pool_ids(backend: &SqliteBackend) -> Vec<String> {
        let rows = backend.read(|tx| tx.query("SELECT id FROM identity_pools ORDER BY id", &[])).unwrap();
        rows.into_iter().map(|r| db::Cells::new(r).text().unwrap()).collect()
    }

    /// Writes queued while the writer is busy are committed together, in one
    /// transaction; a failing or panicking write rolls back only its own
    /// savepoint and gets its own error.
    #[test]
    fn queued_writes_share_one_commit_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let backend = std::sync::Arc::new(SqliteBackend::open(&dir.path().join("db")).unwrap());
        let before = backend.batches();

        let (started, wait_started) = mpsc::channel();
        let (release, wait_release) = mpsc::channel::<()>();
        let b = backend.clone();
        let blocker = std::thread::spawn(move || {
            b.write(move |tx| {
                insert_pool(tx, "blocker")?;
                started.send(()).unwrap();
                wait_release.recv_timeout(Duration::from_secs(10)).unwrap();
                Ok(())
            })
        });
        wait_started.recv().unwrap();

        type Work = Box<dyn FnMut(&mut dyn Tx) -> StoreResult<u64> + Send>;
        let spawn = |f: Work| {
            let b = backend.clone();
            std::thread::spawn(move || b.write(f))
        };
        let ok1 = spawn(Box::new(|tx| insert_pool(tx, "ok1")));
        let failing = spawn(Box::new(|tx| {
            insert_pool(tx, "failing")?;
            Err(StoreError::LimitExceeded)
        }));
        let panicking = spawn(Box::new(|tx| {
            insert_pool(tx, "panicking")?;
            panic!("a write closure panicked on purpose")
        }));
        let duplicate = spawn(Box::new(|tx| insert_pool(tx, "blocker")));
        let ok2 = spawn(Box::new(|tx| insert_pool(tx, "ok2")));
        // Let them all queue up behind the blocker.
        std::thread::sleep(Duration::from_millis(300));
        release.send(()).unwrap();

        assert!(blocker.join().unwrap().is_ok());
        assert_eq!(ok1.join().unwrap().unwrap(), 1);
        assert_eq!(ok2.join().unwrap().unwrap(), 1);
        assert!(matches!(failing.join().unwrap(), Err(StoreError::LimitExceeded)));
        assert!(matches!(panicking.join().unwrap(), Err(StoreError::Backend(_))));
        assert!(matches!(duplicate.join().unwrap(), Err(StoreError::AlreadyExists)));
        assert_eq!(pool_ids(&backend), ["blocker", "ok1", "ok2"]);
        assert_eq!(backend.batches() - before, 1, "expected a single group commit");

        // The writer is still healthy.
        assert_eq!(backend.write(|tx| insert_pool(tx, "after")).unwrap(), 1);
        assert_eq!(backend.batches() - before, 2);
    }

    /// Dropping the store answers queued writes and closes the writer.
    #[test]
    fn drop_finishes_queued_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let backend = std::sync::Arc::new(SqliteBackend::open(&path).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let b = backend.clone();
                std::thread::spawn(move || b.write(move |tx| insert_pool(tx, &format!("p{i}"))))
            })
            .collect();
        drop(backend);
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), 1);
        }
        let reopened = SqliteBackend::open(&path).unwrap();
        assert_eq!(pool_ids(&reopened).len(), 8);
    }
}
