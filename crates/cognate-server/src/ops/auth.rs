//! Authentication: InitiateAuth / AdminInitiateAuth and RespondToAuthChallenge /
//! AdminRespondToAuthChallenge for SRP, password, refresh and new-password flows; lockout;
//! token issuance.
//!
//! Nothing about a sign-in in progress is kept on a node: the SRP state travels in a sealed
//! SECRET_BLOCK and the challenge state in a sealed `Session`, each bound to pool, client,
//! user and step, expiring, and single use (the store remembers used ones until they expire).

use std::collections::BTreeMap;
use std::time::Duration;

use cognate_api::idp::*;
use cognate_api::{ErrorCode, Sensitive};
use cognate_crypto::srp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::clients_auth::{load_client, ClientCall};
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;
use crate::users::attributes::{check_changes, check_required, Writer};
use crate::users::{self, lockout, password, User};
use crate::{sealed, tokens};

/// Names the derived key behind unknown users' SRP salts and verifiers.
const UNKNOWN_USER_SRP_KEY: &str = "unknown-user-srp-v1";
/// How far a PASSWORD_VERIFIER TIMESTAMP may be from the server's clock.
const TIMESTAMP_SKEW: Duration = Duration::from_secs(300);

fn not_authorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, message)
}

fn wrong_password() -> ApiError {
    not_authorized("Incorrect username or password.")
}

fn param<'a>(params: &'a BTreeMap<String, String>, name: &str) -> ApiResult<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::invalid_parameter(format!("Missing required parameter {name}")))
}

/// SRP state between InitiateAuth and PASSWORD_VERIFIER.
#[derive(Serialize, Deserialize)]
struct SecretBlock {
    pool: String,
    client: String,
    user: String,
    /// Server secret ephemeral b and public B, client public A (hex).
    b: String,
    big_b: String,
    big_a: String,
    expires_ms: i64,
    nonce: String,
    /// Set for a device SRP step: the device key, and the first factor's time.
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    auth_time: i64,
}

/// Challenge state between a challenge and its answer.
#[derive(Serialize, Deserialize)]
struct ChallengeSession {
    pool: String,
    client: String,
    user: String,
    challenge: String,
    auth_time: i64,
    expires_ms: i64,
    nonce: String,
}

