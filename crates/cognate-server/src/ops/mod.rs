//! The operations Cognate implements. Adding one is a line in `operations!` below plus an
//! `async fn(Ctx, <Input>) -> ApiResult<<Output>>` in the area file; the dispatcher, the
//! not-implemented answer for everything else and `docs/COMPATIBILITY.md` follow from the list.

mod auth;
mod clients_auth;
pub mod common;
mod devices;
pub mod groups;
pub mod identity_pools;
pub mod import_jobs;
mod mfa;
mod mfa_config;
pub mod pool_clients;
mod self_service;
pub mod sign_up;
mod tags;
pub mod user_pools;
pub mod users;

use std::future::Future;

use cognate_api::{Operation, Service};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Code, ProtocolCode};
use crate::state::Ctx;

macro_rules! operations {
    ($($service:ident $name:literal => $handler:path,)*) => {
        /// (service, operation) pairs that have an implementation.
        pub static IMPLEMENTED: &[(Service, &str)] = &[$((Service::$service, $name)),*];

        /// Decodes the validated body into the operation's input type, runs it, encodes the output.
        pub async fn dispatch(ctx: Ctx, op: &'static Operation, body: Value) -> ApiResult<Value> {
            match (op.service, op.name) {
                $((Service::$service, $name) => invoke(ctx, op, body, $handler).await,)*
                _ => Err(not_implemented(op)),
            }
        }

        /// The Rust input type each implemented operation decodes, for the consistency test.
        #[cfg(test)]
        pub fn input_types() -> Vec<(Service, &'static str, &'static str)> {
            vec![$((Service::$service, $name, input_type_name(&$handler))),*]
        }
    };
}

