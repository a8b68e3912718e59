// CPU per operation where the work runs (issue 20). On the local backend the probe client, the echo server and the
// softirq work of their packets all run on the pinned CPU; the client reads, at the edges of its measured window,
// its own CPU-time clock, the server's and the pinned CPU's ksoftirqd's (nanoseconds), and, for eBPF data planes,
// the run time of the run's BPF programs. Every figure carries its resolution: what the window's edges and the
// clocks leave uncertain, per operation.
import { readFileSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';

/** One metric window's CPU figures, µs per operation (the shape of the result file's `cpu` block). */
export interface CpuPerOp {
  /** What the figures add up to: client + server + ksoftirqd on the local backend. */
  totalUsPerOp: number;
  probeClientUsPerOp: number;
  probeServerUsPerOp: number | null;
  /** The data plane's own CPU where it can be separated (BPF program run time), else null (see `dataPlane`). */
  dataPlaneUsPerOp: number | null;
  /** ksoftirqd of the placement's CPUs: softirq work the kernel deferred out of the tasks' system calls. */
  softirqUsPerOp: number;
  source: CpuSource;
  /** What one window's edges and clocks leave uncertain, per operation; a figure is shown only above 10× this. */
  resolutionUsPerOp: number;
  /** Wall time of the CPU readings' window per operation: with everything on one CPU, the total cannot exceed it. */
  wallUsPerOp: number;
  /** BPF program run time per operation (eBPF data planes), null when not counted. */
  bpfUsPerOp: number | null;
  /** What the total includes, in words. */
  includes: string;
  /** What dataPlaneUsPerOp is, or why there is none. */
  dataPlane: string;
}

/** task-clock: per-task CPU-time clocks (local); cgroup: cgroup v2 cpu.stat (kind); cadvisor: kubelet stats; proc-stat: /proc/stat ticks. */
export type CpuSource = 'task-clock' | 'cgroup' | 'cadvisor' | 'proc-stat';

/** Whether softirq work done on return from a system call is charged to the task that made it. */
export interface SoftirqCharging {
  /** true: charged to the task (no CONFIG_IRQ_TIME_ACCOUNTING); false: kept apart as irq time; null: unknown. */
  inTasks: boolean | null;
  how: string;
}

/** Reads the running kernel's CONFIG_IRQ_TIME_ACCOUNTING from /proc/config.gz or /boot/config-<release>. */
export function softirqCharging(configText?: string | null): SoftirqCharging {
  const text = configText === undefined ? kernelConfig() : configText;
  if (text === null) return { inTasks: null, how: 'kernel configuration not readable: whether softirq time is in the task figures is unknown' };
  if (/^CONFIG_IRQ_TIME_ACCOUNTING=y$/m.test(text)) {
    return { inTasks: false, how: 'this kernel accounts softirq time apart (CONFIG_IRQ_TIME_ACCOUNTING=y): packet processing outside ksoftirqd is not in the task figures, so they are a lower bound' };
  }
  return { inTasks: true, how: 'this kernel has no CONFIG_IRQ_TIME_ACCOUNTING: softirq packet processing done on return from a system call is charged to the task that made the call, so the rule walk of a new connection is in the client\'s figure' };
}

function kernelConfig(): string | null {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    try {
      return readFileSync(`/boot/config-${release()}`, 'utf8');
    } catch {
      return null;
    }
  }
}

