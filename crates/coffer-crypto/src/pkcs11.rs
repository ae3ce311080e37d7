//! PKCS#11 seal provider: AES-256-GCM computed inside a token (an HSM, or SoftHSM2 in tests) under a
//! non-extractable, sensitive token key. The key never leaves the token; only the sealed blobs do.
//!
//! Format of a sealed value: `0x02 || iv(12) || ciphertext || tag(16)`. (`0x01` is the software envelope of
//! [`crate::seal`], so the first byte tells which provider sealed a value.)
//!
//! This module is the crate's one exception to "no I/O": it loads a shared library and talks to a token.
//!
//! Process-wide state: a PKCS#11 module is initialised once per process (`C_Initialize`), so the loaded
//! modules are kept in a registry for the life of the process and shared by every [`Pkcs11Seal`]. For SoftHSM2,
//! `SOFTHSM2_CONF` must be set in the environment before the first [`Pkcs11Seal::open`] of the process.
//!
//! Login state is per application and token in PKCS#11: when another session of this process is already
//! logged in to the token, `C_Login` answers `CKR_USER_ALREADY_LOGGED_IN` and the PIN is not checked again.
//!
//! The IV is 96 random bits from the system CSPRNG for every seal; the domain secret is sealed rarely, far
//! below the 2^32 seals per key that random GCM nonces allow.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;

use crate::{Error, SecretBytes, random};

/// The format version byte of a PKCS#11-sealed value.
pub const VERSION: u8 = 0x02;
/// GCM IV length in bytes.
const IV_LEN: usize = 12;
/// GCM tag length in bytes.
const TAG_LEN: usize = 16;
/// AES-256 key length in bytes.
const KEY_LEN: usize = 32;
/// Smallest valid sealed blob: version, IV and tag around an empty plaintext.
const MIN_SEALED_LEN: usize = 1 + IV_LEN + TAG_LEN;

/// Where the sealing key lives.
#[derive(Debug)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Label of the token (`CKA_LABEL` of the token info, without the blank padding).
    pub token_label: String,
    /// The user PIN.
    pub pin: SecretBytes,
    /// Label of the AES-256 secret key object inside the token.
    pub key_label: String,
}

/// A logged-in session and the handle of the sealing key in it.
struct Live {
    session: Session,
    key: ObjectHandle,
}

/// Seals and opens values with AES-256-GCM inside a PKCS#11 token. `Send + Sync`: the one session is behind a
/// mutex, and a lost session (token reset, logout, handle invalidated) is replaced once per call, logging in again.
pub struct Pkcs11Seal {
    ctx: Pkcs11,
    module: PathBuf,
    token_label: String,
    key_label: String,
    pin: SecretBytes,
    /// `None` after a session was found dead and could not be replaced; the next call reconnects.
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Pkcs11Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Seal")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Seal {
    /// Loads the module, finds the token by label, logs in as user. If no AES key with `key_label` exists and
    /// `create_key` is true, generates one inside the token: CKK_AES 256-bit, CKA_TOKEN true, CKA_SENSITIVE true,
    /// CKA_EXTRACTABLE false, CKA_PRIVATE true, CKA_ENCRYPT/DECRYPT true. Missing module/token/key, wrong PIN:
    /// [`Error::Pkcs11`] with a message saying which. An existing key that is extractable, not sensitive or not
    /// 256 bits is refused.
    pub fn open(config: &Pkcs11Config, create_key: bool) -> Result<Self, Error> {
        let ctx = context(&config.module)?;
        let seal = Self {
            ctx,
            module: config.module.clone(),
            token_label: config.token_label.clone(),
            key_label: config.key_label.clone(),
            pin: config.pin.duplicate(),
            live: Mutex::new(None),
        };
        let live = seal.connect(create_key)?;
        *seal.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(live);
        Ok(seal)
    }

