import { describe, expect, it } from 'vitest';
import { findCrossovers, rangeBands } from './crossover.js';
import { fitScaling, levelsOf, type XY } from './fit.js';
import { complexityVerdict } from './verdict.js';
import { seededRandom } from './summary.js';

const COUNTS = [0, 100, 500, 1000, 2000, 5000, 10000];

function normal(rand: () => number): number {
  // Box–Muller
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function synthetic(opts: { base: number; slope: number; sd: number; reps?: number; seed: number; counts?: number[] }): XY[] {
  const rand = seededRandom(opts.seed);
  const out: XY[] = [];
  for (const x of opts.counts ?? COUNTS) for (let r = 0; r < (opts.reps ?? 3); r++) out.push({ x, y: opts.base + opts.slope * x + opts.sd * normal(rand) });
  return out;
}

describe('fitScaling', () => {
  it('recovers an exact line', () => {
    const fit = fitScaling(COUNTS.map((x) => ({ x, y: 40_000 + 12 * x })))!;
    expect(fit.slope).toBeCloseTo(12, 9);
    expect(fit.intercept).toBeCloseTo(40_000, 6);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fit.addedOverRange).toBeCloseTo(120_000, 3);
  });

  it('is reproducible by seed', () => {
    const pts = synthetic({ base: 40_000, slope: 3, sd: 2000, seed: 5 });
    expect(fitScaling(pts, { seed: 9 })!.slopeCi95).toEqual(fitScaling(pts, { seed: 9 })!.slopeCi95);
    expect(fitScaling(pts, { seed: 9 })!.slopeCi95).not.toEqual(fitScaling(pts, { seed: 10 })!.slopeCi95);
  });

  it('slope CI (nominal 95%) over 400 noisy data sets: covers the true slope as the method does (89.3% measured: a bootstrap of 3 runs per count is a little narrow), and is as wide as the estimator needs', () => {
    // The estimator's own spread: least squares over 7 counts × 3 runs with sd 4000 ns.
    const xs = COUNTS.flatMap((x) => [x, x, x]);
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const idealWidth = 2 * 1.96 * (4000 / Math.sqrt(xs.reduce((a, x) => a + (x - mx) ** 2, 0)));
    let covered = 0;
    let widthRatio = 0;
    // 400 data sets: the rate is 89.8% over 2000, so its standard error here is 1.5 points and the bounds stand 3.5
    // (below) and 4.8 (above) of them away; over 200 (88.0%, 2.1-point error) the lower bound was 2.7 away.
    const N = 400;
    for (let seed = 1; seed <= N; seed++) {
      const [lo, hi] = fitScaling(synthetic({ base: 40_000, slope: 5, sd: 4000, seed }), { seed, resamples: 1000 })!.slopeCi95;
      if (lo <= 5 && 5 <= hi) covered++;
      widthRatio += (hi - lo) / idealWidth / N;
    }
    expect(covered / N).toBeGreaterThanOrEqual(0.84);
    expect(covered / N).toBeLessThanOrEqual(0.965); // wider than it needs to be would cover (nearly) all
    expect(widthRatio).toBeGreaterThan(0.8);
    expect(widthRatio).toBeLessThan(1.1);
  }, 180_000);

  it('falls back to residual resampling with one repetition per count', () => {
    const fit = fitScaling(synthetic({ base: 40_000, slope: 20, sd: 1000, seed: 3, reps: 1 }))!;
    expect(fit.ciMethod).toBe('residual resampling');
    expect(fit.slopeCi95[0]).toBeLessThan(20);
    expect(fit.slopeCi95[1]).toBeGreaterThan(20);
  });

  it('returns null for a single policy count', () => {
    expect(fitScaling([{ x: 10, y: 1 }, { x: 10, y: 2 }])).toBeNull();
  });
});

