//! Security-domain custody: downloading the security domain of an active instance again (to new certificates,
//! with a new quorum) gives whoever holds the new file's keys the whole domain, so by default it needs proof that a
//! quorum of the current officers agrees. The proof has the shape of a recovery upload: the instance offers an
//! exchange key (`GET /securitydomain/upload` on an active instance), a quorum of officers recover the domain from
//! their shares offline and wrap it for that key (`coffer sd restore-blob`), and the download request carries the
//! blob (`quorumProof`, a Coffer extension; `coffer sd download --quorum-proof`). The instance opens the blob and
//! checks that it holds this instance's own domain secret. Each exchange key proves one download only: it is
//! discarded once used, so a captured proof cannot be replayed.
//!
//! `security_domain_redownload_without_quorum` in coffer.toml (never the API) restores Azure's behaviour, where an
//! Administrator alone may download again; the posture report flags it.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::security_domain::{self as sd, RsaCertified};
use serde::{Deserialize, Serialize};

use crate::store::LifecycleState;
use crate::{Error, Hsm};

/// `meta` entry: the sealed exchange key for the next quorum proof (empty once used).
const PROOF_KEY: &str = "security_domain_proof_exchange_key";

#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// PKCS#8, sealed by the seal provider, base64.
    sealed_key: String,
    /// Self-signed certificate (DER), base64.
    cert: String,
}

fn proof_key_aad(instance_id: &str) -> Vec<u8> {
    format!("coffer/sd-proof-exchange-key/v1|{instance_id}").into_bytes()
}

fn refused(detail: &str) -> Error {
    Error::Forbidden(format!(
        "This HSM is active: a new security-domain download needs proof from a quorum of its current security-domain \
         officers ({detail}). Get the exchange key (GET /securitydomain/upload, or `coffer sd exchange-key`), have a \
         quorum of officers make a restore blob from the current security domain with `coffer sd restore-blob`, and \
         send it as `quorumProof` with the download (`coffer sd download --quorum-proof`). See docs/SECURITY-DOMAIN.md."
    ))
}

impl Hsm {
    /// Whether a download now needs a quorum proof.
    pub(crate) fn download_needs_proof(&self) -> bool {
        self.state() == LifecycleState::Active && !self.config.security_domain_redownload_without_quorum
    }

    /// The exchange key for the next quorum proof, made (and stored, sealed) on first use.
    pub(crate) async fn proof_exchange_key(&self) -> Result<RsaCertified, Error> {
        let aad = proof_key_aad(&self.instance.instance_id);
        if let Some(stored) = self.store.meta(PROOF_KEY).await?.filter(|v| !v.is_empty()) {
            let k: StoredKey = serde_json::from_str(&stored).map_err(|e| Error::Corrupt(format!("proof key: {e}")))?;
            let sealed = STANDARD
                .decode(&k.sealed_key)
                .map_err(|e| Error::Corrupt(format!("proof key: {e}")))?;
            let cert_der = STANDARD
                .decode(&k.cert)
                .map_err(|e| Error::Corrupt(format!("proof key: {e}")))?;
            return Ok(RsaCertified {
                key_pkcs8_der: self.seal.open(&aad, &sealed)?,
                cert_der,
            });
        }
        let key = sd::generate_rsa_certified(3072, "Coffer security-domain quorum-proof exchange key")?;
        let stored = StoredKey {
            sealed_key: STANDARD.encode(self.seal.seal(&aad, key.key_pkcs8_der.expose_secret())?),
            cert: STANDARD.encode(&key.cert_der),
        };
        let json = serde_json::to_string(&stored).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.store.put_meta(PROOF_KEY, &json, self.clock.now()).await?;
        Ok(key)
    }

    /// Checks a quorum proof for a download of an active instance, and discards the exchange key it used.
    pub(crate) async fn check_quorum_proof(&self, proof: Option<&str>) -> Result<(), Error> {
        if !self.download_needs_proof() {
            return Ok(());
        }
        let Some(blob) = proof.filter(|p| !p.trim().is_empty()) else {
            return Err(refused("none was given"));
        };
        let exchange = self.proof_exchange_key().await?;
        let items = sd::open_restore_blob(blob, &exchange).map_err(|e| {
            tracing::warn!(error = %e, "security-domain quorum proof refused");
            refused("the proof does not open with this instance's current exchange key")
        })?;
        let secret = self
            .recovered_domain_secret(&items)
            .map_err(|_| refused("the proof holds no domain secret"))?;
        if !self.domain_secret()?.ct_eq(secret.expose_secret()) {
            tracing::warn!("security-domain quorum proof carries another domain secret");
            return Err(refused("the proof was made from another security domain"));
        }
        // One proof, one download: the next download needs a new exchange key and a new proof.
        self.store.put_meta(PROOF_KEY, "", self.clock.now()).await?;
        tracing::warn!("security-domain quorum proof accepted");
        Ok(())
    }
}
