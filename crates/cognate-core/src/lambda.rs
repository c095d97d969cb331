//! Running a pool's Lambda trigger functions: where a function runs (a webhook named under
//! `[lambda.functions]`, else Lambda's Invoke API at `--lambda-endpoint`), the event envelope
//! Cognito sends, the 5-second limit and retries, and how a failure reaches the caller as one
//! of Cognito's three Lambda errors. What each trigger's event holds and what its response
//! changes is in `hooks`. Cognito Sync's SyncTrigger, whose event is not the user pool's
//! envelope, goes through [`invoke_raw`] (see `sync_trigger`).

use std::time::Instant;

use cognate_api::idp::LambdaConfigType;
use cognate_api::ErrorCode;
use serde_json::{json, Map, Value};

use crate::aws::{percent_encode, signed_post, CallError};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::fetch::{Answer, Outgoing};

/// Attempts of one invocation that found no function to answer (unreachable, timed out,
/// throttled, a service error): Cognito retries those, up to three calls in all.
const ATTEMPTS: usize = 3;

/// The triggers of `LambdaConfig`, by the names their errors and metrics use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    PreSignUp,
    PostConfirmation,
    PreAuthentication,
    PostAuthentication,
    PreTokenGeneration,
    CustomMessage,
    DefineAuthChallenge,
    CreateAuthChallenge,
    VerifyAuthChallengeResponse,
    UserMigration,
    InboundFederation,
    CustomEmailSender,
    CustomSmsSender,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::PreSignUp => "PreSignUp",
            Trigger::PostConfirmation => "PostConfirmation",
            Trigger::PreAuthentication => "PreAuthentication",
            Trigger::PostAuthentication => "PostAuthentication",
            Trigger::PreTokenGeneration => "PreTokenGeneration",
            Trigger::CustomMessage => "CustomMessage",
            Trigger::DefineAuthChallenge => "DefineAuthChallenge",
            Trigger::CreateAuthChallenge => "CreateAuthChallenge",
            Trigger::VerifyAuthChallengeResponse => "VerifyAuthChallengeResponse",
            Trigger::UserMigration => "UserMigration",
            Trigger::InboundFederation => "InboundFederation",
            Trigger::CustomEmailSender => "CustomEmailSender",
            Trigger::CustomSmsSender => "CustomSMSSender",
        }
    }

    /// The function the pool configures for this trigger, if any.
    pub fn function(self, config: Option<&LambdaConfigType>) -> Option<&str> {
        let config = config?;
        match self {
            Trigger::PreSignUp => config.pre_sign_up.as_deref(),
            Trigger::PostConfirmation => config.post_confirmation.as_deref(),
            Trigger::PreAuthentication => config.pre_authentication.as_deref(),
            Trigger::PostAuthentication => config.post_authentication.as_deref(),
            Trigger::PreTokenGeneration => config
                .pre_token_generation_config
                .as_ref()
                .map(|c| c.lambda_arn.as_str())
                .or(config.pre_token_generation.as_deref()),
            Trigger::CustomMessage => config.custom_message.as_deref(),
            Trigger::DefineAuthChallenge => config.define_auth_challenge.as_deref(),
            Trigger::CreateAuthChallenge => config.create_auth_challenge.as_deref(),
            Trigger::VerifyAuthChallengeResponse => config.verify_auth_challenge_response.as_deref(),
            Trigger::UserMigration => config.user_migration.as_deref(),
            Trigger::InboundFederation => config.inbound_federation.as_ref().map(|c| c.lambda_arn.as_str()),
            Trigger::CustomEmailSender => config.custom_email_sender.as_ref().map(|c| c.lambda_arn.as_str()),
            Trigger::CustomSmsSender => config.custom_sms_sender.as_ref().map(|c| c.lambda_arn.as_str()),
        }
    }
}

/// One trigger event: the envelope's fields besides `request`, which each trigger builds.
pub struct Event<'a> {
    pub trigger: Trigger,
    /// `triggerSource`, e.g. `PreSignUp_SignUp`.
    pub source: &'a str,
    pub pool_id: &'a str,
    /// `userName` (the user's name, or what the caller typed for an unknown user).
    pub user_name: &'a str,
    pub client_id: Option<&'a str>,
    /// `version`: "1", or the pre token generation version's number.
    pub version: &'a str,
    pub request: Value,
}

/// How an invocation ended without a usable answer.
#[derive(Debug)]
pub enum Failure {
    /// The function ran and threw: its message.
    Function(String),
    /// No function answered (after the retries).
    Unexpected(String),
    /// Lambda throttled the last attempt (after the retries): an error of its own to Cognito
    /// Sync (LambdaThrottledException); to user pools, one more function that did not answer.
    Throttled(String),
    /// The function answered something that is not an event.
    Unrecognizable,
}

