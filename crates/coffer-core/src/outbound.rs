//! Where the server may connect or write on a caller's behalf (full backup and restore targets): destinations are
//! configured, not chosen by the caller.
//!
//! - **Blob endpoints**: a target URL must fall under one of the configured endpoint prefixes: same scheme, same
//!   host (a leading `*.` in the pattern stands for exactly one DNS label, so `https://*.blob.core.windows.net`
//!   admits every storage account of the public cloud and nothing else), same port (the scheme's default when the
//!   pattern names none; `:*` admits any port), and the pattern's path as a prefix on segment boundaries.
//! - **Addresses**: a blob host may resolve (or be) only to public addresses, unless the address is inside one of
//!   the configured `private_networks`. "Not public" is loopback, unspecified, RFC 1918, RFC 6598 shared,
//!   link-local, multicast, broadcast, `0.0.0.0/8`, IPv6 unique-local and site-local, and the IPv4-mapped forms of
//!   those. The adapter checks this **after** name resolution, on every address the name resolves to, and connects
//!   only to the addresses it checked (no second lookup, so no DNS-rebinding gap); a literal address in the URL is
//!   checked before anything is sent.
//! - **`file://` roots**: a directory target must lie inside one of the configured roots (none by default, so
//!   `file://` is refused unless configured).
//!
//! A refused destination is `BadParameter` naming the rule. Connection failures of allowed destinations are the
//! adapter's business: it answers one generic text ([`UNREACHABLE`]) and logs the detail.
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::Error;
use crate::rbac::Network;

/// The one answer for a target that cannot be reached (refused, reset, timed out, name unknown, or resolving to an
/// address that is not allowed): no port-scan or network-mapping oracle. The detail goes to the server log.
pub const UNREACHABLE: &str = "The backup storage could not be reached.";

/// The default blob endpoints: every storage account of the Azure public cloud, over https.
pub const DEFAULT_BLOB_ENDPOINTS: &[&str] = &["https://*.blob.core.windows.net"];

/// A URL host as the adapter parsed it.
#[derive(Debug, Clone, Copy)]
pub enum Host<'a> {
    /// A DNS name (any case).
    Domain(&'a str),
    /// A literal address.
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A lower-case DNS name.
    Name(String),
    /// `*.suffix`: exactly one label, then the lower-case suffix.
    AnyLabelUnder(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    scheme: String,
    host: HostPattern,
    /// `None`: any port (`:*`).
    port: Option<u16>,
    path: Vec<String>,
}

/// The configured outbound destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    endpoints: Vec<Endpoint>,
    file_roots: Vec<PathBuf>,
    private_networks: Vec<Network>,
}

impl Default for OutboundPolicy {
    /// Blob storage of the Azure public cloud over https, no private addresses, no `file://`.
    fn default() -> Self {
        Self {
            endpoints: DEFAULT_BLOB_ENDPOINTS
                .iter()
                .filter_map(|e| parse_endpoint(e).ok())
                .collect(),
            file_roots: Vec::new(),
            private_networks: Vec::new(),
        }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Parses `scheme://host[:port][/path]` (no user info, query or fragment).
fn parse_endpoint(text: &str) -> Result<Endpoint, Error> {
    let bad = |why: &str| Error::BadParameter(format!("blob endpoint '{text}': {why}"));
    let (scheme, rest) = text.trim().split_once("://").ok_or_else(|| bad("not scheme://host"))?;
    let scheme = scheme.to_ascii_lowercase();
    let port_default = default_port(&scheme).ok_or_else(|| bad("the scheme must be https or http"))?;
    if rest.contains(['?', '#', '@', '\\']) {
        return Err(bad("no user information, query or fragment"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [IPv6]"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some("*") => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad("the port is not a number or *"))?),
        None => Some(port_default),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let host = if let Ok(ip) = host.parse::<IpAddr>() {
        HostPattern::Ip(ip)
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') || !suffix.contains('.') {
            return Err(bad(
                "a wildcard needs a suffix of at least two labels (*.blob.core.windows.net)",
            ));
        }
        HostPattern::AnyLabelUnder(suffix.to_string())
    } else if host.contains('*') {
        return Err(bad("'*' may only be the whole first label"));
    } else {
        HostPattern::Name(host)
    };
    let path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect::<Vec<_>>();
    if path.iter().any(|s| s == "." || s == "..") {
        return Err(bad("no '.' or '..' segments"));
    }
    Ok(Endpoint {
        scheme,
        host,
        port,
        path,
    })
}

/// Whether `ip` is an address a caller must not reach through the server unless configured: anything that is not a
/// public unicast address.
pub fn is_non_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            crate::network::is_private(ip)
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || o[0] == 0
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            crate::network::is_private(ip)
                || v6.is_unspecified()
                || v6.is_multicast()
                // site-local (deprecated) fec0::/10
                || (s[0] & 0xffc0) == 0xfec0
                // IPv4-compatible ::a.b.c.d (deprecated) and other forms embedding IPv4
                || (s[0..6] == [0, 0, 0, 0, 0, 0])
                // NAT64 64:ff9b::/96 can reach any IPv4 address, private ones included
                || (s[0] == 0x64 && s[1] == 0xff9b)
        }
    }
}

impl OutboundPolicy {
    /// A policy from configuration: blob endpoint prefixes, `file://` roots (absolute directories) and the private
    /// networks blob hosts may resolve to (CIDR).
    pub fn new(blob_endpoints: &[String], file_roots: &[PathBuf], private_networks: &[String]) -> Result<Self, Error> {
        let endpoints = blob_endpoints
            .iter()
            .map(|e| parse_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        for root in file_roots {
            if !root.is_absolute() || root.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(Error::BadParameter(format!(
                    "file root '{}' must be an absolute path without '..'",
                    root.display()
                )));
            }
        }
        let private_networks = private_networks
            .iter()
            .map(|n| Network::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            endpoints,
            file_roots: file_roots.to_vec(),
            private_networks,
        })
    }