/// What a refresh token carries.
#[derive(Serialize, Deserialize)]
pub struct RefreshClaims {
    pub pool: String,
    pub client: String,
    pub user: String,
    pub sub: String,
    pub origin_jti: String,
    pub auth_time: i64,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

/// Which ExplicitAuthFlows value allows a flow (legacy names included).
fn flow_allowed(client: &UserPoolClientType, flow: &AuthFlowType) -> bool {
    let flows: Vec<&str> = client.explicit_auth_flows.iter().flatten().map(|f| f.as_str()).collect();
    let legacy_only = flows.iter().all(|f| !f.starts_with("ALLOW_"));
    let has = |name: &str| flows.contains(&name);
    match flow {
        AuthFlowType::UserSrpAuth => has("ALLOW_USER_SRP_AUTH") || legacy_only,
        AuthFlowType::RefreshTokenAuth | AuthFlowType::RefreshToken => has("ALLOW_REFRESH_TOKEN_AUTH") || legacy_only,
        AuthFlowType::UserPasswordAuth => has("ALLOW_USER_PASSWORD_AUTH") || has("USER_PASSWORD_AUTH"),
        AuthFlowType::AdminUserPasswordAuth | AuthFlowType::AdminNoSrpAuth => {
            has("ALLOW_ADMIN_USER_PASSWORD_AUTH") || has("ADMIN_NO_SRP_AUTH")
        }
        AuthFlowType::CustomAuth => has("ALLOW_CUSTOM_AUTH") || has("CUSTOM_AUTH_FLOW_ONLY"),
        AuthFlowType::UserAuth => has("ALLOW_USER_AUTH"),
        AuthFlowType::Unknown(_) => false,
    }
}

fn auth_params(input: Option<&Sensitive<BTreeMap<String, String>>>) -> BTreeMap<String, String> {
    input.map(|p| p.expose().clone()).unwrap_or_default()
}

/// The shared start of a sign-in, for the public and the admin operation.
async fn initiate(
    ctx: &Ctx,
    call: ClientCall,
    flow: AuthFlowType,
    params: BTreeMap<String, String>,
    admin: bool,
) -> ApiResult<InitiateAuthResponse> {
    if !flow_allowed(&call.client, &flow) {
        return Err(ApiError::invalid_parameter(format!("{} flow not enabled for this client", flow.as_str())));
    }
    match flow {
        AuthFlowType::UserSrpAuth => start_srp(ctx, &call, &params).await,
        AuthFlowType::UserPasswordAuth if !admin => password_sign_in(ctx, &call, &params).await,
        AuthFlowType::AdminUserPasswordAuth | AuthFlowType::AdminNoSrpAuth if admin => {
            password_sign_in(ctx, &call, &params).await
        }
        AuthFlowType::RefreshTokenAuth | AuthFlowType::RefreshToken => {
            // With rotation, a refresh must return (and spend) a new refresh token, which only
            // GetTokensFromRefreshToken does, as Cognito documents.
            if call.client.refresh_token_rotation.as_ref().is_some_and(|r| r.feature == FeatureType::Enabled) {
                return Err(not_authorized(
                    "Refresh token rotation is enabled for this client: use GetTokensFromRefreshToken.",
                ));
            }
            let token = param(&params, "REFRESH_TOKEN")?;
            let result = refresh(ctx, &call, token, params.get("SECRET_HASH").map(String::as_str), false).await?;
            Ok(InitiateAuthResponse { authentication_result: Some(result), ..Default::default() })
        }
        AuthFlowType::CustomAuth => Err(ApiError::new(
            ErrorCode::UnsupportedOperationException,
            "CUSTOM_AUTH needs Lambda triggers, which Cognate does not support yet.",
        )),
        AuthFlowType::UserAuth => start_user_auth(ctx, &call, &params).await,
        other => Err(ApiError::invalid_parameter(format!("Invalid AuthFlow {} for this operation.", other.as_str()))),
    }
}

/// Who a sign-in is for: the user, if there is one, and the key of the lockout counter (the
/// user's, or the normalised login of an unknown user, which a pool hiding user existence
/// counts the same way).
struct SignInTarget {
    user: Option<User>,
    key: String,
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
    Ok(SignInTarget { user, key })
}

fn unknown_user(call: &ClientCall) -> ApiError {
    if call.hides_user_existence() {
        wrong_password()
    } else {
        ApiError::new(ErrorCode::UserNotFoundException, "User does not exist.")
    }
}

async fn start_srp(ctx: &Ctx, call: &ClientCall, params: &BTreeMap<String, String>) -> ApiResult<InitiateAuthResponse> {
    let login = param(params, "USERNAME")?;
    let a_hex = param(params, "SRP_A")?;
    let a_bytes = srp::parse_hex(a_hex).ok_or_else(|| ApiError::invalid_parameter("SRP_A is not hex."))?;
    call.check_secret_hash(ctx, params.get("SECRET_HASH").map(String::as_str), login)?;
    let target = sign_in_user(ctx, call, login).await?;
    // An unknown user under PreventUserExistenceErrors gets a challenge made from a salt and
    // verifier derived from a server key and the normalised login: stable across calls like a
    // real user's, so the answer (and its cost) looks the same; the next step then fails.
    let (username, verifier, salt) = match &target.user {
        Some(user) => {
            let stored = stored_verifier(ctx, &call.pool_id, user)?;
            (user.record.username.clone(), stored.0, stored.1)
        }
        None => {
            let (verifier, salt) = unknown_user_verifier(ctx, &call.pool_id, &target.key);
            (target.key.clone(), verifier, salt)
        }
    };
    let username_key = target.key;
    let ephemeral =
        tokio::task::spawn_blocking(move || srp::server_challenge(&verifier)).await.map_err(ApiError::internal)?;
    let block = SecretBlock {
        pool: call.pool_id.clone(),
        client: call.client_id.clone(),
        user: username_key,
        b: hex::encode(ephemeral.secret()),
        big_b: hex::encode(ephemeral.public()),
        big_a: hex::encode(&a_bytes),
        expires_ms: ctx.now_ms() + session_validity_ms(&call.client),
        nonce: sealed::nonce(),
        device: None,
        auth_time: 0,
    };
    let sealed_block = sealed::seal(ctx, sealed::Purpose::SrpSecretBlock, &block)?;
    // Clients base64-decode SECRET_BLOCK into the signed message: it must be base64.
    let secret_block = base64_std(sealed_block.as_bytes());
    let challenge_parameters = BTreeMap::from([
        ("SALT".to_owned(), srp::salt_hex(&salt)),
        ("SRP_B".to_owned(), ephemeral.public_hex()),
        ("SECRET_BLOCK".to_owned(), secret_block),
        ("USER_ID_FOR_SRP".to_owned(), username.clone()),
        ("USERNAME".to_owned(), username),
    ]);
    Ok(InitiateAuthResponse {
        challenge_name: Some(ChallengeNameType::PasswordVerifier),
        challenge_parameters: Some(challenge_parameters),
        ..Default::default()
    })
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

fn session_validity_ms(client: &UserPoolClientType) -> i64 {
    i64::from(client.auth_session_validity.unwrap_or(3).clamp(3, 15)) * 60_000
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

async fn password_sign_in(
    ctx: &Ctx,
    call: &ClientCall,
    params: &BTreeMap<String, String>,
) -> ApiResult<InitiateAuthResponse> {
    let login = param(params, "USERNAME")?;
    let given = param(params, "PASSWORD")?.to_owned();
    call.check_secret_hash(ctx, params.get("SECRET_HASH").map(String::as_str), login)?;
    let target = sign_in_user(ctx, call, login).await?;
    lockout::reserve_sign_in(ctx, &call.pool_id, &target.key).await?;
    let Some(user) = target.user else {
        return Err(spend_like_a_password_check(given).await);
    };
    let matches = password_matches(ctx, call, &user, given).await?;
    finish_password_check(ctx, call, user, matches, params.get("DEVICE_KEY").map(String::as_str)).await
}

/// For a login that names no user: the same work as a real password check, then the same
/// answer as a wrong password.
async fn spend_like_a_password_check(given: String) -> ApiError {
    let _ = tokio::task::spawn_blocking(move || srp::compute_verifier("x", "x", &given, &[0; 16])).await;
    wrong_password()
}

/// Checks a plain password against the stored verifier (off the async runtime).
async fn password_matches(ctx: &Ctx, call: &ClientCall, user: &User, given: String) -> ApiResult<bool> {
    let (verifier, salt) = stored_verifier(ctx, &call.pool_id, user)?;
    let pool_name = srp::pool_name(&call.pool_id).to_owned();
    let username = user.record.username.clone();
    tokio::task::spawn_blocking(move || {
        let candidate = srp::compute_verifier(&pool_name, &username, &given, &salt);
        cognate_crypto::ct::eq(&candidate, &verifier)
    })
    .await
    .map_err(ApiError::internal)
}

/// USER_AUTH: choice-based sign-in over the first factors the pool allows and the user has.
/// A PREFERRED_CHALLENGE the user can take is started at once; otherwise SELECT_CHALLENGE.
async fn start_user_auth(
    ctx: &Ctx,
    call: &ClientCall,
    params: &BTreeMap<String, String>,
) -> ApiResult<InitiateAuthResponse> {
    let login = param(params, "USERNAME")?;
    call.check_secret_hash(ctx, params.get("SECRET_HASH").map(String::as_str), login)?;
    let target = sign_in_user(ctx, call, login).await?;
    let available = target_challenges(&call.pool.pool, &target);
    if let Some(preferred) = params.get("PREFERRED_CHALLENGE") {
        if available.iter().any(|c| c.as_str() == preferred.as_str()) {
            return take_challenge(ctx, call, &target, preferred, params).await;
        }
    }
    if available.is_empty() {
        return Err(not_authorized("The user has no sign-in method this pool allows."));
    }
    let session = new_session_for(ctx, call, &target.key, ChallengeNameType::SelectChallenge, ctx.now_ms() / 1000)?;
    Ok(InitiateAuthResponse {
        challenge_name: Some(ChallengeNameType::SelectChallenge),
        session: Some(Sensitive(session)),
        available_challenges: Some(available),
        challenge_parameters: Some(BTreeMap::new()),
        ..Default::default()
    })
}

/// The first-factor challenges of a sign-in. An unknown login is offered what the pool
/// offers a user who has every factor; its answers then fail as wrong ones do.
fn target_challenges(pool: &UserPoolType, target: &SignInTarget) -> Vec<ChallengeNameType> {
    match &target.user {
        Some(user) => available_challenges(pool, user),
        None => challenges_of(super::mfa::pool_first_factors(pool)),
    }
}

fn available_challenges(pool: &UserPoolType, user: &User) -> Vec<ChallengeNameType> {
    challenges_of(super::mfa::first_factors(pool, user))
}

fn challenges_of(factors: Vec<AuthFactorType>) -> Vec<ChallengeNameType> {
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
    target: &SignInTarget,
    choice: &str,
    inputs: &BTreeMap<String, String>,
) -> ApiResult<InitiateAuthResponse> {
    match choice {
        "PASSWORD" => {
            let given = param(inputs, "PASSWORD")?.to_owned();
            lockout::reserve_sign_in(ctx, &call.pool_id, &target.key).await?;
            let Some(user) = target.user.clone() else {
                return Err(spend_like_a_password_check(given).await);
            };
            let matches = password_matches(ctx, call, &user, given).await?;
            finish_password_check(ctx, call, user, matches, inputs.get("DEVICE_KEY").map(String::as_str)).await
        }
        "PASSWORD_SRP" => {
            let mut srp_params = inputs.clone();
            let username = target.user.as_ref().map_or(&target.key, |u| &u.record.username);
            srp_params.insert("USERNAME".into(), username.clone());
            start_srp(ctx, call, &srp_params).await
        }
        "EMAIL_OTP" | "SMS_OTP" => {
            let name = ChallengeNameType::from(choice);
            let Some(user) = &target.user else {
                let parameters = super::mfa::pretended_code_delivery(&name, &target.key);
                return challenge_response_for(ctx, call, &target.key, &target.key, name, parameters);
            };
            match super::mfa::challenge(ctx, call, user, name).await? {
                super::mfa::MfaStep::Challenge(name, parameters) => {
                    challenge_response(ctx, call, user, name, parameters, ctx.now_ms() / 1000)
                }
                super::mfa::MfaStep::None => Err(ApiError::internal("no one-time code challenge")),
            }
        }
        other => Err(ApiError::invalid_parameter(format!("Invalid ANSWER {other} for SELECT_CHALLENGE."))),
    }
}

/// SELECT_CHALLENGE answered: start the chosen factor.
async fn answer_select_challenge(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &BTreeMap<String, String>,
    session: Option<&str>,
) -> ApiResult<InitiateAuthResponse> {
    let opened = open_session(ctx, call, session, &ChallengeNameType::SelectChallenge)?;
    let answer = param(responses, "ANSWER")?.to_owned();
    let target = session_target(ctx, call, &opened.user).await?;
    let username = target.user.as_ref().map_or(&target.key, |u| &u.record.username);
    call.check_secret_hash(ctx, responses.get("SECRET_HASH").map(String::as_str), username)?;
    let available = target_challenges(&call.pool.pool, &target);
    if !available.iter().any(|c| c.as_str() == answer) {
        return Err(ApiError::invalid_parameter(format!("Invalid ANSWER {answer} for SELECT_CHALLENGE.")));
    }
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    take_challenge(ctx, call, &target, &answer, responses).await
}

/// The user a challenge Session names; in a pool hiding user existence the Session may name
/// an unknown login, which then fails later the way a wrong answer does.
async fn session_target(ctx: &Ctx, call: &ClientCall, username_key: &str) -> ApiResult<SignInTarget> {
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, username_key).await?;
    if user.is_none() && !call.hides_user_existence() {
        return Err(users::user_not_found());
    }
    Ok(SignInTarget {
        key: user.as_ref().map_or_else(|| username_key.to_owned(), |u| u.record.username_key.clone()),
        user,
    })
}

/// After a password check whose attempt was reserved: a wrong password stays counted; a
/// right one clears the counter unless an MFA step follows (whose guesses count on top), then
/// the sign-in continues: status checks, the new-password challenge, or tokens.
async fn finish_password_check(
    ctx: &Ctx,
    call: &ClientCall,
    user: User,
    matches: bool,
    device: Option<&str>,
) -> ApiResult<InitiateAuthResponse> {
    if !matches {
        return Err(wrong_password());
    }
    let key = user.record.username_key.clone();
    let next = after_password(ctx, call, user, device).await;
    // Tokens were issued by complete_sign_in, which cleared the counter already.
    let settled = next
        .as_ref()
        .is_ok_and(|r| r.authentication_result.is_some() || r.challenge_name.as_ref().is_some_and(is_code_challenge));
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

async fn after_password(
    ctx: &Ctx,
    call: &ClientCall,
    user: User,
    device: Option<&str>,
) -> ApiResult<InitiateAuthResponse> {
    if !user.record.enabled {
        return Err(not_authorized("User is disabled."));
    }
    match user.status() {
        UserStatusType::Unconfirmed => {
            Err(ApiError::new(ErrorCode::UserNotConfirmedException, "User is not confirmed."))
        }
        UserStatusType::ResetRequired => {
            Err(ApiError::new(ErrorCode::PasswordResetRequiredException, "Password reset required for the user"))
        }
        UserStatusType::ForceChangePassword => {
            if user.doc.temporary_password_expires_ms.is_some_and(|t| t <= ctx.now_ms()) {
                return Err(not_authorized("Temporary password has expired and must be reset by an administrator."));
            }
            new_password_challenge(ctx, call, &user)
        }
        _ => {
            let auth_time = ctx.now_ms() / 1000;
            if let Some(key) = device.filter(|k| super::devices::is_remembered(call, &user, k)) {
                // A remembered device proves itself with device SRP instead of MFA.
                let session = new_session(ctx, call, &user, ChallengeNameType::DeviceSrpAuth, auth_time)?;
                return Ok(InitiateAuthResponse {
                    challenge_name: Some(ChallengeNameType::DeviceSrpAuth),
                    session: Some(Sensitive(session)),
                    challenge_parameters: Some(BTreeMap::from([
                        ("USERNAME".to_owned(), user.record.username.clone()),
                        ("DEVICE_KEY".to_owned(), key.to_owned()),
                    ])),
                    ..Default::default()
                });
            }
            mfa_or_tokens(ctx, call, &user, auth_time, device).await
        }
    }
}

/// After the first factor: an MFA challenge if the pool and user call for one, else tokens.
async fn mfa_or_tokens(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    auth_time: i64,
    device: Option<&str>,
) -> ApiResult<InitiateAuthResponse> {
    match super::mfa::next_step(ctx, call, user).await? {
        super::mfa::MfaStep::None => {
            let result = complete_sign_in(ctx, call, user.clone(), auth_time, device).await?;
            Ok(InitiateAuthResponse { authentication_result: Some(result), ..Default::default() })
        }
        super::mfa::MfaStep::Challenge(name, parameters) => {
            challenge_response(ctx, call, user, name, parameters, auth_time)
        }
    }
}

fn challenge_response(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    name: ChallengeNameType,
    parameters: Vec<(String, String)>,
    auth_time: i64,
) -> ApiResult<InitiateAuthResponse> {
    let session = new_session(ctx, call, user, name.clone(), auth_time)?;
    challenge_with_session(session, &user.record.username, name, parameters)
}

/// A challenge for a session key that may name no user (an unknown login in a pool hiding
/// user existence).
fn challenge_response_for(
    ctx: &Ctx,
    call: &ClientCall,
    username_key: &str,
    username: &str,
    name: ChallengeNameType,
    parameters: Vec<(String, String)>,
) -> ApiResult<InitiateAuthResponse> {
    let session = new_session_for(ctx, call, username_key, name.clone(), ctx.now_ms() / 1000)?;
    challenge_with_session(session, username, name, parameters)
}

fn challenge_with_session(
    session: String,
    username: &str,
    name: ChallengeNameType,
    parameters: Vec<(String, String)>,
) -> ApiResult<InitiateAuthResponse> {
    let mut challenge_parameters: BTreeMap<String, String> = parameters.into_iter().collect();
    challenge_parameters.insert("USER_ID_FOR_SRP".into(), username.to_owned());
    Ok(InitiateAuthResponse {
        challenge_name: Some(name),
        session: Some(Sensitive(session)),
        challenge_parameters: Some(challenge_parameters),
        ..Default::default()
    })
}

/// Opens a challenge session and checks it belongs to this client, step and time.
fn open_session(
    ctx: &Ctx,
    call: &ClientCall,
    session: Option<&str>,
    expected: &ChallengeNameType,
) -> ApiResult<ChallengeSession> {
    let opened: ChallengeSession = session
        .and_then(|s| sealed::open(ctx, sealed::Purpose::ChallengeSession, s))
        .ok_or_else(|| not_authorized("Invalid session for the user."))?;
    if opened.pool != call.pool_id || opened.client != call.client_id || opened.challenge != expected.as_str() {
        return Err(not_authorized("Invalid session for the user."));
    }
    if opened.expires_ms <= ctx.now_ms() {
        return Err(not_authorized("Invalid session for the user, session is expired."));
    }
    Ok(opened)
}

/// The user of an MFA_SETUP session (AssociateSoftwareToken and VerifySoftwareToken during
/// sign-in). The session is not used up here: RespondToAuthChallenge does that.
pub async fn user_of_setup_session(ctx: &Ctx, session: &str) -> ApiResult<(String, UserPoolType, User, String)> {
    let opened: ChallengeSession = sealed::open(ctx, sealed::Purpose::ChallengeSession, session)
        .ok_or_else(|| not_authorized("Invalid session for the user."))?;
    if opened.challenge != ChallengeNameType::MfaSetup.as_str() {
        return Err(not_authorized("Invalid session for the user."));
    }
    if opened.expires_ms <= ctx.now_ms() {
        return Err(not_authorized("Invalid session for the user, session is expired."));
    }
    let (_, doc) = super::common::load_pool(ctx, &opened.pool).await?;
    let user = users::require_user(ctx, &opened.pool, &doc.pool, &opened.user).await?;
    Ok((opened.pool, doc.pool, user, opened.nonce))
}

/// Answers to MFA challenges.
async fn answer_mfa(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &BTreeMap<String, String>,
    session: Option<&str>,
    challenge: ChallengeNameType,
) -> ApiResult<InitiateAuthResponse> {
    let opened = open_session(ctx, call, session, &challenge)?;
    let pool = call.pool.pool.clone();
    let target = session_target(ctx, call, &opened.user).await?;
    // The client proves itself before any guess is counted against the user.
    let username = target.user.as_ref().map_or(&target.key, |u| &u.record.username);
    call.check_secret_hash(ctx, responses.get("SECRET_HASH").map(String::as_str), username)?;
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
        lockout::reserve_sign_in(ctx, &call.pool_id, &target.key).await?;
    }
    let Some(mut user) = target.user else {
        // Only a pool hiding user existence hands out Sessions for unknown logins (one-time
        // code challenges only): their answer is a wrong code's.
        let mismatch = cognate_store::CodeCheck::Mismatch { attempts_left: 0 };
        return Err(crate::users::codes::rejection(&mismatch).unwrap_or_else(wrong_password));
    };
    match &challenge {
        ChallengeNameType::SoftwareTokenMfa => {
            let code = param(responses, "SOFTWARE_TOKEN_MFA_CODE")?;
            if !super::mfa::check_totp(ctx, &call.pool_id, &mut user, code)? {
                return Err(ApiError::new(ErrorCode::CodeMismatchException, "Invalid code received for user"));
            }
            users::save_user_or_fail(ctx, &pool, &mut user).await?;
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
            let purpose = super::mfa::MFA_CODE_PURPOSE;
            let hash = crate::users::codes::code_hash(ctx, &call.pool_id, &user.record.username_key, purpose, code);
            let (p, u, now) = (call.pool_id.clone(), user.record.username_key.clone(), ctx.now_ms());
            let check = ctx.store(move |s| s.check_code(&p, &u, purpose, &hash, now)).await?;
            if let Some(err) = crate::users::codes::rejection(&check) {
                return Err(err);
            }
        }
        ChallengeNameType::MfaSetup => {
            if !user.doc.mfa.totp_enabled {
                return Err(not_authorized("MFA setup is not complete: verify a software token first."));
            }
        }
        ChallengeNameType::SelectMfaType => {
            let answer = ChallengeNameType::from(param(responses, "ANSWER")?);
            if !user.doc.mfa.enabled().contains(&answer.as_str()) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid ANSWER {} for SELECT_MFA_TYPE.",
                    answer.as_str()
                )));
            }
            use_once(ctx, &opened.nonce, opened.expires_ms).await?;
            return match super::mfa::challenge(ctx, call, &user, answer).await? {
                super::mfa::MfaStep::Challenge(name, parameters) => {
                    challenge_response(ctx, call, &user, name, parameters, opened.auth_time)
                }
                super::mfa::MfaStep::None => Err(ApiError::internal("no challenge for the selected MFA")),
            };
        }
        _ => return Err(ApiError::internal("not an MFA challenge")),
    }
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    let device = responses.get("DEVICE_KEY").map(String::as_str);
    let result = complete_sign_in(ctx, call, user, opened.auth_time, device).await?;
    Ok(InitiateAuthResponse { authentication_result: Some(result), ..Default::default() })
}

