import { describe, expect, it } from 'vitest';
import { evaluateConnection } from '../policy/evaluate.js';
import type { Inventory, PodInfo } from '../policy/types.js';
import { CLIENT_LABELS, CLIENT_NAMESPACE, SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from '../workload/workload.js';
import { INTRUDER_LABELS, JOINER_LABELS, changeOrder, enforcePolicies, STARTS_OPEN, CHANGES } from './plan.js';

const pod = (name: string, namespace: string, labels: Record<string, string>, ip: string, server = false): PodInfo => ({
  name,
  namespace,
  labels,
  ip,
  node: 'node-0',
  ports: server ? [{ containerPort: SERVER_PORT, protocol: 'TCP' }] : [],
});

function allowed(n: number, state: 'open' | 'closed', fromLabels: Record<string, string>): boolean {
  const sets = enforcePolicies({ policies: n, matchPosition: 'last', seed: 1 });
  const server = pod('server-0', SERVER_NAMESPACE, { ...SERVER_LABELS }, '10.244.1.2', true);
  const from = pod('x', CLIENT_NAMESPACE, fromLabels, '10.244.0.9');
  const inv: Inventory = { namespaces: [{ name: SERVER_NAMESPACE, labels: {} }, { name: CLIENT_NAMESPACE, labels: {} }], pods: [server, from] };
  return evaluateConnection(inv, sets[state].policies, { src: from, dst: server, protocol: 'TCP', port: SERVER_PORT }).allowed;
}

describe('enforcePolicies', () => {
  it.each([0, 3])('with %i fillers: the client is denied closed and allowed open; intruder and joiner always denied', (n) => {
    expect(allowed(n, 'closed', { ...CLIENT_LABELS })).toBe(false);
    expect(allowed(n, 'open', { ...CLIENT_LABELS })).toBe(true);
    for (const s of ['open', 'closed'] as const) {
      expect(allowed(n, s, { ...INTRUDER_LABELS })).toBe(false);
      expect(allowed(n, s, { ...JOINER_LABELS })).toBe(false);
    }
  });

  it('counts N fillers + the isolating policy, and the allow-client one when open', () => {
    const s = enforcePolicies({ policies: 5, matchPosition: 'last', seed: 1 });
    expect(s.closed.policies).toHaveLength(6);
    expect(s.open.policies).toHaveLength(7);
    expect(s.open.policies).toContain(s.allowClient);
    expect(enforcePolicies({ policies: 0, matchPosition: 'last', seed: 1 }).closed.policies.map((p) => p.metadata.name)).toEqual(['np-isolate']);
  });
});

describe('changeOrder', () => {
  it('chains changes so each starts where the last left the policies', () => {
    const order = changeOrder([...CHANGES]);
    expect(order).toEqual(['allow-added', 'peer-joins', 'new-pod', 'allow-removed']);
    // allow-added ends open; the next three start open; allow-removed ends closed, where allow-added starts.
    expect(order.slice(1).every((k) => STARTS_OPEN[k])).toBe(true);
    expect(STARTS_OPEN['allow-added']).toBe(false);
  });
});
