// A workload sweep's answer, per workload and data plane: does it enforce, what a new connection costs there
// (the typical and the worst of the workload's measured flows, connect p50 over the repetitions with a
// hierarchical 95% CI), what the policy set means there (flows whose observed verdict is not the spec's, from
// the sweep's verify run), the state it holds, and the verdict. Pure: results and verify records in, data out.
import { cniEntry, CNIS_IN_REPORT_ORDER } from '../config/cnis.js';
import type { CniName } from '../config/schema.js';
import type { FlowResult, RunResult } from '../results/schema.js';
import type { FindingRecord, WorkloadVerifyRecord } from '../results/workload-verify.js';
import { hierarchicalCi, type CiLevel } from '../stats/hierarchical.js';
import { sortedCopy } from '../stats/summary.js';

/** A p50 over the runs: the mean of the runs' p50s and its hierarchical 95% CI (one run: its within-run CI). */
export interface RunLevelP50 {
  value: number;
  ci95: [number, number];
  level: CiLevel;
  runs: number;
}

export interface WorkloadFlowRow {
  from: string;
  to: string;
  port: number;
  protocol: string;
  /** Why it was chosen: most-expensive, cross-namespace, same-node, random, named. */
  reason: string;
  /** Policy rules in its path (egress of the source and ingress of the destination). */
  rules: number;
  connect: RunLevelP50;
  crr: RunLevelP50 | null;
  rr: RunLevelP50 | null;
}

export interface WorkloadPlane {
  cni: CniName;
  model: { name: string; enforcesPolicy: boolean };
  /** Every run enforced the policies (the model's own statement, checked by verify where it ran). */
  enforces: boolean;
  /** The floor: no CNI at all. */
  floor: boolean;
  runs: number;
  /** Measured flows, the most expensive (highest connect p50) first. */
  flows: WorkloadFlowRow[];
  /** The flow with the median connect p50 (the lower middle one for an even count). */
  typical: WorkloadFlowRow;
  worst: WorkloadFlowRow;
  /** The data plane's state for the whole workload (numeric model state: rules, sets, identities, map entries…). */
  state: Record<string, number>;
  /** The sweep's verify run on this data plane; null when the sweep has none (then nothing is said about meaning). */
  verify: Pick<WorkloadVerifyRecord, 'probed' | 'differFromSpec' | 'documented' | 'mismatches' | 'verdict' | 'flowChoice' | 'flows'> | null;
  verdict: string;
}

/** What in the policy set does not do what it was likely meant to, each naming the policy (bench verify's findings). */
export interface WorkloadFindings {
  /**
   * verify-records: as the sweep's verify runs recorded them; workload-file: read from the workload file when the
   * report was made (the records predate recorded findings); none: neither is at hand, nothing is said.
   */
  source: 'verify-records' | 'workload-file' | 'none';
  /** Every finding except 'not-enforced', by policy then kind. */
  items: FindingRecord[];
  /** Data planes on which every policy of the workload is accepted and has no effect (one line, not one per policy). */
  notEnforcedOn: CniName[];
}

export interface WorkloadAnalysis {
  name: string;
  file: string;
  nodes: number;
  pods: number;
  endpoints: number;
  policies: number;
  planes: WorkloadPlane[];
  findings: WorkloadFindings;
}

/** Findings read from workload files at report time, by the file as the runs name it (for records without them). */
export type FindingsByFile = ReadonlyMap<string, FindingRecord[]>;

const findingKey = (f: FindingRecord) => `${f.policy}\u0000${f.kind}\u0000${f.field ?? ''}\u0000${f.message}`;

