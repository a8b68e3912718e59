// Adaptive repetitions, the sweep's side: after each batch, judge every data plane's curves by the rule of
// stats/sequential.ts (each look spends a pre-set share of α) and plan another batch, interleaved like the first,
// only for the data planes whose verdict is still open; stop when none is, or when they reach the maximum.
// The curves run along the dimension the sweep varies: the policy count, or the Service count (policies fixed).
import { join } from 'node:path';
import type { CniName } from '../config/schema.js';
import { readResult } from '../results/io.js';
import { machineSlowed, machineUsual, referenceOf, type MachineUsual } from '../results/machine.js';
import { METRICS, type MetricName, type RunResult } from '../results/schema.js';
import { alphaAt, curveDecision, lookSchedule, type AdaptiveDesign, type ReferenceAdjustment, type RunPoint } from '../stats/sequential.js';
import { inServiceWords } from '../stats/verdict.js';
import type { CurveLook, SweepLook, SweepManifest, SweepPoint } from './manifest.js';
import { planRepetitions, type Cell, type PlannedPoint, type SweepMatrix } from './plan.js';

/**
 * The verdicts that decide whether a data plane needs more runs: the p50 of every latency (or enforcement-time)
 * metric. Tails (p99) and CPU per connection are reported but do not buy repetitions: a p99 over 1000 samples
 * moves with single outliers and would keep every data plane at the maximum.
 */
export const DECISION_METRICS = ['connect', 'crr', 'rr', 'enforce_allow_added', 'enforce_allow_removed', 'enforce_new_pod', 'enforce_peer_joins'] as const;
type DecisionMetric = (typeof DECISION_METRICS)[number];

/**
 * What a Services sweep decides: what the report's Services section judges, connect p50 to the ClusterIP against
 * the Service count (the lookup a Service adds runs once per connection, at connect(); CRR repeats the same
 * connect and RR rides an established flow, which no service data plane translates again).
 */
export const SERVICE_DECISION_METRICS = ['connect'] as const satisfies readonly DecisionMetric[];

/** The dimension a sweep's curves run along: the policy count, or the Service count. */
export type SweepDimension = 'policies' | 'services';

/**
 * A sweep varies the Service count when it has several and one policy count; otherwise the policy count (at one
 * Service count, or none). A sweep that varies both has no adaptive design (config.ts refuses it).
 */
export const sweepDimension = (m: Pick<SweepMatrix, 'policies' | 'services'>): SweepDimension => ((m.services?.length ?? 0) > 1 && m.policies.length <= 1 ? 'services' : 'policies');

/** Per dimension: a run's x, the metrics whose p50 verdicts buy repetitions, and the words of its x. */
const DIMENSIONS: Record<SweepDimension, { x: (r: RunResult) => number | null; metrics: readonly DecisionMetric[]; label: string; words: (reason: string) => string }> = {
  policies: { x: (r) => r.meta.policy.count, metrics: DECISION_METRICS, label: '', words: (s) => s },
  services: { x: (r) => r.services?.count ?? null, metrics: SERVICE_DECISION_METRICS, label: ' vs Services', words: inServiceWords },
};

const Z95 = 1.959963984540054;

/**
 * A run's p50 of a metric at its x, its within-run standard error (from its own CI), as the report's fit takes
 * them, and the machine's reference p50 beside it (when the run measured one).
 */
export function runValue(r: RunResult, metric: DecisionMetric, x: number | null, slowed: boolean): RunPoint | null {
  const m = (r.metrics as Record<string, RunResult['metrics']['connect'] | undefined>)[metric];
  const y = m?.summary.p50;
  if (x === null || !m || y === null || y === undefined || !Number.isFinite(y)) return null;
  const [lo, hi] = m.summary.ci95.p50;
  const reference = referenceOf(r, metric, 0.5);
  return { x, y, se: lo !== null && hi !== null ? (hi - lo) / (2 * Z95) : 0, ...(slowed ? { slowed } : {}), ...(reference === null ? {} : { reference }) };
}

