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

use std::collections::HashMap;

/// Hands out collision-free, deterministic chain names.
#[derive(Debug, Default)]
pub(crate) struct Namer {
    /// name → identity it was given to.
    taken: HashMap<String, String>,
}

/// A chain name, and whether this is the first time it was asked for (the
/// caller then has to fill the chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub name: String,
    pub fresh: bool,
}

impl Namer {
    /// The chain name for `identity` under `kind` (`SVC`, `SEP`, …): the same
    /// identity always gets the same name; a different identity whose digest
    /// collides gets the digest of `identity` + a counter instead.
    pub fn name(&mut self, kind: &str, identity: &str) -> Named {
        let full = format!("{kind}\0{identity}");
        for attempt in 0u32.. {
            let hashed = if attempt == 0 {
                full.clone()
            } else {
                format!("{full}\0{attempt}")
            };
            let name = format!("KNC-{kind}-{}", base32_16(&sha256(hashed.as_bytes())));
            match self.taken.get(&name) {
                Some(owner) if *owner == full => return Named { name, fresh: false },
                Some(_) => continue,
                None => {
                    self.taken.insert(name.clone(), full);
                    return Named { name, fresh: true };
                }
            }
        }
        unreachable!("u32 attempts exhausted")
    }
}

/// Builds an identity string from fields, length-prefixing each so that no
/// two different field lists give the same string.
pub(crate) fn identity(fields: &[&str]) -> String {
    let mut out = String::new();
    for f in fields {
        out.push_str(&f.len().to_string());
        out.push(':');
        out.push_str(f);
        out.push(';');
    }
    out
}

/// Longest comment text knc emits (the kernel allows 255 bytes).
const COMMENT_MAX: usize = 200;

/// Sanitises text for `-m comment --comment "…"`: keeps `[a-z0-9./:_-]`
/// (ASCII upper case is lowered), turns everything else, including spaces,
/// quotes, backslashes and newlines, into `_`, and truncates.
pub(crate) fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "./:_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(COMMENT_MAX)
        .collect()
}

/// The first 80 bits of `digest` in RFC 4648 base32 (`A-Z2-7`).
fn base32_16(digest: &[u8; 32]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u128 = 0;
    for b in &digest[..10] {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..16)
        .map(|i| ALPHABET[((bits >> (75 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// SHA-256 of `data`, from the `sha2` crate; only used for naming (the
/// names must stay byte-identical, so the tests pin the standard vectors).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
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
        assert_eq!(base32_16(&d), "BAAAAAAAAAAAAAAA");
        d = [0xff; 32];
        assert_eq!(base32_16(&d), "7777777777777777");
    }

    #[test]
    fn names_are_stable_short_and_collision_free() {
        let mut n = Namer::default();
        let a = n.name("SVC", "x");
        assert!(a.fresh);
        assert_eq!(a.name.len(), 24);
        assert_eq!(
            n.name("SVC", "x"),
            Named {
                name: a.name.clone(),
                fresh: false
            }
        );
        // Force a collision by pre-claiming the name for another identity.
        let mut m = Namer::default();
        m.taken.insert(a.name.clone(), "SVC\0other".into());
        let b = m.name("SVC", "x");
        assert!(b.fresh);
        assert_ne!(b.name, a.name);
        assert_eq!(m.name("SVC", "x").name, b.name);
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
