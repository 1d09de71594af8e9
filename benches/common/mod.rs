//! What the benchmarks share: a control plane with the demo tenants, the
//! catalog and the operator; percentiles, the API server's request count, and
//! a process's peak memory and CPU time.
#![allow(dead_code)]

pub mod web;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::{Api, Client, api::PostParams, runtime::watcher};

/// The objects a watch of `api` sees. After an error (a 429 while the API
/// server is busy with a burst, say) it lists and watches again, after a
/// backoff, instead of ending, so a benchmark's figures miss nothing.
pub fn applied<K>(api: Api<K>, config: watcher::Config) -> impl futures::Stream<Item = K> + Send + 'static
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    use kube::runtime::WatchStreamExt;
    watcher(api, config)
        .default_backoff()
        .applied_objects()
        .filter_map(|r| futures::future::ready(r.ok()))
}

/// Starts a control plane, installs the CRDs, the demo tenants and the
/// catalog, and runs the operator (as the chart's service account) with the
/// test configuration plus `extra` (top-level YAML keys).
pub async fn cluster_with_operator(
    extra: &str,
) -> (portico::controlplane::ControlPlane, Client, crate::operator::Operator) {
    eprintln!("starting a control plane and the operator");
    let cp = tokio::task::spawn_blocking(portico::controlplane::ControlPlane::start)
        .await
        .unwrap()
        .expect("control plane");
    with_operator(cp, extra).await
}

/// Like [`cluster_with_operator`], on a control plane already started (with a node, say).
pub async fn with_operator(
    cp: portico::controlplane::ControlPlane,
    extra: &str,
) -> (portico::controlplane::ControlPlane, Client, crate::operator::Operator) {
    let admin = cp.admin_client().await.unwrap();
    portico::install::install(&admin).await.unwrap();
    portico::dev::setup_demo(&admin).await.unwrap();
    portico::install::wait_aggregated(&admin).await.unwrap();
    portico::dev::load_catalog(
        &admin,
        portico::dev::CATALOG_DIR.as_ref(),
        portico::dev::CATALOG_NAMESPACE,
        &portico::dev::catalog::local_images(),
    )
    .await
    .unwrap();
    let (config, port) = crate::operator::write_config(&cp, extra);
    let op = crate::operator::Operator::start(&cp, config, port).await;
    (cp, admin, op)
}

/// All requests the API server has served (sum of `apiserver_request_total`).
pub async fn request_total(client: &Client) -> f64 {
    apiserver_metrics(client)
        .await
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `p` percentile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `p50 … p99 … max …` of durations (sorted here).
pub fn spread(durations: &[Duration]) -> String {
    let mut d = durations.to_vec();
    d.sort();
    format!(
        "p50 {:?}  p99 {:?}  max {:?}",
        percentile(&d, 0.5),
        percentile(&d, 0.99),
        percentile(&d, 1.0)
    )
}

/// Waits until `done` (a figure the benchmark's own watches fill in) holds,
/// for at most `within`; says so when it gives up.
pub async fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !done() {
        eprintln!("gave up waiting for {what}");
    }
}

/// The memory figures `keys` (`VmHWM:`, …) of a process's
/// `/proc/PID/status`, in MiB (0 when absent).
fn status_mib<const N: usize>(pid: u32, keys: [&str; N]) -> [f64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    keys.map(|key| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    })
}

/// Peak RSS (MiB) and CPU seconds of a process, from /proc.
pub fn usage(pid: u32) -> (f64, f64) {
    let [hwm] = status_mib(pid, ["VmHWM:"]);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (hwm, ticks / hz)
}

/// What a process holds in memory now, in MiB, from `/proc/PID/status`:
/// `(resident, anonymous, file-backed)`. File-backed pages are mostly the
/// executable's code; anonymous ones its heap and stacks.
pub fn resident(pid: u32) -> (f64, f64, f64) {
    let [rss, anon, file] = status_mib(pid, ["VmRSS:", "RssAnon:", "RssFile:"]);
    (rss, anon, file)
}

/// CPU seconds used so far by each of the processes `pids` and this
/// benchmark itself, by command name (summed over processes of one name).
pub fn cpu_seconds(pids: &[u32]) -> Cpu {
    let mut by = std::collections::BTreeMap::new();
    for pid in pids.iter().copied() {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        *by.entry(name.trim().to_string()).or_default() += usage(pid).1;
    }
    *by.entry("benchmark".to_string()).or_default() += usage(std::process::id()).1;
    Cpu(by)
}

