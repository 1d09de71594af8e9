//! Recent answers, per cluster and user, so one user creating many
//! Terminals does not repeat identical questions: allowed access questions,
//! the rules a user holds in a namespace, and the rules of a role. Callers
//! asking the same thing at once wait on one request in flight.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::api::rbac::v1::PolicyRule;
use tokio::sync::OnceCell;

use super::{Access, rules::HeldRules};
use crate::creator::Creator;

/// Positive SubjectAccessReview answers are reused for this long: one user
/// creating many Terminals does not repeat hundreds of identical reviews.
/// A permission revoked within this window may still be honoured once.
pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(10);
const ACCESS_CACHE_MAX: usize = 100_000;

/// Recent answers, per cluster and user.
#[derive(Default)]
pub struct AccessCache {
    allowed: Mutex<HashMap<String, Instant>>,
    /// What a user holds in a namespace.
    pub(super) held: Flights<Arc<HeldRules>>,
    /// The rules of a Role or ClusterRole (`None`: it does not exist).
    pub(super) roles: Flights<Option<Vec<PolicyRule>>>,
}

/// Answers by key, each fetched once per [`ACCESS_CACHE_TTL`] however many
/// ask at once; a failed fetch is retried by the next caller.
pub(super) struct Flights<V> {
    map: Mutex<HashMap<String, Flight<V>>>,
}

/// When an answer was first asked for, and the answer (or its fetch in flight).
type Flight<V> = (Instant, Arc<OnceCell<V>>);

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Flights<V> {
    /// The answer for `key`: a recent one, the one in flight, or `fetch`'s.
    pub(super) async fn get<E, F, Fut>(&self, key: String, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_within(key, ACCESS_CACHE_TTL, fetch).await
    }

    /// As [`Flights::get`], reusing only an answer asked for less than `max_age` ago.
    pub(super) async fn get_within<E, F, Fut>(&self, key: String, max_age: Duration, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut m = self.map.lock().unwrap();
            if m.len() >= ACCESS_CACHE_MAX {
                m.retain(|_, (t, _)| t.elapsed() < ACCESS_CACHE_TTL);
            }
            match m.get(&key) {
                Some((t, cell)) if t.elapsed() < max_age.min(ACCESS_CACHE_TTL) => cell.clone(),
                _ => {
                    let cell = Arc::new(OnceCell::new());
                    m.insert(key, (Instant::now(), cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_try_init(fetch).await.cloned()
    }
}

impl AccessCache {
    pub(super) fn user_key(cluster: &str, creator: &Creator, what: &str) -> String {
        format!(
            "{cluster}\u{0}{}\u{0}{}\u{0}{what}",
            creator.user,
            creator.groups.join(",")
        )
    }

    pub(super) fn key(cluster: &str, creator: &Creator, access: &Access) -> String {
        Self::user_key(cluster, creator, &format!("{access:?}"))
    }

    pub(super) fn get(&self, key: &str) -> bool {
        self.allowed
            .lock()
            .unwrap()
            .get(key)
            .is_some_and(|t| t.elapsed() < ACCESS_CACHE_TTL)
    }

    pub(super) fn put(&self, key: String) {
        let mut m = self.allowed.lock().unwrap();
        if m.len() >= ACCESS_CACHE_MAX {
            m.retain(|_, t| t.elapsed() < ACCESS_CACHE_TTL);
            if m.len() >= ACCESS_CACHE_MAX {
                m.clear();
            }
        }
        m.insert(key, Instant::now());
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::access::resource;

    #[test]
    fn allowed_answers_are_remembered_per_cluster_user_and_question() {
        let cache = AccessCache::default();
        let alice = Creator {
            user: "alice".into(),
            groups: vec!["dev".into()],
        };
        let bob = Creator {
            user: "bob".into(),
            groups: vec!["dev".into()],
        };
        let get_pods = resource("a", "get", "", "pods", "");
        let key = AccessCache::key("this cluster", &alice, &get_pods);
        assert!(!cache.get(&key));
        cache.put(key.clone());
        assert!(cache.get(&key));
        assert!(!cache.get(&AccessCache::key("this cluster", &bob, &get_pods)));
        assert!(!cache.get(&AccessCache::key("other", &alice, &get_pods)));
        assert!(!cache.get(&AccessCache::key(
            "this cluster",
            &alice,
            &resource("b", "get", "", "pods", "")
        )));
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_fetch_and_a_failure_is_retried() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let flights: Flights<u32> = Flights::default();
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<u32, ()>(7)
        };
        let answers = futures::future::join_all((0..20).map(|_| flights.get("k".into(), fetch))).await;
        assert!(answers.iter().all(|a| *a == Ok(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for twenty askers");
        assert_eq!(flights.get("k".into(), fetch).await, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a recent answer is reused");

        assert_eq!(
            flights
                .get_within("k".into(), Duration::ZERO, || async { Ok::<u32, ()>(8) })
                .await,
            Ok(8),
            "a fresh answer when asked for one"
        );
        assert_eq!(flights.get("k".into(), fetch).await, Ok(8), "and it replaces the old");

        let failed: Result<u32, &str> = flights.get("e".into(), || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(flights.get("e".into(), || async { Ok::<u32, &str>(3) }).await, Ok(3));
    }
}
