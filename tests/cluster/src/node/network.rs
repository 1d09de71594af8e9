//! The node's network, kept inside the machine: a Linux bridge on a free
//! 10.201.X.0/24 (the node and the API server at .1, the services
//! namespace at .254), and the CNI bridge plugin with host-local IPAM on it
//! — no gateway, no masquerading, no default route, `ip_forward` untouched.
//! Pods reach the node and each other, and the service range through the
//! services namespace (see [`super::services`]); nothing else.

use std::{net::Ipv4Addr, path::Path, process::Command};

use ipnet::Ipv4Net;

use super::error::{NodeError, run};

/// The range bridge subnets are taken from, one /24 per node.
const RANGE: &str = "10.201.0.0/16";

/// A bridge this node created and owns.
#[derive(Clone, Debug)]
pub struct Bridge {
    /// Interface name, also the CNI network name: `portico-br-X`.
    pub name: String,
    /// The node's /24.
    pub subnet: Ipv4Net,
}

impl Bridge {
    /// The node's (and the API server's) address on the bridge: `.1`.
    pub fn ip(&self) -> Ipv4Addr {
        let o = self.subnet.network().octets();
        Ipv4Addr::new(o[0], o[1], o[2], 1)
    }

    /// The services namespace's address on the bridge: `.254`, the last
    /// one (pods get `.2`–`.253`). Pods route the service range to it, and
    /// the cluster DNS listens on it.
    pub fn services_ip(&self) -> Ipv4Addr {
        let o = self.subnet.network().octets();
        Ipv4Addr::new(o[0], o[1], o[2], 254)
    }
}

/// The first /24 of [`RANGE`], from `start` on (wrapping), that overlaps none
/// of `taken` (pure).
pub fn pick_subnet(taken: &[Ipv4Net], start: u8) -> impl Iterator<Item = (u8, Ipv4Net)> + '_ {
    let base: Ipv4Net = RANGE.parse().expect("the range is a CIDR");
    (0..=255u8).filter_map(move |i| {
        let x = start.wrapping_add(i);
        let o = base.network().octets();
        let net = Ipv4Net::new(Ipv4Addr::new(o[0], o[1], x, 0), 24).expect("a /24");
        let overlaps = taken
            .iter()
            .any(|t| t.contains(&net.network()) || net.contains(&t.network()));
        (!overlaps).then_some((x, net))
    })
}

/// Every IPv4 network on this machine: interface addresses and routes (from `ip`).
fn taken(ip: &Path) -> Result<Vec<Ipv4Net>, NodeError> {
    let addrs = run(Command::new(ip).args(["-o", "-4", "addr", "show"]))?;
    let routes = run(Command::new(ip).args(["-4", "route", "show", "table", "all"]))?;
    let mut nets = Vec::new();
    for line in String::from_utf8_lossy(&addrs.stdout).lines() {
        let mut words = line.split_whitespace();
        if words.any(|w| w == "inet")
            && let Some(net) = words.next().and_then(|w| w.parse::<Ipv4Net>().ok())
        {
            nets.push(net.trunc());
        }
    }
    for line in String::from_utf8_lossy(&routes.stdout).lines() {
        let dest = line
            .split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()));
        if let Some(dest) = dest {
            let net = dest
                .parse::<Ipv4Net>()
                .or_else(|_| dest.parse::<Ipv4Addr>().map(Ipv4Net::from));
            if let Ok(net) = net
                && net.prefix_len() > 0
            {
                nets.push(net.trunc());
            }
        }
    }
    Ok(nets)
}

