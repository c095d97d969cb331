//! Where a pool's Lambda triggers run. Each hook point below is called at the place in the
//! domain where Cognito invokes that trigger, with what the trigger's event is built from;
//! a trigger's response may refuse the step (an error) or change what follows (claims).
//!
//! Cognate stores a pool's `LambdaConfig` but does not invoke functions yet: a hook point
//! finds the function the pool names and, for now, only logs that it was not called (the
//! behaviour of earlier versions, which ignored LambdaConfig silently). The invoker comes
//! with Lambda trigger support; these call sites are where it plugs in.

use cognate_api::idp::{LambdaConfigType, UserPoolType};
use serde_json::{Map, Value};

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::users::User;

/// The triggers with a hook point, by the name Cognito's events give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    PreAuthentication,
    PostAuthentication,
    PreTokenGeneration,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::PreAuthentication => "PreAuthentication",
            Trigger::PostAuthentication => "PostAuthentication",
            Trigger::PreTokenGeneration => "PreTokenGeneration",
        }
    }

    /// The function the pool configures for this trigger, if any.
    pub fn function(self, config: &LambdaConfigType) -> Option<&str> {
        match self {
            Trigger::PreAuthentication => config.pre_authentication.as_deref(),
            Trigger::PostAuthentication => config.post_authentication.as_deref(),
            Trigger::PreTokenGeneration => config
                .pre_token_generation_config
                .as_ref()
                .map(|c| c.lambda_arn.as_str())
                .or(config.pre_token_generation.as_deref()),
        }
    }
}

/// The function `pool` configures for `trigger`, logged as not invoked.
fn configured(ctx: &Ctx, pool: &UserPoolType, trigger: Trigger) -> Option<String> {
    let function = trigger.function(pool.lambda_config.as_ref()?)?.to_owned();
    tracing::debug!(request_id = %ctx.request_id, trigger = trigger.name(), function, "Lambda trigger not invoked");
    Some(function)
}

/// Before the first factor is checked, for a user that exists (Cognito does not run it for
/// unknown users).
pub async fn pre_authentication(ctx: &Ctx, call: &ClientCall, user: &User) -> ApiResult<()> {
    let _ = (configured(ctx, &call.pool.pool, Trigger::PreAuthentication), user);
    Ok(())
}

/// After the last factor, before tokens are issued.
pub async fn post_authentication(ctx: &Ctx, call: &ClientCall, user: &User) -> ApiResult<()> {
    let _ = (configured(ctx, &call.pool.pool, Trigger::PostAuthentication), user);
    Ok(())
}

/// Before the ID and access tokens are signed, with their claims (which the trigger may
/// add to, override or suppress).
pub async fn pre_token_generation(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    id_claims: &mut Map<String, Value>,
    access_claims: &mut Map<String, Value>,
) -> ApiResult<()> {
    let _ = (configured(ctx, &call.pool.pool, Trigger::PreTokenGeneration), user, id_claims, access_claims);
    Ok(())
}
