//! Delivery totals per team (namespace) and per template, and the health
//! scorecard of templates and Deployments (pure). Templates are scored from
//! the delivery figures over the range (Prometheus); a Deployment from its
//! own status — the operations it records and when its latest change turned
//! Ready — since a Deployment's name is not a metric label.

use std::collections::BTreeMap;

use serde::Serialize;

use super::delivery::Row;

/// The delivery figures of one team or template, over every row of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Total {
    /// The namespace or the template.
    pub name: String,
    pub ready: f64,
    pub stalled: f64,
    pub per_day: f64,
    pub failure_rate: Option<f64>,
    /// Mean lead time, over every lead time of it (seconds).
    pub lead_time: Option<f64>,
    /// Mean time to restore (seconds).
    pub restore: Option<f64>,
}

/// The totals of `rows` grouped by `key` (the namespace or the template),
/// over `days`; means weighted by how many measurements each row's is of.
pub fn totals(rows: &[Row], key: fn(&Row) -> &str, days: f64) -> Vec<Total> {
    #[derive(Default)]
    struct Sum {
        ready: f64,
        stalled: f64,
        lead: (f64, f64),
        restore: (f64, f64),
    }
    let mut by: BTreeMap<&str, Sum> = BTreeMap::new();
    for r in rows {
        let s = by.entry(key(r)).or_default();
        s.ready += r.ready;
        s.stalled += r.stalled;
        if let Some(l) = r.lead_time {
            s.lead.0 += l * r.lead_count;
            s.lead.1 += r.lead_count;
        }
        if let Some(t) = r.restore {
            s.restore.0 += t * r.restore_count;
            s.restore.1 += r.restore_count;
        }
    }
    let mean = |(sum, n): (f64, f64)| (n > 0.0).then(|| sum / n);
    by.into_iter()
        .map(|(name, s)| Total {
            name: name.to_string(),
            per_day: s.ready / days,
            failure_rate: (s.ready + s.stalled > 0.0).then(|| s.stalled / (s.ready + s.stalled)),
            lead_time: mean(s.lead),
            restore: mean(s.restore),
            ready: s.ready,
            stalled: s.stalled,
        })
        .collect()
}

/// The formula of [`score`], as the page shows it.
pub const FORMULA: &str = "score = 60 × success rate + 25 × speed + 15 × frequency. Success rate: for a template, its changes that turned Ready of all that ended; for a Deployment, its creates and updates that applied. Speed: 1 for a lead time of a minute or less, 0 for an hour or more, on a logarithmic scale between (0 when no change turned Ready). Frequency: changes that turned Ready per day, counted up to one a day.";

/// The score from 0 to 100 of a success rate (0 to 1), a mean lead time
/// (seconds; none: no change turned Ready) and Ready changes per day (pure).
pub fn score(success: f64, lead_time: Option<f64>, per_day: f64) -> u32 {
    let speed = lead_time.map_or(0.0, |l| {
        let (fast, slow) = (60f64.ln(), 3600f64.ln());
        ((slow - l.max(1.0).ln()) / (slow - fast)).clamp(0.0, 1.0)
    });
    let frequency = per_day.clamp(0.0, 1.0);
    (60.0 * success.clamp(0.0, 1.0) + 25.0 * speed + 15.0 * frequency).round() as u32
}

/// One line of the scorecard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// `Template` or `Deployment`.
    pub kind: &'static str,
    /// The template's name, or the Deployment's `namespace/name`.
    pub subject: String,
    /// Where it is shown.
    pub link: String,
    pub score: u32,
    /// Changes (or operations) that ended.
    pub changes: f64,
    pub success_rate: f64,
    pub lead_time: Option<f64>,
    pub per_day: f64,
}

/// The templates' lines (pure): each template with a change that ended in the range.
pub fn templates(totals: &[Total]) -> Vec<Scored> {
    totals
        .iter()
        .filter(|t| t.ready + t.stalled > 0.0)
        .map(|t| {
            let success = t.ready / (t.ready + t.stalled);
            Scored {
                kind: "Template",
                subject: t.name.clone(),
                link: format!("/deployments?template={}", t.name),
                score: score(success, t.lead_time, t.per_day),
                changes: t.ready + t.stalled,
                success_rate: success,
                lead_time: t.lead_time,
                per_day: t.per_day,
            }
        })
        .collect()
}

/// What a Deployment's status says of its changes in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Its creates and updates in the range that ended: succeeded or not.
    pub succeeded: u32,
    pub failed: u32,
    /// Its latest create or update turned Ready this many seconds after it.
    pub lead_time: Option<i64>,
}

