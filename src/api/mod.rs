//! Portico's custom resources: `Terminal`, `Deployment` and `SessionClaim` in
//! the API group `portico.dev/v1alpha1`, with the names, annotations and
//! schema pieces they share.

pub mod common;
pub mod deployment;
pub mod rbac;
pub mod session_claim;
pub mod terminal;

pub use common::{ClusterRef, SecretKeyRef};
pub use deployment::{Deployment, DeploymentSpec, DeploymentStatus};
pub use session_claim::{SessionClaim, SessionClaimSpec, SessionClaimStatus};
pub use terminal::{Terminal, TerminalSpec, TerminalStatus};

/// The API group of every Portico resource.
pub const GROUP: &str = "portico.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// The `kubectl get` category that lists all three kinds.
pub const CATEGORY: &str = "portico";

/// Portico's three kinds, for metrics, logs and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `Terminal`.
    Terminal,
    /// `Deployment` (`deployments.portico.dev`).
    Deployment,
    /// `SessionClaim`.
    SessionClaim,
}

impl Kind {
    /// The kind named `kind` in API group `group`, if it is one of Portico's.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        if group != GROUP {
            return None;
        }
        match kind {
            "Terminal" => Some(Kind::Terminal),
            "Deployment" => Some(Kind::Deployment),
            "SessionClaim" => Some(Kind::SessionClaim),
            _ => None,
        }
    }

    /// The plural resource name.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Terminal => "terminals",
            Kind::Deployment => "deployments",
            Kind::SessionClaim => "sessionclaims",
        }
    }

    /// The kind's name, as in `kind:` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Terminal => "Terminal",
            Kind::Deployment => "Deployment",
            Kind::SessionClaim => "SessionClaim",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Annotations and labels Portico reads and writes, all under `portico.dev/`.
pub mod keys {
    /// Who created an object: user name and groups, written by the webhook, immutable.
    pub const CREATED_BY: &str = "portico.dev/created-by";
    /// Who last changed a Deployment's spec (user name and groups, as `created-by`),
    /// written by the webhook; the operator applies the change with their rights.
    pub const UPDATED_BY: &str = "portico.dev/updated-by";
    /// A client's request for an operation, consumed by the webhook (`keepalive`).
    pub const OPERATION: &str = "portico.dev/operation";
    /// The server's time of the last accepted keepalive.
    pub const LAST_HEARTBEAT_AT: &str = "portico.dev/last-heartbeat-at";
    /// Label on SessionClaims: a hash of the creator's user name (user names need not be label values).
    pub const USER_HASH_LABEL: &str = "portico.dev/user-hash";
    /// Label on SessionClaims: the profile.
    pub const PROFILE_LABEL: &str = "portico.dev/profile";
    /// The generated name of a Terminal's temporary namespace(s), written by the webhook.
    pub const TEMPORARY_NAMESPACE: &str = "portico.dev/temporary-namespace";
    /// Annotation on the per-user Lease that reserves session slots (see `webhook::quota`).
    pub const SESSION_RESERVATIONS: &str = "portico.dev/session-reservations";
    /// Label on a namespace Portico created: the UID of the Terminal it was created for.
    /// Portico deletes a temporary namespace only when it carries this label with that UID.
    pub const TERMINAL_UID_LABEL: &str = "portico.dev/terminal-uid";
    /// Label on every object a Deployment renders: the Deployment's UID. Portico
    /// never takes over an object without it and deletes only objects with it.
    pub const DEPLOYMENT_UID_LABEL: &str = "portico.dev/deployment-uid";
    /// Annotation on a Terminal made from a dashboard shortcut: the shortcut's title.
    pub const SHORTCUT: &str = "portico.dev/shortcut";
    /// Label that marks a ConfigMap as a catalog template.
    pub const TEMPLATE_LABEL: &str = "portico.dev/template";
    /// Label on every object a Deployment renders: its name (shortened to fit a label).
    pub const DEPLOYMENT_LABEL: &str = "portico.dev/deployment";
    /// Annotation on every object a Deployment renders: the Deployment's name.
    pub const DEPLOYMENT_NAME_ANNOTATION: &str = "portico.dev/deployment-name";
    /// Annotation on every object a Deployment renders: the Deployment's namespace.
    pub const DEPLOYMENT_NAMESPACE_ANNOTATION: &str = "portico.dev/deployment-namespace";
    /// Label on ConfigMaps holding terminal shortcuts for the dashboard (key `shortcuts.yaml`).
    pub const SHORTCUTS_LABEL: &str = "portico.dev/terminal-shortcuts";
    /// Annotation on a kubeconfig Secret: when its token expires.
    pub const TOKEN_EXPIRES_ANNOTATION: &str = "portico.dev/token-expires-at";
    /// Annotation on a kubeconfig Secret: when its token was issued.
    pub const TOKEN_ISSUED_ANNOTATION: &str = "portico.dev/token-issued-at";
    /// Annotation on a Terminal's kubeconfig Secret: the UID of the service
    /// account its token was issued for. A service account deleted and made
    /// again has another UID (and the token died with the first): the token
    /// is issued again.
    pub const TOKEN_ACCOUNT_UID_ANNOTATION: &str = "portico.dev/token-account-uid";
    /// Annotation on objects made for a Terminal: the Terminal as `namespace/name`.
    pub const TERMINAL_OWNER_ANNOTATION: &str = "portico.dev/terminal";
    /// Label on every object made for a SessionClaim: the claim's UID.
    pub const SESSION_UID_LABEL: &str = "portico.dev/session-uid";
    /// Annotation on objects made for a SessionClaim: the claim as `namespace/name`.
    pub const SESSION_OWNER_ANNOTATION: &str = "portico.dev/session";
    /// Finalizer on every Portico object: what it made is removed before it goes.
    pub const FINALIZER: &str = "portico.dev/cleanup";
}
