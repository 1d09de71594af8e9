//! The terminal WebSocket: the browser's socket is proxied to the pod's
//! `attach` endpoint. The dashboard requests, as the user, a short-lived
//! token for the Terminal's attach service account (the operator lets the
//! creator, and only the creator, mint it) and attaches with that token alone —
//! not with its own identity. A pod in another cluster the configuration
//! names is reached the same way there: as the user, by impersonation with
//! the dashboard's identity in that cluster. Binary frames carry the terminal's bytes both
//! ways; text frames carry JSON: `{"resize":{"cols","rows"}}` from the browser,
//! `{"status"}` or `{"error"}` to it. The socket closes when the session ends
//! (logout, expiry, revocation), whatever the terminal is doing; and when the
//! Terminal ends (the watch sees its recorded end) or the shell's side closes,
//! after `{"ended", "again"}`: why, and whether connecting again can help.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{AttachParams, AttachedProcess, TerminalSize},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    cookies::Session,
    state::{State, UiState, why},
};
use crate::api::{Terminal, common::EndReason};

/// The attach WebSocket of a Terminal's page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/terminals/{ns}/{name}/attach", web::get().to(attach));
}

/// How long an attach token lives; the connection outlives it once made.
const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// Why a terminal cannot be attached, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The Terminal is gone or not the user's to see.
    #[error("{0}")]
    NoTerminal(String),
    /// The pod is not running (yet).
    #[error("The terminal pod is not running: {0}. This page connects when it is ready.")]
    NotRunning(String),
    /// The pod runs in a cluster the dashboard does not know.
    #[error("The dashboard cannot attach to this terminal: {0}. Use kubectl attach with that cluster's credentials.")]
    Remote(String),
    /// The API server refused the attach token.
    #[error("No attach token for you: {0}")]
    Token(String),
    /// The API server could not reach the container.
    #[error("The terminal's container cannot be reached: {0}")]
    Unreachable(String),
}

/// `GET /terminals/{ns}/{name}/attach`: upgrades to a WebSocket (same origin only).
pub async fn attach(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let Some(s) = state.session(&req).await else {
        return Ok(HttpResponse::Unauthorized().body("Log in first."));
    };
    if !state.same_origin(&req) {
        return Ok(HttpResponse::Forbidden().body("Refused: the WebSocket was opened from another origin."));
    }
    let (ns, name) = path.into_inner();
    let (response, ws, incoming) = actix_ws::handle(&req, body)?;
    let state = state.into_inner();
    actix_web::rt::spawn(async move { proxy(&state, &s, &ns, &name, ws, incoming).await });
    Ok(response)
}

async fn connect(state: &UiState, s: &Session, ns: &str, name: &str) -> Result<AttachedProcess, AttachError> {
    let user = state.as_user(s).map_err(|e| AttachError::NoTerminal(why(&e)))?;
    let t = Api::<Terminal>::namespaced(user.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| AttachError::NoTerminal(format!("The API server refused to show it: {}", why(&e))))?
        .ok_or_else(|| AttachError::NoTerminal(format!("There is no terminal {ns}/{name}; it may have ended.")))?;
    // In another cluster the dashboard acts as the user there as here: by
    // impersonation, with its own identity in that cluster.
    let (user, base) = match state.clusters.host_of(&t) {
        Ok(None) => (user, state.base_config()),
        Ok(Some(k)) => (
            k.identity.client(s).map_err(|e| {
                AttachError::Remote(format!(
                    "no client for cluster {} could be made: {}",
                    k.config.title,
                    why(&e)
                ))
            })?,
            k.identity.base(),
        ),
        Err(e) => return Err(AttachError::Remote(e.to_string())),
    };
    let st = t.status.clone().unwrap_or_default();
    let message = st.message.clone().unwrap_or_else(|| "it is being set up".into());
    let (Some(pod), Some(host_ns), Some(sa), "True") = (
        st.pod_name,
        st.host_namespace,
        st.attach_service_account_name,
        super::live::ready_of(&st.conditions).as_str(),
    ) else {
        return Err(AttachError::NotRunning(message));
    };
    let token = crate::tokens::request(&user, &host_ns, &sa, TOKEN_LIFETIME, None)
        .await
        .map_err(|e| AttachError::Token(e.to_string()))?;
    let mut config = base.clone();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.token.into()),
        ..Default::default()
    };
    let client = Client::try_from(config).map_err(|e| AttachError::Token(e.to_string()))?;
    let params = AttachParams::interactive_tty().container("terminal");
    Api::<Pod>::namespaced(client, &host_ns)
        .attach(&pod, &params)
        .await
        .map_err(|e| {
            let mut why = why(&e);
            if why.contains("does not have a host assigned") {
                why.push_str(" (the pod has not been scheduled to a node, so no container runs yet)");
            }
            AttachError::Unreachable(why)
        })
}

