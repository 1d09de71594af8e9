//! Delivery figures over time for Insights (DORA-style), from Prometheus:
//! the operator's `portico_deployment_*` metrics, queried through
//! Prometheus' HTTP API over a range the viewer picks, restricted to the
//! namespaces where the viewer may list Deployments — the label matcher is
//! built here from namespace names, never from request input. The queries
//! and the rows are pure; the HTTP call is the only I/O.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// The ranges a viewer may pick, with their days.
pub const RANGES: [(&str, f64); 3] = [("7d", 7.0), ("30d", 30.0), ("90d", 90.0)];

/// Where the viewer may look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace.
    All,
    /// Only these.
    In(Vec<String>),
}

/// The Prometheus Insights reads.
pub struct Prometheus {
    pub url: String,
    pub http: openidconnect::reqwest::Client,
    /// The matchers of the labels every series read must carry ([`source`]).
    pub source: String,
}

/// Matchers of exact `labels` (pure): `k="v",…`, each value escaped.
pub fn source(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Matchers `a` and `b` together (pure).
pub fn both(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a},{b}"),
    }
}

/// The label matcher of a scope (pure); `None` when nothing is in it.
pub fn matcher(scope: &Scope) -> Option<String> {
    match scope {
        Scope::All => Some(String::new()),
        Scope::In(ns) if ns.is_empty() => None,
        Scope::In(ns) => {
            let alternatives: Vec<String> = ns.iter().map(|n| regex::escape(n).replace('\\', "\\\\")).collect();
            Some(format!("object_namespace=~\"{}\"", alternatives.join("|")))
        }
    }
}

/// A total over `range` of counter (or histogram part) `metric` by
/// namespace and template (and `more` labels) ([`total_by`]).
pub fn total(metric: &str, matcher: &str, range: &str, more: &str) -> String {
    total_by(metric, matcher, range, &format!("object_namespace, template{more}"))
}

/// A total over `range` of counter `metric` by the labels `by`, counting a
/// series born in the range whole, and one born and gone within it too
/// (pure): Prometheus' `increase()` sees a series' first sample only as its
/// start, and a restarted operator's series are new ones.
pub fn total_by(metric: &str, matcher: &str, range: &str, by: &str) -> String {
    let x = format!("{metric}{{{matcher}}}");
    format!(
        "sum by ({by}) ((increase({x}[{range}]) and {x} offset {range}) or (last_over_time({x}[{range}]) unless {x} offset {range}))"
    )
}

/// One namespace and template's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub namespace: String,
    pub template: String,
    /// Changes that turned Ready.
    pub ready: f64,
    /// Changes that stalled.
    pub stalled: f64,
    /// Changes that turned Ready, per day of the range.
    pub per_day: f64,
    /// Stalled changes of all changes, 0 to 1.
    pub failure_rate: Option<f64>,
    /// Mean lead time (seconds).
    pub lead_time: Option<f64>,
    /// How many lead times the mean is of.
    pub lead_count: f64,
    /// Mean time to restore (seconds).
    pub restore: Option<f64>,
    /// How many restores the mean is of.
    pub restore_count: f64,
}

/// The samples of a query's answer, by namespace and template (and the
/// value of label `by`, if given) (pure).
pub fn samples(answer: &Value, by: Option<&str>) -> BTreeMap<(String, String, String), f64> {
    let mut out = BTreeMap::new();
    for r in answer
        .pointer("/data/result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let label = |k: &str| r["metric"][k].as_str().unwrap_or_default().to_string();
        let value = r["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value.filter(|v| v.is_finite()) {
            let extra = by.map(label).unwrap_or_default();
            out.insert((label("object_namespace"), label("template"), extra), v);
        }
    }
    out
}

/// The answers of the five queries.
pub struct Answers {
    pub changes: Value,
    pub lead_sum: Value,
    pub lead_count: Value,
    pub restore_sum: Value,
    pub restore_count: Value,
}

