//! SessionClaims end to end: profiles, the kubeconfig only its user can read,
//! grants that follow namespace labels and the user's own RBAC, renewal,
//! revocation on delete and expiry, and admission's refusals.

mod common;

use std::{path::PathBuf, time::Duration};

use common::shared_with_operator;
use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{Namespace, Secret, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, wait::await_condition, watcher},
};
use portico::{
    api::{SessionClaim, common::EndReason, keys},
    controller::session::build::{Names, UID_LABEL},
    creator::Creator,
    tokens::{EXPIRES_ANNOTATION, ISSUED_ANNOTATION},
};
use serde_json::json;

const SESSIONS: &str = "portico-sessions";
const ALICE: (&str, &[&str]) = ("alice", &["developers", "system:authenticated"]);
const BOB: (&str, &[&str]) = ("bob", &["developers", "system:authenticated"]);

async fn client(user: (&str, &[&str])) -> Client {
    sessions_namespace().await.client_as(user.0, user.1).await.unwrap()
}

async fn admin() -> Client {
    shared_with_operator().admin_client().await.unwrap()
}

/// A namespace where developers may manage SessionClaims and nothing else.
async fn sessions_namespace() -> &'static portico::controlplane::ControlPlane {
    let cp = shared_with_operator();
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let admin = cp.admin_client().await.unwrap();
        common::operator::ensure_namespace(cp, SESSIONS).await;
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "claim-sessions", "namespace": SESSIONS},
            "rules": [{"apiGroups": ["portico.dev"], "resources": ["sessionclaims"],
                       "verbs": ["create", "get", "list", "watch", "patch", "delete"]}]
        }))
        .unwrap();
        portico::install::apply(&admin, &role).await.unwrap();
        let rb: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "claim-sessions", "namespace": SESSIONS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "claim-sessions"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "developers"}]
        }))
        .unwrap();
        portico::install::apply(&admin, &rb).await.unwrap();
    })
    .await;
    cp
}

fn claim(name: &str, profile: &str, extra: serde_json::Value) -> SessionClaim {
    use common::fixtures::With;
    common::fixtures::claim(name, profile).with(extra)
}

async fn create(user: (&str, &[&str]), c: &SessionClaim) -> Result<SessionClaim, kube::Error> {
    Api::<SessionClaim>::namespaced(client(user).await, SESSIONS)
        .create(&PostParams::default(), c)
        .await
}

async fn wait_ready(name: &str) -> SessionClaim {
    let api: Api<SessionClaim> = Api::namespaced(admin().await, SESSIONS);
    let ready = |c: &SessionClaim| c.status.as_ref().is_some_and(|s| common::wait::ready(&s.conditions));
    common::wait::present(&api, name, "Ready", ready).await
}

async fn wait_gone(name: &str) {
    common::wait::gone(&Api::<SessionClaim>::namespaced(admin().await, SESSIONS), name).await
}

/// The kubeconfig, read as `user` (through the reader Role), written to a file.
async fn kubeconfig_as(user: (&str, &[&str]), secret: &str, dir: &tempfile::TempDir) -> Result<PathBuf, kube::Error> {
    let s = Api::<Secret>::namespaced(client(user).await, SESSIONS)
        .get(secret)
        .await?;
    let path = dir
        .path()
        .join(format!("{secret}-{}", s.resource_version().unwrap_or_default()));
    std::fs::write(&path, &s.data.unwrap()["kubeconfig"].0).unwrap();
    Ok(path)
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(shared_with_operator().binaries().path("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

fn denied_how(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "expected a refusal: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn namespace(name: &str, labels: serde_json::Value) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    portico::install::apply(&admin().await, &ns).await.unwrap();
}

async fn edit_for_alice(ns: &str) {
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "alice-edit", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    }))
    .unwrap();
    portico::install::apply(&admin().await, &rb).await.unwrap();
}

