//! Cognate's calls to other AWS APIs: SNS (`--sns-endpoint`, Cognito Sync's pushes) and
//! Kinesis (`--kinesis-endpoint`, Cognito Streams), and the Query-protocol helpers the STS
//! client shares. Calls are SigV4-signed with the first access key Cognate is configured with,
//! in Cognate's default region: an emulator at the endpoint (moto, LocalStack) takes any
//! well-formed signature, and a real service the key it was given.

use serde_json::Value;

use crate::context::Ctx;
use crate::fetch::{Answer, Outgoing};

/// Why a call to another service did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// The service's error code (`ResourceNotFoundException`, `InvalidParameter`), or
    /// `Unreachable` when there was no answer.
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn unreachable(endpoint: &str, detail: impl std::fmt::Display) -> CallError {
    CallError { code: "Unreachable".into(), message: format!("{endpoint} could not be reached: {detail}") }
}

/// `host[:port]` of an http(s) URL, as the `host` header carries it.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|host| !host.is_empty())
}

/// POSTs `body` to `path` at `endpoint`, signed for `service`; the answer, with its headers.
pub async fn signed_post(
    ctx: &Ctx,
    (endpoint, path): (&str, &str),
    service: &str,
    mut headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<Answer, CallError> {
    let host = authority(endpoint).ok_or_else(|| unreachable(endpoint, "not an http(s) URL"))?;
    headers.push(("host".into(), host.to_owned()));
    if let Some(key) = &ctx.settings().outbound_credentials {
        let credentials = cognate_crypto::sigv4::SigningCredentials {
            access_key_id: &key.access_key_id,
            secret_access_key: &key.secret_access_key,
            session_token: None,
        };
        let request =
            cognate_crypto::sigv4::Request { method: "POST", path, query: "", headers: &headers, body: &body };
        let region = &ctx.settings().region;
        let signature =
            cognate_crypto::sigv4::sign(&request, service, region, &credentials, std::time::SystemTime::now());
        headers.extend(signature);
    }
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let outgoing = Outgoing { method: "POST", url, headers, body };
    ctx.state.fetch.exchange(outgoing).await.map_err(|e| unreachable(endpoint, e))
}

/// A JSON 1.1 call (`X-Amz-Target: {target}`), e.g. Kinesis's `Kinesis_20131202.PutRecord`.
pub async fn json_call(
    ctx: &Ctx,
    endpoint: &str,
    service: &str,
    target: &str,
    input: &Value,
) -> Result<Value, CallError> {
    let headers =
        vec![("content-type".into(), "application/x-amz-json-1.1".into()), ("x-amz-target".into(), target.to_owned())];
    let body = serde_json::to_vec(input).map_err(|e| unreachable(endpoint, e))?;
    let Answer { status, body: answer, .. } = signed_post(ctx, (endpoint, "/"), service, headers, body).await?;
    let parsed: Value =
        if answer.trim().is_empty() { Value::Null } else { serde_json::from_str(&answer).unwrap_or(Value::Null) };
    if (200..300).contains(&status) {
        return Ok(parsed);
    }
    let code = parsed["__type"]
        .as_str()
        .map_or_else(|| format!("HTTP {status}"), |t| t.rsplit('#').next().unwrap_or(t).to_owned());
    let message = parsed["message"].as_str().or(parsed["Message"].as_str()).unwrap_or(&answer).to_owned();
    Err(CallError { code, message })
}

/// A Query-protocol call (form-encoded `Action=...`), e.g. SNS's; the XML answer.
pub async fn query_call(
    ctx: &Ctx,
    endpoint: &str,
    service: &str,
    params: &[(&str, &str)],
) -> Result<String, CallError> {
    let headers = vec![("content-type".into(), "application/x-www-form-urlencoded; charset=utf-8".into())];
    let body = form_of(params).into_bytes();
    let Answer { status, body: answer, .. } = signed_post(ctx, (endpoint, "/"), service, headers, body).await?;
    if let Some(code) = element(&answer, "Code").filter(|_| !(200..300).contains(&status)) {
        let message = element(&answer, "Message").map(unescape).unwrap_or_default();
        return Err(CallError { code: code.to_owned(), message });
    }
    if !(200..300).contains(&status) {
        return Err(CallError { code: format!("HTTP {status}"), message: answer });
    }
    Ok(answer)
}

/// The text of the first `<element>` of an XML document (Query APIs' answers are flat
/// enough for this).
pub fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

/// XML text with its five predefined entities resolved.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// `text` percent-encoded, every byte but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_of(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
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

    #[test]
    fn authorities_of_urls() {
        assert_eq!(authority("http://127.0.0.1:5000"), Some("127.0.0.1:5000"));
        assert_eq!(authority("https://kinesis.us-east-1.amazonaws.com/x?y"), Some("kinesis.us-east-1.amazonaws.com"));
        assert_eq!(authority("ftp://x"), None);
        assert_eq!(authority("http://"), None);
    }
}
