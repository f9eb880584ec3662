//! Session affinity (`sessionAffinity: ClientIP`) in the nft layout.
//!
//! kube-proxy remembers a client per **Service port**: whichever of the
//! port's addresses a client uses (ClusterIP, NodePort, external or
//! LoadBalancer IP), it lands on the backend it was first given, until it
//! has been silent for the timeout. knc's dispatch is by frontend
//! (address and port) through shared chains, and nft 1.0.6 cannot feed one
//! lookup's result into another's key, so the Service port is named by a
//! number written into the few rules that need it:
//!
//! * Every affinity entry gets a 31-bit number `H`, a digest of its
//!   identity (family, namespace, name, port name, protocol), probed past
//!   collisions in IR order, so it stays put while the entry exists and
//!   other Services come and go. The memory of each backend set it
//!   forwards to is keyed by `ID = 2H + set` (0 cluster-wide, 1
//!   node-local): a node-local route must never be sent to a remembered
//!   backend on another node, as kube-proxy's local chains check only
//!   local endpoints.
//! * `numgen random mod 1 offset ID` is the constant `ID` (nft 1.0.6
//!   accepts no constant inside a concatenation; a modulus of 1 always
//!   draws 0).
//! * **Lookup** (prerouting and output): the backend group chain of an
//!   affinity frontend first jumps through the verdict map
//!   `affinity-<kind>-<set>` (frontend → `affinity-<H>-<set>`), whose one
//!   rule translates a remembered client to its backend; a miss returns and
//!   the group's random draw follows.
//! * **Record** (postrouting, after the translation): `affinity-record`
//!   finds the entry by the connection's original destination
//!   (`affinity-vips`, `affinity-nodeports` → `affinity-<H>-record-…`),
//!   which stores client → backend for every set the backend belongs to
//!   (`affinity-backends` holds `backend . port . ID`), refreshing the
//!   timeout. A connection that went to a backend the entry no longer has
//!   (a remembered one, removed since) is dropped and the client
//!   forgotten, so its retransmission draws again.
//! * IPv4 clients are remembered in one map, `affinity`, keyed by
//!   `client . ID`. nft 1.0.6 aborts generating a dynamic map update with
//!   any concatenation for IPv6 (a register allocation assertion), so each
//!   IPv6 entry and set has two maps of its own keyed by the client alone,
//!   `affinity-<H>-<set>-addr` and `…-port`.
//!
//! Nothing of a Service's backends is in these chains, only in elements, so
//! backend changes are element updates that keep every remembered client
//! whose backend stays (see [`super::Transaction::update`]). Clients
//! remembered on a backend that went are forgotten by the runtime right
//! after such an update ([`affected_memory`], [`forget_stale`]), as
//! kube-proxy deletes a removed endpoint's affinity set; the drop above is
//! the safety net for whatever it misses (a race, or an update applied by
//! hand).

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::model::{TableFamily, Tables};
use super::transaction::{Op, Transaction};
use super::TABLE;
use crate::ir::{Entry, Family, Protocol, Route, SetKind};

/// The IPv4 map of remembered clients (`client . ID : backend . port`).
pub(super) const MEMORY: &str = "affinity";
/// `backend . port . ID` for every backend of every affinity entry's sets.
pub(super) const BACKENDS: &str = "affinity-backends";
/// Original destination → record chain, for address frontends.
pub(super) const RECORD_VIPS: &str = "affinity-vips";
/// Original protocol and port → record chain, for NodePorts.
pub(super) const RECORD_NODEPORTS: &str = "affinity-nodeports";
/// The postrouting chain dispatching to the record chains.
pub(super) const RECORD: &str = "affinity-record";
/// Most IPv4 clients remembered, across all entries.
pub(super) const MEMORY_SIZE: u32 = 1 << 20;
/// Most clients remembered per IPv6 entry and set.
pub(super) const MEMORY6_SIZE: u32 = 1 << 16;

/// Assigns each affinity entry of one family its number `H`.
#[derive(Debug, Default)]
pub(super) struct Numbers {
    used: HashSet<u32>,
}

