//! Network ACLs (the Managed HSM `networkAcls` and `publicNetworkAccess` model): which client addresses may talk
//! to the instance at all. Checked by the dispatcher for every request (token service included) before anything
//! else; a refused client gets 403 `ForbiddenByFirewall` and an audit record.
//!
//! * `defaultAction` `Allow` admits everyone the rules do not refuse; `Deny` admits only `ipRules` ranges.
//! * `publicNetworkAccess` `Disabled` admits only loopback and private ranges (RFC 1918, RFC 4193 unique local,
//!   link-local), whatever the rules say.
//! * `trustedProxies`: a request whose peer is a trusted proxy is judged by the client address its
//!   `X-Forwarded-For` names (the right-most address that is not itself a trusted proxy); anybody else's
//!   `X-Forwarded-For` is ignored.
//!
//! The ACLs live in the store (`meta` entry `network_acls`) once set through `/coffer/v1/network-acls`; until then
//! the `[network]` section of coffer.toml applies. Changes take effect for the next request.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::rbac::{DataAction, Network, Scope};
use crate::{Error, Hsm, Principal};

pub const META_KEY: &str = "network_acls";

/// Network ACLs in their wire/storage form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkAclsDoc {
    /// `Allow` or `Deny`.
    pub default_action: String,
    /// Allowed ranges: `[{"value": "10.0.0.0/8"}]`.
    #[serde(default)]
    pub ip_rules: Vec<IpRule>,
    /// `Enabled` or `Disabled`.
    #[serde(default = "enabled")]
    pub public_network_access: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Always `None` (Managed HSM's `bypass`; Coffer has no trusted Azure services).
    #[serde(default = "none")]
    pub bypass: String,
}

fn enabled() -> String {
    "Enabled".into()
}

fn none() -> String {
    "None".into()
}

/// One allowed range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRule {
    pub value: String,
}

impl Default for NetworkAclsDoc {
    fn default() -> Self {
        Self {
            default_action: "Allow".into(),
            ip_rules: Vec::new(),
            public_network_access: enabled(),
            trusted_proxies: Vec::new(),
            bypass: none(),
        }
    }
}

/// Parsed, ready-to-check ACLs.
#[derive(Debug, Clone)]
pub struct NetworkAcls {
    doc: NetworkAclsDoc,
    deny_by_default: bool,
    public_disabled: bool,
    ip_rules: Vec<Network>,
    trusted_proxies: Vec<Network>,
}

impl NetworkAcls {
    /// Validates and parses.
    pub fn parse(doc: NetworkAclsDoc) -> Result<Self, Error> {
        let deny_by_default = match doc.default_action.as_str() {
            "Allow" => false,
            "Deny" => true,
            other => {
                return Err(Error::BadParameter(format!(
                    "defaultAction must be Allow or Deny, not '{other}'."
                )));
            }
        };
        let public_disabled = match doc.public_network_access.as_str() {
            "Enabled" => false,
            "Disabled" => true,
            other => {
                return Err(Error::BadParameter(format!(
                    "publicNetworkAccess must be Enabled or Disabled, not '{other}'."
                )));
            }
        };
        if doc.bypass != "None" {
            return Err(Error::BadParameter(
                "bypass must be None: Coffer has no trusted Azure services.".into(),
            ));
        }
        if doc.ip_rules.len() > 1000 || doc.trusted_proxies.len() > 100 {
            return Err(Error::BadParameter(
                "Too many ipRules (1000) or trustedProxies (100).".into(),
            ));
        }
        let ip_rules = doc
            .ip_rules
            .iter()
            .map(|r| Network::parse(&r.value))
            .collect::<Result<Vec<_>, _>>()?;
        let trusted_proxies = doc
            .trusted_proxies
            .iter()
            .map(|r| Network::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            doc,
            deny_by_default,
            public_disabled,
            ip_rules,
            trusted_proxies,
        })
    }

    /// The wire form.
    pub fn doc(&self) -> &NetworkAclsDoc {
        &self.doc
    }

    /// Whether ACLs restrict anything (for the posture report).
    pub fn restricts(&self) -> bool {
        self.deny_by_default || self.public_disabled
    }

    /// Whether public network access is disabled.
    pub fn public_disabled(&self) -> bool {
        self.public_disabled
    }

    /// Whether the default action is Deny.
    pub fn deny_by_default(&self) -> bool {
        self.deny_by_default
    }

    /// The client address of a request from `peer` carrying the `X-Forwarded-For` header lines `forwarded_for`,
    /// in the order they arrived. The lines form one list (as RFC 9110 combines repeated fields): a proxy that
    /// adds a line of its own instead of extending the client's counts the same as one that extends it. Walking
    /// from the right, trusted proxies are skipped and the first other hop is the client. A hop that does not parse
    /// before the client is found makes the client unknown: the unspecified address (`0.0.0.0`), which no rule,
    /// private range or principal network admits, never the trusted proxy's own address.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.iter().rev().flat_map(|line| line.rsplit(',')) {
            let Some(ip) = parse_hop(hop) else {
                // Garbage where the client should be: fail closed (a proxy's private address would pass rules meant
                // for the proxy, and skip the public-access switch).
                return IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
            };
            client = ip;
            if !trusted(ip) {
                break;
            }
        }
        client
    }

    /// Whether `ip` is a trusted reverse proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }

    /// Whether `client` may talk to the instance.
    pub fn allows(&self, client: IpAddr) -> bool {
        if self.public_disabled && !is_private(client) {
            return false;
        }
        if self.ip_rules.iter().any(|n| n.contains(client)) {
            return true;
        }
        !self.deny_by_default
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    let h = hop.trim();
    if let Ok(ip) = h.parse() {
        return Some(ip);
    }
    // `[v6]:port` or `v4:port`
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    h.rsplit_once(':').and_then(|(a, _)| a.parse().ok())
}

