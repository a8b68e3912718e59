// The probe's echo server (cb-probe server): planned as a CommandSpec, run as a long-lived process through
// startCommand (src/exec/start.ts), either as a child of this process or, for --keep, detached from it.
import { z } from 'zod';
import type { CommandSpec } from '../exec/runner.js';
import { StartError, startCommand } from '../exec/start.js';
import { NativeProbeError, PROBE_BIN, cpuArgs, cpusSchema, ipSchema, portSchema, validate, type Placement } from './spec.js';

/** `batch`: run the server SCHED_BATCH (it never preempts the client on wake-up; see cb-probe.c). */
export function planServer(opts: { netns: string; ports: number[]; udp?: boolean; bind?: string; batch?: boolean } & Placement): CommandSpec {
  validate(z.array(portSchema).min(1).max(1024), opts.ports, 'probe server ports');
  validate(cpusSchema, opts.cpus, 'probe server cpus');
  if (opts.bind !== undefined) validate(ipSchema, opts.bind, 'probe server bind address');
  const argv = [PROBE_BIN, 'server', ...opts.ports.flatMap((p) => ['--port', String(p)])];
  if (opts.bind !== undefined) argv.push('--bind', opts.bind);
  if (opts.udp) argv.push('--udp');
  argv.push(...cpuArgs(opts.cpus));
  if (opts.batch) argv.push('--batch');
  return { argv, netns: opts.netns, purpose: `echo server on port${opts.ports.length > 1 ? 's' : ''} ${opts.ports.join(',')}` };
}

export interface RunningServer {
  readonly pid: number;
  /** Settles when the server exits, for whatever reason; lets callers notice a server that died mid-run. */
  readonly exited: Promise<{ exitCode?: number; signal?: string }>;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  stop(): Promise<void>;
}

export interface StartServerOptions {
  /** How long to wait for the server to print `ready`. */
  readyTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL on stop(). */
  graceMs?: number;
}

const asProbeError = (e: unknown) => (e instanceof StartError ? new NativeProbeError(e.message) : e);

export async function startServer(spec: CommandSpec, opts: StartServerOptions = {}): Promise<RunningServer> {
  const running = await startCommand(spec, { readyLine: /^ready$/m, readyTimeoutMs: opts.readyTimeoutMs ?? 10_000, graceMs: opts.graceMs ?? 3_000 }).catch((e: unknown) => {
    throw asProbeError(e);
  });
  return {
    pid: running.pid,
    exited: running.exited.then((r) => (r.exitCode > 128 ? { signal: `signal ${r.exitCode - 128}` } : { exitCode: r.exitCode })),
    async stop() {
      await running.stop();
    },
  };
}

/**
 * Starts a server that outlives this process (for `--keep`): its own session (no terminal signals reach it),
 * no parent-death signal, output to `logFile`. Resolves with its pid once it is listening.
 */
export async function startDetachedServer(spec: CommandSpec, logFile: string, readyTimeoutMs = 10_000): Promise<number> {
  const running = await startCommand(spec, { readyLine: /^ready$/m, readyTimeoutMs, detachedLog: logFile }).catch((e: unknown) => {
    throw asProbeError(e);
  });
  return running.pid;
}
