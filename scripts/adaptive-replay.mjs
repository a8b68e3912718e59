#!/usr/bin/env node
// Replays an adaptive sweep offline (issue 25): takes every run's p50 values of the decision metrics from a
// committed report (report.json keeps each run's value, within-run CI and repetition number), and simulates the
// adaptive procedure of src/stats/sequential.ts + src/sweep/adaptive.ts by taking, at each look, the runs with
// repetition ≤ the look's repetitions. Prints, per design, the repetitions each data plane got, its verdicts at
// the stop, the runs the sweep would have made and whether every verdict is decided and equal to the report's.
//
//   npm run build && node scripts/adaptive-replay.mjs [--report results/examples/policy-scaling/report.json]
//       [--gamma obf,-4,-2,0,1,2] [--min 3] [--step 3] [--max 12] [--seed 1] [--ignore-machine] [--wall 1185]
//       [--sweep <sweep dir> [--budget <ms>] [--look-s 2] [--old-rule]] [--looks]
//
// --sweep replays a sweep directory instead (sweep.json and its runs' result files; scripts/adaptive-replay-sweep.mjs):
// every run's own wall time, a sample budget replayed on the recorded samples (--budget), and the verdicts compared
// with --report's. The estimated wall time is the sum of the runs' wall times plus --look-s per look. The looks
// adjust each curve to the machine's reference its runs measured; --old-rule replays them without it (slowed runs
// left out, the rule before issue 24). --looks prints every look's verdicts per data plane, with θ.
//
// The replay is exact for the looks (the same runs in the same order the sweep made them); it cannot replay a
// design that would have made more runs than the report holds.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { alphaAt, curveDecision, lookSchedule, alphaPerLook } = await import(join(root, 'dist/stats/sequential.js'));
const { DECISION_METRICS, SERVICE_DECISION_METRICS } = await import(join(root, 'dist/sweep/adaptive.js'));
const { budgetedSamples } = await import(join(root, 'dist/run/interleave.js'));
const { machineSlowed, machineUsual, referenceOf } = await import(join(root, 'dist/results/machine.js'));
const { planesFromSweep } = await import(join(root, 'scripts/adaptive-replay-sweep.mjs'));

const { values: args } = parseArgs({
  options: {
    report: { type: 'string', default: join(root, 'results/examples/policy-scaling/report.json') },
    gamma: { type: 'string', default: 'obf,-4,-2,-1,0,1,2' },
    min: { type: 'string', default: '3' },
    step: { type: 'string', default: '3' },
    max: { type: 'string', default: '12' },
    seed: { type: 'string', default: '1' },
    'ignore-machine': { type: 'boolean', default: false },
    'old-rule': { type: 'boolean', default: false },
    looks: { type: 'boolean', default: false },
    wall: { type: 'string' },
    sweep: { type: 'string' },
    budget: { type: 'string' },
    'look-s': { type: 'string', default: '2' },
  },
});
const report = JSON.parse(readFileSync(resolve(args.report), 'utf8'));
const Z95 = 1.959963984540054;
const seed = Number(args.seed);

/** Per data plane, per decision metric: the runs as adaptive.ts's runValue reads them. */
// The runs the report's machine section found on a slowed machine: the looks leave them out (sequential.ts
// withoutSlowed) unless --ignore-machine replays the rule as it was before.
const slowed = new Set(args['ignore-machine'] ? [] : (report.machine?.slowedRuns ?? []).map((r) => r.runId));
const reportedOf = (cni, metric) => report.cnis.find((c) => c.cni === cni)?.metrics.find((m) => m.id === metric)?.verdict?.complexity;
const fromSweep = args.sweep ? planesFromSweep(resolve(args.sweep), { budgetMs: args.budget ? Number(args.budget) : null, reported: reportedOf, lib: { budgetedSamples, machineSlowed, machineUsual, referenceOf, DECISION_METRICS, SERVICE_DECISION_METRICS, oldRule: args['old-rule'] } }) : null;
const planes = fromSweep ? fromSweep.planes : report.cnis.map((c) => ({
  cni: c.cni,
  curves: c.metrics
    .filter((m) => m.id.endsWith('_p50') && DECISION_METRICS.includes(m.id.slice(0, -4)) && m.runs.length > 0)
    .map((m) => ({
      metric: m.id,
      reported: m.verdict?.complexity,
      runs: m.runs.map((r) => ({ rep: r.repetition, x: r.policies, y: r.value, se: r.ci && r.ci[0] !== null && r.ci[1] !== null ? (r.ci[1] - r.ci[0]) / (2 * Z95) : 0, slowed: slowed.has(r.runId) })),
    })),
}));
// A run's wall time, estimated: its samples and warm-up (1100 per metric in the headline) times the sum of its
// connect, CRR and RR p50, plus a fixed cost per run (set-up, policy install, teardown, references) calibrated so
// that the committed sweep's own design reproduces its wall time (--wall, seconds; the EPYC headline: 1185 s).
const opsPerMetric = 1100;
const measureS = new Map();
for (const c of report.cnis) {
  for (const m of c.metrics.filter((x) => ['connect_p50', 'crr_p50', 'rr_p50'].includes(x.id))) {
    for (const r of m.runs) measureS.set(r.runId, (measureS.get(r.runId) ?? 0) + (opsPerMetric * r.value) / 1e9);
  }
}
const runIdsUpTo = (cni, n) => report.cnis.find((c) => c.cni === cni).metrics.find((m) => m.id === 'connect_p50').runs.filter((r) => r.repetition <= n).map((r) => r.runId);
const allRuns = [...measureS.keys()];
const fixedS = args.wall ? (Number(args.wall) - allRuns.reduce((a, id) => a + measureS.get(id), 0)) / allRuns.length : null;
const lookS = Number(args['look-s']);
const estimateS = (rows) => fromSweep ? rows.reduce((a, r) => a + planes.find((p) => p.cni === r.cni).wallOf(r.reps), 0) + lookS * Math.max(...rows.map((r) => r.looks)) : (fixedS === null ? null : rows.reduce((a, r) => a + runIdsUpTo(r.cni, r.reps).reduce((b, id) => b + fixedS + measureS.get(id), 0), 0));

