//! Deployment benchmark (prints figures, asserts nothing):
//! `cargo bench --bench deployments -- [COUNT]`.
//!
//! Starts a control plane and the operator (release build), creates COUNT
//! (default 200) Deployments of the web-app template at once as two users,
//! and prints create→all objects applied percentiles, API requests per
//! Deployment (all clients, and the operator's own by verb and resource from
//! the audit log) and the operator's peak RSS and CPU time.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use common::{request_total, usage};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, PostParams},
    runtime::watcher,
};
use portico::api::Deployment;
use serde_json::json;

const USERS: [(&str, &str); 2] = [("alice", "team-a"), ("bob", "team-b")];

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200usize);
    let (cp, admin, op) = common::cluster_with_operator("leaderElection: {enabled: false}\n").await;
    let pid = op.process.pid();

    let applied_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let applied_at = applied_at.clone();
        let api: Api<Deployment> = Api::all(admin.clone());
        tokio::spawn(async move {
            let s = common::applied(api, watcher::Config::default());
            futures::pin_mut!(s);
            while let Some(d) = s.next().await {
                if d.status
                    .as_ref()
                    .is_some_and(|s| s.resources.len() == 3 && s.template_revision.is_some())
                {
                    applied_at
                        .lock()
                        .unwrap()
                        .entry(format!("{}/{}", d.namespace().unwrap(), d.name_any()))
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    let mut clients = HashMap::new();
    for (user, _) in USERS {
        clients.insert(user, cp.client_as(user, &["developers"]).await.unwrap());
    }
    let before = request_total(&admin).await;
    let op_before = common::operator_requests(&cp);
    let start = Instant::now();
    let created: Vec<(String, Instant)> = stream::iter(0..count)
        .map(|i| {
            let (user, ns) = USERS[i % USERS.len()];
            let client = clients[user].clone();
            async move {
                let name = format!("web-{i}");
                let d: Deployment = serde_json::from_value(json!({
                    "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": name},
                    "spec": {"template": {"name": "webapp"}, "parameters": {"image": "nginx:1.27"}}
                }))
                .unwrap();
                let t0 = Instant::now();
                Api::<Deployment>::namespaced(client, ns)
                    .create(&PostParams::default(), &d)
                    .await
                    .unwrap();
                (format!("{ns}/{name}"), t0)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    common::wait_until("every Deployment to be applied", Duration::from_secs(600), || {
        applied_at.lock().unwrap().len() >= count
    })
    .await;
    let total = start.elapsed();
    let after = request_total(&admin).await;
    let op_after = common::operator_requests(&cp);
    let applied = applied_at.lock().unwrap().clone();
    let mut lat: Vec<Duration> = created
        .iter()
        .filter_map(|(k, t0)| applied.get(k).map(|r| r.saturating_duration_since(*t0)))
        .collect();
    lat.sort();
    let (rss, cpu) = usage(pid);
    println!(
        "deployments: {count} web apps created at once by {} users; {} fully applied",
        USERS.len(),
        lat.len()
    );
    println!("create->all objects applied {}", common::spread(&lat));
    println!("total time: {total:?}");
    println!(
        "API requests per Deployment (all clients, incl. the benchmark's creates and kube-controller-manager): {:.1}",
        (after - before) / count as f64
    );
    println!(
        "API requests per Deployment by the operator and its webhook (audit log; 3 objects each): {:.1}",
        (op_after - op_before) as f64 / count as f64
    );
    println!(
        "  by verb and resource: {}",
        common::operator_breakdown(&cp, op_before, count)
    );
    println!("operator: peak RSS {rss:.1} MiB, CPU {cpu:.2} s");
    for (_, ns) in USERS {
        let _ = Api::<Deployment>::namespaced(admin.clone(), ns)
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
    }
    watch.abort();
    drop(op);
}
