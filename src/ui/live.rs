//! Live status without reloading: one watch on Deployments feeds a broadcast
//! channel; each browser's Server-Sent Events stream forwards the changes of
//! the Deployments it may see (its own; an admin's: all).

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web::Bytes};
use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use serde::Serialize;
use tokio::sync::broadcast;

use super::server::{State, redirect};
use crate::api::Deployment;

/// One change, as the browser sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `namespace/name`.
    pub key: String,
    /// Who created it.
    #[serde(skip)]
    pub creator: String,
    /// The Ready condition's status, or empty.
    pub ready: String,
    /// The status message.
    pub message: String,
}

/// Starts the watch; changes go to the returned sender's subscribers.
pub fn start(client: Client) -> broadcast::Sender<Change> {
    let (tx, _) = broadcast::channel(1024);
    let sender = tx.clone();
    tokio::spawn(async move {
        let api: Api<Deployment> = Api::all(client);
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(item) = stream.next().await {
            let Ok(d) = item else { continue };
            let st = d.status.clone().unwrap_or_default();
            let change = Change {
                key: format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()),
                creator: crate::controller::creator_name(&d),
                ready: st
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone())
                    .unwrap_or_default(),
                message: st.message.unwrap_or_default(),
            };
            let _ = sender.send(change); // no subscribers: nothing to do
        }
    });
    tx
}

/// `GET /events`: the session's stream of Deployment changes.
pub async fn events(state: State, req: HttpRequest) -> HttpResponse {
    let Some(s) = state.session(&req).await else {
        return redirect("/login");
    };
    let admin = s.groups.iter().any(|g| state.cfg.admin_groups.contains(g));
    let rx = state.changes.subscribe();
    let user = s.user.clone();
    let changes = tokio_stream_from(rx).filter_map(move |c| {
        let visible = admin || c.creator == user;
        futures::future::ready(visible.then(|| {
            let json = serde_json::to_string(&c).unwrap_or_default();
            Ok::<_, actix_web::Error>(Bytes::from(format!("event: deployment\ndata: {json}\n\n")))
        }))
    });
    // A comment every 15 s keeps proxies from closing an idle stream.
    let pings = futures::stream::unfold((), |_| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Ok::<_, actix_web::Error>(Bytes::from_static(b": ping\n\n")), ()))
    });
    let hello = futures::stream::once(async { Ok::<_, actix_web::Error>(Bytes::from_static(b": connected\n\n")) });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .streaming(hello.chain(futures::stream::select(changes, pings)))
}

fn tokio_stream_from(rx: broadcast::Receiver<Change>) -> impl futures::Stream<Item = Change> {
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

/// The small script that applies changes to the page (no inline script: CSP).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript")
        .body(include_str!("../../ui/static/live.js"))
}
