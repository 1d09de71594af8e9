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

mod chart {
    pub mod dashboard;
    pub mod helm_test;
    pub mod priority;
    pub mod values;
}

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
