//! Deployments end to end: catalog templates rendered and applied as their
//! creator, health from the live objects (the web app's pods really run on
//! the node, from the local image `portico.local/webapp:1`), outputs,
//! updates, pruning, deletion, and every refusal.

mod common;

use std::time::Duration;

use common::{deployment, shared_with_operator};
use k8s_openapi::api::{
    apps::v1::Deployment as AppsDeployment,
    core::v1::{ConfigMap, Pod, Service},
    events::v1::Event,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::wait::await_condition,
};
use portico::controlplane::node::images::WEBAPP_IMAGE as WEBAPP;
use portico::{
    api::{
        Deployment,
        deployment::{Operation, OperationResult},
    },
    catalog::render::DEPLOYMENT_LABEL,
};
use serde_json::json;

const ALICE: (&str, &[&str]) = ("alice", &["developers", "system:authenticated"]);
const BOB: (&str, &[&str]) = ("bob", &["developers", "system:authenticated"]);

async fn client(user: (&str, &[&str])) -> Client {
    shared_with_operator().client_as(user.0, user.1).await.unwrap()
}

async fn admin() -> Client {
    shared_with_operator().admin_client().await.unwrap()
}

async fn create(user: (&str, &[&str]), ns: &str, d: &Deployment) -> Result<Deployment, kube::Error> {
    Api::<Deployment>::namespaced(client(user).await, ns)
        .create(&PostParams::default(), d)
        .await
}

async fn wait_for(ns: &str, name: &str, what: &str, cond: impl Fn(&Deployment) -> bool + Send + 'static) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(admin().await, ns);
    common::wait::present(&api, name, what, cond).await
}

