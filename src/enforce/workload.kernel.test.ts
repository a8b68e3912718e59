// bench enforce --workload on the kernel: a replayed cluster (src/workload/fixtures/replay-cluster.json), one of its
// own policies removed from and added back to the live data plane through the model's real update(), watch probes
// at 1 ms on the flows it flips. Timing assertions only for large, robust effects.
import { describe, expect } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { newRunId } from '../identity/run-id.js';
import { createBackend } from '../backends/factory.js';
import { runConfigSchema, type CniName } from '../config/schema.js';
import { ExecRunner } from '../exec/runner.js';
import { loadWorkload } from '../workload/load.js';
import { planWorkloadChanges } from './workload-changes.js';
import { executeWorkloadEnforce } from './workload-run.js';
import { enforceWorkloadResultSchema } from './workload-result.js';
import { formatWorkloadEnforce } from './workload-format.js';
import { tempDir } from '../test-support/temp.js';

const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');
const FILE = join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json');
const w = loadWorkload(FILE);

async function run(cni: CniName) {
  const runId = newRunId();
  const plan = planWorkloadChanges(w, [cni], { changes: [{ op: 'remove', policy: 'api/allow-frontend' }, { op: 'add', policy: 'api/allow-frontend' }], seed: 1 });
  expect(plan.problems).toEqual([]);
  const plane = await createBackend({ config: runConfigSchema.parse({ cni, backend: 'local' }), backend: 'local', runId, shape: 'cluster', runner: new ExecRunner(), outDir: join(tmpdir(), runId) });
  const { result } = await executeWorkloadEnforce({ runId, backend: 'local', cni, workload: w, file: FILE, changes: plan.byCni.get(cni)!, plane, settings: { repetitions: 2, intervalUs: 1000, probeTimeoutMs: 'auto', deadlineMs: 5000, settle: 5, seed: 1 } });
  expect(await namespacesOfRun(runId)).toEqual([]);
  return result;
}

describe('bench enforce --workload on the kernel', () => {
  for (const cni of ['calico', 'cilium'] as const) {
    itKernel(`${cni}: removing the workload's allow-frontend denies frontend -> orders, adding it back allows it, each seen within the deadline`, async () => {
      const result = await run(cni);
      expect(result.errors).toEqual([]);
      expect(() => enforceWorkloadResultSchema.parse(result)).not.toThrow();
      expect(result.status).toBe('ok');
      const [removed, added] = result.changes;
      expect(removed!.change).toBe('remove:api/allow-frontend');
      // Both orders pods lose frontend's allow: 2 flows flip, both watched, one per repetition each.
      expect(removed!.affectedCount).toBe(2);
      expect(removed!.observations).toHaveLength(4);
      for (const c of [removed!, added!]) {
        for (const o of c.observations) {
          const what = `${cni} ${c.change} #${o.repetition} ${o.flow.from} -> ${o.flow.to}`;
          expect(o.flow.from, what).toBe('web/frontend-6c9f8b7d4-abcde');
          expect(o.expect, what).toBe(c.op === 'remove' ? 'closed' : 'open');
          expect(o.preconditionHeld, what).toBe(true);
          expect(o.enforcedMs, what).not.toBeNull();
          expect(o.enforcedMs!, what).toBeLessThan(o.agent.agentMs + 1000);
          expect(o.relapses, what).toBe(0);
          expect(o.bracketMs!, what).toBeLessThanOrEqual(10);
        }
        expect(c.summary!.notEnforced).toBe(0);
        // Every watched flow flipped in each repetition, the last no sooner than the first.
        expect(c.summary!.enforcedAllMs.count).toBe(2);
        expect(c.summary!.enforcedAllMs.p50!).toBeGreaterThanOrEqual(c.summary!.enforcedMs.p50!);
      }
      // A removal's window is the traffic still passing after the change was handed over: measured, not assumed.
      expect(removed!.summary!.failOpenMs).not.toBeNull();
      expect(added!.summary!.failOpenMs).toBeNull();
      expect(formatWorkloadEnforce(result, null)).toMatch(/remove:api\/allow-frontend: NetworkPolicy api\/allow-frontend deleted from the live data plane/);
    });
  }

  itKernel('flannel: the change has no effect (every probe connects), reported as such, not as a timeout; exit 1 as for the synthetic changes', async () => {
    const out = tempDir('cb-enforce-wl-');
    const r = await execa(process.execPath, [BENCH, 'enforce', '--workload', FILE, '--cni', 'flannel', '--change', 'remove:api/allow-frontend', '--repetitions', '1', '--out', out, '--json'], { reject: false, timeout: 120_000 });
    expect(r.exitCode, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { runs: Array<{ status: string; path: string; changes: Array<{ noEffect: { probesOpen: number; probes: number } | null; enforcedMs: unknown }> }> };
    const [flannel] = doc.runs;
    expect(flannel!.status).toBe('not-enforced');
    const ne = flannel!.changes[0]!.noEffect!;
    expect(ne.probes).toBeGreaterThan(50);
    expect(ne.probesOpen).toBe(ne.probes);
    expect(flannel!.changes[0]!.enforcedMs).toBeNull();
    expect(() => enforceWorkloadResultSchema.parse(JSON.parse(readFileSync(flannel!.path, 'utf8')))).not.toThrow();
  });
});