/// CPU seconds by process name (see [`cpu_seconds`]).
#[derive(Clone, Debug, Default)]
pub struct Cpu(std::collections::BTreeMap<String, f64>);

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(mut self, before: Cpu) -> Cpu {
        for (name, s) in before.0 {
            *self.0.entry(name).or_default() -= s;
        }
        self
    }
}

impl Cpu {
    /// The sum over all processes.
    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }
}

/// A line saying how busy the machine's cores were between two readings of
/// [`cpu_seconds`] taken `wall` apart, and which processes used them.
pub fn cpu_line(what: &str, cpu: Cpu, wall: Duration) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut by: Vec<(&String, &f64)> = cpu.0.iter().collect();
    by.sort_by(|a, b| b.1.total_cmp(a.1));
    format!(
        "  CPU during {what}: {:.1} s in {:.1} s, {:.0}% of {cores} cores ({})",
        cpu.total(),
        wall.as_secs_f64(),
        100.0 * cpu.total() / wall.as_secs_f64().max(1e-9) / cores as f64,
        by.iter()
            .map(|(n, s)| format!("{n} {s:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The upper bound (seconds) of the histogram bucket holding the `p`
/// quantile of `metric` (a Prometheus histogram in `text`, summed over the
/// series whose labels contain every one of `labels`, e.g. `kind="Terminal"`).
pub fn bucket_quantile(text: &str, metric: &str, labels: &[&str], p: f64) -> Option<f64> {
    let prefix = format!("{metric}_bucket{{");
    let mut buckets: std::collections::BTreeMap<u64, f64> = Default::default();
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if !labels.iter().all(|l| series.contains(l)) {
            continue;
        }
        let Some(le) = series.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
        *buckets.entry(le.to_bits()).or_default() += value.parse::<f64>().ok()?;
    }
    let mut sorted: Vec<(f64, f64)> = buckets.into_iter().map(|(b, n)| (f64::from_bits(b), n)).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = sorted.last()?.1;
    if total == 0.0 {
        return None;
    }
    sorted.into_iter().find(|(_, n)| *n >= p * total).map(|(le, _)| le)
}

/// The API server's `/metrics`, through `client`.
pub async fn apiserver_metrics(client: &Client) -> String {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    client.request_text(req).await.unwrap()
}

/// The text of the operator's `/metrics` on `port`.
pub async fn operator_metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("read the operator's metrics")
        .text()
        .await
        .unwrap()
}

/// Marks every pod matching `selector` (a label selector; empty for all)
/// Running and Ready as it appears, as a kubelet would (the benchmarks' control
/// plane has no node).
pub fn kubelet(admin: Client, selector: &str) -> tokio::task::JoinHandle<()> {
    use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
    use kube::{
        Api, ResourceExt,
        api::{Patch, PatchParams},
        runtime::watcher,
    };
    let selector = selector.to_string();
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(admin.clone());
        // Up to 16 pods marked at once, as a node's kubelets would, each on its own.
        applied(pods, watcher::Config::default().labels(&selector))
            .for_each_concurrent(16, |pod| {
                let admin = admin.clone();
                async move {
                    let ns = pod.namespace().unwrap_or_default();
                    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                    if ns.starts_with("kube-") || phase == Some("Running") || pod.metadata.deletion_timestamp.is_some()
                    {
                        return;
                    }
                    let now = Timestamp::now().to_string();
                    let status = serde_json::json!({"status": {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
                    let api: Api<Pod> = Api::namespaced(admin, &ns);
                    let _ = api
                        .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(status))
                        .await;
                }
            })
            .await;
    })
}

/// Requests the operator (its service account) made, from the audit log.
pub fn operator_requests(cp: &portico::controlplane::ControlPlane) -> usize {
    operator_events(cp).len()
}

/// Every request the operator (its service account) made, from the audit log.
pub fn operator_events(cp: &portico::controlplane::ControlPlane) -> Vec<portico::controlplane::audit::Event> {
    cp.audit_events()
        .into_iter()
        .filter(|e| e.user.username.starts_with("system:serviceaccount:portico-system:"))
        .collect()
}

/// The operator's requests after the first `skip`, per object (of `count`), by verb and resource.
pub fn operator_breakdown(cp: &portico::controlplane::ControlPlane, skip: usize, count: usize) -> String {
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for e in operator_events(cp).into_iter().skip(skip) {
        let what = e.object_ref.as_ref().map_or("-".to_string(), |o| {
            if o.subresource.is_empty() {
                o.resource.clone()
            } else {
                format!("{}/{}", o.resource, o.subresource)
            }
        });
        let who = if e.impersonated_user.is_some() {
            " (as the user)"
        } else {
            ""
        };
        *by.entry(format!("{} {what}{who}", e.verb)).or_default() += 1;
    }
    let mut rows: Vec<(String, usize)> = by.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    rows.iter()
        .map(|(k, n)| format!("{k} {:.2}", *n as f64 / count as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates one object, retrying a refusal (a webhook timeout under load) a
/// few times; one that exists already (an earlier try that landed) counts.
pub async fn create_retrying<K>(api: &Api<K>, o: &K)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for attempt in 1.. {
        match api.create(&PostParams::default(), o).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) if attempt < 5 => {
                eprintln!("create {}: {e}; retrying", o.meta().name.as_deref().unwrap_or_default());
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
            Err(e) => panic!("create failed 5 times: {e}"),
        }
    }
}

/// Waits until every object of kind K has a status for its generation.
pub async fn reconciled<K>(admin: &Client, count: usize, observed: impl Fn(&K) -> bool)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = kube::runtime::reflector::store::<K>();
    // Every event, the end of the first list included: the store fills only
    // then, so objects all reconciled before the watch began are seen too.
    let mut stream =
        kube::runtime::reflector(writer, watcher(Api::<K>::all(admin.clone()), Default::default())).boxed();
    while stream.try_next().await.unwrap().is_some() {
        let state = store.state();
        if state.len() >= count && state.iter().all(|o| observed(o)) {
            return;
        }
    }
}

/// With `PORTICO_BENCH_PPROF=FILE` (and an API server started with
/// `PORTICO_APISERVER_PROFILING=1`): a CPU profile of the API server over the
/// next 3 s, written to FILE for `go tool pprof`.
pub fn apiserver_profile(admin: &Client, what: &str) -> Option<tokio::task::JoinHandle<()>> {
    let path = std::env::var("PORTICO_BENCH_PPROF").ok()?;
    let (admin, what) = (admin.clone(), what.to_string());
    Some(tokio::spawn(async move {
        let req = http::Request::get("/debug/pprof/profile?seconds=3")
            .body(Vec::new())
            .unwrap();
        match admin.request_stream(req).await {
            Ok(body) => {
                use futures::AsyncReadExt;
                let mut bytes = Vec::new();
                let mut body = body;
                let _ = body.read_to_end(&mut bytes).await;
                std::fs::write(&path, bytes).unwrap();
                eprintln!("the API server's CPU profile during {what}: {path}");
            }
            Err(e) => eprintln!("no CPU profile of the API server: {e}"),
        }
    }))
}

/// With `PORTICO_BENCH_LOGS=DIR`: copies the control plane's and the
/// operator's logs (`*.log` of its directory) into DIR before the benchmark
/// ends and the directory goes.
pub fn keep_logs(cp: &portico::controlplane::ControlPlane) {
    let Ok(dir) = std::env::var("PORTICO_BENCH_LOGS") else {
        return;
    };
    let _ = std::fs::create_dir_all(&dir);
    for entry in std::fs::read_dir(cp.dir()).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let _ = std::fs::copy(&path, std::path::Path::new(&dir).join(entry.file_name()));
        }
    }
    eprintln!("logs copied to {dir}");
}

