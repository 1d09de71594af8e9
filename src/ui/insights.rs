//! Insights (`/insights`): what a platform team asks without reading logs,
//! from the live objects, in the namespaces where the viewer may list them
//! (as the lists answer): Deployments Ready, progressing and Stalled;
//! active Terminals and sessions; action items that name the objects
//! needing a change; and compliance findings over the catalog templates the
//! viewer's groups may use and the Terminals they may see
//! ([`crate::compliance`]); and, from Prometheus where configured,
//! delivery figures over a range ([`super::delivery`]) and usage per team
//! and user ([`super::usage`]). `?format=json` exports it all, `?format=csv`
//! one table (`table=`, one of [`TABLES`]).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, http::StatusCode, web};
use minijinja::{context, value::Serde};
use serde::Serialize;

use super::{access::csv_table, logged_in::LoggedIn, page::Page, readable, rows::Row, state::State};
use super::{reasons, scorecard, svg};
use crate::compliance::{Finding, Severity};

/// The Insights page and its exports.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/insights", web::get().to(insights));
}

/// A Deployment Stalled longer than this is an action item of its own kind.
pub const STALLED_LONG_SECONDS: i64 = 3600;

/// What the page shows of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentFacts {
    pub namespace: String,
    pub name: String,
    pub template: String,
    /// `ready`, `progress` or `stalled`.
    pub state: &'static str,
    /// Its Ready condition's status (`True`, `False`, `Unknown`, or empty).
    pub ready: String,
    /// While Stalled: since when (seconds since the epoch).
    pub stalled_since: Option<i64>,
    /// While Stalled: why (its condition's reason).
    pub stalled_reason: String,
    /// Its objects that failed: `Kind name: why`.
    pub failed: Vec<String>,
    /// Why its first failed object failed (`CrashLoopBackOff`, `JobFailed`, …), if one did.
    pub cause: String,
    pub message: String,
    /// Its creates and updates in the range, as its status records them.
    pub record: scorecard::Record,
}

/// Counts for the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub ready: usize,
    pub progressing: usize,
    pub stalled: usize,
    pub terminals: usize,
    pub sessions: usize,
    /// Whether `sessions` counts everyone's (an admin) or the viewer's own.
    pub all_sessions: bool,
    /// Changes of Deployments that ended over the range (from Prometheus).
    pub changes: Option<u64>,
    /// Of them, the share that turned Ready, in percent.
    pub success_percent: Option<u64>,
}

/// Changes over the range and the percentage that turned Ready, from the
/// per-template totals (pure); `None` without figures or changes.
pub fn changes_and_success(templates: &[scorecard::Total]) -> (Option<u64>, Option<u64>) {
    let (ready, stalled) = templates
        .iter()
        .fold((0.0, 0.0), |(r, s), t| (r + t.ready, s + t.stalled));
    let all = ready + stalled;
    if all <= 0.0 {
        return (None, None);
    }
    (Some(all.round() as u64), Some((100.0 * ready / all).round() as u64))
}

/// Something that needs a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionItem {
    pub severity: Severity,
    pub text: String,
    /// The object's page, or the section that lists them.
    pub link: String,
}

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Insights {
    pub overview: Overview,
    pub actions: Vec<ActionItem>,
    pub findings: Vec<Finding>,
    pub deployments: Vec<DeploymentFacts>,
    pub delivery: Delivery,
    /// Why Deployments stalled over the range, most first.
    pub reasons: Vec<reasons::Ranked>,
    /// The reason asked for with `?reason=`, drilled into.
    pub drill: Option<reasons::Drill>,
    pub scorecard: Scorecard,
    pub usage: super::usage::Usage,
}

/// The health scorecard: the best and worst five templates and Deployments.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub formula: &'static str,
    pub best: Vec<scorecard::Scored>,
    pub worst: Vec<scorecard::Scored>,
}

/// How many lines each end of the scorecard shows.
const SCORECARD_LINES: usize = 5;

/// A template whose changes stalled at least this often over the range,
/// a third of them or more, is an action item.
const FAILING_TEMPLATE_STALLS: f64 = 2.0;

