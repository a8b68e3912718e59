// Builds the backend a run asked for. The one place that knows every backend class.
import type { BackendName, RunConfig } from '../config/schema.js';
import type { Runner } from '../exec/runner.js';
import type { BenchBackend, Progress } from './types.js';

export interface BackendContext {
  config: RunConfig;
  backend: BackendName;
  runId: string;
  /** Executes (or, in dry-run, records) commands; cancelled by `signal`. */
  runner: Runner;
  /** For teardown after cancellation. */
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  /** The run's results directory (diagnostics go here). */
  outDir: string;
}

export async function createBackend(ctx: BackendContext): Promise<BenchBackend> {
  switch (ctx.backend) {
    case 'local': {
      const { LocalBackend } = await import('./local/backend.js');
      if (!ctx.runner.dryRun) {
        const { assertProbeAvailable } = await import('../probe/native.js');
        assertProbeAvailable();
      }
      return new LocalBackend({ config: ctx.config, runId: ctx.runId, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress });
    }
    case 'kind': {
      const { KindBackend } = await import('./kind/backend.js');
      return new KindBackend({ config: ctx.config, runId: ctx.runId, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress, outDir: ctx.outDir });
    }
    case 'cluster': {
      const { ClusterBackend } = await import('./cluster/backend.js');
      return new ClusterBackend({ config: ctx.config, runId: ctx.runId, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress, outDir: ctx.outDir });
    }
  }
}
