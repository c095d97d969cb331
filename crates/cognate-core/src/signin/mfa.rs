//! The MFA step of sign-in (SOFTWARE_TOKEN_MFA, SMS_MFA, EMAIL_OTP, SELECT_MFA_TYPE,
//! MFA_SETUP) and one-time-code first factors (EMAIL_OTP, SMS_OTP); TOTP secrets at rest;
//! which factors a pool offers and a user has.

use cognate_api::idp::{AuthFactorType, ChallengeNameType, UserPoolMfaType, UserPoolType};
use cognate_api::ErrorCode;
use cognate_store::UsernameKey;

use super::state::{open_session, use_once};
use super::step::{challenge_step, not_authorized, wrong_password, Params, Step};
use super::tokens::complete_sign_in;

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks::token_source;
use crate::hooks_messages::{self, Occasion, Outgoing};
use crate::records::PoolDoc;
use crate::users::delivery::{self, Channel};
use crate::users::{self, codes, lockout, totp, User};

/// The code purpose of one-time codes sent for sign-in.
pub const MFA_CODE_PURPOSE: &str = "mfa";

pub fn seal_totp(ctx: &Ctx, pool_id: &str, sub: &str, secret: &str) -> ApiResult<String> {
    crate::sealed::seal_bytes(ctx, crate::sealed::Purpose::TotpSecret { pool_id, sub }, secret.as_bytes())
}

pub fn open_totp(ctx: &Ctx, pool_id: &str, sub: &str, sealed_secret: &str) -> ApiResult<Vec<u8>> {
    let text = crate::sealed::open_bytes(ctx, crate::sealed::Purpose::TotpSecret { pool_id, sub }, sealed_secret)?;
    let text = String::from_utf8(text).map_err(ApiError::internal)?;
    totp::base32_decode(&text).ok_or_else(|| ApiError::internal("stored TOTP secret is not base32"))
}

