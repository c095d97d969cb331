//! A user's own account, through an app client whose SECRET_HASH the caller has checked:
//! signing up, confirming the sign-up, asking for the code again, and resetting a forgotten
//! password. The JSON operations and the hosted UI's pages both call these. Where the
//! client hides user existence (PreventUserExistenceErrors), unknown users get the same
//! answers, after the same work, as real ones.

use std::collections::BTreeMap;

use cognate_api::idp::{AttributeType, CodeDeliveryDetailsType, UserPoolType, UserStatusType};
use cognate_api::ErrorCode;
use cognate_store::{CodeCheck, StoreError};

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks;
use crate::hooks_messages::{self, Occasion, Outgoing, Prepared};
use crate::users::attributes::{check_changes, check_required, Writer};
use crate::users::changes::{
    check_client_writes, consume_code_with_update, recovery_channel, send_reset_code, sign_up_identity,
};
use crate::users::delivery::{self, Channel};
use crate::users::{self, codes, lockout, password, NewUser, User, UserDoc};

/// Where a sign-up confirmation code goes: SMS if the pool auto-verifies phone numbers and
/// the user has one, else email (Cognito's preference).
fn confirmation_channel(pool: &UserPoolType, user: &User) -> Option<(Channel, String)> {
    let auto = pool.auto_verified_attributes.clone().unwrap_or_default();
    let wants = |a: &str| auto.iter().any(|v| v.as_str() == a);
    if wants("phone_number") {
        if let Some(phone) = user.attr("phone_number") {
            return Some((Channel::Sms, phone.to_owned()));
        }
    }
    if wants("email") {
        if let Some(email) = user.attr("email") {
            return Some((Channel::Email, email.to_owned()));
        }
    }
    None
}

/// A plausible delivery answer for a user that does not exist, so that a client with
/// PreventUserExistenceErrors cannot tell.
fn simulated_details(pool: &UserPoolType, login: &str) -> CodeDeliveryDetailsType {
    let phone =
        pool.auto_verified_attributes.iter().flatten().any(|a| a.as_str() == "phone_number") && login.starts_with('+');
    if phone {
        delivery::details(Channel::Sms, login)
    } else if login.contains('@') {
        delivery::details(Channel::Email, login)
    } else {
        delivery::details(Channel::Email, &format!("{login}@example.com"))
    }
}

/// A new, unconfirmed user, and where its confirmation code went (none when the pool
/// verifies no contact the user gave).
pub struct SignedUp {
    pub sub: String,
    pub code_delivery: Option<CodeDeliveryDetailsType>,
    /// A PreSignUp function confirmed the user (UserConfirmed).
    pub confirmed: bool,
}

pub async fn sign_up(
    ctx: &Ctx,
    call: &ClientCall,
    login: &str,
    secret: Option<&str>,
    (given, validation_data): (&[AttributeType], &[AttributeType]),
) -> ApiResult<SignedUp> {
    let pool = &call.pool.pool;
    if pool.admin_create_user_config.as_ref().and_then(|c| c.allow_admin_create_user_only) == Some(true) {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "SignUp is not permitted for this user pool"));
    }
    // The client's WriteAttributes bound what a public SignUp may set, as for
    // UpdateUserAttributes (verification flags are dropped below, as before).
    let names: Vec<&str> = given.iter().map(|a| a.name.as_str()).filter(|n| !n.ends_with("_verified")).collect();
    check_client_writes(&call.client, &names)?;
    let changes = check_changes(pool, given, Writer::Creation)?;
    let mut attributes: BTreeMap<String, String> =
        changes.into_iter().filter(|(n, _)| !n.ends_with("_verified")).collect();
    let sub = cognate_crypto::ids::uuid_v4();
    let username = sign_up_identity(pool, login, &mut attributes, &sub)?;
    attributes.insert("sub".into(), sub.clone());
    check_required(pool, &attributes)?;
    let Some(secret) = secret else {
        return Err(ApiError::invalid_parameter("A password is required to sign up in this user pool."));
    };
    password::check_policy(pool, secret)?;
    let source = ("PreSignUp_SignUp", username.as_str());
    let decision =
        hooks::pre_sign_up(ctx, (&call.pool_id, pool), Some(&call.client_id), source, &attributes, validation_data)
            .await?;
    decision.verify_contacts(&mut attributes);
    let sealed = password::seal_password(ctx, &call.pool_id, &sub, &username, secret).await?;
    let new = NewUser {
        pool_id: call.pool_id.clone(),
        username: username.clone(),
        sub: sub.clone(),
        status: if decision.auto_confirm { UserStatusType::Confirmed } else { UserStatusType::Unconfirmed },
        attributes,
        sealed_password: sealed,
        doc: UserDoc::default(),
    };
    let mut user = User::create(pool, new, ctx.now_ms());
    // The confirmation message is composed before the user is written, so that a failing
    // CustomMessage function fails the sign-up with nobody created.
    let confirmation =
        if decision.auto_confirm { None } else { prepare_confirmation(ctx, call, &user, Occasion::SignUp).await? };
    user.prepare_write(ctx.now_ms())?;
    let (record, index) = (user.record.clone(), user.index(pool));
    match ctx.store(move |s| Ok(s.insert_user(&record, &index))).await? {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => {
            return Err(ApiError::new(ErrorCode::UsernameExistsException, "User already exists"));
        }
        Err(StoreError::AliasTaken(kind)) => {
            return Err(ApiError::new(
                ErrorCode::UsernameExistsException,
                format!("An account with the given {kind} already exists."),
            ));
        }
        Err(other) => return Err(ApiError::internal(other)),
    }
    // Confirmed by a PreSignUp function: no code to send (and no PostConfirmation, as in
    // Cognito). Unconfirmed with no contact the pool verifies: none either.
    let code_delivery = match confirmation {
        Some(confirmation) => Some(send_confirmation(ctx, call, &user, confirmation).await?),
        None => None,
    };
    Ok(SignedUp { sub, code_delivery, confirmed: decision.auto_confirm })
}