    /// The configured `file://` roots.
    pub fn file_roots(&self) -> &[PathBuf] {
        &self.file_roots
    }

    /// Whether the server may connect to `ip` for a blob target.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        !is_non_public(ip) || self.private_networks.iter().any(|n| n.contains(ip))
    }

    /// Checks a blob target (`scheme`, `host`, `port`, and the path segments of the container URL) against the
    /// endpoint list, and a literal address against the address rule.
    pub fn check_blob(&self, scheme: &str, host: Host<'_>, port: Option<u16>, path: &[&str]) -> Result<(), Error> {
        let scheme = scheme.to_ascii_lowercase();
        let port = port.or_else(|| default_port(&scheme));
        let name = match host {
            Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
            Host::Ip(_) => None,
        };
        let host_matches = |p: &HostPattern| match (p, host, &name) {
            (HostPattern::Ip(a), Host::Ip(b), _) => *a == b,
            (HostPattern::Name(a), _, Some(n)) => a == n,
            (HostPattern::AnyLabelUnder(suffix), _, Some(n)) => n
                .strip_suffix(suffix.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
            _ => false,
        };
        let allowed = self.endpoints.iter().any(|e| {
            e.scheme == scheme
                && (e.port.is_none() || e.port == port)
                && host_matches(&e.host)
                && e.path.len() <= path.len()
                && e.path.iter().zip(path).all(|(a, b)| a == b)
        });
        if !allowed {
            return Err(Error::BadParameter(
                "The storage URL is not an allowed backup destination: it must be under one of the blob endpoints \
                 configured for this HSM ([backup] blob_endpoints)."
                    .into(),
            ));
        }
        if let Host::Ip(ip) = host
            && !self.address_allowed(ip)
        {
            return Err(Error::BadParameter(
                "The storage URL names a private, loopback or link-local address, which is not an allowed backup \
                 destination ([backup] private_networks)."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks a `file://` directory target: it must be inside a configured root (compared component by component;
    /// the adapter checks again on the resolved path, so symbolic links cannot lead out).
    pub fn check_file(&self, dir: &Path) -> Result<(), Error> {
        if dir.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(Error::BadParameter(
                "The file:// storage URL must not contain '..'.".into(),
            ));
        }
        if self.file_roots.iter().any(|root| dir.starts_with(root)) {
            return Ok(());
        }
        Err(Error::BadParameter(
            "The file:// storage URL is not an allowed backup destination: it must be inside one of the directories \
             configured for this HSM ([backup] file_roots; none by default)."
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(endpoints: &[&str], roots: &[&str], private: &[&str]) -> OutboundPolicy {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        OutboundPolicy::new(
            &s(endpoints),
            &roots.iter().map(PathBuf::from).collect::<Vec<_>>(),
            &s(private),
        )
        .unwrap()
    }

    #[test]
    fn default_admits_azure_storage_accounts_only() {
        let p = OutboundPolicy::default();
        let ok = |h: &str| p.check_blob("https", Host::Domain(h), None, &["c"]).is_ok();
        assert!(ok("acct.blob.core.windows.net"));
        assert!(ok("ACCT.blob.core.windows.net."));
        assert!(!ok("blob.core.windows.net"), "the wildcard needs a label");
        assert!(!ok("a.b.blob.core.windows.net"), "exactly one label");
        assert!(!ok("acct.blob.core.windows.net.evil.example"));
        assert!(!ok("evilblob.core.windows.net"));
        assert!(
            p.check_blob("http", Host::Domain("acct.blob.core.windows.net"), None, &[])
                .is_err()
        );
        assert!(
            p.check_blob("https", Host::Domain("acct.blob.core.windows.net"), Some(8443), &[])
                .is_err()
        );
        assert!(p.check_blob("https", Host::Ip(ip("20.60.1.1")), None, &[]).is_err());
        assert!(p.check_file(Path::new("/tmp/x")).is_err(), "no file roots by default");
    }

    #[test]
    fn ports_paths_and_literal_addresses() {
        let p = policy(
            &["http://127.0.0.1:10000/devstoreaccount1", "https://[2001:db8::1]/a/b"],
            &[],
            &["127.0.0.0/8"],
        );
        let h = Host::Ip(ip("127.0.0.1"));
        assert!(p.check_blob("http", h, Some(10000), &["devstoreaccount1", "c"]).is_ok());
        assert!(p.check_blob("http", h, Some(10000), &["devstoreaccount1"]).is_ok());
        assert!(
            p.check_blob("http", h, Some(10000), &["devstoreaccount10", "c"])
                .is_err()
        );
        assert!(p.check_blob("http", h, Some(10001), &["devstoreaccount1"]).is_err());
        assert!(p.check_blob("http", h, None, &["devstoreaccount1"]).is_err());
        let v6 = Host::Ip(ip("2001:db8::1"));
        assert!(p.check_blob("https", v6, None, &["a", "b", "c"]).is_ok());
        assert!(p.check_blob("https", v6, None, &["a"]).is_err());
        // allow-listed by endpoint but not by address
        // `:*`: any port of that host
        let any = policy(&["http://127.0.0.1:*/a"], &[], &["127.0.0.1"]);
        assert!(any.check_blob("http", h, Some(1), &["a"]).is_ok());
        assert!(any.check_blob("http", h, None, &["a", "b"]).is_ok());
        assert!(any.check_blob("https", h, Some(1), &["a"]).is_err());
        let q = policy(&["http://127.0.0.1:10000"], &[], &[]);
        let e = q.check_blob("http", h, Some(10000), &[]).unwrap_err();
        assert!(e.to_string().contains("private"), "{e}");
    }

    #[test]
    fn non_public_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_non_public(ip(a)), "{a}");
        }
        for a in ["20.60.1.1", "8.8.8.8", "2001:4860::8888", "::ffff:8.8.8.8"] {
            assert!(!is_non_public(ip(a)), "{a}");
        }
        let p = policy(&[], &[], &["127.0.0.0/8"]);
        assert!(p.address_allowed(ip("127.0.0.5")) && p.address_allowed(ip("8.8.8.8")));
        assert!(!p.address_allowed(ip("::1")) && !p.address_allowed(ip("10.0.0.1")));
    }

    #[test]
    fn file_roots() {
        let p = policy(&[], &["/var/backups/coffer"], &[]);
        assert!(p.check_file(Path::new("/var/backups/coffer")).is_ok());
        assert!(p.check_file(Path::new("/var/backups/coffer/c/d")).is_ok());
        assert!(p.check_file(Path::new("/var/backups/coffer2")).is_err());
        assert!(p.check_file(Path::new("/var/backups/coffer/../x")).is_err());
        assert!(p.check_file(Path::new("/etc")).is_err());
    }

    #[test]
    fn bad_configuration_is_refused() {
        for e in [
            "acct.blob.core.windows.net",
            "ftp://x.example",
            "https://*.com",
            "https://a*.example.com",
            "https://*",
            "https://x.example:99999",
            "https://user@x.example",
            "https://x.example/?sig=1",
            "https://x.example/../y",
        ] {
            assert!(OutboundPolicy::new(&[e.to_string()], &[], &[]).is_err(), "{e}");
        }
        assert!(OutboundPolicy::new(&[], &[PathBuf::from("relative")], &[]).is_err());
        assert!(OutboundPolicy::new(&[], &[], &["10.0.0.0/33".into()]).is_err());
    }
}
