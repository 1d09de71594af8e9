//! What each pass means for the delivery metrics
//! ([`crate::metrics::delivery`]): a change of the spec (a new generation)
//! is counted once, when it first turns Ready or Stalled, with its lead
//! time when the change's time is known; a stall is counted by reason, and
//! Ready after a stall gives the time to restore. The transitions come from
//! the status before the pass and the phase it reports (pure, in
//! [`transition`]); the generations seen are kept per Deployment in memory
//! ([`Changes`], pure but for the clock the caller passes).

use std::{collections::HashMap, sync::Mutex};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Condition, jiff::Timestamp};

use crate::{
    controller::usage::seconds,
    kstatus::{Phase, Reason},
};

/// What a pass changed of Ready and Stalled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// Neither turned True.
    None,
    /// Ready turned True; `stalled_since`: when the Stalled condition
    /// before the pass turned True, if it was.
    Ready {
        /// When it stalled, if it was Stalled before this pass.
        stalled_since: Option<Timestamp>,
    },
    /// Stalled turned True, for this reason.
    Stalled(Reason),
}

/// The transition from the conditions `before` a pass to its `phase`
/// (pure). `older`: the status before the pass described an older
/// generation, so this pass is the first to report the current one — a
/// change that stays Ready (or Stalled) throughout is still a change that
/// ended so. A restarted operator finds the status describing the current
/// generation, and counts nothing again.
pub fn transition(before: &[Condition], older: bool, phase: &Phase) -> Transition {
    let true_one = |t: &str| before.iter().find(|c| c.type_ == t && c.status == "True");
    match phase {
        Phase::Ready { .. } if older || true_one("Ready").is_none() => Transition::Ready {
            stalled_since: true_one("Stalled").map(|c| c.last_transition_time.0),
        },
        Phase::Stalled { reason, .. } if older || true_one("Stalled").is_none() => Transition::Stalled(*reason),
        _ => Transition::None,
    }
}

/// What to count for a pass.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counts {
    /// A generation this operator had not seen: its namespace and template
    /// may be a pair whose series are yet to start.
    pub new_generation: bool,
    /// A change ended Ready: with its lead time (seconds) when known.
    pub ready: Option<Option<f64>>,
    /// A change ended Stalled.
    pub change_stalled: bool,
    /// A stall, by reason.
    pub stalled: Option<Reason>,
    /// Ready again after this many seconds stalled.
    pub restored: Option<f64>,
}

/// One Deployment's latest generation as this operator saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    generation: i64,
    /// When the change was made, when known: the creation for the first
    /// generation, the first pass that saw it for later ones; not known for
    /// a later generation first seen after a restart.
    since: Option<Timestamp>,
    /// Whether its outcome was counted.
    counted: bool,
    /// When it stalled, while it is Stalled.
    stalled_since: Option<Timestamp>,
    /// The Stalled condition's time of the stall last restored from.
    restored_from: Option<Timestamp>,
}

/// The generations seen, by Deployment UID.
#[derive(Debug, Default)]
pub struct Changes {
    seen: Mutex<HashMap<String, Seen>>,
}

impl Changes {
    /// What to count for a pass of Deployment `uid` at `generation`
    /// (created at `created`) whose phase made `t`, at `now`.
    pub fn pass(&self, uid: &str, generation: i64, created: Timestamp, t: Transition, now: Timestamp) -> Counts {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let new_generation = all.get(uid).is_none_or(|s| s.generation != generation);
        let s = all
            .entry(uid.to_string())
            .and_modify(|s| {
                if s.generation != generation {
                    *s = Seen {
                        generation,
                        since: Some(now),
                        counted: false,
                        stalled_since: s.stalled_since,
                        restored_from: s.restored_from,
                    };
                }
            })
            .or_insert(Seen {
                generation,
                since: (generation <= 1).then_some(created),
                counted: false,
                stalled_since: None,
                restored_from: None,
            });
        let mut counts = Counts {
            new_generation,
            ..Counts::default()
        };
        match t {
            Transition::None => {}
            Transition::Ready { stalled_since } => {
                // The status's stall, unless already restored from (a pass
                // from an older copy of the object counts it once).
                let from_status = stalled_since.filter(|t| s.restored_from != Some(*t));
                if let Some(since) = s.stalled_since.take().or(from_status) {
                    s.restored_from = stalled_since;
                    counts.restored = Some(seconds(since, now));
                }
                if !s.counted {
                    s.counted = true;
                    counts.ready = Some(s.since.map(|since| seconds(since, now)));
                }
            }
            Transition::Stalled(reason) => {
                // A change that stalls while the Deployment is still Stalled is no new stall.
                if s.stalled_since.is_none() {
                    counts.stalled = Some(reason);
                    s.stalled_since = Some(now);
                }
                if !s.counted {
                    s.counted = true;
                    counts.change_stalled = true;
                }
            }
        }
        counts
    }

