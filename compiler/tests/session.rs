//! A [`Session`] is invisible: after every edit of its inputs, its compile
//! gives what a cold compile of the same files gives, and the nft text of
//! both is byte for byte the same.

mod common;

use common::Rng;
use knc_compiler::back::{self, Format};
use knc_compiler::compile::{compile, Compiled, Failure, NodeChoice, Settings};
use knc_compiler::front::SourceFile;
use knc_compiler::session::{Path, Session};

const NODES: usize = 3;
const SERVICES: usize = 40;

fn node(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node{i}\n  labels: {{topology.kubernetes.io/zone: z{}}}\nspec:\n  podCIDR: 10.{}.0.0/16\nstatus:\n  addresses:\n  - {{type: InternalIP, address: 172.30.0.{i}}}\n",
        i % 2,
        127 + i
    )
}

fn service(i: usize, variant: usize) -> String {
    let kind = match i % 4 {
        0 => "  type: NodePort\n  externalTrafficPolicy: Local\n",
        1 => "  type: LoadBalancer\n",
        _ => "",
    };
    let affinity = if i.is_multiple_of(5) {
        "  sessionAffinity: ClientIP\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n  namespace: ns{}\nspec:\n{kind}{affinity}  clusterIP: 10.96.{}.{}\n  ports:\n  - {{name: http, port: {}, targetPort: 8080}}\n  - {{name: dns, port: 53, protocol: UDP}}\n",
        i % 3,
        i / 200,
        i % 200 + 1,
        80 + variant
    )
}

/// An endpoint: address, node, and its conditions.
#[derive(Clone)]
struct Ep {
    address: String,
    node: usize,
    ready: bool,
    terminating: bool,
    zone_hint: Option<usize>,
}

fn slice(i: usize, part: usize, eps: &[Ep]) -> String {
    let mut out = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s{i}-{part}\n  namespace: ns{}\n  labels:\n    kubernetes.io/service-name: s{i}\naddressType: IPv4\nports:\n- {{name: http, port: 8080}}\n- {{name: dns, port: 53, protocol: UDP}}\nendpoints:\n",
        i % 3
    );
    for ep in eps {
        out.push_str(&format!(
            "- addresses: [\"{}\"]\n  nodeName: node{}\n  conditions: {{ready: {}, serving: true, terminating: {}}}\n",
            ep.address, ep.node, ep.ready, ep.terminating
        ));
        if let Some(zone) = ep.zone_hint {
            out.push_str(&format!("  hints: {{forZones: [{{name: z{zone}}}]}}\n"));
        }
    }
    out
}

/// The cluster: documents in a fixed order, each Service with one or two
/// slices.
struct Cluster {
    services: Vec<usize>,
    slices: Vec<Vec<Vec<Ep>>>,
}

impl Cluster {
    fn new(rng: &mut Rng) -> Cluster {
        let mut slices = Vec::new();
        for i in 0..SERVICES {
            let parts = 1 + usize::from(i % 7 == 3);
            let mut s = Vec::new();
            for part in 0..parts {
                s.push(
                    (0..1 + rng.below(4))
                        .map(|j| Ep {
                            address: format!(
                                "10.{}.{}.{}",
                                128 + (i + j) % NODES,
                                i,
                                part * 10 + j + 1
                            ),
                            node: 1 + (i + j) % NODES,
                            ready: true,
                            terminating: false,
                            zone_hint: None,
                        })
                        .collect(),
                );
            }
            slices.push(s);
        }
        Cluster {
            services: vec![0; SERVICES],
            slices,
        }
    }

    fn documents(&self) -> Vec<String> {
        let mut docs: Vec<String> = (1..=NODES).map(node).collect();
        for (i, variant) in self.services.iter().enumerate() {
            docs.push(service(i, *variant));
            for (part, eps) in self.slices[i].iter().enumerate() {
                docs.push(slice(i, part, eps));
            }
        }
        docs
    }

