// Two runs of the same point, baseline and current: how much did a percentile move, with what confidence, and
// is it a regression? Pure functions on raw samples.
import { errorFunction } from 'simple-statistics';
import { quantile, sortedCopy } from './summary.js';

const Z95 = 1.959963984540054;

export interface MannWhitney {
  u: number;
  z: number;
  /** Two-sided p-value (normal approximation with tie correction; fine for the thousands of samples a run has). */
  p: number;
  /** Probability that a random current sample exceeds a random baseline sample (0.5 = no shift). */
  commonLanguageEffect: number;
}

const normalCdf = (z: number) => 0.5 * (1 + errorFunction(z / Math.SQRT2));

/** Mann–Whitney U test of `current` against `baseline`. */
export function mannWhitney(baseline: ArrayLike<number>, current: ArrayLike<number>): MannWhitney {
  const n1 = baseline.length;
  const n2 = current.length;
  if (n1 === 0 || n2 === 0) return { u: Number.NaN, z: Number.NaN, p: Number.NaN, commonLanguageEffect: Number.NaN };
  const n = n1 + n2;
  // Sort indices of the pooled sample; mark which side each came from.
  const values = new Float64Array(n);
  const fromCurrent = new Uint8Array(n);
  for (let i = 0; i < n1; i++) values[i] = baseline[i]!;
  for (let i = 0; i < n2; i++) {
    values[n1 + i] = current[i]!;
    fromCurrent[n1 + i] = 1;
  }
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  let rankSumCurrent = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    const t = j - i + 1;
    if (t > 1) tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (fromCurrent[order[k]!]) rankSumCurrent += avgRank;
    i = j + 1;
  }
  const u = rankSumCurrent - (n2 * (n2 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return { u, z: 0, p: 1, commonLanguageEffect: 0.5 };
  // Continuity correction towards the mean.
  const z = (u - mu - Math.sign(u - mu) * 0.5) / sigma;
  const p = Math.min(1, 2 * (1 - normalCdf(Math.abs(z))));
  return { u, z, p, commonLanguageEffect: u / (n1 * n2) };
}

/**
 * Distribution-free 95% CI of a quantile from order statistics: the ranks n·q ± 1.96·√(n·q·(1−q)) (the normal
 * approximation of the binomial count of samples below the quantile). O(1) on sorted data.
 */
export function quantileCi(sorted: ArrayLike<number>, q: number): [number, number] {
  const n = sorted.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  const half = Z95 * Math.sqrt(n * q * (1 - q));
  const lo = Math.max(0, Math.floor(n * q - half) - 1);
  const hi = Math.min(n - 1, Math.ceil(n * q + half));
  return [sorted[lo]!, sorted[hi]!];
}

export interface PercentileChange {
  q: number;
  baseline: number;
  current: number;
  /** current / baseline − 1 */
  change: number;
  /** 95% CI of the relative change: the two quantiles' order-statistic CIs combined on the log scale. */
  changeCi95: [number, number];
}

export function percentileChange(baselineSorted: ArrayLike<number>, currentSorted: ArrayLike<number>, q: number): PercentileChange {
  const b = quantile(baselineSorted, q);
  const c = quantile(currentSorted, q);
  const [bl, bh] = quantileCi(baselineSorted, q);
  const [cl, ch] = quantileCi(currentSorted, q);
  const change = c / b - 1;
  if (!(b > 0 && c > 0 && bl > 0 && cl > 0)) return { q, baseline: b, current: c, change, changeCi95: [Number.NaN, Number.NaN] };
  // Half-widths on the log scale, as standard errors, added in quadrature (the runs are independent).
  const seB = (Math.log(bh) - Math.log(bl)) / (2 * Z95);
  const seC = (Math.log(ch) - Math.log(cl)) / (2 * Z95);
  const se = Math.sqrt(seB * seB + seC * seC);
  const d = Math.log(c / b);
  return { q, baseline: b, current: c, change, changeCi95: [Math.exp(d - Z95 * se) - 1, Math.exp(d + Z95 * se) - 1] };
}

export interface CompareOptions {
  /** Relative slow-down beyond which a significant change is a regression (0.05 = 5%). */
  maxRegression: number;
  /** Significance level of the tests. */
  alpha: number;
}

export const DEFAULT_COMPARE: CompareOptions = { maxRegression: 0.05, alpha: 0.05 };

export type ChangeVerdict = 'regression' | 'improvement' | 'slower (within threshold)' | 'faster (within threshold)' | 'no significant change' | 'no data';

export interface SampleComparison extends PercentileChange {
  baselineCount: number;
  currentCount: number;
  /** Mann–Whitney on all raw samples (reported for every row; decides for the median). */
  mannWhitneyP: number;
  significant: boolean;
  verdict: ChangeVerdict;
}

/**
 * Compares one percentile of two latency sample sets. A change is significant when the 95% CI of the
 * relative change excludes zero and — for the median, where a location test fits — the Mann–Whitney p-value
 * is below alpha. (Tail percentiles are judged by their own CI only: Mann–Whitney tests the body of the
 * distribution and would miss a regression confined to the tail.) A regression is a significant slow-down
 * larger than maxRegression.
 */
export function compareSamples(baseline: readonly number[], current: readonly number[], q: number, opts: CompareOptions = DEFAULT_COMPARE): SampleComparison {
  const bs = sortedCopy(baseline);
  const cs = sortedCopy(current);
  if (bs.length === 0 || cs.length === 0) {
    return { q, baseline: Number.NaN, current: Number.NaN, change: Number.NaN, changeCi95: [Number.NaN, Number.NaN], baselineCount: bs.length, currentCount: cs.length, mannWhitneyP: Number.NaN, significant: false, verdict: 'no data' };
  }
  const pc = percentileChange(bs, cs, q);
  const mw = mannWhitney(bs, cs);
  const ciExcludesZero = pc.changeCi95[0] > 0 || pc.changeCi95[1] < 0;
  const significant = ciExcludesZero && (q !== 0.5 || mw.p < opts.alpha);
  let verdict: ChangeVerdict = 'no significant change';
  if (significant && pc.change > 0) verdict = pc.change > opts.maxRegression ? 'regression' : 'slower (within threshold)';
  if (significant && pc.change < 0) verdict = -pc.change > opts.maxRegression ? 'improvement' : 'faster (within threshold)';
  return { ...pc, baselineCount: bs.length, currentCount: cs.length, mannWhitneyP: mw.p, significant, verdict };
}
