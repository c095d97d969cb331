//! The conformance suite and multi-process behaviour on PostgreSQL at
//! `COGNATE_TEST_DATABASE_URL` (default `postgres://root@127.0.0.1:5432/test`),
//! each test in its own schema, dropped afterwards.
//!
//! If the server is unreachable the tests are skipped with a loud notice,
//! unless `CI` is set, in which case they fail.
// Test code: a failed step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
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

/// Every check of [`conformance::BETWEEN_STORES`], each on two stores opened
/// separately (separate pools and connections, like two server processes)
/// in a fresh schema, all at once.
#[test]
fn checks_between_two_processes() {
    std::thread::scope(|s| {
        for (name, check) in conformance::BETWEEN_STORES {
            std::thread::Builder::new()
                .name((*name).to_owned())
                .spawn_scoped(s, move || {
                    let Some(schema) = TestSchema::new() else {
                        return;
                    };
                    let a = schema.open();
                    let b = schema.open();
                    check(a.as_ref(), b.as_ref());
                })
                .unwrap();
        }
    });
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
        .query_one(&format!("SELECT COUNT(*), MAX(version) FROM \"{}\".schema_migrations", schema.name), &[])
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
    assert!(matches!(open_postgres_in_schema(&url(), "no-dashes"), Err(StoreError::Backend(_))));
    // Port 1 on localhost: refused immediately, no hang.
    assert!(matches!(open_postgres_in_schema("postgres://root@127.0.0.1:1/test", "x"), Err(StoreError::Backend(_))));
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

/// Every statement `search_users` runs is an index scan of the search
/// table's primary key with the value bounds as index conditions, on a pool
/// of 50,000 analyzed users: no sequential scan, and no sort of the matches.
#[test]
fn search_statements_use_the_index() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    drop(schema.open());
    let mut client = schema.client();
    client
        .batch_execute(&format!(
            "SET search_path TO \"{}\";
             INSERT INTO user_pools (id, name, created_ms, modified_ms, version, doc)
                 VALUES ('plan_pool', 'p', 1, 1, 1, '{{}}');
             INSERT INTO users (pool_id, username, username_key, sub, status, enabled, created_ms,
                                modified_ms, version, attributes, password, doc)
                 SELECT 'plan_pool', k, k, md5(k), 'CONFIRMED', true, 1, 1, 1, '[]', NULL, '{{}}'
                 FROM (SELECT 'user-' || lpad(i::text, 6, '0') AS k FROM generate_series(1, 50000) i) t;
             INSERT INTO user_search (pool_id, attribute, value, username_key)
                 SELECT pool_id, a.attribute, a.value, username_key
                 FROM users, LATERAL (VALUES ('username', username_key), ('email', username_key || '@example.com'),
                                             ('status', status), ('sub', sub)) AS a (attribute, value);
             ANALYZE user_pools; ANALYZE users; ANALYZE user_search;",
            schema.name
        ))
        .unwrap();
    for (sql, params) in conformance::search_statements("plan_pool") {
        let plan = explain(&mut client, &sql, &params);
        let context = format!("{sql}\n{}", plan.join("\n"));
        assert!(!context.contains("Seq Scan"), "{context}");
        let scan = plan
            .iter()
            .position(|l| l.contains("Scan using user_search_pkey on user_search s"))
            .unwrap_or_else(|| panic!("search index not used: {context}"));
        // The page is cut by a Limit right on top of the ordered index scan:
        // whatever sorts above it sorts at most `limit` rows.
        assert!(scan > 0 && plan[scan - 1].contains("Limit"), "{context}");
        let cond = plan
            .get(scan + 1)
            .filter(|l| l.contains("Index Cond:"))
            .unwrap_or_else(|| panic!("no index condition: {context}"));
        assert!(cond.contains("(pool_id = ") && cond.contains("(attribute = "), "{context}");
        if sql.contains("AND s.value") || sql.contains("AND (s.value") {
            assert!(cond.contains("value"), "value bound not an index condition: {context}");
        }
        assert!(!plan.iter().any(|l| l.trim_start().starts_with("Filter:")), "{context}");
        assert!(context.contains("Index Scan using users_pkey on users u"), "{context}");
    }
}

