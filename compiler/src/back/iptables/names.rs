//! Chain names and comments: the only places where strings from manifests
//! reach the iptables text.
//!
//! * Chain names never contain input text: they are `KNC-<KIND>-` followed by
//!   16 base32 characters of a SHA-256 digest of an identity string (24
//!   characters, under iptables' 28), like kube-proxy's `KUBE-SVC-…`. The
//!   identity strings length-prefix every field, so `a/b` + `c` and `a` +
//!   `b/c` cannot meet. Eighty bits make accidental collisions negligible,
//!   but a determined attacker could search for one (about 2^40 hashes), so
//!   the [`Namer`] detects collisions and rehashes the later identity: two
//!   different chains never share a name, whatever the manifests say.
//! * Comments are sanitised by [`comment`]: every character outside
//!   `[a-z0-9./:_-]` becomes `_`, and the result is truncated; the emitter
//!   wraps it in double quotes. No quote, backslash, space or newline taken
//!   from input can reach the ruleset text.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use sha2::block_api::compress256;

use super::restore::{ChainId, Table};
use super::taken::{NameKey, Take, Taken};
use crate::text::push_decimal;

/// Longest chain name iptables accepts (`XT_EXTENSION_MAXNAMELEN` - 1).
pub(crate) const NAME_MAX: usize = 28;

/// A chain name, stored inline (no allocation, `Copy`): knc's names are
/// `KNC-<KIND>-` + 16 characters, or a fixed one like `KNC-SERVICES`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name {
    len: u8,
    /// ASCII; the bytes past `len` are zero, so the derived `Eq` holds.
    bytes: [u8; NAME_MAX],
}

impl Name {
    /// `text` as a chain name; `None` when it is longer than iptables
    /// allows (no such chain can exist).
    pub fn new(text: &str) -> Option<Name> {
        let mut bytes = [0u8; NAME_MAX];
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(Name {
            len: text.len() as u8,
            bytes,
        })
    }

    /// A fixed name of knc's own (`KNC-SERVICES`, …).
    ///
    /// # Panics
    ///
    /// When `text` is too long for iptables: a bug in knc.
    pub fn fixed(text: &str) -> Name {
        Name::new(text).expect("fixed chain names fit in 28 bytes")
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("names are ASCII")
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.bytes[..usize::from(self.len)]);
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// The hasher of knc's chain-name maps: a folded multiply over 8-byte
/// words, seeded per map from the standard library's random keys (so
/// nobody can precompute names that pile into one bucket). Much cheaper
/// than SipHash on 24-byte names, and nothing depends on iteration order.
#[derive(Debug, Clone)]
pub(crate) struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        Seeded(RandomState::new().hash_one(0u64))
    }
}

impl BuildHasher for Seeded {
    type Hasher = Folded;
    fn build_hasher(&self) -> Folded {
        Folded(self.0)
    }
}

#[derive(Debug)]
pub(crate) struct Folded(u64);

impl Hasher for Folded {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        let m = u128::from(self.0 ^ word) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hands out collision-free, deterministic chain names, and declares each
/// chain the first time its name is given out.
#[derive(Debug, Default)]
pub(crate) struct Namer {
    /// The names given out, each with the index in `owners` of the identity
    /// it was given to.
    taken: Taken,
    /// Per name given out: the SHA-256 of the `kind\0identity` it was given
    /// to, and its chain. Two identities are taken for the same when their
    /// full 256-bit digests are equal (finding two that are would break
    /// SHA-256 itself; the 80 bits in a name are what an attacker can
    /// search).
    owners: Vec<Owner>,
    /// Reused buffers for `kind\0identity`.
    scratch: Identity,
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    digest: Digest,
    chain: ChainId,
}

/// A chain an identity names, and whether this is the first time it was
/// asked for (the caller then has to fill the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub chain: ChainId,
    pub fresh: bool,
}

impl Namer {
    /// A namer with room for about `names` names.
    pub fn with_capacity(names: usize) -> Namer {
        Namer {
            taken: Taken::with_capacity(names),
            owners: Vec::with_capacity(names),
            scratch: Identity::default(),
        }
    }

