//! Compliance checks (pure): over catalog templates — rendered with their
//! defaults, and a marker for each required parameter without one — and
//! over Terminals. Each finding names its object, the check, how serious
//! it is, what was found and what to change.

use serde::Serialize;
use serde_json::Value;

use crate::{
    api::{Terminal, common::BindingKind},
    catalog::{Template, params, render},
    lifetime,
};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Gives away more than the namespace: a privileged pod, the node's namespaces.
    Critical,
    /// Weakens the workload or leaks a secret.
    Warning,
    /// Worth a look.
    Notice,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `Template` or `Terminal`.
    pub kind: &'static str,
    /// The template's name, or the Terminal's `namespace/name`.
    pub subject: String,
    /// A stable name of the check.
    pub check: &'static str,
    /// How serious.
    pub severity: Severity,
    /// What was found.
    pub found: String,
    /// What to change.
    pub fix: String,
}

/// Terminals that may live longer than this are noted.
pub const LONG_LIFETIME_SECONDS: i64 = 8 * 3600;

/// What a required parameter without a default renders as: a string that
/// says where it came from.
fn marker(name: &str) -> String {
    format!("param-{name}-value")
}

/// Parameters whose names say they hold a secret.
const SECRET_WORDS: [&str; 7] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
];

/// The checks of one template named `name`.
pub fn template(name: &str, t: &Template) -> Vec<Finding> {
    let mut out = vec![];
    let finding = |check, severity, found: String, fix: &str| Finding {
        kind: "Template",
        subject: name.to_string(),
        check,
        severity,
        found,
        fix: fix.into(),
    };
    let props = t.parameters.get("properties").and_then(Value::as_object);
    for (param, schema) in props.into_iter().flatten() {
        let squashed: String = param.to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect();
        let says_secret = SECRET_WORDS.iter().any(|w| squashed.contains(w))
            || schema.get("format").and_then(Value::as_str) == Some("password")
            || schema.get("writeOnly").and_then(Value::as_bool) == Some(true);
        if says_secret {
            out.push(finding(
                "secret-parameter",
                Severity::Warning,
                format!("parameter {param} holds a secret in plain text: it is kept in the Deployment's spec, which everyone who may read Deployments there can read"),
                "generate it in the template with password() into a Secret, or take the name of an existing Secret instead",
            ));
        }
    }
    // Rendered with the defaults, and a marker for each required parameter without one.
    let mut values = params::with_defaults(&t.parameters, &Value::Object(Default::default()));
    let required = t.parameters.get("required").and_then(Value::as_array);
    for r in required.into_iter().flatten().filter_map(Value::as_str) {
        if values.get(r).is_none()
            && let Some(obj) = values.as_object_mut()
        {
            let kind = props
                .and_then(|p| p.get(r))
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str);
            let v = match kind {
                Some("integer") | Some("number") => Value::from(1),
                Some("boolean") => Value::from(false),
                _ => Value::from(marker(r)),
            };
            obj.insert(r.to_string(), v);
        }
    }
    let inputs = render::Inputs {
        name: "NAME",
        namespace: "NAMESPACE",
        params: &values,
        seed: b"compliance-check",
    };
    let objects = match render::manifests(t, &inputs) {
        Ok(o) => o,
        Err(e) => {
            out.push(finding(
                "renders",
                Severity::Notice,
                format!("it does not render with its defaults, so its objects were not checked: {e}"),
                "give every parameter a default, or make the template render without it",
            ));
            return out;
        }
    };
    for o in &objects {
        let v = serde_json::to_value(o).unwrap_or_default();
        let kind = o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default();
        let Some(pod) = pod_spec(kind, &v) else { continue };
        let what = format!("{kind} {}", o.metadata.name.as_deref().unwrap_or_default());
        out.extend(
            pod_findings(&what, pod, props)
                .into_iter()
                .map(|(check, severity, found, fix)| finding(check, severity, found, fix)),
        );
    }
    out
}

/// The pod spec of an object that has one.
fn pod_spec<'a>(kind: &str, v: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => v.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => v.pointer("/spec/template/spec"),
        "CronJob" => v.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

type PodFinding = (&'static str, Severity, String, &'static str);

