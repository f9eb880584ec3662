//! Semantic checks on loaded objects (to be written).

use crate::front::{Diagnostic, Loaded};

/// Every semantic problem in the loaded objects, located at the field.
pub fn validate(_loaded: &Loaded) -> Vec<Diagnostic> {
    Vec::new()
}
