// Scaling analysis: how a metric grows with the policy count. A straight-line fit gives the slope (ns per
// policy) with a seeded bootstrap CI; a written-down rule turns slope, CI and fit quality into a complexity
// verdict; crossovers say where one CNI's curve passes another's.
import { linearRegression, rSquared } from 'simple-statistics';
import { quantile, seededRandom, sortedCopy } from './summary.js';

/** One measurement: value `y` (ns) at `x` policies, from one repetition. */
export interface XY {
  x: number;
  y: number;
}

/** All repetitions at one policy count. */
export interface Level {
  x: number;
  values: number[];
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
}

export interface FitOptions {
  resamples?: number;
  seed?: number;
}

export function levelsOf(points: readonly XY[]): Level[] {
  const by = new Map<number, number[]>();
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    const arr = by.get(p.x) ?? [];
    arr.push(p.y);
    by.set(p.x, arr);
  }
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([x, values]) => {
      const s = sortedCopy(values);
      return { x, values, mean: values.reduce((a, b) => a + b, 0) / values.length, median: quantile(s, 0.5), min: s[0]!, max: s[s.length - 1]! };
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
  if (withinCount) {
    for (let r = 0; r < resamples; r++) {
      let i = 0;
      for (const l of levels) {
        const n = l.values.length;
        const inflate = Math.sqrt(n / (n - 1));
        for (let k = 0; k < n; k++) yStar[i++] = l.mean + inflate * (l.values[Math.floor(rand() * n)]! - l.mean);
      }
      slopes[r] = lsq(xs, yStar).m;
    }
  } else {
    const residuals = Float64Array.from(pts, (p) => p.y - line(p.x));
    const n = pts.length;
    const dof = n - 2;
    if (dof <= 0) ciMethod = 'none';
    const inflate = dof > 0 ? Math.sqrt(n / dof) : 0;
    for (let r = 0; r < resamples; r++) {
      for (let i = 0; i < n; i++) yStar[i] = line(xs[i]!) + inflate * residuals[Math.floor(rand() * n)]!;
      slopes[r] = lsq(xs, yStar).m;
    }
  }
  slopes.sort();
  const ci: [number, number] = ciMethod === 'none' ? [Number.NaN, Number.NaN] : [quantile(slopes, 0.025), quantile(slopes, 0.975)];
  const xMin = levels[0]!.x;
  const xMax = levels[levels.length - 1]!.x;
  return {
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

export type Complexity = 'O(1)' | 'O(n)' | 'inconclusive';

export interface Verdict {
  complexity: Complexity;
  /** One sentence a reader can check against the numbers. */
  reason: string;
  /** The flatness bound used, ns. */
  boundNs: number;
}

/** The constants of the verdict rules (see complexityVerdict). */
export const VERDICT_RULES = {
  /** At least this many distinct policy counts. */
  minCounts: 3,
  /** "Flat" means: over the measured range the cost grows by less than this share of the baseline… */
  flatRelative: 0.1,
  /** …or less than this many ns, whichever is larger (protects near-zero baselines such as CPU). */
  flatAbsoluteNs: 1000,
  /** O(n) also needs the line to explain this much of the variance of the per-count means. */
  linearMinR2: 0.8,
} as const;

const fmtNs = (ns: number) => (Math.abs(ns) >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);

/**
 * Complexity verdict from a fit. With bound B = max(10% of the mean at the smallest count, 1 µs) and the
 * measured range R = (largest − smallest policy count):
 * 1. fewer than 3 policy counts → inconclusive;
 * 2. O(1) when the whole 95% CI of the slope, times R, stays within ±B: the data rule out growth larger
 *    than B over the range (a CI that merely contains zero is not enough — a wide CI is no evidence of flatness);
 * 3. O(n) when the CI's lower end is above zero, slope × R exceeds B, and R² of the line against the
 *    per-count means is at least 0.8;
 * 4. otherwise inconclusive, with the reason (CI too wide, growth not linear, decreasing, significant but
 *    below the bound).
 */
export function complexityVerdict(fit: ScalingFit | null, rules = VERDICT_RULES): Verdict {
  if (!fit || fit.levels.length < rules.minCounts) {
    return { complexity: 'inconclusive', reason: `needs at least ${rules.minCounts} policy counts (got ${fit?.levels.length ?? 0})`, boundNs: Number.NaN };
  }
  const bound = Math.max(rules.flatRelative * Math.abs(fit.baseline), rules.flatAbsoluteNs);
  const range = fit.xMax - fit.xMin;
  const [lo, hi] = fit.slopeCi95;
  const span = `${fit.xMin}–${fit.xMax} policies`;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    return { complexity: 'inconclusive', reason: 'no confidence interval (too few points)', boundNs: bound };
  }
  const worst = Math.max(Math.abs(lo), Math.abs(hi)) * range;
  if (worst <= bound) {
    return { complexity: 'O(1)', reason: `the 95% CI of the slope allows at most ${fmtNs(worst)} of change over ${span}, within the ${fmtNs(bound)} bound`, boundNs: bound };
  }
  const added = fit.slope * range;
  if (lo > 0 && added > bound) {
    if (fit.r2 >= rules.linearMinR2) {
      return { complexity: 'O(n)', reason: `grows ${fmtNs(added)} over ${span} (slope CI above zero), R² ${fit.r2.toFixed(2)} ≥ ${rules.linearMinR2}`, boundNs: bound };
    }
    return { complexity: 'inconclusive', reason: `grows (slope CI above zero) but not linearly: R² ${fit.r2.toFixed(2)} < ${rules.linearMinR2}`, boundNs: bound };
  }
  if (hi < 0) return { complexity: 'inconclusive', reason: `decreases with the policy count (slope CI below zero)`, boundNs: bound };
  if (lo > 0) return { complexity: 'inconclusive', reason: `grows ${fmtNs(added)} over ${span}: significant, but not clearly beyond the ${fmtNs(bound)} bound`, boundNs: bound };
  return { complexity: 'inconclusive', reason: `slope CI contains zero but is too wide to rule out ${fmtNs(worst)} of change over ${span} (bound ${fmtNs(bound)})`, boundNs: bound };
}

export interface Crossover {
  /** The curve that was lower (cheaper) before the crossing. */
  lowerBefore: string;
  lowerAfter: string;
  /** The two measured counts the crossing lies between. */
  between: [number, number];
  /** Linear interpolation of where the medians meet. */
  atPolicies: number;
}

/** A curve's value at one policy count with an uncertainty band (a CI envelope, or the repetitions' range). */
export interface Band {
  x: number;
  median: number;
  low: number;
  high: number;
}

/**
 * Where curve A passes curve B. Only clear orderings count: at a policy count, one curve is "clearly below" the
 * other when its band lies entirely below the other's (bands: the envelope of the runs' 95% CIs, or the range of
 * the repetitions). A crossover is a change of clear order between two counts (counts in between where the bands
 * overlap are skipped), so two flat curves that trade places within their noise never cross.
 */
export function findCrossovers(nameA: string, a: Band[], nameB: string, b: Band[]): Crossover[] {
  const bx = new Map(b.map((l) => [l.x, l]));
  const shared = a.filter((l) => bx.has(l.x)).map((l) => [l, bx.get(l.x)!] as const);
  const out: Crossover[] = [];
  let last: { sign: number; x: number; diff: number } | null = null;
  for (const [la, lb] of shared) {
    const sign = la.high < lb.low ? -1 : la.low > lb.high ? 1 : 0;
    if (sign === 0) continue;
    const diff = la.median - lb.median;
    if (last && sign !== last.sign) {
      const t = last.diff / (last.diff - diff);
      out.push({
        lowerBefore: last.sign < 0 ? nameA : nameB,
        lowerAfter: sign < 0 ? nameA : nameB,
        between: [last.x, la.x],
        atPolicies: Math.round(last.x + t * (la.x - last.x)),
      });
    }
    last = { sign, x: la.x, diff };
  }
  return out;
}

/** Bands from repetitions alone: the range of the values at each count. */
export const rangeBands = (levels: Level[]): Band[] => levels.map((l) => ({ x: l.x, median: l.median, low: l.min, high: l.max }));
