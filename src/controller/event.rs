//! What the controllers publish as Kubernetes Events: one enum, so every
//! Event's `reason`, `action` and type (Normal or Warning) is named once
//! (pure).

use std::{collections::HashMap, sync::Mutex};

use kube::runtime::events::EventType;

use crate::{api::common::EndReason, kstatus::Reason};

/// Something a controller tells the object's readers (`kubectl describe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happened {
    /// The object cannot go on until something changes (Warning; the stall's reason).
    Stalled(Reason),
    /// A pass failed and is retried (Warning).
    ReconcileFailed,
    /// The object became Ready: its pod runs, or its kubeconfig is issued.
    Ready,
    /// Its token was renewed.
    TokenRenewed,
    /// It ended by a lifetime and is deleted (its end reason).
    Ended(EndReason),
    /// A Deployment's objects were created.
    Created,
    /// A Deployment's objects were updated.
    Updated,
    /// Objects a Deployment no longer renders were deleted.
    Pruned,
    /// A catalog template does not parse (Warning, on its ConfigMap).
    InvalidTemplate,
    /// A catalog template does not render for a Deployment (Warning, on its ConfigMap).
    RenderFailed,
    /// Cleanup left something and tries again (Warning).
    CleanupRetrying,
    /// Cleanup gave up; what is left must be removed by hand (Warning).
    CleanupIncomplete,
}

impl Happened {
    /// The Event's `reason`.
    pub fn reason(self) -> String {
        match self {
            Happened::Stalled(r) => r.to_string(),
            Happened::Ended(why) => format!("{why:?}"),
            other => format!("{other:?}"),
        }
    }

    /// The Event's `action`: what the controller was doing.
    pub fn action(self) -> &'static str {
        match self {
            Happened::Stalled(_) | Happened::ReconcileFailed | Happened::Ready => "Reconcile",
            Happened::TokenRenewed => "Token",
            Happened::Ended(_) => "Expire",
            Happened::Created | Happened::Updated => "Apply",
            Happened::Pruned => "Prune",
            Happened::InvalidTemplate => "Parse",
            Happened::RenderFailed => "Render",
            Happened::CleanupRetrying | Happened::CleanupIncomplete => "Cleanup",
        }
    }

    /// Normal, or Warning for what needs someone's attention.
    pub fn type_(self) -> EventType {
        match self {
            Happened::Stalled(_)
            | Happened::ReconcileFailed
            | Happened::InvalidTemplate
            | Happened::RenderFailed
            | Happened::CleanupRetrying
            | Happened::CleanupIncomplete => EventType::Warning,
            Happened::Ready
            | Happened::TokenRenewed
            | Happened::Ended(_)
            | Happened::Created
            | Happened::Updated
            | Happened::Pruned => EventType::Normal,
        }
    }
}

/// What was announced for each object (by UID): an Event that marks a
/// change, such as a Deployment's Created for a template revision, is
/// published once per change even when a second pass starts from a version
/// of the object older than the operator's own status write (its watch not
/// caught up yet) and so sees the change as not yet reported.
#[derive(Default)]
pub struct Announced {
    entries: Mutex<HashMap<String, String>>,
}

impl Announced {
    /// Whether `what` is new for `uid` (then it is recorded as announced).
    pub fn first(&self, uid: &str, what: &str) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.get(uid).is_some_and(|w| w == what) {
            return false;
        }
        entries.insert(uid.to_string(), what.to_string());
        true
    }

    /// Forgets `uid` (its object is being deleted).
    pub fn forget(&self, uid: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_names_its_reason_action_and_type() {
        let stalled = Happened::Stalled(Reason::NotAuthorized);
        assert_eq!(
            (stalled.reason(), stalled.action()),
            ("NotAuthorized".into(), "Reconcile")
        );
        assert_eq!(stalled.type_(), EventType::Warning);
        let ended = Happened::Ended(EndReason::IdleTimeout);
        assert_eq!((ended.reason(), ended.action()), ("IdleTimeout".into(), "Expire"));
        assert_eq!(ended.type_(), EventType::Normal);
        assert_eq!(Happened::RenderFailed.reason(), "RenderFailed");
        assert_eq!(Happened::CleanupRetrying.type_(), EventType::Warning);
        assert_eq!(Happened::Pruned.action(), "Prune");
    }

    #[test]
    fn a_change_is_announced_once_and_again_after_another() {
        let a = Announced::default();
        assert!(a.first("u", "rev-1"));
        assert!(!a.first("u", "rev-1"), "a second pass of the same change");
        assert!(a.first("other", "rev-1"));
        assert!(a.first("u", "rev-2"));
        assert!(a.first("u", "rev-1"), "back to an earlier revision is a change too");
        a.forget("u");
        assert!(a.first("u", "rev-1"));
    }
}
