//! What the operator's watch caches keep of an object (pure): everything a
//! pass reads, not the bookkeeping none reads. With thousands of objects
//! per kind, `managedFields` alone can be a third of what a cache holds.

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops `managedFields` and kubectl's last-applied copy.
pub fn lean<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A terminal pod as its pass reads it from the cache: metadata and status
/// (a pass reads the spec only from the pod it applies).
pub fn lean_pod(pod: &mut Pod) {
    lean(pod);
    pod.spec = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_keep_what_passes_read_and_drop_the_bookkeeping() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"a": "1"},
                         "annotations": {"portico.dev/terminal": "ns/t", LAST_APPLIED: "{}"},
                         "managedFields": [{"manager": "portico", "operation": "Apply"}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        lean_pod(&mut pod);
        assert_eq!(pod.metadata.managed_fields, None);
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations.len(), 1, "only kubectl's copy goes");
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["a"], "1");
        assert!(pod.spec.is_none());
        assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    }
}
