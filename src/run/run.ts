// One benchmark point: bring a backend's data plane up with the benchmark workload, install its policy set,
// measure its flow, tear down, write the result.
// The result file is written whatever happens, so a run that fails halfway still leaves what it measured
// and why it stopped.
import { join, resolve } from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { benchmarkWorkload } from '../workload/benchmark.js';
import { mergeRounds, planRounds, type RawMetric } from './interleave.js';
import { machineInfo, toolInfo } from '../metrics/machine.js';
import { summarize } from '../stats/summary.js';
import { assessStability } from '../stats/stability.js';
import { NOT_PLACED } from '../probe/placement.js';
import { writeResult } from '../results/io.js';
import { liveRuns } from '../identity/locks.js';
import { InterruptedError } from '../errors.js';
import { METRICS, RESULT_KIND, RESULT_SCHEMA_VERSION, errorRecord, type MetricName, type MetricResult, type RunResult } from '../results/schema.js';
import type { DataPlane, Progress } from '../backends/types.js';

export interface RunOptions {
  runId: string;
  config: RunConfig;
  backend: DataPlane;
  /** Directory this run's result.json goes into. */
  outDir: string;
  scenarioPath?: string;
  sweep?: { id: string; repetition: number };
  /** bench run --repetitions N: this run is repetition `index` (1-based) of `of`. */
  repetition?: { index: number; of: number };
  progress?: Progress;
  signal?: AbortSignal;
  /** Seed for bootstrap resampling (defaults to the run's seed). */
  bootstrapSeed?: number;
  /** Ids of other live runs on this machine (default: the run locks in /run/cni-bench). */
  otherLiveRuns?: () => string[];
}

const lockedRuns = (self: string) => [...liveRuns()].filter((id) => id !== self);

export function runDirFor(config: RunConfig, runId: string): string {
  return resolve(config.out, runId);
}

export async function executeRun(opts: RunOptions): Promise<{ result: RunResult; path: string | null }> {
  const { config, backend, progress } = opts;
  const startedAt = new Date();
  const t0 = performance.now();
  const errors: RunResult['errors'] = [];
  const metrics: RunResult['metrics'] = { connect: null, crr: null, rr: null };
  const timings: RunResult['timings'] = { setupMs: null, policyInstallMs: null, measureMs: null, teardownMs: null, totalMs: 0 };
  let modelState: RunResult['modelState'] = {};
  let stage = 'setup';
  // Interleaved rounds (src/run/interleave.ts): the backend's default unless the config sets them.
  const measureRounds = Math.max(1, Math.min(config.rounds ?? backend.measureRounds ?? 1, config.samples));
  const others = opts.otherLiveRuns ?? (() => lockedRuns(opts.runId));
  // Asked at the start and before the end, so a run that started meanwhile is noticed too.
  const concurrent = new Set(config.dryRun ? [] : others());
  if (concurrent.size) progress?.step(`warning: other cni-bench runs are live on this machine (${[...concurrent].join(', ')}): their load disturbs this run's numbers`);
  // Generated once, here, in the names the backend deploys under; every backend applies it as handed.
  const workload = benchmarkWorkload(config, backend.target);
  const flow = workload.flows.find((f) => f.measured)!;
  try {
    let t = performance.now();
    await backend.up(workload);
    timings.setupMs = performance.now() - t;

    stage = 'policy';
    const installed = await backend.install(workload.policies);
    modelState = installed.modelState;
    timings.policyInstallMs = installed.installMs;

    stage = 'measure';
    t = performance.now();
    const rounds = planRounds(METRICS, { samples: config.samples, warmup: config.warmup, concurrency: config.concurrency, timeoutMs: config.timeoutMs }, measureRounds);
    const parts = new Map<MetricName, RawMetric[]>();
    for (const r of rounds) {
      if (opts.signal?.aborted) throw new InterruptedError();
      if (measureRounds === 1) progress?.step(`measuring ${r.metric} (${config.samples} samples after ${config.warmup} warm-up)`);
      else if (r === rounds[0]) progress?.step(`measuring ${METRICS.join(', ')} interleaved in ${measureRounds} rounds (${config.samples} samples each in all; every round warms up ${r.settings.warmup} first)`);
      else if (r.metric === rounds[(r.round - 1) * METRICS.length]!.metric) progress?.step(`round ${r.round}/${measureRounds}`);
      parts.set(r.metric, [...(parts.get(r.metric) ?? []), await backend.measure(flow, r.metric, r.settings)]);
    }
    for (const metric of METRICS) {
      const m = mergeRounds(parts.get(metric)!);
      metrics[metric] = { ...m, summary: summarize(m.samplesNs, { seed: opts.bootstrapSeed ?? config.seed }), stability: assessStability(m.samplesNs) } as MetricResult;
    }
    timings.measureMs = performance.now() - t;
    if (!config.dryRun) for (const id of others()) concurrent.add(id);
  } catch (e) {
    errors.push(errorRecord(stage, e, { interrupted: opts.signal?.aborted }));
  } finally {
    if (config.keep) {
      try {
        await backend.detach?.();
      } catch (e) {
        errors.push(errorRecord('keep', e));
      }
    } else {
      const t = performance.now();
      try {
        await backend.down();
      } catch (e) {
        errors.push(errorRecord('teardown', e));
      }
      timings.teardownMs = performance.now() - t;
    }
  }
  timings.totalMs = performance.now() - t0;
  const result: RunResult = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    kind: RESULT_KIND,
    runId: opts.runId,
    status: errors.length ? 'failed' : 'ok',
    meta: {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      tool: await toolInfo(),
      machine: machineInfo(),
      backend: backend.name,
      cni: config.cni,
      model: backend.model,
      policy: { count: config.policies, matchPosition: config.matchPosition, seed: config.seed, shape: 'default' },
      topology: backend.topology,
      probe: { tool: backend.probeTool, samples: config.samples, warmup: config.warmup, concurrency: config.concurrency, timeoutMs: config.timeoutMs, pinCpu: backend.cpuPlacement?.cpus?.[0] ?? null, rounds: measureRounds },
      cpuPlacement: backend.cpuPlacement ?? NOT_PLACED,
      scenario: opts.scenarioPath ?? null,
      sweepId: opts.sweep?.id ?? null,
      repetition: opts.sweep?.repetition ?? opts.repetition?.index ?? null,
      repetitions: opts.repetition?.of ?? null,
      concurrentRuns: [...concurrent].sort(),
    },
    policiesEnforced: backend.model.enforcesPolicy,
    modelState,
    timings,
    metrics,
    errors,
  };
  if (config.dryRun) return { result, path: null };
  const path = writeResult(opts.outDir, result);
  return { result, path };
}
