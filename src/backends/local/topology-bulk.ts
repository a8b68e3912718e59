// The topology of many pods in few processes: the same links, addresses, routes and sysctls as planTopologyUp
// (./topology.ts), batched. Every pod namespace is created by one `ip -batch`, every node's side of its pods (veth
// pairs, gateway MAC, up, routes) by one `ip -n <node> -batch` each, each pod's own side by one `ip -n <pod> -batch`
// and one sysctl. A replayed cluster of 500 endpoints takes about 1000 processes instead of about 8500. Pure.
import type { CommandSpec } from '../../exec/runner.js';
import {
  bridgePodSide,
  isRoutedAttachment,
  planFlannelNodes,
  planFlannelVxlan,
  planNodeNetwork,
  planRoutedNodes,
  ROUTED_GATEWAY,
  ROUTED_GATEWAY_MAC,
  type PodSpec,
  type Topology,
} from './topology.js';
import { podMac, podNeighbour } from './bridge-neighbours.js';

export interface BulkTopologyPlan {
  /** In order, before the pods' own commands. */
  before: CommandSpec[];
  /** Each pod's own commands: independent of every other pod's, so they may run several at a time. */
  pods: CommandSpec[][];
  /** In order, after every pod's. */
  after: CommandSpec[];
}

/** `ip [-n netns] -batch -` with one command a line on stdin. */
const batch = (netns: string | undefined, lines: string[][], purpose: string): CommandSpec => ({
  argv: ['ip', ...(netns ? ['-n', netns] : []), '-batch', '-'],
  input: `${lines.map((l) => l.join(' ')).join('\n')}\n`,
  purpose,
});

/** The client sysctls planPods sets in every pod that opens connections. */
const CLIENT_SYSCTLS = ['net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65535'];

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

/** The whole data path, before any policy, batched (what planTopologyUp does, in about two processes a pod). */
export function planTopologyUpBulk(t: Topology): BulkTopologyPlan {
  const routed = isRoutedAttachment(t.attachment);
  const before: CommandSpec[] = [...planNodeNetwork(t), ...(t.attachment === 'bridge-vxlan' ? planFlannelNodes(t) : [])];
  if (t.pods.length) before.push(batch(undefined, t.pods.map((p) => ['netns', 'add', p.netns]), `create the namespaces of ${t.pods.length} pods`));
  const after: CommandSpec[] = [];
  for (const n of t.nodes) {
    const on = t.pods.filter((p) => p.node.index === n.index);
    if (!on.length) continue;
    const mtu = String(t.podMtu);
    before.push(
      batch(
        n.netns,
        on.flatMap((p) => [
          ['link', 'add', p.hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', ...(routed ? [] : ['address', podMac(p.netns)]), 'mtu', mtu, 'netns', p.netns],
          ...(routed ? [['link', 'set', p.hostIf, 'address', ROUTED_GATEWAY_MAC], ['link', 'set', p.hostIf, 'up']] : [['link', 'set', p.hostIf, 'master', 'cni0', 'up'], podNeighbour(p.ip, p.netns)]),
        ]),
        `create the veth pairs of the ${on.length} pods on ${n.name}`,
      ),
    );
    if (routed) {
      before.push({ argv: ['sysctl', '-q', '-w', ...on.map((p) => `net.ipv4.conf.${p.hostIf}.proxy_arp=1`)], netns: n.netns });
      // As a CNI plugin does it: the pod's side complete before the node routes to it.
      after.push(batch(n.netns, on.map((p) => ['route', 'add', `${p.ip}/32`, 'dev', p.hostIf, 'scope', 'link']), `route the ${on.length} pods of ${n.name}`));
    }
  }
  const pods = t.pods.map((p) => [
    batch(p.netns, podSide(t, p), `address and routes of pod ${p.namespace}/${p.name}`),
    ...(p.role !== 'server' ? [{ argv: ['sysctl', '-q', '-w', ...CLIENT_SYSCTLS], netns: p.netns }] : []),
  ]);
  if (t.attachment === 'routed') after.push(...planRoutedNodes(t));
  if (t.attachment === 'routed-vxlan') after.push(...planFlannelVxlan(t));
  return { before, pods, after };
}
