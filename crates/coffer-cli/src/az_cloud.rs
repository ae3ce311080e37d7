//! `coffer az-cloud`: the Azure CLI configuration for an instance (docs/AZURE-CLI.md). From a credentials file it
//! prints the `az cloud register` and `az login --service-principal` commands after which `az keyvault …` works
//! against Coffer, with `--hsm-name` (the CLI builds `https://{name}{mhsmDns}`) or `--id {url}`. Nothing is sent
//! anywhere: the client secret is not printed either, the login line reads it back with `--client-secret`.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use coffer_client::Credentials;
use serde_json::{Value, json};

#[derive(Args)]
pub struct AzCloudArgs {
    /// Credentials file (admin-credentials.json shape) of the principal to log in as.
    #[arg(long)]
    creds: PathBuf,
    /// The name of the cloud to register.
    #[arg(long, default_value = "coffer")]
    cloud_name: String,
    /// The server's `--resource` when it has one (default: its URL).
    #[arg(long)]
    resource: Option<String>,
    /// Write the cloud configuration to this file (`--cloud-config @FILE`) instead of putting it in the command.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Print only the client secret of the credentials file (the printed `az login` line calls this).
    #[arg(long, conflicts_with_all = ["write", "resource"])]
    client_secret: bool,
}

/// The Azure CLI's view of an instance.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// The `--cloud-config` JSON.
    pub cloud_config: Value,
    /// What `--hsm-name` to pass so that `https://{name}{mhsmDns}` is the instance's URL (`None`: use `--id`).
    pub hsm_name: Option<String>,
}

/// The cloud configuration: the token service's AD FS alias as the authority (MSAL then skips instance
/// discovery), the HSM resource as the login audience, Coffer's Graph subset as Microsoft Graph, and an `mhsmDns`
/// suffix that turns `--hsm-name` into the instance's URL.
pub fn plan(creds: &Credentials, resource: Option<&str>) -> anyhow::Result<Plan> {
    let url = creds.url.trim_end_matches('/');
    let parsed = url::Url::parse(url).with_context(|| format!("the credentials' url {url} is not a URL"))?;
    let host = parsed.host_str().context("the credentials' url has no host")?;
    let port = match parsed.port_or_known_default() {
        Some(443) | None => String::new(),
        Some(p) => format!(":{p}"),
    };
    let mut suffixes = json!({"keyvaultDns": ".vault.invalid"});
    // `https://{name}{suffix}`: the first label is the name, the rest of the host and the port the suffix (for an
    // IPv4 address too: `127` + `.0.0.1:8443`). A host without a dot (`localhost`) is the whole name with no
    // suffix; an IPv6 address cannot be split, so --id it is.
    let hsm_name = if host.starts_with('[') {
        None
    } else if let Some((first, rest)) = host.split_once('.') {
        suffixes["mhsmDns"] = json!(format!(".{rest}{port}"));
        Some(first.to_string())
    } else {
        Some(format!("{host}{port}"))
    };
    let authority = creds.authority.trim_end_matches('/');
    let cloud_config = json!({
        "endpoints": {
            "activeDirectory": format!("{authority}/adfs"),
            "activeDirectoryResourceId": resource.unwrap_or(url).trim_end_matches('/'),
            "resourceManager": format!("{url}/"),
            "microsoftGraphResourceId": format!("{url}/graph/"),
        },
        "suffixes": suffixes,
    });
    Ok(Plan { cloud_config, hsm_name })
}

/// A single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

pub fn run(args: AzCloudArgs) -> anyhow::Result<()> {
    let creds = Credentials::from_file(&args.creds)?;
    let mut out = std::io::stdout().lock();
    if args.client_secret {
        writeln!(out, "{}", creds.client_secret)?;
        return Ok(());
    }
    let plan = plan(&creds, args.resource.as_deref())?;
    let config_arg = match &args.write {
        Some(path) => {
            std::fs::write(path, serde_json::to_string_pretty(&plan.cloud_config)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            quote(&format!("@{}", absolute(path).display()))
        }
        None => quote(&plan.cloud_config.to_string()),
    };
    let me = std::env::current_exe().map_or_else(|_| "coffer".to_string(), |p| p.display().to_string());
    let name = quote(&args.cloud_name);
    let url = creds.url.trim_end_matches('/');
    writeln!(
        out,
        "# The Azure CLI against Coffer at {url}: run these, then `az keyvault …` with"
    )?;
    match &plan.hsm_name {
        Some(n) => writeln!(
            out,
            "# --hsm-name {n} (https://{n}{}) or --id {url}.",
            plan.cloud_config["suffixes"]["mhsmDns"].as_str().unwrap_or("")
        )?,
        None => writeln!(out, "# --id {url}.")?,
    }
    if let Some(ca) = &creds.ca_cert {
        writeln!(
            out,
            "export REQUESTS_CA_BUNDLE={}",
            quote(&absolute(ca).display().to_string())
        )?;
    }
    writeln!(
        out,
        "az cloud register --name {name} --cloud-config {config_arg} --skip-endpoint-discovery && az cloud set --name {name}"
    )?;
    writeln!(
        out,
        "az login --service-principal --username {} --tenant {} --password \"$({} az-cloud --creds {} --client-secret)\" \
         --skip-subscription-discovery",
        quote(&creds.client_id),
        quote(&creds.tenant_id),
        quote(&me),
        quote(&absolute(&args.creds).display().to_string()),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(url: &str) -> Credentials {
        Credentials {
            url: url.into(),
            tenant_id: "t".into(),
            authority: url.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            ca_cert: None,
        }
    }

    #[test]
    fn hsm_name_rebuilds_the_url() {
        for (url, name, suffix) in [
            ("https://127.0.0.1:8443", Some("127"), Some(".0.0.1:8443")),
            ("https://hsm1.localhost:8443", Some("hsm1"), Some(".localhost:8443")),
            ("https://hsm1.mhsm.example", Some("hsm1"), Some(".mhsm.example")),
            ("https://localhost:8443", Some("localhost:8443"), None),
            ("https://[::1]:8443", None, None),
        ] {
            let p = plan(&creds(url), None).unwrap();
            assert_eq!(p.hsm_name.as_deref(), name, "{url}");
            let s = p.cloud_config["suffixes"]["mhsmDns"].as_str();
            assert_eq!(s, suffix, "{url}");
            if let Some(n) = name {
                assert_eq!(format!("https://{n}{}", s.unwrap_or("")), url);
            }
        }
    }

    #[test]
    fn endpoints() {
        let p = plan(&creds("https://127.0.0.1:8443/"), Some("https://mhsm.example/")).unwrap();
        let e = &p.cloud_config["endpoints"];
        assert_eq!(e["activeDirectory"], "https://127.0.0.1:8443/adfs");
        assert_eq!(e["activeDirectoryResourceId"], "https://mhsm.example");
        assert_eq!(e["microsoftGraphResourceId"], "https://127.0.0.1:8443/graph/");
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
