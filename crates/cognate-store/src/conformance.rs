//! Behaviour every [`Store`] implementation must show, as plain functions
//! that panic on a violation, registered in [`ALL`] (one store) and
//! [`BETWEEN_STORES`] (two stores on one database). Backend test suites call
//! [`run_all`] on a freshly opened store and run each of [`BETWEEN_STORES`]
//! on two freshly opened stores.
//!
//! Each check uses its own id prefix and compares counts as deltas, so the
//! checks do not depend on each other or on running against an empty store.

use crate::{
    AppClientRecord, ClientSecretRecord, CodeCheck, CodeRecord, DatasetRecord, DomainRecord, Entity, GroupRecord,
    IdentityLogin, IdentityPoolRecord, IdentityRecord, ImportJobRecord, ManagedLoginBrandingRecord, OutboxMessage,
    SigningKeyRecord, Store, StoreError, StoreResult, SyncChange, SyncLimits, SyncPatch, SyncRecord, SyncRefusal,
    SyncUsage, UserIndex, UserPoolRecord, UserRecord, UserStatus, UsernameKey,
};

/// Lists every check once; a test below fails if a `pub fn` check of this
/// module is missing from it.
macro_rules! registry {
    (
        checks: [$($check:ident),* $(,)?],
        between_stores: [$($pair:ident),* $(,)?] $(,)?
    ) => {
        /// Every check on one store, by name, in the order [`run_all`] runs them.
        pub const ALL: &[(&str, fn(&dyn Store))] = &[$((stringify!($check), $check)),*];
        /// Every check on two independently opened stores on one database
        /// (like two server processes), by name.
        pub const BETWEEN_STORES: &[(&str, fn(&dyn Store, &dyn Store))] = &[$((stringify!($pair), $pair)),*];
    };
}

registry! {
    checks: [
        backend_and_ping,
        user_pool_insert_and_get,
        user_pool_duplicate_insert,
        user_pool_compare_and_set,
        user_pool_list_order_and_pagination,
        user_pool_counts,
        user_pool_delete_cascades,
        app_client_insert_and_get,
        app_client_insert_is_atomic,
        app_client_compare_and_set,
        app_client_delete,
        app_client_list_order_and_pagination,
        client_secret_ordering,
        client_secret_limits,
        client_secret_missing_parents,
        identity_pools,
        doc_round_trips_exactly,
        concurrent_cas_loses_no_update,
        concurrent_secret_inserts_respect_limit,
        user_insert_and_get,
        user_duplicates,
        user_compare_and_set,
        user_update_alias_conflict,
        user_delete,
        user_list_order_and_pagination,
        user_search_equality_and_paging,
        user_search_prefix_is_literal,
        user_counts_and_pool_cascade,
        codes_lifecycle,
        code_check_with_user_update,
        outbox_append_and_list,
        outbox_retention,
        concurrent_user_inserts,
        concurrent_user_races,
        concurrent_code_checks,
        concurrent_outbox_paging_skips_nothing,
        signing_keys_ensure_and_list,
        signing_keys_need_a_pool,
        concurrent_signing_key_ensures,
        token_family_revocation,
        consume_once_lifecycle,
        concurrent_consume_once,
        auth_rows_go_with_their_pool,
        group_insert_and_get,
        group_compare_and_set,
        group_limit_per_pool,
        group_list_order_and_pagination,
        group_membership_add_and_remove,
        group_membership_listings,
        group_membership_limit_per_user,
        group_delete_cascades,
        group_user_delete_cascades,
        group_pool_delete_cascades,
        concurrent_group_limits,
        import_job_insert_and_get,
        import_job_compare_and_set,
        import_job_limit_per_pool,
        import_job_list_order_and_pagination,
        import_csv_round_trips,
        import_jobs_go_with_their_pool,
        import_user_batches_keep_what_they_can,
        import_user_batch_is_atomic_with_its_job,
        stalled_import_jobs_by_lease,
        concurrent_import_job_limits,
        rate_window_counting,
        rate_window_purge,
        concurrent_rate_window_hits,
        attempt_counting_and_lockout,
        concurrent_attempts_evaluate_at_most_the_free_ones,
        identity_insert_and_get,
        identity_insert_with_a_taken_login_writes_nothing,
        identity_link_and_unlink,
        identity_merge,
        identity_compare_and_set,
        identity_delete_and_pool_cascade,
        identity_list_order_and_pagination,
        identity_counts,
        concurrent_identity_races,
        sync_dataset_created_by_first_update,
        sync_counts_rise_and_stale_patches_write_nothing,
        sync_limits_at_the_boundary,
        sync_delete_leaves_a_tombstone,
        sync_listing_order_and_paging,
        sync_usage_is_exact,
        concurrent_sync_updates,
        sync_changes_queue_for_delivery,
        outbox_messages_of_both_pool_kinds,
        sync_dataset_records_match_separate_reads,
        domains_are_unique_across_pools,
        managed_login_brandings_one_per_client,
    ],
    between_stores: [
        cas_race_between_stores,
        code_race_between_stores,
        auth_races_between_stores,
        group_races_between_stores,
        import_job_races_between_stores,
        rate_window_shared_between_stores,
        attempts_shared_between_stores,
        identity_races_between_stores,
        sync_races_between_stores,
        sync_change_claims_between_stores,
        sync_dataset_records_are_one_snapshot_between_stores,
        domain_races_between_stores,
        managed_login_branding_races_between_stores,
    ],
}

/// Runs every check of [`ALL`] on `store`, in order.
pub fn run_all(store: &dyn Store) {
    for (name, check) in ALL {
        // Shown with a failing check's panic, which names no check itself.
        eprintln!("conformance check {name}");
        check(store);
    }
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
    ok(store.list_client_secrets(pool_id, client_id), "list secrets").into_iter().map(|s| s.secret_id).collect()
}

pub fn backend_and_ping(store: &dyn Store) {
    assert!(["sqlite", "postgres"].contains(&store.backend()), "unknown backend name {}", store.backend());
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
        |e| matches!(e, StoreError::AlreadyExists(Entity::UserPool)),
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
        |e| matches!(e, StoreError::VersionConflict(Entity::UserPool)),
        "stale update",
    );
    // Skipping versions is a conflict too.
    let mut skip = stored.clone();
    skip.version = 4;
    expect_err(
        store.update_user_pool(&skip),
        |e| matches!(e, StoreError::VersionConflict(Entity::UserPool)),
        "version skip",
    );
    // Pathological versions are conflicts, not errors.
    skip.version = i64::MIN;
    expect_err(
        store.update_user_pool(&skip),
        |e| matches!(e, StoreError::VersionConflict(Entity::UserPool)),
        "i64::MIN version",
    );
    let name = ok(store.get_user_pool("cas_pool"), "get").map(|p| p.name);
    assert_eq!(name.as_deref(), Some("renamed"));

    let mut missing = pool("cas_missing");
    missing.version = 2;
    expect_err(store.update_user_pool(&missing), |e| matches!(e, StoreError::NotFound(_)), "update missing");
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
        let ours: Vec<String> = page.iter().map(|p| p.id.to_string()).take_while(|id| id.starts_with("lp_")).collect();
        let done = ours.len() < page.len() || page.len() < 2;
        seen.extend(ours);
        if done {
            break;
        }
        after = page.last().map(|p| p.id.to_string());
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
        ok(store.insert_app_client(&client("del_pool", c), Some(&s)), "insert client");
        ok(store.insert_client_secret(&secret("del_pool", c, &format!("{c}-s2"), 2), 5), "insert secret");
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
    ok(store.insert_app_client(&client("del_pool", "c1"), None), "reinsert client");
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
    assert_eq!(ok(store.get_app_client_by_id("cl"), "get by id"), Some(rec.clone()));
    assert_eq!(ok(store.get_app_client_by_id("nope"), "get by id"), None);

    // Without a secret.
    ok(store.insert_app_client(&client("aci_pool", "public"), None), "insert public client");
    assert!(secret_ids(store, "aci_pool", "public").is_empty());

    // Same client id in another pool is a different client.
    ok(store.insert_user_pool(&pool("aci_pool2")), "insert pool 2");
    ok(store.insert_app_client(&client("aci_pool2", "cl"), None), "same client id, other pool");

    expect_err(
        store.insert_app_client(&client("aci_nopool", "cl"), None),
        |e| matches!(e, StoreError::NotFound(_)),
        "client in missing pool",
    );
}

pub fn app_client_insert_is_atomic(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("aca_pool")), "insert pool");
    let rec = client("aca_pool", "cl");
    ok(store.insert_app_client(&rec, Some(&secret("aca_pool", "cl", "s1", 1))), "insert");
    let mut dup = rec.clone();
    dup.name = "duplicate".into();
    expect_err(
        store.insert_app_client(&dup, Some(&secret("aca_pool", "cl", "s2", 2))),
        |e| matches!(e, StoreError::AlreadyExists(Entity::AppClient)),
        "duplicate client",
    );
    // The failed insert left neither its record nor its secret behind.
    assert_eq!(ok(store.get_app_client("aca_pool", "cl"), "get"), Some(rec));
    assert_eq!(secret_ids(store, "aca_pool", "cl"), ["s1"]);

    // A failing client insert into a missing pool leaves no secret either.
    expect_err(
        store.insert_app_client(&client("aca_nopool", "cl"), Some(&secret("aca_nopool", "cl", "s", 1))),
        |e| matches!(e, StoreError::NotFound(_)),
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
    let expected = AppClientRecord { created_ms: rec.created_ms, ..v2.clone() };
    assert_eq!(stored, Some(expected));

    let mut stale = rec.clone();
    stale.version = 2;
    expect_err(
        store.update_app_client(&stale),
        |e| matches!(e, StoreError::VersionConflict(Entity::AppClient)),
        "stale update",
    );
    let mut missing = client("acc_pool", "missing");
    missing.version = 2;
    expect_err(store.update_app_client(&missing), |e| matches!(e, StoreError::NotFound(_)), "missing client");
    let mut wrong_pool = v2.clone();
    wrong_pool.pool_id = "acc_nopool".into();
    wrong_pool.version = 3;
    expect_err(
        store.update_app_client(&wrong_pool),
        |e| matches!(e, StoreError::NotFound(_)),
        "client in another pool",
    );
}

pub fn app_client_delete(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("acd_pool")), "insert pool");
    for c in ["a", "b"] {
        ok(
            store.insert_app_client(&client("acd_pool", c), Some(&secret("acd_pool", c, &format!("{c}-s"), 1))),
            "insert",
        );
    }
    assert!(ok(store.delete_app_client("acd_pool", "a"), "delete"));
    assert_eq!(ok(store.get_app_client("acd_pool", "a"), "get"), None);
    assert!(secret_ids(store, "acd_pool", "a").is_empty());
    assert!(!ok(store.delete_app_client("acd_pool", "a"), "delete again"));
    assert!(!ok(store.delete_app_client("acd_nopool", "b"), "delete in missing pool"));
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
        after = page.last().map(|c| c.client_id.to_string());
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
        store.insert_app_client(&client("cso_pool", "cl"), Some(&secret("cso_pool", "cl", "s-late", 300))),
        "insert client",
    );
    for (id, at) in [("s-b", 200), ("s-early", 100), ("s-a", 200)] {
        ok(store.insert_client_secret(&secret("cso_pool", "cl", id, at), 10), "insert secret");
    }
    // By created_ms, ties broken by secret_id.
    assert_eq!(secret_ids(store, "cso_pool", "cl"), ["s-early", "s-a", "s-b", "s-late"]);
    let listed = ok(store.list_client_secrets("cso_pool", "cl"), "list");
    assert_eq!(listed[0], secret("cso_pool", "cl", "s-early", 100));

    expect_err(
        store.insert_client_secret(&secret("cso_pool", "cl", "s-a", 999), 10),
        |e| matches!(e, StoreError::AlreadyExists(Entity::ClientSecret)),
        "duplicate secret id",
    );
}

pub fn client_secret_limits(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("csl_pool")), "insert pool");
    ok(store.insert_app_client(&client("csl_pool", "cl"), Some(&secret("csl_pool", "cl", "s1", 1))), "insert client");
    ok(store.insert_client_secret(&secret("csl_pool", "cl", "s2", 2), 2), "second secret");
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
    assert!(ok(store.delete_client_secret("csl_pool", "cl", "s1", 1), "delete s1 keeping 1"));
    expect_err(
        store.delete_client_secret("csl_pool", "cl", "s2", 1),
        |e| matches!(e, StoreError::LimitExceeded),
        "delete the last secret keeping 1",
    );
    assert_eq!(secret_ids(store, "csl_pool", "cl"), ["s2"]);
    // A missing secret is reported as such, even when the floor is hit.
    assert!(!ok(store.delete_client_secret("csl_pool", "cl", "s1", 1), "delete missing secret"));
    assert!(ok(store.delete_client_secret("csl_pool", "cl", "s2", 0), "delete last keeping 0"));
    assert!(secret_ids(store, "csl_pool", "cl").is_empty());
    // Freed slots can be reused.
    ok(store.insert_client_secret(&secret("csl_pool", "cl", "s3", 3), 1), "insert after deletes");
}

pub fn client_secret_missing_parents(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("csm_pool")), "insert pool");
    expect_err(
        store.insert_client_secret(&secret("csm_pool", "nope", "s", 1), 5),
        |e| matches!(e, StoreError::NotFound(_)),
        "secret for missing client",
    );
    expect_err(
        store.insert_client_secret(&secret("csm_nopool", "nope", "s", 1), 5),
        |e| matches!(e, StoreError::NotFound(_)),
        "secret for missing pool",
    );
    assert!(!ok(store.delete_client_secret("csm_pool", "nope", "s", 0), "delete from missing client"));
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
        |e| matches!(e, StoreError::AlreadyExists(Entity::IdentityPool)),
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
        |e| matches!(e, StoreError::VersionConflict(Entity::IdentityPool)),
        "replayed update",
    );
    let mut missing = identity_pool("ip_missing");
    missing.version = 2;
    expect_err(store.update_identity_pool(&missing), |e| matches!(e, StoreError::NotFound(_)), "update missing");
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
                        Err(StoreError::VersionConflict(Entity::UserPool)) => {
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
    ok(store.insert_app_client(&client("race_sec", "cl"), None), "insert client");
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
        assert!(matches!(r, Ok(()) | Err(StoreError::LimitExceeded)), "unexpected result {r:?}");
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
            (Ok(()), Err(StoreError::VersionConflict(Entity::UserPool)))
            | (Err(StoreError::VersionConflict(Entity::UserPool)), Ok(())) => {}
            _ => panic!("round {round}: expected exactly one winner, got {ra:?} / {rb:?}"),
        }
        // Both stores agree on the winner's write.
        let seen_a = ok(a.get_user_pool(id), "get via a");
        let seen_b = ok(b.get_user_pool(id), "get via b");
        assert_eq!(seen_a, seen_b);
        assert_eq!(seen_a.map(|p| p.version), Some(round + 1));
    }
}

// ---------------------------------------------------------------------------
// Users, codes and the outbox

fn user(pool_id: &str, username_key: &str) -> UserRecord {
    UserRecord {
        pool_id: pool_id.into(),
        username: username_key.to_uppercase(),
        username_key: username_key.into(),
        sub: format!("sub-{pool_id}-{username_key}").into(),
        status: UserStatus::Confirmed,
        enabled: true,
        created_ms: 1_700_000_000_100,
        modified_ms: 1_700_000_000_100,
        version: 1,
        attributes: format!(r#"[{{"Name":"email","Value":"{username_key}@example.com"}}]"#),
        password: Some(format!("sealed-verifier-{username_key}")),
        doc: "{}".into(),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

/// Searchable by `username` and `email`; `email` is also an alias.
fn email_index(username_key: &str, email: &str) -> UserIndex {
    UserIndex { search: pairs(&[("username", username_key), ("email", email)]), aliases: pairs(&[("email", email)]) }
}

fn keys(users: &[UserRecord]) -> Vec<String> {
    users.iter().map(|u| u.username_key.to_string()).collect()
}

fn search_keys(store: &dyn Store, pool_id: &str, attribute: &str, value: &str, prefix: bool) -> Vec<String> {
    keys(&ok(store.search_users(pool_id, attribute, value, prefix, None, usize::MAX), "search"))
}

fn alias_owner(store: &dyn Store, pool_id: &str, kind: &str, key: &str) -> Option<String> {
    ok(store.get_user_by_alias(pool_id, kind, key), "get by alias").map(|u| u.username_key.into_string())
}

fn code(pool_id: &str, username_key: &str, purpose: &str, hash: &str) -> CodeRecord {
    CodeRecord {
        pool_id: pool_id.into(),
        username_key: username_key.into(),
        purpose: purpose.into(),
        code_hash: hash.into(),
        expires_ms: 2_000,
        attempts_left: 3,
        created_ms: 1_000,
    }
}

fn message(pool_id: &str, username: &str, body: &str) -> OutboxMessage {
    OutboxMessage {
        id: 0,
        pool_id: pool_id.into(),
        username: username.into(),
        channel: "EMAIL".into(),
        destination: format!("{username}@example.com"),
        code: Some("123456".into()),
        subject: Some("Your code".into()),
        body: body.into(),
        created_ms: 1_700_000_000_200,
    }
}

pub fn user_insert_and_get(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ui_pool")), "insert pool");
    let rec = user("ui_pool", "alice");
    ok(store.insert_user(&rec, &email_index("alice", "alice@example.com")), "insert user");
    assert_eq!(ok(store.get_user("ui_pool", &UsernameKey::from("alice")), "get"), Some(rec.clone()));
    assert_eq!(ok(store.get_user_by_sub("ui_pool", &rec.sub), "by sub"), Some(rec.clone()));
    assert_eq!(ok(store.get_user_by_alias("ui_pool", "email", "alice@example.com"), "by alias"), Some(rec.clone()));
    assert_eq!(ok(store.get_user("ui_pool", &UsernameKey::from("bob")), "missing"), None);
    assert_eq!(ok(store.get_user("ui_pool", &UsernameKey::from("ALICE")), "other key"), None);
    assert_eq!(ok(store.get_user_by_sub("ui_pool", "nope"), "missing sub"), None);
    assert_eq!(ok(store.get_user_by_alias("ui_pool", "phone_number", "alice@example.com"), "other kind"), None);
    assert_eq!(ok(store.get_user("ui_nopool", &UsernameKey::from("alice")), "missing pool"), None);

    // No password, disabled, odd text: all round-trip.
    let mut bare = user("ui_pool", "bare");
    bare.password = None;
    bare.enabled = false;
    bare.status = UserStatus::ForceChangePassword;
    bare.username = "Bäre 名前 🌍".into();
    bare.attributes = "[]".into();
    bare.doc = "{\"k\":\"\\\"quoted\\\"\"}".into();
    bare.created_ms = -1;
    bare.modified_ms = i64::MAX;
    ok(store.insert_user(&bare, &UserIndex::default()), "insert bare user");
    assert_eq!(ok(store.get_user("ui_pool", &UsernameKey::from("bare")), "get bare"), Some(bare));

    expect_err(
        store.insert_user(&user("ui_nopool", "alice"), &UserIndex::default()),
        |e| matches!(e, StoreError::NotFound(_)),
        "user in missing pool",
    );
}

pub fn user_duplicates(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ud_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ud_other")), "insert other pool");
    let alice = user("ud_pool", "alice");
    ok(store.insert_user(&alice, &email_index("alice", "a@x.com")), "insert");

    // Same username_key.
    let mut dup = user("ud_pool", "alice");
    dup.sub = "another-sub".into();
    expect_err(
        store.insert_user(&dup, &email_index("alice", "other@x.com")),
        |e| matches!(e, StoreError::AlreadyExists(Entity::User)),
        "duplicate username",
    );
    // Same sub, other username.
    let mut same_sub = user("ud_pool", "bob");
    same_sub.sub = alice.sub.clone();
    expect_err(
        store.insert_user(&same_sub, &email_index("bob", "b@x.com")),
        |e| matches!(e, StoreError::AlreadyExists(Entity::User)),
        "duplicate sub",
    );
    // Alias held by another user: nothing of the new user is written.
    expect_err(
        store.insert_user(&user("ud_pool", "carol"), &email_index("carol", "a@x.com")),
        |e| matches!(e, StoreError::AliasTaken(kind) if kind == "email"),
        "alias taken",
    );
    assert_eq!(ok(store.get_user("ud_pool", &UsernameKey::from("carol")), "carol"), None);
    assert!(search_keys(store, "ud_pool", "username", "carol", false).is_empty());
    assert!(ok(store.get_user_by_sub("ud_pool", &user("ud_pool", "carol").sub), "by sub").is_none());
    assert_eq!(ok(store.get_user("ud_pool", &UsernameKey::from("alice")), "alice intact"), Some(alice.clone()));
    assert!(ok(store.get_user_by_sub("ud_pool", "another-sub"), "dup sub").is_none());
    assert_eq!(ok(store.count_users("ud_pool"), "count"), 1);

    // The same alias key under another kind, or in another pool, is free;
    // duplicated pairs within one index are stored once.
    let carol_index = UserIndex {
        search: pairs(&[("email", "a@x.com"), ("email", "a@x.com")]),
        aliases: pairs(&[("phone_number", "a@x.com"), ("phone_number", "a@x.com")]),
    };
    ok(store.insert_user(&user("ud_pool", "carol"), &carol_index), "other kind");
    assert_eq!(search_keys(store, "ud_pool", "email", "a@x.com", false), ["alice", "carol"]);
    ok(
        store.insert_user(&alice_in("ud_other"), &email_index("alice", "a@x.com")),
        "same user and alias in another pool",
    );
    assert_eq!(alias_owner(store, "ud_other", "email", "a@x.com").as_deref(), Some("alice"));
    assert_eq!(ok(store.count_users("ud_pool"), "count"), 2);
    assert_eq!(ok(store.count_users("ud_other"), "count"), 1);
}

fn alice_in(pool_id: &str) -> UserRecord {
    let mut u = user(pool_id, "alice");
    // The same sub in two pools is allowed too.
    u.sub = user("ud_pool", "alice").sub;
    u
}

pub fn user_compare_and_set(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("uc_pool")), "insert pool");
    let rec = user("uc_pool", "u1");
    ok(store.insert_user(&rec, &email_index("u1", "old@x.com")), "insert");

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.username = "U-One".into();
    v2.status = UserStatus::ResetRequired;
    v2.enabled = false;
    v2.modified_ms += 5;
    v2.attributes = r#"[{"Name":"email","Value":"new@x.com"}]"#.into();
    v2.password = None;
    v2.doc = r#"{"v":2}"#.into();
    // Never rewritten by an update:
    v2.created_ms = 0;
    v2.sub = "changed-sub".into();
    ok(store.update_user(&v2, &email_index("u1", "new@x.com")), "update");
    let expected = UserRecord { created_ms: rec.created_ms, sub: rec.sub.clone(), ..v2.clone() };
    assert_eq!(ok(store.get_user("uc_pool", &UsernameKey::from("u1")), "get"), Some(expected.clone()));
    // The index was replaced: old values find nothing, new ones the user.
    assert!(search_keys(store, "uc_pool", "email", "old@x.com", false).is_empty());
    assert_eq!(search_keys(store, "uc_pool", "email", "new@x.com", false), ["u1"]);
    assert_eq!(search_keys(store, "uc_pool", "username", "u1", false), ["u1"]);
    assert_eq!(alias_owner(store, "uc_pool", "email", "old@x.com"), None);
    assert_eq!(alias_owner(store, "uc_pool", "email", "new@x.com").as_deref(), Some("u1"));
    // The freed alias can be taken by someone else.
    ok(store.insert_user(&user("uc_pool", "u2"), &email_index("u2", "old@x.com")), "take freed alias");

    let mut stale = rec.clone();
    stale.version = 2;
    expect_err(
        store.update_user(&stale, &UserIndex::default()),
        |e| matches!(e, StoreError::VersionConflict(Entity::User)),
        "stale update",
    );
    for bad in [4, 0, i64::MIN] {
        let mut skip = expected.clone();
        skip.version = bad;
        expect_err(
            store.update_user(&skip, &UserIndex::default()),
            |e| matches!(e, StoreError::VersionConflict(Entity::User)),
            "bad version",
        );
    }
    // A failed update leaves the index alone.
    assert_eq!(search_keys(store, "uc_pool", "email", "new@x.com", false), ["u1"]);
    let mut missing = user("uc_pool", "nobody");
    missing.version = 2;
    expect_err(
        store.update_user(&missing, &UserIndex::default()),
        |e| matches!(e, StoreError::NotFound(_)),
        "missing user",
    );
    let mut other_pool = expected.clone();
    other_pool.pool_id = "uc_nopool".into();
    other_pool.version = 3;
    expect_err(
        store.update_user(&other_pool, &UserIndex::default()),
        |e| matches!(e, StoreError::NotFound(_)),
        "missing pool",
    );

    // Emptying the index removes every row; updates do not change the count.
    let mut v3 = expected.clone();
    v3.version = 3;
    ok(store.update_user(&v3, &UserIndex::default()), "clear index");
    assert!(search_keys(store, "uc_pool", "username", "u1", false).is_empty());
    assert_eq!(alias_owner(store, "uc_pool", "email", "new@x.com"), None);
    assert_eq!(ok(store.count_users("uc_pool"), "count"), 2);
}

pub fn user_update_alias_conflict(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ua_pool")), "insert pool");
    ok(store.insert_user(&user("ua_pool", "a"), &email_index("a", "a@x.com")), "insert a");
    let b = user("ua_pool", "b");
    let b_index = UserIndex {
        search: pairs(&[("email", "b@x.com")]),
        aliases: pairs(&[("email", "b@x.com"), ("preferred_username", "bee")]),
    };
    ok(store.insert_user(&b, &b_index), "insert b");

    let mut b2 = b.clone();
    b2.version = 2;
    b2.status = UserStatus::Archived;
    // Keeps one alias, drops one, and wants a's.
    let grab = UserIndex {
        search: pairs(&[("email", "a@x.com")]),
        aliases: pairs(&[("email", "a@x.com"), ("preferred_username", "bee")]),
    };
    expect_err(
        store.update_user(&b2, &grab),
        |e| matches!(e, StoreError::AliasTaken(kind) if kind == "email"),
        "update onto a taken alias",
    );
    // Nothing changed: record, search rows and aliases.
    assert_eq!(ok(store.get_user("ua_pool", &UsernameKey::from("b")), "get b"), Some(b.clone()));
    assert_eq!(search_keys(store, "ua_pool", "email", "b@x.com", false), ["b"]);
    assert_eq!(search_keys(store, "ua_pool", "email", "a@x.com", false), ["a"]);
    assert_eq!(alias_owner(store, "ua_pool", "email", "b@x.com").as_deref(), Some("b"));
    assert_eq!(alias_owner(store, "ua_pool", "email", "a@x.com").as_deref(), Some("a"));
    // Keeping its own aliases is not a conflict.
    ok(store.update_user(&b2, &b_index), "update keeping aliases");
    assert_eq!(alias_owner(store, "ua_pool", "preferred_username", "bee").as_deref(), Some("b"));
}

pub fn user_delete(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("udel_pool")), "insert pool");
    for k in ["a", "b"] {
        ok(store.insert_user(&user("udel_pool", k), &email_index(k, &format!("{k}@x.com"))), "insert");
    }
    ok(store.put_code(&code("udel_pool", "a", "signup", "h")), "put code");
    let id = ok(store.append_message(&message("udel_pool", "A", "hello")), "append");
    assert_eq!(ok(store.count_users("udel_pool"), "count"), 2);

    assert!(ok(store.delete_user("udel_pool", &UsernameKey::from("a")), "delete"));
    assert_eq!(ok(store.get_user("udel_pool", &UsernameKey::from("a")), "get"), None);
    assert_eq!(ok(store.get_user_by_sub("udel_pool", &user("udel_pool", "a").sub), "by sub"), None);
    assert_eq!(alias_owner(store, "udel_pool", "email", "a@x.com"), None);
    assert!(search_keys(store, "udel_pool", "username", "a", false).is_empty());
    assert_eq!(ok(store.count_users("udel_pool"), "count"), 1);
    assert!(!ok(store.delete_user("udel_pool", &UsernameKey::from("a")), "delete again"));
    assert!(!ok(store.delete_user("udel_nopool", &UsernameKey::from("b")), "delete in missing pool"));
    assert_eq!(ok(store.count_users("udel_pool"), "count"), 1);
    // The outbox is a log: the user's messages stay.
    let msgs = ok(store.list_messages(Some("udel_pool"), None, None, 10), "messages");
    assert_eq!(msgs.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);

    // A recreated user starts clean: no index rows or codes come back.
    ok(store.insert_user(&user("udel_pool", "a"), &UserIndex::default()), "reinsert");
    assert_eq!(alias_owner(store, "udel_pool", "email", "a@x.com"), None);
    assert!(search_keys(store, "udel_pool", "email", "a@x.com", false).is_empty());
    assert_eq!(
        ok(store.check_code("udel_pool", &UsernameKey::from("a"), "signup", "h", 1_500), "check"),
        CodeCheck::Missing
    );
    // The sibling is untouched.
    assert_eq!(alias_owner(store, "udel_pool", "email", "b@x.com").as_deref(), Some("b"));
    assert_eq!(ok(store.count_users("udel_pool"), "count"), 2);
}

