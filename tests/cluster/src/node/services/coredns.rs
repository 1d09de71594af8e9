//! CoreDNS as the cluster DNS (pure): its Corefile — `cluster.local` (and
//! reverse lookups) from the Kubernetes API, on port 53 of the services
//! namespace's address, where the kubelet's `clusterDNS` points pods — and
//! the RBAC of its user `system:coredns` (upstream's `system:coredns`
//! ClusterRole: list and watch Services, Endpoints and EndpointSlices, Pods,
//! Namespaces).
//! Nothing is forwarded: pods reach no resolver outside the cluster, so
//! other names get no answer.

use std::{net::Ipv4Addr, path::Path};

/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The user CoreDNS authenticates as.
pub const USER: &str = "system:coredns";

/// The port of CoreDNS's `ready` plugin (200 once the Kubernetes data is in).
pub const READY_PORT: u16 = 8181;

/// The Corefile for a server on `address`, reading the API through `kubeconfig`.
pub fn corefile(address: Ipv4Addr, kubeconfig: &Path) -> String {
    format!(
        ".:53 {{
    bind {address}
    errors
    health {address}:8080
    ready {address}:{READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods disabled
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
",
        kubeconfig = kubeconfig.display(),
    )
}

/// The ClusterRole and its binding to [`USER`].
pub fn rbac() -> (serde_json::Value, serde_json::Value) {
    let role = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": USER},
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ],
    });
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": USER},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": USER},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    });
    (role, binding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coredns_serves_the_cluster_domain_on_the_namespace_address_and_forwards_nothing() {
        let text = corefile(Ipv4Addr::new(10, 201, 3, 254), Path::new("/n/coredns.kubeconfig"));
        for line in [
            "bind 10.201.3.254",
            "ready 10.201.3.254:8181",
            "kubernetes cluster.local in-addr.arpa ip6.arpa {",
            "kubeconfig /n/coredns.kubeconfig",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("forward"), "{text}");
        let (role, binding) = rbac();
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(binding["subjects"][0]["name"], "system:coredns");
    }
}
