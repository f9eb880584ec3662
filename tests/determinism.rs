//! Output is a pure function of the inputs' content: shuffling the order of
//! files and of documents inside them changes nothing, byte for byte.

mod common;

use knc_compiler::back::{self, Format};
use knc_compiler::front::SourceFile;
use knc_compiler::lower;

use common::Lcg;

fn compile(files: &[SourceFile], format: Format) -> String {
    let analysis = knc_compiler::analyse(files);
    let cluster = analysis.cluster.expect("valid fixtures");
    let options = common::fixture_options(&cluster);
    back::emit(format, &lower::lower(&cluster, &options).expect("lowers"))
}

/// Splits YAML files into one file per document, so shuffling reorders
/// documents as well as files. JSON files stay whole.
fn documents(files: &[SourceFile]) -> Vec<SourceFile> {
    let mut out = Vec::new();
    for file in files {
        if file.name.ends_with(".json") {
            out.push(file.clone());
            continue;
        }
        for (i, doc) in file.text.split("\n---\n").enumerate() {
            out.push(SourceFile::new(
                format!("{}#{i}", file.name),
                doc.to_string(),
            ));
        }
    }
    out
}

#[test]
fn shuffled_inputs_give_identical_output() {
    // Every good fixture at once: one cluster with many Services.
    let mut all = Vec::new();
    for dir in common::compile_fixture_dirs() {
        if common::fixture_args(&dir).is_some() {
            continue; // the same inputs as another fixture, other flags
        }
        // Fixtures repeat the same Nodes, some Services and KubeProxyConfigurations;
        // keep one copy.
        for file in common::fixture_sources(&dir) {
            let copy_of_another = file.name.contains("masquerade-all")
                || file.name.contains("nodeport-addresses")
                || file.name.contains("list-json")
                || file.name.contains("nodeport-ipv6-")
                || file.name.contains("detect-local-")
                || (file.name.contains("session-affinity-every-address")
                    && file.name.ends_with("kube-proxy.yaml"))
                || (file.name.ends_with("nodes.yaml") && !file.name.contains("clusterip-basic"));
            if !copy_of_another {
                all.push(file);
            }
        }
    }
    let pieces = documents(&all);
    assert!(pieces.len() > 20, "enough documents to shuffle");
    let expected_nft = compile(&pieces, Format::Nft);
    let expected_ir = compile(&pieces, Format::Ir);
    assert!(
        expected_nft.contains("default/web:http"),
        "the services made it through"
    );
    let mut rng = Lcg(0x6b6e63);
    for _ in 0..20 {
        let mut shuffled = pieces.clone();
        rng.shuffle(&mut shuffled);
        assert_eq!(compile(&shuffled, Format::Nft), expected_nft);
        assert_eq!(compile(&shuffled, Format::Ir), expected_ir);
    }
}
