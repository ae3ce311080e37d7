//! `coffer sd …`: the security-domain officer tools, so no Azure tooling is needed. Files are those of the Azure
//! CLI: wrapping keys as `NAME.pem` (PKCS#8 private key) next to `NAME.cer` (certificate), the security-domain
//! file, the exchange certificate and the restore blob.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::Subcommand;
use coffer_client::{Client, Credentials};
use coffer_crypto::security_domain::{self as sd, RsaCertified};

#[derive(Subcommand)]
pub enum SdCommand {
    /// Generate officers' wrapping key pairs and self-signed certificates (NAME.pem + NAME.cer).
    Keys {
        /// How many key pairs.
        #[arg(long, default_value_t = 3)]
        count: u32,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// File name prefix.
        #[arg(long, default_value = "officer")]
        name: String,
        /// RSA key size.
        #[arg(long, default_value_t = 3072)]
        bits: u32,
    },
    /// Activate an instance: download its security domain for these certificates and quorum, and save the file.
    Download {
        /// Credentials file of an Administrator (admin-credentials.json shape).
        #[arg(long)]
        creds: PathBuf,
        /// Wrapping certificates (PEM), 3 to 10.
        #[arg(long, num_args = 3..=10, required = true)]
        certs: Vec<PathBuf>,
        /// Quorum.
        #[arg(long, default_value_t = 2)]
        quorum: u32,
        /// Where to write the security-domain file.
        #[arg(long)]
        out: PathBuf,
        /// A restore blob made by a quorum of the current officers (`coffer sd restore-blob` for the instance's
        /// `coffer sd exchange-key`): needed to download the security domain of an active instance again.
        #[arg(long)]
        quorum_proof: Option<PathBuf>,
    },
    /// Save the exchange certificate of an instance: the transfer key of an instance in recovery mode, or, on an
    /// active instance, the key a quorum proof for a new download is made for.
    ExchangeKey {
        #[arg(long)]
        creds: PathBuf,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Offline: the hash a security-domain download proposal is known by (for these certificates and quorum). The
    /// officers compare it with the one the exchange key's certificate names before they consent.
    ProposalHash {
        /// Wrapping certificates (PEM) of the proposed download.
        #[arg(long, num_args = 3..=10, required = true)]
        certs: Vec<PathBuf>,
        /// The proposed quorum.
        #[arg(long)]
        quorum: u8,
    },
    /// Offline: decrypt a quorum of shares with the officers' private keys and wrap the domain for the exchange key.
    RestoreBlob {
        /// The security-domain file.
        #[arg(long)]
        sd_file: PathBuf,
        /// Officers' private keys (NAME.pem; NAME.cer must be next to each).
        #[arg(long, num_args = 1.., required = true)]
        keys: Vec<PathBuf>,
        /// The exchange certificate (PEM) of the instance to restore into.
        #[arg(long)]
        exchange_cert: PathBuf,
        /// Where to write the restore blob.
        #[arg(long)]
        out: PathBuf,
    },
    /// Upload a restore blob to an instance in recovery mode and wait for activation.
    Upload {
        #[arg(long)]
        creds: PathBuf,
        /// The restore blob.
        #[arg(long)]
        blob: PathBuf,
    },
}

fn pem_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    coffer_crypto::x509::certificates_from_pem(pem)?
        .into_iter()
        .next()
        .context("no certificate in PEM")
}

fn cert_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    coffer_server::datadir::write_private(path, bytes)
}

/// The JWK the Azure CLI sends for a wrapping certificate.
fn certificate_jwk(der: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "RSA",
        "key_ops": ["verify", "encrypt", "wrapKey"],
        "alg": "RSA-OAEP-256",
        "x5c": [STANDARD.encode(der)],
        "x5t": coffer_crypto::x509::thumbprint_sha1(der),
        "x5t#S256": URL_SAFE_NO_PAD.encode(coffer_crypto::hash::sha256(der)),
    })
}

