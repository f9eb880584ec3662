//! Talking to nftables on this node: the generation counter, and running
//! `nft` (placeholder, filled by the apply commit).

pub mod generation;
