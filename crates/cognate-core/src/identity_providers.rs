//! A user pool's identity providers (Create/Describe/Update/Delete/ListIdentityProviders,
//! GetIdentityProviderByIdentifier): OIDC, SAML and the social providers, with attribute
//! mappings and IdP identifiers. They live in the pool's document; a `client_secret` in the
//! provider details is sealed there under the master key and opened when described. (Signing
//! in through a provider is the hosted pages' next step; app clients may already name them in
//! SupportedIdentityProviders.)

use std::collections::BTreeMap;

use cognate_api::idp::{IdentityProviderType, IdentityProviderTypeType, ProviderDescription};
use cognate_api::ErrorCode;

use crate::context::{timestamp, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::records::{load_pool, modify_pool, PoolDoc, StoredIdentityProvider};
use crate::sealed;

/// Most identity providers a pool may have.
const MAX_PER_POOL: usize = 300;
const SECRET: &str = "client_secret";

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Identity provider {name} does not exist."))
}

/// The details each type needs (as Cognito asks for them).
fn required_details(kind: &IdentityProviderTypeType) -> &'static [&'static str] {
    match kind {
        IdentityProviderTypeType::Oidc => &["client_id", "authorize_scopes", "oidc_issuer"],
        IdentityProviderTypeType::Saml => &[],
        IdentityProviderTypeType::SignInWithApple => {
            &["client_id", "team_id", "key_id", "private_key", "authorize_scopes"]
        }
        _ => &["client_id", "client_secret", "authorize_scopes"],
    }
}

fn check(name: &str, kind: &IdentityProviderTypeType, details: &BTreeMap<String, String>) -> ApiResult<()> {
    let social = match kind {
        IdentityProviderTypeType::Google
        | IdentityProviderTypeType::Facebook
        | IdentityProviderTypeType::LoginWithAmazon
        | IdentityProviderTypeType::SignInWithApple => Some(kind.as_str()),
        _ => None,
    };
    if let Some(expected) = social.filter(|expected| *expected != name) {
        return Err(ApiError::invalid_parameter(format!("A {expected} identity provider must be named {expected}.")));
    }
    if *kind == IdentityProviderTypeType::Saml
        && !details.contains_key("MetadataURL")
        && !details.contains_key("MetadataFile")
    {
        return Err(ApiError::invalid_parameter("A SAML identity provider needs MetadataURL or MetadataFile."));
    }
    if let Some(missing) = required_details(kind).iter().find(|key| !details.contains_key(**key)) {
        return Err(ApiError::invalid_parameter(format!("ProviderDetails for {} needs {missing}.", kind.as_str())));
    }
    Ok(())
}

fn seal_secret(ctx: &Ctx, pool_id: &str, name: &str, details: &mut BTreeMap<String, String>) -> ApiResult<()> {
    if let Some(secret) = details.get_mut(SECRET) {
        let context = format!("{pool_id}/{name}");
        *secret = sealed::seal_bytes(ctx, sealed::Purpose::IdpSecret { provider: &context }, secret.as_bytes())?;
    }
    Ok(())
}

/// The provider's client secret, opened.
pub fn client_secret(
    ctx: &Ctx,
    pool_id: &str,
    name: &str,
    stored: &StoredIdentityProvider,
) -> ApiResult<Option<String>> {
    let Some(sealed_secret) = stored.details.get(SECRET) else { return Ok(None) };
    let context = format!("{pool_id}/{name}");
    let plain = sealed::open_bytes(ctx, sealed::Purpose::IdpSecret { provider: &context }, sealed_secret)?;
    String::from_utf8(plain).map(Some).map_err(ApiError::internal)
}

fn view(ctx: &Ctx, pool_id: &str, name: &str, stored: &StoredIdentityProvider) -> ApiResult<IdentityProviderType> {
    let mut details = stored.details.clone();
    if let Some(secret) = client_secret(ctx, pool_id, name, stored)? {
        details.insert(SECRET.to_owned(), secret);
    }
    Ok(IdentityProviderType {
        acr_mapping: (!stored.acr_mapping.is_empty()).then(|| stored.acr_mapping.clone()),
        attribute_mapping: Some(stored.attribute_mapping.clone()),
        creation_date: Some(timestamp(stored.created_ms)),
        idp_identifiers: Some(stored.idp_identifiers.clone()),
        last_modified_date: Some(timestamp(stored.modified_ms)),
        provider_details: Some(details),
        provider_name: Some(name.to_owned()),
        provider_type: Some(IdentityProviderTypeType::from(stored.provider_type.as_str())),
        user_pool_id: Some(pool_id.to_owned()),
    })
}

fn duplicate_identifier(doc: &PoolDoc, name: &str, identifiers: &[String]) -> Option<String> {
    let mut seen: Vec<&String> = Vec::new();
    for identifier in identifiers {
        if seen.contains(&identifier) {
            return Some(identifier.clone());
        }
        seen.push(identifier);
    }
    doc.identity_providers
        .iter()
        .filter(|(other, _)| other.as_str() != name)
        .flat_map(|(_, p)| p.idp_identifiers.iter())
        .find(|taken| identifiers.contains(taken))
        .cloned()
}

/// What a provider maps, as given: attributes, IdP identifiers, `acr` values (none given: empty
/// on create, unchanged on update).
#[derive(Default)]
pub struct Mappings {
    pub attribute: Option<BTreeMap<String, String>>,
    pub idp_identifiers: Option<Vec<String>>,
    pub acr: Option<BTreeMap<String, String>>,
}

