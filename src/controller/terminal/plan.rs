//! What the apply step writes for a Terminal, built once (pure): the access
//! service account and its bindings in the target; the attach service
//! account, Role and RoleBinding and the pod in the host (the kubeconfig
//! Secret carries a token, so it is made when a token is issued). Its
//! digest — of every object exactly as it would be written, so a change to
//! the spec, to the admission-set annotations, to the operator's
//! configuration or to how the operator builds them changes it — is recorded in the
//! Terminal's status once applied. After a restart of the operator, a pass
//! that finds the same digest, every child in this cluster present and made
//! for this Terminal ([`super::present`]) and its token not due writes
//! nothing ([`unchanged`]).

use k8s_openapi::{
    api::{
        core::v1::{Namespace, Pod, Secret, ServiceAccount},
        rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
    },
    jiff::Timestamp,
};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::{
    build::{self, Names},
    children::Places,
    present::{Key, Present},
};
use crate::{api::Terminal, config::TerminalConfig, creator::Creator};

/// Every object of a Terminal's apply step but its kubeconfig Secret.
pub struct Plan {
    /// The access service account, in the target.
    pub access: ServiceAccount,
    /// Its RoleBindings in the target.
    pub bindings: Vec<RoleBinding>,
    /// Its ClusterRoleBindings in the target.
    pub cluster_bindings: Vec<ClusterRoleBinding>,
    /// The attach service account, in the host.
    pub attach: ServiceAccount,
    /// The Role that may attach to the pod, in the host.
    pub role: Role,
    /// Its binding to the attach service account and the creator.
    pub binding: RoleBinding,
    /// The terminal pod, in the host.
    pub pod: Pod,
}

impl Plan {
    /// The objects for `t` (pure).
    pub fn of(t: &Terminal, n: &Names, places: &Places<'_>, creator: &Creator, cfg: &TerminalConfig) -> Plan {
        let (bindings, cluster_bindings) = build::target_bindings(t, n, places.target, places.access);
        Plan {
            access: build::service_account(t, &n.access, places.access),
            bindings,
            cluster_bindings,
            attach: build::service_account(t, &n.attach, places.host),
            role: build::attach_role(t, n, places.host),
            binding: build::attach_role_binding(t, n, places.host, creator),
            pod: build::pod(t, n, places.host, cfg),
        }
    }

    /// The digest of every object as it would be written (`sha256:` and hex).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        let mut add = |v: serde_json::Result<Vec<u8>>| {
            let bytes = v.unwrap_or_default();
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        add(serde_json::to_vec(&self.access));
        self.bindings.iter().for_each(|b| add(serde_json::to_vec(b)));
        self.cluster_bindings.iter().for_each(|b| add(serde_json::to_vec(b)));
        add(serde_json::to_vec(&self.attach));
        add(serde_json::to_vec(&self.role));
        add(serde_json::to_vec(&self.binding));
        add(serde_json::to_vec(&self.pod));
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// The children the watches of this cluster see (pods aside), for a
    /// Terminal whose target and host are both this cluster: the temporary
    /// namespaces, both service accounts, the bindings, the Role and the
    /// kubeconfig Secret.
    pub fn children(&self, n: &Names, places: &Places<'_>) -> Vec<Key> {
        let mut keys: Vec<Key> = [places.target, places.host]
            .into_iter()
            .filter(|side| side.temporary)
            .map(|side| Key::of::<Namespace>(None, &side.namespace))
            .collect();
        keys.push(key(&self.access));
        keys.extend(self.bindings.iter().map(key));
        keys.extend(self.cluster_bindings.iter().map(key));
        keys.push(key(&self.attach));
        keys.push(key(&self.role));
        keys.push(key(&self.binding));
        keys.push(Key::of::<Secret>(Some(&places.host.namespace), &n.kubeconfig_secret));
        keys.dedup();
        keys
    }
}

fn key<K: Resource<DynamicType = ()>>(o: &K) -> Key {
    Key::of::<K>(o.meta().namespace.as_deref(), &o.name_any())
}

