//! nftables text back end: one atomic `nft -f` transaction.
//!
//! # Layout
//!
//! The kernel pays for chains and anonymous maps, not for elements of named
//! sets and maps (design §5), so the layout has a fixed, small number of
//! chains whatever the number of Services, and puts everything per Service
//! into named maps:
//!
//! * `frontends` (`daddr . l4proto . dport : verdict`) and `nodeports`
//!   (`l4proto . dport : verdict`) send a new connection to a **route
//!   chain**. There is one route chain per distinct [`Routing`] and backend
//!   group sizes, shared by every frontend routed alike; it tells the source
//!   classes apart (node, pods, external), marks for masquerade, refuses or
//!   drops, or jumps to the dnat chain of the frontend's backend group.
//! * A **backend group** is every frontend whose set has the same number of
//!   random slots (one per backend for equal weights). Its chain
//!   `dnat-vip-cluster-<N>` is a single rule, `dnat to <key> . numgen random
//!   mod N map @vip-cluster-<N>`, over a plain hash map with one element per
//!   slot: picking a backend is one exact lookup, with no chain per Service
//!   or endpoint. (Interval maps keyed by a random range were tried first:
//!   their set backend made loading 10,000 Services three times slower. A
//!   second lookup to find the group cost 10,000 more elements.)
//! * Session affinity (module `affinity`): frontends of a Service port with
//!   `sessionAffinity: ClientIP` use group chains of their own
//!   (`dnat-…-affinity`), which first send a remembered client back to its
//!   backend; `postrouting` remembers each choice. The memory is per Service
//!   port (and backend set), shared by all its addresses, and lives in
//!   dynamic maps that incremental updates never touch.
//! * `postrouting` masquerades marked connections and hairpin connections
//!   (source equals the chosen backend, found in the `hairpin` set, which
//!   holds only this node's endpoints: no other pod's traffic passes here).
//! * After the dispatch, traffic to an active ClusterIP on an unknown port is
//!   rejected and traffic to other addresses in the service CIDRs dropped.
//! * Every reject goes to the `refuse` chain: a TCP reset for TCP, ICMP port
//!   unreachable otherwise (as the iptables back end does). A TCP client on
//!   a veth next to the node gets the ICMPv6 error while its `connect()`
//!   still holds the socket lock, and Linux then only notes it
//!   (`LockDroppedIcmps`) and waits for the SYN retransmit; a reset is
//!   queued and refuses at once.
//!
//! Everything sits in `table ip knc` and `table ip6 knc`, each replaced
//! atomically (`table knc {}` + `delete table` + full table) so loading
//! twice equals loading once and nothing else in the ruleset is touched.
//! Nothing taken from a manifest reaches the text except in comments,
//! which are restricted to a safe alphabet.
//!
//! # Modules
//!
//! This module is the layout: it builds the typed model ([`tables`]) of a
//! ruleset. `model` holds the objects, which render themselves;
//! `transaction` computes the operations between two models (a full
//! replace or an incremental update) and renders them as `nft -f` input;
//! `fake` applies the same operations to an in-memory kernel for tests of
//! runtime logic.

mod affinity;
mod fake;
mod incremental;
mod model;
mod transaction;

#[cfg(test)]
mod testing;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;

use crate::ir::{
    gcd64, selection, Backend, Entry, Family, FamilyScope, Frontend, FrontendKind, LocalDetector,
    Route, Routing, Ruleset, Selection, SetKind,
};
use crate::text::{push_decimal, push_ipv4};

pub use affinity::{affected_memory, forget_stale, Listed};
pub use fake::Fake;
pub use incremental::update_tables;
pub use model::{Element, Object, ObjectKind, Table, TableFamily, Tables};
pub use transaction::{Op, Transaction, TransactionKind};

/// Name of knc's tables in both families.
pub const TABLE: &str = "knc";

/// Most random slots one backend set gets for unequal weights; beyond it
/// weights are approximated (equal weights never are: one slot each).
pub const MAX_SLOTS: u32 = 4096;

/// Elements per `add element` command. nft 1.0.6 packs one command's
/// elements into one netlink attribute whose length is 16 bits: past 64 KiB
/// (about 960 IPv4 backend elements) the kernel answers EINVAL, and with tens
/// of thousands netlink runs out of buffer space. 256 keeps even the widest
/// IPv6 elements well inside the limit.
const ELEMENTS_PER_COMMAND: usize = 256;

/// The chain every reject goes to: a TCP reset for TCP, ICMP otherwise.
const REFUSE: &str = "refuse";

/// The packet mark bit asking postrouting to masquerade (kube-proxy's).
const MASQUERADE_MARK: &str = "0x00004000";

