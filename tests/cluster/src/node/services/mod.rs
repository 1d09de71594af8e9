//! Services answer from pods: kube-proxy and CoreDNS, both built by
//! `tests/controlplane/build.sh`, run in the node's services namespace, a
//! network namespace of its own joined to the node's bridge at `.254`.
//!
//! ```text
//! pod 10.201.X.7 ──(route: service range via .254)──▶ services namespace (eth0 = .254)
//!   kube-proxy's rules: DNAT ClusterIP:port → pod IP:port, SNAT → .254
//!   ◀── forwarded out of eth0 again to 10.201.X.9, whose answer comes back to .254
//! pod ──(resolv.conf: nameserver .254)──▶ CoreDNS on .254:53 (cluster.local)
//! ```
//!
//! The host's network is untouched: it has no route for the service range,
//! no iptables rule and no changed sysctl (`ip_forward` is 1 inside the
//! namespace only), so pods still reach only the bridge, and each node on a
//! machine has its own namespace (ClusterIPs of two clusters may overlap).
//! kube-proxy authenticates as `system:kube-proxy` (bound to
//! `system:node-proxier` by Kubernetes' default policy), CoreDNS as
//! `system:coredns`. The janitor removes the namespace and its veth.

mod coredns;
mod kube_proxy;
mod namespace;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::Ipv4Net;
use kube::config::Kubeconfig;
pub use namespace::{Namespace, VETH_RECORD};

use super::{
    NODE_NAME,
    error::{NodeError, io},
    network::Bridge,
    program,
};
use crate::{Binaries, ControlPlaneError, Process, wait};

pub use coredns::{CLUSTER_DOMAIN, USER as COREDNS_USER};

/// The programs and binaries the services need, each missing one named with its fix.
pub fn preflight(binaries: &Binaries) -> Result<namespace::Tools, NodeError> {
    for name in ["iptables", "iptables-save", "iptables-restore"] {
        program(name).map_err(|_| NodeError::Missing {
            what: format!("the program {name} (kube-proxy's iptables mode)"),
            fix: "apt-get install iptables".into(),
        })?;
    }
    for name in ["kube-proxy", "coredns"] {
        if !binaries.path(name).is_file() {
            return Err(NodeError::Missing {
                what: format!("{} in {}", name, binaries.dir().display()),
                fix: format!("bash {}", crate::binaries::BUILD_SCRIPT),
            });
        }
    }
    let util_linux = |name: &str| {
        program(name).map_err(|_| NodeError::Missing {
            what: format!("the program {name}"),
            fix: "apt-get install util-linux".into(),
        })
    };
    Ok(namespace::Tools {
        unshare: util_linux("unshare")?,
        nsenter: util_linux("nsenter")?,
        ip: program("ip")?,
    })
}

/// Checks what the services need and creates the services namespace for
/// the node in `dir` on `bridge`.
pub fn prepare(dir: &Path, bridge: &Bridge, binaries: &Binaries) -> Result<Namespace, NodeError> {
    let tools = preflight(binaries)?;
    Namespace::create(dir, bridge, &tools)
}

/// What starting the services takes from the node.
pub struct Inputs<'a> {
    /// The Kubernetes binaries (kube-proxy and coredns among them).
    pub binaries: &'a Binaries,
    /// The node's directory (configuration and logs go there).
    pub dir: &'a Path,
    /// The admin kubeconfig (for CoreDNS's RBAC).
    pub admin: &'a Kubeconfig,
    /// The pods' subnet.
    pub cluster_cidr: Ipv4Net,
    /// kube-proxy's kubeconfig (user `system:kube-proxy`).
    pub kube_proxy_kubeconfig: &'a Path,
    /// CoreDNS's kubeconfig (user `system:coredns`).
    pub coredns_kubeconfig: &'a Path,
}

/// kube-proxy and CoreDNS, running in the services namespace.
pub struct Services {
    processes: Vec<Process>,
    namespace: Namespace,
}

/// The PATH the services run with (iptables lives in the sbin directories).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Services {
    /// Starts kube-proxy and CoreDNS in `namespace` and returns once
    /// kube-proxy's rules are in place and CoreDNS has the cluster's data. Blocking.
    pub fn start(namespace: Namespace, inputs: &Inputs<'_>) -> Result<Services, ControlPlaneError> {
        let mut services = Services {
            processes: Vec::new(),
            namespace,
        };
        let d = inputs.dir;
        let nsenter = program("nsenter")?;
        let address = services.namespace.address;
        let write = |name: &str, text: &str| -> Result<PathBuf, NodeError> {
            let path = d.join(name);
            std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))?;
            Ok(path)
        };
        let env = [("PATH", std::ffi::OsStr::new(PATH))];

        let proxy_config = kube_proxy::config(&kube_proxy::Settings {
            kubeconfig: inputs.kube_proxy_kubeconfig,
            node: NODE_NAME,
            address,
            cluster_cidr: inputs.cluster_cidr,
        });
        let proxy_config = write("kube-proxy.yaml", &proxy_config.to_string())?;
        let args = vec![format!("--config={}", proxy_config.display()), "--v=1".into()];
        let mut kube_proxy = Process::spawn_with_env(
            "kube-proxy",
            &nsenter,
            &services.namespace.wrap(&inputs.binaries.path("kube-proxy"), &args),
            &env,
            &d.join("kube-proxy.log"),
        )
        .map_err(io("start kube-proxy"))?;
        let healthz = SocketAddr::from((address, kube_proxy::HEALTHZ_PORT));
        wait::http_ok(&mut kube_proxy, healthz, "/healthz")?;
        services.processes.push(kube_proxy);

        let (role, binding) = coredns::rbac();
        wait::apply_rbac(inputs.admin, role, binding)?;
        let corefile = write("Corefile", &coredns::corefile(address, inputs.coredns_kubeconfig))?;
        let args = vec!["-conf".to_string(), corefile.display().to_string()];
        let mut dns = Process::spawn_with_env(
            "coredns",
            &nsenter,
            &services.namespace.wrap(&inputs.binaries.path("coredns"), &args),
            &env,
            &d.join("coredns.log"),
        )
        .map_err(io("start coredns"))?;
        wait::http_ok(&mut dns, SocketAddr::from((address, coredns::READY_PORT)), "/ready")?;
        services.processes.push(dns);
        Ok(services)
    }

    /// The cluster DNS server's address (the kubelet's `clusterDNS`).
    pub fn dns(&self) -> Ipv4Addr {
        self.namespace.address
    }

    /// The services namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// Process ids of kube-proxy and CoreDNS.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Process::pid).collect()
    }

    /// Stops CoreDNS and kube-proxy (the janitor removes the namespace).
    pub fn stop(&mut self) {
        while let Some(mut p) = self.processes.pop() {
            p.stop(Duration::from_secs(5));
        }
    }
}
