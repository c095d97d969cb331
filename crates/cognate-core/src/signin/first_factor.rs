//! First factors (a password by SRP or in plain, USER_AUTH's choice, a remembered device's
//! SRP) and what follows one: the status checks, NEW_PASSWORD_REQUIRED, device SRP, MFA or
//! tokens.

use std::collections::BTreeMap;
use std::time::Duration;

use cognate_api::idp::{AttributeType, AuthFactorType, ChallengeNameType, UserPoolType, UserStatusType};
use cognate_api::{ErrorCode, Sensitive};
use cognate_crypto::srp;
use cognate_store::UsernameKey;
use serde_json::{json, Value};

use super::mfa;
use super::state::{new_session, open_session, session_validity_ms, use_once, ChallengeResult, SecretBlock};
use super::step::{challenge_step, not_authorized, refuse_unusable, wrong_password, Challenge, Params, Step};
use super::tokens::complete_sign_in;

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks::token_source;
use crate::users::attributes::{check_changes, check_required, Writer};
use crate::users::{self, lockout, password, User};
use crate::{devices, hooks, sealed};

/// Names the derived key behind unknown users' SRP salts and verifiers.
const UNKNOWN_USER_SRP_KEY: &str = "unknown-user-srp-v1";
/// How far a PASSWORD_VERIFIER TIMESTAMP may be from the server's clock.
const TIMESTAMP_SKEW: Duration = Duration::from_secs(300);

/// Who a sign-in is for: the user, if there is one, and the key of the lockout counter (the
/// user's, or the normalised login of an unknown user, which a pool hiding user existence
/// counts the same way).
struct SignInTarget {
    user: Option<User>,
    key: UsernameKey,
}

impl SignInTarget {
    /// The name the client is told (USER_ID_FOR_SRP, USERNAME).
    fn username(&self) -> &str {
        self.user.as_ref().map_or(&self.key, |u| &u.record.username)
    }
}

/// Finds the signing-in user and applies the checks that come before the password.
async fn sign_in_user(ctx: &Ctx, call: &ClientCall, login: &str) -> ApiResult<SignInTarget> {
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, login).await?;
    let key = match &user {
        Some(user) => user.record.username_key.clone(),
        None if call.hides_user_existence() => users::username_key(&call.pool.pool, login),
        None => return Err(unknown_user(call)),
    };
    lockout::refuse_if_locked(ctx, &call.pool_id, &key).await?;
    if let Some(user) = &user {
        // Imported users have no password until they reset it.
        if user.status() == UserStatusType::ResetRequired && user.record.password.is_none() {
            return Err(ApiError::new(
                ErrorCode::PasswordResetRequiredException,
                "Password reset required for the user",
            ));
        }
    }
    hooks::pre_authentication(ctx, call, user.as_ref(), login).await?;
    Ok(SignInTarget { user, key })
}

/// The user a challenge Session names; in a pool hiding user existence the Session may name
/// an unknown login, which then fails later the way a wrong answer does.
async fn session_target(ctx: &Ctx, call: &ClientCall, username_key: &str) -> ApiResult<SignInTarget> {
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, username_key).await?;
    if user.is_none() && !call.hides_user_existence() {
        return Err(users::user_not_found());
    }
    Ok(SignInTarget {
        key: user.as_ref().map_or_else(|| UsernameKey::from(username_key), |u| u.record.username_key.clone()),
        user,
    })
}

fn unknown_user(call: &ClientCall) -> ApiError {
    if call.hides_user_existence() {
        wrong_password()
    } else {
        ApiError::new(ErrorCode::UserNotFoundException, "User does not exist.")
    }
}

fn user_challenge(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    name: ChallengeNameType,
    parameters: Vec<(String, String)>,
    auth_time: i64,
) -> ApiResult<Step> {
    challenge_step(ctx, call, &user.record.username_key, &user.record.username, name, parameters, auth_time)
}