/** Pids of ksoftirqd/<cpu> for the given CPUs (from /proc/<pid>/comm); CPUs without one are left out. */
export function ksoftirqdPids(cpus: readonly number[], procRoot = '/proc'): number[] {
  const want = new Map(cpus.map((c) => [`ksoftirqd/${c}`, c]));
  const found: Array<[number, number]> = [];
  for (const d of readdirSync(procRoot)) {
    if (!/^\d+$/.test(d)) continue;
    let comm: string;
    try {
      comm = readFileSync(`${procRoot}/${d}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const cpu = want.get(comm);
    if (cpu !== undefined) found.push([cpu, Number(d)]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, pid]) => pid);
}

/** What the probe client reported about one window (src/probe/client.ts ProbeOutput, the fields used here). */
export interface WindowReading {
  wallNs: number;
  cpuNs?: number;
  cpuClockResNs?: number;
  tickNs?: number;
  /** The CPU readings' own window: the loop, the server's backlog after it, the reads. */
  cpuWindowNs?: number;
  accounted?: Array<{ pid: number; ns: number | null }>;
  bpf?: { programs: number; runNs?: number; error?: string };
}

export interface WindowContext {
  /** Operations in the window (samples and failed attempts). */
  ops: number;
  concurrency: number;
  /** The server's pid and the ksoftirqd pids the client was asked to account. */
  serverPid: number | null;
  softirqPids: readonly number[];
  /** CPUs the work may run on; one when pinned. */
  cpus: number;
  softirq: SoftirqCharging;
}

const SOFTIRQ_DEFERRED = 'ksoftirqd of the pinned CPU';

/**
 * The task-clock figures of one window, or null when the probe did not report them (an older binary). The
 * resolution: each edge of the window may cut an operation in flight (at most one per worker, its CPU about the
 * window's CPU per operation), and a task running on another CPU than the reader may have up to one tick not yet
 * added to its clock.
 */
export function windowCpu(r: WindowReading, c: WindowContext): CpuPerOp | null {
  if (r.cpuNs === undefined || c.ops <= 0) return null;
  const find = (pid: number | null) => (pid === null ? null : (r.accounted?.find((a) => a.pid === pid)?.ns ?? null));
  const server = find(c.serverPid);
  const softirq = c.softirqPids.reduce((a, p) => a + (find(p) ?? 0), 0);
  const total = r.cpuNs + (server ?? 0) + softirq;
  const perOp = (ns: number) => ns / 1000 / c.ops;
  const tasks = 1 + (c.serverPid === null ? 0 : 1) + c.softirqPids.length;
  // The client's own work lies inside the window; what the edges can cut is the rest of an operation in flight (the
  // server's accept and close, deferred softirq): at most one operation's CPU per worker at each edge. Not its wall
  // time, which a busy machine stretches with other tasks' work.
  const edges = (2 * total * c.concurrency) / c.ops;
  const lag = c.cpus > 1 ? 2 * (r.tickNs ?? 10_000_000) * (tasks - 1) : 0;
  const clockRes = 2 * tasks * (r.cpuClockResNs ?? 1);
  const bpfNs = r.bpf && r.bpf.runNs !== undefined && !r.bpf.error ? r.bpf.runNs : null;
  const who = ['the probe client', ...(c.serverPid === null ? [] : ['the echo server']), ...(c.softirqPids.length ? [c.cpus === 1 ? SOFTIRQ_DEFERRED : 'ksoftirqd of every CPU'] : [])];
  return {
    totalUsPerOp: perOp(total),
    probeClientUsPerOp: perOp(r.cpuNs),
    probeServerUsPerOp: server === null ? null : perOp(server),
    dataPlaneUsPerOp: bpfNs === null ? null : perOp(bpfNs),
    softirqUsPerOp: perOp(softirq),
    source: 'task-clock',
    resolutionUsPerOp: perOp(edges + lag + clockRes),
    // Over the CPU readings' own window (the loop, the server's backlog after it): on one CPU the total cannot exceed it.
    wallUsPerOp: perOp(r.cpuWindowNs ?? r.wallNs),
    bpfUsPerOp: bpfNs === null ? null : perOp(bpfNs),
    includes: `CPU time of ${who.join(', ')} over the measured windows (per-task CPU-time clocks, ns); ${c.softirq.how}${c.softirqPids.length ? '; ksoftirqd also runs deferred softirq work of anything else on that CPU (other runs live at the same time are in meta.concurrentRuns)' : ''}`,
    dataPlane:
      bpfNs !== null
        ? `run time of the data plane's BPF programs (BPF_ENABLE_STATS held by the probe while it measured), part of the total`
        : r.bpf?.error
          ? `BPF run time not counted: ${r.bpf.error}`
          : "not separable: the data plane's work runs in softirq inside the client's and server's system calls and is charged to them; read it as the CPU added over the none data plane",
  };
}

/** A cpu block as the result file holds it: files before issue 20 have only the first five fields (/proc/stat). */
export type CpuRecord = Pick<CpuPerOp, 'totalUsPerOp' | 'probeClientUsPerOp' | 'probeServerUsPerOp' | 'dataPlaneUsPerOp' | 'softirqUsPerOp'> &
  Partial<Omit<CpuPerOp, 'totalUsPerOp' | 'probeClientUsPerOp' | 'probeServerUsPerOp' | 'dataPlaneUsPerOp' | 'softirqUsPerOp'>> & { partsResolutionUsPerOp?: number };

/** Joins the windows of one metric (its rounds): every per-op figure weighted by operations, as if summed and divided once. */
export function mergeCpu<C extends CpuRecord>(parts: ReadonlyArray<{ cpu: C | null; ops: number }>): CpuRecord | null {
  const total = parts.reduce((a, p) => a + p.ops, 0);
  if (total <= 0 || parts.some((p) => p.cpu === null)) return null;
  if (parts.length === 1) return parts[0]!.cpu;
  const cpus = parts.map((p) => p.cpu!);
  const w = (f: (c: CpuRecord) => number) => parts.reduce((a, p) => a + f(p.cpu!) * p.ops, 0) / total;
  const wn = (f: (c: CpuRecord) => number | null | undefined) => (cpus.every((c) => typeof f(c) === 'number') ? w((c) => f(c) as number) : null);
  const merged: CpuRecord = {
    totalUsPerOp: w((c) => c.totalUsPerOp),
    probeClientUsPerOp: w((c) => c.probeClientUsPerOp),
    probeServerUsPerOp: wn((c) => c.probeServerUsPerOp),
    dataPlaneUsPerOp: wn((c) => c.dataPlaneUsPerOp),
    softirqUsPerOp: w((c) => c.softirqUsPerOp),
  };
  const first = cpus[0]!;
  if (first.source === undefined) return merged;
  return {
    ...merged,
    source: first.source,
    resolutionUsPerOp: wn((c) => c.resolutionUsPerOp) ?? undefined,
    partsResolutionUsPerOp: wn((c) => c.partsResolutionUsPerOp) ?? undefined,
    wallUsPerOp: wn((c) => c.wallUsPerOp) ?? undefined,
    bpfUsPerOp: wn((c) => c.bpfUsPerOp),
    includes: first.includes,
    dataPlane: cpus.find((c) => c.dataPlaneUsPerOp === null)?.dataPlane ?? first.dataPlane,
  };
}
