//! Why Deployments fail, ranked (pure): the stalls over the range from
//! Prometheus by their Stalled reason — a failed object by its cause
//! instead (CrashLoopBackOff, an image pull, a failed Job, …) — each in a
//! class: the template or its parameters, an apply the API server or the
//! operator refused, or a workload that failed; and, drilled into one,
//! where it happened (namespace and template) and which Deployments are
//! Stalled for it now with their messages and the objects that failed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::delivery::Stall;
use crate::{controller::deployment::workload, kstatus::Reason};

/// The Stalled reasons a Deployment can have, with their class.
pub const DEPLOYMENT_REASONS: [(Reason, &str); 9] = [
    (Reason::MissingCreator, "admission"),
    (Reason::TemplateUnavailable, "template"),
    (Reason::InvalidParameters, "parameters"),
    (Reason::RenderFailed, "template"),
    (Reason::OutOfBounds, "template"),
    (Reason::UnknownKind, "template"),
    (Reason::ObjectNotOwned, "apply refused"),
    (Reason::ApplyRefused, "apply refused"),
    (Reason::ResourceFailed, "workload"),
];

/// The class of a Stalled reason or a failed object's cause (pure):
/// `other` for one Deployments do not have.
pub fn class(reason: &str) -> &'static str {
    if workload::STUCK.contains(&reason) || workload::CAUSES.contains(&reason) {
        return "workload";
    }
    DEPLOYMENT_REASONS
        .iter()
        .find(|(r, _)| r.to_string() == reason)
        .map_or("other", |(_, c)| c)
}

/// Whether a failure can be drilled into by `name`: a Stalled reason of
/// Deployments or a failed object's cause (pure).
pub fn known(name: &str) -> bool {
    class(name) != "other"
}

/// Every name [`known`] takes, for the message that refuses another.
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = DEPLOYMENT_REASONS.iter().map(|(r, _)| r.to_string()).collect();
    out.extend(workload::STUCK.iter().chain(&workload::CAUSES).map(|c| c.to_string()));
    out
}

/// One reason's (or cause's) stalls over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// The reason, or a failed object's cause ([`Stall::what`]).
    pub reason: String,
    pub class: &'static str,
    pub count: f64,
    /// Its share of every stall, 0 to 1.
    pub share: f64,
    /// How many templates it happened with.
    pub templates: usize,
}

/// The reasons by how many stalls each caused, most first (then by name).
pub fn ranked(stalls: &[Stall]) -> Vec<Ranked> {
    let all: f64 = stalls.iter().map(|s| s.count).sum();
    let mut by: BTreeMap<&str, (f64, Vec<&str>)> = BTreeMap::new();
    for s in stalls {
        let e = by.entry(s.what()).or_default();
        e.0 += s.count;
        if !e.1.contains(&s.template.as_str()) {
            e.1.push(&s.template);
        }
    }
    let mut out: Vec<Ranked> = by
        .into_iter()
        .map(|(reason, (count, templates))| Ranked {
            reason: reason.to_string(),
            class: class(reason),
            count,
            share: if all > 0.0 { count / all } else { 0.0 },
            templates: templates.len(),
        })
        .collect();
    out.sort_by(|a, b| b.count.total_cmp(&a.count).then(a.reason.cmp(&b.reason)));
    out
}

/// A Deployment Stalled now, as the drill-down shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StalledNow {
    pub namespace: String,
    pub name: String,
    pub template: String,
    pub message: String,
    /// Its objects that failed: `Kind name: why`.
    pub failed: Vec<String>,
}

/// One reason drilled into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drill {
    pub reason: String,
    pub class: &'static str,
    /// Its stalls over the range by namespace and template, most first.
    pub places: Vec<Stall>,
    /// The Deployments Stalled for it now.
    pub now: Vec<StalledNow>,
}

/// The drill-down of `reason` (pure).
pub fn drill(reason: &str, stalls: &[Stall], now: Vec<StalledNow>) -> Drill {
    let mut places: Vec<Stall> = stalls.iter().filter(|s| s.what() == reason).cloned().collect();
    places.sort_by(|a, b| {
        b.count
            .total_cmp(&a.count)
            .then((&a.namespace, &a.template).cmp(&(&b.namespace, &b.template)))
    });
    Drill {
        reason: reason.to_string(),
        class: class(reason),
        places,
        now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall(ns: &str, template: &str, reason: &str, count: f64) -> Stall {
        let (reason, cause) = match reason.split_once('/') {
            Some((r, c)) => (r, c),
            None => (reason, ""),
        };
        Stall {
            namespace: ns.into(),
            template: template.into(),
            reason: reason.into(),
            cause: cause.into(),
            count,
        }
    }

    #[test]
    fn reasons_rank_by_stalls_with_their_class_and_share() {
        let stalls = [
            stall("team-a", "webapp", "ResourceFailed/ImagePullBackOff", 2.0),
            stall("team-b", "webapp", "ResourceFailed/ImagePullBackOff", 1.0),
            stall("team-a", "postgresql", "RenderFailed", 1.0),
            stall("team-a", "postgresql", "ApplyRefused", 1.0),
        ];
        let r = ranked(&stalls);
        let names: Vec<(&str, &str, f64, usize)> = r
            .iter()
            .map(|r| (r.reason.as_str(), r.class, r.count, r.templates))
            .collect();
        assert_eq!(
            names,
            [
                ("ImagePullBackOff", "workload", 3.0, 1),
                ("ApplyRefused", "apply refused", 1.0, 1),
                ("RenderFailed", "template", 1.0, 1),
            ]
        );
        assert_eq!(r[0].share, 0.6);
        assert!(ranked(&[]).is_empty());
        assert_eq!(class("PodEnded"), "other", "a Terminal's reason");
        assert!(known("CrashLoopBackOff") && known("JobFailed") && known("RenderFailed"));
        assert!(!known("Bogus") && super::names().contains(&"ImagePullBackOff".to_string()));
    }

    #[test]
    fn a_drill_down_lists_where_a_reason_happened_most_first() {
        let stalls = [
            stall("team-a", "webapp", "ResourceFailed/CrashLoopBackOff", 1.0),
            stall("team-b", "webapp", "ResourceFailed/CrashLoopBackOff", 4.0),
            stall("team-b", "webapp", "ResourceFailed/JobFailed", 4.0),
            stall("team-a", "postgresql", "RenderFailed", 1.0),
        ];
        let d = drill("CrashLoopBackOff", &stalls, vec![]);
        let places: Vec<(&str, f64)> = d.places.iter().map(|s| (s.namespace.as_str(), s.count)).collect();
        assert_eq!(places, [("team-b", 4.0), ("team-a", 1.0)]);
        assert_eq!(d.class, "workload");
    }
}
