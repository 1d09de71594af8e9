//! Waiting in tests: through a watch (never by sleeping), bounded, and
//! failing with what did not happen and the object as it is now; and
//! reading what the API server refused.

use std::{fmt::Debug, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, Resource, runtime::wait::await_condition};
use serde::de::DeserializeOwned;

/// How long a test waits for what it expects before it fails.
pub const WITHIN: Duration = Duration::from_secs(90);

/// Waits until `cond` holds for object `name` (`None`: it does not exist);
/// returns the object then.
pub async fn until<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    cond: impl Fn(Option<&K>) -> bool + Send + 'static,
) -> Option<K>
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + 'static,
{
    match tokio::time::timeout(WITHIN, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(o)) => o,
        other => panic!(
            "{name}: {what} did not happen within {WITHIN:?}: {other:?}; now {:?}",
            api.get_opt(name).await
        ),
    }
}

/// Waits until object `name` exists and `cond` holds for it.
pub async fn present<K>(api: &Api<K>, name: &str, what: &str, cond: impl Fn(&K) -> bool + Send + 'static) -> K
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + 'static,
{
    until(api, name, what, move |o: Option<&K>| o.is_some_and(&cond))
        .await
        .expect("the object is there")
}

/// Waits until object `name` is gone.
pub async fn gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + 'static,
{
    until(api, name, "its deletion", |o: Option<&K>| o.is_none()).await;
}

/// Whether `conditions` hold `Ready=True`.
pub fn ready(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The API server's refusal of a call: its code and message.
pub fn refused<T: Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
