import { describe, expect, it } from 'vitest';
import { hierarchicalCi, normalFrom, quantileReplicate, runLevelCi, welch } from './hierarchical.js';
import { seededRandom, sortedCopy } from './summary.js';

/** Runs whose true medians scatter around `truth` (run-to-run sd), each with many samples of within-run noise. */
function synthRuns(seed: number, runs: number, samples: number, truth: number, betweenSd: number, withinSd: number): Float64Array[] {
  const g = normalFrom(seededRandom(seed));
  return Array.from({ length: runs }, () => {
    const centre = truth + betweenSd * g();
    return sortedCopy(Array.from({ length: samples }, () => centre + withinSd * g()));
  });
}

describe('hierarchical bootstrap CI', () => {
  it('covers the true value in ≥ 90% of seeds with between-run variance, where the pooled within-run CI does not', () => {
    const seeds = 200;
    let hier = 0;
    let pooled = 0;
    for (let s = 1; s <= seeds; s++) {
      const runs = synthRuns(s * 7919, 3, 2000, 100, 10, 20);
      const e = hierarchicalCi(runs, 0.5, { seed: s, resamples: 500 });
      expect(e.level).toBe('runs');
      if (e.ci95[0] <= 100 && 100 <= e.ci95[1]) hier++;
      if (e.withinRunCi95[0] <= 100 && 100 <= e.withinRunCi95[1]) pooled++;
    }
    expect(hier / seeds).toBeGreaterThanOrEqual(0.9);
    expect(pooled / seeds).toBeLessThan(0.5);
  });

  it('without between-run variance it is still about as wide as needed (covers ≥ 90%) and not absurdly wide', () => {
    let covered = 0;
    let width = 0;
    for (let s = 1; s <= 100; s++) {
      const runs = synthRuns(s * 104729, 5, 2000, 100, 0, 20);
      const e = hierarchicalCi(runs, 0.5, { seed: s, resamples: 500 });
      if (e.ci95[0] <= 100 && 100 <= e.ci95[1]) covered++;
      width += e.ci95[1] - e.ci95[0];
    }
    expect(covered).toBeGreaterThanOrEqual(90);
    // Within-run SE of a median of 10000 normal samples with sd 20 is ~0.25; the CI should be a few of those.
    expect(width / 100).toBeLessThan(5);
  });

  it('one run: the CI is the within-run one and says so', () => {
    const e = hierarchicalCi(synthRuns(3, 1, 5000, 100, 10, 20), 0.5);
    expect(e.level).toBe('within-run');
    expect(e.runs).toBe(1);
    expect(e.ci95[0]).toBeLessThan(e.value);
    expect(e.ci95[1]).toBeGreaterThan(e.value);
    expect(Number.isNaN(e.betweenRunSd)).toBe(true);
  });

  it('is reproducible from its seed', () => {
    const runs = synthRuns(5, 4, 1000, 50, 5, 10);
    expect(hierarchicalCi(runs, 0.99, { seed: 9 })).toEqual(hierarchicalCi(runs, 0.99, { seed: 9 }));
  });

  it('order-statistic replicate: centred on the quantile, spread as the binomial says', () => {
    const sorted = Float64Array.from({ length: 10001 }, (_, i) => i);
    expect(quantileReplicate(sorted, 0.5, 0)).toBe(5000);
    // sd of the rank is √(n q (1−q)) = 50
    expect(quantileReplicate(sorted, 0.5, 1)).toBeCloseTo(5050, -1);
  });
});

describe('run-level t interval and Welch test', () => {
  it('runLevelCi: t interval over runs; none for one run', () => {
    const r = runLevelCi([10, 12, 14]);
    expect(r.value).toBe(12);
    // sd 2, se 2/√3, t(2) = 4.303
    expect(r.ci95[1] - 12).toBeCloseTo(4.303 * (2 / Math.sqrt(3)), 2);
    expect(Number.isNaN(runLevelCi([5]).ci95[0])).toBe(true);
  });

  it('welch: matches a hand computation and gives no p-value with fewer than 2 runs a side', () => {
    const w = welch([1, 2, 3], [4, 5, 6]);
    expect(w.diff).toBe(3);
    expect(w.dof).toBeCloseTo(4, 6);
    expect(w.t).toBeCloseTo(3 / Math.sqrt(2 / 3), 6);
    expect(w.p).toBeCloseTo(0.0213, 3);
    expect(Number.isNaN(welch([1], [2, 3]).p)).toBe(true);
  });
});
