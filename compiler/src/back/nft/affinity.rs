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
//! * The memory is spread over up to 256 dynamic maps,
//!   `affinity-memory-<S>` with `S = H mod 256`, declared when used: the
//!   kernel walks the list of a map's bindings each time a rule of another
//!   chain binds it, so one map bound by every affinity Service's rules
//!   made loading quadratic (10,000 affinity Services: 9 s, against 2 s
//!   spread).
//! * IPv4 keys are `client . ID`, the ID written as `numgen random mod 1
//!   offset ID` (nft 1.0.6 accepts no constant inside a concatenation; a
//!   modulus of 1 always draws 0). nft 1.0.6 aborts generating a dynamic
//!   map update with any concatenation for IPv6 (a register allocation
//!   assertion), so IPv6 keys are the client address XORed with a 128-bit
//!   constant derived from the ID (two Service ports or sets then share a
//!   key only for client addresses chosen to), and an IPv6 shard is two
//!   maps, `…-addr` and `…-port`.
//!
//! Nothing of a Service's backends is in these chains, only in elements, so
//! backend changes are element updates that keep every remembered client
//! whose backend stays (see [`super::Transaction::update`]). Clients
//! remembered on a backend that went are forgotten by the runtime right
//! after such an update ([`affected_memory`], [`forget_stale`]), as
//! kube-proxy deletes a removed endpoint's affinity set; the drop above is
//! the safety net for whatever it misses (a race, or an update applied by
//! hand).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write;
use std::net::Ipv6Addr;

use sha2::{Digest, Sha256};

use super::model::{TableFamily, Tables};
use super::transaction::{Op, Transaction};
use super::TABLE;
use crate::ir::{Entry, Family, Protocol, Route, SetKind};

/// `backend . port . ID` for every backend of every affinity entry's sets.
pub(super) const BACKENDS: &str = "affinity-backends";
/// Original destination → record chain, for address frontends (`return`
/// for external and LoadBalancer ones without affinity).
pub(super) const RECORD_VIPS: &str = "affinity-vips";
/// Original protocol and port → record chain, for NodePorts.
pub(super) const RECORD_NODEPORTS: &str = "affinity-nodeports";
/// The postrouting chain dispatching to the record chains.
pub(super) const RECORD: &str = "affinity-record";
/// How many memory shards the entries are spread over.
const SHARDS: u32 = 256;
/// Most clients one memory map remembers (each of an IPv6 shard's two).
const MEMORY_SIZE: u32 = 1 << 16;

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

/// The memory shard of entry number `number`.
fn shard(number: u32) -> u32 {
    number % SHARDS
}

/// The IPv4 memory map of entry number `number`.
fn memory4(number: u32) -> String {
    format!("affinity-memory-{:02x}", shard(number))
}

/// The IPv6 memory maps of entry number `number`: client → backend
/// address, client → port.
fn memory6(number: u32) -> [String; 2] {
    let base = format!("affinity-memory-{:02x}", shard(number));
    [format!("{base}-addr"), format!("{base}-port")]
}

/// The shard of a memory map name, `affinity-memory-<S>[-addr|-port]`.
fn shard_of(map: &str) -> Option<u32> {
    let rest = map.strip_prefix("affinity-memory-")?;
    u32::from_str_radix(rest.get(..2)?, 16).ok()
}