/// A sign-up confirmation code and its message, composed but not yet the user's code.
struct Confirmation {
    code: String,
    prepared: Prepared,
    details: CodeDeliveryDetailsType,
}

/// The confirmation code's message, if the pool verifies a contact the user has.
async fn prepare_confirmation(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    occasion: Occasion,
) -> ApiResult<Option<Confirmation>> {
    let pool = &call.pool.pool;
    let Some((channel, destination)) = confirmation_channel(pool, user) else {
        return Ok(None);
    };
    let code = codes::new_code();
    let out = Outgoing {
        pool_id: &call.pool_id,
        pool,
        client_id: Some(&call.client_id),
        occasion,
        user,
        channel,
        destination: &destination,
    };
    let prepared = hooks_messages::prepare(ctx, &out, &code).await?;
    Ok(Some(Confirmation { code, prepared, details: delivery::details(channel, &destination) }))
}

/// Makes the confirmation's code the user's sign-up code and delivers its message.
async fn send_confirmation(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    confirmation: Confirmation,
) -> ApiResult<CodeDeliveryDetailsType> {
    let key = &user.record.username_key;
    codes::store(ctx, &call.pool_id, key, codes::SIGN_UP, &confirmation.code).await?;
    lockout::clear_code_guesses(ctx, &call.pool_id, key, codes::SIGN_UP).await?;
    confirmation.prepared.send(ctx).await?;
    Ok(confirmation.details)
}

/// A new sign-up confirmation code, delivered, if the pool verifies a contact the user has.
async fn resend_confirmation(ctx: &Ctx, call: &ClientCall, user: &User) -> ApiResult<Option<CodeDeliveryDetailsType>> {
    match prepare_confirmation(ctx, call, user, Occasion::ResendCode).await? {
        Some(confirmation) => Ok(Some(send_confirmation(ctx, call, user, confirmation).await?)),
        None => Ok(None),
    }
}