impl Numbers {
    /// `entry`'s number: the first 31 bits of the SHA-256 digest of its
    /// identity, or the next free number after it when an earlier entry
    /// (in IR order) holds that one.
    pub fn assign(&mut self, entry: &Entry) -> u32 {
        let mut identity = String::new();
        for field in [
            match entry.family {
                Family::Ipv4 => "ipv4",
                Family::Ipv6 => "ipv6",
            },
            entry.namespace.as_str(),
            entry.name.as_str(),
            entry.port_name.as_str(),
            entry.protocol.as_str(),
        ] {
            let _ = write!(identity, "{}:{field};", field.len());
        }
        let digest = Sha256::digest(identity.as_bytes());
        let mut number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> 1;
        while !self.used.insert(number) {
            number = (number + 1) & 0x7fff_ffff;
        }
        number
    }
}

/// The memory key number of entry `number`'s `set`.
pub(super) fn id(number: u32, set: SetKind) -> u32 {
    number << 1 | set as u32
}

/// The backend sets some route of `entry` forwards to, in order.
pub(super) fn sets(entry: &Entry) -> Vec<SetKind> {
    let mut sets: Vec<SetKind> = entry
        .frontends
        .iter()
        .flat_map(|f| [f.routing.node, f.routing.pods, f.routing.external])
        .filter_map(|r| match r {
            Route::Forward { set, .. } => Some(set),
            _ => None,
        })
        .collect();
    sets.sort();
    sets.dedup();
    sets
}

fn set_word(set: SetKind) -> &'static str {
    match set {
        SetKind::Cluster => "cluster",
        SetKind::Local => "local",
    }
}

/// The verdict map sending frontends of `kind` (`vip` or `nodeport`) that
/// forward to `set` to their lookup chains.
pub(super) fn lookup_map(kind: &str, set: SetKind) -> String {
    format!("affinity-{kind}-{}", set_word(set))
}

/// One affinity entry as the layout writes it.
pub(super) struct Port {
    pub number: u32,
    pub family: Family,
    pub protocol: Protocol,
    pub timeout: u32,
    pub sets: Vec<SetKind>,
}

impl Port {
    /// The chain translating remembered clients of `set`.
    pub fn lookup_chain(&self, set: SetKind) -> String {
        format!("affinity-{:08x}-{}", self.number, set_word(set))
    }

    /// The chain remembering clients after translation. Its name carries
    /// everything its rules depend on besides the number (timeout, sets),
    /// so a changed Service gets a new chain instead of a changed one.
    pub fn record_chain(&self) -> String {
        let mut name = format!("affinity-{:08x}-record", self.number);
        for set in &self.sets {
            name.push('-');
            name.push_str(set_word(*set));
        }
        let _ = write!(name, "-{}", self.timeout);
        name
    }

    /// The IPv6 maps of `set`: client → backend address, client → port.
    pub fn maps6(&self, set: SetKind) -> [String; 2] {
        maps6_of(id(self.number, set))
    }

    /// The declarations of the entry's own maps (IPv6 only), as (name,
    /// spec).
    pub fn maps(&self) -> Vec<(String, String)> {
        if self.family == Family::Ipv4 {
            return Vec::new();
        }
        let flags = format!("flags dynamic,timeout; size {MEMORY6_SIZE};");
        self.sets
            .iter()
            .flat_map(|&set| {
                let [addr, port] = self.maps6(set);
                [
                    (addr, format!("typeof ip6 saddr : ip6 daddr; {flags}")),
                    (port, format!("typeof ip6 saddr : th dport; {flags}")),
                ]
            })
            .collect()
    }

    /// `numgen random mod 1 offset ID`: the constant ID inside a
    /// concatenation.
    fn constant(&self, set: SetKind) -> String {
        format!("numgen random mod 1 offset {}", id(self.number, set))
    }

    /// The lookup chain's one rule: a remembered client of `set` goes
    /// back to its backend; a miss falls through (the chain returns).
    pub fn lookup_rule(&self, set: SetKind) -> String {
        let proto = self.protocol.as_str();
        match self.family {
            Family::Ipv4 => format!(
                "meta l4proto {proto} dnat ip to ip saddr . {} map @{MEMORY}",
                self.constant(set)
            ),
            Family::Ipv6 => {
                let [addr, port] = self.maps6(set);
                format!("meta l4proto {proto} dnat ip6 to ip6 saddr map @{addr} : ip6 saddr map @{port}")
            }
        }
    }

