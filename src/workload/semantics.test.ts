import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CNIS } from '../config/schema.js';
import { PolicyEvaluator } from '../policy/evaluate.js';
import { effectivePolicyTypes } from '../policy/resolve.js';
import type { NetworkPolicy } from '../policy/types.js';
import type { ClusterWorkload } from './cluster.js';
import { probeFlows, type Flow } from './flows.js';
import { loadWorkload } from './load.js';
import { DataPlaneExpectations, diffExpectations, expectFlows, fromOwnNode, POLICY_SEMANTICS, withoutInClusterIpBlocks } from './semantics.js';

const shop = loadWorkload(join(import.meta.dirname, 'fixtures', 'shop-cluster.json'));
const small = loadWorkload(join(import.meta.dirname, '..', '..', 'scenarios', 'workloads', 'small.yaml'));
const all = (w: ClusterWorkload) => probeFlows(w, { max: 1e9 }).flows;
const pod = (w: ClusterWorkload, k: string) => w.inventory.pods.find((p) => `${p.namespace}/${p.name}` === k)!;

describe('the semantics table', () => {
  it('has an entry with its sources for every data plane', () => {
    for (const cni of CNIS) {
      expect(POLICY_SEMANTICS[cni]).toBeDefined();
      expect(POLICY_SEMANTICS[cni].sources.length).toBeGreaterThan(0);
    }
    expect(CNIS.filter((c) => !POLICY_SEMANTICS[c].enforces)).toEqual(['none', 'flannel']);
    expect(CNIS.filter((c) => POLICY_SEMANTICS[c].ipBlockSelects === 'outside-cluster')).toEqual(['cilium']);
  });
});

describe('expected verdicts per data plane', () => {
  it('flannel and none allow every flow: nothing enforces', () => {
    for (const cni of ['flannel', 'none'] as const) {
      const e = expectFlows(shop, cni, all(shop));
      expect(e.every((x) => x.allowed === true && x.basis === 'not-enforced')).toBe(true);
    }
  });

  it('calico is the reference evaluator, but for traffic from a pod own node', () => {
    const ev = new PolicyEvaluator(shop.inventory, shop.policies);
    const e = new DataPlaneExpectations(shop, 'calico');
    let localNode = 0;
    for (const f of all(shop)) {
      const x = e.expect(f);
      const src = pod(shop, f.from);
      const dst = pod(shop, f.to);
      if (src.hostNetwork && !dst.hostNetwork && src.node === dst.node) {
        expect(x).toMatchObject({ allowed: true, basis: 'local-node' });
        localNode++;
      } else expect(x.allowed).toBe(ev.evaluate({ src, dst, port: f.port, protocol: f.protocol }).allowed);
    }
    expect(localNode).toBeGreaterThan(0);
  });

  it('allows a hostNetwork pod into a pod on its own node, not on another', () => {
    const onWorker = 'monitoring/node-exporter-z5c1f'; // shop-worker
    const cartHere = 'shop/cart-7c4d9b8f5-lx2pw'; // shop-worker
    const cartThere = 'shop/cart-7c4d9b8f5-rt6yz'; // shop-worker2
    const pods = new Map(shop.inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
    expect(fromOwnNode(pods.get(onWorker)!, pods.get(cartHere)!)).toBe(true);
    expect(fromOwnNode(pods.get(onWorker)!, pods.get(cartThere)!)).toBe(false);
    expect(fromOwnNode(pods.get(cartHere)!, pods.get(onWorker)!)).toBe(false); // to the node: the policies decide
    for (const cni of ['calico', 'cilium', 'calico-ebpf'] as const) {
      const e = new DataPlaneExpectations(shop, cni);
      expect(e.expect({ from: onWorker, to: cartHere, port: 8080, protocol: 'TCP' })).toMatchObject({ allowed: true, basis: 'local-node' });
      expect(e.expect({ from: onWorker, to: cartThere, port: 8080, protocol: 'TCP' })).toMatchObject({ allowed: false, basis: 'policy', policies: ['shop/allow-metrics', 'shop/cart', 'shop/default-deny'] });
    }
  });

  it('cilium: an ipBlock selects neither pods nor nodes; SCTP has no documented verdict', () => {
    const flow: Flow = { from: 'monitoring/prometheus-0', to: 'monitoring/node-exporter-m2p8r', port: 9100, protocol: 'TCP' };
    expect(new DataPlaneExpectations(shop, 'calico').expect(flow)).toMatchObject({ allowed: true, policies: ['monitoring/prometheus'] });
    expect(new DataPlaneExpectations(shop, 'cilium').expect(flow)).toMatchObject({ allowed: false, policies: ['monitoring/prometheus'] });
    expect(new DataPlaneExpectations(shop, 'cilium').expect({ ...flow, protocol: 'SCTP' })).toMatchObject({ allowed: undefined, basis: 'unsupported-protocol' });
  });

  it('dropping in-cluster ipBlocks keeps every policy isolating what it isolated', () => {
    const onlyIpBlock: NetworkPolicy = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'x', namespace: 'shop' }, spec: { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] } };
    const [stripped] = withoutInClusterIpBlocks([onlyIpBlock]);
    expect(effectivePolicyTypes(stripped!)).toEqual({ ingress: true, egress: true });
    expect(stripped!.spec.egress).toEqual([]);
    const mixed = withoutInClusterIpBlocks([{ ...onlyIpBlock, spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }, { podSelector: {} }] }, { ports: [{ port: 53, protocol: 'UDP' }] }] } }]);
    expect(mixed[0]!.spec.egress).toEqual([{ to: [{ podSelector: {} }] }, { ports: [{ port: 53, protocol: 'UDP' }] }]);
  });
});

