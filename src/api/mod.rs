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
    /// Annotation on a Terminal made from a dashboard shortcut: the shortcut's title.
    pub const SHORTCUT: &str = "portico.dev/shortcut";
}