/// The foreign-key checks and cascades on the user tables run lookups by
/// (pool_id, username_key), planned once per connection, possibly while the
/// tables are still empty and without statistics: even such a generic plan
/// must use an index on the full key, never one that only narrows the
/// lookup to the pool (a scan of the whole pool per inserted row).
#[test]
fn foreign_key_lookups_use_full_key_indexes_without_statistics() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    drop(schema.open());
    let mut client = schema.client();
    client
        .batch_execute(&format!("SET search_path TO \"{}\"; SET plan_cache_mode = force_generic_plan;", schema.name))
        .unwrap();
    let lookups = [
        // What the RI triggers run: the parent check, and the cascades.
        "SELECT 1 FROM ONLY users x WHERE pool_id OPERATOR(pg_catalog.=) $1 \
         AND username_key OPERATOR(pg_catalog.=) $2 FOR KEY SHARE OF x",
        "DELETE FROM ONLY user_search WHERE pool_id OPERATOR(pg_catalog.=) $1 \
         AND username_key OPERATOR(pg_catalog.=) $2",
        "DELETE FROM ONLY user_aliases WHERE pool_id OPERATOR(pg_catalog.=) $1 \
         AND username_key OPERATOR(pg_catalog.=) $2",
        "DELETE FROM ONLY user_codes WHERE pool_id OPERATOR(pg_catalog.=) $1 \
         AND username_key OPERATOR(pg_catalog.=) $2",
        "DELETE FROM ONLY group_members WHERE pool_id OPERATOR(pg_catalog.=) $1 \
         AND username_key OPERATOR(pg_catalog.=) $2",
        // And the store's own lookups by user.
        "SELECT attribute, value FROM user_search WHERE pool_id = $1 AND username_key = $2",
        "SELECT kind, alias_key FROM user_aliases WHERE pool_id = $1 AND username_key = $2",
        "SELECT 1 FROM users WHERE pool_id = $1 AND sub = $2",
        "SELECT COUNT(*) FROM group_members WHERE pool_id = $1 AND username_key = $2",
    ];
    for (i, sql) in lookups.iter().enumerate() {
        client.batch_execute(&format!("PREPARE fk_probe_{i}(text, text) AS {sql}")).unwrap();
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN EXECUTE fk_probe_{i}('p', 'u')"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let plan = plan.join("\n");
        let cond =
            plan.lines().find(|l| l.contains("Index Cond:")).unwrap_or_else(|| panic!("no index used: {sql}\n{plan}"));
        assert!(
            cond.contains("pool_id = $1") && (cond.contains("username_key = $2") || cond.contains("sub = $2")),
            "index does not cover the full key: {sql}\n{plan}"
        );
        assert!(!plan.contains("Filter:"), "{sql}\n{plan}");
        if sql.contains("group_members") {
            assert!(plan.contains("group_members_by_user"), "not the by-user index: {sql}\n{plan}");
        }
    }
    // The group side: the parent check and the cascade from a group.
    let group_lookups = [
        (
            "SELECT 1 FROM ONLY user_groups x WHERE pool_id OPERATOR(pg_catalog.=) $1 \
          AND name OPERATOR(pg_catalog.=) $2 FOR KEY SHARE OF x",
            "name = $2",
        ),
        (
            "DELETE FROM ONLY group_members WHERE pool_id OPERATOR(pg_catalog.=) $1 \
          AND group_name OPERATOR(pg_catalog.=) $2",
            "group_name = $2",
        ),
    ];
    for (i, (sql, second)) in group_lookups.iter().enumerate() {
        client.batch_execute(&format!("PREPARE group_probe_{i}(text, text) AS {sql}")).unwrap();
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN EXECUTE group_probe_{i}('p', 'g')"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let plan = plan.join("\n");
        let cond =
            plan.lines().find(|l| l.contains("Index Cond:")).unwrap_or_else(|| panic!("no index used: {sql}\n{plan}"));
        assert!(
            cond.contains("pool_id = $1") && cond.contains(second),
            "index does not cover the full key: {sql}\n{plan}"
        );
        assert!(!plan.contains("Filter:"), "{sql}\n{plan}");
    }
}

