//! Portico: a Kubernetes operator and dashboard for browser terminals,
//! templated deployments and time-limited sessions.

pub mod api;
pub mod catalog;
pub mod clusters;
pub mod config;
pub mod controller;
pub mod controlplane;
pub mod crdgen;
pub mod creator;
pub mod dev;
pub mod install;
pub mod metrics;
pub mod operator;
pub mod pki;
pub mod telemetry;
pub mod ui;
pub mod webhook;
