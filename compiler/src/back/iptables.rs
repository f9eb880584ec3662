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

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ir::{Backend, Entry, Family, FrontendKind, Protocol, Route, Ruleset, SetKind};
use dispatch::{Leaf, Tree};
use names::{comment, identity, Namer};

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
        self.table(table)?.rules(chain).map(<[String]>::len)
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
        let mut out = String::new();
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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    chains: Vec<(String, Vec<String>)>,
    index: std::collections::HashMap<String, usize>,
}

impl Table {
    /// The declared chains, in order.
    pub fn chains(&self) -> impl Iterator<Item = &str> + '_ {
        self.chains.iter().map(|(name, _)| name.as_str())
    }

    /// Whether `name` is declared.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The rules of `chain` (each the text after `-A <chain> `), if declared.
    pub fn rules(&self, chain: &str) -> Option<&[String]> {
        self.index.get(chain).map(|&i| self.chains[i].1.as_slice())
    }

    /// Declares `name` unless it already is.
    pub fn chain(&mut self, name: &str) {
        if !self.index.contains_key(name) {
            self.index.insert(name.to_owned(), self.chains.len());
            self.chains.push((name.to_owned(), Vec::new()));
        }
    }

    /// Appends a rule (the text after `-A <chain> `) to a declared chain.
    ///
    /// # Panics
    ///
    /// When `chain` is not declared: knc's builder declares every chain
    /// before filling it.
    pub fn rule(&mut self, chain: &str, rule: String) {
        let i = self.index[chain];
        self.chains[i].1.push(rule);
    }

    /// `:CHAIN - [0:0]` for every chain (which, under `--noflush`, creates
    /// or flushes it).
    fn write_declarations(&self, out: &mut String) {
        for (name, _) in &self.chains {
            let _ = writeln!(out, ":{name} - [0:0]");
        }
    }

    /// `-A CHAIN RULE` for every rule.
    fn write_rules(&self, out: &mut String) {
        for (name, rules) in &self.chains {
            for r in rules {
                let _ = writeln!(out, "-A {name} {r}");
            }
        }
    }
}

struct Emitter<'a> {
    ruleset: &'a Ruleset,
    family: Family,
    namer: Namer,
    nat: Table,
    filter: Table,
    /// Cluster CIDRs of this family: sources of the `pods` class.
    pod_cidrs: Vec<IpNet>,
}

impl<'a> Emitter<'a> {
    fn new(ruleset: &'a Ruleset, family: Family) -> Self {
        Emitter {
            ruleset,
            family,
            namer: Namer::default(),
            nat: Table::default(),
            filter: Table::default(),
            pod_cidrs: of_family(&ruleset.cluster_cidrs, family),
        }
    }

