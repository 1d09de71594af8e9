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

/// A Flux object's `Ready` condition: its status, reason, message and time.
fn flux_ready(o: &kube::api::DynamicObject) -> Option<(String, String, String, String)> {
    let c = o.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message"), s("lastTransitionTime")))
}

fn flux_api(kind: &str) -> kube::api::ApiResource {
    match kind {
        "Kustomization" => kube::api::ApiResource {
            group: "kustomize.toolkit.fluxcd.io".into(),
            version: "v1".into(),
            api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
            kind: "Kustomization".into(),
            plural: "kustomizations".into(),
        },
        _ => kube::api::ApiResource {
            group: "source.toolkit.fluxcd.io".into(),
            version: "v1".into(),
            api_version: "source.toolkit.fluxcd.io/v1".into(),
            kind: "GitRepository".into(),
            plural: "gitrepositories".into(),
        },
    }
}

/// Asks Flux to fetch the repository now and waits until its artifact is
/// `commit`; then asks it to apply that again and waits until the
/// Kustomization has handled the request and `cond` holds.
async fn reconciled(
    kustomizations: &Api<kube::api::DynamicObject>,
    name: &str,
    commit: &str,
    what: &str,
    cond: impl Fn(&kube::api::DynamicObject) -> bool + Send + 'static,
) -> kube::api::DynamicObject {
    use kube::api::DynamicObject;
    let sources: Api<DynamicObject> = Api::namespaced_with(
        kustomizations.clone().into_client(),
        common::flux::NAMESPACE,
        &flux_api("GitRepository"),
    );
    common::flux::request_reconcile(shared_with_operator(), "gitrepository", name);
    let revision = format!("main@sha1:{commit}");
    let fetched = tokio::time::timeout(
        common::flux::PATIENCE,
        await_condition(sources.clone(), name, move |o: Option<&DynamicObject>| {
            o.is_some_and(|o| o.data["status"]["artifact"]["revision"] == revision.as_str())
        }),
    )
    .await;
    if fetched.is_err() {
        let now = sources.get(name).await.map(|o| o.data["status"].clone());
        panic!("{name}: the source did not fetch {commit}; now {now:#?}");
    }
    let token = common::flux::request_reconcile(shared_with_operator(), "kustomization", name);
    // Handled, and finished: Flux marks a reconcile in progress with
    // observedGeneration -1 and a Reconciling condition until it is done
    // (one that failed stays Reconciling, to retry).
    let handled = move |o: &DynamicObject| {
        let status = &o.data["status"];
        status["lastHandledReconcileAt"] == token.as_str()
            && status["observedGeneration"].as_i64() == o.metadata.generation
            && !status["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["type"] == "Reconciling" && c["status"] == "True" && c["reason"] != "ProgressingWithRetry"
                })
            })
    };
    let done = tokio::time::timeout(
        common::flux::PATIENCE,
        await_condition(kustomizations.clone(), name, move |o: Option<&DynamicObject>| {
            o.is_some_and(|o| handled(o) && cond(o))
        }),
    )
    .await;
    match done {
        Ok(Ok(Some(o))) => o,
        other => {
            let now = kustomizations.get(name).await.map(|o| o.data["status"].clone());
            panic!("{name}: {what} did not happen ({other:?}); now {now:#?}")
        }
    }
}

