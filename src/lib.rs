//! Portico: a Kubernetes operator and dashboard for browser terminals,
//! templated deployments and time-limited sessions.

pub mod api;
pub mod config;
pub mod controlplane;
pub mod crdgen;
pub mod dev;
pub mod install;
pub mod pki;
