//! The real-kernel test topology: two nodes, an external client and pods
//! routed point to point in the Calico style, each in its own network
//! namespace, so every packet of every probe crosses node1's netfilter.
//!
//! ```text
//!                      (peer down, ARP off: the default route goes nowhere,
//!                       but routing succeeds so the forward hook is reached)
//!                             dflt ─── dfltp
//!                               │
//!  client ns                 node1 ns  (ip_forward=1, knc ruleset loaded here)       node2 ns (ip_forward=1,
//!  172.30.1.100/24 eth0 ──── cl 172.30.1.1/24                                          no rules)
//!  default via 172.30.1.1    n2 172.30.0.1/24  ─────────────────────────────────── n1 172.30.0.2/24
//!                            route 10.244.2.0/24 via 172.30.0.2                    route default via 172.30.0.1
//!                            cali1 ── eth0 pod 10.244.1.1/32                       cali1 ── eth0 pod 10.244.2.1/32
//!                            cali2 ── eth0 pod 10.244.1.2/32                       …
//!                            …   (route 10.244.1.N/32 dev caliN, proxy_arp=1,
//!                                 proxy_delay=0; pod: default via 169.254.1.1 onlink)
//! ```
//!
//! * node1's Kubernetes address (the Node object's InternalIP) is
//!   172.30.0.1; node2's is 172.30.0.2. The client link address 172.30.1.1
//!   is **not** a node address as far as Kubernetes is concerned (it is the
//!   external network's gateway), but it is a local address of node1, so a
//!   masqueraded source may be either of node1's local addresses
//!   ([`NODE1_LOCAL`]). NodePorts are probed on 172.30.0.1.
//! * The client routes everything (ExternalIPs, LoadBalancer IPs, the
//!   service CIDR) to node1. Nothing routes to the machine's real
//!   interfaces: node1's default route is a dead end, node2's goes to node1.
//! * No bridges (bridge netfilter would make bridged frames traverse
//!   rules); IPv6 DAD off; rp_filter off; redirects off (a pod hairpinning
//!   through node1 must not be told to go direct); ICMP error rate limit
//!   off on the nodes (a reject is an ICMP error, limited per destination
//!   to a burst of 6 then one a second, which turns the seventh quick
//!   reject into a timeout).
//! * IPv6 ([`Topology::build_dual_for`]) mirrors the IPv4 plan, every address
//!   of the same shape: node1 `fd00:172:30::1/64` on n2 and
//!   `fd00:172:30:1::1/64` on cl, node2 `fd00:172:30::2/64`, the client
//!   `fd00:172:30:1::100/64` (default via node1), pod 10.244.N.M also
//!   `fd00:10:244:N::M/128` ([`Pod::ip6`], M written in hex). Pods route
//!   `default via fe80::1 dev eth0`, and each node-side caliN carries
//!   `fe80::1/64` itself (link-local addresses may repeat across links) plus
//!   a host route `fd00:10:244:N::M/128 dev caliN`: plain neighbour
//!   discovery then works both ways, with no proxy NDP (which would need an
//!   explicit `ip -6 neigh add proxy` entry per pod). node1 routes
//!   `fd00:10:244:2::/64` via node2; both nodes have `default dev dflt` /
//!   via node1 as for IPv4, IPv6 forwarding on and the ICMPv6 error rate
//!   limit off. Pod namespaces set `net.ipv6.bindv6only=1` so the servers'
//!   IPv4 and IPv6 sockets are separate and report IPv4 peers as IPv4.
//! * Pods run [`PodServer`]s; probes and servers are dedicated threads that
//!   `setns` into a namespace, so no process is started per pod.
//! * Everything is deleted when the [`Topology`] is dropped, also on panic;
//!   a panicking test first prints the ruleset it loaded and node1's live
//!   ruleset.
//! * A topology serves one [`Backend`]: `load_manifests` compiles with
//!   `--format nft` and loads with `nft -f` (one text holds both
//!   families), or compiles with `--format iptables` and loads with
//!   `iptables-restore --noflush` the way a node sharing its tables with
//!   other software would: the first load inserts knc's hooks
//!   (`--iptables-hooks insert`), every later one moves them back to the
//!   front (`--iptables-hooks reinsert`). In a dual-stack topology the
//!   iptables back end also compiles `--format ip6tables` and loads it
//!   with `ip6tables-restore --noflush`, hooks tracked per family. Tests
//!   written as `fn(Backend)` run against both through `backend_tests!`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::netns::Netns;
use crate::pods::PodServer;
use crate::predict::{self, Explainer, Origin, World};
pub use crate::predict::{Inputs, Rules};
use crate::probe::{self, Probes, Proto};

