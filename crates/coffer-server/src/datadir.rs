//! The data directory: `coffer.db`, `seal.key` (0600), `ca.pem`, `ca-key.pem` (0600), `server.pem`,
//! `server-key.pem` (0600) and, once, `admin-credentials.json` (0600).
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use coffer_crypto::SecretBytes;

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    /// Creates the directory (0700) if missing.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("creating data directory {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self { root })
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("coffer.db")
    }
    pub fn seal_key(&self) -> PathBuf {
        self.root.join("seal.key")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca-key.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server-key.pem")
    }
    pub fn admin_credentials(&self) -> PathBuf {
        self.root.join("admin-credentials.json")
    }

    /// Reads the seal key, creating a new random one (0600) when `create` is set and it does not exist.
    pub fn seal_key_material(&self, create: bool) -> anyhow::Result<SecretBytes> {
        let path = self.seal_key();
        if path.exists() {
            let bytes = SecretBytes::new(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
            if bytes.len() != 32 {
                anyhow::bail!("{} must hold exactly 32 bytes", path.display());
            }
            return Ok(bytes);
        }
        if !create {
            anyhow::bail!(
                "{} is missing: the instance's domain secret cannot be unsealed",
                path.display()
            );
        }
        let key = coffer_crypto::random::secret(32)?;
        write_private(&path, key.expose_secret())?;
        Ok(key)
    }
}

/// Writes a file readable only by its owner (0600), atomically (temporary file, fsync, rename).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Writes a public file (0644), atomically.
pub fn write_public(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_private(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}
