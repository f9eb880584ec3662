//! Builds the [`Restore`] model from an IR ruleset: which chains exist, in
//! which order, and what each holds (the layout is described in the module
//! documentation of [`iptables`](super)).
//!
//! Chains are declared as they are first needed, which is the order they are
//! written in. Backend and set chains are recorded as a few numbers
//! ([`Table::backend`], [`Table::set`]) and written only when the model is
//! rendered; every other chain's rules are written here, as text.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::dispatch::{Leaves, Tree};
use super::names::{identity, push_comment, push_identity, Claim, Namer, Seeded};
use super::restore::{ChainId, Frontend, Jump, Pick, Restore, Table, Target, NONE};
use crate::ir::{
    selection, Backend, Entry, Family, FrontendKind, LocalDetector, Protocol, Route, Ruleset,
    Selection, SetKind,
};
use crate::text::{push_decimal, push_ip};

/// The model of `family`'s part of `ruleset`.
pub(super) fn build(ruleset: &Ruleset, family: Family) -> Restore {
    let mut e = Emitter::new(ruleset, family);
    e.nat();
    e.filter();
    for t in [&e.nat, &e.filter] {
        debug_assert!(t.names_are_unique(), "a chain declared twice");
    }
    Restore {
        family,
        node: ruleset.node.clone(),
        nat: e.nat,
        filter: e.filter,
    }
}

/// Masquerade mark, set in `nat` and consumed in `KNC-POSTROUTING`.
const MARK_MASQ: &str = "0x4000";
/// Drop mark/mask, set in `nat` and consumed in `KNC-FILTER`.
const MARK_DROP: &str = "0x8000/0xc000";
/// Reject mark/mask, set in `nat` and consumed in `KNC-FILTER`.
const MARK_REJECT: &str = "0xc000/0xc000";

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
    /// Index in `nat` of `{p:.10}` of each probability written, by its
    /// bits: sets repeat the same few (1/2, 1/3, … for equal weights), and
    /// `fmt` is slow.
    probabilities: HashMap<u64, u32, Seeded>,
    /// Index in `nat` of the `-m cluster` match of each source-hash slot
    /// written.
    slot_matches: HashMap<u32, u32, Seeded>,
    /// Scratch for one set's picks and weights.
    picks: Vec<(Pick, u64)>,
    /// The cluster and node-local set chains of the entry being emitted,
    /// once claimed: each frontend route asks again (up to five times per
    /// frontend), and naming means hashing.
    sets: [Option<ChainId>; 2],
    /// The identity of the entry being emitted (family, namespace, name,
    /// port name, protocol), as is and as one length-prefixed field: every
    /// chain of the entry is named from it.
    spid: String,
    spid_field: String,
    /// Scratch for a backend's address.
    address: String,
}

