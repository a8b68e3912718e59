// What a fit means: a written-down rule turns slope, CI, curve shape and fit quality into a complexity verdict
// (O(1), O(n), super-linear or inconclusive, with the reason) and says which figure may be its headline.
import type { ScalingFit } from './fit.js';

export type Complexity = 'O(1)' | 'O(n)' | 'super-linear' | 'inconclusive';

export interface Verdict {
  complexity: Complexity;
  /** One sentence a reader can check against the numbers. */
  reason: string;
  /** The flatness bound used, ns. */
  boundNs: number;
  /**
   * What to headline: the straight line's slope (where a line describes the curve), the segment costs and
   * growth exponent (established growth that a line does not describe: a curve, a negative intercept, a poor
   * fit), or no trend at all (growth not established either way: only the slope's CI is worth quoting).
   */
  headline: 'slope' | 'segments' | 'no trend';
  headlineReason: string;
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
  /** Super-linear: the growth exponent's whole 95% CI lies above this (n^1.05 is a line for any reader). */
  superLinearMinExponent: 1.1,
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
  const v = classify(fit, rules);
  return { ...v, ...headlineOf(fit, v.complexity) };
}

const fmtCi = (c: [number, number], d = 2) => `${c[0].toFixed(d)}–${c[1].toFixed(d)}`;

/** Where a straight line may be the headline: flat curves, and O(n) lines with a non-negative intercept. */
function headlineOf(fit: ScalingFit | null, c: Complexity): Pick<Verdict, 'headline' | 'headlineReason'> {
  if (!fit) return { headline: 'segments', headlineReason: 'no fit' };
  if (c === 'O(1)') return { headline: 'slope', headlineReason: 'flat: the slope and its CI say it all' };
  if (c === 'O(n)' && fit.intercept >= 0) return { headline: 'slope', headlineReason: `a line fits (R² ${fit.r2.toFixed(2)}, intercept ${fmtNs(fit.intercept)})` };
  const grows = fit.slopeCi95[0] > 0 && fit.slope * (fit.xMax - fit.xMin) > 0;
  if (c === 'inconclusive' && !grows) return { headline: 'no trend', headlineReason: 'no growth established: neither a line nor segments describe it; only the slope CI is quoted' };
  const why: string[] = [];
  if (fit.intercept < 0) why.push(`the line's intercept is ${fmtNs(fit.intercept)} (a latency cannot be negative)`);
  if (fit.r2 < VERDICT_RULES.linearMinR2) why.push(`R² ${fit.r2.toFixed(2)} < ${VERDICT_RULES.linearMinR2}`);
  if (c === 'super-linear') why.push('the growth is super-linear');
  return { headline: 'segments', headlineReason: `segment costs, not the line: ${why.length ? why.join('; ') : 'the growth is not established as linear'}` };
}

function classify(fit: ScalingFit | null, rules: typeof VERDICT_RULES): Omit<Verdict, 'headline' | 'headlineReason'> {
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
    const e = fit.exponent;
    const eOk = e !== null && Number.isFinite(e.ci95[0]) && Number.isFinite(e.ci95[1]);
    const first = fit.segments[0]!;
    const last = fit.segments[fit.segments.length - 1]!;
    // Both: the exponent's CI above 1, and the last segment's marginal cost clearly above the first's.
    const rising = Number.isFinite(last.ci95[0]) && Number.isFinite(first.ci95[1]) && last.ci95[0] > first.ci95[1];
    if (eOk && e.ci95[0] > rules.superLinearMinExponent && rising) {
      return {
        complexity: 'super-linear',
        reason: `grows faster than linearly: added cost ∝ n^${e.k.toFixed(2)} (95% CI ${fmtCi(e.ci95)}, above ${rules.superLinearMinExponent}); marginal cost ${first.nsPerPolicy.toFixed(0)} ns/policy at ${first.from}–${first.to}, ${last.nsPerPolicy.toFixed(0)} ns/policy at ${last.from}–${last.to}`,
        boundNs: bound,
      };
    }
    if (eOk && e.ci95[1] < 1) {
      return { complexity: 'inconclusive', reason: `grows ${fmtNs(added)} over ${span}, but sub-linearly: exponent ${e.k.toFixed(2)} (95% CI ${fmtCi(e.ci95)})`, boundNs: bound };
    }
    if (fit.r2 >= rules.linearMinR2) {
      return { complexity: 'O(n)', reason: `grows ${fmtNs(added)} over ${span} (slope CI above zero), R² ${fit.r2.toFixed(2)} ≥ ${rules.linearMinR2}${eOk ? `, exponent ${e.k.toFixed(2)} (CI ${fmtCi(e.ci95)}) consistent with 1` : ''}`, boundNs: bound };
    }
    return { complexity: 'inconclusive', reason: `grows (slope CI above zero) but not linearly: R² ${fit.r2.toFixed(2)} < ${rules.linearMinR2}${eOk ? `, exponent ${e.k.toFixed(2)} (CI ${fmtCi(e.ci95)})` : ''}`, boundNs: bound };
  }
  if (hi < 0) return { complexity: 'inconclusive', reason: `decreases with the policy count (slope CI below zero)`, boundNs: bound };
  if (lo > 0) return { complexity: 'inconclusive', reason: `grows ${fmtNs(added)} over ${span}: significant, but not clearly beyond the ${fmtNs(bound)} bound`, boundNs: bound };
  return { complexity: 'inconclusive', reason: `slope CI contains zero but is too wide to rule out ${fmtNs(worst)} of change over ${span} (bound ${fmtNs(bound)})`, boundNs: bound };
}

/** The rule's sentences speak of policies; a curve against the Service count reads them with Services as x. */
export const inServiceWords = (reason: string) => reason.replace(/\bpolicies\b/g, 'Services').replace(/\bpolicy\b/g, 'Service');

/** Cost per rule a new connection traverses, against the published band for a simple iptables rule. */
export const RULE_COST_REFERENCE_NS: [number, number] = [15, 25];
