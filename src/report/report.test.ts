import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { chartSpecs } from './charts.js';
import { buildReport, perfdashJson } from './write.js';
import { markdownToHtml } from './html.js';
import { writeSyntheticSweep, type SyntheticCurve } from './test-support/fixtures.js';
import { cmdReport } from '../cli/commands/report.js';
import { cmdCompare } from '../cli/commands/compare.js';
import type { CommandIo } from '../cli/io.js';

const COUNTS = [0, 100, 500, 1000, 2000, 5000, 10000];
const CURVES: SyntheticCurve[] = [
  { cni: 'none', baseNs: 40_000, slopeNs: 0 },
  { cni: 'flannel', baseNs: 45_000, slopeNs: 0 },
  { cni: 'calico', baseNs: 38_000, slopeNs: 10, cpuSlopeUs: 0.002 },
  { cni: 'cilium', baseNs: 48_000, slopeNs: 0, failAt: 10000 },
];

function sweepDir(opts: { scale?: number; seed?: number; curves?: SyntheticCurve[]; policies?: number[] } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'cb-report-'));
  writeSyntheticSweep(dir, { curves: opts.curves ?? CURVES, policies: opts.policies ?? COUNTS, repetitions: 3, samples: 300, scale: opts.scale, seed: opts.seed });
  return dir;
}

function bufferIo(): CommandIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, out: () => out, err: () => err };
}

describe('analysis of a synthetic sweep', () => {
  const dir = sweepDir();
  const c = collectResults([dir]);
  const a = analyze(c.results, { problems: c.problems });

  it('gives the known verdicts and slopes', () => {
    const by = Object.fromEntries(a.cnis.map((x) => [x.cni, x]));
    expect(a.cnis.map((x) => x.cni)).toEqual(['none', 'flannel', 'calico', 'cilium']);
    expect(by.calico!.metrics.connect_p50.verdict.complexity).toBe('O(n)');
    const [lo, hi] = by.calico!.metrics.connect_p50.fit!.slopeCi95;
    expect(lo).toBeLessThan(10);
    expect(hi).toBeGreaterThan(10);
    for (const cni of ['none', 'flannel', 'cilium']) expect(by[cni]!.metrics.connect_p50.verdict.complexity, cni).toBe('O(1)');
    for (const x of a.cnis) expect(x.metrics.rr_p50.verdict.complexity, x.cni).toBe('O(1)');
    expect(by.flannel!.policiesEnforced).toBe(false);
  });

  it('finds where calico passes cilium, and records the capacity failures', () => {
    const x = a.crossovers.find((y) => y.metric === 'connect_p50' && [y.lowerBefore, y.lowerAfter].join() === 'calico,cilium');
    expect(x).toBeDefined();
    expect(x!.atPolicies).toBeGreaterThan(500);
    expect(x!.atPolicies).toBeLessThan(2000);
    expect(a.failures).toHaveLength(3);
    expect(a.failures.every((f) => f.cni === 'cilium' && f.policies === 10000 && f.kind === 'capacity')).toBe(true);
  });

  it('charts one point per CNI and policy count', () => {
    const specs = chartSpecs(a);
    expect(specs.map((s) => s.id)).toEqual(['connect_p50', 'connect_p99', 'crr_p50', 'rr_p50', 'cpu_per_conn']);
    expect(specs[0]!.rows).toHaveLength(3 * 7 + 6);
  });

  it('writes markdown with the tables, the advice and the rules', async () => {
    const r = await buildReport(a);
    expect(r.markdown).toContain('## Scaling: slopes and verdicts');
    expect(r.markdown).toMatch(/Flannel does not enforce NetworkPolicy/);
    expect(r.markdown).toMatch(/Calico is cheaper per new connection below ≈\d+ policies/);
    expect(r.markdown).toContain('Capacity limits');
    expect(r.markdown).toContain('Kernel requirements');
    expect(r.markdown).toContain('Managed clouds');
    expect(r.markdown).toContain('How the verdicts are decided');
    expect(r.markdown).toContain('synthetic: iptables chains per endpoint');
    expect(r.charts).toHaveLength(5);
    for (const ch of r.charts) expect(ch.svg.startsWith('<svg')).toBe(true);
    expect(r.html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org|vega\.github\.io)/);
    expect((r.html.match(/<figure /g) ?? []).length).toBe(5);
  });

  it('emits perfdash PerfData', () => {
    const p = JSON.parse(perfdashJson(a)) as { version: string; dataItems: Array<{ data: Record<string, number>; unit: string; labels: Record<string, string> }> };
    expect(p.version).toBe('v1');
    const item = p.dataItems.find((d) => d.labels.CNI === 'calico' && d.labels.Metric === 'connect' && d.labels.Policies === '1000')!;
    expect(item.unit).toBe('us');
    expect(item.data.Perc50).toBeGreaterThan(45);
    expect(item.data.Perc50).toBeLessThan(51);
    expect(p.dataItems.find((d) => d.labels.CNI === 'calico' && d.labels.Metric === 'connect_p50_slope')!.labels.Verdict).toBe('O(n)');
    for (const d of p.dataItems) for (const v of Object.values(d.data)) expect(Number.isFinite(v)).toBe(true);
  });
});

