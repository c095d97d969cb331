//! Requests are signed with the `aws-sigv4` crate, the signer the AWS SDK
//! for Rust uses, so these tests check interoperability with real clients
//! rather than agreement of this module with itself.

use super::*;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

const AKID: &str = "AKIDCOGNATETEST";
const SECRET: &str = "wJalr/K7MDENG+bPxRfiCYzzTESTKEY";
const SKEW: Duration = Duration::from_secs(300);
const JSON_BODY: &[u8] = br#"{"MaxResults":10}"#;

fn at(amz: &str) -> SystemTime {
    let secs = parse_amz_date(amz).unwrap();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

fn secrets(akid: &str) -> Option<String> {
    (akid == AKID).then(|| SECRET.to_owned())
}

/// A request as the server would receive it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn req(&self) -> Request<'_> {
        Request { method: &self.method, path: &self.path, query: &self.query, headers: &self.headers, body: &self.body }
    }

    fn verify_at(&self, service: &str, now: &str) -> Result<Verified, Error> {
        self.verify_with(&Policy::ANY, service, now)
    }

    fn verify_with(&self, policy: &Policy, service: &str, now: &str) -> Result<Verified, Error> {
        verify(&self.req(), service, policy, &secrets, at(now), SKEW)
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| n != name);
    }

    fn authorization(&self) -> &str {
        header(&self.headers, "authorization").unwrap()
    }
}

struct Signer<'a> {
    method: &'a str,
    url: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    service: &'a str,
    region: &'a str,
    time: &'a str,
    secret: &'a str,
    settings: SigningSettings,
    unsigned_payload: bool,
}

impl<'a> Signer<'a> {
    fn json(target: &'a str, time: &'a str) -> Self {
        Signer {
            method: "POST",
            url: "http://localhost:9229/",
            headers: vec![("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)],
            body: JSON_BODY,
            service: "cognito-idp",
            region: "us-east-1",
            time,
            secret: SECRET,
            settings: SigningSettings::default(),
            unsigned_payload: false,
        }
    }

    fn sign(self) -> Received {
        let identity: Identity = Credentials::new(AKID, self.secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(at(self.time))
            .settings(self.settings)
            .build()
            .unwrap()
            .into();
        let body = if self.unsigned_payload { SignableBody::UnsignedPayload } else { SignableBody::Bytes(self.body) };
        let signable = SignableRequest::new(self.method, self.url, self.headers.iter().copied(), body).unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut builder = http::Request::builder().method(self.method).uri(self.url);
        for (n, v) in &self.headers {
            builder = builder.header(*n, *v);
        }
        let mut request = builder.body(self.body.to_vec()).unwrap();
        instructions.apply_to_request_http1x(&mut request);

        // What arrives at the server: hyper adds Host from the URI.
        let uri = request.uri().clone();
        let mut headers = vec![("host".to_owned(), uri.authority().unwrap().as_str().to_owned())];
        for (n, v) in request.headers() {
            headers.push((n.as_str().to_owned(), v.to_str().unwrap().to_owned()));
        }
        Received {
            method: self.method.to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers,
            body: request.into_body(),
        }
    }
}

const T0: &str = "20240101T000000Z";

fn signed_json() -> Received {
    Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0).sign()
}

#[test]
fn sdk_signed_json_request_verifies() {
    let r = signed_json();
    assert!(r
        .authorization()
        .starts_with("AWS4-HMAC-SHA256 Credential=AKIDCOGNATETEST/20240101/us-east-1/cognito-idp/aws4_request"));
    let v = r.verify_at("cognito-idp", "20240101T000100Z").unwrap();
    assert_eq!(
        v,
        Verified { access_key_id: AKID.to_owned(), region: "us-east-1".to_owned(), service: "cognito-idp".to_owned() }
    );
}

#[test]
fn any_region_is_accepted() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.region = "eu-west-3";
    let v = s.sign().verify_at("cognito-idp", T0).unwrap();
    assert_eq!(v.region, "eu-west-3");
}

#[test]
fn skew_bounds_are_inclusive() {
    let r = signed_json();
    assert!(r.verify_at("cognito-idp", "20240101T000500Z").is_ok());
    assert!(r.verify_at("cognito-idp", "20231231T235500Z").is_ok());
    assert!(r.verify_at("cognito-idp", "20240101T000501Z").is_err());
    assert!(r.verify_at("cognito-idp", "20231231T235459Z").is_err());
}

const REST_URL: &str = "http://localhost:9229/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/ds1";

fn rest_signer<'a>(url: &'a str, method: &'a str, body: &'a [u8]) -> Signer<'a> {
    Signer {
        method,
        url,
        headers: vec![("content-type", "application/json")],
        body,
        service: "cognito-sync",
        region: "us-east-1",
        time: T0,
        secret: SECRET,
        settings: SigningSettings::default(),
        unsigned_payload: false,
    }
}

