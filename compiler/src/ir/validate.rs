//! The IR checked against its contract: [`validate`] tests every invariant
//! the module documentation promises that can be seen in a [`Ruleset`]
//! alone.
//!
//! Lowering guarantees them (debug builds check right after lowering), and
//! anything reading IR back from outside (the runtime's state record) must
//! check before trusting it: the emitters rely on them without checking.
//! The two remaining bullets of the contract, hairpin masquerading and what
//! happens to unserved ClusterIP ports, are duties of the emitters, not
//! properties of the data.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{valid_interface_name, LocalDetector, Ruleset, SetKind, VERSION};
use super::{Backend, Entry, Family, Frontend, FrontendKind, NodePortScope, Protocol, Route};

/// One promise of the IR's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// [`Ruleset::version`] is [`VERSION`]; nothing else is judged in IR of
    /// another version.
    Version,
    /// Sorted and deduplicated everywhere: entries by (family, namespace,
    /// name, port name, protocol), frontends by (kind, address, port),
    /// backends by (address, port), and every list of addresses or ranges.
    Sorted,
    /// No two frontends of the ruleset share (family, address, protocol,
    /// port), NodePorts counting as one address.
    UniqueFrontendKey,
    /// A `Forward` route never names an empty backend set.
    NoEmptyForward,
    /// Under the CIDR detector, without a cluster CIDR of an entry's
    /// family, `pods` equals `external` for every frontend of the entry.
    PodsAreExternal,
    /// An interface detector names a valid interface (1 to 15 bytes of
    /// `[A-Za-z0-9_.-]`) and comes with no cluster CIDRs.
    LocalDetector,
    /// Backend weights are at least 1.
    Weight,
    /// Every address in an entry (frontends, backends, allowed sources) is
    /// of the entry's family.
    OneFamily,
    /// A NodePort frontend has no address; every other frontend has one.
    FrontendAddress,
}

impl Invariant {
    /// Every invariant, in the order [`validate`] checks them.
    pub const ALL: [Invariant; 9] = [
        Invariant::Version,
        Invariant::Sorted,
        Invariant::UniqueFrontendKey,
        Invariant::NoEmptyForward,
        Invariant::PodsAreExternal,
        Invariant::LocalDetector,
        Invariant::Weight,
        Invariant::OneFamily,
        Invariant::FrontendAddress,
    ];

    /// The promise, worded as the IR's documentation words it.
    pub fn promise(self) -> &'static str {
        match self {
            Invariant::Version => "the IR is of this knc's format version",
            Invariant::Sorted => "sorted and deduplicated everywhere",
            Invariant::UniqueFrontendKey => {
                "frontend keys (family, address, protocol, port) are unique across the ruleset"
            }
            Invariant::NoEmptyForward => "a forward route never names an empty set",
            Invariant::PodsAreExternal => {
                "pods equals external when no cluster CIDR is of the entry's family"
            }
            Invariant::LocalDetector => {
                "an interface detector names a valid interface and has no cluster CIDRs"
            }
            Invariant::Weight => "weights are at least 1",
            Invariant::OneFamily => "everything in an entry is of the entry's family",
            Invariant::FrontendAddress => "NodePorts have no address, other frontends have one",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.promise())
    }
}

/// A broken promise: which invariant, where, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail} (broken invariant: {invariant})", .entry.as_deref().unwrap_or("ruleset"))]
pub struct Violation {
    pub invariant: Invariant,
    /// The entry as `namespace/name:port` ([`Entry::display_name`]); `None`
    /// for the ruleset's own fields.
    pub entry: Option<String>,
    /// What was found, with the family, frontend or backend concerned.
    pub detail: String,
}

