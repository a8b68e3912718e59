import { describe, expect, it } from 'vitest';
import { planTopology, planTopologyUp, topologyNamespaces, type PodRequest } from './topology.js';
import { planKernelWrites, planTopologyUpBulk, sysctlWrite } from './topology-bulk.js';
import { bridgeMac, podMac } from './bridge-neighbours.js';
import { DryRunRunner } from '../../exec/runner.js';
import { LocalDataPlane } from './plane.js';
import { localModel } from './models.js';

const requests = (n: number, nodes: number): PodRequest[] => Array.from({ length: n }, (_, i) => ({ name: `p-${i}`, namespace: 'ns', labels: {}, role: 'grid', node: i % nodes }));
const argv = (c: { argv: string[]; netns?: string; input?: string }) => `${c.netns ? `[${c.netns}] ` : ''}${c.argv.join(' ')}${c.input ? `\n${c.input}` : ''}`;

describe('batched bring-up of many pods', () => {
  it('500 routed pods on 4 nodes take about two processes a pod, not fifteen', () => {
    const t = planTopology({ runId: 'bulk1', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali', nodes: 4, pods: requests(500, 4) });
    const bulk = planTopologyUpBulk(t);
    const processes = bulk.stages.flat().length + planKernelWrites(bulk.writes).length;
    expect(planTopologyUp(t).length).toBeGreaterThan(7000);
    expect(processes).toBeLessThan(1100);
    // Every pod's own batch gives it its address, gateway and default route; its node's batch routes to it.
    const p = t.pods[137]!;
    const own = bulk.stages[2]!.find((c) => c.argv.includes(p.netns))!;
    expect(argv(own)).toBe(`ip -n ${p.netns} -batch -\nlink set lo up\naddr add ${p.ip}/32 dev eth0\nlink set eth0 up\nneigh add 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent\nroute add 169.254.1.1/32 dev eth0 scope link\nroute add default via 169.254.1.1 dev eth0\n`);
    const node = bulk.stages[1]!.find((c) => c.argv.includes(p.node.netns))!;
    expect(node.input).toContain(`link add ${p.hostIf} mtu 1500 type veth peer name eth0 mtu 1500 netns ${p.netns}\nlink set ${p.hostIf} address ee:ee:ee:ee:ee:ee\nlink set ${p.hostIf} up\nroute add ${p.ip}/32 dev ${p.hostIf} scope link\n`);
    expect(bulk.writes).toContainEqual({ netns: p.node.netns, path: `/proc/sys/net/ipv4/conf/${p.hostIf}/proxy_arp`, value: '1' });
    // Every namespace in one process, first.
    expect(bulk.stages[0]).toHaveLength(1);
    expect(bulk.stages[0]![0]!.input!.split('\n').filter(Boolean)).toHaveLength(4 + 500 + 1);
  });

  it('the benchmark (switch, 2 nodes, client and server) is built in 10 processes where the reference plan takes 45', () => {
    for (const attachment of ['routed', 'bridge-vxlan', 'routed-vxlan'] as const) {
      const t = planTopology({ runId: 'bulk4', attachment, placement: 'cross-node', hostIfPrefix: 'cali' });
      const bulk = planTopologyUpBulk(t);
      const processes = bulk.stages.flat().length + planKernelWrites(bulk.writes).length;
      expect(processes).toBeLessThanOrEqual(attachment === 'routed' ? 10 : 12);
      expect(planTopologyUp(t).length).toBeGreaterThanOrEqual(45);
      // The same commands in their batches: every `ip -n NS ARGS` of the reference is a line of a batch for NS, or
      // (a pod's veth, created from its node's side) its node's.
      const lines = new Set(bulk.stages.flat().flatMap((c) => (c.input ?? '').split('\n').filter(Boolean).map((l) => `${c.argv[0]} ${c.argv[2] ?? ''} ${l}`)));
      for (const c of planTopologyUp(t)) {
        if (c.argv[1] !== '-n' || c.argv[3] === 'link' && c.argv[4] === 'add' && c.argv[5] === 'eth0' && t.pods.some((p) => p.netns === c.argv[2])) continue;
        expect(lines, c.argv.join(' ')).toContain(`${c.argv[0]} ${c.argv[2]} ${c.argv.slice(3).join(' ')}`);
      }
    }
  });

  it('kernel settings: one process a namespace that reads "path value" lines; a sysctl is its file under /proc/sys', () => {
    expect(sysctlWrite('cb-x-n0', 'net.ipv4.conf.cali1.proxy_arp', '1')).toEqual({ netns: 'cb-x-n0', path: '/proc/sys/net/ipv4/conf/cali1/proxy_arp', value: '1' });
    const cmds = planKernelWrites([
      sysctlWrite('cb-x-c', 'net.ipv4.ip_local_port_range', '1024 65535'),
      { netns: 'cb-x-n0', path: '/sys/class/net/eth0/queues/rx-0/rps_cpus', value: '2' },
      sysctlWrite('cb-x-c', 'net.ipv4.tcp_tw_reuse', '1'),
    ]);
    expect(cmds.map((c) => [c.netns, c.input])).toEqual([
      ['cb-x-c', '/proc/sys/net/ipv4/ip_local_port_range 1024 65535\n/proc/sys/net/ipv4/tcp_tw_reuse 1\n'],
      ['cb-x-n0', '/sys/class/net/eth0/queues/rx-0/rps_cpus 2\n'],
    ]);
    expect(() => planKernelWrites([{ netns: 'cb-x-c', path: '/proc/sys/a b', value: '1' }])).toThrow(/without spaces/);
  });

  it('Flannel with a node of two pod CIDRs: cni0 holds the first, routes the second; a pod there reaches its gateway onlink', () => {
    const t = planTopology({
      runId: 'bulk2',
      attachment: 'bridge-vxlan',
      placement: 'cross-node',
      hostIfPrefix: 'veth',
      nodes: 2,
      podCidrs: [['10.42.0.0/24', '192.168.5.0/26'], ['192.168.5.64/26']],
      pods: [
        { name: 'a', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '192.168.5.3' },
        { name: 'b', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '10.42.0.9' },
        { name: 'c', namespace: 'ns', labels: {}, role: 'grid', node: 1, ip: '192.168.5.70' },
      ],
    });
    const plan = planTopologyUp(t).map(argv);
    expect(plan).toContain(`ip -n cb-bulk2-n0 addr add 10.42.0.1/24 dev cni0`);
    expect(plan).toContain(`ip -n cb-bulk2-n0 route add 192.168.5.0/26 dev cni0 scope link`);
    expect(plan).toContain(`ip -n cb-bulk2-p0 addr add 192.168.5.3/26 dev eth0`);
    expect(plan).toContain(`ip -n cb-bulk2-p0 route add default via 10.42.0.1 dev eth0 onlink`);
    expect(plan).toContain(`ip -n cb-bulk2-p1 route add default via 10.42.0.1 dev eth0`);
    expect(plan).toContain(`ip -n cb-bulk2-n1 addr add 192.168.5.64/32 dev flannel.1`);
    expect(plan).toContain(`ip -n cb-bulk2-n0 route add 192.168.5.64/26 via 192.168.5.64 dev flannel.1 onlink`);
    expect(plan).toContain(`ip -n cb-bulk2-n1 route add 192.168.5.0/26 via 10.42.0.0 dev flannel.1 onlink`);
    // Permanent neighbours on the pod network (./bridge-neighbours.ts), the same in the batched bring-up.
    const gw = `neigh add 10.42.0.1 lladdr ${bridgeMac('cb-bulk2-n0')} dev eth0 nud permanent`;
    const pod0 = `neigh add 192.168.5.3 lladdr ${podMac('cb-bulk2-p0')} dev cni0 nud permanent`;
    expect(plan).toContain(`ip -n cb-bulk2-n0 link add cni0 address ${bridgeMac('cb-bulk2-n0')} type bridge`);
    expect(plan).toContain(`ip -n cb-bulk2-p0 ${gw}`);
    expect(plan).toContain(`ip -n cb-bulk2-n0 ${pod0}`);
    const bulk = planTopologyUpBulk(t);
    expect(bulk.stages[2]!.some((c) => c.argv.includes('cb-bulk2-p0') && c.input?.includes(gw))).toBe(true);
    expect(bulk.stages[1]!.some((c) => c.argv.join(' ') === 'ip -n cb-bulk2-n0 -batch -' && c.input?.includes(pod0) && c.input.includes(`eth0 address ${podMac('cb-bulk2-p0')}`))).toBe(true);
    expect(new Set(t.pods.map((p) => podMac(p.netns))).size).toBe(3);
    // A pod on the node's bridge or VXLAN address is refused.
    expect(() => planTopology({ runId: 'bulk3', attachment: 'bridge-vxlan', placement: 'cross-node', hostIfPrefix: 'veth', podCidrs: [['10.42.0.0/24']], pods: [{ name: 'a', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '10.42.0.1' }] })).toThrow(/bridge \(cni0\) address/);
    expect(() => planTopology({ runId: 'bulk3', attachment: 'routed-vxlan', placement: 'cross-node', hostIfPrefix: 'cali', podCidrs: [['10.42.0.0/24']], pods: [{ name: 'a', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '10.42.0.0' }] })).toThrow(/VXLAN \(flannel.1\) address/);
  });

  it('a benchmark run brings its topology up with the batches, and tears it down in one (bring-up used one process a command below 32 pods)', async () => {
    const t = planTopology({ runId: 'bulk5', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali' });
    const runner = new DryRunRunner();
    const plane = new LocalDataPlane({ model: localModel('none'), topology: t, runner, cleanupRunner: runner });
    const steer = { netns: t.switchNs, path: `/sys/class/net/${t.nodes[0]!.switchPort}/queues/rx-0/rps_cpus`, value: '2' };
    await plane.up({ writes: [steer] });
    expect(runner.log.length).toBeLessThanOrEqual(11);
    expect(runner.log.filter((c) => c.argv.includes('sysctl'))).toEqual([]);
    expect(runner.log.at(-1)).toMatchObject({ argv: ['ip', 'netns', 'exec', t.switchNs, 'sh', '-c', expect.any(String)], input: `${steer.path} 2\n` });
    const before = runner.log.length;
    await plane.down();
    expect(runner.log.slice(before).map((c) => [c.argv.join(' '), c.input])).toEqual([['ip -force -batch -', topologyNamespaces(t).reverse().map((ns) => `netns delete ${ns}\n`).join('')]]);
  });
});
