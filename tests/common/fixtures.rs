//! Test objects as a user would write them (in the style of kube-rs
//! controller-rs `fixtures.rs`): a base object of each kind, changed with
//! [`With::with`], a JSON merge patch of only what a test cares about.

use portico::api::{Deployment, SessionClaim, Terminal};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

/// Changes an object with a JSON merge patch (RFC 7386: objects merge,
/// `null` removes, everything else replaces).
pub trait With: Serialize + DeserializeOwned {
    /// `self` with `patch` merged in.
    fn with(self, patch: Value) -> Self {
        let mut v = serde_json::to_value(&self).expect("a test object serializes");
        json_patch::merge(&mut v, &patch);
        serde_json::from_value(v).expect("the patched test object is still one")
    }
}

impl With for Terminal {}
impl With for SessionClaim {}
impl With for Deployment {}

/// A Terminal running the toolbox's shell, with nothing else said: where
/// it is hosted and what it targets come from [`With::with`].
pub fn terminal(name: &str) -> Terminal {
    serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": name},
        "spec": {"host": {"pod": {"image": super::TOOLBOX, "command": ["/bin/sh"]}}, "target": {}},
    }))
    .expect("a Terminal")
}

/// A Terminal hosted in `host` whose kubeconfig reaches `target` with `edit` there.
pub fn terminal_in(name: &str, host: &str, target: &str, role: &str) -> Terminal {
    terminal(name).with(json!({"spec": {
        "host": {"namespace": host},
        "target": {"namespace": target, "roleBindings": [binding("ClusterRole", role, "RoleBinding", role)]},
    }}))
}

/// One entry of a Terminal's `target.roleBindings`.
pub fn binding(kind: &str, role: &str, binding_kind: &str, suffix: &str) -> Value {
    json!({"roleRef": {"kind": kind, "name": role}, "bindingKind": binding_kind, "nameSuffix": suffix})
}

/// A SessionClaim under `profile`.
pub fn claim(name: &str, profile: &str) -> SessionClaim {
    serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim", "metadata": {"name": name},
        "spec": {"profile": profile},
    }))
    .expect("a SessionClaim")
}

/// A Deployment of catalog template `template` with `params`.
pub fn deployment(name: &str, template: &str, params: Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"template": {"name": template}, "parameters": params},
    }))
    .expect("a Deployment")
}

/// A Secret `name` whose key `kubeconfig` is the admin kubeconfig of `cp`:
/// the operator's way into that cluster, for a Terminal's `cluster`.
pub fn kubeconfig_secret(name: &str, cp: &portico::controlplane::ControlPlane) -> k8s_openapi::api::core::v1::Secret {
    let yaml = portico::controlplane::kubeconfig::to_yaml(cp.kubeconfig());
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": {"kubeconfig": k8s_openapi::ByteString(yaml.into_bytes())},
    }))
    .expect("a Secret")
}
