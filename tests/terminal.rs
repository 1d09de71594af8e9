//! Terminals end to end: a real control plane with a node (terminal pods run
//! the local toolbox image), the operator as a process with its webhook
//! registered, users acting through impersonation, and the real kubectl
//! using the kubeconfig a Terminal hands out, from the host and from inside
//! the pod.

mod common;

use common::fixtures::{self, With};

use std::time::Duration;

use common::{shared_with_operator, wait_pod_ready};
use futures::StreamExt;
use k8s_openapi::api::{
    authentication::v1::TokenRequest,
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
    core::v1::{Pod, Secret, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, wait::await_condition, watcher},
};
use portico::{
    api::{Terminal, keys},
    controller::terminal::build::{Names, UID_LABEL},
    creator::Creator,
};
use serde_json::{Value, json};

const ALICE: (&str, &[&str]) = ("alice", &["developers", "system:authenticated"]);
const BOB: (&str, &[&str]) = ("bob", &["developers", "system:authenticated"]);
const CAROL: (&str, &[&str]) = ("carol", &["portico-admins", "system:authenticated"]);

async fn client(user: (&str, &[&str])) -> Client {
    shared_with_operator().client_as(user.0, user.1).await.unwrap()
}

fn terminal(name: &str, host_ns: &str, target_ns: &str, extra: Value) -> Terminal {
    fixtures::terminal_in(name, host_ns, target_ns, "edit").with(extra)
}

async fn create(user: (&str, &[&str]), ns: &str, t: &Terminal) -> Result<Terminal, kube::Error> {
    Api::<Terminal>::namespaced(client(user).await, ns)
        .create(&PostParams::default(), t)
        .await
}

