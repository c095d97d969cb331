//! Cognito Sync's SyncTrigger (SetCognitoEvents): the identity pool's function, an ordinary
//! Lambda handler in tests/lambda run by the stand-in for Lambda's Invoke API, sees an
//! identity's UpdateRecords before anything is written and changes what is written; a
//! function that refuses, fails, answers garbage or does not answer fails the UpdateRecords
//! with the error AWS documents and changes nothing. Developer credentials do not run it.
//! SQLite and PostgreSQL.

use std::collections::BTreeMap;

use aws_sdk_cognitosync as sync;
use cognate_e2e::lambda_host::LambdaHost;
use cognate_e2e::{expect_err, ok, ErrInfo, Server};
use serde_json::json;
use sync::types::{Operation, RecordPatch};

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")
}

cognate_e2e::with_lambda_on_both_stores!(the_sync_trigger_changes_what_is_written, the_ways_a_sync_trigger_fails);

/// The developer's client (SetCognitoEvents takes developer credentials only).
fn developer(server: &Server) -> sync::Client {
    sync::Client::new(&server.sdk_config())
}

async fn set_sync_trigger(server: &Server, pool: &str, function: &str) {
    ok(developer(server).set_cognito_events().identity_pool_id(pool).events("SyncTrigger", function).send().await);
}

fn replace(key: &str, value: &str, sync_count: i64) -> RecordPatch {
    RecordPatch::builder().op(Operation::Replace).key(key).value(value).sync_count(sync_count).build().expect("patch")
}

/// One dataset of the identity through one client.
struct Dataset {
    client: sync::Client,
    pool: String,
    identity: String,
    name: String,
}

/// The dataset as ListRecords shows it: live records (key -> (value, sync count)), the
/// dataset's sync count, the session token.
struct Listing {
    records: BTreeMap<String, (String, i64)>,
    sync_count: i64,
    token: String,
}

impl Listing {
    fn values(&self) -> BTreeMap<&str, &str> {
        self.records.iter().map(|(k, (v, _))| (k.as_str(), v.as_str())).collect()
    }
    fn count_of(&self, key: &str) -> i64 {
        self.records.get(key).map_or(0, |(_, c)| *c)
    }
}

impl Dataset {
    async fn list(&self) -> Listing {
        let out = ok(self
            .client
            .list_records()
            .identity_pool_id(&self.pool)
            .identity_id(&self.identity)
            .dataset_name(&self.name)
            .send()
            .await);
        let records = out
            .records()
            .iter()
            .filter_map(|r| Some((r.key()?.to_owned(), (r.value()?.to_owned(), r.sync_count().expect("SyncCount")))))
            .collect();
        Listing {
            records,
            sync_count: out.dataset_sync_count().expect("DatasetSyncCount"),
            token: out.sync_session_token().expect("SyncSessionToken").to_owned(),
        }
    }

    /// ListRecords, then UpdateRecords with its token: the records answered (key -> value),
    /// or the error.
    async fn update(&self, patches: Vec<RecordPatch>) -> Result<BTreeMap<String, Option<String>>, ErrInfo> {
        let token = self.list().await.token;
        let answer = self
            .client
            .update_records()
            .identity_pool_id(&self.pool)
            .identity_id(&self.identity)
            .dataset_name(&self.name)
            .set_record_patches(Some(patches))
            .sync_session_token(token)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out
                .records()
                .iter()
                .map(|r| (r.key().expect("Key").to_owned(), r.value().map(str::to_owned)))
                .collect()),
            Err(err) => Err(expect_err::<(), _>(Err(err))),
        }
    }
}

fn written(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
    pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
}

