import { describe, expect, it } from 'vitest';
import { compareRuns, decideRuns, holm, mannWhitney, quantileCi } from './compare.js';
import { seededRandom, sortedCopy } from './summary.js';

/** Connect-latency-like samples: log-normal around 40 µs with a long right tail. */
function latencies(seed: number, n = 5000, scale = 1): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return 40_000 * Math.exp(0.25 * z) * scale;
  });
}

describe('mannWhitney', () => {
  it('gives p = 1 for identical samples and tiny p for a clear shift', () => {
    const a = latencies(1);
    expect(mannWhitney(a, a).p).toBeCloseTo(1, 6);
    const shifted = mannWhitney(a, a.map((x) => x * 1.3));
    expect(shifted.p).toBeLessThan(1e-10);
    expect(shifted.commonLanguageEffect).toBeGreaterThan(0.7);
  });

  it('matches a hand-computed U with ties', () => {
    // baseline 1,2,2 ; current 2,3: pooled ranks 1, 3,3,3 (ties at 2), 5 → current rank sum 3+5 = 8 → U = 8 − 3 = 5
    expect(mannWhitney([1, 2, 2], [2, 3]).u).toBe(5);
  });

  it('applies the tie and the continuity corrections (values of the normal approximation with both, as statistics packages give)', () => {
    // Ties 2,2,2 (t = 3): σ² = n1·n2/12 · (n + 1 − Σ(t³ − t)/(n(n − 1))) = 0.5 · (6 − 24/20) = 2.4; z = (5 − 3 − ½)/√2.4.
    // Without the tie term z = 1.5/√3 (p 0.386); without the continuity ½, z = 2/√2.4 (p 0.197).
    const small = mannWhitney([1, 2, 2], [2, 3]);
    expect(small.z).toBeCloseTo(1.5 / Math.sqrt(2.4), 10);
    expect(small.p).toBeCloseTo(0.332922, 5);
    // Ties across both sides (3,3; 5,5; 7,7,7; 8,8): U = 30.5 of 42, p 0.194199.
    const larger = mannWhitney([1, 3, 3, 5, 7, 8, 8], [5, 6, 7, 7, 9, 12]);
    expect(larger.u).toBe(30.5);
    expect(larger.p).toBeCloseTo(0.194199, 5);
    // The correction goes towards the mean from either side: the mirrored test gives the same p.
    expect(mannWhitney([5, 6, 7, 7, 9, 12], [1, 3, 3, 5, 7, 8, 8]).p).toBeCloseTo(larger.p, 12);
  });
});

describe('quantileCi', () => {
  it('covers the true median of a uniform sample', () => {
    const rand = seededRandom(4);
    const s = sortedCopy(Array.from({ length: 2000 }, () => rand()));
    const [lo, hi] = quantileCi(s, 0.5);
    expect(lo).toBeLessThan(0.5);
    expect(hi).toBeGreaterThan(0.5);
    expect(hi - lo).toBeLessThan(0.06);
  });
});

describe('run-level gate (compareRuns, decideRuns, holm)', () => {
  const runsAt = (seed: number, runs: number, medianNs: number, betweenCv: number) => {
    const rand = seededRandom(seed);
    return Array.from({ length: runs }, (_, k) => {
      const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      return latencies(seed * 31 + k, 400, (medianNs / 40_000) * Math.exp(betweenCv * z));
    });
  };

  it('minimum repetitions: fewer than 3 runs a side are never significant, however large the change', () => {
    const rows = decideRuns([compareRuns(runsAt(1, 2, 40_000, 0.01), runsAt(2, 2, 80_000, 0.01), 0.5)]);
    expect(rows[0]!.judged).toBe(false);
    expect(rows[0]!.verdict).toBe('not enough repetitions');
    expect(rows[0]!.significant).toBe(false);
    expect(rows[0]!.change).toBeGreaterThan(0.8);
    const three = decideRuns([compareRuns(runsAt(1, 3, 40_000, 0.01), runsAt(2, 3, 80_000, 0.01), 0.5)]);
    expect(three[0]!.verdict).toBe('regression');
  });

  it('A/A with run-to-run variation: flags ≤ α of comparisons of 6 metrics, where the pooled-sample test flags most', () => {
    let flagged = 0;
    let pooledFlagged = 0;
    // 1000 trials: the rate is 5.7% (over 600), its standard error here 0.7 points, the bound 3.2 of them away. Over
    // the 60 this used to take (3-point error) the bound was less than one error away, and the test took 4.8 s of
    // the default 5 s on the loaded machine.
    const trials = 1000;
    for (let t = 0; t < trials; t++) {
      const rows = [0.5, 0.99, 0.5, 0.99, 0.5, 0.99].map((q, m) => compareRuns(runsAt(1000 + t * 13 + m, 3, 40_000, 0.1), runsAt(5000 + t * 17 + m, 3, 40_000, 0.1), q));
      if (decideRuns(rows).some((r) => r.significant)) flagged++;
      if (rows.some((r) => r.pooledSamplesP < 0.05)) pooledFlagged++;
    }
    expect(flagged / trials).toBeLessThanOrEqual(0.08);
    expect(pooledFlagged / trials).toBeGreaterThan(0.5);
  }, 300_000);

  it('one-sided families: identical runs give a regression in ≤ α of 12-row comparisons; a 25% slow-down in one row is caught far more often than by a two-sided test', () => {
    const trials = 80;
    let falseRegressions = 0;
    let caught = 0;
    let caughtTwoSided = 0;
    for (let t = 0; t < trials; t++) {
      const rows = (shift: number) =>
        Array.from({ length: 12 }, (_, m) => compareRuns(runsAt(20_000 + t * 29 + m, 6, 40_000, 0.08), runsAt(60_000 + t * 31 + m, 6, m === 0 ? 40_000 * shift : 40_000, 0.08), 0.5));
      if (decideRuns(rows(1)).some((r) => r.verdict === 'regression')) falseRegressions++;
      const slowed = rows(1.25);
      const decided = decideRuns(slowed);
      if (decided[0]!.verdict === 'regression') caught++;
      // The old rule: two-sided p, Holm over the rows.
      if (holm(slowed.map((r) => r.p))[0]! < 0.05) caughtTwoSided++;
      // A slow-down is never called an improvement, and the improvement family never fails the gate.
      expect(decided.filter((r) => r.verdict === 'improvement').every((r) => r.change < 0)).toBe(true);
    }
    expect(falseRegressions / trials).toBeLessThanOrEqual(0.1);
    expect(caught).toBeGreaterThan(caughtTwoSided);
    expect(caught / trials).toBeGreaterThan(0.6);
  }, 300_000); // CPU-bound: 20 s on the loaded machine, where 60 s left only 3×

  it('holm: step-down adjustment, monotone, NaN ignored', () => {
    expect(holm([0.01, 0.04, Number.NaN, 0.03])).toEqual([0.03, 0.06, Number.NaN, 0.06]);
  });
});
