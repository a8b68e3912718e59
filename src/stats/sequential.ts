// Adaptive repetitions that stay honest. A sweep looks at its results after every batch and adds repetitions only
// where a verdict is still open; looking repeatedly and stopping when a CI looks good would, with plain 95% CIs,
// call more verdicts wrongly than a fixed design. So every look k spends a pre-set share α_k of the error rate
// (Lan–DeMets spending; Hwang–Shih–DeCani shape γ = −2 by default, O'Brien–Fleming for designs that predate the
// choice; Σ α_k = α) and judges the curve with CIs at level 1 − α_k, leaving out runs the machine slowed.
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
}

/**
 * Is a curve's verdict decided at CI level 1 − α? Decided: O(1), O(n), super-linear, and the two conclusive
 * shapes verdict.ts still calls inconclusive (growth established but sub-linear; a decrease). Open: a CI too wide
 * for either O(1) or growth, growth significant but not clearly beyond the bound, growth whose linearity is
 * unclear. Fewer than the verdict's minimum of policy counts can never be decided.
 */
export function curveDecision(points: readonly RunPoint[], alpha: number, opts: Omit<FitOptions, 'alpha'> = {}): CurveDecision {
  const fit = repeatedFit(points, alpha, opts);
  const verdict = complexityVerdict(fit);
  if (!fit || fit.levels.length < 3) return { settled: true, hopeless: true, verdict, fit, alpha };
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
    return { settled, hopeless: false, verdict, fit, alpha, ...(settled ? {} : { openBecause: !beyondBound ? notBeyond : 'the exponent CI does not yet rule out super-linear growth' }) };
  }
  if (verdict.complexity === 'super-linear') return { settled: beyondBound, hopeless: false, verdict, fit, alpha, ...(beyondBound ? {} : { openBecause: notBeyond }) };
  if (verdict.complexity === 'O(1)') return { settled: true, hopeless: false, verdict, fit, alpha };
  const subLinear = beyondBound && eCi !== null && eCi[1] < 1;
  return { settled: subLinear || hi < 0, hopeless: false, verdict, fit, alpha };
}

/**
 * The α to hand the fit so its CIs are t intervals at level 1 − α: the bootstrap's spread comes from the runs'
 * deviations around each count's mean, Σ(n_i − 1) degrees of freedom, and with three runs a count the variance is
 * itself uncertain — the fixed design's t correction of hierarchicalCi, applied to the slope at few repetitions.
 */
export function ciAlpha(alpha: number, points: readonly Pick<XY, 'x'>[]): number {
  const per = new Map<number, number>();
  for (const p of points) per.set(p.x, (per.get(p.x) ?? 0) + 1);
  const dof = [...per.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
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

/** A run's value at a policy count, and whether the machine slowed during the run (by its own reference). */
export interface RunPoint extends XY {
  slowed?: boolean;
}

/** A count keeps at least this many runs: a slowed run is left out only where this many others remain. */
export const MIN_UNSLOWED_RUNS = 2;

/**
 * Leaves out the runs during which the machine slowed — by the loopback reference each run measures beside its
 * metrics, which has no data plane on its path (results/machine.ts) — wherever the count keeps at least
 * MIN_UNSLOWED_RUNS others. Such a run measures the machine, not the data plane: on a shared VM a host
 * disturbance slows a run's every latency by 20–35%, and one such run in a flat curve's count is enough to keep
 * the slope CI wider than the flatness bound for every repetition the sweep can afford. The choice is made on the
 * reference alone, never on the metric's value, so it cannot favour a verdict; a count where most runs were slowed
 * keeps them all (a data plane that slowed the reference itself would otherwise lose its count).
 */
export function withoutSlowed<P extends RunPoint>(points: readonly P[]): P[] {
  const kept = new Map<number, number>();
  for (const p of points) if (!p.slowed) kept.set(p.x, (kept.get(p.x) ?? 0) + 1);
  return points.filter((p) => !p.slowed || (kept.get(p.x) ?? 0) < MIN_UNSLOWED_RUNS);
}

/**
 * The fit an adaptive sweep judges a curve by at a look that spends α: slowed runs left out, pooled spread,
 * t-corrected level 1 − α.
 */
export const repeatedFit = (points: readonly RunPoint[], alpha: number, opts: Omit<FitOptions, 'alpha'> = {}): ScalingFit | null => {
  const kept = withoutSlowed(points).map(({ x, y, se }): XY => ({ x, y, ...(se === undefined ? {} : { se }) }));
  return fitScaling(withPooledSpread(kept), { ...opts, alpha: ciAlpha(alpha, kept) });
};
