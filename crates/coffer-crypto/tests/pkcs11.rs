//! The PKCS#11 seal provider against a REAL SoftHSM2 token.
//!
//! Each test process makes its own SoftHSM2 configuration and token directory under `CARGO_TARGET_TMPDIR`,
//! initialises a token `coffer-test` with `softhsm2-util`, and points `SOFTHSM2_CONF` at it before the module is
//! first initialised. Login state is per process and token in PKCS#11, so the tests are serialised (one mutex);
//! under nextest each test has its own process and token anyway.
//!
//! SoftHSM2 missing is a FAILURE with a message saying how to install it (`scripts/setup-system`), unless
//! `COFFER_SKIP_PKCS11=1` is set.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: clippy.toml's test allowances cover only #[test] functions"
)]
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use coffer_crypto::pkcs11::{Pkcs11Config, Pkcs11Seal};
use coffer_crypto::{Error, SecretBytes};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

const TOKEN: &str = "coffer-test";
const SO_PIN: &str = "1234";
const PIN: &str = "5678";

const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

struct Env {
    module: PathBuf,
    /// A context of the test's own, for inspecting the token. Never dropped (it lives in a static), so the
    /// module is never unloaded while initialised.
    ctx: Pkcs11,
}

static ENV: OnceLock<Option<Mutex<Env>>> = OnceLock::new();

/// The shared token, locked for the duration of one test; `None` when `COFFER_SKIP_PKCS11=1`.
fn env() -> Option<MutexGuard<'static, Env>> {
    ENV.get_or_init(setup)
        .as_ref()
        .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
}

fn setup() -> Option<Mutex<Env>> {
    if std::env::var("COFFER_SKIP_PKCS11").as_deref() == Ok("1") {
        eprintln!("COFFER_SKIP_PKCS11=1: skipping the PKCS#11 (SoftHSM2) tests");
        return None;
    }
    let install = "install it with `scripts/setup-system` (or `apt-get install -y softhsm2`); \
                   set COFFER_SKIP_PKCS11=1 to skip these tests";
    // COFFER_PKCS11_MODULE overrides where the SoftHSM2 module is looked for.
    let candidates: Vec<PathBuf> = match std::env::var_os("COFFER_PKCS11_MODULE") {
        Some(m) => vec![PathBuf::from(m)],
        None => MODULE_CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    let module = candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("SoftHSM2 is not installed (no libsofthsm2.so in {candidates:?}): {install}"));
    let util = find_util().unwrap_or_else(|| panic!("SoftHSM2 is not installed (softhsm2-util not found): {install}"));

    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    remove_stale_dirs(root);
    let dir = root.join(format!("pkcs11-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new(&util)
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", util.display()));
    assert!(
        out.status.success(),
        "softhsm2-util --init-token failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // SoftHSM2 reads SOFTHSM2_CONF in C_Initialize, which happens after this point (the module is first
    // initialised just below).
    #[allow(unsafe_code)]
    // SAFETY: no other thread of this test process reads the environment through C at this point: the only C
    // code that does is the PKCS#11 module, initialised below, and every test reaches it through this OnceLock
    // initialiser. Rust's own environment accesses are serialised by std.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &conf);
    }
    let ctx = Pkcs11::new(&module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize of {}: {e}", module.display()),
    }
    Some(Mutex::new(Env { module, ctx }))
}

fn find_util() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("softhsm2-util"))
        .find(|p| p.is_file())
}

/// Removes the token directories of earlier test processes that have exited.
fn remove_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("pkcs11-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn config(env: &Env, key_label: &str) -> Pkcs11Config {
    Pkcs11Config {
        module: env.module.clone(),
        token_label: TOKEN.into(),
        pin: SecretBytes::new(PIN.as_bytes().to_vec()),
        key_label: key_label.into(),
    }
}

fn open(env: &Env, key_label: &str) -> Pkcs11Seal {
    Pkcs11Seal::open(&config(env, key_label), true).unwrap()
}

fn pkcs11_message(result: Result<Pkcs11Seal, Error>) -> String {
    match result {
        Err(Error::Pkcs11(msg)) => msg,
        other => panic!("expected Error::Pkcs11, got {other:?}"),
    }
}

/// A logged-in session of the test's own on the token.
fn inspect_session(env: &Env) -> Session {
    let session = env.ctx.open_ro_session(token_slot(env)).unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    session
}

fn token_slot(env: &Env) -> Slot {
    env.ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| env.ctx.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap()
}

fn keys_labelled(session: &Session, label: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap()
}

