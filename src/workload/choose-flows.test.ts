import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyEvaluator } from '../policy/evaluate.js';
import type { ClusterWorkload } from './cluster.js';
import { chooseFlows, FlowSpace } from './choose-flows.js';
import { probeFlows } from './flows.js';
import { loadWorkload } from './load.js';

const shop = loadWorkload(join(import.meta.dirname, 'fixtures', 'shop-cluster.json'));
const small = loadWorkload(join(import.meta.dirname, '..', '..', 'scenarios', 'workloads', 'small.yaml'));

function allowedFlows(w: ClusterWorkload) {
  const ev = new PolicyEvaluator(w.inventory, w.policies);
  const pods = new Map(w.inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  return probeFlows(w, { max: 1e9 })
    .flows.filter((f) => !pods.get(f.from)!.hostNetwork && !pods.get(f.to)!.hostNetwork)
    .filter((f) => ev.evaluate({ src: pods.get(f.from)!, dst: pods.get(f.to)!, port: f.port, protocol: f.protocol }).allowed);
}

describe('the default flows: the spread of what a connection costs', () => {
  for (const [name, w] of [['shop', shop], ['small', small]] as const) {
    it(`${name}: the most expensive allowed flow, cross-namespace, same-node and K random ones, all allowed`, () => {
      const space = new FlowSpace(w);
      const { flows, notes } = chooseFlows(space, { random: 4, seed: 5 });
      expect(notes).toEqual([]);
      expect(flows.map((f) => f.reason)).toEqual(['most-expensive', 'cross-namespace', 'same-node', 'random', 'random', 'random', 'random']);
      const truth = allowedFlows(w);
      const keys = new Set(truth.map((f) => `${f.from}>${f.to}:${f.port}/${f.protocol}`));
      for (const f of flows) expect(keys.has(`${f.from}>${f.to}:${f.port}/${f.protocol}`)).toBe(true);
      const pods = new Map(w.inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
      // The most expensive has the most rules of every allowed flow (checked against all of them).
      const max = Math.max(...truth.map((f) => space.cost(pods.get(f.from)!, pods.get(f.to)!).rules));
      expect(flows[0]!.cost.rules).toBe(max);
      expect(flows[1]!.from.split('/')[0]).not.toBe(flows[1]!.to.split('/')[0]);
      expect(pods.get(flows[2]!.from)!.node).toBe(pods.get(flows[2]!.to)!.node);
      expect(new Set(flows.map((f) => `${f.from}>${f.to}:${f.port}`)).size).toBe(flows.length);
      expect(chooseFlows(w, { random: 4, seed: 5 }).flows).toEqual(flows);
      expect(chooseFlows(w, { random: 4, seed: 6 }).flows).not.toEqual(flows);
    });
  }

  it("counts the source's egress and the destination's ingress rules", () => {
    const space = new FlowSpace(shop);
    const frontend = space.pods.get('shop/frontend-5d8f7c9b6-2kq7x')!;
    const cart = space.pods.get('shop/cart-7c4d9b8f5-lx2pw')!;
    // frontend egress: default-deny (no rules), allow-dns (1), frontend (1: 'http' is 8080 on cart and catalog);
    // cart ingress: default-deny, cart (1), allow-metrics (1).
    expect(space.cost(frontend, cart)).toEqual({ egressPolicies: 3, egressRules: 2, ingressPolicies: 3, ingressRules: 2, rules: 4 });
  });

  it('takes exactly the named flows, and says which the policies deny', () => {
    const named = [
      { from: 'shop/frontend-5d8f7c9b6-2kq7x', to: 'shop/cart-7c4d9b8f5-rt6yz', port: 8080, protocol: 'TCP' as const },
      { from: 'shop/cart-7c4d9b8f5-lx2pw', to: 'payments/ledger-0', port: 5432, protocol: 'TCP' as const },
    ];
    const { flows } = chooseFlows(shop, { named });
    expect(flows.map((f) => [f.reason, f.allowed])).toEqual([
      ['named', true],
      ['named', false],
    ]);
  });

  it('says what it could not find', () => {
    const denyAll: ClusterWorkload = { ...shop, policies: shop.inventory.namespaces.map((n) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny', namespace: n.name }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } })) };
    const { flows, notes } = chooseFlows(denyAll, { random: 2 });
    expect(flows).toEqual([]);
    expect(notes).toEqual([
      'no allowed flow between two pod-network pods on a port the destination declares',
      'cross-namespace: no allowed flow between pods of two namespaces',
      'same-node: no allowed flow between two pods on one node',
      'random: 0 of 2 found; the workload has no other allowed flow',
    ]);
  });
});
