//! Runs `portico operator` as a child process against a control plane, with
//! its webhook registered by URL on loopback. As with the Helm chart, the
//! webhook configurations are made for the operator (here by the admin) and
//! the operator writes only their `caBundle`.
#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, api::PostParams};
use portico::controlplane::{ControlPlane, Process, free_port};

/// A running operator.
pub struct Operator {
    pub process: Process,
    pub metrics_port: u16,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

/// Writes a configuration for a test operator; `extra` is appended YAML
/// (top-level keys). Its `/metrics` (on a loopback address) answers
/// without a token; [`write_config_authorizing`] keeps the default.
pub fn write_config(cp: &ControlPlane, extra: &str) -> (PathBuf, u16) {
    write_config_authorizing(cp, extra, false)
}

/// Like [`write_config`]; `authorize`: `/metrics` only for a bearer token
/// allowed to get it (the default outside tests).
pub fn write_config_authorizing(cp: &ControlPlane, extra: &str, authorize: bool) -> (PathBuf, u16) {
    let webhook_port = free_port().unwrap();
    let metrics_port = free_port().unwrap();
    let admin_port = free_port().unwrap();
    let text = format!(
        "webhook:\n  bindAddress: 127.0.0.1:{webhook_port}\n  url: https://127.0.0.1:{webhook_port}\n  \
         certSecret: {{namespace: portico-system, name: portico-webhook-tls}}\n  \
         manageConfigurations: false\n  injectCaBundle: true\n\
         metrics:\n  bindAddress: 127.0.0.1:{metrics_port}\n  adminBindAddress: 127.0.0.1:{admin_port}\n  authorize: {authorize}\n\
         {extra}"
    );
    let text = if extra.contains("leaderElection") {
        text
    } else {
        format!("{text}leaderElection: {{namespace: portico-system, leaseDuration: 4s}}\n")
    };
    let path = cp.dir().join(format!("operator-{webhook_port}.yaml"));
    std::fs::write(&path, text).unwrap();
    (path, metrics_port)
}

/// A token (TokenRequest, an hour) of the service account `name` in `ns`,
/// made if missing.
pub async fn service_account_token(cp: &ControlPlane, ns: &str, name: &str) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    ensure_namespace(cp, ns).await;
    let sas: Api<ServiceAccount> = Api::namespaced(cp.admin_client().await.unwrap(), ns);
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    match sas.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("service account {ns}/{name}: {e}"),
    }
    token(&sas, name, 3600).await
}

/// A TokenRequest token of service account `name` (in `sas`' namespace), valid `seconds`.
async fn token(sas: &Api<k8s_openapi::api::core::v1::ServiceAccount>, name: &str, seconds: i64) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(seconds),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request(name, &PostParams::default(), &req)
        .await
        .unwrap();
    token.status.unwrap().token.unwrap()
}

/// The chart's own RBAC for the operator, applied to `cp`, and a kubeconfig
/// that authenticates as the chart's service account (a TokenRequest token):
/// the operator in tests has exactly the permissions the chart grants.
/// The chart's API Priority and Fairness objects are applied too, so every
/// operator test runs in the chart's priority level.
pub async fn chart_kubeconfig(cp: &ControlPlane) -> PathBuf {
    let path = chart_identity(cp, "templates/operator-rbac.yaml", "portico-operator").await;
    let flow = cp.dir().join("portico-operator-flowcontrol.yaml");
    if !flow.exists() {
        apply_chart(cp, "templates/flowcontrol.yaml", &flow);
    }
    path
}

