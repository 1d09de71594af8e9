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
    format!("{MARKED}{name}-value")
}

/// What every marker starts with.
const MARKED: &str = "param-";

/// Last words of a parameter's name that say it holds a secret value.
const SECRET_WORDS: [&str; 8] = [
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "credential",
    "credentials",
    "apikey",
];

/// Words before `key` that make it a secret (`apiKey`, `privateKey`).
const SECRET_KEYS: [&str; 5] = ["api", "private", "access", "secret", "encryption"];

/// A parameter name's words, lower case: `adminPassword`, `admin_password`
/// and `admin-password` are `admin`, `password` (pure).
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut word = String::new();
    let mut last_lower = false;
    for c in name.chars() {
        if (!c.is_alphanumeric() || (c.is_uppercase() && last_lower)) && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        }
        last_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether a parameter holds a secret value in plain text (pure): a
/// string whose schema says so (`format: password`, `writeOnly`), or whose
/// name ends in a word such as password, token or secret (`apiKey` too) —
/// not the name of a Secret (`existingSecret`, `secretName`, `tokenRef`)
/// nor a setting about one (`tokenLifetime`, `passwordLength`).
pub fn holds_secret(name: &str, schema: &Value) -> bool {
    if schema
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "string")
    {
        return false;
    }
    if schema.get("format").and_then(Value::as_str) == Some("password")
        || schema.get("writeOnly").and_then(Value::as_bool) == Some(true)
    {
        return true;
    }
    let w = words(name);
    let Some(last) = w.last() else { return false };
    if w.first().is_some_and(|f| f == "existing") || w.iter().any(|x| x == "name" || x == "ref") {
        return false;
    }
    SECRET_WORDS.contains(&last.as_str())
        || (last == "key" && w.len() > 1 && SECRET_KEYS.contains(&w[w.len() - 2].as_str()))
}

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
        if holds_secret(param, schema) {
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
            pod_findings(&what, pod)
                .into_iter()
                .map(|(check, severity, found, fix)| finding(check, severity, found, fix)),
        );
    }
    // Again with a marker for every string parameter: the images users choose.
    let mut marked = values.clone();
    for (param, schema) in props.into_iter().flatten() {
        let is_string = schema.get("type").and_then(Value::as_str).is_none_or(|t| t == "string");
        if is_string && let Some(obj) = marked.as_object_mut() {
            obj.insert(param.clone(), Value::from(marker(param)));
        }
    }
    let inputs = render::Inputs {
        params: &marked,
        ..inputs
    };
    if let (Ok(objects), Some(props)) = (render::manifests(t, &inputs), props) {
        out.extend(
            image_parameters(&images(&objects), props)
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

/// A pod spec's containers, then its init containers.
fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|k| pod.get(k).and_then(Value::as_array))
        .flatten()
}

type PodFinding = (&'static str, Severity, String, &'static str);

