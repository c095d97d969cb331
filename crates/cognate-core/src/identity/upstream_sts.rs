//! Credentials from an STS other than Cognate (`--sts-endpoint`, e.g. another local AWS
//! emulator's): the identity's OpenID token is traded with AssumeRoleWithWebIdentity, as
//! Cognito's enhanced flow does with AWS STS, so the credentials work against that emulator's
//! services. Its answers are STS's XML.

use cognate_api::ErrorCode;

use super::credentials::Issued;
use super::openid;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// The session name Cognito gives the roles it assumes.
const SESSION_NAME: &str = "CognitoIdentityCredentials";

fn unavailable(detail: String) -> ApiError {
    ApiError::new(ErrorCode::ExternalServiceException, detail)
}

/// The text of the first `<element>` of an XML document (STS's answers are flat enough).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
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

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_of(pairs: &[(&str, &str)]) -> String {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded_and_answers_read() {
        assert_eq!(form_of(&[("a b", "x&y=z"), ("t", "é")]), "a%20b=x%26y%3Dz&t=%C3%A9");
        let xml =
            "<R><Credentials><AccessKeyId>ASIA1</AccessKeyId><SessionToken>a&amp;b</SessionToken></Credentials></R>";
        assert_eq!(element(xml, "AccessKeyId"), Some("ASIA1"));
        assert_eq!(element(xml, "SessionToken").map(unescape).as_deref(), Some("a&b"));
        assert_eq!(element(xml, "Code"), None);
    }
}
