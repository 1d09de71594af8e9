//! ClusterRoles that aggregate Portico permissions into the built-in `admin`,
//! `edit` and `view` roles, so whoever may edit a namespace may use Portico
//! there. Installed with the CRDs.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::ObjectMeta;

/// The plural resource names of the three kinds.
pub const RESOURCES: [&str; 3] = ["terminals", "deployments", "sessionclaims"];

/// The custom verb that lets a user change or end Terminals and SessionClaims
/// other users created (granted to namespace admins through `admin`). Without
/// it only the creator may change the spec of, or delete, their object.
pub const OVERRIDE_VERB: &str = "override";

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The aggregated ClusterRoles, `portico-aggregate-to-{admin,edit,view}`.
pub fn aggregated_cluster_roles() -> Vec<ClusterRole> {
    let status: Vec<String> = RESOURCES.iter().map(|r| format!("{r}/status")).collect();
    let all: Vec<String> = RESOURCES.iter().map(|r| r.to_string()).collect();
    let rule = |resources: &[String], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![super::GROUP.to_string()]),
        resources: Some(resources.to_vec()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    };
    let read_write: Vec<&str> = READ.iter().chain(WRITE.iter()).copied().collect();
    let view = vec![rule(&all, &READ), rule(&status, &["get"])];
    let edit = vec![rule(&all, &read_write), rule(&status, &["get"])];
    let mut admin = edit.clone();
    admin.push(rule(&all, &[OVERRIDE_VERB]));
    [("view", view), ("edit", edit), ("admin", admin)]
        .into_iter()
        .map(|(to, rules)| ClusterRole {
            metadata: ObjectMeta {
                name: Some(format!("portico-aggregate-to-{to}")),
                labels: Some(BTreeMap::from([
                    (
                        format!("rbac.authorization.k8s.io/aggregate-to-{to}"),
                        "true".to_string(),
                    ),
                    ("app.kubernetes.io/part-of".to_string(), "portico".to_string()),
                ])),
                ..Default::default()
            },
            rules: Some(rules),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verbs(role: &ClusterRole, resource: &str) -> Vec<String> {
        role.rules
            .iter()
            .flatten()
            .filter(|r| r.resources.iter().flatten().any(|x| x == resource))
            .flat_map(|r| r.verbs.clone())
            .collect()
    }

    #[test]
    fn view_reads_only_and_edit_writes_but_never_status() {
        let roles = aggregated_cluster_roles();
        let by_name = |n: &str| roles.iter().find(|r| r.metadata.name.as_deref() == Some(n)).unwrap();
        let view = by_name("portico-aggregate-to-view");
        let edit = by_name("portico-aggregate-to-edit");
        let admin = by_name("portico-aggregate-to-admin");
        for res in RESOURCES {
            assert_eq!(verbs(view, res), ["get", "list", "watch"]);
            assert!(verbs(edit, res).contains(&"create".to_string()));
            assert!(!verbs(edit, res).contains(&OVERRIDE_VERB.to_string()));
            let mut admin_verbs = verbs(edit, res);
            admin_verbs.push(OVERRIDE_VERB.to_string());
            assert_eq!(verbs(admin, res), admin_verbs, "admins may also act on others' objects");
            // status is the operator's to write
            assert_eq!(verbs(edit, &format!("{res}/status")), ["get"]);
        }
        assert_eq!(
            admin.metadata.labels.as_ref().unwrap()["rbac.authorization.k8s.io/aggregate-to-admin"],
            "true"
        );
    }
}
