//! The conformance suite and durability checks on an SQLite file.
// Test code: a failed step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cognate_store::conformance::SqlParam;
use cognate_store::{
    conformance, open_sqlite, AppClientRecord, ClientSecretRecord, StoreError, UserIndex, UserPoolRecord, UserRecord,
};

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
        pool_id: pool.id.to_string(),
        client_id: client.client_id.to_string(),
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
        .query_row("SELECT COUNT(*), MAX(version) FROM schema_migrations", [], |r| Ok((r.get(0)?, r.get(1)?)))
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
    conn.execute("INSERT INTO schema_migrations (version, applied_ms) VALUES (9999, 0)", []).unwrap();
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

/// Every check of [`conformance::BETWEEN_STORES`], each on two stores opened
/// separately on a fresh file (like two server processes), all at once.
#[test]
fn checks_between_two_stores_on_one_file() {
    std::thread::scope(|s| {
        for (name, check) in conformance::BETWEEN_STORES {
            std::thread::Builder::new()
                .name((*name).to_owned())
                .spawn_scoped(s, move || {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("cognate.db");
                    let a = open_sqlite(&path).unwrap();
                    let b = open_sqlite(&path).unwrap();
                    check(a.as_ref(), b.as_ref());
                })
                .unwrap();
        }
    });
}

#[test]
fn usable_from_tokio_blocking_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = tokio::task::spawn_blocking(move || open_sqlite(&path).unwrap()).await.unwrap();
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.ping().unwrap()).await.unwrap();
        // Dropping the last handle on an async worker must not panic.
        drop(store);
    });
}

fn bench_like_user(pool_id: &str, i: usize) -> (UserRecord, UserIndex) {
    let key = format!("user-{i:04}");
    let email = format!("{key}@example.com");
    let user = UserRecord {
        pool_id: pool_id.into(),
        username: key.clone(),
        username_key: key.clone().into(),
        sub: format!("00000000-0000-4000-8000-{i:012}").into(),
        status: cognate_store::UserStatus::Confirmed,
        enabled: true,
        created_ms: 1,
        modified_ms: 1,
        version: 1,
        attributes: format!(r#"[{{"Name":"email","Value":"{email}"}}]"#),
        password: None,
        doc: "{}".into(),
    };
    let index = UserIndex {
        search: vec![
            ("username".into(), key.clone()),
            ("email".into(), email.clone()),
            ("status".into(), "CONFIRMED".into()),
            ("sub".into(), user.sub.to_string()),
        ],
        aliases: vec![("email".into(), email)],
    };
    (user, index)
}

/// The details of `EXPLAIN QUERY PLAN` for `sql` with `params` bound.
fn query_plan(conn: &rusqlite::Connection, sql: &str, params: &[SqlParam]) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    for (i, p) in params.iter().enumerate() {
        let idx = stmt.parameter_index(&format!("${}", i + 1)).unwrap().unwrap();
        match p {
            SqlParam::Text(t) => stmt.raw_bind_parameter(idx, t.as_str()),
            SqlParam::Int(n) => stmt.raw_bind_parameter(idx, *n),
            SqlParam::Bool(b) => stmt.raw_bind_parameter(idx, *b),
            SqlParam::Null => stmt.raw_bind_parameter(idx, rusqlite::types::Null),
            SqlParam::Blob(b) => stmt.raw_bind_parameter(idx, b.as_slice()),
        }
        .unwrap();
    }
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan
}

