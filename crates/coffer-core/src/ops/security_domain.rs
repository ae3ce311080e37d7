//! The security domain. Download activates a provisioned instance (and can be repeated, with a quorum proof of the
//! current officers, to re-wrap the same domain secret for new officers: `sd_custody`); upload installs the domain secret of another instance into one created in recovery
//! mode. The file carries one item, `hsm_backup`: a versioned JSON holding the domain secret. Formats and
//! cryptography are those of the Azure clients (coffer-crypto::security_domain).
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_crypto::SecretBytes;
use coffer_crypto::jwt::TokenSigningKey;
use coffer_crypto::security_domain::{self as sd, RsaCertified};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::instance::{DerivedKeys, domain_secret_aad, exchange_key_aad, token_key_aad};
use crate::rbac::{DataAction, Scope};
use crate::store::LifecycleState;
use crate::{Error, Hsm, Principal};

/// The tag of the one EncData item.
pub const TAG: &str = "hsm_backup";

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Format version of this payload.
    v: u32,
    /// The 256-bit domain secret, base64url.
    domain_secret: String,
    /// The instance the secret came from (informational).
    instance_id: String,
}

impl Drop for Payload {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.domain_secret);
    }
}

/// Status of a security-domain operation, as `*/pending` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationStatus {
    /// `Success`, `InProgress` or `Failed`.
    pub status: &'static str,
    pub details: String,
}

fn sd_error(e: coffer_crypto::Error) -> Error {
    Error::BadParameter(format!("Security domain: {e}"))
}

/// `meta` entry: holders and quorum of the last security-domain download.
const SD_HOLDERS: &str = "security_domain_holders";

impl Hsm {
    pub(crate) fn domain_secret(&self) -> Result<SecretBytes, Error> {
        self.seal.open(
            &domain_secret_aad(&self.instance.instance_id),
            &self.instance_sealed_domain_secret()?,
        )
    }

    fn instance_sealed_domain_secret(&self) -> Result<Vec<u8>, Error> {
        match self.sealed_domain_secret.read() {
            Ok(s) => Ok(s.clone()),
            Err(_) => Err(Error::Corrupt("domain secret lock".into())),
        }
    }

    fn payload(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let ds = self.domain_secret()?;
        let p = Payload {
            v: 1,
            domain_secret: B64.encode(ds.expose_secret()),
            instance_id: self.instance.instance_id.clone(),
        };
        Ok(Zeroizing::new(
            serde_json::to_vec(&p).map_err(|e| Error::Corrupt(e.to_string()))?,
        ))
    }

    /// POST /securitydomain/download: the security-domain file for `certificates` (DER) with `quorum`; activates a
    /// provisioned instance. On an active instance it needs `quorum_proof` (see `sd_custody`), unless coffer.toml
    /// restores Azure's behaviour.
    pub async fn security_domain_download(
        &self,
        caller: &Principal,
        certificates: &[Vec<u8>],
        quorum: i64,
        quorum_proof: Option<&str>,
    ) -> Result<String, Error> {
        self.authorize(caller, DataAction::SecurityDomainDownload, &Scope::Root)
            .await?;
        if self.state() == LifecycleState::Recovery {
            return Err(Error::NotActivated(
                "A recovery-mode HSM cannot download a security domain; upload one.".into(),
            ));
        }
        if !(3..=10).contains(&certificates.len()) {
            return Err(Error::BadParameter(
                "Between 3 and 10 certificates are required.".into(),
            ));
        }
        let n = i64::try_from(certificates.len()).unwrap_or(0);
        if !(2..=n).contains(&quorum) {
            return Err(Error::BadParameter(format!("required must be between 2 and {n}.")));
        }
        for c in certificates {
            sd::check_wrapping_certificate(c).map_err(sd_error)?;
        }
        let quorum = u8::try_from(quorum).map_err(|_| Error::BadParameter("invalid quorum".into()))?;
        self.check_quorum_proof(quorum_proof, certificates, quorum).await?;
        let payload = self.payload()?;
        let file = sd::build_security_domain(&[(TAG, payload.as_slice())], certificates, quorum).map_err(sd_error)?;
        let now = self.clock.now();
        self.store.record_download(now).await?;
        self.note_holders(certificates.len(), quorum, false, now).await?;
        if self.state() == LifecycleState::Provisioned {
            self.set_state(LifecycleState::Active).await;
            tracing::warn!("security domain downloaded: the HSM is activated");
        } else {
            tracing::warn!("security domain downloaded again (re-wrapped for new certificates)");
        }
        Ok(file)
    }