describe('complexityVerdict', () => {
  it('calls a flat curve O(1)', () => {
    const fit = fitScaling(synthetic({ base: 40_000, slope: 0, sd: 800, seed: 11 }))!;
    const v = complexityVerdict(fit);
    expect(v.complexity).toBe('O(1)');
    expect(fit.slopeCi95[0]).toBeLessThanOrEqual(0);
    expect(fit.slopeCi95[1]).toBeGreaterThanOrEqual(0);
  });

  it('calls a small but real growth O(1) when it stays within the bound over the range', () => {
    // 0.2 ns/policy adds 2 µs over 10000 policies: the CI excludes zero, yet the growth is within B (4 µs).
    const fit = fitScaling(synthetic({ base: 40_000, slope: 0.2, sd: 50, seed: 21 }))!;
    expect(fit.slopeCi95[0]).toBeGreaterThan(0);
    expect(complexityVerdict(fit).complexity).toBe('O(1)');
  });

  it('does not call a curve O(1) just because a wide slope CI contains zero', () => {
    const fit = fitScaling(synthetic({ base: 40_000, slope: 0, sd: 20_000, seed: 22 }))!;
    expect(fit.slopeCi95[0]).toBeLessThan(0);
    expect(fit.slopeCi95[1]).toBeGreaterThan(0);
    expect(complexityVerdict(fit).complexity).toBe('inconclusive');
  });

  it('calls a linear curve O(n) with a CI containing the true slope', () => {
    const fit = fitScaling(synthetic({ base: 40_000, slope: 50, sd: 2000, seed: 12 }))!;
    expect(complexityVerdict(fit).complexity).toBe('O(n)');
    expect(fit.slopeCi95[0]).toBeLessThanOrEqual(50);
    expect(fit.slopeCi95[1]).toBeGreaterThanOrEqual(50);
    expect(fit.slopeCi95[0]).toBeGreaterThan(45);
  });

  it('calls a noisy but clearly growing curve O(n)', () => {
    const fit = fitScaling(synthetic({ base: 40_000, slope: 5, sd: 8000, seed: 13 }))!;
    expect(complexityVerdict(fit).complexity).toBe('O(n)');
    expect(fit.slopeCi95[0]).toBeLessThanOrEqual(5);
    expect(fit.slopeCi95[1]).toBeGreaterThanOrEqual(5);
  });

  it('refuses to call a very noisy flat curve O(1): a CI containing zero is not enough', () => {
    const fit = fitScaling(synthetic({ base: 40_000, slope: 0, sd: 20_000, seed: 14 }))!;
    const v = complexityVerdict(fit);
    expect(v.complexity).toBe('inconclusive');
    expect(v.reason).toMatch(/too wide|grows|decreases/);
  });

  it('is inconclusive for growth that is not linear (a jump, then flat)', () => {
    const pts = COUNTS.flatMap((x) => [0, 1, 2].map((r) => ({ x, y: (x >= 100 ? 90_000 : 40_000) + r * 100 })));
    const v = complexityVerdict(fitScaling(pts)!);
    expect(v.complexity).toBe('inconclusive');
    expect(v.reason).toMatch(/not linearly|sub-linearly/);
    expect(v.headline).toBe('segments');
  });

  it('flat noisy curves over 0–2000 policies (3000 data sets) are wrongly called O(n) in ≤ 5% (3.9% measured)', () => {
    // 3000 data sets: the rate's standard error is 0.35 points, the bound 3.2 of them away. Over the 200 this used to
    // take (3.5% there, 1.4-point error) the bound was less than one error away: another 200 could well cross it.
    const N = 3000;
    let linear = 0;
    for (let seed = 1; seed <= N; seed++) {
      const fit = fitScaling(synthetic({ base: 40_000, slope: 0, sd: 8000, seed: 20_000 + seed, counts: [0, 1000, 2000] }), { seed, resamples: 500 });
      if (complexityVerdict(fit).complexity === 'O(n)') linear++;
    }
    expect(linear / N).toBeLessThanOrEqual(0.05);
  }, 180_000);

  it('needs three policy counts', () => {
    const v = complexityVerdict(fitScaling(synthetic({ base: 1000, slope: 1, sd: 1, seed: 1, counts: [0, 100] })));
    expect(v.complexity).toBe('inconclusive');
    expect(v.reason).toMatch(/at least 3/);
  });

  it('uses the absolute floor for near-zero baselines (CPU per connection)', () => {
    const pts = synthetic({ base: 300, slope: 0, sd: 50, seed: 2 });
    const v = complexityVerdict(fitScaling(pts)!);
    expect(v.boundNs).toBe(1000);
    expect(v.complexity).toBe('O(1)');
  });
});

describe('findCrossovers', () => {
  it('finds where a growing curve passes a flat one', () => {
    const iptables = rangeBands(levelsOf(synthetic({ base: 30_000, slope: 10, sd: 100, seed: 1 })));
    const ebpf = rangeBands(levelsOf(synthetic({ base: 50_000, slope: 0, sd: 100, seed: 2 })));
    const x = findCrossovers('calico', iptables, 'cilium', ebpf);
    expect(x).toHaveLength(1);
    expect(x[0]!.between).toEqual([1000, 5000]);
    expect(x[0]!.lowerBefore).toBe('calico');
    expect(x[0]!.lowerAfter).toBe('cilium');
    expect(x[0]!.atPolicies).toBeGreaterThan(1000);
    expect(x[0]!.atPolicies).toBeLessThan(5000);
  });

  it('does not report two flat curves trading places within their noise', () => {
    const a = rangeBands(levelsOf(synthetic({ base: 40_000, slope: 0, sd: 1000, seed: 3 })));
    const b = rangeBands(levelsOf(synthetic({ base: 40_000, slope: 0, sd: 1000, seed: 4 })));
    expect(findCrossovers('none', a, 'flannel', b)).toEqual([]);
  });
});