/// When the token is due, if the children applied for `recorded` (the
/// digest in the Terminal's status) need no write now (pure but for reading
/// `present`): the plan's digest is the same, every child in `children` is
/// present and labelled with `uid`, the kubeconfig Secret (`secret`) holds a
/// token not due at `now`, issued for the access service account as it is
/// (`access`). `None`: apply.
pub fn unchanged(
    recorded: Option<&str>,
    plan: &Plan,
    children: &[Key],
    (secret, access): (&Key, &Key),
    present: &Present,
    uid: &str,
    now: Timestamp,
) -> Option<Timestamp> {
    if recorded != Some(plan.digest().as_str()) {
        return None;
    }
    let mut seen = Vec::with_capacity(children.len());
    for k in children {
        let s = present.get(k)?;
        if s.owner_uid.as_deref() != Some(uid) {
            return None;
        }
        seen.push((k, s));
    }
    let of = |wanted: &Key| seen.iter().find(|(k, _)| *k == wanted).map(|(_, s)| s);
    let (secret, access) = (of(secret)?, of(access)?);
    let issued_for_it = match (&secret.account_uid, &access.uid) {
        (Some(then), Some(now)) => then == now,
        _ => true,
    };
    let renew_at = secret.renew_at?;
    (issued_for_it && renew_at > now).then_some(renew_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::terminal::build::Side;
    use kube::{core::PartialObjectMeta, runtime::watcher};
    use serde_json::json;

    fn terminal(image: &str) -> Terminal {
        serde_json::from_value(json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": "shell", "namespace": "team-a", "uid": "u-1"},
            "spec": {"host": {"namespace": "team-a", "pod": {"image": image}},
                     "target": {"namespace": "team-a", "roleBindings": [
                        {"nameSuffix": "edit", "bindingKind": "RoleBinding", "roleRef": {"kind": "ClusterRole", "name": "edit"}}]}}}))
        .unwrap()
    }

    fn side() -> Side {
        Side {
            namespace: "team-a".into(),
            temporary: false,
            same_as_terminal: true,
        }
    }

    fn plan_of(t: &Terminal) -> (Plan, Names) {
        let (s, n) = (side(), Names::for_uid("u-1"));
        let places = Places {
            host: &s,
            target: &s,
            access: &s,
            present: None,
        };
        let creator: Creator = serde_json::from_value(json!({"user": "alice", "groups": ["developers"]})).unwrap();
        (Plan::of(t, &n, &places, &creator, &TerminalConfig::default()), n)
    }

    fn observe_as<K: Resource<DynamicType = ()>>(
        p: &Present,
        key: &Key,
        owner: &str,
        uid: &str,
        annotations: &serde_json::Value,
    ) {
        let o: PartialObjectMeta<K> = serde_json::from_value(json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": {"name": key.name, "namespace": key.namespace, "uid": uid,
                         "labels": {build::UID_LABEL: owner}, "annotations": annotations},
        }))
        .unwrap();
        p.observe(&watcher::Event::Apply(o));
    }

    /// The child `key` seen by its kind's watch, labelled for `owner`, with UID `uid`.
    fn observe(p: &Present, key: &Key, owner: &str, uid: &str, annotations: serde_json::Value) {
        let a = &annotations;
        match key.kind {
            "Namespace" => observe_as::<Namespace>(p, key, owner, uid, a),
            "ServiceAccount" => observe_as::<ServiceAccount>(p, key, owner, uid, a),
            "Role" => observe_as::<Role>(p, key, owner, uid, a),
            "RoleBinding" => observe_as::<RoleBinding>(p, key, owner, uid, a),
            "ClusterRoleBinding" => observe_as::<ClusterRoleBinding>(p, key, owner, uid, a),
            "Secret" => observe_as::<Secret>(p, key, owner, uid, a),
            other => panic!("no watch of {other}"),
        }
    }

    #[test]
    fn the_digest_changes_with_what_would_be_written() {
        let (a, _) = plan_of(&terminal("toolbox:1"));
        let (again, _) = plan_of(&terminal("toolbox:1"));
        let (other, _) = plan_of(&terminal("toolbox:2"));
        assert_eq!(a.digest(), again.digest());
        assert_ne!(a.digest(), other.digest(), "another image");
        assert!(a.digest().starts_with("sha256:"));
    }

    #[test]
    fn nothing_is_written_only_when_every_child_is_there_for_this_terminal_and_the_token_holds() {
        let t = terminal("toolbox:1");
        let (plan, n) = plan_of(&t);
        let s = side();
        let places = Places {
            host: &s,
            target: &s,
            access: &s,
            present: None,
        };
        let children = plan.children(&n, &places);
        assert_eq!(children.len(), 6, "{children:?}");
        let secret = Key::of::<Secret>(Some("team-a"), &n.kubeconfig_secret);
        let access = key(&plan.access);
        let now: Timestamp = "2026-12-06T10:30:00Z".parse().unwrap();
        let token = json!({"portico.dev/token-issued-at": "2026-12-06T10:00:00Z",
                           "portico.dev/token-expires-at": "2026-12-06T11:00:00Z",
                           "portico.dev/token-account-uid": format!("uid-{}", n.access)});
        let p = Present::default();
        let digest = plan.digest();
        let check = |p: &Present, recorded: &str, now| {
            unchanged(Some(recorded), &plan, &children, (&secret, &access), p, "u-1", now)
        };
        for k in &children {
            let annotations = if k == &secret { token.clone() } else { json!({}) };
            observe(&p, k, "u-1", &format!("uid-{}", k.name), annotations);
        }
        assert_eq!(check(&p, &digest, now), Some("2026-12-06T10:48:00Z".parse().unwrap()));
        assert_eq!(check(&p, "sha256:other", now), None, "applied for something else");
        assert_eq!(
            unchanged(None, &plan, &children, (&secret, &access), &p, "u-1", now),
            None,
            "never recorded"
        );
        assert_eq!(
            check(&p, &digest, "2026-12-06T10:50:00Z".parse().unwrap()),
            None,
            "the token is due"
        );
        // The access account made again: the token was issued for the old one.
        observe(&p, &access, "u-1", "uid-made-again", json!({}));
        assert_eq!(check(&p, &digest, now), None, "a token of the account deleted");
        // A child labelled for another Terminal.
        observe(&p, &access, "u-2", &format!("uid-{}", access.name), json!({}));
        assert_eq!(check(&p, &digest, now), None, "labelled for another Terminal");
        observe(&p, &access, "u-1", &format!("uid-{}", access.name), json!({}));
        assert!(check(&p, &digest, now).is_some());
        let attach = key(&plan.attach);
        let o: PartialObjectMeta<ServiceAccount> = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": attach.name, "namespace": attach.namespace}}))
        .unwrap();
        p.observe(&watcher::Event::Delete(o));
        assert_eq!(check(&p, &digest, now), None, "a child deleted");
    }
}
