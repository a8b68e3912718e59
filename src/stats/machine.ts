// Did the machine slow, or the data plane? (issue 20) Every run measures, beside each metric, a reference of the
// machine: the same operation over the client pod's loopback (no data plane on the path), and the share of the
// pinned CPU the probe's tasks got over the metric's windows (their CPU time / wall time). A gate row whose
// slow-down the machine explains is "machine slowed", not a regression:
//
// - a slower machine (a slower vCPU, a busier host) slows the reference with the metric: the row is explained when
//   the reference slowed significantly and the metric ÷ reference, run by run, did not;
// - a task competing for the pinned CPU (or the host stealing the vCPU) shows as a drop of that share. An operation
//   then waits for the CPU, and its own work grows too: between turns the data plane's rules leave the caches (on
//   the development VM, busy with other work too, Calico's CPU per connection at 1000 policies rose ~45% under a
//   busy loop on the pinned CPU, its connect p50 3-5×, while the share halved). How much of a change such a machine explains cannot be told, so
//   a row of a point whose share dropped significantly, by more than the threshold, is not judged.
//
// The tests here only ever remove regressions, so the gate's false-alarm rate stays at most α; each explanation
// also needs evidence that the machine changed (a significant change of the reference or of the share), so a
// regression is not explained away by noise.
import { welch } from './hierarchical.js';

/** One run's machine evidence for one row: the reference's percentile (ns) and the share of the pinned CPU (0–1]. */
export interface RunMachine {
  reference: number | null;
  availability: number | null;
}

export interface MachineChange {
  /** Geometric means of the runs' values. */
  baseline: number;
  current: number;
  /** current / baseline − 1, and its 95% CI (Welch on logs). */
  change: number;
  changeCi95: [number, number];
  /** One-sided p of the change in the direction that would explain the row (reference slower / share lower). */
  p: number;
  runs: [number, number];
}

export interface MachineJudgement {
  reference: MachineChange | null;
  /** The metric divided by the reference, run by run: the data plane's change with the machine's taken out. */
  normalized: { change: number; changeCi95: [number, number]; p: number } | null;
  availability: MachineChange | null;
  /** The machine changed in the row's direction: the reference (significantly), the CPU share (significantly, beyond the threshold). */
  referenceMoved: boolean;
  shareMoved: boolean;
  /** What explains the row's change, if anything (set by decideRuns, after Holm over the rows). */
  explainedBy: 'reference' | 'availability' | null;
}

export interface MachineOptions {
  alpha: number;
  /** A share must drop by more than this (relative) to count as a competing task, as a slow-down must to be a regression. */
  maxRegression: number;
  minRepetitions: number;
}

const logs = (xs: readonly number[]) => xs.filter((x) => x > 0 && Number.isFinite(x)).map(Math.log);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function change(base: readonly number[], cur: readonly number[], direction: 1 | -1): MachineChange | null {
  const b = logs(base);
  const c = logs(cur);
  if (b.length < 2 || c.length < 2) return null;
  const w = welch(b, c);
  return {
    baseline: Math.exp(mean(b)),
    current: Math.exp(mean(c)),
    change: Math.exp(w.diff) - 1,
    changeCi95: [Math.exp(w.ci95[0]) - 1, Math.exp(w.ci95[1]) - 1],
    p: direction === 1 ? w.pGreater : Number.isFinite(w.pGreater) ? 1 - w.pGreater : Number.NaN,
    runs: [b.length, c.length],
  };
}

/**
 * The machine evidence for one row: `base`/`cur` are the runs' values of the row's percentile (ns) with their
 * machine evidence. `direction` 1 asks whether the machine explains a slow-down, −1 a speed-up.
 */
export function judgeMachine(
  base: ReadonlyArray<{ value: number; machine: RunMachine | null }>,
  cur: ReadonlyArray<{ value: number; machine: RunMachine | null }>,
  opts: MachineOptions,
  direction: 1 | -1 = 1,
): MachineJudgement {
  const withRef = (xs: typeof base) => xs.filter((x) => x.value > 0 && (x.machine?.reference ?? 0) > 0);
  const bRef = withRef(base);
  const cRef = withRef(cur);
  const enough = (b: number, c: number) => b >= opts.minRepetitions && c >= opts.minRepetitions;
  let reference: MachineChange | null = null;
  let normalized: MachineJudgement['normalized'] = null;
  if (enough(bRef.length, cRef.length)) {
    reference = change(bRef.map((x) => x.machine!.reference!), cRef.map((x) => x.machine!.reference!), direction);
    const n = change(bRef.map((x) => x.value / x.machine!.reference!), cRef.map((x) => x.value / x.machine!.reference!), direction);
    if (n) normalized = { change: n.change, changeCi95: n.changeCi95, p: n.p };
  }
  const share = (xs: typeof base) => xs.map((x) => x.machine?.availability ?? 0).filter((a) => a > 0);
  const bA = share(base);
  const cA = share(cur);
  // The share explains a slow-down when it dropped (direction −1 of the share), a speed-up when it rose.
  const availability = enough(bA.length, cA.length) ? change(bA, cA, direction === 1 ? -1 : 1) : null;

  const sig = (p: number | undefined) => p !== undefined && Number.isFinite(p) && p < opts.alpha;
  const referenceMoved = Boolean(reference && normalized && sig(reference.p) && Math.sign(reference.change) === direction);
  const shareMoved = Boolean(availability && sig(availability.p) && -direction * availability.change > opts.maxRegression);
  return { reference, normalized, availability, referenceMoved, shareMoved, explainedBy: null };
}

/**
 * Which rows the machine explains, given the Holm-adjusted p of metric ÷ reference over the comparison's rows (so a
 * regression beyond the machine is claimed at the gate's α however many rows there are): the reference explains a
 * row that moved with it when metric ÷ reference did not move significantly; a drop of the CPU share, every row.
 */
export function explain(j: MachineJudgement, pNormalizedAdjusted: number, alpha: number): MachineJudgement['explainedBy'] {
  if (j.referenceMoved && !(Number.isFinite(pNormalizedAdjusted) && pNormalizedAdjusted < alpha)) return 'reference';
  if (j.shareMoved) return 'availability';
  return null;
}
