// What every long-running command shares with the process around it: Ctrl-C handling, step output, and the
// look for Docker/kind that `--backend auto` needs.
import type { Environment } from '../backends/registry.js';

export interface Interrupt {
  signal: AbortSignal;
  /** Stops listening (tests call commands in-process, many times). */
  dispose(): void;
}

/**
 * First Ctrl-C/SIGTERM aborts the work so its finally-blocks tear down; a second exits at once and says how to
 * clean up.
 */
export function onInterrupt(what: string, write: (s: string) => void = (s) => void process.stderr.write(s)): Interrupt {
  const ctl = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++count > 1) {
      write(`\n${sig} again: exiting without finishing cleanup; run 'bench gc' to remove leftovers\n`);
      process.exit(130);
    }
    write(`\n${sig}: ${what} (press again to exit at once)\n`);
    ctl.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ctl.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** `[  12.3s] message` lines on stderr. */
export function stepPrinter(enabled: boolean, write: (s: string) => void = (s) => void process.stderr.write(s)) {
  const t0 = performance.now();
  return {
    step(message: string) {
      if (enabled) write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);
    },
  };
}

/** Is a Docker engine (not just the client) answering, and is kind installed? */
export async function detectEnvironment(): Promise<Environment> {
  const { ExecRunner } = await import('../exec/runner.js');
  const runner = new ExecRunner();
  const ok = async (argv: string[]) => (await runner.run({ argv, allowFailure: true, timeoutMs: 5_000 }).catch(() => ({ exitCode: 1 }))).exitCode === 0;
  const [dockerEngine, kind] = await Promise.all([ok(['docker', 'info', '--format', '{{.ServerVersion}}']), ok(['kind', 'version'])]);
  return { dockerEngine, kind };
}
