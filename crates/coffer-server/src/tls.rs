//! TLS: rustls (aws-lc-rs provider). See docs/TLS.md.
//!
//! - Versions: TLS 1.3 and 1.2 (`[tls] min_version = "1.2"`, the default; rustls prefers 1.3 when the client
//!   offers it) or TLS 1.3 only (`min_version = "1.3"`).
//! - Cipher suites: AEAD with forward secrecy only, listed in [`TLS13_SUITES`] and [`TLS12_SUITES`]. No CBC, no
//!   RSA key exchange, no SHA-1 MACs.
//! - Client certificates (`[tls] client_auth`): `off`, `optional` (checked against `client_ca` when presented)
//!   or `required` (mutual TLS). The bearer token is required either way.
//! - Certificate: without `--tls-cert/--tls-key` the server keeps a local CA in the data directory (created on
//!   first start) and issues itself a certificate for localhost, 127.0.0.1, ::1 and the configured host names at
//!   every start. With them, the files are re-read without a restart when they change (polled every
//!   `reload_interval_secs`) and on SIGHUP; a reload that fails keeps the current certificate. A generated
//!   certificate is not re-issued by a reload (only by a restart).
//! - Every request carries a [`TlsInfo`] extension with the connection's protocol version and client certificate.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use coffer_crypto::SecretBytes;
use coffer_crypto::release::JwsSigner;
use coffer_crypto::x509::{self, CertifiedKey};
use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::cipher_suite;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::{ProtocolVersion, SupportedCipherSuite};

use crate::config::{ServeConfig, TlsPolicyConfig};
use crate::datadir::{DataDir, write_private, write_public};

/// The TLS 1.3 cipher suites, in the server's order of preference (all AEAD; TLS 1.3 has no other kind).
pub const TLS13_SUITES: &[SupportedCipherSuite] = &[
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// The TLS 1.2 cipher suites, in the server's order of preference: ECDHE key exchange (forward secrecy) with an
/// AEAD cipher, for ECDSA and RSA certificates. The suite must match the certificate's key type.
pub const TLS12_SUITES: &[SupportedCipherSuite] = &[
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// ALPN protocols offered, in order.
const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Loads or creates the certificate and key to serve, as PEM.
pub fn certificate(config: &ServeConfig, dir: &DataDir) -> anyhow::Result<(String, SecretBytes)> {
    if let (Some(c), Some(k)) = (&config.tls_cert, &config.tls_key) {
        return read_files(c, k);
    }
    let ca = if dir.ca_cert().exists() && dir.ca_key().exists() {
        CertifiedKey {
            cert_pem: std::fs::read_to_string(dir.ca_cert())?,
            key_pem: SecretBytes::new(std::fs::read(dir.ca_key())?),
        }
    } else {
        let ca = x509::generate_ca("Coffer local CA")?;
        write_private(&dir.ca_key(), ca.key_pem.expose_secret())?;
        write_public(&dir.ca_cert(), ca.cert_pem.as_bytes())?;
        tracing::info!(path = %dir.ca_cert().display(), "created local CA");
        ca
    };
    let mut dns = vec!["localhost".to_string()];
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    for h in &config.hostname {
        match h.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(h.clone()),
        }
    }
    if !config.listen.ip().is_unspecified() && !ips.contains(&config.listen.ip()) {
        ips.push(config.listen.ip());
    }
    let leaf = x509::issue_server_certificate(&ca, &dns, &ips)?;
    write_private(&dir.server_key(), leaf.key_pem.expose_secret())?;
    write_public(
        &dir.server_cert(),
        format!("{}{}", leaf.cert_pem, ca.cert_pem).as_bytes(),
    )?;
    Ok((format!("{}{}", leaf.cert_pem, ca.cert_pem), leaf.key_pem))
}

/// Reads a PEM certificate chain and key file.
fn read_files(cert: &Path, key: &Path) -> anyhow::Result<(String, SecretBytes)> {
    let cert_pem = std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pem = SecretBytes::new(std::fs::read(key).with_context(|| format!("reading {}", key.display()))?);
    Ok((cert_pem, key_pem))
}

/// The expiry (Unix seconds) of the first certificate in a PEM chain.
pub fn not_after(cert_pem: &str) -> Option<i64> {
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes()).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The crypto provider: aws-lc-rs restricted to [`TLS13_SUITES`] and [`TLS12_SUITES`], with its default key
/// exchange groups (X25519, P-256, P-384 and the hybrid X25519MLKEM768).
pub fn provider() -> Arc<CryptoProvider> {
    let mut suites = TLS13_SUITES.to_vec();
    suites.extend_from_slice(TLS12_SUITES);
    Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::aws_lc_rs::default_provider()
    })
}