/// Emits the whole ruleset as one `nft -f` transaction replacing knc's
/// tables: [`Transaction::replace`] of [`tables`].
pub fn emit(ruleset: &Ruleset) -> String {
    Transaction::replace_owned(tables(ruleset)).render()
}

/// The commands that turn `old`'s ruleset into `new`'s, or `None` when
/// only a full replace is safe: [`Transaction::update`] of their
/// [`tables`]. Applying the result to a kernel holding exactly `emit(old)`
/// leaves exactly what `emit(new)` would have.
pub fn emit_delta(old: &Ruleset, new: &Ruleset) -> Option<String> {
    Transaction::update(&tables(old), &tables(new)).map(|t| t.render())
}

/// The model of a compiled IR ruleset: what [`emit`] renders. Elements are
/// in the order the layout adds them (see [`Tables::normalised`]).
pub fn tables(ruleset: &Ruleset) -> Tables {
    Tables {
        node: ruleset.node.clone(),
        tables: [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .map(|family| FamilyEmitter::new(ruleset, family).table())
            .collect(),
    }
}

/// Family-specific spellings.
#[derive(Clone, Copy)]
struct Syntax {
    family: &'static str,
    addr: &'static str,
    addr_type: &'static str,
    loopback: &'static str,
}

impl Syntax {
    fn of(family: Family) -> Self {
        match family {
            Family::Ipv4 => Syntax {
                family: "ip",
                addr: "ip",
                addr_type: "ipv4_addr",
                loopback: "127.0.0.0/8",
            },
            Family::Ipv6 => Syntax {
                family: "ip6",
                addr: "ip6",
                addr_type: "ipv6_addr",
                loopback: "::1",
            },
        }
    }
}

/// Whether a frontend is looked up by destination address or (NodePort)
/// by port alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyKind {
    Vip,
    NodePort,
}

impl KeyKind {
    fn of(frontend: &Frontend) -> Self {
        match frontend.kind {
            FrontendKind::NodePort => KeyKind::NodePort,
            _ => KeyKind::Vip,
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyKind::Vip => "vip",
            KeyKind::NodePort => "nodeport",
        }
    }
}

fn set_name(set: SetKind) -> &'static str {
    match set {
        SetKind::Cluster => "cluster",
        SetKind::Local => "local",
    }
}

/// Elements collected for one family's table, by set or map name.
struct FamilyEmitter<'a> {
    ruleset: &'a Ruleset,
    family: Family,
    syntax: Syntax,
    /// Route chains in use: (key kind, routing, backend groups) → name.
    routes: BTreeMap<(KeyKind, RoutingKey, Pickers), String>,
    /// Backend groups in use: key kind, set and slot count.
    groups: BTreeSet<Group>,
    /// The dnat chains in use: each group's, for frontends without (`false`)
    /// or with (`true`) session affinity.
    pickers: BTreeSet<(Group, bool)>,
    /// Numbers of the affinity entries (see [`affinity`]).
    numbers: affinity::Numbers,
    /// The affinity lookup maps in use: key kind and set.
    affinity_lookups: BTreeSet<(KeyKind, SetKind)>,
    /// The affinity memory maps in use (name → declaration), and the
    /// entries' chains in IR order.
    affinity_maps: BTreeMap<String, String>,
    affinity_chains: Vec<Object>,
    elements: BTreeMap<String, Vec<Element>>,
}

/// Frontends whose backend set has the same number of slots and the same
/// way of picking one share one dnat chain and one backends map.
type Group = (KeyKind, SetKind, u32, Selection);

/// For the cluster-wide and the node-local set (indexed by `SetKind`): the
/// slot count and selection of the frontend's group, when routed there,
/// and whether the frontend's Service has session affinity.
type Pickers = [Option<(u32, Selection, bool)>; 2];

/// `-hash` in the names of source-hash groups' maps and chains.
fn selection_word(selection: Selection) -> &'static str {
    match selection {
        Selection::Random => "",
        Selection::SourceHash => "-hash",
    }
}

fn backends_map((kind, set, modulus, selection): Group) -> String {
    format!(
        "{}-{}{}-{modulus}",
        kind.name(),
        set_name(set),
        selection_word(selection)
    )
}

fn dnat_chain((kind, set, modulus, selection): Group, affinity: bool) -> String {
    let suffix = if affinity { "-affinity" } else { "" };
    format!(
        "dnat-{}-{}{}-{modulus}{suffix}",
        kind.name(),
        set_name(set),
        selection_word(selection)
    )
}

/// How many slots `backends` get in all under `selection`: random slots
/// ([`slot_count`]) or the source-hash table's size.
fn group_slots(backends: &[Backend], selection: Selection) -> u32 {
    match selection {
        Selection::Random => slot_count(backends),
        Selection::SourceHash => selection::table_size(backends.len()),
    }
}