/// Attempts needed to see every one of two equally weighted endpoints
/// (all 30 landing on one has probability 2^-29).
pub const SPREAD: usize = 30;
/// A refusal must come this fast (a timeout takes a second).
pub const FAST: Duration = Duration::from_millis(500);

/// node1's local addresses: the source a masqueraded packet may carry.
pub const NODE1_LOCAL: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(172, 30, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(172, 30, 1, 1)),
];
/// The external client's address.
pub const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 30, 1, 100));
/// node1's Kubernetes address: NodePorts are probed here, and a
/// masqueraded connection leaves with it (the kernel picks it for the
/// pod veths, which have no IPv4 address of their own).
pub const NODE1: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 30, 0, 1));
/// node1's other local address (its client link): not a Kubernetes node
/// address, but a local one, so node-originated traffic bound to it is
/// still the `node` source class, and masquerading it is visible.
pub const NODE1_ALT: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 30, 1, 1));
/// node1's IPv6 Kubernetes address (dual-stack topologies).
pub const NODE1_6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x172, 0x30, 0, 0, 0, 0, 1));
/// node1's local IPv6 addresses: the source a masqueraded IPv6 packet may
/// carry.
pub const NODE1_LOCAL6: [IpAddr; 2] = [
    NODE1_6,
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x172, 0x30, 1, 0, 0, 0, 1)),
];
/// The external client's IPv6 address (dual-stack topologies).
pub const CLIENT6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x172, 0x30, 1, 0, 0, 0, 0x100));

/// One pod: a name, an address (10.244.1.N lives on node1, 10.244.2.N on
/// node2) and the ports its server listens on.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub ip: Ipv4Addr,
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
}

impl Pod {
    pub fn new(name: &str, ip: &str) -> Pod {
        let ip: Ipv4Addr = ip.parse().expect("pod ip");
        let [a, b, node, _] = ip.octets();
        assert!(
            a == 10 && b == 244 && (node == 1 || node == 2),
            "pod address {ip} is not in 10.244.1.0/24 or 10.244.2.0/24"
        );
        Pod {
            name: name.into(),
            ip,
            tcp: Vec::new(),
            udp: Vec::new(),
        }
    }

    /// A pod whose server listens on TCP 8080, the target port of the
    /// tests' `http` Service ports.
    pub fn web(name: &str, ip: &str) -> Pod {
        Pod::new(name, ip).tcp(&[8080])
    }

    pub fn tcp(mut self, ports: &[u16]) -> Pod {
        self.tcp.extend_from_slice(ports);
        self
    }

    pub fn udp(mut self, ports: &[u16]) -> Pod {
        self.udp.extend_from_slice(ports);
        self
    }

    /// The pod's IPv6 address in dual-stack topologies: 10.244.N.M is
    /// `fd00:10:244:N::M` (M in hex).
    pub fn ip6(&self) -> Ipv6Addr {
        let [_, _, node, host] = self.ip.octets();
        Ipv6Addr::new(0xfd00, 0x10, 0x244, node.into(), 0, 0, 0, host.into())
    }

    fn node(&self) -> u8 {
        self.ip.octets()[2]
    }

    fn host_veth(&self) -> String {
        format!("cali{}", self.ip.octets()[3])
    }

    fn role(&self) -> String {
        format!("p{}-{}", self.node(), self.ip.octets()[3])
    }
}

/// Which of knc's back ends a test compiles for and loads into node1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `--format nft`, loaded with `nft -f`.
    Nft,
    /// `--format iptables`, loaded with `iptables-restore --noflush`.
    Iptables,
}

impl Backend {
    /// Suffix of the topology id, so both back ends of one test can run at
    /// once without their namespaces colliding.
    fn tag(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Iptables => "ipt",
        }
    }
}

/// A program that loads knc output into node1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// `nft -f`: `--format nft`, both families in one text.
    Nft,
    /// `iptables-restore`: `--format iptables`.
    Iptables,
    /// `ip6tables-restore`: `--format ip6tables`.
    Ip6tables,
}