/// Parses a PEM certificate chain and private key into a rustls certified key (checking that they match).
pub fn certified_key(
    cert_pem: &str,
    key_pem: &SecretBytes,
    provider: &CryptoProvider,
) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("parsing certificate PEM")?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in the TLS certificate file");
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.expose_secret())
        .context("parsing private key PEM")?
        .context("no private key in the TLS key file")?;
    let ck = rustls::sign::CertifiedKey::from_der(certs, key, provider)
        .context("the TLS private key is unusable or does not match the certificate")?;
    Ok(Arc::new(ck))
}

/// Client certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    Off,
    Optional,
    Required,
}

impl ClientAuth {
    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => anyhow::bail!("tls.client_auth must be off, optional or required (not '{other}')"),
        }
    }
}

/// A rustls server configuration: versions per `min_version`, the restricted provider, the client certificate
/// verifier for `client_auth` (trusting the CA certificates in `client_ca_pem`), the certificate from `resolver`,
/// ALPN h2 and http/1.1.
pub fn server_config(
    policy: &TlsPolicyConfig,
    client_ca_pem: Option<&[u8]>,
    resolver: Arc<dyn ResolvesServerCert>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let versions: &[&'static rustls::SupportedProtocolVersion] = match policy.min_version.as_str() {
        "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
        "1.3" => &[&rustls::version::TLS13],
        other => anyhow::bail!("tls.min_version must be 1.2 or 1.3 (not '{other}')"),
    };
    let builder =
        rustls::ServerConfig::builder_with_provider(Arc::clone(&provider)).with_protocol_versions(versions)?;
    let auth = ClientAuth::parse(&policy.client_auth)?;
    let builder = if auth == ClientAuth::Off {
        builder.with_no_client_auth()
    } else {
        let pem = client_ca_pem.context("tls.client_auth needs tls.client_ca")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &pem[..]) {
            roots
                .add(c.context("parsing the client CA PEM")?)
                .context("a client CA certificate is not usable as a trust anchor")?;
        }
        if roots.is_empty() {
            anyhow::bail!("no certificate in the client CA file");
        }
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        if auth == ClientAuth::Optional {
            verifier = verifier.allow_unauthenticated();
        }
        builder.with_client_cert_verifier(verifier.build().context("building the client certificate verifier")?)
    };
    let mut cfg = builder.with_cert_resolver(resolver);
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Serves whichever certificate was loaded last.
#[derive(Debug)]
pub struct ReloadingCertResolver {
    current: RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl ReloadingCertResolver {
    /// A resolver serving `key`.
    pub fn new(key: Arc<rustls::sign::CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(key),
        }
    }

    /// Serves `key` on new handshakes from now on.
    pub fn set(&self, key: Arc<rustls::sign::CertifiedKey>) {
        match self.current.write() {
            Ok(mut g) => *g = key,
            Err(p) => *p.into_inner() = key,
        }
    }

    /// The certificate being served.
    pub fn current(&self) -> Arc<rustls::sign::CertifiedKey> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }
}

/// What a file looked like at the last check (modification time and length); `None` when it could not be read.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Stamps {
    cert: Stamp,
    key: Stamp,
    client_ca: Stamp,
}

fn stamps_of(files: Option<&(PathBuf, PathBuf)>, policy: &TlsPolicyConfig) -> Stamps {
    Stamps {
        cert: files.and_then(|(c, _)| stamp(c)),
        key: files.and_then(|(_, k)| stamp(k)),
        client_ca: client_ca_path(policy).and_then(stamp),
    }
}

/// The client CA file, when client certificates are asked for.
fn client_ca_path(policy: &TlsPolicyConfig) -> Option<&Path> {
    if ClientAuth::parse(&policy.client_auth).ok()? == ClientAuth::Off {
        return None;
    }
    policy.client_ca.as_deref()
}

/// The client CA PEM, when client certificates are asked for.
fn read_client_ca(policy: &TlsPolicyConfig) -> anyhow::Result<Option<Vec<u8>>> {
    match client_ca_path(policy) {
        Some(p) => Ok(Some(
            std::fs::read(p).with_context(|| format!("reading the client CA {}", p.display()))?,
        )),
        None => Ok(None),
    }
}

