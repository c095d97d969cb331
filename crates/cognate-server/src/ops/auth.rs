//! InitiateAuth, AdminInitiateAuth, RespondToAuthChallenge and AdminRespondToAuthChallenge:
//! the wire form of `cognate_core::signin`, whose state machine they drive. Each maps the
//! one [`Step`] a call ends in onto its own output type.

use std::collections::BTreeMap;

use cognate_api::idp::*;
use cognate_api::Sensitive;
use cognate_core::clients::{load_client, ClientCall};
use cognate_core::records::load_pool;
use cognate_core::signin::{self, Caller, Params, Step};
use cognate_core::{ApiError, ApiResult, Ctx};

/// The four outputs share their fields: each is built from a [`Step`] the same way.
macro_rules! from_step {
    ($($output:ident),*) => {$(
        impl From<StepOutput> for $output {
            fn from(StepOutput(step): StepOutput) -> Self {
                match step {
                    Step::SignedIn(tokens) => $output {
                        authentication_result: Some(tokens.into()),
                        ..Default::default()
                    },
                    Step::Challenge(challenge) => $output {
                        challenge_name: Some(challenge.name),
                        challenge_parameters: Some(challenge.parameters),
                        session: challenge.session.map(Sensitive),
                        available_challenges: challenge.available,
                        ..Default::default()
                    },
                }
            }
        }
    )*};
}

/// A [`Step`] on its way to a wire output (the orphan rule wants a local type).
struct StepOutput(Step);

from_step!(
    InitiateAuthResponse,
    AdminInitiateAuthResponse,
    RespondToAuthChallengeResponse,
    AdminRespondToAuthChallengeResponse
);

fn params(input: Option<Sensitive<BTreeMap<String, String>>>) -> Params {
    Params::new(input.map(Sensitive::into_inner).unwrap_or_default())
}

/// Loads the client of an admin call and checks it belongs to the pool.
async fn admin_client(ctx: &Ctx, pool_id: &str, client_id: &str) -> ApiResult<ClientCall> {
    load_pool(ctx, pool_id).await?;
    let call = load_client(ctx, client_id).await?;
    if call.pool_id != pool_id {
        return Err(ApiError::not_found(format!("User pool client {client_id} does not exist.")));
    }
    Ok(call)
}

pub async fn initiate_auth(ctx: Ctx, input: InitiateAuthRequest) -> ApiResult<InitiateAuthResponse> {
    let call = load_client(&ctx, input.client_id.expose()).await?;
    let step = signin::initiate(&ctx, &call, input.auth_flow, params(input.auth_parameters), Caller::Public).await?;
    Ok(StepOutput(step).into())
}

pub async fn admin_initiate_auth(ctx: Ctx, input: AdminInitiateAuthRequest) -> ApiResult<AdminInitiateAuthResponse> {
    let call = admin_client(&ctx, &input.user_pool_id, input.client_id.expose()).await?;
    let step = signin::initiate(&ctx, &call, input.auth_flow, params(input.auth_parameters), Caller::Admin).await?;
    Ok(StepOutput(step).into())
}

pub async fn respond_to_auth_challenge(
    ctx: Ctx,
    input: RespondToAuthChallengeRequest,
) -> ApiResult<RespondToAuthChallengeResponse> {
    let call = load_client(&ctx, input.client_id.expose()).await?;
    let session = input.session.map(Sensitive::into_inner);
    let responses = params(input.challenge_responses);
    let step = signin::respond(&ctx, &call, input.challenge_name, responses, session.as_deref()).await?;
    Ok(StepOutput(step).into())
}

pub async fn admin_respond_to_auth_challenge(
    ctx: Ctx,
    input: AdminRespondToAuthChallengeRequest,
) -> ApiResult<AdminRespondToAuthChallengeResponse> {
    let call = admin_client(&ctx, &input.user_pool_id, input.client_id.expose()).await?;
    let session = input.session.map(Sensitive::into_inner);
    let responses = params(input.challenge_responses);
    let step = signin::respond(&ctx, &call, input.challenge_name, responses, session.as_deref()).await?;
    Ok(StepOutput(step).into())
}