/// Every statement `search_users` runs is an index range scan on the search
/// table's primary key, joined to users by primary key, with no sort and no
/// table scan; also after ANALYZE has seen a realistic pool.
#[test]
fn search_statements_use_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let store = open_sqlite(&path).unwrap();
    store
        .insert_user_pool(&UserPoolRecord {
            id: "plan_pool".into(),
            name: "p".into(),
            created_ms: 1,
            modified_ms: 1,
            version: 1,
            doc: "{}".into(),
        })
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = &store;
            s.spawn(move || {
                for i in (t..2000).step_by(4) {
                    let (user, index) = bench_like_user("plan_pool", i);
                    store.insert_user(&user, &index).unwrap();
                }
            });
        }
    });
    let conn = rusqlite::Connection::open(&path).unwrap();
    for analyzed in [false, true] {
        if analyzed {
            conn.execute_batch("ANALYZE").unwrap();
        }
        for (sql, params) in conformance::search_statements("plan_pool") {
            let plan = query_plan(&conn, &sql, &params);
            let context = format!("analyzed={analyzed}\n{sql}\n{plan:#?}");
            // The inner query pages through the search index, in order; the
            // outer one walks that page (`SCAN s`: at most `limit` rows) and
            // fetches each user by primary key. No sort, no other scan.
            assert_eq!(plan.len(), 4, "{context}");
            assert_eq!(plan[0], "CO-ROUTINE s", "{context}");
            assert!(plan[1].starts_with("SEARCH s USING PRIMARY KEY (pool_id=? AND attribute=?"), "{context}");
            // Every bound on the value must be part of the seek.
            if sql.contains("AND s.value") || sql.contains("AND (s.value") {
                assert!(plan[1].contains("value"), "value not in the index seek: {context}");
            }
            assert_eq!(plan[2], "SCAN s", "{context}");
            assert_eq!(
                plan[3], "SEARCH u USING INDEX sqlite_autoindex_users_1 (pool_id=? AND username_key=?)",
                "{context}"
            );
        }
    }
}

/// Writes acknowledged to concurrent callers (group-committed in batches)
/// are all on disk when the store is reopened.
#[test]
fn acknowledged_group_commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    {
        let store = open_sqlite(&path).unwrap();
        store
            .insert_user_pool(&UserPoolRecord {
                id: "gc_pool".into(),
                name: "p".into(),
                created_ms: 1,
                modified_ms: 1,
                version: 1,
                doc: "{}".into(),
            })
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let store = &store;
                s.spawn(move || {
                    for i in (t..400).step_by(8) {
                        let (user, index) = bench_like_user("gc_pool", i);
                        store.insert_user(&user, &index).unwrap();
                        // A failing write in the same batches changes nothing.
                        assert!(matches!(
                            store.insert_user(&user, &index),
                            Err(StoreError::AlreadyExists(cognate_store::Entity::User))
                        ));
                    }
                });
            }
        });
    }
    let store = open_sqlite(&path).unwrap();
    assert_eq!(store.count_users("gc_pool").unwrap(), 400);
    let all = store.list_users("gc_pool", None, 1000).unwrap();
    assert_eq!(all.len(), 400);
    for (i, u) in all.iter().enumerate() {
        assert_eq!(u, &bench_like_user("gc_pool", i).0);
    }
    assert_eq!(store.search_users("gc_pool", "status", "CONFIRMED", false, None, 1000).unwrap().len(), 400);
}

