// The topology in few processes: the same links, addresses, routes and sysctls as planTopologyUp (./topology.ts),
// batched per namespace, for every run whatever its size. A benchmark run (switch, 2 nodes, 2 pods) takes about 10
// processes instead of about 45; a replayed cluster of 500 endpoints about 1000 instead of about 8500.
//
//   stage 1  one `ip -batch -`: every namespace of the run
//   stage 2  one `ip -n <node> -batch -` a node: lo, its uplink veth, the CNI's node devices (cni0, flannel.1 and
//            their routes, neighbours), every pod's veth pair (created here, its peer moved into the pod), the
//            node's routes to its pods and to the other nodes; the switch's bridge beside them
//   stage 3  the switch's ports on its bridge, each pod's own side (one `ip -n <pod> -batch -`), FDB entries
//            (one `bridge -n <node> -batch -` a node)
//   then     the sysctls, with the caller's other kernel settings, one process a namespace (planKernelWrites)
//
// iproute2's ip(8): `-n NETNS` applies to the whole batch; `-batch -` reads one command a line from stdin and stops
// at the first failure (exit code non-zero), so a batch is one planned command that fails as its commands would.
// Pure.
import type { CommandSpec } from '../../exec/runner.js';
import { BenchError } from '../../errors.js';
import {
  bridgePodSide,
  isRoutedAttachment,
  planFlannelNodes,
  planFlannelVxlan,
  planNodeNetwork,
  planRoutedNodes,
  ROUTED_GATEWAY,
  ROUTED_GATEWAY_MAC,
  topologyNamespaces,
  type PodSpec,
  type Topology,
} from './topology.js';
import { podMac, podNeighbour } from './bridge-neighbours.js';

/** A value written to a file of a namespace's own /proc/sys or /sys (a sysctl, a queue's receive steering). */
export interface KernelWrite {
  netns: string;
  path: string;
  value: string;
}

export interface BatchedTopologyPlan {
  /** In order; the commands of one stage are independent of each other, so they may run several at a time. */
  stages: CommandSpec[][];
  /** The topology's sysctls, to be written once every link exists (planKernelWrites, with the caller's others). */
  writes: KernelWrite[];
}

/** `ip [-n netns] -batch -` (or `bridge`) with one command a line on stdin. */
const batch = (netns: string | undefined, lines: string[][], purpose: string, tool: 'ip' | 'bridge' = 'ip'): CommandSpec => ({
  argv: [tool, ...(netns ? ['-n', netns] : []), '-batch', '-'],
  input: `${lines.map((l) => l.join(' ')).join('\n')}\n`,
  purpose,
});

/** A sysctl as the file it is under /proc/sys (`net.ipv4.conf.eth0.proxy_arp` is net/ipv4/conf/eth0/proxy_arp). */
export const sysctlWrite = (netns: string, key: string, value: string): KernelWrite => ({ netns, path: `/proc/sys/${key.replace(/\./g, '/')}`, value });

/**
 * The writes, one process a namespace (in the order namespaces first appear): `sh` reads "path value" lines and
 * writes each value, stopping at the first that fails. What `sysctl -w` does, without a process per key.
 */
export function planKernelWrites(writes: readonly KernelWrite[]): CommandSpec[] {
  const byNs = new Map<string, KernelWrite[]>();
  for (const w of writes) {
    if (/\s/.test(w.path) || /\n/.test(w.value)) throw new BenchError('internal', `kernel setting ${w.path}=${w.value}: a path without spaces and a one-line value`);
    byNs.set(w.netns, [...(byNs.get(w.netns) ?? []), w]);
  }
  return [...byNs].map(([netns, ws]) => ({
    argv: ['sh', '-c', 'while read -r f v; do printf %s "$v" > "$f" || exit 1; done'],
    netns,
    input: ws.map((w) => `${w.path} ${w.value}\n`).join(''),
    purpose: `kernel settings of ${netns}`,
  }));
}

/**
 * The reference planners' commands (planNodeNetwork, planFlannelNodes, planRoutedNodes), sorted into per-namespace
 * lines for `ip` and `bridge` and kernel writes; `ip netns add` is left out (stage 1 creates every namespace).
 */
function sortReference(cmds: readonly CommandSpec[]) {
  const ip = new Map<string, string[][]>();
  const bridge = new Map<string, string[][]>();
  const writes: KernelWrite[] = [];
  const add = (m: Map<string, string[][]>, ns: string, line: string[]) => m.set(ns, [...(m.get(ns) ?? []), line]);
  for (const c of cmds) {
    const [tool, flag, ns, ...rest] = c.argv;
    if (tool === 'ip' && flag === 'netns' && ns === 'add') continue;
    if ((tool === 'ip' || tool === 'bridge') && flag === '-n' && ns && !c.netns) add(tool === 'ip' ? ip : bridge, ns, rest);
    else if (tool === 'sysctl' && c.netns && c.argv.slice(1, 3).join(' ') === '-q -w') {
      for (const kv of c.argv.slice(3)) writes.push(sysctlWrite(c.netns, kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)));
    } else throw new BenchError('internal', `the batched bring-up cannot place ${c.argv.join(' ')}`);
  }
  return { ip, bridge, writes };
}

