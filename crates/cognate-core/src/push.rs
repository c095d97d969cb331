//! Cognito Sync's push sync and its pool configuration: an identity registers its devices
//! (RegisterDevice, a stable DeviceId per identity and token); the developer sets the pool's
//! PushSync, CognitoStreams and events. (Subscriptions and the silent pushes they cause come
//! next: the pushes go to the outbox, whose rows today belong to user pools.)
//!
//! Devices live in the identity's document (an identity has few); the pool's settings in
//! the identity pool's.

use std::collections::BTreeMap;

use cognate_api::sync::{CognitoStreams, PushSync, StreamingStatus};
use cognate_api::ErrorCode;
use cognate_store::IdentityRecord;
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
    crate::sync::authorize(ctx, identity_pool_id, identity_id).await?;
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
    let device = SyncDevice { id: id.clone(), platform: platform.to_owned(), token: token.to_owned() };
    modify_identity(ctx, identity_id, |doc| {
        if !doc.devices.iter().any(|d| d.id == device.id) {
            doc.devices.push(device.clone());
        }
        Ok(())
    })
    .await?;
    Ok(id)
}

/// SetIdentityPoolConfiguration: what is given replaces what was. Streaming needs a Kinesis
/// endpoint Cognate does not have yet, so ENABLED is refused rather than pretended.
pub async fn set_configuration(
    ctx: &Ctx,
    identity_pool_id: &str,
    push_sync: Option<PushSync>,
    cognito_streams: Option<CognitoStreams>,
) -> ApiResult<SyncConfiguration> {
    if cognito_streams.as_ref().is_some_and(|s| s.streaming_status == Some(StreamingStatus::Enabled)) {
        return Err(ApiError::invalid_parameter(
            "Cognate cannot stream to Kinesis yet: CognitoStreams must be DISABLED.",
        ));
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

/// SetCognitoEvents: the Lambda function of each event (only SyncTrigger exists); an empty
/// value removes one. Cognate keeps them; they run once Lambda triggers are supported.
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
