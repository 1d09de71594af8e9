//! The webhook's certificate, kept current without a restart.
//!
//! The HTTPS server asks [`Reloadable`] for its certificate on every
//! handshake, so a new one takes effect at once. [`keep_current`] watches
//! where the certificate comes from:
//!
//! ```text
//! certDir (cert-manager) ── files change ──────────────▶ reload
//! certSecret (generated) ── the Secret changes ────────▶ reload, and write its
//!                                                        CA bundle into the webhook
//!                                                        configurations' caBundle
//!                        ── a third of its life left ──▶ a new CA and certificate
//!                                                        into the Secret (the CA
//!                                                        bundle keeps the old CA
//!                                                        too, so replicas still
//!                                                        serving the old one are
//!                                                        trusted until they reload)
//! ```
//!
//! Every replica watches the same Secret; a renewal is written with the
//! Secret's resourceVersion as a precondition, so when several replicas
//! renew at once one wins and the others take its certificate.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{
    registration,
    tls::{self, TlsError, TlsMaterial},
};
use crate::config::WebhookConfig;

/// How often a certificate directory is read again.
const DIR_POLL: Duration = Duration::from_secs(10);
/// How often the generated certificate's age is checked.
const RENEW_CHECK: Duration = Duration::from_secs(3600);

/// The serving certificate the HTTPS server presents, replaceable while it runs.
#[derive(Debug)]
pub struct Reloadable {
    current: RwLock<(String, Arc<CertifiedKey>)>,
}

fn certified(m: &TlsMaterial) -> Result<Arc<CertifiedKey>, TlsError> {
    let bad = |reason: String| TlsError::File {
        path: "(loaded certificate)".into(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| bad(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signing);
    // A certificate with another's key (files caught mid-rotation) is refused.
    certified.keys_match().map_err(|e| bad(e.to_string()))?;
    Ok(Arc::new(certified))
}

impl Reloadable {
    /// Starts with `m`.
    pub fn new(m: &TlsMaterial) -> Result<Arc<Reloadable>, TlsError> {
        Ok(Arc::new(Reloadable {
            current: RwLock::new((m.cert_pem.clone(), certified(m)?)),
        }))
    }

    /// Presents `m` from the next handshake on; false when it is what is
    /// presented already.
    pub fn set(&self, m: &TlsMaterial) -> Result<bool, TlsError> {
        let key = certified(m)?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.0 == m.cert_pem {
            return Ok(false);
        }
        *current = (m.cert_pem.clone(), key);
        Ok(true)
    }

    /// A rustls server configuration that asks this for its certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::File {
                path: "(TLS configuration)".into(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(self.clone()))
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).1.clone())
    }
}

/// The CA bundle the API server was last given, and how to give it
/// another ([`registration::publish_ca`], as the operator's mode says).
struct Trust<'a> {
    client: &'a Client,
    cfg: &'a WebhookConfig,
    published: String,
}

impl Trust<'_> {
    /// Publishes `ca` unless the API server has it already; a failure is
    /// tried again at the next offer.
    async fn offer(&mut self, ca: &str) {
        if self.published == ca {
            return;
        }
        match registration::publish_ca(self.client, self.cfg, ca).await {
            Ok(done) => {
                info!(name = %self.cfg.configuration_name, "new webhook CA: {done}");
                self.published = ca.to_string();
            }
            Err(e) => error!(error = %e, "new webhook CA not published; the API server may refuse the webhook"),
        }
    }
}

/// Keeps `served` current until `shutdown`: from `cfg.cert_dir` when set,
/// else from `cfg.cert_secret` (renewing it before it expires). `published`
/// is the CA bundle the API server was given at start; a different one is
/// published.
pub async fn keep_current(
    client: Client,
    cfg: WebhookConfig,
    served: Arc<Reloadable>,
    published: String,
    shutdown: CancellationToken,
) {
    let mut trust = Trust {
        client: &client,
        cfg: &cfg,
        published,
    };
    match &cfg.cert_dir {
        Some(dir) => loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(DIR_POLL) => {}
            }
            match tls::load_dir(dir) {
                Ok(m) => {
                    take(&served, &m);
                    trust.offer(&m.ca_pem).await;
                }
                Err(e) => {
                    warn!(error = %e, "webhook certificate directory unreadable; serving the last good certificate")
                }
            }
        },
        None => watch_secret(&client, &cfg, &served, &mut trust, shutdown).await,
    }
}

fn take(served: &Reloadable, m: &TlsMaterial) {
    match served.set(m) {
        Ok(true) => info!("webhook serving certificate reloaded"),
        Ok(false) => {}
        Err(e) => warn!(error = %e, "new webhook certificate refused; serving the last good one"),
    }
}

async fn watch_secret(
    client: &Client,
    cfg: &WebhookConfig,
    served: &Reloadable,
    trust: &mut Trust<'_>,
    shutdown: CancellationToken,
) {
    let s = &cfg.cert_secret;
    let api: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    let wc = watcher::Config::default().fields(&format!("metadata.name={}", s.name));
    let changes = watcher(api.clone(), wc).default_backoff().applied_objects();
    futures::pin_mut!(changes);
    // The Secret's latest CA bundle.
    let mut latest = trust.published.clone();
    let mut check = tokio::time::interval(RENEW_CHECK);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = check.tick() => {
                trust.offer(&latest).await;
                renew_if_due(&api, cfg, SystemTime::now()).await;
            }
            changed = changes.next() => match changed {
                Some(Ok(secret)) => {
                    let Some(m) = tls::from_secret(&secret) else {
                        warn!(secret = %s.name, "webhook certificate Secret lacks tls.crt, tls.key or ca.crt; serving the last good certificate");
                        continue;
                    };
                    take(served, &m);
                    latest = m.ca_pem;
                    trust.offer(&latest).await;
                }
                Some(Err(e)) => warn!(error = %e, "watching the webhook certificate Secret"),
                None => return,
            },
        }
    }
}

/// Writes a new CA and certificate into the Secret when a third of the
/// current certificate's life is left. A conflict means another replica
/// renewed first.
async fn renew_if_due(api: &Api<Secret>, cfg: &WebhookConfig, now: SystemTime) {
    let name = &cfg.cert_secret.name;
    let Ok(Some(secret)) = api.get_opt(name).await else {
        return;
    };
    let Some(current) = tls::from_secret(&secret) else {
        return;
    };
    match tls::renewal_due(&current.cert_pem, now) {
        Ok(false) => return,
        Ok(true) => {}
        Err(e) => warn!(error = %e, "the webhook certificate cannot be read; renewing it"),
    }
    let fresh = match tls::generate(&tls::hosts(cfg)) {
        Ok(m) => m,
        Err(e) => return warn!(error = %e, "renewing the webhook certificate"),
    };
    let bundle = tls::rotated_bundle(&fresh.ca_pem, &current.ca_pem);
    let patch = tls::secret_patch(&fresh, &bundle, secret.metadata.resource_version.as_deref());
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => info!(secret = %name, "webhook certificate renewed"),
        Err(kube::Error::Api(e)) if e.code == 409 => info!("another replica renewed the webhook certificate"),
        Err(e) => warn!(error = %e, "renewing the webhook certificate"),
    }
}
