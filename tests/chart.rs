//! The Helm chart with the real helm: it lints, renders in each TLS mode,
//! ships the generated CRDs unchanged, its operator configuration loads, its
//! manifests apply (server dry run) to the real API server, and every pod it
//! runs passes the Pod Security `restricted` profile; the operator's own
//! requests land in the chart's API Priority and Fairness level. Its values
//! schema refuses typos and wrong types, naming the key; a default install
//! lets any user log in to the dashboard; the dashboard takes the operator's
//! scheduling knobs and an Ingress or HTTPRoute; `helm test` checks each
//! component through its Service; the NOTES render. (Every operator test
//! runs the operator as the chart's service account with the chart's RBAC
//! and priority level.)

mod common;

use std::{collections::BTreeMap, path::Path};

use common::{kubectl, shared};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Pod, Secret, Service},
    networking::v1::Ingress,
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use portico::{api::SessionClaim, config::OperatorConfig, ui::config::UiConfig};
use serde_json::{Value, json};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/portico");

/// Runs the real helm; its output, whether it succeeded or not.
fn helm_run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(shared().binaries().path("helm"))
        .args(args)
        .output()
        .unwrap()
}

/// What helm says when it refuses `args` (`lint` reports on stdout, the rest on stderr).
fn helm_refusal(args: &[&str]) -> String {
    let out = helm_run(args);
    assert!(!out.status.success(), "helm {} succeeded", args.join(" "));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn helm(args: &[&str]) -> String {
    let out = helm_run(args);
    assert!(
        out.status.success(),
        "helm {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn render(extra: &[&str]) -> Vec<serde_json::Value> {
    render_chart(CHART, extra)
}

fn render_chart(chart: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["template", "portico", chart, "-n", "portico-system"];
    args.extend_from_slice(extra);
    let text = helm(&args);
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kinds(docs: &[serde_json::Value]) -> Vec<String> {
    let mut k: Vec<String> = docs.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect();
    k.sort();
    k
}

#[test]
fn the_chart_lints_in_both_tls_modes() {
    helm(&["lint", CHART]);
    helm(&["lint", CHART, "--set", "webhook.tls=certManager"]);
}

#[test]
fn the_chart_ships_the_generated_crds_and_roles_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "terminals.portico.dev.yaml",
        "deployments.portico.dev.yaml",
        "sessionclaims.portico.dev.yaml",
    ] {
        let generated = std::fs::read_to_string(root.join("crds").join(name)).unwrap();
        let shipped = std::fs::read_to_string(root.join("charts/portico/crds").join(name)).unwrap();
        assert!(
            generated == shipped,
            "charts/portico/crds/{name} differs from crds/{name}; copy it"
        );
    }
    let roles = std::fs::read_to_string(root.join("crds/portico-aggregated-clusterroles.yaml")).unwrap();
    let template = std::fs::read_to_string(root.join("charts/portico/templates/aggregated-clusterroles.yaml")).unwrap();
    assert!(
        template.contains(&roles),
        "templates/aggregated-clusterroles.yaml must hold crds/portico-aggregated-clusterroles.yaml"
    );
}

#[test]
fn the_rendered_operator_configuration_loads() {
    for extra in [&[][..], &["--set", "webhook.tls=certManager"][..]] {
        let docs = render(extra);
        let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        let cm: ConfigMap = serde_json::from_value(cm.clone()).unwrap();
        let text = &cm.data.unwrap()["operator.yaml"];
        let cfg = portico::config::OperatorConfig::from_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(cfg.webhook.service.unwrap().name, "portico-operator");
        // The chart makes the webhook configurations; the operator writes
        // their caBundle (or cert-manager does) and never creates them.
        assert!(!cfg.webhook.manage_configurations);
        assert_eq!(cfg.webhook.inject_ca_bundle, extra.is_empty());
    }
}

/// The rendered object of `kind` named `name`.
fn doc<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap()
}

/// A `helm.sh/hook` object: made by `helm test` (or another hook), not by the install.
fn is_hook(d: &Value) -> bool {
    d["metadata"]["annotations"]["helm.sh/hook"].is_string()
}