pub fn user_list_order_and_pagination(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ul_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ul_other")), "insert other");
    let names = ["m", "B", "a", "z9", "z10", "é", "_", "%"];
    for k in names {
        ok(store.insert_user(&user("ul_pool", k), &UserIndex::default()), "insert");
    }
    ok(store.insert_user(&user("ul_other", "c"), &UserIndex::default()), "insert other");
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort_unstable();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ok(store.list_users("ul_pool", after.as_deref(), 3), "list");
        assert!(page.len() <= 3);
        assert!(page.iter().all(|u| u.pool_id == "ul_pool"), "foreign user");
        seen.extend(keys(&page));
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|u| u.username_key.to_string());
    }
    assert_eq!(seen, expected);
    assert_eq!(keys(&ok(store.list_users("ul_pool", Some("a"), 1), "after a")), ["m"]);
    assert!(ok(store.list_users("ul_pool", None, 0), "limit 0").is_empty());
    assert!(ok(store.list_users("ul_nopool", None, 10), "missing pool").is_empty());
    assert_eq!(ok(store.count_users("ul_pool"), "count"), names.len() as u64);
}

pub fn user_search_equality_and_paging(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("us_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("us_other")), "insert other");
    let status_index = |status: &str| UserIndex { search: pairs(&[("status", status)]), aliases: Vec::new() };
    let confirmed = ["u5", "u1", "u3", "u2", "u4"];
    for k in confirmed {
        ok(store.insert_user(&user("us_pool", k), &status_index("CONFIRMED")), "insert");
    }
    ok(store.insert_user(&user("us_pool", "u0"), &status_index("UNCONFIRMED")), "insert");
    ok(store.insert_user(&user("us_pool", "u9"), &status_index("CONFIRMEDX")), "insert");
    ok(store.insert_user(&user("us_other", "u1"), &status_index("CONFIRMED")), "insert other");

    assert_eq!(search_keys(store, "us_pool", "status", "CONFIRMED", false), ["u1", "u2", "u3", "u4", "u5"]);
    // Exact match only, case-sensitive, per attribute.
    assert!(search_keys(store, "us_pool", "status", "confirmed", false).is_empty());
    assert!(search_keys(store, "us_pool", "email", "CONFIRMED", false).is_empty());
    assert!(search_keys(store, "us_nopool", "status", "CONFIRMED", false).is_empty());

    // Paging with the (value, username_key) cursor.
    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let cursor = after.as_ref().map(|(v, k)| (v.as_str(), k.as_str()));
        let page = ok(store.search_users("us_pool", "status", "CONFIRMED", false, cursor, 2), "page");
        seen.extend(keys(&page));
        if page.len() < 2 {
            break;
        }
        after = page.last().map(|u| ("CONFIRMED".to_owned(), u.username_key.to_string()));
    }
    assert_eq!(seen, ["u1", "u2", "u3", "u4", "u5"]);
    // Cursors before and after the value.
    let from = |v: &str, k: &str| {
        keys(&ok(store.search_users("us_pool", "status", "CONFIRMED", false, Some((v, k)), 10), "search from cursor"))
    };
    assert_eq!(from("A", "zzz").len(), 5);
    assert!(from("CONFIRMEDX", "").is_empty());
    assert_eq!(from("CONFIRMED", "u4"), ["u5"]);
    assert!(ok(store.search_users("us_pool", "status", "CONFIRMED", false, None, 0), "limit 0").is_empty());
}

pub fn user_search_prefix_is_literal(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("up_pool")), "insert pool");
    // (username_key, value of "name")
    let rows: &[(&str, &str)] = &[
        ("k01", "50%"),
        ("k02", "50% off"),
        ("k03", "500"),
        ("k04", "5_0"),
        ("k05", "5x0"),
        ("k06", "a_b"),
        ("k07", "axb"),
        ("k08", "Ünïcødé"),
        ("k09", "Ünïcode"),
        ("k10", "日本語"),
        ("k11", "日本"),
        ("k12", "日"),
        ("k13", "\u{10FFFF}"),
        ("k14", "\u{10FFFF}\u{10FFFF}x"),
        ("k15", "z\u{D7FF}"),
        ("k16", "z\u{D7FF}\u{E000}"),
        ("k17", "z\u{E000}"),
        ("k18", "ab"),
        ("k19", "aB"),
        ("k20", "a"),
        ("k21", "b"),
        ("k22", "%"),
        ("k23", "_"),
        ("k24", "\\"),
        ("k25", "\\x"),
        ("k26", "🌍 earth"),
        ("k27", "🌍"),
    ];
    for (k, v) in rows {
        let index = UserIndex { search: pairs(&[("name", v)]), aliases: Vec::new() };
        ok(store.insert_user(&user("up_pool", k), &index), "insert");
    }
    // The reference: every stored value that starts with the prefix, ordered
    // by (value, username_key) in byte order.
    let expected = |p: &str| {
        let mut hits: Vec<(&str, &str)> =
            rows.iter().filter(|(_, v)| v.starts_with(p)).map(|(k, v)| (*v, *k)).collect();
        hits.sort_unstable();
        hits.into_iter().map(|(_, k)| k.to_owned()).collect::<Vec<_>>()
    };
    let prefixes = [
        "50%",
        "5_",
        "5",
        "%",
        "_",
        "a_",
        "a",
        "ab",
        "aB",
        "Ünïc",
        "Ünïcødé",
        "日本",
        "日",
        "\u{10FFFF}",
        "\u{10FFFF}\u{10FFFF}",
        "z\u{D7FF}",
        "z",
        "\\",
        "🌍",
        "",
        "zzz",
        "50% off",
        "50% off!",
    ];
    for p in prefixes {
        assert_eq!(search_keys(store, "up_pool", "name", p, true), expected(p), "prefix {p:?}");
    }
    // A full value as a prefix finds it and its extensions; as equality only it.
    assert_eq!(search_keys(store, "up_pool", "name", "日本", true), ["k11", "k10"]);
    assert_eq!(search_keys(store, "up_pool", "name", "日本", false), ["k11"]);
    assert_eq!(search_keys(store, "up_pool", "name", "%", false), ["k22"]);

    // Paging through a prefix search with the cursor visits every hit once.
    for p in ["", "5", "a", "日"] {
        let mut seen = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let cursor = after.as_ref().map(|(v, k)| (v.as_str(), k.as_str()));
            let page = ok(store.search_users("up_pool", "name", p, true, cursor, 2), "page");
            seen.extend(keys(&page));
            if page.len() < 2 {
                break;
            }
            after = page.last().map(|u| {
                let value = rows.iter().find(|(k, _)| u.username_key == *k).map(|(_, v)| *v);
                (value.unwrap_or_default().to_owned(), u.username_key.to_string())
            });
        }
        assert_eq!(seen, expected(p), "paged prefix {p:?}");
    }
    // A cursor past the prefix range ends the search.
    assert!(ok(store.search_users("up_pool", "name", "5", true, Some(("6", "")), 10), "past").is_empty());
}

pub fn user_counts_and_pool_cascade(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ucp_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ucp_other")), "insert other");
    assert_eq!(ok(store.count_users("ucp_pool"), "count"), 0);
    assert_eq!(ok(store.count_users("ucp_nopool"), "count missing"), 0);
    for k in ["a", "b", "c"] {
        ok(store.insert_user(&user("ucp_pool", k), &email_index(k, &format!("{k}@x.com"))), "insert");
        ok(store.put_code(&code("ucp_pool", k, "signup", "h")), "code");
        ok(store.append_message(&message("ucp_pool", k, "hi")), "message");
    }
    ok(store.insert_user(&user("ucp_other", "a"), &email_index("a", "a@x.com")), "insert other");
    ok(store.put_code(&code("ucp_other", "a", "signup", "h")), "code other");
    ok(store.append_message(&message("ucp_other", "a", "hi")), "message other");
    assert_eq!(ok(store.count_users("ucp_pool"), "count"), 3);

    // Failed writes leave the counter alone.
    expect_err(
        store.insert_user(&user("ucp_pool", "a"), &UserIndex::default()),
        |e| matches!(e, StoreError::AlreadyExists(Entity::User)),
        "duplicate",
    );
    expect_err(
        store.insert_user(&user("ucp_pool", "d"), &email_index("d", "a@x.com")),
        |e| matches!(e, StoreError::AliasTaken(_)),
        "alias taken",
    );
    assert!(!ok(store.delete_user("ucp_pool", &UsernameKey::from("nobody")), "delete missing"));
    assert_eq!(ok(store.count_users("ucp_pool"), "count"), 3);
    // Pool updates do not disturb it (nor does it bump the pool's version).
    let mut p2 = pool("ucp_pool");
    p2.version = 2;
    ok(store.update_user_pool(&p2), "update pool");
    assert_eq!(ok(store.count_users("ucp_pool"), "count"), 3);

    assert!(ok(store.delete_user_pool("ucp_pool"), "delete pool"));
    assert_eq!(ok(store.count_users("ucp_pool"), "count"), 0);
    assert!(ok(store.list_users("ucp_pool", None, 10), "list").is_empty());
    assert!(ok(store.list_messages(Some("ucp_pool"), None, None, 10), "outbox").is_empty());
    // Recreating the pool brings nothing back.
    ok(store.insert_user_pool(&pool("ucp_pool")), "reinsert pool");
    assert_eq!(ok(store.count_users("ucp_pool"), "count"), 0);
    assert!(search_keys(store, "ucp_pool", "email", "a@x.com", false).is_empty());
    assert_eq!(alias_owner(store, "ucp_pool", "email", "a@x.com"), None);
    ok(store.insert_user(&user("ucp_pool", "a"), &UserIndex::default()), "reinsert user");
    assert_eq!(
        ok(store.check_code("ucp_pool", &UsernameKey::from("a"), "signup", "h", 1_500), "check"),
        CodeCheck::Missing
    );
    assert!(ok(store.list_messages(Some("ucp_pool"), None, None, 10), "outbox").is_empty());
    // The other pool is intact.
    assert_eq!(ok(store.count_users("ucp_other"), "count other"), 1);
    assert_eq!(alias_owner(store, "ucp_other", "email", "a@x.com").as_deref(), Some("a"));
    assert_eq!(ok(store.list_messages(Some("ucp_other"), None, None, 10), "outbox").len(), 1);
    assert_eq!(
        ok(store.check_code("ucp_other", &UsernameKey::from("a"), "signup", "h", 1_500), "check other"),
        CodeCheck::Accepted
    );
}

pub fn codes_lifecycle(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("cd_pool")), "insert pool");
    ok(store.insert_user(&user("cd_pool", "u"), &UserIndex::default()), "insert user");
    let check = |purpose: &str, hash: &str, now: i64| {
        ok(store.check_code("cd_pool", &UsernameKey::from("u"), purpose, hash, now), "check")
    };

    assert_eq!(check("signup", "h", 1_500), CodeCheck::Missing);
    ok(store.put_code(&code("cd_pool", "u", "signup", "right")), "put");
    assert_eq!(check("signup", "wrong", 1_500), CodeCheck::Mismatch { attempts_left: 2 });
    // Purposes are independent.
    assert_eq!(check("reset", "right", 1_500), CodeCheck::Missing);
    // Expired at exactly expires_ms, and the row is kept.
    assert_eq!(check("signup", "right", 2_000), CodeCheck::Expired);
    assert_eq!(check("signup", "wrong", 2_001), CodeCheck::Expired);
    assert_eq!(check("signup", "right", 1_999), CodeCheck::Accepted);
    // Single use.
    assert_eq!(check("signup", "right", 1_999), CodeCheck::Missing);

    // Running out of attempts.
    ok(store.put_code(&code("cd_pool", "u", "signup", "right")), "put");
    assert_eq!(check("signup", "x", 1_500), CodeCheck::Mismatch { attempts_left: 2 });
    assert_eq!(check("signup", "x", 1_500), CodeCheck::Mismatch { attempts_left: 1 });
    assert_eq!(check("signup", "x", 1_500), CodeCheck::Mismatch { attempts_left: 0 });
    assert_eq!(check("signup", "right", 1_500), CodeCheck::TooManyAttempts);
    assert_eq!(check("signup", "x", 1_500), CodeCheck::TooManyAttempts);
    // A new code replaces the old one, attempts and all.
    let mut fresh = code("cd_pool", "u", "signup", "new");
    fresh.attempts_left = 1;
    fresh.expires_ms = 5_000;
    ok(store.put_code(&fresh), "replace");
    assert_eq!(check("signup", "right", 4_000), CodeCheck::Mismatch { attempts_left: 0 });
    ok(store.put_code(&fresh), "replace again");
    assert_eq!(check("signup", "new", 4_999), CodeCheck::Accepted);
    // A code stored with no attempts is never accepted.
    let mut none_left = code("cd_pool", "u", "signup", "h");
    none_left.attempts_left = 0;
    ok(store.put_code(&none_left), "put");
    assert_eq!(check("signup", "h", 1_500), CodeCheck::TooManyAttempts);

    // A check that keeps an accepted code; mismatches still count.
    ok(store.put_code(&code("cd_pool", "u", "signup", "right")), "put");
    let keep = |hash: &str| {
        ok(store.check_code_keeping_it("cd_pool", &UsernameKey::from("u"), "signup", hash, 1_500), "check, keep")
    };
    assert_eq!(keep("right"), CodeCheck::Accepted);
    assert_eq!(keep("right"), CodeCheck::Accepted, "kept");
    assert_eq!(keep("x"), CodeCheck::Mismatch { attempts_left: 2 });
    assert_eq!(check("signup", "right", 1_500), CodeCheck::Accepted);
    assert_eq!(keep("right"), CodeCheck::Missing);

    // Deleting.
    ok(store.put_code(&code("cd_pool", "u", "reset", "h")), "put");
    assert!(ok(store.delete_code("cd_pool", &UsernameKey::from("u"), "reset"), "delete"));
    assert!(!ok(store.delete_code("cd_pool", &UsernameKey::from("u"), "reset"), "delete again"));
    assert!(!ok(store.delete_code("cd_nopool", &UsernameKey::from("u"), "reset"), "delete in missing pool"));
    assert_eq!(check("reset", "h", 1_500), CodeCheck::Missing);

    expect_err(
        store.put_code(&code("cd_pool", "nobody", "signup", "h")),
        |e| matches!(e, StoreError::NotFound(_)),
        "code for a missing user",
    );
    expect_err(
        store.put_code(&code("cd_nopool", "u", "signup", "h")),
        |e| matches!(e, StoreError::NotFound(_)),
        "code in a missing pool",
    );
    assert_eq!(
        ok(store.check_code("cd_pool", &UsernameKey::from("nobody"), "signup", "h", 1), "check missing user"),
        CodeCheck::Missing
    );
}

pub fn code_check_with_user_update(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("cu_pool")), "insert pool");
    let mut u = user("cu_pool", "u");
    u.status = UserStatus::Unconfirmed;
    ok(store.insert_user(&u, &email_index("u", "u@x.com")), "insert u");
    ok(store.insert_user(&user("cu_pool", "other"), &email_index("other", "taken@x.com")), "insert other");
    let mut confirmed = u.clone();
    confirmed.version = 2;
    confirmed.status = UserStatus::Confirmed;
    let run = |user: &UserRecord, index: &UserIndex, hash: &str, now: i64| {
        store.check_code_and_update_user("cu_pool", &UsernameKey::from("u"), "signup", hash, now, user, index)
    };

    // No code, a wrong code, an expired code: the user is not touched.
    assert_eq!(ok(run(&confirmed, &UserIndex::default(), "h", 1_500), "missing"), CodeCheck::Missing);
    ok(store.put_code(&code("cu_pool", "u", "signup", "h")), "put");
    assert_eq!(
        ok(run(&confirmed, &UserIndex::default(), "bad", 1_500), "mismatch"),
        CodeCheck::Mismatch { attempts_left: 2 }
    );
    assert_eq!(ok(run(&confirmed, &UserIndex::default(), "h", 3_000), "expired"), CodeCheck::Expired);
    assert_eq!(ok(store.get_user("cu_pool", &UsernameKey::from("u")), "get"), Some(u.clone()));

    // The update fails: everything rolls back and the code survives.
    let mut stale = u.clone();
    stale.version = 5;
    expect_err(
        run(&stale, &UserIndex::default(), "h", 1_500),
        |e| matches!(e, StoreError::VersionConflict(Entity::User)),
        "conflicting update",
    );
    expect_err(
        run(&confirmed, &email_index("u", "taken@x.com"), "h", 1_500),
        |e| matches!(e, StoreError::AliasTaken(kind) if kind == "email"),
        "alias taken",
    );
    assert_eq!(ok(store.get_user("cu_pool", &UsernameKey::from("u")), "get"), Some(u.clone()));
    assert_eq!(alias_owner(store, "cu_pool", "email", "u@x.com").as_deref(), Some("u"));

    // Accepted: the code is consumed and the update applied, together.
    assert_eq!(ok(run(&confirmed, &email_index("u", "new@x.com"), "h", 1_500), "accepted"), CodeCheck::Accepted);
    assert_eq!(ok(store.get_user("cu_pool", &UsernameKey::from("u")), "get"), Some(confirmed.clone()));
    assert_eq!(alias_owner(store, "cu_pool", "email", "new@x.com").as_deref(), Some("u"));
    assert_eq!(alias_owner(store, "cu_pool", "email", "u@x.com"), None);
    assert_eq!(
        ok(store.check_code("cu_pool", &UsernameKey::from("u"), "signup", "h", 1_500), "consumed"),
        CodeCheck::Missing
    );

    // The user must be the code's owner.
    ok(store.put_code(&code("cu_pool", "u", "signup", "h")), "put");
    let mut not_owner = user("cu_pool", "other");
    not_owner.version = 2;
    expect_err(
        run(&not_owner, &UserIndex::default(), "h", 1_500),
        |e| matches!(e, StoreError::Backend(_)),
        "another user",
    );
    assert_eq!(
        ok(store.check_code("cu_pool", &UsernameKey::from("u"), "signup", "h", 1_500), "still there"),
        CodeCheck::Accepted
    );
}

pub fn outbox_append_and_list(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ob_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ob_other")), "insert other");
    let mut ids = Vec::new();
    for (p, u, body) in
        [("ob_pool", "alice", "1"), ("ob_pool", "bob", "2"), ("ob_other", "alice", "3"), ("ob_pool", "alice", "4")]
    {
        ids.push(ok(store.append_message(&message(p, u, body)), "append"));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not increasing: {ids:?}");
    let bodies = |msgs: Vec<OutboxMessage>| msgs.into_iter().map(|m| m.body).collect::<Vec<_>>();

    let mine = ok(store.list_messages(Some("ob_pool"), None, None, 10), "pool");
    assert_eq!(mine[0], OutboxMessage { id: ids[0], ..message("ob_pool", "alice", "1") });
    assert_eq!(bodies(mine), ["1", "2", "4"]);
    assert_eq!(bodies(ok(store.list_messages(Some("ob_pool"), Some("alice"), None, 10), "user")), ["1", "4"]);
    assert_eq!(bodies(ok(store.list_messages(Some("ob_pool"), None, Some(ids[0]), 1), "after")), ["2"]);
    assert_eq!(bodies(ok(store.list_messages(None, Some("alice"), Some(ids[0]), 10), "any pool")), ["3", "4"]);
    let all = ok(store.list_messages(None, None, Some(ids[0] - 1), 10), "all");
    assert_eq!(bodies(all), ["1", "2", "3", "4"]);
    assert!(ok(store.list_messages(None, None, None, 0), "limit 0").is_empty());
    assert!(ok(store.list_messages(Some("ob_nopool"), None, None, 10), "missing pool").is_empty());

    // Optional fields round-trip as None.
    let sms = OutboxMessage {
        channel: "SMS".into(),
        destination: "+15555550100".into(),
        code: None,
        subject: None,
        ..message("ob_pool", "carol", "text")
    };
    let id = ok(store.append_message(&sms), "append sms");
    assert!(id > ids[3]);
    assert_eq!(
        ok(store.list_messages(Some("ob_pool"), Some("carol"), None, 10), "sms"),
        vec![OutboxMessage { id, ..sms }]
    );
    expect_err(
        store.append_message(&message("ob_nopool", "a", "x")),
        |e| matches!(e, StoreError::NotFound(_)),
        "message for a missing pool",
    );
}

/// `append_message_pruned` keeps a pool's newest `max_per_pool` messages and
/// deletes messages of every pool `max_age_ms` old, in bounded batches that
/// drain a backlog over the following appends; concurrent appends to two
/// pools neither fail nor leave more than the limit.
///
/// Times here are far below every other check's `created_ms`, so the global
/// age purge never touches another check's messages.
pub fn outbox_retention(store: &dyn Store) {
    use crate::OutboxRetention;
    for p in ["or_pool", "or_other", "or_backlog", "or_race0", "or_race1"] {
        ok(store.insert_user_pool(&pool(p)), "insert pool");
    }
    let at = |p: &str, body: &str, created_ms: i64| OutboxMessage { created_ms, ..message(p, "u", body) };
    let bodies = |p: &str| -> Vec<String> {
        ok(store.list_messages(Some(p), None, None, 1000), "list").into_iter().map(|m| m.body).collect()
    };
    let append = |m: OutboxMessage, r: &OutboxRetention| ok(store.append_message_pruned(&m, r), "append pruned");

    // Count: the pool's newest three stay; the other pool is not touched.
    let keep3 = OutboxRetention { max_age_ms: 1_000_000, max_per_pool: 3 };
    for i in 1..=5 {
        append(at("or_pool", &i.to_string(), 10_000 + i), &keep3);
    }
    append(at("or_other", "x", 10_010), &keep3);
    assert_eq!(bodies("or_pool"), ["3", "4", "5"]);
    assert_eq!(bodies("or_other"), ["x"]);

    // Age: nothing is old enough yet; then everything of both pools at or
    // before the cutoff goes, the new message stays.
    let short = OutboxRetention { max_age_ms: 5_000, max_per_pool: 100 };
    append(at("or_pool", "6", 14_000), &short);
    assert_eq!(bodies("or_pool"), ["3", "4", "5", "6"]);
    append(at("or_other", "y", 20_000), &short);
    assert!(bodies("or_pool").is_empty(), "{:?}", bodies("or_pool"));
    assert_eq!(bodies("or_other"), ["y"]);
    // Exactly max_age old is old enough; a millisecond younger is not.
    append(at("or_pool", "z", 24_999), &short);
    assert_eq!(bodies("or_other"), ["y"]);
    append(at("or_pool", "w", 25_000), &short);
    assert!(bodies("or_other").is_empty());
    assert_eq!(bodies("or_pool"), ["z", "w"]);

    // A backlog (kept by plain appends, or left when the limits were
    // lowered) drains over a few pruned appends, oldest first.
    for i in 0..40 {
        ok(store.append_message(&at("or_backlog", &format!("old{i}"), 30_000 + i)), "append");
    }
    let two = OutboxRetention { max_age_ms: 1_000_000, max_per_pool: 2 };
    for i in 0..10 {
        append(at("or_backlog", &format!("new{i}"), 31_000 + i), &two);
    }
    assert_eq!(bodies("or_backlog"), ["new8", "new9"]);
    for i in 0..40 {
        ok(store.append_message(&at("or_backlog", &format!("stale{i}"), 32_000 + i)), "append");
    }
    let young = OutboxRetention { max_age_ms: 100, max_per_pool: 1000 };
    for i in 0..10 {
        append(at("or_backlog", &format!("fresh{i}"), 40_000 + i), &young);
    }
    assert_eq!(bodies("or_backlog"), (0..10).map(|i| format!("fresh{i}")).collect::<Vec<_>>());

    // A missing pool is still NotFound.
    expect_err(
        store.append_message_pruned(&at("or_nopool", "x", 50_000), &keep3),
        |e| matches!(e, StoreError::NotFound(_)),
        "pruned append to a missing pool",
    );

    // Concurrent appends to two pools, each append purging by age across
    // both and by count in its own: no error (PostgreSQL: no deadlock) and
    // at most the limit left in each pool.
    const THREADS: i64 = 4;
    const EACH: i64 = 25;
    let race = OutboxRetention { max_age_ms: 40, max_per_pool: 4 };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                let p = format!("or_race{}", t % 2);
                for i in 0..EACH {
                    let m = OutboxMessage { created_ms: 60_000 + i * 10, ..message(&p, &format!("t{t}"), "r") };
                    ok(store.append_message_pruned(&m, &race), "concurrent pruned append");
                }
            });
        }
    });
    for p in ["or_race0", "or_race1"] {
        let left = ok(store.list_messages(Some(p), None, None, 1000), "list");
        assert!(!left.is_empty() && left.len() <= 4, "{p}: {} messages left", left.len());
    }
}

/// Many threads insert distinct users into one pool, with some failing
/// inserts mixed in: every success is stored, every failure leaves nothing,
/// and the counter matches.
pub fn concurrent_user_inserts(store: &dyn Store) {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    ok(store.insert_user_pool(&pool("cui_pool")), "insert pool");
    ok(store.insert_user(&user("cui_pool", "holder"), &email_index("holder", "held@x.com")), "insert holder");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..EACH {
                    let k = format!("t{t}-{i}");
                    ok(store.insert_user(&user("cui_pool", &k), &email_index(&k, &format!("{k}@x.com"))), "insert");
                    // Interleaved failures of each kind.
                    expect_err(
                        store.insert_user(&user("cui_pool", &format!("bad{k}")), &email_index("x", "held@x.com")),
                        |e| matches!(e, StoreError::AliasTaken(_)),
                        "alias taken",
                    );
                    expect_err(
                        store.insert_user(&user("cui_pool", &k), &UserIndex::default()),
                        |e| matches!(e, StoreError::AlreadyExists(Entity::User)),
                        "duplicate",
                    );
                }
            });
        }
    });
    let expected = (THREADS * EACH + 1) as u64;
    assert_eq!(ok(store.count_users("cui_pool"), "count"), expected);
    let all = ok(store.list_users("cui_pool", None, usize::MAX), "list");
    assert_eq!(all.len() as u64, expected);
    assert!(all.iter().all(|u| !u.username_key.starts_with("bad")));
    for t in 0..THREADS {
        let k = format!("t{t}-{}", EACH - 1);
        assert_eq!(alias_owner(store, "cui_pool", "email", &format!("{k}@x.com")), Some(k));
    }
}

