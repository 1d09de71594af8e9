//! Where a user may do something — list a kind, create, change or delete
//! one — as the API server answers: one SelfSubjectAccessReview made as
//! the user for the whole cluster, else one per namespace asked about (for
//! the lists, those holding objects of the kind). The list pages and the
//! live stream show exactly what that allows, whoever created it — what
//! `kubectl get` shows the same user; forms offer the namespaces where the
//! user may create, pages only the actions the user may take. Answers are
//! kept for [`KEEP`] per user, groups and question, so a page view costs no
//! request; a namespace new since is asked about when it is first needed.
//! Callers that find no answer at once (the open streams of one user when
//! an answer expires) wait for one question, not one each.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::{Api, Client, api::PostParams};

use super::cookies::Session;

/// How long an answer is used before it is asked again: a role binding
/// made or removed shows in the lists within this time.
pub const KEEP: Duration = Duration::from_secs(30);
/// Answers kept at most (then they are asked afresh).
const MAX_ENTRIES: usize = 2000;
/// Namespace reviews in flight at once for one answer.
const IN_FLIGHT: usize = 8;

/// The namespaces where a user may list a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable {
    /// Every namespace (a cluster-wide grant).
    All,
    /// Only `allowed`, of the namespaces `asked` about.
    In {
        /// Where the answer was yes.
        allowed: BTreeSet<String>,
        /// Every namespace asked about.
        asked: BTreeSet<String>,
    },
}

impl Readable {
    /// Whether objects in `namespace` are readable (a namespace not asked about is not).
    pub fn has(&self, namespace: &str) -> bool {
        match self {
            Readable::All => true,
            Readable::In { allowed, .. } => allowed.contains(namespace),
        }
    }

    /// From the answers (pure): the cluster-wide one, else each namespace's.
    pub fn of(cluster_wide: bool, namespaces: impl IntoIterator<Item = (String, bool)>) -> Readable {
        match cluster_wide {
            true => Readable::All,
            false => Readable::In {
                allowed: BTreeSet::new(),
                asked: BTreeSet::new(),
            }
            .with(namespaces),
        }
    }

    /// The namespaces of `namespaces` this answer has not asked about (pure).
    pub fn unasked<'a>(&self, namespaces: &'a BTreeSet<String>) -> Vec<&'a String> {
        match self {
            Readable::All => vec![],
            Readable::In { asked, .. } => namespaces.iter().filter(|n| !asked.contains(*n)).collect(),
        }
    }

    /// This answer with `more` namespaces' answers added (pure).
    pub fn with(&self, more: impl IntoIterator<Item = (String, bool)>) -> Readable {
        match self {
            Readable::All => Readable::All,
            Readable::In { allowed, asked } => {
                let (mut allowed, mut asked) = (allowed.clone(), asked.clone());
                for (ns, ok) in more {
                    if ok {
                        allowed.insert(ns.clone());
                    }
                    asked.insert(ns);
                }
                Readable::In { allowed, asked }
            }
        }
    }
}

/// What is asked: may the user do `verb` on a resource (of an API group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Question {
    /// API group.
    pub group: &'static str,
    /// Resource, plural.
    pub resource: &'static str,
    /// The verb.
    pub verb: &'static str,
}

/// Portico's Deployments.
pub const DEPLOYMENTS: Question = Question {
    group: "portico.dev",
    resource: "deployments",
    verb: "list",
};
/// Terminals.
pub const TERMINALS: Question = Question {
    group: "portico.dev",
    resource: "terminals",
    verb: "list",
};

/// Creating Portico's Deployments (the namespaces a create form offers).
pub const CREATE_DEPLOYMENTS: Question = Question {
    verb: "create",
    ..DEPLOYMENTS
};
/// Creating Terminals.
pub const CREATE_TERMINALS: Question = Question {
    verb: "create",
    ..TERMINALS
};
/// Changing a Deployment's parameters (its page offers the form).
pub const PATCH_DEPLOYMENTS: Question = Question {
    verb: "patch",
    ..DEPLOYMENTS
};
/// Deleting a Deployment (its page offers the button).
pub const DELETE_DEPLOYMENTS: Question = Question {
    verb: "delete",
    ..DEPLOYMENTS
};
/// RoleBindings (who has access to a namespace).
pub const ROLE_BINDINGS: Question = Question {
    group: "rbac.authorization.k8s.io",
    resource: "rolebindings",
    verb: "list",
};
/// SessionClaims (Insights counts everyone's only for those who may list them).
pub const SESSION_CLAIMS: Question = Question {
    group: "portico.dev",
    resource: "sessionclaims",
    verb: "list",
};
/// Events (the detail page shows a Deployment's).
pub const EVENTS: Question = Question {
    group: "",
    resource: "events",
    verb: "list",
};

type Key = (String, Vec<String>, Question);

