// Runs a sweep's points one after another: each point is an ordinary run (createBackend + executeRun) writing
// <sweep>/<cni>-<policies>-r<rep>/result.json; the manifest is rewritten after every state change. A failed point
// is recorded and the sweep goes on; an abort stops after the current point has been torn down.
import { join } from 'node:path';
import type { RunConfig } from '../config/schema.js';
import type { Progress } from '../backends/types.js';
import { errorRecord, type ErrorRecord, type RunResult } from '../results/schema.js';
import { applyLook, lookDue, pointsLeft, reviewLook } from './adaptive.js';
import { timeLeftMs } from './estimate.js';
import { pointConfig, pointsToRun, verifiesToRun, writeManifest, type SweepLook, type SweepManifest, type SweepPoint } from './manifest.js';
import type { SweepWorkload } from './plan.js';
import { localVerifyRunner, runVerifySteps, type VerifyProgress, type VerifyRunner } from './verify-step.js';

export interface PointOutcome {
  result: RunResult | null;
  /** Set when the point could not even start (backend creation failed). */
  error?: ErrorRecord;
}

/** Runs one point; the default builds a backend and calls executeRun. Tests pass their own. */
export interface PointArgs {
  point: SweepPoint;
  config: RunConfig;
  runId: string;
  outDir: string;
  sweep: { id: string; repetition: number };
  scenarioPath?: string;
  /** A workload sweep: how the point's flows are chosen (the file is config.workload). */
  workload?: SweepWorkload;
  signal?: AbortSignal;
  progress: Progress;
}
export type PointRunner = (args: PointArgs) => Promise<PointOutcome>;

/** What is left when a point starts: points planned, and the most later looks of an adaptive sweep may add. */
export interface Left {
  planned: number;
  atMost: number;
  /** The planned points' estimated wall time (src/sweep/estimate.ts; null until a point has finished). */
  etaMs: number | null;
  /** The same for atMost. */
  etaMaxMs: number | null;
}

export interface SweepProgress extends VerifyProgress {
  pointStarted(point: SweepPoint, index: number, total: number, left: Left): void;
  pointFinished(point: SweepPoint, index: number, total: number, result: RunResult | null): void;
  /** An adaptive sweep judged its verdicts and planned the next batch (or none). */
  looked?(look: SweepLook, index: number, m: SweepManifest): void;
}

export interface SweepRunOptions {
  dir: string;
  manifest: SweepManifest;
  runPoint: PointRunner;
  newRunId: () => string;
  signal?: AbortSignal;
  progress?: SweepProgress;
  retryFailed?: boolean;
  /** A workload sweep's verify runs (default: the local backend's, src/sweep/verify-step.ts). */
  runVerify?: VerifyRunner;
}

/** Mean wall time of finished points × points left; null until one point has finished. */
export function estimateRemainingMs(m: SweepManifest, remaining: number): number | null {
  const walls = m.points.filter((p) => (p.status === 'ok' || p.status === 'failed') && p.wallMs !== null).map((p) => p.wallMs!);
  if (walls.length === 0) return null;
  return (walls.reduce((a, b) => a + b, 0) / walls.length) * remaining;
}

function classify(outcome: PointOutcome, aborted: boolean): Pick<SweepPoint, 'status' | 'error'> {
  if (outcome.error) return { status: aborted ? 'interrupted' : 'failed', error: outcome.error };
  const r = outcome.result!;
  if (r.status === 'ok') return { status: 'ok', error: null };
  const interrupted = aborted || r.errors.some((e) => e.stage === 'interrupted');
  const first = r.errors.find((e) => e.stage !== 'teardown') ?? r.errors[0] ?? { stage: 'unknown', message: 'failed without an error message' };
  return { status: interrupted ? 'interrupted' : 'failed', error: first };
}

