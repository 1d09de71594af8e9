//! The reconcilers, one a kind, and what they share.

pub mod lifetime;
