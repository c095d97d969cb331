//! What a SigV4 signature must cover (issue 9, items 11 and 12).
//!
//! SigV4 lets a signer choose what its signature covers; Cognito's clients
//! always sign the Authorization header over the body's hash, `host`,
//! `content-type` and `x-amz-target`. The server refuses anything less, so a
//! presigned URL cannot become a week-long bearer token for the admin API,
//! and a captured request cannot be replayed as another operation. Requests
//! are signed here with `aws-sigv4` (the SDK's signer) with exactly the
//! headers and payload each attack needs; the real SDK shows that normal
//! calls still work. None of this depends on the store, so it runs on SQLite.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use cognate_e2e::{
    ok, sigv4_headers, unique_name, url_encode, Raw, RawResponse, Server, ACCESS_KEY, IDP_PREFIX, REGION, SECRET_KEY,
};
use serde_json::json;

const PRESIGNED_REFUSED: &str = "Query-string authentication is not supported for this request.";
const AUTH_ERRORS: [&str; 4] = [
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "UnrecognizedClientException",
];

/// Whether the request got past authentication (to whatever the operation
/// answers: sync operations may not be implemented yet).
fn past_auth(resp: &RawResponse) -> bool {
    let refused = resp.status == 400
        && serde_json::from_str::<serde_json::Value>(&resp.body).is_ok()
        && AUTH_ERRORS.contains(&resp.error_type().as_str());
    !refused
}

fn idp(op: &str) -> String {
    format!("{IDP_PREFIX}.{op}")
}

/// Header or query-parameter name/value pairs.
type Pairs = Vec<(String, String)>;

/// How a test request is signed.
struct Sig<'a> {
    method: &'a str,
    url: &'a str,
    /// The headers given to the signer, so the ones it signs (plus `host`,
    /// which must be among them for the header form).
    signed: &'a [(String, String)],
    /// `None` signs `UNSIGNED-PAYLOAD`.
    body: Option<&'a [u8]>,
    service: &'a str,
    /// `Some(expires)` signs a presigned URL (query-string auth).
    presign: Option<u64>,
    /// Send the payload hash in `x-amz-content-sha256` (signed).
    content_sha256_header: bool,
}

impl Sig<'_> {
    /// The headers and query parameters the signature adds.
    fn sign(&self) -> (Pairs, Pairs) {
        let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "e2e-sigv4").into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(expires));
        }
        if self.content_sha256_header {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let body = match self.body {
            Some(bytes) => SignableBody::Bytes(bytes),
            None => SignableBody::UnsignedPayload,
        };
        let signable = SignableRequest::new(
            self.method,
            self.url,
            self.signed.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .expect("signable request");
        let (instructions, _signature) = sign(signable, &params).expect("sign").into_parts();
        let headers = instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let query = instructions.params().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        (headers, query)
    }

    /// A presigned URL: `url` with the signing parameters appended.
    fn presigned_url(&self) -> String {
        let (_, params) = self.sign();
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect();
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{}", self.url, query.join("&"))
    }
}

