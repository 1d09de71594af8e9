//! A real, local Kubernetes control plane: etcd, kube-apiserver and
//! kube-controller-manager on random loopback ports, with secure serving,
//! RBAC, service-account token signing and a client-certificate admin.
//! Used by the tests and by `portico dev`. Everything it starts is killed
//! when it is dropped or when the process exits. With a node
//! ([`ControlPlane::start_with_node`]) pods really run, and the API server
//! serves on the node's bridge address, where pods reach it.
//!
//! Its own crate, so that the shipped binary (built without `portico`'s
//! `dev` feature) carries none of it: no etcd, no process handling, no
//! paths of the build machine.

pub mod audit;
pub mod authn;
mod binaries;
mod flags;
pub mod kubeconfig;
// The certificate authority Portico's webhook uses too: one source file,
// compiled into both crates (it needs nothing but rcgen).
pub mod node;
#[path = "../../../src/pki.rs"]
pub mod pki;
mod process;
mod wait;

use std::{
    collections::BTreeSet,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
};

pub use binaries::Binaries;
use kube::config::{KubeConfigOptions, Kubeconfig};
pub use process::Process;

use crate::pki::{Ca, CertPair, PkiError};
use wait::{wait_api_ready, wait_controllers_ready, wait_for_port};

/// The issuer of service-account tokens (and their default audience).
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The API server's service range (ClusterIPs). With a node, its pods
/// route it, and only it, to the node's services namespace.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";

/// The `kubernetes` Service's ClusterIP (the first address of
/// [`SERVICE_CIDR`]), in the API server's certificate: in-cluster clients
/// in pods reach the API server there when there is a node.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

pub use flags::CONTROLLERS;

/// What can go wrong starting or using the control plane.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// The Kubernetes binaries are missing and could not be built.
    #[error("kubernetes binaries: {0}")]
    Build(String),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Certificates could not be generated.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A component exited or did not become ready in time.
    #[error("{component} did not become ready: {reason}\n--- last lines of its log ---\n{log}")]
    NotReady {
        /// etcd, kube-apiserver or kube-controller-manager.
        component: String,
        /// What was observed.
        reason: String,
        /// The end of its log.
        log: String,
    },
    /// The API server answered with an error.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The kubeconfig could not be turned into a client configuration.
    #[error("client configuration: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    /// The node could not be set up.
    #[error("node: {0}")]
    Node(#[from] node::NodeError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlPlaneError {
    let context = context.into();
    move |source| ControlPlaneError::Io { context, source }
}

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed
/// again). Never the same port twice in one process.
pub fn free_port() -> Result<u16, ControlPlaneError> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").map_err(io("bind a loopback port"))?;
        let port = l.local_addr().map_err(io("read the bound port"))?.port();
        if GIVEN.lock().unwrap().insert(port) {
            return Ok(port);
        }
    }
}

struct Components {
    etcd: Process,
    apiserver: Process,
    controller_manager: Process,
}

/// A running control plane. Dropping it stops everything and deletes its files.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    binaries: Binaries,
    ca: Ca,
    apiserver_args: Vec<String>,
    server: String,
    kubeconfig: Kubeconfig,
    kubeconfig_path: PathBuf,
    components: Mutex<Components>,
    node: Option<node::Node>,
}

impl ControlPlane {
    /// Builds the binaries if needed, starts etcd, kube-apiserver and
    /// kube-controller-manager, and returns once `/readyz` passes and the
    /// `default` namespace exists. Blocking; safe to call from async code.
    pub fn start() -> Result<ControlPlane, ControlPlaneError> {
        Self::start_inner(false, None)
    }

    /// Like [`ControlPlane::start`], with a real node beside it
    /// (kube-scheduler, containerd, kubelet; see [`node`]); returns once the
    /// node is Ready. The API server then serves on the node's bridge
    /// address. Needs root and the node's packages; the error says what is
    /// missing and how to install it.
    pub fn start_with_node() -> Result<ControlPlane, ControlPlaneError> {
        Self::start_inner(true, None)
    }

    /// Like [`ControlPlane::start_with_node`], with an API server that also
    /// authenticates the ID tokens of `issuer` (its structured
    /// authentication configuration). The issuer need not be up yet: the API
    /// server fetches its discovery document and keys in the background.
    pub fn start_with_node_trusting(issuer: &authn::JwtIssuer) -> Result<ControlPlane, ControlPlaneError> {
        Self::start_inner(true, Some(issuer))
    }