/** A pod's own side, in its namespace: lo, its address, eth0 up, its gateway, its routes. */
function podSide(t: Topology, p: PodSpec): string[][] {
  if (!isRoutedAttachment(t.attachment)) return [['link', 'set', 'lo', 'up'], ...bridgePodSide(p)];
  return [
    ['link', 'set', 'lo', 'up'],
    ['addr', 'add', `${p.ip}/32`, 'dev', 'eth0'],
    ['link', 'set', 'eth0', 'up'],
    ['neigh', 'add', ROUTED_GATEWAY, 'lladdr', ROUTED_GATEWAY_MAC, 'dev', 'eth0', 'nud', 'permanent'],
    ['route', 'add', `${ROUTED_GATEWAY}/32`, 'dev', 'eth0', 'scope', 'link'],
    ['route', 'add', 'default', 'via', ROUTED_GATEWAY, 'dev', 'eth0'],
  ];
}

/** A pod's veth pair as its node's batch creates it, and the node side of it (what planPods does from the pod's side). */
function podNodeSide(t: Topology, p: PodSpec): string[][] {
  const mtu = String(t.podMtu);
  if (isRoutedAttachment(t.attachment)) {
    return [
      ['link', 'add', p.hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', p.netns],
      ['link', 'set', p.hostIf, 'address', ROUTED_GATEWAY_MAC],
      ['link', 'set', p.hostIf, 'up'],
      // The pod's side is not up yet: the route is installed on a link without carrier, and holds once it has one.
      ['route', 'add', `${p.ip}/32`, 'dev', p.hostIf, 'scope', 'link'],
    ];
  }
  return [
    ['link', 'add', p.hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'address', podMac(p.netns), 'mtu', mtu, 'netns', p.netns],
    ['link', 'set', p.hostIf, 'master', 'cni0', 'up'],
    podNeighbour(p.ip, p.netns),
  ];
}

/** The whole data path, before any policy, batched per namespace (planTopologyUp's kernel state, in few processes). */
export function planTopologyUpBulk(t: Topology): BatchedTopologyPlan {
  const cni = t.attachment === 'bridge-vxlan' ? planFlannelNodes(t) : t.attachment === 'routed-vxlan' ? planFlannelVxlan(t) : planRoutedNodes(t);
  const net = sortReference(planNodeNetwork(t));
  const dev = sortReference(cni);
  const names = topologyNamespaces(t);
  const stage1 = [batch(undefined, names.map((ns) => ['netns', 'add', ns]), `create the ${names.length} namespaces of the run`)];
  const switchLines = net.ip.get(t.switchNs) ?? [];
  // The bridge before the nodes' uplinks are created; the ports joined to it once they exist (stage 3).
  const isPort = (l: string[]) => t.nodes.some((n) => l[2] === n.switchPort);
  const stage2 = [batch(t.switchNs, switchLines.filter((l) => !isPort(l)), 'switch namespace: the node network bridge')];
  const writes = [...net.writes, ...dev.writes];
  for (const n of t.nodes) {
    const on = t.pods.filter((p) => p.node.index === n.index);
    // Uplink first, then the CNI's node devices and routes (Flannel's cni0 before the pods join it), then the pods' veths.
    const lines = [...(net.ip.get(n.netns) ?? []), ...(dev.ip.get(n.netns) ?? []), ...on.flatMap((p) => podNodeSide(t, p))];
    stage2.push(batch(n.netns, lines, `${n.name}: uplink, node devices and routes, the veths of its ${on.length === 1 ? "pod" : `${on.length} pods`}`));
    if (isRoutedAttachment(t.attachment)) writes.push(...on.map((p) => sysctlWrite(n.netns, `net.ipv4.conf.${p.hostIf}.proxy_arp`, '1')));
  }
  const stage3 = [
    batch(t.switchNs, switchLines.filter(isPort), 'switch namespace: the nodes join the bridge'),
    ...t.pods.map((p) => batch(p.netns, podSide(t, p), `pod ${p.namespace}/${p.name}: address, gateway, routes`)),
    ...[...dev.bridge].map(([ns, lines]) => batch(ns, lines, `${t.nodes.find((n) => n.netns === ns)?.name ?? ns}: forwarding entries of flannel.1`, 'bridge')),
  ];
  // Many short connections from one source: reuse TIME_WAIT ports and the whole ephemeral range (as planPods).
  for (const p of t.pods.filter((x) => x.role !== 'server')) writes.push(sysctlWrite(p.netns, 'net.ipv4.tcp_tw_reuse', '1'), sysctlWrite(p.netns, 'net.ipv4.ip_local_port_range', '1024 65535'));
  return { stages: [stage1, stage2, stage3], writes };
}
