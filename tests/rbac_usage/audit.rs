//! What the chart grants a component's service account (from the rendered
//! RBAC), what that account used (from the API server's audit log), and the
//! verdict: every granted rule used, no request refused.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use portico::controlplane::{ControlPlane, audit::Event};
use serde::Deserialize;
use serde_json::Value;

/// A service account of the chart (release `portico` in portico-system).
#[derive(Debug, Clone, Copy)]
pub struct ServiceAccount {
    pub namespace: &'static str,
    pub name: &'static str,
}

impl ServiceAccount {
    /// The user name the API server gives its tokens.
    fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

/// A granted rule that no request can show in the audit log:
/// (group, resource, verb, why the component needs it).
pub type Unlogged = (&'static str, &'static str, &'static str, &'static str);

/// One component of the chart and what its check needs to know.
pub struct Component {
    /// `operator`, `dashboard`.
    pub name: &'static str,
    /// The chart's template with its RBAC, for example `templates/operator-rbac.yaml`.
    pub template: &'static str,
    pub account: ServiceAccount,
    /// Keep this list short: everything else must be used.
    pub not_in_the_audit_log: &'static [Unlogged],
    /// What the test has it do, in words.
    pub doing: &'static str,
    /// The file that makes it do that.
    pub exercised_in: &'static str,
}

impl Component {
    /// Its own requests that RBAC refused so far (watches show when they end).
    pub fn refused(&self, cp: &ControlPlane) -> Vec<String> {
        refusals(&cp.audit_events(), self.account)
    }

    /// After the component has stopped (the API server logs a watch when it
    /// ends): what is wrong with its RBAC in the chart, in words, waiting
    /// (bounded) for the events of its closed watches to be written.
    pub async fn problems(&self, cp: &ControlPlane) -> Vec<String> {
        let template = format!("charts/portico/{}", self.template);
        let rendered = crate::common::operator::render_chart(cp, self.template);
        let grants = grants(&rendered, self.account);
        if grants.is_empty() {
            return vec![format!("{template} grants the {} nothing?\n{rendered}", self.name)];
        }
        let mut problems: Vec<String> = self
            .not_in_the_audit_log
            .iter()
            .filter(|u| !grants.iter().any(|g| g.is(u)))
            .map(|(group, resource, verb, _)| {
                format!(
                    "the {}'s NOT_IN_THE_AUDIT_LOG lists {verb} {resource} in group {group:?}, \
                     which {template} no longer grants; remove it from the list",
                    self.name
                )
            })
            .collect();
        let checked: Vec<&Grant> = grants
            .iter()
            .filter(|g| !self.not_in_the_audit_log.iter().any(|u| g.is(u)))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        let (excess, events) = loop {
            let events = cp.audit_events();
            let uses = uses(&events, self.account);
            let excess: Vec<String> = checked.iter().filter_map(|g| g.excess(&uses, &grants)).collect();
            if excess.is_empty() || Instant::now() > deadline {
                break (excess, events);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let refused = refusals(&events, self.account);
        if !refused.is_empty() {
            problems.push(format!(
                "the API server refused the {} (running with the chart's RBAC) these requests; \
                 grant them in {template} or stop making them:\n{}",
                self.name,
                refused.join("\n")
            ));
        }
        if !excess.is_empty() {
            problems.push(format!(
                "{template} grants the {}'s service account permissions it did not need while {}:\n{}\n\
                 Remove each from the chart (and keep its README true), or, if the {} needs it, \
                 make this test exercise it ({}); only a permission no request can show belongs \
                 in NOT_IN_THE_AUDIT_LOG, with the reason.",
                self.name,
                self.doing,
                excess.iter().map(|g| format!("  - {g}")).collect::<Vec<_>>().join("\n"),
                self.name,
                self.exercised_in,
            ));
        }
        problems
    }
}

/// One verb on one resource (`pods` or `pods/attach`) of one API group, on
/// the object `name` (empty for a collection).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub group: String,
    pub resource: String,
    pub verb: String,
    pub name: String,
}

/// One granted (group, resource, verb), where, and by which role.
#[derive(Debug)]
pub struct Grant {
    pub group: String,
    pub resource: String,
    pub verb: String,
    /// `None` cluster-wide; a Role's namespace otherwise.
    pub namespace: Option<String>,
    /// The rule's `resourceNames`: `None` for every object.
    pub names: Option<Vec<String>>,
    /// `ClusterRole portico-operator`, `Role portico-operator-catalog in portico-catalog`, ….
    pub role: String,
}

impl Grant {
    /// Whether this grant is the rule `u` names.
    fn is(&self, u: &Unlogged) -> bool {
        (self.group.as_str(), self.resource.as_str(), self.verb.as_str()) == (u.0, u.1, u.2)
    }

