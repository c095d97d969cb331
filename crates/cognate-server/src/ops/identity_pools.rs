//! cognito-identity: identity pools, their roles and tags, and their identities and
//! credentials (the logic is `cognate_core::identity`).

use std::collections::BTreeMap;

use cognate_api::identity::*;
use cognate_api::Sensitive;
use cognate_core::identity::pools::{
    identity_pool_arn, load, modify, normalise, not_found, IdentityPoolDoc, PrincipalTagMap,
};
use cognate_core::identity::{self, developer, roles};
use cognate_core::records::*;
use cognate_core::{ApiError, ApiResult, Ctx};
use cognate_store::{IdentityPoolRecord, StoreError};

/// Cognito's account quota of identity pools.
const MAX_IDENTITY_POOLS: u64 = 1000;

fn is_identity_pool_id(id: &str) -> bool {
    id.split_once(':').is_some_and(|(region, rest)| {
        !region.is_empty()
            && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
    })
}

pub async fn create_identity_pool(ctx: Ctx, input: CreateIdentityPoolInput) -> ApiResult<IdentityPool> {
    let mut tags = input.identity_pool_tags.clone().unwrap_or_default();
    let custom_id = tags.remove(CUSTOM_ID_TAG);
    if let Some(id) = &custom_id {
        if !is_identity_pool_id(id) {
            return Err(ApiError::invalid_parameter(format!(
                "The {CUSTOM_ID_TAG} tag must be an identity pool id such as {}:0c0ffee0-0000-4000-8000-000000000000.",
                ctx.region
            )));
        }
        if !ctx.sees(cognate_core::region::of_identity_pool(id)) {
            return Err(ApiError::invalid_parameter(format!(
                "The {CUSTOM_ID_TAG} tag must name an identity pool of the request's region {}.",
                ctx.region
            )));
        }
    }
    let id = custom_id.clone().unwrap_or_else(|| format!("{}:{}", ctx.region, cognate_crypto::ids::uuid_v4()));
    let mut pool = IdentityPool {
        identity_pool_id: id.clone(),
        identity_pool_name: input.identity_pool_name.clone(),
        allow_unauthenticated_identities: input.allow_unauthenticated_identities,
        allow_classic_flow: input.allow_classic_flow,
        supported_login_providers: input.supported_login_providers,
        developer_provider_name: input.developer_provider_name,
        open_id_connect_provider_arns: input.open_id_connect_provider_arns,
        cognito_identity_providers: input.cognito_identity_providers,
        saml_provider_arns: input.saml_provider_arns,
        identity_pool_tags: Some(tags),
    };
    normalise(&mut pool)?;
    let now_ms = ctx.now_ms();
    let record = IdentityPoolRecord {
        id: id.clone().into(),
        name: input.identity_pool_name,
        created_ms: now_ms,
        modified_ms: now_ms,
        version: 1,
        doc: encode_doc(&IdentityPoolDoc { pool: pool.clone(), ..Default::default() })?,
    };
    let inserted = ctx
        .store(move |s| {
            if s.count_identity_pools()? >= MAX_IDENTITY_POOLS {
                return Ok(Err(StoreError::LimitExceeded));
            }
            Ok(s.insert_identity_pool(&record))
        })
        .await?;
    match inserted {
        Ok(()) => Ok(pool),
        Err(StoreError::LimitExceeded) => Err(ApiError::limit_exceeded(format!(
            "The account has reached its limit of {MAX_IDENTITY_POOLS} identity pools."
        ))),
        Err(StoreError::AlreadyExists(_)) => Err(ApiError::new(
            cognate_api::ErrorCode::ResourceConflictException,
            format!("IdentityPool '{id}' already exists."),
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}

pub async fn describe_identity_pool(ctx: Ctx, input: DescribeIdentityPoolInput) -> ApiResult<IdentityPool> {
    Ok(load(&ctx, &input.identity_pool_id).await?.1.pool)
}

pub async fn update_identity_pool(ctx: Ctx, input: IdentityPool) -> ApiResult<IdentityPool> {
    let id = input.identity_pool_id.clone();
    let doc = modify(&ctx, &id, |doc| {
        let tags = input.identity_pool_tags.clone().or_else(|| doc.pool.identity_pool_tags.clone());
        doc.pool = IdentityPool { identity_pool_tags: tags, ..input.clone() };
        if let Some(tags) = doc.pool.identity_pool_tags.as_mut() {
            tags.remove(CUSTOM_ID_TAG);
        }
        Ok(())
    })
    .await?;
    Ok(doc.pool)
}

pub async fn delete_identity_pool(ctx: Ctx, input: DeleteIdentityPoolInput) -> ApiResult<()> {
    let id = input.identity_pool_id.clone();
    if ctx.store(move |s| s.delete_identity_pool(&id)).await? {
        Ok(())
    } else {
        Err(not_found(&input.identity_pool_id))
    }
}

pub async fn list_identity_pools(ctx: Ctx, input: ListIdentityPoolsInput) -> ApiResult<ListIdentityPoolsResponse> {
    let limit = usize::try_from(input.max_results).unwrap_or(60).clamp(1, 60);
    let (prefix, after) = ctx.region_page_floor(page_after(input.next_token.as_ref())?, ':');
    let mut records = ctx.store(move |s| s.list_identity_pools(after.as_deref(), limit + 1)).await?;
    records.retain(|r| r.id.starts_with(&prefix));
    let (page, next_token) = split_page(records, limit, |r| r.id.to_string());
    let pools = page
        .into_iter()
        .map(|r| IdentityPoolShortDescription {
            identity_pool_id: Some(r.id.into_string()),
            identity_pool_name: Some(r.name),
        })
        .collect();
    Ok(ListIdentityPoolsResponse { identity_pools: Some(pools), next_token })
}

fn pool_id_from_arn(ctx: &Ctx, arn: &str) -> ApiResult<String> {
    let prefix = identity_pool_arn(ctx, "");
    arn.strip_prefix(&prefix).filter(|id| is_identity_pool_id(id)).map(str::to_owned).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Invalid ResourceArn {arn}: expected {prefix}<identity pool id>."))
    })
}

pub async fn tag_resource(ctx: Ctx, input: TagResourceInput) -> ApiResult<TagResourceResponse> {
    let id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    modify(&ctx, &id, |doc| {
        let tags = doc.pool.identity_pool_tags.get_or_insert_with(BTreeMap::new);
        for (key, value) in &input.tags {
            if key != CUSTOM_ID_TAG {
                tags.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(TagResourceResponse {})
}

pub async fn untag_resource(ctx: Ctx, input: UntagResourceInput) -> ApiResult<UntagResourceResponse> {
    let id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    modify(&ctx, &id, |doc| {
        let tags = doc.pool.identity_pool_tags.get_or_insert_with(BTreeMap::new);
        for key in &input.tag_keys {
            tags.remove(key);
        }
        Ok(())
    })
    .await?;
    Ok(UntagResourceResponse {})
}

pub async fn list_tags_for_resource(
    ctx: Ctx,
    input: ListTagsForResourceInput,
) -> ApiResult<ListTagsForResourceResponse> {
    let id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    let (_, doc) = load(&ctx, &id).await?;
    Ok(ListTagsForResourceResponse { tags: Some(doc.pool.identity_pool_tags.unwrap_or_default()) })
}

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

pub async fn get_identity_pool_roles(
    ctx: Ctx,
    input: GetIdentityPoolRolesInput,
) -> ApiResult<GetIdentityPoolRolesResponse> {
    let (_, doc) = load(&ctx, &input.identity_pool_id).await?;
    Ok(GetIdentityPoolRolesResponse {
        identity_pool_id: Some(input.identity_pool_id),
        roles: Some(doc.roles),
        role_mappings: (!doc.role_mappings.is_empty()).then_some(doc.role_mappings),
    })
}

pub async fn set_identity_pool_roles(ctx: Ctx, input: SetIdentityPoolRolesInput) -> ApiResult<()> {
    for name in input.roles.keys() {
        if name != roles::AUTHENTICATED && name != roles::UNAUTHENTICATED {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid Roles key {name}: only authenticated and unauthenticated roles are supported."
            )));
        }
    }
    for (provider, mapping) in input.role_mappings.iter().flatten() {
        let rules = mapping.rules_configuration.as_ref().map_or(0, |c| c.rules.len());
        match mapping.r#type {
            RoleMappingType::Rules if rules == 0 => {
                return Err(ApiError::invalid_parameter(format!(
                    "RulesConfiguration is required for role mapping of type Rules ({provider})."
                )))
            }
            RoleMappingType::Unknown(_) => {
                return Err(ApiError::invalid_parameter(format!("Invalid role mapping type for {provider}.")))
            }
            _ => {}
        }
        if mapping.ambiguous_role_resolution.is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "AmbiguousRoleResolution is required for the role mapping of {provider}."
            )));
        }
    }
    modify(&ctx, &input.identity_pool_id, |doc| {
        doc.roles = input.roles.clone();
        doc.role_mappings = input.role_mappings.clone().unwrap_or_default();
        Ok(())
    })
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Identities and credentials
// ---------------------------------------------------------------------------------------

