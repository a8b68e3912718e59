// A cluster-shaped workload (a snapshot or a generated shape, ./cluster.ts) as the local backend replays it:
// the pods at either end of a probed flow become real endpoints, each serving the ports its containers declare
// (and any port a flow names), on its node, with the address it has in the cluster; every other pod is
// address-only — it exists in the data plane's state (ipset members, identities, ipcache), never started. The
// policies are installed as written. Pure.
//
// Addresses: each node built gets the pod CIDRs of its pods (./pod-cidrs.ts: the Node's spec.podCIDRs where the
// snapshot has Nodes, else derived from the pods' addresses), so any layout replays — kind's 10.244.<n>.0/24,
// k3s's 10.42.0.0/16 in /24s, Calico's /26 IPAM blocks from 192.168.0.0/16. A hostNetwork pod at a flow's end is
// served from its node's namespace, at the node's address. The cap: MAX_REPLAY_ENDPOINTS endpoint pods, on at
// most MAX_REPLAY_NODES nodes (only the nodes of endpoint pods are built).
import { BenchError } from '../errors.js';
import { NAMESPACE_NAME_LABEL } from '../policy/selectors.js';
import type { ContainerPort, PodInfo } from '../policy/types.js';
import { seededRandom } from '../stats/summary.js';
import { MAX_ADDRESSED_NODES, MAX_LOCAL_ENDPOINTS, naturalCompare, type ClusterWorkload } from './cluster.js';
import { flowKey, podName, probeFlows, type ProbeFlowSample } from './flows.js';
import { planPodCidrs, RESERVED_RANGES, spareCidr } from './pod-cidrs.js';
import { podId, type Flow, type Workload, type WorkloadPod } from './workload.js';
import { parseCidr, parseIpv4 } from '../policy/cidr.js';

/** Endpoint pods the local topology runs at once (src/backends/local/topology.ts). */
export const MAX_REPLAY_ENDPOINTS = MAX_LOCAL_ENDPOINTS;
/** Nodes the local topology builds. */
export const MAX_REPLAY_NODES = MAX_ADDRESSED_NODES;

const reserved = RESERVED_RANGES.map((r) => parseCidr(r.cidr));
/** An address the local backend keeps for itself (its node network, link-local…): such a pod stays address-only. */
const isReserved = (ip: string): boolean => {
  const n = parseIpv4(ip);
  return n === undefined || reserved.some((r) => n >= r.first && n <= r.last);
};

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
      else endpoints.add(id);
    }
    const dst = byName.get(f.to);
    if (dst && !dst.ports.some((cp) => cp.containerPort === f.port && cp.protocol === f.protocol)) {
      const list = extraPorts.get(f.to) ?? [];
      if (!list.some((cp) => cp.containerPort === f.port && cp.protocol === f.protocol)) list.push({ containerPort: f.port, protocol: f.protocol });
      extraPorts.set(f.to, list);
    }
  }
  let extra = opts.extraEndpoints ?? 0;
  for (const p of probeablePods(w)) {
    if (endpoints.size >= MAX_REPLAY_ENDPOINTS || extra <= 0) break;
    if (!endpoints.has(podName(p)) && !isReserved(p.ip)) {
      endpoints.add(podName(p));
      extra--;
    }
  }
  if (endpoints.size > MAX_REPLAY_ENDPOINTS) problems.push(`the flows have ${endpoints.size} distinct pods at their ends; the local backend runs at most ${MAX_REPLAY_ENDPOINTS} endpoint pods: name fewer flows`);
  if (problems.length) throw replayError(w, problems);
  // The nodes built: those of endpoint pods, in the cluster's order (at least two).
  const used = new Set([...endpoints].map((id) => byName.get(id)!.node));
  const nodeNames = w.nodes.filter((n) => used.has(n));
  for (const n of [...used].sort(naturalCompare)) if (!nodeNames.includes(n)) nodeNames.push(n);
  if (nodeNames.length > MAX_REPLAY_NODES) throw replayError(w, [`the endpoint pods run on ${nodeNames.length} nodes; the local backend builds at most ${MAX_REPLAY_NODES}: name flows between fewer nodes`]);
  // Pod CIDRs from every pod-network pod of the cluster (so a block never holds another node's pod), endpoint or not.
  const addressed = w.inventory.pods.filter((p) => !p.hostNetwork && (endpoints.has(podName(p)) || !isReserved(p.ip)));
  const cidrsByNode = (() => {
    try {
      return planPodCidrs(addressed.map((p) => ({ id: podName(p), node: p.node, ip: p.ip })), { declared: w.nodePodCidrs });
    } catch (e) {
      throw e instanceof BenchError ? replayError(w, [e.message]) : e;
    }
  })();
  const podCidrs = nodeNames.map((n) => cidrsByNode.get(n) ?? w.nodePodCidrs?.[n] ?? []);
  const spare = () => spareCidr([...cidrsByNode.values()].flat());
  for (const c of podCidrs) if (c.length === 0) c.push(spare());
  if (nodeNames.length < 2) podCidrs.push([spare()]);
  const nodeIndex = new Map(nodeNames.map((n, i) => [n, i]));
  const pods: WorkloadPod[] = w.inventory.pods.map((p) => {
    const id = podName(p);
    const base = { name: p.name, namespace: p.namespace, labels: { ...p.labels }, ip: p.ip, ...(p.hostNetwork ? { hostNetwork: true } : {}) };
    if (!endpoints.has(id)) return { ...base, ports: p.ports.map((cp) => ({ ...cp })), node: 0, presence: 'address', role: 'both' };
    return { ...base, ports: [...p.ports.map((cp) => ({ ...cp })), ...(extraPorts.get(id) ?? [])], node: nodeIndex.get(p.node)!, presence: 'endpoint', role: 'both' };
  });
  const namespaces = w.inventory.namespaces.map((n) => ({ name: n.name, labels: { [NAMESPACE_NAME_LABEL]: n.name, ...n.labels } }));
  return { shape: 'cluster', nodes: podCidrs.length, podCidrs, namespaces, pods, hosts: [], policies: { policies: w.policies, peers: [] }, flows: flows.map((f) => ({ from: f.from, to: f.to, port: f.port, protocol: f.protocol })) };
}

const replayError = (w: ClusterWorkload, problems: readonly string[]) =>
  new BenchError('capacity', `workload ${w.name} cannot be replayed on the local backend:\n  ${problems.slice(0, 8).join('\n  ')}${problems.length > 8 ? `\n  … and ${problems.length - 8} more` : ''}`);

/** Endpoint pods of a replayed workload, by id (for reports). */
export const endpointIds = (w: Workload): string[] => w.pods.filter((p) => p.presence === 'endpoint').map(podId);
