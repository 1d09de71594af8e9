//! The creator of an object, as the webhook records it in
//! `portico.dev/created-by`: the requesting user's name and groups, as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::keys::{CREATED_BY, UPDATED_BY};

/// Who created an object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Creator {
    /// User name, as the API server authenticated it.
    pub user: String,
    /// The user's groups at creation.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The annotation is missing or unreadable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CreatorError {
    /// No `portico.dev/created-by` annotation.
    #[error(
        "the object has no {CREATED_BY} annotation: it was created while Portico's admission webhook was not active, so Portico will not act on it; delete it and create it again"
    )]
    Missing,
    /// The annotation is not the JSON the webhook writes.
    #[error("the {CREATED_BY} annotation is not valid: {0}")]
    Invalid(String),
}

impl Creator {
    /// Reads the creator from an object's annotations.
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Result<Creator, CreatorError> {
        let raw = annotations
            .and_then(|a| a.get(CREATED_BY))
            .ok_or(CreatorError::Missing)?;
        Creator::parse(raw)
    }

    /// Who last changed a Deployment's spec (`portico.dev/updated-by`), when recorded.
    pub fn updater(annotations: Option<&BTreeMap<String, String>>) -> Option<Creator> {
        Creator::parse(annotations?.get(UPDATED_BY)?).ok()
    }

    /// Parses an annotation value the webhook wrote.
    pub fn parse(raw: &str) -> Result<Creator, CreatorError> {
        let c: Creator = serde_json::from_str(raw).map_err(|e| CreatorError::Invalid(e.to_string()))?;
        if c.user.is_empty() {
            return Err(CreatorError::Invalid("empty user".into()));
        }
        Ok(c)
    }

    /// The annotation value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("a creator serializes")
    }

    /// A label-safe hash of the user name (`portico.dev/user-hash`).
    pub fn user_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(&Sha256::digest(self.user.as_bytes())[..16])
    }

    /// Whether the creator is in any of `groups`.
    pub fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// The creator's user name of any object, for log lines and lists ("" when unknown).
pub fn creator_name<K: kube::Resource>(obj: &K) -> String {
    Creator::from_annotations(obj.meta().annotations.as_ref())
        .map(|c| c.user)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_annotation() {
        let c = Creator {
            user: "alice".into(),
            groups: vec!["developers".into()],
        };
        let ann = BTreeMap::from([(CREATED_BY.to_string(), c.to_annotation())]);
        assert_eq!(Creator::from_annotations(Some(&ann)).unwrap(), c);
        assert!(c.in_any(&["ops".into(), "developers".into()]));
        assert!(!c.in_any(&["ops".into()]));
    }

    #[test]
    fn missing_and_garbage_are_errors() {
        assert_eq!(Creator::from_annotations(None), Err(CreatorError::Missing));
        let ann = BTreeMap::from([(CREATED_BY.to_string(), "alice".to_string())]);
        assert!(matches!(
            Creator::from_annotations(Some(&ann)),
            Err(CreatorError::Invalid(_))
        ));
        let ann = BTreeMap::from([(CREATED_BY.to_string(), r#"{"user":""}"#.to_string())]);
        assert!(matches!(
            Creator::from_annotations(Some(&ann)),
            Err(CreatorError::Invalid(_))
        ));
    }
}
