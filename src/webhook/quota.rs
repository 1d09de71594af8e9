//! A profile's `maxActivePerUser`, exact under concurrent creates on every
//! webhook replica: each admitted SessionClaim first reserves its slot in a
//! Lease (one per user and profile, in the operator's namespace), written
//! with the Lease's resourceVersion as a precondition, so two creates
//! admitted at once can never both take the last slot. A reservation counts
//! until its claim is listed (then the claim counts) or for
//! [`RESERVATION_TTL`] (a create that another check refused after ours).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::Denial;
use crate::{
    api::{
        SessionClaim,
        keys::{PROFILE_LABEL, SESSION_RESERVATIONS, USER_HASH_LABEL},
    },
    creator::Creator,
    install::FIELD_MANAGER,
};

/// How long a reservation counts without its claim appearing (the API
/// server's admission timeout is shorter).
pub const RESERVATION_TTL: Duration = Duration::from_secs(30);
/// Conflicting writes tolerated before the create is refused as busy.
const ATTEMPTS: usize = 30;

/// Pending reservations: claim (`namespace/name`) → reserved at (ms since the epoch).
pub type Reservations = BTreeMap<String, i64>;

/// Decides one create (pure): the reservations to write (expired ones and
/// those whose claim is now listed dropped, this one added), or the number
/// of sessions already active when the limit is reached.
pub fn decide(
    reservations: &Reservations,
    live: &BTreeSet<String>,
    now_ms: i64,
    max: usize,
    claim: &str,
) -> Result<Reservations, usize> {
    let ttl = RESERVATION_TTL.as_millis() as i64;
    let mut pending: Reservations = reservations
        .iter()
        .filter(|(k, at)| !live.contains(*k) && now_ms - **at < ttl && k.as_str() != claim)
        .map(|(k, at)| (k.clone(), *at))
        .collect();
    let active = live.iter().filter(|k| k.as_str() != claim).count() + pending.len();
    if active >= max {
        return Err(active);
    }
    pending.insert(claim.to_string(), now_ms);
    Ok(pending)
}

/// The reservations a Lease holds (none when it holds none or an unreadable value).
fn held(lease: &Lease) -> Reservations {
    lease
        .annotations()
        .get(SESSION_RESERVATIONS)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The Lease holding one user's reservations for one profile.
pub fn lease_name(creator: &Creator, profile: &str) -> String {
    format!("sessions-{}-{profile}", &creator.user_hash()[..16])
}

/// Where reservations are kept and how claims are counted.
pub struct Quota<'a> {
    /// This cluster, as the operator.
    pub client: &'a Client,
    /// The namespace of the Leases (the operator's own).
    pub namespace: &'a str,
}

