//! `coffer posture`: the security posture report of a running instance, as a table (or JSON).
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use coffer_client::{Client, Credentials};

#[derive(Args)]
pub struct PostureArgs {
    /// Credentials file (admin-credentials.json shape) of a principal allowed to read the report
    /// (Administrator or Crypto Auditor).
    #[arg(long)]
    creds: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the report; the exit code is 0 when every check passes, 1 otherwise.
pub async fn run(args: PostureArgs) -> anyhow::Result<i32> {
    let mut client = Client::new(Credentials::from_file(&args.creds)?)?;
    let r = client
        .call_ok(reqwest::Method::GET, "/coffer/v1/posture?api-version=7.6", None)
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r.body)?)?;
    } else {
        for c in r.body["checks"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "{:4}  {:6}  {:30}  {}",
                c["status"].as_str().unwrap_or(""),
                c["severity"].as_str().unwrap_or(""),
                c["id"].as_str().unwrap_or(""),
                c["title"].as_str().unwrap_or("")
            )?;
            if c["status"] != "Pass" {
                writeln!(out, "      evidence: {}", c["evidence"])?;
                writeln!(out, "      remedy:   {}", c["remedy"].as_str().unwrap_or(""))?;
            }
        }
        writeln!(
            out,
            "{} passed, {} failed",
            r.body["passed"].as_u64().unwrap_or(0),
            r.body["failed"].as_u64().unwrap_or(0)
        )?;
    }
    Ok(i32::from(r.body["failed"].as_u64().unwrap_or(1) > 0))
}
