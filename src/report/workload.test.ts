// The report of a workload sweep, from a synthetic result set written where a sweep writes it: it is titled by the
// workload, opens with the answer table (enforces?, typical and worst flow, what the policy set means there, the
// verdict), then advice, per-flow figures and state, then how it was measured; and metrics that were not measured
// are left out of the report and its JSON — for workload sweeps and ordinary ones alike.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CniName } from '../config/schema.js';
import { writeResult } from '../results/io.js';
import { runResultSchema, type RunResult } from '../results/schema.js';
import { WORKLOAD_VERIFY_KIND, WORKLOAD_VERIFY_VERSION, verifyFileName, type WorkloadVerifyRecord } from '../results/workload-verify.js';
import { pointKey } from '../sweep/plan.js';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { reportDocument } from './json.js';
import { renderMarkdown } from './markdown.js';
import { syntheticResult, writeSyntheticSweep } from './test-support/fixtures.js';
import { cmdReport } from '../cli/commands/report.js';
import { bufferIo } from '../cli/test-support/cli.js';
import { tempDir } from '../test-support/temp.js';

const FILE = 'cluster.json';
const FLOWS = [
  { from: 'shop/api-0', to: 'shop/db-0', port: 5432, reason: 'most-expensive', rules: 9 },
  { from: 'web/front-0', to: 'shop/api-0', port: 8080, reason: 'cross-namespace', rules: 4 },
  { from: 'shop/api-0', to: 'shop/cache-0', port: 6379, reason: 'same-node', rules: 3 },
];
/** connect p50 per data plane and flow (ns), in FLOWS order. */
const COST: Partial<Record<CniName, number[]>> = { none: [30_000, 30_000, 30_000], flannel: [32_000, 32_000, 32_000], calico: [60_000, 45_000, 40_000], cilium: [50_000, 48_000, 47_000] };

function workloadRun(cni: CniName, rep: number, seed: number, file = FILE, policies = 12): RunResult {
  const base = syntheticResult({ cni, policies: 12, repetition: rep, sweepId: 'sweep-20250101-000000-wkld', seed, samples: 300, connectNs: COST[cni]![0]! });
  const flows = FLOWS.map((f, i) => ({ ...f, protocol: 'TCP', allowed: true, metrics: syntheticResult({ cni, policies: 12, seed: seed * 10 + i, samples: 300, connectNs: COST[cni]![i]! }).metrics }));
  const r = { ...base, meta: { ...base.meta, workload: { name: 'shop', file, nodes: 3, pods: 40, endpoints: 8, policies } }, modelState: { iptablesRules: 120, ipsets: 14, compileMs: 3 }, flows };
  return runResultSchema.parse(JSON.parse(JSON.stringify(r)));
}

/** Two findings as a sweep's verify run records them (not-enforced is never stored: the verdict says it). */
const FINDINGS = [
  { kind: 'or-peers', policy: 'shop/allow-web', field: 'spec.ingress[0].from', message: 'namespaceSelector {team=web} and podSelector {app=front} as two peers', fix: 'put them in one peer' },
  { kind: 'egress-without-dns', policy: 'web/egress-api', message: '2 pods (web/front-0, web/front-1) are egress-restricted by web/egress-api, and none allows UDP 53', fix: 'add an egress rule to the kube-dns pods' },
];

function verify(cni: CniName, differFromSpec: number, enforces: boolean, file = FILE, findings: boolean | typeof FINDINGS = false): WorkloadVerifyRecord {
  return {
    kind: WORKLOAD_VERIFY_KIND,
    schemaVersion: WORKLOAD_VERIFY_VERSION,
    sweepId: 'sweep-20250101-000000-wkld',
    runId: `v-${cni}`,
    cni,
    backend: 'local',
    model: { name: `${cni} model`, enforcesPolicy: enforces },
    workload: { name: 'shop', file },
    ...(findings ? { findings: findings === true ? FINDINGS : findings } : {}),
    flowChoice: 'every pod pair on every port the destination declares: 20 flows',
    verdict: enforces ? { kind: 'as-documented', text: 'as documented' } : { kind: 'not-enforced', text: 'NOT ENFORCED' },
    probed: 20,
    differFromSpec,
    documented: differFromSpec,
    mismatches: 0,
    flows: Array.from({ length: differFromSpec }, (_, i) => ({ from: 'web/front-0', to: `shop/db-${i}`, port: 5432, protocol: 'TCP', spec: 'denied' as const, expected: 'allowed' as const, observed: 'allowed' as const })),
    finishedAt: '2025-01-01T00:00:00.000Z',
    timings: {},
  };
}

