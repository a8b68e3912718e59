// Distributions, not averages: percentiles with seeded bootstrap confidence intervals.
import { mean as ssMean, quantileSorted } from 'simple-statistics';

/** Mulberry32: a small, fast, seedable PRNG so bootstrap CIs are reproducible from the result file alone. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Summary {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Bootstrap 95% confidence intervals (percentile method). */
  ci95: { p50: [number, number]; p99: [number, number] };
}

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
}

/** Sorted copy as a Float64Array (numeric sort, no comparator overhead). */
export function sortedCopy(values: readonly number[]): Float64Array {
  const a = Float64Array.from(values);
  a.sort();
  return a;
}

/** Quantile of sorted data with linear interpolation between order statistics (type 7, as R and numpy default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Percentile-bootstrap CI of several quantiles at once. Resampling n values per round is O(n); to keep
 * 100k-sample runs fast, each resample is drawn as counts over the sorted data (a multinomial via uniform
 * indices), and its quantiles are read by walking cumulative counts rather than sorting.
 */
export function bootstrapQuantiles(sorted: Float64Array, qs: number[], opts: BootstrapOptions = {}): Array<[number, number]> {
  const n = sorted.length;
  if (n === 0) return qs.map(() => [Number.NaN, Number.NaN]);
  const resamples = opts.resamples ?? 1000;
  const rand = seededRandom(opts.seed ?? 1);
  const estimates = qs.map(() => new Float64Array(resamples));
  const counts = new Uint32Array(n);
  const targets = qs.map((q) => Math.min(n - 1, Math.floor((n - 1) * q)));
  for (let r = 0; r < resamples; r++) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[Math.floor(rand() * n)]!++;
    // Walk the cumulative counts once, reading each target order statistic.
    const order = targets.map((t, k) => [t, k] as const).sort((a, b) => a[0] - b[0]);
    let cum = 0;
    let oi = 0;
    for (let i = 0; i < n && oi < order.length; i++) {
      cum += counts[i]!;
      while (oi < order.length && cum > order[oi]![0]) {
        estimates[order[oi]![1]]![r] = sorted[i]!;
        oi++;
      }
    }
  }
  return estimates.map((e) => {
    e.sort();
    return [quantileSorted(Array.from(e), 0.025), quantileSorted(Array.from(e), 0.975)];
  });
}

export function summarize(values: readonly number[], opts: BootstrapOptions = {}): Summary {
  const sorted = sortedCopy(values);
  const n = sorted.length;
  if (n === 0) {
    return { count: 0, min: NaN, max: NaN, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, ci95: { p50: [NaN, NaN], p99: [NaN, NaN] } };
  }
  const [ci50, ci99] = bootstrapQuantiles(sorted, [0.5, 0.99], opts) as [[number, number], [number, number]];
  return {
    count: n,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    mean: ssMean(Array.from(sorted)),
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    ci95: { p50: ci50, p99: ci99 },
  };
}