/// Threads race to insert the same username, or different users with the
/// same alias: exactly one wins each race.
pub fn concurrent_user_races(store: &dyn Store) {
    const THREADS: usize = 6;
    ok(store.insert_user_pool(&pool("cur_pool")), "insert pool");
    let barrier = std::sync::Barrier::new(THREADS);
    let results: Vec<(StoreResult<()>, StoreResult<()>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut same = user("cur_pool", "same");
                    same.sub = format!("sub-{t}").into();
                    barrier.wait();
                    let a = store.insert_user(&same, &UserIndex::default());
                    let k = format!("racer{t}");
                    barrier.wait();
                    let b = store.insert_user(&user("cur_pool", &k), &email_index(&k, "race@x.com"));
                    (a, b)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("racing thread panicked"),
            })
            .collect()
    });
    let same_wins = results.iter().filter(|(a, _)| a.is_ok()).count();
    let alias_wins = results.iter().filter(|(_, b)| b.is_ok()).count();
    for (a, b) in &results {
        assert!(matches!(a, Ok(()) | Err(StoreError::AlreadyExists(Entity::User))), "{a:?}");
        assert!(matches!(b, Ok(()) | Err(StoreError::AliasTaken(_))), "{b:?}");
    }
    assert_eq!((same_wins, alias_wins), (1, 1));
    assert_eq!(ok(store.count_users("cur_pool"), "count"), 2);
}

/// A reader pages through a pool's outbox with `after_id` while threads
/// append to it: it sees every message exactly once, in id order.
pub fn concurrent_outbox_paging_skips_nothing(store: &dyn Store) {
    const THREADS: usize = 6;
    const EACH: usize = 30;
    ok(store.insert_user_pool(&pool("cob_pool")), "insert pool");
    let appending = std::sync::atomic::AtomicUsize::new(THREADS);
    let seen: Vec<i64> = std::thread::scope(|s| {
        for t in 0..THREADS {
            let appending = &appending;
            s.spawn(move || {
                for i in 0..EACH {
                    ok(store.append_message(&message("cob_pool", &format!("u{t}"), &i.to_string())), "append");
                }
                appending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let reader = s.spawn(|| {
            let mut seen = Vec::new();
            loop {
                // Read the flag first: a pass that starts after the last
                // append committed must see everything.
                let last_pass = appending.load(std::sync::atomic::Ordering::SeqCst) == 0;
                let after = seen.last().copied();
                let page = ok(store.list_messages(Some("cob_pool"), None, after, 7), "list");
                seen.extend(page.iter().map(|m| m.id));
                if page.is_empty() && last_pass {
                    return seen;
                }
            }
        });
        match reader.join() {
            Ok(seen) => seen,
            Err(_) => panic!("reader panicked"),
        }
    });
    let all: Vec<i64> =
        ok(store.list_messages(Some("cob_pool"), None, None, usize::MAX), "list all").iter().map(|m| m.id).collect();
    assert_eq!(all.len(), THREADS * EACH);
    assert_eq!(seen, all, "the paging reader skipped or repeated messages");
}

/// Threads check the right code at the same moment: exactly one is accepted.
pub fn concurrent_code_checks(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ccc_pool")), "insert pool");
    ok(store.insert_user(&user("ccc_pool", "u"), &UserIndex::default()), "insert user");
    for round in 0..10 {
        ok(store.put_code(&code("ccc_pool", "u", "signup", "h")), "put");
        let stores = [store; 6];
        let accepted = race_code_checks(&stores, "ccc_pool");
        assert_eq!(accepted, 1, "round {round}");
    }
}

fn race_code_checks(stores: &[&dyn Store], pool_id: &str) -> usize {
    let barrier = std::sync::Barrier::new(stores.len());
    let results: Vec<CodeCheck> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    ok(store.check_code(pool_id, &UsernameKey::from("u"), "signup", "h", 1_500), "check")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("checking thread panicked"),
            })
            .collect()
    });
    for r in &results {
        assert!(matches!(r, CodeCheck::Accepted | CodeCheck::Missing), "{r:?}");
    }
    results.iter().filter(|r| **r == CodeCheck::Accepted).count()
}

/// Two independently opened stores on one database check the same code at
/// the same moment, round after round: exactly one is accepted each time.
pub fn code_race_between_stores(a: &dyn Store, b: &dyn Store) {
    ok(a.insert_user_pool(&pool("xcode_pool")), "insert pool");
    ok(a.insert_user(&user("xcode_pool", "u"), &UserIndex::default()), "insert user");
    for round in 0..25 {
        ok(a.put_code(&code("xcode_pool", "u", "signup", "h")), "put");
        let accepted = race_code_checks(&[a, b, a, b], "xcode_pool");
        assert_eq!(accepted, 1, "round {round}");
    }
}

// ---------------------------------------------------------------------------
// Signing keys, token revocations and single-use values

fn signing_key(pool_id: &str, purpose: &str, kid: &str, created_ms: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        pool_id: pool_id.into(),
        kid: kid.into(),
        purpose: purpose.into(),
        sealed_private_key: format!("sealed:{kid}"),
        public_jwk: format!(r#"{{"kty":"RSA","kid":"{kid}","n":"ünï","e":"AQAB"}}"#),
        created_ms,
    }
}

fn kids(store: &dyn Store, pool_id: &str) -> Vec<String> {
    ok(store.list_signing_keys(pool_id), "list keys").into_iter().map(|k| k.kid).collect()
}

pub fn signing_keys_ensure_and_list(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("sk_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("sk_other")), "insert other pool");
    assert!(kids(store, "sk_pool").is_empty());

    let access = signing_key("sk_pool", "access", "kid-b", 20);
    assert_eq!(ok(store.ensure_signing_key(&access), "ensure access"), access);
    // A second key for the purpose is not stored: the first one is returned.
    let again = signing_key("sk_pool", "access", "kid-c", 5);
    assert_eq!(ok(store.ensure_signing_key(&again), "ensure access again"), access);

    // Another purpose gets its own key; listing orders by created_ms, kid.
    let id = signing_key("sk_pool", "id", "kid-a", 10);
    assert_eq!(ok(store.ensure_signing_key(&id), "ensure id"), id);
    assert_eq!(ok(store.list_signing_keys("sk_pool"), "list"), vec![id.clone(), access.clone()]);
    // Same created_ms: kid (byte order) breaks the tie.
    let other_id = signing_key("sk_other", "id", "kid-Z", 7);
    let other_access = signing_key("sk_other", "access", "kid-Y", 7);
    ok(store.ensure_signing_key(&other_id), "ensure other id");
    ok(store.ensure_signing_key(&other_access), "ensure other access");
    assert_eq!(kids(store, "sk_other"), ["kid-Y", "kid-Z"]);
    assert_eq!(kids(store, "sk_pool"), ["kid-a", "kid-b"]);

    // A kid names one key of the pool: reusing it for another purpose is
    // refused. Other pools may reuse it.
    let mut clash_pool = pool("sk_clash");
    clash_pool.name = "clash".into();
    ok(store.insert_user_pool(&clash_pool), "insert clash pool");
    ok(store.ensure_signing_key(&signing_key("sk_clash", "id", "kid-a", 1)), "same kid in another pool");
    expect_err(
        store.ensure_signing_key(&signing_key("sk_clash", "access", "kid-a", 2)),
        |e| matches!(e, StoreError::AlreadyExists(Entity::SigningKey)),
        "kid reused for another purpose",
    );
    assert_eq!(kids(store, "sk_clash"), ["kid-a"]);
    assert!(kids(store, "sk_missing").is_empty());
}

pub fn signing_keys_need_a_pool(store: &dyn Store) {
    expect_err(
        store.ensure_signing_key(&signing_key("skm_missing", "id", "k", 1)),
        |e| matches!(e, StoreError::NotFound(_)),
        "ensure in missing pool",
    );
    assert!(kids(store, "skm_missing").is_empty());
}

/// Every store ensures a key (each its own kid) for one purpose of a fresh
/// pool at the same moment: all must get the same stored key.
fn race_signing_key_ensures(stores: &[&dyn Store], pool_id: &str) {
    let barrier = std::sync::Barrier::new(stores.len());
    let results: Vec<SigningKeyRecord> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let rec = signing_key(pool_id, "id", &format!("{pool_id}-kid-{i}"), 1);
                    barrier.wait();
                    ok(store.ensure_signing_key(&rec), "ensure")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("ensuring thread panicked"),
            })
            .collect()
    });
    let first = &results[0];
    assert!(first.kid.starts_with(&format!("{pool_id}-kid-")), "{first:?}");
    for r in &results {
        assert_eq!(r, first, "{pool_id}: racers got different keys");
    }
    for store in stores {
        assert_eq!(ok(store.list_signing_keys(pool_id), "list"), vec![first.clone()]);
    }
}

pub fn concurrent_signing_key_ensures(store: &dyn Store) {
    for round in 0..10 {
        let id = format!("cske_pool_{round}");
        ok(store.insert_user_pool(&pool(&id)), "insert pool");
        race_signing_key_ensures(&[store; 6], &id);
    }
}

pub fn token_family_revocation(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("rev_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("rev_other")), "insert other pool");
    let far = i64::MAX - 1;
    assert!(!ok(store.is_token_family_revoked("rev_pool", "jti-1"), "not yet"));
    ok(store.revoke_token_family("rev_pool", "jti-1", far - 10), "revoke");
    assert!(ok(store.is_token_family_revoked("rev_pool", "jti-1"), "revoked"));
    // Idempotent, and may extend (or be asked to shorten: it stays).
    ok(store.revoke_token_family("rev_pool", "jti-1", far - 10), "revoke again");
    ok(store.revoke_token_family("rev_pool", "jti-1", far), "extend");
    ok(store.revoke_token_family("rev_pool", "jti-1", 5), "shorten");
    assert!(ok(store.is_token_family_revoked("rev_pool", "jti-1"), "still revoked"));
    // Scoped to the pool and the family.
    assert!(!ok(store.is_token_family_revoked("rev_other", "jti-1"), "other pool"));
    assert!(!ok(store.is_token_family_revoked("rev_pool", "jti-2"), "other family"));
    assert!(!ok(store.is_token_family_revoked("rev_missing", "jti-1"), "missing pool"));
    expect_err(
        store.revoke_token_family("rev_missing", "jti-1", far),
        |e| matches!(e, StoreError::NotFound(_)),
        "revoke in missing pool",
    );

    // A revocation past its expiry holds until a later call purges it; the
    // purge keeps live revocations.
    ok(store.revoke_token_family("rev_other", "jti-old", 1), "revoke expired");
    assert!(ok(store.is_token_family_revoked("rev_other", "jti-old"), "expired, kept for now"));
    ok(store.revoke_token_family("rev_other", "jti-new", far), "revoke another");
    assert!(!ok(store.is_token_family_revoked("rev_other", "jti-old"), "purged"));
    assert!(ok(store.is_token_family_revoked("rev_other", "jti-new"), "new kept"));
    assert!(ok(store.is_token_family_revoked("rev_pool", "jti-1"), "live kept"));
}

pub fn consume_once_lifecycle(store: &dyn Store) {
    assert!(ok(store.consume_once("co-a", 2_000, 1_000), "first use"));
    assert!(!ok(store.consume_once("co-a", 2_000, 1_000), "second use"));
    assert!(!ok(store.consume_once("co-a", 9_000, 1_999), "just before expiry"));
    assert!(ok(store.consume_once("co-b", 2_000, 1_000), "another key"));
    // At its expiry an entry counts as unused; the new use is recorded anew.
    assert!(ok(store.consume_once("co-a", 5_000, 2_000), "after expiry"));
    assert!(!ok(store.consume_once("co-a", 5_000, 4_999), "reused after renewal"));
    assert!(ok(store.consume_once("co-a", 6_000, 5_000), "renewal expired"));

    // Expired entries are purged (bounded per call, oldest first) without
    // disturbing live ones: many expired keys stay usable once each, and
    // live keys stay used.
    for i in 0..40 {
        assert!(ok(store.consume_once(&format!("co-old-{i}"), 10_000 + i, 10_000), "old"));
    }
    assert!(ok(store.consume_once("co-live", i64::MAX, 10_000), "live"));
    for i in 0..40 {
        assert!(ok(store.consume_once(&format!("co-new-{i}"), i64::MAX, 1_000_000), "new"));
    }
    for i in 0..40 {
        let key = format!("co-old-{i}");
        assert!(ok(store.consume_once(&key, i64::MAX, 1_000_000), "expired reused"));
        assert!(!ok(store.consume_once(&key, i64::MAX, 1_000_000), "then used"));
    }
    assert!(!ok(store.consume_once("co-live", i64::MAX, 1_000_000), "live still used"));
    for i in 0..40 {
        assert!(!ok(store.consume_once(&format!("co-new-{i}"), i64::MAX, 1_000_000), "new still used"));
    }
}

/// Every store consumes the same key at the same moment: exactly one wins.
fn race_consume_once(stores: &[&dyn Store], key: &str, now_ms: i64) -> usize {
    let barrier = std::sync::Barrier::new(stores.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    ok(store.consume_once(key, now_ms + 1_000, now_ms), "consume")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("consuming thread panicked"),
            })
            .filter(|won| *won)
            .count()
    })
}

pub fn concurrent_consume_once(store: &dyn Store) {
    for round in 0..10 {
        let key = format!("cco-{round}");
        assert_eq!(race_consume_once(&[store; 6], &key, 100), 1, "round {round}");
        // Once expired, the same key is raced for again.
        assert_eq!(race_consume_once(&[store; 6], &key, 1_100), 1, "round {round} after expiry");
    }
}

pub fn auth_rows_go_with_their_pool(store: &dyn Store) {
    for id in ["auth_del", "auth_keep"] {
        ok(store.insert_user_pool(&pool(id)), "insert pool");
        ok(store.ensure_signing_key(&signing_key(id, "id", &format!("{id}-id"), 1)), "ensure id");
        ok(store.ensure_signing_key(&signing_key(id, "access", &format!("{id}-access"), 2)), "ensure access");
        ok(store.revoke_token_family(id, "jti", i64::MAX), "revoke");
    }
    assert!(ok(store.delete_user_pool("auth_del"), "delete pool"));
    assert!(kids(store, "auth_del").is_empty());
    assert!(!ok(store.is_token_family_revoked("auth_del", "jti"), "revocation gone"));
    assert_eq!(kids(store, "auth_keep"), ["auth_keep-id", "auth_keep-access"]);
    assert!(ok(store.is_token_family_revoked("auth_keep", "jti"), "other pool kept"));

    // Recreating the pool starts clean: a new key is stored, not an old one.
    ok(store.insert_user_pool(&pool("auth_del")), "reinsert pool");
    let fresh = signing_key("auth_del", "id", "fresh", 3);
    assert_eq!(ok(store.ensure_signing_key(&fresh), "ensure fresh"), fresh);
    assert!(!ok(store.is_token_family_revoked("auth_del", "jti"), "no revocation"));
}

/// Two independently opened stores on one database (like two server
/// processes) ensure a signing key for the same fresh pool, and consume the
/// same single-use key, at the same moment, round after round: both get the
/// same key, and exactly one consumption succeeds.
pub fn auth_races_between_stores(a: &dyn Store, b: &dyn Store) {
    for round in 0..25 {
        let id = format!("xauth_pool_{round}");
        ok(a.insert_user_pool(&pool(&id)), "insert pool");
        race_signing_key_ensures(&[a, b, a, b], &id);
        let key = format!("xauth-once-{round}");
        assert_eq!(race_consume_once(&[a, b, a, b], &key, 100), 1, "round {round}");
        assert_eq!(race_consume_once(&[a, b, a, b], &key, 1_100), 1, "round {round} after expiry");
    }
}

// ---------------------------------------------------------------------------
// Groups and memberships

fn group(pool_id: &str, name: &str, precedence: Option<i64>) -> GroupRecord {
    GroupRecord {
        pool_id: pool_id.into(),
        name: name.into(),
        created_ms: 1_700_000_000_300,
        modified_ms: 1_700_000_000_300,
        version: 1,
        doc: format!(r#"{{"group":"{name}","description":"ünï 🌍"}}"#),
        precedence,
    }
}

fn group_names(groups: &[GroupRecord]) -> Vec<String> {
    groups.iter().map(|g| g.name.clone()).collect()
}

/// Every group name of the pool, paged `page` at a time.
fn all_group_names(store: &dyn Store, pool_id: &str, page: usize) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let got = ok(store.list_groups(pool_id, seen.last().map(String::as_str), page), "list groups");
        assert!(got.len() <= page, "page larger than limit");
        let done = got.len() < page;
        seen.extend(group_names(&got));
        if done {
            return seen;
        }
    }
}

/// Every group of the user, paged `page` at a time.
fn groups_of(store: &dyn Store, pool_id: &str, username_key: &str, page: usize) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let got = ok(
            store.list_groups_for_user(
                pool_id,
                &UsernameKey::from(username_key),
                seen.last().map(String::as_str),
                page,
            ),
            "list groups for user",
        );
        assert!(got.len() <= page, "page larger than limit");
        let done = got.len() < page;
        seen.extend(group_names(&got));
        if done {
            return seen;
        }
    }
}

/// Every member of the group, paged `page` at a time.
fn members_of(store: &dyn Store, pool_id: &str, group: &str, page: usize) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let got = ok(store.list_users_in_group(pool_id, group, seen.last().map(String::as_str), page), "list members");
        assert!(got.len() <= page, "page larger than limit");
        let done = got.len() < page;
        seen.extend(keys(&got));
        if done {
            return seen;
        }
    }
}

pub fn group_insert_and_get(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gi_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("gi_other")), "insert other pool");
    let admins = group("gi_pool", "admins", Some(0));
    let plain = group("gi_pool", "plain", None);
    ok(store.insert_group(&admins, 10), "insert admins");
    ok(store.insert_group(&plain, 10), "insert plain");
    assert_eq!(ok(store.get_group("gi_pool", "admins"), "get"), Some(admins.clone()));
    assert_eq!(ok(store.get_group("gi_pool", "plain"), "get no precedence"), Some(plain));
    assert_eq!(ok(store.get_group("gi_pool", "ADMINS"), "names are exact"), None);
    assert_eq!(ok(store.get_group("gi_other", "admins"), "other pool"), None);
    assert_eq!(ok(store.get_group("gi_missing", "admins"), "missing pool"), None);

    // Extreme values and odd text round-trip.
    let mut odd = group("gi_pool", "Grüppe 名前 🌍", Some(i64::MAX));
    odd.created_ms = -5;
    odd.modified_ms = i64::MAX;
    odd.doc = "{\"k\":\"\\\"quoted\\\"\"}".into();
    ok(store.insert_group(&odd, 10), "insert odd");
    assert_eq!(ok(store.get_group("gi_pool", &odd.name), "get odd"), Some(odd));

    // A duplicate name is refused and changes nothing, even in a full pool;
    // the same name in another pool is another group.
    let mut dup = admins.clone();
    dup.doc = "{}".into();
    expect_err(store.insert_group(&dup, 10), |e| matches!(e, StoreError::AlreadyExists(Entity::Group)), "duplicate");
    expect_err(
        store.insert_group(&dup, 3),
        |e| matches!(e, StoreError::AlreadyExists(Entity::Group)),
        "duplicate at limit",
    );
    assert_eq!(ok(store.get_group("gi_pool", "admins"), "get"), Some(admins));
    ok(store.insert_group(&group("gi_other", "admins", None), 10), "same name, other pool");

    expect_err(
        store.insert_group(&group("gi_missing", "g", None), 10),
        |e| matches!(e, StoreError::NotFound(_)),
        "missing pool",
    );
    assert!(ok(store.list_groups("gi_missing", None, 10), "list missing pool").is_empty());
}

pub fn group_compare_and_set(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gcas_pool")), "insert pool");
    let rec = group("gcas_pool", "g", Some(5));
    ok(store.insert_group(&rec, 10), "insert");

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.doc = r#"{"changed":true}"#.into();
    v2.precedence = None;
    v2.modified_ms += 10;
    // An update never rewrites the creation time.
    v2.created_ms = 1;
    ok(store.update_group(&v2), "update to v2");
    let stored = ok(store.get_group("gcas_pool", "g"), "get").unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored, GroupRecord { created_ms: rec.created_ms, ..v2.clone() });

    let mut v3 = stored.clone();
    v3.version = 3;
    v3.precedence = Some(-1);
    ok(store.update_group(&v3), "update to v3");
    assert_eq!(ok(store.get_group("gcas_pool", "g"), "get").and_then(|g| g.precedence), Some(-1));

    // A second writer that also read v2 loses; so do skips and nonsense.
    let mut stale = stored.clone();
    stale.version = 3;
    stale.doc = "{}".into();
    expect_err(store.update_group(&stale), |e| matches!(e, StoreError::VersionConflict(Entity::Group)), "stale update");
    stale.version = 5;
    expect_err(store.update_group(&stale), |e| matches!(e, StoreError::VersionConflict(Entity::Group)), "version skip");
    stale.version = i64::MIN;
    expect_err(
        store.update_group(&stale),
        |e| matches!(e, StoreError::VersionConflict(Entity::Group)),
        "i64::MIN version",
    );
    assert_eq!(ok(store.get_group("gcas_pool", "g"), "get").map(|g| g.version), Some(3));

    let mut missing = group("gcas_pool", "missing", None);
    missing.version = 2;
    expect_err(store.update_group(&missing), |e| matches!(e, StoreError::NotFound(_)), "update missing");
    missing.pool_id = "gcas_nopool".into();
    expect_err(store.update_group(&missing), |e| matches!(e, StoreError::NotFound(_)), "update in missing pool");
}

pub fn group_limit_per_pool(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("glim_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("glim_other")), "insert other pool");
    expect_err(
        store.insert_group(&group("glim_pool", "zero", None), 0),
        |e| matches!(e, StoreError::LimitExceeded),
        "limit 0",
    );
    for name in ["a", "b", "c"] {
        ok(store.insert_group(&group("glim_pool", name, None), 3), "insert under the limit");
    }
    expect_err(
        store.insert_group(&group("glim_pool", "d", None), 3),
        |e| matches!(e, StoreError::LimitExceeded),
        "over the limit",
    );
    assert_eq!(all_group_names(store, "glim_pool", 10), ["a", "b", "c"]);
    // The limit is the caller's: a larger one admits more.
    ok(store.insert_group(&group("glim_pool", "d", None), 4), "raised limit");
    // Per pool: another pool is not affected.
    ok(store.insert_group(&group("glim_other", "a", None), 1), "other pool");
    // Deleting frees a slot; deleting a missing group frees nothing.
    assert!(!ok(store.delete_group("glim_pool", "nope"), "delete missing"));
    expect_err(
        store.insert_group(&group("glim_pool", "e", None), 4),
        |e| matches!(e, StoreError::LimitExceeded),
        "full",
    );
    assert!(ok(store.delete_group("glim_pool", "b"), "delete"));
    assert!(!ok(store.delete_group("glim_pool", "b"), "delete again"));
    ok(store.insert_group(&group("glim_pool", "e", None), 4), "insert into freed slot");
    expect_err(
        store.insert_group(&group("glim_pool", "f", None), 4),
        |e| matches!(e, StoreError::LimitExceeded),
        "full",
    );
    // Failed inserts (duplicate, over the limit) left the count alone.
    expect_err(
        store.insert_group(&group("glim_pool", "a", None), 9),
        |e| matches!(e, StoreError::AlreadyExists(Entity::Group)),
        "dup",
    );
    for name in ["f", "g", "h", "i", "j"] {
        ok(store.insert_group(&group("glim_pool", name, None), 9), "fill to 9");
    }
    expect_err(store.insert_group(&group("glim_pool", "k", None), 9), |e| matches!(e, StoreError::LimitExceeded), "9");
    assert_eq!(all_group_names(store, "glim_pool", 4).len(), 9);
}

pub fn group_list_order_and_pagination(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gl_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("gl_other")), "insert other pool");
    // Byte order: uppercase before lowercase, digits compared as text.
    let names = ["b", "B", "a", "c2", "c10", "Z", "é", "e"];
    for (i, name) in names.iter().enumerate() {
        ok(store.insert_group(&group("gl_pool", name, Some(i as i64)), 100), "insert");
    }
    ok(store.insert_group(&group("gl_other", "a0", None), 100), "insert other");
    let mut expected: Vec<&str> = names.to_vec();
    expected.sort_unstable();
    for page in [1, 2, 3, 100] {
        assert_eq!(all_group_names(store, "gl_pool", page), expected, "page size {page}");
    }
    let full = ok(store.list_groups("gl_pool", None, 100), "list");
    assert_eq!(full[0], group("gl_pool", "B", Some(1)));
    assert_eq!(group_names(&ok(store.list_groups("gl_pool", Some("b"), 2), "after b")), ["c10", "c2"]);
    assert_eq!(
        group_names(&ok(store.list_groups("gl_pool", Some("bb"), 100), "after non-name")),
        ["c10", "c2", "e", "é"]
    );
    assert!(ok(store.list_groups("gl_pool", Some("é"), 100), "after last").is_empty());
    assert!(ok(store.list_groups("gl_pool", None, 0), "limit 0").is_empty());
    assert_eq!(group_names(&ok(store.list_groups("gl_pool", None, usize::MAX), "no limit")), expected);
}

pub fn group_membership_add_and_remove(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gm_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("gm_other")), "insert other pool");
    ok(store.insert_user(&user("gm_pool", "alice"), &UserIndex::default()), "insert alice");
    ok(store.insert_user(&user("gm_other", "bob"), &UserIndex::default()), "insert bob elsewhere");
    ok(store.insert_group(&group("gm_pool", "g", None), 10), "insert group");
    ok(store.insert_group(&group("gm_other", "g", None), 10), "insert other group");

    // Idempotent add.
    assert!(ok(store.add_user_to_group("gm_pool", "g", &UsernameKey::from("alice"), 10), "add"));
    assert!(!ok(store.add_user_to_group("gm_pool", "g", &UsernameKey::from("alice"), 10), "add again"));
    assert_eq!(members_of(store, "gm_pool", "g", 10), ["alice"]);
    assert_eq!(groups_of(store, "gm_pool", "alice", 10), ["g"]);

    // Missing user, group or pool; a user of another pool is not found.
    let not_found = |e: &StoreError| matches!(e, StoreError::NotFound(_));
    expect_err(store.add_user_to_group("gm_pool", "g", &UsernameKey::from("nobody"), 10), not_found, "missing user");
    expect_err(
        store.add_user_to_group("gm_pool", "nogroup", &UsernameKey::from("alice"), 10),
        not_found,
        "missing group",
    );
    expect_err(
        store.add_user_to_group("gm_pool", "g", &UsernameKey::from("bob"), 10),
        not_found,
        "user of another pool",
    );
    expect_err(store.add_user_to_group("gm_nopool", "g", &UsernameKey::from("alice"), 10), not_found, "missing pool");
    assert!(members_of(store, "gm_other", "g", 10).is_empty());

    // Removal is per membership, and tells whether there was one.
    assert!(!ok(store.remove_user_from_group("gm_pool", "g", &UsernameKey::from("nobody")), "remove non-member"));
    assert!(!ok(
        store.remove_user_from_group("gm_pool", "nogroup", &UsernameKey::from("alice")),
        "remove from missing group"
    ));
    assert!(!ok(store.remove_user_from_group("gm_other", "g", &UsernameKey::from("alice")), "remove in other pool"));
    assert!(ok(store.remove_user_from_group("gm_pool", "g", &UsernameKey::from("alice")), "remove"));
    assert!(!ok(store.remove_user_from_group("gm_pool", "g", &UsernameKey::from("alice")), "remove again"));
    assert!(members_of(store, "gm_pool", "g", 10).is_empty());
    assert!(groups_of(store, "gm_pool", "alice", 10).is_empty());
    // And the user and group are still there.
    assert!(ok(store.get_user("gm_pool", &UsernameKey::from("alice")), "user kept").is_some());
    assert!(ok(store.get_group("gm_pool", "g"), "group kept").is_some());
    assert!(ok(store.add_user_to_group("gm_pool", "g", &UsernameKey::from("alice"), 10), "add back"));
}

