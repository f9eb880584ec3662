#!/usr/bin/env python3
"""usage: sudo python3 bench/latency.py --target target/release [--services N] [--changes K]

End-to-end latency of `knc reconcile`: one Service's endpoints change in a
running node with N ClusterIP Services x 2 endpoints, and the time from the
atomic rename that makes the change to the commit of the kernel transaction
is measured, K times (median), for two layouts of the manifests:

* `files`: one file per object (as a Git repository holds them); the
  changed EndpointSlice's file is replaced by a rename;
* `dump`: one `kubectl get -o yaml`-style file of every object; the whole
  file is replaced by a rename.

The commit is seen with `nft monitor` (the line adding the new endpoint's
element). knc's own log line for each round splits its time into read,
parse (the changed documents), model+lower, diff, kernel (the commit) and
record (saved after the commit). Works in a network
namespace of its own (knc-bench-lat-<pid>), deleted on exit; ends only the
processes it starts."""
import argparse
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NS = f"knc-bench-lat-{os.getpid()}"


def gen(n, e):
    return subprocess.run([sys.executable, f"{HERE}/gen_cluster.py", str(n), str(e), "--nodes", "3"],
                          check=True, capture_output=True, text=True).stdout


def replace(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    start = time.perf_counter()
    os.rename(tmp, path)
    return start


def reader(stream, sink):
    for line in iter(stream.readline, ""):
        sink.put((time.perf_counter(), line))


def wait_for(q, needle, timeout):
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        try:
            t, line = q.get(timeout=left)
        except queue.Empty:
            return None
        if needle in line:
            return t


def run_layout(knc, layout, n, changes, work):
    docs = gen(n, 2).strip().split("\n---\n")
    target = n // 2
    slice_index = next(i for i, d in enumerate(docs)
                       if "kind: EndpointSlice" in d and f"name: svc{target}-1\n" in d)
    old_address = re.search(r'addresses: \["([0-9.]+)"\]', docs[slice_index]).group(1)
    root = os.path.join(work, layout)
    os.makedirs(root)
    if layout == "files":
        for i, d in enumerate(docs):
            with open(os.path.join(root, f"{i:06}.yaml"), "w") as f:
                f.write(d + "\n")
        changed_path = os.path.join(root, f"{slice_index:06}.yaml")
    else:
        changed_path = os.path.join(root, "cluster.yaml")
        with open(changed_path, "w") as f:
            f.write("\n---\n".join(docs) + "\n")
    state = os.path.join(work, f"state-{layout}")
    log = open(os.path.join(work, f"reconcile-{layout}.log"), "w+")
    knc_proc = subprocess.Popen(["ip", "netns", "exec", NS, knc, "reconcile", root, "--node", "node1",
                                 "--state-dir", state, "--interval", "60s"],
                                stdout=subprocess.DEVNULL, stderr=log)
    monitor = subprocess.Popen(["ip", "netns", "exec", NS, "stdbuf", "-oL", "nft", "monitor"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = queue.Queue()
    threading.Thread(target=reader, args=(monitor.stdout, events), daemon=True).start()
    latencies = []
    try:
        if wait_for(events, "add element ip knc", 300) is None:
            raise SystemExit(f"{layout}: the first sync never came")
        time.sleep(1.0)
        previous = old_address
        for i in range(changes):
            address = f"10.250.{i // 250}.{i % 250 + 1}"
            doc = docs[slice_index].replace(f'["{previous}"]', f'["{address}"]', 1)
            docs[slice_index] = doc
            previous = address
            while not events.empty():
                events.get()
            if layout == "files":
                start = replace(changed_path, doc + "\n")
            else:
                start = replace(changed_path, "\n---\n".join(docs) + "\n")
            seen = wait_for(events, address, 30)
            if seen is None:
                raise SystemExit(f"{layout}: change {i} never reached the kernel")
            latencies.append(seen - start)
            time.sleep(0.3)
    finally:
        monitor.send_signal(signal.SIGTERM)
        knc_proc.send_signal(signal.SIGTERM)
        for p in (monitor, knc_proc):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    log.seek(0)
    phases = {k: [] for k in ("read", "parse", "model+lower", "diff", "kernel", "record")}
    for line in log.read().splitlines()[-changes:]:
        for k in phases:
            m = re.search(rf"{re.escape(k)} (\d+) ms", line)
            if m:
                phases[k].append(int(m.group(1)))
    return latencies, {k: statistics.median(v) if v else None for k, v in phases.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="target/release")
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--changes", type=int, default=20)
    args = p.parse_args()
    knc = os.path.abspath(os.path.join(args.target, "knc"))
    subprocess.run(["ip", "netns", "add", NS], check=True)
    work = tempfile.mkdtemp(prefix="knc-bench-lat-")
    rows = []
    try:
        subprocess.run(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"], check=True)
        for layout in ("files", "dump"):
            latencies, phases = run_layout(knc, layout, args.services, args.changes, work)
            ms = sorted(t * 1000 for t in latencies)
            split = ", ".join(f"{k} {v:.0f}" for k, v in phases.items() if v is not None)
            rows.append((layout, statistics.median(ms), ms[0], ms[-1], split))
    finally:
        subprocess.run(["ip", "netns", "del", NS])
        shutil.rmtree(work, ignore_errors=True)
    print(f"| layout ({args.services} x 2) | median ms | min | max | knc's split, median ms |")
    print("|---|---:|---:|---:|---|")
    for layout, med, lo, hi, split in rows:
        print(f"| {layout} | {med:.0f} | {lo:.0f} | {hi:.0f} | {split} |")


if __name__ == "__main__":
    main()
