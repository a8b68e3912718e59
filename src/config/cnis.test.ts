// The CNI catalogue holds together: its orders, its colours, and the names its entries point at.
import { describe, expect, it } from 'vitest';
import { CNI_CATALOGUE, CNI_ENTRIES, CNIS, CNIS_IN_REPORT_ORDER, cniEntry } from './cnis.js';

describe('the CNI catalogue', () => {
  it('lists CNIs for flags in catalogue order, and for reports from the floor to the hash-map lookup', () => {
    const seven = new Set(['none', 'flannel', 'calico', 'cilium', 'calico-ebpf', 'calico-nftables', 'canal']);
    // A CNI added later may go anywhere; these keep their places.
    expect(CNIS.filter((c) => seven.has(c))).toEqual(['none', 'flannel', 'calico', 'cilium', 'calico-ebpf', 'calico-nftables', 'canal']);
    expect(CNIS_IN_REPORT_ORDER.filter((c) => seven.has(c))).toEqual(['none', 'flannel', 'canal', 'calico', 'calico-nftables', 'calico-ebpf', 'cilium']);
    expect([...CNIS_IN_REPORT_ORDER].sort()).toEqual([...CNIS].sort());
  });

  it('gives every CNI its own report position and chart colour, and a name per entry', () => {
    expect(new Set(CNI_ENTRIES.map((e) => e.reportOrder)).size).toBe(CNIS.length);
    expect(new Set(CNI_ENTRIES.map((e) => e.chartColor.toLowerCase())).size).toBe(CNIS.length);
    for (const e of CNI_ENTRIES) expect(e.chartColor).toMatch(/^#[0-9a-f]{6}$/i);
    for (const c of CNIS) expect(CNI_CATALOGUE[c].name).toBe(c);
  });

  it('a policy engine laid over another CNI names one of the catalogue; exactly one entry is the floor', () => {
    for (const e of CNI_ENTRIES.filter((x) => x.policyEngineOver !== undefined)) expect(CNIS).toContain(e.policyEngineOver);
    expect(CNI_ENTRIES.filter((e) => e.floor).map((e) => e.name)).toEqual(['none']);
  });

  it('a name it does not know (from an old or foreign result) reads as a plain entry listed last', () => {
    expect(cniEntry('weave')).toMatchObject({ name: 'weave', displayName: 'weave', reportName: 'weave' });
    expect(cniEntry('weave').reportOrder).toBeGreaterThan(Math.max(...CNI_ENTRIES.map((e) => e.reportOrder)));
  });
});
