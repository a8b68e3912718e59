import { describe, expect, it } from 'vitest';
import { mergeRounds, planRounds, type RawMetric } from './interleave.js';

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
