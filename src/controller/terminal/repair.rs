//! Children deleted by someone else are made again. The metadata of what
//! the operator makes for Terminals in its own cluster — temporary
//! namespaces, service accounts, Roles, RoleBindings, ClusterRoleBindings
//! and kubeconfig Secrets, each labelled with its Terminal's UID — is
//! watched; a deletion, or the loss of that label (which a watch by label
//! reports as one), forgets what was applied for that Terminal and starts
//! its pass, which applies everything again or refuses a temporary
//! namespace that lost its mark — at most once per [`REPAIR_EVERY`] for one
//! Terminal. (Pods have their own watch, whose events start a pass that
//! finds the pod missing.) A kubeconfig Secret whose token someone else
//! changed starts a pass that reads it again. Deletions during the
//! Terminal's own cleanup start nothing. Every event also keeps
//! [`Present`] up to date, which a pass after a restart consults. Children in other clusters are
//! repaired by the periodic re-apply ([`crate::controller::applied::RESYNC`]).

use std::{
    collections::HashMap,
    fmt::Debug,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt, future::ready, stream::BoxStream};
use k8s_openapi::api::{
    core::v1::{Namespace, Secret, ServiceAccount},
    rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::ObjectMeta,
    core::PartialObjectMeta,
    runtime::{WatchStreamExt, reflector::ObjectRef, watcher},
};
use serde::de::DeserializeOwned;

use super::{
    build::{Names, OWNER_ANNOTATION, UID_LABEL},
    present::Present,
};
use crate::{
    api::{Terminal, keys::TEMPORARY_NAMESPACE},
    controller::backoff::WatchBackoff,
};

/// What the watches of the children report.
pub enum Child {
    /// A child deleted, or that lost its UID label: its metadata.
    Lost(ObjectMeta),
    /// A kubeconfig Secret changed (its token may be someone else's).
    SecretChanged(PartialObjectMeta<Secret>),
}

/// How many kinds [`watch`] watches.
pub const KINDS: usize = 6;

/// Watches the metadata of every child of each kind the operator makes for
/// Terminals in this cluster (pods aside), labelled with a Terminal's UID:
/// every event goes to `present`, the deletions (and a Secret's changes)
/// come out; a watch's errors are retried by its backoff.
pub fn watch(client: &Client, present: Arc<Present>) -> impl Stream<Item = Child> + Send + use<> {
    futures::stream::select_all([
        of::<Namespace>(client, present.clone(), |_| None),
        of::<ServiceAccount>(client, present.clone(), |_| None),
        of::<Role>(client, present.clone(), |_| None),
        of::<RoleBinding>(client, present.clone(), |_| None),
        of::<ClusterRoleBinding>(client, present.clone(), |_| None),
        of::<Secret>(client, present, |s| Some(Child::SecretChanged(s.clone()))),
    ])
}

/// The metadata watch of `K` objects labelled with a Terminal's UID, cluster-wide.
fn of<K>(
    client: &Client,
    present: Arc<Present>,
    changed: fn(&PartialObjectMeta<K>) -> Option<Child>,
) -> BoxStream<'static, Child>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        watcher::Config::default().labels(UID_LABEL),
    )
    .backoff(WatchBackoff::default())
    .filter_map(move |event| {
        ready(event.ok().and_then(|e| {
            present.observe(&e);
            match e {
                watcher::Event::Delete(o) => Some(Child::Lost(o.metadata)),
                watcher::Event::Apply(o) => changed(&o),
                _ => None,
            }
        }))
    })
    .boxed()
}

/// The Terminal a deleted child was made for (pure): by its owner
/// annotation (`namespace/name`), with the Terminal's UID from its label. A
/// child whose label was removed (a watch by label reports it deleted)
/// carries no UID: `None`.
pub fn made_for(child: &ObjectMeta) -> Option<(Option<String>, ObjectRef<Terminal>)> {
    let uid = child.labels.as_ref().and_then(|l| l.get(UID_LABEL)).cloned();
    let (ns, name) = child.annotations.as_ref()?.get(OWNER_ANNOTATION)?.split_once('/')?;
    Some((uid, ObjectRef::new(name).within(ns)))
}

/// Whether `child` is named as the operator names what it makes for
/// `terminal` (pure): a name with the Terminal's short id, or its temporary
/// namespace. Anyone may label an object of their own; only these count.
pub fn named_for(child: &ObjectMeta, terminal: &Terminal) -> bool {
    let name = child.name.as_deref().unwrap_or_default();
    let id = Names::for_uid(&terminal.uid().unwrap_or_default()).id;
    name.contains(&id) || terminal.annotations().get(TEMPORARY_NAMESPACE).map(String::as_str) == Some(name)
}

/// At most one repair per Terminal in [`REPAIR_EVERY`]: something that keeps
/// deleting a child (a policy tool) does not spin the operator. A repair
/// asked for sooner is not lost: it waits until the window has passed.
#[derive(Default)]
pub struct Limiter {
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    /// When each Terminal (by UID) was last repaired.
    last: HashMap<String, Instant>,
    /// Terminals with a repair waiting.
    waiting: std::collections::HashSet<String>,
}

/// The shortest time between two repairs of one Terminal.
pub const REPAIR_EVERY: Duration = Duration::from_secs(10);