    /// The record chain's rules: for each set, remember the client when
    /// the backend belongs to the set (refreshing the timeout); then, when
    /// the backend belongs to none and the client is remembered, the
    /// translation came from a stale memory: forget the client in every
    /// set and drop the packet.
    pub fn record_rules(&self) -> Vec<String> {
        let proto = self.protocol.as_str();
        let (a, timeout) = (self.family_word(), self.timeout);
        let backend = format!("ct reply {a} saddr . ct reply proto-src");
        let member =
            |set: SetKind, op: &str| format!("{backend} . {} {op}@{BACKENDS}", self.constant(set));
        let mut rules = Vec::new();
        for &set in &self.sets {
            let update = match self.family {
                Family::Ipv4 => format!(
                    "update @{MEMORY} {{ ct original ip saddr . {} timeout {timeout}s : {backend} }}",
                    self.constant(set)
                ),
                Family::Ipv6 => {
                    let [addr, port] = self.maps6(set);
                    format!(
                        "update @{addr} {{ ct original ip6 saddr timeout {timeout}s : ct reply ip6 saddr }} \
                         update @{port} {{ ct original ip6 saddr timeout {timeout}s : ct reply proto-src }}"
                    )
                }
            };
            rules.push(format!("meta l4proto {proto} {} {update}", member(set, "")));
        }
        let strangers: Vec<String> = self.sets.iter().map(|&s| member(s, "!= ")).collect();
        let forget: Vec<String> = self
            .sets
            .iter()
            .map(|&set| match self.family {
                Family::Ipv4 => format!(
                    "delete @{MEMORY} {{ ct original ip saddr . {} : {backend} }}",
                    self.constant(set)
                ),
                Family::Ipv6 => {
                    let [addr, port] = self.maps6(set);
                    format!(
                        "delete @{addr} {{ ct original ip6 saddr : ct reply ip6 saddr }} \
                         delete @{port} {{ ct original ip6 saddr : ct reply proto-src }}"
                    )
                }
            })
            .collect();
        for &set in &self.sets {
            let remembered = match self.family {
                Family::Ipv4 => format!("ct original ip saddr . {} @{MEMORY}", self.constant(set)),
                Family::Ipv6 => format!("ct original ip6 saddr @{}", self.maps6(set)[0]),
            };
            rules.push(format!(
                "meta l4proto {proto} {} {remembered} {} drop",
                strangers.join(" "),
                forget.join(" ")
            ));
        }
        rules
    }

    fn family_word(&self) -> &'static str {
        match self.family {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ip6",
        }
    }
}

/// The elements of one dynamic map of remembered clients, as listed from
/// the kernel: `(key, value)` in nft's text form (`10.0.0.7 . 1234` and
/// `10.244.1.1 . 8080` for the IPv4 map; an address, and an address or a
/// port, for the IPv6 maps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub family: TableFamily,
    pub map: String,
    pub elements: Vec<(String, String)>,
}

/// The dynamic maps that may remember clients on a backend `transaction`
/// took away from a Service port (it deleted `affinity-backends`
/// elements), among those `new` declares: the IPv4 map, and the IPv6
/// maps of the entries and sets concerned. Empty when it took none.
pub fn affected_memory(transaction: &Transaction, new: &Tables) -> Vec<(TableFamily, String)> {
    let mut maps = BTreeSet::new();
    for op in transaction.ops() {
        let Op::DeleteElements { family, set, keys } = op else {
            continue;
        };
        if set != BACKENDS {
            continue;
        }
        for key in keys {
            let Some(id) = key
                .rsplit(" . ")
                .next()
                .and_then(|id| id.parse::<u32>().ok())
            else {
                continue;
            };
            match family {
                TableFamily::Ip => {
                    maps.insert((*family, MEMORY.to_string()));
                }
                TableFamily::Ip6 => {
                    for map in maps6_of(id) {
                        maps.insert((*family, map));
                    }
                }
            }
        }
    }
    maps.into_iter()
        .filter(|(family, map)| new.table(*family).is_some_and(|t| t.object(map).is_some()))
        .collect()
}

