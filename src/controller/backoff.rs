//! The backoff of a controller's watches (pure). kube-runtime merges every
//! watch of a controller (its kind, the children it watches, the catalog)
//! into one stream with one backoff: each watch's error after an API server
//! restart grows the same delay, so with the default (0.8 s doubling to 30 s,
//! reset only after two quiet minutes) a controller with seven watches sat
//! idle for minutes. This one doubles from 100 ms to at most 2 s and starts
//! over at the first event that is not an error, so every controller resumes
//! within seconds of the API server's return.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// The first delay after an error.
const FIRST: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
const MAX: Duration = Duration::from_secs(2);

/// Capped exponential backoff for a controller's merged watch stream.
#[derive(Debug, Clone, Default)]
pub struct WatchBackoff {
    next: Option<Duration>,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next.unwrap_or(FIRST);
        self.next = Some((now * 2).min(MAX));
        Some(now)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_two_seconds_and_start_over_after_success() {
        let mut b = WatchBackoff::default();
        let first: Vec<u64> = b.by_ref().take(7).map(|d| d.as_millis() as u64).collect();
        assert_eq!(first, [100, 200, 400, 800, 1600, 2000, 2000]);
        // Seven watches failing once each after a restart cost under 8 s in all, not minutes.
        assert!(first.iter().sum::<u64>() < 8_000);
        b.reset();
        assert_eq!(b.next(), Some(FIRST));
    }
}