/// CreateIdentityProvider.
pub async fn create(
    ctx: &Ctx,
    pool_id: &str,
    name: &str,
    kind: &IdentityProviderTypeType,
    mut details: BTreeMap<String, String>,
    mappings: Mappings,
) -> ApiResult<IdentityProviderType> {
    let Mappings { attribute: attribute_mapping, idp_identifiers, acr: acr_mapping } = mappings;
    check(name, kind, &details)?;
    if name == "COGNITO" {
        return Err(ApiError::invalid_parameter("COGNITO is a reserved provider name."));
    }
    seal_secret(ctx, pool_id, name, &mut details)?;
    let now = ctx.now_ms();
    let stored = StoredIdentityProvider {
        provider_type: kind.as_str().to_owned(),
        details,
        attribute_mapping: attribute_mapping.unwrap_or_default(),
        idp_identifiers: idp_identifiers.unwrap_or_default(),
        acr_mapping: acr_mapping.unwrap_or_default(),
        created_ms: now,
        modified_ms: now,
    };
    modify_pool(ctx, pool_id, |doc| {
        if doc.identity_providers.contains_key(name) {
            return Err(ApiError::new(
                ErrorCode::DuplicateProviderException,
                format!("A provider with the name {name} already exists in this user pool."),
            ));
        }
        if let Some(taken) = duplicate_identifier(doc, name, &stored.idp_identifiers) {
            return Err(ApiError::new(
                ErrorCode::DuplicateProviderException,
                format!("The IdP identifier {taken} is already in use."),
            ));
        }
        if doc.identity_providers.len() >= MAX_PER_POOL {
            return Err(ApiError::limit_exceeded(format!(
                "A user pool can have at most {MAX_PER_POOL} identity providers."
            )));
        }
        doc.identity_providers.insert(name.to_owned(), stored.clone());
        Ok(())
    })
    .await?;
    view(ctx, pool_id, name, &stored)
}

/// UpdateIdentityProvider: what is given replaces what was.
pub async fn update(
    ctx: &Ctx,
    pool_id: &str,
    name: &str,
    details: Option<BTreeMap<String, String>>,
    mappings: Mappings,
) -> ApiResult<IdentityProviderType> {
    let Mappings { attribute: attribute_mapping, idp_identifiers, acr: acr_mapping } = mappings;
    let mut details = details;
    if let Some(details) = details.as_mut() {
        seal_secret(ctx, pool_id, name, details)?;
    }
    let now = ctx.now_ms();
    let doc = modify_pool(ctx, pool_id, |doc| {
        if let Some(identifiers) = &idp_identifiers {
            if let Some(taken) = duplicate_identifier(doc, name, identifiers) {
                return Err(ApiError::new(
                    ErrorCode::DuplicateProviderException,
                    format!("The IdP identifier {taken} is already in use."),
                ));
            }
        }
        let stored = doc.identity_providers.get_mut(name).ok_or_else(|| not_found(name))?;
        if let Some(details) = &details {
            let kind = IdentityProviderTypeType::from(stored.provider_type.as_str());
            check(name, &kind, details)?;
            stored.details = details.clone();
        }
        if let Some(mapping) = &attribute_mapping {
            stored.attribute_mapping = mapping.clone();
        }
        if let Some(identifiers) = &idp_identifiers {
            stored.idp_identifiers = identifiers.clone();
        }
        if let Some(mapping) = &acr_mapping {
            stored.acr_mapping = mapping.clone();
        }
        stored.modified_ms = now;
        Ok(())
    })
    .await?;
    let stored = doc.identity_providers.get(name).ok_or_else(|| not_found(name))?;
    view(ctx, pool_id, name, stored)
}

pub async fn delete(ctx: &Ctx, pool_id: &str, name: &str) -> ApiResult<()> {
    modify_pool(ctx, pool_id, |doc| doc.identity_providers.remove(name).map(|_| ()).ok_or_else(|| not_found(name)))
        .await?;
    Ok(())
}

pub async fn describe(ctx: &Ctx, pool_id: &str, name: &str) -> ApiResult<IdentityProviderType> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    let stored = doc.identity_providers.get(name).ok_or_else(|| not_found(name))?;
    view(ctx, pool_id, name, stored)
}

/// GetIdentityProviderByIdentifier.
pub async fn by_identifier(ctx: &Ctx, pool_id: &str, identifier: &str) -> ApiResult<IdentityProviderType> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    let (name, stored) = doc
        .identity_providers
        .iter()
        .find(|(_, p)| p.idp_identifiers.iter().any(|i| i == identifier))
        .ok_or_else(|| ApiError::not_found(format!("No identity provider has the identifier {identifier}.")))?;
    view(ctx, pool_id, name, stored)
}

/// The pool's providers by name, strictly after `after`.
pub async fn list(ctx: &Ctx, pool_id: &str, after: Option<&str>, limit: usize) -> ApiResult<Vec<ProviderDescription>> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    Ok(doc
        .identity_providers
        .iter()
        .filter(|(name, _)| after.is_none_or(|a| name.as_str() > a))
        .take(limit)
        .map(|(name, p)| ProviderDescription {
            creation_date: Some(timestamp(p.created_ms)),
            last_modified_date: Some(timestamp(p.modified_ms)),
            provider_name: Some(name.clone()),
            provider_type: Some(IdentityProviderTypeType::from(p.provider_type.as_str())),
        })
        .collect())
}

/// Whether the pool has a provider of that name (for app clients' SupportedIdentityProviders).
pub fn exists(doc: &PoolDoc, name: &str) -> bool {
    doc.identity_providers.contains_key(name)
}