/// Confirms a sign-up with its code; the contact the code went to becomes verified. With
/// `force_alias_creation`, an alias another user holds moves to this one.
pub async fn confirm_sign_up(
    ctx: &Ctx,
    call: &ClientCall,
    login: &str,
    code: &str,
    force_alias_creation: bool,
) -> ApiResult<()> {
    let pool = call.pool.pool.clone();
    let found = users::find_user(ctx, &call.pool_id, &pool, login).await?;
    let hides = call.hides_user_existence();
    if hides {
        // Real and unknown users alike: the same guess counter, the same answers.
        let key = found.as_ref().map_or_else(|| users::username_key(&pool, login), |u| u.record.username_key.clone());
        lockout::reserve_code_guess(ctx, &call.pool_id, &key, codes::SIGN_UP).await?;
    }
    let Some(mut user) = found else {
        if hides {
            // Spend what a real check spends, then answer as a wrong code would.
            let _ = codes::code_hash(ctx, &call.pool_id, login, codes::SIGN_UP, code);
            return Err(wrong_code());
        }
        return Err(call.user_not_found());
    };
    if hides && user.status() != UserStatusType::Unconfirmed {
        // A confirmed user has no sign-up code left: any code is a wrong one.
        return Err(wrong_code());
    }
    if user.status() != UserStatusType::Unconfirmed {
        return Err(ApiError::new(
            ErrorCode::NotAuthorizedException,
            format!("User cannot be confirmed. Current status is {}", user.record.status.as_str()),
        ));
    }
    // The contact that received the code becomes verified with the confirmation.
    let verified = confirmation_channel(&pool, &user).map(|(channel, _)| channel.attribute());
    user.set_status(UserStatusType::Confirmed);
    if let Some(attribute) = verified {
        user.attributes.insert(format!("{attribute}_verified"), "true".into());
    }
    let check = consume_code_with_update(ctx, &call.pool_id, &pool, &mut user, codes::SIGN_UP, code)
        .await
        .map_err(|err| if hides { hide_code_state(err) } else { err });
    match check {
        Err(err)
            if err.code == crate::error::Code::Modelled(ErrorCode::AliasExistsException) && force_alias_creation =>
        {
            // The alias moves to this user: the previous holder loses the verified mark.
            if let Some(attribute) = verified {
                release_alias(ctx, &call.pool_id, &pool, attribute, user.attr(attribute).unwrap_or_default()).await?;
            }
            let mut fresh = users::require_user(ctx, &call.pool_id, &pool, login).await?;
            fresh.set_status(UserStatusType::Confirmed);
            if let Some(attribute) = verified {
                fresh.attributes.insert(format!("{attribute}_verified"), "true".into());
            }
            consume_code_with_update(ctx, &call.pool_id, &pool, &mut fresh, codes::SIGN_UP, code).await?;
            user = fresh;
        }
        other => other?,
    }
    let (pool_ref, client) = ((call.pool_id.as_str(), &pool), Some(call.client_id.as_str()));
    hooks::post_confirmation(ctx, pool_ref, client, "PostConfirmation_ConfirmSignUp", &user).await
}

/// The answer to a wrong code, and to any code of a user who has none (unknown users, in a
/// pool hiding user existence).
fn wrong_code() -> ApiError {
    codes::rejection(&CodeCheck::Mismatch { attempts_left: 0 })
        .unwrap_or_else(|| ApiError::new(ErrorCode::CodeMismatchException, "Invalid code"))
}

/// In a pool hiding user existence, "no code" and "expired code" would tell a real user from
/// an unknown one (who only ever gets a wrong-code answer): they answer as a wrong code.
fn hide_code_state(err: ApiError) -> ApiError {
    if err.code == crate::error::Code::Modelled(ErrorCode::ExpiredCodeException) {
        wrong_code()
    } else {
        err
    }
}

/// Removes the verified mark of whoever holds `attribute = value` as an alias.
async fn release_alias(ctx: &Ctx, pool_id: &str, pool: &UserPoolType, attribute: &str, value: &str) -> ApiResult<()> {
    let (pid, kind, key) = (pool_id.to_owned(), attribute.to_owned(), users::alias_key(attribute, value));
    let Some(record) = ctx.store(move |s| s.get_user_by_alias(&pid, &kind, &key)).await? else {
        return Ok(());
    };
    let mut holder = User::from_record(record)?;
    holder.attributes.insert(format!("{attribute}_verified"), "false".into());
    users::save_user_or_fail(ctx, pool, &mut holder).await
}

/// What a made-up code delivery writes, so that it costs what a real one does (a real
/// delivery stores the code, resets the guess counter and appends to the outbox: three
/// commits). The counter reset is the real one; the two stand-ins are single-use keys that
/// expire within a minute and name nothing.
async fn pretend_delivery(ctx: &Ctx, pool_id: &str, username_key: &str, purpose: &str) -> ApiResult<()> {
    lockout::clear_code_guesses(ctx, pool_id, username_key, purpose).await?;
    for _ in 0..2 {
        let (key, now) = (format!("pretend:{}", crate::sealed::nonce()), ctx.now_ms());
        ctx.store(move |s| s.consume_once(&key, now + 60_000, now)).await?;
    }
    Ok(())
}

