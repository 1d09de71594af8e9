//! Which of the Terminals' children exist in this cluster, as the watches
//! of their metadata ([`super::repair`]) see them: each by kind, namespace
//! and name, with what a pass needs of it (its UID; for a kubeconfig Secret,
//! when its token is due and which account it was issued for). A pass after
//! the operator started uses it to tell whether the children recorded in
//! the Terminal's status are all still there, so a restart applies only
//! what changed or went missing (see [`super::plan`]).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt, core::PartialObjectMeta, runtime::watcher};

use super::build::{TOKEN_ACCOUNT_UID_ANNOTATION, UID_LABEL};

/// A child by kind, namespace (none for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The kind, e.g. `ServiceAccount`.
    pub kind: &'static str,
    /// Its namespace, if namespaced.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl Key {
    /// The key of an object of kind K with `namespace` and `name`.
    pub fn of<K: Resource<DynamicType = ()>>(namespace: Option<&str>, name: &str) -> Key {
        Key {
            kind: kind_of::<K>(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

/// What a pass needs to know of one child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Its UID.
    pub uid: Option<String>,
    /// The UID of the Terminal it is labelled for.
    pub owner_uid: Option<String>,
    /// A kubeconfig Secret's token: when it is due.
    pub renew_at: Option<Timestamp>,
    /// A kubeconfig Secret's token: the UID of the account it was issued for.
    pub account_uid: Option<String>,
}

fn seen<K: Resource<DynamicType = ()>>(o: &PartialObjectMeta<K>) -> (Key, Seen) {
    let key = Key {
        kind: kind_of::<K>(),
        namespace: o.namespace(),
        name: o.name_any(),
    };
    let value = Seen {
        uid: o.uid(),
        owner_uid: o.labels().get(UID_LABEL).cloned(),
        renew_at: crate::tokens::renew_at(o),
        account_uid: o.annotations().get(TOKEN_ACCOUNT_UID_ANNOTATION).cloned(),
    };
    (key, value)
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // The kinds watched are few: each name is leaked once, then reused.
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let kind = K::kind(&());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    match names.iter().find(|k| **k == kind) {
        Some(k) => k,
        None => {
            let k: &'static str = Box::leak(kind.into_owned().into_boxed_str());
            names.push(k);
            k
        }
    }
}

/// The children seen, and which kinds have been listed since the start.
pub struct Present {
    state: Mutex<State>,
    /// How many kinds have been listed, for passes waiting on it.
    listed_count: tokio::sync::watch::Sender<usize>,
}

impl Default for Present {
    fn default() -> Self {
        Present {
            state: Mutex::default(),
            listed_count: tokio::sync::watch::Sender::new(0),
        }
    }
}

#[derive(Default)]
struct State {
    objects: HashMap<Key, Seen>,
    /// Kinds whose first list is complete.
    listed: HashSet<&'static str>,
    /// A list in progress, per kind.
    relisting: HashMap<&'static str, HashMap<Key, Seen>>,
}

impl Present {
    /// Takes in one event of a watch of K's metadata; a relist replaces
    /// every K at once.
    pub fn observe<K: Resource<DynamicType = ()>>(&self, event: &watcher::Event<PartialObjectMeta<K>>) {
        let kind = kind_of::<K>();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Init => {
                st.relisting.insert(kind, HashMap::new());
            }
            watcher::Event::InitApply(o) => {
                let (k, v) = seen(o);
                st.relisting.entry(kind).or_default().insert(k, v);
            }
            watcher::Event::InitDone => {
                let fresh = st.relisting.remove(&kind).unwrap_or_default();
                st.objects.retain(|k, _| k.kind != kind);
                st.objects.extend(fresh);
                st.listed.insert(kind);
                self.listed_count.send_replace(st.listed.len());
            }
            watcher::Event::Apply(o) => {
                let (k, v) = seen(o);
                st.objects.insert(k, v);
            }
            watcher::Event::Delete(o) => {
                let (k, _) = seen(o);
                st.objects.remove(&k);
            }
        }
    }

    /// Whether `kinds` different kinds have each been listed once.
    #[cfg(test)]
    fn listed(&self, kinds: usize) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).listed.len() >= kinds
    }

    /// Waits until `kinds` kinds have been listed, at most `limit`;
    /// whether they have.
    pub async fn wait_listed(&self, kinds: usize, limit: std::time::Duration) -> bool {
        let mut rx = self.listed_count.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|n| *n >= kinds))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// What is known of the child `key`, if it exists.
    pub fn get(&self, key: &Key) -> Option<Seen> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .objects
            .get(key)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
    use serde_json::json;

    fn meta<K: Resource<DynamicType = ()>>(name: &str, annotations: serde_json::Value) -> PartialObjectMeta<K> {
        serde_json::from_value(json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}"), "annotations": annotations},
        }))
        .unwrap()
    }

    #[test]
    fn children_are_known_once_listed_and_follow_their_events() {
        let p = Present::default();
        let sa = Key::of::<ServiceAccount>(Some("team-a"), "term-attach-1");
        p.observe::<ServiceAccount>(&watcher::Event::Init);
        p.observe(&watcher::Event::InitApply(meta::<ServiceAccount>(
            "term-attach-1",
            json!({}),
        )));
        assert!(!p.listed(1), "not before the list is complete");
        assert_eq!(p.get(&sa), None, "a list in progress counts only when done");
        p.observe::<ServiceAccount>(&watcher::Event::InitDone);
        assert!(p.listed(1) && !p.listed(2));
        assert_eq!(p.get(&sa).unwrap().uid.as_deref(), Some("uid-term-attach-1"));
        p.observe(&watcher::Event::Delete(meta::<ServiceAccount>(
            "term-attach-1",
            json!({}),
        )));
        assert_eq!(p.get(&sa), None);
        p.observe(&watcher::Event::Apply(meta::<ServiceAccount>(
            "term-attach-1",
            json!({}),
        )));
        assert!(p.get(&sa).is_some());
        // A relist replaces every object of the kind, and only of that kind.
        let secret = Key::of::<Secret>(Some("team-a"), "term-1-kubeconfig");
        p.observe(&watcher::Event::Apply(meta::<Secret>(
            "term-1-kubeconfig",
            json!({"portico.dev/token-issued-at": "2026-12-06T10:00:00Z",
                   "portico.dev/token-expires-at": "2026-12-06T11:00:00Z",
                   "portico.dev/token-account-uid": "acc-1"}),
        )));
        p.observe::<ServiceAccount>(&watcher::Event::Init);
        p.observe::<ServiceAccount>(&watcher::Event::InitDone);
        assert_eq!(p.get(&sa), None, "gone in the relist");
        let s = p.get(&secret).expect("another kind is kept");
        assert_eq!(s.account_uid.as_deref(), Some("acc-1"));
        assert_eq!(
            s.renew_at,
            Some("2026-12-06T10:48:00Z".parse().unwrap()),
            "80% of its life"
        );
    }
}
