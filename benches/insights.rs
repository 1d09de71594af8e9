//! Insights benchmark (prints figures, asserts nothing):
//! `cargo bench --bench insights -- [DEPLOYMENTS] [CHANGES]`.
//!
//! Starts a control plane, the operator (release build) and a real
//! Prometheus (Debian's) scraping it. Creates DEPLOYMENTS (default 1000)
//! Deployments across 20 namespaces and 5 templates (one of which does not
//! render, so a fifth of the changes stall), then changes each one's
//! parameters until every one has had CHANGES (default 10) changes — by
//! default 10,000 operations recorded, each counted by the operator and
//! scraped by Prometheus. Then `portico ui` runs as its own process with
//! `prometheus.url`, and `wrk` loads the Insights page, a failure reason
//! drilled into, the JSON export and a CSV table as a developer (half the
//! namespaces) and as an admin (all of them). Each figure is printed beside
//! its anchors: the time Prometheus takes for the page's queries alone, and
//! `kubectl get` of the Deployments the page reads.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use std::time::{Duration, Instant};

use common::web::{kubectl_p50, login, start_ui, wrk};
use futures::StreamExt;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use portico::api::Deployment;
use serde_json::json;

/// The namespaces the Deployments are spread over; alice may edit the first half.
const NAMESPACES: usize = 20;
/// The templates: the last does not render.
const TEMPLATES: [&str; 5] = ["ops-a", "ops-b", "ops-c", "ops-d", "ops-broken"];

fn template(name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    let manifests = if name.ends_with("broken") {
        "apiVersion: v1\n  kind: [oops\n"
    } else {
        "apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n  data: {n: '{{ params.n }}'}\n"
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
        "data": {"template.yaml": format!(
            "displayName: {name}\nallowedGroups: ['*']\nparameters:\n  type: object\n  properties:\n    n: {{type: integer, default: 0}}\nmanifests: |\n  {manifests}"
        )}
    }))
    .unwrap()
}

fn namespace(i: usize) -> String {
    format!("ops-{}", i % NAMESPACES)
}

/// Waits until every Deployment's status describes its generation.
async fn observed(admin: &Client, count: usize) {
    common::reconciled::<Deployment>(admin, count, |d| {
        d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
    })
    .await;
}

