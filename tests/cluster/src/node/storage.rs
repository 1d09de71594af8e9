//! Dynamic provisioning for the node's pods: kube-controller-manager's
//! host-path provisioner (`--enable-hostpath-provisioner`, provisioner
//! `kubernetes.io/host-path`, made for single-node development clusters)
//! behind a default StorageClass, so a PersistentVolumeClaim without a class
//! (a StatefulSet's volumeClaimTemplate) gets a volume. Kubernetes makes each
//! volume at `/tmp/hostpath_pv/<uuid>`, a path it does not let us choose; the
//! node's janitor removes the volumes this cluster made (pure: the objects
//! and flags).

use k8s_openapi::api::storage::v1::StorageClass;

/// The default StorageClass on a cluster with a node.
pub const STORAGE_CLASS: &str = "local-hostpath";

/// kube-controller-manager's in-tree host-path provisioner.
pub const PROVISIONER: &str = "kubernetes.io/host-path";

/// Where the provisioner makes every volume (fixed in Kubernetes).
pub const VOLUME_DIR: &str = "/tmp/hostpath_pv";

/// kube-controller-manager flags for a cluster with a node.
pub const KCM_ARGS: &[&str] = &["--enable-hostpath-provisioner=true"];

/// The default StorageClass: volumes from the host-path provisioner, deleted with their claims.
pub fn storage_class() -> StorageClass {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            "labels": {"app.kubernetes.io/managed-by": "portico"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }))
    .expect("a StorageClass")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_is_the_default_and_uses_the_host_path_provisioner() {
        let sc = storage_class();
        assert_eq!(sc.provisioner, PROVISIONER);
        assert_eq!(
            sc.metadata.annotations.unwrap()["storageclass.kubernetes.io/is-default-class"],
            "true"
        );
        assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
        assert!(KCM_ARGS.contains(&"--enable-hostpath-provisioner=true"));
    }
}
