//! Back ends: each turns an [`crate::ir::Ruleset`] into one output format.

pub mod iptables;
pub mod nft;
