//! What the dashboard knows without asking: watches of all Deployments and
//! Terminals, whose events keep the list pages' rows (rendered once per
//! event, rebuilt on relist: [`super::rows`]), and a broadcast of every
//! change they see. Each browser's Server-Sent Events stream forwards the
//! changes of the objects it may see — what the lists show: Deployments in
//! the namespaces where the user may list them, the user's own Terminals
//! there (an admin's: all there) — until its session ends (logout, expiry,
//! revocation): then one `ended` event and the stream closes. A stream starts with the current state of the objects the
//! page shows (`?keys=`), so a page is up to date on connect and after every
//! reconnect, whatever changed while it was not listening.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use actix_web::{
    HttpResponse,
    web::{self, Bytes},
};
use futures::StreamExt;
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use minijinja::Environment;
use serde::Serialize;
use tokio::sync::broadcast;

use super::{
    cookies::Session,
    logged_in::LoggedIn,
    readable,
    rows::{
        Index, Row,
        kinds::{DeploymentRow, RowError, TerminalRow},
    },
    state::State,
};
use crate::api::{Deployment, Terminal};

/// The live-status stream.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

/// One change, as the browser sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `deployment` or `terminal`.
    #[serde(skip)]
    pub kind: &'static str,
    /// `namespace/name`.
    pub key: String,
    /// Who created it.
    #[serde(skip)]
    pub creator: String,
    /// The Ready condition's status, or empty.
    pub ready: String,
    /// [`state_of`] its conditions: `ready`, `progress`, `stalled` or `ended`.
    pub state: &'static str,
    /// The status message.
    pub message: String,
    /// When it ends (Terminals), RFC 3339, or empty.
    pub expires: String,
    /// Why it ended, once the operator has recorded that (Terminals).
    #[serde(skip)]
    pub ended: Option<crate::api::common::EndReason>,
    /// Its list row as rendered for a user and for an admin, on the change
    /// that created it only, so an open list adds it (sent as `row`, the
    /// viewer's one).
    #[serde(skip)]
    pub rows: Option<Arc<[String; 2]>>,
    /// It is gone: open lists drop its row.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    /// A Deployment's parameters, as its spec has them now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// A list's rows, shared by the watch that writes them and the pages that read them.
pub type Rows<R> = Arc<RwLock<Index<R>>>;

/// The latest [`Change`] of every object of one kind, by `namespace/name`.
pub type Latest = Arc<RwLock<HashMap<String, Change>>>;

/// The list pages' rows and the change broadcast.
pub struct Live {
    /// Every Deployment's row.
    pub deployments: Rows<DeploymentRow>,
    /// Every Terminal's row.
    pub terminals: Rows<TerminalRow>,
    /// Changes to either.
    pub changes: broadcast::Sender<Change>,
    /// The current state of every Deployment, as a change.
    pub latest_deployments: Latest,
    /// The current state of every Terminal, as a change.
    pub latest_terminals: Latest,
}

impl Live {
    /// No rows and no state yet; a broadcast that keeps `capacity` changes.
    fn new(capacity: usize) -> Live {
        Live {
            deployments: Default::default(),
            terminals: Default::default(),
            changes: broadcast::channel(capacity).0,
            latest_deployments: Default::default(),
            latest_terminals: Default::default(),
        }
    }

    /// The current state of the objects named by `keys` (`namespace/name`,
    /// either kind) that `visible` allows, in the order asked.
    pub fn current(&self, keys: &[&str], visible: impl Fn(&Change) -> bool) -> Vec<Change> {
        let (d, t) = (
            self.latest_deployments.read().unwrap(),
            self.latest_terminals.read().unwrap(),
        );
        keys.iter()
            .flat_map(|k| [d.get(*k), t.get(*k)])
            .flatten()
            .filter(|c| visible(c))
            .cloned()
            .collect()
    }
}

/// How an object shows up in a [`Change`].
trait Summary: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync {
    const KIND: &'static str;
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;
    fn message(&self) -> String;
    fn expires(&self) -> String {
        String::new()
    }
    fn ended(&self) -> Option<crate::api::common::EndReason> {
        None
    }
    fn parameters(&self) -> Option<serde_json::Value> {
        None
    }
}

