import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchError } from '../errors.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { layoutWorkload } from '../backends/local/workload.js';
import { resolveFlowSpecs } from './flows.js';
import { loadWorkload } from './load.js';
import { replayProbeFlows, replayWorkload } from './replay.js';
import { parseSnapshot } from './snapshot.js';
import type { ClusterWorkload } from './cluster.js';

const cluster = loadWorkload(join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json'));
const flowsOf = (...texts: string[]) => {
  const { flows, problems } = resolveFlowSpecs(texts, cluster);
  expect(problems).toEqual([]);
  return flows;
};

describe('replaying a cluster on the local backend', () => {
  it('the flows\' ends become endpoints with their snapshot addresses, on the nodes they run on, with those nodes\' pod CIDRs; the rest stay address-only', () => {
    const w = replayWorkload(cluster, flowsOf('api/orders-0->db/postgres-0:5432', 'web/frontend-6c9f8b7d4-abcde->api/orders-0:http'));
    expect(w.shape).toBe('cluster');
    // Only the endpoints' nodes are built: kind-worker and kind-worker2, with the /24s their pods are in.
    expect(w.nodes).toBe(2);
    expect(w.podCidrs).toEqual([['10.244.1.0/24'], ['10.244.2.0/24']]);
    const endpoints = w.pods.filter((p) => p.presence === 'endpoint').map((p) => [`${p.namespace}/${p.name}`, p.ip, p.node]);
    expect(endpoints).toEqual([
      ['web/frontend-6c9f8b7d4-abcde', '10.244.1.4', 0],
      ['api/orders-0', '10.244.1.5', 0],
      ['db/postgres-0', '10.244.2.5', 1],
    ]);
    expect(w.pods.filter((p) => p.presence === 'address')).toHaveLength(cluster.inventory.pods.length - 3);
    expect(w.policies.policies).toBe(cluster.policies);
    // The local topology keeps them.
    const layout = layoutWorkload(w, { runId: 'abcde', model: { attachment: 'routed', hostIfPrefix: 'cali' } });
    expect(layout.addresses.ips['api/orders-0']).toBe('10.244.1.5');
    expect(layout.addresses.ips['db/postgres-0']).toBe('10.244.2.5');
    expect(layout.topology.nodes.map((n) => n.podCidrs)).toEqual([['10.244.1.0/24'], ['10.244.2.0/24']]);
  });

  it('a port a flow names that the destination does not declare is served too', () => {
    const w = replayWorkload(cluster, flowsOf('api/orders-0->db/postgres-0:6432/UDP'));
    expect(w.pods.find((p) => p.name === 'postgres-0')!.ports).toEqual([{ name: 'pg', containerPort: 5432, protocol: 'TCP' }, { containerPort: 6432, protocol: 'UDP' }]);
  });

  it('any pod address is kept and routed by its node; a hostNetwork end serves from its node at the node\'s address', () => {
    const moved: ClusterWorkload = { ...cluster, inventory: { ...cluster.inventory, pods: cluster.inventory.pods.map((p) => (p.name === 'orders-0' ? { ...p, ip: '192.168.7.9' } : p)) } };
    const w = replayWorkload(moved, flowsOf('api/orders-0->db/postgres-0:5432', 'api/orders-0->kube-system/node-exporter-7fq2m:9100'));
    expect(w.podCidrs).toEqual([['10.244.1.0/24', '192.168.7.0/24'], ['10.244.2.0/24']]);
    const exporter = w.pods.find((p) => p.name === 'node-exporter-7fq2m')!;
    expect(exporter).toMatchObject({ presence: 'endpoint', hostNetwork: true, node: 0 });
    const layout = layoutWorkload(w, { runId: 'abcde', model: { attachment: 'routed', hostIfPrefix: 'cali' } });
    expect(layout.addresses.ips['api/orders-0']).toBe('192.168.7.9');
    expect(layout.nodePods).toEqual([{ id: 'kube-system/node-exporter-7fq2m', netns: 'cb-abcde-n0', ip: layout.topology.nodes[0]!.ip, node: 'node-0' }]);
    expect(layout.topology.pods.map((p) => p.name)).not.toContain('node-exporter-7fq2m');
  });

  it('refuses, naming the pods, addresses no routing holds: two nodes\' pods on one address, the node network', () => {
    const errorOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err as BenchError;
      }
      return undefined;
    };
    const clash: ClusterWorkload = { ...cluster, inventory: { ...cluster.inventory, pods: cluster.inventory.pods.map((p) => (p.name === 'orders-0' ? { ...p, ip: '10.244.2.5' } : p)) } };
    const e = errorOf(() => replayWorkload(clash, flowsOf('api/orders-0->db/postgres-0:5432')));
    expect(e?.kind).toBe('capacity');
    expect(e?.message).toMatch(/api\/orders-0 \(node kind-worker\) and db\/postgres-0 \(node kind-worker2\) both have address 10\.244\.2\.5|db\/postgres-0 \(node kind-worker2\) and api\/orders-0 \(node kind-worker\) both have address 10\.244\.2\.5/);
    const onNodeNet: ClusterWorkload = { ...cluster, inventory: { ...cluster.inventory, pods: cluster.inventory.pods.map((p) => (p.name === 'orders-0' ? { ...p, ip: '172.18.0.77' } : p)) } };
    expect(errorOf(() => replayWorkload(onNodeNet, flowsOf('api/orders-0->db/postgres-0:5432')))?.message).toMatch(/pod api\/orders-0 has address 172\.18\.0\.77, in the local backend's node network/);
  });

  it('default flows: every pod-network pair on the destination\'s declared ports; hostNetwork pods left out; above the cap a seeded choice of pods', () => {
    const all = replayProbeFlows(cluster);
    expect(all.sampled).toBe(false);
    expect(all.total).toBe(35); // 6 pod-network pods, 7 declared ports, 5 sources each
    expect(all.flows.some((f) => f.from.includes('node-exporter') || f.to.includes('node-exporter'))).toBe(false);
    const few = replayProbeFlows(cluster, { maxEndpoints: 3, seed: 4 });
    const pods = new Set(few.flows.flatMap((f) => [f.from, f.to]));
    expect(few.podsSampled).toBe(true);
    expect(pods.size).toBeLessThanOrEqual(3);
    expect(replayProbeFlows(cluster, { maxEndpoints: 3, seed: 4 }).flows).toEqual(few.flows);
  });
});