fn condition(d: &Deployment, type_: &str) -> Option<(String, String, String)> {
    let c = d.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn is(d: &Deployment, type_: &str) -> bool {
    condition(d, type_).is_some_and(|c| c.0 == "True")
}

/// Waits until the Deployment is Ready or Stalled, and fails with the
/// stall's reason and message unless it is Ready.
async fn ready(ns: &str, name: &str) -> Deployment {
    let d = wait_for(ns, name, "Ready or Stalled", |d| is(d, "Ready") || is(d, "Stalled")).await;
    assert!(is(&d, "Ready"), "{:?}", condition(&d, "Stalled"));
    d
}

/// Waits until the node runs `n` pods of the web app instance `instance` and they are Ready.
async fn run_pods(ns: &str, instance: &str, n: usize) -> Vec<String> {
    common::wait_pods_ready(&admin().await, ns, &format!("app.kubernetes.io/instance={instance}"), n).await
}

#[tokio::test]
async fn alice_deploys_the_web_app_and_it_becomes_ready_with_outputs() {
    let ns = "team-a";
    create(
        ALICE,
        ns,
        &deployment("hello", "webapp", json!({"image": WEBAPP, "replicas": 2})),
    )
    .await
    .unwrap();
    let d = wait_for(ns, "hello", "three objects applied", |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.resources.len() == 3 && s.template_revision.is_some())
    })
    .await;
    assert!(is(&d, "Reconciling"), "pods are not running yet: {:?}", d.status);
    let st = d.status.clone().unwrap();
    let kinds: Vec<&str> = st.resources.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Service"]);
    assert!(
        st.template_revision
            .as_deref()
            .unwrap()
            .starts_with("portico-catalog/webapp@")
    );
    assert_eq!(
        st.creator.as_deref(),
        Some("alice"),
        "mirrored for --field-selector status.creator"
    );
    assert_eq!(st.history[0].operation, portico::api::deployment::Operation::Create);
    assert_eq!(st.history[0].result, OperationResult::Succeeded);

    // The objects exist, labelled, applied by field manager portico.
    let apps: Api<AppsDeployment> = Api::namespaced(admin().await, ns);
    let app = apps.get("hello").await.unwrap();
    assert_eq!(app.labels()[DEPLOYMENT_LABEL], "hello");
    assert!(
        app.managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("portico"))
    );

    // Pods come from the ReplicaSet and run on the node; the Deployment becomes Ready.
    let pods = run_pods(ns, "hello", 2).await;
    let d = wait_for(ns, "hello", "Ready", |d| is(d, "Ready")).await;
    // Each pod serves the template's MESSAGE over HTTP (the host is on the
    // node's bridge) and logs what it serves.
    for name in &pods {
        let pod = Api::<Pod>::namespaced(admin().await, ns).get(name).await.unwrap();
        let ip = pod.status.and_then(|s| s.pod_ip).expect("a pod IP");
        let body = common::operator::http_get(&format!("http://{ip}:80/index.html")).await;
        assert_eq!(body.unwrap(), "Hello from Portico\n");
        let log = common::kubectl_ok(&["logs", "-n", ns, name]);
        assert!(
            log.contains("webapp: serving \"Hello from Portico\" on port 80"),
            "{log}"
        );
    }
    let st = d.status.clone().unwrap();
    let svc = Api::<Service>::namespaced(admin().await, ns)
        .get("hello")
        .await
        .unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    assert_eq!(st.outputs["url"], format!("http://{ip}:80"));
    let out = common::kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        ns,
        "deployments.portico.dev/hello",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The create is one operation: once in the history, one Created Event (not a series).
    let creates = st.history.iter().filter(|h| h.operation == Operation::Create).count();
    assert_eq!(creates, 1, "{:?}", st.history);
    let uid = d.metadata.uid.clone();
    let events = Api::<Event>::namespaced(admin().await, ns)
        .list(&Default::default())
        .await
        .unwrap();
    let created: Vec<&Event> = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.clone()) == uid && e.reason.as_deref() == Some("Created"))
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(
        created[0].series.is_none(),
        "published more than once: {:?}",
        created[0].series
    );

    // A parameter change updates the children.
    let patch = json!({"spec": {"parameters": {"message": "changed"}}});
    Api::<Deployment>::namespaced(client(ALICE).await, ns)
        .patch("hello", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, ns);
    let changed = |c: Option<&ConfigMap>| {
        c.and_then(|c| c.data.as_ref())
            .is_some_and(|d| d["MESSAGE"] == "changed")
    };
    tokio::time::timeout(Duration::from_secs(30), await_condition(cms, "hello-config", changed))
        .await
        .unwrap()
        .unwrap();
    let d = wait_for(ns, "hello", "an Update in the history", |d| {
        d.status.as_ref().is_some_and(|s| {
            s.history
                .iter()
                .any(|h| h.operation == portico::api::deployment::Operation::Update)
        })
    })
    .await;
    assert_ne!(d.status.unwrap().template_revision, st.template_revision);

    // Deleting it removes every object before the Deployment goes.
    Api::<Deployment>::namespaced(client(ALICE).await, ns)
        .delete("hello", &DeleteParams::default())
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(admin().await, ns);
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, "hello", |d: Option<&Deployment>| d.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(apps.get_opt("hello").await.unwrap().is_none());
    assert!(
        Api::<Service>::namespaced(admin().await, ns)
            .get_opt("hello")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<ConfigMap>::namespaced(admin().await, ns)
            .get_opt("hello-config")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_web_app_answers_at_its_url_output_and_its_service_name_from_a_toolbox_pod() {
    let (ns, name) = ("team-a", "through-svc");
    let message = "Hello through the Service";
    create(
        ALICE,
        ns,
        &deployment(name, "webapp", json!({"image": WEBAPP, "message": message})),
    )
    .await
    .unwrap();
    let d = wait_for(ns, name, "Ready", |d| is(d, "Ready")).await;
    let url = d.status.unwrap().outputs["url"].clone();

    // Another pod asks: through kube-proxy at the ClusterIP of the url
    // output, and through CoreDNS at the Service's names.
    let asker: Pod = serde_json::from_value(json!({
        "metadata": {"name": "svc-client"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "shell", "image": common::TOOLBOX, "command": ["sleep", "3600"]}],
        },
    }))
    .unwrap();
    let pods = Api::<Pod>::namespaced(admin().await, ns);
    pods.create(&PostParams::default(), &asker).await.unwrap();
    common::wait_pod_ready(&admin().await, ns, "svc-client").await;
    common::wait_service_endpoints(&admin().await, ns, name).await;
    let cp = shared_with_operator();
    for url in [
        url,
        format!("http://{name}.{ns}.svc/"),
        format!("http://{name}.{ns}.svc.cluster.local:80/index.html"),
    ] {
        assert_eq!(
            common::http_get_in_pod(cp, ns, "svc-client", &url),
            format!("{message}\n"),
            "{url}"
        );
    }

    pods.delete("svc-client", &DeleteParams::default()).await.unwrap();
    Api::<Deployment>::namespaced(client(ALICE).await, ns)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

