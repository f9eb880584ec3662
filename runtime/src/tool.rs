//! Running the node's netfilter tools (`nft`, `iptables-restore`,
//! `conntrack`, …) with text on standard input, and saying precisely why
//! one failed.

use std::io::Write;
use std::process::{Command, Stdio};

/// Why a tool run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error("`{0}` is not installed")]
    Missing(String),
    /// The program ran and refused: its own words (with line numbers when
    /// it gives them).
    #[error("`{program}` failed ({status}): {stderr}")]
    Refused {
        program: String,
        status: String,
        stderr: String,
    },
    /// The program could not be run or talked to.
    #[error("cannot run `{program}`: {error}")]
    Io {
        program: String,
        error: std::io::Error,
    },
}

/// What a successful run printed.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args`, feeding `input` on standard input.
pub fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<Output, ToolError> {
    let io = |error| ToolError::Io {
        program: program.to_string(),
        error,
    };
    let child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolError::Missing(program.to_string()))
        }
        Err(e) => return Err(io(e)),
    };
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A tool that exits early closes its end: its status says why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(io)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(Output { stdout, stderr })
    } else {
        Err(ToolError::Refused {
            program: program.to_string(),
            status: out.status.to_string(),
            stderr: stderr.trim_end().to_string(),
        })
    }
}