// ---------------------------------------------------------------------------------------
// SRP
// ---------------------------------------------------------------------------------------

/// USER_SRP_AUTH (and USER_AUTH's PASSWORD_SRP): the server's half of the SRP exchange.
pub(super) async fn start_srp(ctx: &Ctx, call: &ClientCall, params: &Params) -> ApiResult<Step> {
    let login = params.required(Params::USERNAME)?;
    call.check_secret_hash(ctx, params.secret_hash(), login)?;
    let target = sign_in_user(ctx, call, login).await?;
    srp_challenge(ctx, call, params, target, None).await
}

/// The SRP step of a CUSTOM_AUTH sign-in that DefineAuthChallenge asked to prove the
/// password (its checks and PreAuthentication ran already); the result goes back to Define.
pub(super) async fn start_srp_within_custom(
    ctx: &Ctx,
    call: &ClientCall,
    params: &Params,
    history: Vec<ChallengeResult>,
) -> ApiResult<Step> {
    let login = params.required(Params::USERNAME)?;
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, login).await?;
    let key = match &user {
        Some(user) => user.record.username_key.clone(),
        None => users::username_key(&call.pool.pool, login),
    };
    srp_challenge(ctx, call, params, SignInTarget { user, key }, Some(history)).await
}

/// PASSWORD_VERIFIER for `target`, from the client's SRP_A.
async fn srp_challenge(
    ctx: &Ctx,
    call: &ClientCall,
    params: &Params,
    target: SignInTarget,
    custom: Option<Vec<ChallengeResult>>,
) -> ApiResult<Step> {
    let a_bytes = parse_srp_a(params)?;
    // An unknown user under PreventUserExistenceErrors gets a challenge made from a salt and
    // verifier derived from a server key and the normalised login: stable across calls like a
    // real user's, so the answer (and its cost) looks the same; the next step then fails.
    let (verifier, salt) = match &target.user {
        Some(user) => stored_verifier(ctx, &call.pool_id, user)?,
        None => unknown_user_verifier(ctx, &call.pool_id, &target.key),
    };
    let username = target.username().to_owned();
    let block = srp_block(ctx, call, &target.key, &verifier, a_bytes, (None, 0), custom).await?;
    Ok(Step::Challenge(Challenge {
        name: ChallengeNameType::PasswordVerifier,
        parameters: BTreeMap::from([
            ("SALT".to_owned(), srp::salt_hex(&salt)),
            ("SRP_B".to_owned(), block.srp_b),
            ("SECRET_BLOCK".to_owned(), block.secret_block),
            ("USER_ID_FOR_SRP".to_owned(), username.clone()),
            ("USERNAME".to_owned(), username),
        ]),
        session: None,
        available: None,
    }))
}

fn parse_srp_a(params: &Params) -> ApiResult<Vec<u8>> {
    srp::parse_hex(params.required("SRP_A")?).ok_or_else(|| ApiError::invalid_parameter("SRP_A is not hex."))
}

/// A server SRP challenge: its public B, and the sealed SECRET_BLOCK that carries the state.
struct SrpBlock {
    srp_b: String,
    secret_block: String,
}

async fn srp_block(
    ctx: &Ctx,
    call: &ClientCall,
    username_key: &str,
    verifier: &[u8],
    a_bytes: Vec<u8>,
    (device, auth_time): (Option<&str>, i64),
    custom: Option<Vec<ChallengeResult>>,
) -> ApiResult<SrpBlock> {
    let verifier = verifier.to_vec();
    let ephemeral =
        tokio::task::spawn_blocking(move || srp::server_challenge(&verifier)).await.map_err(ApiError::internal)?;
    let block = SecretBlock {
        pool: call.pool_id.clone(),
        client: call.client_id.clone(),
        user: username_key.to_owned(),
        b: hex::encode(ephemeral.secret()),
        big_b: hex::encode(ephemeral.public()),
        big_a: hex::encode(&a_bytes),
        expires_ms: ctx.now_ms() + session_validity_ms(&call.client),
        nonce: sealed::nonce(),
        device: device.map(str::to_owned),
        auth_time,
        custom,
    };
    // Clients base64-decode SECRET_BLOCK into the signed message: it must be base64.
    let sealed_block = sealed::seal(ctx, sealed::Purpose::SrpSecretBlock, &block)?;
    Ok(SrpBlock { srp_b: ephemeral.public_hex(), secret_block: base64_std(sealed_block.as_bytes()) })
}

