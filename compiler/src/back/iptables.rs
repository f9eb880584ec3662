//! iptables back end: an [`ir::Ruleset`](crate::ir::Ruleset) as
//! `iptables-restore` (IPv4) or `ip6tables-restore` (IPv6) input.
//!
//! Everything knc adds lives in its own chains (`KNC-…`) of the `nat` and
//! `filter` tables, plus one jump from each built-in chain it needs (the
//! *hooks*). Every chain knc uses is declared in the output, so with
//! `iptables-restore --noflush` a reload flushes and refills exactly knc's
//! chains and touches no one else's rules.
//!
//! # Layout
//!
//! `nat` (decides, for a new connection, where it goes):
//!
//! * `PREROUTING`, `OUTPUT` → `KNC-SERVICES`: a radix tree of chains keyed
//!   by destination address (module `dispatch`) whose leaves are one rule per
//!   frontend (`-d VIP -p tcp --dport P`), then one rule sending local
//!   destinations (the NodePort scope) to `KNC-NODEPORTS`, a tree keyed by
//!   port per protocol.
//! * A frontend's rule jumps to its frontend chain `KNC-FE-…` (shared by
//!   frontends of one Service port with the same routing and source
//!   ranges): the `allowedSources` check (`KNC-FW-…`), then one or two rules
//!   per source class in the order node (`-m addrtype --src-type LOCAL`),
//!   pods (`-s <cluster CIDR>`), external (the rest, unconditional, so the
//!   chain always ends in a verdict). A frontend whose routing needs no
//!   chain (same non-masqueraded route for everyone) jumps straight on.
//! * `Forward` jumps to the backend set's chain (`KNC-SVC-…` for the
//!   cluster set, `KNC-SVL-…` for the node-local set), after
//!   `KNC-MARK-MASQ` when masqueraded. The set chain picks a backend chain
//!   `KNC-SEP-…` with `-m statistic --mode random --probability
//!   w_i / (w_i + … + w_n)`, the last one unconditionally, after the
//!   `-m recent --rcheck` rules of session affinity. A backend chain marks
//!   hairpin connections (source = backend) for masquerade and DNATs.
//! * `Drop` and `Reject` cannot happen in `nat` (iptables refuses `DROP`
//!   there and `REJECT` outside `INPUT`/`FORWARD`/`OUTPUT`), so
//!   `KNC-MARK-DROP` / `KNC-MARK-REJECT` set a mark and `ACCEPT` (ending
//!   the `nat` traversal without translation), and `filter` acts on it.
//! * `POSTROUTING` → `KNC-POSTROUTING`: masquerades marked packets and
//!   clears the mark, as kube-proxy does.
//!
//! `filter` (`INPUT`, `FORWARD`, `OUTPUT` → `KNC-FILTER` for
//! `--ctstate NEW`, so established traffic pays one rule): rejects and
//! drops what `nat` marked, rejects whatever still goes to an active
//! ClusterIP (nothing served that port, or it would have been DNATed), and
//! drops the rest of the service CIDRs.
//!
//! Marks (bits 0x4000 and 0x8000, the ones kube-proxy uses): `0x4000`
//! masquerade; `0x8000/0xc000` drop; `0xc000/0xc000` reject. A packet to be
//! dropped or rejected never needs masquerade, so two bits carry three
//! meanings.
//!
//! # Hooks and idempotence
//!
//! The user chains are idempotent under `--noflush`: each declaration
//! (`:KNC-X - [0:0]`) flushes the chain before it is refilled. The hooks are
//! rules in built-in chains that knc shares, and no single restore file can
//! make them idempotent there: `-A`/`-I` always add a rule, `-D` removes one
//! or makes the whole restore fail, so a file that loads successfully
//! changes the number of rules in `PREROUTING` by the same amount whatever
//! was there, and cannot leave exactly one hook both after a first load and
//! after a reload (flushing `PREROUTING` would delete other people's rules).
//! Hence [`Hooks`]: [`Hooks::Insert`] for a first load (or plain
//! `iptables-restore`, which flushes the tables anyway), and
//! [`Hooks::Reinsert`] for reloads when the hooks are present
//! (`-D` then `-I 1`: idempotent, and it moves knc's hooks back in front of
//! rules inserted since). The runtime tells the two apart with
//! `iptables -C` or `iptables-save`, as kube-proxy does with its own jumps.
//!
//! Session affinity uses `xt_recent`, whose lists keep 100 addresses by
//! default (module parameter `ip_list_tot`), like kube-proxy's.

