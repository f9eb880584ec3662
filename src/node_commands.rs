//! `knc apply`, `knc reconcile`, `knc cleanup`: argument wiring for the
//! runtime crate, and the one summary line `apply` ends with.

use std::time::Instant;

use knc_compiler::lower::ProxyMode;
use knc_runtime::node::{self, Cleanup, Node, Target};
use knc_runtime::reconcile::{self, Config};
use knc_runtime::state::{Backend, StateError};

use crate::cli::{ApplyArgs, BackendArg, CleanupArgs, CleanupBackend, NodeArgs, ReconcileArgs};
use crate::outcome::{print_diagnostics, print_output, Outcome};

fn backend(args: &NodeArgs) -> Backend {
    match args.backend {
        BackendArg::Nft => Backend::Nft,
        BackendArg::Iptables => Backend::Iptables,
    }
}

fn target(args: &NodeArgs) -> Target {
    let mode = match args.backend {
        BackendArg::Nft => ProxyMode::Nftables,
        BackendArg::Iptables => ProxyMode::Iptables,
    };
    Target {
        paths: args.paths.clone(),
        settings: args.options.settings.settings(mode),
        node: args.options.node.clone(),
    }
}

fn locked(error: StateError) -> Outcome {
    Outcome::Refused(error.to_string())
}

pub fn apply(args: &ApplyArgs) -> Outcome {
    let start = Instant::now();
    let target = target(&args.node);
    let mut node = if args.dry_run {
        Node::read_only(&args.node.state_dir, backend(&args.node))
    } else {
        match Node::open(&args.node.state_dir, "knc apply", backend(&args.node)) {
            Ok(node) => node,
            Err(e) => return locked(e),
        }
    };
    let compiled = match target.compile() {
        Ok(compiled) => compiled,
        Err(failure) => return failure.into(),
    };
    print_diagnostics(&compiled.warnings);
    let ruleset = compiled.into_single();
    let compiled_at = start.elapsed();
    let synced = match node.sync(&ruleset, args.dry_run) {
        Ok(synced) => synced,
        Err(e) => {
            return Outcome::Refused(format!(
                "the node refused the transaction; the previous ruleset stays:\n{e}"
            ))
        }
    };
    if let Some(drift) = &synced.drift {
        eprintln!(
            "knc's live rules differed from the last apply ({}); replacing them whole",
            drift.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        );
    }
    let verb = if args.dry_run {
        if let Outcome::Refused(e) = print_output(&synced.transaction) {
            return Outcome::Refused(e);
        }
        "dry run, nothing applied: would apply"
    } else {
        let deleted = Node::clean_conntrack(synced.previous.as_ref(), &ruleset);
        for error in &deleted.errors {
            eprintln!("warning: conntrack cleanup: {error}");
        }
        if deleted.calls > 0 {
            eprintln!(
                "conntrack: {} stale entries deleted ({} filters, {} ms)",
                deleted.entries,
                deleted.calls,
                deleted.took.as_millis()
            );
        }
        "applied"
    };
    let took = start.elapsed();
    let kernel = synced.kernel_time;
    let diff = took.saturating_sub(compiled_at).saturating_sub(kernel);
    eprintln!(
        "{verb} {} Service ports for node {} ({}): {}, {} commands, in {} ms \
         (read+compile {} ms, state+diff {} ms, kernel {} ms)",
        ruleset.services.len(),
        target.node,
        node.backend.as_str(),
        synced.change.as_str(),
        synced.commands,
        took.as_millis(),
        compiled_at.as_millis(),
        diff.as_millis(),
        kernel.as_millis()
    );
    Outcome::Success
}

pub fn reconcile(args: &ReconcileArgs, verbose: bool) -> Outcome {
    init_logging(verbose);
    let node = match Node::open(&args.node.state_dir, "knc reconcile", backend(&args.node)) {
        Ok(node) => node,
        Err(e) => return locked(e),
    };
    let config = Config {
        target: target(&args.node),
        interval: args.interval,
        once: args.once,
        metrics_addr: args.metrics_addr,
        debounce: std::time::Duration::from_millis(5),
    };
    Outcome::Status(reconcile::run(node, config, &print_diagnostics))
}

pub fn cleanup(args: &CleanupArgs) -> Outcome {
    let what = Cleanup {
        nft: matches!(args.backend, CleanupBackend::Nft | CleanupBackend::All),
        iptables: matches!(args.backend, CleanupBackend::Iptables | CleanupBackend::All),
    };
    match node::cleanup(&args.state_dir, what) {
        Ok(done) => {
            for line in done {
                eprintln!("{line}");
            }
            Outcome::Success
        }
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// Logs to stderr; `-v` adds every round, `RUST_LOG` overrides.
fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
