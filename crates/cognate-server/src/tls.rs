//! HTTPS. The certificate is either the operator's (`--tls-cert`/`--tls-key`, PEM) or made at
//! start by a local CA (`--tls self-signed`): clients that insist on https (aws-jwt-verify
//! fetches JWKS over https only) trust the CA's `ca.pem` once, e.g. with
//! `NODE_EXTRA_CA_CERTS=ca.pem`, and keep trusting it across restarts.
//!
//! The CA is created once in the data dir, as `ca.pem` and `ca-key.pem` (owner-only), and reused
//! after; with `--ephemeral` it lives in memory and its certificate is written only to
//! `--tls-ca-file`. The leaf certificate is made anew at each start, for localhost, the pools'
//! prefix domains (`*.auth.localhost`), 127.0.0.1, ::1, the address listened on and the public
//! URL's host.
//!
//! Connections are served by the same axum service as plain HTTP: [`TlsListener`] hands it
//! streams whose handshake is done, made off the accept loop so that a slow or silent client
//! does not hold up the others.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::config::{Config, TlsConfig};

/// Name of the CA certificate in the data dir (what clients are told to trust).
pub const CA_CERT_FILE: &str = "ca.pem";
/// Name of the CA's private key in the data dir.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// How long a client may take over its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A CA outlives many restarts: trusted once, it should not need trusting again soon.
const CA_VALIDITY: time::Duration = time::Duration::days(3650);
/// The leaf is made at each start; 397 days is the longest browsers accept.
const LEAF_VALIDITY: time::Duration = time::Duration::days(397);
/// Clocks of clients a little behind the server's still accept a fresh certificate.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// The TLS server configuration for `config`, or `None` for plain HTTP. Creates the local CA
/// on first use of `--tls self-signed`.
pub fn server_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let (chain, key) = match &config.tls {
        None => return Ok(None),
        Some(TlsConfig::Files { cert, key }) => (read_chain(cert)?, read_key(key)?),
        Some(TlsConfig::SelfSigned { ca_file }) => {
            let ca = if config.ephemeral { LocalCa::generate()? } else { LocalCa::load_or_create(&config.data_dir)? };
            if let Some(path) = ca_file {
                write_replacing(path, ca.cert_pem.as_bytes(), false)
                    .map_err(|e| format!("cannot write the CA certificate to {}: {e}", path.display()))?;
            }
            let (leaf, key) = ca.issue_leaf(&leaf_names(config))?;
            (vec![leaf, ca.cert_der()?], key)
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate and key do not fit together: {e}"))?;
    // The server speaks HTTP/1.1 only; saying so lets a client that offers h2 fall back.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("the TLS certificate {} holds no PEM certificate", path.display()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("cannot read the TLS key {}: {e}", path.display()))
}

/// The names the self-signed leaf is valid for: the loopback names a local client uses, the
/// address listened on when it is a specific one, and the public URL's host.
fn leaf_names(config: &Config) -> Vec<SanType> {
    let mut ips: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
    // A prefix domain P is served at P.auth.localhost: its hosted pages over https too.
    let mut dns: Vec<String> = vec!["localhost".into(), "*.auth.localhost".into()];
    if !config.listen.ip().is_unspecified() {
        ips.push(config.listen.ip());
    }
    if let Some(host) = url_host(&config.public_url) {
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(host.to_ascii_lowercase()),
        }
    }
    ips.sort();
    ips.dedup();
    dns.sort();
    dns.dedup();
    let dns = dns.into_iter().filter_map(|name| name.try_into().ok().map(SanType::DnsName));
    dns.chain(ips.into_iter().map(SanType::IpAddress)).collect()
}

/// `host` of `scheme://host[:port][/path]` (with brackets for IPv6).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.split(':').next()?
    };
    Some(host).filter(|h| !h.is_empty())
}

