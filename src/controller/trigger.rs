//! What starts a reconcile of a Portico object (pure): a change to what the
//! reconcile acts on — the spec (its generation), the annotations (the
//! creator, heartbeats, the temporary namespace), the finalizers, or the
//! start of deletion. The operator's own status writes change none of
//! these, so they do not start another pass that would re-apply every child.
//! A heartbeat starts a pass (the expiry moves) but is not among what the
//! children are built from ([`children_marks`]), so that pass writes none.

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Resource;

use crate::api::keys::LAST_HEARTBEAT_AT;

/// The hash of what a reconcile acts on; a kube-runtime predicate.
pub fn acted_on<K: Resource>(obj: &K) -> Option<u64> {
    marks(obj, |_| true)
}

/// The hash of what an object's children are built from: what
/// [`acted_on`] hashes except the last heartbeat, which moves only the
/// expiry in status (a token capped by the old expiry is renewed when due).
pub fn children_marks<K: Resource>(obj: &K) -> Option<u64> {
    marks(obj, |key| key != LAST_HEARTBEAT_AT)
}

fn marks<K: Resource>(obj: &K, annotation: impl Fn(&str) -> bool) -> Option<u64> {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    for (key, value) in meta.annotations.iter().flatten().filter(|(k, _)| annotation(k)) {
        (key, value).hash(&mut h);
    }
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> ConfigMap {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_and_resource_version_do_not_count_but_spec_annotations_finalizers_and_deletion_do() {
        let base = json!({"metadata": {"name": "t", "generation": 1, "resourceVersion": "5",
                                       "annotations": {"portico.dev/created-by": "{}"}}});
        let h = acted_on(&obj(base.clone()));
        let mut status_only = base.clone();
        status_only["metadata"]["resourceVersion"] = json!("6");
        status_only["data"] = json!({"status": "written by the operator"});
        assert_eq!(acted_on(&obj(status_only)), h);
        for change in [
            json!({"metadata": {"generation": 2}}),
            json!({"metadata": {"annotations": {"portico.dev/last-heartbeat-at": "now"}}}),
            json!({"metadata": {"finalizers": ["portico.dev/cleanup"]}}),
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        ] {
            let mut v = base.clone();
            json_patch::merge(&mut v, &change);
            assert_ne!(acted_on(&obj(v)), h, "{change}");
        }
    }

    #[test]
    fn a_heartbeat_starts_a_pass_but_changes_nothing_children_are_built_from() {
        let base = json!({"metadata": {"name": "t", "generation": 1,
                                       "annotations": {"portico.dev/created-by": "{}"}}});
        let mut beat = base.clone();
        json_patch::merge(
            &mut beat,
            &json!({"metadata": {"annotations": {"portico.dev/last-heartbeat-at": "2026-12-06T10:00:00Z"}}}),
        );
        assert_ne!(acted_on(&obj(beat.clone())), acted_on(&obj(base.clone())));
        assert_eq!(children_marks(&obj(beat)), children_marks(&obj(base.clone())));
        let mut other = base.clone();
        json_patch::merge(
            &mut other,
            &json!({"metadata": {"annotations": {"portico.dev/temporary-namespace": "term-x"}}}),
        );
        assert_ne!(children_marks(&obj(other)), children_marks(&obj(base)));
    }
}
