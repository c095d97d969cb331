//! CUSTOM_AUTH: a sign-in the pool's functions lead. DefineAuthChallenge reads what happened so
//! far (the `session`: each challenge and whether it was passed) and decides: tokens, a
//! failure, or the next challenge; CreateAuthChallenge makes a CUSTOM_CHALLENGE (public
//! parameters for the client, private ones for the check); VerifyAuthChallengeResponse checks
//! the answer. A client may prove the password by SRP first (`SRP_A` with
//! `CHALLENGE_NAME=SRP_A`): Define then asks for PASSWORD_VERIFIER, and sees its result.
//!
//! The history and the private parameters travel in the sealed Session, bound to pool,
//! client and user, expiring and single use, like every challenge Session.

use std::collections::BTreeMap;

use cognate_api::idp::ChallengeNameType;
use cognate_api::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::state::{session_validity_ms, use_once, ChallengeResult};
use super::step::{not_authorized, refuse_unusable, wrong_password, Challenge, Params, Step};
use super::tokens::complete_sign_in;
use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks::token_source;
use crate::lambda::{self, Event, Trigger};
use crate::users::{self, lockout, User};
use crate::{hooks, sealed};

/// What a CUSTOM_CHALLENGE's Session carries to its answer.
#[derive(Serialize, Deserialize)]
struct CustomSession {
    pool: String,
    client: String,
    /// The user's key (or an unknown login's, in a pool hiding user existence).
    user: String,
    history: Vec<ChallengeResult>,
    /// CreateAuthChallenge's privateChallengeParameters and challengeMetadata.
    private: Value,
    metadata: Option<String>,
    auth_time: i64,
    expires_ms: i64,
    nonce: String,
}

/// Who a custom sign-in is for: the user, or (in a pool hiding user existence) a login that
/// names nobody, which the functions see as `userNotFound` and which can never get tokens.
pub(super) struct Target {
    pub user: Option<User>,
    pub key: String,
    pub login: String,
}

impl Target {
    fn attributes(&self) -> Value {
        self.user.as_ref().map_or_else(|| json!({}), hooks::user_attributes)
    }

    fn username(&self) -> &str {
        self.user.as_ref().map_or(&self.login, |u| &u.record.username)
    }
}

fn not_configured() -> ApiError {
    ApiError::invalid_parameter("Custom auth lambda trigger is not configured for the user pool.")
}

/// The three functions a pool needs for CUSTOM_AUTH.
fn functions(call: &ClientCall) -> ApiResult<(String, String, String)> {
    let config = call.pool.pool.lambda_config.as_ref();
    let get = |trigger: Trigger| trigger.function(config).map(str::to_owned);
    match (
        get(Trigger::DefineAuthChallenge),
        get(Trigger::CreateAuthChallenge),
        get(Trigger::VerifyAuthChallengeResponse),
    ) {
        (Some(define), Some(create), Some(verify)) => Ok((define, create, verify)),
        _ => Err(not_configured()),
    }
}

/// How a CUSTOM_AUTH sign-in starts: a step, or (SRP first) the password proof Define asked
/// for, with the history so far.
pub(super) enum Started {
    Step(Step),
    Password(Vec<ChallengeResult>),
}

/// InitiateAuth with CUSTOM_AUTH: the user's checks, then DefineAuthChallenge on an empty
/// history (or on SRP_A, when the client starts with SRP).
pub(super) async fn start(ctx: &Ctx, call: &ClientCall, params: &Params) -> ApiResult<Started> {
    let login = params.required(Params::USERNAME)?;
    call.check_secret_hash(ctx, params.secret_hash(), login)?;
    functions(call)?;
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, login).await?;
    let key = match &user {
        Some(user) => user.record.username_key.to_string(),
        None if call.hides_user_existence() => users::username_key(&call.pool.pool, login).to_string(),
        None => return Err(ApiError::new(ErrorCode::UserNotFoundException, "User does not exist.")),
    };
    lockout::refuse_if_locked(ctx, &call.pool_id, &key).await?;
    if let Some(user) = &user {
        refuse_unusable(user)?;
    }
    hooks::pre_authentication(ctx, call, user.as_ref(), login).await?;
    let target = Target { user, key, login: login.to_owned() };
    if params.get("CHALLENGE_NAME") == Some("SRP_A") {
        let history = vec![ChallengeResult::passed("SRP_A", true)];
        return match define(ctx, call, &target, &history).await? {
            Decision::Challenge(name) if name == "PASSWORD_VERIFIER" => Ok(Started::Password(history)),
            decision => decided(ctx, call, target, history, decision, 0).await.map(Started::Step),
        };
    }
    let decision = define(ctx, call, &target, &[]).await?;
    decided(ctx, call, target, Vec::new(), decision, 0).await.map(Started::Step)
}

