//! The API server's audit log: every request at `Metadata` level, one JSON
//! event per line, so tests can see who asked for what and with which
//! credentials (for example that an attach was made with a service-account
//! token, or which permissions a component actually used).

use std::path::Path;

use serde::Deserialize;

/// The audit policy the control plane starts with: metadata of every request,
/// once, when the response is complete.
pub const POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
";

/// One audited request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ….
    pub verb: String,
    /// The request path and query.
    #[serde(default, rename = "requestURI")]
    pub request_uri: String,
    /// Who made the request (after authentication).
    pub user: UserInfo,
    /// Whom the request impersonated, if anyone.
    #[serde(default)]
    pub impersonated_user: Option<UserInfo>,
    /// The object the request addressed.
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    /// The response status.
    #[serde(default)]
    pub response_status: Option<Status>,
}

/// An authenticated identity.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The resource a request addressed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Resource (plural), for example `pods`.
    #[serde(default)]
    pub resource: String,
    /// Subresource, for example `attach`.
    #[serde(default)]
    pub subresource: String,
    /// API group; empty for the core group.
    #[serde(default)]
    pub api_group: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Object name.
    #[serde(default)]
    pub name: String,
}

/// The HTTP status code of the response.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    /// HTTP status code.
    #[serde(default)]
    pub code: u16,
}

impl Event {
    /// The status code of the response, 0 when unknown.
    pub fn code(&self) -> u16 {
        self.response_status.as_ref().map_or(0, |s| s.code)
    }
}

/// Every event in the log so far (lines that do not parse, such as a line
/// being written, are skipped).
pub fn read(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_parse_from_the_api_server_format() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/a/pods/p/attach?stdin=true","verb":"create","user":{"username":"system:serviceaccount:a:term-attach-1","groups":["system:serviceaccounts"]},"objectRef":{"resource":"pods","namespace":"a","name":"p","apiVersion":"v1","subresource":"attach"},"responseStatus":{"metadata":{},"code":400}}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, format!("{line}\n{{\"half")).unwrap();
        let events = super::read(&path);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.request_uri, "/api/v1/namespaces/a/pods/p/attach?stdin=true");
        assert_eq!(e.user.username, "system:serviceaccount:a:term-attach-1");
        assert_eq!(e.object_ref.as_ref().unwrap().subresource, "attach");
        assert_eq!(e.code(), 400);
    }
}
