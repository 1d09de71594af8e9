//! Terminal benchmark (prints figures, asserts nothing):
//! `cargo bench --bench terminals -- [COUNT] [EXPIRING]`.
//!
//! Starts a control plane and the operator (release build), creates COUNT
//! Terminals (default 200) at once as three users, marks each pod Running and
//! Ready as a kubelet would, and prints create→Ready latency percentiles, API
//! requests per Terminal, the lag from expiry to the object being gone for
//! EXPIRING (default 20) short-lived Terminals, and the operator's peak RSS and
//! CPU time.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use common::{percentile, request_total, usage};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
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

/// Marks every terminal pod Running and Ready as it appears, like a kubelet.
fn kubelet(admin: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(admin.clone());
        let stream = watcher(pods, watcher::Config::default().labels(UID_LABEL)).applied_objects();
        futures::pin_mut!(stream);
        while let Ok(Some(pod)) = stream.try_next().await {
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                continue;
            }
            let now = Timestamp::now().to_string();
            let status = json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
            let api: Api<Pod> = Api::namespaced(admin.clone(), &pod.namespace().unwrap());
            let _ = api
                .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(status))
                .await;
        }
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let count = args.first().copied().unwrap_or(200);
    let expiring = args.get(1).copied().unwrap_or(20);
    let (cp, admin, op) =
        common::cluster_with_operator("leaderElection: {enabled: false}\ncontroller: {concurrency: 16}\n").await;
    let pid = op.process.pid();

    let ready_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let ready_at = ready_at.clone();
        let api: Api<Terminal> = Api::all(admin.clone());
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default()).applied_objects();
            futures::pin_mut!(stream);
            while let Ok(Some(t)) = stream.try_next().await {
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
    let kubelet = kubelet(admin.clone());

    let before = request_total(&admin).await;
    let mut clients = HashMap::new();
    for (user, _) in USERS {
        clients.insert(user, cp.client_as(user, &groups(user)).await.unwrap());
    }
    let start = Instant::now();
    let created: Vec<(String, Instant)> = stream::iter(0..count)
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
                (format!("{ns}/{name}"), t0)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while ready_at.lock().unwrap().len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = start.elapsed();
    let after = request_total(&admin).await;
    let ready = ready_at.lock().unwrap().clone();
    let mut lat: Vec<Duration> = created
        .iter()
        .filter_map(|(k, t0)| ready.get(k).map(|r| r.saturating_duration_since(*t0)))
        .collect();
    lat.sort();
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
    println!("total time for all to be Ready: {total:?}");
    println!(
        "API requests per Terminal (all clients, incl. the benchmark's own create and pod-status calls): {:.1}",
        (after - before) / count as f64
    );
    println!("operator after creation: peak RSS {rss:.1} MiB, CPU {cpu:.2} s");

    // Expiry: short idle timeouts, no heartbeats; lag from expiresAt to the object being gone.
    let gone: Arc<Mutex<HashMap<String, Timestamp>>> = Arc::default();
    let expires: Arc<Mutex<HashMap<String, Timestamp>>> = Arc::default();
    let exp_watch = {
        let (gone, expires) = (gone.clone(), expires.clone());
        let api: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default().labels("bench=expiry")).default_backoff();
            futures::pin_mut!(stream);
            while let Some(Ok(ev)) = stream.next().await {
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
    let deadline = Instant::now() + Duration::from_secs(120);
    while gone.lock().unwrap().len() < expiring && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    println!("operator at the end: peak RSS {rss:.1} MiB, CPU {cpu:.2} s");

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
