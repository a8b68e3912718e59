// bench report on bench enforce --workload results: read, validated, one table per workload; a broken file is named.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cmdReport } from '../cli/commands/report.js';
import { bufferIo } from '../cli/test-support/cli.js';
import { summarizeWorkloadChange } from '../enforce/workload-run.js';
import { ENFORCE_WORKLOAD_FILE, ENFORCE_WORKLOAD_RESULT_KIND, ENFORCE_WORKLOAD_SCHEMA_VERSION, type EnforceWorkloadResult, type WorkloadObservation } from '../enforce/workload-result.js';
import { tempDir } from '../test-support/temp.js';

const flow = { from: 'web/frontend-0', to: 'api/orders-0', port: 9000, protocol: 'TCP' };
const obs = (repetition: number, enforcedMs: number): WorkloadObservation => ({
  repetition, flow, expect: 'closed', from: flow.from, target: '10.244.1.5', preconditionHeld: true, enforcedMs, lastOldMs: enforcedMs - 1, bracketMs: 1, relapses: 0, maxStartGapMs: 1.2,
  agent: { agentMs: 8, compileMs: 1, applyMs: 7, resolveMs: 0.2, attachMs: null, changed: { chainsWritten: 1 } },
  failOpen: { leaked: 3, probes: 40, firstLeakMs: 0.5, lastLeakMs: enforcedMs - 1, windowMs: enforcedMs }, probes: { startUs: [-1000, 1000], endUs: [-900, 1100], result: ['open', 'ECONNREFUSED'] }, capacityOverflow: null,
});

function result(cni: 'calico' | 'flannel', runId: string): EnforceWorkloadResult {
  const observations = cni === 'calico' ? [obs(0, 20), obs(1, 30)] : [];
  return {
    schemaVersion: ENFORCE_WORKLOAD_SCHEMA_VERSION, kind: ENFORCE_WORKLOAD_RESULT_KIND, runId, status: cni === 'calico' ? 'ok' : 'not-enforced',
    meta: {
      startedAt: '2026-12-07T00:00:00Z', finishedAt: '2026-12-07T00:00:10Z', backend: 'local', cni, model: { name: `${cni} model`, description: 'm', enforcesPolicy: cni === 'calico' },
      workload: { name: 'shop', file: 'shop.json', pods: 7, endpoints: 2, policies: 8 },
      probe: { tool: 'cb-probe watch', intervalUs: 1000, timeoutMs: 10, timeoutFrom: 'auto', deadlineMs: 10000, settle: 5, clock: 'CLOCK_MONOTONIC' }, repetitions: 2, seed: 1, concurrentRuns: [],
    },
    installMs: 100, modelState: {},
    changes: [{ change: 'remove:api/allow-frontend', op: 'remove', policy: 'api/allow-frontend', why: 'named with --change', affectedCount: 2, candidates: 30, affected: [{ ...flow, before: true, after: false }], probed: [{ ...flow, before: true, after: false }],
      noEffect: cni === 'flannel' ? { reason: 'no policy engine', probesOpen: 300, probes: 300 } : null, observations, summary: observations.length ? summarizeWorkloadChange(observations, 1) : null }],
    errors: [], totalMs: 10000,
  };
}

describe('bench report on bench enforce --workload results', () => {
  it('writes one table per workload, each data plane and change with its time to enforcement and resolution', async () => {
    const dir = tempDir('cb-report-ewl-');
    for (const [cni, id] of [['calico', 'aaaaa'], ['flannel', 'bbbbb']] as const) {
      mkdirSync(join(dir, id));
      writeFileSync(join(dir, id, ENFORCE_WORKLOAD_FILE), JSON.stringify(result(cni, id)));
    }
    const io = bufferIo();
    expect(await cmdReport([dir], {}, io)).toBe(0);
    const md = readFileSync(join(dir, 'enforce-workload.md'), 'utf8');
    expect(md).toMatch(/## Workload shop/);
    expect(md).toMatch(/\| Calico \(iptables\) \| `remove:api\/allow-frontend` \| 2 of 30 \| 25\.0 ms \(n=2\) \| 1\.0 ms \| 8\.0 ms \| 2\/2 reps, p50 25\.0 ms \| aaaaa \|/);
    expect(md).toMatch(/\| Flannel \| `remove:api\/allow-frontend` \| 2 of 30 \| no effect \(no policy engine\) \|/);
  });

  it('a broken file is named with the field, exit 2', async () => {
    const dir = tempDir('cb-report-ewl-');
    const bad = result('calico', 'ccccc') as unknown as Record<string, unknown>;
    delete bad.changes;
    writeFileSync(join(dir, ENFORCE_WORKLOAD_FILE), JSON.stringify(bad));
    const io = bufferIo();
    expect(await cmdReport([dir], {}, io)).toBe(2);
    expect(io.err()).toMatch(/enforce-workload-result\.json: does not match the enforce-workload result schema: changes/);
  });
});
