//! Shells on the real node (prints figures, asserts nothing):
//! `cargo bench --bench shells -- [COUNT]` (as root, with the node's Debian
//! packages, as `tests/run` installs them).
//!
//! Starts a control plane with a node, and the operator (release build).
//! One pod first unpacks the image. Then the anchor: COUNT pods like a Terminal's (the node's toolbox image,
//! `/bin/sh` on a TTY) created at once directly by an admin, and for each the
//! time from its create call to the pod Running and to its shell answering a
//! command typed through `attach` as the admin. Then COUNT Terminals
//! (default 200) created at once by three users, and for each the time from
//! its create call to the pod Running, the Terminal Ready and the shell
//! answering — typed through `attach` with a token for the Terminal's attach
//! service account that its creator asked for, as the dashboard does. And
//! what the node costs: its start time, the CPU of the node's processes, the
//! shims and the pods during each burst, and memory per pod.

#[path = "../tests/common/operator.rs"]
mod operator;

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, ResourceExt,
    api::{AttachParams, DeleteParams, ListParams, PostParams},
    config::KubeConfigOptions,
    runtime::{WatchStreamExt, watcher},
};
use portico::{api::Terminal, controlplane::node::images::TOOLBOX_IMAGE};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USERS: [(&str, &str); 3] = [("alice", "team-a"), ("bob", "team-b"), ("carol", "team-a")];

/// What is typed, and what only the shell's answer contains (the typed line echoes `$((6*7))`).
const COMMAND: &[u8] = b"echo portico-$((6*7))\n";
const ANSWER: &[u8] = b"portico-42";

fn groups(user: &str) -> Vec<&'static str> {
    if user == "carol" {
        vec!["portico-admins"]
    } else {
        vec!["developers"]
    }
}

/// Small requests, so that COUNT pods fit on a 2-core node.
fn resources() -> serde_json::Value {
    json!({"requests": {"cpu": "5m", "memory": "16Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}})
}

fn terminal(name: &str, ns: &str) -> Terminal {
    serde_json::from_value(json!({
        "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal", "metadata": {"name": name},
        "spec": {
            "host": {"namespace": ns, "pod": {"image": TOOLBOX_IMAGE, "command": ["/bin/sh"], "resources": resources()}},
            "target": {"namespace": ns, "roleBindings": [
                {"roleRef": {"kind": "ClusterRole", "name": "edit"}, "bindingKind": "RoleBinding", "nameSuffix": "edit"}]},
            "idleTimeout": "30m",
        }
    }))
    .unwrap()
}

/// The anchor's pod: the Terminal pod's container, without the operator.
fn bare_pod(name: &str, label: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": label}},
        "spec": {
            "containers": [{"name": "terminal", "image": TOOLBOX_IMAGE, "command": ["/bin/sh"],
                            "stdin": true, "tty": true, "resources": resources()}],
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": false,
        }
    }))
    .unwrap()
}

/// When each pod (`namespace/name`) was first seen Running.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_running(admin: Client, running: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stream = common::applied(Api::<Pod>::all(admin), watcher::Config::default());
        futures::pin_mut!(stream);
        while let Some(pod) = stream.next().await {
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                running
                    .lock()
                    .unwrap()
                    .entry(format!("{}/{}", pod.namespace().unwrap(), pod.name_any()))
                    .or_insert_with(Instant::now);
            }
        }
    })
}

