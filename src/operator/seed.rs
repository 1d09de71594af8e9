//! The random seed behind templates' `password(label)`: 32 bytes in a Secret
//! the operator creates once and every replica reads.

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};

use crate::config::NamespacedName;

/// Reads the seed, creating the Secret when it does not exist.
pub async fn load(client: &Client, at: &NamespacedName) -> Result<Vec<u8>, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &at.namespace);
    let read = |s: Secret| {
        s.data
            .and_then(|d| d.get("seed").map(|b| b.0.clone()))
            .filter(|b| b.len() >= 32)
    };
    if let Some(seed) = api.get_opt(&at.name).await?.and_then(read) {
        return Ok(seed);
    }
    let seed: [u8; 32] = rand::random();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(at.name.clone()),
            namespace: Some(at.namespace.clone()),
            labels: Some(BTreeMap::from([("app.kubernetes.io/part-of".into(), "portico".into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("seed".to_string(), ByteString(seed.to_vec()))])),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(seed.to_vec()),
        // Another replica was first: use its seed.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            Ok(api.get(&at.name).await.map(read)?.unwrap_or_else(|| seed.to_vec()))
        }
        Err(e) => Err(e),
    }
}
