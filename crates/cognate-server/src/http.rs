//! The HTTP surface: `POST /` for the two JSON 1.1 services (dispatched on `X-Amz-Target`),
//! the Cognito Sync REST paths, and `/health`. A request reads in one pass: target lookup ->
//! SigV4 (signed operations) -> JSON decode -> model validation -> the operation -> encode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cognate_api::validate::{validate, Invalid};
use cognate_api::{Operation, Service};
use cognate_crypto::sigv4;
use serde_json::Value;

use crate::credentials::{CredentialSource, KeyRefusal, ServerCredentials};
use crate::front::{json_response, AwsJson, FrontEnd};
use crate::ops;
use cognate_core::error::{ApiError, ProtocolCode};
use cognate_core::{Ctx, Principal, PrincipalKind};

use crate::state::AppState;

const ALLOWED_HEADERS: &str = "content-type,x-amz-target,x-amz-user-agent,cache-control,authorization,\
x-amz-date,x-amz-security-token,amz-sdk-invocation-id,amz-sdk-request,x-amz-content-sha256";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(json_rpc).options(preflight))
        .route("/sts", post(sts_query))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/_cognate/import/{job_id}", axum::routing::put(import_upload))
        .route("/_cognate/outbox", get(crate::outbox::handler))
        .route("/_cognate/ui/{pool_id}/{client}/logo", get(crate::hosted::logo))
        // Browser apps (SPAs) call these from their own origin.
        .route("/oauth2/token", post(crate::oauth::token).options(preflight))
        .route("/oauth2/revoke", post(crate::oauth::revoke).options(preflight))
        .route("/oauth2/authorize", get(crate::hosted::authorize))
        .route("/oauth2/userInfo", get(crate::hosted::user_info).options(preflight))
        .route("/oauth2/idpresponse", get(crate::hosted::idp_response))
        .route("/saml2/idpresponse", post(crate::hosted::saml_response))
        .route("/login", get(crate::hosted::login_page).post(crate::hosted::login))
        .route("/logout", get(crate::hosted::logout))
        .route("/signup", get(crate::hosted::sign_up_page).post(crate::hosted::sign_up))
        .route("/confirm", post(crate::hosted::confirm))
        .route("/challenge", post(crate::hosted::challenge))
        .route("/forgotPassword", get(crate::hosted::forgot_password_page).post(crate::hosted::forgot_password))
        .route("/confirmForgotPassword", post(crate::hosted::confirm_forgot_password))
        .route("/{pool_id}/.well-known/jwks.json", get(crate::wellknown::jwks))
        .route("/{pool_id}/.well-known/openid-configuration", get(crate::wellknown::openid_configuration))
        .fallback(rest)
        .with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let store = Arc::clone(&state.core.store);
    match tokio::task::spawn_blocking(move || store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, [("content-type", "application/json")], "{\"status\":\"ok\"}").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/json")],
            "{\"status\":\"store unavailable\"}",
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct UploadQuery {
    token: Option<String>,
}

/// The pre-signed upload URL of a user import job: `curl -T users.csv "$PreSignedUrl"`.
/// Answers as S3 does: 200 with an empty body, or S3's XML error document. A path or query
/// string that does not parse is refused like a wrong token (403), before the body is read.
async fn import_upload(
    State(state): State<Arc<AppState>>,
    job_id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<axum::extract::Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    let job_id = job_id.map(|p| p.0).unwrap_or_default();
    let token = query.ok().and_then(|q| q.0.token).unwrap_or_default();
    match crate::ops::import_jobs::upload(Arc::clone(&state.core), &job_id, &token, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(refusal) => (
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN),
            [("content-type", "application/xml")],
            refusal.xml(),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (StatusCode::OK, [("content-type", "text/plain; version=0.0.4")], state.core.metrics.render()).into_response()
}

async fn preflight() -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert("access-control-allow-methods", HeaderValue::from_static("POST, GET, PUT, DELETE, OPTIONS"));
    headers.insert("access-control-allow-headers", HeaderValue::from_static(ALLOWED_HEADERS));
    headers.insert("access-control-max-age", HeaderValue::from_static("86400"));
    response
}

