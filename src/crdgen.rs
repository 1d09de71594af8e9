//! The generated install manifests: the three CRDs and the aggregated
//! ClusterRoles, as YAML files named the way `crds/` holds them.

use kube::CustomResourceExt;
use serde::Serialize;

use crate::api::{Deployment, SessionClaim, Terminal, rbac};

/// One generated file: its name in `crds/` and its YAML text.
pub struct Manifest {
    /// File name, for example `portico.dev_terminals.yaml`.
    pub file_name: String,
    /// YAML text, starting with `---`.
    pub yaml: String,
}

fn to_yaml<T: Serialize>(value: &T) -> String {
    let body = serde_yaml_ng::to_string(value).expect("generated manifests serialize to YAML");
    format!("---\n{body}")
}

/// All generated manifests, CRDs first, in a stable order.
pub fn manifests() -> Vec<Manifest> {
    let mut out: Vec<Manifest> = [Terminal::crd(), Deployment::crd(), SessionClaim::crd()]
        .iter()
        .map(|crd| Manifest {
            file_name: format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or_default()),
            yaml: to_yaml(crd),
        })
        .collect();
    let roles = rbac::aggregated_cluster_roles();
    out.push(Manifest {
        file_name: "portico-aggregated-clusterroles.yaml".to_string(),
        yaml: roles.iter().map(to_yaml).collect(),
    });
    out
}

/// Every manifest in one multi-document YAML stream.
pub fn all_yaml() -> String {
    manifests().into_iter().map(|m| m.yaml).collect()
}

/// Writes every manifest into `dir` (created if missing), one file each.
pub fn write_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for m in manifests() {
        std::fs::write(dir.join(&m.file_name), m.yaml)?;
    }
    Ok(())
}
