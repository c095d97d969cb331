//! Behaviour every [`Store`] implementation must show, as plain functions
//! that panic on a violation. Backend test suites call [`run_all`] on a
//! freshly opened store.
//!
//! Each check uses its own id prefix and compares counts as deltas, so the
//! checks do not depend on each other or on running against an empty store.

use crate::{AppClientRecord, ClientSecretRecord, IdentityPoolRecord, Store, StoreError, StoreResult, UserPoolRecord};

/// Runs every check in this module.
pub fn run_all(store: &dyn Store) {
    backend_and_ping(store);
    user_pool_insert_and_get(store);
    user_pool_duplicate_insert(store);
    user_pool_compare_and_set(store);
    user_pool_list_order_and_pagination(store);
    user_pool_counts(store);
    user_pool_delete_cascades(store);
    app_client_insert_and_get(store);
    app_client_insert_is_atomic(store);
    app_client_compare_and_set(store);
    app_client_delete(store);
    app_client_list_order_and_pagination(store);
    client_secret_ordering(store);
    client_secret_limits(store);
    client_secret_missing_parents(store);
    identity_pools(store);
    doc_round_trips_exactly(store);
    concurrent_cas_loses_no_update(store);
    concurrent_secret_inserts_respect_limit(store);
}

fn ok<T>(r: StoreResult<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    }
}

#[track_caller]
fn expect_err<T: std::fmt::Debug>(r: StoreResult<T>, want: fn(&StoreError) -> bool, what: &str) {
    match r {
        Err(e) if want(&e) => {}
        other => panic!("{what}: got {other:?}"),
    }
}

fn pool(id: &str) -> UserPoolRecord {
    UserPoolRecord {
        id: id.into(),
        name: format!("name of {id}"),
        created_ms: 1_700_000_000_000,
        modified_ms: 1_700_000_000_000,
        version: 1,
        doc: format!(r#"{{"pool":"{id}"}}"#),
    }
}

fn client(pool_id: &str, client_id: &str) -> AppClientRecord {
    AppClientRecord {
        pool_id: pool_id.into(),
        client_id: client_id.into(),
        name: format!("client {client_id}"),
        created_ms: 1_700_000_000_001,
        modified_ms: 1_700_000_000_001,
        version: 1,
        doc: format!(r#"{{"client":"{client_id}"}}"#),
    }
}

fn secret(pool_id: &str, client_id: &str, secret_id: &str, created_ms: i64) -> ClientSecretRecord {
    ClientSecretRecord {
        pool_id: pool_id.into(),
        client_id: client_id.into(),
        secret_id: secret_id.into(),
        sealed_secret: format!("sealed:{secret_id}"),
        created_ms,
    }
}

fn identity_pool(id: &str) -> IdentityPoolRecord {
    IdentityPoolRecord {
        id: id.into(),
        name: format!("identity {id}"),
        created_ms: 1_700_000_000_002,
        modified_ms: 1_700_000_000_002,
        version: 1,
        doc: "{}".into(),
    }
}

fn secret_ids(store: &dyn Store, pool_id: &str, client_id: &str) -> Vec<String> {
    ok(store.list_client_secrets(pool_id, client_id), "list secrets")
        .into_iter()
        .map(|s| s.secret_id)
        .collect()
}

pub fn backend_and_ping(store: &dyn Store) {
    assert!(
        ["sqlite", "postgres"].contains(&store.backend()),
        "unknown backend name {}",
        store.backend()
    );
    ok(store.ping(), "ping");
}

pub fn user_pool_insert_and_get(store: &dyn Store) {
    let rec = pool("ig_pool");
    ok(store.insert_user_pool(&rec), "insert");
    assert_eq!(ok(store.get_user_pool("ig_pool"), "get"), Some(rec));
    assert_eq!(ok(store.get_user_pool("ig_missing"), "get missing"), None);
}

pub fn user_pool_duplicate_insert(store: &dyn Store) {
    let rec = pool("dup_pool");
    ok(store.insert_user_pool(&rec), "insert");
    let mut other = rec.clone();
    other.name = "impostor".into();
    expect_err(
        store.insert_user_pool(&other),
        |e| matches!(e, StoreError::AlreadyExists),
        "duplicate insert",
    );
    assert_eq!(ok(store.get_user_pool("dup_pool"), "get"), Some(rec));
}

pub fn user_pool_compare_and_set(store: &dyn Store) {
    let rec = pool("cas_pool");
    ok(store.insert_user_pool(&rec), "insert");

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.name = "renamed".into();
    v2.doc = r#"{"changed":true}"#.into();
    v2.modified_ms += 10;
    // An update never rewrites the creation time.
    v2.created_ms = 1;
    ok(store.update_user_pool(&v2), "update to v2");
    let stored = ok(store.get_user_pool("cas_pool"), "get").unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored.version, 2);
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.doc, v2.doc);
    assert_eq!(stored.modified_ms, v2.modified_ms);
    assert_eq!(stored.created_ms, rec.created_ms);

    // A second writer that also read v1 loses.
    let mut stale = rec.clone();
    stale.version = 2;
    stale.name = "stale".into();
    expect_err(
        store.update_user_pool(&stale),
        |e| matches!(e, StoreError::VersionConflict),
        "stale update",
    );
    // Skipping versions is a conflict too.
    let mut skip = stored.clone();
    skip.version = 4;
    expect_err(
        store.update_user_pool(&skip),
        |e| matches!(e, StoreError::VersionConflict),
        "version skip",
    );
    // Pathological versions are conflicts, not errors.
    skip.version = i64::MIN;
    expect_err(
        store.update_user_pool(&skip),
        |e| matches!(e, StoreError::VersionConflict),
        "i64::MIN version",
    );
    let name = ok(store.get_user_pool("cas_pool"), "get").map(|p| p.name);
    assert_eq!(name.as_deref(), Some("renamed"));

    let mut missing = pool("cas_missing");
    missing.version = 2;
    expect_err(
        store.update_user_pool(&missing),
        |e| matches!(e, StoreError::NotFound),
        "update missing",
    );
}