describe('markdownToHtml', () => {
  it('renders the subset the report uses, escaping HTML', () => {
    const html = markdownToHtml('# T\n\nsome **bold** `x<y`\n\n| a | b |\n| --- | ---: |\n| 1 \\| 2 | 3 |\n\n- one\n- two\n');
    expect(html).toContain('<h1 id="t">T</h1>');
    expect(html).toContain('<strong>bold</strong> <code>x&lt;y</code>');
    expect(html).toContain('<td>1 | 2</td><td class="r">3</td>');
    expect(html).toContain('<ul><li>one</li><li>two</li></ul>');
  });
});

describe('bench report', () => {
  it('writes report.md and report.html into the sweep directory, and regenerates them', async () => {
    const dir = sweepDir({ curves: CURVES.slice(0, 2), policies: [0, 100, 1000] });
    const io = bufferIo();
    expect(await cmdReport([dir], {}, io)).toBe(0);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('# CNI data-plane benchmark report');
    expect(existsSync(join(dir, 'report.html'))).toBe(true);
    expect(await cmdReport([dir], {}, bufferIo())).toBe(0);
    // Two full reports, each recomputing every run's bootstrap CIs from its samples (results/io.ts never trusts a stored summary).
  }, 20_000);

  it('never overwrites a file it did not write, unless --force', async () => {
    const dir = sweepDir({ curves: CURVES.slice(0, 1), policies: [0, 100, 1000] });
    writeFileSync(join(dir, 'report.md'), 'my notes\n');
    const io = bufferIo();
    expect(await cmdReport([dir], {}, io)).toBe(2);
    expect(io.err()).toMatch(/report\.md.*not overwriting/);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe('my notes\n');
    expect(existsSync(join(dir, 'report.html'))).toBe(false);
    expect(await cmdReport([dir], { force: true }, bufferIo())).toBe(0);
  });

  it('names a truncated and a foreign file, still reports the rest, and exits 2', async () => {
    const dir = sweepDir({ curves: CURVES.slice(0, 1), policies: [0, 100, 1000] });
    const truncated = join(dir, 'none-0-r1', 'result.json');
    writeFileSync(truncated, readFileSync(truncated, 'utf8').slice(0, 200));
    const foreign = join(dir, 'other', 'result.json');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'other'));
    writeFileSync(foreign, '{"kind":"something-else"}');
    const io = bufferIo();
    expect(await cmdReport([dir], { format: 'md' }, io)).toBe(2);
    expect(io.err()).toContain(`skipped ${truncated}: not valid JSON (truncated or corrupted?)`);
    expect(io.err()).toContain(`skipped ${foreign}: not a cni-bench result file`);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('Input problems');
  });

  it('exits 2 when there is nothing to report', async () => {
    const io = bufferIo();
    expect(await cmdReport([join(tmpdir(), 'cb-does-not-exist')], {}, io)).toBe(2);
    expect(io.err()).toContain('no such file or directory');
  });
});

describe('bench compare', () => {
  const baseline = sweepDir({ curves: CURVES.slice(0, 3), policies: [0, 1000], seed: 1 });

  it('flags an injected 10% regression and exits 1', async () => {
    const current = sweepDir({ curves: CURVES.slice(0, 3), policies: [0, 1000], seed: 5000, scale: 1.1 });
    const io = bufferIo();
    expect(await cmdCompare(baseline, current, {}, io)).toBe(1);
    expect(io.out()).toMatch(/## cni-bench compare: \d+ REGRESSIONS/);
    expect(io.out()).toMatch(/\| calico \| 1000 \| connect p50 \|/);
  });

  it('does not flag a run drawn from the same distribution and exits 0', async () => {
    const current = sweepDir({ curves: CURVES.slice(0, 3), policies: [0, 1000], seed: 9000 });
    const io = bufferIo();
    expect(await cmdCompare(baseline, current, {}, io)).toBe(0);
    expect(io.out()).toContain('no regressions');
  });

  it('respects --max-regression', async () => {
    const current = sweepDir({ curves: CURVES.slice(0, 3), policies: [0, 1000], seed: 5000, scale: 1.1 });
    expect(await cmdCompare(baseline, current, { maxRegression: '20%' }, bufferIo())).toBe(0);
  });

  it('refuses results from another machine unless --force, and says why', async () => {
    const other = mkdtempSync(join(tmpdir(), 'cb-report-'));
    const { writeResult } = await import('../results/io.js');
    const { syntheticResult } = await import('./test-support/fixtures.js');
    writeResult(join(other, 'a'), syntheticResult({ cni: 'none', policies: 0, seed: 3, connectNs: 40_000, samples: 300, machine: { hostname: 'elsewhere', cpuModel: 'Other CPU' } }));
    const io = bufferIo();
    expect(await cmdCompare(baseline, other, {}, io)).toBe(2);
    expect(io.err()).toMatch(/machines differ: baseline bench-host \(Synthetic CPU, 2 CPUs\); current elsewhere \(Other CPU, 2 CPUs\)/);
    expect(await cmdCompare(baseline, other, { force: true }, bufferIo())).toBe(0);
  });

  it('names a missing side and exits 2', async () => {
    const io = bufferIo();
    expect(await cmdCompare(baseline, join(tmpdir(), 'cb-missing-dir'), {}, io)).toBe(2);
    expect(io.err()).toContain('cb-missing-dir: no such file or directory');
  });

  it('accepts single result files', async () => {
    const f = join(baseline, 'calico-1000-r1', 'result.json');
    expect(await cmdCompare(f, f, {}, bufferIo())).toBe(0);
  });
});
