//! Observability against a real Prometheus (Debian's package `prometheus`):
//! the chart's alerting rules pass `promtool check rules`; Prometheus scrapes
//! a running operator and dashboard under the job and namespace labels the
//! chart's ServiceMonitors give them, loads the rules and evaluates each
//! without error; every metric an alert or a Grafana panel queries has
//! series, and every panel's query answers; a healthy operator fires no
//! alert; the process metrics are this machine's truth; the dashboard's
//! `/metrics` carries nothing a user sent; and known activity (Deployment
//! changes, Terminals, sessions) reaches Prometheus and Insights exactly.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, Instant},
};

use common::operator::{Operator, ensure_namespace, write_config_authorizing};
use kube::{Api, api::PostParams};
use portico::{
    api::SessionClaim,
    controlplane::{Process, free_port},
};
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const NAMESPACE: &str = "portico-system";

/// The operator, the dashboard and a Prometheus scraping both with the
/// chart's rules, started once for this test binary.
struct Stack {
    operator: Operator,
    /// Prometheus' token, allowed to read the operator's `/metrics`.
    metrics_token: String,
    _dashboard: Process,
    _prometheus: Process,
    /// Prometheus' base URL.
    prometheus: String,
    /// The dashboard's base URL.
    dashboard: String,
    /// The rendered PrometheusRule's `spec`, as a rules file.
    rules_file: PathBuf,
    /// The rendered alerting rules.
    rules: Vec<Value>,
    /// The Grafana dashboard of the rendered ConfigMap.
    grafana: Value,
    /// The job labels of the operator and the dashboard.
    jobs: (String, String),
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        for bin in [PROMETHEUS, PROMTOOL] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: these tests need Debian's package `prometheus` \
                 (apt-get install prometheus; tests/run installs it)"
            );
        }
        std::thread::spawn(|| tokio::runtime::Runtime::new().unwrap().block_on(start()))
            .join()
            .unwrap()
    })
}

async fn start() -> Stack {
    let cp = common::shared();
    let admin = cp.admin_client().await.unwrap();
    portico::dev::setup_demo(&admin).await.expect("demo tenants");
    portico::install::wait_aggregated(&admin)
        .await
        .expect("aggregated roles");
    let docs = render_chart();
    let jobs = (scraped_job(&docs, "operator"), scraped_job(&docs, "dashboard"));
    let rule = one(&docs, "PrometheusRule", |d| d["kind"] == "PrometheusRule");
    let rules_file = cp.dir().join("portico-rules.yaml");
    std::fs::write(&rules_file, serde_yaml_ng::to_string(&rule["spec"]).unwrap()).unwrap();
    let rules: Vec<Value> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect();
    let dashboard_map = one(&docs, "ConfigMap labelled grafana_dashboard", |d| {
        d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1"
    });
    let grafana: Value = serde_json::from_str(dashboard_map["data"]["portico.json"].as_str().unwrap())
        .expect("the Grafana dashboard is JSON");

    // The operator as installed: /metrics only for a token allowed to read it.
    let (config, metrics_port) = write_config_authorizing(cp, common::TEST_PROFILES, true);
    let operator = Operator::start(cp, config, metrics_port).await;
    // Prometheus reads it as the chart says: with its own account's token,
    // bound to the chart's ClusterRole for reading /metrics.
    let token = common::operator::service_account_token(cp, NAMESPACE, "prometheus").await;
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "prometheus-reads-portico"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "portico-metrics-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": NAMESPACE}],
    }))
    .unwrap();
    portico::install::apply(&admin, &binding).await.unwrap();
    let port = free_port().unwrap();
    let (dashboard, ui_port) = start_dashboard(&format!("http://127.0.0.1:{port}")).await;

    let dir = cp.dir().join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, &token).unwrap();
    let scrape = |job: &str, port: u16, auth: &str| {
        format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{namespace: {NAMESPACE}}}\n{auth}"
        )
    };
    let operator_auth = format!("    authorization: {{credentials_file: '{}'}}\n", token_file.display());
    // Another target, in a user's namespace, publishing a Portico metric: Insights must not count it.
    let forger = forger();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{}']\nscrape_configs:\n{}{}  - job_name: forger\n    static_configs:\n      - targets: ['127.0.0.1:{forger}']\n        labels: {{namespace: team-a}}\n",
        rules_file.display(),
        scrape(&jobs.0, metrics_port, &operator_auth),
        scrape(&jobs.1, ui_port, ""),
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let prometheus = Process::spawn(
        "prometheus",
        PROMETHEUS.as_ref(),
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &dir.join("prometheus.log"),
    )
    .expect("start prometheus");
    let base = format!("http://127.0.0.1:{port}");
    common::ui::wait_http(&format!("{base}/-/ready")).await;

    // Something to count: a SessionClaim (admission, a reconcile, an active session).
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    Api::<SessionClaim>::namespaced(alice, portico::dev::demo::SESSIONS_NAMESPACE)
        .create(
            &PostParams::default(),
            &common::fixtures::claim("observed", "developer"),
        )
        .await
        .expect("alice claims a session");

    let stack = Stack {
        operator,
        metrics_token: token,
        _dashboard: dashboard,
        _prometheus: prometheus,
        prometheus: base,
        dashboard: format!("http://127.0.0.1:{ui_port}"),
        rules_file,
        rules,
        grafana,
        jobs,
    };
    for job in [&stack.jobs.0, &stack.jobs.1] {
        let q = format!("up{{job=\"{job}\", namespace=\"{NAMESPACE}\"}} == 1");
        let base = &stack.prometheus;
        eventually(base, &format!("Prometheus scraping {job}"), || async {
            (!query(base, &q).await.is_empty()).then_some(())
        })
        .await;
    }
    stack
}