/// Creates a bridge on a free subnet with the node's address on it, and
/// records its name in `record` (the janitor deletes what is named there).
/// Two nodes starting at once never share one: the interface name is the claim.
pub fn create_bridge(ip: &Path, record: &Path) -> Result<Bridge, NodeError> {
    let taken = taken(ip)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (nanos ^ std::process::id()) as u8;
    for (x, subnet) in pick_subnet(&taken, start) {
        let name = format!("portico-br-{x}");
        let added = Command::new(ip)
            .args(["link", "add", "name", &name, "type", "bridge"])
            .output()
            .map_err(super::error::io("run ip link add"))?;
        if !added.status.success() {
            continue; // another node holds this one
        }
        std::fs::write(record, &name).map_err(super::error::io(format!("write {}", record.display())))?;
        let bridge = Bridge { name, subnet };
        let cidr = format!("{}/24", bridge.ip());
        run(Command::new(ip).args(["addr", "add", &cidr, "dev", &bridge.name]))?;
        run(Command::new(ip).args(["link", "set", "dev", &bridge.name, "up"]))?;
        return Ok(bridge);
    }
    Err(NodeError::NoSubnet { range: RANGE.into() })
}

/// The CNI network configuration for the bridge (pure): addresses .2–.253,
/// leases kept in `ipam_dir`; with `services`, one route — the service
/// range through the services namespace — and still no default route.
pub fn cni_conflist(bridge: &Bridge, ipam_dir: &Path, services: Option<Ipv4Net>) -> serde_json::Value {
    let o = bridge.subnet.network().octets();
    let routes: Vec<serde_json::Value> = services
        .map(|range| serde_json::json!({"dst": range.to_string(), "gw": bridge.services_ip().to_string()}))
        .into_iter()
        .collect();
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": bridge.name,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge.name,
            "isGateway": false,
            "isDefaultGateway": false,
            "ipMasq": false,
            "hairpinMode": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{
                    "subnet": bridge.subnet.to_string(),
                    "rangeStart": format!("{}.{}.{}.2", o[0], o[1], o[2]),
                    "rangeEnd": format!("{}.{}.{}.253", o[0], o[1], o[2]),
                }]],
                "routes": routes,
                "dataDir": ipam_dir,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_overlapping_an_address_or_route_is_skipped() {
        let taken: Vec<Ipv4Net> = vec!["10.201.7.0/24".parse().unwrap(), "10.201.8.128/25".parse().unwrap()];
        let picked: Vec<u8> = pick_subnet(&taken, 7).map(|(x, _)| x).take(2).collect();
        assert_eq!(picked, [9, 10]);
        let everything: Vec<Ipv4Net> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(pick_subnet(&everything, 0).count(), 0);
    }

    #[test]
    fn the_cni_network_has_no_gateway_masquerade_or_default_route() {
        let bridge = Bridge {
            name: "portico-br-3".into(),
            subnet: "10.201.3.0/24".parse().unwrap(),
        };
        assert_eq!(bridge.ip().to_string(), "10.201.3.1");
        assert_eq!(bridge.services_ip().to_string(), "10.201.3.254");
        let c = cni_conflist(&bridge, Path::new("/x/ipam"), None);
        let plugin = &c["plugins"][0];
        assert_eq!(
            (plugin["isGateway"].as_bool(), plugin["ipMasq"].as_bool()),
            (Some(false), Some(false))
        );
        let range = &plugin["ipam"]["ranges"][0][0];
        assert_eq!(
            (range["rangeStart"].as_str(), range["rangeEnd"].as_str()),
            (Some("10.201.3.2"), Some("10.201.3.253"))
        );
        assert_eq!(plugin["ipam"]["routes"], serde_json::json!([]));
    }

    #[test]
    fn with_services_pods_route_the_service_range_only_through_the_services_namespace() {
        let bridge = Bridge {
            name: "portico-br-3".into(),
            subnet: "10.201.3.0/24".parse().unwrap(),
        };
        let c = cni_conflist(&bridge, Path::new("/x/ipam"), Some("10.96.0.0/16".parse().unwrap()));
        assert_eq!(
            c["plugins"][0]["ipam"]["routes"],
            serde_json::json!([{"dst": "10.96.0.0/16", "gw": "10.201.3.254"}])
        );
    }
}
