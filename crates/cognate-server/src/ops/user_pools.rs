//! User pools: create, describe, update, delete, list, custom attributes, CSV header.

use std::collections::BTreeMap;

use cognate_api::idp::*;
use cognate_store::{StoreError, UserPoolRecord};

use cognate_core::context::{timestamp, Ctx};
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;
use cognate_core::users::attributes::{csv_header, STANDARD_ATTRIBUTES};

/// Cognito's account quota of user pools per Region.
const MAX_USER_POOLS: u64 = 1000;
const MAX_CUSTOM_ATTRIBUTES: usize = 50;

fn standard_attribute(name: &str, data_type: &AttributeDataType) -> SchemaAttributeType {
    let string_constraints = |min: &str, max: &str| StringAttributeConstraintsType {
        min_length: Some(min.into()),
        max_length: Some(max.into()),
    };
    let (string, number) = match (name, data_type) {
        ("sub", _) => (Some(string_constraints("1", "2048")), None),
        ("birthdate", _) => (Some(string_constraints("10", "10")), None),
        (_, AttributeDataType::String) => (Some(string_constraints("0", "2048")), None),
        (_, AttributeDataType::Number) => {
            (None, Some(NumberAttributeConstraintsType { min_value: Some("0".into()), max_value: None }))
        }
        _ => (None, None),
    };
    SchemaAttributeType {
        name: Some(name.into()),
        attribute_data_type: Some(data_type.clone()),
        developer_only_attribute: Some(false),
        mutable: Some(name != "sub"),
        required: Some(name == "sub"),
        string_attribute_constraints: string,
        number_attribute_constraints: number,
    }
}

fn is_standard(name: &str) -> bool {
    STANDARD_ATTRIBUTES.iter().any(|(n, _)| *n == name)
}

/// Turns a requested custom attribute into the stored one (`custom:` or `dev:custom:` name,
/// String by default, mutable by default).
fn custom_attribute(requested: &SchemaAttributeType) -> ApiResult<SchemaAttributeType> {
    let name = requested.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid_parameter("Custom attributes must have a name."));
    }
    if requested.required == Some(true) {
        return Err(ApiError::invalid_parameter("Required custom attributes are not supported currently."));
    }
    let data_type = requested.attribute_data_type.clone().unwrap_or(AttributeDataType::String);
    if let AttributeDataType::Unknown(other) = &data_type {
        return Err(ApiError::invalid_parameter(format!("Invalid AttributeDataType input: {other}.")));
    }
    let developer_only = requested.developer_only_attribute.unwrap_or(false);
    let bare = name.strip_prefix("custom:").unwrap_or(&name);
    let stored_name = if developer_only { format!("dev:custom:{bare}") } else { format!("custom:{bare}") };
    let mut attribute = SchemaAttributeType {
        name: Some(stored_name),
        attribute_data_type: Some(data_type.clone()),
        developer_only_attribute: Some(developer_only),
        mutable: Some(requested.mutable.unwrap_or(true)),
        required: Some(false),
        string_attribute_constraints: None,
        number_attribute_constraints: None,
    };
    match data_type {
        AttributeDataType::String => {
            let c = requested.string_attribute_constraints.clone().unwrap_or_default();
            check_bounds(&name, c.min_length.as_deref(), c.max_length.as_deref(), Some(2048))?;
            attribute.string_attribute_constraints = Some(c);
        }
        AttributeDataType::Number => {
            let c = requested.number_attribute_constraints.clone().unwrap_or_default();
            check_bounds(&name, c.min_value.as_deref(), c.max_value.as_deref(), None)?;
            attribute.number_attribute_constraints = Some(c);
        }
        _ => {}
    }
    Ok(attribute)
}

fn check_bounds(name: &str, min: Option<&str>, max: Option<&str>, ceiling: Option<i64>) -> ApiResult<()> {
    let parse = |v: Option<&str>| -> ApiResult<Option<i64>> {
        v.map(|text| {
            text.parse::<i64>().map_err(|_| {
                ApiError::invalid_parameter(format!("Invalid constraint value '{text}' for attribute {name}."))
            })
        })
        .transpose()
    };
    let (min, max) = (parse(min)?, parse(max)?);
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid constraints for attribute {name}: the minimum is greater than the maximum."
            )));
        }
    }
    if let (Some(ceiling), Some(max)) = (ceiling, max) {
        if max > ceiling || min.is_some_and(|m| m < 0) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid constraints for attribute {name}: string lengths must be within 0 and {ceiling}."
            )));
        }
    }
    Ok(())
}