/// The action items (pure): Deployments Stalled (those for more than an
/// hour counted apart), templates most of whose Deployments are Stalled,
/// templates most of whose changes over the range stalled (`templates`,
/// from [`scorecard::totals`]), and the critical compliance findings; most
/// serious first.
pub fn actions(
    deployments: &[DeploymentFacts],
    findings: &[Finding],
    (templates, range): (&[scorecard::Total], &str),
    now: i64,
) -> Vec<ActionItem> {
    let mut out = vec![];
    for t in templates {
        if t.stalled >= FAILING_TEMPLATE_STALLS && 3.0 * t.stalled >= t.ready + t.stalled {
            let all = t.ready + t.stalled;
            out.push(ActionItem {
                severity: Severity::Warning,
                text: format!(
                    "template {}: {} of its {} changes over {range} stalled",
                    t.name, t.stalled, all
                ),
                link: format!("/insights?range={range}#reasons"),
            });
        }
    }
    let stalled: Vec<&DeploymentFacts> = deployments.iter().filter(|d| d.state == "stalled").collect();
    let long = stalled
        .iter()
        .filter(|d| d.stalled_since.is_some_and(|t| now - t > STALLED_LONG_SECONDS))
        .count();
    if long > 0 {
        out.push(ActionItem {
            severity: Severity::Critical,
            text: format!(
                "{long} Deployment{} Stalled for more than an hour",
                if long == 1 { "" } else { "s" }
            ),
            link: "#deployments".into(),
        });
    }
    let mut by_template: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for d in deployments {
        let e = by_template.entry(&d.template).or_default();
        e.1 += 1;
        if d.state == "stalled" {
            e.0 += 1;
        }
    }
    for (template, (bad, all)) in by_template {
        if bad >= 2 && bad * 2 >= all {
            out.push(ActionItem {
                severity: Severity::Warning,
                text: format!("template {template}: {bad} of its {all} Deployments are Stalled"),
                link: format!("/deployments?template={template}"),
            });
        }
    }
    for d in stalled {
        let since = d
            .stalled_since
            .map(|t| format!(" for {}", span(now - t)))
            .unwrap_or_default();
        out.push(ActionItem {
            severity: Severity::Warning,
            text: format!("Deployment {}/{} is Stalled{since}: {}", d.namespace, d.name, d.message),
            link: format!("/deployments/{}/{}", d.namespace, d.name),
        });
    }
    let critical: Vec<&Finding> = findings.iter().filter(|f| f.severity == Severity::Critical).collect();
    for f in critical {
        out.push(ActionItem {
            severity: Severity::Critical,
            text: format!("{} {}: {}", f.kind, f.subject, f.found),
            link: match f.kind {
                "Terminal" => format!("/terminals/{}", f.subject),
                _ => "#compliance".into(),
            },
        });
    }
    out.sort_by_key(|a| a.severity);
    out
}

/// A duration in words: `under a minute`, `3 min`, `2 h`, `4 d` (pure).
pub fn span(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 60 => "under a minute".into(),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// Delivery figures over time, or why there are none.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The range: `7d`, `30d` or `90d`.
    pub range: String,
    /// The rows, when Prometheus answered.
    pub rows: Vec<super::delivery::Row>,
    /// The rows added up per team (namespace).
    pub teams: Vec<scorecard::Total>,
    /// The rows added up per template.
    pub templates: Vec<scorecard::Total>,
    /// Stalls by reason.
    pub stalls: Vec<super::delivery::Stall>,
    /// Why there are no figures: not configured, or Prometheus' error.
    pub unavailable: Option<String>,
}

/// A duration for a table: `45 s`, `12 min`, `3.5 h`, `2.1 d` (pure).
pub fn duration(seconds: f64) -> String {
    match seconds.max(0.0) {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

/// What `?` may ask for.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Query {
    /// Delivery figures over `7d` (the default), `30d` or `90d`.
    #[serde(default)]
    pub range: Option<String>,
    /// `json` or `csv`; none: the page.
    #[serde(default)]
    pub format: Option<String>,
    /// With `csv`: `findings` (the default), `actions`, `delivery`,
    /// `teams`, `templates`, `reasons`, `scorecard`, `usage` or `deployments`.
    #[serde(default)]
    pub table: Option<String>,
    /// A Stalled reason to drill into.
    #[serde(default)]
    pub reason: Option<String>,
    /// Only what concerns this template.
    #[serde(default)]
    pub template: Option<String>,
    /// Only what concerns this user.
    #[serde(default)]
    pub user: Option<String>,
}

/// What the viewer narrowed the page and its exports to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pick {
    pub template: Option<String>,
    pub user: Option<String>,
}

