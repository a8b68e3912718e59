// bench compare: baseline vs current, per CNI × policy count × metric, on run-level statistics (each run's
// percentile is one observation). Refuses to compare what is not comparable (other backend, model, machine
// class, policy shape) unless forced, and says why; two machines of the same class (nightly CI runners with new
// hostnames) are compared with a warning.
import { uniqueInOrder } from '../collections.js';
import type { CniName } from '../config/schema.js';
import type { EnforceMetricName, MetricName, RunResult } from '../results/schema.js';
import { compareRuns, decideRuns, DEFAULT_RUN_COMPARE, type RunCompareOptions, type RunComparison } from '../stats/compare.js';
import { runMachine } from './machine.js';
import type { InputProblem, LoadedResult } from './collect.js';
import { mdTable } from './markdown.js';

export const COMPARED: Array<{ metric: MetricName | EnforceMetricName; q: number; label: string }> = [
  { metric: 'connect', q: 0.5, label: 'connect p50' },
  { metric: 'connect', q: 0.99, label: 'connect p99' },
  { metric: 'crr', q: 0.5, label: 'CRR p50' },
  { metric: 'crr', q: 0.99, label: 'CRR p99' },
  { metric: 'rr', q: 0.5, label: 'RR p50' },
  { metric: 'rr', q: 0.99, label: 'RR p99' },
  // Enforce points (issue 15); rows appear only where both sides have them.
  { metric: 'enforce_allow_added', q: 0.5, label: 'enforce allow-added p50' },
  { metric: 'enforce_allow_removed', q: 0.5, label: 'enforce allow-removed p50' },
  { metric: 'enforce_new_pod', q: 0.5, label: 'enforce new-pod p50' },
  { metric: 'enforce_peer_joins', q: 0.5, label: 'enforce peer-joins p50' },
  { metric: 'failopen_allow_removed', q: 0.5, label: 'fail-open allow-removed p50' },
  { metric: 'failopen_new_pod', q: 0.5, label: 'fail-open new-pod p50' },
];

export interface CompareRow extends RunComparison {
  cni: CniName;
  policies: number;
  label: string;
}

export interface CompareReport {
  rows: CompareRow[];
  onlyInBaseline: string[];
  onlyInCurrent: string[];
  /** Why the two sides are not comparable (empty when they are). */
  incompatibilities: string[];
  /** Differences worth knowing that do not prevent comparing (kernel, probe sample counts). */
  notes: string[];
  forced: boolean;
  refused: boolean;
  regressions: CompareRow[];
  /** Significant slow-downs the machine's reference explains (src/stats/machine.ts): nothing is claimed about the data plane. */
  machineSlowed: CompareRow[];
  /** Whether the runs carry the machine's reference: 'all', 'some' or 'none' (files written before it existed). */
  referenceMeasured: 'all' | 'some' | 'none';
  /** Rows with fewer than options.minRepetitions runs on a side: nothing is claimed about them. */
  insufficient: CompareRow[];
  /** Warnings that do not prevent comparing (e.g. same machine class, other hostname). */
  warnings: string[];
  options: RunCompareOptions;
  problems: InputProblem[];
}

function referenceCoverage(ls: LoadedResult[]): CompareReport['referenceMeasured'] {
  const has = ls.filter((l) => l.result.status === 'ok').map((l) => Object.values(l.result.metrics).some((m) => m?.reference !== undefined));
  return has.every(Boolean) ? 'all' : has.some(Boolean) ? 'some' : 'none';
}

const keyOf = (r: RunResult) => `${r.meta.cni} @ ${r.meta.policy.count} policies`;

function differs(what: string, base: LoadedResult[], cur: LoadedResult[], f: (r: RunResult) => string): string | null {
  const b = uniqueInOrder(base.map((l) => f(l.result))).sort();
  const c = uniqueInOrder(cur.map((l) => f(l.result))).sort();
  return b.join('\n') === c.join('\n') ? null : `${what} differ: baseline ${b.join(', ')}; current ${c.join(', ')}`;
}

