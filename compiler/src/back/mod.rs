//! Back ends: each turns an [`crate::ir::Ruleset`] into one output format.

pub mod nft;

use crate::ir::Ruleset;

/// The output formats of `knc compile --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `nft -f` text.
    Nft,
    /// The IR as JSON.
    Ir,
}

impl Format {
    /// File extension used by `--out-dir`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Nft => "nft",
            Format::Ir => "ir.json",
        }
    }
}

/// Renders the ruleset in `format`.
pub fn emit(format: Format, ruleset: &Ruleset) -> String {
    match format {
        Format::Nft => nft::emit(ruleset),
        Format::Ir => {
            let mut text = serde_json::to_string_pretty(ruleset)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        }
    }
}
