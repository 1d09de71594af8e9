//! The objects a SessionClaim needs (pure): the service account, the
//! kubeconfig Secret, the Role and RoleBinding that let only the creator read
//! that Secret, and the RoleBindings of the profile's grants.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{Secret, ServiceAccount},
        rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
};
use kube::{Resource, ResourceExt, api::ObjectMeta};
use sha2::{Digest, Sha256};

use crate::{
    api::{SessionClaim, common::RoleKind},
    creator::Creator,
    tokens::{EXPIRES_ANNOTATION, ISSUED_ANNOTATION},
};

/// Annotation naming the owning SessionClaim as `namespace/name`.
pub use crate::api::keys::SESSION_OWNER_ANNOTATION as OWNER_ANNOTATION;
/// Label on every object made for a session: the SessionClaim's UID.
pub use crate::api::keys::SESSION_UID_LABEL as UID_LABEL;

/// The deterministic names of one session's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Service account `sess-<id>`.
    pub service_account: String,
    /// Secret `sess-<id>-kubeconfig`.
    pub secret: String,
    /// Role and RoleBinding `sess-<id>-reader`.
    pub reader: String,
}

impl Names {
    /// Names for the claim with this UID.
    pub fn for_uid(uid: &str) -> Names {
        let id = hex::encode(&Sha256::digest(uid.as_bytes())[..5]);
        Names {
            service_account: format!("sess-{id}"),
            secret: format!("sess-{id}-kubeconfig"),
            reader: format!("sess-{id}-reader"),
        }
    }

    /// The RoleBinding for a grant of `kind`/`role`: stable whatever the grant's position.
    pub fn grant(&self, kind: RoleKind, role: &str) -> String {
        let k = match kind {
            RoleKind::Role => "role",
            RoleKind::ClusterRole => "clusterrole",
        };
        let safe: String = role
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("{}-{k}-{}", self.service_account, safe.to_lowercase())
    }
}

fn meta(c: &SessionClaim, name: &str, namespace: &str) -> ObjectMeta {
    let own_ns = c.namespace().unwrap_or_default();
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([
            (UID_LABEL.to_string(), c.uid().unwrap_or_default()),
            ("app.kubernetes.io/managed-by".to_string(), "portico".to_string()),
        ])),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_string(),
            format!("{own_ns}/{}", c.name_any()),
        )])),
        owner_references: (namespace == own_ns)
            .then(|| c.controller_owner_ref(&()))
            .flatten()
            .map(|mut o| {
                o.block_owner_deletion = None;
                vec![o]
            }),
        ..Default::default()
    }
}

/// The session's service account, in the claim's namespace.
pub fn service_account(c: &SessionClaim, n: &Names) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(c, &n.service_account, &c.namespace().unwrap_or_default()),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// The kubeconfig Secret; `kubeconfig` is `None` until a token is issued
/// (the token is bound to this Secret, so it must exist first).
pub fn secret(c: &SessionClaim, n: &Names, kubeconfig: Option<(&str, &str, &str)>) -> Secret {
    let mut m = meta(c, &n.secret, &c.namespace().unwrap_or_default());
    let data = kubeconfig.map(|(text, issued, expires)| {
        let a = m.annotations.get_or_insert_with(Default::default);
        a.insert(ISSUED_ANNOTATION.into(), issued.into());
        a.insert(EXPIRES_ANNOTATION.into(), expires.into());
        BTreeMap::from([("kubeconfig".to_string(), ByteString(text.as_bytes().to_vec()))])
    });
    Secret {
        metadata: m,
        type_: Some("Opaque".into()),
        data,
        ..Default::default()
    }
}

/// A Role allowing `get` on the kubeconfig Secret only.
pub fn reader_role(c: &SessionClaim, n: &Names) -> Role {
    Role {
        metadata: meta(c, &n.reader, &c.namespace().unwrap_or_default()),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["get".into()],
            resource_names: Some(vec![n.secret.clone()]),
            non_resource_urls: None,
        }]),
    }
}

/// Binds the reader Role to the creator (the user, not their groups).
pub fn reader_binding(c: &SessionClaim, n: &Names, creator: &Creator) -> RoleBinding {
    RoleBinding {
        metadata: meta(c, &n.reader, &c.namespace().unwrap_or_default()),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: n.reader.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: creator.user.clone(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]),
    }
}

/// One grant's RoleBinding in `namespace`, for the session's service account.
pub fn grant_binding(c: &SessionClaim, n: &Names, namespace: &str, kind: RoleKind, role: &str) -> RoleBinding {
    let kind_name = match kind {
        RoleKind::Role => "Role",
        RoleKind::ClusterRole => "ClusterRole",
    };
    RoleBinding {
        metadata: meta(c, &n.grant(kind, role), namespace),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: kind_name.into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: n.service_account.clone(),
            namespace: c.namespace(),
            api_group: None,
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> SessionClaim {
        serde_yaml_ng::from_str(
            "apiVersion: portico.dev/v1alpha1\nkind: SessionClaim\nmetadata: {name: s, namespace: team-a, uid: u-1}\nspec: {profile: developer}\n",
        )
        .unwrap()
    }

    #[test]
    fn only_the_creator_may_read_only_the_kubeconfig() {
        let c = claim();
        let n = Names::for_uid("u-1");
        let role = reader_role(&c, &n);
        let rule = &role.rules.unwrap()[0];
        assert_eq!(rule.verbs, ["get"]);
        assert_eq!(rule.resource_names.as_ref().unwrap(), std::slice::from_ref(&n.secret));
        let creator = Creator {
            user: "alice".into(),
            groups: vec!["developers".into()],
        };
        let rb = reader_binding(&c, &n, &creator);
        let s = rb.subjects.unwrap();
        assert_eq!((s.len(), s[0].kind.as_str(), s[0].name.as_str()), (1, "User", "alice"));
    }

    #[test]
    fn grant_bindings_are_named_by_role_and_owned_only_in_the_claims_namespace() {
        let c = claim();
        let n = Names::for_uid("u-1");
        assert_eq!(
            n.grant(RoleKind::ClusterRole, "system:aggregate-to-edit"),
            format!("{}-clusterrole-system-aggregate-to-edit", n.service_account)
        );
        let here = grant_binding(&c, &n, "team-a", RoleKind::ClusterRole, "edit");
        let there = grant_binding(&c, &n, "team-b", RoleKind::ClusterRole, "edit");
        assert!(here.metadata.owner_references.is_some());
        assert!(
            there.metadata.owner_references.is_none(),
            "cross-namespace: finalizer-managed"
        );
        assert_eq!(there.subjects.unwrap()[0].namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn the_secret_records_token_times_once_issued() {
        let c = claim();
        let n = Names::for_uid("u-1");
        assert!(secret(&c, &n, None).data.is_none());
        let s = secret(&c, &n, Some(("kc", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")));
        assert_eq!(
            s.metadata.annotations.unwrap()[EXPIRES_ANNOTATION],
            "2026-01-01T01:00:00Z"
        );
    }
}
