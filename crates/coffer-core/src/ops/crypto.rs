//! Crypto operations: encrypt, decrypt, wrapKey, unwrapKey, sign, verify. Before any of them the key version
//! must allow the operation: it is enabled, it is past `nbf`, the operation is in its `key_ops`, and — for the
//! operations that protect new data (encrypt, wrapKey, sign) — it has not expired. Decrypt, unwrap and verify
//! stay possible after expiry so that data protected earlier can still be read.
use coffer_crypto::keys::{CipherOutput, CipherParams, EncryptionAlgorithm, SignatureAlgorithm};

use crate::key::{KeyName, KeyOperation, KeyVersionRecord};
use crate::ops::read::not_found;
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// The versioned key that performed an operation, and its output.
#[derive(Debug)]
pub struct CryptoResult<T> {
    pub name: KeyName,
    pub version: String,
    pub output: T,
}

/// Which cipher operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherOp {
    Decrypt,
    Encrypt,
    UnwrapKey,
    WrapKey,
}

impl CipherOp {
    fn key_op(self) -> KeyOperation {
        match self {
            Self::Decrypt => KeyOperation::Decrypt,
            Self::Encrypt => KeyOperation::Encrypt,
            Self::UnwrapKey => KeyOperation::UnwrapKey,
            Self::WrapKey => KeyOperation::WrapKey,
        }
    }
    fn action(self) -> DataAction {
        match self {
            Self::Decrypt => DataAction::KeysDecrypt,
            Self::Encrypt => DataAction::KeysEncrypt,
            Self::UnwrapKey => DataAction::KeysUnwrap,
            Self::WrapKey => DataAction::KeysWrap,
        }
    }
    fn protects_new_data(self) -> bool {
        matches!(self, Self::Encrypt | Self::WrapKey)
    }
}

/// Input of a cipher operation (already decoded from base64url).
#[derive(Debug, Default)]
pub struct CipherInput {
    pub alg: String,
    pub value: Vec<u8>,
    pub iv: Option<Vec<u8>>,
    pub aad: Option<Vec<u8>>,
    pub tag: Option<Vec<u8>>,
}

/// Output of a cipher operation.
#[derive(Debug)]
pub enum CipherResult {
    /// Decrypted or unwrapped plaintext (secret).
    Plain(coffer_crypto::SecretBytes),
    /// Ciphertext with GCM/CBC extras.
    Cipher(CipherOutput),
}

impl Hsm {
    /// The lifetime part of [`Self::check_usable`]: the key version is enabled, past `nbf` and — when
    /// `check_expiry` — not expired. `op_name` names the operation in the messages.
    pub(crate) fn check_lifetime(
        &self,
        rec: &KeyVersionRecord,
        op_name: &str,
        check_expiry: bool,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let name = rec.name.as_str();
        if !rec.attributes.enabled {
            return Err(Error::Forbidden(format!(
                "Operation {op_name} is not allowed on a disabled key '{name}'."
            )));
        }
        if rec.attributes.not_before.is_some_and(|nbf| now < nbf) {
            return Err(Error::Forbidden(format!(
                "Key '{name}' is not yet valid (nbf is in the future)."
            )));
        }
        if check_expiry && rec.attributes.expires.is_some_and(|exp| now >= exp) {
            return Err(Error::Forbidden(format!(
                "Operation {op_name} is not allowed on an expired key '{name}'."
            )));
        }
        Ok(())
    }

    fn check_usable(&self, rec: &KeyVersionRecord, op: KeyOperation, protects_new_data: bool) -> Result<(), Error> {
        self.check_lifetime(rec, op.name(), protects_new_data)?;
        let name = rec.name.as_str();
        if !rec.key_ops.contains(&op) {
            return Err(Error::Forbidden(format!(
                "Operation {} is not permitted on key '{name}'.",
                op.name()
            )));
        }
        Ok(())
    }

    /// encrypt / decrypt / wrapKey / unwrapKey.
    pub async fn cipher(
        &self,
        caller: &Principal,
        op: CipherOp,
        name: &str,
        version: Option<&str>,
        input: CipherInput,
    ) -> Result<CryptoResult<CipherResult>, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, op.action(), &Scope::Key(key_name.to_string()))
            .await?;
        let alg = EncryptionAlgorithm::parse(&input.alg)
            .ok_or_else(|| Error::BadParameter(format!("The algorithm '{}' is not supported.", input.alg)))?;
        let rec = self.load_version(&key_name, version).await?;
        if alg.family() != rec.key_type.family() {
            return Err(Error::BadParameter(format!(
                "The algorithm {} is not valid for a key of type {}.",
                alg.name(),
                rec.key_type.kty()
            )));
        }
        self.check_usable(&rec, op.key_op(), op.protects_new_data())?;
        let key = self.private_key(&rec).await?;
        let params = CipherParams {
            iv: input.iv.as_deref(),
            aad: input.aad.as_deref(),
            tag: input.tag.as_deref(),
        };
        let output = match op {
            CipherOp::Encrypt | CipherOp::WrapKey => CipherResult::Cipher(
                key.encrypt(alg, &input.value, &params)
                    .map_err(Error::from_request_crypto)?,
            ),
            CipherOp::Decrypt | CipherOp::UnwrapKey => CipherResult::Plain(
                key.decrypt(alg, &input.value, &params)
                    .map_err(Error::from_request_crypto)?,
            ),
        };
        Ok(CryptoResult {
            name: key_name,
            version: rec.version.as_str().to_string(),
            output,
        })
    }

    /// sign: signs a digest the client computed.
    pub async fn sign(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        alg: &str,
        digest: &[u8],
    ) -> Result<CryptoResult<Vec<u8>>, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysSign, &Scope::Key(key_name.to_string()))
            .await?;
        let alg = SignatureAlgorithm::parse(alg)
            .ok_or_else(|| Error::BadParameter(format!("The algorithm '{alg}' is not supported.")))?;
        let rec = self.load_version(&key_name, version).await?;
        self.check_usable(&rec, KeyOperation::Sign, true)?;
        let key = self.private_key(&rec).await?;
        let sig = key.sign(alg, digest).map_err(Error::from_request_crypto)?;
        Ok(CryptoResult {
            name: key_name,
            version: rec.version.as_str().to_string(),
            output: sig,
        })
    }

    /// verify: checks a signature over a digest (`false` for a wrong signature).
    pub async fn verify(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        alg: &str,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<CryptoResult<bool>, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysVerify, &Scope::Key(key_name.to_string()))
            .await?;
        let alg = SignatureAlgorithm::parse(alg)
            .ok_or_else(|| Error::BadParameter(format!("The algorithm '{alg}' is not supported.")))?;
        let rec = self.load_version(&key_name, version).await?;
        self.check_usable(&rec, KeyOperation::Verify, false)?;
        let key = self.private_key(&rec).await?;
        let ok = key.verify(alg, digest, signature).map_err(Error::from_request_crypto)?;
        Ok(CryptoResult {
            name: key_name,
            version: rec.version.as_str().to_string(),
            output: ok,
        })
    }
}
