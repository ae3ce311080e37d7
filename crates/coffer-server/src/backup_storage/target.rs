//! From a caller's location to the one place a backup file lives: URL and path validation, the configured
//! destinations (`coffer_core::outbound`), and the SAS token kept out of everything but the request itself.
use std::path::PathBuf;

use coffer_core::Error;
use coffer_core::backup_storage::BackupLocation;
use coffer_core::outbound::{Host, OutboundPolicy};
use url::Url;

use super::bad;

/// Checks one path segment of a folder or file name: no traversal, nothing a file system or URL would
/// reinterpret.
fn check_segment(segment: &str, what: &str) -> Result<(), Error> {
    if segment.is_empty() {
        return Err(bad(format!("the backup {what} has an empty path segment")));
    }
    if segment == "." || segment == ".." {
        return Err(bad(format!("the backup {what} must not contain '.' or '..' segments")));
    }
    if segment.contains('\\') || segment.chars().any(char::is_control) {
        return Err(bad(format!(
            "the backup {what} must not contain backslashes or control characters"
        )));
    }
    Ok(())
}

/// The path segments of `folder` followed by `name`, validated.
pub(super) fn segments<'a>(folder: &'a str, name: &'a str) -> Result<Vec<&'a str>, Error> {
    if folder.starts_with('/') {
        return Err(bad("the backup folder must be a relative path"));
    }
    let mut out = Vec::new();
    // A trailing '/' (as in `mhsm-x-2025/`) is harmless; an empty folder means the container itself.
    let folder = folder.strip_suffix('/').unwrap_or(folder);
    if !folder.is_empty() {
        for s in folder.split('/') {
            check_segment(s, "folder")?;
            out.push(s);
        }
    }
    if name.contains('/') {
        return Err(bad("the backup file name must be a single path segment"));
    }
    check_segment(name, "file name")?;
    out.push(name);
    Ok(out)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// Where a file lives.
pub(super) enum Target {
    /// The file, and the configured roots it must stay inside once symbolic links are resolved.
    File { path: PathBuf, roots: Vec<PathBuf> },
    /// The blob URL with the SAS token as its query, and the same URL without the query (for messages).
    Blob { url: Url, place: String },
}

fn parse_container(uri: &str) -> Result<Url, Error> {
    // (the parser's message quotes no input, so a SAS token in the query cannot end up in it)
    Url::parse(uri.trim()).map_err(|e| bad(format!("the storage URL is not a valid URL: {e}")))
}

/// `BackupStorage::prepare`: the location with a SAS token in the URL's query moved out of the URL (an explicit
/// token wins; the query is dropped either way), checked against the policy.
pub(super) fn prepare(policy: &OutboundPolicy, location: BackupLocation) -> Result<BackupLocation, Error> {
    let mut url = parse_container(&location.container_uri)?;
    let query = url.query().filter(|q| !q.is_empty()).map(str::to_string);
    url.set_query(None);
    url.set_fragment(None);
    let explicit = location
        .sas_token
        .map(|t| t.trim().trim_start_matches('?').to_string())
        .filter(|t| !t.is_empty());
    let prepared = BackupLocation {
        container_uri: url.to_string(),
        sas_token: explicit.or(query),
        folder: location.folder,
    };
    // Everything but the file name is checked now, before a job exists.
    target(policy, &prepared, "manifest.json")?;
    Ok(prepared)
}

/// The place of file `name` of `location`, if the policy allows it.
pub(super) fn target(policy: &OutboundPolicy, location: &BackupLocation, name: &str) -> Result<Target, Error> {
    let container = parse_container(&location.container_uri)?;
    let segs = segments(&location.folder, name)?;
    match container.scheme() {
        "file" => {
            if container.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                return Err(bad("a file:// storage URL must name a local directory (file:///path)"));
            }
            let dir = container
                .to_file_path()
                .map_err(|()| bad("the file:// storage URL is not an absolute local path"))?;
            for c in dir.components() {
                if matches!(c, std::path::Component::ParentDir) {
                    return Err(bad("the file:// storage URL must not contain '..'"));
                }
            }
            let mut path = dir;
            for s in segs {
                path.push(s);
            }
            policy.check_file(&path)?;
            Ok(Target::File {
                path,
                roots: policy.file_roots().to_vec(),
            })
        }
        "https" | "http" => {
            if container.scheme() == "http" && !is_loopback(&container) {
                return Err(bad(
                    "plain http is refused for backup storage (the SAS token would travel in clear): use https",
                ));
            }
            if container.cannot_be_a_base() || container.host().is_none() {
                return Err(bad(
                    "the storage URL must be a container URL (https://account.blob.core.windows.net/container)",
                ));
            }
            if !container.username().is_empty() || container.password().is_some() {
                return Err(bad("the storage URL must not carry user information"));
            }
            let host = match container.host() {
                Some(url::Host::Domain(d)) => Host::Domain(d),
                Some(url::Host::Ipv4(ip)) => Host::Ip(ip.into()),
                Some(url::Host::Ipv6(ip)) => Host::Ip(ip.into()),
                None => return Err(bad("the storage URL has no host")),
            };
            // The whole path up to the file: the container's path, then the folder.
            let mut path: Vec<&str> = container
                .path_segments()
                .map(|p| p.filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            path.extend(&segs[..segs.len().saturating_sub(1)]);
            policy.check_blob(container.scheme(), host, container.port(), &path)?;
            // The SAS token: the explicit one, else a query string left on the container URL.
            let sas = match (&location.sas_token, container.query()) {
                (Some(t), _) if !t.trim().is_empty() => Some(t.trim().trim_start_matches('?').to_string()),
                (_, Some(q)) if !q.is_empty() => Some(q.to_string()),
                _ => None,
            };
            let mut url = container;
            url.set_query(None);
            url.set_fragment(None);
            {
                let mut path = url
                    .path_segments_mut()
                    .map_err(|()| bad("the storage URL cannot hold a path"))?;
                path.pop_if_empty();
                for s in segs {
                    path.push(s);
                }
            }
            let place = url.to_string();
            url.set_query(sas.as_deref());
            Ok(Target::Blob { url, place })
        }
        other => Err(bad(format!(
            "unsupported storage URL scheme '{other}': use an https:// blob container URL or a file:// directory"
        ))),
    }
}
