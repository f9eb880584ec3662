#!/usr/bin/env python3
"""usage: gen_cluster.py N E [--nodes K] > cluster.yaml

Writes a reproducible synthetic cluster as multi-document YAML: K Nodes
(node1..nodeK, pod CIDRs 10.(128+i).0.0/16 style ranges), and N ClusterIP
Services with E ready endpoints each, spread round-robin over the nodes.
Addresses match ../shared/bench/kube_proxy_layout.py (Service i has ClusterIP
10.(96+i>>16).(i>>8&255).(i&255), endpoint k = i*E+j is 10.(128+k>>16)...),
so the two layouts describe the same cluster."""
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


if __name__ == "__main__":
    main()
