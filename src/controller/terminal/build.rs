//! The objects a Terminal needs (pure): names, labels, the host-side pod,
//! attach service account, Role and RoleBinding and kubeconfig Secret, and
//! the target-side service account and role bindings.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{
            Container, EnvVar, Namespace, Pod, PodSpec, ResourceRequirements, Secret, SecretVolumeSource,
            SecurityContext, ServiceAccount, Volume, VolumeMount,
        },
        rbac::v1::{ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{Resource, ResourceExt, api::ObjectMeta};
use sha2::{Digest, Sha256};

use crate::{
    api::{
        common::{BindingKind, RoleKind},
        terminal::Terminal,
    },
    config::TerminalConfig,
    creator::Creator,
};

/// Annotation naming the owning Terminal as `namespace/name`.
pub use crate::api::keys::TERMINAL_OWNER_ANNOTATION as OWNER_ANNOTATION;
/// Label on every object made for a Terminal: the Terminal's UID.
pub use crate::api::keys::TERMINAL_UID_LABEL as UID_LABEL;
pub use crate::api::keys::{TOKEN_ACCOUNT_UID_ANNOTATION, TOKEN_EXPIRES_ANNOTATION, TOKEN_ISSUED_ANNOTATION};
/// Where the kubeconfig is mounted in the terminal container.
pub const KUBECONFIG_DIR: &str = "/var/run/portico";

/// The deterministic names of one Terminal's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Short id derived from the Terminal's UID.
    pub id: String,
    /// Pod `term-<id>`.
    pub pod: String,
    /// Host service account (and Role, RoleBinding) `term-attach-<id>`.
    pub attach: String,
    /// Target service account `term-access-<id>`.
    pub access: String,
    /// Host Secret with the kubeconfig, `term-<id>-kubeconfig`.
    pub kubeconfig_secret: String,
}

impl Names {
    /// Names for the Terminal with this UID.
    pub fn for_uid(uid: &str) -> Names {
        let id = hex::encode(&Sha256::digest(uid.as_bytes())[..5]);
        Names {
            pod: format!("term-{id}"),
            attach: format!("term-attach-{id}"),
            access: format!("term-access-{id}"),
            kubeconfig_secret: format!("term-{id}-kubeconfig"),
            id,
        }
    }

    /// The name of one target role binding.
    pub fn binding(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.access)
    }
}

/// Where one side (host or target) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The namespace.
    pub namespace: String,
    /// Whether Portico creates (and deletes) it.
    pub temporary: bool,
    /// Whether it is this cluster and the Terminal's own namespace (owner references work).
    pub same_as_terminal: bool,
}

/// Labels for every object of `t`.
pub fn labels(t: &Terminal) -> BTreeMap<String, String> {
    BTreeMap::from([
        (UID_LABEL.to_string(), t.uid().unwrap_or_default()),
        ("app.kubernetes.io/managed-by".to_string(), "portico".to_string()),
    ])
}

/// Whether labels carry `t`'s UID: the object was made for `t`.
pub fn made_for(labels: &BTreeMap<String, String>, t: &Terminal) -> bool {
    let uid = t.uid().unwrap_or_default();
    !uid.is_empty() && labels.get(UID_LABEL) == Some(&uid)
}

fn meta(t: &Terminal, name: &str, namespace: Option<&str>, side: Option<&Side>) -> ObjectMeta {
    let owner = t.controller_owner_ref(&()).map(|mut o: OwnerReference| {
        o.block_owner_deletion = None;
        o
    });
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(t)),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any()),
        )])),
        owner_references: side.filter(|s| s.same_as_terminal).and(owner).map(|o| vec![o]),
        ..Default::default()
    }
}

/// A temporary namespace.
pub fn namespace(t: &Terminal, name: &str) -> Namespace {
    Namespace {
        metadata: meta(t, name, None, None),
        ..Default::default()
    }
}

/// A service account that mounts no token by itself.
pub fn service_account(t: &Terminal, name: &str, side: &Side) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(t, name, Some(&side.namespace), Some(side)),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

fn rule(resource: &str, verbs: &[&str], name: &str) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.to_string()]),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        resource_names: Some(vec![name.to_string()]),
        non_resource_urls: None,
    }
}

/// The Role that allows attaching to this one pod and minting tokens for the attach service account.
pub fn attach_role(t: &Terminal, n: &Names, host: &Side) -> Role {
    Role {
        metadata: meta(t, &n.attach, Some(&host.namespace), Some(host)),
        rules: Some(vec![
            rule("pods/attach", &["get", "create"], &n.pod),
            rule("pods", &["get", "watch"], &n.pod),
            rule("serviceaccounts/token", &["create"], &n.attach),
        ]),
    }
}

/// Binds the attach Role to the attach service account and to the creator (the user, not their groups).
pub fn attach_role_binding(t: &Terminal, n: &Names, host: &Side, creator: &Creator) -> RoleBinding {
    RoleBinding {
        metadata: meta(t, &n.attach, Some(&host.namespace), Some(host)),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: n.attach.clone(),
        },
        subjects: Some(vec![
            Subject {
                kind: "ServiceAccount".into(),
                name: n.attach.clone(),
                namespace: Some(host.namespace.clone()),
                api_group: None,
            },
            Subject {
                kind: "User".into(),
                name: creator.user.clone(),
                namespace: None,
                api_group: Some("rbac.authorization.k8s.io".into()),
            },
        ]),
    }
}