/// The operator configuration the chart renders, as the operator loads it.
fn operator_config(docs: &[Value]) -> OperatorConfig {
    let cm: ConfigMap = typed(doc(docs, "ConfigMap", "portico-operator"));
    let text = &cm.data.unwrap()["operator.yaml"];
    OperatorConfig::from_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The dashboard configuration the chart renders, as the dashboard loads it.
fn ui_config(docs: &[Value]) -> UiConfig {
    let cm: ConfigMap = typed(doc(docs, "ConfigMap", "portico-dashboard"));
    let text = &cm.data.unwrap()["ui.yaml"];
    UiConfig::from_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Whether a label selector's `matchLabels` selects an object with `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Applies what `helm install` would (hooks left out) as a server-side dry run.
fn dry_run(docs: &[serde_json::Value]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.yaml");
    let text: String = docs
        .iter()
        .filter(|d| !is_hook(d))
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn the_rendered_manifests_apply_to_the_api_server() {
    common::operator::ensure_namespace(shared(), "portico-system").await;
    common::operator::ensure_namespace(shared(), "portico-catalog").await;
    let docs = render(&[]);
    assert!(kinds(&docs).contains(&"PodDisruptionBudget".to_string()));
    dry_run(&docs);
    // cert-manager mode: the webhook configurations come from the chart; the
    // cert-manager and Prometheus Operator kinds are not installed here.
    let docs = render(&[
        "--set",
        "webhook.tls=certManager",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
    ]);
    for k in [
        "Certificate",
        "Issuer",
        "ServiceMonitor",
        "MutatingWebhookConfiguration",
        "NetworkPolicy",
    ] {
        assert!(kinds(&docs).contains(&k.to_string()), "{k} missing");
    }
    let installed: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| !["Certificate", "Issuer", "ServiceMonitor"].contains(&d["kind"].as_str().unwrap()))
        .collect();
    dry_run(&installed);
}

#[tokio::test]
async fn every_pod_the_chart_runs_passes_the_restricted_pod_security_profile() {
    let ns = "pss-restricted";
    let out = kubectl(&["create", "namespace", ns]);
    assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"));
    // Pods are admitted only with their service account (kube-controller-manager makes `default` in time).
    for sa in ["portico-operator", "portico-dashboard", "default"] {
        let _ = kubectl(&["create", "serviceaccount", sa, "-n", ns]);
    }
    let out = kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The operator, the dashboard and the `helm test` pods, with the image
    // our own installation test uses (which runs as root by default).
    let mut args = DASHBOARD.to_vec();
    args.extend(["--set", "tests.image=portico.local/toolbox:2"]);
    let docs = render(&args);
    let pods: Vec<(String, Value)> = docs
        .iter()
        .filter_map(|d| match d["kind"].as_str() {
            Some("Deployment") => Some((d["metadata"]["name"].to_string(), d["spec"]["template"]["spec"].clone())),
            Some("Pod") => Some((d["metadata"]["name"].to_string(), d["spec"].clone())),
            _ => None,
        })
        .collect();
    assert_eq!(pods.len(), 5, "the operator, the dashboard, three test pods: {pods:?}");
    let pod = |spec: &serde_json::Value| serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chart-pod", "namespace": ns}, "spec": spec});
    let create = |p: serde_json::Value| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pod.json");
        std::fs::write(&f, p.to_string()).unwrap();
        kubectl(&["create", "--dry-run=server", "-f", f.to_str().unwrap()])
    };
    for (name, spec) in &pods {
        let out = create(pod(spec));
        assert!(
            out.status.success(),
            "the chart's pod {name} violates 'restricted': {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // runAsNonRoot alone makes the kubelet refuse an image that runs as
    // root by default; the test pods name their user, so any image with curl runs.
    for d in docs.iter().filter(|d| is_hook(d)) {
        let p: Pod = typed(d);
        let spec = p.spec.unwrap();
        let pod_user = spec.security_context.and_then(|s| s.run_as_user);
        for c in spec.containers {
            let user = c.security_context.and_then(|s| s.run_as_user).or(pod_user);
            assert!(
                user.is_some_and(|u| u != 0),
                "{}: container {} names no non-root user",
                d["metadata"]["name"],
                c.name
            );
        }
    }
    // The check is real: a variant that adds a capability is refused.
    let mut bad = pods
        .iter()
        .find(|(n, _)| n.contains("portico-operator"))
        .unwrap()
        .1
        .clone();
    bad["containers"][0]["securityContext"]["capabilities"] =
        serde_json::json!({"add": ["NET_ADMIN"], "drop": ["ALL"]});
    let out = create(pod(&bad));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("violates PodSecurity \"restricted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_flux_helm_release_values_render_a_valid_configuration() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flux/helmrelease.yaml")).unwrap();
    use serde::Deserialize;
    let release = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "HelmRelease")
        .expect("a HelmRelease");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, serde_yaml_ng::to_string(&release["spec"]["values"]).unwrap()).unwrap();
    let docs = render(&["-f", values.to_str().unwrap()]);
    let cm: ConfigMap =
        serde_json::from_value(docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap().clone()).unwrap();
    let cfg = portico::config::OperatorConfig::from_yaml(&cm.data.unwrap()["operator.yaml"]).unwrap();
    assert_eq!(cfg.session_profiles[0].name, "developer");
    assert_eq!(cfg.terminal.privileged_groups, ["portico-admins"]);
}