/** How a look's reason words the reference adjustment: θ, or why the curve was not adjusted. */
export const adjustmentText = (a: ReferenceAdjustment, leftOut: number) =>
  a.theta !== null ? `adjusted to the machine's reference, θ ${a.theta.toFixed(2)}` : `not adjusted to the reference: ${a.notAdjusted}${leftOut ? `; ${leftOut} run(s) on a slowed machine left out` : ''}`;

/** Does a point measure this metric? Points without a list measure all; enforce metrics are every enforce point's. */
export const measures = (p: Pick<SweepPoint, 'metrics'>, metric: string) => !p.metrics || !(METRICS as readonly string[]).includes(metric) || (p.metrics as readonly string[]).includes(metric);

/**
 * Repetitions a data plane's points have reached in the plan; with a metric, those of the points that measure it
 * (an extension batch measures only the open metrics, so a metric decided early has fewer).
 */
export const repetitionsOf = (m: SweepManifest, cni: CniName, metric?: string) => Math.max(0, ...m.points.filter((p) => p.cni === cni && (metric === undefined || measures(p, metric))).map((p) => p.repetition));

/**
 * "calico 6", or, where an extension measured only some metrics, each latency metric's repetitions ("calico (connect
 * 3, crr 3, rr 12)"); CPU per connection and p99 come with connect, so their runs are connect's.
 */
export function repetitionsText(m: SweepManifest, cni: CniName): string {
  const per = METRICS.map((x) => [x, repetitionsOf(m, cni, x)] as const);
  return new Set(per.map(([, n]) => n)).size <= 1 ? `${cni} ${repetitionsOf(m, cni)}` : `${cni} (${per.map(([x, n]) => `${x} ${n}`).join(', ')})`;
}

/** The decision metric a look's curve judges ("connect p50 vs Services" → connect). */
export const curveMetric = (c: Pick<CurveLook, 'metric'>) => c.metric.split(' ')[0]!;

/**
 * The latency metrics an extension measures: those of the open verdicts, in METRICS order; undefined (all) when
 * they are all the points would measure anyway, or when the open verdicts are not latency metrics (enforce points).
 */
function extensionMetrics(open: readonly CurveLook[], m: SweepManifest): MetricName[] | undefined {
  if (m.settings.measure === 'enforce') return undefined;
  const all = m.settings.metrics ?? METRICS;
  const wanted = all.filter((x) => open.some((c) => curveMetric(c) === x));
  return wanted.length === 0 || wanted.length === all.length ? undefined : [...wanted];
}

/** The results of the sweep's points that ran, by data plane (a file that cannot be read counts as not run). */
function resultsOf(m: SweepManifest, dir: string): Map<CniName, RunResult[]> {
  const out = new Map<CniName, RunResult[]>();
  for (const p of m.points) {
    if (p.status !== 'ok' || !p.resultPath) continue;
    try {
      const r = readResult(join(dir, p.resultPath));
      out.set(p.cni, [...(out.get(p.cni) ?? []), r]);
    } catch {
      // not read: as if the point had not run
    }
  }
  return out;
}

/**
 * A data plane's decision curves at a look, each adjusted to the machine's reference its runs measured
 * (stats/sequential.ts adjustToReference). Runs without a reference (older result files) are judged as before:
 * those during which the machine slowed (by their reference against the sweep's usual so far) left out.
 */