/// Everything the protocol layer needs from a request, read once.
struct Incoming {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

async fn read_request(req: Request, limit: usize) -> Result<Incoming, ApiError> {
    let (parts, body) = req.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let body = to_bytes(body, limit).await.map_err(|_| {
        ApiError::protocol(ProtocolCode::RequestTooLarge, format!("Request body exceeds {limit} bytes."))
    })?;
    Ok(Incoming {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
    })
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

async fn json_rpc(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = cognate_crypto::ids::uuid_v4();
    let (service, op_name, result) = match read_request(req, state.config.max_request_bytes).await {
        // STS's Query API shares `POST /` with JSON 1.1, told apart by the form content type.
        Ok(incoming) if crate::sts::is_query_call(incoming.header("content-type")) => {
            return answer_sts(&state, request_id, &incoming.body).await;
        }
        Ok(incoming) => handle_json(&state, &request_id, incoming).await,
        Err(err) => (Service::CognitoIdp, String::new(), Err(err)),
    };
    record_request(&state, &request_id, service, &op_name, &result, started.elapsed());
    match result {
        Ok(body) => json_response(StatusCode::OK, &request_id, body.to_string()),
        Err(err) => AwsJson(service).error(&request_id, &err),
    }
}

async fn sts_query(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let request_id = cognate_crypto::ids::uuid_v4();
    match read_request(req, state.config.max_request_bytes).await {
        Ok(incoming) => answer_sts(&state, request_id, &incoming.body).await,
        Err(err) => crate::sts::StsXml.error(&request_id, &err),
    }
}

/// An STS call: unsigned (AssumeRoleWithWebIdentity is), in the default region.
async fn answer_sts(state: &Arc<AppState>, request_id: String, body: &[u8]) -> Response {
    let ctx = Ctx {
        state: Arc::clone(&state.core),
        request_id,
        principal: Principal::Anonymous,
        region: state.config.region.clone(),
        op: None,
        now: state.core.clock.now(),
        client_metadata: None,
        hosted_sign_in: false,
    };
    crate::sts::handle(&ctx, body).await
}

async fn handle_json(
    state: &Arc<AppState>,
    request_id: &str,
    incoming: Incoming,
) -> (Service, String, Result<Value, ApiError>) {
    let target = incoming.header("x-amz-target").unwrap_or_default().to_owned();
    let Some((prefix, name)) = target.rsplit_once('.') else {
        let err = ApiError::protocol(ProtocolCode::UnknownOperation, "Missing or malformed X-Amz-Target header.");
        return (Service::CognitoIdp, target, Err(err));
    };
    let Some(service) = Service::from_target_prefix(prefix) else {
        let err = ApiError::protocol(ProtocolCode::UnknownOperation, format!("Unknown operation {target}."));
        return (Service::CognitoIdp, name.to_owned(), Err(err));
    };
    let Some(op) = Operation::find(service, name) else {
        let err = ApiError::protocol(ProtocolCode::UnknownOperation, format!("Unknown operation {target}."));
        return (service, name.to_owned(), Err(err));
    };
    let result = run_operation(state, request_id, op, &incoming, parse_json_body).await;
    (service, op.name.to_owned(), result)
}

fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::protocol(ProtocolCode::Serialization, "The request body must be a JSON object.")),
        Err(e) => Err(ApiError::protocol(ProtocolCode::Serialization, format!("Malformed JSON request body: {e}."))),
    }
}

/// Authentication, decoding, validation and dispatch shared by both protocols.
async fn run_operation(
    state: &Arc<AppState>,
    request_id: &str,
    op: &'static Operation,
    incoming: &Incoming,
    decode: impl FnOnce(&[u8]) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let now = state.core.clock.now();
    let signer = if op.signed { Some(authenticate(state, op.service, incoming, now)?) } else { None };
    let body = decode(&incoming.body)?;
    if let Some(root) = op.input {
        validate(op.service.shapes(), root, &body).map_err(|invalid| match invalid {
            Invalid::Serialization(msg) => ApiError::protocol(ProtocolCode::Serialization, msg),
            Invalid::Constraint(msg) => ApiError::invalid_parameter(msg),
        })?;
    }
    // Clients send explicit nulls for absent members, even inside maps (Amplify's
    // `DEVICE_KEY: null`): null means absent everywhere.
    let mut body = body;
    strip_nulls(&mut body);
    let Some(declared) = ops::declared(op) else {
        return Err(ops::not_implemented(op));
    };
    let (principal, region) = match signer {
        Some(signed) => (signed.principal, signed.region),
        None => (unsigned_principal(declared.accepts, &body), state.config.region.clone()),
    };
    if !principal.kind().is_some_and(|kind| declared.accepts.contains(&kind)) {
        return Err(ApiError::protocol(
            ProtocolCode::AccessDenied,
            format!("The caller is not authorized to perform: {}:{}", op.service.signing_name(), op.name),
        ));
    }
    let client_metadata = body.get("ClientMetadata").filter(|m| m.is_object()).cloned();
    let ctx = Ctx {
        state: Arc::clone(&state.core),
        request_id: request_id.to_owned(),
        principal,
        region,
        op: Some(op),
        now,
        client_metadata,
        hosted_sign_in: false,
    };
    cognate_core::ratelimit::check(&ctx, op, declared.quota).await?;
    ops::dispatch(ctx, op, body).await
}

