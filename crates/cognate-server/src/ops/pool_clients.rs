//! App clients of a user pool, and their client secrets (sealed under the master key).

use cognate_api::idp::*;
use cognate_api::Sensitive;
use cognate_store::{AppClientRecord, ClientSecretRecord, StoreError};

use cognate_core::context::{timestamp, Ctx};
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;
use cognate_core::sealed::{self, Purpose};

const MAX_CLIENTS_PER_POOL: u64 = 1000;
/// Cognito keeps at most two secrets per client (rotation: add the new, then delete the old).
const MAX_SECRETS_PER_CLIENT: u64 = 2;
const STANDARD_SCOPES: &[&str] = &["phone", "email", "openid", "profile", "aws.cognito.signin.user.admin"];
const LEGACY_FLOWS: &[&str] = &["ADMIN_NO_SRP_AUTH", "CUSTOM_AUTH_FLOW_ONLY", "USER_PASSWORD_AUTH"];

fn client_not_found(client_id: &str) -> ApiError {
    ApiError::not_found(format!("User pool client {client_id} does not exist."))
}

/// The settings Create and Update share. Update, as AWS documents, resets what it omits.
#[derive(Clone, Default)]
struct ClientSettings {
    refresh_token_validity: Option<i32>,
    access_token_validity: Option<i32>,
    id_token_validity: Option<i32>,
    token_validity_units: Option<TokenValidityUnitsType>,
    read_attributes: Option<Vec<String>>,
    write_attributes: Option<Vec<String>>,
    explicit_auth_flows: Option<Vec<ExplicitAuthFlowsType>>,
    supported_identity_providers: Option<Vec<String>>,
    callback_urls: Option<Vec<String>>,
    logout_urls: Option<Vec<String>>,
    default_redirect_uri: Option<String>,
    allowed_oauth_flows: Option<Vec<OAuthFlowType>>,
    allowed_oauth_scopes: Option<Vec<String>>,
    allowed_oauth_flows_user_pool_client: Option<bool>,
    analytics_configuration: Option<AnalyticsConfigurationType>,
    prevent_user_existence_errors: Option<PreventUserExistenceErrorTypes>,
    enable_token_revocation: Option<bool>,
    enable_propagate_additional_user_context_data: Option<bool>,
    auth_session_validity: Option<i32>,
    refresh_token_rotation: Option<RefreshTokenRotationType>,
}

/// Both CreateUserPoolClient and UpdateUserPoolClient carry the same settings members.
macro_rules! client_settings {
    ($input:expr) => {
        ClientSettings {
            refresh_token_validity: $input.refresh_token_validity,
            access_token_validity: $input.access_token_validity,
            id_token_validity: $input.id_token_validity,
            token_validity_units: $input.token_validity_units,
            read_attributes: $input.read_attributes,
            write_attributes: $input.write_attributes,
            explicit_auth_flows: $input.explicit_auth_flows,
            supported_identity_providers: $input.supported_identity_providers,
            callback_urls: $input.callback_urls,
            logout_urls: $input.logout_urls,
            default_redirect_uri: $input.default_redirect_uri,
            allowed_oauth_flows: $input.allowed_oauth_flows,
            allowed_oauth_scopes: $input.allowed_oauth_scopes,
            allowed_oauth_flows_user_pool_client: $input.allowed_oauth_flows_user_pool_client,
            analytics_configuration: $input.analytics_configuration,
            prevent_user_existence_errors: $input.prevent_user_existence_errors,
            enable_token_revocation: $input.enable_token_revocation,
            enable_propagate_additional_user_context_data: $input.enable_propagate_additional_user_context_data,
            auth_session_validity: $input.auth_session_validity,
            refresh_token_rotation: $input.refresh_token_rotation,
        }
    };
}

/// Seconds in one unit of `unit` (Cognito's default units: minutes, minutes, days).
fn unit_seconds(unit: &TimeUnitsType) -> i64 {
    match unit {
        TimeUnitsType::Seconds => 1,
        TimeUnitsType::Minutes => 60,
        TimeUnitsType::Hours => 3600,
        _ => 86_400,
    }
}

