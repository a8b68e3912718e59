// From result files to the answers: per CNI and metric, the values at each policy count, a fitted slope with its
// CI, a complexity verdict, and where CNIs' curves cross. Pure: results in, plain data out.
import { dirname, isAbsolute, relative } from 'node:path';
import { uniqueInOrder } from '../collections.js';
import { CNIS_IN_REPORT_ORDER } from '../config/cnis.js';
import type { CniName } from '../config/schema.js';
import type { EnforceMetricName, MetricName, RunResult } from '../results/schema.js';
import { findCrossovers, type Crossover } from '../stats/crossover.js';
import { fitScaling, levelsOf, type ScalingFit } from '../stats/fit.js';
import { complexityVerdict, RULE_COST_REFERENCE_NS, type Verdict } from '../stats/verdict.js';
import { hierarchicalCi, runLevelCi, type CiLevel } from '../stats/hierarchical.js';
import { sortedCopy } from '../stats/summary.js';
import type { SweepManifest } from '../sweep/manifest.js';
import { adjustmentText, DECISION_METRICS, levelText, repetitionsOf, sweepDimension, type SweepDimension } from '../sweep/adaptive.js';
import { alphaAt, MIN_UNSLOWED_RUNS, repeatedFitOf, THETA_RANGE, type ReferenceAdjustment } from '../stats/sequential.js';
import { machineSlowed, machineUsual, referenceOf } from '../results/machine.js';
import type { InputProblem, LoadedResult } from './collect.js';
import { analyzeServiceChanges, analyzeServices, type ServiceChangeRow, type ServicePlaneAnalysis } from './services.js';
import { cpuResolutionUsPerOp, cpuResolved } from '../results/cpu.js';
import { cpuSection, type CpuSection } from './cpu.js';
import { machineSection, type MachineSection } from './machine.js';
import { analyzeWorkloads, type FindingsByFile, type WorkloadAnalysis } from './workload.js';
import { budgetedPoints, type BudgetedPoint } from './sampling.js';
import type { WorkloadVerifyRecord } from '../results/workload-verify.js';

export interface AnalysisMetric {
  id: 'connect_p50' | 'connect_p99' | 'crr_p50' | 'rr_p50' | 'cpu_per_conn' | EnforceAnalysisId;
  label: string;
  metric: MetricName | EnforceMetricName;
  stat: 'p50' | 'p99' | 'cpu';
  /** What the y axis means. */
  unit: string;
}

type EnforceAnalysisId = 'enforce_allow_added_p50' | 'enforce_allow_removed_p50' | 'enforce_new_pod_p50' | 'enforce_peer_joins_p50' | 'failopen_allow_removed_p50' | 'failopen_new_pod_p50';
const ENFORCE_ANALYSIS_METRICS: AnalysisMetric[] = [
  { id: 'enforce_allow_added_p50', label: 'enforce: allow added p50', metric: 'enforce_allow_added', stat: 'p50', unit: 'time until an added allow is enforced' },
  { id: 'enforce_allow_removed_p50', label: 'enforce: allow removed p50', metric: 'enforce_allow_removed', stat: 'p50', unit: 'time until a removed allow is enforced' },
  { id: 'enforce_new_pod_p50', label: 'enforce: new pod p50', metric: 'enforce_new_pod', stat: 'p50', unit: "time until a new pod's allowed traffic works" },
  { id: 'enforce_peer_joins_p50', label: 'enforce: peer joins p50', metric: 'enforce_peer_joins', stat: 'p50', unit: 'time until a pod that joins a selector is allowed' },
  { id: 'failopen_allow_removed_p50', label: 'fail-open: allow removed p50', metric: 'failopen_allow_removed', stat: 'p50', unit: 'denied traffic still passing after an allow is removed' },
  { id: 'failopen_new_pod_p50', label: 'fail-open: new pod p50', metric: 'failopen_new_pod', stat: 'p50', unit: 'a denied peer reaching a new pod' },
];

