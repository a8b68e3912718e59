import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchError } from '../errors.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { layoutWorkload } from '../backends/local/workload.js';
import { resolveFlowSpecs } from './flows.js';
import { loadWorkload } from './load.js';
import { localNodeOf, replayProbeFlows, replayWorkload } from './replay.js';
import type { ClusterWorkload } from './cluster.js';

const cluster = loadWorkload(join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json'));
const flowsOf = (...texts: string[]) => {
  const { flows, problems } = resolveFlowSpecs(texts, cluster);
  expect(problems).toEqual([]);
  return flows;
};

describe('replaying a cluster on the local backend', () => {
  it('the flows\' ends become endpoints with their snapshot addresses on the node their /24 names; the rest stay address-only', () => {
    const w = replayWorkload(cluster, flowsOf('api/orders-0->db/postgres-0:5432', 'web/frontend-6c9f8b7d4-abcde->api/orders-0:http'));
    expect(w.shape).toBe('cluster');
    expect(w.nodes).toBe(3);
    const endpoints = w.pods.filter((p) => p.presence === 'endpoint').map((p) => [`${p.namespace}/${p.name}`, p.ip, p.node]);
    expect(endpoints).toEqual([
      ['web/frontend-6c9f8b7d4-abcde', '10.244.1.4', 1],
      ['api/orders-0', '10.244.1.5', 1],
      ['db/postgres-0', '10.244.2.5', 2],
    ]);
    expect(w.pods.filter((p) => p.presence === 'address')).toHaveLength(cluster.inventory.pods.length - 3);
    expect(w.policies.policies).toBe(cluster.policies);
    // The local topology keeps them.
    const layout = layoutWorkload(w, { runId: 'abcde', model: { attachment: 'routed', hostIfPrefix: 'cali' } });
    expect(layout.addresses.ips['api/orders-0']).toBe('10.244.1.5');
    expect(layout.addresses.ips['db/postgres-0']).toBe('10.244.2.5');
  });

  it('a port a flow names that the destination does not declare is served too', () => {
    const w = replayWorkload(cluster, flowsOf('api/orders-0->db/postgres-0:6432/UDP'));
    expect(w.pods.find((p) => p.name === 'postgres-0')!.ports).toEqual([{ name: 'pg', containerPort: 5432, protocol: 'TCP' }, { containerPort: 6432, protocol: 'UDP' }]);
  });

  it('refuses what the local backend cannot hold, naming the pod: a hostNetwork end, an address outside 10.244.<node>.0/24', () => {
    expect(() => replayWorkload(cluster, flowsOf('api/orders-0->kube-system/node-exporter-7fq2m:9100'))).toThrow(/node-exporter-7fq2m is a hostNetwork pod/);
    const moved: ClusterWorkload = { ...cluster, inventory: { ...cluster.inventory, pods: cluster.inventory.pods.map((p) => (p.name === 'orders-0' ? { ...p, ip: '192.168.7.9' } : p)) } };
    const e = (() => {
      try {
        replayWorkload(moved, flowsOf('api/orders-0->db/postgres-0:5432'));
      } catch (err) {
        return err as BenchError;
      }
    })();
    expect(e?.kind).toBe('capacity');
    expect(e?.message).toMatch(/api\/orders-0 cannot be an endpoint.*192\.168\.7\.9 is outside 10\.244\.0\.0\/16/);
    expect(localNodeOf('10.244.3.1').problem).toMatch(/\.0, \.1 or \.255/);
    expect(localNodeOf('10.244.7.20')).toEqual({ node: 7 });
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
