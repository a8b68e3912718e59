// A workload as the v1 List `kubectl get namespaces,nodes,pods,networkpolicies -A -o json` prints: what a snapshot
// file holds, so a generated shape can be written out, anonymized or applied elsewhere, and read back by the
// importer to the same workload. Only the fields the importer reads.
import type { ClusterWorkload } from './cluster.js';
import type { ContainerPort, NetworkPolicy } from '../policy/types.js';

export interface KubeList {
  apiVersion: 'v1';
  kind: 'List';
  items: Array<Record<string, unknown>>;
}

const ports = (ps: readonly ContainerPort[]) => (ps.length ? { ports: ps.map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, protocol: p.protocol })) } : {});

export function workloadToList(w: ClusterWorkload): KubeList {
  const items: Array<Record<string, unknown>> = [];
  for (const ns of w.inventory.namespaces) items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns.name, labels: { ...ns.labels } } });
  for (const p of w.inventory.pods) {
    items.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.namespace, labels: { ...p.labels } },
      spec: { nodeName: p.node, ...(p.hostNetwork ? { hostNetwork: true } : {}), containers: [{ name: 'main', ...ports(p.ports) }] },
      status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] },
    });
  }
  for (const pol of w.policies) items.push(structuredClone(pol) as NetworkPolicy & Record<string, unknown>);
  return { apiVersion: 'v1', kind: 'List', items };
}