export const ANALYSIS_METRICS: AnalysisMetric[] = [
  { id: 'connect_p50', label: 'connect p50', metric: 'connect', stat: 'p50', unit: 'latency of a new TCP connection' },
  { id: 'connect_p99', label: 'connect p99', metric: 'connect', stat: 'p99', unit: 'latency of a new TCP connection' },
  { id: 'crr_p50', label: 'CRR p50', metric: 'crr', stat: 'p50', unit: 'connect + request + response + close' },
  { id: 'rr_p50', label: 'RR p50', metric: 'rr', stat: 'p50', unit: 'request/response on an established connection' },
  { id: 'cpu_per_conn', label: 'CPU per connection', metric: 'connect', stat: 'cpu', unit: 'CPU per new connection' },
  // Enforce points (issue 15): time from the change to the first probe with the new verdict, and fail-open windows.
  ...ENFORCE_ANALYSIS_METRICS,
];
export type MetricId = AnalysisMetric['id'];

export interface PointValue {
  policies: number;
  repetition: number | null;
  runId: string;
  /** ns (CPU: ns of CPU per connection). */
  value: number;
  /** The run's own 95% CI of the percentile, when it has one. */
  ci: [number, number] | null;
  /** The run's samples were multimodal or drifted (see stability), with why. */
  unstable: string | null;
}

/** One policy count of one CNI and metric: the runs summarised at run level. */
export interface CountEstimate {
  policies: number;
  runs: number;
  /** Mean of the runs' values (percentile or CPU per connection), ns. */
  value: number;
  /** Hierarchical 95% CI (runs, then samples within runs); with one run, the within-run CI. */
  ci95: [number, number];
  level: CiLevel;
  /** All samples pooled, as if independent: the old, too-narrow view, kept for reference. */
  withinRunCi95: [number, number] | null;
  betweenRunSd: number;
  unstableRuns: number;
}

/** Per-policy cost divided by the rules a new connection walks per policy (when the model reports it). */
export interface PerRuleCost {
  rulesTraversedPerPolicy: number;
  /** The slope (where it is the headline) or the last segment, per rule. */
  nsPerRule: number;
  ci95: [number, number];
  basis: string;
  segments: Array<{ from: number; to: number; nsPerRule: number; ci95: [number, number] }>;
  referenceBandNs: [number, number];
  /** Where the figure sits against the band. */
  comparison: 'below' | 'within' | 'above';
}

export interface MetricAnalysis {
  points: PointValue[];
  /** Run-level estimate at each policy count. */
  counts: CountEstimate[];
  fit: ScalingFit | null;
  verdict: Verdict;
  perRule: PerRuleCost | null;
  /** An adaptive sweep's verdict: the adjustment to the machine's reference its look made (θ), as the look made it. */
  adjustment?: ReferenceAdjustment;
}

export interface PointFailure {
  cni: CniName;
  policies: number;
  repetition: number | null;
  stage: string;
  kind?: string;
  message: string;
  source: string;
}

export interface CniAnalysis {
  cni: CniName;
  backend: string;
  model: { name: string; description: string; enforcesPolicy: boolean };
  policiesEnforced: boolean;
  metrics: Record<MetricId, MetricAnalysis>;
  /** modelState of the run at the largest policy count (rules, identities, map entries…). */
  stateAtMax: Record<string, number | string | boolean> | null;
}

export interface AnalysisCrossover extends Crossover {
  metric: MetricId;
}

/** One part of a report mixing sweep kinds: its runs, sweeps and their directories (where a sweep.json was read). */
export interface ReportPart {
  runs: number;
  sweepIds: string[];
  dirs: string[];
}

