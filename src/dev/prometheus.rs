//! The Prometheus `portico dev` runs (Debian's `prometheus`): it scrapes the
//! operator and the dashboard every 5 s into the cluster's own directory
//! (its history lasts as long as the cluster), and the dashboard reads
//! Insights' figures over time from it. Without the program, `portico dev`
//! says how to install it and runs without (Insights then says what to
//! configure).

use std::path::{Path, PathBuf};

use crate::controlplane::Process;

/// Where Debian's package `prometheus` puts the server.
pub const PROGRAM: &str = "/usr/bin/prometheus";

/// What to do when [`PROGRAM`] is missing.
pub const MISSING: &str = "Prometheus is not installed (/usr/bin/prometheus): `apt-get install prometheus` gives Insights its figures over time; running without it";

/// The configuration that scrapes the operator's and the dashboard's
/// `/metrics` on the loopback addresses (pure).
pub fn config(operator_metrics: u16, dashboard: u16) -> String {
    format!(
        "global: {{scrape_interval: 5s, evaluation_interval: 5s}}\n\
         scrape_configs:\n\
         \x20 - job_name: portico-operator\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{operator_metrics}']}}]\n\
         \x20 - job_name: portico-dashboard\n\
         \x20   static_configs: [{{targets: ['127.0.0.1:{dashboard}']}}]\n"
    )
}

/// A running Prometheus.
pub struct Prometheus {
    _process: Process,
    /// Its HTTP API and UI.
    pub url: String,
}

/// Starts Prometheus on `port` with its files under `dir`, scraping the
/// operator's metrics port and the dashboard's port; waits until it is ready.
pub async fn start(dir: &Path, port: u16, operator_metrics: u16, dashboard: u16) -> std::io::Result<Prometheus> {
    let dir: PathBuf = dir.join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config(operator_metrics, dashboard))?;
    let process = Process::spawn(
        "prometheus",
        PROGRAM.as_ref(),
        &[
            format!("--config.file={}", file.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &dir.join("prometheus.log"),
    )?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if std::time::Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "Prometheus did not listen on port {port} within 60 s; see {}",
                dir.join("prometheus.log").display()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(Prometheus { _process: process, url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_scrapes_the_operator_and_the_dashboard() {
        let c: serde_json::Value = serde_yaml_ng::from_str(&config(9100, 8080)).unwrap();
        let targets: Vec<&str> = c["scrape_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["static_configs"][0]["targets"][0].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["127.0.0.1:9100", "127.0.0.1:8080"]);
    }
}