#[test]
fn sdk_signed_rest_request_with_query_verifies() {
    let url = format!("{REST_URL}?maxResults=10&nextToken=a%2Bb%2Fc%3D%3D&lastSyncCount=0");
    let r = rest_signer(&url, "GET", b"").sign();
    assert_eq!(r.path, "/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/ds1");
    r.verify_at("cognito-sync", T0).unwrap();

    // The path is covered.
    let mut other = r.clone();
    other.path = other.path.replace("ds1", "ds2");
    assert_eq!(other.verify_at("cognito-sync", T0), Err(Error::InvalidSignature));
    // So is the query.
    let mut other = r.clone();
    other.query = other.query.replace("maxResults=10", "maxResults=11");
    assert_eq!(other.verify_at("cognito-sync", T0), Err(Error::InvalidSignature));
    // Reordering parameters does not matter: the canonical form sorts them.
    let mut other = r;
    other.query = "lastSyncCount=0&nextToken=a%2Bb%2Fc%3D%3D&maxResults=10".to_owned();
    other.verify_at("cognito-sync", T0).unwrap();
}

#[test]
fn sdk_signed_rest_post_verifies() {
    let body = br#"{"SyncSessionToken":"x","RecordPatches":[]}"#;
    let r = rest_signer(REST_URL, "POST", body).sign();
    r.verify_at("cognito-sync", T0).unwrap();
    let mut tampered = r;
    tampered.body = br#"{"SyncSessionToken":"y","RecordPatches":[]}"#.to_vec();
    assert_eq!(tampered.verify_at("cognito-sync", T0), Err(Error::InvalidSignature));
}

/// The SDK encodes the wire path once more when signing, so `%3A` on the
/// wire is `%253A` in the canonical request.
#[test]
fn rest_paths_are_double_encoded() {
    let path = "/identitypools/us-east-1%3Aabc/identities/us-east-1%3Adef/datasets/ds1";
    assert_eq!(
        canonical_uri_candidates(path, "cognito-sync"),
        vec!["/identitypools/us-east-1%253Aabc/identities/us-east-1%253Adef/datasets/ds1"]
    );
    // A non-canonical spelling of the same path gets a second candidate.
    assert_eq!(canonical_uri_candidates("/a:b/c%3ad", "cognito-sync"), vec!["/a%3Ab/c%253ad", "/a%253Ab/c%253Ad"]);
    assert_eq!(canonical_uri_candidates("", "cognito-idp"), vec!["/"]);
    assert_eq!(canonical_uri_candidates("/a%3Ab", "s3"), vec!["/a%3Ab"]);
}

#[test]
fn odd_paths_signed_by_the_sdk_verify() {
    for path in [
        "/identitypools/us-east-1%3Aabc/./x/../datasets/a%20b~c",
        "/a%2Fb/c%25d/e+f/",
        "//double//slash",
        "/%E2%9C%93/caf%C3%A9",
    ] {
        let url = format!("http://localhost:9229{path}");
        let r = rest_signer(&url, "GET", b"").sign();
        r.verify_at("cognito-sync", T0).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn odd_queries_signed_by_the_sdk_verify() {
    for query in [
        "b=&a=2&a=1",
        "flag&x=1",
        "prefix=a%20b%2Bc&k%C3%A9y=v%E2%9C%93",
        "list-type=2&prefix=%21%27%28%29%2A",
        "x=%7E_.-",
    ] {
        let url = format!("http://localhost:9229/identitypools?{query}");
        let r = rest_signer(&url, "GET", b"").sign();
        r.verify_at("cognito-sync", T0).unwrap_or_else(|e| panic!("{query}: {e}"));
    }
}

#[test]
fn s3_style_single_encoding_verifies() {
    let mut s = rest_signer("http://localhost:9229/bucket/some%20key/a%3Ab", "PUT", b"data");
    s.service = "s3";
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    s.settings = settings;
    s.sign().verify_at("s3", T0).unwrap();
}

#[test]
fn wrong_secret_is_invalid_signature() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.secret = "not-the-secret";
    let err = s.sign().verify_at("cognito-idp", T0).unwrap_err();
    assert_eq!(err, Error::InvalidSignature);
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    );
}

