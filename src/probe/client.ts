// The probe's load generator (cb-probe client) and the floor reference (connect-loop): planners that return
// CommandSpecs, the parser of the client's JSON, and running it through the Runner.
import { z } from 'zod';
import { shellQuote, type CommandSpec, type Runner } from '../exec/runner.js';
import { CONNECT_LOOP_BIN, NativeProbeError, PROBE_BIN, cpuArgs, cpusSchema, ipSchema, nonNegInt, parseJsonOutput, portSchema, validate, type Placement } from './spec.js';

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

/** What the client measures beside the latencies (issue 20); see src/probe/native/account.c. */
export interface ClientAccounting {
  /**
   * Processes whose CPU time the client reads at its window's edges: the echo server first (the client lets it go idle
   * at each edge, so its backlog is counted in its window), then ksoftirqd of the pinned CPU.
   */
  accountPids?: number[];
  /** BPF programs whose run time is counted over the window (the client holds BPF_ENABLE_STATS meanwhile). */
  bpfProgIds?: number[];
  /** The machine's reference: the same operation over the client pod's loopback, after the window. */
  reference?: { samples: number; warmup: number; batchServer: boolean };
}

const accountingSchema = z.object({
  accountPids: z.array(z.number().int().min(1)).max(16).optional(),
  bpfProgIds: z.array(z.number().int().min(1).max(0xffffffff)).max(256).optional(),
  reference: z.object({ samples: z.number().int().min(0).max(10_000_000), warmup: z.number().int().min(0).max(10_000_000), batchServer: z.boolean() }).optional(),
});

// Generous per-sample bound: Calico's model at 10000 policies takes ~6 ms per connection; 50000 about five times
// that. Normal samples take tens of µs, so this only trips on a hang.
const CLIENT_MS_PER_SAMPLE = 100;
const CLIENT_BASE_TIMEOUT_MS = 30_000;

export function planClient(opts: { netns: string; target: string; port: number } & ProbeSettings & Placement & ClientAccounting): CommandSpec {
  const s = validate(probeSettingsSchema, opts, 'probe settings');
  const a = validate(accountingSchema, { accountPids: opts.accountPids, bpfProgIds: opts.bpfProgIds, reference: opts.reference }, 'probe accounting');
  validate(cpusSchema, opts.cpus, 'probe client cpus');
  validate(ipSchema, opts.target, 'probe target');
  validate(portSchema, opts.port, 'probe port');
  const perWorker = Math.ceil((s.samples + s.warmup) / s.concurrency) + (a.reference ? a.reference.samples + a.reference.warmup : 0);
  const argv = [
    PROBE_BIN, 'client',
    '--target', opts.target,
    '--port', String(opts.port),
    '--mode', s.mode,
    '--samples', String(s.samples),
    '--warmup', String(s.warmup),
    '--concurrency', String(s.concurrency),
    '--timeout-ms', String(s.timeoutMs),
    ...cpuArgs(opts.cpus),
    ...(a.accountPids ?? []).flatMap((p) => ['--account', String(p)]),
    ...(a.bpfProgIds ?? []).flatMap((p) => ['--bpf-prog', String(p)]),
  ];
  if (a.reference && a.reference.samples > 0) {
    argv.push('--reference', String(a.reference.samples), '--reference-warmup', String(a.reference.warmup));
    if (a.reference.batchServer) argv.push('--reference-batch');
  }
  return { argv, netns: opts.netns, timeoutMs: CLIENT_BASE_TIMEOUT_MS + perWorker * CLIENT_MS_PER_SAMPLE, purpose: `probe ${s.mode} to ${opts.target}:${opts.port}` };
}

/**
 * The client's reference moved out of the cgroup it was started in (a socket-level Service load balancer hooks that
 * one): `fd` is an open `cgroup.procs` of the other cgroup, which the wrapper that starts the client opens for it
 * (src/backends/local/cgroup.ts). A client with no reference is returned as it is.
 */
