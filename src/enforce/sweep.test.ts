import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../config/schema.js';
import { runResultSchema, type RunResult } from '../results/schema.js';
import { compareResults } from '../report/compare.js';
import { pointValue, ANALYSIS_METRICS } from '../report/analyze.js';
import { enforceRunResult } from './sweep.js';
import { enforceResult } from './test-support/results.js';


const config = (cni: 'calico' | 'cilium', policies: number) => runConfigSchema.parse({ cni, policies, backend: 'local', measure: 'enforce' });

describe('enforce points as run results', () => {
  it('stores each change as a metric in ns, a change never seen as an error, fail-open windows too', () => {
    const r = enforceRunResult(enforceResult('calico', 100, 1), { config: config('calico', 100), sweep: { id: 's', repetition: 1 } });
    expect(() => runResultSchema.parse(r)).not.toThrow();
    expect(runResultSchema.parse(r).metrics.enforce_allow_added!.samplesNs).toEqual([10e6, 11e6, 12e6]);
    expect(r.metrics.enforce_new_pod!.errors).toEqual({ NOT_ENFORCED: 1 });
    expect(r.metrics.failopen_allow_removed!.summary.p50).toBe(9e6);
    expect(r.metrics.connect).toBeNull();
    const m = ANALYSIS_METRICS.find((x) => x.id === 'enforce_allow_added_p50')!;
    expect(pointValue(r, m)!.value).toBe(11e6);
  });

  it('bench compare gates on enforcement: a 3× slower allow-added is a regression, the same data is not', () => {
    const load = (scale: number) =>
      [0, 1, 2, 3].map((i) => ({ path: `x${scale}-${i}`, result: enforceRunResult(enforceResult('cilium', 100, scale), { config: config('cilium', 100), sweep: { id: 's', repetition: i + 1 } }) as RunResult }));
    const slower = compareResults(load(1), load(3), {});
    const row = slower.rows.find((x) => x.label === 'enforce allow-added p50')!;
    expect(row.verdict).toBe('regression');
    expect(slower.regressions).toContain(row);
    const same = compareResults(load(1), load(1), {});
    expect(same.rows.find((x) => x.label === 'enforce allow-added p50')!.verdict).not.toBe('regression');
  });
});