/// The constant an IPv6 client address is XORed with to key the memory of
/// `id`: the first 128 bits of a digest of the ID.
fn mask6(id: u32) -> Ipv6Addr {
    let digest = Sha256::digest(format!("knc affinity {id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ipv6Addr::from(bytes)
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
    /// everything its rules depend on besides the number (sets, timeout),
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

    /// The memory maps of the entry's shard, as (name, declaration).
    pub fn memory_maps(&self) -> Vec<(String, String)> {
        let flags = format!("flags dynamic,timeout; size {MEMORY_SIZE};");
        match self.family {
            Family::Ipv4 => vec![(
                memory4(self.number),
                format!("typeof ip saddr . numgen random mod 1 : ip daddr . th dport; {flags}"),
            )],
            Family::Ipv6 => {
                let [addr, port] = memory6(self.number);
                vec![
                    (addr, format!("typeof ip6 saddr : ip6 daddr; {flags}")),
                    (port, format!("typeof ip6 saddr : th dport; {flags}")),
                ]
            }
        }
    }

    /// The memory key of `set` for the client address expression `client`.
    fn key(&self, client: &str, set: SetKind) -> String {
        let id = id(self.number, set);
        match self.family {
            Family::Ipv4 => format!("{client} . numgen random mod 1 offset {id}"),
            Family::Ipv6 => format!("{client} ^ {}", mask6(id)),
        }
    }

    /// The lookup chain's one rule: a remembered client of `set` goes
    /// back to its backend; a miss falls through (the chain returns).
    pub fn lookup_rule(&self, set: SetKind) -> String {
        let proto = self.protocol.as_str();
        match self.family {
            Family::Ipv4 => format!(
                "meta l4proto {proto} dnat ip to {} map @{}",
                self.key("ip saddr", set),
                memory4(self.number)
            ),
            Family::Ipv6 => {
                let [addr, port] = memory6(self.number);
                let key = self.key("ip6 saddr", set);
                format!("meta l4proto {proto} dnat ip6 to {key} map @{addr} : {key} map @{port}")
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
        let a = match self.family {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ip6",
        };
        let backend = format!("ct reply {a} saddr . ct reply proto-src");
        let client = format!("ct original {a} saddr");
        let member = |set: SetKind, op: &str| {
            format!(
                "{backend} . numgen random mod 1 offset {} {op}@{BACKENDS}",
                id(self.number, set)
            )
        };
        // The `update` (with the timeout) or `delete` of the client's
        // memory of `set`.
        let write = |op: &str, set: SetKind| {
            let key = self.key(&client, set);
            let timeout = match op {
                "update" => format!(" timeout {}s", self.timeout),
                _ => String::new(),
            };
            match self.family {
                Family::Ipv4 => format!(
                    "{op} @{} {{ {key}{timeout} : {backend} }}",
                    memory4(self.number)
                ),
                Family::Ipv6 => {
                    let [addr, port] = memory6(self.number);
                    format!(
                        "{op} @{addr} {{ {key}{timeout} : ct reply ip6 saddr }} \
                         {op} @{port} {{ {key}{timeout} : ct reply proto-src }}"
                    )
                }
            }
        };
        let mut rules: Vec<String> = self
            .sets
            .iter()
            .map(|&set| {
                format!(
                    "meta l4proto {proto} {} {}",
                    member(set, ""),
                    write("update", set)
                )
            })
            .collect();
        let strangers: Vec<String> = self.sets.iter().map(|&s| member(s, "!= ")).collect();
        let forget: Vec<String> = self.sets.iter().map(|&s| write("delete", s)).collect();
        let remembered_in = match self.family {
            Family::Ipv4 => memory4(self.number),
            Family::Ipv6 => memory6(self.number)[0].clone(),
        };
        for &set in &self.sets {
            rules.push(format!(
                "meta l4proto {proto} {} {} @{remembered_in} {} drop",
                strangers.join(" "),
                self.key(&client, set),
                forget.join(" ")
            ));
        }
        rules
    }
}

/// The elements of one dynamic map of remembered clients, as listed from
/// the kernel: `(key, value)` in nft's text form (`10.0.0.7 . 1234` and
/// `10.244.1.1 . 8080` in an IPv4 map; an address, and an address or a
/// port, in an IPv6 one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub family: TableFamily,
    pub map: String,
    pub elements: Vec<(String, String)>,
}

/// The memory maps that may remember clients on a backend `transaction`
/// took away from a Service port (it deleted `affinity-backends`
/// elements), among those `new` declares. Empty when it took none.
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
            let names = match family {
                TableFamily::Ip => vec![memory4(id >> 1)],
                TableFamily::Ip6 => memory6(id >> 1).to_vec(),
            };
            maps.extend(names.into_iter().map(|name| (*family, name)));
        }
    }
    maps.into_iter()
        .filter(|(family, map)| new.table(*family).is_some_and(|t| t.object(map).is_some()))
        .collect()
}