/// After the SRP password check of a custom sign-in: Define sees PASSWORD_VERIFIER passed.
pub(super) async fn after_password(
    ctx: &Ctx,
    call: &ClientCall,
    user: User,
    mut history: Vec<ChallengeResult>,
) -> ApiResult<Step> {
    refuse_unusable(&user)?;
    history.push(ChallengeResult::passed("PASSWORD_VERIFIER", true));
    let target =
        Target { key: user.record.username_key.to_string(), login: user.record.username.clone(), user: Some(user) };
    let decision = define(ctx, call, &target, &history).await?;
    decided(ctx, call, target, history, decision, ctx.now_ms() / 1000).await
}

/// RespondToAuthChallenge with CUSTOM_CHALLENGE: VerifyAuthChallengeResponse checks ANSWER,
/// then DefineAuthChallenge decides again.
pub(super) async fn answer(ctx: &Ctx, call: &ClientCall, responses: &Params, session: Option<&str>) -> ApiResult<Step> {
    let (_, _, verify) = functions(call)?;
    let opened: CustomSession = session
        .and_then(|s| sealed::open(ctx, sealed::Purpose::CustomChallengeSession, s))
        .ok_or_else(|| not_authorized("Invalid session for the user."))?;
    if opened.pool != call.pool_id || opened.client != call.client_id {
        return Err(not_authorized("Invalid session for the user."));
    }
    if opened.expires_ms <= ctx.now_ms() {
        return Err(not_authorized("Invalid session for the user, session is expired."));
    }
    let login = responses.required(Params::USERNAME)?;
    call.check_secret_hash(ctx, responses.secret_hash(), login)?;
    let user = users::find_user(ctx, &call.pool_id, &call.pool.pool, &opened.user).await?;
    if user.is_none() && !call.hides_user_existence() {
        return Err(users::user_not_found());
    }
    let names_user = |u: &User| users::username_key(&call.pool.pool, login) == u.record.username_key;
    if user.as_ref().is_some_and(|u| !names_user(u) && login != u.record.username) {
        return Err(not_authorized("Invalid session for the user."));
    }
    let answer = responses.required("ANSWER")?.to_owned();
    use_once(ctx, &opened.nonce, opened.expires_ms).await?;
    let target = Target { user, key: opened.user.clone(), login: login.to_owned() };
    let request = json!({
        "userAttributes": target.attributes(),
        "privateChallengeParameters": opened.private,
        "challengeAnswer": answer,
        "clientMetadata": ctx.client_metadata.clone().unwrap_or_else(|| json!({})),
        "userNotFound": target.user.is_none(),
    });
    let response = invoke(ctx, call, &target, Trigger::VerifyAuthChallengeResponse, &verify, request).await?;
    let correct = response.get("answerCorrect").and_then(Value::as_bool).unwrap_or(false);
    let mut history = opened.history;
    history.push(ChallengeResult {
        challenge_name: "CUSTOM_CHALLENGE".into(),
        challenge_result: correct,
        challenge_metadata: opened.metadata,
    });
    let decision = define(ctx, call, &target, &history).await?;
    decided(ctx, call, target, history, decision, opened.auth_time).await
}

/// What DefineAuthChallenge decided.
enum Decision {
    Tokens,
    Fail,
    Challenge(String),
}

async fn invoke(
    ctx: &Ctx,
    call: &ClientCall,
    target: &Target,
    trigger: Trigger,
    function: &str,
    request: Value,
) -> ApiResult<Map<String, Value>> {
    let source = match trigger {
        Trigger::DefineAuthChallenge => "DefineAuthChallenge_Authentication",
        Trigger::CreateAuthChallenge => "CreateAuthChallenge_Authentication",
        _ => "VerifyAuthChallengeResponse_Authentication",
    };
    let event = Event {
        trigger,
        source,
        pool_id: &call.pool_id,
        user_name: target.username(),
        client_id: Some(&call.client_id),
        version: "1",
        request,
    };
    lambda::invoke(ctx, function, event).await
}

