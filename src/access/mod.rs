//! Who may do what, asked of the API server: access questions and the
//! RBAC rules they expand from (pure), a short cache of allowed answers,
//! and the checks every grant passes — a Terminal or a session never grants
//! more than its creator holds: for each role it binds, the creator must
//! hold every permission in it where it would be bound (rule by rule, as
//! RBAC's own escalation check does) or be allowed to `bind` it. Used by the
//! webhook (at admission) and the controllers (for clusters admission could
//! not reach, and session grants).

mod cache;
mod question;
mod review;
mod rules;

pub use cache::{ACCESS_CACHE_TTL, AccessCache};
pub use question::{Access, expand_rules, resource};
pub use review::{Checker, authorize_target, check_role_grant, cluster_name, require, review, rules_review};
pub use rules::HeldRules;

/// A refusal, with the HTTP status the API server reports to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 403 (not allowed), 422 (invalid) or 503 (could not check).
    pub code: u16,
    /// What was refused and why, for the user.
    pub message: String,
}

impl Denial {
    /// Not allowed (403).
    pub fn forbidden(message: String) -> Self {
        Denial { code: 403, message }
    }
    /// Invalid (422).
    pub fn invalid(message: String) -> Self {
        Denial { code: 422, message }
    }
    /// A check could not run (503); failurePolicy Fail keeps the object out.
    pub fn unavailable(message: String) -> Self {
        Denial { code: 503, message }
    }
    /// The Kubernetes Status reason for the code.
    pub fn reason(&self) -> &'static str {
        match self.code {
            403 => "Forbidden",
            422 => "Invalid",
            _ => "ServiceUnavailable",
        }
    }
}
