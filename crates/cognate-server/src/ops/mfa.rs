//! Multi-factor authentication settings: TOTP association and verification (with an access
//! token, or with the Session of sign-in's MFA_SETUP step), and the user's MFA preferences.
//! The MFA step of sign-in itself is `cognate_core::signin::mfa`.

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};
use cognate_core::access::authenticate;
use cognate_core::signin::mfa::{first_factors, open_totp, seal_totp, settings_view};
use cognate_core::signin::user_of_setup_session;
use cognate_core::users::{self, lockout, totp, User};
use cognate_core::{ApiError, ApiResult, Ctx};

pub async fn associate_software_token(
    ctx: Ctx,
    input: AssociateSoftwareTokenRequest,
) -> ApiResult<AssociateSoftwareTokenResponse> {
    let (pool_id, pool, mut user) = match (&input.access_token, &input.session) {
        (Some(token), _) => {
            let caller = authenticate(&ctx, token).await?;
            (caller.pool_id, caller.pool.pool, caller.user)
        }
        (None, Some(session)) => {
            let setup = user_of_setup_session(&ctx, session.expose()).await?;
            (setup.pool_id, setup.pool, setup.user)
        }
        (None, None) => return Err(ApiError::invalid_parameter("Either AccessToken or Session is required.")),
    };
    let secret = totp::new_secret();
    user.doc.mfa.totp_pending = Some(seal_totp(&ctx, &pool_id, &user.record.sub, &secret)?);
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    Ok(AssociateSoftwareTokenResponse { secret_code: Some(Sensitive(secret)), session: input.session })
}

pub async fn verify_software_token(
    ctx: Ctx,
    input: VerifySoftwareTokenRequest,
) -> ApiResult<VerifySoftwareTokenResponse> {
    let during_sign_in = input.access_token.is_none();
    let (pool_id, pool, mut user) = match (&input.access_token, &input.session) {
        (Some(token), _) => {
            let caller = authenticate(&ctx, token).await?;
            (caller.pool_id, caller.pool.pool, caller.user)
        }
        (None, Some(session)) => {
            let setup = user_of_setup_session(&ctx, session.expose()).await?;
            // A setup Session takes a few wrong codes, like any challenge Session.
            lockout::reserve_session_answer(&ctx, &setup.nonce).await?;
            (setup.pool_id, setup.pool, setup.user)
        }
        (None, None) => return Err(ApiError::invalid_parameter("Either AccessToken or Session is required.")),
    };
    // Every code offered counts toward the user's lockout until one is right.
    lockout::reserve_sign_in(&ctx, &pool_id, &user.record.username_key).await?;
    let Some(pending) = user.doc.mfa.totp_pending.clone() else {
        return Err(ApiError::new(
            ErrorCode::SoftwareTokenMFANotFoundException,
            "Software Token MFA has not been associated with the user.",
        ));
    };
    let secret = open_totp(&ctx, &pool_id, &user.record.sub, &pending)?;
    let Some(step) = totp::matching_step(&secret, input.user_code.expose(), ctx.now_ms() / 1000) else {
        return Err(ApiError::new(
            ErrorCode::EnableSoftwareTokenMFAException,
            "Code mismatch and fail enable Software Token MFA",
        ));
    };
    if !during_sign_in {
        // Right code with an access token: nothing else is pending. During sign-in the
        // counter clears when the sign-in completes.
        lockout::sign_in_succeeded(&ctx, &pool_id, &user.record.username_key).await?;
    }
    user.doc.mfa.totp_secret = Some(pending);
    user.doc.mfa.totp_pending = None;
    user.doc.mfa.totp_last_step = Some(step);
    if during_sign_in {
        // MFA_SETUP: the factor the user just set up becomes their MFA.
        user.doc.mfa.totp_enabled = true;
        user.doc.mfa.preferred = Some("SOFTWARE_TOKEN_MFA".into());
    }
    users::save_user_or_fail(&ctx, &pool, &mut user).await?;
    Ok(VerifySoftwareTokenResponse { status: Some(VerifySoftwareTokenResponseType::Success), session: input.session })
}

/// Applies one factor's settings; `Enabled: true` needs the factor to be usable.
fn apply_setting(
    user: &mut User,
    factor: &'static str,
    enabled: Option<bool>,
    preferred: Option<bool>,
) -> ApiResult<()> {
    if let Some(on) = enabled {
        if on {
            let ready = match factor {
                "SOFTWARE_TOKEN_MFA" => user.doc.mfa.totp_secret.is_some(),
                "SMS_MFA" => user.attr("phone_number").is_some(),
                _ => user.attr("email").is_some(),
            };
            if !ready {
                let message = match factor {
                    "SOFTWARE_TOKEN_MFA" => "User has not verified software token mfa",
                    "SMS_MFA" => "User does not have delivery config set to turn on SMS_MFA",
                    _ => "User does not have delivery config set to turn on EMAIL_OTP",
                };
                return Err(ApiError::invalid_parameter(message));
            }
        }
        match factor {
            "SOFTWARE_TOKEN_MFA" => user.doc.mfa.totp_enabled = on,
            "SMS_MFA" => user.doc.mfa.sms_enabled = on,
            _ => user.doc.mfa.email_enabled = on,
        }
        if !on && user.doc.mfa.preferred.as_deref() == Some(factor) {
            user.doc.mfa.preferred = None;
        }
    }
    if preferred == Some(true) {
        if !user.doc.mfa.enabled().contains(&factor) {
            return Err(ApiError::invalid_parameter(format!("{factor} must be enabled to be the preferred MFA.")));
        }
        user.doc.mfa.preferred = Some(factor.to_owned());
    } else if preferred == Some(false) && user.doc.mfa.preferred.as_deref() == Some(factor) {
        user.doc.mfa.preferred = None;
    }
    Ok(())
}

