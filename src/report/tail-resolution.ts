// A tail percentile's resolution. STANDARDS: every figure states its resolution, and one coarser than 10% of its
// value is not printed as a number. A p99 from a few hundred samples (a sample budget stopped the metric at an
// expensive point) is the second-largest of 200: its own 95% CI, which each run's summary carries, is what the
// samples leave uncertain. The resolution at a policy count is half the widest of its runs' CIs; where that is more
// than 10% of the count's value, report.md, report.html and report.json say "below resolution" instead of a number.
import { ANALYSIS_METRICS, type MetricAnalysis, type MetricId, type PointValue } from './analyze.js';

/** A figure whose resolution is coarser than this fraction of its value is not printed as a number. */
export const COARSE_FRACTION = 0.1;

/** The metrics whose figures are tail percentiles, judged here (a p50 settles long before its tail). */
export const TAIL_METRICS: ReadonlySet<MetricId> = new Set(ANALYSIS_METRICS.filter((m) => m.stat === 'p99').map((m) => m.id));

const halfWidth = (p: PointValue) => (p.ci ? (p.ci[1] - p.ci[0]) / 2 : null);

/** True where a resolution (ns, null: unknown) is coarser than 10% of the value. */
export const coarse = (value: number, resolutionNs: number | null) => resolutionNs !== null && resolutionNs > COARSE_FRACTION * Math.abs(value);

/** Half the widest of the runs' own 95% CIs at a policy count, ns; null where no run has one. */
export function tailResolutionNs(points: readonly PointValue[], policies: number): number | null {
  const halves = points.filter((p) => p.policies === policies).map(halfWidth).filter((h): h is number => h !== null);
  return halves.length ? Math.max(...halves) : null;
}

export interface TailCount {
  policies: number;
  value: number;
  resolutionNs: number | null;
  coarse: boolean;
}

/** Each policy count of a tail metric with its resolution (empty for another metric). */
export function tailCounts(id: MetricId, x: MetricAnalysis): TailCount[] {
  if (!TAIL_METRICS.has(id)) return [];
  return x.counts.map((c) => {
    const resolutionNs = tailResolutionNs(x.points, c.policies);
    return { policies: c.policies, value: c.value, resolutionNs, coarse: coarse(c.value, resolutionNs) };
  });
}

/** A tail metric's points and runs as report.json gives them: each with its resolution, a coarse one without its value. */
export function tailJson(id: MetricId, x: MetricAnalysis) {
  if (!TAIL_METRICS.has(id)) return { points: x.counts, runs: x.points };
  const by = new Map(tailCounts(id, x).map((t) => [t.policies, t]));
  return {
    points: x.counts.map((c) => {
      const t = by.get(c.policies)!;
      return { ...c, resolutionNs: t.resolutionNs, ...(t.coarse ? { value: null, belowResolution: true } : {}) };
    }),
    runs: x.points.map((p) => {
      const res = halfWidth(p);
      return { ...p, resolutionNs: res, ...(coarse(p.value, res) ? { value: null, belowResolution: true } : {}) };
    }),
  };
}

/** report.md's sentence on the tail figures below resolution (none: nothing to say). */
export function tailResolutionText(rows: ReadonlyArray<{ cni: string; label: string; counts: TailCount[] }>, us: (ns: number) => string): string[] {
  const below = rows.flatMap((r) => r.counts.filter((c) => c.coarse).map((c) => `${r.cni} ${r.label} at ${c.policies} policies (±${us(c.resolutionNs!)} µs)`));
  if (!below.length) return [];
  return [
    `Below resolution, not printed as numbers here, in report.html or report.json: ${below.join(', ')}. A tail percentile's resolution is half the widest of its runs' own 95% CIs; one more than ${COARSE_FRACTION * 100}% of the value says little (a sample budget can stop a metric at a few hundred samples, where the p99 is the second-largest of 200).`,
    '',
  ];
}
