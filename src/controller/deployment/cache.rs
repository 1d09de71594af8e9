//! What the Deployment controller reads from its watches instead of the API
//! server: the catalog's template ConfigMaps, the objects it made of the
//! kinds it watches (workloads and claims for their health; Services and
//! ConfigMaps to tell whether one changed since its apply, and what outputs
//! read of them), the metadata of the Secrets, ServiceAccounts, Roles and
//! RoleBindings it made (whether one changed since), and a snapshot of each
//! Deployment's last apply. A pass started by a workload's event, when the
//! Deployment, its template and its parameters are as they were applied,
//! computes health and outputs from these without a request
//! ([`from_cache`], pure); anything missing from a cache falls back to a
//! full pass.

use std::{collections::BTreeMap, sync::Arc};

use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment as AppsDeployment, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::PartialObjectMeta,
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
    /// The live objects of kinds whose health no watch reports, keyed
    /// `Kind/name`, as the apply returned them.
    pub unwatched: BTreeMap<String, Value>,
    /// What the apply left on each object a cache holds, keyed `Kind/name`
    /// (from the inventory's `appliedGeneration` or
    /// `appliedResourceVersion`): a change since shows in the cache as
    /// another generation, or for a kind without one, another
    /// resourceVersion.
    pub applied_at: BTreeMap<String, AppliedAt>,
}

/// What an apply left on an object, to tell whether it changed since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppliedAt {
    /// Its `metadata.generation` (a kind with one: its status may change
    /// without it).
    Generation(i64),
    /// Its `metadata.resourceVersion` (a kind without a generation: any
    /// write since changes it).
    ResourceVersion(String),
}

/// What the apply left on each object of a kind a cache holds
/// ([`Caches::vouches`]), as its inventory entry records it, keyed
/// `Kind/name`.
pub fn applied_at(inventory: &[ResourceStatus]) -> BTreeMap<String, AppliedAt> {
    inventory
        .iter()
        .filter(|r| Caches::vouches(&r.api_version, &r.kind))
        .filter_map(|r| {
            let at = match (r.applied_generation, &r.applied_resource_version) {
                (Some(g), _) => AppliedAt::Generation(g),
                (None, Some(v)) => AppliedAt::ResourceVersion(v.clone()),
                (None, None) => return None,
            };
            Some((format!("{}/{}", r.kind, r.name), at))
        })
        .collect()
}

impl Snapshot {
    /// The snapshot of an apply for `revision`.
    pub fn of(revision: &str, applied: &Applied) -> Snapshot {
        let unwatched = applied
            .inventory
            .iter()
            .filter(|r| !Caches::watches(&r.api_version, &r.kind))
            .filter_map(|r| {
                let key = format!("{}/{}", r.kind, r.name);
                applied.live.get(&key).map(|v| (key, v.clone()))
            })
            .collect();
        Snapshot {
            revision: revision.to_string(),
            inventory: applied.inventory.clone(),
            unwatched,
            applied_at: applied_at(&applied.inventory),
        }
    }

    /// Whether the objects of this apply are as it left them, as far as
    /// the caches (`lookup`, as [`Caches::current`]) tell: every object is
    /// in a cache and shows the generation (or, without one, the
    /// resourceVersion) it had after the apply. Then a resync need not apply them again; anything else (an
    /// object no cache holds, one without a record, a change since, one
    /// gone) is applied again.
    pub fn undrifted(&self, lookup: impl Fn(&ResourceStatus) -> Cached) -> bool {
        self.inventory.iter().all(|r| {
            let Cached::Live(live) = lookup(r) else {
                return false;
            };
            match self.applied_at.get(&format!("{}/{}", r.kind, r.name)) {
                Some(AppliedAt::Generation(g)) => generation(&live) == Some(*g),
                Some(AppliedAt::ResourceVersion(v)) => resource_version(&live) == Some(v.as_str()),
                None => false,
            }
        })
    }
}

/// An object's `metadata.generation`.
fn generation(live: &Value) -> Option<i64> {
    live.pointer("/metadata/generation").and_then(Value::as_i64)
}

/// An object's `metadata.resourceVersion`.
fn resource_version(live: &Value) -> Option<&str> {
    live.pointer("/metadata/resourceVersion").and_then(Value::as_str)
}

/// An object in a cache.
pub enum Cached {
    /// No cache holds its kind.
    Unwatched,
    /// Its kind is cached, and it is not there.
    Absent,
    /// It is there.
    Live(Value),
}

