//! A real node beside the local control plane: kube-scheduler, containerd
//! and the kubelet, on a bridge of their own, with locally built images;
//! kube-proxy and CoreDNS in a network namespace of the node's own, so
//! Services answer from pods (see [`services`]).
//!
//! ```text
//! prepare()  janitor (waits for us to stop or die) → bridge on a free /24
//!            → the API server binds to the bridge address, with kubelet client credentials
//! start()    kube-scheduler → services namespace → containerd (+ images) → kubelet
//!            → Node Ready → the default StorageClass (kube-controller-manager
//!            provisions host-path volumes) → kube-proxy, CoreDNS (or the reason
//!            they cannot run)
//! stop()     cordon, delete pods (CNI tears their networks down) → stop CoreDNS,
//!            kube-proxy, kubelet, containerd, scheduler
//! finish()   (after the control plane has stopped) janitor removes mounts,
//!            volumes, the services namespace and its veth, bridge, cgroups, files
//! ```

mod containerd;
mod error;
mod host;
pub mod images;
mod janitor;
mod kubelet;
mod network;
pub mod services;
pub mod storage;

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::Duration,
};

pub use error::NodeError;
use error::io;
pub use host::preflight;
use host::{CNI_BIN, make_cgroup_root, open_files_hard_limit, program};
use ipnet::Ipv4Net;
use kube::config::Kubeconfig;
pub use network::Bridge;
use services::Services;

use super::{Binaries, ControlPlaneError, Process, kubeconfig, process::Janitor};
use crate::pki::Ca;

/// The node's name (one node per cluster).
pub const NODE_NAME: &str = "portico-node";

/// The controllers a cluster with a node runs besides [`super::CONTROLLERS`]:
/// node lifecycle lifts the kubelet's `not-ready` taint once the node is Ready.
pub const CONTROLLERS: &str = ",node-lifecycle-controller";

/// kube-controller-manager flags for a cluster with a node: the host-path
/// provisioner behind the default StorageClass ([`storage`]).
pub const KCM_ARGS: &[&str] = storage::KCM_ARGS;

/// The API server's client identity towards the kubelet.
const KUBELET_CLIENT: &str = "kube-apiserver-kubelet-client";

/// The first part of a node: its janitor and its bridge, made before the
/// API server starts (which serves on the bridge address).
pub struct Prepared {
    dir: PathBuf,
    cgroup: String,
    bridge: Bridge,
    janitor: Janitor,
}

/// A running node. Dropping it without [`Node::stop`] still removes
/// everything (the janitor), just without deleting pods first.
pub struct Node {
    // Processes first: they are gone before the janitor sweeps (fields drop in order).
    /// kube-proxy and CoreDNS, or why they do not run; set by `start`.
    services: Option<Result<Services, ControlPlaneError>>,
    processes: Vec<Process>,
    prepared: Prepared,
}

/// Checks what the node needs, starts its janitor and creates its bridge,
/// under `cp_dir/node`; `etcd_data` is the cluster's etcd data directory
/// (the janitor reads there which volumes the cluster made).
pub fn prepare(cp_dir: &Path, etcd_data: &Path, binaries: &Binaries) -> Result<Prepared, NodeError> {
    preflight(binaries)?;
    let dir = cp_dir.join("node");
    std::fs::create_dir_all(&dir).map_err(io("create the node directory"))?;
    let cgroup = cp_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("portico-{}", std::process::id()));
    let janitor = janitor::spawn(&dir, &cgroup, etcd_data)?;
    let bridge = network::create_bridge(&program("ip")?, &dir.join("bridge"))?;
    Ok(Prepared {
        dir,
        cgroup,
        bridge,
        janitor,
    })
}

impl Prepared {
    /// The address the API server and the kubelet serve on; pods reach it.
    pub fn address(&self) -> Ipv4Addr {
        self.bridge.ip()
    }

    /// API server flags for a cluster with this node: kubelet client
    /// credentials, the Node authorizer and NodeRestriction, and the
    /// `kubernetes` Service's endpoint at the bridge address (the lease
    /// reconciler; a control plane on loopback has none, as the API refuses
    /// loopback endpoints). Writes the client certificate into the node's
    /// directory.
    pub fn apiserver_args(&self, ca: &Ca, ca_file: &Path) -> Result<Vec<String>, NodeError> {
        let client = ca.client(KUBELET_CLIENT, &[]).map_err(|e| NodeError::Io {
            context: "kubelet client certificate".into(),
            source: std::io::Error::other(e),
        })?;
        let (crt, key) = (self.dir.join("kubelet-client.crt"), self.dir.join("kubelet-client.key"));
        write(&crt, &client.cert_pem)?;
        write(&key, &client.key_pem)?;
        Ok(vec![
            format!("--kubelet-client-certificate={}", crt.display()),
            format!("--kubelet-client-key={}", key.display()),
            format!("--kubelet-certificate-authority={}", ca_file.display()),
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--endpoint-reconciler-type=lease".into(),
            // Webhooks and aggregated APIs served by pods are reached at their
            // endpoints: the host is outside the pods' Service routing.
            "--enable-aggregator-routing=true".into(),
        ])
    }
}

