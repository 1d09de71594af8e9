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
}