operations! {
    CognitoIdp "CreateUserPool" => user_pools::create_user_pool,
    CognitoIdp "DescribeUserPool" => user_pools::describe_user_pool,
    CognitoIdp "UpdateUserPool" => user_pools::update_user_pool,
    CognitoIdp "DeleteUserPool" => user_pools::delete_user_pool,
    CognitoIdp "ListUserPools" => user_pools::list_user_pools,
    CognitoIdp "AddCustomAttributes" => user_pools::add_custom_attributes,
    CognitoIdp "GetCSVHeader" => user_pools::get_csv_header,
    CognitoIdp "GetUserPoolMfaConfig" => mfa_config::get_user_pool_mfa_config,
    CognitoIdp "SetUserPoolMfaConfig" => mfa_config::set_user_pool_mfa_config,
    CognitoIdp "CreateUserPoolClient" => pool_clients::create_user_pool_client,
    CognitoIdp "DescribeUserPoolClient" => pool_clients::describe_user_pool_client,
    CognitoIdp "UpdateUserPoolClient" => pool_clients::update_user_pool_client,
    CognitoIdp "DeleteUserPoolClient" => pool_clients::delete_user_pool_client,
    CognitoIdp "ListUserPoolClients" => pool_clients::list_user_pool_clients,
    CognitoIdp "AddUserPoolClientSecret" => pool_clients::add_user_pool_client_secret,
    CognitoIdp "ListUserPoolClientSecrets" => pool_clients::list_user_pool_client_secrets,
    CognitoIdp "DeleteUserPoolClientSecret" => pool_clients::delete_user_pool_client_secret,
    CognitoIdp "SignUp" => sign_up::sign_up,
    CognitoIdp "ConfirmSignUp" => sign_up::confirm_sign_up,
    CognitoIdp "ResendConfirmationCode" => sign_up::resend_confirmation_code,
    CognitoIdp "ForgotPassword" => sign_up::forgot_password,
    CognitoIdp "ConfirmForgotPassword" => sign_up::confirm_forgot_password,
    CognitoIdp "AdminCreateUser" => users::admin_create_user,
    CognitoIdp "AdminGetUser" => users::admin_get_user,
    CognitoIdp "AdminDeleteUser" => users::admin_delete_user,
    CognitoIdp "AdminDisableUser" => users::admin_disable_user,
    CognitoIdp "AdminEnableUser" => users::admin_enable_user,
    CognitoIdp "AdminConfirmSignUp" => users::admin_confirm_sign_up,
    CognitoIdp "AdminUpdateUserAttributes" => users::admin_update_user_attributes,
    CognitoIdp "AdminDeleteUserAttributes" => users::admin_delete_user_attributes,
    CognitoIdp "AdminSetUserPassword" => users::admin_set_user_password,
    CognitoIdp "AdminResetUserPassword" => users::admin_reset_user_password,
    CognitoIdp "ListUsers" => users::list_users,
    CognitoIdp "InitiateAuth" => auth::initiate_auth,
    CognitoIdp "AdminInitiateAuth" => auth::admin_initiate_auth,
    CognitoIdp "RespondToAuthChallenge" => auth::respond_to_auth_challenge,
    CognitoIdp "AdminRespondToAuthChallenge" => auth::admin_respond_to_auth_challenge,
    CognitoIdp "GetUser" => self_service::get_user,
    CognitoIdp "GlobalSignOut" => self_service::global_sign_out,
    CognitoIdp "AdminUserGlobalSignOut" => self_service::admin_user_global_sign_out,
    CognitoIdp "RevokeToken" => self_service::revoke_token,
    CognitoIdp "ChangePassword" => self_service::change_password,
    CognitoIdp "DeleteUser" => self_service::delete_user,
    CognitoIdp "ConfirmDevice" => devices::confirm_device,
    CognitoIdp "GetDevice" => devices::get_device,
    CognitoIdp "ListDevices" => devices::list_devices,
    CognitoIdp "ForgetDevice" => devices::forget_device,
    CognitoIdp "UpdateDeviceStatus" => devices::update_device_status,
    CognitoIdp "AdminGetDevice" => devices::admin_get_device,
    CognitoIdp "AdminListDevices" => devices::admin_list_devices,
    CognitoIdp "AdminForgetDevice" => devices::admin_forget_device,
    CognitoIdp "AdminUpdateDeviceStatus" => devices::admin_update_device_status,
    CognitoIdp "AssociateSoftwareToken" => mfa::associate_software_token,
    CognitoIdp "VerifySoftwareToken" => mfa::verify_software_token,
    CognitoIdp "SetUserMFAPreference" => mfa::set_user_mfa_preference,
    CognitoIdp "AdminSetUserMFAPreference" => mfa::admin_set_user_mfa_preference,
    CognitoIdp "GetUserAuthFactors" => mfa::get_user_auth_factors,
    CognitoIdp "AdminGetUserAuthFactors" => mfa::admin_get_user_auth_factors,
    CognitoIdp "SetUserSettings" => mfa::set_user_settings,
    CognitoIdp "AdminSetUserSettings" => mfa::admin_set_user_settings,
    CognitoIdp "UpdateUserAttributes" => self_service::update_user_attributes,
    CognitoIdp "DeleteUserAttributes" => self_service::delete_user_attributes,
    CognitoIdp "GetUserAttributeVerificationCode" => self_service::get_user_attribute_verification_code,
    CognitoIdp "VerifyUserAttribute" => self_service::verify_user_attribute,
    CognitoIdp "GetTokensFromRefreshToken" => self_service::get_tokens_from_refresh_token,
    CognitoIdp "CreateGroup" => groups::create_group,
    CognitoIdp "GetGroup" => groups::get_group,
    CognitoIdp "UpdateGroup" => groups::update_group,
    CognitoIdp "DeleteGroup" => groups::delete_group,
    CognitoIdp "ListGroups" => groups::list_groups,
    CognitoIdp "AdminAddUserToGroup" => groups::admin_add_user_to_group,
    CognitoIdp "AdminRemoveUserFromGroup" => groups::admin_remove_user_from_group,
    CognitoIdp "AdminListGroupsForUser" => groups::admin_list_groups_for_user,
    CognitoIdp "ListUsersInGroup" => groups::list_users_in_group,
    CognitoIdp "CreateUserImportJob" => import_jobs::create_user_import_job,
    CognitoIdp "DescribeUserImportJob" => import_jobs::describe_user_import_job,
    CognitoIdp "ListUserImportJobs" => import_jobs::list_user_import_jobs,
    CognitoIdp "StartUserImportJob" => import_jobs::start_user_import_job,
    CognitoIdp "StopUserImportJob" => import_jobs::stop_user_import_job,
    CognitoIdp "TagResource" => tags::tag_resource,
    CognitoIdp "UntagResource" => tags::untag_resource,
    CognitoIdp "ListTagsForResource" => tags::list_tags_for_resource,
    CognitoIdentity "CreateIdentityPool" => identity_pools::create_identity_pool,
    CognitoIdentity "DescribeIdentityPool" => identity_pools::describe_identity_pool,
    CognitoIdentity "UpdateIdentityPool" => identity_pools::update_identity_pool,
    CognitoIdentity "DeleteIdentityPool" => identity_pools::delete_identity_pool,
    CognitoIdentity "ListIdentityPools" => identity_pools::list_identity_pools,
    CognitoIdentity "TagResource" => identity_pools::tag_resource,
    CognitoIdentity "UntagResource" => identity_pools::untag_resource,
    CognitoIdentity "ListTagsForResource" => identity_pools::list_tags_for_resource,
}

