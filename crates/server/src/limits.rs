//! What the control API lets a caller start: how many replays and seeds
//! may run at once, how large a seed may be, and where replays may send
//! (`--allow-target`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::Uri;

/// The caps of `serve`'s flags.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Replays started through the API that may run at once.
    pub max_concurrent_replays: usize,
    /// Seeds started through the API that may run at once.
    pub max_concurrent_seeds: usize,
    /// The most traces one seed started through the API may generate.
    pub max_seed_traces: u64,
    /// Where replays started through the API may send; empty: anywhere.
    pub allowed_targets: Vec<AllowedTarget>,
    /// Exports started through the API that may run at once.
    pub max_concurrent_exports: usize,
    /// Comparisons started through the API that may run at once.
    pub max_concurrent_compares: usize,
}

/// One `--allow-target`: a host (a name or an IP address) with an optional
/// port, or a network of IP addresses. In a config, it is written as the
/// flag takes it (`"collector:4317"`, `"10.0.0.0/8"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum AllowedTarget {
    /// A host name, matched as written (case-insensitive), with any port
    /// or only `port`.
    Name {
        /// The name, in lowercase, without a final dot.
        name: String,
        /// The only port allowed; any when `None`.
        port: Option<u16>,
    },
    /// An IP address, with any port or only `port`.
    Address {
        /// The address.
        address: IpAddr,
        /// The only port allowed; any when `None`.
        port: Option<u16>,
    },
    /// Every IP address of a network, any port.
    Network {
        /// The network's address.
        address: IpAddr,
        /// The length of its prefix, in bits.
        prefix: u8,
    },
}

impl TryFrom<String> for AllowedTarget {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl FromStr for AllowedTarget {
    type Err = String;

    /// `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a CIDR such as `10.0.0.0/8`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| {
            format!("invalid target {text:?}: {why} (write HOST, HOST:PORT, [IPv6]:PORT or a CIDR such as 10.0.0.0/8)")
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.contains("://") {
            return Err(invalid("a URL, where only its host and port are wanted"));
        }
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| invalid("the network is not an IP address"))?;
            let most = if address.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|prefix| *prefix <= most)
                .ok_or_else(|| invalid(&format!("the prefix length must be 0 to {most}")))?;
            return Ok(AllowedTarget::Network { address, prefix });
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(AllowedTarget::Address { address, port: None });
        }
        let port = |text: &str| text.parse::<u16>().ok().filter(|port| *port > 0).ok_or_else(|| invalid("bad port"));
        if let Some(rest) = text.strip_prefix('[') {
            let (address, after) = rest.split_once(']').ok_or_else(|| invalid("no closing ]"))?;
            let address: IpAddr = address.parse().map_err(|_| invalid("not an IPv6 address in [ ]"))?;
            let port = match after {
                "" => None,
                _ => Some(port(after.strip_prefix(':').ok_or_else(|| invalid("expected :PORT after ]"))?)?),
            };
            return Ok(AllowedTarget::Address { address, port });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, text)) => (host, Some(port(text)?)),
            None => (text, None),
        };
        if let Ok(address) = host.parse::<IpAddr>() {
            return Ok(AllowedTarget::Address { address, port });
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.' || byte == b'_');
        if !valid {
            return Err(invalid("not a host name"));
        }
        Ok(AllowedTarget::Name { name, port })
    }
}

impl fmt::Display for AllowedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedTarget::Name { name, port: None } => write!(f, "{name}"),
            AllowedTarget::Name { name, port: Some(port) } => write!(f, "{name}:{port}"),
            AllowedTarget::Address { address, port: None } => write!(f, "{address}"),
            AllowedTarget::Address { address: IpAddr::V6(address), port: Some(port) } => {
                write!(f, "[{address}]:{port}")
            }
            AllowedTarget::Address { address, port: Some(port) } => write!(f, "{address}:{port}"),
            AllowedTarget::Network { address, prefix } => write!(f, "{address}/{prefix}"),
        }
    }
}

