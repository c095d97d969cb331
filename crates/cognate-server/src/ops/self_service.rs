//! Operations a signed-in user calls with an access token (GetUser, ChangePassword,
//! GlobalSignOut, ...; the token is verified by `cognate_core::access`), plus refresh-token
//! use and revocation and the admin global sign-out.

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};
use cognate_core::access::authenticate;
use cognate_core::clients::load_client;
use cognate_core::hooks_messages::Occasion;
use cognate_core::signin::mfa::settings_view;
use cognate_core::signin::{self, tokens::ClientProof};
use cognate_core::users::attributes::{check_changes, check_required, schema_entry, Writer};
use cognate_core::users::changes::check_client_writes;
use cognate_core::users::delivery::Channel;
use cognate_core::users::{self, codes, lockout, password, User};
use cognate_core::{ApiError, ApiResult, Ctx};

pub async fn get_user(ctx: Ctx, input: GetUserRequest) -> ApiResult<GetUserResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let user = caller.user;
    let (user_mfa_setting_list, preferred_mfa_setting) = settings_view(&user);
    // The client sees what its ReadAttributes allow (all when unset), and always `sub`.
    let readable: Option<Vec<String>> =
        caller.client.read_attributes.as_ref().map(|list| list.iter().cloned().chain(["sub".to_owned()]).collect());
    Ok(GetUserResponse {
        username: Sensitive(user.record.username.clone()),
        user_attributes: user.attribute_list(readable.as_deref()),
        user_mfa_setting_list,
        preferred_mfa_setting,
        mfa_options: None,
    })
}

/// Revokes every token the user holds: refresh tokens stop working and access tokens fail
/// Cognito API calls (they still verify offline until they expire, as with Cognito).
async fn sign_out_everywhere(ctx: &Ctx, pool: &UserPoolType, mut user: User) -> ApiResult<()> {
    // Access tokens carry whole seconds (iat). The cut-off is the next whole second, and the
    // call returns only once it has passed: every token issued before it is revoked, every
    // token issued after the call returns is not.
    let cutoff = (ctx.now_ms() / 1000 + 1) * 1000;
    user.doc.tokens_valid_after_ms = Some(cutoff);
    users::save_user_or_fail(ctx, pool, &mut user).await?;
    let wait = cutoff - cognate_core::context::millis(std::time::SystemTime::now());
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
    Ok(())
}

pub async fn global_sign_out(ctx: Ctx, input: GlobalSignOutRequest) -> ApiResult<GlobalSignOutResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    sign_out_everywhere(&ctx, &caller.pool.pool, caller.user).await?;
    Ok(GlobalSignOutResponse {})
}

pub async fn admin_user_global_sign_out(
    ctx: Ctx,
    input: AdminUserGlobalSignOutRequest,
) -> ApiResult<AdminUserGlobalSignOutResponse> {
    let (_, doc) = cognate_core::records::load_pool(&ctx, &input.user_pool_id).await?;
    let user = users::require_user(&ctx, &input.user_pool_id, &doc.pool, input.username.expose()).await?;
    sign_out_everywhere(&ctx, &doc.pool, user).await?;
    Ok(AdminUserGlobalSignOutResponse {})
}

pub async fn revoke_token(ctx: Ctx, input: RevokeTokenRequest) -> ApiResult<RevokeTokenResponse> {
    let call = load_client(&ctx, input.client_id.expose()).await?;
    if !call.check_client_secret(&ctx, input.client_secret.as_ref().map(|s| s.expose().as_str()))? {
        return Err(ApiError::new(ErrorCode::UnauthorizedException, "Invalid client secret."));
    }
    if call.client.enable_token_revocation == Some(false) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperationException,
            "Token revocation is not enabled for this client.",
        ));
    }
    signin::tokens::revoke(&ctx, &call, input.token.expose()).await?;
    Ok(RevokeTokenResponse {})
}

pub async fn change_password(ctx: Ctx, input: ChangePasswordRequest) -> ApiResult<ChangePasswordResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let pool = caller.pool.pool;
    let mut user = caller.user;
    let Some(previous) = input.previous_password.as_ref() else {
        return Err(ApiError::invalid_parameter("PreviousPassword is required."));
    };
    // A wrong PreviousPassword is a failed sign-in: same counter, same lockout.
    lockout::reserve_sign_in(&ctx, &caller.pool_id, &user.record.username_key).await?;
    let matches = signin::password_matches(&ctx, &caller.pool_id, &user, previous.expose().clone()).await?;
    if !matches {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "Incorrect username or password."));
    }
    lockout::sign_in_succeeded(&ctx, &caller.pool_id, &user.record.username_key).await?;
    password::check_policy(&pool, input.proposed_password.expose())?;
    let sealed_password = password::seal_password(
        &ctx,
        &caller.pool_id,
        &user.record.sub,
        &user.record.username,
        input.proposed_password.expose(),
    )
    .await?;
    user.record.password = Some(sealed_password);
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    Ok(ChangePasswordResponse {})
}

pub async fn delete_user(ctx: Ctx, input: DeleteUserRequest) -> ApiResult<()> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let (pool_id, key) = (caller.pool_id, caller.user.record.username_key);
    if !ctx.store(move |s| s.delete_user(&pool_id, &key)).await? {
        return Err(users::user_not_found());
    }
    Ok(())
}

