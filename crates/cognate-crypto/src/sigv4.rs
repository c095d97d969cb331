//! Server-side verification of AWS Signature Version 4.
//!
//! Cognito's IAM-authenticated operations (the `Admin*` APIs, pool and
//! client management) arrive signed by an AWS SDK. This module recomputes
//! the signature from the request as received and compares it with the one
//! the client sent, reporting failures with the error codes and messages
//! AWS services use, since SDKs and tools key their behaviour on them.
//!
//! Two forms are accepted:
//! * the `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
//!   Signature=...` header, with the time in `X-Amz-Date` (or `Date`);
//! * presigned URLs, with `X-Amz-Algorithm`, `X-Amz-Credential`,
//!   `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders` and
//!   `X-Amz-Signature` in the query string.
//!
//! What a signature must cover beyond that is the endpoint's choice, given
//! as a [`Policy`]: Cognito's APIs refuse the presigned form and unsigned
//! payloads, and require the headers that select the operation to be signed.
//!
//! Canonicalisation follows what the AWS SDKs actually sign (checked against
//! the `aws-sigv4` crate in the tests), not only the prose of the spec; see
//! [`canonical_uri_candidates`] for the one place where the two can differ.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};

use crate::ct;

/// The only algorithm supported (SigV4 with HMAC-SHA256).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash placeholder meaning "the body is not covered".
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Longest validity a presigned URL may ask for (7 days), as in AWS.
const MAX_PRESIGN_EXPIRES: u64 = 604_800;
/// Longest piece of client input echoed back in an error message.
const MAX_ECHO: usize = 256;

/// An HTTP request as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path, raw: still percent-encoded exactly as received.
    pub path: &'a str,
    /// The raw query string, without the `?` (empty when there is none).
    pub query: &'a str,
    /// Headers with lower-case names and values as received; a name may
    /// appear more than once.
    pub headers: &'a [(String, String)],
    /// The request body.
    pub body: &'a [u8],
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The region from the credential scope (any region is accepted: the
    /// signature covers it).
    pub region: String,
    /// The service from the credential scope (always the expected one).
    pub service: String,
}