/// A hashable, ordered stand-in for [`Routing`].
type RoutingKey = [(u8, u8, bool); 3];

fn routing_key(routing: &Routing) -> RoutingKey {
    let one = |r: &Route| match *r {
        Route::Forward { set, masquerade } => (0, set as u8, masquerade),
        Route::Reject => (1, 0, false),
        Route::Drop => (2, 0, false),
    };
    [
        one(&routing.node),
        one(&routing.pods),
        one(&routing.external),
    ]
}

impl<'a> FamilyEmitter<'a> {
    fn new(ruleset: &'a Ruleset, family: Family) -> Self {
        FamilyEmitter {
            ruleset,
            family,
            syntax: Syntax::of(family),
            routes: BTreeMap::new(),
            groups: BTreeSet::new(),
            pickers: BTreeSet::new(),
            numbers: affinity::Numbers::default(),
            affinity_lookups: BTreeSet::new(),
            affinity_maps: BTreeMap::new(),
            affinity_chains: Vec::new(),
            elements: BTreeMap::new(),
        }
    }

    fn push(&mut self, set: &'static str, element: Element) {
        match self.elements.get_mut(set) {
            Some(elements) => elements.push(element),
            None => self.push_owned(set.to_string(), element),
        }
    }

    fn push_owned(&mut self, set: String, element: Element) {
        self.elements.entry(set).or_default().push(element);
    }

    /// The family's table: every object and element.
    fn table(mut self) -> Table {
        self.collect();
        let mut objects = Vec::new();
        self.declarations(&mut objects);
        self.base_chains(&mut objects);
        self.route_chains(&mut objects);
        self.dnat_chains(&mut objects);
        objects.append(&mut self.affinity_chains);
        Table {
            family: TableFamily::of(self.family),
            objects,
            elements: self.elements,
        }
    }

    /// Walks the IR once, filling every set and map of this family.
    fn collect(&mut self) {
        let ruleset = self.ruleset;
        let family = self.family;
        let of_family = |ip: &IpAddr| Family::of(ip) == family;
        for net in ruleset
            .cluster_cidrs
            .iter()
            .filter(|n| of_family(&n.addr()))
        {
            self.push("cluster-cidrs", Element::new(net.to_string()));
        }
        for net in ruleset
            .service_cidrs
            .iter()
            .filter(|n| of_family(&n.addr()))
        {
            self.push("service-cidrs", Element::new(net.to_string()));
        }
        for ip in ruleset.cluster_ips.iter().filter(|ip| of_family(ip)) {
            let mut text = String::new();
            push_ip(&mut text, ip);
            self.push("cluster-ips", Element::new(text));
        }
        if let FamilyScope::In(nets) = ruleset.nodeport_scope.for_family(family) {
            for net in nets {
                self.push("nodeport-cidrs", Element::new(net.to_string()));
            }
        }
        for service in ruleset.services.iter().filter(|s| s.family == family) {
            let port = service
                .affinity_timeout_seconds
                .and_then(|timeout| self.affinity_port(service, timeout));
            for frontend in &service.frontends {
                let key = frontend_key(service, frontend);
                self.frontend(service, frontend, &key, port.as_ref());
            }
        }
        let has_node = ruleset.node.is_some();
        for ip in hairpin_candidates(has_node, ruleset.services.iter().map(|e| &**e), family) {
            self.push("hairpin", Element::new(hairpin_element(&ip)));
        }
    }

    /// The session affinity objects and elements of `service`, which keeps
    /// clients for `timeout` seconds: its lookup and record chains, the
    /// memory maps of its shard, and its backends as members of each set
    /// it forwards to. `None` when it forwards nowhere (no endpoints):
    /// there is nothing to remember.
    fn affinity_port(&mut self, service: &Entry, timeout: u32) -> Option<affinity::Port> {
        let sets = affinity::sets(service);
        if sets.is_empty() {
            return None;
        }
        let port = affinity::Port {
            number: self.numbers.assign(service),
            family: self.family,
            protocol: service.protocol,
            timeout,
            sets,
        };
        self.affinity_maps.extend(port.memory_maps());
        for &set in &port.sets {
            self.affinity_chains
                .push(chain(&port.lookup_chain(set), vec![port.lookup_rule(set)]));
            let members = self.elements.entry(affinity::BACKENDS.into()).or_default();
            for backend in service.backends.get(set) {
                let mut key = String::with_capacity(32);
                push_ip(&mut key, &backend.address);
                key.push_str(" . ");
                push_decimal(&mut key, u64::from(backend.port));
                key.push_str(" . ");
                push_decimal(&mut key, u64::from(affinity::id(port.number, set)));
                members.push(Element::new(key));
            }
        }
        self.affinity_chains
            .push(chain(&port.record_chain(), port.record_rules()));
        Some(port)
    }

