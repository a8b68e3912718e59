// bench run --repetitions N: N fresh measurements of one point (each its own backend, warm-up and result file),
// summarised at the level where the noise is: per metric, the mean of the runs' percentiles with a hierarchical
// bootstrap CI (runs, then samples within runs), the within-run CI beside it, and every run flagged unstable.
import { hierarchicalCi, runLevelCi, type CiLevel } from '../stats/hierarchical.js';
import { sortedCopy } from '../stats/summary.js';
import { METRICS, type MetricName, type RunResult } from '../results/schema.js';
import { cpuResolutionUsPerOp } from '../results/cpu.js';

export interface PercentileEstimate {
  value: number;
  ci95: [number, number];
  level: CiLevel;
  withinRunCi95: [number, number];
  perRun: number[];
  betweenRunSd: number;
}

export interface MetricRepetitions {
  runs: number;
  p50: PercentileEstimate;
  p99: PercentileEstimate;
  /** CPU µs per operation (what the result's cpu block totals): mean over runs with a t interval, and the coarsest run's resolution. */
  cpuUsPerOp: { value: number; ci95: [number, number]; resolutionUsPerOp: number } | null;
  /** Runs whose samples were multimodal or drifted, with the reason. */
  unstable: Array<{ runId: string; reason: string }>;
}

export interface RepetitionSummary {
  kind: 'cni-bench/repetition-summary';
  runIds: string[];
  cni: string;
  policies: number;
  /** 'runs': CIs include run-to-run variation. 'within-run': one run, they cannot. */
  ciLevel: CiLevel;
  note: string;
  metrics: Record<MetricName, MetricRepetitions | null>;
}

export const ONE_RUN_NOTE = 'one run: its CIs cover sample noise within this run only and cannot include run-to-run variation (use --repetitions 3 or more for CIs that do)';
export const RUNS_NOTE = (n: number) => `${n} runs: value = mean of the runs' percentiles; 95% CI by hierarchical bootstrap (runs, then samples within runs), widened for ${n} runs by √(R/(R−1))·t(R−1)/z`;

export function summarizeRepetitions(results: RunResult[], opts: { seed?: number; resamples?: number } = {}): RepetitionSummary {
  const ok = results.filter((r) => r.status === 'ok');
  const metrics = {} as Record<MetricName, MetricRepetitions | null>;
  for (const m of METRICS) {
    const withMetric = ok.filter((r) => r.metrics[m] && r.metrics[m]!.samplesNs.length > 0);
    if (withMetric.length === 0) {
      metrics[m] = null;
      continue;
    }
    const sorted = withMetric.map((r) => sortedCopy(r.metrics[m]!.samplesNs));
    const est = (q: number): PercentileEstimate => {
      const h = hierarchicalCi(sorted, q, { seed: opts.seed ?? 1, resamples: opts.resamples });
      return { value: h.value, ci95: h.ci95, level: h.level, withinRunCi95: h.withinRunCi95, perRun: h.perRun, betweenRunSd: h.betweenRunSd };
    };
    const withCpu = withMetric.filter((r) => typeof r.metrics[m]!.cpu?.totalUsPerOp === 'number');
    const cpu = withCpu.length ? runLevelCi(withCpu.map((r) => r.metrics[m]!.cpu!.totalUsPerOp)) : null;
    const cpuResolution = Math.max(...withCpu.map((r) => cpuResolutionUsPerOp(r, r.metrics[m]!)));
    metrics[m] = {
      runs: withMetric.length,
      p50: est(0.5),
      p99: est(0.99),
      cpuUsPerOp: cpu ? { value: cpu.value, ci95: cpu.ci95, resolutionUsPerOp: cpuResolution } : null,
      unstable: withMetric.filter((r) => r.metrics[m]!.stability?.flagged).map((r) => ({ runId: r.runId, reason: r.metrics[m]!.stability!.reason })),
    };
  }
  const n = ok.length;
  return {
    kind: 'cni-bench/repetition-summary',
    runIds: results.map((r) => r.runId),
    cni: results[0]?.meta.cni ?? '',
    policies: results[0]?.meta.policy.count ?? 0,
    ciLevel: n >= 2 ? 'runs' : 'within-run',
    note: n >= 2 ? RUNS_NOTE(n) : ONE_RUN_NOTE,
    metrics,
  };
}