/// Prometheus' value of `q` (one series), if it has one.
async fn value(http: &reqwest::Client, base: &str, q: &str) -> Option<f64> {
    let v: serde_json::Value = http
        .get(format!(
            "{base}/api/v1/query?query={}",
            openidconnect::url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let deployments = args.first().copied().unwrap_or(1000);
    let changes = args.get(1).copied().unwrap_or(10).max(1);
    let (cp, admin, op) = common::cluster_with_operator(&format!(
        "leaderElection: {{enabled: false}}\ncontroller: {{concurrency: 16}}\n{}",
        common::web::session_profiles()
    ))
    .await;
    for t in TEMPLATES {
        portico::install::apply(&admin, &template(t)).await.unwrap();
    }
    for i in 0..NAMESPACES {
        let ns = namespace(i);
        operator::ensure_namespace(&cp, &ns).await;
        if i < NAMESPACES / 2 {
            let rb: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
                "metadata": {"name": "alice-edit", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
            }))
            .unwrap();
            portico::install::apply(&admin, &rb).await.unwrap();
        }
    }
    // Prometheus scrapes the operator (and the dashboard, once it runs).
    let (prom_port, ui_port) = (
        portico::controlplane::free_port().unwrap(),
        portico::controlplane::free_port().unwrap(),
    );
    let prometheus = portico::dev::prometheus::start(cp.dir(), prom_port, op.metrics_port, ui_port)
        .await
        .expect("Prometheus (apt-get install prometheus)");
    let http = reqwest::Client::new();

    eprintln!(
        "creating {deployments} Deployments, then {} rounds of changes",
        changes - 1
    );
    let t0 = Instant::now();
    futures::stream::iter(0..deployments)
        .map(|i| {
            let api: Api<Deployment> = Api::namespaced(admin.clone(), &namespace(i));
            let d: Deployment = serde_json::from_value(json!({
                "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": format!("op-{i}")},
                "spec": {"template": {"name": TEMPLATES[i % TEMPLATES.len()]}, "parameters": {"n": 0}},
            }))
            .unwrap();
            async move { common::create_retrying(&api, &d).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    observed(&admin, deployments).await;
    for round in 1..changes {
        futures::stream::iter(0..deployments)
            .map(|i| {
                let api: Api<Deployment> = Api::namespaced(admin.clone(), &namespace(i));
                async move {
                    api.patch(
                        &format!("op-{i}"),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"parameters": {"n": round}}})),
                    )
                    .await
                    .unwrap();
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        observed(&admin, deployments).await;
        eprintln!("  round {round}: {:.0} s", t0.elapsed().as_secs_f64());
    }
    let operations = deployments * changes;
    let recorded = "sum(portico_deployment_changes_total)";
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = value(&http, &prometheus.url, recorded).await;
        if seen.is_some_and(|v| v >= operations as f64) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "{operations} operations made in {:.0} s; Prometheus records {seen:?}",
        t0.elapsed().as_secs_f64()
    );

    // The dashboard as its own process, reading that Prometheus.
    let (ui, base) = start_ui(&cp, ui_port, &format!("prometheus: {{url: '{}'}}\n", prometheus.url)).await;
    let alice = login(&base, "alice").await;
    let carol = login(&base, "carol").await;

    // The anchor: the page's Prometheus queries alone, one at a time.
    let scope = portico::ui::delivery::Scope::All;
    let prom = portico::ui::delivery::Prometheus {
        url: prometheus.url.clone(),
        http: openidconnect::reqwest::Client::new(),
        source: String::new(),
    };
    let mut times = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        let figures = portico::ui::delivery::query(&prom, &scope, "90d").await.unwrap();
        times.push(t.elapsed());
        assert!(!figures.rows.is_empty());
    }
    times.sort();
    let prom_p50 = common::percentile(&times, 0.5).as_secs_f64() * 1000.0;

    println!(
        "insights benchmark: {deployments} Deployments in {NAMESPACES} namespaces, {operations} operations recorded ({seen:?} in Prometheus)"
    );
    println!("  anchor: the delivery queries alone (6 at once, 90d, every namespace): p50 {prom_p50:.1} ms");
    for (what, path, cookie) in [
        ("page, alice (10 namespaces)", "/insights?range=7d", &alice),
        ("page, carol/admin (all)", "/insights?range=90d", &carol),
        (
            "reason drilled into, carol",
            "/insights?range=30d&reason=RenderFailed",
            &carol,
        ),
        ("JSON export, carol", "/insights?range=90d&format=json", &carol),
        (
            "CSV of the reasons, alice",
            "/insights?range=30d&format=csv&table=reasons",
            &alice,
        ),
    ] {
        // One at a time, as one user waits for it, beside the queries alone.
        let mut times = Vec::with_capacity(50);
        for _ in 0..50 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |p| common::percentile(&times, p).as_secs_f64() * 1000.0;
        println!(
            "  {what} {path}: one at a time p50 {:.1} ms, p99 {:.1} ms ({:.1}x the queries' alone)",
            ms(0.5),
            ms(0.99),
            ms(0.5) / prom_p50
        );
        println!("    wrk -t2 -c16 -d10s (16 at once):");
        let summary = wrk(&format!("{base}{path}"), cookie, 10);
        println!("{summary}");
    }
    let kubectl = kubectl_p50(&cp, &["get", "deployments.portico.dev", "-A"]).as_secs_f64() * 1000.0;
    println!("  anchor: kubectl get deployments.portico.dev -A ({deployments} rows) p50 {kubectl:.0} ms");
    let (rss, cpu) = common::usage(ui.pid());
    println!("  dashboard peak RSS {rss:.0} MiB, CPU {cpu:.1} s");
}
