import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyze } from './analyze.js';
import { chartSpecs } from './charts.js';
import { collectResults } from './collect.js';
import { renderHtml } from './html.js';
import { reportDocument } from './json.js';
import { renderMarkdown } from './markdown.js';
import { toPerfdash } from './perfdash.js';
import { latencySamples, writeSyntheticSweep } from './test-support/fixtures.js';
import { tempDir } from '../test-support/temp.js';
import { summarize } from '../stats/summary.js';

// A sweep where a sample budget stopped calico's connect at 200 samples at 1000 policies, where latency has a long
// tail: each run's p99 there is the second-largest sample, and its own 95% CI is wider than ±10% of it (the other
// counts' 3000 samples give CIs well within ±10%).
function budgetedSweep() {
  const dir = tempDir('cb-tail-');
  const paths = writeSyntheticSweep(dir, { curves: [{ cni: 'none', baseNs: 40_000, slopeNs: 0 }, { cni: 'calico', baseNs: 38_000, slopeNs: 700 }], policies: [0, 1000, 2000], repetitions: 2, samples: 3000 });
  for (const p of paths.filter((x) => x.includes('calico-1000-'))) {
    const r = JSON.parse(readFileSync(p, 'utf8'));
    const samples = latencySamples(r.meta.repetition, 200, 1_000_000, 0.6);
    r.metrics.connect.samplesNs = samples;
    r.metrics.connect.summary = summarize(samples, { resamples: 100, seed: 1 });
    r.metrics.connect.sampling = { planned: 300, budgetMs: 1000, reason: '200 of 300 samples: a 1000 ms budget, at least 200' };
    writeFileSync(p, JSON.stringify(r));
  }
  const c = collectResults([dir]);
  expect(c.problems).toEqual([]);
  return analyze(c.results);
}

describe('a p99 coarser than 10% of its value (issue: p99 from 200 samples)', () => {
  const a = budgetedSweep();
  const calico = a.cnis.find((c) => c.cni === 'calico')!;
  const p99At1000 = calico.metrics.connect_p99.counts.find((c) => c.policies === 1000)!;

  it('report.json gives it no value, says why and carries every tail figure’s resolution', () => {
    const doc = reportDocument(a);
    const m = doc.cnis.find((c) => c.cni === 'calico')!.metrics.find((x) => x.id === 'connect_p99')!;
    const at = (n: number) => m.points.find((p) => p.policies === n)! as { value: number | null; resolutionNs: number | null; belowResolution?: boolean };
    expect(at(1000).value).toBeNull();
    expect(at(1000).belowResolution).toBe(true);
    expect(at(1000).resolutionNs).toBeGreaterThan(0.1 * p99At1000.value);
    // A resolved count keeps its number and states its resolution.
    expect(at(0).value).toBeGreaterThan(0);
    expect(at(0).resolutionNs).toBeLessThan(0.1 * at(0).value!);
    expect(at(0).belowResolution).toBeUndefined();
    const runs = m.runs.filter((r) => r.policies === 1000) as Array<{ value: number | null }>;
    expect(runs.map((r) => r.value)).toEqual([null, null]);
    // connect p50 at the same point is resolved: untouched.
    const p50 = doc.cnis.find((c) => c.cni === 'calico')!.metrics.find((x) => x.id === 'connect_p50')!;
    expect(p50.points.find((p) => p.policies === 1000)!.value).toBeGreaterThan(0);
  });

  it('report.md and report.html print it as below resolution with its resolution, never its value', () => {
    const md = renderMarkdown(a);
    const res = (Math.max(...calico.metrics.connect_p99.points.filter((p) => p.policies === 1000).map((p) => (p.ci![1] - p.ci![0]) / 2)) / 1000).toFixed(1);
    expect(md).toContain(`calico connect p99 at 1000 policies (±${res} µs)`);
    expect(md).toMatch(/Below resolution, not printed as numbers/);
    expect(md).not.toContain((p99At1000.value / 1000).toFixed(1));
    const html = renderHtml(a, []);
    expect(html).toContain(`calico connect p99 at 1000 policies (±${res} µs)`);
    expect(html).not.toContain((p99At1000.value / 1000).toFixed(1));
  });

  it('the perf-dashboard file has no Perc99 for it', () => {
    const items = toPerfdash(a).dataItems.filter((i) => i.labels.CNI === 'calico' && i.labels.Metric === 'connect');
    expect(items.map((i) => [i.labels.Policies, 'Perc99' in i.data])).toEqual([['0', true], ['1000', false], ['2000', true]]);
  });

  it('the p99 chart leaves the point out and gives the others their resolution', () => {
    const chart = chartSpecs(a).find((c) => c.id === 'connect_p99')!;
    const rows = chart.rows.filter((r) => r.cni === 'calico');
    expect(rows.map((r) => r.policies)).toEqual([0, 2000]);
    for (const r of rows) expect(r.resolution).toBeGreaterThan(0);
    expect(chartSpecs(a).find((c) => c.id === 'connect_p50')!.rows.filter((r) => r.cni === 'calico').map((r) => r.policies)).toEqual([0, 1000, 2000]);
  });
});
