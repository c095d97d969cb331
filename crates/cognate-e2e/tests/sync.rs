//! Cognito Sync with the Rust SDK (`aws-sdk-cognitosync`), signed with an identity's
//! temporary credentials from GetCredentialsForIdentity or with the developer's IAM
//! credentials: concurrent UpdateRecords on one dataset (8 clients; on PostgreSQL half of
//! them on a second node sharing the schema), the quotas over the wire, who may touch whose
//! data, and the SyncSessionToken. Every scenario runs on SQLite and on PostgreSQL.
//!
//! Error codes and HTTP statuses are the botocore model's (`model/cognito-sync.json`):
//! ResourceConflictException 409, LimitExceededException 400, NotAuthorizedException 403,
//! InvalidParameterException 400, ResourceNotFoundException 404.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_cognitosync as sync;
use cognate_e2e::{
    both_stores, expect_err, ok, sigv4_headers, unique_name, ErrInfo, Server, ACCESS_KEY, REGION, SECRET_KEY,
};
use sync::types::{Operation, RecordPatch};

const GUEST_ROLE: &str = "arn:aws:iam::000000000000:role/guest";
const AUTH_ROLE: &str = "arn:aws:iam::000000000000:role/authenticated";

/// An identity pool that allows guests, with both roles set.
async fn identity_pool(server: &Server) -> String {
    let pool = ok(server
        .identity()
        .create_identity_pool()
        .identity_pool_name(unique_name("sync"))
        .allow_unauthenticated_identities(true)
        .send()
        .await)
    .identity_pool_id;
    ok(server
        .identity()
        .set_identity_pool_roles()
        .identity_pool_id(&pool)
        .roles("authenticated", AUTH_ROLE)
        .roles("unauthenticated", GUEST_ROLE)
        .send()
        .await);
    pool
}

/// A guest identity of `pool` and its temporary credentials.
async fn guest(server: &Server, pool: &str) -> (String, Credentials) {
    let id = ok(server.identity().get_id().identity_pool_id(pool).send().await).identity_id.expect("IdentityId");
    let c = ok(server.identity().get_credentials_for_identity().identity_id(&id).send().await)
        .credentials
        .expect("Credentials");
    let credentials = Credentials::new(
        c.access_key_id.expect("AccessKeyId"),
        c.secret_key.expect("SecretKey"),
        c.session_token,
        None,
        "identity",
    );
    (id, credentials)
}

/// A cognito-sync client for `server` signing with `credentials`.
fn sync_as(server: &Server, credentials: &Credentials) -> sync::Client {
    sync::Client::new(&server.sdk_config_with(credentials.clone()))
}

/// A cognito-sync client with the developer's IAM credentials.
fn developer(server: &Server) -> sync::Client {
    sync::Client::new(&server.sdk_config())
}

/// One dataset of one identity, as seen through one client.
#[derive(Clone)]
struct Dataset {
    client: sync::Client,
    pool: String,
    identity: String,
    name: String,
}

/// What a ListRecords of the whole dataset showed.
#[derive(Debug, Clone, PartialEq)]
struct Listing {
    /// key -> (value, sync count); removed records have no value.
    records: BTreeMap<String, (Option<String>, i64)>,
    sync_count: i64,
    exists: bool,
    token: String,
}

impl Listing {
    fn value(&self, key: &str) -> Option<&str> {
        self.records.get(key).and_then(|(v, _)| v.as_deref())
    }
    fn count_of(&self, key: &str) -> i64 {
        self.records.get(key).map_or(0, |(_, c)| *c)
    }
    /// The live records (with a value).
    fn live(&self) -> usize {
        self.records.values().filter(|(v, _)| v.is_some()).count()
    }
}

fn replace(key: &str, value: &str, sync_count: i64) -> RecordPatch {
    RecordPatch::builder().op(Operation::Replace).key(key).value(value).sync_count(sync_count).build().expect("patch")
}

fn remove(key: &str, sync_count: i64) -> RecordPatch {
    RecordPatch::builder().op(Operation::Remove).key(key).sync_count(sync_count).build().expect("patch")
}

impl Dataset {
    fn new(client: sync::Client, pool: &str, identity: &str, name: &str) -> Dataset {
        Dataset { client, pool: pool.into(), identity: identity.into(), name: name.into() }
    }

    /// The same dataset through another client.
    fn with(&self, client: sync::Client) -> Dataset {
        Dataset { client, ..self.clone() }
    }

    /// Another dataset of the same identity, through the same client.
    fn named(&self, name: &str) -> Dataset {
        Dataset { name: name.into(), ..self.clone() }
    }

