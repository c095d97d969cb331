//! Multi-factor authentication: TOTP association and verification, the user's MFA
//! preferences, and the MFA step of sign-in (SOFTWARE_TOKEN_MFA, SMS_MFA, EMAIL_OTP,
//! SELECT_MFA_TYPE, MFA_SETUP).

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};

use super::clients_auth::ClientCall;
use super::common::PoolDoc;
use super::self_service::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;
use crate::users::delivery::{self, Channel, Kind};
use crate::users::{self, codes, lockout, totp, User};

pub const MFA_CODE_PURPOSE: &str = "mfa";

fn seal_totp(ctx: &Ctx, pool_id: &str, sub: &str, secret: &str) -> ApiResult<String> {
    crate::sealed::seal_bytes(ctx, crate::sealed::Purpose::TotpSecret { pool_id, sub }, secret.as_bytes())
}

fn open_totp(ctx: &Ctx, pool_id: &str, sub: &str, sealed_secret: &str) -> ApiResult<Vec<u8>> {
    let text = crate::sealed::open_bytes(ctx, crate::sealed::Purpose::TotpSecret { pool_id, sub }, sealed_secret)?;
    let text = String::from_utf8(text).map_err(ApiError::internal)?;
    totp::base32_decode(&text).ok_or_else(|| ApiError::internal("stored TOTP secret is not base32"))
}

/// Checks a TOTP code against the user's verified secret; a step already used is refused.
/// On success the accepted step is recorded in `user` (the caller saves it).
pub fn check_totp(ctx: &Ctx, pool_id: &str, user: &mut User, code: &str) -> ApiResult<bool> {
    let Some(sealed_secret) = user.doc.mfa.totp_secret.clone() else {
        return Err(ApiError::new(
            ErrorCode::SoftwareTokenMFANotFoundException,
            "Software Token MFA has not been enabled by the user.",
        ));
    };
    let secret = open_totp(ctx, pool_id, &user.record.sub, &sealed_secret)?;
    match totp::matching_step(&secret, code, ctx.now_ms() / 1000) {
        Some(step) if user.doc.mfa.totp_last_step.is_none_or(|last| step > last) => {
            user.doc.mfa.totp_last_step = Some(step);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Factors the pool offers (a user's enabled factor counts only if the pool has it).
fn pool_factors(pool: &PoolDoc) -> Vec<&'static str> {
    let mut out = Vec::new();
    if pool.pool.sms_configuration.is_some() {
        out.push("SMS_MFA");
    }
    if pool.software_token_mfa {
        out.push("SOFTWARE_TOKEN_MFA");
    }
    if pool.email_mfa.is_some() {
        out.push("EMAIL_OTP");
    }
    out
}

/// What the sign-in asks after the password: nothing (`None`: issue tokens), or a challenge.
pub enum MfaStep {
    None,
    Challenge(ChallengeNameType, Vec<(String, String)>),
}

pub async fn next_step(ctx: &Ctx, call: &ClientCall, user: &User) -> ApiResult<MfaStep> {
    let mode = call.pool.pool.mfa_configuration.clone().unwrap_or(UserPoolMfaType::Off);
    if mode == UserPoolMfaType::Off {
        return Ok(MfaStep::None);
    }
    let offered = pool_factors(&call.pool);
    let enabled: Vec<&str> = user.doc.mfa.enabled().into_iter().filter(|f| offered.contains(f)).collect();
    if enabled.is_empty() {
        if mode == UserPoolMfaType::Optional {
            return Ok(MfaStep::None);
        }
        // MFA is required and the user has no factor: SMS if possible, else set up TOTP.
        if offered.contains(&"SMS_MFA") && user.attr("phone_number").is_some() {
            return challenge(ctx, call, user, ChallengeNameType::SmsMfa).await;
        }
        if offered.contains(&"SOFTWARE_TOKEN_MFA") {
            return Ok(MfaStep::Challenge(
                ChallengeNameType::MfaSetup,
                vec![("MFAS_CAN_SETUP".into(), serde_json::json!(["SOFTWARE_TOKEN_MFA"]).to_string())],
            ));
        }
        return Err(ApiError::new(
            ErrorCode::MFAMethodNotFoundException,
            "No MFA mechanism registered in the account.",
        ));
    }
    let preferred = user.doc.mfa.preferred.as_deref().filter(|p| enabled.contains(p));
    let chosen = match (preferred, enabled.as_slice()) {
        (Some(p), _) => p,
        (None, [only]) => only,
        (None, many) => {
            return Ok(MfaStep::Challenge(
                ChallengeNameType::SelectMfaType,
                vec![("MFAS_CAN_CHOOSE".into(), serde_json::json!(many).to_string())],
            ))
        }
    };
    challenge(ctx, call, user, ChallengeNameType::from(chosen)).await
}

/// Builds an MFA challenge, sending the code first for SMS and email.
pub async fn challenge(ctx: &Ctx, call: &ClientCall, user: &User, name: ChallengeNameType) -> ApiResult<MfaStep> {
    let channel = match name {
        ChallengeNameType::SmsMfa | ChallengeNameType::SmsOtp => Channel::Sms,
        ChallengeNameType::EmailOtp => Channel::Email,
        _ => return Ok(MfaStep::Challenge(name, Vec::new())),
    };
    let destination = user
        .attr(channel.attribute())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::MFAMethodNotFoundException, "No MFA mechanism registered in the account.")
        })?
        .to_owned();
    let code = codes::issue(ctx, &call.pool_id, &user.record.username_key, MFA_CODE_PURPOSE).await?;
    let message =
        delivery::compose(&call.pool.pool, Kind::Verification, channel, &destination, &code, &user.record.username);
    delivery::deliver(ctx, &call.pool_id, &user.record.username, message).await?;
    let medium = if channel == Channel::Sms { "SMS" } else { "EMAIL" };
    Ok(MfaStep::Challenge(
        name,
        vec![
            ("CODE_DELIVERY_DELIVERY_MEDIUM".into(), medium.into()),
            ("CODE_DELIVERY_DESTINATION".into(), delivery::mask(channel, &destination)),
        ],
    ))
}

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
            let (pool_id, pool, user, _) = super::auth::user_of_setup_session(&ctx, session.expose()).await?;
            (pool_id, pool, user)
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
            let (pool_id, pool, user, nonce) = super::auth::user_of_setup_session(&ctx, session.expose()).await?;
            // A setup Session takes a few wrong codes, like any challenge Session.
            lockout::reserve_session_answer(&ctx, &nonce).await?;
            (pool_id, pool, user)
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
    let (_, doc) = super::common::load_pool(&ctx, &input.user_pool_id).await?;
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