/// Issues the tokens of a completed sign-in. With device tracking on, a known device is
/// named in the access token; an unknown one is registered and returned as NewDeviceMetadata.
async fn complete_sign_in(
    ctx: &Ctx,
    call: &ClientCall,
    mut user: User,
    auth_time: i64,
    given_device: Option<&str>,
) -> ApiResult<AuthenticationResultType> {
    lockout::sign_in_succeeded(ctx, &call.pool_id, &user.record.username_key).await?;
    if call.pool.pool.device_configuration.is_none() {
        return issue_tokens(ctx, call, &user, auth_time, None, None).await;
    }
    let known = given_device.filter(|k| user.doc.device(k).is_some()).map(str::to_owned);
    let (key, new_device) = match known {
        Some(key) => {
            if let Some(device) = user.doc.device_mut(&key) {
                device.last_auth_ms = ctx.now_ms();
            }
            (key, None)
        }
        None => {
            let device = super::devices::new_device(ctx, &call.pool_id);
            let metadata = NewDeviceMetadataType {
                device_key: Some(device.key.clone()),
                device_group_key: Some(device.group_key.clone()),
            };
            let key = device.key.clone();
            user.doc.devices.push(device);
            (key, Some(metadata))
        }
    };
    users::save_user_or_fail(ctx, &call.pool.pool, &mut user).await?;
    let mut result = issue_tokens(ctx, call, &user, auth_time, None, Some(&key)).await?;
    result.new_device_metadata = new_device;
    Ok(result)
}