impl Pick {
    /// The pick of `?template=` and `?user=` (pure), or what is wrong with it.
    pub fn of(template: Option<&str>, user: Option<&str>) -> Result<Pick, String> {
        let given = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(String::from);
        let (template, user) = (given(template), given(user));
        if let Some(t) = &template
            && (t.len() > 253
                || !t
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
        {
            return Err(format!(
                "{t:?} is not a template name: a template is named like a ConfigMap (lowercase letters, digits, '-' and '.')."
            ));
        }
        if let Some(u) = &user
            && (u.len() > 256 || u.chars().any(char::is_control))
        {
            return Err("A user name has at most 256 characters and no control characters.".into());
        }
        if template.is_some() && user.is_some() {
            return Err(
                "Pick a template or a user, not both: delivery figures are kept per template, usage per user.".into(),
            );
        }
        Ok(Pick { template, user })
    }

    /// The pick as query parameters to append to a link (`&template=…`), URL-encoded (pure).
    pub fn query(&self) -> String {
        let enc = |v: &str| openidconnect::url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        match (&self.template, &self.user) {
            (Some(t), _) => format!("&template={}", enc(t)),
            (_, Some(u)) => format!("&user={}", enc(u)),
            _ => String::new(),
        }
    }
}

/// What `?` may name.
const PARAMETERS: [&str; 6] = ["range", "format", "table", "reason", "template", "user"];

/// What is wrong with a query string's names (pure): one the page does not
/// know (a typo would otherwise show everything), a name given twice, or
/// `table` without `format=csv`.
pub fn query_problem(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = openidconnect::url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (k, _) in &pairs {
        if !PARAMETERS.contains(&k.as_str()) {
            return Some(format!(
                "Insights has no parameter {k:?}: use {}.",
                PARAMETERS.join(", ")
            ));
        }
        if !seen.insert(k.as_str()) {
            return Some(format!("{k} is given twice: give it once."));
        }
    }
    let of = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    (of("table").is_some() && of("format") != Some("csv"))
        .then(|| "table= picks the table of a CSV export: add format=csv.".to_string())
}

/// What is not kept per user or per template.
const NOT_PER_USER: &str =
    "Delivery figures are kept per namespace and template, not per user: the Usage table has this user's operations.";
const NOT_PER_TEMPLATE: &str = "Usage is kept per namespace and user, not per template.";

/// Narrows the delivery figures and usage to `pick` (pure).
pub fn narrow(delivery: &mut Delivery, usage: &mut super::usage::Usage, pick: &Pick, days: f64) {
    if let Some(t) = &pick.template {
        delivery.rows.retain(|r| &r.template == t);
        delivery.stalls.retain(|s| &s.template == t);
        delivery.teams = scorecard::totals(&delivery.rows, |r| &r.namespace, days);
        delivery.templates = scorecard::totals(&delivery.rows, |r| &r.template, days);
        if usage.unavailable.is_none() {
            usage.teams.clear();
            usage.users.clear();
            usage.unavailable = Some(NOT_PER_TEMPLATE.into());
        }
    }
    if let Some(u) = &pick.user {
        if delivery.unavailable.is_none() {
            delivery.rows.clear();
            delivery.stalls.clear();
            delivery.teams.clear();
            delivery.templates.clear();
            delivery.unavailable = Some(NOT_PER_USER.into());
        }
        usage.teams.clear();
        usage.users.retain(|r| &r.name == u);
    }
}

/// Everything in the viewer's scope.
async fn gather(
    state: &State,
    s: &super::cookies::Session,
    range: &str,
    reason: Option<&str>,
    pick: &Pick,
) -> Result<Insights, super::page::PageError> {
    let days = super::delivery::RANGES
        .iter()
        .find(|(r, _)| *r == range)
        .map_or(7.0, |(_, d)| *d);
    let since = k8s_openapi::jiff::Timestamp::now().as_second() - (days * 86_400.0) as i64;
    let admin = state.is_admin(s);
    let deployments_readable = state
        .readable(s, readable::DEPLOYMENTS, &state.live.deployments)
        .await?;
    let terminals_readable = state.readable(s, readable::TERMINALS, &state.live.terminals).await?;
    let deployments: Vec<DeploymentFacts> = {
        let index = state.live.deployments.read().unwrap();
        index
            .rows(pick.user.as_deref())
            .filter(|r| deployments_readable.has(&r.key().0))
            .filter(|r| pick.template.as_ref().is_none_or(|t| &r.template == t))
            .map(|r| DeploymentFacts {
                namespace: r.key().0.clone(),
                name: r.key().1.clone(),
                template: r.template.clone(),
                state: r.state,
                ready: r.ready.clone(),
                stalled_since: r.stalled_since,
                stalled_reason: r.stalled_reason.clone(),
                failed: r.failed.clone(),
                cause: r.cause.to_string(),
                message: r.message.clone(),
                record: record(&r.changes, r.lead_time, since),
            })
            .collect()
    };
    let (terminals, mut findings) = {
        let index = state.live.terminals.read().unwrap();
        // Open ones only: an ended Terminal keeps its row until its cleanup is done.
        let visible: Vec<_> = index
            .rows(pick.user.as_deref())
            .filter(|r| terminals_readable.has(&r.key().0) && r.state != "ended")
            .collect();
        // Terminals are of no template.
        let findings: Vec<Finding> = match pick.template {
            Some(_) => vec![],
            None => visible.iter().flat_map(|r| r.findings.clone()).collect(),
        };
        (visible.len(), findings)
    };
    for t in state.catalog.all() {
        let picked = pick.template.as_ref().is_none_or(|p| p == &t.name) && pick.user.is_none();
        if picked && t.allows(&s.groups) {
            findings.extend(t.findings().iter().cloned());
        }
    }
    findings.sort_by(|a, b| (a.severity, a.kind, &a.subject).cmp(&(b.severity, b.kind, &b.subject)));
    // Everyone's sessions for those who may list them (as the admin pages
    // ask the API server), else the viewer's own.
    let all_sessions = admin
        && state
            .may(s, readable::SESSION_CLAIMS, &state.cfg.session.namespace)
            .await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let sessions = state
        .claims()
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| {
            c.status
                .as_ref()
                .is_none_or(|st| st.end_reason.is_none() && st.expires_at.as_ref().is_none_or(|e| e.0 > now))
        })
        .filter(|c| all_sessions || crate::creator::creator_name(&***c) == s.user)
        .filter(|c| {
            pick.user
                .as_ref()
                .is_none_or(|u| &crate::creator::creator_name(&***c) == u)
        })
        .count();
    let count = |state: &str| deployments.iter().filter(|d| d.state == state).count();
    let (mut delivery, mut usage) = futures::join!(delivery(state, s, range), super::usage::gather(state, s, range));
    narrow(&mut delivery, &mut usage, pick, days);
    let (changes, success_percent) = changes_and_success(&delivery.templates);
    let overview = Overview {
        ready: count("ready"),
        progressing: count("progress"),
        stalled: count("stalled"),
        terminals,
        sessions,
        all_sessions,
        changes,
        success_percent,
    };
    let now = now.as_second();
    let reasons = reasons::ranked(&delivery.stalls);
    let drill = reason.map(|r| {
        let now = deployments
            .iter()
            .filter(|d| d.state == "stalled" && (d.stalled_reason == r || d.cause == r))
            .map(|d| reasons::StalledNow {
                namespace: d.namespace.clone(),
                name: d.name.clone(),
                template: d.template.clone(),
                message: d.message.clone(),
                failed: d.failed.clone(),
            })
            .collect();
        reasons::drill(r, &delivery.stalls, now)
    });
    let mut lines = scorecard::templates(&delivery.templates);
    lines.extend(
        deployments
            .iter()
            .filter_map(|d| scorecard::deployment(&d.namespace, &d.name, &d.record, days)),
    );
    let (best, worst) = scorecard::best_and_worst(lines, SCORECARD_LINES);
    Ok(Insights {
        actions: actions(&deployments, &findings, (&delivery.templates, range), now),
        delivery,
        usage,
        overview,
        findings,
        deployments,
        reasons,
        drill,
        scorecard: Scorecard {
            formula: scorecard::FORMULA,
            best,
            worst,
        },
    })
}