/// A scrape target that publishes a change of template `forged` in team-a
/// as if it were the operator; its port. (A thread of its own: the stack's
/// runtime ends once it is set up.)
fn forger() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = "# TYPE portico_deployment_changes_total counter\nportico_deployment_changes_total{object_namespace=\"team-a\",template=\"forged\",outcome=\"ready\"} 5\n";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes());
        }
    });
    port
}

/// The chart with the PrometheusRule, the Grafana dashboard, the
/// ServiceMonitors and the dashboard, rendered by the real helm.
fn render_chart() -> Vec<Value> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/portico");
    let out = std::process::Command::new(common::shared().binaries().path("helm"))
        .args(["template", "portico", chart, "-n", NAMESPACE])
        .args(["--set", "metrics.prometheusRule.enabled=true"])
        .args(["--set", "metrics.grafanaDashboard.enabled=true"])
        .args(["--set", "metrics.serviceMonitor.enabled=true"])
        .args(["--set", "dashboard.enabled=true"])
        .args(["--set", "dashboard.publicUrl=http://127.0.0.1"])
        .args(["--set", "dashboard.oidc.issuer=http://127.0.0.1"])
        .args(["--set", "dashboard.existingSecret=unused"])
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(std::str::from_utf8(&out.stdout).unwrap())
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The one rendered object `what` describes.
fn one<'a>(docs: &'a [Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| pred(d)).collect();
    assert_eq!(found.len(), 1, "one {what} expected, got {}", found.len());
    found[0]
}

/// The `job` label Prometheus gives the `component`'s series through the
/// chart's ServiceMonitor: the name of the Service it selects.
fn scraped_job(docs: &[Value], component: &str) -> String {
    let monitor = docs
        .iter()
        .find(|d| {
            d["kind"] == "ServiceMonitor"
                && d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        })
        .unwrap_or_else(|| panic!("no ServiceMonitor for the {component}"));
    let selector = monitor["spec"]["selector"]["matchLabels"].as_object().unwrap();
    let services: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Service" && selector.iter().all(|(k, v)| d["metadata"]["labels"][k] == *v))
        .collect();
    assert_eq!(
        services.len(),
        1,
        "the {component}'s ServiceMonitor selects {} Services",
        services.len()
    );
    services[0]["metadata"]["name"].as_str().unwrap().to_string()
}

/// `portico ui` with the development login, as the chart's service account
/// for it, reading delivery figures from the Prometheus at `prometheus`.
async fn start_dashboard(prometheus: &str) -> (Process, u16) {
    let cp = common::shared();
    ensure_namespace(cp, portico::dev::demo::SESSIONS_NAMESPACE).await;
    let port = free_port().unwrap();
    let file = cp.dir().join("observed-ui.yaml");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:{port}\npublicUrl: http://127.0.0.1:{port}\n\
             devUsers: [{{name: alice, groups: [developers]}}, {{name: bob, groups: [developers]}}, {{name: uma, groups: [developers]}}, {{name: vic, groups: [developers]}}, {{name: carol, groups: [portico-admins]}}]\n\
             session: {{profile: developer, namespace: {}}}\nassetsDir: {}\nprometheus: {{url: '{prometheus}', source: {{namespace: {NAMESPACE}}}}}\n",
            portico::dev::demo::SESSIONS_NAMESPACE,
            common::ui::ui_assets().display(),
        ),
    )
    .unwrap();
    let kubeconfig = common::operator::chart_identity(cp, "templates/dashboard-rbac.yaml", "portico-dashboard").await;
    let ui = Process::spawn_with_env(
        "portico-ui",
        env!("CARGO_BIN_EXE_portico").as_ref(),
        &["ui".into(), "--config".into(), file.to_string_lossy().into_owned()],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
        &cp.dir().join("observed-ui.log"),
    )
    .unwrap();
    common::ui::wait_http(&format!("http://127.0.0.1:{port}/healthz")).await;
    (ui, port)
}

/// Prometheus' answer to an instant query: its `data.result`.
async fn query(base: &str, q: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/query"))
        .form(&[("query", q)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("query {q}: {e}"))
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

async fn api(base: &str, path: &str) -> Value {
    let v: Value = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{path}: {v}");
    v["data"].clone()
}

/// Polls `check` every 250 ms until it gives a value (at most 90 s).
async fn eventually<T, F, Fut>(base: &str, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            let targets = api(base, "/api/v1/targets").await;
            panic!("{what}: not within 90 s; Prometheus' targets: {targets}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every vector selector of `expr` naming one of Portico's metrics, a
/// process metric or `up`, with its label matchers.
fn selectors(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(portico_[a-z_]+|process_[a-z_]+|up)\b(\{[^}]*\})?").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// A Grafana query with its variables set: this namespace, both jobs.
fn grafana_query(expr: &str, jobs: &(String, String)) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$namespace", NAMESPACE)
        .replace("$job", &format!("({}|{})", jobs.0, jobs.1))
}

/// Each panel's title and its queries, variables set.
fn panel_queries(s: &Stack) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in s.grafana["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has a PromQL expr");
            out.push((p["title"].as_str().unwrap().to_string(), grafana_query(expr, &s.jobs)));
        }
    }
    out
}

#[test]
fn the_charts_rules_pass_promtool() {
    let s = stack();
    let out = std::process::Command::new(PROMTOOL)
        .args(["check", "rules"])
        .arg(&s.rules_file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check rules:\n{said}");
    let names: BTreeSet<&str> = s.rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for alert in [
        "PorticoOperatorDown",
        "PorticoOperatorNoLeader",
        "PorticoOperatorSeveralLeaders",
        "PorticoReconcileErrors",
        "PorticoCleanupFailing",
        "PorticoWebhookSlow",
        "PorticoDashboardDown",
    ] {
        assert!(names.contains(alert), "{alert} is not among the rules: {names:?}");
    }
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", s.rules.len())),
        "{said}"
    );
}

