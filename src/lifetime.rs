//! Lifetimes of Terminals and SessionClaims (pure): the effective idle
//! timeout and maximum lifetime, and the moment an object expires.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{
    api::{common::EndReason, keys::LAST_HEARTBEAT_AT},
    config::Bounds,
};

/// A duration in an object's spec that cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum LifetimeError {
    /// Not a Go duration.
    Unparsable {
        /// The spec field.
        field: &'static str,
        /// What it holds.
        value: String,
    },
    /// Longer than the operator allows.
    AboveMax {
        /// The spec field.
        field: &'static str,
        /// What it holds.
        value: String,
        /// The cap.
        max: String,
    },
}

impl LifetimeError {
    /// The spec field at fault, for example `spec.idleTimeout`.
    pub fn field(&self) -> String {
        match self {
            LifetimeError::Unparsable { field, .. } | LifetimeError::AboveMax { field, .. } => format!("spec.{field}"),
        }
    }

    /// What is wrong, without the field's name.
    pub fn detail(&self) -> String {
        match self {
            LifetimeError::Unparsable { value, .. } => format!("{value:?} is not a duration such as 30m or 8h"),
            LifetimeError::AboveMax { value, max, .. } => {
                format!("{value} is above the maximum of {max} the operator allows; ask for {max} or less")
            }
        }
    }
}

impl std::fmt::Display for LifetimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.field(), self.detail())
    }
}

impl std::error::Error for LifetimeError {}

/// The effective lifetimes of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Time allowed since the last heartbeat.
    pub idle_timeout: Duration,
    /// Time allowed since creation.
    pub max_lifetime: Duration,
}

/// Parses a Go duration.
pub fn parse(field: &'static str, value: &str) -> Result<Duration, LifetimeError> {
    let d: kube::core::Duration = value.parse().map_err(|_| LifetimeError::Unparsable {
        field,
        value: value.to_string(),
    })?;
    if d.is_negative() {
        return Err(LifetimeError::Unparsable {
            field,
            value: value.to_string(),
        });
    }
    Ok(d.into())
}

fn one(field: &'static str, value: Option<&str>, bounds: &Bounds) -> Result<Duration, LifetimeError> {
    let max: Duration = bounds.max.into();
    match value {
        None => Ok(Duration::from(bounds.default).min(max)),
        Some(v) => {
            let d = parse(field, v)?;
            if d > max {
                return Err(LifetimeError::AboveMax {
                    field,
                    value: v.to_string(),
                    max: bounds.max.to_string(),
                });
            }
            Ok(d)
        }
    }
}

/// The spec's durations, defaulted and checked against the caps.
pub fn effective(
    idle_timeout: Option<&str>,
    max_lifetime: Option<&str>,
    idle_bounds: &Bounds,
    max_bounds: &Bounds,
) -> Result<Lifetime, LifetimeError> {
    Ok(Lifetime {
        idle_timeout: one("idleTimeout", idle_timeout, idle_bounds)?,
        max_lifetime: one("maxLifetime", max_lifetime, max_bounds)?,
    })
}

