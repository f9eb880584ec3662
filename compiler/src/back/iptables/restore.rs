//! The model of one family's `iptables-restore` content ([`Restore`]: knc's
//! chains of `nat` and `filter`) and its rendering.
//!
//! Built for size and speed: 10,000 Services × 10 endpoints make about
//! 125,000 chains and 400,000 rules (37 MB of text). Most chains are backend
//! chains (two rules each), set chains (one rule per backend) and frontend
//! chains (a few rules per class of source); the model keeps those as a few
//! numbers ([`Body::Backend`], [`Body::Set`], [`Body::Frontend`]) and writes
//! their text only when rendering, straight into the output. Every other
//! chain's rules are kept as text. So a render writes every byte once, in
//! order, into one buffer sized up front, and the model holds a tenth of
//! the text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use super::names::{comment, Name, Seeded, NAME_MAX};
use super::{hooks, stale_of, table_order, tool, Hook, Hooks};
use crate::ir::{Family, Protocol};
use crate::text::push_decimal;

/// One family's `iptables-restore` content: knc's `nat` and `filter`
/// chains, rendered with the hooks a load needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub(super) family: Family,
    pub(super) node: Option<String>,
    pub(super) nat: Table,
    pub(super) filter: Table,
}

impl Restore {
    /// IPv4 (`iptables-restore`) or IPv6 (`ip6tables-restore`).
    pub fn family(&self) -> Family {
        self.family
    }

    /// knc's chains of `table` (`nat` or `filter`); `None` for another.
    pub fn table(&self, table: &str) -> Option<&Table> {
        match table {
            "nat" => Some(&self.nat),
            "filter" => Some(&self.filter),
            _ => None,
        }
    }

    /// The `KNC-…` chains `table` declares, in order (none for a table knc
    /// does not use).
    pub fn chains(&self, table: &str) -> Vec<&str> {
        self.table(table)
            .map_or(Vec::new(), |t| t.chains().collect())
    }

    /// How many rules `chain` of `table` has; `None` when knc does not
    /// declare it.
    pub fn rule_count(&self, table: &str, chain: &str) -> Option<usize> {
        let t = self.table(table)?;
        Some(t.rule_count(&t.chains[*t.index().get(&Name::new(chain)?)? as usize]))
    }

    /// The restore input with the hooks written as `hooks` says: the bytes
    /// of [`emit_with`](super::emit_with).
    pub fn render(&self, hooks: Hooks) -> String {
        let mode = match hooks {
            Hooks::Insert => "hooks inserted: first load, or plain restore",
            Hooks::Reinsert => "hooks reinserted: --noflush reload",
            Hooks::Omit => "no hooks",
        };
        self.write(mode, &[], |_, h, out| {
            if hooks == Hooks::Reinsert {
                let _ = writeln!(out, "-D {} {}", h.chain, h.rule);
            }
            if hooks != Hooks::Omit {
                let _ = writeln!(out, "-I {} 1 {}", h.chain, h.rule);
            }
        })
    }

    /// The `--noflush` restore input for a runtime that read the live
    /// tables, so one load converges whatever it found:
    /// `hook_counts[i]` is how many copies of [`hooks`]`()[i]` are live
    /// (missing entries count as 0); each copy is deleted with `-D` and
    /// the hook inserted once with `-I … 1`, so exactly one remains, first.
    /// `stale` lists (table, chain) of live `KNC-…` chains: those this
    /// ruleset no longer declares are declared (which flushes them) and
    /// deleted with `-X` at the end of their table's section, before
    /// `COMMIT`, so the same atomic load removes them.
    pub fn render_live(&self, hook_counts: &[usize], stale: &[(String, String)]) -> String {
        let stale: Vec<(String, String)> = stale
            .iter()
            .filter(|(table, chain)| self.table(table).is_none_or(|t| !t.contains(chain)))
            .cloned()
            .collect();
        self.write(
            "hooks reconciled with the live tables: --noflush reload",
            &stale,
            |i, h, out| {
                for _ in 0..hook_counts.get(i).copied().unwrap_or(0) {
                    let _ = writeln!(out, "-D {} {}", h.chain, h.rule);
                }
                let _ = writeln!(out, "-I {} 1 {}", h.chain, h.rule);
            },
        )
    }