impl Failure {
    /// The outcome label of `cognate_lambda_invocations_total`.
    fn label(&self) -> &'static str {
        match self {
            Failure::Function(_) => "function_error",
            Failure::Unexpected(_) => "unreachable",
            Failure::Throttled(_) => "throttled",
            Failure::Unrecognizable => "invalid_response",
        }
    }
}

/// The event as the function receives it: the envelope around the trigger's request.
fn envelope(ctx: &Ctx, event: Event<'_>) -> Value {
    let region = event.pool_id.split('_').next().unwrap_or(&ctx.region);
    json!({
        "version": event.version,
        "triggerSource": event.source,
        "region": region,
        "userPoolId": event.pool_id,
        "userName": event.user_name,
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": event.client_id.unwrap_or("CLIENT_ID_NOT_APPLICABLE"),
        },
        "request": event.request,
        "response": {},
    })
}

/// Runs `function` with `event` and returns the `response` object it filled in.
pub async fn invoke(ctx: &Ctx, function: &str, event: Event<'_>) -> ApiResult<Map<String, Value>> {
    let trigger = event.trigger.name();
    let started = Instant::now();
    let outcome = match serde_json::to_vec(&envelope(ctx, event)) {
        Ok(body) => call(ctx, function, body).await,
        Err(err) => Err(Failure::Unexpected(err.to_string())),
    };
    ctx.state.metrics.lambda(trigger, outcome.as_ref().map_or_else(Failure::label, |_| "ok"), started.elapsed());
    match outcome {
        Ok(response) => Ok(response),
        Err(Failure::Function(message)) => Err(ApiError::new(
            ErrorCode::UserLambdaValidationException,
            format!("{trigger} failed with error {message}."),
        )),
        Err(Failure::Unexpected(detail) | Failure::Throttled(detail)) => {
            tracing::warn!(request_id = %ctx.request_id, trigger, function, detail, "Lambda trigger not invoked");
            Err(ApiError::new(
                ErrorCode::UnexpectedLambdaException,
                format!("{trigger} invocation failed due to error {}.", public_reason(&detail)),
            ))
        }
        Err(Failure::Unrecognizable) => {
            Err(ApiError::new(ErrorCode::InvalidLambdaResponseException, "Unrecognizable lambda output"))
        }
    }
}

/// Runs `function` with `event` as the whole payload, for the events that are not the user
/// pool's envelope (Cognito Sync's SyncTrigger), and returns the function's output as JSON
/// (`null` when it returned nothing). `trigger` names it in the metrics; what each failure
/// means to the caller is the caller's service's to say.
pub async fn invoke_raw(ctx: &Ctx, function: &str, trigger: &str, event: &Value) -> Result<Value, Failure> {
    let started = Instant::now();
    let outcome = match serde_json::to_vec(event) {
        Ok(body) => output(ctx, function, body)
            .await
            .and_then(|output| serde_json::from_str(&output).map_err(|_| Failure::Unrecognizable)),
        Err(err) => Err(Failure::Unexpected(err.to_string())),
    };
    ctx.state.metrics.lambda(trigger, outcome.as_ref().map_or_else(Failure::label, |_| "ok"), started.elapsed());
    if let Err(Failure::Unexpected(detail) | Failure::Throttled(detail)) = &outcome {
        tracing::warn!(request_id = %ctx.request_id, trigger, function, detail, "Lambda trigger not invoked");
    }
    outcome
}

/// Calls the function and reads its answer's `response`.
async fn call(ctx: &Ctx, function: &str, body: Vec<u8>) -> Result<Map<String, Value>, Failure> {
    response_of(&output(ctx, function, body).await?)
}

/// The function's output, retrying what may pass (no answer, throttling, service errors).
async fn output(ctx: &Ctx, function: &str, body: Vec<u8>) -> Result<String, Failure> {
    let mut last = Failure::Unexpected(String::new());
    for _ in 0..ATTEMPTS {
        match send(ctx, function, body.clone(), false).await {
            Sent::Answered(output) => return Ok(output),
            Sent::Threw(message) => return Err(Failure::Function(message)),
            Sent::Refused(detail) => return Err(Failure::Unexpected(detail)),
            Sent::Retry(detail) => last = Failure::Unexpected(detail),
            Sent::Throttled(detail) => last = Failure::Throttled(detail),
        }
    }
    Err(last)
}

