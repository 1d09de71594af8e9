//! Delivery metrics of Deployments, the data of the dashboard's Insights
//! over time (DORA-style): each change of a Deployment's spec (a new
//! generation) counted once by how it ended — `ready` or `stalled` — its
//! lead time (the change to Ready), the time to restore (Stalled to Ready
//! again) and each stall by its reason. Labels are bounded: the
//! Deployment's namespace (`object_namespace`, as scrapers add a
//! `namespace` of their own for the target), its template, and stable
//! outcomes and reasons. Series of a namespace and template start at zero
//! when the controller first meets the pair, so Prometheus' `increase()`
//! sees their first change.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// A Deployment's namespace and template.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TemplateLabels {
    /// The Deployment's namespace.
    pub object_namespace: String,
    /// Its template.
    pub template: String,
}

/// A change's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The Deployment's namespace.
    pub object_namespace: String,
    /// Its template.
    pub template: String,
    /// `ready` or `stalled`.
    pub outcome: String,
}

/// A stall's reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StallLabels {
    /// The Deployment's namespace.
    pub object_namespace: String,
    /// Its template.
    pub template: String,
    /// The Stalled condition's reason (`kstatus::Reason`).
    pub reason: String,
    /// For `ResourceFailed`: why the object failed
    /// (`controller::deployment::workload::cause`); otherwise empty.
    pub cause: String,
}

/// Buckets of lead times and times to restore, seconds: a second to a day.
const BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// The delivery metrics.
#[derive(Clone)]
pub struct Delivery {
    changes: Family<OutcomeLabels, Counter>,
    lead_time: Family<TemplateLabels, Histogram>,
    restore: Family<TemplateLabels, Histogram>,
    stalls: Family<StallLabels, Counter>,
}

impl Delivery {
    /// Registers them in `registry` (prefixed `portico_`).
    pub fn register(registry: &mut Registry) -> Delivery {
        let histogram = || Family::<TemplateLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        let d = Delivery {
            changes: Family::default(),
            lead_time: histogram(),
            restore: histogram(),
            stalls: Family::default(),
        };
        registry.register(
            "deployment_changes",
            "Changes of a Deployment's spec by how they ended: ready or stalled",
            d.changes.clone(),
        );
        registry.register(
            "deployment_lead_time_seconds",
            "From a change of a Deployment's spec to Ready",
            d.lead_time.clone(),
        );
        registry.register(
            "deployment_restore_seconds",
            "From a Deployment's stall to Ready again",
            d.restore.clone(),
        );
        registry.register(
            "deployment_stalls",
            "Deployments that stalled, by reason, and for a failed object by its cause (CrashLoopBackOff, ImagePullBackOff, JobFailed, …)",
            d.stalls.clone(),
        );
        d
    }

    /// Starts the series of a namespace and template at zero (once is enough).
    pub fn seen(&self, namespace: &str, template: &str) {
        let t = labels(namespace, template);
        for outcome in ["ready", "stalled"] {
            let _ = self.changes.get_or_create(&outcome_of(&t, outcome));
        }
        let _ = self.lead_time.get_or_create(&t);
        let _ = self.restore.get_or_create(&t);
    }

    /// A change that ended Ready, `lead` seconds after it was made (when known).
    pub fn ready(&self, namespace: &str, template: &str, lead: Option<f64>) {
        let t = labels(namespace, template);
        self.changes.get_or_create(&outcome_of(&t, "ready")).inc();
        if let Some(lead) = lead {
            self.lead_time.get_or_create(&t).observe(lead);
        }
    }

    /// A change that stalled.
    pub fn change_stalled(&self, namespace: &str, template: &str) {
        self.changes
            .get_or_create(&outcome_of(&labels(namespace, template), "stalled"))
            .inc();
    }

    /// A stall, by reason (and, for a failed object, its cause).
    pub fn stalled(&self, namespace: &str, template: &str, reason: &str, cause: &str) {
        self.stalls
            .get_or_create(&StallLabels {
                object_namespace: namespace.into(),
                template: template.into(),
                reason: reason.into(),
                cause: cause.into(),
            })
            .inc();
    }

    /// Ready again `after` seconds stalled.
    pub fn restored(&self, namespace: &str, template: &str, after: f64) {
        self.restore.get_or_create(&labels(namespace, template)).observe(after);
    }
}

fn labels(namespace: &str, template: &str) -> TemplateLabels {
    TemplateLabels {
        object_namespace: namespace.into(),
        template: template.into(),
    }
}

fn outcome_of(t: &TemplateLabels, outcome: &str) -> OutcomeLabels {
    OutcomeLabels {
        object_namespace: t.object_namespace.clone(),
        template: t.template.clone(),
        outcome: outcome.into(),
    }
}