export interface Analysis {
  generatedAt: string;
  sweepIds: string[];
  runs: number;
  machines: Array<RunResult['meta']['machine'] & { runs: number }>;
  backends: string[];
  tools: string[];
  probe: RunResult['meta']['probe'][];
  /** Points where a sample budget took fewer samples than planned (absent: none). */
  budgeted?: BudgetedPoint[];
  placements: string[];
  /** CPU placements of the runs (client, server, softirq), with why; 'unrecorded' for older result files. */
  cpuPlacements: Array<{ mode: string; cpus: number[] | null; softirq: string; reason: string; runs: number }>;
  /** How the CIs were computed, in one sentence. */
  ciMethod: string;
  policyCounts: number[];
  cnis: CniAnalysis[];
  crossovers: AnalysisCrossover[];
  /** `--services` runs: connect p50 against the Service count per CNI and service data plane. */
  services: ServicePlaneAnalysis[];
  /** `bench enforce --services` runs: time to program a Service change per data plane. */
  serviceChanges?: ServiceChangeRow[];
  /** CPU per new connection with its resolution and parts, and what each data plane adds over none. */
  cpu: CpuSection;
  /** The machine's reference across the runs, and the runs that ran on a slowed machine. */
  machine: MachineSection;
  /** Workload sweeps (`--workload`): per workload, the answer per data plane (./workload.ts); empty otherwise. */
  workloads: WorkloadAnalysis[];
  /** Some runs measured the benchmark's policy curve (not a workload): the curve sections (verdicts, fits) apply. */
  policyCurves: boolean;
  /**
   * Workload runs and policy-curve runs in one report: which sweeps (and their directories) feed which part. The
   * curves (cnis, policyCounts, crossovers) are fitted over the policy-curve runs only: a workload run's policy
   * count is its policy set's size, not a point on the benchmark's curve.
   */
  parts?: { workload: ReportPart; curves: ReportPart };
  failures: PointFailure[];
  problems: InputProblem[];
}

/**
 * The runs of a CNI's policy curves: where it was measured with Services, only those at its smallest Service count
 * (a curve against policies holds the Service count fixed; the Services section reads the rest).
 */
function policyCurveRuns(runs: LoadedResult[]): LoadedResult[] {
  const withServices = runs.filter((l) => l.result.services);
  if (withServices.length === 0) return runs;
  const without = runs.filter((l) => !l.result.services);
  if (without.length) return without;
  const least = Math.min(...withServices.map((l) => l.result.services!.count));
  return withServices.filter((l) => l.result.services!.count === least);
}

export function pointValue(r: RunResult, m: AnalysisMetric): PointValue | null {
  const x = r.metrics[m.metric];
  if (!x) return null;
  let value: number | null;
  let ci: [number, number] | null = null;
  // A CPU figure coarser than its resolution allows is no point at all (issue 20): not fitted, not charted.
  if (m.stat === 'cpu') value = x.cpu && cpuResolved(x.cpu.totalUsPerOp, cpuResolutionUsPerOp(r, x)) ? x.cpu.totalUsPerOp * 1000 : null;
  else {
    value = x.summary[m.stat];
    const c = x.summary.ci95[m.stat];
    if (c[0] !== null && c[1] !== null) ci = [c[0], c[1]];
  }
  if (value === null || !Number.isFinite(value)) return null;
  const st = m.stat === 'cpu' ? undefined : x.stability;
  return { policies: r.meta.policy.count, repetition: r.meta.repetition ?? null, runId: r.runId, value, ci, unstable: st?.flagged ? st.reason : null };
}

const Z95 = 1.959963984540054;
/** Within-run standard error of a point from its own CI. */
const seOf = (p: PointValue) => (p.ci ? (p.ci[1] - p.ci[0]) / (2 * Z95) : 0);

function countEstimates(runs: LoadedResult[], m: AnalysisMetric, points: PointValue[], seed: number, resamples?: number): CountEstimate[] {
  const byCount = new Map<number, LoadedResult[]>();
  for (const l of runs) byCount.set(l.result.meta.policy.count, [...(byCount.get(l.result.meta.policy.count) ?? []), l]);
  const out: CountEstimate[] = [];
  for (const [policies, ls] of [...byCount.entries()].sort((a, b) => a[0] - b[0])) {
    const at = points.filter((p) => p.policies === policies);
    if (at.length === 0) continue;
    const unstableRuns = at.filter((p) => p.unstable).length;
    if (m.stat === 'cpu') {
      const r = runLevelCi(at.map((p) => p.value));
      out.push({ policies, runs: r.runs, value: r.value, ci95: r.ci95, level: r.level, withinRunCi95: null, betweenRunSd: r.betweenRunSd, unstableRuns });
      continue;
    }
    const sorted = ls.map((l) => l.result.metrics[m.metric]?.samplesNs ?? []).filter((x) => x.length > 0).map((x) => sortedCopy(x));
    const h = hierarchicalCi(sorted, m.stat === 'p50' ? 0.5 : 0.99, { seed: seed + policies, resamples });
    out.push({ policies, runs: h.runs, value: h.value, ci95: h.ci95, level: h.level, withinRunCi95: h.withinRunCi95, betweenRunSd: h.betweenRunSd, unstableRuns });
  }
  return out;
}

