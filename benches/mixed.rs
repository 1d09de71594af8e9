//! Mixed-load benchmark (prints figures, asserts nothing):
//! `cargo bench --bench mixed -- [TERMINALS] [DEPLOYMENTS] [SESSIONS] [KILLS]`.
//!
//! Starts a control plane and the operator (release build); the benchmark
//! marks every pod Running and Ready as a kubelet would (the control plane
//! has no node). Three rounds, each created at once (64 create calls in
//! flight, the kinds shuffled together) by alice, bob and carol:
//!
//! 1. the anchor: TERMINALS (200) Terminals alone;
//! 2. TERMINALS Terminals, DEPLOYMENTS (100) web-app Deployments and
//!    SESSIONS (50) SessionClaims at once;
//! 3. the same with the operator killed (SIGKILL) and started again KILLS (3)
//!    times at random moments while its work is in flight (within the time
//!    round 2 took); a create refused while the webhook is down is made
//!    again, as a client would. The round's time is until everything is
//!    Ready (a kill drawn after that still happens, for the count of
//!    children, but adds nothing).
//!
//! For each round it prints create→Ready per kind and the time until
//! everything is Ready (and how many times the anchor's that is), the create
//! calls, the operator's requests per object and the answers 429 (too many
//! requests) the API server gave the operator and everyone else. After round
//! 3 it counts each object's children (every object of a kind must have the
//! same: a duplicate shows as a second shape); after rounds 2 and 3 it
//! deletes everything and counts what the operator's labels still mark.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::{
    apps::v1::Deployment as AppsDeployment,
    core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use portico::api::{
    Deployment, SessionClaim, Terminal,
    keys::{DEPLOYMENT_LABEL, DEPLOYMENT_UID_LABEL, SESSION_UID_LABEL, TERMINAL_UID_LABEL},
};
use rand::{RngExt, SeedableRng, seq::SliceRandom};
use serde_json::json;

const SESSIONS_NAMESPACE: &str = "portico-sessions";
/// Who creates what: Terminals and Deployments in their team's namespace;
/// sessions are claimed by alice and carol (the profile grants team-a).
const USERS: [(&str, &str, &str); 3] = [
    ("alice", "team-a", "developers"),
    ("bob", "team-b", "developers"),
    ("carol", "team-a", "portico-admins"),
];
const ROUND_LIMIT: Duration = Duration::from_secs(900);

const CONFIG: &str = "leaderElection: {enabled: false}
controller: {concurrency: 16}
sessionProfiles:
  - name: bench
    allowedGroups: [developers, portico-admins]
    grants:
      - namespaces: {selector: {matchLabels: {team: a}}}
        role: {kind: ClusterRole, name: edit}
    maxActivePerUser: 100000
";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Kind {
    Terminal,
    Deployment,
    SessionClaim,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Terminal, Kind::Deployment, Kind::SessionClaim];

    fn resource(self) -> ApiResource {
        match self {
            Kind::Terminal => ApiResource::erase::<Terminal>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::SessionClaim => ApiResource::erase::<SessionClaim>(&()),
        }
    }

    /// The `i`-th object of this kind in `round`: who creates it, where, and the object.
    fn object(self, round: &str, i: usize) -> (&'static str, &'static str, DynamicObject) {
        let labels = json!({"bench": round});
        let (user, ns, body) = match self {
            Kind::Terminal => {
                let (user, ns, _) = USERS[i % 3];
                let body = json!({
                    "metadata": {"name": format!("{round}-t{i}"), "labels": labels},
                    "spec": {
                        "host": {"namespace": ns, "pod": {"image": "alpine"}},
                        "target": {"namespace": ns, "roleBindings": [
                            {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "edit"}]},
                        "idleTimeout": "30m"}});
                (user, ns, body)
            }
            Kind::Deployment => {
                let (user, ns, _) = USERS[i % 2];
                let body = json!({
                    "metadata": {"name": format!("{round}-d{i}"), "labels": labels},
                    "spec": {"template": {"name": "webapp"}, "parameters": {"image": "nginx:1.27"}}});
                (user, ns, body)
            }
            Kind::SessionClaim => {
                let user = if i.is_multiple_of(2) { "alice" } else { "carol" };
                let body = json!({
                    "metadata": {"name": format!("{round}-s{i}"), "labels": labels},
                    "spec": {"profile": "bench", "idleTimeout": "30m"}});
                (user, SESSIONS_NAMESPACE, body)
            }
        };
        let ar = self.resource();
        let mut object: DynamicObject = serde_json::from_value(body).unwrap();
        object.types = Some(kube::api::TypeMeta {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
        });
        (user, ns, object)
    }
}