export function withReferenceCgroupFd(spec: CommandSpec, fd: number): CommandSpec {
  if (!spec.argv.includes('--reference')) return spec;
  return { ...spec, argv: [...spec.argv, '--reference-cgroup-fd', String(fd)] };
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

/** `cb-probe bpf-progs`: the BPF programs a run pinned under `pinDir` (host mount namespace: no netns). */
export function planBpfProgs(pinDir: string): CommandSpec {
  validate(z.string().regex(/^\/sys\/fs\/bpf\/[A-Za-z0-9._/-]+$/, 'expected a directory under /sys/fs/bpf'), pinDir, 'bpf-progs pin directory');
  return { argv: [PROBE_BIN, 'bpf-progs', '--pin-dir', pinDir], timeoutMs: 10_000, purpose: `list the BPF programs pinned under ${pinDir}` };
}

export function parseBpfProgs(stdout: string): number[] {
  return validate(z.object({ prog_ids: z.array(z.number().int().positive()) }), parseJsonOutput(stdout, 'cb-probe bpf-progs'), 'cb-probe bpf-progs output').prog_ids;
}

const errorsSchema = z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected an errno name'), z.number().int().positive());
const clientOutputSchema = z.object({
  mode: z.enum(probeModes),
  concurrency: z.number().int().positive().optional(),
  samples_ns: z.array(nonNegInt),
  errors: errorsSchema,
  wall_ns: nonNegInt,
  cpu_user_ns: nonNegInt,
  cpu_sys_ns: nonNegInt,
  started_ns: nonNegInt,
  ended_ns: nonNegInt,
  // Written by cb-probe since issue 20; absent from an older binary's output.
  cpu_ns: nonNegInt.optional(),
  cpu_clock_res_ns: nonNegInt.optional(),
  tick_ns: nonNegInt.optional(),
  cpu_window_ns: nonNegInt.optional(),
  accounted: z.array(z.object({ pid: z.number().int(), ns: nonNegInt.nullable() })).optional(),
  bpf: z.object({ programs: nonNegInt, run_ns: nonNegInt.optional(), run_cnt: nonNegInt.optional(), error: z.string().optional() }).optional(),
  reference: z.object({ target: z.string(), moved: z.boolean().optional(), bpf_run_cnt: nonNegInt.optional(), samples_ns: z.array(nonNegInt), errors: errorsSchema, wall_ns: nonNegInt }).optional(),
});

export interface ProbeOutput {
  mode: ProbeMode;
  /** Latency of each measured sample, per worker in order, workers concatenated. */
  samplesNs: number[];
  /** Failed samples by errno name (ECONNREFUSED, ETIMEDOUT, EADDRNOTAVAIL…, or EOF when the server hung up). */
  errors: Record<string, number>;
  /** Monotonic duration of the measured window (warmup excluded). */
  wallNs: number;
  /** The probe process's own CPU over the measured window (getrusage: µs, user/system split by ticks). */
  cpuUserNs: number;
  cpuSysNs: number;
  /** CLOCK_MONOTONIC at the window's start and end: the clock of process.hrtime.bigint(). */
  startedNs: number;
  endedNs: number;
  /** The client's CPU over the window from its process CPU-time clock (ns), and that clock's resolution. */
  cpuNs?: number;
  cpuClockResNs?: number;
  /** Length of a scheduler tick (CLOCK_MONOTONIC_COARSE's resolution). */
  tickNs?: number;
  /** The CPU readings' own window (the loop, then the server's backlog, which the client waits out, and the reads). */
  cpuWindowNs?: number;
  /** CPU time of each --account process over the window; null when it could not be read (gone). */
  accounted?: Array<{ pid: number; ns: number | null }>;
  /** Run time of the --bpf-prog programs over the window, or why it could not be counted. */
  bpf?: { programs: number; runNs?: number; runCnt?: number; error?: string };
  /**
   * The machine's reference, measured after the window; `bpfRunCnt`: how often the --bpf-prog programs ran over it
   * (near 0 when no data plane is on its path — a tc program may still see a last segment of the metric's
   * connections —, one or more per operation when one is; absent without programs or from an older binary).
   */
  reference?: { target: string; samplesNs: number[]; errors: Record<string, number>; wallNs: number; bpfRunCnt?: number };
}

export function parseClientOutput(stdout: string): ProbeOutput {
  const o = validate(clientOutputSchema, parseJsonOutput(stdout, 'cb-probe client'), 'cb-probe client output');
  return {
    mode: o.mode,
    samplesNs: o.samples_ns,
    errors: o.errors,
    wallNs: o.wall_ns,
    cpuUserNs: o.cpu_user_ns,
    cpuSysNs: o.cpu_sys_ns,
    startedNs: o.started_ns,
    endedNs: o.ended_ns,
    ...(o.cpu_ns !== undefined ? { cpuNs: o.cpu_ns } : {}),
    ...(o.cpu_clock_res_ns !== undefined ? { cpuClockResNs: o.cpu_clock_res_ns } : {}),
    ...(o.tick_ns !== undefined ? { tickNs: o.tick_ns } : {}),
    ...(o.cpu_window_ns !== undefined ? { cpuWindowNs: o.cpu_window_ns } : {}),
    ...(o.accounted ? { accounted: o.accounted } : {}),
    ...(o.bpf ? { bpf: { programs: o.bpf.programs, ...(o.bpf.run_ns !== undefined ? { runNs: o.bpf.run_ns, runCnt: o.bpf.run_cnt ?? 0 } : {}), ...(o.bpf.error ? { error: o.bpf.error } : {}) } } : {}),
    ...(o.reference ? { reference: { target: o.reference.target, samplesNs: o.reference.samples_ns, errors: o.reference.errors, wallNs: o.reference.wall_ns, ...(o.reference.bpf_run_cnt !== undefined ? { bpfRunCnt: o.reference.bpf_run_cnt } : {}) } } : {}),
  };
}

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