/// A Deployment's line (pure), if it recorded an operation in the range of `days`.
pub fn deployment(namespace: &str, name: &str, r: &Record, days: f64) -> Option<Scored> {
    let ended = f64::from(r.succeeded + r.failed);
    if ended == 0.0 {
        return None;
    }
    let success = f64::from(r.succeeded) / ended;
    let per_day = f64::from(r.succeeded) / days;
    let lead_time = r.lead_time.map(|l| l as f64);
    Some(Scored {
        kind: "Deployment",
        subject: format!("{namespace}/{name}"),
        link: format!("/deployments/{namespace}/{name}"),
        score: score(success, lead_time, per_day),
        changes: ended,
        success_rate: success,
        lead_time,
        per_day,
    })
}

/// The best and the worst `n` of `lines` (pure): by score, then by more
/// changes, then by name; the worst list starts with the lowest and holds
/// none of the best (fewer than `n` when there are fewer than `2 n` lines).
pub fn best_and_worst(mut lines: Vec<Scored>, n: usize) -> (Vec<Scored>, Vec<Scored>) {
    lines.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.changes.total_cmp(&a.changes))
            .then(a.subject.cmp(&b.subject))
    });
    let rest = lines.split_off(n.min(lines.len()));
    let worst: Vec<Scored> = rest.into_iter().rev().take(n).collect();
    (lines, worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: &str, t: &str, ready: f64, stalled: f64, lead: Option<(f64, f64)>) -> Row {
        Row {
            namespace: ns.into(),
            template: t.into(),
            ready,
            stalled,
            per_day: ready / 7.0,
            failure_rate: None,
            lead_time: lead.map(|l| l.0),
            lead_count: lead.map_or(0.0, |l| l.1),
            restore: None,
            restore_count: 0.0,
        }
    }

    #[test]
    fn totals_add_up_rows_and_weigh_means_by_their_counts() {
        let rows = [
            row("team-a", "webapp", 3.0, 1.0, Some((10.0, 3.0))),
            row("team-a", "postgresql", 1.0, 0.0, Some((50.0, 1.0))),
            row("team-b", "webapp", 0.0, 2.0, None),
        ];
        let teams = totals(&rows, |r| &r.namespace, 7.0);
        assert_eq!(teams.len(), 2);
        let a = &teams[0];
        assert_eq!((a.name.as_str(), a.ready, a.stalled), ("team-a", 4.0, 1.0));
        assert_eq!(a.failure_rate, Some(0.2));
        assert_eq!(a.lead_time, Some(20.0), "(3 × 10 + 1 × 50) / 4");
        assert_eq!((teams[1].lead_time, teams[1].failure_rate), (None, Some(1.0)));
        let templates = totals(&rows, |r| &r.template, 7.0);
        let web = templates.iter().find(|t| t.name == "webapp").unwrap();
        assert_eq!((web.ready, web.stalled, web.lead_time), (3.0, 3.0, Some(10.0)));
        assert!((web.per_day - 3.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn the_score_weighs_success_speed_and_frequency() {
        assert_eq!(score(1.0, Some(30.0), 2.0), 100, "all right, fast, daily");
        assert_eq!(score(1.0, Some(3600.0), 0.0), 60, "slow and rare");
        assert_eq!(score(0.5, None, 0.0), 30, "never Ready counts as slow");
        assert_eq!(score(0.0, Some(60.0), 0.5), 33, "25 + 7.5");
        let mid = score(1.0, Some(465.0), 0.0);
        assert!((72..=73).contains(&mid), "half way on the log scale: {mid}");
    }

    #[test]
    fn the_scorecard_lists_the_best_and_the_worst() {
        let rows = [
            row("team-a", "good", 7.0, 0.0, Some((30.0, 7.0))),
            row("team-a", "bad", 0.0, 3.0, None),
            row("team-a", "unused", 0.0, 0.0, None),
        ];
        let lines = templates(&totals(&rows, |r| &r.template, 7.0));
        assert_eq!(lines.len(), 2, "a template without an ended change has no score");
        let (best, worst) = best_and_worst(lines.clone(), 1);
        assert_eq!((best[0].subject.as_str(), best[0].score), ("good", 100));
        assert_eq!((worst[0].subject.as_str(), worst[0].score), ("bad", 0));
        let (best, worst) = best_and_worst(lines, 5);
        assert_eq!((best.len(), worst.len()), (2, 0), "none of the best among the worst");
        assert_eq!(best[0].link, "/deployments?template=good");
        let d = deployment(
            "team-a",
            "web",
            &Record {
                succeeded: 3,
                failed: 1,
                lead_time: Some(60),
            },
            7.0,
        )
        .unwrap();
        assert_eq!(
            (d.subject.as_str(), d.changes, d.success_rate),
            ("team-a/web", 4.0, 0.75)
        );
        assert_eq!(d.score, 45 + 25 + 6);
        let none = Record {
            succeeded: 0,
            failed: 0,
            lead_time: None,
        };
        assert_eq!(deployment("team-a", "idle", &none, 7.0), None);
    }
}