    fn frontend(
        &mut self,
        service: &Entry,
        frontend: &Frontend,
        key: &str,
        port: Option<&affinity::Port>,
    ) {
        let kind = KeyKind::of(frontend);
        let comment = safe_comment(&service.display_name());
        let dispatch = match kind {
            KeyKind::Vip => "frontends",
            KeyKind::NodePort => "nodeports",
        };
        let remembers = port.is_some();
        // Where postrouting records the choice (see `affinity`). External
        // and LoadBalancer frontends without affinity are listed too (a
        // ClusterIP is told by `cluster-ips`), so that only NodePort
        // translations reach the NodePort entries.
        match (kind, port) {
            (KeyKind::Vip, Some(port)) => self.push(
                affinity::RECORD_VIPS,
                Element::mapping(key, format!("goto {}", port.record_chain()))
                    .with_comment(comment.clone()),
            ),
            (KeyKind::Vip, None) if frontend.kind != FrontendKind::ClusterIp => {
                self.push(affinity::RECORD_VIPS, Element::mapping(key, "return"))
            }
            (KeyKind::Vip, None) => {}
            (KeyKind::NodePort, Some(port)) => self.push(
                affinity::RECORD_NODEPORTS,
                Element::mapping(key, format!("goto {}", port.record_chain()))
                    .with_comment(comment.clone()),
            ),
            (KeyKind::NodePort, None) => {}
        }
        let mut pickers = [None, None];
        for set in forwarded_sets(frontend) {
            let backends = service.backends.get(set);
            // Slot by slot, the backend it names: runs of one backend in
            // proportion to its weight, or the source-hash table.
            let (runs, table) = match service.selection {
                Selection::Random => (slots(backends), Vec::new()),
                Selection::SourceHash => (Vec::new(), selection::slot_table(backends)),
            };
            let modulus = runs.iter().sum::<u32>() + table.len() as u32;
            let group = (kind, set, modulus, service.selection);
            // One map lookup per set, not per slot: big clusters have
            // hundreds of thousands of slots.
            let map = self.elements.entry(backends_map(group)).or_default();
            let mut push = |slot: u32, target: String| {
                let mut element_key = String::with_capacity(key.len() + 8);
                element_key.push_str(key);
                element_key.push_str(" . ");
                push_decimal(&mut element_key, u64::from(slot));
                map.push(Element::mapping(element_key, target));
            };
            let mut slot: u32 = 0;
            for (backend, count) in backends.iter().zip(runs) {
                let target = backend_target(backend);
                for _ in 0..count {
                    push(slot, target.clone());
                    slot += 1;
                }
            }
            if !table.is_empty() {
                let targets: Vec<String> = backends.iter().map(backend_target).collect();
                for (slot, backend) in table.into_iter().enumerate() {
                    push(slot as u32, targets[backend as usize].clone());
                }
            }
            self.groups.insert(group);
            self.pickers.insert((group, remembers));
            pickers[set as usize] = Some((modulus, service.selection, remembers));
            if let Some(port) = port {
                self.affinity_lookups.insert((kind, set));
                self.push_owned(
                    affinity::lookup_map(kind.name(), set),
                    Element::mapping(key, format!("jump {}", port.lookup_chain(set)))
                        .with_comment(comment.clone()),
                );
            }
        }
        let route_chain = self.route_chain(kind, &frontend.routing, pickers);
        self.push(
            dispatch,
            Element::mapping(key, format!("goto {route_chain}")).with_comment(comment),
        );
        if kind == KeyKind::Vip && !frontend.allowed_sources.is_empty() {
            self.push("firewalled", Element::new(key));
            for net in &frontend.allowed_sources {
                self.push("allowed-sources", Element::new(format!("{key} . {net}")));
            }
        }
    }

    /// The route chain for a routing and its backend groups, created on
    /// first use.
    fn route_chain(&mut self, kind: KeyKind, routing: &Routing, pickers: Pickers) -> String {
        self.routes
            .entry((kind, routing_key(routing), pickers))
            .or_insert_with(|| route_chain_name(kind, routing, pickers))
            .clone()
    }

