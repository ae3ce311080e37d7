//! Scale benchmark (issue 11): does a request decision stay as cheap with 100,000 keys and 10,000 per-key role
//! assignments as with ten keys and one assignment? Against a running instance (loopback only):
//! 1. a principal P with one assignment at `/` signs (ES256) over ten keys: throughput A;
//! 2. key creations are timed over the first and last batches while the instance grows to `--keys` keys;
//! 3. P's `/` assignment is replaced by one assignment per key on `--spread` keys, plus per-key assignments of
//!    other principals up to `--assignments` in all; P signs spread over its `--spread` keys: throughput B.
//!
//! Prints A, B, B/A and the creation rates. A benchmark, not a test: nothing here asserts a time.
//!
//! `coffer-scale --creds coffer-data/admin-credentials.json --keys 100000 --assignments 10000 --spread 1000`
#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a command-line report"
)]
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// admin-credentials.json of the instance (a fresh `--dev` instance).
    #[arg(long)]
    creds: std::path::PathBuf,
    /// Keys in the instance at the end.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Per-key role assignments at the end.
    #[arg(long, default_value_t = 10_000)]
    assignments: usize,
    /// Keys P signs with in the large phase (each with its own assignment).
    #[arg(long, default_value_t = 1_000)]
    spread: usize,
    /// Seconds of each signing measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The instance's metrics listener (`https://127.0.0.1:PORT/metrics`): store queries made during each signing
    /// measurement are printed.
    #[arg(long)]
    metrics_url: Option<String>,
}

/// Sum of `coffer_store_queries_total` over all methods.
async fn store_queries(api: &Api, url: Option<&str>) -> Option<f64> {
    let text = api.client.get(url?).send().await.ok()?.text().await.ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("coffer_store_queries_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

const V: &str = "api-version=2025-07-01";
const CRYPTO_USER: &str = "21dbd100-6940-42c2-9190-5d6cb909625b";
const DIGEST: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";

struct Api {
    client: reqwest::Client,
    url: String,
    tenant: String,
}

impl Api {
    async fn token(&self, client_id: &str, secret: &str) -> anyhow::Result<String> {
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id.to_string()),
            ("client_secret", secret.to_string()),
            ("scope", format!("{}/.default", self.url)),
        ];
        let tok: Value = self
            .client
            .post(format!("{}/{}/oauth2/v2.0/token", self.url, self.tenant))
            .form(&form)
            .send()
            .await?
            .json()
            .await?;
        Ok(tok["access_token"].as_str().context("no token")?.to_string())
    }
    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = self
            .client
            .request(method, format!("{}{path}{sep}{V}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let st = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(st.is_success(), "{path}: {st} {v}");
        Ok(v)
    }
    async fn assign(&self, token: &str, scope: &str, principal: &str) -> anyhow::Result<String> {
        let name = uuid::Uuid::new_v4().to_string();
        let body = json!({"properties": {
            "roleDefinitionId": format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_USER}"),
            "principalId": principal}});
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
        self.call(token, reqwest::Method::PUT, &path, Some(body)).await?;
        Ok(name)
    }
}

