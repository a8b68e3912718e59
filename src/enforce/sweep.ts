// Enforce points in a sweep (issue 15, `measure: enforce`): one point runs `bench enforce` at its CNI and
// policy count, writes enforce-result.json with every probe, and hands the sweep a run result whose metrics
// hold the enforcement times and fail-open windows (one sample per change repetition, ns) — stored like the
// latency metrics, so the report's analysis (per-run points, fits against N) and `bench compare` use them.
import { backendDescriptor } from '../backends/factory.js';
import { join } from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { BenchError } from '../errors.js';
import type { RunResult } from '../results/schema.js';
import { enforceRunResult } from './as-run.js';
import { writeResult } from '../results/io.js';
import type { Progress } from '../backends/types.js';

export { ENFORCE_METRIC_OF, enforceRunResult } from './as-run.js';

/** Runs one enforce point (its data plane built by the backend's descriptor) and writes both files into outDir. */
export async function runEnforcePoint(args: { config: RunConfig; runId: string; outDir: string; sweep: { id: string; repetition: number }; scenarioPath?: string; signal?: AbortSignal; progress: Progress }): Promise<{ result: RunResult }> {
  const [{ ExecRunner }, { createBackend }, { executeEnforce, enforceConfigOf }] = await Promise.all([import('../exec/runner.js'), import('../backends/factory.js'), import('./run.js')]);
  const { config } = args;
  if (backendDescriptor(config.backend)?.onKubernetes) throw new BenchError('usage', `enforce points run on the local backend only so far, not ${config.backend}`);
  const plane = await createBackend({ config, backend: 'local', runId: args.runId, shape: 'enforce', runner: new ExecRunner(args.signal), signal: args.signal, progress: args.progress, outDir: args.outDir });
  const { result } = await executeEnforce({
    runId: args.runId,
    backend: 'local',
    plane,
    outDir: args.outDir,
    progress: args.progress,
    signal: args.signal,
    sweepId: args.sweep.id,
    config: enforceConfigOf(config),
  });
  const run = enforceRunResult(result, args);
  writeResult(args.outDir, run);
  return { result: run };
}

export const enforceResultPath = (outDir: string) => join(outDir, 'enforce-result.json');