/** Rules a new connection walks per filler policy, as the model reports it (Calico-family models). */
function rulesPerPolicy(runs: LoadedResult[]): number | null {
  for (const l of runs) {
    const v = l.result.modelState.rulesTraversedPerPolicy;
    if (typeof v === 'number' && v > 0) return v;
  }
  return null;
}

export function perRuleCost(fit: ScalingFit | null, verdict: Verdict, rules: number | null): PerRuleCost | null {
  if (!fit || rules === null || verdict.complexity === 'O(1)' || verdict.headline === 'no trend') return null;
  const segs = fit.segments.map((s) => ({ from: s.from, to: s.to, nsPerRule: s.nsPerPolicy / rules, ci95: [s.ci95[0] / rules, s.ci95[1] / rules] as [number, number] }));
  const useSlope = verdict.headline === 'slope';
  const last = segs[segs.length - 1];
  const nsPerRule = useSlope ? fit.slope / rules : last?.nsPerRule ?? Number.NaN;
  const ci95: [number, number] = useSlope ? [fit.slopeCi95[0] / rules, fit.slopeCi95[1] / rules] : last?.ci95 ?? [Number.NaN, Number.NaN];
  const [lo, hi] = RULE_COST_REFERENCE_NS;
  return {
    rulesTraversedPerPolicy: rules,
    nsPerRule,
    ci95,
    basis: useSlope ? 'slope of the line' : `marginal cost of the last segment (${last?.from}–${last?.to} policies)`,
    segments: segs,
    referenceBandNs: RULE_COST_REFERENCE_NS,
    comparison: ci95[1] < lo ? 'below' : ci95[0] > hi ? 'above' : 'within',
  };
}


export interface AnalyzeOptions {
  seed?: number;
  resamples?: number;
  manifests?: Array<{ dir: string; manifest: SweepManifest }>;
  /** Workload sweeps' verify records (what the policy set means on each data plane). */
  verifies?: WorkloadVerifyRecord[];
  /** Findings read from the workload files at report time, for verify records written before they were stored. */
  findings?: FindingsByFile;
  problems?: InputProblem[];
  now?: Date;
}

