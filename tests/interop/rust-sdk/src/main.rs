//! Signs with a Coffer key through the official Azure SDK for Rust, unmodified:
//!
//! 1. `azure_identity::ClientSecretCredential` with a custom cloud whose authority host is Coffer, so its token
//!    endpoint is `{authority}/{tenant}/oauth2/v2.0/token` (tenant `adfs` or the instance's tenant id);
//! 2. `azure_security_keyvault_keys::KeyClient` creates an EC P-256 key, signs a SHA-256 digest with ES256 and
//!    verifies it (server-side, and a tampered digest is refused), and the signature is checked locally against the
//!    key's public JWK;
//! 3. every HTTP request the SDK sent is recorded (through the transport) and checked: the token request went to the
//!    expected path, and nothing left Coffer's host.
//!
//! TLS trusts only the CA file given (Coffer's `<data-dir>/ca.pem`); verification stays on.
//!
//! Environment: COFFER_URL, COFFER_TENANT, COFFER_CLIENT_ID, COFFER_CLIENT_SECRET, COFFER_CA_FILE, and optionally
//! COFFER_AUTHORITY (default: COFFER_URL). Exits 0 only if every step succeeded.
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail, ensure};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use azure_security_keyvault_keys::models::{
    CreateKeyParameters, CurveName, KeyClientSignOptions, KeyType, SignParameters, SignatureAlgorithm, VerifyParameters,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceExt as _};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest as _, Sha256};

/// One request the SDK sent, and its response status (or the transport error).
#[derive(Debug)]
struct Call {
    method: String,
    origin: String,
    path: String,
    status: Result<u16, String>,
}

/// The SDK's HTTP transport: a reqwest client that trusts only Coffer's CA, recording each request it sends.
#[derive(Debug)]
struct RecordingClient {
    inner: reqwest::Client,
    calls: Arc<Mutex<Vec<Call>>>,
}

#[async_trait::async_trait]
impl HttpClient for RecordingClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let result = self.inner.execute_request(request).await;
        let outcome = match &result {
            Ok(response) => Ok(u16::from(response.status())),
            Err(e) => Err(e.to_string()),
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call {
                method: request.method().to_string(),
                origin: request.url().origin().ascii_serialization(),
                path: request.url().path().to_string(),
                status: outcome,
            });
        }
        result
    }
}

