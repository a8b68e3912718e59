// Uncertainty at the level where the noise is. On a shared VM the largest error is between runs (where the
// scheduler put client, server and softirq work), not between samples of one run; thousands of samples from one
// run are not independent evidence about the next. So a point's value is the mean of its runs' percentiles, and
// its CI comes from a hierarchical bootstrap: resample the runs, then the samples within each resampled run.
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import { quantile, seededRandom } from './summary.js';

const Z95 = 1.959963984540054;

/** Standard normal draw (Box–Muller) from a uniform source. */
export function normalFrom(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/**
 * One bootstrap replicate of the q-quantile of a sorted sample, without resampling n values: the number of
 * resampled values at or below the j-th order statistic is Binomial(n, j/n), so the resampled quantile is the
 * order statistic at rank n·q ± √(n·q·(1−q))·Z (the normal approximation of that binomial). O(1) per replicate.
 */
export function quantileReplicate(sorted: ArrayLike<number>, q: number, z: number): number {
  const n = sorted.length;
  const rank = n * q + z * Math.sqrt(n * q * (1 - q));
  const i = Math.min(n - 1, Math.max(0, Math.round(rank - 0.5)));
  return sorted[i]!;
}

/** Two-sided t critical value for a 95% interval with `dof` degrees of freedom (1.96 for infinite dof). */
export const t95 = (dof: number) => (dof >= 1 ? tQuantile(0.975, dof) : Number.NaN);
/** Two-sided p-value of a t statistic. */
export const tTwoSidedP = (t: number, dof: number) => (Number.isFinite(t) && dof > 0 ? 2 * (1 - tCdf(Math.abs(t), dof)) : Number.NaN);
/** One-sided p of H1 "the difference is positive": P(T ≥ t). */
export const tUpperP = (t: number, dof: number) => (t === Infinity ? 0 : t === -Infinity ? 1 : Number.isFinite(t) && dof > 0 ? 1 - tCdf(t, dof) : Number.NaN);

export type CiLevel = 'runs' | 'within-run';

export interface HierarchicalEstimate {
  /** Mean of the runs' percentiles (ns). */
  value: number;
  /**
   * 95% CI. With ≥ 2 runs: hierarchical bootstrap (runs, then samples within runs), widened for few runs (see
   * hierarchicalCi). With one run: the within-run CI, which cannot include run-to-run variation.
   */
  ci95: [number, number];
  level: CiLevel;
  runs: number;
  /** Each run's own percentile, in the order given. */
  perRun: number[];
  /** Standard deviation of the runs' percentiles (NaN with one run). */
  betweenRunSd: number;
  /** The old view, kept for reference: all samples pooled as if independent. */
  withinRunCi95: [number, number];
}

export interface HierarchicalOptions {
  resamples?: number;
  seed?: number;
}

/**
 * Hierarchical bootstrap of a percentile over runs. Each replicate draws R runs with replacement and, for each,
 * a bootstrap replicate of that run's percentile (quantileReplicate); the replicate statistic is their mean.
 * The percentile interval of the replicates is then widened around the estimate by √(R/(R−1)) · t(R−1)/z: the
 * bootstrap of R runs underestimates their spread by (R−1)/R, and with 3–5 runs the sampling distribution of
 * the mean has t tails, not normal ones. Without that correction a 3-run CI covers far less than 95%. For
 * positive values (latencies) the widening is done on the log scale, so a CI never reaches below zero.
 */
export function hierarchicalCi(runsSorted: ArrayLike<number>[], q: number, opts: HierarchicalOptions = {}): HierarchicalEstimate {
  const runs = runsSorted.filter((r) => r.length > 0);
  const R = runs.length;
  const nan: [number, number] = [Number.NaN, Number.NaN];
  if (R === 0) return { value: Number.NaN, ci95: nan, level: 'within-run', runs: 0, perRun: [], betweenRunSd: Number.NaN, withinRunCi95: nan };
  const perRun = runs.map((r) => quantile(r, q));
  const value = perRun.reduce((a, b) => a + b, 0) / R;
  const resamples = opts.resamples ?? 1000;
  const rand = seededRandom(opts.seed ?? 1);
  const gauss = normalFrom(rand);
  const within = new Float64Array(resamples);
  // Within-run view: one pooled sample (what the old CI did), by the same order-statistic replicate.
  const pooled = poolSorted(runs);
  for (let b = 0; b < resamples; b++) within[b] = quantileReplicate(pooled, q, gauss());
  within.sort();
  const withinRunCi95: [number, number] = [quantile(within, 0.025), quantile(within, 0.975)];
  if (R === 1) {
    const one = new Float64Array(resamples);
    for (let b = 0; b < resamples; b++) one[b] = quantileReplicate(runs[0]!, q, gauss());
    one.sort();
    return { value, ci95: [quantile(one, 0.025), quantile(one, 0.975)], level: 'within-run', runs: 1, perRun, betweenRunSd: Number.NaN, withinRunCi95 };
  }
  const reps = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let k = 0; k < R; k++) s += quantileReplicate(runs[Math.floor(rand() * R)]!, q, gauss());
    reps[b] = s / R;
  }
  reps.sort();
  const widen = Math.sqrt(R / (R - 1)) * (t95(R - 1) / Z95);
  const lo = quantile(reps, 0.025);
  const hi = quantile(reps, 0.975);
  const mean = perRun.reduce((a, b) => a + b, 0) / R;
  const sd = Math.sqrt(perRun.reduce((a, b) => a + (b - mean) ** 2, 0) / (R - 1));
  // Latencies live on a ratio scale: widen on the log scale when everything is positive (a CI never goes below 0).
  const ci95: [number, number] =
    value > 0 && lo > 0 && hi > 0
      ? [Math.exp(Math.log(value) - widen * (Math.log(value) - Math.log(lo))), Math.exp(Math.log(value) + widen * (Math.log(hi) - Math.log(value)))]
      : [value - widen * (value - lo), value + widen * (hi - value)];
  return { value, ci95, level: 'runs', runs: R, perRun, betweenRunSd: sd, withinRunCi95 };
}