/// The stand-in SRP salt (16 bytes, as real salts) and verifier (384 bytes) of a login that
/// names no user: a keyed hash of pool and login, so they never change between calls and
/// only the server can compute them.
fn unknown_user_verifier(ctx: &Ctx, pool_id: &str, username_key: &str) -> (Vec<u8>, Vec<u8>) {
    let key = ctx.state.keyring.derive_key(UNKNOWN_USER_SRP_KEY);
    let block = |label: &str| key.hmac_sha256(format!("{label}\0{pool_id}\0{username_key}").as_bytes());
    let salt = block("salt")[..16].to_vec();
    let verifier = (0..12).flat_map(|i| block(&format!("verifier-{i}"))).collect();
    (verifier, salt)
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The user's SRP verifier and salt.
fn stored_verifier(ctx: &Ctx, pool_id: &str, user: &User) -> ApiResult<(Vec<u8>, Vec<u8>)> {
    let Some(sealed_password) = &user.record.password else {
        return Err(wrong_password());
    };
    let stored = password::open_password(ctx, pool_id, &user.record.sub, sealed_password)?;
    let verifier = hex::decode(&stored.verifier).map_err(ApiError::internal)?;
    let salt = hex::decode(&stored.salt).map_err(ApiError::internal)?;
    Ok((verifier, salt))
}

/// What a right PASSWORD_VERIFIER leads to: the usual next step, or back to a CUSTOM_AUTH
/// sign-in's DefineAuthChallenge (with the user and the history so far).
pub(super) enum Verified {
    Step(Step),
    Custom(Box<User>, Vec<ChallengeResult>),
}

/// PASSWORD_VERIFIER: the client's claim, signed with the session key only the right password
/// gives.
pub(super) async fn password_verifier(ctx: &Ctx, call: &ClientCall, responses: &Params) -> ApiResult<Verified> {
    let login = responses.required(Params::USERNAME)?;
    call.check_secret_hash(ctx, responses.secret_hash(), login)?;
    let Claim { mut block, block_bytes, signature, timestamp } = open_claim(ctx, call, responses)?;
    if block.device.is_some() {
        return Err(not_authorized("Invalid session for the user."));
    }
    let custom = block.custom.take();
    use_once(ctx, &block.nonce, block.expires_ms).await?;
    let pool = &call.pool.pool;
    // The guess is counted before it is evaluated (an unknown login's too, on its own key).
    lockout::reserve_sign_in(ctx, &call.pool_id, &block.user).await?;
    let Some(user) = users::find_user(ctx, &call.pool_id, pool, &block.user).await? else {
        return Err(unknown_user(call));
    };
    if users::username_key(pool, login) != user.record.username_key && login != user.record.username {
        return Err(wrong_password());
    }
    let (verifier, _) = stored_verifier(ctx, &call.pool_id, &user)?;
    let pool_name = srp::pool_name(&call.pool_id).to_owned();
    let user_id = user.record.username.clone();
    let matches = tokio::task::spawn_blocking(move || {
        claim_matches(&block, &block_bytes, &verifier, &pool_name, &user_id, &timestamp, &signature)
    })
    .await
    .map_err(ApiError::internal)?;
    if let Some(history) = custom {
        // A custom sign-in: DefineAuthChallenge decides what follows the password.
        if !matches {
            return Err(wrong_password());
        }
        lockout::sign_in_succeeded(ctx, &call.pool_id, &user.record.username_key).await?;
        return Ok(Verified::Custom(Box::new(user), history));
    }
    finish_password_check(ctx, call, user, matches, responses.device_key()).await.map(Verified::Step)
}

/// DEVICE_SRP_AUTH: after the password, a remembered device starts its own SRP exchange.
pub(super) async fn device_srp(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &Params,
    session: Option<&str>,
) -> ApiResult<Step> {
    let opened = open_session(ctx, call, session, &ChallengeNameType::DeviceSrpAuth)?;
    let device_key = responses.required(Params::DEVICE_KEY)?;
    let a_bytes = parse_srp_a(responses)?;
    let user = users::require_user(ctx, &call.pool_id, &call.pool.pool, &opened.user).await?;
    call.check_secret_hash(ctx, responses.secret_hash(), &user.record.username)?;
    let (verifier, salt) = devices::device_verifier(ctx, &call.pool_id, &user, device_key)?;
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    let block =
        srp_block(ctx, call, &user.record.username_key, &verifier, a_bytes, (Some(device_key), opened.auth_time), None)
            .await?;
    Ok(Step::Challenge(Challenge {
        name: ChallengeNameType::DevicePasswordVerifier,
        parameters: BTreeMap::from([
            ("SRP_B".to_owned(), block.srp_b),
            ("SALT".to_owned(), srp::salt_hex(&salt)),
            ("SECRET_BLOCK".to_owned(), block.secret_block),
            ("USERNAME".to_owned(), user.record.username.clone()),
            ("DEVICE_KEY".to_owned(), device_key.to_owned()),
        ]),
        session: None,
        available: None,
    }))
}

/// DEVICE_PASSWORD_VERIFIER: the device's claim, signed with the device's SRP key.
pub(super) async fn device_password_verifier(ctx: &Ctx, call: &ClientCall, responses: &Params) -> ApiResult<Step> {
    let device_key = responses.required(Params::DEVICE_KEY)?.to_owned();
    let Claim { block, block_bytes, signature, timestamp } = open_claim(ctx, call, responses)?;
    if block.device.as_deref() != Some(device_key.as_str()) {
        return Err(not_authorized("Invalid session for the user."));
    }
    use_once(ctx, &block.nonce, block.expires_ms).await?;
    let user = users::require_user(ctx, &call.pool_id, &call.pool.pool, &block.user).await?;
    call.check_secret_hash(ctx, responses.secret_hash(), &user.record.username)?;
    let group_key = user.doc.device(&device_key).map(|d| d.group_key.clone()).ok_or_else(devices::device_not_found)?;
    let (verifier, _) = devices::device_verifier(ctx, &call.pool_id, &user, &device_key)?;
    let (key_for_claim, auth_time) = (device_key.clone(), block.auth_time);
    let matches = tokio::task::spawn_blocking(move || {
        claim_matches(&block, &block_bytes, &verifier, &group_key, &key_for_claim, &timestamp, &signature)
    })
    .await
    .map_err(ApiError::internal)?;
    if !matches {
        return Err(wrong_password());
    }
    let source = (auth_time, token_source::AUTHENTICATE_DEVICE);
    Ok(Step::SignedIn(complete_sign_in(ctx, call, user, source, Some(&device_key)).await?))
}

/// A PASSWORD_VERIFIER or DEVICE_PASSWORD_VERIFIER answer, opened and checked for its
/// client, expiry and clock skew (not yet for its signature).
struct Claim {
    block: SecretBlock,
    block_bytes: Vec<u8>,
    signature: String,
    timestamp: String,
}

fn open_claim(ctx: &Ctx, call: &ClientCall, responses: &Params) -> ApiResult<Claim> {
    let block_b64 = responses.required("PASSWORD_CLAIM_SECRET_BLOCK")?;
    let signature = responses.required("PASSWORD_CLAIM_SIGNATURE")?.to_owned();
    let timestamp = responses.required("TIMESTAMP")?.to_owned();
    let block_bytes = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(block_b64).map_err(|_| wrong_password())?
    };
    let block: SecretBlock = std::str::from_utf8(&block_bytes)
        .ok()
        .and_then(|text| sealed::open(ctx, sealed::Purpose::SrpSecretBlock, text))
        .ok_or_else(wrong_password)?;
    if block.pool != call.pool_id || block.client != call.client_id || block.expires_ms <= ctx.now_ms() {
        return Err(not_authorized("Invalid session for the user, session is expired."));
    }
    let when = srp::parse_timestamp(&timestamp).ok_or_else(|| ApiError::invalid_parameter("Invalid TIMESTAMP."))?;
    let skew = when.duration_since(ctx.now).unwrap_or_else(|e| e.duration());
    if skew > TIMESTAMP_SKEW {
        return Err(not_authorized("Timestamp is not within the allowed skew."));
    }
    Ok(Claim { block, block_bytes, signature, timestamp })
}

