//! Host and target in different clusters: the Terminal lives in cluster A
//! (in a temporary namespace: a named one may not reach another cluster),
//! its target role bindings in cluster B, reached through a kubeconfig Secret.

mod common;

use std::time::Duration;

use common::shared_with_operator;
use k8s_openapi::api::{
    core::v1::{Namespace, Secret, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
    runtime::wait::await_condition,
};
use portico::{
    api::Terminal,
    controller::terminal::build::{Names, UID_LABEL},
    controlplane::ControlPlane,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_reaches_a_namespace_in_another_cluster() {
    let a = shared_with_operator();
    let b = tokio::task::spawn_blocking(ControlPlane::start)
        .await
        .unwrap()
        .expect("second control plane");
    let b_admin = b.admin_client().await.unwrap();
    portico::dev::setup_demo(&b_admin).await.unwrap();

    // The operator reaches cluster B with B's admin kubeconfig, stored in team-a of cluster A.
    let secret = common::fixtures::kubeconfig_secret("cluster-b", &b);
    let a_admin = a.admin_client().await.unwrap();
    Api::<Secret>::namespaced(a_admin.clone(), "team-a")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // alice may create namespaces in A, for the Terminal's temporary host namespace.
    let creator: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "clusters-namespace-creator"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}]
    }))
    .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "clusters-namespace-creator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "clusters-namespace-creator"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    portico::install::apply(&a_admin, &creator).await.unwrap();
    portico::install::apply(&a_admin, &binding).await.unwrap();
    let alice = a
        .client_as("alice", &["developers", "system:authenticated"])
        .await
        .unwrap();
    let t: Terminal = serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": "remote"},
        "spec": {
            "host": {"temporaryNamespace": true, "pod": {"image": common::TOOLBOX}},
            "target": {"cluster": {"kubeconfigSecretRef": {"name": "cluster-b"}}, "namespace": "team-a",
                       "roleBindings": [{"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "RoleBinding", "nameSuffix": "view"}]}
        }
    }))
    .unwrap();
    let terminals: Api<Terminal> = Api::namespaced(alice, "team-a");
    let t = terminals
        .create(&PostParams::default(), &t)
        .await
        .expect("alice may view team-a in both clusters");
    let n = Names::for_uid(&t.uid().unwrap());
    let host = t.annotations()[portico::api::keys::TEMPORARY_NAMESPACE].clone();

    // Target objects appear in B, not in A.
    let b_rbs: Api<RoleBinding> = Api::namespaced(b_admin.clone(), "team-a");
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(b_rbs.clone(), &n.binding("view"), |r: Option<&RoleBinding>| r.is_some()),
    )
    .await
    .expect("binding in cluster B")
    .unwrap();
    // Written in the same round as the binding (after making B's access
    // namespace, for the first Terminal there).
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(
            Api::<ServiceAccount>::namespaced(b_admin.clone(), "portico-terminals"),
            &n.access,
            |s: Option<&ServiceAccount>| s.is_some(),
        ),
    )
    .await
    .expect("access service account in cluster B")
    .unwrap();
    assert!(
        Api::<ServiceAccount>::namespaced(a_admin.clone(), "portico-terminals")
            .get_opt(&n.access)
            .await
            .unwrap()
            .is_none()
    );

    // The kubeconfig in A's Secret reaches B with view rights.
    let secrets: Api<Secret> = Api::namespaced(a_admin.clone(), &host);
    let kc = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(secrets.clone(), &n.kubeconfig_secret, |s: Option<&Secret>| s.is_some()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc");
    std::fs::write(&path, &kc.data.unwrap()["kubeconfig"].0).unwrap();
    let kubectl = |args: &[&str]| {
        std::process::Command::new(a.binaries().path("kubectl"))
            .arg("--kubeconfig")
            .arg(&path)
            .args(args)
            .output()
            .unwrap()
    };
    let out = kubectl(&["get", "configmaps", "-n", "team-a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server =
        String::from_utf8(kubectl(&["config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"]).stdout).unwrap();
    assert_eq!(server, b.server(), "the kubeconfig points at cluster B");
    let out = kubectl(&["create", "configmap", "x", "-n", "team-a"]);
    assert!(!out.status.success(), "view may not create");

    // Deleting the Terminal cleans both clusters.
    terminals.delete("remote", &DeleteParams::default()).await.unwrap();
    let api: Api<Terminal> = Api::namespaced(a_admin.clone(), "team-a");
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, "remote", |t: Option<&Terminal>| t.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    let lp = ListParams::default().labels(&format!("{UID_LABEL}={}", t.uid().unwrap()));
    assert!(
        Api::<RoleBinding>::all(b_admin.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        Api::<ServiceAccount>::all(b_admin)
            .list(&lp)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The temporary host namespace goes, and the kubeconfig Secret with it.
    tokio::time::timeout(
        Duration::from_secs(120),
        await_condition(
            Api::<Namespace>::all(a_admin.clone()),
            &host,
            |n: Option<&Namespace>| n.is_none(),
        ),
    )
    .await
    .expect("the temporary host namespace is deleted")
    .unwrap();
    assert!(Api::<Secret>::all(a_admin).list(&lp).await.unwrap().items.is_empty());
}
