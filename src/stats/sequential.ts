// Adaptive repetitions that stay honest. A sweep looks at its results after every batch and adds repetitions only
// where a verdict is still open; looking repeatedly and stopping when a CI looks good would, with plain 95% CIs,
// call more verdicts wrongly than a fixed design. So every look k spends a pre-set share α_k of the error rate
// (Lan–DeMets spending; Hwang–Shih–DeCani shape γ = −2 by default, O'Brien–Fleming for designs that predate the
// choice; Σ α_k = α) and judges the curve with CIs at level 1 − α_k, its runs adjusted to the machine's reference.
// By the union bound, the probability that any look's CI misses the truth is at most Σ α_k = α, whatever the
// looks' correlation and whenever the sweep stops: the CI at the look where a curve stopped is a repeated
// confidence interval (Jennison & Turnbull), and the verdict drawn from it keeps the fixed design's error rate.
import { fitScaling, type FitOptions, type ScalingFit, type XY } from './fit.js';
import { phi, zTwoSided } from './normal.js';
import { complexityVerdict, VERDICT_RULES, type Verdict } from './verdict.js';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';

export interface AdaptiveDesign {
  /** Repetitions every point gets before the first look. */
  min: number;
  /** Repetitions a batch adds to each point whose verdict is open. */
  step: number;
  /** No point gets more. */
  max: number;
  /** Error rate spent over all looks. */
  alpha: number;
  /**
   * The spending function's shape: Hwang–Shih–DeCani with this γ (γ > 0 spends early, γ = 0 spends evenly by
   * repetitions, γ = −4 is close to O'Brien–Fleming). Absent: Lan–DeMets O'Brien–Fleming (sweeps written before
   * the choice was recorded spent α that way, and their reports must be judged as they were).
   */
  gamma?: number;
}

export const DEFAULT_ADAPTIVE: AdaptiveDesign = { min: 3, step: 3, max: 12, alpha: 0.05, gamma: -2 };

/** Repetitions at each look: min, min + step, …, capped at max (the last look is always at max). */
export function lookSchedule(d: AdaptiveDesign): number[] {
  const out: number[] = [];
  for (let n = Math.min(d.min, d.max); n < d.max; n += Math.max(1, d.step)) out.push(n);
  out.push(d.max);
  return out;
}

/**
 * O'Brien–Fleming-type spending function (Lan & DeMets 1983): the error rate spent by information fraction t,
 * α(t) = 2 − 2Φ(z_{1−α/2} / √t). It spends almost nothing at the first looks — three runs of a point are the least
 * reliable evidence (a bootstrap of three runs under-covers, and two run-to-run modes may not both have shown) —
 * and keeps the last look's level close to the fixed design's, so a curve that needs every repetition is judged
 * almost as a fixed sweep of that size would judge it.
 */
export const obfSpent = (t: number, alpha: number) => (t <= 0 ? 0 : t >= 1 ? alpha : 2 - 2 * phi(zTwoSided(alpha) / Math.sqrt(t)));

/**
 * Hwang–Shih–DeCani spending function (1990): α(t) = α (1 − e^(−γt)) / (1 − e^(−γ)); γ = 0 is the limit α·t.
 */
export const hsdSpent = (t: number, alpha: number, gamma: number) =>
  t <= 0 ? 0 : t >= 1 ? alpha : Math.abs(gamma) < 1e-9 ? alpha * t : (alpha * (1 - Math.exp(-gamma * t))) / (1 - Math.exp(-gamma));

/** The error rate a design has spent by information fraction t. */
export const spentBy = (d: AdaptiveDesign, t: number) => (d.gamma === undefined ? obfSpent(t, d.alpha) : hsdSpent(t, d.alpha, d.gamma));

/** α_k spent at each look of the schedule (information fraction: repetitions / max); they sum to α. */
export function alphaPerLook(d: AdaptiveDesign): number[] {
  const looks = lookSchedule(d);
  let spent = 0;
  return looks.map((n) => {
    const total = spentBy(d, n / d.max);
    const a = total - spent;
    spent = total;
    return a;
  });
}

/** The look (0-based) a point with `reps` repetitions belongs to: the first whose repetitions reach it. */
export function lookOf(d: AdaptiveDesign, reps: number): number {
  const looks = lookSchedule(d);
  const i = looks.findIndex((n) => n >= reps);
  return i < 0 ? looks.length - 1 : i;
}

/** The CI error rate of a curve that stopped with `reps` repetitions per point. */
export const alphaAt = (d: AdaptiveDesign, reps: number) => alphaPerLook(d)[lookOf(d, reps)]!;

