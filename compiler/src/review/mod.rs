//! Semantic review of a change: what changes for traffic between the
//! rulesets of two sets of manifests (`knc diff`).
//!
//! [`review`] pairs OLD's and NEW's rulesets by node and each node's
//! Service ports by identity, and lists per port the frontends added or
//! removed, backends added or removed and changes of their probability
//! (for the backend sets some frontend routes to), frontends that start or
//! stop refusing a source class, traffic policy and masquerade changes per
//! source class, source ranges, session affinity and health-check ports;
//! plus node-wide settings. The model ([`model`]) is what the three
//! renderers ([`text`], [`markdown`], [`json`]) print; it is built from the
//! IR alone, so it says what every back end does.

mod compare;
pub mod json;
pub mod markdown;
pub mod model;
mod phrase;
pub mod text;

pub use compare::{compare_nodes, review};
pub use model::Review;