    /// AES-256-GCM inside the token (CKM_AES_GCM, 12-byte IV from the CSPRNG, 128-bit tag, `aad` bound).
    /// Output: `0x02 || iv(12) || ciphertext || tag(16)`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let iv: [u8; IV_LEN] = random::array()?;
        let body = self
            .with_key(|session, key| {
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, aad, tag_bits())?;
                session.encrypt(&Mechanism::AesGcm(params), key, plaintext)
            })?
            .map_err(|e| self.failure("encryption", &e))?;
        if Some(body.len()) != plaintext.len().checked_add(TAG_LEN) {
            return Err(Error::Pkcs11(format!(
                "token \"{}\" returned an AES-GCM ciphertext of unexpected length",
                self.token_label
            )));
        }
        let mut out = Vec::with_capacity(MIN_SEALED_LEN + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The inverse of [`Pkcs11Seal::seal`]; any tampering, wrong AAD or wrong key gives
    /// [`Error::DecryptFailed`]. A token that cannot be reached gives [`Error::Pkcs11`].
    pub fn open_sealed(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, Error> {
        if sealed.len() < MIN_SEALED_LEN {
            return Err(Error::DecryptFailed);
        }
        let (version, rest) = sealed.split_first().ok_or(Error::DecryptFailed)?;
        if *version != VERSION {
            return Err(Error::DecryptFailed);
        }
        let (iv, body) = rest.split_at_checked(IV_LEN).ok_or(Error::DecryptFailed)?;
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| Error::DecryptFailed)?;
        let result = self.with_key(|session, key| {
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, aad, tag_bits())?;
            session.decrypt(&Mechanism::AesGcm(params), key, body)
        })?;
        match result {
            // `decrypt` allocates the output inside cryptoki; wrap it at once (SecretBytes zeroizes the whole
            // capacity on drop).
            Ok(plaintext) => {
                let plaintext = SecretBytes::new(plaintext);
                if Some(plaintext.len()) == body.len().checked_sub(TAG_LEN) {
                    Ok(plaintext)
                } else {
                    Err(Error::DecryptFailed)
                }
            }
            Err(e) if session_lost(&e) => Err(self.failure("decryption", &e)),
            // Tag mismatch (wrong key, AAD, IV or tampered data) and malformed input alike: one error, no oracle.
            Err(_) => Err(Error::DecryptFailed),
        }
    }

    /// Runs `op` with the session and key. If the session turns out to be dead (closed, logged out, token
    /// removed, key handle invalidated), connects again (find token, open session, log in, find key) and retries
    /// once. The outer error is a reconnection failure; the inner one is `op`'s own.
    fn with_key<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> cryptoki::error::Result<T>,
    ) -> Result<cryptoki::error::Result<T>, Error> {
        let mut guard = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let (live, fresh) = match guard.take() {
            Some(live) => (live, false),
            None => (self.connect(false)?, true),
        };
        let result = op(&live.session, live.key);
        if !matches!(&result, Err(e) if session_lost(e)) {
            *guard = Some(live);
            return Ok(result);
        }
        // Close what is left of the dead session (dropping ignores "already closed").
        drop(live);
        if fresh {
            return Ok(result);
        }
        let live = self.connect(false)?;
        let result = op(&live.session, live.key);
        if !matches!(&result, Err(e) if session_lost(e)) {
            *guard = Some(live);
        }
        Ok(result)
    }

    /// Finds the token, opens a read-write session, logs in and finds (or creates) the key.
    fn connect(&self, create_key: bool) -> Result<Live, Error> {
        let slot = self.find_token()?;
        let session = self
            .ctx
            .open_rw_session(slot)
            .map_err(|e| Error::Pkcs11(format!("cannot open a session on token \"{}\": {e}", self.token_label)))?;
        self.login(&session)?;
        let key = match self.find_key(&session)? {
            Some(key) => key,
            None if create_key => self.generate_key(&session)?,
            None => {
                return Err(Error::Pkcs11(format!(
                    "no AES key labelled \"{}\" on token \"{}\" (create it, or let Coffer generate it when the \
                     instance is created)",
                    self.key_label, self.token_label
                )));
            }
        };
        self.check_key(&session, key)?;
        Ok(Live { session, key })
    }

    fn find_token(&self) -> Result<Slot, Error> {
        let slots = self.ctx.get_slots_with_token().map_err(|e| {
            Error::Pkcs11(format!(
                "cannot list the slots of PKCS#11 module {}: {e}",
                self.module.display()
            ))
        })?;
        let mut labels = Vec::new();
        let mut found = Vec::new();
        for slot in slots {
            // A slot whose token cannot be read is skipped: it is not the one we are looking for, or it will be
            // reported as missing.
            let Ok(info) = self.ctx.get_token_info(slot) else {
                continue;
            };
            if info.token_initialized() && info.label() == self.token_label {
                found.push(slot);
            } else if info.token_initialized() {
                labels.push(format!("\"{}\"", info.label()));
            }
        }
        match found.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(Error::Pkcs11(format!(
                "token \"{}\" not found in PKCS#11 module {} (initialised tokens present: {})",
                self.token_label,
                self.module.display(),
                if labels.is_empty() {
                    "none".to_owned()
                } else {
                    labels.join(", ")
                }
            ))),
            _ => Err(Error::Pkcs11(format!(
                "{} tokens are labelled \"{}\" in PKCS#11 module {}; token labels must be unique",
                found.len(),
                self.token_label,
                self.module.display()
            ))),
        }
    }

    fn login(&self, session: &Session) -> Result<(), Error> {
        let pin = RawAuthPin::from(Box::new(self.pin.expose_secret().to_vec()));
        let token = &self.token_label;
        match session.login_with_raw(UserType::User, &pin) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
                Err(Error::Pkcs11(format!("login to token \"{token}\" failed: wrong PIN")))
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Error::Pkcs11(format!(
                "login to token \"{token}\" failed: the user PIN is locked"
            ))),
            Err(CkError::Pkcs11(RvError::PinExpired, _)) => Err(Error::Pkcs11(format!(
                "login to token \"{token}\" failed: the user PIN has expired"
            ))),
            Err(CkError::Pkcs11(RvError::UserPinNotInitialized, _)) => Err(Error::Pkcs11(format!(
                "login to token \"{token}\" failed: the user PIN is not initialised"
            ))),
            Err(CkError::Pkcs11(RvError::UserAnotherAlreadyLoggedIn, _)) => Err(Error::Pkcs11(format!(
                "login to token \"{token}\" failed: another user (the security officer) is logged in"
            ))),
            Err(e) => Err(Error::Pkcs11(format!("login to token \"{token}\" failed: {e}"))),
        }
    }

    fn key_template(&self) -> [Attribute; 3] {
        [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
        ]
    }

    fn find_key(&self, session: &Session) -> Result<Option<ObjectHandle>, Error> {
        let found = session.find_objects(&self.key_template()).map_err(|e| {
            Error::Pkcs11(format!(
                "cannot search token \"{}\" for key \"{}\": {e}",
                self.token_label, self.key_label
            ))
        })?;
        match found.as_slice() {
            [] => Ok(None),
            [key] => Ok(Some(*key)),
            _ => Err(Error::Pkcs11(format!(
                "{} AES keys are labelled \"{}\" on token \"{}\"; the seal key label must be unique",
                found.len(),
                self.key_label,
                self.token_label
            ))),
        }
    }

    fn generate_key(&self, session: &Session) -> Result<ObjectHandle, Error> {
        let mut template = self.key_template().to_vec();
        template.extend([
            Attribute::ValueLen(key_len()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ]);
        session.generate_key(&Mechanism::AesKeyGen, &template).map_err(|e| {
            Error::Pkcs11(format!(
                "cannot generate AES-256 key \"{}\" in token \"{}\": {e}",
                self.key_label, self.token_label
            ))
        })
    }

    /// Refuses a key that could leave the token or is not AES-256.
    fn check_key(&self, session: &Session, key: ObjectHandle) -> Result<(), Error> {
        let attributes = session
            .get_attributes(
                key,
                &[
                    AttributeType::ValueLen,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                ],
            )
            .map_err(|e| {
                Error::Pkcs11(format!(
                    "cannot read the attributes of key \"{}\" on token \"{}\": {e}",
                    self.key_label, self.token_label
                ))
            })?;
        let (mut len, mut sensitive, mut extractable) = (None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::ValueLen(v) => len = Some(usize::from(v)),
                Attribute::Sensitive(v) => sensitive = Some(v),
                Attribute::Extractable(v) => extractable = Some(v),
                _ => {}
            }
        }
        let problem = if len != Some(KEY_LEN) {
            Some("it is not a 256-bit AES key")
        } else if sensitive != Some(true) {
            Some("it is not sensitive (CKA_SENSITIVE must be true)")
        } else if extractable != Some(false) {
            Some("it is extractable (CKA_EXTRACTABLE must be false)")
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(Error::Pkcs11(format!(
                "key \"{}\" on token \"{}\" cannot be used as the seal key: {problem}",
                self.key_label, self.token_label
            ))),
        }
    }

    /// An error of an encrypt/decrypt call that is not an authentication failure.
    fn failure(&self, what: &str, e: &CkError) -> Error {
        Error::Pkcs11(format!(
            "AES-GCM {what} with key \"{}\" on token \"{}\" failed: {e}",
            self.key_label, self.token_label
        ))
    }
}

