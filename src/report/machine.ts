// The machine's reference as the result files hold it (issue 20): per run and metric, the loopback reference's
// percentile and the share of the pinned CPU the probe's tasks got. Read by bench compare and the sweep analysis.
import type { EnforceMetricName, MetricName, RunResult } from '../results/schema.js';
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
