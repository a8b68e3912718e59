import { describe, expect, it } from 'vitest';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { cniAdvice } from './advice.js';
import { writeSyntheticSweep } from './test-support/fixtures.js';
import { tempDir } from '../test-support/temp.js';

describe('capacity advice for a run that completed over capacity', () => {
  const dir = tempDir('cb-advice-');
  writeSyntheticSweep(dir, { curves: [{ cni: 'cilium', baseNs: 48_000, slopeNs: 0 }], policies: [0, 1000, 20000], repetitions: 1, samples: 100 });
  const base = analyze(collectResults([dir]).results);
  const withState = (state: Record<string, number | string | boolean>) => ({ ...base, cnis: base.cnis.map((c) => ({ ...c, stateAtMax: { ...c.stateAtMax, ...state } })) });
  const overflowItem = (a: typeof base) => cniAdvice(a).find((i) => i.title === 'Capacity limits: overflow');

  it('names the overflow, what the client saw and what the model says to do, from the model state', () => {
    const item = overflowItem(
      withState({
        capacityOverflowEndpoints: 1,
        capacityOverflow: 'bench-server/server-0 needs 20003 policy-map entries, capacity 16384: map sync skipped, the map keeps the 3 entries it held before (stale; Cilium 1.18 default)',
        capacityOverflowAdvice: 'By default Cilium keeps the pod running and skips the map sync, so the endpoint enforces a stale policy. Raise `bpf.policyMapMax` (up to 65536) above the 20003 entries needed.',
        overflowClientVerdict: 'allowed',
      }),
    );
    expect(item?.text).toMatch(/^Cilium ran over its capacity at 20000 policies: bench-server\/server-0 needs 20003 policy-map entries, capacity 16384/);
    expect(item?.text).toMatch(/client was \*\*allowed\*\*/);
    expect(item?.text).toMatch(/stale policy/);
    expect(item?.text).toMatch(/above the 20003 entries needed/);
    // Without an overflow in the state there is no such paragraph.
    expect(overflowItem(base)).toBeUndefined();
  });

  it('reads a result written before the generic keys (Cilium policyMapOverflow)', () => {
    const item = overflowItem(withState({ policyMapOverflowEndpoints: 1, policyMapOverflow: 'x/a needs 300 policy-map entries, capacity 256', overflowClientVerdict: 'denied' }));
    expect(item?.text).toMatch(/x\/a needs 300 policy-map entries, capacity 256\. Afterwards the probe client was \*\*denied\*\*/);
  });
});

describe("advice on Calico's data planes and on Canal, from the measured costs", () => {
  const dir = tempDir('cb-advice-');
  writeSyntheticSweep(dir, {
    curves: [
      { cni: 'flannel', baseNs: 40_000, slopeNs: 0 },
      { cni: 'canal', baseNs: 45_000, slopeNs: 900 },
      { cni: 'calico', baseNs: 36_000, slopeNs: 1000 },
      { cni: 'calico-nftables', baseNs: 37_000, slopeNs: 600 },
      { cni: 'calico-ebpf', baseNs: 38_000, slopeNs: 100 },
      { cni: 'cilium', baseNs: 32_000, slopeNs: 0 },
    ],
    policies: [0, 1000, 2000, 5000],
    repetitions: 3,
    samples: 300,
  });
  const a = analyze(collectResults([dir]).results, { seed: 1 });
  const ebpfState = (chain: number) => ({ ...a, cnis: a.cnis.map((c) => (c.cni === 'calico-ebpf' ? { ...c, stateAtMax: { ...c.stateAtMax, maxProgramsPerChain: chain } } : c)) });

  it('ranks the Calico data planes by what one more policy costs, and says eBPF is not O(1) here', () => {
    const item = cniAdvice(a).find((i) => i.title === "Choosing between Calico's data planes");
    expect(item).toBeDefined();
    const t = item!.text;
    // Cheapest first: eBPF (~100 ns/policy), then nftables (~600), then iptables (~1000).
    expect(t.indexOf('Calico (eBPF)')).toBeLessThan(t.indexOf('Calico (nftables)'));
    expect(t.indexOf('Calico (nftables)')).toBeLessThan(t.indexOf('Calico (iptables)'));
    const ratio = Number(/costs a new connection ([\d.]+)× as much on Calico \(iptables\) as on Calico \(eBPF\)/.exec(t)?.[1]);
    expect(ratio).toBeGreaterThan(7);
    expect(ratio).toBeLessThan(14);
    expect(t).toMatch(/"eBPF" alone does not mean O\(1\)/);
    expect(t).toMatch(/Cilium's hash-map lookup stayed flat/);
  });

  it('names where the eBPF chaining limit bites, from the model state at the largest count', () => {
    const t = cniAdvice(ebpfState(4)).find((i) => i.title === "Choosing between Calico's data planes")!.text;
    // 4 programs at 5000 policies, 32 allowed by the model before it recorded Felix's limit: about 40000 policies.
    expect(t).toMatch(/took 4 chained programs per endpoint; the kernel's tail-call limit allows 32, so about 40000 policies/);
    // Felix's 24, as the model records it: about 30000.
    const felix = { ...a, cnis: a.cnis.map((c) => (c.cni === 'calico-ebpf' ? { ...c, stateAtMax: { ...c.stateAtMax, maxProgramsPerChain: 4, chainProgramLimit: 24 } } : c)) };
    expect(cniAdvice(felix).find((i) => i.title === "Choosing between Calico's data planes")!.text).toMatch(/took 4 chained programs per endpoint; Felix's MaxSubPrograms allows 24, so about 30000 policies/);
    expect(cniAdvice(a).find((i) => i.title === "Choosing between Calico's data planes")!.text).not.toMatch(/chained program/);
  });

  it('reads Canal against Flannel: enforced, its floor, and its per-policy cost', () => {
    const t = cniAdvice(a).find((i) => i.title === 'Canal: policy for a Flannel cluster')!.text;
    expect(t).toMatch(/policies were enforced on Canal where Flannel ignored them/);
    expect(t).toMatch(/With 0 policies a new connection costs 4\d\.\d µs on Canal against 4\d\.\d µs on Flannel/);
    const perPolicy = Number(/adds about (\d+) ns per new connection/.exec(t)?.[1]);
    expect(perPolicy).toBeGreaterThan(700);
    expect(perPolicy).toBeLessThan(1100);
  });

  it('gives neither paragraph when the data planes it compares were not measured', () => {
    const only = { ...a, cnis: a.cnis.filter((c) => c.cni === 'calico' || c.cni === 'cilium') };
    const titles = cniAdvice(only).map((i) => i.title);
    expect(titles).not.toContain("Choosing between Calico's data planes");
    expect(titles).not.toContain('Canal: policy for a Flannel cluster');
  });
});
