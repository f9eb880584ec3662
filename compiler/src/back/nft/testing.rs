//! IR rulesets for the nft model's unit tests: hand-made ones and
//! reproducible generated ones with the changes a cluster goes through.

use std::net::IpAddr;

use crate::ir::{
    Backend, BackendSets, Entry, Family, Frontend, FrontendKind, NodePortScope, Protocol, Route,
    Routing, Ruleset, SetKind,
};

const CLUSTER: Route = Route::Forward {
    set: SetKind::Cluster,
    masquerade: false,
};

/// A ClusterIP Service `name` at `ip`:80 with `backends` on port 8080.
pub fn service(name: &str, ip: &str, backends: &[&str]) -> Entry {
    let backends: Vec<IpAddr> = backends.iter().map(|b| b.parse().unwrap()).collect();
    clusterip(name, ip.parse().unwrap(), &backends)
}

fn clusterip(name: &str, ip: IpAddr, backends: &[IpAddr]) -> Entry {
    Entry {
        family: Family::of(&ip),
        namespace: "default".into(),
        name: name.into(),
        port_name: String::new(),
        protocol: Protocol::Tcp,
        frontends: vec![Frontend {
            kind: FrontendKind::ClusterIp,
            address: Some(ip),
            port: 80,
            allowed_sources: vec![],
            routing: Routing {
                node: CLUSTER,
                pods: CLUSTER,
                external: CLUSTER,
            },
        }],
        backends: BackendSets {
            cluster: backends
                .iter()
                .map(|&address| Backend {
                    address,
                    port: 8080,
                    weight: 1,
                })
                .collect(),
            local: vec![],
        },
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        selection: Default::default(),
    }
}

/// The ruleset of `services` for node1; every ClusterIP is active.
pub fn ruleset(services: Vec<Entry>) -> Ruleset {
    Ruleset {
        version: crate::ir::VERSION,
        node: Some("node1".into()),
        cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        local_detector: crate::ir::LocalDetector::Cidrs,
        service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
        cluster_ips: services
            .iter()
            .flat_map(|s| &s.frontends)
            .filter(|f| f.kind == FrontendKind::ClusterIp)
            .filter_map(|f| f.address)
            .collect(),
        node_addresses: vec![],
        nodeport_scope: NodePortScope::AnyLocal,
        services: services.into_iter().map(std::sync::Arc::new).collect(),
    }
}

/// A small deterministic random source (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// Service `id` with `count` backends (generation `gen` of its endpoints):
/// IPv6 for every 7th id, a NodePort for every 3rd, node-local external
/// traffic for every 5th, affinity when asked.
pub fn generated(id: u32, count: u32, gen: u32, affinity: bool) -> Entry {
    let v6 = id.is_multiple_of(7);
    let ip: IpAddr = if v6 {
        format!("fd00:10:96::{:x}", id + 1).parse().unwrap()
    } else {
        format!("10.96.{}.{}", id >> 8, id & 255).parse().unwrap()
    };
    let backends: Vec<IpAddr> = (0..count)
        .map(|j| {
            let k = id * 64 + j + gen * 16;
            if v6 {
                format!("fd00:10:244::{k:x}").parse().unwrap()
            } else {
                format!("10.244.{}.{}", k >> 8, k & 255).parse().unwrap()
            }
        })
        .collect();
    let mut s = clusterip(&format!("svc{id}"), ip, &backends);
    if id.is_multiple_of(5) {
        s.backends.local = s.backends.cluster[..1].to_vec();
        let routing = &mut s.frontends[0].routing;
        routing.external = Route::Forward {
            set: SetKind::Local,
            masquerade: false,
        };
        routing.node = Route::Forward {
            set: SetKind::Cluster,
            masquerade: true,
        };
    }
    if id.is_multiple_of(3) {
        let mut nodeport = s.frontends[0].clone();
        nodeport.kind = FrontendKind::NodePort;
        nodeport.address = None;
        nodeport.port = 30000 + id as u16;
        s.frontends.push(nodeport);
    }
    if affinity {
        s.affinity_timeout_seconds = Some(10800);
    }
    s
}

/// Two generated rulesets: a cluster, and the same cluster after a
/// random mix of Services added and removed, endpoints changed (within
/// and across group sizes) and affinity switched on or off.
pub fn generated_pair(seed: u64) -> (Ruleset, Ruleset) {
    let mut rng = Rng::new(seed);
    let n = 3 + rng.below(12) as u32;
    let old: Vec<(u32, u32, u32, bool)> = (0..n)
        .map(|id| (id, 1 + rng.below(4) as u32, 0, rng.chance(6)))
        .collect();
    let mut new = Vec::new();
    for &(id, count, gen, affinity) in &old {
        if rng.chance(8) {
            continue;
        }
        let count = match rng.below(6) {
            0 => count + 1,
            1 if count > 1 => count - 1,
            _ => count,
        };
        let gen = if rng.chance(4) { gen + 1 } else { gen };
        let affinity = if rng.chance(10) { !affinity } else { affinity };
        new.push((id, count, gen, affinity));
    }
    for id in n..n + rng.below(3) as u32 {
        new.push((id, 1 + rng.below(4) as u32, 0, false));
    }
    let build = |spec: &[(u32, u32, u32, bool)]| {
        ruleset(
            spec.iter()
                .map(|&(id, count, gen, affinity)| generated(id, count, gen, affinity))
                .collect(),
        )
    };
    (build(&old), build(&new))
}