fn denied(r: Result<Terminal, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Ok(t) => panic!("expected a refusal, {} was created", t.name_any()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

async fn admin_api(ns: &str) -> Api<Terminal> {
    Api::namespaced(shared_with_operator().admin_client().await.unwrap(), ns)
}

/// Waits (bounded, through a watch) until the Terminal satisfies `cond`.
async fn wait_for(ns: &str, name: &str, what: &str, cond: impl Fn(&Terminal) -> bool + Send + 'static) -> Terminal {
    common::wait::present(&admin_api(ns).await, name, what, cond).await
}

async fn wait_gone(ns: &str, name: &str) {
    common::wait::gone(&admin_api(ns).await, name).await
}

fn ready(t: &Terminal) -> bool {
    t.status.as_ref().is_some_and(|s| common::wait::ready(&s.conditions))
}

fn kubectl_with(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(shared_with_operator().binaries().path("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

/// Everything labelled with the Terminal's UID, in any namespace, once its pod has ended.
async fn leftovers(uid: &str) -> Vec<String> {
    let c = shared_with_operator().admin_client().await.unwrap();
    // The pod was deleted; on the node it ends within its grace period.
    common::wait_pods_gone(&c, &format!("{UID_LABEL}={uid}")).await;
    let lp = ListParams::default().labels(&format!("{UID_LABEL}={uid}"));
    let mut out = vec![];
    for p in Api::<Pod>::all(c.clone()).list(&lp).await.unwrap() {
        out.push(format!("pod {}", p.name_any()));
    }
    for s in Api::<Secret>::all(c.clone()).list(&lp).await.unwrap() {
        out.push(format!("secret {}", s.name_any()));
    }
    for s in Api::<ServiceAccount>::all(c.clone()).list(&lp).await.unwrap() {
        out.push(format!("serviceaccount {}", s.name_any()));
    }
    for r in Api::<Role>::all(c.clone()).list(&lp).await.unwrap() {
        out.push(format!("role {}", r.name_any()));
    }
    for r in Api::<RoleBinding>::all(c.clone()).list(&lp).await.unwrap() {
        out.push(format!("rolebinding {}", r.name_any()));
    }
    for r in Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(c)
        .list(&lp)
        .await
        .unwrap()
    {
        out.push(format!("clusterrolebinding {}", r.name_any()));
    }
    out
}

#[tokio::test]
async fn alice_gets_a_terminal_whose_kubeconfig_reaches_exactly_edit_in_team_a() {
    let t = create(ALICE, "team-a", &terminal("alice-edit", "team-a", "team-a", json!({})))
        .await
        .unwrap();
    let creator = Creator::from_annotations(t.metadata.annotations.as_ref()).unwrap();
    assert_eq!(creator.user, "alice");
    assert_eq!(
        t.spec.idle_timeout.as_deref(),
        Some("1800s"),
        "defaulted by the webhook"
    );
    let t = wait_for("team-a", "alice-edit", "pod name in status", |t| {
        t.status.as_ref().is_some_and(|s| s.pod_name.is_some())
    })
    .await;
    let uid = t.uid().unwrap();
    let n = Names::for_uid(&uid);
    let status = t.status.clone().unwrap();
    assert_eq!(status.pod_name.as_deref(), Some(n.pod.as_str()));
    assert_eq!(status.host_namespace.as_deref(), Some("team-a"));
    assert_eq!(status.attach_service_account_name.as_deref(), Some(n.attach.as_str()));
    assert!(status.expires_at.is_some());
    // The operator mirrors the creator into status, so the API server selects by it.
    assert_eq!(status.creator.as_deref(), Some("alice"));
    let selected = |user: &str| {
        let fields = format!("status.creator={user}");
        async move {
            let list = admin_api("team-a")
                .await
                .list(&ListParams::default().fields(&fields))
                .await
                .unwrap();
            list.items.iter().any(|x| x.name_any() == "alice-edit")
        }
    };
    assert!(selected("alice").await && !selected("bob").await);

    let admin = shared_with_operator().admin_client().await.unwrap();
    let role = Api::<Role>::namespaced(admin.clone(), "team-a")
        .get(&n.attach)
        .await
        .unwrap();
    let rules: Vec<(String, Vec<String>, String)> = role
        .rules
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.resources.unwrap()[0].clone(),
                r.verbs,
                r.resource_names.unwrap()[0].clone(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("pods/attach".into(), vec!["get".into(), "create".into()], n.pod.clone()),
            ("pods".into(), vec!["get".into(), "watch".into()], n.pod.clone()),
            ("serviceaccounts/token".into(), vec!["create".into()], n.attach.clone()),
        ]
    );
    let rb = Api::<RoleBinding>::namespaced(admin.clone(), "team-a")
        .get(&n.attach)
        .await
        .unwrap();
    let subjects: Vec<(String, String)> = rb.subjects.unwrap().into_iter().map(|s| (s.kind, s.name)).collect();
    assert_eq!(
        subjects,
        vec![
            ("ServiceAccount".into(), n.attach.clone()),
            ("User".into(), "alice".into())
        ]
    );
    let access = Api::<RoleBinding>::namespaced(admin.clone(), "team-a")
        .get(&n.binding("edit"))
        .await
        .unwrap();
    assert_eq!(access.role_ref.name, "edit");
    let subject = access.subjects.unwrap()[0].clone();
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        (n.access.as_str(), Some("portico-terminals")),
        "the access service account lives where no editor of team-a reaches it"
    );
    let pod = Api::<Pod>::namespaced(admin.clone(), "team-a")
        .get(&n.pod)
        .await
        .unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(
        (spec.containers[0].stdin, spec.containers[0].tty),
        (Some(true), Some(true))
    );

    // The kubeconfig in the Secret works with the real kubectl, within edit in team-a only.
    let secret = Api::<Secret>::namespaced(admin.clone(), "team-a")
        .get(&n.kubeconfig_secret)
        .await
        .unwrap();
    let kc = secret.data.unwrap()["kubeconfig"].0.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kc).unwrap();
    let who = kubectl_with(&path, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        format!("system:serviceaccount:portico-terminals:{}", n.access)
    );
    let ok = kubectl_with(&path, &["get", "pods", "-n", "team-a"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let other_ns = kubectl_with(&path, &["get", "pods", "-n", "team-b"]);
    assert!(!other_ns.status.success());
    assert!(String::from_utf8_lossy(&other_ns.stderr).contains("Forbidden"));
    let beyond_edit = kubectl_with(
        &path,
        &[
            "create",
            "rolebinding",
            "x",
            "--clusterrole=admin",
            "--user=eve",
            "-n",
            "team-a",
        ],
    );
    assert!(!beyond_edit.status.success(), "edit may not create role bindings");
    assert!(String::from_utf8_lossy(&beyond_edit.stderr).contains("forbidden"));

    // Ready once the kubelet runs the pod; kubectl wait sees it.
    wait_pod_ready(&admin, "team-a", &n.pod).await;
    wait_for("team-a", "alice-edit", "Ready", ready).await;
    let out = common::kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "-n",
        "team-a",
        "terminal/alice-edit",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Deleting it removes everything, and the kubeconfig stops working.
    Api::<Terminal>::namespaced(client(ALICE).await, "team-a")
        .delete("alice-edit", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone("team-a", "alice-edit").await;
    assert_eq!(leftovers(&uid).await, Vec::<String>::new());
    let after = kubectl_with(&path, &["get", "pods", "-n", "team-a"]);
    assert!(
        !after.status.success(),
        "the token must be revoked with its service account"
    );
}

/// Deletes `name` as an admin and waits until the operator has made it again
/// (another UID); returns the new object.
async fn made_again<K>(api: Api<K>, name: &str) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
{
    let old = api.get(name).await.unwrap().meta().uid.clone();
    api.delete(name, &DeleteParams::default()).await.unwrap();
    common::wait::present(&api, name, "made again by the operator", move |o: &K| {
        o.meta().uid != old
    })
    .await
}

#[tokio::test]
async fn children_deleted_by_someone_else_are_made_again_and_the_token_follows_its_account() {
    let ns = "team-a";
    create(ALICE, ns, &terminal("repaired", ns, ns, json!({})))
        .await
        .unwrap();
    let t = wait_for(ns, "repaired", "Ready", ready).await;
    let n = Names::for_uid(&t.uid().unwrap());
    let admin = shared_with_operator().admin_client().await.unwrap();
    // Each is made again from its deletion's watch event, long before the
    // periodic re-apply (portico::controller::applied::RESYNC, 10 minutes).
    made_again(Api::<RoleBinding>::namespaced(admin.clone(), ns), &n.attach).await;
    made_again(Api::<Role>::namespaced(admin.clone(), ns), &n.attach).await;
    made_again(Api::<ServiceAccount>::namespaced(admin.clone(), ns), &n.attach).await;
    made_again(Api::<RoleBinding>::namespaced(admin.clone(), ns), &n.binding("edit")).await;
    made_again(Api::<Secret>::namespaced(admin.clone(), ns), &n.kubeconfig_secret).await;
    // The access service account: its token died with it, so the kubeconfig
    // Secret gets a token for the new one, which works.
    let secrets = Api::<Secret>::namespaced(admin.clone(), ns);
    let account = made_again(
        Api::<ServiceAccount>::namespaced(admin.clone(), "portico-terminals"),
        &n.access,
    )
    .await;
    let new_uid = account.metadata.uid.clone().unwrap();
    let secret = common::wait::present(
        &secrets,
        &n.kubeconfig_secret,
        "a token for the new account",
        move |s| s.annotations().get(keys::TOKEN_ACCOUNT_UID_ANNOTATION) == Some(&new_uid),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, &secret.data.unwrap()["kubeconfig"].0).unwrap();
    let who = kubectl_with(&path, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        format!("system:serviceaccount:portico-terminals:{}", n.access),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    // Still Ready, and removed with everything else.
    assert!(ready(&admin_api(ns).await.get("repaired").await.unwrap()));
    let uid = t.uid().unwrap();
    admin_api(ns)
        .await
        .delete("repaired", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(ns, "repaired").await;
    assert_eq!(leftovers(&uid).await, Vec::<String>::new());
}

/// Runs `command` inside the terminal container with `kubectl exec` (as admin).
fn exec_in(ns: &str, pod: &str, command: &[&str]) -> std::process::Output {
    let mut args = vec!["exec", "-n", ns, pod, "-c", "terminal", "--"];
    args.extend_from_slice(command);
    common::kubectl(&args)
}

#[tokio::test]
async fn inside_the_running_pod_the_kubeconfig_reaches_the_api_server_as_the_terminal() {
    let ns = "team-a";
    create(ALICE, ns, &terminal("in-pod", ns, ns, json!({}))).await.unwrap();
    let t = wait_for(ns, "in-pod", "Ready", ready).await;
    let n = Names::for_uid(&t.uid().unwrap());
    let pod = n.pod.clone();
    let (who, allowed, other) = tokio::task::spawn_blocking(move || {
        (
            exec_in(
                ns,
                &pod,
                &[
                    "kubectl",
                    "auth",
                    "whoami",
                    "-o",
                    "jsonpath={.status.userInfo.username}",
                ],
            ),
            exec_in(ns, &pod, &["kubectl", "get", "pods", "-n", "team-a"]),
            exec_in(ns, &pod, &["kubectl", "get", "pods", "-n", "team-b"]),
        )
    })
    .await
    .unwrap();
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        format!("system:serviceaccount:portico-terminals:{}", n.access)
    );
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert!(
        String::from_utf8_lossy(&allowed.stdout).contains(&n.pod),
        "the pod sees itself: {}",
        String::from_utf8_lossy(&allowed.stdout)
    );
    assert!(!other.status.success(), "team-b is not the target");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("Forbidden"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    Api::<Terminal>::namespaced(client(ALICE).await, ns)
        .delete("in-pod", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(ns, "in-pod").await;
}

#[tokio::test]
async fn only_the_creator_gets_an_attach_token_and_it_attaches_to_this_pod_only() {
    let ns = "team-a";
    create(ALICE, ns, &terminal("attach", ns, ns, json!({}))).await.unwrap();
    let t = wait_for(ns, "attach", "pod name", |t| {
        t.status.as_ref().is_some_and(|s| s.pod_name.is_some())
    })
    .await;
    let n = Names::for_uid(&t.uid().unwrap());
    let sa = &n.attach;
    let req = TokenRequest::default();
    // The attach Role and binding may land a moment after the status; wait on the RoleBinding.
    let admin = shared_with_operator().admin_client().await.unwrap();
    let rbs: Api<RoleBinding> = Api::namespaced(admin, ns);
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(rbs, sa, |r: Option<&RoleBinding>| r.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    let alice_sas: Api<ServiceAccount> = Api::namespaced(client(ALICE).await, ns);
    let token = alice_sas
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .expect("alice may mint an attach token");
    let token = token.status.unwrap().token.unwrap();
    let bob_sas: Api<ServiceAccount> = Api::namespaced(client(BOB).await, ns);
    match bob_sas.create_token_request(sa, &PostParams::default(), &req).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("bob must not get an attach token: {other:?}"),
    }
    let mut config = kube::Config::new(shared_with_operator().server().parse().unwrap());
    config.root_cert =
        kube::Config::from_custom_kubeconfig(shared_with_operator().kubeconfig().clone(), &Default::default())
            .await
            .unwrap()
            .root_cert;
    config.auth_info.token = Some(token.into());
    let as_attach = Client::try_from(config).unwrap();
    let can = |name: &str| {
        let client = as_attach.clone();
        let name = name.to_string();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(ns.into()),
                        verb: Some("create".into()),
                        resource: Some("pods".into()),
                        subresource: Some("attach".into()),
                        name: Some(name),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            Api::<SelfSubjectAccessReview>::all(client)
                .create(&PostParams::default(), &review)
                .await
                .unwrap()
                .status
                .unwrap()
                .allowed
        }
    };
    assert!(can(&n.pod).await, "the attach token may attach to its pod");
    assert!(!can("some-other-pod").await, "and to no other pod");
    admin_api(ns)
        .await
        .delete("attach", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(ns, "attach").await;
}

#[tokio::test]
async fn heartbeats_extend_the_idle_deadline() {
    let ns = "team-a";
    create(
        ALICE,
        ns,
        &terminal("beat", ns, ns, json!({"spec": {"idleTimeout": "20m"}})),
    )
    .await
    .unwrap();
    // Ready: the operator has seen its pod in its cache, so later passes need not apply anything.
    let t = wait_for(ns, "beat", "Ready", |t| {
        t.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;
    let first = t.status.clone().unwrap().expires_at.unwrap().0;
    // Writes to the Terminal's children, from the API server's audit log.
    let n = Names::for_uid(&t.uid().unwrap());
    let children = [n.pod, n.attach, n.access, n.kubeconfig_secret];
    let child_writes = move || {
        shared_with_operator()
            .audit_events()
            .into_iter()
            .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
            .filter(|e| {
                e.object_ref
                    .as_ref()
                    .is_some_and(|o| o.namespace == ns && o.subresource.is_empty() && children.contains(&o.name))
            })
            .count()
    };
    let before = child_writes();
    assert!(before > 0, "the first pass applied the children");
    let keepalive = json!({"metadata": {"annotations": {keys::OPERATION: "keepalive"}}});
    let alice: Api<Terminal> = Api::namespaced(client(ALICE).await, ns);
    // Time advances past the first second so the new deadline is visibly later.
    let later = first
        .saturating_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .unwrap();
    let mut stored = alice.get("beat").await.unwrap();
    while stored
        .annotations()
        .get(keys::LAST_HEARTBEAT_AT)
        .and_then(|h| h.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .is_none_or(|h| {
            h.saturating_add(k8s_openapi::jiff::SignedDuration::from_mins(20))
                .unwrap()
                < later
        })
    {
        stored = alice
            .patch("beat", &PatchParams::default(), &Patch::Merge(&keepalive))
            .await
            .expect("keepalive");
        assert!(
            stored.annotations().get(keys::OPERATION).is_none(),
            "the webhook consumes the operation"
        );
    }
    let t = wait_for(ns, "beat", "a later expiresAt", move |t| {
        t.status
            .as_ref()
            .and_then(|s| s.expires_at.as_ref())
            .is_some_and(|e| e.0 > first)
    })
    .await;
    assert!(t.status.unwrap().expires_at.unwrap().0 >= later.round(k8s_openapi::jiff::Unit::Second).unwrap());
    // The passes the heartbeats started moved the expiry and wrote no child.
    assert_eq!(child_writes(), before, "a heartbeat re-applied the Terminal's children");
    admin_api(ns)
        .await
        .delete("beat", &DeleteParams::default())
        .await
        .unwrap();
}

/// Watches a Terminal until it is deleted and returns the last state seen.
async fn last_state_before_deletion(ns: &str, name: &str) -> Terminal {
    let api = admin_api(ns).await;
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    let mut last = None;
    let fut = async {
        while let Some(ev) = stream.next().await {
            match ev.unwrap() {
                watcher::Event::Apply(t) | watcher::Event::InitApply(t) => last = Some(t),
                watcher::Event::Delete(t) => return t,
                _ => {}
            }
        }
        unreachable!()
    };
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(t) => t,
        Err(_) => panic!("{name} not deleted; last seen {last:?}"),
    }
}

#[tokio::test]
async fn without_heartbeats_a_terminal_ends_at_its_idle_timeout_and_leaves_nothing() {
    let ns = "team-a";
    let watch = tokio::spawn(last_state_before_deletion(ns, "idle"));
    let t = create(
        ALICE,
        ns,
        &terminal("idle", ns, ns, json!({"spec": {"idleTimeout": "3s"}})),
    )
    .await
    .unwrap();
    let end = watch.await.unwrap();
    let status = end.status.unwrap();
    assert_eq!(status.end_reason, Some(portico::api::common::EndReason::IdleTimeout));
    assert_eq!(
        ready_condition(&status),
        ("False", "Ended", "ended: no heartbeat arrived within the idle timeout")
    );
    let expires = status.expires_at.unwrap().0;
    let created = t.metadata.creation_timestamp.clone().unwrap().0;
    assert_eq!(expires.duration_since(created).as_secs(), 3);
    let deleted = end.metadata.deletion_timestamp.unwrap().0;
    assert!(
        deleted
            >= expires.round(k8s_openapi::jiff::Unit::Second).unwrap()
                - k8s_openapi::jiff::SignedDuration::from_secs(1)
    );
    assert_eq!(leftovers(&t.uid().unwrap()).await, Vec::<String>::new());
}

#[tokio::test]
async fn max_lifetime_ends_a_terminal_even_with_heartbeats() {
    let ns = "team-a";
    let watch = tokio::spawn(last_state_before_deletion(ns, "maxlife"));
    create(
        ALICE,
        ns,
        &terminal(
            "maxlife",
            ns,
            ns,
            json!({"spec": {"idleTimeout": "1h", "maxLifetime": "4s"}}),
        ),
    )
    .await
    .unwrap();
    let keepalive = json!({"metadata": {"annotations": {keys::OPERATION: "keepalive"}}});
    Api::<Terminal>::namespaced(client(ALICE).await, ns)
        .patch("maxlife", &PatchParams::default(), &Patch::Merge(&keepalive))
        .await
        .expect("a heartbeat is accepted");
    let end = watch.await.unwrap();
    assert_eq!(
        end.status.unwrap().end_reason,
        Some(portico::api::common::EndReason::MaxLifetime)
    );
}

/// The Ready condition's status, reason and message.
fn ready_condition(s: &portico::api::TerminalStatus) -> (&str, &str, &str) {
    let c = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("a Ready condition");
    (&c.status, &c.reason, &c.message)
}

#[tokio::test]
async fn a_deleted_terminal_is_no_longer_ready_and_says_it_was_deleted() {
    let ns = "team-a";
    create(ALICE, ns, &terminal("gone", ns, ns, json!({}))).await.unwrap();
    wait_for(ns, "gone", "Ready", ready).await;
    let watch = tokio::spawn(last_state_before_deletion(ns, "gone"));
    Api::<Terminal>::namespaced(client(ALICE).await, ns)
        .delete("gone", &Default::default())
        .await
        .unwrap();
    let status = watch.await.unwrap().status.unwrap();
    assert_eq!(status.end_reason, Some(portico::api::common::EndReason::Deleted));
    assert_eq!(ready_condition(&status), ("False", "Ended", "ended: it was deleted"));
    assert_eq!(status.message.as_deref(), Some("ended: it was deleted"));
}

#[tokio::test]
async fn bob_may_not_grant_himself_edit_in_team_a() {
    let (code, msg) = denied(create(BOB, "team-b", &terminal("sneak", "team-b", "team-a", json!({}))).await);
    assert_eq!(code, 403);
    assert!(
        msg.contains("bob may not grant ClusterRole edit in namespace team-a"),
        "{msg}"
    );
    let (code, msg) = denied(create(BOB, "team-b", &terminal("sneak2", "team-a", "team-b", json!({}))).await);
    assert_eq!(code, 403);
    assert!(msg.contains("bob may not create pods in namespace team-a"), "{msg}");
}

#[tokio::test]
async fn a_role_the_creator_cannot_fully_hold_is_refused_with_what_is_missing() {
    let extra = json!({"spec": {"target": {"roleBindings": [
        {"roleRef": {"kind": "ClusterRole", "name": "admin"}, "bindingKind": "RoleBinding", "nameSuffix": "admin"}
    ]}}});
    let (code, msg) = denied(create(ALICE, "team-a", &terminal("too-much", "team-a", "team-a", extra)).await);
    assert_eq!(code, 403);
    assert!(
        msg.contains("alice may not grant ClusterRole admin in namespace team-a"),
        "{msg}"
    );
    assert!(
        msg.contains("rolebindings.rbac.authorization.k8s.io"),
        "names a missing permission: {msg}"
    );
}

#[tokio::test]
async fn privileged_pods_need_a_privileged_group() {
    let extra = json!({"spec": {"host": {"pod": {"privileged": true}}}});
    let (code, msg) = denied(create(ALICE, "team-a", &terminal("priv", "team-a", "team-a", extra)).await);
    assert_eq!(code, 403);
    assert!(msg.contains("alice may not request privileged"), "{msg}");
}

#[tokio::test]
async fn keepalive_by_another_user_a_future_heartbeat_a_spec_change_and_a_forged_creator_are_refused() {
    let ns = "team-a";
    create(ALICE, ns, &terminal("guarded", ns, ns, json!({})))
        .await
        .unwrap();
    let keepalive = json!({"metadata": {"annotations": {keys::OPERATION: "keepalive"}}});
    let carol: Api<Terminal> = Api::namespaced(client(CAROL).await, ns);
    let err = carol
        .patch("guarded", &PatchParams::default(), &Patch::Merge(&keepalive))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.code, 403);
    assert!(
        s.message
            .contains("only the creator (alice) may keep this Terminal alive"),
        "{}",
        s.message
    );

    let alice: Api<Terminal> = Api::namespaced(client(ALICE).await, ns);
    let future = json!({"metadata": {"annotations": {keys::LAST_HEARTBEAT_AT: "2999-01-01T00:00:00Z"}}});
    let kube::Error::Api(s) = alice
        .patch("guarded", &PatchParams::default(), &Patch::Merge(&future))
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert!(s.message.contains("is in the future"), "{}", s.message);

    let change = json!({"spec": {"target": {"namespace": "team-b"}}});
    let kube::Error::Api(s) = alice
        .patch("guarded", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert!(
        s.message.contains("a Terminal cannot be changed after it is created"),
        "{}",
        s.message
    );

    let forged_value = Creator {
        user: "carol".into(),
        groups: vec!["portico-admins".into()],
    }
    .to_annotation();
    let forged = json!({"metadata": {"annotations": {keys::CREATED_BY: forged_value}}});
    let kube::Error::Api(s) = alice
        .patch("guarded", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert!(s.message.contains("immutable"), "{}", s.message);
    let mut t = terminal("forged", ns, ns, json!({}));
    t.metadata.annotations = Some([(keys::CREATED_BY.to_string(), forged_value)].into());
    let (code, msg) = denied(create(ALICE, ns, &t).await);
    assert_eq!(code, 403);
    assert!(msg.contains("cannot be set by a client"), "{msg}");
    admin_api(ns)
        .await
        .delete("guarded", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_target_kubeconfig_secret_stalls_with_that_reason() {
    let ns = "team-a";
    // Host and target in the same other cluster (a named host namespace may not reach another one).
    let cluster = json!({"kubeconfigSecretRef": {"name": "no-such-secret"}});
    let extra = json!({"spec": {"host": {"cluster": cluster}, "target": {"cluster": cluster}}});
    create(ALICE, ns, &terminal("lost", ns, ns, extra)).await.unwrap();
    let t = wait_for(ns, "lost", "Stalled", |t| {
        t.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True"))
    })
    .await;
    let stalled = t
        .status
        .clone()
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "TargetClusterUnreachable");
    assert!(
        stalled
            .message
            .contains("kubeconfig Secret team-a/no-such-secret does not exist"),
        "{}",
        stalled.message
    );
    admin_api(ns)
        .await
        .delete("lost", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(ns, "lost").await;
    // Deletion did not hang, and what could not be cleaned is reported.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(shared_with_operator().admin_client().await.unwrap(), ns);
    let reported = events
        .list(&ListParams::default().fields(&format!("regarding.name=lost,regarding.uid={}", t_uid(&t))))
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| {
            e.reason.as_deref() == Some("CleanupIncomplete") && e.note.unwrap_or_default().contains("no-such-secret")
        });
    assert!(reported, "a CleanupIncomplete event names the unreachable cluster");
}

fn t_uid(t: &Terminal) -> String {
    t.uid().unwrap()
}

#[tokio::test]
async fn a_token_due_for_renewal_is_replaced_and_the_new_kubeconfig_works() {
    use portico::controller::terminal::build::{TOKEN_EXPIRES_ANNOTATION, TOKEN_ISSUED_ANNOTATION};
    let ns = "team-a";
    create(ALICE, ns, &terminal("renew", ns, ns, json!({}))).await.unwrap();
    let t = wait_for(ns, "renew", "pod name", |t| {
        t.status.as_ref().is_some_and(|s| s.pod_name.is_some())
    })
    .await;
    let n = Names::for_uid(&t.uid().unwrap());
    let admin = shared_with_operator().admin_client().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let first = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(secrets.clone(), &n.kubeconfig_secret, |s: Option<&Secret>| s.is_some()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let first_kc = first.data.clone().unwrap()["kubeconfig"].0.clone();
    // Pretend the token was issued long ago: 80% of its life has passed.
    // The operator sees the Secret's token is not the one it wrote, reads it
    // again and finds it due.
    let aged = json!({"metadata": {"annotations": {
        TOKEN_ISSUED_ANNOTATION: "2020-01-01T00:00:00Z", TOKEN_EXPIRES_ANNOTATION: "2020-01-01T01:00:00Z"}}});
    secrets
        .patch(&n.kubeconfig_secret, &PatchParams::default(), &Patch::Merge(&aged))
        .await
        .unwrap();
    let renewed = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(secrets, &n.kubeconfig_secret, |s: Option<&Secret>| {
            s.is_some_and(|s| {
                s.annotations()
                    .get(TOKEN_ISSUED_ANNOTATION)
                    .is_some_and(|v| !v.starts_with("2020"))
            })
        }),
    )
    .await
    .expect("renewed")
    .unwrap()
    .unwrap();
    let new_kc = renewed.data.unwrap()["kubeconfig"].0.clone();
    assert_ne!(new_kc, first_kc, "a new token was issued");
    let dir = tempfile::tempdir().unwrap();
    for (name, kc) in [("old", &first_kc), ("new", &new_kc)] {
        let path = dir.path().join(name);
        std::fs::write(&path, kc).unwrap();
        let out = kubectl_with(&path, &["get", "configmaps", "-n", ns]);
        assert!(
            out.status.success(),
            "{name} token works across the renewal: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    admin_api(ns)
        .await
        .delete("renew", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(ns, "renew").await;
}

#[tokio::test]
async fn a_reconcile_that_fails_is_published_as_a_warning_event_and_retried() {
    // The host namespace does not exist: every apply there fails until it does.
    let host = format!("not-yet-{}", std::process::id());
    let t = create(
        CAROL,
        "team-a",
        &terminal(
            "no-host",
            &host,
            "team-a",
            json!({"spec": {"target": {"roleBindings": []}}}),
        ),
    )
    .await
    .unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(shared_with_operator().admin_client().await.unwrap(), "team-a");
    let cfg = watcher::Config::default().fields(&format!("regarding.name=no-host,regarding.uid={}", t_uid(&t)));
    let mut failed = watcher(events, cfg)
        .default_backoff()
        .applied_objects()
        .filter_map(|e| futures::future::ready(e.ok()))
        .filter(|e| futures::future::ready(e.reason.as_deref() == Some("ReconcileFailed")))
        .boxed();
    let event = tokio::time::timeout(Duration::from_secs(60), failed.next())
        .await
        .expect("a ReconcileFailed Warning Event")
        .unwrap();
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap_or_default();
    assert!(note.contains(&host) && note.contains("retrying in"), "{note}");
    // Once the namespace exists, the retry goes through.
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": host}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(shared_with_operator().admin_client().await.unwrap())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    wait_for("team-a", "no-host", "the pod made", |t| {
        t.status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .is_some_and(|m| m.contains("terminal pod") || m == "the terminal is ready")
    })
    .await;
    admin_api("team-a")
        .await
        .delete("no-host", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone("team-a", "no-host").await;
}
