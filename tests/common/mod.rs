//! Test harness shared by the integration tests: one real control plane per
//! test binary, a fresh namespace per test, and the real kubectl.
#![allow(dead_code)]

use std::{
    process::Output,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use portico::controlplane::ControlPlane;

/// The control plane shared by every test in this binary, with a real node
/// (pods run) and Portico's CRDs installed. Started on first use; killed
/// when the binary exits.
pub fn shared() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(|| {
        let issuer = trusted_issuer();
        let cp = ControlPlane::start_with_node_trusting(&portico::controlplane::authn::JwtIssuer {
            url: issuer.url.clone(),
            ca_pem: issuer.ca_pem.clone(),
            audiences: vec!["portico".into(), KUBECTL_CLIENT.into()],
            username: ("preferred_username".into(), String::new()),
            groups: ("groups".into(), String::new()),
        })
        .expect("start the shared control plane with its node");
        let kc = cp.kubeconfig().clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap();
                let client = Client::try_from(config).unwrap();
                portico::install::install(&client).await.expect("install CRDs");
            })
        })
        .join()
        .unwrap();
        cp
    })
}

/// The public client (no secret, PKCE) kubectl's `oidc-login` plugin logs in with.
pub const KUBECTL_CLIENT: &str = "kubectl";

/// The HTTPS login provider the shared API server trusts (users named by
/// `preferred_username`, groups from `groups`, no prefixes, audiences the
/// dashboard's client `portico` and [`KUBECTL_CLIENT`]): its port and
/// serving certificate, chosen before the API server starts; tests that
/// need it start it there (`ui::kubectl_stack`).
pub struct TrustedIssuer {
    pub port: u16,
    pub url: String,
    pub ca_pem: String,
    pub cert: portico::pki::CertPair,
}

pub fn trusted_issuer() -> &'static TrustedIssuer {
    static ISSUER: OnceLock<TrustedIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let port = portico::controlplane::free_port().expect("a port for the login provider");
        let ca = portico::pki::Ca::new("portico-test-login-ca").expect("a CA for the login provider");
        let cert = ca
            .server("oidc-provider", &["127.0.0.1"])
            .expect("the login provider's certificate");
        TrustedIssuer {
            port,
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.cert_pem.clone(),
            cert,
        }
    })
}

/// An admin client for the shared control plane.
pub async fn admin() -> Client {
    shared().admin_client().await.expect("admin client")
}

/// A new namespace with a unique name starting with `prefix`.
pub async fn test_namespace(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(admin().await)
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Copies the directory `from` into `to`, recursively.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs the built kubectl as admin against the shared control plane.
pub fn kubectl(args: &[&str]) -> Output {
    shared().kubectl().args(args).output().expect("run kubectl")
}

/// Runs kubectl and returns stdout, panicking with stderr when it fails.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub mod fixtures;
pub mod flux;
pub mod git;
pub mod operator;
pub mod ui;
pub mod wait;

#[allow(unused_imports)] // not every test binary builds Deployments
pub use fixtures::deployment;

/// Session profiles of the shared operator: `developer` (edit in namespaces
/// labelled team=a; developers and portico-admins), `pair` (at most 2 active per user), `ops` (for the group
/// ops only).
pub const TEST_PROFILES: &str = "sessionProfiles:
  - name: developer
    allowedGroups: [developers, portico-admins]
    grants:
      - namespaces: {selector: {matchLabels: {team: a}}}
        role: {kind: ClusterRole, name: edit}
    idleTimeout: {default: 30m, max: 8h}
    maxLifetime: {default: 8h, max: 24h}
    maxActivePerUser: 10
  - name: pair
    allowedGroups: [developers]
    maxActivePerUser: 2
  - name: ops
    allowedGroups: [ops]
";

/// The shared control plane with the demo tenants (alice: edit in team-a,
/// bob: edit in team-b, carol: portico-admins) and one operator running.
pub fn shared_with_operator() -> &'static ControlPlane {
    static OP: OnceLock<operator::Operator> = OnceLock::new();
    let cp = shared();
    OP.get_or_init(|| {
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let admin = cp.admin_client().await.unwrap();
                portico::dev::setup_demo(&admin).await.expect("demo tenants");
                portico::install::wait_aggregated(&admin)
                    .await
                    .expect("aggregated roles");
                let dir = std::path::Path::new(portico::dev::CATALOG_DIR);
                portico::dev::load_catalog(
                    &admin,
                    dir,
                    portico::dev::CATALOG_NAMESPACE,
                    &portico::dev::catalog::local_images(),
                )
                .await
                .expect("catalog");
                let (config, metrics_port) = operator::write_config(cp, TEST_PROFILES);
                operator::Operator::start(cp, config, metrics_port).await
            })
        })
        .join()
        .unwrap()
    });
    cp
}

