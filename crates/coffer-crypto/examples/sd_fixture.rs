//! Security-domain fixtures for the Azure CLI interop run (tests/interop/run.sh).
//!
//! ```text
//! sd_fixture make DIR [OFFICERS [QUORUM]]
//!     Writes into DIR: officer{i}.pem / officer{i}.cer (PKCS#8 key and PEM certificate, the layout the CLI's
//!     --sd-wrapping-keys wants), exchange.pem / exchange.cer and other_exchange.pem / other_exchange.cer (exchange
//!     keys), transfer_key.json (the GET /securitydomain/upload body: transfer_key is the JWK as a JSON string),
//!     sd.json (the security-domain file, as build_security_domain makes it), rust_blob.json (a restore blob for
//!     exchange.cer made by recover_items with officers 0 and OFFICERS-1 plus make_restore_blob) and
//!     expected.json ({tag: hex} of the items).
//! sd_fixture open DIR BLOB... [--exchange NAME] [--expect-error TEXT]
//!     Opens each BLOB with open_restore_blob and the exchange key NAME (default "exchange") and compares the items with
//!     expected.json. With --expect-error, succeeds only if opening fails with a message containing TEXT.
//! ```
//! Exit status 0 on success; the reason for a failure goes to stderr.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use coffer_crypto::SecretBytes;
use coffer_crypto::security_domain::{
    RsaCertified, build_security_domain, generate_rsa_certified, make_restore_blob, open_restore_blob, recover_items,
    transfer_key_jwk,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The items the fixture's security domain carries: the tag the server uses, the real service's other two tags,
/// and an empty item.
fn fixture_items() -> Result<Vec<(String, Vec<u8>)>> {
    Ok(vec![
        ("hsm_backup".to_owned(), coffer_crypto::random::bytes(300)?),
        ("base_enclave_backup".to_owned(), coffer_crypto::random::bytes(32)?),
        ("kmsp_enclave_backup".to_owned(), Vec::new()),
    ])
}

fn write_pair(dir: &Path, name: &str, key: &RsaCertified) -> Result<()> {
    fs::write(dir.join(format!("{name}.pem")), key.key_pem().expose_secret())?;
    fs::write(dir.join(format!("{name}.cer")), key.cert_pem())?;
    Ok(())
}

fn read_pair(dir: &Path, name: &str) -> Result<RsaCertified> {
    let key = fs::read(dir.join(format!("{name}.pem")))?;
    let cert = fs::read_to_string(dir.join(format!("{name}.cer")))?;
    Ok(RsaCertified::from_pem(&key, &cert)?)
}

fn make(dir: &Path, officers: usize, quorum: u8) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut keys = Vec::with_capacity(officers);
    for i in 0..officers {
        let key = generate_rsa_certified(2048, &format!("sd interop officer {i}"))?;
        write_pair(dir, &format!("officer{i}"), &key)?;
        keys.push(key);
    }
    // The server's exchange key is 3072-bit (coffer-core); the other one is a different size on purpose.
    let exchange = generate_rsa_certified(3072, "sd interop exchange")?;
    write_pair(dir, "exchange", &exchange)?;
    let other = generate_rsa_certified(2048, "sd interop other exchange")?;
    write_pair(dir, "other_exchange", &other)?;

    let jwk = transfer_key_jwk(&exchange.cert_der, "https://coffer.example:8443")?;
    let body = serde_json::json!({"key_format": "jwk", "transfer_key": serde_json::to_string(&jwk)?});
    fs::write(dir.join("transfer_key.json"), serde_json::to_string(&body)?)?;

    let items = fixture_items()?;
    let borrowed: Vec<(&str, &[u8])> = items.iter().map(|(t, p)| (t.as_str(), p.as_slice())).collect();
    let certs: Vec<Vec<u8>> = keys.iter().map(|k| k.cert_der.clone()).collect();
    let file = build_security_domain(&borrowed, &certs, quorum)?;
    fs::write(dir.join("sd.json"), &file)?;
    let expected: BTreeMap<&str, String> = items.iter().map(|(t, p)| (t.as_str(), hex(p))).collect();
    fs::write(dir.join("expected.json"), serde_json::to_string_pretty(&expected)?)?;

    // The officer side in Rust: the first and the last officer (and more, up to the quorum).
    let mut chosen: Vec<RsaCertified> = Vec::new();
    for i in std::iter::once(officers - 1)
        .chain(0..officers)
        .take(usize::from(quorum))
    {
        chosen.push(read_pair(dir, &format!("officer{i}"))?);
    }
    let recovered = recover_items(&file, &chosen)?;
    check_items(&recovered, dir)?;
    let blob = make_restore_blob(&recovered, &exchange.cert_der)?;
    fs::write(dir.join("rust_blob.json"), blob)?;
    eprintln!(
        "sd_fixture: wrote {officers} officers (quorum {quorum}), exchange keys, sd.json, rust_blob.json to {}",
        dir.display()
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_items(items: &[(String, SecretBytes)], dir: &Path) -> Result<()> {
    let expected: BTreeMap<String, String> = serde_json::from_str(&fs::read_to_string(dir.join("expected.json"))?)?;
    let got: BTreeMap<String, String> = items.iter().map(|(t, p)| (t.clone(), hex(p.expose_secret()))).collect();
    if items.len() != got.len() {
        return Err("duplicate tags in the opened items".into());
    }
    if got != expected {
        return Err(format!(
            "items differ from expected.json: got tags {:?}, expected {:?} (or different contents)",
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        )
        .into());
    }
    Ok(())
}

fn open(dir: &Path, blob_path: &Path, exchange_name: &str, expect_error: Option<&str>) -> Result<()> {
    let exchange = read_pair(dir, exchange_name)?;
    let blob = fs::read_to_string(blob_path)?;
    match (open_restore_blob(&blob, &exchange), expect_error) {
        (Ok(items), None) => check_items(&items, dir),
        (Ok(_), Some(text)) => Err(format!(
            "{} opened, but an error with {text:?} was expected",
            blob_path.display()
        )
        .into()),
        (Err(e), Some(text)) if e.to_string().contains(text) => {
            eprintln!("sd_fixture: {} refused as expected: {e}", blob_path.display());
            Ok(())
        }
        (Err(e), _) => Err(format!("{}: {e}", blob_path.display()).into()),
    }
}

fn run(args: &[String]) -> Result<()> {
    match args {
        [cmd, dir, rest @ ..] if cmd == "make" => {
            let officers = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(3);
            let quorum = rest.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
            make(Path::new(dir), officers, quorum)
        }
        [cmd, dir, rest @ ..] if cmd == "open" => {
            let mut exchange = "exchange".to_owned();
            let mut expect_error = None;
            let mut blobs = Vec::new();
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--exchange" => exchange = it.next().ok_or("--exchange needs a value")?.clone(),
                    "--expect-error" => expect_error = Some(it.next().ok_or("--expect-error needs a value")?.as_str()),
                    blob => blobs.push(PathBuf::from(blob)),
                }
            }
            if blobs.is_empty() {
                return Err("open: no blob given".into());
            }
            for blob in &blobs {
                open(Path::new(dir), blob, &exchange, expect_error)?;
            }
            if expect_error.is_none() {
                eprintln!(
                    "sd_fixture: opened {} restore blob(s) with {exchange}; every item matches expected.json",
                    blobs.len()
                );
            }
            Ok(())
        }
        _ => Err(
            "usage: sd_fixture make DIR [OFFICERS [QUORUM]] | open DIR BLOB... [--exchange NAME] \
                  [--expect-error TEXT]"
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sd_fixture: error: {e}");
            ExitCode::FAILURE
        }
    }
}
