//! Request-rate limits per Cognito quota category (UserAuthentication, UserCreation, ...),
//! off by default for local use. Counters are fixed one-second windows kept in the store, so
//! every node sharing a PostgreSQL database enforces one limit together.

use cognate_api::{ErrorCode, Operation, Service};

use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;

/// Cognito's default requests per second for each category (per account and Region).
pub const DEFAULTS: &[(&str, u64)] = &[
    ("UserAuthentication", 120),
    ("UserAuthenticationChallenge", 360),
    ("UserCreation", 50),
    ("UserFederation", 25),
    ("UserAccountRecovery", 30),
    ("UserRead", 120),
    ("UserUpdate", 25),
    ("UserToken", 120),
    ("UserResourceRead", 50),
    ("UserResourceUpdate", 25),
    ("UserList", 30),
    ("UserPoolRead", 15),
    ("UserPoolUpdate", 15),
    ("UserPoolResourceRead", 20),
    ("UserPoolResourceUpdate", 15),
    ("UserPoolClientRead", 15),
    ("UserPoolClientUpdate", 15),
];

/// The quota category of a cognito-idp operation (AWS documents the categories by their
/// descriptions; RespondToAuthChallenge has its own allowance of three times
/// UserAuthentication).
pub fn category(op: &Operation) -> Option<&'static str> {
    if op.service != Service::CognitoIdp {
        return None;
    }
    let name = op.name;
    let category = match name {
        "InitiateAuth" | "AdminInitiateAuth" => "UserAuthentication",
        "RespondToAuthChallenge" | "AdminRespondToAuthChallenge" => "UserAuthenticationChallenge",
        "SignUp" | "ConfirmSignUp" | "AdminCreateUser" | "AdminConfirmSignUp" => "UserCreation",
        "ForgotPassword"
        | "ConfirmForgotPassword"
        | "ChangePassword"
        | "AdminResetUserPassword"
        | "AdminSetUserPassword" => "UserAccountRecovery",
        "GetUser" | "AdminGetUser" | "GetUserAuthFactors" | "AdminGetUserAuthFactors" => "UserRead",
        "RevokeToken" | "GetTokensFromRefreshToken" => "UserToken",
        "GlobalSignOut"
        | "AdminUserGlobalSignOut"
        | "ResendConfirmationCode"
        | "AssociateSoftwareToken"
        | "VerifySoftwareToken" => "UserUpdate",
        "ListUsers" | "ListUsersInGroup" => "UserList",
        "AdminLinkProviderForUser" | "AdminDisableProviderForUser" => "UserFederation",
        "GetDevice"
        | "ListDevices"
        | "AdminGetDevice"
        | "AdminListDevices"
        | "AdminListGroupsForUser"
        | "AdminListUserAuthEvents" => "UserResourceRead",
        "ConfirmDevice"
        | "ForgetDevice"
        | "UpdateDeviceStatus"
        | "AdminForgetDevice"
        | "AdminUpdateDeviceStatus"
        | "AdminAddUserToGroup"
        | "AdminRemoveUserFromGroup"
        | "UpdateAuthEventFeedback"
        | "AdminUpdateAuthEventFeedback" => "UserResourceUpdate",
        "DescribeUserPool" | "ListUserPools" | "GetUserPoolMfaConfig" => "UserPoolRead",
        "CreateUserPool" | "UpdateUserPool" | "DeleteUserPool" | "AddCustomAttributes" | "SetUserPoolMfaConfig" => {
            "UserPoolUpdate"
        }
        "DescribeUserPoolClient" | "ListUserPoolClients" | "ListUserPoolClientSecrets" => "UserPoolClientRead",
        "CreateUserPoolClient"
        | "UpdateUserPoolClient"
        | "DeleteUserPoolClient"
        | "AddUserPoolClientSecret"
        | "DeleteUserPoolClientSecret" => "UserPoolClientUpdate",
        _ if name.starts_with("Get") || name.starts_with("Describe") || name.starts_with("List") => {
            if user_level(name) {
                "UserRead"
            } else {
                "UserPoolResourceRead"
            }
        }
        _ if user_level(name) => "UserUpdate",
        _ => "UserPoolResourceUpdate",
    };
    Some(category)
}

/// Operations about one user (the rest act on pool resources: groups, domains, ...).
fn user_level(name: &str) -> bool {
    name.contains("User") && !name.contains("UserPool") && !name.contains("UserImport") && !name.contains("Group")
}

/// Counts the request against its category and refuses it past the limit, as Cognito does
/// (`TooManyRequestsException: Rate exceeded`, which SDKs retry with back-off).
pub async fn check(ctx: &Ctx, op: &Operation) -> ApiResult<()> {
    let config = &ctx.config().rate_limits;
    if !config.enabled || !op.errors.contains(&ErrorCode::TooManyRequestsException) {
        return Ok(());
    }
    let Some(category) = category(op) else { return Ok(()) };
    let limit = config
        .per_second
        .get(category)
        .copied()
        .or_else(|| DEFAULTS.iter().find(|(name, _)| *name == category).map(|(_, default)| *default));
    let Some(limit) = limit else { return Ok(()) };
    let now = ctx.now_ms();
    let window = now - now.rem_euclid(1000);
    let key = format!("rate:{category}");
    let count = ctx.store(move |s| s.hit_rate_window(&key, window, now)).await?;
    if count > limit {
        return Err(ApiError::new(ErrorCode::TooManyRequestsException, "Rate exceeded"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(name: &str) -> Option<&'static str> {
        Operation::find(Service::CognitoIdp, name).and_then(category)
    }

    #[test]
    fn operations_fall_into_cognitos_categories() {
        assert_eq!(cat("InitiateAuth"), Some("UserAuthentication"));
        assert_eq!(cat("RespondToAuthChallenge"), Some("UserAuthenticationChallenge"));
        assert_eq!(cat("SignUp"), Some("UserCreation"));
        assert_eq!(cat("ListUsers"), Some("UserList"));
        assert_eq!(cat("AdminUpdateUserAttributes"), Some("UserUpdate"));
        assert_eq!(cat("GlobalSignOut"), Some("UserUpdate"));
        assert_eq!(cat("CreateGroup"), Some("UserPoolResourceUpdate"));
        assert_eq!(cat("GetGroup"), Some("UserPoolResourceRead"));
        assert_eq!(cat("DescribeUserPoolClient"), Some("UserPoolClientRead"));
        // Every operation of the service has a category with a default limit.
        for op in Operation::of_service(Service::CognitoIdp) {
            let c = category(op).expect("category");
            assert!(DEFAULTS.iter().any(|(n, _)| *n == c), "{} -> {c}", op.name);
        }
    }
}
