//! When a session ends, its open streams end too: one cancellation signal per
//! SessionClaim, fired on logout and when the dashboard's watch sees the
//! claim ended (being deleted, an end reason, gone after a relist). Live
//! updates (`/events`) and terminal WebSockets wait on it, and on the
//! cookie's own expiry.
//!
//! ```text
//!  logout ──────────────┐
//!  watch: Delete/ended ─┼─► end(claim) ──► token cancelled ──► streams close
//!  relist: not listed ──┘
//! ```

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use kube::{
    ResourceExt,
    runtime::{reflector::Store, watcher::Event},
};
use tokio_util::sync::CancellationToken;

use super::cookies::Session;
use crate::api::SessionClaim;

/// How long an ended claim is remembered, so a stream opened just after the
/// end (its cookie checked a moment before) still ends at once.
const REMEMBER_ENDED: Duration = Duration::from_secs(600);

enum Entry {
    /// Streams wait on this token; `since` is when it was first handed out.
    Open { token: CancellationToken, since: Instant },
    /// The session ended at this moment.
    Ended(Instant),
}

/// The end signals of the sessions that have open streams.
#[derive(Default)]
pub struct SessionEnds {
    entries: Mutex<HashMap<String, Entry>>,
    /// When the watch started its current (re)list, if it is in one.
    listing_since: Mutex<Option<Instant>>,
}

impl SessionEnds {
    /// The signal that fires when the session of `claim` ends (already
    /// cancelled when it has ended).
    pub fn token(&self, claim: &str) -> CancellationToken {
        let mut entries = self.entries.lock().unwrap();
        match entries.entry(claim.to_string()).or_insert_with(|| Entry::Open {
            token: CancellationToken::new(),
            since: Instant::now(),
        }) {
            Entry::Open { token, .. } => token.clone(),
            Entry::Ended(_) => {
                let t = CancellationToken::new();
                t.cancel();
                t
            }
        }
    }

    /// Ends the session of `claim`: every stream waiting on it closes.
    pub fn end(&self, claim: &str) {
        let mut entries = self.entries.lock().unwrap();
        let now = Instant::now();
        entries.retain(|_, e| !matches!(e, Entry::Ended(at) if now.duration_since(*at) > REMEMBER_ENDED));
        if let Some(Entry::Open { token, .. }) = entries.insert(claim.to_string(), Entry::Ended(now)) {
            token.cancel();
            tracing::info!(claim, "session ended: its streams are closed");
        }
    }

    /// Resolves when `s` ends: its claim's signal fires or its cookie expires.
    pub async fn ended(&self, s: &Session) {
        let token = self.token(&s.claim);
        let left = s.exp - k8s_openapi::jiff::Timestamp::now().as_second();
        let expiry = tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap_or(0)));
        tokio::select! {
            _ = token.cancelled() => {}
            _ = expiry => {}
        }
    }

    /// Follows the SessionClaim watch (after the reflector has applied the
    /// event to `store`).
    pub fn observe(&self, event: &Event<SessionClaim>, store: &Store<SessionClaim>) {
        match event {
            Event::Apply(c) | Event::InitApply(c) if has_ended(c) => self.end(&c.name_any()),
            Event::Delete(c) => self.end(&c.name_any()),
            Event::Init => *self.listing_since.lock().unwrap() = Some(Instant::now()),
            Event::InitDone => {
                // Claims deleted while the watch was down are simply not listed.
                let Some(since) = self.listing_since.lock().unwrap().take() else {
                    return;
                };
                let gone: Vec<String> = {
                    let entries = self.entries.lock().unwrap();
                    let listed: std::collections::HashSet<String> =
                        store.state().iter().map(|c| c.name_any()).collect();
                    entries
                        .iter()
                        .filter(|(name, e)| {
                            matches!(e, Entry::Open { since: s, .. } if *s < since) && !listed.contains(*name)
                        })
                        .map(|(name, _)| name.clone())
                        .collect()
                };
                for name in gone {
                    self.end(&name);
                }
            }
            Event::Apply(_) | Event::InitApply(_) => {}
        }
    }
}

/// Whether a claim no longer backs a session: being deleted, or ended.
fn has_ended(c: &SessionClaim) -> bool {
    c.metadata.deletion_timestamp.is_some() || c.status.as_ref().is_some_and(|s| s.end_reason.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, deleting: bool) -> SessionClaim {
        let mut c: SessionClaim = serde_json::from_value(serde_json::json!({
            "apiVersion": "portico.dev/v1alpha1", "kind": "SessionClaim",
            "metadata": {"name": name, "namespace": "s"}, "spec": {"profile": "p"},
        }))
        .unwrap();
        if deleting {
            c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        }
        c
    }

    #[test]
    fn logout_deletion_and_a_relist_without_the_claim_fire_the_signal() {
        let ends = SessionEnds::default();
        let (store, _writer) = kube::runtime::reflector::store::<SessionClaim>();
        let a = ends.token("a");
        ends.end("a");
        assert!(a.is_cancelled(), "logout");
        assert!(
            ends.token("a").is_cancelled(),
            "a stream opened after the end ends at once"
        );

        let b = ends.token("b");
        ends.observe(&Event::Apply(claim("b", false)), &store);
        assert!(!b.is_cancelled(), "a change is not an end");
        ends.observe(&Event::Apply(claim("b", true)), &store);
        assert!(b.is_cancelled(), "being deleted");

        let c = ends.token("c");
        ends.observe(&Event::Delete(claim("c", false)), &store);
        assert!(c.is_cancelled(), "deleted");

        let d = ends.token("d");
        ends.observe(&Event::Init, &store);
        let e = ends.token("e"); // handed out during the relist: not judged by it
        ends.observe(&Event::InitDone, &store);
        assert!(d.is_cancelled(), "not listed after a relist: deleted meanwhile");
        assert!(!e.is_cancelled());
    }
}
