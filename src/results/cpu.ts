// How a stored CPU figure may be shown (issue 20): every figure carries its resolution, and one whose resolution is
// coarser than 10% of it is "below resolution", never a number. Files written before the resolution was recorded
// took machine-wide /proc/stat over each round's window: a 10 ms tick (USER_HZ) on each CPU at each edge.
import type { CpuJson, MetricResult, RunResult } from './schema.js';

/** A figure is shown only when its resolution is at most this fraction of it. */
export const CPU_SHOWN_RESOLUTION = 0.1;
const PROC_STAT_TICK_US = 10_000;

/** Operations the metric's CPU figures are per (samples and failed attempts). */
export const operationsOf = (m: Pick<MetricResult, 'samplesNs' | 'errors'>) => m.samplesNs.length + Object.values(m.errors).reduce((a, b) => a + b, 0);

/** The resolution of the metric's CPU figures, µs per operation (recorded, or what /proc/stat allowed for older files). */
export function cpuResolutionUsPerOp(r: Pick<RunResult, 'meta'>, m: Pick<MetricResult, 'samplesNs' | 'errors' | 'cpu'>): number {
  if (!m.cpu) return Number.NaN;
  if (typeof m.cpu.resolutionUsPerOp === 'number') return m.cpu.resolutionUsPerOp;
  const ops = operationsOf(m);
  const windows = r.meta.probe.rounds ?? 1;
  return ops > 0 ? (windows * 2 * PROC_STAT_TICK_US * r.meta.machine.cpus) / ops : Number.NaN;
}

export const cpuSourceOf = (cpu: CpuJson) => cpu.source ?? 'proc-stat';

/** Is `valueUs` fine enough to show at resolution `resolutionUs`? */
export const cpuResolved = (valueUs: number | null | undefined, resolutionUs: number): boolean =>
  typeof valueUs === 'number' && Number.isFinite(valueUs) && Number.isFinite(resolutionUs) && valueUs > 0 && resolutionUs <= CPU_SHOWN_RESOLUTION * valueUs;

/**
 * "12.3", or "below resolution" — compact: "<16", the bound the rule implies (a figure not shown is under 10× its
 * resolution). The resolution itself is stated once beside, by the caller.
 */
export function cpuText(valueUs: number | null | undefined, resolutionUs: number, opts: { digits?: number; compact?: boolean } = {}): string {
  if (valueUs === null || valueUs === undefined || !Number.isFinite(valueUs)) return '–';
  if (cpuResolved(valueUs, resolutionUs)) return valueUs.toFixed(opts.digits ?? 1);
  return opts.compact && Number.isFinite(resolutionUs) ? `<${Number((resolutionUs / CPU_SHOWN_RESOLUTION).toPrecision(2))}` : 'below resolution';
}

/** ± resolution, in µs, for a column beside the figures. */
export const resolutionText = (resolutionUs: number) => (Number.isFinite(resolutionUs) ? `±${resolutionUs < 10 ? resolutionUs.toFixed(2) : resolutionUs.toFixed(0)}` : '–');

/**
 * One metric's CPU line for the terminal: "total = client + server + ksoftirqd (±res)", each part shown only when
 * resolved; the source says what the total is.
 */
export function cpuSummaryLine(r: Pick<RunResult, 'meta'>, m: Pick<MetricResult, 'samplesNs' | 'errors' | 'cpu'>): string {
  const c = m.cpu;
  if (!c) return '–';
  const res = cpuResolutionUsPerOp(r, m);
  if (!cpuResolved(c.totalUsPerOp, res)) return `below resolution (${resolutionText(res)})`;
  const partsRes = Math.max(res, c.partsResolutionUsPerOp ?? res);
  const part = (v: number | null) => (v === null ? '–' : cpuText(v, partsRes, { compact: true }));
  if (cpuSourceOf(c) === 'task-clock') return `${c.totalUsPerOp.toFixed(1)} = ${part(c.probeClientUsPerOp)} + ${part(c.probeServerUsPerOp)} + ${part(c.softirqUsPerOp)} (${resolutionText(res)})`;
  return `${c.totalUsPerOp.toFixed(1)} (${part(c.probeClientUsPerOp)}+${part(c.probeServerUsPerOp)}) (${resolutionText(res)})`;
}

/** One line for the terminal saying what the CPU column is (from the run's first cpu block). */
export function cpuNote(r: Pick<RunResult, 'meta' | 'metrics'>): string | null {
  const m = Object.values(r.metrics).find((x) => x?.cpu);
  if (!m?.cpu) return null;
  const c = m.cpu;
  if (cpuSourceOf(c) === 'proc-stat') return "CPU µs/op: all CPUs' busy time from /proc/stat (10 ms ticks) over the measured windows, per operation, the rest of the machine included (probe client + server in brackets); ± its resolution";
  if (cpuSourceOf(c) === 'task-clock') {
    const softirq = c.includes?.includes('no CONFIG_IRQ_TIME_ACCOUNTING') ? "; the data plane's softirq work is in the client's and server's figures (no CONFIG_IRQ_TIME_ACCOUNTING)" : '';
    return `CPU µs/op = probe client + echo server + ksoftirqd on the pinned CPU (task CPU-time clocks)${softirq}; ± its resolution, parts under 10× it shown as a bound; the result's cpu.includes says more`;
  }
  return `CPU µs/op: ${c.includes ?? 'total (probe client + server)'}; ± its resolution`;
}
