//! The Events about Portico's Deployments, from one watch that the API
//! server filters (`involvedObject.apiVersion` and `involvedObject.kind`),
//! indexed by the namespace and UID of the object each is about, so the
//! detail page shows them without a request. The page shows them only to a
//! user who may list Events in that namespace, asked as the user and kept
//! as the lists' answers are ([`super::readable`]).
//!
//! An Event counts only in its own namespace: one elsewhere naming a
//! Deployment's UID is not about it.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};

use crate::api::Deployment;

/// How long start-up waits for the first list.
const FIRST_LIST: std::time::Duration = std::time::Duration::from_secs(10);

/// Events kept per object (the newest; Events expire on the API server
/// after an hour anyway).
const MAX_PER_OBJECT: usize = 100;

/// What the page shows of one Event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shown {
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Why, in one word.
    pub reason: Option<String>,
    /// What happened.
    pub message: Option<String>,
    /// How many times (a series).
    pub count: Option<i32>,
    /// When last (RFC 3339).
    pub time: Option<String>,
}

/// The object an Event is about: its namespace and UID.
type About = (String, String);

/// Events by the object they are about, each object's by Event name (pure).
#[derive(Debug, Default)]
pub struct Index {
    about: HashMap<About, HashMap<String, Shown>>,
}

/// What the index keeps of `e`: the object it is about (in its own
/// namespace), its name, and what is shown (pure).
fn entry(e: &Event) -> Option<(About, String, Shown)> {
    let ns = e.namespace()?;
    let uid = e.involved_object.uid.clone()?;
    if e.involved_object.namespace.as_deref() != Some(ns.as_str()) {
        return None;
    }
    let time = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.to_string()));
    let shown = Shown {
        type_: e.type_.clone(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        count: e.count,
        time,
    };
    Some(((ns, uid), e.name_any(), shown))
}

impl Index {
    /// Adds or updates `e`; the oldest of its object's Events go past [`MAX_PER_OBJECT`].
    pub fn put(&mut self, e: &Event) {
        let Some((about, name, shown)) = entry(e) else { return };
        let events = self.about.entry(about).or_default();
        events.insert(name, shown);
        if events.len() > MAX_PER_OBJECT {
            let oldest = events
                .iter()
                .min_by(|a, b| a.1.time.cmp(&b.1.time))
                .map(|(n, _)| n.clone());
            events.remove(&oldest.unwrap_or_default());
        }
    }

    /// Removes `e` (deleted or expired).
    pub fn remove(&mut self, e: &Event) {
        let Some((about, name, _)) = entry(e) else { return };
        if let Some(events) = self.about.get_mut(&about) {
            events.remove(&name);
            if events.is_empty() {
                self.about.remove(&about);
            }
        }
    }

    /// The Events about the object `uid` in `namespace`, newest first.
    pub fn of(&self, namespace: &str, uid: &str) -> Vec<Shown> {
        let key = (namespace.to_string(), uid.to_string());
        let mut events: Vec<Shown> = self
            .about
            .get(&key)
            .into_iter()
            .flat_map(|m| m.values().cloned())
            .collect();
        events.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.reason.cmp(&b.reason)));
        events
    }

    /// How many objects have Events.
    pub fn len(&self) -> usize {
        self.about.len()
    }

    /// Whether no object has Events.
    pub fn is_empty(&self) -> bool {
        self.about.is_empty()
    }
}

/// The index, filled by its watch.
pub type Events = Arc<RwLock<Index>>;

