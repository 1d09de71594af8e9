//! Dashboard benchmark (prints figures, asserts nothing):
//! `cargo bench --bench dashboard -- [DEPLOYMENTS] [TERMINALS] [STREAMS]`.
//!
//! Starts a control plane and the operator (release build), creates
//! DEPLOYMENTS (default 2000) Deployments of the `scheduled-job` template as alice and
//! bob and TERMINALS (default 500) Terminals, waits until the operator has
//! reconciled them all, then starts `portico ui` as its own process. A second
//! process, `wrk` (Debian package `wrk`), loads the deployments list (alice's
//! own; carol's: everyone's) and a detail page; the figures are wrk's latency
//! percentiles and requests/s, each beside an anchor: the median time of the
//! `kubectl` command that shows the same (10 runs, one at a time). Then STREAMS (default 500) Server-Sent Events
//! streams are opened, one Deployment's status changes, and the time until
//! each stream has it is printed. Last, the dashboard's peak RSS and CPU time.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use common::{
    percentile, usage,
    web::{kubectl_p50, login, p50_ms, start_ui, wrk},
};

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use portico::{
    api::{Deployment, Terminal},
    controlplane::free_port,
};
use serde_json::json;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let deployments = args.first().copied().unwrap_or(2000);
    let terminals = args.get(1).copied().unwrap_or(500);
    let streams = args.get(2).copied().unwrap_or(500);
    let profiles = format!(
        "leaderElection: {{enabled: false}}\ncontroller: {{concurrency: 16}}\n{}",
        common::web::session_profiles()
    );
    let (cp, admin, _op) = common::cluster_with_operator(&profiles).await;

    eprintln!("creating {deployments} Deployments and {terminals} Terminals");
    let clients = [
        cp.client_as("alice", &["developers"]).await.unwrap(),
        cp.client_as("bob", &["developers"]).await.unwrap(),
    ];
    let t0 = Instant::now();
    common::create_all(&clients, deployments, |i, _| {
        common::scheduled_job(&format!("bench-{i}"))
    })
    .await;
    common::create_all(&clients, terminals, |i, ns| {
        common::terminal(&format!("bench-{i}"), ns, ("2h", "8h"))
    })
    .await;
    common::reconciled::<Deployment>(&admin, deployments, |d| {
        d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
    })
    .await;
    common::reconciled::<Terminal>(&admin, terminals, |t| {
        t.status.as_ref().and_then(|s| s.observed_generation) == t.metadata.generation
    })
    .await;
    eprintln!("all reconciled after {:.1} s", t0.elapsed().as_secs_f64());

    // The dashboard as its own process, the way it runs in a cluster.
    let started = Instant::now();
    let (ui, base) = start_ui(&cp, free_port().unwrap(), "").await;
    let startup = started.elapsed();
    let alice = login(&base, "alice").await;
    let carol = login(&base, "carol").await;

    println!("dashboard benchmark: {deployments} Deployments, {terminals} Terminals in the cluster");
    println!("  start-up (watch caches filled): {:.2} s", startup.as_secs_f64());
    for (what, url, cookie, anchor) in [
        (
            format!("deployments list, alice ({} rows)", deployments.div_ceil(2)),
            format!("{base}/deployments"),
            &alice,
            &["get", "deployments.portico.dev", "-n", "team-a"][..],
        ),
        (
            format!("deployments list, carol/admin ({deployments} rows)"),
            format!("{base}/deployments"),
            &carol,
            &["get", "deployments.portico.dev", "-A"][..],
        ),
        (
            "deployments list, carol filtered by user and template".to_string(),
            format!("{base}/deployments?user=bob&template=scheduled-job"),
            &carol,
            &["get", "deployments.portico.dev", "-n", "team-b"][..],
        ),
        (
            "deployment detail (the object as the user, Events from the cache)".to_string(),
            format!("{base}/deployments/team-a/bench-0"),
            &alice,
            &["describe", "deployments.portico.dev", "-n", "team-a", "bench-0"][..],
        ),
        (
            "deployment pods (as the user; the detail page loads them after itself)".to_string(),
            format!("{base}/deployments/team-a/bench-0/pods?fragment=1"),
            &alice,
            &["get", "jobs,pods", "-n", "team-a"][..],
        ),
        (
            "terminals list, alice".to_string(),
            format!("{base}/terminals"),
            &alice,
            &["get", "terminals.portico.dev", "-n", "team-a"][..],
        ),
        (
            "catalog".to_string(),
            format!("{base}/"),
            &alice,
            &["get", "configmaps", "-n", portico::dev::CATALOG_NAMESPACE][..],
        ),
    ] {
        println!("  {what}: wrk -t2 -c16 -d10s");
        let summary = wrk(&url, cookie, 10);
        println!("{summary}");
        let kubectl = kubectl_p50(&cp, anchor).as_secs_f64() * 1000.0;
        let ratio = p50_ms(&summary).map_or("?".to_string(), |p| format!("{:.0}", kubectl / p));
        println!(
            "    anchor: kubectl {} p50 {kubectl:.0} ms (one at a time): {ratio}x the page's p50",
            anchor.join(" ")
        );
    }

    // Server-Sent Events fan-out: STREAMS streams (carol sees every change).
    eprintln!("opening {streams} event streams");
    let sse = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let marker = format!("bench-change-{}", rand::random::<u32>());
    for _ in 0..streams {
        let (sse, base, carol, tx, opened_tx, marker) = (
            sse.clone(),
            base.clone(),
            carol.clone(),
            tx.clone(),
            opened_tx.clone(),
            marker.clone(),
        );
        tokio::spawn(async move {
            let r = sse
                .get(format!("{base}/events"))
                .header("cookie", carol)
                .send()
                .await
                .unwrap();
            let mut body = r.bytes_stream();
            let mut seen = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains(": connected") {
                    let _ = opened_tx.send(());
                    seen.clear();
                }
                if seen.contains(&marker) {
                    let _ = tx.send(Instant::now());
                    return;
                }
            }
        });
    }
    for _ in 0..streams {
        opened_rx.recv().await.unwrap();
    }
    let api: Api<Deployment> = Api::namespaced(admin.clone(), "team-a");
    let changed = Instant::now();
    api.patch_status(
        "bench-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"message": marker}})),
    )
    .await
    .unwrap();
    let mut arrivals = Vec::with_capacity(streams);
    while arrivals.len() < streams {
        let at = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("every stream gets the change")
            .unwrap();
        arrivals.push(at - changed);
    }
    arrivals.sort();
    println!(
        "  status change -> {streams} SSE streams: p50 {:.1} ms, p99 {:.1} ms, all {:.1} ms",
        percentile(&arrivals, 0.5).as_secs_f64() * 1000.0,
        percentile(&arrivals, 0.99).as_secs_f64() * 1000.0,
        arrivals.last().unwrap().as_secs_f64() * 1000.0
    );
    let (rss, cpu) = usage(ui.pid());
    println!("  dashboard peak RSS {rss:.0} MiB, CPU {cpu:.1} s");
}