/// `nft -f` input forgetting every `listed` client remembered on a backend
/// that is not one of its Service port's in `model` (empty when there is
/// none). Each element is added (a no-op when it is still there, as it
/// was listed) and then deleted, so an element that expired since it was
/// listed does not fail the transaction. An IPv6 key does not say which
/// Service port of its shard it belongs to, so an IPv6 client is forgotten
/// when its backend serves none of the shard's ports (one that left a port
/// but serves another of the same shard is left to the rules' safety net).
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
    let members4 = members(TableFamily::Ip);
    for list in listed.iter().filter(|l| l.family == TableFamily::Ip) {
        for (key, value) in &list.elements {
            let Some((_, id)) = key.rsplit_once(" . ") else {
                continue;
            };
            if !members4.contains(format!("{value} . {id}").as_str()) {
                forget(TableFamily::Ip, &list.map, key, value);
            }
        }
    }
    // IPv6: per shard, the backends (`address . port`) of its ports.
    let mut served: BTreeMap<u32, HashSet<&str>> = BTreeMap::new();
    for member in members(TableFamily::Ip6) {
        if let Some((backend, id)) = member.rsplit_once(" . ") {
            if let Ok(id) = id.parse::<u32>() {
                served.entry(shard(id >> 1)).or_default().insert(backend);
            }
        }
    }
    let none = HashSet::new();
    let six = || listed.iter().filter(|l| l.family == TableFamily::Ip6);
    for addresses in six().filter(|l| l.map.ends_with("-addr")) {
        let Some(shard) = shard_of(&addresses.map) else {
            continue;
        };
        let port_map = format!("{}-port", addresses.map.trim_end_matches("-addr"));
        let ports = six().find(|l| l.map == port_map);
        let served = served.get(&shard).unwrap_or(&none);
        for (client, backend) in &addresses.elements {
            let port = ports.and_then(|l| l.elements.iter().find(|(c, _)| c == client));
            let stale = match port {
                Some((_, port)) => !served.contains(format!("{backend} . {port}").as_str()),
                None => true,
            };
            if stale {
                forget(TableFamily::Ip6, &addresses.map, client, backend);
                if let Some((_, port)) = port {
                    forget(TableFamily::Ip6, &port_map, client, port);
                }
            }
        }
    }
    out
}