    async fn try_list(&self) -> Result<Listing, ErrInfo> {
        let mut records = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let res = self
                .client
                .list_records()
                .identity_pool_id(&self.pool)
                .identity_id(&self.identity)
                .dataset_name(&self.name)
                .max_results(1024)
                .set_next_token(next.clone())
                .send()
                .await;
            let out = match res {
                Ok(out) => out,
                Err(e) => return Err(expect_err::<(), _>(Err(e))),
            };
            for r in out.records() {
                let key = r.key().expect("Key").to_string();
                records.insert(key, (r.value().map(str::to_string), r.sync_count().expect("SyncCount")));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => {
                    return Ok(Listing {
                        records,
                        sync_count: out.dataset_sync_count().expect("DatasetSyncCount"),
                        exists: out.dataset_exists(),
                        token: out.sync_session_token().expect("SyncSessionToken").to_string(),
                    })
                }
            }
        }
    }

    async fn list(&self) -> Listing {
        self.try_list().await.unwrap_or_else(|e| panic!("ListRecords of {} failed: {e:?}", self.name))
    }

    /// UpdateRecords with these patches and token; the records it answers, as (key, value,
    /// sync count).
    async fn try_update(
        &self,
        token: &str,
        patches: Vec<RecordPatch>,
    ) -> Result<Vec<(String, Option<String>, i64)>, ErrInfo> {
        let res = self
            .client
            .update_records()
            .identity_pool_id(&self.pool)
            .identity_id(&self.identity)
            .dataset_name(&self.name)
            .device_id("e2e-device")
            .set_record_patches(Some(patches))
            .sync_session_token(token)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out
                .records()
                .iter()
                .map(|r| {
                    (
                        r.key().expect("Key").to_string(),
                        r.value().map(str::to_string),
                        r.sync_count().expect("SyncCount"),
                    )
                })
                .collect()),
            Err(e) => Err(expect_err::<(), _>(Err(e))),
        }
    }

    /// ListRecords, then UpdateRecords with its token; must succeed.
    async fn update(&self, patches: Vec<RecordPatch>) -> Vec<(String, Option<String>, i64)> {
        let token = self.list().await.token;
        self.try_update(&token, patches)
            .await
            .unwrap_or_else(|e| panic!("UpdateRecords of {} failed: {e:?}", self.name))
    }

    /// DescribeDataset: (NumRecords, DataStorage), or the error.
    async fn describe(&self) -> Result<(i64, i64), ErrInfo> {
        let res = self
            .client
            .describe_dataset()
            .identity_pool_id(&self.pool)
            .identity_id(&self.identity)
            .dataset_name(&self.name)
            .send()
            .await;
        match res {
            Ok(out) => {
                let d = out.dataset.expect("Dataset");
                Ok((d.num_records.expect("NumRecords"), d.data_storage.expect("DataStorage")))
            }
            Err(e) => Err(expect_err::<(), _>(Err(e))),
        }
    }

    /// The names of the identity's datasets (ListDatasets, all pages).
    async fn dataset_names(&self) -> Result<Vec<String>, ErrInfo> {
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..100 {
            let res = self
                .client
                .list_datasets()
                .identity_pool_id(&self.pool)
                .identity_id(&self.identity)
                .max_results(5)
                .set_next_token(next.clone())
                .send()
                .await;
            let out = match res {
                Ok(out) => out,
                Err(e) => return Err(expect_err::<(), _>(Err(e))),
            };
            names.extend(out.datasets().iter().map(|d| d.dataset_name().expect("DatasetName").to_string()));
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(names),
            }
        }
        panic!("ListDatasets did not stop paginating");
    }

    /// DescribeIdentityUsage: (DatasetCount, DataStorage).
    async fn usage(&self) -> Result<(i32, i64), ErrInfo> {
        let res =
            self.client.describe_identity_usage().identity_pool_id(&self.pool).identity_id(&self.identity).send().await;
        match res {
            Ok(out) => {
                let u = out.identity_usage.expect("IdentityUsage");
                Ok((u.dataset_count, u.data_storage.expect("DataStorage")))
            }
            Err(e) => Err(expect_err::<(), _>(Err(e))),
        }
    }

    async fn delete(&self) -> Result<(), ErrInfo> {
        let res = self
            .client
            .delete_dataset()
            .identity_pool_id(&self.pool)
            .identity_id(&self.identity)
            .dataset_name(&self.name)
            .send()
            .await;
        res.map(|_| ()).map_err(|e| expect_err::<(), _>(Err(e)))
    }
}

#[track_caller]
fn assert_error(err: &ErrInfo, status: u16, code: &str) {
    assert_eq!((err.status, err.code.as_str()), (status, code), "unexpected error: {err:?}");
    assert!(!err.message.is_empty(), "{code} without a message");
}

