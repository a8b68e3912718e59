// The local backend's world: network namespaces as Kubernetes nodes and pods, on this machine's kernel.
// Pure planning: names, addresses and the commands that build them. Nothing here touches the host namespace:
// every link is created inside a namespace of the run (veth peers are placed with `netns` at creation).
import { createHash } from 'node:crypto';
import type { CommandSpec } from '../../exec/runner.js';
import { BenchError } from '../../errors.js';
import { assertRunId, NAME_PREFIX } from '../../identity/run-id.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../../policy/cidr.js';
import { MAX_LOCAL_ENDPOINTS } from '../../workload/cluster.js';
import { cidrHolding } from '../../workload/pod-cidrs.js';
import { CLIENT_LABELS, CLIENT_NAMESPACE, SERVER_LABELS, SERVER_NAMESPACE } from '../../workload/workload.js';
import { bridgeMac, gatewayNeighbour, podMac, podNeighbour, stableMac } from './bridge-neighbours.js';

/** How pods attach to their node, which decides the per-pod and per-node commands. */
export type Attachment =
  /** Calico/Cilium/none: pod /32 routed on a host-side veth, gateway 169.254.1.1 answered by a fixed MAC. */
  | 'routed'
  /** Flannel: per-node bridge cni0 and a VXLAN device between nodes. */
  | 'bridge-vxlan'
  /**
   * Canal: pods on routed cali veths as the Calico CNI plugin sets them up (host-local IPAM from the node's pod
   * CIDR, /32 route, proxy ARP, no bridge), and Flannel's flannel.1 VXLAN between nodes.
   */
  | 'routed-vxlan';

/** Pods on routed veths (no bridge): the Calico CNI plugin's attachment. */
export const isRoutedAttachment = (a: Attachment): boolean => a === 'routed' || a === 'routed-vxlan';
/** Nodes joined by Flannel's VXLAN device. */
export const isVxlanAttachment = (a: Attachment): boolean => a === 'bridge-vxlan' || a === 'routed-vxlan';

export interface NodeSpec {
  index: number;
  /** Kubernetes-style node name, used in the inventory. */
  name: string;
  netns: string;
  /** Address on the node network (the "docker network" of a kind cluster). */
  ip: string;
  /** This node's first pod CIDR (10.244.<index>.0/24 unless the workload gives its own). */
  podCidr: string;
  /** Every pod CIDR of the node, podCidr first: a replayed cluster keeps its pods' addresses, wherever they are. */
  podCidrs: string[];
  /** Interface name of the node's port on the switch namespace's bridge. */
  switchPort: string;
}
export type PodRole = 'client' | 'server' | 'grid';

export interface PodSpec {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  role: PodRole;
  netns: string;
  node: NodeSpec;
  ip: string;
  hostIf: string; // the pod's veth end inside the node namespace
  /** Index of the pod on its node: its address's offset from the network address of the node's first pod CIDR. */
  slot: number;
}

export interface Topology {
  runId: string;
  attachment: Attachment;
  switchNs: string;
  nodes: NodeSpec[];
  pods: PodSpec[];
  /** MTU of pod interfaces (VXLAN takes 50 bytes of a 1500-byte frame). */
  podMtu: number;
}

export const NODE_SUBNET_PREFIX = '172.18.0.';
export const ROUTED_GATEWAY = '169.254.1.1';
/** The MAC Calico gives every host-side veth; pods reach their gateway through it. */
export const ROUTED_GATEWAY_MAC = 'ee:ee:ee:ee:ee:ee';

export interface TopologyOptions {
  runId: string;
  attachment: Attachment;
  nodes?: number;
  servers?: number;
  placement: 'cross-node' | 'same-node';
  /** Host-side interface naming convention of the modelled CNI (cali…, lxc…, veth…). */
  hostIfPrefix: 'cali' | 'lxc' | 'veth';
  /** Explicit pods (e.g. the verification grid) instead of the benchmark's client and servers. */
  pods?: PodRequest[];
  /** Each node's pod CIDRs, by node index (default 10.244.<index>.0/24). */
  podCidrs?: ReadonlyArray<readonly string[]>;
}

/** Endpoint pods the local backend runs at once: a namespace, a veth pair and a server each (README, "Workloads"). */
export const MAX_ENDPOINTS = MAX_LOCAL_ENDPOINTS;