pub fn group_membership_listings(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gml_pool")), "insert pool");
    let users = ["b", "B", "a", "c2", "c10", "Z", "é", "e"];
    let groups = ["g2", "G1", "g10", "ğ"];
    for k in users {
        ok(store.insert_user(&user("gml_pool", k), &UserIndex::default()), "insert user");
    }
    for (i, name) in groups.iter().enumerate() {
        ok(store.insert_group(&group("gml_pool", name, Some(10 - i as i64)), 100), "insert group");
    }
    ok(store.insert_group(&group("gml_pool", "empty", None), 100), "insert empty group");
    // Every user is in g2; "a" is in every group; "b" in two.
    for k in users {
        assert!(ok(store.add_user_to_group("gml_pool", "g2", &UsernameKey::from(k), 100), "add to g2"));
    }
    for g in groups {
        ok(store.add_user_to_group("gml_pool", g, &UsernameKey::from("a"), 100), "add a");
    }
    ok(store.add_user_to_group("gml_pool", "ğ", &UsernameKey::from("b"), 100), "add b");

    let mut sorted_users: Vec<&str> = users.to_vec();
    sorted_users.sort_unstable();
    for page in [1, 2, 3, 100] {
        assert_eq!(members_of(store, "gml_pool", "g2", page), sorted_users, "page size {page}");
    }
    let mut sorted_groups: Vec<&str> = groups.to_vec();
    sorted_groups.sort_unstable();
    for page in [1, 3, 100] {
        assert_eq!(groups_of(store, "gml_pool", "a", page), sorted_groups, "page size {page}");
    }
    assert_eq!(groups_of(store, "gml_pool", "b", 1), ["g2", "ğ"]);
    assert!(groups_of(store, "gml_pool", "nobody", 10).is_empty());
    assert!(members_of(store, "gml_pool", "empty", 10).is_empty());
    assert!(members_of(store, "gml_pool", "nogroup", 10).is_empty());

    // Cursors that are not themselves members or groups; limits of 0.
    let after = ok(store.list_users_in_group("gml_pool", "g2", Some("c"), 3), "members after c");
    assert_eq!(keys(&after), ["c10", "c2", "e"]);
    assert!(ok(store.list_users_in_group("gml_pool", "g2", Some("é"), 3), "after last").is_empty());
    let after = ok(store.list_groups_for_user("gml_pool", &UsernameKey::from("a"), Some("g1"), 10), "groups after g1");
    assert_eq!(group_names(&after), ["g10", "g2", "ğ"]);
    assert!(ok(store.list_users_in_group("gml_pool", "g2", None, 0), "limit 0").is_empty());
    assert!(ok(store.list_groups_for_user("gml_pool", &UsernameKey::from("a"), None, 0), "limit 0").is_empty());

    // The listings return whole, current records.
    let mut alice =
        ok(store.get_user("gml_pool", &UsernameKey::from("a")), "get a").unwrap_or_else(|| panic!("a vanished"));
    alice.version += 1;
    alice.status = UserStatus::ResetRequired;
    ok(store.update_user(&alice, &UserIndex::default()), "update a");
    let mut g10 = ok(store.get_group("gml_pool", "g10"), "get g10").unwrap_or_else(|| panic!("g10 vanished"));
    g10.version += 1;
    g10.precedence = None;
    g10.doc = r#"{"v":2}"#.into();
    ok(store.update_group(&g10), "update g10");
    assert_eq!(ok(store.list_users_in_group("gml_pool", "g2", Some("Z"), 1), "member after Z"), vec![alice]);
    let of_a = ok(store.list_groups_for_user("gml_pool", &UsernameKey::from("a"), None, 100), "groups of a");
    assert_eq!(of_a.iter().find(|g| g.name == "g10"), Some(&g10));
    assert_eq!(of_a.iter().find(|g| g.name == "G1"), Some(&group("gml_pool", "G1", Some(9))));
}

pub fn group_membership_limit_per_user(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gmu_pool")), "insert pool");
    for k in ["u", "v"] {
        ok(store.insert_user(&user("gmu_pool", k), &UserIndex::default()), "insert user");
    }
    for g in ["g1", "g2", "g3", "g4"] {
        ok(store.insert_group(&group("gmu_pool", g, None), 10), "insert group");
    }
    let limit = |e: &StoreError| matches!(e, StoreError::LimitExceeded);
    expect_err(store.add_user_to_group("gmu_pool", "g1", &UsernameKey::from("u"), 0), limit, "limit 0");
    assert!(ok(store.add_user_to_group("gmu_pool", "g1", &UsernameKey::from("u"), 2), "first"));
    assert!(ok(store.add_user_to_group("gmu_pool", "g2", &UsernameKey::from("u"), 2), "second"));
    expect_err(store.add_user_to_group("gmu_pool", "g3", &UsernameKey::from("u"), 2), limit, "third");
    // Idempotent adds succeed at (or above) the limit.
    assert!(!ok(store.add_user_to_group("gmu_pool", "g2", &UsernameKey::from("u"), 2), "again at the limit"));
    assert!(!ok(store.add_user_to_group("gmu_pool", "g2", &UsernameKey::from("u"), 1), "again above the limit"));
    // Per user: another user, and the group's other members, are not affected.
    assert!(ok(store.add_user_to_group("gmu_pool", "g1", &UsernameKey::from("v"), 1), "other user"));
    // Removing frees a slot.
    assert!(ok(store.remove_user_from_group("gmu_pool", "g1", &UsernameKey::from("u")), "remove"));
    assert!(ok(store.add_user_to_group("gmu_pool", "g3", &UsernameKey::from("u"), 2), "into freed slot"));
    expect_err(store.add_user_to_group("gmu_pool", "g4", &UsernameKey::from("u"), 2), limit, "full again");
    // Deleting a group frees a slot too.
    assert!(ok(store.delete_group("gmu_pool", "g2"), "delete group"));
    assert!(ok(store.add_user_to_group("gmu_pool", "g4", &UsernameKey::from("u"), 2), "after group delete"));
    assert_eq!(groups_of(store, "gmu_pool", "u", 10), ["g3", "g4"]);
    assert_eq!(groups_of(store, "gmu_pool", "v", 10), ["g1"]);
}

pub fn group_delete_cascades(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gd_pool")), "insert pool");
    for k in ["u1", "u2"] {
        ok(store.insert_user(&user("gd_pool", k), &UserIndex::default()), "insert user");
    }
    for g in ["doomed", "kept"] {
        ok(store.insert_group(&group("gd_pool", g, None), 10), "insert group");
        for k in ["u1", "u2"] {
            ok(store.add_user_to_group("gd_pool", g, &UsernameKey::from(k), 10), "add");
        }
    }
    assert!(ok(store.delete_group("gd_pool", "doomed"), "delete"));
    assert_eq!(ok(store.get_group("gd_pool", "doomed"), "get deleted"), None);
    assert!(members_of(store, "gd_pool", "doomed", 10).is_empty());
    assert_eq!(groups_of(store, "gd_pool", "u1", 10), ["kept"]);
    assert_eq!(members_of(store, "gd_pool", "kept", 10), ["u1", "u2"]);
    assert!(!ok(store.remove_user_from_group("gd_pool", "doomed", &UsernameKey::from("u1")), "membership gone"));
    // The users stay, and a group recreated with the name starts empty.
    assert_eq!(ok(store.count_users("gd_pool"), "count users"), 2);
    ok(store.insert_group(&group("gd_pool", "doomed", None), 10), "recreate");
    assert!(members_of(store, "gd_pool", "doomed", 10).is_empty());
    assert!(ok(store.add_user_to_group("gd_pool", "doomed", &UsernameKey::from("u1"), 10), "add to recreated"));
}

pub fn group_user_delete_cascades(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("gud_pool")), "insert pool");
    for k in ["leaver", "stayer"] {
        ok(store.insert_user(&user("gud_pool", k), &UserIndex::default()), "insert user");
    }
    for g in ["g1", "g2"] {
        ok(store.insert_group(&group("gud_pool", g, None), 10), "insert group");
        for k in ["leaver", "stayer"] {
            ok(store.add_user_to_group("gud_pool", g, &UsernameKey::from(k), 10), "add");
        }
    }
    assert!(ok(store.delete_user("gud_pool", &UsernameKey::from("leaver")), "delete user"));
    for g in ["g1", "g2"] {
        assert_eq!(members_of(store, "gud_pool", g, 10), ["stayer"]);
        assert!(ok(store.get_group("gud_pool", g), "group kept").is_some());
    }
    assert!(groups_of(store, "gud_pool", "leaver", 10).is_empty());
    // A user recreated with the key starts in no group, with a fresh limit.
    ok(store.insert_user(&user("gud_pool", "leaver"), &UserIndex::default()), "recreate user");
    assert!(groups_of(store, "gud_pool", "leaver", 10).is_empty());
    assert!(ok(store.add_user_to_group("gud_pool", "g1", &UsernameKey::from("leaver"), 1), "add recreated"));
}

pub fn group_pool_delete_cascades(store: &dyn Store) {
    for id in ["gpd_del", "gpd_keep"] {
        ok(store.insert_user_pool(&pool(id)), "insert pool");
        ok(store.insert_user(&user(id, "u"), &UserIndex::default()), "insert user");
        for g in ["g1", "g2"] {
            ok(store.insert_group(&group(id, g, None), 2), "insert group");
            ok(store.add_user_to_group(id, g, &UsernameKey::from("u"), 10), "add");
        }
    }
    assert!(ok(store.delete_user_pool("gpd_del"), "delete pool"));
    assert!(ok(store.list_groups("gpd_del", None, 10), "groups gone").is_empty());
    assert!(members_of(store, "gpd_del", "g1", 10).is_empty());
    assert!(groups_of(store, "gpd_del", "u", 10).is_empty());
    assert_eq!(all_group_names(store, "gpd_keep", 10), ["g1", "g2"]);
    assert_eq!(groups_of(store, "gpd_keep", "u", 10), ["g1", "g2"]);

    // Recreating the pool starts clean, with the group count back at zero.
    ok(store.insert_user_pool(&pool("gpd_del")), "reinsert pool");
    ok(store.insert_user(&user("gpd_del", "u"), &UserIndex::default()), "reinsert user");
    assert!(groups_of(store, "gpd_del", "u", 10).is_empty());
    for g in ["g1", "g2"] {
        ok(store.insert_group(&group("gpd_del", g, None), 2), "insert group into recreated pool");
    }
    expect_err(
        store.insert_group(&group("gpd_del", "g3", None), 2),
        |e| matches!(e, StoreError::LimitExceeded),
        "limit in recreated pool",
    );
    assert!(members_of(store, "gpd_del", "g1", 10).is_empty());
}

/// Runs `f(i)` for every `i` in `0..n`, each on its own thread, all released
/// at once; returns the results in order.
fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("racing thread panicked"),
            })
            .collect()
    })
}

/// The stores (repeated as given) race, in fresh pools named after
/// `prefix`, to insert more groups than the pool's limit, to add one user
/// to more groups than the user's limit, and to add another user to one
/// group: each limit holds exactly, and exactly one add of the same
/// membership reports it new.
fn race_group_limits(stores: &[&dyn Store], prefix: &str, rounds: usize) {
    const MAX: u64 = 3;
    let n = stores.len();
    for round in 0..rounds {
        let pool_id = format!("{prefix}_{round}");
        ok(stores[0].insert_user_pool(&pool(&pool_id)), "insert pool");
        let results = race(n, |i| stores[i].insert_group(&group(&pool_id, &format!("g{i}"), None), MAX));
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(StoreError::LimitExceeded)), "{pool_id}: {r:?}");
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count() as u64, MAX, "{pool_id}: group inserts");
        for store in stores {
            assert_eq!(all_group_names(*store, &pool_id, 100).len() as u64, MAX, "{pool_id}");
        }
        // The count kept on the pool agrees with the rows.
        ok(stores[0].insert_group(&group(&pool_id, "extra", None), MAX + 1), "one more under a raised limit");
        expect_err(
            stores[0].insert_group(&group(&pool_id, "extra2", None), MAX + 1),
            |e| matches!(e, StoreError::LimitExceeded),
            "raised limit reached",
        );

        // Enough groups for everyone, then one user added to all at once.
        for i in 0..n {
            ok(stores[0].insert_group(&group(&pool_id, &format!("m{i}"), None), u64::MAX), "insert group");
        }
        for k in ["u", "w"] {
            ok(stores[0].insert_user(&user(&pool_id, k), &UserIndex::default()), "insert user");
        }
        let results =
            race(n, |i| stores[i].add_user_to_group(&pool_id, &format!("m{i}"), &UsernameKey::from("u"), MAX));
        for r in &results {
            assert!(matches!(r, Ok(true) | Err(StoreError::LimitExceeded)), "{pool_id}: {r:?}");
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count() as u64, MAX, "{pool_id}: adds");
        assert_eq!(groups_of(stores[n - 1], &pool_id, "u", 100).len() as u64, MAX, "{pool_id}");

        // The same membership, added by everyone at once: one is new.
        let results =
            race(n, |i| ok(stores[i].add_user_to_group(&pool_id, "m0", &UsernameKey::from("w"), MAX), "same add"));
        assert_eq!(results.iter().filter(|new| **new).count(), 1, "{pool_id}: same membership");
        assert_eq!(groups_of(stores[0], &pool_id, "w", 100), ["m0"], "{pool_id}");
    }
}

pub fn concurrent_group_limits(store: &dyn Store) {
    race_group_limits(&[store; 8], "cgl_pool", 5);
}

/// Two independently opened stores on one database (like two server
/// processes) race for the group limits; see [`concurrent_group_limits`].
pub fn group_races_between_stores(a: &dyn Store, b: &dyn Store) {
    race_group_limits(&[a, b, a, b, a, b], "xgroup_pool", 10);
}

// ---------------------------------------------------------------------------
// User import jobs

fn import_job(pool_id: &str, job_id: &str, created_ms: i64) -> ImportJobRecord {
    ImportJobRecord {
        pool_id: pool_id.into(),
        job_id: job_id.into(),
        created_ms,
        modified_ms: created_ms,
        version: 1,
        doc: format!(r#"{{"JobId":"{job_id}","JobName":"ünï 🌍","Status":"Created"}}"#),
        lease_until_ms: None,
    }
}

fn job_ids(jobs: &[ImportJobRecord]) -> Vec<String> {
    jobs.iter().map(|j| j.job_id.clone()).collect()
}

/// Every job id of the pool, newest first, paged `page` at a time.
fn all_job_ids(store: &dyn Store, pool_id: &str, page: usize) -> Vec<String> {
    let mut seen: Vec<ImportJobRecord> = Vec::new();
    loop {
        let after = seen.last().map(|j| (j.created_ms, j.job_id.as_str()));
        let got = ok(store.list_import_jobs(pool_id, after, page), "list import jobs");
        assert!(got.len() <= page, "page larger than limit");
        let done = got.len() < page;
        seen.extend(got);
        if done {
            return job_ids(&seen);
        }
    }
}

pub fn import_job_insert_and_get(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("iji_pool")), "insert pool");
    let rec = import_job("iji_pool", "import-abc", 1_700_000_000_400);
    ok(store.insert_import_job(&rec, 10), "insert");
    assert_eq!(ok(store.get_import_job("iji_pool", "import-abc"), "get"), Some(rec.clone()));
    assert_eq!(ok(store.get_import_job("iji_pool", "IMPORT-ABC"), "ids are exact"), None);
    assert_eq!(ok(store.get_import_job("iji_zzz", "import-abc"), "other pool"), None);
    assert_eq!(ok(store.get_import_job("iji_missing", "import-abc"), "missing pool"), None);
    assert_eq!(ok(store.get_import_job_by_id("import-abc"), "by id"), Some(rec.clone()));
    assert_eq!(ok(store.get_import_job_by_id("import-none"), "by missing id"), None);

    // Extreme values and odd text round-trip.
    let mut odd = import_job("iji_pool", "Jöb 名前 🌍", i64::MIN);
    odd.modified_ms = i64::MAX;
    odd.version = i64::MAX;
    odd.doc = "{\"k\":\"\\\"quoted\\\"\"}".into();
    ok(store.insert_import_job(&odd, 10), "insert odd");
    assert_eq!(ok(store.get_import_job("iji_pool", &odd.job_id), "get odd"), Some(odd.clone()));
    assert_eq!(ok(store.get_import_job_by_id(&odd.job_id), "by odd id"), Some(odd));

    // A duplicate id is refused and changes nothing, even in a full pool
    // and with another creation time; the same id in another pool is
    // another job.
    let mut dup = import_job("iji_pool", "import-abc", 5);
    dup.doc = "{}".into();
    expect_err(
        store.insert_import_job(&dup, 10),
        |e| matches!(e, StoreError::AlreadyExists(Entity::ImportJob)),
        "duplicate",
    );
    expect_err(
        store.insert_import_job(&dup, 2),
        |e| matches!(e, StoreError::AlreadyExists(Entity::ImportJob)),
        "duplicate at limit",
    );
    assert_eq!(ok(store.get_import_job("iji_pool", "import-abc"), "get"), Some(rec.clone()));
    assert_eq!(all_job_ids(store, "iji_pool", 10).len(), 2, "no row for the duplicate");
    let later = import_job("iji_zzz", "import-abc", 7);
    let earlier = import_job("iji_other", "import-abc", 8);
    for twin in [&later, &earlier] {
        ok(store.insert_user_pool(&pool(&twin.pool_id)), "insert twin pool");
        ok(store.insert_import_job(twin, 10), "same id, other pool");
        assert_eq!(ok(store.get_import_job(&twin.pool_id, "import-abc"), "get twin"), Some(twin.clone()));
    }
    assert_eq!(ok(store.get_import_job("iji_pool", "import-abc"), "get"), Some(rec));
    // By id alone, the first pool id (byte order) wins.
    assert_eq!(ok(store.get_import_job_by_id("import-abc"), "by shared id"), Some(earlier));

    expect_err(
        store.insert_import_job(&import_job("iji_missing", "j", 1), 10),
        |e| matches!(e, StoreError::NotFound(_)),
        "missing pool",
    );
    assert_eq!(ok(store.get_import_job_by_id("j"), "nothing stored for a missing pool"), None);
    assert!(ok(store.list_import_jobs("iji_missing", None, 10), "list missing pool").is_empty());
}

pub fn import_job_compare_and_set(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ijc_pool")), "insert pool");
    let rec = import_job("ijc_pool", "j", 1_700_000_000_500);
    ok(store.insert_import_job(&rec, 10), "insert");

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.doc = r#"{"Status":"InProgress"}"#.into();
    v2.modified_ms += 10;
    // An update never rewrites the creation time (nor the listing order).
    v2.created_ms = 1;
    ok(store.update_import_job(&v2), "update to v2");
    let stored = ok(store.get_import_job("ijc_pool", "j"), "get").unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored, ImportJobRecord { created_ms: rec.created_ms, ..v2.clone() });
    assert_eq!(ok(store.get_import_job_by_id("j"), "by id"), Some(stored.clone()));
    let listed = ok(store.list_import_jobs("ijc_pool", None, 10), "list");
    assert_eq!(listed, vec![stored.clone()]);

    // A second writer that also read v1 loses; so do skips and nonsense.
    let mut stale = rec.clone();
    stale.version = 2;
    stale.doc = "{}".into();
    expect_err(
        store.update_import_job(&stale),
        |e| matches!(e, StoreError::VersionConflict(Entity::ImportJob)),
        "stale update",
    );
    stale.version = 5;
    expect_err(
        store.update_import_job(&stale),
        |e| matches!(e, StoreError::VersionConflict(Entity::ImportJob)),
        "version skip",
    );
    stale.version = i64::MIN;
    expect_err(
        store.update_import_job(&stale),
        |e| matches!(e, StoreError::VersionConflict(Entity::ImportJob)),
        "i64::MIN version",
    );
    assert_eq!(ok(store.get_import_job("ijc_pool", "j"), "get"), Some(stored.clone()));

    let mut v3 = stored;
    v3.version = 3;
    v3.doc = r#"{"Status":"Succeeded"}"#.into();
    ok(store.update_import_job(&v3), "update to v3");
    assert_eq!(ok(store.get_import_job("ijc_pool", "j"), "get"), Some(v3));

    let mut missing = import_job("ijc_pool", "missing", 1);
    missing.version = 2;
    expect_err(store.update_import_job(&missing), |e| matches!(e, StoreError::NotFound(_)), "update missing");
    missing.pool_id = "ijc_nopool".into();
    expect_err(store.update_import_job(&missing), |e| matches!(e, StoreError::NotFound(_)), "update in missing pool");
}

pub fn import_job_limit_per_pool(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ijl_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ijl_other")), "insert other pool");
    expect_err(
        store.insert_import_job(&import_job("ijl_pool", "zero", 1), 0),
        |e| matches!(e, StoreError::LimitExceeded),
        "limit 0",
    );
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        ok(store.insert_import_job(&import_job("ijl_pool", id, i as i64), 3), "insert under the limit");
    }
    expect_err(
        store.insert_import_job(&import_job("ijl_pool", "d", 3), 3),
        |e| matches!(e, StoreError::LimitExceeded),
        "over the limit",
    );
    // A refused insert leaves no row behind.
    assert_eq!(ok(store.get_import_job("ijl_pool", "d"), "refused job"), None);
    assert_eq!(ok(store.get_import_job_by_id("zero"), "refused job by id"), None);
    assert_eq!(all_job_ids(store, "ijl_pool", 10), ["c", "b", "a"]);
    // The limit is the caller's: a larger one admits more.
    ok(store.insert_import_job(&import_job("ijl_pool", "d", 3), 4), "raised limit");
    // Per pool: another pool is not affected.
    ok(store.insert_import_job(&import_job("ijl_other", "a", 0), 1), "other pool");
    expect_err(
        store.insert_import_job(&import_job("ijl_other", "b", 0), 1),
        |e| matches!(e, StoreError::LimitExceeded),
        "other pool full",
    );
    // Failed inserts (duplicate, over the limit) left the count alone.
    expect_err(
        store.insert_import_job(&import_job("ijl_pool", "a", 0), 9),
        |e| matches!(e, StoreError::AlreadyExists(Entity::ImportJob)),
        "dup",
    );
    for (i, id) in ["e", "f", "g", "h", "i"].into_iter().enumerate() {
        ok(store.insert_import_job(&import_job("ijl_pool", id, 10 + i as i64), 9), "fill to 9");
    }
    expect_err(
        store.insert_import_job(&import_job("ijl_pool", "j", 20), 9),
        |e| matches!(e, StoreError::LimitExceeded),
        "9",
    );
    assert_eq!(all_job_ids(store, "ijl_pool", 4).len(), 9);
    ok(store.insert_import_job(&import_job("ijl_pool", "j", 20), u64::MAX), "no limit");
}

pub fn import_job_list_order_and_pagination(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ijo_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ijo_other")), "insert other pool");
    // (job_id, created_ms), inserted out of order; ties on created_ms are
    // ordered by job id (byte order), descending like the times.
    let jobs: [(&str, i64); 10] = [
        ("m", 200),
        ("a", 300),
        ("z", 100),
        ("B", 200),
        ("é", 200),
        ("e", 200),
        ("c10", 300),
        ("c2", 300),
        ("min", i64::MIN),
        ("max", i64::MAX),
    ];
    for (id, created_ms) in jobs {
        ok(store.insert_import_job(&import_job("ijo_pool", id, created_ms), 100), "insert");
    }
    ok(store.insert_import_job(&import_job("ijo_other", "x", 250), 100), "insert other");
    let expected = ["max", "c2", "c10", "a", "é", "m", "e", "B", "z", "min"];
    for page in [1, 2, 3, 100] {
        assert_eq!(all_job_ids(store, "ijo_pool", page), expected, "page size {page}");
    }
    let full = ok(store.list_import_jobs("ijo_pool", None, 100), "list");
    assert_eq!(full[1], import_job("ijo_pool", "c2", 300));
    assert_eq!(full.last(), Some(&import_job("ijo_pool", "min", i64::MIN)));

    let after = |position: (i64, &str), limit: usize| {
        job_ids(&ok(store.list_import_jobs("ijo_pool", Some(position), limit), "list after"))
    };
    // Strictly after the position, within and across a millisecond.
    assert_eq!(after((300, "c10"), 2), ["a", "é"]);
    assert_eq!(after((200, "m"), 100), ["e", "B", "z", "min"]);
    // Positions no job holds.
    assert_eq!(after((200, "zz"), 2), ["m", "e"]);
    assert_eq!(after((200, "ë"), 2), ["é", "m"]);
    assert_eq!(after((250, ""), 100), ["é", "m", "e", "B", "z", "min"]);
    assert_eq!(after((200, ""), 100), ["z", "min"]);
    assert_eq!(after((i64::MAX, "\u{10FFFF}"), 1), ["max"]);
    assert!(after((i64::MIN, "min"), 100).is_empty(), "after the last");
    assert!(after((i64::MIN, ""), 100).is_empty(), "below everything");
    assert!(ok(store.list_import_jobs("ijo_pool", None, 0), "limit 0").is_empty());
    assert_eq!(job_ids(&ok(store.list_import_jobs("ijo_pool", None, usize::MAX), "no limit")), expected);
    assert_eq!(job_ids(&ok(store.list_import_jobs("ijo_other", None, 100), "other pool")), ["x"]);
}

/// CSV bytes that are not UTF-8 and hold every byte value, `len` long.
fn csv_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8).wrapping_add(seed)).collect()
}