export async function runSweep(opts: SweepRunOptions): Promise<SweepManifest> {
  const { dir, manifest: m, progress } = opts;
  m.status = 'running';
  writeManifest(dir, m);
  let done = 0;
  for (let first = true; ; first = false) {
    const todo = pointsToRun(m, dir, { retryFailed: first && opts.retryFailed });
    done += await runPoints(opts, todo, done);
    if (opts.signal?.aborted || pointsToRun(m, dir).length > 0 || !lookDue(m)) break;
    // Every planned point has run: an adaptive sweep judges its verdicts and plans the next batch, if any.
    const outcome = reviewLook(m, dir);
    applyLook(m, outcome);
    writeManifest(dir, m);
    progress?.looked?.(outcome.look, m.looks!.length - 1, m);
  }
  // A workload sweep: each data plane's verify run, once its points are measured (resume runs those not yet ok).
  if (m.verify && !opts.signal?.aborted && pointsToRun(m, dir).length === 0) {
    await runVerifySteps({ dir, manifest: m, runVerify: opts.runVerify ?? localVerifyRunner, newRunId: opts.newRunId, signal: opts.signal, progress: progress ?? { step: () => undefined }, retryFailed: opts.retryFailed });
  }
  const finished = pointsToRun(m, dir, { retryFailed: false }).length === 0 && !lookDue(m) && verifiesToRun(m, dir).length === 0;
  m.status = finished ? 'complete' : 'interrupted';
  writeManifest(dir, m);
  return m;
}

/** Runs the given points in order; returns how many ran. `before`: points run earlier in this process (progress numbering). */
async function runPoints(opts: SweepRunOptions, todo: SweepPoint[], before: number): Promise<number> {
  const { dir, manifest: m, progress } = opts;
  const noop: Progress = { step: () => undefined };
  let ran = 0;
  for (let i = 0; i < todo.length; i++) {
    if (opts.signal?.aborted) break;
    const point = todo[i]!;
    const runId = opts.newRunId();
    Object.assign(point, { status: 'running', runId, resultPath: null, startedAt: new Date().toISOString(), finishedAt: null, wallMs: null, metricMs: undefined, error: null });
    writeManifest(dir, m);
    const { later, ...left } = pointsLeft(m, todo.length - i);
    progress?.pointStarted(point, before + i, before + todo.length, { ...left, ...timeLeftMs(m, todo.slice(i), later) });
    const t0 = performance.now();
    const outDir = join(dir, point.key);
    let outcome: PointOutcome;
    try {
      outcome = await opts.runPoint({
        point,
        config: pointConfig(m, point, dir),
        runId,
        outDir,
        sweep: { id: m.id, repetition: point.repetition },
        scenarioPath: m.scenario ?? undefined,
        ...(m.matrix.workload ? { workload: m.matrix.workload } : {}),
        signal: opts.signal,
        progress: progress ?? noop,
      });
    } catch (e) {
      outcome = { result: null, error: errorRecord('setup', e) };
    }
    Object.assign(point, classify(outcome, Boolean(opts.signal?.aborted)), {
      resultPath: outcome.result ? `${point.key}/result.json` : null,
      finishedAt: new Date().toISOString(),
      wallMs: performance.now() - t0,
      ...(outcome.result?.timings.metricMs ? { metricMs: outcome.result.timings.metricMs } : {}),
    });
    writeManifest(dir, m);
    ran++;
    progress?.pointFinished(point, before + i, before + todo.length, outcome.result);
  }
  return ran;
}

/** The real point runner: the backend factory and executeRun, exactly as `bench run` uses them. */
export const localPointRunner: PointRunner = async ({ config, runId, outDir, sweep, scenarioPath, workload, signal, progress }) => {
  // `measure: enforce` (issue 15): the point is a `bench enforce` run; its metrics are enforcement times.
  if (config.measure === 'enforce') return (await import('../enforce/sweep.js')).runEnforcePoint({ config, runId, outDir, sweep, scenarioPath, signal, progress });
  const [{ createBackend }, { resolvedBackend }, { executeRun }, { ExecRunner }] = await Promise.all([import('../backends/factory.js'), import('../backends/registry.js'), import('../run/run.js'), import('../exec/runner.js')]);
  // A workload point: the flows chosen for this data plane, exactly as bench run --workload chooses them.
  const cluster = config.workload === undefined ? undefined : (await (await import('../run/prepare-cluster.js')).prepareRunCluster(config, { flow: workload?.flow, flows: workload?.flows === undefined ? undefined : String(workload.flows) })).cluster;
  const backend = await createBackend({ config, backend: resolvedBackend(config.backend), runId, runner: new ExecRunner(signal), signal, progress, outDir, ...(cluster ? { shape: 'cluster' as const } : {}) });
  const { result } = await executeRun({ runId, config, backend, outDir, sweep, scenarioPath, progress, signal, cluster });
  return { result };
};
