// The verification grid on a real cluster (`bench verify --backend kind|cluster`), run through the same case
// files as the local grid. As the upstream network-policy e2e suite builds it (kubernetes/kubernetes
// test/e2e/network/netpol): namespaces x, y, z — here cb-<runId>-x|y|z, labelled ns=x… and with the run label —
// holding pods a, b, c, one agnhost `serve-hostname` container per port and protocol (TCP and UDP on 80 and 81,
// container ports named serve-80-tcp… as on the local grid); probes are `kubectl exec … /agnhost connect`. The DNS
// endpoint is one of the cluster's own kube-dns pods in kube-system.
//
// Names: the runner, the evaluator and the output keep the case files' names (x/a, ns x), so matrices and
// JSON/JUnit read the same on every backend; this grid maps them onto the real namespaces at its boundary
// (policies rewritten in applyPolicies, `kubernetes.io/metadata.name` selectors included), a bijection the
// tests check against the evaluator with the real names.
//
// External hosts: not built on kind/cluster. A host outside the cluster that serves ports and routes to pod IPs
// does not exist there, and hostNetwork pods would be node addresses (traffic from a node to its own pods is
// allowed or not depending on the CNI, and ports 80/81 on a production node may be taken). Probes to and from
// ext1/ext2 are left out; their `{{ ext1 }}` templates resolve to TEST-NET-2 addresses (RFC 5737, routed
// nowhere), so ipBlock cases still apply and still decide every pod-to-pod probe.
//
// Split by job: k8s-names.ts (case-file names onto the run's namespaces), k8s-manifests.ts (the grid's objects),
// k8s-probe.ts (probe commands and verdicts, reading pod addresses) and k8s-grid.ts (the grid on a cluster
// provider). This module gathers them for callers.
//
// Exercised here: plans (dry run), manifests against their schemas, probe-output mapping, and the control flow
// with a scripted runner. Not exercised here: a real cluster (no Docker engine and no cluster on this machine).
import { resolve } from 'node:path';
export * from './k8s-names.js';
export * from './k8s-manifests.js';
export * from './k8s-probe.js';
export * from './k8s-grid.js';
