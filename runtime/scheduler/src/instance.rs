//! Job instance identity, as ElasticJob writes it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The delimiter ElasticJob puts between the IP and the pid.
pub const DELIMITER: &str = "@-@";

/// `{serverIp}@-@{pid}`. Code in ElasticJob relies on exactly one `@-@`, so the pid part
/// (which may carry a suffix when several runtimes share one host in tests) never holds
/// another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// An id from an IP and a pid (plus an optional suffix, e.g. `-b`).
    ///
    /// # Errors
    /// [`Error::InstanceId`] if either part is empty or contains the delimiter.
    pub fn new(ip: &str, pid: &str) -> Result<InstanceId, Error> {
        format!("{ip}{DELIMITER}{pid}").parse()
    }

    /// The server IP: the text before the delimiter.
    pub fn ip(&self) -> &str {
        self.0.split_once(DELIMITER).map_or(&self.0, |(ip, _)| ip)
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InstanceId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.split_once(DELIMITER) {
            Some((ip, pid)) if !ip.is_empty() && !pid.is_empty() && !pid.contains(DELIMITER) => {
                Ok(InstanceId(s.to_owned()))
            }
            _ => Err(Error::InstanceId(s.to_owned())),
        }
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// This machine's IPv4 address as ElasticJob's `IpUtils` picks one: the first public
/// (non-private) address of an interface that is up, else the first private one; never
/// loopback, link-local or IPv6.
pub fn local_ipv4() -> Option<String> {
    let addrs = if_addrs::get_if_addrs().ok()?;
    let candidates: Vec<std::net::Ipv4Addr> = addrs
        .iter()
        .filter(|a| !a.is_loopback())
        .filter_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) if !v4.is_link_local() && !v4.is_unspecified() => Some(v4),
            _ => None,
        })
        .collect();
    candidates
        .iter()
        .find(|ip| !ip.is_private())
        .or_else(|| candidates.first())
        .map(ToString::to_string)
}

/// The server IP of an instance: the `serverIp` of its node's YAML, else the text of its
/// id before `@-@` (an instance node may be gone or hand-written).
pub fn server_ip(instance_yaml: Option<&str>, id: &str) -> String {
    instance_yaml
        .and_then(|yaml| {
            yaml.lines().find_map(|l| {
                l.strip_prefix("serverIp:")
                    .map(|v| v.trim().trim_matches('\'').to_owned())
            })
        })
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| id.split(DELIMITER).next().unwrap_or(id).to_owned())
}

/// Java's `String.compareTo`: UTF-16 code units, lexicographically.
pub fn java_compare(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Sorts in descending Java string order, as `ZookeeperRegistryCenter.getChildrenKeys`
/// returns children: the order sharding and failover depend on.
pub fn sort_descending<T: AsRef<str>>(items: &mut [T]) {
    items.sort_by(|a, b| java_compare(b.as_ref(), a.as_ref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_order_like_java() {
        let id: InstanceId = "192.168.1.9@-@3001".parse().expect("id");
        assert_eq!(id.ip(), "192.168.1.9");
        assert!("no-delimiter".parse::<InstanceId>().is_err());
        assert!("a@-@b@-@c".parse::<InstanceId>().is_err());
        assert!("@-@1".parse::<InstanceId>().is_err());
        // elasticjob-registry.md §4.1 and sharding-examples §4.
        let mut ids = vec![
            "192.168.1.10@-@2001",
            "192.168.1.9@-@3001",
            "192.168.1.11@-@1001",
        ];
        sort_descending(&mut ids);
        assert_eq!(
            ids,
            [
                "192.168.1.9@-@3001",
                "192.168.1.11@-@1001",
                "192.168.1.10@-@2001"
            ]
        );
        let mut ids = vec![
            "10.0.0.2@-@4711",
            "10.0.0.10@-@812",
            "10.0.0.2@-@12000",
            "10.0.0.3@-@99",
        ];
        sort_descending(&mut ids);
        assert_eq!(
            ids,
            [
                "10.0.0.3@-@99",
                "10.0.0.2@-@4711",
                "10.0.0.2@-@12000",
                "10.0.0.10@-@812"
            ]
        );
    }
}