/// The rows from the answers over `days` (pure): one per namespace and
/// template with a change or a restore in the range.
pub fn rows(a: &Answers, days: f64) -> Vec<Row> {
    let changes = samples(&a.changes, Some("outcome"));
    let pair = |m: &BTreeMap<(String, String, String), f64>, k: &(String, String)| {
        m.get(&(k.0.clone(), k.1.clone(), String::new())).copied()
    };
    let (lead_sum, lead_count) = (samples(&a.lead_sum, None), samples(&a.lead_count, None));
    let (restore_sum, restore_count) = (samples(&a.restore_sum, None), samples(&a.restore_count, None));
    let mut keys: Vec<(String, String)> = changes
        .keys()
        .chain(restore_count.keys())
        .map(|(n, t, _)| (n.clone(), t.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mean = |sum: Option<f64>, count: Option<f64>| match (sum, count) {
        (Some(s), Some(c)) if c >= 0.5 => Some(s / c),
        _ => None,
    };
    keys.into_iter()
        .filter_map(|k| {
            let of = |outcome: &str| {
                changes
                    .get(&(k.0.clone(), k.1.clone(), outcome.to_string()))
                    .copied()
                    .unwrap_or(0.0)
                    .round()
            };
            let (ready, stalled) = (of("ready"), of("stalled"));
            let restore = mean(pair(&restore_sum, &k), pair(&restore_count, &k));
            if ready + stalled == 0.0 && restore.is_none() {
                return None;
            }
            let lead_time = mean(pair(&lead_sum, &k), pair(&lead_count, &k));
            let count = |mean: Option<f64>, c: Option<f64>| mean.and(c).map_or(0.0, f64::round);
            Some(Row {
                ready,
                stalled,
                per_day: ready / days,
                failure_rate: (ready + stalled > 0.0).then(|| stalled / (ready + stalled)),
                lead_count: count(lead_time, pair(&lead_count, &k)),
                lead_time,
                restore_count: count(restore, pair(&restore_count, &k)),
                restore,
                namespace: k.0,
                template: k.1,
            })
        })
        .collect()
}

/// Stalls of one reason in one namespace and template over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stall {
    pub namespace: String,
    pub template: String,
    /// The Stalled condition's reason (`kstatus::Reason`).
    pub reason: String,
    /// For a failed object (`ResourceFailed`), why it failed
    /// (`CrashLoopBackOff`, `JobFailed`, …); otherwise empty.
    pub cause: String,
    pub count: f64,
}

impl Stall {
    /// What the failure reasons rank it by: its cause, if it has one, else its reason.
    pub fn what(&self) -> &str {
        if self.cause.is_empty() {
            &self.reason
        } else {
            &self.cause
        }
    }
}

/// The stalls in an answer of [`total`] by reason and cause (pure): whole counts, none zero.
pub fn stalls(answer: &Value) -> Vec<Stall> {
    let mut out: Vec<Stall> = answer
        .pointer("/data/result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let label = |k: &str| r["metric"][k].as_str().unwrap_or_default().to_string();
            let count = r["value"][1].as_str()?.parse::<f64>().ok()?.round();
            (count.is_finite() && count > 0.0).then(|| Stall {
                namespace: label("object_namespace"),
                template: label("template"),
                reason: label("reason"),
                cause: label("cause"),
                count,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.namespace, &a.template, &a.reason, &a.cause).cmp(&(&b.namespace, &b.template, &b.reason, &b.cause))
    });
    out
}

/// What Prometheus holds over a range.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Per namespace and template.
    pub rows: Vec<Row>,
    /// Stalls by reason.
    pub stalls: Vec<Stall>,
}

/// Asks Prometheus at `base` for the answer to `q` (its API's JSON).
pub async fn ask(http: &openidconnect::reqwest::Client, base: &str, q: String) -> Result<Value, String> {
    let url = format!(
        "{}/api/v1/query?query={}",
        base.trim_end_matches('/'),
        openidconnect::url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let r = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("Prometheus at {base} cannot be reached: {e}"))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("Prometheus at {base}: {e}"))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| format!("Prometheus at {base} answered {status} with something other than its API's JSON"))?;
    match v["status"].as_str() {
        Some("success") => Ok(v),
        _ => Err(format!(
            "Prometheus at {base} refused the query: {}",
            v["error"].as_str().unwrap_or("no reason given")
        )),
    }
}

