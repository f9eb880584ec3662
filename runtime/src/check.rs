//! `knc compile --check`: asks nft or iptables-restore whether the text
//! would load, without loading it.

use knc_compiler::back::Format;

use crate::tool::{self, ToolError};

/// The command that checks one output format without committing anything.
pub fn checker(format: Format) -> Option<(&'static str, &'static [&'static str])> {
    match format {
        Format::Nft => Some(("nft", &["--check", "-f", "-"])),
        Format::Iptables => Some(("iptables-restore", &["--test", "--noflush"])),
        Format::Ip6tables => Some(("ip6tables-restore", &["--test", "--noflush"])),
        Format::Ir => None,
    }
}

/// Checks `text` as `format`; `Ok(false)` when the format has no checker.
/// A missing tool is [`ToolError::Missing`]; a rejection carries the tool's
/// own message.
pub fn check(format: Format, text: &str) -> Result<bool, ToolError> {
    match checker(format) {
        Some((program, args)) => tool::run(program, args, Some(text)).map(|_| true),
        None => Ok(false),
    }
}
