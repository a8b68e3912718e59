// The native probe (dist/native/cb-probe) and the floor reference (dist/native/connect-loop): planners that
// return CommandSpecs, a parser for the client's JSON, and the two ways of running it (the echo server as a
// long-lived child, the client through the Runner). The probe is C because Node's event loop would add more
// to each new-connection sample than the data planes we are comparing.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { z } from 'zod';
import { fullArgv, shellQuote, type CommandResult, type CommandSpec, type Runner } from '../exec/runner.js';
import { BenchError } from '../errors.js';

// This file sits two levels below the package root both as src/probe/native.ts and as dist/probe/native.js.
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PROBE_BIN = join(PACKAGE_ROOT, 'dist', 'native', 'cb-probe');
export const CONNECT_LOOP_BIN = join(PACKAGE_ROOT, 'dist', 'native', 'connect-loop');

export const PROBE_MISSING_HINT =
  `the native probe is not built (expected ${PROBE_BIN} and ${CONNECT_LOOP_BIN}); ` +
  `run 'npm run build' (needs gcc) or 'bash scripts/setup.sh' to install the toolchain and build it`;

export class NativeProbeError extends BenchError {
  constructor(message: string) {
    super('probe', message);
  }
}

export function probeAvailable(): boolean {
  return existsSync(PROBE_BIN) && existsSync(CONNECT_LOOP_BIN);
}

export function assertProbeAvailable(): void {
  if (!probeAvailable()) throw new NativeProbeError(PROBE_MISSING_HINT);
}

// ------------------------------------------------------------------------------------------------ settings

export const probeModes = ['connect', 'crr', 'rr'] as const;
export type ProbeMode = (typeof probeModes)[number];

export const probeSettingsSchema = z.object({
  mode: z.enum(probeModes),
  samples: z.number().int().min(1).max(100_000_000),
  warmup: z.number().int().min(0).max(100_000_000),
  concurrency: z.number().int().min(1).max(1024),
  timeoutMs: z.number().int().min(1).max(3_600_000),
});

export interface ProbeSettings {
  mode: ProbeMode;
  samples: number;
  warmup: number;
  concurrency: number;
  timeoutMs: number;
}

const portSchema = z.number().int().min(1).max(65535);
const cpusSchema = z.array(z.number().int().min(0).max(1023)).min(1).optional();

/** Where a probe process may run. Keep client and server on different CPUs: sharing one adds ~50% to a connect. */
export interface Placement {
  cpus?: number[];
}

const cpuArgs = (cpus: number[] | undefined) => (cpus ?? []).flatMap((c) => ['--cpu', String(c)]);
const ipSchema = z.union([z.ipv4(), z.ipv6()]);

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

function validate<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new NativeProbeError(`${what}: ${formatIssues(r.error)}`);
  return r.data;
}

// ------------------------------------------------------------------------------------------------ planners

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

/** Slack per sample for the client's run-time bound: normal samples take tens of µs, so this only trips on a hang. */
// Generous per-sample bound: Calico's model at 10000 policies takes ~6 ms per connection; 50000 about five times that.
const CLIENT_MS_PER_SAMPLE = 100;
const CLIENT_BASE_TIMEOUT_MS = 30_000;

export function planClient(opts: { netns: string; target: string; port: number } & ProbeSettings & Placement): CommandSpec {
  const s = validate(probeSettingsSchema, opts, 'probe settings');
  validate(cpusSchema, opts.cpus, 'probe client cpus');
  validate(ipSchema, opts.target, 'probe target');
  validate(portSchema, opts.port, 'probe port');
  const perWorker = Math.ceil((s.samples + s.warmup) / s.concurrency);
  return {
    argv: [
      PROBE_BIN, 'client',
      '--target', opts.target,
      '--port', String(opts.port),
      '--mode', s.mode,
      '--samples', String(s.samples),
      '--warmup', String(s.warmup),
      '--concurrency', String(s.concurrency),
      '--timeout-ms', String(s.timeoutMs),
      ...cpuArgs(opts.cpus),
    ],
    netns: opts.netns,
    timeoutMs: CLIENT_BASE_TIMEOUT_MS + perWorker * CLIENT_MS_PER_SAMPLE,
    purpose: `probe ${s.mode} to ${opts.target}:${opts.port}`,
  };
}