/// The rules of [`RECORD`]: dispatch on the original destination, address
/// frontends first, per protocol because `ct original proto-dst` needs
/// one. A connection reaches the NodePort rules only when knc translated
/// it for a NodePort, so that an address frontend on a port with the
/// number of some affinity Service's NodePort never reaches that Service's
/// memory: its original destination is no ClusterIP (`cluster-ips`), and
/// the external and LoadBalancer frontends without affinity are in
/// [`RECORD_VIPS`] with `return`.
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
            "meta l4proto {} ct original {a} daddr != @cluster-ips \
             meta l4proto . ct original proto-dst vmap @{RECORD_NODEPORTS}",
            p.as_str()
        )
    }));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::back::nft::tables;
    use crate::back::nft::testing::{ruleset, service};

    fn sticky(name: &str, ip: &str, backends: &[&str]) -> Entry {
        let mut s = service(name, ip, backends);
        s.affinity_timeout_seconds = Some(60);
        s
    }

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
    fn ipv4_remembers_by_client_and_id_in_the_shard_of_its_number() {
        let port = Port {
            number: 0x107,
            family: Family::Ipv4,
            protocol: Protocol::Tcp,
            timeout: 60,
            sets: vec![SetKind::Cluster],
        };
        assert_eq!(
            port.lookup_chain(SetKind::Cluster),
            "affinity-00000107-cluster"
        );
        assert_eq!(port.record_chain(), "affinity-00000107-record-cluster-60");
        let maps: Vec<String> = port.memory_maps().into_iter().map(|(n, _)| n).collect();
        assert_eq!(maps, ["affinity-memory-07"]);
        assert_eq!(
            port.lookup_rule(SetKind::Cluster),
            "meta l4proto tcp dnat ip to ip saddr . numgen random mod 1 offset 526 map @affinity-memory-07"
        );
        assert_eq!(
            port.record_rules(),
            [
                "meta l4proto tcp ct reply ip saddr . ct reply proto-src . numgen random mod 1 offset 526 @affinity-backends \
                 update @affinity-memory-07 { ct original ip saddr . numgen random mod 1 offset 526 timeout 60s : ct reply ip saddr . ct reply proto-src }",
                "meta l4proto tcp ct reply ip saddr . ct reply proto-src . numgen random mod 1 offset 526 != @affinity-backends \
                 ct original ip saddr . numgen random mod 1 offset 526 @affinity-memory-07 \
                 delete @affinity-memory-07 { ct original ip saddr . numgen random mod 1 offset 526 : ct reply ip saddr . ct reply proto-src } drop",
            ]
        );
    }

    #[test]
    fn ipv6_keys_are_the_client_xored_with_a_constant_per_id() {
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
        let maps: Vec<String> = port.memory_maps().into_iter().map(|(n, _)| n).collect();
        assert_eq!(maps, ["affinity-memory-1a-addr", "affinity-memory-1a-port"]);
        let (cluster, local) = (mask6(52), mask6(53));
        assert_ne!(cluster, local);
        assert_eq!(
            port.lookup_rule(SetKind::Local),
            format!(
                "meta l4proto udp dnat ip6 to ip6 saddr ^ {local} map @affinity-memory-1a-addr : \
                 ip6 saddr ^ {local} map @affinity-memory-1a-port"
            )
        );
        let rules = port.record_rules();
        assert_eq!(rules.len(), 4, "{rules:#?}");
        assert!(
            rules[1].contains(&format!(
                "offset 53 @affinity-backends update @affinity-memory-1a-addr {{ ct original ip6 saddr ^ {local} timeout 10800s"
            )),
            "{}",
            rules[1]
        );
        // A stale translation forgets the client in both sets.
        assert_eq!(rules[2].matches("delete @").count(), 4, "{}", rules[2]);
        assert!(rules[2].ends_with(" drop"));
    }

    #[test]
    fn a_service_port_without_endpoints_remembers_nothing() {
        let mut empty = sticky("a", "10.96.0.1", &[]);
        let reject = Route::Reject;
        empty.frontends[0].routing = crate::ir::Routing {
            node: reject,
            pods: reject,
            external: reject,
        };
        let model = tables(&ruleset(vec![empty]));
        let ip = model.table(TableFamily::Ip).unwrap();
        let names: Vec<&str> = ip.objects.iter().map(|o| o.name()).collect();
        let affinity: Vec<&&str> = names.iter().filter(|n| n.starts_with("affinity")).collect();
        assert_eq!(
            affinity,
            [
                &"affinity-backends",
                &"affinity-vips",
                &"affinity-nodeports",
                &"affinity-record"
            ],
            "only the shared scaffolding"
        );
        assert_eq!(ip.element_count(RECORD_VIPS), 0);
    }

    /// The memory key number of the first member of `family` in `model`.
    fn first_id(model: &Tables, family: TableFamily) -> u32 {
        let key = model.table(family).unwrap().elements[BACKENDS][0].key();
        key.rsplit(" . ").next().unwrap().parse().unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn clients_remembered_on_a_backend_that_went_are_forgotten() {
        let model = tables(&ruleset(vec![
            sticky("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            sticky("b", "fd00::1", &["fd00:244::1"]),
        ]));
        let (id4, id6) = (
            first_id(&model, TableFamily::Ip),
            first_id(&model, TableFamily::Ip6),
        );
        let map4 = memory4(id4 >> 1);
        let [addr, port] = memory6(id6 >> 1);
        let listed = [
            Listed {
                family: TableFamily::Ip,
                map: map4.clone(),
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
        assert_eq!(
            forget_stale(&model, &listed),
            format!(
                "add element ip knc {map4} {{ 10.0.0.8 . {id4} timeout 1s : 10.244.1.9 . 8080 }}\n\
                 delete element ip knc {map4} {{ 10.0.0.8 . {id4} }}\n\
                 add element ip knc {map4} {{ 10.0.0.9 . 12345 timeout 1s : 10.244.1.1 . 8080 }}\n\
                 delete element ip knc {map4} {{ 10.0.0.9 . 12345 }}\n\
                 add element ip6 knc {addr} {{ fd00::8 timeout 1s : fd00:244::9 }}\n\
                 delete element ip6 knc {addr} {{ fd00::8 }}\n\
                 add element ip6 knc {port} {{ fd00::8 timeout 1s : 8080 }}\n\
                 delete element ip6 knc {port} {{ fd00::8 }}\n"
            )
        );
        assert_eq!(forget_stale(&model, &[]), "");
    }

    #[test]
    fn only_updates_that_take_backends_away_concern_the_memory() {
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
        let [addr, port] = memory6(first_id(&shrunk, TableFamily::Ip6) >> 1);
        assert_eq!(
            affected_memory(&tx, &shrunk),
            [
                (
                    TableFamily::Ip,
                    memory4(first_id(&shrunk, TableFamily::Ip) >> 1)
                ),
                (TableFamily::Ip6, addr),
                (TableFamily::Ip6, port)
            ]
        );
    }
}
