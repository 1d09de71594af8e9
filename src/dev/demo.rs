//! The demo tenants of `portico dev` (pure: builds the objects).
//!
//! - `alice` (group `developers`) may edit namespace `team-a`;
//! - `bob` (group `developers`) may edit namespace `team-b`;
//! - `carol` (group `portico-admins`) is admin in every namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::Namespace,
    rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject},
};
use kube::api::ObjectMeta;

/// A demo user: name, groups, and the namespace their kubectl context uses.
pub struct DemoUser {
    /// User name.
    pub name: &'static str,
    /// Groups.
    pub groups: &'static [&'static str],
    /// Default namespace of their context.
    pub namespace: &'static str,
}

/// The demo users.
pub const USERS: [DemoUser; 3] = [
    DemoUser {
        name: "alice",
        groups: &["developers"],
        namespace: "team-a",
    },
    DemoUser {
        name: "bob",
        groups: &["developers"],
        namespace: "team-b",
    },
    DemoUser {
        name: "carol",
        groups: &["portico-admins"],
        namespace: "default",
    },
];

/// The group whose members administer Portico.
pub const ADMIN_GROUP: &str = "portico-admins";
/// Where demo users keep their SessionClaims (they may not read other Secrets there).
pub const SESSIONS_NAMESPACE: &str = "portico-sessions";

fn labels(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([("app.kubernetes.io/part-of".to_string(), "portico-demo".to_string())]);
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

fn cluster_role(name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: name.into(),
    }
}

fn subject(kind: &str, name: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
        namespace: None,
    }
}

/// Namespaces `team-a` and `team-b`, labelled `team=a` and `team=b`, and `portico-sessions`.
pub fn namespaces() -> Vec<Namespace> {
    let mut out: Vec<Namespace> = ["a", "b"]
        .iter()
        .map(|t| Namespace {
            metadata: ObjectMeta {
                name: Some(format!("team-{t}")),
                labels: Some(labels(&[("team", t)])),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect();
    out.push(Namespace {
        metadata: ObjectMeta {
            name: Some(SESSIONS_NAMESPACE.into()),
            labels: Some(labels(&[])),
            ..Default::default()
        },
        ..Default::default()
    });
    out
}

/// Lets developers manage SessionClaims (and nothing else) in `portico-sessions`.
pub fn session_role() -> (k8s_openapi::api::rbac::v1::Role, RoleBinding) {
    let meta = ObjectMeta {
        name: Some("claim-sessions".into()),
        namespace: Some(SESSIONS_NAMESPACE.into()),
        labels: Some(labels(&[])),
        ..Default::default()
    };
    let role = k8s_openapi::api::rbac::v1::Role {
        metadata: meta.clone(),
        rules: Some(vec![k8s_openapi::api::rbac::v1::PolicyRule {
            api_groups: Some(vec![crate::api::GROUP.into()]),
            resources: Some(vec!["sessionclaims".into()]),
            verbs: ["create", "get", "list", "watch", "patch", "delete"]
                .iter()
                .map(|v| v.to_string())
                .collect(),
            ..Default::default()
        }]),
    };
    let rb = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "claim-sessions".into(),
        },
        subjects: Some(vec![subject("Group", "developers")]),
    };
    (role, rb)
}

/// The demo session profile: `developer`, edit in every namespace with a `team`
/// label (bound only where the user holds edit: alice gets team-a, bob team-b).
pub const PROFILES_YAML: &str = "
- name: developer
  description: Edit rights in your team's namespaces
  allowedGroups: [developers, portico-admins]
  grants:
    - namespaces: {selector: {matchExpressions: [{key: team, operator: Exists}]}}
      role: {kind: ClusterRole, name: edit}
  idleTimeout: {default: 30m, max: 8h}
  maxLifetime: {default: 8h, max: 24h}
  maxActivePerUser: 3
";

/// The dashboard's terminal shortcuts in the demo (verified: configuration).
pub const SHORTCUTS_YAML: &str = "
- name: shell
  title: Team shell
  description: kubectl and a shell with edit rights in a namespace of your team
  image: docker.io/alpine/k8s:1.34.1
  command: [/bin/sh]
  roles: [{kind: ClusterRole, name: edit}]
- name: viewer
  title: Read-only shell
  description: Look around a namespace with the view role
  image: docker.io/alpine/k8s:1.34.1
  command: [/bin/sh]
  roles: [{kind: ClusterRole, name: view}]
";

/// The demo's shortcuts as dashboard configuration; with `image`, each uses
/// that image instead (the node's local toolbox, where no registry is reachable).
pub fn shortcuts(image: Option<&str>) -> serde_json::Value {
    let mut list: serde_json::Value = serde_yaml_ng::from_str(SHORTCUTS_YAML).expect("demo shortcuts parse");
    if let Some(image) = image {
        for s in list.as_array_mut().expect("a list of shortcuts") {
            s["image"] = image.into();
        }
    }
    list
}

/// A ConfigMap in team-a offering an unverified shortcut (anyone with edit
/// there could write it): the node's local toolbox with the view role.
pub fn team_shortcuts() -> k8s_openapi::api::core::v1::ConfigMap {
    let shortcut = format!(
        "- name: debug\n  title: Debug toolbox\n  description: the toolbox in team-a, written by the team\n  image: {}\n  command: [/bin/bash]\n  namespace: team-a\n  roles: [{{kind: ClusterRole, name: view}}]\n",
        crate::controlplane::node::images::TOOLBOX_IMAGE
    );
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "team-a-tools", "namespace": "team-a",
                     "labels": {crate::ui::shortcuts::LABEL: "true", "app.kubernetes.io/part-of": "portico-demo"}},
        "data": {crate::ui::shortcuts::KEY: shortcut},
    }))
    .expect("a ConfigMap")
}