/// Resolves a token lifetime in its unit, defaulting to `default_seconds`, within Cognito's range.
fn token_validity(
    what: &str,
    value: Option<i32>,
    unit: &TimeUnitsType,
    default_seconds: i64,
    range: (i64, i64),
) -> ApiResult<i32> {
    let per_unit = unit_seconds(unit);
    let value = match value {
        Some(v) => i64::from(v),
        None => (default_seconds / per_unit).max(1),
    };
    let seconds = value.saturating_mul(per_unit);
    if seconds < range.0 || seconds > range.1 {
        return Err(ApiError::invalid_parameter(format!(
            "{what} must be between {} and {} seconds; {value} {unit} is out of range.",
            range.0, range.1
        )));
    }
    i32::try_from(value).map_err(|_| ApiError::invalid_parameter(format!("{what} is too large.")))
}

fn is_allowed_redirect(url: &str) -> bool {
    if url.contains('#') {
        return false;
    }
    if let Some(rest) = url.strip_prefix("http://") {
        // Plain HTTP only for local development, as Cognito allows.
        let host = rest.split(['/', ':', '?']).next().unwrap_or_default();
        return host == "localhost" || host == "127.0.0.1";
    }
    // https and app-specific schemes (myapp://callback) are allowed.
    url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && !rest.is_empty()
    })
}

