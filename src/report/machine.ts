// The machine's reference as the result files hold it (issue 20): per run and metric, the loopback reference's
// percentile and the share of the pinned CPU the probe's tasks got. Read by bench compare and the sweep analysis.
import { machineSlowed, machineUsual } from '../results/machine.js';
import type { MetricName, RunResult } from '../results/schema.js';

// The reference's reading and the slowed-run rule live in results/machine.ts (an adaptive sweep's looks use them too).
export { availabilityOf, referenceOf, runMachine, MACHINE_SLOWED_THRESHOLD } from '../results/machine.js';

export interface MachineSection {
  runs: number;
  /** Runs that carry the reference (files written before it existed do not). */
  measuredRuns: number;
  /** The machine's usual over the measured runs (medians): the reference p50 beside each metric, µs, and the CPU share. */
  referenceP50Us: Record<MetricName, number | null>;
  share: number | null;
  /**
   * Runs on a slowed machine: a reference p50 more than the threshold above its usual (any metric), or a CPU share
   * that much below it. The reference has no data plane on its path, so it is comparable across every point of a
   * sweep: a run that deviates says the machine changed, whatever its data plane.
   */
  slowedRuns: Array<{ runId: string; cni: string; policies: number; repetition: number | null; referenceChange: number | null; shareChange: number | null }>;
}

export function machineSection(results: RunResult[]): MachineSection {
  const ok = results.filter((r) => r.status === 'ok');
  const usual = machineUsual(ok);
  const slowedRuns: MachineSection['slowedRuns'] = [];
  for (const r of ok) {
    const { slowed, referenceChange, shareChange } = machineSlowed(r, usual);
    if (slowed) slowedRuns.push({ runId: r.runId, cni: r.meta.cni, policies: r.meta.policy.count, repetition: r.meta.repetition ?? null, referenceChange, shareChange });
  }
  const toUs = (x: number | null) => (x === null ? null : x / 1000);
  return { runs: ok.length, measuredRuns: usual.measured, referenceP50Us: { connect: toUs(usual.reference.connect), crr: toUs(usual.reference.crr), rr: toUs(usual.reference.rr) }, share: usual.share, slowedRuns };
}