    /// One change, mostly to endpoints.
    fn edit(&mut self, rng: &mut Rng) {
        let i = rng.below(SERVICES);
        let part = rng.below(self.slices[i].len());
        let eps = &mut self.slices[i][part];
        match rng.below(9) {
            0 => {
                eps.pop();
            }
            1 => eps.push(Ep {
                address: format!(
                    "10.{}.{}.{}",
                    128 + rng.below(NODES),
                    200 + rng.below(50),
                    rng.below(250) + 1
                ),
                node: 1 + rng.below(NODES),
                ready: rng.below(3) > 0,
                terminating: false,
                zone_hint: None,
            }),
            2 => {
                if let Some(ep) = eps.first_mut() {
                    ep.ready = !ep.ready;
                    ep.terminating = !ep.ready && rng.below(2) == 0;
                }
            }
            3 => {
                if let Some(ep) = eps.last_mut() {
                    ep.node = 1 + rng.below(NODES);
                }
            }
            4 => {
                let n = eps.len();
                for ep in eps.iter_mut() {
                    ep.zone_hint = (rng.below(3) > 0).then(|| rng.below(2));
                }
                if n == 0 {
                    eps.push(Ep {
                        address: "10.128.250.1".into(),
                        node: 1,
                        ready: true,
                        terminating: false,
                        zone_hint: Some(0),
                    });
                }
            }
            5 => eps.clear(),
            6 => {
                // A Service itself changes: the whole compile.
                self.services[i] = rng.below(3);
            }
            7 => {
                // The same address in another Service too (a pod behind two).
                let j = rng.below(SERVICES);
                if let Some(ep) = self.slices[j][0].first().cloned() {
                    self.slices[i][part].push(ep);
                }
            }
            _ => {
                if let Some(ep) = eps.first_mut() {
                    ep.address = format!(
                        "10.{}.{}.{}",
                        128 + rng.below(NODES),
                        100 + rng.below(50),
                        rng.below(250) + 1
                    );
                }
            }
        }
    }
}

fn nft(compiled: &Compiled) -> Vec<String> {
    compiled
        .rulesets
        .iter()
        .map(|r| back::emit(Format::Nft, r))
        .collect()
}

fn summary(result: &Result<Compiled, Failure>) -> String {
    match result {
        Ok(c) => format!("{} rulesets", c.rulesets.len()),
        Err(Failure::Usage(m)) => format!("usage error: {m}"),
        Err(Failure::Invalid(ds)) => format!(
            "invalid: {:?}",
            ds.iter().map(|d| d.to_string()).collect::<Vec<_>>()
        ),
    }
}

fn check(layout_files: bool, choice: NodeChoice, seed: u64) {
    let mut rng = Rng(seed);
    let mut cluster = Cluster::new(&mut rng);
    let mut session = Session::default();
    let settings = Settings::default();
    let (mut fast, mut full) = (0, 0);
    for round in 0..150 {
        if round > 0 {
            cluster.edit(&mut rng);
        }
        let docs = cluster.documents();
        let files: Vec<SourceFile> = if layout_files {
            docs.iter()
                .enumerate()
                .map(|(i, d)| SourceFile::new(format!("{i:04}.yaml"), d.clone()))
                .collect()
        } else {
            vec![SourceFile::new("dump.yaml", docs.join("---\n"))]
        };
        let cold = compile(&files, vec![], &settings, &choice);
        let warm = session.compile(&files, vec![], &settings, &choice);
        match (cold, warm) {
            (Ok(cold), Ok(warm)) => {
                assert_eq!(warm.rulesets, cold.rulesets, "round {round}: IR");
                assert_eq!(nft(&warm), nft(&cold), "round {round}: nft");
                assert_eq!(warm.skipped, cold.skipped);
                assert_eq!(warm.warnings.len(), cold.warnings.len());
            }
            (Err(Failure::Usage(a)), Err(Failure::Usage(b))) => assert_eq!(a, b),
            (cold, warm) => panic!(
                "round {round}: cold {} but warm {}",
                summary(&cold),
                summary(&warm)
            ),
        }
        match session.path() {
            Path::Endpoints => fast += 1,
            Path::Full => full += 1,
            Path::Unchanged => {}
        }
    }
    assert!(
        fast > full,
        "most rounds change endpoints only: {fast} incremental, {full} full"
    );
}

#[test]
fn one_file_per_object_for_one_node() {
    check(true, NodeChoice::Named("node1".into()), 0x1234_5678);
}

#[test]
fn one_dump_for_every_node() {
    check(false, NodeChoice::Every, 0x9abc_def0);
}

#[test]
fn one_dump_node_agnostic() {
    check(false, NodeChoice::Agnostic, 0x0f0f_1234);
}
