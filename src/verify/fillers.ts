// `bench verify --policies N` (issue 15): N filler policies on the pods a case already isolates, built so the
// case's truth table cannot change, so a data plane that is right with three policies and wrong with ten
// thousand is caught. A filler selects pods that are isolated in its direction already (so it isolates nothing
// new) and allows only a peer that no probe comes from, on a port no probe uses: it can only add rules that
// every probe must be evaluated past. The truth table with and without them is checked with the reference
// evaluator before anything is installed. Pure.
import { FIRST_FILLER_PORT, PEER_LABEL, fillerPorts, type PeerPodSpec } from '../policy/generate.js';
import { resolveEndpoints } from '../policy/resolve.js';
import { matchesSelector } from '../policy/selectors.js';
import type { Inventory, NetworkPolicy, PodInfo } from '../policy/types.js';
import { expectProbes } from './expect.js';
import type { GridAddresses, ProbeSpec } from './grid.js';
import { BenchError } from '../errors.js';

export const MAX_VERIFY_FILLERS = 20_000;
/** Filler peers live in the inventory only, from a range no grid endpoint uses (never routed). */
const FILLER_PEER_BASE = (10 << 24) | (246 << 16);

export interface FillerSet {
  policies: NetworkPolicy[];
  /** Inventory pods the fillers' peer selectors resolve to (ipset members / ipcache entries), never started. */
  peers: PodInfo[];
  /** The same peers as a policy set names them for a data plane: address-only, each with its filler's port. */
  peerSpecs: PeerPodSpec[];
  /** (namespace, direction, selector) groups that received N fillers each. */
  groups: Array<{ namespace: string; direction: 'Ingress' | 'Egress'; pods: string[] }>;
}

const ipOf = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * For each namespace and direction, the pods the case isolates there, grouped by their labels (the filler's
 * podSelector); a group is used only if its selector picks isolated pods alone. Every group gets `n` fillers.
 */
export function verifyFillers(inventory: Inventory, policies: readonly NetworkPolicy[], n: number, seed = 1): FillerSet {
  if (!Number.isInteger(n) || n < 0 || n > MAX_VERIFY_FILLERS) throw new BenchError('usage', `--policies on verify must be 0..${MAX_VERIFY_FILLERS}, got ${n}`);
  if (n === 0) return { policies: [], peers: [], peerSpecs: [], groups: [] };
  const endpoints = resolveEndpoints(inventory, policies);
  const groups: FillerSet['groups'] = [];
  const selectors: Array<Record<string, string>> = [];
  for (const direction of ['Ingress', 'Egress'] as const) {
    const isolated = new Set(endpoints.filter((e) => (direction === 'Ingress' ? e.ingress : e.egress).isolated).map((e) => `${e.pod.namespace}/${e.pod.name}`));
    const byKey = new Map<string, PodInfo[]>();
    for (const e of endpoints) {
      if (!isolated.has(`${e.pod.namespace}/${e.pod.name}`)) continue;
      const key = `${e.pod.namespace}\u0000${JSON.stringify(Object.entries(e.pod.labels).sort())}`;
      byKey.set(key, [...(byKey.get(key) ?? []), e.pod]);
    }
    for (const pods of byKey.values()) {
      const ns = pods[0]!.namespace;
      const labels = pods[0]!.labels;
      if (Object.keys(labels).length === 0) continue;
      const selected = inventory.pods.filter((p) => p.namespace === ns && matchesSelector({ matchLabels: labels }, p.labels));
      if (!selected.every((p) => isolated.has(`${p.namespace}/${p.name}`))) continue;
      groups.push({ namespace: ns, direction, pods: selected.map((p) => p.name).sort() });
      selectors.push(labels);
    }
  }
  const width = String(n).length;
  const ports = fillerPorts(n, 0, seed);
  const out: NetworkPolicy[] = [];
  const peerNamespaces = new Set(groups.map((g) => g.namespace));
  const peers: PodInfo[] = [];
  const peerSpecs: PeerPodSpec[] = [];
  let next = FILLER_PEER_BASE + 1;
  for (const ns of [...peerNamespaces].sort()) {
    for (let i = 0; i < n; i++) {
      const peer = { name: `filler-peer-${String(i).padStart(width, '0')}`, namespace: ns, labels: { [PEER_LABEL]: `f-${i}` }, ip: ipOf(next++) };
      peers.push({ ...peer, node: 'virtual-peers', ports: [] });
      peerSpecs.push({ ...peer, labels: { ...peer.labels }, port: ports[i]!, protocol: 'TCP' });
    }
  }
  groups.forEach((g, gi) => {
    for (let i = 0; i < n; i++) {
      const peer = [{ podSelector: { matchLabels: { [PEER_LABEL]: `f-${i}` } } }];
      const port = [{ protocol: 'TCP' as const, port: ports[i]! }];
      out.push({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: `filler-${g.direction === 'Ingress' ? 'i' : 'e'}${gi}-${String(i).padStart(width, '0')}`, namespace: g.namespace, labels: { 'cni-bench/role': 'filler' } },
        spec: {
          podSelector: { matchLabels: { ...selectors[gi]! } },
          policyTypes: [g.direction],
          ...(g.direction === 'Ingress' ? { ingress: [{ from: peer, ports: port }] } : { egress: [{ to: peer, ports: port }] }),
        },
      });
    }
  });
  return { policies: out, peers, peerSpecs, groups };
}

/** The reference evaluator's verdicts with and without the fillers must be the same; throws if not (a bug here). */
export function assertTruthTableKept(inventory: Inventory, policies: readonly NetworkPolicy[], fillers: FillerSet, probes: readonly ProbeSpec[], addr: Pick<GridAddresses, 'ips'>): void {
  if (fillers.policies.length === 0) return;
  const before = expectProbes(inventory, policies, probes, addr).expectations;
  const after = expectProbes({ ...inventory, pods: [...inventory.pods, ...fillers.peers] }, [...policies, ...fillers.policies], probes, addr).expectations;
  const changed = before.filter((e, i) => e.allowed !== after[i]!.allowed);
  if (changed.length) {
    throw new BenchError('internal', `filler policies would change ${changed.length} verdicts (e.g. ${changed[0]!.from} -> ${changed[0]!.to} ${changed[0]!.protocol}/${changed[0]!.port}); not installing them`);
  }
}

export { FIRST_FILLER_PORT };