/// What a Deployment's recorded changes since `since` (seconds since the
/// epoch) say (pure): how many succeeded and failed, and its lead time.
pub fn record(changes: &[(i64, bool)], lead_time: Option<i64>, since: i64) -> scorecard::Record {
    let recent = changes.iter().filter(|(at, _)| *at >= since);
    let succeeded = recent.clone().filter(|(_, ok)| *ok).count() as u32;
    scorecard::Record {
        succeeded,
        failed: recent.count() as u32 - succeeded,
        lead_time,
    }
}

/// The delivery figures over `range` where the viewer may list Deployments.
async fn delivery(state: &State, s: &super::cookies::Session, range: &str) -> Delivery {
    let days = super::delivery::RANGES
        .iter()
        .find(|(r, _)| *r == range)
        .map_or(7.0, |(_, d)| *d);
    let answer = |figures: super::delivery::Figures, unavailable| Delivery {
        range: range.to_string(),
        teams: scorecard::totals(&figures.rows, |r| &r.namespace, days),
        templates: scorecard::totals(&figures.rows, |r| &r.template, days),
        rows: figures.rows,
        stalls: figures.stalls,
        unavailable,
    };
    let Some(prometheus) = &state.prometheus else {
        return answer(
            Default::default(),
            Some(
                "Delivery figures over time come from a Prometheus that scrapes the operator: set prometheus.url in the dashboard's configuration (the chart's dashboard.prometheus.url).".into(),
            ),
        );
    };
    // Everywhere for a cluster-wide grant (deleted namespaces' history too),
    // else the namespaces where the API server says the viewer may list them.
    let scope = match state.readable_for(s, readable::DEPLOYMENTS, Default::default()).await {
        Ok(r) if *r == super::readable::Readable::All => super::delivery::Scope::All,
        Ok(_) => super::delivery::Scope::In(state.where_may(s, readable::DEPLOYMENTS).await),
        Err(e) => {
            return answer(
                Default::default(),
                Some(format!(
                    "The API server could not be asked where you may look: {}",
                    super::state::why(&e)
                )),
            );
        }
    };
    match super::delivery::query(prometheus, &scope, range).await {
        Ok(figures) => answer(figures, None),
        Err(e) => answer(Default::default(), Some(e)),
    }
}

