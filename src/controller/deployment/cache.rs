//! What the Deployment controller reads from its watches instead of the API
//! server: the catalog's template ConfigMaps, the workloads it made (the
//! kinds it watches), and a snapshot of each Deployment's last apply. A pass
//! started by a workload's event, when the Deployment, its template and its
//! parameters are as they were applied, computes health and outputs from
//! these without a request ([`from_cache`], pure); anything missing from a
//! cache falls back to a full pass.

use std::{collections::BTreeMap, sync::Arc};

use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment as AppsDeployment, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, PersistentVolumeClaim},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{apply::Applied, health, inventory};
use crate::{
    api::{
        Deployment,
        deployment::{Health, ResourceStatus},
    },
    catalog::{self, render},
    controller::backoff::WatchBackoff,
};

/// What a full pass applied, for the passes after it.
#[derive(Clone)]
pub struct Snapshot {
    /// The template revision and parameters it was applied for.
    pub revision: String,
    /// Its inventory (health as applied).
    pub inventory: Vec<ResourceStatus>,
    /// The live objects of kinds without a watch, keyed `Kind/name`, as the
    /// apply returned them.
    pub unwatched: BTreeMap<String, Value>,
    /// The `metadata.generation` the apply left on each watched object that
    /// has one, keyed `Kind/name` (from the inventory's
    /// `appliedGeneration`): a spec changed since shows in the cache as
    /// another generation.
    pub generations: BTreeMap<String, i64>,
}

/// The generation each object of a watched kind was applied at, as its
/// inventory entry records it, keyed `Kind/name`.
pub fn applied_generations(
    inventory: &[ResourceStatus],
    watched: impl Fn(&str, &str) -> bool,
) -> BTreeMap<String, i64> {
    inventory
        .iter()
        .filter(|r| watched(&r.api_version, &r.kind))
        .filter_map(|r| Some((format!("{}/{}", r.kind, r.name), r.applied_generation?)))
        .collect()
}

impl Snapshot {
    /// The snapshot of an apply for `revision`; `watched` tells which
    /// objects the caches hold.
    pub fn of(revision: &str, applied: &Applied, watched: impl Fn(&str, &str) -> bool) -> Snapshot {
        let unwatched = applied
            .inventory
            .iter()
            .filter(|r| !watched(&r.api_version, &r.kind))
            .filter_map(|r| {
                let key = format!("{}/{}", r.kind, r.name);
                applied.live.get(&key).map(|v| (key, v.clone()))
            })
            .collect();
        Snapshot {
            revision: revision.to_string(),
            inventory: applied.inventory.clone(),
            unwatched,
            generations: applied_generations(&applied.inventory, watched),
        }
    }

    /// Whether the objects of `applied` (read from the caches) are as this
    /// apply left them, as far as the caches tell: every object is of a
    /// watched kind and has the generation it had after the apply. Then a
    /// resync need not apply them again; anything else (an object without
    /// a watch or a generation, a spec changed since) is applied again.
    pub fn undrifted(&self, applied: &Applied) -> bool {
        // `generations` holds only watched objects with a generation: one
        // entry per object means every object is one.
        applied.inventory.len() == self.generations.len()
            && applied.inventory.iter().all(|r| {
                let key = format!("{}/{}", r.kind, r.name);
                let live = applied.live.get(&key).and_then(generation);
                live.is_some() && live == self.generations.get(&key).copied()
            })
    }
}

/// An object's `metadata.generation`.
fn generation(live: &Value) -> Option<i64> {
    live.pointer("/metadata/generation").and_then(Value::as_i64)
}

/// An object of a watched kind in a cache.
pub enum Cached {
    /// The kind is not watched.
    Unwatched,
    /// Watched, and not there (or not this Deployment's).
    Absent,
    /// Watched and there.
    Live(Value),
}