const maxAvailable = Math.min(...planes.flatMap((p) => p.curves.flatMap((c) => Math.max(...c.runs.map((r) => r.rep)))));

let lookLines = [];
function replay(design) {
  lookLines = [];
  const looks = lookSchedule(design);
  const rows = [];
  for (const p of planes) {
    let decided = null;
    let looked = 0;
    // Per-metric extension: a curve stops at the first look that decides it (src/sweep/adaptive.ts keeps it so).
    const stops = {};
    const atStop = {};
    for (const n of looks) {
      looked++;
      const alpha = alphaAt(design, n);
      const ds = p.curves.map((c) => ({ metric: c.metric, reported: c.reported, d: curveDecision(c.runs.filter((r) => r.rep <= n), alpha, { seed }) }));
      for (const x of ds) if (stops[x.metric] === undefined && x.d.settled) (stops[x.metric] = n), (atStop[x.metric] = x);
      decided = { n, alpha, ds: ds.map((x) => atStop[x.metric] ?? x) };
      if (args.looks) {
        const text = (x) => `${x.metric.replace('_p50', '')} ${x.d.verdict.complexity}${x.d.settled ? '' : ' OPEN'}${x.d.adjustment.theta !== null ? ` θ ${x.d.adjustment.theta.toFixed(2)}` : ` (${x.d.adjustment.notAdjusted}${x.d.leftOut ? `, ${x.d.leftOut} left out` : ''})`}`;
        lookLines.push(`    look ${looked} (${n} reps) ${p.cni}: ${ds.map(text).join(', ')}`);
      }
      if (ds.every((x) => x.d.settled)) break;
    }
    for (const c of p.curves) stops[c.metric] ??= decided.n;
    const counts = new Set(p.curves[0]?.runs.map((r) => r.x) ?? []).size;
    const have = Math.max(...p.curves.flatMap((c) => c.runs.map((r) => r.rep)));
    rows.push({ cni: p.cni, reps: decided.n, runs: decided.n * counts, alpha: decided.alpha, ds: decided.ds, looks: looked, beyond: decided.n > have, stops });
  }
  return rows;
}

const min = Number(args.min);
const step = Number(args.step);
const max = Number(args.max);
if (max > maxAvailable) console.error(`note: the report holds ${maxAvailable} repetitions; a look beyond them sees only those`);
console.log(`${args.sweep ?? args.report}: ${planes.length} data planes; replaying min ${min}, step ${step}, max ${max}${args.budget ? `, sample budget ${args.budget} ms` : ''}${fromSweep ? `; verdicts compared with ${args.report}` : ''}`);
for (const g of args.gamma.split(',')) {
  const design = { min, step, max, alpha: 0.05, ...(g === 'obf' ? {} : { gamma: Number(g) }) };
  const spend = alphaPerLook(design).map((a) => a.toPrecision(2)).join(', ');
  const rows = replay(design);
  const total = rows.reduce((a, r) => a + r.runs, 0);
  const open = rows.flatMap((r) => r.ds.filter((x) => !x.d.settled).map((x) => `${r.cni} ${x.metric}`));
  const differ = rows.flatMap((r) => r.ds.filter((x) => x.d.verdict.complexity !== x.reported).map((x) => `${r.cni} ${x.metric} ${x.d.verdict.complexity} (report: ${x.reported})`));
  const est = estimateS(rows);
  const perMetricS = fromSweep ? rows.reduce((a, r) => a + planes.find((p) => p.cni === r.cni).wallOfMetrics(r.stops), 0) + lookS * Math.max(...rows.map((r) => r.looks)) : null;
  console.log(`\n${g === 'obf' ? "O'Brien–Fleming (Lan–DeMets)" : `Hwang–Shih–DeCani γ = ${g}`}: α per look ${spend}; ${total} runs${est === null ? '' : `, about ${(est / 60).toFixed(1)} min ${fromSweep ? ` (the runs' own wall times${args.budget ? ' less the samples the budget drops' : ''}, + ${lookS} s a look)` : ` (${fixedS.toFixed(2)} s a run + its samples)`}`}`);
  if (perMetricS !== null) console.log(`  extending only the open metrics: about ${(perMetricS / 60).toFixed(1)} min (each metric's recorded or apportioned wall; the fixed part of every run kept)`);
  for (const r of rows) console.log(`  ${r.cni.padEnd(16)} ${String(r.reps).padStart(2)} reps${r.beyond ? ' (beyond the recorded runs: judged on fewer)' : ''}${fromSweep ? ` ${planes.find((p) => p.cni === r.cni).wallOf(r.reps).toFixed(0).padStart(4)} s` : ''}  ${r.ds.map((x) => `${x.metric.replace('_p50', '')} ${x.d.verdict.complexity}${x.d.settled ? '' : ' (open)'}${fromSweep && r.stops[x.metric] !== r.reps ? ` (stops at ${r.stops[x.metric]})` : ''}`).join(', ')}`);
  if (args.looks) console.log(lookLines.join('\n'));
  console.log(`  open: ${open.length ? open.join('; ') : 'none'}`);
  console.log(`  differs from the report: ${differ.length ? differ.join('; ') : 'none'}`);
}
