//! STS's Query API, for the one action the basic (classic) identity-pool flow needs:
//! `AssumeRoleWithWebIdentity` (a form-encoded `POST /` or `POST /sts`, answered in STS's XML),
//! which trades an OpenID token Cognate issued (GetOpenIdToken) for temporary credentials.
//! The domain is `cognate_core::identity::classic`; this file only speaks STS's wire format.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cognate_core::identity::classic::{self, Refusal};
use cognate_core::Ctx;

use crate::front::FrontEnd;

/// Whether a `POST /` is an STS Query call rather than a JSON 1.1 one.
pub fn is_query_call(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
}

/// STS's error document.
pub struct StsXml;

impl StsXml {
    fn refuse(&self, request_id: &str, status: StatusCode, code: &str, message: &str) -> Response {
        let body = format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message>\
             </Error><RequestId>{}</RequestId></ErrorResponse>",
            escape(code),
            escape(message),
            escape(request_id)
        );
        xml(status, request_id, body)
    }
}

impl FrontEnd for StsXml {
    fn error(&self, request_id: &str, err: &cognate_core::ApiError) -> Response {
        if err.http_status(cognate_api::Service::CognitoIdentity) >= 500 {
            return self.refuse(request_id, StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "Internal error.");
        }
        self.refuse(request_id, StatusCode::BAD_REQUEST, err.type_name(), &err.message)
    }
}

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn xml(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// Answers a form-encoded STS call.
pub async fn handle(ctx: &Ctx, body: &[u8]) -> Response {
    let request_id = ctx.request_id.clone();
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return StsXml.refuse(&request_id, StatusCode::BAD_REQUEST, "MalformedQueryString", "The form does not parse.");
    };
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match param("Action") {
        Some("AssumeRoleWithWebIdentity") => {}
        Some(other) => {
            let message = format!("Cognate's STS answers AssumeRoleWithWebIdentity only, not {other}.");
            return StsXml.refuse(&request_id, StatusCode::BAD_REQUEST, "InvalidAction", &message);
        }
        None => return StsXml.refuse(&request_id, StatusCode::BAD_REQUEST, "MissingAction", "Action is required."),
    }
    let mut missing = ["RoleArn", "RoleSessionName", "WebIdentityToken"].into_iter().filter(|n| param(n).is_none());
    if let Some(name) = missing.next() {
        let message = format!("The request must contain the parameter {name}");
        return StsXml.refuse(&request_id, StatusCode::BAD_REQUEST, "MissingParameter", &message);
    }
    let (role, session, token) =
        (param("RoleArn").unwrap_or_default(), param("RoleSessionName").unwrap_or_default(), param("WebIdentityToken"));
    let duration = match param("DurationSeconds").map(str::parse::<u64>) {
        None => None,
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(_)) => {
            return StsXml.refuse(
                &request_id,
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "DurationSeconds is not a number.",
            )
        }
    };
    let token = token.unwrap_or_default();
    match classic::assume_role_with_web_identity(ctx, role, session, token, duration).await {
        Ok(assumed) => xml(StatusCode::OK, &request_id, assumed_document(&assumed, &request_id)),
        Err(Refusal::Invalid(message)) => {
            StsXml.refuse(&request_id, StatusCode::BAD_REQUEST, "ValidationError", &message)
        }
        Err(Refusal::InvalidToken(message)) => {
            StsXml.refuse(&request_id, StatusCode::BAD_REQUEST, "InvalidIdentityToken", &message)
        }
        Err(Refusal::Expired) => StsXml.refuse(
            &request_id,
            StatusCode::BAD_REQUEST,
            "ExpiredTokenException",
            "Token expired: current date/time is past the token's exp.",
        ),
        Err(Refusal::AccessDenied(message)) => {
            StsXml.refuse(&request_id, StatusCode::FORBIDDEN, "AccessDenied", &message)
        }
        Err(Refusal::Internal(err)) => StsXml.error(&request_id, &err),
    }
}

fn assumed_document(assumed: &classic::Assumed, request_id: &str) -> String {
    let c = &assumed.credentials;
    let expiration = time::OffsetDateTime::from_unix_timestamp(c.expires_ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{NAMESPACE}\"><AssumeRoleWithWebIdentityResult>\
         <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><Audience>{}</Audience>\
         <AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         <Provider>{}</Provider></AssumeRoleWithWebIdentityResult>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
        escape(&assumed.subject),
        escape(&assumed.audience),
        escape(&assumed.assumed_role_arn),
        escape(&assumed.assumed_role_id),
        escape(&c.access_key_id),
        escape(&c.secret_key),
        escape(&c.session_token),
        escape(&expiration),
        escape(&assumed.provider),
        escape(request_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_query_calls_are_recognised() {
        assert_eq!(escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
        assert!(is_query_call(Some("application/x-www-form-urlencoded; charset=utf-8")));
        assert!(!is_query_call(Some("application/x-amz-json-1.1")) && !is_query_call(None));
    }
}
