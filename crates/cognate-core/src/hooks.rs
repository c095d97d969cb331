//! Where a pool's Lambda triggers run. Each hook point is called at the place in the domain
//! where Cognito invokes that trigger: it builds the trigger's event (as
//! `../shared/reference/cognito-api.md` §4.7 and AWS document it), runs the function through
//! `lambda::invoke`, and applies the response (a refusal is an error; claims, confirmation).
//! A pool without the trigger costs nothing here.

use cognate_api::idp::{AttributeType, UserPoolType};
use cognate_api::ErrorCode;
use serde_json::{json, Map, Value};

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::lambda::{self, Event, Trigger};
use crate::users::User;

/// `userAttributes` as triggers get them: every attribute as a string, `sub` and the user's
/// status (`cognito:user_status`) included.
pub(crate) fn user_attributes(user: &User) -> Value {
    let mut attributes: Map<String, Value> =
        user.attributes.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
    attributes.insert("sub".into(), json!(user.record.sub.as_str()));
    attributes.insert("cognito:user_status".into(), json!(user.record.status.as_str()));
    Value::Object(attributes)
}

/// A list of attributes (SignUp's ValidationData) as the string map events carry.
fn attribute_map(attributes: &[AttributeType]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|a| (a.name.clone(), json!(a.value.as_ref().map(|v| v.expose().as_str()).unwrap_or_default())))
            .collect(),
    )
}

/// The request's ClientMetadata, or an empty map.
pub(crate) fn client_metadata(ctx: &Ctx) -> Value {
    ctx.client_metadata.clone().unwrap_or_else(|| json!({}))
}

/// Runs `trigger` if `pool` configures it: its response, or None when it does not.
async fn run(
    ctx: &Ctx,
    pool: &UserPoolType,
    trigger: Trigger,
    event: Event<'_>,
) -> ApiResult<Option<Map<String, Value>>> {
    let Some(function) = trigger.function(pool.lambda_config.as_ref()) else {
        return Ok(None);
    };
    lambda::invoke(ctx, function, event).await.map(Some)
}

