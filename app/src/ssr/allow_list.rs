//! Which ZooKeeper addresses operators may register (optional; from config).
//!
//! A console that connects wherever it is told is an SSRF tool (elasticjob#2541). An empty
//! list allows every validated address; otherwise every server of a connect string must
//! match one pattern.

use std::net::Ipv4Addr;

use capstan_registry::{ConnectString, Endpoint, Host};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Suffix(String),
    Cidr(Ipv4Addr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    host: HostPattern,
    port: Option<u16>,
}

/// Patterns: `zk1.example.com`, `*.zk.example.com`, `10.0.0.0/8`, each optionally with
/// `:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Pattern>);

impl AllowList {
    /// Parses a comma-separated list.
    ///
    /// # Errors
    /// A message naming the first malformed pattern.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (host, port) = match raw.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("bad port in allow-list entry {raw:?}"))?,
                    ),
                ),
                None => (raw, None),
            };
            let host = if let Some(suffix) = host.strip_prefix("*.") {
                HostPattern::Suffix(format!(".{}", suffix.to_ascii_lowercase()))
            } else if let Some((ip, bits)) = host.split_once('/') {
                let ip: Ipv4Addr = ip
                    .parse()
                    .map_err(|_| format!("bad network in allow-list entry {raw:?}"))?;
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b <= 32)
                    .ok_or_else(|| format!("bad prefix length in allow-list entry {raw:?}"))?;
                HostPattern::Cidr(ip, bits)
            } else if host.is_empty() {
                return Err(format!("empty host in allow-list entry {raw:?}"));
            } else {
                HostPattern::Exact(host.to_ascii_lowercase())
            };
            patterns.push(Pattern { host, port });
        }
        Ok(AllowList(patterns))
    }

    /// Whether no restriction applies.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn allows(&self, e: &Endpoint) -> bool {
        self.0.iter().any(|p| {
            p.port.is_none_or(|port| port == e.port)
                && match (&p.host, &e.host) {
                    (HostPattern::Exact(h), host) => *h == host.to_string(),
                    (HostPattern::Suffix(s), Host::Name(n)) => n.ends_with(s.as_str()),
                    (HostPattern::Cidr(net, bits), Host::V4(ip)) => {
                        let mask = if *bits == 0 {
                            0
                        } else {
                            u32::MAX << (32 - bits)
                        };
                        u32::from(*ip) & mask == u32::from(*net) & mask
                    }
                    _ => false,
                }
        })
    }

    /// The first server of `cs` that no pattern allows.
    pub fn first_refused<'a>(&self, cs: &'a ConnectString) -> Option<&'a Endpoint> {
        if self.is_empty() {
            return None;
        }
        cs.endpoints().iter().find(|e| !self.allows(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(list: &str, cs: &str) -> bool {
        let list = AllowList::parse(list).expect("list");
        let cs: ConnectString = cs.parse().expect("cs");
        list.first_refused(&cs).is_some()
    }

    #[test]
    fn matching() {
        assert!(!refused("", "anything:1"));
        assert!(!refused("127.0.0.1", "127.0.0.1:2181"));
        assert!(!refused(
            "*.zk.example.com:2181",
            "a.zk.example.com:2181,b.zk.example.com:2181"
        ));
        assert!(refused("*.zk.example.com:2181", "a.zk.example.com:2182"));
        assert!(refused("*.zk.example.com", "evil.com:2181"));
        assert!(!refused("10.0.0.0/8", "10.20.30.40:2181"));
        assert!(refused("10.0.0.0/8", "11.0.0.1:2181"));
        assert!(refused("10.0.0.0/8", "10.0.0.1:2181,169.254.169.254:80"));
    }

    #[test]
    fn malformed_lists_are_errors() {
        assert!(AllowList::parse("host:notaport").is_err());
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(AllowList::parse("x/8").is_err());
    }
}
