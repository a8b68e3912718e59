// From result files to the answers: per CNI and metric, the values at each policy count, a fitted slope with its
// CI, a complexity verdict, and where CNIs' curves cross. Pure: results in, plain data out.
import type { CniName } from '../config/schema.js';
import type { EnforceMetricName, MetricName, RunResult } from '../results/schema.js';
import { complexityVerdict, findCrossovers, fitScaling, levelsOf, type Crossover, type ScalingFit, type Verdict } from '../stats/fit.js';
import type { SweepManifest } from '../sweep/manifest.js';
import type { InputProblem, LoadedResult } from './collect.js';

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
}

export interface MetricAnalysis {
  points: PointValue[];
  fit: ScalingFit | null;
  verdict: Verdict;
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

export interface Analysis {
  generatedAt: string;
  sweepIds: string[];
  runs: number;
  machines: Array<RunResult['meta']['machine'] & { runs: number }>;
  backends: string[];
  tools: string[];
  probe: RunResult['meta']['probe'][];
  placements: string[];
  policyCounts: number[];
  cnis: CniAnalysis[];
  crossovers: AnalysisCrossover[];
  failures: PointFailure[];
  problems: InputProblem[];
}

export function pointValue(r: RunResult, m: AnalysisMetric): PointValue | null {
  const x = r.metrics[m.metric];
  if (!x) return null;
  let value: number | null;
  let ci: [number, number] | null = null;
  if (m.stat === 'cpu') value = x.cpu ? x.cpu.totalUsPerOp * 1000 : null;
  else {
    value = x.summary[m.stat];
    const c = x.summary.ci95[m.stat];
    if (c[0] !== null && c[1] !== null) ci = [c[0], c[1]];
  }
  if (value === null || !Number.isFinite(value)) return null;
  return { policies: r.meta.policy.count, repetition: r.meta.repetition ?? null, runId: r.runId, value, ci };
}

const uniq = <T>(xs: T[]) => [...new Set(xs)];
const CNI_ORDER: CniName[] = ['none', 'flannel', 'canal', 'calico', 'calico-nftables', 'calico-ebpf', 'cilium'];

export interface AnalyzeOptions {
  seed?: number;
  resamples?: number;
  manifests?: Array<{ dir: string; manifest: SweepManifest }>;
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

  const byCni = new Map<CniName, LoadedResult[]>();
  for (const l of ok) byCni.set(l.result.meta.cni, [...(byCni.get(l.result.meta.cni) ?? []), l]);
  const cnis: CniAnalysis[] = [];
  for (const cni of CNI_ORDER.filter((c) => byCni.has(c))) {
    const runs = byCni.get(cni)!;
    const metrics = {} as Record<MetricId, MetricAnalysis>;
    for (const m of ANALYSIS_METRICS) {
      const points = runs.map((l) => pointValue(l.result, m)).filter((p): p is PointValue => p !== null).sort((a, b) => a.policies - b.policies || (a.repetition ?? 0) - (b.repetition ?? 0));
      const fit = fitScaling(points.map((p) => ({ x: p.policies, y: p.value })), { seed: opts.seed ?? 1, resamples: opts.resamples });
      metrics[m.id] = { points, fit, verdict: complexityVerdict(fit) };
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
        const band = (c: CniAnalysis) => medianByCount(c.metrics[m.id].points).map((l) => ({ x: l.policies, median: l.median, low: l.low, high: l.high }));
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
  const probeKeys = new Map<string, RunResult['meta']['probe']>();
  for (const l of loaded) probeKeys.set(JSON.stringify(l.result.meta.probe), l.result.meta.probe);
  return {
    generatedAt: (opts.now ?? new Date()).toISOString(),
    sweepIds: uniq(loaded.map((l) => l.result.meta.sweepId).filter((s): s is string => typeof s === 'string')).sort(),
    runs: loaded.length,
    machines: [...machines.values()],
    backends: uniq(loaded.map((l) => l.result.meta.backend)).sort(),
    tools: uniq(loaded.map((l) => `${l.result.meta.tool.name} ${l.result.meta.tool.version}${l.result.meta.tool.gitCommit ? ` (${l.result.meta.tool.gitCommit.slice(0, 12)})` : ''}`)).sort(),
    probe: [...probeKeys.values()],
    placements: uniq(loaded.map((l) => l.result.meta.topology.placement)).sort(),
    policyCounts: uniq(ok.map((l) => l.result.meta.policy.count)).sort((a, b) => a - b),
    cnis,
    crossovers,
    failures: failures.sort((a, b) => a.cni.localeCompare(b.cni) || a.policies - b.policies),
    problems: opts.problems ?? [],
  };
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