pub fn import_csv_round_trips(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ijcsv_pool")), "insert pool");
    ok(store.insert_user_pool(&pool("ijcsv_other")), "insert other pool");
    expect_err(store.put_import_csv("ijcsv_pool", "j", b"a,b\n"), |e| matches!(e, StoreError::NotFound(_)), "no job");
    expect_err(
        store.put_import_csv("ijcsv_missing", "j", b"a,b\n"),
        |e| matches!(e, StoreError::NotFound(_)),
        "no pool",
    );
    let rec = import_job("ijcsv_pool", "j", 1);
    ok(store.insert_import_job(&rec, 10), "insert job");
    ok(store.insert_import_job(&import_job("ijcsv_other", "j", 1), 10), "same id, other pool");
    assert_eq!(ok(store.get_import_csv("ijcsv_pool", "j"), "nothing uploaded"), None);
    assert_eq!(ok(store.get_import_csv("ijcsv_pool", "nope"), "missing job"), None);

    let small = "name,email\nJöhn,j@example.com\r\n".as_bytes();
    ok(store.put_import_csv("ijcsv_pool", "j", small), "upload");
    assert_eq!(ok(store.get_import_csv("ijcsv_pool", "j"), "get"), Some(small.to_vec()));
    // Per pool: the other pool's job of the same id has none.
    assert_eq!(ok(store.get_import_csv("ijcsv_other", "j"), "other pool"), None);

    // A later upload replaces the earlier one, whatever the sizes; an empty
    // file is a file.
    let big = csv_bytes(5 * 1024 * 1024 + 3, 7);
    ok(store.put_import_csv("ijcsv_pool", "j", &big), "upload 5 MB");
    assert!(ok(store.get_import_csv("ijcsv_pool", "j"), "get 5 MB") == Some(big.clone()), "5 MB round trip");
    ok(store.put_import_csv("ijcsv_pool", "j", &[]), "upload empty");
    assert_eq!(ok(store.get_import_csv("ijcsv_pool", "j"), "get empty"), Some(Vec::new()));
    let nul = [0u8, 0xff, 0xfe, b'\n', 0, 0x80];
    ok(store.put_import_csv("ijcsv_pool", "j", &nul), "upload binary");
    assert_eq!(ok(store.get_import_csv("ijcsv_pool", "j"), "get binary"), Some(nul.to_vec()));
    ok(store.put_import_csv("ijcsv_pool", "j", &big), "upload 5 MB again");

    // Job updates leave the upload alone, and the upload leaves the job.
    let mut v2 = rec.clone();
    v2.version = 2;
    v2.doc = r#"{"Status":"Pending"}"#.into();
    ok(store.update_import_job(&v2), "update job");
    assert!(ok(store.get_import_csv("ijcsv_pool", "j"), "get after update") == Some(big), "csv kept");
    assert_eq!(ok(store.get_import_job("ijcsv_pool", "j"), "job"), Some(v2));
    assert_eq!(ok(store.list_import_jobs("ijcsv_pool", None, 10), "list").len(), 1);
}

pub fn import_jobs_go_with_their_pool(store: &dyn Store) {
    for id in ["ijd_del", "ijd_keep"] {
        ok(store.insert_user_pool(&pool(id)), "insert pool");
        for (i, job) in ["j1", "j2"].into_iter().enumerate() {
            ok(store.insert_import_job(&import_job(id, &format!("{id}-{job}"), i as i64), 2), "insert job");
            ok(store.put_import_csv(id, &format!("{id}-{job}"), format!("csv of {id}").as_bytes()), "upload");
        }
    }
    assert!(ok(store.delete_user_pool("ijd_del"), "delete pool"));
    assert!(ok(store.list_import_jobs("ijd_del", None, 10), "jobs gone").is_empty());
    assert_eq!(ok(store.get_import_job("ijd_del", "ijd_del-j1"), "job gone"), None);
    assert_eq!(ok(store.get_import_job_by_id("ijd_del-j1"), "job gone by id"), None);
    assert_eq!(ok(store.get_import_csv("ijd_del", "ijd_del-j1"), "csv gone"), None);
    assert_eq!(all_job_ids(store, "ijd_keep", 10), ["ijd_keep-j2", "ijd_keep-j1"]);
    assert_eq!(ok(store.get_import_csv("ijd_keep", "ijd_keep-j1"), "csv kept"), Some(b"csv of ijd_keep".to_vec()));

    // Recreating the pool starts clean, with the job count back at zero and
    // no upload waiting for a job of an old id.
    ok(store.insert_user_pool(&pool("ijd_del")), "reinsert pool");
    for (i, job) in ["ijd_del-j1", "ijd_del-j3"].into_iter().enumerate() {
        ok(store.insert_import_job(&import_job("ijd_del", job, i as i64), 2), "insert job into recreated pool");
    }
    expect_err(
        store.insert_import_job(&import_job("ijd_del", "ijd_del-j4", 9), 2),
        |e| matches!(e, StoreError::LimitExceeded),
        "limit in recreated pool",
    );
    assert_eq!(ok(store.get_import_csv("ijd_del", "ijd_del-j1"), "no old csv"), None);
}

/// A progress callback that records the outcomes it saw into the job's doc
/// (as `ok,err,…`) on top of `base`, bumping the version by one.
fn record_outcomes(base: &ImportJobRecord, lease_until_ms: Option<i64>) -> crate::ImportProgress {
    let base = base.clone();
    Box::new(move |outcomes: &[StoreResult<()>]| {
        let seen: Vec<&str> = outcomes.iter().map(|o| if o.is_ok() { "ok" } else { "err" }).collect();
        ImportJobRecord { version: base.version + 1, doc: seen.join(","), lease_until_ms, ..base.clone() }
    })
}

pub fn import_user_batches_keep_what_they_can(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ijb_pool")), "insert pool");
    let job = import_job("ijb_pool", "ijb-job", 1);
    ok(store.insert_import_job(&job, 10), "insert job");
    ok(store.insert_user(&user("ijb_pool", "taken"), &email_index("taken", "taken@example.com")), "insert taken");
    let batch = vec![
        (user("ijb_pool", "a"), email_index("a", "a@example.com")),
        // Username already in the pool.
        (user("ijb_pool", "taken"), email_index("taken", "other@example.com")),
        // Alias held by another user: neither its user row nor its search rows stay.
        (user("ijb_pool", "b"), email_index("b", "taken@example.com")),
        (user("ijb_pool", "c"), email_index("c", "c@example.com")),
        // Twice in one batch: the second is refused.
        (user("ijb_pool", "c"), email_index("c", "c2@example.com")),
    ];
    let outcomes = ok(store.import_user_batch(batch, record_outcomes(&job, Some(77))), "import batch");
    let kinds: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Ok(()) => "ok".to_owned(),
            Err(StoreError::AlreadyExists(Entity::User)) => "exists".to_owned(),
            Err(StoreError::AliasTaken(kind)) => format!("alias:{kind}"),
            Err(other) => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["ok", "exists", "alias:email", "ok", "exists"]);
    let stored = ok(store.get_import_job("ijb_pool", "ijb-job"), "get job").unwrap_or_else(|| panic!("job gone"));
    assert_eq!((stored.version, stored.doc.as_str(), stored.lease_until_ms), (2, "ok,err,err,ok,err", Some(77)));
    assert_eq!(ok(store.count_users("ijb_pool"), "count"), 3, "taken, a and c");
    assert_eq!(ok(store.get_user("ijb_pool", &UsernameKey::from("b")), "refused user"), None);
    assert!(search_keys(store, "ijb_pool", "username", "b", false).is_empty(), "no search rows of b");
    assert_eq!(alias_owner(store, "ijb_pool", "email", "taken@example.com").as_deref(), Some("taken"));
    assert_eq!(alias_owner(store, "ijb_pool", "email", "c@example.com").as_deref(), Some("c"));
    assert_eq!(alias_owner(store, "ijb_pool", "email", "c2@example.com"), None);
    assert_eq!(ok(store.get_user("ijb_pool", &UsernameKey::from("a")), "imported"), Some(user("ijb_pool", "a")));

    // A user refused for its second alias frees its first for a later row,
    // as if the rows went in one after the other.
    let phone_holder = UserIndex { search: Vec::new(), aliases: pairs(&[("phone_number", "+15550001")]) };
    ok(store.insert_user(&user("ijb_pool", "holder"), &phone_holder), "insert phone holder");
    let both = UserIndex {
        search: pairs(&[("username", "d")]),
        aliases: pairs(&[("email", "x@example.com"), ("phone_number", "+15550001")]),
    };
    let job = ok(store.get_import_job("ijb_pool", "ijb-job"), "get job").unwrap_or_else(|| panic!("job gone"));
    let batch = vec![(user("ijb_pool", "d"), both), (user("ijb_pool", "e"), email_index("e", "x@example.com"))];
    let outcomes = ok(store.import_user_batch(batch, record_outcomes(&job, Some(78))), "second batch");
    assert!(
        matches!(&outcomes[..], [Err(StoreError::AliasTaken(kind)), Ok(())] if kind == "phone_number"),
        "{outcomes:?}"
    );
    assert_eq!(alias_owner(store, "ijb_pool", "email", "x@example.com").as_deref(), Some("e"));
    assert_eq!(ok(store.get_user("ijb_pool", &UsernameKey::from("d")), "refused user"), None);
    assert!(search_keys(store, "ijb_pool", "username", "d", false).is_empty(), "no search rows of d");
    assert_eq!(ok(store.count_users("ijb_pool"), "count"), 5, "taken, a, c, holder and e");

    // A pool that is gone refuses every user and the job with it.
    let outcomes = store.import_user_batch(
        vec![(user("ijb_none", "x"), email_index("x", "x@example.com"))],
        record_outcomes(&import_job("ijb_none", "ijb-none", 1), None),
    );
    expect_err(outcomes, |e| matches!(e, StoreError::NotFound(_)), "batch of a missing job");
    assert_eq!(ok(store.get_user("ijb_none", &UsernameKey::from("x")), "nothing stored"), None);
}

pub fn import_user_batch_is_atomic_with_its_job(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ija_pool")), "insert pool");
    let job = import_job("ija_pool", "ija-job", 1);
    ok(store.insert_import_job(&job, 10), "insert job");
    // Someone else (a StopUserImportJob) moved the job on: the batch built
    // on the old version leaves no user behind and no count changed.
    let mut stopped = job.clone();
    stopped.version = 2;
    stopped.doc = "stopping".into();
    ok(store.update_import_job(&stopped), "stop");
    let batch = vec![
        (user("ija_pool", "a"), email_index("a", "a@example.com")),
        (user("ija_pool", "b"), email_index("b", "b@example.com")),
    ];
    expect_err(
        store.import_user_batch(batch.clone(), record_outcomes(&job, Some(5))),
        |e| matches!(e, StoreError::VersionConflict(Entity::ImportJob)),
        "stale job",
    );
    assert_eq!(ok(store.count_users("ija_pool"), "count"), 0);
    assert_eq!(ok(store.get_user("ija_pool", &UsernameKey::from("a")), "not kept"), None);
    assert_eq!(alias_owner(store, "ija_pool", "email", "a@example.com"), None);
    assert_eq!(ok(store.get_import_job("ija_pool", "ija-job"), "job as it was"), Some(stopped.clone()));
    // Built on the current version, the same batch goes in.
    let outcomes = ok(store.import_user_batch(batch, record_outcomes(&stopped, None)), "current job");
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    assert_eq!(ok(store.count_users("ija_pool"), "count"), 2);
}

pub fn stalled_import_jobs_by_lease(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("ijs_pool")), "insert pool");
    for (job_id, lease) in [("idle", None), ("late", Some(1_000)), ("early", Some(500)), ("live", Some(9_000))] {
        let job = ImportJobRecord { lease_until_ms: lease, ..import_job("ijs_pool", job_id, 1) };
        ok(store.insert_import_job(&job, 10), "insert job");
        assert_eq!(ok(store.get_import_job("ijs_pool", job_id), "get"), Some(job));
    }
    // Other tests' jobs hold leases that ended before 500 (at 77).
    let stalled = |now, limit| {
        let jobs = ok(store.list_stalled_import_jobs(now, limit), "stalled");
        job_ids(&jobs.into_iter().filter(|j| j.pool_id == "ijs_pool").collect::<Vec<_>>())
    };
    assert_eq!(stalled(5_000, 100), ["early", "late"], "oldest lease first; live and idle jobs are not stalled");
    assert_eq!(stalled(1_000, 100), ["early"], "a lease ending now still holds");
    let first = ok(store.list_stalled_import_jobs(5_000, 1), "stalled");
    assert!(first.len() == 1 && first[0].lease_until_ms.is_some_and(|l| l <= 500), "{first:?}");
    // A heartbeat extends the lease of the version it names only, and
    // never gives a lease to a job without one.
    assert!(!ok(store.renew_import_lease("ijs_pool", "early", 2, 1_500), "stale version"));
    assert!(!ok(store.renew_import_lease("ijs_pool", "idle", 1, 1_500), "no lease"));
    assert!(!ok(store.renew_import_lease("ijs_pool", "gone", 1, 1_500), "no job"));
    assert!(ok(store.renew_import_lease("ijs_pool", "early", 1, 1_500), "heartbeat"));
    let beat = ok(store.get_import_job("ijs_pool", "early"), "get").unwrap_or_else(|| panic!("gone"));
    assert_eq!((beat.version, beat.lease_until_ms), (1, Some(1_500)), "version unchanged");
    assert_eq!(stalled(1_200, 100), ["late"], "the heartbeat holds early until 1,500");
    assert_eq!(stalled(5_000, 100), ["late", "early"]);
    // A renewed lease takes the job off the list; finishing clears it.
    let mut renewed = ok(store.get_import_job("ijs_pool", "early"), "get").unwrap_or_else(|| panic!("gone"));
    renewed.version += 1;
    renewed.lease_until_ms = Some(20_000);
    ok(store.update_import_job(&renewed), "renew");
    let mut finished = ok(store.get_import_job("ijs_pool", "late"), "get").unwrap_or_else(|| panic!("gone"));
    finished.version += 1;
    finished.lease_until_ms = None;
    ok(store.update_import_job(&finished), "finish");
    assert_eq!(stalled(10_000, 100), ["live"]);
    assert!(ok(store.delete_user_pool("ijs_pool"), "delete pool"));
    assert!(stalled(i64::MAX, 100).iter().all(|id| !["live", "early"].contains(&id.as_str())));
}

/// The stores (repeated as given) race, in fresh pools named after
/// `prefix`, to insert more import jobs than the pool's limit, and to
/// insert one job id: the limit holds exactly, and exactly one insert of
/// the same job succeeds.
fn race_import_job_limits(stores: &[&dyn Store], prefix: &str, rounds: usize) {
    const MAX: u64 = 3;
    let n = stores.len();
    for round in 0..rounds {
        let pool_id = format!("{prefix}_{round}");
        ok(stores[0].insert_user_pool(&pool(&pool_id)), "insert pool");
        let results = race(n, |i| stores[i].insert_import_job(&import_job(&pool_id, &format!("j{i}"), 1), MAX));
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(StoreError::LimitExceeded)), "{pool_id}: {r:?}");
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count() as u64, MAX, "{pool_id}: job inserts");
        for store in stores {
            assert_eq!(all_job_ids(*store, &pool_id, 100).len() as u64, MAX, "{pool_id}");
        }
        // The count kept on the pool agrees with the rows.
        ok(stores[0].insert_import_job(&import_job(&pool_id, "extra", 2), MAX + 1), "one more under a raised limit");
        expect_err(
            stores[0].insert_import_job(&import_job(&pool_id, "extra2", 2), MAX + 1),
            |e| matches!(e, StoreError::LimitExceeded),
            "raised limit reached",
        );

        // The same job, inserted by everyone at once: one wins.
        let results = race(n, |i| stores[i].insert_import_job(&import_job(&pool_id, "same", 3), u64::MAX));
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(StoreError::AlreadyExists(Entity::ImportJob))), "{pool_id}: {r:?}");
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{pool_id}: same job");
        assert_eq!(all_job_ids(stores[n - 1], &pool_id, 100).len() as u64, MAX + 2, "{pool_id}");
    }
}

pub fn concurrent_import_job_limits(store: &dyn Store) {
    race_import_job_limits(&[store; 8], "cijl_pool", 5);
}

/// Two independently opened stores on one database (like two server
/// processes) race for the import job limit; see
/// [`concurrent_import_job_limits`].
pub fn import_job_races_between_stores(a: &dyn Store, b: &dyn Store) {
    race_import_job_limits(&[a, b, a, b, a, b], "ximport_pool", 10);
}

// ---------------------------------------------------------------------------
// Rate windows

fn hit(store: &dyn Store, key: &str, window_start_ms: i64, now_ms: i64) -> u64 {
    ok(store.hit_rate_window(key, window_start_ms, now_ms), "hit rate window")
}

pub fn rate_window_counting(store: &dyn Store) {
    // Counting within a window.
    for want in 1..=5 {
        assert_eq!(hit(store, "rw-a", 60_000, 60_000 + 10 * want as i64), want);
    }
    // A new window restarts at 1, and leaves the previous one alone.
    assert_eq!(hit(store, "rw-a", 120_000, 120_000), 1);
    assert_eq!(hit(store, "rw-a", 120_000, 120_001), 2);
    assert_eq!(hit(store, "rw-a", 60_000, 120_002), 6, "previous window, late hit");
    // Keys are independent (byte-exact: no case folding, no prefix match).
    assert_eq!(hit(store, "rw-b", 60_000, 60_000), 1);
    assert_eq!(hit(store, "rw-A", 60_000, 60_000), 1);
    assert_eq!(hit(store, "rw-a ", 60_000, 60_000), 1);
    assert_eq!(hit(store, "rw-", 60_000, 60_000), 1);
    assert_eq!(hit(store, "rw-b", 60_000, 60_001), 2);
    assert_eq!(hit(store, "rw-a", 60_000, 60_002), 7);
    assert_eq!(hit(store, "rw-a", 120_000, 120_003), 3);
    // Any window start works (e.g. before the epoch).
    assert_eq!(hit(store, "rw-c", -3_600_000, -3_600_000), 1);
    assert_eq!(hit(store, "rw-c", i64::MAX, -3_600_000), 1);
    assert_eq!(hit(store, "rw-c", -3_600_000, -3_600_000), 2);
}

pub fn rate_window_purge(store: &dyn Store) {
    const NOW: i64 = 10_000_000;
    let kept_for = crate::MAX_RATE_WINDOW_MS + crate::RATE_WINDOW_RETENTION_MS;
    // 40 windows long over, the newest window that may be purged, the oldest
    // that must be kept, and a live one: two hits each, at a time when none
    // of them may be purged yet.
    for _ in 0..2 {
        for i in 0..40 {
            assert!(hit(store, &format!("rwp-old-{i}"), 1_000 + i, 1_000) <= 2);
        }
        assert!(hit(store, "rwp-edge-old", NOW - kept_for, 1_000) <= 2);
        assert!(hit(store, "rwp-edge-kept", NOW - kept_for + 1, 1_000) <= 2);
        assert!(hit(store, "rwp-live", NOW - 1_000, 1_000) <= 2);
    }
    // One call at NOW purges a bounded batch, oldest first: the newest of
    // the 41 purgeable windows is still there afterwards.
    assert_eq!(hit(store, "rwp-new-0", NOW, NOW), 1);
    assert_eq!(hit(store, "rwp-old-39", 1_039, 1_000), 3, "purge is bounded");
    // Enough calls purge every old window.
    for i in 1..40 {
        assert_eq!(hit(store, &format!("rwp-new-{i}"), NOW, NOW), 1);
    }
    // Purged windows restart at 1 if hit again (by a node far behind);
    // newer ones kept their counts.
    for i in 0..40 {
        assert_eq!(hit(store, &format!("rwp-old-{i}"), 1_000 + i, NOW), 1, "rwp-old-{i} purged");
    }
    assert_eq!(hit(store, "rwp-edge-old", NOW - kept_for, NOW), 1, "edge window purged");
    assert_eq!(hit(store, "rwp-edge-kept", NOW - kept_for + 1, NOW), 3, "edge window kept");
    assert_eq!(hit(store, "rwp-live", NOW - 1_000, NOW), 3, "live window kept");
    for i in 0..40 {
        assert_eq!(hit(store, &format!("rwp-new-{i}"), NOW, NOW), 2, "rwp-new-{i} kept");
    }
}

/// `threads` callers, each on one of `stores` in turn, hit one window
/// `per_thread` times at the same moment: every hit gets a different count,
/// and together they count exactly `threads * per_thread` on top of `before`.
fn race_rate_window_hits(stores: &[&dyn Store], key: &str, per_thread: u64, before: u64) {
    let barrier = std::sync::Barrier::new(stores.len());
    let mut counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..per_thread).map(|_| hit(*store, key, 5_000, 5_000)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("hitting thread panicked"),
            })
            .collect()
    });
    counts.sort_unstable();
    let total = stores.len() as u64 * per_thread;
    assert_eq!(counts, (before + 1..=before + total).collect::<Vec<_>>(), "{key}");
    assert_eq!(hit(stores[0], key, 5_000, 5_000), before + total + 1, "{key} after the race");
}

pub fn concurrent_rate_window_hits(store: &dyn Store) {
    race_rate_window_hits(&[store; 8], "crw", 50, 0);
}

/// Two independently opened stores on one database (like two server
/// processes) share every window: hits through either count on one counter,
/// also when they race.
pub fn rate_window_shared_between_stores(a: &dyn Store, b: &dyn Store) {
    for want in 1..=10 {
        let store = if want % 2 == 0 { a } else { b };
        assert_eq!(hit(store, "xrw", 5_000, 5_000), want);
    }
    assert_eq!(hit(b, "xrw-other", 5_000, 5_000), 1);
    race_rate_window_hits(&[a, b, a, b, a, b, a, b], "xrw", 50, 10);
    assert_eq!(hit(a, "xrw-other", 5_000, 5_000), 2);
}

// ---------------------------------------------------------------------------
// Attempt counters

const LOCKOUT: crate::AttemptPolicy =
    crate::AttemptPolicy { free: 5, first_lock_ms: 1_000, max_lock_ms: 900_000, retention_ms: 86_400_000 };

fn reserve(store: &dyn Store, key: &str, now_ms: i64) -> crate::Attempt {
    ok(store.reserve_attempt(key, &LOCKOUT, now_ms), "reserve attempt")
}

pub fn attempt_counting_and_lockout(store: &dyn Store) {
    use crate::Attempt::{Allowed, Locked};
    // A real epoch time in ms: beyond 32 bits, as every `now` is.
    const T: i64 = 1_796_293_930_747;
    for n in 1..=4 {
        assert_eq!(reserve(store, "ac-a", T), Allowed(n));
        assert_eq!(ok(store.attempt_lock("ac-a", T), "lock"), None);
    }
    // The fifth is still allowed and locks for the first period.
    assert_eq!(reserve(store, "ac-a", T), Allowed(5));
    assert_eq!(ok(store.attempt_lock("ac-a", T), "lock"), Some(T + 1_000));
    // While locked nothing counts and the lock is not extended.
    for _ in 0..3 {
        assert_eq!(reserve(store, "ac-a", T + 999), Locked(T + 1_000));
    }
    // After the lock: each attempt counts and doubles the lock.
    assert_eq!(reserve(store, "ac-a", T + 1_000), Allowed(6));
    assert_eq!(ok(store.attempt_lock("ac-a", T + 1_000), "lock"), Some(T + 3_000));
    assert_eq!(reserve(store, "ac-a", T + 3_000), Allowed(7));
    assert_eq!(ok(store.attempt_lock("ac-a", T + 3_000), "lock"), Some(T + 7_000));
    // The lock never exceeds the maximum.
    let mut now = T + 7_000;
    for n in 8..30 {
        assert_eq!(reserve(store, "ac-a", now), Allowed(n));
        let until = ok(store.attempt_lock("ac-a", now), "lock").unwrap_or_default();
        assert!(until - now <= LOCKOUT.max_lock_ms, "lock of {} ms", until - now);
        now = until;
    }
    // Keys are independent; clearing forgets attempts and lock.
    assert_eq!(reserve(store, "ac-b", T), Allowed(1));
    ok(store.clear_attempts("ac-a"), "clear");
    assert_eq!(ok(store.attempt_lock("ac-a", now - 1), "lock"), None);
    assert_eq!(reserve(store, "ac-a", now - 1), Allowed(1));
    assert_eq!(reserve(store, "ac-b", T), Allowed(2));
    ok(store.clear_attempts("ac-never"), "clear of a missing key");
    // Counters expire after the retention period and start over.
    let later = now + LOCKOUT.retention_ms + LOCKOUT.max_lock_ms + 1;
    for i in 0..3 {
        let _ = reserve(store, &format!("ac-filler-{i}"), later);
    }
    assert_eq!(reserve(store, "ac-b", later), Allowed(1), "expired counter starts over");
}

/// Many callers (on one store or on several opened on one database) guess at
/// once: every reservation counts, and at most the free ones are allowed
/// before the lock.
fn race_attempts(stores: &[&dyn Store], key: &str) {
    let barrier = std::sync::Barrier::new(stores.len());
    let outcomes: Vec<crate::Attempt> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..20).map(|_| reserve(*store, key, 5_000)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => panic!("guessing thread panicked"),
            })
            .collect()
    });
    let mut allowed: Vec<u32> =
        outcomes.iter().filter_map(|o| if let crate::Attempt::Allowed(n) = o { Some(*n) } else { None }).collect();
    allowed.sort_unstable();
    assert_eq!(allowed, vec![1, 2, 3, 4, 5], "{key}: allowed attempts");
    assert!(outcomes.iter().all(|o| matches!(o, crate::Attempt::Allowed(_) | crate::Attempt::Locked(6_000))));
}

pub fn concurrent_attempts_evaluate_at_most_the_free_ones(store: &dyn Store) {
    race_attempts(&[store; 8], "cat");
}

/// Two stores on one database (two nodes) share every counter, also racing.
pub fn attempts_shared_between_stores(a: &dyn Store, b: &dyn Store) {
    race_attempts(&[a, b, a, b, a, b, a, b], "xat");
    assert_eq!(ok(b.attempt_lock("xat", 5_000), "lock"), Some(6_000));
    ok(a.clear_attempts("xat"), "clear");
    assert_eq!(ok(b.attempt_lock("xat", 5_000), "lock"), None);
}

// ---------------------------------------------------------------------------
// Identities of identity pools

