//! Non-linear dispatch in iptables: a radix tree of chains.
//!
//! iptables has no maps, so kube-proxy's iptables layout scans one rule per
//! Service port for every new connection, and non-Service traffic scans
//! them all. knc instead sorts the rules by a key (a destination address,
//! or a NodePort) and builds a tree: a chain with more than [`LEAF_MAX`]
//! rules is split on the next [`STRIDE`] bits after the keys' common prefix,
//! each part of more than [`INLINE_MAX`] rules becoming a child chain reached
//! by one `-d prefix/len` (or `--dport lo:hi`) rule, where the prefix is the
//! part's own common prefix (path compression: a part whose keys all share
//! 20 bits is matched on all 20). Smaller parts stay inline.
//!
//! Cost: at most 16 × 2 = 32 rules are evaluated per level and the depth is
//! about log16(n), so 10,000 ClusterIPs spread over a /12 take 3 levels
//! (about 50 rule evaluations at worst instead of 10,000), and traffic to
//! addresses outside every prefix usually leaves after a rule or two. The
//! price is chains: about n / 10 of them, each a few rules.

use super::names::{Name, Namer};
use super::restore::{ChainId, Table};

/// Most rules a chain holds before it is split.
const LEAF_MAX: usize = 16;
/// Most rules of one part kept inline in its parent instead of a child chain.
const INLINE_MAX: usize = 2;
/// Bits consumed per level: fan-out 16.
const STRIDE: u32 = 4;

/// One rule to dispatch, keyed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leaf {
    /// The key, right-aligned in `Tree::width` bits.
    pub key: u128,
    /// The rule's text after `-A CHAIN `: `text[start..end]` of the text
    /// passed to [`Tree::build`].
    pub start: usize,
    pub end: usize,
}

/// Leaves with their rule texts in one buffer.
#[derive(Debug, Default)]
pub(crate) struct Leaves {
    pub text: String,
    pub leaves: Vec<Leaf>,
}

impl Leaves {
    /// Adds a leaf whose rule `write` appends to the text.
    pub fn push(&mut self, key: u128, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        let end = self.text.len();
        self.leaves.push(Leaf { key, start, end });
    }
}

/// How to build one tree.
pub(crate) struct Tree<'a> {
    /// Bits in a key: 32 (IPv4), 128 (IPv6) or 16 (port).
    pub width: u32,
    /// Chain kind in names (`KNC-<kind>-…`).
    pub kind: &'static str,
    /// Distinguishes trees of the same kind (family, protocol).
    pub scope: String,
    /// Appends the match selecting keys inside `prefix/len`, e.g.
    /// `-d 10.96.0.0/12`.
    pub prefix_match: &'a dyn Fn(&mut String, u128, u32),
}