fn new_password_challenge(ctx: &Ctx, call: &ClientCall, user: &User) -> ApiResult<InitiateAuthResponse> {
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
    let session = new_session(ctx, call, user, ChallengeNameType::NewPasswordRequired, ctx.now_ms() / 1000)?;
    Ok(InitiateAuthResponse {
        challenge_name: Some(ChallengeNameType::NewPasswordRequired),
        session: Some(Sensitive(session)),
        challenge_parameters: Some(BTreeMap::from([
            ("USER_ID_FOR_SRP".to_owned(), user.record.username.clone()),
            ("requiredAttributes".to_owned(), Value::from(required).to_string()),
            ("userAttributes".to_owned(), json!(shown).to_string()),
        ])),
        ..Default::default()
    })
}

fn new_session(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    challenge: ChallengeNameType,
    auth_time: i64,
) -> ApiResult<String> {
    new_session_for(ctx, call, &user.record.username_key, challenge, auth_time)
}

fn new_session_for(
    ctx: &Ctx,
    call: &ClientCall,
    username_key: &str,
    challenge: ChallengeNameType,
    auth_time: i64,
) -> ApiResult<String> {
    sealed::seal(
        ctx,
        sealed::Purpose::ChallengeSession,
        &ChallengeSession {
            pool: call.pool_id.clone(),
            client: call.client_id.clone(),
            user: username_key.to_owned(),
            challenge: challenge.as_str().to_owned(),
            auth_time,
            expires_ms: ctx.now_ms() + session_validity_ms(&call.client),
            nonce: sealed::nonce(),
        },
    )
}

