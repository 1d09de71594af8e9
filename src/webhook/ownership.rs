//! Who may change or end a Terminal or SessionClaim: its creator, or a user
//! whom RBAC allows the verb `override` on that kind in that namespace
//! (namespace admins, through the aggregated `admin` role). Editors of a
//! namespace can otherwise delete or rewrite each other's objects there, and
//! these objects carry someone's credentials. The decision of whether a
//! request needs the check is pure; the check itself is one
//! SubjectAccessReview for the requester.

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, core::admission::Operation};

use super::{Denial, Kind};
use crate::{
    access::{self as authz, Access, resource},
    api::{GROUP, rbac::OVERRIDE_VERB},
    creator::Creator,
};

/// What a requester does to someone else's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Changes its spec.
    Change,
    /// Deletes it.
    End,
}

impl Act {
    fn verb(self) -> &'static str {
        match self {
            Act::Change => "change",
            Act::End => "end",
        }
    }
}

/// A request that acts on an object another user created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The kind of the object.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Who created it.
    pub creator: Creator,
    /// Who asks.
    pub requester: Creator,
    /// What they ask for.
    pub act: Act,
}

/// Whether `kind` is personal: only its creator (or an admin) changes or ends it.
/// Deployments belong to their namespace and follow its RBAC alone.
pub fn is_personal(kind: Kind) -> bool {
    matches!(kind, Kind::Terminal | Kind::SessionClaim)
}

/// Whether a request by `requester` needs the `override` check (pure):
/// a delete, or an update that changes the spec, of someone else's personal
/// object. The operator's own requests (finalizers, expiry) never do.
pub fn act_on_others(
    kind: Kind,
    operation: &Operation,
    spec_changed: bool,
    creator: &Creator,
    requester: &str,
    operator: Option<&str>,
) -> Option<Act> {
    if !is_personal(kind) || creator.user == requester || operator == Some(requester) {
        return None;
    }
    match operation {
        Operation::Delete => Some(Act::End),
        Operation::Update if spec_changed => Some(Act::Change),
        _ => None,
    }
}

/// The access question for an override.
pub fn access(o: &Override) -> Access {
    resource(&o.namespace, OVERRIDE_VERB, GROUP, o.kind.plural(), &o.name)
}

/// Allows the override when the requester holds `override`, or when the
/// namespace itself is being deleted (its controller removes everything in it).
pub async fn check(client: &kube::Client, o: &Override) -> Result<(), Denial> {
    let what = format!(
        "whether {} may {} this {}",
        o.requester.user,
        o.act.verb(),
        o.kind.name()
    );
    let unavailable = |e: kube::Error| Denial::unavailable(format!("cannot check {what}: {e}"));
    if authz::review(client, &o.requester, &access(o))
        .await
        .map_err(unavailable)?
    {
        return Ok(());
    }
    if o.act == Act::End {
        let ns = Api::<Namespace>::all(client.clone())
            .get_opt(&o.namespace)
            .await
            .map_err(unavailable)?;
        if ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()) {
            return Ok(());
        }
    }
    Err(Denial::forbidden(refusal(o)))
}

/// The refusal, naming the owner and the permission that would allow it.
pub fn refusal(o: &Override) -> String {
    let plural = o.kind.plural();
    format!(
        "{} {}/{} belongs to {}; only they may {} it, or someone allowed to {OVERRIDE_VERB} {plural}.{GROUP} \
         in namespace {} (namespace admins); the request comes from {}",
        o.kind.name(),
        o.namespace,
        o.name,
        o.creator.user,
        o.act.verb(),
        o.namespace,
        o.requester.user
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Creator {
        Creator {
            user: "alice".into(),
            groups: vec!["developers".into()],
        }
    }

    #[test]
    fn only_others_acting_on_personal_objects_need_override() {
        let operator = "system:serviceaccount:portico-system:portico-operator";
        let op = Some(operator);
        let d = Operation::Delete;
        let u = Operation::Update;
        assert_eq!(
            act_on_others(Kind::SessionClaim, &d, false, &alice(), "bob", op),
            Some(Act::End)
        );
        assert_eq!(
            act_on_others(Kind::Terminal, &u, true, &alice(), "bob", op),
            Some(Act::Change)
        );
        assert_eq!(
            act_on_others(Kind::SessionClaim, &u, false, &alice(), "bob", op),
            None,
            "metadata only"
        );
        assert_eq!(
            act_on_others(Kind::SessionClaim, &d, false, &alice(), "alice", op),
            None,
            "the creator"
        );
        assert_eq!(
            act_on_others(Kind::Terminal, &d, false, &alice(), operator, op),
            None,
            "the operator"
        );
        assert_eq!(
            act_on_others(Kind::Deployment, &d, false, &alice(), "bob", op),
            None,
            "team objects"
        );
        assert_eq!(
            act_on_others(Kind::Terminal, &Operation::Create, true, &alice(), "bob", op),
            None
        );
    }

    #[test]
    fn the_refusal_names_owner_requester_and_permission() {
        let o = Override {
            kind: Kind::SessionClaim,
            namespace: "portico-sessions".into(),
            name: "s1".into(),
            creator: alice(),
            requester: Creator {
                user: "bob".into(),
                groups: vec![],
            },
            act: Act::End,
        };
        let m = refusal(&o);
        assert!(
            m.contains("belongs to alice") && m.contains("only they may end it"),
            "{m}"
        );
        assert!(
            m.contains("override sessionclaims.portico.dev in namespace portico-sessions"),
            "{m}"
        );
        assert!(m.ends_with("from bob"), "{m}");
        assert_eq!(access(&o).to_string(), "override sessionclaims.portico.dev named s1");
    }
}
