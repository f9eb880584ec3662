//! Real-kernel tests: what `knc compile` emits is loaded into a node's
//! network namespace and real packets are sent through it.
//!
//! Run with `cargo test --test kernel` (as root, with `ip`, `nft` and
//! `iptables-restore`). Each test builds its own namespaces
//! (`knc-kt<pid>-<test>-…`, see `tests/kernel/harness.rs` for the topology)
//! and deletes them afterwards, also when it fails. Without root or the
//! tools the tests print a loud `SKIPPED` line; with `CI` set they fail
//! instead.
//!
//! * `harness_selftest`: hand-written nft rulesets (DNAT, hairpin
//!   masquerade, NodePort-style DNAT, reject) prove the topology, the pod
//!   servers and the probes, independently of knc; and a wrong prediction
//!   fails a probe.
//!
//! Every probe is also a test of `knc explain` (`predict.rs`): its attempts
//! are checked against `knc explain --output json` for the inputs node1's
//! rules came from (who may answer, the source the pod sees, refused or
//! dropped), and the probe panics when they disagree. The harness knows
//! what node1 runs when it loads its own compile; tests that change the
//! rules otherwise (`knc apply`, `knc reconcile`, an incremental
//! transaction) say so with `Topology::rules_are`. With
//! `KNC_PREDICT_TALLY=FILE` each probe run appends a line to FILE.
//! * `services`: the issue #2 list, through `knc compile` output.
//! * `semantics`: further design §3 behaviour (traffic policies, session
//!   affinity, terminating fallback, LoadBalancer source ranges).
//! * `matrix`: source class × destination kind × traffic policy, the
//!   kube-proxy table of who answers and whether the source is masqueraded.
//! * `selection`: topology hints, the per-set terminating fallback, source
//!   ranges seen from node1 and from pods.
//! * `consistent`: selection by source-address hash from 60 client
//!   addresses: one backend per client, as `knc explain` names it on
//!   either node, and only a removed backend's clients move.
//! * `gateway`: a TCPRoute's backendRefs weighted 90/10 and 1/2/7 (one
//!   ref of weight 0, one split over two endpoints) and a UDPRoute's
//!   1/2/7 on a Gateway address: 600 connections land on each backend
//!   within a binomial 4.5σ band.
//! * `ipv6`: IPv6 ClusterIP, NodePort, reject/drop and hairpin, and a
//!   dual-stack Service whose families each reach their own endpoints.
//! * `apply`: the node runtime, `knc apply` / `knc cleanup` run inside
//!   node1: dry run, full / incremental / unchanged applies, cleanup that
//!   spares foreign rules, kill -9 mid-apply, iptables jumps exactly once,
//!   a refused transaction keeping the previous ruleset.
//! * `reconcile`: `knc reconcile` running in node1 on a git-sync style
//!   symlinked manifests directory: no dropped connection under churn,
//!   drift repaired and counted, invalid input kept out, the state lock,
//!   UDP conntrack cleanup, health-check NodePorts (not `fn(Backend)`: nft
//!   only).
//!
//! Every behavioural test is a `fn(Backend)` run twice by
//! [`backend_tests!`]: `<module>::<name>::nft` loads `knc compile` output
//! with `nft -f`, `<module>::<name>::iptables` loads `--format iptables`
//! output with `iptables-restore --noflush` (and, in dual-stack
//! topologies, `--format ip6tables` output with `ip6tables-restore
//! --noflush`), with the same expectations.
//! `cargo test --test kernel iptables` runs one back end.

#[path = "kernel/affinity.rs"]
mod affinity;
#[path = "kernel/apply.rs"]
mod apply;
#[path = "kernel/consistent.rs"]
mod consistent;
#[path = "kernel/fixtures_load.rs"]
mod fixtures_load;
#[path = "kernel/gateway.rs"]
mod gateway;
#[path = "kernel/harness.rs"]
mod harness;
#[path = "kernel/harness_selftest.rs"]
mod harness_selftest;
#[path = "kernel/incremental.rs"]
mod incremental;
#[path = "kernel/ipv6.rs"]
mod ipv6;
#[path = "kernel/manifests.rs"]
mod manifests;
#[path = "kernel/matrix.rs"]
mod matrix;
#[path = "kernel/netns.rs"]
mod netns;
#[path = "kernel/pods.rs"]
mod pods;
#[path = "kernel/predict.rs"]
mod predict;
#[path = "kernel/probe.rs"]
mod probe;
#[path = "kernel/reconcile.rs"]
mod reconcile;
#[path = "kernel/selection.rs"]
mod selection;
#[path = "kernel/semantics.rs"]
mod semantics;
#[path = "kernel/services.rs"]
mod services;

/// Returns from the test (after a loud `SKIPPED`) when kernel tests cannot
/// run here; panics instead when `CI` is set.
#[macro_export]
macro_rules! require_kernel {
    ($test:expr) => {
        if !$crate::netns::available($test) {
            return;
        }
    };
}

/// Generates `#[test]`s `$name::nft` and `$name::iptables` calling the
/// test body `fn $name(Backend)` with each back end. Attributes listed
/// after `nft:` or `iptables:` go on that one test only, e.g.
/// `backend_tests!(name, nft: [#[ignore = "why"]], iptables: []);`.
#[macro_export]
macro_rules! backend_tests {
    ($name:ident) => {
        $crate::backend_tests!($name, nft: [], iptables: []);
    };
    ($name:ident, nft: [$(#[$nft:meta])*], iptables: [$(#[$ipt:meta])*]) => {
        mod $name {
            use $crate::harness::Backend;

            #[test]
            $(#[$nft])*
            fn nft() {
                super::$name(Backend::Nft);
            }

            #[test]
            $(#[$ipt])*
            fn iptables() {
                super::$name(Backend::Iptables);
            }
        }
    };
}