    /// Forgets a deleted Deployment.
    pub fn forget(&self, uid: &str) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn condition(type_: &str, status: &str, since: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Time(at(since)),
            message: String::new(),
            observed_generation: None,
            reason: "R".into(),
        }
    }

    fn ready() -> Phase {
        Phase::Ready {
            reason: Reason::AllCurrent,
            message: String::new(),
        }
    }

    fn stalled() -> Phase {
        Phase::Stalled {
            reason: Reason::RenderFailed,
            message: String::new(),
        }
    }

    #[test]
    fn transitions_are_ready_or_stalled_turning_true() {
        let was_stalled = [condition("Ready", "False", 10), condition("Stalled", "True", 20)];
        assert_eq!(
            transition(&was_stalled, false, &ready()),
            Transition::Ready {
                stalled_since: Some(at(20))
            }
        );
        assert_eq!(
            transition(&was_stalled, false, &stalled()),
            Transition::None,
            "still stalled"
        );
        assert_eq!(
            transition(&was_stalled, true, &stalled()),
            Transition::Stalled(Reason::RenderFailed),
            "a new generation that stalls too"
        );
        assert_eq!(
            transition(&[], false, &stalled()),
            Transition::Stalled(Reason::RenderFailed)
        );
        let was_ready = [condition("Ready", "True", 10)];
        assert_eq!(transition(&was_ready, false, &ready()), Transition::None, "still ready");
        assert_eq!(
            transition(&was_ready, true, &ready()),
            Transition::Ready { stalled_since: None },
            "a change applied without leaving Ready"
        );
        let reconciling = Phase::Reconciling {
            reason: Reason::Progressing,
            message: String::new(),
        };
        assert_eq!(transition(&[], true, &reconciling), Transition::None);
    }

    #[test]
    fn a_change_counts_once_with_its_lead_time_and_a_stall_gives_the_time_to_restore() {
        let c = Changes::default();
        let ready_now = Transition::Ready { stalled_since: None };
        // Created at 100, Ready at 130: one change, 30 s.
        let first = c.pass("u", 1, at(100), Transition::None, at(101));
        assert_eq!(
            first,
            Counts {
                new_generation: true,
                ..Counts::default()
            }
        );
        assert!(!c.pass("u", 1, at(100), Transition::None, at(102)).new_generation);
        let first = c.pass("u", 1, at(100), ready_now, at(130));
        assert_eq!(first.ready, Some(Some(30.0)));
        // Ready again after a flap: no second change.
        assert_eq!(c.pass("u", 1, at(100), ready_now, at(200)).ready, None);
        // Generation 2 seen at 300 stalls at 310: a change that stalled, a stall.
        assert_eq!(
            c.pass("u", 2, at(100), Transition::None, at(300)),
            Counts {
                new_generation: true,
                ..Counts::default()
            }
        );
        let stall = c.pass("u", 2, at(100), Transition::Stalled(Reason::ApplyRefused), at(310));
        assert!(stall.change_stalled && stall.stalled == Some(Reason::ApplyRefused));
        // Ready at 370 without a new generation (its status Stalled since
        // 311): restored after 60 s, no new change.
        let from_stalled = Transition::Ready {
            stalled_since: Some(at(311)),
        };
        let back = c.pass("u", 2, at(100), from_stalled, at(370));
        assert_eq!((back.ready, back.restored), (None, Some(60.0)));
        // A pass from an older copy, its status still Stalled: nothing again.
        assert_eq!(c.pass("u", 2, at(100), from_stalled, at(371)), Counts::default());
        // Generation 3 stalls, and generation 4 while it still does: one stall.
        c.pass("u", 3, at(100), Transition::Stalled(Reason::RenderFailed), at(380));
        let again = c.pass("u", 4, at(100), Transition::Stalled(Reason::RenderFailed), at(390));
        assert!(again.change_stalled && again.stalled.is_none(), "{again:?}");
        // Generation 5 at 400, Ready at 460: a change with 60 s lead time, a restore.
        c.pass("u", 5, at(100), Transition::None, at(400));
        let fixed = c.pass("u", 5, at(100), ready_now, at(460));
        assert_eq!((fixed.ready, fixed.restored), (Some(Some(60.0)), Some(80.0)));
    }

    #[test]
    fn after_a_restart_a_later_generations_lead_time_is_not_known_but_a_stall_from_the_status_is() {
        let c = Changes::default();
        let counts = c.pass(
            "u",
            4,
            at(100),
            Transition::Ready {
                stalled_since: Some(at(900)),
            },
            at(1000),
        );
        assert_eq!(counts.ready, Some(None), "counted, lead time unknown");
        assert_eq!(counts.restored, Some(100.0));
        c.forget("u");
        let again = c.pass("u", 1, at(100), Transition::Ready { stalled_since: None }, at(150));
        assert_eq!(again.ready, Some(Some(50.0)), "forgotten, then seen afresh");
    }
}