/// `edit` for alice in team-a and for bob in team-b.
pub fn role_bindings() -> Vec<RoleBinding> {
    [("alice", "team-a"), ("bob", "team-b")]
        .iter()
        .map(|(user, ns)| RoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("{user}-edit")),
                namespace: Some(ns.to_string()),
                labels: Some(labels(&[])),
                ..Default::default()
            },
            role_ref: cluster_role("edit"),
            subjects: Some(vec![subject("User", user)]),
        })
        .collect()
}

/// `admin` in every namespace for the group `portico-admins`.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    vec![ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(ADMIN_GROUP.into()),
            labels: Some(labels(&[])),
            ..Default::default()
        },
        role_ref: cluster_role("admin"),
        subjects: Some(vec![subject("Group", ADMIN_GROUP)]),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alice_and_bob_edit_their_own_team_only() {
        let rbs = role_bindings();
        let alice = rbs
            .iter()
            .find(|rb| rb.metadata.name.as_deref() == Some("alice-edit"))
            .unwrap();
        assert_eq!(alice.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(alice.role_ref.name, "edit");
        assert_eq!(alice.subjects.as_ref().unwrap()[0].name, "alice");
        let ns = namespaces();
        assert_eq!(ns[0].metadata.labels.as_ref().unwrap()["team"], "a");
        assert_eq!(cluster_role_bindings()[0].subjects.as_ref().unwrap()[0].kind, "Group");
    }
}

#[cfg(test)]
mod profile_tests {
    #[test]
    fn the_demo_shortcuts_are_valid() {
        let list: Vec<crate::ui::shortcuts::Shortcut> = serde_yaml_ng::from_str(super::SHORTCUTS_YAML).unwrap();
        assert!(list.iter().all(|s| s.check().is_ok()));
        let team = crate::ui::shortcuts::from_config_map(&super::team_shortcuts()).unwrap();
        assert!(team[0].unverified);
    }

    #[test]
    fn the_demo_profiles_are_valid() {
        let profiles: Vec<crate::config::SessionProfile> = serde_yaml_ng::from_str(super::PROFILES_YAML).unwrap();
        crate::config::profiles::check_all(&profiles).unwrap();
        let labels = [("team".to_string(), "b".to_string())].into();
        assert!(profiles[0].grants[0].covers("team-b", &labels));
        assert!(!profiles[0].grants[0].covers("default", &Default::default()));
    }
}
