//! `kubectl knc` (deploy/kubectl/kubectl-knc) run with a fake `kubectl`
//! first on PATH, which prints a fixture's manifests as `kubectl get -o
//! yaml` would, and the real built `knc`: the plugin must print exactly
//! what `knc` prints for the same objects, pass every argument through
//! untouched, and read ServiceCIDRs and the Gateway API's kinds only where
//! the API serves them.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The fake: answers the `get`s the plugin makes from `$FAKE_FIXTURE`
/// (the ServiceCIDRs from its `service-cidrs.yaml`, Gateways from
/// `gateway.yaml`, TCPRoutes and UDPRoutes from `routes.yaml`; an API
/// server without the kind when there is no such file), logs its
/// arguments, and fails as `$FAKE_FAIL` says (`get`: the main get;
/// `forbidden`: the ServiceCIDRs).
const FAKE_KUBECTL: &str = r#"#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_LOG"
served() {
    if [ -f "$1" ]; then
        cat "$1"
    else
        echo 'error: the server doesn'"'"'t have a resource type "'"$2"'"' >&2
        exit 1
    fi
}
case "$*" in
"get services,endpointslices,nodes -A -o yaml")
    if [ "${FAKE_FAIL:-}" = get ]; then
        echo 'error: You must be logged in to the server (Unauthorized)' >&2
        exit 1
    fi
    for f in "$FAKE_FIXTURE"/*.yaml; do
        case "$(basename "$f")" in
        service-cidrs.yaml | gateway.yaml | routes.yaml) continue ;;
        esac
        printf -- '---\n'
        cat "$f"
    done
    ;;
"get gateways.gateway.networking.k8s.io -A -o yaml")
    served "$FAKE_FIXTURE/gateway.yaml" gateways.gateway.networking.k8s.io
    ;;
"get tcproutes.gateway.networking.k8s.io -A -o yaml")
    # Both kinds of route are in one file: one get prints them all.
    served "$FAKE_FIXTURE/routes.yaml" tcproutes.gateway.networking.k8s.io
    ;;
"get udproutes.gateway.networking.k8s.io -A -o yaml")
    if [ -f "$FAKE_FIXTURE/routes.yaml" ]; then
        printf 'apiVersion: v1\nkind: List\nitems: []\n'
    else
        served /nonexistent udproutes.gateway.networking.k8s.io
    fi
    ;;
"get servicecidrs -o yaml")
    if [ "${FAKE_FAIL:-}" = forbidden ]; then
        echo 'Error from server (Forbidden): servicecidrs is forbidden' >&2
        exit 1
    fi
    if [ -f "$FAKE_FIXTURE/service-cidrs.yaml" ]; then
        cat "$FAKE_FIXTURE/service-cidrs.yaml"
    else
        echo 'error: the server doesn'"'"'t have a resource type "servicecidrs"' >&2
        exit 1
    fi
    ;;
*)
    echo "fake kubectl: unexpected arguments: $*" >&2
    exit 99
    ;;
esac
"#;

/// A directory holding the fake `kubectl` and its log.
struct FakeCluster {
    dir: tempfile::TempDir,
    fixture: PathBuf,
}

impl FakeCluster {
    fn new(fixture: &str) -> FakeCluster {
        let dir = tempfile::tempdir().unwrap();
        let kubectl = dir.path().join("kubectl");
        std::fs::write(&kubectl, FAKE_KUBECTL).unwrap();
        std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeCluster {
            dir,
            fixture: common::root().join("fixtures").join(fixture),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// Runs `kubectl-knc ARGS` with the fake and the built knc on PATH.
    fn plugin(&self, args: &[&str], fail: Option<&str>) -> Output {
        let knc_dir = Path::new(env!("CARGO_BIN_EXE_knc")).parent().unwrap();
        let path = std::env::join_paths(
            [self.dir.path().to_path_buf(), knc_dir.to_path_buf()]
                .into_iter()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let mut cmd = Command::new(common::root().join("deploy/kubectl/kubectl-knc"));
        cmd.args(args)
            .env("PATH", path)
            .env("FAKE_FIXTURE", &self.fixture)
            .env("FAKE_LOG", self.log())
            .env("TMPDIR", self.dir.path())
            .env_remove("KNC")
            .env_remove("KUBECTL")
            .current_dir(self.dir.path());
        if let Some(fail) = fail {
            cmd.env("FAKE_FAIL", fail);
        }
        cmd.output().expect("the plugin runs")
    }

    /// What the fake prints for the main `get`, for `knc … -` directly.
    fn objects(&self) -> String {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.fixture)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "yaml")
                    && !["service-cidrs.yaml", "gateway.yaml", "routes.yaml"]
                        .iter()
                        .any(|served_apart| p.file_name().unwrap() == *served_apart)
            })
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| format!("---\n{}", std::fs::read_to_string(p).unwrap()))
            .collect()
    }

    /// The files the plugin left behind in its TMPDIR besides the fake's.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "kubectl" && n != "log")
            .collect()
    }
}

/// Runs the built `knc ARGS` from the repository root, `stdin` on its
/// standard input.
fn knc(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_knc"))
        .args(args)
        .current_dir(common::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("knc runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().expect("knc finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the plugin and knc ended alike: status, stdout, stderr.
fn assert_same(plugin: &Output, direct: &Output) {
    assert_eq!(
        plugin.status.code(),
        direct.status.code(),
        "plugin stderr: {}\nknc stderr: {}",
        text(&plugin.stderr),
        text(&direct.stderr)
    );
    assert_eq!(text(&plugin.stdout), text(&direct.stdout));
    assert_eq!(text(&plugin.stderr), text(&direct.stderr));
}

#[test]
fn compile_prints_what_knc_compiles_from_the_fixture() {
    let cluster = FakeCluster::new("etp-local");
    let plugin = cluster.plugin(&["compile", "--node", "node1"], None);
    let direct = knc(&["compile", "fixtures/etp-local", "--node", "node1"], None);
    assert_eq!(direct.status.code(), Some(0), "{}", text(&direct.stderr));
    assert!(text(&direct.stdout).contains("203.0.113.10"));
    assert_same(&plugin, &direct);
    let log = std::fs::read_to_string(cluster.log()).unwrap();
    assert_eq!(
        log,
        "get services,endpointslices,nodes -A -o yaml\n\
         get servicecidrs -o yaml\n\
         get gateways.gateway.networking.k8s.io -A -o yaml\n\
         get tcproutes.gateway.networking.k8s.io -A -o yaml\n\
         get udproutes.gateway.networking.k8s.io -A -o yaml\n"
    );
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

#[test]
fn explain_text_and_json_match_knc_explain() {
    let cluster = FakeCluster::new("etp-local");
    for output in ["text", "json"] {
        let query = [
            "--node",
            "node1",
            "--to",
            "203.0.113.10:80",
            "--from",
            "192.0.2.1",
            "--output",
            output,
        ];
        let plugin = cluster.plugin(&[&["explain"], &query[..]].concat(), None);
        let direct = knc(
            &[&["explain", "fixtures/etp-local"], &query[..]].concat(),
            None,
        );
        assert_eq!(direct.status.code(), Some(0), "{}", text(&direct.stderr));
        assert!(text(&direct.stdout).contains("10.244.1.1"));
        assert_same(&plugin, &direct);
    }
}

#[test]
fn lint_matches_knc_lint_of_the_same_objects() {
    let cluster = FakeCluster::new("suspicious");
    let plugin = cluster.plugin(&["lint"], None);
    let direct = knc(&["lint", "-"], Some(&cluster.objects()));
    assert!(text(&direct.stderr).contains("knc::"), "{direct:?}");
    assert_same(&plugin, &direct);
}

/// ServiceCIDRs are read where the API serves them: an address inside
/// one that no Service has is dropped, as when knc reads the fixture.
#[test]
fn service_cidrs_are_read_when_served() {
    let cluster = FakeCluster::new("service-cidr-object");
    let ruleset = common::fixture_ruleset(&cluster.fixture);
    let cidr = ruleset
        .service_cidrs
        .iter()
        .find(|c| c.to_string() != "10.96.0.0/16")
        .expect("the fixture's own ServiceCIDR");
    let to = format!("{}:80", cidr.hosts().nth(300).unwrap());
    let args = ["--node", "node1", "--to", &to];
    let plugin = cluster.plugin(&[&["explain"], &args[..]].concat(), None);
    let direct = knc(
        &[&["explain", "fixtures/service-cidr-object"], &args[..]].concat(),
        None,
    );
    assert!(
        text(&direct.stdout).contains("dropped: inside a service CIDR"),
        "{}",
        text(&direct.stdout)
    );
    assert_same(&plugin, &direct);
}

/// Gateways and routes are read where the Gateway API is installed: a
/// route's weighted backends are explained as from the fixture.
#[test]
fn gateway_routes_are_read_when_served() {
    let cluster = FakeCluster::new("gateway-weighted");
    for to in ["203.0.113.20:9000", "203.0.113.20:53/udp"] {
        let args = ["--node", "node1", "--to", to, "--output", "json"];
        let plugin = cluster.plugin(&[&["explain"], &args[..]].concat(), None);
        let direct = knc(
            &[&["explain", "fixtures/gateway-weighted"], &args[..]].concat(),
            None,
        );
        assert!(
            text(&direct.stdout).contains("\"kind\": \"gateway\""),
            "{}",
            text(&direct.stdout)
        );
        assert_same(&plugin, &direct);
    }
}

#[test]
fn service_cidrs_forbidden_is_a_warning_not_a_failure() {
    let cluster = FakeCluster::new("etp-local");
    let plugin = cluster.plugin(&["compile", "--node", "node1"], Some("forbidden"));
    let direct = knc(&["compile", "fixtures/etp-local", "--node", "node1"], None);
    assert_eq!(plugin.status.code(), Some(0));
    assert_eq!(text(&plugin.stdout), text(&direct.stdout));
    assert_eq!(
        text(&plugin.stderr),
        "kubectl-knc: warning: ServiceCIDRs not read: Error from server (Forbidden): \
         servicecidrs is forbidden\n"
    );
}

#[test]
fn a_failed_get_stops_before_knc() {
    let cluster = FakeCluster::new("etp-local");
    let plugin = cluster.plugin(&["compile", "--node", "node1"], Some("get"));
    assert_eq!(plugin.status.code(), Some(1));
    assert_eq!(text(&plugin.stdout), "");
    assert!(text(&plugin.stderr).contains("Unauthorized"));
    assert_eq!(cluster.leftovers(), Vec::<String>::new());
}

/// Arguments reach knc as they are: shell syntax in them is data.
#[test]
fn arguments_are_passed_through_untouched() {
    let cluster = FakeCluster::new("etp-local");
    let marker = cluster.dir.path().join("injected");
    let node = format!(
        "node1; touch {0} $(touch {0}) `touch {0}`",
        marker.display()
    );
    let plugin = cluster.plugin(&["compile", "--node", &node], None);
    let direct = knc(&["compile", "fixtures/etp-local", "--node", &node], None);
    assert_eq!(direct.status.code(), Some(2), "{}", text(&direct.stderr));
    assert!(
        text(&direct.stderr).contains(&node),
        "{}",
        text(&direct.stderr)
    );
    assert_same(&plugin, &direct);
    assert!(!marker.exists(), "an argument ran as a command");
}

#[test]
fn usage_errors_are_exit_2_and_help_is_exit_0() {
    let cluster = FakeCluster::new("etp-local");
    let none = cluster.plugin(&[], None);
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).starts_with("usage: kubectl knc explain"));
    let other = cluster.plugin(&["apply", "--node", "node1"], None);
    assert_eq!(other.status.code(), Some(2));
    assert!(text(&other.stderr).contains("`apply` is not one of explain, lint, compile"));
    let help = cluster.plugin(&["--help"], None);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("kubectl knc lint"));
    assert!(!cluster.log().exists(), "kubectl ran for a usage error");
}