export interface CurveDecision {
  /** The verdict is decided (another repetition would not be spent on it). */
  settled: boolean;
  /** Settled because it can never settle (too few policy counts): more repetitions would not help. */
  hopeless: boolean;
  /** Why a conclusive-looking verdict is still open (growth beyond the bound or its shape not yet established). */
  openBecause?: string;
  verdict: Verdict;
  fit: ScalingFit | null;
  alpha: number;
  /** The adjustment to the machine's reference (θ), or why there was none. */
  adjustment: ReferenceAdjustment;
  /** Runs left out as slowed (only where the curve was not adjusted). */
  leftOut: number;
}

/**
 * Is a curve's verdict decided at CI level 1 − α? Decided: O(1), O(n), super-linear, and the two conclusive
 * shapes verdict.ts still calls inconclusive (growth established but sub-linear; a decrease). Open: a CI too wide
 * for either O(1) or growth, growth significant but not clearly beyond the bound, growth whose linearity is
 * unclear. Fewer than the verdict's minimum of policy counts can never be decided.
 */
export function curveDecision(points: readonly RunPoint[], alpha: number, opts: Omit<FitOptions, 'alpha'> = {}): CurveDecision {
  const { fit, adjustment, leftOut } = repeatedFitOf(points, alpha, opts);
  const verdict = complexityVerdict(fit);
  const base = { verdict, fit, alpha, adjustment, leftOut };
  if (!fit || fit.levels.length < 3) return { settled: true, hopeless: true, ...base };
  const e = fit.exponent;
  const eCi = e !== null && Number.isFinite(e.ci95[0]) && Number.isFinite(e.ci95[1]) ? e.ci95 : null;
  const [lo, hi] = fit.slopeCi95;
  // verdict.ts calls growth beyond the bound on the point estimate; a look may stop on it only when the CI's lower
  // end establishes it, or every extra look would be one more chance to call growth below the bound O(n).
  const beyondBound = lo * (fit.xMax - fit.xMin) > verdict.boundNs;
  // O(n) is what a growing curve is called until super-linear growth is established: decided only once the
  // exponent's CI also rules super-linear growth out.
  const notBeyond = 'the CI does not yet put the growth beyond the bound';
  if (verdict.complexity === 'O(n)') {
    const linear = eCi !== null && eCi[1] <= VERDICT_RULES.superLinearMinExponent;
    const settled = beyondBound && linear;
    return { settled, hopeless: false, ...base, ...(settled ? {} : { openBecause: !beyondBound ? notBeyond : 'the exponent CI does not yet rule out super-linear growth' }) };
  }
  if (verdict.complexity === 'super-linear') return { settled: beyondBound, hopeless: false, ...base, ...(beyondBound ? {} : { openBecause: notBeyond }) };
  if (verdict.complexity === 'O(1)') return { settled: true, hopeless: false, ...base };
  const subLinear = beyondBound && eCi !== null && eCi[1] < 1;
  return { settled: subLinear || hi < 0, hopeless: false, ...base };
}

/**
 * The α to hand the fit so its CIs are t intervals at level 1 − α: the bootstrap's spread comes from the runs'
 * deviations around each count's mean, Σ(n_i − 1) degrees of freedom, and with three runs a count the variance is
 * itself uncertain — the fixed design's t correction of hierarchicalCi, applied to the slope at few repetitions.
 * `estimated`: parameters estimated from the same deviations (θ of the reference adjustment), one degree each.
 */
export function ciAlpha(alpha: number, points: readonly Pick<XY, 'x'>[], estimated = 0): number {
  const per = new Map<number, number>();
  for (const p of points) per.set(p.x, (per.get(p.x) ?? 0) + 1);
  const dof = [...per.values()].reduce((a, n) => a + Math.max(0, n - 1), 0) - estimated;
  if (dof < 1) return alpha;
  return 2 * phi(-tQuantile(1 - alpha / 2, dof));
}

/**
 * A count's run-to-run spread, on the relative scale, is taken as at least the spread the curve's runs show over
 * all its counts: three runs that happen to fall in the same of two modes must not make one count look precise when
 * the others show both. The shortfall is added to each run's within-run noise, which the fit's bootstrap adds.
 */
export function withPooledSpread(points: readonly XY[]): XY[] {
  const by = new Map<number, number[]>();
  for (const p of points) by.set(p.x, [...(by.get(p.x) ?? []), p.y]);
  const means = new Map([...by].map(([x, ys]) => [x, ys.reduce((a, b) => a + b, 0) / ys.length]));
  let ss = 0;
  let dof = 0;
  const own = new Map<number, number>();
  for (const [x, ys] of by) {
    const m = means.get(x)!;
    if (ys.length < 2 || !(m > 0)) continue;
    const s = ys.reduce((a, y) => a + ((y - m) / m) ** 2, 0);
    own.set(x, s / (ys.length - 1));
    ss += s;
    dof += ys.length - 1;
  }
  if (dof === 0) return [...points];
  const pooled = ss / dof;
  return points.map((p) => {
    const m = means.get(p.x)!;
    const short = Math.max(0, pooled - (own.get(p.x) ?? pooled)) * m * m;
    return short > 0 ? { ...p, se: Math.sqrt((p.se ?? 0) ** 2 + short) } : p;
  });
}

