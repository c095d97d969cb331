//! Stored records as operations use them: one compare-and-set [`modify`] for every
//! read-modify-write, user pools loaded and changed, pagination tokens, ARNs, tag quotas.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cognate_api::idp::{EmailMfaConfigType, UserPoolType, WebAuthnConfigurationType};
use cognate_api::ErrorCode;
use cognate_store::{StoreError, UserPoolRecord};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::context::{timestamp, Ctx};
use crate::error::{ApiError, ApiResult};

/// How often a read-modify-write retries after losing a race to another writer (possibly on
/// another node) before giving up.
const CAS_ATTEMPTS: usize = 8;

/// The answer when a read-modify-write keeps losing races (`what` is the record, e.g. "The
/// user pool"): the error the operation's model lists for it, so that SDKs retry as they
/// would against Cognito. ConcurrentModificationException where the model names it, else
/// TooManyRequestsException (every throttled user-pool operation lists it); an operation
/// that lists neither (or Cognate's own work) reports an internal error.
pub fn gave_up_on_conflicts(ctx: &Ctx, what: &str) -> ApiError {
    let message = format!("{what} was modified concurrently; retry.");
    match ctx.op.and_then(|op| conflict_error(op.errors)) {
        Some(code) => ApiError::new(code, message),
        None => ApiError::internal(message),
    }
}

/// Which of an operation's modelled errors reports lost races, if any.
fn conflict_error(modelled: &[ErrorCode]) -> Option<ErrorCode> {
    [ErrorCode::ConcurrentModificationException, ErrorCode::TooManyRequestsException]
        .into_iter()
        .find(|code| modelled.contains(code))
}

pub fn pool_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("User pool {id} does not exist."))
}

pub fn decode_doc<T: DeserializeOwned>(doc: &str) -> ApiResult<T> {
    serde_json::from_str(doc).map_err(ApiError::internal)
}

pub fn encode_doc<T: Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

pub fn user_pool_arn(ctx: &Ctx, pool_id: &str) -> String {
    let region = crate::region::of_user_pool(pool_id).unwrap_or(&ctx.region);
    format!("arn:aws:cognito-idp:{region}:{}:userpool/{pool_id}", ctx.settings().account_id)
}

/// What the store keeps for a user pool: the pool as DescribeUserPool shows it, plus the
/// settings only GetUserPoolMfaConfig shows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PoolDoc {
    pub pool: UserPoolType,
    #[serde(default)]
    pub software_token_mfa: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_mfa: Option<EmailMfaConfigType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_authn: Option<WebAuthnConfigurationType>,
    /// The pool's resource servers by identifier (see `resource_servers`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub resource_servers: std::collections::BTreeMap<String, cognate_api::idp::ResourceServerType>,
    /// The hosted pages' CSS and logo, by app client id or `ALL` (see `ui_customization`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ui_customizations: std::collections::BTreeMap<String, UiCustomization>,
    /// The pool's identity providers by name (see `identity_providers`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub identity_providers: std::collections::BTreeMap<String, StoredIdentityProvider>,
}

/// An identity provider as the pool keeps it (its `client_secret` sealed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredIdentityProvider {
    pub provider_type: String,
    pub details: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub attribute_mapping: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub idp_identifiers: Vec<String>,
    /// `acr` claim values to what Cognito reports (AcrMapping), kept and shown.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acr_mapping: std::collections::BTreeMap<String, String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// A pool's or app client's look for the hosted pages (see `ui_customization`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UiCustomization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub css: Option<String>,
    /// The logo, base64, with its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<(String, String)>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

pub async fn load_pool(ctx: &Ctx, pool_id: &str) -> ApiResult<(UserPoolRecord, PoolDoc)> {
    if !ctx.sees(crate::region::of_user_pool(pool_id)) {
        return Err(pool_not_found(pool_id));
    }
    let id = pool_id.to_owned();
    let record = ctx.store(move |s| s.get_user_pool(&id)).await?.ok_or_else(|| pool_not_found(pool_id))?;
    let pool = decode_doc(&record.doc)?;
    Ok((record, pool))
}

/// The attempts of one read-modify-write with compare-and-set. Every such write in Cognate
/// has this shape:
///
/// ```text
/// let mut attempts = Attempts::new(ctx, "The user");
/// loop {
///     attempts.begin()?;         // after CAS_ATTEMPTS lost races: the operation's error
///     let mut record = load(..)?; change(&mut record); record.version += 1;
///     let answer = ctx.store(move |s| Ok(s.update_x(&record))).await?;
///     if let Some(done) = written(answer, value, || not_found(..))? {
///         return Ok(done);
///     }
/// }
/// ```
///
/// (A loop rather than a function taking the attempt as an async closure: such futures are
/// not `Send` for every lifetime, and spawned tasks and handlers must be.)
pub struct Attempts<'a> {
    ctx: &'a Ctx,
    what: &'static str,
    left: usize,
}