pub fn user_pool_list_order_and_pagination(store: &dyn Store) {
    // Byte order: uppercase sorts before lowercase, unlike most locales.
    let ids = ["lp_b", "lp_B", "lp_a", "lp_c2", "lp_c10", "lp_Z"];
    for id in ids {
        ok(store.insert_user_pool(&pool(id)), "insert");
    }
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();

    let mut seen = Vec::new();
    let mut after: Option<String> = Some("lp_".into());
    loop {
        let page = ok(store.list_user_pools(after.as_deref(), 2), "list page");
        assert!(page.len() <= 2, "page larger than limit");
        let ours: Vec<String> = page
            .iter()
            .map(|p| p.id.clone())
            .take_while(|id| id.starts_with("lp_"))
            .collect();
        let done = ours.len() < page.len() || page.len() < 2;
        seen.extend(ours);
        if done {
            break;
        }
        after = page.last().map(|p| p.id.clone());
    }
    assert_eq!(seen, expected);

    // Strictly after: the cursor itself is excluded.
    let page = ok(store.list_user_pools(Some("lp_a"), 1), "list after lp_a");
    assert_eq!(page.first().map(|p| p.id.as_str()), Some("lp_b"));
    assert!(ok(store.list_user_pools(None, 0), "limit 0").is_empty());
    // Without a cursor the listing starts at the smallest id.
    let first = ok(store.list_user_pools(None, 1), "first page");
    let all = ok(store.list_user_pools(None, usize::MAX), "everything");
    assert_eq!(first.first(), all.first());
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "not sorted");
    assert!(all.len() >= ids.len());
}

pub fn user_pool_counts(store: &dyn Store) {
    let before = ok(store.count_user_pools(), "count");
    for id in ["cnt_1", "cnt_2", "cnt_3"] {
        ok(store.insert_user_pool(&pool(id)), "insert");
    }
    assert_eq!(ok(store.count_user_pools(), "count"), before + 3);
    assert!(ok(store.delete_user_pool("cnt_2"), "delete"));
    assert_eq!(ok(store.count_user_pools(), "count"), before + 2);
}