    /// The header, then per table: declarations (knc's, then `stale`
    /// chains), rules, the hook lines `hook` writes for each hook (with its
    /// index in [`hooks`]), `-X` of the stale chains, `COMMIT`.
    fn write(
        &self,
        mode: &str,
        stale: &[(String, String)],
        hook: impl Fn(usize, &Hook, &mut String),
    ) -> String {
        let mut out = String::with_capacity(
            4096 + self.nat.text_bound() + self.filter.text_bound() + 64 * stale.len(),
        );
        let (tool, fam) = tool(self.family);
        let node = match &self.node {
            Some(n) => format!("node {}", comment(n)),
            None => "any node".into(),
        };
        let _ = writeln!(out, "# knc {fam} ruleset for {node}; {tool} input ({mode})");
        for name in table_order(stale) {
            let empty = Table::default();
            let table = self.table(name).unwrap_or(&empty);
            let stale = stale_of(stale, name);
            let _ = writeln!(out, "*{name}");
            table.write_declarations(&mut out);
            for chain in &stale {
                let _ = writeln!(out, ":{chain} - [0:0]");
            }
            table.write_rules(&mut out);
            for (i, h) in hooks().iter().enumerate().filter(|(_, h)| h.table == name) {
                hook(i, h, &mut out);
            }
            for chain in &stale {
                let _ = writeln!(out, "-X {chain}");
            }
            let _ = writeln!(out, "COMMIT");
        }
        out
    }
}

/// knc's chains of one table (`nat` or `filter`), in declaration order,
/// with their rules: the model a restore file is rendered from.
///
/// Chain names are stored back to back in one string; rules kept as text
/// live in one buffer, each chain's linked in order (a chain's rules need
/// not be written contiguously: a dispatch chain's rules are written around
/// the rules of the child chains they jump to).
#[derive(Clone, Default)]
pub struct Table {
    chains: Vec<Chain>,
    /// Every chain's name, `names[chain.name..chain.name + chain.name_len]`.
    names: String,
    /// Name → id, built on the first lookup (the builder never needs it:
    /// its names are unique by construction).
    index: OnceLock<HashMap<Name, ChainId, Seeded>>,
    /// Rules kept as text ([`Body::Text`]).
    rules: Vec<Rule>,
    /// The text of every such rule, `text[rule.start..rule.end]`.
    text: String,
    /// The backends of every [`Body::Set`], each set's in order.
    picks: Vec<Pick>,
    /// The routes of every [`Body::Frontend`].
    frontends: Vec<Frontend>,
    /// The matches selecting pods as sources, which frontend chains route
    /// apart when their routing says so, each as ` <matches> -j `.
    pod_matches: Vec<String>,
    /// The matches picks use ([`Pick::probability`]): ` -m statistic
    /// --mode random --probability {p:.10}`, or ` -m cluster …` for
    /// source-hash sets.
    probabilities: Vec<String>,
    /// An upper bound of the bytes the declarations and rules render to.
    bound: usize,
}

/// A chain's position in its [`Table`].
pub(crate) type ChainId = u32;

/// No rule: the end of a chain's list; no probability: a pick taken
/// unconditionally.
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Chain {
    /// Where the name starts in `Table::names`.
    name: u32,
    name_len: u8,
    body: Body,
}

/// How a chain's rules are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Rules kept as text: first and last rule (indices into
    /// `Table::rules`, or [`NONE`]) and their number.
    Text { first: u32, last: u32, len: u32 },
    /// A backend set's chain: `picks[start..start + len]`, each with
    /// `-m recent --rcheck` first when session affinity lasts
    /// `affinity` seconds, then one statistic rule per pick.
    Set {
        start: u32,
        len: u32,
        affinity: Option<u32>,
    },
    /// A frontend chain: `frontends[index]`.
    Frontend { index: u32 },
    /// A backend's chain: mark hairpin connections for masquerade, then
    /// DNAT (recording the source first under session affinity).
    /// `text[start..start + len]` is the DNAT destination, `A:port` or
    /// `[A]:port`, the address `A` being its `address` bytes from the start.
    Backend {
        start: u32,
        len: u8,
        address: (u8, u8),
        v6: bool,
        protocol: Protocol,
        affinity: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    start: u32,
    end: u32,
    /// The chain's next rule, or [`NONE`].
    next: u32,
}