mod dispatch;
mod names;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::OnceLock;

use ipnet::IpNet;

use crate::ir::{
    Backend, Entry, Family, FrontendKind, LocalDetector, Protocol, Route, Ruleset, SetKind,
};
use crate::text::{push_decimal, push_ipv4};
use dispatch::{Leaves, Tree};
use names::{comment, identity, push_comment, Name, Namer, Seeded, NAME_MAX};

/// How the output installs the jumps from built-in chains into knc's chains
/// (see the module documentation for why one text cannot do both loads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hooks {
    /// `-I <builtin> 1 …`: for plain `iptables-restore`, and for the first
    /// `--noflush` load on a node (each further load would add one more).
    Insert,
    /// `-D <builtin> …` then `-I <builtin> 1 …`: for `--noflush` reloads
    /// once the hooks exist (the load fails if one is missing).
    Reinsert,
    /// No hooks: knc's chains only, for a runtime that manages the jumps
    /// itself (see [`hooks`]).
    Omit,
}

/// One jump from a built-in chain into knc's chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `nat` or `filter`.
    pub table: &'static str,
    /// The built-in chain.
    pub chain: &'static str,
    /// The rule after `-A <chain> `, as iptables-save prints it.
    pub rule: &'static str,
}

/// The hooks knc installs, in order: the runtime can check each with
/// `iptables -t <table> -C <chain> <rule>`.
pub fn hooks() -> &'static [Hook] {
    const SERVICES: &str = "-m comment --comment knc-services -j KNC-SERVICES";
    const FILTER: &str = "-m conntrack --ctstate NEW -m comment --comment knc-filter -j KNC-FILTER";
    &[
        Hook {
            table: "nat",
            chain: "PREROUTING",
            rule: SERVICES,
        },
        Hook {
            table: "nat",
            chain: "OUTPUT",
            rule: SERVICES,
        },
        Hook {
            table: "nat",
            chain: "POSTROUTING",
            rule: "-m comment --comment knc-postrouting -j KNC-POSTROUTING",
        },
        Hook {
            table: "filter",
            chain: "INPUT",
            rule: FILTER,
        },
        Hook {
            table: "filter",
            chain: "FORWARD",
            rule: FILTER,
        },
        Hook {
            table: "filter",
            chain: "OUTPUT",
            rule: FILTER,
        },
    ]
}

/// The `iptables-restore` input for `family`'s part of `ruleset`, with
/// [`Hooks::Insert`]: loads into an empty namespace and with plain
/// `iptables-restore`; see [`emit_with`] for reloads.
pub fn emit(ruleset: &Ruleset, family: Family) -> String {
    emit_with(ruleset, family, Hooks::Insert)
}

/// The `iptables-restore` input for `family`'s part of `ruleset` (IPv4 for
/// `iptables-restore`, IPv6 for `ip6tables-restore`), with the hooks
/// written as `hooks` says. Same IR, same bytes.
pub fn emit_with(ruleset: &Ruleset, family: Family, hooks: Hooks) -> String {
    restore(ruleset, family).render(hooks)
}

/// The model of `family`'s part of `ruleset`: knc's chains of `nat` and
/// `filter` with their rules, for a runtime that reconciles them with the
/// live tables (see [`Restore::render_live`]).
pub fn restore(ruleset: &Ruleset, family: Family) -> Restore {
    let mut e = Emitter::new(ruleset, family);
    e.nat();
    e.filter();
    for t in [&e.nat, &e.filter] {
        debug_assert_eq!(t.index().len(), t.chains.len(), "a chain declared twice");
    }
    Restore {
        family,
        node: ruleset.node.clone(),
        nat: e.nat,
        filter: e.filter,
    }
}

/// One family's `iptables-restore` content: knc's `nat` and `filter`
/// chains, rendered with the hooks a load needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    family: Family,
    node: Option<String>,
    nat: Table,
    filter: Table,
}

/// The tables knc uses, in the order a restore file writes them.
const TABLES: [&str; 2] = ["nat", "filter"];

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
        self.table(table)?.rules(chain).map(|r| r.len())
    }

    /// The restore input with the hooks written as `hooks` says: the bytes
    /// of [`emit_with`].
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

