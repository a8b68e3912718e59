// One benchmark point: bring a backend's data plane up with the benchmark workload, install its policy set,
// measure its flow, tear down, write the result.
// The result file is written whatever happens, so a run that fails halfway still leaves what it measured
// and why it stopped.
import { join, resolve } from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { benchmarkWorkload } from '../workload/benchmark.js';
import { machineInfo, toolInfo } from '../metrics/machine.js';
import { NOT_PLACED } from '../probe/placement.js';
import { writeResult } from '../results/io.js';
import { liveRuns } from '../identity/locks.js';
import { METRICS, RESULT_KIND, RESULT_SCHEMA_VERSION, errorRecord, type RunResult } from '../results/schema.js';
import type { DataPlane, Progress } from '../backends/types.js';
import type { Flow, Workload } from '../workload/workload.js';
import type { FlowResult, MeasureSettingsLike } from './run-flows.js';
import { measureFlows, worstFlow } from './run-flows.js';

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
  /** bench run --workload: a replayed cluster and its chosen flows, measured instead of the benchmark's one flow. */
  cluster?: RunCluster;
}

/** A cluster-shaped workload as bench run measures it (src/workload/replay.ts built it). */
export interface RunCluster {
  name: string;
  file: string;
  workload: Workload;
  /** The workload's flows with why each was chosen, its rules in path and its verdict, in workload.flows order. */
  flows: Array<Flow & { reason: string; rules: number; allowed: boolean }>;
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
  let services: RunResult['services'] = null;
  let stage = 'setup';
  // Interleaved rounds (src/run/interleave.ts): the backend's default unless the config sets them.
  const measureRounds = Math.max(1, Math.min(config.rounds ?? backend.measureRounds ?? 1, config.samples));
  if (config.sampleBudgetMs !== undefined && measureRounds === 1) progress?.step('warning: the sample budget (--sample-budget-ms) is set from the first of several rounds; with one round every sample is taken');
  const others = opts.otherLiveRuns ?? (() => lockedRuns(opts.runId));
  // Asked at the start and before the end, so a run that started meanwhile is noticed too.
  const concurrent = new Set(config.dryRun ? [] : others());
  if (concurrent.size) progress?.step(`warning: other cni-bench runs are live on this machine (${[...concurrent].join(', ')}): their load disturbs this run's numbers`);
  // Generated once, here, in the names the backend deploys under; every backend applies it as handed.
  const workload = opts.cluster?.workload ?? benchmarkWorkload(config, backend.target);
  const measured = opts.cluster ? opts.cluster.flows : [{ ...workload.flows.find((f) => f.measured)!, reason: 'benchmark', rules: 0, allowed: true }];
  let flows: FlowResult[] | undefined;
  try {
    let t = performance.now();
    await backend.up(workload);
    timings.setupMs = performance.now() - t;

    stage = 'policy';
    const installed = await backend.install(workload.policies);
    modelState = installed.modelState;
    services = installed.services ?? null;
    timings.policyInstallMs = installed.installMs;

    stage = 'measure';
    t = performance.now();
    const settings: MeasureSettingsLike = { samples: config.samples, warmup: config.warmup, concurrency: config.concurrency, timeoutMs: config.timeoutMs, seed: opts.bootstrapSeed ?? config.seed, ...(config.sampleBudgetMs === undefined ? {} : { sampleBudgetMs: config.sampleBudgetMs }), ...(config.metrics ? { metrics: config.metrics } : {}) };
    const results = await measureFlows(backend, measured, settings, measureRounds, { progress, signal: opts.signal });
    if (opts.cluster) flows = results.map(({ metricMs: _, ...f }) => f);
    Object.assign(metrics, (opts.cluster ? worstFlow(results) : results[0]!).metrics);
    // Every flow's time per metric: what a sweep's estimate of time left and the replay (scripts/adaptive-replay.mjs) read.
    timings.metricMs = {};
    for (const f of results) for (const [k, v] of Object.entries(f.metricMs) as Array<[keyof typeof f.metricMs, number]>) timings.metricMs[k] = (timings.metricMs[k] ?? 0) + v;
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
      policy: opts.cluster ? { count: workload.policies.policies.length, matchPosition: config.matchPosition, seed: config.seed, shape: `workload:${opts.cluster.name}` } : { count: config.policies, matchPosition: config.matchPosition, seed: config.seed, shape: 'default' },
      topology: backend.topology,
      probe: { tool: backend.probeTool, samples: config.samples, warmup: config.warmup, concurrency: config.concurrency, timeoutMs: config.timeoutMs, pinCpu: backend.cpuPlacement?.cpus?.[0] ?? null, rounds: measureRounds, ...(config.sampleBudgetMs === undefined ? {} : { sampleBudgetMs: config.sampleBudgetMs }), ...(config.metrics ? { metrics: METRICS.filter((m) => config.metrics!.includes(m)) } : {}) },
      cpuPlacement: backend.cpuPlacement ?? NOT_PLACED,
      scenario: opts.scenarioPath ?? null,
      sweepId: opts.sweep?.id ?? null,
      repetition: opts.sweep?.repetition ?? opts.repetition?.index ?? null,
      repetitions: opts.repetition?.of ?? null,
      concurrentRuns: [...concurrent].sort(),
      ...(opts.cluster ? { workload: { name: opts.cluster.name, file: opts.cluster.file, nodes: workload.nodes, pods: workload.pods.length, endpoints: workload.pods.filter((p) => p.presence === 'endpoint').length, policies: workload.policies.policies.length } } : {}),
    },
    policiesEnforced: backend.model.enforcesPolicy,
    modelState,
    ...(services ? { services } : {}),
    timings,
    metrics,
    errors,
    ...(flows ? { flows } : {}),
  };
  if (config.dryRun) return { result, path: null };
  const path = writeResult(opts.outDir, result);
  return { result, path };
}