    /// The chain of `table` named for the identity `fields` writes (in a
    /// reused buffer) under `kind` (`SVC`, `SEP`, …), declared in `table`
    /// the first time. The same identity always gets the same name; a
    /// different identity whose digest collides gets the digest of
    /// `kind\0identity\0<counter>` instead. A namer serves one table per
    /// kind (its chain ids are that table's); `kind` has at most 6 bytes.
    pub fn claim(
        &mut self,
        table: &mut Table,
        kind: &str,
        fields: impl FnOnce(&mut Identity),
    ) -> Claim {
        // The hashed text, `kind\0identity`, is written in one buffer and
        // digested in one call.
        let id = &mut self.scratch;
        id.text.clear();
        id.text.extend_from_slice(kind.as_bytes());
        id.text.push(0);
        fields(id);
        let owner = sha256(&id.text);
        let full = id.text.len();
        for attempt in 0u32.. {
            let digest = if attempt == 0 {
                owner
            } else {
                id.text.truncate(full);
                id.text.push(0);
                put_decimal(&mut id.text, u128::from(attempt));
                sha256(&id.text)
            };
            match self.taken.take(NameKey::new(kind, &digest)) {
                Take::Known(known) => {
                    let known = self.owners[known as usize];
                    if known.digest == owner {
                        return Claim {
                            chain: known.chain,
                            fresh: false,
                        };
                    }
                }
                Take::New(new) => {
                    debug_assert_eq!(new as usize, self.owners.len());
                    let chain = table.chain_hashed(kind, base32_16(&digest));
                    self.owners.push(Owner {
                        digest: owner,
                        chain,
                    });
                    return Claim { chain, fresh: true };
                }
            }
        }
        unreachable!("u32 attempts exhausted")
    }
}

/// An identity string being built from fields, each length-prefixed
/// (`<len>:<field>;`) so that no two different field lists give the same
/// string. Only ever hashed, so kept as bytes.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    text: Vec<u8>,
}

