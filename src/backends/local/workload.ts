// A workload laid out on the local backend: its endpoint pods become pod namespaces on node namespaces, its
// hosts namespaces on the node network, and every pod the data plane must know of (endpoints, address-only pods,
// the policy set's peers) an inventory entry with an address. Pure planning.
import { BenchError } from '../../errors.js';
import type { CommandSpec } from '../../exec/runner.js';
import { NAME_PREFIX } from '../../identity/run-id.js';
import type { PolicySet } from '../../policy/generate.js';
import { NAMESPACE_NAME_LABEL } from '../../policy/selectors.js';
import type { Inventory, NamespaceInfo, PodInfo } from '../../policy/types.js';
import { podId, type EndpointId, type Workload, type WorkloadAddresses, type WorkloadPod, type WorkloadShape } from '../../workload/workload.js';
import { NODE_SUBNET_PREFIX, planSwitchHost, planTopology, type PodRequest, type PodRole, type PodSpec, type Topology } from './topology.js';
import type { LocalModel } from './types.js';

/** External hosts sit high on the node network, above every node address (nodes use .2 up to .201). */
const EXTERNAL_HOST_BASE = 240;
/** Address-only pods (policy peers and the workload's own) get addresses from this range, never routed. */
const ADDRESS_ONLY_BASE = (10 << 24) | (245 << 16);

export interface HostSpec {
  id: EndpointId;
  netns: string;
  ip: string;
  /** Its port on the switch namespace's bridge. */
  switchPort: string;
}

/** A hostNetwork endpoint pod: it serves from its node's namespace, at the node's address. */
export interface NodePodSpec {
  id: EndpointId;
  netns: string;
  ip: string;
  node: string;
}

export interface WorkloadLayout {
  topology: Topology;
  hosts: HostSpec[];
  /** hostNetwork endpoint pods, in the namespace of their node. */
  nodePods: NodePodSpec[];
  addresses: WorkloadAddresses;
}

/**
 * The namespace suffix of each endpoint pod: `p<i>` in workload order, except the benchmark's two pods, whose
 * namespaces have always been cb-<id>-client and cb-<id>-server0 (scripts and kept runs name them).
 */
const SANDBOX_NAMES: Partial<Record<WorkloadShape, (pod: WorkloadPod) => string>> = {
  benchmark: (pod) => pod.name.replace(/[^a-z0-9]/g, ''),
};

const TOPOLOGY_ROLE: Record<WorkloadPod['role'], PodRole> = { client: 'client', server: 'server', both: 'grid' };

export function podRequest(pod: WorkloadPod, shape?: WorkloadShape): PodRequest {
  return { name: pod.name, namespace: pod.namespace, labels: { ...pod.labels }, role: TOPOLOGY_ROLE[pod.role], node: pod.node, sandbox: shape && SANDBOX_NAMES[shape]?.(pod), ...(pod.ip ? { ip: pod.ip } : {}) };
}

/** Where the local backend puts every endpoint and host of `workload` (pure: the CLI checks case templates with it). */
export function layoutWorkload(workload: Workload, opts: { runId: string; model: Pick<LocalModel, 'attachment' | 'hostIfPrefix'>; placement?: 'cross-node' | 'same-node' }): WorkloadLayout {
  const topology = planTopology({
    runId: opts.runId,
    placement: opts.placement ?? 'cross-node',
    nodes: workload.nodes,
    attachment: opts.model.attachment,
    hostIfPrefix: opts.model.hostIfPrefix,
    pods: workload.pods.filter((p) => p.presence === 'endpoint' && !p.hostNetwork).map((p) => podRequest(p, workload.shape)),
    podCidrs: workload.podCidrs,
  });
  const nodePods = workload.pods
    .filter((p) => p.presence === 'endpoint' && p.hostNetwork)
    .map((p) => {
      const node = topology.nodes[p.node];
      if (!node) throw new BenchError('internal', `hostNetwork pod ${podId(p)} asks for node ${p.node}, but there are ${topology.nodes.length} nodes`);
      return { id: podId(p), netns: node.netns, ip: node.ip, node: node.name };
    });
  const hosts = workload.hosts.map((h, i) => ({ id: h.id, netns: `${NAME_PREFIX}${opts.runId}-${h.id}`, ip: `${NODE_SUBNET_PREFIX}${EXTERNAL_HOST_BASE + i}`, switchPort: `p${opts.runId}x${i}` }));
  const ips: Record<EndpointId, string> = {};
  const nodeOf: Record<EndpointId, string> = {};
  for (const p of topology.pods) {
    ips[podId(p)] = p.ip;
    nodeOf[podId(p)] = p.node.name;
  }
  for (const n of nodePods) {
    ips[n.id] = n.ip;
    nodeOf[n.id] = n.node;
  }
  for (const h of hosts) ips[h.id] = h.ip;
  return { topology, hosts, nodePods, addresses: { ips, nodeOf } };
}