/// The function upper-cases one value, adds a record, turns a write into a removal and
/// leaves a patch out; what it answers is what is written and what UpdateRecords answers.
/// Its event holds the whole dataset with the change. A refusal changes nothing; a stale sync
/// count is still a conflict; developer credentials do not run the function.
async fn the_sync_trigger_changes_what_is_written(server: &Server, host: &LambdaHost) {
    let (pool, identity, credentials) = server.guest_identity().await;
    set_sync_trigger(server, &pool, &arn("sync_trigger")).await;
    let events = ok(developer(server).get_cognito_events().identity_pool_id(&pool).send().await);
    assert_eq!(events.events().and_then(|e| e.get("SyncTrigger")), Some(&arn("sync_trigger")));
    let client = sync::Client::new(&server.sdk_config_with(credentials));
    let game = Dataset { client, pool: pool.clone(), identity: identity.clone(), name: "game".into() };

    let answered = game
        .update(vec![
            replace("motto", "carpe diem", 0),
            replace("level", "12", 0),
            replace("scratch", "tmp", 0),
            replace("draft", "unsent", 0),
        ])
        .await
        .expect("UpdateRecords");
    let expected = written(&[("badge", "gold"), ("level", "12"), ("motto", "CARPE DIEM")]);
    assert_eq!(answered, expected, "the function's records, not the caller's");
    let listing = game.list().await;
    assert_eq!(
        listing.values(),
        BTreeMap::from([("badge", "gold"), ("level", "12"), ("motto", "CARPE DIEM")]),
        "scratch removed and draft left out by the function"
    );

    let events = host.events_of("sync_trigger").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (&event["version"], &event["eventType"], &event["region"]),
        (&json!(2), &json!("SyncTrigger"), &json!("us-east-1"))
    );
    assert_eq!(
        (&event["identityPoolId"], &event["identityId"], &event["datasetName"]),
        (&json!(pool), &json!(identity), &json!("game"))
    );
    assert_eq!(
        event["datasetRecords"],
        json!({
            "motto": {"oldValue": null, "newValue": "carpe diem", "op": "replace"},
            "level": {"oldValue": null, "newValue": "12", "op": "replace"},
            "scratch": {"oldValue": null, "newValue": "tmp", "op": "replace"},
            "draft": {"oldValue": null, "newValue": "unsent", "op": "replace"},
        })
    );

    // A refusal: UpdateRecords fails as AWS documents a function's exception, nothing written.
    let refused = game
        .update(vec![replace("forbidden", "x", 0), replace("level", "13", listing.count_of("level"))])
        .await
        .expect_err("refused by the function");
    assert_eq!(
        (refused.status, refused.code.as_str(), refused.message.as_str()),
        (
            400,
            "InvalidLambdaFunctionOutputException",
            "The SyncTrigger function failed: forbidden is not a key this game stores"
        )
    );
    let after = game.list().await;
    assert_eq!((after.values(), after.sync_count), (listing.values(), listing.sync_count), "nothing changed");
    let events = host.events_of("sync_trigger").await;
    assert_eq!(
        events[1]["datasetRecords"]["motto"],
        json!({"oldValue": "CARPE DIEM", "newValue": "CARPE DIEM", "op": "replace"}),
        "records the caller did not patch are in the event too"
    );
    assert_eq!(events[1]["datasetRecords"]["level"], json!({"oldValue": "12", "newValue": "13", "op": "replace"}));

    // The function's answer is written with the caller's sync counts: a stale one conflicts.
    let stale = game.update(vec![replace("level", "14", 0)]).await.expect_err("stale sync count");
    assert_eq!((stale.status, stale.code.as_str()), (409, "ResourceConflictException"), "{stale:?}");
    let answered = game.update(vec![replace("motto", "veni", listing.count_of("motto"))]).await.expect("update");
    assert_eq!(answered, written(&[("motto", "VENI")]), "an unchanged badge is not written again");
    assert_eq!(game.list().await.count_of("badge"), listing.count_of("badge"));

    // Developer credentials: the function does not run (it would refuse this key).
    let calls = host.events_of("sync_trigger").await.len();
    let admin = Dataset { client: developer(server), name: "admin".into(), ..game };
    let answered = admin.update(vec![replace("forbidden", "by the developer", 0)]).await.expect("update");
    assert_eq!(answered, written(&[("forbidden", "by the developer")]));
    assert_eq!(host.events_of("sync_trigger").await.len(), calls, "no SyncTrigger for developer credentials");

    // Without the SyncTrigger (an empty function removes it), the identity's writes go as sent.
    set_sync_trigger(server, &pool, "").await;
    let plain = Dataset { client: game.client.clone(), name: "plain".into(), pool, identity };
    let answered = plain.update(vec![replace("motto", "as sent", 0)]).await.expect("update");
    assert_eq!(answered, written(&[("motto", "as sent")]));
    assert_eq!(host.events_of("sync_trigger").await.len(), calls);
}