/** A run's value at a policy count, whether the machine slowed during the run, and the machine's reference beside it. */
export interface RunPoint extends XY {
  slowed?: boolean;
  /**
   * The machine's reference measured in the same run beside this value (ns; the same percentile of the same
   * operation over the client pod's loopback, no data plane on its path): results/machine.ts referenceOf.
   */
  reference?: number;
}

/** A count keeps at least this many runs: a slowed run is left out only where this many others remain. */
export const MIN_UNSLOWED_RUNS = 2;

/**
 * Leaves out the runs during which the machine slowed — by the loopback reference each run measures beside its
 * metrics, which has no data plane on its path (results/machine.ts) — wherever the count keeps at least
 * MIN_UNSLOWED_RUNS others. Such a run measures the machine, not the data plane. The choice is made on the
 * reference alone, never on the metric's value, so it cannot favour a verdict; a count where most runs were slowed
 * keeps them all. Used only for curves whose runs do not all carry a reference (result files written before it
 * existed): the others are adjusted to it (adjustToReference).
 */
export function withoutSlowed<P extends RunPoint>(points: readonly P[]): P[] {
  const kept = new Map<number, number>();
  for (const p of points) if (!p.slowed) kept.set(p.x, (kept.get(p.x) ?? 0) + 1);
  return points.filter((p) => !p.slowed || (kept.get(p.x) ?? 0) < MIN_UNSLOWED_RUNS);
}

/**
 * θ is clamped to this range. Below 0 the machine would make the data plane faster when it makes the loopback
 * slower, which no shared disturbance does: a negative estimate is the noise of a few runs, and applying it would
 * add the reference's noise instead of removing the machine's. Above 1.5 a value would move more than half again as
 * much as the reference: the data plane's path is the reference's operation plus its own kernel work, all on the
 * same CPU, so a machine mode scales both by about the same factor (θ ≈ 1); an estimate far above it comes from
 * few runs and would amplify the reference's own sampling noise.
 */
export const THETA_RANGE = [0, 1.5] as const;

/**
 * The guard's threshold: a curve is not adjusted when the reference rises with the swept count (significant at
 * 2.5%, one-sided) by enough to move the adjusted slope over the curve's range by this share of the verdict's bound.
 */
export const REFERENCE_TREND_SHARE = 0.25;

