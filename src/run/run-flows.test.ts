import { describe, expect, it } from 'vitest';
import type { MeasureSettings } from '../backends/types.js';
import type { MetricName } from '../results/schema.js';
import { measureFlows } from './run-flows.js';

const FLOW = { from: 'client', to: 'server', port: 8080, protocol: 'TCP', reason: 'benchmark', rules: 0, allowed: true } as const;

/** A backend whose operations take `msPerOp` (connect and CRR) or 0.03 ms (RR); records every call's samples. */
function fakeBackend(msPerOp: number) {
  const calls: Array<{ metric: MetricName; samples: number; warmup: number }> = [];
  return {
    calls,
    measure: async (_f: unknown, metric: MetricName, s: MeasureSettings) => {
      calls.push({ metric, samples: s.samples, warmup: s.warmup });
      const ns = (metric === 'rr' ? 0.03 : msPerOp) * 1e6;
      return { samplesNs: Array.from({ length: s.samples }, (_, i) => ns * (1 + (i % 7) / 100)), errors: {}, wallNs: ns * s.samples, cpu: null };
    },
  };
}

const S = { samples: 1000, warmup: 100, concurrency: 1, timeoutMs: 1000, seed: 1 };

describe('measureFlows with a sample budget (issue 25)', () => {
  it('stops slow metrics at the budget (never below 200), spreads them over every round, records why; leaves fast ones whole', async () => {
    const b = fakeBackend(10);
    const [f] = await measureFlows(b, [FLOW as never], { ...S, sampleBudgetMs: 1000 }, 10);
    for (const m of ['connect', 'crr'] as const) {
      expect(f!.metrics[m]!.summary.count).toBe(200);
      expect(b.calls.filter((c) => c.metric === m)).toHaveLength(10);
      expect(f!.metrics[m]!.sampling).toMatchObject({ planned: 1000, budgetMs: 1000 });
      expect(f!.metrics[m]!.sampling!.reason).toContain('200 of 1000 samples');
    }
    expect(f!.metrics.rr!.summary.count).toBe(1000);
    expect(f!.metrics.rr!.sampling).toBeUndefined();
  });

  it('a budget the metric fits in changes nothing; no budget takes every sample', async () => {
    const b = fakeBackend(0.5);
    const [f] = await measureFlows(b, [FLOW as never], { ...S, sampleBudgetMs: 1000 }, 10);
    expect(f!.metrics.connect!.summary.count).toBe(1000);
    expect(f!.metrics.connect!.sampling).toBeUndefined();
    const [g] = await measureFlows(fakeBackend(10), [FLOW as never], S, 10);
    expect(g!.metrics.connect!.summary.count).toBe(1000);
  });
});

describe('measureFlows with --metrics (an adaptive extension measures only the open metrics)', () => {
  it('measures only the metrics asked for, interleaved in every round; the others are null; records each metric its wall', async () => {
    const b = fakeBackend(1);
    const [f] = await measureFlows(b, [FLOW as never], { ...S, metrics: ['rr', 'connect'] }, 10);
    expect(new Set(b.calls.map((c) => c.metric))).toEqual(new Set(['connect', 'rr']));
    expect(b.calls.filter((c) => c.metric === 'rr')).toHaveLength(10);
    expect(f!.metrics.crr).toBeNull();
    expect(f!.metrics.connect!.summary.count).toBe(1000);
    expect(Object.keys(f!.metricMs).sort()).toEqual(['connect', 'rr']);
    const [g] = await measureFlows(fakeBackend(1), [FLOW as never], S, 10);
    expect(Object.keys(g!.metricMs).sort()).toEqual(['connect', 'crr', 'rr']);
  });
});

describe('warm-up under a sample budget', () => {
  it('caps the later rounds\' warm-up of a slow metric to a share of the budget (never below 2 a round) and records it; fast metrics keep theirs', async () => {
    const b = fakeBackend(10);
    const [f] = await measureFlows(b, [FLOW as never], { ...S, sampleBudgetMs: 1000 }, 10);
    const connect = b.calls.filter((c) => c.metric === 'connect').map((c) => c.warmup);
    expect(connect).toEqual([10, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(f!.metrics.connect!.warmup).toMatchObject({ planned: 100, taken: 28 });
    expect(f!.metrics.connect!.warmup!.reason).toMatch(/at most 20% of the 1000 ms budget/);
    expect(b.calls.filter((c) => c.metric === 'rr').every((c) => c.warmup === 10)).toBe(true);
    expect(f!.metrics.rr!.warmup).toBeUndefined();
    // Without a budget every round warms up as planned.
    const g = fakeBackend(10);
    await measureFlows(g, [FLOW as never], S, 10);
    expect(g.calls.every((c) => c.warmup === 10)).toBe(true);
  });
});