/// Where the access service account lives: the operator's access namespace
/// of the target cluster, which no user reaches (so nobody who edits the
/// target namespace can impersonate it or mint its tokens).
pub fn access_side(t: &Terminal, target_is_local: bool, access_namespace: &str) -> Side {
    Side {
        namespace: access_namespace.to_string(),
        temporary: false,
        same_as_terminal: target_is_local && t.namespace().as_deref() == Some(access_namespace),
    }
}

/// The access namespace itself, marked as the operator's (never deleted by it).
pub fn access_namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "portico".to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The target-side bindings: RoleBindings in the target namespace and
/// ClusterRoleBindings, for the access service account in `access`.
pub fn target_bindings(
    t: &Terminal,
    n: &Names,
    target: &Side,
    access: &Side,
) -> (Vec<RoleBinding>, Vec<ClusterRoleBinding>) {
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: n.access.clone(),
        namespace: Some(access.namespace.clone()),
        api_group: None,
    };
    let (mut rbs, mut crbs) = (vec![], vec![]);
    for b in &t.spec.target.role_bindings {
        let role_ref = RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: match b.role_ref.kind {
                RoleKind::Role => "Role".into(),
                RoleKind::ClusterRole => "ClusterRole".into(),
            },
            name: b.role_ref.name.clone(),
        };
        let name = n.binding(&b.name_suffix);
        match b.binding_kind {
            BindingKind::RoleBinding => rbs.push(RoleBinding {
                metadata: meta(t, &name, Some(&target.namespace), Some(target)),
                role_ref,
                subjects: Some(vec![subject.clone()]),
            }),
            BindingKind::ClusterRoleBinding => crbs.push(ClusterRoleBinding {
                metadata: meta(t, &name, None, None),
                role_ref,
                subjects: Some(vec![subject.clone()]),
            }),
        }
    }
    (rbs, crbs)
}

/// The token in a kubeconfig Secret: when it was issued and expires, and
/// the UID of the service account it was issued for.
pub struct TokenMarks<'a> {
    /// RFC 3339.
    pub issued: &'a str,
    /// RFC 3339.
    pub expires: &'a str,
    /// The access service account's UID.
    pub account_uid: Option<&'a str>,
}

/// The host Secret holding the kubeconfig, annotated with its token's marks.
pub fn kubeconfig_secret(t: &Terminal, n: &Names, host: &Side, kubeconfig: &str, token: &TokenMarks) -> Secret {
    let mut m = meta(t, &n.kubeconfig_secret, Some(&host.namespace), Some(host));
    let a = m.annotations.get_or_insert_with(Default::default);
    a.insert(TOKEN_ISSUED_ANNOTATION.into(), token.issued.into());
    a.insert(TOKEN_EXPIRES_ANNOTATION.into(), token.expires.into());
    if let Some(uid) = token.account_uid {
        a.insert(TOKEN_ACCOUNT_UID_ANNOTATION.into(), uid.into());
    }
    Secret {
        metadata: m,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            ByteString(kubeconfig.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

/// Whether a token issued for the account with UID `issued_for` (the
/// kubeconfig Secret's [`TOKEN_ACCOUNT_UID_ANNOTATION`]) counts for the access
/// service account as it is now, `account_uid` (pure): one made again since
/// has another UID. An unknown UID on either side (the API server gave none;
/// a Secret written before the UID was recorded) does not count against it,
/// so an upgrade does not issue every token again.
pub fn token_for_account(issued_for: Option<&str>, account_uid: Option<&str>) -> bool {
    match (account_uid, issued_for) {
        (Some(now), Some(then)) => now == then,
        _ => true,
    }
}

/// The terminal pod: stdin and tty, the kubeconfig mounted, no service-account token.
pub fn pod(t: &Terminal, n: &Names, host: &Side, cfg: &TerminalConfig) -> Pod {
    let p = &t.spec.host.pod;
    let mut m = meta(t, &n.pod, Some(&host.namespace), Some(host));
    let mut pod_labels = p.labels.clone().unwrap_or_default();
    pod_labels.extend(m.labels.take().unwrap_or_default());
    m.labels = Some(pod_labels);
    let resources = match &p.resources {
        Some(r) => ResourceRequirements {
            requests: r.requests.clone(),
            limits: r.limits.clone(),
            ..Default::default()
        },
        None => ResourceRequirements {
            requests: Some(cfg.default_resources.requests.clone()).filter(|m| !m.is_empty()),
            limits: Some(cfg.default_resources.limits.clone()).filter(|m| !m.is_empty()),
            ..Default::default()
        },
    };
    let mut env: Vec<EnvVar> = p
        .env
        .iter()
        .flatten()
        .map(|e| EnvVar {
            name: e.name.clone(),
            value: Some(e.value.clone()),
            value_from: None,
        })
        .collect();
    env.push(EnvVar {
        name: "KUBECONFIG".into(),
        value: Some(format!("{KUBECONFIG_DIR}/kubeconfig")),
        value_from: None,
    });
    let privileged = p.privileged == Some(true);
    Pod {
        metadata: m,
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "terminal".into(),
                image: Some(p.image.clone()),
                command: p.command.clone(),
                args: p.args.clone(),
                env: Some(env),
                stdin: Some(true),
                stdin_once: Some(false),
                tty: Some(true),
                resources: Some(resources),
                volume_mounts: Some(vec![VolumeMount {
                    name: "kubeconfig".into(),
                    mount_path: KUBECONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                security_context: Some(SecurityContext {
                    privileged: Some(privileged),
                    allow_privilege_escalation: Some(privileged),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(vec![Volume {
                name: "kubeconfig".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(n.kubeconfig_secret.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            service_account_name: Some(n.attach.clone()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            host_pid: p.host_pid,
            host_network: p.host_network,
            node_selector: p.node_selector.clone(),
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(5),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