const ipn = (netns: string, ...args: string[]): CommandSpec => ({ argv: ['ip', '-n', netns, ...args] });

/** A host outside the cluster on the node network, routing pod CIDRs via their nodes as a real network would. */
export function planExternalHosts(t: Topology, hosts: readonly HostSpec[]): CommandSpec[] {
  return hosts.flatMap((h) => [
    ...planSwitchHost(t, h, `create external host ${h.id}`),
    ...t.nodes.flatMap((n) => n.podCidrs.map((c) => ipn(h.netns, 'route', 'add', c, 'via', n.ip, 'dev', 'eth0'))),
    // As for client pods: many short connections from one source.
    { argv: ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1'], netns: h.netns },
    { argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535'], netns: h.netns },
  ]);
}

const dotted = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * What the data plane resolves policies against: the workload's namespaces, its endpoint pods as the topology
 * holds them now (labels changed at run time included), and every address-only pod — the workload's and the
 * policy set's peers — each with its fixed address or one from a range no pod uses.
 */
export function workloadInventory(workload: Workload, topology: Topology, set: PolicySet, declared: (pod: PodSpec) => WorkloadPod['ports']): Inventory {
  let next = ADDRESS_ONLY_BASE + 1;
  const peers: PodInfo[] = set.peers.map((peer) => {
    const ip = peer.ip ?? dotted(next);
    next++;
    return { name: peer.name, namespace: peer.namespace, labels: peer.labels, ip, node: 'virtual-peers', ports: [{ containerPort: peer.port, protocol: peer.protocol }] };
  });
  const addressOnly: PodInfo[] = workload.pods
    .filter((p) => p.presence === 'address')
    .map((p) => ({ name: p.name, namespace: p.namespace, labels: { ...p.labels }, ip: p.ip ?? dotted(next++), node: 'virtual-peers', ports: p.ports.map((cp) => ({ ...cp })), ...(p.hostNetwork ? { hostNetwork: true } : {}) }));
  const endpoints: PodInfo[] = topology.pods.map((p) => ({ name: p.name, namespace: p.namespace, labels: p.labels, ip: p.ip, node: p.node.name, ports: declared(p) }));
  // hostNetwork endpoints: at their node's address in this run, never selected (NetworkPolicy does not apply).
  for (const p of workload.pods.filter((x) => x.presence === 'endpoint' && x.hostNetwork)) {
    const node = topology.nodes[p.node];
    endpoints.push({ name: p.name, namespace: p.namespace, labels: { ...p.labels }, ip: node?.ip ?? p.ip ?? '', node: node?.name ?? 'virtual-peers', ports: p.ports.map((cp) => ({ ...cp })), hostNetwork: true });
  }
  const namespaces: NamespaceInfo[] = workload.namespaces.map((n) => ({ name: n.name, labels: { ...n.labels } }));
  for (const name of [...peers, ...addressOnly].map((p) => p.namespace)) {
    if (!namespaces.some((n) => n.name === name)) namespaces.push({ name, labels: { [NAMESPACE_NAME_LABEL]: name } });
  }
  return { namespaces, pods: [...endpoints, ...peers, ...addressOnly] };
}
