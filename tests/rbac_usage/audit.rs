//! What the chart grants the operator's service account (from the rendered
//! RBAC), and what that account used (from the API server's audit log).

use std::collections::BTreeSet;

use portico::controlplane::audit::Event;
use serde::Deserialize;
use serde_json::Value;

/// The operator's service account in the chart: namespace and name.
pub const OPERATOR_SA: (&str, &str) = ("portico-system", "portico-operator");

fn operator_user() -> String {
    format!("system:serviceaccount:{}:{}", OPERATOR_SA.0, OPERATOR_SA.1)
}

/// One verb on one resource (`pods` or `pods/attach`) of one API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub group: String,
    pub resource: String,
    pub verb: String,
}

/// One granted (group, resource, verb), where, and by which role.
#[derive(Debug)]
pub struct Grant {
    pub group: String,
    pub resource: String,
    pub verb: String,
    /// `None` cluster-wide; a Role's namespace otherwise.
    pub namespace: Option<String>,
    /// `ClusterRole portico-operator`, `Role portico-operator-catalog in portico-catalog`, ….
    pub role: String,
}

impl Grant {
    /// Whether this grant allows `access` in namespace `ns` ("" cluster-wide).
    fn covers(&self, access: &Access, ns: &str) -> bool {
        access.group == self.group
            && access.resource == self.resource
            && access.verb == self.verb
            && self.namespace.as_ref().is_none_or(|n| n == ns)
    }

    /// Why this grant is not needed, or `None` when some use is allowed by
    /// this grant and by no other one in `all` (a grant whose every use
    /// another grant allows as well is excess too, for example a cluster-wide
    /// rule next to a Role in one namespace).
    pub fn excess(&self, uses: &BTreeSet<(Access, String)>, all: &[Grant]) -> Option<String> {
        let mine: Vec<&(Access, String)> = uses.iter().filter(|(a, ns)| self.covers(a, ns)).collect();
        if mine.is_empty() {
            return Some(format!("{self}: never used"));
        }
        let others: Vec<&Grant> = all.iter().filter(|o| !std::ptr::eq(*o, self)).collect();
        if mine.iter().any(|(a, ns)| !others.iter().any(|o| o.covers(a, ns))) {
            return None;
        }
        let by: BTreeSet<String> = others
            .iter()
            .filter(|o| mine.iter().any(|(a, ns)| o.covers(a, ns)))
            .map(|o| o.role.clone())
            .collect();
        Some(format!(
            "{self}: every use of it is also allowed by {}",
            by.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "apiGroups: [\"{}\"], resources: [{}], verbs: [{}]  (in {})",
            self.group, self.resource, self.verb, self.role
        )
    }
}

/// Every (group, resource, verb) that the rendered RBAC grants the operator's
/// service account through its bindings.
pub fn operator_grants(rendered: &str) -> Vec<Grant> {
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(rendered)
        .map(|d| Value::deserialize(d).expect("rendered YAML"))
        .filter(|v| !v.is_null())
        .collect();
    let binds_operator = |b: &Value| {
        b["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["kind"] == "ServiceAccount" && s["namespace"] == OPERATOR_SA.0 && s["name"] == OPERATOR_SA.1)
    };
    let mut out = vec![];
    for b in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
        .filter(|d| binds_operator(d))
    {
        let binding_ns = b["metadata"]["namespace"].as_str();
        let (kind, name) = (
            b["roleRef"]["kind"].as_str().unwrap_or_default(),
            b["roleRef"]["name"].as_str().unwrap_or_default(),
        );
        let role = docs
            .iter()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"] == name
                    && (kind == "ClusterRole" || d["metadata"]["namespace"].as_str() == binding_ns)
            })
            .unwrap_or_else(|| panic!("the chart binds the operator to {kind} {name}, which it does not render"));
        let label = match binding_ns {
            Some(ns) => format!("{kind} {name} in namespace {ns}"),
            None => format!("{kind} {name}"),
        };
        for rule in role["rules"].as_array().into_iter().flatten() {
            assert!(
                rule.get("nonResourceURLs").is_none() && rule.get("resourceNames").is_none(),
                "{label} has a rule this test cannot check yet (nonResourceURLs or resourceNames): {rule}"
            );
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        out.push(Grant {
                            group: group.clone(),
                            resource: resource.clone(),
                            verb,
                            namespace: binding_ns.map(str::to_string),
                            role: label.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

fn access(group: &str, resource: &str, verb: &str) -> Access {
    Access {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
    }
}

/// What the operator's service account used, with the namespace of each use.
/// A request made while impersonating a user uses `impersonate` on users (and
/// on groups when it names groups), and nothing of the operator's own grants:
/// RBAC decides that request for the impersonated user. A server-side apply
/// that created its object (201) needed `create` as well as `patch`.
pub fn operator_uses(events: &[Event]) -> BTreeSet<(Access, String)> {
    let me = operator_user();
    let mut uses = BTreeSet::new();
    for e in events.iter().filter(|e| e.user.username == me) {
        if let Some(imp) = &e.impersonated_user {
            uses.insert((access("", "users", "impersonate"), String::new()));
            if imp.groups.iter().any(|g| g != "system:authenticated") {
                uses.insert((access("", "groups", "impersonate"), String::new()));
            }
            continue;
        }
        let Some(o) = &e.object_ref else { continue };
        if o.resource.is_empty() || matches!(e.code(), 401 | 403) {
            continue;
        }
        let resource = if o.subresource.is_empty() {
            o.resource.clone()
        } else {
            format!("{}/{}", o.resource, o.subresource)
        };
        uses.insert((access(&o.api_group, &resource, &e.verb), o.namespace.clone()));
        if e.verb == "patch" && e.code() == 201 {
            uses.insert((access(&o.api_group, &resource, "create"), o.namespace.clone()));
        }
    }
    uses
}

/// The operator's own requests (not impersonating) that RBAC refused.
pub fn operator_refusals(events: &[Event]) -> Vec<String> {
    let me = operator_user();
    let refused: BTreeSet<String> = events
        .iter()
        .filter(|e| e.user.username == me && e.impersonated_user.is_none() && e.code() == 403)
        .map(|e| format!("  - {} {}", e.verb, e.request_uri))
        .collect();
    refused.into_iter().collect()
}