pub async fn get_id(ctx: Ctx, input: GetIdInput) -> ApiResult<GetIdResponse> {
    if let Some(account) = &input.account_id {
        if *account != ctx.settings().account_id {
            return Err(not_found(&input.identity_pool_id));
        }
    }
    let identity_id = identity::get_id(&ctx, &input.identity_pool_id, input.logins.as_ref()).await?;
    Ok(GetIdResponse { identity_id: Some(identity_id) })
}

pub async fn get_credentials_for_identity(
    ctx: Ctx,
    input: GetCredentialsForIdentityInput,
) -> ApiResult<GetCredentialsForIdentityResponse> {
    let custom_role = input.custom_role_arn.as_deref();
    let issued = identity::get_credentials(&ctx, &input.identity_id, input.logins.as_ref(), custom_role).await?;
    let credentials = issued.credentials;
    Ok(GetCredentialsForIdentityResponse {
        identity_id: Some(issued.identity_id),
        credentials: Some(Credentials {
            access_key_id: Some(credentials.access_key_id),
            secret_key: Some(Sensitive(credentials.secret_key)),
            session_token: Some(credentials.session_token),
            expiration: Some(cognate_core::context::timestamp(credentials.expires_ms)),
        }),
    })
}

pub async fn describe_identity(ctx: Ctx, input: DescribeIdentityInput) -> ApiResult<IdentityDescription> {
    identity::describe_identity(&ctx, &input.identity_id).await
}

