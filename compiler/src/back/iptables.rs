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
//!   `-m recent --rcheck` rules of session affinity. A source-hash set
//!   (`Selection::SourceHash`) picks by slot instead: `-m cluster
//!   --cluster-total-nodes 32 --cluster-local-node K` per slot of the
//!   32-slot table of `ir::selection` (xt_cluster hashes the source address
//!   as nft's `jhash` does), the backend with the most slots taking the
//!   rest unconditionally. A backend chain marks
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

mod build;
mod dispatch;
mod names;
mod restore;
mod taken;

use std::fmt::Write as _;

use crate::ir::{Family, Ruleset};
pub use restore::{Restore, Table};

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
    build::build(ruleset, family)
}

/// The tables knc uses, in the order a restore file writes them.
const TABLES: [&str; 2] = ["nat", "filter"];

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

#[cfg(test)]
mod tests;
