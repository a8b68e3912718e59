import { describe, expect, it } from 'vitest';
import { planTopology, planTopologyUp, type PodRequest } from './topology.js';
import { planTopologyUpBulk } from './topology-bulk.js';
import { bridgeMac, podMac } from './bridge-neighbours.js';

const requests = (n: number, nodes: number): PodRequest[] => Array.from({ length: n }, (_, i) => ({ name: `p-${i}`, namespace: 'ns', labels: {}, role: 'grid', node: i % nodes }));
const argv = (c: { argv: string[]; netns?: string; input?: string }) => `${c.netns ? `[${c.netns}] ` : ''}${c.argv.join(' ')}${c.input ? `\n${c.input}` : ''}`;

describe('batched bring-up of many pods', () => {
  it('500 routed pods on 4 nodes take about two processes a pod, not fifteen', () => {
    const t = planTopology({ runId: 'bulk1', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali', nodes: 4, pods: requests(500, 4) });
    const bulk = planTopologyUpBulk(t);
    const processes = bulk.before.length + bulk.pods.flat().length + bulk.after.length;
    expect(planTopologyUp(t).length).toBeGreaterThan(7000);
    expect(processes).toBeLessThan(1100);
    expect(bulk.pods).toHaveLength(500);
    // Every pod's own batch gives it its address, gateway and default route; its node's batch routes to it.
    const p = t.pods[137]!;
    expect(argv(bulk.pods[137]![0]!)).toBe(`ip -n ${p.netns} -batch -\nlink set lo up\naddr add ${p.ip}/32 dev eth0\nlink set eth0 up\nneigh add 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent\nroute add 169.254.1.1/32 dev eth0 scope link\nroute add default via 169.254.1.1 dev eth0\n`);
    const nodeRoutes = bulk.after.find((c) => c.argv.includes(p.node.netns) && c.input?.includes('route add'))!;
    expect(nodeRoutes.input).toContain(`route add ${p.ip}/32 dev ${p.hostIf} scope link\n`);
    const veths = bulk.before.find((c) => c.argv.includes(p.node.netns) && c.input?.includes('link add'))!;
    expect(veths.input).toContain(`link add ${p.hostIf} mtu 1500 type veth peer name eth0 mtu 1500 netns ${p.netns}\nlink set ${p.hostIf} address ee:ee:ee:ee:ee:ee\nlink set ${p.hostIf} up\n`);
    expect(bulk.before.some((c) => c.argv.includes(`net.ipv4.conf.${p.hostIf}.proxy_arp=1`) && c.netns === p.node.netns)).toBe(true);
    // Every namespace in one process.
    expect(bulk.before.filter((c) => c.input?.startsWith('netns add'))).toHaveLength(1);
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
    expect(bulk.pods[0]!.some((c) => c.input?.includes(gw))).toBe(true);
    expect(bulk.before.some((c) => c.argv.join(' ') === 'ip -n cb-bulk2-n0 -batch -' && c.input?.includes(pod0) && c.input.includes(`eth0 address ${podMac('cb-bulk2-p0')}`))).toBe(true);
    expect(new Set(t.pods.map((p) => podMac(p.netns))).size).toBe(3);
    // A pod on the node's bridge or VXLAN address is refused.
    expect(() => planTopology({ runId: 'bulk3', attachment: 'bridge-vxlan', placement: 'cross-node', hostIfPrefix: 'veth', podCidrs: [['10.42.0.0/24']], pods: [{ name: 'a', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '10.42.0.1' }] })).toThrow(/bridge \(cni0\) address/);
    expect(() => planTopology({ runId: 'bulk3', attachment: 'routed-vxlan', placement: 'cross-node', hostIfPrefix: 'cali', podCidrs: [['10.42.0.0/24']], pods: [{ name: 'a', namespace: 'ns', labels: {}, role: 'grid', node: 0, ip: '10.42.0.0' }] })).toThrow(/VXLAN \(flannel.1\) address/);
  });
});
