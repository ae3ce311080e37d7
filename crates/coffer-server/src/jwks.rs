//! Fetching external issuers' JWK Sets: over HTTPS (rustls; system roots plus an optional CA per issuer, 10 s
//! timeout, 1 MiB limit) or from a file.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::Error;
use coffer_core::issuers::{ExternalIssuer, JwksSource, KeySetFetcher};

/// The production fetcher.
#[derive(Debug, Default)]
pub struct HttpsKeySetFetcher {
    clients: Mutex<HashMap<Option<std::path::PathBuf>, reqwest::Client>>,
}

fn fetch_error(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("JWKS fetch: {e}").into())
}

impl HttpsKeySetFetcher {
    fn client(&self, ca: Option<&std::path::Path>) -> Result<reqwest::Client, Error> {
        let key = ca.map(std::path::Path::to_path_buf);
        let mut map = self.clients.lock().map_err(|_| fetch_error("lock"))?;
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .https_only(true);
        if let Some(path) = ca {
            let pem = std::fs::read(path).map_err(fetch_error)?;
            builder = builder.tls_certs_merge([reqwest::Certificate::from_pem(&pem).map_err(fetch_error)?]);
        }
        let client = builder.build().map_err(fetch_error)?;
        map.insert(key, client.clone());
        Ok(client)
    }
}

#[async_trait]
impl KeySetFetcher for HttpsKeySetFetcher {
    async fn fetch(&self, issuer: &ExternalIssuer) -> Result<serde_json::Value, Error> {
        match &issuer.jwks {
            JwksSource::File(path) => {
                let text = tokio::fs::read(path).await.map_err(fetch_error)?;
                serde_json::from_slice(&text).map_err(fetch_error)
            }
            JwksSource::Url(url) => {
                let client = self.client(issuer.ca_cert.as_deref())?;
                let resp = client.get(url).send().await.map_err(fetch_error)?;
                if !resp.status().is_success() {
                    return Err(fetch_error(format!("{url} answered {}", resp.status())));
                }
                let bytes = resp.bytes().await.map_err(fetch_error)?;
                if bytes.len() > 1024 * 1024 {
                    return Err(fetch_error("JWKS larger than 1 MiB"));
                }
                serde_json::from_slice(&bytes).map_err(fetch_error)
            }
        }
    }
}