/// The pool's schema: the standard attributes (with requested overrides) then custom ones.
fn build_schema(requested: &[SchemaAttributeType]) -> ApiResult<Vec<SchemaAttributeType>> {
    let mut schema: Vec<SchemaAttributeType> =
        STANDARD_ATTRIBUTES.iter().map(|(name, t)| standard_attribute(name, t)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for attr in requested {
        let name = attr.name.clone().unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(ApiError::invalid_parameter(format!("Duplicate attribute name {name} in the schema.")));
        }
        if is_standard(&name) {
            let Some(slot) = schema.iter_mut().find(|s| s.name.as_deref() == Some(name.as_str())) else {
                continue;
            };
            if attr.attribute_data_type.as_ref().is_some_and(|t| Some(t) != slot.attribute_data_type.as_ref())
                || attr.developer_only_attribute == Some(true)
            {
                return Err(ApiError::invalid_parameter(format!(
                    "You can not change AttributeDataType or set developerOnlyAttribute for standard attribute {name}."
                )));
            }
            if name == "sub" && (attr.mutable == Some(true) || attr.required == Some(false)) {
                return Err(ApiError::invalid_parameter("The sub attribute is required and immutable."));
            }
            if let Some(required) = attr.required {
                slot.required = Some(required);
            }
            if let Some(mutable) = attr.mutable {
                slot.mutable = Some(mutable);
            }
            if let Some(c) = &attr.string_attribute_constraints {
                check_bounds(&name, c.min_length.as_deref(), c.max_length.as_deref(), Some(2048))?;
                slot.string_attribute_constraints = Some(c.clone());
            }
            if let Some(c) = &attr.number_attribute_constraints {
                slot.number_attribute_constraints = Some(c.clone());
            }
        } else {
            schema.push(custom_attribute(attr)?);
        }
    }
    if custom_count(&schema) > MAX_CUSTOM_ATTRIBUTES {
        return Err(ApiError::invalid_parameter(format!(
            "A user pool can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes."
        )));
    }
    Ok(schema)
}

fn custom_count(schema: &[SchemaAttributeType]) -> usize {
    schema.iter().filter(|a| a.name.as_deref().is_some_and(|n| !is_standard(n))).count()
}

fn default_password_policy() -> PasswordPolicyType {
    PasswordPolicyType {
        minimum_length: Some(8),
        require_uppercase: Some(true),
        require_lowercase: Some(true),
        require_numbers: Some(true),
        require_symbols: Some(true),
        temporary_password_validity_days: Some(7),
        password_history_size: None,
    }
}

/// Cognito fills omitted policy members: an omitted policy is the strict default; a given
/// policy keeps what it says and defaults the rest to off.
fn effective_policies(requested: Option<UserPoolPolicyType>) -> UserPoolPolicyType {
    let requested = requested.unwrap_or_default();
    let password_policy = match requested.password_policy {
        None => default_password_policy(),
        Some(p) => PasswordPolicyType {
            minimum_length: Some(p.minimum_length.unwrap_or(8)),
            require_uppercase: Some(p.require_uppercase.unwrap_or(false)),
            require_lowercase: Some(p.require_lowercase.unwrap_or(false)),
            require_numbers: Some(p.require_numbers.unwrap_or(false)),
            require_symbols: Some(p.require_symbols.unwrap_or(false)),
            temporary_password_validity_days: Some(p.temporary_password_validity_days.unwrap_or(7)),
            password_history_size: p.password_history_size,
        },
    };
    let sign_in_policy = requested
        .sign_in_policy
        .unwrap_or_else(|| SignInPolicyType { allowed_first_auth_factors: Some(vec![AuthFactorType::Password]) });
    UserPoolPolicyType { password_policy: Some(password_policy), sign_in_policy: Some(sign_in_policy) }
}

