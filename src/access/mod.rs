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
    /// The fields at fault, one entry each; the webhook answers them as
    /// `Status.details.causes`, which kubectl prints as one bullet each.
    pub causes: Vec<Cause>,
}

/// One field at fault in a [`Denial`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The field as Kubernetes writes paths: `spec.host.pod.privileged`,
    /// `spec.target.roleBindings[0]`, `metadata.annotations[portico.dev/created-by]`.
    pub field: String,
    /// What is wrong with it, without the field's name (kubectl prints `field: message`).
    pub message: String,
}

impl Denial {
    /// Not allowed (403).
    pub fn forbidden(message: String) -> Self {
        Denial {
            code: 403,
            message,
            causes: vec![],
        }
    }
    /// Invalid (422).
    pub fn invalid(message: String) -> Self {
        Denial {
            code: 422,
            message,
            causes: vec![],
        }
    }
    /// A check could not run (503); failurePolicy Fail keeps the object out.
    pub fn unavailable(message: String) -> Self {
        Denial {
            code: 503,
            message,
            causes: vec![],
        }
    }
    /// `field` is invalid (422): the message is `field: detail`, with one cause.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let (field, detail) = (field.into(), detail.into());
        Denial::invalid(format!("{field}: {detail}")).with_cause(field, detail)
    }
    /// `field` asks for what the user may not have (403): the message is `field: detail`, with one cause.
    pub fn forbidden_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let (field, detail) = (field.into(), detail.into());
        Denial::forbidden(format!("{field}: {detail}")).with_cause(field, detail)
    }
    /// Adds a cause: `field` and what is wrong with it; the message stays as it is.
    pub fn with_cause(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.causes.push(Cause {
            field: field.into(),
            message: message.into(),
        });
        self
    }
    /// The whole refusal is about `field`: a cause with the message, unless
    /// it has causes already or is not about the object (a check that could not run).
    pub fn on(self, field: impl Into<String>) -> Self {
        if self.code == 503 || !self.causes.is_empty() {
            return self;
        }
        let message = self.message.clone();
        self.with_cause(field, message)
    }
    /// The Kubernetes Status reason for the code.
    pub fn reason(&self) -> &'static str {
        match self.code {
            403 => "Forbidden",
            422 => "Invalid",
            _ => "ServiceUnavailable",
        }
    }
    /// The Kubernetes cause type of each field at fault (`FieldValueInvalid`, `FieldValueForbidden`).
    pub fn cause_reason(&self) -> &'static str {
        match self.code {
            403 => "FieldValueForbidden",
            _ => "FieldValueInvalid",
        }
    }
}
