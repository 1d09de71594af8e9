//! A user's recent activity on the per-user access page (pure): what the
//! objects that exist now say of them — their logins (SessionClaims: made,
//! last heartbeat), the Terminals and Deployments they made and the
//! Terminals' last heartbeats — newest first. Ended objects are gone from
//! the API server and so from here; Kubernetes keeps no longer history.

use serde::Serialize;

/// Entries shown at most.
pub const SHOWN: usize = 25;

/// One thing the user did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// When (RFC 3339).
    pub time: String,
    /// What, in words ("made the Terminal", "was last active in the session").
    pub what: &'static str,
    /// The object: `namespace/name`.
    pub object: String,
    /// Its page on the dashboard, if it has one.
    pub link: Option<String>,
    #[serde(skip)]
    at: i128,
}

/// What an object tells of a user's activity.
pub struct Seen<'a> {
    /// `Terminal`, `Deployment` or `SessionClaim`.
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// Made at (ns since the epoch).
    pub created: Option<i128>,
    /// Its last heartbeat (RFC 3339), from `portico.dev/last-heartbeat-at`.
    pub heartbeat: Option<&'a str>,
}

fn time_of(ns: i128) -> Option<String> {
    k8s_openapi::jiff::Timestamp::from_nanosecond(ns)
        .ok()
        .map(|t| t.to_string())
}

/// The entries of `seen`, newest first, at most [`SHOWN`].
pub fn entries<'a>(seen: impl IntoIterator<Item = Seen<'a>>) -> Vec<Entry> {
    let mut out = Vec::new();
    for s in seen {
        let (made, active, link) = match s.kind {
            "Terminal" => (
                "made the Terminal",
                "kept the Terminal alive",
                Some(format!("/terminals/{}/{}", s.namespace, s.name)),
            ),
            "Deployment" => (
                "made the Deployment",
                "",
                Some(format!("/deployments/{}/{}", s.namespace, s.name)),
            ),
            _ => ("logged in: the session", "was last active in the session", None),
        };
        let object = format!("{}/{}", s.namespace, s.name);
        if let Some(at) = s.created
            && let Some(time) = time_of(at)
        {
            out.push(Entry {
                time,
                what: made,
                object: object.clone(),
                link: link.clone(),
                at,
            });
        }
        let beat = s
            .heartbeat
            .and_then(|h| h.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .filter(|_| !active.is_empty());
        if let Some(t) = beat {
            out.push(Entry {
                time: t.to_string(),
                what: active,
                object,
                link,
                at: t.as_nanosecond(),
            });
        }
    }
    out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.object.cmp(&b.object)));
    out.truncate(SHOWN);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    #[test]
    fn activity_is_newest_first_with_heartbeats_and_links() {
        let seen = [
            Seen {
                kind: "Terminal",
                namespace: "team-a",
                name: "shell",
                created: Some(1_800_000_000 * S),
                heartbeat: Some("2027-01-15T09:00:00Z"),
            },
            Seen {
                kind: "Deployment",
                namespace: "team-a",
                name: "shop",
                created: Some(1_700_000_000 * S),
                heartbeat: Some("2030-01-01T00:00:00Z"),
            },
            Seen {
                kind: "SessionClaim",
                namespace: "portico-sessions",
                name: "ui-1",
                created: Some(1_750_000_000 * S),
                heartbeat: None,
            },
        ];
        let e = entries(seen);
        let whats: Vec<(&str, &str)> = e.iter().map(|e| (e.what, e.object.as_str())).collect();
        assert_eq!(
            whats,
            [
                ("kept the Terminal alive", "team-a/shell"),
                ("made the Terminal", "team-a/shell"),
                ("logged in: the session", "portico-sessions/ui-1"),
                ("made the Deployment", "team-a/shop"),
            ],
            "a Deployment has no heartbeat to show"
        );
        assert_eq!(e[0].time, "2027-01-15T09:00:00Z");
        assert_eq!(e[0].link.as_deref(), Some("/terminals/team-a/shell"));
        assert_eq!(e[2].link, None);
    }

    #[test]
    fn at_most_a_page_of_entries() {
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let seen = names.iter().enumerate().map(|(i, n)| Seen {
            kind: "Terminal",
            namespace: "ns",
            name: n,
            created: Some(i as i128 * S),
            heartbeat: None,
        });
        let e = entries(seen);
        assert_eq!(e.len(), SHOWN);
        assert_eq!(e[0].object, "ns/t39");
    }

    #[test]
    fn a_heartbeat_that_is_no_time_is_left_out() {
        let seen = [Seen {
            kind: "Terminal",
            namespace: "ns",
            name: "t",
            created: Some(S),
            heartbeat: Some("yesterday"),
        }];
        let whats: Vec<&str> = entries(seen).iter().map(|e| e.what).collect();
        assert_eq!(whats, ["made the Terminal"]);
    }
}