/// The local CA of `--tls self-signed`.
struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl LocalCa {
    fn generate() -> Result<Self, String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot generate the CA key: {e}"))?;
        Self::with_key(key, None)
    }

    /// The CA of `data_dir`, created there on first use. A key without its certificate gets
    /// the certificate again (same key and name, so what trusted the old one trusts it); a
    /// certificate without its key is an error, as a new key would break that trust.
    fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        let key = match std::fs::read_to_string(&key_path) {
            Ok(pem) => {
                crate::restrict_to_owner(&key_path);
                Some(KeyPair::from_pem(&pem).map_err(|e| format!("{} is not a private key: {e}", key_path.display()))?)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", key_path.display())),
        };
        let existing_cert = match std::fs::read_to_string(&cert_path) {
            Ok(pem) => Some(pem),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", cert_path.display())),
        };
        match (key, existing_cert) {
            (Some(key), Some(pem)) => {
                let ca = Self::with_key(key, Some(pem))?;
                ca.check_signs_for_itself(&cert_path, &key_path)?;
                Ok(ca)
            }
            (Some(key), None) => {
                let ca = Self::with_key(key, None)?;
                write_replacing(&cert_path, ca.cert_pem.as_bytes(), false)
                    .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
                Ok(ca)
            }
            (None, Some(_)) => Err(format!(
                "{} exists without its key {}: remove it to create a new local CA (clients must then trust the new one)",
                cert_path.display(),
                key_path.display()
            )),
            (None, None) => {
                let ca = Self::generate()?;
                // The key first: a crash before the certificate is written is repaired above.
                write_new_private(&key_path, ca.issuer.key().serialize_pem().as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
                write_replacing(&cert_path, ca.cert_pem.as_bytes(), false)
                    .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
                tracing::info!(path = %cert_path.display(), "created a local CA for --tls self-signed: trust this file");
                Ok(ca)
            }
        }
    }

    /// The CA for `key`; `cert_pem` is its certificate when one was kept, else one is made.
    fn with_key(key: KeyPair, cert_pem: Option<String>) -> Result<Self, String> {
        let params = ca_params(&key);
        let cert_pem = match cert_pem {
            Some(pem) => pem,
            None => params.self_signed(&key).map_err(|e| format!("cannot make the CA certificate: {e}"))?.pem(),
        };
        Ok(LocalCa { issuer: Issuer::new(params, key), cert_pem })
    }

    fn cert_der(&self) -> Result<CertificateDer<'static>, String> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| format!("the CA certificate is not PEM: {e}"))
    }

    fn issue_leaf(&self, names: &[SanType]) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot generate the TLS key: {e}"))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Cognate");
        name.push(DnType::CommonName, "Cognate server");
        params.distinguished_name = name;
        params.subject_alt_names = names.to_vec();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_VALIDITY;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| format!("cannot sign the TLS certificate: {e}"))?;
        let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| format!("TLS key: {e}"))?;
        Ok((cert.der().clone(), key))
    }

    /// A kept `ca.pem` must be the certificate of the kept key, or every client trusting it
    /// would refuse the server: checked by verifying a leaf against it as a client would.
    fn check_signs_for_itself(&self, cert_path: &Path, key_path: &Path) -> Result<(), String> {
        let mismatch = |e: String| {
            format!(
                "{} does not verify certificates signed with {} ({e}): restore the pair, or remove both to create a new \
                 local CA",
                cert_path.display(),
                key_path.display()
            )
        };
        let root = self.cert_der()?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.clone()).map_err(|e| mismatch(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| mismatch(e.to_string()))?;
        let names = [SanType::DnsName("localhost".try_into().map_err(|e| format!("{e}"))?)];
        let (leaf, _) = self.issue_leaf(&names)?;
        let server_name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(&leaf, &[], &server_name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| mismatch(e.to_string()))
    }
}

/// The CA's name and powers. Built from the key alone, so that a CA whose certificate is
/// made again from its kept key names itself (and signs) exactly as before.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Cognate");
    // Two local CAs (two data dirs) trusted side by side keep distinct names.
    let id = params.key_identifier(key);
    name.push(DnType::CommonName, format!("Cognate local CA {}", hex::encode(&id[..id.len().min(6)])));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params
}

