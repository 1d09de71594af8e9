//! The catalog's templates as a watch of each catalog namespace sees them,
//! for the admission webhook (every replica): a Deployment's create or
//! change reads its template here instead of from the API server.

use std::{collections::BTreeMap, sync::Arc};

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
    stores: BTreeMap<String, Store<ConfigMap>>,
}

impl Templates {
    /// Starts a watch of the templates in each of `namespaces`, each in a
    /// task of its own for as long as the process runs.
    pub fn watch(client: &Client, namespaces: &[String]) -> Templates {
        let mut stores = BTreeMap::new();
        for ns in namespaces {
            let (store, writer) = reflector::store();
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let stream = watcher(api, watcher::Config::default().labels(TEMPLATE_LABEL))
                .backoff(crate::controller::backoff::WatchBackoff::default())
                .modify(crate::controller::lean::lean)
                .reflect(writer)
                .for_each(|_| futures::future::ready(()));
            tokio::spawn(stream);
            stores.insert(ns.clone(), store);
        }
        Templates { stores }
    }

    /// The template `name` from the first of `namespaces` (in search order)
    /// holding it. `None` when none does, or when any of them has not been
    /// listed yet: the caller then reads the API server, which also gives
    /// the error.
    pub fn get(&self, namespaces: &[String], name: &str) -> Option<Arc<ConfigMap>> {
        let stores: Vec<(&String, &Store<ConfigMap>)> = namespaces
            .iter()
            .map(|ns| Some((ns, self.stores.get(ns)?)))
            .collect::<Option<_>>()?;
        let listed = stores
            .iter()
            .all(|(_, s)| s.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok()));
        if !listed {
            return None;
        }
        stores.iter().find_map(|(ns, store)| {
            store
                .get(&ObjectRef::new(name).within(ns))
                .filter(|cm| cm.labels().contains_key(TEMPLATE_LABEL))
        })
    }
}
