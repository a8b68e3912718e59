import { describe, expect, it } from 'vitest';
import { evaluateConnection } from '../policy/evaluate.js';
import type { Inventory, PodInfo } from '../policy/types.js';
import { CLIENT_LABELS, CLIENT_NAMESPACE, SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from '../workload/workload.js';
import { SERVICE_CHANGES } from '../config/schema.js';
import { CHANGE_SPECS, INTRUDER_LABELS, JOINER_LABELS, changeOrder, enforcePolicies, isServiceChange, STARTS_OPEN, CHANGES } from './plan.js';

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
    expect(order).toEqual(['allow-added', 'peer-joins', 'new-pod', 'endpoint-removed', 'endpoint-added', 'service-added', 'allow-removed']);
    // allow-added ends open; the next ones start open (the Service changes need the client allowed, so they come
    // before allow-removed); allow-removed ends closed, where allow-added starts.
    expect(order.slice(1).every((k) => STARTS_OPEN[k])).toBe(true);
    expect(STARTS_OPEN['allow-added']).toBe(false);
  });
});

describe('CHANGE_SPECS', () => {
  it('the Service changes start with the client allowed, and only endpoint-removed measures a window (the blackhole)', () => {
    for (const k of SERVICE_CHANGES) {
      expect(CHANGE_SPECS[k].family).toBe('service');
      expect(STARTS_OPEN[k]).toBe(true);
    }
    expect(CHANGE_SPECS['endpoint-removed']).toEqual({ family: 'service', expect: 'closed', startsOpen: true, window: 'revocation' });
    expect(CHANGE_SPECS['endpoint-added'].window).toBeNull();
    expect(CHANGE_SPECS['service-added'].expect).toBe('open');
    // The policy changes keep their meaning.
    expect(CHANGE_SPECS['allow-removed'].window).toBe('revocation');
    expect(CHANGE_SPECS['new-pod'].window).toBe('intruder');
    expect(CHANGES.filter(isServiceChange)).toEqual([...SERVICE_CHANGES]);
  });
});
