// Two sets of runs of the same point, baseline and current: how much did a percentile move, with what confidence,
// and is it a regression? Decided on run-level values (below); the pooled-sample Mann–Whitney test is kept beside
// each row for reference only (it calls nearly every A/A comparison significant). Pure functions on raw samples.
import { errorFunction } from 'simple-statistics';
import { quantile, sortedCopy } from './summary.js';
import { welch } from './hierarchical.js';
import { explain, judgeMachine, type MachineJudgement, type RunMachine } from './machine.js';

const Z95 = 1.959963984540054;

export interface MannWhitney {
  u: number;
  z: number;
  /** Two-sided p-value (normal approximation with tie and continuity corrections; fine for the thousands of samples a run has). */
  p: number;
  /** Probability that a random current sample exceeds a random baseline sample (0.5 = no shift). */
  commonLanguageEffect: number;
}

const normalCdf = (z: number) => 0.5 * (1 + errorFunction(z / Math.SQRT2));

/** Mann–Whitney U test of `current` against `baseline`. */
export function mannWhitney(baseline: ArrayLike<number>, current: ArrayLike<number>): MannWhitney {
  const n1 = baseline.length;
  const n2 = current.length;
  if (n1 === 0 || n2 === 0) return { u: Number.NaN, z: Number.NaN, p: Number.NaN, commonLanguageEffect: Number.NaN };
  const n = n1 + n2;
  // Sort indices of the pooled sample; mark which side each came from.
  const values = new Float64Array(n);
  const fromCurrent = new Uint8Array(n);
  for (let i = 0; i < n1; i++) values[i] = baseline[i]!;
  for (let i = 0; i < n2; i++) {
    values[n1 + i] = current[i]!;
    fromCurrent[n1 + i] = 1;
  }
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  let rankSumCurrent = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    const t = j - i + 1;
    if (t > 1) tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (fromCurrent[order[k]!]) rankSumCurrent += avgRank;
    i = j + 1;
  }
  const u = rankSumCurrent - (n2 * (n2 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  if (sigma === 0) return { u, z: 0, p: 1, commonLanguageEffect: 0.5 };
  // Continuity correction towards the mean.
  const z = (u - mu - Math.sign(u - mu) * 0.5) / sigma;
  const p = Math.min(1, 2 * (1 - normalCdf(Math.abs(z))));
  return { u, z, p, commonLanguageEffect: u / (n1 * n2) };
}

/**
 * Distribution-free 95% CI of a quantile from order statistics: the ranks n·q ± 1.96·√(n·q·(1−q)) (the normal
 * approximation of the binomial count of samples below the quantile). O(1) on sorted data.
 */
export function quantileCi(sorted: ArrayLike<number>, q: number): [number, number] {
  const n = sorted.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  const half = Z95 * Math.sqrt(n * q * (1 - q));
  const lo = Math.max(0, Math.floor(n * q - half) - 1);
  const hi = Math.min(n - 1, Math.ceil(n * q + half));
  return [sorted[lo]!, sorted[hi]!];
}

export interface CompareOptions {
  /** Relative slow-down beyond which a significant change is a regression (0.05 = 5%). */
  maxRegression: number;
  /** Significance level of the tests. */
  alpha: number;
}

export const DEFAULT_COMPARE: CompareOptions = { maxRegression: 0.05, alpha: 0.05 };

export type ChangeVerdict = 'regression' | 'improvement' | 'slower (within threshold)' | 'faster (within threshold)' | 'no significant change' | 'no data';

// ------------------------------------------------------------------------------------------------ run level
// The gate decides on runs, not samples: each run contributes one value (its percentile), the test is Welch's t
// on the logarithms of those values (a ratio of geometric means), and α is the false-alarm rate of the whole
// comparison (Holm's step-down over every row compared), so a nightly comparison of identical builds fires in
// at most α of nights however many CNIs and metrics it covers. The gate asks one question per row — is current
// slower? — so its tests are one-sided: a regression is claimed on the one-sided p of "slower", Holm-adjusted
// over the rows; improvements are the same test in the other direction, a second family with its own α that
// never fails the gate. (A two-sided test would spend half of α on speed-ups nobody gates on.)


export interface RunCompareOptions extends CompareOptions {
  /** Fewer runs than this on either side: no significance is claimed ("not enough repetitions to judge"). */
  minRepetitions: number;
}

export const DEFAULT_MIN_REPETITIONS = 3;
export const DEFAULT_RUN_COMPARE: RunCompareOptions = { ...DEFAULT_COMPARE, minRepetitions: DEFAULT_MIN_REPETITIONS };

/** 'machine slowed' / 'machine faster': significant, but the machine's reference explains it (src/stats/machine.ts). */
export type RunChangeVerdict = ChangeVerdict | 'not enough repetitions' | 'machine slowed' | 'machine faster';

export interface RunComparison {
  q: number;
  /** Geometric mean of the runs' percentiles, ns. */
  baseline: number;
  current: number;
  /** current / baseline − 1 (ratio of geometric means). */
  change: number;
  /** 95% CI of the change from Welch's t on log values (unadjusted for multiplicity). */
  changeCi95: [number, number];
  baselineRuns: number;
  currentRuns: number;
  /** Run-to-run coefficient of variation on each side (sd of log values). */
  baselineCv: number;
  currentCv: number;
  /** Welch's two-sided p-value on log run values (shown; the verdicts use the one-sided ones). */
  p: number;
  /** One-sided p of "current is slower" (regression family) and of "current is faster" (improvement family). */
  pSlower: number;
  pFaster: number;
  /** Holm-adjusted one-sided p over the comparison's rows, in the direction the change went (set by decideRuns). */
  pAdjusted: number;
  /** Both sides have at least minRepetitions runs. */
  judged: boolean;
  significant: boolean;
  verdict: RunChangeVerdict;
  /** The old per-sample view, for reference only: Mann–Whitney on pooled samples. */
  pooledSamplesP: number;
  /** Whether the machine explains the change (in its direction), when the runs carry a reference; else null. */
  machine: MachineJudgement | null;
}

const geo = (xs: number[]) => Math.exp(xs.reduce((a, b) => a + Math.log(b), 0) / xs.length);
const logSd = (xs: number[]) => {
  if (xs.length < 2) return Number.NaN;
  const l = xs.map(Math.log);
  const m = l.reduce((a, b) => a + b, 0) / l.length;
  return Math.sqrt(l.reduce((a, b) => a + (b - m) ** 2, 0) / (l.length - 1));
};

/**
 * One percentile of two sets of runs (each run: its raw samples). Verdicts are set by decideRuns. `machine`, aligned
 * with the runs, is each run's machine evidence for this row (src/stats/machine.ts).
 */
export function compareRuns(
  baselineRuns: readonly (readonly number[])[],
  currentRuns: readonly (readonly number[])[],
  q: number,
  opts: RunCompareOptions = DEFAULT_RUN_COMPARE,
  machine?: { baseline: ReadonlyArray<RunMachine | null>; current: ReadonlyArray<RunMachine | null> },
): RunComparison {
  const per = (runs: readonly (readonly number[])[], m?: ReadonlyArray<RunMachine | null>) =>
    runs.map((r, i) => ({ value: r.length > 0 ? quantile(sortedCopy(r), q) : 0, machine: m?.[i] ?? null })).filter((x) => x.value > 0);
  const bRuns = per(baselineRuns, machine?.baseline);
  const cRuns = per(currentRuns, machine?.current);
  const b = bRuns.map((x) => x.value);
  const c = cRuns.map((x) => x.value);
  const judged = b.length >= opts.minRepetitions && c.length >= opts.minRepetitions;
  const base = { q, baselineRuns: b.length, currentRuns: c.length, baselineCv: logSd(b), currentCv: logSd(c), pAdjusted: Number.NaN, judged, significant: false, machine: null };
  if (b.length === 0 || c.length === 0) {
    return { ...base, baseline: b.length ? geo(b) : Number.NaN, current: c.length ? geo(c) : Number.NaN, change: Number.NaN, changeCi95: [Number.NaN, Number.NaN], p: Number.NaN, pSlower: Number.NaN, pFaster: Number.NaN, verdict: 'no data', pooledSamplesP: Number.NaN };
  }
  const w = welch(b.map(Math.log), c.map(Math.log));
  const pooled = mannWhitney(sortedCopy(baselineRuns.flat()), sortedCopy(currentRuns.flat())).p;
  const change = Math.exp(Math.log(geo(c)) - Math.log(geo(b))) - 1;
  const hasMachine = [...bRuns, ...cRuns].some((x) => x.machine !== null);
  return {
    ...base,
    baseline: geo(b),
    current: geo(c),
    change,
    changeCi95: [Math.exp(w.ci95[0]) - 1, Math.exp(w.ci95[1]) - 1],
    p: w.p,
    pSlower: w.pGreater,
    pFaster: Number.isFinite(w.pGreater) ? 1 - w.pGreater : Number.NaN,
    verdict: judged ? 'no significant change' : 'not enough repetitions',
    pooledSamplesP: pooled,
    machine: hasMachine && Number.isFinite(w.se) ? judgeMachine(bRuns, cRuns, opts, change < 0 ? -1 : 1) : null,
  };
}

/** Holm's step-down adjusted p-values (NaN entries stay NaN and do not count towards m). */
export function holm(ps: readonly number[]): number[] {
  const idx = ps.map((p, i) => [p, i] as const).filter(([p]) => Number.isFinite(p)).sort((a, b) => a[0] - b[0]);
  const m = idx.length;
  const out = ps.map(() => Number.NaN);
  let running = 0;
  idx.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    out[i] = running;
  });
  return out;
}

