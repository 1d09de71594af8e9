//! The objects whose finalizer this operator removed after their cleanup.
//! A deletion's watch events trail its writes: a pass queued meanwhile
//! still sees the object being deleted with the finalizer on it, and would
//! clean up again (reads and deletes of children already gone) and then
//! fail to remove a finalizer from an object the API server has deleted.
//! Such a pass has nothing to do. Entries are dropped after [`KEEP`]:
//! by then the watch has delivered the deletion.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a released object is remembered.
pub const KEEP: Duration = Duration::from_secs(600);

/// Per object UID: when its finalizer was removed.
#[derive(Default)]
pub struct Released {
    entries: Mutex<HashMap<String, Instant>>,
}

impl Released {
    /// Records that `uid`'s cleanup is done and its finalizer removed;
    /// forgets entries older than [`KEEP`].
    pub fn release(&self, uid: &str) {
        self.release_at(uid, Instant::now());
    }

    fn release_at(&self, uid: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|_, at| now.duration_since(*at) < KEEP);
        entries.insert(uid.to_string(), now);
    }

    /// Whether `uid`'s finalizer was removed (within [`KEEP`]).
    pub fn released(&self, uid: &str) -> bool {
        self.entries.lock().unwrap().contains_key(uid)
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_object_is_remembered_until_its_deletion_has_long_been_seen() {
        let r = Released::default();
        assert!(!r.released("a"));
        let start = Instant::now();
        r.release_at("a", start);
        assert!(r.released("a"));
        assert!(!r.released("b"), "another object");
        // A later release forgets what is older than KEEP, and only that.
        r.release_at("b", start + KEEP / 2);
        assert_eq!(r.remembered(), 2);
        r.release_at("c", start + KEEP + Duration::from_secs(1));
        assert!(!r.released("a"));
        assert!(r.released("b") && r.released("c"));
        assert_eq!(r.remembered(), 2);
    }
}
