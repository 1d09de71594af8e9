//! The operator process: a bad configuration stops it with the key at fault,
//! and so do missing webhook configurations in inject mode;
//! two replicas share one Lease; a replica killed mid-reconcile, or an API
//! server restart, converges with nothing leaked or duplicated; `/metrics`.

mod common;

use std::time::Duration;

use common::operator::{Operator, write_config};
use futures::future::join_all;
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Pod, Secret, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::wait::await_condition,
};
use portico::{api::Terminal, controller::terminal::build::UID_LABEL};
use serde_json::json;

fn terminal(name: &str) -> Terminal {
    common::fixtures::terminal_in(name, "team-a", "team-a", "view")
}

/// The tests here start operators that register the same webhook
/// configuration and Lease: they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn setup() -> &'static portico::controlplane::ControlPlane {
    let cp = common::shared();
    let admin = cp.admin_client().await.unwrap();
    portico::dev::setup_demo(&admin).await.unwrap();
    portico::install::wait_aggregated(&admin).await.unwrap();
    cp
}

/// The operator's writes (create, update, patch, delete; no subresource)
/// to the objects `wanted` picks, from the API server's audit log.
fn operator_writes(
    cp: &portico::controlplane::ControlPlane,
    wanted: impl Fn(&portico::controlplane::audit::ObjectRef) -> bool,
) -> Vec<String> {
    cp.audit_events()
        .into_iter()
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .filter(|e| e.user.username == "system:serviceaccount:portico-system:portico-operator")
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.subresource.is_empty() && wanted(o))
        })
        .map(|e| e.request_uri)
        .collect()
}

/// Waits (at most 60 s) until the operator logs a line about `object`
/// (`namespace/name`) that says `words`; fails with its log's tail.
async fn logged(op: &Operator, object: &str, words: &str) {
    logged_within(op, object, words, Duration::from_secs(60)).await
}

/// [`logged`], waiting at most `limit`.
async fn logged_within(op: &Operator, object: &str, words: &str, limit: Duration) {
    logged_after(op, 0, object, words, limit).await
}