/// The IPv6 maps of the entry and set with memory key number `id`.
fn maps6_of(id: u32) -> [String; 2] {
    let set = if id & 1 == 0 {
        SetKind::Cluster
    } else {
        SetKind::Local
    };
    let base = format!("affinity-{:08x}-{}", id >> 1, set_word(set));
    [format!("{base}-addr"), format!("{base}-port")]
}

/// The memory key number of an IPv6 map name, `affinity-<H>-<set>-…`.
fn id_of_map6(map: &str) -> Option<(u32, &str)> {
    let rest = map.strip_prefix("affinity-")?;
    let (number, rest) = rest.split_once('-')?;
    let number = u32::from_str_radix(number, 16).ok()?;
    let (set, kind) = rest.rsplit_once('-')?;
    let set = match set {
        "cluster" => SetKind::Cluster,
        "local" => SetKind::Local,
        _ => return None,
    };
    Some((id(number, set), kind))
}

/// `nft -f` input forgetting every `listed` client remembered on a backend
/// that is not one of its Service port's in `model` (empty when there is
/// none). Each element is added (a no-op when it is still there, as it
/// was listed) and then deleted, so an element that expired since it was
/// listed does not fail the transaction.
pub fn forget_stale(model: &Tables, listed: &[Listed]) -> String {
    let mut out = String::new();
    let members = |family: TableFamily| -> HashSet<&str> {
        model
            .table(family)
            .and_then(|t| t.elements.get(BACKENDS))
            .map(|e| e.iter().map(|e| e.key()).collect())
            .unwrap_or_default()
    };
    let mut forget = |family: TableFamily, map: &str, key: &str, value: &str| {
        let f = family.as_str();
        let _ = writeln!(
            out,
            "add element {f} {TABLE} {map} {{ {key} timeout 1s : {value} }}"
        );
        let _ = writeln!(out, "delete element {f} {TABLE} {map} {{ {key} }}");
    };
    for list in listed
        .iter()
        .filter(|l| l.family == TableFamily::Ip && l.map == MEMORY)
    {
        let members = members(TableFamily::Ip);
        for (key, value) in &list.elements {
            let Some((_, id)) = key.rsplit_once(" . ") else {
                continue;
            };
            if !members.contains(format!("{value} . {id}").as_str()) {
                forget(TableFamily::Ip, MEMORY, key, value);
            }
        }
    }
    let members6 = members(TableFamily::Ip6);
    let six = |kind: &'static str| {
        listed
            .iter()
            .filter(|l| l.family == TableFamily::Ip6)
            .filter_map(move |l| match id_of_map6(&l.map) {
                Some((id, k)) if k == kind => Some((id, l)),
                _ => None,
            })
    };
    for (id, addresses) in six("addr") {
        let ports = six("port").find(|(other, _)| *other == id).map(|(_, l)| l);
        for (client, backend) in &addresses.elements {
            let port = ports.and_then(|l| l.elements.iter().find(|(c, _)| c == client));
            let stale = match port {
                Some((_, port)) => {
                    !members6.contains(format!("{backend} . {port} . {id}").as_str())
                }
                None => true,
            };
            if stale {
                forget(TableFamily::Ip6, &addresses.map, client, backend);
                if let (Some(ports), Some((_, port))) = (ports, port) {
                    forget(TableFamily::Ip6, &ports.map, client, port);
                }
            }
        }
    }
    out
}