impl Quota<'_> {
    /// Reserves a slot for `claim` (`namespace/name`) or refuses the create.
    /// A dry run only counts.
    pub async fn reserve(
        &self,
        creator: &Creator,
        profile: &str,
        max: usize,
        claim: &str,
        dry_run: bool,
    ) -> Result<(), Denial> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), self.namespace);
        let name = lease_name(creator, profile);
        let busy = |e: kube::Error| Denial::unavailable(format!("cannot count active sessions: {e}"));
        for _ in 0..ATTEMPTS {
            let lease = leases.get_opt(&name).await.map_err(busy)?;
            let live = self.active(creator, profile).await.map_err(busy)?;
            let held = lease.as_ref().map(held).unwrap_or_default();
            let next = decide(&held, &live, Timestamp::now().as_millisecond(), max, claim).map_err(|active| {
                Denial::forbidden(format!(
                    "{} already has {active} active sessions of profile {profile} (at most {max}); end one first",
                    creator.user
                ))
            })?;
            if dry_run {
                return Ok(());
            }
            let value = serde_json::to_string(&next).expect("reservations serialize");
            let written = match &lease {
                Some(l) => {
                    let patch = json!({"metadata": {
                        "resourceVersion": l.resource_version(),
                        "annotations": {SESSION_RESERVATIONS: value},
                    }});
                    leases
                        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .map(|_| ())
                }
                None => {
                    let new: Lease = serde_json::from_value(json!({"metadata": {
                        "name": name,
                        "labels": {"app.kubernetes.io/managed-by": "portico", USER_HASH_LABEL: creator.user_hash()},
                        "annotations": {SESSION_RESERVATIONS: value},
                    }}))
                    .expect("a Lease");
                    let pp = PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    };
                    leases.create(&pp, &new).await.map(|_| ())
                }
            };
            match written {
                Ok(()) => return Ok(()),
                // Another admission wrote first: count again.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    use rand::RngExt;
                    let pause = rand::rng().random_range(2..20);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(busy(e)),
            }
        }
        Err(Denial::unavailable(format!(
            "too many sessions of profile {profile} are being created for {} at once; try again",
            creator.user
        )))
    }

    /// Drops the reservation of a claim being deleted (best effort): a claim
    /// deleted before any later create listed it would otherwise count until
    /// its reservation expires. A delete that fails afterwards leaves the
    /// claim listed, and so counted.
    pub async fn release(&self, creator: &Creator, profile: &str, claim: &str) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), self.namespace);
        let name = lease_name(creator, profile);
        for _ in 0..ATTEMPTS {
            let Ok(Some(lease)) = leases.get_opt(&name).await else {
                return;
            };
            let mut held = held(&lease);
            if held.remove(claim).is_none() {
                return;
            }
            let patch = json!({"metadata": {
                "resourceVersion": lease.resource_version(),
                "annotations": {SESSION_RESERVATIONS: serde_json::to_string(&held).expect("reservations serialize")},
            }});
            match leases.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => {
                    tracing::warn!(error = %e, claim, "cannot release a session reservation; it expires by itself");
                    return;
                }
                Ok(_) => return,
            }
        }
    }

    /// The user's claims of the profile that exist and are not being deleted (a quorum read).
    async fn active(&self, creator: &Creator, profile: &str) -> Result<BTreeSet<String>, kube::Error> {
        let api: Api<SessionClaim> = Api::all(self.client.clone());
        let selector = format!("{USER_HASH_LABEL}={},{PROFILE_LABEL}={profile}", creator.user_hash());
        let claims = api.list_metadata(&ListParams::default().labels(&selector)).await?;
        Ok(claims
            .items
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_reservation_takes_a_slot_until_its_claim_is_listed() {
        let none = Reservations::new();
        let first = decide(&none, &set(&[]), 1_000, 2, "s/a").unwrap();
        assert_eq!(first.keys().collect::<Vec<_>>(), ["s/a"]);
        let second = decide(&first, &set(&[]), 1_100, 2, "s/b").unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(
            decide(&second, &set(&[]), 1_200, 2, "s/c"),
            Err(2),
            "both slots are reserved"
        );
        // Once listed, a claim counts itself and its reservation goes.
        let listed = decide(&second, &set(&["s/a"]), 1_300, 3, "s/c").unwrap();
        assert_eq!(listed.keys().collect::<Vec<_>>(), ["s/b", "s/c"]);
    }

    #[test]
    fn expired_reservations_free_their_slot() {
        let held = Reservations::from([("s/a".to_string(), 0)]);
        assert_eq!(decide(&held, &set(&[]), 1_000, 1, "s/b"), Err(1));
        let later = RESERVATION_TTL.as_millis() as i64;
        let next = decide(&held, &set(&[]), later, 1, "s/b").unwrap();
        assert_eq!(next.keys().collect::<Vec<_>>(), ["s/b"]);
    }

    #[test]
    fn live_claims_count_and_the_lease_name_fits() {
        assert_eq!(decide(&Reservations::new(), &set(&["x/1", "y/2"]), 0, 2, "s/c"), Err(2));
        let alice = Creator {
            user: "alice@example.com".into(),
            groups: vec![],
        };
        let name = lease_name(&alice, "developer");
        assert!(
            name.starts_with("sessions-") && name.ends_with("-developer") && name.len() < 64,
            "{name}"
        );
    }
}
