// Scaling analysis: how a metric grows with the policy count. A straight-line fit gives the slope (ns per
// policy) with a seeded bootstrap CI, and the curve's shape — segment costs between consecutive counts and the
// growth exponent of the added cost — comes from the same hierarchical resampling. What the fit means is
// verdict.ts's; where two curves cross, crossover.ts's.
import { linearRegression, rSquared } from 'simple-statistics';
import { quantile, seededRandom, sortedCopy } from './summary.js';
import { normalFrom } from './hierarchical.js';
import { zTwoSided } from './normal.js';

/** One measurement: value `y` (ns) at `x` policies, from one repetition. */
export interface XY {
  x: number;
  y: number;
  /** Standard error of y within its run (sample noise), when known: the bootstrap adds it, so CIs are hierarchical. */
  se?: number;
}

/** All repetitions at one policy count. */
export interface Level {
  x: number;
  values: number[];
  /** Within-run standard errors of the values (0 where unknown). */
  ses: number[];
  mean: number;
  median: number;
  min: number;
  max: number;
}

export interface ScalingFit {
  /** ns per policy (least squares over all points). */
  slope: number;
  slopeCi95: [number, number];
  /** Fitted value at 0 policies, ns. */
  intercept: number;
  /** R² of the line against the mean at each policy count: repetition noise is not counted as curvature. */
  r2: number;
  /** R² against every point, for reference. */
  r2Points: number;
  points: number;
  levels: Level[];
  xMin: number;
  xMax: number;
  /** Mean at the smallest policy count: what "added cost" is read against. */
  baseline: number;
  /** slope × (xMax − xMin): the cost the fit adds over the measured range, ns. */
  addedOverRange: number;
  /** How the CI was obtained. */
  ciMethod: 'within-count resampling' | 'residual resampling' | 'none';
  /** Marginal cost between consecutive policy counts. */
  segments: Segment[];
  /** Growth exponent k of the added cost (y − y(smallest count) ∝ x^k), null when there is no growth to fit. */
  exponent: GrowthExponent | null;
}

export interface Segment {
  from: number;
  to: number;
  /** (mean at `to` − mean at `from`) / (to − from), ns per policy. */
  nsPerPolicy: number;
  ci95: [number, number];
}

export interface GrowthExponent {
  /** Slope of log(added cost) against log(policies) over the counts above the smallest. */
  k: number;
  ci95: [number, number];
  /** Counts used (those with a positive added cost). */
  counts: number[];
  /** R² of the log–log line against the per-count means. */
  r2: number;
}

export interface FitOptions {
  resamples?: number;
  seed?: number;
  /**
   * Error rate of the CIs (slope, segments, exponent); default 0.05. Other levels widen (or narrow) the 95%
   * percentile interval around the estimate by z(1−α/2)/z(0.975): an adaptive sweep's repeated CIs (sequential.ts)
   * are more extreme than a bootstrap of a few thousand draws can read from its tails.
   */
  alpha?: number;
}

/** The 95% interval [lo, hi] around `est` stretched to level 1−α (each side by the same factor). */
export function atLevel(ci: [number, number], est: number, alpha: number | undefined): [number, number] {
  if (alpha === undefined || alpha === 0.05) return ci;
  const f = zTwoSided(alpha) / zTwoSided(0.05);
  return [est - f * (est - ci[0]), est + f * (ci[1] - est)];
}

export function levelsOf(points: readonly XY[]): Level[] {
  const by = new Map<number, Array<{ y: number; se: number }>>();
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    const arr = by.get(p.x) ?? [];
    arr.push({ y: p.y, se: p.se !== undefined && Number.isFinite(p.se) ? p.se : 0 });
    by.set(p.x, arr);
  }
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([x, vs]) => {
      const values = vs.map((v) => v.y);
      const s = sortedCopy(values);
      return { x, values, ses: vs.map((v) => v.se), mean: values.reduce((a, b) => a + b, 0) / values.length, median: quantile(s, 0.5), min: s[0]!, max: s[s.length - 1]! };
    });
}

function lsq(xs: ArrayLike<number>, ys: ArrayLike<number>): { m: number; b: number } {
  const n = xs.length;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i]!;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    sxy += dx * (ys[i]! - my);
    sxx += dx * dx;
  }
  const m = sxx > 0 ? sxy / sxx : Number.NaN;
  return { m, b: my - m * mx };
}

