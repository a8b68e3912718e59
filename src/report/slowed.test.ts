// What the end-of-sweep line and the report say about runs on a slowed machine: an adaptive sweep's p50 verdicts
// adjust every run to its reference (so "their figures are the machine's" is not the whole truth there); a fixed
// sweep's verdicts count the runs as measured.
import { describe, expect, it } from 'vitest';
import type { CniName } from '../config/schema.js';
import { writeResult } from '../results/io.js';
import { normalFrom } from '../stats/hierarchical.js';
import { seededRandom } from '../stats/summary.js';
import { resolveSweepConfig } from '../sweep/config.js';
import { newManifest, writeManifest } from '../sweep/manifest.js';
import { planSweep } from '../sweep/plan.js';
import { runSweep, type PointRunner } from '../sweep/sweep.js';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { renderMarkdown } from './markdown.js';
import { slowedVerdicts } from './slowed.js';
import { sweepSummary } from './summary.js';
import { syntheticResult } from './test-support/fixtures.js';
import { tempDir } from '../test-support/temp.js';

/** A flat data plane (1% jitter) on a host that slows fixed runs by 25–40%, loopback reference included. */
async function disturbedSweep(repetitions: string | undefined): Promise<{ summary: string; markdown: string; kind: string }> {
  const dir = tempDir('cb-slowed-');
  const { config } = resolveSweepConfig({ cni: 'flannel' as CniName, policies: '0,500,1000,2000,5000', samples: '100', warmup: '0', ...(repetitions ? { repetitions } : {}) });
  const { cni: _c, policies: _p, out: _o, json: _j, dryRun: _d, keep: _k, ...settings } = config!.base;
  const m = newManifest({ id: 'sweep-20250101-000000-slow', backend: 'local', scenario: null, matrix: config!.matrix, settings: { ...settings, backend: 'local' }, points: planSweep(config!.matrix) });
  writeManifest(dir, m);
  let n = 0;
  const runner: PointRunner = async ({ point, runId, outDir, sweep }) => {
    n++;
    const rand = seededRandom(n * 104_729);
    const g = normalFrom(rand);
    const scale = [2, 4, 9, 13].includes(n) ? 1.25 + 0.15 * rand() : 1;
    const v = 30_000 * (1 + 0.01 * g()) * scale;
    const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: n, samples: 300, connectNs: v, crrNs: 2.5 * v, rrNs: v, reference: { scale } });
    r.runId = runId;
    writeResult(outDir, r);
    return { result: r };
  };
  const out = await runSweep({ dir, manifest: m, runPoint: runner, newRunId: () => `s${String(n + 1).padStart(4, '0')}` });
  expect(out.status).toBe('complete');
  const c = collectResults([dir]);
  const a = analyze(c.results, { seed: out.settings.seed, manifests: c.manifests });
  expect(a.machine.slowedRuns.length).toBe(4);
  return { summary: sweepSummary(out, a, 1000), markdown: renderMarkdown(a), kind: slowedVerdicts(a).kind };
}

describe('runs on a slowed machine: what the sweep at hand does with them', () => {
  it('an adaptive sweep: its p50 verdicts adjust every run to its reference; the point values, p99s and CPU are the runs\' own', async () => {
    const { summary, markdown, kind } = await disturbedSweep(undefined);
    expect(kind).toBe('adaptive');
    const line = summary.split('\n').find((l) => l.startsWith('the machine slowed in 4 of'))!;
    expect(line).toContain("the p50 verdicts above adjust every run to its reference, as the sweep's looks did");
    expect(line).toContain("their point values, p99s and CPU are the machine's, not the data plane's");
    expect(line).not.toMatch(/; their figures are the machine's/);
    expect(markdown).toContain("**The machine slowed in 4 runs** (reference more than 10% above its usual, or CPU share that much below): the p50 verdicts adjust every run to its reference, as the sweep's looks did");
    expect(markdown).toContain('the point values, p99s and CPU keep those runs as measured');
    expect(markdown).not.toContain('their figures are kept in the point values');
  }, 120_000);

  it('a fixed sweep: the runs count in its verdicts as measured, their figures the machine\'s', async () => {
    const { summary, markdown, kind } = await disturbedSweep('3');
    expect(kind).toBe('fixed');
    const line = summary.split('\n').find((l) => l.startsWith('the machine slowed in 4 of'))!;
    expect(line).toContain("their figures are the machine's, not the data plane's, and this fixed sweep's verdicts count them as measured");
    expect(line).not.toContain('adjust');
    expect(markdown).toContain('their figures are kept in the point values and, as measured, in the verdicts (a fixed sweep does not adjust to the reference)');
    expect(markdown).not.toMatch(/The machine slowed[^\n]*adaptive sweep's p50 verdicts adjust/);
  }, 120_000);
});