    /// Development activation (`--dev`): three generated wrapping keys, quorum 2. Returns the file and the keys.
    pub async fn dev_security_domain(&self) -> Result<(String, Vec<RsaCertified>), Error> {
        let officers: Vec<RsaCertified> = (1..=3)
            .map(|i| sd::generate_rsa_certified(2048, &format!("Coffer dev security-domain officer {i}")))
            .collect::<Result<_, _>>()?;
        let certs: Vec<Vec<u8>> = officers.iter().map(|o| o.cert_der.clone()).collect();
        let payload = self.payload()?;
        let file = sd::build_security_domain(&[(TAG, payload.as_slice())], &certs, 2).map_err(sd_error)?;
        self.store.record_download(self.clock.now()).await?;
        self.note_holders(certs.len(), 2, true, self.clock.now()).await?;
        self.set_state(LifecycleState::Active).await;
        Ok((file, officers))
    }

    /// Remembers who holds the security domain (for the posture report).
    async fn note_holders(&self, holders: usize, quorum: u8, dev: bool, now: i64) -> Result<(), Error> {
        let v = serde_json::json!({"holders": holders, "quorum": quorum, "dev": dev, "time": now});
        self.store.put_meta(SD_HOLDERS, &v.to_string(), now).await
    }

    /// The holders of the last security-domain download: `{"holders","quorum","dev","time"}`.
    pub(crate) async fn security_domain_holders(&self) -> Result<Option<serde_json::Value>, Error> {
        Ok(self
            .store
            .meta(SD_HOLDERS)
            .await?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// GET /securitydomain/download/pending.
    pub async fn download_status(&self, caller: &Principal) -> Result<OperationStatus, Error> {
        self.authorize(caller, DataAction::SecurityDomainDownloadRead, &Scope::Root)
            .await?;
        Ok(match self.state() {
            LifecycleState::Active => OperationStatus {
                status: "Success",
                details: "The resource is active.".into(),
            },
            _ => OperationStatus {
                status: "InProgress",
                details: "The HSM is not activated yet.".into(),
            },
        })
    }

    fn exchange_key(&self) -> Result<RsaCertified, Error> {
        let (Some(sealed), Some(cert)) = (&self.instance.sealed_exchange_key, &self.instance.exchange_cert) else {
            return Err(Error::NotActivated(
                "This HSM is not in recovery mode: it has no transfer key.".into(),
            ));
        };
        let key = self.seal.open(&exchange_key_aad(&self.instance.instance_id), sealed)?;
        Ok(RsaCertified {
            key_pkcs8_der: key,
            cert_der: cert.clone(),
        })
    }

    /// GET /securitydomain/upload: the transfer (exchange) key as a JWK, while waiting for an upload; on an active
    /// instance, the exchange key for the next download's quorum proof.
    pub async fn transfer_key(&self, caller: &Principal) -> Result<serde_json::Value, Error> {
        self.authorize(caller, DataAction::SecurityDomainTransferKeyRead, &Scope::Root)
            .await?;
        if self.state() == LifecycleState::Active {
            let key = self.proof_exchange_key().await?;
            return Ok(sd::transfer_key_jwk(&key.cert_der, &self.config.public_url)?);
        }
        if self.state() != LifecycleState::Recovery {
            return Err(Error::Conflict(
                "The HSM is not waiting for a security-domain upload.".into(),
            ));
        }
        let cert = self
            .instance
            .exchange_cert
            .as_ref()
            .ok_or_else(|| Error::Corrupt("no exchange cert".into()))?;
        Ok(sd::transfer_key_jwk(cert, &self.config.public_url)?)
    }

    /// POST /securitydomain/upload: installs the domain secret carried by a restore blob. One transaction; on any
    /// error nothing changes.
    pub async fn security_domain_upload(&self, caller: &Principal, blob: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::SecurityDomainUpload, &Scope::Root)
            .await?;
        if self.state() != LifecycleState::Recovery {
            return Err(Error::Conflict(
                "The HSM is already activated; a security domain can only be uploaded to an HSM in recovery mode."
                    .into(),
            ));
        }
        let exchange = self.exchange_key()?;
        let items = sd::open_restore_blob(blob, &exchange).map_err(sd_error)?;
        let ds = self.recovered_domain_secret(&items)?;
        let id = &self.instance.instance_id;
        let keys = DerivedKeys::derive(&ds)?;
        let token_key = self.token_key();
        let sealed_ds = self.seal.seal(&domain_secret_aad(id), ds.expose_secret())?;
        let sealed_token =
            coffer_crypto::seal::seal(&keys.token, &token_key_aad(id), token_key.to_pkcs8()?.expose_secret())?;
        self.store
            .install_domain_secret(&sealed_ds, &sealed_token, self.clock.now())
            .await?;
        self.swap_domain(keys, sealed_ds, token_key);
        self.set_state(LifecycleState::Active).await;
        tracing::warn!("security domain uploaded: the HSM holds the recovered domain secret and is activated");
        Ok(())
    }

    /// The domain secret carried by the items of an opened restore blob.
    pub(crate) fn recovered_domain_secret(&self, items: &[(String, SecretBytes)]) -> Result<SecretBytes, Error> {
        let (_, plaintext) = items.iter().find(|(tag, _)| tag == TAG).ok_or_else(|| {
            Error::BadParameter(format!(
                "The restore blob has no '{TAG}' item: it was not made from a Coffer security domain."
            ))
        })?;
        let payload: Payload = serde_json::from_slice(plaintext.expose_secret())
            .map_err(|_| Error::BadParameter("The security-domain payload is not in Coffer's format.".into()))?;
        if payload.v != 1 {
            return Err(Error::BadParameter(format!(
                "Unsupported security-domain payload version {}.",
                payload.v
            )));
        }
        let ds = SecretBytes::new(
            B64.decode(&payload.domain_secret)
                .map_err(|_| Error::BadParameter("Malformed domain secret.".into()))?,
        );
        if ds.len() != 32 {
            return Err(Error::BadParameter("The domain secret must be 32 bytes.".into()));
        }
        tracing::info!(source_instance = %payload.instance_id, "restore blob opened");
        Ok(ds)
    }

    fn swap_domain(&self, keys: DerivedKeys, sealed_ds: Vec<u8>, token_key: Arc<TokenSigningKey>) {
        if let Some(log) = &self.audit {
            // Records from now on are MAC'd under the recovered domain's key (their `kid` changes).
            log.set_mac_key(keys.audit_mac_key());
        }
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(keys);
        }
        if let Ok(mut s) = self.sealed_domain_secret.write() {
            *s = sealed_ds;
        }
        if let Ok(mut t) = self.token_key.write() {
            *t = token_key;
        }
        self.cache.clear();
    }

