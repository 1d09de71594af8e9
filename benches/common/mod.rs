//! What the benchmarks share: a control plane with the demo tenants, the
//! catalog and the operator; percentiles, the API server's request count, and
//! a process's peak memory and CPU time.
#![allow(dead_code)]

use std::time::Duration;

use kube::Client;

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

/// Peak RSS (MiB) and CPU seconds of a process, from /proc.
pub fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (hwm_kb / 1024.0, ticks / hz)
}

/// CPU seconds used so far by the processes `pids` and this benchmark itself.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .copied()
        .chain([std::process::id()])
        .map(|p| usage(p).1)
        .sum()
}

/// A line saying how busy the machine's cores were between two readings of
/// [`cpu_seconds`] taken `wall` apart.
pub fn cpu_line(what: &str, cpu: f64, wall: Duration) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "  CPU during {what} (control plane, operator, benchmark): {cpu:.1} s in {:.1} s, {:.0}% of {cores} cores",
        wall.as_secs_f64(),
        100.0 * cpu / wall.as_secs_f64().max(1e-9) / cores as f64
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
