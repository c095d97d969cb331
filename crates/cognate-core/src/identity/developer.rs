//! Developer-authenticated identities: an app's own backend, signed with IAM credentials,
//! vouches for its users under the pool's DeveloperProviderName
//! (GetOpenIdTokenForDeveloperIdentity), looks them up, merges and unlinks them. And
//! UnlinkIdentity, by which a signed-in user removes one of their own logins.

use std::collections::BTreeMap;

use cognate_api::{ErrorCode, Sensitive};
use cognate_store::{Entity, IdentityLogin, StoreError};

use super::{amr_of, identity_not_found, logins, openid, pools};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// Developer tokens last 15 minutes unless TokenDuration says otherwise, at most a day.
pub const DEFAULT_TOKEN_SECS: i64 = 900;
pub const MAX_TOKEN_SECS: i64 = 86_400;

fn no_developer_provider(identity_pool_id: &str) -> ApiError {
    ApiError::invalid_parameter(format!("Identity pool {identity_pool_id} has no developer provider name."))
}

/// The pool's developer provider name, which `given` must be.
fn developer_provider(pool: &pools::IdentityPoolDoc, given: Option<&str>) -> ApiResult<String> {
    let name =
        pool.pool.developer_provider_name.clone().ok_or_else(|| no_developer_provider(&pool.pool.identity_pool_id))?;
    match given {
        Some(given) if given != name => {
            Err(ApiError::invalid_parameter(format!("Invalid developer provider name {given}: the pool's is {name}.")))
        }
        _ => Ok(name),
    }
}

fn developer_login(provider: &str, user: &str) -> IdentityLogin {
    IdentityLogin { provider: provider.to_owned(), subject: user.to_owned() }
}

/// GetOpenIdTokenForDeveloperIdentity: the identity of the developer's user (linked to
/// `identity_id` when given, found or created otherwise), with any other logins verified and
/// linked, and an OpenID token for it.
pub async fn open_id_token(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: Option<&str>,
    given_logins: &BTreeMap<String, Sensitive<String>>,
    token_duration: Option<i64>,
) -> ApiResult<(String, String)> {
    let lifetime = token_duration.unwrap_or(DEFAULT_TOKEN_SECS);
    if !(1..=MAX_TOKEN_SECS).contains(&lifetime) {
        return Err(ApiError::invalid_parameter(format!(
            "TokenDuration must be between 1 and {MAX_TOKEN_SECS} seconds."
        )));
    }
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    let provider = developer_provider(&pool, None)?;
    let user = given_logins
        .get(&provider)
        .ok_or_else(|| ApiError::invalid_parameter(format!("Logins must name the developer provider {provider}.")))?
        .expose()
        .clone();
    let others: BTreeMap<String, Sensitive<String>> =
        given_logins.iter().filter(|(name, _)| **name != provider).map(|(k, v)| (k.clone(), v.clone())).collect();
    // The operation's model lists no ExternalServiceException: an unreachable provider is a
    // login that cannot be verified.
    let verified = logins::verify(ctx, &pool, Some(&others)).await.map_err(|err| {
        if err.type_name() == "ExternalServiceException" {
            ApiError::new(ErrorCode::NotAuthorizedException, err.message)
        } else {
            err
        }
    })?;
    let mut all: Vec<IdentityLogin> = verified.iter().map(|v| v.login.clone()).collect();
    all.push(developer_login(&provider, &user));
    let identity_id = match identity_id {
        Some(id) => {
            let record = super::load(ctx, id).await?;
            if record.identity_pool_id != identity_pool_id {
                return Err(identity_not_found(id));
            }
            link(ctx, identity_pool_id, id, &all).await?;
            id.to_owned()
        }
        None => super::identity_for(ctx, identity_pool_id, &all).await?,
    };
    let mut amr = amr_of(&verified);
    amr.push(provider.clone());
    amr.push(format!("{provider}:OpenIdTokenForDeveloperIdentity"));
    let token = openid::token(ctx, identity_pool_id, &identity_id, amr, lifetime).await?;
    Ok((identity_id, token))
}

async fn link(ctx: &Ctx, identity_pool_id: &str, identity_id: &str, logins: &[IdentityLogin]) -> ApiResult<()> {
    let (pool, id, wanted) = (identity_pool_id.to_owned(), identity_id.to_owned(), logins.to_vec());
    match ctx.store(move |s| Ok(s.link_identity_logins(&pool, &id, &wanted))).await? {
        Ok(()) => Ok(()),
        Err(StoreError::AlreadyExists(Entity::IdentityLogin)) => {
            Err(ApiError::new(ErrorCode::ResourceConflictException, "A login is already linked to another identity."))
        }
        Err(StoreError::NotFound(_)) => Err(identity_not_found(identity_id)),
        Err(other) => Err(other.into()),
    }
}

/// What LookupDeveloperIdentity finds: the identity and its developer user identifiers.
pub struct Found {
    pub identity_id: String,
    pub users: Vec<String>,
}