const DASHBOARD: [&str; 8] = [
    "--set",
    "dashboard.enabled=true",
    "--set",
    "dashboard.publicUrl=https://portico.example.com",
    "--set",
    "dashboard.oidc.issuer=https://login.example.com",
    "--set",
    "dashboard.existingSecret=portico-dashboard",
];

#[tokio::test]
async fn the_dashboard_renders_a_valid_configuration_and_applies() {
    // A server-side dry run creates no namespace, so those the chart makes exist first.
    common::operator::ensure_namespace(shared(), "portico-system").await;
    common::operator::ensure_namespace(shared(), "portico-catalog").await;
    common::operator::ensure_namespace(shared(), "portico-sessions").await;
    let docs = render(&DASHBOARD);
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "portico-dashboard")
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(cm.clone()).unwrap();
    let cfg = portico::ui::config::UiConfig::from_yaml(&cm.data.unwrap()["ui.yaml"]).unwrap();
    assert_eq!(cfg.oidc.unwrap().issuer, "https://login.example.com");
    assert!(cfg.terminals.shortcuts.is_empty() && cfg.branding.accent_color.is_none());
    // The dashboard watches SessionClaims only in the session namespace, which the chart makes.
    let sessions_role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "portico-dashboard-sessions")
        .expect("a Role for the session namespace");
    assert_eq!(sessions_role["metadata"]["namespace"], "portico-sessions");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == "portico-sessions")
    );
    let cluster_role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "portico-dashboard")
        .unwrap();
    assert!(
        !cluster_role.to_string().contains("sessionclaims"),
        "no cluster-wide SessionClaim access"
    );
    // Branding and shortcuts from values reach the configuration.
    let shortcuts = r#"dashboard.terminals.shortcuts=[{"name":"shell","title":"Shell","image":"docker.io/library/alpine:3.20","roles":[{"kind":"ClusterRole","name":"view"}]}]"#;
    let mut args = DASHBOARD.to_vec();
    args.extend([
        "--set",
        "dashboard.branding.accentColor=#0f766e",
        "--set-json",
        shortcuts,
        "--set",
        "dashboard.terminals.shortcutNamespaces={team-a}",
        "--set",
        "dashboard.trustedProxies={10.0.0.0/8,192.0.2.1}",
    ]);
    let branded = render(&args);
    let cm = branded
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "portico-dashboard")
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(cm.clone()).unwrap();
    let cfg = portico::ui::config::UiConfig::from_yaml(&cm.data.unwrap()["ui.yaml"]).unwrap();
    assert_eq!(cfg.branding.accent_color.as_deref(), Some("#0f766e"));
    assert_eq!(cfg.terminals.shortcuts[0].title, "Shell");
    assert_eq!(cfg.terminals.shortcut_namespaces, ["team-a"]);
    assert!(
        cfg.trusted_proxies.contains("10.1.2.3".parse().unwrap())
            && cfg.trusted_proxies.contains("192.0.2.1".parse().unwrap())
    );
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "portico-dashboard")
    );
    dry_run(&docs);
    // Without the values it needs, the chart says which.
    let out = std::process::Command::new(shared().binaries().path("helm"))
        .args(["template", "portico", CHART, "--set", "dashboard.enabled=true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dashboard.publicUrl is required"));
}

/// The priority level and flow schema API Priority and Fairness put a
/// request in, from the response's headers.
async fn classified(client: &kube::Client) -> (String, String) {
    let req = http::Request::get("/version").body(Vec::new()).unwrap();
    classified_request(client, req).await
}

/// As [`classified`], for `req`.
async fn classified_request(client: &kube::Client, req: http::Request<Vec<u8>>) -> (String, String) {
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .unwrap_or_else(|| panic!("no {h} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    (
        header("X-Kubernetes-PF-FlowSchema-UID"),
        header("X-Kubernetes-PF-PriorityLevel-UID"),
    )
}

/// The UIDs of the chart's FlowSchema `name` and of its priority level
/// (also named `name`), as [`classified`] reports them.
async fn flow(admin: &kube::Client, name: &str) -> (String, String) {
    use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};
    let schema = kube::Api::<FlowSchema>::all(admin.clone()).get(name).await.unwrap();
    let level = kube::Api::<PriorityLevelConfiguration>::all(admin.clone())
        .get(name)
        .await
        .unwrap();
    assert_eq!(schema.spec.as_ref().unwrap().priority_level_configuration.name, name);
    (schema.metadata.uid.unwrap(), level.metadata.uid.unwrap())
}