impl Loader {
    /// The loading program.
    pub fn program(self) -> &'static str {
        match self {
            Loader::Nft => "nft",
            Loader::Iptables => "iptables-restore",
            Loader::Ip6tables => "ip6tables-restore",
        }
    }

    /// The program dumping what is loaded, for failure reports.
    fn dump(self) -> &'static [&'static str] {
        match self {
            Loader::Nft => &["nft", "list", "ruleset"],
            Loader::Iptables => &["iptables-save"],
            Loader::Ip6tables => &["ip6tables-save"],
        }
    }

    /// Index into [`Topology::hooked`] (iptables families only).
    fn family(self) -> usize {
        match self {
            Loader::Ip6tables => 1,
            _ => 0,
        }
    }
}

/// What `knc compile` printed for node1: one text per [`Loader`] this
/// topology uses (nft: one; iptables: one, or two in dual-stack
/// topologies, IPv4 first).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub texts: Vec<(Loader, String)>,
    /// What the texts were compiled from.
    pub inputs: Inputs,
}

impl Compiled {
    /// The text of a single-text topology (panics when there are two).
    pub fn text(&self) -> &str {
        assert_eq!(self.texts.len(), 1, "several texts: {:?}", self.texts);
        &self.texts[0].1
    }
}

/// Where a probe starts.
#[derive(Debug, Clone, Copy)]
pub enum From<'a> {
    /// The external client (172.30.1.100).
    Client,
    /// node1 itself.
    Node1,
    /// A pod, by name.
    Pod(&'a str),
}

/// The namespaces, pods and servers of one test. Dropping it stops the
/// servers and deletes the namespaces.
pub struct Topology {
    id: String,
    servers: Vec<PodServer>,
    pods: Vec<(Pod, Netns)>,
    client: Netns,
    node2: Netns,
    node1: Netns,
    /// Every text loaded into node1, in order.
    loaded: Vec<(Loader, String)>,
    compiles: usize,
    /// IPv6 addresses and routes too ([`Topology::build_dual_for`]).
    dual: bool,
    dir: tempfile::TempDir,
    backend: Backend,
    /// knc's iptables / ip6tables hooks are installed in node1 (the next
    /// `--noflush` load of that family must reinsert them, not insert them
    /// again).
    hooked: [bool; 2],
    /// Compiles pass the suite's `--service-cidr` flags (off for tests
    /// whose service CIDRs come from ServiceCIDR objects alone).
    service_cidr_flags: bool,
    /// What node1's knc rules are: every probe is checked against what
    /// `knc explain` predicts for them (see `predict.rs`).
    rules: Mutex<Rules>,
    explainer: Explainer,
    /// Every text `knc compile` printed, with its inputs, so loading one
    /// tells what node1 now runs.
    compiled: Vec<(String, Inputs)>,
}

fn sysctl(key: &str, value: &'static str) -> (String, &'static str) {
    (key.to_owned(), value)
}

/// Sysctls every namespace gets before its interfaces exist.
fn common_sysctls() -> Vec<(String, &'static str)> {
    vec![
        sysctl("net/ipv6/conf/all/accept_dad", "0"),
        sysctl("net/ipv6/conf/default/accept_dad", "0"),
        sysctl("net/ipv4/conf/all/rp_filter", "0"),
        sysctl("net/ipv4/conf/default/rp_filter", "0"),
        sysctl("net/ipv4/conf/all/accept_redirects", "0"),
        sysctl("net/ipv4/conf/default/accept_redirects", "0"),
        sysctl("net/ipv6/conf/all/accept_redirects", "0"),
        sysctl("net/ipv6/conf/default/accept_redirects", "0"),
        sysctl("net/ipv6/bindv6only", "1"),
    ]
}

fn node_sysctls() -> Vec<(String, &'static str)> {
    let mut s = common_sysctls();
    s.extend([
        sysctl("net/ipv4/ip_forward", "1"),
        sysctl("net/ipv4/conf/all/send_redirects", "0"),
        sysctl("net/ipv4/conf/default/send_redirects", "0"),
        // Rejects are ICMP errors, which the kernel rate-limits per
        // destination (a burst of 6, then one a second): without this a
        // client probing several rejected ports in a row sees timeouts.
        sysctl("net/ipv4/icmp_ratelimit", "0"),
        sysctl("net/ipv6/conf/all/forwarding", "1"),
        sysctl("net/ipv6/icmp/ratelimit", "0"),
    ]);
    s
}

