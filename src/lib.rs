//! Portico: a Kubernetes operator and dashboard for browser terminals,
//! templated deployments and time-limited sessions.

pub mod access;
pub mod allocator;
pub mod api;
pub mod catalog;
pub mod clusters;
pub mod compliance;
pub mod config;
pub mod controller;
/// The local cluster (the `portico-cluster` crate under `tests/cluster`).
#[cfg(feature = "dev")]
pub use portico_cluster as controlplane;
pub mod crdgen;
pub mod creator;
#[cfg(feature = "dev")]
pub mod dev;
pub mod install;
pub mod kstatus;
pub mod lifetime;
pub mod metrics;
pub mod operator;
pub mod pki;
pub mod telemetry;
pub mod tokens;
pub mod ui;
pub mod webhook;