/// Checks and fills a client's settings the way Cognito does.
fn resolve_settings(
    doc: &PoolDoc,
    s: ClientSettings,
    has_secret: bool,
    client: &mut UserPoolClientType,
) -> ApiResult<()> {
    let mut units = s.token_validity_units.unwrap_or_default();
    let access_unit = units.access_token.get_or_insert(TimeUnitsType::Minutes).clone();
    let id_unit = units.id_token.get_or_insert(TimeUnitsType::Minutes).clone();
    let refresh_unit = units.refresh_token.get_or_insert(TimeUnitsType::Days).clone();
    client.access_token_validity =
        Some(token_validity("AccessTokenValidity", s.access_token_validity, &access_unit, 3600, (300, 86_400))?);
    client.id_token_validity =
        Some(token_validity("IdTokenValidity", s.id_token_validity, &id_unit, 3600, (300, 86_400))?);
    client.refresh_token_validity = Some(token_validity(
        "RefreshTokenValidity",
        s.refresh_token_validity,
        &refresh_unit,
        30 * 86_400,
        (3600, 3650 * 86_400),
    )?);
    client.token_validity_units = Some(units);

    let flows = s.explicit_auth_flows.unwrap_or_else(|| {
        vec![
            ExplicitAuthFlowsType::AllowRefreshTokenAuth,
            ExplicitAuthFlowsType::AllowCustomAuth,
            ExplicitAuthFlowsType::AllowUserSrpAuth,
        ]
    });
    let legacy = flows.iter().filter(|f| LEGACY_FLOWS.contains(&f.as_str())).count();
    if legacy > 0 && legacy < flows.len() {
        return Err(ApiError::invalid_parameter(
            "ExplicitAuthFlows must be either all legacy values (ADMIN_NO_SRP_AUTH, CUSTOM_AUTH_FLOW_ONLY, USER_PASSWORD_AUTH) or all ALLOW_ values, not a mix.",
        ));
    }
    client.explicit_auth_flows = Some(flows);

    let pool = &doc.pool;
    let schema: Vec<&SchemaAttributeType> = pool.schema_attributes.iter().flatten().collect();
    let known = |name: &str| schema.iter().any(|a| a.name.as_deref() == Some(name));
    if let Some(read) = &s.read_attributes {
        if read.iter().any(|a| !known(a)) {
            return Err(ApiError::invalid_parameter("Invalid read attributes specified while creating a client"));
        }
    }
    if let Some(write) = &s.write_attributes {
        let writable = |name: &str| {
            schema.iter().any(|a| a.name.as_deref() == Some(name) && a.mutable != Some(false))
                && !name.ends_with("_verified")
        };
        if write.iter().any(|a| !writable(a)) {
            return Err(ApiError::invalid_parameter("Invalid write attributes specified while creating a client"));
        }
    }
    client.read_attributes = s.read_attributes;
    client.write_attributes = s.write_attributes;

    for provider in s.supported_identity_providers.iter().flatten() {
        if provider != "COGNITO" && !cognate_core::identity_providers::exists(doc, provider) {
            let pool_id = pool.id.clone().unwrap_or_default();
            return Err(ApiError::invalid_parameter(format!(
                "The provider {provider} does not exist for User Pool {pool_id}"
            )));
        }
    }
    client.supported_identity_providers = s.supported_identity_providers;

    for url in s.callback_urls.iter().flatten().chain(s.logout_urls.iter().flatten()) {
        if !is_allowed_redirect(url) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid redirect URI {url}: use https (http only for localhost) and no fragment."
            )));
        }
    }
    if let Some(default) = &s.default_redirect_uri {
        if !s.callback_urls.iter().flatten().any(|u| u == default) {
            return Err(ApiError::invalid_parameter("DefaultRedirectURI must be one of the CallbackURLs."));
        }
    }
    let oauth_flows = s.allowed_oauth_flows.clone().unwrap_or_default();
    let has_client_credentials = oauth_flows.contains(&OAuthFlowType::ClientCredentials);
    if has_client_credentials && oauth_flows.len() > 1 {
        return Err(ApiError::new(
            cognate_api::ErrorCode::InvalidOAuthFlowException,
            "client_credentials flow can not be selected along with code flow or implicit flow.",
        ));
    }
    if has_client_credentials && !has_secret {
        return Err(ApiError::new(
            cognate_api::ErrorCode::InvalidOAuthFlowException,
            "client_credentials flow can not be selected if client does not have a client secret.",
        ));
    }
    for scope in s.allowed_oauth_scopes.iter().flatten() {
        if !STANDARD_SCOPES.contains(&scope.as_str()) && !cognate_core::resource_servers::scope_exists(doc, scope) {
            return Err(ApiError::new(
                cognate_api::ErrorCode::ScopeDoesNotExistException,
                format!("Invalid scope requested: {scope}"),
            ));
        }
    }
    let oauth_enabled = s.allowed_oauth_flows_user_pool_client.unwrap_or(false);
    if oauth_enabled && (oauth_flows.is_empty() || s.allowed_oauth_scopes.as_ref().is_none_or(Vec::is_empty)) {
        return Err(ApiError::invalid_parameter(
            "AllowedOAuthFlows and AllowedOAuthScopes are required if user pool client is allowed to use OAuth flows.",
        ));
    }
    let redirect_flows = oauth_flows.iter().any(|f| matches!(f, OAuthFlowType::Code | OAuthFlowType::Implicit));
    if oauth_enabled && redirect_flows && s.callback_urls.as_ref().is_none_or(Vec::is_empty) {
        return Err(ApiError::invalid_parameter("CallbackURLs are required for the code and implicit flows."));
    }
    client.callback_urls = s.callback_urls;
    client.logout_urls = s.logout_urls;
    client.default_redirect_uri = s.default_redirect_uri;
    client.allowed_oauth_flows = s.allowed_oauth_flows;
    client.allowed_oauth_scopes = s.allowed_oauth_scopes;
    client.allowed_oauth_flows_user_pool_client = Some(oauth_enabled);
    client.analytics_configuration = s.analytics_configuration;
    client.prevent_user_existence_errors =
        Some(s.prevent_user_existence_errors.unwrap_or(PreventUserExistenceErrorTypes::Legacy));
    client.enable_token_revocation = Some(s.enable_token_revocation.unwrap_or(true));
    client.enable_propagate_additional_user_context_data =
        Some(s.enable_propagate_additional_user_context_data.unwrap_or(false));
    client.auth_session_validity = Some(s.auth_session_validity.unwrap_or(3));
    client.refresh_token_rotation = s.refresh_token_rotation;
    Ok(())
}

async fn load_client(ctx: &Ctx, pool_id: &str, client_id: &str) -> ApiResult<(AppClientRecord, UserPoolClientType)> {
    let (pool, client) = (pool_id.to_owned(), client_id.to_owned());
    let found = ctx
        .store(move |s| {
            let pool_exists = s.get_user_pool(&pool)?.is_some();
            Ok((pool_exists, s.get_app_client(&pool, &client)?))
        })
        .await?;
    match found {
        (false, _) => Err(pool_not_found(pool_id)),
        (true, None) => Err(client_not_found(client_id)),
        (true, Some(record)) => {
            let client = decode_doc(&record.doc)?;
            Ok((record, client))
        }
    }
}

