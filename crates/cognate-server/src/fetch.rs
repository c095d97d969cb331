//! The server's HTTP(S) client, for what the domain fetches: external identity providers'
//! JWKS, credentials from an external STS (`--sts-endpoint`), SNS and Kinesis calls. One request at a time, with a timeout and a size limit; HTTPS trusts the web PKI's roots
//! (webpki-roots) and the operator's extra CA file, as `--tls-ca-file` writes one.

use std::sync::Arc;
use std::time::Duration;

use cognate_core::fetch::{Answer, Answered, Exchanged, Fetch, Fetched, Outgoing};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);
/// JWKS documents are a few kilobytes; anything much larger is not one.
const MAX_BODY_BYTES: usize = 1 << 20;

pub struct HttpFetch {
    tls: tokio_rustls::TlsConnector,
}

impl HttpFetch {
    pub fn new() -> Result<HttpFetch, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("cannot set up the HTTPS client: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(HttpFetch { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// One request: its status, headers and body.
    async fn fetch(&self, request: Outgoing) -> Result<Raw, String> {
        let url = request.url.as_str();
        let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL {url}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url} is not an http(s) URL")),
        };
        let host = uri.host().ok_or_else(|| format!("{url} has no host"))?.to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let stream =
            TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut builder = hyper::Request::builder().method(request.method).uri(target);
        if !request.headers.iter().any(|(name, _)| name == "host") {
            let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_else(|| host.clone());
            builder = builder.header("host", authority);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(Bytes::from(request.body))).map_err(|e| e.to_string())?;
        if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let tls = self.tls.connect(name, stream).await.map_err(|e| format!("TLS with {host}: {e}"))?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(stream), request).await
        }
    }
}

/// An answer as it came: status, headers, body bytes.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn send<IO>(io: IO, request: hyper::Request<Full<Bytes>>) -> Result<Raw, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await.map_err(|e| e.to_string())?;
    driver.abort();
    Ok(Raw { status, headers, body: body.to_bytes().to_vec() })
}

impl HttpFetch {
    /// [`HttpFetch::fetch`] within [`TIMEOUT`], the body as text.
    async fn timed(&self, request: Outgoing) -> Result<Answer, String> {
        let url = request.url.clone();
        match tokio::time::timeout(TIMEOUT, self.fetch(request)).await {
            Ok(Ok(Raw { status, headers, body })) => String::from_utf8(body)
                .map(|body| Answer { status, headers, body })
                .map_err(|_| format!("{url} answered something that is not UTF-8")),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(format!("{url} did not answer within {TIMEOUT:?}")),
        }
    }
}

impl Fetch for HttpFetch {
    fn get<'a>(&'a self, url: &'a str) -> Fetched<'a> {
        let request = Outgoing {
            method: "GET",
            url: url.to_owned(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
        };
        Box::pin(async move {
            match self.timed(request).await? {
                Answer { status: 200..=299, body, .. } => Ok(body),
                Answer { status, .. } => Err(format!("HTTP {status}")),
            }
        })
    }

    fn post_form<'a>(&'a self, url: &'a str, form: String) -> Fetched<'a> {
        let request = Outgoing {
            method: "POST",
            url: url.to_owned(),
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: form.into_bytes(),
        };
        Box::pin(async move { self.timed(request).await.map(|answer| answer.body) })
    }

    fn send(&self, request: Outgoing) -> Answered<'_> {
        Box::pin(async move { self.timed(request).await.map(|answer| (answer.status, answer.body)) })
    }

    fn exchange(&self, request: Outgoing) -> Exchanged<'_> {
        Box::pin(self.timed(request))
    }
}