impl Topology {
    /// Builds the topology for test `id` (short, unique within the suite)
    /// with `pods`, and starts their servers; knc output is nft.
    pub fn build(id: &str, pods: &[Pod]) -> Topology {
        Topology::build_with(Backend::Nft, id, pods, false)
    }

    /// Like [`Topology::build`], for `backend`'s output.
    pub fn build_for(backend: Backend, id: &str, pods: &[Pod]) -> Topology {
        Topology::build_with(backend, id, pods, false)
    }

    /// Like [`Topology::build_for`], with IPv6 as well: every namespace
    /// also gets its IPv6 address and routes (see the module doc). With the
    /// iptables back end both the `iptables` and the `ip6tables` text are
    /// loaded.
    pub fn build_dual_for(backend: Backend, id: &str, pods: &[Pod]) -> Topology {
        Topology::build_with(backend, id, pods, true)
    }

    fn build_with(backend: Backend, id: &str, pods: &[Pod], dual: bool) -> Topology {
        let id = &format!("{id}-{}", backend.tag());
        let node1 = Netns::create(id, "node1");
        let node2 = Netns::create(id, "node2");
        let client = Netns::create(id, "client");
        let mut topo = Topology {
            id: id.to_owned(),
            servers: Vec::new(),
            pods: Vec::new(),
            client,
            node2,
            node1,
            loaded: Vec::new(),
            compiles: 0,
            dual,
            dir: tempfile::tempdir().expect("tempdir"),
            backend,
            hooked: [false; 2],
            service_cidr_flags: true,
            rules: Mutex::new(Rules::Nothing),
            explainer: Explainer::default(),
            compiled: Vec::new(),
        };
        for pod in pods {
            assert!(
                topo.pods
                    .iter()
                    .all(|(p, _)| p.ip != pod.ip && p.name != pod.name),
                "duplicate pod {pod:?}"
            );
            let ns = Netns::create(id, &pod.role());
            topo.pods.push((pod.clone(), ns));
        }
        topo.wire();
        if topo.dual {
            topo.wire_ipv6();
        }
        for (pod, ns) in &topo.pods {
            topo.servers
                .push(PodServer::start(ns.name(), &pod.name, &pod.tcp, &pod.udp));
        }
        topo
    }

    fn wire(&self) {
        let (n1, n2, cl) = (&self.node1, &self.node2, &self.client);
        n1.sysctls(&node_sysctls());
        n2.sysctls(&node_sysctls());
        cl.sysctls(&common_sysctls());
        for (_, ns) in &self.pods {
            ns.sysctls(&common_sysctls());
        }

        // Links, created from the node side so nothing ever exists in the
        // machine's own namespace. node1's link to node2 comes first so the
        // kernel's preferred source (and masquerade address) is 172.30.0.1.
        let mut b1 = vec![
            "link set lo up".to_owned(),
            format!("link add n2 type veth peer name n1 netns {}", n2.name()),
            "addr add 172.30.0.1/24 dev n2".into(),
            "link set n2 up".into(),
            format!("link add cl type veth peer name eth0 netns {}", cl.name()),
            "addr add 172.30.1.1/24 dev cl".into(),
            "link set cl up".into(),
            "link add dflt type veth peer name dfltp".into(),
            "link set dflt arp off up".into(),
        ];
        let mut b2 = vec![
            "link set lo up".to_owned(),
            "addr add 172.30.0.2/24 dev n1".into(),
            "link set n1 up".into(),
        ];
        for (pod, ns) in &self.pods {
            let b = if pod.node() == 1 { &mut b1 } else { &mut b2 };
            let veth = pod.host_veth();
            b.push(format!(
                "link add {veth} type veth peer name eth0 netns {}",
                ns.name()
            ));
            b.push(format!("link set {veth} up"));
        }
        n1.ip_batch(&b1);
        n2.ip_batch(&b2);

        cl.ip_batch(&[
            "link set lo up".into(),
            "addr add 172.30.1.100/24 dev eth0".into(),
            "link set eth0 up".into(),
            "route add default via 172.30.1.1".into(),
        ]);
        for (pod, ns) in &self.pods {
            ns.ip_batch(&[
                "link set lo up".into(),
                format!("addr add {}/32 dev eth0", pod.ip),
                "link set eth0 up".into(),
                "route add 169.254.1.1 dev eth0 scope link".into(),
                "route add default via 169.254.1.1 dev eth0 onlink".into(),
            ]);
        }

        // Routes and per-veth settings, now that every link exists.
        let mut r1 = vec![
            "route add default dev dflt".to_owned(),
            "route add 10.244.2.0/24 via 172.30.0.2".into(),
        ];
        let mut r2 = vec!["route add default via 172.30.0.1".to_owned()];
        let (mut s1, mut s2) = (Vec::new(), Vec::new());
        for (pod, _) in &self.pods {
            let veth = pod.host_veth();
            let (r, s) = if pod.node() == 1 {
                (&mut r1, &mut s1)
            } else {
                (&mut r2, &mut s2)
            };
            r.push(format!("route add {}/32 dev {veth}", pod.ip));
            s.push(sysctl(&format!("net/ipv4/conf/{veth}/proxy_arp"), "1"));
            s.push(sysctl(&format!("net/ipv4/neigh/{veth}/proxy_delay"), "0"));
        }
        n1.ip_batch(&r1);
        n2.ip_batch(&r2);
        n1.sysctls(&s1);
        n2.sysctls(&s2);
    }

