import { describe, expect, it } from 'vitest';
import { bootstrapQuantiles, quantile, seededRandom, sortedCopy, summarize } from './summary.js';

describe('quantile', () => {
  it('interpolates like numpy/R type 7', () => {
    const s = sortedCopy([1, 2, 3, 4]);
    expect(quantile(s, 0)).toBe(1);
    expect(quantile(s, 1)).toBe(4);
    expect(quantile(s, 0.5)).toBe(2.5);
    expect(quantile(s, 0.25)).toBeCloseTo(1.75, 12);
  });

  it('sorts numerically, not as strings', () => {
    expect(Array.from(sortedCopy([10, 9, 100, 1]))).toEqual([1, 9, 10, 100]);
  });
});

describe('summarize', () => {
  it('gives exact percentiles of 1..1000', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    const s = summarize(values, { resamples: 200 });
    expect(s.count).toBe(1000);
    expect(s.min).toBe(1);
    expect(s.max).toBe(1000);
    expect(s.mean).toBe(500.5);
    expect(s.p50).toBe(500.5);
    expect(s.p90).toBeCloseTo(900.1, 9);
    expect(s.p99).toBeCloseTo(990.01, 9);
    expect(s.p999).toBeCloseTo(999.001, 9);
  });

  it('returns NaN fields, not a crash, for no samples', () => {
    expect(summarize([]).count).toBe(0);
    expect(Number.isNaN(summarize([]).p50)).toBe(true);
  });

  it('bootstrap CI of the median covers the true median and is reproducible by seed', () => {
    const rand = seededRandom(7);
    // Exponential with median ln2*100 ≈ 69.3
    const values = Array.from({ length: 5000 }, () => -Math.log(1 - rand()) * 100);
    const a = summarize(values, { seed: 3 });
    const b = summarize(values, { seed: 3 });
    expect(a.ci95).toEqual(b.ci95);
    const [lo, hi] = a.ci95.p50;
    expect(lo).toBeLessThan(a.p50);
    expect(hi).toBeGreaterThan(a.p50);
    expect(lo).toBeLessThan(69.3);
    expect(hi).toBeGreaterThan(69.3);
    // A 5000-sample median CI is narrow: a few percent of the value.
    expect(hi - lo).toBeLessThan(10);
  });

  it('bootstrap CI narrows as samples grow', () => {
    const rand = seededRandom(11);
    const draw = (n: number) => Array.from({ length: n }, () => rand() * 100);
    const [small] = bootstrapQuantiles(sortedCopy(draw(200)), [0.5], { seed: 1 });
    const [large] = bootstrapQuantiles(sortedCopy(draw(20000)), [0.5], { seed: 1 });
    expect(large![1] - large![0]).toBeLessThan((small![1] - small![0]) / 3);
  });
});