/// Assert an UpdateRecords was refused with this status and code (on success, says what it
/// answered without printing megabytes of values).
#[track_caller]
fn assert_refused(res: Result<Vec<(String, Option<String>, i64)>, ErrInfo>, status: u16, code: &str) {
    match res {
        Ok(records) => {
            let summary: Vec<(String, usize, i64)> =
                records.into_iter().map(|(k, v, c)| (k, v.map_or(0, |v| v.len()), c)).collect();
            panic!("expected {code}, the UpdateRecords succeeded: (key, value length, SyncCount) {summary:?}")
        }
        Err(err) => assert_error(&err, status, code),
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent UpdateRecords
// ---------------------------------------------------------------------------------------

const WRITERS: usize = 8;
/// Acknowledged UpdateRecords each writer aims for.
const WRITES_EACH: usize = 3;
/// ListRecords + UpdateRecords attempts a writer makes at most.
const ATTEMPTS_EACH: usize = 150;

/// One acknowledged UpdateRecords of a writer.
#[derive(Debug, Clone)]
struct Ack {
    attempt: usize,
    /// The counter value this write set.
    counter: i64,
    /// The SyncCount of the records the response returned (both patched keys).
    sync_count: i64,
}

#[derive(Debug, Default)]
struct WriterLog {
    acks: Vec<Ack>,
    conflicts: usize,
    /// ListRecords answers whose DatasetSyncCount was below a record's SyncCount:
    /// (DatasetSyncCount, highest record SyncCount).
    torn: Vec<(i64, i64)>,
}

/// Writer `w`: ListRecords, then UpdateRecords of the shared `counter` (+1) and of its own
/// key `own-w` (its value with `.a<attempt>` appended), each with the SyncCount it read;
/// on ResourceConflictException (409) it tries again. Any other error fails the test.
async fn writer(w: usize, ds: Dataset) -> WriterLog {
    let own = format!("own-{w}");
    let mut log = WriterLog::default();
    for attempt in 0..ATTEMPTS_EACH {
        if log.acks.len() == WRITES_EACH {
            break;
        }
        let seen = ds.list().await;
        let newest = seen.records.values().map(|(_, c)| *c).max().unwrap_or(0);
        if newest > seen.sync_count {
            log.torn.push((seen.sync_count, newest));
        }
        let counter: i64 = seen.value("counter").expect("the counter exists").parse().expect("a number");
        let mine = seen.value(&own).unwrap_or("").to_string();
        let patches = vec![
            replace("counter", &(counter + 1).to_string(), seen.count_of("counter")),
            replace(&own, &format!("{mine}.a{attempt}"), seen.count_of(&own)),
        ];
        match ds.try_update(&seen.token, patches).await {
            Ok(records) => {
                assert_eq!(records.len(), 2, "UpdateRecords answers the patched records: {records:?}");
                let sync_count = records[0].2;
                for (key, value, count) in &records {
                    assert_eq!(*count, sync_count, "every record of one UpdateRecords has its SyncCount: {records:?}");
                    let expected =
                        if key == "counter" { (counter + 1).to_string() } else { format!("{mine}.a{attempt}") };
                    assert!(key == "counter" || *key == own, "unexpected record {key}");
                    assert_eq!(value.as_deref(), Some(expected.as_str()), "{key}: the value written is answered");
                }
                // Every write changes the counter, so a write accepted on the counter's
                // SyncCount had none between its read and itself: the next count.
                assert_eq!(sync_count, seen.count_of("counter") + 1, "not the SyncCount after the one read: {seen:?}");
                log.acks.push(Ack { attempt, counter: counter + 1, sync_count });
            }
            Err(err) => {
                assert_error(&err, 409, "ResourceConflictException");
                log.conflicts += 1;
            }
        }
    }
    log
}

/// 8 writers with the identity's credentials (on PostgreSQL, writers 4-7 on the second node).
async fn concurrent_updates(a: &Server, b: Option<&Server>) -> Vec<(i64, i64)> {
    let pool = identity_pool(a).await;
    let (identity, credentials) = guest(a, &pool).await;
    let name = "shared";
    let seed = Dataset::new(sync_as(a, &credentials), &pool, &identity, name);
    let first = seed.update(vec![replace("counter", "0", 0)]).await;
    assert_eq!(first, vec![("counter".to_string(), Some("0".to_string()), 1)]);

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let node = match b {
            Some(b) if w >= WRITERS / 2 => b,
            _ => a,
        };
        let ds = Dataset::new(sync_as(node, &credentials), &pool, &identity, name);
        tasks.push(tokio::spawn(writer(w, ds)));
    }
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("writer task"));
    }
    let acks: Vec<Ack> = logs.iter().flat_map(|l| l.acks.iter().cloned()).collect();
    let conflicts: usize = logs.iter().map(|l| l.conflicts).sum();
    let n = acks.len() as i64;
    assert!(acks.len() >= WRITERS, "too little progress: {} acknowledged, {conflicts} conflicts", acks.len());
    // The writers did race: some of them read a SyncCount another one had already passed.
    assert!(conflicts > 0, "no conflict among {WRITERS} concurrent writers: the test did not race");

    // Each acknowledged UpdateRecords raised the dataset's SyncCount by exactly one: the
    // SyncCounts answered are distinct and are exactly 2..=n+1 (1 was the seed).
    let counts: BTreeSet<i64> = acks.iter().map(|a| a.sync_count).collect();
    assert_eq!(counts.len(), acks.len(), "two acknowledged writes answered the same SyncCount: {acks:?}");
    assert_eq!(counts, (2..=n + 1).collect::<BTreeSet<i64>>(), "{acks:?}");
    // In the order of the SyncCounts, the counter went up by one each time: every
    // acknowledged increment was applied once, on top of the previous one.
    for ack in &acks {
        assert_eq!(ack.counter, ack.sync_count - 1, "{ack:?}");
    }
    // Each writer's own acknowledgements came in increasing SyncCount order.
    for l in &logs {
        assert!(l.acks.windows(2).all(|p| p[0].sync_count < p[1].sync_count), "{:?}", l.acks);
    }

    // The final state reflects exactly the acknowledged writes; conflicts changed nothing.
    let fin = seed.list().await;
    assert_eq!(fin.sync_count, n + 1, "dataset SyncCount = acknowledged UpdateRecords (with the seed)");
    assert_eq!(fin.value("counter"), Some(n.to_string().as_str()));
    assert_eq!(fin.count_of("counter"), n + 1);
    for (w, l) in logs.iter().enumerate() {
        let own = format!("own-{w}");
        let expected: String = l.acks.iter().map(|a| format!(".a{}", a.attempt)).collect();
        if l.acks.is_empty() {
            assert_eq!(fin.records.get(&own), None, "writer {w} was never acknowledged");
        } else {
            assert_eq!(fin.value(&own), Some(expected.as_str()), "writer {w}: exactly its acknowledged appends");
            assert_eq!(fin.count_of(&own), l.acks.last().map_or(0, |a| a.sync_count), "writer {w}'s last SyncCount");
        }
    }
    assert_eq!(fin.live(), 1 + logs.iter().filter(|l| !l.acks.is_empty()).count());
    let (records, _) = seed.describe().await.expect("DescribeDataset");
    assert_eq!(records, fin.live() as i64);
    let torn: Vec<(i64, i64)> = logs.iter().flat_map(|l| l.torn.iter().copied()).collect();
    eprintln!("concurrent UpdateRecords: {n} acknowledged, {conflicts} conflicts, {} torn ListRecords", torn.len());
    torn
}