async fn proxy(
    state: &UiState,
    s: &Session,
    ns: &str,
    name: &str,
    mut ws: actix_ws::Session,
    mut incoming: actix_ws::MessageStream,
) {
    // Subscribed before attaching, so that an end recorded meanwhile is seen.
    let changes = state.live.changes.subscribe();
    let mut process = match connect(state, s, ns, name).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(user = %s.user, terminal = %format!("{ns}/{name}"), reason = %e, "attach refused");
            let close = CloseReason {
                code: CloseCode::Normal,
                description: Some("not attached".into()),
            };
            return last_word(ws, serde_json::json!({"error": e.to_string()}), Some(close)).await;
        }
    };
    tracing::info!(user = %s.user, terminal = %format!("{ns}/{name}"), "attached");
    let _ = ws.text(serde_json::json!({"status": "attached"}).to_string()).await;
    let (Some(mut stdin), Some(mut stdout), Some(mut size)) =
        (process.stdin(), process.stdout(), process.terminal_size())
    else {
        let _ = ws.close(None).await;
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    let ended = state.ends.ended(s);
    futures::pin_mut!(ended);
    let terminal_ended = terminal_ended(changes, format!("{ns}/{name}"));
    futures::pin_mut!(terminal_ended);
    let closed_by = loop {
        tokio::select! {
            reason = &mut terminal_ended => {
                process.abort();
                tracing::info!(user = %s.user, terminal = %format!("{ns}/{name}"), reason = ?reason, "detached: the terminal ended");
                return last_word(ws, Ended::by(reason), None).await;
            }
            _ = &mut ended => {
                process.abort();
                tracing::info!(user = %s.user, terminal = %format!("{ns}/{name}"), "detached: the session ended");
                let word = serde_json::json!({"error": "Your session has ended, so the terminal was disconnected; log in again to reconnect."});
                let close = CloseReason { code: CloseCode::Policy, description: Some("session ended".into()) };
                return last_word(ws, word, Some(close)).await;
            }
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    if stdin.write_all(&bytes).await.is_err() { break Side::Shell; }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some((cols, rows)) = resize(&text)
                        && size.send(TerminalSize { width: cols, height: rows }).await.is_err()
                    {
                        break Side::Shell;
                    }
                }
                Some(Ok(Message::Ping(p))) => { let _ = ws.pong(&p).await; }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Side::Browser,
                Some(Ok(_)) => {}
            },
            n = stdout.read(&mut buf) => match n {
                Ok(0) | Err(_) => break Side::Shell,
                Ok(n) => if ws.binary(buf[..n].to_vec()).await.is_err() { break Side::Browser; },
            },
        }
    };
    process.abort();
    tracing::info!(user = %s.user, terminal = %format!("{ns}/{name}"), by = ?closed_by, "detached");
    if closed_by == Side::Browser {
        return;
    }
    // The shell's side ended: tell the page why, from the Terminal as the
    // user may read it (ended by expiry or deletion, or still there).
    let terminal = match state.as_user(s) {
        Ok(user) => Api::<Terminal>::namespaced(user, ns)
            .get_opt(name)
            .await
            .map_err(|e| why(&e)),
        Err(e) => Err(why(&e)),
    };
    last_word(ws, why_ended(terminal.as_ref().map(Option::as_ref)), None).await;
}

/// Sends the page the connection's last word (JSON) and closes the socket.
async fn last_word(mut ws: actix_ws::Session, word: impl serde::Serialize, close: Option<CloseReason>) {
    let _ = ws.text(serde_json::to_string(&word).unwrap_or_default()).await;
    let _ = ws.close(close).await;
}