/// The secret Describe shows: the client's oldest active one.
pub(crate) async fn current_secret(ctx: &Ctx, pool_id: &str, client_id: &str) -> ApiResult<Option<String>> {
    let (pool, client) = (pool_id.to_owned(), client_id.to_owned());
    let secrets = ctx.store(move |s| s.list_client_secrets(&pool, &client)).await?;
    let Some(first) = secrets.first() else { return Ok(None) };
    let plain = sealed::open_bytes(ctx, Purpose::ClientSecret { pool_id, client_id }, &first.sealed_secret)?;
    String::from_utf8(plain).map(Some).map_err(ApiError::internal)
}

fn seal_secret(ctx: &Ctx, pool_id: &str, client_id: &str, secret: &str) -> ApiResult<ClientSecretRecord> {
    let sealed = sealed::seal_bytes(ctx, Purpose::ClientSecret { pool_id, client_id }, secret.as_bytes())?;
    Ok(ClientSecretRecord {
        pool_id: pool_id.to_owned(),
        client_id: client_id.to_owned(),
        secret_id: format!("{client_id}--{}", cognate_crypto::ids::random_string(b"0123456789abcdef", 16)),
        sealed_secret: sealed,
        created_ms: ctx.now_ms(),
    })
}

pub async fn create_user_pool_client(
    ctx: Ctx,
    input: CreateUserPoolClientRequest,
) -> ApiResult<CreateUserPoolClientResponse> {
    create_client_with_id(ctx, input, None).await
}

/// CreateUserPoolClient with an id chosen by a seed file (public clients name their app
/// client by id, so scripted environments need stable ones).
pub async fn create_client_with_id(
    ctx: Ctx,
    input: CreateUserPoolClientRequest,
    fixed_id: Option<String>,
) -> ApiResult<CreateUserPoolClientResponse> {
    let (_, doc) = load_pool(&ctx, &input.user_pool_id).await?;
    if let Some(id) = &fixed_id {
        let valid =
            !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_');
        let taken = {
            let lookup = id.clone();
            ctx.store(move |s| s.get_app_client_by_id(&lookup)).await?.is_some()
        };
        if !valid || taken {
            return Err(ApiError::invalid_parameter(format!("Client id {id} is invalid or already in use.")));
        }
    }
    let wants_secret = input.generate_secret.unwrap_or(false) || input.client_secret.is_some();
    if input.client_secret.is_some() && input.generate_secret == Some(false) {
        return Err(ApiError::invalid_parameter("ClientSecret can only be set when GenerateSecret is true."));
    }
    let client_id = fixed_id.unwrap_or_else(cognate_crypto::ids::app_client_id);
    let now_ms = ctx.now_ms();
    let mut client = UserPoolClientType {
        user_pool_id: Some(input.user_pool_id.clone()),
        client_name: Some(input.client_name.clone()),
        client_id: Some(Sensitive(client_id.clone())),
        creation_date: Some(timestamp(now_ms)),
        last_modified_date: Some(timestamp(now_ms)),
        ..Default::default()
    };
    let settings = client_settings!(input);
    resolve_settings(&doc, settings, wants_secret, &mut client)?;
    let secret = match (&input.client_secret, wants_secret) {
        (Some(custom), _) => Some(custom.expose().clone()),
        (None, true) => Some(cognate_crypto::ids::client_secret()),
        (None, false) => None,
    };
    let sealed = secret.as_deref().map(|s| seal_secret(&ctx, &input.user_pool_id, &client_id, s)).transpose()?;
    let record = AppClientRecord {
        pool_id: input.user_pool_id.clone().into(),
        client_id: client_id.clone().into(),
        name: input.client_name,
        created_ms: now_ms,
        modified_ms: now_ms,
        version: 1,
        doc: encode_doc(&client)?,
    };
    let pool_id = input.user_pool_id.clone();
    let inserted = ctx
        .store(move |s| {
            if s.count_app_clients(&pool_id)? >= MAX_CLIENTS_PER_POOL {
                return Ok(Err(StoreError::LimitExceeded));
            }
            Ok(s.insert_app_client(&record, sealed.as_ref()))
        })
        .await?;
    match inserted {
        Ok(()) => {}
        Err(StoreError::LimitExceeded) => {
            return Err(ApiError::limit_exceeded(format!(
                "The user pool has reached its limit of {MAX_CLIENTS_PER_POOL} app clients."
            )))
        }
        Err(StoreError::NotFound(_)) => return Err(pool_not_found(&input.user_pool_id)),
        Err(other) => return Err(ApiError::internal(other)),
    }
    client.client_secret = secret.map(Sensitive);
    Ok(CreateUserPoolClientResponse { user_pool_client: Some(client) })
}

