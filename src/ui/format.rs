//! How values read on the pages (pure): times to the second in UTC, not
//! RFC 3339 with microseconds.

use k8s_openapi::jiff::{Timestamp, Unit, tz::TimeZone};

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
    fn times_read_to_the_second_in_utc() {
        assert_eq!(when("2026-12-04T21:03:37.123456Z"), "2026-12-04 21:03:37 UTC");
        assert_eq!(when("2026-12-04T21:03:37.8Z"), "2026-12-04 21:03:38 UTC");
        assert_eq!(when("2026-12-04T22:03:37+01:00"), "2026-12-04 21:03:37 UTC");
        assert_eq!(when(""), "");
        assert_eq!(when("not yet known"), "not yet known");
    }
}
