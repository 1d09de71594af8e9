//! Prometheus metrics (prometheus-client, OpenMetrics text) for the
//! controllers and the webhook, plus what every Portico process exports:
//! `portico_build_info` and the process metrics Prometheus' client libraries
//! name `process_*`, read from `/proc` at each scrape (the parsing is pure).

pub mod delivery;
mod process;
pub mod usage;

use std::time::Instant;

use process::ProcessCollector;
pub use process::{ProcessStats, boot_time, clock_ticks, max_open_files, parse_stat, status_kb};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::api::Kind;

/// Every kind, for series that start at zero.
const KINDS: [Kind; 3] = [Kind::Terminal, Kind::Deployment, Kind::SessionClaim];

/// The reasons `controller::Error::metric_label` gives: each kind's error
/// counter starts at zero for each, so a rate exists before the first error.
pub const RECONCILE_ERROR_REASONS: [&str; 8] = [
    "kube",
    "cluster",
    "finalizer",
    "token",
    "cleanup",
    "catalog",
    "discovery",
    "cache",
];

/// Why Terminals and SessionClaims end (`api::EndReason`), for `portico_expirations_total`.
const END_REASONS: [&str; 3] = ["IdleTimeout", "MaxLifetime", "Deleted"];

/// Labels of `portico_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate's version (`CARGO_PKG_VERSION`).
    pub version: String,
}

/// Labels with just the kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `Terminal`, `Deployment` or `SessionClaim`.
    pub kind: String,
}

/// Labels with a kind and a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The kind.
    pub kind: String,
    /// A stable reason.
    pub reason: String,
}

/// Labels with a session profile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabels {
    /// The session profile.
    pub profile: String,
}

/// Labels of admission requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// The kind.
    pub kind: String,
    /// `mutate` or `validate`.
    pub webhook: String,
    /// `true` or `false`.
    pub allowed: String,
}

/// Labels of admission answers' durations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The kind.
    pub kind: String,
    /// `mutate` or `validate`.
    pub webhook: String,
}

/// Every metric Portico exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles started.
    pub reconciles: Family<KindLabels, Counter>,
    /// Reconciles that failed, by error reason.
    pub errors: Family<ReasonLabels, Counter>,
    /// Reconcile duration.
    pub duration: Family<KindLabels, Histogram>,
    /// Objects that exist and are not being deleted.
    pub active: Family<KindLabels, Gauge>,
    /// Objects ended by the operator, by reason (`IdleTimeout`, `MaxLifetime`).
    pub expirations: Family<ReasonLabels, Counter>,
    /// Cleanup steps that failed.
    pub cleanup_failures: Family<KindLabels, Counter>,
    /// Tokens issued again before expiry.
    pub token_renewals: Family<KindLabels, Counter>,
    /// Admission requests answered.
    pub admissions: Family<AdmissionLabels, Counter>,
    /// How long the webhook took to answer (from the request read to the answer).
    pub admission_duration: Family<WebhookLabels, Histogram>,
    /// Active sessions per profile.
    pub active_sessions: Family<ProfileLabels, Gauge>,
    /// 1 while this replica runs the controllers (holds the Lease), else 0.
    pub leader: Gauge,
    /// Deployments' changes, lead times, stalls and restores.
    pub delivery: delivery::Delivery,
    /// Terminals and sessions by user and namespace, and who changed Deployments.
    pub usage: usage::Usage,
    /// Counts of active objects taken at each scrape (from a controller's
    /// watch cache), instead of on every reconcile.
    counted: std::sync::Mutex<Vec<(Kind, ActiveCount)>>,
}

/// Counts a kind's active objects when called.
type ActiveCount = Box<dyn Fn() -> i64 + Send + Sync>;

