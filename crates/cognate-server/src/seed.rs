//! Seed files: a whole test environment (user pools with fixed ids, app clients with fixed
//! ids and secrets, groups, users with passwords and attributes, identity pools) in one JSON
//! file, applied at start by `cognate serve --seed FILE` and written by `cognate export`.
//!
//! Applying is idempotent: what exists (by id, name or username) is left as it is and only
//! what is missing is created, through the same operations the API runs, so a seed is
//! validated exactly like API calls. Re-applying an export therefore changes nothing.

use std::collections::BTreeMap;

use cognate_api::identity::{CreateIdentityPoolInput, IdentityPool};
use cognate_api::idp::{
    AdminAddUserToGroupRequest, AdminCreateUserRequest, AdminSetUserPasswordRequest, AttributeType, CreateGroupRequest,
    CreateUserPoolClientRequest, CreateUserPoolRequest, MessageActionType, UserPoolClientType, UserPoolType,
};
use cognate_api::Sensitive;
use serde::{Deserialize, Serialize};

use crate::ops::{groups, identity_pools, pool_clients, user_pools, users as user_ops};
use cognate_core::context::Ctx;
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::{decode_doc, PoolDoc, CUSTOM_ID_TAG};
use cognate_core::users::User;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SeedFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_pools: Vec<SeedPool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_pools: Vec<IdentityPool>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeedPool {
    pub id: String,
    /// CreateUserPool's parameters (PoolName, Policies, Schema, ...).
    #[serde(flatten)]
    pub config: CreateUserPoolRequest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<SeedClient>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<SeedGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<SeedUser>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeedClient {
    pub client_id: String,
    /// CreateUserPoolClient's parameters (ClientName, ClientSecret, ExplicitAuthFlows, ...);
    /// UserPoolId is taken from the pool.
    #[serde(flatten)]
    pub config: CreateUserPoolClientRequest,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SeedGroup {
    pub group_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precedence: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SeedUser {
    pub username: String,
    /// A permanent password (the user is CONFIRMED). Without one the user gets a generated
    /// temporary password and is FORCE_CHANGE_PASSWORD. Exports never contain passwords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default = "enabled", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Parses a seed file. Entries that flatten an AWS request (pools, clients) cannot use
/// serde's unknown-field check, so their keys are checked against the model's shapes: a
/// misspelled key is an error, never silently dropped.
pub fn parse(text: &str) -> Result<SeedFile, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let pool_keys = model_members("CreateUserPoolRequest", &["Id", "Clients", "Groups", "Users"]);
    let client_keys = model_members("CreateUserPoolClientRequest", &["ClientId"]);
    for (i, pool) in value.get("UserPools").and_then(|p| p.as_array()).into_iter().flatten().enumerate() {
        check_keys(pool, &pool_keys, &format!("UserPools[{i}]"))?;
        for (j, client) in pool.get("Clients").and_then(|c| c.as_array()).into_iter().flatten().enumerate() {
            check_keys(client, &client_keys, &format!("UserPools[{i}].Clients[{j}]"))?;
        }
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn model_members(shape: &str, extra: &[&str]) -> Vec<String> {
    use cognate_api::validate::Kind;
    let mut names: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    if let Some(found) = cognate_api::Service::CognitoIdp.shapes().iter().find(|s| s.name == shape) {
        if let Kind::Structure(members) = &found.kind {
            names.extend(members.iter().map(|m| m.name.to_owned()));
        }
    }
    names
}

fn check_keys(entry: &serde_json::Value, allowed: &[String], place: &str) -> Result<(), String> {
    for key in entry.as_object().into_iter().flat_map(|o| o.keys()) {
        if !allowed.iter().any(|a| a == key) {
            return Err(format!("unknown key `{key}` in {place}"));
        }
    }
    Ok(())
}

/// Far beyond any pool's size: exports read whole tables.
const EXPORT_LIMIT: usize = 100_000_000;

/// What applying a seed did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: usize,
    pub existing: usize,
}

fn with_context(what: &str, err: ApiError) -> ApiError {
    ApiError { code: err.code, message: format!("seed: {what}: {}", err.message) }
}

pub async fn apply(ctx: &Ctx, seed: SeedFile) -> ApiResult<Applied> {
    let mut applied = Applied::default();
    for pool in seed.user_pools {
        apply_pool(ctx, pool, &mut applied).await?;
    }
    for identity_pool in seed.identity_pools {
        let id = identity_pool.identity_pool_id.clone();
        let lookup = id.clone();
        if ctx.store(move |s| s.get_identity_pool(&lookup)).await?.is_some() {
            applied.existing += 1;
            continue;
        }
        let mut tags = identity_pool.identity_pool_tags.clone().unwrap_or_default();
        tags.insert(CUSTOM_ID_TAG.into(), id.clone());
        let input = CreateIdentityPoolInput {
            identity_pool_name: identity_pool.identity_pool_name,
            allow_unauthenticated_identities: identity_pool.allow_unauthenticated_identities,
            allow_classic_flow: identity_pool.allow_classic_flow,
            supported_login_providers: identity_pool.supported_login_providers,
            developer_provider_name: identity_pool.developer_provider_name,
            open_id_connect_provider_arns: identity_pool.open_id_connect_provider_arns,
            cognito_identity_providers: identity_pool.cognito_identity_providers,
            saml_provider_arns: identity_pool.saml_provider_arns,
            identity_pool_tags: Some(tags),
        };
        identity_pools::create_identity_pool(ctx.clone(), input)
            .await
            .map_err(|e| with_context(&format!("identity pool {id}"), e))?;
        applied.created += 1;
    }
    Ok(applied)
}

async fn apply_pool(ctx: &Ctx, pool: SeedPool, applied: &mut Applied) -> ApiResult<()> {
    let id = pool.id.clone();
    let lookup = id.clone();
    if ctx.store(move |s| s.get_user_pool(&lookup)).await?.is_none() {
        let mut config = pool.config;
        config.user_pool_tags.get_or_insert_with(BTreeMap::new).insert(CUSTOM_ID_TAG.into(), id.clone());
        user_pools::create_user_pool(ctx.clone(), config).await.map_err(|e| with_context(&format!("pool {id}"), e))?;
        applied.created += 1;
    } else {
        applied.existing += 1;
    }
    for client in pool.clients {
        let client_id = client.client_id.clone();
        let (p, c) = (id.clone(), client_id.clone());
        if ctx.store(move |s| s.get_app_client(&p, &c)).await?.is_some() {
            applied.existing += 1;
            continue;
        }
        let mut config = client.config;
        config.user_pool_id = id.clone();
        if config.client_secret.is_some() {
            config.generate_secret = Some(true);
        }
        pool_clients::create_client_with_id(ctx.clone(), config, Some(client_id.clone()))
            .await
            .map_err(|e| with_context(&format!("client {client_id}"), e))?;
        applied.created += 1;
    }
    for group in pool.groups {
        let (p, g) = (id.clone(), group.group_name.clone());
        if ctx.store(move |s| s.get_group(&p, &g)).await?.is_some() {
            applied.existing += 1;
            continue;
        }
        let name = group.group_name.clone();
        let input = CreateGroupRequest {
            group_name: group.group_name,
            user_pool_id: id.clone(),
            description: group.description,
            precedence: group.precedence,
            role_arn: group.role_arn,
        };
        groups::create_group(ctx.clone(), input).await.map_err(|e| with_context(&format!("group {name}"), e))?;
        applied.created += 1;
    }
    for user in pool.users {
        apply_user(ctx, &id, user, applied).await?;
    }
    Ok(())
}

async fn apply_user(ctx: &Ctx, pool_id: &str, user: SeedUser, applied: &mut Applied) -> ApiResult<()> {
    let (_, doc) = cognate_core::records::load_pool(ctx, pool_id).await?;
    let what = format!("user {}", user.username);
    if cognate_core::users::find_user(ctx, pool_id, &doc.pool, &user.username).await?.is_some() {
        applied.existing += 1;
    } else {
        let attributes = user
            .attributes
            .iter()
            .filter(|(name, _)| name.as_str() != "sub")
            .map(|(name, value)| AttributeType { name: name.clone(), value: Some(Sensitive(value.clone())) })
            .collect();
        let input = AdminCreateUserRequest {
            user_pool_id: pool_id.to_owned(),
            username: Sensitive(user.username.clone()),
            user_attributes: Some(attributes),
            message_action: Some(MessageActionType::Suppress),
            ..Default::default()
        };
        user_ops::admin_create_user(ctx.clone(), input).await.map_err(|e| with_context(&what, e))?;
        if let Some(password) = &user.password {
            let input = AdminSetUserPasswordRequest {
                user_pool_id: pool_id.to_owned(),
                username: Sensitive(user.username.clone()),
                password: Sensitive(password.clone()),
                permanent: Some(true),
            };
            user_ops::admin_set_user_password(ctx.clone(), input).await.map_err(|e| with_context(&what, e))?;
        }
        if !user.enabled {
            let input = cognate_api::idp::AdminDisableUserRequest {
                user_pool_id: pool_id.to_owned(),
                username: Sensitive(user.username.clone()),
            };
            user_ops::admin_disable_user(ctx.clone(), input).await.map_err(|e| with_context(&what, e))?;
        }
        applied.created += 1;
    }
    for group in &user.groups {
        let input = AdminAddUserToGroupRequest {
            user_pool_id: pool_id.to_owned(),
            username: Sensitive(user.username.clone()),
            group_name: group.clone(),
        };
        groups::admin_add_user_to_group(ctx.clone(), input)
            .await
            .map_err(|e| with_context(&format!("{what}, group {group}"), e))?;
    }
    Ok(())
}

/// The current state as a seed file. Client secrets only with `with_secrets`; user
/// passwords never (only their verifiers exist).
pub async fn export(ctx: &Ctx, with_secrets: bool) -> ApiResult<SeedFile> {
    let mut seed = SeedFile::default();
    let pools = ctx.store(|s| s.list_user_pools(None, EXPORT_LIMIT)).await?;
    for record in pools {
        let doc: PoolDoc = decode_doc(&record.doc)?;
        seed.user_pools.push(export_pool(ctx, &record.id, doc.pool, with_secrets).await?);
    }
    for record in ctx.store(|s| s.list_identity_pools(None, EXPORT_LIMIT)).await? {
        seed.identity_pools.push(decode_doc(&record.doc)?);
    }
    Ok(seed)
}

async fn export_pool(ctx: &Ctx, pool_id: &str, pool: UserPoolType, with_secrets: bool) -> ApiResult<SeedPool> {
    let custom = |name: &str| name.starts_with("custom:") || name.starts_with("dev:custom:");
    let config = CreateUserPoolRequest {
        pool_name: pool.name.clone().unwrap_or_default(),
        policies: pool.policies.clone(),
        deletion_protection: pool.deletion_protection.clone(),
        lambda_config: pool.lambda_config.clone(),
        auto_verified_attributes: pool.auto_verified_attributes.clone(),
        alias_attributes: pool.alias_attributes.clone(),
        username_attributes: pool.username_attributes.clone(),
        verification_message_template: pool.verification_message_template.clone(),
        sms_authentication_message: pool.sms_authentication_message.clone(),
        mfa_configuration: pool.mfa_configuration.clone(),
        user_attribute_update_settings: pool.user_attribute_update_settings.clone(),
        device_configuration: pool.device_configuration.clone(),
        email_configuration: pool.email_configuration.clone(),
        sms_configuration: pool.sms_configuration.clone(),
        user_pool_tags: pool.user_pool_tags.clone().filter(|t| !t.is_empty()),
        admin_create_user_config: pool.admin_create_user_config.clone(),
        schema: Some(
            pool.schema_attributes
                .iter()
                .flatten()
                .filter(|a| a.name.as_deref().is_some_and(custom))
                .cloned()
                .map(|mut a| {
                    a.name = a.name.map(|n| n.rsplit(':').next().unwrap_or_default().to_owned());
                    a
                })
                .collect(),
        )
        .filter(|s: &Vec<_>| !s.is_empty()),
        user_pool_add_ons: pool.user_pool_add_ons.clone(),
        username_configuration: pool.username_configuration.clone(),
        account_recovery_setting: pool.account_recovery_setting.clone(),
        user_pool_tier: pool.user_pool_tier.clone(),
        ..Default::default()
    };
    let id = pool_id.to_owned();
    let clients = ctx.store(move |s| s.list_app_clients(&id, None, EXPORT_LIMIT)).await?;
    let mut seed_clients = Vec::new();
    for record in clients {
        let client: UserPoolClientType = decode_doc(&record.doc)?;
        let secret =
            if with_secrets { pool_clients::current_secret(ctx, pool_id, &record.client_id).await? } else { None };
        seed_clients.push(SeedClient {
            client_id: record.client_id.to_string(),
            config: CreateUserPoolClientRequest {
                user_pool_id: String::new(),
                client_name: client.client_name.unwrap_or_default(),
                client_secret: secret.map(Sensitive),
                refresh_token_validity: client.refresh_token_validity,
                access_token_validity: client.access_token_validity,
                id_token_validity: client.id_token_validity,
                token_validity_units: client.token_validity_units,
                read_attributes: client.read_attributes,
                write_attributes: client.write_attributes,
                explicit_auth_flows: client.explicit_auth_flows,
                supported_identity_providers: client.supported_identity_providers,
                callback_urls: client.callback_urls,
                logout_urls: client.logout_urls,
                default_redirect_uri: client.default_redirect_uri,
                allowed_oauth_flows: client.allowed_oauth_flows,
                allowed_oauth_scopes: client.allowed_oauth_scopes,
                allowed_oauth_flows_user_pool_client: client.allowed_oauth_flows_user_pool_client,
                prevent_user_existence_errors: client.prevent_user_existence_errors,
                enable_token_revocation: client.enable_token_revocation,
                auth_session_validity: client.auth_session_validity,
                refresh_token_rotation: client.refresh_token_rotation,
                ..Default::default()
            },
        });
    }
    let id = pool_id.to_owned();
    let group_records = ctx.store(move |s| s.list_groups(&id, None, EXPORT_LIMIT)).await?;
    let mut seed_groups = Vec::new();
    for record in &group_records {
        let group: cognate_api::idp::GroupType = decode_doc(&record.doc)?;
        seed_groups.push(SeedGroup {
            group_name: record.name.clone(),
            description: group.description,
            precedence: group.precedence,
            role_arn: group.role_arn,
        });
    }
    let id = pool_id.to_owned();
    let user_records = ctx.store(move |s| s.list_users(&id, None, EXPORT_LIMIT)).await?;
    let mut seed_users = Vec::new();
    for record in user_records {
        let (p, u) = (pool_id.to_owned(), record.username_key.clone());
        let memberships = ctx.store(move |s| s.list_groups_for_user(&p, &u, None, EXPORT_LIMIT)).await?;
        let user = User::from_record(record)?;
        let mut attributes = user.attributes.clone();
        attributes.remove("sub");
        // With email/phone as the username the stored username is the sub: sign-in (and a
        // re-applied seed) names the user by that attribute instead.
        let login = pool
            .username_attributes
            .iter()
            .flatten()
            .find_map(|a| user.attr(a.as_str()).map(str::to_owned))
            .unwrap_or_else(|| user.record.username.clone());
        seed_users.push(SeedUser {
            username: login,
            password: None,
            attributes,
            groups: memberships.into_iter().map(|g| g.name).collect(),
            enabled: user.record.enabled,
        });
    }
    Ok(SeedPool { id: pool_id.to_owned(), config, clients: seed_clients, groups: seed_groups, users: seed_users })
}
