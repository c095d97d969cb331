//! Cognito Sync's push sync and its pool configuration: an identity registers its devices
//! (RegisterDevice, a stable DeviceId per identity and token; with `--sns-endpoint`, an SNS
//! platform endpoint under the pool's platform application for that platform) and
//! subscribes them to datasets; the developer sets the pool's PushSync, CognitoStreams and
//! events. A change to a subscribed dataset is queued with the change itself and pushed by
//! `sync_delivery`.
//!
//! Devices and their subscriptions live in the identity's document (an identity has few);
//! the pool's settings in the identity pool's.

use std::collections::{BTreeMap, BTreeSet};

use cognate_api::sync::{CognitoStreams, PushSync, StreamingStatus};
use cognate_api::ErrorCode;
use cognate_store::{IdentityPoolRecord, IdentityRecord};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::identity::pools::{self, SyncConfiguration};
use crate::records::{decode_doc, encode_doc, written, Attempts};

/// The events Cognito Sync runs a Lambda function for.
pub const EVENTS: &[&str] = &["SyncTrigger"];

/// An identity's registered devices.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdentityDoc {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<SyncDevice>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncDevice {
    pub id: String,
    pub platform: String,
    pub token: String,
    /// The SNS platform endpoint pushes are published to (with `--sns-endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_arn: Option<String>,
    /// The datasets the device is subscribed to.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub subscriptions: BTreeSet<String>,
}

/// The identity's devices subscribed to `dataset`.
pub fn subscribed_devices(identity: &IdentityRecord, dataset: &str) -> ApiResult<Vec<SyncDevice>> {
    let doc: IdentityDoc = decode_doc(&identity.doc)?;
    Ok(doc.devices.into_iter().filter(|d| d.subscriptions.contains(dataset)).collect())
}

/// Whether a device of the identity is subscribed to `dataset`.
pub fn is_subscribed(identity: &IdentityRecord, dataset: &str) -> ApiResult<bool> {
    Ok(!subscribed_devices(identity, dataset)?.is_empty())
}

/// Whether the pool streams its changes to Kinesis.
pub fn streams_enabled(pool: &IdentityPoolRecord) -> bool {
    decode_doc::<pools::IdentityPoolDoc>(&pool.doc).is_ok_and(|doc| {
        doc.sync_configuration.cognito_streams.is_some_and(|s| s.streaming_status == Some(StreamingStatus::Enabled))
    })
}

fn invalid_configuration(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidConfigurationException, message)
}

/// Changes the identity's document with compare-and-set.
async fn modify_identity<T>(
    ctx: &Ctx,
    identity_id: &str,
    mut change: impl FnMut(&mut IdentityDoc) -> ApiResult<T>,
) -> ApiResult<T> {
    let mut attempts = Attempts::new(ctx, "The identity");
    loop {
        attempts.begin()?;
        let mut record: IdentityRecord = crate::identity::load(ctx, identity_id).await?;
        let mut doc: IdentityDoc = decode_doc(&record.doc)?;
        let answer = change(&mut doc)?;
        record.doc = encode_doc(&doc)?;
        record.version += 1;
        record.modified_ms = ctx.now_ms();
        let saved = ctx.store(move |s| Ok(s.update_identity(&record))).await?;
        if let Some(answer) = written(saved, answer, || crate::identity::identity_not_found(identity_id))? {
            return Ok(answer);
        }
    }
}

/// RegisterDevice: the device's id, the same for the same identity and token every time.
pub async fn register_device(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    platform: &str,
    token: &str,
) -> ApiResult<String> {
    let identity = crate::sync_access::authorize(ctx, identity_pool_id, identity_id).await?;
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    let configured = pool
        .sync_configuration
        .push_sync
        .as_ref()
        .is_some_and(|p| p.application_arns.iter().flatten().next().is_some());
    if !configured {
        return Err(invalid_configuration(
            "Push sync is not configured for this identity pool (SetIdentityPoolConfiguration).",
        ));
    }
    let mac = ctx
        .state
        .keyring
        .derive_key("sync-device-ids-v1")
        .hmac_sha256(format!("{identity_id}\0{platform}\0{token}").as_bytes());
    let hex = hex::encode(&mac[..16]);
    let id = format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
    let known: IdentityDoc = decode_doc(&identity.doc)?;
    let mut endpoint_arn = known.devices.iter().find(|d| d.id == id).and_then(|d| d.endpoint_arn.clone());
    if let (None, Some(sns)) = (&endpoint_arn, &ctx.settings().sns_endpoint) {
        let applications = pool.sync_configuration.push_sync.as_ref().and_then(|p| p.application_arns.clone());
        endpoint_arn =
            Some(create_platform_endpoint(ctx, sns, applications.unwrap_or_default(), platform, token).await?);
    }
    let device = SyncDevice {
        id: id.clone(),
        platform: platform.to_owned(),
        token: token.to_owned(),
        endpoint_arn,
        subscriptions: BTreeSet::new(),
    };
    modify_identity(ctx, identity_id, |doc| {
        match doc.devices.iter_mut().find(|d| d.id == device.id) {
            Some(known) if known.endpoint_arn.is_none() => known.endpoint_arn.clone_from(&device.endpoint_arn),
            Some(_) => {}
            None => doc.devices.push(device.clone()),
        }
        Ok(())
    })
    .await?;
    Ok(id)
}

