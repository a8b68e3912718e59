import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../config/schema.js';
import { runResultSchema, type RunResult } from '../results/schema.js';
import { compareResults } from '../report/compare.js';
import { pointValue, ANALYSIS_METRICS } from '../report/analyze.js';
import { enforceRunResult } from './sweep.js';
import { summarizeChange } from './run.js';
import type { EnforceObservation, EnforceResult } from './result.js';
import type { ChangeKind } from './plan.js';

function obs(change: ChangeKind, rep: number, enforcedMs: number | null, failOpenMs = 0): EnforceObservation {
  return {
    change,
    repetition: rep,
    expect: change === 'allow-removed' ? 'closed' : 'open',
    from: 'client',
    target: '10.244.1.2',
    preconditionHeld: true,
    enforcedMs,
    lastOldMs: enforcedMs === null ? null : enforcedMs - 1,
    bracketMs: enforcedMs === null ? null : 1,
    relapses: 0,
    maxStartGapMs: 1,
    agent: { agentMs: 5, compileMs: 1, applyMs: 4, resolveMs: 0.1, attachMs: change === 'new-pod' ? 2 : null, changed: {} },
    failOpen: change === 'allow-removed' || change === 'new-pod' ? { leaked: failOpenMs ? 3 : 0, probes: 10, firstLeakMs: null, lastLeakMs: null, windowMs: failOpenMs } : null,
    probes: { startUs: [], endUs: [], result: [] },
    intruderProbes: null,
  };
}

function enforceResult(cni: 'calico' | 'cilium', policies: number, scale: number): EnforceResult {
  const observations = [0, 1, 2].flatMap((r) => [obs('allow-added', r, scale * (10 + r)), obs('allow-removed', r, scale * (8 + r), scale * (8 + r)), obs('new-pod', r, r === 2 ? null : 30), obs('peer-joins', r, 12)]);
  return {
    schemaVersion: 1,
    kind: 'cni-bench/enforce-result',
    runId: `r${cni.slice(0, 2)}${policies}`.slice(0, 5).padEnd(5, '0'),
    status: 'ok',
    meta: {
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '2026-01-01T00:01:00Z',
      tool: { name: 'cni-bench', version: '0', gitCommit: null },
      machine: { hostname: 'h', kernel: 'k', cpuModel: 'c', cpus: 2, memoryBytes: 1, loadavg: [0, 0, 0] },
      backend: 'local',
      cni,
      model: { name: `${cni} model`, description: 'd', enforcesPolicy: true },
      policy: { count: policies, matchPosition: 'last', seed: 1, shape: 'enforce' },
      probe: { tool: 'cb-probe watch', intervalUs: 1000, timeoutMs: 10, timeoutFrom: 'auto', deadlineMs: 10000, settle: 5, clock: 'CLOCK_MONOTONIC' },
      repetitions: 3,
      changes: ['allow-added', 'peer-joins', 'new-pod', 'allow-removed'],
      sweepId: null,
    },
    notEnforced: null,
    installMs: 1,
    modelState: {},
    observations,
    summary: (['allow-added', 'peer-joins', 'new-pod', 'allow-removed'] as const).map((k) => summarizeChange(k, observations, 1)),
    errors: [],
    totalMs: 1,
  };
}

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