/// The membership listings page through an index in order, joined to the
/// listed rows by primary key (no sort, no other scan), before and after
/// ANALYZE has seen a group of 100,000 members and a user in 100 groups;
/// and a page deep into that group comes back in milliseconds.
#[test]
fn group_listings_use_the_index() {
    const MEMBERS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let store = open_sqlite(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON;
         BEGIN;
         INSERT INTO user_pools (id, name, created_ms, modified_ms, version, doc, group_count)
             VALUES ('plan_pool', 'p', 1, 1, 1, '{{}}', 101);
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MEMBERS})
         INSERT INTO users (pool_id, username, username_key, sub, status, enabled, created_ms,
                            modified_ms, version, attributes, password, doc)
             SELECT 'plan_pool', k, k, 'sub-' || k, 'CONFIRMED', 1, 1, 1, 1, '[]', NULL, '{{}}'
             FROM (SELECT printf('user-%06d', i) AS k FROM n);
         INSERT INTO user_groups (pool_id, name, created_ms, modified_ms, version, doc, precedence)
             VALUES ('plan_pool', 'everyone', 1, 1, 1, '{{}}', NULL);
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
         INSERT INTO user_groups (pool_id, name, created_ms, modified_ms, version, doc, precedence)
             SELECT 'plan_pool', printf('group-%03d', i), 1, 1, 1, '{{}}', i FROM n;
         INSERT INTO group_members (pool_id, group_name, username_key)
             SELECT pool_id, 'everyone', username_key FROM users WHERE pool_id = 'plan_pool';
         INSERT INTO group_members (pool_id, group_name, username_key)
             SELECT pool_id, name, 'user-000001' FROM user_groups WHERE name LIKE 'group-%';
         COMMIT;"
    ))
    .unwrap();
    for analyzed in [false, true] {
        if analyzed {
            conn.execute_batch("ANALYZE").unwrap();
        }
        for (sql, params) in conformance::group_statements("plan_pool", "everyone", "user-000001") {
            let plan = query_plan(&conn, &sql, &params);
            let context = format!("analyzed={analyzed}\n{sql}\n{plan:#?}");
            // The inner query pages through the membership index; the outer
            // one walks that page and fetches each row by primary key.
            assert_eq!(plan.len(), 4, "{context}");
            assert_eq!(plan[0], "CO-ROUTINE m", "{context}");
            assert_eq!(plan[2], "SCAN m", "{context}");
            let cursor = params.len() == 4;
            if sql.contains("JOIN users u") {
                let seek = if cursor { " AND username_key>?" } else { "" };
                assert_eq!(
                    plan[1],
                    format!("SEARCH m USING PRIMARY KEY (pool_id=? AND group_name=?{seek})"),
                    "{context}"
                );
                assert_eq!(
                    plan[3], "SEARCH u USING INDEX sqlite_autoindex_users_1 (pool_id=? AND username_key=?)",
                    "{context}"
                );
            } else {
                let seek = if cursor { " AND group_name>?" } else { "" };
                assert_eq!(
                    plan[1],
                    format!("SEARCH m USING COVERING INDEX group_members_by_user (username_key=? AND pool_id=?{seek})"),
                    "{context}"
                );
                assert_eq!(
                    plan[3], "SEARCH g USING INDEX sqlite_autoindex_user_groups_1 (pool_id=? AND name=?)",
                    "{context}"
                );
            }
        }
    }

    // Deep pages are as quick as the first.
    let mut slowest = std::time::Duration::ZERO;
    for after in ["user-000000", "user-050000", "user-099950"] {
        let start = std::time::Instant::now();
        let page = store.list_users_in_group("plan_pool", "everyone", Some(after), 60).unwrap();
        slowest = slowest.max(start.elapsed());
        assert!(!page.is_empty() && page.len() <= 60);
        assert!(page.iter().all(|u| u.username_key.as_str() > after));
        assert!(page.windows(2).all(|w| w[0].username_key < w[1].username_key));
    }
    assert!(slowest < std::time::Duration::from_millis(100), "a page took {slowest:?}");
    let groups = store.list_groups_for_user("plan_pool", &"user-000001".into(), None, 1000).unwrap();
    assert_eq!(groups.len(), 101);
    assert_eq!(groups[0].name, "everyone");
    assert_eq!(groups[1].name, "group-001");
    assert_eq!(store.list_groups_for_user("plan_pool", &"user-000002".into(), None, 1000).unwrap().len(), 1);
}