/// Checks `ruleset` against every invariant of the IR's contract; the error
/// lists each violation found (all of them, except that a ruleset of
/// another version is judged on its version alone).
pub fn validate(ruleset: &Ruleset) -> Result<(), Vec<Violation>> {
    let mut check = Checker::default();
    if ruleset.version != VERSION {
        check.ruleset(
            Invariant::Version,
            format!(
                "format version {}, this knc reads version {VERSION}",
                ruleset.version
            ),
        );
        return Err(check.violations);
    }
    check.sorted_list("cluster_cidrs", &ruleset.cluster_cidrs);
    check.sorted_list("service_cidrs", &ruleset.service_cidrs);
    match &ruleset.local_detector {
        LocalDetector::Cidrs => {}
        LocalDetector::InterfacePrefix(name) | LocalDetector::Interface(name) => {
            if !valid_interface_name(name) {
                check.ruleset(
                    Invariant::LocalDetector,
                    format!("interface name {name:?} is not 1 to 15 bytes of [A-Za-z0-9_.-]"),
                );
            }
            if !ruleset.cluster_cidrs.is_empty() {
                check.ruleset(
                    Invariant::LocalDetector,
                    "an interface detector with cluster CIDRs".to_string(),
                );
            }
        }
    }
    check.sorted_list("cluster_ips", &ruleset.cluster_ips);
    check.sorted_list("node_addresses", &ruleset.node_addresses);
    if let NodePortScope::LocalIn(nets) = &ruleset.nodeport_scope {
        check.sorted_list("nodeport_scope", nets);
    }

    let mut claimed: BTreeMap<FrontendKey, String> = BTreeMap::new();
    let mut previous: Option<&Entry> = None;
    for entry in &ruleset.services {
        if let Some(before) = previous {
            if entry_order(before) >= entry_order(entry) {
                check.entry(
                    Invariant::Sorted,
                    entry,
                    format!(
                        "{} entry comes after {} entry {}",
                        family_word(entry.family),
                        family_word(before.family),
                        before.display_name()
                    ),
                );
            }
        }
        previous = Some(entry);
        let cidr_known = ruleset
            .local_detector
            .knows_pods(&ruleset.cluster_cidrs, entry.family);
        check.entry_alone(entry, cidr_known);
        for frontend in &entry.frontends {
            let key = frontend_key(entry, frontend);
            if let Some(holder) = claimed.get(&key) {
                check.entry(
                    Invariant::UniqueFrontendKey,
                    entry,
                    format!(
                        "{} is also a frontend of {holder}",
                        describe_frontend(entry, frontend)
                    ),
                );
            } else {
                claimed.insert(key, entry.display_name());
            }
        }
    }
    if check.violations.is_empty() {
        Ok(())
    } else {
        Err(check.violations)
    }
}

/// (family, address, protocol, port); `None` stands for every NodePort
/// address.
type FrontendKey = (Family, Option<IpAddr>, Protocol, u16);

fn frontend_key(entry: &Entry, frontend: &Frontend) -> FrontendKey {
    let address = match frontend.kind {
        FrontendKind::NodePort => None,
        _ => frontend.address,
    };
    (entry.family, address, entry.protocol, frontend.port)
}

fn entry_order(entry: &Entry) -> (Family, &str, &str, &str, Protocol) {
    (
        entry.family,
        &entry.namespace,
        &entry.name,
        &entry.port_name,
        entry.protocol,
    )
}

fn frontend_order(frontend: &Frontend) -> (FrontendKind, Option<IpAddr>, u16) {
    (frontend.kind, frontend.address, frontend.port)
}

fn backend_order(backend: &Backend) -> (IpAddr, u16) {
    (backend.address, backend.port)
}

fn family_word(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

fn set_word(set: SetKind) -> &'static str {
    match set {
        SetKind::Cluster => "cluster",
        SetKind::Local => "local",
    }
}

fn describe_frontend(entry: &Entry, frontend: &Frontend) -> String {
    let kind = match frontend.kind {
        FrontendKind::ClusterIp => "cluster-ip",
        FrontendKind::ExternalIp => "external-ip",
        FrontendKind::LoadBalancer => "load-balancer",
        FrontendKind::NodePort => "node-port",
        FrontendKind::Gateway => "gateway",
    };
    let protocol = entry.protocol.as_str();
    match (frontend.kind, frontend.address) {
        (FrontendKind::NodePort, _) | (_, None) => {
            format!("{kind} frontend {protocol}/{}", frontend.port)
        }
        (_, Some(address)) => {
            format!("{kind} frontend {address} {protocol}/{}", frontend.port)
        }
    }
}

fn describe_backend(backend: &Backend) -> String {
    match backend.address {
        IpAddr::V4(a) => format!("backend {a}:{}", backend.port),
        IpAddr::V6(a) => format!("backend [{a}]:{}", backend.port),
    }
}