/// Recomputes the SRP session key from the block's ephemerals and the verifier and checks
/// the client's signature over `prefix ‖ user ‖ secret block ‖ timestamp` (blocking).
fn claim_matches(
    block: &SecretBlock,
    block_bytes: &[u8],
    verifier: &[u8],
    prefix: &str,
    user_id: &str,
    timestamp: &str,
    signature: &str,
) -> bool {
    let (Ok(b), Ok(big_b), Ok(big_a)) = (hex::decode(&block.b), hex::decode(&block.big_b), hex::decode(&block.big_a))
    else {
        return false;
    };
    let Ok(secret) = <[u8; 32]>::try_from(b.as_slice()) else { return false };
    let ephemeral = srp::ServerEphemeral::from_parts(secret, big_b);
    let Ok(key) = srp::session_key(&big_a, &ephemeral, verifier) else { return false };
    let expected = srp::password_claim_signature(&key, prefix, user_id, block_bytes, timestamp);
    srp::verify_claim(&expected, signature)
}

// ---------------------------------------------------------------------------------------
// Plain passwords
// ---------------------------------------------------------------------------------------

/// USER_PASSWORD_AUTH and ADMIN_USER_PASSWORD_AUTH.
pub(super) async fn password(ctx: &Ctx, call: &ClientCall, params: &Params) -> ApiResult<Step> {
    let login = params.required(Params::USERNAME)?;
    let given = params.required("PASSWORD")?.to_owned();
    call.check_secret_hash(ctx, params.secret_hash(), login)?;
    // A login the pool does not know may be migrated from the old directory first.
    crate::migration::find_or_migrate(ctx, call, login, Some(&given)).await?;
    let target = sign_in_user(ctx, call, login).await?;
    check_plain_password(ctx, call, target, given, params.device_key()).await
}