pub async fn describe_user_pool_client(
    ctx: Ctx,
    input: DescribeUserPoolClientRequest,
) -> ApiResult<DescribeUserPoolClientResponse> {
    let (_, mut client) = load_client(&ctx, &input.user_pool_id, input.client_id.expose()).await?;
    client.client_secret = current_secret(&ctx, &input.user_pool_id, input.client_id.expose()).await?.map(Sensitive);
    Ok(DescribeUserPoolClientResponse { user_pool_client: Some(client) })
}

pub async fn update_user_pool_client(
    ctx: Ctx,
    input: UpdateUserPoolClientRequest,
) -> ApiResult<UpdateUserPoolClientResponse> {
    let pool_id = input.user_pool_id.clone();
    let client_id = input.client_id.expose().clone();
    let (_, doc) = load_pool(&ctx, &pool_id).await?;
    let secret = current_secret(&ctx, &pool_id, &client_id).await?;
    let settings = client_settings!(input);
    let ctx = &ctx;
    let mut attempts = Attempts::new(ctx, "The app client");
    loop {
        attempts.begin()?;
        let (mut record, mut client) = load_client(ctx, &pool_id, &client_id).await?;
        resolve_settings(&doc, settings.clone(), secret.is_some(), &mut client)?;
        if let Some(name) = &input.client_name {
            client.client_name = Some(name.clone());
            record.name = name.clone();
        }
        record.modified_ms = ctx.now_ms();
        client.last_modified_date = Some(timestamp(record.modified_ms));
        record.version += 1;
        record.doc = encode_doc(&client)?;
        let answer = ctx.store(move |s| Ok(s.update_app_client(&record))).await?;
        client.client_secret = secret.clone().map(Sensitive);
        let response = UpdateUserPoolClientResponse { user_pool_client: Some(client) };
        if let Some(done) = written(answer, response, || client_not_found(&client_id))? {
            return Ok(done);
        }
    }
}

pub async fn delete_user_pool_client(ctx: Ctx, input: DeleteUserPoolClientRequest) -> ApiResult<()> {
    let client_id = input.client_id.expose().clone();
    load_client(&ctx, &input.user_pool_id, &client_id).await?;
    let pool = input.user_pool_id.clone();
    let id = client_id.clone();
    if !ctx.store(move |s| s.delete_app_client(&pool, &id)).await? {
        return Err(client_not_found(&client_id));
    }
    Ok(())
}

pub async fn list_user_pool_clients(
    ctx: Ctx,
    input: ListUserPoolClientsRequest,
) -> ApiResult<ListUserPoolClientsResponse> {
    load_pool(&ctx, &input.user_pool_id).await?;
    let limit = input.max_results.map(|n| n.clamp(1, 60) as usize).unwrap_or(60);
    let after = page_after(input.next_token.as_ref())?;
    let pool_id = input.user_pool_id.clone();
    let records = ctx.store(move |s| s.list_app_clients(&pool_id, after.as_deref(), limit + 1)).await?;
    let (page, next_token) = split_page(records, limit, |r| r.client_id.to_string());
    let clients = page
        .into_iter()
        .map(|r| UserPoolClientDescription {
            client_id: Some(Sensitive(r.client_id.into_string())),
            user_pool_id: Some(r.pool_id.into_string()),
            client_name: Some(r.name),
        })
        .collect();
    Ok(ListUserPoolClientsResponse { user_pool_clients: Some(clients), next_token })
}

