//! `coffer audit verify` (offline: checks the hash chain and MACs of audit files) and `coffer audit query`
//! (asks a running server, as a principal holding `Coffer/audit/read/action`, e.g. a Crypto Auditor).
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use coffer_client::{Client, Credentials};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check audit files for changed, removed, inserted or reordered records. Give the files in order, or the
    /// audit directory. Exit status 1 and the first bad record when the check fails.
    Verify {
        /// Audit files (audit-*.jsonl) or directories holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The instance's data directory: also check every record's MAC (key derived from the domain secret) and
        /// that the files reach the checkpoint of the chain head kept in the database (no newest records
        /// removed). Without it only the hash chain is checked.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// coffer.toml with the instance's [seal] and [database] (default: the file seal and SQLite in the data
        /// directory).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Require the chain to start at its first record (sequence 0): nothing before the first file may be
        /// missing.
        #[arg(long)]
        from_start: bool,
        /// The instance's database (default: the [database] of --config, else SQLite in the data directory).
        #[command(flatten)]
        database: crate::DatabaseArgs,
    },
    /// Query the audit log of a running server (JSON Lines on stdout).
    Query {
        /// Credentials file (admin-credentials.json shape) of a principal allowed to read the audit log.
        #[arg(long)]
        creds: PathBuf,
        /// Earliest time (2026-11-22T08:00:00Z or Unix seconds).
        #[arg(long)]
        from: Option<String>,
        /// Latest time.
        #[arg(long)]
        to: Option<String>,
        /// operationName (KeyCreate, KeyPurge, Authentication, …).
        #[arg(long)]
        operation: Option<String>,
        /// Caller object id or application id.
        #[arg(long)]
        principal: Option<String>,
        /// success, failure, an HTTP status (403) or a resultSignature (Forbidden).
        #[arg(long)]
        result: Option<String>,
        /// Stop after this many records (default: all).
        #[arg(long)]
        limit: Option<usize>,
    },
}

fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(
                coffer_server::audit_sinks::file::list_files(p).with_context(|| format!("listing {}", p.display()))?,
            );
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// Runs a command; returns the process exit code.
pub async fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify {
            paths,
            data_dir,
            config,
            from_start,
            database: db_args,
        } => {
            let (key, checkpoint) = match &data_dir {
                Some(d) => {
                    let (seal, database) = crate::seal_of(config.as_deref())?;
                    let database = db_args.over(database);
                    let (key, cp) = coffer_server::seal::audit_key_and_checkpoint(d, &database, &seal).await?;
                    let cp = cp.map(|value| coffer_core::audit::Checkpoint::decode(&value, &key));
                    (Some(key), cp)
                }
                None => (None, None),
            };
            let mut v = coffer_core::audit::Verifier::new(key);
            if from_start {
                v = v.from_genesis();
            }
            let files = expand(&paths)?;
            let mut out = std::io::stdout().lock();
            if files.is_empty() {
                if let Some(cp) = &checkpoint {
                    let why = cp
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|cp| cp.check(&coffer_core::audit::ChainHead::genesis(), |_| None));
                    writeln!(out, "FAILED checkpoint: {}", why.err().unwrap_or_default())?;
                    return Ok(1);
                }
                anyhow::bail!("no audit files found");
            }
            let want_seq = checkpoint.as_ref().and_then(|c| c.as_ref().ok()).map(|c| c.seq);
            let mut at_checkpoint = None;
            let mut head = coffer_core::audit::ChainHead::genesis();
            for f in &files {
                let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
                let reader = std::io::BufReader::new(file);
                let mut lines = reader.split(b'\n').enumerate().peekable();
                while let Some((i, line)) = lines.next() {
                    let line = line.with_context(|| format!("reading {}", f.display()))?;
                    if line.is_empty() && lines.peek().is_none() {
                        break;
                    }
                    if let Err(reason) = v.check(&line) {
                        writeln!(out, "FAILED {}:{}: {reason}", f.display(), i + 1)?;
                        return Ok(1);
                    }
                    if let Some(h) = coffer_core::audit::ChainHead::after_line(&line) {
                        if Some(h.next_seq - 1) == want_seq {
                            at_checkpoint = Some(h.prev);
                        }
                        head = h;
                    }
                }
            }
            // The newest records must still be there: the chain must reach the checkpoint kept in the database.
            if let Some(cp) = &checkpoint {
                let checked = cp
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|cp| cp.check(&head, |_| at_checkpoint));
                if let Err(why) = checked {
                    writeln!(
                        out,
                        "FAILED checkpoint: {why} (give every file up to the newest, or the audit directory)"
                    )?;
                    return Ok(1);
                }
            }
            let first = v.first_seq().unwrap_or(0);
            writeln!(
                out,
                "OK {} records (sequence {first}..{}) in {} file(s); {}",
                v.checked(),
                (first + v.checked()).saturating_sub(1),
                files.len(),
                match (&checkpoint, v.macs_checked()) {
                    (Some(_), _) => "hash chain and MACs checked, and the checkpoint in the database",
                    (None, true) => "hash chain and MACs checked (no checkpoint stored yet)",
                    (None, false) =>
                        "hash chain checked, MACs NOT checked, nor the checkpoint (give --data-dir to check them)",
                }
            )?;
            if first > 0 && !from_start {
                writeln!(
                    out,
                    "note: the chain starts at sequence {first}; earlier records were not given"
                )?;
            }
            Ok(0)
        }
        AuditCommand::Query {
            creds,
            from,
            to,
            operation,
            principal,
            result,
            limit,
        } => {
            let mut client = Client::new(Credentials::from_file(&creds)?)?;
            let mut qs = url::form_urlencoded::Serializer::new(String::new());
            qs.append_pair("api-version", "7.6");
            for (k, v) in [
                ("from", from),
                ("to", to),
                ("operation", operation),
                ("principal", principal),
                ("result", result),
            ] {
                if let Some(v) = v {
                    qs.append_pair(k, &v);
                }
            }
            qs.append_pair("maxresults", "1000");
            let mut next = Some(format!("/coffer/v1/audit?{}", qs.finish()));
            let mut count = 0usize;
            let mut out = std::io::stdout().lock();
            while let Some(url) = next.take() {
                let r = client.call_ok(reqwest::Method::GET, &url, None).await?;
                for rec in r.body["value"].as_array().into_iter().flatten() {
                    if limit.is_some_and(|l| count >= l) {
                        return Ok(0);
                    }
                    writeln!(out, "{rec}")?;
                    count += 1;
                }
                next = r.body["nextLink"].as_str().map(str::to_string);
            }
            Ok(0)
        }
    }
}