export interface PodRequest {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  role: PodRole;
  /** Index of the node it runs on. */
  node: number;
  /** Its namespace's suffix (cb-<run>-<sandbox>); default p<i>, its index in the topology's pods. */
  sandbox?: string;
  /**
   * A fixed address inside one of its node's pod CIDRs (a replayed cluster keeps its pod IPs). Absent: the next
   * free one of the node's first CIDR, from its network address + 2.
   */
  ip?: string;
}

/** Host-side veth name: the CNI's prefix plus a hash of run id and pod, 15 characters at most. */
export function hostIfName(prefix: string, runId: string, pod: string): string {
  const hash = createHash('sha256').update(`${runId}/${pod}`).digest('hex');
  const name = prefix + hash.slice(0, 15 - prefix.length);
  return name;
}

export function planTopology(opts: TopologyOptions): Topology {
  assertRunId(opts.runId);
  const nodeCount = opts.nodes ?? 2;
  const serverCount = opts.servers ?? 1;
  if (nodeCount < 2 || nodeCount > 200) throw new BenchError('capacity', `the local backend builds 2..200 nodes; the workload asks for ${nodeCount}`);
  const ns = (suffix: string) => `${NAME_PREFIX}${opts.runId}-${suffix}`;
  const nodes: NodeSpec[] = Array.from({ length: nodeCount }, (_, i) => {
    const podCidrs = opts.podCidrs?.[i]?.length ? [...opts.podCidrs[i]!] : [`10.244.${i}.0/24`];
    return { index: i, name: `node-${i}`, netns: ns(`n${i}`), ip: `${NODE_SUBNET_PREFIX}${i + 2}`, podCidr: podCidrs[0]!, podCidrs, switchPort: `p${opts.runId}n${i}` };
  });
  // Cross-node: the client on node-0, servers on node-1, so every connection crosses the node network.
  const clientNode = opts.placement === 'same-node' ? nodes[1]! : nodes[0]!;
  const serverNode = nodes[1]!;
  const slots = new Map<number, number>();
  const nextSlot = (n: NodeSpec) => {
    const s = (slots.get(n.index) ?? 1) + 1;
    slots.set(n.index, s);
    return s;
  };
  const fixed = new Set<string>();
  for (const r of opts.pods ?? []) {
    if (r.ip === undefined) continue;
    const node = nodes[r.node];
    const problem = node && fixedAddressProblem(node, r.ip, opts.attachment);
    if (!node) throw new BenchError('internal', `pod ${r.namespace}/${r.name} asks for node ${r.node}, but there are ${nodeCount} nodes`);
    // A replayed cluster's address this model's node devices take (Flannel's cni0 and flannel.1 addresses).
    if (problem) throw new BenchError('capacity', `pod ${r.namespace}/${r.name}: address ${r.ip} ${problem}: it cannot be replayed on this model`);
    if (fixed.has(r.ip)) throw new BenchError('internal', `pod ${r.namespace}/${r.name}: address ${r.ip} is taken`);
    fixed.add(r.ip);
  }
  const mkPod = (name: string, namespace: string, labels: Record<string, string>, role: PodRole, node: NodeSpec, nsSuffix: string, ip?: string): PodSpec => {
    const base = parseCidr(node.podCidr).network;
    let slot = ip === undefined ? nextSlot(node) : parseIpv4(ip)! - base;
    while (ip === undefined && fixed.has(formatIpv4(base + slot))) slot = nextSlot(node);
    return {
      name,
      namespace,
      labels,
      role,
      netns: ns(nsSuffix),
      node,
      ip: ip ?? formatIpv4(base + slot),
      hostIf: hostIfName(opts.hostIfPrefix, opts.runId, `${namespace}/${name}`),
      slot,
    };
  };
  const pods: PodSpec[] = [];
  if (opts.pods) {
    opts.pods.forEach((r, i) => {
      const node = nodes[r.node];
      if (!node) throw new BenchError('internal', `pod ${r.namespace}/${r.name} asks for node ${r.node}, but there are ${nodeCount} nodes`);
      pods.push(mkPod(r.name, r.namespace, r.labels, r.role, node, r.sandbox ?? `p${i}`, r.ip));
    });
  } else {
    pods.push(mkPod('client', CLIENT_NAMESPACE, { ...CLIENT_LABELS }, 'client', clientNode, 'client'));
    for (let i = 0; i < serverCount; i++) {
      pods.push(mkPod(`server-${i}`, SERVER_NAMESPACE, { ...SERVER_LABELS }, 'server', serverNode, `server${i}`));
    }
  }
  if (pods.length > MAX_ENDPOINTS) throw new BenchError('capacity', `the local backend runs at most ${MAX_ENDPOINTS} endpoint pods (a namespace, a veth pair and a server each); the workload has ${pods.length}: make the others address-only`);
  return {
    runId: opts.runId,
    attachment: opts.attachment,
    switchNs: ns('sw'),
    nodes,
    pods,
    podMtu: isVxlanAttachment(opts.attachment) ? 1450 : 1500,
  };
}

