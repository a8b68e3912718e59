// Interleaved measurement: a run measures its metrics in rounds (connect, CRR, RR, then again, the order
// rotated each round) instead of one metric after the other. On a shared VM the machine's speed changes in
// phases of tens of milliseconds (other tenants, the host's scheduling of our vCPU); a metric measured in one
// block of a few hundred milliseconds sees a handful of phases, so its median depends on which ones it caught
// and two runs disagree. Spread over the whole run in rounds, every metric sees the same mix of phases: each
// run's figures are steadier, and RR, CRR and connect are compared under the same conditions.
//
// Every round of every metric also measures the machine's reference (issue 20): the same operation over the client
// pod's loopback, right after the metric's window, a fixed number of samples per run (1000, or --samples when that is
// fewer), so a comparison can tell a machine that slowed from a data plane that did.
import type { MeasureSettings } from '../backends/types.js';
import { MIN_BUDGET_SAMPLES } from '../config/schema.js';
import { mergeCpu } from '../metrics/cpu.js';
import type { MetricName, MetricResult } from '../results/schema.js';

export type RawMetric = Omit<MetricResult, 'summary' | 'stability'>;

/** Reference samples per metric per run, and their warm-up (split over the rounds like the metric's own). */
export const REFERENCE_SAMPLES = 1000;
export const REFERENCE_WARMUP = 100;

export interface RoundPlan {
  metric: MetricName;
  round: number;
  settings: MeasureSettings;
}

/**
 * The measurement order: `rounds` rounds, each measuring every metric once with an even share of the samples
 * and of the warm-up (every round starts a fresh probe, so each gets its own warm-up). Round k starts at metric
 * k mod |metrics|, so no metric always runs first or last.
 */
export function planRounds(metrics: readonly MetricName[], settings: MeasureSettings, rounds: number, reference = { samples: REFERENCE_SAMPLES, warmup: REFERENCE_WARMUP }): RoundPlan[] {
  const n = Math.max(1, Math.min(Math.floor(rounds), settings.samples));
  const share = (total: number, k: number) => Math.floor(total / n) + (k < total % n ? 1 : 0);
  // A short run (a smoke sweep) measures no more reference than metric: the reference's cost stays a fraction.
  const refSamples = Math.min(reference.samples, settings.samples);
  const plan: RoundPlan[] = [];
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < metrics.length; j++) {
      const metric = metrics[(k + j) % metrics.length]!;
      const warmup = n === 1 ? settings.warmup : Math.ceil(settings.warmup / n);
      const ref = refSamples > 0 ? { reference: { samples: share(refSamples, k), warmup: Math.ceil((reference.warmup * refSamples) / reference.samples / n) } } : {};
      plan.push({ metric, round: k + 1, settings: { ...settings, samples: share(settings.samples, k), warmup, ...ref } });
    }
  }
  return plan;
}

/**
 * A sample budget (issue 25): a metric stops sampling once it has spent `budgetMs` measuring, but never below
 * MIN_BUDGET_SAMPLES (or its planned samples, when fewer). A run's p50 settles after a few hundred samples while the
 * run-level CI is set by run-to-run spread, so past the floor more samples of a slow operation (5–10 ms a connection
 * at thousands of iptables policies) buy nothing for the verdict but minutes. The count is set from the metric's
 * first round — its time per operation, never its values — and the rest spread over the remaining rounds, so the
 * metric still spans the whole run.
 */
export { MIN_BUDGET_SAMPLES };

/** The samples a metric takes in all under a budget, from its first round's operations and measuring time. */
export function budgetedSamples(planned: number, budgetMs: number, first: { ops: number; wallNs: number }): number {
  const floor = Math.min(planned, MIN_BUDGET_SAMPLES);
  if (first.ops <= 0 || !(first.wallNs > 0)) return planned;
  const fit = Math.floor((budgetMs * 1e6 * first.ops) / first.wallNs);
  return Math.max(floor, Math.min(planned, fit));
}

/** Under a sample budget, a metric's warm-up after round 1 takes at most this share of the budget… */
export const WARMUP_BUDGET_SHARE = 0.2;
/** …but never fewer than this many operations a round (each round starts a fresh probe, whose first ones are cold). */
export const MIN_ROUND_WARMUP = 2;

/**
 * The warm-up each later round of a metric takes under a budget, from its first round's time per operation: the
 * planned share, capped so the `roundsLeft` rounds' warm-ups together take at most WARMUP_BUDGET_SHARE of the budget,
 * never below MIN_ROUND_WARMUP (nor above the plan). At 11 ms a connection (5000 iptables policies) the planned 10 a
 * round would cost 1 s a metric, as much as its samples.
 */
export function budgetedWarmup(perRound: number, budgetMs: number, first: { ops: number; wallNs: number }, roundsLeft: number): number {
  if (first.ops <= 0 || !(first.wallNs > 0) || roundsLeft <= 0) return perRound;
  const fit = Math.floor((WARMUP_BUDGET_SHARE * budgetMs * 1e6 * first.ops) / first.wallNs / roundsLeft);
  return Math.min(perRound, Math.max(MIN_ROUND_WARMUP, fit));
}

/** The plan with the warm-up of `metric`'s rounds after `after` set to `warmup`. */
export const rewarm = (plan: readonly RoundPlan[], metric: MetricName, after: number, warmup: number): RoundPlan[] => plan.map((r) => (r.metric === metric && r.round > after ? { ...r, settings: { ...r.settings, warmup } } : r));

/**
 * The plan's remaining rounds of `metric` (after round `after`), re-shared so the metric takes `total` samples in
 * all, `taken` of them already; a round left with no samples is dropped (its reference with it).
 */
export function reshare(plan: readonly RoundPlan[], metric: MetricName, after: number, total: number, taken: number): RoundPlan[] {
  const rest = plan.filter((r) => r.metric === metric && r.round > after);
  const left = Math.max(0, total - taken);
  const share = (k: number) => Math.floor(left / rest.length) + (k < left % rest.length ? 1 : 0);
  const samples = new Map(rest.map((r, k) => [r, share(k)]));
  return plan.flatMap((r) => (samples.has(r) ? (samples.get(r)! > 0 ? [{ ...r, settings: { ...r.settings, samples: samples.get(r)! } }] : []) : [r]));
}

const opsOf = (p: RawMetric) => p.samplesNs.length + Object.values(p.errors).reduce((a, b) => a + b, 0);

/** One metric's rounds joined in the order measured: samples concatenated, errors and wall time summed, CPU per op weighted by operations. */
export function mergeRounds(parts: readonly RawMetric[]): RawMetric {
  if (parts.length === 1) return parts[0]!;
  const errors: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
  const cpu = mergeCpu(parts.map((p) => ({ cpu: p.cpu, ops: opsOf(p) })));
  const merged: RawMetric = { ...parts[0]!, samplesNs: parts.flatMap((p) => p.samplesNs), errors, wallNs: parts.reduce((a, p) => a + p.wallNs, 0), cpu };
  const refs = parts.map((p) => p.reference);
  if (refs.every((r) => r !== undefined)) {
    const refErrors: Record<string, number> = {};
    for (const r of refs) for (const [k, v] of Object.entries(r!.errors)) refErrors[k] = (refErrors[k] ?? 0) + v;
    merged.reference = { target: refs[0]!.target, samplesNs: refs.flatMap((r) => r!.samplesNs), errors: refErrors, wallNs: refs.reduce((a, r) => a + r!.wallNs, 0) };
  } else {
    delete merged.reference;
  }
  return merged;
}
