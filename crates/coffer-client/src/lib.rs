//! A small client for Coffer: authenticates as a service principal with the built-in token service (client
//! credentials), trusts the instance's CA, sends JSON, and polls long-running operations.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Where and as whom to connect (the fields of `admin-credentials.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub tenant_id: String,
    pub authority: String,
    pub client_id: String,
    pub client_secret: String,
    pub ca_cert: Option<PathBuf>,
}

impl Credentials {
    /// Reads `admin-credentials.json` (or a file of the same shape).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// An authenticated client.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    creds: Credentials,
    token: Option<String>,
}

/// A JSON response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

/// An error response of the service (status >= 400), with the Azure error code and message of its body
/// (`{"error": {"code": …, "message": …}}`). [`Client::call_ok`] returns it inside the `anyhow::Error`, so callers
/// can `downcast_ref::<ApiError>()` to print the code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub method: String,
    pub path: String,
    /// The HTTP status (0 when the error is not an HTTP response's, e.g. a long-running job that failed).
    pub status: u16,
    /// The Azure error code (`KeyNotFound`, `Forbidden`, …); empty when the body had none.
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// The error of a response.
    pub fn from_response(method: &reqwest::Method, path: &str, r: &Response) -> Self {
        let text = |k: &str| r.body["error"][k].as_str().unwrap_or("").to_string();
        let mut message = text("message");
        if message.is_empty()
            && let serde_json::Value::String(s) = &r.body
        {
            message.clone_from(s);
        }
        Self {
            method: method.to_string(),
            path: path.to_string(),
            status: r.status,
            code: text("code"),
            message,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} {}: {}",
            self.method, self.path, self.status, self.code, self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl Client {
    /// A client for these credentials (trusting `ca_cert` when given).
    pub fn new(creds: Credentials) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .https_only(true);
        if let Some(ca) = &creds.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("reading CA {}", ca.display()))?;
            b = b.tls_certs_merge([reqwest::Certificate::from_pem(&pem)?]);
        }
        Ok(Self {
            http: b.build()?,
            creds,
            token: None,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.creds.url
    }

    async fn bearer(&mut self) -> anyhow::Result<String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.creds.client_id.clone()),
            ("client_secret", self.creds.client_secret.clone()),
            ("scope", format!("{}/.default", self.creds.url)),
        ];
        let endpoint = format!(
            "{}/{}/oauth2/v2.0/token",
            self.creds.authority.trim_end_matches('/'),
            self.creds.tenant_id
        );
        let resp = self
            .http
            .post(&endpoint)
            .form(&form)
            .send()
            .await
            .with_context(|| format!("POST {endpoint}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!(
                "authentication failed ({status}): {}",
                body["error_description"].as_str().unwrap_or("")
            );
        }
        let token = body["access_token"]
            .as_str()
            .context("the token response has no access_token")?
            .to_string();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// Sends a request (`path_and_query` relative to the base URL, or an absolute URL) and returns the response.
    pub async fn call(
        &mut self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<Response> {
        let token = self.bearer().await?;
        let url = if path_and_query.starts_with("https://") {
            path_and_query.to_string()
        } else {
            format!("{}{path_and_query}", self.creds.url)
        };
        let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Ok(Response { status, headers, body })
    }

    /// Like [`Client::call`], but an error status becomes an error carrying the Azure error message.
    pub async fn call_ok(
        &mut self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<Response> {
        let r = self.call(method.clone(), path_and_query, body).await?;
        if r.status >= 400 {
            return Err(ApiError::from_response(&method, path_and_query, &r).into());
        }
        Ok(r)
    }

    /// Polls an `Azure-AsyncOperation` URL until a terminal status (`Success`/`Succeeded`, or `Failed`/`Canceled`,
    /// which is an error), at most `timeout`.
    pub async fn poll(&mut self, status_url: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.call_ok(reqwest::Method::GET, status_url, None).await?;
            let status = r.body["status"].as_str().unwrap_or("").to_ascii_lowercase();
            match status.as_str() {
                "success" | "succeeded" => return Ok(r.body),
                "failed" | "canceled" => anyhow::bail!("operation {status}: {}", r.body),
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("operation still {status} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
