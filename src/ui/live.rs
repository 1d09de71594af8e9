//! What the dashboard knows without asking: watches of all Deployments and
//! Terminals, whose events keep the list pages' rows (rendered once per
//! event, rebuilt on relist: [`super::rows`]), and a broadcast of every
//! change they see. Each browser's Server-Sent Events stream forwards the
//! changes of the objects it may see (its own; an admin's: all), until its
//! session ends (logout, expiry, revocation): then one `ended` event and the
//! stream closes.

use std::{
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
    logged_in::LoggedIn,
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
    /// The status message.
    pub message: String,
    /// When it ends (Terminals), RFC 3339, or empty.
    pub expires: String,
    /// Why it ended, once the operator has recorded that (Terminals).
    #[serde(skip)]
    pub ended: Option<crate::api::common::EndReason>,
}

/// A list's rows, shared by the watch that writes them and the pages that read them.
pub type Rows<R> = Arc<RwLock<Index<R>>>;

/// The list pages' rows and the change broadcast.
pub struct Live {
    /// Every Deployment's row.
    pub deployments: Rows<DeploymentRow>,
    /// Every Terminal's row.
    pub terminals: Rows<TerminalRow>,
    /// Changes to either.
    pub changes: broadcast::Sender<Change>,
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
}

impl Summary for Deployment {
    const KIND: &'static str = "deployment";
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
    }
    fn message(&self) -> String {
        self.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default()
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

fn change<K: Summary>(o: &K) -> Change {
    Change {
        kind: K::KIND,
        key: format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
        creator: crate::creator::creator_name(o),
        ready: ready_of(&o.conditions()),
        message: o.message(),
        expires: o.expires(),
        ended: o.ended(),
    }
}

/// Makes an object's row.
type RowOf<K, R> = fn(&Environment<'static>, &K) -> Result<R, RowError>;

/// Watches every object of kind K: each event updates its row in `rows` and
/// is broadcast; a relist replaces all rows at once. `ready` turns true after
/// the first list.
fn follow<K, R>(
    client: Client,
    env: Arc<Environment<'static>>,
    tx: broadcast::Sender<Change>,
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
        let mut relisted = vec![];
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { continue }; // the backoff retries
            match event {
                watcher::Event::Init => relisted.clear(),
                watcher::Event::InitApply(o) => {
                    let _ = tx.send(change(&o)); // no subscribers: nothing to do
                    relisted.extend(row(&o));
                }
                watcher::Event::InitDone => {
                    let fresh = Index::of(relisted.drain(..));
                    *rows.write().unwrap() = fresh;
                    ready.send_replace(true);
                }
                watcher::Event::Apply(o) => {
                    let _ = tx.send(change(&o));
                    if let Some(r) = row(&o) {
                        rows.write().unwrap().upsert(r);
                    }
                }
                watcher::Event::Delete(o) => {
                    let key = (o.namespace().unwrap_or_default(), o.name_any());
                    rows.write().unwrap().remove(&key);
                }
            }
        }
    });
}

/// Starts both watches and waits until each has listed once.
pub async fn start(client: Client, env: Arc<Environment<'static>>) -> Result<Live, String> {
    let (changes, _) = broadcast::channel(4096);
    let live = Live {
        deployments: Default::default(),
        terminals: Default::default(),
        changes,
    };
    let (deployments_ready, mut d) = tokio::sync::watch::channel(false);
    let (terminals_ready, mut t) = tokio::sync::watch::channel(false);
    follow::<Deployment, _>(
        client.clone(),
        env.clone(),
        live.changes.clone(),
        live.deployments.clone(),
        DeploymentRow::of,
        deployments_ready,
    );
    follow::<Terminal, _>(
        client,
        env,
        live.changes.clone(),
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

/// `GET /events`: the session's stream of changes.
pub async fn events(state: State, LoggedIn(s): LoggedIn) -> HttpResponse {
    let admin = state.is_admin(&s);
    let rx = state.live.changes.subscribe();
    let user = s.user.clone();
    let changes = stream_of(rx).filter_map(move |c| {
        let visible = admin || c.creator == user;
        futures::future::ready(visible.then(|| {
            let json = serde_json::to_string(&c).unwrap_or_default();
            Ok::<_, actix_web::Error>(Bytes::from(format!("event: {}\ndata: {json}\n\n", c.kind)))
        }))
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
