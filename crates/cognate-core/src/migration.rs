//! The UserMigration trigger: a login the pool does not know is looked up in the old user
//! directory by the pool's function, at sign-in (`UserMigration_Authentication`, with the
//! password the user typed, so only the plain-password flows can migrate) or at ForgotPassword
//! (`UserMigration_ForgotPassword`). The function answers the user's attributes and status;
//! the user is created with them (and, when CONFIRMED, with that password) and the operation
//! carries on as if the user had been there.

use std::collections::BTreeMap;

use cognate_api::idp::{AttributeType, UserStatusType};
use cognate_api::ErrorCode;
use cognate_store::StoreError;
use serde_json::{json, Value};

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::lambda::{self, Event, Trigger};
use crate::users::attributes::{check_changes, check_required, Writer};
use crate::users::changes::sign_up_identity;
use crate::users::{self, password, NewUser, User, UserDoc};

/// The user `login` names, migrated by the pool's function if the pool does not have one;
/// None when the pool has no such user and no function (or the function has none).
/// `password` is the one typed at sign-in, None for ForgotPassword.
pub async fn find_or_migrate(
    ctx: &Ctx,
    call: &ClientCall,
    login: &str,
    typed_password: Option<&str>,
) -> ApiResult<Option<User>> {
    let pool = &call.pool.pool;
    let Some(function) = Trigger::UserMigration.function(pool.lambda_config.as_ref()) else {
        return Ok(None);
    };
    if let Some(user) = users::find_user(ctx, &call.pool_id, pool, login).await? {
        return Ok(Some(user));
    }
    let metadata = ctx.client_metadata.clone().unwrap_or_else(|| json!({}));
    let (source, request) = match typed_password {
        Some(secret) => (
            "UserMigration_Authentication",
            json!({"password": secret, "validationData": metadata, "clientMetadata": metadata}),
        ),
        None => ("UserMigration_ForgotPassword", json!({"validationData": metadata, "clientMetadata": metadata})),
    };
    let event = Event {
        trigger: Trigger::UserMigration,
        source,
        pool_id: &call.pool_id,
        user_name: login,
        client_id: Some(&call.client_id),
        version: "1",
        request,
    };
    let response = lambda::invoke(ctx, function, event).await?;
    let Some(given) = response.get("userAttributes").and_then(Value::as_object).filter(|a| !a.is_empty()) else {
        // No attributes: the old directory has no such user either.
        return Ok(None);
    };
    let status = match response.get("finalUserStatus").and_then(Value::as_str) {
        None | Some("CONFIRMED") if typed_password.is_some() => UserStatusType::Confirmed,
        None | Some("RESET_REQUIRED") => UserStatusType::ResetRequired,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLambdaResponseException,
                format!("Invalid finalUserStatus {other} in the UserMigration response."),
            ))
        }
    };
    let attributes: Vec<AttributeType> = given
        .iter()
        .map(|(name, value)| AttributeType {
            name: name.clone(),
            value: Some(value.as_str().map_or_else(|| value.to_string(), str::to_owned).into()),
        })
        .collect();
    let mut attributes: BTreeMap<String, String> = check_changes(pool, &attributes, Writer::Creation)
        .map_err(|err| ApiError::new(ErrorCode::InvalidLambdaResponseException, err.message))?
        .into_iter()
        .collect();
    let sub = cognate_crypto::ids::uuid_v4();
    let username = sign_up_identity(pool, login, &mut attributes, &sub)?;
    attributes.insert("sub".into(), sub.clone());
    check_required(pool, &attributes)?;
    let sealed = match (status.clone(), typed_password) {
        (UserStatusType::Confirmed, Some(secret)) => {
            Some(password::seal_password(ctx, &call.pool_id, &sub, &username, secret).await?)
        }
        _ => None,
    };
    let new = NewUser {
        pool_id: call.pool_id.clone(),
        username,
        sub,
        status,
        attributes,
        sealed_password: String::new(),
        doc: UserDoc::default(),
    };
    let mut user = User::create(pool, new, ctx.now_ms());
    // A user who must reset has no password until then, as imported users.
    user.record.password = sealed;
    user.prepare_write(ctx.now_ms())?;
    let (record, index) = (user.record.clone(), user.index(pool));
    match ctx.store(move |s| Ok(s.insert_user(&record, &index))).await? {
        Ok(()) => Ok(Some(user)),
        // Migrated by a concurrent sign-in a moment ago: that user it is.
        Err(StoreError::AlreadyExists(_)) => users::find_user(ctx, &call.pool_id, pool, login).await,
        Err(StoreError::AliasTaken(kind)) => Err(ApiError::new(
            ErrorCode::AliasExistsException,
            format!("An account with the given {kind} already exists."),
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}
