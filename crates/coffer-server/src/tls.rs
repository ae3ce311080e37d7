//! TLS: rustls (aws-lc-rs provider), TLS 1.2 and 1.3 only. Without `--tls-cert/--tls-key` the server keeps a
//! local CA in the data directory (created on first start) and issues itself a certificate for localhost,
//! 127.0.0.1, ::1 and the configured host names at every start.
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context;
use coffer_crypto::SecretBytes;
use coffer_crypto::x509::{self, CertifiedKey};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ServeConfig;
use crate::datadir::{DataDir, write_private, write_public};

/// Loads or creates the certificate and key to serve, as PEM.
pub fn certificate(config: &ServeConfig, dir: &DataDir) -> anyhow::Result<(String, SecretBytes)> {
    if let (Some(c), Some(k)) = (&config.tls_cert, &config.tls_key) {
        let cert = std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
        let key = SecretBytes::new(std::fs::read(k).with_context(|| format!("reading {}", k.display()))?);
        return Ok((cert, key));
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

/// The expiry (Unix seconds) of the first certificate in a PEM chain.
pub fn not_after(cert_pem: &str) -> Option<i64> {
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes()).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// A rustls server configuration for the PEM certificate chain and key.
pub fn server_config(cert_pem: &str, key_pem: &SecretBytes) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("parsing certificate PEM")?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in the TLS certificate file");
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.expose_secret())
        .context("parsing private key PEM")?
        .context("no private key in the TLS key file")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
