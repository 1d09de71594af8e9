//! Reading an AdmissionReview body (pure). The JSON parser stops at 128
//! levels of nesting; a deeper object (say, parameters nested 150 levels)
//! would otherwise fail to parse and reach the user as "rejected our request
//! for an unknown reason". The nesting is measured first, and an object
//! deeper than [`MAX_OBJECT_DEPTH`] is refused with a message saying so.

use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionReview},
};
use serde::Deserialize;

/// How deep a Portico object may nest (objects and arrays), counted from
/// the object itself; real parameters use a handful of levels.
pub const MAX_OBJECT_DEPTH: usize = 64;
/// The levels an AdmissionReview wraps around the object (review, request, object).
const ENVELOPE_DEPTH: usize = 3;

/// A body that cannot be read as an admission request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Nested deeper than Portico accepts; the request's UID is known, so the
    /// API server gets a proper refusal.
    #[error(
        "this object is nested {depth} levels deep; Portico accepts at most {MAX_OBJECT_DEPTH} levels \
         (objects within objects or arrays); flatten spec.parameters"
    )]
    TooDeep {
        /// The request's UID.
        uid: String,
        /// The object's nesting depth.
        depth: usize,
    },
    /// Not an AdmissionReview at all.
    #[error("not an AdmissionReview: {0}")]
    Malformed(String),
}

/// The deepest nesting of objects and arrays in a JSON text, strings skipped.
pub fn depth(json: &[u8]) -> usize {
    let (mut level, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                level += 1;
                deepest = deepest.max(level);
            }
            b'}' | b']' => level = level.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[derive(Deserialize)]
struct UidOnly {
    request: UidRequest,
}

#[derive(Deserialize)]
struct UidRequest {
    uid: String,
}

/// Decodes a body into an admission request, refusing objects nested too deep.
pub fn decode(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, DecodeError> {
    let nesting = depth(body).saturating_sub(ENVELOPE_DEPTH);
    if nesting > MAX_OBJECT_DEPTH {
        // Unknown fields are skipped without recursion, so the UID is readable at any depth.
        let uid = serde_json::from_slice::<UidOnly>(body)
            .map_err(|e| DecodeError::Malformed(e.to_string()))?
            .request
            .uid;
        return Err(DecodeError::TooDeep { uid, depth: nesting });
    }
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    review.try_into().map_err(|e| DecodeError::Malformed(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    fn review(parameters: &str) -> String {
        let head = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-42",
                "kind": {"group": "portico.dev", "version": "v1alpha1", "kind": "Deployment"},
                "resource": {"group": "portico.dev", "version": "v1alpha1", "resource": "deployments"},
                "namespace": "team-a", "operation": "CREATE", "userInfo": {"username": "alice"},
                "object": {"apiVersion": "portico.dev/v1alpha1", "kind": "Deployment",
                           "metadata": {"name": "d"}, "spec": {"template": {"name": "webapp"}, "parameters": {"x": "PARAMS"}}}
            }
        })
        .to_string();
        head.replace("\"PARAMS\"", parameters)
    }

    #[test]
    fn depth_counts_objects_and_arrays_but_not_strings() {
        assert_eq!(depth(b"1"), 0);
        assert_eq!(depth(br#"{"a": [1, {"b": "[[[{{"}]}"#), 3);
        assert_eq!(depth(br#"{"a": "\"[["}"#), 1);
        assert_eq!(depth(nested(400).as_bytes()), 400);
    }

    #[test]
    fn a_shallow_review_decodes() {
        let req = decode(review("[1, 2]").as_bytes()).unwrap();
        assert_eq!(req.uid, "u-42");
    }

    #[test]
    fn deep_parameters_are_refused_with_the_limit_and_the_uid() {
        for levels in [150, 400, 5000] {
            match decode(review(&nested(levels)).as_bytes()) {
                Err(e @ DecodeError::TooDeep { .. }) => {
                    let DecodeError::TooDeep { uid, depth } = &e else {
                        unreachable!()
                    };
                    assert_eq!(uid, "u-42");
                    assert!(*depth >= levels, "{depth}");
                    assert!(e.to_string().contains("at most 64 levels"), "{e}");
                }
                other => panic!("{levels} levels: {other:?}"),
            }
        }
    }
}
