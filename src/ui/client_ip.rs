//! The client a request comes from, as seen through the configured trusted
//! proxies (pure): `X-Forwarded-For` is read right to left, skipping hops
//! that are trusted proxies; the first other address is the client. A peer
//! that is not a trusted proxy is the client itself, whatever it sends.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The networks of the proxies in front of the dashboard (an Ingress
/// controller, a load balancer), parsed from `trustedProxies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// One `trustedProxies` entry: a CIDR (`10.0.0.0/8`) or a single address (`10.0.0.7`).
fn network(entry: &str) -> Result<IpNet, String> {
    let e = entry.trim();
    e.parse::<IpNet>()
        .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{e:?} is not a network like \"10.0.0.0/8\" or an address like \"10.0.0.7\""))
}

/// Read from the configuration as a list of strings; a bad entry's error
/// names it (and the path, `trustedProxies[i]`, names where it is).
impl<'de> serde::Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry(IpNet);
        impl<'de> serde::Deserialize<'de> for Entry {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                network(&s).map(Entry).map_err(serde::de::Error::custom)
            }
        }
        Ok(TrustedProxies(
            Vec::<Entry>::deserialize(d)?.into_iter().map(|e| e.0).collect(),
        ))
    }
}

impl TrustedProxies {
    /// Parses entries as the configuration does (tests and callers without YAML).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|e| network(e.as_ref()))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request from `peer` (the TCP peer) carrying these
    /// `X-Forwarded-For` header values (in the order received).
    ///
    /// Only hops added by trusted proxies are believed: walking right to left,
    /// the first address that is not a trusted proxy is the client. An entry
    /// that is not an address stops the walk at the proxy that forwarded it
    /// (so garbage cannot make a fresh client per request); a chain of only
    /// trusted proxies gives the leftmost.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops = forwarded_for.iter().flat_map(|v| v.split(',')).collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Some(ip) = address(hop) else { return client };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5`, `[::1]:5`).
fn address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The key a client is limited under: its IPv4 address, or its IPv6 /64
/// (one site's prefix; anyone holds a whole /64, so single IPv6 addresses
/// would give one attacker endless fresh keys).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ingress() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1"]).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let t = ingress();
        assert_eq!(t.client(ip("198.51.100.9"), &["203.0.113.5"]), ip("198.51.100.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.1.1"), &["203.0.113.5"]),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let t = ingress();
        assert_eq!(t.client(ip("10.1.1.1"), &["203.0.113.5"]), ip("203.0.113.5"));
        // A client forging the left of the header gets only its own address.
        assert_eq!(
            t.client(ip("10.1.1.1"), &["1.1.1.1, 2.2.2.2, 203.0.113.5, 10.9.9.9"]),
            ip("203.0.113.5")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            t.client(ip("192.0.2.1"), &["1.1.1.1", "203.0.113.5 , 10.2.2.2"]),
            ip("203.0.113.5")
        );
        // Ports and IPv4-mapped peers.
        assert_eq!(
            t.client(ip("::ffff:10.1.1.1"), &["203.0.113.5:4711"]),
            ip("203.0.113.5")
        );
        assert_eq!(t.client(ip("10.1.1.1"), &["[2001:db8::7]:443"]), ip("2001:db8::7"));
    }

    #[test]
    fn no_header_garbage_or_only_proxies_never_invent_a_client() {
        let t = ingress();
        assert_eq!(t.client(ip("10.1.1.1"), &[]), ip("10.1.1.1"));
        assert_eq!(t.client(ip("10.1.1.1"), &["unknown"]), ip("10.1.1.1"));
        assert_eq!(
            t.client(ip("10.1.1.1"), &["203.0.113.5, garbage, 10.3.3.3"]),
            ip("10.3.3.3")
        );
        assert_eq!(t.client(ip("10.1.1.1"), &["10.4.4.4, 10.3.3.3"]), ip("10.4.4.4"));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(
            TrustedProxies::parse(&["10.0.0.0/8", "ingress"])
                .unwrap_err()
                .contains("\"ingress\"")
        );
        assert!(
            TrustedProxies::parse(&["10.0.0.0/33"])
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert!(TrustedProxies::parse(&["fd00::/8", " 127.0.0.1 "]).is_ok());
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("203.0.113.5")), ip("203.0.113.5"));
        assert_eq!(limit_key(ip("::ffff:203.0.113.5")), ip("203.0.113.5"));
    }
}