/// The hosted sign-in page's password: as USER_PASSWORD_AUTH, but the client proves itself
/// later (at the token endpoint), so no SECRET_HASH.
pub(super) async fn hosted_password(ctx: &Ctx, call: &ClientCall, login: &str, given: String) -> ApiResult<Step> {
    crate::migration::find_or_migrate(ctx, call, login, Some(&given)).await?;
    let target = sign_in_user(ctx, call, login).await?;
    check_plain_password(ctx, call, target, given, None).await
}

/// Counts the guess, then checks it (an unknown login costs as much and fails alike).
async fn check_plain_password(
    ctx: &Ctx,
    call: &ClientCall,
    target: SignInTarget,
    given: String,
    device: Option<&str>,
) -> ApiResult<Step> {
    lockout::reserve_sign_in(ctx, &call.pool_id, &target.key).await?;
    let Some(user) = target.user else {
        // The same work as a real password check, then the same answer as a wrong password.
        let _ = tokio::task::spawn_blocking(move || srp::compute_verifier("x", "x", &given, &[0; 16])).await;
        return Err(wrong_password());
    };
    let matches = password_matches(ctx, &call.pool_id, &user, given).await?;
    finish_password_check(ctx, call, user, matches, device).await
}

/// Checks a plain password against the stored verifier (off the async runtime).
pub async fn password_matches(ctx: &Ctx, pool_id: &str, user: &User, given: String) -> ApiResult<bool> {
    let (verifier, salt) = stored_verifier(ctx, pool_id, user)?;
    let pool_name = srp::pool_name(pool_id).to_owned();
    let username = user.record.username.clone();
    tokio::task::spawn_blocking(move || {
        let candidate = srp::compute_verifier(&pool_name, &username, &given, &salt);
        cognate_crypto::ct::eq(&candidate, &verifier)
    })
    .await
    .map_err(ApiError::internal)
}