/// One backend of a set chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pick {
    /// The backend's chain.
    pub chain: ChainId,
    /// Index in `Table::probabilities` of the match taking this pick when
    /// no earlier one was taken (a chance, or the client's hash slots), or
    /// [`NONE`] (the last pick: always).
    pub probability: u32,
}

/// The rules of a frontend chain: the source check, then per class of
/// sources (the node, pods, the rest) in that order, where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frontend {
    /// The `allowedSources` chain to run first (it drops what it does not
    /// allow).
    pub firewall: Option<ChainId>,
    /// Connections from the node (`-m addrtype --src-type LOCAL`), when
    /// they go elsewhere than the rest.
    pub node: Option<Jump>,
    /// Connections from pods (each of the table's pod matches), when they
    /// go elsewhere than the rest.
    pub pods: Option<Jump>,
    /// Every other connection.
    pub external: Jump,
}

/// Where a class of sources goes, masqueraded first or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jump {
    pub masquerade: bool,
    pub target: Target,
}

/// Where a rule jumps: a chain of its table, or a chain knc always declares
/// (`KNC-MARK-DROP`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Chain(ChainId),
    Fixed(&'static str),
}

/// Longest IP address text.
const ADDR_MAX: usize = 39;

impl Table {
    /// The declared chains, in order.
    pub fn chains(&self) -> impl Iterator<Item = &str> + '_ {
        self.chains.iter().map(|c| self.name_of(c))
    }

    /// Whether `name` is declared.
    pub fn contains(&self, name: &str) -> bool {
        Name::new(name).is_some_and(|n| self.index().contains_key(&n))
    }

    /// The rules of `chain` (each the text after `-A <chain> `), if
    /// declared.
    pub fn rules(&self, chain: &str) -> Option<Vec<String>> {
        let c = &self.chains[*self.index().get(&Name::new(chain)?)? as usize];
        let mut text = String::new();
        self.write_chain(&mut text, c);
        let prefix = format!("-A {} ", self.name_of(c));
        Some(
            text.lines()
                .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
                .collect(),
        )
    }

    /// An empty table with room for about `chains` chains, `rules` rules and
    /// `text` bytes of rule text kept as text, and `picks` backends of sets.
    pub(crate) fn with_capacity(chains: usize, rules: usize, text: usize, picks: usize) -> Table {
        Table {
            chains: Vec::with_capacity(chains),
            names: String::with_capacity(chains * 24),
            rules: Vec::with_capacity(rules),
            text: String::with_capacity(text),
            picks: Vec::with_capacity(picks),
            ..Table::default()
        }
    }

    /// Declares `name`, which must not be declared yet (knc's names are
    /// unique: fixed ones, and the [`Namer`](super::names::Namer)'s fresh
    /// ones), with no rules; its id.
    pub(crate) fn chain(&mut self, name: &str) -> ChainId {
        self.declare(|names| names.push_str(name))
    }

    /// [`Table::chain`] of `KNC-<kind>-<base32>`, `base32` being ASCII
    /// letters and digits.
    pub(crate) fn chain_hashed(&mut self, kind: &str, base32: [u8; 16]) -> ChainId {
        self.declare(|names| {
            names.push_str("KNC-");
            names.push_str(kind);
            names.push('-');
            names.push_str(std::str::from_utf8(&base32).expect("base32 is ASCII"));
        })
    }

    /// Declares the chain whose name `write` appends.
    fn declare(&mut self, write: impl FnOnce(&mut String)) -> ChainId {
        debug_assert!(self.index.get().is_none(), "declared after a lookup");
        let id = ChainId::try_from(self.chains.len()).expect("fewer than 2^32 chains");
        let start = self.names.len();
        write(&mut self.names);
        let len = self.names.len() - start;
        assert!(len <= NAME_MAX, "chain name longer than iptables allows");
        self.chains.push(Chain {
            name: u32::try_from(start).expect("names under 4 GiB"),
            name_len: len as u8,
            body: Body::Text {
                first: NONE,
                last: NONE,
                len: 0,
            },
        });
        self.bound += len + 10;
        id
    }

    /// The name of a declared chain.
    pub(crate) fn name(&self, chain: ChainId) -> &str {
        self.name_of(&self.chains[chain as usize])
    }

    /// The name of `target`.
    pub(crate) fn target(&self, target: Target) -> &str {
        match target {
            Target::Chain(chain) => self.name(chain),
            Target::Fixed(name) => name,
        }
    }

    fn name_of(&self, c: &Chain) -> &str {
        let start = c.name as usize;
        &self.names[start..start + usize::from(c.name_len)]
    }

    /// Appends a rule (the text after `-A <chain> `) to a declared chain.
    pub(crate) fn rule(&mut self, chain: ChainId, rule: &str) {
        self.rule_with(chain, |out| out.push_str(rule));
    }

    /// Appends to a declared chain the rule `write` appends to the buffer
    /// it is given.
    pub(crate) fn rule_with(&mut self, chain: ChainId, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        let offset = |n: usize| u32::try_from(n).expect("rule text under 4 GiB");
        let (start, end) = (offset(start), offset(self.text.len()));
        let index = offset(self.rules.len());
        self.rules.push(Rule {
            start,
            end,
            next: NONE,
        });
        let c = &mut self.chains[chain as usize];
        let Body::Text { first, last, len } = &mut c.body else {
            panic!("a rule added to a chain whose rules are computed");
        };
        match *last {
            NONE => *first = index,
            l => self.rules[l as usize].next = index,
        }
        *last = index;
        *len += 1;
        self.bound += usize::from(c.name_len) + 5 + (end - start) as usize;
    }

    /// Makes `chain`, declared and still without rules, the chain of a
    /// backend set choosing among `picks` (added in order).
    pub(crate) fn set(
        &mut self,
        chain: ChainId,
        picks: impl IntoIterator<Item = Pick>,
        affinity: Option<u32>,
    ) {
        let start = self.picks.len();
        self.picks.extend(picks);
        let len = self.picks.len() - start;
        let offset = |n: usize| u32::try_from(n).expect("fewer than 2^32 picks");
        // Per pick: `-A SVC -m statistic --mode random --probability
        // 0.xxxxxxxxxx -j SEP`, and with affinity `-A SVC -m recent
        // --rcheck --seconds T --reap --name SEP --mask M --rsource -j SEP`.
        let line = 4 + 2 * NAME_MAX + 110;
        let affinity_line = 4 + 3 * NAME_MAX + 90 + ADDR_MAX;
        self.bound += len * (line + affinity.map_or(0, |_| affinity_line));
        self.fill(
            chain,
            Body::Set {
                start: offset(start),
                len: offset(len),
                affinity,
            },
        );
    }

    /// Makes `chain`, declared and still without rules, the chain of the
    /// backend `address`:`port`.
    pub(crate) fn backend(
        &mut self,
        chain: ChainId,
        address: &str,
        v6: bool,
        port: u16,
        protocol: Protocol,
        affinity: bool,
    ) {
        // The destination is written now, once: rendering copies it.
        let start = self.text.len();
        if v6 {
            self.text.push('[');
        }
        let a = self.text.len() - start;
        self.text.push_str(address);
        let a = (a as u8, address.len() as u8);
        self.text.push_str(if v6 { "]:" } else { ":" });
        push_decimal(&mut self.text, u64::from(port));
        let len = (self.text.len() - start) as u8;
        // `-A SEP -s A/128 -j KNC-MARK-MASQ` and `-A SEP -p sctp -m recent
        // --set --name SEP --mask M --rsource -m sctp -j DNAT
        // --to-destination [A]:65535`.
        self.bound += 2 * (4 + NAME_MAX) + 30 + ADDR_MAX + 70 + 2 * ADDR_MAX;
        if affinity {
            self.bound += NAME_MAX + 60 + ADDR_MAX;
        }
        self.fill(
            chain,
            Body::Backend {
                start: u32::try_from(start).expect("rule text under 4 GiB"),
                len,
                address: a,
                v6,
                protocol,
                affinity,
            },
        );
    }

    /// Sets the matches selecting pods as sources (each as
    /// ` <matches> -j `), before any frontend chain.
    pub(crate) fn set_pod_matches(&mut self, matches: Vec<String>) {
        debug_assert!(self.frontends.is_empty());
        self.pod_matches = matches;
    }

    /// Makes `chain`, declared and still without rules, a frontend chain
    /// routing as `frontend` says.
    pub(crate) fn frontend(&mut self, chain: ChainId, frontend: Frontend) {
        let index = u32::try_from(self.frontends.len()).expect("fewer than 2^32 frontends");
        self.frontends.push(frontend);
        // Per rule `-A FE <matches> -j <target>`.
        let longest = self.pod_matches.iter().map(String::len).max().unwrap_or(0);
        let line = 10 + 2 * NAME_MAX + longest.max(30);
        self.bound += line * self.frontend_rules(&frontend);
        self.fill(chain, Body::Frontend { index });
    }

    fn frontend_rules(&self, f: &Frontend) -> usize {
        let rules = |j: &Jump| 1 + usize::from(j.masquerade);
        usize::from(f.firewall.is_some())
            + f.node.as_ref().map_or(0, rules)
            + f.pods
                .as_ref()
                .map_or(0, |j| rules(j) * self.pod_matches.len())
            + rules(&f.external)
    }

    /// Adds a pick's match (` -m …`); its index for [`Pick::probability`].
    pub(crate) fn pick_match(&mut self, text: String) -> u32 {
        self.probabilities.push(text);
        u32::try_from(self.probabilities.len() - 1).expect("fewer than 2^32 probabilities")
    }

    fn fill(&mut self, chain: ChainId, body: Body) {
        let c = &mut self.chains[chain as usize];
        debug_assert!(
            matches!(c.body, Body::Text { len: 0, .. }),
            "a chain filled twice"
        );
        c.body = body;
    }

    /// Whether no two chains share a name (builds the lookup index: call
    /// once the table is complete).
    pub(crate) fn names_are_unique(&self) -> bool {
        self.index().len() == self.chains.len()
    }

    fn index(&self) -> &HashMap<Name, ChainId, Seeded> {
        self.index.get_or_init(|| {
            let mut index = HashMap::with_capacity_and_hasher(self.chains.len(), Seeded::default());
            for (id, c) in (0..).zip(&self.chains) {
                index.insert(Name::fixed(self.name_of(c)), id);
            }
            index
        })
    }

    fn rule_count(&self, c: &Chain) -> usize {
        match c.body {
            Body::Text { len, .. } => len as usize,
            Body::Set { len, affinity, .. } => {
                len as usize * if affinity.is_some() { 2 } else { 1 }
            }
            Body::Frontend { index } => self.frontend_rules(&self.frontends[index as usize]),
            Body::Backend { .. } => 2,
        }
    }

    /// An upper bound of the bytes [`Table::write_declarations`] and
    /// [`Table::write_rules`] write.
    fn text_bound(&self) -> usize {
        self.bound
    }

    /// `:CHAIN - [0:0]` for every chain (which, under `--noflush`, creates
    /// or flushes it).
    fn write_declarations(&self, out: &mut String) {
        for c in &self.chains {
            out.push(':');
            out.push_str(self.name_of(c));
            out.push_str(" - [0:0]\n");
        }
    }

    /// `-A CHAIN RULE` for every rule.
    fn write_rules(&self, out: &mut String) {
        for c in &self.chains {
            self.write_chain(out, c);
        }
    }

    /// `-A CHAIN RULE` for each rule of `c`.
    fn write_chain(&self, out: &mut String, c: &Chain) {
        let name = self.name_of(c);
        match c.body {
            Body::Text { first, .. } => {
                let mut next = first;
                while let Some(rule) = self.rules.get(next as usize) {
                    out.push_str("-A ");
                    out.push_str(name);
                    out.push(' ');
                    out.push_str(&self.text[rule.start as usize..rule.end as usize]);
                    out.push('\n');
                    next = rule.next;
                }
            }
            Body::Set {
                start,
                len,
                affinity,
            } => {
                let picks = &self.picks[start as usize..(start + len) as usize];
                if let Some(seconds) = affinity {
                    self.write_affinity_checks(out, name, picks, seconds);
                }
                for pick in picks {
                    out.push_str("-A ");
                    out.push_str(name);
                    if let Some(p) = self.probabilities.get(pick.probability as usize) {
                        out.push_str(p);
                    }
                    out.push_str(" -j ");
                    out.push_str(self.name(pick.chain));
                    out.push('\n');
                }
            }
            Body::Frontend { index } => {
                let f = &self.frontends[index as usize];
                if let Some(firewall) = f.firewall {
                    write_rule(out, name, " -j ", self.name(firewall));
                }
                if let Some(node) = f.node {
                    self.write_jump(out, name, " -m addrtype --src-type LOCAL -j ", node);
                }
                if let Some(pods) = f.pods {
                    for m in &self.pod_matches {
                        self.write_jump(out, name, m, pods);
                    }
                }
                self.write_jump(out, name, " -j ", f.external);
            }
            Body::Backend {
                start,
                len,
                address,
                v6,
                protocol,
                affinity,
            } => {
                let destination = &self.text[start as usize..start as usize + usize::from(len)];
                let (from, to) = (usize::from(address.0), usize::from(address.0 + address.1));
                let address = &destination[from..to];
                write_backend(out, name, destination, address, v6, protocol, affinity);
            }
        }
    }

    /// The rules of chain `name` sending connections matching `matches`
    /// (as ` <matches> -j `) where `jump` says.
    fn write_jump(&self, out: &mut String, name: &str, matches: &str, jump: Jump) {
        if jump.masquerade {
            write_rule(out, name, matches, "KNC-MARK-MASQ");
        }
        write_rule(out, name, matches, self.target(jump.target));
    }

    /// A set chain's `-m recent --rcheck` rules: a connection from a source
    /// seen within `seconds` goes to the same backend.
    fn write_affinity_checks(&self, out: &mut String, name: &str, picks: &[Pick], seconds: u32) {
        let mut text = String::new();
        push_decimal(&mut text, u64::from(seconds));
        for (i, pick) in picks.iter().enumerate() {
            // Source-hash sets pick one backend for several slots: one
            // check per backend.
            if picks[..i].iter().any(|p| p.chain == pick.chain) {
                continue;
            }
            let sep = self.name(pick.chain);
            let mask = match self.chains[pick.chain as usize].body {
                Body::Backend { v6, .. } => full_mask(v6),
                _ => unreachable!("a set picks backend chains"),
            };
            for part in [
                "-A ",
                name,
                " -m recent --rcheck --seconds ",
                &text,
                " --reap --name ",
                sep,
                " --mask ",
                mask,
                " --rsource -j ",
                sep,
                "\n",
            ] {
                out.push_str(part);
            }
        }
    }
}