/// Puts a template named `name` into the catalog.
async fn template(name: &str, body: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": body}
    }))
    .unwrap();
    portico::install::apply(&admin().await, &cm).await.unwrap();
}

#[tokio::test]
async fn a_template_revision_that_drops_an_object_prunes_it() {
    let two = "displayName: Two\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-a'}\n  ---\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-b'}\n";
    template("prune-me", two).await;
    create(ALICE, "team-a", &deployment("pruned", "prune-me", json!({})))
        .await
        .unwrap();
    wait_for("team-a", "pruned", "Ready with two objects", |d| {
        is(d, "Ready") && d.status.as_ref().unwrap().resources.len() == 2
    })
    .await;
    let one = two.split("  ---\n").next().unwrap();
    template("prune-me", one).await;
    // Any change reconciles; the template is read on every reconcile.
    let touch = json!({"metadata": {"annotations": {"touch": "1"}}});
    Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .patch("pruned", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, "team-a");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(cms.clone(), "pruned-b", |c: Option<&ConfigMap>| c.is_none()),
    )
    .await
    .expect("pruned")
    .unwrap();
    assert!(cms.get_opt("pruned-a").await.unwrap().is_some());
    let d = wait_for("team-a", "pruned", "a Prune entry", |d| {
        d.status.as_ref().is_some_and(|s| {
            s.history
                .iter()
                .any(|h| h.operation == portico::api::deployment::Operation::Prune)
        })
    })
    .await;
    assert_eq!(d.status.unwrap().resources.len(), 1);
    Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .delete("pruned", &DeleteParams::default())
        .await
        .unwrap();
}

