//! nftables on this node: the generation counter, a summary of knc's live
//! tables to compare with what knc applied, and the [`Kernel`] that runs
//! transactions (the real one through `nft`, and an in-memory one for
//! tests of the reconcile logic without root).

pub mod generation;
mod kernel;
mod live;

pub use kernel::{FakeKernel, Kernel, SystemKernel};
pub use live::{expected, Summary};