function workloadSweep(opts: { verify: boolean; findings?: boolean; file?: string; policies?: number; dir?: string }): string {
  const dir = opts.dir ?? tempDir('cb-wreport-');
  const [file, policies] = [opts.file ?? FILE, opts.policies ?? 12];
  let seed = 1;
  for (const cni of ['none', 'flannel', 'calico', 'cilium'] as CniName[]) for (let rep = 1; rep <= 3; rep++) writeResult(join(dir, pointKey(cni, policies, rep)), workloadRun(cni, rep, (seed += 7), file, policies));
  if (opts.verify) {
    const f = opts.findings ?? false;
    const records = [verify('none', 6, false, file, f), verify('flannel', 6, false, file, f), verify('calico', 0, true, file, f), verify('cilium', 3, true, file, f)];
    for (const r of records) writeFileSync(join(dir, verifyFileName(r.cni)), JSON.stringify(r));
  }
  return dir;
}

const analysisOf = (dir: string) => {
  const c = collectResults([dir]);
  expect(c.problems).toEqual([]);
  return analyze(c.results, { verifies: c.verifies.map((v) => v.record), problems: c.problems, resamples: 200 });
};
/** The cells of the markdown table row whose first cell is `first`, in the section starting at `heading`. */
function row(md: string, heading: string, first: string): string[] {
  const section = md.slice(md.indexOf(heading));
  const line = section.split('\n').find((l) => l.startsWith(`| ${first} |`))!;
  return line.replace(/^\| | \|$/g, '').split(' | ');
}

