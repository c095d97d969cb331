//! The narrow interface the SQL store is written against, implemented once per
//! backend. Keeping it this small (a few value kinds, execute/query) is what
//! lets the store logic exist only once.

use crate::{Entity, StoreError, StoreResult};

/// How a backend's message for a violated foreign key starts. Which row was
/// missing only the statement's author knows, so the store names it with
/// [`missing_parent_is`]; a violation it does not expect stays a backend
/// error.
const MISSING_PARENT: &str = "a row this write refers to is missing";

/// The error a backend reports for a foreign key violation.
pub(crate) fn missing_parent(backend_message: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{MISSING_PARENT} ({backend_message})"))
}

/// Names the row a write's foreign keys refer to: a foreign key violation
/// becomes `NotFound(parent)`; any other error is kept.
pub(crate) fn missing_parent_is(parent: Entity) -> impl Fn(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Backend(msg) if msg.starts_with(MISSING_PARENT) => StoreError::NotFound(parent),
        other => other,
    }
}

/// A SQL parameter or result cell. Only the types our schema uses.
#[derive(Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    /// BLOB in SQLite, BYTEA in PostgreSQL.
    Blob(Vec<u8>),
}

/// Blobs (uploaded files, megabytes) show as their length, so that error
/// messages quoting a value stay short.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Text(s) => f.debug_tuple("Text").field(s).finish(),
            Value::Blob(b) => write!(f, "Blob({} bytes)", b.len()),
        }
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Blob(b.to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Option<&str>> for Value {
    fn from(s: Option<&str>) -> Self {
        s.map_or(Value::Null, Value::from)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<Option<i64>> for Value {
    fn from(i: Option<i64>) -> Self {
        i.map_or(Value::Null, Value::Int)
    }
}

pub(crate) type Row = Vec<Value>;

/// An open connection or transaction. SQL uses `$1`-style placeholders, which
/// both PostgreSQL and SQLite (as named parameters) understand.
pub(crate) trait Tx {
    /// Runs a statement that returns no rows; returns the affected row count.
    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64>;
    /// Runs a query and returns all of its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>>;
    /// Suffix for a `SELECT` that must lock the rows it reads until the end of
    /// the transaction. SQLite needs none (a write transaction already holds
    /// the database lock) and rejects `FOR UPDATE`.
    fn lock_rows(&self) -> &'static str;
    /// Like [`Tx::lock_rows`], but rows another transaction holds locked are
    /// skipped instead of waited for (bounded clean-ups that concurrent
    /// writers would otherwise queue, or deadlock, on).
    fn lock_rows_skip_locked(&self) -> &'static str;
}

/// A database that can run closures over a [`Tx`].
pub(crate) trait Backend: Send + Sync + 'static {
    const NAME: &'static str;

    /// Runs read-only work. May run without a transaction: every read the
    /// store does is a single statement.
    fn read<T>(&self, f: impl FnMut(&mut dyn Tx) -> StoreResult<T>) -> StoreResult<T>;

    /// Runs `f` in a write transaction, committed if `f` returns `Ok` and
    /// rolled back otherwise; returns only once the outcome is durable. `f`
    /// may be called more than once when the backend retries a transient
    /// failure, so it must not have side effects outside the transaction.
    /// It may run on another thread (SQLite's group-commit writer), hence
    /// `Send + 'static`, and must not call back into the backend.
    fn write<T: Send + 'static>(&self, f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static)
        -> StoreResult<T>;

    /// Like [`Backend::write`] for counters that only throttle (failed-guess counters, rate
    /// windows): atomic and isolated like any write, and kept across a crash of the server
    /// process, but not waited for to reach the disk, so a power failure may forget the
    /// last fraction of a second of them. Such a write must never be what makes something
    /// else the client was told about durable.
    fn write_counter<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.write(f)
    }

    fn ping(&self) -> StoreResult<()>;
}

/// One schema migration, embedded in the binary.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Checks the invariant the migration runners rely on: versions are 1, 2, 3…
pub(crate) fn check_migration_list(list: &[Migration]) -> StoreResult<()> {
    for (i, m) in list.iter().enumerate() {
        let expected = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
        if m.version != expected {
            return Err(StoreError::Backend(format!(
                "migration {} has version {}, expected {expected}",
                m.name, m.version
            )));
        }
    }
    Ok(())
}

pub(crate) fn newer_schema_error(found: i64, known: i64) -> StoreError {
    StoreError::Backend(format!(
        "database schema version {found} is newer than this binary supports ({known}); \
         upgrade cognate or point it at another database"
    ))
}

pub(crate) fn now_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        // A clock before 1970 is a broken host; 0 is as good as anything.
        Err(_) => 0,
    }
}