/// `GET /insights[?range=7d|30d|90d][&format=json|csv[&table=…]]`.
async fn insights(state: State, LoggedIn(s): LoggedIn, req: actix_web::HttpRequest) -> Page {
    state.heartbeat(&s);
    let bad = |why: &str| state.refuse(Some(&s), StatusCode::BAD_REQUEST, "Unknown parameter", why);
    if let Some(why) = query_problem(req.query_string()) {
        return Err(bad(&why));
    }
    let q = web::Query::<Query>::from_query(req.query_string()).map_err(|e| bad(&e.to_string()))?;
    let range = q.range.as_deref().unwrap_or("7d");
    if !super::delivery::RANGES.iter().any(|(r, _)| *r == range) {
        return Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Unknown range",
            &format!("There is no range {range:?}: use 7d, 30d or 90d."),
        ));
    }
    let reason = match q.reason.as_deref() {
        None | Some("") => None,
        Some(r) if reasons::known(r) => Some(r),
        Some(r) => {
            return Err(state.refuse(
                Some(&s),
                StatusCode::BAD_REQUEST,
                "Unknown reason",
                &format!(
                    "A Deployment is never Stalled for {r:?}: drill into one of {}.",
                    reasons::names().join(", ")
                ),
            ));
        }
    };
    let pick = match Pick::of(q.template.as_deref(), q.user.as_deref()) {
        Ok(p) => p,
        Err(why) => return Err(state.refuse(Some(&s), StatusCode::BAD_REQUEST, "Unknown scope", &why)),
    };
    let insights = gather(&state, &s, range, reason, &pick).await?;
    match q.format.as_deref() {
        None => {
            let charts = charts(&insights);
            Ok(state.page(
                "insights.html",
                &s,
                context! {
                    i => Serde(&insights),
                    charts => Serde(&charts),
                    pick => Serde(&pick),
                    scope => pick.query(),
                    templates => state.catalog.all().iter().filter(|t| t.allows(&s.groups)).map(|t| t.name.clone()).collect::<Vec<_>>(),
                    generated => k8s_openapi::jiff::Timestamp::now().to_string(),
                },
            ))
        }
        Some("json") => Ok(HttpResponse::Ok().json(&insights)),
        Some("csv") => match csv_of(&insights, q.table.as_deref().unwrap_or("findings")) {
            Some((name, body)) => Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    "content-disposition",
                    format!("attachment; filename=\"insights-{name}.csv\""),
                ))
                .body(body)),
            None => Err(state.refuse(
                Some(&s),
                StatusCode::BAD_REQUEST,
                "Unknown export",
                &format!(
                    "There is no table {:?} to export: use one of {}.",
                    q.table.as_deref().unwrap_or_default(),
                    TABLES.join(", ")
                ),
            )),
        },
        Some(other) => Err(state.refuse(
            Some(&s),
            StatusCode::BAD_REQUEST,
            "Unknown export",
            &format!("There is no format {other:?}: use csv or json, or none for the page."),
        )),
    }
}

/// The charts of the page (SVG), where there is something to draw.
#[derive(Debug, Default, Serialize)]
pub struct Charts {
    pub teams: Option<String>,
    pub templates: Option<String>,
    pub reasons: Option<String>,
}

/// The page's charts (pure).
pub fn charts(i: &Insights) -> Charts {
    let changes = |title: &str, totals: &[scorecard::Total]| {
        let bars: Vec<svg::Bar> = totals
            .iter()
            .map(|t| svg::Bar {
                label: t.name.clone(),
                segments: vec![t.ready, t.stalled],
            })
            .collect();
        svg::bars(title, &[("Ready", "good"), ("Stalled", "bad")], &bars)
    };
    let reasons: Vec<svg::Bar> = i
        .reasons
        .iter()
        .map(|r| svg::Bar {
            label: r.reason.clone(),
            segments: vec![r.count],
        })
        .collect();
    Charts {
        teams: changes("Changes per team", &i.delivery.teams),
        templates: changes("Changes per template", &i.delivery.templates),
        reasons: svg::bars("Stalls per reason", &[("Stalls", "bad")], &reasons),
    }
}

/// The tables `?format=csv&table=` exports.
pub const TABLES: [&str; 9] = [
    "findings",
    "actions",
    "delivery",
    "teams",
    "templates",
    "reasons",
    "scorecard",
    "usage",
    "deployments",
];