async fn define(ctx: &Ctx, call: &ClientCall, target: &Target, history: &[ChallengeResult]) -> ApiResult<Decision> {
    let (define, _, _) = functions(call)?;
    let request = json!({
        "userAttributes": target.attributes(),
        "session": history,
        "clientMetadata": ctx.client_metadata.clone().unwrap_or_else(|| json!({})),
        "userNotFound": target.user.is_none(),
    });
    let response = invoke(ctx, call, target, Trigger::DefineAuthChallenge, &define, request).await?;
    let flag = |name: &str| response.get(name).and_then(Value::as_bool).unwrap_or(false);
    Ok(if flag("failAuthentication") {
        Decision::Fail
    } else if flag("issueTokens") {
        Decision::Tokens
    } else {
        match response.get("challengeName").and_then(Value::as_str) {
            Some(name) => Decision::Challenge(name.to_owned()),
            None => {
                return Err(ApiError::new(
                    ErrorCode::InvalidLambdaResponseException,
                    "DefineAuthChallenge answered neither issueTokens, failAuthentication nor a challengeName.",
                ))
            }
        }
    })
}

/// Acts on Define's decision: tokens, a refusal, or the next CUSTOM_CHALLENGE.
async fn decided(
    ctx: &Ctx,
    call: &ClientCall,
    target: Target,
    history: Vec<ChallengeResult>,
    decision: Decision,
    auth_time: i64,
) -> ApiResult<Step> {
    match decision {
        Decision::Fail => Err(wrong_password()),
        // An unknown login can never be signed in, whatever a function says.
        Decision::Tokens => match target.user {
            Some(user) => {
                let auth_time = if auth_time == 0 { ctx.now_ms() / 1000 } else { auth_time };
                Ok(Step::SignedIn(
                    complete_sign_in(ctx, call, user, (auth_time, token_source::AUTHENTICATION), None).await?,
                ))
            }
            None => Err(wrong_password()),
        },
        Decision::Challenge(name) if name == "CUSTOM_CHALLENGE" => create(ctx, call, target, history, auth_time).await,
        Decision::Challenge(name) => Err(ApiError::new(
            ErrorCode::InvalidLambdaResponseException,
            format!("DefineAuthChallenge answered the challenge {name}, which cannot follow here."),
        )),
    }
}

/// CreateAuthChallenge, and the CUSTOM_CHALLENGE the client gets.
async fn create(
    ctx: &Ctx,
    call: &ClientCall,
    target: Target,
    history: Vec<ChallengeResult>,
    auth_time: i64,
) -> ApiResult<Step> {
    let (_, create, _) = functions(call)?;
    let request = json!({
        "userAttributes": target.attributes(),
        "challengeName": "CUSTOM_CHALLENGE",
        "session": history,
        "clientMetadata": ctx.client_metadata.clone().unwrap_or_else(|| json!({})),
        "userNotFound": target.user.is_none(),
    });
    let response = invoke(ctx, call, &target, Trigger::CreateAuthChallenge, &create, request).await?;
    let mut parameters: BTreeMap<String, String> = response
        .get("publicChallengeParameters")
        .and_then(Value::as_object)
        .map(|public| {
            public.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
        })
        .unwrap_or_default();
    parameters.insert("USERNAME".into(), target.username().to_owned());
    let session = CustomSession {
        pool: call.pool_id.clone(),
        client: call.client_id.clone(),
        user: target.key.clone(),
        history,
        private: response.get("privateChallengeParameters").cloned().unwrap_or_else(|| json!({})),
        metadata: response.get("challengeMetadata").and_then(Value::as_str).map(str::to_owned),
        auth_time,
        expires_ms: ctx.now_ms() + session_validity_ms(&call.client),
        nonce: sealed::nonce(),
    };
    let session = sealed::seal(ctx, sealed::Purpose::CustomChallengeSession, &session)?;
    Ok(Step::Challenge(Challenge {
        name: ChallengeNameType::CustomChallenge,
        parameters,
        session: Some(session),
        available: None,
    }))
}