/// The TLS side of a running server: the policy, the current certificate, the rustls configuration shared by the
/// listeners, and reloading.
pub struct TlsManager {
    policy: TlsPolicyConfig,
    /// `tls_cert` and `tls_key`, when configured (a generated certificate is not reloaded).
    files: Option<(PathBuf, PathBuf)>,
    resolver: Arc<ReloadingCertResolver>,
    rustls: RustlsConfig,
    stamps: Mutex<Stamps>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Signs Secure Key Release responses with the certificate being served (`None` when its key cannot sign);
    /// rebuilt with every certificate reload.
    release_signer: RwLock<Option<Arc<JwsSigner>>>,
}

/// The release signer for a certificate and key (docs/KEY-RELEASE.md), or `None` (logged) if that key cannot sign.
fn release_signer_for(cert_pem: &str, key_pem: &SecretBytes) -> Option<Arc<JwsSigner>> {
    match JwsSigner::from_pem(cert_pem, key_pem) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::warn!(error = %e, "the TLS key cannot sign key release responses; release is unavailable");
            None
        }
    }
}

impl std::fmt::Debug for TlsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsManager")
            .field("policy", &self.policy)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsManager {
    /// Builds the TLS configuration for `config.tls` serving `cert_pem`/`key_pem` (from [`certificate`]).
    /// `metrics` gets the certificate's expiry after every reload.
    pub fn new(
        config: &ServeConfig,
        cert_pem: &str,
        key_pem: &SecretBytes,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> anyhow::Result<Self> {
        let files = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => None,
        };
        let policy = config.tls.clone();
        // Taken before the files are read, so that a change made while they are read is picked up by the next check.
        let stamps = stamps_of(files.as_ref(), &policy);
        let resolver = Arc::new(ReloadingCertResolver::new(certified_key(
            cert_pem,
            key_pem,
            &provider(),
        )?));
        let ca = read_client_ca(&policy)?;
        let cfg = server_config(
            &policy,
            ca.as_deref(),
            Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>,
        )?;
        Ok(Self {
            policy,
            files,
            resolver,
            rustls: RustlsConfig::from_config(cfg),
            stamps: Mutex::new(stamps),
            metrics,
            release_signer: RwLock::new(release_signer_for(cert_pem, key_pem)),
        })
    }

    /// Signs Secure Key Release responses: the key and chain of the certificate being served (the last one
    /// loaded). `None` when that key cannot sign (a key type JWS does not cover).
    pub fn release_signer(&self) -> Option<Arc<JwsSigner>> {
        match self.release_signer.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The acceptor for a listener: the connection caps, the TLS handshake, then [`TlsInfo`] on every request of
    /// the connection and its idle and header deadlines (`crate::connections`).
    pub fn acceptor(&self, connections: Arc<crate::connections::Connections>) -> TlsInfoAcceptor {
        TlsInfoAcceptor {
            limits: connections.limits(),
            inner: RustlsAcceptor::new(self.rustls.clone()).acceptor(crate::connections::CapAcceptor { connections }),
        }
    }

    /// Whether anything can be reloaded (certificate files or a client CA file are configured).
    pub fn watches_files(&self) -> bool {
        self.files.is_some() || client_ca_path(&self.policy).is_some()
    }

    /// Re-reads `tls_cert`/`tls_key` and `client_ca`: all of them when `force` (SIGHUP,
    /// [`crate::Running::reload_tls`]), else those whose modification time or size changed since the last check.
    /// New connections get the new certificate; open ones keep theirs. On failure (unreadable file, bad PEM, key
    /// not matching the certificate) the current certificate and client CAs stay, the error is logged and
    /// returned. Returns whether anything was reloaded. A generated certificate (no `tls_cert`) is not reloaded.
    pub fn reload(&self, force: bool) -> anyhow::Result<bool> {
        let result = self.try_reload(force);
        match &result {
            Ok(false) if force && !self.watches_files() => {
                tracing::info!("TLS reload: nothing to reload (the certificate is generated, no client CA file)");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "TLS reload failed: what could not be loaded stays as it was"
            ),
        }
        result
    }

    fn try_reload(&self, force: bool) -> anyhow::Result<bool> {
        let mut last = match self.stamps.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = stamps_of(self.files.as_ref(), &self.policy);
        let cert_changed = self.files.is_some() && (force || now.cert != last.cert || now.key != last.key);
        let ca_changed = client_ca_path(&self.policy).is_some() && (force || now.client_ca != last.client_ca);
        // Recorded before loading: a file that fails to load is reported once, and retried when it changes again.
        // The lock is held until the end, so that concurrent reloads (SIGHUP, the poll) take turns.
        *last = now;
        let cert = if cert_changed {
            self.reload_certificate().context("reloading the certificate")
        } else {
            Ok(())
        };
        let ca = if ca_changed {
            read_client_ca(&self.policy)
                .and_then(|ca| {
                    server_config(
                        &self.policy,
                        ca.as_deref(),
                        Arc::clone(&self.resolver) as Arc<dyn ResolvesServerCert>,
                    )
                })
                .map(|cfg| {
                    self.rustls.reload_from_config(cfg);
                    tracing::info!("TLS client CAs reloaded");
                })
                .context("reloading the client CAs")
        } else {
            Ok(())
        };
        cert.and(ca)?;
        drop(last);
        Ok(cert_changed || ca_changed)
    }

    fn reload_certificate(&self) -> anyhow::Result<()> {
        let Some((cert, key)) = &self.files else {
            return Ok(());
        };
        let (cert_pem, key_pem) = read_files(cert, key)?;
        let ck = certified_key(&cert_pem, &key_pem, &provider())?;
        // Built from the same PEMs, so that release responses carry the certificate being served.
        let signer = release_signer_for(&cert_pem, &key_pem);
        self.resolver.set(ck);
        match self.release_signer.write() {
            Ok(mut g) => *g = signer,
            Err(p) => *p.into_inner() = signer,
        }
        if let Some(t) = not_after(&cert_pem) {
            self.metrics.set_tls_not_after(t);
        }
        tracing::info!(path = %cert.display(), not_after = not_after(&cert_pem), "TLS certificate reloaded");
        Ok(())
    }

    /// Checks the files every `interval` and reloads what changed (runs until aborted).
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            // Errors are logged by `reload`; the current certificate stays.
            let _ = self.reload(false);
        }
    }
}

