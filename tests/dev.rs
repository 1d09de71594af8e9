//! `portico dev` as a newcomer runs it: it prints its kubeconfig, the
//! dashboard URL and what to try; the demo users can use Portico with the
//! real kubectl (the three examples become Ready under `kubectl wait`, their
//! pods running on the node); alice logs in to the dashboard in Chromium, deploys a catalog
//! template and sees it in the list; and Ctrl-C stops everything it started.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        if fields.get(1).and_then(|pp| pp.parse::<u32>().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

#[test]
fn portico_dev_runs_the_demo_and_ctrl_c_leaves_nothing_running() {
    let bin = portico::controlplane::Binaries::ensure().expect("kubernetes binaries");
    let cache = tempfile::tempdir().unwrap();
    let mut dev = Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("dev")
        .env("PORTICO_K8S_BIN", bin.dir())
        .env("PORTICO_CACHE", cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = dev.id();
    let mut kubeconfig = None;
    let mut dashboard = None;
    let mut prometheus = None;
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(300);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(p) = line.strip_prefix("Kubeconfig: ") {
            kubeconfig = Some(p.to_string());
        }
        if let Some(rest) = line.strip_prefix("Dashboard: ") {
            dashboard = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("Prometheus: http") {
            prometheus = rest.split_whitespace().next().map(|r| format!("http{r}"));
        }
        if line.contains("Press Ctrl-C to stop.") || Instant::now() > deadline {
            break;
        }
    }
    let kubeconfig = kubeconfig.expect("portico dev prints its kubeconfig");
    let kubectl = |args: &[&str]| {
        Command::new(bin.path("kubectl"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    // The three examples, applied as alice, become Ready as `kubectl wait`
    // sees it: on the node `portico dev` starts (the suite runs as root, so
    // it has one) their pods run (the web app's two replicas, the
    // terminal's toolbox shell), and the session's kubeconfig is issued.
    let examples = [
        ("team-a", "deployment.yaml", "deployments.portico.dev/hello"),
        ("team-a", "terminal.yaml", "terminal/team-a-shell"),
        (
            portico::dev::demo::SESSIONS_NAMESPACE,
            "sessionclaim.yaml",
            "sessionclaim/my-session",
        ),
    ];
    for (ns, file, _) in examples {
        let example = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
        let out = kubectl(&["--context", "alice", "apply", "-n", ns, "-f", &example]);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for (ns, _, object) in examples {
        let out = kubectl(&[
            "--context",
            "alice",
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "--timeout=180s",
            object,
        ]);
        assert!(
            out.status.success(),
            "kubectl wait --for=condition=Ready {object}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The Prometheus it runs scrapes the operator: the web app's change that
    // turned Ready is counted there, for Insights.
    let prometheus = prometheus.expect("portico dev runs Prometheus (the suite installs Debian's package)");
    let counted = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let q = "sum(portico_deployment_changes_total{template=\"webapp\",outcome=\"ready\"})";
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v: serde_json::Value = reqwest::Client::new()
                .get(format!(
                    "{prometheus}/api/v1/query?query={}",
                    openidconnect::url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let value = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok());
            if value.is_some_and(|v| v >= 1.0) || Instant::now() > deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    assert!(
        counted.is_some_and(|v| v >= 1.0),
        "Prometheus counts the web app's change: {counted:?}"
    );
    let out = kubectl(&["--context", "alice", "get", "portico", "-n", "team-a"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployment.portico.dev/hello"));
    let out = kubectl(&["--context", "bob", "get", "pdeploy", "-n", "team-a"]);
    assert!(!out.status.success(), "bob may not look into team-a");

    // The dashboard in Chromium: the development login page, alice deploys the
    // web application from the catalog and sees it in the list, next to the
    // deployment she applied with kubectl.
    let dashboard = dashboard.expect("portico dev prints the dashboard URL");
    let browser = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"));
    if !browser.join("node_modules/playwright-core").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(browser)
            .output()
            .unwrap();
        assert!(out.status.success(), "npm ci: {}", String::from_utf8_lossy(&out.stderr));
    }
    let artifacts = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/test-artifacts/screenshots"));
    std::fs::create_dir_all(artifacts).unwrap();
    let shots = ["login", "catalog", "deployment", "deployments"].map(|s| artifacts.join(format!("dev-{s}.png")));
    for shot in &shots {
        let _ = std::fs::remove_file(shot);
    }
    let out = Command::new("node")
        .arg(browser.join("dev_flow.mjs"))
        .args([dashboard.as_str(), "alice", "team-a", "from-the-browser"])
        .arg(artifacts)
        .arg("hello")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "the browser flow failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for shot in &shots {
        assert!(shot.exists(), "screenshot {}", shot.display());
    }
    // What the browser created is alice's, and the operator reconciles it.
    let out = kubectl(&[
        "--context",
        "alice",
        "wait",
        "-n",
        "team-a",
        "--for=jsonpath={.status.templateRevision}",
        "--timeout=60s",
        "deployments.portico.dev/from-the-browser",
    ]);
    assert!(
        out.status.success(),
        "the operator reconciles the browser's deployment: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&[
        "--context",
        "admin",
        "get",
        "-n",
        "team-a",
        "deployments.portico.dev/from-the-browser",
        "-o",
        "jsonpath={.metadata.annotations.portico\\.dev/created-by}",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"user\":\"alice\""),
        "created as alice: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let started = children_of(pid);
    assert!(
        started.len() >= 3,
        "etcd, kube-apiserver and kube-controller-manager run under portico dev: {started:?}"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = dev.wait().unwrap();
    assert!(status.success(), "Ctrl-C ends portico dev cleanly: {status}");
    for p in started {
        let gone = (0..200).any(|_| {
            let a = alive(p);
            if a {
                std::thread::sleep(Duration::from_millis(50));
            }
            !a
        });
        assert!(gone, "process {p} outlived portico dev");
    }
}

#[test]
fn options_for_an_existing_cluster_without_kubeconfig_are_refused_before_anything_starts() {
    for args in [&["--image", "registry.example/portico:1"][..], &["--no-demo"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_portico"))
            .arg("dev")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "a usage error for {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the following required arguments were not provided") && err.contains("--kubeconfig"),
            "{args:?}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "nothing started: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // And the local cluster's option with an existing one.
    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["dev", "--no-node", "--kubeconfig", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
