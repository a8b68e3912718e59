// The machine's reference as the result files hold it (issue 20): per run and metric, the loopback reference's
// percentile and the share of the pinned CPU the probe's tasks got; and which runs ran on a slowed machine. Read by
// bench compare, the report's machine section, and an adaptive sweep's looks (which adjust each run to its
// reference, and leave slowed runs out only where a curve's runs lack one).
import type { EnforceMetricName, MetricName, RunResult } from './schema.js';
import type { RunMachine } from '../stats/machine.js';
import { quantile, sortedCopy } from '../stats/summary.js';

/** Share of the pinned CPU over the metric's windows (CPU time of client, server and ksoftirqd / wall time); null when not measurable. */
export function availabilityOf(r: RunResult, metric: MetricName | EnforceMetricName): number | null {
  const cpu = r.metrics[metric]?.cpu;
  // Only where everything ran on one CPU: there the tasks' CPU time cannot exceed the wall time, and what is
  // missing is time the CPU gave to something else (another task, the host).
  if (!cpu || cpu.source !== 'task-clock' || !(cpu.wallUsPerOp! > 0) || r.meta.cpuPlacement?.cpus?.length !== 1) return null;
  return Math.min(1, cpu.totalUsPerOp / cpu.wallUsPerOp!);
}

/** The reference's percentile q (ns) beside `metric`, or null when the run has none. */
export function referenceOf(r: RunResult, metric: MetricName | EnforceMetricName, q: number): number | null {
  const ref = r.metrics[metric]?.reference;
  if (!ref || ref.samplesNs.length === 0) return null;
  const v = quantile(sortedCopy(ref.samplesNs), q);
  return Number.isFinite(v) && v > 0 ? v : null;
}

export function runMachine(r: RunResult, metric: MetricName | EnforceMetricName, q: number): RunMachine | null {
  const reference = referenceOf(r, metric, q);
  const availability = availabilityOf(r, metric);
  return reference === null && availability === null ? null : { reference, availability };
}

/** How far a run's reference may sit from the sweep's usual before the run is said to have run on a slowed machine. */
export const MACHINE_SLOWED_THRESHOLD = 0.1;

export const MACHINE_METRICS: MetricName[] = ['connect', 'crr', 'rr'];

const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The machine's usual over a set of runs: the median reference p50 beside each metric (ns) and the median CPU share. */
export interface MachineUsual {
  reference: Record<MetricName, number | null>;
  share: number | null;
  /** Runs that carry the reference (files written before it existed do not). */
  measured: number;
}

/** The least of a run's CPU shares over the metrics (the metric that waited most for the CPU). */
function shareOf(r: RunResult): number | null {
  const xs = MACHINE_METRICS.map((m) => availabilityOf(r, m)).filter((x): x is number => x !== null);
  return xs.length ? Math.min(...xs) : null;
}

export function machineUsual(results: readonly RunResult[]): MachineUsual {
  const ok = results.filter((r) => r.status === 'ok');
  const measured = ok.filter((r) => MACHINE_METRICS.some((m) => referenceOf(r, m, 0.5) !== null));
  const reference = Object.fromEntries(MACHINE_METRICS.map((m) => [m, median(measured.map((r) => referenceOf(r, m, 0.5)).filter((x): x is number => x !== null))])) as Record<MetricName, number | null>;
  return { reference, share: median(ok.map(shareOf).filter((x): x is number => x !== null)), measured: measured.length };
}

/**
 * Did the machine slow during this run? Its reference p50 more than the threshold above its usual (any metric), or
 * its CPU share that much below it. The reference has no data plane on its path, so it is comparable across every
 * point of a sweep: a run that deviates says the machine changed, whatever its data plane.
 */
export function machineSlowed(r: RunResult, usual: MachineUsual): { slowed: boolean; referenceChange: number | null; shareChange: number | null } {
  const changes = MACHINE_METRICS.map((m) => {
    const v = referenceOf(r, m, 0.5);
    const u = usual.reference[m];
    return v !== null && u ? v / u - 1 : null;
  }).filter((x): x is number => x !== null);
  const referenceChange = changes.length ? Math.max(...changes) : null;
  const s = shareOf(r);
  const shareChange = s !== null && usual.share ? s / usual.share - 1 : null;
  return { slowed: (referenceChange ?? 0) > MACHINE_SLOWED_THRESHOLD || (shareChange ?? 0) < -MACHINE_SLOWED_THRESHOLD, referenceChange, shareChange };
}