/// `iptables-restore --noflush` input (for `family`) removing everything
/// knc put in the live tables: `hook_counts[i]` copies of [`hooks`]`()[i]`
/// and the `live_chains` (table, chain). Per table, the chains are
/// declared (flushing them, so nothing refers to another), the hook copies
/// deleted with `-D`, then the chains deleted with `-X`, all in one atomic
/// load. Empty when nothing is live.
pub fn removal(hook_counts: &[usize], live_chains: &[(String, String)], family: Family) -> String {
    let count = |i: usize| hook_counts.get(i).copied().unwrap_or(0);
    let mut out = String::new();
    for name in table_order(live_chains) {
        let chains = stale_of(live_chains, name);
        let live_hooks: Vec<(usize, &Hook)> = hooks()
            .iter()
            .enumerate()
            .filter(|&(i, h)| h.table == name && count(i) > 0)
            .collect();
        if chains.is_empty() && live_hooks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "*{name}");
        for chain in &chains {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (i, h) in live_hooks {
            for _ in 0..count(i) {
                let _ = writeln!(out, "-D {} {}", h.chain, h.rule);
            }
        }
        for chain in &chains {
            let _ = writeln!(out, "-X {chain}");
        }
        let _ = writeln!(out, "COMMIT");
    }
    if out.is_empty() {
        return out;
    }
    let (tool, fam) = tool(family);
    format!("# knc {fam} removal; {tool} --noflush input\n{out}")
}

/// The restore tool and family name of `family`.
fn tool(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Ipv4 => ("iptables-restore", "IPv4"),
        Family::Ipv6 => ("ip6tables-restore", "IPv6"),
    }
}

/// `nat`, `filter`, then any other table named in `chains`, in order of
/// first mention.
fn table_order(chains: &[(String, String)]) -> Vec<&str> {
    let mut order: Vec<&str> = TABLES.to_vec();
    for (table, _) in chains {
        if !order.contains(&table.as_str()) {
            order.push(table);
        }
    }
    order
}

/// The distinct chains of `table` in `chains`, in order.
fn stale_of<'a>(chains: &'a [(String, String)], table: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for (t, chain) in chains {
        if t == table && !names.contains(&chain.as_str()) {
            names.push(chain);
        }
    }
    names
}

/// Masquerade mark, set in `nat` and consumed in `KNC-POSTROUTING`.
const MARK_MASQ: &str = "0x4000";
/// Drop mark/mask, set in `nat` and consumed in `KNC-FILTER`.
const MARK_DROP: &str = "0x8000/0xc000";
/// Reject mark/mask, set in `nat` and consumed in `KNC-FILTER`.
const MARK_REJECT: &str = "0xc000/0xc000";

/// knc's chains of one table (`nat` or `filter`), in declaration order,
/// with their rules: the model a restore file is rendered from.
///
/// Built for size: 10,000 Services make about 110,000 chains and 400,000
/// rules, so chain names are inline values, and every rule's text lives in
/// one buffer, each chain's rules linked in order (a chain's rules are not
/// written contiguously: a set chain's rules follow its backend chains').
#[derive(Default, Clone)]
pub struct Table {
    chains: Vec<Chain>,
    /// Name → id, built on the first lookup (the builder never needs it:
    /// its names are unique by construction).
    index: OnceLock<HashMap<Name, ChainId, Seeded>>,
    rules: Vec<Rule>,
    /// The text of every rule, `text[rule.start..rule.end]`.
    text: String,
}

/// A chain's position in its [`Table`].
pub(crate) type ChainId = u32;

/// No rule: the end of a chain's list.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Chain {
    name: Name,
    /// First and last rule (indices into `Table::rules`), or [`NONE`].
    first: u32,
    last: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    start: u32,
    end: u32,
    /// The chain's next rule, or [`NONE`].
    next: u32,
}

/// The rules of one chain, in order (each the text after `-A <chain> `).
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    table: &'a Table,
    next: u32,
    left: usize,
}

impl<'a> Iterator for Rules<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rule = self.table.rules.get(self.next as usize)?;
        self.next = rule.next;
        self.left -= 1;
        Some(&self.table.text[rule.start as usize..rule.end as usize])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Rules<'_> {}

