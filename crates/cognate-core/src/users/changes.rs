//! Changes to a user that more than one operation makes: what an app client may write, the
//! username a sign-up creates, attribute changes and their verification codes, a code
//! checked together with the write it allows, and password-reset codes.

use std::collections::BTreeMap;

use cognate_api::idp::{CodeDeliveryDetailsType, RecoveryOptionNameType, UserPoolClientType, UserPoolType};
use cognate_api::ErrorCode;
use cognate_store::StoreError;

use super::attributes::{check_required, is_valid_email, is_valid_phone};
use super::delivery::{self, Channel};
use super::{codes, lockout, User};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks_messages::{self, Occasion, Outgoing};

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

/// Resolves the username a SignUp creates: with email/phone as the username, the login is
/// stored as that attribute and the username is a UUID (the sub), as Cognito does.
pub fn sign_up_identity(
    pool: &UserPoolType,
    login: &str,
    attributes: &mut BTreeMap<String, String>,
    sub: &str,
) -> ApiResult<String> {
    let username_attributes: Vec<String> =
        pool.username_attributes.iter().flatten().map(|a| a.as_str().to_owned()).collect();
    if username_attributes.is_empty() {
        let aliases: Vec<String> = pool.alias_attributes.iter().flatten().map(|a| a.as_str().to_owned()).collect();
        if aliases.iter().any(|a| a == "email") && is_valid_email(login) {
            return Err(ApiError::invalid_parameter(
                "Username cannot be of email format, since user pool is configured for email alias.",
            ));
        }
        if aliases.iter().any(|a| a == "phone_number") && is_valid_phone(login) {
            return Err(ApiError::invalid_parameter(
                "Username cannot be of phone number format, since user pool is configured for phone number alias.",
            ));
        }
        return Ok(login.to_owned());
    }
    let attribute = if username_attributes.iter().any(|a| a == "email") && is_valid_email(login) {
        "email"
    } else if username_attributes.iter().any(|a| a == "phone_number") && is_valid_phone(login) {
        "phone_number"
    } else {
        let expected = if username_attributes.iter().any(|a| a == "email") { "an email" } else { "a phone number" };
        return Err(ApiError::invalid_parameter(format!("Username should be {expected}.")));
    };
    attributes.insert(attribute.to_owned(), login.to_owned());
    Ok(sub.to_owned())
}

/// Attributes whose change needs verification (email/phone the pool auto-verifies).
fn needs_verification(pool: &UserPoolType, name: &str) -> bool {
    pool.auto_verified_attributes.iter().flatten().any(|a| a.as_str() == name)
}

fn keeps_original_until_verified(pool: &UserPoolType, name: &str) -> bool {
    pool.user_attribute_update_settings
        .as_ref()
        .and_then(|s| s.attributes_require_verification_before_update.as_ref())
        .is_some_and(|list| list.iter().any(|a| a.as_str() == name))
}

/// Applies checked attribute changes to a user. Changed email/phone lose their verified mark
/// (or, when the pool keeps the original value until verification, wait as pending); the
/// contacts that need a verification code are pushed to `to_verify`.
pub fn apply_attribute_changes(
    pool: &UserPoolType,
    u: &mut User,
    changes: &[(String, String)],
    to_verify: &mut Vec<(Channel, String)>,
) -> ApiResult<()> {
    to_verify.clear();
    let explicitly_verified: Vec<&str> =
        changes.iter().filter(|(n, v)| n.ends_with("_verified") && v == "true").map(|(n, _)| n.as_str()).collect();
    for (name, value) in changes {
        let contact = name == "email" || name == "phone_number";
        let changed = u.attr(name) != Some(value.as_str());
        let verified_now = explicitly_verified.contains(&format!("{name}_verified").as_str());
        if contact && changed && !verified_now && needs_verification(pool, name) {
            let channel = if name == "email" { Channel::Email } else { Channel::Sms };
            to_verify.push((channel, value.clone()));
            if keeps_original_until_verified(pool, name) && u.is_verified(name) {
                u.doc.pending_attributes.insert(name.clone(), value.clone());
                continue;
            }
            u.attributes.insert(format!("{name}_verified"), "false".into());
        } else if contact && changed && !verified_now {
            u.attributes.insert(format!("{name}_verified"), "false".into());
        }
        u.attributes.insert(name.clone(), value.clone());
    }
    check_required(pool, &u.attributes)
}

