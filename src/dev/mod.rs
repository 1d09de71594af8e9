//! `portico dev`: a local control plane with the CRDs installed and demo
//! tenants, running until Ctrl-C; or, with `--kubeconfig`, the whole of
//! Portico installed into an existing cluster ([`existing`]).

pub mod catalog;
pub mod demo;
pub mod existing;
pub mod prometheus;

use std::path::PathBuf;

use kube::{Client, config::KubeConfigOptions};

pub use catalog::{CATALOG_DIR, CATALOG_NAMESPACE, load_catalog};

use crate::{
    controlplane::{ControlPlane, ControlPlaneError, kubeconfig},
    install::{self, InstallError},
};

/// Where `portico dev` runs.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start a local control plane, with a node beside it when `node` is
    /// set and this machine allows one.
    Local {
        /// Try to start a node.
        node: bool,
    },
    /// Install into an existing cluster (a kubeconfig path, or `None` for
    /// the current context) with the chart, and return.
    Existing(Option<PathBuf>, existing::Options),
}

/// `portico dev` failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The local control plane did not start.
    #[error("local control plane: {0}")]
    ControlPlane(#[from] ControlPlaneError),
    /// Installing the CRDs failed.
    #[error("install: {0}")]
    Install(#[from] InstallError),
    /// Creating demo objects failed.
    #[error("demo setup: {0}")]
    Kube(#[from] kube::Error),
    /// The kubeconfig for an existing cluster could not be read.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// A catalog default could not be set.
    #[error("catalog: {0}")]
    Catalog(#[from] catalog::DefaultError),
    /// Starting the operator failed.
    #[error("operator: {0}")]
    Operator(#[from] crate::operator::OperatorError),
    /// A file could not be written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Runs until Ctrl-C or SIGTERM; everything started is stopped on return.
pub async fn run(target: Target) -> Result<(), DevError> {
    let (client, local) = match target {
        Target::Local { node } => {
            eprintln!(
                "portico dev: starting a local control plane (the first run builds Kubernetes, which takes a few minutes)"
            );
            let cp = tokio::task::spawn_blocking(move || start_local(node))
                .await
                .expect("start task")?;
            (cp.admin_client().await?, Some(cp))
        }
        Target::Existing(path, options) => {
            let client = existing_client(path.clone()).await?;
            println!("{}", existing::install(&client, path.as_deref(), &options).await?);
            return Ok(());
        }
    };
    install::install(&client).await?;
    setup_demo(&client).await?;
    install::wait_aggregated(&client).await?;
    // With a node, the catalog's images default to the node's local ones.
    let defaults = match local.as_ref().and_then(ControlPlane::node) {
        Some(_) => catalog::local_images(),
        None => Vec::new(),
    };
    load_catalog(&client, CATALOG_DIR.as_ref(), CATALOG_NAMESPACE, &defaults).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut operator = None;
    let mut dashboard_task = None;
    let mut metrics_store = None;
    if let Some(cp) = &local {
        let (task, webhook, metrics_port) = start_operator(cp, &client, stop.clone()).await?;
        operator = Some(task);
        // Prometheus' port first: the dashboard is configured with its URL.
        let prometheus_port = match std::path::Path::new(prometheus::PROGRAM).exists() {
            true => Some(crate::controlplane::free_port()?),
            false => {
                eprintln!("portico dev: {}", prometheus::MISSING);
                None
            }
        };
        let prometheus_url = prometheus_port.map(|p| format!("http://127.0.0.1:{p}"));
        let (ui_task, dashboard, dashboard_port) = start_dashboard(cp, stop.clone(), prometheus_url.as_deref()).await?;
        dashboard_task = Some(ui_task);
        if let Some(port) = prometheus_port {
            match prometheus::start(cp.dir(), port, metrics_port, dashboard_port).await {
                Ok(p) => metrics_store = Some(p),
                Err(e) => eprintln!("portico dev: running without Prometheus: {e}"),
            }
        }
        let path = write_dev_kubeconfig(cp)?;
        let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
        let prometheus = metrics_store.as_ref().map(|p| p.url.as_str());
        print_welcome(cp, &path, &webhook, (&metrics, prometheus), &dashboard);
    }
    wait_for_shutdown().await;
    eprintln!("portico dev: stopping");
    stop.cancel();
    for task in [operator, dashboard_task].into_iter().flatten() {
        let _ = task.await;
    }
    drop(metrics_store);
    drop(local);
    Ok(())
}

/// The local control plane, with a node when asked and possible; when the
/// node cannot start, says why and how to fix it, and runs without one.
fn start_local(node: bool) -> Result<ControlPlane, ControlPlaneError> {
    if !node {
        return ControlPlane::start();
    }
    match ControlPlane::start_with_node() {
        Ok(cp) => Ok(cp),
        Err(e) => {
            eprintln!("portico dev: running without a node (pods stay Pending): {e}");
            eprintln!("portico dev: `portico dev --no-node` skips the node and this message");
            ControlPlane::start()
        }
    }
}

/// The dashboard in this process, with the development login page.
async fn start_dashboard(
    cp: &ControlPlane,
    stop: tokio_util::sync::CancellationToken,
    prometheus: Option<&str>,
) -> Result<(tokio::task::JoinHandle<()>, String, u16), DevError> {
    let port = crate::controlplane::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let users: Vec<serde_json::Value> = demo::USERS
        .iter()
        .map(|u| serde_json::json!({"name": u.name, "groups": u.groups}))
        .collect();
    let mut cfg = serde_json::json!({
        "listen": format!("127.0.0.1:{port}"),
        "publicUrl": url,
        "devUsers": users,
        "session": {"profile": "developer", "namespace": demo::SESSIONS_NAMESPACE},
        "catalogNamespaces": [CATALOG_NAMESPACE],
        "assetsDir": ui_assets(),
        // With a node, the shortcuts run the local toolbox (no registry is reachable).
        "terminals": {"shortcuts": demo::shortcuts(cp.node().map(|_| crate::controlplane::node::images::TOOLBOX_IMAGE))},
    });
    if let Some(url) = prometheus {
        cfg["prometheus"] = serde_json::json!({"url": url});
    }
    let cfg: crate::ui::config::UiConfig = serde_json::from_value(cfg).expect("a dashboard configuration");
    let kube_config =
        kube::Config::from_custom_kubeconfig(cp.kubeconfig().clone(), &KubeConfigOptions::default()).await?;
    let task = tokio::spawn(async move {
        if let Err(e) = crate::ui::run_until(cfg, kube_config, stop.cancelled_owned()).await {
            eprintln!("portico dev: dashboard failed: {e}");
        }
    });
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if task.is_finished() {
            return Err(DevError::Io(
                "dashboard".into(),
                std::io::Error::other("the dashboard stopped during start-up"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok((task, url, port))
}

/// The operator in this process, its webhook registered by loopback URL.
async fn start_operator(
    cp: &ControlPlane,
    client: &Client,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(tokio::task::JoinHandle<()>, String, u16), DevError> {
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "portico-system"}})).expect("namespace");
    install::apply(client, &ns).await?;
    let webhook_port = crate::controlplane::free_port()?;
    let metrics_port = crate::controlplane::free_port()?;
    let webhook = format!("https://127.0.0.1:{webhook_port}");
    let mut config = crate::config::OperatorConfig::default();
    config.webhook.url = Some(webhook.clone());
    config.webhook.bind_address = ([127, 0, 0, 1], webhook_port).into();
    config.metrics.bind_address = ([127, 0, 0, 1], metrics_port).into();
    config.metrics.admin_bind_address = ([127, 0, 0, 1], crate::controlplane::free_port()?).into();
    // A loopback address the node's pods do not reach: only the local Prometheus scrapes it.
    config.metrics.authorize = false;
    config.leader_election.enabled = false;
    config.terminal.privileged_groups = vec![demo::ADMIN_GROUP.to_string()];
    config.session_profiles = serde_yaml_ng::from_str(demo::PROFILES_YAML).expect("demo profiles parse");
    let kube_config =
        kube::Config::from_custom_kubeconfig(cp.kubeconfig().clone(), &KubeConfigOptions::default()).await?;
    let task = tokio::spawn(async move {
        if let Err(e) = crate::operator::run_until(config, kube_config, None, stop).await {
            eprintln!("portico dev: operator failed: {e}");
        }
    });
    // The webhook listens once its configurations are registered.
    while tokio::net::TcpStream::connect(("127.0.0.1", webhook_port))
        .await
        .is_err()
    {
        if task.is_finished() {
            return Err(DevError::Io(
                "operator".into(),
                std::io::Error::other("the operator stopped during start-up"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok((task, webhook, metrics_port))
}

async fn existing_client(path: Option<PathBuf>) -> Result<Client, DevError> {
    let config = match path {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(&p)?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::from_kubeconfig(&KubeConfigOptions::default()).await?,
    };
    Ok(Client::try_from(config)?)
}

/// Namespaces `team-a`, `team-b` and the demo users' RBAC.
pub async fn setup_demo(client: &Client) -> Result<(), kube::Error> {
    for ns in demo::namespaces() {
        install::apply(client, &ns).await?;
    }
    for rb in demo::role_bindings() {
        install::apply(client, &rb).await?;
    }
    for crb in demo::cluster_role_bindings() {
        install::apply(client, &crb).await?;
    }
    let (role, rb) = demo::session_role();
    install::apply(client, &role).await?;
    install::apply(client, &rb).await?;
    install::apply(client, &demo::team_shortcuts()).await?;
    Ok(())
}

/// `ui/node_modules`, where `npm ci --prefix ui` puts the terminal page's
/// packages; installed on first use when npm is there.
pub fn ui_assets() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/ui"));
    if !dir.join("node_modules/@xterm/xterm").exists() {
        let ok = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "portico dev: could not install the terminal page's npm packages; run `npm ci --prefix ui` (terminals open without it, but cannot show the shell)"
            );
        }
    }
    dir.join("node_modules")
}

/// `~/.cache/portico/dev.kubeconfig`: contexts `admin`, `alice`, `bob`, `carol`.
fn write_dev_kubeconfig(cp: &ControlPlane) -> Result<PathBuf, DevError> {
    let admin = cp.client_cert("portico-admin", &["system:masters"])?;
    let certs: Vec<_> = demo::USERS
        .iter()
        .map(|u| cp.client_cert(u.name, u.groups).map(|c| (u, c)))
        .collect::<Result<_, _>>()?;
    let mut users = vec![kubeconfig::User {
        name: "admin",
        cert: &admin,
        namespace: None,
    }];
    users.extend(certs.iter().map(|(u, c)| kubeconfig::User {
        name: u.name,
        cert: c,
        namespace: Some(u.namespace),
    }));
    let kc = kubeconfig::build("portico-dev", cp.server(), cp.ca_pem(), &users);
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| DevError::Io(format!("create {}", dir.display()), e))?;
    let path = dir.join("dev.kubeconfig");
    std::fs::write(&path, kubeconfig::to_yaml(&kc))
        .map_err(|e| DevError::Io(format!("write {}", path.display()), e))?;
    Ok(path)
}

/// `$PORTICO_CACHE` or `~/.cache/portico`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("PORTICO_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        home.join(".cache/portico")
    })
}

fn print_welcome(
    cp: &ControlPlane,
    kubeconfig: &std::path::Path,
    webhook: &str,
    (metrics, prometheus): (&str, Option<&str>),
    dashboard: &str,
) {
    let kubectl = format!(
        "{} --kubeconfig {}",
        cp.binaries().path("kubectl").display(),
        kubeconfig.display()
    );
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    println!("Portico dev is running. API server: {}", cp.server());
    println!("Dashboard: {dashboard} (log in as alice, bob or carol)");
    println!("Operator: webhook {webhook}, metrics {metrics}");
    match prometheus {
        Some(url) => println!("Prometheus: {url} (scrapes the operator and the dashboard; Insights reads it)"),
        None => println!("Prometheus: not running (Insights shows no figures over time)"),
    }
    println!("Kubeconfig: {}", kubeconfig.display());
    println!("Contexts: admin (cluster admin), alice (edit in team-a), bob (edit in team-b), carol (portico-admins)");
    println!("Try:");
    println!("  {kubectl} --context alice apply -n team-a -f {examples}/terminal.yaml");
    println!("  {kubectl} --context alice get portico -n team-a");
    println!("  {kubectl} --context alice apply -n portico-sessions -f {examples}/sessionclaim.yaml");
    println!("  {kubectl} --context alice apply -n team-a -f {examples}/deployment.yaml");
    println!(
        "  {kubectl} --context bob apply -n team-b -f {examples}/terminal.yaml   # refused: bob has no rights in team-a"
    );
    match cp.node() {
        Some(node) => {
            use crate::controlplane::node::{images, storage};
            println!(
                "Node: {} on the bridge {} ({}); pods run, and claims get volumes (StorageClass {}).",
                crate::controlplane::node::NODE_NAME,
                node.bridge().name,
                node.bridge().subnet,
                storage::STORAGE_CLASS,
            );
            println!("{}", services_line(node.services()));
            println!(
                "Local images (no registry is reachable): {} (terminals, the scheduled job), {}, {}, {}; the catalog defaults to them.",
                images::TOOLBOX_IMAGE,
                images::POSTGRESQL_IMAGE,
                images::WEBAPP_IMAGE,
                images::PAUSE_IMAGE,
            );
        }
        None => println!("There are no nodes: terminal pods stay Pending."),
    }
    println!("Press Ctrl-C to stop.");
}

/// What `portico dev` says about Services and DNS on its node.
fn services_line(services: Result<&crate::controlplane::node::services::Services, &ControlPlaneError>) -> String {
    match services {
        Ok(s) => format!(
            "Services: ClusterIPs answer from pods (kube-proxy, iptables mode, in the node's services namespace); \
             DNS: CoreDNS at {} resolves <service>.<namespace>.svc.{}",
            s.dns(),
            crate::controlplane::node::services::CLUSTER_DOMAIN,
        ),
        Err(e) => format!("Services: ClusterIPs and Service names do not answer from pods: {e}"),
    }
}

async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controlplane::node::NodeError;

    #[test]
    fn without_services_portico_dev_says_exactly_why_and_the_fix() {
        let e = ControlPlaneError::Node(NodeError::Missing {
            what: "the program iptables (kube-proxy's iptables mode)".into(),
            fix: "apt-get install iptables".into(),
        });
        let line = services_line(Err(&e));
        assert!(
            line.starts_with("Services: ClusterIPs and Service names do not answer from pods"),
            "{line}"
        );
        assert!(
            line.contains("the program iptables") && line.contains("fix: apt-get install iptables"),
            "{line}"
        );
    }
}