pub async fn update_user_attributes(
    ctx: Ctx,
    input: UpdateUserAttributesRequest,
) -> ApiResult<UpdateUserAttributesResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let pool = caller.pool.pool.clone();
    let names: Vec<&str> = input.user_attributes.iter().map(|a| a.name.as_str()).collect();
    check_client_writes(&caller.client, &names)?;
    let changes = check_changes(&pool, &input.user_attributes, Writer::Admin)?;
    let mut user = caller.user;
    let mut to_verify = Vec::new();
    cognate_core::users::changes::apply_attribute_changes(&pool, &mut user, &changes, &mut to_verify)?;
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    let why = (Occasion::UpdateUserAttribute, caller.client.client_id.as_ref().map(|id| id.expose().as_str()));
    let sent =
        cognate_core::users::changes::send_verifications(&ctx, &caller.pool_id, &pool, &user, to_verify, why).await?;
    Ok(UpdateUserAttributesResponse { code_delivery_details_list: (!sent.is_empty()).then_some(sent) })
}

pub async fn delete_user_attributes(
    ctx: Ctx,
    input: DeleteUserAttributesRequest,
) -> ApiResult<DeleteUserAttributesResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let names: Vec<&str> = input.user_attribute_names.iter().map(String::as_str).collect();
    check_client_writes(&caller.client, &names)?;
    let pool = caller.pool.pool;
    let mut user = caller.user;
    for name in &input.user_attribute_names {
        let Some(entry) = schema_entry(&pool, name) else {
            return Err(ApiError::invalid_parameter(format!(
                "Attributes did not conform to the schema: {name}: Attribute does not exist in the schema."
            )));
        };
        if name == "sub" || entry.mutable == Some(false) {
            return Err(ApiError::invalid_parameter(format!(
                "Attributes did not conform to the schema: {name}: Attribute cannot be updated. (changing an immutable attribute)"
            )));
        }
        user.attributes.remove(name);
        if name == "email" || name == "phone_number" {
            user.attributes.remove(&format!("{name}_verified"));
        }
    }
    check_required(&pool, &user.attributes)?;
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    Ok(DeleteUserAttributesResponse {})
}

pub async fn get_user_attribute_verification_code(
    ctx: Ctx,
    input: GetUserAttributeVerificationCodeRequest,
) -> ApiResult<GetUserAttributeVerificationCodeResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let channel = match input.attribute_name.as_str() {
        "email" => Channel::Email,
        "phone_number" => Channel::Sms,
        other => {
            return Err(ApiError::invalid_parameter(format!(
                "Cannot verify attribute {other}: only email and phone_number can be verified."
            )))
        }
    };
    let user = &caller.user;
    let destination = user
        .doc
        .pending_attributes
        .get(channel.attribute())
        .map(String::as_str)
        .or_else(|| user.attr(channel.attribute()))
        .ok_or_else(|| ApiError::invalid_parameter(format!("The user has no {} to verify.", channel.attribute())))?
        .to_owned();
    let sent = cognate_core::users::changes::send_verifications(
        &ctx,
        &caller.pool_id,
        &caller.pool.pool,
        user,
        vec![(channel, destination)],
        (Occasion::VerifyUserAttribute, caller.client.client_id.as_ref().map(|id| id.expose().as_str())),
    )
    .await?;
    Ok(GetUserAttributeVerificationCodeResponse { code_delivery_details: sent.into_iter().next() })
}

pub async fn verify_user_attribute(
    ctx: Ctx,
    input: VerifyUserAttributeRequest,
) -> ApiResult<VerifyUserAttributeResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let attribute = input.attribute_name.as_str();
    if attribute != "email" && attribute != "phone_number" {
        return Err(ApiError::invalid_parameter(format!("Cannot verify attribute {attribute}.")));
    }
    let pool = caller.pool.pool;
    let mut user = caller.user;
    if let Some(pending) = user.doc.pending_attributes.remove(attribute) {
        user.attributes.insert(attribute.to_owned(), pending);
    }
    user.attributes.insert(format!("{attribute}_verified"), "true".into());
    let purpose = codes::verify_purpose(attribute);
    cognate_core::users::changes::consume_code_with_update(
        &ctx,
        &caller.pool_id,
        &pool,
        &mut user,
        &purpose,
        &input.code,
    )
    .await?;
    Ok(VerifyUserAttributeResponse {})
}

pub async fn get_tokens_from_refresh_token(
    ctx: Ctx,
    input: GetTokensFromRefreshTokenRequest,
) -> ApiResult<GetTokensFromRefreshTokenResponse> {
    let call = load_client(&ctx, input.client_id.expose()).await?;
    if !call.check_client_secret(&ctx, input.client_secret.as_ref().map(|s| s.expose().as_str()))? {
        return Err(ApiError::new(
            ErrorCode::NotAuthorizedException,
            format!("Unable to verify secret for client {}", call.client_id),
        ));
    }
    let token = input.refresh_token.expose();
    let mut tokens = signin::refresh(&ctx, &call, token, ClientProof::SecretChecked).await?;
    if call.client.refresh_token_rotation.as_ref().is_some_and(|r| r.feature == FeatureType::Enabled) {
        // The presented token is spent; its successor carries the same family.
        tokens.refresh_token = Some(signin::rotate_refresh_token(&ctx, token).await?);
    }
    Ok(GetTokensFromRefreshTokenResponse { authentication_result: Some(tokens.into()) })
}