/// Server-side ES256 verification of `signature` over `digest` with the key version; the service's `value`.
async fn verify(
    keys: &KeyClient,
    name: &str,
    version: &str,
    digest: &[u8],
    signature: &[u8],
) -> anyhow::Result<Option<bool>> {
    let params = VerifyParameters {
        algorithm: Some(SignatureAlgorithm::Es256),
        digest: Some(digest.to_vec()),
        signature: Some(signature.to_vec()),
    };
    Ok(keys
        .verify(name, version, params.try_into()?, None)
        .await
        .context("KeyClient::verify")?
        .into_model()
        .context("the verify response")?
        .value)
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // the whole chain of causes on one line (the SDK's errors carry the service's message)
            eprintln!("rust-sdk: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let url = env("COFFER_URL")?.trim_end_matches('/').to_string();
    let authority = std::env::var("COFFER_AUTHORITY").unwrap_or_else(|_| url.clone());
    let tenant = env("COFFER_TENANT")?;
    let client_id = env("COFFER_CLIENT_ID")?;
    let secret = Secret::new(env("COFFER_CLIENT_SECRET")?);
    let ca_file = env("COFFER_CA_FILE")?;
    println!("rust-sdk: Coffer {url}, authority {authority}, tenant {tenant}, CA {ca_file}");

    // TLS: rustls (ring) with Coffer's CA as the only root. (rustls 0.23.48 deprecates ring's provider for its lack of
    // post-quantum key exchange; its successor, aws-lc-rs, is a large C build that this test does not need.)
    #[expect(
        deprecated,
        reason = "ring keeps this test's build lean; post-quantum key exchange is not under test"
    )]
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow!("a rustls crypto provider was already installed"))?;
    let ca_pem = std::fs::read(&ca_file).with_context(|| format!("reading {ca_file}"))?;
    let roots = reqwest::Certificate::from_pem_bundle(&ca_pem).with_context(|| format!("parsing {ca_file}"))?;
    ensure!(!roots.is_empty(), "{ca_file} holds no certificate");
    let http = reqwest::Client::builder()
        .tls_certs_only(roots)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let transport = Transport::new(Arc::new(RecordingClient {
        inner: http,
        calls: calls.clone(),
    }));

    // The credential: a custom cloud whose authority host is Coffer's.
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority.clone();
    let cloud: Arc<CloudConfiguration> = Arc::new(cloud.into());
    let client_options = ClientOptions {
        transport: Some(transport),
        cloud: Some(cloud),
        ..Default::default()
    };
    let credential = ClientSecretCredential::new(
        &tenant,
        client_id.clone(),
        secret,
        Some(ClientSecretCredentialOptions {
            client_options: client_options.clone(),
        }),
    )
    .context("creating the ClientSecretCredential")?;

    // 1. A token for the HSM, straight from the credential.
    let scope = format!("{url}/.default");
    let token = credential
        .get_token(&[scope.as_str()], None)
        .await
        .context("ClientSecretCredential::get_token")?;
    ensure!(!token.token.secret().is_empty(), "the token is empty");
    let now = azure_core::time::OffsetDateTime::now_utc();
    ensure!(
        token.expires_on > now + azure_core::time::Duration::minutes(5),
        "the token expires too soon: {}",
        token.expires_on
    );
    let token_path = format!("/{tenant}/oauth2/v2.0/token");
    {
        let calls = calls.lock().map_err(|_| anyhow!("call log poisoned"))?;
        ensure!(
            calls
                .iter()
                .any(|c| c.method == "POST" && c.path == token_path && c.status == Ok(200)),
            "no successful POST {token_path} among {calls:?}"
        );
    }
    println!(
        "rust-sdk: ClientSecretCredential got a token from POST {authority}{token_path} (expires {})",
        token.expires_on
    );

    // 2. The key client (the URL is an IP address: the challenge resource cannot be a parent domain of it).
    let keys = KeyClient::new(
        &url,
        credential.clone(),
        Some(KeyClientOptions {
            client_options,
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .context("creating the KeyClient")?;

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let name = format!("rust-sdk-{}-{stamp}", if tenant == "adfs" { "adfs" } else { "tenant" });
    let params = CreateKeyParameters {
        kty: Some(KeyType::Ec),
        curve: Some(CurveName::P256),
        ..Default::default()
    };
    let key = keys
        .create_key(&name, params.try_into()?, None)
        .await
        .context("KeyClient::create_key")?
        .into_model()
        .context("the create_key response")?;
    let id = key.resource_id().context("the created key's kid")?;
    ensure!(id.name == name, "created key is named {:?}, not {name:?}", id.name);
    ensure!(
        id.vault_url == url,
        "created key's vault is {:?}, not {url:?}",
        id.vault_url
    );
    let version = id.version.clone().context("the created key's kid has no version")?;
    let jwk = key.key.as_ref().context("the created key has no JWK")?;
    ensure!(
        matches!(jwk.kty, Some(KeyType::Ec | KeyType::EcHsm)),
        "created key type is {:?}, not EC",
        jwk.kty
    );
    ensure!(
        jwk.crv == Some(CurveName::P256),
        "created key curve is {:?}, not P-256",
        jwk.crv
    );
    let (x, y) = match (&jwk.x, &jwk.y) {
        (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => (x.clone(), y.clone()),
        _ => bail!("the created key's JWK has no 32-byte x and y"),
    };
    ensure!(jwk.d.is_none(), "the created key's JWK carries a private part");
    println!(
        "rust-sdk: KeyClient::create_key made {} ({:?} P-256)",
        id.source_id, jwk.kty
    );

    // 3. Sign a SHA-256 digest with ES256.
    let message = format!("signed by the Azure SDK for Rust through tenant {tenant}");
    let digest = Sha256::digest(message.as_bytes()).to_vec();
    let signed = keys
        .sign(
            &name,
            SignParameters {
                algorithm: Some(SignatureAlgorithm::Es256),
                value: Some(digest.clone()),
            }
            .try_into()?,
            Some(KeyClientSignOptions {
                key_version: Some(version.clone()),
                ..Default::default()
            }),
        )
        .await
        .context("KeyClient::sign")?
        .into_model()
        .context("the sign response")?;
    ensure!(
        signed.kid.as_deref() == Some(id.source_id.as_str()),
        "sign answered for {:?}, not {}",
        signed.kid,
        id.source_id
    );
    let signature = signed.result.context("the sign response has no value")?;
    ensure!(
        signature.len() == 64,
        "an ES256 signature is 64 bytes, got {}",
        signature.len()
    );
    println!(
        "rust-sdk: KeyClient::sign ES256 over SHA-256 digest -> {}-byte signature",
        signature.len()
    );

    // 4. Verify: server-side (true for the digest, false for another one) and locally with the public key.
    let verified = verify(&keys, &name, &version, &digest, &signature).await?;
    ensure!(
        verified == Some(true),
        "server-side verify of the signature said {verified:?}"
    );
    let other = Sha256::digest(b"another message").to_vec();
    let refused = verify(&keys, &name, &version, &other, &signature).await?;
    ensure!(
        refused == Some(false),
        "server-side verify of another digest said {refused:?}"
    );
    println!("rust-sdk: KeyClient::verify -> true for the digest, false for another digest");

    let mut point = vec![0x04];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).context("the JWK's x, y are not a P-256 point")?;
    let sig = p256::ecdsa::Signature::from_slice(&signature).context("the signature is not r||s")?;
    public
        .verify_prehash(&digest, &sig)
        .map_err(|_| anyhow!("the signature does not verify locally against the key's JWK"))?;
    println!("rust-sdk: signature verified locally (p256) against the key's public JWK");

    // 5. Every request went to Coffer, and the token came from the expected endpoint.
    let calls = calls.lock().map_err(|_| anyhow!("call log poisoned"))?;
    let origin = reqwest::Url::parse(&url)?.origin().ascii_serialization();
    for c in calls.iter() {
        let status = c.status.as_ref().map_or_else(|e| e.clone(), u16::to_string);
        println!("rust-sdk:   {} {}{} -> {status}", c.method, c.origin, c.path);
    }
    let token_requests: Vec<_> = calls.iter().filter(|c| c.path.contains("/oauth2/")).collect();
    ensure!(
        token_requests
            .iter()
            .all(|c| c.method == "POST" && c.path == token_path && c.status == Ok(200)),
        "unexpected token requests: {token_requests:?}"
    );
    ensure!(
        calls.iter().all(|c| c.origin == origin && c.status.is_ok()),
        "a request went elsewhere than {origin} or failed in transport: {calls:?}"
    );
    println!(
        "rust-sdk: all passed ({} requests, {} to the token endpoint)",
        calls.len(),
        token_requests.len()
    );
    Ok(())
}