/// Health and outputs' inputs from the caches, for a Deployment with `uid`
/// whose last apply is `snap`; `None` when anything is missing, or an
/// object no cache holds was not yet current when applied (a full pass then
/// applies and reads it again).
pub fn from_cache(snap: &Snapshot, uid: &str, lookup: impl Fn(&ResourceStatus) -> Cached) -> Option<Applied> {
    let mut applied = Applied {
        inventory: vec![],
        live: BTreeMap::new(),
    };
    for r in &snap.inventory {
        let key = format!("{}/{}", r.kind, r.name);
        let value = match lookup(r) {
            Cached::Live(v)
                if v.pointer(&format!("/metadata/labels/{}", escape(inventory::UID_LABEL)))
                    == Some(&Value::from(uid)) =>
            {
                v
            }
            Cached::Live(_) | Cached::Absent => return None,
            // As the apply saw it: while it was still progressing, only a
            // full pass (which reads it again) can tell how it went on.
            Cached::Unwatched if r.health != Health::Current => return None,
            Cached::Unwatched => snap.unwatched.get(&key)?.clone(),
        };
        let (health, message): (Health, String) = health::health(&r.kind, &value);
        applied.live.insert(key, value);
        applied.inventory.push(ResourceStatus {
            health,
            message: Some(message),
            ..r.clone()
        });
    }
    Some(applied)
}

/// A key as a JSON pointer token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The watched workload kinds' caches, and the catalog's.
#[derive(Clone)]
pub struct Caches {
    /// Template ConfigMaps, by catalog namespace.
    pub templates: BTreeMap<String, Store<ConfigMap>>,
    deployments: Store<AppsDeployment>,
    stateful_sets: Store<StatefulSet>,
    daemon_sets: Store<DaemonSet>,
    jobs: Store<Job>,
    cron_jobs: Store<CronJob>,
    claims: Store<PersistentVolumeClaim>,
}

/// A watch of `K` labelled as a Deployment's, reflected into a store; the
/// stream yields the Deployment of each changed object.
fn reflect<K>(client: &Client) -> (Store<K>, impl Stream<Item = ObjectRef<Deployment>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(
        Api::<K>::all(client.clone()),
        watcher::Config::default().labels(render::DEPLOYMENT_LABEL),
    )
    .backoff(WatchBackoff::default())
    .modify(crate::controller::lean::lean)
    .reflect(writer)
    .touched_objects()
    .filter_map(|r| futures::future::ready(r.ok().and_then(|o| owner(o.meta()))));
    (store, stream)
}

/// The portico Deployment that rendered a child object.
pub fn owner(meta: &kube::api::ObjectMeta) -> Option<ObjectRef<Deployment>> {
    let a = meta.annotations.as_ref()?;
    Some(ObjectRef::new(a.get(render::NAME_ANNOTATION)?).within(a.get(render::NAMESPACE_ANNOTATION)?))
}

impl Caches {
    /// The caches and the streams of their changes, which must be polled
    /// for them to fill: one item per changed template (every Deployment
    /// renders again), and the Deployment of each changed workload.
    pub fn start(
        client: &Client,
        catalog_namespaces: &[String],
    ) -> (
        Caches,
        impl Stream<Item = ()> + Send + 'static,
        impl Stream<Item = ObjectRef<Deployment>> + Send + 'static,
    ) {
        let mut templates = BTreeMap::new();
        let mut template_streams = vec![];
        for ns in catalog_namespaces {
            let (store, writer) = reflector::store();
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            template_streams.push(
                watcher(api, watcher::Config::default().labels(catalog::TEMPLATE_LABEL))
                    .backoff(WatchBackoff::default())
                    .modify(crate::controller::lean::lean)
                    .reflect(writer)
                    .touched_objects()
                    .predicate_filter(kube::runtime::predicates::resource_version, Default::default())
                    .filter_map(|r| futures::future::ready(r.ok().map(|_| ())))
                    .boxed(),
            );
            templates.insert(ns.clone(), store);
        }
        let (deployments, s1) = reflect::<AppsDeployment>(client);
        let (stateful_sets, s2) = reflect::<StatefulSet>(client);
        let (daemon_sets, s3) = reflect::<DaemonSet>(client);
        let (jobs, s4) = reflect::<Job>(client);
        // A CronJob's status (its last run) feeds the scheduled job's outputs.
        let (cron_jobs, s5) = reflect::<CronJob>(client);
        let (claims, s6) = reflect::<PersistentVolumeClaim>(client);
        let owners =
            futures::stream::select_all([s1.boxed(), s2.boxed(), s3.boxed(), s4.boxed(), s5.boxed(), s6.boxed()]);
        let caches = Caches {
            templates,
            deployments,
            stateful_sets,
            daemon_sets,
            jobs,
            cron_jobs,
            claims,
        };
        (caches, futures::stream::select_all(template_streams), owners)
    }