impl<'a> Emitter<'a> {
    fn new(ruleset: &'a Ruleset, family: Family) -> Self {
        // Room for what the ruleset will most likely need, so the big
        // buffers are not regrown (and copied) as they fill up: each backend
        // makes a chain and a pick in its set's chain (their rules are
        // computed), each frontend a dispatch rule and a few rules of its
        // frontend chain (kept as text).
        let (mut entries, mut frontends, mut backends) = (0, 0, 0);
        for sp in ruleset.services.iter().filter(|s| s.family == family) {
            entries += 1;
            frontends += sp.frontends.len();
            backends +=
                sp.backends.get(SetKind::Cluster).len() + sp.backends.get(SetKind::Local).len();
        }
        let chains = backends + 2 * entries + frontends / 4 + 64;
        let clusters_ips = ruleset.cluster_ips.len();
        let mut nat = Table::with_capacity(
            chains,
            frontends / 8 + 64,
            50 * backends + 150 * frontends + 4096,
            backends,
        );
        // The pods class as the local detector says: one match per pod
        // CIDR, or the input interface (a name is 1 to 15 of
        // [A-Za-z0-9_.-], an IR invariant: one shell-free word).
        nat.set_pod_matches(match &ruleset.local_detector {
            LocalDetector::Cidrs => of_family(&ruleset.cluster_cidrs, family)
                .iter()
                .map(|c| format!(" -s {c} -j "))
                .collect(),
            LocalDetector::InterfacePrefix(prefix) => vec![format!(" -i {prefix}+ -j ")],
            LocalDetector::Interface(name) => vec![format!(" -i {name} -j ")],
        });
        Emitter {
            ruleset,
            family,
            namer: Namer::with_capacity(chains + clusters_ips / 8),
            nat,
            filter: Table::with_capacity(
                clusters_ips / 8 + 16,
                clusters_ips + clusters_ips / 8 + 16,
                40 * clusters_ips + 4096,
                0,
            ),
            pod_cidrs: of_family(&ruleset.cluster_cidrs, family),
            probabilities: HashMap::default(),
            slot_matches: HashMap::default(),
            picks: Vec::new(),
            sets: [None; 2],
            spid: String::new(),
            spid_field: String::new(),
            address: String::new(),
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
            NAT_FIXED.map(|c| self.nat.chain(c));
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
        let mut name = String::new();
        for sp in ruleset.services.iter().filter(|s| s.family == family) {
            self.spid.clear();
            push_identity(
                &mut self.spid,
                &[
                    fam,
                    &sp.namespace,
                    &sp.name,
                    &sp.port_name,
                    sp.protocol.as_str(),
                ],
            );
            self.spid_field.clear();
            push_identity(&mut self.spid_field, &[&self.spid]);
            name.clear();
            push_comment(&mut name, &sp.display_name());
            self.sets = [None; 2];
            for fe in &sp.frontends {
                let target = self.frontend_target(sp, fe);
                let target = self.nat.target(target);
                let proto = sp.protocol.as_str();
                let what = match fe.kind {
                    FrontendKind::ClusterIp => "cluster-ip",
                    FrontendKind::ExternalIp => "external-ip",
                    FrontendKind::LoadBalancer => "load-balancer",
                    FrontendKind::NodePort => "node-port",
                    FrontendKind::Gateway => "gateway",
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
                    out.push_str(target);
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
        let prefix = destination_match(width);
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
    fn frontend_target(&mut self, sp: &Entry, fe: &crate::ir::Frontend) -> Target {
        let r = fe.routing;
        let pods_differ = r.pods != r.external
            && (!self.pod_cidrs.is_empty() || !self.ruleset.local_detector.is_cidrs());
        let node_differs = r.node != r.external || pods_differ;
        let simple = fe.allowed_sources.is_empty() && !node_differs && !pods_differ;
        if simple {
            if let Some(target) = self.plain_target(sp, r.external) {
                return target;
            }
        }
        let allowed = of_family(&fe.allowed_sources, self.family);
        let allowed_text = allowed
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let fe_chain = self.namer.claim(&mut self.nat, "FE", |id| {
            id.raw(&self.spid_field)
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
        let Claim { chain, fresh } = fe_chain;
        if !fresh {
            return Target::Chain(chain);
        }
        let firewall = if !fe.allowed_sources.is_empty() {
            let fam = self.fam();
            let fw = self.namer.claim(&mut self.nat, "FW", |id| {
                id.field(fam).field(&allowed_text);
            });
            if fw.fresh {
                for c in &allowed {
                    self.nat.rule(fw.chain, &format!("-s {c} -j RETURN"));
                }
                self.nat.rule(fw.chain, "-j KNC-MARK-DROP");
            }
            Some(fw.chain)
        } else {
            None
        };
        // In this order: the set chains a route needs are declared after
        // the frontend chain, in the order of the routes.
        let node = node_differs.then(|| self.jump(sp, r.node));
        let pods = pods_differ.then(|| self.jump(sp, r.pods));
        let external = self.jump(sp, r.external);
        self.nat.frontend(
            chain,
            Frontend {
                firewall,
                node,
                pods,
                external,
            },
        );
        Target::Chain(chain)
    }

    /// The single target of an unmasqueraded route, if it has one.
    fn plain_target(&mut self, sp: &Entry, route: Route) -> Option<Target> {
        match route {
            Route::Forward {
                set,
                masquerade: false,
            } => Some(Target::Chain(self.set_chain(sp, set))),
            Route::Forward {
                masquerade: true, ..
            } => None,
            Route::Reject => Some(Target::Fixed("KNC-MARK-REJECT")),
            Route::Drop => Some(Target::Fixed("KNC-MARK-DROP")),
        }
    }

    /// Where connections routed by `route` go.
    fn jump(&mut self, sp: &Entry, route: Route) -> Jump {
        match route {
            Route::Forward { set, masquerade } => Jump {
                masquerade,
                target: Target::Chain(self.set_chain(sp, set)),
            },
            Route::Reject => Jump {
                masquerade: false,
                target: Target::Fixed("KNC-MARK-REJECT"),
            },
            Route::Drop => Jump {
                masquerade: false,
                target: Target::Fixed("KNC-MARK-DROP"),
            },
        }
    }

    /// The chain choosing a backend of `sp`'s `set`, built on first use.
    /// Only called for a set a `Forward` route names, which the IR's
    /// invariants (checked by `ir::validate`) say is not empty and of the
    /// entry's family.
    fn set_chain(&mut self, sp: &Entry, set: SetKind) -> ChainId {
        if let Some(chain) = self.sets[set as usize] {
            return chain;
        }
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
        let Claim { chain, fresh } = self.namer.claim(&mut self.nat, kind, |id| {
            id.raw(&self.spid);
        });
        self.sets[set as usize] = Some(chain);
        if !fresh {
            return chain;
        }
        // Backend chains are declared after their set's chain, in order.
        let mut picks = std::mem::take(&mut self.picks);
        picks.clear();
        for b in sp.backends.get(set).iter().filter(of_family) {
            let pick = Pick {
                chain: self.backend_chain(sp, b),
                probability: NONE,
            };
            picks.push((pick, u64::from(b.weight.max(1))));
        }
        match sp.selection {
            Selection::Random => self.random_picks(&mut picks),
            Selection::SourceHash => {
                let backends: Vec<Backend> = sp
                    .backends
                    .get(set)
                    .iter()
                    .filter(of_family)
                    .cloned()
                    .collect();
                self.hash_picks(&mut picks, &backends);
            }
        }
        self.nat.set(
            chain,
            picks.iter().map(|(pick, _)| *pick),
            sp.affinity_timeout_seconds,
        );
        self.picks = picks;
        chain
    }

    /// The chance of each pick but the last given that no earlier one was
    /// taken: w_i / (w_i + … + w_n), the last taken unconditionally.
    fn random_picks(&mut self, picks: &mut [(Pick, u64)]) {
        let mut remaining: u64 = picks.iter().map(|(_, w)| w).sum();
        let last = picks.len() - 1;
        for (pick, w) in &mut picks[..last] {
            let p = probability(*w, remaining);
            remaining -= *w;
            pick.probability = *self.probabilities.entry(p.to_bits()).or_insert_with(|| {
                self.nat
                    .pick_match(format!(" -m statistic --mode random --probability {p:.10}"))
            });
        }
    }

    /// Source-hash picks (`backends` in the order of `picks`): one rule
    /// per slot of the table of [`selection::SMALL_TABLE_SIZE`] slots,
    /// `-m cluster --cluster-local-node <slot + 1>` (which hashes the
    /// client's address as nft's `jhash` does; iptables 1.8.9 refuses a
    /// `--cluster-local-nodemask` above 32, so slots cannot be grouped by
    /// mask), except the slots of the backend with the most, which takes
    /// what is left unconditionally.
    fn hash_picks(&mut self, picks: &mut Vec<(Pick, u64)>, backends: &[Backend]) {
        let table = selection::slot_table_of(backends, selection::SMALL_TABLE_SIZE);
        let mut counts = vec![0usize; backends.len()];
        for &backend in &table {
            counts[backend as usize] += 1;
        }
        // The first of the backends with the most slots.
        let rest = (0..backends.len())
            .rev()
            .max_by_key(|&i| counts[i])
            .expect("a forwarded set has backends");
        let mut slots = Vec::with_capacity(table.len());
        for (slot, &backend) in table.iter().enumerate() {
            if backend as usize == rest {
                continue;
            }
            let slot = slot as u32;
            let matched = *self.slot_matches.entry(slot).or_insert_with(|| {
                self.nat.pick_match(format!(
                    " -m cluster --cluster-total-nodes {} --cluster-local-node {} --cluster-hash-seed {:#010x}",
                    selection::SMALL_TABLE_SIZE,
                    slot + 1,
                    selection::SEED
                ))
            });
            let chain = picks[backend as usize].0.chain;
            slots.push((
                Pick {
                    chain,
                    probability: matched,
                },
                1,
            ));
        }
        slots.push((picks[rest].0, 1));
        *picks = slots;
    }

    /// The chain sending a connection to backend `b`, built on first use.
    fn backend_chain(&mut self, sp: &Entry, b: &Backend) -> ChainId {
        self.address.clear();
        push_ip(&mut self.address, b.address);
        let Claim { chain, fresh } = self.namer.claim(&mut self.nat, "SEP", |id| {
            id.raw(&self.spid_field)
                .field(&self.address)
                .decimal(u128::from(b.port));
        });
        if fresh {
            self.nat.backend(
                chain,
                &self.address,
                b.address.is_ipv6(),
                b.port,
                sp.protocol,
                sp.affinity_timeout_seconds.is_some(),
            );
        }
        chain
    }

    fn filter(&mut self) {
        let filter = self.filter.chain("KNC-FILTER");
        let reject = self.filter.chain("KNC-REJECT");
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
        let prefix = destination_match(width);
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
}

/// The chance a statistic rule takes a backend of weight `w` when the
/// backends not yet passed weigh `remaining` together.
fn probability(w: u64, remaining: u64) -> f64 {
    w as f64 / remaining as f64
}

/// The probabilities, for each backend but the last, that the statistic
/// rule picks it given that no earlier one did: `w_i / (w_i + … + w_n)`.
/// The last backend is taken unconditionally (its value is 1).
#[cfg(test)]
pub(super) fn probabilities(weights: &[u64]) -> Vec<f64> {
    let mut remaining: u64 = weights.iter().sum();
    weights
        .iter()
        .map(|&w| {
            let p = probability(w, remaining);
            remaining -= w;
            p
        })
        .collect()
}

/// A stable spelling of a route, for chain identities: `fwd-<set>-<masq>`
/// (the set as `Debug` writes it), `reject` or `drop`.
pub(super) fn route_id(r: Route) -> &'static str {
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

/// Appends `a/32` or `a/128`.
fn push_host_net(out: &mut String, a: IpAddr) {
    push_ip(out, a);
    out.push_str(match a {
        IpAddr::V4(_) => "/32",
        IpAddr::V6(_) => "/128",
    });
}

/// Matches destination prefix `p`/`len` of a `width`-bit family: `-d NET`.
fn destination_match(width: u32) -> impl Fn(&mut String, u128, u32) {
    move |out, p, len| {
        out.push_str("-d ");
        push_net(out, width, p, len);
    }
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
