//! What starts a reconcile of a Portico object (pure): a change to what the
//! reconcile acts on — the spec (its generation), the annotations (the
//! creator, heartbeats, the temporary namespace), the finalizers, or the
//! start of deletion. The operator's own status writes change none of
//! these, so they do not start another pass that would re-apply every child.

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Resource;

/// The hash of what a reconcile acts on; a kube-runtime predicate.
pub fn acted_on<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.annotations.hash(&mut h);
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
}
