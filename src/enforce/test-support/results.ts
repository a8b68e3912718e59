// Enforce results made by hand for tests: three repetitions of every change, times scaled by `scale`.
import { summarizeChange } from '../run.js';
import type { EnforceObservation, EnforceResult } from '../result.js';
import type { ChangeKind } from '../plan.js';

export function obs(change: ChangeKind, rep: number, enforcedMs: number | null, failOpenMs = 0): EnforceObservation {
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

export function enforceResult(cni: 'calico' | 'cilium', policies: number, scale: number): EnforceResult {
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
