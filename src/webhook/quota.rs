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
    /// This process's turns at each Lease.
    pub turns: &'a Turns,
}

/// Turns at a Lease within this process: creates of one user's claims of
/// one profile arriving together reserve one after the other here instead
/// of all writing the Lease and retrying on each other's conflicts (which
/// grows with the square of their number). Each turn hands the next what it
/// read and wrote ([`Known`]), so a burst costs one write per create. Across
/// replicas the Lease's resourceVersion precondition still decides.
#[derive(Default)]
pub struct Turns(std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<Option<Known>>>>>);

/// What the last turn at a Lease knew: the Lease as it wrote it and the
/// claims it listed, and when it listed them.
pub struct Known {
    lease: Option<Lease>,
    live: BTreeSet<String>,
    listed: std::time::Instant,
}

/// How long what one turn knew serves the next: within a burst of creates.
const KNOWN_FOR: Duration = Duration::from_secs(2);
/// How long an admission waits for its turn before it is refused as busy
/// (well within the API server's webhook timeout).
const TURN_WAIT: Duration = Duration::from_secs(5);

/// A turn at one Lease; the next waiter goes when it is dropped.
pub struct Turn<'a> {
    turns: &'a Turns,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<Option<Known>>>,
}

impl Turns {
    /// Waits for the turn at `key`.
    pub async fn take(&self, key: &str) -> Turn<'_> {
        let lock = self.entries().entry(key.to_string()).or_default().clone();
        Turn {
            turns: self,
            key: key.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }

    fn entries(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<Option<Known>>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many Leases have a turn taken or awaited.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether no turn is taken or awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Turn<'_> {
    /// What the previous turn knew, if recent enough; it is taken.
    fn known(&mut self) -> Option<Known> {
        let known = self.guard.as_mut()?.take()?;
        (known.listed.elapsed() < KNOWN_FOR).then_some(known)
    }

    /// Leaves what this turn knows to the next.
    fn leave(&mut self, known: Known) {
        if let Some(g) = self.guard.as_mut() {
            **g = Some(known);
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut entries = self.turns.entries();
        // Nobody holds or awaits it any more (only the map does): forget it,
        // and what was known with it.
        if entries
            .get(&self.key)
            .is_some_and(|lock| std::sync::Arc::strong_count(lock) == 1)
        {
            entries.remove(&self.key);
        }
    }
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
        let Ok(mut turn) = tokio::time::timeout(TURN_WAIT, self.turns.take(&name)).await else {
            return Err(Denial::unavailable(format!(
                "too many sessions of profile {profile} are being created for {} at once; try again",
                creator.user
            )));
        };
        let mut attempts = 0;
        while attempts < ATTEMPTS {
            // What the previous turn knew, or a fresh read. A refusal is
            // only ever made on a fresh read.
            // (A dry run writes nothing to check what it was told against.)
            let handed = turn.known().filter(|_| !dry_run);
            let (known, cached) = match handed {
                Some(k) => (k, true),
                None => {
                    attempts += 1;
                    let lease = leases.get_opt(&name).await.map_err(busy)?;
                    let live = self.active(creator, profile).await.map_err(busy)?;
                    let listed = std::time::Instant::now();
                    (Known { lease, live, listed }, false)
                }
            };
            let held = known.lease.as_ref().map(held).unwrap_or_default();
            let next = match decide(&held, &known.live, Timestamp::now().as_millisecond(), max, claim) {
                Ok(next) => next,
                Err(_) if cached => continue,
                Err(active) => {
                    return Err(Denial::forbidden(format!(
                        "{} already has {active} active sessions of profile {profile} (at most {max}); end one first",
                        creator.user
                    )));
                }
            };
            if dry_run {
                return Ok(());
            }
            let value = serde_json::to_string(&next).expect("reservations serialize");
            let written = match &known.lease {
                Some(l) => {
                    let patch = json!({"metadata": {
                        "resourceVersion": l.resource_version(),
                        "annotations": {SESSION_RESERVATIONS: value},
                    }});
                    leases.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await
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
                    leases.create(&pp, &new).await
                }
            };
            match written {
                Ok(lease) => {
                    turn.leave(Known {
                        lease: Some(lease),
                        ..known
                    });
                    return Ok(());
                }
                // Written by another replica (or a release) since, or
                // deleted: read again.
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
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
        // Best effort: a reservation left behind expires by itself.
        let Ok(mut turn) = tokio::time::timeout(TURN_WAIT, self.turns.take(&name)).await else {
            return;
        };
        // This write changes the Lease: what the last turn knew of it goes.
        let _ = turn.known();
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
    #[tokio::test]
    async fn turns_at_one_lease_go_one_at_a_time_and_are_forgotten_after() {
        let turns = super::Turns::default();
        let first = turns.take("a").await;
        let other = turns.take("b").await;
        // A second turn at "a" waits for the first; "b" does not hold it up.
        let waiting = turns.take("a");
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(other);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(first);
        let second = waiting.await;
        assert_eq!(turns.len(), 1, "only \"a\" is still taken");
        drop(second);
        assert!(turns.is_empty());
    }

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
