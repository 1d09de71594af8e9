//! Login attempts per client, with governor's keyed limiter: only the
//! requests that try to log in (the development login's POST, the OIDC
//! callback) count, never page views; the client is the one seen through the
//! configured trusted proxies; keys idle for a minute are dropped every
//! minute, so memory follows the clients of the last minute.

use std::{
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use super::client_ip::{TrustedProxies, limit_key};

/// Login attempts a client may make per minute (at once, then one every two seconds).
pub const ATTEMPTS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(30).expect("not zero");
/// How often idle keys are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Too many login attempts from one client.
#[derive(Debug, thiserror::Error)]
#[error("Too many login attempts from your address ({client}). Wait {} seconds and try again.", self.seconds())]
pub struct TooManyAttempts {
    /// The client, as the limit sees it.
    pub client: IpAddr,
    /// When the next attempt is allowed.
    pub retry_after: Duration,
}

/// The limiter and how it finds the client.
pub struct LoginLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    proxies: TrustedProxies,
}

impl LoginLimit {
    /// A limiter of [`ATTEMPTS_PER_MINUTE`], with a task that drops idle keys
    /// while the limiter lives.
    pub fn start(proxies: TrustedProxies) -> Arc<LoginLimit> {
        let limit = Arc::new(LoginLimit {
            limiter: RateLimiter::keyed(Quota::per_minute(ATTEMPTS_PER_MINUTE)),
            proxies,
        });
        let weak: Weak<LoginLimit> = Arc::downgrade(&limit);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(limit) = weak.upgrade() else { return };
                limit.sweep();
            }
        });
        limit
    }

    /// The client of a request, through the trusted proxies.
    pub fn client(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect();
        self.proxies.client(peer, &forwarded)
    }

    /// Counts one login attempt of the request's client.
    pub fn attempt(&self, req: &HttpRequest) -> Result<(), TooManyAttempts> {
        let client = self.client(req);
        self.limiter
            .check_key(&limit_key(client))
            .map_err(|not_until| TooManyAttempts {
                client,
                retry_after: not_until.wait_time_from(governor::clock::DefaultClock::default().now()),
            })
    }

    /// Drops the keys whose state is that of a fresh client.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Clients currently remembered.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

impl TooManyAttempts {
    /// Whole seconds until the next attempt is allowed (at least one).
    pub fn seconds(&self) -> u64 {
        (self.retry_after.as_secs_f64().ceil() as u64).max(1)
    }

    /// The 429 page, with `Retry-After`.
    pub fn page(&self, state: &super::state::UiState) -> HttpResponse {
        let mut r = state.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many login attempts",
            &self.to_string(),
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&self.seconds().to_string()) {
            r.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_limited_per_client_and_idle_clients_are_forgotten() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let limit = LoginLimit::start(TrustedProxies::parse(&["127.0.0.1"]).unwrap());
            let from = |client: &str| {
                actix_web::test::TestRequest::default()
                    .peer_addr("127.0.0.1:5000".parse().unwrap())
                    .insert_header(("x-forwarded-for", client))
                    .to_http_request()
            };
            for _ in 0..ATTEMPTS_PER_MINUTE.get() {
                limit.attempt(&from("203.0.113.5")).unwrap();
            }
            let refused = limit.attempt(&from("203.0.113.5")).unwrap_err();
            assert_eq!(refused.client, "203.0.113.5".parse::<IpAddr>().unwrap());
            assert!(refused.to_string().contains("Wait 2 seconds"), "{refused}");
            limit
                .attempt(&from("203.0.113.6"))
                .expect("another client is not limited");
            assert_eq!(limit.len(), 2);
            limit.sweep();
            assert_eq!(limit.len(), 2, "both were active just now");
        });
    }
}
