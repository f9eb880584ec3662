//! knc on a node: everything that touches the machine. Reading manifests
//! from disk, running `nft` / `iptables-restore` / `conntrack`, the state
//! directory and its lock, `apply`, the `reconcile` loop, the health-check
//! and metrics servers. The compiler (`knc-compiler`) stays pure; this
//! crate is its only user that has side effects.

pub mod check;
pub mod conntrack;
pub mod healthcheck;
pub mod http;
pub mod inputs;
pub mod iptables;
pub mod metrics;
pub mod nft;
pub mod node;
pub mod reconcile;
pub mod state;
pub mod sync;
pub mod tool;
pub mod write;