fn flag(response: &Map<String, Value>, name: &str) -> bool {
    response.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// What a PreSignUp function decided for a new user.
#[derive(Debug, Default, Clone, Copy)]
pub struct SignUpDecision {
    pub auto_confirm: bool,
    pub auto_verify_email: bool,
    pub auto_verify_phone: bool,
}

impl SignUpDecision {
    /// Marks the contacts the function verified as verified, where the user has them.
    pub fn verify_contacts(&self, attributes: &mut std::collections::BTreeMap<String, String>) {
        for (verify, attribute) in [(self.auto_verify_email, "email"), (self.auto_verify_phone, "phone_number")] {
            if verify && attributes.contains_key(attribute) {
                attributes.insert(format!("{attribute}_verified"), "true".into());
            }
        }
    }
}

/// Before a user is created by SignUp (`PreSignUp_SignUp`), AdminCreateUser
/// (`PreSignUp_AdminCreateUser`) or a first federated sign-in (`PreSignUp_ExternalProvider`):
/// the function may refuse it, or confirm and verify it. `attributes` are the new user's; the
/// function sees them as given (without the `sub` Cognate made).
pub async fn pre_sign_up(
    ctx: &Ctx,
    (pool_id, pool): (&str, &UserPoolType),
    client_id: Option<&str>,
    (source, username): (&str, &str),
    attributes: &std::collections::BTreeMap<String, String>,
    validation_data: &[AttributeType],
) -> ApiResult<SignUpDecision> {
    let given: Map<String, Value> =
        attributes.iter().filter(|(name, _)| name.as_str() != "sub").map(|(k, v)| (k.clone(), json!(v))).collect();
    let request = json!({
        "userAttributes": given,
        "validationData": attribute_map(validation_data),
        "clientMetadata": client_metadata(ctx),
    });
    let event =
        Event { trigger: Trigger::PreSignUp, source, pool_id, user_name: username, client_id, version: "1", request };
    let Some(response) = run(ctx, pool, Trigger::PreSignUp, event).await? else {
        return Ok(SignUpDecision::default());
    };
    Ok(SignUpDecision {
        auto_confirm: flag(&response, "autoConfirmUser"),
        auto_verify_email: flag(&response, "autoVerifyEmail"),
        auto_verify_phone: flag(&response, "autoVerifyPhone"),
    })
}

/// After a user is confirmed (`PostConfirmation_ConfirmSignUp`) or confirms a password
/// reset (`PostConfirmation_ConfirmForgotPassword`).
pub async fn post_confirmation(
    ctx: &Ctx,
    (pool_id, pool): (&str, &UserPoolType),
    client_id: Option<&str>,
    source: &str,
    user: &User,
) -> ApiResult<()> {
    let request = json!({"userAttributes": user_attributes(user), "clientMetadata": client_metadata(ctx)});
    let event = Event {
        trigger: Trigger::PostConfirmation,
        source,
        pool_id,
        user_name: &user.record.username,
        client_id,
        version: "1",
        request,
    };
    run(ctx, pool, Trigger::PostConfirmation, event).await.map(|_| ())
}

/// Before the first factor is checked. ClientMetadata reaches it as `validationData`. A login
/// that names no user gets it only where the client hides user existence (`userNotFound`:
/// the function should then answer as it would for a real user); elsewhere that login fails
/// before any trigger.
pub async fn pre_authentication(ctx: &Ctx, call: &ClientCall, user: Option<&User>, login: &str) -> ApiResult<()> {
    let request = json!({
        "userAttributes": user.map_or_else(|| json!({}), user_attributes),
        "validationData": client_metadata(ctx),
        "userNotFound": user.is_none(),
    });
    let event = Event {
        trigger: Trigger::PreAuthentication,
        source: "PreAuthentication_Authentication",
        pool_id: &call.pool_id,
        user_name: user.map_or(login, |u| u.record.username.as_str()),
        client_id: Some(&call.client_id),
        version: "1",
        request,
    };
    run(ctx, &call.pool.pool, Trigger::PreAuthentication, event).await.map(|_| ())
}

/// After the last factor, before tokens are issued.
pub async fn post_authentication(ctx: &Ctx, call: &ClientCall, user: &User, new_device_used: bool) -> ApiResult<()> {
    let request = json!({
        "userAttributes": user_attributes(user),
        "newDeviceUsed": new_device_used,
        "clientMetadata": client_metadata(ctx),
    });
    let event = Event {
        trigger: Trigger::PostAuthentication,
        source: "PostAuthentication_Authentication",
        pool_id: &call.pool_id,
        user_name: &user.record.username,
        client_id: Some(&call.client_id),
        version: "1",
        request,
    };
    run(ctx, &call.pool.pool, Trigger::PostAuthentication, event).await.map(|_| ())
}

/// Claims a pre token generation function may not add, change or suppress (either token).
const PROTECTED_CLAIMS: &[&str] = &[
    "acr",
    "amr",
    "aud",
    "at_hash",
    "auth_time",
    "azp",
    "cognito:username",
    "exp",
    "iat",
    "identities",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "origin_jti",
    "sub",
    "token_use",
    "event_id",
];
/// Claims of the access token besides those, which only the scope lists may change.
const PROTECTED_ACCESS_CLAIMS: &[&str] = &["client_id", "username", "scope", "device_key"];

/// Why a token's claims came out as they did: the trigger sources Cognito names.
pub mod token_source {
    pub const AUTHENTICATION: &str = "TokenGeneration_Authentication";
    pub const HOSTED_AUTH: &str = "TokenGeneration_HostedAuth";
    pub const NEW_PASSWORD_CHALLENGE: &str = "TokenGeneration_NewPasswordChallenge";
    pub const AUTHENTICATE_DEVICE: &str = "TokenGeneration_AuthenticateDevice";
    pub const REFRESH_TOKENS: &str = "TokenGeneration_RefreshTokens";
}

/// The pre token generation version a pool asks for: 1 (ID token only), 2 or 3 (both).
fn token_trigger_version(pool: &UserPoolType) -> u8 {
    let config = pool.lambda_config.as_ref().and_then(|c| c.pre_token_generation_config.as_ref());
    match config.map(|c| c.lambda_version.as_str()) {
        Some("V2_0") => 2,
        Some("V3_0") => 3,
        _ => 1,
    }
}

fn invalid_response(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidLambdaResponseException, message)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// One token's `claimsToAddOrOverride` and `claimsToSuppress` applied (suppression wins).
/// Version 1 takes string values only; later versions any JSON value.
fn apply_claims(
    claims: &mut Map<String, Value>,
    generation: Option<&Value>,
    protected: &[&[&str]],
    any_type: bool,
) -> ApiResult<()> {
    let Some(generation) = generation.filter(|g| !g.is_null()) else {
        return Ok(());
    };
    let is_protected = |name: &str| protected.iter().any(|list| list.contains(&name));
    let added = generation.get("claimsToAddOrOverride").and_then(Value::as_object).cloned().unwrap_or_default();
    let suppressed = strings(generation.get("claimsToSuppress"));
    for name in added.keys().chain(suppressed.iter()) {
        if is_protected(name) || name.starts_with("cognito:") && name != "cognito:preferred_role" {
            return Err(invalid_response(format!("The claim {name} cannot be added, overridden or suppressed.")));
        }
    }
    for (name, value) in added {
        if !any_type && !value.is_string() {
            return Err(invalid_response(format!("The claim {name} must be a string in a V1_0 response.")));
        }
        claims.insert(name, value);
    }
    for name in suppressed {
        claims.remove(&name);
    }
    Ok(())
}

/// `groupOverrideDetails` applied: groups replace `cognito:groups` in both tokens, roles and
/// the preferred role those of the ID token; an empty override removes them.
fn apply_group_override(id: &mut Map<String, Value>, access: &mut Map<String, Value>, details: Option<&Value>) {
    let Some(details) = details else {
        return;
    };
    let set = |claims: &mut Map<String, Value>, name: &str, value: Option<Value>| match value {
        Some(value) => {
            claims.insert(name.to_owned(), value);
        }
        None => {
            claims.remove(name);
        }
    };
    let list = |name: &str| Some(strings(details.get(name))).filter(|l| !l.is_empty()).map(|l| json!(l));
    let groups = list("groupsToOverride");
    set(id, "cognito:groups", groups.clone());
    set(access, "cognito:groups", groups);
    set(id, "cognito:roles", list("iamRolesToOverride"));
    set(id, "cognito:preferred_role", details.get("preferredRole").filter(|r| r.is_string()).cloned());
}

/// Before the ID and access tokens are signed, with their claims (which the trigger may
/// add to, override or suppress, and whose groups and scopes it may change).
pub async fn pre_token_generation(
    ctx: &Ctx,
    call: &ClientCall,
    user: &User,
    source: &str,
    id: &mut Map<String, Value>,
    access: &mut Map<String, Value>,
) -> ApiResult<()> {
    let pool = &call.pool.pool;
    if Trigger::PreTokenGeneration.function(pool.lambda_config.as_ref()).is_none() {
        return Ok(());
    }
    let version = token_trigger_version(pool);
    let groups = strings(id.get("cognito:groups"));
    let roles = strings(id.get("cognito:roles"));
    let mut request = json!({
        "userAttributes": user_attributes(user),
        "groupConfiguration": {
            "groupsToOverride": groups,
            "iamRolesToOverride": roles,
            "preferredRole": id.get("cognito:preferred_role").cloned().unwrap_or(Value::Null),
        },
        "clientMetadata": client_metadata(ctx),
    });
    let scopes: Vec<String> =
        access.get("scope").and_then(Value::as_str).unwrap_or_default().split(' ').map(str::to_owned).collect();
    if version > 1 {
        request["scopes"] = json!(scopes);
    }
    let version_text = version.to_string();
    let event = Event {
        trigger: Trigger::PreTokenGeneration,
        source,
        pool_id: &call.pool_id,
        user_name: &user.record.username,
        client_id: Some(&call.client_id),
        version: &version_text,
        request,
    };
    let Some(response) = run(ctx, pool, Trigger::PreTokenGeneration, event).await? else {
        return Ok(());
    };
    if version == 1 {
        let details = response.get("claimsOverrideDetails").filter(|d| !d.is_null());
        apply_claims(id, details, &[PROTECTED_CLAIMS], false)?;
        apply_group_override(id, access, details.and_then(|d| d.get("groupOverrideDetails")));
        return Ok(());
    }
    let Some(details) = response.get("claimsAndScopeOverrideDetails").filter(|d| !d.is_null()) else {
        return Ok(());
    };
    apply_claims(id, details.get("idTokenGeneration"), &[PROTECTED_CLAIMS], true)?;
    apply_access_generation(access, details.get("accessTokenGeneration"), scopes)?;
    apply_group_override(id, access, details.get("groupOverrideDetails"));
    Ok(())
}

/// `accessTokenGeneration` applied: claims, then `scopesToSuppress` and `scopesToAdd` on the
/// token's `scopes`.
fn apply_access_generation(
    access: &mut Map<String, Value>,
    generation: Option<&Value>,
    scopes: Vec<String>,
) -> ApiResult<()> {
    apply_claims(access, generation, &[PROTECTED_CLAIMS, PROTECTED_ACCESS_CLAIMS], true)?;
    let Some(generation) = generation.filter(|g| !g.is_null()) else {
        return Ok(());
    };
    let mut scopes: Vec<String> = scopes.into_iter().filter(|s| !s.is_empty()).collect();
    let suppressed = strings(generation.get("scopesToSuppress"));
    scopes.retain(|s| !suppressed.contains(s));
    for added in strings(generation.get("scopesToAdd")) {
        if !scopes.contains(&added) && !suppressed.contains(&added) {
            scopes.push(added);
        }
    }
    access.insert("scope".into(), json!(scopes.join(" ")));
    Ok(())
}

/// Before a machine-to-machine access token (client_credentials, GetClientToken) is signed:
/// only a V3_0 function runs (`TokenGeneration_ClientCredentials`), and only the access
/// token's claims and scopes can change.
pub async fn pre_token_generation_m2m(ctx: &Ctx, call: &ClientCall, access: &mut Map<String, Value>) -> ApiResult<()> {
    let pool = &call.pool.pool;
    if token_trigger_version(pool) != 3 || Trigger::PreTokenGeneration.function(pool.lambda_config.as_ref()).is_none() {
        return Ok(());
    }
    let scopes: Vec<String> =
        access.get("scope").and_then(Value::as_str).unwrap_or_default().split(' ').map(str::to_owned).collect();
    let request = json!({
        "userAttributes": {},
        "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null},
        "scopes": scopes,
        "clientMetadata": client_metadata(ctx),
    });
    let event = Event {
        trigger: Trigger::PreTokenGeneration,
        source: "TokenGeneration_ClientCredentials",
        pool_id: &call.pool_id,
        user_name: &call.client_id,
        client_id: Some(&call.client_id),
        version: "3",
        request,
    };
    let Some(response) = run(ctx, pool, Trigger::PreTokenGeneration, event).await? else {
        return Ok(());
    };
    let generation = response.get("claimsAndScopeOverrideDetails").and_then(|d| d.get("accessTokenGeneration"));
    apply_access_generation(access, generation, scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_claims_are_refused_and_suppression_wins() {
        let mut claims = Map::new();
        claims.insert("email".into(), json!("a@example.com"));
        let refused = json!({"claimsToAddOrOverride": {"sub": "someone-else"}});
        assert!(apply_claims(&mut claims, Some(&refused), &[PROTECTED_CLAIMS], true).is_err());
        let refused = json!({"claimsToSuppress": ["token_use"]});
        assert!(apply_claims(&mut claims, Some(&refused), &[PROTECTED_CLAIMS], true).is_err());
        let both =
            json!({"claimsToAddOrOverride": {"tier": "gold", "email": "b@example.com"}, "claimsToSuppress": ["tier"]});
        assert!(apply_claims(&mut claims, Some(&both), &[PROTECTED_CLAIMS], true).is_ok());
        assert_eq!(Value::Object(claims), json!({"email": "b@example.com"}));
    }

    #[test]
    fn version_one_takes_strings_only() {
        let mut claims = Map::new();
        let typed = json!({"claimsToAddOrOverride": {"level": 3}});
        assert!(apply_claims(&mut claims, Some(&typed), &[PROTECTED_CLAIMS], false).is_err());
        assert!(apply_claims(&mut claims, Some(&typed), &[PROTECTED_CLAIMS], true).is_ok());
        assert_eq!(claims["level"], 3);
    }

    #[test]
    fn a_group_override_replaces_groups_in_both_tokens() {
        let (mut id, mut access) = (Map::new(), Map::new());
        id.insert("cognito:groups".into(), json!(["a"]));
        access.insert("cognito:groups".into(), json!(["a"]));
        apply_group_override(&mut id, &mut access, Some(&json!({"groupsToOverride": ["b", "c"]})));
        assert_eq!((&id["cognito:groups"], &access["cognito:groups"]), (&json!(["b", "c"]), &json!(["b", "c"])));
        apply_group_override(&mut id, &mut access, Some(&json!({})));
        assert!(!id.contains_key("cognito:groups") && !access.contains_key("cognito:groups"));
    }
}