/// The checks of one pod spec of `what` (pure).
fn pod_findings(what: &str, pod: &Value, props: Option<&serde_json::Map<String, Value>>) -> Vec<PodFinding> {
    let mut out: Vec<PodFinding> = vec![];
    let flag = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_bool) == Some(true);
    for (key, field) in [
        ("hostNetwork", "hostNetwork"),
        ("hostPID", "hostPID"),
        ("hostIPC", "hostIPC"),
    ] {
        if flag(pod, &format!("/{key}")) {
            out.push((
                "host-namespaces",
                Severity::Critical,
                format!("{what} shares the node's namespaces ({field}: true)"),
                "remove hostNetwork, hostPID and hostIPC",
            ));
        }
    }
    let pod_non_root = flag(pod, "/securityContext/runAsNonRoot");
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod.get(*k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let at = format!("{what}, container {name}");
        if flag(c, "/securityContext/privileged") {
            out.push((
                "privileged",
                Severity::Critical,
                format!("{at} runs privileged"),
                "remove securityContext.privileged",
            ));
        }
        if !(pod_non_root || flag(c, "/securityContext/runAsNonRoot")) {
            out.push((
                "non-root",
                Severity::Warning,
                format!("{at} may run as root"),
                "set securityContext.runAsNonRoot: true (and a runAsUser) on the pod or container",
            ));
        }
        let limits = c.pointer("/resources/limits");
        let missing: Vec<&str> = ["cpu", "memory"]
            .into_iter()
            .filter(|r| limits.and_then(|l| l.get(*r)).is_none())
            .collect();
        if !missing.is_empty() {
            out.push((
                "limits",
                Severity::Warning,
                format!("{at} has no {} limit", missing.join(" or ")),
                "set resources.limits.cpu and resources.limits.memory",
            ));
        }
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        if let Some(param) = props.into_iter().flat_map(|p| p.keys()).find(|p| image == marker(p)) {
            let constrained = props
                .and_then(|p| p.get(param))
                .and_then(|s| s.get("pattern"))
                .is_some();
            if !constrained {
                out.push((
                    "pinned-image",
                    Severity::Warning,
                    format!("{at} runs whatever image users enter in parameter {param}, tag or none"),
                    "give the parameter a pattern that requires a tag or a digest (:1.2.3 or @sha256:…)",
                ));
            }
        } else if !pinned(image) {
            out.push((
                "pinned-image",
                Severity::Warning,
                format!("{at} runs image {image} without a fixed tag"),
                "name a version tag or a digest, not :latest or none",
            ));
        }
    }
    out
}

/// Whether an image names a digest or a tag other than `latest` (pure).
pub fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

