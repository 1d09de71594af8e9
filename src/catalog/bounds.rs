//! What a template's renders may contain (pure): the kinds, and the
//! namespaces besides the Deployment's own. Required for `applyAs: operator`
//! templates, whose objects are applied with the operator's rights, so a
//! template (or a parameter) can never make the operator create anything
//! the admin who wrote it did not list.

use kube::{ResourceExt, api::DynamicObject};
use serde::{Deserialize, Serialize};

/// The bounds of a template's renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderBounds {
    /// Kinds a render may hold: `Kind` for the core group (`ConfigMap`), else
    /// `group/Kind` (`apps/Deployment`, `rbac.authorization.k8s.io/Role`).
    pub kinds: Vec<String>,
    /// Namespaces objects may be in besides the Deployment's own.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// How bounds name an object's kind: `Kind` or `group/Kind`.
pub fn kind_key(obj: &DynamicObject) -> String {
    let types = obj.types.clone().unwrap_or_default();
    match types.api_version.split_once('/') {
        Some((group, _)) => format!("{group}/{}", types.kind),
        None => types.kind,
    }
}

impl RenderBounds {
    /// Checks a template's own declaration.
    pub fn check(&self) -> Result<(), String> {
        if self.kinds.is_empty() {
            return Err("bounds.kinds is empty; list the kinds its renders may create".into());
        }
        Ok(())
    }

    /// Refuses a render holding anything outside the bounds, naming the first such object.
    pub fn admit(&self, objects: &[DynamicObject], own_namespace: &str) -> Result<(), String> {
        for obj in objects {
            let kind = kind_key(obj);
            if !self.kinds.contains(&kind) {
                return Err(format!(
                    "the render holds {kind} {}, a kind the template's bounds do not list (bounds.kinds: {})",
                    obj.name_any(),
                    self.kinds.join(", ")
                ));
            }
            if let Some(ns) = obj.namespace()
                && ns != own_namespace
                && !self.namespaces.contains(&ns)
            {
                return Err(format!(
                    "the render puts {kind} {} in namespace {ns}, outside the template's bounds (the Deployment's \
                     own namespace{})",
                    obj.name_any(),
                    if self.namespaces.is_empty() {
                        String::new()
                    } else {
                        format!(" and bounds.namespaces: {}", self.namespaces.join(", "))
                    }
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(api_version: &str, kind: &str, ns: &str) -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": api_version, "kind": kind,
                                      "metadata": {"name": "x", "namespace": ns}}))
        .unwrap()
    }

    fn bounds() -> RenderBounds {
        RenderBounds {
            kinds: vec!["ConfigMap".into(), "apps/Deployment".into()],
            namespaces: vec!["monitoring".into()],
        }
    }

    #[test]
    fn listed_kinds_in_allowed_namespaces_pass() {
        let objs = [
            obj("v1", "ConfigMap", "team-a"),
            obj("apps/v1", "Deployment", "monitoring"),
        ];
        assert_eq!(bounds().admit(&objs, "team-a"), Ok(()));
    }

    #[test]
    fn other_kinds_and_namespaces_are_refused_by_name() {
        let e = bounds().admit(&[obj("v1", "Secret", "team-a")], "team-a").unwrap_err();
        assert!(
            e.contains("the render holds Secret x") && e.contains("ConfigMap, apps/Deployment"),
            "{e}"
        );
        let e = bounds()
            .admit(
                &[obj("rbac.authorization.k8s.io/v1", "ClusterRole", "team-a")],
                "team-a",
            )
            .unwrap_err();
        assert!(e.contains("rbac.authorization.k8s.io/ClusterRole"), "{e}");
        let e = bounds()
            .admit(&[obj("v1", "ConfigMap", "kube-system")], "team-a")
            .unwrap_err();
        assert!(
            e.contains("in namespace kube-system, outside the template's bounds"),
            "{e}"
        );
        assert!(
            RenderBounds {
                kinds: vec![],
                namespaces: vec![]
            }
            .check()
            .is_err()
        );
    }
}