/// Watches the Events about Deployments into an index; resolves once it has
/// listed them, or after [`FIRST_LIST`] (a relist replaces the index at once).
pub async fn start(client: Client) -> Events {
    let fields = format!(
        "involvedObject.apiVersion={},involvedObject.kind={}",
        Deployment::api_version(&()),
        Deployment::kind(&())
    );
    let events: Events = Arc::default();
    let stream = watcher(Api::<Event>::all(client), watcher::Config::default().fields(&fields)).default_backoff();
    let (listed, mut ready) = tokio::sync::watch::channel(false);
    let index = events.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        let mut relisted = Index::default();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "watch of the Events about Deployments: retrying");
                    continue; // the backoff retries
                }
            };
            match event {
                watcher::Event::Init => relisted = Index::default(),
                watcher::Event::InitApply(e) => relisted.put(&e),
                watcher::Event::InitDone => {
                    *index.write().unwrap() = std::mem::take(&mut relisted);
                    listed.send_replace(true);
                }
                watcher::Event::Apply(e) => index.write().unwrap().put(&e),
                watcher::Event::Delete(e) => index.write().unwrap().remove(&e),
            }
        }
    });
    // Start without it rather than not at all: it fills when the watch succeeds.
    if tokio::time::timeout(FIRST_LIST, ready.wait_for(|r| *r)).await.is_err() {
        tracing::warn!("the Events about Deployments were not listed within {FIRST_LIST:?}; starting without them");
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, ns: &str, about_ns: &str, uid: &str, reason: &str, time: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "portico.dev/v1alpha1", "kind": "Deployment",
                               "name": "shop", "namespace": about_ns, "uid": uid},
            "reason": reason, "message": format!("{reason} happened"), "type": "Normal", "count": 1,
            "lastTimestamp": time,
        }))
        .unwrap()
    }

    #[test]
    fn events_are_found_by_namespace_and_uid_newest_first_and_updated_in_place() {
        let mut index = Index::default();
        index.put(&event("a", "team-a", "team-a", "u1", "Created", "2026-12-06T10:00:00Z"));
        index.put(&event("b", "team-a", "team-a", "u1", "Applied", "2026-12-06T10:01:00Z"));
        index.put(&event("c", "team-a", "team-a", "u2", "Created", "2026-12-06T10:02:00Z"));
        let reasons = |v: Vec<Shown>| v.into_iter().filter_map(|s| s.reason).collect::<Vec<_>>();
        assert_eq!(reasons(index.of("team-a", "u1")), ["Applied", "Created"]);
        // A series: the same Event, counted again.
        let mut again = event("a", "team-a", "team-a", "u1", "Created", "2026-12-06T10:05:00Z");
        again.count = Some(2);
        index.put(&again);
        let shown = index.of("team-a", "u1");
        assert_eq!((shown.len(), shown[0].count), (2, Some(2)));
        index.remove(&again);
        index.remove(&event("b", "team-a", "team-a", "u1", "Applied", "2026-12-06T10:01:00Z"));
        assert!(index.of("team-a", "u1").is_empty());
        assert_eq!(index.len(), 1, "only u2's left, u1's entry dropped");
    }

    #[test]
    fn an_event_elsewhere_naming_the_uid_is_not_about_it() {
        let mut index = Index::default();
        index.put(&event(
            "forged",
            "team-b",
            "team-a",
            "u1",
            "Forged",
            "2026-12-06T10:00:00Z",
        ));
        index.put(&event(
            "other",
            "team-b",
            "team-b",
            "u1",
            "Other",
            "2026-12-06T10:00:00Z",
        ));
        assert!(index.of("team-a", "u1").is_empty());
        assert_eq!(index.of("team-b", "u1").len(), 1, "in its own namespace only");
    }

    #[test]
    fn an_object_keeps_its_newest_events() {
        let mut index = Index::default();
        for i in 0..MAX_PER_OBJECT + 5 {
            let time = format!("2026-12-06T10:{:02}:{:02}Z", i / 60, i % 60);
            index.put(&event(
                &format!("e{i}"),
                "team-a",
                "team-a",
                "u1",
                &format!("R{i}"),
                &time,
            ));
        }
        let shown = index.of("team-a", "u1");
        assert_eq!(shown.len(), MAX_PER_OBJECT);
        assert_eq!(shown[0].reason.as_deref(), Some("R104"));
        assert_eq!(
            shown.last().unwrap().reason.as_deref(),
            Some("R5"),
            "the five oldest went"
        );
    }
}