/// Walks a result row column by column with type checks, so a schema/query
/// mismatch surfaces as a `Backend` error instead of a panic.
pub(crate) struct Cells {
    cells: std::vec::IntoIter<Value>,
    index: usize,
}

impl Cells {
    pub fn new(row: Row) -> Self {
        Cells { cells: row.into_iter(), index: 0 }
    }

    fn next(&mut self) -> StoreResult<Value> {
        self.index += 1;
        self.cells.next().ok_or_else(|| StoreError::Backend(format!("result row has no column {}", self.index)))
    }

    pub fn text(&mut self) -> StoreResult<String> {
        match self.next()? {
            Value::Text(s) => Ok(s),
            other => Err(self.mismatch("text", &other)),
        }
    }

    pub fn int(&mut self) -> StoreResult<i64> {
        match self.next()? {
            Value::Int(i) => Ok(i),
            other => Err(self.mismatch("integer", &other)),
        }
    }

    pub fn opt_int(&mut self) -> StoreResult<Option<i64>> {
        match self.next()? {
            Value::Int(i) => Ok(Some(i)),
            Value::Null => Ok(None),
            other => Err(self.mismatch("integer or null", &other)),
        }
    }

    pub fn opt_text(&mut self) -> StoreResult<Option<String>> {
        match self.next()? {
            Value::Text(s) => Ok(Some(s)),
            Value::Null => Ok(None),
            other => Err(self.mismatch("text or null", &other)),
        }
    }

    pub fn blob(&mut self) -> StoreResult<Vec<u8>> {
        match self.next()? {
            Value::Blob(b) => Ok(b),
            other => Err(self.mismatch("blob", &other)),
        }
    }

    /// A boolean column: BOOLEAN in PostgreSQL, 0/1 INTEGER in SQLite.
    pub fn bool(&mut self) -> StoreResult<bool> {
        match self.next()? {
            Value::Bool(b) => Ok(b),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            other => Err(self.mismatch("boolean", &other)),
        }
    }

    fn mismatch(&self, wanted: &str, got: &Value) -> StoreError {
        StoreError::Backend(format!("result column {}: expected {wanted}, got {got:?}", self.index))
    }
}

/// Reads the single integer of a one-row, one-column result (e.g. `COUNT(*)`).
pub(crate) fn single_int(rows: Vec<Row>) -> StoreResult<i64> {
    match rows.into_iter().next() {
        Some(row) => Cells::new(row).int(),
        None => Err(StoreError::Backend("query returned no rows".into())),
    }
}

pub(crate) fn to_u64(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Backend(format!("negative count {n}")))
}

/// SQL `LIMIT` values are signed 64-bit in both dialects.
pub(crate) fn sql_limit(limit: usize) -> Value {
    Value::Int(i64::try_from(limit).unwrap_or(i64::MAX))
}

pub(crate) fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// Ids bind as their text.
macro_rules! value_from_id {
    ($($id:ty),*) => {$(
        impl From<&$id> for Value {
            fn from(id: &$id) -> Self {
                id.as_str().into()
            }
        }
    )*};
}
value_from_id!(crate::PoolId, crate::ClientId, crate::UsernameKey, crate::Sub, crate::IdentityPoolId);