/// `-A <chain> <matches> -j <target>`, `matches` given as ` <matches> -j `.
fn write_rule(out: &mut String, chain: &str, matches: &str, target: &str) {
    for part in ["-A ", chain, matches, target, "\n"] {
        out.push_str(part);
    }
}

/// The two rules of backend chain `name`, whose DNAT destination is
/// `destination` and its address `address`.
fn write_backend(
    out: &mut String,
    name: &str,
    destination: &str,
    address: &str,
    v6: bool,
    protocol: Protocol,
    affinity: bool,
) {
    out.push_str("-A ");
    out.push_str(name);
    out.push_str(" -s ");
    out.push_str(address);
    out.push_str(if v6 {
        "/128 -j KNC-MARK-MASQ\n-A "
    } else {
        "/32 -j KNC-MARK-MASQ\n-A "
    });
    out.push_str(name);
    out.push_str(match protocol {
        Protocol::Tcp => " -p tcp",
        Protocol::Udp => " -p udp",
        Protocol::Sctp => " -p sctp",
    });
    if affinity {
        for part in [
            " -m recent --set --name ",
            name,
            " --mask ",
            full_mask(v6),
            " --rsource",
        ] {
            out.push_str(part);
        }
    }
    out.push_str(match protocol {
        Protocol::Tcp => " -m tcp -j DNAT --to-destination ",
        Protocol::Udp => " -m udp -j DNAT --to-destination ",
        Protocol::Sctp => " -m sctp -j DNAT --to-destination ",
    });
    out.push_str(destination);
    out.push('\n');
}

/// The mask `-m recent` keys sources by: the whole address.
pub(crate) fn full_mask(v6: bool) -> &'static str {
    if v6 {
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    } else {
        "255.255.255.255"
    }
}

/// Equal when the same chains are declared in the same order with the same
/// rules (however they are stored).
impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        let text = |t: &Table| {
            let mut out = String::new();
            t.write_declarations(&mut out);
            t.write_rules(&mut out);
            out
        };
        text(self) == text(other)
    }
}

impl Eq for Table {}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.chains()
                    .map(|c| (c, self.rules(c).unwrap_or_default())),
            )
            .finish()
    }
}