/// Writes `bytes` to `path` through a temporary file renamed over it, so that a reader never
/// sees half a file. Owner-only when `private`.
fn write_replacing(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let tmp = temporary_sibling(path);
    let result = write_file(&tmp, bytes, private, false).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` owner-only (0600 from the first byte), failing if it exists.
fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file(path, bytes, true, true)
}

fn write_file(path: &Path, bytes: &[u8], private: bool, create_new: bool) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}", hex::encode(cognate_crypto::ids::random_bytes::<6>())));
    path.with_file_name(name)
}

/// A listener yielding TLS streams whose handshake is complete. The TCP accept loop runs in
/// its own task and each handshake in another; the loop ends when the listener is dropped
/// (axum drops it on graceful shutdown).
pub struct TlsListener {
    ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        // A handful of finished handshakes may wait for axum to take them.
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    () = sender.closed() => return,
                    accepted = crate::accept_tcp(&listener) => accepted,
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // Only if the accept task died (it ends only after this listener is dropped):
            // nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: crate::config::ServeArgs) -> Config {
        args.resolve().expect("config")
    }

    fn self_signed_in(dir: &Path) -> Config {
        config(crate::config::ServeArgs {
            tls: Some(crate::config::TlsMode::SelfSigned),
            data_dir: Some(dir.to_path_buf()),
            ..Default::default()
        })
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://id.example.com:8443/x"), Some("id.example.com"));
        assert_eq!(url_host("http://127.0.0.1:9229"), Some("127.0.0.1"));
        assert_eq!(url_host("https://[::1]:9229/"), Some("[::1]"));
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn the_local_ca_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = self_signed_in(dir.path());
        server_config(&cfg).expect("first start").expect("tls on");
        let cert = std::fs::read_to_string(dir.path().join(CA_CERT_FILE)).expect("ca.pem");
        let key = std::fs::read_to_string(dir.path().join(CA_KEY_FILE)).expect("ca-key.pem");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "the CA key is owner-only: {mode:o}");
        }
        server_config(&cfg).expect("restart").expect("tls on");
        assert_eq!(std::fs::read_to_string(dir.path().join(CA_CERT_FILE)).expect("ca.pem"), cert);
        assert_eq!(std::fs::read_to_string(dir.path().join(CA_KEY_FILE)).expect("key"), key);
        // A lost certificate is made again from the kept key, under the same name.
        std::fs::remove_file(dir.path().join(CA_CERT_FILE)).expect("rm");
        server_config(&cfg).expect("repair").expect("tls on");
        assert!(dir.path().join(CA_CERT_FILE).exists());
    }

    #[test]
    fn a_certificate_that_does_not_match_its_key_is_refused() {
        let (one, two) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        server_config(&self_signed_in(one.path())).expect("one");
        server_config(&self_signed_in(two.path())).expect("two");
        std::fs::copy(two.path().join(CA_CERT_FILE), one.path().join(CA_CERT_FILE)).expect("copy");
        let err = server_config(&self_signed_in(one.path())).expect_err("mismatch");
        assert!(err.contains("does not verify"), "{err}");
        std::fs::remove_file(one.path().join(CA_KEY_FILE)).expect("rm");
        let err = server_config(&self_signed_in(one.path())).expect_err("no key");
        assert!(err.contains("without its key"), "{err}");
    }

    #[test]
    fn ephemeral_ca_writes_only_where_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out-ca.pem");
        let cfg = config(crate::config::ServeArgs {
            tls: Some(crate::config::TlsMode::SelfSigned),
            ephemeral: Some(true),
            data_dir: Some(dir.path().join("never")),
            tls_ca_file: Some(out.clone()),
            ..Default::default()
        });
        server_config(&cfg).expect("tls").expect("on");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["out-ca.pem"]);
        assert!(std::fs::read_to_string(out).expect("ca").contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn operator_files_are_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()]).expect("params").self_signed(&key).expect("c");
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        let cfg = config(crate::config::ServeArgs {
            tls_cert: Some(cert_path.clone()),
            tls_key: Some(key_path.clone()),
            ..Default::default()
        });
        server_config(&cfg).expect("files").expect("on");
        // A key that is not the certificate's is refused at start, not at the first client.
        std::fs::write(&key_path, KeyPair::generate().expect("other").serialize_pem()).expect("write");
        assert!(server_config(&cfg).expect_err("mismatch").contains("do not fit"));
        std::fs::write(&cert_path, "not pem").expect("write");
        assert!(server_config(&cfg).expect_err("garbage").contains("no PEM certificate"));
    }
}
