//! Prometheus metrics (prometheus-client, OpenMetrics text) for the
//! controllers and the webhook.

use std::time::Instant;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::api::Kind;

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
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portico");
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
        Metrics {
            registry,
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
        }
    }
}

fn kind(k: Kind) -> KindLabels {
    KindLabels {
        kind: k.name().to_string(),
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
        self.errors
            .get_or_create(&ReasonLabels {
                kind: k.name().into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts an expiry.
    pub fn expired(&self, k: Kind, reason: &str) {
        self.expirations
            .get_or_create(&ReasonLabels {
                kind: k.name().into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Sets the number of active objects of a kind.
    pub fn set_active(&self, k: Kind, n: i64) {
        self.active.get_or_create(&kind(k)).set(n);
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
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("encoding metrics into a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_the_portico_prefix() {
        let m = Metrics::default();
        {
            let _t = m.reconcile(Kind::Terminal);
        }
        m.error(Kind::Terminal, "Kube");
        m.admission(Kind::Terminal, "validate", false, std::time::Duration::from_millis(3));
        let text = m.render();
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
}