/// What one attempt came to.
enum Sent {
    /// The function's output.
    Answered(String),
    /// The function threw (its `errorMessage`).
    Threw(String),
    /// No function will answer (none configured, not found): not worth a retry.
    Refused(String),
    Retry(String),
    /// Lambda's 429 (TooManyRequestsException): retried like `Retry`, told apart at the end.
    Throttled(String),
}

/// One attempt; `queued` asks Lambda to queue the event (`Event` invocation, answered 202
/// before the function runs) rather than wait for the function's answer.
async fn send(ctx: &Ctx, function: &str, body: Vec<u8>, queued: bool) -> Sent {
    let settings = ctx.settings();
    let name = function_name(function);
    if let Some(url) = settings.lambda_functions.get(function).or_else(|| settings.lambda_functions.get(name)) {
        let outgoing = Outgoing {
            method: "POST",
            url: url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        };
        return match ctx.state.fetch.exchange(outgoing).await {
            Ok(answer) => webhook_answer(answer),
            Err(detail) => Sent::Retry(detail),
        };
    }
    let Some(endpoint) = &settings.lambda_endpoint else {
        return Sent::Refused(format!(
            "no way to run {function}: give Cognate --lambda-endpoint, or map the function under [lambda.functions]"
        ));
    };
    let path = format!("/2015-03-31/functions/{}/invocations", percent_encode(function));
    let headers = vec![
        ("content-type".into(), "application/json".into()),
        ("x-amz-invocation-type".into(), if queued { "Event" } else { "RequestResponse" }.into()),
    ];
    match signed_post(ctx, (endpoint, &path), "lambda", headers, body).await {
        Ok(answer) => invoke_api_answer(answer),
        Err(CallError { message, .. }) => Sent::Retry(message),
    }
}

/// Hands `event` to `function` without waiting for it, as Cognito runs the custom sender
/// triggers: the caller goes on at once, and a function that cannot be reached (after the
/// same retries as [`invoke`]) or fails is logged and counted in the metrics, never reported
/// to the caller, whose operation has already answered.
pub fn invoke_queued(ctx: &Ctx, function: &str, event: Event<'_>) {
    let trigger = event.trigger.name();
    let body = match serde_json::to_vec(&envelope(ctx, event)) {
        Ok(body) => body,
        Err(err) => {
            tracing::warn!(request_id = %ctx.request_id, trigger, function, error = %err, "Lambda event not sent");
            return;
        }
    };
    let (ctx, function) = (ctx.clone(), function.to_owned());
    tokio::spawn(async move {
        let started = Instant::now();
        let mut failure = None;
        for _ in 0..ATTEMPTS {
            failure = match send(&ctx, &function, body.clone(), true).await {
                Sent::Answered(_) => None,
                Sent::Threw(message) => Some(("function_error", message)),
                Sent::Refused(detail) => Some(("unreachable", detail)),
                Sent::Retry(detail) => {
                    failure = Some(("unreachable", detail));
                    continue;
                }
                Sent::Throttled(detail) => {
                    failure = Some(("throttled", detail));
                    continue;
                }
            };
            break;
        }
        let label = failure.as_ref().map_or("ok", |(label, _)| label);
        ctx.state.metrics.lambda(trigger, label, started.elapsed());
        if let Some((_, detail)) = failure {
            tracing::warn!(request_id = %ctx.request_id, trigger, function, detail, "queued Lambda event failed");
        }
    });
}

/// What a caller is told of a function nobody ran: the kind of failure, in Cognito's words
/// where it has them, without the addresses in `detail` (those go to the log).
fn public_reason(detail: &str) -> String {
    if detail.contains("did not answer within") {
        "Socket timeout while invoking Lambda function".into()
    } else if let Some(message) = detail.strip_prefix("HTTP 404: ") {
        format!("ResourceNotFoundException: {message}")
    } else if detail.starts_with("no way to run") {
        detail.to_owned()
    } else if detail.starts_with("HTTP 429") {
        "TooManyRequestsException".into()
    } else {
        "the Lambda service could not be reached".into()
    }
}

/// `my-function` of `arn:aws:lambda:us-east-1:123456789012:function:my-function[:alias]`.
fn function_name(function: &str) -> &str {
    match function.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        _ => function,
    }
}

/// A function error's message: Lambda's `{"errorMessage": ..., "errorType": ...}`.
fn error_message(body: &str) -> Option<String> {
    let error: Value = serde_json::from_str(body).ok()?;
    Some(error.get("errorMessage")?.as_str()?.to_owned())
}