/// Listing a pool's import jobs walks the primary key backwards from the
/// cursor (no sort, no other scan), before and after ANALYZE has seen a
/// pool of 20,000 jobs among other pools' jobs; a key lookup uses the
/// by-id index on the full key.
#[test]
fn import_job_listings_use_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let store = open_sqlite(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         BEGIN;
         INSERT INTO user_pools (id, name, created_ms, modified_ms, version, doc, import_job_count)
             VALUES ('plan_pool', 'p', 1, 1, 1, '{}', 20000), ('other_pool', 'o', 1, 1, 1, '{}', 20000);
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO import_jobs (pool_id, job_id, created_ms, modified_ms, version, doc)
             SELECT p.id, printf('import-%06d', i), 1700000000000 + i * 100, 1, 1, '{}'
             FROM n, (SELECT id FROM user_pools) p;
         COMMIT;",
    )
    .unwrap();
    for analyzed in [false, true] {
        if analyzed {
            conn.execute_batch("ANALYZE").unwrap();
        }
        for (sql, params) in conformance::import_job_statements("plan_pool") {
            let plan = query_plan(&conn, &sql, &params);
            let context = format!("analyzed={analyzed}\n{sql}\n{plan:#?}");
            let seek = if params.len() == 4 { " AND (created_ms,job_id)<(?,?)" } else { "" };
            assert_eq!(
                plan,
                [format!("SEARCH import_jobs USING INDEX sqlite_autoindex_import_jobs_1 (pool_id=?{seek})")],
                "{context}"
            );
        }
        let sql = "SELECT doc FROM import_jobs WHERE pool_id = $1 AND job_id = $2";
        let plan = query_plan(&conn, sql, &[SqlParam::Text("plan_pool".into()), SqlParam::Text("j".into())]);
        assert_eq!(plan, ["SEARCH import_jobs USING INDEX import_jobs_by_id (job_id=? AND pool_id=?)"], "{plan:#?}");
    }

    // Deep pages are as quick as the first, and in order.
    let mut slowest = std::time::Duration::ZERO;
    for after in [None, Some((1_700_000_000_000 + 10_000 * 100, "import-010000")), Some((1_700_000_000_000 + 200, ""))]
    {
        let start = std::time::Instant::now();
        let page = store.list_import_jobs("plan_pool", after, 60).unwrap();
        slowest = slowest.max(start.elapsed());
        assert!(!page.is_empty() && page.len() <= 60);
        assert!(page.windows(2).all(|w| w[0].created_ms > w[1].created_ms));
        assert!(page.iter().all(|j| j.pool_id == "plan_pool"));
    }
    assert!(slowest < std::time::Duration::from_millis(100), "a page took {slowest:?}");
    assert_eq!(store.list_import_jobs("plan_pool", None, 1).unwrap()[0].job_id, "import-020000");
}