#[test]
fn seal_open_round_trip_and_format() {
    let Some(env) = env() else { return };
    let seal = open(&env, "seal-round-trip");
    let secret = [0x5a_u8; 32];
    let sealed = seal.seal(b"instance-1/domain-secret", &secret).unwrap();
    assert_eq!(sealed.len(), 1 + 12 + 32 + 16);
    assert_eq!(sealed[0], 0x02);
    assert_ne!(&sealed[13..45], &secret[..], "ciphertext must not be the plaintext");
    let opened = seal.open_sealed(b"instance-1/domain-secret", &sealed).unwrap();
    assert!(opened.ct_eq(&secret));
    // A fresh IV every time.
    let again = seal.seal(b"instance-1/domain-secret", &secret).unwrap();
    assert_ne!(again[1..13], sealed[1..13]);
    assert_ne!(again, sealed);
    // Empty plaintext and empty AAD.
    let empty = seal.seal(b"", b"").unwrap();
    assert_eq!(empty.len(), 29);
    assert!(seal.open_sealed(b"", &empty).unwrap().is_empty());
    assert!(format!("{seal:?}").contains("seal-round-trip"));
    assert!(!format!("{seal:?}").contains(PIN));
}

#[test]
fn wrong_aad_fails() {
    let Some(env) = env() else { return };
    let seal = open(&env, "seal-aad");
    let sealed = seal.seal(b"instance-1", b"the domain secret").unwrap();
    assert!(matches!(
        seal.open_sealed(b"instance-2", &sealed),
        Err(Error::DecryptFailed)
    ));
    assert!(matches!(seal.open_sealed(b"", &sealed), Err(Error::DecryptFailed)));
    // The session is still fine after failed decryptions.
    assert_eq!(
        seal.open_sealed(b"instance-1", &sealed).unwrap().expose_secret(),
        b"the domain secret"
    );
}

#[test]
fn tampered_ciphertext_fails() {
    let Some(env) = env() else { return };
    let seal = open(&env, "seal-tamper");
    let sealed = seal.seal(b"ctx", b"secret material").unwrap();
    for i in 0..sealed.len() {
        let mut t = sealed.clone();
        t[i] ^= 0x01;
        assert!(
            matches!(seal.open_sealed(b"ctx", &t), Err(Error::DecryptFailed)),
            "byte {i}"
        );
    }
    // Truncated, extended, empty, and the software envelope's version byte.
    assert!(matches!(
        seal.open_sealed(b"ctx", &sealed[..sealed.len() - 1]),
        Err(Error::DecryptFailed)
    ));
    assert!(matches!(
        seal.open_sealed(b"ctx", &sealed[..28]),
        Err(Error::DecryptFailed)
    ));
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(seal.open_sealed(b"ctx", &longer), Err(Error::DecryptFailed)));
    assert!(matches!(seal.open_sealed(b"ctx", &[]), Err(Error::DecryptFailed)));
    let mut v1 = sealed.clone();
    v1[0] = 0x01;
    assert!(matches!(seal.open_sealed(b"ctx", &v1), Err(Error::DecryptFailed)));
    assert_eq!(
        seal.open_sealed(b"ctx", &sealed).unwrap().expose_secret(),
        b"secret material"
    );
}

#[test]
fn another_key_cannot_open() {
    let Some(env) = env() else { return };
    let a = open(&env, "seal-key-a");
    let b = open(&env, "seal-key-b");
    let sealed = a.seal(b"ctx", b"only for a").unwrap();
    assert!(matches!(b.open_sealed(b"ctx", &sealed), Err(Error::DecryptFailed)));
    assert_eq!(a.open_sealed(b"ctx", &sealed).unwrap().expose_secret(), b"only for a");
}

#[test]
fn second_open_finds_the_same_key() {
    let Some(env) = env() else { return };
    let sealed = {
        let first = open(&env, "seal-reopen");
        first.seal(b"ctx", b"survives a restart").unwrap()
    };
    // A new provider without key creation: finds the key by label and opens the earlier value.
    let second = Pkcs11Seal::open(&config(&env, "seal-reopen"), false).unwrap();
    assert_eq!(
        second.open_sealed(b"ctx", &sealed).unwrap().expose_secret(),
        b"survives a restart"
    );
    drop(second);
    // create_key=true with an existing key reuses it: still one key with that label.
    let third = open(&env, "seal-reopen");
    assert_eq!(
        third.open_sealed(b"ctx", &sealed).unwrap().expose_secret(),
        b"survives a restart"
    );
    let session = inspect_session(&env);
    assert_eq!(keys_labelled(&session, "seal-reopen").len(), 1);
}

#[test]
fn key_is_not_extractable() {
    let Some(env) = env() else { return };
    let seal = open(&env, "seal-extract");
    let _ = seal.seal(b"", b"x").unwrap();
    let session = inspect_session(&env);
    let keys = keys_labelled(&session, "seal-extract");
    assert_eq!(keys.len(), 1);
    let key = keys[0];

    // C_GetAttributeValue(CKA_VALUE) is refused as sensitive, and no value comes back.
    let info = session.get_attribute_info(key, &[AttributeType::Value]).unwrap();
    assert!(
        matches!(info[0], AttributeInfo::Sensitive),
        "CKA_VALUE readable: {info:?}"
    );
    let values = session.get_attributes(key, &[AttributeType::Value]).unwrap();
    assert!(
        values.iter().all(|a| !matches!(a, Attribute::Value(_))),
        "CKA_VALUE returned"
    );

    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::ValueLen,
            ],
        )
        .unwrap();
    let has = |want: &Attribute| attrs.iter().any(|a| format!("{a:?}") == format!("{want:?}"));
    assert!(has(&Attribute::Extractable(false)), "{attrs:?}");
    assert!(has(&Attribute::NeverExtractable(true)), "{attrs:?}");
    assert!(has(&Attribute::Sensitive(true)), "{attrs:?}");
    assert!(has(&Attribute::AlwaysSensitive(true)), "{attrs:?}");
    assert!(has(&Attribute::Token(true)), "{attrs:?}");
    assert!(has(&Attribute::Private(true)), "{attrs:?}");
    assert!(has(&Attribute::Encrypt(true)), "{attrs:?}");
    assert!(has(&Attribute::Decrypt(true)), "{attrs:?}");
    assert!(has(&Attribute::ValueLen(32_u64.into())), "{attrs:?}");

    // Wrapping it out under another key is refused too.
    let wrapping = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32_u64.into()),
                Attribute::Token(false),
                Attribute::Wrap(true),
            ],
        )
        .unwrap();
    assert!(
        session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, key).is_err(),
        "the seal key was wrapped out"
    );
}

