#!/usr/bin/env python3
"""usage: sudo python3 bench/runtime.py --target target/release [--services N]

The node runtime's figures, in one network namespace of its own
(knc-bench-rt-<pid>, deleted on exit), never the machine's:

* `knc apply` of N ClusterIP Services x 2 endpoints, end to end (read,
  compile, check, commit): the first apply (full), and one Service's
  endpoints changed (incremental), medians;
* `knc reconcile`'s CPU time per idle round (nothing changed) at N
  Services, one file and one file per object, from /proc/<pid>/task/*/schedstat
  over about 50 rounds;
* `knc reconcile`'s resident memory at N Services x 10 endpoints;
* one apply that removes 100 UDP backends: conntrack cleanup time.

Prints a Markdown table. Ends only the processes it starts."""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
NS = f"knc-bench-rt-{os.getpid()}"


def sh(*args, ns=True, check=True, **kw):
    cmd = (["ip", "netns", "exec", NS] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def gen(n, e, *extra):
    out = subprocess.run([sys.executable, f"{HERE}/gen_cluster.py", str(n), str(e), *extra],
                         check=True, capture_output=True, text=True).stdout
    return out


def write(dir_, text):
    os.makedirs(dir_, exist_ok=True)
    with open(os.path.join(dir_, "cluster.yaml"), "w") as f:
        f.write(text)
    return dir_


def apply(knc, path, state, *extra):
    start = time.perf_counter()
    out = sh(knc, "apply", path, "--node", "node1", "--state-dir", state, *extra)
    took = time.perf_counter() - start
    summary = out.stderr.strip().splitlines()[-1]
    return took, summary, out.stderr


def cpu_seconds(pid):
    """CPU time of every thread of `pid`, in seconds, to the nanosecond
    (schedstat; /proc/<pid>/stat counts 10 ms ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def rss(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) / 1024
    return values


def metric(port, name):
    code = ("import urllib.request;"
            f"print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics').read().decode())")
    text = sh(sys.executable, "-c", code).stdout
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split()[-1])
    return None


def start_reconcile(knc, path, state, interval="1s", port=10249):
    proc = subprocess.Popen(["ip", "netns", "exec", NS, knc, "reconcile", path, "--node", "node1",
                             "--state-dir", state, "--interval", interval,
                             "--metrics-addr", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if (metric(port, 'knc_syncs_total{result="success"}') or 0) >= 1:
                return proc
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("reconcile did not sync within 300 s")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="target/release")
    p.add_argument("--services", type=int, default=10000)
    args = p.parse_args()
    knc = os.path.abspath(os.path.join(args.target, "knc"))
    n = args.services
    subprocess.run(["ip", "netns", "add", NS], check=True)
    work = tempfile.mkdtemp(prefix="knc-bench-rt-")
    rows = []
    try:
        sh("ip", "link", "set", "lo", "up")
        base = gen(n, 2, "--nodes", "3")
        # One Service's endpoints change: svc<n/2>'s first endpoint moves.
        k = (n // 2) * 2
        old_ep = f'"10.{128 + (k >> 16)}.{(k >> 8) & 255}.{k & 255}"'
        changed = base.replace(f"addresses: [{old_ep}]", 'addresses: ["10.250.0.1"]', 1)
        assert changed != base
        a = write(f"{work}/a", base)
        b = write(f"{work}/b", changed)

        fulls = []
        for i in range(3):
            state = f"{work}/state-full-{i}"
            sh(knc, "cleanup", "--state-dir", state)
            took, summary, _ = apply(knc, a, state)
            assert "full" in summary, summary
            fulls.append(took)
        rows.append((f"apply, first (full), {n} x 2", f"{statistics.median(fulls) * 1000:.0f} ms",
                     summary))
        state = f"{work}/state-full-2"
        incs = []
        for i in range(6):
            took, summary, _ = apply(knc, b if i % 2 == 0 else a, state)
            assert "incremental" in summary, summary
            incs.append(took)
        rows.append((f"apply, one Service changed (incremental), {n} x 2",
                     f"{statistics.median(incs) * 1000:.0f} ms", summary))

        # Idle rounds, one dump file and one file per object.
        docs = base.strip().split("\n---\n")
        files = f"{work}/files"
        os.makedirs(files)
        for i, doc in enumerate(docs):
            with open(f"{files}/{i:06}.yaml", "w") as f:
                f.write(doc + "\n")
        for layout, path in (("one file", a), (f"{len(docs)} files", files)):
            state = f"{work}/state-idle-{len(rows)}"
            sh(knc, "cleanup", "--state-dir", state)
            proc = start_reconcile(knc, path, state, interval="200ms")
            pid = proc.pid  # `ip netns exec` execs knc: the same process
            syncs0 = metric(10249, 'knc_syncs_total{result="success"}')
            cpu0 = cpu_seconds(pid)
            time.sleep(10)
            cpu1 = cpu_seconds(pid)
            syncs1 = metric(10249, 'knc_syncs_total{result="success"}')
            rounds = syncs1 - syncs0
            rows.append((f"reconcile idle round, {n} x 2, {layout} (CPU per round)",
                         f"{(cpu1 - cpu0) / rounds * 1000:.2f} ms",
                         f"{rounds:.0f} rounds in 10 s; PATH's metadata is read at most once a minute when the watcher saw nothing"))
            stop(proc)

        # Memory at N x 10.
        c = write(f"{work}/c", gen(n, 10, "--nodes", "3"))
        sh(knc, "cleanup", "--state-dir", f"{work}/state-mem")
        proc = start_reconcile(knc, c, f"{work}/state-mem", interval="10s", port=10250)
        mem = rss(proc.pid)
        rows.append((f"reconcile resident memory, {n} x 10",
                     f"{mem['VmRSS']:.0f} MiB", f"peak {mem['VmHWM']:.0f} MiB"))
        stop(proc)

        # Conntrack: 100 UDP backends removed.
        udp = []
        udp_less = []
        for i in range(100):
            svc = (f"apiVersion: v1\nkind: Service\nmetadata: {{name: u{i}, namespace: d}}\n"
                   f"spec:\n  clusterIP: 10.97.0.{i + 1}\n  ports: [{{port: 53, protocol: UDP, targetPort: 5353}}]\n")
            def eps(count):
                lines = "".join(f"- addresses: [10.244.{i}.{j + 1}]\n" for j in range(count))
                return (f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
                        f"  name: u{i}-1\n  namespace: d\n  labels: {{kubernetes.io/service-name: u{i}}}\n"
                        f"addressType: IPv4\nports: [{{port: 5353, protocol: UDP}}]\nendpoints:\n{lines}")
            udp += [svc, eps(2)]
            udp_less += [svc, eps(1)]
        nodes = gen(0, 0, "--nodes", "1")
        u1 = write(f"{work}/u1", nodes + "---\n" + "---\n".join(udp))
        u2 = write(f"{work}/u2", nodes + "---\n" + "---\n".join(udp_less))
        state = f"{work}/state-ct"
        sh(knc, "cleanup", "--state-dir", state)
        apply(knc, u1, state)
        took, summary, stderr = apply(knc, u2, state)
        line = next((l for l in stderr.splitlines() if l.startswith("conntrack:")), "no cleanup line")
        rows.append(("apply removing 100 UDP backends: conntrack cleanup", re.sub(r".*\(", "(", line),
                     f"whole apply {took * 1000:.0f} ms"))
    finally:
        subprocess.run(["ip", "netns", "del", NS])
        shutil.rmtree(work, ignore_errors=True)
    print("| measure | figure | note |\n|---|---:|---|")
    for what, figure, note in rows:
        print(f"| {what} | {figure} | {note} |")


if __name__ == "__main__":
    main()