/// Who makes an unsigned call, from what it carries: an access token, else an app client,
/// else nobody in particular.
fn unsigned_principal(accepts: &[PrincipalKind], body: &Value) -> Principal {
    let carries = |member: &str| body.get(member).is_some();
    if accepts.contains(&PrincipalKind::AccessToken) && carries("AccessToken") {
        Principal::AccessToken
    } else if accepts.contains(&PrincipalKind::AppClient) && carries("ClientId") {
        Principal::AppClient
    } else {
        Principal::Anonymous
    }
}

/// A verified signature: who signed, and for which region.
struct Signed {
    principal: Principal,
    region: String,
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn authenticate(
    state: &AppState,
    service: Service,
    incoming: &Incoming,
    now: std::time::SystemTime,
) -> Result<Signed, ApiError> {
    let config = &state.config;
    let request = sigv4::Request {
        method: &incoming.method,
        path: &incoming.path,
        query: &incoming.query,
        headers: &incoming.headers,
        body: &incoming.body,
    };
    // Every client of these APIs (botocore and the AWS CLI, the Rust SDK, JS v3) signs the
    // Authorization header over the body's hash and every header it sends. Anything less is
    // refused, so that a signature cannot be stretched: a presigned URL (query-string
    // auth, `UNSIGNED-PAYLOAD`, only `host` signed, valid for up to 7 days) would otherwise
    // be bearer access to every admin operation with any body, and an unsigned
    // `X-Amz-Target` would let a captured request replay as another operation. What is
    // missing from SignedHeaders is answered with IncompleteSignatureException, AWS's
    // exception (and wording) for a signature that does not cover `host`; an unsigned
    // payload with InvalidSignatureException, as AWS's non-S3 services answer it (see
    // `cognate_crypto::sigv4`).
    let has_content_type = incoming.headers.iter().any(|(name, _)| name == "content-type");
    // The AWS SDK for JavaScript v2 never signs Content-Type (it is among its unsignable
    // headers), and AWS takes its calls. An unsigned Content-Type is accepted when it is
    // exactly the protocol's own media type, which is how the body is read anyway; any other
    // value must be signed, so a captured request still cannot be replayed as another
    // protocol.
    let own_media_type = match service {
        Service::CognitoSync => "application/json",
        Service::CognitoIdp | Service::CognitoIdentity => "application/x-amz-json-1.1",
    };
    let content_type_is_own = incoming.header("content-type").is_some_and(|v| v.eq_ignore_ascii_case(own_media_type));
    let policy = match service {
        // REST-JSON: the operation is the method and path, which are always signed. Reads
        // carry no body, so a presigned GET stays usable; writes are header-signed only.
        Service::CognitoSync => sigv4::Policy {
            allow_presigned: matches!(incoming.method.as_str(), "GET" | "HEAD"),
            require_payload_hash: true,
            required_signed_headers: if (has_content_type || !incoming.body.is_empty()) && !content_type_is_own {
                &["content-type"]
            } else {
                &[]
            },
        },
        // JSON 1.1: `X-Amz-Target` picks the operation and `Content-Type` the protocol.
        Service::CognitoIdp | Service::CognitoIdentity => sigv4::Policy {
            allow_presigned: false,
            require_payload_hash: true,
            required_signed_headers: if content_type_is_own {
                &["x-amz-target"]
            } else {
                &["content-type", "x-amz-target"]
            },
        },
    };
    let source = ServerCredentials { config, keyring: &state.core.keyring, now_ms: cognate_core::context::millis(now) };
    let session_token = incoming.header("x-amz-security-token");
    // An expired session token is told apart (ExpiredTokenException, which SDKs answer by
    // fetching new credentials); the signature is checked first all the same.
    let expired = std::cell::Cell::new(false);
    let secret_for = |key: &str| match source.resolve(key, session_token) {
        Ok(resolved) => Some(resolved.secret_access_key.expose().clone()),
        Err(KeyRefusal::Expired) => {
            expired.set(true);
            None
        }
        Err(KeyRefusal::Unknown) => None,
    };
    let skew = Duration::from_secs(config.sigv4_max_skew_seconds);
    // The skew is between the client's clock and the real one, whatever --clock-offset-seconds
    // makes of Cognate's own (credential expiry above).
    match sigv4::verify(&request, service.signing_name(), &policy, &secret_for, std::time::SystemTime::now(), skew) {
        // The credential scope's region is the namespace the request addresses: pools and
        // identity pools it creates carry it, listings show only its resources. Any AWS
        // region is served unless `--region` lists the ones this server serves.
        Ok(verified) if !config.serves_region(&verified.region) => Err(region_not_served(&verified.region)),
        Ok(verified) => {
            let resolved = source.resolve(&verified.access_key_id, session_token).map_err(|_| {
                ApiError::protocol(
                    ProtocolCode::UnrecognizedClient,
                    "The security token included in the request is invalid.",
                )
            })?;
            Ok(Signed { principal: resolved.principal(&verified.access_key_id), region: verified.region })
        }
        // The development switch relaxes the key and the signature, never their presence.
        Err(sigv4::Error::UnrecognizedClient | sigv4::Error::InvalidSignature) if config.accept_any_signature => {
            let region = sigv4_scope_region(incoming).unwrap_or_else(|| config.region.clone());
            if !config.serves_region(&region) {
                return Err(region_not_served(&region));
            }
            Ok(Signed { principal: Principal::Iam { access_key_id: String::from("(unverified)") }, region })
        }
        Err(sigv4::Error::UnrecognizedClient) if expired.get() => {
            Err(ApiError::protocol(ProtocolCode::ExpiredToken, "The security token included in the request is expired"))
        }
        Err(err) => {
            let code = match err.code() {
                "MissingAuthenticationTokenException" => ProtocolCode::MissingAuthenticationToken,
                "IncompleteSignatureException" => ProtocolCode::IncompleteSignature,
                "UnrecognizedClientException" => ProtocolCode::UnrecognizedClient,
                _ => ProtocolCode::InvalidSignature,
            };
            Err(ApiError::protocol(code, err.message()))
        }
    }
}

fn region_not_served(region: &str) -> ApiError {
    ApiError::protocol(
        ProtocolCode::InvalidSignature,
        format!("Credential should be scoped to a valid region, not '{region}'. "),
    )
}

/// The region of the request's credential scope, read without verifying anything (only for
/// the development switch that accepts any signature).
fn sigv4_scope_region(incoming: &Incoming) -> Option<String> {
    let authorization = incoming.header("authorization")?;
    let credential = authorization.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    credential.split('/').nth(2).map(str::to_owned)
}

/// Largest Cognito Sync request body, whatever `--max-request-bytes` says: an UpdateRecords
/// may carry a whole dataset (1 MB of keys and values, a value up to 1,048,575 characters),
/// and JSON escaping can make that up to six times larger (`\u0000`).
const SYNC_MAX_REQUEST_BYTES: usize = 8 << 20;

/// Cognito Sync (REST-JSON): routes by method and path template.
async fn rest(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = cognate_crypto::ids::uuid_v4();
    let limit = state.config.max_request_bytes.max(SYNC_MAX_REQUEST_BYTES);
    let incoming = match read_request(req, limit).await {
        Ok(incoming) => incoming,
        Err(err) => return AwsJson(Service::CognitoSync).error(&request_id, &err),
    };
    if incoming.method == Method::OPTIONS.as_str() {
        return preflight().await;
    }
    let Some((op, labels)) = match_sync_route(&incoming.method, &incoming.path) else {
        return (StatusCode::NOT_FOUND, [("content-type", "text/plain")], "Not Found").into_response();
    };
    let query = incoming.query.clone();
    let header_values = incoming.headers.clone();
    let result = run_operation(&state, &request_id, op, &incoming, |body| {
        let mut value = parse_json_body(body)?;
        bind_rest_members(op, &mut value, &labels, &query, &header_values);
        Ok(value)
    })
    .await;
    record_request(&state, &request_id, Service::CognitoSync, op.name, &result, started.elapsed());
    match result {
        Ok(body) => json_response(StatusCode::OK, &request_id, body.to_string()),
        Err(err) => AwsJson(Service::CognitoSync).error(&request_id, &err),
    }
}

/// Finds the sync operation whose `requestUri` template matches, with the decoded labels.
fn match_sync_route(method: &str, path: &str) -> Option<(&'static Operation, Vec<(String, String)>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Operation::of_service(Service::CognitoSync).filter(|op| op.http_method == method).find_map(|op| {
        let template = op.http_uri.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut labels = Vec::new();
        for (part, segment) in parts.iter().zip(&segments) {
            if let Some(label) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                labels.push((label.to_owned(), percent_decode(segment)));
            } else if part != segment {
                return None;
            }
        }
        Some((op, labels))
    })
}