/** The host-side interface of each pod of the topology, by namespace/name (what a policy engine attaches to). */
export function hostInterfaceOf(t: Topology): (pod: { namespace: string; name: string }) => string {
  const byPod = new Map(t.pods.map((p) => [`${p.namespace}/${p.name}`, p.hostIf]));
  return (pod) => {
    const iface = byPod.get(`${pod.namespace}/${pod.name}`);
    if (!iface) throw new BenchError('internal', `no interface for pod ${pod.namespace}/${pod.name} in the topology`);
    return iface;
  };
}

/** Every namespace the topology creates, switch first. */
export function topologyNamespaces(t: Topology): string[] {
  return [t.switchNs, ...t.nodes.map((n) => n.netns), ...t.pods.map((p) => p.netns)];
}

const ipn = (netns: string, ...args: string[]): CommandSpec => ({ argv: ['ip', '-n', netns, ...args] });
const sysctl = (netns: string, key: string, value: string): CommandSpec => ({ argv: ['sysctl', '-q', '-w', `${key}=${value}`], netns });

/** A namespace plugged into the node network's bridge: its eth0 on the switch, addressed on the node subnet. */
export function planSwitchHost(t: Pick<Topology, 'switchNs'>, host: { netns: string; switchPort: string; ip: string }, purpose: string): CommandSpec[] {
  return [
    { argv: ['ip', 'netns', 'add', host.netns], purpose },
    ipn(host.netns, 'link', 'set', 'lo', 'up'),
    ipn(host.netns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', host.switchPort, 'netns', t.switchNs),
    ipn(t.switchNs, 'link', 'set', host.switchPort, 'master', 'br0', 'up'),
    ipn(host.netns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0'),
    ipn(host.netns, 'link', 'set', 'eth0', 'up'),
  ];
}

/** The node network: a bridge in its own namespace (a stand-in for kind's docker network) and the nodes on it. */
export function planNodeNetwork(t: Topology): CommandSpec[] {
  const cmds: CommandSpec[] = [
    { argv: ['ip', 'netns', 'add', t.switchNs], purpose: 'create switch namespace' },
    ipn(t.switchNs, 'link', 'set', 'lo', 'up'),
    ipn(t.switchNs, 'link', 'add', 'br0', 'type', 'bridge'),
    ipn(t.switchNs, 'link', 'set', 'br0', 'up'),
  ];
  for (const n of t.nodes) {
    cmds.push(...planSwitchHost(t, n, `create namespace of ${n.name}`), sysctl(n.netns, 'net.ipv4.ip_forward', '1'));
  }
  return cmds;
}

/** Pod namespaces and their veths; the node side is attached per the model's attachment. */
export function planPods(t: Topology): CommandSpec[] {
  const cmds: CommandSpec[] = [];
  for (const p of t.pods) {
    const nodeNs = p.node.netns;
    cmds.push(
      { argv: ['ip', 'netns', 'add', p.netns], purpose: `create namespace of pod ${p.namespace}/${p.name}` },
      ipn(p.netns, 'link', 'set', 'lo', 'up'),
      ipn(p.netns, 'link', 'add', 'eth0', ...(isRoutedAttachment(t.attachment) ? [] : ['address', podMac(p.netns)]), 'mtu', String(t.podMtu), 'type', 'veth', 'peer', 'name', p.hostIf, 'mtu', String(t.podMtu), 'netns', nodeNs),
    );
    if (isRoutedAttachment(t.attachment)) {
      cmds.push(
        ipn(nodeNs, 'link', 'set', p.hostIf, 'address', ROUTED_GATEWAY_MAC),
        ipn(nodeNs, 'link', 'set', p.hostIf, 'up'),
        sysctl(nodeNs, `net.ipv4.conf.${p.hostIf}.proxy_arp`, '1'),
        ipn(nodeNs, 'route', 'add', `${p.ip}/32`, 'dev', p.hostIf, 'scope', 'link'),
        ipn(p.netns, 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0'),
        ipn(p.netns, 'link', 'set', 'eth0', 'up'),
        ipn(p.netns, 'neigh', 'add', ROUTED_GATEWAY, 'lladdr', ROUTED_GATEWAY_MAC, 'dev', 'eth0', 'nud', 'permanent'),
        ipn(p.netns, 'route', 'add', `${ROUTED_GATEWAY}/32`, 'dev', 'eth0', 'scope', 'link'),
        ipn(p.netns, 'route', 'add', 'default', 'via', ROUTED_GATEWAY, 'dev', 'eth0'),
      );
    } else {
      cmds.push(
        ipn(nodeNs, 'link', 'set', p.hostIf, 'master', 'cni0', 'up'),
        ipn(nodeNs, ...podNeighbour(p.ip, p.netns)),
        ...bridgePodSide(p).map((args) => ipn(p.netns, ...args)),
      );
    }
    if (p.role !== 'server') {
      // Many short connections from one source: reuse TIME_WAIT ports and use the whole ephemeral range
      // (both sysctls are per network namespace).
      cmds.push(sysctl(p.netns, 'net.ipv4.tcp_tw_reuse', '1'), sysctl(p.netns, 'net.ipv4.ip_local_port_range', '1024 65535'));
    }
  }
  return cmds;
}

/** The node's address on cni0 (Flannel's bridge models): the first host address of its first pod CIDR. */
export function gatewayOf(n: NodeSpec): string {
  return formatIpv4(parseCidr(n.podCidr).network + 1);
}

/** The node's flannel.1 address (flanneld gives it the network address of the node's subnet, as a /32). */
export function vtepAddressOf(n: NodeSpec): string {
  return formatIpv4(parseCidr(n.podCidr).network);
}

/** Why `ip` cannot be a pod's fixed address on `node`, or undefined when it can. */
export function fixedAddressProblem(node: NodeSpec, ip: string, attachment: Attachment): string | undefined {
  const cidr = cidrHolding(ip, node.podCidrs);
  if (!cidr) return `is not in its node's pod CIDRs ${node.podCidrs.join(', ')}`;
  if (isVxlanAttachment(attachment) && ip === vtepAddressOf(node)) return `is the node's VXLAN (flannel.1) address, the network address of ${node.podCidr}`;
  if (attachment === 'bridge-vxlan' && ip === gatewayOf(node)) return `is the node's bridge (cni0) address, the first host address of ${node.podCidr}`;
  return undefined;
}

/**
 * A bridged pod's own side (`ip -n <pod>` arguments): its address with the prefix of the node CIDR that holds it,
 * and the default route via cni0's address (onlink when that address is in another of the node's CIDRs).
 */
export function bridgePodSide(p: PodSpec): string[][] {
  const cidr = cidrHolding(p.ip, p.node.podCidrs) ?? p.node.podCidr;
  const prefix = cidr.split('/')[1]!;
  const onlink = cidr === p.node.podCidr ? [] : ['onlink'];
  return [
    ['addr', 'add', `${p.ip}/${prefix}`, 'dev', 'eth0'],
    ['link', 'set', 'eth0', 'up'],
    gatewayNeighbour(gatewayOf(p.node), p.node.netns),
    ['route', 'add', 'default', 'via', gatewayOf(p.node), 'dev', 'eth0', ...onlink],
  ];
}

/** Routes between nodes as a routing daemon (BGP for Calico, native routing for Cilium) would install them. */
export function planRoutedNodes(t: Topology): CommandSpec[] {
  const cmds: CommandSpec[] = [];
  for (const n of t.nodes) {
    for (const m of t.nodes) {
      if (m.index !== n.index) for (const cidr of m.podCidrs) cmds.push(ipn(n.netns, 'route', 'add', cidr, 'via', m.ip, 'dev', 'eth0'));
    }
  }
  return cmds;
}

/** Deterministic MAC for a node's flannel.1, so FDB and neighbour entries can be planned before creation. */
export const vtepMac = (t: Topology, n: NodeSpec): string => stableMac(`${t.runId}/vtep/${n.index}`);

export const VXLAN_DEVICE = 'flannel.1';
export const VXLAN_VNI = 1;
export const VXLAN_PORT = 8472;

/**
 * Flannel's vxlan backend as flanneld programs it: cni0 bridge holding the node's gateway address, flannel.1
 * with the node's x.x.N.0/32, and for each remote node a route via its VTEP address (onlink), a permanent
 * neighbour entry (VTEP address -> VTEP MAC) and an FDB entry (VTEP MAC -> remote node IP).
 */
export function planFlannelNodes(t: Topology): CommandSpec[] {
  const bridges = t.nodes.flatMap((n) => [
    ipn(n.netns, 'link', 'add', 'cni0', 'address', bridgeMac(n.netns), 'type', 'bridge'),
    ipn(n.netns, 'addr', 'add', `${gatewayOf(n)}/${n.podCidr.split('/')[1]}`, 'dev', 'cni0'),
    ipn(n.netns, 'link', 'set', 'cni0', 'mtu', String(t.podMtu), 'up'),
    // The node's other pod CIDRs (a replayed cluster's), on the bridge too.
    ...n.podCidrs.slice(1).map((c) => ipn(n.netns, 'route', 'add', c, 'dev', 'cni0', 'scope', 'link')),
  ]);
  return [...bridges, ...planFlannelVxlan(t)];
}

/** flanneld's part alone: flannel.1 and, per remote node, its route, neighbour and FDB entries (Canal uses just this). */
export function planFlannelVxlan(t: Topology): CommandSpec[] {
  const cmds: CommandSpec[] = [];
  for (const n of t.nodes) {
    cmds.push(
      ipn(n.netns, 'link', 'add', VXLAN_DEVICE, 'address', vtepMac(t, n), 'type', 'vxlan', 'id', String(VXLAN_VNI), 'local', n.ip, 'dev', 'eth0', 'dstport', String(VXLAN_PORT), 'nolearning'),
      ipn(n.netns, 'addr', 'add', `${vtepAddressOf(n)}/32`, 'dev', VXLAN_DEVICE),
      ipn(n.netns, 'link', 'set', VXLAN_DEVICE, 'mtu', String(t.podMtu), 'up'),
    );
  }
  for (const n of t.nodes) {
    for (const m of t.nodes) {
      if (m.index === n.index) continue;
      const vtepIp = vtepAddressOf(m);
      cmds.push(
        ...m.podCidrs.map((c) => ipn(n.netns, 'route', 'add', c, 'via', vtepIp, 'dev', VXLAN_DEVICE, 'onlink')),
        ipn(n.netns, 'neigh', 'add', vtepIp, 'lladdr', vtepMac(t, m), 'dev', VXLAN_DEVICE, 'nud', 'permanent'),
        { argv: ['bridge', '-n', n.netns, 'fdb', 'append', vtepMac(t, m), 'dev', VXLAN_DEVICE, 'dst', m.ip, 'self', 'permanent'] },
      );
    }
  }
  return cmds;
}

/** The whole data path, before any policy: node network, CNI node devices, pods, inter-node routes. */
export function planTopologyUp(t: Topology): CommandSpec[] {
  if (t.attachment === 'routed-vxlan') return [...planNodeNetwork(t), ...planPods(t), ...planFlannelVxlan(t)];
  const nodeSide = t.attachment === 'bridge-vxlan' ? planFlannelNodes(t) : planRoutedNodes(t);
  // Flannel's bridge must exist before pods are enslaved to it; routed models need pods before routes don't matter.
  return t.attachment === 'bridge-vxlan'
    ? [...planNodeNetwork(t), ...nodeSide, ...planPods(t)]
    : [...planNodeNetwork(t), ...planPods(t), ...nodeSide];
}

/** Deleting a namespace removes its links, routes, iptables tables, ipsets and tc programs with it. */
export function planTopologyDown(t: Topology): CommandSpec[] {
  return topologyNamespaces(t)
    .reverse()
    .map((ns) => ({ argv: ['ip', 'netns', 'delete', ns], allowFailure: true, purpose: `delete namespace ${ns}` }));
}

/**
 * Runtime pod creation (issue 15, "new pod under existing policy"): a pod joins a running topology with the
 * same addressing rules. Mutates `t` (models key what they installed by the topology) and returns the pod.
 */
export function addPod(t: Topology, req: PodRequest, hostIfPrefix: 'cali' | 'lxc' | 'veth'): PodSpec {
  const node = t.nodes[req.node];
  if (!node) throw new BenchError('internal', `pod ${req.namespace}/${req.name} asks for node ${req.node}, but there are ${t.nodes.length} nodes`);
  if (t.pods.some((p) => p.name === req.name && p.namespace === req.namespace)) throw new BenchError('internal', `pod ${req.namespace}/${req.name} already exists`);
  const slot = Math.max(1, ...t.pods.filter((p) => p.node.index === node.index).map((p) => p.slot)) + 1;
  const cidr = parseCidr(node.podCidr);
  if (cidr.network + slot >= cidr.last) throw new BenchError('capacity', `node ${node.name} has no pod address left in ${node.podCidr}`);
  const suffix = `r${req.name.replace(/[^a-z0-9]/g, '').slice(-12)}`;
  const pod: PodSpec = {
    name: req.name,
    namespace: req.namespace,
    labels: { ...req.labels },
    role: req.role,
    netns: `${NAME_PREFIX}${t.runId}-${suffix}`,
    node,
    ip: formatIpv4(cidr.network + slot),
    hostIf: hostIfName(hostIfPrefix, t.runId, `${req.namespace}/${req.name}`),
    slot,
  };
  t.pods.push(pod);
  return pod;
}

/** A new pod's sandbox (what the container runtime makes before the CNI is called): its namespace, lo up. */
export function planPodSandbox(p: PodSpec): CommandSpec[] {
  return [{ argv: ['ip', 'netns', 'add', p.netns], purpose: `create namespace of pod ${p.namespace}/${p.name}` }, ipn(p.netns, 'link', 'set', 'lo', 'up')];
}

/**
 * The CNI ADD of one pod into its existing sandbox in two steps: `link` creates the veth pair (both ends down,
 * no route to the pod: nothing can reach it yet), `connect` gives it its address and routes and brings it up.
 * A model whose agent programs a new interface before traffic can reach it (Cilium's endpoint creation inside
 * cilium-cni ADD, Felix's default-deny attach) does so between the two.
 */
export function planPodAttachSteps(t: Topology, p: PodSpec): { link: CommandSpec[]; connect: CommandSpec[] } {
  const sandbox = new Set(planPodSandbox(p).map((c) => c.argv.join(' ')));
  const cmds = planPods({ ...t, pods: [p] }).filter((c) => !sandbox.has(c.argv.join(' ')));
  // As a CNI plugin does it: the pod's side (veth, address, routes) complete before the node routes to it.
  // Routing first would send traffic to a pod that cannot answer ARP yet; the node would then retry ARP only
  // after its 1 s retransmit timer, and that artifact would be measured as the new pod's enforcement delay.
  const [create, ...rest] = cmds;
  const podSide = (c: CommandSpec) => c.argv[0] === 'ip' && c.argv[2] === p.netns || c.netns === p.netns;
  return { link: [create!], connect: [...rest.filter(podSide), ...rest.filter((c) => !podSide(c))] };
}

/** The CNI ADD of one pod into its existing sandbox: the same commands planPods gives it, minus the sandbox. */
export function planPodAttach(t: Topology, p: PodSpec): CommandSpec[] {
  const { link, connect } = planPodAttachSteps(t, p);
  return [...link, ...connect];
}

/**
 * Removes a runtime pod again: its veth pair (with it the node's route to the pod), its namespace and its entry
 * in the topology. The veth goes first, explicitly: a deleted namespace's devices are torn down later by the
 * kernel's netns cleanup, and the next pod, which gets the same address, would find the old route still there.
 */
export function removePod(t: Topology, p: PodSpec): CommandSpec[] {
  const i = t.pods.indexOf(p);
  if (i >= 0) t.pods.splice(i, 1);
  return [
    { ...ipn(p.node.netns, 'link', 'delete', p.hostIf), allowFailure: true, purpose: `delete the veth of pod ${p.namespace}/${p.name}` },
    { argv: ['ip', 'netns', 'delete', p.netns], allowFailure: true, purpose: `delete namespace of pod ${p.namespace}/${p.name}` },
  ];
}