/// A Deployment's status records what was applied and its history: a
/// status write from a pass that read an older version (its own last
/// write's watch event not yet arrived) is refused, not written over it.
#[tokio::test]
async fn a_deployment_status_written_over_an_older_version_is_refused_as_superseded() {
    template("superseded", "displayName: Superseded\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-a'}\n").await;
    create(ALICE, "team-a", &deployment("overwritten", "superseded", json!({})))
        .await
        .unwrap();
    ready("team-a", "overwritten").await;
    let admin = admin().await;
    let api: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    let write = |over: &Deployment, message: &str| {
        let mut status = over.status.clone().unwrap();
        status.message = Some(message.into());
        let (admin, over) = (admin.clone(), over.clone());
        async move {
            portico::controller::write_status(
                &admin,
                &over,
                serde_json::to_value(&status).unwrap(),
                over.metadata.resource_version.as_deref(),
            )
            .await
        }
    };
    // Over the version just read it is written (read again if the
    // operator, which other tests' templates wake, wrote in between).
    let mut attempts = 0;
    let read = loop {
        let read = api.get("overwritten").await.unwrap();
        match write(&read, "written over the version read").await {
            Ok(()) => break read,
            Err(portico::controller::Error::Superseded { .. }) if attempts < 10 => attempts += 1,
            Err(e) => panic!("a write over the version read: {e}"),
        }
    };
    // `read` is now older than the object: whatever was written since,
    // a write over it is refused and changes nothing.
    let refused = write(&read, "written over an older version").await;
    assert!(
        matches!(refused, Err(portico::controller::Error::Superseded { .. })),
        "{refused:?}"
    );
    let now = api.get("overwritten").await.unwrap();
    assert_ne!(
        now.status.unwrap().message.as_deref(),
        Some("written over an older version")
    );
    api.delete("overwritten", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn objects_applied_without_their_record_are_taken_back_and_deleted_by_their_mark() {
    template("lost-record", "displayName: Lost record\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-a'}\n  data: {v: '1'}\n  ---\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-b'}\n").await;
    let mut suspended = deployment("forgetful", "lost-record", json!({}));
    suspended.spec.suspend = Some(true);
    let created = create(ALICE, "team-a", &suspended).await.unwrap();
    wait_for("team-a", "forgetful", "Suspended", |d| {
        condition(d, "Reconciling").is_some_and(|c| c.1 == "Suspended")
    })
    .await;
    // What an apply leaves when its pass ends before the status write: the
    // object, with the Deployment's mark, and no record of it.
    let marked: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "forgetful-a", "labels": {"portico.dev/deployment-uid": created.uid().unwrap()}},
        "data": {"v": "0"}
    }))
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, "team-a");
    cms.create(&PostParams::default(), &marked).await.unwrap();
    let api = Api::<Deployment>::namespaced(client(ALICE).await, "team-a");
    let resume = json!({"spec": {"suspend": false}});
    api.patch("forgetful", &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .unwrap();
    // The create-only apply finds it; it is the Deployment's, so it is
    // applied, not refused as another's.
    let d = ready("team-a", "forgetful").await;
    let names: Vec<String> = d.status.unwrap().resources.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, ["forgetful-a", "forgetful-b"]);
    assert_eq!(cms.get("forgetful-a").await.unwrap().data.unwrap()["v"], "1");
    // Deleted with its record lost: found by the render, and by the mark
    // in the kinds it renders (an object of an earlier render).
    let stray: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "forgetful-earlier", "labels": {"portico.dev/deployment-uid": created.uid().unwrap()}}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &stray).await.unwrap();
    let lost = json!({"status": {"resources": []}});
    Api::<Deployment>::namespaced(admin().await, "team-a")
        .patch_status("forgetful", &PatchParams::default(), &Patch::Merge(&lost))
        .await
        .unwrap();
    api.delete("forgetful", &DeleteParams::default()).await.unwrap();
    common::wait::gone(&api, "forgetful").await;
    for name in ["forgetful-a", "forgetful-b", "forgetful-earlier"] {
        assert!(cms.get_opt(name).await.unwrap().is_none(), "{name} was left behind");
    }
}

#[tokio::test]
async fn what_an_object_needs_is_applied_before_it_whatever_the_render_order() {
    // The pod comes first in the render and needs the ServiceAccount after
    // it: the API server refuses a pod whose service account does not exist.
    let body = format!(
        "displayName: Pod and account\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: Pod\n  metadata: {{name: '{{{{ name }}}}'}}\n  spec:\n    serviceAccountName: '{{{{ name }}}}-runner'\n    containers: [{{name: main, image: '{}', command: [sleep, '3600']}}]\n  ---\n  apiVersion: v1\n  kind: ServiceAccount\n  metadata: {{name: '{{{{ name }}}}-runner'}}\n",
        common::TOOLBOX
    );
    template("pod-and-account", &body).await;
    create(ALICE, "team-a", &deployment("ordered", "pod-and-account", json!({})))
        .await
        .unwrap();
    // Ready once the pod runs: the pod has no watch, so passes read it again
    // while it progresses.
    let d = ready("team-a", "ordered").await;
    let pod = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(admin().await, "team-a")
        .get("ordered")
        .await
        .expect("the pod was created");
    assert_eq!(
        pod.spec.unwrap().service_account_name.as_deref(),
        Some("ordered-runner")
    );
    let s = d.status.unwrap();
    let kinds: Vec<&str> = s.resources.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["Pod", "ServiceAccount"], "the inventory keeps the render order");
    assert!(
        s.history.iter().all(|h| h.result == OperationResult::Succeeded),
        "{:?}",
        s.history
    );
    Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .delete("ordered", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn bob_may_not_deploy_into_team_a() {
    let (code, msg) =
        common::wait::refused(create(BOB, "team-a", &deployment("x", "webapp", json!({"image": "nginx"}))).await);
    assert_eq!(code, 403);
    assert!(
        msg.contains("User \"bob\" cannot create resource \"deployments\""),
        "{msg}"
    );
}

#[tokio::test]
async fn invalid_parameters_are_refused_listing_each_violation() {
    let bad = deployment("bad", "scheduled-job", json!({"keepRuns": 50, "colour": "red"}));
    let err = create(ALICE, "team-a", &bad).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!("{err}") };
    assert_eq!(s.code, 422);
    for part in [
        "spec.parameters/ (required)",
        "spec.parameters/keepRuns (maximum)",
        "additionalProperties",
    ] {
        assert!(s.message.contains(part), "{part} missing from: {}", s.message);
    }
    // One cause per field at fault: the unknown `colour` at the parameters,
    // the missing `schedule` and the too large `keepRuns` at themselves.
    let causes = s.details.map(|d| d.causes).unwrap_or_default();
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.parameters",
            "spec.parameters.schedule",
            "spec.parameters.keepRuns"
        ],
        "{causes:?}"
    );
    assert!(causes[2].message.contains("maximum"), "{causes:?}");
}

