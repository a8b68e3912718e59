// Time to enforcement (issue 15): cb-probe watch starts a connect every interval until a verdict settles; planned
// here, parsed here, and run as a long-lived process through startCommand (src/exec/start.ts).
import { z } from 'zod';
import type { CommandSpec } from '../exec/runner.js';
import { StartError, startCommand } from '../exec/start.js';
import { NativeProbeError, PROBE_BIN, cpuArgs, cpusSchema, ipSchema, nonNegInt, portSchema, validate, type Placement } from './spec.js';

/** Watch mode (issue 15): a connect every `intervalUs`, each with its own timeout, until a verdict settles. */
export interface WatchSettings {
  intervalUs: number;
  timeoutMs: number;
  /** Longest the watch probes, ms (a change that never takes effect ends here, never hangs). */
  maxMs: number;
  /** Stop once `settle` consecutive probes (in start order) have this verdict; absent: run until maxMs or stop(). */
  until?: 'open' | 'closed';
  settle?: number;
  /** SCHED_FIFO for the watch (needs root; falls back silently and reports it). */
  realtime?: boolean;
}

const watchSettingsSchema = z.object({
  intervalUs: z.number().int().min(50).max(1_000_000),
  timeoutMs: z.number().int().min(1).max(60_000),
  maxMs: z.number().int().min(1).max(3_600_000),
  until: z.enum(['open', 'closed']).optional(),
  settle: z.number().int().min(1).max(100_000).optional(),
  realtime: z.boolean().optional(),
});

export function planWatch(opts: { netns: string; target: string; port: number } & WatchSettings & Placement): CommandSpec {
  const s = validate(watchSettingsSchema, opts, 'watch settings');
  const argv = watchArgv(PROBE_BIN, opts);
  return { argv, netns: opts.netns, timeoutMs: s.maxMs + s.timeoutMs + 10_000, purpose: `watch ${opts.target}:${opts.port} every ${s.intervalUs} µs` };
}

/**
 * The watch's argv for the probe at `bin` (validated). `controlStdin`: marks and stop come on stdin (kind/cluster,
 * behind `kubectl exec -i`, where signals do not reach the probe).
 */
export function watchArgv(bin: string, opts: { target: string; port: number; controlStdin?: boolean } & WatchSettings & Placement): string[] {
  const s = validate(watchSettingsSchema, opts, 'watch settings');
  validate(ipSchema, opts.target, 'watch target');
  validate(portSchema, opts.port, 'watch port');
  validate(cpusSchema, opts.cpus, 'watch cpus');
  const argv = [
    bin, 'watch',
    '--target', opts.target,
    '--port', String(opts.port),
    '--interval-us', String(s.intervalUs),
    '--timeout-ms', String(s.timeoutMs),
    '--max-ms', String(s.maxMs),
  ];
  if (s.until) argv.push('--until', s.until, '--settle', String(s.settle ?? 5));
  if (s.realtime) argv.push('--realtime');
  if (opts.controlStdin) argv.push('--control-stdin');
  argv.push(...cpuArgs(opts.cpus));
  return argv;
}

const watchOutputSchema = z.object({
  mode: z.literal('watch'),
  base_ns: z.string().regex(/^\d+$/),
  interval_ns: nonNegInt,
  timeout_ns: nonNegInt,
  settled_index: z.number().int().min(-1),
  realtime: z.boolean(),
  start_ns: z.array(nonNegInt),
  end_ns: z.array(nonNegInt),
  result: z.array(z.string().regex(/^(open|[A-Z][A-Z0-9_]*)$/)),
  marks_ns: z.array(nonNegInt).optional(),
});

export interface WatchOutput {
  /** CLOCK_MONOTONIC of the watch's start (the clock of process.hrtime.bigint()); probe times are offsets from it. */
  baseNs: bigint;
  intervalNs: number;
  timeoutNs: number;
  /** Index of the first probe of the settled run, -1 if the watch ended without settling. */
  settledIndex: number;
  /** Whether the watch ran SCHED_FIFO. */
  realtime: boolean;
  startNs: number[];
  endNs: number[];
  /** 'open' or the errno name that ended the connect (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH…). */
  result: string[];
  /** --control-stdin: when each "mark" line was read, ns after baseNs. */
  marksNs?: number[];
  /** kind/cluster: how the pod's clock was put on this machine's (src/enforce/k8s-clock.ts); baseNs is then on it. */
  clock?: { method: 'shared' | 'offset'; offsetNs: number; boundNs: number; rttNs: number; samples: number; note: string };
}

export function parseWatchOutput(stdout: string): WatchOutput {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new NativeProbeError('cb-probe watch printed no JSON result');
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new NativeProbeError(`cb-probe watch output is not valid JSON (truncated?): ${(e as Error).message}`);
  }
  const o = validate(watchOutputSchema, raw, 'cb-probe watch output');
  if (o.end_ns.length !== o.start_ns.length || o.result.length !== o.start_ns.length) {
    throw new NativeProbeError(`cb-probe watch output: ${o.start_ns.length} starts, ${o.end_ns.length} ends, ${o.result.length} results`);
  }
  return { baseNs: BigInt(o.base_ns), intervalNs: o.interval_ns, timeoutNs: o.timeout_ns, settledIndex: o.settled_index, realtime: o.realtime, startNs: o.start_ns, endNs: o.end_ns, result: o.result, ...(o.marks_ns ? { marksNs: o.marks_ns } : {}) };
}

export interface RunningWatch {
  /** CLOCK_MONOTONIC when probing began. */
  readonly baseNs: bigint;
  /** Settles with every probe's outcome when the watch ends (settled, maxMs, or stop()). */
  readonly done: Promise<WatchOutput>;
  /** Stop launching; the probes in flight finish (at most the timeout) and `done` resolves. */
  stop(): Promise<WatchOutput>;
}

/** Starts a watch as a child process and resolves once it is probing (its first line, `watching <ns>`). */
export async function startWatch(spec: CommandSpec, opts: { readyTimeoutMs?: number } = {}): Promise<RunningWatch> {
  const running = await startCommand(spec, { readyLine: /^watching (\d+)$/m, readyTimeoutMs: opts.readyTimeoutMs ?? 10_000, keepStdout: true, graceMs: 2_000 }).catch((e: unknown) => {
    throw e instanceof StartError ? new NativeProbeError(e.message) : e;
  });
  const describe = () => `${spec.purpose ? `${spec.purpose}: ` : ''}${running.argv.join(' ')}`;
  const done = running.exited.then((r) => {
    if (r.exitCode !== 0) throw new NativeProbeError(`${describe()} exited ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.trim()}`);
    return parseWatchOutput(r.stdout);
  });
  done.catch(() => undefined); // observed by the caller through `done`/`stop()`
  return {
    baseNs: BigInt(running.ready![1]!),
    done,
    async stop() {
      await running.stop();
      return done;
    },
  };
}