impl Table {
    /// The declared chains, in order.
    pub fn chains(&self) -> impl Iterator<Item = &str> + '_ {
        self.chains.iter().map(|c| c.name.as_str())
    }

    /// Whether `name` is declared.
    pub fn contains(&self, name: &str) -> bool {
        Name::new(name).is_some_and(|n| self.index().contains_key(&n))
    }

    /// The rules of `chain` (each the text after `-A <chain> `), if declared.
    pub fn rules(&self, chain: &str) -> Option<Rules<'_>> {
        let id = *self.index().get(&Name::new(chain)?)?;
        Some(self.rules_of(&self.chains[id as usize]))
    }

    fn rules_of(&self, chain: &Chain) -> Rules<'_> {
        Rules {
            table: self,
            next: chain.first,
            left: chain.len as usize,
        }
    }

    fn index(&self) -> &HashMap<Name, ChainId, Seeded> {
        self.index.get_or_init(|| {
            let mut index = HashMap::with_capacity_and_hasher(self.chains.len(), Seeded::default());
            for (id, c) in (0..).zip(&self.chains) {
                index.insert(c.name, id);
            }
            index
        })
    }

    /// An empty table with room for about `chains` chains, `rules` rules and
    /// `text` bytes of rule text.
    fn with_capacity(chains: usize, rules: usize, text: usize) -> Table {
        Table {
            chains: Vec::with_capacity(chains),
            index: OnceLock::new(),
            rules: Vec::with_capacity(rules),
            text: String::with_capacity(text),
        }
    }

    /// Declares `name`, which must not be declared yet (knc's names are
    /// unique: fixed ones, and the [`Namer`]'s fresh ones); its id.
    pub(crate) fn chain(&mut self, name: Name) -> ChainId {
        debug_assert!(self.index.get().is_none(), "declared after a lookup");
        let id = ChainId::try_from(self.chains.len()).expect("fewer than 2^32 chains");
        self.chains.push(Chain {
            name,
            first: NONE,
            last: NONE,
            len: 0,
        });
        id
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
        match c.last {
            NONE => c.first = index,
            last => self.rules[last as usize].next = index,
        }
        c.last = index;
        c.len += 1;
    }

    /// An upper bound of the bytes [`Table::write_declarations`] and
    /// [`Table::write_rules`] write.
    fn text_bound(&self) -> usize {
        self.text.len() + self.rules.len() * (NAME_MAX + 5) + self.chains.len() * (NAME_MAX + 10)
    }

    /// `:CHAIN - [0:0]` for every chain (which, under `--noflush`, creates
    /// or flushes it).
    fn write_declarations(&self, out: &mut String) {
        for c in &self.chains {
            out.push(':');
            out.push_str(c.name.as_str());
            out.push_str(" - [0:0]\n");
        }
    }

    /// `-A CHAIN RULE` for every rule.
    fn write_rules(&self, out: &mut String) {
        for c in &self.chains {
            let name = c.name.as_str();
            for r in self.rules_of(c) {
                out.push_str("-A ");
                out.push_str(name);
                out.push(' ');
                out.push_str(r);
                out.push('\n');
            }
        }
    }
}

/// Equal when the same chains are declared in the same order with the same
/// rules (however the buffers were filled).
impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.chains.len() == other.chains.len()
            && self.chains.iter().zip(&other.chains).all(|(a, b)| {
                a.name == b.name && a.len == b.len && self.rules_of(a).eq(other.rules_of(b))
            })
    }
}

impl Eq for Table {}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.chains
                    .iter()
                    .map(|c| (c.name, self.rules_of(c).collect::<Vec<_>>())),
            )
            .finish()
    }
}

/// The fixed chains of `nat`, declared first and in this order, so their ids
/// are their positions.
const NAT_FIXED: [&str; 6] = [
    "KNC-SERVICES",
    "KNC-NODEPORTS",
    "KNC-POSTROUTING",
    "KNC-MARK-MASQ",
    "KNC-MARK-DROP",
    "KNC-MARK-REJECT",
];

struct Emitter<'a> {
    ruleset: &'a Ruleset,
    family: Family,
    namer: Namer,
    nat: Table,
    filter: Table,
    /// Cluster CIDRs of this family: sources of the `pods` class.
    pod_cidrs: Vec<IpNet>,
    /// `{p:.10}` of each probability written, by its bits: sets repeat the
    /// same few (1/2, 1/3, … for equal weights), and `fmt` is slow.
    probabilities: HashMap<u64, String, Seeded>,
}