impl Identity {
    /// Appends `text` as it is (a whole identity, or fields already
    /// length-prefixed).
    pub fn raw(&mut self, text: &str) -> &mut Self {
        self.text.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends `field`.
    pub fn field(&mut self, field: &str) -> &mut Self {
        self.field_bytes(field.as_bytes())
    }

    /// Appends `n` in decimal as a field.
    pub fn decimal(&mut self, n: u128) -> &mut Self {
        self.field_bytes(write_decimal(&mut [0; 39], n))
    }

    fn field_bytes(&mut self, field: &[u8]) -> &mut Self {
        if field.len() < 10 {
            self.text.push(b'0' + field.len() as u8);
        } else {
            put_decimal(&mut self.text, field.len() as u128);
        }
        self.text.push(b':');
        self.text.extend_from_slice(field);
        self.text.push(b';');
        self
    }
}

/// Appends `n` in decimal.
fn put_decimal(out: &mut Vec<u8>, n: u128) {
    out.extend_from_slice(write_decimal(&mut [0; 39], n));
}

/// Writes `n` in decimal at the end of `digits`; the digits. In 64-bit
/// arithmetic when it fits: dividing a `u128` is a library call, and
/// identities hold small numbers (lengths, ports, prefix lengths).
fn write_decimal(digits: &mut [u8; 39], n: u128) -> &[u8] {
    let mut i = digits.len();
    match u64::try_from(n) {
        Ok(mut n) => loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        },
        Err(_) => {
            let mut n = n;
            while n > 0 {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
    }
    &digits[i..]
}

fn push_field(out: &mut String, field: &str) {
    push_decimal(out, field.len() as u64);
    out.push(':');
    out.push_str(field);
    out.push(';');
}

/// Builds an identity string from fields, length-prefixing each so that no
/// two different field lists give the same string.
pub(crate) fn identity(fields: &[&str]) -> String {
    let mut out = String::new();
    push_identity(&mut out, fields);
    out
}

/// Appends [`identity`]`(fields)` to `out`.
pub(crate) fn push_identity(out: &mut String, fields: &[&str]) {
    for f in fields {
        push_field(out, f);
    }
}

/// Longest comment text knc emits (the kernel allows 255 bytes).
const COMMENT_MAX: usize = 200;

/// Sanitises text for `-m comment --comment "…"`: keeps `[a-z0-9./:_-]`
/// (ASCII upper case is lowered), turns everything else, including spaces,
/// quotes, backslashes and newlines, into `_`, and truncates.
pub(crate) fn comment(text: &str) -> String {
    let mut out = String::new();
    push_comment(&mut out, text);
    out
}

/// Appends [`comment`]`(text)` to `out`.
pub(crate) fn push_comment(out: &mut String, text: &str) {
    for c in text.chars().take(COMMENT_MAX) {
        let c = c.to_ascii_lowercase();
        out.push(
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "./:_-".contains(c) {
                c
            } else {
                '_'
            },
        );
    }
}

/// A SHA-256 digest as the eight big-endian words of the hash state (the
/// digest's bytes are these words' bytes, in order).
pub(crate) type Digest = [u32; 8];

/// The first 80 bits of `digest` in RFC 4648 base32 (`A-Z2-7`).
///
/// Computed in registers and stored in one write: bytes stored one by one
/// and then read back as a word stall the processor (the store cannot be
/// forwarded to the load), which cost more than the hash did.
fn base32_16(digest: &Digest) -> [u8; 16] {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // Bits 0..40 and 40..80, right-aligned.
    let halves = [
        (u64::from(digest[0]) << 8) | u64::from(digest[1] >> 24),
        (u64::from(digest[1] & 0x00ff_ffff) << 16) | u64::from(digest[2] >> 16),
    ];
    let mut text: u128 = 0;
    for (h, bits) in halves.into_iter().enumerate() {
        for i in 0..8 {
            let c = ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize];
            text |= u128::from(c) << (8 * (8 * h + i));
        }
    }
    text.to_le_bytes()
}

/// SHA-256 of `data`: the padded message through the `sha2` crate's
/// compression function in one call (knc's identities are a block or two;
/// the streaming hasher's buffering cost more than the hashing). Names must
/// stay byte-identical, so the tests pin this to the standard vectors and
/// to the crate's own hasher.
pub(crate) fn sha256(data: &[u8]) -> Digest {
    const H0: Digest = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    let mut state = H0;
    let (blocks, rest) = data.as_chunks::<64>();
    compress256(&mut state, blocks);
    // The rest, 0x80, zeros, and the length in bits: one block, or two when
    // the 9 bytes do not fit after the rest.
    let mut tail = [[0u8; 64]; 2];
    let n = if rest.len() + 9 <= 64 { 1 } else { 2 };
    let flat = tail.as_flattened_mut();
    flat[..rest.len()].copy_from_slice(rest);
    flat[rest.len()] = 0x80;
    let bits = (data.len() as u64).wrapping_mul(8);
    flat[64 * n - 8..64 * n].copy_from_slice(&bits.to_be_bytes());
    compress256(&mut state, &tail[..n]);
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &Digest) -> String {
        d.iter().map(|w| format!("{w:08x}")).collect()
    }