pub fn user_pool_delete_cascades(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("del_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("del_other")), "insert other pool");
    for c in ["c1", "c2"] {
        let s = secret("del_pool", c, &format!("{c}-s1"), 1);
        ok(
            store.insert_app_client(&client("del_pool", c), Some(&s)),
            "insert client",
        );
        ok(
            store.insert_client_secret(&secret("del_pool", c, &format!("{c}-s2"), 2), 5),
            "insert secret",
        );
    }
    ok(
        store.insert_app_client(&client("del_other", "c1"), Some(&secret("del_other", "c1", "keep", 1))),
        "insert other client",
    );

    assert!(ok(store.delete_user_pool("del_pool"), "delete"));
    assert_eq!(ok(store.get_user_pool("del_pool"), "get"), None);
    assert_eq!(ok(store.count_app_clients("del_pool"), "count clients"), 0);
    assert_eq!(ok(store.get_app_client("del_pool", "c1"), "get client"), None);
    assert!(secret_ids(store, "del_pool", "c1").is_empty());
    assert!(secret_ids(store, "del_pool", "c2").is_empty());
    assert!(!ok(store.delete_user_pool("del_pool"), "delete again"));

    // Nothing leaked into, or out of, the other pool.
    assert_eq!(ok(store.count_app_clients("del_other"), "other clients"), 1);
    assert_eq!(secret_ids(store, "del_other", "c1"), ["keep"]);

    // Recreating the same ids starts clean: no orphaned secrets come back.
    ok(store.insert_user_pool(&pool("del_pool")), "reinsert pool");
    ok(
        store.insert_app_client(&client("del_pool", "c1"), None),
        "reinsert client",
    );
    assert!(secret_ids(store, "del_pool", "c1").is_empty());
}

pub fn app_client_insert_and_get(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("aci_pool")), "insert pool");
    let rec = client("aci_pool", "cl");
    let s = secret("aci_pool", "cl", "first", 5);
    ok(store.insert_app_client(&rec, Some(&s)), "insert client");
    assert_eq!(ok(store.get_app_client("aci_pool", "cl"), "get"), Some(rec.clone()));
    assert_eq!(ok(store.list_client_secrets("aci_pool", "cl"), "secrets"), vec![s]);
    assert_eq!(ok(store.get_app_client("aci_pool", "nope"), "get"), None);
    assert_eq!(ok(store.get_app_client("aci_nopool", "cl"), "get"), None);

    // Without a secret.
    ok(
        store.insert_app_client(&client("aci_pool", "public"), None),
        "insert public client",
    );
    assert!(secret_ids(store, "aci_pool", "public").is_empty());

    // Same client id in another pool is a different client.
    ok(store.insert_user_pool(&pool("aci_pool2")), "insert pool 2");
    ok(
        store.insert_app_client(&client("aci_pool2", "cl"), None),
        "same client id, other pool",
    );

    expect_err(
        store.insert_app_client(&client("aci_nopool", "cl"), None),
        |e| matches!(e, StoreError::NotFound),
        "client in missing pool",
    );
}

pub fn app_client_insert_is_atomic(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("aca_pool")), "insert pool");
    let rec = client("aca_pool", "cl");
    ok(
        store.insert_app_client(&rec, Some(&secret("aca_pool", "cl", "s1", 1))),
        "insert",
    );
    let mut dup = rec.clone();
    dup.name = "duplicate".into();
    expect_err(
        store.insert_app_client(&dup, Some(&secret("aca_pool", "cl", "s2", 2))),
        |e| matches!(e, StoreError::AlreadyExists),
        "duplicate client",
    );
    // The failed insert left neither its record nor its secret behind.
    assert_eq!(ok(store.get_app_client("aca_pool", "cl"), "get"), Some(rec));
    assert_eq!(secret_ids(store, "aca_pool", "cl"), ["s1"]);

    // A failing client insert into a missing pool leaves no secret either.
    expect_err(
        store.insert_app_client(&client("aca_nopool", "cl"), Some(&secret("aca_nopool", "cl", "s", 1))),
        |e| matches!(e, StoreError::NotFound),
        "missing pool",
    );
    assert!(secret_ids(store, "aca_nopool", "cl").is_empty());
}

pub fn app_client_compare_and_set(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("acc_pool")), "insert pool");
    let rec = client("acc_pool", "cl");
    ok(store.insert_app_client(&rec, None), "insert");

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.name = "renamed".into();
    v2.doc = r#"{"v":2}"#.into();
    v2.modified_ms += 1;
    v2.created_ms = 0;
    ok(store.update_app_client(&v2), "update");
    let stored = ok(store.get_app_client("acc_pool", "cl"), "get");
    let expected = AppClientRecord {
        created_ms: rec.created_ms,
        ..v2.clone()
    };
    assert_eq!(stored, Some(expected));

    let mut stale = rec.clone();
    stale.version = 2;
    expect_err(
        store.update_app_client(&stale),
        |e| matches!(e, StoreError::VersionConflict),
        "stale update",
    );
    let mut missing = client("acc_pool", "missing");
    missing.version = 2;
    expect_err(
        store.update_app_client(&missing),
        |e| matches!(e, StoreError::NotFound),
        "missing client",
    );
    let mut wrong_pool = v2.clone();
    wrong_pool.pool_id = "acc_nopool".into();
    wrong_pool.version = 3;
    expect_err(
        store.update_app_client(&wrong_pool),
        |e| matches!(e, StoreError::NotFound),
        "client in another pool",
    );
}