/// Answers by user, groups and kind, each with when it was asked.
#[derive(Default)]
pub struct ReadableCache {
    entries: Mutex<HashMap<Key, (Instant, Arc<Readable>)>>,
    /// One question at a time per key: callers that find no answer while
    /// one is being asked wait for it (500 open streams whose answer just
    /// expired ask once, not 500 times).
    turns: Mutex<HashMap<Key, Arc<Turn>>>,
}

/// The turn to ask one question.
#[derive(Default)]
struct Turn {
    lock: tokio::sync::Mutex<()>,
    /// When the last question failed, and why: callers that waited for it
    /// fail with it rather than ask again one after another.
    failed: Mutex<Option<(Instant, String)>>,
}

/// How long one access review may take before the question fails.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

impl ReadableCache {
    /// Where `s` may list `kind`, among `namespaces` (those holding objects of
    /// it) unless a cluster-wide grant covers all; `client` impersonates `s`.
    /// A kept answer serves the namespaces it asked about; one new since then
    /// is asked about and added to it (which still expires on time).
    pub async fn get(
        &self,
        s: &Session,
        kind: Question,
        client: &Client,
        namespaces: BTreeSet<String>,
    ) -> Result<Arc<Readable>, kube::Error> {
        let key = (s.user.clone(), s.groups.clone(), kind);
        let ask = |namespace: Option<String>| async move {
            tokio::time::timeout(ASK_TIMEOUT, may_list(client, kind, namespace))
                .await
                .unwrap_or_else(|_| {
                    let e = format!("the API server did not answer an access review within {ASK_TIMEOUT:?}");
                    Err(kube::Error::Service(e.into()))
                })
        };
        self.answer(key, namespaces, ask).await
    }

    /// [`get`](Self::get) with the question asked by `may_list` (`None`: cluster-wide).
    async fn answer<F, Fut>(
        &self,
        key: Key,
        namespaces: BTreeSet<String>,
        may_list: F,
    ) -> Result<Arc<Readable>, kube::Error>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<bool, kube::Error>>,
    {
        let kept = |this: &Self| {
            this.fresh(&key, Instant::now())
                .filter(|(_, kept)| kept.unasked(&namespaces).is_empty())
                .map(|(_, kept)| kept)
        };
        if let Some(kept) = kept(self) {
            return Ok(kept);
        }
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            if turns.len() >= MAX_ENTRIES {
                turns.retain(|_, t| Arc::strong_count(t) > 1);
            }
            turns.entry(key.clone()).or_default().clone()
        };
        let waited_from = Instant::now();
        let _turn = turn.lock.lock().await;
        // Asked by the caller that had the turn before: its answer, or its failure.
        if let Some(kept) = kept(self) {
            return Ok(kept);
        }
        if let Some((at, why)) = turn.failed.lock().unwrap_or_else(|e| e.into_inner()).clone()
            && at >= waited_from
        {
            return Err(kube::Error::Service(why.into()));
        }
        let ask_each = |namespaces: Vec<String>| {
            futures::stream::iter(namespaces)
                .map(|ns| {
                    let asked = may_list(Some(ns.clone()));
                    async move { Ok::<_, kube::Error>((ns, asked.await?)) }
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect::<Vec<_>>()
        };
        let asked = async {
            Ok::<_, kube::Error>(match self.fresh(&key, Instant::now()) {
                Some((at, kept)) => {
                    let unasked = kept.unasked(&namespaces).into_iter().cloned().collect();
                    (at, kept.with(ask_each(unasked).await?))
                }
                None if may_list(None).await? => (Instant::now(), Readable::All),
                None => (
                    Instant::now(),
                    Readable::of(false, ask_each(namespaces.iter().cloned().collect()).await?),
                ),
            })
        };
        let failed = |why: Option<String>| {
            *turn.failed.lock().unwrap_or_else(|e| e.into_inner()) = why.map(|w| (Instant::now(), w))
        };
        let (at, answer) = match asked.await {
            Ok(asked) => {
                failed(None);
                asked
            }
            Err(e) => {
                failed(Some(e.to_string()));
                return Err(e);
            }
        };
        let answer = Arc::new(answer);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < KEEP);
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (at, answer.clone()));
        Ok(answer)
    }

    /// The kept answer for `key` and when it was first asked, if younger than [`KEEP`] at `now`.
    fn fresh(&self, key: &Key, now: Instant) -> Option<(Instant, Arc<Readable>)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, answer) = entries.get(key)?;
        (now.duration_since(*at) < KEEP).then(|| (*at, answer.clone()))
    }
}