/// Like [`logged_within`], in the operator's log after its first `from`
/// bytes (what an earlier process with the same log wrote).
async fn logged_after(op: &Operator, from: usize, object: &str, words: &str, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let log = std::fs::read(&op.log_path).unwrap();
        let log = String::from_utf8_lossy(log.get(from..).unwrap_or_default());
        if log.lines().any(|l| l.contains(object) && l.contains(words)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line of {object} says {words:?}; log:\n{}",
            op.process.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (at most 60 s) until the operator's `/metrics` has `line` (a
/// series and its value); fails with the series of the same name.
async fn exported(op: &Operator, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = op.metrics().await;
        if text.lines().any(|l| l == line) {
            return;
        }
        let name = line.split('{').next().unwrap_or(line);
        assert!(
            std::time::Instant::now() < deadline,
            "no {line:?} in /metrics; its series:\n{}",
            text.lines()
                .filter(|l| l.starts_with(name))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every named Terminal reports its pod, then checks each has
/// exactly its one set of objects.
async fn converged(names: &[String]) {
    let cp = common::shared();
    let admin = cp.admin_client().await.unwrap();
    let api: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    for name in names {
        let cond = |t: Option<&Terminal>| t.and_then(|t| t.status.as_ref()).is_some_and(|s| s.pod_name.is_some());
        tokio::time::timeout(Duration::from_secs(90), await_condition(api.clone(), name, cond))
            .await
            .unwrap_or_else(|_| panic!("{name} did not converge"))
            .unwrap();
    }
    for name in names {
        let t = api.get(name).await.unwrap();
        let lp = ListParams::default().labels(&format!("{UID_LABEL}={}", t.uid().unwrap()));
        let pods = Api::<Pod>::namespaced(admin.clone(), "team-a")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len();
        // (the access service account lives in portico-terminals)
        let sas = Api::<ServiceAccount>::all(admin.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .len();
        let roles = Api::<Role>::namespaced(admin.clone(), "team-a")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len();
        let rbs = Api::<RoleBinding>::namespaced(admin.clone(), "team-a")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len();
        let secrets = Api::<Secret>::namespaced(admin.clone(), "team-a")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len();
        // pod; attach + access service accounts; attach role; attach + one access binding; kubeconfig Secret
        assert_eq!(
            (pods, sas, roles, rbs, secrets),
            (1, 2, 1, 2, 1),
            "{name}: objects per Terminal"
        );
    }
}

async fn delete_all_and_check_nothing_left(names: &[String]) {
    let admin = common::shared().admin_client().await.unwrap();
    let api: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    let mut uids = vec![];
    for name in names {
        uids.push(api.get(name).await.unwrap().uid().unwrap());
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in names {
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(api.clone(), name, |t: Option<&Terminal>| t.is_none()),
        )
        .await
        .unwrap()
        .unwrap();
    }
    for uid in uids {
        let lp = ListParams::default().labels(&format!("{UID_LABEL}={uid}"));
        // Deleted pods end on the node within their grace period.
        common::wait_pods_gone(&admin, &format!("{UID_LABEL}={uid}")).await;
        assert!(
            Api::<ServiceAccount>::all(admin.clone())
                .list(&lp)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert!(
            Api::<RoleBinding>::all(admin.clone())
                .list(&lp)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert!(
            Api::<Secret>::all(admin.clone())
                .list(&lp)
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_bad_configuration_stops_the_operator_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            "terminal:\n  idleTimeout: {default: 9h, max: 1h}\nwebhook: {url: 'https://127.0.0.1:1'}\n",
            "terminal.idleTimeout.default",
        ),
        ("terminal:\n  tokenLifetme: 1h\n", "tokenLifetme"),
        ("controller: {concurrency: -1}\n", "controller.concurrency"),
        (
            "webhook: {url: 'https://127.0.0.1:1'}\nsessionProfiles:\n  - name: dev\n    allowedGroups: ['*']\n    grants:\n      - namespaces: {names: [a]}\n",
            "sessionProfiles[dev].grants[0]",
        ),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["operator", "--config"])
            .arg(&path)
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "stderr should name {key}: {err}");
    }
}

#[tokio::test]
async fn inject_mode_without_the_charts_configurations_stops_saying_how_to_fix_it() {
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    common::operator::ensure_namespace(cp, "portico-system").await;
    // The default test configuration (injectCaBundle: true), naming configurations nobody made.
    let (path, _) = write_config(cp, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "webhook:\n",
        "webhook:\n  configurationName: portico-not-installed\n",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["operator", "--config"])
        .arg(&path)
        .env("KUBECONFIG", cp.kubeconfig_path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the operator stops instead of waiting")
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "webhook.injectCaBundle is set, but the MutatingWebhookConfiguration \"portico-not-installed\" does not exist"
        ) && err.contains("set webhook.manageConfigurations: true"),
        "{err}"
    );
    // Nothing was made in their place.
    let admin = cp.admin_client().await.unwrap();
    let m: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let v: Api<ValidatingWebhookConfiguration> = Api::all(admin);
    assert!(m.get_opt("portico-not-installed").await.unwrap().is_none());
    assert!(v.get_opt("portico-not-installed").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_killed_mid_reconcile_and_apiserver_restart_converge_without_leaks() {
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let extra = format!("leaderElection: {{enabled: false}}\n{}", common::TEST_PROFILES);
    let (config, port) = write_config(cp, &extra);
    let op = Operator::start(cp, config.clone(), port).await;
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let api: Api<Terminal> = Api::namespaced(alice, "team-a");
    let names: Vec<String> = (0..8).map(|i| format!("crash-{i}")).collect();
    let objects: Vec<Terminal> = names.iter().map(|n| terminal(n)).collect();
    let pp = PostParams::default();
    for r in join_all(objects.iter().map(|t| api.create(&pp, t))).await {
        r.unwrap();
    }
    // Deployments too, of a template with two ConfigMaps.
    let template: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "two-maps", "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": "displayName: Two\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-a'}\n  ---\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}-b'}\n"}
    }))
    .unwrap();
    let admin = cp.admin_client().await.unwrap();
    portico::dev::load_catalog(
        &admin,
        portico::dev::CATALOG_DIR.as_ref(),
        portico::dev::CATALOG_NAMESPACE,
        &portico::dev::catalog::local_images(),
    )
    .await
    .unwrap();
    portico::install::apply(&admin, &template).await.unwrap();
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let deployments: Api<portico::api::Deployment> = Api::namespaced(alice, "team-a");
    let dnames: Vec<String> = (0..4).map(|i| format!("crash-dep-{i}")).collect();
    for n in &dnames {
        let d: portico::api::Deployment = serde_json::from_value(json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": n},
            "spec": {"template": {"name": "two-maps"}}
        }))
        .unwrap();
        deployments.create(&PostParams::default(), &d).await.unwrap();
    }
    drop(op); // SIGKILL while the Terminals and Deployments are being reconciled
    let op = Operator::start(cp, config.clone(), port).await;
    converged(&names).await;
    // The restarted operator counts the Deployments that exist.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = op.metrics().await;
        let active = metrics
            .lines()
            .find_map(|l| l.strip_prefix("portico_active_objects{kind=\"Deployment\"} "))
            .and_then(|v| v.trim().parse::<i64>().ok());
        if active.is_some_and(|n| n >= dnames.len() as i64) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "portico_active_objects for Deployments is {active:?}, not at least {}",
            dnames.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let admin_deps: Api<portico::api::Deployment> = Api::namespaced(admin.clone(), "team-a");
    for n in &dnames {
        let ready = |d: Option<&portico::api::Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        };
        tokio::time::timeout(Duration::from_secs(60), await_condition(admin_deps.clone(), n, ready))
            .await
            .unwrap()
            .unwrap();
        let lp = ListParams::default().labels(&format!("portico.dev/deployment={n}"));
        let maps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), "team-a")
            .list(&lp)
            .await
            .unwrap();
        assert_eq!(maps.items.len(), 2, "{n}: each object exactly once");
        admin_deps.delete(n, &DeleteParams::default()).await.unwrap();
    }

    // The API server goes away and comes back: watches resume, new work is done.
    tokio::task::spawn_blocking(|| common::shared().restart_apiserver().unwrap())
        .await
        .unwrap();
    let more: Vec<String> = vec!["after-restart".into()];
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    Api::<Terminal>::namespaced(alice, "team-a")
        .create(&PostParams::default(), &terminal(&more[0]))
        .await
        .unwrap();
    converged(&more).await;
    converged(&names).await;
    // Every controller resumes, not only the Terminal one: a Deployment made right after is applied.
    let d: portico::api::Deployment = serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": "dep-after-restart"},
        "spec": {"template": {"name": "two-maps"}}
    }))
    .unwrap();
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    Api::<portico::api::Deployment>::namespaced(alice, "team-a")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let ready = |d: Option<&portico::api::Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(admin_deps.clone(), "dep-after-restart", ready),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the Deployment controller did not resume after the restart; log:\n{}",
            op.process.log_tail(400)
        )
    })
    .unwrap();
    eprintln!(
        "Deployment made after the API server restart Ready in {:?}",
        started.elapsed()
    );
    // And a SessionClaim.
    let claim: portico::api::SessionClaim = serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim", "metadata": {"name": "claim-after-restart"},
        "spec": {"profile": "developer"}
    }))
    .unwrap();
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let claims: Api<portico::api::SessionClaim> = Api::namespaced(alice, "team-a");
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let claim_ready = |c: Option<&portico::api::SessionClaim>| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(claims.clone(), "claim-after-restart", claim_ready),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the SessionClaim controller did not resume; log:\n{}",
            op.process.log_tail(100)
        )
    })
    .unwrap();
    claims
        .delete("claim-after-restart", &DeleteParams::default())
        .await
        .unwrap();
    admin_deps
        .delete("dep-after-restart", &DeleteParams::default())
        .await
        .unwrap();

    let metrics = op.metrics().await;
    for m in [
        "portico_reconciles_total{kind=\"Terminal\"}",
        "portico_reconcile_duration_seconds_bucket",
        "portico_admission_requests_total",
        "portico_active_objects{kind=\"Terminal\"}",
        "portico_active_objects{kind=\"Deployment\"}",
        "portico_active_objects{kind=\"SessionClaim\"}",
    ] {
        assert!(metrics.contains(m), "/metrics lacks {m}:\n{metrics}");
    }
    let all: Vec<String> = names.iter().chain(more.iter()).cloned().collect();
    delete_all_and_check_nothing_left(&all).await;
    drop(op);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_one_lease_and_the_other_takes_over() {
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let (c1, p1) = write_config(cp, "");
    let (c2, p2) = write_config(cp, "");
    let first = Operator::start(cp, c1, p1).await;
    let second = Operator::start(cp, c2, p2).await;
    let leases: Api<Lease> = Api::namespaced(cp.admin_client().await.unwrap(), "portico-system");
    let held = |l: Option<&Lease>| {
        l.and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.clone())
            .is_some()
    };
    let lease = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(leases.clone(), "portico-operator", held),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    let (leader, standby) = if holder.ends_with(&format!("-{}", first.process.pid())) {
        (first, second)
    } else {
        (second, first)
    };
    assert!(
        holder.ends_with(&format!("-{}", leader.process.pid())),
        "holder {holder}"
    );
    drop(leader);
    let standby_id = format!("-{}", standby.process.pid());
    let taken = move |l: Option<&Lease>| {
        l.and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.as_ref())
            .is_some_and(|h| h.ends_with(&standby_id))
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(leases, "portico-operator", taken),
    )
    .await
    .expect("the standby replica takes the lease")
    .unwrap();
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    Api::<Terminal>::namespaced(alice, "team-a")
        .create(&PostParams::default(), &terminal("failover"))
        .await
        .unwrap();
    converged(&["failover".to_string()]).await;
    delete_all_and_check_nothing_left(&["failover".to_string()]).await;
    drop(standby);
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_created_without_the_webhook_grant_nothing_and_sigterm_stops_cleanly() {
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let (config, port) = write_config(cp, "leaderElection: {enabled: false}\n");
    let mut op = Operator::start(cp, config, port).await;
    let admin = cp.admin_client().await.unwrap();
    // A misconfigured cluster: the webhook configurations are gone.
    Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .delete("portico", &DeleteParams::default())
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .delete("portico", &DeleteParams::default())
        .await
        .unwrap();
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let api: Api<Terminal> = Api::namespaced(alice, "team-a");
    let t = api
        .create(&PostParams::default(), &terminal("unvetted"))
        .await
        .expect("nothing stops it at admission now");
    let admin_terminals: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    let stalled = |t: Option<&Terminal>| {
        t.and_then(|t| t.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "MissingCreator")
        })
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(admin_terminals.clone(), "unvetted", stalled),
    )
    .await
    .expect("Stalled: MissingCreator")
    .unwrap();
    let lp = ListParams::default().labels(&format!("{UID_LABEL}={}", t.uid().unwrap()));
    assert!(
        Api::<Pod>::all(admin.clone()).list(&lp).await.unwrap().items.is_empty(),
        "no pod for an unvetted Terminal"
    );
    assert!(
        Api::<RoleBinding>::all(admin.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .is_empty(),
        "no grant"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), "team-a");
    let fields = format!("regarding.name=unvetted,regarding.uid={}", t.uid().unwrap());
    let evs = events.list(&ListParams::default().fields(&fields)).await.unwrap();
    assert!(
        evs.items.iter().any(|e| e.reason.as_deref() == Some("MissingCreator")),
        "an Event says why"
    );
    admin_terminals
        .delete("unvetted", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(admin_terminals, "unvetted", |t: Option<&Terminal>| t.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    let status = tokio::task::spawn_blocking(move || op.process.stop(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM ends the operator cleanly: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_removed_from_a_profile_leave_live_sessions_after_a_restart() {
    use portico::{api::SessionClaim, controller::session::build::Names};
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let profile = |grants: &str| {
        format!(
            "leaderElection: {{enabled: false}}\nsessionProfiles:\n  - name: shrink\n    allowedGroups: [developers]\n    grants:\n{grants}"
        )
    };
    let both = "      - namespaces: {names: [team-a]}\n        role: {kind: ClusterRole, name: edit}\n      - namespaces: {names: [team-a]}\n        role: {kind: ClusterRole, name: view}\n";
    let (config, port) = write_config(cp, &profile(both));
    let op = Operator::start(cp, config.clone(), port).await;
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let claim: SessionClaim = serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim", "metadata": {"name": "shrinking"}, "spec": {"profile": "shrink"}
    }))
    .unwrap();
    let c = Api::<SessionClaim>::namespaced(alice, "team-a")
        .create(&PostParams::default(), &claim)
        .await
        .unwrap();
    let n = Names::for_uid(&c.uid().unwrap());
    let rbs: Api<RoleBinding> = Api::namespaced(cp.admin_client().await.unwrap(), "team-a");
    let view = n.grant(portico::api::common::RoleKind::ClusterRole, "view");
    let edit = n.grant(portico::api::common::RoleKind::ClusterRole, "edit");
    for b in [&view, &edit] {
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(rbs.clone(), b, |r: Option<&RoleBinding>| r.is_some()),
        )
        .await
        .unwrap()
        .unwrap();
    }
    let metrics = op.metrics().await;
    assert!(
        metrics.contains("portico_active_sessions{profile=\"shrink\"} 1"),
        "{metrics}"
    );
    drop(op);
    // The profile loses its view grant; the operator starts again with it.
    let only_edit = "      - namespaces: {names: [team-a]}\n        role: {kind: ClusterRole, name: edit}\n";
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap().replace(both, only_edit),
    )
    .unwrap();
    let op = Operator::start(cp, config, port).await;
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(rbs.clone(), &view, |r: Option<&RoleBinding>| r.is_none()),
    )
    .await
    .expect("the view grant is pruned")
    .unwrap();
    assert!(rbs.get_opt(&edit).await.unwrap().is_some(), "the edit grant stays");
    let claims: Api<SessionClaim> = Api::namespaced(cp.admin_client().await.unwrap(), "team-a");
    claims.delete("shrinking", &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(claims, "shrinking", |c: Option<&SessionClaim>| c.is_none()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(rbs.get_opt(&edit).await.unwrap().is_none());
    drop(op);
}

async fn http(method: &str, port: u16, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let code = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        buf.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_name_object_user_and_reconcile_and_the_level_changes_at_runtime_on_loopback_only() {
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let (config, metrics_port) = write_config(cp, "leaderElection: {enabled: false}\n");
    let admin = portico::config::OperatorConfig::from_yaml(&std::fs::read_to_string(&config).unwrap())
        .unwrap()
        .metrics
        .admin_bind_address;
    let op = Operator::start(cp, config, metrics_port).await;
    // Not where metrics are scraped: only on the loopback admin address.
    assert_eq!(http("PUT", metrics_port, "/log-level", "trace").await.0, 404);
    assert_eq!(http("GET", metrics_port, "/log-level", "").await.0, 404);
    let port = admin.port();
    assert_eq!(
        http("GET", port, "/log-level", "").await,
        (200, "info,portico=debug".into())
    );
    let (code, body) = http("PUT", port, "/log-level", "portico=[nonsense").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("is not a log filter"), "{body}");
    assert_eq!(http("PUT", port, "/log-level", "warn").await.0, 200);
    assert_eq!(http("GET", port, "/log-level", "").await.1, "warn");
    assert_eq!(http("PUT", port, "/log-level", "info,portico=debug").await.0, 200);

    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    Api::<Terminal>::namespaced(alice, "team-a")
        .create(&PostParams::default(), &terminal("logged"))
        .await
        .unwrap();
    converged(&["logged".to_string()]).await;
    let log = std::fs::read_to_string(&op.log_path).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("object=team-a/logged") && l.contains("reconcile_id="))
        .unwrap_or_else(|| panic!("no reconcile line for team-a/logged:\n{log}"));
    assert!(
        line.contains("user=alice") && line.contains("kind=\"Terminal\""),
        "{line}"
    );
    delete_all_and_check_nothing_left(&["logged".to_string()]).await;
    drop(op);
}