/// What the benchmark's watches saw: when each object ("Kind/ns/name") was
/// first Ready, and which exist.
#[derive(Default)]
struct Seen {
    ready: HashMap<String, Instant>,
    live: HashSet<String>,
    /// When the apps/v1 Deployment a Portico Deployment made had all its
    /// replicas available (keyed like the Portico Deployment).
    available: HashMap<String, Instant>,
}

fn key(kind: Kind, ns: &str, name: &str) -> String {
    format!("{}{ns}/{name}", prefix(kind))
}

/// How every [`key`] of `kind` begins.
fn prefix(kind: Kind) -> String {
    format!("{kind:?}/")
}

fn is_ready(o: &DynamicObject) -> bool {
    o.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Watches every object of `kind` into `seen`.
fn watch(admin: Client, kind: Kind, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::all_with(admin, &kind.resource());
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        // A list (the first, or again after an error) replaces what the
        // watch of this kind had seen live, once it is complete.
        let mut listing = HashSet::new();
        let prefix = prefix(kind);
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { continue };
            let mut seen = seen.lock().unwrap();
            match event {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    let k = key(kind, &o.namespace().unwrap_or_default(), &o.name_any());
                    if is_ready(&o) {
                        seen.ready.entry(k.clone()).or_insert_with(Instant::now);
                    }
                    listing.insert(k.clone());
                    seen.live.insert(k);
                }
                watcher::Event::Delete(o) => {
                    seen.live
                        .remove(&key(kind, &o.namespace().unwrap_or_default(), &o.name_any()));
                }
                watcher::Event::Init => listing.clear(),
                watcher::Event::InitDone => {
                    seen.live.retain(|k| !k.starts_with(&prefix) || listing.contains(k));
                }
            }
        }
    })
}

/// Watches the apps/v1 Deployments Portico's Deployments made, into `seen.available`.
fn watch_workloads(admin: Client, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<AppsDeployment> = Api::all(admin);
        let stream = watcher(api, watcher::Config::default().labels(DEPLOYMENT_LABEL))
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Some(d) = stream.next().await {
            let Ok(d) = d else { continue };
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) < want {
                continue;
            }
            let Some(owner) = d.labels().get(DEPLOYMENT_LABEL) else {
                continue;
            };
            let k = key(Kind::Deployment, &d.namespace().unwrap_or_default(), owner);
            seen.lock().unwrap().available.entry(k).or_insert_with(Instant::now);
        }
    })
}

/// One object a round creates.
struct Item {
    kind: Kind,
    user: &'static str,
    ns: &'static str,
    object: DynamicObject,
}

/// How a create went: when it was first tried, how long the successful
/// call took, and how many calls were refused before it.
struct Created {
    kind: Kind,
    key: String,
    first_try: Instant,
    call: Duration,
    refused: usize,
}

/// Creates `item` as its user, again (after 200 ms) while the API server or
/// webhook refuses it for any reason but the object existing, for at most a minute.
async fn create(clients: &HashMap<&str, Client>, item: &Item) -> Created {
    let api: Api<DynamicObject> = Api::namespaced_with(clients[item.user].clone(), item.ns, &item.kind.resource());
    let first_try = Instant::now();
    let mut refused = 0;
    loop {
        let t0 = Instant::now();
        match api.create(&PostParams::default(), &item.object).await {
            // Created, or created by an earlier call that seemed to fail.
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) if first_try.elapsed() > Duration::from_secs(60) => {
                panic!("creating {}: {e}", item.object.name_any())
            }
            Err(_) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        return Created {
            kind: item.kind,
            key: key(item.kind, item.ns, &item.object.name_any()),
            first_try,
            call: t0.elapsed(),
            refused,
        };
    }
}

/// The figures of one round.
struct Round {
    total: Duration,
    ready: usize,
    objects: usize,
}

