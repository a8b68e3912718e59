// Measuring flows: connect, CRR and RR along each flow, interleaved in rounds (./interleave.ts) so the three
// metrics of a flow see the same machine conditions. The benchmark measures its one flow; bench run --workload
// measures each chosen flow of a replayed cluster in turn, and keeps every flow's figures.
import type { DataPlane, Progress } from '../backends/types.js';
import { InterruptedError } from '../errors.js';
import { METRICS, type FlowResult, type MetricName, type MetricResult } from '../results/schema.js';
import { assessStability } from '../stats/stability.js';
import { summarize } from '../stats/summary.js';
import type { Flow } from '../workload/workload.js';
import { budgetedSamples, budgetedWarmup, MIN_BUDGET_SAMPLES, MIN_ROUND_WARMUP, mergeRounds, planRounds, reshare, rewarm, WARMUP_BUDGET_SHARE, type RawMetric } from './interleave.js';

export type { FlowResult };

export interface MeasureSettingsLike {
  samples: number;
  warmup: number;
  concurrency: number;
  timeoutMs: number;
  /** Bootstrap seed of the summaries. */
  seed: number;
  /** A metric stops sampling after this long measuring, never below MIN_BUDGET_SAMPLES (interleave.ts). */
  sampleBudgetMs?: number;
  /** The metrics measured (unset: every one); the others are null in the result. */
  metrics?: readonly MetricName[];
}

/** A flow's figures and the wall time each metric took (its rounds, references and probe starts), ms. */
export type MeasuredFlow = FlowResult & { metricMs: Partial<Record<MetricName, number>> };

type FlowIn = Flow & { reason: string; rules: number; allowed: boolean };

const label = (f: Flow) => `${f.from} -> ${f.to} ${f.port}/${f.protocol}`;

/** Every metric of every flow, one flow after the other; a flow's metrics interleaved in `rounds`. */
export async function measureFlows(backend: Pick<DataPlane, 'measure'>, flows: readonly FlowIn[], s: MeasureSettingsLike, rounds: number, o: { progress?: Progress; signal?: AbortSignal } = {}): Promise<MeasuredFlow[]> {
  const out: MeasuredFlow[] = [];
  // In METRICS order whatever order they were given in, so the rounds rotate as they always did.
  const measured = METRICS.filter((m) => !s.metrics || s.metrics.includes(m));
  for (const [i, flow] of flows.entries()) {
    let plan = planRounds(measured, { samples: s.samples, warmup: s.warmup, concurrency: s.concurrency, timeoutMs: s.timeoutMs }, rounds);
    const metricMs: Partial<Record<MetricName, number>> = {};
    const parts = new Map<MetricName, RawMetric[]>();
    const which = flows.length > 1 ? ` flow ${i + 1}/${flows.length} (${flow.reason}: ${label(flow)})` : '';
    const sampling = new Map<MetricName, NonNullable<MetricResult['sampling']>>();
    const warmups = new Map<MetricName, NonNullable<MetricResult['warmup']>>();
    for (let i = 0; i < plan.length; i++) {
      const r = plan[i]!;
      if (o.signal?.aborted) throw new InterruptedError();
      if (rounds === 1) o.progress?.step(`measuring ${r.metric}${which} (${s.samples} samples after ${s.warmup} warm-up)`);
      else if (r === plan[0]) o.progress?.step(`measuring ${measured.join(', ')}${which} interleaved in ${rounds} rounds (${s.samples} samples each in all; every round warms up ${r.settings.warmup} first)`);
      else if (r.metric === plan[(r.round - 1) * measured.length]?.metric) o.progress?.step(`round ${r.round}/${rounds}`);
      const t = performance.now();
      const part = await backend.measure(flow, r.metric, r.settings);
      metricMs[r.metric] = (metricMs[r.metric] ?? 0) + performance.now() - t;
      parts.set(r.metric, [...(parts.get(r.metric) ?? []), part]);
      if (s.sampleBudgetMs !== undefined && r.round === 1 && rounds > 1) {
        const first = { ops: part.samplesNs.length, wallNs: part.wallNs };
        const roundsLeft = plan.filter((x) => x.metric === r.metric && x.round > 1).length;
        const warm = budgetedWarmup(r.settings.warmup, s.sampleBudgetMs, first, roundsLeft);
        if (warm < r.settings.warmup) {
          plan = rewarm(plan, r.metric, 1, warm);
          warmups.set(r.metric, { planned: r.settings.warmup * (roundsLeft + 1), taken: r.settings.warmup + warm * roundsLeft, reason: `warm-up ${warm} a round after round 1 (planned ${r.settings.warmup}): at most ${WARMUP_BUDGET_SHARE * 100}% of the ${s.sampleBudgetMs} ms budget, at least ${MIN_ROUND_WARMUP}` });
        }
        const total = budgetedSamples(s.samples, s.sampleBudgetMs, first);
        if (total < s.samples) {
          plan = reshare(plan, r.metric, 1, total, part.samplesNs.length);
          sampling.set(r.metric, { planned: s.samples, budgetMs: s.sampleBudgetMs, reason: `${total} of ${s.samples} samples: ${(part.wallNs / 1e6 / Math.max(1, part.samplesNs.length)).toFixed(2)} ms an operation in round 1, a ${s.sampleBudgetMs} ms budget, at least ${MIN_BUDGET_SAMPLES}` });
          o.progress?.step(`${r.metric}: ${sampling.get(r.metric)!.reason}`);
        }
      }
    }
    const metrics: FlowResult['metrics'] = { connect: null, crr: null, rr: null };
    for (const metric of measured) {
      const m = mergeRounds(parts.get(metric)!);
      metrics[metric] = { ...m, summary: summarize(m.samplesNs, { seed: s.seed }), stability: assessStability(m.samplesNs), ...(sampling.has(metric) ? { sampling: sampling.get(metric) } : {}), ...(warmups.has(metric) ? { warmup: warmups.get(metric) } : {}) } as MetricResult;
    }
    out.push({ from: flow.from, to: flow.to, port: flow.port, protocol: flow.protocol, reason: flow.reason, rules: flow.rules, allowed: flow.allowed, metrics, metricMs });
  }
  return out;
}

/** The flow whose new connections cost most: the highest connect p50 (the first flow when none was measured). */
export function worstFlow<T extends Pick<FlowResult, 'metrics'>>(flows: readonly T[]): T {
  const p50 = (f: T) => f.metrics.connect?.summary.p50 ?? -Infinity;
  return flows.reduce((worst, f) => (p50(f) > p50(worst) ? f : worst), flows[0]!);
}
