//! `coffer key …`: the `az keyvault key …` commands for a Managed HSM (same subcommand and flag names where they
//! apply), printing the service's JSON objects (KeyBundle, KeyItem lists, DeletedKeyBundle) as `az -o json` does.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::remote::{Api, ConnArgs, json_arg, print_json, seg};
use crate::spki;

#[derive(Args)]
pub struct KeyArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: KeyCommand,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key (or a new version of it).
    Create(CreateArgs),
    /// List the keys (latest versions).
    List {
        /// Also list keys whose lifetime is managed by the service (Coffer has none; accepted for az parity).
        #[arg(long)]
        include_managed: bool,
        /// Page size asked of the service (all pages are fetched).
        #[arg(long)]
        maxresults: Option<u32>,
    },
    /// List the versions of a key.
    ListVersions {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
        /// Page size asked of the service (all pages are fetched).
        #[arg(long)]
        maxresults: Option<u32>,
    },
    /// Show a key (latest version, or --version).
    Show {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
        /// The key version (default: the latest).
        #[arg(long, short = 'v')]
        version: Option<String>,
    },
    /// Update a key's attributes, operations or tags (latest version, or --version).
    SetAttributes(SetAttributesArgs),
    /// Delete a key (soft delete: it can be recovered until it is purged).
    Delete {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// List the deleted keys.
    ListDeleted {
        /// Page size asked of the service (all pages are fetched).
        #[arg(long)]
        maxresults: Option<u32>,
    },
    /// Show a deleted key.
    ShowDeleted {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Recover a deleted key.
    Recover {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Permanently delete a deleted key.
    Purge {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Back up a key (all its versions) into a file (the protected blob).
    Backup {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
        /// The file to write.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Restore a key from a backup file.
    Restore {
        /// The backup file.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Save a key's public key (SubjectPublicKeyInfo) to a file.
    Download {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
        /// The key version (default: the latest).
        #[arg(long, short = 'v')]
        version: Option<String>,
        /// The file to write.
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// PEM or DER.
        #[arg(long, short = 'e', value_enum, default_value_t = Encoding::Pem)]
        encoding: Encoding,
    },
    /// Make a new version of a key now (needs a rotation policy on the key).
    Rotate {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// A key's rotation policy.
    #[command(subcommand)]
    RotationPolicy(RotationPolicyCommand),
    /// Random bytes from the HSM.
    Random {
        /// How many bytes (1 to 128).
        #[arg(long)]
        count: u32,
    },
    /// Import a key protected by a key exchange key (BYOK: a `.byok` file from a vendor's tool).
    Import(ImportArgs),
    /// A key version with its attestation (`az keyvault key get-attestation`).
    GetAttestation {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
        /// The key version (default: the latest).
        #[arg(long, short = 'v')]
        version: Option<String>,
        /// Also write the key bundle with its attestation to this file (for `verify-attestation`).
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
    },
    /// Offline: verify an attestation saved by `get-attestation` (or `az keyvault key get-attestation`). Needs no
    /// connection.
    VerifyAttestation {
        /// The saved key bundle (JSON with `attributes.attestation`).
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// The SHA-256 of the instance's attestation certificate (hex or base64url), obtained once from a trusted
        /// channel; without it the certificate is only reported, not trusted.
        #[arg(long)]
        root_sha256: Option<String>,
    },
}

#[derive(Subcommand)]
enum RotationPolicyCommand {
    /// Show a key's rotation policy.
    Show {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Set a key's rotation policy.
    Update {
        /// The key's name.
        #[arg(long, short = 'n')]
        name: String,
        /// The policy: a JSON file or string ({"lifetimeActions": [...], "attributes": {"expiryTime": "P2Y"}}).
        #[arg(long)]
        value: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Encoding {
    #[value(name = "PEM", alias = "pem")]
    Pem,
    #[value(name = "DER", alias = "der")]
    Der,
}

/// Writable attributes shared by create, set-attributes and import.
#[derive(Args)]
struct AttributeArgs {
    /// Permitted operations (encrypt decrypt sign verify wrapKey unwrapKey import export).
    #[arg(long, num_args = 1..)]
    ops: Option<Vec<String>>,
    /// Expiration (RFC 3339, e.g. 2027-01-01T00:00:00Z).
    #[arg(long)]
    expires: Option<String>,
    /// Activation (RFC 3339).
    #[arg(long)]
    not_before: Option<String>,
    /// Tags: space-separated key=value pairs ("--tags" alone clears them on set-attributes).
    #[arg(long, num_args = 0..)]
    tags: Option<Vec<String>>,
    /// The release policy (a JSON file or string).
    #[arg(long)]
    policy: Option<String>,
    /// Make the release policy immutable.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    immutable: Option<bool>,
}

#[derive(Args)]
struct CreateArgs {
    /// The key's name.
    #[arg(long, short = 'n')]
    name: String,
    /// The key type.
    #[arg(long, value_parser = ["RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM"])]
    kty: String,
    /// RSA size (2048, 3072, 4096) or AES size (128, 192, 256) in bits.
    #[arg(long)]
    size: Option<u32>,
    /// RSA public exponent.
    #[arg(long)]
    public_exponent: Option<u32>,
    /// Elliptic curve.
    #[arg(long, value_parser = ["P-256", "P-256K", "P-384", "P-521"])]
    curve: Option<String>,
    #[command(flatten)]
    attrs: AttributeArgs,
    /// Create the key disabled.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    disabled: Option<bool>,
    /// Whether the private key may be exported (needs --policy).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    exportable: Option<bool>,
}

#[derive(Args)]
struct SetAttributesArgs {
    /// The key's name.
    #[arg(long, short = 'n')]
    name: String,
    /// The key version (default: the latest).
    #[arg(long, short = 'v')]
    version: Option<String>,
    /// Enable or disable the key.
    #[arg(long)]
    enabled: Option<bool>,
    #[command(flatten)]
    attrs: AttributeArgs,
}

#[derive(Args)]
struct ImportArgs {
    /// The key's name.
    #[arg(long, short = 'n')]
    name: String,
    /// The BYOK file (its bytes are sent as `key_hsm`).
    #[arg(long)]
    byok_file: PathBuf,
    /// The key type ("-HSM" is added: BYOK keys are HSM keys).
    #[arg(long, default_value = "RSA", value_parser = ["RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM"])]
    kty: String,
    /// The curve of an EC key.
    #[arg(long, value_parser = ["P-256", "P-256K", "P-384", "P-521"])]
    curve: Option<String>,
    #[command(flatten)]
    attrs: AttributeArgs,
    /// Import the key disabled.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    disabled: Option<bool>,
    /// Whether the private key may be exported (needs --policy).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    exportable: Option<bool>,
}

/// RFC 3339 to Unix seconds.
fn unix_time(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--{flag}: '{s}' is not an RFC 3339 date-time (e.g. 2027-01-01T00:00:00Z)"))?;
    Ok(t.unix_timestamp())
}

/// `k=v` pairs (a bare `k` has an empty value, as in az).
fn tags(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect()
}

impl AttributeArgs {
    /// Adds `exp`/`nbf` to `attributes`, and `tags` and `release_policy` to the body (`key_ops` goes to the body or,
    /// for an import, to the JWK: the callers add it).
    fn apply(&self, body: &mut Map<String, Value>, attributes: &mut Map<String, Value>) -> anyhow::Result<()> {
        if let Some(e) = &self.expires {
            attributes.insert("exp".into(), json!(unix_time("expires", e)?));
        }
        if let Some(n) = &self.not_before {
            attributes.insert("nbf".into(), json!(unix_time("not-before", n)?));
        }
        if let Some(t) = &self.tags {
            body.insert("tags".into(), json!(tags(t)));
        }
        if let Some(p) = &self.policy {
            let policy = json_arg(p)?;
            let mut rp = json!({
                "contentType": "application/json; charset=utf-8",
                "data": URL_SAFE_NO_PAD.encode(serde_json::to_vec(&policy)?),
            });
            if let Some(i) = self.immutable {
                rp["immutable"] = json!(i);
            }
            body.insert("release_policy".into(), rp);
        } else if self.immutable.is_some() {
            bail!("--immutable needs --policy");
        }
        Ok(())
    }
}

fn finish_attributes(body: &mut Map<String, Value>, attributes: Map<String, Value>) {
    if !attributes.is_empty() {
        body.insert("attributes".into(), Value::Object(attributes));
    }
}

/// The body of `POST /keys/{name}/create`.
fn create_body(a: &CreateArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("kty".into(), json!(a.kty));
    if let Some(s) = a.size {
        body.insert("key_size".into(), json!(s));
    }
    if let Some(e) = a.public_exponent {
        body.insert("public_exponent".into(), json!(e));
    }
    if let Some(c) = &a.curve {
        body.insert("crv".into(), json!(c));
    }
    if let Some(ops) = &a.attrs.ops {
        body.insert("key_ops".into(), json!(ops));
    }
    let mut attributes = Map::new();
    if let Some(d) = a.disabled {
        attributes.insert("enabled".into(), json!(!d));
    }
    if let Some(x) = a.exportable {
        attributes.insert("exportable".into(), json!(x));
    }
    a.attrs.apply(&mut body, &mut attributes)?;
    finish_attributes(&mut body, attributes);
    Ok(Value::Object(body))
}

/// The body of `PATCH /keys/{name}[/{version}]`.
fn update_body(a: &SetAttributesArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(ops) = &a.attrs.ops {
        body.insert("key_ops".into(), json!(ops));
    }
    let mut attributes = Map::new();
    if let Some(e) = a.enabled {
        attributes.insert("enabled".into(), json!(e));
    }
    a.attrs.apply(&mut body, &mut attributes)?;
    finish_attributes(&mut body, attributes);
    Ok(Value::Object(body))
}

/// The body of `PUT /keys/{name}` for a BYOK import: `{"key": {"kty": "RSA-HSM", "key_hsm": …}, …}`.
fn import_body(a: &ImportArgs, byok: &[u8]) -> anyhow::Result<Value> {
    let kty = if a.kty.ends_with("-HSM") {
        a.kty.clone()
    } else {
        format!("{}-HSM", a.kty)
    };
    if kty == "EC-HSM" && a.curve.is_none() {
        bail!("--curve is required to import an EC key");
    }
    let mut key = Map::new();
    key.insert("kty".into(), json!(kty));
    key.insert("key_hsm".into(), json!(URL_SAFE_NO_PAD.encode(byok)));
    if let Some(c) = &a.curve {
        key.insert("crv".into(), json!(c));
    }
    if let Some(ops) = &a.attrs.ops {
        key.insert("key_ops".into(), json!(ops));
    }
    let mut body = Map::new();
    body.insert("key".into(), Value::Object(key));
    body.insert("Hsm".into(), json!(true));
    let mut attributes = Map::new();
    if let Some(d) = a.disabled {
        attributes.insert("enabled".into(), json!(!d));
    }
    if let Some(x) = a.exportable {
        attributes.insert("exportable".into(), json!(x));
    }
    a.attrs.apply(&mut body, &mut attributes)?;
    finish_attributes(&mut body, attributes);
    Ok(Value::Object(body))
}

fn key_path(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("/keys/{}/{}", seg(name), seg(v)),
        None => format!("/keys/{}", seg(name)),
    }
}

fn page(maxresults: Option<u32>) -> Option<String> {
    maxresults.map(|m| m.to_string())
}

fn query(maxresults: Option<&String>) -> Vec<(&str, &str)> {
    maxresults.map(|m| ("maxresults", m.as_str())).into_iter().collect()
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Runs a command.
pub async fn run(args: KeyArgs) -> anyhow::Result<()> {
    if let KeyCommand::VerifyAttestation { file, root_sha256 } = &args.cmd {
        return print_json(&crate::attestation::verify(file, root_sha256.as_deref())?);
    }
    let mut api = Api::connect(&args.conn)?;
    let value = match args.cmd {
        KeyCommand::Create(a) => {
            let body = create_body(&a)?;
            let path = format!("/keys/{}/create", seg(&a.name));
            api.send(Method::POST, &path, &[], Some(&body)).await?
        }
        KeyCommand::List {
            include_managed,
            maxresults,
        } => {
            let m = page(maxresults);
            let mut items = api.list("/keys", &query(m.as_ref())).await?;
            if !include_managed {
                items.retain(|k| k.get("managed").and_then(Value::as_bool) != Some(true));
            }
            Value::Array(items)
        }
        KeyCommand::ListVersions { name, maxresults } => {
            let m = page(maxresults);
            let path = format!("/keys/{}/versions", seg(&name));
            Value::Array(api.list(&path, &query(m.as_ref())).await?)
        }
        KeyCommand::Show { name, version } => {
            api.send(Method::GET, &key_path(&name, version.as_deref()), &[], None)
                .await?
        }
        KeyCommand::SetAttributes(a) => {
            let body = update_body(&a)?;
            let path = key_path(&a.name, a.version.as_deref());
            api.send(Method::PATCH, &path, &[], Some(&body)).await?
        }
        KeyCommand::Delete { name } => api.send(Method::DELETE, &key_path(&name, None), &[], None).await?,
        KeyCommand::ListDeleted { maxresults } => {
            let m = page(maxresults);
            Value::Array(api.list("/deletedkeys", &query(m.as_ref())).await?)
        }
        KeyCommand::ShowDeleted { name } => {
            let path = format!("/deletedkeys/{}", seg(&name));
            api.send(Method::GET, &path, &[], None).await?
        }
        KeyCommand::Recover { name } => {
            let path = format!("/deletedkeys/{}/recover", seg(&name));
            api.send(Method::POST, &path, &[], None).await?
        }
        KeyCommand::Purge { name } => {
            let path = format!("/deletedkeys/{}", seg(&name));
            api.send(Method::DELETE, &path, &[], None).await?;
            return Ok(());
        }
        KeyCommand::Backup { name, file } => {
            let path = format!("/keys/{}/backup", seg(&name));
            let r = api.send(Method::POST, &path, &[], None).await?;
            let blob = r
                .get("value")
                .and_then(Value::as_str)
                .context("the backup response has no value")?;
            let bytes = URL_SAFE_NO_PAD
                .decode(blob.trim_end_matches('='))
                .context("the backup blob is not base64url")?;
            write_file(&file, &bytes)?;
            return Ok(());
        }
        KeyCommand::Restore { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let body = json!({ "value": URL_SAFE_NO_PAD.encode(bytes) });
            api.send(Method::POST, "/keys/restore", &[], Some(&body)).await?
        }
        KeyCommand::Download {
            name,
            version,
            file,
            encoding,
        } => {
            let bundle = api
                .send(Method::GET, &key_path(&name, version.as_deref()), &[], None)
                .await?;
            let der = spki::spki_der(bundle.get("key").unwrap_or(&Value::Null))?;
            match encoding {
                Encoding::Der => write_file(&file, &der)?,
                Encoding::Pem => write_file(&file, spki::pem(&der).as_bytes())?,
            }
            return Ok(());
        }
        KeyCommand::Rotate { name } => {
            let path = format!("/keys/{}/rotate", seg(&name));
            api.send(Method::POST, &path, &[], None).await?
        }
        KeyCommand::RotationPolicy(RotationPolicyCommand::Show { name }) => {
            let path = format!("/keys/{}/rotationpolicy", seg(&name));
            api.send(Method::GET, &path, &[], None).await?
        }
        KeyCommand::RotationPolicy(RotationPolicyCommand::Update { name, value }) => {
            let policy = json_arg(&value)?;
            let path = format!("/keys/{}/rotationpolicy", seg(&name));
            api.send(Method::PUT, &path, &[], Some(&policy)).await?
        }
        KeyCommand::Random { count } => {
            api.send(Method::POST, "/rng", &[], Some(&json!({ "count": count })))
                .await?
        }
        KeyCommand::GetAttestation { name, version, file } => {
            let path = match &version {
                Some(v) => format!("/keys/{}/{}/attestation", seg(&name), seg(v)),
                None => format!("/keys/{}/attestation", seg(&name)),
            };
            let v = api.send(Method::GET, &path, &[], None).await?;
            if let Some(f) = &file {
                write_file(f, serde_json::to_string_pretty(&v)?.as_bytes())?;
            }
            v
        }
        KeyCommand::VerifyAttestation { .. } => bail!("verify-attestation runs offline"),
        KeyCommand::Import(a) => {
            let byok = std::fs::read(&a.byok_file).with_context(|| format!("reading {}", a.byok_file.display()))?;
            let body = import_body(&a, &byok)?;
            api.send(Method::PUT, &key_path(&a.name, None), &[], Some(&body))
                .await?
        }
    };
    print_json(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: KeyArgs,
    }

    fn parse(args: &[&str]) -> KeyCommand {
        let mut full = vec!["key"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).unwrap().args.cmd
    }

    #[test]
    fn create_body_has_the_rest_names() {
        let KeyCommand::Create(a) = parse(&[
            "create",
            "--name",
            "k",
            "--kty",
            "RSA-HSM",
            "--size",
            "3072",
            "--ops",
            "sign",
            "verify",
            "--expires",
            "2030-01-01T00:00:00Z",
            "--not-before",
            "2029-01-01T01:00:00+01:00",
            "--tags",
            "env=prod",
            "team",
            "--disabled",
        ]) else {
            panic!("not create")
        };
        let b = create_body(&a).unwrap();
        assert_eq!(
            b,
            json!({"kty": "RSA-HSM", "key_size": 3072, "key_ops": ["sign", "verify"],
                "attributes": {"enabled": false, "exp": 1_893_456_000, "nbf": 1_861_920_000},
                "tags": {"env": "prod", "team": ""}})
        );
    }

    #[test]
    fn exportable_keys_carry_the_release_policy() {
        let KeyCommand::Create(a) = parse(&[
            "create",
            "-n",
            "k",
            "--kty",
            "oct-HSM",
            "--exportable",
            "--policy",
            r#"{"version":"1.0.0","anyOf":[]}"#,
            "--immutable",
        ]) else {
            panic!("not create")
        };
        let b = create_body(&a).unwrap();
        assert_eq!(b["attributes"]["exportable"], true);
        assert_eq!(b["release_policy"]["immutable"], true);
        let data = URL_SAFE_NO_PAD
            .decode(b["release_policy"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&data).unwrap(),
            json!({"version":"1.0.0","anyOf":[]})
        );
    }

    #[test]
    fn set_attributes_sends_only_what_is_given() {
        let KeyCommand::SetAttributes(a) = parse(&["set-attributes", "-n", "k", "--enabled", "false"]) else {
            panic!("not set-attributes")
        };
        assert_eq!(update_body(&a).unwrap(), json!({"attributes": {"enabled": false}}));
        let KeyCommand::SetAttributes(a) = parse(&["set-attributes", "-n", "k", "--tags"]) else {
            panic!("not set-attributes")
        };
        assert_eq!(update_body(&a).unwrap(), json!({"tags": {}}));
        let KeyCommand::SetAttributes(a) = parse(&["set-attributes", "-n", "k", "--expires", "tomorrow"]) else {
            panic!("not set-attributes")
        };
        assert!(update_body(&a).is_err());
    }

    #[test]
    fn byok_import_request_shape() {
        let KeyCommand::Import(a) = parse(&[
            "import",
            "-n",
            "imported",
            "--byok-file",
            "/dev/null",
            "--kty",
            "EC",
            "--curve",
            "P-384",
            "--ops",
            "sign",
        ]) else {
            panic!("not import")
        };
        let byok = br#"{"schema_version":"1.0.0","ciphertext":"..."}"#;
        let b = import_body(&a, byok).unwrap();
        assert_eq!(
            b,
            json!({"key": {"kty": "EC-HSM", "crv": "P-384", "key_ops": ["sign"],
                "key_hsm": URL_SAFE_NO_PAD.encode(byok)}, "Hsm": true})
        );
        assert!(!b["key"]["key_hsm"].as_str().unwrap().contains('='));
        // The default key type is RSA; an EC key needs its curve.
        let KeyCommand::Import(a) = parse(&["import", "-n", "i", "--byok-file", "f"]) else {
            panic!("not import")
        };
        assert_eq!(import_body(&a, b"x").unwrap()["key"]["kty"], "RSA-HSM");
        let KeyCommand::Import(a) = parse(&["import", "-n", "i", "--byok-file", "f", "--kty", "EC-HSM"]) else {
            panic!("not import")
        };
        assert!(import_body(&a, b"x").is_err());
    }
}