/// Everything the benchmark needs between rounds.
struct Bench {
    cp: portico::controlplane::ControlPlane,
    admin: Client,
    clients: HashMap<&'static str, Client>,
    seen: Arc<Mutex<Seen>>,
    config: std::path::PathBuf,
    port: u16,
    /// The running operator; replaced when it is killed.
    op: Option<operator::Operator>,
    /// The highest peak RSS (MiB) of any operator process so far, and the CPU seconds of those gone.
    peak_rss: f64,
    cpu_gone: f64,
}

impl Bench {
    fn items(round: &str, counts: [usize; 3], seed: u64) -> Vec<Item> {
        let mut items: Vec<Item> = Kind::ALL
            .iter()
            .zip(counts)
            .flat_map(|(&kind, n)| {
                (0..n).map(move |i| {
                    let (user, ns, object) = kind.object(round, i);
                    Item { kind, user, ns, object }
                })
            })
            .collect();
        items.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        items
    }

    fn note_operator(&mut self) {
        if let Some(op) = &self.op {
            let (rss, _) = common::usage(op.process.pid());
            self.peak_rss = self.peak_rss.max(rss);
        }
    }

    /// Kills the operator (SIGKILL) and starts it again.
    async fn kill_operator(&mut self) {
        self.note_operator();
        if let Some(op) = self.op.take() {
            self.cpu_gone += common::usage(op.process.pid()).1;
            drop(op);
        }
        self.op = Some(operator::Operator::start(&self.cp, self.config.clone(), self.port).await);
    }

