//! Running nft transactions: [`SystemKernel`] through the `nft` tool and
//! netlink, [`FakeKernel`] in memory with the compiler's [`Fake`], so the
//! reconcile logic can be tested without root.

use std::path::PathBuf;

use knc_compiler::back::nft::{Fake, TableFamily, Transaction, TABLE};

use super::live::{add_listing, expected, Summary};
use crate::tool::{self, ToolError};

/// The node's nftables as knc uses it.
pub trait Kernel {
    /// The ruleset generation (bumped by every commit, anyone's).
    fn generation(&mut self) -> std::io::Result<u32>;
    /// What knc's tables hold now (empty when they do not exist).
    fn live(&mut self) -> Result<Summary, ToolError>;
    /// Asks whether `transaction` would commit, committing nothing.
    fn check(&mut self, transaction: &Transaction) -> Result<(), ToolError>;
    /// Commits `transaction`, all or nothing.
    fn apply(&mut self, transaction: &Transaction) -> Result<(), ToolError>;
}

/// The real kernel: `nft -f FILE` with the transaction written whole to a
/// file first (a knc killed mid-apply cannot hand nft half a transaction),
/// `nft -j list table`, and the generation over netlink.
pub struct SystemKernel {
    /// Where transaction files are written (the state directory).
    pub dir: PathBuf,
}

impl SystemKernel {
    fn run_file(&self, check: bool, transaction: &Transaction) -> Result<(), ToolError> {
        let path = self.dir.join("transaction.nft");
        crate::write::atomically(&path, transaction.render().as_bytes()).map_err(|error| {
            ToolError::Io {
                program: "nft".into(),
                error,
            }
        })?;
        let path = path.to_string_lossy().into_owned();
        let args: &[&str] = if check {
            &["--check", "-f", &path]
        } else {
            &["-f", &path]
        };
        tool::run("nft", args, None).map(|_| ())
    }
}

impl Kernel for SystemKernel {
    fn generation(&mut self) -> std::io::Result<u32> {
        super::generation::generation()
    }

    fn live(&mut self) -> Result<Summary, ToolError> {
        let mut summary = Summary::default();
        for family in [TableFamily::Ip, TableFamily::Ip6] {
            match tool::run(
                "nft",
                &["-j", "list", "table", family.as_str(), TABLE],
                None,
            ) {
                Ok(out) => {
                    add_listing(&mut summary, &out.stdout).map_err(|stderr| ToolError::Refused {
                        program: "nft".into(),
                        status: "unreadable listing".into(),
                        stderr,
                    })?
                }
                Err(ToolError::Refused { stderr, .. })
                    if stderr.contains("No such file or directory") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }

    fn check(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.run_file(true, transaction)
    }

    fn apply(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.run_file(false, transaction)
    }
}

/// An in-memory kernel: the compiler's [`Fake`] plus a generation counter.
#[derive(Debug, Default)]
pub struct FakeKernel {
    pub fake: Fake,
    pub generation: u32,
    /// Transactions committed, for assertions.
    pub applied: Vec<Transaction>,
}

impl FakeKernel {
    /// Someone else changed the ruleset: bump the generation.
    pub fn touched(&mut self) {
        self.generation += 1;
    }
}

impl Kernel for FakeKernel {
    fn generation(&mut self) -> std::io::Result<u32> {
        Ok(self.generation)
    }

    fn live(&mut self) -> Result<Summary, ToolError> {
        Ok(expected(&self.fake.tables()))
    }

    fn check(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.fake
            .clone()
            .apply(transaction)
            .map_err(|stderr| refused(&stderr))
    }

    fn apply(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.fake
            .apply(transaction)
            .map_err(|stderr| refused(&stderr))?;
        self.generation += 1;
        self.applied.push(transaction.clone());
        Ok(())
    }
}

fn refused(stderr: &str) -> ToolError {
    ToolError::Refused {
        program: "nft (fake)".into(),
        status: "exit status: 1".into(),
        stderr: stderr.to_string(),
    }
}
