import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy } from '../policy/types.js';
import type { ClusterWorkload } from './cluster.js';
import { findPolicyProblems, selectorText, type FindingKind } from './findings.js';
import { loadWorkload } from './load.js';

const shop = loadWorkload(join(import.meta.dirname, 'fixtures', 'shop-cluster.json'));
const of = (w: ClusterWorkload, kind: FindingKind) => findPolicyProblems(w).filter((f) => f.kind === kind);
const withPolicies = (w: ClusterWorkload, edit: (ps: NetworkPolicy[]) => NetworkPolicy[]): ClusterWorkload => ({ ...w, policies: edit(structuredClone(w.policies)) });
const named = (ps: NetworkPolicy[], key: string) => ps.find((p) => `${p.metadata.namespace}/${p.metadata.name}` === key)!;

describe('findings on the shop cluster, each naming the policy and the field', () => {
  it('the OR form where AND was likely meant', () => {
    expect(of(shop, 'or-peers')).toEqual([
      {
        kind: 'or-peers',
        policy: 'shop/allow-metrics',
        field: 'spec.ingress[0].from',
        message: 'spec.ingress[0].from lists namespaceSelector {purpose=monitoring} and podSelector {app=prometheus} as two peers: it admits every pod of monitoring (1 pod) OR the pods {app=prometheus} of shop — not the pods {app=prometheus} of those namespaces',
        fix: 'if the pods matching both were meant, put namespaceSelector and podSelector in one peer (one list item)',
      },
    ]);
    // The AND form (one peer with both selectors) is not a finding.
    const fixed = withPolicies(shop, (ps) => {
      const p = named(ps, 'shop/allow-metrics');
      p.spec.ingress![0]!.from = [{ namespaceSelector: { matchLabels: { purpose: 'monitoring' } }, podSelector: { matchLabels: { app: 'prometheus' } } }];
      return ps;
    });
    expect(of(fixed, 'or-peers')).toEqual([]);
  });

  it('egress restricted with no DNS allowance', () => {
    const f = of(shop, 'egress-without-dns');
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ policy: 'payments/api-egress' });
    expect(f[0]!.message).toBe('2 pods (payments/payments-api-84c6b5d7f9-6hs2d, payments/payments-api-84c6b5d7f9-c7n4q) are egress-restricted by payments/api-egress, and none of these allows UDP 53 to the DNS pods (kube-system/coredns-6f6b679f8f-k2xqp, kube-system/coredns-6f6b679f8f-t8zvn): their name lookups fail');
    // shop's pods are egress-restricted too, and shop/allow-dns lets them resolve: no finding there. Without it, one.
    const noDns = withPolicies(shop, (ps) => ps.filter((p) => p.metadata.name !== 'allow-dns'));
    expect(of(noDns, 'egress-without-dns').map((x) => x.policy)).toEqual(['payments/api-egress', 'shop/cart', 'shop/default-deny', 'shop/default-deny']);
  });

  it('a policy that selects only hostNetwork pods', () => {
    expect(of(shop, 'selects-only-host-network')).toEqual([expect.objectContaining({ policy: 'monitoring/node-exporter', field: 'spec.podSelector', message: expect.stringMatching(/^podSelector \{app=node-exporter\} selects only hostNetwork pods \(monitoring\/node-exporter-m2p8r, .*\): NetworkPolicy does not apply to them, on any data plane$/) })]);
  });

  it('an ipBlock covering pod or node addresses', () => {
    const f = of(shop, 'ipblock-covers-pods');
    expect(f.map((x) => [x.policy, x.field])).toEqual([
      ['monitoring/prometheus', 'spec.egress[1].to[0].ipBlock'],
      ['shop/cart', 'spec.egress[1].to[0].ipBlock'],
    ]);
    expect(f[0]!.message).toMatch(/^ipBlock 172\.18\.0\.0\/16 covers the addresses of 3 nodes \(shop-control-plane, shop-worker, shop-worker2: their hostNetwork pods\): Calico matches them, Cilium does not/);
    expect(f[1]!.message).toMatch(/^ipBlock 0\.0\.0\.0\/0 except 169\.254\.169\.254\/32 covers the addresses of 11 pods \(kube-system\/coredns-6f6b679f8f-k2xqp, .* and 8 more\) and 3 nodes/);
    // An ipBlock off the cluster's addresses (payments/api-egress: 203.0.113.0/24) is not a finding.
    expect(f.some((x) => x.policy === 'payments/api-egress')).toBe(false);
  });

  it('a policy that selects no pod', () => {
    expect(of(shop, 'selects-no-pod')).toEqual([
      { kind: 'selects-no-pod', policy: 'shop/legacy-admin', field: 'spec.podSelector', message: 'podSelector {app=admin} selects no pod in shop: the policy has no effect', fix: 'check the labels (kubectl get pods -n shop --show-labels): a typo or a leftover; delete it if it is one' },
    ]);
  });

  it('a named port no selected pod declares', () => {
    expect(of(shop, 'named-port-undeclared')).toEqual([
      {
        kind: 'named-port-undeclared',
        policy: 'shop/catalog',
        field: 'spec.ingress[1].ports[0]',
        message: "port 'grpc' (TCP) is declared by none of the 1 pod it selects (shop/catalog-6b9f8d7c4-p3k8s): this port entry matches nothing",
        fix: 'name a port they declare (http=8080/TCP, metrics=9090/TCP) or give the number',
      },
    ]);
    // Egress: the name is looked up on the pods the rule reaches (frontend's 'http' is declared by cart and catalog).
    const typo = withPolicies(shop, (ps) => {
      named(ps, 'shop/frontend').spec.egress![0]!.ports![0]!.port = 'htpp';
      return ps;
    });
    expect(of(typo, 'named-port-undeclared').map((x) => [x.policy, x.field])).toEqual([
      ['shop/catalog', 'spec.ingress[1].ports[0]'],
      ['shop/frontend', 'spec.egress[0].ports[0]'],
    ]);
  });

  it('every policy on a data plane that does not enforce', () => {
    const f = findPolicyProblems(shop, { cnis: ['calico', 'flannel', 'none'] }).filter((x) => x.kind === 'not-enforced');
    expect(f).toHaveLength(shop.policies.length);
    expect(f[0]).toMatchObject({ cnis: ['flannel', 'none'], message: 'on flannel, none this policy is accepted and has no effect: no policy engine' });
    expect(findPolicyProblems(shop, { cnis: ['calico', 'cilium'] }).some((x) => x.kind === 'not-enforced')).toBe(false);
  });

  it('sorts by policy, then kind, and writes selectors the way kubectl users read them', () => {
    const f = findPolicyProblems(shop);
    expect(f.map((x) => x.policy)).toEqual([...f.map((x) => x.policy)].sort());
    expect(selectorText({ matchLabels: { app: 'a' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['x', 'y'] }, { key: 'gone', operator: 'DoesNotExist' }] })).toBe('{app=a, tier In (x,y), gone DoesNotExist}');
  });
});