    fn declarations(&self, out: &mut Vec<Object>) {
        let s = self.syntax;
        let a = s.addr;
        let sets = [
            (
                "cluster-cidrs",
                format!("type {}; flags interval;", s.addr_type),
            ),
            (
                "service-cidrs",
                format!("type {}; flags interval;", s.addr_type),
            ),
            (
                "nodeport-cidrs",
                format!("type {}; flags interval;", s.addr_type),
            ),
            ("cluster-ips", format!("type {};", s.addr_type)),
            ("hairpin", format!("typeof {a} saddr . {a} daddr;")),
            (
                "firewalled",
                format!("typeof {a} daddr . meta l4proto . th dport;"),
            ),
            (
                "allowed-sources",
                format!("typeof {a} daddr . meta l4proto . th dport . {a} saddr; flags interval;"),
            ),
        ];
        for (name, spec) in sets {
            out.push(Object::Set {
                name: name.to_string(),
                spec,
            });
        }
        let map = |name: String, spec: String| Object::Map { name, spec };
        let vip = format!("{a} daddr . meta l4proto . th dport");
        let nodeport = "meta l4proto . th dport".to_string();
        out.push(map("frontends".into(), format!("typeof {vip} : verdict;")));
        out.push(map(
            "nodeports".into(),
            format!("typeof {nodeport} : verdict;"),
        ));
        // Session affinity (see [`affinity`]): declared whether or not a
        // Service uses it, so the base chains do not change when one does.
        out.push(Object::Set {
            name: affinity::BACKENDS.into(),
            spec: format!("typeof {a} daddr . th dport . numgen random mod 1;"),
        });
        out.push(map(
            affinity::RECORD_VIPS.into(),
            format!("typeof {vip} : verdict;"),
        ));
        out.push(map(
            affinity::RECORD_NODEPORTS.into(),
            format!("typeof {nodeport} : verdict;"),
        ));
        for &(kind, set) in &self.affinity_lookups {
            out.push(map(
                affinity::lookup_map(kind.name(), set),
                format!("typeof {} : verdict;", self.key_expr(kind)),
            ));
        }
        for (name, spec) in &self.affinity_maps {
            out.push(map(name.clone(), spec.clone()));
        }
        // Source-hash maps are declared with `numgen` too: the key is the
        // same 32-bit integer, and nft 1.0.6 crashes listing a map whose
        // `typeof` names `jhash`.
        for group in &self.groups {
            let key = self.key_expr(group.0);
            out.push(map(
                backends_map(*group),
                format!(
                    "typeof {key} . numgen random mod {} : {a} daddr . th dport;",
                    group.2
                ),
            ));
        }
    }

    /// The lookup key of a frontend kind, as an nft expression.
    fn key_expr(&self, kind: KeyKind) -> String {
        match kind {
            KeyKind::Vip => format!("{} daddr . meta l4proto . th dport", self.syntax.addr),
            KeyKind::NodePort => "meta l4proto . th dport".to_string(),
        }
    }

    fn base_chains(&self, out: &mut Vec<Object>) {
        let s = self.syntax;
        let a = s.addr;
        let hooks = [
            ("prerouting", "prerouting", -100),
            ("output", "output", -100),
        ];
        for (name, hook, priority) in hooks {
            out.push(Object::Chain {
                name: name.to_string(),
                hook: Some(format!(
                    "type nat hook {hook} priority {priority}; policy accept;"
                )),
                rules: vec!["jump services".to_string()],
            });
        }
        let mut postrouting = vec![format!("ct status dnat jump {}", affinity::RECORD)];
        postrouting.push(format!(
            "ct status dnat {a} saddr . {a} daddr @hairpin masquerade"
        ));
        postrouting.push(format!("meta mark & {MASQUERADE_MARK} == 0 return"));
        postrouting.push(format!(
            "meta mark set meta mark ^ {MASQUERADE_MARK} masquerade fully-random"
        ));
        out.push(Object::Chain {
            name: "postrouting".to_string(),
            hook: Some("type nat hook postrouting priority 100; policy accept;".to_string()),
            rules: postrouting,
        });
        let mut services = vec![
            format!("{a} daddr . meta l4proto . th dport @firewalled {a} daddr . meta l4proto . th dport . {a} saddr != @allowed-sources drop"),
            format!("{a} daddr . meta l4proto . th dport vmap @frontends"),
        ];
        match self.ruleset.nodeport_scope.for_family(self.family) {
            FamilyScope::AnyLocal => services.push(format!(
                "fib daddr type local {a} daddr != {} meta l4proto . th dport vmap @nodeports",
                s.loopback
            )),
            FamilyScope::In(nets) => {
                if !nets.is_empty() {
                    services.push(format!(
                        "fib daddr type local {a} daddr @nodeport-cidrs meta l4proto . th dport vmap @nodeports"
                    ));
                }
            }
        }
        services.push(format!("{a} daddr @cluster-ips goto {REFUSE}"));
        services.push(format!("{a} daddr @service-cidrs drop"));
        out.push(chain("services", services));
        out.push(chain(
            REFUSE,
            vec![
                "meta l4proto tcp reject with tcp reset".into(),
                "reject".into(),
            ],
        ));
        out.push(chain(
            affinity::RECORD,
            affinity::record_dispatch(self.family),
        ));
    }