describe('the migration question: flows whose verdict differs', () => {
  it('calico to cilium on the shop cluster: Prometheus to the node exporters, allowed only through an ipBlock', () => {
    const d = diffExpectations(shop, 'calico', 'cilium', all(shop));
    expect(d.map((x) => `${x.from}->${x.to}:${x.port}`)).toEqual(['monitoring/prometheus-0->monitoring/node-exporter-m2p8r:9100', 'monitoring/prometheus-0->monitoring/node-exporter-z5c1f:9100', 'monitoring/prometheus-0->monitoring/node-exporter-h7j3d:9100']);
    expect(d[0]!.reason).toBe(
      "allowed on calico (by monitoring/prometheus); denied on cilium (isolated by monitoring/prometheus, none allows it) — egress of monitoring/prometheus-0: an ipBlock in monitoring/prometheus covers monitoring/node-exporter-m2p8r's address, which cilium never selects by ipBlock",
    );
    expect(d[0]!.expected.calico).toMatchObject({ allowed: true });
    expect(d[0]!.expected.cilium).toMatchObject({ allowed: false });
  });

  it('an internet-wide egress ipBlock opens pod flows on Calico that Cilium keeps closed', () => {
    const d = diffExpectations(small, 'calico', 'cilium', all(small));
    const viaPods = d.filter((x) => !pod(small, x.to).hostNetwork);
    expect(viaPods.length).toBeGreaterThan(0);
    for (const x of viaPods) expect(x.reason).toMatch(/an ipBlock in \S+ covers \S+'s address, which cilium never selects by ipBlock$/);
    expect(diffExpectations(small, 'calico', 'calico-ebpf', all(small))).toEqual([]);
  });

  it('flannel against calico: every flow calico denies', () => {
    const flows = all(shop);
    const denied = expectFlows(shop, 'calico', flows).filter((e) => e.allowed === false);
    const d = diffExpectations(shop, 'flannel', 'calico', flows);
    expect(d).toHaveLength(denied.length);
    expect(d[0]!.reason).toMatch(/^allowed on flannel \(no policy engine\); denied on calico \(isolated by /);
  });
});