/// Marks a session or secret block used; a second use is refused.
async fn use_once(ctx: &Ctx, nonce: &str, expires_ms: i64) -> ApiResult<()> {
    let (key, now) = (format!("auth:{nonce}"), ctx.now_ms());
    if ctx.store(move |s| s.consume_once(&key, expires_ms, now)).await? {
        Ok(())
    } else {
        Err(not_authorized("Invalid session for the user, session can only be used once."))
    }
}

async fn respond(
    ctx: &Ctx,
    call: ClientCall,
    challenge: ChallengeNameType,
    responses: BTreeMap<String, String>,
    session: Option<String>,
) -> ApiResult<InitiateAuthResponse> {
    match challenge {
        ChallengeNameType::PasswordVerifier => password_verifier(ctx, &call, &responses).await,
        ChallengeNameType::NewPasswordRequired => new_password(ctx, &call, &responses, session.as_deref()).await,
        ChallengeNameType::SoftwareTokenMfa
        | ChallengeNameType::SmsMfa
        | ChallengeNameType::SmsOtp
        | ChallengeNameType::EmailOtp
        | ChallengeNameType::MfaSetup
        | ChallengeNameType::SelectMfaType => answer_mfa(ctx, &call, &responses, session.as_deref(), challenge).await,
        ChallengeNameType::SelectChallenge => answer_select_challenge(ctx, &call, &responses, session.as_deref()).await,
        ChallengeNameType::DeviceSrpAuth => device_srp(ctx, &call, &responses, session.as_deref()).await,
        ChallengeNameType::DevicePasswordVerifier => device_password_verifier(ctx, &call, &responses).await,
        other => Err(ApiError::new(
            ErrorCode::UnsupportedOperationException,
            format!("Cognate does not support the {} challenge yet.", other.as_str()),
        )),
    }
}