    fn start_inner(with_node: bool, issuer: Option<&authn::JwtIssuer>) -> Result<ControlPlane, ControlPlaneError> {
        let binaries = Binaries::ensure()?;
        // A free port can be taken by another process between choosing and
        // binding it: start again on other ports when that happens.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(binaries.clone(), with_node, issuer) {
                Err(ControlPlaneError::NotReady { log, .. })
                    if attempt < 4 && log.contains("address already in use") => {}
                other => return other,
            }
        }
    }

    fn start_once(
        binaries: Binaries,
        with_node: bool,
        issuer: Option<&authn::JwtIssuer>,
    ) -> Result<ControlPlane, ControlPlaneError> {
        let dir = tempfile::Builder::new()
            .prefix("portico-cp-")
            .tempdir()
            .map_err(io("create the control plane directory"))?;
        process::remove_at_exit(dir.path());
        let d = dir.path();
        let write = |name: &str, text: &str| std::fs::write(d.join(name), text).map_err(io(format!("write {name}")));

        let prepared = if with_node {
            Some(node::prepare(d, &d.join("etcd"), &binaries)?)
        } else {
            None
        };
        let address = prepared
            .as_ref()
            .map_or("127.0.0.1".to_string(), |p| p.address().to_string());
        let ca = Ca::new("portico-local-ca")?;
        let serving = ca.server(
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                KUBERNETES_SERVICE_IP,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                &address,
            ],
        )?;
        let admin = ca.client("portico-admin", &["system:masters"])?;
        let kcm = ca.client("system:kube-controller-manager", &[])?;
        write("ca.crt", &ca.cert_pem)?;
        write("apiserver.crt", &serving.cert_pem)?;
        write("apiserver.key", &serving.key_pem)?;
        let sa = crate::pki::signing_key_pem()?;
        write("sa.key", &sa.key_pem)?;
        write("sa.pub", &sa.cert_pem)?;
        write("audit-policy.yaml", audit::POLICY)?;

        let (etcd_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let server = format!("https://{address}:{api_port}");
        let for_user = |name, cert| {
            let user = kubeconfig::User {
                name,
                cert,
                namespace: None,
            };
            kubeconfig::build("portico-local", &server, &ca.cert_pem, &[user])
        };
        let kubeconfig = for_user("admin", &admin);
        let kubeconfig_path = d.join("admin.kubeconfig");
        write("admin.kubeconfig", &kubeconfig::to_yaml(&kubeconfig))?;
        write(
            "kcm.kubeconfig",
            &kubeconfig::to_yaml(&for_user("kube-controller-manager", &kcm)),
        )?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd_args = flags::etcd(d, &etcd_url, &format!("http://127.0.0.1:{peer_port}"));
        let mut apiserver_args = flags::apiserver(d, &etcd_url, &address, api_port);
        if let Some(p) = &prepared {
            // The node's flags replace the same flags of a plain control plane.
            apiserver_args = flags::overridden(apiserver_args, p.apiserver_args(&ca, &d.join("ca.crt"))?);
        }
        if let Some(issuer) = issuer {
            write("authentication.yaml", &authn::configuration(issuer))?;
            apiserver_args.push(format!(
                "--authentication-config={}",
                d.join("authentication.yaml").display()
            ));
        }
        let kcm_args = flags::controller_manager(d, with_node);

        let log = |name: &str| d.join(format!("{name}.log"));
        let mut etcd =
            Process::spawn("etcd", &Binaries::etcd()?, &etcd_args, &log("etcd")).map_err(io("start etcd"))?;
        wait_for_port(&mut etcd, etcd_port)?;
        let mut apiserver = Process::spawn(
            "kube-apiserver",
            &binaries.path("kube-apiserver"),
            &apiserver_args,
            &log("kube-apiserver"),
        )
        .map_err(io("start kube-apiserver"))?;
        wait_api_ready(&kubeconfig, &mut apiserver)?;
        let mut controller_manager = Process::spawn(
            "kube-controller-manager",
            &binaries.path("kube-controller-manager"),
            &kcm_args,
            &log("kube-controller-manager"),
        )
        .map_err(io("start kube-controller-manager"))?;
        wait_controllers_ready(&kubeconfig, &mut controller_manager)?;
        let node = match prepared {
            Some(p) => Some(p.start(&node::ClusterInputs {
                binaries: &binaries,
                ca: &ca,
                ca_file: &d.join("ca.crt"),
                server: &server,
                admin: &kubeconfig,
                service_cidr: SERVICE_CIDR.parse().expect("SERVICE_CIDR is a CIDR"),
            })?),
            None => None,
        };

        Ok(ControlPlane {
            dir,
            binaries,
            ca,
            apiserver_args,
            server,
            kubeconfig,
            kubeconfig_path,
            components: Mutex::new(Components {
                etcd,
                apiserver,
                controller_manager,
            }),
            node,
        })
    }

    /// The node, when started with one.
    pub fn node(&self) -> Option<&node::Node> {
        self.node.as_ref()
    }

    /// The API server's URL: `https://127.0.0.1:PORT`, or on the node's
    /// bridge address (which pods reach) when there is a node.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Every request the API server has answered so far (its audit log, the
    /// files it rotated out included; it keeps one, of up to 1000 MB).
    pub fn audit_events(&self) -> Vec<audit::Event> {
        // Rotated files (`audit-<time>.log`, oldest name first), then the current one.
        let mut rotated: Vec<PathBuf> = std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".log"))
            })
            .collect();
        rotated.sort();
        rotated.push(self.dir().join("audit.log"));
        rotated.iter().flat_map(|p| audit::read(p)).collect()
    }

    /// The admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    /// Path of the admin kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The directory with the control plane's files and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The Kubernetes binaries in use.
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// The cluster CA, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    /// A client certificate for `user` in `groups`, signed by the cluster CA.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<CertPair, ControlPlaneError> {
        Ok(self.ca.client(user, groups)?)
    }

    /// Writes a kubeconfig that authenticates as `user` in `groups` with a
    /// client certificate, and returns its path (for the real kubectl).
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> Result<PathBuf, ControlPlaneError> {
        let cert = self.client_cert(user, groups)?;
        let kc = kubeconfig::build(
            "portico-local",
            &self.server,
            &self.ca.cert_pem,
            &[kubeconfig::User {
                name: user,
                cert: &cert,
                namespace: None,
            }],
        );
        // Written under a unique name and renamed into place, so a reader
        // (kubectl in another test) never sees a half-written file.
        let path = self.dir().join(format!("user-{}.kubeconfig", sanitize(user)));
        let tmp = self
            .dir()
            .join(format!(".user-{}-{}.tmp", sanitize(user), free_port()?));
        std::fs::write(&tmp, kubeconfig::to_yaml(&kc)).map_err(io("write a user kubeconfig"))?;
        std::fs::rename(&tmp, &path).map_err(io("write a user kubeconfig"))?;
        Ok(path)
    }

    /// A client acting as the admin.
    pub async fn admin_client(&self) -> Result<kube::Client, ControlPlaneError> {
        client_for(&self.kubeconfig, None).await
    }

    /// A client acting as `user` in `groups`, through impersonation by the
    /// admin (so RBAC decides for that user).
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<kube::Client, ControlPlaneError> {
        client_for(&self.kubeconfig, Some((user, groups))).await
    }

    /// `kubectl` from the built binaries, pointed at this control plane as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.binaries.path("kubectl"));
        cmd.env("KUBECONFIG", &self.kubeconfig_path);
        cmd
    }

    /// Process ids of etcd, kube-apiserver and kube-controller-manager.
    pub fn pids(&self) -> Vec<u32> {
        let c = self.components.lock().unwrap();
        vec![c.etcd.pid(), c.apiserver.pid(), c.controller_manager.pid()]
    }

    /// Stops kube-apiserver (SIGTERM) and starts it again on the same port
    /// with the same data; returns once it is ready. Blocking.
    pub fn restart_apiserver(&self) -> Result<(), ControlPlaneError> {
        let mut c = self.components.lock().unwrap();
        c.apiserver.stop(Duration::from_secs(20));
        c.apiserver = Process::spawn(
            "kube-apiserver",
            &self.binaries.path("kube-apiserver"),
            &self.apiserver_args,
            &self.dir().join("kube-apiserver.log"),
        )
        .map_err(io("restart kube-apiserver"))?;
        wait_api_ready(&self.kubeconfig, &mut c.apiserver)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(node) = &mut self.node {
            node.stop(&self.kubeconfig);
        }
        if let Ok(mut c) = self.components.lock() {
            c.controller_manager.stop(Duration::from_secs(5));
            c.apiserver.stop(Duration::from_secs(10));
            c.etcd.stop(Duration::from_secs(5));
        }
        if let Some(node) = self.node.take() {
            node.finish();
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

async fn client_for(kc: &Kubeconfig, as_user: Option<(&str, &[&str])>) -> Result<kube::Client, ControlPlaneError> {
    let mut config = kube::Config::from_custom_kubeconfig(kc.clone(), &KubeConfigOptions::default()).await?;
    if let Some((user, groups)) = as_user {
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    Ok(kube::Client::try_from(config)?)
}
