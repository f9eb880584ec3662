//! `knc explain`: one connection through one node's compiled ruleset.

use std::net::SocketAddr;

use knc_compiler::explain::{self, Query};
use knc_compiler::ir::Protocol;
use knc_compiler::lower::{self, ProxyMode};

use crate::cli::ExplainArgs;
use crate::compile_command::{analyse, options};
use crate::outcome::{print_output, Outcome};

pub fn run(args: &ExplainArgs) -> Outcome {
    let (to, protocol) = match parse_target(&args.to) {
        Ok(target) => target,
        Err(message) => return Outcome::Usage(message),
    };
    let mut options = match options(&args.options, ProxyMode::Nftables) {
        Ok(options) => options,
        Err(message) => return Outcome::Usage(message),
    };
    let cluster = match analyse(&args.paths, false) {
        Ok(cluster) => cluster,
        Err(outcome) => return outcome,
    };
    if options.node.is_none() && cluster.nodes.len() == 1 {
        options.node = cluster.nodes.keys().next().cloned();
    }
    let ruleset = match lower::lower(&cluster, &options) {
        Ok(ruleset) => ruleset,
        Err(e) => return Outcome::Usage(e.to_string()),
    };
    let query = Query {
        to: to.ip(),
        port: to.port(),
        protocol,
        from: args.from,
    };
    print_output(&explain::explain(&ruleset, &query))
}

/// `10.96.0.10:80`, `10.96.0.10:53/udp`, `[fd00::1]:80/tcp`.
fn parse_target(text: &str) -> Result<(SocketAddr, Protocol), String> {
    let (address, protocol) = match text.rsplit_once('/') {
        Some((address, protocol)) => (address, protocol),
        None => (text, "tcp"),
    };
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Err(format!("--to protocol `{other}` is not tcp, udp or sctp")),
    };
    let address = address
        .parse()
        .map_err(|_| format!("--to `{text}` is not IP:PORT (IPv6 as [ADDR]:PORT)"))?;
    Ok((address, protocol))
}