impl Tree<'_> {
    /// Appends rules dispatching `leaves` to `chain` (which must exist),
    /// creating child chains as needed. Leaves with equal keys keep their
    /// order.
    pub fn build(&self, table: &mut Table, namer: &mut Namer, chain: ChainId, leaves: Leaves) {
        let Leaves { text, mut leaves } = leaves;
        leaves.sort_by_key(|l| l.key);
        self.node(table, namer, chain, &leaves, &text);
    }

    fn node(
        &self,
        table: &mut Table,
        namer: &mut Namer,
        chain: ChainId,
        leaves: &[Leaf],
        text: &str,
    ) {
        let (Some(first), Some(last)) = (leaves.first(), leaves.last()) else {
            return;
        };
        let common = self.common_prefix(first.key, last.key);
        if leaves.len() <= LEAF_MAX || common == self.width {
            for l in leaves {
                table.rule(chain, &text[l.start..l.end]);
            }
            return;
        }
        let split = (common + STRIDE).min(self.width);
        let mut rest = leaves;
        while let Some(head) = rest.first() {
            let top = self.top(head.key, split);
            let n = rest
                .iter()
                .take_while(|l| self.top(l.key, split) == top)
                .count();
            let (part, tail) = rest.split_at(n);
            rest = tail;
            if part.len() <= INLINE_MAX {
                for l in part {
                    table.rule(chain, &text[l.start..l.end]);
                }
                continue;
            }
            let len = self.common_prefix(part[0].key, part[n - 1].key);
            let prefix = self.top(part[0].key, len) << (self.width - len);
            let child = namer.claim(table, self.kind, |id| {
                id.field(&self.scope)
                    .decimal(prefix)
                    .decimal(u128::from(len));
            });
            // Prefixes are unique within a tree, and the scope tells trees
            // apart: every child is new.
            debug_assert!(child.fresh, "a dispatch chain named twice");
            let name = Name::fixed(table.name(child.chain));
            table.rule_with(chain, |out| {
                (self.prefix_match)(out, prefix, len);
                out.push_str(" -j ");
                out.push_str(name.as_str());
            });
            self.node(table, namer, child.chain, part, text);
        }
    }

    /// Number of leading bits `a` and `b` share, out of `width`.
    fn common_prefix(&self, a: u128, b: u128) -> u32 {
        if a == b {
            self.width
        } else {
            (a ^ b).leading_zeros() - (128 - self.width)
        }
    }

    /// The first `bits` bits of `key`.
    fn top(&self, key: u128, bits: u32) -> u128 {
        if bits == 0 {
            0
        } else {
            key >> (self.width - bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_tree(prefix_match: &dyn Fn(&mut String, u128, u32)) -> Tree<'_> {
        Tree {
            width: 16,
            kind: "T",
            scope: "test".into(),
            prefix_match,
        }
    }

    fn range(out: &mut String, p: u128, len: u32) {
        let hi = p | ((1u128 << (16 - len)) - 1);
        out.push_str(&format!("--dport {p}:{hi}"));
    }

    fn leaves(rules: impl Iterator<Item = (u128, String)>) -> Leaves {
        let mut l = Leaves::default();
        for (key, rule) in rules {
            l.push(key, |out| out.push_str(&rule));
        }
        l
    }

    #[test]
    fn small_sets_stay_in_one_chain() {
        let mut t = Table::default();
        let mut n = Namer::default();
        let root = t.chain("ROOT");
        let leaves = leaves((0..16).map(|i| (100 + i, format!("r{i}"))));
        port_tree(&range).build(&mut t, &mut n, root, leaves);
        assert_eq!(t.chains().count(), 1);
        assert_eq!(t.rules("ROOT").unwrap().len(), 16);
    }

    /// Follows `key` from `chain` the way the kernel would: the first rule
    /// whose range holds it, descending into child chains and falling
    /// through when a child has no match. Returns the leaf target.
    fn lookup(t: &Table, chain: &str, key: u128) -> Option<String> {
        for r in t.rules(chain).unwrap() {
            let (range, target) = r.trim_start_matches("--dport ").split_once(" -j ").unwrap();
            let (lo, hi) = range.split_once(':').unwrap();
            if (lo.parse().unwrap()..=hi.parse().unwrap()).contains(&key) {
                if target.starts_with('L') {
                    return Some(target.to_string());
                }
                if let Some(found) = lookup(t, target, key) {
                    return Some(found);
                }
            }
        }
        None
    }

    #[test]
    fn large_sets_split_into_short_chains_reaching_every_leaf() {
        let mut t = Table::default();
        let mut n = Namer::default();
        let root = t.chain("ROOT");
        let keys: Vec<u128> = (0..3000u128).map(|i| 30000 + (i * 7919) % 2768).collect();
        let leaves = leaves(
            keys.iter()
                .enumerate()
                .map(|(i, k)| (*k, format!("--dport {k}:{k} -j L{i}"))),
        );
        port_tree(&range).build(&mut t, &mut n, root, leaves);
        let mut seen = 0;
        for chain in t.chains() {
            let rules = t.rules(chain).unwrap();
            assert!(rules.len() <= 32, "chain too long: {}", rules.len());
            seen += rules.iter().filter(|r| r.contains("-j L")).count();
        }
        assert_eq!(seen, 3000);
        assert!(t.chains().count() > 20);
        for (i, k) in keys.iter().enumerate() {
            // The first leaf with this key, in input order, wins.
            let first = keys.iter().position(|x| x == k).unwrap();
            assert!(first <= i);
            assert_eq!(lookup(&t, "ROOT", *k), Some(format!("L{first}")));
        }
        assert_eq!(lookup(&t, "ROOT", 29999), None);
        assert_eq!(lookup(&t, "ROOT", 40000), None);
    }

    #[test]
    fn equal_keys_never_split_and_keep_order() {
        let mut t = Table::default();
        let mut n = Namer::default();
        let root = t.chain("ROOT");
        let leaves = leaves((0..40).map(|i| (7, format!("r{i}"))));
        port_tree(&range).build(&mut t, &mut n, root, leaves);
        assert_eq!(t.chains().count(), 1);
        let want: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        assert_eq!(t.rules("ROOT").unwrap(), want);
    }
}