impl AllowedTarget {
    /// Whether `host` (a name, or an IP address without brackets) and
    /// `port` are allowed by this entry. A name matches only a name entry:
    /// it is not resolved, so a network allows IP addresses only.
    fn allows(&self, host: &str, port: u16) -> bool {
        let address = host.parse::<IpAddr>().ok();
        match (self, address) {
            (AllowedTarget::Name { name, port: allowed }, None) => {
                host.trim_end_matches('.').eq_ignore_ascii_case(name) && allowed.is_none_or(|allowed| allowed == port)
            }
            (AllowedTarget::Address { address: allowed_address, port: allowed }, Some(address)) => {
                *allowed_address == address && allowed.is_none_or(|allowed| allowed == port)
            }
            (AllowedTarget::Network { address: network, prefix }, Some(address)) => {
                in_network(address, *network, *prefix)
            }
            _ => false,
        }
    }
}

/// Whether `address` is in the network `network/prefix`.
fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// Checks an endpoint URL against `allowed` (anything goes when it is
/// empty); the error says which endpoint and what is allowed.
pub(crate) fn check_target(endpoint: &str, allowed: &[AllowedTarget]) -> Result<(), String> {
    if allowed.is_empty() {
        return Ok(());
    }
    let refused = |why: &str| {
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        format!(
            "the target {endpoint} is not allowed{why}: this serve lets replays send to {} only (--allow-target)",
            list.join(", ")
        )
    };
    let uri: Uri = endpoint.parse().map_err(|_| refused(" (not a URL)"))?;
    let host = uri.host().ok_or_else(|| refused(" (no host)"))?;
    let host = host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(host);
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, _) => 80,
    };
    if allowed.iter().any(|entry| entry.allows(host, port)) { Ok(()) } else { Err(refused("")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Vec<AllowedTarget> {
        entries.iter().map(|entry| entry.parse().unwrap()).collect()
    }

    #[test]
    fn entries_parse_and_print() {
        for (text, printed) in [
            ("collector.internal", "collector.internal"),
            ("Collector.Internal.:4317", "collector.internal:4317"),
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:4318", "127.0.0.1:4318"),
            ("::1", "::1"),
            ("[::1]:4317", "[::1]:4317"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("fd00::/8", "fd00::/8"),
        ] {
            assert_eq!(text.parse::<AllowedTarget>().unwrap().to_string(), printed, "{text}");
        }
        for (text, message) in [
            ("", "it is empty"),
            ("10.0.0.0/33", "the prefix length must be 0 to 32"),
            ("example.com/8", "the network is not an IP address"),
            ("host:0", "bad port"),
            ("host:http", "bad port"),
            ("[::1", "no closing ]"),
            ("a b", "not a host name"),
            ("http://host", "a URL, where only its host and port are wanted"),
        ] {
            let error = text.parse::<AllowedTarget>().unwrap_err();
            assert!(error.contains(message) && error.contains(&format!("{text:?}")), "{text}: {error}");
        }
    }

    #[test]
    fn endpoints_are_checked_by_host_port_and_network() {
        let list = allowed(&["collector.internal", "127.0.0.1:4318", "[::1]:4317", "10.0.0.0/8"]);
        for endpoint in [
            "http://collector.internal:4318",
            "https://COLLECTOR.internal/otlp",
            "http://127.0.0.1:4318",
            "http://[::1]:4317",
            "http://10.1.2.3:9999",
        ] {
            assert_eq!(check_target(endpoint, &list), Ok(()), "{endpoint}");
        }
        for endpoint in [
            "http://127.0.0.1:4317",
            "http://127.0.0.1",
            "http://[::1]:4318",
            "http://11.0.0.1:4318",
            "http://collector.internal.evil.example:4318",
            "http://localhost:4318",
            "not a url",
        ] {
            let error = check_target(endpoint, &list).unwrap_err();
            assert!(error.starts_with(&format!("the target {endpoint} is not allowed")), "{error}");
            assert!(error.ends_with("127.0.0.1:4318, [::1]:4317, 10.0.0.0/8 only (--allow-target)"), "{error}");
        }
        // A default port is the scheme's.
        let list = allowed(&["example.com:443", "plain.example:80"]);
        assert_eq!(check_target("https://example.com/v1", &list), Ok(()));
        assert_eq!(check_target("http://plain.example", &list), Ok(()));
        assert!(check_target("http://example.com", &list).is_err());
        assert_eq!(check_target("http://anything", &[]), Ok(()));
    }
}