describe('the report of a workload sweep', () => {
  const a = analysisOf(workloadSweep({ verify: true }));
  const md = renderMarkdown(a);

  it('is titled by the workload and opens with the answer, then advice, per-flow figures and how it was measured', () => {
    expect(md.split('\n')[1]).toBe('# Workload shop on every data plane');
    const order = ['## shop: the answer', '### shop: advice', '## shop: every measured flow', '## shop: distribution, worst flow and state per data plane', '## How it was measured'].map((h) => md.indexOf(h));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    expect(md).not.toContain('## What ran');
    // The run's node count is the nodes its real endpoints were replayed on, not the workload's.
    expect(md).toContain('12 NetworkPolicies, 40 pods (8 of them real endpoints in each run, on the 3 nodes that hold them; the rest address-only)');
  });

  it('gives each data plane: enforces?, typical and worst flow with CIs, flows that differ from the spec, the verdict', () => {
    const head = row(md, '## shop: the answer', 'data plane');
    expect(head).toEqual(['data plane', 'enforces?', 'typical flow connect p50, µs (95% CI)', 'worst flow connect p50, µs (95% CI)', 'what the policy set means there', 'verdict']);
    const calico = row(md, '## shop: the answer', 'Calico (iptables)');
    expect(calico[1]).toBe('yes');
    // Typical: the median flow (45 µs); worst: the most expensive (60 µs), each with its 95% CI.
    expect(Number(calico[2]!.split(' ')[0])).toBeCloseTo(45, -0.5);
    expect(Number(calico[3]!.split(' ')[0])).toBeCloseTo(60, -0.5);
    expect(calico[3]).toMatch(/^\d+\.\d \(\d+\.\d–\d+\.\d\)$/);
    expect(calico[4]).toBe('as the spec (0 of 20 flows differ)');
    expect(calico[5]).toBe('enforces as the spec says (20 flows probed)');
    const cilium = row(md, '## shop: the answer', 'Cilium');
    expect(cilium[4]).toBe('3 of 20 flows differ from the spec');
    expect(cilium[5]).toMatch(/3 of 20 flows get another verdict than the spec/);
    const flannel = row(md, '## shop: the answer', 'Flannel');
    expect(flannel[1]).toBe('**no**');
    expect(flannel[5]).toMatch(/NOT ENFORCED/);
    expect(row(md, '## shop: the answer', 'No CNI (routing floor)')[1]).toBe('–');
  });

  it('advises from the answer: what does not enforce, what means something else, the cheapest faithful data plane', () => {
    const advice = md.slice(md.indexOf('### shop: advice'), md.indexOf('## shop: every measured flow'));
    expect(advice).toMatch(/Flannel.*does not enforce NetworkPolicy/);
    expect(advice).toMatch(/Cilium.*gives 3 of 20 probed flows another verdict/);
    expect(advice).toMatch(/\*\*Calico \(iptables\)\*\* has the cheapest worst flow/);
  });

  it('shows every flow and, per data plane, the distribution and worst flow beside its state', () => {
    expect(row(md, '## shop: every measured flow', 'Calico (iptables)')[1]).toBe('shop/api-0 → shop/db-0 5432/TCP');
    const dist = row(md, '## shop: distribution', 'Calico (iptables)');
    expect(dist[3]).toBe('shop/api-0 → shop/db-0 5432/TCP');
    expect(dist[5]).toBe('iptablesRules 120, ipsets 14');
    // The flows that differ from the spec are listed where the data plane enforces (the migration question), not
    // for one that enforces nothing (every denied flow connects: the verdict says it).
    const details = md.slice(md.indexOf("the flows whose observed verdict is not the spec's"));
    expect(details.split('\n').filter((l) => l.startsWith('| Cilium'))).toHaveLength(3);
    expect(details).not.toMatch(/^\| (Flannel|No CNI)/m);
  });

  it('leaves out what a workload sweep does not measure: no curves, verdicts, crossovers or enforcement', () => {
    for (const h of ['## Scaling: verdicts', '## New-connection latency', '## Crossovers', '## CNI selection', '## How the verdicts are decided', 'enforce:', 'fail-open']) expect(md).not.toContain(h);
    const doc = reportDocument(a);
    expect(doc.workloads![0]!.planes.map((p) => p.cni)).toEqual(['none', 'flannel', 'calico', 'cilium']);
    expect('crossovers' in doc).toBe(false);
    const ids = doc.cnis.flatMap((c) => c.metrics.map((m) => m.id));
    expect(ids.some((i) => i.startsWith('enforce_') || i.startsWith('failopen_'))).toBe(false);
  });

  it('bench report reads the verify records beside the runs into report.md and the JSON', async () => {
    const dir = workloadSweep({ verify: true });
    expect(await cmdReport([dir], {}, bufferIo())).toBe(0);
    const written = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(row(written, '## shop: the answer', 'Cilium')[4]).toBe('3 of 20 flows differ from the spec');
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<title>Workload shop on every data plane</title>');
    const json = join(dir, 'analysis.json');
    expect(await cmdReport([dir], { format: 'json', output: json }, bufferIo())).toBe(0);
    expect(JSON.parse(readFileSync(json, 'utf8')).workloads[0].planes[3].verify.differFromSpec).toBe(3);
  }, 60_000);

  it('without a verify run, says nothing about what the policy set means (no column, no guess)', () => {
    const plain = renderMarkdown(analysisOf(workloadSweep({ verify: false })));
    expect(row(plain, '## shop: the answer', 'data plane')).not.toContain('what the policy set means there');
    expect(plain).not.toContain('differ from the spec');
  });
});

