//! The kubelet's configuration (pure): authenticated and authorized serving
//! (x509 client CA and token webhook, Webhook authorization, no anonymous
//! access) on the node's bridge address, cgroupfs under the node's own
//! cgroup root, and the settings this kind of machine needs — a cgroup v1
//! host (`failCgroupV1: false`) and no CAP_SYS_RESOURCE (`oomScoreAdj: 0`,
//! `maxOpenFiles` at the hard limit). No iptables chains of its own. Pods
//! get the cluster DNS (CoreDNS in the services namespace) when it runs.

use std::{net::Ipv4Addr, path::Path};

/// What the kubelet configuration is made from.
pub struct Settings<'a> {
    /// The node's address: where the kubelet listens and what it reports as InternalIP.
    pub address: Ipv4Addr,
    /// The kubelet's HTTPS port.
    pub port: u16,
    /// The cluster CA, which signs the API server's kubelet client certificate.
    pub client_ca: &'a Path,
    /// The serving certificate and key.
    pub tls_cert: &'a Path,
    /// The serving key.
    pub tls_key: &'a Path,
    /// The cgroup every pod lives under, unique to this node (`/portico-…`).
    pub cgroup_root: &'a str,
    /// containerd's socket.
    pub runtime_socket: &'a Path,
    /// Where container logs go.
    pub pod_logs: &'a Path,
    /// The hard limit of open files this process may raise to.
    pub max_open_files: u64,
    /// The cluster DNS server pods get in their resolv.conf, when it runs.
    pub cluster_dns: Option<Ipv4Addr>,
}

/// The KubeletConfiguration, as JSON (which is YAML).
pub fn config(s: &Settings<'_>) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": s.address.to_string(),
        "port": s.port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "tlsCertFile": s.tls_cert,
        "tlsPrivateKeyFile": s.tls_key,
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": s.client_ca},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": s.cgroup_root,
        "failCgroupV1": false,
        "oomScoreAdj": 0,
        "maxOpenFiles": s.max_open_files,
        "containerRuntimeEndpoint": format!("unix://{}", s.runtime_socket.display()),
        "podLogsDir": s.pod_logs,
        "makeIPTablesUtilChains": false,
        "failSwapOn": false,
        // One node holds a whole development cluster: up to the bridge's
        // addresses (.2-.253) rather than the default 110 pods.
        "maxPods": 250,
        "registerNode": true,
        "serializeImagePulls": false,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "clusterDNS": s.cluster_dns.map(|ip| vec![ip.to_string()]).unwrap_or_default(),
        "clusterDomain": super::services::CLUSTER_DOMAIN,
        "resolvConf": "/etc/resolv.conf",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelet_refuses_anonymous_requests_and_keeps_the_oom_score() {
        let p = Path::new("/n");
        let c = config(&Settings {
            address: Ipv4Addr::new(10, 201, 3, 1),
            port: 10250,
            client_ca: &p.join("ca.crt"),
            tls_cert: &p.join("kubelet.crt"),
            tls_key: &p.join("kubelet.key"),
            cgroup_root: "/portico-1",
            runtime_socket: &p.join("containerd.sock"),
            pod_logs: &p.join("logs"),
            max_open_files: 20000,
            cluster_dns: Some(Ipv4Addr::new(10, 201, 3, 254)),
        });
        assert_eq!(c["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(c["authorization"]["mode"], "Webhook");
        assert_eq!(
            (c["failCgroupV1"].as_bool(), c["oomScoreAdj"].as_i64()),
            (Some(false), Some(0))
        );
        assert_eq!(c["containerRuntimeEndpoint"], "unix:///n/containerd.sock");
        assert_eq!(c["address"], "10.201.3.1");
        assert_eq!(c["clusterDNS"], serde_json::json!(["10.201.3.254"]));
        assert_eq!(c["clusterDomain"], "cluster.local");
    }
}