/// Asks Prometheus at `base` for the figures over `range` in `scope`.
pub async fn query(p: &Prometheus, scope: &Scope, range: &str) -> Result<Figures, String> {
    let (http, base) = (&p.http, p.url.as_str());
    let Some(m) = matcher(scope) else {
        return Ok(Figures::default());
    };
    let m = both(&m, &p.source);
    let days = RANGES.iter().find(|(r, _)| *r == range).map_or(7.0, |(_, d)| *d);
    let of = |metric: &str, more: &str| total(metric, &m, range, more);
    let (changes, lead_sum, lead_count, restore_sum, restore_count, stalled) = futures::try_join!(
        ask(http, base, of("portico_deployment_changes_total", ", outcome")),
        ask(http, base, of("portico_deployment_lead_time_seconds_sum", "")),
        ask(http, base, of("portico_deployment_lead_time_seconds_count", "")),
        ask(http, base, of("portico_deployment_restore_seconds_sum", "")),
        ask(http, base, of("portico_deployment_restore_seconds_count", "")),
        ask(http, base, of("portico_deployment_stalls_total", ", reason, cause")),
    )?;
    let rows = rows(
        &Answers {
            changes,
            lead_sum,
            lead_count,
            restore_sum,
            restore_count,
        },
        days,
    );
    Ok(Figures {
        rows,
        stalls: stalls(&stalled),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_source_labels_are_escaped_and_joined() {
        let labels = std::collections::BTreeMap::from([
            ("job".to_string(), "portico\"x".to_string()),
            ("namespace".to_string(), "portico-system".to_string()),
        ]);
        assert_eq!(source(&labels), r#"job="portico\"x",namespace="portico-system""#);
        assert_eq!(both("a=\"1\"", ""), "a=\"1\"");
        assert_eq!(both("", "b=\"2\""), "b=\"2\"");
        assert_eq!(both("a=\"1\"", "b=\"2\""), "a=\"1\",b=\"2\"");
    }

    #[test]
    fn the_scope_becomes_an_escaped_namespace_matcher() {
        assert_eq!(matcher(&Scope::All).as_deref(), Some(""));
        assert_eq!(matcher(&Scope::In(vec![])), None, "nothing to ask");
        assert_eq!(
            matcher(&Scope::In(vec!["team-a".into(), "a.b".into()])).as_deref(),
            Some(r#"object_namespace=~"team\\-a|a\\.b""#),
            "escaped for RE2, then for the PromQL string"
        );
    }

    #[test]
    fn a_total_counts_series_born_in_the_range_whole() {
        assert_eq!(
            total("x_total", "object_namespace=~\"a\"", "7d", ", outcome"),
            "sum by (object_namespace, template, outcome) ((increase(x_total{object_namespace=~\"a\"}[7d]) and x_total{object_namespace=~\"a\"} offset 7d) or (last_over_time(x_total{object_namespace=~\"a\"}[7d]) unless x_total{object_namespace=~\"a\"} offset 7d))"
        );
    }

    #[test]
    fn rows_give_frequency_failure_rate_lead_time_and_restore() {
        let answer = |series: Vec<(&str, &str, Option<&str>, &str)>| {
            json!({"status": "success", "data": {"result": series.iter().map(|(n, t, o, v)| {
                let mut metric = json!({"object_namespace": n, "template": t});
                if let Some(o) = o { metric["outcome"] = json!(o); }
                json!({"metric": metric, "value": [0, v]})
            }).collect::<Vec<_>>()}})
        };
        let a = Answers {
            changes: answer(vec![
                ("team-a", "webapp", Some("ready"), "6.9999"),
                ("team-a", "webapp", Some("stalled"), "1"),
                ("team-a", "idle", Some("ready"), "0"),
                ("team-a", "idle", Some("stalled"), "0"),
            ]),
            lead_sum: answer(vec![("team-a", "webapp", None, "140")]),
            lead_count: answer(vec![("team-a", "webapp", None, "7")]),
            restore_sum: answer(vec![("team-a", "webapp", None, "600")]),
            restore_count: answer(vec![("team-a", "webapp", None, "1")]),
        };
        assert_eq!(
            rows(&a, 7.0),
            [Row {
                namespace: "team-a".into(),
                template: "webapp".into(),
                ready: 7.0,
                stalled: 1.0,
                per_day: 1.0,
                failure_rate: Some(0.125),
                lead_time: Some(20.0),
                lead_count: 7.0,
                restore: Some(600.0),
                restore_count: 1.0,
            }],
            "a pair without a change in the range is left out"
        );
    }
}
