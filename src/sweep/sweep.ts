// Runs a sweep's points one after another: each point is an ordinary run (createBackend + executeRun) writing
// <sweep>/<cni>-<policies>-r<rep>/result.json; the manifest is rewritten after every state change. A failed point
// is recorded and the sweep goes on; an abort stops after the current point has been torn down.
import { join } from 'node:path';
import type { RunConfig } from '../config/schema.js';
import type { Progress } from '../backends/types.js';
import { errorRecord, type ErrorRecord, type RunResult } from '../results/schema.js';
import { pointConfig, pointsToRun, writeManifest, type SweepManifest, type SweepPoint } from './manifest.js';

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
  signal?: AbortSignal;
  progress: Progress;
}
export type PointRunner = (args: PointArgs) => Promise<PointOutcome>;

export interface SweepProgress extends Progress {
  pointStarted(point: SweepPoint, index: number, total: number, etaMs: number | null): void;
  pointFinished(point: SweepPoint, index: number, total: number, result: RunResult | null): void;
}

export interface SweepRunOptions {
  dir: string;
  manifest: SweepManifest;
  runPoint: PointRunner;
  newRunId: () => string;
  signal?: AbortSignal;
  progress?: SweepProgress;
  retryFailed?: boolean;
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
  const todo = pointsToRun(m, dir, { retryFailed: opts.retryFailed });
  m.status = 'running';
  writeManifest(dir, m);
  const noop: Progress = { step: () => undefined };
  for (let i = 0; i < todo.length; i++) {
    if (opts.signal?.aborted) break;
    const point = todo[i]!;
    const runId = opts.newRunId();
    Object.assign(point, { status: 'running', runId, resultPath: null, startedAt: new Date().toISOString(), finishedAt: null, wallMs: null, error: null });
    writeManifest(dir, m);
    progress?.pointStarted(point, i, todo.length, estimateRemainingMs(m, todo.length - i));
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
    });
    writeManifest(dir, m);
    progress?.pointFinished(point, i, todo.length, outcome.result);
  }
  m.status = pointsToRun(m, dir, { retryFailed: false }).length === 0 ? 'complete' : 'interrupted';
  writeManifest(dir, m);
  return m;
}

/** The real point runner: the backend factory and executeRun, exactly as `bench run` uses them. */
export const localPointRunner: PointRunner = async ({ config, runId, outDir, sweep, scenarioPath, signal, progress }) => {
  // `measure: enforce` (issue 15): the point is a `bench enforce` run; its metrics are enforcement times.
  if (config.measure === 'enforce') return (await import('../enforce/sweep.js')).runEnforcePoint({ config, runId, outDir, sweep, scenarioPath, signal, progress });
  const [{ createBackend }, { resolvedBackend }, { executeRun }, { ExecRunner }] = await Promise.all([import('../backends/factory.js'), import('../backends/registry.js'), import('../run/run.js'), import('../exec/runner.js')]);
  const backend = await createBackend({ config, backend: resolvedBackend(config.backend), runId, runner: new ExecRunner(signal), signal, progress, outDir });
  const { result } = await executeRun({ runId, config, backend, outDir, sweep, scenarioPath, progress, signal });
  return { result };
};