describe('an ordinary policy sweep leaves out what it did not measure', () => {
  it('has no enforce or fail-open rows in the report or its JSON, and no workload section', () => {
    const dir = tempDir('cb-report-');
    writeSyntheticSweep(dir, { curves: [{ cni: 'none', baseNs: 40_000, slopeNs: 0 }, { cni: 'calico', baseNs: 38_000, slopeNs: 10 }], policies: [0, 100, 1000], repetitions: 2, samples: 200 });
    const a = analysisOf(dir);
    const md = renderMarkdown(a);
    expect(md.split('\n')[1]).toBe('# CNI data-plane benchmark report');
    expect(md).toContain('## Scaling: verdicts');
    for (const t of ['enforce:', 'fail-open:', ': the answer']) expect(md).not.toContain(t);
    const doc = reportDocument(a);
    expect('workloads' in doc).toBe(false);
    expect(doc.cnis[0]!.metrics.map((m) => m.id)).toEqual(['connect_p50', 'connect_p99', 'crr_p50', 'rr_p50', 'cpu_per_conn']);
  });
});

describe('a data plane without a policy engine on which some flows did not connect', () => {
  it('does not claim every denied flow connected: names the flows that did not, as not documented', () => {
    const dir = workloadSweep({ verify: false });
    const flannel = { ...verify('flannel', 5, false), verdict: { kind: 'differs' as const, text: 'DIFFERS from its documented semantics on 2 of 20 flows' }, mismatches: 2 };
    writeFileSync(join(dir, verifyFileName('flannel')), JSON.stringify(flannel));
    const cells = row(renderMarkdown(analysisOf(dir)), '## shop: the answer', 'Flannel');
    expect(cells[4]).toBe('5 of 20 flows differ from the spec, 2 not as documented');
    expect(cells[5]).toContain('**2 of 20 flows did not connect** although nothing there should stop them');
    expect(cells[5]).not.toContain('all connected');
  });
});

describe('the findings of the policy set, in the report (issue 23 point 5)', () => {
  const findingsSection = (md: string) => md.slice(md.indexOf('### shop: findings in the policy set'), md.indexOf('## shop: every measured flow'));

  it('lists each finding naming the policy and the field, after the answer table, in markdown, HTML and JSON', async () => {
    const dir = workloadSweep({ verify: true, findings: true });
    const a = analysisOf(dir);
    const md = renderMarkdown(a);
    expect(md.indexOf('### shop: findings in the policy set')).toBeGreaterThan(md.indexOf('## shop: the answer'));
    const section = findingsSection(md);
    // Recorded in all four verify records: listed once each.
    expect(section).toContain('2 findings (or-peers 1, egress-without-dns 1)');
    const rows = section.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows.map((l) => l.split(' | ')[0])).toEqual(['| `shop/allow-web`', '| `web/egress-api`']);
    expect(rows[0]).toContain('`spec.ingress[0].from` | or-peers | namespaceSelector {team=web}');
    expect(rows[0]).toContain('put them in one peer');
    // A data plane without a policy engine: one line, not one per policy.
    expect(section).toMatch(/\*\*not-enforced\*\*: on No CNI \(routing floor\), Flannel every one of the 12 policies/);
    const doc = reportDocument(a);
    expect(doc.workloads![0]!.findings).toMatchObject({ source: 'verify-records', notEnforcedOn: ['none', 'flannel'], items: [{ kind: 'or-peers', policy: 'shop/allow-web', field: 'spec.ingress[0].from' }, { kind: 'egress-without-dns', policy: 'web/egress-api' }] });
    expect(await cmdReport([dir], {}, bufferIo())).toBe(0);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('shop: findings in the policy set');
    expect(html).toContain('shop/allow-web');
  }, 60_000);

  it('collapses a long list under its counts', () => {
    const many = Array.from({ length: 13 }, (_, i) => ({ kind: 'selects-no-pod', policy: `shop/p-${String(i).padStart(2, '0')}`, field: 'spec.podSelector', message: 'selects no pod', fix: 'delete it' }));
    const dir = workloadSweep({ verify: false });
    for (const [cni, enf] of [['calico', true], ['flannel', false]] as Array<[CniName, boolean]>) writeFileSync(join(dir, verifyFileName(cni)), JSON.stringify(verify(cni, 0, enf, FILE, many)));
    const section = findingsSection(renderMarkdown(analysisOf(dir)));
    expect(section).toContain('<details><summary>shop: the 13 findings</summary>');
    expect(section.split('\n').filter((l) => l.startsWith('| `shop/p-'))).toHaveLength(13);
  });

  it('reads them from the workload file when the verify records predate them, and says so', async () => {
    // The test cluster's 8 policies: bench report finds the file the runs name and computes the findings.
    const file = 'src/workload/fixtures/replay-cluster.json';
    const dir = workloadSweep({ verify: true, file, policies: 8 });
    expect(await cmdReport([dir], {}, bufferIo())).toBe(0);
    const section = findingsSection(readFileSync(join(dir, 'report.md'), 'utf8'));
    expect(section).toContain(`Read from \`${file}\` when this report was made`);
    for (const p of ['api/allow-scrape', 'db/allow-worker-cidr', 'db/egress-to-api-only', 'kube-system/node-exporter-ingress', 'monitoring/allow-grafana', 'web/allow-api']) expect(section).toContain(`\`${p}\``);
  }, 60_000);

  it('says nothing it does not know: no records with findings and no file at hand', () => {
    const section = findingsSection(renderMarkdown(analysisOf(workloadSweep({ verify: true }))));
    expect(section).toContain('Not recorded by this sweep, and `cluster.json` could not be read when this report was made');
    expect(section).not.toContain('| `');
  });
});