function workloadFindings(file: string, planes: readonly WorkloadPlane[], verifies: readonly WorkloadVerifyRecord[], fromFile: FindingsByFile | undefined): WorkloadFindings {
  const notEnforcedOn = planes.filter((p) => !p.enforces).map((p) => p.cni);
  const recorded = verifies.filter((v) => v.workload.file === file && v.findings);
  if (recorded.length) {
    // Every record holds the same list (only 'not-enforced' depends on the data plane, and it is not stored).
    const seen = new Map<string, FindingRecord>();
    for (const v of recorded) for (const f of v.findings!) if (!seen.has(findingKey(f))) seen.set(findingKey(f), f);
    const items = [...seen.values()].sort((a, b) => (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
    return { source: 'verify-records', items, notEnforcedOn };
  }
  const read = fromFile?.get(file);
  if (read) return { source: 'workload-file', items: read.filter((f) => f.kind !== 'not-enforced'), notEnforcedOn };
  return { source: 'none', items: [], notEnforcedOn };
}

const flowKey = (f: Pick<FlowResult, 'from' | 'to' | 'port' | 'protocol'>) => `${f.from}->${f.to}:${f.port}/${f.protocol}`;

function runLevel(samples: Array<number[] | undefined>, seed: number, resamples?: number): RunLevelP50 | null {
  const runs = samples.filter((s): s is number[] => Array.isArray(s) && s.length > 0).map((s) => sortedCopy(s));
  if (!runs.length) return null;
  const h = hierarchicalCi(runs, 0.5, { seed, resamples });
  return { value: h.value, ci95: h.ci95, level: h.level, runs: h.runs };
}

/** Model-state entries that size the data plane's state (counts), not its timings or settings. */
export function stateSize(modelState: RunResult['modelState']): Record<string, number> {
  return Object.fromEntries(Object.entries(modelState).filter(([k, v]) => typeof v === 'number' && !/(Ms|Limit|Capacity)$/.test(k) && k !== 'rulesTraversedPerPolicy') as Array<[string, number]>);
}

/** Two run-level figures are told apart when their 95% CIs do not overlap. */
export const clearlyBelow = (a: RunLevelP50, b: RunLevelP50) => Number.isFinite(a.ci95[1]) && Number.isFinite(b.ci95[0]) && a.ci95[1] < b.ci95[0];

function planeVerdict(p: Omit<WorkloadPlane, 'verdict'>): string {
  if (p.floor) return 'no policy engine: the floor the others are read against';
  if (!p.enforces) {
    if (p.verify?.mismatches) return `**NOT ENFORCED**: the policies are accepted and have no effect; ${p.verify.differFromSpec} flows the policies deny connected, and **${p.verify.mismatches} of ${p.verify.probed} flows did not connect** although nothing there should stop them (not as documented: see verify-${p.cni}.json)`;
    return `**NOT ENFORCED**: the ${p.verify ? `${p.verify.differFromSpec} flows the policies deny all connected` : 'policies are accepted and have no effect'}`;
  }
  const v = p.verify;
  if (!v) return 'enforces (what the policy set means here was not verified in this sweep)';
  if (v.mismatches > 0) return `**differs from its own documented semantics on ${v.mismatches} of ${v.probed} flows**`;
  if (v.differFromSpec > 0) return `enforces; **${v.differFromSpec} of ${v.probed} flows get another verdict than the spec** (its documented semantics)`;
  return `enforces as the spec says (${v.probed} flows probed)`;
}

/**
 * One entry per workload (by file) found among the runs: each data plane's flows over its runs, and its verify
 * record where the sweep has one.
 */
export function analyzeWorkloads(ok: readonly RunResult[], verifies: readonly WorkloadVerifyRecord[], opts: { seed?: number; resamples?: number; findings?: FindingsByFile } = {}): WorkloadAnalysis[] {
  const byFile = new Map<string, RunResult[]>();
  for (const r of ok) if (r.meta.workload && r.flows?.length) byFile.set(r.meta.workload.file, [...(byFile.get(r.meta.workload.file) ?? []), r]);
  const out: WorkloadAnalysis[] = [];
  for (const [file, runs] of byFile) {
    const w = runs[0]!.meta.workload!;
    const planes: WorkloadPlane[] = [];
    for (const cni of CNIS_IN_REPORT_ORDER.filter((c) => runs.some((r) => r.meta.cni === c))) {
      const mine = runs.filter((r) => r.meta.cni === cni);
      const keys = [...new Set(mine.flatMap((r) => r.flows!.map(flowKey)))];
      const rows: WorkloadFlowRow[] = [];
      for (const [i, key] of keys.entries()) {
        const seen = mine.map((r) => r.flows!.find((f) => flowKey(f) === key)).filter((f): f is FlowResult => f !== undefined);
        const seed = (opts.seed ?? 1) + i;
        const connect = runLevel(seen.map((f) => f.metrics.connect?.samplesNs), seed, opts.resamples);
        if (!connect) continue;
        const f = seen[0]!;
        rows.push({ from: f.from, to: f.to, port: f.port, protocol: f.protocol, reason: f.reason, rules: f.rules, connect, crr: runLevel(seen.map((x) => x.metrics.crr?.samplesNs), seed, opts.resamples), rr: runLevel(seen.map((x) => x.metrics.rr?.samplesNs), seed, opts.resamples) });
      }
      if (!rows.length) continue;
      rows.sort((a, b) => b.connect.value - a.connect.value);
      const verify = verifies.find((v) => v.cni === cni && v.workload.file === file) ?? null;
      const base = {
        cni,
        model: { name: mine[0]!.meta.model.name, enforcesPolicy: mine[0]!.meta.model.enforcesPolicy },
        enforces: mine.every((r) => r.policiesEnforced) && (verify ? verify.verdict.kind !== 'not-enforced' : true),
        floor: Boolean(cniEntry(cni).floor),
        runs: mine.length,
        flows: rows,
        typical: rows[Math.floor(rows.length / 2)]!,
        worst: rows[0]!,
        state: stateSize(mine[mine.length - 1]!.modelState),
        verify: verify ? { probed: verify.probed, differFromSpec: verify.differFromSpec, documented: verify.documented, mismatches: verify.mismatches, verdict: verify.verdict, flowChoice: verify.flowChoice, flows: verify.flows } : null,
      };
      planes.push({ ...base, verdict: planeVerdict(base) });
    }
    out.push({ name: w.name, file, nodes: w.nodes, pods: w.pods, endpoints: w.endpoints, policies: w.policies, planes, findings: workloadFindings(file, planes, verifies, opts.findings) });
  }
  return out;
}

const usText = (ns: number) => (ns / 1000).toFixed(1);

/** What to choose, in sentences: what does not enforce, where the policy set means something else, what costs least. */
export function workloadAdvice(w: WorkloadAnalysis): string[] {
  const out: string[] = [];
  const name = (c: CniName) => cniEntry(c).reportName;
  const ignoring = w.planes.filter((p) => !p.enforces && !p.floor);
  for (const p of ignoring) out.push(`**${name(p.cni)} does not enforce NetworkPolicy**: the ${w.policies} policies of ${w.name} would have no effect on it. Choose it only where NetworkPolicy is not required.`);
  for (const p of w.planes.filter((x) => x.enforces && x.verify && x.verify.differFromSpec > 0)) {
    out.push(`**${name(p.cni)} gives ${p.verify!.differFromSpec} of ${p.verify!.probed} probed flows another verdict than the NetworkPolicy spec**${p.verify!.mismatches ? ` (${p.verify!.mismatches} of them not even as documented)` : ' (as its documentation says)'}: moving ${w.name} there changes what it allows. List them with \`bench verify --workload ${w.file} --cni ${p.cni} --json\`, or against another data plane with \`--cni calico,${p.cni} --diff\`.`);
  }
  const faithful = w.planes.filter((p) => p.enforces && !p.floor && (p.verify ? p.verify.differFromSpec === 0 : false)).sort((a, b) => a.worst.connect.value - b.worst.connect.value);
  if (faithful.length) {
    const [best, next] = faithful;
    const apart = next ? clearlyBelow(best!.worst.connect, next.worst.connect) : false;
    out.push(
      `Of the data planes that enforce ${w.name} as the spec says (${faithful.map((p) => name(p.cni)).join(', ')}), **${name(best!.cni)}** has the cheapest worst flow (connect p50 ${usText(best!.worst.connect.value)} µs)` +
        (next ? (apart ? `, clearly (95% CIs apart) below ${name(next.cni)}'s ${usText(next.worst.connect.value)} µs.` : `, but not clearly: its 95% CI overlaps ${name(next.cni)}'s (${usText(next.worst.connect.value)} µs), so at this resolution they cost the same.`) : '.'),
    );
  } else if (w.planes.some((p) => p.enforces && !p.floor)) out.push('No data plane was verified to enforce the policy set as the spec says in this sweep; read the per-flow costs below with the verdicts above.');
  const floor = w.planes.find((p) => p.floor);
  if (floor) {
    const costs = w.planes.filter((p) => p.enforces && !p.floor).map((p) => `${name(p.cni)} ${clearlyBelow(floor.worst.connect, p.worst.connect) ? `+${usText(p.worst.connect.value - floor.worst.connect.value)} µs` : 'not clearly above it'}`);
    if (costs.length) out.push(`What enforcing costs a new connection over no CNI (${name(floor.cni)}, worst flow ${usText(floor.worst.connect.value)} µs): ${costs.join('; ')} on the worst flow.`);
  }
  return out;
}