pub async fn list_identities(ctx: Ctx, input: ListIdentitiesInput) -> ApiResult<ListIdentitiesResponse> {
    load(&ctx, &input.identity_pool_id).await?;
    let limit = usize::try_from(input.max_results).unwrap_or(60).clamp(1, 60);
    let after = page_after(input.next_token.as_ref())?;
    let pool_id = input.identity_pool_id.clone();
    let found = ctx.store(move |s| s.list_identities(&pool_id, after.as_deref(), limit + 1)).await?;
    let (page, next_token) = split_page(found, limit, |(record, _)| record.identity_id.clone());
    // Cognate does not disable identities, so HideDisabled hides none.
    let identities = page.iter().map(|(record, logins)| identity::describe(record, logins)).collect();
    Ok(ListIdentitiesResponse {
        identity_pool_id: Some(input.identity_pool_id),
        identities: Some(identities),
        next_token,
    })
}

pub async fn delete_identities(ctx: Ctx, input: DeleteIdentitiesInput) -> ApiResult<DeleteIdentitiesResponse> {
    identity::delete_identities(&ctx, &input.identity_ids_to_delete).await?;
    Ok(DeleteIdentitiesResponse { unprocessed_identity_ids: Some(Vec::new()) })
}

pub async fn get_open_id_token(ctx: Ctx, input: GetOpenIdTokenInput) -> ApiResult<GetOpenIdTokenResponse> {
    let (identity_id, token) = identity::get_open_id_token(&ctx, &input.identity_id, input.logins.as_ref()).await?;
    Ok(GetOpenIdTokenResponse { identity_id: Some(identity_id), token: Some(Sensitive(token)) })
}

// ---------------------------------------------------------------------------------------
// Developer identities, unlinking, principal tags
// ---------------------------------------------------------------------------------------

pub async fn get_open_id_token_for_developer_identity(
    ctx: Ctx,
    input: GetOpenIdTokenForDeveloperIdentityInput,
) -> ApiResult<GetOpenIdTokenForDeveloperIdentityResponse> {
    let (identity_id, token) = developer::open_id_token(
        &ctx,
        &input.identity_pool_id,
        input.identity_id.as_deref(),
        &input.logins,
        input.token_duration,
    )
    .await?;
    Ok(GetOpenIdTokenForDeveloperIdentityResponse { identity_id: Some(identity_id), token: Some(Sensitive(token)) })
}