/// The membership listings are index scans, in order, cut by a Limit right
/// above them, joined to the listed rows by primary key, on a group of
/// 100,000 analyzed members and a user in 100 groups (among 50,000 groups
/// of another pool); and a page deep into that group comes back in
/// milliseconds.
#[test]
fn group_listings_use_the_index() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.open();
    let mut client = schema.client();
    client
        .batch_execute(&format!(
            "SET search_path TO \"{}\";
             INSERT INTO user_pools (id, name, created_ms, modified_ms, version, doc, group_count)
                 VALUES ('plan_pool', 'p', 1, 1, 1, '{{}}', 101);
             INSERT INTO users (pool_id, username, username_key, sub, status, enabled, created_ms,
                                modified_ms, version, attributes, password, doc)
                 SELECT 'plan_pool', k, k, md5(k), 'CONFIRMED', true, 1, 1, 1, '[]', NULL, '{{}}'
                 FROM (SELECT 'user-' || lpad(i::text, 6, '0') AS k FROM generate_series(1, 100000) i) t;
             INSERT INTO user_groups (pool_id, name, created_ms, modified_ms, version, doc, precedence)
                 VALUES ('plan_pool', 'everyone', 1, 1, 1, '{{}}', NULL);
             INSERT INTO user_groups (pool_id, name, created_ms, modified_ms, version, doc, precedence)
                 SELECT 'plan_pool', 'group-' || lpad(i::text, 3, '0'), 1, 1, 1, '{{}}', i
                 FROM generate_series(1, 100) i;
             INSERT INTO group_members (pool_id, group_name, username_key)
                 SELECT pool_id, 'everyone', username_key FROM users WHERE pool_id = 'plan_pool';
             INSERT INTO group_members (pool_id, group_name, username_key)
                 SELECT pool_id, name, 'user-000001' FROM user_groups WHERE name LIKE 'group-%';
             -- The groups table is shared by every pool.
             INSERT INTO user_pools (id, name, created_ms, modified_ms, version, doc, group_count)
                 VALUES ('other_pool', 'o', 1, 1, 1, '{{}}', 50000);
             INSERT INTO user_groups (pool_id, name, created_ms, modified_ms, version, doc, precedence)
                 SELECT 'other_pool', 'group-' || lpad(i::text, 6, '0'), 1, 1, 1, '{{}}', NULL
                 FROM generate_series(1, 50000) i;
             ANALYZE user_pools; ANALYZE users; ANALYZE user_groups; ANALYZE group_members;",
            schema.name
        ))
        .unwrap();
    for (sql, params) in conformance::group_statements("plan_pool", "everyone", "user-000001") {
        let plan = explain(&mut client, &sql, &params);
        let context = format!("{sql}\n{}", plan.join("\n"));
        assert!(!context.contains("Seq Scan"), "{context}");
        let (index, key, cursor, joined) = if sql.contains("JOIN users u") {
            ("group_members_pkey", "(group_name = ", "(username_key > ", "users_pkey on users u")
        } else {
            ("group_members_by_user", "(username_key = ", "(group_name > ", "user_groups_pkey on user_groups g")
        };
        let scan = plan
            .iter()
            .position(|l| l.contains(&format!("Scan using {index} on group_members m")))
            .unwrap_or_else(|| panic!("membership index not used: {context}"));
        // Whatever sorts above the Limit sorts at most `limit` rows.
        assert!(scan > 0 && plan[scan - 1].contains("Limit"), "{context}");
        let cond = plan
            .get(scan + 1)
            .filter(|l| l.contains("Index Cond:"))
            .unwrap_or_else(|| panic!("no index condition: {context}"));
        assert!(cond.contains("(pool_id = ") && cond.contains(key), "{context}");
        if params.len() == 4 {
            assert!(cond.contains(cursor), "cursor not an index condition: {context}");
        }
        assert!(!plan.iter().any(|l| l.trim_start().starts_with("Filter:")), "{context}");
        assert!(context.contains(&format!("Index Scan using {joined}")), "{context}");
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

/// Listing a pool's import jobs is a backward scan of the primary key with
/// the cursor as an index condition, cut by a Limit right above it, on a
/// pool of 20,000 analyzed jobs among another pool's; and without any
/// statistics (generic plans, as the foreign-key checks use), lookups of a
/// job by its full key use the by-id index, never one that only narrows the
/// lookup to the pool.
#[test]
fn import_job_statements_use_the_index() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.open();
    let mut client = schema.client();
    client
        .batch_execute(&format!("SET search_path TO \"{}\"; SET plan_cache_mode = force_generic_plan;", schema.name))
        .unwrap();
    let lookups = [
        // What the RI triggers run: the parent check, and the cascade.
        "SELECT 1 FROM ONLY import_jobs x WHERE job_id OPERATOR(pg_catalog.=) $2 \
         AND pool_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x",
        "DELETE FROM ONLY import_job_csvs WHERE job_id OPERATOR(pg_catalog.=) $2 \
         AND pool_id OPERATOR(pg_catalog.=) $1",
        // And the store's own lookups by key.
        "SELECT doc FROM import_jobs WHERE pool_id = $1 AND job_id = $2",
        "UPDATE import_jobs SET version = version + 1 WHERE pool_id = $1 AND job_id = $2 AND version = 1",
        "SELECT csv FROM import_job_csvs WHERE pool_id = $1 AND job_id = $2",
    ];
    for (i, sql) in lookups.iter().enumerate() {
        client.batch_execute(&format!("PREPARE job_probe_{i}(text, text) AS {sql}")).unwrap();
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN EXECUTE job_probe_{i}('p', 'j')"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let plan = plan.join("\n");
        let cond =
            plan.lines().find(|l| l.contains("Index Cond:")).unwrap_or_else(|| panic!("no index used: {sql}\n{plan}"));
        assert!(cond.contains("pool_id = $1") && cond.contains("job_id = $2"), "not the full key: {sql}\n{plan}");
        // Only the CAS update filters, on the version of the one row found.
        assert!(plan.lines().all(|l| !l.contains("Filter:") || l.contains("Filter: (version = 1)")), "{sql}\n{plan}");
        if sql.contains("FROM ONLY import_jobs") || sql.contains("FROM import_jobs") || sql.contains("UPDATE") {
            assert!(plan.contains("import_jobs_by_id"), "not the by-id index: {sql}\n{plan}");
        }
    }

    client
        .batch_execute(
            "SET plan_cache_mode = auto;
             INSERT INTO user_pools (id, name, created_ms, modified_ms, version, doc, import_job_count)
                 VALUES ('plan_pool', 'p', 1, 1, 1, '{}', 20000), ('other_pool', 'o', 1, 1, 1, '{}', 20000);
             INSERT INTO import_jobs (pool_id, job_id, created_ms, modified_ms, version, doc)
                 SELECT p.id, 'import-' || lpad(i::text, 6, '0'), 1700000000000 + i * 100, 1, 1, '{}'
                 FROM generate_series(1, 20000) i, (VALUES ('plan_pool'), ('other_pool')) AS p (id);
             ANALYZE user_pools; ANALYZE import_jobs;",
        )
        .unwrap();
    for (sql, params) in conformance::import_job_statements("plan_pool") {
        let plan = explain(&mut client, &sql, &params);
        let context = format!("{sql}\n{}", plan.join("\n"));
        assert!(!context.contains("Seq Scan") && !context.contains("Sort"), "{context}");
        let scan = plan
            .iter()
            .position(|l| l.contains("Index Scan Backward using import_jobs_pkey on import_jobs"))
            .unwrap_or_else(|| panic!("primary key not walked backwards: {context}"));
        assert!(scan > 0 && plan[scan - 1].contains("Limit"), "{context}");
        let cond = plan
            .get(scan + 1)
            .filter(|l| l.contains("Index Cond:"))
            .unwrap_or_else(|| panic!("no index condition: {context}"));
        assert!(cond.contains("(pool_id = "), "{context}");
        if params.len() == 4 {
            assert!(cond.contains("ROW(created_ms, job_id) < ROW("), "cursor not an index condition: {context}");
        }
        assert!(!plan.iter().any(|l| l.trim_start().starts_with("Filter:")), "{context}");
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

/// Listing a pool's identities is a scan of the primary key with the cursor
/// as an index condition, cut by a Limit right above it, each identity then
/// joined to its logins through the by-identity index, on a pool of 20,000
/// analyzed identities among another pool's; without any statistics
/// (generic plans, as the foreign-key checks use), lookups by an identity's
/// full key use an index that finds at most that one row, never one that
/// only narrows the lookup to the pool; and a page deep into the pool comes
/// back in milliseconds.
#[test]
fn identity_statements_use_the_index() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.open();
    let mut client = schema.client();
    client
        .batch_execute(&format!("SET search_path TO \"{}\"; SET plan_cache_mode = force_generic_plan;", schema.name))
        .unwrap();
    let lookups = [
        // What the RI triggers run: the parent check, and the cascade.
        "SELECT 1 FROM ONLY identities x WHERE identity_pool_id OPERATOR(pg_catalog.=) $1 \
         AND identity_id OPERATOR(pg_catalog.=) $2 FOR KEY SHARE OF x",
        "DELETE FROM ONLY identity_logins WHERE identity_pool_id OPERATOR(pg_catalog.=) $1 \
         AND identity_id OPERATOR(pg_catalog.=) $2",
        // And the store's own lookups by identity.
        "SELECT doc FROM identities WHERE identity_pool_id = $1 AND identity_id = $2 FOR UPDATE",
        "UPDATE identities SET version = version + 1 WHERE identity_pool_id = $1 AND identity_id = $2 AND version = 1",
        "DELETE FROM identities WHERE identity_pool_id = $1 AND identity_id = $2",
        "SELECT doc FROM identities WHERE identity_id = $2",
        "SELECT provider, subject FROM identity_logins WHERE identity_pool_id = $1 AND identity_id = $2 \
         ORDER BY provider, subject",
        "UPDATE identity_logins SET identity_id = 'x' WHERE identity_pool_id = $1 AND identity_id = $2",
    ];
    for (i, sql) in lookups.iter().enumerate() {
        client.batch_execute(&format!("PREPARE identity_probe_{i}(text, text) AS {sql}")).unwrap();
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN EXECUTE identity_probe_{i}('p', 'i')"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let plan = plan.join("\n");
        let cond =
            plan.lines().find(|l| l.contains("Index Cond:")).unwrap_or_else(|| panic!("no index used: {sql}\n{plan}"));
        if sql.contains("identity_logins") {
            assert!(plan.contains("identity_logins_by_identity"), "not the by-identity index: {sql}\n{plan}");
            assert!(cond.contains("identity_pool_id = $1") && cond.contains("identity_id = $2"), "{sql}\n{plan}");
            assert!(!plan.contains("Filter:") && !plan.contains("Sort"), "{sql}\n{plan}");
        } else {
            // The primary key, or the unique index on the identity id alone:
            // either finds the one row, which a filter then checks.
            let full_key = plan.contains("identities_pkey")
                && cond.contains("identity_pool_id = $1")
                && cond.contains("identity_id = $2");
            let by_id = plan.contains("identities_by_id") && cond.contains("(identity_id = $2)");
            assert!(full_key || by_id, "not a unique lookup: {sql}\n{plan}");
        }
    }

    client
        .batch_execute(
            "SET plan_cache_mode = auto;
             INSERT INTO identity_pools (id, name, created_ms, modified_ms, version, doc)
                 VALUES ('plan_pool', 'p', 1, 1, 1, '{}'), ('other_pool', 'o', 1, 1, 1, '{}');
             INSERT INTO identities (identity_pool_id, identity_id, created_ms, modified_ms, version, doc)
                 SELECT p.id, 'us-east-1:' || p.id || '-' || lpad(i::text, 6, '0'), 1, 1, 1, '{}'
                 FROM generate_series(1, 20000) i, (VALUES ('plan_pool'), ('other_pool')) AS p (id);
             INSERT INTO identity_logins (identity_pool_id, provider, subject, identity_id)
                 SELECT identity_pool_id, 'accounts.google.com', 'g-' || identity_id, identity_id FROM identities;
             INSERT INTO identity_logins (identity_pool_id, provider, subject, identity_id)
                 SELECT identity_pool_id, 'graph.facebook.com', 'f-' || identity_id, identity_id FROM identities
                 WHERE identity_id LIKE '%0';
             ANALYZE identity_pools; ANALYZE identities; ANALYZE identity_logins;",
        )
        .unwrap();
    for (sql, params) in conformance::identity_statements("plan_pool", "us-east-1:plan_pool-010000") {
        let plan = explain(&mut client, &sql, &params);
        let context = format!("{sql}\n{}", plan.join("\n"));
        assert!(!context.contains("Seq Scan") && !context.contains("Sort"), "{context}");
        let scan = plan
            .iter()
            .position(|l| l.contains("Index Scan using identities_pkey on identities i"))
            .unwrap_or_else(|| panic!("primary key not walked: {context}"));
        assert!(scan > 0 && plan[scan - 1].contains("Limit"), "{context}");
        let cond = plan
            .get(scan + 1)
            .filter(|l| l.contains("Index Cond:"))
            .unwrap_or_else(|| panic!("no index condition: {context}"));
        assert!(cond.contains("(identity_pool_id = "), "{context}");
        if params.len() == 3 {
            assert!(cond.contains("(identity_id > "), "cursor not an index condition: {context}");
        }
        assert!(context.contains("using identity_logins_by_identity on identity_logins l"), "{context}");
        assert!(!plan.iter().any(|l| l.trim_start().starts_with("Filter:")), "{context}");
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

/// PostgreSQL's plan of `sql` with `params` bound, a line a row.
fn explain(client: &mut postgres::Client, sql: &str, params: &[conformance::SqlParam]) -> Vec<String> {
    let bound: Vec<Box<dyn postgres::types::ToSql + Sync>> = params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                conformance::SqlParam::Text(t) => Box::new(t.clone()),
                conformance::SqlParam::Int(n) => Box::new(*n),
                conformance::SqlParam::Bool(b) => Box::new(*b),
                conformance::SqlParam::Null => Box::new(None::<String>),
                conformance::SqlParam::Blob(b) => Box::new(b.clone()),
            }
        })
        .collect();
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = bound.iter().map(|b| b.as_ref()).collect();
    client.query(&format!("EXPLAIN {sql}"), &refs).unwrap().iter().map(|r| r.get::<_, String>(0)).collect()
}