impl Summary for Deployment {
    const KIND: &'static str = "deployment";
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
    fn message(&self) -> String {
        self.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default()
    }
    fn parameters(&self) -> Option<serde_json::Value> {
        Some(self.spec.parameters.clone().unwrap_or_else(|| serde_json::json!({})))
    }
}

impl Summary for Terminal {
    const KIND: &'static str = "terminal";
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
    fn message(&self) -> String {
        self.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default()
    }
    fn expires(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.expires_at.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_default()
    }
    fn ended(&self) -> Option<crate::api::common::EndReason> {
        self.status.as_ref().and_then(|s| s.end_reason)
    }
}

/// The Ready condition's status of an object, or empty.
pub fn ready_of(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

/// How an object is doing, from its kstatus conditions (pure), for the
/// pages' status badge: `ready` (Ready), `stalled` (Stalled: it needs a
/// change), `ended` (a Terminal or session that ended), else `progress`
/// (being set up or reconciling: waiting, not failing).
pub fn state_of(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> &'static str {
    let is = |type_: &str| conditions.iter().any(|c| c.type_ == type_ && c.status == "True");
    let ended = conditions.iter().any(|c| c.type_ == "Ready" && c.reason == "Ended");
    match () {
        _ if is("Ready") => "ready",
        _ if ended => "ended",
        _ if is("Stalled") => "stalled",
        _ => "progress",
    }
}

fn change<K: Summary>(o: &K) -> Change {
    let conditions = o.conditions();
    Change {
        kind: K::KIND,
        key: format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
        creator: crate::creator::creator_name(o),
        ready: ready_of(&conditions),
        state: state_of(&conditions),
        message: o.message(),
        expires: o.expires(),
        ended: o.ended(),
        rows: None,
        gone: false,
        parameters: o.parameters(),
    }
}

/// `c` with the rows of `r` attached.
fn with_rows<R: Row>(mut c: Change, r: &R) -> Change {
    c.rows = Some(Arc::new([r.html(false).to_string(), r.html(true).to_string()]));
    c
}

/// Makes an object's row.
type RowOf<K, R> = fn(&Environment<'static>, &K) -> Result<R, RowError>;

/// Watches every object of kind K: each event updates its row in `rows` and
/// is broadcast; a relist replaces all rows at once. `ready` turns true after
/// the first list.
fn follow<K, R>(
    client: Client,
    env: Arc<Environment<'static>>,
    (tx, latest): (broadcast::Sender<Change>, Latest),
    rows: Rows<R>,
    row_of: RowOf<K, R>,
    ready: tokio::sync::watch::Sender<bool>,
) where
    K: Summary + 'static,
    R: Row + Send + Sync + 'static,
    R::Order: Send + Sync,
{
    let stream = watcher(Api::<K>::all(client), watcher::Config::default()).default_backoff();
    let row = move |o: &K| {
        row_of(&env, o)
            .inspect_err(|e| tracing::warn!(error = %e, "list row not rendered"))
            .ok()
    };
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        let (mut relisted, mut relisted_latest) = (vec![], HashMap::new());
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { continue }; // the backoff retries
            match event {
                watcher::Event::Init => {
                    relisted.clear();
                    relisted_latest.clear();
                }
                watcher::Event::InitApply(o) => {
                    let c = change(&o);
                    let _ = tx.send(c.clone()); // no subscribers: nothing to do
                    relisted_latest.insert(c.key.clone(), c);
                    relisted.extend(row(&o));
                }
                watcher::Event::InitDone => {
                    let fresh = Index::of(relisted.drain(..));
                    *rows.write().unwrap() = fresh;
                    *latest.write().unwrap() = std::mem::take(&mut relisted_latest);
                    ready.send_replace(true);
                }
                watcher::Event::Apply(o) => {
                    let c = change(&o);
                    let created = latest.write().unwrap().insert(c.key.clone(), c.clone()).is_none();
                    let r = row(&o);
                    // Only a new object's row goes to open lists: a change to one
                    // on another page must not add it to this one.
                    let _ = tx.send(match &r {
                        Some(r) if created => with_rows(c, r),
                        _ => c,
                    });
                    if let Some(r) = r {
                        rows.write().unwrap().upsert(r);
                    }
                }
                watcher::Event::Delete(o) => {
                    let key = (o.namespace().unwrap_or_default(), o.name_any());
                    latest.write().unwrap().remove(&format!("{}/{}", key.0, key.1));
                    rows.write().unwrap().remove(&key);
                    let _ = tx.send(Change {
                        gone: true,
                        ..change(&o)
                    });
                }
            }
        }
    });
}

