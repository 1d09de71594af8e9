//! Usage metrics, the data of the Usage figures of the dashboard's Insights
//! per user and per team: Terminals opened and SessionClaims started (a
//! login is a session), how each ended and how long it lived, the
//! Deployment changes each user made by outcome, and when each user was
//! last active. Labels are bounded: the object's kind, its namespace
//! (`object_namespace`, as scrapers add a `namespace` of their own), the
//! user who made it (`user`, from `portico.dev/created-by`; one series per
//! user and namespace, so as many as there are users) and stable reasons
//! and outcomes.
//!
//! Each event is counted once by the replica that holds the Lease, guarded
//! by what the object's status records (a restarted operator does not
//! count again what its status says happened) and, for passes that start
//! from an older copy of an object, by the UIDs this process counted
//! ([`Counted`], pure but for the clock the caller passes). Lifetimes are
//! added when an object ends, from its creation to its end, so they need no
//! state between passes and stay exact across restarts and replicas; an
//! object still open counts in the range where it ends.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::api::Kind;

/// How long an end is remembered against a second pass from an older copy.
const ENDS_REMEMBERED: Duration = Duration::from_secs(3600);

/// An object's kind, namespace and user.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UserLabels {
    /// `Terminal`, `SessionClaim` or `Deployment`.
    pub kind: String,
    /// The object's namespace.
    pub object_namespace: String,
    /// The user who created it (or, for a Deployment's change, made it).
    pub user: String,
}

/// An end's reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    /// `Terminal` or `SessionClaim`.
    pub kind: String,
    /// The object's namespace.
    pub object_namespace: String,
    /// The user who created it.
    pub user: String,
    /// `IdleTimeout`, `MaxLifetime` or `Deleted` (`api::EndReason`).
    pub reason: String,
}

/// A Deployment change's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The Deployment's namespace.
    pub object_namespace: String,
    /// The user who made the change (its last updater, else its creator).
    pub user: String,
    /// `ready` or `stalled`.
    pub outcome: String,
}

/// The object an event is about.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its UID.
    pub uid: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The user who created it.
    pub user: &'a str,
}

/// The UIDs this process counted (pure but for the clock the caller passes).
#[derive(Debug, Default)]
pub struct Counted {
    /// Objects counted as opened, until they end (one that ends after
    /// another replica took the Lease stays until this process stops).
    opened: HashSet<String>,
    /// Objects counted as ended, and when.
    ended: HashMap<String, Instant>,
}

impl Counted {
    /// Whether `uid`'s opening is still to count; it is counted from now.
    pub fn open(&mut self, uid: &str) -> bool {
        self.opened.insert(uid.to_string())
    }

    /// Whether `uid`'s end is still to count at `now`; it is counted from
    /// now. Ends older than [`ENDS_REMEMBERED`] are forgotten.
    pub fn end(&mut self, uid: &str, now: Instant) -> bool {
        self.opened.remove(uid);
        self.ended
            .retain(|_, at| now.saturating_duration_since(*at) < ENDS_REMEMBERED);
        match self.ended.entry(uid.to_string()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(now);
                true
            }
        }
    }
}

