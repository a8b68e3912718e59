import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadWorkload } from '../workload/load.js';
import { flowKey } from '../workload/flows.js';
import type { NetworkPolicy } from '../policy/types.js';
import { affectedFlows, changeEffect, closePolicyNames, defaultChanges, isDefaultDeny, parseWorkloadChanges, policyFlows, planWorkloadChanges, probedFlows, watchedFlowsOf, type AffectedFlow } from './workload-changes.js';
import { changeStates } from './workload-run.js';

// 7 pods in 5 namespaces; db/allow-worker-cidr admits 10.244.1.4/30 (frontend 10.244.1.4, orders-0 10.244.1.5) to postgres.
const w = loadWorkload(join(import.meta.dirname, '..', 'workload', 'fixtures', 'replay-cluster.json'));
const policy = (key: string) => w.policies.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === key)!;
// Every flow a policy of the fixture can decide: small enough to be exact.
const flows = [...new Map(w.policies.flatMap((p) => policyFlows(w, p, 1).flows).map((f) => [flowKey(f), f])).values()];
const keys = (fs: readonly AffectedFlow[]) => fs.map(flowKey).sort();
const toPostgres = (from: string) => `${from}->db/postgres-0:5432/TCP`;

describe('--change against a workload', () => {
  it('parses remove: and add:, and refuses an unknown policy naming the close ones', () => {
    const r = parseWorkloadChanges(['remove:api/allow-frontend', 'add:db/allow-worker-cidr', 'remove:api/allow-frontnd', 'delete:api/x', 'remove:api/allow-frontend', 'add:api/allow-frontend'], w);
    expect(r.changes).toEqual([
      { op: 'remove', policy: 'api/allow-frontend' },
      { op: 'add', policy: 'db/allow-worker-cidr' },
      { op: 'add', policy: 'api/allow-frontend' },
    ]);
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/no NetworkPolicy api\/allow-frontnd \(close: api\/allow-frontend, /),
      expect.stringMatching(/'delete:api\/x' is not remove:NAMESPACE\/POLICY or add:NAMESPACE\/POLICY/),
      expect.stringMatching(/'remove:api\/allow-frontend' is given twice/),
    ]);
    expect(closePolicyNames('db/allow-worker-cdr', w)[0]).toBe('db/allow-worker-cidr');
  });

  it('the flows a policy can decide: TCP into the pods it selects (ingress), out of them (egress), between pod-network pods; sampled above the cap', () => {
    const ingress = policyFlows(w, policy('api/allow-frontend'), 1);
    // Into orders-0 and orders-1 on 9000 from the other 4 pod-network pods and from each other (node-exporter is hostNetwork).
    expect(ingress.total).toBe(10);
    expect(ingress.flows.every((f) => f.to.startsWith('api/orders-') && f.port === 9000 && f.protocol === 'TCP')).toBe(true);
    expect(ingress.flows.some((f) => f.from.includes('node-exporter'))).toBe(false);
    const egress = policyFlows(w, policy('db/egress-to-api-only'), 1);
    expect(egress.flows.every((f) => f.from === 'db/postgres-0')).toBe(true);
    expect(egress.flows.map((f) => f.to).sort()).toEqual(['api/orders-0', 'api/orders-1', 'kube-system/coredns-5d78c9869d-x2k4p', 'monitoring/prometheus-0', 'web/frontend-6c9f8b7d4-abcde']);
    const sampled = policyFlows(w, policy('api/allow-frontend'), 1, 4);
    expect(sampled).toMatchObject({ total: 10 });
    expect(sampled.flows).toHaveLength(4);
    expect(sampled.flows).toEqual(policyFlows(w, policy('api/allow-frontend'), 1, 4).flows);
  });
});

describe('the flows a change flips, under each data plane\'s semantics', () => {
  it('removing an allow denies exactly the flows it alone allowed', () => {
    const a = affectedFlows(w, 'calico', 'api/allow-frontend', flows);
    expect(keys(a)).toEqual(['web/frontend-6c9f8b7d4-abcde->api/orders-0:9000/TCP', 'web/frontend-6c9f8b7d4-abcde->api/orders-1:9000/TCP']);
    expect(a.every((f) => f.before && !f.after)).toBe(true);
  });

  it('an ipBlock over pod addresses: Calico matches it, Cilium never selects a pod by it', () => {
    // Without the policy postgres is not isolated for ingress: every flow to it is allowed.
    const calico = affectedFlows(w, 'calico', 'db/allow-worker-cidr', flows);
    expect(keys(calico)).toEqual(['api/orders-1', 'kube-system/coredns-5d78c9869d-x2k4p', 'monitoring/prometheus-0'].map(toPostgres).sort());
    const cilium = affectedFlows(w, 'cilium', 'db/allow-worker-cidr', flows);
    expect(keys(cilium)).toEqual(['api/orders-0', 'api/orders-1', 'kube-system/coredns-5d78c9869d-x2k4p', 'monitoring/prometheus-0', 'web/frontend-6c9f8b7d4-abcde'].map(toPostgres).sort());
    expect([...calico, ...cilium].every((f) => !f.before && f.after)).toBe(true);
  });

  it('a default-deny whose pods other policies isolate anyway flips nothing; a policy selecting no pod flips nothing', () => {
    expect(affectedFlows(w, 'calico', 'api/default-deny-ingress', flows)).toEqual([]);
    expect(affectedFlows(w, 'calico', 'monitoring/allow-grafana', flows)).toEqual([]);
  });

  it('add: is the removal run backwards; on a data plane without a policy engine the spec decides which flows are shown', () => {
    const add = changeEffect(w, 'calico', { op: 'add', policy: 'api/allow-frontend' }, flows);
    expect(add.every((f) => !f.before && f.after)).toBe(true);
    expect(keys(add)).toEqual(keys(affectedFlows(w, 'calico', 'api/allow-frontend', flows)));
    expect(affectedFlows(w, 'flannel', 'api/allow-frontend', flows)).toEqual([]);
    expect(keys(changeEffect(w, 'flannel', { op: 'remove', policy: 'api/allow-frontend' }, flows))).toEqual(keys(add));
  });

  it('the policy states: remove goes from all to all but one, add back', () => {
    const s = changeStates(w, { op: 'remove', policy: 'api/allow-frontend' });
    expect(s.before.policies).toHaveLength(w.policies.length);
    expect(s.after.policies.map((p) => p.metadata.name)).not.toContain('allow-frontend');
    expect(s.after.policies).toHaveLength(w.policies.length - 1);
    const a = changeStates(w, { op: 'add', policy: 'api/allow-frontend' });
    expect(a.before).toEqual(s.after);
    expect(a.after).toEqual(s.before);
  });
});

