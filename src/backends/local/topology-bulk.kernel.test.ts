// The batched bring-up (topology-bulk.ts) leaves the kernel as the reference plan (planTopologyUp, one command a
// process) does: the same links with the same details, addresses, routes, permanent neighbours, FDB entries, sysctls
// and receive steering in every namespace. Built one way, read, torn down, built the other way under the same run
// id, read again. Only what the kernel draws by chance is left out of the comparison: MACs no command sets (and what
// derives from them: IPv6 link-local addresses, bridge ids), interface indexes and namespace ids, timers, carrier.
import { afterEach, describe, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { ExecRunner, type CommandSpec } from '../../exec/runner.js';
import { newRunId } from '../../identity/run-id.js';
import { cpuMask, planRpsPinning } from '../../probe/placement.js';
import { planDeleteNamespaces } from './gc.js';
import { itKernel, namespacesOfRun } from './test-support/kernel.js';
import { planKernelWrites, planTopologyUpBulk, type KernelWrite } from './topology-bulk.js';
import { planTopology, planTopologyUp, topologyNamespaces, type Attachment, type Topology, type TopologyOptions } from './topology.js';
import { LocalDataPlane } from './plane.js';
import { localModel } from './models.js';
import { existsSync } from 'node:fs';
import { BPF_PIN_ROOT } from './gc.js';

const built: Topology[] = [];
afterEach(async () => {
  for (const t of built.splice(0)) await new ExecRunner().run(planDeleteNamespaces(topologyNamespaces(t).reverse()));
});

/** Every veth end of the topology, where it lives (what the local backend steers to the measuring CPU). */
const veths = (t: Topology) => [
  ...t.nodes.flatMap((n) => [{ netns: n.netns, dev: 'eth0' }, { netns: t.switchNs, dev: n.switchPort }]),
  ...t.pods.flatMap((p) => [{ netns: p.netns, dev: 'eth0' }, { netns: p.node.netns, dev: p.hostIf }]),
];

async function buildReference(t: Topology): Promise<void> {
  const runner = new ExecRunner();
  for (const c of [...planTopologyUp(t), ...planRpsPinning(veths(t), 0)]) await runner.run(c);
}

async function buildBatched(t: Topology): Promise<number> {
  const runner = new ExecRunner();
  const plan = planTopologyUpBulk(t);
  const rps: KernelWrite[] = veths(t).map((l) => ({ netns: l.netns, path: `/sys/class/net/${l.dev}/queues/rx-0/rps_cpus`, value: cpuMask(0) }));
  const cmds: CommandSpec[] = [...plan.stages.flat(), ...planKernelWrites([...plan.writes, ...rps])];
  for (const c of cmds) await runner.run(c);
  return cmds.length;
}

const json = (args: string[]): unknown[] => JSON.parse(execFileSync(args[0]!, args.slice(1), { encoding: 'utf8' }) || '[]') as unknown[];
const MAC = /\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b/g;

/** What the kernel holds in one namespace, without what it draws by chance (see the top of the file). */
function stateOf(ns: string, planned: Set<string>): Record<string, unknown> {
  // Bridge ids are the lowest port MAC, which the kernel draws (and prints without leading zeros).
  const drop = new Set(['ifindex', 'link_index', 'link_netnsid', 'operstate', 'stats64', 'altnames', 'bridge_id', 'root_id', 'designated_root']);
  const clean = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(clean).filter((x) => x !== 'LOWER_UP' && x !== 'NO-CARRIER');
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !drop.has(k) && !/timer/.test(k)).map(([k, x]) => [k, clean(x)]));
    return typeof v === 'string' ? v.replace(MAC, (m) => (planned.has(m) ? m : '<random mac>')) : v;
  };
  const linkLocal = (a: { family?: string; scope?: string }) => a.family === 'inet6' && a.scope === 'link';
  const sorted = (xs: unknown[]) => xs.map((x) => JSON.stringify(clean(x))).sort();
  const addrs = json(['ip', '-n', ns, '-j', 'addr', 'show']) as Array<{ ifname: string; addr_info: Array<{ family?: string; scope?: string }> }>;
  // Both families; a link-local address's own route comes and goes with the address (DAD).
  const routes = (json(['ip', '-n', ns, '-d', '-j', 'route', 'show', 'table', 'all']) as Array<{ dst?: string; type?: string }>).filter((r) => !(r.type === 'local' && r.dst?.startsWith('fe80:')));
  const fdb = (json(['bridge', '-n', ns, '-j', 'fdb', 'show']) as Array<{ state?: string; mac?: string }>).filter((e) => e.state === 'permanent' && e.mac && planned.has(e.mac));
  const sysctls = execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-a', '-r', String.raw`^net\.ipv4\.(ip_forward|tcp_tw_reuse|ip_local_port_range|conf\.[^.]+\.(proxy_arp|forwarding))$`], { encoding: 'utf8' });
  const rps = execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', 'for f in /sys/class/net/*/queues/rx-0/rps_cpus; do echo "$f $(cat "$f")"; done'], { encoding: 'utf8' });
  return {
    links: sorted(json(['ip', '-n', ns, '-d', '-j', 'link', 'show'])),
    addrs: sorted(addrs.map((a) => ({ ifname: a.ifname, addr_info: a.addr_info.filter((x) => !linkLocal(x)) }))),
    routes: sorted(routes),
    neighbours: sorted(json(['ip', '-n', ns, '-j', 'neigh', 'show', 'nud', 'permanent'])),
    fdb: sorted(fdb),
    sysctls: sysctls.split('\n').filter(Boolean).sort(),
    rps: rps.split('\n').filter(Boolean).sort(),
  };
}

/** Every namespace's state, by namespace. */
function kernelState(t: Topology): Record<string, unknown> {
  // MACs a command of the reference plan sets: compared as they are; every other is drawn by the kernel.
  const text = planTopologyUp(t).map((c) => `${c.argv.join(' ')} ${c.input ?? ''}`).join('\n');
  const planned = new Set(text.match(MAC) ?? []);
  return Object.fromEntries(topologyNamespaces(t).map((ns) => [ns, stateOf(ns, planned)]));
}