/** Machine class: what decides the numbers (CPU model and count, kernel is a note); not the hostname. */
const machineClass = (r: RunResult) => `${r.meta.machine.cpuModel}, ${r.meta.machine.cpus} CPUs`;
const placementOf = (r: RunResult) => (r.meta.cpuPlacement ? `${r.meta.cpuPlacement.mode}${r.meta.cpuPlacement.cpus ? ` cpus ${r.meta.cpuPlacement.cpus.join(',')}` : ''}` : 'unrecorded');

export function compatibility(base: LoadedResult[], cur: LoadedResult[]): { incompatibilities: string[]; notes: string[]; warnings: string[] } {
  const shared = new Set(base.map((l) => l.result.meta.cni).filter((c) => cur.some((l) => l.result.meta.cni === c)));
  const b = base.filter((l) => shared.has(l.result.meta.cni));
  const c = cur.filter((l) => shared.has(l.result.meta.cni));
  const incompatibilities = [
    differs('backends', b, c, (r) => r.meta.backend),
    differs('models', b, c, (r) => `${r.meta.cni}: ${r.meta.model.name}`),
    differs('machine classes', b, c, machineClass),
    differs('policy shapes', b, c, (r) => `${r.meta.policy.shape}`),
    differs('topologies', b, c, (r) => `${r.meta.topology.placement}, ${r.meta.topology.nodes} nodes`),
    differs('probe concurrency / policy match position', b, c, (r) => `concurrency ${r.meta.probe.concurrency}, match ${r.meta.policy.matchPosition}`),
  ].filter((x): x is string => x !== null);
  const notes = [differs('kernels', b, c, (r) => r.meta.machine.kernel), differs('sample counts', b, c, (r) => String(r.meta.probe.samples)), differs('tool versions', b, c, (r) => `${r.meta.tool.version}${r.meta.tool.gitCommit ? `@${r.meta.tool.gitCommit.slice(0, 12)}` : ''}`)].filter(
    (x): x is string => x !== null,
  );
  const host = differs('hostnames', b, c, (r) => r.meta.machine.hostname);
  const warnings = host && incompatibilities.every((x) => !x.startsWith('machine classes'))
    ? [`${host}. Same machine class (${uniqueInOrder(b.map((l) => machineClass(l.result))).sort().join('; ')}), so compared; run-to-run variation between two machines is larger than on one, so treat a marginal regression with care.`]
    : [];
  const placement = differs('CPU placements', b, c, placementOf);
  if (placement) notes.push(placement);
  return { incompatibilities, notes, warnings };
}

function group(results: LoadedResult[]): Map<string, RunResult[]> {
  const m = new Map<string, RunResult[]>();
  for (const l of results) {
    if (l.result.status !== 'ok') continue;
    m.set(keyOf(l.result), [...(m.get(keyOf(l.result)) ?? []), l.result]);
  }
  return m;
}