/// What an endpoint requires of a signature beyond its being correct.
///
/// SigV4 lets the signer choose what the signature covers: a presigned URL
/// may sign only `host` and declare `UNSIGNED-PAYLOAD`, and the header form
/// may leave out any header but `host`. Such a signature is still valid, but
/// it vouches for little: whoever holds it can attach another body, or
/// another `X-Amz-Target`, and so call another operation. An endpoint whose
/// real clients always sign more can refuse anything less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy<'a> {
    /// Accept query-string (presigned URL) authentication.
    pub allow_presigned: bool,
    /// The body must be covered by the signature: an
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD` header is refused, and a
    /// presigned URL may stand for `UNSIGNED-PAYLOAD` only when there is no
    /// body.
    pub require_payload_hash: bool,
    /// Headers (lower case) that must be among the SignedHeaders, besides
    /// `host`, which always must.
    pub required_signed_headers: &'a [&'a str],
}

impl Policy<'static> {
    /// Whatever SigV4 itself allows (S3-style presigned URLs and unsigned
    /// payloads included): for endpoints that really take such requests.
    pub const ANY: Policy<'static> =
        Policy { allow_presigned: true, require_payload_hash: false, required_signed_headers: &[] };
}

/// The message for a presigned URL where only the header form is accepted.
const PRESIGNED_REFUSED: &str = "Query-string authentication is not supported for this request. \
    Sign it with an Authorization header.";

/// Why a request failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Neither an `Authorization` header nor presigning query parameters.
    MissingAuthenticationToken,
    /// The authorization information is malformed; the message says how.
    IncompleteSignature(String),
    /// The access key id is not known.
    UnrecognizedClient,
    /// The signature does not match (or the request is otherwise not the one
    /// that was signed).
    InvalidSignature,
    /// The signed time is further from the server's clock than allowed.
    /// Both times are in the `20240101T000000Z` form.
    SignatureExpired {
        /// The time the request was signed for.
        request_time: String,
        /// The server's time.
        now: String,
        /// The allowed skew, in whole minutes.
        skew_minutes: u64,
    },
    /// The credential is scoped to another service.
    WrongService {
        /// The service this endpoint is.
        expected: String,
    },
    /// A presigned URL whose `X-Amz-Expires` has passed.
    RequestExpired,
}

impl Error {
    /// The AWS error code (`__type` in JSON 1.1 error bodies).
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Error::IncompleteSignature(_) => "IncompleteSignatureException",
            Error::UnrecognizedClient => "UnrecognizedClientException",
            Error::InvalidSignature
            | Error::SignatureExpired { .. }
            | Error::WrongService { .. }
            | Error::RequestExpired => "InvalidSignatureException",
        }
    }

    /// The message, worded as AWS words it.
    pub fn message(&self) -> String {
        match self {
            Error::MissingAuthenticationToken => "Missing Authentication Token".to_owned(),
            Error::IncompleteSignature(m) => m.clone(),
            Error::UnrecognizedClient => "The security token included in the request is invalid.".to_owned(),
            Error::InvalidSignature => "The request signature we calculated does not match \
                 the signature you provided. Check your AWS Secret Access Key and signing \
                 method. Consult the service documentation for details."
                .to_owned(),
            Error::SignatureExpired { request_time, now, skew_minutes } => {
                expired_message(request_time, now, *skew_minutes)
            }
            Error::WrongService { expected } => {
                format!("Credential should be scoped to correct service: '{expected}'. ")
            }
            Error::RequestExpired => "Request has expired".to_owned(),
        }
    }
}

/// AWS reports the bound the request missed, computed from its own clock:
/// `now - skew` for a request from the past, `now + skew` for one from the
/// future.
fn expired_message(request_time: &str, now: &str, skew_minutes: u64) -> String {
    let skew = i64::try_from(skew_minutes.saturating_mul(60)).unwrap_or(i64::MAX);
    let now_secs = parse_amz_date(now);
    // Both strings have the same fixed-width form, so they order as times.
    if request_time < now {
        let bound = now_secs.map(|n| format_amz_date(n.saturating_sub(skew))).unwrap_or_default();
        format!(
            "Signature expired: {request_time} is now earlier than {bound} \
             ({now} - {skew_minutes} min.)"
        )
    } else {
        let bound = now_secs.map(|n| format_amz_date(n.saturating_add(skew))).unwrap_or_default();
        format!(
            "Signature not yet current: {request_time} is still later than {bound} \
             ({now} + {skew_minutes} min.)"
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Error {}

/// Verifies the SigV4 signature of `req` for `expected_service`, requiring
/// what `policy` asks of it.
///
/// `secret_for` maps an access key id to its secret access key (`None` for
/// an unknown key). `now` is the server's clock and `max_skew` how far the
/// signed time may be from it (AWS uses 5 minutes).
///
/// The checks run in the order AWS reports them: malformed authorization
/// (including what the policy requires to be signed), wrong service, unknown
/// key, signature, then the clock. The signature is checked before the clock
/// so that only a holder of the key learns how the server's clock differs.
pub fn verify(
    req: &Request,
    expected_service: &str,
    policy: &Policy,
    secret_for: &dyn Fn(&str) -> Option<String>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<Verified, Error> {
    let required = policy.required_signed_headers;
    let auth = match header(req.headers, "authorization") {
        Some(value) => parse_authorization_header(value, req.headers, required)?,
        // Refused before it is parsed: a malformed presigned URL gets the
        // same answer as a well-formed one, the form itself is not accepted.
        // IncompleteSignatureException is what AWS answers for an
        // authorization it cannot use as given (a missing part, an
        // unsupported algorithm), as opposed to InvalidSignatureException for
        // one it evaluated and found wrong.
        None if !policy.allow_presigned && has_presigning_params(req.query) => {
            return Err(Error::IncompleteSignature(PRESIGNED_REFUSED.to_owned()));
        }
        None => parse_presigned_query(req.query, required)?.ok_or(Error::MissingAuthenticationToken)?,
    };
    let scope = &auth.scope;
    if scope.service != expected_service {
        return Err(Error::WrongService { expected: expected_service.to_owned() });
    }
    let secret = secret_for(&scope.access_key_id).ok_or(Error::UnrecognizedClient)?;

    // The credential scope's date is part of the signing key, and the
    // request time is part of the string to sign; requiring them to agree
    // stops a key derived for one day being used with another day's time.
    let amz_date = &auth.amz_date;
    if !amz_date.starts_with(scope.date.as_str()) || scope.date.len() != 8 {
        return Err(Error::InvalidSignature);
    }

    let provided = match hex::decode(&auth.signature) {
        Ok(bytes) if bytes.len() == 32 => Some(bytes),
        // Not a SHA-256 MAC in hex: cannot match. Still fall through the
        // same path so the failure is indistinguishable from a mismatch.
        _ => None,
    };

    let key = signing_key(&secret, scope);
    let scope_string = scope.scope_string();
    let payload_hashes = payload_hash_candidates(req, auth.presigned, policy.require_payload_hash)?;
    let canonical_query = canonical_query(req.query, auth.presigned);
    let canonical_headers = canonical_headers(req.headers, &auth.signed_headers)?;
    let mut matched = false;
    for uri in canonical_uri_candidates(req.path, &scope.service) {
        for payload_hash in &payload_hashes {
            let creq = format!(
                "{}\n{}\n{}\n{}\n{}\n{}",
                req.method, uri, canonical_query, canonical_headers, auth.signed_headers, payload_hash
            );
            let sts = format!("{ALGORITHM}\n{amz_date}\n{scope_string}\n{}", sha256_hex(creq.as_bytes()));
            let expected = hmac::sign(&key, sts.as_bytes());
            if let Some(p) = &provided {
                matched |= ct::eq(expected.as_ref(), p);
            }
        }
    }
    if !matched {
        return Err(Error::InvalidSignature);
    }

    let now_secs = unix_seconds(now);
    let skew = i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX);
    let expired = || Error::SignatureExpired {
        request_time: amz_date.clone(),
        now: format_amz_date(now_secs),
        skew_minutes: max_skew.as_secs() / 60,
    };
    if auth.time > now_secs.saturating_add(skew) {
        return Err(expired());
    }
    match auth.presigned {
        // A presigned URL is meant to be used later: its own lifetime, not
        // the skew, bounds it from the past.
        Some(expires) => {
            let expires = i64::try_from(expires).unwrap_or(i64::MAX);
            if now_secs > auth.time.saturating_add(expires) {
                return Err(Error::RequestExpired);
            }
        }
        None => {
            if auth.time < now_secs.saturating_sub(skew) {
                return Err(expired());
            }
        }
    }

    Ok(Verified {
        access_key_id: scope.access_key_id.clone(),
        region: scope.region.clone(),
        service: scope.service.clone(),
    })
}

/// Credentials Cognate signs its own calls to other AWS APIs with (SNS, Kinesis, Lambda).
#[derive(Debug, Clone, Copy)]
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Signs an outgoing request the way the AWS SDKs do (header form, body hashed, every given
/// header signed): the headers to add to `req.headers` (`x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` with a session token, and `authorization`). `req.headers` must
/// hold `host` and have lower-case names; `req.path` is the path as sent (percent-encoded),
/// which non-S3 services sign encoded once more.
pub fn sign(
    req: &Request,
    service: &str,
    region: &str,
    credentials: &SigningCredentials,
    now: SystemTime,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(unix_seconds(now));
    let payload_hash = sha256_hex(req.body);
    let mut added =
        vec![("x-amz-date".to_owned(), amz_date.clone()), ("x-amz-content-sha256".to_owned(), payload_hash.clone())];
    if let Some(token) = credentials.session_token {
        added.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    let mut all: Vec<(String, String)> = req.headers.iter().chain(added.iter()).cloned().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    let signed_headers = names.join(";");
    let scope = Scope {
        access_key_id: credentials.access_key_id.to_owned(),
        date: amz_date[..8].to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    };
    // Every name in `signed_headers` comes from `all`, so this cannot miss one.
    let canonical_headers = canonical_headers(&all, &signed_headers).unwrap_or_default();
    let uri = uri_encode(req.path.as_bytes(), true);
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri,
        canonical_query(req.query, None),
        canonical_headers,
        signed_headers,
        payload_hash
    );
    let sts = format!("{ALGORITHM}\n{amz_date}\n{}\n{}", scope.scope_string(), sha256_hex(creq.as_bytes()));
    let signature = hex::encode(hmac::sign(&signing_key(credentials.secret_access_key, &scope), sts.as_bytes()));
    added.push((
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            scope.access_key_id,
            scope.scope_string()
        ),
    ));
    added
}

/// The parts of a credential: `AKID/20240101/us-east-1/cognito-idp/aws4_request`.
#[derive(Debug)]
struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

impl Scope {
    fn scope_string(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// Authorization information, from either form.
#[derive(Debug)]
struct Auth {
    scope: Scope,
    signed_headers: String,
    signature: String,
    /// The signed time, in seconds since the Unix epoch.
    time: i64,
    /// The signed time as it goes in the string to sign (`20240101T000000Z`).
    amz_date: String,
    /// `Some(X-Amz-Expires)` for a presigned URL.
    presigned: Option<u64>,
}

/// Parses the credential scope, or says what is wrong with it in AWS's words.
fn parse_credential(credential: &str) -> Result<Scope, String> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 {
        return Err(format!("Credential should have exactly 5 slash-separated parts, not {}.", parts.len()));
    }
    if parts[4] != "aws4_request" {
        return Err(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            echo(parts[4])
        ));
    }
    if parts[2].is_empty() {
        return Err("Credential should be scoped to a valid region, not ''.".to_owned());
    }
    Ok(Scope {
        access_key_id: parts[0].to_owned(),
        date: parts[1].to_owned(),
        region: parts[2].to_owned(),
        service: parts[3].to_owned(),
    })
}

fn parse_authorization_header(value: &str, headers: &[(String, String)], required: &[&str]) -> Result<Auth, Error> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((value, ""));
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for item in rest.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.trim());
        }
    }

    // What is echoed back: the algorithm only when it looks like an AWS
    // algorithm name (anything else may be some other scheme's token, such
    // as a bearer token sent to the wrong endpoint), and
    // the non-secret parameters. Never the signature.
    let safe_algorithm = algorithm.starts_with("AWS")
        && algorithm.len() <= 32
        && algorithm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let mut echoed = String::new();
    if safe_algorithm {
        echoed.push_str(algorithm);
        let mut params = Vec::new();
        if let Some(c) = credential {
            params.push(format!("Credential={}", echo(c)));
        }
        if let Some(s) = signed_headers {
            params.push(format!("SignedHeaders={}", echo(s)));
        }
        if !params.is_empty() {
            echoed.push(' ');
            echoed.push_str(&params.join(", "));
        }
    }
    let incomplete = |problems: Vec<String>| {
        let mut msg = problems.join(" ");
        if !echoed.is_empty() {
            msg.push_str(" Authorization=");
            msg.push_str(&echoed);
        }
        Error::IncompleteSignature(msg)
    };

    if safe_algorithm && algorithm.starts_with("AWS4-") && algorithm != ALGORITHM {
        return Err(Error::IncompleteSignature(format!("Unsupported AWS 'algorithm': '{algorithm}'.")));
    }

    let mut problems = Vec::new();
    if algorithm != ALGORITHM {
        problems.push(format!("Authorization header requires '{ALGORITHM}' as its algorithm."));
    }
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            problems.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let amz_date = header(headers, "x-amz-date");
    let http_date = header(headers, "date");
    if amz_date.is_none() && http_date.is_none() {
        problems
            .push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".to_owned());
    }
    let scope = match credential.map(parse_credential) {
        Some(Err(problem)) => {
            problems.push(problem);
            None
        }
        Some(Ok(scope)) => Some(scope),
        None => None,
    };
    if let Some(sh) = signed_headers {
        problems.extend(unsigned_required_headers(sh, required));
    }
    let (Some(scope), Some(signed_headers), Some(signature), true) =
        (scope, signed_headers, signature, problems.is_empty())
    else {
        return Err(incomplete(problems));
    };

    // X-Amz-Date wins over Date: SDKs send both only through proxies that
    // add Date, and they sign X-Amz-Date.
    let (time, amz_date) = match (amz_date, http_date) {
        (Some(d), _) => (parse_amz_date(d).ok_or_else(|| bad_date(d))?, d.to_owned()),
        (None, Some(d)) => {
            let t = httpdate::parse_http_date(d).map(unix_seconds).map_err(|_| bad_date(d))?;
            // The string to sign always carries the ISO 8601 basic form.
            (t, format_amz_date(t))
        }
        (None, None) => return Err(incomplete(problems)),
    };

    Ok(Auth {
        scope,
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
        time,
        amz_date,
        presigned: None,
    })
}

fn bad_date(value: &str) -> Error {
    Error::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
        echo(value)
    ))
}

/// Whether the query carries any of the parameters that make a presigned
/// URL (what [`parse_presigned_query`] looks for).
fn has_presigning_params(query: &str) -> bool {
    query_pairs(query)
        .any(|(name, _)| matches!(name.as_slice(), b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"))
}

/// The problems, worded as AWS words them, with a SignedHeaders list that
/// leaves out `host` or one of the `required` headers.
///
/// AWS answers a signature that does not cover `host` with
/// IncompleteSignatureException and "'Host' or ':authority' must be a
/// 'SignedHeader' in the AWS Authorization."; services with further
/// requirements word them the same way (VPC Lattice: IncompleteSignature,
/// "Missing the 'x-amz-content-sha256' in canonical headers"). So a header an
/// endpoint requires gets the same exception and the same sentence, with
/// the header's name in its usual capitalisation.
fn unsigned_required_headers(signed_headers: &str, required: &[&str]) -> Vec<String> {
    let signed = |name: &str| signed_headers.split(';').any(|h| h.eq_ignore_ascii_case(name));
    let mut problems = Vec::new();
    if !signed("host") {
        problems.push("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned());
    }
    for name in required.iter().filter(|name| !name.eq_ignore_ascii_case("host") && !signed(name)) {
        problems.push(format!("'{}' must be a 'SignedHeader' in the AWS Authorization.", header_display_name(name)));
    }
    problems
}

/// `x-amz-target` -> `X-Amz-Target`.
fn header_display_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Parses the presigned-URL parameters; `Ok(None)` when the query has none
/// of them (the request is simply unsigned).
fn parse_presigned_query(query: &str, required: &[&str]) -> Result<Option<Auth>, Error> {
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut expires = None;
    let mut signed_headers = None;
    let mut signature = None;
    for (name, value) in query_pairs(query) {
        let slot = match name.as_slice() {
            b"X-Amz-Algorithm" => &mut algorithm,
            b"X-Amz-Credential" => &mut credential,
            b"X-Amz-Date" => &mut date,
            b"X-Amz-Expires" => &mut expires,
            b"X-Amz-SignedHeaders" => &mut signed_headers,
            b"X-Amz-Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(String::from_utf8_lossy(&value).into_owned());
        }
    }
    if algorithm.is_none() && credential.is_none() && signature.is_none() {
        return Ok(None);
    }

    let mut problems = Vec::new();
    for (name, present) in [
        ("X-Amz-Algorithm", algorithm.is_some()),
        ("X-Amz-Credential", credential.is_some()),
        ("X-Amz-Signature", signature.is_some()),
        ("X-Amz-Date", date.is_some()),
        ("X-Amz-SignedHeaders", signed_headers.is_some()),
        ("X-Amz-Expires", expires.is_some()),
    ] {
        if !present {
            problems.push(format!("AWS query-string parameters must include '{name}'."));
        }
    }
    if let Some(a) = &algorithm {
        if a != ALGORITHM {
            problems.push(format!("X-Amz-Algorithm only supports '{ALGORITHM}', not '{}'.", echo(a)));
        }
    }
    let scope = match credential.as_deref().map(parse_credential) {
        Some(Err(problem)) => {
            problems.push(problem);
            None
        }
        Some(Ok(scope)) => Some(scope),
        None => None,
    };
    let expires = match expires.as_deref().map(str::parse::<u64>) {
        Some(Ok(e)) if e > MAX_PRESIGN_EXPIRES => {
            problems
                .push(format!("X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}."));
            None
        }
        Some(Ok(e)) => Some(e),
        Some(Err(_)) => {
            problems.push("X-Amz-Expires should be a number.".to_owned());
            None
        }
        None => None,
    };
    if let Some(sh) = &signed_headers {
        problems.extend(unsigned_required_headers(sh, required));
    }
    let (Some(scope), Some(signed_headers), Some(signature), Some(date), Some(expires), true) =
        (scope, signed_headers, signature, date, expires, problems.is_empty())
    else {
        problems.push("Re-examine the query-string parameters.".to_owned());
        return Err(Error::IncompleteSignature(problems.join(" ")));
    };
    let time = parse_amz_date(&date).ok_or_else(|| bad_date(&date))?;
    Ok(Some(Auth { scope, signed_headers, signature, time, amz_date: date, presigned: Some(expires) }))
}

/// The first value of header `name` (given in lower case).
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Client input as it may appear in an error message: bounded in length.
fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, scope: &Scope) -> hmac::Key {
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes());
    for part in [scope.date.as_str(), scope.region.as_str(), scope.service.as_str(), "aws4_request"] {
        let tag = hmac::sign(&key, part.as_bytes());
        key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    key
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// The payload hashes the signer may have used.
///
/// With an `x-amz-content-sha256` header the signer used its value; a hex
/// hash there must also match the body, or the signature would vouch for a
/// body that was never sent. Without it, the header form hashes the body
/// and presigned URLs use `UNSIGNED-PAYLOAD` (as S3-style presigners do) or,
/// for signers that hash the body anyway, the body's hash.
///
/// With `require_payload_hash`, `UNSIGNED-PAYLOAD` stands for no body but an
/// empty one, and the header declaring it is refused as a signature that
/// does not match. That is what AWS services other than S3 answer: they do
/// not read the header and hash the body, so a signature over
/// `UNSIGNED-PAYLOAD` fails with InvalidSignatureException.
fn payload_hash_candidates(
    req: &Request,
    presigned: Option<u64>,
    require_payload_hash: bool,
) -> Result<Vec<String>, Error> {
    let body_hash = || sha256_hex(req.body);
    match header(req.headers, "x-amz-content-sha256") {
        Some(UNSIGNED_PAYLOAD) if require_payload_hash => Err(Error::InvalidSignature),
        Some(UNSIGNED_PAYLOAD) => Ok(vec![UNSIGNED_PAYLOAD.to_owned()]),
        Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if v.eq_ignore_ascii_case(&body_hash()) {
                Ok(vec![v.to_owned()])
            } else {
                Err(Error::InvalidSignature)
            }
        }
        // Streaming (chunk-signed) payloads and anything else: unsupported.
        Some(_) => Err(Error::InvalidSignature),
        None if presigned.is_some() && (!require_payload_hash || req.body.is_empty()) => {
            Ok(vec![UNSIGNED_PAYLOAD.to_owned(), body_hash()])
        }
        None => Ok(vec![body_hash()]),
    }
}

/// The canonical headers block: one `name:value\n` line per signed header,
/// in the order SignedHeaders lists them (SDKs list them sorted).
///
/// Each value is trimmed and runs of spaces inside it are collapsed to one;
/// a header sent several times contributes its values joined by `,`. A
/// signed header that is missing means this is not the signed request.
fn canonical_headers(headers: &[(String, String)], signed_headers: &str) -> Result<String, Error> {
    let mut out = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> =
            headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| collapse_spaces(v)).collect();
        if name.is_empty() || values.is_empty() {
            return Err(Error::InvalidSignature);
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// Trims spaces and collapses runs of spaces into one. Only the space
/// character: that is what the SDKs do (S3 in particular leaves tabs alone).
fn collapse_spaces(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Unreserved characters in RFC 3986, the only ones SigV4 leaves unencoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// SigV4's URI encoding: every byte except the unreserved ones (and `/`
/// when `keep_slash`) becomes `%XX` with upper-case hex.
fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`). A `%`
/// not followed by two hex digits stays literal, as browsers and the
/// `form_urlencoded` crate used by the SDK treat it.
fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| (b as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|&b| (b as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    // Two hex digits make at most 0xFF.
                    out.push(((hi << 4) | lo) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The canonical URIs the signer may have used, most likely first.
///
/// For every service except S3 the SDKs "double-encode" the path: they take
/// the path as it goes on the wire (already percent-encoded, so an identity
/// pool id `us-east-1:abc` travels as `us-east-1%3Aabc`) and URI-encode it
/// once more, giving `us-east-1%253Aabc`. They first remove `.`/`..` and
/// empty segments. That is the first candidate.
///
/// The second candidate is the spec's normalised reading: decode each
/// segment, encode it, and encode it again. It equals the first whenever the
/// client encoded its path canonically, and differs only for odd but
/// equivalent spellings (a lower-case `%3a`, a raw `:`), so a client that
/// canonicalised before signing still verifies. Both describe the same
/// decoded path, so accepting either does not let a signature cover a
/// different resource.
///
/// S3 signs the wire path as is (single encoding) without normalisation.
fn canonical_uri_candidates(raw_path: &str, service: &str) -> Vec<String> {
    let path = if raw_path.starts_with('/') { raw_path.to_owned() } else { format!("/{raw_path}") };
    let (first, second) = if service == "s3" {
        let normalised =
            path.split('/').map(|seg| uri_encode(&percent_decode(seg, false), false)).collect::<Vec<_>>().join("/");
        (path, normalised)
    } else {
        let path = remove_dot_segments(&path);
        let sdk = uri_encode(path.as_bytes(), true);
        let normalised = path
            .split('/')
            .map(|seg| {
                let once = uri_encode(&percent_decode(seg, false), false);
                uri_encode(once.as_bytes(), false)
            })
            .collect::<Vec<_>>()
            .join("/");
        (sdk, normalised)
    };
    if first == second {
        vec![first]
    } else {
        vec![first, second]
    }
}

/// RFC 3986 §5.2.4 dot-segment removal as the SDKs apply it: empty and `.`
/// segments are dropped, `..` drops the previous one, and a trailing slash
/// is kept. Paths without `.` or `//` are left alone, as the SDKs do.
fn remove_dot_segments(path: &str) -> String {
    if !path.contains('.') && !path.contains("//") {
        return path.to_owned();
    }
    let mut kept: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = format!("/{}", kept.join("/"));
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Splits a raw query into decoded name/value pairs, the way the SDK reads
/// it (`application/x-www-form-urlencoded` rules: `+` is a space, a missing
/// `=` means an empty value, empty pieces are skipped).
fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name, true), percent_decode(value, true))
    })
}

/// The canonical query string: every parameter decoded, re-encoded with the
/// SigV4 set, sorted by encoded name then value, `name=value` joined by `&`.
/// A presigned URL's own signature is not part of what it signs.
fn canonical_query(query: &str, presigned: Option<u64>) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| presigned.is_none() || name.as_slice() != b"X-Amz-Signature")
        .map(|(name, value)| (uri_encode(&name, false), uri_encode(&value, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("&")
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Parses the SigV4 time form `20240101T000000Z` strictly (exactly 16
/// characters, UTC), returning Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let tod = time::Time::from_hms(hour, minute, second).ok()?;
    Some(time::PrimitiveDateTime::new(date, tod).assume_utc().unix_timestamp())
}

/// Formats Unix seconds as `20240101T000000Z`. Times before 1970 or after
/// 9999 (reachable only with a broken clock or input) are clamped to the
/// Unix epoch or the last second of 9999, so the form stays fixed-width.
fn format_amz_date(secs: i64) -> String {
    let t = if secs < 0 {
        time::OffsetDateTime::UNIX_EPOCH
    } else {
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC))
    };
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests;
