//! Identity pools' identities (Cognito federated identities): GetId hands out an identity,
//! unauthenticated or tied to verified logins (the same identity for the same login every
//! time); GetCredentialsForIdentity issues temporary AWS credentials for its role; the
//! administrator's DescribeIdentity, ListIdentities and DeleteIdentities.
//!
//! A login is linked to at most one identity of a pool (the store enforces it, so two first
//! sign-ins racing on two nodes end with one identity). Logins that belong to different
//! identities are merged into the oldest of them; a guest identity that signs in keeps its id
//! unless its login already has an identity, into which the guest is then merged.

pub mod classic;
pub mod credentials;
pub mod developer;
pub mod external;
pub mod logins;
pub mod openid;
pub mod pools;
pub mod roles;
mod upstream_sts;
pub mod verified;

use std::collections::BTreeMap;

use cognate_api::identity::IdentityDescription;
use cognate_api::{ErrorCode, Sensitive};
use cognate_store::{Entity, IdentityLogin, IdentityRecord, StoreError};

use crate::context::{timestamp, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::records::Attempts;
use logins::VerifiedLogin;

pub fn identity_not_found(identity_id: &str) -> ApiError {
    ApiError::not_found(format!("Identity '{identity_id}' not found."))
}

fn unauthenticated_refused() -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, "Unauthenticated access is not supported for this identity pool.")
}

fn logins_do_not_match() -> ApiError {
    ApiError::new(
        ErrorCode::NotAuthorizedException,
        "Logins don't match. Please include at least one valid login for this identity or identity pool.",
    )
}

/// The identity with this id, in whatever pool (and region, for a signed caller) it is.
pub async fn load(ctx: &Ctx, identity_id: &str) -> ApiResult<IdentityRecord> {
    if !ctx.sees(crate::region::of_identity_pool(identity_id)) {
        return Err(identity_not_found(identity_id));
    }
    let id = identity_id.to_owned();
    ctx.store(move |s| s.get_identity_by_id(&id)).await?.ok_or_else(|| identity_not_found(identity_id))
}

async fn logins_of(ctx: &Ctx, record: &IdentityRecord) -> ApiResult<Vec<IdentityLogin>> {
    let (pool, id) = (record.identity_pool_id.to_string(), record.identity_id.clone());
    ctx.store(move |s| s.list_identity_logins(&pool, &id)).await
}

/// GetId: an identity for `logins`, or a new unauthenticated one when there are none.
pub async fn get_id(
    ctx: &Ctx,
    identity_pool_id: &str,
    logins: Option<&BTreeMap<String, Sensitive<String>>>,
) -> ApiResult<String> {
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    let verified = logins::verify(ctx, &pool, logins).await?;
    if verified.is_empty() {
        if !pool.pool.allow_unauthenticated_identities {
            return Err(unauthenticated_refused());
        }
        return create(ctx, identity_pool_id, &[])
            .await?
            .ok_or_else(|| ApiError::internal("a guest identity conflicted"));
    }
    identity_for(ctx, identity_pool_id, &verified.iter().map(|v| v.login.clone()).collect::<Vec<_>>()).await
}

/// The identity `logins` (verified already) belong to, created if they have none.
pub(crate) async fn identity_for(ctx: &Ctx, identity_pool_id: &str, logins: &[IdentityLogin]) -> ApiResult<String> {
    identity_for_logins(ctx, identity_pool_id, logins, None).await
}

/// A new identity id of the pool's region.
fn new_identity_id(identity_pool_id: &str) -> String {
    let region = crate::region::of_identity_pool(identity_pool_id).unwrap_or("us-east-1");
    format!("{region}:{}", cognate_crypto::ids::uuid_v4())
}

/// A new identity with `logins`; None when another identity took one of the logins first.
async fn create(ctx: &Ctx, identity_pool_id: &str, logins: &[IdentityLogin]) -> ApiResult<Option<String>> {
    let record = IdentityRecord {
        identity_pool_id: identity_pool_id.into(),
        identity_id: new_identity_id(identity_pool_id),
        created_ms: ctx.now_ms(),
        modified_ms: ctx.now_ms(),
        version: 1,
        doc: "{}".into(),
    };
    let (id, logins) = (record.identity_id.clone(), logins.to_vec());
    match ctx.store(move |s| Ok(s.insert_identity(&record, &logins))).await? {
        Ok(()) => Ok(Some(id)),
        Err(StoreError::AlreadyExists(Entity::IdentityLogin)) => Ok(None),
        Err(StoreError::NotFound(Entity::IdentityPool)) => Err(pools::not_found(identity_pool_id)),
        Err(other) => Err(other.into()),
    }
}