pub async fn run(cmd: SdCommand) -> anyhow::Result<()> {
    match cmd {
        SdCommand::Keys { count, out, name, bits } => {
            std::fs::create_dir_all(&out)?;
            for i in 1..=count {
                let k = sd::generate_rsa_certified(bits, &format!("{name}{i}"))?;
                write_private(&out.join(format!("{name}{i}.pem")), k.key_pem().expose_secret())?;
                std::fs::write(out.join(format!("{name}{i}.cer")), k.cert_pem())?;
                eprintln!("wrote {}", out.join(format!("{name}{i}.pem")).display());
            }
            Ok(())
        }
        SdCommand::Download {
            creds,
            certs,
            quorum,
            out,
            quorum_proof,
        } => {
            let mut jwks = Vec::new();
            for c in &certs {
                let pem = std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
                jwks.push(certificate_jwk(&pem_der(&pem)?));
            }
            let mut client = Client::new(Credentials::from_file(&creds)?)?;
            let mut body = serde_json::json!({ "certificates": jwks, "required": quorum });
            if let Some(proof) = &quorum_proof {
                let blob = std::fs::read_to_string(proof).with_context(|| format!("reading {}", proof.display()))?;
                body["quorumProof"] = serde_json::Value::String(blob.trim().to_string());
            }
            let r = client
                .call_ok(
                    reqwest::Method::POST,
                    "/securitydomain/download?api-version=7.6",
                    Some(&body),
                )
                .await?;
            let file = r.body["value"]
                .as_str()
                .context("the response has no security domain")?;
            write_private(&out, file.as_bytes())?;
            eprintln!("wrote the security domain to {}", out.display());
            let url = r
                .headers
                .get("azure-asyncoperation")
                .and_then(|v| v.to_str().ok())
                .context("no Azure-AsyncOperation header")?
                .to_string();
            client.poll(&url, Duration::from_secs(120)).await?;
            eprintln!("the HSM is activated");
            Ok(())
        }
        SdCommand::ExchangeKey { creds, out } => {
            let mut client = Client::new(Credentials::from_file(&creds)?)?;
            let r = client
                .call_ok(reqwest::Method::GET, "/securitydomain/upload?api-version=7.6", None)
                .await?;
            let jwk: serde_json::Value =
                serde_json::from_str(r.body["transfer_key"].as_str().context("no transfer_key")?)?;
            let der = STANDARD.decode(jwk["x5c"][0].as_str().context("transfer key without x5c")?)?;
            std::fs::write(&out, cert_pem(&der))?;
            eprintln!("wrote the exchange certificate to {}", out.display());
            let subject = coffer_crypto::x509::subject(&der).unwrap_or_default();
            // On an active instance the subject names the pending download proposal (coffer sd proposal-hash).
            writeln!(std::io::stdout().lock(), "{subject}")?;
            Ok(())
        }
        SdCommand::ProposalHash { certs, quorum } => {
            let mut ders = Vec::new();
            for c in &certs {
                let pem = std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
                ders.push(pem_der(&pem)?);
            }
            let hash = coffer_core::ops::sd_custody::proposal_hash(&ders, quorum);
            writeln!(std::io::stdout().lock(), "{hash}")?;
            Ok(())
        }
        SdCommand::RestoreBlob {
            sd_file,
            keys,
            exchange_cert,
            out,
        } => {
            let file = std::fs::read_to_string(&sd_file).with_context(|| format!("reading {}", sd_file.display()))?;
            let mut officers = Vec::new();
            for k in &keys {
                let key_pem = coffer_crypto::SecretBytes::new(
                    std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
                );
                let cer = k.with_extension("cer");
                let cert = std::fs::read_to_string(&cer)
                    .with_context(|| format!("reading {} (the certificate next to the key)", cer.display()))?;
                officers.push(RsaCertified::from_pem(key_pem.expose_secret(), &cert)?);
            }
            let items = sd::recover_items(&file, &officers)?;
            let exchange = pem_der(&std::fs::read_to_string(&exchange_cert)?)?;
            let blob = sd::make_restore_blob(&items, &exchange)?;
            write_private(&out, blob.as_bytes())?;
            eprintln!("wrote the restore blob to {}", out.display());
            Ok(())
        }
        SdCommand::Upload { creds, blob } => {
            let value = std::fs::read_to_string(&blob).with_context(|| format!("reading {}", blob.display()))?;
            let mut client = Client::new(Credentials::from_file(&creds)?)?;
            let body = serde_json::json!({ "value": value });
            let r = client
                .call_ok(
                    reqwest::Method::POST,
                    "/securitydomain/upload?api-version=7.6",
                    Some(&body),
                )
                .await?;
            let url = r
                .headers
                .get("azure-asyncoperation")
                .and_then(|v| v.to_str().ok())
                .context("no Azure-AsyncOperation header")?
                .to_string();
            client.poll(&url, Duration::from_secs(120)).await?;
            eprintln!("the security domain is restored and the HSM is activated");
            Ok(())
        }
    }
}