/// Identity ids are unique among all pools, so each check's ids start with
/// its pool's id.
fn identity(identity_pool_id: &str, identity_id: &str) -> IdentityRecord {
    IdentityRecord {
        identity_pool_id: identity_pool_id.into(),
        identity_id: identity_id.into(),
        created_ms: 1_700_000_000_700,
        modified_ms: 1_700_000_000_700,
        version: 1,
        doc: format!(r#"{{"IdentityId":"{identity_id}","ünï":"🌍"}}"#),
    }
}

fn login(provider: &str, subject: &str) -> IdentityLogin {
    IdentityLogin { provider: provider.into(), subject: subject.into() }
}

fn logins_of(store: &dyn Store, identity_pool_id: &str, identity_id: &str) -> Vec<IdentityLogin> {
    ok(store.list_identity_logins(identity_pool_id, identity_id), "list logins")
}

fn owner_of(store: &dyn Store, identity_pool_id: &str, l: &IdentityLogin) -> Option<String> {
    ok(store.find_identity_by_login(identity_pool_id, l), "find by login").map(|i| i.identity_id)
}

/// Every identity of the pool with its logins, paged `page` at a time.
fn all_identities(store: &dyn Store, identity_pool_id: &str, page: usize) -> Vec<(IdentityRecord, Vec<IdentityLogin>)> {
    let mut seen: Vec<(IdentityRecord, Vec<IdentityLogin>)> = Vec::new();
    loop {
        let after = seen.last().map(|(i, _)| i.identity_id.clone());
        let got = ok(store.list_identities(identity_pool_id, after.as_deref(), page), "list identities");
        assert!(got.len() <= page, "page larger than limit");
        let done = got.len() < page;
        seen.extend(got);
        if done {
            return seen;
        }
    }
}

fn identity_ids(store: &dyn Store, identity_pool_id: &str, page: usize) -> Vec<String> {
    all_identities(store, identity_pool_id, page).into_iter().map(|(i, _)| i.identity_id).collect()
}

pub fn identity_insert_and_get(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("idi_pool")), "insert pool");
    ok(store.insert_identity_pool(&identity_pool("idi_other")), "insert other pool");
    let rec = identity("idi_pool", "idi:1");
    let google = login("accounts.google.com", "g-1");
    let cognito = login("cognito-idp.us-east-1.amazonaws.com/us-east-1_abc", "sub-1");
    let dev = login("login.example.dev", "Ünïcødé 名前");
    // Out of order and repeated: stored once each, listed in (provider, subject) order.
    ok(store.insert_identity(&rec, &[google.clone(), dev.clone(), cognito.clone(), google.clone()]), "insert");
    assert_eq!(ok(store.get_identity("idi_pool", "idi:1"), "get"), Some(rec.clone()));
    assert_eq!(ok(store.get_identity_by_id("idi:1"), "get by id"), Some(rec.clone()));
    assert_eq!(logins_of(store, "idi_pool", "idi:1"), [google.clone(), cognito.clone(), dev.clone()]);
    for l in [&google, &cognito, &dev] {
        assert_eq!(ok(store.find_identity_by_login("idi_pool", l), "find"), Some(rec.clone()), "{l:?}");
    }
    // Lookups are exact and per pool.
    assert_eq!(owner_of(store, "idi_pool", &login("accounts.google.com", "G-1")), None);
    assert_eq!(owner_of(store, "idi_pool", &login("accounts.google.com", "g-")), None);
    assert_eq!(owner_of(store, "idi_other", &google), None);
    assert_eq!(ok(store.get_identity("idi_other", "idi:1"), "get in another pool"), None);
    assert_eq!(ok(store.get_identity("idi_pool", "idi:nope"), "get missing"), None);
    assert_eq!(ok(store.get_identity_by_id("idi:nope"), "get missing by id"), None);
    assert_eq!(ok(store.get_identity_by_id("idi_pool"), "a pool id is no identity id"), None);
    assert!(logins_of(store, "idi_pool", "idi:nope").is_empty());
    assert!(logins_of(store, "idi_other", "idi:1").is_empty());

    // An unauthenticated identity has no logins.
    let bare = identity("idi_pool", "idi:2");
    ok(store.insert_identity(&bare, &[]), "insert without logins");
    assert_eq!(ok(store.get_identity("idi_pool", "idi:2"), "get"), Some(bare));
    assert!(logins_of(store, "idi_pool", "idi:2").is_empty());

    // The same login in another pool is another login.
    ok(store.insert_identity(&identity("idi_other", "idi:3"), std::slice::from_ref(&google)), "same login, other pool");
    assert_eq!(
        ok(store.get_identity_by_id("idi:3"), "get by id in the other pool"),
        Some(identity("idi_other", "idi:3"))
    );
    assert_eq!(owner_of(store, "idi_other", &google).as_deref(), Some("idi:3"));
    assert_eq!(owner_of(store, "idi_pool", &google).as_deref(), Some("idi:1"));

    // Identity ids are unique in the pool and among pools.
    let mut dup = identity("idi_pool", "idi:1");
    dup.doc = "{}".into();
    expect_err(
        store.insert_identity(&dup, &[login("accounts.google.com", "fresh")]),
        |e| matches!(e, StoreError::AlreadyExists(Entity::Identity)),
        "duplicate id",
    );
    expect_err(
        store.insert_identity(&identity("idi_other", "idi:1"), &[login("accounts.google.com", "fresh")]),
        |e| matches!(e, StoreError::AlreadyExists(Entity::Identity)),
        "duplicate id in another pool",
    );
    assert_eq!(ok(store.get_identity("idi_pool", "idi:1"), "get"), Some(rec.clone()));
    assert_eq!(ok(store.get_identity("idi_other", "idi:1"), "get"), None);
    assert_eq!(ok(store.get_identity_by_id("idi:1"), "get by id"), Some(rec));
    assert_eq!(owner_of(store, "idi_pool", &login("accounts.google.com", "fresh")), None);
    assert_eq!(owner_of(store, "idi_other", &login("accounts.google.com", "fresh")), None);

    expect_err(
        store.insert_identity(&identity("idi_nopool", "idi:4"), &[login("accounts.google.com", "g-4")]),
        |e| matches!(e, StoreError::NotFound(Entity::IdentityPool)),
        "identity in a missing pool",
    );
    assert_eq!(ok(store.get_identity("idi_nopool", "idi:4"), "get"), None);
    assert_eq!(owner_of(store, "idi_nopool", &login("accounts.google.com", "g-4")), None);
    // An identity pool is not a user pool.
    ok(store.insert_user_pool(&pool("idi_userpool")), "insert user pool");
    expect_err(
        store.insert_identity(&identity("idi_userpool", "idi:5"), &[]),
        |e| matches!(e, StoreError::NotFound(Entity::IdentityPool)),
        "identity in a user pool",
    );
}

/// A login linked already refuses the whole insert: no identity, no other
/// login, no count.
pub fn identity_insert_with_a_taken_login_writes_nothing(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("idt_pool")), "insert pool");
    let taken = login("accounts.google.com", "taken");
    ok(store.insert_identity(&identity("idt_pool", "idt:1"), std::slice::from_ref(&taken)), "insert holder");
    let fresh = [login("a.example", "fresh"), login("zz.example", "fresh")];
    for logins in [
        vec![fresh[0].clone(), taken.clone(), fresh[1].clone()],
        vec![taken.clone()],
        vec![fresh[1].clone(), taken.clone()],
    ] {
        expect_err(
            store.insert_identity(&identity("idt_pool", "idt:2"), &logins),
            |e| matches!(e, StoreError::AlreadyExists(Entity::IdentityLogin)),
            "taken login",
        );
        assert_eq!(ok(store.get_identity("idt_pool", "idt:2"), "refused identity"), None);
        for l in &fresh {
            assert_eq!(owner_of(store, "idt_pool", l), None, "{l:?} linked by a refused insert");
        }
        assert_eq!(owner_of(store, "idt_pool", &taken).as_deref(), Some("idt:1"));
        assert_eq!(ok(store.count_identities("idt_pool"), "count"), 1);
        assert_eq!(identity_ids(store, "idt_pool", 10), ["idt:1"]);
    }
    // Neither the id nor the fresh logins were used up.
    ok(store.insert_identity(&identity("idt_pool", "idt:2"), &fresh), "insert with the fresh logins");
    assert_eq!(logins_of(store, "idt_pool", "idt:2"), fresh);
    assert_eq!(ok(store.count_identities("idt_pool"), "count"), 2);
}

pub fn identity_link_and_unlink(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("idl_pool")), "insert pool");
    let (a, b, c, d) = (login("p1", "a"), login("p1", "b"), login("p2", "a"), login("p0", "z"));
    ok(store.insert_identity(&identity("idl_pool", "idl:1"), std::slice::from_ref(&a)), "insert 1");
    ok(store.insert_identity(&identity("idl_pool", "idl:2"), std::slice::from_ref(&c)), "insert 2");

    // New logins, and one already linked to the identity (left as it is).
    ok(store.link_identity_logins("idl_pool", "idl:1", &[b.clone(), a.clone(), d.clone(), b.clone()]), "link");
    assert_eq!(logins_of(store, "idl_pool", "idl:1"), [d.clone(), a.clone(), b.clone()]);
    assert_eq!(owner_of(store, "idl_pool", &b).as_deref(), Some("idl:1"));
    ok(store.link_identity_logins("idl_pool", "idl:1", std::slice::from_ref(&a)), "link again");
    ok(store.link_identity_logins("idl_pool", "idl:1", &[]), "link nothing");
    assert_eq!(logins_of(store, "idl_pool", "idl:1"), [d.clone(), a.clone(), b.clone()]);
    // Linking does not touch the identity record.
    assert_eq!(ok(store.get_identity("idl_pool", "idl:1"), "get"), Some(identity("idl_pool", "idl:1")));

    // A login of another identity refuses the whole link.
    let e = login("p3", "e");
    expect_err(
        store.link_identity_logins("idl_pool", "idl:1", &[e.clone(), c.clone()]),
        |e| matches!(e, StoreError::AlreadyExists(Entity::IdentityLogin)),
        "login of another identity",
    );
    assert_eq!(owner_of(store, "idl_pool", &e), None, "refused link wrote a login");
    assert_eq!(owner_of(store, "idl_pool", &c).as_deref(), Some("idl:2"));
    assert_eq!(logins_of(store, "idl_pool", "idl:2"), std::slice::from_ref(&c));

    expect_err(
        store.link_identity_logins("idl_pool", "idl:nope", std::slice::from_ref(&e)),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "link to a missing identity",
    );
    expect_err(
        store.link_identity_logins("idl_pool", "idl:nope", &[]),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "link nothing to a missing identity",
    );
    expect_err(
        store.link_identity_logins("idl_nopool", "idl:1", std::slice::from_ref(&e)),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "link in a missing pool",
    );
    assert_eq!(owner_of(store, "idl_pool", &e), None);

    // Unlinking counts only the identity's own logins.
    assert_eq!(ok(store.unlink_identity_logins("idl_pool", "idl:1", &[c.clone(), e.clone()]), "unlink others"), 0);
    assert_eq!(owner_of(store, "idl_pool", &c).as_deref(), Some("idl:2"));
    assert_eq!(
        ok(store.unlink_identity_logins("idl_pool", "idl:1", &[b.clone(), d.clone(), b.clone(), c.clone()]), "unlink"),
        2
    );
    assert_eq!(logins_of(store, "idl_pool", "idl:1"), std::slice::from_ref(&a));
    assert_eq!(owner_of(store, "idl_pool", &b), None);
    assert_eq!(ok(store.unlink_identity_logins("idl_pool", "idl:1", std::slice::from_ref(&b)), "unlink again"), 0);
    assert_eq!(ok(store.unlink_identity_logins("idl_pool", "idl:nope", std::slice::from_ref(&a)), "unlink missing"), 0);
    assert_eq!(ok(store.unlink_identity_logins("idl_pool", "idl:1", &[]), "unlink nothing"), 0);
    // An unlinked login is free for any identity.
    ok(store.link_identity_logins("idl_pool", "idl:2", std::slice::from_ref(&b)), "relink elsewhere");
    assert_eq!(logins_of(store, "idl_pool", "idl:2"), [b.clone(), c.clone()]);
    // Unlinking every login keeps the identity.
    assert_eq!(ok(store.unlink_identity_logins("idl_pool", "idl:1", std::slice::from_ref(&a)), "unlink last"), 1);
    assert!(ok(store.get_identity("idl_pool", "idl:1"), "get").is_some());
    assert_eq!(ok(store.count_identities("idl_pool"), "count"), 2);
}

pub fn identity_merge(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("idm_pool")), "insert pool");
    let (a, b, c) = (login("p", "a"), login("p", "b"), login("q", "c"));
    ok(store.insert_identity(&identity("idm_pool", "idm:src"), &[b.clone(), c.clone()]), "insert source");
    ok(store.insert_identity(&identity("idm_pool", "idm:dst"), std::slice::from_ref(&a)), "insert destination");
    ok(store.insert_identity(&identity("idm_pool", "idm:bare"), &[]), "insert bare");
    assert_eq!(ok(store.count_identities("idm_pool"), "count"), 3);

    // Missing either side: nothing changes.
    for (source, destination) in [("idm:src", "idm:nope"), ("idm:nope", "idm:dst"), ("idm:nope", "idm:nope")] {
        expect_err(
            store.merge_identities("idm_pool", source, destination),
            |e| matches!(e, StoreError::NotFound(Entity::Identity)),
            "merge with a missing identity",
        );
    }
    expect_err(
        store.merge_identities("idm_nopool", "idm:src", "idm:dst"),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "merge in a missing pool",
    );
    assert_eq!(logins_of(store, "idm_pool", "idm:src"), [b.clone(), c.clone()]);
    assert_eq!(ok(store.count_identities("idm_pool"), "count"), 3);

    // Merging an identity into itself leaves it be.
    ok(store.merge_identities("idm_pool", "idm:src", "idm:src"), "merge into itself");
    assert_eq!(logins_of(store, "idm_pool", "idm:src"), [b.clone(), c.clone()]);
    assert_eq!(ok(store.count_identities("idm_pool"), "count"), 3);

    let destination = ok(store.get_identity("idm_pool", "idm:dst"), "get destination");
    ok(store.merge_identities("idm_pool", "idm:src", "idm:dst"), "merge");
    assert_eq!(ok(store.get_identity("idm_pool", "idm:src"), "source gone"), None);
    assert_eq!(ok(store.get_identity_by_id("idm:src"), "source gone by id"), None);
    assert!(logins_of(store, "idm_pool", "idm:src").is_empty());
    assert_eq!(logins_of(store, "idm_pool", "idm:dst"), [a.clone(), b.clone(), c.clone()]);
    for l in [&a, &b, &c] {
        assert_eq!(owner_of(store, "idm_pool", l).as_deref(), Some("idm:dst"), "{l:?}");
    }
    // The destination record itself is the caller's to update.
    assert_eq!(ok(store.get_identity("idm_pool", "idm:dst"), "get destination"), destination);
    assert_eq!(ok(store.count_identities("idm_pool"), "count"), 2);
    assert_eq!(identity_ids(store, "idm_pool", 10), ["idm:bare", "idm:dst"]);
    // The source is gone: merging it again finds nothing.
    expect_err(
        store.merge_identities("idm_pool", "idm:src", "idm:dst"),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "merge a merged identity",
    );

    // An identity without logins merges too.
    ok(store.merge_identities("idm_pool", "idm:bare", "idm:dst"), "merge bare");
    assert_eq!(logins_of(store, "idm_pool", "idm:dst"), [a, b, c]);
    assert_eq!(ok(store.count_identities("idm_pool"), "count"), 1);
    // The source's id is free again.
    ok(store.insert_identity(&identity("idm_pool", "idm:src"), &[]), "reuse the source id");
    assert_eq!(ok(store.count_identities("idm_pool"), "count"), 2);
}

pub fn identity_compare_and_set(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("idc_pool")), "insert pool");
    let rec = identity("idc_pool", "idc:1");
    let l = login("p", "s");
    ok(store.insert_identity(&rec, std::slice::from_ref(&l)), "insert");

    let mut v2 = rec.clone();
    v2.version = 2;
    v2.doc = r#"{"v":2}"#.into();
    v2.modified_ms += 10;
    // An update never rewrites the creation time.
    v2.created_ms = 1;
    ok(store.update_identity(&v2), "update to v2");
    let stored = ok(store.get_identity("idc_pool", "idc:1"), "get").unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored, IdentityRecord { created_ms: rec.created_ms, ..v2.clone() });
    // Nor does it touch the logins.
    assert_eq!(logins_of(store, "idc_pool", "idc:1"), [l]);

    // A second writer that also read v1 loses; so do skips and nonsense.
    let mut stale = rec.clone();
    stale.version = 2;
    stale.doc = "{}".into();
    for version in [2, 4, 1, 0, i64::MIN, i64::MAX] {
        stale.version = version;
        expect_err(
            store.update_identity(&stale),
            |e| matches!(e, StoreError::VersionConflict(Entity::Identity)),
            "stale update",
        );
    }
    assert_eq!(ok(store.get_identity("idc_pool", "idc:1"), "get"), Some(stored.clone()));

    let mut v3 = stored;
    v3.version = 3;
    v3.doc = r#"{"v":3}"#.into();
    ok(store.update_identity(&v3), "update to v3");
    assert_eq!(ok(store.get_identity("idc_pool", "idc:1"), "get"), Some(v3.clone()));
    assert_eq!(ok(store.get_identity_by_id("idc:1"), "get by id"), Some(v3.clone()));
    let listed = all_identities(store, "idc_pool", 10);
    assert_eq!(listed.first().map(|(i, _)| i), Some(&v3));

    let mut missing = identity("idc_pool", "idc:missing");
    missing.version = 2;
    expect_err(
        store.update_identity(&missing),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "update missing",
    );
    let mut wrong_pool = v3;
    wrong_pool.identity_pool_id = "idc_nopool".into();
    wrong_pool.version = 4;
    expect_err(
        store.update_identity(&wrong_pool),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "update in another pool",
    );
}

pub fn identity_delete_and_pool_cascade(store: &dyn Store) {
    for id in ["idd_pool", "idd_keep"] {
        ok(store.insert_identity_pool(&identity_pool(id)), "insert pool");
        for i in 0..3 {
            let identity_id = format!("{id}:{i}");
            ok(store.insert_identity(&identity(id, &identity_id), &[login("p", &format!("s{i}"))]), "insert");
        }
    }
    assert!(ok(store.delete_identity("idd_pool", "idd_pool:1"), "delete"));
    assert_eq!(ok(store.get_identity("idd_pool", "idd_pool:1"), "get deleted"), None);
    assert_eq!(ok(store.get_identity_by_id("idd_pool:1"), "get deleted by id"), None);
    assert!(logins_of(store, "idd_pool", "idd_pool:1").is_empty());
    assert_eq!(owner_of(store, "idd_pool", &login("p", "s1")), None);
    assert!(!ok(store.delete_identity("idd_pool", "idd_pool:1"), "delete again"));
    assert!(!ok(store.delete_identity("idd_keep", "idd_pool:0"), "delete from another pool"));
    assert!(!ok(store.delete_identity("idd_nopool", "idd_pool:0"), "delete in a missing pool"));
    assert_eq!(ok(store.count_identities("idd_pool"), "count"), 2);
    assert_eq!(identity_ids(store, "idd_pool", 10), ["idd_pool:0", "idd_pool:2"]);
    // The login is free again, and the id.
    ok(store.insert_identity(&identity("idd_pool", "idd_pool:3"), &[login("p", "s1")]), "reuse the login");
    ok(store.insert_identity(&identity("idd_pool", "idd_pool:1"), &[]), "reuse the id");
    assert_eq!(ok(store.count_identities("idd_pool"), "count"), 4);

    assert!(ok(store.delete_identity_pool("idd_pool"), "delete pool"));
    assert_eq!(ok(store.count_identities("idd_pool"), "count"), 0);
    assert!(ok(store.list_identities("idd_pool", None, 10), "list").is_empty());
    assert_eq!(ok(store.get_identity("idd_pool", "idd_pool:0"), "get"), None);
    assert_eq!(ok(store.get_identity_by_id("idd_pool:0"), "get by id"), None);
    assert!(logins_of(store, "idd_pool", "idd_pool:0").is_empty());
    assert_eq!(owner_of(store, "idd_pool", &login("p", "s0")), None);

    // Recreating the pool brings nothing back, and the ids and logins are free.
    ok(store.insert_identity_pool(&identity_pool("idd_pool")), "reinsert pool");
    assert_eq!(ok(store.count_identities("idd_pool"), "count"), 0);
    assert_eq!(owner_of(store, "idd_pool", &login("p", "s0")), None);
    ok(store.insert_identity(&identity("idd_pool", "idd_pool:0"), &[login("p", "s0")]), "reinsert identity");
    assert_eq!(ok(store.count_identities("idd_pool"), "count"), 1);

    // The other pool is intact.
    assert_eq!(ok(store.count_identities("idd_keep"), "count other"), 3);
    let kept = all_identities(store, "idd_keep", 10);
    let expected: Vec<(IdentityRecord, Vec<IdentityLogin>)> =
        (0..3).map(|i| (identity("idd_keep", &format!("idd_keep:{i}")), vec![login("p", &format!("s{i}"))])).collect();
    assert_eq!(kept, expected);
}

pub fn identity_list_order_and_pagination(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("ido_pool")), "insert pool");
    ok(store.insert_identity_pool(&identity_pool("ido_other")), "insert other pool");
    // Byte order: uppercase before lowercase, digits compared as text, "é"
    // after every ASCII character.
    let ids = ["ido:m", "ido:B", "ido:a", "ido:z9", "ido:z10", "ido:é", "ido:_", "ido:%"];
    for (n, id) in ids.iter().enumerate() {
        // The n-th with n logins, given in reverse order.
        let logins: Vec<IdentityLogin> =
            (0..n).rev().map(|i| login(&format!("p{}", i % 2), &format!("{id}/s{i}"))).collect();
        ok(store.insert_identity(&identity("ido_pool", id), &logins), "insert");
    }
    ok(store.insert_identity(&identity("ido_other", "ido:c"), &[login("p0", "s0")]), "insert other");
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    for page in [1, 2, 3, 100] {
        assert_eq!(identity_ids(store, "ido_pool", page), expected, "page size {page}");
    }
    let full = ok(store.list_identities("ido_pool", None, 100), "list");
    for (rec, logins) in &full {
        assert_eq!(rec, &identity("ido_pool", &rec.identity_id));
        let mut want = logins_of(store, "ido_pool", &rec.identity_id);
        assert_eq!(logins, &want, "{}", rec.identity_id);
        want.sort();
        assert_eq!(logins, &want, "logins of {} out of order", rec.identity_id);
        let n = ids.iter().position(|id| *id == rec.identity_id).unwrap_or_else(|| panic!("stray identity"));
        assert_eq!(logins.len(), n);
    }

    let after = |cursor: &str, limit: usize| -> Vec<String> {
        ok(store.list_identities("ido_pool", Some(cursor), limit), "list after")
            .into_iter()
            .map(|(i, _)| i.identity_id)
            .collect()
    };
    // Strictly after the cursor, which need not be an id of the pool.
    assert_eq!(after("ido:a", 2), ["ido:m", "ido:z10"]);
    assert_eq!(after("ido:b", 100), ["ido:m", "ido:z10", "ido:z9", "ido:é"]);
    assert_eq!(after("", 1), ["ido:%"]);
    assert_eq!(after("ido:c", 1), ["ido:m"], "another pool's id as the cursor");
    assert!(after("ido:é", 10).is_empty(), "after the last");
    assert!(after("\u{10FFFF}", 10).is_empty());
    assert!(ok(store.list_identities("ido_pool", None, 0), "limit 0").is_empty());
    assert_eq!(ok(store.list_identities("ido_pool", None, usize::MAX), "no limit"), full);
    assert!(ok(store.list_identities("ido_nopool", None, 10), "missing pool").is_empty());
    let other = ok(store.list_identities("ido_other", None, 10), "other pool");
    assert_eq!(other, vec![(identity("ido_other", "ido:c"), vec![login("p0", "s0")])]);
}

pub fn identity_counts(store: &dyn Store) {
    ok(store.insert_identity_pool(&identity_pool("idn_pool")), "insert pool");
    ok(store.insert_identity_pool(&identity_pool("idn_other")), "insert other pool");
    assert_eq!(ok(store.count_identities("idn_pool"), "count"), 0);
    assert_eq!(ok(store.count_identities("idn_nopool"), "count missing pool"), 0);
    // Enough identities to touch every count shard.
    for i in 0..40 {
        let id = format!("idn:{i:02}");
        ok(store.insert_identity(&identity("idn_pool", &id), &[login("p", &id)]), "insert");
    }
    ok(store.insert_identity(&identity("idn_other", "idn:other"), &[]), "insert other");
    assert_eq!(ok(store.count_identities("idn_pool"), "count"), 40);

    // Refused writes leave the count alone.
    expect_err(
        store.insert_identity(&identity("idn_pool", "idn:00"), &[]),
        |e| matches!(e, StoreError::AlreadyExists(Entity::Identity)),
        "duplicate",
    );
    expect_err(
        store.insert_identity(&identity("idn_pool", "idn:new"), &[login("p", "idn:01")]),
        |e| matches!(e, StoreError::AlreadyExists(Entity::IdentityLogin)),
        "taken login",
    );
    assert!(!ok(store.delete_identity("idn_pool", "idn:nobody"), "delete missing"));
    expect_err(
        store.merge_identities("idn_pool", "idn:nobody", "idn:00"),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "merge missing",
    );
    ok(store.link_identity_logins("idn_pool", "idn:00", &[login("q", "x")]), "link");
    assert_eq!(ok(store.unlink_identity_logins("idn_pool", "idn:00", &[login("q", "x")]), "unlink"), 1);
    let mut v2 = identity("idn_pool", "idn:00");
    v2.version = 2;
    ok(store.update_identity(&v2), "update");
    let mut pool_v2 = identity_pool("idn_pool");
    pool_v2.version = 2;
    ok(store.update_identity_pool(&pool_v2), "update pool");
    assert_eq!(ok(store.count_identities("idn_pool"), "count"), 40);

    for i in 0..10 {
        assert!(ok(store.delete_identity("idn_pool", &format!("idn:{i:02}")), "delete"));
    }
    assert_eq!(ok(store.count_identities("idn_pool"), "count"), 30);
    for i in (10..20).step_by(2) {
        ok(store.merge_identities("idn_pool", &format!("idn:{i:02}"), &format!("idn:{:02}", i + 1)), "merge");
    }
    assert_eq!(ok(store.count_identities("idn_pool"), "count"), 25);
    assert_eq!(identity_ids(store, "idn_pool", 7).len(), 25);
    assert_eq!(ok(store.count_identities("idn_other"), "count other"), 1);
}

/// The stores (repeated as given) race, in fresh pools named after `prefix`:
/// to insert identities with one login, to link one login to different
/// identities, and to merge two identities into each other. Exactly one wins
/// each race, the losers write nothing, and the count stays exact.
fn race_identity_writes(stores: &[&dyn Store], prefix: &str, rounds: usize) {
    let n = stores.len();
    for round in 0..rounds {
        let pool_id = format!("{prefix}_{round}");
        ok(stores[0].insert_identity_pool(&identity_pool(&pool_id)), "insert pool");
        let id = |what: &str, i: usize| format!("{pool_id}:{what}-{i}");

        // First sign-ins with one login: one identity.
        let shared = login("accounts.google.com", "shared");
        let results = race(n, |i| {
            let own = login("own.example", &i.to_string());
            stores[i].insert_identity(&identity(&pool_id, &id("first", i)), &[own, shared.clone()])
        });
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(StoreError::AlreadyExists(Entity::IdentityLogin))), "{pool_id}: {r:?}");
        }
        let winners: Vec<usize> = (0..n).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "{pool_id}: first sign-ins {results:?}");
        let winner = id("first", winners[0]);
        for store in stores {
            assert_eq!(owner_of(*store, &pool_id, &shared), Some(winner.clone()), "{pool_id}");
            assert_eq!(ok(store.count_identities(&pool_id), "count"), 1, "{pool_id}");
            assert_eq!(identity_ids(*store, &pool_id, 10), std::slice::from_ref(&winner), "{pool_id}");
        }
        for i in (0..n).filter(|i| !winners.contains(i)) {
            assert_eq!(ok(stores[0].get_identity(&pool_id, &id("first", i)), "loser"), None, "{pool_id}");
            assert_eq!(owner_of(stores[0], &pool_id, &login("own.example", &i.to_string())), None, "{pool_id}");
        }

        // One login linked to several identities at once: to one of them.
        for i in 0..n {
            ok(stores[0].insert_identity(&identity(&pool_id, &id("link", i)), &[]), "insert");
        }
        let contested = login("cognito-idp.us-east-1.amazonaws.com/us-east-1_x", "contested");
        let results = race(n, |i| {
            let own = login("own.link", &i.to_string());
            stores[i].link_identity_logins(&pool_id, &id("link", i), &[contested.clone(), own])
        });
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(StoreError::AlreadyExists(Entity::IdentityLogin))), "{pool_id}: {r:?}");
        }
        let winners: Vec<usize> = (0..n).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "{pool_id}: links {results:?}");
        assert_eq!(owner_of(stores[n - 1], &pool_id, &contested), Some(id("link", winners[0])), "{pool_id}");
        for i in 0..n {
            let expected = usize::from(winners.contains(&i)) * 2;
            assert_eq!(logins_of(stores[0], &pool_id, &id("link", i)).len(), expected, "{pool_id}");
        }
        assert_eq!(ok(stores[0].count_identities(&pool_id), "count"), 1 + n as u64, "{pool_id}");

        // Two identities merged into each other from every side: one merge
        // wins, the others find an identity gone.
        let (x, y) = (id("merge", 0), id("merge", 1));
        ok(stores[0].insert_identity(&identity(&pool_id, &x), &[login("m", "x")]), "insert x");
        ok(stores[0].insert_identity(&identity(&pool_id, &y), &[login("m", "y")]), "insert y");
        let results = race(n, |i| {
            let (source, destination) = if i % 2 == 0 { (&x, &y) } else { (&y, &x) };
            stores[i].merge_identities(&pool_id, source, destination)
        });
        for r in &results {
            assert!(matches!(r, Ok(()) | Err(StoreError::NotFound(Entity::Identity))), "{pool_id}: {r:?}");
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{pool_id}: merges {results:?}");
        let survivors: Vec<String> = [&x, &y]
            .into_iter()
            .filter(|i| ok(stores[0].get_identity(&pool_id, i), "get").is_some())
            .cloned()
            .collect();
        assert_eq!(survivors.len(), 1, "{pool_id}");
        assert_eq!(logins_of(stores[n - 1], &pool_id, &survivors[0]), [login("m", "x"), login("m", "y")]);
        let total = 2 + n as u64;
        for store in stores {
            assert_eq!(ok(store.count_identities(&pool_id), "count"), total, "{pool_id}");
        }
        assert_eq!(identity_ids(stores[0], &pool_id, 3).len() as u64, total, "{pool_id}");
    }
}