/**
 * Hierarchical CI of a run-level scalar that has no samples within the run (e.g. CPU per connection from
 * /proc/stat): a t interval over the runs. One run has no interval.
 */
export function runLevelCi(values: readonly number[]): { value: number; ci95: [number, number]; level: CiLevel; runs: number; betweenRunSd: number } {
  const R = values.length;
  if (R === 0) return { value: Number.NaN, ci95: [Number.NaN, Number.NaN], level: 'within-run', runs: 0, betweenRunSd: Number.NaN };
  const m = values.reduce((a, b) => a + b, 0) / R;
  if (R === 1) return { value: m, ci95: [Number.NaN, Number.NaN], level: 'within-run', runs: 1, betweenRunSd: Number.NaN };
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (R - 1));
  const h = t95(R - 1) * (sd / Math.sqrt(R));
  return { value: m, ci95: [m - h, m + h], level: 'runs', runs: R, betweenRunSd: sd };
}

/** Merge of sorted arrays into one sorted Float64Array. */
export function poolSorted(runs: ArrayLike<number>[]): Float64Array {
  const n = runs.reduce((a, r) => a + r.length, 0);
  const out = new Float64Array(n);
  let i = 0;
  for (const r of runs) for (let k = 0; k < r.length; k++) out[i++] = r[k]!;
  out.sort();
  return out;
}

export interface WelchResult {
  /** Difference of the means (current − baseline), in the units given (here: log ns). */
  diff: number;
  se: number;
  dof: number;
  t: number;
  /** Two-sided p of "no difference". */
  p: number;
  /** One-sided p of H1 "current is larger" (P(T ≥ t)); 1 − pGreater is the other direction's. */
  pGreater: number;
  ci95: [number, number];
}

/** Welch's two-sample t test on run-level values (unequal variances, Welch–Satterthwaite degrees of freedom). */
export function welch(baseline: readonly number[], current: readonly number[]): WelchResult {
  const n1 = baseline.length;
  const n2 = current.length;
  const nan = { diff: Number.NaN, se: Number.NaN, dof: Number.NaN, t: Number.NaN, p: Number.NaN, pGreater: Number.NaN, ci95: [Number.NaN, Number.NaN] as [number, number] };
  if (n1 < 2 || n2 < 2) return { ...nan, diff: n1 && n2 ? mean(current) - mean(baseline) : Number.NaN };
  const m1 = mean(baseline);
  const m2 = mean(current);
  const v1 = variance(baseline, m1);
  const v2 = variance(current, m2);
  const a = v1 / n1;
  const b = v2 / n2;
  const se = Math.sqrt(a + b);
  const diff = m2 - m1;
  if (se === 0) return { diff, se: 0, dof: n1 + n2 - 2, t: diff === 0 ? 0 : Math.sign(diff) * Infinity, p: diff === 0 ? 1 : 0, pGreater: diff > 0 ? 0 : 1, ci95: [diff, diff] };
  const dof = (a + b) ** 2 / ((a * a) / (n1 - 1) + (b * b) / (n2 - 1));
  const t = diff / se;
  const h = t95(dof) * se;
  return { diff, se, dof, t, p: tTwoSidedP(t, dof), pGreater: tUpperP(t, dof), ci95: [diff - h, diff + h] };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: readonly number[], m: number) => xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
