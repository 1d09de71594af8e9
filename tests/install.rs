//! The shipped installation, for real: the image built from the Dockerfile
//! (`tests/image/build.sh`, buildah) is imported into a real node, and the
//! Helm chart installs it with `helm install`. The operator and the
//! dashboard run as pods; the API server reaches the webhook through its
//! Service; a Terminal applied with kubectl by a user gets a working shell
//! with the user's rights; the dashboard serves its login page through its
//! Service and sends users to the OpenID Connect provider; `helm test`
//! passes. `helm upgrade` to a changed configuration rolls the pods without
//! losing or duplicating objects, and the Lease passes to a new pod.
//! `helm uninstall` leaves no webhook configuration behind (the cluster
//! admits and deletes as before) and keeps the CRDs and users' objects.
//! Flux's own helm-controller then installs the chart from Git with
//! `examples/flux/helmrelease.yaml`, and uninstalls it when the HelmRelease
//! is deleted. `portico dev --kubeconfig` then installs it all again in one
//! command.

mod common;

use std::{path::PathBuf, process::Command};

use k8s_openapi::api::{
    admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{ConfigMap, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
};
use portico::{
    api::Terminal,
    controller::terminal::build::UID_LABEL,
    controlplane::{ControlPlane, Process, free_port},
};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/portico");
const RELEASE: &str = "portico";
const NAMESPACE: &str = "portico-system";

/// The image's archive and name: from `tests/run` (which builds it before the
/// tests), or built here by the same script (cached, so cheap when built).
fn image() -> (PathBuf, String) {
    if let (Ok(archive), Ok(name)) = (std::env::var("PORTICO_IMAGE_ARCHIVE"), std::env::var("PORTICO_IMAGE")) {
        return (archive.into(), name);
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/image/build.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run tests/image/build.sh");
    assert!(
        out.status.success(),
        "tests/image/build.sh failed (its messages are above)"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("build.sh prints the archive and the name");
    let (archive, name) = last.split_once(' ').expect("ARCHIVE NAME");
    (archive.into(), name.to_string())
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn helm(cp: &ControlPlane, args: &[&str]) -> Command {
    let mut cmd = Command::new(cp.binaries().path("helm"));
    cmd.arg("--kubeconfig").arg(cp.kubeconfig_path()).args(args);
    cmd
}

/// The names of the running pods of one of the chart's components.
async fn pods_of(cp: &ControlPlane, component: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(cp.admin_client().await.unwrap(), NAMESPACE);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/component={component}"));
    pods.list(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect()
}

async fn lease_holder(cp: &ControlPlane) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(cp.admin_client().await.unwrap(), NAMESPACE);
    leases
        .get_opt(&format!("{RELEASE}-operator"))
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// The user of `kubeconfig` applies the Terminal manifest `file` to team-a
/// and waits (`kubectl wait`) until it is Ready.
fn apply_ready(cp: &ControlPlane, kubeconfig: &std::path::Path, file: &str) {
    let kubectl = |args: &[&str]| {
        let mut cmd = cp.kubectl();
        cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
        cmd
    };
    run(
        &mut kubectl(&["apply", "-n", "team-a", "-f", file]),
        &format!("apply {file}"),
    );
    run(
        &mut kubectl(&[
            "wait",
            "-n",
            "team-a",
            "--for=condition=Ready",
            "terminal/team-a-shell",
            "--timeout=120s",
        ]),
        "the Terminal becomes Ready",
    );
}

/// One line on stderr per step, with the seconds since the test began.
fn step(started: std::time::Instant, what: &str) {
    eprintln!("install: {:>6.1} s  {what}", started.elapsed().as_secs_f64());
}

/// Runs `sh -c script` in the Terminal's pod (its shell's container), as a
/// user of the shell would.
fn in_shell(cp: &ControlPlane, pod: &str, script: &str) -> std::process::Output {
    cp.kubectl()
        .args(["exec", "-n", "team-a", pod, "--", "sh", "-c", script])
        .output()
        .expect("run kubectl exec")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_installs_the_image_on_a_real_node_upgrades_and_uninstalls_cleanly() {
    let started = std::time::Instant::now();
    let cp = ControlPlane::start_with_node().expect("a control plane with a node");
    step(started, "control plane and node ready");
    let node = cp.node().expect("the node");
    let address = node.bridge().ip().to_string();
    let admin = cp.admin_client().await.unwrap();

    // The image, on the node.
    let (archive, image) = image();
    node.import_image(&archive).expect("import the image into the node");
    let (repository, tag) = image.rsplit_once(':').expect("name:tag");
    step(started, &format!("{image} imported into the node"));

    // The login provider, where pods reach it (the node's bridge address).
    let oidc_port = free_port().unwrap();
    let issuer = format!("http://{address}:{oidc_port}");
    let public_url = "http://portico.example";
    let _provider = Process::spawn(
        "oidc-provider",
        "node".as_ref(),
        &[
            common::ui::npm_ci(&common::ui::oidc_dir(), "node_modules/oidc-provider")
                .join("server.mjs")
                .to_string_lossy()
                .into_owned(),
            oidc_port.to_string(),
            "portico".into(),
            "install-secret".into(),
            format!("{public_url}/auth/callback"),
            address.clone(),
        ],
        &cp.dir().join("oidc.log"),
    )
    .expect("start the OpenID Connect provider");
    common::ui::wait_http(&format!("{issuer}/.well-known/openid-configuration")).await;

    // The dashboard's Secret, made before the release as its README says.
    run(
        cp.kubectl().args(["create", "namespace", NAMESPACE]),
        "create the release namespace",
    );
    use base64::Engine;
    let cookie_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 64]>());
    run(
        cp.kubectl().args([
            "create",
            "secret",
            "generic",
            "portico-dashboard",
            "-n",
            NAMESPACE,
            "--from-literal=client-secret=install-secret",
            &format!("--from-literal=cookie-key={cookie_key}"),
        ]),
        "create the dashboard's Secret",
    );

    let set = |k: &str, v: &str| format!("{k}={v}");
    let values = [
        set("image.repository", repository),
        set("image.tag", tag),
        set("image.pullPolicy", "Never"),
        set("dashboard.enabled", "true"),
        set("dashboard.publicUrl", public_url),
        set("dashboard.oidc.issuer", &issuer),
        set("dashboard.oidc.usernameClaim", "preferred_username"),
        set("dashboard.oidc.usernamePrefix", "-"),
        set("dashboard.existingSecret", "portico-dashboard"),
        set("tests.image", portico::controlplane::node::images::TOOLBOX_IMAGE),
    ];
    let mut install = helm(
        &cp,
        &["install", RELEASE, CHART, "-n", NAMESPACE, "--wait", "--timeout", "4m"],
    );
    for v in &values {
        install.args(["--set", v]);
    }
    run(&mut install, "helm install");
    step(started, "helm install --wait done");

    // Both components run from the image, and the operator wrote its CA into
    // the chart's webhook configurations.
    assert_eq!(pods_of(&cp, "operator").await.len(), 2, "two operator replicas");
    assert_eq!(pods_of(&cp, "dashboard").await.len(), 2, "two dashboard replicas");
    let pod: Pod = Api::namespaced(admin.clone(), NAMESPACE)
        .get(&pods_of(&cp, "operator").await[0])
        .await
        .unwrap();
    assert_eq!(pod.spec.unwrap().containers[0].image.as_deref(), Some(image.as_str()));
    let hooks: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let validating = common::wait::present(&hooks, RELEASE, "the operator writes the caBundle", |v| {
        v.webhooks
            .iter()
            .flatten()
            .all(|h| h.client_config.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty()))
    })
    .await;
    assert!(
        validating
            .labels()
            .get("app.kubernetes.io/managed-by")
            .is_some_and(|m| m == "Helm")
    );

    step(started, "the operator wrote the caBundle");

    // A user's Terminal, through the webhook's Service and the operator in
    // its pod: a shell with the user's rights and nothing more.
    portico::dev::setup_demo(&admin).await.expect("the demo tenants");
    portico::install::wait_aggregated(&admin)
        .await
        .expect("aggregated roles");
    let alice = cp.user_kubeconfig("alice", &["developers"]).unwrap();
    let terminal = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/terminal.yaml");
    apply_ready(&cp, &alice, terminal);
    step(started, "alice's Terminal is Ready");
    let terminals: Api<Terminal> = Api::namespaced(admin.clone(), "team-a");
    let t = terminals.get("team-a-shell").await.unwrap();
    let created_by = t
        .annotations()
        .get(portico::api::keys::CREATED_BY)
        .cloned()
        .unwrap_or_default();
    assert!(
        created_by.contains("alice"),
        "the webhook recorded the creator: {created_by:?}"
    );
    let shell_pod = t
        .status
        .as_ref()
        .and_then(|s| s.pod_name.clone())
        .expect("status names the pod");
    let allowed = in_shell(&cp, &shell_pod, "kubectl get configmaps -n team-a -o name");
    assert!(
        allowed.status.success(),
        "in the shell, kubectl reaches team-a: {}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let denied = in_shell(&cp, &shell_pod, "kubectl get configmaps -n team-b");
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Forbidden"),
        "team-b is not alice's: {}",
        String::from_utf8_lossy(&denied.stderr)
    );

    // The dashboard, through its Service, from a pod: the login page sends
    // users to the provider, and the terminal page's scripts are in the image.
    let dashboard = format!("http://{RELEASE}-dashboard.{NAMESPACE}.svc.cluster.local");
    let login = in_shell(
        &cp,
        &shell_pod,
        &format!("curl -sS -o /dev/null --max-time 10 -w '%{{http_code}} %{{redirect_url}}' {dashboard}/login"),
    );
    let login = String::from_utf8_lossy(&login.stdout).into_owned();
    assert!(
        login.starts_with("303 ") && login.contains(&format!("{issuer}/")) && login.contains("client_id=portico"),
        "the login page sends users to the provider: {login:?}"
    );
    let xterm = common::http_get_in_pod(&cp, "team-a", &shell_pod, &format!("{dashboard}/vendor/xterm.js"));
    assert!(xterm.len() > 10_000, "xterm.js is served from the image");

    step(started, "the shell and the dashboard answered");

    // helm test: the chart's own checks of the operator, webhook and dashboard.
    run(
        &mut helm(&cp, &["test", RELEASE, "-n", NAMESPACE, "--timeout", "2m"]),
        "helm test",
    );

    // An upgrade to a changed configuration rolls both components; the
    // Terminal and its pod are the same ones, once, and a new pod leads.
    let operators_before = pods_of(&cp, "operator").await;
    let holder_before = lease_holder(&cp).await.expect("an operator holds the Lease");
    assert!(operators_before.contains(&holder_before));
    let pod_before = t.status.as_ref().and_then(|s| s.pod_name.clone());
    let mut upgrade = helm(
        &cp,
        &[
            "upgrade",
            RELEASE,
            CHART,
            "-n",
            NAMESPACE,
            "--wait",
            "--timeout",
            "4m",
            "--reuse-values",
        ],
    );
    upgrade.args([
        "--set",
        "operator.logLevel=debug",
        "--set",
        "dashboard.terminals.warnMinutes=3",
    ]);
    run(&mut upgrade, "helm upgrade");
    step(started, "helm upgrade --wait done");
    let operators_after = pods_of(&cp, "operator").await;
    assert!(
        operators_after.iter().all(|p| !operators_before.contains(p)),
        "every operator pod was replaced: {operators_before:?} -> {operators_after:?}"
    );
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NAMESPACE);
    let after = operators_after.clone();
    common::wait::present(&leases, &format!("{RELEASE}-operator"), "a new pod leads", move |l| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_ref())
            .is_some_and(|h| after.contains(h))
    })
    .await;
    let same = terminals.get("team-a-shell").await.unwrap();
    assert_eq!(same.uid(), t.uid(), "the Terminal is the same object");
    common::wait::present(&terminals, "team-a-shell", "still Ready under the new leader", |t| {
        t.status.as_ref().is_some_and(|s| common::wait::ready(&s.conditions))
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "team-a");
    let of_terminal = pods
        .list(&ListParams::default().labels(&format!("{UID_LABEL}={}", t.uid().unwrap())))
        .await
        .unwrap();
    let names: Vec<String> = of_terminal.items.iter().map(|p| p.name_any()).collect();
    assert_eq!(
        names,
        pod_before.into_iter().collect::<Vec<_>>(),
        "one pod, the same one"
    );

    // Uninstall: users end their Terminals first (the README's order), so the
    // operator's finalizers clean up; then nothing of the release is left
    // that stops the cluster from admitting and deleting.
    run(
        cp.kubectl().arg("--kubeconfig").arg(&alice).args([
            "delete",
            "-n",
            "team-a",
            "-f",
            terminal,
            "--wait=true",
            "--timeout=90s",
        ]),
        "alice deletes her Terminal",
    );
    step(started, "the Terminal is gone");
    run(
        &mut helm(
            &cp,
            &["uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m"],
        ),
        "helm uninstall",
    );
    step(started, "helm uninstall --wait done");
    assert!(
        Api::<MutatingWebhookConfiguration>::all(admin.clone())
            .get_opt(RELEASE)
            .await
            .unwrap()
            .is_none(),
        "no mutating webhook configuration is left"
    );
    assert!(
        hooks.get_opt(RELEASE).await.unwrap().is_none(),
        "no validating webhook configuration is left"
    );
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    assert!(deployments.list(&ListParams::default()).await.unwrap().items.is_empty());
    // The CRDs stay (Helm never deletes them); with no webhook, writes pass
    // and deletes of Portico objects without a finalizer go through.
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "after-uninstall"}})).unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), "team-a")
        .create(&PostParams::default(), &cm)
        .await
        .expect("the cluster admits writes after the uninstall");
    let left = run(
        cp.kubectl().args(["get", "crd", "terminals.portico.dev", "-o", "name"]),
        "the CRD is kept",
    );
    assert_eq!(
        left.trim(),
        "customresourcedefinition.apiextensions.k8s.io/terminals.portico.dev"
    );

    // Flux installs the same chart from Git: examples/flux/helmrelease.yaml
    // as it is, but for its URL (a repository on loopback holding the chart
    // at tag v0.1.0) and the local image in its values. Deleting the
    // HelmRelease uninstalls it.
    let flux = common::flux::run(&cp, &["source-controller", "helm-controller"]).await;
    let git = common::git::GitServer::start();
    let repo = git.repository("portico");
    common::copy_dir(std::path::Path::new(CHART), &repo.work.join("charts/portico"));
    repo.commit(&[], "The chart");
    repo.tag("v0.1.0");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flux/helmrelease.yaml"))
        .unwrap()
        .replace("https://git.example.com/platform/portico.git", &repo.url);
    use serde::Deserialize;
    let mut docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&example)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .collect();
    let release = docs
        .iter_mut()
        .find(|d| d["kind"] == "HelmRelease")
        .expect("the example's HelmRelease");
    release["spec"]["values"]["image"] =
        serde_json::json!({"repository": repository, "tag": tag, "pullPolicy": "Never"});
    let file = cp.dir().join("helmrelease.yaml");
    std::fs::write(
        &file,
        docs.iter()
            .map(|d| serde_yaml_ng::to_string(d).unwrap())
            .collect::<Vec<_>>()
            .join("---\n"),
    )
    .unwrap();
    run(
        cp.kubectl().arg("apply").arg("-f").arg(&file),
        "apply the HelmRelease example",
    );
    let releases: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin.clone(),
        NAMESPACE,
        &kube::api::ApiResource {
            group: "helm.toolkit.fluxcd.io".into(),
            version: "v2".into(),
            api_version: "helm.toolkit.fluxcd.io/v2".into(),
            kind: "HelmRelease".into(),
            plural: "helmreleases".into(),
        },
    );
    let ready = |o: &kube::api::DynamicObject| {
        o.data["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let installed = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        kube::runtime::wait::await_condition(
            releases.clone(),
            RELEASE,
            move |o: Option<&kube::api::DynamicObject>| o.is_some_and(ready),
        ),
    )
    .await;
    if installed.is_err() {
        let now = releases.get(RELEASE).await.map(|o| o.data["status"].clone());
        panic!("the HelmRelease did not become Ready: {now:#?}");
    }
    step(started, "Flux's helm-controller installed the chart");
    let operators = pods_of(&cp, "operator").await;
    assert_eq!(operators.len(), 2, "two operator replicas, installed by Flux");
    let pod: Pod = Api::namespaced(admin.clone(), NAMESPACE)
        .get(&operators[0])
        .await
        .unwrap();
    assert_eq!(pod.spec.unwrap().containers[0].image.as_deref(), Some(image.as_str()));
    let history = releases.get(RELEASE).await.unwrap().data["status"]["history"][0].clone();
    assert_eq!(history["chartName"], "portico", "{history}");
    assert_eq!(history["status"], "deployed", "{history}");
    common::wait::present(&hooks, RELEASE, "the operator writes the caBundle", |v| {
        v.webhooks
            .iter()
            .flatten()
            .all(|w| w.client_config.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty()))
    })
    .await;
    run(
        cp.kubectl()
            .args(["delete", "helmrelease", RELEASE, "-n", NAMESPACE, "--timeout=3m"]),
        "delete the HelmRelease",
    );
    common::wait::gone(&hooks, RELEASE).await;
    assert!(
        deployments.list(&ListParams::default()).await.unwrap().items.is_empty(),
        "Flux uninstalled the release"
    );
    run(
        cp.kubectl().args([
            "delete",
            "gitrepository",
            "portico",
            "-n",
            common::flux::NAMESPACE,
            "--timeout=1m",
        ]),
        "delete the GitRepository",
    );
    drop(flux);
    step(started, "deleting the HelmRelease uninstalled it");

    // One command installs it all again over what the uninstall kept:
    // `portico dev --kubeconfig` (the chart, the catalog, the demo tenants
    // and their session profiles), and again (an upgrade in place).
    for round in ["installs", "upgrades"] {
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_portico"))
                .args(["dev", "--kubeconfig"])
                .arg(cp.kubeconfig_path())
                .args(["--image", &image])
                .env("PORTICO_K8S_BIN", cp.binaries().dir()),
            &format!("portico dev --kubeconfig {round}"),
        );
        assert!(out.contains("Portico is installed"), "{out}");
        step(started, &format!("portico dev --kubeconfig {round}"));
    }
    assert_eq!(pods_of(&cp, "operator").await.len(), 2, "two operator replicas");
    let catalog: Api<ConfigMap> = Api::namespaced(admin.clone(), portico::dev::CATALOG_NAMESPACE);
    assert!(
        !catalog
            .list(&ListParams::default().labels("portico.dev/template"))
            .await
            .unwrap()
            .items
            .is_empty(),
        "the catalog is loaded"
    );
    apply_ready(&cp, &alice, terminal);
    step(started, "a Terminal is Ready again");
}
