//! How each HTTP front end answers an error. Clients of each parse errors their own way: the
//! AWS SDKs read the JSON 1.1 / REST-JSON envelope (`__type`, `message`, `x-amzn-ErrorType`),
//! JWT libraries read the discovery and JWKS endpoints' `{"message"}`, and the OAuth 2.0 and
//! hosted-UI endpoints (coming) answer `{"error": ...}` or a page. Every front end renders
//! through [`FrontEnd`], so an operation's error is decided once and shown the right way.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cognate_api::Service;

use cognate_core::error::ApiError;

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const EXPOSED_HEADERS: &str = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date";

pub trait FrontEnd {
    fn error(&self, request_id: &str, err: &ApiError) -> Response;
}

/// The AWS JSON protocols: JSON 1.1 (cognito-idp, cognito-identity) and Cognito Sync's
/// REST-JSON, which SDKs parse from the same envelope; the service decides the HTTP status.
pub struct AwsJson(pub Service);

pub(crate) fn base_headers(headers: &mut HeaderMap, request_id: &str) {
    headers.insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    // Amplify corrects its clock skew from the Date header.
    if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now())) {
        headers.insert("date", date);
    }
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert("access-control-expose-headers", HeaderValue::from_static(EXPOSED_HEADERS));
}

pub(crate) fn json_response(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    base_headers(response.headers_mut(), request_id);
    response
}

impl FrontEnd for AwsJson {
    fn error(&self, request_id: &str, err: &ApiError) -> Response {
        let service = self.0;
        // Messages can carry client input (ids, names, targets): bounded here, so no request
        // makes a response header or body longer than a proxy or client accepts (Python's
        // http.client refuses header lines over 64 KiB).
        const BODY_MESSAGE_BYTES: usize = 4096;
        const HEADER_MESSAGE_BYTES: usize = 1024;
        fn truncated(text: &str, limit: usize) -> &str {
            if text.len() <= limit {
                return text;
            }
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &text[..end]
        }
        let code = err.type_name();
        let message = truncated(&err.message, BODY_MESSAGE_BYTES);
        let body = serde_json::json!({ "__type": code, "message": message }).to_string();
        let status = StatusCode::from_u16(err.http_status(service)).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = json_response(status, request_id, body);
        let headers = response.headers_mut();
        headers.insert(HeaderName::from_static("x-amzn-errortype"), HeaderValue::from_static(code));
        // Header values must be visible ASCII; the body carries the exact text.
        let printable: String = truncated(message, HEADER_MESSAGE_BYTES)
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .collect();
        if let Ok(message) = HeaderValue::from_str(&printable) {
            headers.insert(HeaderName::from_static("x-amzn-errormessage"), message);
        }
        response
    }
}

/// The context of an unsigned request to the pages and OAuth 2.0 / well-known endpoints: an
/// anonymous caller, a fresh request id.
pub fn anonymous_ctx(state: &std::sync::Arc<crate::AppState>) -> cognate_core::Ctx {
    let mut ctx = cognate_core::Ctx::system(&state.core, &cognate_crypto::ids::uuid_v4());
    ctx.principal = cognate_core::context::Principal::Anonymous;
    ctx
}
