// Is a run one steady state? A tight CI around one mode of a two-mode distribution (the scheduler moved the
// server to the other CPU halfway through), or around the average of a run that drifted, is a false precision.
// Two checks on the raw samples, in measurement order:
// - modes: a histogram of log latency (40 bins between the 1st and 99th percentile, smoothed over 3 bins);
//   a second mode counts when each of two peaks holds ≥ 10% of the samples and the valley between them is
//   below half of the lower peak, and the peaks are at least 25% apart;
// - drift: the median of the second half against the first; flagged beyond 10% when the halves' order-
//   statistic CIs do not overlap.
import { quantileCi } from './compare.js';
import { quantile, sortedCopy } from './summary.js';

/** The verdict on one run's samples (stored in the result file as its metric's `stability`). */
export interface Stability {
  /** Modes found in the log-latency histogram, ns (one entry = unimodal). */
  modesNs: number[];
  /** Median of the second half of the run over the median of the first half, − 1. */
  halvesShift: number | null;
  multimodal: boolean;
  shifted: boolean;
  /** multimodal or shifted: the run's CI is around a mixture, not one steady state. */
  flagged: boolean;
  reason: string;
}

export const STABILITY_RULES = { bins: 40, minModeShare: 0.1, valleyRatio: 0.5, minModeRatio: 1.25, maxHalvesShift: 0.1, minSamples: 200 } as const;

const fmtUs = (ns: number) => `${(ns / 1000).toFixed(ns >= 100_000 ? 0 : 1)} µs`;

/** Modes of a sample (ns), most populous first. */
export function findModes(samples: readonly number[], rules = STABILITY_RULES): number[] {
  const s = sortedCopy(samples.filter((x) => x > 0));
  const n = s.length;
  if (n < rules.minSamples) return n ? [quantile(s, 0.5)] : [];
  const lo = Math.log(quantile(s, 0.01));
  const hi = Math.log(quantile(s, 0.99));
  if (!(hi > lo)) return [quantile(s, 0.5)];
  const B = rules.bins;
  const w = (hi - lo) / B;
  const h = new Float64Array(B);
  for (let i = 0; i < n; i++) {
    const b = Math.floor((Math.log(s[i]!) - lo) / w);
    if (b >= 0 && b < B) h[b]!++;
    else if (b === B) h[B - 1]!++;
  }
  const sm = Float64Array.from(h, (_, i) => ((h[i - 1] ?? 0) + h[i]! + (h[i + 1] ?? 0)) / 3);
  // Local maxima of the smoothed histogram.
  const peaks: number[] = [];
  for (let i = 0; i < B; i++) if (sm[i]! > (sm[i - 1] ?? -1) && sm[i]! >= (sm[i + 1] ?? -1)) peaks.push(i);
  // Merge peaks not separated by a deep valley, keeping the taller; then drop those with too little mass.
  const kept: number[] = [];
  for (const p of peaks) {
    const prev = kept[kept.length - 1];
    if (prev === undefined) {
      kept.push(p);
      continue;
    }
    let valley = Infinity;
    for (let i = prev; i <= p; i++) valley = Math.min(valley, sm[i]!);
    const farApart = (p - prev) * w >= Math.log(rules.minModeRatio);
    if (farApart && valley < rules.valleyRatio * Math.min(sm[prev]!, sm[p]!)) kept.push(p);
    else if (sm[p]! > sm[prev]!) kept[kept.length - 1] = p;
  }
  // Mass of each kept peak: the bins closer to it than to a neighbouring peak.
  const mass = kept.map((p, k) => {
    const from = k === 0 ? 0 : Math.floor((kept[k - 1]! + p) / 2) + 1;
    const to = k === kept.length - 1 ? B - 1 : Math.floor((p + kept[k + 1]!) / 2);
    let m = 0;
    for (let i = from; i <= to; i++) m += h[i]!;
    return m / n;
  });
  const modes = kept.map((p, k) => ({ at: Math.exp(lo + (p + 0.5) * w), share: mass[k]! })).filter((m) => m.share >= rules.minModeShare);
  if (modes.length === 0) return [quantile(s, 0.5)];
  return modes.sort((a, b) => b.share - a.share).map((m) => m.at);
}

export function assessStability(samples: readonly number[], rules = STABILITY_RULES): Stability {
  const n = samples.length;
  if (n < rules.minSamples) {
    return { modesNs: n ? findModes(samples, rules) : [], halvesShift: null, multimodal: false, shifted: false, flagged: false, reason: `too few samples (${n}) to judge stability` };
  }
  const modes = findModes(samples, rules);
  const a = sortedCopy(samples.slice(0, Math.floor(n / 2)));
  const b = sortedCopy(samples.slice(Math.floor(n / 2)));
  const ma = quantile(a, 0.5);
  const mb = quantile(b, 0.5);
  const shift = ma > 0 ? mb / ma - 1 : null;
  const [alo, ahi] = quantileCi(a, 0.5);
  const [blo, bhi] = quantileCi(b, 0.5);
  const apart = bhi < alo || blo > ahi;
  const shifted = shift !== null && Math.abs(shift) > rules.maxHalvesShift && apart;
  const multimodal = modes.length > 1;
  const reasons: string[] = [];
  if (multimodal) reasons.push(`${modes.length} modes (${modes.map(fmtUs).join(', ')}): the run mixes states, e.g. the scheduler moved work between CPUs`);
  if (shifted) reasons.push(`the second half's median is ${shift! > 0 ? '+' : ''}${(shift! * 100).toFixed(0)}% from the first half's (${fmtUs(ma)} → ${fmtUs(mb)}): the run drifted`);
  return {
    modesNs: modes,
    halvesShift: shift,
    multimodal,
    shifted,
    flagged: multimodal || shifted,
    reason: reasons.length ? reasons.join('; ') : 'one mode, no drift between the halves',
  };
}