#[tokio::test]
async fn the_operators_own_requests_get_the_charts_priority_level_and_users_do_not() {
    let kc = common::operator::chart_kubeconfig(shared()).await;
    let kc = kube::config::Kubeconfig::read_from(&kc).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let operator = kube::Client::try_from(config).unwrap();
    let admin = common::admin().await;
    let (schema, level) = flow(&admin, "portico-operator").await;
    let (fs, pl) = classified(&operator).await;
    assert_eq!(fs, schema, "the operator's FlowSchema");
    assert_eq!(pl, level, "the operator's priority level");
    // A user, and the operator acting as a user, stay in the user's flows.
    let alice = shared().client_as("alice@example.com", &["developers"]).await.unwrap();
    let (fs, pl) = classified(&alice).await;
    assert_ne!(fs, schema);
    assert_ne!(pl, level);

    // The webhook's rules review, asked as the creator, has a level apart
    // from the creator's other requests (which may be waiting on the webhook).
    let (reviews, reviews_level) = flow(&admin, "portico-operator-access-reviews").await;
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": "team-a"}}))
    .unwrap();
    let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
        .header("Content-Type", "application/json")
        .header("Impersonate-User", "alice@example.com")
        .header("Impersonate-Group", "developers")
        .body(body)
        .unwrap();
    let (fs, pl) = classified_request(&operator, req).await;
    assert_eq!(fs, reviews, "a rules review as the creator");
    assert_eq!(pl, reviews_level);
    // Anything else the operator asks as a user stays in the user's flows.
    let req = http::Request::get("/api/v1/namespaces/team-a/configmaps")
        .header("Impersonate-User", "alice@example.com")
        .header("Impersonate-Group", "developers")
        .body(Vec::new())
        .unwrap();
    let (fs, _) = classified_request(&operator, req).await;
    assert_ne!(fs, reviews);
    assert_ne!(fs, schema);
}