/// The settings CreateUserPool and UpdateUserPool share. UpdateUserPool, as AWS documents,
/// resets every setting the request omits to its default; this is that one place.
struct MutableSettings {
    policies: Option<UserPoolPolicyType>,
    deletion_protection: Option<DeletionProtectionType>,
    lambda_config: Option<LambdaConfigType>,
    auto_verified_attributes: Option<Vec<VerifiedAttributeType>>,
    sms_verification_message: Option<String>,
    email_verification_message: Option<String>,
    email_verification_subject: Option<String>,
    verification_message_template: Option<VerificationMessageTemplateType>,
    sms_authentication_message: Option<String>,
    user_attribute_update_settings: Option<UserAttributeUpdateSettingsType>,
    mfa_configuration: Option<UserPoolMfaType>,
    device_configuration: Option<DeviceConfigurationType>,
    email_configuration: Option<EmailConfigurationType>,
    sms_configuration: Option<SmsConfigurationType>,
    admin_create_user_config: Option<AdminCreateUserConfigType>,
    user_pool_add_ons: Option<UserPoolAddOnsType>,
    account_recovery_setting: Option<AccountRecoverySettingType>,
    user_pool_tier: Option<UserPoolTierType>,
}

/// `totp_enabled`: software-token MFA (set by SetUserPoolMfaConfig) is on, which by itself
/// satisfies an MFA setting of ON or OPTIONAL.
fn apply_settings(pool: &mut UserPoolType, s: MutableSettings, totp_enabled: bool) -> ApiResult<()> {
    let mfa = s.mfa_configuration.unwrap_or(UserPoolMfaType::Off);
    if mfa != UserPoolMfaType::Off && s.sms_configuration.is_none() && !totp_enabled {
        return Err(ApiError::invalid_parameter(
            "SMS configuration and Auto verification for phone_number are required when MFA is required/optional",
        ));
    }
    let mut template = s.verification_message_template.unwrap_or_default();
    template.default_email_option.get_or_insert(DefaultEmailOptionType::ConfirmWithCode);
    // Cognito mirrors the legacy top-level messages into the template and back.
    if let Some(message) = &s.email_verification_message {
        template.email_message.get_or_insert_with(|| message.clone());
    }
    if let Some(subject) = &s.email_verification_subject {
        template.email_subject.get_or_insert_with(|| subject.clone());
    }
    if let Some(message) = &s.sms_verification_message {
        template.sms_message.get_or_insert_with(|| message.clone());
    }
    let mut admin = s.admin_create_user_config.unwrap_or_default();
    admin.allow_admin_create_user_only.get_or_insert(false);
    admin.unused_account_validity_days.get_or_insert(7);

    pool.policies = Some(effective_policies(s.policies));
    pool.deletion_protection = Some(s.deletion_protection.unwrap_or(DeletionProtectionType::Inactive));
    pool.lambda_config = Some(s.lambda_config.unwrap_or_default());
    pool.auto_verified_attributes = s.auto_verified_attributes;
    pool.email_verification_message = template.email_message.clone();
    pool.email_verification_subject = template.email_subject.clone();
    pool.sms_verification_message = template.sms_message.clone();
    pool.verification_message_template = Some(template);
    pool.sms_authentication_message = s.sms_authentication_message;
    pool.user_attribute_update_settings = Some(s.user_attribute_update_settings.unwrap_or_else(|| {
        UserAttributeUpdateSettingsType { attributes_require_verification_before_update: Some(Vec::new()) }
    }));
    pool.mfa_configuration = Some(mfa);
    pool.device_configuration = s.device_configuration;
    pool.email_configuration = Some(s.email_configuration.unwrap_or_else(|| EmailConfigurationType {
        email_sending_account: Some(EmailSendingAccountType::CognitoDefault),
        ..Default::default()
    }));
    pool.sms_configuration = s.sms_configuration;
    pool.admin_create_user_config = Some(admin);
    pool.user_pool_add_ons = s.user_pool_add_ons;
    pool.account_recovery_setting = s.account_recovery_setting;
    pool.user_pool_tier = Some(s.user_pool_tier.unwrap_or(UserPoolTierType::Essentials));
    Ok(())
}

