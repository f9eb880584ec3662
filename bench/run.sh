#!/usr/bin/env bash
# usage: sudo bench/run.sh [--quick]
#
# Every benchmark of BENCHMARKS.md in one run: compile time and peak RSS next
# to the YAML-parse floor, nft load / atomic replace next to kube-proxy's
# nftables layout, new-connection time through the node for both back ends,
# the incremental update of one changed Service, and the latency of one
# change under a running `knc reconcile` (bench/latency.py). Prints Markdown
# tables and writes bench/out/load_time.svg. --quick uses small sizes.
#
# Needs root (network namespaces), python3 and cargo; installs GNU time,
# nftables, iptables and iproute2 if missing. Touches only the knc-bench-* namespaces it
# creates, and deletes them on exit; ends only the processes it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v nft >/dev/null || need+=(nftables)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q --bin knc
cargo build --release -q -p knc-compiler --example parse_only
exec python3 bench/run.py --target "$CARGO_TARGET_DIR/release" "$@"
