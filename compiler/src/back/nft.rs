//! nftables text back end.
