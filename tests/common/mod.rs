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

pub mod operator;
pub mod ui;

/// Session profiles of the shared operator: `developer` (edit in namespaces
/// labelled team=a; developers and portico-admins), `pair` (at most 2 active per user), `ops` (for the group
/// ops only).
pub const TEST_PROFILES: &str = "sessionProfiles:
  - name: developer
    allowedGroups: [developers, portico-admins]
    grants:
      - namespaces: {selector: {matchLabels: {team: a}}}
        role: {kind: ClusterRole, name: edit}
    idleTimeout: {default: 30m, max: 8h}
    maxLifetime: {default: 8h, max: 24h}
    maxActivePerUser: 10
  - name: pair
    allowedGroups: [developers]
    maxActivePerUser: 2
  - name: ops
    allowedGroups: [ops]
";

/// The shared control plane with the demo tenants (alice: edit in team-a,
/// bob: edit in team-b, carol: portico-admins) and one operator running.
pub fn shared_with_operator() -> &'static ControlPlane {
    static OP: OnceLock<operator::Operator> = OnceLock::new();
    let cp = shared();
    OP.get_or_init(|| {
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let admin = cp.admin_client().await.unwrap();
                portico::dev::setup_demo(&admin).await.expect("demo tenants");
                portico::install::wait_aggregated(&admin)
                    .await
                    .expect("aggregated roles");
                let dir = std::path::Path::new(portico::dev::CATALOG_DIR);
                portico::dev::load_catalog(&admin, dir, portico::dev::CATALOG_NAMESPACE)
                    .await
                    .expect("catalog");
                let (config, metrics_port) = operator::write_config(cp, TEST_PROFILES);
                operator::Operator::start(cp, config, metrics_port).await
            })
        })
        .join()
        .unwrap()
    });
    cp
}

/// Marks a pod Running and Ready, as a kubelet would (there are no nodes).
pub async fn mark_pod_ready(client: &Client, namespace: &str, name: &str) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Patch, PatchParams};
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = serde_json::json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
        ],
        "containerStatuses": [{"name": "terminal", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
            "started": true, "state": {"running": {"startedAt": now}}}],
    }});
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("mark pod ready");
}