pub fn concurrent_identity_races(store: &dyn Store) {
    race_identity_writes(&[store; 6], "cid_pool", 5);
}

/// Two independently opened stores on one database (like two server
/// processes) race for identities; see [`concurrent_identity_races`].
pub fn identity_races_between_stores(a: &dyn Store, b: &dyn Store) {
    race_identity_writes(&[a, b, a, b, a, b], "xid_pool", 10);
}

// ---------------------------------------------------------------------------
// Cognito Sync datasets and records

const SYNC_LIMITS: SyncLimits =
    SyncLimits { datasets_per_identity: 20, records_per_dataset: 1024, bytes_per_dataset: 1 << 20 };

/// An identity pool named `pool` with the identities `ids` (each prefixed
/// with the pool's id, as identity ids are unique among all pools).
fn sync_identities(store: &dyn Store, pool: &str, ids: &[&str]) -> Vec<String> {
    ok(store.insert_identity_pool(&identity_pool(pool)), "insert pool");
    ids.iter()
        .map(|i| {
            let id = format!("{pool}:{i}");
            ok(store.insert_identity(&identity(pool, &id), &[]), "insert identity");
            id
        })
        .collect()
}

fn put(key: &str, value: &str, expected_sync_count: i64) -> SyncPatch {
    SyncPatch { key: key.into(), value: Some(value.into()), expected_sync_count, device_modified_ms: Some(7) }
}

fn remove(key: &str, expected_sync_count: i64) -> SyncPatch {
    SyncPatch { key: key.into(), value: None, expected_sync_count, device_modified_ms: None }
}

type SyncOutcome = Result<(DatasetRecord, Vec<SyncRecord>), SyncRefusal>;

fn sync_update(store: &dyn Store, pool: &str, id: &str, name: &str, patches: &[SyncPatch], now: i64) -> SyncOutcome {
    ok(store.update_sync_records(pool, id, name, patches, "device-1", now, &SYNC_LIMITS, false), "update records")
}

fn sync_update_ok(
    store: &dyn Store,
    pool: &str,
    id: &str,
    name: &str,
    patches: &[SyncPatch],
    now: i64,
) -> DatasetRecord {
    match sync_update(store, pool, id, name, patches, now) {
        Ok((dataset, _)) => dataset,
        Err(r) => panic!("{pool}/{id}/{name}: refused {r:?}"),
    }
}

fn dataset_of(store: &dyn Store, pool: &str, id: &str, name: &str) -> Option<DatasetRecord> {
    ok(store.get_dataset(pool, id, name), "get dataset")
}

/// Every record of the dataset above `after_sync_count`, paged `page` at a time.
fn all_sync_records(
    store: &dyn Store,
    pool: &str,
    id: &str,
    name: &str,
    after_sync_count: i64,
    page: usize,
) -> Vec<SyncRecord> {
    let mut seen: Vec<SyncRecord> = Vec::new();
    loop {
        let after = seen.last().map(|r| (r.sync_count, r.key.clone()));
        let got = ok(
            store.list_sync_records(
                pool,
                id,
                name,
                after_sync_count,
                after.as_ref().map(|(c, k)| (*c, k.as_str())),
                page,
            ),
            "list records",
        );
        assert!(got.len() <= page, "page larger than limit");
        let done = got.len() < page;
        seen.extend(got);
        if done {
            return seen;
        }
    }
}

fn record_keys(records: &[SyncRecord]) -> Vec<(i64, String, Option<String>)> {
    records.iter().map(|r| (r.sync_count, r.key.clone(), r.value.clone())).collect()
}

pub fn sync_dataset_created_by_first_update(store: &dyn Store) {
    let ids = sync_identities(store, "syc_pool", &["a"]);
    let id = ids[0].as_str();
    assert_eq!(dataset_of(store, "syc_pool", id, "ds"), None);

    // Changing nothing (no patches, removing an absent record) creates nothing.
    for patches in [vec![], vec![remove("nothing", 0)]] {
        let (dataset, records) = match sync_update(store, "syc_pool", id, "ds", &patches, 1_000) {
            Ok(r) => r,
            Err(r) => panic!("refused {r:?}"),
        };
        assert_eq!((dataset.sync_count, dataset.deleted, dataset.num_records), (0, true, 0));
        assert!(records.is_empty());
        assert_eq!(dataset_of(store, "syc_pool", id, "ds"), None);
    }
    assert_eq!(ok(store.identity_sync_usage("syc_pool", id), "usage"), SyncUsage::default());

    let (dataset, records) =
        match sync_update(store, "syc_pool", id, "ds", &[put("b", "ünï", 0), put("a", "1", 0)], 1_000) {
            Ok(r) => r,
            Err(r) => panic!("refused {r:?}"),
        };
    let expected = DatasetRecord {
        identity_pool_id: "syc_pool".into(),
        identity_id: id.into(),
        name: "ds".into(),
        created_ms: 1_000,
        modified_ms: 1_000,
        last_modified_by: "device-1".into(),
        sync_count: 1,
        num_records: 2,
        data_bytes: 2 + 6,
        deleted: false,
    };
    assert_eq!(dataset, expected);
    assert_eq!(dataset_of(store, "syc_pool", id, "ds"), Some(expected.clone()));
    let a = SyncRecord {
        key: "a".into(),
        value: Some("1".into()),
        sync_count: 1,
        modified_ms: 1_000,
        last_modified_by: "device-1".into(),
        device_modified_ms: Some(7),
    };
    let b = SyncRecord { key: "b".into(), value: Some("ünï".into()), ..a.clone() };
    assert_eq!(records, [a.clone(), b.clone()]);
    assert_eq!(all_sync_records(store, "syc_pool", id, "ds", 0, 10), [a, b]);
    assert!(all_sync_records(store, "syc_pool", id, "ds", 1, 10).is_empty());

    expect_err(
        store.update_sync_records(
            "syc_pool",
            "syc_pool:nobody",
            "ds",
            &[put("a", "1", 0)],
            "d",
            1,
            &SYNC_LIMITS,
            false,
        ),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "missing identity",
    );
    expect_err(
        store.update_sync_records("syc_nopool", id, "ds", &[put("a", "1", 0)], "d", 1, &SYNC_LIMITS, false),
        |e| matches!(e, StoreError::NotFound(Entity::Identity)),
        "missing pool",
    );
    assert_eq!(dataset_of(store, "syc_pool", id, "other"), None);
}

pub fn sync_counts_rise_and_stale_patches_write_nothing(store: &dyn Store) {
    let ids = sync_identities(store, "sys_pool", &["a"]);
    let (p, id) = ("sys_pool", ids[0].as_str());
    sync_update_ok(store, p, id, "ds", &[put("a", "1", 0), put("b", "2", 0)], 10);
    let d = sync_update_ok(store, p, id, "ds", &[put("a", "11", 1)], 20);
    assert_eq!((d.sync_count, d.num_records, d.data_bytes), (2, 2, 3 + 2));
    assert_eq!(record_keys(&all_sync_records(store, p, id, "ds", 1, 10)), [(2, "a".into(), Some("11".into()))]);

    // One stale patch refuses the whole call.
    let before = dataset_of(store, p, id, "ds");
    let usage = ok(store.identity_sync_usage(p, id), "usage");
    let r = sync_update(store, p, id, "ds", &[put("b", "22", 1), put("c", "3", 0), put("a", "x", 1)], 30);
    assert_eq!(r, Err(SyncRefusal::Conflict { key: "a".into() }));
    let r = sync_update(store, p, id, "ds", &[put("new", "3", 1)], 30);
    assert_eq!(r, Err(SyncRefusal::Conflict { key: "new".into() }), "expected count of a missing record is 0");
    assert_eq!(dataset_of(store, p, id, "ds"), before);
    assert_eq!(ok(store.identity_sync_usage(p, id), "usage"), usage);
    assert_eq!(
        record_keys(&all_sync_records(store, p, id, "ds", 0, 10)),
        [(1, "b".into(), Some("2".into())), (2, "a".into(), Some("11".into()))]
    );

    // A removal leaves a valueless record for incremental reads.
    let d = sync_update_ok(store, p, id, "ds", &[remove("b", 1)], 40);
    assert_eq!((d.sync_count, d.num_records, d.data_bytes), (3, 1, 3));
    assert_eq!(record_keys(&all_sync_records(store, p, id, "ds", 2, 10)), [(3, "b".into(), None)]);
    // Removing it again changes nothing and answers with the record as it is.
    let (d, records) = sync_update(store, p, id, "ds", &[remove("b", 3)], 50).unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((d.sync_count, d.modified_ms), (3, 40));
    assert_eq!(record_keys(&records), [(3, "b".into(), None)]);
    // No-op patches ride along with real ones without being written.
    let (d, records) = sync_update(store, p, id, "ds", &[remove("zz", 0), put("b", "back", 3)], 60)
        .unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!((d.sync_count, d.num_records, d.data_bytes), (4, 2, 3 + 5));
    assert_eq!(record_keys(&records), [(4, "b".into(), Some("back".into()))]);
    assert_eq!(all_sync_records(store, p, id, "ds", 0, 10).len(), 2);
}

pub fn sync_limits_at_the_boundary(store: &dyn Store) {
    let ids = sync_identities(store, "syl_pool", &["a"]);
    let (p, id) = ("syl_pool", ids[0].as_str());
    let limits = SyncLimits { datasets_per_identity: 2, records_per_dataset: 3, bytes_per_dataset: 10 };
    let up = |name: &str, patches: &[SyncPatch]| {
        ok(store.update_sync_records(p, id, name, patches, "d", 5, &limits, false), "update records")
    };
    // Exactly at both limits: 3 records, 10 bytes.
    assert!(up("d1", &[put("k1", "ab", 0), put("k2", "cd", 0)]).is_ok());
    assert!(up("d1", &[put("k3", "", 0)]).is_ok());
    let at_limit = dataset_of(store, p, id, "d1");
    assert_eq!(at_limit.as_ref().map(|d| (d.num_records, d.data_bytes)), Some((3, 10)));
    assert_eq!(up("d1", &[put("k4", "", 0)]), Err(SyncRefusal::TooManyRecords));
    assert_eq!(up("d1", &[put("k3", "x", 2)]), Err(SyncRefusal::TooManyBytes));
    assert_eq!(dataset_of(store, p, id, "d1"), at_limit);
    // Swapping one record for another stays within them.
    assert!(up("d1", &[remove("k3", 2), put("k4", "", 0)]).is_ok());
    assert_eq!(ok(store.identity_sync_usage(p, id), "usage").data_bytes, 10);

    assert!(up("d2", &[put("x", "", 0)]).is_ok());
    let usage = ok(store.identity_sync_usage(p, id), "usage");
    assert_eq!(usage.datasets, 2);
    assert_eq!(up("d3", &[put("x", "", 0)]), Err(SyncRefusal::TooManyDatasets));
    assert_eq!(dataset_of(store, p, id, "d3"), None);
    assert_eq!(ok(store.identity_sync_usage(p, id), "usage"), usage);
    // A refused call on a new dataset leaves nothing, records included.
    assert_eq!(up("d3", &[put("x", "12345678901", 0)]), Err(SyncRefusal::TooManyDatasets));
    assert!(all_sync_records(store, p, id, "d3", 0, 10).is_empty());
    // An existing dataset is not a new one.
    assert!(up("d2", &[put("y", "", 0)]).is_ok());

    assert!(ok(store.delete_dataset(p, id, "d2", 6), "delete"));
    assert!(up("d3", &[put("x", "", 0)]).is_ok());
    // Reviving a tombstone counts as a new dataset.
    assert_eq!(up("d2", &[put("x", "", 0)]), Err(SyncRefusal::TooManyDatasets));
    assert_eq!(dataset_of(store, p, id, "d2").map(|d| d.deleted), Some(true));
    assert_eq!(ok(store.identity_sync_usage(p, id), "usage").datasets, 2);
    // A new dataset over the byte limit on its own.
    assert!(ok(store.delete_dataset(p, id, "d3", 7), "delete"));
    assert_eq!(up("d4", &[put("x", "1234567890", 0)]), Err(SyncRefusal::TooManyBytes));
    assert_eq!(dataset_of(store, p, id, "d4"), None);
    assert_eq!(ok(store.identity_sync_usage(p, id), "usage").datasets, 1);
}

pub fn sync_delete_leaves_a_tombstone(store: &dyn Store) {
    let ids = sync_identities(store, "syd_pool", &["a"]);
    let (p, id) = ("syd_pool", ids[0].as_str());
    assert!(!ok(store.delete_dataset(p, id, "ds", 1), "delete missing"));
    sync_update_ok(store, p, id, "ds", &[put("a", "1", 0)], 10);
    sync_update_ok(store, p, id, "ds", &[put("b", "2", 0)], 20);
    assert!(ok(store.delete_dataset(p, id, "ds", 30), "delete"));
    let d = dataset_of(store, p, id, "ds").unwrap_or_else(|| panic!("no tombstone"));
    assert_eq!((d.sync_count, d.deleted, d.num_records, d.data_bytes, d.modified_ms), (3, true, 0, 0, 30));
    assert!(all_sync_records(store, p, id, "ds", 0, 10).is_empty());
    assert!(ok(store.list_datasets(p, id, None, 10), "list").is_empty());
    assert!(!ok(store.delete_dataset(p, id, "ds", 40), "delete again"));
    assert_eq!(dataset_of(store, p, id, "ds").map(|d| d.sync_count), Some(3));

    // Records are gone: their old counts are stale, 0 is current.
    assert_eq!(
        sync_update(store, p, id, "ds", &[put("a", "x", 1)], 50),
        Err(SyncRefusal::Conflict { key: "a".into() })
    );
    let d = sync_update_ok(store, p, id, "ds", &[put("a", "again", 0)], 60);
    assert_eq!((d.sync_count, d.deleted, d.num_records, d.data_bytes), (4, false, 1, 6));
    assert_eq!(record_keys(&all_sync_records(store, p, id, "ds", 0, 10)), [(4, "a".into(), Some("again".into()))]);
    assert_eq!(ok(store.list_datasets(p, id, None, 10), "list"), [d]);
}

pub fn sync_listing_order_and_paging(store: &dyn Store) {
    let ids = sync_identities(store, "syo_pool", &["a", "b"]);
    let (p, id) = ("syo_pool", ids[0].as_str());
    for name in ["b", "é", "a", "c", "B"] {
        sync_update_ok(store, p, id, name, &[put("k", "v", 0)], 1);
    }
    sync_update_ok(store, p, &ids[1], "other", &[put("k", "v", 0)], 1);
    assert!(ok(store.delete_dataset(p, id, "c", 2), "delete"));
    let names = |after: Option<&str>, limit: usize| -> Vec<String> {
        ok(store.list_datasets(p, id, after, limit), "list").into_iter().map(|d| d.name).collect()
    };
    assert_eq!(names(None, 10), ["B", "a", "b", "é"]);
    assert_eq!(names(None, 2), ["B", "a"]);
    assert_eq!(names(Some("a"), 2), ["b", "é"]);
    assert_eq!(names(Some("b"), 10), ["é"]);
    assert!(names(Some("é"), 10).is_empty());
    assert!(names(None, 0).is_empty());

    // Records: several updates of overlapping keys.
    let mut counts: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    let mut removed = std::collections::BTreeSet::new();
    for round in 0..6_i64 {
        let patches: Vec<SyncPatch> = (0..5)
            .map(|i| (round * 3 + i) % 11)
            .map(|k| {
                let key = format!("k{k:02}");
                let at = counts.get(&key).copied().unwrap_or(0);
                if k % 4 == 3 && at > 0 {
                    remove(&key, at)
                } else {
                    put(&key, &format!("v{round}"), at)
                }
            })
            .collect();
        let d = sync_update_ok(store, p, id, "records", &patches, 100 + round);
        for patch in &patches {
            // Removing a removed record changes nothing.
            if patch.value.is_some() || removed.insert(patch.key.clone()) {
                counts.insert(patch.key.clone(), d.sync_count);
            }
            if patch.value.is_some() {
                removed.remove(&patch.key);
            }
        }
    }
    let mut expected: Vec<(i64, String)> = counts.iter().map(|(k, c)| (*c, k.clone())).collect();
    expected.sort();
    let full = all_sync_records(store, p, id, "records", 0, 100);
    assert_eq!(full.iter().map(|r| (r.sync_count, r.key.clone())).collect::<Vec<_>>(), expected);
    for page in [1, 2, 3, 7] {
        assert_eq!(all_sync_records(store, p, id, "records", 0, page), full, "page {page}");
    }
    for after in 0..7 {
        let tail: Vec<SyncRecord> = full.iter().filter(|r| r.sync_count > after).cloned().collect();
        assert_eq!(all_sync_records(store, p, id, "records", after, 2), tail, "after {after}");
    }
    // A cursor below the sync count bound excludes nothing more.
    let from_cursor = ok(store.list_sync_records(p, id, "records", 4, Some((1, "k10")), 100), "list");
    assert_eq!(from_cursor, all_sync_records(store, p, id, "records", 4, 100));
    let (c, k) = (full[3].sync_count, full[3].key.as_str());
    assert_eq!(ok(store.list_sync_records(p, id, "records", 0, Some((c, k)), 100), "list"), full[4..]);
    assert!(ok(store.list_sync_records(p, id, "records", 0, None, 0), "limit 0").is_empty());
    assert!(ok(store.list_sync_records(p, id, "missing", 0, None, 10), "missing").is_empty());
    assert!(ok(store.list_sync_records(p, &ids[1], "records", 0, None, 10), "other identity").is_empty());
}

pub fn sync_usage_is_exact(store: &dyn Store) {
    let ids = sync_identities(store, "syu_pool", &["a", "b", "c"]);
    sync_identities(store, "syu_other", &["a"]);
    let p = "syu_pool";
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let usage = |id: &str| ok(store.identity_sync_usage(p, id), "usage");
    let pool = || ok(store.pool_sync_usage(p), "pool usage");
    assert_eq!(pool(), SyncUsage::default());
    assert_eq!(ok(store.pool_sync_usage("syu_nopool"), "missing pool"), SyncUsage::default());

    sync_update_ok(store, p, a, "d1", &[put("k", "1234", 0), put("é", "x", 0)], 100);
    sync_update_ok(store, p, a, "d2", &[put("k", "1", 0)], 110);
    sync_update_ok(store, p, b, "d1", &[put("kk", "", 0)], 120);
    sync_update_ok(store, "syu_other", "syu_other:a", "d1", &[put("k", "1", 0)], 500);
    assert_eq!(usage(a), SyncUsage { datasets: 2, data_bytes: 5 + 3 + 2, modified_ms: 110 });
    assert_eq!(usage(b), SyncUsage { datasets: 1, data_bytes: 2, modified_ms: 120 });
    assert_eq!(usage(c), SyncUsage::default());
    assert_eq!(pool(), SyncUsage { datasets: 2, data_bytes: 12, modified_ms: 120 });

    // Replacing, removing, refusing, deleting.
    sync_update_ok(store, p, a, "d1", &[put("k", "1", 1), remove("é", 1)], 130);
    assert_eq!(usage(a), SyncUsage { datasets: 2, data_bytes: 2 + 2, modified_ms: 130 });
    assert!(sync_update(store, p, a, "d1", &[put("k", "123456", 1)], 140).is_err());
    assert_eq!(usage(a).data_bytes, 4);
    assert!(ok(store.delete_dataset(p, b, "d1", 150), "delete"));
    assert_eq!(usage(b), SyncUsage { datasets: 0, data_bytes: 0, modified_ms: 150 });
    assert_eq!(pool(), SyncUsage { datasets: 1, data_bytes: 4, modified_ms: 150 });
    sync_update_ok(store, p, b, "d1", &[put("kk", "", 0)], 160);
    sync_update_ok(store, p, c, "d1", &[put("c", "ccc", 0)], 170);
    assert_eq!(pool(), SyncUsage { datasets: 3, data_bytes: 4 + 2 + 4, modified_ms: 170 });

    // An identity's sync data goes with it, and from the pool's usage.
    assert!(ok(store.delete_identity(p, b), "delete identity"));
    assert_eq!(usage(b), SyncUsage::default());
    assert_eq!(dataset_of(store, p, b, "d1"), None);
    assert!(all_sync_records(store, p, b, "d1", 0, 10).is_empty());
    assert_eq!(pool(), SyncUsage { datasets: 2, data_bytes: 8, modified_ms: 170 });
    // A merged identity's (the source's) live datasets become the destination's merged
    // datasets, `{name}.{source}`, with their live records; its usage moves with them.
    sync_update_ok(store, p, c, "gone", &[put("g", "g", 0)], 171);
    assert!(ok(store.delete_dataset(p, c, "gone", 172), "delete"));
    sync_update_ok(store, p, c, "d1", &[put("c2", "x", 0), put("c3", "y", 0)], 173);
    sync_update_ok(store, p, c, "d1", &[remove("c3", 2)], 174);
    let source_dataset = dataset_of(store, p, c, "d1").unwrap_or_else(|| panic!("no source dataset"));
    ok(store.merge_identities(p, c, a), "merge");
    assert_eq!(usage(c), SyncUsage::default());
    assert_eq!(dataset_of(store, p, c, "d1"), None);
    let merged_name = format!("d1.{c}");
    let merged = dataset_of(store, p, a, &merged_name).unwrap_or_else(|| panic!("no merged dataset"));
    assert_eq!(
        merged,
        DatasetRecord { identity_id: a.into(), name: merged_name.clone(), ..source_dataset },
        "the source's dataset as it was, under its merged name"
    );
    let records: Vec<(String, Option<String>)> =
        all_sync_records(store, p, a, &merged_name, 0, 10).into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(records, [("c".into(), Some("ccc".into())), ("c2".into(), Some("x".into()))], "live records only");
    assert_eq!(dataset_of(store, p, a, &format!("gone.{c}")), None, "a deleted dataset is not merged");
    assert_eq!(merged.num_records, 2);
    assert_eq!(usage(a), SyncUsage { datasets: 3, data_bytes: 4 + 4 + 3, modified_ms: 174 });
    assert_eq!(pool(), SyncUsage { datasets: 1, data_bytes: 4 + 4 + 3, modified_ms: 174 });
    // A re-created identity starts from nothing.
    ok(store.insert_identity(&identity(p, b), &[]), "re-insert");
    assert_eq!(usage(b), SyncUsage::default());
    assert_eq!(dataset_of(store, p, b, "d1"), None);

    assert!(ok(store.delete_identity_pool(p), "delete pool"));
    assert_eq!(pool(), SyncUsage::default());
    assert_eq!(usage(a), SyncUsage::default());
    assert_eq!(ok(store.pool_sync_usage("syu_other"), "other pool").data_bytes, 2);
}

/// The stores (repeated as given) race, in fresh pools named after `prefix`:
/// to update one record with the same expected sync count (exactly one wins,
/// the others get `Conflict`), and to create more datasets than the identity's
/// limit (exactly the limit are created). Counts and usage stay exact.
fn race_sync_updates(stores: &[&dyn Store], prefix: &str, rounds: usize) {
    let n = stores.len();
    for round in 0..rounds {
        let pool = format!("{prefix}_{round}");
        let ids = sync_identities(stores[0], &pool, &["a", "b"]);
        let id = ids[0].as_str();
        let mut expected_count = 0;
        for step in 0..3_i64 {
            let results = race(n, |i| {
                let patches = [put("shared", &format!("v{i}"), expected_count), put(&format!("own{step}-{i}"), "x", 0)];
                ok(
                    stores[i].update_sync_records(&pool, id, "ds", &patches, "d", 10 + step, &SYNC_LIMITS, false),
                    "update",
                )
            });
            let winners: Vec<usize> = (0..n).filter(|i| results[*i].is_ok()).collect();
            assert_eq!(winners.len(), 1, "{pool}: {results:?}");
            for r in results.iter().filter(|r| r.is_err()) {
                assert_eq!(r, &Err(SyncRefusal::Conflict { key: "shared".into() }), "{pool}");
            }
            let w = winners[0];
            expected_count = step + 1;
            for store in stores {
                let d = dataset_of(*store, &pool, id, "ds").unwrap_or_else(|| panic!("{pool}: no dataset"));
                assert_eq!(d.sync_count, expected_count, "{pool}");
                let shared = all_sync_records(*store, &pool, id, "ds", expected_count - 1, 100);
                assert!(shared.iter().any(|r| r.key == "shared" && r.value == Some(format!("v{w}"))), "{pool}");
            }
            // The loser's own records were not written: each winner's own record
            // is at most once.
            let own = all_sync_records(stores[0], &pool, id, "ds", 0, 100).len() as i64 - 1;
            let d = dataset_of(stores[0], &pool, id, "ds").map(|d| d.num_records);
            assert_eq!(d, Some(own + 1), "{pool}");
        }

        // More new datasets at once than the identity may have.
        let other = ids[1].as_str();
        let limits = SyncLimits { datasets_per_identity: 3, ..SYNC_LIMITS };
        let results = race(n, |i| {
            ok(
                stores[i].update_sync_records(
                    &pool,
                    other,
                    &format!("ds{i}"),
                    &[put("k", "v", 0)],
                    "d",
                    20,
                    &limits,
                    false,
                ),
                "new",
            )
        });
        let created = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 3.min(n), "{pool}: {results:?}");
        assert!(results.iter().all(|r| r.is_ok() || r == &Err(SyncRefusal::TooManyDatasets)), "{pool}");
        let usage = ok(stores[n - 1].identity_sync_usage(&pool, other), "usage");
        assert_eq!((usage.datasets, usage.data_bytes), (created as i64, 2 * created as i64), "{pool}");
        assert_eq!(ok(stores[0].list_datasets(&pool, other, None, 100), "list").len(), created, "{pool}");
        let pool_usage = ok(stores[0].pool_sync_usage(&pool), "pool usage");
        let a_bytes = ok(stores[0].identity_sync_usage(&pool, id), "usage").data_bytes;
        assert_eq!(pool_usage.datasets, 2, "{pool}");
        assert_eq!(pool_usage.data_bytes, a_bytes + 2 * created as i64, "{pool}");
    }
}