fn descriptor(record: &ClientSecretRecord, value: Option<String>) -> ClientSecretDescriptorType {
    ClientSecretDescriptorType {
        client_secret_id: Some(record.secret_id.clone()),
        client_secret_create_date: Some(timestamp(record.created_ms)),
        client_secret_value: value.map(Sensitive),
    }
}

pub async fn add_user_pool_client_secret(
    ctx: Ctx,
    input: AddUserPoolClientSecretRequest,
) -> ApiResult<AddUserPoolClientSecretResponse> {
    let client_id = input.client_id.expose().clone();
    load_client(&ctx, &input.user_pool_id, &client_id).await?;
    if current_secret(&ctx, &input.user_pool_id, &client_id).await?.is_none() {
        return Err(ApiError::invalid_parameter(format!(
            "User pool client {client_id} is a public client without a secret; secrets cannot be added to it."
        )));
    }
    let secret = match &input.client_secret {
        Some(custom) => custom.expose().clone(),
        None => cognate_crypto::ids::client_secret(),
    };
    let record = seal_secret(&ctx, &input.user_pool_id, &client_id, &secret)?;
    let stored = record.clone();
    match ctx.store(move |s| Ok(s.insert_client_secret(&stored, MAX_SECRETS_PER_CLIENT))).await? {
        Ok(()) => {
            Ok(AddUserPoolClientSecretResponse { client_secret_descriptor: Some(descriptor(&record, Some(secret))) })
        }
        Err(StoreError::LimitExceeded) => Err(ApiError::limit_exceeded(format!(
            "User pool client {client_id} already has {MAX_SECRETS_PER_CLIENT} client secrets; delete one first."
        ))),
        Err(StoreError::NotFound(_)) => Err(client_not_found(&client_id)),
        Err(other) => Err(ApiError::internal(other)),
    }
}

pub async fn list_user_pool_client_secrets(
    ctx: Ctx,
    input: ListUserPoolClientSecretsRequest,
) -> ApiResult<ListUserPoolClientSecretsResponse> {
    let client_id = input.client_id.expose().clone();
    load_client(&ctx, &input.user_pool_id, &client_id).await?;
    let pool = input.user_pool_id.clone();
    let records = ctx.store(move |s| s.list_client_secrets(&pool, &client_id)).await?;
    Ok(ListUserPoolClientSecretsResponse {
        client_secrets: Some(records.iter().map(|r| descriptor(r, None)).collect()),
        next_token: None,
    })
}

pub async fn delete_user_pool_client_secret(
    ctx: Ctx,
    input: DeleteUserPoolClientSecretRequest,
) -> ApiResult<DeleteUserPoolClientSecretResponse> {
    let client_id = input.client_id.expose().clone();
    load_client(&ctx, &input.user_pool_id, &client_id).await?;
    let (pool, client, secret_id) = (input.user_pool_id.clone(), client_id.clone(), input.client_secret_id.clone());
    match ctx.store(move |s| Ok(s.delete_client_secret(&pool, &client, &secret_id, 1))).await? {
        Ok(true) => Ok(DeleteUserPoolClientSecretResponse {}),
        Ok(false) => Err(ApiError::not_found(format!("Client secret {} does not exist.", input.client_secret_id))),
        Err(StoreError::LimitExceeded) => Err(ApiError::invalid_parameter(
            "The last client secret of a client cannot be deleted; add a new secret first.",
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_need_https_except_localhost() {
        assert!(is_allowed_redirect("https://example.com/cb"));
        assert!(is_allowed_redirect("http://localhost:3000/cb"));
        assert!(is_allowed_redirect("myapp://signin"));
        assert!(!is_allowed_redirect("http://example.com/cb"));
        assert!(!is_allowed_redirect("https://example.com/cb#frag"));
        assert!(!is_allowed_redirect("not a url"));
    }

    #[test]
    fn token_validity_defaults_follow_the_unit() {
        assert_eq!(token_validity("x", None, &TimeUnitsType::Minutes, 3600, (300, 86_400)).ok(), Some(60));
        assert_eq!(token_validity("x", None, &TimeUnitsType::Hours, 3600, (300, 86_400)).ok(), Some(1));
        assert!(token_validity("x", Some(2), &TimeUnitsType::Days, 3600, (300, 86_400)).is_err());
    }
}