export function analyze(loaded: LoadedResult[], opts: AnalyzeOptions = {}): Analysis {
  const ok = loaded.filter((l) => l.result.status === 'ok');
  const failures: PointFailure[] = [];
  for (const l of loaded.filter((x) => x.result.status === 'failed')) {
    const e = l.result.errors.find((x) => x.stage !== 'teardown') ?? l.result.errors[0];
    failures.push({ cni: l.result.meta.cni, policies: l.result.meta.policy.count, repetition: l.result.meta.repetition ?? null, stage: e?.stage ?? 'unknown', kind: e?.kind, message: e?.message ?? '', source: l.path });
  }
  // Points a manifest knows failed before writing any result (e.g. the backend could not be created).
  for (const { dir, manifest } of opts.manifests ?? []) {
    for (const p of manifest.points) {
      if (p.status === 'failed' && !p.resultPath && p.error) failures.push({ cni: p.cni, policies: p.policies, repetition: p.repetition, stage: p.error.stage, kind: p.error.kind, message: p.error.message, source: dir });
    }
  }

  const spent = spentAlpha(opts.manifests ?? [], 'policies');
  const spentOnServices = spentAlpha(opts.manifests ?? [], 'services');
  const usual = machineUsual(ok.map((l) => l.result));
  const slowed = new Set(ok.filter((l) => machineSlowed(l.result, usual).slowed).map((l) => l.result.runId));
  // A report over workload sweeps and policy sweeps: the curves are the policy sweeps' alone (see Analysis.parts).
  const mixed = ok.some((l) => l.result.meta.workload) && ok.some((l) => !l.result.meta.workload);
  const curveOk = mixed ? ok.filter((l) => !l.result.meta.workload) : ok;
  const byCni = new Map<CniName, LoadedResult[]>();
  for (const l of curveOk) byCni.set(l.result.meta.cni, [...(byCni.get(l.result.meta.cni) ?? []), l]);
  const cnis: CniAnalysis[] = [];
  for (const cni of CNIS_IN_REPORT_ORDER.filter((c) => byCni.has(c))) {
    const runs = policyCurveRuns(byCni.get(cni)!);
    const metrics = {} as Record<MetricId, MetricAnalysis>;
    const rules = rulesPerPolicy(runs);
    for (const m of ANALYSIS_METRICS) {
      const points = runs.map((l) => pointValue(l.result, m)).filter((p): p is PointValue => p !== null).sort((a, b) => a.policies - b.policies || (a.repetition ?? 0) - (b.repetition ?? 0));
      const xy = points.map((p) => ({ x: p.policies, y: p.value, se: seOf(p) }));
      const fitOpts = { seed: opts.seed ?? 1, resamples: opts.resamples };
      // A verdict an adaptive sweep decided on is judged as it was: the repeated CI of the data plane's last look.
      const alpha = m.stat === 'p50' && (DECISION_METRICS as readonly string[]).includes(m.metric) ? spent.get(cni)?.get(m.metric) : undefined;
      // …adjusted, as its looks were, to the machine's reference each run measured (stats/sequential.ts
      // adjustToReference; runs without one: those on a slowed machine left out). The point values stay raw.
      const byRun = new Map(runs.map((l) => [l.result.runId, l.result]));
      const judged = alpha === undefined ? null : repeatedFitOf(points.map((p, i) => {
        const ref = m.stat === 'p50' ? referenceOf(byRun.get(p.runId)!, m.metric, 0.5) : null;
        return { ...xy[i]!, slowed: slowed.has(p.runId), ...(ref === null ? {} : { reference: ref }) };
      }), alpha, fitOpts);
      const fit = judged ? judged.fit : fitScaling(xy, fitOpts);
      const judgedVerdict = complexityVerdict(fit);
      const verdict = judged ? { ...judgedVerdict, reason: `${judgedVerdict.reason}; ${adjustmentText(judged.adjustment, judged.leftOut)}` } : judgedVerdict;
      const counts = countEstimates(runs, m, points, opts.seed ?? 1, opts.resamples);
      metrics[m.id] = { points, counts, fit, verdict, perRule: m.stat === 'cpu' ? null : perRuleCost(fit, verdict, rules), ...(judged ? { adjustment: judged.adjustment } : {}) };
    }
    const first = runs[0]!.result;
    const atMax = runs.reduce((a, b) => (b.result.meta.policy.count > a.result.meta.policy.count ? b : a));
    cnis.push({ cni, backend: first.meta.backend, model: first.meta.model, policiesEnforced: runs.every((l) => l.result.policiesEnforced), metrics, stateAtMax: atMax.result.modelState });
  }

  const crossovers: AnalysisCrossover[] = [];
  for (const m of ANALYSIS_METRICS) {
    for (let i = 0; i < cnis.length; i++) {
      for (let j = i + 1; j < cnis.length; j++) {
        const a = cnis[i]!;
        const b = cnis[j]!;
        const band = (c: CniAnalysis) => countBands(c.metrics[m.id].counts);
        for (const x of findCrossovers(a.cni, band(a), b.cni, band(b))) crossovers.push({ metric: m.id, ...x });
      }
    }
  }

  const machineKey = (r: RunResult) => `${r.meta.machine.hostname}|${r.meta.machine.kernel}|${r.meta.machine.cpuModel}|${r.meta.machine.cpus}`;
  const machines = new Map<string, Analysis['machines'][number]>();
  for (const l of loaded) {
    const k = machineKey(l.result);
    const m = machines.get(k);
    if (m) m.runs++;
    else machines.set(k, { ...l.result.meta.machine, runs: 1 });
  }
  const placements = new Map<string, Analysis['cpuPlacements'][number]>();
  for (const l of loaded) {
    const p = l.result.meta.cpuPlacement ?? { mode: 'unrecorded', cpus: null, softirq: 'unrecorded', reason: 'result file written before placement was recorded' };
    const k = JSON.stringify(p);
    const e = placements.get(k);
    if (e) e.runs++;
    else placements.set(k, { ...p, runs: 1 });
  }
  const probeKeys = new Map<string, RunResult['meta']['probe']>();
  for (const l of loaded) probeKeys.set(JSON.stringify(l.result.meta.probe), l.result.meta.probe);
  return {
    generatedAt: (opts.now ?? new Date()).toISOString(),
    sweepIds: uniqueInOrder(loaded.map((l) => l.result.meta.sweepId).filter((s): s is string => typeof s === 'string')).sort(),
    runs: loaded.length,
    machines: [...machines.values()],
    backends: uniqueInOrder(loaded.map((l) => l.result.meta.backend)).sort(),
    tools: uniqueInOrder(loaded.map((l) => `${l.result.meta.tool.name} ${l.result.meta.tool.version}${l.result.meta.tool.gitCommit ? ` (${l.result.meta.tool.gitCommit.slice(0, 12)})` : ''}`)).sort(),
    probe: [...probeKeys.values()],
    ...(budgetedPoints(ok).length ? { budgeted: budgetedPoints(ok) } : {}),
    placements: uniqueInOrder(loaded.map((l) => l.result.meta.topology.placement)).sort(),
    cpuPlacements: [...placements.values()],
    ciMethod: [CI_METHOD, ...(spent.size ? [adaptiveCiNote(spent, 'p50 verdicts', ['connect', 'crr', 'rr'])] : []), ...(spentOnServices.size ? [adaptiveCiNote(spentOnServices, 'Services verdicts (connect p50 against the Service count)', ['connect'])] : [])].join(' '),
    policyCounts: uniqueInOrder(curveOk.map((l) => l.result.meta.policy.count)).sort((a, b) => a - b),
    cnis,
    crossovers,
    services: analyzeServices(ok, { seed: opts.seed, resamples: opts.resamples, spent: new Map([...spentOnServices].map(([c, a]) => [c, a.get('connect') ?? 1])), slowed }),
    serviceChanges: analyzeServiceChanges(ok),
    cpu: cpuSection(ok),
    machine: machineSection(ok.map((l) => l.result)),
    policyCurves: ok.some((l) => !l.result.meta.workload),
    workloads: analyzeWorkloads(ok.map((l) => l.result), opts.verifies ?? [], { seed: opts.seed, resamples: opts.resamples, findings: opts.findings }),
    ...(mixed ? { parts: { workload: partOf(ok.filter((l) => l.result.meta.workload), opts.manifests ?? []), curves: partOf(curveOk, opts.manifests ?? []) } } : {}),
    failures: failures.sort((a, b) => a.cni.localeCompare(b.cni) || a.policies - b.policies),
    problems: opts.problems ?? [],
  };
}