    fn route_chains(&self, out: &mut Vec<Object>) {
        let mut chains: Vec<(&String, KeyKind, &RoutingKey, Pickers)> = self
            .routes
            .iter()
            .map(|((kind, key, pickers), name)| (name, *kind, key, *pickers))
            .collect();
        chains.sort();
        for (name, kind, key, pickers) in chains {
            let routing = routing_from_key(key);
            out.push(chain(name, self.route_rules(kind, &routing, pickers)));
        }
    }

    /// Source classes checked in the order node, pods, external; a class
    /// whose route equals the external one needs no rule of its own unless
    /// an earlier class must not fall into a later one.
    fn route_rules(&self, kind: KeyKind, routing: &Routing, pickers: Pickers) -> Vec<String> {
        let a = self.syntax.addr;
        let mut rules = Vec::new();
        let pods_differ = routing.pods != routing.external;
        if routing.node != routing.external || pods_differ {
            rules.push(format!(
                "fib saddr type local {}",
                action(kind, routing.node, pickers)
            ));
        }
        if pods_differ {
            // The pods class as the detector says; an interface name is
            // 1 to 15 of [A-Za-z0-9_.-] (IR invariant), safe in quotes.
            let pods = match &self.ruleset.local_detector {
                LocalDetector::Cidrs => format!("{a} saddr @cluster-cidrs"),
                LocalDetector::InterfacePrefix(prefix) => format!("iifname \"{prefix}*\""),
                LocalDetector::Interface(name) => format!("iifname \"{name}\""),
            };
            rules.push(format!("{pods} {}", action(kind, routing.pods, pickers)));
        }
        rules.push(action(kind, routing.external, pickers));
        rules
    }

    /// One chain per backend group: draw a slot at random (or hash the
    /// client's address into one, for source-hash groups, with the seed
    /// every node shares) and translate, in one map lookup. Frontends with
    /// session affinity have a chain of their own per group, which first
    /// jumps to the frontend's lookup chain (a remembered client is
    /// translated there; a miss returns).
    fn dnat_chains(&self, out: &mut Vec<Object>) {
        let s = self.syntax;
        for (group, remembers) in &self.pickers {
            let mut rules = Vec::new();
            if *remembers {
                rules.push(format!(
                    "{} vmap @{}",
                    self.key_expr(group.0),
                    affinity::lookup_map(group.0.name(), group.1)
                ));
            }
            let slot = match group.3 {
                Selection::Random => format!("numgen random mod {}", group.2),
                Selection::SourceHash => format!(
                    "jhash {} saddr mod {} seed {:#010x}",
                    s.addr,
                    group.2,
                    selection::SEED
                ),
            };
            rules.push(format!(
                "meta l4proto {{ tcp, udp, sctp }} dnat {} to {} . {slot} map @{}",
                s.family,
                self.key_expr(group.0),
                backends_map(*group)
            ));
            out.push(chain(&dnat_chain(*group, *remembers), rules));
        }
    }
}

/// A backends map value: `address . port`.
fn backend_target(backend: &Backend) -> String {
    let mut target = String::with_capacity(24);
    push_ip(&mut target, &backend.address);
    target.push_str(" . ");
    push_decimal(&mut target, u64::from(backend.port));
    target
}

/// Appends `ip` as `Display` writes it; IPv4 without `fmt`, whose
/// `Ipv4Addr` formatting was the largest cost of emitting a big ruleset.
fn push_ip(out: &mut String, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, *v4),
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// A regular chain (no hook) with `rules`.
fn chain(name: &str, rules: Vec<String>) -> Object {
    Object::Chain {
        name: name.to_string(),
        hook: None,
        rules,
    }
}

/// The statement and verdict carrying out a route: forwarding jumps
/// straight to the dnat chain of the frontend's backend group.
fn action(kind: KeyKind, route: Route, pickers: Pickers) -> String {
    match route {
        Route::Forward { set, masquerade } => {
            let mark = if masquerade {
                format!("meta mark set meta mark | {MASQUERADE_MARK} ")
            } else {
                String::new()
            };
            // `frontend` makes a picker for every set a route forwards to;
            // that the set is not empty (so the modulus is at least 1) is
            // the IR's invariant, which `ir::validate` checks.
            let (modulus, selection, remembers) = pickers[set as usize]
                .expect("frontend() makes a picker for every set a Forward route names");
            debug_assert!(
                modulus >= 1,
                "IR invariant: a Forward route names a non-empty set"
            );
            format!(
                "{mark}goto {}",
                dnat_chain((kind, set, modulus, selection), remembers)
            )
        }
        Route::Reject => format!("goto {REFUSE}"),
        Route::Drop => "drop".to_string(),
    }
}