impl<'a> Attempts<'a> {
    /// `what` names the record in the give-up message ("The user pool").
    pub fn new(ctx: &'a Ctx, what: &'static str) -> Self {
        Attempts { ctx, what, left: CAS_ATTEMPTS }
    }

    /// Allows one more attempt, or gives up with the error the operation's model lists for
    /// lost races ([`gave_up_on_conflicts`]).
    pub fn begin(&mut self) -> ApiResult<()> {
        if self.left == 0 {
            return Err(gave_up_on_conflicts(self.ctx, self.what));
        }
        self.left -= 1;
        Ok(())
    }
}

/// A compare-and-set write's answer, for [`Attempts`]: `Some(value)` once written, `None` when
/// another writer got in first; a record gone meanwhile is `missing()`, a taken alias
/// AliasExistsException, anything else an internal error.
pub fn written<T>(
    answer: Result<(), StoreError>,
    value: T,
    missing: impl FnOnce() -> ApiError,
) -> ApiResult<Option<T>> {
    match answer {
        Ok(()) => Ok(Some(value)),
        Err(StoreError::VersionConflict(_)) => Ok(None),
        Err(StoreError::NotFound(_)) => Err(missing()),
        Err(StoreError::AliasTaken(kind)) => Err(crate::error::alias_exists(&kind)),
        Err(other) => Err(ApiError::internal(other)),
    }
}

/// Applies `change` to the stored pool and writes it back if nothing else wrote in between,
/// retrying on a lost race. Returns the pool as stored.
pub async fn modify_pool<F>(ctx: &Ctx, pool_id: &str, mut change: F) -> ApiResult<PoolDoc>
where
    F: FnMut(&mut PoolDoc) -> ApiResult<()>,
{
    let mut attempts = Attempts::new(ctx, "The user pool");
    loop {
        attempts.begin()?;
        let (mut record, mut doc) = load_pool(ctx, pool_id).await?;
        change(&mut doc)?;
        record.modified_ms = ctx.now_ms();
        doc.pool.last_modified_date = Some(timestamp(record.modified_ms));
        record.version += 1;
        if let Some(name) = &doc.pool.name {
            record.name = name.clone();
        }
        record.doc = encode_doc(&doc)?;
        let answer = ctx.store(move |s| Ok(s.update_user_pool(&record))).await?;
        if let Some(done) = written(answer, doc, || pool_not_found(pool_id))? {
            return Ok(done);
        }
    }
}

/// Opaque pagination tokens: the last key of the previous page.
pub fn page_token(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key.as_bytes())
}

pub fn page_after(token: Option<&String>) -> ApiResult<Option<String>> {
    let Some(token) = token else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_parameter("Invalid pagination token."))
}

/// Fetches one page of `limit` items plus one look-ahead to know whether a next page exists.
pub fn split_page<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|last| page_token(&key(last)));
        (items, next)
    } else {
        (items, None)
    }
}

/// The `_custom_id_` tag lets scripted setups choose an id (the convention other Cognito
/// emulators use). It is a directive, not a tag: it is removed from the stored tags.
pub const CUSTOM_ID_TAG: &str = "_custom_id_";

/// Cognito's quota of tags on a resource.
pub const MAX_TAGS: usize = 50;

pub fn check_tag_count(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!("A resource can have at most {MAX_TAGS} tags.")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_api::{Operation, Service};

    fn conflict_error_of(service: Service, name: &str) -> Option<ErrorCode> {
        conflict_error(Operation::find(service, name).expect("modelled").errors)
    }

    #[test]
    fn lost_races_are_reported_with_an_error_the_operation_lists() {
        // Pools, clients and identity pools model ConcurrentModificationException (a pool's
        // give-up used to be a 500) ...
        assert_eq!(
            conflict_error_of(Service::CognitoIdp, "UpdateUserPool"),
            Some(ErrorCode::ConcurrentModificationException)
        );
        assert_eq!(
            conflict_error_of(Service::CognitoIdp, "UpdateUserPoolClient"),
            Some(ErrorCode::ConcurrentModificationException)
        );
        assert_eq!(
            conflict_error_of(Service::CognitoIdentity, "UpdateIdentityPool"),
            Some(ErrorCode::ConcurrentModificationException)
        );
        // ... users and groups do not, but every throttled operation lists TooManyRequests.
        assert_eq!(conflict_error_of(Service::CognitoIdp, "UpdateGroup"), Some(ErrorCode::TooManyRequestsException));
        assert_eq!(
            conflict_error_of(Service::CognitoIdp, "AdminUpdateUserAttributes"),
            Some(ErrorCode::TooManyRequestsException)
        );
    }
}
