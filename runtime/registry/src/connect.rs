//! Validated ZooKeeper connect strings.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::Error;

/// At most this many servers in one connect string; real ensembles have 3, 5 or 7.
const MAX_ENDPOINTS: usize = 32;
/// Longest connect string accepted, in bytes.
const MAX_LEN: usize = 1024;

/// The host part of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-cased.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address, written `[addr]` in a connect string.
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// One `host:port` of a connect string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The server's host.
    pub host: Host,
    /// The server's client port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A validated `host:port[,host:port…]` list.
///
/// Every address a ZooKeeper client is given goes through this type, so nothing but a
/// plain list of hosts and ports (no chroot, no scheme, no user info) ever reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectString {
    endpoints: Vec<Endpoint>,
}

impl ConnectString {
    /// The servers, in the order given.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.endpoints.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidConnectString(msg.into())
}

fn parse_host(raw: &str) -> Result<Host, Error> {
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| invalid(format!("unterminated IPv6 address {raw:?}")))?;
        return inner
            .parse::<Ipv6Addr>()
            .map(Host::V6)
            .map_err(|_| invalid(format!("{inner:?} is not an IPv6 address")));
    }
    if raw.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return raw
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| invalid(format!("{raw:?} is not an IPv4 address")));
    }
    if raw.is_empty() || raw.len() > 253 {
        return Err(invalid("a host name must be 1 to 253 characters"));
    }
    for label in raw.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(invalid(format!("{raw:?} is not a valid host name")));
        }
    }
    Ok(Host::Name(raw.to_ascii_lowercase()))
}

fn parse_endpoint(raw: &str) -> Result<Endpoint, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(invalid("empty server entry"));
    }
    let (host, port) = raw
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty() && (!h.contains(':') || h.starts_with('[')))
        .ok_or_else(|| invalid(format!("{raw:?} must be host:port")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(format!("{port:?} is not a port (1-65535)")))?;
    Ok(Endpoint {
        host: parse_host(host)?,
        port,
    })
}

impl FromStr for ConnectString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid("at least one host:port is required"));
        }
        if s.len() > MAX_LEN {
            return Err(invalid(format!("longer than {MAX_LEN} characters")));
        }
        if s.contains('/') {
            return Err(invalid(
                "a chroot suffix is not allowed here; put it in the namespace",
            ));
        }
        let endpoints = s
            .split(',')
            .map(parse_endpoint)
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.len() > MAX_ENDPOINTS {
            return Err(invalid(format!("more than {MAX_ENDPOINTS} servers")));
        }
        Ok(ConnectString { endpoints })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ensembles_and_normalises() {
        let cs: ConnectString = " zk1.Example.com:2181, 10.0.0.7:2182,[::1]:2181 "
            .parse()
            .expect("valid");
        assert_eq!(
            cs.to_string(),
            "zk1.example.com:2181,10.0.0.7:2182,[::1]:2181"
        );
        assert_eq!(cs.endpoints().len(), 3);
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            "zk1",
            "zk1:",
            "zk1:0",
            "zk1:70000",
            "zk1:2181,",
            "http://zk1:2181",
            "zk1:2181/chroot",
            "999.1.1.1:2181",
            "-bad-.com:2181",
            "a b:2181",
            "user@host:2181",
            "[::1:2181",
            "::1:2181",
        ] {
            assert!(
                bad.parse::<ConnectString>().is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn rejects_oversize_lists() {
        let many = vec!["h:1"; MAX_ENDPOINTS + 1].join(",");
        assert!(many.parse::<ConnectString>().is_err());
        let long = format!("{}:2181", "a".repeat(MAX_LEN));
        assert!(long.parse::<ConnectString>().is_err());
    }
}