fn check_verified_attributes(pool: &UserPoolType) -> ApiResult<()> {
    for attribute in pool.auto_verified_attributes.iter().flatten() {
        if let VerifiedAttributeType::Unknown(other) = attribute {
            return Err(ApiError::invalid_parameter(format!("Invalid auto-verified attribute {other}.")));
        }
    }
    Ok(())
}

/// Splits the `_custom_id_` directive from the requested tags.
fn take_custom_id(ctx: &Ctx, tags: &mut BTreeMap<String, String>) -> ApiResult<Option<String>> {
    let Some(requested) = tags.remove(CUSTOM_ID_TAG) else {
        return Ok(None);
    };
    let id = if requested.contains('_') { requested } else { format!("{}_{requested}", ctx.region) };
    let valid = id.split_once('_').is_some_and(|(region, suffix)| {
        !region.is_empty()
            && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !suffix.is_empty()
            && suffix.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !valid || id.len() > 55 {
        return Err(ApiError::invalid_parameter(format!(
            "The {CUSTOM_ID_TAG} tag must be a user pool id such as {}_Example1 (letters and digits after the underscore).",
            ctx.region
        )));
    }
    if !ctx.sees(cognate_core::region::of_user_pool(&id)) {
        return Err(ApiError::invalid_parameter(format!(
            "The {CUSTOM_ID_TAG} tag must name a user pool of the request's region {}.",
            ctx.region
        )));
    }
    Ok(Some(id))
}

pub async fn create_user_pool(ctx: Ctx, input: CreateUserPoolRequest) -> ApiResult<CreateUserPoolResponse> {
    if input.username_attributes.is_some() && input.alias_attributes.is_some() {
        return Err(ApiError::invalid_parameter(
            "Only one of the aliasAttributes or usernameAttributes can be set in a User Pool.",
        ));
    }
    let mut tags = input.user_pool_tags.clone().unwrap_or_default();
    let custom_id = take_custom_id(&ctx, &mut tags)?;
    let id = custom_id.clone().unwrap_or_else(|| cognate_crypto::ids::user_pool_id(&ctx.region));
    let now_ms = ctx.now_ms();
    let mut pool = UserPoolType {
        id: Some(id.clone()),
        name: Some(input.pool_name.clone()),
        arn: Some(user_pool_arn(&ctx, &id)),
        creation_date: Some(timestamp(now_ms)),
        last_modified_date: Some(timestamp(now_ms)),
        schema_attributes: Some(build_schema(input.schema.as_deref().unwrap_or_default())?),
        username_attributes: input.username_attributes,
        alias_attributes: input.alias_attributes,
        username_configuration: input.username_configuration,
        user_pool_tags: Some(tags),
        estimated_number_of_users: Some(0),
        ..Default::default()
    };
    apply_settings(
        &mut pool,
        MutableSettings {
            policies: input.policies,
            deletion_protection: input.deletion_protection,
            lambda_config: input.lambda_config,
            auto_verified_attributes: input.auto_verified_attributes,
            sms_verification_message: input.sms_verification_message,
            email_verification_message: input.email_verification_message,
            email_verification_subject: input.email_verification_subject,
            verification_message_template: input.verification_message_template,
            sms_authentication_message: input.sms_authentication_message,
            user_attribute_update_settings: input.user_attribute_update_settings,
            mfa_configuration: input.mfa_configuration,
            device_configuration: input.device_configuration,
            email_configuration: input.email_configuration,
            sms_configuration: input.sms_configuration,
            admin_create_user_config: input.admin_create_user_config,
            user_pool_add_ons: input.user_pool_add_ons,
            account_recovery_setting: input.account_recovery_setting,
            user_pool_tier: input.user_pool_tier,
        },
        false,
    )?;
    check_verified_attributes(&pool)?;
    let doc = PoolDoc { pool: pool.clone(), ..Default::default() };
    let record = UserPoolRecord {
        id: id.clone().into(),
        name: input.pool_name,
        created_ms: now_ms,
        modified_ms: now_ms,
        version: 1,
        doc: encode_doc(&doc)?,
    };
    let inserted = ctx
        .store(move |s| {
            if s.count_user_pools()? >= MAX_USER_POOLS {
                return Ok(Err(StoreError::LimitExceeded));
            }
            Ok(s.insert_user_pool(&record))
        })
        .await?;
    match inserted {
        Ok(()) => Ok(CreateUserPoolResponse { user_pool: Some(pool) }),
        Err(StoreError::LimitExceeded) => {
            Err(ApiError::limit_exceeded(format!("The account has reached its limit of {MAX_USER_POOLS} user pools.")))
        }
        Err(StoreError::AlreadyExists(_)) if custom_id.is_some() => {
            Err(ApiError::invalid_parameter(format!("User pool {id} already exists.")))
        }
        Err(other) => Err(ApiError::internal(other)),
    }
}

pub async fn describe_user_pool(ctx: Ctx, input: DescribeUserPoolRequest) -> ApiResult<DescribeUserPoolResponse> {
    let (_, mut doc) = load_pool(&ctx, &input.user_pool_id).await?;
    let id = input.user_pool_id.clone();
    let users = ctx.store(move |s| s.count_users(&id)).await?;
    doc.pool.estimated_number_of_users = Some(i32::try_from(users).unwrap_or(i32::MAX));
    (doc.pool.domain, doc.pool.custom_domain) = cognate_core::domains::of_pool(&ctx, &input.user_pool_id).await?;
    Ok(DescribeUserPoolResponse { user_pool: Some(doc.pool) })
}

pub async fn update_user_pool(ctx: Ctx, input: UpdateUserPoolRequest) -> ApiResult<UpdateUserPoolResponse> {
    let pool_id = input.user_pool_id.clone();
    modify_pool(&ctx, &pool_id, |doc| {
        let totp_enabled = doc.software_token_mfa;
        let pool = &mut doc.pool;
        if let Some(name) = &input.pool_name {
            pool.name = Some(name.clone());
        }
        if let Some(tags) = &input.user_pool_tags {
            let mut tags = tags.clone();
            tags.remove(CUSTOM_ID_TAG);
            pool.user_pool_tags = Some(tags);
        }
        let input = input.clone();
        apply_settings(
            pool,
            MutableSettings {
                policies: input.policies,
                deletion_protection: input.deletion_protection,
                lambda_config: input.lambda_config,
                auto_verified_attributes: input.auto_verified_attributes,
                sms_verification_message: input.sms_verification_message,
                email_verification_message: input.email_verification_message,
                email_verification_subject: input.email_verification_subject,
                verification_message_template: input.verification_message_template,
                sms_authentication_message: input.sms_authentication_message,
                user_attribute_update_settings: input.user_attribute_update_settings,
                mfa_configuration: input.mfa_configuration,
                device_configuration: input.device_configuration,
                email_configuration: input.email_configuration,
                sms_configuration: input.sms_configuration,
                admin_create_user_config: input.admin_create_user_config,
                user_pool_add_ons: input.user_pool_add_ons,
                account_recovery_setting: input.account_recovery_setting,
                user_pool_tier: input.user_pool_tier.or_else(|| pool.user_pool_tier.clone()),
            },
            totp_enabled,
        )?;
        check_verified_attributes(pool)
    })
    .await?;
    Ok(UpdateUserPoolResponse {})
}

pub async fn delete_user_pool(ctx: Ctx, input: DeleteUserPoolRequest) -> ApiResult<()> {
    let (_, doc) = load_pool(&ctx, &input.user_pool_id).await?;
    if doc.pool.deletion_protection == Some(DeletionProtectionType::Active) {
        return Err(ApiError::invalid_parameter(
            "The user pool cannot be deleted because deletion protection is activated. Deletion protection must be inactivated first.",
        ));
    }
    let id = input.user_pool_id.clone();
    if !ctx.store(move |s| s.delete_user_pool(&id)).await? {
        return Err(pool_not_found(&input.user_pool_id));
    }
    Ok(())
}

pub async fn list_user_pools(ctx: Ctx, input: ListUserPoolsRequest) -> ApiResult<ListUserPoolsResponse> {
    let limit = usize::try_from(input.max_results).unwrap_or(60).clamp(1, 60);
    let (prefix, after) = ctx.region_page_floor(page_after(input.next_token.as_ref())?, '_');
    let mut records = ctx.store(move |s| s.list_user_pools(after.as_deref(), limit + 1)).await?;
    records.retain(|r| r.id.starts_with(&prefix));
    let (page, next_token) = split_page(records, limit, |r| r.id.to_string());
    let mut pools = Vec::with_capacity(page.len());
    for record in page {
        let doc: PoolDoc = decode_doc(&record.doc)?;
        pools.push(UserPoolDescriptionType {
            id: doc.pool.id,
            name: doc.pool.name,
            lambda_config: doc.pool.lambda_config,
            creation_date: doc.pool.creation_date,
            last_modified_date: doc.pool.last_modified_date,
            ..Default::default()
        });
    }
    Ok(ListUserPoolsResponse { user_pools: Some(pools), next_token })
}

pub async fn add_custom_attributes(
    ctx: Ctx,
    input: AddCustomAttributesRequest,
) -> ApiResult<AddCustomAttributesResponse> {
    let added = input.custom_attributes.iter().map(custom_attribute).collect::<ApiResult<Vec<_>>>()?;
    modify_pool(&ctx, &input.user_pool_id, |doc| {
        let schema = doc.pool.schema_attributes.get_or_insert_with(Vec::new);
        for attribute in &added {
            let name = attribute.name.clone().unwrap_or_default();
            let bare = name.rsplit(':').next().unwrap_or_default();
            let clash = schema.iter().any(|existing| {
                existing.name.as_deref().is_some_and(|n| n == name || n.rsplit(':').next() == Some(bare))
            });
            if clash {
                return Err(ApiError::invalid_parameter(format!("Existing attribute already has name {name}.")));
            }
            schema.push(attribute.clone());
        }
        if custom_count(schema) > MAX_CUSTOM_ATTRIBUTES {
            return Err(ApiError::invalid_parameter(format!(
                "A user pool can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(AddCustomAttributesResponse {})
}

pub async fn get_csv_header(ctx: Ctx, input: GetCSVHeaderRequest) -> ApiResult<GetCSVHeaderResponse> {
    let (_, doc) = load_pool(&ctx, &input.user_pool_id).await?;
    Ok(GetCSVHeaderResponse { user_pool_id: Some(input.user_pool_id), csv_header: Some(csv_header(&doc.pool)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schema_matches_cognito() {
        let schema = build_schema(&[]).expect("schema");
        assert_eq!(schema.len(), STANDARD_ATTRIBUTES.len());
        let sub = &schema[0];
        assert_eq!(sub.name.as_deref(), Some("sub"));
        assert_eq!((sub.required, sub.mutable), (Some(true), Some(false)));
    }

    #[test]
    fn custom_attributes_are_prefixed_and_cannot_be_required() {
        let custom = SchemaAttributeType { name: Some("tenant".into()), ..Default::default() };
        let schema = build_schema(std::slice::from_ref(&custom)).expect("schema");
        assert_eq!(schema.last().and_then(|a| a.name.as_deref()), Some("custom:tenant"));
        let required = SchemaAttributeType { required: Some(true), ..custom };
        assert!(build_schema(&[required]).is_err());
    }

    #[test]
    fn omitted_policy_is_the_strict_default() {
        let policy = effective_policies(None).password_policy.expect("policy");
        assert_eq!(policy.minimum_length, Some(8));
        assert_eq!(policy.require_symbols, Some(true));
        assert_eq!(policy.temporary_password_validity_days, Some(7));
    }

    #[test]
    fn csv_header_ends_with_username_then_custom_attributes() {
        let custom = SchemaAttributeType { name: Some("tenant".into()), ..Default::default() };
        let pool =
            UserPoolType { schema_attributes: Some(build_schema(&[custom]).expect("schema")), ..Default::default() };
        let header = csv_header(&pool);
        assert_eq!(header.first().map(String::as_str), Some("name"));
        assert_eq!(&header[header.len() - 2..], &["cognito:username".to_string(), "custom:tenant".to_string()]);
    }
}