    /// The IPv6 half of the topology, on the links [`Topology::wire`] made.
    fn wire_ipv6(&self) {
        let mut b1 = vec![
            "addr add fd00:172:30::1/64 dev n2".to_owned(),
            "addr add fd00:172:30:1::1/64 dev cl".into(),
        ];
        let mut b2 = vec!["addr add fd00:172:30::2/64 dev n1".to_owned()];
        for (pod, ns) in &self.pods {
            let veth = pod.host_veth();
            let b = if pod.node() == 1 { &mut b1 } else { &mut b2 };
            b.push(format!("addr add fe80::1/64 dev {veth}"));
            b.push(format!("route add {}/128 dev {veth}", pod.ip6()));
            ns.ip_batch(&[
                format!("addr add {}/128 dev eth0", pod.ip6()),
                "route add default via fe80::1 dev eth0".into(),
            ]);
        }
        b1.push("route add ::/0 dev dflt".into());
        b1.push("route add fd00:10:244:2::/64 via fd00:172:30::2".into());
        b2.push("route add default via fd00:172:30::1".into());
        self.node1.ip_batch(&b1);
        self.node2.ip_batch(&b2);
        self.client.ip_batch(&[
            "addr add fd00:172:30:1::100/64 dev eth0".into(),
            "route add default via fd00:172:30:1::1".into(),
        ]);
    }

    fn ns(&self, from: From<'_>) -> &str {
        match from {
            From::Client => self.client.name(),
            From::Node1 => self.node1.name(),
            From::Pod(name) => self
                .pods
                .iter()
                .find(|(p, _)| p.name == name)
                .map(|(_, ns)| ns.name())
                .unwrap_or_else(|| panic!("no pod named {name}")),
        }
    }

    /// `count` TCP connections to `target` (`"ip:port"`) from `from`.
    pub fn tcp(&self, from: From<'_>, target: &str, count: usize) -> Probes {
        self.probe(from, Proto::Tcp, target, count)
    }

    /// `count` TCP connections from the external client to `target`, every
    /// one answered by one of exactly `pods` on port 8080 and seen from one
    /// of `masq` (node1's local addresses of the target's family, e.g.
    /// [`NODE1_LOCAL`]): masqueraded. Returns the probes for more checks.
    pub fn assert_client_masqueraded(
        &self,
        target: &str,
        count: usize,
        pods: &[&str],
        masq: &[IpAddr],
    ) -> Probes {
        let probes = self.tcp(From::Client, target, count);
        probes
            .assert_pods(pods)
            .assert_port(8080)
            .assert_sources_within(masq);
        probes
    }