/// The local image with a shell and kubectl (built and imported by the node).
pub const TOOLBOX: &str = portico::controlplane::node::images::TOOLBOX_IMAGE;

fn pod_ready(p: &k8s_openapi::api::core::v1::Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits (bounded, through a watch) until the kubelet reports the pod Ready.
pub async fn wait_pod_ready(client: &Client, namespace: &str, name: &str) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::wait::await_condition;
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let fut = await_condition(api.clone(), name, |p: Option<&Pod>| p.is_some_and(pod_ready));
    if !matches!(
        tokio::time::timeout(std::time::Duration::from_secs(90), fut).await,
        Ok(Ok(Some(_)))
    ) {
        panic!(
            "pod {namespace}/{name} did not become Ready; now: {:?}",
            api.get_opt(name).await.ok().flatten().and_then(|p| p.status)
        );
    }
}

/// Waits (bounded, through a watch) until `n` pods with `labels` are Ready; returns their names.
pub async fn wait_pods_ready(client: &Client, namespace: &str, labels: &str, n: usize) -> Vec<String> {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::{
        ResourceExt,
        runtime::{WatchStreamExt, watcher},
    };
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let mut stream = watcher(api.clone(), watcher::Config::default().labels(labels))
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut ready = std::collections::BTreeSet::new();
    let seen = async {
        while ready.len() < n {
            match stream.next().await {
                Some(Ok(p)) if pod_ready(&p) && p.metadata.deletion_timestamp.is_none() => {
                    ready.insert(p.name_any());
                }
                Some(_) => {}
                None => break,
            }
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(90), seen)
        .await
        .is_err()
    {
        let now: Vec<_> = api
            .list(&kube::api::ListParams::default().labels(labels))
            .await
            .map(|l| l.items.into_iter().map(|p| (p.name_any(), p.status)).collect())
            .unwrap_or_default();
        panic!("{n} pods {labels} in {namespace} did not become Ready; now: {now:?}");
    }
    ready.into_iter().collect()
}

/// Waits (bounded, through a watch) until no pod in any namespace matches
/// `labels`: a deleted pod on the node lives on through its grace period.
pub async fn wait_pods_gone(client: &Client, labels: &str) {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::{
        ResourceExt,
        runtime::{WatchStreamExt, watcher, watcher::Event},
    };
    let api = Api::<Pod>::all(client.clone());
    let mut stream = watcher(api.clone(), watcher::Config::default().labels(labels))
        .default_backoff()
        .boxed();
    let mut present = std::collections::BTreeSet::new();
    let mut listed = false;
    let gone = async {
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => present.clear(),
                Ok(Event::InitApply(p) | Event::Apply(p)) => {
                    present.insert((p.namespace(), p.name_any()));
                }
                Ok(Event::Delete(p)) => {
                    present.remove(&(p.namespace(), p.name_any()));
                }
                Ok(Event::InitDone) => listed = true,
                Err(_) => {}
            }
            if listed && present.is_empty() {
                return;
            }
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(90), gone)
        .await
        .is_err()
    {
        panic!("pods {labels} still there: {present:?}");
    }
}

/// Waits (bounded, through a watch) until the Service `name` has a ready
/// endpoint in its EndpointSlices.
pub async fn wait_service_endpoints(client: &Client, namespace: &str, name: &str) {
    use futures::StreamExt;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::runtime::{WatchStreamExt, watcher};
    let api = Api::<EndpointSlice>::namespaced(client.clone(), namespace);
    let labels = format!("kubernetes.io/service-name={name}");
    let mut stream = watcher(api.clone(), watcher::Config::default().labels(&labels))
        .default_backoff()
        .applied_objects()
        .boxed();
    let ready = async {
        while let Some(event) = stream.next().await {
            if let Ok(slice) = event
                && slice
                    .endpoints
                    .iter()
                    .flatten()
                    .any(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            {
                return;
            }
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(60), ready)
        .await
        .is_err()
    {
        let now = api.list(&kube::api::ListParams::default().labels(&labels)).await;
        panic!("the Service {namespace}/{name} has no ready endpoint; its EndpointSlices: {now:?}");
    }
}

/// `curl -fsS URL` inside a pod (the toolbox), repeated until it answers —
/// kube-proxy and CoreDNS follow the API within moments of an endpoint
/// turning ready — for at most 30 s; returns the page.
pub fn http_get_in_pod(cp: &ControlPlane, namespace: &str, pod: &str, url: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = cp
            .kubectl()
            .args([
                "exec",
                "-n",
                namespace,
                pod,
                "--",
                "curl",
                "-fsS",
                "--max-time",
                "5",
                url,
            ])
            .output()
            .expect("run kubectl");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "curl {url} in {namespace}/{pod} did not answer within 30 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
