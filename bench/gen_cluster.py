#!/usr/bin/env python3
"""usage: gen_cluster.py N E [--nodes K] [--mix [--seed S]] > cluster.yaml

Writes a reproducible synthetic cluster as multi-document YAML: K Nodes
(node1..nodeK, pod CIDRs 10.(128+i).0.0/16 style ranges), and N ClusterIP
Services with E ready endpoints each, spread round-robin over the nodes.
Addresses match ../shared/bench/kube_proxy_layout.py (Service i has ClusterIP
10.(96+i>>16).(i>>8&255).(i&255), endpoint k = i*E+j is 10.(128+k>>16)...),
so the two layouts describe the same cluster.

--mix makes a more realistic cluster instead, deterministic for a given
--seed (default 1): about 60% ClusterIP, 20% NodePort and 20% LoadBalancer
Services (with status ingress IPs 172.16.x.y); 30% with two TCP ports
(http, https), 10% UDP (dns); 30% of the NodePort / LoadBalancer ones with
externalTrafficPolicy Local; 10% with sessionAffinity ClientIP; every 50th
Service large (max(150, 25*E) endpoints), split into EndpointSlices of at
most 100 endpoints; the rest E endpoints. NodePorts are numbered from 30000
(past 32767 when a big cluster needs more than the default range; a Service
that would need one past 65535 stays ClusterIP)."""
import random
import sys


def ip(base, k):
    return f"10.{base + (k >> 16)}.{(k >> 8) & 255}.{k & 255}"


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    n, e = int(args[0]), int(args[1])
    nodes = int(args[args.index("--nodes") + 1]) if "--nodes" in args else 3
    out = []
    w = out.append
    write_nodes(w, nodes)
    if "--mix" in args:
        seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
        mix(w, n, e, nodes, random.Random(seed))
        sys.stdout.write("\n".join(out) + "\n")
        return
    for i in range(n):
        ns, svc = f"ns{i % 100}", f"svc{i}"
        w(f"""apiVersion: v1
kind: Service
metadata:
  name: {svc}
  namespace: {ns}
spec:
  clusterIP: {ip(96, i)}
  ports:
    - name: p80
      port: 80
      targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {svc}-1
  namespace: {ns}
  labels:
    kubernetes.io/service-name: {svc}
addressType: IPv4
ports:
  - name: p80
    port: 8080
endpoints:""")
        for j in range(e):
            k = i * e + j
            w(f"""  - addresses: ["{ip(128, k)}"]
    nodeName: node{k % nodes + 1}""")
        w("---")
    sys.stdout.write("\n".join(out) + "\n")


def write_nodes(w, nodes):
    for i in range(1, nodes + 1):
        w(f"""apiVersion: v1
kind: Node
metadata:
  name: node{i}
spec:
  podCIDR: 10.{127 + i}.0.0/16
status:
  addresses:
    - type: InternalIP
      address: 172.30.0.{i}
---""")


# (name, protocol, port, targetPort) of the port shapes --mix uses.
HTTP = ("http", "TCP", 80, 8080)
HTTPS = ("https", "TCP", 443, 8443)
DNS = ("dns", "UDP", 53, 5353)


def mix(w, n, e, nodes, rng):
    k = 0  # next endpoint address
    node_port = 30000
    for i in range(n):
        ns, svc = f"ns{i % 100}", f"svc{i}"
        r = rng.random()
        kind = "ClusterIP" if r < 0.6 else "NodePort" if r < 0.8 else "LoadBalancer"
        r = rng.random()
        ports = [DNS] if r < 0.1 else [HTTP, HTTPS] if r < 0.4 else [HTTP]
        local = kind != "ClusterIP" and rng.random() < 0.3
        affinity = rng.random() < 0.1
        count = max(150, 25 * e) if i % 50 == 49 else e
        if kind != "ClusterIP" and node_port + len(ports) > 65536:
            kind, local = "ClusterIP", False
        spec = [f"  type: {kind}", f"  clusterIP: {ip(96, i)}"]
        if local:
            spec.append("  externalTrafficPolicy: Local")
        if affinity:
            spec += ["  sessionAffinity: ClientIP",
                     "  sessionAffinityConfig:", "    clientIP:", "      timeoutSeconds: 3600"]
        spec.append("  ports:")
        for name, proto, port, target in ports:
            spec += [f"    - name: {name}", f"      protocol: {proto}",
                     f"      port: {port}", f"      targetPort: {target}"]
            if kind != "ClusterIP":
                spec.append(f"      nodePort: {node_port}")
                node_port += 1
        status = ""
        if kind == "LoadBalancer":
            status = f"""
status:
  loadBalancer:
    ingress:
      - ip: 172.{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"""
        w(f"""apiVersion: v1
kind: Service
metadata:
  name: {svc}
  namespace: {ns}
spec:
""" + "\n".join(spec) + status + "\n---")
        slice_ports = "\n".join(
            f"  - name: {name}\n    protocol: {proto}\n    port: {target}"
            for name, proto, _, target in ports)
        for s, first in enumerate(range(0, count, 100)):
            w(f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {svc}-{s + 1}
  namespace: {ns}
  labels:
    kubernetes.io/service-name: {svc}
addressType: IPv4
ports:
{slice_ports}
endpoints:""")
            for _ in range(first, min(count, first + 100)):
                w(f"""  - addresses: ["{ip(128, k)}"]
    nodeName: node{k % nodes + 1}""")
                k += 1
            w("---")


if __name__ == "__main__":
    main()