describe('Nodes in a snapshot: their spec.podCIDRs are the CIDRs the replay routes', () => {
  const list = (nodeCidrs: Record<string, unknown>) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        ...Object.entries(nodeCidrs).map(([name, spec]) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, uid: 'x' }, spec, status: { capacity: { pods: '110' } } })),
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'x' }, spec: { nodeName: 'w1', containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] }, status: { phase: 'Running', podIP: '10.9.0.5' } },
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', namespace: 'x' }, spec: { nodeName: 'w2', containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] }, status: { phase: 'Running', podIP: '10.9.1.5' } },
      ],
    });
  const flows = [{ from: 'x/a', to: 'x/b', port: 80, protocol: 'TCP' as const }];

  it('are read (IPv6 ones left out) and routed as declared', () => {
    const { workload, problems } = parseSnapshot('n.json', list({ w1: { podCIDR: '10.9.0.0/23', podCIDRs: ['10.9.0.0/23', 'fd00::/64'] }, w2: { podCIDR: '10.9.2.0/23' } }));
    expect(problems).toEqual([]);
    // b (10.9.1.5) is inside w1's declared /23, not in its own node's: the CNI numbers pods from its own pools
    // (Calico IPAM, Cilium cluster-pool), so the Nodes' CIDRs are not the routes; they are derived from the pods.
    expect(workload!.nodePodCidrs).toBeUndefined();
    expect(workload!.source).toMatchObject({ nodeCidrsNotUsed: expect.stringContaining("pod x/b (10.9.1.5) is outside its node w2's spec.podCIDR 10.9.2.0/23") });
    expect(replayWorkload(workload!, flows).podCidrs).toEqual([['10.9.0.0/24'], ['10.9.1.0/24']]);
    const ok = parseSnapshot('n.json', list({ w1: { podCIDR: '10.9.0.0/24', podCIDRs: ['10.9.0.0/24', 'fd00::/64'] }, w2: { podCIDR: '10.9.1.0/24' } }));
    expect(ok.problems).toEqual([]);
    expect(ok.workload!.nodePodCidrs).toEqual({ w1: ['10.9.0.0/24'], w2: ['10.9.1.0/24'] });
    expect(replayWorkload(ok.workload!, flows).podCidrs).toEqual([['10.9.0.0/24'], ['10.9.1.0/24']]);
  });

  it('a bad podCIDR is named with its field', () => {
    const { problems } = parseSnapshot('n.json', list({ w1: { podCIDRs: ['10.9.0.0/40'] } }));
    expect(problems.map((p) => p.where)).toEqual(['n.json#/items/0/spec/podCIDRs/0']);
    expect(problems[0]!.message).toMatch(/Node w1: invalid IPv4 CIDR/);
  });
});