/// The rules of [`RECORD`]: dispatch on the original destination, address
/// frontends first (a `goto`, so a match ends the chain), per protocol
/// because `ct original proto-dst` needs one.
pub(super) fn record_dispatch(family: Family) -> Vec<String> {
    let a = match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    };
    let protocols = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];
    let mut rules: Vec<String> = protocols
        .iter()
        .map(|p| {
            format!(
                "meta l4proto {} ct original {a} daddr . meta l4proto . ct original proto-dst vmap @{RECORD_VIPS}",
                p.as_str()
            )
        })
        .collect();
    rules.extend(protocols.iter().map(|p| {
        format!(
            "meta l4proto {} meta l4proto . ct original proto-dst vmap @{RECORD_NODEPORTS}",
            p.as_str()
        )
    }));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::back::nft::testing::service;

    #[test]
    fn numbers_are_stable_and_distinct() {
        let a = service("a", "10.96.0.1", &["10.244.1.1"]);
        let b = service("b", "10.96.0.2", &["10.244.1.1"]);
        let mut one = Numbers::default();
        let (na, nb) = (one.assign(&a), one.assign(&b));
        assert_ne!(na, nb);
        assert!(na < 1 << 31 && nb < 1 << 31);
        let mut two = Numbers::default();
        assert_eq!(two.assign(&b), nb, "independent of the other entries");
        // The same identity again (as a colliding digest would be) gets
        // the next free number, not a shared one.
        assert_eq!(two.assign(&b), (nb + 1) & 0x7fff_ffff);
        assert_eq!(id(na, SetKind::Cluster), na * 2);
        assert_eq!(id(na, SetKind::Local), na * 2 + 1);
    }

    #[test]
    fn ipv4_remembers_in_the_shared_map_by_client_and_number() {
        let port = Port {
            number: 7,
            family: Family::Ipv4,
            protocol: Protocol::Tcp,
            timeout: 60,
            sets: vec![SetKind::Cluster],
        };
        assert_eq!(
            port.lookup_chain(SetKind::Cluster),
            "affinity-00000007-cluster"
        );
        assert_eq!(port.record_chain(), "affinity-00000007-record-cluster-60");
        assert_eq!(
            port.lookup_rule(SetKind::Cluster),
            "meta l4proto tcp dnat ip to ip saddr . numgen random mod 1 offset 14 map @affinity"
        );
        assert_eq!(
            port.record_rules(),
            [
                "meta l4proto tcp ct reply ip saddr . ct reply proto-src . numgen random mod 1 offset 14 @affinity-backends \
                 update @affinity { ct original ip saddr . numgen random mod 1 offset 14 timeout 60s : ct reply ip saddr . ct reply proto-src }",
                "meta l4proto tcp ct reply ip saddr . ct reply proto-src . numgen random mod 1 offset 14 != @affinity-backends \
                 ct original ip saddr . numgen random mod 1 offset 14 @affinity \
                 delete @affinity { ct original ip saddr . numgen random mod 1 offset 14 : ct reply ip saddr . ct reply proto-src } drop",
            ]
        );
        assert!(port.maps().is_empty());
    }

    #[test]
    fn ipv6_remembers_in_maps_of_its_own_per_set() {
        let port = Port {
            number: 0x1a,
            family: Family::Ipv6,
            protocol: Protocol::Udp,
            timeout: 10800,
            sets: vec![SetKind::Cluster, SetKind::Local],
        };
        assert_eq!(
            port.record_chain(),
            "affinity-0000001a-record-cluster-local-10800"
        );
        let maps: Vec<String> = port.maps().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            maps,
            [
                "affinity-0000001a-cluster-addr",
                "affinity-0000001a-cluster-port",
                "affinity-0000001a-local-addr",
                "affinity-0000001a-local-port"
            ]
        );
        assert_eq!(
            port.lookup_rule(SetKind::Local),
            "meta l4proto udp dnat ip6 to ip6 saddr map @affinity-0000001a-local-addr : ip6 saddr map @affinity-0000001a-local-port"
        );
        let rules = port.record_rules();
        assert_eq!(rules.len(), 4, "{rules:#?}");
        assert!(
            rules[1].contains("offset 53 @affinity-backends update @affinity-0000001a-local-addr")
        );
        // A stale translation forgets the client in both sets.
        assert_eq!(rules[2].matches("delete @").count(), 4, "{}", rules[2]);
        assert!(rules[2].ends_with(" drop"));
    }

    fn sticky(name: &str, ip: &str, backends: &[&str]) -> Entry {
        let mut s = service(name, ip, backends);
        s.affinity_timeout_seconds = Some(60);
        s
    }

    /// The memory key number of the first member of `family` in `model`.
    fn first_id(model: &Tables, family: TableFamily) -> String {
        let key = model.table(family).unwrap().elements[BACKENDS][0].key();
        key.rsplit(" . ").next().unwrap().to_string()
    }

    #[test]
    fn clients_remembered_on_a_backend_that_went_are_forgotten() {
        use crate::back::nft::tables;
        use crate::back::nft::testing::ruleset;
        let model = tables(&ruleset(vec![
            sticky("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            sticky("b", "fd00::1", &["fd00:244::1"]),
        ]));
        let (id4, id6) = (
            first_id(&model, TableFamily::Ip),
            first_id(&model, TableFamily::Ip6),
        );
        let number6 = id6.parse::<u32>().unwrap();
        let [addr, port] = maps6_of(number6);
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let listed = [
            Listed {
                family: TableFamily::Ip,
                map: MEMORY.into(),
                elements: pairs(&[
                    (&format!("10.0.0.7 . {id4}"), "10.244.1.1 . 8080"),
                    (&format!("10.0.0.8 . {id4}"), "10.244.1.9 . 8080"),
                    ("10.0.0.9 . 12345", "10.244.1.1 . 8080"),
                ]),
            },
            Listed {
                family: TableFamily::Ip6,
                map: addr.clone(),
                elements: pairs(&[("fd00::7", "fd00:244::1"), ("fd00::8", "fd00:244::9")]),
            },
            Listed {
                family: TableFamily::Ip6,
                map: port.clone(),
                elements: pairs(&[("fd00::7", "8080"), ("fd00::8", "8080")]),
            },
        ];
        let script = forget_stale(&model, &listed);
        assert_eq!(
            script,
            format!(
                "add element ip knc affinity {{ 10.0.0.8 . {id4} timeout 1s : 10.244.1.9 . 8080 }}\n\
                 delete element ip knc affinity {{ 10.0.0.8 . {id4} }}\n\
                 add element ip knc affinity {{ 10.0.0.9 . 12345 timeout 1s : 10.244.1.1 . 8080 }}\n\
                 delete element ip knc affinity {{ 10.0.0.9 . 12345 }}\n\
                 add element ip6 knc {addr} {{ fd00::8 timeout 1s : fd00:244::9 }}\n\
                 delete element ip6 knc {addr} {{ fd00::8 }}\n\
                 add element ip6 knc {port} {{ fd00::8 timeout 1s : 8080 }}\n\
                 delete element ip6 knc {port} {{ fd00::8 }}\n"
            )
        );
        assert_eq!(forget_stale(&model, &listed[..1][..0]), "");
    }

    #[test]
    fn only_updates_that_take_backends_away_concern_the_memory() {
        use crate::back::nft::tables;
        use crate::back::nft::testing::ruleset;
        let before = tables(&ruleset(vec![
            sticky("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            sticky("b", "fd00::1", &["fd00:244::1", "fd00:244::2"]),
        ]));
        let grown = tables(&ruleset(vec![
            sticky(
                "a",
                "10.96.0.1",
                &["10.244.1.1", "10.244.1.2", "10.244.1.3"],
            ),
            sticky("b", "fd00::1", &["fd00:244::1", "fd00:244::2"]),
        ]));
        let tx = Transaction::update(&before, &grown).unwrap();
        assert_eq!(affected_memory(&tx, &grown), []);
        let shrunk = tables(&ruleset(vec![
            sticky("a", "10.96.0.1", &["10.244.1.1"]),
            sticky("b", "fd00::1", &["fd00:244::2"]),
        ]));
        let tx = Transaction::update(&before, &shrunk).unwrap();
        let number6 = first_id(&shrunk, TableFamily::Ip6).parse::<u32>().unwrap();
        let [addr, port] = maps6_of(number6);
        assert_eq!(
            affected_memory(&tx, &shrunk),
            [
                (TableFamily::Ip, MEMORY.to_string()),
                (TableFamily::Ip6, addr),
                (TableFamily::Ip6, port)
            ]
        );
    }
}
