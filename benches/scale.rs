//! Scale benchmark (prints figures, asserts nothing):
//! `cargo bench --bench scale -- [TERMINALS] [DEPLOYMENTS] [IDLE_SECONDS] [RESYNC_SECONDS]`.
//!
//! Starts a control plane and the operator (release build), creates
//! TERMINALS (10,000) Terminals and DEPLOYMENTS (10,000) Deployments of the
//! `scheduled-job` template as alice and bob (64 create calls in flight; the
//! benchmark marks the terminal pods Running and Ready as a kubelet would),
//! and waits until all are Ready. Then, with everything idle for
//! IDLE_SECONDS (60), it prints the operator's request rate (by verb and
//! resource, from the audit log), its RSS and CPU; with RESYNC_SECONDS (the
//! operator's `controller.resync`, 600) shorter than the idle time, the
//! window holds every Deployment's resync. Last, it kills the
//! operator, starts it again, and prints how long the new process took to
//! pass every object once, its RSS, and every request it made meanwhile —
//! writes to unchanged objects would show there — and then the same idle
//! figures again (the restarted process's first resyncs).

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use std::time::{Duration, Instant};

use portico::{
    api::{Deployment, Terminal},
    controller::terminal::build::UID_LABEL,
};

fn ready<K: serde::Serialize>(o: &K) -> bool {
    let v = serde_json::to_value(o).unwrap_or_default();
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `portico_reconciles_total{kind=…}` from the operator's metrics.
async fn reconciles(port: u16, kind: &str) -> f64 {
    let text = common::operator_metrics(port).await;
    let series = format!("portico_reconciles_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Current RSS (MiB) of a process, from /proc.
fn rss_now(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Nothing changes for `idle`: prints what the operator (`pid`, metrics on
/// `port`) asks meanwhile, its Deployment passes, RSS and CPU.
async fn idle_for(cp: &portico::controlplane::ControlPlane, port: u16, pid: u32, idle: Duration, what: &str) {
    let before = common::operator_requests(cp);
    let cpu0 = common::usage(pid).1;
    let passes0 = reconciles(port, "Deployment").await;
    tokio::time::sleep(idle).await;
    let asked = common::operator_requests(cp) - before;
    println!(
        "  Deployment passes while {what}: {} (each one past its resync would apply its objects again without the drift check)",
        reconciles(port, "Deployment").await - passes0
    );
    let (peak, cpu) = common::usage(pid);
    println!(
        "{what} for {idle:?}: the operator made {asked} requests ({:.2}/s){}; RSS {:.1} MiB (peak {peak:.1} MiB); CPU {:.2} s",
        asked as f64 / idle.as_secs_f64(),
        if asked > 0 {
            format!(" — {}", common::operator_breakdown(cp, before, 1))
        } else {
            String::new()
        },
        rss_now(pid),
        cpu - cpu0
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let terminals = args.first().copied().unwrap_or(10_000);
    let deployments = args.get(1).copied().unwrap_or(10_000);
    let idle = Duration::from_secs(args.get(2).copied().unwrap_or(60) as u64);
    let resync = args.get(3).copied().unwrap_or(600);
    let (cp, admin, op) = common::cluster_with_operator(&format!(
        "leaderElection: {{enabled: false}}\ncontroller: {{concurrency: 16, resync: {resync}s}}\n"
    ))
    .await;
    let kubelet = common::kubelet(admin.clone(), UID_LABEL);
    let clients = [
        cp.client_as("alice", &["developers"]).await.unwrap(),
        cp.client_as("bob", &["developers"]).await.unwrap(),
    ];

    eprintln!("creating {terminals} Terminals and {deployments} Deployments");
    let t0 = Instant::now();
    common::create_all(&clients, terminals, |i, ns| {
        common::terminal(&format!("scale-{i}"), ns, ("8h", "24h"))
    })
    .await;
    let terminals_created = t0.elapsed();
    common::create_all(&clients, deployments, |i, _| {
        common::scheduled_job(&format!("scale-{i}"))
    })
    .await;
    let created = t0.elapsed();
    common::reconciled::<Terminal>(&admin, terminals, ready).await;
    common::reconciled::<Deployment>(&admin, deployments, ready).await;
    let all_ready = t0.elapsed();
    println!(
        "{terminals} Terminals created in {terminals_created:?}, {deployments} Deployments after them by {created:?}; all Ready after {all_ready:?}"
    );
    let pid = op.process.pid();
    let (peak, cpu) = common::usage(pid);
    println!(
        "operator after creation: RSS {:.1} MiB (peak {peak:.1} MiB), CPU {cpu:.1} s",
        rss_now(pid)
    );

    idle_for(&cp, op.metrics_port, pid, idle, "idle").await;

    // A restart: the new process passes every object once; nothing unchanged is written.
    let (config, port) = (op.config_path.clone(), op.metrics_port);
    drop(op);
    let before = common::operator_requests(&cp);
    let t0 = Instant::now();
    let op = operator::Operator::start(&cp, config, port).await;
    let pid = op.process.pid();
    loop {
        let t = reconciles(port, "Terminal").await;
        let d = reconciles(port, "Deployment").await;
        if t >= terminals as f64 && d >= deployments as f64 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            eprintln!("gave up waiting for the restarted operator's passes ({t} Terminals, {d} Deployments)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let passed = t0.elapsed();
    let events: Vec<_> = common::operator_events(&cp).into_iter().skip(before).collect();
    let writes = events
        .iter()
        .filter(|e| {
            matches!(
                e.verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
        })
        .count();
    let (peak, cpu) = common::usage(pid);
    println!(
        "restart: every object passed once {passed:?} after the start; {} requests meanwhile, {writes} of them writes — {}",
        events.len(),
        common::operator_breakdown(&cp, before, 1)
    );
    println!(
        "restarted operator: RSS {:.1} MiB (peak {peak:.1} MiB), CPU {cpu:.1} s",
        rss_now(pid)
    );
    // With RESYNC_SECONDS shorter than IDLE_SECONDS, every Deployment's
    // first resync since the restart falls in this window.
    idle_for(&cp, port, pid, idle, "idle after the restart").await;
    kubelet.abort();
    common::keep_logs(&cp);
}
