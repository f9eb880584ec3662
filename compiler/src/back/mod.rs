//! Back ends: each turns an [`crate::ir::Ruleset`] into one output format.

pub mod iptables;
pub mod nft;

use crate::ir::{Family, Ruleset};

/// The output formats of `knc compile --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `nft -f` text.
    Nft,
    /// `iptables-restore` input (IPv4).
    Iptables,
    /// `ip6tables-restore` input (IPv6).
    Ip6tables,
    /// The IR as JSON.
    Ir,
}

impl Format {
    /// File extension used by `--out-dir`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Nft => "nft",
            Format::Iptables => "iptables",
            Format::Ip6tables => "ip6tables",
            Format::Ir => "ir.json",
        }
    }
}

/// Renders the ruleset in `format`.
pub fn emit(format: Format, ruleset: &Ruleset) -> String {
    match format {
        Format::Nft => nft::emit(ruleset),
        Format::Iptables => iptables::emit(ruleset, Family::Ipv4),
        Format::Ip6tables => iptables::emit(ruleset, Family::Ipv6),
        Format::Ir => {
            let mut text = serde_json::to_string_pretty(ruleset)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        }
    }
}
