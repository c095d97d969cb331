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
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::db::{self, Backend, Migration, Row, Tx, Value};
use crate::pool::{Pool, PoolConn};
use crate::{StoreError, StoreResult};

const MIGRATIONS: &[Migration] = crate::migrations::SQLITE;

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
    db: Database,
}

enum Database {
    File(FileDatabase),
    /// A private in-memory database on one connection, which every read
    /// and write takes in turn. Nothing is fsynced, so batching commits
    /// would gain nothing; one connection also means no cross-connection
    /// locking (a shared-cache memory database would make readers and the
    /// writer fail each other with table locks instead of waiting).
    Memory(Mutex<Connection>),
}

/// A database file: a group-committing writer thread and a reader pool.
struct FileDatabase {
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
        let file = FileDatabase { jobs: Some(jobs), writer: Some(writer), batches, readers };
        Ok(SqliteBackend { db: Database::File(file) })
    }

    /// A new, private in-memory database with the full schema; it is gone
    /// when the backend is dropped.
    pub fn open_in_memory() -> StoreResult<Self> {
        db::check_migration_list(MIGRATIONS)?;
        let mut conn = Connection::open_in_memory()
            .map_err(|e| StoreError::Backend(format!("opening an in-memory SQLite database: {e}")))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // WAL and `synchronous` do not apply to a memory database.
        conn.pragma_update(None, "foreign_keys", "ON").map_err(map_err)?;
        migrate(&mut conn)?;
        Ok(SqliteBackend { db: Database::Memory(Mutex::new(conn)) })
    }

    fn queue_write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
        durable: bool,
    ) -> StoreResult<T> {
        let file = match &self.db {
            Database::File(file) => file,
            Database::Memory(conn) => return write_in_memory(&lock_memory(conn), &mut f),
        };
        let gone = || StoreError::Backend("sqlite: the writer thread has stopped".into());
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Box::new(Job { f, durable, result: None, reply });
        file.jobs.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())?;
        // Blocks until the job's batch has committed (or failed).
        answer.recv().map_err(|_| gone())?
    }

    #[cfg(test)]
    fn batches(&self) -> u64 {
        match &self.db {
            Database::File(file) => file.batches.load(Ordering::SeqCst),
            Database::Memory(_) => 0,
        }
    }
}

