import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { chartSpecs } from './charts.js';
import { buildReport, perfdashJson } from './write.js';
import { reportDocument } from './json.js';
import { markdownToHtml } from './html.js';
import { writeSyntheticSweep, type SyntheticCurve } from './test-support/fixtures.js';
import { cmdReport } from '../cli/commands/report.js';
import { cmdCompare } from '../cli/commands/compare.js';
import { bufferIo } from '../cli/test-support/cli.js';
import { tempDir } from '../test-support/temp.js';

const COUNTS = [0, 100, 500, 1000, 2000, 5000, 10000];
const CURVES: SyntheticCurve[] = [
  { cni: 'none', baseNs: 40_000, slopeNs: 0 },
  { cni: 'flannel', baseNs: 45_000, slopeNs: 0 },
  { cni: 'calico', baseNs: 38_000, slopeNs: 10, cpuSlopeUs: 0.002 },
  { cni: 'cilium', baseNs: 48_000, slopeNs: 0, failAt: 10000 },
];

function sweepDir(opts: { scale?: number; seed?: number; curves?: SyntheticCurve[]; policies?: number[] } = {}): string {
  const dir = tempDir('cb-report-');
  writeSyntheticSweep(dir, { curves: opts.curves ?? CURVES, policies: opts.policies ?? COUNTS, repetitions: 3, samples: 300, scale: opts.scale, seed: opts.seed });
  return dir;
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

  it('the CPU chart and the JSON report carry the CPU with its resolution, and the machine reference', () => {
    const cpu = chartSpecs(a).find((s) => s.id === 'cpu_per_conn')!;
    expect(cpu.rows.length).toBeGreaterThan(0);
    for (const r of cpu.rows) {
      const row = a.cpu.rows.find((x) => x.cni === r.cni && x.policies === r.policies)!;
      expect(r.resolution).toBe(row.resolutionUs);
      expect(row.resolutionUs).toBeLessThanOrEqual(0.1 * r.value); // only resolved points are charted
    }
    expect(cpu.subtitle).toMatch(/resolution ±[\d.]+ µs or finer$/);
    expect(chartSpecs(a).find((s) => s.id === 'connect_p50')!.rows.every((r) => r.resolution === undefined)).toBe(true);
    const doc = JSON.parse(JSON.stringify(reportDocument(a))) as { cpu: { rows: Array<{ resolutionUs: number }> }; machine: { measuredRuns: number } };
    expect(doc.cpu.rows.length).toBe(a.cpu.rows.length);
    expect(doc.cpu.rows.every((r) => r.resolutionUs > 0)).toBe(true);
    expect(doc.machine.measuredRuns).toBeGreaterThan(0);
  });

  it('writes markdown with the tables, the advice and the rules', async () => {
    const r = await buildReport(a);
    expect(r.markdown).toContain('## Scaling: verdicts');
    expect(r.markdown).toContain('hierarchical bootstrap');
    expect(r.markdown).toContain('CPU placement');
    expect(r.markdown).toMatch(/Flannel does not enforce NetworkPolicy/);
    expect(r.markdown).toMatch(/Calico \(iptables\) is cheaper per new connection below ≈\d+ policies/);
    expect(r.markdown).toContain('Capacity limits');
    expect(r.markdown).toContain('Kernel requirements');
    expect(r.markdown).toContain('Managed clouds');
    expect(r.markdown).toContain('How the verdicts are decided');
    expect(r.markdown).toContain('synthetic: iptables chains per endpoint');
    expect(r.charts).toHaveLength(5);
    for (const ch of r.charts) expect(ch.svg.startsWith('<svg')).toBe(true);
    expect(r.html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org|vega\.github\.io)/);
    expect((r.html.match(/<figure /g) ?? []).length).toBe(5);
  }, 30_000);

  it('emits perfdash PerfData', () => {
    const p = JSON.parse(perfdashJson(a)) as { version: string; dataItems: Array<{ data: Record<string, number>; unit: string; labels: Record<string, string> }> };
    expect(p.version).toBe('v1');
    const item = p.dataItems.find((d) => d.labels.CNI === 'calico' && d.labels.Metric === 'connect' && d.labels.Policies === '1000')!;
    expect(item.unit).toBe('us');
    expect(item.data.Perc50).toBeGreaterThan(45);
    expect(item.data.Perc50).toBeLessThan(51);
    expect(p.dataItems.find((d) => d.labels.CNI === 'calico' && d.labels.Metric === 'connect_p50_slope')!.labels.Verdict).toBe('O(n)');
    for (const d of p.dataItems) for (const v of Object.values(d.data)) expect(Number.isFinite(v)).toBe(true);
    const cpu = p.dataItems.filter((d) => d.labels.Metric === 'cpu_per_connection');
    expect(cpu.length).toBeGreaterThan(0);
    for (const d of cpu) expect(d.data.Resolution).toBeLessThanOrEqual(0.1 * d.data.Value!);
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
  }, 30_000);

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