/// Sends a new sign-up confirmation code; where it went.
pub async fn resend_confirmation_code(
    ctx: &Ctx,
    call: &ClientCall,
    login: &str,
) -> ApiResult<Option<CodeDeliveryDetailsType>> {
    let pool = call.pool.pool.clone();
    let found = users::find_user(ctx, &call.pool_id, &pool, login).await?;
    if call.hides_user_existence() {
        // Anyone who cannot be sent a code (unknown, confirmed, no contact) gets a made-up
        // delivery, after the same counter write a real new code makes.
        let sendable = found
            .as_ref()
            .filter(|u| u.status() == UserStatusType::Unconfirmed && confirmation_channel(&pool, u).is_some());
        let Some(user) = sendable else {
            let key =
                found.as_ref().map_or_else(|| users::username_key(&pool, login), |u| u.record.username_key.clone());
            pretend_delivery(ctx, &call.pool_id, &key, codes::SIGN_UP).await?;
            return Ok(Some(simulated_details(&pool, login)));
        };
        return resend_confirmation(ctx, call, user).await;
    }
    let Some(user) = found else {
        return Err(call.user_not_found());
    };
    if user.status() != UserStatusType::Unconfirmed {
        return Err(ApiError::invalid_parameter("User is already confirmed."));
    }
    let details = resend_confirmation(ctx, call, &user).await?;
    if details.is_none() {
        return Err(ApiError::invalid_parameter(
            "Cannot send a confirmation code: the user has no contact attribute the pool verifies.",
        ));
    }
    Ok(details)
}

/// Sends a password-reset code to the user's preferred verified contact; where it went.
pub async fn forgot_password(ctx: &Ctx, call: &ClientCall, login: &str) -> ApiResult<CodeDeliveryDetailsType> {
    let pool = call.pool.pool.clone();
    let found = match crate::migration::find_or_migrate(ctx, call, login, None).await? {
        Some(user) => Some(user),
        None => users::find_user(ctx, &call.pool_id, &pool, login).await?,
    };
    if call.hides_user_existence() {
        // Anyone who cannot be sent a code (unknown, disabled, no verified contact) gets a
        // made-up delivery, after the same counter write a real new code makes.
        let sendable = found.as_ref().filter(|u| u.record.enabled && recovery_channel(&pool, u).is_some());
        let Some(user) = sendable else {
            let key =
                found.as_ref().map_or_else(|| users::username_key(&pool, login), |u| u.record.username_key.clone());
            pretend_delivery(ctx, &call.pool_id, &key, codes::RESET_PASSWORD).await?;
            return Ok(simulated_details(&pool, login));
        };
        return send_reset_code(ctx, &call.pool_id, &pool, user, Some(&call.client_id)).await;
    }
    let Some(user) = found else {
        return Err(call.user_not_found());
    };
    if !user.record.enabled {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "User is disabled."));
    }
    send_reset_code(ctx, &call.pool_id, &pool, &user, Some(&call.client_id)).await
}

/// Sets a new password with a password-reset code.
pub async fn confirm_forgot_password(
    ctx: &Ctx,
    call: &ClientCall,
    login: &str,
    code: &str,
    new_password: &str,
) -> ApiResult<()> {
    let pool = call.pool.pool.clone();
    let found = users::find_user(ctx, &call.pool_id, &pool, login).await?;
    let hides = call.hides_user_existence();
    if hides {
        let key = found.as_ref().map_or_else(|| users::username_key(&pool, login), |u| u.record.username_key.clone());
        lockout::reserve_code_guess(ctx, &call.pool_id, &key, codes::RESET_PASSWORD).await?;
    }
    let Some(mut user) = found else {
        if hides {
            let _ = codes::code_hash(ctx, &call.pool_id, login, codes::RESET_PASSWORD, code);
            return Err(wrong_code());
        }
        return Err(call.user_not_found());
    };
    if let Err(weak) = password::check_policy(&pool, new_password) {
        if hides {
            // The policy would answer before the code and so name a real user: the code is
            // checked first (and kept when right, so the user can try a better password).
            let hash = codes::code_hash(ctx, &call.pool_id, &user.record.username_key, codes::RESET_PASSWORD, code);
            let (p, u, now) = (call.pool_id.clone(), user.record.username_key.clone(), ctx.now_ms());
            let check = ctx.store(move |s| s.check_code_keeping_it(&p, &u, codes::RESET_PASSWORD, &hash, now)).await?;
            if let Some(rejection) = codes::rejection(&check) {
                return Err(hide_code_state(rejection));
            }
        }
        return Err(weak);
    }
    let sealed =
        password::seal_password(ctx, &call.pool_id, &user.record.sub, &user.record.username, new_password).await?;
    user.record.password = Some(sealed);
    user.doc.temporary_password_expires_ms = None;
    if matches!(user.status(), UserStatusType::ResetRequired | UserStatusType::ForceChangePassword) {
        user.set_status(UserStatusType::Confirmed);
    }
    consume_code_with_update(ctx, &call.pool_id, &pool, &mut user, codes::RESET_PASSWORD, code)
        .await
        .map_err(|err| if hides { hide_code_state(err) } else { err })?;
    let (pool_ref, client) = ((call.pool_id.as_str(), &pool), Some(call.client_id.as_str()));
    hooks::post_confirmation(ctx, pool_ref, client, "PostConfirmation_ConfirmForgotPassword", &user).await
}
