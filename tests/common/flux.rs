//! Flux itself for the GitOps tests: its source-controller and
//! kustomize-controller, built from their Go modules at a pinned release
//! (`tests/flux/*`, by `tests/controlplane/build.sh`), run against the shared
//! control plane with their own CRDs, each a process as the cluster's admin
//! — what Flux's default install binds them to.

use std::time::Duration;

use portico::controlplane::{ControlPlane, Process, free_port};

/// Flux's controllers, running until dropped.
pub struct Flux {
    _source: Process,
    _kustomize: Process,
}

/// The namespace Flux's objects live in, as in its own install.
pub const NAMESPACE: &str = "flux-system";

/// Installs Flux's CRDs and starts its controllers once for this test binary.
pub async fn start(cp: &'static ControlPlane) -> &'static Flux {
    static FLUX: tokio::sync::OnceCell<Flux> = tokio::sync::OnceCell::const_new();
    FLUX.get_or_init(|| async {
        let bin = cp.binaries().dir().to_path_buf();
        let crds = bin.join("flux-crds");
        super::kubectl_ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
        super::kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ]);
        super::operator::ensure_namespace(cp, NAMESPACE).await;
        let dir = cp.dir();
        let storage = dir.join("flux-storage");
        std::fs::create_dir_all(&storage).unwrap();
        let kubeconfig = cp.kubeconfig_path().as_os_str().to_owned();
        let env = |k: &'static str, v: &std::ffi::OsStr| (k, v.to_owned());
        let envs = [
            env("KUBECONFIG", &kubeconfig),
            env("RUNTIME_NAMESPACE", std::ffi::OsStr::new(NAMESPACE)),
        ];
        let envs: Vec<(&str, &std::ffi::OsStr)> = envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let (storage_port, source_health, kustomize_health) =
            (free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
        let common = |health: u16| {
            vec![
                format!("--health-addr=127.0.0.1:{health}"),
                format!("--metrics-addr=127.0.0.1:{}", free_port().unwrap()),
                "--enable-leader-election=false".to_string(),
                "--log-level=debug".into(),
                "--concurrent=4".into(),
            ]
        };
        let mut source_args = common(source_health);
        source_args.extend([
            format!("--storage-path={}", storage.display()),
            format!("--storage-addr=127.0.0.1:{storage_port}"),
            format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
        ]);
        let source = Process::spawn_with_env(
            "source-controller",
            &bin.join("source-controller"),
            &source_args,
            &envs,
            &dir.join("source-controller.log"),
        )
        .unwrap();
        let kustomize = Process::spawn_with_env(
            "kustomize-controller",
            &bin.join("kustomize-controller"),
            &common(kustomize_health),
            &envs,
            &dir.join("kustomize-controller.log"),
        )
        .unwrap();
        for port in [source_health, kustomize_health] {
            super::ui::wait_http(&format!("http://127.0.0.1:{port}/readyz")).await;
        }
        Flux {
            _source: source,
            _kustomize: kustomize,
        }
    })
    .await
}

/// Asks Flux to reconcile `kind/name` now, as `flux reconcile` does (the
/// `reconcile.fluxcd.io/requestedAt` annotation); returns the token to
/// wait for in its `status.lastHandledReconcileAt`.
pub fn request_reconcile(kind: &str, name: &str) -> String {
    let token = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    super::kubectl_ok(&[
        "annotate",
        "--overwrite",
        "-n",
        NAMESPACE,
        kind,
        name,
        &format!("reconcile.fluxcd.io/requestedAt={token}"),
    ]);
    token
}

/// How long a Flux object may take to get where a test waits for it.
pub const PATIENCE: Duration = Duration::from_secs(120);