/// A function that throws, answers something that is not the event, changes a read-only
/// field, answers too slowly (after the invoker's retries) or does not exist: each fails the
/// UpdateRecords with its error and changes nothing.
async fn the_ways_a_sync_trigger_fails(server: &Server, host: &LambdaHost) {
    let (pool, identity, credentials) = server.guest_identity().await;
    let client = sync::Client::new(&server.sdk_config_with(credentials));
    let game = Dataset { client, pool: pool.clone(), identity, name: "game".into() };
    set_sync_trigger(server, &pool, &arn("sync_trigger")).await;
    game.update(vec![replace("level", "3", 0)]).await.expect("first write");
    let before = game.list().await;

    let failures = [
        ("throws", 400, "InvalidLambdaFunctionOutputException", "The SyncTrigger function failed: Nope"),
        (
            "garbage",
            400,
            "InvalidLambdaFunctionOutputException",
            "The SyncTrigger function's output is not the event it was given: it is not JSON.",
        ),
        (
            "sync-trigger-renames",
            400,
            "InvalidLambdaFunctionOutputException",
            "The SyncTrigger function's output is not the event it was given: datasetName was changed.",
        ),
    ];
    for (function, status, code, message) in failures {
        set_sync_trigger(server, &pool, &arn(function)).await;
        let err = game.update(vec![replace("level", "4", before.count_of("level"))]).await.expect_err(function);
        assert_eq!((err.status, err.code.as_str(), err.message.as_str()), (status, code, message), "{function}");
    }
    set_sync_trigger(server, &pool, &arn("slow")).await;
    let started = std::time::Instant::now();
    let err = game.update(vec![replace("level", "4", before.count_of("level"))]).await.expect_err("slow");
    assert_eq!((err.status, err.code.as_str()), (400, "LambdaSocketTimeoutException"), "{err:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(15), "three attempts of 5 s each");
    set_sync_trigger(server, &pool, &arn("nobody-runs-this")).await;
    let err = game.update(vec![replace("level", "4", before.count_of("level"))]).await.expect_err("no function");
    assert_eq!(err.code, "LambdaSocketTimeoutException", "{err:?}");
    assert!(err.message.contains("Function not found"), "{err:?}");
    let after = game.list().await;
    assert_eq!((after.values(), after.sync_count), (before.values(), before.sync_count), "nothing changed");
    assert_eq!(host.events_of("sync-trigger-renames").await.len(), 1);

    let metrics = reqwest::get(format!("{}/metrics", server.url())).await.expect("metrics").text().await.expect("text");
    for line in [
        "cognate_lambda_invocations_total{trigger=\"SyncTrigger\",outcome=\"ok\"} 2",
        "cognate_lambda_invocations_total{trigger=\"SyncTrigger\",outcome=\"function_error\"} 1",
        "cognate_lambda_invocations_total{trigger=\"SyncTrigger\",outcome=\"invalid_response\"} 1",
        "cognate_lambda_invocations_total{trigger=\"SyncTrigger\",outcome=\"unreachable\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}