/// The Invoke API's answer: the output, a function error (`X-Amz-Function-Error`), or the
/// service's own error.
fn invoke_api_answer(answer: Answer) -> Sent {
    let failed = answer.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("x-amz-function-error"));
    match answer.status {
        200..=299 if failed => Sent::Threw(error_message(&answer.body).unwrap_or_else(|| answer.body.clone())),
        200..=299 => Sent::Answered(answer.body),
        429 => Sent::Throttled(format!("HTTP 429: {}", answer.body)),
        500..=599 => Sent::Retry(format!("HTTP {}: {}", answer.status, answer.body)),
        status => {
            let parsed: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
            let message = parsed["message"].as_str().or(parsed["Message"].as_str()).unwrap_or(&answer.body);
            Sent::Refused(format!("HTTP {status}: {message}"))
        }
    }
}

/// A webhook's answer: 2xx with the output; an error status with `errorMessage` is the
/// function throwing; other errors are retried like Lambda's service errors.
fn webhook_answer(answer: Answer) -> Sent {
    match answer.status {
        200..=299 => Sent::Answered(answer.body),
        status => match error_message(&answer.body) {
            Some(message) => Sent::Threw(message),
            None if status == 429 => Sent::Throttled(format!("HTTP {status}")),
            None if status >= 500 => Sent::Retry(format!("HTTP {status}")),
            None => Sent::Refused(format!("HTTP {status}")),
        },
    }
}

/// The `response` object of a function's output (the event it returns). A function that
/// returns nothing leaves the response empty, as Lambda's Node runtime answers `null`.
fn response_of(output: &str) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_str::<Value>(output) {
        Ok(Value::Object(mut event)) => match event.remove("response") {
            Some(Value::Object(response)) => Ok(response),
            Some(Value::Null) | None => Ok(Map::new()),
            Some(_) => Err(Failure::Unrecognizable),
        },
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(Failure::Unrecognizable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_arns_with_or_without_a_qualifier() {
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:pre-sign-up"), "pre-sign-up");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:f:live"), "f");
        assert_eq!(function_name("plain-name"), "plain-name");
    }

    #[test]
    fn callers_are_told_the_kind_of_failure_not_the_address() {
        let timeout = "http://10.0.0.7:9001 could not be reached: http://10.0.0.7:9001/x did not answer within 5s";
        assert_eq!(public_reason(timeout), "Socket timeout while invoking Lambda function");
        assert_eq!(
            public_reason("HTTP 404: Function not found: f"),
            "ResourceNotFoundException: Function not found: f"
        );
        let refused = "http://10.0.0.7:9001 could not be reached: connect 10.0.0.7:9001: refused";
        assert!(!public_reason(refused).contains("10.0.0.7"));
    }

    #[test]
    fn outputs_are_events_or_nothing() {
        assert!(
            matches!(response_of(r#"{"response":{"autoConfirmUser":true}}"#), Ok(r) if r["autoConfirmUser"] == true)
        );
        assert!(matches!(response_of("null"), Ok(r) if r.is_empty()));
        assert!(matches!(response_of("not json"), Err(Failure::Unrecognizable)));
        assert!(matches!(response_of(r#"{"response":"yes"}"#), Err(Failure::Unrecognizable)));
        assert!(matches!(response_of("[1]"), Err(Failure::Unrecognizable)));
    }

    #[test]
    fn function_errors_are_told_apart_from_service_errors() {
        let answer = |status, failed: bool, body: &str| Answer {
            status,
            headers: if failed { vec![("x-amz-function-error".into(), "Unhandled".into())] } else { Vec::new() },
            body: body.into(),
        };
        let thrown = r#"{"errorType":"Error","errorMessage":"No sign-ups on Sundays"}"#;
        assert!(
            matches!(invoke_api_answer(answer(200, true, thrown)), Sent::Threw(m) if m == "No sign-ups on Sundays")
        );
        assert!(matches!(invoke_api_answer(answer(200, false, "{}")), Sent::Answered(_)));
        assert!(matches!(invoke_api_answer(answer(429, false, "{}")), Sent::Throttled(_)));
        assert!(matches!(invoke_api_answer(answer(503, false, "{}")), Sent::Retry(_)));
        assert!(
            matches!(invoke_api_answer(answer(404, false, r#"{"Message":"Function not found"}"#)), Sent::Refused(m) if m.contains("Function not found"))
        );
        assert!(matches!(webhook_answer(answer(500, false, thrown)), Sent::Threw(_)));
        assert!(matches!(webhook_answer(answer(502, false, "bad gateway")), Sent::Retry(_)));
        assert!(matches!(webhook_answer(answer(429, false, "slow down")), Sent::Throttled(_)));
    }
}