export function compareResults(base: LoadedResult[], cur: LoadedResult[], opts: Partial<RunCompareOptions> & { force?: boolean; problems?: InputProblem[] } = {}): CompareReport {
  const options: RunCompareOptions = { ...DEFAULT_RUN_COMPARE, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as RunCompareOptions;
  const { incompatibilities, notes, warnings } = compatibility(base, cur);
  const refused = incompatibilities.length > 0 && !opts.force;
  const gb = group(base);
  const gc = group(cur);
  let rows: CompareRow[] = [];
  if (!refused) {
    const keys = [...gb.keys()].filter((k) => gc.has(k));
    const sorted = keys.map((k) => ({ k, r: gb.get(k)![0]! })).sort((x, y) => x.r.meta.cni.localeCompare(y.r.meta.cni) || x.r.meta.policy.count - y.r.meta.policy.count);
    for (const { k } of sorted) {
      const b = gb.get(k)!;
      const c = gc.get(k)!;
      for (const m of COMPARED) {
        const bs = b.map((r) => r.metrics[m.metric]?.samplesNs ?? []);
        const cs = c.map((r) => r.metrics[m.metric]?.samplesNs ?? []);
        const machine = { baseline: b.map((r) => runMachine(r, m.metric, m.q)), current: c.map((r) => runMachine(r, m.metric, m.q)) };
        rows.push({ cni: b[0]!.meta.cni, policies: b[0]!.meta.policy.count, label: m.label, ...compareRuns(bs, cs, m.q, options, machine) });
      }
    }
    rows = decideRuns(rows, options);
  }
  return {
    rows,
    onlyInBaseline: [...gb.keys()].filter((k) => !gc.has(k)),
    onlyInCurrent: [...gc.keys()].filter((k) => !gb.has(k)),
    incompatibilities,
    notes,
    warnings,
    forced: Boolean(opts.force) && incompatibilities.length > 0,
    refused,
    regressions: rows.filter((r) => r.verdict === 'regression'),
    machineSlowed: rows.filter((r) => r.verdict === 'machine slowed'),
    referenceMeasured: referenceCoverage([...base, ...cur]),
    insufficient: rows.filter((r) => r.verdict === 'not enough repetitions'),
    options,
    problems: opts.problems ?? [],
  };
}

const pct = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%` : '–');
const us = (ns: number) => (Number.isFinite(ns) ? (ns / 1000).toFixed(1) : '–');
const cv = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
const pv = (p: number) => (!Number.isFinite(p) ? '–' : p < 1e-4 ? '<0.0001' : p.toFixed(4));

const share = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : '–');

/** reference change, metric ÷ reference change, CPU share, and what explains the row. */
function machineCells(x: CompareRow): string[] {
  const m = x.machine;
  if (!m) return ['not measured', '–', 'not measured', '–'];
  return [
    m.reference ? pct(m.reference.change) : 'not measured',
    m.normalized ? pct(m.normalized.change) : '–',
    m.availability ? `${share(m.availability.baseline)} → ${share(m.availability.current)}` : 'not measured',
    m.explainedBy === 'reference' ? 'the reference slowed as much' : m.explainedBy === 'availability' ? 'less of the CPU' : '–',
  ];
}

export function renderCompareMarkdown(r: CompareReport, names: { baseline: string; current: string }): string {
  const L: string[] = [];
  const status = r.refused
    ? 'NOT COMPARED'
    : r.regressions.length
      ? `${r.regressions.length} REGRESSION${r.regressions.length > 1 ? 'S' : ''}`
      : r.machineSlowed.length
        ? 'the machine slowed: not judged'
        : r.insufficient.length
          ? 'not enough repetitions to judge'
          : 'no regressions';
  L.push(`## cni-bench compare: ${status}`);
  L.push('');
  L.push(`Baseline \`${names.baseline}\` vs current \`${names.current}\`. A regression is a significant slow-down larger than ${(r.options.maxRegression * 100).toFixed(1)}% (α = ${r.options.alpha} for the whole comparison; at least ${r.options.minRepetitions} runs per side).`);
  L.push('');
  if (r.insufficient.length) {
    const pts = uniqueInOrder(r.insufficient.map((x) => `${x.cni} @ ${x.policies} (${x.baselineRuns}/${x.currentRuns} runs)`)).sort();
    L.push(`**Not enough repetitions to judge** ${pts.join('; ')}: the gate needs at least ${r.options.minRepetitions} runs per side, because run-to-run variation — not sample noise — decides whether a change is real. Re-run with \`--repetitions ${r.options.minRepetitions}\` (bench run) or \`repetitions: ${r.options.minRepetitions}\` (sweep scenario).`);
    L.push('');
  }
  if (r.warnings.length) {
    for (const x of r.warnings) L.push(`**Warning:** ${x}`);
    L.push('');
  }
  if (r.incompatibilities.length) {
    L.push(r.refused ? '**Refused: the two sides are not comparable** (use `--force` to compare anyway):' : '**Compared despite differences (--force):**');
    L.push('');
    for (const x of r.incompatibilities) L.push(`- ${x}`);
    L.push('');
  }
  if (r.notes.length) {
    L.push('Differences to keep in mind:');
    L.push('');
    for (const x of r.notes) L.push(`- ${x}`);
    L.push('');
  }
  if (r.referenceMeasured !== 'all') {
    L.push(`Machine reference: ${r.referenceMeasured === 'none' ? 'not measured (result files written before it existed, or a backend that does not measure it)' : 'not measured in some runs (files written before it existed)'}: a machine that slowed cannot be told from a data plane that did${r.referenceMeasured === 'some' ? ' where it is missing' : ''}.`);
    L.push('');
  }
  if (r.machineSlowed.length) {
    L.push('### The machine slowed (not judged)');
    L.push('');
    L.push("These rows slowed significantly, but so did the machine's reference measured in the same runs: the same operation over the client pod's loopback (no data plane on the path), or the share of the pinned CPU the probe's tasks got (less when another task competes for it or the host steals the vCPU). Nothing is claimed about the data plane; re-run on a quiet machine.");
    L.push('');
    L.push(mdTable(['CNI', 'policies', 'metric', 'baseline (µs)', 'current (µs)', 'change', 'reference change', 'metric ÷ reference', 'CPU share (b → c)', 'explained by'], r.machineSlowed.map((x) => [x.cni, String(x.policies), x.label, us(x.baseline), us(x.current), pct(x.change), ...machineCells(x)]), ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
    L.push('');
  }
  if (r.regressions.length) {
    L.push('### Regressions');
    L.push('');
    L.push(mdTable(['CNI', 'policies', 'metric', 'baseline (µs)', 'current (µs)', 'change', '95% CI'], r.regressions.map((x) => [x.cni, String(x.policies), x.label, us(x.baseline), us(x.current), `**${pct(x.change)}**`, `${pct(x.changeCi95[0])} … ${pct(x.changeCi95[1])}`]), ['l', 'r', 'l', 'r', 'r', 'r', 'r']));
    L.push('');
  }
  if (r.rows.length) {
    L.push('<details><summary>All comparisons</summary>');
    L.push('');
    L.push(
      mdTable(
        ['CNI', 'policies', 'metric', 'baseline (µs)', 'current (µs)', 'change', '95% CI', 'run-to-run CV (b/c)', 'p (Welch, 2-sided)', 'p (1-sided, Holm)', 'runs (b/c)', 'reference change', 'CPU share (b → c)', 'verdict'],
        r.rows.map((x) => [x.cni, String(x.policies), x.label, us(x.baseline), us(x.current), pct(x.change), `${pct(x.changeCi95[0])} … ${pct(x.changeCi95[1])}`, `${cv(x.baselineCv)}/${cv(x.currentCv)}`, pv(x.p), pv(x.pAdjusted), `${x.baselineRuns}/${x.currentRuns}`, machineCells(x)[0]!, machineCells(x)[2]!, x.verdict]),
        ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      ),
    );
    L.push('');
    L.push('</details>');
    L.push('');
  }
  if (r.onlyInBaseline.length) L.push(`Only in baseline (not compared): ${r.onlyInBaseline.join('; ')}`);
  if (r.onlyInCurrent.length) L.push(`Only in current (not compared): ${r.onlyInCurrent.join('; ')}`);
  if (r.problems.length) {
    L.push('');
    L.push('Skipped input files:');
    L.push('');
    for (const p of r.problems) L.push(`- \`${p.file}\`: ${p.message}`);
  }
  L.push('');
  L.push("Machine reference: beside every metric, every run measures the same operation over the client pod's loopback (no data plane on the path) and the share of the pinned CPU the probe's tasks got (their CPU time over the wall time). A significant slow-down is \"machine slowed\" instead of a regression when the reference slowed significantly and the metric ÷ reference, run by run, did not; or when the CPU share dropped significantly, by more than the threshold (a task competing for the pinned CPU, or the host stealing the vCPU: operations wait for the CPU and their own work grows, by an amount that cannot be told, so the row is not judged). These tests only ever remove regressions, so α stays the false-alarm rate.");
  L.push('');
  L.push("Method: the unit of replication is the run. Each run's percentile is one value; change = ratio of the two sides' geometric means − 1, with a 95% CI from Welch's t on the log values. A regression is tested one-sided (is current slower?): significant = Holm-adjusted one-sided p < α over all rows of this comparison, so α is the false-alarm rate of the whole gate; improvements are the same test the other way, a family of their own that never fails the gate. Samples within a run are not treated as independent evidence about the next run.");
  return `${L.join('\n')}\n`;
}
