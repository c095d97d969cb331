//! Credentials from an STS other than Cognate (`--sts-endpoint`, e.g. another local AWS
//! emulator's): the identity's OpenID token is traded with AssumeRoleWithWebIdentity, as
//! Cognito's enhanced flow does with AWS STS, so the credentials work against that emulator's
//! services. Its answers are STS's XML.

use cognate_api::ErrorCode;

use crate::aws::{element, form_of, unescape};

use super::credentials::Issued;
use super::openid;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// The session name Cognito gives the roles it assumes.
const SESSION_NAME: &str = "CognitoIdentityCredentials";

fn unavailable(detail: String) -> ApiError {
    ApiError::new(ErrorCode::ExternalServiceException, detail)
}

pub async fn credentials(
    ctx: &Ctx,
    endpoint: &str,
    identity_pool_id: &str,
    identity_id: &str,
    amr: Vec<String>,
    role_arn: &str,
) -> ApiResult<Issued> {
    let token = openid::token(ctx, identity_pool_id, identity_id, amr, openid::DEFAULT_LIFETIME_SECS).await?;
    let form = form_of(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", SESSION_NAME),
        ("WebIdentityToken", &token),
    ]);
    let answer = ctx
        .state
        .fetch
        .post_form(endpoint, form)
        .await
        .map_err(|e| unavailable(format!("The STS at {endpoint} could not be reached: {e}")))?;
    if let Some(code) = element(&answer, "Code") {
        let message = element(&answer, "Message").map(unescape).unwrap_or_default();
        return Err(unavailable(format!("The STS at {endpoint} refused the role: {code}: {message}")));
    }
    let field = |name: &str| {
        element(&answer, name)
            .map(unescape)
            .ok_or_else(|| unavailable(format!("The STS at {endpoint} answered without {name}.")))
    };
    let expiration = field("Expiration")?;
    let expires = time::OffsetDateTime::parse(&expiration, &time::format_description::well_known::Rfc3339)
        .map_err(|e| unavailable(format!("The STS at {endpoint} answered an Expiration of {expiration:?}: {e}")))?;
    Ok(Issued {
        access_key_id: field("AccessKeyId")?,
        secret_key: field("SecretAccessKey")?,
        session_token: field("SessionToken")?,
        expires_ms: i64::try_from(expires.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
    })
}