/// Waits until both webhook configurations trust `ca` alone; then a
/// Terminal created by alice passes both webhooks (bounded retries while
/// the API server picks up the changed configurations), which it can only
/// when the operator serves a certificate `ca` signed.
async fn trusted_and_admitting(cp: &portico::controlplane::ControlPlane, op: &Operator, ca: &str, name: &str) {
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    let admin = cp.admin_client().await.unwrap();
    let only =
        |ca: String| move |hooks: Vec<Option<Vec<u8>>>| hooks.iter().all(|b| b.as_deref() == Some(ca.as_bytes()));
    let (v, m) = (only(ca.to_string()), only(ca.to_string()));
    common::wait::present(
        &Api::<ValidatingWebhookConfiguration>::all(admin.clone()),
        "portico",
        "the validating caBundle is the new CA",
        move |c| {
            v(c.webhooks
                .iter()
                .flatten()
                .map(|h| h.client_config.ca_bundle.clone().map(|b| b.0))
                .collect())
        },
    )
    .await;
    common::wait::present(
        &Api::<MutatingWebhookConfiguration>::all(admin),
        "portico",
        "the mutating caBundle is the new CA",
        move |c| {
            m(c.webhooks
                .iter()
                .flatten()
                .map(|h| h.client_config.ca_bundle.clone().map(|b| b.0))
                .collect())
        },
    )
    .await;
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let api: Api<Terminal> = Api::namespaced(alice, "team-a");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let created = loop {
        match api.create(&PostParams::default(), &terminal(name)).await {
            Ok(t) => break t,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("not admitted yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!(
                "the webhook is not trusted with its new certificate: {e}\n{}",
                op.process.log_tail(30)
            ),
        }
    };
    assert!(
        created.annotations().contains_key(portico::api::keys::CREATED_BY),
        "the mutating webhook answered"
    );
    let log = std::fs::read_to_string(&op.log_path).unwrap();
    assert!(log.contains("webhook serving certificate reloaded"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_webhook_certificate_is_served_and_trusted_without_a_restart() {
    use portico::webhook::tls;
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let (config, port) = write_config(cp, "leaderElection: {enabled: false}\n");
    let webhook = portico::config::OperatorConfig::from_yaml(&std::fs::read_to_string(&config).unwrap())
        .unwrap()
        .webhook;
    let op = Operator::start(cp, config, port).await;
    let admin = cp.admin_client().await.unwrap();

    // Another CA and certificate in the shared Secret, as a renewal by
    // another replica (or an admin's rotation) writes them.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &webhook.cert_secret.namespace);
    let name = &webhook.cert_secret.name;
    let before = secrets.get(name).await.unwrap();
    let fresh = tls::generate(&tls::hosts(&webhook)).unwrap();
    let patch = tls::secret_patch(&fresh, &fresh.ca_pem, before.metadata.resource_version.as_deref());
    secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // The running operator makes the API server trust the new CA, and only
    // it, and serves the new certificate.
    trusted_and_admitting(cp, &op, &fresh.ca_pem, "rotated").await;
    delete_all_and_check_nothing_left(&["rotated".to_string()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_directory_rotated_mid_run_is_served_and_trusted_without_a_restart() {
    use portico::webhook::tls;
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let (config, port) = write_config(cp, "leaderElection: {enabled: false}\n");
    let text = std::fs::read_to_string(&config).unwrap();
    let webhook = portico::config::OperatorConfig::from_yaml(&text).unwrap().webhook;
    // The files cert-manager's Secret puts in the pod, here in a directory.
    let dir = cp.dir().join(format!("webhook-certs-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |m: &tls::TlsMaterial| {
        for (file, pem) in [("tls.key", &m.key_pem), ("tls.crt", &m.cert_pem), ("ca.crt", &m.ca_pem)] {
            std::fs::write(dir.join(file), pem).unwrap();
        }
    };
    let first = tls::generate(&tls::hosts(&webhook)).unwrap();
    write(&first);
    let text = text.replacen("webhook:\n", &format!("webhook:\n  certDir: {}\n", dir.display()), 1);
    std::fs::write(&config, text).unwrap();
    let op = Operator::start(cp, config, port).await;
    // Rotated while it runs, as cert-manager renews.
    let second = tls::generate(&tls::hosts(&webhook)).unwrap();
    write(&second);
    trusted_and_admitting(cp, &op, &second.ca_pem, "rotated-dir").await;
    delete_all_and_check_nothing_left(&["rotated-dir".to_string()]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_operator_writes_only_the_children_that_went_missing() {
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let extra = format!("leaderElection: {{enabled: false}}\n{}", common::TEST_PROFILES);
    let (config, port) = write_config(cp, &extra);
    let op = Operator::start(cp, config.clone(), port).await;
    let alice: Api<Terminal> = Api::namespaced(cp.client_as("alice", &["developers"]).await.unwrap(), "team-a");
    let names: Vec<String> = vec!["restart-kept".into(), "restart-mended".into()];
    for n in &names {
        alice.create(&PostParams::default(), &terminal(n)).await.unwrap();
    }
    converged(&names).await;
    let admin = cp.admin_client().await.unwrap();
    let terminals: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    for n in &names {
        let recorded = |t: Option<&Terminal>| {
            t.and_then(|t| t.status.as_ref())
                .is_some_and(|s| s.children_digest.is_some())
        };
        tokio::time::timeout(Duration::from_secs(60), await_condition(terminals.clone(), n, recorded))
            .await
            .unwrap()
            .unwrap();
    }
    let mut ids = vec![];
    for n in &names {
        let uid = terminals.get(n).await.unwrap().uid().unwrap();
        ids.push(portico::controller::terminal::build::Names::for_uid(&uid));
    }
    let (kept, mended) = (&ids[0], &ids[1]);
    // Both opened, each counted once (the usage metrics).
    let opened = r#"portico_usage_opened_total{kind="Terminal",object_namespace="team-a",user="alice"}"#;
    exported(&op, &format!("{opened} 2")).await;
    drop(op);
    // While the operator is down, one Terminal loses its attach service account.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "team-a");
    sas.delete(&mended.attach, &DeleteParams::default()).await.unwrap();
    common::wait::gone(&sas, &mended.attach).await;
    // The operator's writes to its children (each name holds the
    // Terminal's id), from the API server's audit log.
    let kept_id = kept.id.clone();
    let writes_to_kept = || operator_writes(cp, |o| o.name.contains(&kept_id));
    let before = writes_to_kept();
    // The same configuration under another name: the restarted operator logs to a file of its own.
    let restarted = config.with_file_name("restarted-operator.yaml");
    std::fs::copy(&config, &restarted).unwrap();
    let op = Operator::start(cp, restarted, port).await;
    // The missing one is made again ...
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(sas.clone(), &mended.attach, |sa: Option<&ServiceAccount>| sa.is_some()),
    )
    .await
    .expect("the attach service account made again after the restart")
    .unwrap();
    // ... and the other Terminal's first pass found its children as recorded and wrote none.
    logged(&op, "team-a/restart-kept", "children as recorded in the status").await;
    let log = std::fs::read_to_string(&op.log_path).unwrap();
    let passes: Vec<&str> = log.lines().filter(|l| l.contains("team-a/restart-kept")).collect();
    assert_eq!(
        writes_to_kept(),
        before,
        "the restart wrote restart-kept's children again; its passes:\n{}",
        passes.join("\n")
    );
    for n in &names {
        terminals.delete(n, &DeleteParams::default()).await.unwrap();
    }
    for n in &names {
        common::wait::gone(&terminals, n).await;
    }
    // The restarted operator counted their ends, and no second opening.
    exported(
        &op,
        r#"portico_usage_ended_total{kind="Terminal",object_namespace="team-a",user="alice",reason="Deleted"} 2"#,
    )
    .await;
    exported(&op, &format!("{opened} 0")).await;
}

#[tokio::test]
async fn a_restarted_operator_applies_only_the_deployments_whose_objects_went_missing() {
    use portico::api::Deployment;
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let admin = cp.admin_client().await.unwrap();
    load_catalog(&admin).await;
    let extra = format!("leaderElection: {{enabled: false}}\n{}", common::TEST_PROFILES);
    let (config, port) = write_config(cp, &extra);
    let op = Operator::start(cp, config.clone(), port).await;
    let alice: Api<Deployment> = Api::namespaced(cp.client_as("alice", &["developers"]).await.unwrap(), "team-a");
    let names = ["kept-web", "mended-web"];
    let params = json!({"image": portico::controlplane::node::images::WEBAPP_IMAGE});
    for n in names {
        alice
            .create(
                &PostParams::default(),
                &common::fixtures::deployment(n, "webapp", params.clone()),
            )
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    for n in names {
        applied(&deployments, n, 3).await;
    }
    drop(op);
    // While the operator is down, one Deployment loses its Service.
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(admin.clone(), "team-a");
    let mended = deployments.get("mended-web").await.unwrap();
    let service = mended
        .status
        .as_ref()
        .unwrap()
        .resources
        .iter()
        .find(|r| r.kind == "Service")
        .unwrap()
        .name
        .clone();
    services.delete(&service, &DeleteParams::default()).await.unwrap();
    common::wait::gone(&services, &service).await;
    // The operator's writes to kept-web's objects (named after it), from the audit log.
    let writes_to_kept = || operator_writes(cp, |o| o.name.starts_with("kept-web") && o.api_group != "portico.dev");
    let before = writes_to_kept();
    assert!(!before.is_empty(), "the first operator applied kept-web's objects");
    let restarted = config.with_file_name("restarted-deployments-operator.yaml");
    std::fs::copy(&config, &restarted).unwrap();
    let op = Operator::start(cp, restarted, port).await;
    // The missing Service is applied again ...
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(
            services.clone(),
            &service,
            |s: Option<&k8s_openapi::api::core::v1::Service>| s.is_some(),
        ),
    )
    .await
    .expect("the Service applied again after the restart")
    .unwrap();
    // ... and kept-web's first pass took its objects as recorded and wrote none.
    logged(&op, "team-a/kept-web", "objects as recorded in the status").await;
    assert_eq!(writes_to_kept(), before, "the restart applied kept-web's objects again");
    for n in names {
        deployments.delete(n, &DeleteParams::default()).await.unwrap();
    }
    for n in names {
        common::wait::gone(&deployments, n).await;
    }
}

/// Loads the catalog the operator's Deployments render.
async fn load_catalog(admin: &kube::Client) {
    portico::dev::load_catalog(
        admin,
        std::path::Path::new(portico::dev::CATALOG_DIR),
        portico::dev::CATALOG_NAMESPACE,
        &portico::dev::catalog::local_images(),
    )
    .await
    .unwrap();
}

/// Waits (at most 90 s) until the Deployment `name` has its `objects`
/// applied and its status written for its generation.
async fn applied(deployments: &Api<portico::api::Deployment>, name: &str, objects: usize) {
    let recorded = move |d: Option<&portico::api::Deployment>| {
        d.is_some_and(|d| {
            d.status.as_ref().is_some_and(|s| {
                s.template_revision.is_some()
                    && s.observed_generation == d.metadata.generation
                    && s.resources.len() == objects
                    && s.resources
                        .iter()
                        .all(|r| r.health != portico::api::deployment::Health::NotFound)
            })
        })
    };
    tokio::time::timeout(
        Duration::from_secs(90),
        await_condition(deployments.clone(), name, recorded),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} was not applied"))
    .unwrap();
}

#[tokio::test]
async fn at_its_resync_a_deployment_is_applied_again_only_when_the_caches_cannot_show_it_as_applied() {
    use portico::api::Deployment;
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let admin = cp.admin_client().await.unwrap();
    load_catalog(&admin).await;
    let extra = format!(
        "leaderElection: {{enabled: false}}\ncontroller: {{resync: 1m}}\n{}",
        common::TEST_PROFILES
    );
    let (config, port) = write_config(cp, &extra);
    let op = Operator::start(cp, config.clone(), port).await;
    let alice: Api<Deployment> = Api::namespaced(cp.client_as("alice", &["developers"]).await.unwrap(), "team-a");
    // A CronJob alone, the web app (a ConfigMap, a Deployment and a
    // Service) and the database (a Secret, a Service and a StatefulSet):
    // every object of a kind a cache holds (a Secret by its metadata).
    let job =
        json!({"image": portico::controlplane::node::images::WEBAPP_IMAGE, "command": ["true"], "schedule": "@daily"});
    let web = json!({"image": portico::controlplane::node::images::WEBAPP_IMAGE});
    for (name, template, params) in [
        ("resync-job", "scheduled-job", job),
        ("resync-web", "webapp", web),
        ("resync-db", "postgresql", json!({})),
    ] {
        alice
            .create(
                &PostParams::default(),
                &common::fixtures::deployment(name, template, params),
            )
            .await
            .unwrap();
    }
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    applied(&deployments, "resync-job", 1).await;
    applied(&deployments, "resync-web", 3).await;
    applied(&deployments, "resync-db", 3).await;
    let writes_to = |prefix: &'static str| {
        move || operator_writes(cp, |o| o.name.starts_with(prefix) && o.api_group != "portico.dev")
    };
    let (job_writes, web_writes, db_writes) =
        (writes_to("resync-job"), writes_to("resync-web"), writes_to("resync-db"));
    let (job_before, web_before, db_before) = (job_writes(), web_writes(), db_writes());
    assert!(
        !job_before.is_empty() && !web_before.is_empty() && !db_before.is_empty(),
        "all three were applied"
    );
    // Someone changes the database's Secret: a minute after its apply, the
    // resync sees another resourceVersion and applies the database again,
    // which puts the Secret back as the template renders it ...
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "team-a");
    fn database(s: &Secret) -> Option<String> {
        s.data
            .as_ref()
            .and_then(|d| d.get("POSTGRES_DB"))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    }
    assert_eq!(
        database(&secrets.get("resync-db-credentials").await.unwrap()).as_deref(),
        Some("app")
    );
    secrets
        .patch(
            "resync-db-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"POSTGRES_DB": "changed"}})),
        )
        .await
        .unwrap();
    // (The resync is due a minute after the apply: longer than tests
    // usually wait.)
    tokio::time::timeout(
        Duration::from_secs(150),
        kube::runtime::wait::await_condition(secrets.clone(), "resync-db-credentials", move |s: Option<&_>| {
            s.is_some_and(|s| database(s).as_deref() == Some("app"))
        }),
    )
    .await
    .expect("the database's Secret was not put back at its resync")
    .unwrap();
    assert!(
        db_writes().len() > db_before.len(),
        "the database's Secret was put back by an apply of the operator's"
    );
    let db_repaired = db_writes();
    let repaired_at = std::fs::metadata(&op.log_path).unwrap().len() as usize;
    // ... and the scheduled job and the web app, whose objects the caches
    // show at the generation (or resourceVersion) their apply left, are
    // passed without a write.
    for name in ["team-a/resync-job", "team-a/resync-web"] {
        logged_within(&op, name, "resync: every object as applied", Duration::from_secs(90)).await;
    }
    assert_eq!(job_writes(), job_before, "the scheduled job was applied again");
    assert_eq!(web_writes(), web_before, "the web app was applied again");
    // So is the database at its next resync, once put back: the Secret's
    // metadata cache shows it as that apply left it.
    logged_after(
        &op,
        repaired_at,
        "team-a/resync-db",
        "resync: every object as applied",
        Duration::from_secs(150),
    )
    .await;
    assert_eq!(db_writes(), db_repaired, "the database was applied again, unchanged");
    // The status records what each watched object was applied at, so a
    // restarted operator's first resync needs no apply either.
    for (name, kinds) in [("resync-job", 1), ("resync-web", 3)] {
        let status = deployments.get(name).await.unwrap().status.unwrap();
        let recorded = status
            .resources
            .iter()
            .filter(|r| r.applied_generation.is_some() != r.applied_resource_version.is_some())
            .count();
        assert_eq!(
            recorded, kinds,
            "{name}: each object's applied generation or (without one) resourceVersion is recorded: {:?}",
            status.resources
        );
    }
    let op_log = op.log_path.clone();
    drop(op);
    let from = std::fs::metadata(&op_log).unwrap().len() as usize;
    let op = Operator::start(cp, config, port).await;
    for name in ["team-a/resync-job", "team-a/resync-web"] {
        logged_after(&op, from, name, "first pass since the start", Duration::from_secs(60)).await;
    }
    for name in ["team-a/resync-job", "team-a/resync-web"] {
        logged_after(
            &op,
            from,
            name,
            "resync: every object as applied",
            Duration::from_secs(150),
        )
        .await;
    }
    assert_eq!(
        job_writes(),
        job_before,
        "the restarted operator applied the scheduled job again"
    );
    assert_eq!(
        web_writes(),
        web_before,
        "the restarted operator applied the web app again"
    );
    for name in ["resync-job", "resync-web", "resync-db"] {
        deployments.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["resync-job", "resync-web", "resync-db"] {
        common::wait::gone(&deployments, name).await;
    }
}

/// How many times an InvalidTemplate Event was published about the catalog
/// ConfigMap `name` (an Event's series counts its repeats).
async fn invalid_template_reports(admin: &kube::Client, name: &str) -> i32 {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(admin.clone(), portico::dev::CATALOG_NAMESPACE);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("InvalidTemplate"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

/// A Deployment whose template stopped parsing after its apply is deleted
/// with its objects, and its deletion does not report the template again.
/// (Its own operator: the shared one of `tests/deployment.rs` passes every
/// Deployment again whenever another test changes a template.)
#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_whose_template_became_invalid_is_deleted_without_reporting_it_again() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use portico::api::Deployment;
    let _turn = SERIAL.lock().await;
    let cp = setup().await;
    let admin = cp.admin_client().await.unwrap();
    load_catalog(&admin).await;
    let (config, port) = write_config(
        cp,
        &format!("leaderElection: {{enabled: false}}\n{}", common::TEST_PROFILES),
    );
    let _op = Operator::start(cp, config, port).await;
    let template = |body: &str| -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": "crumbling", "namespace": portico::dev::CATALOG_NAMESPACE,
                         "labels": {"portico.dev/template": ""}},
            "data": {"template.yaml": body}
        }))
        .unwrap()
    };
    let valid = "displayName: C\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n";
    portico::install::apply(&admin, &template(valid)).await.unwrap();
    let alice: Api<Deployment> = Api::namespaced(cp.client_as("alice", &["developers"]).await.unwrap(), "team-a");
    alice
        .create(
            &PostParams::default(),
            &common::fixtures::deployment("crumbled", "crumbling", json!({})),
        )
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    let condition = |type_: &'static str| {
        move |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == type_ && c.status == "True"))
        }
    };
    common::wait::until(&deployments, "crumbled", "Ready", condition("Ready")).await;
    portico::install::apply(&admin, &template("displayName: [unclosed\n"))
        .await
        .unwrap();
    let stalled = common::wait::until(&deployments, "crumbled", "Stalled", condition("Stalled"))
        .await
        .unwrap();
    let reason = stalled
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(reason.reason, "TemplateUnavailable", "{}", reason.message);
    // The pass that stalled published the Event before its status write.
    let reported = invalid_template_reports(&admin, "crumbling").await;
    assert_eq!(reported, 1, "the invalid template was reported once");
    alice.delete("crumbled", &DeleteParams::default()).await.unwrap();
    common::wait::gone(&deployments, "crumbled").await;
    assert!(
        Api::<ConfigMap>::namespaced(admin.clone(), "team-a")
            .get_opt("crumbled")
            .await
            .unwrap()
            .is_none(),
        "its objects are gone too"
    );
    assert_eq!(
        invalid_template_reports(&admin, "crumbling").await,
        reported,
        "the deletion reported the invalid template again"
    );
    Api::<ConfigMap>::namespaced(admin, portico::dev::CATALOG_NAMESPACE)
        .delete("crumbling", &DeleteParams::default())
        .await
        .unwrap();
}