fn write(path: &Path, text: &str) -> Result<(), NodeError> {
    std::fs::write(path, text).map_err(io(format!("write {}", path.display())))
}

/// What the node takes from the control plane.
pub struct ClusterInputs<'a> {
    /// The Kubernetes binaries.
    pub binaries: &'a Binaries,
    /// The cluster CA (signs the node's certificates).
    pub ca: &'a Ca,
    /// The CA certificate file.
    pub ca_file: &'a Path,
    /// The API server's URL (on the bridge address).
    pub server: &'a str,
    /// The admin kubeconfig.
    pub admin: &'a Kubeconfig,
    /// The API server's service range (`--service-cluster-ip-range`).
    pub service_cidr: Ipv4Net,
}

impl Prepared {
    /// Starts kube-scheduler, containerd (with the images) and the kubelet,
    /// and returns once the node is Ready; then kube-proxy and CoreDNS —
    /// when they cannot run, the node runs without them and
    /// [`Node::services`] says why. Blocking.
    pub fn start(self, cluster: &ClusterInputs<'_>) -> Result<Node, ControlPlaneError> {
        let mut node = Node {
            services: None,
            processes: Vec::new(),
            prepared: self,
        };
        let d = node.prepared.dir.clone();
        let log = |name: &str| d.join(format!("{name}.log"));
        let kubeconfig_for = |user: &str, groups: &[&str], file: &str| -> Result<PathBuf, ControlPlaneError> {
            let cert = cluster.ca.client(user, groups)?;
            let kc = kubeconfig::build(
                "portico-local",
                cluster.server,
                &cluster.ca.cert_pem,
                &[kubeconfig::User {
                    name: user,
                    cert: &cert,
                    namespace: None,
                }],
            );
            let path = d.join(file);
            write(&path, &kubeconfig::to_yaml(&kc))?;
            Ok(path)
        };
        super::wait::grant_kubelet_api(cluster.admin, KUBELET_CLIENT)?;

        let sched = kubeconfig_for("system:kube-scheduler", &[], "scheduler.kubeconfig")?;
        let sched_args: Vec<String> = vec![
            format!("--kubeconfig={}", sched.display()),
            format!("--authentication-kubeconfig={}", sched.display()),
            format!("--authorization-kubeconfig={}", sched.display()),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
        ];
        let scheduler = Process::spawn(
            "kube-scheduler",
            &cluster.binaries.path("kube-scheduler"),
            &sched_args,
            &log("kube-scheduler"),
        )
        .map_err(io("start kube-scheduler"))?;
        node.processes.push(scheduler);

        // Before the CNI configuration: pods route the service range into this namespace.
        let namespace = services::prepare(&d, &node.prepared.bridge, cluster.binaries);
        let routed = namespace.as_ref().ok().map(|_| cluster.service_cidr);
        let socket = d.join("containerd.sock");
        let cni_conf = d.join("cni");
        std::fs::create_dir_all(&cni_conf).map_err(io("create the CNI configuration directory"))?;
        let conflist = network::cni_conflist(&node.prepared.bridge, &d.join("cni-ipam"), routed);
        write(&cni_conf.join("10-portico.conflist"), &conflist.to_string())?;
        let config = containerd::config(
            &containerd::Paths {
                root: &d.join("containerd"),
                state: &d.join("containerd-state"),
                socket: &socket,
                cni_conf: &cni_conf,
                cni_bin: Path::new(CNI_BIN),
                runc: &program("runc")?,
            },
            images::PAUSE_IMAGE,
        );
        write(&d.join("containerd.toml"), &config)?;
        let containerd_args = vec!["--config".to_string(), d.join("containerd.toml").display().to_string()];
        let ctr = program("ctr")?;
        let mut containerd = Process::spawn(
            "containerd",
            &program("containerd")?,
            &containerd_args,
            &log("containerd"),
        )
        .map_err(io("start containerd"))?;
        super::wait::containerd_ready(&mut containerd, &ctr, &socket)?;
        node.processes.push(containerd);
        let tars = images::ensure(cluster.binaries.dir())?;
        images::import(&ctr, &socket, &tars)?;

        let ip = node.prepared.bridge.ip().to_string();
        let serving = cluster.ca.server(NODE_NAME, &[&ip, NODE_NAME])?;
        write(&d.join("kubelet.crt"), &serving.cert_pem)?;
        write(&d.join("kubelet.key"), &serving.key_pem)?;
        let kubelet_kc = kubeconfig_for(
            &format!("system:node:{NODE_NAME}"),
            &["system:nodes"],
            "kubelet.kubeconfig",
        )?;
        make_cgroup_root(&node.prepared.cgroup)?;
        let config = kubelet::config(&kubelet::Settings {
            address: node.prepared.bridge.ip(),
            port: super::free_port()?,
            client_ca: cluster.ca_file,
            tls_cert: &d.join("kubelet.crt"),
            tls_key: &d.join("kubelet.key"),
            cgroup_root: &format!("/{}", node.prepared.cgroup),
            runtime_socket: &socket,
            pod_logs: &d.join("pod-logs"),
            max_open_files: open_files_hard_limit(),
            cluster_dns: namespace.as_ref().ok().map(|ns| ns.address),
        });
        write(&d.join("kubelet.yaml"), &config.to_string())?;
        let kubelet_args: Vec<String> = vec![
            format!("--config={}", d.join("kubelet.yaml").display()),
            format!("--kubeconfig={}", kubelet_kc.display()),
            format!("--root-dir={}", d.join("kubelet").display()),
            format!("--hostname-override={NODE_NAME}"),
            format!("--node-ip={ip}"),
            "--v=1".into(),
        ];
        let mut kubelet = Process::spawn(
            "kubelet",
            &cluster.binaries.path("kubelet"),
            &kubelet_args,
            &log("kubelet"),
        )
        .map_err(io("start kubelet"))?;
        super::wait::node_ready(cluster.admin, &mut kubelet, NODE_NAME)?;
        node.processes.push(kubelet);
        super::wait::apply_cluster_object(cluster.admin, storage::storage_class())?;

        let started = match namespace {
            Ok(namespace) => {
                let kube_proxy = kubeconfig_for("system:kube-proxy", &[], "kube-proxy.kubeconfig")?;
                let coredns = kubeconfig_for(services::COREDNS_USER, &[], "coredns.kubeconfig")?;
                Services::start(
                    namespace,
                    &services::Inputs {
                        binaries: cluster.binaries,
                        dir: &d,
                        admin: cluster.admin,
                        cluster_cidr: node.prepared.bridge.subnet,
                        kube_proxy_kubeconfig: &kube_proxy,
                        coredns_kubeconfig: &coredns,
                    },
                )
            }
            Err(e) => Err(e.into()),
        };
        node.services = Some(started);
        Ok(node)
    }
}