describe('the default changes', () => {
  it('picks the removal that flips the most flows on the data plane, and says why', () => {
    const calico = defaultChanges(w, 'calico', 1);
    expect(calico[0]).toMatchObject({ change: { op: 'remove', policy: 'db/allow-worker-cidr' }, why: 'its removal changes the most flows: 3' });
    expect(calico).toHaveLength(1); // the only default-deny flips nothing here
  });

  it('picks a default-deny that flips flows, seeded', () => {
    const deny: NetworkPolicy = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-all', namespace: 'monitoring' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } };
    expect(isDefaultDeny(deny)).toBe(true);
    expect(isDefaultDeny(w.policies.find((p) => p.metadata.name === 'allow-frontend')!)).toBe(false);
    const w2 = { ...w, policies: [...w.policies, deny] };
    const picked = defaultChanges(w2, 'calico', 1);
    // It flips all 4 flows into prometheus: the most, and a default-deny, said so.
    expect(picked[0]).toMatchObject({ change: { policy: 'monitoring/deny-all' }, why: 'its removal changes the most flows: 4 (a default-deny)' });
    // With a broader allow beside it, the default-deny is the second pick.
    const allowAll: NetworkPolicy = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-all-orders', namespace: 'api' }, spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] } };
    const w3 = { ...w, policies: [...w2.policies, allowAll] };
    const two = defaultChanges(w3, 'calico', 1);
    expect(two.map((c) => c.change.policy)).toEqual(['api/allow-all-orders', 'monitoring/deny-all']);
    expect(two[1]!.why).toMatch(/^a default-deny \(seeded among 1\)/);
  });
});

describe('planning the changes per data plane', () => {
  it('a named change that flips nothing on an enforcing data plane is refused (exit 2), with the semantics', () => {
    const p = planWorkloadChanges(w, ['calico'], { changes: [{ op: 'remove', policy: 'api/default-deny-ingress' }], seed: 1 });
    expect(p.problems).toEqual([{ where: '--change', message: expect.stringMatching(/remove:api\/default-deny-ingress flips no TCP flow .* on calico/) }]);
  });

  it('default changes are chosen once and timed on every data plane; flannel runs them to show no effect', () => {
    const p = planWorkloadChanges(w, ['cilium', 'calico', 'flannel'], { changes: [], seed: 1 });
    expect(p.problems).toEqual([]);
    // Chosen under cilium's semantics (the first enforcing one): 5 flows flip there.
    expect(p.byCni.get('cilium')![0]!.affected).toHaveLength(5);
    expect(p.byCni.get('calico')![0]!.change).toEqual(p.byCni.get('cilium')![0]!.change);
    expect(p.byCni.get('calico')![0]!.affected).toHaveLength(3);
    expect(p.byCni.get('flannel')![0]!.probed.length).toBeGreaterThan(0);
    expect(p.notes[0]).toMatch(/on cilium's semantics/);
  });

  it('--flow: a named flow the change flips is watched; one no change flips is refused', () => {
    const ok = planWorkloadChanges(w, ['calico'], { changes: [{ op: 'remove', policy: 'api/allow-frontend' }], flows: [{ from: 'web/frontend-6c9f8b7d4-abcde', to: 'api/orders-1', port: 9000, protocol: 'TCP' }], seed: 1 });
    expect(ok.problems).toEqual([]);
    expect(watchedFlowsOf(ok.byCni.get('calico')!)).toEqual([{ from: 'web/frontend-6c9f8b7d4-abcde', to: 'api/orders-1', port: 9000, protocol: 'TCP' }]);
    const bad = planWorkloadChanges(w, ['calico'], { changes: [{ op: 'remove', policy: 'api/allow-frontend' }], flows: [{ from: 'api/orders-0', to: 'db/postgres-0', port: 5432, protocol: 'TCP' }], seed: 1 });
    expect(bad.problems[0]).toMatchObject({ where: '--flow', message: expect.stringMatching(/flips none of the flows named on calico/) });
  });

  it('watches one flow of each direction first when a change both opens and closes flows', () => {
    const mixed: AffectedFlow[] = [
      { from: 'a/x', to: 'b/y', port: 1, protocol: 'TCP', before: true, after: false },
      { from: 'a/x', to: 'b/z', port: 1, protocol: 'TCP', before: true, after: false },
      { from: 'a/w', to: 'b/y', port: 1, protocol: 'TCP', before: false, after: true },
    ];
    for (const seed of [1, 2, 3]) expect(new Set(probedFlows(mixed, 2, seed).map((f) => f.after))).toEqual(new Set([true, false]));
    expect(probedFlows(mixed, 2, 1)).toEqual(probedFlows(mixed, 2, 1));
  });
});
