// The sweep side of scripts/adaptive-replay.mjs (issue 25): reads a sweep directory (sweep.json and every run's
// result.json) into the replay's data planes, with each run's own wall time, and replays a sample budget on the
// recorded samples: a metric measured in R interleaved rounds kept its samples in round order, so a budget of B ms
// is replayed by keeping the first round whole and the first samples of every later round, as src/run/interleave.ts
// would have taken them; the run's wall time loses the time those samples took (their measured window).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const Z95 = 1.959963984540054;

/** Order-statistic CI of a median (binomial), as a within-run standard error: the replay cannot rerun the bootstrap. */
function medianOf(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const q = (p) => {
    const h = (n - 1) * p;
    const lo = Math.floor(h);
    return s[lo] + (h - lo) * ((s[Math.min(n - 1, lo + 1)] ?? s[lo]) - s[lo]);
  };
  const k = Math.round((Z95 * Math.sqrt(n)) / 2);
  const lo = s[Math.max(0, Math.floor(n / 2) - k)];
  const hi = s[Math.min(n - 1, Math.ceil(n / 2) + k)];
  return { p50: q(0.5), se: (hi - lo) / (2 * Z95) };
}

/** The samples a budget keeps of a metric's samples measured in `rounds` rounds (interleave.ts's budgetedSamples + reshare). */
export function budgeted(samples, rounds, budgetMs, wallNs, lib) {
  if (budgetMs === null || rounds <= 1) return { kept: samples, savedNs: 0 };
  const n = samples.length;
  const share = (total, k, parts) => Math.floor(total / parts) + (k < total % parts ? 1 : 0);
  const chunks = [];
  let at = 0;
  for (let k = 0; k < rounds; k++) {
    const len = share(n, k, rounds);
    chunks.push(samples.slice(at, at + len));
    at += len;
  }
  const perOp = wallNs / n;
  const total = lib.budgetedSamples(n, budgetMs, { ops: chunks[0].length, wallNs: perOp * chunks[0].length });
  if (total >= n) return { kept: samples, savedNs: 0 };
  const left = total - chunks[0].length;
  const kept = [...chunks[0], ...chunks.slice(1).flatMap((c, k) => c.slice(0, Math.max(0, share(left, k, rounds - 1))))];
  return { kept, savedNs: (n - kept.length) * perOp };
}

/**
 * The replay's data planes from a sweep directory: per data plane, per decision metric, the runs (repetition,
 * count, p50 and its within-run se, the machine's reference p50 beside it and whether it was slowed by it), and
 * per run its wall time under the budget. `lib.oldRule`: no reference (the looks leave slowed runs out instead).
 * `reported`: the verdicts to compare with (a report.json's, e.g. the committed example's).
 */
export function planesFromSweep(dir, { budgetMs, reported, lib }) {
  const m = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
  const runs = m.points.filter((p) => p.status === 'ok' && p.resultPath).map((p) => ({ p, r: JSON.parse(readFileSync(join(dir, p.resultPath), 'utf8')) }));
  const usual = lib.machineUsual(runs.map((x) => x.r));
  // The swept dimension (src/sweep/adaptive.ts sweepDimension): the Service count, or the policy count.
  const xOf = (p) => ((m.matrix.services?.length ?? 0) > 1 && m.matrix.policies.length <= 1 ? p.services : p.policies);
  const metrics = (m.matrix.services?.length ?? 0) > 1 && m.matrix.policies.length <= 1 ? lib.SERVICE_DECISION_METRICS : lib.DECISION_METRICS;
  const wallS = new Map();
  const planes = m.matrix.cnis.map((cni) => {
    const mine = runs.filter((x) => x.p.cni === cni);
    const curves = metrics.map((metric) => {
      const rows = mine.flatMap(({ p, r }) => {
        const mr = r.metrics[metric];
        if (!mr || !mr.samplesNs?.length) return [];
        const { kept, savedNs } = budgeted(mr.samplesNs, r.meta.probe.rounds ?? 1, budgetMs, mr.wallNs, lib);
        wallS.set(r.runId, (wallS.get(r.runId) ?? p.wallMs / 1000) - savedNs / 1e9);
        const { p50, se } = medianOf(kept);
        const reference = lib.oldRule ? null : lib.referenceOf(r, metric, 0.5);
        return [{ rep: p.repetition, x: xOf(p), y: p50, se, slowed: lib.machineSlowed(r, usual).slowed, runId: r.runId, samples: kept.length, ...(reference === null ? {} : { reference }) }];
      });
      return { metric: `${metric}_p50`, reported: reported?.(cni, `${metric}_p50`), runs: rows };
    }).filter((c) => c.runs.length > 0);
    // Per-metric extension (an extension measures only the open metrics): a run's wall split into its fixed part and
    // each metric's, so a repetition beyond a metric's stop costs the fixed part and the open metrics alone.
    const splitOf = new Map(mine.map((x) => [x.r.runId, metricSplit(x.r, x.p, wallS.get(x.r.runId) ?? x.p.wallMs / 1000, budgetMs, lib)]));
    const wallOfMetrics = (stops) => mine.filter((x) => x.p.repetition <= Math.max(...Object.values(stops))).reduce((a, x) => {
      const s = splitOf.get(x.r.runId);
      return a + s.fixedS + Object.entries(s.metricS).reduce((b, [metric, v]) => b + ((stops[`${metric}_p50`] ?? Infinity) >= x.p.repetition ? v : 0), 0);
    }, 0);
    return { cni, curves, wallOf: (n) => mine.filter((x) => x.p.repetition <= n).reduce((a, x) => a + (wallS.get(x.r.runId) ?? x.p.wallMs / 1000), 0), wallOfMetrics };
  });
  return { manifest: m, planes };
}

/**
 * A run's wall (s, after the budget) split into each latency metric's part and the fixed rest (set-up, install,
 * teardown). The result's own timings.metricMs where recorded; otherwise each metric's measured window and its
 * reference's, plus an even share of the rest of the measuring time (probe starts: the metrics have as many rounds each).
 */
export function metricSplit(r, p, wallS, budgetMs, lib) {
  const names = ['connect', 'crr', 'rr'].filter((x) => r.metrics[x]);
  const saved = (x) => (r.metrics[x].samplesNs?.length ? budgeted(r.metrics[x].samplesNs, r.meta.probe.rounds ?? 1, budgetMs, r.metrics[x].wallNs, lib).savedNs / 1e9 : 0);
  let metricS;
  if (r.timings.metricMs) metricS = Object.fromEntries(names.map((x) => [x, (r.timings.metricMs[x] ?? 0) / 1000 - saved(x)]));
  else {
    const window = (x) => (r.metrics[x].wallNs + (r.metrics[x].reference?.wallNs ?? 0)) / 1e9;
    const rest = Math.max(0, (r.timings.measureMs ?? 0) / 1000 - names.reduce((a, x) => a + window(x), 0));
    metricS = Object.fromEntries(names.map((x) => [x, window(x) + rest / names.length - saved(x)]));
  }
  return { fixedS: wallS - Object.values(metricS).reduce((a, b) => a + b, 0), metricS };
}