/// Listing a dataset's records (from a sync count, or from a cursor) is one
/// range scan of the by-count index, already in result order, next to another
/// dataset of the same size.
#[test]
fn sync_record_statements_use_the_index() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.open();
    let mut client = schema.client();
    client
        .batch_execute(&format!(
            "SET search_path TO \"{}\";
             INSERT INTO identity_pools (id, name, created_ms, modified_ms, version, doc)
                 VALUES ('plan_pool', 'p', 1, 1, 1, '{{}}');
             INSERT INTO identities (identity_pool_id, identity_id, created_ms, modified_ms, version, doc)
                 VALUES ('plan_pool', 'plan:a', 1, 1, 1, '{{}}');
             INSERT INTO sync_datasets (identity_pool_id, identity_id, name, created_ms, modified_ms,
                                        last_modified_by, sync_count, num_records, data_bytes, deleted)
                 VALUES ('plan_pool', 'plan:a', 'big', 1, 1, 'd', 2000, 20000, 0, false),
                        ('plan_pool', 'plan:a', 'other', 1, 1, 'd', 2000, 20000, 0, false);
             INSERT INTO sync_records (identity_pool_id, identity_id, dataset, key, value, sync_count,
                                       modified_ms, last_modified_by, device_modified_ms)
                 SELECT 'plan_pool', 'plan:a', d.name, 'key-' || lpad(i::text, 6, '0'), 'v', i / 10, 1, 'd', NULL
                 FROM generate_series(1, 20000) i, (VALUES ('big'), ('other')) AS d (name);
             ANALYZE sync_datasets; ANALYZE sync_records;",
            schema.name
        ))
        .unwrap();
    for (sql, params) in conformance::sync_record_statements("plan_pool", "plan:a", "big") {
        let plan = explain(&mut client, &sql, &params);
        let context = format!("{sql}\n{}", plan.join("\n"));
        assert!(!context.contains("Seq Scan") && !context.contains("Sort"), "{context}");
        assert!(context.contains("Index Scan using sync_records_by_count on sync_records"), "{context}");
        let cond = plan.iter().find(|l| l.contains("Index Cond:")).unwrap_or_else(|| panic!("{context}"));
        let bound = if params.len() == 6 { "ROW(sync_count, key) > ROW(" } else { "sync_count > " };
        assert!(cond.contains(bound) && cond.contains("dataset = "), "{context}");
        assert!(!plan.iter().any(|l| l.trim_start().starts_with("Filter:")), "{context}");
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