/// Loopback, private (RFC 1918), shared (RFC 6598), link-local, and IPv6 unique-local addresses.
pub fn is_private(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

impl Hsm {
    /// The ACLs in force.
    pub fn network_acls(&self) -> std::sync::Arc<NetworkAcls> {
        std::sync::Arc::clone(&self.view.view().network)
    }

    /// Loads stored ACLs, or takes `initial` (from coffer.toml) when none are stored. Called once at start.
    pub async fn init_network_acls(&self, initial: NetworkAclsDoc) -> Result<&'static str, Error> {
        let (doc, source) = match self.store.meta(META_KEY).await? {
            Some(json) => (
                serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("stored network ACLs: {e}")))?,
                "stored (set through /coffer/v1/network-acls)",
            ),
            None => (initial, "coffer.toml"),
        };
        let acls = std::sync::Arc::new(NetworkAcls::parse(doc)?);
        self.view.publish_with(|v| v.network = acls).await;
        Ok(source)
    }

    /// `GET /coffer/v1/network-acls`.
    pub async fn get_network_acls(&self, caller: &Principal) -> Result<NetworkAclsDoc, Error> {
        self.authorize(caller, DataAction::NetworkRead, &Scope::Root).await?;
        Ok(self.network_acls().doc().clone())
    }

    /// `PUT /coffer/v1/network-acls`: replaces the ACLs (stored, in force for the next request). Refuses ACLs that
    /// would shut out the caller's own address unless `force`.
    pub async fn set_network_acls(
        &self,
        caller: &Principal,
        doc: NetworkAclsDoc,
        force: bool,
    ) -> Result<NetworkAclsDoc, Error> {
        self.authorize(caller, DataAction::NetworkWrite, &Scope::Root).await?;
        let acls = NetworkAcls::parse(doc)?;
        if !force
            && let Some(ip) = caller.client_ip
            && !acls.allows(ip)
        {
            return Err(Error::BadParameter(format!(
                "These network ACLs would refuse your own address {ip}; add it to ipRules, or repeat with force=true."
            )));
        }
        let json = serde_json::to_string(acls.doc()).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.store.put_meta(META_KEY, &json, self.clock.now()).await?;
        // Storing them published them (`state::publishing`).
        let doc = acls.doc().clone();
        tracing::warn!(
            default_action = %doc.default_action,
            public_network_access = %doc.public_network_access,
            ip_rules = doc.ip_rules.len(),
            "network ACLs changed"
        );
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acls(default: &str, rules: &[&str], public: &str, proxies: &[&str]) -> NetworkAcls {
        NetworkAcls::parse(NetworkAclsDoc {
            default_action: default.into(),
            ip_rules: rules.iter().map(|r| IpRule { value: (*r).into() }).collect(),
            public_network_access: public.into(),
            trusted_proxies: proxies.iter().map(|p| (*p).to_string()).collect(),
            bypass: "None".into(),
        })
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_default_action_and_public_access() {
        let a = acls("Deny", &["127.0.0.2", "2001:db8::/32"], "Enabled", &[]);
        assert!(a.allows(ip("127.0.0.2")));
        assert!(!a.allows(ip("127.0.0.3")));
        assert!(a.allows(ip("2001:db8::1")));
        assert!(a.allows(ip("::ffff:127.0.0.2")), "IPv4-mapped counts as IPv4");
        let open = acls("Allow", &[], "Enabled", &[]);
        assert!(open.allows(ip("8.8.8.8")));
        let private = acls("Allow", &[], "Disabled", &[]);
        assert!(private.allows(ip("10.1.2.3")) && private.allows(ip("::1")) && private.allows(ip("fd00::1")));
        assert!(!private.allows(ip("8.8.8.8")) && !private.allows(ip("2001:db8::1")));
        // Public access disabled wins over an ip rule naming a public address.
        assert!(!acls("Allow", &["8.8.8.8"], "Disabled", &[]).allows(ip("8.8.8.8")));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let a = acls("Deny", &["203.0.113.7"], "Enabled", &["127.0.0.5", "10.0.0.0/8"]);
        assert_eq!(a.client_address(ip("127.0.0.9"), &["203.0.113.7"]), ip("127.0.0.9"));
        assert_eq!(a.client_address(ip("127.0.0.5"), &["203.0.113.7"]), ip("203.0.113.7"));
        // Right-most untrusted hop; a client-supplied left part is not believed.
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["198.51.100.1, 203.0.113.7, 10.1.1.1"]),
            ip("203.0.113.7")
        );
        assert_eq!(a.client_address(ip("127.0.0.5"), &[]), ip("127.0.0.5"));
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["[2001:db8::5]:443"]),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn forwarded_for_lines_are_one_list_in_order() {
        let a = acls("Deny", &[], "Enabled", &["127.0.0.5", "10.0.0.0/8"]);
        // A proxy appending a line of its own: its line is the right-most.
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["192.168.1.1", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Trusted hops are skipped across lines.
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["203.0.113.9", "198.51.100.1, 10.1.1.1", "10.2.2.2"]),
            ip("198.51.100.1")
        );
        // Every hop trusted: the left-most one.
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["10.3.3.3", "10.2.2.2"]),
            ip("10.3.3.3")
        );
        // Garbage where the client should be makes it unknown (0.0.0.0), never a trusted proxy's own address.
        assert_eq!(a.client_address(ip("127.0.0.5"), &["203.0.113.9", ""]), ip("0.0.0.0"));
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["203.0.113.9", "junk, 10.1.1.1"]),
            ip("0.0.0.0")
        );
        assert_eq!(a.client_address(ip("127.0.0.5"), &["\u{fffd}"]), ip("0.0.0.0"));
        // A hop a proxy appended after the client's garbage is the client.
        assert_eq!(
            a.client_address(ip("127.0.0.5"), &["\u{fffd}, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert!(
            !a.allows(ip("0.0.0.0")),
            "an unknown client matches no rule: the default action (Deny) applies"
        );
    }

    #[test]
    fn bad_documents_are_refused() {
        for doc in [
            r#"{"defaultAction":"Maybe"}"#,
            r#"{"defaultAction":"Deny","ipRules":[{"value":"10.0.0.0/33"}]}"#,
            r#"{"defaultAction":"Deny","publicNetworkAccess":"Sometimes"}"#,
            r#"{"defaultAction":"Deny","bypass":"AzureServices"}"#,
        ] {
            let d: NetworkAclsDoc = serde_json::from_str(doc).unwrap();
            assert!(NetworkAcls::parse(d).is_err(), "{doc}");
        }
        assert!(serde_json::from_str::<NetworkAclsDoc>(r#"{"defaultAction":"Deny","extra":1}"#).is_err());
    }
}
