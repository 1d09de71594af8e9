//! The Helm chart with the real helm: it lints, renders in each TLS mode,
//! ships the generated CRDs unchanged, its operator configuration loads, its
//! manifests apply (server dry run) to the real API server, and the operator
//! pod passes the Pod Security `restricted` profile; the operator's own
//! requests land in the chart's API Priority and Fairness level. (Every
//! operator test runs the operator as the chart's service account with the
//! chart's RBAC and priority level.)

mod common;

use std::path::Path;

use common::{kubectl, shared};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/portico");

fn helm(args: &[&str]) -> String {
    let out = std::process::Command::new(shared().binaries().path("helm"))
        .args(args)
        .output()
        .unwrap();
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
    let mut args = vec!["template", "portico", CHART, "-n", "portico-system"];
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
        assert_eq!(cfg.webhook.manage_configurations, extra.is_empty());
    }
}

fn dry_run(docs: &[serde_json::Value]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.yaml");
    let text: String = docs
        .iter()
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
async fn the_operator_pod_passes_the_restricted_pod_security_profile() {
    let ns = "pss-restricted";
    let out = kubectl(&["create", "namespace", ns]);
    assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"));
    let _ = kubectl(&["create", "serviceaccount", "portico-operator", "-n", ns]);
    let out = kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs = render(&[]);
    let d: Deployment =
        serde_json::from_value(docs.iter().find(|d| d["kind"] == "Deployment").unwrap().clone()).unwrap();
    let template = d.spec.unwrap().template;
    let pod = |spec: &serde_json::Value| serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": ns}, "spec": spec});
    let spec = serde_json::to_value(template.spec.unwrap()).unwrap();
    let create = |p: serde_json::Value| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pod.json");
        std::fs::write(&f, p.to_string()).unwrap();
        kubectl(&["create", "--dry-run=server", "-f", f.to_str().unwrap()])
    };
    let out = create(pod(&spec));
    assert!(
        out.status.success(),
        "the chart's operator pod violates 'restricted': {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The check is real: a variant that adds a capability is refused.
    let mut bad = spec.clone();
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