impl<'a> Emitter<'a> {
    fn new(ruleset: &'a Ruleset, family: Family) -> Self {
        // Room for what the ruleset will most likely need, so the big
        // buffers are not regrown (and copied) as they fill up: each backend
        // makes a chain of two rules and a rule in its set's chain (about
        // 220 bytes of text), each frontend a dispatch rule.
        let (mut entries, mut frontends, mut backends) = (0, 0, 0);
        for sp in ruleset.services.iter().filter(|s| s.family == family) {
            entries += 1;
            frontends += sp.frontends.len();
            backends +=
                sp.backends.get(SetKind::Cluster).len() + sp.backends.get(SetKind::Local).len();
        }
        let chains = backends + 2 * entries + frontends / 4 + 64;
        let clusters_ips = ruleset.cluster_ips.len();
        Emitter {
            ruleset,
            family,
            namer: Namer::with_capacity(chains + clusters_ips / 8),
            nat: Table::with_capacity(
                chains,
                4 * backends + 3 * frontends + 64,
                220 * backends + 200 * frontends + 4096,
            ),
            filter: Table::with_capacity(
                clusters_ips / 8 + 16,
                clusters_ips + clusters_ips / 8 + 16,
                40 * clusters_ips + 4096,
            ),
            pod_cidrs: of_family(&ruleset.cluster_cidrs, family),
            probabilities: HashMap::default(),
        }
    }

