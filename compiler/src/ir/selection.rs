//! Consistent backend selection by source address: the slot table every
//! emitter writes and the hash that picks a slot, defined once here so
//! that every node compiled from the same inputs, every back end and
//! `knc explain` agree on which client reaches which backend.
//!
//! A [`Selection::SourceHash`](super::Selection::SourceHash) backend set is
//! a table of [`table_size`] slots. The kernel hashes the client's source
//! address with Linux's `jhash` and [`SEED`] into a slot ([`slot_of`]); the
//! slot names a backend ([`slot_table`]). Each slot goes to the backend
//! with the highest score for that slot (rendezvous hashing), the score a
//! SHA-256 of the slot number and the backend's address and port. So
//! removing a backend moves exactly the slots it had, and only them, to
//! other backends, and adding one takes slots only from others: clients of
//! the backends that stay keep them. The table size depends only on how
//! many backends there are, in three steps; crossing a step reshuffles
//! clients once.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::Backend;

/// The seed of the source-address hash: fixed, so every node hashes a
/// client alike (nft `jhash … seed 0x6b6e6321`, "knc!").
pub const SEED: u32 = 0x6b6e_6321;

/// Slots of the source-hash table of a back end whose hash match takes
/// at most 32 slots (iptables' `-m cluster`, whose slot mask is 32 bits):
/// coarser shares, and at most 32 backends of a set reached.
pub const SMALL_TABLE_SIZE: u32 = 32;

/// Slots of a source-hash table for `backends` backends: 251 up to 31
/// backends, 1021 up to 127, 4093 beyond (primes, at least 8 slots a
/// backend until the last step, so shares stay within a few percent).
pub fn table_size(backends: usize) -> u32 {
    match backends {
        0..=31 => 251,
        32..=127 => 1021,
        _ => 4093,
    }
}

/// For each slot of the table of [`table_size`] slots, the index in
/// `backends` of the backend it names: see [`slot_table_of`].
pub fn slot_table(backends: &[Backend]) -> Vec<u32> {
    slot_table_of(backends, table_size(backends.len()))
}

/// For each of `size` slots, the index in `backends` of the backend it
/// names: the backend with the highest rendezvous score for the slot,
/// weighted by [`Backend::weight`]. Empty when `backends` is. (The
/// iptables back end, limited to 32 slots, uses it with its own size.)
pub fn slot_table_of(backends: &[Backend], size: u32) -> Vec<u32> {
    if backends.is_empty() {
        return Vec::new();
    }
    let equal = backends.iter().all(|b| b.weight == backends[0].weight);
    (0..size)
        .map(|slot| {
            let mut best = (0usize, f64::NEG_INFINITY, 0u64);
            for (i, backend) in backends.iter().enumerate() {
                let h = score(slot, backend);
                // Equal weights compare the hashes themselves (exact);
                // unequal ones the weighted score -w / ln(u), u in (0, 1).
                let weighted = if equal {
                    0.0
                } else {
                    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                    -f64::from(backend.weight.max(1)) / u.ln()
                };
                if (weighted, h) > (best.1, best.2) {
                    best = (i, weighted, h);
                }
            }
            best.0 as u32
        })
        .collect()
}

/// The rendezvous score of `backend` for `slot`: the first 8 bytes of
/// SHA-256 over a tag, the slot, the address and the port.
fn score(slot: u32, backend: &Backend) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"knc-slot");
    hasher.update(slot.to_be_bytes());
    match backend.address {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    hasher.update(backend.port.to_be_bytes());
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

/// The slot the kernel picks for a client at `source` in a table of
/// `size` slots: nft's `jhash ip saddr mod size seed SEED`, which hashes
/// the address's bytes as they are in the packet and scales the hash into
/// `0..size` (`(hash * size) >> 32`).
pub fn slot_of(source: IpAddr, size: u32) -> u32 {
    let hash = match source {
        IpAddr::V4(v4) => jhash(&v4.octets(), SEED),
        IpAddr::V6(v6) => jhash(&v6.octets(), SEED),
    };
    ((u64::from(hash) * u64::from(size)) >> 32) as u32
}

/// Linux's `jhash()` (Bob Jenkins' lookup3) over `key`, words read little
/// endian as on the x86 and arm64 nodes knc runs on.
fn jhash(key: &[u8], initval: u32) -> u32 {
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let word = |bytes: &[u8]| {
        let mut padded = [0u8; 4];
        padded[..bytes.len()].copy_from_slice(bytes);
        u32::from_le_bytes(padded)
    };
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(word(&rest[8..]));
    }
    final_mix(&mut a, &mut b, &mut c);
    c
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u8) -> Vec<Backend> {
        (1..=n)
            .map(|i| Backend {
                address: IpAddr::from([10, 244, 1, i]),
                port: 8080,
                weight: 1,
            })
            .collect()
    }

    /// Removing a backend moves exactly its slots; every other slot keeps
    /// its backend.
    #[test]
    fn removing_a_backend_moves_only_its_slots() {
        let all = backends(4);
        let before = slot_table(&all);
        let fewer: Vec<Backend> = all.iter().filter(|b| b != &&all[2]).cloned().collect();
        let after = slot_table(&fewer);
        assert_eq!(before.len(), after.len());
        for (slot, (&was, &is)) in before.iter().zip(&after).enumerate() {
            let was = &all[was as usize];
            let is = &fewer[is as usize];
            if was != &all[2] {
                assert_eq!(was, is, "slot {slot} moved from a backend that stayed");
            }
        }
    }

    /// Every backend gets a fair share (within a third of the mean).
    #[test]
    fn shares_are_even() {
        let table = slot_table(&backends(4));
        for i in 0..4 {
            let n = table.iter().filter(|&&b| b == i).count();
            assert!((42..=84).contains(&n), "backend {i}: {n} of 251 slots");
        }
    }

    /// Heavier backends get more slots.
    #[test]
    fn weights_are_honoured() {
        let mut set = backends(2);
        set[1].weight = 3;
        let table = slot_table(&set);
        let heavy = table.iter().filter(|&&b| b == 1).count();
        assert!((150..=220).contains(&heavy), "{heavy} of 251 slots");
    }

    /// lookup3's published check values (`hashlittle`, which `jhash`
    /// equals on little-endian machines).
    #[test]
    fn jhash_matches_lookup3() {
        assert_eq!(jhash(b"", 0), 0xdeadbeef);
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x17770551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd628161);
    }

    #[test]
    fn slots_are_in_range() {
        for i in 0..=255u8 {
            assert!(slot_of(IpAddr::from([10, 0, 0, i]), 251) < 251);
        }
    }
}
