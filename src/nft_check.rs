//! `--check`: asks nft itself whether the text would load, without loading it.

use std::io::Write;
use std::process::{Command, Stdio};

/// Result of running `nft -c -f -` on a ruleset.
pub enum CheckResult {
    Valid,
    /// nft is not installed; nothing was checked.
    NftMissing,
    /// nft rejected the text; its own message, with line and column.
    Invalid(String),
}

/// Runs `nft --check -f -` with `text` on standard input. `--check` makes
/// nft validate against the kernel without committing anything.
pub fn check(text: &str) -> CheckResult {
    let child = Command::new("nft")
        .args(["--check", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CheckResult::NftMissing,
        Err(e) => return CheckResult::Invalid(format!("cannot run nft: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(e) = stdin.write_all(text.as_bytes()) {
            let _ = child.wait();
            return CheckResult::Invalid(format!("cannot write to nft: {e}"));
        }
    }
    match child.wait_with_output() {
        Ok(out) if out.status.success() => CheckResult::Valid,
        Ok(out) => CheckResult::Invalid(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => CheckResult::Invalid(format!("nft did not finish: {e}")),
    }
}