/// The two developers the benchmarks create as, and their namespaces.
pub const DEVELOPERS: [(&str, &str); 2] = [("alice", "team-a"), ("bob", "team-b")];

/// A Deployment of the `scheduled-job` template (a CronJob; no pods until its schedule).
pub fn scheduled_job(name: &str) -> portico::api::Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"template": {"name": "scheduled-job"}, "parameters": {"image": "docker.io/library/busybox:1.37", "command": ["true"], "schedule": "@daily"}},
    }))
    .unwrap()
}

/// A Terminal with `edit` in `ns`, hosted there, with the idle timeout and
/// maximum lifetime `(idle, max)`.
pub fn terminal(name: &str, ns: &str, (idle, max): (&str, &str)) -> portico::api::Terminal {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": name},
        "spec": {
            "host": {"namespace": ns, "pod": {"image": "alpine"}},
            "target": {"namespace": ns, "roleBindings": [
                {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "edit"}]},
            "idleTimeout": idle, "maxLifetime": max,
        }
    }))
    .unwrap()
}

/// Creates `count` objects made by `make(i, namespace)` as alice and bob in
/// turn ([`DEVELOPERS`]; `clients` in that order), 64 calls in flight, each
/// retried as [`create_retrying`] does.
pub async fn create_all<K>(clients: &[Client; 2], count: usize, make: impl Fn(usize, &str) -> K)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    futures::stream::iter(0..count)
        .map(|i| {
            let (_, ns) = DEVELOPERS[i % 2];
            let api: Api<K> = Api::namespaced(clients[i % 2].clone(), ns);
            let o = make(i, ns);
            async move { create_retrying(&api, &o).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
}