#[tokio::test]
async fn unknown_templates_and_templates_for_other_groups_are_refused() {
    let (code, msg) =
        common::wait::refused(create(ALICE, "team-a", &deployment("ghost", "no-such-template", json!({}))).await);
    assert_eq!(code, 422);
    assert!(
        msg.contains("template \"no-such-template\" is not in the catalog"),
        "{msg}"
    );
    template(
        "ops-only",
        "displayName: Ops\nallowedGroups: ['ops', 'sre-.*']\nmanifests: ''\n",
    )
    .await;
    let (code, msg) = common::wait::refused(create(ALICE, "team-a", &deployment("ops", "ops-only", json!({}))).await);
    assert_eq!(code, 403);
    assert!(msg.contains("alice may not use template ops-only"), "{msg}");
}

#[tokio::test]
async fn fixed_parameters_may_not_change() {
    create(
        ALICE,
        "team-a",
        &deployment("fixed", "webapp", json!({"image": "nginx"})),
    )
    .await
    .unwrap();
    let patch = json!({"spec": {"parameters": {"port": 8080}}});
    let err = Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .patch("fixed", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert!(
        s.message.contains("spec.parameters/port may not change after creation"),
        "{}",
        s.message
    );
    Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .delete("fixed", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_template_that_renders_what_the_user_may_not_create_stalls_with_the_refusal() {
    let body = "displayName: Escalate\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata: {name: '{{ name }}-everything'}\n  rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n";
    template("escalate", body).await;
    create(ALICE, "team-a", &deployment("escalate", "escalate", json!({})))
        .await
        .unwrap();
    let d = wait_for("team-a", "escalate", "Stalled", |d| is(d, "Stalled")).await;
    let (_, reason, message) = condition(&d, "Stalled").unwrap();
    assert_eq!(reason, "ApplyRefused");
    assert!(
        message.contains("as alice was refused") && message.contains("clusterroles"),
        "{message}"
    );
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(admin().await);
    assert!(roles.get_opt("escalate-everything").await.unwrap().is_none());
    Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .delete("escalate", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_template_that_renders_invalid_yaml_stalls_and_the_operator_keeps_running() {
    template(
        "broken",
        "displayName: Broken\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: [oops\n",
    )
    .await;
    create(ALICE, "team-a", &deployment("broken", "broken", json!({})))
        .await
        .unwrap();
    let d = wait_for("team-a", "broken", "Stalled", |d| is(d, "Stalled")).await;
    let (_, reason, message) = condition(&d, "Stalled").unwrap();
    assert_eq!(reason, "RenderFailed");
    assert!(message.contains("not valid YAML"), "{message}");
    // The operator still works: another Deployment becomes Ready.
    template("one-cm", "displayName: One\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n").await;
    create(ALICE, "team-a", &deployment("after-broken", "one-cm", json!({})))
        .await
        .unwrap();
    wait_for("team-a", "after-broken", "Ready", |d| is(d, "Ready")).await;
    for n in ["broken", "after-broken"] {
        Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
            .delete(n, &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// Flux's view: the real kstatus library on the live object.
fn kstatus(d: &Deployment) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(shared_with_operator().binaries().path("kstatus"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(d).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn flux_kstatus_sees_in_progress_then_current_and_failed_for_a_failing_template() {
    let ns = "team-a";
    create(ALICE, ns, &deployment("flux", "webapp", json!({"image": WEBAPP})))
        .await
        .unwrap();
    let d = wait_for(ns, "flux", "resources applied", |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.resources.len() == 3 && s.template_revision.is_some())
    })
    .await;
    assert_eq!(kstatus(&d), "InProgress");
    run_pods(ns, "flux", 1).await;
    let d = wait_for(ns, "flux", "Ready", |d| is(d, "Ready")).await;
    assert_eq!(kstatus(&d), "Current");
    template("fails", "displayName: Fails\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: Namespace\n  metadata: {name: '{{ name }}-ns'}\n").await;
    create(ALICE, ns, &deployment("flux-fails", "fails", json!({})))
        .await
        .unwrap();
    let d = wait_for(ns, "flux-fails", "Stalled", |d| is(d, "Stalled")).await;
    assert_eq!(kstatus(&d), "Failed");
    for n in ["flux", "flux-fails"] {
        Api::<Deployment>::namespaced(client(ALICE).await, ns)
            .delete(n, &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_suspended_deployment_applies_nothing_until_resumed() {
    template("suspendable", "displayName: S\nallowedGroups: ['*']\nparameters: {type: object, properties: {v: {type: string, default: a}}}\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n  data: {v: '{{ params.v }}'}\n").await;
    create(ALICE, "team-a", &deployment("sus", "suspendable", json!({})))
        .await
        .unwrap();
    wait_for("team-a", "sus", "Ready", |d| is(d, "Ready")).await;
    let api: Api<Deployment> = Api::namespaced(client(ALICE).await, "team-a");
    let patch = json!({"spec": {"suspend": true, "parameters": {"v": "b"}}});
    api.patch("sus", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let d = wait_for("team-a", "sus", "Suspended", |d| {
        condition(d, "Reconciling").is_some_and(|c| c.1 == "Suspended")
    })
    .await;
    assert_eq!(d.status.unwrap().resources.len(), 1, "the inventory is still reported");
    let cms: Api<ConfigMap> = Api::namespaced(admin().await, "team-a");
    assert_eq!(
        cms.get("sus").await.unwrap().data.unwrap()["v"],
        "a",
        "nothing applied while suspended"
    );
    api.patch(
        "sus",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    let resumed = |c: Option<&ConfigMap>| c.and_then(|c| c.data.as_ref()).is_some_and(|d| d["v"] == "b");
    tokio::time::timeout(Duration::from_secs(30), await_condition(cms, "sus", resumed))
        .await
        .unwrap()
        .unwrap();
    api.delete("sus", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn a_deployment_whose_template_left_the_catalog_can_still_be_deleted() {
    template("vanishing", "displayName: V\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n").await;
    create(ALICE, "team-a", &deployment("orphan", "vanishing", json!({})))
        .await
        .unwrap();
    wait_for("team-a", "orphan", "Ready", |d| is(d, "Ready")).await;
    let catalog: Api<ConfigMap> = Api::namespaced(admin().await, portico::dev::CATALOG_NAMESPACE);
    catalog.delete("vanishing", &DeleteParams::default()).await.unwrap();
    wait_for("team-a", "orphan", "Stalled", |d| is(d, "Stalled")).await;
    Api::<Deployment>::namespaced(client(ALICE).await, "team-a")
        .delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(admin().await, "team-a");
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, "orphan", |d: Option<&Deployment>| d.is_none()),
    )
    .await
    .expect("deleted although its template is gone")
    .unwrap();
    assert!(
        Api::<ConfigMap>::namespaced(admin().await, "team-a")
            .get_opt("orphan")
            .await
            .unwrap()
            .is_none(),
        "its objects are gone too"
    );
}
