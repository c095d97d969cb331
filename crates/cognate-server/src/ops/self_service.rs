//! Operations a signed-in user calls with an access token (GetUser, ChangePassword,
//! GlobalSignOut, ...), plus token revocation and the admin global sign-out.
//!
//! Every access token is verified here: RS256 signature by the pool's access key, expiry,
//! `token_use`, issuer, scope, revocation of its token family, the user's global sign-out,
//! and that the user still exists and is enabled.

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};
use serde_json::Value;

use super::auth::RefreshClaims;
use super::clients_auth::load_client;
use super::common::{decode_doc, PoolDoc};
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;
use crate::users::attributes::{check_changes, check_required, schema_entry, Writer};
use crate::users::delivery::Channel;
use crate::users::{self, codes, lockout, password, User};
use crate::{sealed, tokens};

fn invalid_token() -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, "Invalid Access Token")
}

/// The verified caller of a token-authenticated operation.
pub struct TokenUser {
    pub pool_id: String,
    pub pool: PoolDoc,
    pub user: User,
    /// The app client the token was issued to (it still exists).
    pub client: UserPoolClientType,
}

pub async fn authenticate(ctx: &Ctx, token: &Sensitive<String>) -> ApiResult<TokenUser> {
    let token = token.expose();
    let claims = tokens::peek_claims(token).ok_or_else(invalid_token)?;
    let prefix = format!("{}/", ctx.config().public_url);
    let pool_id = claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| iss.strip_prefix(&prefix))
        .filter(|id| !id.contains('/'))
        .ok_or_else(invalid_token)?
        .to_owned();
    let lookup = pool_id.clone();
    let record = ctx.store(move |s| s.get_user_pool(&lookup)).await?.ok_or_else(invalid_token)?;
    let pool: PoolDoc = decode_doc(&record.doc)?;
    let keys = tokens::pool_keys(ctx, &pool_id, record.created_ms).await?;
    let claims =
        tokens::verify(&keys, token, tokens::ACCESS, ctx.now_ms() / 1000).map_err(|rejection| match rejection {
            tokens::Rejection::Expired => ApiError::new(ErrorCode::NotAuthorizedException, "Access Token has expired"),
            _ => invalid_token(),
        })?;
    let scopes = claims.get("scope").and_then(Value::as_str).unwrap_or_default();
    if !scopes.split(' ').any(|s| s == "aws.cognito.signin.user.admin") {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "Access Token does not have required scopes"));
    }
    let revoked = ApiError::new(ErrorCode::NotAuthorizedException, "Access Token has been revoked");
    if let Some(jti) = claims.get("origin_jti").and_then(Value::as_str) {
        let (p, j) = (pool_id.clone(), jti.to_owned());
        if ctx.store(move |s| s.is_token_family_revoked(&p, &j)).await? {
            return Err(revoked);
        }
    }
    // A deleted app client's tokens stop working, as Cognito's do.
    let client_id = claims.get("client_id").and_then(Value::as_str).ok_or_else(invalid_token)?.to_owned();
    let (p, c) = (pool_id.clone(), client_id);
    let client_record = ctx.store(move |s| s.get_app_client(&p, &c)).await?.ok_or_else(invalid_token)?;
    let client: UserPoolClientType = decode_doc(&client_record.doc)?;
    let username = claims.get("username").and_then(Value::as_str).ok_or_else(invalid_token)?;
    let user = users::find_user(ctx, &pool_id, &pool.pool, username).await?.ok_or_else(users::user_not_found)?;
    let sub = claims.get("sub").and_then(Value::as_str);
    if sub != Some(user.record.sub.as_str()) {
        return Err(users::user_not_found());
    }
    let issued_ms = claims.get("iat").and_then(Value::as_i64).unwrap_or(0) * 1000;
    if user.doc.tokens_valid_after_ms.is_some_and(|t| issued_ms < t) {
        return Err(revoked);
    }
    if !user.record.enabled {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "User is disabled."));
    }
    Ok(TokenUser { pool_id, pool, user, client })
}