/// `UserMFASettingList` and `PreferredMfaSetting` for GetUser/AdminGetUser.
pub fn settings_view(user: &User) -> (Option<Vec<String>>, Option<String>) {
    let enabled: Vec<String> = user.doc.mfa.enabled().into_iter().map(str::to_owned).collect();
    ((!enabled.is_empty()).then_some(enabled), user.doc.mfa.preferred.clone())
}

/// The first factors a user can sign in with through USER_AUTH: what the pool allows and the
/// user has (a password; a verified email or phone for one-time codes).
/// The first factors the pool allows (Password unless the pool says otherwise).
pub fn pool_first_factors(pool: &UserPoolType) -> Vec<AuthFactorType> {
    pool.policies
        .as_ref()
        .and_then(|p| p.sign_in_policy.as_ref())
        .and_then(|s| s.allowed_first_auth_factors.clone())
        .unwrap_or_else(|| vec![AuthFactorType::Password])
}

/// The delivery parameters of a one-time-code challenge for a login that names no user (a
/// pool hiding user existence): shaped like a real delivery, nothing sent.
pub fn pretended_code_delivery(name: &ChallengeNameType, login: &str) -> Vec<(String, String)> {
    let (channel, medium) = match name {
        ChallengeNameType::SmsOtp | ChallengeNameType::SmsMfa => (Channel::Sms, "SMS"),
        _ => (Channel::Email, "EMAIL"),
    };
    let destination = match channel {
        Channel::Email if !login.contains('@') => format!("{login}@example.com"),
        _ => login.to_owned(),
    };
    vec![
        ("CODE_DELIVERY_DELIVERY_MEDIUM".into(), medium.into()),
        ("CODE_DELIVERY_DESTINATION".into(), delivery::mask(channel, &destination)),
    ]
}

pub fn first_factors(pool: &UserPoolType, user: &User) -> Vec<AuthFactorType> {
    let allowed = pool_first_factors(pool);
    let mut out = Vec::new();
    if allowed.contains(&AuthFactorType::Password) && user.record.password.is_some() {
        out.push(AuthFactorType::Password);
    }
    if allowed.contains(&AuthFactorType::EmailOtp) && user.is_verified("email") {
        out.push(AuthFactorType::EmailOtp);
    }
    if allowed.contains(&AuthFactorType::SmsOtp) && user.is_verified("phone_number") {
        out.push(AuthFactorType::SmsOtp);
    }
    out
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
    let (_, doc) = super::common::load_pool(&ctx, &input.user_pool_id).await?;
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
    let (_, doc) = super::common::load_pool(&ctx, &input.user_pool_id).await?;
    let mut user = users::require_user(&ctx, &input.user_pool_id, &doc.pool, input.username.expose()).await?;
    apply_mfa_options(&mut user, &input.mfa_options)?;
    users::save_user_or_fail(&ctx, &doc.pool, &mut user).await?;
    Ok(AdminSetUserSettingsResponse {})
}