/// Deletes the pods labelled `bench=<label>` in the users' namespaces and
/// waits, watching, until none is left.
async fn delete_pods(admin: &Client, label: &str) {
    let selector = format!("bench={label}");
    for (_, ns) in &USERS[..2] {
        let _ = Api::<Pod>::namespaced(admin.clone(), ns)
            .delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector))
            .await;
    }
    let stream = watcher(
        Api::<Pod>::all(admin.clone()),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    let gone = async {
        futures::pin_mut!(stream);
        let (mut left, mut listed) = (std::collections::HashSet::new(), false);
        while let Some(event) = stream.next().await {
            // After an error the watch lists again (a new Init).
            let Ok(event) = event else { continue };
            match event {
                watcher::Event::Init => left.clear(),
                watcher::Event::InitDone => listed = true,
                watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                    left.insert(p.name_any());
                }
                watcher::Event::Delete(p) => {
                    left.remove(&p.name_any());
                }
            }
            if listed && left.is_empty() {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(300), gone).await.is_err() {
        eprintln!("gave up waiting for the {selector} pods to go");
    }
}

/// Attaches to the pod's terminal container as `client`, types [`COMMAND`]
/// and reads until [`ANSWER`] comes back; tries again (a container that has
/// only just started may refuse the first attach) until `deadline`.
async fn shell_answers(client: &Client, ns: &str, pod: &str, deadline: Instant) -> Result<(), String> {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let params = AttachParams::interactive_tty().container("terminal");
    loop {
        let attempt = async {
            let mut p = api.attach(pod, &params).await.map_err(|e| e.to_string())?;
            let (mut stdin, mut stdout) = (p.stdin().ok_or("no stdin")?, p.stdout().ok_or("no stdout")?);
            stdin.write_all(COMMAND).await.map_err(|e| e.to_string())?;
            let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
            while !seen.windows(ANSWER.len()).any(|w| w == ANSWER) {
                match stdout.read(&mut buf).await {
                    Ok(0) => return Err("the attach closed before the answer".to_string()),
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(e.to_string()),
                }
            }
            p.abort();
            Ok::<(), String>(())
        };
        match tokio::time::timeout(Duration::from_secs(30), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if Instant::now() > deadline => return Err(e),
            Err(_) if Instant::now() > deadline => return Err("no answer within 30 s".into()),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// CPU seconds so far of the node's processes, its shims and its pods.
struct NodeCpu {
    pids: Vec<u32>,
    dir: String,
    cgroup: String,
}

impl NodeCpu {
    fn new(node: &portico::controlplane::node::Node) -> NodeCpu {
        NodeCpu {
            pids: node.pids(),
            dir: node.dir().to_string_lossy().into_owned(),
            cgroup: node.cgroup().to_string(),
        }
    }

    /// The shims of this node's containerd (their command line names its directory).
    fn shims(&self) -> Vec<u32> {
        let mut out = vec![];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if comm.starts_with("containerd-shim") && String::from_utf8_lossy(&cmdline).contains(&self.dir) {
                out.push(pid);
            }
        }
        out
    }

    /// The node's cgroup file `file` under controller directories `dirs`, as a number.
    fn cgroup_value(&self, dirs: &[&str], file: &str) -> Option<f64> {
        dirs.iter().find_map(|d| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/{d}/{}/{file}", self.cgroup))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
    }

    /// (node processes, shims, pods) CPU seconds.
    fn read(&self) -> (f64, f64, f64) {
        let cpu = |pids: &[u32]| pids.iter().map(|p| common::usage(*p).1).sum::<f64>();
        let pods = self
            .cgroup_value(&["cpuacct", "cpu,cpuacct"], "cpuacct.usage")
            .map_or(f64::NAN, |ns| ns / 1e9);
        (cpu(&self.pids), cpu(&self.shims()), pods)
    }

    /// Resident memory (MiB) of the pods' cgroup and of the shims.
    fn memory(&self) -> (f64, f64) {
        let stat = ["memory"]
            .iter()
            .find_map(|d| std::fs::read_to_string(format!("/sys/fs/cgroup/{d}/{}/memory.stat", self.cgroup)).ok())
            .unwrap_or_default();
        let rss = stat
            .lines()
            .find_map(|l| l.strip_prefix("total_rss "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(f64::NAN, |b| b / 1048576.0);
        let shims: f64 = self.shims().iter().map(|p| rss_mib(*p)).sum();
        (rss, shims)
    }

    /// Memory now, per pod above `before` (pods, shims), and of the node's processes.
    fn memory_line(&self, count: usize, before: (f64, f64), node_rss: f64) -> String {
        let (pods, shims) = self.memory();
        format!(
            "  memory with {count} pods running: pods {:.0} MiB ({:.1} MiB per pod), shims {:.0} MiB ({:.1} MiB per pod), node processes {:.0} MiB (at start {node_rss:.0} MiB)",
            pods - before.0,
            (pods - before.0) / count as f64,
            shims - before.1,
            (shims - before.1) / count as f64,
            self.pids.iter().map(|p| rss_mib(*p)).sum::<f64>()
        )
    }

    fn line(&self, what: &str, before: (f64, f64, f64), wall: Duration) -> String {
        let after = self.read();
        format!(
            "  CPU during {what}: node processes (scheduler, containerd, kubelet, kube-proxy, CoreDNS) {:.1} s, shims {:.1} s, pods {:.1} s, in {:.1} s",
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            wall.as_secs_f64()
        )
    }
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn line(what: &str, d: Vec<Duration>, of: usize) -> String {
    format!("  {what}: {} of {of}; {}", d.len(), common::spread(&d))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200usize);
    eprintln!("starting a control plane with a node");
    let t0 = Instant::now();
    let cp = tokio::task::spawn_blocking(portico::controlplane::ControlPlane::start_with_node)
        .await
        .unwrap()
        .expect("a control plane with a node (run as root, with the node's packages)");
    let started = t0.elapsed();
    let node = cp.node().expect("a node");
    let services = node.services().map(|_| "Services and DNS run").unwrap_or("no Services");
    println!("node: the control plane and its node Ready in {started:.1?} ({services})");
    let node_cpu = NodeCpu::new(node);
    let node_rss: f64 = node.pids().iter().map(|p| rss_mib(*p)).sum();
    let (cp, admin, op) =
        common::with_operator(cp, "leaderElection: {enabled: false}\ncontroller: {concurrency: 16}\n").await;
    let base = kube::Config::from_custom_kubeconfig(cp.kubeconfig().clone(), &KubeConfigOptions::default())
        .await
        .unwrap();

    let running: Seen = Arc::default();
    let pods_watch = watch_running(admin.clone(), running.clone());

    // One pod first, so that neither burst pays for unpacking the image.
    let t_warm = Instant::now();
    Api::<Pod>::namespaced(admin.clone(), USERS[0].1)
        .create(&PostParams::default(), &bare_pod("warm-up", "warm-up"))
        .await
        .unwrap();
    shell_answers(&admin, USERS[0].1, "warm-up", Instant::now() + Duration::from_secs(300))
        .await
        .expect("the first pod's shell answers");
    println!(
        "warm-up: the first pod (its image unpacked) answered in {:.1?}",
        t_warm.elapsed()
    );
    delete_pods(&admin, "warm-up").await;
    let mem0 = node_cpu.memory();

    // The anchor: bare pods by an admin, then a shell through attach as the admin.
    let cpu0 = node_cpu.read();
    let t_anchor = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(900);
    let anchor: Vec<(String, Instant, Result<Duration, String>)> = stream::iter(0..count)
        .map(|i| {
            let (_, ns) = USERS[i % USERS.len()];
            let (admin, running) = (admin.clone(), running.clone());
            async move {
                let name = format!("anchor-{i}");
                let t0 = Instant::now();
                Api::<Pod>::namespaced(admin.clone(), ns)
                    .create(&PostParams::default(), &bare_pod(&name, "anchor"))
                    .await
                    .unwrap();
                let key = format!("{ns}/{name}");
                // Attached once the kubelet reports it Running (as the dashboard waits for Ready).
                while !running.lock().unwrap().contains_key(&key) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let answered = shell_answers(&admin, ns, &name, deadline).await.map(|()| t0.elapsed());
                (key, t0, answered)
            }
        })
        .buffer_unordered(count.max(1))
        .collect()
        .await;
    let anchor_wall = t_anchor.elapsed();
    let seen = running.lock().unwrap().clone();
    println!("anchor: {count} pods like a Terminal's, created at once by an admin");
    println!(
        "{}",
        line(
            "create->pod Running",
            anchor
                .iter()
                .filter_map(|(k, t0, _)| Some(seen.get(k)?.saturating_duration_since(*t0)))
                .collect(),
            count
        )
    );
    println!(
        "{}",
        line(
            "create->shell answers (attach as the admin)",
            anchor.iter().filter_map(|(_, _, r)| r.as_ref().ok().copied()).collect(),
            count
        )
    );
    if let Some((k, _, Err(e))) = anchor.iter().find(|(_, _, r)| r.is_err()) {
        println!("  first failure: {k}: {e}");
    }
    println!("{}", node_cpu.line("the anchor", cpu0, anchor_wall));
    println!("{}", node_cpu.memory_line(count, mem0, node_rss));
    // The Terminals start on an empty node.
    delete_pods(&admin, "anchor").await;

    // The Terminals, each attached to as the dashboard does once it is Ready.
    let mut clients = HashMap::new();
    for (user, _) in USERS {
        clients.insert(user, cp.client_as(user, &groups(user)).await.unwrap());
    }
    let ready_at: Seen = Arc::default();
    let answered: Arc<Mutex<HashMap<String, Result<Instant, String>>>> = Arc::default();
    let pod_of: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let terminals_watch = {
        let (ready_at, answered, pod_of, clients, base) = (
            ready_at.clone(),
            answered.clone(),
            pod_of.clone(),
            clients.clone(),
            base.clone(),
        );
        let api: Api<Terminal> = Api::all(admin.clone());
        tokio::spawn(async move {
            let stream = common::applied(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(t) = stream.next().await {
                let st = t.status.clone().unwrap_or_default();
                let ready = st.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
                let (Some(pod), Some(host), Some(sa), true) =
                    (st.pod_name, st.host_namespace, st.attach_service_account_name, ready)
                else {
                    continue;
                };
                let key = format!("{}/{}", t.namespace().unwrap(), t.name_any());
                if ready_at.lock().unwrap().insert(key.clone(), Instant::now()).is_some() {
                    continue;
                }
                pod_of.lock().unwrap().insert(key.clone(), format!("{host}/{pod}"));
                let i: usize = t.name_any().trim_start_matches("bench-").parse().unwrap_or(0);
                let user = clients[USERS[i % USERS.len()].0].clone();
                let (answered, mut config) = (answered.clone(), base.clone());
                tokio::spawn(async move {
                    let result = async {
                        let token = portico::tokens::request(&user, &host, &sa, Duration::from_secs(600), None)
                            .await
                            .map_err(|e| e.to_string())?;
                        config.auth_info = kube::config::AuthInfo {
                            token: Some(token.token.into()),
                            ..Default::default()
                        };
                        let client = Client::try_from(config).map_err(|e| e.to_string())?;
                        shell_answers(&client, &host, &pod, Instant::now() + Duration::from_secs(300)).await
                    }
                    .await;
                    answered.lock().unwrap().insert(key, result.map(|()| Instant::now()));
                });
            }
        })
    };

    let cpu0 = node_cpu.read();
    let t_burst = Instant::now();
    let created: Vec<(String, Instant)> = stream::iter(0..count)
        .map(|i| {
            let (user, ns) = USERS[i % USERS.len()];
            let client = clients[user].clone();
            async move {
                let name = format!("bench-{i}");
                let t0 = Instant::now();
                Api::<Terminal>::namespaced(client, ns)
                    .create(&PostParams::default(), &terminal(&name, ns))
                    .await
                    .unwrap();
                (format!("{ns}/{name}"), t0)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    common::wait_until("every shell to answer", Duration::from_secs(900), || {
        answered.lock().unwrap().len() >= count
    })
    .await;
    let burst_wall = t_burst.elapsed();
    let (ready, answers, pod_of, seen) = (
        ready_at.lock().unwrap().clone(),
        answered.lock().unwrap().clone(),
        pod_of.lock().unwrap().clone(),
        running.lock().unwrap().clone(),
    );
    let since = |at: Option<&Instant>, t0: &Instant| at.map(|a| a.saturating_duration_since(*t0));
    println!("terminals: {count} created at once by {} users", USERS.len());
    println!(
        "{}",
        line(
            "create->pod Running",
            created
                .iter()
                .filter_map(|(k, t0)| since(seen.get(pod_of.get(k)?), t0))
                .collect(),
            count
        )
    );
    println!(
        "{}",
        line(
            "create->Terminal Ready",
            created.iter().filter_map(|(k, t0)| since(ready.get(k), t0)).collect(),
            count
        )
    );
    println!(
        "{}",
        line(
            "create->shell answers (attach with the creator's attach token)",
            created
                .iter()
                .filter_map(|(k, t0)| since(answers.get(k)?.as_ref().ok(), t0))
                .collect(),
            count
        )
    );
    if let Some((k, Err(e))) = answers.iter().find(|(_, r)| r.is_err()) {
        println!("  first failure: {k}: {e}");
    }
    println!("{}", node_cpu.line("the Terminals", cpu0, burst_wall));
    println!("{}", node_cpu.memory_line(count, mem0, node_rss));
    let (rss, cpu) = common::usage(op.process.pid());
    println!("operator: peak RSS {rss:.1} MiB, CPU {cpu:.2} s");

    for (_, ns) in &USERS[..2] {
        let _ = Api::<Terminal>::namespaced(admin.clone(), ns)
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
    }
    pods_watch.abort();
    terminals_watch.abort();
    drop(op);
    drop(cp);
}