/// Moves path labels, query parameters and bound headers into the input object so that the
/// one validator and decoder serve REST-JSON too.
fn bind_rest_members(
    op: &Operation,
    value: &mut Value,
    labels: &[(String, String)],
    query: &str,
    headers: &[(String, String)],
) {
    use cognate_api::validate::{Kind, Location};
    let (Some(root), Value::Object(map)) = (op.input, value) else {
        return;
    };
    let Some(shape) = op.service.shapes().get(usize::from(root)) else {
        return;
    };
    let Kind::Structure(members) = &shape.kind else { return };
    let query_pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    for member in members.iter() {
        let Some((location, wire_name)) = member.location else {
            continue;
        };
        let found = match location {
            Location::Uri => labels.iter().find(|(k, _)| k == wire_name).map(|(_, v)| v.clone()),
            Location::Querystring => query_pairs.iter().find(|(k, _)| k == wire_name).map(|(_, v)| v.clone()),
            Location::Header => {
                let lower = wire_name.to_ascii_lowercase();
                headers.iter().find(|(k, _)| *k == lower).map(|(_, v)| v.clone())
            }
        };
        if let Some(text) = found {
            let is_integer = matches!(
                op.service.shapes().get(usize::from(member.shape)).map(|s| &s.kind),
                Some(Kind::Integer { .. })
            );
            let json = match (is_integer, text.parse::<i64>()) {
                (true, Ok(n)) => Value::from(n),
                _ => Value::String(text),
            };
            map.insert(member.name.to_owned(), json);
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn record_request(
    state: &AppState,
    request_id: &str,
    service: Service,
    op: &str,
    result: &Result<Value, ApiError>,
    took: Duration,
) {
    // Only model operation names become metric labels (a client controls the target header).
    let known = Operation::find(service, op).map_or("unknown", |o| o.name);
    let outcome = match result {
        Ok(_) => "ok",
        Err(err) => err.type_name(),
    };
    state.core.metrics.observe(service.signing_name(), known, outcome, took);
    let micros = took.as_micros() as u64;
    match result {
        Ok(_) => tracing::info!(request_id, service = service.signing_name(), op, micros, "ok"),
        Err(err) => {
            tracing::info!(
                request_id,
                service = service.signing_name(),
                op,
                micros,
                error = err.type_name(),
                "client error"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_routes_match_templates_and_decode_labels() {
        let (op, labels) =
            match_sync_route("GET", "/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/ds1")
                .expect("route");
        assert_eq!(op.name, "DescribeDataset");
        assert_eq!(labels[0], ("IdentityPoolId".to_owned(), "us-east-1:abc".to_owned()));
        let (op, _) = match_sync_route("POST", "/identitypools/p/identity/i/device").expect("route");
        assert_eq!(op.name, "RegisterDevice");
        assert!(match_sync_route("GET", "/nothing/here").is_none());
    }

    #[test]
    fn nulls_are_absent_even_in_maps() {
        let mut body = serde_json::json!({"A": null, "M": {"K": null, "L": "v"}, "L": [{"X": null}]});
        strip_nulls(&mut body);
        assert_eq!(body, serde_json::json!({"M": {"L": "v"}, "L": [{}]}));
    }

    #[test]
    fn json_bodies_must_be_objects() {
        assert!(parse_json_body(b"").is_ok());
        assert!(parse_json_body(b"{\"a\":1}").is_ok());
        assert!(parse_json_body(b"[1]").is_err());
        assert!(parse_json_body(b"{not json").is_err());
    }
}