pub fn app_client_delete(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("acd_pool")), "insert pool");
    for c in ["a", "b"] {
        ok(
            store.insert_app_client(
                &client("acd_pool", c),
                Some(&secret("acd_pool", c, &format!("{c}-s"), 1)),
            ),
            "insert",
        );
    }
    assert!(ok(store.delete_app_client("acd_pool", "a"), "delete"));
    assert_eq!(ok(store.get_app_client("acd_pool", "a"), "get"), None);
    assert!(secret_ids(store, "acd_pool", "a").is_empty());
    assert!(!ok(store.delete_app_client("acd_pool", "a"), "delete again"));
    assert!(!ok(
        store.delete_app_client("acd_nopool", "b"),
        "delete in missing pool"
    ));
    // The sibling and the pool are untouched.
    assert_eq!(secret_ids(store, "acd_pool", "b"), ["b-s"]);
    assert_eq!(ok(store.count_app_clients("acd_pool"), "count"), 1);
    assert!(ok(store.get_user_pool("acd_pool"), "get pool").is_some());
}

pub fn app_client_list_order_and_pagination(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("acl_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("acl_other")), "insert other");
    let ids = ["m", "B", "a", "z9", "z10"];
    for c in ids {
        ok(store.insert_app_client(&client("acl_pool", c), None), "insert");
    }
    ok(store.insert_app_client(&client("acl_other", "c"), None), "insert other");
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ok(store.list_app_clients("acl_pool", after.as_deref(), 2), "list");
        assert!(page.len() <= 2);
        assert!(page.iter().all(|c| c.pool_id == "acl_pool"), "foreign client");
        seen.extend(page.iter().map(|c| c.client_id.clone()));
        if page.len() < 2 {
            break;
        }
        after = page.last().map(|c| c.client_id.clone());
    }
    assert_eq!(seen, expected);
    assert!(ok(store.list_app_clients("acl_pool", None, 0), "limit 0").is_empty());
    assert!(ok(store.list_app_clients("acl_nopool", None, 10), "missing pool").is_empty());
    assert_eq!(ok(store.count_app_clients("acl_pool"), "count"), 5);
    assert_eq!(ok(store.count_app_clients("acl_other"), "count"), 1);
    assert_eq!(ok(store.count_app_clients("acl_nopool"), "count"), 0);
}

pub fn client_secret_ordering(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("cso_pool")), "insert pool");
    ok(
        store.insert_app_client(
            &client("cso_pool", "cl"),
            Some(&secret("cso_pool", "cl", "s-late", 300)),
        ),
        "insert client",
    );
    for (id, at) in [("s-b", 200), ("s-early", 100), ("s-a", 200)] {
        ok(
            store.insert_client_secret(&secret("cso_pool", "cl", id, at), 10),
            "insert secret",
        );
    }
    // By created_ms, ties broken by secret_id.
    assert_eq!(secret_ids(store, "cso_pool", "cl"), ["s-early", "s-a", "s-b", "s-late"]);
    let listed = ok(store.list_client_secrets("cso_pool", "cl"), "list");
    assert_eq!(listed[0], secret("cso_pool", "cl", "s-early", 100));

    expect_err(
        store.insert_client_secret(&secret("cso_pool", "cl", "s-a", 999), 10),
        |e| matches!(e, StoreError::AlreadyExists),
        "duplicate secret id",
    );
}

