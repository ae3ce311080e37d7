//! `coffer backup start|restore`: full backup of the instance into a storage container (an Azure Blob container
//! with a SAS token, or a `file://` directory), and full or selective (`--key`) restore from a backup folder —
//! `az keyvault backup start` and `az keyvault restore start`. Both wait for the job and print its final status.
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::remote::{Api, ConnArgs, print_json, seg};

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: BackupCommand,
}

#[derive(Args)]
struct StorageArgs {
    /// The container: https://ACCOUNT.blob.core.windows.net/CONTAINER, or file:///DIRECTORY.
    #[arg(long, visible_alias = "storage-resource-uri")]
    storage_url: String,
    /// SAS token of the blob container.
    #[arg(long, visible_alias = "storage-container-SAS-token")]
    sas_token: Option<String>,
    /// How long to wait for the job, in seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Back up the whole instance (keys, versions, deleted keys, role assignments and definitions, settings) into
    /// a new folder of the container; prints the job status with its folderUrl.
    Start {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Restore the whole instance, or one key (--key), from a backup folder.
    Restore {
        #[command(flatten)]
        storage: StorageArgs,
        /// The backup folder: its name (mhsm-…) or the folderUrl that backup start printed.
        #[arg(long, visible_alias = "folder-to-restore")]
        folder: String,
        /// Restore only this key (selective restore).
        #[arg(long, visible_alias = "key-name")]
        key: Option<String>,
    },
}

fn sas_parameters(s: &StorageArgs) -> Value {
    json!({
        "storageResourceUri": s.storage_url,
        "token": s.sas_token.as_deref().filter(|t| !t.is_empty()),
    })
}

/// The folder name within the container, given the name or the full folder URL.
fn folder_name(storage_url: &str, folder: &str) -> String {
    if !folder.contains("://") {
        return folder.trim_matches('/').to_string();
    }
    let url = folder.split('?').next().unwrap_or(folder);
    let container = storage_url.split('?').next().unwrap_or(storage_url);
    let base = format!("{}/", container.trim_end_matches('/'));
    match url.strip_prefix(&base) {
        Some(rest) => rest.trim_matches('/').to_string(),
        None => url.trim_end_matches('/').rsplit('/').next().unwrap_or(url).to_string(),
    }
}

/// Starts a job (202 + `Azure-AsyncOperation`) and polls its status URL until it ends; a failed job is an error
/// with the job's error code and message.
async fn run_job(api: &mut Api, method: Method, path: &str, body: &Value, timeout: u64) -> anyhow::Result<Value> {
    let url = api.path(path, &[]);
    let started = api.send_raw(method, &url, Some(body)).await?;
    let status_url = started
        .headers
        .get("azure-asyncoperation")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .context("the service did not return an Azure-AsyncOperation URL")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut status = started.body;
    loop {
        match status["status"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "succeeded" | "success" => return Ok(status),
            "failed" | "canceled" | "cancelled" => {
                let err = &status["error"];
                return Err(coffer_client::ApiError {
                    method: "GET".into(),
                    path: status_url,
                    // Not an HTTP error: the job ended badly.
                    status: 0,
                    code: err["code"].as_str().unwrap_or("JobFailed").to_string(),
                    message: err["message"]
                        .as_str()
                        .map_or_else(|| format!("the job ended {}", status["status"]), str::to_string),
                }
                .into());
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "job {} still {} after {timeout} s (status URL: {status_url})",
                status["jobId"],
                status["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        status = api.send_raw(Method::GET, &status_url, None).await?.body;
    }
}

/// Runs a command.
pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let mut api = Api::connect(&args.conn)?;
    let out = match args.cmd {
        BackupCommand::Start { storage } => {
            let body = sas_parameters(&storage);
            let mut done = run_job(&mut api, Method::POST, "/backup", &body, storage.timeout).await?;
            if let Some(folder) = done.get("azureStorageBlobContainerUri").cloned() {
                done["folderUrl"] = folder;
            }
            done
        }
        BackupCommand::Restore { storage, folder, key } => {
            let folder = folder_name(&storage.storage_url, &folder);
            let (path, body) = match &key {
                Some(k) => (
                    format!("/keys/{}/restore", seg(k)),
                    json!({"sasTokenParameters": sas_parameters(&storage), "folder": folder}),
                ),
                None => (
                    "/restore".to_string(),
                    json!({"sasTokenParameters": sas_parameters(&storage), "folderToRestore": folder}),
                ),
            };
            run_job(&mut api, Method::PUT, &path, &body, storage.timeout).await?
        }
    };
    print_json(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_from_names_or_urls() {
        let c = "file:///var/backups";
        assert_eq!(folder_name(c, "mhsm-coffer-1"), "mhsm-coffer-1");
        assert_eq!(folder_name(c, "file:///var/backups/mhsm-coffer-1"), "mhsm-coffer-1");
        assert_eq!(
            folder_name("file:///var/backups/", "file:///var/backups/mhsm-x/"),
            "mhsm-x"
        );
        assert_eq!(
            folder_name(
                "https://a.blob.core.windows.net/c",
                "https://a.blob.core.windows.net/c/mhsm-y?sv=1"
            ),
            "mhsm-y"
        );
    }

    #[test]
    fn empty_sas_tokens_are_sent_as_null() {
        let s = StorageArgs {
            storage_url: "file:///x".into(),
            sas_token: Some(String::new()),
            timeout: 1,
        };
        assert_eq!(
            sas_parameters(&s),
            json!({"storageResourceUri": "file:///x", "token": null})
        );
    }
}
