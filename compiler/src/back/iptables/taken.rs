//! The chain names the [`Namer`](super::names::Namer) has given out: each
//! name's key (its kind and the 80 bits of digest it shows) with the index
//! of its owner.
//!
//! An open-addressing table of 4-byte slots probed linearly, the keys kept
//! apart in order of owner. A slot holds `owner + 1` in its low bits (as
//! many as it takes to count the slots, so any owner fits) and bits of the
//! key's hash above them, so that a probe rarely reads a key; 0 is empty.
//! At 10,000 Services × 10 it holds 125,000 names in 1 MiB of slots, and a
//! probe rarely leaves one cache line: a `HashMap<NameKey, u32>` (control
//! bytes and 24-byte buckets apart, 6 MiB) cost a trip to memory per new
//! name, about 14 ms of the emitter's time at that size. Slots are placed
//! by a hash with a random seed per table, so nobody can compute names that
//! pile into one run of slots.

use std::hash::{BuildHasher, Hash, Hasher};

use super::names::{Digest, Seeded};

/// What makes a hashed name: the first 80 bits of its digest, and its kind
/// (packed; at most 6 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NameKey {
    /// Digest bits 0..64.
    bits: u64,
    /// Digest bits 64..80, then the kind's bytes.
    rest: u64,
}

impl NameKey {
    pub fn new(kind: &str, digest: &Digest) -> NameKey {
        debug_assert!(kind.len() <= 6, "chain kind `{kind}` too long");
        let kind = kind.bytes().fold(0u64, |k, b| (k << 8) | u64::from(b));
        NameKey {
            bits: (u64::from(digest[0]) << 32) | u64::from(digest[1]),
            rest: (kind << 16) | u64::from(digest[2] >> 16),
        }
    }
}

impl Hash for NameKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.bits);
        state.write_u64(self.rest);
    }
}

/// The names given out (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Taken {
    /// `tag << shift | owner + 1`, or 0; a power of two long, at most
    /// three quarters full.
    slots: Vec<u32>,
    /// log2 of the number of slots: the bits of a slot that hold an owner.
    shift: u32,
    /// The key of each owner.
    keys: Vec<NameKey>,
    seed: Seeded,
}

/// The answer of [`Taken::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// The key was taken already, by this owner.
    Known(u32),
    /// The key is now taken, by this new owner (the number of keys taken
    /// before).
    New(u32),
}

impl Taken {
    /// A table with room for `keys` keys.
    pub fn with_capacity(keys: usize) -> Taken {
        let mut taken = Taken {
            keys: Vec::with_capacity(keys),
            ..Taken::default()
        };
        taken.resize(slots_for(keys));
        taken
    }

    /// The owner of `key`, taking it for a new owner if nobody has.
    pub fn take(&mut self, key: NameKey) -> Take {
        if self.slots.len() < slots_for(self.keys.len() + 1) {
            self.resize(2 * self.slots.len().max(8));
        }
        let (mut i, tag) = self.place(&key);
        let mask = self.slots.len() - 1;
        let owners = self.owner_mask();
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                // Fewer keys than slots, and slots fit in the low bits.
                let owner = self.keys.len() as u32;
                self.slots[i] = tag | (owner + 1);
                self.keys.push(key);
                return Take::New(owner);
            }
            let owner = (slot & owners) - 1;
            if slot & !owners == tag && self.keys[owner as usize] == key {
                return Take::Known(owner);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first slot to probe for `key`, and its tag (already in place
    /// above the owner bits).
    fn place(&self, key: &NameKey) -> (usize, u32) {
        let h = self.seed.hash_one(key);
        let tag = ((h >> 32) as u32) & !self.owner_mask();
        (h as usize & (self.slots.len() - 1), tag)
    }

    /// The bits of a slot that hold `owner + 1`.
    fn owner_mask(&self) -> u32 {
        u32::MAX.checked_shr(32 - self.shift).unwrap_or(0)
    }

    /// Rebuilds the slots, `len` of them (a power of two, at most 2^32).
    fn resize(&mut self, len: usize) {
        self.slots = vec![0; len];
        self.shift = len.trailing_zeros();
        assert!(self.shift <= 32, "at most 2^32 slots");
        let mask = len - 1;
        for (owner, key) in (1u32..).zip(&self.keys) {
            let (mut i, tag) = self.place(key);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = tag | owner;
        }
    }
}

/// Slots for `keys` keys: a power of two, at most three quarters used.
fn slots_for(keys: usize) -> usize {
    (keys + keys / 3 + 1).next_power_of_two().max(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> NameKey {
        NameKey::new("SEP", &[i, i.wrapping_mul(7), i << 16, 0, 0, 0, 0, 0])
    }

    #[test]
    fn keys_are_taken_once_and_found_again_across_growth() {
        let mut t = Taken::default();
        for i in 0..10_000 {
            assert_eq!(t.take(key(i)), Take::New(i));
        }
        assert_eq!(t.keys.len(), 10_000);
        for i in (0..10_000).rev() {
            assert_eq!(t.take(key(i)), Take::Known(i));
        }
        assert!(4 * t.keys.len() <= 3 * t.slots.len());
    }

    #[test]
    fn kind_and_all_80_bits_tell_keys_apart() {
        let d = [1, 2, 3 << 16, 4, 5, 6, 7, 8];
        let mut other = d;
        other[2] ^= 1 << 16; // bit 79
        assert_ne!(NameKey::new("SEP", &d), NameKey::new("SEP", &other));
        assert_ne!(NameKey::new("SEP", &d), NameKey::new("SVC", &d));
        other = d;
        other[2] ^= 1 << 15; // bit 80: not in a name
        other[3] ^= 1;
        assert_eq!(NameKey::new("SEP", &d), NameKey::new("SEP", &other));
        let mut t = Taken::with_capacity(4);
        assert_eq!(t.take(NameKey::new("SEP", &d)), Take::New(0));
        assert_eq!(t.take(NameKey::new("SVC", &d)), Take::New(1));
        assert_eq!(t.take(NameKey::new("SEP", &other)), Take::Known(0));
    }
}