/** A part's runs, sweeps and directories: a sweep's where its sweep.json was read, else the one above each point's. */
function partOf(runs: readonly LoadedResult[], manifests: ReadonlyArray<{ dir: string; manifest: SweepManifest }>): ReportPart {
  const sweepIds = uniqueInOrder(runs.map((l) => l.result.meta.sweepId).filter((s): s is string => typeof s === 'string')).sort();
  const dirOf = (l: LoadedResult) => manifests.find((m) => m.manifest.id === l.result.meta.sweepId)?.dir ?? dirname(dirname(l.path));
  // Relative to where the report is made when inside it (a committed report names no machine's paths).
  const shown = (d: string) => {
    const r = relative(process.cwd(), d);
    return r.startsWith('..') || isAbsolute(r) ? d : r || '.';
  };
  return { runs: runs.length, sweepIds, dirs: uniqueInOrder(runs.map((l) => shown(dirOf(l)))).sort() };
}

/**
 * α each data plane's last look spent on each of its curves along a dimension, from adaptive sweeps' manifests (the
 * smallest where several sweeps hold it): a metric's own, since an extension measures only the open metrics and a
 * metric decided early stopped at fewer repetitions and a larger α.
 */
function spentAlpha(manifests: Array<{ manifest: SweepManifest }>, dimension: SweepDimension): Map<CniName, Map<string, number>> {
  const out = new Map<CniName, Map<string, number>>();
  for (const { manifest: m } of manifests) {
    if (!m.matrix.adaptive || sweepDimension(m.matrix) !== dimension) continue;
    for (const cni of m.matrix.cnis) {
      const mine = out.get(cni) ?? new Map<string, number>();
      for (const metric of DECISION_METRICS) mine.set(metric, Math.min(alphaAt(m.matrix.adaptive, repetitionsOf(m, cni, metric)), mine.get(metric) ?? 1));
      out.set(cni, mine);
    }
  }
  return out;
}