    /// Whether every workload cache has been listed, waiting at most `within`.
    pub async fn listed(&self, within: std::time::Duration) -> bool {
        let all = async {
            let (a, b, c, d, e, f) = futures::join!(
                self.deployments.wait_until_ready(),
                self.stateful_sets.wait_until_ready(),
                self.daemon_sets.wait_until_ready(),
                self.jobs.wait_until_ready(),
                self.cron_jobs.wait_until_ready(),
                self.claims.wait_until_ready(),
            );
            [a.is_ok(), b.is_ok(), c.is_ok(), d.is_ok(), e.is_ok(), f.is_ok()]
                .iter()
                .all(|ok| *ok)
        };
        tokio::time::timeout(within, all).await.unwrap_or(false)
    }

    /// Whether objects of `api_version`/`kind` are watched.
    pub fn watches(api_version: &str, kind: &str) -> bool {
        matches!(
            (api_version, kind),
            ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet")
                | ("batch/v1", "Job" | "CronJob")
                | ("v1", "PersistentVolumeClaim")
        )
    }

    /// An object of the inventory, from its cache.
    pub fn lookup(&self, r: &ResourceStatus) -> Cached {
        fn get<K: Resource<DynamicType = ()> + Clone + Serialize>(s: &Store<K>, r: &ResourceStatus) -> Cached {
            let mut key = ObjectRef::<K>::new(&r.name);
            if let Some(ns) = &r.namespace {
                key = key.within(ns);
            }
            match s.get(&key) {
                Some(o) => Cached::Live(serde_json::to_value(&*o).unwrap_or_default()),
                None => Cached::Absent,
            }
        }
        match (r.api_version.as_str(), r.kind.as_str()) {
            ("apps/v1", "Deployment") => get(&self.deployments, r),
            ("apps/v1", "StatefulSet") => get(&self.stateful_sets, r),
            ("apps/v1", "DaemonSet") => get(&self.daemon_sets, r),
            ("batch/v1", "Job") => get(&self.jobs, r),
            ("batch/v1", "CronJob") => get(&self.cron_jobs, r),
            ("v1", "PersistentVolumeClaim") => get(&self.claims, r),
            _ => Cached::Unwatched,
        }
    }

