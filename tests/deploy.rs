//! The files in `deploy/` are checked here, since nothing else would notice
//! a typo in them before an operator does: every Kubernetes document must
//! deserialize into the API types with no unknown field, and the settings
//! knc's runtime depends on (host network, capabilities, probes, the xtables
//! lock) must be present.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, ServiceAccount};
use knc_compiler::front::yaml::parse_file;
use knc_compiler::front::SourceFile;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Deserialize `value` as `T`, failing on any field `T` does not know.
fn strict<T: DeserializeOwned>(value: &Value, what: &str) -> T {
    let mut ignored = Vec::new();
    let object = serde_ignored::deserialize(value, |path| ignored.push(field_path(&path)))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        ignored.is_empty(),
        "{what}: unknown fields:\n  {}",
        ignored.join("\n  ")
    );
    object
}

/// serde_ignored's path as written in the YAML (`spec.containers[0].imag`).
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    daemon_sets: Vec<DaemonSet>,
}

/// Every document of every `deploy/kubernetes/*.yaml`, parsed with knc's own
/// (saphyr-based) YAML front end.
fn load_kubernetes() -> Objects {
    let dir = deploy_dir().join("kubernetes");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no YAML files in {}", dir.display());

    let mut objects = Objects::default();
    for path in paths {
        let name = path.display().to_string();
        let parsed = parse_file(&SourceFile::new(name.clone(), read(&path)));
        let problems: Vec<String> = parsed
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert!(problems.is_empty(), "{name}: YAML problems: {problems:#?}");
        assert!(!parsed.docs.is_empty(), "{name}: no documents");
        for (i, doc) in parsed.docs.iter().enumerate() {
            let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("");
            let what = format!("{name} document {} ({kind})", i + 1);
            match kind {
                "Namespace" => objects.namespaces.push(strict(&doc.value, &what)),
                "ServiceAccount" => objects.service_accounts.push(strict(&doc.value, &what)),
                "DaemonSet" => objects.daemon_sets.push(strict(&doc.value, &what)),
                _ => panic!("{what}: unexpected kind {kind:?}"),
            }
        }
    }
    objects
}

fn knc_pod() -> PodSpec {
    let objects = load_kubernetes();
    let names = |it: Vec<Option<String>>| it.into_iter().flatten().collect::<Vec<_>>();
    assert_eq!(
        names(
            objects
                .namespaces
                .into_iter()
                .map(|n| n.metadata.name)
                .collect()
        ),
        ["knc-system"]
    );
    assert_eq!(
        names(
            objects
                .service_accounts
                .iter()
                .map(|s| s.metadata.name.clone())
                .collect()
        ),
        ["knc"]
    );
    let [ds] = <[DaemonSet; 1]>::try_from(objects.daemon_sets).expect("exactly one DaemonSet");
    assert_eq!(ds.metadata.name.as_deref(), Some("knc"));
    assert_eq!(ds.metadata.namespace.as_deref(), Some("knc-system"));
    let spec = ds.spec.expect("DaemonSet spec");
    let strategy = spec.update_strategy.expect("updateStrategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    spec.template.spec.expect("pod spec")
}

fn container<'a>(pod: &'a PodSpec, name: &str) -> &'a Container {
    pod.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} container"))
}

#[test]
fn kubernetes_manifests_are_valid_and_keep_what_knc_needs() {
    let pod = knc_pod();
    assert_eq!(pod.host_network, Some(true), "hostNetwork");
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    let tolerations = pod.tolerations.as_deref().unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none()),
        "a toleration `operator: Exists` for every taint"
    );

    let knc = container(&pod, "knc");
    let args = knc.args.as_deref().unwrap_or_default();
    assert_eq!(
        args.first().map(String::as_str),
        Some("reconcile"),
        "args: {args:?}"
    );
    let node = args
        .iter()
        .position(|a| a == "--node")
        .expect("--node in args");
    assert_eq!(args.get(node + 1).map(String::as_str), Some("$(NODE_NAME)"));

    let security = knc.security_context.as_ref().expect("knc securityContext");
    assert_eq!(security.privileged, Some(false));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let caps = security.capabilities.as_ref().expect("capabilities");
    let added = caps.add.as_deref().unwrap_or_default();
    assert!(
        added.iter().any(|c| c == "NET_ADMIN"),
        "NET_ADMIN added: {added:?}"
    );
    assert!(
        added.iter().all(|c| c == "NET_ADMIN" || c == "NET_RAW"),
        "only NET_ADMIN (and NET_RAW) added: {added:?}"
    );
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));

    for (probe, name) in [
        (&knc.liveness_probe, "liveness"),
        (&knc.readiness_probe, "readiness"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        let path = get.and_then(|g| g.path.as_deref());
        assert_eq!(path, Some("/healthz"), "{name} probe");
    }

    let mounts = knc.volume_mounts.as_deref().unwrap_or_default();
    assert!(
        mounts.iter().any(|m| m.mount_path == "/run/xtables.lock"),
        "/run/xtables.lock mounted"
    );
    let git = mounts
        .iter()
        .find(|m| m.mount_path == "/git")
        .expect("/git mounted");
    assert_eq!(git.read_only, Some(true), "knc only reads the checkout");

    let sync = container(&pod, "git-sync");
    let sync_args = sync.args.as_deref().unwrap_or_default();
    for arg in ["--root=/git", "--link=manifests"] {
        assert!(
            sync_args.iter().any(|a| a == arg),
            "git-sync {arg}: {sync_args:?}"
        );
    }
    assert!(
        args.iter().any(|a| a.starts_with("/git/manifests")),
        "knc reads the link"
    );
}

#[test]
fn systemd_unit_runs_knc_reconcile_confined() {
    let unit = read(&deploy_dir().join("systemd/knc-reconcile.service"));
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart= line");
    assert!(exec.contains("knc reconcile "), "ExecStart={exec}");
    assert!(exec.contains("--node "), "ExecStart={exec}");
    assert!(
        exec.contains("--state-dir /var/lib/knc"),
        "ExecStart={exec}"
    );
    for line in [
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
        "Restart=always",
        "StateDirectory=knc",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing `{line}`");
    }
}

#[test]
fn dockerfile_installs_the_tools_knc_drives() {
    let dockerfile = read(&deploy_dir().join("docker/Dockerfile"));
    let install = dockerfile
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("an apt-get install line");
    let packages: Vec<&str> = install.split_whitespace().collect();
    for package in ["nftables", "iptables", "conntrack"] {
        assert!(
            packages.contains(&package),
            "{package} not installed: {install}"
        );
    }
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/knc"]"#));
}