/** "calico 99.9%", or per metric where they stopped at different looks ("calico connect 99.0%, rr 99.9%"). */
function spentText(cni: CniName, alphas: Map<string, number>, metrics: readonly string[]): string {
  const levels = metrics.map((x) => [x, levelText(alphas.get(x) ?? 1)] as const);
  return new Set(levels.map(([, l]) => l)).size <= 1 ? `${cni} ${levels[0]?.[1] ?? ''}` : `${cni} ${levels.map(([x, l]) => `${x} ${l}`).join(', ')}`;
}

const adaptiveCiNote = (spent: Map<CniName, Map<string, number>>, what: string, metrics: readonly string[]) =>
  `Adaptive repetitions: the sweep stopped each data plane once its ${what} were decided (an extension measures only the metrics still open, so each verdict stops at its own look), so those verdicts' slope, segment and exponent CIs are repeated CIs at the level its last look on them spent (${[...spent].map(([c, a]) => spentText(c, a, metrics)).join('; ')}; t-corrected, with each count's spread at least the data plane's pooled relative spread), which keep 95% coverage however early a verdict stopped. Those fits, as the sweep's looks, adjust every run's value to the machine's reference measured in the same run: value × exp(−θ (log reference − its mean over the curve's runs)), θ estimated per curve within counts (clamped to [${THETA_RANGE.join(', ')}]; one degree of freedom less in the t correction), so a machine mode the reference shares is taken out of the run-to-run spread (θ per curve in each verdict's reason; a curve whose reference trends with the count is not adjusted). Runs without a reference (older result files) are judged as before: those on a slowed machine left out wherever their count keeps at least ${MIN_UNSLOWED_RUNS} other runs. The point values are the runs' own, not adjusted.`;

export const CI_METHOD =
  "Point values are the mean of the runs' percentiles at a policy count; their 95% CIs come from a hierarchical bootstrap (resample the runs, then the samples within each run), widened by √(R/(R−1))·t(R−1)/z for R runs; a single run's CI is its within-run CI and cannot include run-to-run variation. Slope, segment and exponent CIs resample the runs within each count and add each run's within-run noise.";

/** Run-level value and hierarchical CI at each count, as bands (a count without a CI is its value). */
export function countBands(counts: CountEstimate[]): Array<{ x: number; median: number; low: number; high: number; n: number }> {
  return counts.map((e) => ({
    x: e.policies,
    median: e.value,
    low: Number.isFinite(e.ci95[0]) ? Math.min(e.ci95[0], e.value) : e.value,
    high: Number.isFinite(e.ci95[1]) ? Math.max(e.ci95[1], e.value) : e.value,
    n: e.runs,
  }));
}

/** Median of the repetitions at each policy count, for tables and charts. */
export function medianByCount(points: PointValue[]): Array<{ policies: number; median: number; low: number; high: number; n: number }> {
  return levelsOf(points.map((p) => ({ x: p.policies, y: p.value }))).map((l) => {
    const at = points.filter((p) => p.policies === l.x);
    const lows = at.map((p) => p.ci?.[0] ?? p.value);
    const highs = at.map((p) => p.ci?.[1] ?? p.value);
    return { policies: l.x, median: l.median, low: Math.min(...lows), high: Math.max(...highs), n: l.values.length };
  });
}
