//! `--check`: asks nft or iptables-restore whether the text would load,
//! without loading it.

use std::io::Write;
use std::process::{Command, Stdio};

/// Result of running a checker on a ruleset.
pub enum CheckResult {
    Valid,
    /// The tool is not installed; nothing was checked.
    ToolMissing(&'static str),
    /// The tool rejected the text; its own message, with line and column.
    Invalid(String),
}

/// The command that checks one output format without committing anything.
pub fn checker(
    format: knc_compiler::back::Format,
) -> Option<(&'static str, &'static [&'static str])> {
    use knc_compiler::back::Format;
    match format {
        Format::Nft => Some(("nft", &["--check", "-f", "-"])),
        Format::Iptables => Some(("iptables-restore", &["--test", "--noflush"])),
        Format::Ip6tables => Some(("ip6tables-restore", &["--test", "--noflush"])),
        Format::Ir => None,
    }
}

/// Runs `program args` with `text` on standard input.
pub fn check(program: &'static str, args: &[&str], text: &str) -> CheckResult {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CheckResult::ToolMissing(program)
        }
        Err(e) => return CheckResult::Invalid(format!("cannot run {program}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(e) = stdin.write_all(text.as_bytes()) {
            let _ = child.wait();
            return CheckResult::Invalid(format!("cannot write to {program}: {e}"));
        }
    }
    match child.wait_with_output() {
        Ok(out) if out.status.success() => CheckResult::Valid,
        Ok(out) => CheckResult::Invalid(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => CheckResult::Invalid(format!("{program} did not finish: {e}")),
    }
}
