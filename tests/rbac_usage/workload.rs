//! The workload the operator runs in this test: what users do with Portico,
//! each step waited for through watches, and everything cleaned up at the end.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{ConfigMap, Namespace, Secret},
        events::v1::Event,
        rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    },
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use portico::{
    api::{Deployment, SessionClaim, Terminal, common::RoleKind, keys},
    controller::{session, terminal::build::Names},
    controlplane::{ControlPlane, kubeconfig},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::common::{
    self,
    fixtures::{self, With, binding},
    operator::Operator,
    wait::{gone, until},
};

const ALICE: (&str, &[&str]) = ("alice", &["developers", "system:authenticated"]);
const CAROL: (&str, &[&str]) = ("carol", &["portico-admins", "system:authenticated"]);
const SESSIONS: &str = "portico-sessions";

/// The demo tenants and catalog, a Role to bind, namespace
/// creation for carol (temporary namespaces), the operator, and a second
/// cluster for a remote target.
pub async fn setup(cp: &'static ControlPlane) -> (Operator, ControlPlane) {
    let other = tokio::task::spawn_blocking(ControlPlane::start);
    let admin = cp.admin_client().await.unwrap();
    portico::dev::setup_demo(&admin).await.expect("demo tenants");
    portico::install::wait_aggregated(&admin)
        .await
        .expect("aggregated roles");
    let catalog = std::path::Path::new(portico::dev::CATALOG_DIR);
    portico::dev::load_catalog(
        &admin,
        catalog,
        portico::dev::CATALOG_NAMESPACE,
        &portico::dev::catalog::local_images(),
    )
    .await
    .expect("catalog");
    let reader: Role = from(json!({
        "metadata": {"name": "usage-reader", "namespace": "team-a"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    }));
    let creator: ClusterRole = from(json!({
        "metadata": {"name": "usage-namespace-creator"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}]
    }));
    let binding: ClusterRoleBinding = from(json!({
        "metadata": {"name": "usage-namespace-creator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "usage-namespace-creator"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]
    }));
    portico::install::apply(&admin, &reader).await.unwrap();
    portico::install::apply(&admin, &creator).await.unwrap();
    portico::install::apply(&admin, &binding).await.unwrap();
    // As installed: /metrics only for a token allowed to read it.
    let (config, metrics_port) = common::operator::write_config_authorizing(cp, common::TEST_PROFILES, true);
    let operator = Operator::start(cp, config, metrics_port).await;
    let other = other.await.unwrap().expect("a second control plane");
    portico::dev::setup_demo(&other.admin_client().await.unwrap())
        .await
        .expect("demo tenants in the second cluster");
    (operator, other)
}

/// Runs every part of the workload at once and returns when all of it has
/// been cleaned up.
pub async fn run(cp: &ControlPlane, other: &ControlPlane, metrics_port: u16) {
    tokio::join!(
        metrics_read_by_prometheus(cp, metrics_port),
        terminal_with_a_ready_pod(cp),
        terminal_binding_a_role(cp),
        terminal_in_a_temporary_namespace(cp),
        terminal_ended_by_its_idle_timeout(cp),
        terminal_in_another_cluster(cp, other),
        sessions(cp),
        deployments(cp),
    );
}

/// A Prometheus' account, bound to the chart's ClusterRole for reading
/// `/metrics`, scrapes the operator: the operator reviews its token and asks
/// whether it may.
async fn metrics_read_by_prometheus(cp: &ControlPlane, port: u16) {
    let admin = cp.admin_client().await.unwrap();
    let token = common::operator::service_account_token(cp, "portico-system", "usage-prometheus").await;
    let binding: ClusterRoleBinding = from(json!({
        "metadata": {"name": "usage-prometheus-reads-portico"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "portico-metrics-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "usage-prometheus", "namespace": "portico-system"}],
    }));
    portico::install::apply(&admin, &binding).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    // RBAC may take a moment to see the new binding: until it answers 200.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = http.get(&url).bearer_auth(&token).send().await.unwrap().status();
        if status.is_success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/metrics answered {status} to the reader's token"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Api::<ClusterRoleBinding>::all(admin)
        .delete("usage-prometheus-reads-portico", &DeleteParams::default())
        .await
        .unwrap();
}

fn from<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn as_user(cp: &ControlPlane, user: (&str, &[&str])) -> Client {
    cp.client_as(user.0, user.1).await.unwrap()
}

fn terminal(name: &str, host: Value, target: Value, extra: Value) -> Terminal {
    fixtures::terminal(name)
        .with(json!({"spec": {"host": host, "target": target}}))
        .with(json!({"spec": extra}))
}

fn has_pod(t: Option<&Terminal>) -> bool {
    t.and_then(|t| t.status.as_ref()).is_some_and(|s| s.pod_name.is_some())
}

fn condition_true(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

/// alice's Terminal in team-a binding `edit`; its pod runs; she deletes it.
async fn terminal_with_a_ready_pod(cp: &ControlPlane) {
    let t = terminal(
        "usage-ready",
        json!({"namespace": "team-a"}),
        json!({"namespace": "team-a", "roleBindings": [binding("ClusterRole", "edit", "RoleBinding", "edit")]}),
        json!({}),
    );
    let mine: Api<Terminal> = Api::namespaced(as_user(cp, ALICE).await, "team-a");
    mine.create(&PostParams::default(), &t).await.expect("alice's Terminal");
    let admin: Api<Terminal> = Api::namespaced(cp.admin_client().await.unwrap(), "team-a");
    let t = until(&admin, "usage-ready", "a pod", has_pod).await.unwrap();
    let pod = t.status.unwrap().pod_name.unwrap();
    common::wait_pod_ready(&cp.admin_client().await.unwrap(), "team-a", &pod).await;
    until(&admin, "usage-ready", "Ready", |t: Option<&Terminal>| {
        t.and_then(|t| t.status.as_ref())
            .is_some_and(|s| condition_true(&s.conditions, "Ready"))
    })
    .await;
    mine.delete("usage-ready", &DeleteParams::default()).await.unwrap();
    gone(&admin, "usage-ready").await;
}

/// carol's Terminal binding a Role in team-a, hosted in a temporary namespace
/// (a named one may bind only `view` or `edit`).
async fn terminal_binding_a_role(cp: &ControlPlane) {
    let t = terminal(
        "usage-role",
        json!({"temporaryNamespace": true}),
        json!({"namespace": "team-a", "roleBindings": [binding("Role", "usage-reader", "RoleBinding", "reader")]}),
        json!({}),
    );
    let mine: Api<Terminal> = Api::namespaced(as_user(cp, CAROL).await, "team-a");
    let created = mine.create(&PostParams::default(), &t).await.expect("carol's Terminal");
    let names = Names::for_uid(&created.uid().unwrap());
    let admin = cp.admin_client().await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-a");
    until(
        &bindings,
        &names.binding("reader"),
        "the Role's binding",
        |b: Option<&RoleBinding>| b.is_some(),
    )
    .await;
    mine.delete("usage-role", &DeleteParams::default()).await.unwrap();
    gone(&Api::<Terminal>::namespaced(admin, "team-a"), "usage-role").await;
    gone(&bindings, &names.binding("reader")).await;
}

/// carol's Terminal in a temporary namespace, with a ClusterRoleBinding; the
/// namespace goes with it.
async fn terminal_in_a_temporary_namespace(cp: &ControlPlane) {
    let t = terminal(
        "usage-temp",
        json!({"temporaryNamespace": true}),
        json!({"temporaryNamespace": true, "roleBindings": [
            binding("ClusterRole", "edit", "RoleBinding", "edit"),
            binding("ClusterRole", "view", "ClusterRoleBinding", "view"),
        ]}),
        json!({}),
    );
    let mine: Api<Terminal> = Api::namespaced(as_user(cp, CAROL).await, "team-b");
    let created = mine.create(&PostParams::default(), &t).await.expect("carol's Terminal");
    let ns = created.annotations()[keys::TEMPORARY_NAMESPACE].clone();
    let names = Names::for_uid(&created.uid().unwrap());
    let admin = cp.admin_client().await.unwrap();
    let terminals: Api<Terminal> = Api::namespaced(admin.clone(), "team-b");
    until(&terminals, "usage-temp", "a pod", has_pod).await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    until(
        &secrets,
        &names.kubeconfig_secret,
        "the kubeconfig",
        |s: Option<&Secret>| s.is_some(),
    )
    .await;
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    until(
        &crbs,
        &names.binding("view"),
        "the ClusterRoleBinding",
        |b: Option<&ClusterRoleBinding>| b.is_some(),
    )
    .await;
    mine.delete("usage-temp", &DeleteParams::default()).await.unwrap();
    gone(&terminals, "usage-temp").await;
    gone(&crbs, &names.binding("view")).await;
    gone(&Api::<Namespace>::all(admin), &ns).await;
}

/// alice's Terminal without heartbeats: the operator deletes it at its idle timeout.
async fn terminal_ended_by_its_idle_timeout(cp: &ControlPlane) {
    let t = terminal(
        "usage-idle",
        json!({"namespace": "team-a"}),
        json!({"namespace": "team-a", "roleBindings": [binding("ClusterRole", "view", "RoleBinding", "view")]}),
        json!({"idleTimeout": "3s"}),
    );
    Api::<Terminal>::namespaced(as_user(cp, ALICE).await, "team-a")
        .create(&PostParams::default(), &t)
        .await
        .expect("alice's idle Terminal");
    gone(
        &Api::<Terminal>::namespaced(cp.admin_client().await.unwrap(), "team-a"),
        "usage-idle",
    )
    .await;
}

/// carol's Terminal whose target is team-a of another cluster, hosted in a
/// temporary namespace (a named one may not reach another cluster).
async fn terminal_in_another_cluster(cp: &ControlPlane, other: &ControlPlane) {
    let admin = cp.admin_client().await.unwrap();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("usage-cluster-b".into()),
            ..Default::default()
        },
        data: Some(
            [(
                "kubeconfig".to_string(),
                ByteString(kubeconfig::to_yaml(other.kubeconfig()).into_bytes()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let t = terminal(
        "usage-remote",
        json!({"temporaryNamespace": true}),
        json!({"cluster": {"kubeconfigSecretRef": {"name": "usage-cluster-b"}}, "namespace": "team-a",
               "roleBindings": [binding("ClusterRole", "view", "RoleBinding", "view")]}),
        json!({}),
    );
    let mine: Api<Terminal> = Api::namespaced(as_user(cp, CAROL).await, "team-a");
    let created = mine
        .create(&PostParams::default(), &t)
        .await
        .expect("carol's remote Terminal");
    let host = created.annotations()[keys::TEMPORARY_NAMESPACE].clone();
    let names = Names::for_uid(&created.uid().unwrap());
    let remote: Api<RoleBinding> = Api::namespaced(other.admin_client().await.unwrap(), "team-a");
    until(
        &remote,
        &names.binding("view"),
        "the binding in the other cluster",
        |b: Option<&RoleBinding>| b.is_some(),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &host);
    until(
        &secrets,
        &names.kubeconfig_secret,
        "the kubeconfig",
        |s: Option<&Secret>| s.is_some(),
    )
    .await;
    mine.delete("usage-remote", &DeleteParams::default()).await.unwrap();
    gone(&Api::<Terminal>::namespaced(admin.clone(), "team-a"), "usage-remote").await;
    gone(&remote, &names.binding("view")).await;
    gone(&Api::<Namespace>::all(admin), &host).await;
}

fn claim(name: &str, spec: Value) -> SessionClaim {
    let mut spec = spec;
    spec["profile"] = json!("developer");
    from(
        json!({"apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim", "metadata": {"name": name}, "spec": spec}),
    )
}

/// alice's session with its grant in team-a, deleted by her; another ended by its idle timeout.
async fn sessions(cp: &ControlPlane) {
    let mine: Api<SessionClaim> = Api::namespaced(as_user(cp, ALICE).await, SESSIONS);
    let admin = cp.admin_client().await.unwrap();
    let claims: Api<SessionClaim> = Api::namespaced(admin.clone(), SESSIONS);
    mine.create(
        &PostParams::default(),
        &claim("usage-idle", json!({"idleTimeout": "3s"})),
    )
    .await
    .expect("alice's idle session");
    let c = mine
        .create(&PostParams::default(), &claim("usage-session", json!({})))
        .await
        .expect("alice's session");
    until(&claims, "usage-session", "Ready", |c: Option<&SessionClaim>| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| condition_true(&s.conditions, "Ready"))
    })
    .await;
    let n = session::build::Names::for_uid(&c.uid().unwrap());
    let grants: Api<RoleBinding> = Api::namespaced(admin, "team-a");
    let grant = n.grant(RoleKind::ClusterRole, "edit");
    assert!(grants.get_opt(&grant).await.unwrap().is_some(), "the grant in team-a");
    mine.delete("usage-session", &DeleteParams::default()).await.unwrap();
    gone(&claims, "usage-session").await;
    gone(&grants, &grant).await;
    gone(&claims, "usage-idle").await;
}

fn deployment(name: &str, template: &str, params: Value) -> Deployment {
    from(
        json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"template": {"name": template}, "parameters": params}}),
    )
}

fn is(d: Option<&Deployment>, type_: &str) -> bool {
    d.and_then(|d| d.status.as_ref())
        .is_some_and(|s| condition_true(&s.conditions, type_))
}

/// alice deploys the web app from the catalog and deletes it, and so does a
/// GitOps controller's service account; a Deployment whose template does not
/// render stalls twice (one Event, counted twice).
async fn deployments(cp: &ControlPlane) {
    let mine: Api<Deployment> = Api::namespaced(as_user(cp, ALICE).await, "team-a");
    let admin = cp.admin_client().await.unwrap();
    let all: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    mine.create(
        &PostParams::default(),
        &deployment("usage-web", "webapp", json!({"image": "docker.io/library/nginx:1.27"})),
    )
    .await
    .expect("alice's Deployment");
    until(&all, "usage-web", "three objects applied", |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.resources.len() == 3 && s.template_revision.is_some())
    })
    .await;
    mine.delete("usage-web", &DeleteParams::default()).await.unwrap();
    gone(&all, "usage-web").await;

    // A GitOps controller's service account with edit in team-a applies one:
    // the operator applies its objects as that service account.
    let flux = "system:serviceaccount:flux-system:kustomize-controller";
    let edit: RoleBinding = from(json!({
        "metadata": {"name": "usage-gitops-edit", "namespace": "team-a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": "flux-system"}]
    }));
    portico::install::apply(&admin, &edit).await.unwrap();
    let gitops: Api<Deployment> = Api::namespaced(
        cp.client_as(
            flux,
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:flux-system",
                "system:authenticated",
            ],
        )
        .await
        .unwrap(),
        "team-a",
    );
    gitops
        .create(
            &PostParams::default(),
            &deployment(
                "usage-gitops",
                "webapp",
                json!({"image": "docker.io/library/nginx:1.27"}),
            ),
        )
        .await
        .expect("the service account's Deployment");
    until(
        &all,
        "usage-gitops",
        "three objects applied as the service account",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.resources.len() == 3 && s.applied_by.as_deref() == Some(flux))
        },
    )
    .await;
    gitops.delete("usage-gitops", &DeleteParams::default()).await.unwrap();
    gone(&all, "usage-gitops").await;
    Api::<RoleBinding>::namespaced(admin.clone(), "team-a")
        .delete("usage-gitops-edit", &DeleteParams::default())
        .await
        .unwrap();

    let broken: ConfigMap = from(json!({
        "metadata": {"name": "usage-broken", "namespace": portico::dev::CATALOG_NAMESPACE,
                     "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": "displayName: Broken\nallowedGroups: ['*']\nmanifests: |\n  kind: [oops\n"}
    }));
    portico::install::apply(&admin, &broken).await.unwrap();
    let events: Api<Event> = Api::namespaced(admin.clone(), "team-a");
    let cfg = watcher::Config::default().fields("regarding.name=usage-broken");
    let mut seen = watcher(events, cfg).default_backoff().applied_objects().boxed();
    mine.create(
        &PostParams::default(),
        &deployment("usage-broken", "usage-broken", json!({})),
    )
    .await
    .expect("alice's broken Deployment");
    until(&all, "usage-broken", "Stalled", |d: Option<&Deployment>| {
        is(d, "Stalled")
    })
    .await;
    let touch = json!({"metadata": {"annotations": {"touch": "1"}}});
    mine.patch("usage-broken", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    let repeated = async {
        while let Some(e) = seen.next().await {
            if e.is_ok_and(|e| e.series.is_some()) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), repeated)
        .await
        .expect("the Stalled Event is counted again when the Deployment stalls again");
    mine.delete("usage-broken", &DeleteParams::default()).await.unwrap();
    gone(&all, "usage-broken").await;
}