async fn password_verifier(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &BTreeMap<String, String>,
) -> ApiResult<InitiateAuthResponse> {
    let login = param(responses, "USERNAME")?;
    call.check_secret_hash(ctx, responses.get("SECRET_HASH").map(String::as_str), login)?;
    let Claim { block, block_bytes, signature, timestamp } = open_claim(ctx, call, responses)?;
    if block.device.is_some() {
        return Err(not_authorized("Invalid session for the user."));
    }
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
    finish_password_check(ctx, call, user, matches, responses.get("DEVICE_KEY").map(String::as_str)).await
}

async fn new_password(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &BTreeMap<String, String>,
    session: Option<&str>,
) -> ApiResult<InitiateAuthResponse> {
    let login = param(responses, "USERNAME")?;
    let new_password = param(responses, "NEW_PASSWORD")?;
    call.check_secret_hash(ctx, responses.get("SECRET_HASH").map(String::as_str), login)?;
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
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("userAttributes.").map(|name| (name, v)))
        .map(|(name, value)| AttributeType { name: name.to_owned(), value: Some(Sensitive(value.clone())) })
        .collect();
    for (name, value) in check_changes(&pool, &changes, Writer::Admin)? {
        user.attributes.insert(name, value);
    }
    check_required(&pool, &user.attributes)?;
    use_once(ctx, &session.nonce, session.expires_ms).await?;
    let sealed_password =
        password::seal_password(ctx, &call.pool_id, &user.record.sub, &user.record.username, new_password).await?;
    user.record.password = Some(sealed_password);
    user.record.status = UserStatusType::Confirmed.as_str().to_owned();
    user.doc.temporary_password_expires_ms = None;
    users::save_user_or_fail(ctx, &pool, &mut user).await?;
    mfa_or_tokens(ctx, call, &user, session.auth_time, responses.get("DEVICE_KEY").map(String::as_str)).await
}

/// Seconds of a client's token lifetime setting.
fn validity_secs(
    value: Option<i32>,
    unit: Option<&TimeUnitsType>,
    default_unit: TimeUnitsType,
    default_value: i64,
) -> i64 {
    let per_unit = match unit.unwrap_or(&default_unit) {
        TimeUnitsType::Seconds => 1,
        TimeUnitsType::Minutes => 60,
        TimeUnitsType::Hours => 3600,
        _ => 86_400,
    };
    value.map(i64::from).unwrap_or(default_value) * per_unit
}