/// Listing a pool's identities pages through the primary key from the cursor
/// and fetches each one's logins through the by-identity index (no sort, no
/// other scan), before and after ANALYZE has seen a pool of 20,000 identities
/// among another pool's; the store's lookups by key use an index on the full
/// key; and a page deep into the pool comes back in milliseconds.
#[test]
fn identity_listings_use_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let store = open_sqlite(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         BEGIN;
         INSERT INTO identity_pools (id, name, created_ms, modified_ms, version, doc)
             VALUES ('plan_pool', 'p', 1, 1, 1, '{}'), ('other_pool', 'o', 1, 1, 1, '{}');
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO identities (identity_pool_id, identity_id, created_ms, modified_ms, version, doc)
             SELECT p.id, printf('us-east-1:%s-%06d', p.id, i), 1, 1, 1, '{}'
             FROM n, (SELECT id FROM identity_pools) p;
         INSERT INTO identity_logins (identity_pool_id, provider, subject, identity_id)
             SELECT identity_pool_id, 'accounts.google.com', 'g-' || identity_id, identity_id FROM identities;
         INSERT INTO identity_logins (identity_pool_id, provider, subject, identity_id)
             SELECT identity_pool_id, 'graph.facebook.com', 'f-' || identity_id, identity_id FROM identities
             WHERE identity_id LIKE '%0';
         COMMIT;",
    )
    .unwrap();
    let text = |s: &str| SqlParam::Text(s.into());
    for analyzed in [false, true] {
        if analyzed {
            conn.execute_batch("ANALYZE").unwrap();
        }
        for (sql, params) in conformance::identity_statements("plan_pool", "us-east-1:plan_pool-010000") {
            let plan = query_plan(&conn, &sql, &params);
            let context = format!("analyzed={analyzed}\n{sql}\n{plan:#?}");
            // The inner query pages through the primary key; the outer one
            // walks that page and fetches each identity's logins by index.
            let seek = if params.len() == 3 { " AND identity_id>?" } else { "" };
            assert_eq!(
                plan,
                [
                    "CO-ROUTINE i".to_owned(),
                    format!("SEARCH i USING INDEX sqlite_autoindex_identities_1 (identity_pool_id=?{seek})"),
                    "SCAN i".to_owned(),
                    "SEARCH l USING COVERING INDEX identity_logins_by_identity (identity_id=? AND identity_pool_id=?) \
                     LEFT-JOIN"
                        .to_owned(),
                ],
                "{context}"
            );
        }
        let lookups = [
            (
                "SELECT doc FROM identities WHERE identity_pool_id = $1 AND identity_id = $2",
                "SEARCH identities USING INDEX ",
            ),
            ("SELECT doc FROM identities WHERE identity_id = $1", "SEARCH identities USING INDEX identities_by_id (identity_id=?)"),
            (
                "SELECT provider, subject FROM identity_logins \
                 WHERE identity_pool_id = $1 AND identity_id = $2 ORDER BY provider, subject",
                "SEARCH identity_logins USING COVERING INDEX identity_logins_by_identity \
                 (identity_id=? AND identity_pool_id=?)",
            ),
            (
                "SELECT identity_id FROM identity_logins WHERE identity_pool_id = $1 AND provider = $2 AND subject = $3",
                "SEARCH identity_logins USING PRIMARY KEY (identity_pool_id=? AND provider=? AND subject=?)",
            ),
        ];
        for (sql, expected) in lookups {
            let params = [text("plan_pool"), text("accounts.google.com"), text("g-x")];
            let params = &params[..sql.matches('$').count()];
            let plan = query_plan(&conn, sql, params);
            assert_eq!(plan.len(), 1, "{sql}\n{plan:#?}");
            assert!(plan[0].starts_with(expected), "{sql}\n{plan:#?}");
            if expected.ends_with("INDEX ") {
                // Either unique index finds the one row: the primary key, or the id's.
                assert!(
                    plan[0].ends_with("sqlite_autoindex_identities_1 (identity_pool_id=? AND identity_id=?)")
                        || plan[0].ends_with("identities_by_id (identity_id=?)"),
                    "{sql}\n{plan:#?}"
                );
            }
        }
    }

    // Deep pages are as quick as the first, and in order.
    let mut slowest = std::time::Duration::ZERO;
    for after in [None, Some("us-east-1:plan_pool-010000"), Some("us-east-1:plan_pool-019990")] {
        let start = std::time::Instant::now();
        let page = store.list_identities("plan_pool", after, 60).unwrap();
        slowest = slowest.max(start.elapsed());
        assert!(!page.is_empty() && page.len() <= 60);
        assert!(page.windows(2).all(|w| w[0].0.identity_id < w[1].0.identity_id));
        assert!(page.iter().all(|(i, _)| i.identity_pool_id == "plan_pool"));
        assert!(page.iter().all(|(i, _)| after.is_none_or(|a| i.identity_id.as_str() > a)));
        for (i, logins) in &page {
            let expected = if i.identity_id.ends_with('0') { 2 } else { 1 };
            assert_eq!(logins.len(), expected, "{}", i.identity_id);
        }
    }
    assert!(slowest < std::time::Duration::from_millis(100), "a page took {slowest:?}");
    assert_eq!(store.list_identities("plan_pool", None, 1).unwrap()[0].0.identity_id, "us-east-1:plan_pool-000001");
}

