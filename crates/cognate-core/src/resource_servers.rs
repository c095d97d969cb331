//! Resource servers: the APIs an app client may be granted custom scopes of
//! (`{identifier}/{scope}`), which access tokens carry in their `scope` claim. They live in the
//! pool's document, keyed by identifier (a pool has at most 25).

use cognate_api::idp::{ResourceServerScopeType, ResourceServerType};
use cognate_api::ErrorCode;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::{load_pool, modify_pool, PoolDoc};

/// Most resource servers a pool may have.
pub const MAX_PER_POOL: usize = 25;

fn not_found(identifier: &str) -> ApiError {
    ApiError::not_found(format!("Resource server {identifier} does not exist."))
}

/// Whether `scope` is a custom scope (`{identifier}/{name}`) of one of the pool's resource
/// servers.
pub fn scope_exists(doc: &PoolDoc, scope: &str) -> bool {
    doc.resource_servers.iter().any(|(identifier, server)| {
        scope
            .strip_prefix(identifier.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| server.scopes.iter().flatten().any(|s| s.scope_name == name))
    })
}

fn checked_scopes(scopes: Option<Vec<ResourceServerScopeType>>) -> ApiResult<Vec<ResourceServerScopeType>> {
    let scopes = scopes.unwrap_or_default();
    let mut names: Vec<&str> = scopes.iter().map(|s| s.scope_name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ApiError::invalid_parameter(format!("Duplicate scope name {} in the resource server.", pair[0])));
    }
    Ok(scopes)
}

fn view(pool_id: &str, identifier: &str, name: String, scopes: Vec<ResourceServerScopeType>) -> ResourceServerType {
    ResourceServerType {
        identifier: Some(identifier.to_owned()),
        managed_by: None,
        name: Some(name),
        scopes: Some(scopes),
        user_pool_id: Some(pool_id.to_owned()),
    }
}

/// CreateResourceServer.
pub async fn create(
    ctx: &Ctx,
    pool_id: &str,
    identifier: &str,
    name: &str,
    scopes: Option<Vec<ResourceServerScopeType>>,
) -> ApiResult<ResourceServerType> {
    let server = view(pool_id, identifier, name.to_owned(), checked_scopes(scopes)?);
    modify_pool(ctx, pool_id, |doc| {
        if doc.resource_servers.contains_key(identifier) {
            return Err(ApiError::invalid_parameter(format!(
                "A resource server with identifier {identifier} already exists in this user pool."
            )));
        }
        if doc.resource_servers.len() >= MAX_PER_POOL {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!("A user pool can have at most {MAX_PER_POOL} resource servers."),
            ));
        }
        doc.resource_servers.insert(identifier.to_owned(), server.clone());
        Ok(())
    })
    .await?;
    Ok(server)
}

/// UpdateResourceServer: the name and scopes given replace the server's (no scopes, none).
pub async fn update(
    ctx: &Ctx,
    pool_id: &str,
    identifier: &str,
    name: &str,
    scopes: Option<Vec<ResourceServerScopeType>>,
) -> ApiResult<ResourceServerType> {
    let server = view(pool_id, identifier, name.to_owned(), checked_scopes(scopes)?);
    modify_pool(ctx, pool_id, |doc| match doc.resource_servers.get_mut(identifier) {
        Some(stored) => {
            *stored = server.clone();
            Ok(())
        }
        None => Err(not_found(identifier)),
    })
    .await?;
    Ok(server)
}

pub async fn delete(ctx: &Ctx, pool_id: &str, identifier: &str) -> ApiResult<()> {
    modify_pool(ctx, pool_id, |doc| {
        doc.resource_servers.remove(identifier).map(|_| ()).ok_or_else(|| not_found(identifier))
    })
    .await?;
    Ok(())
}

pub async fn describe(ctx: &Ctx, pool_id: &str, identifier: &str) -> ApiResult<ResourceServerType> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    doc.resource_servers.get(identifier).cloned().ok_or_else(|| not_found(identifier))
}

/// The pool's resource servers by identifier (byte order), strictly after `after`.
pub async fn list(ctx: &Ctx, pool_id: &str, after: Option<&str>, limit: usize) -> ApiResult<Vec<ResourceServerType>> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    Ok(doc
        .resource_servers
        .iter()
        .filter(|(identifier, _)| after.is_none_or(|a| identifier.as_str() > a))
        .take(limit)
        .map(|(_, server)| server.clone())
        .collect())
}