pub async fn lookup_developer_identity(
    ctx: Ctx,
    input: LookupDeveloperIdentityInput,
) -> ApiResult<LookupDeveloperIdentityResponse> {
    let found = developer::lookup(
        &ctx,
        &input.identity_pool_id,
        input.identity_id.as_deref(),
        input.developer_user_identifier.as_deref(),
    )
    .await?;
    let limit = input.max_results.and_then(|m| usize::try_from(m).ok()).unwrap_or(60).clamp(1, 60);
    let after = page_after(input.next_token.as_ref())?;
    let users: Vec<String> = found.users.into_iter().filter(|u| after.as_ref().is_none_or(|a| u > a)).collect();
    let (page, next_token) = split_page(users, limit, String::clone);
    Ok(LookupDeveloperIdentityResponse {
        identity_id: Some(found.identity_id),
        developer_user_identifier_list: Some(page),
        next_token,
    })
}

pub async fn merge_developer_identities(
    ctx: Ctx,
    input: MergeDeveloperIdentitiesInput,
) -> ApiResult<MergeDeveloperIdentitiesResponse> {
    let identity_id = developer::merge(
        &ctx,
        &input.identity_pool_id,
        &input.developer_provider_name,
        &input.source_user_identifier,
        &input.destination_user_identifier,
    )
    .await?;
    Ok(MergeDeveloperIdentitiesResponse { identity_id: Some(identity_id) })
}

pub async fn unlink_developer_identity(ctx: Ctx, input: UnlinkDeveloperIdentityInput) -> ApiResult<()> {
    developer::unlink(
        &ctx,
        &input.identity_pool_id,
        &input.identity_id,
        &input.developer_provider_name,
        &input.developer_user_identifier,
    )
    .await
}

pub async fn unlink_identity(ctx: Ctx, input: UnlinkIdentityInput) -> ApiResult<()> {
    developer::unlink_identity(&ctx, &input.identity_id, &input.logins, &input.logins_to_remove).await
}

fn tag_map_view(
    identity_pool_id: String,
    provider: String,
    map: PrincipalTagMap,
) -> GetPrincipalTagAttributeMapResponse {
    let tags = if map.use_defaults { PrincipalTagMap::defaults() } else { map.tags };
    GetPrincipalTagAttributeMapResponse {
        identity_pool_id: Some(identity_pool_id),
        identity_provider_name: Some(provider),
        principal_tags: Some(tags),
        use_defaults: Some(map.use_defaults),
    }
}

pub async fn set_principal_tag_attribute_map(
    ctx: Ctx,
    input: SetPrincipalTagAttributeMapInput,
) -> ApiResult<SetPrincipalTagAttributeMapResponse> {
    let map = PrincipalTagMap {
        use_defaults: input.use_defaults.unwrap_or(false),
        tags: input.principal_tags.clone().unwrap_or_default(),
    };
    let provider = input.identity_provider_name.clone();
    modify(&ctx, &input.identity_pool_id, |doc| {
        doc.principal_tags.insert(provider.clone(), map.clone());
        Ok(())
    })
    .await?;
    let view = tag_map_view(input.identity_pool_id, input.identity_provider_name, map);
    Ok(SetPrincipalTagAttributeMapResponse {
        identity_pool_id: view.identity_pool_id,
        identity_provider_name: view.identity_provider_name,
        principal_tags: view.principal_tags,
        use_defaults: view.use_defaults,
    })
}

pub async fn get_principal_tag_attribute_map(
    ctx: Ctx,
    input: GetPrincipalTagAttributeMapInput,
) -> ApiResult<GetPrincipalTagAttributeMapResponse> {
    let (_, doc) = load(&ctx, &input.identity_pool_id).await?;
    // A provider never set uses the defaults, as Cognito reports it.
    let map = doc
        .principal_tags
        .get(&input.identity_provider_name)
        .cloned()
        .unwrap_or(PrincipalTagMap { use_defaults: true, tags: BTreeMap::new() });
    Ok(tag_map_view(input.identity_pool_id, input.identity_provider_name, map))
}
