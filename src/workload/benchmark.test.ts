import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../config/schema.js';
import { benchmarkWorkload } from './benchmark.js';
import { DEFAULT_TARGET, podOf } from './workload.js';

const config = (o: object = {}) => runConfigSchema.parse({ cni: 'calico', policies: 3, ...o });

describe('benchmarkWorkload', () => {
  it('one client, one server serving the port its policies allow, and the measured flow between them', () => {
    const w = benchmarkWorkload(config());
    expect(w.shape).toBe('benchmark');
    expect(w.pods.map((p) => [`${p.namespace}/${p.name}`, p.role, p.presence, p.node])).toEqual([
      ['bench-client/client', 'client', 'endpoint', 0],
      ['bench-server/server-0', 'server', 'endpoint', 1],
    ]);
    expect(w.flows).toEqual([{ from: 'bench-client/client', to: 'bench-server/server-0', protocol: 'TCP', port: 8080, measured: true }]);
    expect(podOf(w, w.flows[0]!.to)!.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    // 3 fillers and the client's: the fillers' peers exist only as addresses.
    expect(w.policies.policies).toHaveLength(4);
    expect(w.policies.peers).toHaveLength(3);
  });

  it('same-node placement puts the client on the server node', () => {
    expect(podOf(benchmarkWorkload(config({ placement: 'same-node' })), 'bench-client/client')!.node).toBe(1);
  });

  it("is generated in the target's names and label: a backend applies it as handed", () => {
    const target = { namespaces: { server: 'cb-abcde-server', client: 'cb-abcde-client' }, runLabel: { 'cni-bench/run': 'abcde' } };
    const w = benchmarkWorkload(config(), target);
    expect(w.namespaces.map((n) => n.name)).toEqual(['cb-abcde-server', 'cb-abcde-client']);
    for (const p of w.policies.policies) {
      expect(p.metadata.namespace).toBe('cb-abcde-server');
      expect(p.metadata.labels).toMatchObject({ 'cni-bench/run': 'abcde' });
    }
    expect(benchmarkWorkload(config(), DEFAULT_TARGET).namespaces.map((n) => n.name)).toEqual(['bench-server', 'bench-client']);
  });
});
