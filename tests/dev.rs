//! `portico dev` as a newcomer runs it: it prints its kubeconfig and what to
//! try, the demo users can use Portico with the real kubectl, and Ctrl-C
//! stops everything it started.

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
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/deployment.yaml");
    let out = kubectl(&["--context", "alice", "apply", "-n", "team-a", "-f", example]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = kubectl(&[
        "--context",
        "alice",
        "wait",
        "-n",
        "team-a",
        "--for=jsonpath={.status.templateRevision}",
        "--timeout=60s",
        "deployments.portico.dev/hello",
    ]);
    assert!(
        out.status.success(),
        "the operator reconciles it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&["--context", "alice", "get", "portico", "-n", "team-a"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployment.portico.dev/hello"));
    let out = kubectl(&["--context", "bob", "get", "pdeploy", "-n", "team-a"]);
    assert!(!out.status.success(), "bob may not look into team-a");

    // The dashboard: the development login page, then alice's catalog and her deployment.
    let dashboard = dashboard.expect("portico dev prints the dashboard URL");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let login = http
            .get(format!("{dashboard}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for user in ["alice", "bob", "carol"] {
            assert!(login.contains(&format!("Log in as {user}")), "{login}");
        }
        let r = http
            .post(format!("{dashboard}/dev-login"))
            .form(&[("user", "alice")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let catalog = http
            .get(format!("{dashboard}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(catalog.contains("Web application"), "{catalog}");
        let list = http
            .get(format!("{dashboard}/deployments"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            list.contains("/deployments/team-a/hello"),
            "alice sees the deployment she applied with kubectl: {list}"
        );
    });

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