describe('curves as they are: segments, exponent, super-linear verdict, headline', () => {
  // Calico-like connect p50 (ns): 36 → 252 → 1328 → 6820 µs at 0 / 1000 / 5000 / 10000, three noisy runs each.
  const calico = (seed: number) => {
    const rand = seededRandom(seed);
    const at: Record<number, number> = { 0: 36_000, 1000: 252_000, 5000: 1_328_000, 10000: 6_820_000 };
    return Object.entries(at).flatMap(([x, y]) => [0, 1, 2].map(() => ({ x: Number(x), y: y * (1 + 0.03 * normal(rand)), se: y * 0.005 })));
  };

  it('segment costs between consecutive counts, with CIs containing the true marginal cost', () => {
    const fit = fitScaling(calico(1))!;
    expect(fit.segments.map((s) => [s.from, s.to])).toEqual([[0, 1000], [1000, 5000], [5000, 10000]]);
    const truth = [216, 269, 1098.4];
    fit.segments.forEach((s, i) => {
      expect(s.ci95[0]).toBeLessThan(truth[i]!);
      expect(s.ci95[1]).toBeGreaterThan(truth[i]!);
    });
    expect(fit.segments[2]!.ci95[0]).toBeGreaterThan(fit.segments[0]!.ci95[1]);
  });

  it('growth exponent from the log–log fit of the added cost: ~1 for a line, > 1 for the calico curve', () => {
    const line = fitScaling(synthetic({ base: 40_000, slope: 50, sd: 2000, seed: 3 }))!;
    expect(line.exponent!.k).toBeGreaterThan(0.9);
    expect(line.exponent!.k).toBeLessThan(1.1);
    expect(line.exponent!.ci95[0]).toBeLessThan(1);
    expect(line.exponent!.ci95[1]).toBeGreaterThan(1);
    const curve = fitScaling(calico(2))!;
    expect(curve.exponent!.k).toBeGreaterThan(1.3);
    expect(curve.exponent!.ci95[0]).toBeGreaterThan(1);
  });

  it('the calico curve is super-linear, and its negative-intercept line is never the headline', () => {
    const fit = fitScaling(calico(4))!;
    expect(fit.intercept).toBeLessThan(0);
    const v = complexityVerdict(fit);
    expect(v.complexity).toBe('super-linear');
    expect(v.reason).toMatch(/added cost ∝ n\^1\.\d\d \(95% CI/);
    expect(v.headline).toBe('segments');
    expect(v.headlineReason).toMatch(/intercept is -\d/);
  });

  it('a clean line stays O(n) with the slope as headline; a flat curve has no exponent', () => {
    const v = complexityVerdict(fitScaling(synthetic({ base: 40_000, slope: 50, sd: 2000, seed: 7 })));
    expect(v.complexity).toBe('O(n)');
    expect(v.headline).toBe('slope');
    const flat = fitScaling(synthetic({ base: 40_000, slope: 0, sd: 300, seed: 8 }))!;
    expect(complexityVerdict(flat).complexity).toBe('O(1)');
    expect(complexityVerdict(flat).headline).toBe('slope');
  });

  it('never calls a noisy straight line super-linear (30 seeds)', () => {
    for (let seed = 1; seed <= 30; seed++) expect(complexityVerdict(fitScaling(synthetic({ base: 40_000, slope: 50, sd: 2000, seed }), { resamples: 500 })).complexity).not.toBe('super-linear');
  });

  it('within-run noise (se) widens the slope CI: the bootstrap is hierarchical', () => {
    const pts = synthetic({ base: 40_000, slope: 5, sd: 500, seed: 11 });
    const without = fitScaling(pts, { seed: 1 })!;
    const withSe = fitScaling(pts.map((p) => ({ ...p, se: 3000 })), { seed: 1 })!;
    expect(withSe.slopeCi95[1] - withSe.slopeCi95[0]).toBeGreaterThan(1.5 * (without.slopeCi95[1] - without.slopeCi95[0]));
  });
});
