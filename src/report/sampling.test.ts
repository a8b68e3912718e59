import { describe, expect, it } from 'vitest';
import { analyze } from './analyze.js';
import { renderMarkdown } from './markdown.js';
import { latencySamples, syntheticResult } from './test-support/fixtures.js';
import { summarize } from '../stats/summary.js';
import type { RunResult } from '../results/schema.js';

/** A run whose connect and CRR a 1000 ms budget stopped at `taken` samples of 1000. */
function budgeted(cni: 'calico' | 'none', policies: number, seed: number, taken: number | null): RunResult {
  const r = syntheticResult({ cni, policies, connectNs: 30_000 + 1000 * policies, seed, samples: 1000, sweepId: 's', repetition: seed });
  r.meta.probe = { ...r.meta.probe, rounds: 10, sampleBudgetMs: 1000 };
  if (taken === null) return r;
  for (const m of ['connect', 'crr'] as const) {
    const samplesNs = latencySamples(seed + 7, taken, 30_000 + 1000 * policies);
    r.metrics[m] = { ...r.metrics[m]!, samplesNs, summary: summarize(samplesNs, { resamples: 100, seed: 1 }), sampling: { planned: 1000, budgetMs: 1000, reason: `${taken} of 1000 samples` } };
  }
  return r;
}

describe('sample budget in the report (issue 25)', () => {
  it('lists every point whose sample count differs from the planned, with its range over the runs, and no other', () => {
    const loaded = [budgeted('calico', 5000, 1, 200), budgeted('calico', 5000, 2, 230), budgeted('calico', 0, 3, null), budgeted('none', 5000, 4, null)].map((result, i) => ({ path: `r${i}/result.json`, result }));
    const a = analyze(loaded, { seed: 1, resamples: 100 });
    expect(a.budgeted).toEqual([
      { cni: 'calico', policies: 5000, metric: 'connect', planned: 1000, samples: [200, 230], runs: 2 },
      { cni: 'calico', policies: 5000, metric: 'crr', planned: 1000, samples: [200, 230], runs: 2 },
    ]);
    const md = renderMarkdown(a);
    expect(md).toContain('Sample budget: a metric stopped sampling after 1000 ms of measuring, never below 200 samples');
    expect(md).toContain('Fewer samples than planned: calico 5000 connect 200–230, calico 5000 crr 200–230.');
  });

  it('says nothing when no budget stopped a metric', () => {
    const loaded = [budgeted('calico', 0, 1, null), budgeted('calico', 500, 2, null)].map((result, i) => ({ path: `r${i}/result.json`, result }));
    const a = analyze(loaded, { seed: 1, resamples: 100 });
    expect(a.budgeted).toBeUndefined();
    expect(renderMarkdown(a)).not.toContain('Sample budget');
  });
});
