// The terminal summary printed when a sweep ends: what ran, what failed, and the slope/verdict table.
import type { SweepManifest } from '../sweep/manifest.js';
import { counts } from '../sweep/manifest.js';
import { formatDuration } from '../sweep/progress.js';
import { describeLook, levelText, repetitionsText } from '../sweep/adaptive.js';
import type { Analysis } from './analyze.js';
import { headlineFigure } from './markdown.js';
import { slowedRunsLine } from './slowed.js';
import { textTable } from '../text.js';
import { p50Text } from './workload-md.js';

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

export function sweepSummary(m: SweepManifest, a: Analysis | null, wallMs: number): string {
  const c = counts(m);
  const out: string[] = [];
  out.push(`sweep ${m.id}: ${m.status} — ${c.ok} ok, ${c.failed} failed, ${c.pending + c.running + c.interrupted} not run; ${formatDuration(wallMs)} wall time this session`);
  for (const p of m.points.filter((x) => x.status === 'failed')) out.push(`  FAILED ${p.key}: ${p.error?.stage ?? ''}${p.error?.kind ? ` (${p.error.kind})` : ''}: ${p.error?.message.split('\n')[0] ?? ''}`);
  for (const v of (m.verify ?? []).filter((x) => x.status === 'failed')) out.push(`  FAILED verify ${v.cni}: ${v.error?.message.split('\n')[0] ?? ''}`);
  const design = m.matrix.adaptive;
  if (design) {
    out.push(`adaptive repetitions (${design.min} to start, +${design.step} where a verdict is open, at most ${design.max}; α ${design.alpha} spent over the looks): ${m.matrix.cnis.map((cni) => repetitionsText(m, cni)).join(', ')}${m.status === 'complete' ? '' : ' (planned; not all have run)'}`);
    (m.looks ?? []).forEach((l, i) => out.push(`  ${describeLook(l, i, design).replace(/\n/g, '\n  ')}`));
  }
  if (!a || a.cnis.length === 0) return out.join('\n');
  out.push('');
  // A workload sweep: its answer table (one policy set, so no curve verdicts).
  for (const w of a.workloads) {
    out.push(`workload ${w.name} (${w.policies} policies, ${w.pods} pods): connect p50 in µs (95% CI) over the runs`);
    out.push(textTable([['CNI', 'enforces', 'typical flow', 'worst flow', 'flows differing from the spec', 'verdict'], ...w.planes.map((p) => [p.cni, p.floor ? '–' : p.enforces ? 'yes' : 'NO', p50Text(p.typical.connect), p50Text(p.worst.connect), p.verify ? `${p.verify.differFromSpec} of ${p.verify.probed}` : 'not verified', p.verdict.replace(/\*\*/g, '')])], ['l', 'l', 'r', 'r', 'r', 'l']));
    out.push('');
  }
  if (!a.policyCurves) return [...out, 'see bench report for the advice, every flow and the state per data plane.'].join('\n');
  // A sweep over Service counts at one policy count: the Service verdicts are its answer (the policy curve has one point).
  const services = a.services ?? [];
  if (services.length) {
    const runs = ([lo, hi]: [number, number]) => (lo === hi ? String(lo) : `${lo}–${hi}`);
    const level = (a: number | undefined) => (a === undefined ? '95%' : levelText(a));
    out.push(textTable([['CNI', 'service data plane', 'runs per count', 'connect p50 vs Services', 'cost per Service (slope, CI)'], ...services.map((p) => [p.cni, p.dataPlane, runs(p.repetitions), p.verdict.complexity, p.fit ? `${f2(p.fit.slope)} ns (${level(p.alpha)}: ${f2(p.fit.slopeCi95[0])} … ${f2(p.fit.slopeCi95[1])})` : '–'])], ['l', 'l', 'r', 'l', 'l']));
    if (m.matrix.policies.length < 2) return [...out, 'see bench report for the Services section (values per count, reasons, state sizes).'].join('\n');
    out.push('');
  }
  const rows: string[][] = [['CNI', 'metric', 'verdict', 'headline (slope where a line fits, else segments and exponent)', 'R²']];
  for (const x of a.cnis) {
    const ids = m.settings.measure === 'enforce'
      ? (['enforce_allow_added_p50', 'enforce_allow_removed_p50', 'enforce_new_pod_p50', 'enforce_peer_joins_p50', 'failopen_allow_removed_p50', 'failopen_new_pod_p50'] as const)
      : (['connect_p50', 'connect_p99', 'crr_p50', 'rr_p50', 'cpu_per_conn'] as const);
    for (const id of ids) {
      const r = x.metrics[id];
      rows.push([x.cni, id, r.verdict.complexity, headlineFigure(r), r.fit ? f2(r.fit.r2) : '–']);
    }
  }
  out.push(textTable(rows, ['l', 'l', 'l', 'l', 'r']));
  out.push(`CIs are at run level (hierarchical bootstrap over the repetitions); see bench report for points, segments and reasons.`);
  const slowed = slowedRunsLine(a);
  if (slowed) out.push(slowed);
  else if (a.machine.measuredRuns === 0) out.push("machine reference: not measured (result files written before it existed)");
  for (const x of a.crossovers.filter((y) => y.metric === 'connect_p50')) out.push(`crossover (connect p50): ${x.lowerBefore} lower up to ≈${x.atPolicies} policies, ${x.lowerAfter} above`);
  return out.join('\n');
}
