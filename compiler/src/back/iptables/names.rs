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

use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};

use sha2::{Digest, Sha256};

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

    /// `KNC-<kind>-` and the first 80 bits of `digest` in base32 (`kind`
    /// has at most 7 bytes).
    fn hashed(kind: &str, digest: &[u8; 32]) -> Name {
        let mut bytes = [0u8; NAME_MAX];
        let mut len = 0;
        for part in [b"KNC-".as_slice(), kind.as_bytes(), b"-"] {
            bytes[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        bytes[len..len + 16].copy_from_slice(&base32_16(digest));
        Name {
            len: (len + 16) as u8,
            bytes,
        }
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
            let m = u128::from(self.0 ^ u64::from_le_bytes(word)) * 0x9e37_79b9_7f4a_7c15;
            self.0 = (m as u64) ^ ((m >> 64) as u64);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hands out collision-free, deterministic chain names.
#[derive(Debug, Default)]
pub(crate) struct Namer {
    /// name → SHA-256 of the `kind\0identity` it was given to. Two
    /// identities are taken for the same when their full 256-bit digests
    /// are equal (finding two that are would break SHA-256 itself; the
    /// 80 bits in a name are what an attacker can search).
    taken: HashMap<NameKey, u32, Seeded>,
    /// The digests `taken` refers to (kept apart so the map's entries are
    /// small: at 10,000 Services it holds over 100,000).
    owners: Vec<[u8; 32]>,
    /// Reused buffers for `kind\0identity`.
    scratch: Identity,
}

/// What makes a hashed name: its kind (at most 7 bytes, as the name is at
/// most 28) and the 80 bits of digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameKey([u8; 17]);

impl NameKey {
    fn new(kind: &str, digest: &[u8; 32]) -> NameKey {
        let mut key = [0u8; 17];
        key[..kind.len()].copy_from_slice(kind.as_bytes());
        key[7..].copy_from_slice(&digest[..10]);
        NameKey(key)
    }
}

impl Hash for NameKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// A chain name, and whether this is the first time it was asked for (the
/// caller then has to fill the chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Named {
    pub name: Name,
    pub fresh: bool,
}

impl Namer {
    /// A namer with room for about `names` names.
    pub fn with_capacity(names: usize) -> Namer {
        Namer {
            taken: HashMap::with_capacity_and_hasher(names, Seeded::default()),
            owners: Vec::with_capacity(names),
            scratch: Identity::default(),
        }
    }

    /// The chain name for `identity` under `kind` (`SVC`, `SEP`, …): the same
    /// identity always gets the same name; a different identity whose digest
    /// collides gets the digest of `kind\0identity\0<counter>` instead.
    pub fn name(&mut self, kind: &str, identity: &str) -> Named {
        self.name_with(kind, |id| id.text.push_str(identity))
    }

    /// [`Namer::name`] of the identity `fields` writes (in a reused buffer).
    pub fn name_with(&mut self, kind: &str, fields: impl FnOnce(&mut Identity)) -> Named {
        // The hashed text, `kind\0identity`, is written in one buffer and
        // digested in one call.
        let id = &mut self.scratch;
        id.text.clear();
        id.text.push_str(kind);
        id.text.push('\0');
        fields(id);
        let owner: [u8; 32] = Sha256::digest(id.text.as_bytes()).into();
        let full = id.text.len();
        for attempt in 0u32.. {
            let digest = if attempt == 0 {
                owner
            } else {
                id.text.truncate(full);
                id.text.push('\0');
                push_decimal(&mut id.text, u64::from(attempt));
                Sha256::digest(id.text.as_bytes()).into()
            };
            let name = Name::hashed(kind, &digest);
            match self.taken.entry(NameKey::new(kind, &digest)) {
                Entry::Occupied(o) if self.owners[*o.get() as usize] == owner => {
                    return Named { name, fresh: false }
                }
                Entry::Occupied(_) => continue,
                Entry::Vacant(v) => {
                    v.insert(u32::try_from(self.owners.len()).expect("fewer than 2^32 names"));
                    self.owners.push(owner);
                    return Named { name, fresh: true };
                }
            }
        }
        unreachable!("u32 attempts exhausted")
    }
}

/// An identity string being built from fields, each length-prefixed
/// (`<len>:<field>;`) so that no two different field lists give the same
/// string.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    text: String,
    /// Scratch for [`Identity::field_with`].
    field: String,
}

impl Identity {
    /// Appends `field`.
    pub fn field(&mut self, field: &str) -> &mut Self {
        push_field(&mut self.text, field);
        self
    }

    /// Appends the field `write` writes.
    pub fn field_with(&mut self, write: impl FnOnce(&mut String)) -> &mut Self {
        self.field.clear();
        write(&mut self.field);
        push_field(&mut self.text, &self.field);
        self
    }
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
    for f in fields {
        push_field(&mut out, f);
    }
    out
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

/// The first 80 bits of `digest` in RFC 4648 base32 (`A-Z2-7`).
fn base32_16(digest: &[u8; 32]) -> [u8; 16] {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u128 = 0;
    for b in &digest[..10] {
        bits = (bits << 8) | u128::from(*b);
    }
    std::array::from_fn(|i| ALPHABET[((bits >> (75 - 5 * i)) & 31) as usize])
}

/// SHA-256 of `data`, from the `sha2` crate; only used for naming (the
/// names must stay byte-identical, so the tests pin the standard vectors).
#[cfg(test)]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
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
        let mut d = [0u8; 32];
        d[0] = 0b0000_1000; // first 5-bit group is 1
        assert_eq!(&base32_16(&d), b"BAAAAAAAAAAAAAAA");
        d = [0xff; 32];
        assert_eq!(&base32_16(&d), b"7777777777777777");
    }

    #[test]
    fn names_are_stable_short_and_collision_free() {
        let mut n = Namer::default();
        let a = n.name("SVC", "x");
        assert!(a.fresh);
        assert_eq!(a.name.as_str().len(), 24);
        // The name as it was first defined: KNC-SVC- and base32 of
        // SHA-256("SVC\0x").
        let want = format!(
            "KNC-SVC-{}",
            std::str::from_utf8(&base32_16(&sha256(b"SVC\0x"))).unwrap()
        );
        assert_eq!(a.name.as_str(), want);
        assert_eq!(
            n.name("SVC", "x"),
            Named {
                name: a.name,
                fresh: false
            }
        );
        // Force a collision by pre-claiming the name for another identity.
        let mut m = Namer::default();
        m.taken.insert(NameKey::new("SVC", &sha256(b"SVC\0x")), 0);
        m.owners.push(sha256(b"SVC\0other"));
        let b = m.name("SVC", "x");
        assert!(b.fresh);
        assert_ne!(b.name, a.name);
        // The rehash is of "SVC\0x\01".
        let want = format!(
            "KNC-SVC-{}",
            std::str::from_utf8(&base32_16(&sha256(b"SVC\0x\x001"))).unwrap()
        );
        assert_eq!(b.name.as_str(), want);
        assert_eq!(m.name("SVC", "x").name, b.name);
        assert!(!m.name("SVC", "x").fresh);
    }

    #[test]
    fn name_with_builds_the_same_identity() {
        let mut n = Namer::default();
        let a = n.name("SEP", &identity(&["a/b", "10.0.0.1", "80"]));
        let b = n.name_with("SEP", |id| {
            id.field("a/b")
                .field_with(|s| s.push_str("10.0.0.1"))
                .field_with(|s| push_decimal(s, 80));
        });
        assert_eq!(
            b,
            Named {
                name: a.name,
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
