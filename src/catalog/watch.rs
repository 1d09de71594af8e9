//! The catalog's templates as a watch of each catalog namespace sees them,
//! for the admission webhook (every replica): a Deployment's create or
//! change reads its template here instead of from the API server.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};

use super::TEMPLATE_LABEL;

/// One watch cache of templates per catalog namespace.
#[derive(Clone, Default)]
pub struct Templates {
    stores: BTreeMap<String, Watched>,
}

/// One namespace's cache, and whether its watch's last answer was good (a
/// watch that fails — refused, unreachable — keeps its last list, which
/// is then not trusted).
#[derive(Clone)]
struct Watched {
    store: Store<ConfigMap>,
    healthy: Arc<AtomicBool>,
}

impl Templates {
    /// Starts a watch of the templates in each of `namespaces`, each in a
    /// task of its own for as long as the process runs.
    pub fn watch(client: &Client, namespaces: &[String]) -> Templates {
        let mut stores = BTreeMap::new();
        for ns in namespaces {
            let (store, writer) = reflector::store();
            let healthy = Arc::new(AtomicBool::new(false));
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let mark = healthy.clone();
            let stream = watcher(api, watcher::Config::default().labels(TEMPLATE_LABEL))
                .inspect(move |r| mark.store(r.is_ok(), Ordering::Relaxed))
                .backoff(crate::controller::backoff::WatchBackoff::default())
                .modify(crate::controller::lean::lean)
                .reflect(writer)
                .for_each(|_| futures::future::ready(()));
            tokio::spawn(stream);
            stores.insert(ns.clone(), Watched { store, healthy });
        }
        Templates { stores }
    }

    /// The template `name` from the first of `namespaces` (in search order)
    /// holding it. `None` when none does, or when any of their watches has
    /// not listed yet or last failed: the caller then reads the API server,
    /// which also gives the error.
    pub fn get(&self, namespaces: &[String], name: &str) -> Option<Arc<ConfigMap>> {
        let stores: Vec<(&String, &Watched)> = namespaces
            .iter()
            .map(|ns| Some((ns, self.stores.get(ns)?)))
            .collect::<Option<_>>()?;
        let current = stores.iter().all(|(_, w)| {
            w.healthy.load(Ordering::Relaxed) && w.store.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok())
        });
        if !current {
            return None;
        }
        stores.iter().find_map(|(ns, w)| {
            w.store
                .get(&ObjectRef::new(name).within(ns))
                .filter(|cm| cm.labels().contains_key(TEMPLATE_LABEL))
        })
    }
}