/// 8 clients create datasets of one identity at once (half on each node on PostgreSQL): on a
/// fresh dataset, each its own key, all accepted, SyncCounts 1..=8 once each; then, with
/// the identity at 19 datasets, 8 new datasets at once: exactly one accepted, the others
/// LimitExceededException, and nothing of theirs kept.
async fn concurrent_creations(a: &Server, b: Option<&Server>) {
    let pool = identity_pool(a).await;
    let (identity, credentials) = guest(a, &pool).await;
    let on = |w: usize| match b {
        Some(b) if w >= WRITERS / 2 => b,
        _ => a,
    };
    let base = Dataset::new(sync_as(a, &credentials), &pool, &identity, "fresh");

    // One new dataset, 8 first writers: tokens first, then the writes together.
    let mut pending = Vec::new();
    for w in 0..WRITERS {
        let ds = base.with(sync_as(on(w), &credentials));
        let token = ds.list().await.token;
        pending.push(tokio::spawn(async move { ds.try_update(&token, vec![replace(&format!("k{w}"), "v", 0)]).await }));
    }
    let mut counts = BTreeSet::new();
    for t in pending {
        let records = t.await.expect("task").unwrap_or_else(|e| panic!("a first write of its own key failed: {e:?}"));
        assert_eq!(records.len(), 1);
        counts.insert(records[0].2);
    }
    assert_eq!(counts, (1..=WRITERS as i64).collect::<BTreeSet<i64>>());
    let fresh = base.list().await;
    assert_eq!((fresh.live(), fresh.sync_count), (WRITERS, WRITERS as i64));

    // 18 more datasets (19 in all), then 8 new ones at once.
    for i in 0..18 {
        base.named(&format!("d{i:02}")).update(vec![replace("k", "v", 0)]).await;
    }
    assert_eq!(base.usage().await.expect("usage").0, 19);
    let mut pending = Vec::new();
    for w in 0..WRITERS {
        let ds = base.with(sync_as(on(w), &credentials)).named(&format!("race{w}"));
        let token = ds.list().await.token;
        pending.push(tokio::spawn(async move { ds.try_update(&token, vec![replace("k", "v", 0)]).await }));
    }
    let mut accepted = 0;
    for t in pending {
        match t.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(err) => assert_error(&err, 400, "LimitExceededException"),
        }
    }
    assert_eq!(accepted, 1, "exactly one of 8 racing new datasets fits under the quota of 20");
    let names = base.dataset_names().await.expect("ListDatasets");
    assert_eq!(names.len(), 20, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("race")).count(), 1, "{names:?}");
    assert_eq!(base.usage().await.expect("usage"), (20, (WRITERS as i64) * 3 + 18 * 2 + 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_dataset_creations_keep_the_quota() {
    let server = Server::sqlite().await;
    concurrent_creations(&server, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_concurrent_dataset_creations_keep_the_quota() {
    let Some(a) = Server::postgres().await else {
        return;
    };
    let b = a.sibling().await;
    concurrent_creations(&a, Some(&b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_update_records_apply_each_acknowledged_patch_once() {
    let server = Server::sqlite().await;
    concurrent_updates(&server, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_concurrent_update_records_apply_each_acknowledged_patch_once() {
    let Some(a) = Server::postgres().await else {
        return;
    };
    let b = a.sibling().await;
    concurrent_updates(&a, Some(&b)).await;
}

/// What one ListRecords answers is one state of the dataset: no record it lists has a
/// SyncCount above the DatasetSyncCount it answers (a client keeps that count as its
/// lastSyncCount). Checked on every ListRecords of the 8 writers above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_list_records_answers_one_snapshot_under_concurrent_writes() {
    let server = Server::sqlite().await;
    let torn = concurrent_updates(&server, None).await;
    assert!(torn.is_empty(), "ListRecords answered (DatasetSyncCount, newest record SyncCount) {torn:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_list_records_answers_one_snapshot_under_concurrent_writes() {
    let Some(a) = Server::postgres().await else {
        return;
    };
    let b = a.sibling().await;
    let torn = concurrent_updates(&a, Some(&b)).await;
    assert!(torn.is_empty(), "ListRecords answered (DatasetSyncCount, newest record SyncCount) {torn:?}");
}

// ---------------------------------------------------------------------------------------
// Quotas
// ---------------------------------------------------------------------------------------

/// 20 datasets per identity; the 21st is refused and leaves nothing behind.
async fn datasets_quota(server: &Server) {
    let pool = identity_pool(server).await;
    let (identity, credentials) = guest(server, &pool).await;
    let base = Dataset::new(sync_as(server, &credentials), &pool, &identity, "d00");
    for i in 0..20 {
        base.named(&format!("d{i:02}")).update(vec![replace("k", "v", 0)]).await;
    }
    assert_eq!(base.usage().await.expect("usage"), (20, 20 * 2));
    let extra = base.named("d20");
    let token = extra.list().await.token;
    let err = extra.try_update(&token, vec![replace("k", "v", 0)]).await.expect_err("a 21st dataset");
    assert_error(&err, 400, "LimitExceededException");
    // Nothing of it was kept.
    assert_eq!(base.dataset_names().await.expect("ListDatasets").len(), 20);
    assert!(!base.dataset_names().await.expect("ListDatasets").contains(&"d20".to_string()));
    assert_error(&extra.describe().await.expect_err("no d20"), 404, "ResourceNotFoundException");
    let after = extra.list().await;
    assert!(!after.exists && after.records.is_empty() && after.sync_count == 0, "{after:?}");
    assert_eq!(base.usage().await.expect("usage"), (20, 20 * 2));
    // A refused dataset is refused the same way again; one deleted makes room for it.
    let err = extra.try_update(&after.token, vec![replace("k", "v", 0)]).await.expect_err("still 20");
    assert_error(&err, 400, "LimitExceededException");
    base.named("d07").delete().await.expect("DeleteDataset");
    assert_eq!(base.usage().await.expect("usage").0, 19);
    extra.update(vec![replace("k", "v", 0)]).await;
    assert_eq!(base.usage().await.expect("usage").0, 20);
    let err = base.named("d07").try_update(&token, vec![replace("k", "v", 0)]).await;
    // d07's token is d20's: refused before the quota is looked at.
    assert_error(&err.expect_err("token of another dataset"), 400, "InvalidParameterException");
    let d07 = base.named("d07");
    let token = d07.list().await.token;
    assert_error(
        &d07.try_update(&token, vec![replace("k", "v", 0)]).await.expect_err("21st"),
        400,
        "LimitExceededException",
    );
}

/// 1,024 records per dataset: the 1,025th is refused, and so is any UpdateRecords that
/// would pass the limit, with none of its patches applied.
async fn records_quota(server: &Server) {
    let pool = identity_pool(server).await;
    let (identity, credentials) = guest(server, &pool).await;
    let ds = Dataset::new(sync_as(server, &credentials), &pool, &identity, "many");
    for batch in 0..4 {
        let patches = (0..256).map(|i| replace(&format!("k{:04}", batch * 256 + i), "v", 0)).collect();
        ds.update(patches).await;
    }
    let full = ds.list().await;
    assert_eq!((full.live(), full.sync_count), (1024, 4));
    let described = ds.describe().await.expect("DescribeDataset");
    assert_eq!(described.0, 1024);

    // The 1,025th record alone.
    let err = ds.try_update(&full.token, vec![replace("k1024", "v", 0)]).await.expect_err("1,025th record");
    assert_error(&err, 400, "LimitExceededException");
    // With a valid change to an existing record beside it: neither is applied.
    let err = ds
        .try_update(&full.token, vec![replace("k0000", "changed", 1), replace("k1024", "v", 0)])
        .await
        .expect_err("1,025th record with another patch");
    assert_error(&err, 400, "LimitExceededException");
    let after = ds.list().await;
    assert_eq!(after.records, full.records, "nothing of a refused UpdateRecords is applied");
    assert_eq!(after.sync_count, full.sync_count);
    assert_eq!(ds.describe().await.expect("DescribeDataset"), described);

    // Removing one record and adding another keeps the count at 1,024: allowed.
    let out = ds.try_update(&after.token, vec![remove("k0000", 1), replace("k1024", "v", 0)]).await.expect("swap");
    assert_eq!(out.iter().map(|r| r.2).collect::<Vec<_>>(), vec![5, 5]);
    let swapped = ds.list().await;
    assert_eq!((swapped.live(), swapped.sync_count), (1024, 5));
    assert_eq!(swapped.value("k0000"), None);
    assert_eq!(swapped.value("k1024"), Some("v"));
    // The removed key counts again once re-added: refused while full.
    let err = ds.try_update(&swapped.token, vec![replace("k0000", "v", 5)]).await.expect_err("full again");
    assert_error(&err, 400, "LimitExceededException");
    assert_eq!(ds.list().await.records, swapped.records);
}

/// 1 MB (2^20 bytes of keys and values) per dataset: exactly 1,048,576 is accepted, one
/// byte more is refused, and a refused UpdateRecords applies none of its patches.
async fn bytes_quota(server: &Server) {
    let pool = identity_pool(server).await;
    let (identity, credentials) = guest(server, &pool).await;
    let ds = Dataset::new(sync_as(server, &credentials), &pool, &identity, "big");
    let (v1, v3) = ("x".repeat(350_000), "z".repeat(1_048_576 - 6 - 700_000));
    ds.update(vec![replace("b1", &v1, 0), replace("b2", &v1, 0)]).await;
    assert_eq!(ds.describe().await.expect("DescribeDataset"), (2, 700_004));
    // Past the limit by the patches together, each of which would fit alone: refused, and
    // neither is applied.
    let before = ds.list().await;
    let res = ds.try_update(&before.token, vec![replace("b0", "ok", 0), replace("b3", &v3, 0)]).await;
    assert_refused(res, 400, "LimitExceededException");
    assert_eq!(ds.describe().await.expect("DescribeDataset"), (2, 700_004));
    let after = ds.list().await;
    assert_eq!((after.sync_count, after.records.len()), (1, 2));
    assert!(after.value("b1") == Some(v1.as_str()), "b1 changed");
    // Exactly at the limit.
    ds.update(vec![replace("b3", &v3, 0)]).await;
    assert_eq!(ds.describe().await.expect("DescribeDataset"), (3, 1_048_576));
    assert_eq!(ds.usage().await.expect("usage"), (1, 1_048_576));
    // One byte more (a record grown by one), or two (a new empty record: its key).
    let full = ds.list().await;
    let res = ds.try_update(&full.token, vec![replace("b1", &format!("{v1}y"), 1)]).await;
    assert_refused(res, 400, "LimitExceededException");
    assert_refused(ds.try_update(&full.token, vec![replace("b4", "", 0)]).await, 400, "LimitExceededException");
    assert_eq!(ds.describe().await.expect("DescribeDataset"), (3, 1_048_576));
    assert!(ds.list().await.records == full.records, "a refused UpdateRecords changed the records");
    // Shrinking is always allowed.
    ds.update(vec![replace("b1", "small", 1)]).await;
    assert_eq!(ds.describe().await.expect("DescribeDataset"), (3, 1_048_576 - 350_000 + 5));
}

/// The model allows a record Value of up to 1,048,575 characters, and with a one-character
/// key that record alone fills a dataset to exactly its 1 MB: it must be accepted.
async fn largest_value_fits(server: &Server) {
    let pool = identity_pool(server).await;
    let (identity, credentials) = guest(server, &pool).await;
    let ds = Dataset::new(sync_as(server, &credentials), &pool, &identity, "largest");
    let value = "x".repeat(1_048_575);
    let token = ds.list().await.token;
    let res = ds.try_update(&token, vec![replace("k", &value, 0)]).await;
    let records = res.unwrap_or_else(|e| panic!("a Value of the model's maximum length was refused: {e:?}"));
    assert_eq!(records.len(), 1);
    assert_eq!(ds.describe().await.expect("DescribeDataset"), (1, 1_048_576));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_record_of_the_largest_value_fits() {
    let server = Server::sqlite().await;
    largest_value_fits(&server).await;
}

// ---------------------------------------------------------------------------------------
// Who may touch whose data
// ---------------------------------------------------------------------------------------

async fn identities_reach_only_their_own_data(server: &Server) {
    let pool = identity_pool(server).await;
    let (alice, alice_credentials) = guest(server, &pool).await;
    let (bob, bob_credentials) = guest(server, &pool).await;
    let bobs = Dataset::new(sync_as(server, &bob_credentials), &pool, &bob, "notes");
    bobs.update(vec![replace("secret", "bob's", 0)]).await;
    let before = bobs.list().await;

    // Alice's credentials on Bob's dataset: every operation refused, 403.
    let as_alice = bobs.with(sync_as(server, &alice_credentials));
    assert_error(&as_alice.try_list().await.expect_err("ListRecords"), 403, "NotAuthorizedException");
    assert_error(&as_alice.describe().await.expect_err("DescribeDataset"), 403, "NotAuthorizedException");
    assert_error(&as_alice.dataset_names().await.expect_err("ListDatasets"), 403, "NotAuthorizedException");
    assert_error(&as_alice.usage().await.expect_err("DescribeIdentityUsage"), 403, "NotAuthorizedException");
    // Even with a SyncSessionToken that is valid for Bob's dataset.
    let err = as_alice.try_update(&before.token, vec![replace("secret", "alice's", 1)]).await.expect_err("update");
    assert_error(&err, 403, "NotAuthorizedException");
    let err = as_alice.try_update(&before.token, vec![replace("new", "x", 0)]).await.expect_err("update");
    assert_error(&err, 403, "NotAuthorizedException");
    assert_error(&as_alice.delete().await.expect_err("DeleteDataset"), 403, "NotAuthorizedException");
    let after = bobs.list().await;
    assert_eq!((after.records, after.sync_count, after.exists), (before.records.clone(), before.sync_count, true));

    // Alice's own dataset works with her credentials.
    let alices = Dataset::new(sync_as(server, &alice_credentials), &pool, &alice, "notes");
    alices.update(vec![replace("mine", "alice's", 0)]).await;

    // The developer's IAM credentials reach every identity of the pool.
    let dev = developer(server);
    for (ds, key) in [(bobs.with(dev.clone()), "secret"), (alices.with(dev.clone()), "mine")] {
        let seen = ds.list().await;
        assert_eq!(seen.count_of(key), 1);
        let out = ds.try_update(&seen.token, vec![replace(key, "by the developer", 1)]).await.expect("developer");
        assert_eq!(out, vec![(key.to_string(), Some("by the developer".to_string()), 2)]);
        assert_eq!(ds.describe().await.expect("DescribeDataset").0, 1);
        assert_eq!(ds.dataset_names().await.expect("ListDatasets"), vec!["notes".to_string()]);
        assert_eq!(ds.usage().await.expect("DescribeIdentityUsage").0, 1);
        ds.named("by-dev").update(vec![replace("k", "v", 0)]).await;
    }
    // Bob sees the developer's change and dataset.
    let mine = bobs.list().await;
    assert_eq!((mine.value("secret"), mine.sync_count), (Some("by the developer"), 2));
    assert_eq!(bobs.dataset_names().await.expect("ListDatasets"), vec!["by-dev".to_string(), "notes".to_string()]);

    // An identity of another pool is not reachable through this pool's path, whoever signs.
    let other_pool = identity_pool(server).await;
    let (carol, carol_credentials) = guest(server, &other_pool).await;
    let carols = Dataset::new(sync_as(server, &carol_credentials), &other_pool, &carol, "notes");
    carols.update(vec![replace("k", "v", 0)]).await;
    let wrong_pool = Dataset::new(dev.clone(), &pool, &carol, "notes");
    let err = wrong_pool.try_update(&carols.list().await.token, vec![replace("k", "w", 1)]).await.expect_err("pool");
    // The developer may name any identity of the pool: one of another pool is not found.
    assert_error(&err, 404, "ResourceNotFoundException");
    let err = Dataset::new(sync_as(server, &carol_credentials), &pool, &carol, "notes").try_list().await;
    assert_error(&err.expect_err("carol through another pool"), 403, "NotAuthorizedException");
    assert_eq!(carols.list().await.value("k"), Some("v"));
}

// ---------------------------------------------------------------------------------------
// SyncSessionToken
// ---------------------------------------------------------------------------------------

/// An UpdateRecords signed with the developer's key, sent as raw JSON (so that the
/// SyncSessionToken can be left out entirely).
async fn raw_update(server: &Server, ds: &Dataset, body: serde_json::Value) -> (u16, serde_json::Value) {
    let path = format!(
        "/identitypools/{}/identities/{}/datasets/{}",
        cognate_e2e::url_encode(&ds.pool),
        cognate_e2e::url_encode(&ds.identity),
        ds.name
    );
    let url = format!("{}{path}", server.url());
    let body = body.to_string();
    let mut headers = vec![
        ("host".to_string(), server.url().trim_start_matches("http://").to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let signed = sigv4_headers(
        &url,
        &headers,
        body.as_bytes(),
        ACCESS_KEY,
        SECRET_KEY,
        SystemTime::now(),
        REGION,
        "cognito-sync",
    );
    headers.extend(signed);
    let mut req = server.raw().http.post(&url).body(body);
    for (k, v) in &headers {
        if k != "host" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

async fn sync_session_tokens_are_checked(server: &Server) {
    let pool = identity_pool(server).await;
    let (alice, alice_credentials) = guest(server, &pool).await;
    let (bob, _) = guest(server, &pool).await;
    let a = Dataset::new(sync_as(server, &alice_credentials), &pool, &alice, "a");
    a.update(vec![replace("k", "v", 0)]).await;
    let b = a.named("b");
    let a_before = a.list().await;
    let patch = || vec![replace("k", "written", 1), replace("new", "x", 0)];
    let patch_b = || vec![replace("new", "x", 0)];
    let invalid = |err: ErrInfo| assert_error(&err, 400, "InvalidParameterException");

    // Missing: through the SDK (the member left unset) and as raw JSON without it.
    let res = a
        .client
        .update_records()
        .identity_pool_id(&pool)
        .identity_id(&alice)
        .dataset_name("a")
        .set_record_patches(Some(patch()))
        .send()
        .await;
    invalid(expect_err(res));
    let raw_patch = serde_json::json!([{"Op": "replace", "Key": "new", "Value": "x", "SyncCount": 0}]);
    let dev_a = a.with(developer(server));
    let (status, body) = raw_update(server, &dev_a, serde_json::json!({"RecordPatches": raw_patch})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("InvalidParameterException"), "{body}");
    // The raw path itself is right: with a token the same request is accepted (on "b",
    // which it creates; removed again below).
    let token = dev_a.named("b").list().await.token;
    let (status, body) = raw_update(
        server,
        &dev_a.named("b"),
        serde_json::json!({"RecordPatches": raw_patch, "SyncSessionToken": token}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    dev_a.named("b").delete().await.expect("DeleteDataset b");

    // Empty, forged, altered.
    invalid(a.try_update("", patch()).await.expect_err("empty"));
    invalid(a.try_update("forged-token", patch()).await.expect_err("forged"));
    let forged = cognate_e2e::base64(&cognate_e2e::random_bytes(120));
    invalid(a.try_update(&forged, patch()).await.expect_err("forged base64"));
    let mut altered: Vec<char> = a_before.token.chars().collect();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    invalid(a.try_update(&altered, patch()).await.expect_err("altered"));
    invalid(a.try_update(&a_before.token[..a_before.token.len() - 4], patch()).await.expect_err("truncated"));

    // Another dataset's token: a's on b (which does not exist yet), b's on a.
    invalid(b.try_update(&a_before.token, patch_b()).await.expect_err("a's token on b"));
    let b_token = b.list().await.token;
    invalid(a.try_update(&b_token, patch()).await.expect_err("b's token on a"));
    // Another identity's dataset of the same name: Alice's token for "a", the developer on
    // Bob's "a".
    let bobs_a = Dataset::new(developer(server), &pool, &bob, "a");
    invalid(bobs_a.try_update(&a_before.token, patch_b()).await.expect_err("alice's token on bob's a"));
    // A token of another pool's identity.
    let other_pool = identity_pool(server).await;
    let (carol, carol_credentials) = guest(server, &other_pool).await;
    let carols_token = Dataset::new(sync_as(server, &carol_credentials), &other_pool, &carol, "a").list().await.token;
    invalid(a.try_update(&carols_token, patch()).await.expect_err("carol's token"));

    // Nothing was written anywhere.
    let a_after = a.list().await;
    assert_eq!((a_after.records, a_after.sync_count), (a_before.records.clone(), a_before.sync_count));
    let b_after = b.list().await;
    assert!(b_after.records.values().all(|(v, _)| v.is_none()) && !b_after.exists, "{b_after:?}");
    let bob_a = bobs_a.list().await;
    assert!(bob_a.records.is_empty() && !bob_a.exists, "{bob_a:?}");
    assert_eq!(a.dataset_names().await.expect("ListDatasets"), vec!["a".to_string()]);
    // And the genuine token still works afterwards.
    let out = a.try_update(&a_before.token, patch()).await.expect("the real token");
    assert_eq!(out.iter().map(|r| r.2).collect::<Vec<_>>(), vec![a_before.sync_count + 1; 2]);
}

both_stores!(
    datasets_quota,
    records_quota,
    bytes_quota,
    identities_reach_only_their_own_data,
    sync_session_tokens_are_checked,
);
