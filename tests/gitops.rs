//! GitOps: the same manifest applied again with server-side apply under
//! another field manager (as Flux does) changes nothing and errors nowhere,
//! and `kubectl diff --server-side` shows no drift after the operator has
//! reconciled, for all three kinds.

mod common;

use std::{path::Path, time::Duration};

use common::shared_with_operator;
use kube::{
    Api, Resource, ResourceExt,
    api::DeleteParams,
    runtime::{conditions, wait::await_condition},
};
use portico::api::{Deployment, SessionClaim, Terminal};

fn kubectl_as_alice(args: &[&str]) -> std::process::Output {
    let cp = shared_with_operator();
    let kc = cp.user_kubeconfig("alice", &["developers"]).unwrap();
    std::process::Command::new(cp.binaries().path("kubectl"))
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Applies `file` twice as alice under field manager `flux`, waiting between
/// for the operator's reconcile; checks nothing changed and no drift shows.
async fn apply_twice<K>(ns: &str, name: &str, file: &str, reconciled: impl Fn(&K) -> bool + Send + 'static)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let apply = ["apply", "--server-side", "--field-manager=flux", "-n", ns, "-f", file];
    let first = kubectl_as_alice(&apply);
    assert!(
        first.status.success(),
        "first apply: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let api: Api<K> = Api::namespaced(shared_with_operator().admin_client().await.unwrap(), ns);
    let wait = await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&reconciled));
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("reconciled")
        .unwrap();
    let before = api.get(name).await.unwrap();

    let second = kubectl_as_alice(&apply);
    assert!(
        second.status.success(),
        "second apply: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let diff = kubectl_as_alice(&["diff", "--server-side", "--field-manager=flux", "-n", ns, "-f", file]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "kubectl diff shows drift:\n{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    let after = api.get(name).await.unwrap();
    assert_eq!(
        before.meta().generation,
        after.meta().generation,
        "the spec did not change"
    );
    assert_eq!(
        before.annotations(),
        after.annotations(),
        "admission's annotations stay"
    );
    api.delete(name, &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, name, conditions::is_deleted(&after.uid().unwrap())),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn a_terminal_applied_twice_by_flux_does_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.yaml",
        "apiVersion: portico.dev/v1alpha1\nkind: Terminal\nmetadata: {name: flux-term}\nspec:\n  host: {namespace: team-a, pod: {image: portico.local/toolbox:2}}\n  target:\n    namespace: team-a\n    roleBindings: [{roleRef: {kind: ClusterRole, name: view}, bindingKind: RoleBinding, nameSuffix: view}]\n",
    );
    apply_twice::<Terminal>("team-a", "flux-term", &file, |t| {
        t.status.as_ref().is_some_and(|s| s.pod_name.is_some())
    })
    .await;
}

#[tokio::test]
async fn a_session_claim_applied_twice_by_flux_does_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.yaml",
        "apiVersion: portico.dev/v1alpha1\nkind: SessionClaim\nmetadata: {name: flux-session}\nspec: {profile: developer}\n",
    );
    apply_twice::<SessionClaim>(portico::dev::demo::SESSIONS_NAMESPACE, "flux-session", &file, |c| {
        c.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|x| x.type_ == "Ready" && x.status == "True"))
    })
    .await;
}

#[tokio::test]
async fn a_deployment_applied_twice_by_flux_does_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "d.yaml",
        "apiVersion: portico.dev/v1alpha1\nkind: Deployment\nmetadata: {name: flux-web}\nspec:\n  template: {name: webapp}\n  parameters: {image: nginx}\n",
    );
    apply_twice::<Deployment>("team-a", "flux-web", &file, |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.template_revision.is_some() && s.observed_generation.is_some())
    })
    .await;
}