/** One reachability attempt (TCP connect, or UDP send + echo); exit 1 means blocked, so failure is data here. */
export function planCheck(opts: { netns: string; target: string; port: number; udp?: boolean; timeoutMs: number }): CommandSpec {
  validate(ipSchema, opts.target, 'check target');
  validate(portSchema, opts.port, 'check port');
  validate(z.number().int().min(1).max(3_600_000), opts.timeoutMs, 'check timeoutMs');
  const argv = [PROBE_BIN, 'check', '--target', opts.target, '--port', String(opts.port)];
  if (opts.udp) argv.push('--udp');
  argv.push('--timeout-ms', String(opts.timeoutMs));
  return {
    argv,
    netns: opts.netns,
    allowFailure: true,
    timeoutMs: opts.timeoutMs + 10_000,
    purpose: `check ${opts.udp ? 'udp' : 'tcp'} ${opts.target}:${opts.port}`,
  };
}

export function planConnectLoop(opts: { netns: string; target: string; port: number; count: number } & Placement): CommandSpec {
  validate(z.ipv4(), opts.target, 'connect-loop target (IPv4 only)');
  validate(portSchema, opts.port, 'connect-loop port');
  validate(z.number().int().min(1), opts.count, 'connect-loop count');
  validate(cpusSchema, opts.cpus, 'connect-loop cpus');
  // The loop stays minimal; placement comes from taskset so it can match the probe's.
  const pin = opts.cpus ? ['taskset', '-c', opts.cpus.join(',')] : [];
  return {
    argv: [...pin, CONNECT_LOOP_BIN, opts.target, String(opts.port), String(opts.count)],
    netns: opts.netns,
    timeoutMs: CLIENT_BASE_TIMEOUT_MS + opts.count * CLIENT_MS_PER_SAMPLE,
    purpose: `reference connect loop to ${opts.target}:${opts.port}`,
  };
}

// ------------------------------------------------------------------------------------------------ parsing

const nonNegInt = z.number().int().nonnegative();
const clientOutputSchema = z.object({
  mode: z.enum(probeModes),
  concurrency: z.number().int().positive().optional(),
  samples_ns: z.array(nonNegInt),
  errors: z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected an errno name'), z.number().int().positive()),
  wall_ns: nonNegInt,
  cpu_user_ns: nonNegInt,
  cpu_sys_ns: nonNegInt,
  started_ns: nonNegInt,
  ended_ns: nonNegInt,
});

export interface ProbeOutput {
  mode: ProbeMode;
  /** Latency of each measured sample, per worker in order, workers concatenated. */
  samplesNs: number[];
  /** Failed samples by errno name (ECONNREFUSED, ETIMEDOUT, EADDRNOTAVAIL…, or EOF when the server hung up). */
  errors: Record<string, number>;
  /** Monotonic duration of the measured window (warmup excluded). */
  wallNs: number;
  /** The probe process's own CPU over the measured window, to separate it from the data plane's. */
  cpuUserNs: number;
  cpuSysNs: number;
  /** CLOCK_MONOTONIC at the window's start and end: the clock of process.hrtime.bigint(). */
  startedNs: number;
  endedNs: number;
}

export function parseClientOutput(stdout: string): ProbeOutput {
  const text = stdout.trim();
  if (text === '') throw new NativeProbeError('cb-probe client printed nothing (expected one JSON object)');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const tail = text.length > 80 ? `…${text.slice(-80)}` : text;
    throw new NativeProbeError(`cb-probe client output is not valid JSON (truncated?): ${(e as Error).message}; ends with: ${tail}`);
  }
  const o = validate(clientOutputSchema, raw, 'cb-probe client output');
  return {
    mode: o.mode,
    samplesNs: o.samples_ns,
    errors: o.errors,
    wallNs: o.wall_ns,
    cpuUserNs: o.cpu_user_ns,
    cpuSysNs: o.cpu_sys_ns,
    startedNs: o.started_ns,
    endedNs: o.ended_ns,
  };
}

export interface CheckOutcome {
  open: boolean;
  /** 'open', or what stopped it: 'refused ECONNREFUSED', 'timeout ETIMEDOUT', 'failed EHOSTUNREACH'… */
  reason: string;
}

export function parseCheckResult(result: CommandResult): CheckOutcome {
  const reason = result.stdout.trim();
  if (result.exitCode === 0 && reason === 'open') return { open: true, reason };
  if (result.exitCode === 1 && reason !== '' && !result.timedOut) return { open: false, reason };
  throw new NativeProbeError(
    `cb-probe check gave no verdict: ${shellQuote(result.argv)} exited ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}` +
      (result.stderr.trim() ? `: ${result.stderr.trim()}` : ''),
  );
}

// ------------------------------------------------------------------------------------------------ running