    fn fam(&self) -> &'static str {
        match self.family {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    fn nat(&mut self) {
        let [services, nodeports, postrouting, masq, drop, reject] =
            NAT_FIXED.map(|c| self.nat.chain(Name::fixed(c)));
        let t = &mut self.nat;
        t.rule(
            masq,
            &format!("-j MARK --set-xmark {MARK_MASQ}/{MARK_MASQ}"),
        );
        t.rule(drop, &format!("-j MARK --set-xmark {MARK_DROP}"));
        t.rule(drop, "-j ACCEPT");
        t.rule(reject, &format!("-j MARK --set-xmark {MARK_REJECT}"));
        t.rule(reject, "-j ACCEPT");
        t.rule(
            postrouting,
            &format!("-m mark ! --mark {MARK_MASQ}/{MARK_MASQ} -j RETURN"),
        );
        t.rule(postrouting, &format!("-j MARK --set-xmark {MARK_MASQ}/0x0"));
        t.rule(postrouting, "-j MASQUERADE --random-fully");

        let mut by_address = Leaves::default();
        let mut by_port: [Leaves; 3] = Default::default();
        let (ruleset, family, fam) = (self.ruleset, self.family, self.fam());
        let mut spid = String::new();
        let mut name = String::new();
        for sp in ruleset.services.iter().filter(|s| s.family == family) {
            spid.clear();
            spid.push_str(&identity(&[
                fam,
                &sp.namespace,
                &sp.name,
                &sp.port_name,
                sp.protocol.as_str(),
            ]));
            name.clear();
            push_comment(&mut name, &sp.display_name());
            for fe in &sp.frontends {
                let target = self.frontend_target(sp, &spid, fe);
                let proto = sp.protocol.as_str();
                let what = match fe.kind {
                    FrontendKind::ClusterIp => "cluster-ip",
                    FrontendKind::ExternalIp => "external-ip",
                    FrontendKind::LoadBalancer => "load-balancer",
                    FrontendKind::NodePort => "node-port",
                };
                let tail = |out: &mut String| {
                    for part in ["-p ", proto, " -m comment --comment \"", &name, " ", what] {
                        out.push_str(part);
                    }
                    for part in ["\" -m ", proto, " --dport "] {
                        out.push_str(part);
                    }
                    push_decimal(out, u64::from(fe.port));
                    out.push_str(" -j ");
                    out.push_str(target.as_str());
                };
                match fe.address {
                    Some(a) if Family::of(&a) == self.family => by_address.push(key_of(a), |out| {
                        out.push_str("-d ");
                        push_host_net(out, a);
                        out.push(' ');
                        tail(out);
                    }),
                    Some(_) => {}
                    None => by_port[sp.protocol as usize].push(u128::from(fe.port), tail),
                }
            }
        }
        let width = self.width();
        let prefix = |out: &mut String, p: u128, len: u32| {
            out.push_str("-d ");
            push_net(out, width, p, len);
        };
        Tree {
            width,
            kind: "DST",
            scope: identity(&[fam, "nat"]),
            prefix_match: &prefix,
        }
        .build(&mut self.nat, &mut self.namer, services, by_address);

        for guard in self.nodeport_guards() {
            self.nat
                .rule(services, &format!("{guard} -j KNC-NODEPORTS"));
        }
        for (proto, leaves) in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .zip(by_port)
        {
            let p = proto.as_str();
            let range = |out: &mut String, lo: u128, len: u32| {
                let hi = lo | ((1u128 << (16 - len)) - 1);
                for part in ["-p ", p, " -m ", p, " --dport "] {
                    out.push_str(part);
                }
                push_decimal(out, lo as u64);
                out.push(':');
                push_decimal(out, hi as u64);
            };
            Tree {
                width: 16,
                kind: "NPT",
                scope: identity(&[fam, p]),
                prefix_match: &range,
            }
            .build(&mut self.nat, &mut self.namer, nodeports, leaves);
        }
    }

    /// Matches for destinations in the NodePort scope.
    fn nodeport_guards(&self) -> Vec<String> {
        use crate::ir::FamilyScope;
        match self.ruleset.nodeport_scope.for_family(self.family) {
            FamilyScope::AnyLocal => {
                let loopback = match self.family {
                    Family::Ipv4 => "127.0.0.0/8",
                    Family::Ipv6 => "::1/128",
                };
                vec![format!("! -d {loopback} -m addrtype --dst-type LOCAL")]
            }
            FamilyScope::In(cidrs) => cidrs
                .iter()
                .map(|c| format!("-d {c} -m addrtype --dst-type LOCAL"))
                .collect(),
        }
    }

    /// The chain a frontend's dispatch rule jumps to: its frontend chain, or
    /// directly the one target when routing is the same, unmasqueraded, for
    /// every source and no source ranges apply.
    fn frontend_target(&mut self, sp: &Entry, spid: &str, fe: &crate::ir::Frontend) -> Name {
        let r = fe.routing;
        let pods_differ = r.pods != r.external
            && (!self.pod_cidrs.is_empty() || !self.ruleset.local_detector.is_cidrs());
        let node_differs = r.node != r.external || pods_differ;
        let simple = fe.allowed_sources.is_empty() && !node_differs && !pods_differ;
        if simple {
            if let Some(target) = self.plain_target(sp, spid, r.external) {
                return target;
            }
        }
        let allowed = of_family(&fe.allowed_sources, self.family);
        let allowed_text = allowed
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let named = self.namer.name_with("FE", |id| {
            id.field(spid)
                .field(route_id(r.node))
                .field(route_id(r.pods))
                .field(route_id(r.external))
                .field(if fe.allowed_sources.is_empty() {
                    "true"
                } else {
                    "false"
                })
                .field(&allowed_text);
        });
        if !named.fresh {
            return named.name;
        }
        let chain = self.nat.chain(named.name);
        if !fe.allowed_sources.is_empty() {
            let fam = self.fam();
            let fw = self.namer.name_with("FW", |id| {
                id.field(fam).field(&allowed_text);
            });
            if fw.fresh {
                let fw_chain = self.nat.chain(fw.name);
                for c in &allowed {
                    self.nat.rule(fw_chain, &format!("-s {c} -j RETURN"));
                }
                self.nat.rule(fw_chain, "-j KNC-MARK-DROP");
            }
            self.nat.rule_with(chain, |out| {
                out.push_str("-j ");
                out.push_str(fw.name.as_str());
            });
        }
        if node_differs {
            self.route(sp, spid, chain, "-m addrtype --src-type LOCAL ", r.node);
        }
        if pods_differ {
            // The pods class as the detector says; an interface name is
            // 1 to 15 of [A-Za-z0-9_.-] (IR invariant), one shell-free word.
            match &self.ruleset.local_detector {
                LocalDetector::Cidrs => {
                    for c in self.pod_cidrs.clone() {
                        self.route(sp, spid, chain, &format!("-s {c} "), r.pods);
                    }
                }
                LocalDetector::InterfacePrefix(prefix) => {
                    self.route(sp, spid, chain, &format!("-i {prefix}+ "), r.pods);
                }
                LocalDetector::Interface(name) => {
                    self.route(sp, spid, chain, &format!("-i {name} "), r.pods);
                }
            }
        }
        self.route(sp, spid, chain, "", r.external);
        named.name
    }

    /// The single target of an unmasqueraded route, if it has one.
    fn plain_target(&mut self, sp: &Entry, spid: &str, route: Route) -> Option<Name> {
        match route {
            Route::Forward {
                set,
                masquerade: false,
            } => Some(self.set_chain(sp, spid, set)),
            Route::Forward {
                masquerade: true, ..
            } => None,
            Route::Reject => Some(Name::fixed("KNC-MARK-REJECT")),
            Route::Drop => Some(Name::fixed("KNC-MARK-DROP")),
        }
    }

    /// Appends to `chain` the rules taking connections matching `m` (empty
    /// or ending with a space) where `route` says.
    fn route(&mut self, sp: &Entry, spid: &str, chain: ChainId, m: &str, route: Route) {
        let target = match route {
            Route::Forward { set, masquerade } => {
                let set_chain = self.set_chain(sp, spid, set);
                if masquerade {
                    self.nat.rule(chain, &format!("{m}-j KNC-MARK-MASQ"));
                }
                set_chain
            }
            Route::Reject => Name::fixed("KNC-MARK-REJECT"),
            Route::Drop => Name::fixed("KNC-MARK-DROP"),
        };
        self.nat.rule_with(chain, |out| {
            out.push_str(m);
            out.push_str("-j ");
            out.push_str(target.as_str());
        });
    }

    /// The chain choosing a backend of `sp`'s `set`, built on first use.
    /// Only called for a set a `Forward` route names, which the IR's
    /// invariants (checked by `ir::validate`) say is not empty and of the
    /// entry's family.
    fn set_chain(&mut self, sp: &Entry, spid: &str, set: SetKind) -> Name {
        let kind = match set {
            SetKind::Cluster => "SVC",
            SetKind::Local => "SVL",
        };
        let family = self.family;
        let of_family = |b: &&Backend| Family::of(&b.address) == family;
        assert!(
            sp.backends.get(set).iter().any(|b| of_family(&b)),
            "IR invariant broken: a Forward route names an empty set ({})",
            sp.display_name()
        );
        let named = self.namer.name(kind, spid);
        if !named.fresh {
            return named.name;
        }
        let backends: Vec<&Backend> = sp.backends.get(set).iter().filter(of_family).collect();
        let chain = self.nat.chain(named.name);
        let seps: Vec<Name> = backends
            .iter()
            .map(|b| self.backend_chain(sp, spid, b))
            .collect();
        if let Some(t) = sp.affinity_timeout_seconds {
            let mask = self.full_mask();
            for sep in &seps {
                self.nat.rule_with(chain, |out| {
                    out.push_str("-m recent --rcheck --seconds ");
                    push_decimal(out, u64::from(t));
                    for part in [" --reap --name ", sep.as_str(), " --mask ", mask] {
                        out.push_str(part);
                    }
                    out.push_str(" --rsource -j ");
                    out.push_str(sep.as_str());
                });
            }
        }
        let weights: Vec<u64> = backends
            .iter()
            .map(|b| u64::from(b.weight.max(1)))
            .collect();
        for (i, (sep, p)) in seps.iter().zip(probabilities(&weights)).enumerate() {
            if i + 1 == seps.len() {
                self.nat.rule_with(chain, |out| {
                    out.push_str("-j ");
                    out.push_str(sep.as_str());
                });
            } else {
                let p = self
                    .probabilities
                    .entry(p.to_bits())
                    .or_insert_with(|| format!("{p:.10}"));
                self.nat.rule_with(chain, |out| {
                    out.push_str("-m statistic --mode random --probability ");
                    out.push_str(p);
                    out.push_str(" -j ");
                    out.push_str(sep.as_str());
                });
            }
        }
        named.name
    }

    /// The chain sending a connection to backend `b`, built on first use.
    fn backend_chain(&mut self, sp: &Entry, spid: &str, b: &Backend) -> Name {
        let named = self.namer.name_with("SEP", |id| {
            id.field(spid)
                .field_with(|s| push_ip(s, b.address))
                .field_with(|s| push_decimal(s, u64::from(b.port)));
        });
        if !named.fresh {
            return named.name;
        }
        let chain = self.nat.chain(named.name);
        self.nat.rule_with(chain, |out| {
            out.push_str("-s ");
            push_host_net(out, b.address);
            out.push_str(" -j KNC-MARK-MASQ");
        });
        let proto = sp.protocol.as_str();
        let mask = self.full_mask();
        self.nat.rule_with(chain, |out| {
            out.push_str("-p ");
            out.push_str(proto);
            if sp.affinity_timeout_seconds.is_some() {
                for part in [
                    " -m recent --set --name ",
                    named.name.as_str(),
                    " --mask ",
                    mask,
                ] {
                    out.push_str(part);
                }
                out.push_str(" --rsource");
            }
            for part in [" -m ", proto, " -j DNAT --to-destination "] {
                out.push_str(part);
            }
            match b.address {
                IpAddr::V4(_) => push_ip(out, b.address),
                IpAddr::V6(_) => {
                    out.push('[');
                    push_ip(out, b.address);
                    out.push(']');
                }
            }
            out.push(':');
            push_decimal(out, u64::from(b.port));
        });
        named.name
    }

    fn filter(&mut self) {
        let filter = self.filter.chain(Name::fixed("KNC-FILTER"));
        let reject = self.filter.chain(Name::fixed("KNC-REJECT"));
        let icmp = match self.family {
            Family::Ipv4 => "icmp-port-unreachable",
            Family::Ipv6 => "icmp6-port-unreachable",
        };
        let t = &mut self.filter;
        t.rule(reject, "-p tcp -j REJECT --reject-with tcp-reset");
        t.rule(reject, &format!("-j REJECT --reject-with {icmp}"));
        t.rule(
            filter,
            &format!("-m mark --mark {MARK_REJECT} -j KNC-REJECT"),
        );
        t.rule(filter, &format!("-m mark --mark {MARK_DROP} -j DROP"));
        let mut leaves = Leaves::default();
        for &a in &self.ruleset.cluster_ips {
            if Family::of(&a) == self.family {
                leaves.push(key_of(a), |out| {
                    out.push_str("-d ");
                    push_host_net(out, a);
                    out.push_str(" -j KNC-REJECT");
                });
            }
        }
        let width = self.width();
        let prefix = |out: &mut String, p: u128, len: u32| {
            out.push_str("-d ");
            push_net(out, width, p, len);
        };
        Tree {
            width,
            kind: "CIP",
            scope: identity(&[self.fam(), "filter"]),
            prefix_match: &prefix,
        }
        .build(&mut self.filter, &mut self.namer, filter, leaves);
        for c in of_family(&self.ruleset.service_cidrs, self.family) {
            self.filter.rule(filter, &format!("-d {c} -j DROP"));
        }
    }

    fn width(&self) -> u32 {
        match self.family {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }

    fn full_mask(&self) -> &'static str {
        match self.family {
            Family::Ipv4 => "255.255.255.255",
            Family::Ipv6 => "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        }
    }
}

/// The probabilities, for each backend but the last, that the statistic
/// rule picks it given that no earlier one did: `w_i / (w_i + … + w_n)`.
/// The last backend is taken unconditionally (its value is 1).
fn probabilities(weights: &[u64]) -> Vec<f64> {
    let mut remaining: u64 = weights.iter().sum();
    weights
        .iter()
        .map(|&w| {
            let p = w as f64 / remaining as f64;
            remaining -= w;
            p
        })
        .collect()
}

/// A stable spelling of a route, for chain identities: `fwd-<set>-<masq>`
/// (the set as `Debug` writes it), `reject` or `drop`.
fn route_id(r: Route) -> &'static str {
    match r {
        Route::Forward {
            set: SetKind::Cluster,
            masquerade: false,
        } => "fwd-Cluster-false",
        Route::Forward {
            set: SetKind::Cluster,
            masquerade: true,
        } => "fwd-Cluster-true",
        Route::Forward {
            set: SetKind::Local,
            masquerade: false,
        } => "fwd-Local-false",
        Route::Forward {
            set: SetKind::Local,
            masquerade: true,
        } => "fwd-Local-true",
        Route::Reject => "reject",
        Route::Drop => "drop",
    }
}

fn of_family(nets: &[IpNet], family: Family) -> Vec<IpNet> {
    nets.iter()
        .filter(|n| Family::of(&n.addr()) == family)
        .map(|n| n.trunc())
        .collect()
}

fn key_of(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Appends `a` as `Display` writes it (IPv4 without going through `fmt`).
fn push_ip(out: &mut String, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `a/32` or `a/128`.
fn push_host_net(out: &mut String, a: IpAddr) {
    push_ip(out, a);
    out.push_str(match a {
        IpAddr::V4(_) => "/32",
        IpAddr::V6(_) => "/128",
    });
}

/// Appends `prefix/len`, the prefix an IPv4 (`width` 32) or IPv6 address.
fn push_net(out: &mut String, width: u32, prefix: u128, len: u32) {
    let a = if width == 32 {
        IpAddr::V4(std::net::Ipv4Addr::from(prefix as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(prefix))
    };
    push_ip(out, a);
    out.push('/');
    push_decimal(out, u64::from(len));
}

#[cfg(test)]
mod tests;