pub fn is_implemented(op: &Operation) -> bool {
    IMPLEMENTED.iter().any(|(service, name)| *service == op.service && *name == op.name)
}

pub fn not_implemented(op: &Operation) -> ApiError {
    ApiError::protocol(
        ProtocolCode::NotImplemented,
        format!("Cognate does not implement {} {} yet. See docs/COMPATIBILITY.md.", op.service.signing_name(), op.name),
    )
}

async fn invoke<I, O, F, Fut>(ctx: Ctx, op: &'static Operation, body: Value, handler: F) -> ApiResult<Value>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(Ctx, I) -> Fut,
    Fut: Future<Output = ApiResult<O>>,
{
    let input: I =
        serde_json::from_value(body).map_err(|e| ApiError::protocol(ProtocolCode::Serialization, e.to_string()))?;
    let request_id = ctx.request_id.clone();
    if let crate::state::Caller::Iam { access_key_id } = &ctx.caller {
        tracing::debug!(request_id, access_key_id, op = op.name, "signed call");
    }
    let output = handler(ctx, input).await;
    if let Err(err) = &output {
        if matches!(err.code, Code::Modelled(c) if c.is_fault()) {
            tracing::error!(request_id, op = op.name, "operation failed with a server fault");
        }
        // An error the model does not list for this operation would surprise typed SDK
        // clients; debug builds (and so every test run) refuse to answer with one.
        debug_assert!(
            err.is_generic()
                || matches!(err.code, Code::Modelled(c) if op.errors.contains(&c) || documented_extra(op, c)),
            "{} answered {} which its model does not list",
            op.name,
            err.type_name()
        );
    }
    match serde_json::to_value(output?).map_err(ApiError::internal)? {
        Value::Null => Ok(Value::Object(Default::default())),
        value => Ok(value),
    }
}

/// Errors AWS documents for an operation although its model omits them.
fn documented_extra(op: &Operation, code: cognate_api::ErrorCode) -> bool {
    // AdminCreateUser: "If this parameter is set to False, the API throws an
    // AliasExistsException error if the alias already exists." (ForceAliasCreation)
    op.name == "AdminCreateUser" && code == cognate_api::ErrorCode::AliasExistsException
}

#[cfg(test)]
fn input_type_name<I, O, F, Fut>(_: &F) -> &'static str
where
    F: FnOnce(Ctx, I) -> Fut,
    Fut: Future<Output = ApiResult<O>>,
{
    std::any::type_name::<I>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implementation_decodes_its_models_input_shape() {
        for (service, name, rust_type) in input_types() {
            let op = Operation::find(service, name).unwrap_or_else(|| panic!("{name} is not in the model"));
            let expected = format!("::{}", op.input_shape);
            assert!(rust_type.ends_with(&expected), "{name} decodes {rust_type}, the model says {}", op.input_shape);
            let module = match service {
                Service::CognitoIdp => "::idp::",
                Service::CognitoIdentity => "::identity::",
                Service::CognitoSync => "::sync::",
            };
            assert!(rust_type.contains(module), "{name} decodes {rust_type} from another service");
        }
    }

    #[test]
    fn compatibility_doc_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/COMPATIBILITY.md");
        let expected = crate::compat::render();
        if std::env::var_os("COGNATE_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).expect("write docs/COMPATIBILITY.md");
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/COMPATIBILITY.md is stale: run `COGNATE_UPDATE_DOCS=1 cargo test -p cognate-server compatibility_doc_is_current`"
        );
    }
}