export async function runClient(runner: Runner, spec: CommandSpec): Promise<ProbeOutput> {
  const result = await runner.run(spec);
  // A dry run measures nothing: say so with an empty result rather than invent numbers.
  if (runner.dryRun) {
    const mode = spec.argv[spec.argv.indexOf('--mode') + 1] as ProbeMode;
    return { mode, samplesNs: [], errors: {}, wallNs: 0, cpuUserNs: 0, cpuSysNs: 0, startedNs: 0, endedNs: 0 };
  }
  try {
    return parseClientOutput(result.stdout);
  } catch (e) {
    throw new NativeProbeError(`${(e as Error).message}\n  command: ${shellQuote(result.argv)}${result.stderr.trim() ? `\n  stderr: ${result.stderr.trim()}` : ''}`);
  }
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

export async function startServer(spec: CommandSpec, opts: StartServerOptions = {}): Promise<RunningServer> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const argv = fullArgv(spec);
  const [file, ...args] = argv as [string, ...string[]];
  // cleanup (execa's default) kills the child when Node exits; cb-probe also sets PR_SET_PDEATHSIG for SIGKILL.
  const child = execa(file, args, {
    stdin: 'ignore',
    reject: false,
    buffer: false,
    cleanup: true,
    forceKillAfterDelay: opts.graceMs ?? 3_000,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = child.then((r) => ({ exitCode: r.exitCode, signal: r.signal }));
  const describe = () => `${spec.purpose ? `${spec.purpose}: ` : ''}${shellQuote(argv)}`;

  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new NativeProbeError(`${describe()} did not print 'ready' within ${readyTimeoutMs} ms${stderr ? `: ${stderr.trim()}` : ''}`));
    }, readyTimeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((r) => {
      clearTimeout(timer);
      const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`;
      reject(new NativeProbeError(`${describe()} ${how} before it was ready${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });

  const pid = child.pid;
  if (pid === undefined) throw new NativeProbeError(`${describe()} has no pid`);
  return {
    pid,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Starts a server that outlives this process (for `--keep`): its own session (no terminal signals reach it),
 * no parent-death signal, output to `logFile`. Resolves with its pid once it is listening.
 */
export async function startDetachedServer(spec: CommandSpec, logFile: string, readyTimeoutMs = 10_000): Promise<number> {
  const [file, ...args] = fullArgv(spec) as [string, ...string[]];
  const fd = openSync(logFile, 'w');
  let child;
  try {
    child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, CB_PROBE_DETACHED: '1' } });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new NativeProbeError(`${spec.purpose ?? 'detached server'}: ${shellQuote(fullArgv(spec))} did not start`);
  let exited: number | string | null = null;
  child.once('exit', (code, sig) => (exited = sig ?? code));
  const deadline = performance.now() + readyTimeoutMs;
  for (;;) {
    const log = readFileSync(logFile, 'utf8');
    if (/^ready$/m.test(log)) return pid;
    if (exited !== null) throw new NativeProbeError(`${shellQuote(fullArgv(spec))} exited (${exited}) before it was ready: ${log.trim()}`);
    if (performance.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new NativeProbeError(`${shellQuote(fullArgv(spec))} did not print 'ready' within ${readyTimeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ------------------------------------------------------------------------------------------------ watch

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
  const argv = fullArgv(spec);
  const [file, ...args] = argv as [string, ...string[]];
  const child = execa(file, args, { stdin: 'ignore', reject: false, cleanup: true, timeout: spec.timeoutMs, forceKillAfterDelay: 2_000 });
  const describe = () => `${spec.purpose ? `${spec.purpose}: ` : ''}${shellQuote(argv)}`;
  const done = child.then((r) => {
    if (r.exitCode !== 0) throw new NativeProbeError(`${describe()} exited ${r.exitCode ?? r.signal}${r.timedOut ? ' (timed out)' : ''}: ${String(r.stderr).trim()}`);
    return parseWatchOutput(String(r.stdout));
  });
  done.catch(() => undefined); // observed by the caller through `done`/`stop()`
  const baseNs = await new Promise<bigint>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new NativeProbeError(`${describe()} did not start probing within ${opts.readyTimeoutMs ?? 10_000} ms`));
    }, opts.readyTimeoutMs ?? 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^watching (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(BigInt(m[1]!));
      }
    });
    done.then(
      () => reject(new NativeProbeError(`${describe()} ended before it started probing`)),
      (e: unknown) => reject(e as Error),
    ).finally(() => clearTimeout(timer));
  });
  return {
    baseNs,
    done,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return done;
    },
  };
}