#[test]
fn unknown_key_is_unrecognized_client() {
    let r = signed_json();
    let err = verify(&r.req(), "cognito-idp", &Policy::ANY, &|_| None, at(T0), SKEW).unwrap_err();
    assert_eq!(err, Error::UnrecognizedClient);
    assert_eq!(err.code(), "UnrecognizedClientException");
    assert_eq!(err.message(), "The security token included in the request is invalid.");
}

#[test]
fn tampered_body_is_invalid_signature() {
    let mut r = signed_json();
    r.body = br#"{"MaxResults":60}"#.to_vec();
    assert_eq!(r.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
}

#[test]
fn tampered_signed_header_is_invalid_signature() {
    let mut r = signed_json();
    r.set_header("x-amz-target", "AWSCognitoIdentityProviderService.DeleteUserPool");
    assert_eq!(r.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
    // An unsigned header may change freely.
    let mut r = signed_json();
    r.set_header("user-agent", "something-else");
    r.verify_at("cognito-idp", T0).unwrap();
}

#[test]
fn missing_signed_header_is_invalid_signature() {
    let mut r = signed_json();
    r.remove_header("x-amz-target");
    assert_eq!(r.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
}

#[test]
fn old_request_is_expired_with_aws_message() {
    let r = signed_json();
    let err = r.verify_at("cognito-idp", "20240101T001000Z").unwrap_err();
    assert_eq!(
        err,
        Error::SignatureExpired {
            request_time: "20240101T000000Z".to_owned(),
            now: "20240101T001000Z".to_owned(),
            skew_minutes: 5,
        }
    );
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z \
         (20240101T001000Z - 5 min.)"
    );
}

#[test]
fn future_request_is_not_yet_current() {
    let r = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", "20240101T002000Z").sign();
    let err = r.verify_at("cognito-idp", "20240101T001000Z").unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Signature not yet current: 20240101T002000Z is still later than 20240101T001500Z \
         (20240101T001000Z + 5 min.)"
    );
}

#[test]
fn bad_signature_wins_over_expiry() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.secret = "wrong";
    let r = s.sign();
    assert_eq!(r.verify_at("cognito-idp", "20240101T010000Z"), Err(Error::InvalidSignature));
}

#[test]
fn wrong_service_is_rejected() {
    let mut s = Signer::json("AWSCognitoIdentityService.ListIdentityPools", T0);
    s.service = "cognito-identity";
    let err = s.sign().verify_at("cognito-idp", T0).unwrap_err();
    assert_eq!(err, Error::WrongService { expected: "cognito-idp".to_owned() });
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(err.message(), "Credential should be scoped to correct service: 'cognito-idp'. ");
}

#[test]
fn missing_authorization_is_missing_token() {
    let mut r = signed_json();
    r.remove_header("authorization");
    let err = r.verify_at("cognito-idp", T0).unwrap_err();
    assert_eq!(err, Error::MissingAuthenticationToken);
    assert_eq!(err.code(), "MissingAuthenticationTokenException");
    assert_eq!(err.message(), "Missing Authentication Token");
    assert_eq!(err.to_string(), "MissingAuthenticationTokenException: Missing Authentication Token");
}