// ---------------------------------------------------------------------------------------
// USER_AUTH: choice-based sign-in
// ---------------------------------------------------------------------------------------

/// USER_AUTH: choice-based sign-in over the first factors the pool allows and the user has.
/// A PREFERRED_CHALLENGE the user can take is started at once; otherwise SELECT_CHALLENGE.
pub(super) async fn start_user_auth(ctx: &Ctx, call: &ClientCall, params: &Params) -> ApiResult<Step> {
    let login = params.required(Params::USERNAME)?;
    call.check_secret_hash(ctx, params.secret_hash(), login)?;
    let target = sign_in_user(ctx, call, login).await?;
    let available = target_challenges(&call.pool.pool, &target);
    if let Some(preferred) = params.get("PREFERRED_CHALLENGE") {
        if available.iter().any(|c| c.as_str() == preferred) {
            return take_challenge(ctx, call, target, preferred, params).await;
        }
    }
    if available.is_empty() {
        return Err(not_authorized("The user has no sign-in method this pool allows."));
    }
    let session = new_session(ctx, call, &target.key, &ChallengeNameType::SelectChallenge, ctx.now_ms() / 1000)?;
    Ok(Step::Challenge(Challenge {
        name: ChallengeNameType::SelectChallenge,
        parameters: BTreeMap::new(),
        session: Some(session),
        available: Some(available),
    }))
}

/// SELECT_CHALLENGE answered: start the chosen factor.
pub(super) async fn answer_select_challenge(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &Params,
    session: Option<&str>,
) -> ApiResult<Step> {
    let opened = open_session(ctx, call, session, &ChallengeNameType::SelectChallenge)?;
    let answer = responses.required("ANSWER")?.to_owned();
    let target = session_target(ctx, call, &opened.user).await?;
    call.check_secret_hash(ctx, responses.secret_hash(), target.username())?;
    let available = target_challenges(&call.pool.pool, &target);
    if !available.iter().any(|c| c.as_str() == answer) {
        return Err(ApiError::invalid_parameter(format!("Invalid ANSWER {answer} for SELECT_CHALLENGE.")));
    }
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    take_challenge(ctx, call, target, &answer, responses).await
}

/// The first-factor challenges of a sign-in. An unknown login is offered what the pool
/// offers a user who has every factor; its answers then fail as wrong ones do.
fn target_challenges(pool: &UserPoolType, target: &SignInTarget) -> Vec<ChallengeNameType> {
    let factors = match &target.user {
        Some(user) => mfa::first_factors(pool, user),
        None => mfa::pool_first_factors(pool),
    };
    let mut out = Vec::new();
    for factor in factors {
        match factor {
            AuthFactorType::Password => {
                out.push(ChallengeNameType::Password);
                out.push(ChallengeNameType::PasswordSrp);
            }
            AuthFactorType::EmailOtp => out.push(ChallengeNameType::EmailOtp),
            AuthFactorType::SmsOtp => out.push(ChallengeNameType::SmsOtp),
            _ => {}
        }
    }
    out
}

