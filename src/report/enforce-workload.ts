// `bench report` on `bench enforce --workload` results: one table per workload — each data plane, each change to
// the workload's own policies, the flows it flips, time to enforcement with its resolution, the agent's time, the
// fail-open window. Markdown, written beside the report (enforce-workload.md). Pure.
import { enforcedFigure } from '../enforce/workload-format.js';
import type { EnforceWorkloadResult } from '../enforce/workload-result.js';
import { cniEntry } from '../config/cnis.js';

const f = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(1)} ms`);
const cell = (s: string) => s.replace(/\|/g, '\\|');

export function enforceWorkloadMarkdown(results: ReadonlyArray<{ path: string; result: EnforceWorkloadResult }>): string {
  const byWorkload = new Map<string, typeof results>();
  for (const r of results) byWorkload.set(r.result.meta.workload.name, [...(byWorkload.get(r.result.meta.workload.name) ?? []), r]);
  const out: string[] = ['# Time to enforcement of a workload\'s own policies', ''];
  for (const [name, rs] of byWorkload) {
    const sorted = [...rs].sort((a, b) => cniEntry(a.result.meta.cni).reportOrder - cniEntry(b.result.meta.cni).reportOrder);
    const m = sorted[0]!.result.meta;
    out.push(`## Workload ${name}`, '', `${m.workload.pods} pods, ${m.workload.policies} policies (${m.workload.file}); a TCP connect every ${m.probe.intervalUs} µs per watched flow; enforced = ${m.probe.settle} consecutive probes with the new verdict.`, '');
    out.push('| Data plane | Change | Flows flipped | Time to enforcement p50 | Resolution (median) | Agent p50 | Fail-open | Run |', '|---|---|---|---|---|---|---|---|');
    for (const { result: r } of sorted) {
      const plane = `${cniEntry(r.meta.cni).reportName}${r.meta.backend === 'local' ? '' : ` (${r.meta.backend})`}`;
      if (r.errors.length && !r.changes.some((c) => c.observations.length)) out.push(`| ${plane} | — | — | failed: ${cell(r.errors[0]!.message.split('\n')[0]!)} | | | | ${r.runId} |`);
      for (const c of r.changes) {
        const s = c.summary;
        const time = c.noEffect ? 'no effect (no policy engine)' : !s || s.enforcedMs.count === 0 ? `not seen within ${r.meta.probe.deadlineMs} ms` : `${enforcedFigure(s.enforcedMs.p50, s.resolutionMedianMs)} (n=${s.enforcedMs.count})`;
        const failOpen = !s?.failOpenMs ? '—' : s.failOpenRepetitions === 0 ? 'none' : `${s.failOpenRepetitions}/${s.repetitions} reps, p50 ${f(s.failOpenMs.p50)}`;
        out.push(`| ${plane} | \`${c.change}\` | ${c.affectedCount} of ${c.candidates} | ${cell(time)} | ${f(s?.resolutionMedianMs)} | ${f(s?.agentMs.p50)} | ${failOpen} | ${r.runId} |`);
      }
    }
    if (sorted.some((x) => x.result.meta.backend !== 'local')) out.push('', "On kind/cluster the Agent column is the API call (kubectl's start to its return); the agents' own work is not seen from there.");
    out.push('');
  }
  return out.join('\n');
}
