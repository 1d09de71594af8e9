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

/// Namespaces `team-a` and `team-b`, labelled `team=a` and `team=b`.
pub fn namespaces() -> Vec<Namespace> {
    ["a", "b"]
        .iter()
        .map(|t| Namespace {
            metadata: ObjectMeta {
                name: Some(format!("team-{t}")),
                labels: Some(labels(&[("team", t)])),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect()
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
