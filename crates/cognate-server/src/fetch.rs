//! The server's HTTP(S) client, for what the domain fetches: external identity providers'
//! JWKS, credentials from an external STS (`--sts-endpoint`), SNS and Kinesis calls, Lambda
//! trigger functions. Each request has a timeout and a size limit; HTTPS trusts the web PKI's
//! roots (webpki-roots). Connections are kept alive and reused per scheme, host and port (a
//! trigger runs on every sign-in: a new TCP connection each time would cost more than the call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cognate_core::fetch::{Answer, Answered, Exchanged, Fetch, Fetched, Outgoing};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);
/// JWKS documents are a few kilobytes; anything much larger is not one.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Idle connections kept per scheme, host and port.
const MAX_IDLE_PER_ORIGIN: usize = 8;

/// Where a connection goes: https or not, host, port.
type Origin = (bool, String, u16);

pub struct HttpFetch {
    tls: tokio_rustls::TlsConnector,
    idle: Mutex<HashMap<Origin, Vec<SendRequest<Full<Bytes>>>>>,
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
        Ok(HttpFetch { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), idle: Mutex::new(HashMap::new()) })
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
        let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let mut headers = request.headers;
        if !headers.iter().any(|(name, _)| name == "host") {
            let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_else(|| host.clone());
            headers.push(("host".into(), authority));
        }
        let body = Bytes::from(request.body);
        let build = || {
            let mut builder = hyper::Request::builder().method(request.method).uri(target.as_str());
            for (name, value) in &headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            builder.body(Full::new(body.clone())).map_err(|e| e.to_string())
        };
        let origin = (https, host, port);
        // A kept connection the other side has closed meanwhile refuses the request before
        // sending any of it: then a new connection. A request that may have gone out is not
        // sent again here (the callers that retry, like Lambda's, decide that).
        if let Some(sender) = self.take_idle(&origin) {
            match self.exchange_on(&origin, sender, build()?).await {
                Exchange::Done(raw) => return Ok(raw),
                Exchange::Failed(err) => return Err(err),
                Exchange::NotSent => {}
            }
        }
        let sender = self.connect(&origin).await?;
        match self.exchange_on(&origin, sender, build()?).await {
            Exchange::Done(raw) => Ok(raw),
            Exchange::Failed(err) => Err(err),
            Exchange::NotSent => Err(format!("{url}: the connection closed before the request was sent")),
        }
    }

    fn take_idle(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        let senders = idle.get_mut(origin)?;
        while let Some(sender) = senders.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn keep(&self, origin: &Origin, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let senders = idle.entry(origin.clone()).or_default();
            if senders.len() < MAX_IDLE_PER_ORIGIN {
                senders.push(sender);
            }
        }
    }

    /// A new connection (TLS for https) and its HTTP/1.1 handshake; the connection is driven
    /// by a task of its own until its sender is dropped.
    async fn connect(&self, (https, host, port): &Origin) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream =
            TcpStream::connect((host.as_str(), *port)).await.map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let _ = stream.set_nodelay(true);
        if *https {
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let tls = self.tls.connect(name, stream).await.map_err(|e| format!("TLS with {host}: {e}"))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(stream)).await
        }
    }

    /// Sends `request` on `sender` and reads the whole answer; the connection is kept for the
    /// next request when it is still open.
    async fn exchange_on(
        &self,
        origin: &Origin,
        mut sender: SendRequest<Full<Bytes>>,
        request: hyper::Request<Full<Bytes>>,
    ) -> Exchange {
        if sender.ready().await.is_err() {
            return Exchange::NotSent;
        }
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => {
                return match err.take_message() {
                    Some(_) => Exchange::NotSent,
                    None => Exchange::Failed(err.error().to_string()),
                }
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        match Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await {
            Ok(body) => {
                self.keep(origin, sender);
                Exchange::Done(Raw { status, headers, body: body.to_bytes().to_vec() })
            }
            Err(err) => Exchange::Failed(err.to_string()),
        }
    }
}

/// How a request on one connection went.
enum Exchange {
    Done(Raw),
    /// Refused before any of it was written (the connection had closed): safe to send again.
    NotSent,
    Failed(String),
}

/// An answer as it came: status, headers, body bytes.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn handshake<IO>(io: IO) -> Result<SendRequest<Full<Bytes>>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the other side closes; nothing to report.
        let _ = connection.await;
    });
    Ok(sender)
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