    #[test]
    fn sha256_matches_standard_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // Two blocks of padding boundary: 64 bytes of input.
        assert_eq!(
            hex(&sha256(&[b'a'; 64])),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"
        );
    }

    #[test]
    fn base32_takes_first_80_bits() {
        let mut d = [0u32; 8];
        d[0] = 0b0000_1000 << 24; // first 5-bit group is 1
        assert_eq!(&base32_16(&d), b"BAAAAAAAAAAAAAAA");
        d[2] = 1 << 16; // bit 79, the last one
        assert_eq!(&base32_16(&d), b"BAAAAAAAAAAAAAAB");
        d = [u32::MAX; 8];
        assert_eq!(&base32_16(&d), b"7777777777777777");
        // "SVC\0x" as first hashed (RFC 4648 of the digest's first 10 bytes).
        let digest: Vec<u8> = sha256(b"SVC\0x")
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        let mut bits: u128 = 0;
        for b in &digest[..10] {
            bits = (bits << 8) | u128::from(*b);
        }
        let want: Vec<u8> = (0..16)
            .map(|i| b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[((bits >> (75 - 5 * i)) & 31) as usize])
            .collect();
        assert_eq!(base32_16(&sha256(b"SVC\0x")).to_vec(), want);
    }

    #[test]
    fn sha256_is_the_crates_own_at_every_padding_length() {
        use sha2::{Digest, Sha256};
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let want: [u8; 32] = Sha256::digest(&data[..len]).into();
            let got: Vec<u8> = sha256(&data[..len])
                .iter()
                .flat_map(|w| w.to_be_bytes())
                .collect();
            assert_eq!(got, want, "length {len}");
        }
    }

    fn svc(n: &mut Namer, t: &mut Table, identity: &str) -> Claim {
        n.claim(t, "SVC", |id| {
            id.raw(identity);
        })
    }

    #[test]
    fn names_are_stable_short_and_collision_free() {
        let (mut n, mut t) = (Namer::default(), Table::default());
        let a = svc(&mut n, &mut t, "x");
        assert!(a.fresh);
        assert_eq!(t.name(a.chain).len(), 24);
        // The name as it was first defined: KNC-SVC- and base32 of
        // SHA-256("SVC\0x").
        let want = format!(
            "KNC-SVC-{}",
            std::str::from_utf8(&base32_16(&sha256(b"SVC\0x"))).unwrap()
        );
        assert_eq!(t.name(a.chain), want);
        assert_eq!(
            svc(&mut n, &mut t, "x"),
            Claim {
                chain: a.chain,
                fresh: false
            }
        );
        assert_eq!(t.chains().count(), 1);
        // Force a collision by pre-claiming the name for another identity.
        let (mut m, mut u) = (Namer::default(), Table::default());
        let other = u.chain("KNC-OTHER");
        m.taken.take(NameKey::new("SVC", &sha256(b"SVC\0x")));
        m.owners.push(Owner {
            digest: sha256(b"SVC\0other"),
            chain: other,
        });
        let b = svc(&mut m, &mut u, "x");
        assert!(b.fresh);
        assert_ne!(u.name(b.chain), t.name(a.chain));
        // The rehash is of "SVC\0x\01".
        let want = format!(
            "KNC-SVC-{}",
            std::str::from_utf8(&base32_16(&sha256(b"SVC\0x\x001"))).unwrap()
        );
        assert_eq!(u.name(b.chain), want);
        assert_eq!(svc(&mut m, &mut u, "x").chain, b.chain);
        assert!(!svc(&mut m, &mut u, "x").fresh);
    }

    #[test]
    fn fields_build_the_same_identity_as_identity() {
        let (mut n, mut t) = (Namer::default(), Table::default());
        let whole = identity(&["a/b", "10.0.0.1", "80"]);
        let a = n.claim(&mut t, "SEP", |id| {
            id.raw(&whole);
        });
        let b = n.claim(&mut t, "SEP", |id| {
            id.field("a/b").field("10.0.0.1").decimal(80);
        });
        assert_eq!(
            b,
            Claim {
                chain: a.chain,
                fresh: false
            }
        );
    }

    #[test]
    fn name_keys_ignore_nothing_but_unused_bytes() {
        assert_eq!(Name::fixed("KNC-X"), Name::new("KNC-X").unwrap());
        assert_ne!(Name::fixed("KNC-X"), Name::fixed("KNC-XY"));
        assert_eq!(Name::new(&"x".repeat(28)).unwrap().as_str().len(), 28);
        assert!(Name::new(&"x".repeat(29)).is_none());
        let seeded = Seeded::default();
        assert_eq!(
            seeded.hash_one(Name::fixed("KNC-SERVICES")),
            seeded.hash_one(Name::new("KNC-SERVICES").unwrap())
        );
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for n in [0u128, 7, 9, 10, 99, 100, 65535, u128::MAX] {
            let mut out = b"x".to_vec();
            put_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
            let mut id = Identity::default();
            id.decimal(n);
            assert_eq!(id.text, identity(&[&n.to_string()]).into_bytes());
        }
    }

    #[test]
    fn identity_is_unambiguous() {
        assert_ne!(identity(&["a/b", "c"]), identity(&["a", "b/c"]));
    }

    #[test]
    fn comments_cannot_inject() {
        assert_eq!(comment("ns/web:http"), "ns/web:http");
        assert_eq!(comment("a\" -j ACCEPT\n-A X"), "a__-j_accept_-a_x");
        assert_eq!(comment("é\\"), "__");
        assert_eq!(comment(&"x".repeat(500)).len(), COMMENT_MAX);
    }
}