#[tokio::test]
async fn prometheus_loads_every_rule_and_evaluates_it_without_error() {
    let s = stack();
    let rules = eventually(&s.prometheus, "every rule evaluated", || async {
        let data = api(&s.prometheus, "/api/v1/rules?type=alert").await;
        let rules: Vec<Value> = data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        let evaluated = rules.len() == s.rules.len()
            && rules
                .iter()
                .all(|r| !r["lastEvaluation"].as_str().unwrap_or("0001").starts_with("0001"));
        evaluated.then_some(rules)
    })
    .await;
    for r in &rules {
        assert_eq!(r["health"], "ok", "{} does not evaluate: {r}", r["name"]);
    }
}

#[tokio::test]
async fn every_metric_an_alert_or_a_grafana_panel_queries_has_series() {
    let s = stack();
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &s.rules {
        for sel in selectors(r["expr"].as_str().unwrap()) {
            wanted.entry(sel).or_default().insert(format!("alert {}", r["alert"]));
        }
    }
    let panels = panel_queries(s);
    assert!(panels.len() >= 15, "only {} panel queries", panels.len());
    for (title, q) in &panels {
        let found = selectors(q);
        assert!(
            !found.is_empty(),
            "panel {title:?} queries none of Portico's metrics: {q}"
        );
        for sel in found {
            wanted.entry(sel).or_default().insert(format!("panel {title:?}"));
        }
    }
    for (sel, users) in &wanted {
        let q = format!("count({sel})");
        eventually(
            &s.prometheus,
            &format!("series for {sel} (queried by {users:?})"),
            || async { (!query(&s.prometheus, &q).await.is_empty()).then_some(()) },
        )
        .await;
    }
    // And each panel's whole query answers (rates need two scrapes).
    for (title, q) in &panels {
        eventually(&s.prometheus, &format!("panel {title:?}: {q}"), || async {
            (!query(&s.prometheus, q).await.is_empty()).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_healthy_operator_and_dashboard_fire_no_alert() {
    let s = stack();
    // Two evaluations after each panel has data, so rates exist.
    for (title, q) in panel_queries(s) {
        eventually(&s.prometheus, &format!("panel {title:?}"), || async {
            (!query(&s.prometheus, &q).await.is_empty()).then_some(())
        })
        .await;
    }
    let evaluated_at = || async {
        let data = api(&s.prometheus, "/api/v1/rules?type=alert").await;
        data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["lastEvaluation"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    for _ in 0..2 {
        let before = evaluated_at().await;
        eventually(&s.prometheus, "another rule evaluation", || async {
            let now = evaluated_at().await;
            now.iter().zip(&before).all(|(a, b)| a != b).then_some(())
        })
        .await;
    }
    let alerts = api(&s.prometheus, "/api/v1/alerts").await;
    let active: Vec<String> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} ({}): {}", a["labels"]["alertname"], a["state"], a["labels"]))
        .collect();
    let leader = query(&s.prometheus, "sum(portico_leader)").await;
    assert!(
        active.is_empty(),
        "a healthy operator and dashboard trigger alerts:\n{}\n(sum(portico_leader) = {leader:?}: \
         0 means operator::run_controllers does not hold `ctx.metrics.leading()`)",
        active.join("\n")
    );
}

#[tokio::test]
async fn the_process_metrics_are_what_proc_says_of_the_operator() {
    let s = stack();
    let pid = s.operator.process.pid();
    let sel = format!("{{job=\"{}\", namespace=\"{NAMESPACE}\"}}", s.jobs.0);
    let value = |q: String| async move {
        let r = query(&s.prometheus, &q).await;
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap()
    };
    use portico::metrics::{boot_time, clock_ticks, parse_stat};
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, started_ticks) = parse_stat(&stat).unwrap();
    let ticks = clock_ticks(&std::fs::read("/proc/self/auxv").unwrap()).unwrap() as f64;
    let boot = boot_time(&std::fs::read_to_string("/proc/stat").unwrap()).unwrap() as f64;
    let started = value(format!("process_start_time_seconds{sel}")).await;
    assert!(
        (started - (boot + started_ticks as f64 / ticks)).abs() < 0.02,
        "the operator says it started at {started}; /proc/{pid}/stat says {}",
        boot + started_ticks as f64 / ticks
    );
    let rss = value(format!("process_resident_memory_bytes{sel}")).await;
    assert!(rss > 4e6 && rss < 2e9, "resident memory {rss}");
    let fds = value(format!("process_open_fds{sel}")).await;
    let now_open = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as f64;
    assert!(
        fds >= 5.0 && (fds - now_open).abs() < 50.0,
        "open fds {fds}, /proc says {now_open}"
    );
    assert!(value(format!("process_max_fds{sel}")).await >= fds);
    assert!(value(format!("process_cpu_seconds_total{sel}")).await > 0.0);
    let version = query(&s.prometheus, "portico_build_info").await;
    assert_eq!(version.len(), 2, "one build_info per job: {version:?}");
    for v in version {
        assert_eq!(v["metric"]["version"], env!("CARGO_PKG_VERSION"), "{v}");
        assert_eq!(v["value"][1], "1", "{v}");
    }
}

#[tokio::test]
async fn the_dashboards_metrics_carry_nothing_a_user_sent() {
    let s = stack();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/terminals/team-a/alice-secret-shell",
        "/?user=alice-secret",
        "/no-such-alice-secret",
    ] {
        client.get(format!("{}{path}", s.dashboard)).send().await.unwrap();
    }
    let text = client
        .get(format!("{}/metrics", s.dashboard))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("portico_build_info{version="), "{text}");
    assert!(
        !text.contains("alice") && !text.contains("team-a"),
        "user data in /metrics:\n{text}"
    );
    // And what Prometheus stored of the dashboard, once it scraped after those
    // requests: its own metrics, no user's words.
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let scraped = format!("timestamp(up{{job=\"{}\"}}) > {sent}", s.jobs.1);
    eventually(
        &s.prometheus,
        "a scrape of the dashboard after the requests",
        || async { (!query(&s.prometheus, &scraped).await.is_empty()).then_some(()) },
    )
    .await;
    let q = format!("{{job=\"{}\"}}", s.jobs.1);
    let series = query(&s.prometheus, &q).await;
    let names: BTreeSet<String> = series
        .iter()
        .map(|v| v["metric"]["__name__"].as_str().unwrap().to_string())
        .collect();
    for name in &names {
        assert!(
            name.starts_with("portico_build_info")
                || name.starts_with("portico_dashboard_")
                || name.starts_with("process_")
                || name.starts_with("scrape_")
                || name == "up",
            "the dashboard exports {name}"
        );
    }
    assert!(names.contains("process_resident_memory_bytes"), "{names:?}");
    let all = serde_json::to_string(&series).unwrap();
    assert!(!all.contains("alice"), "{all}");
}

/// The value of an instant query's one series, if it has one.
async fn value(base: &str, q: &str) -> Option<f64> {
    let result = query(base, q).await;
    result
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse().ok())
}

/// Waits until `q`'s one series has the value `want`.
async fn until_value(base: &str, q: &str, want: f64) {
    eventually(base, &format!("{q} == {want}"), || async move {
        (value(base, q).await == Some(want)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deployments_changes_lead_time_stalls_and_restore_reach_prometheus() {
    let s = stack();
    let cp = common::shared();
    let admin = cp.admin_client().await.unwrap();
    let template = |name: &'static str, body: &'static str| {
        let admin = admin.clone();
        async move {
            let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
                "data": {"template.yaml": body}
            }))
            .unwrap();
            portico::install::apply(&admin, &cm).await.unwrap();
        }
    };
    const ONE: &str = "displayName: One\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n";
    const BROKEN: &str = "displayName: Broken\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: [oops\n";
    template("delivery-ok", ONE).await;
    template("delivery-later", BROKEN).await;
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let deployments = Api::<portico::api::Deployment>::namespaced(alice, "team-a");
    let made = [
        ("delivered", "delivery-ok"),
        ("restored", "delivery-later"),
        ("restored-too", "delivery-later"),
    ];
    for (name, template) in made {
        let d = common::fixtures::deployment(name, template, serde_json::json!({}));
        deployments.create(&PostParams::default(), &d).await.unwrap();
    }
    let p = &s.prometheus;
    let of = |metric: &str, template: &str, more: &str| {
        format!(r#"{metric}{{object_namespace="team-a",template="{template}"{more}}}"#)
    };
    // One change that turned Ready, with its lead time; one that stalled.
    until_value(
        p,
        &of("portico_deployment_changes_total", "delivery-ok", r#",outcome="ready""#),
        1.0,
    )
    .await;
    until_value(
        p,
        &of("portico_deployment_lead_time_seconds_count", "delivery-ok", ""),
        1.0,
    )
    .await;
    until_value(
        p,
        &of(
            "portico_deployment_changes_total",
            "delivery-later",
            r#",outcome="stalled""#,
        ),
        2.0,
    )
    .await;
    until_value(
        p,
        &of(
            "portico_deployment_stalls_total",
            "delivery-later",
            r#",reason="RenderFailed""#,
        ),
        2.0,
    )
    .await;
    // While both stall: a template most of whose changes stalled is an
    // action item, and the reason drilled into names them.
    let mut alice = common::ui::Browser::new();
    alice.dev_login(&s.dashboard, "alice").await;
    let url = format!("{}/insights?range=7d&reason=RenderFailed&format=json", s.dashboard);
    let both_stalled = |v: &Value| {
        v["drill"]["now"]
            .as_array()
            .is_some_and(|now| now.iter().filter(|d| d["template"] == "delivery-later").count() == 2)
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let stalled: Value = loop {
        let v: Value = alice.get(&url).await.json().await.unwrap();
        if both_stalled(&v) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "both not Stalled on the dashboard within 90 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let actions = stalled["actions"].to_string();
    assert!(
        actions.contains("template delivery-later: 2 of its 2 changes over 7d stalled"),
        "{actions}"
    );
    let drill = &stalled["drill"];
    assert_eq!(drill["class"], "template", "{drill}");
    assert!(
        drill["places"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["namespace"] == "team-a" && p["template"] == "delivery-later" && p["count"] == 2.0),
        "{drill}"
    );
    let now: Vec<&str> = drill["now"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["template"] == "delivery-later")
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(now, ["restored", "restored-too"], "{drill}");
    assert_eq!(
        value(
            p,
            &of(
                "portico_deployment_changes_total",
                "delivery-later",
                r#",outcome="ready""#
            )
        )
        .await,
        Some(0.0),
        "the pair's series start at zero"
    );
    // The template fixed, the stalled one turns Ready: a restore, and no second change.
    template("delivery-later", ONE).await;
    until_value(
        p,
        &of("portico_deployment_restore_seconds_count", "delivery-later", ""),
        2.0,
    )
    .await;
    assert_eq!(
        value(
            p,
            &of(
                "portico_deployment_changes_total",
                "delivery-later",
                r#",outcome="ready""#
            )
        )
        .await,
        Some(0.0)
    );
    // Insights shows the same, to alice of team-a, and nothing of it to bob.
    let all: Value = alice
        .get(&format!("{}/insights?range=7d&format=json", s.dashboard))
        .await
        .json()
        .await
        .unwrap();
    let delivery = &all["delivery"];
    assert!(delivery["unavailable"].is_null(), "{delivery}");
    let row = |template: &str| {
        delivery["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["namespace"] == "team-a" && r["template"] == template)
            .cloned()
            .unwrap_or_else(|| panic!("no row of {template} in {delivery}"))
    };
    // A series another target published under the operator's names, in
    // team-a, is in Prometheus but not on the page: not the operator's.
    until_value(
        p,
        r#"sum(portico_deployment_changes_total{template="forged",job="forger"})"#,
        5.0,
    )
    .await;
    assert!(!delivery.to_string().contains("forged"), "{delivery}");
    let ok = row("delivery-ok");
    assert_eq!(
        (
            ok["ready"].as_f64(),
            ok["stalled"].as_f64(),
            ok["failure_rate"].as_f64()
        ),
        (Some(1.0), Some(0.0), Some(0.0))
    );
    assert!(ok["lead_time"].as_f64().is_some_and(|l| l >= 0.0), "{ok}");
    let later = row("delivery-later");
    assert_eq!(
        (
            later["ready"].as_f64(),
            later["stalled"].as_f64(),
            later["failure_rate"].as_f64()
        ),
        (Some(0.0), Some(2.0), Some(1.0))
    );
    assert!(later["restore"].as_f64().is_some_and(|r| r >= 0.0), "{later}");
    // Per template, per team (the sum of the team's rows), the reasons, the scorecard.
    let named = |list: &Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {list}"))
    };
    let templates = &delivery["templates"];
    assert_eq!(
        (
            named(templates, "delivery-later")["ready"].as_f64(),
            named(templates, "delivery-later")["stalled"].as_f64()
        ),
        (Some(0.0), Some(2.0))
    );
    let ended: f64 = templates
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ready"].as_f64().unwrap() + t["stalled"].as_f64().unwrap())
        .sum();
    assert_eq!(all["overview"]["changes"].as_f64(), Some(ended), "{}", all["overview"]);
    let team = named(&delivery["teams"], "team-a");
    let team_rows: Vec<&Value> = delivery["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["namespace"] == "team-a")
        .collect();
    for field in ["ready", "stalled"] {
        let sum: f64 = team_rows.iter().map(|r| r[field].as_f64().unwrap()).sum();
        assert_eq!(team[field].as_f64(), Some(sum), "{field} of {team}");
    }
    assert!(
        all["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "RenderFailed" && r["class"] == "template" && r["count"].as_f64() >= Some(2.0)),
        "{}",
        all["reasons"]
    );
    let scored = |subject: &str| {
        let card = &all["scorecard"];
        card["best"]
            .as_array()
            .unwrap()
            .iter()
            .chain(card["worst"].as_array().unwrap())
            .find(|l| l["kind"] == "Template" && l["subject"] == subject)
            .map(|l| l["score"].as_u64().unwrap())
    };
    // Ready within a minute, all of its one change, once in 7 days: 60 + 25 + 15 / 7.
    assert_eq!(scored("delivery-ok"), Some(87));
    assert_eq!(scored("delivery-later"), Some(0), "no change of it turned Ready");
    let csv = alice
        .get(&format!("{}/insights?range=7d&format=csv&table=templates", s.dashboard))
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.lines().any(|l| l.starts_with("delivery-later,0,2,")), "{csv}");
    // Narrowed to one template, or one user; a scope that is not one is refused.
    let one: Value = alice
        .get(&format!(
            "{}/insights?range=7d&template=delivery-later&format=json",
            s.dashboard
        ))
        .await
        .json()
        .await
        .unwrap();
    let templates_in = |v: &Value, table: &str| -> BTreeSet<String> {
        v[table]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["template"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        templates_in(&one["delivery"], "rows"),
        BTreeSet::from(["delivery-later".to_string()])
    );
    assert_eq!(
        templates_in(&one, "deployments"),
        BTreeSet::from(["delivery-later".to_string()])
    );
    let theirs = alice
        .get(&format!(
            "{}/insights?user=bob&format=csv&table=deployments",
            s.dashboard
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        theirs.lines().count(),
        1,
        "none of bob's where alice may look: {theirs}"
    );
    for bad in [
        "template=Not%20A%20Name",
        "template=delivery-ok&user=alice",
        "users=alice",
        "user=a&user=b",
        "table=reasons",
    ] {
        let r = alice.get(&format!("{}/insights?{bad}", s.dashboard)).await;
        assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST, "{bad}");
    }
    let unknown = alice.get(&format!("{}/insights?reason=Bogus", s.dashboard)).await;
    assert_eq!(unknown.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(unknown.text().await.unwrap().contains("drill into one of"));
    // The page, with its charts, in Chromium in both themes.
    let flow = common::ui::browser_script(
        "insights_delivery.mjs",
        &[&s.dashboard, "alice", common::ui::screenshots().to_str().unwrap()],
    );
    common::ui::expect_browser_ok(flow).await;
    let page = alice
        .get(&format!("{}/insights?range=30d", s.dashboard))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Delivery over 30d") && page.contains("delivery-later"),
        "{page}"
    );
    let bad = alice.get(&format!("{}/insights?range=1y", s.dashboard)).await;
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);
    let mut bob = common::ui::Browser::new();
    bob.dev_login(&s.dashboard, "bob").await;
    let his: Value = bob
        .get(&format!("{}/insights?format=json", s.dashboard))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        his["delivery"]["unavailable"].is_null() && !his["delivery"]["rows"].to_string().contains("team-a"),
        "{his}"
    );
    // A change applied without leaving Ready (a ConfigMap's new data) is a
    // change too, counted once with its lead time.
    let change = serde_json::json!({"metadata": {"labels": {"changed": "yes"}}, "spec": {"parameters": {"unused": 1}}});
    deployments
        .patch(
            "delivered",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&change),
        )
        .await
        .unwrap();
    until_value(
        p,
        &of("portico_deployment_changes_total", "delivery-ok", r#",outcome="ready""#),
        2.0,
    )
    .await;
    until_value(
        p,
        &of("portico_deployment_lead_time_seconds_count", "delivery-ok", ""),
        2.0,
    )
    .await;
    for (name, _) in made {
        deployments.delete(name, &Default::default()).await.unwrap();
    }
}

#[tokio::test]
async fn a_workload_whose_pods_cannot_start_stalls_its_deployment_by_cause_until_they_can() {
    use kube::{
        api::{Patch, PatchParams},
        runtime::wait::await_condition,
    };
    let s = stack();
    let cp = common::shared();
    let admin = cp.admin_client().await.unwrap();
    portico::dev::load_catalog(
        &admin,
        std::path::Path::new(portico::dev::CATALOG_DIR),
        portico::dev::CATALOG_NAMESPACE,
        &portico::dev::catalog::local_images(),
    )
    .await
    .unwrap();
    let alice = cp.client_as("alice", &["developers"]).await.unwrap();
    let deployments = Api::<portico::api::Deployment>::namespaced(alice, "team-a");
    // No registry answers for this name: the kubelet cannot pull it.
    let d = common::fixtures::deployment(
        "unpullable",
        "webapp",
        serde_json::json!({"image": "registry.portico.invalid/nothing:1"}),
    );
    deployments.create(&PostParams::default(), &d).await.unwrap();
    let condition = |d: &portico::api::Deployment, type_: &str| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_ && c.status == "True"))
            .cloned()
    };
    let stalled = tokio::time::timeout(
        Duration::from_secs(180),
        await_condition(
            deployments.clone(),
            "unpullable",
            |d: Option<&portico::api::Deployment>| d.and_then(|d| condition(d, "Stalled")).is_some(),
        ),
    )
    .await
    .expect("Stalled within 180 s")
    .unwrap()
    .unwrap();
    let c = condition(&stalled, "Stalled").unwrap();
    assert_eq!(c.reason, "ResourceFailed", "{c:?}");
    // A pull that failed once may pass; its back-off is what stalls it.
    let cause = "ImagePullBackOff";
    assert!(
        c.message
            .starts_with(&format!("Deployment unpullable: {cause} in pod unpullable-")),
        "not the pull named: {}",
        c.message
    );
    assert!(c.message.contains(", container app"), "{}", c.message);
    // Counted by its cause, ranked by it on Insights, and drilled into.
    let p = &s.prometheus;
    until_value(
        p,
        &format!(
            r#"sum(portico_deployment_stalls_total{{object_namespace="team-a",template="webapp",reason="ResourceFailed",cause="{cause}"}})"#
        ),
        1.0,
    )
    .await;
    let mut viewer = common::ui::Browser::new();
    viewer.dev_login(&s.dashboard, "alice").await;
    let url = format!("{}/insights?range=7d&reason={cause}&format=json", s.dashboard);
    let deadline = Instant::now() + Duration::from_secs(90);
    let insights: Value = loop {
        let v: Value = viewer.get(&url).await.json().await.unwrap();
        let listed = v["drill"]["now"]
            .as_array()
            .is_some_and(|now| now.iter().any(|d| d["name"] == "unpullable"));
        if listed {
            break v;
        }
        assert!(Instant::now() < deadline, "not drilled into within 90 s: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let ranked = insights["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == cause)
        .cloned()
        .unwrap_or_else(|| panic!("{cause} not ranked: {}", insights["reasons"]));
    assert_eq!(
        (ranked["class"].as_str(), ranked["count"].as_f64()),
        (Some("workload"), Some(1.0))
    );
    let drill = &insights["drill"];
    assert!(
        drill["places"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["namespace"] == "team-a" && p["template"] == "webapp" && p["count"] == 1.0),
        "{drill}"
    );
    let failed = drill["now"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "unpullable")
        .map(|d| d["failed"].to_string())
        .unwrap();
    assert!(
        failed.contains(&format!("Deployment unpullable: {cause} in pod")),
        "{failed}"
    );
    // An image the node has: the pods start, the Deployment is Ready again, a restore.
    let fix = serde_json::json!({"spec": {"parameters": {"image": portico::controlplane::node::images::WEBAPP_IMAGE}}});
    deployments
        .patch("unpullable", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(180),
        await_condition(
            deployments.clone(),
            "unpullable",
            |d: Option<&portico::api::Deployment>| d.and_then(|d| condition(d, "Ready")).is_some(),
        ),
    )
    .await
    .expect("Ready again within 180 s")
    .unwrap();
    until_value(
        p,
        r#"sum(portico_deployment_restore_seconds_count{object_namespace="team-a",template="webapp"})"#,
        1.0,
    )
    .await;
    // The mending change turned Ready (its old pod, still backing off, did
    // not fail it): one change Ready, the first one stalled.
    for (outcome, want) in [("ready", 1.0), ("stalled", 1.0)] {
        until_value(
            p,
            &format!(
                r#"sum(portico_deployment_changes_total{{object_namespace="team-a",template="webapp",outcome="{outcome}"}})"#
            ),
            want,
        )
        .await;
    }
    deployments.delete("unpullable", &Default::default()).await.unwrap();
}

/// A namespace where only `user` may edit (made by the admin), so that
/// figures of the namespace and the user are this test's alone.
async fn own_namespace(admin: &kube::Client, ns: &str, user: &str) {
    ensure_namespace(common::shared(), ns).await;
    let rb: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{user}-edit"), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    portico::install::apply(admin, &rb).await.unwrap();
}

/// The one row named `name` of the usage table `per` (`teams` or `users`) of an Insights export.
fn usage_row(insights: &Value, per: &str, name: &str) -> Option<Value> {
    insights["usage"][per]
        .as_array()
        .unwrap_or_else(|| panic!("no usage {per} in {insights}"))
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

/// The Insights export of the last 7 days in `format`, as `b` sees it.
async fn export(b: &mut common::ui::Browser, dashboard: &str, format: &str) -> String {
    let url = format!("{dashboard}/insights?range=7d&format={format}");
    let r = b.get(&url).await;
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.text().await.unwrap()
}

#[tokio::test]
async fn usage_per_user_and_team_reaches_prometheus_and_insights_exactly() {
    use common::fixtures::{With, terminal_in};
    use portico::api::{Deployment, Terminal};

    let s = stack();
    let cp = common::shared();
    let admin = cp.admin_client().await.unwrap();
    // uma edits usage-a and vic usage-b; nobody else acts as them or there.
    own_namespace(&admin, "usage-a", "uma").await;
    own_namespace(&admin, "usage-b", "vic").await;
    for (name, body) in [
        (
            "usage-ok",
            "displayName: One\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: '{{ name }}'}\n",
        ),
        (
            "usage-broken",
            "displayName: Broken\nallowedGroups: ['*']\nmanifests: |\n  apiVersion: v1\n  kind: [oops\n",
        ),
    ] {
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": portico::dev::CATALOG_NAMESPACE, "labels": {"portico.dev/template": ""}},
            "data": {"template.yaml": body}
        }))
        .unwrap();
        portico::install::apply(&admin, &cm).await.unwrap();
    }
    // uma logs in (a session), opens two Terminals and changes two Deployments.
    let mut first = common::ui::Browser::new();
    first.dev_login(&s.dashboard, "uma").await;
    let uma = cp.client_as("uma", &["developers"]).await.unwrap();
    let terminals = Api::<Terminal>::namespaced(uma.clone(), "usage-a");
    let idle = terminal_in("usage-idle", "usage-a", "usage-a", "edit")
        .with(serde_json::json!({"spec": {"idleTimeout": "45s"}}));
    let closed = terminal_in("usage-closed", "usage-a", "usage-a", "edit");
    let idle = terminals.create(&PostParams::default(), &idle).await.unwrap();
    terminals.create(&PostParams::default(), &closed).await.unwrap();
    // Long enough that both are Ready, and the other closed, before it ends.
    let idle_ends = idle.metadata.creation_timestamp.unwrap().0 + k8s_openapi::jiff::SignedDuration::from_secs(45);
    let deployments = Api::<Deployment>::namespaced(uma, "usage-a");
    for (name, template) in [("usage-ready", "usage-ok"), ("usage-stalled", "usage-broken")] {
        let d = common::fixtures::deployment(name, template, serde_json::json!({}));
        deployments.create(&PostParams::default(), &d).await.unwrap();
    }
    let is_ready = |t: &Terminal| t.status.as_ref().is_some_and(|s| common::wait::ready(&s.conditions));
    for name in ["usage-idle", "usage-closed"] {
        common::wait::present(&terminals, name, "Ready", is_ready).await;
    }
    // She closes one; the other ends without heartbeats 45 s after its creation.
    let deleting = terminals
        .delete("usage-closed", &Default::default())
        .await
        .unwrap()
        .left()
        .expect("held by its finalizer");
    let lived = deleting.metadata.deletion_timestamp.unwrap().0.as_second()
        - deleting.metadata.creation_timestamp.unwrap().0.as_second();
    common::wait::gone(&terminals, "usage-closed").await;
    common::wait::gone(&terminals, "usage-idle").await;
    // An admin revokes her session; she logs in again. vic and carol log in.
    let claims = Api::<SessionClaim>::namespaced(admin.clone(), portico::dev::demo::SESSIONS_NAMESPACE);
    let of_uma: Vec<SessionClaim> = claims
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| portico::creator::creator_name(c) == "uma")
        .collect();
    assert_eq!(of_uma.len(), 1, "one session of uma: {of_uma:?}");
    let revoked = of_uma[0].metadata.name.clone().unwrap();
    claims.delete(&revoked, &Default::default()).await.unwrap();
    common::wait::gone(&claims, &revoked).await;
    let relogged = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap()
        - k8s_openapi::jiff::SignedDuration::from_secs(1);
    let mut viewers = Vec::new();
    for user in ["uma", "vic", "carol"] {
        let mut b = common::ui::Browser::new();
        b.dev_login(&s.dashboard, user).await;
        viewers.push(b);
    }
    let [mut uma_b, mut vic_b, mut carol_b]: [common::ui::Browser; 3] = viewers.try_into().ok().unwrap();

    // Prometheus holds exactly that.
    let p = &s.prometheus;
    let sum = |metric: &str, labels: &str| format!("sum({metric}{{{labels}}})");
    for (q, want) in [
        (
            sum(
                "portico_usage_opened_total",
                r#"kind="Terminal",object_namespace="usage-a",user="uma""#,
            ),
            2.0,
        ),
        (
            sum("portico_usage_opened_total", r#"kind="SessionClaim",user="uma""#),
            2.0,
        ),
        (
            sum("portico_usage_opened_total", r#"kind="SessionClaim",user="vic""#),
            1.0,
        ),
        (
            sum(
                "portico_usage_ended_total",
                r#"kind="Terminal",user="uma",reason="IdleTimeout""#,
            ),
            1.0,
        ),
        (
            sum(
                "portico_usage_ended_total",
                r#"kind="Terminal",user="uma",reason="Deleted""#,
            ),
            1.0,
        ),
        (
            sum(
                "portico_usage_ended_total",
                r#"kind="SessionClaim",user="uma",reason="Deleted""#,
            ),
            1.0,
        ),
        (
            sum("portico_usage_lifetime_seconds_total", r#"kind="Terminal",user="uma""#),
            (45 + lived) as f64,
        ),
        (
            sum(
                "portico_usage_operations_total",
                r#"object_namespace="usage-a",user="uma",outcome="ready""#,
            ),
            1.0,
        ),
        (
            sum(
                "portico_usage_operations_total",
                r#"object_namespace="usage-a",user="uma",outcome="stalled""#,
            ),
            1.0,
        ),
    ] {
        until_value(p, &q, want).await;
    }
    for (q, want) in [
        (
            sum("portico_usage_ended_total", r#"user="uma",reason="MaxLifetime""#),
            0.0,
        ),
        (
            sum(
                "portico_usage_ended_total",
                r#"kind="SessionClaim",user="uma",reason="IdleTimeout""#,
            ),
            0.0,
        ),
    ] {
        assert_eq!(value(p, &q).await, Some(want), "{q}");
    }

    // Insights shows the same: to uma, her team and herself only.
    let hours = (45 + lived) as f64 / 3600.0;
    let json = export(&mut uma_b, &s.dashboard, "json").await;
    let hers: Value = serde_json::from_str(&json).unwrap();
    assert!(hers["usage"]["unavailable"].is_null(), "{}", hers["usage"]);
    let mine = usage_row(&hers, "users", "uma").unwrap_or_else(|| panic!("no row of uma: {}", hers["usage"]));
    let figures = |r: &Value| {
        [
            "operations",
            "succeeded",
            "success_rate",
            "terminals",
            "idle_expirations",
            "max_lifetime_expirations",
            "logins",
            "revocations",
        ]
        .map(|k| r[k].as_f64())
    };
    assert_eq!(
        figures(&mine),
        [2.0, 1.0, 0.5, 2.0, 1.0, 0.0, 2.0, 1.0].map(Some),
        "{mine}"
    );
    assert!(
        (mine["terminal_hours"].as_f64().unwrap() - hours).abs() < 1e-9,
        "{mine}"
    );
    // Her last activity: her second login, the latest of it all (to the second).
    let last: k8s_openapi::jiff::Timestamp = mine["last_activity"].as_str().unwrap().parse().unwrap();
    assert!(
        last >= relogged && last <= k8s_openapi::jiff::Timestamp::now(),
        "{mine}, logged in again at {relogged}"
    );
    assert_eq!(
        hers["usage"]["users"].as_array().unwrap().len(),
        1,
        "only her own: {}",
        hers["usage"]
    );
    let team = usage_row(&hers, "teams", "usage-a").unwrap_or_else(|| panic!("no row of usage-a: {}", hers["usage"]));
    assert_eq!(
        figures(&team),
        [
            Some(2.0),
            Some(1.0),
            Some(0.5),
            Some(2.0),
            Some(1.0),
            Some(0.0),
            None,
            None
        ],
        "{team}"
    );
    // The team's: the idle Terminal's end, when it expired (after the Deployments' outcomes).
    assert_eq!(
        team["last_activity"].as_str(),
        Some(idle_ends.to_string().as_str()),
        "{team}"
    );
    assert!(usage_row(&hers, "teams", "usage-b").is_none(), "{}", hers["usage"]);
    // The CSV export, a line per team and per user.
    let csv = export(&mut uma_b, &s.dashboard, "csv&table=usage").await;
    let line = |per: &str| {
        csv.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[0] == per && f[1] == if per == "team" { "usage-a" } else { "uma" })
            .unwrap_or_else(|| panic!("no {per} line in {csv}"))
    };
    let (team_line, user_line) = (line("team"), line("user"));
    let hours_csv = format!("{hours:.3}");
    assert_eq!(
        [&team_line[2..5], &team_line[6..]].concat(),
        ["2", "1", "0.500", "2", hours_csv.as_str(), "1", "0", "", ""],
        "{csv}"
    );
    assert_eq!(
        [&user_line[2..5], &user_line[6..]].concat(),
        ["2", "1", "0.500", "2", hours_csv.as_str(), "1", "0", "2", "1"],
        "{csv}"
    );
    assert!(user_line[5].starts_with("20"), "a time: {csv}");
    let page = uma_b
        .get(&format!("{}/insights?range=7d", s.dashboard))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Usage over 7d") && page.contains("data-per=\"user\"") && page.contains(">uma<"),
        "{page}"
    );

    // vic sees nothing of uma's, nor of usage-a; carol, an admin, sees uma's figures.
    let json = export(&mut vic_b, &s.dashboard, "json").await;
    let his: Value = serde_json::from_str(&json).unwrap();
    assert!(
        !his["usage"].to_string().contains("uma") && !his["usage"].to_string().contains("usage-a"),
        "{}",
        his["usage"]
    );
    let vic = usage_row(&his, "users", "vic").unwrap_or_else(|| panic!("no row of vic: {}", his["usage"]));
    assert_eq!(
        (vic["logins"].as_f64(), vic["terminals"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    let json = export(&mut carol_b, &s.dashboard, "json").await;
    let all: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        usage_row(&all, "users", "uma").as_ref().map(figures),
        Some(figures(&mine)),
        "{}",
        all["usage"]
    );
    // The section in both themes (a third login of uma's, after the figures were checked).
    let flow = common::ui::browser_script(
        "insights_usage.mjs",
        &[
            &s.dashboard,
            "uma",
            "usage-a",
            common::ui::screenshots().to_str().unwrap(),
        ],
    );
    common::ui::expect_browser_ok(flow).await;
    for name in ["usage-ready", "usage-stalled"] {
        deployments.delete(name, &Default::default()).await.unwrap();
    }
}

#[tokio::test]
async fn the_operators_metrics_answer_only_a_token_allowed_to_read_them() {
    let s = stack();
    let cp = common::shared();
    let url = format!("http://127.0.0.1:{}/metrics", s.operator.metrics_port);
    let http = reqwest::Client::new();
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(none.text().await.unwrap().contains("needs a bearer token"));
    let forged = http.get(&url).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::UNAUTHORIZED);
    // An account the API server knows, without the grant.
    let other = common::operator::service_account_token(cp, NAMESPACE, "not-prometheus").await;
    let refused = http.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    let why = refused.text().await.unwrap();
    assert!(
        why.contains("system:serviceaccount:portico-system:not-prometheus may not get /metrics"),
        "{why}"
    );
    let read = http.get(&url).bearer_auth(&s.metrics_token).send().await.unwrap();
    assert_eq!(read.status(), reqwest::StatusCode::OK);
    assert!(read.text().await.unwrap().contains("portico_build_info"));
    // The chart's ServiceMonitor scrapes it with Prometheus' own token.
    let docs = render_chart();
    let monitor = one(&docs, "the operator's ServiceMonitor", |d| {
        d["kind"] == "ServiceMonitor"
            && d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    });
    assert_eq!(
        monitor["spec"]["endpoints"][0]["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
}