function curvesOf(results: readonly RunResult[], usual: MachineUsual, cni: CniName, design: AdaptiveDesign, reps: number, seed: number, dimension: SweepDimension): CurveLook[] {
  const alpha = alphaAt(design, reps);
  const slowed = results.map((r) => machineSlowed(r, usual).slowed);
  const dim = DIMENSIONS[dimension];
  const out: CurveLook[] = [];
  for (const metric of dim.metrics) {
    const points = results.map((r, i) => runValue(r, metric, dim.x(r), slowed[i]!)).filter((p): p is RunPoint => p !== null);
    if (points.length === 0) continue;
    const d = curveDecision(points, alpha, { seed });
    // verdict.ts words its reasons for the fixed design's 95% CI; a look's CI is at its own level.
    const reason = `${dim.words(d.verdict.reason).replace(/95% CI/g, `${levelText(alpha)} CI`)}${d.openBecause ? `; open: ${d.openBecause}` : ''}; ${adjustmentText(d.adjustment, d.leftOut)}`;
    out.push({ cni, metric: `${metric} p50${dim.label}`, repetitions: reps, alpha, complexity: d.verdict.complexity, settled: d.settled, reason: d.hopeless ? `can never be decided: ${reason}` : reason });
  }
  return out;
}

/** "99.99%": a look's nominal CI level (before the t correction), with the digits that tell it from 100%. */
export const levelText = (alpha: number) => `${(100 * (1 - alpha)).toFixed(alpha < 0.001 ? 3 : 1)}%`;

export interface LookOutcome {
  look: SweepLook;
  /** The next batch (empty: the sweep is done). */
  batch: PlannedPoint[];
}

/**
 * A data plane's cells of the matrix (every policy count × every Service count), but those whose points failed on
 * their own (a capacity error fails again).
 */
function cellsOf(m: SweepManifest, cni: CniName): Cell[] {
  const failed = new Set(m.points.filter((p) => p.cni === cni && p.status === 'failed').map((p) => `${p.policies}|${p.services}`));
  const services: (number | undefined)[] = m.matrix.services ?? [undefined];
  return m.matrix.policies.flatMap((policies) => services.filter((s) => !failed.has(`${policies}|${s}`)).map((s) => ({ cni, policies, ...(s === undefined ? {} : { services: s }) })));
}

/**
 * Judge every data plane at the repetitions it has and plan the next batch: `step` more repetitions of every
 * cell of each data plane with an open verdict (the slope depends on every count of the swept dimension), except
 * cells whose points failed on their own. Pure but for reading the result files.
 */
export function reviewLook(m: SweepManifest, dir: string, now = new Date()): LookOutcome {
  const design = m.matrix.adaptive!;
  const curves: CurveLook[] = [];
  const extended: SweepLook['extended'] = [];
  const atMax: CniName[] = [];
  const ranges: Array<{ cells: Cell[]; from: number; to: number }> = [];
  const results = resultsOf(m, dir);
  const usual = machineUsual([...results.values()].flat());
  const dimension = sweepDimension(m.matrix);
  const previous = m.looks?.at(-1);
  for (const cni of m.matrix.cnis) {
    // A data plane an earlier look decided has stopped for good: judged again against a sweep whose usual machine
    // has moved on (other runs since), a curve can look open at the same level, and re-opening it would be one
    // more look than the spending plan allows (stats/sequential.ts proves the rule for curves that stop once).
    const before = previous?.curves.filter((c) => c.cni === cni) ?? [];
    if (before.length && before.every((c) => c.settled) && !previous!.extended.some((e) => e.cni === cni)) {
      curves.push(...before);
      continue;
    }
    const reps = repetitionsOf(m, cni);
    // A verdict an earlier look decided stays as decided, for the same reason, while the data plane's other
    // verdicts go on: its metric is not measured again (the extension measures only the open ones).
    const decided = before.filter((c) => c.settled);
    const judged = curvesOf(results.get(cni) ?? [], usual, cni, design, reps, m.settings.seed, dimension);
    const mine = [...judged.map((c) => decided.find((d) => d.metric === c.metric) ?? c), ...decided.filter((d) => !judged.some((c) => c.metric === d.metric))];
    curves.push(...mine);
    const open = mine.filter((c) => !c.settled);
    if (open.length === 0) continue;
    if (reps >= design.max) {
      atMax.push(cni);
      continue;
    }
    const metrics = extensionMetrics(open, m);
    const cells = cellsOf(m, cni).map((c) => (metrics ? { ...c, metrics } : c));
    if (cells.length === 0) continue;
    const to = Math.min(reps + design.step, design.max);
    extended.push({ cni, to, ...(metrics ? { metrics } : {}) });
    ranges.push({ cells, from: reps + 1, to });
  }
  const batch: PlannedPoint[] = [];
  const first = Math.min(...ranges.map((r) => r.from));
  const last = Math.max(...ranges.map((r) => r.to));
  for (let rep = first; rep <= last; rep++) {
    const cells = ranges.filter((r) => r.from <= rep && rep <= r.to).flatMap((r) => r.cells);
    batch.push(...planRepetitions(m.matrix.seed, cells, rep, rep, m.points.length + batch.length));
  }
  return { look: { at: now.toISOString(), curves, extended, atMax }, batch };
}