describe('a report over a workload sweep and a policy sweep together (issue 23)', () => {
  it('keeps them apart: the workload answer, the curves fitted over the policy sweep only, each naming its directories', async () => {
    const parent = tempDir('cb-mixed-');
    const wdir = join(parent, 'sweep-workload');
    const pdir = join(parent, 'sweep-policies');
    workloadSweep({ verify: true, findings: true, dir: (mkdirSync(wdir), wdir) });
    writeSyntheticSweep(pdir, { curves: [{ cni: 'none', baseNs: 40_000, slopeNs: 0 }, { cni: 'calico', baseNs: 38_000, slopeNs: 10 }], policies: [0, 100, 1000], repetitions: 2, samples: 200, sweepId: 'sweep-20250101-000000-curv' });
    const a = analysisOf(parent);
    // The workload runs (12 policies, their worst flow) are no point on the benchmark's curves.
    expect(a.policyCounts).toEqual([0, 100, 1000]);
    expect(a.cnis.map((c) => c.cni)).toEqual(['none', 'calico']);
    expect(a.cnis.find((c) => c.cni === 'calico')!.metrics.connect_p50.points.map((p) => p.policies)).toEqual([0, 0, 100, 100, 1000, 1000]);
    expect(a.parts).toEqual({ workload: { runs: 12, sweepIds: ['sweep-20250101-000000-wkld'], dirs: [wdir] }, curves: { runs: 12, sweepIds: ['sweep-20250101-000000-curv'], dirs: [pdir] } });
    const md = renderMarkdown(a);
    expect(md.split('\n')[1]).toBe('# Workload shop on every data plane, and the policy-count curves');
    expect(md).toContain(`**The workload answer** (the sections named after the workload) comes from 12 runs of sweep sweep-20250101-000000-wkld (\`${wdir}\`)`);
    expect(md).toContain(`**The policy-count curves** (latency per count, verdicts, fits, crossovers, CNI selection) come from 12 runs of sweep sweep-20250101-000000-curv (\`${pdir}\`)`);
    for (const h of ['## shop: the answer', '### shop: findings in the policy set', '## Scaling: verdicts', '## CNI selection']) expect(md).toContain(h);
    expect(row(md, '## shop: the answer', 'Calico (iptables)')[4]).toBe('as the spec (0 of 20 flows differ)');
    const doc = reportDocument(a);
    expect(doc.parts?.curves.sweepIds).toEqual(['sweep-20250101-000000-curv']);
    expect(doc.policyCounts).toEqual([0, 100, 1000]);
    expect(await cmdReport([parent], {}, bufferIo())).toBe(0);
    expect(readFileSync(join(parent, 'report.md'), 'utf8')).toContain('This report holds two kinds of sweep, kept apart.');
  }, 120_000);
});