#[test]
fn in_memory_conformance_suite() {
    let store = cognate_store::open_sqlite_in_memory().unwrap();
    assert_eq!(store.backend(), "sqlite");
    conformance::run_all(store.as_ref());
}

/// Each in-memory store is its own database, and what one handle writes
/// every clone of it reads.
#[test]
fn in_memory_stores_are_private() {
    let a = cognate_store::open_sqlite_in_memory().unwrap();
    let b = cognate_store::open_sqlite_in_memory().unwrap();
    let pool = UserPoolRecord {
        id: "mem_pool".into(),
        name: "p".into(),
        created_ms: 1,
        modified_ms: 1,
        version: 1,
        doc: "{}".into(),
    };
    a.insert_user_pool(&pool).unwrap();
    let a2 = a.clone();
    let seen = std::thread::spawn(move || a2.get_user_pool("mem_pool").unwrap()).join().unwrap();
    assert_eq!(seen, Some(pool));
    assert_eq!(b.get_user_pool("mem_pool").unwrap(), None);
    assert_eq!(b.count_user_pools().unwrap(), 0);
}

/// Listing a dataset's records (from a sync count, or from a cursor) is one
/// range scan of the by-count index, already in result order, before and
/// after ANALYZE has seen a dataset of 20,000 records next to another.
#[test]
fn sync_record_listings_use_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cognate.db");
    let store = open_sqlite(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         BEGIN;
         INSERT INTO identity_pools (id, name, created_ms, modified_ms, version, doc) VALUES ('plan_pool', 'p', 1, 1, 1, '{}');
         INSERT INTO identities (identity_pool_id, identity_id, created_ms, modified_ms, version, doc)
             VALUES ('plan_pool', 'plan:a', 1, 1, 1, '{}');
         INSERT INTO sync_datasets (identity_pool_id, identity_id, name, created_ms, modified_ms, last_modified_by,
                                    sync_count, num_records, data_bytes, deleted)
             VALUES ('plan_pool', 'plan:a', 'big', 1, 1, 'd', 2000, 20000, 0, 0),
                    ('plan_pool', 'plan:a', 'other', 1, 1, 'd', 2000, 20000, 0, 0);
         WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO sync_records (identity_pool_id, identity_id, dataset, key, value, sync_count, modified_ms,
                                   last_modified_by, device_modified_ms)
             SELECT 'plan_pool', 'plan:a', d.name, printf('key-%06d', i), 'v', i / 10, 1, 'd', NULL
             FROM n, (SELECT name FROM sync_datasets) d;
         COMMIT;",
    )
    .unwrap();
    for analyzed in [false, true] {
        if analyzed {
            conn.execute_batch("ANALYZE").unwrap();
        }
        for (sql, params) in conformance::sync_record_statements("plan_pool", "plan:a", "big") {
            let plan = query_plan(&conn, &sql, &params);
            let context = format!("analyzed={analyzed}\n{sql}\n{plan:#?}");
            let bound = if params.len() == 6 { "(sync_count,key)>(?,?)" } else { "sync_count>?" };
            assert_eq!(
                plan,
                [format!(
                    "SEARCH sync_records USING INDEX sync_records_by_count \
                     (identity_id=? AND identity_pool_id=? AND dataset=? AND {bound})"
                )],
                "{context}"
            );
        }
    }
    let mut slowest = std::time::Duration::ZERO;
    for (after_count, after) in [(0, None), (1500, None), (0, Some((1000, "key-010000")))] {
        let start = std::time::Instant::now();
        let page = store.list_sync_records("plan_pool", "plan:a", "big", after_count, after, 60).unwrap();
        slowest = slowest.max(start.elapsed());
        assert_eq!(page.len(), 60);
        assert!(page.windows(2).all(|w| (w[0].sync_count, &w[0].key) < (w[1].sync_count, &w[1].key)));
    }
    assert!(slowest < std::time::Duration::from_millis(100), "a page took {slowest:?}");
}