/// Starts both watches and waits until each has listed once.
pub async fn start(client: Client, env: Arc<Environment<'static>>) -> Result<Live, String> {
    let live = Live::new(4096);
    let (deployments_ready, mut d) = tokio::sync::watch::channel(false);
    let (terminals_ready, mut t) = tokio::sync::watch::channel(false);
    follow::<Deployment, _>(
        client.clone(),
        env.clone(),
        (live.changes.clone(), live.latest_deployments.clone()),
        live.deployments.clone(),
        DeploymentRow::of,
        deployments_ready,
    );
    follow::<Terminal, _>(
        client,
        env,
        (live.changes.clone(), live.latest_terminals.clone()),
        live.terminals.clone(),
        TerminalRow::of,
        terminals_ready,
    );
    d.wait_for(|r| *r)
        .await
        .map_err(|e| format!("deployments watch: {e}"))?;
    t.wait_for(|r| *r).await.map_err(|e| format!("terminals watch: {e}"))?;
    Ok(live)
}

/// What a page asks its stream for.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Watching {
    /// The objects it shows, `namespace/name` separated by commas: their
    /// current state comes first.
    #[serde(default)]
    pub keys: String,
}

/// The most objects one stream asks the current state of (a page of rows).
const MAX_KEYS: usize = 500;
/// [`Change::kind`] of Deployments.
const DEPLOYMENT: &str = <Deployment as Summary>::KIND;

/// One change as a Server-Sent Event, with its list row as the viewer sees
/// it (an admin's has the creator column).
fn event(c: &Change, admin: bool) -> Result<Bytes, actix_web::Error> {
    let mut json = serde_json::to_value(c).unwrap_or_default();
    if let (Some(rows), Some(o)) = (&c.rows, json.as_object_mut()) {
        let row = match (c.kind, admin) {
            // The Deployments list shows everyone the creator.
            (DEPLOYMENT, _) | (_, true) => &rows[1],
            _ => &rows[0],
        };
        o.insert("row".into(), row.as_str().into());
    }
    Ok(Bytes::from(format!("event: {}\ndata: {json}\n\n", c.kind)))
}

/// Whether the lists would show `c` to `s`: a Deployment where `s` may list
/// Deployments; a Terminal where `s` may list Terminals, if it is the
/// user's own or the user is an admin. Asked through the dashboard's kept
/// answers (so an answer is at most `readable::KEEP` old, and a namespace
/// first seen is asked about); an answer the API server did not give hides it.
async fn may_see(state: &State, s: &Session, admin: bool, c: &Change) -> bool {
    let namespace = c.key.split('/').next().unwrap_or_default();
    let (kind, own) = match c.kind {
        DEPLOYMENT => (readable::DEPLOYMENTS, true),
        _ => (readable::TERMINALS, admin || c.creator == s.user),
    };
    let asked = std::collections::BTreeSet::from([namespace.to_string()]);
    own && state.readable_for(s, kind, asked).await.is_ok_and(|r| r.has(namespace))
}