/// A number with three decimals, or nothing (pure).
fn decimal(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_default()
}

/// Table `table` of `i` as CSV, with its file name (pure); `None` for a table there is not.
pub fn csv_of(i: &Insights, table: &str) -> Option<(&'static str, String)> {
    // The delivery figures' columns, after the ones naming the row.
    const FIGURES: [&str; 6] = [
        "ready",
        "stalled",
        "per_day",
        "failure_rate",
        "lead_time_seconds",
        "restore_seconds",
    ];
    let figures = |named: Vec<String>, (ready, stalled, per_day): (f64, f64, f64), means: [Option<f64>; 3]| {
        let mut row = named;
        row.extend([ready.to_string(), stalled.to_string(), format!("{per_day:.3}")]);
        row.extend(means.map(decimal));
        row
    };
    let header = |first: &[&'static str]| [first, &FIGURES[..]].concat();
    let totals = |ts: &[scorecard::Total], first: &'static str| {
        csv_table(
            &header(&[first]),
            ts.iter().map(|t| {
                figures(
                    vec![t.name.clone()],
                    (t.ready, t.stalled, t.per_day),
                    [t.failure_rate, t.lead_time, t.restore],
                )
            }),
        )
    };
    let body = match table {
        "findings" => findings_csv(&i.findings),
        "actions" => csv_table(
            &["severity", "action", "link"],
            i.actions
                .iter()
                .map(|a| vec![severity(a.severity), a.text.clone(), a.link.clone()]),
        ),
        "delivery" => csv_table(
            &header(&["namespace", "template"]),
            i.delivery.rows.iter().map(|r| {
                figures(
                    vec![r.namespace.clone(), r.template.clone()],
                    (r.ready, r.stalled, r.per_day),
                    [r.failure_rate, r.lead_time, r.restore],
                )
            }),
        ),
        "teams" => totals(&i.delivery.teams, "namespace"),
        "templates" => totals(&i.delivery.templates, "template"),
        "reasons" => csv_table(
            &["reason", "cause", "class", "namespace", "template", "stalls"],
            i.delivery.stalls.iter().map(|s| {
                vec![
                    s.reason.clone(),
                    s.cause.clone(),
                    reasons::class(s.what()).to_string(),
                    s.namespace.clone(),
                    s.template.clone(),
                    s.count.to_string(),
                ]
            }),
        ),
        "scorecard" => csv_table(
            &[
                "end",
                "kind",
                "subject",
                "score",
                "changes",
                "success_rate",
                "lead_time_seconds",
                "per_day",
            ],
            [("best", &i.scorecard.best), ("worst", &i.scorecard.worst)]
                .into_iter()
                .flat_map(|(end, lines)| lines.iter().map(move |l| (end, l)))
                .map(|(end, l)| {
                    vec![
                        end.to_string(),
                        l.kind.to_string(),
                        l.subject.clone(),
                        l.score.to_string(),
                        l.changes.to_string(),
                        format!("{:.3}", l.success_rate),
                        decimal(l.lead_time),
                        format!("{:.3}", l.per_day),
                    ]
                }),
        ),
        "usage" => super::usage::csv(&i.usage),
        "deployments" => csv_table(
            &[
                "namespace",
                "name",
                "template",
                "state",
                "stalled_since",
                "stalled_reason",
                "message",
            ],
            i.deployments.iter().map(|d| {
                vec![
                    d.namespace.clone(),
                    d.name.clone(),
                    d.template.clone(),
                    d.state.to_string(),
                    d.stalled_since.map(|t| t.to_string()).unwrap_or_default(),
                    d.stalled_reason.clone(),
                    d.message.clone(),
                ]
            }),
        ),
        _ => return None,
    };
    TABLES.iter().find(|t| **t == table).map(|t| (*t, body))
}