#[test]
fn the_values_schema_refuses_typos_wrong_types_and_unknown_choices_naming_the_key() {
    // (a value, what the refusal names, what it says)
    let cases = [
        ("dashbaord.enabled=true", "'dashbaord'", "not allowed"),
        ("operator.replicas=two", "/operator/replicas", "want integer"),
        ("webhook.tls=certmanager", "/webhook/tls", "'certManager'"),
        ("operator.logFormat=yaml", "/operator/logFormat", "'json'"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy", "'IfNotPresent'"),
        ("dashboard.ingress.enable=true", "'enable'", "not allowed"),
        (
            "operator.config.terminal.idelTimeout.default=1h",
            "'idelTimeout'",
            "not allowed",
        ),
        (
            "operator.config.sessionTokenLifetime=1 hour",
            "/operator/config/sessionTokenLifetime",
            "pattern",
        ),
        // Set by the chart itself: a value there would be silently replaced.
        (
            "operator.config.metrics.bindAddress=0.0.0.0:9090",
            "'metrics'",
            "not allowed",
        ),
    ];
    for (set, key, says) in cases {
        for args in [
            &["template", "portico", CHART, "--set", set][..],
            &["lint", CHART, "--set", set][..],
        ] {
            let refusal = helm_refusal(args);
            assert!(
                refusal.contains(key) && refusal.contains(says),
                "helm {}: the refusal should name {key} and say {says:?}:\n{refusal}",
                args.join(" ")
            );
        }
    }
    // The same keys, spelled and typed right, render; free-form maps stay open.
    let docs = render(&[
        "--set",
        "dashboard.enabled=false",
        "--set",
        "operator.replicas=3",
        "--set",
        "webhook.tls=certManager",
        "--set",
        "operator.logFormat=text",
        "--set",
        "operator.config.sessionTokenLifetime=1h30m",
        "--set",
        "operator.nodeSelector.example\\.com/disk=ssd",
        "--set",
        "operator.resources.limits.ephemeral-storage=1Gi",
    ]);
    let d: Deployment = typed(doc(&docs, "Deployment", "portico-operator"));
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    assert_eq!(
        operator_config(&docs).session_token_lifetime,
        std::time::Duration::from_secs(90 * 60)
    );
}

/// Every key under `path` of `values` has a type and a description in
/// `schema`; free-form maps (a schema without `properties`) end the walk.
fn undescribed(path: &str, values: &Value, schema: &Value, out: &mut Vec<String>) {
    match values {
        Value::Object(map) => {
            let Some(props) = schema["properties"].as_object() else {
                return;
            };
            for (k, v) in map {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let Some(s) = props.get(k) else {
                    out.push(format!("{key}: not in the schema"));
                    continue;
                };
                if s["description"].as_str().is_none_or(str::is_empty) {
                    out.push(format!("{key}: no description"));
                }
                if ["type", "oneOf", "enum"].iter().all(|t| s.get(t).is_none()) {
                    out.push(format!("{key}: no type"));
                }
                undescribed(&key, v, s, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                undescribed(&format!("{path}[{i}]"), item, &schema["items"], out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_of_values_yaml_is_typed_and_described_in_the_schema() {
    let root = Path::new(CHART);
    let values: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(root.join("values.yaml")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("values.schema.json")).unwrap()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let mut out = vec![];
    undescribed("", &values, &schema, &mut out);
    assert!(out.is_empty(), "charts/portico/values.schema.json:\n{}", out.join("\n"));
}

#[test]
fn the_documented_operator_configuration_passes_the_schema_and_loads() {
    // config/operator.yaml documents every key; those the chart sets itself are not values.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/operator.yaml")).unwrap();
    let mut cfg: Value = serde_yaml_ng::from_str(&text).unwrap();
    for key in ["webhook", "leaderElection", "metrics"] {
        cfg.as_object_mut().unwrap().remove(key).expect("a documented section");
    }
    cfg["deployment"].as_object_mut().unwrap().remove("seedSecret");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_yaml_ng::to_string(&json!({"operator": {"config": cfg}})).unwrap(),
    )
    .unwrap();
    let loaded = operator_config(&render(&["-f", values.to_str().unwrap()]));
    let names: Vec<&str> = loaded.session_profiles.iter().map(|p| p.name.as_str()).collect();
    let documented: Vec<&str> = cfg["sessionProfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, documented);
}

#[tokio::test]
async fn by_default_every_user_may_log_in_to_the_dashboard() {
    common::operator::ensure_namespace(shared(), "portico-sessions").await;
    let docs = render(&DASHBOARD);
    let (operator, ui) = (operator_config(&docs), ui_config(&docs));
    // The profile every login claims is offered, to users in any groups the
    // identity provider sends (the webhook's check), or in none.
    let profile = operator.profile(&ui.session.profile).unwrap_or_else(|| {
        panic!(
            "logins claim profile {:?}; the operator offers {:?}",
            ui.session.profile,
            operator.session_profiles.iter().map(|p| &p.name).collect::<Vec<_>>()
        )
    });
    assert!(profile.allows(&[]) && profile.allows(&["some-team".to_string()]));
    // RBAC lets any authenticated user create it in the session namespace:
    // with the chart's Role and RoleBinding applied, a user the cluster has
    // never seen, impersonated as the dashboard does, may.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rbac.yaml");
    let rbac = [
        doc(&docs, "Role", "portico-session-claims"),
        doc(&docs, "RoleBinding", "portico-session-claims"),
    ];
    assert!(
        rbac.iter()
            .all(|d| d["metadata"]["namespace"] == ui.session.namespace.as_str())
    );
    let text: String = rbac
        .iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let user = shared()
        .client_as("newcomer@example.com", &["some-team"])
        .await
        .unwrap();
    let claims: Api<SessionClaim> = Api::namespaced(user.clone(), &ui.session.namespace);
    let claim = common::fixtures::claim("login", &ui.session.profile);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    // The RBAC authorizer's cache takes a moment to see a new binding: bounded polling.
    let mut created = claims.create(&dry, &claim).await;
    for _ in 0..50 {
        if created.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        created = claims.create(&dry, &claim).await;
    }
    created.expect("a newcomer may create a SessionClaim in the session namespace");
    // Read, extend (a keepalive patch) and end one: 404, there is none, not 403.
    let keepalive = json!({"metadata": {"annotations": {"portico.dev/operation": "keepalive"}}});
    let results = [
        claims.get("none").await.err(),
        claims
            .patch("none", &PatchParams::default(), &Patch::Merge(&keepalive))
            .await
            .err(),
        claims.delete("none", &DeleteParams::default()).await.err(),
    ];
    for r in results {
        assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 404), "{r:?}");
    }
    // Nothing else there: not the list of who is logged in, no Secrets, and
    // no SessionClaims elsewhere.
    let r = claims.list(&Default::default()).await.err();
    assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 403), "{r:?}");
    let secrets: Api<Secret> = Api::namespaced(user.clone(), &ui.session.namespace);
    let r = secrets.list(&Default::default()).await.err();
    assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 403), "{r:?}");
    let elsewhere: Api<SessionClaim> = Api::namespaced(user, "default");
    let r = elsewhere.create(&dry, &claim).await.err();
    assert!(matches!(&r, Some(kube::Error::Api(e)) if e.code == 403), "{r:?}");
}

#[tokio::test]
async fn the_dashboard_takes_the_operators_scheduling_knobs_and_an_ingress_or_httproute() {
    let mut args = DASHBOARD.to_vec();
    args.extend([
        "--set",
        "dashboard.replicas=3",
        "--set",
        "dashboard.nodeSelector.pool=web",
        "--set",
        "dashboard.priorityClassName=portico-high",
        "--set-json",
        r#"dashboard.tolerations=[{"key":"dedicated","operator":"Equal","value":"web","effect":"NoSchedule"}]"#,
        "--set-json",
        r#"dashboard.topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]"#,
        "--set",
        "dashboard.podAnnotations.example\\.com/team=platform",
        "--set-json",
        r#"imagePullSecrets=[{"name":"registry"}]"#,
        "--set",
        "dashboard.serviceAccount.create=false",
        "--set",
        "dashboard.serviceAccount.name=portico-ui",
        "--set",
        "dashboard.podDisruptionBudget.minAvailable=50%",
        "--set",
        "dashboard.ingress.enabled=true",
        "--set",
        "dashboard.ingress.className=nginx",
        "--set-json",
        r#"dashboard.ingress.tls=[{"secretName":"portico-tls","hosts":["portico.example.com"]}]"#,
        "--set",
        "dashboard.httpRoute.enabled=true",
        "--set-json",
        r#"dashboard.httpRoute.parentRefs=[{"name":"public","namespace":"gateways","sectionName":"https"}]"#,
    ]);
    let docs = render(&args);
    let d: Deployment = typed(doc(&docs, "Deployment", "portico-dashboard"));
    let spec = d.spec.unwrap();
    let labels = spec.template.metadata.clone().unwrap().labels.unwrap();
    let annotations = spec.template.metadata.unwrap().annotations.unwrap();
    let pod = spec.template.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(pod.node_selector.unwrap()["pool"], "web");
    assert_eq!(pod.priority_class_name.as_deref(), Some("portico-high"));
    assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("dedicated"));
    assert_eq!(annotations["example.com/team"], "platform");
    assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
    // A spread constraint without a selector counts the dashboard's own pods.
    let spread = &pod.topology_spread_constraints.unwrap()[0];
    let spread_labels = spread.label_selector.clone().unwrap().match_labels.unwrap();
    assert!(selects(&spread_labels, &labels));
    // An existing service account: the pods use it and the chart binds it, without making it.
    assert_eq!(pod.service_account_name.as_deref(), Some("portico-ui"));
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ServiceAccount" && d["metadata"]["name"] != "portico-operator")
    );
    let binding = doc(&docs, "ClusterRoleBinding", "portico-dashboard");
    assert_eq!(binding["subjects"][0]["name"], "portico-ui");
    // The disruption budget keeps the dashboard's pods, and only them.
    let operator: Deployment = typed(doc(&docs, "Deployment", "portico-operator"));
    let operator_labels = operator.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    let pdb: PodDisruptionBudget = typed(doc(&docs, "PodDisruptionBudget", "portico-dashboard"));
    let pdb = pdb.spec.unwrap();
    let pdb_labels = pdb.selector.unwrap().match_labels.unwrap();
    assert!(selects(&pdb_labels, &labels) && !selects(&pdb_labels, &operator_labels));
    assert_eq!(serde_json::to_value(pdb.min_available.unwrap()).unwrap(), json!("50%"));
    // The Service reaches the dashboard's pods; the Ingress sends the
    // publicUrl's host to a port of that Service, with the TLS asked for.
    let svc: Service = typed(doc(&docs, "Service", "portico-dashboard"));
    let svc_spec = svc.spec.unwrap();
    assert!(selects(svc_spec.selector.as_ref().unwrap(), &labels));
    let ports = svc_spec.ports.unwrap();
    let ing: Ingress = typed(doc(&docs, "Ingress", "portico-dashboard"));
    let ing = ing.spec.unwrap();
    assert_eq!(ing.ingress_class_name.as_deref(), Some("nginx"));
    assert_eq!(ing.tls.unwrap()[0].secret_name.as_deref(), Some("portico-tls"));
    let rule = &ing.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("portico.example.com"));
    let backend = rule.http.as_ref().unwrap().paths[0].backend.service.clone().unwrap();
    assert_eq!(backend.name, "portico-dashboard");
    let port = backend.port.unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p.name == port.name && port.name.is_some() || Some(p.port) == port.number)
    );
    // The HTTPRoute likewise, attached to the Gateway named.
    let route = doc(&docs, "HTTPRoute", "portico-dashboard");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    assert_eq!(route["spec"]["hostnames"], json!(["portico.example.com"]));
    let backend = &route["spec"]["rules"][0]["backendRefs"][0];
    assert_eq!(backend["name"], "portico-dashboard");
    assert!(ports.iter().any(|p| json!(p.port) == backend["port"]));
    // The API server takes them (Gateway API is not installed here).
    for ns in ["portico-system", "portico-catalog", "portico-sessions"] {
        common::operator::ensure_namespace(shared(), ns).await;
    }
    let installed: Vec<Value> = docs.iter().filter(|d| d["kind"] != "HTTPRoute").cloned().collect();
    dry_run(&installed);
    // Neither by default; an HTTPRoute needs a Gateway.
    let plain = render(&DASHBOARD);
    assert!(!plain.iter().any(|d| d["kind"] == "Ingress" || d["kind"] == "HTTPRoute"));
    let mut args = vec!["template", "portico", CHART];
    args.extend(DASHBOARD);
    args.extend(["--set", "dashboard.httpRoute.enabled=true"]);
    assert!(helm_refusal(&args).contains("dashboard.httpRoute.parentRefs is required"));
}