/// Locks the memory database's connection. A closure that panicked was
/// caught and its transaction rolled back while the lock was held, so a
/// poisoned lock still guards a consistent connection.
fn lock_memory(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` in its own transaction on the memory database's connection,
/// committed if it succeeds and rolled back if it fails or panics (as the
/// writer thread treats a job's savepoint).
fn write_in_memory<T>(conn: &Connection, f: &mut dyn FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| StoreError::Backend(format!("sqlite: starting a write transaction: {e}")))?;
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut SqliteTx { conn })));
    let result = ran.unwrap_or_else(|_| {
        tracing::error!("a SQLite write closure panicked; rolling back its transaction");
        Err(StoreError::Backend("sqlite: the write panicked".into()))
    });
    if conn.is_autocommit() {
        // SQLite rolled the transaction back itself (an I/O or memory error).
        return Err(result
            .err()
            .unwrap_or_else(|| StoreError::Backend("sqlite: the write transaction was rolled back".into())));
    }
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(e) = conn.execute_batch(end) {
        if !conn.is_autocommit() {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rolling back a failed SQLite write");
            }
        }
        return Err(StoreError::Backend(format!("sqlite: {end}: {e}")));
    }
    result
}

impl Drop for FileDatabase {
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
    /// Whether its caller waits for the commit to reach the disk (see `Backend::write_counter`).
    fn durable(&self) -> bool;
}

struct Job<F, T> {
    f: F,
    durable: bool,
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

    fn durable(&self) -> bool {
        self.durable
    }
}

/// The writer thread: batches queued jobs into transactions until the queue
/// is closed.
fn writer_loop(conn: &Connection, queue: &mpsc::Receiver<Box<dyn WriteJob>>, batches: &AtomicU64) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(BATCH_CAP);
    // The connection opens with synchronous=FULL. A batch that starts with a counter write
    // is committed without the fsync (WAL with synchronous=NORMAL: kept across a process
    // crash, not a power failure) and takes only counter writes; a durable write arriving
    // meanwhile waits for the next batch, which syncs. SQLite allows the switch only
    // between transactions.
    let mut syncing = true;
    let mut carried: Option<Box<dyn WriteJob>> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let sync = first.durable();
        if sync != syncing {
            let pragma = if sync { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
            if let Err(e) = conn.execute_batch(pragma) {
                first.finish(Some(&format!("sqlite: {pragma}: {e}")));
                continue;
            }
            syncing = sync;
        }
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
            if !sync && next.as_ref().is_some_and(|job| job.durable()) {
                carried = next.take();
            }
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
        if f.code == ErrorCode::ConstraintViolation && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
            // A missing parent row (pool, user, client…), named by the store.
            return db::missing_parent(format_args!("sqlite: {e}"));
        }
    }
    // Unique keys are never violated by the store's SQL (inserts say ON
    // CONFLICT and report `AlreadyExists` for the entity they insert).
    StoreError::Backend(format!("sqlite: {e}"))
}

/// The store's SQL numbers parameters PostgreSQL's way (`$1`, the same `$N` may appear several
/// times). To SQLite `$1` is a *named* parameter, and finding a name's index scans every name
/// of the statement, so binding the 30,000 parameters of a batch insert by name took seconds
/// (quadratic) while holding the writer. `?N` means the same thing and binds by position.
fn numbered_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Runs statements on a connection, or on a transaction through its `Deref`.
struct SqliteTx<'a> {
    conn: &'a Connection,
}

impl SqliteTx<'_> {
    fn prepare(&self, sql: &str, params: &[Value]) -> StoreResult<rusqlite::CachedStatement<'_>> {
        let sql = numbered_placeholders(sql);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(map_err)?;
        if stmt.parameter_count() != params.len() {
            return Err(StoreError::Backend(format!(
                "statement takes {} parameters, {} given: {sql}",
                stmt.parameter_count(),
                params.len()
            )));
        }
        for (i, value) in params.iter().enumerate() {
            let index = i + 1;
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
        match &self.db {
            Database::File(file) => {
                let conn = file.readers.get()?;
                f(&mut SqliteTx { conn: &conn })
            }
            Database::Memory(conn) => f(&mut SqliteTx { conn: &lock_memory(conn) }),
        }
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.queue_write(f, true)
    }

    fn write_counter<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.queue_write(f, false)
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
        // Numbers bind by position even when they first appear out of order.
        let rows = backend.read(|tx| tx.query("SELECT $2, $1", &[Value::Int(1), Value::Int(2)])).unwrap();
        assert_eq!(rows, vec![vec![Value::Int(2), Value::Int(1)]]);
    }

    /// As many parameters as a batch insert binds (a 1,000-user import batch has 12,000) each
    /// land at their number. (Binding them by name took seconds: see `numbered_placeholders`.)
    #[test]
    fn many_parameters_bind_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("db")).unwrap();
        let n: i64 = 30_000;
        let rows_sql = (1..=n).map(|i| format!("(${i})")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT sum(column1), max(column1) FROM (VALUES {rows_sql})");
        let params: Vec<Value> = (1..=n).map(Value::Int).collect();
        let rows = backend.read(|tx| tx.query(&sql, &params)).unwrap();
        assert_eq!(rows, vec![vec![Value::Int(n * (n + 1) / 2), Value::Int(n)]]);
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
        assert!(matches!(duplicate.join().unwrap(), Err(StoreError::Backend(m)) if m.contains("UNIQUE")));
        assert_eq!(pool_ids(&backend), ["blocker", "ok1", "ok2"]);
        assert_eq!(backend.batches() - before, 1, "expected a single group commit");

        // The writer is still healthy.
        assert_eq!(backend.write(|tx| insert_pool(tx, "after")).unwrap(), 1);
        assert_eq!(backend.batches() - before, 2);
    }

    /// On the in-memory database, a failing or panicking write rolls back
    /// alone, and the connection stays usable.
    #[test]
    fn memory_writes_fail_alone() {
        let backend = SqliteBackend::open_in_memory().unwrap();
        assert_eq!(backend.write(|tx| insert_pool(tx, "ok1")).unwrap(), 1);
        let failed = backend.write(|tx| {
            insert_pool(tx, "failing")?;
            Err::<u64, _>(StoreError::LimitExceeded)
        });
        assert!(matches!(failed, Err(StoreError::LimitExceeded)));
        let panicked: StoreResult<u64> = backend.write(|tx| {
            insert_pool(tx, "panicking")?;
            panic!("a write closure panicked on purpose")
        });
        assert!(matches!(panicked, Err(StoreError::Backend(_))));
        assert!(
            matches!(backend.write(|tx| insert_pool(tx, "ok1")), Err(StoreError::Backend(m)) if m.contains("UNIQUE"))
        );
        assert_eq!(backend.write(|tx| insert_pool(tx, "ok2")).unwrap(), 1);
        assert_eq!(pool_ids(&backend), ["ok1", "ok2"]);
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
