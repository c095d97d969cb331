//! The conformance suite and durability checks on an SQLite file.

use std::path::Path;

use cognate_store::{conformance, open_sqlite, AppClientRecord, ClientSecretRecord, StoreError, UserPoolRecord};

fn migration_files() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count() as i64
}

#[test]
fn conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sqlite(&dir.path().join("cognate.db")).unwrap();
    assert_eq!(store.backend(), "sqlite");
    conformance::run_all(store.as_ref());
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let pool = UserPoolRecord {
        id: "us-east-1_abc".into(),
        name: "pool".into(),
        created_ms: 1,
        modified_ms: 2,
        version: 1,
        doc: r#"{"a":1}"#.into(),
    };
    let client = AppClientRecord {
        pool_id: pool.id.clone(),
        client_id: "client".into(),
        name: "c".into(),
        created_ms: 3,
        modified_ms: 4,
        version: 1,
        doc: "{}".into(),
    };
    let secret = ClientSecretRecord {
        pool_id: pool.id.clone(),
        client_id: client.client_id.clone(),
        secret_id: "s".into(),
        sealed_secret: "sealed".into(),
        created_ms: 5,
    };
    {
        let store = open_sqlite(&path).unwrap();
        store.insert_user_pool(&pool).unwrap();
        store.insert_app_client(&client, Some(&secret)).unwrap();
        let mut updated = pool.clone();
        updated.version = 2;
        updated.doc = r#"{"a":2}"#.into();
        store.update_user_pool(&updated).unwrap();
    }
    let store = open_sqlite(&path).unwrap();
    let got = store.get_user_pool(&pool.id).unwrap().unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.doc, r#"{"a":2}"#);
    assert_eq!(store.get_app_client(&pool.id, "client").unwrap(), Some(client));
    assert_eq!(store.list_client_secrets(&pool.id, "client").unwrap(), vec![secret]);
    // Foreign keys are enforced on a reopened file too.
    assert!(store.delete_user_pool(&pool.id).unwrap());
    assert!(store.list_client_secrets(&pool.id, "client").unwrap().is_empty());
}

#[test]
fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    for _ in 0..3 {
        let store = open_sqlite(&path).unwrap();
        store.ping().unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (rows, max): (i64, i64) = conn
        .query_row("SELECT COUNT(*), MAX(version) FROM schema_migrations", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(rows, migration_files());
    assert_eq!(max, migration_files());
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    drop(open_sqlite(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_ms) VALUES (9999, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    match open_sqlite(&path) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("newer"), "{msg}"),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[test]
fn unopenable_path_is_a_backend_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("cognate.db");
    assert!(matches!(open_sqlite(&path), Err(StoreError::Backend(_))));
}

#[test]
fn two_stores_on_one_file_race_cas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let a = open_sqlite(&path).unwrap();
    let b = open_sqlite(&path).unwrap();
    conformance::cas_race_between_stores(a.as_ref(), b.as_ref());
}

#[test]
fn usable_from_tokio_blocking_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = tokio::task::spawn_blocking(move || open_sqlite(&path).unwrap())
            .await
            .unwrap();
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.ping().unwrap()).await.unwrap();
        // Dropping the last handle on an async worker must not panic.
        drop(store);
    });
}