describe('curved growth, per-rule cost and the JSON report', () => {
  // Calico-like: 36 → 252 → 1328 → 6820 µs at 0/1000/5000/10000 policies; the model reports 4 rules per policy.
  const dir = tempDir('cb-report-');
  const at: Record<number, number> = { 0: 36_000, 1000: 252_000, 5000: 1_328_000, 10000: 6_820_000 };
  const setup = (async () => {
    const { writeResult } = await import('../results/io.js');
    const { syntheticResult } = await import('./test-support/fixtures.js');
    let seed = 1;
    for (const [x, y] of Object.entries(at)) {
      for (const rep of [1, 2, 3]) {
        const r = syntheticResult({ cni: 'calico', policies: Number(x), repetition: rep, seed: (seed += 11), samples: 400, connectNs: y * (1 + 0.02 * (rep - 2)), rrNs: 30_000 * (1 + 0.01 * (rep - 2)) });
        r.modelState = { ...r.modelState, rulesTraversedPerPolicy: 4 };
        writeResult(join(dir, `calico-${x}-r${rep}`), r);
      }
    }
  })();

  it('calls the curve super-linear with segment costs, never headlines the negative-intercept line, and gives ns per rule', async () => {
    await setup;
    const c = collectResults([dir]);
    const a = analyze(c.results, { resamples: 500 });
    const m = a.cnis[0]!.metrics.connect_p50;
    expect(m.fit!.intercept).toBeLessThan(0);
    expect(m.verdict.complexity).toBe('super-linear');
    expect(m.verdict.headline).toBe('segments');
    expect(m.counts.map((x) => x.level)).toEqual(['runs', 'runs', 'runs', 'runs']);
    expect(m.perRule!.rulesTraversedPerPolicy).toBe(4);
    // last segment ≈ 1098 ns/policy → ≈ 275 ns/rule, above the 15–25 ns band
    expect(m.perRule!.nsPerRule).toBeGreaterThan(250);
    expect(m.perRule!.comparison).toBe('above');
    expect(a.cnis[0]!.metrics.rr_p50.verdict.complexity).toBe('O(1)');
    const r = await buildReport(a);
    expect(r.markdown).toContain('## Segment costs');
    expect(r.markdown).toContain('## Cost per rule traversed');
    expect(r.markdown).toMatch(/\| calico \| connect p50 \| \*\*super-linear\*\* \| \d+ → \d+ ns\/policy, k = 1\.\d\d/);
  });

  it('bench report --format json: one document with points, CIs, segments, exponents, verdicts and reasons', async () => {
    await setup;
    const io = bufferIo();
    expect(await cmdReport([dir], { format: 'json' }, io)).toBe(0);
    const doc = JSON.parse(io.out());
    expect(doc.kind).toBe('cni-bench/report');
    const connect = doc.cnis[0].metrics.find((m: { id: string }) => m.id === 'connect_p50');
    expect(connect.points).toHaveLength(4);
    expect(connect.points[0].ci95).toHaveLength(2);
    expect(connect.segments).toHaveLength(3);
    expect(connect.growthExponent.k).toBeGreaterThan(1.1);
    expect(connect.verdict).toMatchObject({ complexity: 'super-linear', headline: 'segments' });
    expect(connect.verdict.reason).toMatch(/faster than linearly/);
    expect(connect.line.interceptNs).toBeLessThan(0);
    expect(doc.ciMethod).toMatch(/hierarchical bootstrap/);
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

  it('refuses results from another machine class unless --force, and says why', async () => {
    const other = tempDir('cb-report-');
    const { writeResult } = await import('../results/io.js');
    const { syntheticResult } = await import('./test-support/fixtures.js');
    for (const rep of [1, 2, 3]) writeResult(join(other, `a${rep}`), syntheticResult({ cni: 'none', policies: 0, seed: 3 + rep, connectNs: 40_000, samples: 300, machine: { hostname: 'elsewhere', cpuModel: 'Other CPU' } }));
    const io = bufferIo();
    expect(await cmdCompare(baseline, other, {}, io)).toBe(2);
    expect(io.err()).toMatch(/machine classes differ: baseline Synthetic CPU, 2 CPUs; current Other CPU, 2 CPUs/);
    expect(await cmdCompare(baseline, other, { force: true }, bufferIo())).toBe(0);
  });

  it('compares two machines of the same class (other hostname) with a warning', async () => {
    const other = tempDir('cb-report-');
    const { writeResult } = await import('../results/io.js');
    const { syntheticResult } = await import('./test-support/fixtures.js');
    for (const rep of [1, 2, 3]) writeResult(join(other, `a${rep}`), syntheticResult({ cni: 'none', policies: 0, seed: 30 + rep, connectNs: 40_000, samples: 500, machine: { hostname: 'ci-runner-7' } }));
    const io = bufferIo();
    expect(await cmdCompare(baseline, other, {}, io)).toBe(0);
    expect(io.err()).toMatch(/warning: hostnames differ: baseline bench-host; current ci-runner-7\. Same machine class/);
    expect(io.out()).toContain('**Warning:** hostnames differ');
  });

  it('refuses other policy shapes', async () => {
    const other = tempDir('cb-report-');
    const { writeResult } = await import('../results/io.js');
    const { syntheticResult } = await import('./test-support/fixtures.js');
    for (const rep of [1, 2, 3]) {
      const r = syntheticResult({ cni: 'none', policies: 0, seed: 50 + rep, connectNs: 40_000, samples: 300 });
      r.meta.policy.shape = 'namespace-wide';
      writeResult(join(other, `a${rep}`), r);
    }
    const io = bufferIo();
    expect(await cmdCompare(baseline, other, {}, io)).toBe(2);
    expect(io.err()).toMatch(/policy shapes differ: baseline default; current namespace-wide/);
  });

  it('single runs: says "not enough repetitions to judge" and exits 3, even on a large change', async () => {
    const one = tempDir('cb-report-');
    const { writeResult } = await import('../results/io.js');
    const { syntheticResult } = await import('./test-support/fixtures.js');
    writeResult(join(one, 'a'), syntheticResult({ cni: 'none', policies: 0, seed: 77, connectNs: 80_000, samples: 500 }));
    const io = bufferIo();
    expect(await cmdCompare(baseline, one, {}, io)).toBe(3);
    expect(io.err()).toContain('not enough repetitions to judge: none @ 0 (3/1 runs)');
    expect(io.out()).toContain('## cni-bench compare: not enough repetitions to judge');
    // --min-repetitions 2 still needs two a side
    expect(await cmdCompare(baseline, one, { minRepetitions: '2' }, bufferIo())).toBe(3);
    expect(await cmdCompare(baseline, one, { minRepetitions: '1' }, bufferIo())).toBe(2);
  });

  it('names a missing side and exits 2', async () => {
    const io = bufferIo();
    expect(await cmdCompare(baseline, join(tmpdir(), 'cb-missing-dir'), {}, io)).toBe(2);
    expect(io.err()).toContain('cb-missing-dir: no such file or directory');
  });

  it('accepts single result files (and says one run is not enough to judge)', async () => {
    const f = join(baseline, 'calico-1000-r1', 'result.json');
    expect(await cmdCompare(f, f, {}, bufferIo())).toBe(3);
  });
});

describe('markdownToHtml: collapsible reference sections', () => {
  it('passes our <details> lines through and still escapes everything else', () => {
    const html = markdownToHtml('<details><summary>Straight-line fits</summary>\n\n| a | b |\n| --- | --- |\n| <x> | 2 |\n\n</details>\n');
    expect(html).toContain('<details><summary>Straight-line fits</summary>');
    expect(html).toContain('</details>');
    expect(html).not.toContain('<x>');
  });
});