/// The real Flux — source-controller and kustomize-controller of the Flux
/// v2.7 line, built from their Go modules — reconciles Portico objects from a Git
/// repository served by Git's own smart-HTTP backend, with the objects of
/// `examples/flux/gitrepository.yaml` (its URL pointed at that repository).
/// The Kustomization is Ready only once Portico's Deployment is; a commit
/// with a broken parameter turns it not-Ready with the webhook's words; the
/// fixing commit recovers it; reconciling again changes nothing; and a
/// commit that drops the Terminal makes Flux prune it, Portico's
/// finalizer leaving none of what it made.
#[tokio::test]
async fn flux_reconciles_portico_objects_from_git_health_checks_them_and_prunes() {
    use kube::api::DynamicObject;
    let cp = shared_with_operator();
    common::flux::start(cp).await;
    let admin = cp.admin_client().await.unwrap();
    let git = common::git::GitServer::start();
    let repo = git.repository("platform");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = |name: &str| std::fs::read_to_string(root.join("examples").join(name)).unwrap();
    let (deployment, terminal) = (example("deployment.yaml"), example("terminal.yaml"));
    let first = repo.commit(
        &[
            ("portico/deployment.yaml", Some(&deployment)),
            ("portico/terminal.yaml", Some(&terminal)),
        ],
        "Portico objects of team-a",
    );
    let flux_objects =
        example("flux/gitrepository.yaml").replace("https://git.example.com/team-a/platform.git", &repo.url);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "flux.yaml", &flux_objects);
    common::kubectl_ok(&["apply", "-f", &file]);

    // Ready only once Portico's Deployment is Ready.
    let kustomizations: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), common::flux::NAMESPACE, &flux_api("Kustomization"));
    let k = reconciled(
        &kustomizations,
        "team-a-portico",
        &first,
        "Ready at the first commit",
        |o| flux_ready(o).is_some_and(|r| r.0 == "True"),
    )
    .await;
    assert_eq!(
        k.data["status"]["lastAppliedRevision"],
        format!("main@sha1:{first}"),
        "{:#}",
        k.data["status"]
    );
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    let d = deployments.get("hello").await.unwrap();
    let d_ready = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .expect("the Deployment is Ready when the Kustomization is")
        .last_transition_time
        .0;
    let k_ready: k8s_openapi::jiff::Timestamp = flux_ready(&k).unwrap().3.parse().unwrap();
    assert!(d_ready <= k_ready, "Flux waited for Portico: {d_ready} <= {k_ready}");
    assert_eq!(
        portico::creator::Creator::from_annotations(d.metadata.annotations.as_ref())
            .unwrap()
            .user,
        "system:serviceaccount:flux-system:team-a-flux",
        "admission records the identity Flux applied as"
    );
    let terminals: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    let t = terminals.get("team-a-shell").await.unwrap();
    let t_ready = t
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .expect("the Terminal is Ready when the Kustomization is")
        .last_transition_time
        .0;
    assert!(
        t_ready <= k_ready,
        "Flux waited for the Terminal: {t_ready} <= {k_ready}"
    );

    // A broken parameter: the webhook refuses it, and Flux says so in words.
    let broken = deployment.replace("replicas: 2", "replicas: many");
    assert_ne!(broken, deployment);
    let broken_commit = repo.commit(&[("portico/deployment.yaml", Some(&broken))], "Too many replicas");
    let k = reconciled(
        &kustomizations,
        "team-a-portico",
        &broken_commit,
        "not Ready with the refusal",
        |o| flux_ready(o).is_some_and(|r| r.0 == "False" && r.2.contains("replicas")),
    )
    .await;
    let (_, reason, message, _) = flux_ready(&k).unwrap();
    assert!(
        message.contains(r#"admission webhook "validate.portico.dev" denied the request"#)
            && message.contains(r#"spec.parameters/replicas (type): "many" is not of type "integer""#),
        "{reason}: {message}"
    );
    // Nothing already there is lost: the Deployment keeps its parameters.
    let kept = deployments.get("hello").await.unwrap();
    assert_eq!(kept.spec.parameters.unwrap()["replicas"], 2);
    assert_eq!(k.data["status"]["lastAppliedRevision"], format!("main@sha1:{first}"));

    // The fixing commit recovers it.
    let fixed = repo.commit(&[("portico/deployment.yaml", Some(&deployment))], "Two replicas");
    let applied = format!("main@sha1:{fixed}");
    reconciled(
        &kustomizations,
        "team-a-portico",
        &fixed.clone(),
        "Ready at the fix",
        move |o| {
            flux_ready(o).is_some_and(|r| r.0 == "True") && o.data["status"]["lastAppliedRevision"] == applied.as_str()
        },
    )
    .await;

    // No fight between Flux and admission: reconciling again changes
    // nothing, and Flux reports no change (it records an Event naming what
    // it configured only when something changed).
    let changes = || async {
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(admin.clone(), common::flux::NAMESPACE);
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("Kustomization")
                    && e.involved_object.name.as_deref() == Some("team-a-portico")
            })
            .filter(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("configured") || m.contains("created"))
            })
            .map(|e| (e.metadata.name, e.count))
            .collect::<Vec<_>>()
    };
    // (A first reconcile settles the Events of the fix, written apart.)
    reconciled(&kustomizations, "team-a-portico", &fixed, "Ready again", |o| {
        flux_ready(o).is_some_and(|r| r.0 == "True")
    })
    .await;
    let reported = changes().await;
    assert!(!reported.is_empty(), "Flux reports the changes it makes");
    let before = (
        deployments.get("hello").await.unwrap().metadata,
        terminals.get("team-a-shell").await.unwrap().metadata,
    );
    for round in 0..2 {
        reconciled(
            &kustomizations,
            "team-a-portico",
            &fixed,
            &format!("Ready again ({round})"),
            |o| flux_ready(o).is_some_and(|r| r.0 == "True"),
        )
        .await;
    }
    let after = (
        deployments.get("hello").await.unwrap().metadata,
        terminals.get("team-a-shell").await.unwrap().metadata,
    );
    assert_eq!(changes().await, reported, "Flux reported no change");
    for (b, a) in [(&before.0, &after.0), (&before.1, &after.1)] {
        assert_eq!(
            (&b.resource_version, b.generation),
            (&a.resource_version, a.generation),
            "{:?} changed",
            a.name
        );
    }

    // Pruning: the Terminal leaves the repository, Flux deletes it, and
    // Portico's finalizer removes all it made.
    let pruned = repo.commit(&[("portico/terminal.yaml", None)], "No terminal");
    reconciled(
        &kustomizations,
        "team-a-portico",
        &pruned,
        "Ready without the Terminal",
        |o| flux_ready(o).is_some_and(|r| r.0 == "True"),
    )
    .await;
    common::wait::gone(&terminals, "team-a-shell").await;
    let uid = t.uid().unwrap();
    let label = format!("{}={uid}", portico::api::keys::TERMINAL_UID_LABEL);
    common::wait_pods_gone(&admin, &label).await;
    let made = common::kubectl_ok(&[
        "get",
        "serviceaccounts,rolebindings,secrets",
        "-A",
        "-l",
        &label,
        "-o",
        "name",
    ]);
    assert_eq!(made.trim(), "", "left behind by the pruned Terminal");

    // Deleting the Kustomization prunes the rest.
    common::kubectl_ok(&[
        "delete",
        "kustomization",
        "team-a-portico",
        "-n",
        common::flux::NAMESPACE,
        "--wait=false",
    ]);
    common::wait::gone(&deployments, "hello").await;
    common::kubectl_ok(&["delete", "--ignore-not-found", "-f", &file]);
}
