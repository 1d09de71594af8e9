//! `portico ui`: the dashboard. OpenID Connect login backed by a SessionClaim
//! per login; catalog, deployments, terminals, account and admin pages; live
//! status from watch caches. Everything it changes it writes as the user.

pub mod access;
pub mod access_user;
pub mod account;
pub mod activity;
pub mod admin;
pub mod assets;
pub mod attach;
pub mod catalog_cache;
pub mod claims;
pub mod client_ip;
pub mod clusters;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod delivery;
pub mod deployment_detail;
pub mod deployment_pods;
pub mod deployments;
pub mod events;
pub mod form;
pub mod format;
pub mod impersonate;
pub mod insights;
pub mod kubectl;
pub mod live;
pub mod logged_in;
pub mod login;
pub mod login_limit;
pub mod metrics;
pub mod namespaces;
pub mod oidc;
pub mod page;
pub mod provider_session;
pub mod readable;
pub mod reasons;
pub mod recent;
pub mod rows;
pub mod scorecard;
pub mod search;
pub mod server;
pub mod session_ends;
pub mod session_limit;
pub mod shortcuts;
pub mod state;
pub mod svg;
pub mod terminals;
pub mod usage;
pub mod user_kubeconfig;

use std::path::Path;

/// Starting the dashboard failed.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// A file could not be read.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    /// The cookie key is not 64 bytes of base64.
    #[error("cookie key in {0}: {1}")]
    Key(String, String),
    /// Discovery or the Kubernetes client failed.
    #[error("{0}")]
    Start(String),
    /// The server failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

fn read(path: &Path) -> Result<String, UiError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| UiError::Read(path.display().to_string(), e))
}

/// Runs the dashboard until SIGTERM or Ctrl-C.
pub async fn run(cfg: config::UiConfig, kube_config: kube::Config) -> Result<(), UiError> {
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    run_until(cfg, kube_config, shutdown).await
}

/// Runs the dashboard until `shutdown` resolves.
pub async fn run_until(
    cfg: config::UiConfig,
    kube_config: kube::Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), UiError> {
    use base64::Engine;
    let key = match &cfg.cookie_key_file {
        Some(path) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(read(path)?)
                .map_err(|e| UiError::Key(path.display().to_string(), e.to_string()))?;
            actix_web::cookie::Key::try_from(bytes.as_slice())
                .map_err(|e| UiError::Key(path.display().to_string(), format!("{e} (need 64 random bytes)")))?
        }
        None => actix_web::cookie::Key::generate(),
    };
    let secret = match &cfg.oidc {
        Some(o) => Some(read(&o.client_secret_file)?),
        None => None,
    };
    let state = state::UiState::new(cfg, kube_config, key, secret)
        .await
        .map_err(UiError::Start)?;
    let refreshing = tokio::spawn(provider_session::run(state.clone()));
    let served = server::serve(state, shutdown).await;
    refreshing.abort();
    served?;
    Ok(())
}