/// The checks of one pod spec of `what` (pure).
fn pod_findings(what: &str, pod: &Value) -> Vec<PodFinding> {
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
    let setting = |v: &Value, key: &str| v.pointer(&format!("/securityContext/{key}")).cloned();
    for c in containers(pod) {
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
        // The container's setting wins over the pod's.
        let effective = |key: &str| setting(c, key).or_else(|| setting(pod, key));
        let non_root = effective("runAsNonRoot").and_then(|v| v.as_bool());
        let user = effective("runAsUser").and_then(|v| v.as_i64());
        let safe = match non_root {
            Some(false) => false,
            Some(true) => user != Some(0),
            None => user.is_some_and(|u| u > 0),
        };
        if !safe {
            out.push((
                "non-root",
                Severity::Warning,
                format!("{at} may run as root"),
                "set securityContext.runAsNonRoot: true or a runAsUser other than 0, on the pod or the container",
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
        // An image from a parameter users fill in is checked by [`image_parameters`].
        if !image.contains(MARKED) && !pinned(image) {
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

/// The containers' images of `objects`, with where each is.
fn images(objects: &[kube::api::DynamicObject]) -> Vec<(String, String)> {
    let mut out = vec![];
    for o in objects {
        let v = serde_json::to_value(o).unwrap_or_default();
        let kind = o.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default();
        let Some(pod) = pod_spec(kind, &v) else { continue };
        for c in containers(pod) {
            let at = format!(
                "{kind} {}, container {}",
                o.metadata.name.as_deref().unwrap_or_default(),
                c.get("name").and_then(Value::as_str).unwrap_or_default()
            );
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default().to_string();
            out.push((at, image));
        }
    }
    out
}

/// Images that users choose through a parameter (pure): rendered with a
/// marker for every string parameter, an image that is a parameter's
/// marker, or ends in one as its tag, is the users' choice unless the
/// parameter's schema keeps it pinned.
fn image_parameters(images: &[(String, String)], props: &serde_json::Map<String, Value>) -> Vec<PodFinding> {
    let mut out: Vec<PodFinding> = vec![];
    for (at, image) in images {
        for (param, schema) in props {
            let m = marker(param);
            let (whole, tag) = (image == &m, image.ends_with(&format!(":{m}")));
            let pinned_by_schema = match (whole, tag) {
                (true, _) => constrained(schema, &["example", "example:latest"], pinned),
                (_, true) => constrained(schema, &["", "latest"], |t| !t.is_empty() && t != "latest"),
                _ => continue,
            };
            if !pinned_by_schema {
                let what = if whole { "image" } else { "image tag" };
                out.push((
                    "pinned-image",
                    Severity::Warning,
                    format!("{at} runs whatever {what} users enter in parameter {param}, latest or none included"),
                    "give the parameter a pattern that requires a fixed tag or digest (:1.2.3 or @sha256:…), or an enum of pinned values",
                ));
            }
        }
    }
    out
}

/// Whether a parameter's schema keeps its values pinned (pure): an enum
/// whose values all are, or a pattern that refuses each of `unpinned`.
fn constrained(schema: &Value, unpinned: &[&str], is_pinned: impl Fn(&str) -> bool) -> bool {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().all(|v| v.as_str().is_some_and(&is_pinned));
    }
    match schema.get("pattern").and_then(Value::as_str).map(regex::Regex::new) {
        Some(Ok(re)) => unpinned.iter().all(|u| !re.is_match(u)),
        _ => false,
    }
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
    fn parameters_that_hold_a_secret_are_told_from_names_of_secrets_and_settings() {
        let string = serde_json::json!({"type": "string"});
        for name in [
            "adminPassword",
            "client_secret",
            "apiKey",
            "github-token",
            "dbCredentials",
            "PASSWORD",
        ] {
            assert!(holds_secret(name, &string), "{name}");
        }
        for name in [
            "secretName",
            "existingSecret",
            "tokenLifetime",
            "passwordLength",
            "tokenRef",
            "keyName",
            "monkey",
        ] {
            assert!(!holds_secret(name, &string), "{name}");
        }
        assert!(!holds_secret(
            "generatePassword",
            &serde_json::json!({"type": "boolean"})
        ));
        assert!(holds_secret(
            "pin",
            &serde_json::json!({"type": "string", "format": "password"})
        ));
        assert!(holds_secret("pin", &serde_json::json!({"writeOnly": true})));
    }

    #[test]
    fn root_is_judged_by_the_containers_setting_over_the_pods() {
        let t = tpl(r#"
allowedGroups: ["*"]
manifests: |
  apiVersion: batch/v1
  kind: CronJob
  metadata: {name: "{{ name }}"}
  spec:
    jobTemplate:
      spec:
        template:
          spec:
            securityContext: {runAsNonRoot: true}
            initContainers:
              - {name: init, image: "busybox:1.36", resources: {limits: {cpu: "1", memory: 1Gi}}, securityContext: {runAsNonRoot: false}}
            containers:
              - {name: user, image: "busybox:1.36", resources: {limits: {cpu: "1", memory: 1Gi}}, securityContext: {runAsNonRoot: null, runAsUser: 1000}}
              - {name: zero, image: "busybox:1.36", resources: {limits: {cpu: "1", memory: 1Gi}}, securityContext: {runAsUser: 0}}
              - {name: pod, image: "busybox:1.36", resources: {limits: {cpu: "1", memory: 1Gi}}}
"#);
        let found: Vec<String> = template("t", &t).into_iter().map(|f| f.found).collect();
        assert_eq!(
            found,
            [
                "CronJob NAME, container zero may run as root",
                "CronJob NAME, container init may run as root",
            ],
            "the container's false wins over the pod's true, a user other than 0 is enough"
        );
    }

    #[test]
    fn images_users_choose_need_a_schema_that_keeps_them_pinned() {
        let t = tpl(r#"
allowedGroups: ["*"]
parameters:
  type: object
  properties:
    image: {type: string, default: "nginx:1.27"}
    tag: {type: string, default: "1.0"}
    pinnedTag: {type: string, default: "1.0", pattern: "^[0-9]+[.][0-9]+$"}
    flavour: {type: string, enum: ["app:1", "app:2"], default: "app:1"}
    loose: {type: string, enum: ["app:1", "app:latest"], default: "app:1"}
manifests: |
  apiVersion: v1
  kind: Pod
  metadata: {name: "{{ name }}"}
  spec:
    securityContext: {runAsNonRoot: true}
    containers:
      - {name: a, image: {{ params.image | tojson }}, resources: {limits: {cpu: "1", memory: 1Gi}}}
      - {name: b, image: {{ ("repo/app:" ~ params.tag) | tojson }}, resources: {limits: {cpu: "1", memory: 1Gi}}}
      - {name: c, image: {{ ("repo/app:" ~ params.pinnedTag) | tojson }}, resources: {limits: {cpu: "1", memory: 1Gi}}}
      - {name: d, image: {{ params.flavour | tojson }}, resources: {limits: {cpu: "1", memory: 1Gi}}}
      - {name: e, image: {{ params.loose | tojson }}, resources: {limits: {cpu: "1", memory: 1Gi}}}
"#);
        let found: Vec<String> = template("t", &t).into_iter().map(|f| f.found).collect();
        assert_eq!(
            found,
            [
                "Pod NAME, container a runs whatever image users enter in parameter image, latest or none included",
                "Pod NAME, container b runs whatever image tag users enter in parameter tag, latest or none included",
                "Pod NAME, container e runs whatever image users enter in parameter loose, latest or none included",
            ]
        );
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