/**
 * Least-squares line with a percentile-bootstrap 95% CI of the slope. The design (which policy counts, how many
 * repetitions each) stays fixed; what is resampled is the spread:
 * - with ≥ 2 repetitions at every count, each count's values are redrawn from its own deviations around its
 *   mean (scaled by √(n/(n−1)) so three repetitions do not understate the spread) — drift between repetitions
 *   widens the CI as it should;
 * - otherwise residuals of the fit are redrawn across all points.
 */
export function fitScaling(points: readonly XY[], opts: FitOptions = {}): ScalingFit | null {
  const levels = levelsOf(points);
  const pts = levels.flatMap((l) => l.values.map((y) => ({ x: l.x, y })));
  if (levels.length < 2) return null;
  const xs = Float64Array.from(pts, (p) => p.x);
  const ys = Float64Array.from(pts, (p) => p.y);
  const reg = linearRegression(pts.map((p) => [p.x, p.y]));
  const line = (x: number) => reg.m * x + reg.b;
  const r2 = rSquared(levels.map((l) => [l.x, l.mean]), line);
  const r2Points = rSquared(pts.map((p) => [p.x, p.y]), line);

  const resamples = opts.resamples ?? 2000;
  const rand = seededRandom(opts.seed ?? 1);
  const slopes = new Float64Array(resamples);
  const yStar = new Float64Array(ys.length);
  const withinCount = levels.every((l) => l.values.length >= 2);
  let ciMethod: ScalingFit['ciMethod'] = withinCount ? 'within-count resampling' : 'residual resampling';
  /** Two points give a line but no residual to resample: no interval. */
  let ciDefined = true;
  if (withinCount) {
    const gauss = normalFrom(rand);
    for (let r = 0; r < resamples; r++) {
      let i = 0;
      for (const l of levels) {
        const n = l.values.length;
        const inflate = Math.sqrt(n / (n - 1));
        for (let k = 0; k < n; k++) {
          const j = Math.floor(rand() * n);
          yStar[i++] = l.mean + inflate * (l.values[j]! - l.mean) + l.ses[j]! * gauss();
        }
      }
      slopes[r] = lsq(xs, yStar).m;
    }
  } else {
    const residuals = Float64Array.from(pts, (p) => p.y - line(p.x));
    const n = pts.length;
    const dof = n - 2;
    if (dof <= 0) ciMethod = 'none';
    ciDefined = dof > 0;
    const inflate = dof > 0 ? Math.sqrt(n / dof) : 0;
    for (let r = 0; r < resamples; r++) {
      for (let i = 0; i < n; i++) yStar[i] = line(xs[i]!) + inflate * residuals[Math.floor(rand() * n)]!;
      slopes[r] = lsq(xs, yStar).m;
    }
  }
  slopes.sort();
  const ci: [number, number] = !ciDefined ? [Number.NaN, Number.NaN] : atLevel([quantile(slopes, 0.025), quantile(slopes, 0.975)], reg.m, opts.alpha);
  const xMin = levels[0]!.x;
  const xMax = levels[levels.length - 1]!.x;
  // 1000 draws are plenty for 2.5/97.5% percentiles; the exponent refit per draw is the costly part.
  const { segments, exponent } = curveShape(levels, { resamples: Math.min(resamples, 1000), seed: (opts.seed ?? 1) + 1, alpha: opts.alpha });
  return {
    segments,
    exponent,
    slope: reg.m,
    slopeCi95: ci,
    intercept: reg.b,
    r2: Number.isFinite(r2) ? r2 : 1,
    r2Points: Number.isFinite(r2Points) ? r2Points : 1,
    points: pts.length,
    levels,
    xMin,
    xMax,
    baseline: levels[0]!.mean,
    addedOverRange: reg.m * (xMax - xMin),
    ciMethod,
  };
}

/** One bootstrap draw of every level's mean: runs resampled within the count, plus their within-run noise. */
function levelMeansDraw(levels: Level[], rand: () => number, gauss: () => number): Float64Array {
  const out = new Float64Array(levels.length);
  levels.forEach((l, i) => {
    const n = l.values.length;
    if (n < 2) {
      out[i] = l.mean + (l.ses[0] ?? 0) * gauss();
      return;
    }
    const inflate = Math.sqrt(n / (n - 1));
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const j = Math.floor(rand() * n);
      sum += l.mean + inflate * (l.values[j]! - l.mean) + l.ses[j]! * gauss();
    }
    out[i] = sum / n;
  });
  return out;
}