/// Registers what every Portico process exports in `root` (a registry
/// without prefix): `portico_build_info` (always 1, labelled with the
/// version) and the `process_*` metrics.
pub fn register_process_metrics(root: &mut Registry) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").into(),
        })
        .set(1);
    root.sub_registry_with_prefix("portico")
        .register("build_info", "The running Portico's version (always 1)", build);
    root.register_collector(Box::new(ProcessCollector));
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        register_process_metrics(&mut root);
        let registry = root.sub_registry_with_prefix("portico");
        let reconciles = Family::<KindLabels, Counter>::default();
        let errors = Family::<ReasonLabels, Counter>::default();
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let active = Family::<KindLabels, Gauge>::default();
        let expirations = Family::<ReasonLabels, Counter>::default();
        let cleanup_failures = Family::<KindLabels, Counter>::default();
        let token_renewals = Family::<KindLabels, Counter>::default();
        let admissions = Family::<AdmissionLabels, Counter>::default();
        let admission_duration = Family::<WebhookLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0])
        });
        let active_sessions = Family::<ProfileLabels, Gauge>::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed, by reason", errors.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration", duration.clone());
        registry.register(
            "active_objects",
            "Objects that exist and are not being deleted",
            active.clone(),
        );
        registry.register(
            "expirations",
            "Objects ended by the operator, by reason",
            expirations.clone(),
        );
        registry.register(
            "cleanup_failures",
            "Cleanup steps that failed",
            cleanup_failures.clone(),
        );
        registry.register(
            "token_renewals",
            "Tokens issued again before they expired",
            token_renewals.clone(),
        );
        registry.register("admission_requests", "Admission requests answered", admissions.clone());
        registry.register(
            "admission_duration_seconds",
            "How long the webhook took to answer",
            admission_duration.clone(),
        );
        registry.register(
            "active_sessions",
            "Active sessions per profile",
            active_sessions.clone(),
        );
        let delivery = delivery::Delivery::register(registry);
        let usage = usage::Usage::register(registry);
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controllers (holds the Lease)",
            leader.clone(),
        );
        // Counters and histograms start at zero for every kind (and reason), so
        // rates and alerts have series before the first event.
        for k in KINDS {
            let _ = reconciles.get_or_create(&kind(k));
            let _ = duration.get_or_create(&kind(k));
            let _ = cleanup_failures.get_or_create(&kind(k));
            let _ = token_renewals.get_or_create(&kind(k));
            for reason in RECONCILE_ERROR_REASONS {
                let _ = errors.get_or_create(&reasoned(k, reason));
            }
            for webhook in ["mutate", "validate"] {
                for allowed in ["true", "false"] {
                    let _ = admissions.get_or_create(&AdmissionLabels {
                        kind: k.name().into(),
                        webhook: webhook.into(),
                        allowed: allowed.into(),
                    });
                }
                let _ = admission_duration.get_or_create(&WebhookLabels {
                    kind: k.name().into(),
                    webhook: webhook.into(),
                });
            }
        }
        for k in [Kind::Terminal, Kind::SessionClaim] {
            for reason in END_REASONS {
                let _ = expirations.get_or_create(&reasoned(k, reason));
            }
        }
        Metrics {
            registry: root,
            reconciles,
            errors,
            duration,
            active,
            expirations,
            cleanup_failures,
            token_renewals,
            admissions,
            admission_duration,
            active_sessions,
            leader,
            delivery,
            usage,
            counted: Default::default(),
        }
    }
}

fn kind(k: Kind) -> KindLabels {
    KindLabels {
        kind: k.name().to_string(),
    }
}

fn reasoned(k: Kind, reason: &str) -> ReasonLabels {
    ReasonLabels {
        kind: k.name().into(),
        reason: reason.into(),
    }
}

/// Keeps a kind's count at scrape time until dropped; the gauge then keeps its last value.
pub struct Counting<'a> {
    metrics: &'a Metrics,
    kind: Kind,
}

impl Drop for Counting<'_> {
    fn drop(&mut self) {
        let mut counted = self.metrics.counted.lock().unwrap_or_else(|e| e.into_inner());
        counted.retain(|(k, _)| *k != self.kind);
    }
}

/// Keeps `portico_leader` at 1 until dropped.
pub struct Leading(Gauge);