#[test]
fn wrong_pin_is_a_clear_error() {
    let Some(env) = env() else { return };
    let mut cfg = config(&env, "seal-pin");
    cfg.pin = SecretBytes::new(b"0000".to_vec());
    let msg = pkcs11_message(Pkcs11Seal::open(&cfg, true));
    assert!(msg.contains("wrong PIN") && msg.contains(TOKEN), "{msg}");
    assert!(
        !msg.contains("0000") && !msg.contains(PIN),
        "the PIN leaked into: {msg}"
    );
    // The right PIN still works afterwards.
    drop(open(&env, "seal-pin"));
}

#[test]
fn missing_token_is_a_clear_error() {
    let Some(env) = env() else { return };
    let mut cfg = config(&env, "seal-token");
    cfg.token_label = "no-such-token".into();
    let msg = pkcs11_message(Pkcs11Seal::open(&cfg, true));
    assert!(msg.contains("token \"no-such-token\" not found"), "{msg}");
    assert!(
        msg.contains(&format!("\"{TOKEN}\"")),
        "the present tokens should be listed: {msg}"
    );
}

#[test]
fn missing_key_without_create_is_a_clear_error() {
    let Some(env) = env() else { return };
    let msg = pkcs11_message(Pkcs11Seal::open(&config(&env, "seal-never-created"), false));
    assert!(
        msg.contains("no AES key labelled \"seal-never-created\"") && msg.contains(TOKEN),
        "{msg}"
    );
    // And nothing was created.
    let session = inspect_session(&env);
    assert!(keys_labelled(&session, "seal-never-created").is_empty());
}

#[test]
fn missing_module_is_a_clear_error() {
    let Some(env) = env() else { return };
    let mut cfg = config(&env, "seal-module");
    cfg.module = PathBuf::from("/nonexistent/libsofthsm2.so");
    let msg = pkcs11_message(Pkcs11Seal::open(&cfg, true));
    assert!(msg.contains("module /nonexistent/libsofthsm2.so not found"), "{msg}");
}

#[test]
fn unsuitable_existing_key_is_refused() {
    let Some(env) = env() else { return };
    // An extractable key under the label: the provider refuses to seal with it.
    let session = env.ctx.open_rw_session(token_slot(&env)).unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32_u64.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(b"seal-extractable".to_vec()),
            ],
        )
        .unwrap();
    let msg = pkcs11_message(Pkcs11Seal::open(&config(&env, "seal-extractable"), true));
    assert!(msg.contains("cannot be used as the seal key"), "{msg}");
}

#[test]
fn relogin_after_logout() {
    let Some(env) = env() else { return };
    let seal = open(&env, "seal-relogin");
    let sealed = seal.seal(b"ctx", b"still here").unwrap();
    // Log the application out of the token from another session: the provider's session loses its login.
    let session = env.ctx.open_ro_session(token_slot(&env)).unwrap();
    session.logout().unwrap();
    assert!(matches!(
        session.get_session_info().unwrap().session_state(),
        SessionState::RoPublic
    ));
    assert_eq!(
        seal.open_sealed(b"ctx", &sealed).unwrap().expose_secret(),
        b"still here"
    );
    // The provider logged in again (login state is shared by the application's sessions).
    assert!(matches!(
        session.get_session_info().unwrap().session_state(),
        SessionState::RoUser
    ));
    let again = seal.seal(b"ctx", b"and sealing").unwrap();
    assert_eq!(
        seal.open_sealed(b"ctx", &again).unwrap().expose_secret(),
        b"and sealing"
    );
}

#[test]
fn usable_from_many_threads() {
    let Some(env) = env() else { return };
    let seal = Arc::new(open(&env, "seal-threads"));
    let handles: Vec<_> = (0..4_u8)
        .map(|t| {
            let seal = Arc::clone(&seal);
            std::thread::spawn(move || {
                for i in 0..25_u8 {
                    let aad = [t, i];
                    let plaintext = [t ^ i; 32];
                    let sealed = seal.seal(&aad, &plaintext).unwrap();
                    assert!(seal.open_sealed(&aad, &sealed).unwrap().ct_eq(&plaintext));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
