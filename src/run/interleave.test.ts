import { describe, expect, it } from 'vitest';
import { budgetedSamples, MIN_BUDGET_SAMPLES, mergeRounds, planRounds, reshare, type RawMetric } from './interleave.js';

const S = { samples: 1003, warmup: 100, concurrency: 1, timeoutMs: 1000 };

describe('planRounds', () => {
  it('splits samples and warm-up evenly over the rounds and rotates which metric goes first', () => {
    const p = planRounds(['connect', 'crr', 'rr'], S, 10);
    expect(p).toHaveLength(30);
    for (const m of ['connect', 'crr', 'rr'] as const) {
      const mine = p.filter((r) => r.metric === m);
      expect(mine).toHaveLength(10);
      expect(mine.reduce((a, r) => a + r.settings.samples, 0)).toBe(1003);
      expect(Math.max(...mine.map((r) => r.settings.samples)) - Math.min(...mine.map((r) => r.settings.samples))).toBeLessThanOrEqual(1);
      expect(mine.every((r) => r.settings.warmup === 10)).toBe(true);
    }
    const firsts = [1, 2, 3, 4].map((k) => p.find((r) => r.round === k)!.metric);
    expect(firsts).toEqual(['connect', 'crr', 'rr', 'connect']);
  });

  it('one round is the old order with the whole warm-up; never more rounds than samples', () => {
    expect(planRounds(['connect', 'crr', 'rr'], S, 1).map((r) => [r.metric, r.settings.samples, r.settings.warmup])).toEqual([
      ['connect', 1003, 100],
      ['crr', 1003, 100],
      ['rr', 1003, 100],
    ]);
    expect(planRounds(['connect'], { ...S, samples: 3 }, 10)).toHaveLength(3);
  });
});

describe('mergeRounds', () => {
  const part = (samples: number[], errors: Record<string, number>, cpuTotal: number | null, server: number | null = 1): RawMetric => ({
    samplesNs: samples,
    errors,
    wallNs: 1000 * samples.length,
    cpu: cpuTotal === null ? null : { totalUsPerOp: cpuTotal, probeClientUsPerOp: 1, probeServerUsPerOp: server, dataPlaneUsPerOp: cpuTotal - 2, softirqUsPerOp: 0.5 },
  });

  it('concatenates samples in order, sums errors and wall time, weights CPU per operation', () => {
    const m = mergeRounds([part([1, 2, 3], { ECONNREFUSED: 1 }, 10), part([4], { ECONNREFUSED: 2, ETIMEDOUT: 1 }, 30)]);
    expect(m.samplesNs).toEqual([1, 2, 3, 4]);
    expect(m.errors).toEqual({ ECONNREFUSED: 3, ETIMEDOUT: 1 });
    expect(m.wallNs).toBe(4000);
    // 4 operations at 10 µs and 4 at 30 µs.
    expect(m.cpu!.totalUsPerOp).toBeCloseTo(20);
    expect(m.cpu!.probeServerUsPerOp).toBeCloseTo(1);
  });

  it('has no CPU figure when a round has none, and no server figure when a round lacks it', () => {
    expect(mergeRounds([part([1], {}, 10), part([2], {}, null)]).cpu).toBeNull();
    expect(mergeRounds([part([1], {}, 10), part([2], {}, 10, null)]).cpu!.probeServerUsPerOp).toBeNull();
  });
});

