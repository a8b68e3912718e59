import { describe, expect, it } from 'vitest';
import { resolveEndpoints } from '../policy/resolve.js';
import { BUILTIN_CASES_DIR, loadCases } from './cases.js';
import { gridInventory, gridLayout, gridWorkload, instantiatePolicies, planProbes } from './grid.js';
import { plannedAddresses } from '../backends/factory.js';
import { assertTruthTableKept, verifyFillers } from './fillers.js';

const layout = gridLayout();
const addresses = await plannedAddresses(gridWorkload(layout));
const inventory = gridInventory(layout, addresses);
const { cases } = loadCases([BUILTIN_CASES_DIR], { layout, ips: addresses.ips });

describe('verifyFillers on the built-in library', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s: fillers only on isolated pods, every verdict kept', (_name, c) => {
    const { policies } = instantiatePolicies(c.policies, addresses.ips);
    const fill = verifyFillers(inventory, policies, 30);
    const probes = planProbes(layout, c.probes);
    expect(() => assertTruthTableKept(inventory, policies, fill, probes, addresses)).not.toThrow();
    const isolatedBefore = resolveEndpoints(inventory, policies).map((e) => [e.ingress.isolated, e.egress.isolated]);
    const isolatedAfter = resolveEndpoints({ ...inventory, pods: [...inventory.pods, ...fill.peers] }, [...policies, ...fill.policies])
      .filter((e) => e.pod.node !== 'virtual-peers')
      .map((e) => [e.ingress.isolated, e.egress.isolated]);
    expect(isolatedAfter).toEqual(isolatedBefore);
    expect(fill.policies).toHaveLength(30 * fill.groups.length);
    if (isolatedBefore.some(([i, e]) => i || e)) expect(fill.groups.length).toBeGreaterThan(0);
  });

  it('the guard catches a filler set that would change a verdict', () => {
    const probes = planProbes(layout, {});
    const fill = verifyFillers(inventory, [], 2);
    expect(fill.policies).toEqual([]); // nothing isolated, so nothing to put fillers on
    // Sabotage: a "filler" that isolates every pod of x for ingress and allows nothing.
    const bad = { ...fill, policies: [{ apiVersion: 'networking.k8s.io/v1' as const, kind: 'NetworkPolicy' as const, metadata: { name: 'bad', namespace: 'x' }, spec: { podSelector: {}, policyTypes: ['Ingress' as const] } }] };
    expect(() => assertTruthTableKept(inventory, [], bad, probes, addresses)).toThrow(/would change \d+ verdicts/);
  });

  it('rejects out-of-range counts', () => {
    expect(() => verifyFillers(inventory, [], -1)).toThrow(/0\.\.20000/);
    expect(verifyFillers(inventory, [], 0).policies).toEqual([]);
  });
});
