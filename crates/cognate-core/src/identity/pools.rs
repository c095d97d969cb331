//! Identity pools as stored: the pool as DescribeIdentityPool shows it, plus what only
//! Get/SetIdentityPoolRoles show (roles and role mappings), loaded and changed with
//! compare-and-set.

use std::collections::BTreeMap;

use cognate_api::identity::{IdentityPool, RoleMapping};
use cognate_api::sync::{BulkPublishStatus, CognitoStreams, PushSync};
use cognate_store::IdentityPoolRecord;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::{check_tag_count, decode_doc, encode_doc, written, Attempts};

/// What the store keeps for an identity pool. Older documents are a bare `IdentityPool`,
/// which reads as one with no roles.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdentityPoolDoc {
    #[serde(flatten)]
    pub pool: IdentityPool,
    /// `authenticated` and `unauthenticated` role ARNs (SetIdentityPoolRoles' `Roles`).
    #[serde(rename = "Cognate.Roles", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, String>,
    /// Role mappings by identity provider (`cognito-idp.<region>.amazonaws.com/<pool>:<client>`).
    #[serde(rename = "Cognate.RoleMappings", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_mappings: BTreeMap<String, RoleMapping>,
    /// Principal-tag attribute maps by identity provider (Set/GetPrincipalTagAttributeMap).
    #[serde(rename = "Cognate.PrincipalTags", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principal_tags: BTreeMap<String, PrincipalTagMap>,
    /// Cognito Sync's push and stream settings (Set/GetIdentityPoolConfiguration).
    #[serde(rename = "Cognate.SyncConfiguration", default)]
    pub sync_configuration: SyncConfiguration,
    /// Cognito Sync's events and their Lambda functions (Set/GetCognitoEvents).
    #[serde(rename = "Cognate.CognitoEvents", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cognito_events: BTreeMap<String, String>,
    /// The key OpenID tokens of this pool are signed with, made on first use.
    #[serde(rename = "Cognate.OpenIdKey", default, skip_serializing_if = "Option::is_none")]
    pub openid_key: Option<StoredKey>,
    /// Cognito Sync's last bulk publish (BulkPublish, GetBulkPublishDetails).
    #[serde(rename = "Cognate.BulkPublish", default, skip_serializing_if = "Option::is_none")]
    pub bulk_publish: Option<BulkPublishState>,
}

/// Cognito Sync's last bulk publish of the pool (see `bulk_publish`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulkPublishState {
    pub status: BulkPublishStatus,
    pub started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The pool's Cognito Sync configuration, as Get/SetIdentityPoolConfiguration show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_sync: Option<PushSync>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_streams: Option<CognitoStreams>,
}

/// Which token claims become which session tags for a provider's identities.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrincipalTagMap {
    pub use_defaults: bool,
    pub tags: BTreeMap<String, String>,
}

impl PrincipalTagMap {
    /// Cognito's default map for a user pool: the app client and the user.
    pub fn defaults() -> BTreeMap<String, String> {
        BTreeMap::from([("client".to_owned(), "aud".to_owned()), ("username".to_owned(), "sub".to_owned())])
    }
}

/// A signing key kept in a document: its private half sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub sealed_private_key: String,
    pub public_jwk: serde_json::Value,
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("IdentityPool '{id}' not found."))
}

pub fn identity_pool_arn(ctx: &Ctx, id: &str) -> String {
    let region = crate::region::of_identity_pool(id).unwrap_or(&ctx.region);
    format!("arn:aws:cognito-identity:{region}:{}:identitypool/{id}", ctx.settings().account_id)
}

/// Normalises what Create and Update accept: providers' defaults, the tag limit.
pub fn normalise(pool: &mut IdentityPool) -> ApiResult<()> {
    pool.allow_classic_flow.get_or_insert(false);
    for provider in pool.cognito_identity_providers.iter_mut().flatten() {
        provider.server_side_token_check.get_or_insert(false);
    }
    if let Some(tags) = &pool.identity_pool_tags {
        check_tag_count(tags)?;
    }
    Ok(())
}

pub async fn load(ctx: &Ctx, id: &str) -> ApiResult<(IdentityPoolRecord, IdentityPoolDoc)> {
    if !ctx.sees(crate::region::of_identity_pool(id)) {
        return Err(not_found(id));
    }
    let key = id.to_owned();
    let record = ctx.store(move |s| s.get_identity_pool(&key)).await?.ok_or_else(|| not_found(id))?;
    let doc = decode_doc(&record.doc)?;
    Ok((record, doc))
}

/// Applies `change` to the stored pool and writes it back if nothing else wrote in between.
pub async fn modify<F>(ctx: &Ctx, id: &str, mut change: F) -> ApiResult<IdentityPoolDoc>
where
    F: FnMut(&mut IdentityPoolDoc) -> ApiResult<()>,
{
    let mut attempts = Attempts::new(ctx, "The identity pool");
    loop {
        attempts.begin()?;
        let (mut record, mut doc) = load(ctx, id).await?;
        change(&mut doc)?;
        normalise(&mut doc.pool)?;
        record.version += 1;
        record.modified_ms = ctx.now_ms();
        record.name = doc.pool.identity_pool_name.clone();
        record.doc = encode_doc(&doc)?;
        let answer = ctx.store(move |s| Ok(s.update_identity_pool(&record))).await?;
        if let Some(done) = written(answer, doc, || not_found(id))? {
            return Ok(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_pool_document_reads_as_one_without_roles() {
        let bare = r#"{"IdentityPoolId":"us-east-1:0c0ffee0-0000-4000-8000-000000000001","IdentityPoolName":"p","AllowUnauthenticatedIdentities":true}"#;
        let doc: IdentityPoolDoc = serde_json::from_str(bare).expect("reads");
        assert!(doc.pool.allow_unauthenticated_identities && doc.roles.is_empty());
        let mut with_roles = doc.clone();
        with_roles.roles.insert("authenticated".into(), "arn:aws:iam::000000000000:role/a".into());
        let text = serde_json::to_string(&with_roles).expect("writes");
        let back: IdentityPoolDoc = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.roles, with_roles.roles);
        // DescribeIdentityPool's view of the same document shows no roles.
        let pool: IdentityPool = serde_json::from_str(&text).expect("reads as the pool");
        assert_eq!(pool, doc.pool);
    }
}
