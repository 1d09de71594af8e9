//! What was read recently, kept for a short while (pure: the caller passes
//! the clock): a page read by many views of the same user reads the API
//! server once per [`Recent::ttl`] instead of once per view. Bounded: when
//! full, every entry is forgotten at once.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Values by key, each for `ttl` after it was read.
pub struct Recent<K, V> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    /// Keeps at most `max` values, each for `ttl`.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Recent {
            ttl,
            max,
            entries: Mutex::default(),
        }
    }

    /// How long a value is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The value of `key` if it was read less than `ttl` before `now`.
    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        let entries = self.entries.lock().unwrap();
        let (at, v) = entries.get(key)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| v.clone())
    }

    /// Records `value`, read at `now`.
    pub fn put(&self, key: K, value: V, now: Instant) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (now, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_last_their_ttl_and_a_full_cache_starts_over() {
        let t0 = Instant::now();
        let r: Recent<&str, u32> = Recent::new(Duration::from_secs(5), 2);
        r.put("alice", 1, t0);
        assert_eq!(r.get(&"alice", t0 + Duration::from_secs(4)), Some(1));
        assert_eq!(r.get(&"alice", t0 + Duration::from_secs(5)), None);
        assert_eq!(r.get(&"bob", t0), None);
        r.put("bob", 2, t0);
        r.put("alice", 3, t0); // a known key never clears the others
        assert_eq!((r.get(&"alice", t0), r.get(&"bob", t0)), (Some(3), Some(2)));
        r.put("carol", 4, t0);
        assert_eq!((r.get(&"alice", t0), r.get(&"carol", t0)), (None, Some(4)));
    }
}
