// bench report --format json: the whole analysis as one JSON document for CI users and dashboards — per CNI and
// metric the run-level points with CIs, the line (slope, CI, intercept, R²), segment costs, growth exponent,
// per-rule cost, and each verdict with its reason. Non-finite numbers become null (JSON has no NaN).
import type { Analysis } from './analyze.js';
import { counts, type SweepManifest } from '../sweep/manifest.js';
import { repetitionsOf } from '../sweep/adaptive.js';
import { METRICS } from '../results/schema.js';
import { ANALYSIS_METRICS } from './analyze.js';
import { VERDICT_RULES } from '../stats/verdict.js';
import { tailJson } from './tail-resolution.js';

export const REPORT_JSON_KIND = 'cni-bench/report';
export const REPORT_JSON_VERSION = 1;

export function reportDocument(a: Analysis) {
  return {
    kind: REPORT_JSON_KIND,
    version: REPORT_JSON_VERSION,
    generatedAt: a.generatedAt,
    sweepIds: a.sweepIds,
    runs: a.runs,
    machines: a.machines,
    backends: a.backends,
    tools: a.tools,
    probe: a.probe,
    ...(a.budgeted ? { budgeted: a.budgeted } : {}),
    topologyPlacements: a.placements,
    cpuPlacements: a.cpuPlacements,
    ciMethod: a.ciMethod,
    verdictRules: VERDICT_RULES,
    policyCounts: a.policyCounts,
    cnis: a.cnis.map((c) => ({
      cni: c.cni,
      backend: c.backend,
      model: c.model,
      policiesEnforced: c.policiesEnforced,
      stateAtMax: c.stateAtMax,
      // A metric that was not measured (no point) is left out, not listed as inconclusive.
      metrics: ANALYSIS_METRICS.filter((m) => c.metrics[m.id].points.length > 0).map((m) => {
        const x = c.metrics[m.id];
        const f = x.fit;
        return {
          id: m.id,
          label: m.label,
          unit: 'ns',
          means: m.unit,
          // A tail percentile carries its resolution; one below it has no value (tail-resolution.ts).
          ...tailJson(m.id, x),
          line: f ? { slopeNsPerPolicy: f.slope, slopeCi95: f.slopeCi95, interceptNs: f.intercept, r2: f.r2, r2Points: f.r2Points, addedOverRangeNs: f.addedOverRange, ciMethod: f.ciMethod } : null,
          segments: f?.segments ?? [],
          growthExponent: f?.exponent ?? null,
          perRule: x.perRule,
          verdict: { complexity: x.verdict.complexity, reason: x.verdict.reason, boundNs: x.verdict.boundNs, headline: x.verdict.headline, headlineReason: x.verdict.headlineReason },
          // An adaptive sweep's p50 verdict: θ of the adjustment to the machine's reference (null: not adjusted, and why).
          ...(x.adjustment ? { referenceAdjustment: x.adjustment } : {}),
        };
      }),
    })),
    ...(a.parts ? { parts: a.parts } : {}),
    ...(a.workloads.length ? { workloads: a.workloads } : {}),
    ...(a.policyCurves ? { crossovers: a.crossovers } : {}),
    services: (a.services ?? []).map((p) => ({
      cni: p.cni,
      serviceDataPlane: p.dataPlane,
      description: p.description,
      lookup: p.lookup,
      position: p.position,
      policies: p.policies,
      connectP50: p.counts,
      line: p.fit ? { slopeNsPerService: p.fit.slope, slopeCi95: p.fit.slopeCi95, interceptNs: p.fit.intercept, r2: p.fit.r2 } : null,
      segments: p.fit?.segments ?? [],
      verdict: { complexity: p.verdict.complexity, reason: p.verdict.reason, boundNs: p.verdict.boundNs },
      installMsAtMax: p.installMsAtMax,
      stateAtMax: p.stateAtMax,
    })),
    cpu: a.cpu,
    machine: a.machine,
    failures: a.failures,
    problems: a.problems,
  };
}

export function reportJson(a: Analysis): string {
  return `${JSON.stringify(reportDocument(a), (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/** `bench sweep --json`: the sweep's outcome — every point's status, and the fit per CNI and metric. */
export function sweepDocument(o: { manifest: SweepManifest; dir: string; wallMs: number; analysis: Analysis | null }) {
  const m = o.manifest;
  return {
    sweepId: m.id,
    dir: o.dir,
    status: m.status,
    wallMs: o.wallMs,
    counts: counts(m),
    points: m.points.map((p) => ({ key: p.key, status: p.status, runId: p.runId, wallMs: p.wallMs, error: p.error })),
    // Adaptive repetitions: the design, the repetitions each data plane got, and what each look decided.
    ...(m.matrix.adaptive ? { adaptive: { design: m.matrix.adaptive, repetitions: Object.fromEntries(m.matrix.cnis.map((c) => [c, repetitionsOf(m, c)])), repetitionsByMetric: Object.fromEntries(m.matrix.cnis.map((c) => [c, Object.fromEntries(METRICS.map((x) => [x, repetitionsOf(m, c, x)]))])), looks: m.looks ?? [] } } : {}),
    // A workload sweep: each data plane's verify run, and the answer per workload instead of curve fits.
    ...(m.verify ? { verify: m.verify.map((v) => ({ cni: v.cni, status: v.status, runId: v.runId, resultPath: v.resultPath, wallMs: v.wallMs, error: v.error })) } : {}),
    ...(o.analysis?.workloads.length ? { workloads: o.analysis.workloads } : {}),
    fits: o.analysis && !o.analysis.policyCurves ? undefined : o.analysis?.cnis.map((x) => ({
      cni: x.cni,
      model: x.model.name,
      metrics: Object.fromEntries(Object.entries(x.metrics).map(([k, v]) => [k, v.fit ? { slopeNsPerPolicy: v.fit.slope, slopeCi95: v.fit.slopeCi95, interceptNs: v.fit.intercept, r2: v.fit.r2, verdict: v.verdict.complexity, reason: v.verdict.reason } : null])),
    })),
  };
}