fn route_word(route: &Route) -> String {
    match route {
        Route::Forward { set, masquerade } => {
            format!(
                "{}{}",
                set_name(*set),
                if *masquerade { "-masq" } else { "" }
            )
        }
        Route::Reject => "reject".to_string(),
        Route::Drop => "drop".to_string(),
    }
}

/// `vip-cluster-masq-c2` when every class is routed alike to a cluster
/// group of 2 slots, otherwise like
/// `vip-node-cluster-masq-pods-cluster-external-local-c3-l1` (`h` marks a
/// source-hash group, `a` the group chain of frontends with session
/// affinity).
fn route_chain_name(kind: KeyKind, routing: &Routing, pickers: Pickers) -> String {
    let mut name = if routing.node == routing.external && routing.pods == routing.external {
        format!("{}-{}", kind.name(), route_word(&routing.external))
    } else {
        format!(
            "{}-node-{}-pods-{}-external-{}",
            kind.name(),
            route_word(&routing.node),
            route_word(&routing.pods),
            route_word(&routing.external)
        )
    };
    for (letter, picker) in ["c", "l"].iter().zip(pickers) {
        if let Some((modulus, selection, remembers)) = picker {
            let _ = write!(
                name,
                "-{letter}{modulus}{}{}",
                if selection == Selection::SourceHash {
                    "h"
                } else {
                    ""
                },
                if remembers { "a" } else { "" }
            );
        }
    }
    name
}

/// Addresses that may reach themselves through this node's Services: only
/// pods on this node send their traffic through its rules, so only node-local
/// backends (any backend for a node-agnostic ruleset).
fn hairpin_candidates<'a>(
    has_node: bool,
    entries: impl Iterator<Item = &'a Entry>,
    family: Family,
) -> BTreeSet<IpAddr> {
    entries
        .filter(|s| s.family == family)
        .flat_map(|s| match has_node {
            true => s.backends.local.iter(),
            false => s.backends.cluster.iter(),
        })
        .map(|b| b.address)
        .collect()
}

/// The `hairpin` element of a backend address: it as source and
/// destination.
fn hairpin_element(ip: &IpAddr) -> String {
    let mut text = String::with_capacity(40);
    push_ip(&mut text, ip);
    text.push_str(" . ");
    push_ip(&mut text, ip);
    text
}

fn routing_from_key(key: &RoutingKey) -> Routing {
    let one = |(tag, set, masquerade): (u8, u8, bool)| match tag {
        0 => Route::Forward {
            set: if set == SetKind::Cluster as u8 {
                SetKind::Cluster
            } else {
                SetKind::Local
            },
            masquerade,
        },
        1 => Route::Reject,
        _ => Route::Drop,
    };
    Routing {
        node: one(key[0]),
        pods: one(key[1]),
        external: one(key[2]),
    }
}

/// The dispatch key of a frontend: `addr . proto . port`, or for NodePorts
/// `proto . port`.
fn frontend_key(service: &Entry, frontend: &Frontend) -> String {
    let proto = service.protocol.as_str();
    match frontend.address {
        Some(addr) if frontend.kind != FrontendKind::NodePort => {
            let mut key = String::with_capacity(32);
            push_ip(&mut key, &addr);
            key.push_str(" . ");
            key.push_str(proto);
            key.push_str(" . ");
            push_decimal(&mut key, u64::from(frontend.port));
            key
        }
        _ => format!("{proto} . {}", frontend.port),
    }
}

/// The backend sets a frontend's routes forward to.
fn forwarded_sets(frontend: &Frontend) -> BTreeSet<SetKind> {
    [
        frontend.routing.node,
        frontend.routing.pods,
        frontend.routing.external,
    ]
    .iter()
    .filter_map(|r| match r {
        Route::Forward { set, .. } => Some(*set),
        _ => None,
    })
    .collect()
}

/// What the shared objects of a table are made for, as entries use them:
/// backend groups (slot count and selection), dnat chains (a group's, with
/// or without session affinity) and route chains (by key kind, routing and pickers, with their
/// names). The emitter's `frontend` decides the same while it writes
/// elements.
struct Features {
    groups: BTreeSet<Group>,
    pickers: BTreeSet<(Group, bool)>,
    routes: BTreeMap<(KeyKind, RoutingKey, Pickers), String>,
}

/// The [`Features`] the `entries` of `family` use.
fn features<'a>(entries: impl Iterator<Item = &'a Entry>, family: Family) -> Features {
    let mut features = Features {
        groups: BTreeSet::new(),
        pickers: BTreeSet::new(),
        routes: BTreeMap::new(),
    };
    for entry in entries.filter(|e| e.family == family) {
        let remembers =
            entry.affinity_timeout_seconds.is_some() && !affinity::sets(entry).is_empty();
        for frontend in &entry.frontends {
            let kind = KeyKind::of(frontend);
            let mut pickers = [None, None];
            for set in forwarded_sets(frontend) {
                let slots = group_slots(entry.backends.get(set), entry.selection);
                let group = (kind, set, slots, entry.selection);
                features.groups.insert(group);
                features.pickers.insert((group, remembers));
                pickers[set as usize] = Some((slots, entry.selection, remembers));
            }
            features
                .routes
                .entry((kind, routing_key(&frontend.routing), pickers))
                .or_insert_with(|| route_chain_name(kind, &frontend.routing, pickers));
        }
    }
    features
}

