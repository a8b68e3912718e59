// A cluster-shaped workload (a snapshot or a generated shape, ./cluster.ts) as the local backend replays it:
// the pods at either end of a probed flow become real endpoints, each serving the ports its containers declare
// (and any port a flow names), on the node its address belongs to, with the address it has in the cluster; every
// other pod is address-only — it exists in the data plane's state (ipset members, identities, ipcache), never
// started. The policies are installed as written. Pure.
//
// The cap: the local topology gives node i the pod CIDR 10.244.i.0/24 (kind's default pod subnet, one /24 per
// node) and runs at most MAX_REPLAY_ENDPOINTS endpoint pods. A pod keeps its address only where it lies in that
// scheme (which snapshots of a kind cluster and every generated shape do); an endpoint pod elsewhere is refused
// with the reason, as is a flow from or to a hostNetwork pod (no backend places a pod in its node's namespace yet).
import { BenchError } from '../errors.js';
import { NAMESPACE_NAME_LABEL } from '../policy/selectors.js';
import type { ContainerPort, PodInfo } from '../policy/types.js';
import { seededRandom } from '../stats/summary.js';
import { MAX_ADDRESSED_NODES, type ClusterWorkload } from './cluster.js';
import { flowKey, podName, probeFlows, type ProbeFlowSample } from './flows.js';
import { podId, type Flow, type Workload, type WorkloadPod } from './workload.js';

/** Endpoint pods the local topology runs at once (src/backends/local/topology.ts). */
export const MAX_REPLAY_ENDPOINTS = 250;
/** Nodes the local topology builds (10.244.<i>.0/24 for i < 200). */
export const MAX_REPLAY_NODES = MAX_ADDRESSED_NODES;

const LOCAL_POD_ADDRESS = /^10\.244\.(\d+)\.(\d+)$/;

/** The node index a pod address gives on the local scheme, or why it has none. */
export function localNodeOf(ip: string): { node?: number; problem?: string } {
  const m = LOCAL_POD_ADDRESS.exec(ip);
  if (!m) return { problem: `its address ${ip} is outside 10.244.0.0/16, the pod network the local backend builds (one /24 per node)` };
  const node = Number(m[1]);
  const slot = Number(m[2]);
  if (node >= MAX_REPLAY_NODES) return { problem: `its address ${ip} is in node pod CIDR 10.244.${node}.0/24; the local backend builds nodes 0..${MAX_REPLAY_NODES - 1}` };
  if (slot < 2 || slot > 254) return { problem: `its address ${ip} is .0, .1 or .255 of its /24, which the local backend keeps for the node` };
  return { node };
}

/** Pods a flow may start or end at on the local backend: pod-network pods (hostNetwork pods are left out). */
export function probeablePods(w: ClusterWorkload): PodInfo[] {
  return w.inventory.pods.filter((p) => !p.hostNetwork);
}

/**
 * The flows verify probes by default: every ordered pair of probeable pods on every port the destination declares,
 * or a seeded sample above `max`; above the endpoint cap, the pairs are drawn among a seeded choice of that many
 * pods (the others stay address-only).
 */
export function replayProbeFlows(w: ClusterWorkload, opts: { max?: number; seed?: number; maxEndpoints?: number } = {}): ProbeFlowSample & { podsSampled: boolean } {
  let pods = probeablePods(w);
  const cap = opts.maxEndpoints ?? MAX_REPLAY_ENDPOINTS;
  const podsSampled = pods.length > cap;
  if (podsSampled) {
    const rand = seededRandom(opts.seed ?? 1);
    const order = pods.map((p, i) => ({ i, r: rand() })).sort((a, b) => a.r - b.r).slice(0, cap).map((x) => x.i).sort((a, b) => a - b);
    pods = order.map((i) => pods[i]!);
  }
  const view: ClusterWorkload = { ...w, inventory: { ...w.inventory, pods } };
  return { ...probeFlows(view, { max: opts.max, seed: opts.seed }), podsSampled };
}

export interface ReplayOptions {
  /** Endpoint pods beyond those the flows need, up to the cap (default none: only the flows' ends). */
  extraEndpoints?: number;
}

/**
 * `w` as a workload for the local backend, probing `flows`. Throws a capacity error naming the pods when a flow's
 * end cannot be an endpoint there.
 */