pub fn client_secret_limits(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("csl_pool")), "insert pool");
    ok(
        store.insert_app_client(&client("csl_pool", "cl"), Some(&secret("csl_pool", "cl", "s1", 1))),
        "insert client",
    );
    ok(
        store.insert_client_secret(&secret("csl_pool", "cl", "s2", 2), 2),
        "second secret",
    );
    expect_err(
        store.insert_client_secret(&secret("csl_pool", "cl", "s3", 3), 2),
        |e| matches!(e, StoreError::LimitExceeded),
        "third secret over a limit of 2",
    );
    expect_err(
        store.insert_client_secret(&secret("csl_pool", "cl", "s3", 3), 0),
        |e| matches!(e, StoreError::LimitExceeded),
        "limit 0",
    );
    assert_eq!(secret_ids(store, "csl_pool", "cl"), ["s1", "s2"]);

    // Deleting down to the floor works, below it does not.
    assert!(ok(
        store.delete_client_secret("csl_pool", "cl", "s1", 1),
        "delete s1 keeping 1"
    ));
    expect_err(
        store.delete_client_secret("csl_pool", "cl", "s2", 1),
        |e| matches!(e, StoreError::LimitExceeded),
        "delete the last secret keeping 1",
    );
    assert_eq!(secret_ids(store, "csl_pool", "cl"), ["s2"]);
    // A missing secret is reported as such, even when the floor is hit.
    assert!(!ok(
        store.delete_client_secret("csl_pool", "cl", "s1", 1),
        "delete missing secret"
    ));
    assert!(ok(
        store.delete_client_secret("csl_pool", "cl", "s2", 0),
        "delete last keeping 0"
    ));
    assert!(secret_ids(store, "csl_pool", "cl").is_empty());
    // Freed slots can be reused.
    ok(
        store.insert_client_secret(&secret("csl_pool", "cl", "s3", 3), 1),
        "insert after deletes",
    );
}

pub fn client_secret_missing_parents(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("csm_pool")), "insert pool");
    expect_err(
        store.insert_client_secret(&secret("csm_pool", "nope", "s", 1), 5),
        |e| matches!(e, StoreError::NotFound),
        "secret for missing client",
    );
    expect_err(
        store.insert_client_secret(&secret("csm_nopool", "nope", "s", 1), 5),
        |e| matches!(e, StoreError::NotFound),
        "secret for missing pool",
    );
    assert!(!ok(
        store.delete_client_secret("csm_pool", "nope", "s", 0),
        "delete from missing client"
    ));
    assert!(secret_ids(store, "csm_pool", "nope").is_empty());
}

pub fn identity_pools(store: &dyn Store) {
    let before = ok(store.count_identity_pools(), "count");
    let rec = identity_pool("ip_1");
    ok(store.insert_identity_pool(&rec), "insert");
    assert_eq!(ok(store.get_identity_pool("ip_1"), "get"), Some(rec.clone()));
    assert_eq!(ok(store.get_identity_pool("ip_missing"), "get"), None);
    expect_err(
        store.insert_identity_pool(&rec),
        |e| matches!(e, StoreError::AlreadyExists),
        "duplicate",
    );
    // Identity pools and user pools are separate namespaces.
    assert_eq!(ok(store.get_user_pool("ip_1"), "user pool"), None);

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.doc = r#"{"v":2}"#.into();
    ok(store.update_identity_pool(&v2), "update");
    expect_err(
        store.update_identity_pool(&v2),
        |e| matches!(e, StoreError::VersionConflict),
        "replayed update",
    );
    let mut missing = identity_pool("ip_missing");
    missing.version = 2;
    expect_err(
        store.update_identity_pool(&missing),
        |e| matches!(e, StoreError::NotFound),
        "update missing",
    );
    assert_eq!(ok(store.get_identity_pool("ip_1"), "get"), Some(v2));

    for id in ["ip_3", "ip_2"] {
        ok(store.insert_identity_pool(&identity_pool(id)), "insert");
    }
    let page = ok(store.list_identity_pools(Some("ip_"), 2), "list");
    let ids: Vec<&str> = page.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["ip_1", "ip_2"]);
    let page = ok(store.list_identity_pools(Some("ip_2"), 2), "list");
    assert_eq!(page.first().map(|p| p.id.as_str()), Some("ip_3"));
    assert_eq!(ok(store.count_identity_pools(), "count"), before + 3);

    assert!(ok(store.delete_identity_pool("ip_2"), "delete"));
    assert!(!ok(store.delete_identity_pool("ip_2"), "delete again"));
    assert_eq!(ok(store.count_identity_pools(), "count"), before + 2);
}

