//! What a Deployment owns (pure): every object it renders carries its UID
//! label; an existing object without that mark is never taken over (objects
//! not recorded yet are applied create-only); the inventory recorded with a
//! pass's status holds every object it rendered, applied or not, so an
//! apply refused leaves nothing unrecorded; cleanup deletes only objects
//! that carry the mark.

use std::collections::BTreeSet;

use kube::{ResourceExt, api::DynamicObject};

pub use crate::api::keys::DEPLOYMENT_UID_LABEL as UID_LABEL;
use crate::{
    api::deployment::{Health, ResourceStatus},
    catalog::render::{NAME_ANNOTATION, NAMESPACE_ANNOTATION},
};

/// One object's identity in an inventory: apiVersion, kind, namespace, name.
pub type Key = (String, String, Option<String>, String);

/// The identity of an inventory entry.
pub fn key(r: &ResourceStatus) -> Key {
    (
        r.api_version.clone(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

/// The recorded objects this Deployment has seen live as its own: everything
/// in the inventory except what was only planned or is gone (`NotFound`).
/// Anything else is checked for the mark before Portico writes to it.
pub fn seen(recorded: &[ResourceStatus]) -> BTreeSet<Key> {
    recorded
        .iter()
        .filter(|r| r.health != Health::NotFound)
        .map(key)
        .collect()
}

/// Marks a rendered object as made by the Deployment with `uid`.
pub fn mark(obj: &mut DynamicObject, uid: &str) {
    obj.labels_mut().insert(UID_LABEL.into(), uid.into());
}

/// Whether an object (as JSON) carries the mark of the Deployment with `uid`.
pub fn marked_for(live: &serde_json::Value, uid: &str) -> bool {
    !uid.is_empty()
        && live
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get(UID_LABEL))
            .and_then(serde_json::Value::as_str)
            == Some(uid)
}

/// Whether a live object was made by the Deployment `namespace/name` with
/// `uid`: it carries the UID label, or (objects applied before that label
/// existed) it is in the recorded inventory and annotated with the
/// Deployment's name.
pub fn owned(live: &DynamicObject, uid: &str, recorded: bool, namespace: &str, name: &str) -> bool {
    if !uid.is_empty() && live.labels().get(UID_LABEL).map(String::as_str) == Some(uid) {
        return true;
    }
    let a = live.annotations();
    recorded
        && live.labels().get(UID_LABEL).is_none()
        && a.get(NAME_ANNOTATION).map(String::as_str) == Some(name)
        && a.get(NAMESPACE_ANNOTATION).map(String::as_str) == Some(namespace)
}

/// The inventory to record: what is recorded, followed by the planned
/// objects it lacks (health `NotFound` until applied). `None` when every
/// planned object is recorded already.
pub fn plan(recorded: &[ResourceStatus], planned: &[ResourceStatus]) -> Option<Vec<ResourceStatus>> {
    let known: BTreeSet<Key> = recorded.iter().map(key).collect();
    let new: Vec<ResourceStatus> = planned
        .iter()
        .filter(|p| !known.contains(&key(p)))
        .map(|p| ResourceStatus {
            health: Health::NotFound,
            message: Some("not applied yet".into()),
            ..p.clone()
        })
        .collect();
    if new.is_empty() {
        return None;
    }
    Some(recorded.iter().cloned().chain(new).collect())
}

/// Appends to `inventory` the entries of `latest` it lacks (an object
/// recorded by a status write this pass did not see).
pub fn keep(inventory: &mut Vec<ResourceStatus>, latest: Vec<ResourceStatus>) {
    let known: BTreeSet<Key> = inventory.iter().map(key).collect();
    inventory.extend(latest.into_iter().filter(|r| !known.contains(&key(r))));
}

/// The refusal for an existing object the Deployment did not make.
pub fn not_owned_message(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let at = namespace.map(|ns| format!("{ns}/")).unwrap_or_default();
    format!(
        "{kind} {at}{name} already exists and was not created by this Deployment; Portico does not take over \
         or delete it; rename the object through the parameters, or remove the existing one"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_object_labelled_with_the_uid_is_marked_for_it() {
        let live = serde_json::json!({"metadata": {"labels": {UID_LABEL: "u1"}}});
        assert!(marked_for(&live, "u1"));
        assert!(!marked_for(&live, "u2"));
        assert!(!marked_for(&serde_json::json!({"metadata": {}}), "u1"));
        assert!(!marked_for(
            &serde_json::json!({"metadata": {"labels": {UID_LABEL: ""}}}),
            ""
        ));
    }
    use serde_json::json;

    fn object(labels: serde_json::Value, annotations: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web", "namespace": "team-a", "labels": labels, "annotations": annotations}}))
        .unwrap()
    }

    fn status(name: &str) -> ResourceStatus {
        ResourceStatus {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("team-a".into()),
            name: name.into(),
            health: Health::Current,
            message: None,
            applied_generation: None,
            applied_resource_version: None,
        }
    }

    #[test]
    fn only_marked_or_recorded_objects_are_owned() {
        let mine = object(json!({UID_LABEL: "u1"}), json!({}));
        assert!(owned(&mine, "u1", false, "team-a", "hello"));
        assert!(!owned(&mine, "u2", true, "team-a", "hello"), "another Deployment's");
        let foreign = object(json!({}), json!({}));
        assert!(!owned(&foreign, "u1", true, "team-a", "hello"), "an admin's ConfigMap");
        let legacy = object(
            json!({}),
            json!({NAME_ANNOTATION: "hello", NAMESPACE_ANNOTATION: "team-a"}),
        );
        assert!(
            owned(&legacy, "u1", true, "team-a", "hello"),
            "applied before the label existed"
        );
        assert!(
            !owned(&legacy, "u1", false, "team-a", "hello"),
            "annotations alone prove nothing"
        );
        let mut marked = object(json!({}), json!({}));
        mark(&mut marked, "u1");
        assert!(owned(&marked, "u1", false, "team-a", "hello"));
    }

    #[test]
    fn the_inventory_holds_what_was_recorded_and_every_new_object_not_yet_applied() {
        let recorded = vec![status("a")];
        assert_eq!(plan(&recorded, &[status("a")]), None, "nothing new");
        let next = plan(&recorded, &[status("a"), status("b")]).unwrap();
        assert_eq!(next.len(), 2);
        assert_eq!(next[0], status("a"));
        assert_eq!((next[1].name.as_str(), next[1].health), ("b", Health::NotFound));
    }

    #[test]
    fn planned_or_missing_objects_are_not_seen_as_ours() {
        let planned = plan(&[status("a")], &[status("a"), status("b")]).unwrap();
        let seen = seen(&planned);
        assert!(seen.contains(&key(&status("a"))));
        assert!(!seen.contains(&key(&status("b"))), "only planned: applied create-only");
    }

    #[test]
    fn what_a_later_status_recorded_is_kept_beside_this_pass_inventory() {
        let mut inventory = vec![status("a"), status("b")];
        let mut newer_b = status("b");
        newer_b.health = Health::NotFound;
        keep(&mut inventory, vec![newer_b, status("c")]);
        let got: Vec<(&str, Health)> = inventory.iter().map(|r| (r.name.as_str(), r.health)).collect();
        assert_eq!(
            got,
            [
                ("a", status("a").health),
                ("b", status("b").health),
                ("c", status("c").health)
            ],
            "this pass's entries first and as they are, then what only the later status held"
        );
        let mut empty = vec![];
        keep(&mut empty, vec![status("a")]);
        assert_eq!(empty, [status("a")], "a pass that saw no record keeps the latest");
    }

    #[test]
    fn the_refusal_names_the_object() {
        let m = not_owned_message("ConfigMap", Some("team-a"), "web");
        assert!(
            m.starts_with("ConfigMap team-a/web already exists and was not created by this Deployment"),
            "{m}"
        );
    }
}
