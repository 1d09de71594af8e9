//! Terminal benchmark (prints figures, asserts nothing):
//! `cargo bench --bench terminals -- [COUNT] [EXPIRING]`.
//!
//! Starts a control plane and the operator (release build). First the
//! floor: the writes the operator makes for one Terminal (two service
//! accounts, a Role, two RoleBindings, a TokenRequest, a Secret, a Pod),
//! made COUNT times at once directly by an admin client, until each pod is
//! Ready — all COUNT sets in flight together, as the operator has all COUNT
//! Terminals at once; then again with 64 sets in flight, each timed from its
//! own first write (so without its wait for a slot), for comparison. Then,
//! after one warm-up Terminal by the admin, creates COUNT Terminals
//! (default 200) at once as three users, marks each pod Running and Ready
//! as a kubelet would, and prints
//! create→Ready latency percentiles beside the floor's, the create call's
//! (admission) latency, API requests per Terminal (all, and the operator's
//! own from the audit log), the lag from expiry to the object being gone for
//! EXPIRING (default 20) short-lived Terminals, and the operator's peak RSS
//! and CPU time.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use common::{percentile, request_total, resident, usage};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::{
    api::{
        authentication::v1::TokenRequest,
        core::v1::{ConfigMap, Pod, Secret, ServiceAccount},
        rbac::v1::{Role, RoleBinding},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use portico::{api::Terminal, controller::terminal::build::UID_LABEL};
use serde_json::json;

const USERS: [(&str, &str); 3] = [("alice", "team-a"), ("bob", "team-b"), ("carol", "team-a")];

fn groups(user: &str) -> Vec<&'static str> {
    if user == "carol" {
        vec!["portico-admins"]
    } else {
        vec!["developers"]
    }
}