/** Variance of each level's mean: spread of its runs over n (plus within-run noise), for weighting. */
function meanVariances(levels: Level[]): number[] {
  return levels.map((l) => {
    const n = l.values.length;
    const within = l.ses.reduce((a, b) => a + b * b, 0) / (n * n);
    if (n < 2) return within;
    const between = l.values.reduce((a, b) => a + (b - l.mean) ** 2, 0) / (n - 1) / n;
    return between + within;
  });
}

/**
 * Weighted log–log fit of the added cost: each count weighs by the inverse variance of log(added), i.e.
 * (added / se)², so a small, noisy added cost at 100 policies does not tilt the exponent.
 */
function exponentOf(levels: Level[], means: ArrayLike<number>, variances: number[]): { k: number; counts: number[]; r2: number } | null {
  const base = means[0]!;
  const origin = levels[0]!.x;
  const pts: Array<{ x: number; y: number; w: number; count: number }> = [];
  for (let i = 1; i < levels.length; i++) {
    const added = means[i]! - base;
    const dx = levels[i]!.x - origin;
    if (!(added > 0 && dx > 0)) continue;
    const v = variances[i]! + variances[0]!;
    pts.push({ x: Math.log(dx), y: Math.log(added), w: v > 0 ? (added * added) / v : 1, count: levels[i]!.x });
  }
  if (pts.length < 2) return null;
  const W = pts.reduce((a, p) => a + p.w, 0);
  const mx = pts.reduce((a, p) => a + p.w * p.x, 0) / W;
  const my = pts.reduce((a, p) => a + p.w * p.y, 0) / W;
  const sxx = pts.reduce((a, p) => a + p.w * (p.x - mx) ** 2, 0);
  const sxy = pts.reduce((a, p) => a + p.w * (p.x - mx) * (p.y - my), 0);
  const syy = pts.reduce((a, p) => a + p.w * (p.y - my) ** 2, 0);
  if (!(sxx > 0)) return null;
  const k = sxy / sxx;
  const r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 1;
  return { k, counts: pts.map((p) => p.count), r2 };
}

/**
 * Segment costs and the growth exponent, with bootstrap CIs from the same hierarchical resampling as the slope.
 * The exponent is fitted to the added cost over the smallest count (x measured from it), so a constant baseline
 * does not flatten it; it is only given when at least two counts above the smallest show an added cost, and its
 * CI only when ≥ 95% of the bootstrap draws do too. Super-linear needs that CI above 1 and the last segment's
 * marginal cost CI above the first's.
 */
export function curveShape(levels: Level[], opts: FitOptions = {}): { segments: Segment[]; exponent: GrowthExponent | null } {
  const resamples = opts.resamples ?? 1000;
  const rand = seededRandom(opts.seed ?? 2);
  const gauss = normalFrom(rand);
  const L = levels.length;
  const segDraws = Array.from({ length: Math.max(0, L - 1) }, () => new Float64Array(resamples));
  const kDraws: number[] = [];
  const hasSpread = levels.some((l) => l.values.length >= 2 || l.ses.some((s) => s > 0));
  const means = levels.map((l) => l.mean);
  const variances = meanVariances(levels);
  const point = exponentOf(levels, means, variances);
  if (hasSpread) {
    for (let r = 0; r < resamples; r++) {
      const m = levelMeansDraw(levels, rand, gauss);
      for (let i = 0; i + 1 < L; i++) segDraws[i]![r] = (m[i + 1]! - m[i]!) / (levels[i + 1]!.x - levels[i]!.x);
      if (point) {
        const e = exponentOf(levels, m, variances);
        if (e) kDraws.push(e.k);
      }
    }
  }
  const ci = (d: Float64Array | number[], est: number): [number, number] => {
    const a = Float64Array.from(d).sort();
    return atLevel([quantile(a, 0.025), quantile(a, 0.975)], est, opts.alpha);
  };
  const segments: Segment[] = [];
  for (let i = 0; i + 1 < L; i++) {
    segments.push({ from: levels[i]!.x, to: levels[i + 1]!.x, nsPerPolicy: (means[i + 1]! - means[i]!) / (levels[i + 1]!.x - levels[i]!.x), ci95: hasSpread ? ci(segDraws[i]!, (means[i + 1]! - means[i]!) / (levels[i + 1]!.x - levels[i]!.x)) : [Number.NaN, Number.NaN] });
  }
  const exponent: GrowthExponent | null = point
    ? { k: point.k, counts: point.counts, r2: point.r2, ci95: hasSpread && kDraws.length >= 0.95 * resamples ? ci(kDraws, point.k) : [Number.NaN, Number.NaN] }
    : null;
  return { segments, exponent };
}
