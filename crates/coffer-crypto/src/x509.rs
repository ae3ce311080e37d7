//! Certificates: the local CA and server certificate that `coffer serve` creates on first start, and parsing of
//! client certificates (credentials of service principals).
//!
//! Certificates are built with rcgen (aws-lc-rs backend) so that OpenSSL (Python `requests`, including Python
//! 3.13's `VERIFY_X509_STRICT`), Node and rustls accept them: the CA has a critical `basicConstraints CA:TRUE`
//! (path length 0), a critical `keyUsage keyCertSign, cRLSign` and a subject key identifier; the server
//! certificate has `CA:FALSE`, `keyUsage digitalSignature`, `extendedKeyUsage serverAuth`, DNS and IP SANs, and
//! subject and authority key identifiers.
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::{Error, SecretBytes, hash, random};

/// CA lifetime.
const CA_VALIDITY_DAYS: i64 = 3650;
/// Server certificate lifetime (under the 397-day limit browsers and Apple platforms enforce).
const SERVER_VALIDITY_DAYS: i64 = 365;
/// `notBefore` is backdated by this much so that clients with a slightly slow clock accept a new certificate.
const BACKDATE: Duration = Duration::hours(1);

/// A certificate with its private key, both PEM.
pub struct CertifiedKey {
    pub cert_pem: String,
    /// PKCS#8 PEM of the private key.
    pub key_pem: SecretBytes,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A new EC P-256 CA certificate (basicConstraints CA:true, keyCertSign, cRLSign), valid 10 years.
///
/// Reads the system clock for the validity period; [`generate_ca_at`] takes the time instead.
pub fn generate_ca(common_name: &str) -> Result<CertifiedKey, Error> {
    generate_ca_at(common_name, unix_now()?)
}

/// [`generate_ca`] with the current time passed in (Unix seconds).
pub fn generate_ca_at(common_name: &str, now: u64) -> Result<CertifiedKey, Error> {
    if common_name.is_empty() {
        return Err(Error::InvalidParameter("CA common name must not be empty"));
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|_| Error::Unspecified)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    set_validity(&mut params, now, CA_VALIDITY_DAYS)?;
    let cert = params.self_signed(&key).map_err(|_| Error::Unspecified)?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: SecretBytes::new(key.serialize_pem().into_bytes()),
    })
}

/// A P-256 server certificate signed by `ca`, with DNS and IP SANs, EKU serverAuth, valid 1 year (397 days max).
///
/// The subject CN is the first DNS name (or the first IP). At least one name is required. `cert_pem` holds only
/// the server certificate; append `ca.cert_pem` for a full chain. Reads the system clock for the validity period;
/// [`issue_server_certificate_at`] takes the time instead.
pub fn issue_server_certificate(
    ca: &CertifiedKey,
    dns_names: &[String],
    ips: &[IpAddr],
) -> Result<CertifiedKey, Error> {
    issue_server_certificate_at(ca, dns_names, ips, unix_now()?)
}

/// [`issue_server_certificate`] with the current time passed in (Unix seconds).
pub fn issue_server_certificate_at(
    ca: &CertifiedKey,
    dns_names: &[String],
    ips: &[IpAddr],
    now: u64,
) -> Result<CertifiedKey, Error> {
    let common_name = match (dns_names.first(), ips.first()) {
        (Some(dns), _) => dns.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => {
            return Err(Error::InvalidParameter(
                "a server certificate needs a DNS name or an IP address",
            ));
        }
    };
    let ca_key_pem =
        std::str::from_utf8(ca.key_pem.expose_secret()).map_err(|_| Error::InvalidKey("CA key is not PEM text"))?;
    let ca_key =
        KeyPair::from_pem(ca_key_pem).map_err(|_| Error::InvalidKey("CA key is not a PKCS#8 PEM private key"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)
        .map_err(|_| Error::InvalidParameter("CA certificate does not parse"))?;

    let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
    for name in dns_names {
        let name = name
            .as_str()
            .try_into()
            .map_err(|_| Error::InvalidParameter("DNS name is not ASCII"))?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(ips.iter().copied().map(SanType::IpAddress));

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|_| Error::Unspecified)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(&common_name);
    params.subject_alt_names = sans;
    // `ExplicitNoCa` writes basicConstraints CA:FALSE and the subject key identifier.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    set_validity(&mut params, now, SERVER_VALIDITY_DAYS)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|_| Error::InvalidParameter("server certificate rejected"))?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: SecretBytes::new(key.serialize_pem().into_bytes()),
    })
}

/// Decodes every `CERTIFICATE` block of a PEM string to DER. Error if there is none.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|_| Error::InvalidParameter("malformed PEM"))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidParameter("no CERTIFICATE block in PEM"));
    }
    Ok(out)
}

/// base64url (unpadded) SHA-1 of the DER: the JOSE `x5t`.
pub fn thumbprint_sha1(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hash::sha1(der))
}

/// base64url (unpadded) SHA-256 of the DER: the JOSE `x5t#S256`.
pub fn thumbprint_sha256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hash::sha256(der))
}

/// Checks that `der` parses as an X.509 certificate with an RSA public key of at least 2048 bits, and returns
/// its subject as a string (for display).
pub fn check_client_certificate(der: &[u8]) -> Result<String, Error> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| Error::InvalidParameter("not a DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(Error::InvalidParameter("trailing data after the certificate"));
    }
    // AWS-LC parses the SubjectPublicKeyInfo and accepts only RSA keys of 2048..=8192 bits.
    aws_lc_rs::rsa::PublicKey::from_der(cert.public_key().raw)
        .map_err(|_| Error::InvalidParameter("certificate key must be RSA with at least 2048 bits"))?;
    Ok(cert.subject().to_string())
}

pub(crate) fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A random positive 128-bit serial number (RFC 5280: at most 20 octets, positive, unpredictable).
pub(crate) fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes: [u8; 16] = random::array()?;
    // Clear the sign bit and set the next one so the DER INTEGER is positive and exactly 16 octets.
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

pub(crate) fn set_validity(params: &mut CertificateParams, now: u64, days: i64) -> Result<(), Error> {
    let now = i64::try_from(now).map_err(|_| Error::InvalidParameter("time out of range"))?;
    let now = OffsetDateTime::from_unix_timestamp(now).map_err(|_| Error::InvalidParameter("time out of range"))?;
    params.not_before = now
        .checked_sub(BACKDATE)
        .ok_or(Error::InvalidParameter("time out of range"))?;
    params.not_after = now
        .checked_add(Duration::days(days))
        .ok_or(Error::InvalidParameter("time out of range"))?;
    Ok(())
}

pub(crate) fn unix_now() -> Result<u64, Error> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Unspecified)
}

/// The subject of a certificate (DER), as text (`CN=…`).
pub fn subject(der: &[u8]) -> Result<String, Error> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| Error::InvalidParameter("not an X.509 certificate"))?;
    Ok(cert.subject().to_string())
}
