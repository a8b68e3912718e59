// A workload's objects on kind/cluster, as plain data: its namespaces (baseline Pod Security, as upstream's netpol
// suite) and one agnhost pod per endpoint pod, one container per declared port and protocol, each serving it. Pure.
import type { NamespaceInfo } from '../../policy/types.js';
import type { WorkloadPod } from '../../workload/workload.js';
import { realNamespace, type GridNames } from './grid-names.js';
import { pinToNode, podSecurityLabels } from './manifests.js';
import type { Manifest } from './yaml.js';

export const containerName = (port: number, protocol: string) => `cont-${port}-${protocol.toLowerCase()}`;

export function renderGridNamespaces(layout: { namespaces: readonly NamespaceInfo[] }, names: GridNames): Manifest[] {
  return layout.namespaces
    .filter((n) => n.name in names.namespaceOf)
    // baseline, as the upstream netpol suite sets for its namespaces (f.NamespacePodSecurityLevel =
    // admissionapi.LevelBaseline in test/e2e/network/netpol): agnhost serves ports 80/81, which needs root.
    .map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: names.namespaceOf[n.name]!, labels: { ...n.labels, ...names.runLabel, ...podSecurityLabels('baseline') } } }));
}

/** A namespace without pods that a case's policies live in (labelled like the grid's: ns=<name>, the run label). */
export function renderExtraNamespace(ns: string, names: GridNames): Manifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: realNamespace(names, ns), labels: { ns, ...names.runLabel, ...podSecurityLabels('baseline') } } };
}

/** The workload's pods (not those in the cluster's own namespace: its DNS pods). `nodes[i]` is where node i lands. */
export function renderGridPods(layout: { pods: ReadonlyArray<Pick<WorkloadPod, 'name' | 'namespace' | 'labels' | 'ports' | 'node'>> }, names: GridNames, nodes: readonly string[], image: string): Manifest[] {
  return layout.pods
    .filter((p) => p.namespace in names.namespaceOf)
    .map((p) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      // Exactly the layout's labels: the evaluator resolves selectors against those.
      metadata: { name: p.name, namespace: names.namespaceOf[p.namespace]!, labels: { ...p.labels } },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 0,
        affinity: pinToNode(nodes[p.node % nodes.length]!),
        securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
        // One container per port and protocol, as upstream's model.go: a port's server can fail alone.
        containers: p.ports.map((cp) => ({
          name: containerName(cp.containerPort, cp.protocol),
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['/agnhost', 'serve-hostname', cp.protocol === 'UDP' ? '--udp' : '--tcp', '--http=false', '--port', String(cp.containerPort)],
          ports: [{ name: cp.name, containerPort: cp.containerPort, protocol: cp.protocol }],
          securityContext: { allowPrivilegeEscalation: false },
        })),
      },
    }));
}

