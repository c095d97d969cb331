//! The server's HTTP(S) client, for what the domain fetches: external identity providers'
//! JWKS, and credentials from an external STS (`--sts-endpoint`). One GET at a time, with a timeout and a size limit; HTTPS trusts the web PKI's roots
//! (webpki-roots) and the operator's extra CA file, as `--tls-ca-file` writes one.

use std::sync::Arc;
use std::time::Duration;

use cognate_core::fetch::{Fetch, Fetched};
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

    /// One request: GET, or POST of a form; the body of a 2xx answer (any answer with
    /// `any_status`).
    async fn fetch(&self, url: &str, form: Option<String>, any_status: bool) -> Result<String, String> {
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
        let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_else(|| host.clone());
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = match form {
            None => hyper::Request::get(target).header("accept", "application/json"),
            Some(_) => hyper::Request::post(target).header("content-type", "application/x-www-form-urlencoded"),
        }
        .header("host", authority)
        .body(Full::new(Bytes::from(form.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
        let body = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let tls = self.tls.connect(name, stream).await.map_err(|e| format!("TLS with {host}: {e}"))?;
            send(TokioIo::new(tls), request, any_status).await?
        } else {
            send(TokioIo::new(stream), request, any_status).await?
        };
        String::from_utf8(body).map_err(|_| format!("{url} answered something that is not UTF-8"))
    }
}

async fn send<IO>(io: IO, request: hyper::Request<Full<Bytes>>, any_status: bool) -> Result<Vec<u8>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await.map_err(|e| e.to_string())?;
    driver.abort();
    if !status.is_success() && !any_status {
        return Err(format!("HTTP {status}"));
    }
    Ok(body.to_bytes().to_vec())
}

impl HttpFetch {
    async fn timed(&self, url: &str, form: Option<String>, any_status: bool) -> Result<String, String> {
        match tokio::time::timeout(TIMEOUT, self.fetch(url, form, any_status)).await {
            Ok(result) => result,
            Err(_) => Err(format!("{url} did not answer within {TIMEOUT:?}")),
        }
    }
}

impl Fetch for HttpFetch {
    fn get<'a>(&'a self, url: &'a str) -> Fetched<'a> {
        Box::pin(self.timed(url, None, false))
    }

    fn post_form<'a>(&'a self, url: &'a str, form: String) -> Fetched<'a> {
        Box::pin(self.timed(url, Some(form), true))
    }
}
