// Time left in a sweep, from the walls of its finished points. A point costs its fixed part (set-up, policy install,
// teardown: its wall less its metrics' time) plus each metric it measures (the result's timings.metricMs), both
// taken from finished points of the same cell; so an extension that measures only the open metrics is estimated
// with only theirs. Points finished before results recorded the split count with their whole wall.
import { METRICS, type MetricName } from '../results/schema.js';
import type { LaterPoints } from './adaptive.js';
import type { SweepManifest, SweepPoint } from './manifest.js';
import type { Cell } from './plan.js';

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const finished = (p: SweepPoint) => (p.status === 'ok' || p.status === 'failed') && p.wallMs !== null;
const sameCell = (p: SweepPoint, c: Cell) => p.cni === c.cni && p.policies === c.policies && p.services === c.services;

/** Estimated wall time of one point of this cell measuring its metrics (absent: all), ms; null before any point finished. */
export function pointEstimateMs(m: SweepManifest, cell: Cell): number | null {
  const done = m.points.filter(finished);
  const here = done.filter((p) => sameCell(p, cell));
  const split = here.filter((p) => p.status === 'ok' && p.metricMs && Object.keys(p.metricMs).length > 0);
  const wanted: readonly MetricName[] = cell.metrics ?? m.settings.metrics ?? METRICS;
  if (split.length) {
    const fixed = mean(split.map((p) => p.wallMs! - Object.values(p.metricMs!).reduce((a, b) => a + (b ?? 0), 0)))!;
    const per = wanted.map((x) => mean(split.map((p) => p.metricMs![x]).filter((v): v is number => v !== undefined)));
    if (per.every((v) => v !== null)) return fixed + per.reduce((a, b) => a! + b!, 0)!;
  }
  return mean(here.map((p) => p.wallMs!)) ?? mean(done.map((p) => p.wallMs!));
}

/** The cells of a data plane (every policy count × Service count), measuring these metrics. */
const cellsOf = (m: SweepManifest, l: LaterPoints): Cell[] =>
  m.matrix.policies.flatMap((policies) => (m.matrix.services ?? [undefined]).map((s) => ({ cni: l.cni, policies, ...(s === undefined ? {} : { services: s }), ...(l.metrics ? { metrics: l.metrics } : {}) })));

/**
 * Time left: the planned points' (etaMs), and with what later looks may add at most (etaMaxMs); null until a point
 * has finished.
 */
export function timeLeftMs(m: SweepManifest, pending: readonly SweepPoint[], later: readonly LaterPoints[]): { etaMs: number | null; etaMaxMs: number | null } {
  const sum = (xs: Array<number | null>) => (xs.some((x) => x === null) ? null : xs.reduce((a, b) => a! + b!, 0));
  const etaMs = sum(pending.map((p) => pointEstimateMs(m, p)));
  const more = sum(later.flatMap((l) => cellsOf(m, l).map((c) => { const e = pointEstimateMs(m, c); return e === null ? null : e * l.repetitions; })));
  return { etaMs, etaMaxMs: etaMs === null || more === null ? null : etaMs + more };
}
