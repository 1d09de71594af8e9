//! `portico operator`: the webhook server (every replica), the metrics and
//! health server, and the controllers (only the replica holding the Lease),
//! with graceful shutdown on SIGTERM.

mod health;
pub mod metrics_auth;
mod seed;

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::{
    clusters::{Clusters, pem_encode},
    config::OperatorConfig,
    controller::{Context, deployment, session, terminal},
    metrics::Metrics,
    telemetry::LogLevel,
    webhook::{self, WebhookState, registration, rotation, tls},
};

/// The operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Webhook TLS material.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The API server refused a setup step.
    #[error("{0}: {1}")]
    Kube(&'static str, #[source] kube::Error),
    /// A server could not bind its address.
    #[error("{0}: {1}")]
    Bind(&'static str, #[source] std::io::Error),
    /// The API server could not be given the webhook's CA.
    #[error("make the API server trust the webhook's CA (its configurations): {0}")]
    PublishCa(#[from] registration::PublishError),
    /// Leader election could not start.
    #[error("leader election: {0}")]
    Lease(String),
}

/// This replica's name: `$POD_NAME`, else the host name and process id.
pub fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(
    config: OperatorConfig,
    kube_config: kube::Config,
    log: Option<LogLevel>,
) -> Result<(), OperatorError> {
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            info!("shutting down");
            shutdown.cancel();
        });
    }
    run_until(config, kube_config, log, shutdown).await
}

/// Runs until `shutdown` is cancelled.
pub async fn run_until(
    config: OperatorConfig,
    kube_config: kube::Config,
    log: Option<LogLevel>,
    shutdown: CancellationToken,
) -> Result<(), OperatorError> {
    let server = config
        .terminal
        .server_url
        .clone()
        .unwrap_or_else(|| kube_config.cluster_url.to_string().trim_end_matches('/').to_string());
    let ca_pem = kube_config
        .root_cert
        .as_ref()
        .map(|certs| certs.iter().map(|c| pem_encode("CERTIFICATE", c)).collect::<String>());
    let client = Client::try_from(kube_config.clone()).map_err(|e| OperatorError::Kube("build client", e))?;
    let metrics = Arc::new(Metrics::default());
    let clusters = Arc::new(Clusters::new(client.clone(), server, ca_pem));
    let ready = Arc::new(AtomicBool::new(false));

    let material = tls::load(&client, &config.webhook).await?;
    let served = rotation::Reloadable::new(&material)?;
    let tls_config = served.server_config()?;
    let done = registration::publish_ca(&client, &config.webhook, &material.ca_pem).await?;
    info!(name = %config.webhook.configuration_name, "{done}");
    let rotating = tokio::spawn(rotation::keep_current(
        client.clone(),
        config.webhook.clone(),
        served.clone(),
        material.ca_pem.clone(),
        shutdown.clone(),
    ));
    let state = WebhookState {
        config: config.clone(),
        clusters: clusters.clone(),
        metrics: metrics.clone(),
        operator_user: Some(own_user(&client).await?),
        turns: Default::default(),
        templates: crate::catalog::watch::Templates::watch(&client, &config.deployment.catalog_namespaces),
    };
    let webhook_server = {
        let shutdown = shutdown.clone();
        let addr = config.webhook.bind_address;
        let ready = ready.clone();
        tokio::spawn(async move {
            let result = webhook::serve(state, tls_config, addr, ready, shutdown.clone().cancelled_owned()).await;
            if let Err(e) = &result {
                error!(error = %e, "webhook server failed");
                shutdown.cancel();
            }
            result
        })
    };
    let guard = config
        .metrics
        .authorize
        .then(|| metrics_auth::Guard::new(client.clone()));
    let health_server = health::serve(
        (config.metrics.bind_address, config.metrics.admin_bind_address),
        metrics.clone(),
        ready.clone(),
        log,
        guard,
        shutdown.clone(),
    )
    .map_err(|e| OperatorError::Bind("metrics server", e))?;

    let seed = seed::load(&client, &config.deployment.seed_secret)
        .await
        .map_err(|e| OperatorError::Kube("read or create the template seed Secret", e))?;
    let ctx = Arc::new(Context::new(
        kube_config,
        seed,
        clusters,
        config.clone(),
        metrics,
        &identity(),
    ));
    if config.leader_election.enabled {
        lead(&config, client, ctx, shutdown.clone()).await?;
    } else {
        run_controllers(ctx, shutdown.clone()).await;
    }
    shutdown.cancel();
    let _ = webhook_server.await;
    let _ = health_server.await;
    let _ = rotating.await;
    info!("stopped");
    Ok(())
}

async fn run_controllers(ctx: Arc<Context>, stop: CancellationToken) {
    info!("controllers starting");
    // portico_leader is 1 while this replica runs the controllers.
    let _leading = ctx.metrics.leading();
    tokio::join!(
        terminal::run(ctx.clone(), stop.clone().cancelled_owned()),
        session::run(ctx.clone(), stop.clone().cancelled_owned()),
        deployment::run(ctx, stop.cancelled_owned())
    );
    info!("controllers stopped");
}

/// Runs the controllers whenever this replica holds the Lease.
async fn lead(
    config: &OperatorConfig,
    client: Client,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) -> Result<(), OperatorError> {
    let le = &config.leader_election;
    let secs = Duration::from(le.lease_duration).as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, &le.lease_name)
        .with_namespace(&le.namespace)
        .with_identity(identity())
        .with_duration(secs)
        .with_grace((secs / 3).max(1))
        .with_field_manager(crate::install::FIELD_MANAGER)
        .build()
        .await
        .map_err(|e| OperatorError::Lease(e.to_string()))?;
    let (mut leading, task) = manager.watch().await;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if *leading.borrow_and_update() {
            info!(lease = %le.lease_name, "leading");
            let stop = shutdown.child_token();
            let controllers = tokio::spawn(run_controllers(ctx.clone(), stop.clone()));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    changed = leading.changed() => {
                        if changed.is_err() || !*leading.borrow_and_update() { break; }
                    }
                }
            }
            stop.cancel();
            let _ = controllers.await;
            if !shutdown.is_cancelled() {
                info!("lost the lease; standing by");
            }
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = leading.changed() => if changed.is_err() { break },
            }
        }
    }
    drop(leading);
    if let Ok(Ok(manager)) = task.await {
        let _ = manager.release().await;
    }
    Ok(())
}

/// The operator's own user name, as the API server authenticates it.
async fn own_user(client: &Client) -> Result<String, OperatorError> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let review = kube::Api::<SelfSubjectReview>::all(client.clone())
        .create(&Default::default(), &Default::default())
        .await
        .map_err(|e| OperatorError::Kube("ask the API server who the operator is (SelfSubjectReview)", e))?;
    Ok(review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_default())
}
