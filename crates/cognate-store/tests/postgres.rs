//! The conformance suite and multi-process behaviour on PostgreSQL at
//! `COGNATE_TEST_DATABASE_URL` (default `postgres://root@127.0.0.1:5432/test`),
//! each test in its own schema, dropped afterwards.
//!
//! If the server is unreachable the tests are skipped with a loud notice,
//! unless `CI` is set, in which case they fail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cognate_store::{conformance, open_postgres_in_schema, Store, StoreError};

const DEFAULT_URL: &str = "postgres://root@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("COGNATE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// A uniquely named schema, dropped (with everything in it) on drop.
struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// `None` (after a loud notice) when PostgreSQL is unreachable outside CI.
    fn new() -> Option<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let url = url();
        if let Err(e) = postgres::Client::connect(&url, postgres::NoTls) {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at {url} is unreachable and CI is set: {e}");
            }
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPING PostgreSQL store test: {url} unreachable: {e}\n\
                 !! Set COGNATE_TEST_DATABASE_URL to run it.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "cognate_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        Some(TestSchema { url, name })
    }

    fn open(&self) -> Arc<dyn Store> {
        open_postgres_in_schema(&self.url, &self.name).unwrap()
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        match postgres::Client::connect(&self.url, postgres::NoTls) {
            Ok(mut c) => {
                if let Err(e) = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name)) {
                    eprintln!("could not drop test schema {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop test schema {}: {e}", self.name),
        }
    }
}

#[test]
fn conformance_suite() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.open();
    assert_eq!(store.backend(), "postgres");
    conformance::run_all(store.as_ref());
}

#[test]
fn two_processes_race_cas() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Separately opened stores have separate pools and connections, like
    // two server processes sharing the database.
    let a = schema.open();
    let b = schema.open();
    conformance::cas_race_between_stores(a.as_ref(), b.as_ref());
}

#[test]
fn concurrent_opens_migrate_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let stores: Vec<Arc<dyn Store>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| schema.open())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for store in &stores {
        store.ping().unwrap();
    }
    drop(stores);
    // And again, sequentially: reopening is a no-op.
    schema.open().ping().unwrap();

    let files = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
        .unwrap()
        .count() as i64;
    let row = schema
        .client()
        .query_one(
            &format!(
                "SELECT COUNT(*), MAX(version) FROM \"{}\".schema_migrations",
                schema.name
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), files);
    assert_eq!(row.get::<_, i64>(1), files);
}

#[test]
fn newer_schema_is_refused() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    drop(schema.open());
    schema
        .client()
        .batch_execute(&format!(
            "INSERT INTO \"{}\".schema_migrations (version, applied_ms) VALUES (9999, 0)",
            schema.name
        ))
        .unwrap();
    match open_postgres_in_schema(&schema.url, &schema.name) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("newer"), "{msg}"),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[test]
fn bad_schema_name_and_unreachable_server_are_errors() {
    assert!(matches!(
        open_postgres_in_schema(&url(), "no-dashes"),
        Err(StoreError::Backend(_))
    ));
    // Port 1 on localhost: refused immediately, no hang.
    assert!(matches!(
        open_postgres_in_schema("postgres://root@127.0.0.1:1/test", "x"),
        Err(StoreError::Backend(_))
    ));
}

#[test]
fn usable_from_tokio_blocking_tasks() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let schema = Arc::new(schema);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = schema.clone();
    rt.block_on(async move {
        // The sync client runs its own runtime; that must work on tokio's
        // blocking threads.
        let store = tokio::task::spawn_blocking(move || s.open()).await.unwrap();
        let st = store.clone();
        tokio::task::spawn_blocking(move || {
            st.ping().unwrap();
            conformance::user_pool_insert_and_get(st.as_ref());
        })
        .await
        .unwrap();
        // Dropping the last handle on an async worker closes the pooled
        // connections; that must not panic either.
        drop(store);
    });
}

#[test]
fn reconnects_after_the_server_drops_connections() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // A distinctive application_name lets us kill exactly this store's
    // connections, as a server restart or failover would.
    let app = format!("{}_victim", schema.name);
    let base = schema.url.clone();
    let url = if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}application_name={app}")
    } else {
        format!("{base} application_name={app}")
    };
    let store = open_postgres_in_schema(&url, &schema.name).unwrap();
    conformance::user_pool_insert_and_get(store.as_ref());

    let killed: i64 = schema
        .client()
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1, "no connection to kill");

    // Both a read and a write go through, on fresh connections.
    assert!(store.get_user_pool("ig_pool").unwrap().is_some());
    let mut rec = store.get_user_pool("ig_pool").unwrap().unwrap();
    rec.version += 1;
    store.update_user_pool(&rec).unwrap();
    store.ping().unwrap();
}