#[tokio::test]
async fn alices_session_reaches_her_team_namespaces_and_only_she_can_read_it() {
    namespace("team-a2", json!({})).await;
    edit_for_alice("team-a2").await;
    namespace("team-a3", json!({"team": "a"})).await; // labelled, but alice has no rights there
    let created = create(ALICE, &claim("alice-dev", "developer", json!({})))
        .await
        .expect("alice may claim developer");
    assert_eq!(
        created.spec.idle_timeout.as_deref(),
        Some("1800s"),
        "defaulted from the profile"
    );
    let c = wait_ready("alice-dev").await;
    let status = c.status.clone().unwrap();
    let n = Names::for_uid(&c.uid().unwrap());
    assert_eq!(status.user.as_deref(), Some("alice"));
    assert_eq!(status.service_account_name.as_deref(), Some(n.service_account.as_str()));
    assert_eq!(status.kubeconfig_secret_name.as_deref(), Some(n.secret.as_str()));
    let message = status.message.unwrap();
    assert!(
        message.contains("edit in team-a") && message.contains("not granted") && message.contains("team-a3"),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_as(ALICE, &n.secret, &dir)
        .await
        .expect("alice reads her kubeconfig");
    match kubeconfig_as(BOB, &n.secret, &dir).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "bob may not read alice's Secret"),
        other => panic!("bob read alice's kubeconfig: {other:?}"),
    }
    let who = kubectl(&kc, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        format!("system:serviceaccount:{SESSIONS}:{}", n.service_account)
    );
    let ok = kubectl(&kc, &["get", "pods", "-n", "team-a"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(denied_how(&kubectl(&kc, &["get", "pods", "-n", "team-b"])).contains("Forbidden"));
    assert!(
        denied_how(&kubectl(&kc, &["get", "pods", "-n", "team-a2"])).contains("Forbidden"),
        "not labelled yet"
    );
    assert!(
        denied_how(&kubectl(&kc, &["get", "pods", "-n", "team-a3"])).contains("Forbidden"),
        "alice lacks rights there"
    );
    assert!(denied_how(&kubectl(&kc, &["get", "secrets", "-n", SESSIONS])).contains("Forbidden"));

    // A namespace labelled later becomes reachable.
    let patch = json!({"metadata": {"labels": {"team": "a"}}});
    Api::<Namespace>::all(admin().await)
        .patch("team-a2", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let rbs: Api<RoleBinding> = Api::namespaced(admin().await, "team-a2");
    let binding = n.grant(portico::api::common::RoleKind::ClusterRole, "edit");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(rbs, &binding, |r: Option<&RoleBinding>| r.is_some()),
    )
    .await
    .expect("a binding in the newly labelled namespace")
    .unwrap();
    let ok = kubectl(&kc, &["get", "pods", "-n", "team-a2"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // Deleting the claim revokes the kubeconfig on its very next request; nothing remains.
    Api::<SessionClaim>::namespaced(client(ALICE).await, SESSIONS)
        .delete("alice-dev", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone("alice-dev").await;
    let err = denied_how(&kubectl(&kc, &["get", "pods", "-n", "team-a"]));
    assert!(err.contains("Unauthorized") || err.contains("Forbidden"), "{err}");
    assert_eq!(leftovers(&c.uid().unwrap()).await, Vec::<String>::new());
}

async fn leftovers(uid: &str) -> Vec<String> {
    let a = admin().await;
    let lp = ListParams::default().labels(&format!("{UID_LABEL}={uid}"));
    let mut out: Vec<String> = vec![];
    out.extend(
        Api::<RoleBinding>::all(a.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|x| format!("rolebinding {}", x.name_any())),
    );
    out.extend(
        Api::<Role>::all(a.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|x| format!("role {}", x.name_any())),
    );
    out.extend(
        Api::<Secret>::all(a.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|x| format!("secret {}", x.name_any())),
    );
    out.extend(
        Api::<ServiceAccount>::all(a)
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(|x| format!("sa {}", x.name_any())),
    );
    out
}

/// Watches a claim until it is deleted; returns the last state seen.
async fn last_state_before_deletion(name: &str) -> SessionClaim {
    let api: Api<SessionClaim> = Api::namespaced(admin().await, SESSIONS);
    let mut stream = watcher(api, watcher::Config::default().fields(&format!("metadata.name={name}")))
        .default_backoff()
        .boxed();
    let fut = async {
        while let Some(ev) = stream.next().await {
            if let watcher::Event::Delete(c) = ev.unwrap() {
                return c;
            }
        }
        unreachable!()
    };
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("deleted in time")
}

#[tokio::test]
async fn an_idle_session_ends_and_its_kubeconfig_stops_working() {
    let watch = tokio::spawn(last_state_before_deletion("idle"));
    let c = create(
        ALICE,
        &claim("idle", "developer", json!({"spec": {"idleTimeout": "6s"}})),
    )
    .await
    .unwrap();
    let c = wait_ready(&c.name_any()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_as(ALICE, &Names::for_uid(&c.uid().unwrap()).secret, &dir)
        .await
        .unwrap();
    assert!(kubectl(&kc, &["get", "pods", "-n", "team-a"]).status.success());
    let end = watch.await.unwrap().status.unwrap();
    assert_eq!(end.end_reason, Some(EndReason::IdleTimeout));
    let ready = end.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str(), ready.message.as_str()),
        ("False", "Ended", "ended: no heartbeat arrived within the idle timeout")
    );
    // The very next request is refused: 401 once the token is gone, 403 while the
    // API server still has its authentication cached but the bindings are gone.
    let err = denied_how(&kubectl(&kc, &["get", "pods", "-n", "team-a"]));
    assert!(err.contains("Unauthorized") || err.contains("Forbidden"), "{err}");
    assert_eq!(leftovers(&c.uid().unwrap()).await, Vec::<String>::new());
}

#[tokio::test]
async fn max_lifetime_ends_a_session_despite_heartbeats() {
    let watch = tokio::spawn(last_state_before_deletion("short"));
    let c = create(
        ALICE,
        &claim(
            "short",
            "developer",
            json!({"spec": {"idleTimeout": "1h", "maxLifetime": "5s"}}),
        ),
    )
    .await
    .unwrap();
    let keepalive = json!({"metadata": {"annotations": {keys::OPERATION: "keepalive"}}});
    let patched = Api::<SessionClaim>::namespaced(client(ALICE).await, SESSIONS)
        .patch(&c.name_any(), &PatchParams::default(), &Patch::Merge(&keepalive))
        .await
        .expect("a heartbeat");
    assert!(patched.annotations().contains_key(keys::LAST_HEARTBEAT_AT));
    assert_eq!(
        watch.await.unwrap().status.unwrap().end_reason,
        Some(EndReason::MaxLifetime)
    );
}

#[tokio::test]
async fn a_renewed_token_keeps_working_and_deleting_the_secret_revokes_it() {
    let c = create(ALICE, &claim("renewing", "developer", json!({}))).await.unwrap();
    let c = wait_ready(&c.name_any()).await;
    let n = Names::for_uid(&c.uid().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let first = kubeconfig_as(ALICE, &n.secret, &dir).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin().await, SESSIONS);
    let aged = json!({"metadata": {"annotations": {ISSUED_ANNOTATION: "2020-01-01T00:00:00Z", EXPIRES_ANNOTATION: "2020-01-01T01:00:00Z"}}});
    secrets
        .patch(&n.secret, &PatchParams::default(), &Patch::Merge(&aged))
        .await
        .unwrap();
    // The operator sees the Secret's token is not the one it wrote, reads it
    // again and finds it due.
    let claims: Api<SessionClaim> = Api::namespaced(client(ALICE).await, SESSIONS);
    let renewed = |s: Option<&Secret>| {
        s.is_some_and(|s| {
            s.annotations()
                .get(ISSUED_ANNOTATION)
                .is_some_and(|v| !v.starts_with("2020"))
        })
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(secrets.clone(), &n.secret, renewed),
    )
    .await
    .unwrap()
    .unwrap();
    let second = kubeconfig_as(ALICE, &n.secret, &dir).await.unwrap();
    assert_ne!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    for kc in [&first, &second] {
        assert!(
            kubectl(kc, &["get", "pods", "-n", "team-a"]).status.success(),
            "both tokens work across the renewal"
        );
    }
    // Tokens are bound to the Secret: deleting it invalidates them. The API
    // server caches successful token authentications for up to 10 seconds, so
    // wait (bounded) for the refusal rather than expecting it on the next call.
    let old_uid = secrets.get(&n.secret).await.unwrap().uid().unwrap();
    secrets.delete(&n.secret, &DeleteParams::default()).await.unwrap();
    for kc in [&first, &second] {
        let refused = async {
            loop {
                let out = kubectl(kc, &["get", "pods", "-n", "team-a"]);
                if !out.status.success() {
                    return String::from_utf8_lossy(&out.stderr).into_owned();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let err = tokio::time::timeout(Duration::from_secs(30), refused)
            .await
            .expect("the token is refused");
        assert!(err.contains("Unauthorized"), "{err}");
    }
    // The controller issues a fresh Secret and token.
    let fresh =
        move |s: Option<&Secret>| s.is_some_and(|s| s.uid().as_deref() != Some(old_uid.as_str()) && s.data.is_some());
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(secrets.clone(), &n.secret, fresh),
    )
    .await
    .unwrap()
    .unwrap();
    let third = kubeconfig_as(ALICE, &n.secret, &dir).await.unwrap();
    assert!(kubectl(&third, &["get", "pods", "-n", "team-a"]).status.success());
    claims.delete("renewing", &DeleteParams::default()).await.unwrap();
    wait_gone("renewing").await;
}

#[tokio::test]
async fn a_refusal_names_each_field_at_fault_and_kubectl_prints_one_bullet_each() {
    let greedy = claim(
        "too-long",
        "developer",
        json!({"spec": {"idleTimeout": "9h", "maxLifetime": "48h"}}),
    );
    let kube::Error::Api(s) = create(BOB, &greedy).await.unwrap_err() else {
        panic!()
    };
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
    let details = s.details.clone().expect("the refusal carries details");
    assert_eq!(
        (details.group.as_str(), details.kind.as_str(), details.name.as_str()),
        ("portico.dev", "SessionClaim", "too-long")
    );
    let causes: Vec<(&str, &str)> = details
        .causes
        .iter()
        .map(|c| (c.field.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        causes,
        [
            ("spec.idleTimeout", "FieldValueInvalid"),
            ("spec.maxLifetime", "FieldValueInvalid")
        ]
    );
    assert!(
        details.causes[1].message.starts_with("48h is above the maximum of ")
            && details.causes[1].message.ends_with("(profile developer)"),
        "{:?}",
        details.causes
    );
    // The message still says it all, for clients that read only the message.
    assert!(
        s.message.contains("spec.idleTimeout 9h is above") && s.message.contains("spec.maxLifetime 48h is above"),
        "{}",
        s.message
    );

    // kubectl prints the causes as it prints the API server's own validation errors.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("claim.yaml");
    std::fs::write(&file, serde_json::to_string(&greedy).unwrap()).unwrap();
    let out = common::kubectl(&["apply", "-n", SESSIONS, "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [
        "The SessionClaim \"too-long\" is invalid: \n",
        "\n* spec.idleTimeout: 9h is above the maximum of ",
        "\n* spec.maxLifetime: 48h is above the maximum of ",
    ] {
        assert!(
            stderr.contains(line),
            "{line:?} missing from kubectl's error:\n{stderr}"
        );
    }

    // A refusal (403) names its field too; kubectl prints the message of those.
    let kube::Error::Api(s) = create(BOB, &claim("ops-only", "ops", json!({}))).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(s.code, 403);
    let causes = s.details.map(|d| d.causes).unwrap_or_default();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0].field, "spec.profile");
}

#[tokio::test]
async fn admission_refuses_wrong_profiles_groups_limits_and_claims_for_someone_else() {
    let kube::Error::Api(s) = create(BOB, &claim("ops-try", "ops", json!({}))).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(s.code, 403);
    assert!(
        s.message.contains("bob may not claim session profile ops"),
        "{}",
        s.message
    );

    let kube::Error::Api(s) = create(BOB, &claim("nope", "no-such-profile", json!({})))
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("no session profile named \"no-such-profile\"")
            && s.message.contains("developer, pair, ops"),
        "{}",
        s.message
    );

    let kube::Error::Api(s) = create(
        BOB,
        &claim("greedy", "developer", json!({"spec": {"maxLifetime": "48h"}})),
    )
    .await
    .unwrap_err() else {
        panic!()
    };
    assert!(
        s.message.contains("spec.maxLifetime") && s.message.contains("above the maximum"),
        "{}",
        s.message
    );

    let forged = Creator {
        user: "alice".into(),
        groups: vec!["developers".into()],
    }
    .to_annotation();
    let c = claim(
        "for-alice",
        "developer",
        json!({"metadata": {"annotations": {keys::CREATED_BY: forged}}}),
    );
    let kube::Error::Api(s) = create(BOB, &c).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(s.code, 403);
    assert!(s.message.contains("cannot be set by a client"), "{}", s.message);

    // At most two active `pair` sessions per user.
    create(BOB, &claim("bob-1", "pair", json!({}))).await.unwrap();
    create(BOB, &claim("bob-2", "pair", json!({}))).await.unwrap();
    let kube::Error::Api(s) = create(BOB, &claim("bob-3", "pair", json!({}))).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(s.code, 403);
    assert!(
        s.message.contains("bob already has 2 active sessions of profile pair"),
        "{}",
        s.message
    );
    let claims: Api<SessionClaim> = Api::namespaced(client(BOB).await, SESSIONS);
    for n in ["bob-1", "bob-2"] {
        claims.delete(n, &DeleteParams::default()).await.unwrap();
    }
    for n in ["bob-1", "bob-2"] {
        wait_gone(n).await;
    }
    create(BOB, &claim("bob-3", "pair", json!({})))
        .await
        .expect("room again after ending sessions");
    claims.delete("bob-3", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn heartbeats_move_a_sessions_idle_deadline() {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let c = create(
        ALICE,
        &claim("beating", "developer", json!({"spec": {"idleTimeout": "20m"}})),
    )
    .await
    .unwrap();
    let first = wait_ready(&c.name_any()).await.status.unwrap().expires_at.unwrap().0;
    let claims: Api<SessionClaim> = Api::namespaced(client(ALICE).await, SESSIONS);
    let keepalive = json!({"metadata": {"annotations": {keys::OPERATION: "keepalive"}}});
    // Heartbeat until the server's recorded time is at least a second after the first deadline's base.
    let later = first.saturating_add(SignedDuration::from_secs(1)).unwrap();
    loop {
        let c = claims
            .patch("beating", &PatchParams::default(), &Patch::Merge(&keepalive))
            .await
            .unwrap();
        let hb: Timestamp = c.annotations()[keys::LAST_HEARTBEAT_AT].parse().unwrap();
        if hb.saturating_add(SignedDuration::from_mins(20)).unwrap() >= later {
            break;
        }
    }
    let api: Api<SessionClaim> = Api::namespaced(admin().await, SESSIONS);
    let moved = move |c: Option<&SessionClaim>| {
        c.and_then(|c| c.status.as_ref())
            .and_then(|s| s.expires_at.as_ref())
            .is_some_and(|e| e.0 > first)
    };
    tokio::time::timeout(Duration::from_secs(30), await_condition(api, "beating", moved))
        .await
        .expect("a later deadline")
        .unwrap();
    claims.delete("beating", &DeleteParams::default()).await.unwrap();
    wait_gone("beating").await;
}