/// Resolves when the watch sees the operator record the end of Terminal
/// `key` (its status's `endReason`: expired, or being deleted) — before its
/// pod goes. Never resolves if the watch's broadcast closes.
async fn terminal_ended(mut changes: tokio::sync::broadcast::Receiver<super::live::Change>, key: String) -> EndReason {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match changes.recv().await {
            Ok(c) if c.kind == "terminal" && c.key == key => {
                if let Some(reason) = c.ended {
                    return reason;
                }
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Which side of the proxy ended an attached shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The browser's socket closed (the page went away, or the network dropped).
    Browser,
    /// The pod's attach stream ended (the Terminal ended, the shell exited, the pod went).
    Shell,
}

/// What the page is told when the shell's side ends: `{"ended", "again"}`.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
struct Ended {
    /// Why, in words.
    ended: String,
    /// Whether connecting again can give a shell (the Terminal still runs).
    again: bool,
}

impl Ended {
    /// The Terminal is over, `why`: connecting again cannot help.
    fn over(why: &str) -> Ended {
        Ended {
            ended: format!("This terminal has ended: {why}."),
            again: false,
        }
    }

    /// The Terminal ended for `reason`.
    fn by(reason: EndReason) -> Ended {
        Ended::over(reason.describe())
    }
}

/// Why an attached shell ended, from the Terminal as read after the end
/// (`Ok(None)`: it is gone; `Err`: it could not be read).
fn why_ended(terminal: Result<Option<&Terminal>, &String>) -> Ended {
    match terminal {
        Ok(None) => Ended::over("it no longer exists (it was deleted, or it expired)"),
        Ok(Some(t)) => match t.status.as_ref().and_then(|s| s.end_reason) {
            Some(reason) => Ended::by(reason),
            None if t.metadata.deletion_timestamp.is_some() => Ended::over("it is being deleted"),
            None => Ended {
                ended: "The shell ended (it exited, or its container restarted). Connect again for a new one.".into(),
                again: true,
            },
        },
        Err(e) => Ended {
            ended: format!("The shell's connection ended, and the terminal could not be read: {e}."),
            again: true,
        },
    }
}

/// A resize request from the browser: `{"resize":{"cols":80,"rows":24}}`.
fn resize(text: &str) -> Option<(u16, u16)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let r = v.get("resize")?;
    let cols = u16::try_from(r.get("cols")?.as_u64()?).ok()?;
    let rows = u16::try_from(r.get("rows")?.as_u64()?).ok()?;
    (cols > 0 && rows > 0).then_some((cols, rows))
}

#[cfg(test)]
mod tests {
    use super::{Ended, why_ended};
    use crate::api::{Terminal, common::EndReason};

    fn terminal(status: serde_json::Value, deleting: bool) -> Terminal {
        let mut t: Terminal = serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "Terminal",
            "metadata": {"name": "t", "namespace": "team-a"},
            "spec": {"host": {"namespace": "team-a", "pod": {"image": "toolbox"}},
                     "target": {"namespace": "team-a"}},
            "status": status,
        }))
        .unwrap();
        if deleting {
            t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        }
        t
    }

    #[test]
    fn the_page_is_told_why_the_shell_ended_and_whether_to_connect_again() {
        let expired = terminal(serde_json::json!({"endReason": "MaxLifetime"}), true);
        assert_eq!(
            why_ended(Ok(Some(&expired))),
            Ended {
                ended: format!("This terminal has ended: {}.", EndReason::MaxLifetime.describe()),
                again: false
            }
        );
        let idle = terminal(serde_json::json!({"endReason": "IdleTimeout"}), false);
        assert!(
            why_ended(Ok(Some(&idle)))
                .ended
                .contains("no heartbeat arrived within the idle timeout")
        );
        let deleting = terminal(serde_json::json!({}), true);
        assert_eq!(
            why_ended(Ok(Some(&deleting))).ended,
            "This terminal has ended: it is being deleted."
        );
        let gone = why_ended(Ok(None));
        assert!(!gone.again && gone.ended.contains("no longer exists"), "{gone:?}");
        let running = why_ended(Ok(Some(&terminal(serde_json::json!({}), false))));
        assert!(running.again && running.ended.contains("Connect again"), "{running:?}");
        let unreadable = why_ended(Err(&"forbidden".to_string()));
        assert!(
            unreadable.again && unreadable.ended.contains("forbidden"),
            "{unreadable:?}"
        );
    }

    #[tokio::test]
    async fn the_attach_ends_on_the_recorded_end_of_its_own_terminal_only() {
        use crate::ui::live::Change;
        let change = |kind: &'static str, key: &str, ended| Change {
            kind,
            key: key.into(),
            creator: "alice".into(),
            ready: "True".into(),
            state: "ready",
            message: String::new(),
            expires: String::new(),
            ended,
            rows: None,
            gone: false,
            parameters: None,
        };
        let (tx, rx) = tokio::sync::broadcast::channel(8);
        let ends = tokio::spawn(super::terminal_ended(rx, "team-a/t".into()));
        tx.send(change("terminal", "team-a/other", Some(EndReason::Deleted)))
            .unwrap();
        tx.send(change("deployment", "team-a/t", Some(EndReason::Deleted)))
            .unwrap();
        tx.send(change("terminal", "team-a/t", None)).unwrap();
        tx.send(change("terminal", "team-a/t", Some(EndReason::IdleTimeout)))
            .unwrap();
        // Not `Deleted`: another Terminal's end, a Deployment's, and a change without an end are skipped.
        assert_eq!(ends.await.unwrap(), EndReason::IdleTimeout);
    }

    #[test]
    fn resize_messages_are_read_and_nonsense_ignored() {
        assert_eq!(super::resize(r#"{"resize":{"cols":120,"rows":40}}"#), Some((120, 40)));
        assert_eq!(super::resize(r#"{"resize":{"cols":0,"rows":40}}"#), None);
        assert_eq!(super::resize(r#"{"resize":{"cols":99999999,"rows":40}}"#), None);
        assert_eq!(super::resize("ls -l"), None);
    }
}