impl Drop for Leading {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

/// Records a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: Kind,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .get_or_create(&kind(self.kind))
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a reconcile and times it until the guard drops.
    pub fn reconcile(&self, k: Kind) -> ReconcileTimer<'_> {
        self.reconciles.get_or_create(&kind(k)).inc();
        ReconcileTimer {
            metrics: self,
            kind: k,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn error(&self, k: Kind, reason: &str) {
        self.errors.get_or_create(&reasoned(k, reason)).inc();
    }

    /// Counts an expiry.
    pub fn expired(&self, k: Kind, reason: &str) {
        self.expirations.get_or_create(&reasoned(k, reason)).inc();
    }

    /// Sets `portico_leader` to 1 until the guard drops: hold it while the
    /// controllers run.
    pub fn leading(&self) -> Leading {
        self.leader.set(1);
        Leading(self.leader.clone())
    }

    /// Sets the number of active objects of a kind.
    pub fn set_active(&self, k: Kind, n: i64) {
        self.active.get_or_create(&kind(k)).set(n);
    }

    /// Counts the active objects of `k` with `count` at each scrape, until
    /// the returned guard drops (when the controller holding the cache stops).
    pub fn count_active(&self, k: Kind, count: impl Fn() -> i64 + Send + Sync + 'static) -> Counting<'_> {
        self.counted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((k, Box::new(count)));
        Counting { metrics: self, kind: k }
    }

    /// Sets the number of active sessions of a profile.
    pub fn set_active_sessions(&self, profile: &str, n: i64) {
        self.active_sessions
            .get_or_create(&ProfileLabels {
                profile: profile.into(),
            })
            .set(n);
    }

    /// Counts a cleanup failure.
    pub fn cleanup_failed(&self, k: Kind) {
        self.cleanup_failures.get_or_create(&kind(k)).inc();
    }

    /// Counts a token renewal.
    pub fn token_renewed(&self, k: Kind) {
        self.token_renewals.get_or_create(&kind(k)).inc();
    }

    /// Counts an admission answer that took `took`.
    pub fn admission(&self, k: Kind, webhook: &str, allowed: bool, took: std::time::Duration) {
        let l = AdmissionLabels {
            kind: k.name().into(),
            webhook: webhook.into(),
            allowed: allowed.to_string(),
        };
        self.admissions.get_or_create(&l).inc();
        let l = WebhookLabels {
            kind: k.name().into(),
            webhook: webhook.into(),
        };
        self.admission_duration.get_or_create(&l).observe(took.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        for (k, count) in self.counted.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            self.set_active(*k, count());
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding metrics into a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_objects_are_counted_at_each_scrape_while_counting() {
        let m = Metrics::default();
        let n = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(4));
        let seen = n.clone();
        let counting = m.count_active(Kind::Deployment, move || {
            seen.load(std::sync::atomic::Ordering::Relaxed)
        });
        assert!(m.render().contains("portico_active_objects{kind=\"Deployment\"} 4"));
        n.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(m.render().contains("portico_active_objects{kind=\"Deployment\"} 7"));
        drop(counting);
        n.store(9, std::sync::atomic::Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("portico_active_objects{kind=\"Deployment\"} 7"), "{text}");
    }

    #[test]
    fn renders_openmetrics_with_the_portico_prefix() {
        let m = Metrics::default();
        {
            let _t = m.reconcile(Kind::Terminal);
        }
        m.error(Kind::Terminal, "Kube");
        m.admission(Kind::Terminal, "validate", false, std::time::Duration::from_millis(3));
        for (k, n) in [(Kind::Terminal, 2), (Kind::Deployment, 3), (Kind::SessionClaim, 1)] {
            m.set_active(k, n);
        }
        let text = m.render();
        for line in [
            "portico_active_objects{kind=\"Terminal\"} 2",
            "portico_active_objects{kind=\"Deployment\"} 3",
            "portico_active_objects{kind=\"SessionClaim\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(text.contains("portico_reconciles_total{kind=\"Terminal\"} 1"), "{text}");
        assert!(
            text.contains("portico_reconcile_errors_total{kind=\"Terminal\",reason=\"Kube\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("portico_reconcile_duration_seconds_count{kind=\"Terminal\"} 1"),
            "{text}"
        );
        assert!(text.contains("allowed=\"false\""), "{text}");
        assert!(
            text.contains(
                "portico_admission_duration_seconds_bucket{le=\"0.005\",kind=\"Terminal\",webhook=\"validate\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn build_info_leader_and_the_process_metrics_are_exported() {
        let m = Metrics::default();
        let text = m.render();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            text.contains(&format!("portico_build_info{{version=\"{version}\"}} 1\n")),
            "{text}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total "),
            "{text}"
        );
        for name in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} gauge\n{name} ")),
                "{name}:\n{text}"
            );
        }
        assert!(text.contains("portico_leader 0\n"), "{text}");
        let leading = m.leading();
        assert!(m.render().contains("portico_leader 1\n"));
        drop(leading);
        assert!(m.render().contains("portico_leader 0\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn counters_start_at_zero_for_every_kind_and_reason() {
        let text = Metrics::default().render();
        for line in [
            "portico_reconciles_total{kind=\"Deployment\"} 0",
            "portico_reconcile_errors_total{kind=\"Terminal\",reason=\"cleanup\"} 0",
            "portico_reconcile_errors_total{kind=\"Deployment\",reason=\"catalog\"} 0",
            "portico_cleanup_failures_total{kind=\"SessionClaim\"} 0",
            "portico_expirations_total{kind=\"Terminal\",reason=\"IdleTimeout\"} 0",
            "portico_admission_requests_total{kind=\"Terminal\",webhook=\"mutate\",allowed=\"false\"} 0",
            "portico_admission_duration_seconds_count{kind=\"SessionClaim\",webhook=\"validate\"} 0",
            "portico_reconcile_duration_seconds_count{kind=\"Terminal\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        // Gauges are set by the controllers: no made-up zero before they count.
        assert!(!text.contains("portico_active_objects{"), "{text}");
    }

    #[test]
    fn the_listed_error_reasons_are_the_controllers_labels() {
        use crate::controller::Error;
        // A new variant stops this from compiling until its label is listed.
        let listed = |e: &Error| match e {
            Error::Kube { .. }
            | Error::Cluster(_)
            | Error::Finalizer(_)
            | Error::Token(_)
            | Error::Cleanup(_)
            | Error::Catalog(_)
            | Error::Discovery(_)
            | Error::Cache(_) => RECONCILE_ERROR_REASONS.contains(&e.metric_label()),
            // Not a failure: neither counted nor published (controller::retry).
            Error::Superseded { .. } | Error::Waiting(_) => true,
        };
        for e in [
            Error::Finalizer("x".into()),
            Error::Cleanup("x".into()),
            Error::Catalog("x".into()),
            Error::Discovery("x".into()),
            Error::Cache("x"),
        ] {
            assert!(listed(&e), "{} is not in RECONCILE_ERROR_REASONS", e.metric_label());
        }
    }
}