/// The usage metrics.
pub struct Usage {
    opened: Family<UserLabels, Counter>,
    ended: Family<EndLabels, Counter>,
    seconds: Family<UserLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    operations: Family<OperationLabels, Counter>,
    last_activity: Family<UserLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    counted: Mutex<Counted>,
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Usage {
    /// Registers them in `registry` (prefixed `portico_`).
    pub fn register(registry: &mut Registry) -> Usage {
        let u = Usage {
            opened: Family::default(),
            ended: Family::default(),
            seconds: Family::default(),
            operations: Family::default(),
            last_activity: Family::default(),
            counted: Mutex::default(),
        };
        let bounded = "one series per user and namespace: as many as there are users";
        registry.register(
            "usage_opened",
            format!("Terminals that turned Ready and SessionClaims that started (a login), once each, by kind, namespace and creator; {bounded}"),
            u.opened.clone(),
        );
        registry.register(
            "usage_ended",
            format!("Terminals and SessionClaims that ended, by reason (IdleTimeout, MaxLifetime, Deleted), namespace and creator; {bounded}"),
            u.ended.clone(),
        );
        registry.register(
            "usage_lifetime_seconds",
            format!("Seconds from creation to end of Terminals and SessionClaims, added when each ends, by kind, namespace and creator; {bounded}"),
            u.seconds.clone(),
        );
        registry.register(
            "usage_operations",
            format!("Changes of Deployments by how they ended (ready or stalled), by namespace and the user who made them; {bounded}"),
            u.operations.clone(),
        );
        registry.register(
            "usage_last_activity_timestamp_seconds",
            format!("When a user last opened, ended or changed an object of a kind in a namespace; {bounded}"),
            u.last_activity.clone(),
        );
        u
    }

    fn counted(&self) -> std::sync::MutexGuard<'_, Counted> {
        self.counted.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn active(&self, kind: Kind, namespace: &str, user: &str, at: f64) {
        self.last_activity
            .get_or_create(&user_labels(kind, namespace, user))
            .set(at);
    }

    /// Object `o` turned Ready (its status said it was not): counted
    /// unless this process counted it already.
    pub fn opened(&self, o: Object<'_>) {
        if !self.counted().open(o.uid) {
            return;
        }
        let l = user_labels(o.kind, o.namespace, o.user);
        let _ = self.seconds.get_or_create(&l);
        self.opened.get_or_create(&l).inc();
        for reason in ["IdleTimeout", "MaxLifetime", "Deleted"] {
            let _ = self.ended.get_or_create(&end_labels(&l, reason));
        }
        self.active(o.kind, o.namespace, o.user, now_seconds());
    }

    /// Object `o` ended for `reason` after `lived` seconds, at `at`
    /// (seconds since the epoch): counted unless this process counted it already.
    pub fn ended(&self, o: Object<'_>, reason: &str, lived: f64, at: f64) {
        if !self.counted().end(o.uid, Instant::now()) {
            return;
        }
        let l = user_labels(o.kind, o.namespace, o.user);
        self.ended.get_or_create(&end_labels(&l, reason)).inc();
        self.seconds.get_or_create(&l).inc_by(lived.max(0.0));
        let _ = self.opened.get_or_create(&l);
        self.active(o.kind, o.namespace, o.user, at);
    }

    /// A change of a Deployment by `user` that ended `ready` or `stalled`.
    pub fn operation(&self, namespace: &str, user: &str, outcome: &str) {
        let of = |outcome: &str| OperationLabels {
            object_namespace: namespace.into(),
            user: user.into(),
            outcome: outcome.into(),
        };
        for o in ["ready", "stalled"] {
            let _ = self.operations.get_or_create(&of(o));
        }
        self.operations.get_or_create(&of(outcome)).inc();
        self.active(Kind::Deployment, namespace, user, now_seconds());
    }
}

fn user_labels(kind: Kind, namespace: &str, user: &str) -> UserLabels {
    UserLabels {
        kind: kind.name().into(),
        object_namespace: namespace.into(),
        user: user.into(),
    }
}

fn end_labels(l: &UserLabels, reason: &str) -> EndLabels {
    EndLabels {
        kind: l.kind.clone(),
        object_namespace: l.object_namespace.clone(),
        user: l.user.clone(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_opening_and_end_counts_once() {
        let mut c = Counted::default();
        let t0 = Instant::now();
        assert!(c.open("a"));
        assert!(!c.open("a"), "Ready again (its pod replaced): not a second opening");
        assert!(c.end("a", t0));
        assert!(!c.end("a", t0 + Duration::from_secs(5)), "a pass from an older copy");
        assert!(c.end("b", t0 + ENDS_REMEMBERED), "a's end is forgotten after an hour");
        assert!(c.end("a", t0 + ENDS_REMEMBERED + Duration::from_secs(1)));
        assert!(c.opened.is_empty() && c.ended.len() == 2);
    }

    #[test]
    fn the_series_carry_kind_namespace_user_and_start_at_zero() {
        let mut registry = Registry::default();
        let u = Usage::register(registry.sub_registry_with_prefix("portico"));
        let t1 = Object {
            kind: Kind::Terminal,
            uid: "t1",
            namespace: "team-a",
            user: "alice",
        };
        u.opened(t1);
        u.opened(t1);
        u.ended(t1, "IdleTimeout", 90.5, 1000.0);
        u.ended(t1, "Deleted", 95.0, 1005.0);
        u.operation("team-a", "bob", "stalled");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "portico_usage_opened_total{kind=\"Terminal\",object_namespace=\"team-a\",user=\"alice\"} 1\n",
            "portico_usage_ended_total{kind=\"Terminal\",object_namespace=\"team-a\",user=\"alice\",reason=\"IdleTimeout\"} 1\n",
            "portico_usage_ended_total{kind=\"Terminal\",object_namespace=\"team-a\",user=\"alice\",reason=\"Deleted\"} 0\n",
            "portico_usage_lifetime_seconds_total{kind=\"Terminal\",object_namespace=\"team-a\",user=\"alice\"} 90.5\n",
            "portico_usage_last_activity_timestamp_seconds{kind=\"Terminal\",object_namespace=\"team-a\",user=\"alice\"} 1000.0\n",
            "portico_usage_operations_total{object_namespace=\"team-a\",user=\"bob\",outcome=\"stalled\"} 1\n",
            "portico_usage_operations_total{object_namespace=\"team-a\",user=\"bob\",outcome=\"ready\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
