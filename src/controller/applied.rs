//! What a controller last wrote for each of its objects (by UID), so a pass
//! started by something other than a change to the object itself — a
//! child's or a pod's event, a namespace, a renewal timer — does not write
//! every child again. A record holds while the object's marks
//! ([`super::trigger::children_marks`]) are the same, its token is not due and it
//! is younger than [`RESYNC`]; then everything is applied again, repairing
//! drift nobody reported.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;

/// Children are applied again at least this often.
pub const RESYNC: Duration = Duration::from_secs(600);

/// One object's record: what it was applied for, and what that gave.
#[derive(Clone)]
struct Entry<T> {
    marks: Option<u64>,
    renew_at: Option<Timestamp>,
    at: Instant,
    value: T,
}

/// The records of one controller.
pub struct Records<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
    resync: Duration,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records::every(RESYNC)
    }
}

impl<T> Records<T> {
    /// Records that hold for at most `resync`.
    pub fn every(resync: Duration) -> Self {
        Records {
            entries: Mutex::default(),
            resync,
        }
    }
}

/// Whether a token Secret's token is not the one recorded (pure): someone
/// else wrote the Secret, so the next pass reads it again. `in_secret` is
/// when the Secret's token is due; `recorded` is [`Records::renew_at`]
/// (`None` without a record: the next pass reads the Secret anyway).
pub fn token_changed(in_secret: Option<Timestamp>, recorded: Option<Option<Timestamp>>) -> bool {
    recorded.is_some_and(|r| r != in_secret)
}

impl<T: Clone> Records<T> {
    /// What was recorded for `uid`, if it still holds for an object with
    /// `marks` at `now`.
    pub fn holding(&self, uid: &str, marks: Option<u64>, now: Timestamp) -> Option<T> {
        let entries = self.entries.lock().unwrap();
        let e = entries.get(uid)?;
        let due = e.renew_at.is_some_and(|at| at <= now);
        (e.marks == marks && !due && e.at.elapsed() < self.resync).then(|| e.value.clone())
    }

    /// What was recorded for `uid` for an object with `marks`, whatever its
    /// age, and whether it is older than the resync (a pass then checks
    /// the children for drift, and [`Records::renew`]s it or applies again).
    pub fn recorded(&self, uid: &str, marks: Option<u64>) -> Option<(T, bool)> {
        let entries = self.entries.lock().unwrap();
        let e = entries.get(uid)?;
        (e.marks == marks).then(|| (e.value.clone(), e.at.elapsed() >= self.resync))
    }

    /// Starts `uid`'s record's resync period over (its children were found
    /// as applied).
    pub fn renew(&self, uid: &str) {
        if let Some(e) = self.entries.lock().unwrap().get_mut(uid) {
            e.at = Instant::now();
        }
    }

    /// Records that `uid`'s children were applied for `marks`, with a token
    /// due at `renew_at` (if it has one).
    pub fn put(&self, uid: &str, marks: Option<u64>, renew_at: Option<Timestamp>, value: T) {
        let entry = Entry {
            marks,
            renew_at,
            at: Instant::now(),
            value,
        };
        self.entries.lock().unwrap().insert(uid.to_string(), entry);
    }

    /// When the token recorded for `uid` is due (`Some(None)`: it has none),
    /// if there is a record.
    pub fn renew_at(&self, uid: &str) -> Option<Option<Timestamp>> {
        self.entries.lock().unwrap().get(uid).map(|e| e.renew_at)
    }

    /// Forgets `uid` (its object is being deleted, or a pass failed halfway).
    pub fn forget(&self, uid: &str) {
        self.entries.lock().unwrap().remove(uid);
    }

    /// How many objects have a record.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Whether no object has a record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    #[test]
    fn a_record_holds_for_the_same_marks_until_its_token_is_due() {
        let r: Records<&str> = Records::default();
        let now = Timestamp::now();
        let renew = now + SignedDuration::from_secs(60);
        assert_eq!(r.holding("u", Some(1), now), None, "nothing recorded yet");
        r.put("u", Some(1), Some(renew), "applied");
        assert_eq!(r.holding("u", Some(1), now), Some("applied"));
        assert_eq!(r.holding("u", Some(2), now), None, "the object changed");
        assert_eq!(r.holding("other", Some(1), now), None);
        assert_eq!(r.holding("u", Some(1), renew), None, "the token is due");
        r.forget("u");
        assert_eq!(r.holding("u", Some(1), now), None);
        assert!(r.is_empty());
    }

    #[test]
    fn without_a_token_only_the_marks_and_the_age_count() {
        let r: Records<()> = Records {
            entries: Mutex::default(),
            resync: Duration::ZERO,
        };
        r.put("u", Some(1), None, ());
        assert_eq!(r.holding("u", Some(1), Timestamp::now()), None, "older than the resync");
        let r: Records<()> = Records::default();
        r.put("u", None, None, ());
        assert_eq!(r.holding("u", None, Timestamp::MAX), Some(()));
    }
    #[test]
    fn an_old_record_is_still_found_for_a_drift_check_and_renewed() {
        let r: Records<&str> = Records {
            entries: Mutex::default(),
            resync: Duration::ZERO,
        };
        assert_eq!(r.recorded("u", Some(1)), None);
        r.put("u", Some(1), None, "applied");
        assert_eq!(r.holding("u", Some(1), Timestamp::now()), None);
        assert_eq!(
            r.recorded("u", Some(1)),
            Some(("applied", true)),
            "older than the resync"
        );
        assert_eq!(r.recorded("u", Some(2)), None, "the object changed");
        let r: Records<&str> = Records::default();
        r.put("u", Some(1), None, "applied");
        assert_eq!(r.recorded("u", Some(1)), Some(("applied", false)));
        r.renew("u");
        assert_eq!(r.holding("u", Some(1), Timestamp::now()), Some("applied"));
    }

    #[test]
    fn a_token_other_than_the_recorded_one_is_read_again() {
        let (at, other): (Timestamp, Timestamp) = (
            "2026-12-06T10:00:00Z".parse().unwrap(),
            "2020-01-01T00:00:00Z".parse().unwrap(),
        );
        assert!(!token_changed(Some(at), Some(Some(at))), "the operator's own write");
        assert!(token_changed(Some(other), Some(Some(at))));
        assert!(token_changed(None, Some(Some(at))), "its marks removed");
        assert!(!token_changed(Some(other), None), "no record: the next pass reads it");
    }
}
