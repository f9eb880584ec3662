//! The cluster model: validated objects joined into Services with their
//! endpoints, plus nodes and proxy configuration.

pub mod validate;