/// True for the errors after which the session or the key handle is no longer usable and a new session
/// (with a new login) may succeed.
fn session_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::CryptokiNotInitialized
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid,
            _
        )
    )
}

fn tag_bits() -> cryptoki::types::Ulong {
    cryptoki::types::Ulong::from(TAG_LEN as u64 * 8)
}

fn key_len() -> cryptoki::types::Ulong {
    cryptoki::types::Ulong::from(KEY_LEN as u64)
}

/// The process-wide registry of loaded and initialised modules, keyed by canonical path. Modules stay loaded
/// until the process exits (a module must not be unloaded or initialised twice while sessions may exist).
fn context(module: &Path) -> Result<Pkcs11, Error> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let canonical = module
        .canonicalize()
        .map_err(|e| Error::Pkcs11(format!("PKCS#11 module {} not found: {e}", module.display())))?;
    let mut modules = MODULES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(ctx) = modules.get(&canonical) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&canonical)
        .map_err(|e| Error::Pkcs11(format!("cannot load PKCS#11 module {}: {e}", module.display())))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Already initialised by another user of the same library in this process: share it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Error::Pkcs11(format!(
                "cannot initialise PKCS#11 module {}: {e}",
                module.display()
            )));
        }
    }
    modules.insert(canonical, ctx.clone());
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Pkcs11Seal>();
    }

    #[test]
    fn missing_module_is_named() {
        let config = Pkcs11Config {
            module: PathBuf::from("/nonexistent/libpkcs11-coffer-test.so"),
            token_label: "t".into(),
            pin: SecretBytes::new(b"1234".to_vec()),
            key_label: "k".into(),
        };
        let err = Pkcs11Seal::open(&config, false).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Pkcs11(_)));
        assert!(
            msg.contains("module") && msg.contains("/nonexistent/libpkcs11-coffer-test.so"),
            "{msg}"
        );
        assert!(!msg.contains("1234"));
    }
}