fn apply_preferences(
    user: &mut User,
    sms: Option<&SMSMfaSettingsType>,
    totp_settings: Option<&SoftwareTokenMfaSettingsType>,
    email: Option<&EmailMfaSettingsType>,
) -> ApiResult<()> {
    if let Some(s) = totp_settings {
        apply_setting(user, "SOFTWARE_TOKEN_MFA", s.enabled, s.preferred_mfa)?;
    }
    if let Some(s) = sms {
        apply_setting(user, "SMS_MFA", s.enabled, s.preferred_mfa)?;
    }
    if let Some(s) = email {
        apply_setting(user, "EMAIL_OTP", s.enabled, s.preferred_mfa)?;
    }
    Ok(())
}

pub async fn set_user_mfa_preference(
    ctx: Ctx,
    input: SetUserMFAPreferenceRequest,
) -> ApiResult<SetUserMFAPreferenceResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let mut user = caller.user;
    apply_preferences(
        &mut user,
        input.sms_mfa_settings.as_ref(),
        input.software_token_mfa_settings.as_ref(),
        input.email_mfa_settings.as_ref(),
    )?;
    users::save_user_or_fail(&ctx, &caller.pool.pool, &mut user).await?;
    Ok(SetUserMFAPreferenceResponse {})
}

pub async fn admin_set_user_mfa_preference(
    ctx: Ctx,
    input: AdminSetUserMFAPreferenceRequest,
) -> ApiResult<AdminSetUserMFAPreferenceResponse> {
    let (_, doc) = cognate_core::records::load_pool(&ctx, &input.user_pool_id).await?;
    let mut user = users::require_user(&ctx, &input.user_pool_id, &doc.pool, input.username.expose()).await?;
    apply_preferences(
        &mut user,
        input.sms_mfa_settings.as_ref(),
        input.software_token_mfa_settings.as_ref(),
        input.email_mfa_settings.as_ref(),
    )?;
    users::save_user_or_fail(&ctx, &doc.pool, &mut user).await?;
    Ok(AdminSetUserMFAPreferenceResponse {})
}

fn auth_factors_view(pool: &UserPoolType, user: &User) -> GetUserAuthFactorsResponse {
    let (user_mfa_setting_list, preferred_mfa_setting) = settings_view(user);
    GetUserAuthFactorsResponse {
        username: Sensitive(user.record.username.clone()),
        configured_user_auth_factors: Some(first_factors(pool, user)),
        user_mfa_setting_list,
        preferred_mfa_setting,
    }
}

pub async fn get_user_auth_factors(
    ctx: Ctx,
    input: GetUserAuthFactorsRequest,
) -> ApiResult<GetUserAuthFactorsResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    Ok(auth_factors_view(&caller.pool.pool, &caller.user))
}

pub async fn admin_get_user_auth_factors(
    ctx: Ctx,
    input: AdminGetUserAuthFactorsRequest,
) -> ApiResult<AdminGetUserAuthFactorsResponse> {
    let (_, doc) = cognate_core::records::load_pool(&ctx, &input.user_pool_id).await?;
    let user = users::require_user(&ctx, &input.user_pool_id, &doc.pool, input.username.expose()).await?;
    let view = auth_factors_view(&doc.pool, &user);
    Ok(AdminGetUserAuthFactorsResponse {
        username: view.username,
        configured_user_auth_factors: view.configured_user_auth_factors,
        user_mfa_setting_list: view.user_mfa_setting_list,
        preferred_mfa_setting: view.preferred_mfa_setting,
    })
}

/// The legacy MFAOptions form: an SMS option on phone_number turns SMS MFA on; none turns it off.
fn apply_mfa_options(user: &mut User, options: &[MFAOptionType]) -> ApiResult<()> {
    let sms = options.iter().any(|o| o.delivery_medium == Some(DeliveryMediumType::Sms));
    apply_setting(user, "SMS_MFA", Some(sms), None)
}

pub async fn set_user_settings(ctx: Ctx, input: SetUserSettingsRequest) -> ApiResult<SetUserSettingsResponse> {
    let caller = authenticate(&ctx, &input.access_token).await?;
    let mut user = caller.user;
    apply_mfa_options(&mut user, &input.mfa_options)?;
    users::save_user_or_fail(&ctx, &caller.pool.pool, &mut user).await?;
    Ok(SetUserSettingsResponse {})
}

pub async fn admin_set_user_settings(
    ctx: Ctx,
    input: AdminSetUserSettingsRequest,
) -> ApiResult<AdminSetUserSettingsResponse> {
    let (_, doc) = cognate_core::records::load_pool(&ctx, &input.user_pool_id).await?;
    let mut user = users::require_user(&ctx, &input.user_pool_id, &doc.pool, input.username.expose()).await?;
    apply_mfa_options(&mut user, &input.mfa_options)?;
    users::save_user_or_fail(&ctx, &doc.pool, &mut user).await?;
    Ok(AdminSetUserSettingsResponse {})
}
