#!/usr/bin/env bash
# usage: bench/load_time.sh [SIZES...]   (default: 1000 10000)
#
# Loads knc's nft output and kube-proxy's nftables layout for N ClusterIP
# Services x 2 endpoints into fresh network namespaces (knc-bench-*), side by
# side in one run, and prints load and atomic-replace times. Needs root, nft,
# ip, python3 and a release build (`cargo build --release`). Touches only the
# namespaces it creates, and deletes them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-1000 10000}")
[ $# -gt 0 ] || sizes=(1000 10000)
layout=../shared/bench/kube_proxy_layout.py
knc=target/release/knc
[ -x "$knc" ] || cargo build --release -q
work=$(mktemp -d)
ns=knc-bench-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

now() { date +%s.%N; }
# time_load FILE: seconds taken by `nft -f FILE` inside the namespace.
time_load() {
  local t0 t1
  t0=$(now); ip netns exec "$ns" nft -f "$1"; t1=$(now)
  echo "$t1 - $t0" | bc -l | xargs printf '%.3f'
}
fresh_ns() { ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; }

printf '%-10s %-12s %10s %10s %12s\n' services layout load_s replace_s ruleset_kib
for n in "${sizes[@]}"; do
  python3 bench/gen_cluster.py "$n" 2 > "$work/cluster.yaml"
  "$knc" compile "$work/cluster.yaml" --node node1 --service-cidr 10.96.0.0/12 -o "$work/knc.nft"
  python3 "$layout" "$n" 2 > "$work/kp.nft"
  for which in knc kp; do
    file="$work/$which.nft"
    fresh_ns
    load=$(time_load "$file")
    replace=$(time_load "$file")
    size=$(( $(stat -c %s "$file") / 1024 ))
    name=$([ "$which" = knc ] && echo knc || echo kube-proxy)
    printf '%-10s %-12s %10s %10s %12s\n' "$n" "$name" "$load" "$replace" "$size"
  done
done