#[derive(Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn ruleset(&mut self, invariant: Invariant, detail: String) {
        self.violations.push(Violation {
            invariant,
            entry: None,
            detail,
        });
    }

    fn entry(&mut self, invariant: Invariant, entry: &Entry, detail: String) {
        self.violations.push(Violation {
            invariant,
            entry: Some(entry.display_name()),
            detail,
        });
    }

    fn sorted_list<T: Ord + fmt::Display>(&mut self, field: &str, items: &[T]) {
        if let Some(pair) = items.windows(2).find(|w| w[0] >= w[1]) {
            self.ruleset(
                Invariant::Sorted,
                format!("{field}: {} comes after {}", pair[1], pair[0]),
            );
        }
    }

    /// Every invariant that one entry can break on its own.
    fn entry_alone(&mut self, entry: &Entry, cidr_known: bool) {
        let family = entry.family;
        let wrong_family = |address: &IpAddr| Family::of(address) != family;
        if let Some(pair) = entry
            .frontends
            .windows(2)
            .find(|w| frontend_order(&w[0]) >= frontend_order(&w[1]))
        {
            self.entry(
                Invariant::Sorted,
                entry,
                format!(
                    "{} comes after {}",
                    describe_frontend(entry, &pair[1]),
                    describe_frontend(entry, &pair[0])
                ),
            );
        }
        for frontend in &entry.frontends {
            let described = || describe_frontend(entry, frontend);
            match (frontend.kind, frontend.address) {
                (FrontendKind::NodePort, Some(address)) => self.entry(
                    Invariant::FrontendAddress,
                    entry,
                    format!("{} has an address, {address}", described()),
                ),
                (kind, None) if kind != FrontendKind::NodePort => self.entry(
                    Invariant::FrontendAddress,
                    entry,
                    format!("{} has no address", described()),
                ),
                _ => {}
            }
            if let Some(address) = frontend.address.filter(wrong_family) {
                self.entry(
                    Invariant::OneFamily,
                    entry,
                    format!(
                        "{} has address {address} in a {} entry",
                        described(),
                        family_word(family)
                    ),
                );
            }
            self.nets(entry, &described(), &frontend.allowed_sources);
            let routing = &frontend.routing;
            for (class, route) in [
                ("node", routing.node),
                ("pods", routing.pods),
                ("external", routing.external),
            ] {
                if let Route::Forward { set, .. } = route {
                    if entry.backends.get(set).is_empty() {
                        self.entry(
                            Invariant::NoEmptyForward,
                            entry,
                            format!(
                                "{} forwards {class} to the empty {} set",
                                described(),
                                set_word(set)
                            ),
                        );
                    }
                }
            }
            if !cidr_known && routing.pods != routing.external {
                self.entry(
                    Invariant::PodsAreExternal,
                    entry,
                    format!(
                        "{} routes pods ({:?}) unlike external ({:?}) with no {} cluster CIDR",
                        described(),
                        routing.pods,
                        routing.external,
                        family_word(family)
                    ),
                );
            }
        }
        for set in [SetKind::Cluster, SetKind::Local] {
            let backends = entry.backends.get(set);
            if let Some(pair) = backends
                .windows(2)
                .find(|w| backend_order(&w[0]) >= backend_order(&w[1]))
            {
                self.entry(
                    Invariant::Sorted,
                    entry,
                    format!(
                        "in the {} set, {} comes after {}",
                        set_word(set),
                        describe_backend(&pair[1]),
                        describe_backend(&pair[0])
                    ),
                );
            }
            for backend in backends {
                if backend.weight == 0 {
                    self.entry(
                        Invariant::Weight,
                        entry,
                        format!(
                            "{} in the {} set has weight 0",
                            describe_backend(backend),
                            set_word(set)
                        ),
                    );
                }
                if wrong_family(&backend.address) {
                    self.entry(
                        Invariant::OneFamily,
                        entry,
                        format!(
                            "{} in the {} set is not {}",
                            describe_backend(backend),
                            set_word(set),
                            family_word(family)
                        ),
                    );
                }
            }
        }
    }

    /// A frontend's allowed sources: sorted, and of the entry's family.
    fn nets(&mut self, entry: &Entry, frontend: &str, nets: &[IpNet]) {
        if let Some(pair) = nets.windows(2).find(|w| w[0] >= w[1]) {
            self.entry(
                Invariant::Sorted,
                entry,
                format!(
                    "{frontend}: allowed source {} comes after {}",
                    pair[1], pair[0]
                ),
            );
        }
        for net in nets {
            if Family::of(&net.addr()) != entry.family {
                self.entry(
                    Invariant::OneFamily,
                    entry,
                    format!(
                        "{frontend}: allowed source {net} is not {}",
                        family_word(entry.family)
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
