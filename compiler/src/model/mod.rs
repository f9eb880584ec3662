//! The cluster model.