/// One SelfSubjectAccessReview: may the client's user do what `kind` asks in `namespace` (all when `None`)?
async fn may_list(client: &Client, kind: Question, namespace: Option<String>) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(kind.group.into()),
                resource: Some(kind.resource.into()),
                verb: Some(kind.verb.into()),
                namespace,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_wide_grant_reads_everything_else_only_the_allowed_namespaces() {
        let answers = || [("team-a".to_string(), true), ("team-b".to_string(), false)];
        assert_eq!(Readable::of(true, answers()), Readable::All);
        let some = Readable::of(false, answers());
        assert!(some.has("team-a") && !some.has("team-b") && !some.has("elsewhere"));
        assert!(Readable::All.has("anything"));
    }

    #[test]
    fn a_namespace_new_since_the_answer_is_asked_about_and_added() {
        let some = Readable::of(false, [("team-a".to_string(), true), ("team-b".to_string(), false)]);
        let now: BTreeSet<String> = ["team-a", "team-b", "team-c"].map(String::from).into();
        assert_eq!(some.unasked(&now), [&"team-c".to_string()]);
        let more = some.with([("team-c".to_string(), true)]);
        assert!(more.has("team-c") && more.has("team-a") && !more.has("team-b"));
        assert!(more.unasked(&now).is_empty());
        assert!(Readable::All.unasked(&now).is_empty());
    }

    #[tokio::test]
    async fn callers_at_once_ask_once_and_a_new_namespace_is_asked_alone() {
        let cache = Arc::new(ReadableCache::default());
        let asked = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
        let key = ("alice".to_string(), vec!["dev".to_string()], DEPLOYMENTS);
        let namespaces: BTreeSet<String> = ["team-a", "team-b"].map(String::from).into();
        let ask = |asked: Arc<Mutex<Vec<Option<String>>>>| {
            move |ns: Option<String>| {
                let asked = asked.clone();
                async move {
                    asked.lock().unwrap().push(ns.clone());
                    tokio::task::yield_now().await;
                    Ok(ns.as_deref() == Some("team-a"))
                }
            }
        };
        let calls = (0..50).map(|_| {
            let (cache, key, namespaces, ask) = (cache.clone(), key.clone(), namespaces.clone(), ask(asked.clone()));
            tokio::spawn(async move { cache.answer(key, namespaces, ask).await.unwrap() })
        });
        for answer in futures::future::join_all(calls).await {
            let answer = answer.unwrap();
            assert!(answer.has("team-a") && !answer.has("team-b"));
        }
        let mut questions = asked.lock().unwrap().clone();
        questions.sort();
        assert_eq!(
            questions,
            [None, Some("team-a".to_string()), Some("team-b".to_string())],
            "50 callers at once: the cluster-wide question, then each namespace, once"
        );
        asked.lock().unwrap().clear();
        let more: BTreeSet<String> = ["team-a", "team-b", "team-c"].map(String::from).into();
        let answer = cache.answer(key, more, ask(asked.clone())).await.unwrap();
        assert!(!answer.has("team-c") && answer.has("team-a"));
        assert_eq!(
            *asked.lock().unwrap(),
            [Some("team-c".to_string())],
            "only the new namespace"
        );
    }

    #[tokio::test]
    async fn callers_waiting_on_a_question_that_fails_fail_with_it() {
        let cache = Arc::new(ReadableCache::default());
        let asked = Arc::new(Mutex::new(0));
        let key = ("alice".to_string(), vec![], DEPLOYMENTS);
        let calls = (0..20).map(|_| {
            let (cache, key, asked) = (cache.clone(), key.clone(), asked.clone());
            tokio::spawn(async move {
                let ask = move |_: Option<String>| {
                    let asked = asked.clone();
                    async move {
                        *asked.lock().unwrap() += 1;
                        tokio::task::yield_now().await;
                        Err::<bool, _>(kube::Error::Service("refused".into()))
                    }
                };
                cache.answer(key, BTreeSet::new(), ask).await
            })
        });
        for r in futures::future::join_all(calls).await {
            assert!(r.unwrap().unwrap_err().to_string().contains("refused"));
        }
        assert_eq!(
            *asked.lock().unwrap(),
            1,
            "one question for the 20 callers that came at once"
        );
    }

    #[test]
    fn answers_are_kept_per_user_groups_and_kind_for_a_while() {
        let cache = ReadableCache::default();
        let now = Instant::now();
        let key = |user: &str, groups: &[&str], kind| {
            (
                user.to_string(),
                groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
                kind,
            )
        };
        let answer = Arc::new(Readable::of(false, [("team-a".to_string(), true)]));
        cache
            .entries
            .lock()
            .unwrap()
            .insert(key("alice", &["dev"], DEPLOYMENTS), (now, answer.clone()));
        assert_eq!(
            cache.fresh(&key("alice", &["dev"], DEPLOYMENTS), now),
            Some((now, answer))
        );
        assert_eq!(
            cache.fresh(&key("alice", &["ops"], DEPLOYMENTS), now),
            None,
            "other groups"
        );
        assert_eq!(
            cache.fresh(&key("alice", &["dev"], TERMINALS), now),
            None,
            "another kind"
        );
        assert_eq!(cache.fresh(&key("bob", &["dev"], DEPLOYMENTS), now), None);
        assert_eq!(
            cache.fresh(&key("alice", &["dev"], DEPLOYMENTS), now + KEEP),
            None,
            "asked again after KEEP"
        );
    }
}
