//! kube-proxy's configuration (pure): iptables mode inside the services
//! namespace, the node's bridge subnet as the cluster CIDR, every Service
//! packet masqueraded as the namespace's address (the answering pod is on
//! the same bridge as the asking one, so without it the answer would skip
//! the namespace and its reverse NAT), NodePorts on the namespace's address
//! only, and no machine-wide setting: conntrack's table size (one per
//! machine) and timeouts are left as they are, and the OOM score stays 0
//! (root here lacks CAP_SYS_RESOURCE).

use std::{net::Ipv4Addr, path::Path};

use ipnet::Ipv4Net;

/// kube-proxy's health port inside the namespace (`/healthz` answers 200
/// once its rules are in place).
pub const HEALTHZ_PORT: u16 = 10256;

/// What the configuration is made from.
pub struct Settings<'a> {
    /// kube-proxy's kubeconfig (user `system:kube-proxy`).
    pub kubeconfig: &'a Path,
    /// The node's name.
    pub node: &'a str,
    /// The services namespace's address.
    pub address: Ipv4Addr,
    /// The pods' subnet (the bridge's).
    pub cluster_cidr: Ipv4Net,
}

/// The KubeProxyConfiguration, as JSON (which is YAML).
pub fn config(s: &Settings<'_>) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": s.kubeconfig},
        "hostnameOverride": s.node,
        "bindAddress": s.address.to_string(),
        "healthzBindAddress": format!("{}:{HEALTHZ_PORT}", s.address),
        "metricsBindAddress": format!("{}:10249", s.address),
        "mode": "iptables",
        "clusterCIDR": s.cluster_cidr.to_string(),
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": [format!("{}/32", s.address)],
        "iptables": {
            "masqueradeAll": true,
            "localhostNodePorts": false,
            "syncPeriod": "30s",
            "minSyncPeriod": "0s",
        },
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "oomScoreAdj": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_proxy_masquerades_everything_and_leaves_machine_wide_settings_alone() {
        let c = config(&Settings {
            kubeconfig: Path::new("/n/kube-proxy.kubeconfig"),
            node: "portico-node",
            address: Ipv4Addr::new(10, 201, 3, 254),
            cluster_cidr: "10.201.3.0/24".parse().unwrap(),
        });
        assert_eq!(
            (c["mode"].as_str(), c["clusterCIDR"].as_str()),
            (Some("iptables"), Some("10.201.3.0/24"))
        );
        assert_eq!(c["iptables"]["masqueradeAll"], true);
        assert_eq!(
            (c["conntrack"]["maxPerCore"].as_i64(), c["conntrack"]["min"].as_i64()),
            (Some(0), Some(0))
        );
        assert_eq!(c["oomScoreAdj"], 0);
        assert_eq!(c["healthzBindAddress"], "10.201.3.254:10256");
        assert_eq!(c["nodePortAddresses"], serde_json::json!(["10.201.3.254/32"]));
    }
}
