//! The command lines of etcd, kube-apiserver and kube-controller-manager
//! (pure): every file under the control plane's directory `d`, every port
//! chosen by the caller.

use std::path::Path;

use super::{SERVICE_ACCOUNT_ISSUER, SERVICE_CIDR, node};

/// The kube-controller-manager controllers that run: garbage collection,
/// namespace deletion, service accounts, role aggregation, and the workload
/// controllers that Deployment templates rely on.
pub const CONTROLLERS: &str = "garbage-collector-controller,namespace-controller,serviceaccount-controller,\
root-ca-certificate-publisher-controller,clusterrole-aggregation-controller,deployment-controller,\
replicaset-controller,statefulset-controller,daemonset-controller,job-controller,cronjob-controller,\
ttl-after-finished-controller,endpointslice-controller,persistentvolume-binder-controller,\
persistentvolumeclaim-protection-controller,persistentvolume-protection-controller";

fn file(d: &Path, name: &str) -> String {
    d.join(name).to_string_lossy().into_owned()
}

/// etcd, one member, serving clients on `client_url`.
pub fn etcd(d: &Path, client_url: &str, peer_url: &str) -> Vec<String> {
    vec![
        "--name=portico".into(),
        format!("--data-dir={}", file(d, "etcd")),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=portico={peer_url}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ]
}

/// kube-apiserver on `address:port`: client certificates, service-account
/// tokens, RBAC, the audit log.
pub fn apiserver(d: &Path, etcd_url: &str, address: &str, port: u16) -> Vec<String> {
    vec![
        format!("--etcd-servers={etcd_url}"),
        format!("--bind-address={address}"),
        format!("--advertise-address={address}"),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", file(d, "apiserver-certs")),
        format!("--tls-cert-file={}", file(d, "apiserver.crt")),
        format!("--tls-private-key-file={}", file(d, "apiserver.key")),
        format!("--client-ca-file={}", file(d, "ca.crt")),
        format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
        format!("--service-account-key-file={}", file(d, "sa.pub")),
        format!("--service-account-signing-key-file={}", file(d, "sa.key")),
        "--authorization-mode=RBAC".into(),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--allow-privileged=true".into(),
        // `/debug/pprof` for benchmarks that ask for it (PORTICO_APISERVER_PROFILING=1).
        format!(
            "--profiling={}",
            std::env::var("PORTICO_APISERVER_PROFILING").is_ok_and(|v| v == "1")
        ),
        "--endpoint-reconciler-type=none".into(),
        format!("--audit-policy-file={}", file(d, "audit-policy.yaml")),
        format!("--audit-log-path={}", file(d, "audit.log")),
        "--audit-log-format=json".into(),
        "--audit-log-maxsize=1000".into(),
        "--audit-log-maxbackup=1".into(),
    ]
}

/// `base` with every flag `overrides` sets replaced by the override.
pub fn overridden(base: Vec<String>, overrides: Vec<String>) -> Vec<String> {
    let flag = |a: &str| a.split('=').next().unwrap_or_default().to_string();
    let mut args: Vec<String> = base
        .into_iter()
        .filter(|a| !overrides.iter().any(|o| flag(o) == flag(a)))
        .collect();
    args.extend(overrides);
    args
}

/// kube-controller-manager with [`CONTROLLERS`] (and the node's, with a node).
pub fn controller_manager(d: &Path, with_node: bool) -> Vec<String> {
    let mut args: Vec<String> = vec![
        format!("--kubeconfig={}", file(d, "kcm.kubeconfig")),
        format!("--authentication-kubeconfig={}", file(d, "kcm.kubeconfig")),
        format!("--authorization-kubeconfig={}", file(d, "kcm.kubeconfig")),
        format!(
            "--controllers={CONTROLLERS}{}",
            if with_node { node::CONTROLLERS } else { "" }
        ),
        format!("--service-account-private-key-file={}", file(d, "sa.key")),
        format!("--root-ca-file={}", file(d, "ca.crt")),
        "--use-service-account-credentials=true".into(),
        "--leader-elect=false".into(),
        "--secure-port=0".into(),
        format!("--cert-dir={}", file(d, "kcm-certs")),
        "--concurrent-gc-syncs=5".into(),
        // Each controller's client allows 20 requests/s by default: a burst
        // of a hundred Deployments then waits ~20 s on the deployment and
        // ReplicaSet controllers alone. Clusters run at scale raise it too.
        "--kube-api-qps=200".into(),
        "--kube-api-burst=400".into(),
    ];
    if with_node {
        args.extend(node::KCM_ARGS.iter().map(|a| a.to_string()));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nodes_flags_replace_the_same_flags() {
        let base = vec!["--authorization-mode=RBAC".to_string(), "--secure-port=1".into()];
        let node = vec![
            "--authorization-mode=Node,RBAC".to_string(),
            "--kubelet-https=true".into(),
        ];
        assert_eq!(
            overridden(base, node),
            [
                "--secure-port=1",
                "--authorization-mode=Node,RBAC",
                "--kubelet-https=true"
            ]
        );
    }

    #[test]
    fn files_live_under_the_control_planes_directory() {
        let d = Path::new("/tmp/cp");
        let args = apiserver(d, "http://127.0.0.1:1", "10.0.0.1", 6443);
        assert!(args.contains(&"--tls-cert-file=/tmp/cp/apiserver.crt".to_string()));
        assert!(args.contains(&"--secure-port=6443".to_string()));
        let kcm = controller_manager(d, false);
        assert!(kcm.iter().any(|a| a == &format!("--controllers={CONTROLLERS}")));
    }
}