    /// Whether this grant allows `access` in namespace `ns` ("" cluster-wide).
    fn covers(&self, access: &Access, ns: &str) -> bool {
        access.group == self.group
            && access.resource == self.resource
            && access.verb == self.verb
            && self.namespace.as_ref().is_none_or(|n| n == ns)
            && self.names.as_ref().is_none_or(|names| names.contains(&access.name))
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
        let names = match &self.names {
            Some(n) => format!(", resourceNames: [{}]", n.join(", ")),
            None => String::new(),
        };
        write!(
            f,
            "apiGroups: [\"{}\"], resources: [{}], verbs: [{}]{names}  (in {})",
            self.group, self.resource, self.verb, self.role
        )
    }
}

/// Every (group, resource, verb) that the rendered RBAC grants service
/// account `sa` through its bindings.
fn grants(rendered: &str, sa: ServiceAccount) -> Vec<Grant> {
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(rendered)
        .map(|d| Value::deserialize(d).expect("rendered YAML"))
        .filter(|v| !v.is_null())
        .collect();
    let binds_sa = |b: &Value| {
        b["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["kind"] == "ServiceAccount" && s["namespace"] == sa.namespace && s["name"] == sa.name)
    };
    let mut out = vec![];
    for b in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
        .filter(|d| binds_sa(d))
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
            .unwrap_or_else(|| panic!("the chart binds {} to {kind} {name}, which it does not render", sa.name));
        let label = match binding_ns {
            Some(ns) => format!("{kind} {name} in namespace {ns}"),
            None => format!("{kind} {name}"),
        };
        for rule in role["rules"].as_array().into_iter().flatten() {
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "{label} has a rule this test cannot check yet (nonResourceURLs): {rule}"
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
                            names: rule.get("resourceNames").map(|_| list("resourceNames")),
                            role: label.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

fn access(group: &str, resource: &str, verb: &str, name: &str) -> Access {
    Access {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
        name: name.into(),
    }
}

/// What service account `sa` used, with the namespace of each use. A request
/// made while impersonating a user uses `impersonate` on users — on
/// serviceaccounts in its namespace for `system:serviceaccount:NS:NAME`, as
/// the API server checks it — (and on groups when it names groups), and
/// nothing of the account's own grants:
/// RBAC decides that request for the impersonated user. A server-side apply
/// that created its object (201) needed `create` as well as `patch`.
fn uses(events: &[Event], sa: ServiceAccount) -> BTreeSet<(Access, String)> {
    let me = sa.user();
    let mut uses = BTreeSet::new();
    for e in events.iter().filter(|e| e.user.username == me) {
        if let Some(imp) = &e.impersonated_user {
            let account = imp.username.strip_prefix("system:serviceaccount:");
            match account.and_then(|a| a.split_once(':')) {
                Some((ns, name)) => uses.insert((access("", "serviceaccounts", "impersonate", name), ns.to_string())),
                None => uses.insert((access("", "users", "impersonate", ""), String::new())),
            };
            if imp.groups.iter().any(|g| g != "system:authenticated") {
                uses.insert((access("", "groups", "impersonate", ""), String::new()));
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
        uses.insert((access(&o.api_group, &resource, &e.verb, &o.name), o.namespace.clone()));
        if e.verb == "patch" && e.code() == 201 {
            uses.insert((access(&o.api_group, &resource, "create", &o.name), o.namespace.clone()));
        }
    }
    uses
}

/// The requests of `sa` itself (not impersonating) that RBAC refused.
fn refusals(events: &[Event], sa: ServiceAccount) -> Vec<String> {
    let me = sa.user();
    let refused: BTreeSet<String> = events
        .iter()
        .filter(|e| e.user.username == me && e.impersonated_user.is_none() && e.code() == 403)
        .map(|e| format!("  - {} {}", e.verb, e.request_uri))
        .collect();
    refused.into_iter().collect()
}