pub async fn lookup(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: Option<&str>,
    developer_user: Option<&str>,
) -> ApiResult<Found> {
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    let provider = developer_provider(&pool, None)?;
    let identity_id = match (identity_id, developer_user) {
        (_, Some(user)) => {
            let (p, login) = (identity_pool_id.to_owned(), developer_login(&provider, user));
            let found = ctx.store(move |s| s.find_identity_by_login(&p, &login)).await?;
            let found = found.ok_or_else(|| {
                ApiError::not_found(format!("Developer user identifier {user} is not linked to an identity."))
            })?;
            if identity_id.is_some_and(|id| id != found.identity_id) {
                return Err(ApiError::new(
                    ErrorCode::ResourceConflictException,
                    "The developer user identifier is linked to another identity.",
                ));
            }
            found.identity_id
        }
        (Some(id), None) => {
            let record = super::load(ctx, id).await?;
            if record.identity_pool_id != identity_pool_id {
                return Err(identity_not_found(id));
            }
            record.identity_id
        }
        (None, None) => {
            return Err(ApiError::invalid_parameter("Either IdentityId or DeveloperUserIdentifier is required."))
        }
    };
    let (p, id) = (identity_pool_id.to_owned(), identity_id.clone());
    let logins = ctx.store(move |s| s.list_identity_logins(&p, &id)).await?;
    let users = logins.into_iter().filter(|l| l.provider == provider).map(|l| l.subject).collect();
    Ok(Found { identity_id, users })
}

/// MergeDeveloperIdentities: the source user's identity joins the destination user's.
pub async fn merge(
    ctx: &Ctx,
    identity_pool_id: &str,
    provider: &str,
    source_user: &str,
    destination_user: &str,
) -> ApiResult<String> {
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    let provider = developer_provider(&pool, Some(provider))?;
    let (p, source, destination) = (
        identity_pool_id.to_owned(),
        developer_login(&provider, source_user),
        developer_login(&provider, destination_user),
    );
    let merged = ctx
        .store(move |s| {
            let from = s.find_identity_by_login(&p, &source)?;
            let into = s.find_identity_by_login(&p, &destination)?;
            match (from, into) {
                (Some(from), Some(into)) => {
                    if from.identity_id != into.identity_id {
                        s.merge_identities(&p, &from.identity_id, &into.identity_id)?;
                    }
                    Ok(Some(into.identity_id))
                }
                _ => Ok(None),
            }
        })
        .await?;
    merged.ok_or_else(|| ApiError::not_found("Developer user identifier is not linked to an identity."))
}

/// UnlinkDeveloperIdentity.
pub async fn unlink(ctx: &Ctx, identity_pool_id: &str, identity_id: &str, provider: &str, user: &str) -> ApiResult<()> {
    let (_, pool) = pools::load(ctx, identity_pool_id).await?;
    let provider = developer_provider(&pool, Some(provider))?;
    let record = super::load(ctx, identity_id).await?;
    if record.identity_pool_id != identity_pool_id {
        return Err(identity_not_found(identity_id));
    }
    let (p, id, login) = (identity_pool_id.to_owned(), identity_id.to_owned(), vec![developer_login(&provider, user)]);
    if ctx.store(move |s| s.unlink_identity_logins(&p, &id, &login)).await? == 0 {
        return Err(ApiError::not_found(format!(
            "Developer user identifier {user} is not linked to identity {identity_id}."
        )));
    }
    Ok(())
}

/// UnlinkIdentity: a signed-in user (proving it with `logins`) removes the logins of the
/// providers named in `remove`.
pub async fn unlink_identity(
    ctx: &Ctx,
    identity_id: &str,
    given_logins: &BTreeMap<String, Sensitive<String>>,
    remove: &[String],
) -> ApiResult<()> {
    let record = super::load(ctx, identity_id).await?;
    let pool_id = record.identity_pool_id.to_string();
    let (_, pool) = pools::load(ctx, &pool_id).await?;
    let verified = logins::verify(ctx, &pool, Some(given_logins)).await?;
    let (p, id) = (pool_id.clone(), identity_id.to_owned());
    let linked = ctx.store(move |s| s.list_identity_logins(&p, &id)).await?;
    if verified.is_empty() || !verified.iter().all(|v| linked.contains(&v.login)) {
        return Err(ApiError::new(
            ErrorCode::NotAuthorizedException,
            "Logins don't match. Please include at least one valid login for this identity or identity pool.",
        ));
    }
    let canonical: Vec<String> = remove.iter().map(|name| logins::canonical_provider(ctx, name)).collect();
    let doomed: Vec<IdentityLogin> = linked.into_iter().filter(|l| canonical.contains(&l.provider)).collect();
    let (p, id) = (pool_id, identity_id.to_owned());
    ctx.store(move |s| s.unlink_identity_logins(&p, &id, &doomed)).await?;
    Ok(())
}