/// Starts the chosen first factor; `inputs` carries what comes inline (PASSWORD, SRP_A).
async fn take_challenge(
    ctx: &Ctx,
    call: &ClientCall,
    target: SignInTarget,
    choice: &str,
    inputs: &Params,
) -> ApiResult<Step> {
    match choice {
        "PASSWORD" => {
            let given = inputs.required("PASSWORD")?.to_owned();
            check_plain_password(ctx, call, target, given, inputs.device_key()).await
        }
        "PASSWORD_SRP" => start_srp(ctx, call, &inputs.with(Params::USERNAME, target.username())).await,
        "EMAIL_OTP" | "SMS_OTP" => {
            let name = ChallengeNameType::from(choice);
            let auth_time = ctx.now_ms() / 1000;
            let Some(user) = &target.user else {
                let parameters = mfa::pretended_code_delivery(&name, &target.key);
                return challenge_step(ctx, call, &target.key, &target.key, name, parameters, auth_time);
            };
            let parameters = mfa::send_code(ctx, call, user, &name).await?;
            user_challenge(ctx, call, user, name, parameters, auth_time)
        }
        other => Err(ApiError::invalid_parameter(format!("Invalid ANSWER {other} for SELECT_CHALLENGE."))),
    }
}

// ---------------------------------------------------------------------------------------
// After the first factor
// ---------------------------------------------------------------------------------------

/// After a password check whose attempt was reserved: a wrong password stays counted; a
/// right one clears the counter unless an MFA step follows (whose guesses count on top), then
/// the sign-in continues: status checks, the new-password challenge, or tokens.
async fn finish_password_check(
    ctx: &Ctx,
    call: &ClientCall,
    user: User,
    matches: bool,
    device: Option<&str>,
) -> ApiResult<Step> {
    if !matches {
        return Err(wrong_password());
    }
    let key = user.record.username_key.clone();
    let next = after_password(ctx, call, user, device).await;
    // Tokens were issued by complete_sign_in, which cleared the counter already.
    let settled = match &next {
        Ok(Step::SignedIn(_)) => true,
        Ok(Step::Challenge(challenge)) => is_code_challenge(&challenge.name),
        Err(_) => false,
    };
    if !settled {
        lockout::sign_in_succeeded(ctx, &call.pool_id, &key).await?;
    }
    next
}

/// Challenges answered with a code someone could guess.
fn is_code_challenge(name: &ChallengeNameType) -> bool {
    matches!(
        name,
        ChallengeNameType::SoftwareTokenMfa
            | ChallengeNameType::SmsMfa
            | ChallengeNameType::SmsOtp
            | ChallengeNameType::EmailOtp
            | ChallengeNameType::SelectMfaType
            | ChallengeNameType::MfaSetup
    )
}

async fn after_password(ctx: &Ctx, call: &ClientCall, user: User, device: Option<&str>) -> ApiResult<Step> {
    refuse_unusable(&user)?;
    match user.status() {
        UserStatusType::ForceChangePassword => {
            if user.doc.temporary_password_expires_ms.is_some_and(|t| t <= ctx.now_ms()) {
                return Err(not_authorized("Temporary password has expired and must be reset by an administrator."));
            }
            new_password_challenge(ctx, call, &user)
        }
        _ => {
            let auth_time = ctx.now_ms() / 1000;
            if let Some(key) = device.filter(|k| devices::is_remembered(call, &user, k)) {
                // A remembered device proves itself with device SRP instead of MFA.
                let session =
                    new_session(ctx, call, &user.record.username_key, &ChallengeNameType::DeviceSrpAuth, auth_time)?;
                return Ok(Step::Challenge(Challenge {
                    name: ChallengeNameType::DeviceSrpAuth,
                    parameters: BTreeMap::from([
                        ("USERNAME".to_owned(), user.record.username.clone()),
                        ("DEVICE_KEY".to_owned(), key.to_owned()),
                    ]),
                    session: Some(session),
                    available: None,
                }));
            }
            mfa_or_tokens(ctx, call, user, (auth_time, token_source::AUTHENTICATION), device).await
        }
    }
}