/// Facts of the TLS connection a request came over (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLS1_2` or `TLS1_3` (the audit record's `tlsVersion`).
    pub version: &'static str,
    /// Upper-case hex SHA-1 thumbprint of the verified client certificate, if one was presented.
    pub client_cert_sha1: Option<String>,
    /// Subject of the verified client certificate, if one was presented.
    pub client_cert_subject: Option<String>,
}

impl TlsInfo {
    /// The facts of an established server connection.
    pub fn of(conn: &rustls::ServerConnection) -> Self {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLS1_3",
            Some(ProtocolVersion::TLSv1_2) => "TLS1_2",
            _ => "unknown",
        };
        let leaf = conn.peer_certificates().and_then(|c| c.first());
        Self {
            version,
            client_cert_sha1: leaf.map(|c| {
                coffer_crypto::hash::sha1(c)
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect()
            }),
            client_cert_subject: leaf.and_then(|c| {
                let (_, cert) = x509_parser::parse_x509_certificate(c).ok()?;
                Some(cert.subject().to_string())
            }),
        }
    }
}

/// The listeners' acceptor: the connection caps, rustls' handshake, then the connection's [`TlsInfo`] added to each of
/// its requests, and its stream and service watched for idle time and slow request heads. The service it wraps
/// already carries `ConnectInfo` (added when the connection was accepted).
#[derive(Debug, Clone)]
pub struct TlsInfoAcceptor {
    inner: RustlsAcceptor<crate::connections::CapAcceptor>,
    limits: crate::connections::Limits,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Accept<tokio::net::TcpStream, S> for TlsInfoAcceptor
where
    S: Send + 'static,
{
    type Stream = crate::connections::Watched<
        <RustlsAcceptor<crate::connections::CapAcceptor> as Accept<tokio::net::TcpStream, S>>::Stream,
    >;
    type Service = crate::connections::Tracked<tower_http::add_extension::AddExtension<S, TlsInfo>>;
    type Future = BoxFuture<std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let handshake = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let conn = stream.get_ref().1;
            let info = TlsInfo::of(conn);
            let http1 = conn.alpn_protocol() != Some(b"h2".as_slice());
            let service = tower_http::add_extension::AddExtension::new(service, info);
            Ok(crate::connections::watch(stream, service, limits, http1))
        })
    }
}
