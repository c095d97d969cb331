//! The operations Cognate implements. Adding one is a line in `operations!` below plus an
//! `async fn(Ctx, <Input>) -> ApiResult<<Output>>` in the area file; the dispatcher, the
//! not-implemented answer for everything else and `docs/COMPATIBILITY.md` follow from the list.

mod auth;
mod devices;
pub mod groups;
pub mod identity_pools;
pub mod identity_providers;
pub mod import_jobs;
mod managed_login;
pub mod mfa;
mod mfa_config;
pub mod pool_clients;
pub mod resource_servers;
mod self_service;
pub mod sign_up;
mod sync;
mod tags;
pub mod user_pools;
pub mod users;

use std::future::Future;

use cognate_api::{Operation, Service};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use cognate_core::context::{Ctx, Principal, PrincipalKind};
use cognate_core::error::{ApiError, ApiResult, Code, ProtocolCode};
use cognate_core::ratelimit::Quota;

/// One line per implemented operation: service and name, the handler, the kinds of caller it
/// accepts, and the Cognito quota category its requests count against.
macro_rules! operations {
    ($($service:ident $name:literal => $handler:path, [$($accepts:ident),+], $quota:ident,)*) => {
        /// What `operations!` declares about one implemented operation.
        pub struct Declared {
            pub service: Service,
            pub name: &'static str,
            pub accepts: &'static [PrincipalKind],
            pub quota: Quota,
        }

        /// Every implemented operation, in the order of the list.
        pub static IMPLEMENTED: &[Declared] = &[$(Declared {
            service: Service::$service,
            name: $name,
            accepts: &[$(PrincipalKind::$accepts),+],
            quota: Quota::$quota,
        }),*];

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
    CognitoIdp "CreateUserPool" => user_pools::create_user_pool,                                         [Iam], UserPoolUpdate,
    CognitoIdp "DescribeUserPool" => user_pools::describe_user_pool,                                     [Iam], UserPoolRead,
    CognitoIdp "UpdateUserPool" => user_pools::update_user_pool,                                         [Iam], UserPoolUpdate,
    CognitoIdp "DeleteUserPool" => user_pools::delete_user_pool,                                         [Iam], UserPoolUpdate,
    CognitoIdp "ListUserPools" => user_pools::list_user_pools,                                           [Iam], UserPoolRead,
    CognitoIdp "AddCustomAttributes" => user_pools::add_custom_attributes,                               [Iam], UserPoolUpdate,
    CognitoIdp "GetCSVHeader" => user_pools::get_csv_header,                                             [Iam], UserPoolResourceRead,
    CognitoIdp "GetUserPoolMfaConfig" => mfa_config::get_user_pool_mfa_config,                           [Iam], UserPoolRead,
    CognitoIdp "SetUserPoolMfaConfig" => mfa_config::set_user_pool_mfa_config,                           [Iam], UserPoolUpdate,
    CognitoIdp "CreateUserPoolClient" => pool_clients::create_user_pool_client,                          [Iam], UserPoolClientUpdate,
    CognitoIdp "DescribeUserPoolClient" => pool_clients::describe_user_pool_client,                      [Iam], UserPoolClientRead,
    CognitoIdp "UpdateUserPoolClient" => pool_clients::update_user_pool_client,                          [Iam], UserPoolClientUpdate,
    CognitoIdp "DeleteUserPoolClient" => pool_clients::delete_user_pool_client,                          [Iam], UserPoolClientUpdate,
    CognitoIdp "ListUserPoolClients" => pool_clients::list_user_pool_clients,                            [Iam], UserPoolClientRead,
    CognitoIdp "AddUserPoolClientSecret" => pool_clients::add_user_pool_client_secret,                   [Iam], UserPoolClientUpdate,
    CognitoIdp "ListUserPoolClientSecrets" => pool_clients::list_user_pool_client_secrets,               [Iam], UserPoolClientRead,
    CognitoIdp "DeleteUserPoolClientSecret" => pool_clients::delete_user_pool_client_secret,             [Iam], UserPoolClientUpdate,
    CognitoIdp "SignUp" => sign_up::sign_up,                                                             [AppClient], UserCreation,
    CognitoIdp "ConfirmSignUp" => sign_up::confirm_sign_up,                                              [AppClient], UserCreation,
    CognitoIdp "ResendConfirmationCode" => sign_up::resend_confirmation_code,                            [AppClient], UserUpdate,
    CognitoIdp "ForgotPassword" => sign_up::forgot_password,                                             [AppClient], UserAccountRecovery,
    CognitoIdp "ConfirmForgotPassword" => sign_up::confirm_forgot_password,                              [AppClient], UserAccountRecovery,
    CognitoIdp "AdminCreateUser" => users::admin_create_user,                                            [Iam], UserCreation,
    CognitoIdp "AdminGetUser" => users::admin_get_user,                                                  [Iam], UserRead,
    CognitoIdp "AdminDeleteUser" => users::admin_delete_user,                                            [Iam], UserUpdate,
    CognitoIdp "AdminDisableUser" => users::admin_disable_user,                                          [Iam], UserUpdate,
    CognitoIdp "AdminEnableUser" => users::admin_enable_user,                                            [Iam], UserUpdate,
    CognitoIdp "AdminConfirmSignUp" => users::admin_confirm_sign_up,                                     [Iam], UserCreation,
    CognitoIdp "AdminUpdateUserAttributes" => users::admin_update_user_attributes,                       [Iam], UserUpdate,
    CognitoIdp "AdminDeleteUserAttributes" => users::admin_delete_user_attributes,                       [Iam], UserUpdate,
    CognitoIdp "AdminSetUserPassword" => users::admin_set_user_password,                                 [Iam], UserAccountRecovery,
    CognitoIdp "AdminResetUserPassword" => users::admin_reset_user_password,                             [Iam], UserAccountRecovery,
    CognitoIdp "ListUsers" => users::list_users,                                                         [Iam], UserList,
    CognitoIdp "InitiateAuth" => auth::initiate_auth,                                                    [AppClient], UserAuthentication,
    CognitoIdp "AdminInitiateAuth" => auth::admin_initiate_auth,                                         [Iam], UserAuthentication,
    CognitoIdp "RespondToAuthChallenge" => auth::respond_to_auth_challenge,                              [AppClient], UserAuthenticationChallenge,
    CognitoIdp "AdminRespondToAuthChallenge" => auth::admin_respond_to_auth_challenge,                   [Iam], UserAuthenticationChallenge,
    CognitoIdp "GetUser" => self_service::get_user,                                                      [AccessToken], UserRead,
    CognitoIdp "GlobalSignOut" => self_service::global_sign_out,                                         [AccessToken], UserUpdate,
    CognitoIdp "AdminUserGlobalSignOut" => self_service::admin_user_global_sign_out,                     [Iam], UserUpdate,
    CognitoIdp "RevokeToken" => self_service::revoke_token,                                              [AppClient], UserToken,
    CognitoIdp "ChangePassword" => self_service::change_password,                                        [AccessToken], UserAccountRecovery,
    CognitoIdp "DeleteUser" => self_service::delete_user,                                                [AccessToken], UserUpdate,
    CognitoIdp "ConfirmDevice" => devices::confirm_device,                                               [AccessToken], UserResourceUpdate,
    CognitoIdp "GetDevice" => devices::get_device,                                                       [AccessToken], UserResourceRead,
    CognitoIdp "ListDevices" => devices::list_devices,                                                   [AccessToken], UserResourceRead,
    CognitoIdp "ForgetDevice" => devices::forget_device,                                                 [AccessToken], UserResourceUpdate,
    CognitoIdp "UpdateDeviceStatus" => devices::update_device_status,                                    [AccessToken], UserResourceUpdate,
    CognitoIdp "AdminGetDevice" => devices::admin_get_device,                                            [Iam], UserResourceRead,
    CognitoIdp "AdminListDevices" => devices::admin_list_devices,                                        [Iam], UserResourceRead,
    CognitoIdp "AdminForgetDevice" => devices::admin_forget_device,                                      [Iam], UserResourceUpdate,
    CognitoIdp "AdminUpdateDeviceStatus" => devices::admin_update_device_status,                         [Iam], UserResourceUpdate,
    CognitoIdp "AssociateSoftwareToken" => mfa::associate_software_token,                                [AccessToken, Anonymous], UserUpdate,
    CognitoIdp "VerifySoftwareToken" => mfa::verify_software_token,                                      [AccessToken, Anonymous], UserUpdate,
    CognitoIdp "SetUserMFAPreference" => mfa::set_user_mfa_preference,                                   [AccessToken], UserUpdate,
    CognitoIdp "AdminSetUserMFAPreference" => mfa::admin_set_user_mfa_preference,                        [Iam], UserUpdate,
    CognitoIdp "GetUserAuthFactors" => mfa::get_user_auth_factors,                                       [AccessToken], UserRead,
    CognitoIdp "AdminGetUserAuthFactors" => mfa::admin_get_user_auth_factors,                            [Iam], UserRead,
    CognitoIdp "SetUserSettings" => mfa::set_user_settings,                                              [AccessToken], UserUpdate,
    CognitoIdp "AdminSetUserSettings" => mfa::admin_set_user_settings,                                   [Iam], UserUpdate,
    CognitoIdp "UpdateUserAttributes" => self_service::update_user_attributes,                           [AccessToken], UserUpdate,
    CognitoIdp "DeleteUserAttributes" => self_service::delete_user_attributes,                           [AccessToken], UserUpdate,
    CognitoIdp "GetUserAttributeVerificationCode" => self_service::get_user_attribute_verification_code, [AccessToken], UserRead,
    CognitoIdp "VerifyUserAttribute" => self_service::verify_user_attribute,                             [AccessToken], UserUpdate,
    CognitoIdp "GetTokensFromRefreshToken" => self_service::get_tokens_from_refresh_token,               [AppClient], UserToken,
    CognitoIdp "CreateGroup" => groups::create_group,                                                    [Iam], UserPoolResourceUpdate,
    CognitoIdp "GetGroup" => groups::get_group,                                                          [Iam], UserPoolResourceRead,
    CognitoIdp "UpdateGroup" => groups::update_group,                                                    [Iam], UserPoolResourceUpdate,
    CognitoIdp "DeleteGroup" => groups::delete_group,                                                    [Iam], UserPoolResourceUpdate,
    CognitoIdp "ListGroups" => groups::list_groups,                                                      [Iam], UserPoolResourceRead,
    CognitoIdp "AdminAddUserToGroup" => groups::admin_add_user_to_group,                                 [Iam], UserResourceUpdate,
    CognitoIdp "AdminRemoveUserFromGroup" => groups::admin_remove_user_from_group,                       [Iam], UserResourceUpdate,
    CognitoIdp "AdminListGroupsForUser" => groups::admin_list_groups_for_user,                           [Iam], UserResourceRead,
    CognitoIdp "ListUsersInGroup" => groups::list_users_in_group,                                        [Iam], UserList,
    CognitoIdp "CreateUserImportJob" => import_jobs::create_user_import_job,                             [Iam], UserPoolResourceUpdate,
    CognitoIdp "DescribeUserImportJob" => import_jobs::describe_user_import_job,                         [Iam], UserPoolResourceRead,
    CognitoIdp "ListUserImportJobs" => import_jobs::list_user_import_jobs,                               [Iam], UserPoolResourceRead,
    CognitoIdp "StartUserImportJob" => import_jobs::start_user_import_job,                               [Iam], UserPoolResourceUpdate,
    CognitoIdp "StopUserImportJob" => import_jobs::stop_user_import_job,                                 [Iam], UserPoolResourceUpdate,
    CognitoIdp "CreateResourceServer" => resource_servers::create_resource_server,                       [Iam], UserPoolResourceUpdate,
    CognitoIdp "DescribeResourceServer" => resource_servers::describe_resource_server,                   [Iam], UserPoolResourceRead,
    CognitoIdp "UpdateResourceServer" => resource_servers::update_resource_server,                       [Iam], UserPoolResourceUpdate,
    CognitoIdp "DeleteResourceServer" => resource_servers::delete_resource_server,                       [Iam], UserPoolResourceUpdate,
    CognitoIdp "ListResourceServers" => resource_servers::list_resource_servers,                         [Iam], UserPoolResourceRead,
    CognitoIdp "GetClientToken" => resource_servers::get_client_token,                                   [Iam], UserToken,
    CognitoIdp "CreateUserPoolDomain" => resource_servers::create_user_pool_domain,                      [Iam], UserPoolResourceUpdate,
    CognitoIdp "DescribeUserPoolDomain" => resource_servers::describe_user_pool_domain,                  [Iam], UserPoolResourceRead,
    CognitoIdp "UpdateUserPoolDomain" => resource_servers::update_user_pool_domain,                      [Iam], UserPoolResourceUpdate,
    CognitoIdp "DeleteUserPoolDomain" => resource_servers::delete_user_pool_domain,                      [Iam], UserPoolResourceUpdate,
    CognitoIdp "CreateIdentityProvider" => identity_providers::create_identity_provider,                 [Iam], UserPoolResourceUpdate,
    CognitoIdp "DescribeIdentityProvider" => identity_providers::describe_identity_provider,             [Iam], UserPoolResourceRead,
    CognitoIdp "UpdateIdentityProvider" => identity_providers::update_identity_provider,                 [Iam], UserPoolResourceUpdate,
    CognitoIdp "DeleteIdentityProvider" => identity_providers::delete_identity_provider,                 [Iam], UserPoolResourceUpdate,
    CognitoIdp "ListIdentityProviders" => identity_providers::list_identity_providers,                   [Iam], UserPoolResourceRead,
    CognitoIdp "GetIdentityProviderByIdentifier" => identity_providers::get_identity_provider_by_identifier, [Iam], UserPoolResourceRead,
    CognitoIdp "GetSigningCertificate" => identity_providers::get_signing_certificate,                   [Iam], UserPoolResourceRead,
    CognitoIdp "AdminLinkProviderForUser" => identity_providers::admin_link_provider_for_user,           [Iam], UserFederation,
    CognitoIdp "AdminDisableProviderForUser" => identity_providers::admin_disable_provider_for_user,     [Iam], UserFederation,
    CognitoIdp "SetUICustomization" => resource_servers::set_ui_customization,                           [Iam], UserPoolResourceUpdate,
    CognitoIdp "GetUICustomization" => resource_servers::get_ui_customization,                           [Iam], UserPoolResourceRead,
    CognitoIdp "CreateManagedLoginBranding" => managed_login::create_managed_login_branding,             [Iam], UserPoolResourceUpdate,
    CognitoIdp "DescribeManagedLoginBranding" => managed_login::describe_managed_login_branding,         [Iam], UserPoolResourceRead,
    CognitoIdp "DescribeManagedLoginBrandingByClient" => managed_login::describe_managed_login_branding_by_client, [Iam], UserPoolResourceRead,
    CognitoIdp "UpdateManagedLoginBranding" => managed_login::update_managed_login_branding,             [Iam], UserPoolResourceUpdate,
    CognitoIdp "DeleteManagedLoginBranding" => managed_login::delete_managed_login_branding,             [Iam], UserPoolResourceUpdate,
    CognitoIdp "TagResource" => tags::tag_resource,                                                      [Iam], UserPoolResourceUpdate,
    CognitoIdp "UntagResource" => tags::untag_resource,                                                  [Iam], UserPoolResourceUpdate,
    CognitoIdp "ListTagsForResource" => tags::list_tags_for_resource,                                    [Iam], UserPoolResourceRead,
    CognitoIdentity "CreateIdentityPool" => identity_pools::create_identity_pool,                        [Iam], Unmetered,
    CognitoIdentity "DescribeIdentityPool" => identity_pools::describe_identity_pool,                    [Iam], Unmetered,
    CognitoIdentity "UpdateIdentityPool" => identity_pools::update_identity_pool,                        [Iam], Unmetered,
    CognitoIdentity "DeleteIdentityPool" => identity_pools::delete_identity_pool,                        [Iam], Unmetered,
    CognitoIdentity "ListIdentityPools" => identity_pools::list_identity_pools,                          [Iam], Unmetered,
    CognitoIdentity "TagResource" => identity_pools::tag_resource,                                       [Iam], Unmetered,
    CognitoIdentity "UntagResource" => identity_pools::untag_resource,                                   [Iam], Unmetered,
    CognitoIdentity "ListTagsForResource" => identity_pools::list_tags_for_resource,                     [Iam], Unmetered,
    CognitoIdentity "GetIdentityPoolRoles" => identity_pools::get_identity_pool_roles,                   [Iam], Unmetered,
    CognitoIdentity "SetIdentityPoolRoles" => identity_pools::set_identity_pool_roles,                   [Iam], Unmetered,
    CognitoIdentity "GetId" => identity_pools::get_id,                                                   [Anonymous], IdentityGetId,
    CognitoIdentity "GetCredentialsForIdentity" => identity_pools::get_credentials_for_identity,         [Anonymous], IdentityGetCredentialsForIdentity,
    CognitoIdentity "GetOpenIdToken" => identity_pools::get_open_id_token,                               [Anonymous], IdentityGetOpenIdToken,
    CognitoIdentity "DescribeIdentity" => identity_pools::describe_identity,                             [Iam], Unmetered,
    CognitoIdentity "ListIdentities" => identity_pools::list_identities,                                 [Iam], Unmetered,
    CognitoIdentity "DeleteIdentities" => identity_pools::delete_identities,                             [Iam], Unmetered,
    CognitoIdentity "UnlinkIdentity" => identity_pools::unlink_identity,                                 [Anonymous], Unmetered,
    CognitoIdentity "GetOpenIdTokenForDeveloperIdentity" => identity_pools::get_open_id_token_for_developer_identity, [Iam], IdentityGetOpenIdTokenForDeveloperIdentity,
    CognitoIdentity "LookupDeveloperIdentity" => identity_pools::lookup_developer_identity,              [Iam], Unmetered,
    CognitoIdentity "MergeDeveloperIdentities" => identity_pools::merge_developer_identities,            [Iam], Unmetered,
    CognitoIdentity "UnlinkDeveloperIdentity" => identity_pools::unlink_developer_identity,              [Iam], Unmetered,
    CognitoIdentity "SetPrincipalTagAttributeMap" => identity_pools::set_principal_tag_attribute_map,    [Iam], Unmetered,
    CognitoIdentity "GetPrincipalTagAttributeMap" => identity_pools::get_principal_tag_attribute_map,    [Iam], Unmetered,
    CognitoSync "ListDatasets" => sync::list_datasets,                                                   [Iam, Identity], Unmetered,
    CognitoSync "DescribeDataset" => sync::describe_dataset,                                             [Iam, Identity], Unmetered,
    CognitoSync "DeleteDataset" => sync::delete_dataset,                                                 [Iam, Identity], Unmetered,
    CognitoSync "ListRecords" => sync::list_records,                                                     [Iam, Identity], Unmetered,
    CognitoSync "UpdateRecords" => sync::update_records,                                                 [Iam, Identity], Unmetered,
    CognitoSync "DescribeIdentityUsage" => sync::describe_identity_usage,                                [Iam, Identity], Unmetered,
    CognitoSync "DescribeIdentityPoolUsage" => sync::describe_identity_pool_usage,                       [Iam], Unmetered,
    CognitoSync "ListIdentityPoolUsage" => sync::list_identity_pool_usage,                               [Iam], Unmetered,
    CognitoSync "RegisterDevice" => sync::register_device,                                               [Iam, Identity], Unmetered,
    CognitoSync "GetIdentityPoolConfiguration" => sync::get_identity_pool_configuration,                 [Iam], Unmetered,
    CognitoSync "SetIdentityPoolConfiguration" => sync::set_identity_pool_configuration,                 [Iam], Unmetered,
    CognitoSync "GetCognitoEvents" => sync::get_cognito_events,                                          [Iam], Unmetered,
    CognitoSync "SetCognitoEvents" => sync::set_cognito_events,                                          [Iam], Unmetered,
    CognitoSync "SubscribeToDataset" => sync::subscribe_to_dataset,                                      [Iam, Identity], Unmetered,
    CognitoSync "UnsubscribeFromDataset" => sync::unsubscribe_from_dataset,                              [Iam, Identity], Unmetered,
    CognitoSync "BulkPublish" => sync::bulk_publish,                                                     [Iam], Unmetered,
    CognitoSync "GetBulkPublishDetails" => sync::get_bulk_publish_details,                               [Iam], Unmetered,
}

/// The declaration of an implemented operation (None: not implemented).
pub fn declared(op: &Operation) -> Option<&'static Declared> {
    IMPLEMENTED.iter().find(|d| d.service == op.service && d.name == op.name)
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
    if let Principal::Iam { access_key_id } | Principal::Identity { access_key_id, .. } = &ctx.principal {
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
    fn declared_callers_match_the_models_signing() {
        for declared in IMPLEMENTED {
            let op = Operation::find(declared.service, declared.name).expect("in the model");
            let signed_kinds = [PrincipalKind::Iam, PrincipalKind::Identity];
            for kind in declared.accepts {
                assert_eq!(op.signed, signed_kinds.contains(kind), "{}: {kind:?} vs signed={}", op.name, op.signed);
            }
        }
    }

    #[test]
    fn quota_categories_are_cognitos() {
        let quota = |name: &str| {
            let op = Operation::find(Service::CognitoIdp, name).expect("in the model");
            declared(op).expect("implemented").quota
        };
        assert_eq!(quota("InitiateAuth"), Quota::UserAuthentication);
        assert_eq!(quota("RespondToAuthChallenge"), Quota::UserAuthenticationChallenge);
        assert_eq!(quota("SignUp"), Quota::UserCreation);
        assert_eq!(quota("ListUsers"), Quota::UserList);
        assert_eq!(quota("AdminUpdateUserAttributes"), Quota::UserUpdate);
        assert_eq!(quota("GlobalSignOut"), Quota::UserUpdate);
        assert_eq!(quota("CreateGroup"), Quota::UserPoolResourceUpdate);
        assert_eq!(quota("GetGroup"), Quota::UserPoolResourceRead);
        assert_eq!(quota("DescribeUserPoolClient"), Quota::UserPoolClientRead);
        let identity_quota = |name: &str| {
            declared(Operation::find(Service::CognitoIdentity, name).expect("in the model")).expect("implemented").quota
        };
        assert_eq!(identity_quota("GetId"), Quota::IdentityGetId);
        assert_eq!(identity_quota("GetCredentialsForIdentity"), Quota::IdentityGetCredentialsForIdentity);
        // Every user-pool operation counts against a category, as every one does in Cognito.
        for declared in IMPLEMENTED.iter().filter(|d| d.service == Service::CognitoIdp) {
            assert_ne!(declared.quota, Quota::Unmetered, "{}", declared.name);
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