#[test]
fn helm_test_checks_each_component_where_its_service_sends_the_kubelets_probes() {
    let cert_manager = ["--set", "webhook.tls=certManager"];
    for (extra, expected) in [
        (&[][..], &["portico-test-operator", "portico-test-webhook"][..]),
        (
            &cert_manager[..],
            &["portico-test-operator", "portico-test-webhook"][..],
        ),
        (
            &DASHBOARD[..],
            &[
                "portico-test-dashboard",
                "portico-test-operator",
                "portico-test-webhook",
            ][..],
        ),
    ] {
        let docs = render(extra);
        let mut tests: Vec<Pod> = docs
            .iter()
            .filter(|d| d["metadata"]["annotations"]["helm.sh/hook"] == "test")
            .map(typed)
            .collect();
        tests.sort_by_key(|p| p.metadata.name.clone());
        let names: Vec<&str> = tests.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect();
        assert_eq!(names, expected);
        for t in &tests {
            let name = t.metadata.name.as_deref().unwrap();
            let spec = t.spec.as_ref().unwrap();
            let check = &spec.containers[0];
            let args = check.args.clone().unwrap();
            let url: http::Uri = args.last().unwrap().parse().unwrap();
            // <service>.<namespace>.svc, a Service the chart makes, one of its ports...
            let (svc_name, ns) = url
                .host()
                .unwrap()
                .strip_suffix(".svc")
                .unwrap()
                .split_once('.')
                .unwrap();
            let svc: Service = typed(doc(&docs, "Service", svc_name));
            assert_eq!(svc.metadata.namespace.as_deref(), Some(ns));
            let svc_spec = svc.spec.unwrap();
            let svc_port = svc_spec
                .ports
                .unwrap()
                .into_iter()
                .find(|p| Some(p.port as u16) == url.port_u16())
                .unwrap_or_else(|| panic!("{name}: {url} is no port of Service {svc_name}"));
            // ...which leads to a port of the container of the pods it selects.
            let target = serde_json::to_value(svc_port.target_port.unwrap()).unwrap();
            let selected: Vec<Deployment> = docs
                .iter()
                .filter(|d| d["kind"] == "Deployment")
                .map(typed::<Deployment>)
                .filter(|d| {
                    let labels = d.spec.clone().unwrap().template.metadata.unwrap().labels.unwrap();
                    selects(svc_spec.selector.as_ref().unwrap(), &labels)
                })
                .collect();
            assert_eq!(selected.len(), 1, "{name}: Service {svc_name} selects one Deployment");
            let pod_spec = selected[0].spec.clone().unwrap().template.spec.unwrap();
            let container = pod_spec
                .containers
                .iter()
                .find(|c| {
                    c.ports.iter().flatten().any(|p| {
                        target == json!(p.name.clone().unwrap_or_default()) || target == json!(p.container_port)
                    })
                })
                .unwrap_or_else(|| panic!("{name}: no container has port {target}"));
            match url.scheme_str() {
                // Over HTTP: the path and port the kubelet's readiness probe asks, and an HTTP error fails.
                Some("http") => {
                    let probe = container.readiness_probe.clone().unwrap().http_get.unwrap();
                    assert_eq!(probe.path.as_deref(), Some(url.path()), "{name}");
                    assert_eq!(serde_json::to_value(probe.port).unwrap(), target, "{name}");
                    assert!(args.iter().any(|a| a == "--fail"), "{name}");
                }
                // The webhook: TLS checked against ca.crt of the Secret the operator serves from.
                Some("https") => {
                    let ca = &args[args.iter().position(|a| a == "--cacert").unwrap() + 1];
                    let mount = check
                        .volume_mounts
                        .iter()
                        .flatten()
                        .find(|m| ca.starts_with(&m.mount_path))
                        .unwrap_or_else(|| panic!("{name}: {ca} is on no volume"));
                    let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
                    let secret = volume.secret.clone().unwrap();
                    assert!(ca.ends_with("/ca.crt"));
                    assert!(
                        secret.items.unwrap().iter().all(|i| i.key == "ca.crt"),
                        "only the CA, not the key"
                    );
                    let cfg = operator_config(&docs);
                    let serving = match &cfg.webhook.cert_dir {
                        Some(dir) => {
                            let m = container
                                .volume_mounts
                                .iter()
                                .flatten()
                                .find(|m| Path::new(&m.mount_path) == dir.as_path())
                                .unwrap();
                            let v = pod_spec.volumes.iter().flatten().find(|v| v.name == m.name).unwrap();
                            v.secret.clone().unwrap().secret_name.unwrap()
                        }
                        None => cfg.webhook.cert_secret.name.clone(),
                    };
                    assert_eq!(secret.secret_name.as_deref(), Some(serving.as_str()), "{name}");
                    assert_eq!(
                        serde_json::to_value(cfg.webhook.service.unwrap().port).unwrap(),
                        json!(svc_port.port)
                    );
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The NOTES `helm install` prints, and the objects it installs, for
/// values `extra`. `helm template` leaves NOTES.txt out and an install (even
/// a dry run) needs every kind to exist in a cluster, so a copy of the chart
/// renders the notes into a ConfigMap.
fn notes(extra: &[&str]) -> (String, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("portico");
    copy_dir(Path::new(CHART), &chart);
    let text = std::fs::read_to_string(chart.join("templates/NOTES.txt")).unwrap();
    std::fs::write(
        chart.join("templates/zz-notes.yaml"),
        format!(
            "{{{{- define \"zz.notes\" }}}}{text}{{{{- end }}}}\n\
             {{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"zz-notes\"}}, \
             \"data\": {{\"notes\": {{{{ include \"zz.notes\" . | toJson }}}}}}}}\n"
        ),
    )
    .unwrap();
    let docs = render_chart(chart.to_str().unwrap(), extra);
    let notes = doc(&docs, "ConfigMap", "zz-notes")["data"]["notes"]
        .as_str()
        .unwrap()
        .to_string();
    (notes, docs)
}

#[test]
fn the_notes_render_for_every_kind_of_installation() {
    let mut variants: Vec<Vec<&str>> = vec![vec![], DASHBOARD.to_vec()];
    for extra in [
        &["--set", "dashboard.ingress.enabled=true"][..],
        &[
            "--set",
            "dashboard.httpRoute.enabled=true",
            "--set-json",
            r#"dashboard.httpRoute.parentRefs=[{"name":"public"}]"#,
        ][..],
        &["--set-json", "dashboard.session.claimGroups=[]"][..],
    ] {
        let mut v = DASHBOARD.to_vec();
        v.extend(extra);
        variants.push(v);
    }
    for extra in variants {
        let (notes, docs) = notes(&extra);
        // What the notes say to wait for is the operator the chart installs.
        let waited = notes
            .split("rollout status deployment/")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no rollout status in\n{notes}"));
        let d = doc(&docs, "Deployment", waited);
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/component"], "operator");
        assert!(notes.contains("helm test portico -n portico-system"), "{notes}");
        // With the dashboard: where users reach it.
        if extra.contains(&"dashboard.enabled=true") {
            assert!(notes.contains(&ui_config(&docs).public_url), "{notes}");
        }
    }
}

#[test]
fn the_charts_webhook_configurations_are_the_ones_the_operator_builds() {
    use portico::webhook::registration::{mutating, validating};
    for extra in [&[][..], &["--set", "webhook.tls=certManager"][..]] {
        let docs = render(extra);
        let cfg = operator_config(&docs);
        let built = [
            (
                "MutatingWebhookConfiguration",
                serde_json::to_value(mutating(&cfg.webhook, "")).unwrap(),
            ),
            (
                "ValidatingWebhookConfiguration",
                serde_json::to_value(validating(&cfg.webhook, "")).unwrap(),
            ),
        ];
        for (kind, mut want) in built {
            for hook in want["webhooks"].as_array_mut().unwrap() {
                hook["clientConfig"].as_object_mut().unwrap().remove("caBundle");
            }
            let got = docs
                .iter()
                .find(|d| d["kind"] == kind)
                .unwrap_or_else(|| panic!("the chart renders a {kind}"));
            assert_eq!(got["metadata"]["name"], want["metadata"]["name"], "{kind} {extra:?}");
            assert_eq!(got["webhooks"], want["webhooks"], "{kind} {extra:?}");
            // The CA comes from the operator (which never creates the
            // configurations) or from cert-manager's injector.
            let injected = got["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str();
            assert_eq!(injected.is_some(), !extra.is_empty(), "{kind} {extra:?}");
            assert_eq!(cfg.webhook.inject_ca_bundle, extra.is_empty());
            assert!(!cfg.webhook.manage_configurations);
        }
    }
}