    /// GET /securitydomain/upload/pending.
    pub async fn upload_status(&self, caller: &Principal) -> Result<OperationStatus, Error> {
        self.authorize(caller, DataAction::SecurityDomainUploadRead, &Scope::Root)
            .await?;
        Ok(match self.state() {
            LifecycleState::Active => OperationStatus {
                status: "Success",
                details: "The resource is active.".into(),
            },
            _ => OperationStatus {
                status: "InProgress",
                details: "Waiting for a security-domain upload.".into(),
            },
        })
    }

    /// Re-seals the domain secret with another seal provider (migration between providers). Returns the new sealed
    /// value, already stored.
    pub async fn migrate_seal(&self, to: &dyn crate::instance::SealProvider) -> Result<(), Error> {
        let ds = self.domain_secret()?;
        let sealed = to.seal(&domain_secret_aad(&self.instance.instance_id), ds.expose_secret())?;
        // Prove the new seal opens what it sealed before anything is written.
        let back = to.open(&domain_secret_aad(&self.instance.instance_id), &sealed)?;
        if !back.ct_eq(ds.expose_secret()) {
            return Err(Error::Corrupt(
                "the new seal provider did not round-trip the domain secret".into(),
            ));
        }
        self.store.reseal_domain_secret(&sealed).await?;
        Ok(())
    }
}
