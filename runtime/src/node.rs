//! A node as `apply`, `reconcile` and `cleanup` see it: the locked state
//! directory and the netfilter back end, with one operation per thing they
//! do to it.

use std::path::{Path, PathBuf};

use knc_compiler::back::nft::Transaction;
use knc_compiler::compile::{self, Compiled, Failure, NodeChoice, Settings};
use knc_compiler::ir::Ruleset;

use crate::conntrack;
use crate::nft::{Kernel, SystemKernel};
use crate::state::{Backend, StateDir, StateError};
use crate::sync::{sync_nft, SyncError, Synced};
use crate::tool::ToolError;

/// What to compile for this node.
#[derive(Debug, Clone)]
pub struct Target {
    pub paths: Vec<PathBuf>,
    pub settings: Settings,
    pub node: String,
}

impl Target {
    /// Reads the PATHs (one snapshot) and compiles them for the node.
    pub fn compile(&self) -> Result<Compiled, Failure> {
        let (files, problems) = crate::inputs::read(&self.paths);
        compile::compile(
            &files,
            problems,
            &self.settings,
            &NodeChoice::Named(self.node.clone()),
        )
    }
}

/// The node, locked for this process.
pub struct Node {
    pub state: StateDir,
    pub backend: Backend,
    kernel: SystemKernel,
    /// The input (by hash) last synced and the generation it left, for
    /// [`Node::quiet`].
    last: Option<(u64, u32)>,
    /// What this process last applied (nft), so rounds need not read it back.
    applied: Option<crate::sync::Applied>,
}

impl Node {
    /// Takes the state directory's lock (waiting a few seconds).
    pub fn open(state_dir: &Path, holder: &str, backend: Backend) -> Result<Node, StateError> {
        let state = StateDir::lock(state_dir, holder, crate::state::LOCK_WAIT)?;
        let kernel = SystemKernel {
            dir: state.path().to_path_buf(),
        };
        Ok(Node {
            state,
            backend,
            kernel,
            last: None,
            applied: None,
        })
    }

    /// The node seen read-only, for `--dry-run`: no lock taken, nothing
    /// created in the state directory.
    pub fn read_only(state_dir: &Path, backend: Backend) -> Node {
        Node {
            state: StateDir::read_only(state_dir),
            backend,
            kernel: SystemKernel {
                dir: state_dir.to_path_buf(),
            },
            last: None,
            applied: None,
        }
    }

    /// True when the input hashing to `input` was synced last and nobody
    /// has committed to the ruleset since (the kernel's generation is the
    /// one that sync left): a round can skip the sync. One netlink round
    /// trip; no listing, no record read, no compile.
    pub fn quiet(&mut self, input: u64) -> bool {
        match self.last {
            Some((hash, generation)) if hash == input => {
                self.kernel.generation().is_ok_and(|now| now == generation)
            }
            _ => false,
        }
    }

    /// Remembers that `input` was synced, leaving `synced`'s generation.
    pub fn remember(&mut self, input: u64, synced: &Synced) {
        self.last = synced.generation.map(|generation| (input, generation));
    }

    /// Forgets what was synced (after a failed round).
    pub fn forget(&mut self) {
        self.last = None;
        self.applied = None;
    }

    /// Brings the kernel to `ruleset` (see [`crate::sync`]).
    pub fn sync(&mut self, ruleset: &Ruleset, dry_run: bool) -> Result<Synced, SyncError> {
        match self.backend {
            Backend::Nft => sync_nft(
                &mut self.kernel,
                &self.state,
                &mut self.applied,
                ruleset,
                dry_run,
            ),
            Backend::Iptables => crate::iptables::sync_iptables(&self.state, ruleset, dry_run),
        }
    }

    /// Deletes the conntrack entries going from `previous` to `new` left
    /// stale.
    pub fn clean_conntrack(previous: Option<&Ruleset>, new: &Ruleset) -> conntrack::Deleted {
        match previous {
            Some(previous) => conntrack::delete(&conntrack::stale(previous, new)),
            None => conntrack::Deleted::default(),
        }
    }
}

/// What `knc cleanup` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    pub nft: bool,
    pub iptables: bool,
}

/// Removes knc's tables and chains, and forgets the record. Returns what
/// was done, one line each.
pub fn cleanup(state_dir: &Path, what: Cleanup) -> Result<Vec<String>, CleanupError> {
    let state = StateDir::lock(state_dir, "knc cleanup", crate::state::LOCK_WAIT)?;
    let mut done = Vec::new();
    if what.nft {
        let mut kernel = SystemKernel {
            dir: state.path().to_path_buf(),
        };
        match kernel.apply(&Transaction::remove()) {
            Ok(()) => done.push("removed nft tables ip knc and ip6 knc".to_string()),
            Err(ToolError::Missing(_)) => {
                done.push("nft is not installed: nothing to remove".into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    if what.iptables {
        let chains = crate::iptables::remove_all()?;
        done.push(format!(
            "removed {chains} KNC chains and their jumps (iptables, ip6tables)"
        ));
    }
    state.forget().map_err(|error| {
        CleanupError::State(StateError::Io {
            dir: state_dir.to_path_buf(),
            error,
        })
    })?;
    Ok(done)
}

/// Why cleanup stopped.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("{0}")]
    State(#[from] StateError),
    #[error("{0}")]
    Tool(#[from] ToolError),
}
