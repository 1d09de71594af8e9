//! The browser's session: one `__Host-` cookie, encrypted and authenticated
//! (AES-256-GCM, the cookie crate's private jar), holding only the user, the
//! groups, the SessionClaim's name and the expiry; plus the short-lived login
//! cookie for the OIDC round trip, the pre-session cookie of the development
//! login's CSRF token, and CSRF tokens derived from the session.

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite, time::Duration as CookieDuration};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-portico";
/// The cookie carrying state, nonce and PKCE verifier during login.
pub const LOGIN_COOKIE: &str = "__Host-portico-login";

/// The cookie holding the CSRF token of forms sent before any session (the development login).
pub const PRE_SESSION_COOKIE: &str = "__Host-portico-csrf";

/// What the pre-session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreSession {
    /// The token the login form must send back.
    pub token: String,
}

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Kubernetes user name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// The SessionClaim backing this login.
    pub claim: String,
    /// Unix time after which the cookie is void.
    pub exp: i64,
}

/// What the login cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginState {
    /// OAuth `state`.
    pub state: String,
    /// OIDC `nonce`.
    pub nonce: String,
    /// PKCE verifier.
    pub verifier: String,
}

fn cookie(name: &'static str, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// Encrypts `value` into a cookie named `name`.
pub fn seal<T: Serialize>(key: &Key, name: &'static str, value: &T, max_age: i64) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(cookie(name, serde_json::to_string(value).expect("serializes"), max_age));
    jar.get(name).expect("just added").clone()
}

/// Decrypts and checks a cookie's value; `None` when forged, tampered or garbage.
pub fn open<T: for<'de> Deserialize<'de>>(key: &Key, name: &'static str, raw: &Cookie<'_>) -> Option<T> {
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(name, raw.value().to_string()));
    let plain = jar.private(key).get(name)?;
    serde_json::from_str(plain.value()).ok()
}

/// A cookie that deletes `name` in the browser.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), 0);
    c.make_removal();
    c
}

/// The CSRF token of a session: derived, so nothing is stored.
pub fn csrf_token(key: &Key, session: &Session) -> String {
    let mut h = Sha256::new();
    h.update(key.signing());
    h.update(b"csrf\0");
    h.update(session.claim.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Compares a submitted CSRF token in constant time.
pub fn csrf_ok(key: &Key, session: &Session, submitted: &str) -> bool {
    tokens_match(&csrf_token(key, session), submitted)
}

/// Whether a submitted token is the expected one, compared in constant time.
pub fn tokens_match(expected: &str, submitted: &str) -> bool {
    expected.as_bytes().ct_eq(submitted.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            user: "alice".into(),
            groups: vec!["developers".into()],
            claim: "ui-1".into(),
            exp: 99,
        }
    }

    #[test]
    fn sealed_sessions_open_only_with_their_key_and_untampered() {
        let key = Key::generate();
        let c = seal(&key, SESSION_COOKIE, &session(), 3600);
        assert!(c.secure().unwrap() && c.http_only().unwrap());
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert!(!c.value().contains("alice"), "encrypted, not just signed");
        assert_eq!(open::<Session>(&key, SESSION_COOKIE, &c), Some(session()));
        assert_eq!(open::<Session>(&Key::generate(), SESSION_COOKIE, &c), None);
        let mut tampered = c.value().to_string();
        tampered.replace_range(10..11, if &tampered[10..11] == "A" { "B" } else { "A" });
        assert_eq!(
            open::<Session>(&key, SESSION_COOKIE, &Cookie::new(SESSION_COOKIE, tampered)),
            None
        );
        let forged = Cookie::new(SESSION_COOKIE, serde_json::to_string(&session()).unwrap());
        assert_eq!(open::<Session>(&key, SESSION_COOKIE, &forged), None);
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let key = Key::generate();
        let s = session();
        let t = csrf_token(&key, &s);
        assert!(csrf_ok(&key, &s, &t));
        assert!(!csrf_ok(&key, &s, "0000"));
        let other = Session {
            claim: "ui-2".into(),
            ..session()
        };
        assert!(!csrf_ok(&key, &other, &t));
    }
}