/// The checks of one Terminal.
pub fn terminal(t: &Terminal) -> Vec<Finding> {
    let subject = format!(
        "{}/{}",
        t.metadata.namespace.as_deref().unwrap_or_default(),
        t.metadata.name.as_deref().unwrap_or_default()
    );
    let finding = |check, severity, found: String, fix: &str| Finding {
        kind: "Terminal",
        subject: subject.clone(),
        check,
        severity,
        found,
        fix: fix.into(),
    };
    let mut out = vec![];
    let pod = &t.spec.host.pod;
    for (on, what) in [
        (pod.privileged, "runs privileged"),
        (pod.host_pid, "shares the node's processes (hostPID)"),
        (pod.host_network, "shares the node's network (hostNetwork)"),
    ] {
        if on == Some(true) {
            out.push(finding(
                "privileged-terminal",
                Severity::Critical,
                format!("its pod {what}"),
                "end it when the node work is done; open such terminals only for that",
            ));
        }
    }
    for b in &t.spec.target.role_bindings {
        if b.binding_kind == BindingKind::ClusterRoleBinding {
            out.push(finding(
                "cluster-wide-binding",
                Severity::Warning,
                format!("it binds ClusterRole {} in every namespace", b.role_ref.name),
                "bind the role in the namespaces it needs (bindingKind: RoleBinding)",
            ));
        }
    }
    let max = t
        .spec
        .max_lifetime
        .as_deref()
        .and_then(|d| lifetime::parse("maxLifetime", d).ok());
    if let Some(max) = max
        && max.as_secs() as i64 > LONG_LIFETIME_SECONDS
    {
        out.push(finding(
            "long-lifetime",
            Severity::Notice,
            format!(
                "it may live {} (maxLifetime)",
                t.spec.max_lifetime.as_deref().unwrap_or_default()
            ),
            "ask for 8h or less; a shorter life bounds what a forgotten terminal can do",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(yaml: &str) -> Template {
        Template::parse("t", &format!("displayName: T\n{}", yaml.trim_start())).unwrap()
    }

    #[test]
    fn images_are_pinned_by_a_tag_other_than_latest_or_a_digest() {
        assert!(pinned("docker.io/library/nginx:1.27"));
        assert!(pinned("registry:5000/app@sha256:abc"));
        assert!(!pinned("registry:5000/app"), "a registry port is not a tag");
        assert!(!pinned("nginx:latest"));
        assert!(!pinned("nginx"));
    }

    #[test]
    fn a_template_is_rendered_with_its_defaults_and_its_pods_checked() {
        let t = tpl(r#"
allowedGroups: ["*"]
parameters:
  type: object
  required: [image]
  properties:
    image: {type: string}
    adminPassword: {type: string, default: x}
    version: {type: string, default: "16", pattern: "^[0-9]+$"}
manifests: |
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: "{{ name }}"}
  spec:
    template:
      spec:
        hostNetwork: true
        containers:
          - name: app
            image: {{ params.image | tojson }}
            securityContext: {privileged: true}
          - name: db
            image: {{ ("postgres:" ~ params.version) | tojson }}
            resources: {limits: {cpu: "1", memory: 1Gi}}
            securityContext: {runAsNonRoot: true}
          - name: side
            image: busybox
            resources: {limits: {cpu: "1"}}
            securityContext: {runAsNonRoot: true}
"#);
        let found = template("t", &t);
        let has = |check: &str, text: &str| found.iter().any(|f| f.check == check && f.found.contains(text));
        assert!(has("secret-parameter", "parameter adminPassword"), "{found:#?}");
        assert!(has("host-namespaces", "hostNetwork: true"));
        assert!(has("privileged", "container app runs privileged"));
        assert!(has("non-root", "container app may run as root"));
        assert!(has("limits", "container app has no cpu or memory limit"));
        assert!(has("limits", "container side has no memory limit"));
        assert!(has("pinned-image", "whatever image users enter in parameter image"));
        assert!(has("pinned-image", "image busybox without a fixed tag"));
        assert!(
            !found.iter().any(|f| f.found.contains("container db")),
            "the pinned, limited, non-root container passes: {found:#?}"
        );
        assert!(
            found
                .iter()
                .all(|f| f.kind == "Template" && f.subject == "t" && !f.fix.is_empty())
        );
    }

    #[test]
    fn an_image_parameter_with_a_pattern_is_taken_as_constrained() {
        let t = tpl(r#"
allowedGroups: ["*"]
parameters:
  type: object
  required: [image]
  properties:
    image: {type: string, pattern: "^.+:[0-9.]+$"}
manifests: |
  apiVersion: v1
  kind: Pod
  metadata: {name: "{{ name }}"}
  spec:
    securityContext: {runAsNonRoot: true}
    containers: [{name: app, image: {{ params.image | tojson }}, resources: {limits: {cpu: "1", memory: 1Gi}}}]
"#);
        assert_eq!(template("t", &t), vec![]);
    }

    #[test]
    fn a_template_that_does_not_render_says_so() {
        let t = tpl("allowedGroups: [\"*\"]\nmanifests: \"{{ nothing.here }}\"\n");
        let found = template("t", &t);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!((found[0].check, found[0].severity), ("renders", Severity::Notice));
    }

    #[test]
    fn terminals_are_checked_for_node_access_cluster_wide_bindings_and_long_lives() {
        let t: Terminal = serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": "ops", "namespace": "team-a"},
            "spec": {
                "host": {"temporaryNamespace": true, "pod": {"image": "toolbox", "privileged": true, "hostPID": true}},
                "target": {"temporaryNamespace": true, "roleBindings": [
                    {"roleRef": {"kind": "ClusterRole", "name": "view"}, "bindingKind": "ClusterRoleBinding", "nameSuffix": "v"},
                    {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "e"}
                ]},
                "maxLifetime": "24h"
            }
        }))
        .unwrap();
        let found = terminal(&t);
        let checks: Vec<(&str, Severity)> = found.iter().map(|f| (f.check, f.severity)).collect();
        assert_eq!(
            checks,
            [
                ("privileged-terminal", Severity::Critical),
                ("privileged-terminal", Severity::Critical),
                ("cluster-wide-binding", Severity::Warning),
                ("long-lifetime", Severity::Notice),
            ]
        );
        assert!(found[2].found.contains("ClusterRole view") && found[0].subject == "team-a/ops");
        let mut plain = t.clone();
        plain.spec.host.pod.privileged = None;
        plain.spec.host.pod.host_pid = None;
        plain.spec.target.role_bindings.remove(0);
        plain.spec.max_lifetime = Some("8h".into());
        assert_eq!(terminal(&plain), vec![]);
    }
}