/** Appends a look and its batch to the manifest (one write, so a kill leaves both or neither). */
export function applyLook(m: SweepManifest, o: LookOutcome): void {
  m.looks = [...(m.looks ?? []), o.look];
  m.points.push(...o.batch.map((p): SweepPoint => ({ ...p, status: 'pending', runId: null, resultPath: null, startedAt: null, finishedAt: null, wallMs: null, error: null })));
}

/** A look after the current batch is still due: the sweep is adaptive and its last look planned more. */
export function lookDue(m: SweepManifest): boolean {
  if (!m.matrix.adaptive) return false;
  const last = m.looks?.at(-1);
  return !last || last.extended.length > 0;
}

/**
 * What may still run: points planned but not run, and — until the sweep is decided — the most the remaining looks
 * can add (every data plane still open going to the maximum). Fixed sweeps: only the former.
 */
export function pointsLeft(m: SweepManifest, pending: number): { planned: number; atMost: number; later: LaterPoints[] } {
  const design = m.matrix.adaptive;
  if (!design) return { planned: pending, atMost: pending, later: [] };
  const last = m.looks?.at(-1);
  const open = last ? last.extended : m.matrix.cnis.map((cni) => ({ cni, metrics: undefined }));
  const later = open.map((e) => ({ cni: e.cni, ...(e.metrics ? { metrics: e.metrics } : {}), repetitions: Math.max(0, design.max - repetitionsOf(m, e.cni)) })).filter((l) => l.repetitions > 0);
  const cells = m.matrix.policies.length * (m.matrix.services?.length ?? 1);
  return { planned: pending, atMost: pending + later.reduce((a, l) => a + cells * l.repetitions, 0), later };
}

/** Repetitions later looks may still add to a data plane's every cell, measuring these metrics (absent: all). */
export interface LaterPoints {
  cni: CniName;
  metrics?: MetricName[];
  repetitions: number;
}

/** One line per look for the summary: who went on, who is decided, who hit the maximum and why. */
export function describeLook(look: SweepLook, index: number, design: AdaptiveDesign): string {
  const open = look.curves.filter((c) => !c.settled);
  const head = `look ${index + 1} of at most ${lookSchedule(design).length}: ${open.length === 0 ? 'every verdict decided' : `${open.length} verdict(s) open (${open.map((c) => `${c.cni} ${c.metric}`).join(', ')})`}`;
  const ext = look.extended.length ? `; +${design.step} repetitions for ${look.extended.map((e) => `${e.cni}${e.metrics ? ` (${e.metrics.join(', ')} only)` : ''}`).join(', ')}` : '';
  const max = look.atMax.map((cni) => `\n  ${cni} reached the maximum of ${design.max} with ${open.filter((c) => c.cni === cni).map((c) => `${c.metric} open (${c.reason})`).join('; ')}`).join('');
  return `${head}${ext}${max}`;
}
