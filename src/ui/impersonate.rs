//! Clients acting as a user by impersonation (the user and their groups),
//! from one identity of the dashboard in one cluster. Made once per user
//! and groups and kept, a bounded number, so pages reuse connections
//! instead of a TLS handshake each.

use std::{collections::HashMap, sync::Mutex};

use kube::Client;

use super::cookies::Session;

/// Impersonating clients kept at most (then they are made afresh).
pub const MAX_USER_CLIENTS: usize = 1000;

/// The dashboard's identity in one cluster, and the clients impersonating users with it.
pub struct Impersonator {
    base: kube::Config,
    users: Mutex<HashMap<(String, Vec<String>), Client>>,
}

impl Impersonator {
    /// Impersonates with the identity of `base`.
    pub fn new(base: kube::Config) -> Impersonator {
        Impersonator {
            base,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// The dashboard's own configuration for the cluster.
    pub fn base(&self) -> &kube::Config {
        &self.base
    }

    /// A client impersonating the user and groups of `s`.
    pub fn client(&self, s: &Session) -> Result<Client, kube::Error> {
        let key = (s.user.clone(), s.groups.clone());
        if let Some(c) = self.users.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let client = Client::try_from(as_user(&self.base, s))?;
        let mut users = self.users.lock().unwrap();
        if users.len() >= MAX_USER_CLIENTS {
            users.clear();
        }
        users.insert(key, client.clone());
        Ok(client)
    }
}

/// `base` impersonating the user and groups of `s` (pure).
pub fn as_user(base: &kube::Config, s: &Session) -> kube::Config {
    let mut c = base.clone();
    c.auth_info.impersonate = Some(s.user.clone());
    c.auth_info.impersonate_groups = Some(s.groups.clone());
    c
}