describe('the machine reference in the rounds (issue 20)', () => {
  it('asks every round of every metric for its share of a fixed reference (1000 a run, fewer only in a shorter run)', () => {
    for (const samples of [1003, 10_000, 300]) {
      const p = planRounds(['connect', 'crr', 'rr'], { ...S, samples }, 10);
      for (const m of ['connect', 'crr', 'rr'] as const) {
        const mine = p.filter((r) => r.metric === m);
        expect(mine.every((r) => (r.settings.reference?.samples ?? 0) > 0)).toBe(true);
        // 1000 a run, or as many as the metric's own samples when a short run has fewer.
        expect(mine.reduce((a, r) => a + r.settings.reference!.samples, 0)).toBe(Math.min(1000, samples));
        expect(mine.reduce((a, r) => a + r.settings.reference!.warmup, 0)).toBe(Math.min(100, samples / 10));
      }
    }
    expect(planRounds(['connect'], S, 10, { samples: 0, warmup: 0 }).every((r) => r.settings.reference === undefined)).toBe(true);
  });

  it('joins the reference samples of the rounds, and drops it when a round has none', () => {
    const ref = (xs: number[]) => ({ target: 'loopback', samplesNs: xs, errors: {}, wallNs: 10 });
    const r = (xs: number[], reference?: ReturnType<typeof ref>): RawMetric => ({ samplesNs: [1], errors: {}, wallNs: 1, cpu: null, ...(reference ? { reference } : {}) });
    expect(mergeRounds([r([1], ref([5, 6])), r([1], ref([7]))]).reference).toEqual({ target: 'loopback', samplesNs: [5, 6, 7], errors: {}, wallNs: 20 });
    expect(mergeRounds([r([1], ref([5])), r([1])]).reference).toBeUndefined();
  });

  it('weights the task-clock figures and their resolution by operations, as if summed and divided once', () => {
    const cpu = (total: number, res: number, bpf: number | null) => ({ totalUsPerOp: total, probeClientUsPerOp: total / 2, probeServerUsPerOp: total / 2, dataPlaneUsPerOp: bpf, softirqUsPerOp: 0, source: 'task-clock' as const, resolutionUsPerOp: res, wallUsPerOp: total * 1.1, bpfUsPerOp: bpf, includes: 'x', dataPlane: 'y' });
    const m = mergeRounds([
      { samplesNs: [1, 1, 1], errors: {}, wallNs: 1, cpu: cpu(10, 1, 2) },
      { samplesNs: [1], errors: {}, wallNs: 1, cpu: cpu(30, 3, null) },
    ]);
    expect(m.cpu!.totalUsPerOp).toBeCloseTo(15);
    // Edges of both windows over all operations: (1·3 + 3·1) / 4.
    expect(m.cpu!.resolutionUsPerOp).toBeCloseTo(1.5);
    expect(m.cpu!.bpfUsPerOp).toBeNull();
    expect(m.cpu!.source).toBe('task-clock');
  });
});

describe('sample budget (issue 25)', () => {
  it('cuts a slow metric to its budget, never below the floor, and leaves a fast one alone', () => {
    // 100 samples at 10 ms each in round 1: a 2000 ms budget holds 200 samples.
    expect(budgetedSamples(1000, 2000, { ops: 100, wallNs: 1e9 })).toBe(200);
    expect(budgetedSamples(1000, 500, { ops: 100, wallNs: 1e9 })).toBe(MIN_BUDGET_SAMPLES);
    expect(budgetedSamples(1000, 2000, { ops: 100, wallNs: 4e8 })).toBe(500);
    expect(budgetedSamples(1000, 2000, { ops: 100, wallNs: 3e6 })).toBe(1000);
    expect(budgetedSamples(150, 10, { ops: 15, wallNs: 1e9 })).toBe(150);
  });

  it('spreads the rest of the budget over the remaining rounds, keeping the other metrics and the order', () => {
    const p = planRounds(['connect', 'crr', 'rr'], { ...S, samples: 1000 }, 10);
    const out = reshare(p, 'connect', 1, 200, 100);
    const mine = out.filter((r) => r.metric === 'connect');
    expect(mine.reduce((a, r) => a + r.settings.samples, 0)).toBe(200);
    expect(mine).toHaveLength(10);
    expect(mine.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(out.filter((r) => r.metric !== 'connect')).toEqual(p.filter((r) => r.metric !== 'connect'));
    // Nothing left: the remaining rounds of the metric are dropped, the others kept.
    expect(reshare(p, 'crr', 1, 100, 100).filter((r) => r.metric === 'crr').map((r) => r.round)).toEqual([1]);
  });
});
