//! Every good fixture through every back end, snapshotted. Read the diff of
//! a changed snapshot like code before accepting it. A fixture may carry the
//! `knc compile` arguments it is compiled with in an `args` file (see
//! `common::fixture_ruleset`), so flags get snapshots of their own.

mod common;

use knc_compiler::back::{self, Format};
use knc_compiler::ir::{self, Family};

#[test]
fn fixtures_through_every_back_end() {
    let dirs = common::compile_fixture_dirs();
    assert!(
        dirs.len() >= 12,
        "expected at least 12 fixtures, found {}",
        dirs.len()
    );
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let ruleset = common::fixture_ruleset(&dir);
        if let Err(violations) = ir::validate(&ruleset) {
            panic!("fixture {name}: the IR breaks its invariants: {violations:#?}");
        }
        common::in_snapshot_dir(|| {
            insta::assert_snapshot!(format!("{name}.ir"), back::emit(Format::Ir, &ruleset));
            insta::assert_snapshot!(format!("{name}.nft"), back::emit(Format::Nft, &ruleset));
            insta::assert_snapshot!(
                format!("{name}.iptables"),
                back::emit(Format::Iptables, &ruleset)
            );
            if ruleset.services.iter().any(|s| s.family == Family::Ipv6) {
                insta::assert_snapshot!(
                    format!("{name}.ip6tables"),
                    back::emit(Format::Ip6tables, &ruleset)
                );
            }
        });
    }
}

/// The equivalent of `cargo insta test --unreferenced=reject`: every stored
/// snapshot belongs to a fixture that still exists, so deleting a fixture
/// cannot leave a stale snapshot behind.
#[test]
fn every_snapshot_belongs_to_a_fixture() {
    let fixtures = common::root().join("fixtures");
    let formats = [".ir.snap", ".nft.snap", ".iptables.snap", ".ip6tables.snap"];
    for entry in std::fs::read_dir(common::root().join("snapshots")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
            continue; // being reviewed right now (cargo insta)
        }
        let report = name
            .strip_prefix("diagnostics@")
            .or_else(|| name.strip_prefix("lint@"))
            .or_else(|| name.strip_prefix("lint-json@"))
            .or_else(|| name.strip_prefix("lint-sarif@"));
        let review = name
            .strip_prefix("diff@")
            .or_else(|| name.strip_prefix("explain@"));
        let fixture = if let Some(case) = report {
            case.strip_suffix(".snap")
        } else if let Some(case) = review {
            [".text.snap", ".markdown.snap", ".json.snap"]
                .iter()
                .find_map(|f| case.strip_suffix(f))
        } else {
            formats.iter().find_map(|f| name.strip_suffix(f))
        };
        let fixture = fixture.unwrap_or_else(|| panic!("snapshot {name} has an unknown form"));
        assert!(
            fixtures.join(fixture).is_dir(),
            "snapshot {name} belongs to no fixture"
        );
    }
}