/** What the adjustment did to a curve. */
export interface ReferenceAdjustment {
  /** θ applied (after the clamp); null: not adjusted. */
  theta: number | null;
  /** θ as estimated, before the clamp (null when not estimated). */
  estimate: number | null;
  /** Why the curve was not adjusted (runs without a reference, too few runs, the reference trends with the count). */
  notAdjusted?: string;
  /** The reference's trend against the count, as a share of the bound it would move the adjusted slope by. */
  trendShare: number | null;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Regression adjustment to the machine's reference (ANCOVA; "CUPED" in A/B testing), per curve on the log scale:
 * log y = a(x) + θ·(log r − L̄) + e, a(x) one mean per count, θ pooled *within* counts (each run's deviation from
 * its count's means), so the count cannot leak into θ; L̄ the mean log reference of the curve's runs. Each run's
 * value and within-run se are scaled by exp(−θ(log r − L̄)): the curve as it would be on the machine at the runs'
 * mean reference. θ ≈ 1 when y and the reference share the machine's mode, ≈ 0 when the reference only adds noise.
 * The adjustment costs one degree of freedom (θ). The reference's own sampling noise needs no term of its own: it
 * is in each adjusted run's value, so in the run-to-run spread the fit resamples.
 *
 * Valid only if the reference does not depend on the count (a connect4 program in the client's cgroup serves the
 * loopback connect too): a curve whose log reference trends with x, significantly and by enough to move the slope
 * by REFERENCE_TREND_SHARE of the bound, is not adjusted (nor are its runs left out by the same reference).
 */
export function adjustToReference(points: readonly RunPoint[]): { points: XY[]; adjustment: ReferenceAdjustment } {
  const plain = points.map(({ x, y, se }): XY => ({ x, y, ...(se === undefined ? {} : { se }) }));
  const no = (notAdjusted: string, estimate: number | null = null, trendShare: number | null = null) => ({ points: plain, adjustment: { theta: null, estimate, notAdjusted, trendShare } });
  if (!points.every((p) => p.reference !== undefined && p.reference > 0 && p.y > 0)) return no('not every run measured the reference');
  const lr = points.map((p) => Math.log(p.reference!));
  const ly = points.map((p) => Math.log(p.y));
  const byX = new Map<number, number[]>();
  points.forEach((p, i) => byX.set(p.x, [...(byX.get(p.x) ?? []), i]));
  let sxy = 0;
  let sxx = 0;
  for (const idx of byX.values()) {
    const mr = mean(idx.map((i) => lr[i]!));
    const my = mean(idx.map((i) => ly[i]!));
    for (const i of idx) {
      sxy += (lr[i]! - mr) * (ly[i]! - my);
      sxx += (lr[i]! - mr) ** 2;
    }
  }
  const dof = points.length - byX.size;
  if (dof < 2 || !(sxx > 0)) return no('too few runs per count to estimate θ');
  const estimate = sxy / sxx;
  const theta = Math.min(THETA_RANGE[1], Math.max(THETA_RANGE[0], estimate));
  // The guard: the log reference's least-squares trend against x over all runs, and what it would do to the slope.
  const xs = points.map((p) => p.x);
  const mx = mean(xs);
  const L = mean(lr);
  const sxxX = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const b = xs.reduce((a, x, i) => a + (x - mx) * (lr[i]! - L), 0) / sxxX;
  const resid = xs.reduce((a, x, i) => a + (lr[i]! - L - b * (x - mx)) ** 2, 0) / Math.max(1, points.length - 2);
  const seB = Math.sqrt(resid / sxxX);
  const xMin = Math.min(...xs);
  const base = mean(points.filter((p) => p.x === xMin).map((p) => p.y));
  const bound = Math.max(VERDICT_RULES.flatRelative * Math.abs(base), VERDICT_RULES.flatAbsoluteNs);
  const trendShare = (theta * Math.abs(b) * (Math.max(...xs) - xMin) * mean(points.map((p) => p.y))) / bound;
  // One-sided: a program on the reference's path can only add cost that grows with the count. A reference that
  // falls with the count has no such mechanism — it is the chance of which runs met the slow mode (six of seven runs
  // at one count, in a quiet headline) — and chance imbalance is what the adjustment corrects, validly.
  const significant = b > tQuantile(0.975, Math.max(1, points.length - 2)) * seB;
  if (significant && trendShare > REFERENCE_TREND_SHARE) {
    return no(`the reference trends with the count (it would move the slope by ${(100 * trendShare).toFixed(0)}% of the bound)`, estimate, trendShare);
  }
  const adjusted = points.map((p, i): XY => {
    const f = Math.exp(-theta * (lr[i]! - L));
    return { x: p.x, y: p.y * f, ...(p.se === undefined ? {} : { se: p.se * f }) };
  });
  return { points: adjusted, adjustment: { theta, estimate, trendShare } };
}

/** The points a look judges, and what was done to them: adjusted to the reference, or slowed runs left out. */
export function judgedPoints(points: readonly RunPoint[]): { points: XY[]; adjustment: ReferenceAdjustment; leftOut: number; dofUsed: number } {
  const adj = adjustToReference(points);
  if (adj.adjustment.theta !== null) return { points: adj.points, adjustment: adj.adjustment, leftOut: 0, dofUsed: 1 };
  // A reference that trends with the count judges the data plane, not the machine: its runs are not left out either.
  if (adj.adjustment.trendShare !== null) return { points: adj.points, adjustment: adj.adjustment, leftOut: 0, dofUsed: 0 };
  const kept = withoutSlowed(points).map(({ x, y, se }): XY => ({ x, y, ...(se === undefined ? {} : { se }) }));
  return { points: kept, adjustment: adj.adjustment, leftOut: points.length - kept.length, dofUsed: 0 };
}

/**
 * The fit an adaptive sweep judges a curve by at a look that spends α: adjusted to the machine's reference
 * (or, for runs without one, slowed runs left out), pooled spread, t-corrected level 1 − α.
 */
export function repeatedFitOf(points: readonly RunPoint[], alpha: number, opts: Omit<FitOptions, 'alpha'> = {}): { fit: ScalingFit | null; adjustment: ReferenceAdjustment; leftOut: number } {
  const j = judgedPoints(points);
  return { fit: fitScaling(withPooledSpread(j.points), { ...opts, alpha: ciAlpha(alpha, j.points, j.dofUsed) }), adjustment: j.adjustment, leftOut: j.leftOut };
}

export const repeatedFit = (points: readonly RunPoint[], alpha: number, opts: Omit<FitOptions, 'alpha'> = {}): ScalingFit | null => repeatedFitOf(points, alpha, opts).fit;
