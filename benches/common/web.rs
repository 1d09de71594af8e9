//! What the dashboard benchmarks share: a development login, wrk's
//! summary and median, and the median time of a kubectl command (the
//! anchor of a page).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use super::percentile;

/// Logs in on the development login page; returns the session cookie.
pub async fn login(base: &str, user: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The login page's CSRF token and the pre-session cookie it matches.
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let Some(pre) = page.headers().get("set-cookie").cloned() else {
        let status = page.status();
        panic!(
            "{base}/login answered {status} without a cookie: {}",
            page.text().await.unwrap_or_default()
        );
    };
    let pre = pre.to_str().unwrap().split(';').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = &html[at..at + html[at..].find('"').unwrap()];
    let r = http
        .post(format!("{base}/dev-login"))
        .header("cookie", pre)
        .form(&[("user", user), ("csrf", token)])
        .send()
        .await
        .unwrap();
    let Some(set) = r.headers().get("set-cookie").cloned() else {
        let status = r.status();
        panic!(
            "logging in as {user} answered {status} without a session: {}",
            r.text().await.unwrap_or_default()
        );
    };
    let set = set.to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// Runs wrk for `secs` seconds against `url` with `cookie`; returns its summary lines.
pub fn wrk(url: &str, cookie: &str, secs: u32) -> String {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{secs}s"), "--latency", "-H"])
        .arg(format!("Cookie: {cookie}"))
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("50%")
                || t.starts_with("90%")
                || t.starts_with("99%")
                || t.starts_with("Requests/sec")
                || t.contains("requests in")
                || t.starts_with("Non-2xx")
                || t.starts_with("Socket errors")
        })
        .map(|l| format!("    {}", l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// wrk's median latency, in ms.
pub fn p50_ms(summary: &str) -> Option<f64> {
    let v = summary.lines().find_map(|l| l.trim().strip_prefix("50%"))?.trim();
    let (num, scale) = [("us", 0.001), ("ms", 1.0), ("s", 1000.0)]
        .iter()
        .find_map(|(unit, scale)| Some((v.strip_suffix(unit)?.parse::<f64>().ok()?, *scale)))?;
    Some(num * scale)
}

/// The median time of `kubectl ARGS` (admin credentials), run 10 times: the anchor of a page.
pub fn kubectl_p50(cp: &portico::controlplane::ControlPlane, args: &[&str]) -> Duration {
    let mut times: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            let out = cp.kubectl().args(args).output().expect("kubectl");
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed()
        })
        .collect();
    times.sort();
    percentile(&times, 0.5)
}

/// The demo's session profiles as a top-level key of the operator's
/// configuration: the dashboard's logins claim a session of one.
pub fn session_profiles() -> String {
    format!(
        "sessionProfiles: {}\n",
        serde_json::to_string(
            &serde_yaml_ng::from_str::<serde_json::Value>(portico::dev::demo::PROFILES_YAML).unwrap()
        )
        .unwrap()
    )
}

/// Starts `portico ui` as its own process on `port`, the way it runs in a
/// cluster: the development login for alice (developers) and carol
/// (portico-admins), plus `extra` (top-level YAML keys); returns it and its
/// base URL once `/healthz` answers.
pub async fn start_ui(
    cp: &portico::controlplane::ControlPlane,
    port: u16,
    extra: &str,
) -> (portico::controlplane::Process, String) {
    let base = format!("http://127.0.0.1:{port}");
    let config = cp.dir().join("ui.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\npublicUrl: {base}\ndevUsers: [{{name: alice, groups: [developers]}}, {{name: carol, groups: [portico-admins]}}]\nsession: {{profile: developer, namespace: {}}}\n{extra}",
            portico::dev::demo::SESSIONS_NAMESPACE
        ),
    )
    .unwrap();
    let ui = portico::controlplane::Process::spawn_with_env(
        "portico-ui",
        env!("CARGO_BIN_EXE_portico").as_ref(),
        &["ui".into(), "--config".into(), config.to_string_lossy().into_owned()],
        &[("KUBECONFIG", cp.kubeconfig_path().as_os_str())],
        &cp.dir().join("ui.log"),
    )
    .unwrap();
    let http = reqwest::Client::new();
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (ui, base)
}