    fn fam(&self) -> &'static str {
        match self.family {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    fn nat(&mut self) {
        for c in [
            "KNC-SERVICES",
            "KNC-NODEPORTS",
            "KNC-POSTROUTING",
            "KNC-MARK-MASQ",
            "KNC-MARK-DROP",
            "KNC-MARK-REJECT",
        ] {
            self.nat.chain(c);
        }
        let t = &mut self.nat;
        t.rule(
            "KNC-MARK-MASQ",
            format!("-j MARK --set-xmark {MARK_MASQ}/{MARK_MASQ}"),
        );
        t.rule("KNC-MARK-DROP", format!("-j MARK --set-xmark {MARK_DROP}"));
        t.rule("KNC-MARK-DROP", "-j ACCEPT".into());
        t.rule(
            "KNC-MARK-REJECT",
            format!("-j MARK --set-xmark {MARK_REJECT}"),
        );
        t.rule("KNC-MARK-REJECT", "-j ACCEPT".into());
        t.rule(
            "KNC-POSTROUTING",
            format!("-m mark ! --mark {MARK_MASQ}/{MARK_MASQ} -j RETURN"),
        );
        t.rule(
            "KNC-POSTROUTING",
            format!("-j MARK --set-xmark {MARK_MASQ}/0x0"),
        );
        t.rule("KNC-POSTROUTING", "-j MASQUERADE --random-fully".into());

        let mut by_address = Vec::new();
        let mut by_port: [Vec<Leaf>; 3] = Default::default();
        let (ruleset, family) = (self.ruleset, self.family);
        for sp in ruleset.services.iter().filter(|s| s.family == family) {
            let spid = identity(&[
                self.fam(),
                &sp.namespace,
                &sp.name,
                &sp.port_name,
                sp.protocol.as_str(),
            ]);
            let name = comment(&sp.display_name());
            for fe in &sp.frontends {
                let target = self.frontend_target(sp, &spid, fe);
                let proto = sp.protocol.as_str();
                let what = match fe.kind {
                    FrontendKind::ClusterIp => "cluster-ip",
                    FrontendKind::ExternalIp => "external-ip",
                    FrontendKind::LoadBalancer => "load-balancer",
                    FrontendKind::NodePort => "node-port",
                };
                let tail = format!(
                    "-p {proto} -m comment --comment \"{name} {what}\" -m {proto} --dport {} -j {target}",
                    fe.port
                );
                match fe.address {
                    Some(a) if Family::of(&a) == self.family => by_address.push(Leaf {
                        key: key_of(a),
                        rule: format!("-d {} {tail}", host_net(a)),
                    }),
                    Some(_) => {}
                    None => by_port[sp.protocol as usize].push(Leaf {
                        key: u128::from(fe.port),
                        rule: tail,
                    }),
                }
            }
        }
        let width = self.width();
        let prefix = |p: u128, len: u32| format!("-d {}", net_of(width, p, len));
        Tree {
            width,
            kind: "DST",
            scope: identity(&[self.fam(), "nat"]),
            prefix_match: &prefix,
        }
        .build(&mut self.nat, &mut self.namer, "KNC-SERVICES", by_address);

        for guard in self.nodeport_guards() {
            self.nat
                .rule("KNC-SERVICES", format!("{guard} -j KNC-NODEPORTS"));
        }
        for (proto, leaves) in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .zip(by_port)
        {
            let p = proto.as_str();
            let range = |lo: u128, len: u32| {
                let hi = lo | ((1u128 << (16 - len)) - 1);
                format!("-p {p} -m {p} --dport {lo}:{hi}")
            };
            Tree {
                width: 16,
                kind: "NPT",
                scope: identity(&[self.fam(), p]),
                prefix_match: &range,
            }
            .build(&mut self.nat, &mut self.namer, "KNC-NODEPORTS", leaves);
        }
    }

    /// Matches for destinations in the NodePort scope.
    fn nodeport_guards(&self) -> Vec<String> {
        use crate::ir::NodePortScope;
        match &self.ruleset.nodeport_scope {
            NodePortScope::AnyLocal => {
                let loopback = match self.family {
                    Family::Ipv4 => "127.0.0.0/8",
                    Family::Ipv6 => "::1/128",
                };
                vec![format!("! -d {loopback} -m addrtype --dst-type LOCAL")]
            }
            NodePortScope::LocalIn(cidrs) => of_family(cidrs, self.family)
                .iter()
                .map(|c| format!("-d {c} -m addrtype --dst-type LOCAL"))
                .collect(),
        }
    }

    /// The chain a frontend's dispatch rule jumps to: its frontend chain, or
    /// directly the one target when routing is the same, unmasqueraded, for
    /// every source and no source ranges apply.
    fn frontend_target(&mut self, sp: &Entry, spid: &str, fe: &crate::ir::Frontend) -> String {
        let r = fe.routing;
        let pods_differ = r.pods != r.external && !self.pod_cidrs.is_empty();
        let node_differs = r.node != r.external || pods_differ;
        let simple = fe.allowed_sources.is_empty() && !node_differs && !pods_differ;
        if simple {
            if let Some(target) = self.plain_target(sp, spid, r.external) {
                return target;
            }
        }
        let allowed = of_family(&fe.allowed_sources, self.family);
        let allowed_text: Vec<String> = allowed.iter().map(|c| c.to_string()).collect();
        let id = identity(&[
            spid,
            &route_id(r.node),
            &route_id(r.pods),
            &route_id(r.external),
            &fe.allowed_sources.is_empty().to_string(),
            &allowed_text.join(","),
        ]);
        let named = self.namer.name("FE", &id);
        if !named.fresh {
            return named.name;
        }
        let chain = named.name;
        self.nat.chain(&chain);
        if !fe.allowed_sources.is_empty() {
            let fw = self
                .namer
                .name("FW", &identity(&[self.fam(), &allowed_text.join(",")]));
            if fw.fresh {
                self.nat.chain(&fw.name);
                for c in &allowed {
                    self.nat.rule(&fw.name, format!("-s {c} -j RETURN"));
                }
                self.nat.rule(&fw.name, "-j KNC-MARK-DROP".into());
            }
            self.nat.rule(&chain, format!("-j {}", fw.name));
        }
        if node_differs {
            self.route(sp, spid, &chain, "-m addrtype --src-type LOCAL ", r.node);
        }
        if pods_differ {
            for c in self.pod_cidrs.clone() {
                self.route(sp, spid, &chain, &format!("-s {c} "), r.pods);
            }
        }
        self.route(sp, spid, &chain, "", r.external);
        chain
    }

    /// The single target of an unmasqueraded route, if it has one.
    fn plain_target(&mut self, sp: &Entry, spid: &str, route: Route) -> Option<String> {
        match route {
            Route::Forward {
                set,
                masquerade: false,
            } => Some(self.set_chain(sp, spid, set)),
            Route::Forward {
                masquerade: true, ..
            } => None,
            Route::Reject => Some("KNC-MARK-REJECT".into()),
            Route::Drop => Some("KNC-MARK-DROP".into()),
        }
    }

    /// Appends to `chain` the rules taking connections matching `m` (empty
    /// or ending with a space) where `route` says.
    fn route(&mut self, sp: &Entry, spid: &str, chain: &str, m: &str, route: Route) {
        let target = match route {
            Route::Forward { set, masquerade } => {
                let set_chain = self.set_chain(sp, spid, set);
                if masquerade {
                    self.nat.rule(chain, format!("{m}-j KNC-MARK-MASQ"));
                }
                set_chain
            }
            Route::Reject => "KNC-MARK-REJECT".into(),
            Route::Drop => "KNC-MARK-DROP".into(),
        };
        self.nat.rule(chain, format!("{m}-j {target}"));
    }

    /// The chain choosing a backend of `sp`'s `set`, built on first use.
    /// Only called for a set a `Forward` route names, which the IR's
    /// invariants (checked by `ir::validate`) say is not empty and of the
    /// entry's family.
    fn set_chain(&mut self, sp: &Entry, spid: &str, set: SetKind) -> String {
        let backends: Vec<&Backend> = sp
            .backends
            .get(set)
            .iter()
            .filter(|b| Family::of(&b.address) == self.family)
            .collect();
        assert!(
            !backends.is_empty(),
            "IR invariant broken: a Forward route names an empty set ({})",
            sp.display_name()
        );
        let kind = match set {
            SetKind::Cluster => "SVC",
            SetKind::Local => "SVL",
        };
        let named = self.namer.name(kind, spid);
        if !named.fresh {
            return named.name;
        }
        let chain = named.name;
        self.nat.chain(&chain);
        let seps: Vec<String> = backends
            .iter()
            .map(|b| self.backend_chain(sp, spid, b))
            .collect();
        if let Some(t) = sp.affinity_timeout_seconds {
            for sep in &seps {
                self.nat.rule(
                    &chain,
                    format!(
                        "-m recent --rcheck --seconds {t} --reap --name {sep} --mask {} --rsource -j {sep}",
                        self.full_mask()
                    ),
                );
            }
        }
        let weights: Vec<u64> = backends
            .iter()
            .map(|b| u64::from(b.weight.max(1)))
            .collect();
        for (i, (sep, p)) in seps.iter().zip(probabilities(&weights)).enumerate() {
            if i + 1 == seps.len() {
                self.nat.rule(&chain, format!("-j {sep}"));
            } else {
                self.nat.rule(
                    &chain,
                    format!("-m statistic --mode random --probability {p:.10} -j {sep}"),
                );
            }
        }
        chain
    }

    /// The chain sending a connection to backend `b`, built on first use.
    fn backend_chain(&mut self, sp: &Entry, spid: &str, b: &Backend) -> String {
        let named = self.namer.name(
            "SEP",
            &identity(&[spid, &b.address.to_string(), &b.port.to_string()]),
        );
        let chain = named.name;
        if !named.fresh {
            return chain;
        }
        self.nat.chain(&chain);
        self.nat.rule(
            &chain,
            format!("-s {} -j KNC-MARK-MASQ", host_net(b.address)),
        );
        let proto = sp.protocol.as_str();
        let recent = match sp.affinity_timeout_seconds {
            Some(_) => format!(
                " -m recent --set --name {chain} --mask {} --rsource",
                self.full_mask()
            ),
            None => String::new(),
        };
        let to = match b.address {
            IpAddr::V4(a) => format!("{a}:{}", b.port),
            IpAddr::V6(a) => format!("[{a}]:{}", b.port),
        };
        self.nat.rule(
            &chain,
            format!("-p {proto}{recent} -m {proto} -j DNAT --to-destination {to}"),
        );
        chain
    }

    fn filter(&mut self) {
        self.filter.chain("KNC-FILTER");
        self.filter.chain("KNC-REJECT");
        let icmp = match self.family {
            Family::Ipv4 => "icmp-port-unreachable",
            Family::Ipv6 => "icmp6-port-unreachable",
        };
        let t = &mut self.filter;
        t.rule(
            "KNC-REJECT",
            "-p tcp -j REJECT --reject-with tcp-reset".into(),
        );
        t.rule("KNC-REJECT", format!("-j REJECT --reject-with {icmp}"));
        t.rule(
            "KNC-FILTER",
            format!("-m mark --mark {MARK_REJECT} -j KNC-REJECT"),
        );
        t.rule("KNC-FILTER", format!("-m mark --mark {MARK_DROP} -j DROP"));
        let leaves = self
            .ruleset
            .cluster_ips
            .iter()
            .filter(|a| Family::of(a) == self.family)
            .map(|&a| Leaf {
                key: key_of(a),
                rule: format!("-d {} -j KNC-REJECT", host_net(a)),
            })
            .collect();
        let width = self.width();
        let prefix = |p: u128, len: u32| format!("-d {}", net_of(width, p, len));
        Tree {
            width,
            kind: "CIP",
            scope: identity(&[self.fam(), "filter"]),
            prefix_match: &prefix,
        }
        .build(&mut self.filter, &mut self.namer, "KNC-FILTER", leaves);
        for c in of_family(&self.ruleset.service_cidrs, self.family) {
            self.filter.rule("KNC-FILTER", format!("-d {c} -j DROP"));
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

/// A stable spelling of a route, for chain identities.
fn route_id(r: Route) -> String {
    match r {
        Route::Forward { set, masquerade } => format!("fwd-{set:?}-{masquerade}"),
        Route::Reject => "reject".into(),
        Route::Drop => "drop".into(),
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

fn host_net(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

fn net_of(width: u32, prefix: u128, len: u32) -> String {
    if width == 32 {
        format!("{}/{len}", std::net::Ipv4Addr::from(prefix as u32))
    } else {
        format!("{}/{len}", std::net::Ipv6Addr::from(prefix))
    }
}

#[cfg(test)]
mod tests;