pub fn concurrent_sync_updates(store: &dyn Store) {
    race_sync_updates(&[store; 8], "csy_pool", 3);
}

/// Two independently opened stores on one database (like two server
/// processes) race for one record and for datasets; see [`concurrent_sync_updates`].
pub fn sync_races_between_stores(a: &dyn Store, b: &dyn Store) {
    race_sync_updates(&[a, b, a, b, a, b, a, b], "xsy_pool", 5);
}

/// `list_dataset_records` answers what `get_dataset` and `list_sync_records` do on a quiet
/// dataset: live, paged, removed records included, a tombstone, a missing dataset.
pub fn sync_dataset_records_match_separate_reads(store: &dyn Store) {
    let ids = sync_identities(store, "sdr_pool", &["a"]);
    let id = ids[0].as_str();
    assert_eq!(ok(store.list_dataset_records("sdr_pool", id, "none", 0, None, 10), "missing"), (None, vec![]));
    sync_update_ok(store, "sdr_pool", id, "ds", &[put("a", "1", 0), put("b", "2", 0), put("c", "3", 0)], 10);
    sync_update_ok(store, "sdr_pool", id, "ds", &[remove("b", 1), put("d", "4", 0)], 20);
    /// (after sync count, after (sync count, key), limit)
    type Page<'a> = (i64, Option<(i64, &'a str)>, usize);
    let cases: [Page; 5] = [(0, None, 10), (0, None, 2), (1, None, 10), (0, Some((1, "a")), 2), (2, None, 10)];
    for (after_count, after, limit) in cases {
        let joined = ok(store.list_dataset_records("sdr_pool", id, "ds", after_count, after, limit), "joined");
        let dataset = dataset_of(store, "sdr_pool", id, "ds");
        let records = ok(store.list_sync_records("sdr_pool", id, "ds", after_count, after, limit), "records");
        assert_eq!(joined, (dataset, records), "after {after_count} {after:?} limit {limit}");
    }
    let (dataset, none) = ok(store.list_dataset_records("sdr_pool", id, "ds", 0, None, 0), "limit 0");
    assert!(dataset.is_some() && none.is_empty());
    assert!(ok(store.delete_dataset("sdr_pool", id, "ds", 30), "delete"));
    let (tombstone, records) = ok(store.list_dataset_records("sdr_pool", id, "ds", 0, None, 10), "tombstone");
    assert!(tombstone.is_some_and(|d| d.deleted && d.sync_count == 3) && records.is_empty());
    assert!(ok(store.delete_identity_pool("sdr_pool"), "delete pool"));
}

/// One store rewrites a record over and over while readers on the other list the dataset:
/// every answer is one state (no record newer than the dataset's sync count, the record
/// always there).
pub fn sync_dataset_records_are_one_snapshot_between_stores(a: &dyn Store, b: &dyn Store) {
    let ids = sync_identities(a, "sds_pool", &["a"]);
    let id = ids[0].as_str();
    sync_update_ok(a, "sds_pool", id, "ds", &[put("k", "0", 0)], 1);
    let stores = [a, b, b, b];
    let torn = race(4, |i| {
        let mut torn = Vec::new();
        for n in 1..=40_i64 {
            if i == 0 {
                let patches = [put("k", &n.to_string(), n)];
                let _ =
                    ok(stores[0].update_sync_records("sds_pool", id, "ds", &patches, "d", 2, &SYNC_LIMITS, false), "w");
            } else {
                let (dataset, records) = ok(stores[i].list_dataset_records("sds_pool", id, "ds", 0, None, 10), "read");
                let count = dataset.map_or(-1, |d| d.sync_count);
                if records.len() != 1 || records.iter().any(|r| r.sync_count > count) {
                    torn.push((count, records));
                }
            }
        }
        torn
    });
    assert!(torn.concat().is_empty(), "answers that are not one state: {torn:?}");
    assert!(ok(a.delete_identity_pool("sds_pool"), "delete pool"));
}

fn domain(name: &str, pool_id: &str, custom: bool) -> DomainRecord {
    DomainRecord {
        domain: name.into(),
        pool_id: pool_id.into(),
        custom,
        created_ms: 5,
        modified_ms: 5,
        version: 1,
        doc: format!("{{\"d\":\"{name}\"}}"),
    }
}

/// A domain name is one pool's; a pool has one prefix and one custom domain at most; updates
/// are compare-and-set; deleting the pool deletes its domains.
pub fn domains_are_unique_across_pools(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("dom_a")), "pool a");
    ok(store.insert_user_pool(&pool("dom_b")), "pool b");
    ok(store.insert_domain(&domain("dom-a", "dom_a", false)), "prefix");
    let taken = |e: &StoreError| matches!(e, StoreError::AlreadyExists(Entity::Domain));
    expect_err(store.insert_domain(&domain("dom-a", "dom_b", false)), taken, "a name taken by another pool");
    expect_err(store.insert_domain(&domain("dom-a2", "dom_a", false)), taken, "a second prefix domain");
    ok(store.insert_domain(&domain("auth.dom-a.example", "dom_a", true)), "custom beside prefix");
    expect_err(
        store.insert_domain(&domain("dom-x", "dom_nopool", false)),
        |e| matches!(e, StoreError::NotFound(Entity::UserPool)),
        "missing pool",
    );
    assert_eq!(ok(store.get_domain("dom-a"), "get"), Some(domain("dom-a", "dom_a", false)));
    assert_eq!(ok(store.get_domain("dom-none"), "get missing"), None);
    let listed: Vec<String> = ok(store.list_pool_domains("dom_a"), "list").into_iter().map(|d| d.domain).collect();
    assert_eq!(listed, ["dom-a", "auth.dom-a.example"], "prefix first");

    let mut changed = DomainRecord { modified_ms: 6, version: 2, doc: "{}".into(), ..domain("dom-a", "dom_a", false) };
    ok(store.update_domain(&changed), "update");
    expect_err(store.update_domain(&changed), |e| matches!(e, StoreError::VersionConflict(_)), "stale update");
    changed.version = 3;
    assert_eq!(ok(store.get_domain("dom-a"), "after update"), Some(DomainRecord { version: 2, ..changed.clone() }));

    assert!(!ok(store.delete_domain("dom_b", "dom-a"), "another pool's"), "a pool deletes its own domains only");
    assert!(ok(store.delete_domain("dom_a", "dom-a"), "delete"));
    ok(store.insert_domain(&domain("dom-a", "dom_b", false)), "a freed name is anyone's");
    assert!(ok(store.delete_user_pool("dom_a"), "delete pool a"));
    assert_eq!(ok(store.get_domain("auth.dom-a.example"), "cascade"), None);
    assert!(ok(store.delete_user_pool("dom_b"), "delete pool b"));
    assert_eq!(ok(store.get_domain("dom-a"), "cascade"), None);
}

/// Eight pools on two stores race for one domain name: exactly one gets it.
pub fn domain_races_between_stores(a: &dyn Store, b: &dyn Store) {
    let stores = [a, b, a, b, a, b, a, b];
    for i in 0..8 {
        ok(a.insert_user_pool(&pool(&format!("domr_{i}"))), "pool");
    }
    let results = race(8, |i| stores[i].insert_domain(&domain("domr-shared", &format!("domr_{i}"), false)));
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::AlreadyExists(Entity::Domain)))),
        "{results:?}"
    );
    for i in 0..8 {
        assert!(ok(a.delete_user_pool(&format!("domr_{i}")), "delete pool"));
    }
}

fn branding(pool_id: &str, branding_id: &str, client_id: &str) -> ManagedLoginBrandingRecord {
    ManagedLoginBrandingRecord {
        pool_id: pool_id.into(),
        branding_id: branding_id.into(),
        client_id: client_id.into(),
        created_ms: 7,
        modified_ms: 7,
        version: 1,
        doc: format!("{{\"b\":\"{branding_id}\"}}"),
    }
}

/// A pool with the given app clients.
fn pool_with_clients(store: &dyn Store, pool_id: &str, clients: &[&str]) {
    ok(store.insert_user_pool(&pool(pool_id)), "pool");
    for client_id in clients {
        ok(store.insert_app_client(&client(pool_id, client_id), None), "client");
    }
}

/// An app client has one branding style at most, under an id unique in its pool; the pool's
/// limit holds; updates are compare-and-set; a style of megabytes round-trips; deleting the
/// client or the pool deletes its style.
pub fn managed_login_brandings_one_per_client(store: &dyn Store) {
    pool_with_clients(store, "mlb_a", &["c1", "c2", "c3"]);
    pool_with_clients(store, "mlb_b", &["c1"]);
    let exists = |e: &StoreError| matches!(e, StoreError::AlreadyExists(Entity::ManagedLoginBranding));
    ok(store.insert_managed_login_branding(&branding("mlb_a", "b1", "c1"), 2), "first");
    expect_err(store.insert_managed_login_branding(&branding("mlb_a", "b2", "c1"), 2), exists, "a second style");
    expect_err(store.insert_managed_login_branding(&branding("mlb_a", "b1", "c2"), 2), exists, "a taken id");
    expect_err(
        store.insert_managed_login_branding(&branding("mlb_a", "bx", "nosuch"), 2),
        |e| matches!(e, StoreError::NotFound(Entity::AppClient)),
        "missing client",
    );
    expect_err(
        store.insert_managed_login_branding(&branding("mlb_none", "bx", "c1"), 2),
        |e| matches!(e, StoreError::NotFound(Entity::UserPool)),
        "missing pool",
    );
    ok(store.insert_managed_login_branding(&branding("mlb_a", "b2", "c2"), 2), "second client");
    expect_err(
        store.insert_managed_login_branding(&branding("mlb_a", "b3", "c3"), 2),
        |e| matches!(e, StoreError::LimitExceeded),
        "over the pool's limit",
    );
    ok(store.insert_managed_login_branding(&branding("mlb_b", "b1", "c1"), 2), "ids and limits are per pool");

    assert_eq!(ok(store.get_managed_login_branding("mlb_a", "b1"), "get"), Some(branding("mlb_a", "b1", "c1")));
    assert_eq!(ok(store.get_managed_login_branding("mlb_b", "b2"), "another pool's"), None);
    let by_client = ok(store.get_client_managed_login_branding("mlb_a", "c2"), "by client");
    assert_eq!(by_client, Some(branding("mlb_a", "b2", "c2")));
    assert_eq!(ok(store.get_client_managed_login_branding("mlb_a", "c3"), "unstyled client"), None);

    // Image files make documents of megabytes.
    let big = format!("{{\"bytes\":\"{}\"}}", "A".repeat(3 << 20));
    let mut changed =
        ManagedLoginBrandingRecord { modified_ms: 8, version: 2, doc: big, ..branding("mlb_a", "b2", "c2") };
    ok(store.update_managed_login_branding(&changed), "update");
    expect_err(
        store.update_managed_login_branding(&changed),
        |e| matches!(e, StoreError::VersionConflict(Entity::ManagedLoginBranding)),
        "stale update",
    );
    assert_eq!(ok(store.get_managed_login_branding("mlb_a", "b2"), "after update"), Some(changed.clone()));
    changed.branding_id = "nosuch".into();
    expect_err(
        store.update_managed_login_branding(&changed),
        |e| matches!(e, StoreError::NotFound(Entity::ManagedLoginBranding)),
        "missing style",
    );

    assert!(!ok(store.delete_managed_login_branding("mlb_b", "b2"), "another pool's"), "a pool deletes its own only");
    assert!(ok(store.delete_managed_login_branding("mlb_a", "b2"), "delete"));
    assert!(!ok(store.delete_managed_login_branding("mlb_a", "b2"), "delete again"));
    assert!(ok(store.delete_app_client("mlb_a", "c1"), "delete client"));
    assert_eq!(ok(store.get_managed_login_branding("mlb_a", "b1"), "client cascade"), None);
    ok(store.insert_managed_login_branding(&branding("mlb_a", "b3", "c3"), 2), "freed slots");
    assert!(ok(store.delete_user_pool("mlb_a"), "delete pool"));
    assert_eq!(ok(store.get_client_managed_login_branding("mlb_a", "c3"), "pool cascade"), None);
    assert!(ok(store.delete_user_pool("mlb_b"), "delete pool b"));
    assert_eq!(ok(store.get_managed_login_branding("mlb_b", "b1"), "pool cascade"), None);
}

/// Two stores race: eight creates of one client's style, of which exactly one wins; then
/// eight creates for eight clients of a pool whose limit is three, of which exactly three win.
pub fn managed_login_branding_races_between_stores(a: &dyn Store, b: &dyn Store) {
    let stores = [a, b, a, b, a, b, a, b];
    let clients: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    pool_with_clients(a, "mlbr_pool", &clients.iter().map(String::as_str).collect::<Vec<_>>());
    let results =
        race(8, |i| stores[i].insert_managed_login_branding(&branding("mlbr_pool", &format!("one{i}"), "c0"), 20));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::AlreadyExists(Entity::ManagedLoginBranding)))),
        "{results:?}"
    );
    let results = race(7, |i| {
        stores[i].insert_managed_login_branding(&branding("mlbr_pool", &format!("many{i}"), &clients[i + 1]), 3)
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "one slot of three was taken: {results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::LimitExceeded))), "{results:?}");
    assert!(ok(a.delete_user_pool("mlbr_pool"), "delete pool"));
}

/// Every change queued so far, claimed far in the future and finished, so that a check
/// starts from an empty queue (claims are global, not per pool).
fn drain_sync_changes(store: &dyn Store) {
    for change in ok(store.claim_sync_changes(i64::MAX / 2, 0, 10_000), "drain") {
        ok(store.finish_sync_change(change.id), "finish");
    }
}

/// `notify` queues one change per call that changes the dataset, in its transaction (a
/// conflict, a refusal or a no-op queues nothing); a claim holds a change for its lease,
/// after which it is claimed again (attempts counting); finishing removes it; deleting the
/// identity pool removes its queued changes.
pub fn sync_changes_queue_for_delivery(store: &dyn Store) {
    drain_sync_changes(store);
    let ids = sync_identities(store, "sq_pool", &["a"]);
    let id = ids[0].as_str();
    let update = |patches: &[SyncPatch], notify: bool| {
        ok(store.update_sync_records("sq_pool", id, "ds", patches, "dev-1", 100, &SYNC_LIMITS, notify), "update")
    };
    assert!(update(&[put("k", "v", 0)], false).is_ok());
    assert!(ok(store.claim_sync_changes(1_000, 10, 10), "claim").is_empty(), "notify off queues nothing");
    assert!(update(&[put("k", "w", 1)], true).is_ok());
    assert_eq!(update(&[put("k", "x", 1)], true), Err(SyncRefusal::Conflict { key: "k".into() }));
    assert!(update(&[remove("absent", 0)], true).is_ok(), "a no-op");
    let tiny = SyncLimits { records_per_dataset: 1, ..SYNC_LIMITS };
    let refused = store.update_sync_records("sq_pool", id, "ds", &[put("more", "v", 0)], "d", 100, &tiny, true);
    assert_eq!(ok(refused, "refused"), Err(SyncRefusal::TooManyRecords));

    let claimed = ok(store.claim_sync_changes(1_000, 50, 10), "claim");
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let change = &claimed[0];
    let expected = SyncChange {
        id: change.id,
        identity_pool_id: "sq_pool".into(),
        identity_id: id.into(),
        dataset: "ds".into(),
        sync_count: 2,
        modified_by: "dev-1".into(),
        created_ms: 100,
        attempts: 1,
    };
    assert_eq!(change, &expected);
    assert!(ok(store.claim_sync_changes(1_049, 50, 10), "held").is_empty(), "held until its lease ends");
    let again = ok(store.claim_sync_changes(1_050, 50, 10), "again");
    assert_eq!(again, vec![SyncChange { attempts: 2, ..expected.clone() }], "claimed again once the lease ran out");
    // Handed back: due again at the time given, not at the end of the lease.
    assert!(ok(store.retry_sync_change(change.id, 1_060), "retry"));
    assert!(ok(store.claim_sync_changes(1_059, 50, 10), "before the retry").is_empty());
    let third = ok(store.claim_sync_changes(1_060, 50, 10), "at the retry");
    assert_eq!(third, vec![SyncChange { attempts: 3, ..expected.clone() }]);
    assert!(ok(store.finish_sync_change(change.id), "finish"));
    assert!(!ok(store.finish_sync_change(change.id), "finish twice"));
    assert!(!ok(store.retry_sync_change(change.id, 0), "retry after finish"));
    assert!(ok(store.claim_sync_changes(i64::MAX / 2, 0, 10), "after finish").is_empty());

    // Order, limit, and the pool's deletion.
    for n in 3..6 {
        assert!(update(&[put("k", &format!("v{n}"), n - 1)], true).is_ok());
    }
    let first = ok(store.claim_sync_changes(2_000, 10, 2), "first two");
    assert_eq!(first.iter().map(|c| c.sync_count).collect::<Vec<_>>(), [3, 4], "oldest first, at most the limit");
    assert!(ok(store.delete_identity_pool("sq_pool"), "delete pool"));
    assert!(ok(store.claim_sync_changes(i64::MAX / 2, 0, 10), "after pool deletion").is_empty());
}

/// The outbox holds identity pools' messages (Cognito Sync's pushes) beside user pools';
/// deleting either kind of pool deletes its messages and only them.
pub fn outbox_messages_of_both_pool_kinds(store: &dyn Store) {
    ok(store.insert_user_pool(&pool("obk_users")), "insert user pool");
    ok(store.insert_identity_pool(&identity_pool("obk_identities")), "insert identity pool");
    let push = OutboxMessage { channel: "PUSH".into(), ..message("obk_identities", "obk_identities:a", "push") };
    let pushed = ok(store.append_message(&push), "append push");
    let mailed = ok(store.append_message(&message("obk_users", "alice", "mail")), "append mail");
    assert_eq!(
        ok(store.list_messages(Some("obk_identities"), None, None, 10), "list"),
        [OutboxMessage { id: pushed, ..push.clone() }]
    );
    assert!(ok(store.delete_identity_pool("obk_identities"), "delete identity pool"));
    assert!(ok(store.list_messages(Some("obk_identities"), None, None, 10), "gone").is_empty());
    let left = ok(store.list_messages(Some("obk_users"), None, None, 10), "kept");
    assert_eq!(left.iter().map(|m| m.id).collect::<Vec<_>>(), [mailed]);
    expect_err(store.append_message(&push), |e| matches!(e, StoreError::NotFound(_)), "push to a deleted pool");
    assert!(ok(store.delete_user_pool("obk_users"), "delete user pool"));
    assert!(ok(store.list_messages(Some("obk_users"), None, None, 10), "gone").is_empty());
}

/// Eight claimers on two stores share a queue of changes: each change is claimed by
/// exactly one of them.
pub fn sync_change_claims_between_stores(a: &dyn Store, b: &dyn Store) {
    drain_sync_changes(a);
    let ids = sync_identities(a, "sqx_pool", &["a"]);
    let id = ids[0].as_str();
    for n in 0..40_i64 {
        let patches = [put("k", &format!("v{n}"), n)];
        let outcome = a.update_sync_records("sqx_pool", id, "ds", &patches, "d", 10, &SYNC_LIMITS, true);
        assert!(ok(outcome, "update").is_ok());
    }
    let stores = [a, b, a, b, a, b, a, b];
    let claims = race(8, |i| {
        let mut mine = Vec::new();
        loop {
            let batch = ok(stores[i].claim_sync_changes(1_000, 60_000, 3), "claim");
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch.into_iter().map(|c| c.sync_count));
        }
    });
    let mut all: Vec<i64> = claims.concat();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>(), "every change claimed exactly once: {claims:?}");
    assert!(ok(a.delete_identity_pool("sqx_pool"), "delete pool"));
}

// ---------------------------------------------------------------------------
// Query plans

/// A statement parameter, for backend suites that EXPLAIN the store's SQL.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlParam {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

/// The statements [`crate::UserStore::search_users`] runs on `pool_id` for
/// representative arguments (equality and prefix, with and without a
/// cursor, with wildcard characters and multi-byte prefixes), with `$N`
/// placeholders and their parameters. Backend suites EXPLAIN them to check
/// that every one is an index range scan, already in result order.
pub fn search_statements(pool_id: &str) -> Vec<(String, Vec<SqlParam>)> {
    // (attribute, value, prefix, after)
    type Case<'a> = (&'a str, &'a str, bool, Option<(&'a str, &'a str)>);
    let cases: [Case<'_>; 8] = [
        ("status", "CONFIRMED", false, None),
        ("status", "CONFIRMED", false, Some(("CONFIRMED", "user-000500"))),
        ("email", "user-0001", true, None),
        ("email", "user-0001", true, Some(("user-00012@example.com", "user-00012"))),
        ("email", "50%_é日", true, None),
        ("name", "\u{10FFFF}", true, None),
        ("email", "", true, Some(("user-0005@example.com", "user-0005"))),
        ("email", "", true, None),
    ];
    cases
        .into_iter()
        .filter_map(|(attribute, value, prefix, after)| {
            crate::sql::search_statement(pool_id, attribute, value, prefix, after, 60)
        })
        .map(|(sql, params)| (sql, params.into_iter().map(sql_param).collect()))
        .collect()
}

/// The statements [`crate::GroupStore::list_users_in_group`] and
/// [`crate::GroupStore::list_groups_for_user`] run for `pool_id`, `group`
/// and `username_key`, with and without a cursor, with `$N` placeholders
/// and their parameters. Backend suites EXPLAIN them to check that each is
/// an index range scan, already in result order.
pub fn group_statements(pool_id: &str, group: &str, username_key: &str) -> Vec<(String, Vec<SqlParam>)> {
    vec![
        crate::sql::group_members_statement(pool_id, group, None, 60),
        crate::sql::group_members_statement(pool_id, group, Some(username_key), 60),
        crate::sql::user_groups_statement(pool_id, username_key, None, 60),
        crate::sql::user_groups_statement(pool_id, username_key, Some(group), 60),
    ]
    .into_iter()
    .map(|(sql, params)| (sql, params.into_iter().map(sql_param).collect()))
    .collect()
}

/// The statements [`crate::ImportJobStore::list_import_jobs`] runs for
/// `pool_id`, with and without a cursor, with `$N` placeholders and their
/// parameters. Backend suites EXPLAIN them to check that each is an index
/// range scan, already in result order.
pub fn import_job_statements(pool_id: &str) -> Vec<(String, Vec<SqlParam>)> {
    vec![
        crate::sql::import_jobs_statement(pool_id, None, 60),
        crate::sql::import_jobs_statement(pool_id, Some((1_700_000_050_000, "import-000500")), 60),
    ]
    .into_iter()
    .map(|(sql, params)| (sql, params.into_iter().map(sql_param).collect()))
    .collect()
}

/// The statements [`crate::IdentityStore::list_identities`] runs for
/// `identity_pool_id`, without a cursor and with the cursor `after`, with `$N`
/// placeholders and their parameters. Backend suites EXPLAIN them to check
/// that each pages through an index range scan, already in result order.
pub fn identity_statements(identity_pool_id: &str, after: &str) -> Vec<(String, Vec<SqlParam>)> {
    vec![
        crate::sql::identities_statement(identity_pool_id, None, 60),
        crate::sql::identities_statement(identity_pool_id, Some(after), 60),
    ]
    .into_iter()
    .map(|(sql, params)| (sql, params.into_iter().map(sql_param).collect()))
    .collect()
}

/// The statements [`crate::SyncStore::list_sync_records`] runs for a dataset,
/// from a sync count and with a cursor, with `$N` placeholders and their
/// parameters. Backend suites EXPLAIN them to check that each is an index
/// range scan, already in result order.
pub fn sync_record_statements(identity_pool_id: &str, identity_id: &str, name: &str) -> Vec<(String, Vec<SqlParam>)> {
    vec![
        crate::sql::sync_records_statement(identity_pool_id, identity_id, name, 0, None, 60),
        crate::sql::sync_records_statement(identity_pool_id, identity_id, name, 500, None, 60),
        crate::sql::sync_records_statement(identity_pool_id, identity_id, name, 0, Some((700, "key-000700")), 60),
    ]
    .into_iter()
    .map(|(sql, params)| (sql, params.into_iter().map(sql_param).collect()))
    .collect()
}

fn sql_param(v: crate::db::Value) -> SqlParam {
    match v {
        crate::db::Value::Null => SqlParam::Null,
        crate::db::Value::Int(i) => SqlParam::Int(i),
        crate::db::Value::Bool(b) => SqlParam::Bool(b),
        crate::db::Value::Text(s) => SqlParam::Text(s),
        crate::db::Value::Blob(b) => SqlParam::Blob(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Public functions of this module that are not checks.
    const NOT_CHECKS: &[&str] = &[
        "run_all",
        "search_statements",
        "group_statements",
        "import_job_statements",
        "identity_statements",
        "sync_record_statements",
    ];

    /// `(name, parameter list)` of every `pub fn` in this file's source.
    fn public_functions() -> Vec<(String, String)> {
        let source = include_str!("conformance.rs");
        let mut found = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find("\npub fn ") {
            let signature = &rest[at + "\npub fn ".len()..];
            let open = signature.find('(').unwrap();
            let close = signature.find(')').unwrap();
            let params = signature[open + 1..close].split_whitespace().collect::<Vec<_>>().join(" ");
            found.push((signature[..open].trim().to_owned(), params.trim_end_matches(',').to_owned()));
            rest = &signature[close..];
        }
        found
    }

    fn assert_same_names<'a>(defined: &BTreeSet<&'a str>, registered: impl Iterator<Item = &'a str>, list: &str) {
        let registered: Vec<&str> = registered.collect();
        let unique: BTreeSet<&str> = registered.iter().copied().collect();
        assert_eq!(unique.len(), registered.len(), "a check is registered twice in {list}");
        let missing: Vec<_> = defined.difference(&unique).collect();
        let extra: Vec<_> = unique.difference(defined).collect();
        assert!(missing.is_empty(), "checks missing from {list}: {missing:?}");
        assert!(extra.is_empty(), "{list} registers functions that are not public checks: {extra:?}");
    }

    /// Every public check of the module is registered once, in the list its
    /// signature belongs to; every other public function is a known helper.
    #[test]
    fn every_public_check_is_registered() {
        let functions = public_functions();
        assert!(functions.len() > ALL.len(), "the source scan found only {functions:?}");
        let (mut single, mut pairs) = (BTreeSet::new(), BTreeSet::new());
        for (name, params) in &functions {
            match params.as_str() {
                "store: &dyn Store" => assert!(single.insert(name.as_str())),
                "a: &dyn Store, b: &dyn Store" => assert!(pairs.insert(name.as_str())),
                _ => assert!(
                    NOT_CHECKS.contains(&name.as_str()),
                    "pub fn {name}({params}): neither a check nor a known helper"
                ),
            }
        }
        single.remove("run_all");
        assert_same_names(&single, ALL.iter().map(|(name, _)| *name), "ALL");
        assert_same_names(&pairs, BETWEEN_STORES.iter().map(|(name, _)| *name), "BETWEEN_STORES");
    }
}