/// Every problem of the spec's durations, one a field (empty: both are usable).
pub fn problems(
    idle_timeout: Option<&str>,
    max_lifetime: Option<&str>,
    idle_bounds: &Bounds,
    max_bounds: &Bounds,
) -> Vec<LifetimeError> {
    [
        one("idleTimeout", idle_timeout, idle_bounds).err(),
        one("maxLifetime", max_lifetime, max_bounds).err(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Time from now until `t` (zero when `t` has passed).
pub fn until(t: Timestamp) -> Duration {
    let d = t.duration_since(Timestamp::now());
    if d.is_negative() {
        Duration::ZERO
    } else {
        d.unsigned_abs()
    }
}

/// When an object expires and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The moment it ends.
    pub at: Timestamp,
    /// Which limit ends it.
    pub reason: EndReason,
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.saturating_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// The expiry: the earlier of last heartbeat (or creation) + idle timeout and
/// creation + maximum lifetime. A heartbeat before creation counts as creation.
pub fn expiry(created: Timestamp, last_heartbeat: Option<Timestamp>, lifetime: &Lifetime) -> Expiry {
    let active = last_heartbeat.map_or(created, |h| h.max(created));
    let idle_end = add(active, lifetime.idle_timeout);
    let max_end = add(created, lifetime.max_lifetime);
    if max_end <= idle_end {
        Expiry {
            at: max_end,
            reason: EndReason::MaxLifetime,
        }
    } else {
        Expiry {
            at: idle_end,
            reason: EndReason::IdleTimeout,
        }
    }
}

/// When the object with `meta` and lifetimes `lifetime` ends: from its
/// creation time (`now` when it has none yet) and the heartbeat annotation
/// the webhook writes (an unreadable one counts as none).
pub fn of_object(meta: &ObjectMeta, lifetime: &Lifetime, now: Timestamp) -> Expiry {
    let created = meta.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let heartbeat = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(LAST_HEARTBEAT_AT))
        .and_then(|v| v.parse::<Timestamp>().ok());
    expiry(created, heartbeat, lifetime)
}

/// The lifetimes an admitted object's spec states (admission writes the
/// defaults into it); `None` when either is missing or unreadable.
pub fn stated(idle_timeout: Option<&str>, max_lifetime: Option<&str>) -> Option<Lifetime> {
    Some(Lifetime {
        idle_timeout: parse("idleTimeout", idle_timeout?).ok()?,
        max_lifetime: parse("maxLifetime", max_lifetime?).ok()?,
    })
}

/// When the object with `meta` reaches its maximum lifetime, which no
/// heartbeat moves (`now` when it has no creation time yet).
pub fn max_end(meta: &ObjectMeta, lifetime: &Lifetime, now: Timestamp) -> Timestamp {
    add(
        meta.creation_timestamp.as_ref().map_or(now, |t| t.0),
        lifetime.max_lifetime,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(default: u64, max: u64) -> Bounds {
        Bounds {
            default: Duration::from_secs(default).into(),
            max: Duration::from_secs(max).into(),
        }
    }

    #[test]
    fn defaults_apply_and_caps_refuse() {
        let idle = bounds(600, 3600);
        let max = bounds(7200, 86400);
        let l = effective(None, Some("1h30m"), &idle, &max).unwrap();
        assert_eq!(l.idle_timeout, Duration::from_secs(600));
        assert_eq!(l.max_lifetime, Duration::from_secs(5400));
        let e = effective(Some("2h"), None, &idle, &max).unwrap_err();
        assert!(
            e.to_string().contains("spec.idleTimeout \"2h\"") || e.to_string().contains("spec.idleTimeout 2h"),
            "{e}"
        );
        assert!(matches!(e, LifetimeError::AboveMax { .. }));
        assert!(matches!(
            effective(Some("soon"), None, &idle, &max),
            Err(LifetimeError::Unparsable { .. })
        ));
    }

    #[test]
    fn problems_name_each_field_at_fault() {
        let idle = bounds(600, 3600);
        let max = bounds(7200, 86400);
        assert!(problems(Some("30m"), None, &idle, &max).is_empty());
        let both = problems(Some("2h"), Some("soon"), &idle, &max);
        let fields: Vec<String> = both.iter().map(LifetimeError::field).collect();
        assert_eq!(fields, ["spec.idleTimeout", "spec.maxLifetime"]);
        assert!(
            both[0].detail().starts_with("2h is above the maximum of "),
            "{}",
            both[0].detail()
        );
        assert_eq!(both[0].to_string(), format!("spec.idleTimeout {}", both[0].detail()));
        assert_eq!(
            both[1].to_string(),
            "spec.maxLifetime \"soon\" is not a duration such as 30m or 8h"
        );
    }

    #[test]
    fn idle_timeout_runs_from_the_last_heartbeat() {
        let created: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let l = Lifetime {
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(3600),
        };
        let e = expiry(created, None, &l);
        assert_eq!(e.at.to_string(), "2026-01-01T00:05:00Z");
        assert_eq!(e.reason, EndReason::IdleTimeout);
        let hb: Timestamp = "2026-01-01T00:20:00Z".parse().unwrap();
        assert_eq!(expiry(created, Some(hb), &l).at.to_string(), "2026-01-01T00:25:00Z");
    }

    #[test]
    fn max_lifetime_wins_over_heartbeats() {
        let created: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let l = Lifetime {
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(3600),
        };
        let hb: Timestamp = "2026-01-01T00:58:00Z".parse().unwrap();
        let e = expiry(created, Some(hb), &l);
        assert_eq!(e.at.to_string(), "2026-01-01T01:00:00Z");
        assert_eq!(e.reason, EndReason::MaxLifetime);
    }

    #[test]
    fn a_heartbeat_before_creation_counts_as_creation() {
        let created: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let l = Lifetime {
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(3600),
        };
        let early: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(expiry(created, Some(early), &l).at.to_string(), "2026-01-01T00:01:00Z");
    }

    #[test]
    fn an_objects_expiry_reads_its_creation_and_heartbeat_annotation() {
        let l = Lifetime {
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(3600),
        };
        let now: Timestamp = "2026-01-01T00:30:00Z".parse().unwrap();
        let meta = |annotations: serde_json::Value| -> ObjectMeta {
            serde_json::from_value(serde_json::json!({
                "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": annotations,
            }))
            .unwrap()
        };
        let beat = meta(serde_json::json!({(LAST_HEARTBEAT_AT): "2026-01-01T00:20:00Z"}));
        assert_eq!(of_object(&beat, &l, now).at.to_string(), "2026-01-01T00:21:00Z");
        let garbage = meta(serde_json::json!({(LAST_HEARTBEAT_AT): "soon"}));
        assert_eq!(of_object(&garbage, &l, now).at.to_string(), "2026-01-01T00:01:00Z");
        let unsaved = ObjectMeta::default();
        let e = of_object(&unsaved, &l, now);
        assert_eq!(
            (e.at.to_string(), e.reason),
            ("2026-01-01T00:31:00Z".into(), EndReason::IdleTimeout)
        );
    }

    #[test]
    fn the_maximum_end_is_fixed_at_creation_and_caps_the_expiry() {
        let l = stated(Some("30m"), Some("1h")).unwrap();
        assert_eq!(stated(None, Some("1h")), None);
        assert_eq!(stated(Some("soon"), Some("1h")), None);
        let meta = |beat: &str| -> ObjectMeta {
            serde_json::from_value(serde_json::json!({
                "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": {(LAST_HEARTBEAT_AT): beat},
            }))
            .unwrap()
        };
        let now: Timestamp = "2026-01-01T00:50:00Z".parse().unwrap();
        let late = meta("2026-01-01T00:45:00Z");
        assert_eq!(max_end(&late, &l, now).to_string(), "2026-01-01T01:00:00Z");
        let e = of_object(&late, &l, now);
        assert_eq!(
            (e.at.to_string(), e.reason),
            ("2026-01-01T01:00:00Z".into(), EndReason::MaxLifetime)
        );
        let early = meta("2026-01-01T00:10:00Z");
        assert_eq!(of_object(&early, &l, now).reason, EndReason::IdleTimeout);
    }
}
