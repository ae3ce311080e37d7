//! A bounded load generator for a running Coffer: N concurrent clients send one operation in a loop for a fixed
#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a command-line report"
)]
//! time (or request count) against loopback, then report throughput and latency percentiles.
//!
//! `coffer-loadgen --creds coffer-data/admin-credentials.json --op sign-es256 --concurrency 16 --seconds 10`
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// admin-credentials.json of the instance.
    #[arg(long)]
    creds: std::path::PathBuf,
    /// Operation: sign-es256, sign-rs256, sign-ps256, decrypt-rsa-oaep256, encrypt-a256gcm, wrap-a256kw, get-key,
    /// rng, create-ec (a new P-256 key per request: the key creation rate).
    #[arg(long, default_value = "sign-es256")]
    op: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Duration in seconds (at most 120).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many requests in total.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: usize,
}

struct Op {
    method: reqwest::Method,
    path: String,
    body: Option<serde_json::Value>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let creds: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&args.creds)?)?;
    let s = |k: &str| {
        creds[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{k} missing"))
    };
    let url = s("url")?;
    anyhow::ensure!(
        url.starts_with("https://127.") || url.starts_with("https://localhost") || url.starts_with("https://[::1]"),
        "load is only sent to loopback addresses"
    );
    let ca = std::fs::read(s("ca_cert")?)?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
        .build()?;
    let form = [
        ("grant_type", "client_credentials".to_string()),
        ("client_id", s("client_id")?),
        ("client_secret", s("client_secret")?),
        ("scope", format!("{url}/.default")),
    ];
    let tok: serde_json::Value = client
        .post(format!("{url}/{}/oauth2/v2.0/token", s("tenant_id")?))
        .form(&form)
        .send()
        .await?
        .json()
        .await?;
    let token = tok["access_token"].as_str().context("no token")?.to_string();
    let v = "api-version=2025-07-01";
    let digest = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
    let (create, op) = match args.op.as_str() {
        "sign-es256" => (
            json!({"kty":"EC","crv":"P-256"}),
            Op {
                method: reqwest::Method::POST,
                path: format!("/keys/lg-ec//sign?{v}"),
                body: Some(json!({"alg":"ES256","value":digest})),
            },
        ),
        "sign-rs256" | "sign-ps256" => {
            let alg = if args.op == "sign-rs256" { "RS256" } else { "PS256" };
            (
                json!({"kty":"RSA","key_size":2048}),
                Op {
                    method: reqwest::Method::POST,
                    path: format!("/keys/lg-rsa//sign?{v}"),
                    body: Some(json!({"alg":alg,"value":digest})),
                },
            )
        }
        "encrypt-a256gcm" => (
            json!({"kty":"oct-HSM","key_size":256}),
            Op {
                method: reqwest::Method::POST,
                path: format!("/keys/lg-aes//encrypt?{v}"),
                body: Some(json!({"alg":"A256GCM","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})),
            },
        ),
        "wrap-a256kw" => (
            json!({"kty":"oct-HSM","key_size":256}),
            Op {
                method: reqwest::Method::POST,
                path: format!("/keys/lg-aes//wrapkey?{v}"),
                body: Some(json!({"alg":"A256KW","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})),
            },
        ),
        "get-key" => (
            json!({"kty":"EC","crv":"P-256"}),
            Op {
                method: reqwest::Method::GET,
                path: format!("/keys/lg-ec/?{v}"),
                body: None,
            },
        ),
        "create-ec" => (
            json!({"kty":"EC","crv":"P-256"}),
            Op {
                method: reqwest::Method::POST,
                // `{n}` becomes a name of the request's own.
                path: format!("/keys/lg-new-{{n}}/create?{v}"),
                body: Some(json!({"kty":"EC-HSM","crv":"P-256"})),
            },
        ),
        "rng" => (
            json!({"kty":"EC","crv":"P-256"}),
            Op {
                method: reqwest::Method::POST,
                path: format!("/rng?{v}"),
                body: Some(json!({"count":32})),
            },
        ),
        "decrypt-rsa-oaep256" => (
            json!({"kty":"RSA","key_size":2048}),
            Op {
                method: reqwest::Method::POST,
                path: String::new(),
                body: None,
            },
        ),
        other => anyhow::bail!("unknown op {other}"),
    };
    let key_name = match create["kty"].as_str() {
        Some("RSA") => "lg-rsa",
        Some("oct-HSM") => "lg-aes",
        _ => "lg-ec",
    };
    let r = client
        .post(format!("{url}/keys/{key_name}/create?{v}"))
        .bearer_auth(&token)
        .json(&create)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "create failed: {}", r.status());
    let op = if args.op == "decrypt-rsa-oaep256" {
        let ct: serde_json::Value = client
            .post(format!("{url}/keys/lg-rsa//encrypt?{v}"))
            .bearer_auth(&token)
            .json(&json!({"alg":"RSA-OAEP-256","value":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}))
            .send()
            .await?
            .json()
            .await?;
        Op {
            method: reqwest::Method::POST,
            path: format!("/keys/lg-rsa//decrypt?{v}"),
            body: Some(json!({"alg":"RSA-OAEP-256","value":ct["value"]})),
        }
    } else {
        op
    };
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs(args.seconds.min(120));
    let per_task = args.max_requests / args.concurrency.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    for task in 0..args.concurrency.max(1) {
        let (client, op, token, url) = (client.clone(), Arc::clone(&op), token.clone(), url.clone());
        let prefix = format!("{run}-{task}");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline && lat.len() + errors < per_task {
                let t = Instant::now();
                let path = op.path.replace("{n}", &format!("{prefix}-{}", lat.len() + errors));
                let mut req = client
                    .request(op.method.clone(), format!("{url}{path}"))
                    .bearer_auth(&token);
                if let Some(b) = &op.body {
                    req = req.json(b);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        let idx = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(idx).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    };
    println!(
        "op={} concurrency={} requests={} errors={} seconds={:.1} throughput={:.0} req/s p50={:.2}ms p99={:.2}ms",
        args.op,
        args.concurrency,
        all.len(),
        errors,
        secs,
        all.len() as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
