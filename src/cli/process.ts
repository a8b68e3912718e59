// What every long-running command shares with the process around it: Ctrl-C handling, step output, and the
// look for Docker/kind that `--backend auto` needs.
import type { Environment } from '../backends/registry.js';
import { InterruptedError } from '../errors.js';

export interface Interrupt {
  signal: AbortSignal;
  /** Stops listening (tests call commands in-process, many times). */
  dispose(): void;
}

/** Signals that end a run: Ctrl-C, `kill`, and SIGHUP (the terminal or the ssh session closed). */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * The first stop signal aborts the work so its finally-blocks tear down; a second SIGINT or SIGTERM exits at
 * once and says how to clean up (gc of its own runs). SIGHUP never forces an exit: a closing terminal may send it along with other
 * signals, and nobody is there to press again. After SIGHUP the terminal is gone, so writes to it must not
 * throw (EIO/EPIPE) in the middle of the teardown.
 */
export function onInterrupt(what: string, write: (s: string) => void = (s) => void process.stderr.write(s), runIds: () => readonly string[] = () => []): Interrupt {
  const ctl = new AbortController();
  let first: NodeJS.Signals | undefined;
  const safeWrite = (s: string) => {
    try {
      write(s);
    } catch {
      /* the terminal is gone */
    }
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGHUP') {
      for (const stream of [process.stdout, process.stderr]) if (stream.listenerCount('error') === 0) stream.on('error', () => undefined);
    }
    if (first !== undefined) {
      if (sig === 'SIGHUP' || first === 'SIGHUP') return;
      safeWrite(`\n${sig} again: exiting without finishing cleanup; ${gcHint(runIds())}\n`);
      process.exit(130);
    }
    first = sig;
    safeWrite(`\n${sig}: ${what}${sig === 'SIGHUP' ? '' : ' (press again to exit at once)'}\n`);
    ctl.abort(new InterruptedError(`interrupted by ${sig}`));
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  return {
    signal: ctl.signal,
    dispose() {
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
    },
  };
}

/**
 * A closed output (`bench run … | head`, a pager quit, a log collector gone) is not a reason to lose the run: the
 * write error (EPIPE) would otherwise be an unhandled 'error' event that kills the process before its teardown and
 * its result file. Once a stream fails it is left alone: nothing more is written to it, the run goes on.
 */
export function keepRunningOnClosedOutput(streams: readonly NodeJS.WritableStream[] = [process.stdout, process.stderr]): void {
  type Write = (...args: unknown[]) => boolean;
  for (const stream of streams) {
    let closed = false;
    const write = stream.write.bind(stream) as Write;
    stream.on('error', () => {
      closed = true;
    });
    (stream as unknown as { write: Write }).write = (...args: unknown[]) => {
      if (closed) {
        const cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      }
      return write(...args);
    };
  }
}

/** How to remove what a forced exit leaves: gc of these runs only (plain `bench gc` would judge everyone's runs). */
export function gcHint(ids: readonly string[]): string {
  if (ids.length === 0) return "remove its leftovers with 'bench gc --run <run id>' (the id is in the first progress line)";
  return `remove its leftovers with ${ids.map((id) => `'bench gc --run ${id}'`).join(' and ')}`;
}

/** What run and enforce say when other runs shared the machine (their result records it as meta.concurrentRuns). */
export function concurrentRunsWarning(others: readonly string[]): string {
  return `warning: other cni-bench runs were live on this machine during this run (${others.join(', ')}); their load disturbs these numbers (recorded in the result as meta.concurrentRuns)`;
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
