//! Kubeconfig files for the local control plane (pure: builds the structure).

use kube::config::{AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};

use crate::pki::CertPair;

/// A user entry: a name and the client certificate it authenticates with.
pub struct User<'a> {
    /// The context and user name in the file.
    pub name: &'a str,
    /// Client certificate and key.
    pub cert: &'a CertPair,
    /// The context's default namespace.
    pub namespace: Option<&'a str>,
}

/// A kubeconfig for `server` (trusting `ca_pem`) with one context per user;
/// the first user's context is current.
pub fn build(cluster_name: &str, server: &str, ca_pem: &str, users: &[User<'_>]) -> Kubeconfig {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: cluster_name.to_string(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority_data: Some(b64(ca_pem)),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: users
            .iter()
            .map(|u| NamedAuthInfo {
                name: u.name.to_string(),
                auth_info: Some(AuthInfo {
                    client_certificate_data: Some(b64(&u.cert.cert_pem)),
                    client_key_data: Some(b64(&u.cert.key_pem).into()),
                    ..Default::default()
                }),
                other: Default::default(),
            })
            .collect(),
        contexts: users
            .iter()
            .map(|u| NamedContext {
                name: u.name.to_string(),
                context: Some(Context {
                    cluster: cluster_name.to_string(),
                    user: Some(u.name.to_string()),
                    namespace: u.namespace.map(str::to_string),
                    ..Default::default()
                }),
                other: Default::default(),
            })
            .collect(),
        current_context: users.first().map(|u| u.name.to_string()),
        ..Default::default()
    }
}

/// The kubeconfig as YAML text.
pub fn to_yaml(kc: &Kubeconfig) -> String {
    serde_yaml_ng::to_string(kc).expect("a kubeconfig serializes to YAML")
}
