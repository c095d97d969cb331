//! What a sign-in in progress carries between calls. Nothing is kept on a node: the SRP state
//! travels in a sealed SECRET_BLOCK and the challenge state in a sealed `Session`, each bound
//! to pool, client, user and step, expiring, and single use (the store remembers used ones
//! until they expire). Refresh tokens are sealed claims too.

use cognate_api::idp::{ChallengeNameType, UserPoolClientType, UserPoolType};
use serde::{Deserialize, Serialize};

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::sealed;
use crate::users::{self, User};

/// SRP state between a challenge carrying SRP_B and the client's password claim.
#[derive(Serialize, Deserialize)]
pub(super) struct SecretBlock {
    pub pool: String,
    pub client: String,
    pub user: String,
    /// Server secret ephemeral b and public B, client public A (hex).
    pub b: String,
    pub big_b: String,
    pub big_a: String,
    pub expires_ms: i64,
    pub nonce: String,
    /// Set for a device SRP step: the device key, and the first factor's time.
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub auth_time: i64,
    /// Set for the SRP step of a CUSTOM_AUTH sign-in: the challenges so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Vec<ChallengeResult>>,
}

/// One step of a custom sign-in, as DefineAuthChallenge's `session` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResult {
    pub challenge_name: String,
    pub challenge_result: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_metadata: Option<String>,
}

impl ChallengeResult {
    pub fn passed(name: &str, passed: bool) -> ChallengeResult {
        ChallengeResult { challenge_name: name.to_owned(), challenge_result: passed, challenge_metadata: None }
    }
}

/// Challenge state between a challenge and its answer.
#[derive(Serialize, Deserialize)]
pub(super) struct ChallengeSession {
    pub pool: String,
    pub client: String,
    pub user: String,
    pub challenge: String,
    pub auth_time: i64,
    pub expires_ms: i64,
    pub nonce: String,
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
    /// The OAuth 2.0 scopes granted with it (hosted sign-in), which its refreshes keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// How long a challenge Session or SECRET_BLOCK lives: the client's AuthSessionValidity
/// (3 to 15 minutes, 3 by default).
pub(super) fn session_validity_ms(client: &UserPoolClientType) -> i64 {
    i64::from(client.auth_session_validity.unwrap_or(3).clamp(3, 15)) * 60_000
}

/// A sealed Session for the next answer of `username_key` (which may name no user: an
/// unknown login in a pool hiding user existence).
pub(super) fn new_session(
    ctx: &Ctx,
    call: &ClientCall,
    username_key: &str,
    challenge: &ChallengeNameType,
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

/// Opens a challenge session and checks it belongs to this client, step and time.
pub(super) fn open_session(
    ctx: &Ctx,
    call: &ClientCall,
    session: Option<&str>,
    expected: &ChallengeNameType,
) -> ApiResult<ChallengeSession> {
    let opened: ChallengeSession = session
        .and_then(|s| sealed::open(ctx, sealed::Purpose::ChallengeSession, s))
        .ok_or_else(|| ApiError::not_authorized("Invalid session for the user."))?;
    if opened.pool != call.pool_id || opened.client != call.client_id || opened.challenge != expected.as_str() {
        return Err(ApiError::not_authorized("Invalid session for the user."));
    }
    if opened.expires_ms <= ctx.now_ms() {
        return Err(ApiError::not_authorized("Invalid session for the user, session is expired."));
    }
    Ok(opened)
}

/// Marks a session or secret block used; a second use is refused.
pub(super) async fn use_once(ctx: &Ctx, nonce: &str, expires_ms: i64) -> ApiResult<()> {
    let (key, now) = (format!("auth:{nonce}"), ctx.now_ms());
    if ctx.store(move |s| s.consume_once(&key, expires_ms, now)).await? {
        Ok(())
    } else {
        Err(ApiError::not_authorized("Invalid session for the user, session can only be used once."))
    }
}

/// The user of an MFA_SETUP Session, for AssociateSoftwareToken and VerifySoftwareToken
/// during sign-in. The Session is not used up here: the MFA_SETUP answer does that.
pub struct SetupSession {
    pub pool_id: String,
    pub pool: UserPoolType,
    pub user: User,
    /// Counts the Session's wrong answers.
    pub nonce: String,
}

pub async fn user_of_setup_session(ctx: &Ctx, session: &str) -> ApiResult<SetupSession> {
    let opened: ChallengeSession = sealed::open(ctx, sealed::Purpose::ChallengeSession, session)
        .ok_or_else(|| ApiError::not_authorized("Invalid session for the user."))?;
    if opened.challenge != ChallengeNameType::MfaSetup.as_str() {
        return Err(ApiError::not_authorized("Invalid session for the user."));
    }
    if opened.expires_ms <= ctx.now_ms() {
        return Err(ApiError::not_authorized("Invalid session for the user, session is expired."));
    }
    let (_, doc) = crate::records::load_pool(ctx, &opened.pool).await?;
    let user = users::require_user(ctx, &opened.pool, &doc.pool, &opened.user).await?;
    Ok(SetupSession { pool_id: opened.pool, pool: doc.pool, user, nonce: opened.nonce })
}