/**
 * Sets significance and verdicts for all rows of one comparison: only judged rows (enough repetitions on both
 * sides) are tested. Regressions: the one-sided p-values of "slower", Holm-adjusted together; a significant
 * slow-down beyond maxRegression is a regression, within it "slower (within threshold)" — and "machine slowed"
 * when the runs' machine reference explains it (src/stats/machine.ts), as is a slow-down beyond maxRegression that
 * is not significant on a machine that changed (not judged rather than passed). Improvements: the same in the other
 * direction, adjusted as their own family.
 */
export function decideRuns<T extends RunComparison>(rows: T[], opts: RunCompareOptions = DEFAULT_RUN_COMPARE): T[] {
  const tested = (r: T) => r.judged && r.verdict !== 'no data';
  const slower = holm(rows.map((r) => (tested(r) ? r.pSlower : Number.NaN)));
  const faster = holm(rows.map((r) => (tested(r) ? r.pFaster : Number.NaN)));
  // The machine's explanations (src/stats/machine.ts), each family Holm-adjusted over the rows like the gate's own.
  const beyondRef = holm(rows.map((r) => (tested(r) && r.machine?.referenceMoved ? r.machine.normalized!.p : Number.NaN)));
  return rows.map((r, i) => {
    const pAdjusted = r.change < 0 ? faster[i]! : slower[i]!;
    if (!tested(r)) return { ...r, pAdjusted, significant: false };
    if (r.machine) r = { ...r, machine: { ...r.machine, explainedBy: explain(r.machine, beyondRef[i]!, opts.alpha) } };
    let verdict: RunChangeVerdict = 'no significant change';
    let significant = false;
    if (slower[i]! < opts.alpha && r.change > 0) {
      significant = true;
      verdict = r.change > opts.maxRegression ? (r.machine?.explainedBy ? 'machine slowed' : 'regression') : 'slower (within threshold)';
    } else if (faster[i]! < opts.alpha && r.change < 0) {
      significant = true;
      verdict = -r.change > opts.maxRegression ? (r.machine?.explainedBy ? 'machine faster' : 'improvement') : 'faster (within threshold)';
    } else if (r.change > opts.maxRegression && r.machine?.explainedBy) {
      // Slower beyond the threshold, not significantly, while the machine changed (its CPU share dropped, or the
      // reference slowed as much): the machine's spread can hide a regression, so the row is not a pass either.
      verdict = 'machine slowed';
    }
    return { ...r, pAdjusted, significant, verdict };
  });
}