    /// `count` TCP connections to `target` from each of `froms`, every one
    /// refused within [`FAST`].
    pub fn assert_tcp_refused(&self, froms: &[From<'_>], target: &str, count: usize) {
        for &from in froms {
            self.tcp(from, target, count).assert_refused_within(FAST);
        }
    }

    /// `count` UDP request/replies to `target` (`"ip:port"`) from `from`.
    pub fn udp(&self, from: From<'_>, target: &str, count: usize) -> Probes {
        self.probe(from, Proto::Udp, target, count)
    }

    /// `count` TCP connections to `target` from `from`, each bound to
    /// local address `source` first.
    pub fn tcp_from(&self, from: From<'_>, source: IpAddr, target: &str, count: usize) -> Probes {
        self.probe_bound(from, Proto::Tcp, Some(source), target, count)
    }

    fn probe(&self, from: From<'_>, proto: Proto, target: &str, count: usize) -> Probes {
        self.probe_bound(from, proto, None, target, count)
    }

    /// Probes, then checks every attempt against `knc explain` (panics
    /// when they disagree).
    fn probe_bound(
        &self,
        from: From<'_>,
        proto: Proto,
        source: Option<IpAddr>,
        target: &str,
        count: usize,
    ) -> Probes {
        let target: SocketAddr = target.parse().expect("probe target ip:port or [ip6]:port");
        let mut probes = probe::probe_from(self.ns(from), proto, source, target, count);
        let bound = source.map_or(String::new(), |s| format!(" bound to {s}"));
        probes.what = format!("[{}] {:?} {target} from {from:?}{bound}", self.id, proto);
        self.explained(from, proto, target, probes)
    }

    /// Returns `probes` (attempts from `from` to `target`) once each is
    /// what `knc explain` predicts for node1's rules; panics otherwise. For
    /// tests that send their own packets; [`Topology::tcp`] and the other
    /// probes check themselves.
    pub fn explained(
        &self,
        from: From<'_>,
        proto: Proto,
        target: SocketAddr,
        probes: Probes,
    ) -> Probes {
        let rules = self.rules.lock().unwrap().clone();
        if let Err(disagreement) = predict::check(
            &rules,
            &self.explainer,
            &self.world(),
            proto,
            target,
            probes.source,
            &self.origin(from),
            &probes,
        ) {
            panic!("[{}] {disagreement}\n{probes:?}", self.id);
        }
        probes
    }

    /// How explain is told where a probe from `from` comes from: node1
    /// itself, or the node1 interface it arrives on (a pod of node1 on its
    /// veth, a pod of node2 over `n2`, the client over `cl`).
    fn origin(&self, from: From<'_>) -> Origin {
        let interface = match from {
            From::Node1 => None,
            From::Client => Some("cl".to_owned()),
            From::Pod(name) => {
                let (pod, _) = self
                    .pods
                    .iter()
                    .find(|(p, _)| p.name == name)
                    .unwrap_or_else(|| panic!("no pod named {name}"));
                Some(if pod.node() == 1 {
                    pod.host_veth()
                } else {
                    "n2".to_owned()
                })
            }
        };
        Origin {
            this_node: matches!(from, From::Node1),
            interface,
        }
    }

    /// The topology's facts a prediction is checked with.
    fn world(&self) -> World {
        World {
            pods: self
                .pods
                .iter()
                .map(|(p, _)| (p.name.clone(), vec![IpAddr::V4(p.ip), IpAddr::V6(p.ip6())]))
                .collect(),
            node1_local: NODE1_LOCAL.iter().chain(&NODE1_LOCAL6).copied().collect(),
            backend: self.backend,
        }
    }

    /// Says what node1's knc rules now are, for rules the harness did not
    /// load from its own compile (an incremental transaction, `knc apply`,
    /// `knc reconcile`, `knc cleanup`).
    pub fn rules_are(&self, rules: Rules) {
        *self.rules.lock().unwrap() = rules;
    }

    /// Loads a hand-written nft script (the harness self-test): not knc's
    /// output, so probes are not predicted while it is loaded.
    pub fn load_hand_written_nft(&mut self, text: &str) {
        self.load_nft(text);
        self.rules_are(Rules::HandWritten);
    }

    /// Records that node1 now runs `text`: knc's rules of the inputs it was
    /// compiled from, or unknown rules.
    fn loaded_text(&self, loader: Loader, text: &str) {
        let rules = match self.compiled.iter().rev().find(|(t, _)| t == text) {
            Some((_, inputs)) => Rules::Compiled(vec![inputs.clone()]),
            None => Rules::Unknown(format!(
                "{} input of {} lines",
                loader.program(),
                text.lines().count()
            )),
        };
        self.rules_are(rules);
    }

    /// The address of pod `name`.
    pub fn pod_ip(&self, name: &str) -> IpAddr {
        self.pods
            .iter()
            .find(|(p, _)| p.name == name)
            .map(|(p, _)| IpAddr::V4(p.ip))
            .unwrap_or_else(|| panic!("no pod named {name}"))
    }

    /// The back end this topology serves.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The IPv6 address of pod `name` (dual-stack topologies).
    pub fn pod_ip6(&self, name: &str) -> IpAddr {
        self.pods
            .iter()
            .find(|(p, _)| p.name == name)
            .map(|(p, _)| IpAddr::V6(p.ip6()))
            .unwrap_or_else(|| panic!("no pod named {name}"))
    }

    /// The loaders this topology's output goes through, in load order.
    fn loaders(&self) -> &'static [Loader] {
        match (self.backend, self.dual) {
            (Backend::Nft, _) => &[Loader::Nft],
            (Backend::Iptables, false) => &[Loader::Iptables],
            (Backend::Iptables, true) => &[Loader::Iptables, Loader::Ip6tables],
        }
    }