/// Issues and delivers attribute verification codes, for `why` (the occasion, and the app
/// client of the call); returns where they went. Delivery problems are logged (the outbox
/// keeps the message) and the change stands; a failing CustomMessage function is the
/// caller's error (an attribute change it follows is already saved).
pub async fn send_verifications(
    ctx: &Ctx,
    pool_id: &str,
    pool: &UserPoolType,
    user: &User,
    to_verify: Vec<(Channel, String)>,
    why: (Occasion, Option<&str>),
) -> ApiResult<Vec<CodeDeliveryDetailsType>> {
    let (occasion, client_id) = why;
    let mut sent = Vec::new();
    for (channel, destination) in to_verify {
        let purpose = codes::verify_purpose(channel.attribute());
        let out = Outgoing { pool_id, pool, client_id, occasion, user, channel, destination: &destination };
        let prepared = hooks_messages::prepare_code(ctx, &out, &purpose).await?;
        if let Err(err) = prepared.send(ctx).await {
            tracing::warn!(error = %err.message, "verification message not delivered");
        }
        sent.push(delivery::details(channel, &destination));
    }
    Ok(sent)
}

/// Checks `code` and, in the same transaction when it is accepted, writes `user`.
pub async fn consume_code_with_update(
    ctx: &Ctx,
    pool_id: &str,
    pool: &UserPoolType,
    user: &mut User,
    purpose: &str,
    code: &str,
) -> ApiResult<()> {
    user.prepare_write(ctx.now_ms())?;
    user.record.version += 1;
    let hash = codes::code_hash(ctx, pool_id, &user.record.username_key, purpose, code);
    let (record, index, now, purpose) = (user.record.clone(), user.index(pool), ctx.now_ms(), purpose.to_owned());
    let pool_id = pool_id.to_owned();
    let outcome = ctx
        .store(move |s| {
            Ok(s.check_code_and_update_user(&pool_id, &record.username_key, &purpose, &hash, now, &record, &index))
        })
        .await?;
    match outcome {
        Ok(check) => match codes::rejection(&check) {
            None => Ok(()),
            Some(err) => Err(err),
        },
        Err(StoreError::AliasTaken(kind)) => Err(super::alias_exists(&kind)),
        Err(StoreError::VersionConflict(_)) => Err(crate::records::gave_up_on_conflicts(ctx, "The user")),
        Err(other) => Err(ApiError::internal(other)),
    }
}

/// Where a password-reset code goes: the pool's recovery preference among verified contacts.
pub fn recovery_channel(pool: &UserPoolType, user: &User) -> Option<(Channel, String)> {
    let mut options: Vec<(i32, Channel)> = match &pool.account_recovery_setting {
        Some(setting) => setting
            .recovery_mechanisms
            .iter()
            .flatten()
            .filter_map(|m| match m.name {
                RecoveryOptionNameType::VerifiedEmail => Some((m.priority, Channel::Email)),
                RecoveryOptionNameType::VerifiedPhoneNumber => Some((m.priority, Channel::Sms)),
                _ => None,
            })
            .collect(),
        // Without a setting Cognito prefers a verified phone, then a verified email.
        None => vec![(1, Channel::Sms), (2, Channel::Email)],
    };
    options.sort_by_key(|(priority, _)| *priority);
    options.into_iter().find_map(|(_, channel)| {
        let attribute = channel.attribute();
        user.is_verified(attribute).then(|| user.attr(attribute).map(|v| (channel, v.to_owned()))).flatten()
    })
}

/// Issues and delivers a password-reset code to the user's preferred verified contact
/// (ForgotPassword through `client_id`, AdminResetUserPassword without).
pub async fn send_reset_code(
    ctx: &Ctx,
    pool_id: &str,
    pool: &UserPoolType,
    user: &User,
    client_id: Option<&str>,
) -> ApiResult<CodeDeliveryDetailsType> {
    let Some((channel, destination)) = recovery_channel(pool, user) else {
        return Err(ApiError::invalid_parameter(
            "Cannot reset password for the user as there is no registered/verified email or phone_number",
        ));
    };
    let occasion = Occasion::ForgotPassword;
    let out = Outgoing { pool_id, pool, client_id, occasion, user, channel, destination: &destination };
    let prepared = hooks_messages::prepare_code(ctx, &out, codes::RESET_PASSWORD).await?;
    lockout::clear_code_guesses(ctx, pool_id, &user.record.username_key, codes::RESET_PASSWORD).await?;
    prepared.send(ctx).await?;
    Ok(delivery::details(channel, &destination))
}
