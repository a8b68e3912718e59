// The opening of a workload sweep's report: the answer first — one table per workload (each data plane: does it
// enforce, what a new connection costs on the typical and the worst flow, what the policy set means there, the
// verdict), the advice, then the per-flow figures with the data plane's state beside them, then what was
// measured how. Only what was measured appears: no verify run, no "means" column; no CRR/RR, no column for them.
import { cniEntry } from '../config/cnis.js';
import type { Analysis } from './analyze.js';
import { workloadAdvice, type RunLevelP50, type WorkloadAnalysis, type WorkloadPlane } from './workload.js';

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const table = (head: string[], rows: string[][], align: Array<'l' | 'r'>) =>
  [head, align.map((a) => (a === 'r' ? '---:' : '---')), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const us = (ns: number) => (Number.isFinite(ns) ? (ns / 1000).toFixed(1) : '–');

/** "54.5 (52.1–57.0)": µs with its 95% CI; ¹ marks a CI from one run (sample noise only). */
export function p50Text(x: RunLevelP50 | null): string {
  if (!x) return '–';
  return `${us(x.value)} (${us(x.ci95[0])}–${us(x.ci95[1])})${x.level === 'within-run' ? '¹' : ''}`;
}

/** Differing flows listed per data plane in the report (the verify file keeps up to 500, the counts are whole). */
const MAX_LISTED = 50;

const flowText = (f: WorkloadPlane['worst']) => `${f.from} → ${f.to} ${f.port}/${f.protocol}`;
const planeName = (p: WorkloadPlane) => cniEntry(p.cni).reportName;

/** "means": how many of the verified flows get another verdict than the spec (only where a verify run is stored). */
function meaningText(p: WorkloadPlane): string {
  const v = p.verify;
  if (!v) return '–';
  if (v.differFromSpec === 0) return `as the spec (0 of ${v.probed} flows differ)`;
  return `${v.differFromSpec} of ${v.probed} flows differ from the spec${v.mismatches ? `, ${v.mismatches} not as documented` : ''}`;
}

/** The answer table of one workload. */
export function answerTable(w: WorkloadAnalysis): string {
  const verified = w.planes.some((p) => p.verify);
  const head = ['data plane', 'enforces?', 'typical flow connect p50, µs (95% CI)', 'worst flow connect p50, µs (95% CI)', ...(verified ? ['what the policy set means there'] : []), 'verdict'];
  const rows = w.planes.map((p) => [planeName(p), p.floor ? '–' : p.enforces ? 'yes' : '**no**', p50Text(p.typical.connect), p50Text(p.worst.connect), ...(verified ? [meaningText(p)] : []), p.verdict]);
  return table(head, rows, ['l', 'l', 'r', 'r', ...(verified ? (['l'] as const) : []), 'l']);
}

const stateText = (s: Record<string, number>) => (Object.keys(s).length ? Object.entries(s).map(([k, v]) => `${k} ${v}`).join(', ') : 'not reported');

/** Findings listed in the open up to this many; more go into a collapsed block under a count per kind. */
const OPEN_FINDINGS = 12;

/** The policy set's findings (bench verify's), each naming the policy and the field, with the fix. */
export function findingsMarkdown(w: WorkloadAnalysis): string[] {
  const f = w.findings;
  const L: string[] = [`### ${w.name}: findings in the policy set`, ''];
  if (f.source === 'none') {
    L.push(`Not recorded by this sweep, and \`${w.file}\` could not be read when this report was made: \`bench verify --workload ${w.file} --cni <cni>\` lists them.`, '');
    return L;
  }
  if (f.source === 'workload-file') L.push(`Read from \`${w.file}\` when this report was made (this sweep's verify records predate recorded findings).`, '');
  const names = f.notEnforcedOn.map((c) => cniEntry(c).reportName);
  if (names.length) L.push(`- **not-enforced**: on ${names.join(', ')} every one of the ${w.policies} policies is accepted and has no effect (no policy engine). Fix: choose a data plane that enforces NetworkPolicy.`, '');
  if (!f.items.length) {
    L.push(`No other finding: no OR-peer where an AND was likely meant, no egress without DNS, no ipBlock over pod addresses, no policy that selects no pod (or only hostNetwork pods), no undeclared named port.`, '');
    return L;
  }
  const counts = new Map<string, number>();
  for (const x of f.items) counts.set(x.kind, (counts.get(x.kind) ?? 0) + 1);
  L.push(`${f.items.length} finding${f.items.length === 1 ? '' : 's'} (${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}), by policy; the kinds are explained in the README ("Findings").`, '');
  const rows = f.items.map((x) => [`\`${esc(x.policy)}\``, x.field ? `\`${esc(x.field)}\`` : '–', x.kind, esc(x.message), esc(x.fix)]);
  const body = table(['policy', 'field', 'kind', 'finding', 'fix'], rows, ['l', 'l', 'l', 'l', 'l']);
  if (f.items.length > OPEN_FINDINGS) L.push(`<details><summary>${w.name}: the ${f.items.length} findings</summary>`, '', body, '', '</details>', '');
  else L.push(body, '');
  return L;
}

export function renderWorkloadOpening(a: Analysis): string[] {
  const L: string[] = [];
  const oneRun = a.workloads.some((w) => w.planes.some((p) => p.flows.some((f) => f.connect.level === 'within-run')));
  for (const w of a.workloads) {
    L.push(`## ${w.name}: the answer`);
    L.push('');
    L.push(`The workload \`${w.file}\`: ${w.policies} NetworkPolicies, ${w.pods} pods (${w.endpoints} of them real endpoints in each run, on the ${w.nodes} nodes that hold them; the rest address-only). A new connection's cost is the connect p50 of the workload's measured flows on each data plane, mean over the runs with a hierarchical 95% CI: the typical flow (the median flow) and the worst (the most expensive).`);
    L.push('');
    L.push(answerTable(w));
    L.push('');
    if (oneRun) {
      L.push('¹ one run: the CI covers sample noise within that run only and cannot include run-to-run variation.');
      L.push('');
    }
    L.push(`### ${w.name}: advice`);
    L.push('');
    for (const line of workloadAdvice(w)) L.push(`- ${line}`);
    L.push('');
    L.push(...findingsMarkdown(w));
  }
  for (const w of a.workloads) {
    L.push(`## ${w.name}: every measured flow`);
    L.push('');
    const withCrr = w.planes.some((p) => p.flows.some((f) => f.crr));
    const withRr = w.planes.some((p) => p.flows.some((f) => f.rr));
    const rows = w.planes.flatMap((p) => p.flows.map((f) => [planeName(p), esc(flowText(f)), f.reason, String(f.rules), p50Text(f.connect), ...(withCrr ? [p50Text(f.crr)] : []), ...(withRr ? [p50Text(f.rr)] : []), String(f.connect.runs)]));
    L.push(table(['data plane', 'flow', 'chosen as', 'rules in path', 'connect p50, µs', ...(withCrr ? ['CRR p50, µs'] : []), ...(withRr ? ['RR p50, µs'] : []), 'runs'], rows, ['l', 'l', 'l', 'r', 'r', ...(withCrr ? (['r'] as const) : []), ...(withRr ? (['r'] as const) : []), 'r']));
    L.push('');
    L.push(`## ${w.name}: distribution, worst flow and state per data plane`);
    L.push('');
    L.push(
      table(
        ['data plane', 'flows', 'connect p50 over the flows, µs (min / median / max)', 'worst flow', 'its rules in path', "the data plane's state for the workload"],
        w.planes.map((p) => [planeName(p), String(p.flows.length), `${us(p.flows[p.flows.length - 1]!.connect.value)} / ${us(p.typical.connect.value)} / ${us(p.worst.connect.value)}`, esc(flowText(p.worst)), String(p.worst.rules), esc(stateText(p.state))]),
        ['l', 'r', 'r', 'l', 'r', 'l'],
      ),
    );
    L.push('');
    // Where the data plane enforces, the flows it gives another verdict are the migration question; where it
    // enforces nothing, every flow the policies deny connects, and listing them says no more than the verdict.
    const differing = w.planes.filter((p) => p.enforces && p.verify && p.verify.flows.length);
    if (differing.length) {
      L.push(`<details><summary>${w.name}: the flows whose observed verdict is not the spec's (at most ${MAX_LISTED} per data plane)</summary>`);
      L.push('');
      L.push(table(['data plane', 'flow', 'spec', 'documented', 'observed'], differing.flatMap((p) => p.verify!.flows.slice(0, MAX_LISTED).map((f) => [planeName(p), esc(`${f.from} → ${f.to} ${f.port}/${f.protocol}`), f.spec, f.expected, f.observed])), ['l', 'l', 'l', 'l', 'l']));
      L.push('');
      const more = differing.filter((p) => p.verify!.differFromSpec > MAX_LISTED).map((p) => `${planeName(p)}: ${p.verify!.differFromSpec - MAX_LISTED} more in verify-${p.cni}.json`);
      if (more.length) L.push(`${more.join('; ')}.`, '');
      L.push('</details>');
      L.push('');
    }
  }
  return L;
}

/** The workload part of "How it was measured": how flows were chosen and how verify probed. */
export function workloadMethodMarkdown(a: Analysis): string[] {
  const L: string[] = [];
  for (const w of a.workloads) {
    const reasons = [...new Set(w.planes.flatMap((p) => p.flows.map((f) => f.reason)))];
    L.push(
      `Workload ${w.name}: each data plane's flows were chosen as that data plane reads the policies (${reasons.join(', ')}: the most expensive destination by policy rules in the path, egress of the source and ingress of the destination both counted; a cross-namespace and a same-node flow; seeded random allowed flows), each measured with connect, CRR and RR in every run; a run's headline metrics are its worst flow's. The figures above are per flow over the runs.`,
    );
    L.push('');
    const choices = [...new Set(w.planes.filter((p) => p.verify).map((p) => p.verify!.flowChoice))];
    if (choices.length) {
      L.push(`What the policy set means: once per data plane the sweep replayed the workload and probed ${choices.join('; ')} (bench verify --workload), comparing each observed verdict with the NetworkPolicy spec (the reference evaluator) and with the data plane's documented semantics. Verdicts are not noisy the way latencies are: one verify run per data plane.`);
      L.push('');
    }
  }
  return L;
}
