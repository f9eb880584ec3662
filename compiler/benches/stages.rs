//! Criterion benches for each stage of `knc compile` on a generated cluster
//! of 1,000 ClusterIP Services x 10 endpoints over 3 Nodes (the shape of
//! `bench/gen_cluster.py 1000 10`): parse + load, convert (to the model),
//! lower, and the nft and iptables emitters. Run: `cargo bench -p
//! knc-compiler --bench stages`. Timing only; nothing here asserts a time.
use std::fmt::Write;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use knc_compiler::back::{self, Format};
use knc_compiler::front::{self, SourceFile};
use knc_compiler::{kinds, lower};

const SERVICES: usize = 1000;
const ENDPOINTS: usize = 10;
const NODES: usize = 3;

fn ip(base: usize, k: usize) -> String {
    format!("10.{}.{}.{}", base + (k >> 16), (k >> 8) & 255, k & 255)
}

/// The cluster as multi-document YAML, as gen_cluster.py writes it.
fn cluster_yaml() -> String {
    let mut out = String::new();
    for i in 1..=NODES {
        let _ = write!(
            out,
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: node{i}\nspec:\n  podCIDR: 10.{}.0.0/16\n\
             status:\n  addresses:\n    - type: InternalIP\n      address: 172.30.0.{i}\n---\n",
            127 + i
        );
    }
    for i in 0..SERVICES {
        let (ns, svc) = (format!("ns{}", i % 100), format!("svc{i}"));
        let _ = write!(
            out,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {svc}\n  namespace: {ns}\nspec:\n  \
             clusterIP: {}\n  ports:\n    - name: p80\n      port: 80\n      targetPort: 8080\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-1\n  \
             namespace: {ns}\n  labels:\n    kubernetes.io/service-name: {svc}\naddressType: IPv4\n\
             ports:\n  - name: p80\n    port: 8080\nendpoints:\n",
            ip(96, i)
        );
        for j in 0..ENDPOINTS {
            let k = i * ENDPOINTS + j;
            let _ = write!(
                out,
                "  - addresses: [\"{}\"]\n    nodeName: node{}\n",
                ip(128, k),
                k % NODES + 1
            );
        }
        out.push_str("---\n");
    }
    out
}

fn options() -> lower::Options {
    lower::Options {
        node: Some("node1".into()),
        settings: lower::Settings {
            service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
            ..Default::default()
        },
    }
}

fn stages(c: &mut Criterion) {
    let files = vec![SourceFile::new("cluster.yaml", cluster_yaml())];
    let loaded = front::load(&files);
    let converted = kinds::convert(&loaded);
    assert!(converted.diagnostics.is_empty());
    let cluster = converted.cluster;
    let ruleset = lower::lower(&cluster, &options()).unwrap();

    let mut group = c.benchmark_group("1k-services-x10");
    group.sample_size(10);
    group.bench_function("yaml-events (floor)", |b| {
        b.iter(|| {
            let mut events = 0usize;
            for event in saphyr_parser::Parser::new_from_str(&files[0].text) {
                std::hint::black_box(event.expect("generated YAML parses"));
                events += 1;
            }
            events
        })
    });
    group.bench_function("parse+load", |b| b.iter(|| front::load(&files)));
    // Parsing every field once into the model (was `validate` then
    // `model-build`, each parsing the same fields).
    group.bench_function("convert", |b| b.iter(|| kinds::convert(&loaded)));
    group.bench_function("lower", |b| {
        b.iter_batched(
            options,
            |o| lower::lower(&cluster, &o),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("emit-nft", |b| b.iter(|| back::emit(Format::Nft, &ruleset)));
    group.bench_function("emit-iptables", |b| {
        b.iter(|| back::emit(Format::Iptables, &ruleset))
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
