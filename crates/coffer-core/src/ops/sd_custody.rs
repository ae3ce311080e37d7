//! Security-domain custody: downloading the security domain of an active instance again (to new certificates,
//! with a new quorum) gives whoever holds the new file's keys the whole domain, so by default it needs the consent of
//! a quorum of the current officers, for that very download. It goes in two steps:
//!
//! 1. A download request without proof is refused (403), and records it as the pending **proposal**: the SHA-256
//!    of its certificates and quorum (`coffer sd proposal-hash` computes it offline), with a new exchange key made
//!    for it whose certificate names the hash.
//! 2. The officers check the proposal (the hash in the exchange certificate, `coffer sd exchange-key`, against the
//!    certificates and quorum they agreed to), recover the domain from a quorum of their shares offline and wrap it
//!    for that exchange key (`coffer sd restore-blob`). The download is sent again with the blob as `quorumProof`
//!    (`coffer sd download --quorum-proof`). It is accepted only for the same certificates and quorum, and only
//!    if the blob carries this instance's own domain secret. The proposal is then spent: a captured proof cannot be
//!    replayed, nor used for other certificates.
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
    /// The proposal (certificates and quorum) this key may approve: [`proposal_hash`].
    proposal: String,
}

/// Serialises checking and spending a proposal within this process.
static SPEND: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The SHA-256 (hex) a proposal is known by: the quorum and the sorted SHA-256 of each certificate's DER.
pub fn proposal_hash(certificates: &[Vec<u8>], quorum: u8) -> String {
    let mut certs: Vec<String> = certificates
        .iter()
        .map(|c| hex(&coffer_crypto::hash::sha256(c)))
        .collect();
    certs.sort();
    let text = format!("coffer-sd-redownload/v1|{quorum}|{}", certs.join(","));
    hex(&coffer_crypto::hash::sha256(text.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn proof_key_aad(instance_id: &str) -> Vec<u8> {
    format!("coffer/sd-proof-exchange-key/v1|{instance_id}").into_bytes()
}

fn refused(detail: &str) -> Error {
    Error::Forbidden(format!(
        "This HSM is active: a new security-domain download needs the consent of a quorum of its current \
         security-domain officers ({detail}). See docs/SECURITY-DOMAIN.md."
    ))
}

impl Hsm {
    /// Whether a download now needs a quorum proof.
    pub(crate) fn download_needs_proof(&self) -> bool {
        self.state() == LifecycleState::Active && !self.config.security_domain_redownload_without_quorum
    }

    /// The stored proposal and its exchange key, if one is pending.
    async fn pending_proposal(&self) -> Result<Option<(String, RsaCertified)>, Error> {
        let Some(stored) = self.store.meta(PROOF_KEY).await?.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let bad = |e: &dyn std::fmt::Display| Error::Corrupt(format!("proof key: {e}"));
        let k: StoredKey = serde_json::from_str(&stored).map_err(|e| bad(&e))?;
        let sealed = STANDARD.decode(&k.sealed_key).map_err(|e| bad(&e))?;
        let cert_der = STANDARD.decode(&k.cert).map_err(|e| bad(&e))?;
        let key = RsaCertified {
            key_pkcs8_der: self.seal.open(&proof_key_aad(&self.instance.instance_id), &sealed)?,
            cert_der,
        };
        Ok(Some((k.proposal, key)))
    }

    /// The exchange key of the pending proposal (`GET /securitydomain/upload` on an active instance).
    pub(crate) async fn proof_exchange_key(&self) -> Result<RsaCertified, Error> {
        match self.pending_proposal().await? {
            Some((_, key)) => Ok(key),
            None => Err(Error::Conflict(
                "No security-domain download is waiting for the officers' consent: send the download (with the new \
                 certificates and quorum) once without quorumProof to propose it."
                    .into(),
            )),
        }
    }

    /// Records `proposal` as pending, with a new exchange key whose certificate names it.
    async fn propose(&self, proposal: &str) -> Result<(), Error> {
        let short = proposal.get(..32).unwrap_or(proposal);
        let key = sd::generate_rsa_certified(3072, &format!("Coffer SD re-download {short}"))?;
        let stored = StoredKey {
            sealed_key: STANDARD.encode(self.seal.seal(
                &proof_key_aad(&self.instance.instance_id),
                key.key_pkcs8_der.expose_secret(),
            )?),
            cert: STANDARD.encode(&key.cert_der),
            proposal: proposal.to_string(),
        };
        let json = serde_json::to_string(&stored).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.store.put_meta(PROOF_KEY, &json, self.clock.now()).await
    }

    /// Checks the officers' consent to downloading for `certificates` with `quorum` on an active instance: without
    /// a proof, records the proposal and refuses; with one, accepts it only for the pending proposal of these very
    /// certificates and quorum, carrying this instance's domain secret, and spends the proposal.
    pub(crate) async fn check_quorum_proof(
        &self,
        proof: Option<&str>,
        certificates: &[Vec<u8>],
        quorum: u8,
    ) -> Result<(), Error> {
        if !self.download_needs_proof() {
            return Ok(());
        }
        let proposal = proposal_hash(certificates, quorum);
        let Some(blob) = proof.filter(|p| !p.trim().is_empty()) else {
            self.propose(&proposal).await?;
            tracing::warn!(proposal = %proposal, "security-domain download proposed: waiting for the officers' consent");
            return Err(refused(&format!(
                "none was given. This download is now the pending proposal {proposal}: the officers check that \
                 hash against the certificates and quorum they agreed to (`coffer sd proposal-hash`), make a restore \
                 blob from the current security domain for the exchange key (GET /securitydomain/upload, or \
                 `coffer sd exchange-key`; its certificate names the proposal) with `coffer sd restore-blob`, and the \
                 same download is sent again with the blob as `quorumProof` (`coffer sd download --quorum-proof`)"
            )));
        };
        let _g = SPEND.lock().await;
        let Some((pending, exchange)) = self.pending_proposal().await? else {
            return Err(refused("no download is pending, or its proof was already used"));
        };
        if !coffer_crypto::secret::ct_eq(pending.as_bytes(), proposal.as_bytes()) {
            return Err(refused(
                "the proof approves another download: other certificates or another quorum",
            ));
        }
        let items = sd::open_restore_blob(blob, &exchange).map_err(|e| {
            tracing::warn!(error = %e, "security-domain quorum proof refused");
            refused("the proof does not open with the pending proposal's exchange key")
        })?;
        let secret = self
            .recovered_domain_secret(&items)
            .map_err(|_| refused("the proof holds no domain secret"))?;
        if !self.domain_secret()?.ct_eq(secret.expose_secret()) {
            tracing::warn!("security-domain quorum proof carries another domain secret");
            return Err(refused("the proof was made from another security domain"));
        }
        // One proof, one download: spent before the file is built.
        self.store.put_meta(PROOF_KEY, "", self.clock.now()).await?;
        tracing::warn!(proposal = %proposal, "security-domain quorum proof accepted");
        Ok(())
    }
}
