//! The names of the cluster's namespaces, from one watch of their metadata,
//! so forms can offer the namespaces where the user may create something
//! (asked as the user: [`super::readable`]) instead of a blank field.

use std::{
    collections::BTreeSet,
    sync::{Arc, RwLock},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, ResourceExt,
    core::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};

/// How long start-up waits for the first list.
const FIRST_LIST: std::time::Duration = std::time::Duration::from_secs(10);

/// The namespaces' names, kept by their watch.
pub type Namespaces = Arc<RwLock<BTreeSet<String>>>;

/// Namespaces a form asks about at most, one question each, when the user
/// holds no cluster-wide grant; beyond that the field stays free text.
pub const MAX_ASKED: usize = 100;

/// Watches the namespaces' names; resolves once they have been listed, or
/// after [`FIRST_LIST`] (a relist replaces them at once).
pub async fn start(client: Client) -> Namespaces {
    let names: Namespaces = Arc::default();
    let api = Api::<PartialObjectMeta<Namespace>>::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let (listed, mut ready) = tokio::sync::watch::channel(false);
    let kept = names.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        let mut relisted = BTreeSet::new();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "watch of the namespaces: retrying");
                    continue; // the backoff retries
                }
            };
            match event {
                watcher::Event::Init => relisted.clear(),
                watcher::Event::InitApply(ns) => {
                    relisted.insert(ns.name_any());
                }
                watcher::Event::InitDone => {
                    *kept.write().unwrap() = std::mem::take(&mut relisted);
                    listed.send_replace(true);
                }
                watcher::Event::Apply(ns) => {
                    kept.write().unwrap().insert(ns.name_any());
                }
                watcher::Event::Delete(ns) => {
                    kept.write().unwrap().remove(&ns.name_any());
                }
            }
        }
    });
    // Start without it rather than not at all: it fills when the watch succeeds.
    if tokio::time::timeout(FIRST_LIST, ready.wait_for(|r| *r)).await.is_err() {
        tracing::warn!("the namespaces were not listed within {FIRST_LIST:?}; starting without them");
    }
    names
}