/// How many random slots `backends` get in all (see [`slots`]).
fn slot_count(backends: &[Backend]) -> u32 {
    let first = backends.first().map(|b| b.weight.max(1));
    if backends.iter().all(|b| Some(b.weight.max(1)) == first) {
        return backends.len() as u32;
    }
    slots(backends).iter().sum()
}

/// Random slots per backend, in proportion to the weights: equal weights
/// give one slot each, so `numgen random mod <total>` picks uniformly.
/// Weights are divided by their greatest common divisor and, past
/// [`MAX_SLOTS`] in total, scaled down (each backend keeps at least one).
pub fn slots(backends: &[Backend]) -> Vec<u32> {
    let weights: Vec<u64> = backends
        .iter()
        .map(|b| u64::from(b.weight.max(1)))
        .collect();
    let divisor = weights.iter().copied().fold(0, gcd64).max(1);
    let mut slots: Vec<u64> = weights.iter().map(|w| w / divisor).collect();
    let total: u64 = slots.iter().sum();
    let max = u64::from(MAX_SLOTS).max(backends.len() as u64);
    if total > max {
        slots = slots.iter().map(|s| (s * max / total).max(1)).collect();
    }
    slots.into_iter().map(|s| s as u32).collect()
}

/// Keeps comment text inside a safe alphabet so nothing from a manifest can
/// close the string or start a new statement.
fn safe_comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_./:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(weights: &[u32]) -> Vec<Backend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Backend {
                address: format!("10.0.0.{}", i + 1).parse().unwrap(),
                port: 80,
                weight: *w,
            })
            .collect()
    }

    #[test]
    fn slots_follow_weights() {
        assert_eq!(slots(&backends(&[1, 1, 2])), vec![1, 1, 2]);
        assert_eq!(slots(&backends(&[5, 5, 10])), vec![1, 1, 2]);
        assert_eq!(slots(&backends(&[1; 7])), vec![1; 7]);
        let skewed = slots(&backends(&[10_000, 1]));
        assert!(skewed.iter().sum::<u32>() <= MAX_SLOTS);
        assert_eq!(skewed[1], 1, "every backend keeps a slot");
    }

    #[test]
    fn tcp_is_refused_with_a_reset() {
        use crate::ir::{Entry, Frontend, NodePortScope, Protocol, Routing};
        let reject = Route::Reject;
        let ruleset = Ruleset {
            version: crate::ir::VERSION,
            node: None,
            cluster_cidrs: Vec::new(),
            local_detector: crate::ir::LocalDetector::Cidrs,
            service_cidrs: Vec::new(),
            cluster_ips: vec!["fd00:10:96::1".parse().unwrap()],
            node_addresses: Vec::new(),
            nodeport_scope: NodePortScope::AnyLocal,
            services: vec![std::sync::Arc::new(Entry {
                family: Family::Ipv6,
                namespace: "default".into(),
                name: "empty".into(),
                port_name: String::new(),
                protocol: Protocol::Tcp,
                frontends: vec![Frontend {
                    kind: FrontendKind::ClusterIp,
                    address: Some("fd00:10:96::1".parse().unwrap()),
                    port: 80,
                    allowed_sources: Vec::new(),
                    routing: Routing {
                        node: reject,
                        pods: reject,
                        external: reject,
                    },
                }],
                backends: Default::default(),
                affinity_timeout_seconds: None,
                health_check_node_port: None,
                selection: Default::default(),
            })],
        };
        let text = emit(&ruleset);
        let table6 = &text[text.find("table ip6 knc {").unwrap()..];
        assert!(table6.contains(
            "\tchain refuse {\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}"
        ));
        assert!(table6.contains("\tchain vip-reject {\n\t\tgoto refuse\n\t}"));
        assert!(table6.contains("ip6 daddr @cluster-ips goto refuse"));
        let bare = text.lines().filter(|l| l.trim() == "reject").count();
        assert_eq!(bare, 2, "a bare reject outside the refuse chains:\n{text}");
    }

    #[test]
    fn comments_cannot_break_out() {
        assert_eq!(
            safe_comment("a\" ; flush ruleset #"),
            "a____flush_ruleset__"
        );
        assert_eq!(safe_comment("default/web:http"), "default/web:http");
    }
}