/// `GET /events?keys=…`: the session's stream: the current state of the
/// objects the page shows, then every change it may see.
pub async fn events(state: State, LoggedIn(s): LoggedIn, q: web::Query<Watching>) -> HttpResponse {
    let admin = state.is_admin(&s);
    // Subscribed before the current state is read: nothing falls in between.
    let rx = state.live.changes.subscribe();
    let keys: Vec<&str> = q.keys.split(',').filter(|k| !k.is_empty()).take(MAX_KEYS).collect();
    let mut now = vec![];
    for c in state.live.current(&keys, |_| true) {
        if may_see(&state, &s, admin, &c).await {
            now.push(event(&c, admin));
        }
    }
    let (seeing, session) = (state.clone(), s.clone());
    let changes = stream_of(rx).filter_map(move |c| {
        let (state, s) = (seeing.clone(), session.clone());
        async move { may_see(&state, &s, admin, &c).await.then(|| event(&c, admin)) }
    });
    // A comment every 15 s keeps proxies from closing an idle stream.
    let pings = futures::stream::unfold((), |_| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Ok::<_, actix_web::Error>(Bytes::from_static(b": ping\n\n")), ()))
    });
    let hello = futures::stream::once(async { Ok::<_, actix_web::Error>(Bytes::from_static(b": connected\n\n")) });
    let ends = state.ends.clone();
    let ended = async move { ends.ended(&s).await };
    let goodbye = futures::stream::once(async {
        Ok::<_, actix_web::Error>(Bytes::from_static(
            b"event: ended\ndata: {\"message\":\"Your session has ended; log in again.\"}\n\n",
        ))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .streaming(
            hello
                .chain(futures::stream::iter(now))
                .chain(futures::stream::select(changes, pings))
                .take_until(ended)
                .chain(goodbye),
        )
}

fn stream_of(rx: broadcast::Receiver<Change>) -> impl futures::Stream<Item = Change> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(c) => return Some((c, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_progress_and_only_a_stall_is_a_failure() {
        let conditions = |v: serde_json::Value| -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
            serde_json::from_value(v).unwrap()
        };
        let c = |type_: &str, status: &str, reason: &str| {
            serde_json::json!({"type": type_, "status": status, "reason": reason, "message": "",
                               "lastTransitionTime": "2026-12-06T10:00:00Z"})
        };
        assert_eq!(state_of(&[]), "progress", "nothing reported yet");
        let pending = conditions(serde_json::json!([
            c("Ready", "False", "PodCreating"),
            c("Reconciling", "True", "PodCreating")
        ]));
        assert_eq!(state_of(&pending), "progress");
        let ready = conditions(serde_json::json!([c("Ready", "True", "PodReady")]));
        assert_eq!(state_of(&ready), "ready");
        let stalled = conditions(serde_json::json!([
            c("Ready", "False", "NotAuthorized"),
            c("Stalled", "True", "NotAuthorized")
        ]));
        assert_eq!(state_of(&stalled), "stalled");
        let ended = conditions(serde_json::json!([
            c("Ready", "False", "Ended"),
            c("Reconciling", "True", "Ended")
        ]));
        assert_eq!(state_of(&ended), "ended");
    }

    fn change(kind: &'static str, key: &str, creator: &str) -> Change {
        Change {
            kind,
            key: key.into(),
            creator: creator.into(),
            ready: "True".into(),
            state: "ready",
            message: format!("{kind} {key}"),
            expires: String::new(),
            ended: None,
            rows: None,
            gone: false,
            parameters: None,
        }
    }

    #[test]
    fn a_stream_starts_with_the_current_state_of_what_the_page_shows_and_may_see() {
        let live = Live::new(1);
        for c in [
            change("deployment", "team-a/shop", "alice"),
            change("deployment", "team-b/db", "bob"),
        ] {
            live.latest_deployments.write().unwrap().insert(c.key.clone(), c);
        }
        let t = change("terminal", "team-a/shop", "alice");
        live.latest_terminals.write().unwrap().insert(t.key.clone(), t);
        let alices = |c: &Change| c.creator == "alice";
        let got: Vec<String> = live
            .current(&["team-b/db", "team-a/shop", "team-a/gone"], alices)
            .iter()
            .map(|c| c.message.clone())
            .collect();
        assert_eq!(
            got,
            ["deployment team-a/shop", "terminal team-a/shop"],
            "bob's is not alice's to see"
        );
        assert_eq!(live.current(&["team-b/db"], |_| true).len(), 1, "an admin sees it");
        assert!(live.current(&[], |_| true).is_empty());
    }
}