/// Issues ID and access tokens (and a refresh token unless `origin` says this is a refresh).
pub async fn issue_tokens(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    auth_time: i64,
    origin: Option<&RefreshClaims>,
    device_key: Option<&str>,
) -> ApiResult<AuthenticationResultType> {
    let client = &call.client;
    let units = client.token_validity_units.clone().unwrap_or_default();
    let access_secs =
        validity_secs(client.access_token_validity, units.access_token.as_ref(), TimeUnitsType::Minutes, 60);
    let id_secs = validity_secs(client.id_token_validity, units.id_token.as_ref(), TimeUnitsType::Minutes, 60);
    let refresh_secs =
        validity_secs(client.refresh_token_validity, units.refresh_token.as_ref(), TimeUnitsType::Days, 30);
    let now = ctx.now_ms() / 1000;
    let origin_jti = origin.map(|o| o.origin_jti.clone()).unwrap_or_else(cognate_crypto::ids::uuid_v4);
    let event_id = cognate_crypto::ids::uuid_v4();
    let iss = tokens::issuer(ctx, &call.pool_id);
    let revocable = client.enable_token_revocation != Some(false);

    let mut id = Map::new();
    for (name, value) in readable_attributes(&call.pool.pool, client, user) {
        id.insert(name, value);
    }
    id.insert("sub".into(), json!(user.record.sub));
    id.insert("aud".into(), json!(call.client_id));
    id.insert("iss".into(), json!(iss));
    id.insert("cognito:username".into(), json!(user.record.username));
    id.insert("event_id".into(), json!(event_id));
    id.insert("token_use".into(), json!("id"));
    id.insert("auth_time".into(), json!(auth_time));
    id.insert("iat".into(), json!(now));
    id.insert("exp".into(), json!(now + id_secs));
    if revocable {
        id.insert("origin_jti".into(), json!(origin_jti));
        id.insert("jti".into(), json!(cognate_crypto::ids::uuid_v4()));
    }

    let mut access = Map::new();
    access.insert("sub".into(), json!(user.record.sub));
    access.insert("iss".into(), json!(iss));
    access.insert("client_id".into(), json!(call.client_id));
    access.insert("event_id".into(), json!(event_id));
    access.insert("token_use".into(), json!("access"));
    access.insert("scope".into(), json!("aws.cognito.signin.user.admin"));
    access.insert("auth_time".into(), json!(auth_time));
    access.insert("iat".into(), json!(now));
    access.insert("exp".into(), json!(now + access_secs));
    access.insert("username".into(), json!(user.record.username));
    if let Some(key) = device_key {
        access.insert("device_key".into(), json!(key));
    }
    if revocable {
        access.insert("origin_jti".into(), json!(origin_jti));
        access.insert("jti".into(), json!(cognate_crypto::ids::uuid_v4()));
    }

    // Groups go into both tokens (roles into the ID token only), as Cognito does.
    for (name, value) in super::groups::token_claims(ctx, &call.pool_id, &user.record.username_key).await? {
        if name == "cognito:groups" {
            access.insert(name.clone(), value.clone());
        }
        id.insert(name, value);
    }
    let refresh_token = match origin {
        Some(_) => None,
        None => Some(sealed::seal(
            ctx,
            sealed::Purpose::RefreshToken,
            &RefreshClaims {
                pool: call.pool_id.clone(),
                client: call.client_id.clone(),
                user: user.record.username_key.clone(),
                sub: user.record.sub.clone(),
                origin_jti: origin_jti.clone(),
                auth_time,
                issued_ms: ctx.now_ms(),
                expires_ms: ctx.now_ms() + refresh_secs * 1000,
            },
        )?),
    };
    let keys = tokens::pool_keys(ctx, &call.pool_id, call.pool_created_ms).await?;
    let (id_token, access_token) = tokio::task::spawn_blocking(move || -> ApiResult<(String, String)> {
        Ok((tokens::sign(&keys.id_key, &id)?, tokens::sign(&keys.access_key, &access)?))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(AuthenticationResultType {
        access_token: Some(Sensitive(access_token)),
        expires_in: Some(i32::try_from(access_secs).unwrap_or(i32::MAX)),
        token_type: Some("Bearer".into()),
        refresh_token: refresh_token.map(Sensitive),
        id_token: Some(Sensitive(id_token)),
        new_device_metadata: None,
    })
}

/// The ID token's attribute claims: what the client may read, with Cognito's types
/// (verification flags as booleans, updated_at as a number, custom attributes as strings).
fn readable_attributes(pool: &UserPoolType, client: &UserPoolClientType, user: &User) -> Vec<(String, Value)> {
    let readable = |name: &str| client.read_attributes.as_ref().is_none_or(|list| list.iter().any(|r| r == name));
    let _ = pool;
    user.attributes
        .iter()
        .filter(|(name, _)| name.as_str() != "sub" && !name.starts_with("dev:") && readable(name))
        .map(|(name, value)| {
            let typed = match name.as_str() {
                "email_verified" | "phone_number_verified" => json!(value == "true"),
                "updated_at" => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(value)),
                _ => json!(value),
            };
            (name.clone(), typed)
        })
        .collect()
}

/// Opens and checks a refresh token, then issues fresh ID and access tokens.
pub async fn refresh(
    ctx: &Ctx,
    call: &ClientCall,
    token: &str,
    secret_hash: Option<&str>,
    secret_checked: bool,
) -> ApiResult<AuthenticationResultType> {
    let invalid = || not_authorized("Invalid Refresh Token");
    let claims: RefreshClaims = sealed::open(ctx, sealed::Purpose::RefreshToken, token).ok_or_else(invalid)?;
    if claims.pool != call.pool_id || claims.client != call.client_id {
        return Err(invalid());
    }
    if claims.expires_ms <= ctx.now_ms() {
        return Err(not_authorized("Refresh Token has expired"));
    }
    let pool = &call.pool.pool;
    let Some(user) = users::find_user(ctx, &call.pool_id, pool, &claims.user).await? else {
        return Err(invalid());
    };
    if user.record.sub != claims.sub {
        return Err(invalid());
    }
    if !secret_checked {
        call.check_secret_hash(ctx, secret_hash, &user.record.username)?;
    }
    let (pool_id, jti) = (call.pool_id.clone(), claims.origin_jti.clone());
    let revoked = ctx.store(move |s| s.is_token_family_revoked(&pool_id, &jti)).await?;
    if revoked || user.doc.tokens_valid_after_ms.is_some_and(|t| claims.issued_ms < t) {
        return Err(not_authorized("Refresh Token has been revoked"));
    }
    if !user.record.enabled {
        return Err(not_authorized("User is disabled."));
    }
    issue_tokens(ctx, call, &user, claims.auth_time, Some(&claims), None).await
}

/// Loads the client of an admin call and checks it belongs to the pool.
async fn admin_client(ctx: &Ctx, pool_id: &str, client_id: &str) -> ApiResult<ClientCall> {
    super::common::load_pool(ctx, pool_id).await?;
    let call = load_client(ctx, client_id).await?;
    if call.pool_id != pool_id {
        return Err(ApiError::not_found(format!("User pool client {client_id} does not exist.")));
    }
    Ok(call)
}

pub async fn initiate_auth(ctx: Ctx, input: InitiateAuthRequest) -> ApiResult<InitiateAuthResponse> {
    let call = load_client(&ctx, input.client_id.expose()).await?;
    initiate(&ctx, call, input.auth_flow, auth_params(input.auth_parameters.as_ref()), false).await
}

pub async fn admin_initiate_auth(ctx: Ctx, input: AdminInitiateAuthRequest) -> ApiResult<AdminInitiateAuthResponse> {
    let call = admin_client(&ctx, &input.user_pool_id, input.client_id.expose()).await?;
    let out = initiate(&ctx, call, input.auth_flow, auth_params(input.auth_parameters.as_ref()), true).await?;
    Ok(AdminInitiateAuthResponse {
        authentication_result: out.authentication_result,
        available_challenges: out.available_challenges,
        challenge_name: out.challenge_name,
        challenge_parameters: out.challenge_parameters,
        session: out.session,
    })
}

pub async fn respond_to_auth_challenge(
    ctx: Ctx,
    input: RespondToAuthChallengeRequest,
) -> ApiResult<RespondToAuthChallengeResponse> {
    let call = load_client(&ctx, input.client_id.expose()).await?;
    let responses = auth_params(input.challenge_responses.as_ref());
    let out = respond(&ctx, call, input.challenge_name, responses, input.session.map(|s| s.into_inner())).await?;
    Ok(RespondToAuthChallengeResponse {
        authentication_result: out.authentication_result,
        available_challenges: out.available_challenges,
        challenge_name: out.challenge_name,
        challenge_parameters: out.challenge_parameters,
        session: out.session,
    })
}

pub async fn admin_respond_to_auth_challenge(
    ctx: Ctx,
    input: AdminRespondToAuthChallengeRequest,
) -> ApiResult<AdminRespondToAuthChallengeResponse> {
    let call = admin_client(&ctx, &input.user_pool_id, input.client_id.expose()).await?;
    let responses = auth_params(input.challenge_responses.as_ref());
    let out = respond(&ctx, call, input.challenge_name, responses, input.session.map(|s| s.into_inner())).await?;
    Ok(AdminRespondToAuthChallengeResponse {
        authentication_result: out.authentication_result,
        available_challenges: out.available_challenges,
        challenge_name: out.challenge_name,
        challenge_parameters: out.challenge_parameters,
        session: out.session,
    })
}

/// DEVICE_SRP_AUTH: after the password, a remembered device starts its own SRP exchange.
async fn device_srp(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &BTreeMap<String, String>,
    session: Option<&str>,
) -> ApiResult<InitiateAuthResponse> {
    let opened = open_session(ctx, call, session, &ChallengeNameType::DeviceSrpAuth)?;
    let device_key = param(responses, "DEVICE_KEY")?;
    let a_bytes =
        srp::parse_hex(param(responses, "SRP_A")?).ok_or_else(|| ApiError::invalid_parameter("SRP_A is not hex."))?;
    let user = users::require_user(ctx, &call.pool_id, &call.pool.pool, &opened.user).await?;
    call.check_secret_hash(ctx, responses.get("SECRET_HASH").map(String::as_str), &user.record.username)?;
    let (verifier, salt) = super::devices::device_verifier(ctx, &call.pool_id, &user, device_key)?;
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    let ephemeral =
        tokio::task::spawn_blocking(move || srp::server_challenge(&verifier)).await.map_err(ApiError::internal)?;
    let block = SecretBlock {
        pool: call.pool_id.clone(),
        client: call.client_id.clone(),
        user: user.record.username_key.clone(),
        b: hex::encode(ephemeral.secret()),
        big_b: hex::encode(ephemeral.public()),
        big_a: hex::encode(&a_bytes),
        expires_ms: ctx.now_ms() + session_validity_ms(&call.client),
        nonce: sealed::nonce(),
        device: Some(device_key.to_owned()),
        auth_time: opened.auth_time,
    };
    let secret_block = base64_std(sealed::seal(ctx, sealed::Purpose::SrpSecretBlock, &block)?.as_bytes());
    Ok(InitiateAuthResponse {
        challenge_name: Some(ChallengeNameType::DevicePasswordVerifier),
        challenge_parameters: Some(BTreeMap::from([
            ("SRP_B".to_owned(), ephemeral.public_hex()),
            ("SALT".to_owned(), srp::salt_hex(&salt)),
            ("SECRET_BLOCK".to_owned(), secret_block),
            ("USERNAME".to_owned(), user.record.username.clone()),
            ("DEVICE_KEY".to_owned(), device_key.to_owned()),
        ])),
        ..Default::default()
    })
}

/// DEVICE_PASSWORD_VERIFIER: the device's claim, signed with the device's SRP key.
async fn device_password_verifier(
    ctx: &Ctx,
    call: &ClientCall,
    responses: &BTreeMap<String, String>,
) -> ApiResult<InitiateAuthResponse> {
    let device_key = param(responses, "DEVICE_KEY")?.to_owned();
    let Claim { block, block_bytes, signature, timestamp } = open_claim(ctx, call, responses)?;
    if block.device.as_deref() != Some(device_key.as_str()) {
        return Err(not_authorized("Invalid session for the user."));
    }
    use_once(ctx, &block.nonce, block.expires_ms).await?;
    let user = users::require_user(ctx, &call.pool_id, &call.pool.pool, &block.user).await?;
    call.check_secret_hash(ctx, responses.get("SECRET_HASH").map(String::as_str), &user.record.username)?;
    let group_key =
        user.doc.device(&device_key).map(|d| d.group_key.clone()).ok_or_else(super::devices::device_not_found)?;
    let (verifier, _) = super::devices::device_verifier(ctx, &call.pool_id, &user, &device_key)?;
    let (key_for_claim, auth_time) = (device_key.clone(), block.auth_time);
    let matches = tokio::task::spawn_blocking(move || {
        claim_matches(&block, &block_bytes, &verifier, &group_key, &key_for_claim, &timestamp, &signature)
    })
    .await
    .map_err(ApiError::internal)?;
    if !matches {
        return Err(not_authorized("Incorrect username or password."));
    }
    let result = complete_sign_in(ctx, call, user, auth_time, Some(&device_key)).await?;
    Ok(InitiateAuthResponse { authentication_result: Some(result), ..Default::default() })
}

/// A PASSWORD_VERIFIER or DEVICE_PASSWORD_VERIFIER answer, opened and checked for its
/// client, expiry and clock skew (not yet for its signature).
struct Claim {
    block: SecretBlock,
    block_bytes: Vec<u8>,
    signature: String,
    timestamp: String,
}

fn open_claim(ctx: &Ctx, call: &ClientCall, responses: &BTreeMap<String, String>) -> ApiResult<Claim> {
    let block_b64 = param(responses, "PASSWORD_CLAIM_SECRET_BLOCK")?;
    let signature = param(responses, "PASSWORD_CLAIM_SIGNATURE")?.to_owned();
    let timestamp = param(responses, "TIMESTAMP")?.to_owned();
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
    let skew = when.duration_since(ctx.now).or_else(|e| Ok::<_, ApiError>(e.duration()))?;
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
