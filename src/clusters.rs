//! Clients for the clusters a Terminal names: this cluster, or another one
//! through a kubeconfig in a Secret. Clients are cached and rebuilt when the
//! Secret changes (by resourceVersion).

use std::{collections::HashMap, sync::Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt, config::KubeConfigOptions};

use crate::api::ClusterRef;

/// A cluster that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The Secret does not exist.
    #[error("kubeconfig Secret {namespace}/{name} does not exist")]
    SecretNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The Secret lacks the key.
    #[error("kubeconfig Secret {namespace}/{name} has no key {key:?}")]
    KeyMissing {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// The kubeconfig cannot be used.
    #[error("kubeconfig in Secret {namespace}/{name} key {key:?} is not usable: {reason}")]
    BadKubeconfig {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
    /// Reading the Secret failed.
    #[error("reading kubeconfig Secret {namespace}/{name}: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl ClusterError {
    /// Whether retrying cannot help until someone fixes the Secret.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ClusterError::Api { .. })
    }
}

/// A client and what the controllers need to know about its cluster.
#[derive(Clone)]
pub struct ClusterClient {
    /// The client, as the operator.
    pub client: Client,
    /// The API server URL to write into kubeconfigs for this cluster.
    pub server: String,
    /// PEM CA bundle for that URL, if any.
    pub ca_pem: Option<String>,
    /// `None` for this cluster; the Secret's `namespace/name` otherwise.
    pub remote: Option<String>,
}

/// Namespace, name and key of a kubeconfig Secret.
type SecretKey = (String, String, String);

/// This cluster's client plus a cache of remote ones.
pub struct Clusters {
    local: ClusterClient,
    access_cache: crate::access::AccessCache,
    cache: Mutex<HashMap<SecretKey, (String, ClusterClient)>>,
}

impl Clusters {
    /// `local` is this cluster, `server`/`ca_pem` how pods reach its API server.
    pub fn new(local: Client, server: String, ca_pem: Option<String>) -> Self {
        Clusters {
            local: ClusterClient {
                client: local,
                server,
                ca_pem,
                remote: None,
            },
            cache: Mutex::new(HashMap::new()),
            access_cache: Default::default(),
        }
    }

    /// Recently allowed access reviews, shared by the webhook and the controllers.
    pub fn access_cache(&self) -> &crate::access::AccessCache {
        &self.access_cache
    }

    /// This cluster.
    pub fn local(&self) -> &ClusterClient {
        &self.local
    }

    /// The cluster `cluster` names, from a Secret in `namespace`; this cluster for `None`.
    pub async fn get(&self, namespace: &str, cluster: Option<&ClusterRef>) -> Result<ClusterClient, ClusterError> {
        let Some(cluster) = cluster else {
            return Ok(self.local.clone());
        };
        let r = &cluster.kubeconfig_secret_ref;
        let (ns, name, key) = (namespace.to_string(), r.name.clone(), r.key.clone());
        let secret = Api::<Secret>::namespaced(self.local.client.clone(), namespace)
            .get_opt(&name)
            .await
            .map_err(|source| ClusterError::Api {
                namespace: ns.clone(),
                name: name.clone(),
                source,
            })?
            .ok_or_else(|| ClusterError::SecretNotFound {
                namespace: ns.clone(),
                name: name.clone(),
            })?;
        let version = secret.resource_version().unwrap_or_default();
        let cache_key = (ns.clone(), name.clone(), key.clone());
        if let Some((v, c)) = self.cache.lock().unwrap().get(&cache_key)
            && *v == version
        {
            return Ok(c.clone());
        }
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&key))
            .ok_or_else(|| ClusterError::KeyMissing {
                namespace: ns.clone(),
                name: name.clone(),
                key: key.clone(),
            })?;
        let bad = |reason: String| ClusterError::BadKubeconfig {
            namespace: ns.clone(),
            name: name.clone(),
            key: key.clone(),
            reason,
        };
        let text = String::from_utf8(bytes.0.clone()).map_err(|e| bad(e.to_string()))?;
        let kc = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| bad(kubeconfig_error(&e)))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| bad(e.to_string()))?;
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let ca_pem = config.root_cert.as_ref().map(|certs| {
            certs
                .iter()
                .map(|der| pem_encode("CERTIFICATE", der))
                .collect::<Vec<_>>()
                .join("")
        });
        let client = Client::try_from(config).map_err(|e| bad(e.to_string()))?;
        let cc = ClusterClient {
            client,
            server,
            ca_pem,
            remote: Some(format!("{ns}/{name}")),
        };
        self.cache.lock().unwrap().insert(cache_key, (version, cc.clone()));
        Ok(cc)
    }
}

/// PEM-encodes DER bytes.
/// What is wrong with a kubeconfig, in words that never quote it: the
/// YAML parser's own message shows the lines around the fault, which may
/// hold a token or key.
pub fn kubeconfig_error(e: &kube::config::KubeconfigError) -> String {
    match e {
        kube::config::KubeconfigError::Parse(_) => "it is not a kubeconfig (YAML that does not parse as one; \
                                                    the parser's message is not shown, as it may quote credentials)"
            .into(),
        other => other.to_string(),
    }
}

pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubeconfig_that_does_not_parse_is_named_without_quoting_it() {
        let e = kube::config::Kubeconfig::from_yaml("users:\n- name: x\n  user: {token: sEcReT-t0ken\n").unwrap_err();
        let said = kubeconfig_error(&e);
        assert!(!said.contains("sEcReT"), "{said}");
        assert!(said.contains("not a kubeconfig"), "{said}");
    }
}
