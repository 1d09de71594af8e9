//! Recently allowed access questions, per cluster and user, so one user
//! creating many Terminals does not repeat hundreds of identical reviews.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::Access;
use crate::creator::Creator;

/// Positive SubjectAccessReview answers are reused for this long: one user
/// creating many Terminals does not repeat hundreds of identical reviews.
/// A permission revoked within this window may still be honoured once.
pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(10);
const ACCESS_CACHE_MAX: usize = 100_000;

/// Recently allowed access questions, per cluster and user.
#[derive(Default)]
pub struct AccessCache {
    allowed: Mutex<HashMap<String, Instant>>,
}

impl AccessCache {
    pub(super) fn key(cluster: &str, creator: &Creator, access: &Access) -> String {
        format!(
            "{cluster}\u{0}{}\u{0}{}\u{0}{access:?}",
            creator.user,
            creator.groups.join(",")
        )
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
}