/// What to do with a repair asked for now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Start the pass now.
    Now,
    /// Start it after this long (a repair already waits: nothing more).
    After(Duration),
    /// One is already waiting.
    Waiting,
}

impl Limiter {
    /// Whether the Terminal with `uid` may be repaired at `now`; records it.
    pub fn admit(&self, uid: &str, now: Instant) -> Admit {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.last.len() > 10_000 {
            st.last.retain(|_, at| now.duration_since(*at) < REPAIR_EVERY);
        }
        if st.waiting.contains(uid) {
            return Admit::Waiting;
        }
        match st.last.get(uid).map(|at| now.duration_since(*at)) {
            Some(since) if since < REPAIR_EVERY => {
                st.waiting.insert(uid.to_string());
                Admit::After(REPAIR_EVERY - since)
            }
            _ => {
                st.last.insert(uid.to_string(), now);
                Admit::Now
            }
        }
    }

    /// The waiting repair of `uid` starts at `now`.
    pub fn started(&self, uid: &str, now: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.waiting.remove(uid);
        st.last.insert(uid.to_string(), now);
    }
}

/// Whether losing a child made for the Terminal with `uid` should start a
/// pass of `terminal` as it is now (pure): the same Terminal (not one made
/// again under its name; any, when the child lost its UID label), and not
/// being deleted itself. The pass applies again what is missing, and
/// refuses a temporary namespace that lost its mark.
pub fn repairs(uid: Option<&str>, terminal: Option<&Terminal>) -> bool {
    terminal.is_some_and(|t| {
        uid.is_none_or(|uid| t.uid().as_deref() == Some(uid)) && t.metadata.deletion_timestamp.is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_child_names_its_terminal_by_annotation_and_uid() {
        let child = meta(json!({"name": "term-attach-1",
            "labels": {UID_LABEL: "u-1"}, "annotations": {OWNER_ANNOTATION: "team-a/shell"}}));
        let (uid, at) = made_for(&child).unwrap();
        assert_eq!(
            (uid.as_deref(), at.name.as_str(), at.namespace.as_deref()),
            (Some("u-1"), "shell", Some("team-a"))
        );
        assert!(made_for(&meta(json!({"name": "x", "labels": {UID_LABEL: "u-1"}}))).is_none());
        let unmarked = made_for(&meta(json!({"name": "x", "annotations": {OWNER_ANNOTATION: "a/b"}}))).unwrap();
        assert_eq!(
            (unmarked.0, unmarked.1.name.as_str()),
            (None, "b"),
            "its label was removed"
        );
    }

    #[test]
    fn only_children_named_for_the_terminal_count() {
        let t: Terminal = serde_json::from_value(json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": "shell", "namespace": "team-a", "uid": "u-1",
                         "annotations": {TEMPORARY_NAMESPACE: "term-x7k2p"}},
            "spec": {"host": {"pod": {"image": "toolbox"}}, "target": {}}}))
        .unwrap();
        let id = Names::for_uid("u-1").id;
        let named = |name: &str| named_for(&meta(json!({"name": name})), &t);
        assert!(named(&format!("term-attach-{id}")) && named(&format!("term-{id}-kubeconfig")));
        assert!(named("term-x7k2p"), "its temporary namespace");
        assert!(!named("someone-elses-secret"), "a labelled object of someone else");
    }

    #[test]
    fn repairs_of_one_terminal_are_spaced_and_none_is_lost() {
        let l = Limiter::default();
        let now = Instant::now();
        let at = |s: u64| now + Duration::from_secs(s);
        assert_eq!(l.admit("u-1", now), Admit::Now);
        assert_eq!(
            l.admit("u-1", at(1)),
            Admit::After(REPAIR_EVERY - Duration::from_secs(1))
        );
        assert_eq!(l.admit("u-1", at(2)), Admit::Waiting, "one waits already");
        assert_eq!(l.admit("u-2", at(2)), Admit::Now, "another Terminal");
        l.started("u-1", at(10));
        assert_eq!(
            l.admit("u-1", at(11)),
            Admit::After(REPAIR_EVERY - Duration::from_secs(1))
        );
        assert_eq!(l.admit("u-1", at(25)), Admit::Waiting);
    }

    #[test]
    fn only_a_live_terminal_with_that_uid_is_repaired() {
        let t = |uid: &str, deleting: bool| -> Terminal {
            let mut v = json!({"apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
                "metadata": {"name": "shell", "namespace": "team-a", "uid": uid},
                "spec": {"host": {"namespace": "team-a", "pod": {"image": "toolbox"}}, "target": {"namespace": "team-a"}}});
            if deleting {
                v["metadata"]["deletionTimestamp"] = json!("2026-12-06T10:00:00Z");
            }
            serde_json::from_value(v).unwrap()
        };
        assert!(repairs(Some("u-1"), Some(&t("u-1", false))));
        assert!(!repairs(Some("u-1"), Some(&t("u-1", true))), "its own cleanup");
        assert!(
            !repairs(Some("u-1"), Some(&t("u-2", false))),
            "another Terminal under the name"
        );
        assert!(!repairs(Some("u-1"), None), "gone");
        assert!(repairs(None, Some(&t("u-2", false))), "a child that lost its label");
        assert!(!repairs(None, Some(&t("u-2", true))));
    }
}