/// Sends `method url` with exactly these headers (`host` is left to the
/// HTTP client, which sets the same value) and body.
async fn send(raw: &Raw, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> RawResponse {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = raw.http.request(method, url).body(body.to_vec());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.expect("send request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.expect("read body");
    RawResponse { status, headers, body }
}

fn host(raw: &Raw) -> (String, String) {
    ("host".into(), raw.base.trim_start_matches("http://").to_string())
}

fn json_headers(target: &str) -> Vec<(String, String)> {
    vec![("content-type".into(), "application/x-amz-json-1.1".into()), ("x-amz-target".into(), target.to_string())]
}

/// A pool with a user `victim` in it.
async fn pool_with_victim(server: &Server) -> String {
    let pool = server.new_pool(|p| p).await;
    ok(server.idp().admin_create_user().user_pool_id(&pool).username("victim").send().await);
    pool
}

async fn enabled(server: &Server, pool: &str) -> bool {
    server.get_user(pool, "victim").await.enabled()
}

/// Item 11: a presigned URL (only `host` signed, `UNSIGNED-PAYLOAD`, 7 days)
/// no longer calls admin operations on `POST /`, whatever the body.
#[tokio::test]
async fn presigned_url_cannot_call_json_operations() {
    let server = Server::sqlite().await;
    let pool = pool_with_victim(&server).await;
    let raw = server.raw();
    let root = format!("{}/", raw.base);
    let week = Sig {
        method: "POST",
        url: &root,
        signed: &[],
        body: None,
        service: "cognito-idp",
        presign: Some(604_800),
        content_sha256_header: false,
    };
    let url = week.presigned_url();
    assert!(url.contains("X-Amz-SignedHeaders=host&") && url.contains("X-Amz-Expires=604800"), "{url}");

    let resp = send(&raw, "POST", &url, &json_headers(&idp("ListUserPools")), br#"{"MaxResults":10}"#).await;
    let msg = resp.assert_error("IncompleteSignatureException");
    assert!(msg.starts_with(PRESIGNED_REFUSED), "{msg}");
    assert_eq!(resp.header("x-amzn-errortype").as_deref(), Some("IncompleteSignatureException"));
    assert!(!resp.body.contains("UserPools"), "{}", resp.body);

    let body = json!({"UserPoolId": pool, "Username": "victim"}).to_string();
    let resp = send(&raw, "POST", &url, &json_headers(&idp("AdminDisableUser")), body.as_bytes()).await;
    resp.assert_error("IncompleteSignatureException");
    assert!(enabled(&server, &pool).await, "the presigned URL disabled the user");

    // Not even a presigned URL that covers everything an SDK would sign: the
    // form itself is refused on the JSON APIs.
    let headers = json_headers(&idp("AdminDisableUser"));
    let mut signed = vec![host(&raw)];
    signed.extend(headers.iter().cloned());
    let full = Sig { signed: &signed, body: Some(body.as_bytes()), presign: Some(300), ..week };
    let resp = send(&raw, "POST", &full.presigned_url(), &headers, body.as_bytes()).await;
    resp.assert_error("IncompleteSignatureException");
    assert!(enabled(&server, &pool).await);

    // cognito-identity is a JSON 1.1 API too.
    let identity = Sig { service: "cognito-identity", ..week };
    let target = format!("{}.ListIdentityPools", cognate_e2e::IDENTITY_PREFIX);
    let resp = send(&raw, "POST", &identity.presigned_url(), &json_headers(&target), br#"{"MaxResults":5}"#).await;
    resp.assert_error("IncompleteSignatureException");
}

const SYNC_POOL: &str = "us-east-1%3A11111111-2222-3333-4444-555555555555";
const SYNC_IDENTITY: &str = "us-east-1%3A66666666-7777-8888-9999-000000000000";

/// Item 11 on Cognito Sync: writes refuse query-string auth; reads (no body)
/// may still be presigned.
#[tokio::test]
async fn presigned_url_cannot_write_cognito_sync() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let device = format!("{}/identitypools/{SYNC_POOL}/identity/{SYNC_IDENTITY}/device", raw.base);
    let dataset = format!("{}/identitypools/{SYNC_POOL}/identities/{SYNC_IDENTITY}/datasets/ds1", raw.base);
    let content_type = vec![("content-type".to_string(), "application/json".to_string())];
    let body = br#"{"Platform":"GCM","Token":"t"}"#;

    let post = Sig {
        method: "POST",
        url: &device,
        signed: &[],
        body: None,
        service: "cognito-sync",
        presign: Some(604_800),
        content_sha256_header: false,
    };
    let resp = send(&raw, "POST", &post.presigned_url(), &content_type, body).await;
    let msg = resp.assert_error("IncompleteSignatureException");
    assert!(msg.starts_with(PRESIGNED_REFUSED), "{msg}");

    let delete = Sig { method: "DELETE", url: &dataset, ..post };
    send(&raw, "DELETE", &delete.presigned_url(), &[], b"").await.assert_error("IncompleteSignatureException");

    // A presigned read gets past authentication (to whatever the operation
    // answers).
    let list = format!("{}/identitypools/{SYNC_POOL}/identities/{SYNC_IDENTITY}/datasets", raw.base);
    let get = Sig { method: "GET", url: &list, body: Some(b""), presign: Some(300), ..post };
    let resp = send(&raw, "GET", &get.presigned_url(), &[], b"").await;
    assert!(past_auth(&resp), "presigned GET refused: {}", resp.body);
}

/// Item 11: the header form must cover the body; `UNSIGNED-PAYLOAD` is refused
/// (as AWS's non-S3 services do: they hash the body, so the signature does not
/// match), while a hex hash that matches the body still works.
#[tokio::test]
async fn unsigned_payload_header_is_refused() {
    let server = Server::sqlite().await;
    let pool = pool_with_victim(&server).await;
    let raw = server.raw();
    let root = format!("{}/", raw.base);
    let body = json!({"UserPoolId": pool, "Username": "victim"}).to_string();
    let mut headers = vec![host(&raw)];
    headers.extend(json_headers(&idp("AdminDisableUser")));
    headers.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    let unsigned = Sig {
        method: "POST",
        url: &root,
        signed: &headers,
        body: None,
        service: "cognito-idp",
        presign: None,
        content_sha256_header: false,
    };
    let (auth, _) = unsigned.sign();
    assert!(auth.iter().any(|(k, v)| k == "authorization" && v.contains("x-amz-content-sha256")), "{auth:?}");
    let mut sent = headers.clone();
    sent.extend(auth);
    send(&raw, "POST", &root, &sent, body.as_bytes()).await.assert_error("InvalidSignatureException");
    assert!(enabled(&server, &pool).await, "an unsigned payload disabled the user");

    // The body's SHA-256 in the header: accepted, and it must match the body.
    let mut headers = vec![host(&raw)];
    headers.extend(json_headers(&idp("AdminGetUser")));
    let hashed = Sig { signed: &headers, body: Some(body.as_bytes()), content_sha256_header: true, ..unsigned };
    let (auth, _) = hashed.sign();
    assert!(auth.iter().any(|(k, v)| k == "x-amz-content-sha256" && v.len() == 64), "{auth:?}");
    let mut sent = headers.clone();
    sent.extend(auth);
    let resp = send(&raw, "POST", &root, &sent, body.as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let other = json!({"UserPoolId": pool, "Username": "someone-else"}).to_string();
    send(&raw, "POST", &root, &sent, other.as_bytes()).await.assert_error("InvalidSignatureException");
}

/// Signs a JSON 1.1 request over `host` and the `extra` headers only, and
/// returns the headers to send: the signature plus content-type and target.
fn signed_over(raw: &Raw, extra: &[&str], target: &str, body: &str) -> Vec<(String, String)> {
    signed_over_typed(raw, extra, target, body, "application/x-amz-json-1.1")
}

/// [`signed_over`] with another Content-Type.
fn signed_over_typed(raw: &Raw, extra: &[&str], target: &str, body: &str, content_type: &str) -> Vec<(String, String)> {
    let mut all = json_headers(target);
    all[0].1 = content_type.to_owned();
    let mut signed = vec![host(raw)];
    signed.extend(all.iter().filter(|(k, _)| extra.contains(&k.as_str())).cloned());
    let sig = sigv4_headers(
        &format!("{}/", raw.base),
        &signed,
        body.as_bytes(),
        ACCESS_KEY,
        SECRET_KEY,
        SystemTime::now(),
        REGION,
        "cognito-idp",
    );
    let mut headers = all;
    headers.extend(sig);
    headers
}

fn signed_headers_of(headers: &[(String, String)]) -> String {
    let auth = headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str()).unwrap_or_default();
    auth.split("SignedHeaders=").nth(1).and_then(|s| s.split(',').next()).unwrap_or_default().to_string()
}

/// Item 12: `x-amz-target` must be among SignedHeaders, and `content-type` too unless it is
/// exactly JSON 1.1's own media type (the AWS SDK for JavaScript v2 never signs it), with
/// AWS's exception and wording for a signature that leaves out `host`.
#[tokio::test]
async fn target_and_content_type_must_be_signed() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let body = json!({"MaxResults": 10}).to_string();
    let other_type = "application/x-amz-json-1.0";

    let headers = signed_over_typed(&raw, &[], &idp("ListUserPools"), &body, other_type);
    assert_eq!(signed_headers_of(&headers), "host;x-amz-date");
    let resp = raw.post(&headers, body.clone().into_bytes()).await;
    let msg = resp.assert_error("IncompleteSignatureException");
    assert!(
        msg.starts_with(
            "'Content-Type' must be a 'SignedHeader' in the AWS Authorization. \
             'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization. \
             Authorization=AWS4-HMAC-SHA256 Credential=test/"
        ),
        "{msg}"
    );
    assert!(msg.ends_with("SignedHeaders=host;x-amz-date"), "{msg}");
    assert!(!msg.contains("Signature="), "the signature is never echoed: {msg}");

    let headers = signed_over(&raw, &["content-type"], &idp("ListUserPools"), &body);
    let msg = raw.post(&headers, body.clone().into_bytes()).await.assert_error("IncompleteSignatureException");
    assert!(msg.starts_with("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."), "{msg}");
    let headers = signed_over(&raw, &[], &idp("ListUserPools"), &body);
    let msg = raw.post(&headers, body.clone().into_bytes()).await.assert_error("IncompleteSignatureException");
    assert!(msg.starts_with("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."), "{msg}");

    // Any Content-Type but the protocol's own must be signed.
    let headers = signed_over_typed(&raw, &["x-amz-target"], &idp("ListUserPools"), &body, other_type);
    let msg = raw.post(&headers, body.clone().into_bytes()).await.assert_error("IncompleteSignatureException");
    assert!(msg.starts_with("'Content-Type' must be a 'SignedHeader' in the AWS Authorization."), "{msg}");

    // As the JS SDK v2 signs: the target, and JSON 1.1's own Content-Type left unsigned.
    let headers = signed_over(&raw, &["x-amz-target"], &idp("ListUserPools"), &body);
    assert_eq!(signed_headers_of(&headers), "host;x-amz-date;x-amz-target");
    let resp = raw.post(&headers, body.clone().into_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.body);

    // Signed over all three, as the other SDKs sign: accepted.
    let headers = signed_over(&raw, &["content-type", "x-amz-target"], &idp("ListUserPools"), &body);
    assert_eq!(signed_headers_of(&headers), "content-type;host;x-amz-date;x-amz-target");
    let resp = raw.post(&headers, body.into_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

/// Item 12, the attack: a request signed without its target, captured as
/// AdminGetUser, replayed with `X-Amz-Target: AdminDisableUser`.
#[tokio::test]
async fn captured_request_cannot_replay_as_another_operation() {
    let server = Server::sqlite().await;
    let pool = pool_with_victim(&server).await;
    let raw = server.raw();
    let body = json!({"UserPoolId": pool, "Username": "victim"}).to_string();

    let captured = signed_over(&raw, &[], &idp("AdminGetUser"), &body);
    raw.post(&captured, body.clone().into_bytes()).await.assert_error("IncompleteSignatureException");
    let replayed: Vec<(String, String)> = captured
        .into_iter()
        .map(|(k, v)| if k == "x-amz-target" { (k, idp("AdminDisableUser")) } else { (k, v) })
        .collect();
    raw.post(&replayed, body.clone().into_bytes()).await.assert_error("IncompleteSignatureException");
    assert!(enabled(&server, &pool).await, "the replayed request disabled the user");

    // A request signed as SDKs sign it covers its target: changed, it no
    // longer verifies.
    let captured = signed_over(&raw, &["content-type", "x-amz-target"], &idp("AdminGetUser"), &body);
    let resp = raw.post(&captured, body.clone().into_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let replayed: Vec<(String, String)> = captured
        .into_iter()
        .map(|(k, v)| if k == "x-amz-target" { (k, idp("AdminDisableUser")) } else { (k, v) })
        .collect();
    raw.post(&replayed, body.into_bytes()).await.assert_error("InvalidSignatureException");
    assert!(enabled(&server, &pool).await, "the replayed request disabled the user");
}

/// Item 12 on Cognito Sync: `host` always, and `content-type` when the request has one or a
/// body, unless it is REST-JSON's own `application/json`.
#[tokio::test]
async fn cognito_sync_must_sign_host_and_content_type() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let device = format!("{}/identitypools/{SYNC_POOL}/identity/{SYNC_IDENTITY}/device", raw.base);
    let body = br#"{"Platform":"GCM","Token":"t"}"#;
    let content_type = ("content-type".to_string(), "application/json".to_string());
    let other_type = ("content-type".to_string(), "application/x-amz-json-1.1".to_string());

    // A write signed over host only, a Content-Type other than REST-JSON's own sent unsigned.
    let host_only = vec![host(&raw)];
    let post = Sig {
        method: "POST",
        url: &device,
        signed: &host_only,
        body: Some(body),
        service: "cognito-sync",
        presign: None,
        content_sha256_header: false,
    };
    let (mut headers, _) = post.sign();
    headers.push(other_type);
    let msg = send(&raw, "POST", &device, &headers, body).await.assert_error("IncompleteSignatureException");
    assert!(msg.starts_with("'Content-Type' must be a 'SignedHeader' in the AWS Authorization."), "{msg}");

    // REST-JSON's own Content-Type unsigned, as the JS SDK v2 sends it: past authentication.
    let (mut headers, _) = post.sign();
    headers.push(content_type.clone());
    let resp = send(&raw, "POST", &device, &headers, body).await;
    assert!(past_auth(&resp), "the SDK v2's write refused: {}", resp.body);

    // Signed as the SDKs sign it: past authentication.
    let with_type = vec![host(&raw), content_type.clone()];
    let (mut headers, _) = Sig { signed: &with_type, ..post }.sign();
    headers.push(content_type);
    let resp = send(&raw, "POST", &device, &headers, body).await;
    assert!(past_auth(&resp), "signed write refused: {}", resp.body);

    // A read without a body or content-type needs only host.
    let list = format!("{}/identitypools/{SYNC_POOL}/identities/{SYNC_IDENTITY}/datasets", raw.base);
    let (headers, _) = Sig { method: "GET", url: &list, body: Some(b""), ..post }.sign();
    let resp = send(&raw, "GET", &list, &headers, b"").await;
    assert!(past_auth(&resp), "signed read refused: {}", resp.body);
}

/// The real SDKs sign what is required: normal calls keep working.
#[tokio::test]
async fn sdk_calls_still_work() {
    let server = Server::sqlite().await;
    let idp = server.idp();
    let pool = ok(idp.create_user_pool().pool_name(unique_name("sigv4")).send().await).user_pool.unwrap().id.unwrap();
    ok(idp.admin_create_user().user_pool_id(&pool).username("someone").send().await);
    ok(idp.admin_disable_user().user_pool_id(&pool).username("someone").send().await);
    assert!(!server.get_user(&pool, "someone").await.enabled());
    ok(idp.admin_enable_user().user_pool_id(&pool).username("someone").send().await);
    assert_eq!(ok(idp.list_user_pools().max_results(10).send().await).user_pools().len(), 1);
    ok(server.identity().list_identity_pools().max_results(5).send().await);
    // The raw helper the other suites use signs like the SDK.
    let resp = server.raw().idp("ListUserPools", json!({"MaxResults": 10})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}