/// Renders one of the chart's templates into `file` and applies it to `cp`.
fn apply_chart(cp: &ControlPlane, template: &str, file: &std::path::Path) {
    std::fs::write(file, render_chart(cp, template)).unwrap();
    let out = cp
        .kubectl()
        .args(["apply", "--server-side", "-f"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apply the chart's {template}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies one of the chart's RBAC templates and returns a kubeconfig that
/// authenticates as service account `sa` of namespace portico-system.
pub async fn chart_identity(cp: &ControlPlane, template: &str, sa: &str) -> PathBuf {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let path = cp.dir().join(format!("{sa}.kubeconfig"));
    if path.exists() {
        return path;
    }
    ensure_namespace(cp, "portico-system").await;
    ensure_namespace(cp, portico::dev::CATALOG_NAMESPACE).await;
    apply_chart(cp, template, &cp.dir().join(format!("{sa}-rbac.yaml")));
    let sas: Api<ServiceAccount> = Api::namespaced(cp.admin_client().await.unwrap(), "portico-system");
    let token = token(&sas, sa, 24 * 3600).await;
    let mut kc = cp.kubeconfig().clone();
    for a in &mut kc.auth_infos {
        a.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        });
    }
    std::fs::write(&path, portico::controlplane::kubeconfig::to_yaml(&kc)).unwrap();
    path
}

/// One template of the chart, rendered by the real helm for release `portico`
/// in namespace portico-system (with the values the dashboard requires).
pub fn render_chart(cp: &ControlPlane, template: &str) -> String {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/portico");
    let rendered = std::process::Command::new(cp.binaries().path("helm"))
        .args([
            "template",
            "portico",
            chart,
            "-n",
            "portico-system",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "dashboard.publicUrl=http://127.0.0.1",
            "--set",
            "dashboard.oidc.issuer=http://127.0.0.1",
            "--set",
            "dashboard.existingSecret=unused",
            "--show-only",
            template,
        ])
        .output()
        .expect("run helm");
    assert!(
        rendered.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    String::from_utf8(rendered.stdout).expect("helm writes UTF-8")
}

impl Operator {
    /// Starts the operator with `config_path`, as the chart's service account,
    /// and waits until `/readyz` passes.
    pub async fn start(cp: &ControlPlane, config_path: PathBuf, metrics_port: u16) -> Operator {
        ensure_namespace(cp, "portico-system").await;
        register_webhook(cp, &config_path).await;
        let kubeconfig = chart_kubeconfig(cp).await;
        let log_path = config_path.with_extension("log");
        let process = Process::spawn_with_env(
            "portico-operator",
            env!("CARGO_BIN_EXE_portico").as_ref(),
            &[
                "operator".into(),
                "--config".into(),
                config_path.to_string_lossy().into_owned(),
                "--log".into(),
                "info,portico=debug".into(),
            ],
            &[("KUBECONFIG", kubeconfig.as_os_str())],
            &log_path,
        )
        .expect("start the operator");
        let mut op = Operator {
            process,
            metrics_port,
            config_path,
            log_path,
        };
        op.wait_ready().await;
        op
    }

    /// Waits for `/readyz` (bounded: a failure after 60s shows the operator's log).
    pub async fn wait_ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.metrics_port);
        for _ in 0..600 {
            if let Some(status) = self.process.exited() {
                panic!("operator exited ({status}); log:\n{}", self.process.log_tail(60));
            }
            if let Ok(body) = http_get(&url).await
                && body == "ok"
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("operator not ready; log:\n{}", self.process.log_tail(60));
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .expect("metrics")
    }
}

/// Makes the webhook configurations an operator with `config_path` serves,
/// as the chart does: without a `caBundle`, which the operator writes.
async fn register_webhook(cp: &ControlPlane, config_path: &std::path::Path) {
    use portico::webhook::registration::{mutating, validating};
    let text = std::fs::read_to_string(config_path).unwrap();
    let config = portico::config::OperatorConfig::from_yaml(&text).unwrap();
    if !config.webhook.inject_ca_bundle {
        return;
    }
    let admin = cp.admin_client().await.unwrap();
    let mut m = mutating(&config.webhook, "");
    let mut v = validating(&config.webhook, "");
    for hook in m.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = None;
    }
    for hook in v.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = None;
    }
    portico::install::apply(&admin, &m).await.unwrap();
    portico::install::apply(&admin, &v).await.unwrap();
}

/// A tiny HTTP/1.0 GET on loopback (no client dependency for a health probe).
pub async fn http_get(url: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(head.to_string()));
    }
    Ok(body.to_string())
}

pub async fn ensure_namespace(cp: &ControlPlane, name: &str) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    match Api::<Namespace>::all(cp.admin_client().await.unwrap())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}