async function compare(o: Omit<TopologyOptions, 'runId' | 'hostIfPrefix'>) {
  const t = planTopology({ ...o, runId: newRunId(), hostIfPrefix: o.attachment === 'bridge-vxlan' ? 'veth' : 'cali' });
  built.push(t);
  await buildReference(t);
  const reference = kernelState(t);
  await new ExecRunner().run(planDeleteNamespaces(topologyNamespaces(t).reverse()));
  expect(namespacesOfRun(t.runId)).toEqual([]);
  const processes = await buildBatched(t);
  const batched = kernelState(t);
  return { t, reference, batched, processes };
}

const attachments: Attachment[] = ['routed', 'bridge-vxlan', 'routed-vxlan'];

describe('the batched bring-up leaves the kernel as the reference plan does', () => {
  for (const attachment of attachments) {
    itKernel(`${attachment}: 3 nodes, a client and 3 servers, every namespace the same in far fewer processes`, async () => {
      const { t, reference, batched, processes } = await compare({ attachment, nodes: 3, servers: 3, placement: 'cross-node' });
      expect(Object.keys(batched)).toHaveLength(t.nodes.length + t.pods.length + 1);
      // The comparison sees what matters: pods' addresses, node routes, the client's sysctls, steering.
      const client = t.pods.find((p) => p.role === 'client')!;
      expect(JSON.stringify(reference[client.netns])).toContain(client.ip);
      expect(JSON.stringify(reference[client.netns])).toContain('net.ipv4.ip_local_port_range = 1024\\t65535');
      expect(JSON.stringify(reference[client.node.netns])).toContain(`queues/rx-0/rps_cpus ${cpuMask(0)}`);
      expect(batched).toEqual(reference);
      expect(processes * 3).toBeLessThan(planTopologyUp(t).length + veths(t).length);
    });
  }

  itKernel('Flannel with a node of two pod CIDRs (a replayed cluster): the same, onlink gateway included', async () => {
    const { reference, batched } = await compare({
      attachment: 'bridge-vxlan',
      nodes: 2,
      placement: 'cross-node',
      podCidrs: [['10.42.0.0/24', '192.168.5.0/26'], ['192.168.5.64/26']],
      pods: [
        { name: 'a', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '192.168.5.3' },
        { name: 'b', namespace: 'ns', labels: {}, role: 'client', node: 0, ip: '10.42.0.9' },
        { name: 'c', namespace: 'ns', labels: {}, role: 'grid', node: 1, ip: '192.168.5.70' },
      ],
    });
    expect(batched).toEqual(reference);
  });

  itKernel('a batch that fails halfway (its first lines done): bring-up fails with its error, teardown leaves nothing', async () => {
    const t = planTopology({ runId: newRunId(), attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'lxc', servers: 2 });
    built.push(t);
    const exec = new ExecRunner();
    const server1 = t.pods.find((p) => p.name === 'server-1')!;
    // The second server's own batch gets a line the kernel refuses, after its address is set: stage 3 fails midway
    // while the other batches of that stage run beside it.
    const runner = Object.assign(Object.create(exec) as ExecRunner, {
      run: (spec: CommandSpec) => exec.run(spec.argv.includes(server1.netns) && spec.input ? { ...spec, input: spec.input.replace('link set eth0 up\n', 'link set eth0 up\nlink set nosuchdev up\n') } : spec),
    });
    const plane = new LocalDataPlane({ model: localModel('cilium'), topology: t, runner, cleanupRunner: exec });
    await expect(plane.up()).rejects.toThrow(/pod bench-server\/server-1.*ip -n \S+ -batch - failed[\s\S]*nosuchdev/);
    expect(namespacesOfRun(t.runId)).toHaveLength(topologyNamespaces(t).length);
    await plane.down();
    expect(namespacesOfRun(t.runId)).toEqual([]);
    expect(existsSync(`${BPF_PIN_ROOT}/cb-${t.runId}`)).toBe(false);
    built.splice(built.indexOf(t), 1);
  });
});
