import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyEvaluator } from '../policy/evaluate.js';
import { anonymizeList, renamer } from './anonymize.js';
import type { ClusterWorkload } from './cluster.js';
import { findPolicyProblems } from './findings.js';
import { probeFlows } from './flows.js';
import { workloadToList } from './list.js';
import { loadWorkload } from './load.js';
import { parseSnapshot } from './snapshot.js';

const SALT = 'a salt only the test knows';
const small = loadWorkload(join(import.meta.dirname, '..', '..', 'scenarios', 'workloads', 'small.yaml'));
const shopText = readFileSync(join(import.meta.dirname, 'fixtures', 'shop-cluster.json'), 'utf8');

/** Every ordered pod pair on every declared port, with the reference evaluator's verdict. */
function verdictMatrix(w: ClusterWorkload): Map<string, boolean> {
  const ev = new PolicyEvaluator(w.inventory, w.policies);
  const pods = new Map(w.inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const out = new Map<string, boolean>();
  for (const f of probeFlows(w, { max: 1e9 }).flows) {
    out.set(`${f.from}>${f.to}:${f.port}/${f.protocol}`, ev.evaluate({ src: pods.get(f.from)!, dst: pods.get(f.to)!, port: f.port, protocol: f.protocol }).allowed);
  }
  return out;
}

describe('--anonymize', () => {
  const r = renamer(SALT);
  const anonymized = anonymizeList(workloadToList(small), SALT);
  const back = parseSnapshot('anon.json', JSON.stringify(anonymized)).workload!;

  it('keeps every verdict of the reference evaluator, up to renaming', () => {
    const before = verdictMatrix(small);
    const after = verdictMatrix(back);
    expect(after.size).toBe(before.size);
    const rename = (podKey: string) => podKey.split('/').map(r.name).join('/');
    let denied = 0;
    for (const [k, allowed] of before) {
      const [, from, to, port] = /^(.*)>(.*):(.*)$/.exec(k)!;
      expect(after.get(`${rename(from!)}>${rename(to!)}:${port}`)).toBe(allowed);
      if (!allowed) denied++;
    }
    // The matrix is not trivial: the shape denies most pairs and allows some.
    expect(denied).toBeGreaterThan(0);
    expect(denied).toBeLessThan(before.size);
  });

  it('keeps the findings, up to renaming', () => {
    const kinds = (w: ClusterWorkload) => findPolicyProblems(w, { cnis: ['flannel'] }).map((f) => `${f.kind} ${f.field ?? ''}`).sort();
    expect(kinds(back)).toEqual(kinds(small));
  });

  it('leaves no name or label value behind, and keeps addresses, ports and Kubernetes’ own names', () => {
    const text = JSON.stringify(anonymized);
    const secrets = new Set([...small.inventory.namespaces.map((n) => n.name), ...small.inventory.pods.flatMap((p) => [p.name, p.node, ...Object.values(p.labels)]), ...small.policies.map((p) => p.metadata.name)]);
    // Kept on purpose: Kubernetes' own names; 'v1' is a label value here and also every item's apiVersion.
    for (const kept of ['kube-system', 'kube-dns', 'v1']) secrets.delete(kept);
    expect([...secrets].filter((s) => text.includes(`"${s}"`))).toEqual([]);
    expect(back.inventory.pods.map((p) => p.ip)).toEqual(small.inventory.pods.map((p) => p.ip));
    expect(text).toContain('"kube-system"');
    expect(text).toContain('"kubernetes.io/metadata.name"');
    expect(back.inventory.pods.find((p) => p.labels['k8s-app'] === 'kube-dns')?.ports.map((p) => [p.containerPort, p.protocol])).toEqual([
      [53, 'UDP'],
      [53, 'TCP'],
      [9153, 'TCP'],
    ]);
  });

  it('is the same with the same salt, different with another', () => {
    expect(anonymizeList(workloadToList(small), SALT)).toEqual(anonymized);
    expect(anonymizeList(workloadToList(small), 'another salt')).not.toEqual(anonymized);
  });

  it("writes names the API server accepts, and hashes a label key's own domain", () => {
    expect(r.name('payments')).toMatch(/^a[a-z2-7]{12}$/);
    expect(r.name('')).toBe('');
    expect(r.portName('metrics')).toMatch(/^p[a-z2-7]{10}$/);
    expect(r.labelKey('app')).toBe('app');
    expect(r.labelKey('kubernetes.io/metadata.name')).toBe('kubernetes.io/metadata.name');
    expect(r.labelKey('app.kubernetes.io/name')).toBe('app.kubernetes.io/name');
    expect(r.labelKey('acme.example.com/cost-center')).toMatch(/^k[a-z2-7]{10}\.anon\/cost-center$/);
  });

  it('drops what the importer does not read from a real kubectl List', () => {
    const list = anonymizeList(JSON.parse(shopText), SALT);
    const text = JSON.stringify(list);
    for (const gone of ['managedFields', 'annotations', 'last-applied', 'registry.example', 'uid', 'shop-worker', 'payments-api']) expect(text).not.toContain(gone);
    const w = parseSnapshot('shop-anon.json', text).workload!;
    const original = parseSnapshot('shop.json', shopText).workload!;
    expect(w.inventory.pods).toHaveLength(original.inventory.pods.length);
    expect(w.policies).toHaveLength(original.policies.length);
    expect(w.source).toMatchObject({ skippedPods: [{ reason: expect.stringMatching(/^not scheduled/) }, { reason: expect.stringMatching(/^finished/) }] });
  });
});
