//! How values read on the pages (pure): times to the second in UTC, not
//! RFC 3339 with microseconds; and the end an Extend cannot move.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
    jiff::{Timestamp, Unit, tz::TimeZone},
};

use crate::lifetime;

/// The maximum-lifetime end of an admitted Terminal or SessionClaim with
/// `meta` and spec durations `idle`/`max` (RFC 3339), and whether it is
/// already the end (`expires`): then an Extend cannot move it.
pub fn max_end(meta: &ObjectMeta, idle: Option<&str>, max: Option<&str>, expires: Option<Timestamp>) -> (String, bool) {
    let Some(life) = lifetime::stated(idle, max) else {
        return (String::new(), false);
    };
    let end = lifetime::max_end(meta, &life, Timestamp::now());
    (end.to_string(), expires.is_some_and(|e| e >= end))
}

/// `2026-12-04T21:03:37.123456Z` as `2026-12-04 21:03:37 UTC`; anything
/// that is not an RFC 3339 time as it is.
pub fn when(value: &str) -> String {
    let Ok(t) = value.parse::<Timestamp>() else {
        return value.to_string();
    };
    let t = t.round(Unit::Second).unwrap_or(t);
    format!("{} UTC", t.to_zoned(TimeZone::UTC).strftime("%Y-%m-%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_end_is_known_from_the_spec_and_caps_when_reached() {
        let meta: ObjectMeta =
            serde_json::from_value(serde_json::json!({"creationTimestamp": "2026-01-01T00:00:00Z"})).unwrap();
        let end: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        assert_eq!(
            max_end(&meta, Some("30m"), Some("1h"), Some(end)),
            ("2026-01-01T01:00:00Z".to_string(), true)
        );
        let idle_first: Timestamp = "2026-01-01T00:30:00Z".parse().unwrap();
        assert!(!max_end(&meta, Some("30m"), Some("1h"), Some(idle_first)).1);
        assert_eq!(max_end(&meta, None, Some("1h"), Some(end)), (String::new(), false));
    }

    #[test]
    fn times_read_to_the_second_in_utc() {
        assert_eq!(when("2026-12-04T21:03:37.123456Z"), "2026-12-04 21:03:37 UTC");
        assert_eq!(when("2026-12-04T21:03:37.8Z"), "2026-12-04 21:03:38 UTC");
        assert_eq!(when("2026-12-04T22:03:37+01:00"), "2026-12-04 21:03:37 UTC");
        assert_eq!(when(""), "");
        assert_eq!(when("not yet known"), "not yet known");
    }
}
