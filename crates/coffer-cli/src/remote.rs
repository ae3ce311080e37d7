//! What `coffer key`, `coffer role` and `coffer backup` share: the connection flags (`--creds`, `--api-version`),
//! requests with the api-version (retrying 429 after Retry-After), paging, `az`-style JSON output and errors
//! (`ERROR: (Code) message` on stderr, exit status 1).
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coffer_client::{ApiError, Client, Credentials, Response};
use serde_json::Value;

/// The connection flags of every remote command.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Credentials file (admin-credentials.json shape: url, tenant_id, authority, client_id, client_secret,
    /// ca_cert).
    #[arg(
        long,
        env = "COFFER_CREDS",
        hide_env_values = true,
        global = true,
        value_name = "FILE"
    )]
    pub creds: Option<PathBuf>,
    /// The api-version sent with every request.
    #[arg(long, global = true, default_value = "7.6")]
    pub api_version: String,
}

/// An authenticated connection.
pub struct Api {
    client: Client,
    api_version: String,
}

/// How often a throttled (429) request is sent again.
const THROTTLE_RETRIES: u32 = 5;

impl Api {
    /// Reads the credentials file and builds the client (the token is fetched with the first request).
    pub fn connect(conn: &ConnArgs) -> anyhow::Result<Self> {
        let path = conn
            .creds
            .as_ref()
            .context("no credentials: pass --creds FILE or set COFFER_CREDS")?;
        Ok(Self {
            client: Client::new(Credentials::from_file(path)?)?,
            api_version: conn.api_version.clone(),
        })
    }

    /// `path` with `?api-version=…` and the other query parameters, percent-encoded.
    pub fn path(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        qs.append_pair("api-version", &self.api_version);
        for (k, v) in query {
            qs.append_pair(k, v);
        }
        format!("{path}?{}", qs.finish())
    }

    /// Sends a request to `path` (the api-version is added) or to an absolute URL (sent as it is: next links and
    /// status URLs), retrying a throttled request after its Retry-After; an error status is an [`ApiError`].
    pub async fn send_raw(
        &mut self,
        method: reqwest::Method,
        path_or_url: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let mut attempt = 0;
        loop {
            let r = self.client.call(method.clone(), path_or_url, body).await?;
            if r.status == 429 && attempt < THROTTLE_RETRIES {
                attempt += 1;
                let wait = r
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 30);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            if r.status >= 400 {
                return Err(ApiError::from_response(&method, path_or_url, &r).into());
            }
            return Ok(r);
        }
    }

    /// Sends a request to `path` with the api-version and `query`; returns the JSON body.
    pub async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = self.path(path, query);
        Ok(self.send_raw(method, &url, body).await?.body)
    }

    /// GETs a list and follows its `nextLink`s; returns all the `value` items.
    pub async fn list(&mut self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(self.path(path, query));
        while let Some(url) = next.take() {
            let body = self.send_raw(reqwest::Method::GET, &url, None).await?.body;
            if let Some(Value::Array(page)) = body.get("value") {
                items.extend(page.iter().cloned());
            }
            next = body
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        Ok(items)
    }
}

/// A path segment, percent-encoded (names are normally plain, but a stray `/`, `?` or `#` must not change the
/// route).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Prints a value as pretty JSON on stdout (`az … -o json`).
pub fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

/// A JSON argument given inline or as the path of a file holding it (`az` accepts both); `@FILE` also names a
/// file.
pub fn json_arg(arg: &str) -> anyhow::Result<Value> {
    let trimmed = arg.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return serde_json::from_str(arg).context("parsing the JSON argument");
    }
    let path = arg.strip_prefix('@').unwrap_or(arg);
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {path}"))
}

/// Ends a remote command: on error prints it on stderr the way `az` does (`ERROR: (Code) message`) and exits
/// with status 1.
pub fn finish(result: anyhow::Result<()>) -> anyhow::Result<()> {
    let Err(e) = result else {
        return Ok(());
    };
    let mut err = std::io::stderr().lock();
    // Nothing useful is left to do when stderr is gone: the exit status still tells.
    let _ = match e.downcast_ref::<ApiError>() {
        Some(a) if !a.code.is_empty() => writeln!(
            err,
            "ERROR: ({}) {}\nCode: {}\nMessage: {}{}",
            a.code,
            a.message,
            a.code,
            a.message,
            if a.status == 0 {
                String::new()
            } else {
                format!("\nStatus: {}", a.status)
            }
        ),
        Some(a) => writeln!(err, "ERROR: {} ({} {})", a.message, a.status, a.path),
        None => writeln!(err, "ERROR: {e:#}"),
    };
    std::process::exit(1)
}

/// A new GUID (version 4) for role definition and assignment names.
pub fn new_guid() -> anyhow::Result<String> {
    let b = coffer_crypto::random::bytes(16).map_err(|e| anyhow::anyhow!("random bytes: {e}"))?;
    let hex: String = b
        .iter()
        .enumerate()
        .map(|(i, x)| match i {
            6 => format!("{:02x}", (x & 0x0f) | 0x40),
            8 => format!("{:02x}", (x & 0x3f) | 0x80),
            _ => format!("{x:02x}"),
        })
        .collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    ))
}

/// Whether `s` is shaped like a GUID.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_v4_shaped_and_differ() {
        let a = new_guid().unwrap();
        let b = new_guid().unwrap();
        assert!(is_guid(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{a}");
        assert!(!is_guid("Managed HSM Crypto User"));
        assert!(is_guid("21dbd100-6940-42c2-9190-5d6cb909625b"));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("my-key_1"), "my-key_1");
        assert_eq!(seg("a/b?c d"), "a%2Fb%3Fc%20d");
    }

    #[test]
    fn json_args_inline_or_from_a_file() {
        assert_eq!(json_arg(r#"{"a":1}"#).unwrap()["a"], 1);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.json");
        std::fs::write(&f, r#"{"b":2}"#).unwrap();
        assert_eq!(json_arg(f.to_str().unwrap()).unwrap()["b"], 2);
        assert_eq!(json_arg(&format!("@{}", f.display())).unwrap()["b"], 2);
        assert!(json_arg("/nonexistent/file.json").is_err());
    }
}