/// Checks a TOTP code against the user's verified secret; a step already used is refused.
/// On success the accepted step is recorded in `user` (the caller saves it).
fn check_totp(ctx: &Ctx, pool_id: &str, user: &mut User, code: &str) -> ApiResult<bool> {
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

/// The MFA challenge after the first factor, with its parameters (codes sent for SMS and
/// email), or None when the pool and user call for none.
pub(super) async fn next_challenge(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
) -> ApiResult<Option<(ChallengeNameType, Vec<(String, String)>)>> {
    let mode = call.pool.pool.mfa_configuration.clone().unwrap_or(UserPoolMfaType::Off);
    if mode == UserPoolMfaType::Off {
        return Ok(None);
    }
    let offered = pool_factors(&call.pool);
    let enabled: Vec<&str> = user.doc.mfa.enabled().into_iter().filter(|f| offered.contains(f)).collect();
    if enabled.is_empty() {
        if mode == UserPoolMfaType::Optional {
            return Ok(None);
        }
        // MFA is required and the user has no factor: SMS if possible, else set up TOTP.
        if offered.contains(&"SMS_MFA") && user.attr("phone_number").is_some() {
            let name = ChallengeNameType::SmsMfa;
            let parameters = send_code(ctx, call, user, &name).await?;
            return Ok(Some((name, parameters)));
        }
        if offered.contains(&"SOFTWARE_TOKEN_MFA") {
            let can_set_up = serde_json::json!(["SOFTWARE_TOKEN_MFA"]).to_string();
            return Ok(Some((ChallengeNameType::MfaSetup, vec![("MFAS_CAN_SETUP".into(), can_set_up)])));
        }
        return Err(no_mfa_method());
    }
    let preferred = user.doc.mfa.preferred.as_deref().filter(|p| enabled.contains(p));
    let chosen = match (preferred, enabled.as_slice()) {
        (Some(p), _) => p,
        (None, [only]) => only,
        (None, many) => {
            let can_choose = serde_json::json!(many).to_string();
            return Ok(Some((ChallengeNameType::SelectMfaType, vec![("MFAS_CAN_CHOOSE".into(), can_choose)])));
        }
    };
    let name = ChallengeNameType::from(chosen);
    let parameters = send_code(ctx, call, user, &name).await?;
    Ok(Some((name, parameters)))
}

fn no_mfa_method() -> ApiError {
    ApiError::new(ErrorCode::MFAMethodNotFoundException, "No MFA mechanism registered in the account.")
}

/// Sends the code of an SMS or email challenge and returns the challenge's delivery
/// parameters (none for the other challenges).
pub(super) async fn send_code(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    name: &ChallengeNameType,
) -> ApiResult<Vec<(String, String)>> {
    let channel = match name {
        ChallengeNameType::SmsMfa | ChallengeNameType::SmsOtp => Channel::Sms,
        ChallengeNameType::EmailOtp => Channel::Email,
        _ => return Ok(Vec::new()),
    };
    let destination = user.attr(channel.attribute()).ok_or_else(no_mfa_method)?.to_owned();
    let (pool_id, pool, client_id) = (call.pool_id.as_str(), &call.pool.pool, Some(call.client_id.as_str()));
    let out = Outgoing {
        pool_id,
        pool,
        client_id,
        occasion: Occasion::Authentication,
        user,
        channel,
        destination: &destination,
    };
    hooks_messages::prepare_code(ctx, &out, MFA_CODE_PURPOSE).await?.send(ctx).await?;
    Ok(delivery_parameters(channel, &destination))
}

fn delivery_parameters(channel: Channel, destination: &str) -> Vec<(String, String)> {
    let medium = if channel == Channel::Sms { "SMS" } else { "EMAIL" };
    vec![
        ("CODE_DELIVERY_DELIVERY_MEDIUM".into(), medium.into()),
        ("CODE_DELIVERY_DESTINATION".into(), delivery::mask(channel, destination)),
    ]
}

/// The delivery parameters of a one-time-code challenge for a login that names no user (a
/// pool hiding user existence): shaped like a real delivery, nothing sent.
pub(super) fn pretended_code_delivery(name: &ChallengeNameType, login: &str) -> Vec<(String, String)> {
    let channel = match name {
        ChallengeNameType::SmsOtp | ChallengeNameType::SmsMfa => Channel::Sms,
        _ => Channel::Email,
    };
    let destination = match channel {
        Channel::Email if !login.contains('@') => format!("{login}@example.com"),
        _ => login.to_owned(),
    };
    delivery_parameters(channel, &destination)
}

/// The first factors the pool allows (Password unless the pool says otherwise).
pub fn pool_first_factors(pool: &UserPoolType) -> Vec<AuthFactorType> {
    pool.policies
        .as_ref()
        .and_then(|p| p.sign_in_policy.as_ref())
        .and_then(|s| s.allowed_first_auth_factors.clone())
        .unwrap_or_else(|| vec![AuthFactorType::Password])
}

/// The first factors a user can sign in with through USER_AUTH: what the pool allows and the
/// user has (a password; a verified email or phone for one-time codes).
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

/// `UserMFASettingList` and `PreferredMfaSetting` for GetUser/AdminGetUser.
pub fn settings_view(user: &User) -> (Option<Vec<String>>, Option<String>) {
    let enabled: Vec<String> = user.doc.mfa.enabled().into_iter().map(str::to_owned).collect();
    ((!enabled.is_empty()).then_some(enabled), user.doc.mfa.preferred.clone())
}

/// Answers to MFA challenges and to one-time-code first factors.
pub(super) async fn answer(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &Params,
    session: Option<&str>,
    challenge: ChallengeNameType,
) -> ApiResult<Step> {
    let opened = open_session(ctx, call, session, &challenge)?;
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, &opened.user).await?;
    if user.is_none() && !call.hides_user_existence() {
        return Err(users::user_not_found());
    }
    let key = user.as_ref().map_or_else(|| UsernameKey::from(opened.user.as_str()), |u| u.record.username_key.clone());
    // The client proves itself before any guess is counted against the user.
    let username = user.as_ref().map_or(key.as_str(), |u| u.record.username.as_str());
    call.check_secret_hash(ctx, responses.secret_hash(), username)?;
    let guessed = matches!(
        challenge,
        ChallengeNameType::SoftwareTokenMfa
            | ChallengeNameType::SmsMfa
            | ChallengeNameType::SmsOtp
            | ChallengeNameType::EmailOtp
    );
    if guessed {
        // Reserved before the code is looked at: a Session takes a few wrong answers, and
        // every wrong answer counts toward the user's lockout.
        lockout::reserve_session_answer(ctx, &opened.nonce).await?;
        lockout::reserve_sign_in(ctx, &call.pool_id, &key).await?;
    }
    let Some(mut user) = user else {
        // Only a pool hiding user existence hands out Sessions for unknown logins (one-time
        // code challenges only): their answer is a wrong code's.
        let mismatch = cognate_store::CodeCheck::Mismatch { attempts_left: 0 };
        return Err(codes::rejection(&mismatch).unwrap_or_else(wrong_password));
    };
    match &challenge {
        ChallengeNameType::SoftwareTokenMfa => {
            let code = responses.required("SOFTWARE_TOKEN_MFA_CODE")?;
            if !check_totp(ctx, &call.pool_id, &mut user, code)? {
                return Err(ApiError::new(ErrorCode::CodeMismatchException, "Invalid code received for user"));
            }
            users::save_user_or_fail(ctx, &call.pool.pool, &mut user).await?;
        }
        ChallengeNameType::SmsMfa | ChallengeNameType::SmsOtp | ChallengeNameType::EmailOtp => {
            let name = match challenge {
                ChallengeNameType::SmsMfa => "SMS_MFA_CODE",
                ChallengeNameType::SmsOtp => "SMS_OTP_CODE",
                _ => "EMAIL_OTP_CODE",
            };
            let code = responses
                .get(name)
                .or_else(|| responses.get("EMAIL_MFA_CODE"))
                .ok_or_else(|| ApiError::invalid_parameter(format!("Missing required parameter {name}")))?;
            let hash = codes::code_hash(ctx, &call.pool_id, &user.record.username_key, MFA_CODE_PURPOSE, code);
            let (p, u, now) = (call.pool_id.clone(), user.record.username_key.clone(), ctx.now_ms());
            let check = ctx.store(move |s| s.check_code(&p, &u, MFA_CODE_PURPOSE, &hash, now)).await?;
            if let Some(err) = codes::rejection(&check) {
                return Err(err);
            }
        }
        ChallengeNameType::MfaSetup => {
            if !user.doc.mfa.totp_enabled {
                return Err(not_authorized("MFA setup is not complete: verify a software token first."));
            }
        }
        ChallengeNameType::SelectMfaType => {
            let answer = ChallengeNameType::from(responses.required("ANSWER")?);
            if !user.doc.mfa.enabled().contains(&answer.as_str()) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid ANSWER {} for SELECT_MFA_TYPE.",
                    answer.as_str()
                )));
            }
            use_once(ctx, &opened.nonce, opened.expires_ms).await?;
            let parameters = send_code(ctx, call, &user, &answer).await?;
            let (key, username) = (&user.record.username_key, &user.record.username);
            return challenge_step(ctx, call, key, username, answer, parameters, opened.auth_time);
        }
        _ => return Err(ApiError::internal("not an MFA challenge")),
    }
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    Ok(Step::SignedIn(
        complete_sign_in(ctx, call, user, (opened.auth_time, token_source::AUTHENTICATION), responses.device_key())
            .await?,
    ))
}