    /// Compiles `manifests` (YAML) with the real `knc` binary for node1:
    /// one text per loader of this topology's back end; iptables hooks are
    /// inserted on a family's first load and reinserted after (see the
    /// module doc).
    pub fn compile(&mut self, manifests: &str) -> Compiled {
        self.compile_flags(manifests, &[])
    }

    /// Like [`Topology::compile`], with extra `knc compile` settings (e.g.
    /// `--masquerade-all`) for every loader.
    pub fn compile_flags(&mut self, manifests: &str, flags: &[&str]) -> Compiled {
        let texts: Vec<(Loader, String)> = self
            .loaders()
            .iter()
            .map(|&loader| {
                let hooks = if self.hooked[loader.family()] {
                    "reinsert"
                } else {
                    "insert"
                };
                let mut args = flags.to_vec();
                if let Loader::Iptables | Loader::Ip6tables = loader {
                    let format = match loader {
                        Loader::Iptables => "iptables",
                        _ => "ip6tables",
                    };
                    args.extend(["--format", format, "--iptables-hooks", hooks]);
                }
                let text = self.compile_with(manifests, &args);
                (loader, text)
            })
            .collect();
        let inputs = self
            .compiled
            .iter()
            .rev()
            .find(|(t, _)| *t == texts[0].1)
            .map(|(_, inputs)| inputs.clone())
            .expect("the compile was recorded");
        Compiled { texts, inputs }
    }

    /// From now on, compiles pass no `--service-cidr` flag: the service
    /// CIDRs are the inputs' ServiceCIDR objects alone.
    pub fn without_service_cidr_flags(&mut self) {
        self.service_cidr_flags = false;
    }