    /// A template's ConfigMap from the catalog caches: `None` when it is not
    /// there (not yet seen, or absent: the caller reads the API server).
    pub fn template(&self, namespaces: &[String], name: &str) -> Option<Arc<ConfigMap>> {
        namespaces.iter().find_map(|ns| {
            self.templates
                .get(ns)?
                .get(&ObjectRef::new(name).within(ns))
                .filter(|cm| cm.labels().contains_key(catalog::TEMPLATE_LABEL))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(api_version: &str, kind: &str, name: &str) -> ResourceStatus {
        ResourceStatus {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some("team-a".into()),
            name: name.into(),
            health: Health::Current,
            message: None,
            applied_generation: None,
        }
    }

    fn snapshot() -> Snapshot {
        let applied = Applied {
            inventory: vec![entry("v1", "Service", "web"), entry("apps/v1", "Deployment", "web")],
            live: BTreeMap::from([
                ("Service/web".to_string(), json!({"spec": {"clusterIP": "10.0.0.1"}})),
                ("Deployment/web".to_string(), json!({"status": "as applied"})),
            ]),
        };
        Snapshot::of("t@1/abc", &applied, Caches::watches)
    }

    fn workload(uid: &str, available: i64) -> Value {
        json!({"metadata": {"generation": 1, "labels": {inventory::UID_LABEL: uid}},
               "spec": {"replicas": 1},
               "status": {"observedGeneration": 1, "updatedReplicas": available, "availableReplicas": available}})
    }

    #[test]
    fn a_snapshot_keeps_only_what_no_cache_holds() {
        let s = snapshot();
        assert_eq!(s.unwatched.keys().collect::<Vec<_>>(), ["Service/web"]);
        assert_eq!(s.inventory.len(), 2);
    }

    #[test]
    fn health_comes_from_the_cache_and_the_rest_from_the_snapshot() {
        let s = snapshot();
        let lookup = |avail: i64| {
            move |r: &ResourceStatus| match r.kind.as_str() {
                "Deployment" => Cached::Live(workload("u-1", avail)),
                _ => Cached::Unwatched,
            }
        };
        let rolling = from_cache(&s, "u-1", lookup(0)).unwrap();
        assert_eq!(rolling.inventory[1].health, Health::InProgress);
        let ready = from_cache(&s, "u-1", lookup(1)).unwrap();
        assert_eq!(ready.inventory[1].health, Health::Current);
        assert_eq!(ready.live["Service/web"]["spec"]["clusterIP"], "10.0.0.1");
        assert_eq!(ready.live["Deployment/web"]["status"]["availableReplicas"], 1);
    }

    #[test]
    fn a_resync_applies_again_unless_every_object_is_watched_and_at_its_applied_generation() {
        let job =
            |generation: i64| json!({"metadata": {"generation": generation, "labels": {inventory::UID_LABEL: "u-1"}}});
        // Applied at generation 3 (as its inventory entry records); the
        // cache shows `generation`.
        let recorded = ResourceStatus {
            applied_generation: Some(3),
            ..entry("batch/v1", "CronJob", "nightly")
        };
        let applied = |generation: i64| Applied {
            inventory: vec![recorded.clone()],
            live: BTreeMap::from([("CronJob/nightly".to_string(), job(generation))]),
        };
        let snap = Snapshot::of("t@1/abc", &applied(3), Caches::watches);
        assert_eq!(snap.generations["CronJob/nightly"], 3);
        assert!(snap.undrifted(&applied(3)), "as applied: nothing to apply");
        assert!(!snap.undrifted(&applied(4)), "its spec changed since");
        let no_generation = Applied {
            live: BTreeMap::from([("CronJob/nightly".to_string(), json!({"metadata": {}}))]),
            ..applied(3)
        };
        assert!(!snap.undrifted(&no_generation), "nothing to compare: applied again");
        let s = snapshot();
        let cached = Applied {
            inventory: s.inventory.clone(),
            live: BTreeMap::from([
                ("Service/web".to_string(), json!({})),
                ("Deployment/web".to_string(), workload("u-1", 1)),
            ]),
        };
        assert!(!s.undrifted(&cached), "a Service has no watch: applied again");
        // After a restart, from the status alone.
        let restored = Snapshot {
            generations: applied_generations(std::slice::from_ref(&recorded), Caches::watches),
            ..Snapshot::of("t@1/abc", &applied(3), Caches::watches)
        };
        assert!(restored.undrifted(&applied(3)), "restored as applied: nothing to apply");
        assert!(!restored.undrifted(&applied(4)), "changed while no operator ran");
        let unrecorded = [entry("batch/v1", "CronJob", "nightly")];
        let older = Snapshot {
            generations: applied_generations(&unrecorded, Caches::watches),
            ..Snapshot::of("t@1/abc", &applied(3), Caches::watches)
        };
        assert!(
            !older.undrifted(&applied(3)),
            "no generation recorded (a status from before appliedGeneration): applied again"
        );
    }

    #[test]
    fn a_missing_or_foreign_object_needs_a_full_pass() {
        let s = snapshot();
        let absent = |r: &ResourceStatus| match r.kind.as_str() {
            "Deployment" => Cached::Absent,
            _ => Cached::Unwatched,
        };
        assert!(from_cache(&s, "u-1", absent).is_none());
        let foreign = |r: &ResourceStatus| match r.kind.as_str() {
            "Deployment" => Cached::Live(workload("someone-else", 1)),
            _ => Cached::Unwatched,
        };
        assert!(
            from_cache(&s, "u-1", foreign).is_none(),
            "replaced by an object not made here"
        );
        let mut lost = s.clone();
        lost.unwatched.clear();
        assert!(from_cache(&lost, "u-1", |_| Cached::Unwatched).is_none());
    }

    #[test]
    fn an_object_no_cache_holds_that_was_still_progressing_needs_a_full_pass() {
        let mut s = snapshot();
        let live = |r: &ResourceStatus| match r.kind.as_str() {
            "Deployment" => Cached::Live(workload("u-1", 1)),
            _ => Cached::Unwatched,
        };
        assert!(from_cache(&s, "u-1", live).is_some());
        let service = s.inventory.iter_mut().find(|r| r.kind == "Service").unwrap();
        service.health = Health::InProgress;
        assert!(
            from_cache(&s, "u-1", live).is_none(),
            "its health as applied would never change"
        );
    }
}
