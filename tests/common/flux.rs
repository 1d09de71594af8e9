//! Flux itself for the GitOps tests: its source-controller,
//! kustomize-controller and helm-controller, built from their Go modules at
//! a pinned release
//! (`tests/flux/*`, by `tests/controlplane/build.sh`), run against the shared
//! control plane with their own CRDs, each a process as the cluster's admin
//! — what Flux's default install binds them to.

use std::time::Duration;

use portico::controlplane::{ControlPlane, Process, free_port};

/// Flux's controllers, running until dropped.
pub struct Flux {
    _controllers: Vec<Process>,
}

/// The namespace Flux's objects live in, as in its own install.
pub const NAMESPACE: &str = "flux-system";

/// Flux's controllers this test binary runs on the shared control plane:
/// source-controller and kustomize-controller, started once.
pub async fn start(cp: &'static ControlPlane) -> &'static Flux {
    static FLUX: tokio::sync::OnceCell<Flux> = tokio::sync::OnceCell::const_new();
    FLUX.get_or_init(|| run(cp, &["source-controller", "kustomize-controller"]))
        .await
}

/// Installs Flux's CRDs on `cp` and starts `controllers` (source-controller
/// first: the others fetch its artifacts); returns once each is ready.
pub async fn run(cp: &ControlPlane, controllers: &[&str]) -> Flux {
    let bin = cp.binaries().dir().to_path_buf();
    let kubectl = |args: &[&str]| {
        let out = cp.kubectl().args(args).output().expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    kubectl(&["apply", "--server-side", "-f", bin.join("flux-crds").to_str().unwrap()]);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/gitrepositories.source.toolkit.fluxcd.io",
        "crd/helmcharts.source.toolkit.fluxcd.io",
        "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        "crd/helmreleases.helm.toolkit.fluxcd.io",
    ]);
    super::operator::ensure_namespace(cp, NAMESPACE).await;
    let dir = cp.dir();
    let storage = dir.join("flux-storage");
    std::fs::create_dir_all(&storage).unwrap();
    let kubeconfig = cp.kubeconfig_path().as_os_str().to_owned();
    let envs: [(&str, &std::ffi::OsStr); 2] = [
        ("KUBECONFIG", &kubeconfig),
        ("RUNTIME_NAMESPACE", std::ffi::OsStr::new(NAMESPACE)),
    ];
    let storage_port = free_port().unwrap();
    let mut running = Vec::new();
    for name in controllers {
        let health = free_port().unwrap();
        let mut args = vec![
            format!("--health-addr=127.0.0.1:{health}"),
            format!("--metrics-addr=127.0.0.1:{}", free_port().unwrap()),
            "--enable-leader-election=false".to_string(),
            "--log-level=debug".into(),
            "--concurrent=4".into(),
        ];
        if *name == "source-controller" {
            args.extend([
                format!("--storage-path={}", storage.display()),
                format!("--storage-addr=127.0.0.1:{storage_port}"),
                format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
            ]);
        }
        let process =
            Process::spawn_with_env(name, &bin.join(name), &args, &envs, &dir.join(format!("{name}.log"))).unwrap();
        super::ui::wait_http(&format!("http://127.0.0.1:{health}/readyz")).await;
        running.push(process);
    }
    Flux { _controllers: running }
}

/// Asks Flux to reconcile `kind/name` now, as `flux reconcile` does (the
/// `reconcile.fluxcd.io/requestedAt` annotation); returns the token to
/// wait for in its `status.lastHandledReconcileAt`.
pub fn request_reconcile(cp: &ControlPlane, kind: &str, name: &str) -> String {
    let token = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let out = cp
        .kubectl()
        .args([
            "annotate",
            "--overwrite",
            "-n",
            NAMESPACE,
            kind,
            name,
            &format!("reconcile.fluxcd.io/requestedAt={token}"),
        ])
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    token
}

/// How long a Flux object may take to get where a test waits for it.
pub const PATIENCE: Duration = Duration::from_secs(120);