fn severity(s: Severity) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The findings as CSV (pure).
pub fn findings_csv(findings: &[Finding]) -> String {
    csv_table(
        &["kind", "subject", "check", "severity", "found", "fix"],
        findings.iter().map(|f| {
            vec![
                f.kind.to_string(),
                f.subject.clone(),
                f.check.to_string(),
                severity(f.severity),
                f.found.clone(),
                f.fix.clone(),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, template: &str, state: &'static str, since: Option<i64>) -> DeploymentFacts {
        DeploymentFacts {
            namespace: "team-a".into(),
            name: name.into(),
            template: template.into(),
            state,
            ready: String::new(),
            stalled_since: since,
            stalled_reason: if state == "stalled" {
                "ResourceFailed".into()
            } else {
                String::new()
            },
            failed: vec![],
            cause: String::new(),
            message: format!("{name} says why"),
            record: record(&[], None, 0),
        }
    }

    #[test]
    fn action_items_name_stalled_deployments_failing_templates_and_critical_findings() {
        let now = 10_000;
        let ds = [
            deployment("a", "postgresql", "stalled", Some(now - 7200)),
            deployment("b", "postgresql", "stalled", Some(now - 60)),
            deployment("c", "postgresql", "ready", None),
            deployment("d", "webapp", "stalled", Some(now - 120)),
            deployment("e", "webapp", "ready", None),
            deployment("f", "webapp", "progress", None),
        ];
        let critical = Finding {
            kind: "Terminal",
            subject: "team-a/ops".into(),
            check: "privileged-terminal",
            severity: Severity::Critical,
            found: "its pod runs privileged".into(),
            fix: "end it".into(),
        };
        let notice = Finding {
            severity: Severity::Notice,
            ..critical.clone()
        };
        let total = |name: &str, ready: f64, stalled: f64| scorecard::Total {
            name: name.into(),
            ready,
            stalled,
            per_day: 0.0,
            failure_rate: None,
            lead_time: None,
            restore: None,
        };
        let history = [
            total("postgresql", 6.0, 4.0),
            total("webapp", 3.0, 2.0),
            total("steady", 9.0, 2.0),
            total("redis", 1.0, 1.0),
        ];
        let items = actions(&ds, &[critical, notice], (&history, "30d"), now);
        let texts: Vec<&str> = items.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "1 Deployment Stalled for more than an hour",
                "Terminal team-a/ops: its pod runs privileged",
                "template postgresql: 4 of its 10 changes over 30d stalled",
                "template webapp: 2 of its 5 changes over 30d stalled",
                "template postgresql: 2 of its 3 Deployments are Stalled",
                "Deployment team-a/a is Stalled for 2 h: a says why",
                "Deployment team-a/b is Stalled for 1 min: b says why",
                "Deployment team-a/d is Stalled for 2 min: d says why",
            ]
        );
        assert_eq!(items[1].link, "/terminals/team-a/ops");
        assert_eq!(items[2].link, "/insights?range=30d#reasons");
        assert_eq!(items[5].link, "/deployments/team-a/a");
        assert!(actions(&ds[2..3], &[], (&[], "7d"), now).is_empty(), "nothing to do");
        assert!(
            actions(&[], &[], (&history[2..], "7d"), now).is_empty(),
            "2 of 11 is under a third, and one stall is not yet a pattern"
        );
    }

    #[test]
    fn the_overview_counts_the_changes_of_the_range_and_their_success() {
        let t = |ready, stalled| scorecard::Total {
            name: "x".into(),
            ready,
            stalled,
            per_day: 0.0,
            failure_rate: None,
            lead_time: None,
            restore: None,
        };
        assert_eq!(changes_and_success(&[t(6.0, 1.0), t(2.0, 1.0)]), (Some(10), Some(80)));
        assert_eq!(changes_and_success(&[t(0.0, 0.0)]), (None, None));
        assert_eq!(changes_and_success(&[]), (None, None));
    }

    #[test]
    fn an_unknown_or_repeated_parameter_is_named() {
        assert_eq!(query_problem(""), None);
        assert_eq!(
            query_problem("range=30d&format=csv&table=reasons&template=webapp"),
            None
        );
        assert!(query_problem("users=bob").unwrap().contains("no parameter \"users\""));
        assert!(query_problem("user=a&user=b").unwrap().contains("given twice"));
        assert!(query_problem("table=reasons").unwrap().contains("add format=csv"));
        assert!(query_problem("format=json&table=reasons").is_some());
    }

    #[test]
    fn a_scope_is_a_template_or_a_user_and_says_what_is_wrong_with_it() {
        assert_eq!(Pick::of(None, Some(" ")), Ok(Pick::default()), "blank is everything");
        let t = Pick::of(Some("webapp"), None).unwrap();
        assert_eq!(t.query(), "&template=webapp");
        let u = Pick::of(None, Some("oidc:alice@example.com")).unwrap();
        assert_eq!(u.query(), "&user=oidc%3Aalice%40example.com");
        assert!(
            Pick::of(Some("Web App"), None)
                .unwrap_err()
                .contains("not a template name")
        );
        assert!(Pick::of(None, Some("a\nb")).unwrap_err().contains("control characters"));
        assert!(
            Pick::of(Some("webapp"), Some("alice"))
                .unwrap_err()
                .contains("not both")
        );
    }

    #[test]
    fn narrowing_keeps_a_templates_figures_or_says_what_is_not_kept_per_user() {
        let row = |ns: &str, template: &str| super::super::delivery::Row {
            namespace: ns.into(),
            template: template.into(),
            ready: 2.0,
            stalled: 1.0,
            per_day: 0.0,
            failure_rate: None,
            lead_time: None,
            lead_count: 0.0,
            restore: None,
            restore_count: 0.0,
        };
        let fresh = || Delivery {
            range: "7d".into(),
            rows: vec![
                row("team-a", "webapp"),
                row("team-a", "postgresql"),
                row("team-b", "webapp"),
            ],
            teams: vec![],
            templates: vec![],
            stalls: vec![],
            unavailable: None,
        };
        let usage = || super::super::usage::Usage {
            users: vec![
                super::super::usage::Row {
                    name: "alice".into(),
                    ..Default::default()
                },
                super::super::usage::Row {
                    name: "bob".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let (mut d, mut u) = (fresh(), usage());
        narrow(&mut d, &mut u, &Pick::of(Some("webapp"), None).unwrap(), 7.0);
        assert_eq!(d.rows.len(), 2);
        assert_eq!(
            d.teams.iter().map(|t| (t.name.as_str(), t.ready)).collect::<Vec<_>>(),
            [("team-a", 2.0), ("team-b", 2.0)]
        );
        assert_eq!((u.users.len(), u.unavailable.as_deref()), (0, Some(NOT_PER_TEMPLATE)));
        let (mut d, mut u) = (fresh(), usage());
        narrow(&mut d, &mut u, &Pick::of(None, Some("bob")).unwrap(), 7.0);
        assert_eq!((d.rows.len(), d.unavailable.as_deref()), (0, Some(NOT_PER_USER)));
        assert_eq!(u.users.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["bob"]);
    }

    #[test]
    fn a_deployments_record_counts_its_changes_in_the_range() {
        let r = record(&[(100, true), (200, false), (300, true), (400, true)], Some(5), 200);
        assert_eq!((r.succeeded, r.failed, r.lead_time), (2, 1, Some(5)));
    }

    #[test]
    fn every_table_exports_and_an_unknown_one_does_not() {
        let i = Insights {
            overview: Overview::default(),
            actions: vec![],
            findings: vec![],
            deployments: vec![deployment("a", "webapp", "stalled", Some(5))],
            delivery: Delivery {
                range: "7d".into(),
                rows: vec![],
                teams: scorecard::totals(
                    &[super::super::delivery::Row {
                        namespace: "team-a".into(),
                        template: "webapp".into(),
                        ready: 3.0,
                        stalled: 1.0,
                        per_day: 0.0,
                        failure_rate: None,
                        lead_time: Some(12.0),
                        lead_count: 3.0,
                        restore: None,
                        restore_count: 0.0,
                    }],
                    |r| &r.namespace,
                    7.0,
                ),
                templates: vec![],
                stalls: vec![super::super::delivery::Stall {
                    namespace: "team-a".into(),
                    template: "webapp".into(),
                    reason: "ResourceFailed".into(),
                    cause: "CrashLoopBackOff".into(),
                    count: 1.0,
                }],
                unavailable: None,
            },
            reasons: vec![],
            drill: None,
            usage: Default::default(),
            scorecard: Scorecard {
                formula: scorecard::FORMULA,
                best: vec![],
                worst: vec![],
            },
        };
        for t in TABLES {
            let (name, body) = csv_of(&i, t).unwrap();
            assert_eq!(name, t);
            assert!(body.lines().count() >= 1, "{t}: a header at least");
        }
        assert_eq!(
            csv_of(&i, "teams").unwrap().1.lines().nth(1),
            Some("team-a,3,1,0.429,0.250,12.000,")
        );
        assert_eq!(
            csv_of(&i, "reasons").unwrap().1.lines().nth(1),
            Some("ResourceFailed,CrashLoopBackOff,workload,team-a,webapp,1")
        );
        assert!(csv_of(&i, "deployments").unwrap().1.contains(",ResourceFailed,"));
        assert_eq!(csv_of(&i, "secrets"), None);
    }

    #[test]
    fn findings_export_as_csv_with_quoting() {
        let f = Finding {
            kind: "Template",
            subject: "webapp".into(),
            check: "non-root",
            severity: Severity::Warning,
            found: "Deployment x, container app may run as root".into(),
            fix: "set \"runAsNonRoot\"".into(),
        };
        let csv = findings_csv(&[f]);
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            [
                "kind,subject,check,severity,found,fix",
                "Template,webapp,non-root,warning,\"Deployment x, container app may run as root\",\"set \"\"runAsNonRoot\"\"\"",
            ]
        );
        assert_eq!(span(59), "under a minute");
        assert_eq!(
            [0.4, 119.0, 600.0, 12_600.0, 259_200.0].map(duration),
            ["0 s", "119 s", "10 min", "3.5 h", "3.0 d"]
        );
        assert_eq!(span(3 * 86_400 + 5), "3 d");
    }
}