/// Runs `total` jobs `f(i)` with `concurrency` workers; returns the seconds it took.
async fn run_all<F, Fut>(total: usize, concurrency: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (f, next) = (Arc::clone(&f), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                f(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Signs for `seconds` with `concurrency` clients, cycling over `names`; returns (req/s, p99 ms).
async fn sign_load(api: &Arc<Api>, token: &str, names: Vec<String>, seconds: u64, concurrency: usize) -> (f64, f64) {
    let names = Arc::new(names);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (api, names, token, counter) = (
            Arc::clone(api),
            Arc::clone(&names),
            token.to_string(),
            Arc::clone(&counter),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let name = &names[i % names.len()];
                let t = Instant::now();
                let r = api
                    .client
                    .post(format!("{}/keys/{name}//sign?{V}", api.url))
                    .bearer_auth(&token)
                    .json(&json!({"alg": "ES256", "value": DIGEST}))
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status().is_success()
                {
                    let _ = r.bytes().await;
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let p99 = all
        .get(((all.len() as f64 - 1.0) * 0.99).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    (all.len() as f64 / secs, p99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.spread <= args.keys && args.spread <= args.assignments,
        "spread too large"
    );
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(&args.creds)?)?;
    let s = |k: &str| {
        creds[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{k} missing"))
    };
    let url = s("url")?;
    anyhow::ensure!(
        url.starts_with("https://127.") || url.starts_with("https://localhost"),
        "load is only sent to loopback addresses"
    );
    let ca = std::fs::read(s("ca_cert")?)?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
        .build()?;
    let api = Arc::new(Api {
        client,
        url,
        tenant: s("tenant_id")?,
    });
    let admin = api.token(&s("client_id")?, &s("client_secret")?).await?;
    let admin_oid = s("object_id")?;
    api.assign(&admin, "", &admin_oid).await?;
    let p = api
        .call(
            &admin,
            reqwest::Method::POST,
            "/coffer/v1/principals",
            Some(json!({"displayName": "scale-p"})),
        )
        .await?;
    let p_oid = p["objectId"].as_str().context("objectId")?.to_string();
    let p_token = api
        .token(
            p["clientId"].as_str().context("clientId")?,
            p["clientSecret"].as_str().context("clientSecret")?,
        )
        .await?;
    let create = |prefix: &'static str| {
        let (api, admin) = (Arc::clone(&api), admin.clone());
        move |i: usize| {
            let (api, admin) = (Arc::clone(&api), admin.clone());
            async move {
                let body = json!({"kty": "EC", "crv": "P-256"});
                api.call(
                    &admin,
                    reqwest::Method::POST,
                    &format!("/keys/{prefix}{i}/create"),
                    Some(body),
                )
                .await
                .map(|_| ())
            }
        }
    };

    // Phase A: ten keys, one assignment at "/".
    run_all(10, 4, create("small")).await?;
    let root = api.assign(&admin, "", &p_oid).await?;
    let small: Vec<String> = (0..10).map(|i| format!("small{i}")).collect();
    let _ = sign_load(&api, &p_token, small.clone(), 2, args.concurrency).await; // warm the key cache
    let q0 = store_queries(&api, args.metrics_url.as_deref()).await;
    let (a, a_p99) = sign_load(&api, &p_token, small, args.seconds, args.concurrency).await;
    let q1 = store_queries(&api, args.metrics_url.as_deref()).await;
    println!("small: 10 keys, 1 assignment: sign ES256 {a:.0} req/s, p99 {a_p99:.2} ms");
    if let (Some(q0), Some(q1)) = (q0, q1) {
        println!(
            "  store queries during the measurement (incl. one metrics scrape): {}",
            q1 - q0
        );
    }

    // Growth: keys, timed per batch.
    let batch = 1_000.min(args.keys);
    let mut rates = Vec::new();
    let mut made = 0;
    while made < args.keys {
        let n = batch.min(args.keys - made);
        let base = made;
        let secs = run_all(n, 8, {
            let c = create("k");
            move |i| c(base + i)
        })
        .await?;
        rates.push(n as f64 / secs);
        made += n;
        if made % 10_000 == 0 {
            println!(
                "  {made} keys, last batch {:.0} creations/s",
                rates.last().copied().unwrap_or(0.0)
            );
        }
    }
    // Assignments: P on its spread keys, others on the rest.
    api.call(
        &admin,
        reqwest::Method::DELETE,
        &format!("/providers/Microsoft.Authorization/roleAssignments/{root}"),
        None,
    )
    .await?;
    let (spread, total, keys) = (args.spread, args.assignments, args.keys);
    let started = Instant::now();
    run_all(total, 8, {
        let (api, admin, p_oid) = (Arc::clone(&api), admin.clone(), p_oid.clone());
        move |i| {
            let (api, admin, p_oid) = (Arc::clone(&api), admin.clone(), p_oid.clone());
            async move {
                let (who, key) = if i < spread {
                    (p_oid, i)
                } else {
                    (uuid::Uuid::new_v4().to_string(), i % keys)
                };
                api.assign(&admin, &format!("/keys/k{key}"), &who).await.map(|_| ())
            }
        }
    })
    .await?;
    println!(
        "{total} per-key assignments made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let names: Vec<String> = (0..spread).map(|i| format!("k{i}")).collect();
    let _ = sign_load(&api, &p_token, names.clone(), 2, args.concurrency).await;
    let q0 = store_queries(&api, args.metrics_url.as_deref()).await;
    let (b, b_p99) = sign_load(&api, &p_token, names, args.seconds, args.concurrency).await;
    let q1 = store_queries(&api, args.metrics_url.as_deref()).await;
    if let (Some(q0), Some(q1)) = (q0, q1) {
        println!(
            "  store queries during the measurement (incl. one metrics scrape): {}",
            q1 - q0
        );
    }
    println!(
        "large: {keys} keys, {total} per-key assignments, P spread over {spread} keys: sign ES256 {b:.0} req/s, p99 {b_p99:.2} ms"
    );
    let first = rates.first().copied().unwrap_or(0.0);
    let last = rates.last().copied().unwrap_or(0.0);
    println!(
        "ratio large/small sign: {:.3}; key creation: first batch {first:.0}/s, last batch {last:.0}/s (ratio {:.3})",
        b / a,
        last / first
    );
    Ok(())
}
