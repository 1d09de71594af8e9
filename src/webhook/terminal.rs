//! The Terminal's admission checks that need API calls: the kubeconfig
//! Secrets it names, the host namespace, and the target grants, in each
//! cluster concerned (see [`crate::access`] for the rules).

use super::Denial;
use crate::{
    access::{Checker, authorize_target, cluster_name, require, resource},
    api::Terminal,
    clusters::Clusters,
    creator::Creator,
};

/// All checks for a new Terminal in `namespace`, with `temporary` the
/// generated temporary namespace name. Returns warnings for clusters that
/// cannot be reached now (the controller checks those before granting).
pub async fn authorize_terminal(
    clusters: &Clusters,
    namespace: &str,
    creator: &Creator,
    terminal: &Terminal,
    temporary: Option<&str>,
) -> Result<Vec<String>, Denial> {
    let cache = clusters.access_cache();
    let local = Checker {
        client: &clusters.local().client,
        cluster: "this cluster",
        cache,
    };
    let spec = &terminal.spec;
    for (field, cluster) in [("host", &spec.host.cluster), ("target", &spec.target.cluster)] {
        if let Some(c) = cluster {
            let name = &c.kubeconfig_secret_ref.name;
            let why =
                format!(" (the Secret named in spec.{field}.cluster.kubeconfigSecretRef, in namespace {namespace})");
            require(&local, creator, resource(namespace, "get", "", "secrets", name), &why).await?;
        }
    }
    let mut warnings = vec![];
    match clusters.get(namespace, spec.host.cluster.as_ref()).await {
        Ok(host) => {
            let name = cluster_name(&host.remote);
            let c = Checker {
                client: &host.client,
                cluster: &name,
                cache,
            };
            let (access, why) = match &spec.host.namespace {
                Some(ns) => (
                    resource(ns, "create", "", "pods", ""),
                    format!(" in namespace {ns}, where the terminal pod would run"),
                ),
                None => (
                    resource("", "create", "", "namespaces", ""),
                    " (spec.host.temporaryNamespace creates one)".to_string(),
                ),
            };
            require(&c, creator, access, &why).await?;
        }
        Err(e) => warnings.push(format!(
            "host cluster not reachable, the operator checks permissions there later: {e}"
        )),
    }
    match clusters.get(namespace, spec.target.cluster.as_ref()).await {
        Ok(target) => {
            let name = cluster_name(&target.remote);
            authorize_target(
                &Checker {
                    client: &target.client,
                    cluster: &name,
                    cache,
                },
                creator,
                terminal,
                temporary,
            )
            .await?
        }
        Err(e) => warnings.push(format!(
            "target cluster not reachable, the operator checks permissions there before granting: {e}"
        )),
    }
    Ok(warnings)
}