fn terminal(name: &str, ns: &str, idle: &str) -> Terminal {
    serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": name},
        "spec": {
            "host": {"namespace": ns, "pod": {"image": "alpine"}},
            "target": {"namespace": ns, "roleBindings": [
                {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "edit"}]},
            "idleTimeout": idle,
        }
    }))
    .unwrap()
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// The floor: for each of `count` sets, `in_flight` at a time, the writes
/// the operator makes for a Terminal, by an admin client; returns each set's
/// time from its first write to its pod being Ready (marked by the
/// benchmark's kubelet).
async fn floor(admin: &Client, count: usize, in_flight: usize) -> Vec<Duration> {
    let set = format!("floor-{in_flight}");
    let ready_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let ready_at = ready_at.clone();
        let pods: Api<Pod> = Api::all(admin.clone());
        let selector = format!("bench={set}");
        tokio::spawn(async move {
            let stream = common::applied(pods, watcher::Config::default().labels(&selector));
            futures::pin_mut!(stream);
            while let Some(p) = stream.next().await {
                let ready = p.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .flatten()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                if ready {
                    ready_at
                        .lock()
                        .unwrap()
                        .entry(p.name_any())
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    let pp = PostParams::default();
    let started: Vec<(String, Instant)> = stream::iter(0..count)
        .map(|i| {
            let (_, ns) = USERS[i % USERS.len()];
            let admin = admin.clone();
            let pp = pp.clone();
            let set = set.clone();
            async move {
                let n = format!("{set}-{i}");
                let labels = json!({"bench": set, UID_LABEL: n});
                let t0 = Instant::now();
                let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
                for sa in [format!("{n}-access"), format!("{n}-attach")] {
                    sas.create(&pp, &from(json!({"metadata": {"name": sa, "labels": labels}})))
                        .await
                        .unwrap();
                }
                let rbs: Api<RoleBinding> = Api::namespaced(admin.clone(), ns);
                let binding = |name: String, kind: &str, role: String, sa: String| {
                    from::<RoleBinding>(json!({"metadata": {"name": name, "labels": labels},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
                        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}))
                };
                rbs.create(&pp, &binding(format!("{n}-edit"), "ClusterRole", "edit".into(), format!("{n}-access")))
                    .await
                    .unwrap();
                let role: Role = from(json!({"metadata": {"name": format!("{n}-attach"), "labels": labels},
                    "rules": [{"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["create"], "resourceNames": [n]}]}));
                Api::<Role>::namespaced(admin.clone(), ns).create(&pp, &role).await.unwrap();
                rbs.create(&pp, &binding(format!("{n}-attach"), "Role", format!("{n}-attach"), format!("{n}-attach")))
                    .await
                    .unwrap();
                let req: TokenRequest = from(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}));
                let token = sas.create_token_request(&format!("{n}-access"), &pp, &req).await.unwrap();
                let secret: Secret = from(json!({"metadata": {"name": format!("{n}-kubeconfig"), "labels": labels},
                    "stringData": {"kubeconfig": token.status.unwrap().token}}));
                Api::<Secret>::namespaced(admin.clone(), ns).create(&pp, &secret).await.unwrap();
                let pod: Pod = from(json!({"metadata": {"name": n, "labels": labels},
                    "spec": {"serviceAccountName": format!("{n}-attach"), "automountServiceAccountToken": false,
                             "containers": [{"name": "terminal", "image": "alpine", "stdin": true, "tty": true}]}}));
                Api::<Pod>::namespaced(admin, ns).create(&pp, &pod).await.unwrap();
                (n, t0)
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    common::wait_until("every floor pod to be Ready", Duration::from_secs(300), || {
        ready_at.lock().unwrap().len() >= count
    })
    .await;
    watch.abort();
    let ready = ready_at.lock().unwrap().clone();
    let mut lat: Vec<Duration> = started
        .iter()
        .filter_map(|(n, t0)| ready.get(n).map(|r| r.saturating_duration_since(*t0)))
        .collect();
    lat.sort();
    let dp = DeleteParams::default();
    let lp = kube::api::ListParams::default().labels(&format!("bench={set}"));
    for (_, ns) in USERS {
        let _ = Api::<Pod>::namespaced(admin.clone(), ns)
            .delete_collection(&dp, &lp)
            .await;
        let _ = Api::<Secret>::namespaced(admin.clone(), ns)
            .delete_collection(&dp, &lp)
            .await;
        let _ = Api::<RoleBinding>::namespaced(admin.clone(), ns)
            .delete_collection(&dp, &lp)
            .await;
        let _ = Api::<Role>::namespaced(admin.clone(), ns)
            .delete_collection(&dp, &lp)
            .await;
        let _ = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
            .delete_collection(&dp, &lp)
            .await;
    }
    lat
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let count = args.first().copied().unwrap_or(200);
    let expiring = args.get(1).copied().unwrap_or(20);
    let (cp, admin, op) = common::cluster_with_operator(&format!(
        "leaderElection: {{enabled: false}}\ncontroller: {{concurrency: {}}}\n",
        std::env::var("PORTICO_BENCH_CONCURRENCY").unwrap_or("16".into())
    ))
    .await;
    let pid = op.process.pid();

    let ready_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let ready_at = ready_at.clone();
        let api: Api<Terminal> = Api::all(admin.clone());
        tokio::spawn(async move {
            let stream = common::applied(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(t) = stream.next().await {
                let ready = t
                    .status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready {
                    ready_at
                        .lock()
                        .unwrap()
                        .entry(format!("{}/{}", t.namespace().unwrap(), t.name_any()))
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    let kubelet = common::kubelet(admin.clone(), UID_LABEL);

    let mut pids = cp.pids();
    pids.push(pid);
    let (cpu0, t0) = (common::cpu_seconds(&pids), Instant::now());
    let floor64 = floor(&admin, count, 64).await;
    let floor64_cpu = common::cpu_line(
        "the floor (64 in flight)",
        common::cpu_seconds(&pids) - cpu0,
        t0.elapsed(),
    );
    let (cpu0, t0) = (common::cpu_seconds(&pids), Instant::now());
    let floor = floor(&admin, count, count).await;
    let floor_cpu = common::cpu_line("the floor", common::cpu_seconds(&pids) - cpu0, t0.elapsed());
    println!(
        "floor: {} sets of the operator's writes for a Terminal, all at once, by an admin; first write->pod Ready {}",
        floor.len(),
        common::spread(&floor)
    );
    println!("{floor_cpu}");
    println!(
        "  the same with 64 sets in flight, each timed from its own first write: {}",
        common::spread(&floor64)
    );
    println!("{floor64_cpu}");

    let mut clients = HashMap::new();
    for (user, _) in USERS {
        clients.insert(user, cp.client_as(user, &groups(user)).await.unwrap());
    }
    // The create call's anchor: the same users create as many ConfigMaps
    // (no webhook) the same way.
    let mut plain: Vec<Duration> = stream::iter(0..count)
        .map(|i| {
            let (user, ns) = USERS[i % USERS.len()];
            let api = Api::<ConfigMap>::namespaced(clients[user].clone(), ns);
            async move {
                let cm = serde_json::from_value(json!({"metadata": {"name": format!("bench-plain-{i}")}})).unwrap();
                let t0 = Instant::now();
                api.create(&PostParams::default(), &cm).await.unwrap();
                t0.elapsed()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    plain.sort();
    println!(
        "anchor: {count} ConfigMaps created the same way (no webhook): create call p50 {:?}  p99 {:?}",
        percentile(&plain, 0.5),
        percentile(&plain, 0.99)
    );

    // One-time work is no part of the burst's figures: the API server's
    // first create of a kind waits for its quota evaluator, and the
    // operator's first Terminal makes its first calls. One Terminal first,
    // by the admin and with another role, so the users' rules and the
    // `edit` role are still to be asked during the burst.
    let warm = {
        let mut t = terminal("warm-up", "team-a", "30m");
        t.spec.target.role_bindings[0].role_ref.name = "view".into();
        t
    };
    let admin_terminals: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    let uid = admin_terminals
        .create(&PostParams::default(), &warm)
        .await
        .unwrap()
        .uid()
        .unwrap();
    admin_terminals
        .delete("warm-up", &DeleteParams::default())
        .await
        .unwrap();
    let gone = kube::runtime::wait::await_condition(
        admin_terminals,
        "warm-up",
        kube::runtime::wait::conditions::is_deleted(&uid),
    );
    tokio::time::timeout(Duration::from_secs(60), gone)
        .await
        .expect("the warm-up Terminal to go")
        .unwrap();
    ready_at.lock().unwrap().remove("team-a/warm-up");

    let before = request_total(&admin).await;
    let op_before = common::operator_requests(&cp);
    let profile = common::apiserver_profile(&admin, "the burst");
    let start = Instant::now();
    let cpu0 = common::cpu_seconds(&pids);
    let created: Vec<(String, Instant, Duration)> = stream::iter(0..count)
        .map(|i| {
            let (user, ns) = USERS[i % USERS.len()];
            let client = clients[user].clone();
            async move {
                let name = format!("bench-{i}");
                let t0 = Instant::now();
                Api::<Terminal>::namespaced(client, ns)
                    .create(&PostParams::default(), &terminal(&name, ns, "30m"))
                    .await
                    .unwrap();
                (format!("{ns}/{name}"), t0, t0.elapsed())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    common::wait_until("every Terminal to be Ready", Duration::from_secs(600), || {
        ready_at.lock().unwrap().len() >= count
    })
    .await;
    let total = start.elapsed();
    if let Some(p) = profile {
        let _ = p.await;
    }
    let burst_cpu = common::cpu_line("the burst", common::cpu_seconds(&pids) - cpu0, total);
    let after = request_total(&admin).await;
    let op_after = common::operator_requests(&cp);
    let ready = ready_at.lock().unwrap().clone();
    let mut lat: Vec<Duration> = created
        .iter()
        .filter_map(|(k, t0, _)| ready.get(k).map(|r| r.saturating_duration_since(*t0)))
        .collect();
    lat.sort();
    let mut admission: Vec<Duration> = created.iter().map(|(_, _, d)| *d).collect();
    admission.sort();
    let (rss, cpu) = usage(pid);
    println!(
        "terminals: {count} created at once by {} users; {} became Ready",
        USERS.len(),
        lat.len()
    );
    println!(
        "create->Ready p50 {:?}  p95 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.95),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    let ratio = |f: &[Duration]| percentile(&lat, 0.99).as_secs_f64() / percentile(f, 0.99).as_secs_f64().max(1e-9);
    println!(
        "  that is p99 {:.1} x the floor's (all at once); {:.1} x the floor's with 64 in flight",
        ratio(&floor),
        ratio(&floor64)
    );
    println!("total time for all to be Ready: {total:?}");
    println!("{burst_cpu}");
    println!("create call (both admission webhooks) {}", common::spread(&admission));
    let hooks = common::apiserver_metrics(&admin).await;
    let answers = common::operator_metrics(op.metrics_port).await;
    let q = |text: &str, metric: &str, labels: &[&str], p: f64| {
        common::bucket_quantile(text, metric, labels, p).map_or("-".to_string(), |s| format!("{s}s"))
    };
    println!(
        "  the API server's wait on each Portico webhook call at create (its histogram; bucket bounds) p50 {}  p99 {}; the webhook's own Terminal validation answers p50 {}  p99 {}",
        q(
            &hooks,
            "apiserver_admission_webhook_admission_duration_seconds",
            &["operation=\"CREATE\"", "portico"],
            0.5
        ),
        q(
            &hooks,
            "apiserver_admission_webhook_admission_duration_seconds",
            &["operation=\"CREATE\"", "portico"],
            0.99
        ),
        q(
            &answers,
            "portico_admission_duration_seconds",
            &["kind=\"Terminal\"", "webhook=\"validate\""],
            0.5
        ),
        q(
            &answers,
            "portico_admission_duration_seconds",
            &["kind=\"Terminal\"", "webhook=\"validate\""],
            0.99
        ),
    );
    let flows = [
        "portico-operator-objects",
        "portico-operator-access-reviews",
        "global-default",
    ]
    .map(|flow| {
        let schema = format!("flow_schema=\"{flow}\"");
        let labels = [schema.as_str(), "execute=\"true\""];
        format!(
            "{flow} p99 {}",
            q(
                &hooks,
                "apiserver_flowcontrol_request_wait_duration_seconds",
                &labels,
                0.99
            )
        )
    });
    println!(
        "  the webhook's rules reviews (SelfSubjectRulesReview as the creator; its histogram) p50 {}  p99 {}; priority and fairness queue wait: {}",
        q(
            &hooks,
            "apiserver_request_duration_seconds",
            &["resource=\"selfsubjectrulesreviews\""],
            0.5
        ),
        q(
            &hooks,
            "apiserver_request_duration_seconds",
            &["resource=\"selfsubjectrulesreviews\""],
            0.99
        ),
        flows.join(", ")
    );
    println!(
        "API requests per Terminal by the operator and its webhook (audit log): {:.1}",
        (op_after - op_before) as f64 / count as f64
    );
    println!(
        "  by verb and resource: {}",
        common::operator_breakdown(&cp, op_before, count)
    );
    println!(
        "API requests per Terminal (all clients, incl. the benchmark's own create and pod-status calls): {:.1}",
        (after - before) / count as f64
    );
    let (now, anon, file) = resident(pid);
    println!(
        "operator after creation: peak RSS {rss:.1} MiB, CPU {cpu:.2} s; resident now {now:.1} MiB \
         ({anon:.1} anonymous, {file:.1} file-backed)"
    );

    // Expiry: short idle timeouts, no heartbeats; lag from expiresAt to the object being gone.
    let gone: Arc<Mutex<HashMap<String, Timestamp>>> = Arc::default();
    let expires: Arc<Mutex<HashMap<String, Timestamp>>> = Arc::default();
    let exp_watch = {
        let (gone, expires) = (gone.clone(), expires.clone());
        let api: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default().labels("bench=expiry")).default_backoff();
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                match ev {
                    watcher::Event::Apply(t) | watcher::Event::InitApply(t) => {
                        if let Some(e) = t.status.as_ref().and_then(|s| s.expires_at.as_ref()) {
                            expires.lock().unwrap().insert(t.name_any(), e.0);
                        }
                    }
                    watcher::Event::Delete(t) => {
                        gone.lock().unwrap().insert(t.name_any(), Timestamp::now());
                    }
                    _ => {}
                }
            }
        })
    };
    let alice = clients["alice"].clone();
    for i in 0..expiring {
        let mut t = terminal(&format!("expire-{i}"), "team-a", "5s");
        t.metadata.labels = Some([("bench".to_string(), "expiry".to_string())].into());
        Api::<Terminal>::namespaced(alice.clone(), "team-a")
            .create(&PostParams::default(), &t)
            .await
            .unwrap();
    }
    common::wait_until("every expiring Terminal to go", Duration::from_secs(120), || {
        gone.lock().unwrap().len() >= expiring
    })
    .await;
    let (g, e) = (gone.lock().unwrap().clone(), expires.lock().unwrap().clone());
    let mut lags: Vec<Duration> = g
        .iter()
        .filter_map(|(name, at)| {
            let d = at.duration_since(*e.get(name)?);
            Some(if d.is_negative() {
                Duration::ZERO
            } else {
                d.unsigned_abs()
            })
        })
        .collect();
    lags.sort();
    println!(
        "expiry->gone lag over {} Terminals (idleTimeout 5s): p50 {:?}  max {:?}",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 1.0)
    );
    let (rss, cpu) = usage(pid);
    let (now, anon, file) = resident(pid);
    println!(
        "operator at the end: peak RSS {rss:.1} MiB, CPU {cpu:.2} s; resident now {now:.1} MiB \
         ({anon:.1} anonymous, {file:.1} file-backed)"
    );

    for (user, ns) in USERS {
        let _ = Api::<Terminal>::namespaced(admin.clone(), ns)
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
        let _ = user;
    }
    watch.abort();
    exp_watch.abort();
    kubelet.abort();
    drop(op);
}
