import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { validatePolicies } from '../policy/resolve.js';
import { cidrContains } from '../policy/cidr.js';
import { podCidrOf } from './cluster.js';
import { generateWorkload } from './generate-shape.js';
import { workloadToList } from './list.js';
import { loadWorkload, parseWorkload, workloadFormOf } from './load.js';
import { loadShape, parseShape } from './shape.js';
import { parseSnapshot } from './snapshot.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'scenarios', 'workloads');
const small = () => loadWorkload(join(SHIPPED, 'small.yaml'));

describe('the shipped cluster shapes', () => {
  it('small.yaml is about 50 pods, large.yaml at least 1500 pods and 1000 policies', () => {
    const s = small();
    expect(s.inventory.pods.length).toBeGreaterThanOrEqual(40);
    expect(s.inventory.pods.length).toBeLessThanOrEqual(60);
    const l = loadWorkload(join(SHIPPED, 'large.yaml'));
    expect(l.inventory.pods.length).toBeGreaterThanOrEqual(1500);
    expect(l.policies.length).toBeGreaterThanOrEqual(1000);
    expect(l.inventory.namespaces).toHaveLength(34);
  });

  it('writes policies the API server would accept, and addresses from each node pod CIDR', () => {
    for (const w of [small(), loadWorkload(join(SHIPPED, 'large.yaml'))]) {
      expect(validatePolicies(w.policies)).toEqual([]);
      const ips = w.inventory.pods.filter((p) => !p.hostNetwork).map((p) => p.ip);
      expect(new Set(ips).size).toBe(ips.length);
      for (const p of w.inventory.pods.filter((x) => !x.hostNetwork)) expect(cidrContains(podCidrOf(w.nodes.indexOf(p.node)), p.ip)).toBe(true);
      const perNode = new Map<string, number>();
      for (const p of w.inventory.pods) perNode.set(p.node, (perNode.get(p.node) ?? 0) + 1);
      expect(Math.max(...perNode.values())).toBeLessThanOrEqual(253);
    }
  });
});

describe('the generator', () => {
  const shape = loadShape(join(SHIPPED, 'small.yaml'));

  it('is deterministic in its seed', () => {
    expect(generateWorkload(shape)).toEqual(generateWorkload(shape));
    expect(generateWorkload({ ...shape, seed: shape.seed + 1 }).policies).not.toEqual(generateWorkload(shape).policies);
  });

  it('writes the habits of real clusters', () => {
    const w = generateWorkload(shape);
    const names = w.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    const appNamespaces = w.inventory.namespaces.map((n) => n.name).filter((n) => n !== 'kube-system' && n !== 'monitoring');
    for (const ns of appNamespaces) expect(names).toContain(`${ns}/default-deny`);
    const json = JSON.stringify(w.policies);
    // DNS egress to kube-system/kube-dns, an AND peer across namespaces, named ports, a port range, ipBlocks.
    expect(names.filter((n) => n.endsWith('/allow-dns')).length).toBeGreaterThan(0);
    expect(json).toContain('{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}');
    expect(json).toContain('{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}},"podSelector":{"matchLabels":{"app":"prometheus"}}}');
    expect(json).toMatch(/"port":"[a-z]+"/);
    expect(json).toContain('"endPort":30009');
    expect(json).toContain('{"ipBlock":{"cidr":"0.0.0.0/0","except":["169.254.169.254/32"]}}');
    // The OR form the shape asks for as a mistake: a namespaceSelector-only peer beside a podSelector-only one.
    expect(w.policies.some((p) => (p.spec.ingress ?? []).some((r) => (r.from ?? []).some((f) => f.namespaceSelector && !f.podSelector)))).toBe(true);
    expect(w.inventory.pods.filter((p) => p.hostNetwork).map((p) => p.node)).toEqual(w.nodes);
    expect(w.source).toMatchObject({ kind: 'shape', seed: 7, scale: 1 });
  });

  it('scales the application namespaces with the scale knob', () => {
    const one = generateWorkload(shape);
    const three = generateWorkload(shape, { scale: 3 });
    expect(three.inventory.namespaces.length - 2).toBe(3 * (one.inventory.namespaces.length - 2));
    expect(() => generateWorkload({ ...shape, nodes: 1 }, { scale: 100 })).toThrow(InputError);
  });

  it('round-trips through a kubectl List and the importer', () => {
    const w = generateWorkload(shape);
    const back = parseSnapshot('small.json', JSON.stringify(workloadToList(w))).workload!;
    expect(back.inventory).toEqual(w.inventory);
    expect(back.policies).toEqual(w.policies);
    expect(back.nodes).toEqual(w.nodes);
  });
});

describe('shape files: every problem at file:line:column', () => {
  it('names unknown keys, wrong values and impossible combinations', () => {
    const text = 'name: t\nnodes: 1\nnamespaces: 10\nappsPerNamespace: 10\nreplicas: { min: 5, max: 30 }\npolicies:\n  defaultDeny: 2\n  alowDns: 1\n';
    const { problems } = parseShape('t.yaml', text);
    expect(problems).toEqual([
      { where: 't.yaml:7:16', message: 'policies.defaultDeny: must be at most 1, got 2' },
      { where: 't.yaml:8:3', message: "unknown key 'alowDns' in policies" },
    ]);
    const second = parseShape('t.yaml', 'name: t\nnodes: 2\nnamespaces: 10\nappsPerNamespace: 10\nreplicas: { min: 5, max: 30 }\n').problems;
    expect(second).toEqual([{ where: 't.yaml:2:8', message: expect.stringMatching(/^up to 3003 pods over 2 nodes is up to 1502 a node, but a node's pod CIDR \(10\.244\.<node>\.0\/24\) holds 253: set nodes to at least 12$/) }]);
    expect(parseShape('t.yaml', 'name: t\nnodes: 2\nnamespaces: 1\nappsPerNamespace: 1\nreplicas: { min: 5, max: 3 }\n').problems).toEqual([{ where: 't.yaml:5:18', message: 'replicas.min (5) is above replicas.max (3)' }]);
    expect(parseShape('t.yaml', 'name: T\n').problems.map((p) => p.message)).toEqual(['name: must be lowercase letters, digits and -, got "T"', 'nodes: required (number)', 'namespaces: required (number)', 'appsPerNamespace: required (number)']);
  });

  it('tells the two workload forms apart', () => {
    expect(workloadFormOf('{"kind": "List"}')).toBe('snapshot');
    expect(workloadFormOf('apiVersion: v1\nkind: List\nitems: []\n')).toBe('snapshot');
    expect(workloadFormOf('name: small\nnodes: 3\n')).toBe('shape');
    expect(() => parseWorkload('w.yaml', 'name: small\n')).toThrow(/nodes: required/);
  });
});