fn incomplete_message(r: &Received) -> String {
    match r.verify_at("cognito-idp", T0) {
        Err(Error::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn malformed_authorization_is_incomplete_signature() {
    let good = signed_json();
    let auth = good.authorization().to_owned();
    let signature = auth.rsplit_once("Signature=").unwrap().1.to_owned();
    let credential = "AKIDCOGNATETEST/20240101/us-east-1/cognito-idp/aws4_request";
    let signed = "content-type;host;x-amz-date;x-amz-target";

    let cases: Vec<(String, &str)> = vec![
        (
            format!("AWS4-HMAC-SHA256 SignedHeaders={signed}, Signature={signature}"),
            "Authorization header requires 'Credential' parameter. \
             Authorization=AWS4-HMAC-SHA256 SignedHeaders=content-type;host;x-amz-date;x-amz-target",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}, Signature={signature}"),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}"),
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/aws4_request, \
                 SignedHeaders={signed}, Signature={signature}"
            ),
            "Credential should have exactly 5 slash-separated parts, not 4.",
        ),
        (
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/cognito-idp/aws5_request, \
                 SignedHeaders={signed}, Signature={signature}"
            ),
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=content-type;x-amz-date, Signature={signature}"),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            format!("AWS4-HMAC-SHA512 Credential={credential}, SignedHeaders={signed}, Signature={signature}"),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.",
        ),
        (
            "Bearer eyJhbGciOiJSUzI1NiJ9.secret-token".to_owned(),
            "Authorization header requires 'AWS4-HMAC-SHA256' as its algorithm.",
        ),
        (String::new(), "Authorization header requires 'Credential' parameter."),
    ];
    for (header_value, expected) in cases {
        let mut r = good.clone();
        r.set_header("authorization", &header_value);
        let m = incomplete_message(&r);
        assert!(m.contains(expected), "{header_value:?} -> {m}");
        assert!(!m.contains(&signature), "signature echoed: {m}");
        assert!(!m.contains("secret-token"), "token echoed: {m}");
        let err = Error::IncompleteSignature(m);
        assert_eq!(err.code(), "IncompleteSignatureException");
    }

    // No date at all.
    let mut r = good.clone();
    r.remove_header("x-amz-date");
    let m = incomplete_message(&r);
    assert!(
        m.starts_with(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=AWS4-HMAC-SHA256 Credential=AKIDCOGNATETEST/20240101/us-east-1/cognito-idp/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target"
        ),
        "{m}"
    );
    assert!(!m.contains(&signature));

    // An unparseable date.
    let mut r = good;
    r.set_header("x-amz-date", "2024-01-01T00:00:00Z");
    let m = incomplete_message(&r);
    assert!(m.starts_with("Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'."), "{m}");
}

#[test]
fn non_hex_signature_is_a_mismatch() {
    let good = signed_json();
    let auth = good.authorization().to_owned();
    let (head, sig) = auth.rsplit_once("Signature=").unwrap();
    for bad in [format!("{}zz", &sig[..62]), sig[..62].to_owned(), format!("{sig}00"), String::new()] {
        let mut r = good.clone();
        r.set_header("authorization", &format!("{head}Signature={bad}"));
        assert_eq!(r.verify_at("cognito-idp", T0), Err(Error::InvalidSignature), "{bad}");
    }
    // Upper-case hex is the same signature.
    let mut r = good.clone();
    r.set_header("authorization", &format!("{head}Signature={}", sig.to_uppercase()));
    r.verify_at("cognito-idp", T0).unwrap();
}

#[test]
fn date_header_instead_of_x_amz_date() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers.push(("date", "Mon, 01 Jan 2024 00:00:00 GMT"));
    // Keep X-Amz-Date out of the signature, then drop it from the request,
    // leaving Date as the only time.
    let mut settings = SigningSettings::default();
    if let Some(excluded) = settings.excluded_headers.as_mut() {
        excluded.push("x-amz-date".into());
    }
    s.settings = settings;
    let mut r = s.sign();
    assert!(!r.authorization().contains("x-amz-date"));
    r.remove_header("x-amz-date");
    r.verify_at("cognito-idp", T0).unwrap();

    let err = r.verify_at("cognito-idp", "20240101T001000Z").unwrap_err();
    assert!(err.message().starts_with("Signature expired: 20240101T000000Z is now earlier"));

    r.set_header("date", "yesterday");
    assert!(matches!(r.verify_at("cognito-idp", T0), Err(Error::IncompleteSignature(_))));
}