    /// Compiles `manifests` for node1 with extra `knc compile` arguments.
    pub fn compile_with(&mut self, manifests: &str, args: &[&str]) -> String {
        self.compiles += 1;
        let dir: PathBuf = self.dir.path().join(format!("manifests-{}", self.compiles));
        std::fs::create_dir(&dir).expect("manifest dir");
        std::fs::write(dir.join("cluster.yaml"), manifests).expect("write manifests");
        let service_cidrs: &[&str] = if self.service_cidr_flags {
            &["--service-cidr", "10.96.0.0/16"]
        } else {
            &[]
        };
        let service_cidrs6: &[&str] = if self.service_cidr_flags {
            &["--service-cidr", "fd00:10:96::/112"]
        } else {
            &[]
        };
        let settings: Vec<&str> = ["--cluster-cidr", "10.244.0.0/16"]
            .iter()
            .chain(service_cidrs)
            .chain(args)
            .chain(&["--cluster-cidr", "fd00:10:244::/56"])
            .chain(service_cidrs6)
            .copied()
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_knc"))
            .arg("compile")
            .arg(&dir)
            .args(["--node", "node1"])
            .args(&settings)
            .output()
            .expect("run knc");
        assert!(
            out.status.success(),
            "[{}] knc compile failed ({}):\n{}\nmanifests:\n{manifests}",
            self.id,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("knc output is UTF-8");
        assert!(
            !text.trim().is_empty(),
            "[{}] knc compile printed nothing",
            self.id
        );
        self.compiled
            .push((text.clone(), Inputs::new(dir, &settings)));
        text
    }

    /// Loads an nft script into node1 (`nft -f`, one transaction).
    pub fn load_nft(&mut self, text: &str) {
        let n = self.loaded.len();
        let file = self.dir.path().join(format!("ruleset-{n}.nft"));
        std::fs::write(&file, text).expect("write ruleset");
        self.loaded.push((Loader::Nft, text.to_owned()));
        let file = file.to_str().expect("utf-8 path").to_owned();
        self.node1.exec("nft", &["-f", &file]);
        self.loaded_text(Loader::Nft, text);
    }

    /// Loads `iptables-restore` input into node1 with `args` (e.g.
    /// `--noflush`); records that knc's IPv4 hooks are in place.
    pub fn load_iptables(&mut self, text: &str, args: &[&str]) {
        self.load_restore(Loader::Iptables, text, args);
    }

    /// Loads `iptables-restore` or `ip6tables-restore` input into node1
    /// with `args`; records whether knc's hooks of that family are in place.
    fn load_restore(&mut self, loader: Loader, text: &str, args: &[&str]) {
        let n = self.loaded.len();
        let file = self
            .dir
            .path()
            .join(format!("ruleset-{n}.{}", loader.program()));
        std::fs::write(&file, text).expect("write ruleset");
        self.loaded.push((loader, text.to_owned()));
        let file = file.to_str().expect("utf-8 path").to_owned();
        let mut argv = args.to_vec();
        argv.push(&file);
        self.node1.exec(loader.program(), &argv);
        self.hooked[loader.family()] |= text.contains("-j KNC-SERVICES");
        self.loaded_text(loader, text);
    }

    /// Loads knc output the way this topology's back end is loaded: `nft
    /// -f`, or `iptables-restore --noflush` (and `ip6tables-restore
    /// --noflush` for the IPv6 text).
    pub fn load(&mut self, compiled: &Compiled) {
        for (loader, text) in &compiled.texts {
            match loader {
                Loader::Nft => self.load_nft(text),
                _ => self.load_restore(*loader, text, &["--noflush"]),
            }
        }
    }

    /// Compiles `manifests` and loads the result into node1; returns it.
    pub fn load_manifests(&mut self, manifests: &str) -> Compiled {
        self.load_manifests_flags(manifests, &[])
    }

    /// Like [`Topology::load_manifests`], compiled with extra settings.
    pub fn load_manifests_flags(&mut self, manifests: &str, flags: &[&str]) -> Compiled {
        let compiled = self.compile_flags(manifests, flags);
        self.load(&compiled);
        compiled
    }

    /// `iptables-save` of node1 without comments and counters, so two
    /// dumps of the same rules compare equal.
    pub fn iptables_save(&self) -> String {
        let dump = self.node1.exec("iptables-save", &[]);
        dump.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.rfind(" [") {
                Some(i) if l.starts_with(':') => &l[..i],
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs `nft ARGS` in node1 and returns its output.
    pub fn nft(&self, args: &[&str]) -> String {
        self.node1.exec("nft", args)
    }

    /// node1's namespace (the runtime tests run `knc apply` and `knc
    /// reconcile` inside it).
    pub fn node1(&self) -> &Netns {
        &self.node1
    }

    /// The external client's namespace.
    pub fn client(&self) -> &Netns {
        &self.client
    }

    /// This topology's temporary directory (deleted with it).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// This topology's id (unique within the suite).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut report = format!("\n===== [{}] kernel test failed =====\n", self.id);
            let last = self.loaded.len().saturating_sub(self.loaders().len());
            if self.loaded.is_empty() {
                report += "--- no ruleset was loaded\n";
            }
            for (loader, text) in &self.loaded[last..] {
                report += &format!(
                    "--- last {} input loaded into node1:\n{text}\n",
                    loader.program()
                );
            }
            for loader in self.loaders() {
                let live = loader.dump();
                if let Ok(out) = Command::new("ip")
                    .args(["netns", "exec", self.node1.name()])
                    .args(live)
                    .output()
                {
                    report += &format!(
                        "--- {} in node1:\n{}\n",
                        live.join(" "),
                        String::from_utf8_lossy(&out.stdout)
                    );
                }
            }
            eprintln!("{report}");
        }
        // Servers first (their threads live in the pod namespaces), then
        // the namespaces (fields drop after this).
        self.servers.clear();
    }
}