impl Node {
    /// The bridge the node's pods are on.
    pub fn bridge(&self) -> &Bridge {
        &self.prepared.bridge
    }

    /// The node's directory (its state, logs and mounts all live under it).
    pub fn dir(&self) -> &Path {
        &self.prepared.dir
    }

    /// The cgroup name every pod lives under.
    pub fn cgroup(&self) -> &str {
        &self.prepared.cgroup
    }

    /// Imports an image archive (OCI or docker-archive) into the node's
    /// containerd, unpacked, where the kubelet finds it without a registry:
    /// for images built beside the node's own, such as Portico's.
    pub fn import_image(&self, archive: &Path) -> Result<(), NodeError> {
        let image = images::Archive {
            path: archive.to_path_buf(),
            unpack: true,
        };
        images::import(&program("ctr")?, &self.prepared.dir.join("containerd.sock"), &[image])
    }

    /// Process ids of kube-scheduler, containerd and the kubelet, then
    /// kube-proxy and CoreDNS when they run.
    pub fn pids(&self) -> Vec<u32> {
        let services = self.services().map(Services::pids).unwrap_or_default();
        self.processes.iter().map(Process::pid).chain(services).collect()
    }

    /// kube-proxy and CoreDNS, or why they do not run on this machine (the
    /// node itself runs either way).
    pub fn services(&self) -> Result<&Services, &ControlPlaneError> {
        self.services.as_ref().expect("set when the node started").as_ref()
    }

    /// Cordons the node and deletes its pods (so CNI tears their networks
    /// down), and stops CoreDNS, kube-proxy, the kubelet, containerd and the
    /// scheduler. Blocking.
    pub fn stop(&mut self, admin: &Kubeconfig) {
        if let Err(e) = super::wait::drain(admin, NODE_NAME) {
            eprintln!("portico node: draining {NODE_NAME} failed ({e}); its pods are killed instead");
        }
        if let Some(Ok(services)) = &mut self.services {
            services.stop();
        }
        while let Some(mut p) = self.processes.pop() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// Lets the janitor remove the rest (mounts, volumes, the bridge,
    /// cgroups, files) once the control plane has stopped too, so that
    /// kube-controller-manager makes no volume after it. Blocking.
    pub fn finish(mut self) {
        if !self.prepared.janitor.finish() {
            eprintln!("portico node: the janitor could not remove everything; see its messages above");
        }
    }
}
