#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh (read its header)."""
import argparse, atexit, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAYOUT = os.path.join(ROOT, "..", "shared", "bench", "kube_proxy_layout.py")
if not os.path.exists(LAYOUT):
    LAYOUT = os.path.join(HERE, "kube_proxy_layout.py")
PREFIX = f"knc-bench-{os.getpid()}"
namespaces, children = [], []
WORK = tempfile.mkdtemp(prefix="knc-bench-")


def cleanup():
    for p in children:
        if p.poll() is None:
            p.kill()
            p.wait()
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    shutil.rmtree(WORK, ignore_errors=True)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def sh(*args, ns=None, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    return subprocess.run(cmd, check=True, **kw)


def netns(name):
    full = f"{PREFIX}-{name}"
    if full in namespaces:
        sh("ip", "netns", "del", full)
        namespaces.remove(full)
    sh("ip", "netns", "add", full)
    namespaces.append(full)
    sh("ip", "link", "set", "lo", "up", ns=full)
    return full


def gen(n, e, *extra):
    path = os.path.join(WORK, f"cluster-{n}-{e}{''.join(extra)}.yaml")
    if not os.path.exists(path):
        with open(path, "w") as f:
            sh(sys.executable, os.path.join(HERE, "gen_cluster.py"), n, e, *extra, stdout=f)
    return path


def knc_compile(yaml, fmt="nft"):
    out = yaml.replace(".yaml", f".{fmt}")
    sh(ARGS.target + "/knc", "compile", yaml, "--node", "node1", "--service-cidr", "10.96.0.0/12",
       "--format", fmt, "-o", out)
    return out


def timed(cmd):
    """Wall seconds and peak RSS (MiB) of cmd, from GNU time."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + [str(c) for c in cmd],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, rss = r.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def best(f, runs):
    return min((f() for _ in range(runs)), key=lambda t: t[0])


def table(title, head, rows, note=""):
    print(f"\n### {title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    if note:
        print(f"\n{note}")
    sys.stdout.flush()


# ---------------------------------------------------------------- compile
def bench_compile(sizes):
    rows = []
    po = ARGS.target + "/examples/parse_only"
    for n in sizes:
        y = gen(n, 10)
        mib = os.path.getsize(y) / 2**20
        runs = 3 if n <= 10000 else 1
        ev, ev_rss = best(lambda: timed([po, "--events", y]), runs)
        tree, _ = best(lambda: timed([po, "--saphyr", y]), runs)
        out = os.path.join(WORK, "out.nft")
        kc, rss = best(lambda: timed([ARGS.target + "/knc", "compile", y, "--node", "node1",
                                      "--service-cidr", "10.96.0.0/12", "-o", out]), runs)
        rows.append([f"{n:,} × 10", f"{mib:.0f}", f"{ev:.2f}", f"{tree:.2f}", f"{kc:.2f}",
                     f"{kc / ev:.1f}×", f"{kc / tree:.1f}×", f"{rss:.0f}"])
    table("Compile time and peak memory (Services × endpoints, `knc compile` to nft)",
          ["cluster", "YAML MiB", "parse floor s (saphyr events)", "saphyr tree s", "knc compile s",
           "÷ events", "÷ tree", "peak RSS MiB"], rows,
          "Best of 3 (1 at 50k). Floor: `examples/parse_only --events` (saphyr-parser's event "
          "stream, consumed and dropped); tree: `--saphyr` (saphyr's own document loader). "
          "Wall time and peak RSS from `/usr/bin/time`.")


# ------------------------------------------------------------------- load
def nft_time(ns, path):
    t0 = time.perf_counter()
    sh("nft", "-f", path, ns=ns)
    return time.perf_counter() - t0


def bench_load(sizes, kp_cap):
    rows, points = [], {"knc": [], "kube-proxy layout": []}
    for n in sizes:
        y = gen(n, 2)
        nft = knc_compile(y)
        kp = os.path.join(WORK, f"kp-{n}.nft")
        layouts = [("knc", nft)]
        if n <= kp_cap:
            with open(kp, "w") as f:
                sh(sys.executable, LAYOUT, n, 2, stdout=f)
            layouts.append(("kube-proxy layout", kp))
        for name, path in layouts:
            ns = netns("load")
            load = nft_time(ns, path)
            replace = nft_time(ns, path)
            rows.append([f"{n:,}", name, f"{load:.3f}", f"{replace:.3f}",
                         f"{os.path.getsize(path) // 1024:,}"])
            points[name].append((n, load, replace))
        if n > kp_cap:
            rows.append([f"{n:,}", "kube-proxy layout", "not run", "not run", ""])
    mix = gen(10000, 2, "--mix")
    ns = netns("load")
    path = knc_compile(mix)
    load, replace = nft_time(ns, path), nft_time(ns, path)
    rows.append(["10,000 mixed", "knc", f"{load:.3f}", f"{replace:.3f}",
                 f"{os.path.getsize(path) // 1024:,}"])
    table("`nft -f` load into an empty namespace, and atomic replace (Services × 2 endpoints)",
          ["Services", "layout", "load s", "replace s", "ruleset KiB"], rows,
          f"kube-proxy's layout (../shared/bench/kube_proxy_layout.py) is capped at {kp_cap:,} "
          "Services: beyond that one run takes many minutes. `10,000 mixed` is `gen_cluster.py "
          "10000 2 --mix` (NodePort, LoadBalancer, multi-port, UDP, Local, affinity).")
    svg(points, os.path.join(HERE, "out", "load_time.svg"))


def svg(points, path):
    import math
    os.makedirs(os.path.dirname(path), exist_ok=True)
    W, H, L, B, T, R = 760, 400, 70, 50, 30, 220
    xs = [p[0] for v in points.values() for p in v]
    ys = [p[k] for v in points.values() for p in v for k in (1, 2)]
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    X = lambda x: L + (math.log10(x) - x0) / max(x1 - x0, 1e-9) * (W - L - R)
    Y = lambda y: H - B - (math.log10(y) - y0) / max(y1 - y0, 1e-9) * (H - B - T)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="18" font-size="14">nft -f time vs Services (× 2 endpoints), log-log</text>']
    for e in range(y0, y1 + 1):
        y = Y(10 ** e)
        o.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g} s</text>')
    for x in sorted(set(xs)):
        o.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{T}" y2="{H - B}" stroke="#eee"/>')
        o.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:,}</text>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">Services</text>')
    colors = {"knc": "#1f77b4", "kube-proxy layout": "#d62728"}
    ly = T + 10
    for name, pts in points.items():
        for k, dash, what in ((1, "", "load"), (2, "6,4", "replace")):
            if not pts:
                continue
            line = " ".join(f"{X(p[0]):.1f},{Y(p[k]):.1f}" for p in pts)
            o.append(f'<polyline points="{line}" fill="none" stroke="{colors[name]}" stroke-width="2" stroke-dasharray="{dash}"/>')
            for p in pts:
                o.append(f'<circle cx="{X(p[0]):.1f}" cy="{Y(p[k]):.1f}" r="3" fill="{colors[name]}"/>')
            o.append(f'<line x1="{W - R + 10}" x2="{W - R + 35}" y1="{ly}" y2="{ly}" stroke="{colors[name]}" stroke-width="2" stroke-dasharray="{dash}"/>')
            o.append(f'<text x="{W - R + 40}" y="{ly + 4}">{name} {what}</text>')
            ly += 18
    y = Y(0.5)
    o.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2ca02c" stroke-dasharray="2,3"/>')
    o.append(f'<text x="{W - R - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#2ca02c">0.5 s target</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


# ------------------------------------------------------------ data plane
SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(1024)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""

CLIENT = r"""
import socket, struct, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
linger = struct.pack("ii", 1, 0)
out = []
for i in range(n + 50):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    t0 = time.perf_counter_ns(); s.connect((host, port)); t1 = time.perf_counter_ns()
    s.close()
    if i >= 50: out.append(t1 - t0)
print(" ".join(str(t) for t in out))
"""


def topology(pod_ip, tag):
    """client ── node ── pod, Calico style; returns (client, node, pod)."""
    c, n, p = netns(f"client{tag}"), netns(f"node{tag}"), netns(f"pod{tag}")
    sh("ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "nc", "netns", n)
    sh("ip", "link", "add", "p0", "netns", p, "type", "veth", "peer", "name", "np", "netns", n)
    sh("ip", "link", "add", "dflt", "netns", n, "type", "veth", "peer", "name", "dflt-peer", "netns", p)
    for ns, cmds in [
        (c, ["ip addr add 192.168.77.2/24 dev c0", "ip link set c0 up",
             "ip route add default via 192.168.77.1"]),
        (n, ["sysctl -qw net.ipv4.ip_forward=1", "ip addr add 192.168.77.1/24 dev nc",
             "ip link set nc up", "ip link set np up", "sysctl -qw net.ipv4.conf.np.proxy_arp=1",
             "sysctl -qw net.ipv4.neigh.np.proxy_delay=0", f"ip route add {pod_ip}/32 dev np",
             "ip link set dflt up", "ip addr add 169.254.9.1/30 dev dflt",
             "ip route add default via 169.254.9.2 dev dflt onlink"]),
        (p, [f"ip addr add {pod_ip}/32 dev p0", "ip link set p0 up",
             "ip route add 169.254.1.1 dev p0", "ip route add default via 169.254.1.1 dev p0"]),
    ]:
        for cmd in cmds:
            sh(*cmd.split(), ns=ns)
    return c, n, p


def connect_samples(c, host, port, count):
    r = sh(sys.executable, "-c", CLIENT, host, port, count, ns=c,
           stdout=subprocess.PIPE, text=True, timeout=300)
    return [int(t) / 1000 for t in r.stdout.split()]


def bench_dataplane(counts, rounds=10):
    configs = []
    for n in counts:
        y = gen(n, 1)
        target = n - 1  # the last Service: worst case for a linear scan
        vip = f"10.{96 + (target >> 16)}.{(target >> 8) & 255}.{target & 255}"
        pod = f"10.{128 + (target >> 16)}.{(target >> 8) & 255}.{target & 255}"
        for backend in (["none"] if n == counts[0] else []) + ["nft", "iptables"]:
            c, node, p = topology(pod, len(configs))
            server = subprocess.Popen(["ip", "netns", "exec", p, sys.executable, "-c", SERVER],
                                      stdout=subprocess.PIPE, text=True)
            children.append(server)
            server.stdout.readline()
            if backend == "nft":
                sh("nft", "-f", knc_compile(y, "nft"), ns=node)
            elif backend == "iptables":
                sh("iptables-restore", knc_compile(y, "iptables"), ns=node)
            host, port = (pod, 8080) if backend == "none" else (vip, 80)
            configs.append((n, backend, host, port, c, []))
    # Rounds interleave the configurations, so load from elsewhere on the
    # machine hits them all alike.
    for _ in range(rounds):
        for n, backend, host, port, c, samples in configs:
            samples += connect_samples(c, host, port, ARGS.connects // rounds)
    rows = []
    for n, backend, host, port, c, samples in configs:
        med = statistics.median(samples)
        rows.append([f"{n:,}" if backend != "none" else "—", backend, f"{host}:{port}",
                     f"{med:.1f}", len(samples)])
    base = float(rows[0][3])
    for r in rows:
        r.append(f"{float(r[3]) / base:.2f}")
    table("New TCP connection time through the node (median µs)",
          ["Services in ruleset", "back end", "client connects to", "median µs", "connects",
           "÷ no ruleset"], rows,
          f"{rounds} interleaved rounds of {ARGS.connects // rounds} connects per row (each after "
          "50 warm-up) from a client namespace through a node namespace (the ruleset) to a pod "
          "namespace, timed around `connect()` in Python, so the figures include Python's own "
          "overhead (the same for every row). The Service connected to is the last one "
          "generated, behind all others in any linear scan. iptables here is iptables-nft "
          "(iptables 1.8.9, nf_tables).")


# ------------------------------------------------------------ incremental
def bench_incremental(n):
    y = gen(n, 2)
    old_dir, new_dir = os.path.join(WORK, "incr-old"), os.path.join(WORK, "incr-new")
    os.makedirs(old_dir, exist_ok=True)
    os.makedirs(new_dir, exist_ok=True)
    text = open(y).read()
    open(os.path.join(old_dir, "cluster.yaml"), "w").write(text)
    # Service 0 gets one more endpoint (a new backend group size, too).
    text = text.replace('  - addresses: ["10.128.0.1"]\n    nodeName: node2\n',
                        '  - addresses: ["10.128.0.1"]\n    nodeName: node2\n'
                        '  - addresses: ["10.200.0.1"]\n    nodeName: node1\n', 1)
    open(os.path.join(new_dir, "cluster.yaml"), "w").write(text)
    base = knc_compile(os.path.join(old_dir, "cluster.yaml"))
    full = knc_compile(os.path.join(new_dir, "cluster.yaml"))
    delta = os.path.join(WORK, "incr.nft")
    t0 = time.perf_counter()
    with open(delta, "w") as f:
        # Exit 1 says something changes (as diff(1)); anything else is a failure.
        done = subprocess.run([ARGS.target + "/knc", "diff", old_dir, new_dir, "--node", "node1",
                               "--service-cidr", "10.96.0.0/12", "--format", "nft"], stdout=f)
        if done.returncode != 1:
            raise SystemExit(f"knc diff exited {done.returncode}, expected 1 (changes)")
    diff_s = time.perf_counter() - t0
    ns = netns("incr")
    applies = []
    for _ in range(5):
        sh("nft", "-f", base, ns=ns)
        applies.append(nft_time(ns, delta))
    replace = nft_time(ns, full)
    commands = sum(1 for line in open(delta) if line and not line.startswith(("#", "\t", "}")))
    table(f"One changed Service in {n:,} (× 2 endpoints)",
          ["step", "s"], [["`knc diff` (compiles both inputs, compares)", f"{diff_s:.3f}"],
                          [f"`nft -f` of the diff ({commands} commands), median of 5",
                           f"{sorted(applies)[2]:.4f}"],
                          ["for comparison: `nft -f` atomic replace of the whole table",
                           f"{replace:.3f}"]],
          "The diff touches only the changed Service's elements (and adds the chain and map "
          "of a backend-group size not used before). The runtime (`knc apply`/`reconcile`) "
          "does not exist yet; it will keep the previous IR and apply exactly this.")


def bench_latency(n, changes):
    """One changed Service under a running `knc reconcile` (bench/latency.py)."""
    print(f"\n## One change under `knc reconcile`, rename to kernel commit ({n} x 2)\n")
    out = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "latency.py"),
                          "--target", ARGS.target, "--services", str(n), "--changes", str(changes)],
                         check=True, capture_output=True, text=True).stdout
    print(out.strip())


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="compile,load,dataplane,incremental,latency")
    ap.add_argument("--connects", type=int, default=2000)
    ap.add_argument("--kp-cap", type=int, default=10000)
    ARGS = ap.parse_args()
    quick = ARGS.quick
    only = ARGS.only.split(",")
    print(f"<!-- bench/run.sh, {time.strftime('%Y-%m-%d %H:%M')} -->")
    if "compile" in only:
        bench_compile([1000, 2000] if quick else [1000, 10000, 50000])
    if "load" in only:
        bench_load([1000, 2000] if quick else [1000, 10000, 50000, 100000],
                   1000 if quick else ARGS.kp_cap)
    if "dataplane" in only:
        bench_dataplane([10, 1000] if quick else [10, 10000])
    if "incremental" in only:
        bench_incremental(1000 if quick else 10000)
    if "latency" in only:
        bench_latency(1000 if quick else 10000, 5 if quick else 20)


if __name__ == "__main__":
    main()