    async fn round(&mut self, round: &str, counts: [usize; 3], kills: &[Duration]) -> Round {
        let items = Self::items(round, counts, rand::random());
        let audit_before = self.cp.audit_events().len();
        let start = Instant::now();
        let clients = self.clients.clone();
        let creates = stream::iter(items.iter())
            .map(|item| create(&clients, item))
            .buffer_unordered(64)
            .collect::<Vec<Created>>();
        let seen = self.seen.clone();
        let keys: Vec<String> = items.iter().map(|i| key(i.kind, i.ns, &i.object.name_any())).collect();
        let all_ready = {
            let keys = keys.clone();
            move || {
                let seen = seen.lock().unwrap();
                keys.iter().all(|k| seen.ready.contains_key(k))
            }
        };
        let ((created, total), ()) = tokio::join!(
            async {
                let created = creates.await;
                common::wait_until(
                    &format!("everything of round {round} to be Ready"),
                    ROUND_LIMIT,
                    &all_ready,
                )
                .await;
                (created, start.elapsed())
            },
            async {
                for at in kills {
                    tokio::time::sleep_until((start + *at).into()).await;
                    eprintln!("killing the operator at {:.1} s", start.elapsed().as_secs_f64());
                    self.kill_operator().await;
                }
            }
        );
        self.note_operator();
        let seen = self.seen.lock().unwrap();
        let ready = keys.iter().filter(|k| seen.ready.contains_key(*k)).count();
        println!(
            "round {round}: {} Terminals, {} Deployments, {} SessionClaims at once{}; {ready} of {} Ready, all in {total:?}",
            counts[0],
            counts[1],
            counts[2],
            if kills.is_empty() {
                String::new()
            } else {
                format!(
                    "; the operator killed at {}",
                    kills
                        .iter()
                        .map(|k| format!("{:.1} s", k.as_secs_f64()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            keys.len()
        );
        for kind in Kind::ALL {
            let of: Vec<&Created> = created.iter().filter(|c| c.kind == kind).collect();
            if of.is_empty() {
                continue;
            }
            let to_ready: Vec<Duration> = of
                .iter()
                .filter_map(|c| seen.ready.get(&c.key).map(|r| r.saturating_duration_since(c.first_try)))
                .collect();
            let calls: Vec<Duration> = of.iter().map(|c| c.call).collect();
            let refused: usize = of.iter().map(|c| c.refused).sum();
            println!(
                "  {kind:?}: first create call -> Ready {}; create call {}; calls refused and made again {refused}",
                common::spread(&to_ready),
                common::spread(&calls)
            );
            if kind == Kind::Deployment {
                let to_available: Vec<Duration> = of
                    .iter()
                    .filter_map(|c| {
                        seen.available
                            .get(&c.key)
                            .map(|a| a.saturating_duration_since(c.first_try))
                    })
                    .collect();
                let lag: Vec<Duration> = of
                    .iter()
                    .filter_map(|c| {
                        let (a, r) = (seen.available.get(&c.key)?, seen.ready.get(&c.key)?);
                        Some(r.saturating_duration_since(*a))
                    })
                    .collect();
                println!(
                    "    first create call -> its apps/v1 Deployment available {}; then -> Ready {}",
                    common::spread(&to_available),
                    common::spread(&lag)
                );
            }
        }
        drop(seen);
        let events: Vec<_> = self.cp.audit_events().into_iter().skip(audit_before).collect();
        let is_operator = |e: &portico::controlplane::audit::Event| {
            e.user.username.starts_with("system:serviceaccount:portico-system:")
        };
        let operator = events.iter().filter(|e| is_operator(e)).count();
        let throttled = |mine: bool| {
            events
                .iter()
                .filter(|e| is_operator(e) == mine && e.code() == 429)
                .count()
        };
        println!(
            "  API requests by the operator and its webhook: {:.1} per object; answers 429 (too many requests): {} to the operator, {} to other clients",
            operator as f64 / keys.len() as f64,
            throttled(true),
            throttled(false)
        );
        Round {
            total,
            ready,
            objects: keys.len(),
        }
    }

    /// Deletes every object of `round` and waits until they are gone (their cleanup done).
    async fn delete(&self, round: &str) -> Duration {
        let start = Instant::now();
        let lp = ListParams::default().labels(&format!("bench={round}"));
        for kind in Kind::ALL {
            for ns in ["team-a", "team-b", SESSIONS_NAMESPACE] {
                let api: Api<DynamicObject> = Api::namespaced_with(self.admin.clone(), ns, &kind.resource());
                let _ = api.delete_collection(&DeleteParams::default(), &lp).await;
            }
        }
        let prefix: Vec<String> = Kind::ALL.iter().map(|k| format!("{k:?}/")).collect();
        let seen = self.seen.clone();
        let marker = format!("/{round}-");
        common::wait_until(&format!("round {round}'s objects to go"), ROUND_LIMIT, || {
            !seen
                .lock()
                .unwrap()
                .live
                .iter()
                .any(|k| k.contains(&marker) && prefix.iter().any(|p| k.starts_with(p)))
        })
        .await;
        start.elapsed()
    }
}

/// The number of objects of `K` carrying `label`, by its value (the owner's UID).
async fn by_owner<K>(admin: &Client, label: &str) -> HashMap<String, usize>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::all(admin.clone());
    let list = api.list_metadata(&ListParams::default().labels(label)).await.unwrap();
    let mut n: HashMap<String, usize> = HashMap::new();
    for o in list.items {
        if o.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(v) = o.labels().get(label) {
            *n.entry(v.clone()).or_default() += 1;
        }
    }
    n
}

/// For each label an owner kind marks its children with: the children of
/// every kind, counted per owner.
async fn children(admin: &Client, label: &str) -> BTreeMap<&'static str, HashMap<String, usize>> {
    let mut by: BTreeMap<&'static str, HashMap<String, usize>> = BTreeMap::new();
    by.insert("pods", by_owner::<Pod>(admin, label).await);
    by.insert("serviceaccounts", by_owner::<ServiceAccount>(admin, label).await);
    by.insert("roles", by_owner::<Role>(admin, label).await);
    by.insert("rolebindings", by_owner::<RoleBinding>(admin, label).await);
    by.insert("secrets", by_owner::<Secret>(admin, label).await);
    by.insert("configmaps", by_owner::<ConfigMap>(admin, label).await);
    by.insert("services", by_owner::<Service>(admin, label).await);
    by.insert("deployments.apps", by_owner::<AppsDeployment>(admin, label).await);
    by
}

/// Prints, per owner kind, the shapes of their children ("pods 1, secrets 1")
/// and how many owners have each: one shape per kind means no duplicates and
/// nothing missing.
async fn shapes(admin: &Client, round: &str) {
    for (kind, label) in [
        (Kind::Terminal, TERMINAL_UID_LABEL),
        (Kind::Deployment, DEPLOYMENT_UID_LABEL),
        (Kind::SessionClaim, SESSION_UID_LABEL),
    ] {
        let owners: Api<DynamicObject> = Api::all_with(admin.clone(), &kind.resource());
        let uids: Vec<String> = owners
            .list(&ListParams::default().labels(&format!("bench={round}")))
            .await
            .unwrap()
            .items
            .iter()
            .filter_map(|o| o.uid())
            .collect();
        let by = children(admin, label).await;
        let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
        for uid in &uids {
            let shape = by
                .iter()
                .filter_map(|(k, m)| m.get(uid).map(|n| format!("{k} {n}")))
                .collect::<Vec<_>>()
                .join(", ");
            *shapes.entry(shape).or_default() += 1;
        }
        let text = shapes
            .iter()
            .map(|(s, n)| format!("{n} with [{s}]"))
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "  children of the {} {kind:?}s: {text}{}",
            uids.len(),
            if shapes.len() == 1 {
                " — all alike"
            } else {
                " — NOT ALL ALIKE"
            }
        );
    }
}

/// Counts what the operator's labels still mark once everything is deleted.
async fn leftovers(admin: &Client) {
    let mut left = Vec::new();
    for label in [TERMINAL_UID_LABEL, DEPLOYMENT_UID_LABEL, SESSION_UID_LABEL] {
        for (kind, owners) in children(admin, label).await {
            let n: usize = owners.values().sum();
            if n > 0 {
                left.push(format!("{n} {kind} labelled {label}"));
            }
        }
    }
    println!(
        "  left behind after deletion: {}",
        if left.is_empty() {
            "nothing".to_string()
        } else {
            left.join(", ")
        }
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let counts = [arg(0, 200), arg(1, 100), arg(2, 50)];
    let kills = arg(3, 3);
    let (cp, admin, op) = common::cluster_with_operator(CONFIG).await;
    let mut clients = HashMap::new();
    for (user, _, group) in USERS {
        clients.insert(user, cp.client_as(user, &[group]).await.unwrap());
    }
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let watches: Vec<_> = Kind::ALL
        .iter()
        .map(|&k| watch(admin.clone(), k, seen.clone()))
        .collect();
    let workloads = watch_workloads(admin.clone(), seen.clone());
    let kubelet = common::kubelet(admin.clone(), "");
    let mut bench = Bench {
        config: op.config_path.clone(),
        port: op.metrics_port,
        op: Some(op),
        cp,
        admin,
        clients,
        seen,
        peak_rss: 0.0,
        cpu_gone: 0.0,
    };

    // One of each first: the API server's first create of a kind waits for
    // its quota evaluator (about 2 s), which is no part of any figure.
    bench.round("warm", [1, 1, 1], &[]).await;
    bench.delete("warm").await;
    let anchor = bench.round("alone", [counts[0], 0, 0], &[]).await;
    let gone = bench.delete("alone").await;
    println!("  deleted and cleaned up in {gone:?}");

    let mixed = bench.round("mixed", counts, &[]).await;
    println!(
        "  everything Ready in {:.1} x the time of the Terminals alone",
        mixed.total.as_secs_f64() / anchor.total.as_secs_f64()
    );
    let gone = bench.delete("mixed").await;
    println!("  deleted and cleaned up in {gone:?}");
    leftovers(&bench.admin).await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
    let window = mixed.total.as_millis().max(1) as u64;
    let mut at: Vec<Duration> = (0..kills)
        .map(|_| Duration::from_millis(rng.random_range(0..window)))
        .collect();
    at.sort();
    let killed = bench.round("killed", counts, &at).await;
    println!(
        "  everything Ready in {:.1} x the time of the Terminals alone ({} of {} Ready)",
        killed.total.as_secs_f64() / anchor.total.as_secs_f64(),
        killed.ready,
        killed.objects
    );
    shapes(&bench.admin, "killed").await;
    let gone = bench.delete("killed").await;
    println!("  deleted and cleaned up in {gone:?}");
    leftovers(&bench.admin).await;

    bench.note_operator();
    let cpu = bench.op.as_ref().map_or(0.0, |op| common::usage(op.process.pid()).1) + bench.cpu_gone;
    println!(
        "operator: peak RSS {:.1} MiB (the highest of its {} processes), CPU {cpu:.2} s in all",
        bench.peak_rss,
        kills + 1
    );
    for w in watches {
        w.abort();
    }
    workloads.abort();
    kubelet.abort();
    common::keep_logs(&bench.cp);
}
