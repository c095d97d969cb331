//! User pool domains (Create/Describe/Update/DeleteUserPoolDomain): where a pool's hosted
//! pages and OAuth 2.0 endpoints are served. A prefix domain `P` is served at
//! `http://P.auth.localhost:<port>` (every `*.localhost` name resolves to loopback), a custom
//! domain by its Host header; a name is one pool's only, and a pool has at most one of each
//! kind (both kept by the store's unique keys). What Cognito answers with a CloudFront
//! distribution, Cognate answers with its own public host: the address to point a custom
//! domain's DNS at.

use cognate_api::idp::{CustomDomainConfigType, DomainDescriptionType, DomainStatusType};
use cognate_store::{DomainRecord, Entity, StoreError};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::{decode_doc, encode_doc, load_pool, written, Attempts};

/// Words Cognito refuses in prefix domains.
const RESERVED: &[&str] = &["aws", "amazon", "cognito"];

/// What a domain keeps besides its name and pool.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DomainDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_domain_config: Option<CustomDomainConfigType>,
    /// 1: the classic hosted UI; 2: managed login.
    pub managed_login_version: i32,
}

fn no_such_domain() -> ApiError {
    ApiError::invalid_parameter("No such domain or user pool exists.")
}

/// Cognate's public host (`host[:port]`), the target of a custom domain.
fn public_host(ctx: &Ctx) -> String {
    let url = &ctx.settings().public_url;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// CreateUserPoolDomain: the CloudFront-style target (custom domains only) and the managed
/// login version.
pub async fn create(
    ctx: &Ctx,
    pool_id: &str,
    domain: &str,
    custom_domain_config: Option<CustomDomainConfigType>,
    managed_login_version: Option<i32>,
) -> ApiResult<(Option<String>, i32)> {
    let custom = custom_domain_config.is_some();
    if !custom {
        if let Some(word) = RESERVED.iter().find(|word| domain.contains(*word)) {
            return Err(ApiError::invalid_parameter(format!("Domain cannot contain reserved word: {word}")));
        }
    }
    let version = managed_login_version.unwrap_or(1);
    if !(1..=2).contains(&version) {
        return Err(ApiError::invalid_parameter("ManagedLoginVersion must be 1 or 2."));
    }
    load_pool(ctx, pool_id).await?;
    let now = ctx.now_ms();
    let doc = DomainDoc { custom_domain_config, managed_login_version: version };
    let record = DomainRecord {
        domain: domain.to_owned(),
        pool_id: pool_id.to_owned(),
        custom,
        created_ms: now,
        modified_ms: now,
        version: 1,
        doc: encode_doc(&doc)?,
    };
    let pool = pool_id.to_owned();
    let (inserted, existing) = ctx
        .store(move |s| {
            let inserted = s.insert_domain(&record);
            let existing = if inserted.is_err() { s.list_pool_domains(&pool)? } else { Vec::new() };
            Ok((inserted, existing))
        })
        .await?;
    match inserted {
        Ok(()) => Ok((custom.then(|| public_host(ctx)), version)),
        Err(StoreError::AlreadyExists(Entity::Domain)) if existing.iter().any(|d| d.custom == custom) => {
            Err(ApiError::invalid_parameter(format!("User pool {pool_id} already has a domain configured.")))
        }
        Err(StoreError::AlreadyExists(Entity::Domain)) => {
            Err(ApiError::invalid_parameter("Domain already associated with another user pool."))
        }
        Err(StoreError::NotFound(_)) => Err(crate::records::pool_not_found(pool_id)),
        Err(other) => Err(ApiError::internal(other)),
    }
}

/// DescribeUserPoolDomain: the domain's description, empty for a domain no pool has (as
/// Cognito answers).
pub async fn describe(ctx: &Ctx, domain: &str) -> ApiResult<DomainDescriptionType> {
    let name = domain.to_owned();
    let Some(record) = ctx.store(move |s| s.get_domain(&name)).await? else {
        return Ok(DomainDescriptionType::default());
    };
    if !ctx.sees(crate::region::of_user_pool(&record.pool_id)) {
        return Ok(DomainDescriptionType::default());
    }
    let doc: DomainDoc = decode_doc(&record.doc)?;
    Ok(DomainDescriptionType {
        aws_account_id: Some(ctx.settings().account_id.clone()),
        cloud_front_distribution: Some(public_host(ctx)),
        custom_domain_config: doc.custom_domain_config,
        domain: Some(record.domain),
        managed_login_version: Some(doc.managed_login_version),
        routing: None,
        s3_bucket: None,
        status: Some(DomainStatusType::Active),
        user_pool_id: Some(record.pool_id),
        version: Some(record.version.to_string()),
    })
}

/// UpdateUserPoolDomain: a custom domain's certificate, either kind's managed login version.
pub async fn update(
    ctx: &Ctx,
    pool_id: &str,
    domain: &str,
    custom_domain_config: Option<CustomDomainConfigType>,
    managed_login_version: Option<i32>,
) -> ApiResult<(Option<String>, i32)> {
    let mut attempts = Attempts::new(ctx, "The domain");
    loop {
        attempts.begin()?;
        let name = domain.to_owned();
        let mut record = match ctx.store(move |s| s.get_domain(&name)).await? {
            Some(record) if record.pool_id == pool_id => record,
            _ => return Err(no_such_domain()),
        };
        let mut doc: DomainDoc = decode_doc(&record.doc)?;
        if let Some(config) = &custom_domain_config {
            if !record.custom {
                return Err(ApiError::invalid_parameter("A prefix domain has no CustomDomainConfig."));
            }
            doc.custom_domain_config = Some(config.clone());
        }
        if let Some(version) = managed_login_version {
            if !(1..=2).contains(&version) {
                return Err(ApiError::invalid_parameter("ManagedLoginVersion must be 1 or 2."));
            }
            doc.managed_login_version = version;
        }
        record.doc = encode_doc(&doc)?;
        record.modified_ms = ctx.now_ms();
        record.version += 1;
        let custom = record.custom;
        let answer = ctx.store(move |s| Ok(s.update_domain(&record))).await?;
        let outcome = (custom.then(|| public_host(ctx)), doc.managed_login_version);
        if let Some(done) = written(answer, outcome, no_such_domain)? {
            return Ok(done);
        }
    }
}

pub async fn delete(ctx: &Ctx, pool_id: &str, domain: &str) -> ApiResult<()> {
    let (pool, name) = (pool_id.to_owned(), domain.to_owned());
    if ctx.store(move |s| s.delete_domain(&pool, &name)).await? {
        Ok(())
    } else {
        Err(no_such_domain())
    }
}

/// The pool's prefix and custom domain names, for DescribeUserPool.
pub async fn of_pool(ctx: &Ctx, pool_id: &str) -> ApiResult<(Option<String>, Option<String>)> {
    let pool = pool_id.to_owned();
    let domains = ctx.store(move |s| s.list_pool_domains(&pool)).await?;
    let find = |custom: bool| domains.iter().find(|d| d.custom == custom).map(|d| d.domain.clone());
    Ok((find(false), find(true)))
}