export function replayWorkload(w: ClusterWorkload, flows: readonly Flow[], opts: ReplayOptions = {}): Workload {
  const byName = new Map(w.inventory.pods.map((p) => [podName(p), p]));
  const problems: string[] = [];
  const endpoints = new Set<string>();
  /** Ports a flow names that the destination does not declare: it serves them too. */
  const extraPorts = new Map<string, ContainerPort[]>();
  for (const f of flows) {
    for (const id of [f.from, f.to]) {
      const p = byName.get(id);
      if (!p) problems.push(`flow ${flowKey(f)}: no pod ${id} in workload ${w.name}`);
      else if (p.hostNetwork) problems.push(`flow ${flowKey(f)}: ${id} is a hostNetwork pod; the local backend places no pod in its node's network namespace yet`);
      else endpoints.add(id);
    }
    const dst = byName.get(f.to);
    if (dst && !dst.ports.some((cp) => cp.containerPort === f.port && cp.protocol === f.protocol)) {
      const list = extraPorts.get(f.to) ?? [];
      if (!list.some((cp) => cp.containerPort === f.port && cp.protocol === f.protocol)) list.push({ containerPort: f.port, protocol: f.protocol });
      extraPorts.set(f.to, list);
    }
  }
  for (const p of probeablePods(w)) {
    if (endpoints.size >= MAX_REPLAY_ENDPOINTS || (opts.extraEndpoints ?? 0) <= 0) break;
    if (!endpoints.has(podName(p)) && localNodeOf(p.ip).node !== undefined) {
      endpoints.add(podName(p));
      opts = { ...opts, extraEndpoints: (opts.extraEndpoints ?? 0) - 1 };
    }
  }
  if (endpoints.size > MAX_REPLAY_ENDPOINTS) problems.push(`the flows have ${endpoints.size} distinct pods at their ends; the local backend runs at most ${MAX_REPLAY_ENDPOINTS} endpoint pods: name fewer flows`);
  const nodeOf = new Map<string, number>();
  const nodeIndexOfName = new Map<string, { index: number; pod: string }>();
  for (const id of endpoints) {
    const p = byName.get(id)!;
    const { node, problem } = localNodeOf(p.ip);
    if (node === undefined) {
      problems.push(`pod ${id} cannot be an endpoint on the local backend: ${problem}`);
      continue;
    }
    const seen = nodeIndexOfName.get(p.node);
    if (seen && seen.index !== node) problems.push(`pod ${id} on node ${p.node} has address ${p.ip}, but pod ${seen.pod} on the same node is in 10.244.${seen.index}.0/24: the local backend gives each node one /24`);
    else nodeIndexOfName.set(p.node, { index: node, pod: id });
    nodeOf.set(id, node);
  }
  const claimed = new Map<number, string>();
  for (const [name, { index }] of nodeIndexOfName) {
    const other = claimed.get(index);
    if (other) problems.push(`nodes ${other} and ${name} both have pods in 10.244.${index}.0/24: the local backend gives each node its own /24`);
    claimed.set(index, name);
  }
  if (problems.length) throw new BenchError('capacity', `workload ${w.name} cannot be replayed on the local backend:\n  ${problems.slice(0, 8).join('\n  ')}${problems.length > 8 ? `\n  … and ${problems.length - 8} more` : ''}`);
  const nodes = Math.max(2, ...[...nodeOf.values()].map((n) => n + 1));
  const pods: WorkloadPod[] = w.inventory.pods.map((p) => {
    const id = podName(p);
    const base = { name: p.name, namespace: p.namespace, labels: { ...p.labels }, ip: p.ip, ...(p.hostNetwork ? { hostNetwork: true } : {}) };
    if (!endpoints.has(id)) return { ...base, ports: p.ports.map((cp) => ({ ...cp })), node: 0, presence: 'address', role: 'both' };
    return { ...base, ports: [...p.ports.map((cp) => ({ ...cp })), ...(extraPorts.get(id) ?? [])], node: nodeOf.get(id)!, presence: 'endpoint', role: 'both' };
  });
  const namespaces = w.inventory.namespaces.map((n) => ({ name: n.name, labels: { [NAMESPACE_NAME_LABEL]: n.name, ...n.labels } }));
  return { shape: 'cluster', nodes, namespaces, pods, hosts: [], policies: { policies: w.policies, peers: [] }, flows: flows.map((f) => ({ from: f.from, to: f.to, port: f.port, protocol: f.protocol })) };
}

/** Endpoint pods of a replayed workload, by id (for reports). */
export const endpointIds = (w: Workload): string[] => w.pods.filter((p) => p.presence === 'endpoint').map(podId);
