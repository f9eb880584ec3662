//! `knc compile` and `knc lint` agree: what lowering decides (a frontend
//! two Services claim, a Service compiled to nothing) is what lint reports,
//! because lint reads lowering's decisions instead of deciding again.

use knc_compiler::compile::{compile, NodeChoice, Settings};
use knc_compiler::front::{Code, SourceFile};
use knc_compiler::ir::FrontendKind;

fn inputs(text: &str) -> Vec<SourceFile> {
    vec![SourceFile::new("in.yaml", text)]
}

fn service(name: &str, spec: &str) -> String {
    format!("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

/// Regression: `203.0.113.5` and `203.000.113.005` are one address.
/// Compile kept it for the first Service only, and lint, comparing raw
/// strings, said nothing.
#[test]
fn an_address_written_two_ways_is_contested() {
    let text = service(
        "a",
        "  clusterIP: 10.96.0.1\n  externalIPs: [203.0.113.5]\n  ports: [{port: 80}]\n",
    ) + &service(
        "b",
        "  clusterIP: 10.96.0.2\n  externalIPs: [203.000.113.005]\n  ports: [{port: 80}]\n",
    );
    let files = inputs(&text);
    let ruleset = compile(&files, vec![], &Settings::default(), &NodeChoice::Agnostic)
        .expect("valid")
        .into_single();
    let external = |name: &str| {
        ruleset
            .services
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| &s.frontends)
            .filter(|f| f.kind == FrontendKind::ExternalIp)
            .count()
    };
    assert_eq!(
        (external("a"), external("b")),
        (1, 0),
        "a keeps the address"
    );

    let lint = knc_compiler::lint(&files);
    let contested: Vec<_> = lint
        .iter()
        .filter(|d| d.code == Code::ContestedAddress)
        .collect();
    assert_eq!(contested.len(), 1, "{lint:#?}");
    let d = contested[0];
    assert_eq!(
        d.message,
        "Service `default/b` claims 203.0.113.5:80/TCP, which Service `default/a` claims too"
    );
    assert!(d
        .help
        .as_deref()
        .unwrap()
        .contains("compiles it for Service `default/a`"));
    assert_eq!(d.position().as_deref(), Some("in.yaml:14:9"), "at b's name");
}

/// Regression: a Service without a ClusterIP (as kept in Git) gets no rule
/// from compile, as kube-proxy skips it; lint said every connection would
/// be refused. Now lint says it is not compiled, and nothing else.
#[test]
fn a_service_without_cluster_ip_is_not_compiled_and_lint_says_so() {
    let text = service(
        "git",
        "  type: NodePort\n  externalIPs: [203.0.113.9]\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    let files = inputs(&text);
    let ruleset = compile(&files, vec![], &Settings::default(), &NodeChoice::Agnostic)
        .expect("valid")
        .into_single();
    assert!(ruleset.services.is_empty(), "{:#?}", ruleset.services);

    let lint = knc_compiler::lint(&files);
    let codes: Vec<Code> = lint.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec![Code::UnallocatedClusterIp], "{lint:#?}");
    assert_eq!(
        lint[0].message,
        "Service `default/git` has no clusterIP (not yet allocated): knc compiles nothing for it"
    );
    assert!(!lint[0].message.contains("refused"));
}
