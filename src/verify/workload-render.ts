// What `bench verify --workload` prints: per data plane its verdict, the flows that did not do what its documented
// semantics say, how many flows mean something else there than in the spec; the policy set's findings, each
// naming the policy; with --diff, the flows whose verdict differs between the data planes. And the JSON. Pure.
import type { Finding } from '../workload/findings.js';
import { flowKey } from '../workload/flows.js';
import type { ObservedDiff, WorkloadPlaneResult, WorkloadProbe } from './workload.js';

export interface WorkloadVerifyReport {
  workload: string;
  /** Flows chosen, and how (every pair, a seeded sample, the named ones). */
  flowChoice: string;
  planes: WorkloadPlaneResult[];
  findings: Finding[];
  /** Present with --diff. */
  diff?: ObservedDiff[];
}

const LIST_LIMIT = 20;
const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(0)} s` : x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);

function probeLine(p: WorkloadProbe): string {
  const why = p.policies.length ? ` (${p.expected === 'allowed' ? 'allowed by' : 'isolated by'} ${p.policies.slice(0, 3).join(', ')}${p.policies.length > 3 ? ` and ${p.policies.length - 3} more` : ''})` : '';
  return `${flowKey(p)}: expected ${p.expected}${why}, observed ${p.observed} [${p.reason}, ${p.attempts} attempt${p.attempts === 1 ? '' : 's'}]`;
}

export function renderPlane(r: WorkloadPlaneResult): string {
  const lines = [
    `${r.cni} (${r.backend}: ${r.model.name})`,
    `  verdict: ${r.verdict.text}`,
    `  set-up ${ms(r.timings.setupMs)}, install ${ms(r.timings.installMs)}, probing ${ms(r.timings.probeMs)} (wall clock, machine shared)`,
  ];
  if (r.documentedDifferences) lines.push(`  ${r.documentedDifferences} of ${r.probes.length} flows mean something else here than in the NetworkPolicy spec (its documented semantics; see --diff)`);
  if (r.mismatches.length) {
    lines.push(`  ${r.mismatches.length} flows not as documented:`);
    for (const p of r.mismatches.slice(0, LIST_LIMIT)) lines.push(`    ${probeLine(p)}`);
    if (r.mismatches.length > LIST_LIMIT) lines.push(`    … and ${r.mismatches.length - LIST_LIMIT} more (--json lists every flow)`);
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

export function renderFindings(findings: readonly Finding[]): string {
  if (!findings.length) return 'findings: none';
  const lines = [`findings (${findings.length}):`];
  for (const f of findings) {
    lines.push(`  [${f.kind}] ${f.policy}${f.field ? ` ${f.field}` : ''}: ${f.message}`);
    lines.push(`      fix: ${f.fix}`);
  }
  return lines.join('\n');
}

export function renderDiff(diff: readonly ObservedDiff[], cnis: readonly string[]): string {
  if (!diff.length) return `diff (${cnis.join(' vs ')}): every probed flow has the same verdict on each`;
  const lines = [`diff (${cnis.join(' vs ')}): ${diff.length} flows differ`];
  for (const d of diff) {
    lines.push(`  ${flowKey(d)}: ${cnis.map((c) => `${c} ${d.observed[c as keyof typeof d.observed] ?? '-'}`).join(', ')}`);
    lines.push(`      ${d.reason}`);
  }
  return lines.join('\n');
}

export function renderWorkloadReport(r: WorkloadVerifyReport): string {
  const parts = [`verify workload ${r.workload}: ${r.flowChoice}`, ...r.planes.map(renderPlane), renderFindings(r.findings)];
  if (r.diff) parts.push(renderDiff(r.diff, r.planes.map((p) => p.cni)));
  return `${parts.join('\n\n')}\n`;
}

/** The report as JSON: each probed flow as {from, to, port, protocol, expected, observed}, names as in the file. */
export function workloadReportJson(r: WorkloadVerifyReport): Record<string, unknown> {
  return {
    workload: r.workload,
    flowChoice: r.flowChoice,
    planes: r.planes.map((p) => ({
      cni: p.cni,
      backend: p.backend,
      model: p.model.name,
      verdict: p.verdict,
      documentedDifferences: p.documentedDifferences,
      timings: p.timings,
      modelState: p.modelState,
      notes: p.notes,
      flows: p.probes.map((x) => ({ from: x.from, to: x.to, port: x.port, protocol: x.protocol, expected: x.expected, observed: x.observed })),
    })),
    findings: r.findings,
    ...(r.diff ? { diff: r.diff.map((d) => ({ from: d.from, to: d.to, port: d.port, protocol: d.protocol, observed: d.observed, reason: d.reason })) } : {}),
  };
}
