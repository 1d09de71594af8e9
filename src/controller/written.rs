//! The status each object was last given, and from which version of the
//! object: a pass that starts from a version the watch has not yet replaced
//! with the operator's own write (a pod's event arriving first) would
//! otherwise write the same status again. Only a pass from that same
//! version is spared; any newer version is compared as it is.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
};

/// Per object UID: the resourceVersion a pass started from and a hash of
/// the status it wrote.
#[derive(Default)]
pub struct Written {
    entries: Mutex<HashMap<String, (String, u64)>>,
}

/// What [`Written`] keeps of a status.
pub fn digest(status: &serde_json::Value) -> u64 {
    let mut h = DefaultHasher::new();
    status.to_string().hash(&mut h);
    h.finish()
}

impl Written {
    /// Whether a pass that started from version `rv` of object `uid` wrote `status` already.
    /// (`status` is its [`digest`].)
    pub fn already(&self, uid: &str, rv: &str, status: u64) -> bool {
        self.entries
            .lock()
            .unwrap()
            .get(uid)
            .is_some_and(|(seen, h)| seen == rv && *h == status)
    }

    /// Whether a pass that started from version `rv` of object `uid` wrote
    /// a status: the object is newer than `rv` since, whatever it holds.
    pub fn replaced(&self, uid: &str, rv: &str) -> bool {
        self.entries
            .lock()
            .unwrap()
            .get(uid)
            .is_some_and(|(seen, _)| seen == rv)
    }

    /// Records that a pass that started from version `rv` of `uid` wrote the
    /// status with [`digest`] `status`.
    pub fn wrote(&self, uid: &str, rv: &str, status: u64) {
        self.entries
            .lock()
            .unwrap()
            .insert(uid.to_string(), (rv.to_string(), status));
    }

    /// Forgets `uid` (it is gone).
    pub fn forget(&self, uid: &str) {
        self.entries.lock().unwrap().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_same_status_from_the_same_version_counts_as_written() {
        let w = Written::default();
        let ready = digest(&json!({"phase": "Ready"}));
        assert!(!w.already("u", "5", ready), "nothing written yet");
        w.wrote("u", "5", ready);
        assert!(w.already("u", "5", ready));
        assert!(
            !w.already("u", "5", digest(&json!({"phase": "Stalled"}))),
            "another status"
        );
        assert!(
            !w.already("u", "6", ready),
            "a newer version is compared as it is (someone may have changed it)"
        );
        assert!(!w.already("v", "5", ready), "another object");
        assert!(w.replaced("u", "5"), "version 5 was written over");
        assert!(!w.replaced("u", "6"), "a newer version was not");
        assert!(!w.replaced("v", "5"), "another object");
        w.forget("u");
        assert!(!w.already("u", "5", ready));
    }
}