/// After the first factor: an MFA challenge if the pool and user call for one, else tokens
/// (`source`: the PreTokenGeneration trigger source of tokens issued right away).
async fn mfa_or_tokens(
    ctx: &Ctx,
    call: &ClientCall,
    user: User,
    (auth_time, source): (i64, &str),
    device: Option<&str>,
) -> ApiResult<Step> {
    match mfa::next_challenge(ctx, call, &user).await? {
        None => Ok(Step::SignedIn(complete_sign_in(ctx, call, user, (auth_time, source), device).await?)),
        Some((name, parameters)) => user_challenge(ctx, call, &user, name, parameters, auth_time),
    }
}

// ---------------------------------------------------------------------------------------
// NEW_PASSWORD_REQUIRED
// ---------------------------------------------------------------------------------------

fn new_password_challenge(ctx: &Ctx, call: &ClientCall, user: &User) -> ApiResult<Step> {
    let pool = &call.pool.pool;
    let mut shown = user.attributes.clone();
    shown.remove("sub");
    let required: Vec<String> = pool
        .schema_attributes
        .iter()
        .flatten()
        .filter(|a| a.required == Some(true))
        .filter_map(|a| a.name.clone())
        .filter(|name| name != "sub" && user.attr(name).is_none_or(str::is_empty))
        .map(|name| format!("userAttributes.{name}"))
        .collect();
    let parameters = vec![
        ("requiredAttributes".to_owned(), Value::from(required).to_string()),
        ("userAttributes".to_owned(), json!(shown).to_string()),
    ];
    user_challenge(ctx, call, user, ChallengeNameType::NewPasswordRequired, parameters, ctx.now_ms() / 1000)
}

/// NEW_PASSWORD_REQUIRED answered: the new password (and any required attributes) set, the
/// user confirmed, then MFA or tokens.
pub(super) async fn new_password(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &Params,
    session: Option<&str>,
) -> ApiResult<Step> {
    let login = responses.required(Params::USERNAME)?;
    let new_password = responses.required("NEW_PASSWORD")?;
    call.check_secret_hash(ctx, responses.secret_hash(), login)?;
    let session = open_session(ctx, call, session, &ChallengeNameType::NewPasswordRequired)?;
    let pool = call.pool.pool.clone();
    let mut user = users::require_user(ctx, &call.pool_id, &pool, &session.user).await?;
    if users::username_key(&pool, login) != user.record.username_key && login != user.record.username {
        return Err(not_authorized("Invalid session for the user."));
    }
    if user.status() != UserStatusType::ForceChangePassword {
        return Err(not_authorized("Invalid session for the user."));
    }
    password::check_policy(&pool, new_password)?;
    let changes: Vec<AttributeType> = responses
        .with_prefix("userAttributes.")
        .map(|(name, value)| AttributeType { name: name.to_owned(), value: Some(Sensitive(value.to_owned())) })
        .collect();
    for (name, value) in check_changes(&pool, &changes, Writer::Admin)? {
        user.attributes.insert(name, value);
    }
    check_required(&pool, &user.attributes)?;
    use_once(ctx, &session.nonce, session.expires_ms).await?;
    let sealed_password =
        password::seal_password(ctx, &call.pool_id, &user.record.sub, &user.record.username, new_password).await?;
    user.record.password = Some(sealed_password);
    user.set_status(UserStatusType::Confirmed);
    user.doc.temporary_password_expires_ms = None;
    users::save_user_or_fail(ctx, &pool, &mut user).await?;
    let source = (session.auth_time, token_source::NEW_PASSWORD_CHALLENGE);
    mfa_or_tokens(ctx, call, user, source, responses.device_key()).await
}
