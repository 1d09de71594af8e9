//! Test harness shared by the integration tests: one real control plane per
//! test binary, a fresh namespace per test, and the real kubectl.
#![allow(dead_code)]

use std::{
    process::Output,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use portico::controlplane::ControlPlane;

/// The control plane shared by every test in this binary, with Portico's
/// CRDs installed. Started on first use; killed when the binary exits.
pub fn shared() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(|| {
        let cp = ControlPlane::start().expect("start the shared control plane");
        let kc = cp.kubeconfig().clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap();
                let client = Client::try_from(config).unwrap();
                portico::install::install(&client).await.expect("install CRDs");
            })
        })
        .join()
        .unwrap();
        cp
    })
}

/// An admin client for the shared control plane.
pub async fn admin() -> Client {
    shared().admin_client().await.expect("admin client")
}

/// A new namespace with a unique name starting with `prefix`.
pub async fn test_namespace(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(admin().await)
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Runs the built kubectl as admin against the shared control plane.
pub fn kubectl(args: &[&str]) -> Output {
    shared().kubectl().args(args).output().expect("run kubectl")
}

/// Runs kubectl and returns stdout, panicking with stderr when it fails.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
