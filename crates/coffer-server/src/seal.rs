//! Seal providers for the domain secret: `file` (a 256-bit key in `<data-dir>/seal.key`, AES-256-GCM in
//! software) and `pkcs11` (a non-extractable AES-256 key inside a PKCS#11 token, AES-GCM inside the token).
use std::sync::Arc;

use anyhow::Context;
use coffer_core::instance::{KeySealProvider, SealProvider};
use coffer_crypto::SecretBytes;

use crate::config::SealConfig;
use crate::datadir::DataDir;

/// The configured provider. `create` is set for a new instance (a missing file key or token key is created).
pub fn provider(config: &SealConfig, dir: &DataDir, create: bool) -> anyhow::Result<Arc<dyn SealProvider>> {
    match config.provider.as_str() {
        "file" => Ok(Arc::new(KeySealProvider::new(dir.seal_key_material(create)?)?)),
        "pkcs11" => Ok(Arc::new(Pkcs11SealProvider::open(config, create)?)),
        other => anyhow::bail!("unknown seal provider '{other}'"),
    }
}

/// Reads the PKCS#11 user PIN from the configured environment variable or file.
fn pin(config: &SealConfig) -> anyhow::Result<SecretBytes> {
    if let Some(var) = &config.pin_env {
        let v = std::env::var(var).with_context(|| format!("the PKCS#11 PIN variable {var} is not set"))?;
        return Ok(SecretBytes::new(v.into_bytes()));
    }
    if let Some(file) = &config.pin_file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading the PKCS#11 PIN file {}", file.display()))?,
        );
        let line = text.lines().next().unwrap_or_default().trim().to_string();
        return Ok(SecretBytes::new(line.into_bytes()));
    }
    anyhow::bail!("the pkcs11 seal needs pin_env or pin_file")
}

/// The PKCS#11 seal as a core seal provider.
#[derive(Debug)]
pub struct Pkcs11SealProvider {
    inner: coffer_crypto::pkcs11::Pkcs11Seal,
}

impl Pkcs11SealProvider {
    /// Opens the token and finds (or, with `create`, generates) the seal key.
    pub fn open(config: &SealConfig, create: bool) -> anyhow::Result<Self> {
        let cfg = coffer_crypto::pkcs11::Pkcs11Config {
            module: config.module.clone().context("pkcs11 seal: module is required")?,
            token_label: config
                .token_label
                .clone()
                .context("pkcs11 seal: token_label is required")?,
            pin: pin(config)?,
            key_label: config.key_label.clone(),
        };
        let inner = coffer_crypto::pkcs11::Pkcs11Seal::open(&cfg, create)
            .with_context(|| format!("opening the PKCS#11 seal (token '{}')", cfg.token_label))?;
        Ok(Self { inner })
    }
}

impl SealProvider for Pkcs11SealProvider {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, coffer_core::Error> {
        Ok(self.inner.seal(aad, plaintext)?)
    }
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, coffer_core::Error> {
        Ok(self.inner.open_sealed(aad, sealed)?)
    }
}

/// `coffer seal migrate`: re-seals the domain secret of the instance in `data_dir` from one provider to another,
/// with the server stopped. The new seal is proven to open before it is written (one statement); moving away from
/// the file provider then removes `seal.key`, which no longer protects anything.
pub async fn migrate(
    data_dir: &std::path::Path,
    database: &crate::database::DatabaseConfig,
    from: &SealConfig,
    to: &SealConfig,
) -> anyhow::Result<()> {
    use coffer_core::store::prelude::*;
    let dir = DataDir::open(data_dir)?;
    let store = database.open(&dir).await?;
    let instance = store
        .instance()
        .await?
        .context("the data directory holds no instance")?;
    if instance.state == coffer_core::store::LifecycleState::Recovery {
        anyhow::bail!("the instance is in recovery mode: finish the security-domain upload before migrating its seal");
    }
    let old = provider(from, &dir, false).context("opening the current seal provider")?;
    let aad = coffer_core::instance::domain_secret_aad(&instance.instance_id);
    let secret = old
        .open(&aad, &instance.sealed_domain_secret)
        .map_err(|e| anyhow::anyhow!("the current seal provider cannot open the domain secret: {e}"))?;
    let new = provider(to, &dir, true).context("opening the new seal provider")?;
    let sealed = new
        .seal(&aad, secret.expose_secret())
        .map_err(|e| anyhow::anyhow!("sealing: {e}"))?;
    let back = new
        .open(&aad, &sealed)
        .map_err(|e| anyhow::anyhow!("the new seal does not open: {e}"))?;
    anyhow::ensure!(
        back.ct_eq(secret.expose_secret()),
        "the new seal did not round-trip the domain secret"
    );
    store.reseal_domain_secret(&sealed).await?;
    tracing::info!(from = %from.provider, to = %to.provider, "domain secret re-sealed");
    if from.provider == "file" && to.provider != "file" {
        std::fs::remove_file(dir.seal_key()).with_context(|| format!("removing {}", dir.seal_key().display()))?;
        tracing::info!(path = %dir.seal_key().display(), "removed the file seal key");
    }
    Ok(())
}

/// The audit MAC key of the instance in `data_dir` (for `coffer audit verify`): unseals the domain secret with
/// `seal` and derives the key. Works while the server runs (read-only).
pub async fn audit_mac_key(
    data_dir: &std::path::Path,
    database: &crate::database::DatabaseConfig,
    seal: &SealConfig,
) -> anyhow::Result<SecretBytes> {
    Ok(audit_key_and_checkpoint(data_dir, database, seal).await?.0)
}

/// The audit MAC key (as [`audit_mac_key`]) and the stored audit checkpoint (`None`: none stored yet).
pub async fn audit_key_and_checkpoint(
    data_dir: &std::path::Path,
    database: &crate::database::DatabaseConfig,
    seal: &SealConfig,
) -> anyhow::Result<(SecretBytes, Option<String>)> {
    use coffer_core::store::prelude::*;
    let dir = DataDir::open(data_dir)?;
    let store = database.open(&dir).await?;
    let checkpoint = store.meta(coffer_core::audit::checkpoint::META_NAME).await?;
    let instance = store
        .instance()
        .await?
        .context("the data directory holds no instance")?;
    let provider = provider(seal, &dir, false).context("opening the seal provider")?;
    let secret = provider
        .open(
            &coffer_core::instance::domain_secret_aad(&instance.instance_id),
            &instance.sealed_domain_secret,
        )
        .map_err(|e| anyhow::anyhow!("the seal provider cannot open the domain secret: {e}"))?;
    let keys = coffer_core::instance::DerivedKeys::derive(&secret)
        .map_err(|e| anyhow::anyhow!("deriving the audit key: {e}"))?;
    Ok((keys.audit_mac_key(), checkpoint))
}
