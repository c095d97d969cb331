//! Identity providers (Create/Describe/Update/Delete/ListIdentityProviders,
//! GetIdentityProviderByIdentifier), over `cognate_core::identity_providers`.

use cognate_api::idp::*;
use cognate_core::identity_providers as providers;
use cognate_core::records::{page_after, page_token};
use cognate_core::{ApiResult, Ctx};

pub async fn create_identity_provider(
    ctx: Ctx,
    input: CreateIdentityProviderRequest,
) -> ApiResult<CreateIdentityProviderResponse> {
    let identity_provider = providers::create(
        &ctx,
        &input.user_pool_id,
        &input.provider_name,
        &input.provider_type,
        input.provider_details,
        providers::Mappings {
            attribute: input.attribute_mapping,
            idp_identifiers: input.idp_identifiers,
            acr: input.acr_mapping,
        },
    )
    .await?;
    Ok(CreateIdentityProviderResponse { identity_provider })
}

pub async fn update_identity_provider(
    ctx: Ctx,
    input: UpdateIdentityProviderRequest,
) -> ApiResult<UpdateIdentityProviderResponse> {
    let (pool, name) = (&input.user_pool_id, &input.provider_name);
    let identity_provider = providers::update(
        &ctx,
        pool,
        name,
        input.provider_details,
        providers::Mappings {
            attribute: input.attribute_mapping,
            idp_identifiers: input.idp_identifiers,
            acr: input.acr_mapping,
        },
    )
    .await?;
    Ok(UpdateIdentityProviderResponse { identity_provider })
}

pub async fn describe_identity_provider(
    ctx: Ctx,
    input: DescribeIdentityProviderRequest,
) -> ApiResult<DescribeIdentityProviderResponse> {
    let identity_provider = providers::describe(&ctx, &input.user_pool_id, &input.provider_name).await?;
    Ok(DescribeIdentityProviderResponse { identity_provider })
}

pub async fn get_identity_provider_by_identifier(
    ctx: Ctx,
    input: GetIdentityProviderByIdentifierRequest,
) -> ApiResult<GetIdentityProviderByIdentifierResponse> {
    let identity_provider = providers::by_identifier(&ctx, &input.user_pool_id, &input.idp_identifier).await?;
    Ok(GetIdentityProviderByIdentifierResponse { identity_provider })
}

pub async fn delete_identity_provider(ctx: Ctx, input: DeleteIdentityProviderRequest) -> ApiResult<()> {
    providers::delete(&ctx, &input.user_pool_id, &input.provider_name).await
}

pub async fn list_identity_providers(
    ctx: Ctx,
    input: ListIdentityProvidersRequest,
) -> ApiResult<ListIdentityProvidersResponse> {
    let limit = input.max_results.and_then(|m| usize::try_from(m).ok()).filter(|m| *m > 0).unwrap_or(60).min(60);
    let after = page_after(input.next_token.as_ref())?;
    let mut found = providers::list(&ctx, &input.user_pool_id, after.as_deref(), limit + 1).await?;
    let next_token = (found.len() > limit).then(|| {
        found.truncate(limit);
        found.last().and_then(|p| p.provider_name.as_deref()).map(page_token)
    });
    Ok(ListIdentityProvidersResponse { next_token: next_token.flatten(), providers: found })
}

/// GetSigningCertificate: a self-signed X.509 certificate (base64 DER) for the pool's signing
/// key, as SAML providers are given. It is the same certificate on every call: its fields
/// come from the pool and the key, and RSA PKCS#1 v1.5 signatures are deterministic.
pub async fn get_signing_certificate(
    ctx: Ctx,
    input: GetSigningCertificateRequest,
) -> ApiResult<GetSigningCertificateResponse> {
    use base64::Engine;
    let (record, _) = cognate_core::records::load_pool(&ctx, &input.user_pool_id).await?;
    let (kid, der) = cognate_core::tokens::id_key_pkcs8(&ctx, &input.user_pool_id, record.created_ms).await?;
    let pool_id = input.user_pool_id.clone();
    let certificate = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(der),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| e.to_string())?;
        let mut params = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, pool_id);
        params.distinguished_name = name;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&kid.as_bytes()[..16.min(kid.len())]));
        let created = time::OffsetDateTime::from_unix_timestamp(record.created_ms / 1000).map_err(|e| e.to_string())?;
        params.not_before = created;
        params.not_after = created + time::Duration::days(3650);
        Ok(params.self_signed(&key).map_err(|e| e.to_string())?.der().to_vec())
    })
    .await
    .map_err(cognate_core::ApiError::internal)?
    .map_err(cognate_core::ApiError::internal)?;
    Ok(GetSigningCertificateResponse {
        certificate: Some(base64::engine::general_purpose::STANDARD.encode(certificate)),
    })
}

/// A ProviderUserIdentifierType's provider and value, both required.
fn provider_user(user: &ProviderUserIdentifierType, what: &str) -> ApiResult<(String, String)> {
    match (&user.provider_name, &user.provider_attribute_value) {
        (Some(name), Some(value)) => Ok((name.clone(), value.clone())),
        _ => Err(cognate_core::ApiError::invalid_parameter(format!(
            "{what} needs ProviderName and ProviderAttributeValue."
        ))),
    }
}

pub async fn admin_link_provider_for_user(
    ctx: Ctx,
    input: AdminLinkProviderForUserRequest,
) -> ApiResult<AdminLinkProviderForUserResponse> {
    let (destination_provider, username) = provider_user(&input.destination_user, "DestinationUser")?;
    if destination_provider != "Cognito" {
        return Err(cognate_core::ApiError::invalid_parameter(
            "DestinationUser must be a Cognito user (ProviderName Cognito).",
        ));
    }
    let (provider, subject) = provider_user(&input.source_user, "SourceUser")?;
    cognate_core::federation::link(&ctx, &input.user_pool_id, &username, &provider, &subject).await?;
    Ok(AdminLinkProviderForUserResponse {})
}

pub async fn admin_disable_provider_for_user(
    ctx: Ctx,
    input: AdminDisableProviderForUserRequest,
) -> ApiResult<AdminDisableProviderForUserResponse> {
    let (provider, subject) = provider_user(&input.user, "User")?;
    cognate_core::federation::disable(&ctx, &input.user_pool_id, &provider, &subject).await?;
    Ok(AdminDisableProviderForUserResponse {})
}