/// SNS's CreatePlatformEndpoint under the pool's platform application for `platform` (an
/// application ARN's `app/{PLATFORM}/{name}`): the endpoint's ARN.
async fn create_platform_endpoint(
    ctx: &Ctx,
    sns: &str,
    applications: Vec<String>,
    platform: &str,
    token: &str,
) -> ApiResult<String> {
    let application = applications
        .into_iter()
        .find(|arn| arn.split(':').nth(5).and_then(|r| r.split('/').nth(1)) == Some(platform))
        .ok_or_else(|| {
            invalid_configuration(&format!("The identity pool's PushSync has no {platform} platform application."))
        })?;
    let params = [
        ("Action", "CreatePlatformEndpoint"),
        ("Version", "2010-03-31"),
        ("PlatformApplicationArn", application.as_str()),
        ("Token", token),
    ];
    let answer = crate::aws::query_call(ctx, sns, "sns", &params)
        .await
        .map_err(|e| invalid_configuration(&format!("SNS refused the device's platform endpoint: {e}")))?;
    crate::aws::element(&answer, "EndpointArn")
        .map(crate::aws::unescape)
        .ok_or_else(|| invalid_configuration("SNS answered CreatePlatformEndpoint without an EndpointArn."))
}

/// Subscribe (or, with `subscribe` false, unsubscribe) a registered device to a dataset.
pub async fn subscription(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    dataset: &str,
    device_id: &str,
    subscribe: bool,
) -> ApiResult<()> {
    crate::sync_access::authorize(ctx, identity_pool_id, identity_id).await?;
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    if pool.sync_configuration.push_sync.is_none() {
        return Err(invalid_configuration(
            "Push sync is not configured for this identity pool (SetIdentityPoolConfiguration).",
        ));
    }
    modify_identity(ctx, identity_id, |doc| {
        let device = doc
            .devices
            .iter_mut()
            .find(|d| d.id == device_id)
            .ok_or_else(|| ApiError::not_found(format!("Device '{device_id}' not found.")))?;
        if subscribe {
            device.subscriptions.insert(dataset.to_owned());
        } else if !device.subscriptions.remove(dataset) {
            return Err(ApiError::not_found(format!("Device '{device_id}' is not subscribed to '{dataset}'.")));
        }
        Ok(())
    })
    .await
}

/// SetIdentityPoolConfiguration: what is given replaces what was. Streaming needs a Kinesis
/// to stream to (`--kinesis-endpoint`): without one ENABLED is refused rather than pretended.
pub async fn set_configuration(
    ctx: &Ctx,
    identity_pool_id: &str,
    push_sync: Option<PushSync>,
    cognito_streams: Option<CognitoStreams>,
) -> ApiResult<SyncConfiguration> {
    if let Some(streams) = cognito_streams.as_ref().filter(|s| s.streaming_status == Some(StreamingStatus::Enabled)) {
        if ctx.settings().kinesis_endpoint.is_none() {
            return Err(ApiError::invalid_parameter(
                "Cognate has no Kinesis to stream to (start it with --kinesis-endpoint): CognitoStreams must be \
                 DISABLED.",
            ));
        }
        if streams.stream_name.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid_parameter("CognitoStreams needs a StreamName to be ENABLED."));
        }
    }
    let doc = pools::modify(ctx, identity_pool_id, |doc| {
        if push_sync.is_some() {
            doc.sync_configuration.push_sync = push_sync.clone();
        }
        if cognito_streams.is_some() {
            doc.sync_configuration.cognito_streams = cognito_streams.clone();
        }
        Ok(())
    })
    .await?;
    Ok(doc.sync_configuration)
}

/// SetCognitoEvents: the Lambda function of each event (only SyncTrigger exists, which an
/// identity's UpdateRecords runs: `sync_trigger`); an empty value removes one.
pub async fn set_events(ctx: &Ctx, identity_pool_id: &str, events: &BTreeMap<String, String>) -> ApiResult<()> {
    if let Some(unknown) = events.keys().find(|name| !EVENTS.contains(&name.as_str())) {
        return Err(ApiError::invalid_parameter(format!("Invalid event {unknown}: the events are {EVENTS:?}.")));
    }
    pools::modify(ctx, identity_pool_id, |doc| {
        for (name, function) in events {
            if function.is_empty() {
                doc.cognito_events.remove(name);
            } else {
                doc.cognito_events.insert(name.clone(), function.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(())
}