pub fn doc_round_trips_exactly(store: &dyn Store) {
    let mut rec = pool("doc_pool");
    // Non-ASCII, quotes, backslashes, NUL-free control characters and size.
    let mut doc = String::from("{\"k\":\"héllo 🌍 \\\" \\\\ \\n\t\",\"big\":\"");
    doc.push_str(&"x".repeat(200_000));
    doc.push_str("\"}");
    rec.doc = doc;
    rec.name = "Ünïcødé 名前".into();
    rec.created_ms = -5;
    rec.modified_ms = i64::MAX;
    ok(store.insert_user_pool(&rec), "insert");
    assert_eq!(ok(store.get_user_pool("doc_pool"), "get"), Some(rec));
}

/// Several threads increment one record through CAS: every successful update
/// must be accounted for in the final version (no lost updates).
pub fn concurrent_cas_loses_no_update(store: &dyn Store) {
    const THREADS: usize = 6;
    const EACH: usize = 10;
    ok(store.insert_user_pool(&pool("race_pool")), "insert");
    let conflicts = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let conflicts = &conflicts;
            s.spawn(move || {
                let mut done = 0;
                while done < EACH {
                    let mut rec =
                        ok(store.get_user_pool("race_pool"), "get").unwrap_or_else(|| panic!("race_pool vanished"));
                    rec.version += 1;
                    rec.doc = format!(r#"{{"writer":{t},"n":{done}}}"#);
                    match store.update_user_pool(&rec) {
                        Ok(()) => done += 1,
                        Err(StoreError::VersionConflict) => {
                            conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => panic!("update: {e:?}"),
                    }
                }
            });
        }
    });
    let fin = ok(store.get_user_pool("race_pool"), "get").map(|p| p.version);
    let expected = i64::try_from(THREADS * EACH).unwrap_or(i64::MAX) + 1;
    assert_eq!(fin, Some(expected));
}

/// Many threads add secrets at once: the per-client limit must still hold.
pub fn concurrent_secret_inserts_respect_limit(store: &dyn Store) {
    const THREADS: usize = 8;
    const MAX: u64 = 3;
    ok(store.insert_user_pool(&pool("race_sec")), "insert pool");
    ok(
        store.insert_app_client(&client("race_sec", "cl"), None),
        "insert client",
    );
    let barrier = std::sync::Barrier::new(THREADS);
    let results: Vec<StoreResult<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store.insert_client_secret(&secret("race_sec", "cl", &format!("s{t}"), 1), MAX)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("inserting thread panicked"),
            })
            .collect()
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    for r in &results {
        assert!(
            matches!(r, Ok(()) | Err(StoreError::LimitExceeded)),
            "unexpected result {r:?}"
        );
    }
    assert_eq!(wins as u64, MAX);
    assert_eq!(secret_ids(store, "race_sec", "cl").len() as u64, MAX);
}

/// Two independently opened stores on the same database (like two server
/// processes) race compare-and-set updates on one record: in every round
/// both read the same version and try to write the next one, and exactly
/// one of them must win.
pub fn cas_race_between_stores(a: &dyn Store, b: &dyn Store) {
    const ROUNDS: i64 = 25;
    let id = "xproc_pool";
    ok(a.insert_user_pool(&pool(id)), "insert");
    let barrier = std::sync::Barrier::new(2);
    for round in 1..=ROUNDS {
        let attempt = |store: &dyn Store, who: &str| {
            let mut rec = ok(store.get_user_pool(id), "get").unwrap_or_else(|| panic!("{id} vanished"));
            assert_eq!(rec.version, round, "both writers must see the same version");
            barrier.wait();
            rec.version += 1;
            rec.name = format!("{who} won round {round}");
            let result = store.update_user_pool(&rec);
            // Nobody reads the next round's version before both finished.
            barrier.wait();
            result
        };
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| attempt(a, "a"));
            let hb = s.spawn(|| attempt(b, "b"));
            match (ha.join(), hb.join()) {
                (Ok(ra), Ok(rb)) => (ra, rb),
                _ => panic!("racing thread panicked"),
            }
        });
        match (&ra, &rb) {
            (Ok(()), Err(StoreError::VersionConflict)) | (Err(StoreError::VersionConflict), Ok(())) => {}
            _ => panic!("round {round}: expected exactly one winner, got {ra:?} / {rb:?}"),
        }
        // Both stores agree on the winner's write.
        let seen_a = ok(a.get_user_pool(id), "get via a");
        let seen_b = ok(b.get_user_pool(id), "get via b");
        assert_eq!(seen_a, seen_b);
        assert_eq!(seen_a.map(|p| p.version), Some(round + 1));
    }
}