#[test]
fn credential_date_must_match_request_date() {
    // Re-sign by hand, with the key derived for another day than the
    // signed time: the signature is right for what it covers, but the
    // scope and the time disagree.
    let r = signed_json();
    let scope = Scope {
        access_key_id: AKID.to_owned(),
        date: "20231231".to_owned(),
        region: "us-east-1".to_owned(),
        service: "cognito-idp".to_owned(),
    };
    let auth = r.authorization().to_owned();
    let signed = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap().to_owned();
    let creq =
        format!("POST\n/\n\n{}{}\n{}", canonical_headers(&r.headers, &signed).unwrap(), signed, sha256_hex(&r.body));
    let sts = format!("{ALGORITHM}\n{T0}\n{}\n{}", scope.scope_string(), sha256_hex(creq.as_bytes()));
    let sig = hex::encode(hmac::sign(&signing_key(SECRET, &scope), sts.as_bytes()).as_ref());
    let mut forged = r;
    forged.set_header(
        "authorization",
        &format!("{ALGORITHM} Credential={AKID}/{}, SignedHeaders={signed}, Signature={sig}", scope.scope_string()),
    );
    assert_eq!(forged.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
}

#[test]
fn content_sha256_header() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    s.settings = settings;
    let r = s.sign();
    assert!(header(&r.headers, "x-amz-content-sha256").is_some());
    r.verify_at("cognito-idp", T0).unwrap();

    // A declared hash that does not match the body.
    let mut bad = r.clone();
    bad.body = b"{}".to_vec();
    assert_eq!(bad.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
    // A hash header the signer did not use.
    let mut bad = r;
    bad.set_header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert_eq!(bad.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
}

#[test]
fn unsigned_payload_header() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers.push(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"));
    s.unsigned_payload = true;
    let mut r = s.sign();
    r.verify_at("cognito-idp", T0).unwrap();
    // The body is not covered: that is what the client asked for.
    r.body = b"anything".to_vec();
    r.verify_at("cognito-idp", T0).unwrap();
}

#[test]
fn repeated_and_spaced_headers() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers.push(("x-custom", "  a   b  c "));
    s.headers.push(("x-custom", "second"));
    let r = s.sign();
    assert!(r.authorization().contains("x-custom"));
    assert_eq!(r.headers.iter().filter(|(n, _)| n == "x-custom").count(), 2);
    r.verify_at("cognito-idp", T0).unwrap();
    // Order of repeated values matters.
    let mut swapped = r.clone();
    swapped.headers.retain(|(n, _)| n != "x-custom");
    swapped.headers.push(("x-custom".to_owned(), "second".to_owned()));
    swapped.headers.push(("x-custom".to_owned(), "a b c".to_owned()));
    assert_eq!(swapped.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
}

fn presigned(expires: u64, time: &str) -> Received {
    let mut s = rest_signer("http://localhost:9229/upload/pool%3A1/file.csv?uploadId=7", "PUT", b"a,b,c\n");
    s.service = "cognito-idp";
    s.headers = vec![];
    s.time = time;
    s.unsigned_payload = true;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    s.settings = settings;
    s.sign()
}

#[test]
fn presigned_url_verifies_until_it_expires() {
    let r = presigned(900, T0);
    assert!(r.query.contains("X-Amz-Signature="));
    assert!(header(&r.headers, "authorization").is_none());
    let v = r.verify_at("cognito-idp", "20240101T001000Z").unwrap();
    assert_eq!(v.access_key_id, AKID);
    r.verify_at("cognito-idp", "20240101T001500Z").unwrap();

    let err = r.verify_at("cognito-idp", "20240101T001501Z").unwrap_err();
    assert_eq!(err, Error::RequestExpired);
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(err.message(), "Request has expired");

    let err = r.verify_at("cognito-idp", "20231231T235000Z").unwrap_err();
    assert!(err.message().starts_with("Signature not yet current"));
}

#[test]
fn presigned_url_is_tamper_evident() {
    let r = presigned(900, T0);
    let mut bad = r.clone();
    bad.query = bad.query.replace("uploadId=7", "uploadId=8");
    assert_eq!(bad.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
    let mut bad = r.clone();
    bad.query = bad.query.replace("X-Amz-Expires=900", "X-Amz-Expires=901");
    assert_eq!(bad.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
    let mut bad = r.clone();
    bad.path = "/upload/pool%3A1/other.csv".to_owned();
    assert_eq!(bad.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
    let mut bad = r;
    bad.set_header("host", "evil.example");
    assert_eq!(bad.verify_at("cognito-idp", T0), Err(Error::InvalidSignature));
}

#[test]
fn presigned_url_malformed() {
    let r = presigned(900, T0);
    let without = |name: &str| {
        let mut q = r.clone();
        q.query = q.query.split('&').filter(|p| !p.starts_with(name)).collect::<Vec<_>>().join("&");
        q
    };
    for name in ["X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"] {
        match without(name).verify_at("cognito-idp", T0) {
            Err(Error::IncompleteSignature(m)) => {
                assert!(m.contains(&format!("must include '{name}'")), "{m}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let mut long = r.clone();
    long.query = long.query.replace("X-Amz-Expires=900", "X-Amz-Expires=604801");
    assert!(matches!(
        long.verify_at("cognito-idp", T0),
        Err(Error::IncompleteSignature(m)) if m.contains("less than a week")
    ));
    // Dropping all the signing parameters leaves an unsigned request.
    let mut bare = r;
    bare.query = "uploadId=7".to_owned();
    assert_eq!(bare.verify_at("cognito-idp", T0), Err(Error::MissingAuthenticationToken));
}

/// What the server asks of Cognito's JSON 1.1 requests.
const JSON_POLICY: Policy<'static> = Policy {
    allow_presigned: false,
    require_payload_hash: true,
    required_signed_headers: &["content-type", "x-amz-target"],
};

/// What the server asks of Cognito Sync's reads (presigned URLs allowed).
const SYNC_READ_POLICY: Policy<'static> =
    Policy { allow_presigned: true, require_payload_hash: true, required_signed_headers: &[] };

#[test]
fn sdk_signed_requests_meet_the_strict_policies() {
    signed_json().verify_with(&JSON_POLICY, "cognito-idp", T0).unwrap();
    let url = format!("{REST_URL}?maxResults=10");
    rest_signer(&url, "GET", b"").sign().verify_with(&SYNC_READ_POLICY, "cognito-sync", T0).unwrap();
    let write =
        Policy { allow_presigned: false, require_payload_hash: true, required_signed_headers: &["content-type"] };
    let body = br#"{"SyncSessionToken":"x","RecordPatches":[]}"#;
    rest_signer(REST_URL, "POST", body).sign().verify_with(&write, "cognito-sync", T0).unwrap();
}

#[test]
fn presigned_url_is_refused_where_not_allowed() {
    let refused = Error::IncompleteSignature(PRESIGNED_REFUSED.to_owned());
    let r = presigned(900, T0);
    // A valid presigned URL: fine by SigV4, not by this endpoint.
    r.verify_at("cognito-idp", T0).unwrap();
    assert_eq!(r.verify_with(&JSON_POLICY, "cognito-idp", T0), Err(refused.clone()));
    assert_eq!(refused.code(), "IncompleteSignatureException");
    // Malformed or signed with a wrong key, it gets the same answer: the form
    // is refused before anything else is looked at.
    let mut malformed = r.clone();
    malformed.query = malformed.query.split('&').filter(|p| !p.starts_with("X-Amz-Date")).collect::<Vec<_>>().join("&");
    assert_eq!(malformed.verify_with(&JSON_POLICY, "cognito-idp", T0), Err(refused.clone()));
    let only_signature = Received { query: "X-Amz-Signature=00".to_owned(), ..r.clone() };
    assert_eq!(only_signature.verify_with(&JSON_POLICY, "cognito-idp", T0), Err(refused));
    // Without any presigning parameter the request is simply unsigned.
    let bare = Received { query: "uploadId=7".to_owned(), ..r };
    assert_eq!(bare.verify_with(&JSON_POLICY, "cognito-idp", T0), Err(Error::MissingAuthenticationToken));
}

#[test]
fn presigned_url_must_cover_a_body_when_the_payload_hash_is_required() {
    // `presigned` signs UNSIGNED-PAYLOAD over a PUT with a body.
    let r = presigned(900, T0);
    assert_eq!(r.verify_with(&SYNC_READ_POLICY, "cognito-idp", T0), Err(Error::InvalidSignature));
    // Without a body there is nothing left uncovered.
    let mut s = rest_signer("http://localhost:9229/identitypools?maxResults=3", "GET", b"");
    s.unsigned_payload = true;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(900));
    s.settings = settings;
    s.headers = vec![];
    let get = s.sign();
    get.verify_with(&SYNC_READ_POLICY, "cognito-sync", T0).unwrap();
    // A body attached to it afterwards is not covered, so it does not verify.
    let mut with_body = get;
    with_body.body = br#"{"MaxResults":60}"#.to_vec();
    assert_eq!(with_body.verify_with(&SYNC_READ_POLICY, "cognito-sync", T0), Err(Error::InvalidSignature));
    with_body.verify_at("cognito-sync", T0).unwrap();
}

#[test]
fn unsigned_payload_header_is_refused_when_the_payload_hash_is_required() {
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers.push(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"));
    s.unsigned_payload = true;
    let r = s.sign();
    r.verify_at("cognito-idp", T0).unwrap();
    let err = r.verify_with(&JSON_POLICY, "cognito-idp", T0).unwrap_err();
    assert_eq!(err, Error::InvalidSignature);
    assert_eq!(err.code(), "InvalidSignatureException");

    // A hex hash of the body is still accepted, and must still match it.
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    s.settings = settings;
    let r = s.sign();
    r.verify_with(&JSON_POLICY, "cognito-idp", T0).unwrap();
    let mut bad = r;
    bad.body = b"{}".to_vec();
    assert_eq!(bad.verify_with(&JSON_POLICY, "cognito-idp", T0), Err(Error::InvalidSignature));
}

#[test]
fn required_headers_must_be_signed() {
    // Signed over content-type only; the target is added afterwards, as a
    // replayed request would carry whichever target the attacker picks.
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers = vec![("content-type", "application/x-amz-json-1.1")];
    let mut r = s.sign();
    r.set_header("x-amz-target", "AWSCognitoIdentityProviderService.AdminDisableUser");
    assert!(r.authorization().contains("SignedHeaders=content-type;host;x-amz-date,"), "{}", r.authorization());
    // A valid signature as far as SigV4 goes.
    r.verify_at("cognito-idp", T0).unwrap();
    assert_eq!(
        incomplete_with(&r, &JSON_POLICY),
        "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization. Authorization=AWS4-HMAC-SHA256 \
         Credential=AKIDCOGNATETEST/20240101/us-east-1/cognito-idp/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date"
    );

    // Nothing but host and the date: both are named, in the policy's order.
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers = vec![];
    let mut r = s.sign();
    r.set_header("content-type", "application/x-amz-json-1.1");
    r.set_header("x-amz-target", "AWSCognitoIdentityProviderService.ListUserPools");
    let m = incomplete_with(&r, &JSON_POLICY);
    assert!(
        m.starts_with(
            "'Content-Type' must be a 'SignedHeader' in the AWS Authorization. \
             'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization. Authorization="
        ),
        "{m}"
    );
    // The form is checked before the key: a wrong key gets the same answer.
    let mut s = Signer::json("AWSCognitoIdentityProviderService.ListUserPools", T0);
    s.headers = vec![];
    s.secret = "not-the-secret";
    let wrong_key = s.sign();
    assert!(incomplete_with(&wrong_key, &JSON_POLICY).starts_with("'Content-Type' must be"));

    // Host stays required whatever the policy lists, and is named once.
    let host_only = Policy { required_signed_headers: &["host"], ..JSON_POLICY };
    let good = signed_json();
    let mut no_host = good.clone();
    let auth = good.authorization().replace("content-type;host;x-amz-date;x-amz-target", "content-type;x-amz-date");
    no_host.set_header("authorization", &auth);
    let m = incomplete_with(&no_host, &host_only);
    assert_eq!(m.matches("must be a 'SignedHeader'").count(), 1, "{m}");
    assert!(m.starts_with("'Host' or ':authority' must be a 'SignedHeader'"), "{m}");

    // In a presigned URL, where one is allowed, the same requirement holds.
    let needs_type =
        Policy { allow_presigned: true, require_payload_hash: false, required_signed_headers: &["content-type"] };
    let r = presigned(900, T0);
    assert_eq!(
        incomplete_with(&r, &needs_type),
        "'Content-Type' must be a 'SignedHeader' in the AWS Authorization. Re-examine the query-string parameters."
    );
}

fn incomplete_with(r: &Received, policy: &Policy) -> String {
    match r.verify_with(policy, "cognito-idp", T0) {
        Err(Error::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn header_display_names() {
    assert_eq!(header_display_name("x-amz-target"), "X-Amz-Target");
    assert_eq!(header_display_name("content-type"), "Content-Type");
    assert_eq!(header_display_name("HOST"), "Host");
    assert_eq!(header_display_name("a--b"), "A--B");
}

/// The worked example from AWS's documentation ("Create a canonical request
/// for Signature Version 4"): IAM ListUsers.
#[test]
fn aws_documentation_example() {
    let headers = vec![
        ("content-type".to_owned(), "application/x-www-form-urlencoded; charset=utf-8".to_owned()),
        ("host".to_owned(), "iam.amazonaws.com".to_owned()),
        ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        (
            "authorization".to_owned(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                .to_owned(),
        ),
    ];
    let req = Request {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        body: b"",
    };
    let secret = |akid: &str| (akid == "AKIDEXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
    let v = verify(&req, "iam", &Policy::ANY, &secret, at("20150830T123600Z"), SKEW).unwrap();
    assert_eq!(v.access_key_id, "AKIDEXAMPLE");
    assert_eq!(canonical_query(req.query, None), "Action=ListUsers&Version=2010-05-08");
}

#[test]
fn helpers() {
    assert_eq!(collapse_spaces("  a   b  c "), "a b c");
    assert_eq!(collapse_spaces("a\tb"), "a\tb");
    assert_eq!(collapse_spaces(""), "");
    assert_eq!(remove_dot_segments("/a/./b/../c/"), "/a/c/");
    assert_eq!(remove_dot_segments("/../x"), "/x");
    assert_eq!(remove_dot_segments("/a/.."), "/");
    assert_eq!(remove_dot_segments("/a//b"), "/a/b");
    assert_eq!(remove_dot_segments("/a/b"), "/a/b");
    assert_eq!(percent_decode("a%2Fb%zz%4", false), b"a/b%zz%4");
    assert_eq!(percent_decode("a+b%2B", true), b"a b+");
    assert_eq!(uri_encode("a b/~é".as_bytes(), false), "a%20b%2F~%C3%A9");
    assert_eq!(uri_encode(b"a/b", true), "a/b");
    assert_eq!(canonical_query("b=2&a=&c&a=1&&", None), "a=&a=1&b=2&c=");
    assert_eq!(canonical_query("X-Amz-Signature=abc&a=1", Some(60)), "a=1");
    assert_eq!(canonical_query("X-Amz-Signature=abc&a=1", None), "X-Amz-Signature=abc&a=1");
    assert_eq!(parse_amz_date("20240101T000000Z"), Some(1_704_067_200));
    assert_eq!(format_amz_date(1_704_067_200), "20240101T000000Z");
    for bad in ["2024010T000000Z", "20241301T000000Z", "20240101T250000Z", "+0240101T000000Z", "20240101 000000Z"] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
    assert_eq!(format_amz_date(-5), "19700101T000000Z");
    assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(3)), -3);
}

/// What `sign` produces verifies, here and as the SDK would sign the same request (the
/// signature equals the aws-sigv4 crate's for the same headers, time and body).
#[test]
fn own_signatures_verify_and_match_the_sdks() {
    let credentials = SigningCredentials { access_key_id: AKID, secret_access_key: SECRET, session_token: None };
    let headers = vec![
        ("host".to_owned(), "localhost:9229".to_owned()),
        ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
        ("x-amz-target".to_owned(), "Kinesis_20131202.PutRecord".to_owned()),
    ];
    let body = br#"{"StreamName":"s"}"#;
    let req = Request { method: "POST", path: "/", query: "", headers: &headers, body };
    let added = super::sign(&req, "kinesis", "us-east-1", &credentials, at(T0));
    let mut all = headers.clone();
    all.extend(added.iter().cloned());
    let signed = Request { headers: &all, ..req };
    let policy = Policy { allow_presigned: false, require_payload_hash: true, required_signed_headers: &[] };
    let verified = verify(&signed, "kinesis", &policy, &secrets, at(T0), Duration::from_secs(300)).unwrap();
    assert_eq!((verified.access_key_id.as_str(), verified.region.as_str()), (AKID, "us-east-1"));

    let mut sdk = Signer::json("Kinesis_20131202.PutRecord", T0);
    sdk.service = "kinesis";
    sdk.body = body;
    sdk.settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let theirs = sdk.sign();
    let signature = |auth: &str| auth.rsplit("Signature=").next().unwrap().to_owned();
    let ours = added.iter().find(|(n, _)| n == "authorization").map(|(_, v)| signature(v)).unwrap();
    assert_eq!(ours, signature(theirs.authorization()), "the SDK signs the same request the same way");

    let tampered = Request { body: b"{}", ..signed };
    assert!(verify(&tampered, "kinesis", &policy, &secrets, at(T0), Duration::from_secs(300)).is_err());
}