/// The identity `verified` logins belong to: `preferred` (a guest signing in) or the one
/// their logins are linked to, creating, linking and merging as needed. Concurrent calls
/// for one login agree: the loser of a race on a login finds the winner's identity.
async fn identity_for_logins(
    ctx: &Ctx,
    identity_pool_id: &str,
    logins: &[IdentityLogin],
    preferred: Option<&IdentityRecord>,
) -> ApiResult<String> {
    let logins = logins.to_vec();
    let mut attempts = Attempts::new(ctx, "The identity");
    loop {
        attempts.begin()?;
        let (pool, wanted) = (identity_pool_id.to_owned(), logins.clone());
        let found: Vec<Option<IdentityRecord>> =
            ctx.store(move |s| wanted.iter().map(|login| s.find_identity_by_login(&pool, login)).collect()).await?;
        // The common case, a returning user: every login already belongs to one identity
        // (the guest's own, if one signs in again). Nothing to write.
        if let Some(Some(first)) = found.first() {
            let all_there = found.iter().all(|f| f.as_ref().is_some_and(|r| r.identity_id == first.identity_id));
            if all_there && preferred.is_none_or(|guest| guest.identity_id == first.identity_id) {
                return Ok(first.identity_id.clone());
            }
        }
        let mut owners: Vec<IdentityRecord> = found.into_iter().flatten().collect();
        owners.sort_by(|a, b| (a.created_ms, &a.identity_id).cmp(&(b.created_ms, &b.identity_id)));
        owners.dedup_by(|a, b| a.identity_id == b.identity_id);
        let target = match (owners.first(), preferred) {
            (None, None) => match create(ctx, identity_pool_id, &logins).await? {
                Some(id) => return Ok(id),
                // Another call linked one of these logins first: use its identity.
                None => continue,
            },
            (None, Some(guest)) => guest.identity_id.clone(),
            (Some(oldest), _) => oldest.identity_id.clone(),
        };
        // Everything else these logins (and a signing-in guest) belong to joins the target.
        let mut merged: Vec<String> = owners.iter().map(|o| o.identity_id.clone()).collect();
        merged.extend(preferred.map(|g| g.identity_id.clone()));
        merged.retain(|id| *id != target);
        merged.dedup();
        let (pool, into, wanted) = (identity_pool_id.to_owned(), target.clone(), logins.clone());
        let linked = ctx
            .store(move |s| {
                for source in &merged {
                    s.merge_identities(&pool, source, &into)?;
                }
                Ok(s.link_identity_logins(&pool, &into, &wanted))
            })
            .await?;
        match linked {
            Ok(()) => return Ok(target),
            Err(StoreError::AlreadyExists(Entity::IdentityLogin) | StoreError::NotFound(Entity::Identity)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
}

/// An identity as a call with its `Logins` establishes it: a signed-in identity must present
/// one of its logins; a guest presenting logins signs in (keeping its id, or merged into the
/// identity its login already has).
pub struct Caller {
    pub identity_pool_id: String,
    pub pool: pools::IdentityPoolDoc,
    /// The identity the call is for (a guest that signed in may have been merged).
    pub identity_id: String,
    pub logins: Vec<VerifiedLogin>,
}

pub async fn caller(
    ctx: &Ctx,
    identity_id: &str,
    logins: Option<&BTreeMap<String, Sensitive<String>>>,
) -> ApiResult<Caller> {
    let record = load(ctx, identity_id).await?;
    let identity_pool_id = record.identity_pool_id.to_string();
    let (_, pool) = pools::load(ctx, &identity_pool_id).await?;
    let verified = logins::verify(ctx, &pool, logins).await?;
    let linked = logins_of(ctx, &record).await?;
    let identity_id = if verified.is_empty() {
        if !linked.is_empty() {
            return Err(logins_do_not_match());
        }
        if !pool.pool.allow_unauthenticated_identities {
            return Err(unauthenticated_refused());
        }
        record.identity_id.clone()
    } else {
        if !linked.is_empty() && !verified.iter().any(|v| linked.contains(&v.login)) {
            return Err(logins_do_not_match());
        }
        let wanted: Vec<IdentityLogin> = verified.iter().map(|v| v.login.clone()).collect();
        identity_for_logins(ctx, &identity_pool_id, &wanted, Some(&record)).await?
    };
    Ok(Caller { identity_pool_id, pool, identity_id, logins: verified })
}

/// What GetCredentialsForIdentity hands out.
pub struct IdentityCredentials {
    pub identity_id: String,
    pub credentials: credentials::Issued,
}

/// GetCredentialsForIdentity: credentials for the role of the identity's logins.
pub async fn get_credentials(
    ctx: &Ctx,
    identity_id: &str,
    logins: Option<&BTreeMap<String, Sensitive<String>>>,
    custom_role_arn: Option<&str>,
) -> ApiResult<IdentityCredentials> {
    let caller = caller(ctx, identity_id, logins).await?;
    let role = roles::resolve(&caller.pool, &caller.logins, custom_role_arn)?;
    let credentials = match &ctx.settings().sts_endpoint {
        Some(endpoint) => {
            let amr = amr(&caller.logins);
            upstream_sts::credentials(ctx, endpoint, &caller.identity_pool_id, &caller.identity_id, amr, &role).await?
        }
        None => credentials::issue(ctx, &caller.identity_pool_id, &caller.identity_id, &role)?,
    };
    Ok(IdentityCredentials { identity_id: caller.identity_id, credentials })
}

/// Cognito's `amr` claim for the way an identity signed in.
pub fn amr(logins: &[VerifiedLogin]) -> Vec<String> {
    if logins.is_empty() {
        return vec!["unauthenticated".into()];
    }
    amr_of(logins)
}

/// The `amr` of a signed-in identity: "authenticated", then each login's provider and how.
pub(crate) fn amr_of(logins: &[VerifiedLogin]) -> Vec<String> {
    let mut amr = vec!["authenticated".to_owned()];
    for login in logins {
        amr.push(login.login.provider.clone());
        amr.push(format!("{}:CognitoSignIn:{}", login.login.provider, login.login.subject));
    }
    amr
}

/// GetOpenIdToken: an OpenID token of the identity (ten minutes).
pub async fn get_open_id_token(
    ctx: &Ctx,
    identity_id: &str,
    logins: Option<&BTreeMap<String, Sensitive<String>>>,
) -> ApiResult<(String, String)> {
    let caller = caller(ctx, identity_id, logins).await?;
    let amr = amr(&caller.logins);
    let token =
        openid::token(ctx, &caller.identity_pool_id, &caller.identity_id, amr, openid::DEFAULT_LIFETIME_SECS).await?;
    Ok((caller.identity_id, token))
}

/// DescribeIdentity's view: the provider names of its logins and its dates.
pub fn describe(record: &IdentityRecord, logins: &[IdentityLogin]) -> IdentityDescription {
    let mut providers: Vec<String> = logins.iter().map(|l| l.provider.clone()).collect();
    providers.dedup();
    IdentityDescription {
        identity_id: Some(record.identity_id.clone()),
        logins: Some(providers),
        creation_date: Some(timestamp(record.created_ms)),
        last_modified_date: Some(timestamp(record.modified_ms)),
    }
}

pub async fn describe_identity(ctx: &Ctx, identity_id: &str) -> ApiResult<IdentityDescription> {
    let record = load(ctx, identity_id).await?;
    let logins = logins_of(ctx, &record).await?;
    Ok(describe(&record, &logins))
}

/// DeleteIdentities. Ids that name no identity are skipped, as Cognito does (it reports
/// an id as unprocessed only when it failed to delete it).
pub async fn delete_identities(ctx: &Ctx, identity_ids: &[String]) -> ApiResult<()> {
    for identity_id in identity_ids {
        let id = identity_id.clone();
        let Some(record) = ctx.store(move |s| s.get_identity_by_id(&id)).await? else { continue };
        if !ctx.sees(crate::region::of_identity_pool(&record.identity_id)) {
            continue;
        }
        let (pool, id) = (record.identity_pool_id.to_string(), record.identity_id);
        ctx.store(move |s| s.delete_identity(&pool, &id)).await?;
    }
    Ok(())
}