pub async fn get_user(ctx: Ctx, input: GetUserRequest) -> ApiResult<GetUserResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let user = caller.user;
    let (user_mfa_setting_list, preferred_mfa_setting) = super::mfa::settings_view(&user);
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
    let wait = cutoff - crate::state::millis(std::time::SystemTime::now());
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
    let (_, doc) = super::common::load_pool(&ctx, &input.user_pool_id).await?;
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
    let Some(claims) = sealed::open::<RefreshClaims>(&ctx, sealed::Purpose::RefreshToken, input.token.expose()) else {
        return Err(ApiError::new(ErrorCode::UnsupportedTokenTypeException, "Unsupported token type."));
    };
    if claims.client != call.client_id || claims.pool != call.pool_id {
        return Err(ApiError::invalid_parameter("The token was not issued to this client."));
    }
    let (pool, jti, until) = (claims.pool, claims.origin_jti, claims.expires_ms);
    ctx.store(move |s| s.revoke_token_family(&pool, &jti, until)).await?;
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
    let stored = match &user.record.password {
        Some(sealed_password) => password::open_password(&ctx, &caller.pool_id, &user.record.sub, sealed_password)?,
        None => return Err(ApiError::new(ErrorCode::NotAuthorizedException, "Incorrect username or password.")),
    };
    let (pool_name, username, given) = (
        cognate_crypto::srp::pool_name(&caller.pool_id).to_owned(),
        user.record.username.clone(),
        previous.expose().clone(),
    );
    let matches = tokio::task::spawn_blocking(move || {
        let salt = hex::decode(&stored.salt).unwrap_or_default();
        let verifier = hex::decode(&stored.verifier).unwrap_or_default();
        let candidate = cognate_crypto::srp::compute_verifier(&pool_name, &username, &given, &salt);
        cognate_crypto::ct::eq(&candidate, &verifier)
    })
    .await
    .map_err(ApiError::internal)?;
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

/// Attributes an app client may write for its user: the client's WriteAttributes (all
/// mutable ones when unset), never verification flags or developer-only attributes.
pub fn check_client_writes(client: &UserPoolClientType, names: &[&str]) -> ApiResult<()> {
    for name in names {
        let listed = client.write_attributes.as_ref().is_none_or(|w| w.iter().any(|a| a == name));
        if !listed || name.ends_with("_verified") || name.starts_with("dev:") {
            return Err(ApiError::new(
                ErrorCode::NotAuthorizedException,
                format!("A client attempted to write unauthorized attribute {name}"),
            ));
        }
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
    super::users::apply_attribute_changes(&pool, &mut user, &changes, &mut to_verify)?;
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    let sent = super::users::send_verifications(&ctx, &caller.pool_id, &pool, &user, to_verify).await?;
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
    let sent =
        super::users::send_verifications(&ctx, &caller.pool_id, &caller.pool.pool, user, vec![(channel, destination)])
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
    super::sign_up::consume_code_with_update(&ctx, &caller.pool_id, &pool, &mut user, &purpose, &input.code).await?;
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
    let mut result = super::auth::refresh(&ctx, &call, token, None, true).await?;
    let rotating = call.client.refresh_token_rotation.as_ref().is_some_and(|r| r.feature == FeatureType::Enabled);
    if rotating {
        // The presented token is spent; its successor carries the same family.
        let claims: RefreshClaims = sealed::open(&ctx, sealed::Purpose::RefreshToken, token)
            .ok_or_else(|| ApiError::new(ErrorCode::NotAuthorizedException, "Invalid Refresh Token"))?;
        let spent_key =
            format!("refresh:{}", hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())));
        let (now, until) = (ctx.now_ms(), claims.expires_ms);
        if !ctx.store(move |s| s.consume_once(&spent_key, until, now)).await? {
            // A spent token offered again means two parties hold the family: revoke all of
            // it, so whoever rotated first (maybe a thief) is cut off too (OAuth 2.0 BCP).
            let (pool, jti) = (claims.pool.clone(), claims.origin_jti.clone());
            ctx.store(move |s| s.revoke_token_family(&pool, &jti, until)).await?;
            return Err(ApiError::new(
                ErrorCode::RefreshTokenReuseException,
                "The refresh token has already been used.",
            ));
        }
        let fresh = RefreshClaims { issued_ms: ctx.now_ms(), ..claims };
        result.refresh_token = Some(Sensitive(sealed::seal(&ctx, sealed::Purpose::RefreshToken, &fresh)?));
    }
    Ok(GetTokensFromRefreshTokenResponse { authentication_result: Some(result) })
}
