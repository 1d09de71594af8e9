//! Which grant RoleBindings a session needs, from the namespaces and the
//! session's bindings in the caches (pure): what to prune, what is in place,
//! and what to write.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::{core::v1::Namespace, rbac::v1::RoleBinding};
use kube::ResourceExt;

use super::build::{self, Names};
use crate::{api::SessionClaim, api::common::RoleKind, config::SessionProfile};

/// One grant in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub namespace: String,
    pub kind: RoleKind,
    pub role: String,
    /// Whether a binding of that name is there already (written by this
    /// session) but differs; it is written again without a new check.
    pub exists: bool,
}

/// What the grants of one session need.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Bindings (namespace, name) the profile no longer covers.
    pub prune: Vec<(String, String)>,
    /// Grants in place as built, as "role in namespace".
    pub in_place: Vec<String>,
    /// Grants to write.
    pub write: Vec<Wanted>,
}

/// Plans the grants of claim `c` under `profile`, given every namespace and
/// every binding labelled with a session UID.
pub fn plan(
    c: &SessionClaim,
    n: &Names,
    profile: &SessionProfile,
    namespaces: &[Arc<Namespace>],
    bindings: &[Arc<RoleBinding>],
) -> Plan {
    let uid = c.metadata.uid.as_deref().unwrap_or_default();
    let mut desired: BTreeMap<(String, String), (RoleKind, String)> = BTreeMap::new();
    for ns in namespaces.iter().filter(|ns| ns.metadata.deletion_timestamp.is_none()) {
        let name = ns.name_any();
        for g in &profile.grants {
            if g.covers(&name, ns.labels()) {
                desired.insert(
                    (name.clone(), n.grant(g.role.kind, &g.role.name)),
                    (g.role.kind, g.role.name.clone()),
                );
            }
        }
    }
    let existing: BTreeMap<(String, String), &RoleBinding> = bindings
        .iter()
        .filter(|rb| rb.labels().get(build::UID_LABEL).map(String::as_str) == Some(uid))
        .filter(|rb| rb.name_any() != n.reader)
        .map(|rb| ((rb.namespace().unwrap_or_default(), rb.name_any()), &**rb))
        .collect();
    let mut plan = Plan {
        prune: existing.keys().filter(|k| !desired.contains_key(*k)).cloned().collect(),
        ..Plan::default()
    };
    for ((ns, name), (kind, role)) in desired {
        let built = build::grant_binding(c, n, &ns, kind, &role);
        match existing.get(&(ns.clone(), name)) {
            Some(rb) if rb.role_ref == built.role_ref && rb.subjects == built.subjects => {
                plan.in_place.push(format!("{role} in {ns}"));
            }
            found => plan.write.push(Wanted {
                namespace: ns,
                kind,
                role,
                exists: found.is_some(),
            }),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> SessionClaim {
        serde_yaml_ng::from_str(
            "apiVersion: portico.dev/v1alpha1\nkind: SessionClaim\nmetadata: {name: s, namespace: team-a, uid: u-1}\nspec: {profile: developer}\n",
        )
        .unwrap()
    }

    fn profile() -> SessionProfile {
        serde_yaml_ng::from_str(
            "name: developer\nallowedGroups: ['*']\ngrants:\n  - namespaces: {selector: {matchLabels: {team: a}}}\n    role: {kind: ClusterRole, name: edit}\n  - namespaces: {names: [shared]}\n    role: {kind: ClusterRole, name: view}\n",
        )
        .unwrap()
    }

    fn ns(name: &str, team: Option<&str>) -> Namespace {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        if let Some(t) = team {
            ns.metadata.labels = Some([("team".to_string(), t.to_string())].into());
        }
        ns
    }

    #[test]
    fn missing_grants_are_written_matching_ones_kept_and_stale_ones_pruned() {
        let (c, n, p) = (claim(), Names::for_uid("u-1"), profile());
        let namespaces = [ns("team-a", Some("a")), ns("team-b", None), ns("shared", None)].map(Arc::new);
        let kept = build::grant_binding(&c, &n, "team-a", RoleKind::ClusterRole, "edit");
        let stale = build::grant_binding(&c, &n, "team-b", RoleKind::ClusterRole, "edit");
        let mut edited = build::grant_binding(&c, &n, "shared", RoleKind::ClusterRole, "view");
        edited.subjects = Some(vec![]);
        let mut other = build::grant_binding(&c, &n, "team-b", RoleKind::ClusterRole, "view");
        other.labels_mut().insert(build::UID_LABEL.into(), "u-2".into());
        let reader = build::reader_binding(
            &c,
            &n,
            &crate::creator::Creator {
                user: "alice".into(),
                groups: vec![],
            },
        );
        let plan = plan(
            &c,
            &n,
            &p,
            &namespaces,
            &[kept, stale, edited, other, reader].map(Arc::new),
        );
        assert_eq!(plan.in_place, vec!["edit in team-a".to_string()]);
        assert_eq!(
            plan.prune,
            vec![("team-b".to_string(), n.grant(RoleKind::ClusterRole, "edit"))]
        );
        assert_eq!(
            plan.write,
            vec![Wanted {
                namespace: "shared".into(),
                kind: RoleKind::ClusterRole,
                role: "view".into(),
                exists: true,
            }],
            "the edited binding is written again; another session's and the reader are not touched"
        );
    }

    #[test]
    fn a_namespace_being_deleted_gets_no_grant() {
        let (c, n, p) = (claim(), Names::for_uid("u-1"), profile());
        let mut going = ns("team-a", Some("a"));
        going.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        let plan = plan(&c, &n, &p, &[going, ns("shared", None)].map(Arc::new), &[]);
        assert_eq!(plan.write.len(), 1);
        assert_eq!(plan.write[0].namespace, "shared");
        assert!(!plan.write[0].exists);
    }
}
