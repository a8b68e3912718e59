// The PerfData JSON that perfdash (ClusterLoader2's dashboard) reads: {version, dataItems: [{data, unit, labels}]}.
// One item per CNI × policy count × metric with percentile buckets (µs; CPU per connection with its resolution),
// plus one per CNI × metric for the slope.
import { ANALYSIS_METRICS, medianByCount, type Analysis } from './analyze.js';
import { tailCounts } from './tail-resolution.js';

export interface PerfDataItem {
  data: Record<string, number>;
  unit: string;
  labels: Record<string, string>;
}

export interface PerfData {
  version: string;
  dataItems: PerfDataItem[];
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

export function toPerfdash(a: Analysis): PerfData {
  const items: PerfDataItem[] = [];
  for (const c of a.cnis) {
    const common = { CNI: c.cni, Backend: c.backend, Model: c.model.name };
    // A p99 below resolution (tail-resolution.ts) is no Perc99.
    const coarseP99 = new Set(tailCounts('connect_p99', c.metrics.connect_p99).filter((t) => t.coarse).map((t) => t.policies));
    const p99 = new Map(medianByCount(c.metrics.connect_p99.points).filter((m) => !coarseP99.has(m.policies)).map((m) => [m.policies, m.median]));
    for (const [metric, p50id] of [['connect', 'connect_p50'], ['crr', 'crr_p50'], ['rr', 'rr_p50']] as const) {
      const med = new Map(medianByCount(c.metrics[p50id].points).map((m) => [m.policies, m.median]));
      for (const [policies, v] of med) {
        const data: Record<string, number> = { Perc50: round(v / 1000) };
        if (metric === 'connect' && p99.has(policies)) data.Perc99 = round(p99.get(policies)! / 1000);
        items.push({ data, unit: 'us', labels: { ...common, Metric: metric, Policies: String(policies) } });
      }
    }
    for (const [policies, v] of new Map(medianByCount(c.metrics.cpu_per_conn.points).map((m) => [m.policies, m.median]))) {
      // Only resolved runs are points (analyze.ts); the point's coarsest resolution goes with it (issue 20).
      const res = a.cpu.rows.find((r) => r.cni === c.cni && r.policies === policies)?.resolutionUs;
      const data: Record<string, number> = { Value: round(v / 1000) };
      if (res !== undefined && Number.isFinite(res)) data.Resolution = round(res);
      items.push({ data, unit: 'us', labels: { ...common, Metric: 'cpu_per_connection', Policies: String(policies) } });
    }
    for (const m of ANALYSIS_METRICS) {
      const f = c.metrics[m.id].fit;
      if (!f) continue;
      items.push({ data: { Slope: round(f.slope), SlopeCI95Low: round(f.slopeCi95[0]), SlopeCI95High: round(f.slopeCi95[1]), R2: round(f.r2) }, unit: 'ns/policy', labels: { ...common, Metric: `${m.id}_slope`, Verdict: c.metrics[m.id].verdict.complexity } });
    }
  }
  return { version: 'v1', dataItems: items };
}