/// Health and outputs' inputs from the caches, for a Deployment with `uid`
/// whose last apply is `snap`; `None` when anything is missing, or an
/// object whose health no watch reports was not yet current when applied
/// (a full pass then applies and reads it again). Objects of kinds without
/// health of their own to watch (Services, ConfigMaps) are taken as the
/// apply returned them, as a cache may not have shown the apply yet.
pub fn from_cache(snap: &Snapshot, uid: &str, lookup: impl Fn(&ResourceStatus) -> Cached) -> Option<Applied> {
    let mut applied = Applied {
        inventory: vec![],
        live: BTreeMap::new(),
    };
    for r in &snap.inventory {
        let key = format!("{}/{}", r.kind, r.name);
        let cached = if Caches::watches(&r.api_version, &r.kind) {
            lookup(r)
        } else {
            Cached::Unwatched
        };
        let value = match cached {
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

/// The key of an inventory entry's object in a cache of `K`.
fn key<K: Resource<DynamicType = ()>>(r: &ResourceStatus) -> ObjectRef<K> {
    let key = ObjectRef::<K>::new(&r.name);
    match &r.namespace {
        Some(ns) => key.within(ns),
        None => key,
    }
}

/// The watched kinds' caches, and the catalog's.
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
    services: Store<Service>,
    config_maps: Store<ConfigMap>,
    secrets: Store<PartialObjectMeta<Secret>>,
    service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    roles: Store<PartialObjectMeta<Role>>,
    role_bindings: Store<PartialObjectMeta<RoleBinding>>,
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
        // Services and ConfigMaps: the caches show whether one changed since
        // its apply (its resourceVersion) and hold what outputs read (a
        // Service's address), so neither a resync nor a restarted operator
        // reads or applies them while they are as applied. No health to
        // report: a change to one starts no pass.
        let (services, s7) = reflect::<Service>(client);
        let (config_maps, s8) = reflect::<ConfigMap>(client);
        // Secrets, ServiceAccounts, Roles and RoleBindings: their metadata
        // only (no Secret's data is held), for the same question at a
        // resync. A restarted operator reads them; their content is not here.
        let (secrets, s9) = reflect::<PartialObjectMeta<Secret>>(client);
        let (service_accounts, s10) = reflect::<PartialObjectMeta<ServiceAccount>>(client);
        let (roles, s11) = reflect::<PartialObjectMeta<Role>>(client);
        let (role_bindings, s12) = reflect::<PartialObjectMeta<RoleBinding>>(client);
        let unreported = futures::stream::select_all([
            s7.boxed(),
            s8.boxed(),
            s9.boxed(),
            s10.boxed(),
            s11.boxed(),
            s12.boxed(),
        ])
        .filter_map(|_| futures::future::ready(None));
        let owners = futures::stream::select_all([
            s1.boxed(),
            s2.boxed(),
            s3.boxed(),
            s4.boxed(),
            s5.boxed(),
            s6.boxed(),
            unreported.boxed(),
        ]);
        let caches = Caches {
            templates,
            deployments,
            stateful_sets,
            daemon_sets,
            jobs,
            cron_jobs,
            claims,
            services,
            config_maps,
            secrets,
            service_accounts,
            roles,
            role_bindings,
        };
        (caches, futures::stream::select_all(template_streams), owners)
    }

    /// Whether every cache of made objects has been listed, waiting at most `within`.
    pub async fn listed(&self, within: std::time::Duration) -> bool {
        let all = async {
            let (a, b, c, d, e, f, g, h) = futures::join!(
                self.deployments.wait_until_ready(),
                self.stateful_sets.wait_until_ready(),
                self.daemon_sets.wait_until_ready(),
                self.jobs.wait_until_ready(),
                self.cron_jobs.wait_until_ready(),
                self.claims.wait_until_ready(),
                self.services.wait_until_ready(),
                self.config_maps.wait_until_ready(),
            );
            [a, b, c, d, e, f, g, h].iter().all(Result::is_ok)
        };
        tokio::time::timeout(within, all).await.unwrap_or(false)
    }

    /// Whether objects of `api_version`/`kind` are watched for their
    /// health: a pass takes them from their cache.
    pub fn watches(api_version: &str, kind: &str) -> bool {
        matches!(
            (api_version, kind),
            ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet")
                | ("batch/v1", "Job" | "CronJob")
                | ("v1", "PersistentVolumeClaim")
        )
    }

    /// Whether a cache holds objects of `api_version`/`kind`, so it can
    /// tell whether one changed since its apply: the watched kinds;
    /// Services and ConfigMaps (their own health is never in progress; a
    /// pass takes them as applied, a restarted operator from the cache);
    /// and by their metadata, Secrets, ServiceAccounts, Roles and
    /// RoleBindings.
    pub fn vouches(api_version: &str, kind: &str) -> bool {
        Caches::watches(api_version, kind)
            || matches!(
                (api_version, kind),
                ("v1", "Service" | "ConfigMap" | "Secret" | "ServiceAccount")
                    | ("rbac.authorization.k8s.io/v1", "Role" | "RoleBinding")
            )
    }

    /// An object of the inventory as a cache shows it now, for every kind
    /// a cache [vouches](Caches::vouches) for: whole, or for the kinds whose
    /// metadata alone is held, `{"metadata": …}` (enough to tell whether it
    /// changed since its apply).
    pub fn current(&self, r: &ResourceStatus) -> Cached {
        fn meta<K: Resource<DynamicType = ()> + Clone>(s: &Store<PartialObjectMeta<K>>, r: &ResourceStatus) -> Cached {
            match s.get(&key(r)) {
                Some(o) => Cached::Live(serde_json::json!({ "metadata": o.metadata })),
                None => Cached::Absent,
            }
        }
        match (r.api_version.as_str(), r.kind.as_str()) {
            ("v1", "Secret") => meta(&self.secrets, r),
            ("v1", "ServiceAccount") => meta(&self.service_accounts, r),
            ("rbac.authorization.k8s.io/v1", "Role") => meta(&self.roles, r),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => meta(&self.role_bindings, r),
            _ => self.lookup(r),
        }
    }

    /// An object of the inventory, whole, from its cache: `Unwatched` for
    /// the kinds no cache holds whole.
    pub fn lookup(&self, r: &ResourceStatus) -> Cached {
        fn get<K: Resource<DynamicType = ()> + Clone + Serialize>(s: &Store<K>, r: &ResourceStatus) -> Cached {
            match s.get(&key(r)) {
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
            ("v1", "Service") => get(&self.services, r),
            ("v1", "ConfigMap") => get(&self.config_maps, r),
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
            applied_resource_version: None,
        }
    }

    fn snapshot() -> Snapshot {
        let applied = Applied {
            inventory: vec![entry("v1", "Secret", "web"), entry("apps/v1", "Deployment", "web")],
            live: BTreeMap::from([
                ("Secret/web".to_string(), json!({"data": {"password": "cGFzcw=="}})),
                ("Deployment/web".to_string(), json!({"status": "as applied"})),
            ]),
        };
        Snapshot::of("t@1/abc", &applied)
    }

    fn workload(uid: &str, available: i64) -> Value {
        json!({"metadata": {"generation": 1, "labels": {inventory::UID_LABEL: uid}},
               "spec": {"replicas": 1},
               "status": {"observedGeneration": 1, "updatedReplicas": available, "availableReplicas": available}})
    }

    #[test]
    fn a_snapshot_keeps_only_what_no_cache_holds() {
        let s = snapshot();
        assert_eq!(s.unwatched.keys().collect::<Vec<_>>(), ["Secret/web"]);
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
        assert_eq!(ready.live["Secret/web"]["data"]["password"], "cGFzcw==");
        assert_eq!(ready.live["Deployment/web"]["status"]["availableReplicas"], 1);
    }

    /// The caches as `live` (keyed `Kind/name`) shows them.
    fn caches(live: BTreeMap<String, Value>) -> impl Fn(&ResourceStatus) -> Cached {
        move |r| {
            if !Caches::vouches(&r.api_version, &r.kind) {
                return Cached::Unwatched;
            }
            live.get(&format!("{}/{}", r.kind, r.name))
                .map_or(Cached::Absent, |v| Cached::Live(v.clone()))
        }
    }

    #[test]
    fn a_resync_applies_again_unless_every_object_is_cached_and_at_its_applied_generation() {
        let job =
            |generation: i64| json!({"metadata": {"generation": generation, "labels": {inventory::UID_LABEL: "u-1"}}});
        // Applied at generation 3 (as its inventory entry records); the
        // cache shows `generation`.
        let recorded = ResourceStatus {
            applied_generation: Some(3),
            ..entry("batch/v1", "CronJob", "nightly")
        };
        let applied = Applied {
            inventory: vec![recorded.clone()],
            live: BTreeMap::from([("CronJob/nightly".to_string(), job(3))]),
        };
        let cached = |generation: i64| caches(BTreeMap::from([("CronJob/nightly".to_string(), job(generation))]));
        let snap = Snapshot::of("t@1/abc", &applied);
        assert_eq!(snap.applied_at["CronJob/nightly"], AppliedAt::Generation(3));
        assert!(snap.undrifted(cached(3)), "as applied: nothing to apply");
        assert!(!snap.undrifted(cached(4)), "its spec changed since");
        assert!(!snap.undrifted(caches(BTreeMap::new())), "gone since");
        let no_generation = caches(BTreeMap::from([(
            "CronJob/nightly".to_string(),
            json!({"metadata": {}}),
        )]));
        assert!(!snap.undrifted(no_generation), "nothing to compare: applied again");
        // A NetworkPolicy (no cache holds the kind) beside a Deployment as applied.
        let mut inventory = snapshot().inventory;
        inventory[0] = ResourceStatus {
            applied_generation: Some(1),
            ..entry("networking.k8s.io/v1", "NetworkPolicy", "web")
        };
        inventory[1].applied_generation = Some(1);
        let with_secret = Snapshot::of(
            "t@1/abc",
            &Applied {
                inventory: inventory.clone(),
                live: BTreeMap::new(),
            },
        );
        let deployment = || BTreeMap::from([("Deployment/web".to_string(), workload("u-1", 1))]);
        assert!(
            !with_secret.undrifted(caches(deployment())),
            "a NetworkPolicy has no cache: applied again"
        );
        let alone = Snapshot::of(
            "t@1/abc",
            &Applied {
                inventory: vec![inventory[1].clone()],
                live: BTreeMap::new(),
            },
        );
        assert!(
            alone.undrifted(caches(deployment())),
            "the Deployment alone is as applied"
        );
        // After a restart, from the status alone.
        let restored = Snapshot {
            applied_at: applied_at(std::slice::from_ref(&recorded)),
            ..Snapshot::of("t@1/abc", &applied)
        };
        assert!(restored.undrifted(cached(3)), "restored as applied: nothing to apply");
        assert!(!restored.undrifted(cached(4)), "changed while no operator ran");
        let unrecorded = [entry("batch/v1", "CronJob", "nightly")];
        let older = Snapshot {
            applied_at: applied_at(&unrecorded),
            ..Snapshot::of("t@1/abc", &applied)
        };
        assert!(
            !older.undrifted(cached(3)),
            "no generation recorded (a status from before appliedGeneration): applied again"
        );
    }

    #[test]
    fn kinds_without_a_generation_are_as_applied_while_their_resource_version_is() {
        let at = |kind: &str, name: &str, rv: &str| ResourceStatus {
            applied_resource_version: Some(rv.into()),
            ..entry("v1", kind, name)
        };
        let recorded = vec![
            at("ConfigMap", "web-config", "41"),
            at("Service", "web", "42"),
            at("Secret", "web-credentials", "43"),
        ];
        let live = |service_rv: &str| {
            BTreeMap::from([
                (
                    "ConfigMap/web-config".to_string(),
                    json!({"metadata": {"resourceVersion": "41"}}),
                ),
                (
                    "Service/web".to_string(),
                    json!({"metadata": {"resourceVersion": service_rv}, "spec": {"clusterIP": "10.0.0.1"}}),
                ),
                // A Secret's cache holds its metadata only.
                (
                    "Secret/web-credentials".to_string(),
                    json!({"metadata": {"resourceVersion": "43"}}),
                ),
            ])
        };
        let applied = Applied {
            inventory: recorded.clone(),
            live: live("42"),
        };
        let snap = Snapshot::of("t@1/abc", &applied);
        assert_eq!(snap.applied_at["Service/web"], AppliedAt::ResourceVersion("42".into()));
        assert!(snap.undrifted(caches(live("42"))), "nothing wrote either since");
        assert!(!snap.undrifted(caches(live("57"))), "the Service was written since");
        let mut secret_written = live("42");
        secret_written.insert(
            "Secret/web-credentials".to_string(),
            json!({"metadata": {"resourceVersion": "58"}}),
        );
        assert!(!snap.undrifted(caches(secret_written)), "the Secret was written since");
        // A pass takes them as the apply returned them (a cache may not
        // show the apply yet, nor hold a Secret's data), not from the cache.
        assert_eq!(snap.unwatched.len(), 3);
        let passed = from_cache(&snap, "u-1", |_| Cached::Absent).unwrap();
        assert_eq!(passed.live["Service/web"]["spec"]["clusterIP"], "10.0.0.1");
        // Restored from the status after a restart: the same.
        let restored = Snapshot {
            applied_at: applied_at(&recorded),
            ..snap.clone()
        };
        assert!(restored.undrifted(caches(live("42"))));
        assert!(!restored.undrifted(caches(live("57"))));
        let unrecorded: Vec<ResourceStatus> = recorded
            .iter()
            .map(|r| ResourceStatus {
                applied_resource_version: None,
                ..r.clone()
            })
            .collect();
        let older = Snapshot {
            applied_at: applied_at(&unrecorded),
            ..snap
        };
        assert!(
            !older.undrifted(caches(live("42"))),
            "no resourceVersion recorded (a status from before appliedResourceVersion): applied again"
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
        let service = s.inventory.iter_mut().find(|r| r.kind == "Secret").unwrap();
        service.health = Health::InProgress;
        assert!(
            from_cache(&s, "u-1", live).is_none(),
            "its health as applied would never change"
        );
    }
}
