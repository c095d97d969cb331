//! Who may touch which Cognito Sync data: an identity's credentials reach that identity's
//! data only; the developer's IAM credentials reach any identity of the pool.

use cognate_api::ErrorCode;
use cognate_store::IdentityRecord;

use crate::context::{Ctx, Principal};
use crate::error::{ApiError, ApiResult};

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFoundException, what)
}

fn not_authorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, message)
}

/// Refuses an identity's credentials on another identity's data (IAM credentials reach any
/// identity of the pool).
pub fn check_caller(ctx: &Ctx, identity_pool_id: &str, identity_id: &str) -> ApiResult<()> {
    if let Principal::Identity { identity_pool_id: own_pool, identity_id: own, .. } = &ctx.principal {
        if own_pool != identity_pool_id || own != identity_id {
            return Err(not_authorized("Access to this identity's data is not permitted for the caller."));
        }
    }
    Ok(())
}

/// The identity, if it is the pool's.
/// ResourceNotFound for an identity that is not the pool's.
pub fn identity_not_found(identity_id: &str) -> ApiError {
    not_found(&format!("Identity '{identity_id}' not found."))
}

pub fn pools_identity(
    record: Option<IdentityRecord>,
    identity_pool_id: &str,
    identity_id: &str,
) -> ApiResult<IdentityRecord> {
    match record {
        Some(record) if record.identity_pool_id == identity_pool_id => Ok(record),
        _ => Err(identity_not_found(identity_id)),
    }
}

/// The identity a call names, after checking the caller may touch its data: an identity's
/// credentials its own only, IAM credentials any identity of the pool.
pub async fn authorize(ctx: &Ctx, identity_pool_id: &str, identity_id: &str) -> ApiResult<IdentityRecord> {
    check_caller(ctx, identity_pool_id, identity_id)?;
    let id = identity_id.to_owned();
    let record = ctx.store(move |s| s.get_identity_by_id(&id)).await?;
    pools_identity(record, identity_pool_id, identity_id)
}

/// [`authorize`] for the listings, whose models list no ResourceNotFoundException: an
/// identity that is not the pool's is one the caller may not list.
pub async fn authorize_listing(ctx: &Ctx, identity_pool_id: &str, identity_id: &str) -> ApiResult<IdentityRecord> {
    authorize(ctx, identity_pool_id, identity_id).await.map_err(|err| {
        if err.type_name() == "ResourceNotFoundException" {
            not_authorized(&err.message)
        } else {
            err
        }
    })
}
