// bench enforce on the kernel: real namespaces, the model's real update() (Cilium-style model: BPF map writes),
// real watch probes at 1 ms. Timing assertions only for large, robust effects.
import { describe, expect } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { newRunId } from '../identity/run-id.js';
import { SERVER_PORT } from '../workload/workload.js';
import { planWatch, startWatch } from '../probe/native.js';
import { localModel } from '../backends/local/models.js';
import { createBackend } from '../backends/factory.js';
import { runConfigSchema, type CniName } from '../config/schema.js';
import { ExecRunner } from '../exec/runner.js';
import { executeEnforce } from './run.js';
import { enforceResultSchema } from './result.js';
import { formatEnforceSummary } from './format.js';
import { InterruptedError } from '../errors.js';
import { tempDir } from '../test-support/temp.js';

const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

/** The local backend's data plane for the enforce workload, as bench enforce has the descriptor build it. */
const localEnforcePlane = (cni: CniName, runId: string) =>
  createBackend({ config: runConfigSchema.parse({ cni, backend: 'local' }), backend: 'local', runId, shape: 'enforce', runner: new ExecRunner(), outDir: join(tmpdir(), runId) });

describe('bench enforce on the kernel', () => {
  itKernel('measures allow added/removed and peer-joins on the Cilium-style model through update(), at ≤ 10 ms resolution', async () => {
    if (!localModel('cilium').update) throw new Error('the Cilium model has no update(): merge the cilium branch');
    const runId = newRunId();
    const plane = await localEnforcePlane('cilium', runId);
    const { result } = await executeEnforce({
      runId,
      backend: 'local',
      plane,
      config: { cni: 'cilium', policies: 20, repetitions: 2, changes: ['allow-added', 'allow-removed', 'peer-joins'], matchPosition: 'last', seed: 1, intervalUs: 1000, probeTimeoutMs: 'auto', deadlineMs: 5000, settle: 5 },
    });
    expect(result.errors).toEqual([]);
    expect(() => enforceResultSchema.parse(result)).not.toThrow();
    expect(result.observations).toHaveLength(6);
    for (const o of result.observations) {
      expect(o.preconditionHeld, `${o.change} #${o.repetition}`).toBe(true);
      expect(o.enforcedMs, `${o.change} #${o.repetition}`).not.toBeNull();
      // Seen after the agent started, and not long after it finished (robust bound on a loaded machine).
      expect(o.enforcedMs!).toBeLessThan(o.agent.agentMs + 1000);
      expect(o.bracketMs!).toBeLessThanOrEqual(10);
      expect(o.agent.agentMs).toBeGreaterThan(0);
      expect(Object.values(o.agent.changed).some((v) => v > 0)).toBe(true);
    }
    // Removing the allow really denies the client: every probe after the flip failed.
    const removed = result.observations.filter((o) => o.change === 'allow-removed');
    for (const o of removed) expect(o.relapses).toBe(0);
    expect(await namespacesOfRun(runId)).toEqual([]);
  });

  for (const cni of ['cilium', 'calico-ebpf'] as const) {
    itKernel(`a new pod under deny on the ${cni} model is never reached by the denied peer, and its allowed client gets in`, async () => {
      const runId = newRunId();
      const plane = await localEnforcePlane(cni, runId);
      const { result } = await executeEnforce({
        runId,
        backend: 'local',
        plane,
        config: { cni, policies: 20, repetitions: 2, changes: ['new-pod'], matchPosition: 'last', seed: 1, intervalUs: 1000, probeTimeoutMs: 'auto', deadlineMs: 5000, settle: 5 },
      });
      expect(result.errors).toEqual([]);
      expect(result.observations).toHaveLength(2);
      for (const o of result.observations) {
        const what = `${cni} new-pod #${o.repetition}`;
        expect(o.enforcedMs, what).not.toBeNull();
        // The intruder probed the new pod from before its CNI ADD until after the client was in: not one connect.
        const intruder = o.intruderProbes!;
        expect(intruder.result.length, what).toBeGreaterThan(50);
        expect(intruder.result.filter((r) => r === 'open'), what).toEqual([]);
        expect(o.failOpen, what).toMatchObject({ leaked: 0, windowMs: 0 });
        // The allowed client got in only after the agent wrote the pod's policy, not at its CNI ADD.
        expect(o.enforcedMs!, what).toBeGreaterThan(o.agent.attachMs!);
      }
      expect(await namespacesOfRun(runId)).toEqual([]);
    });
  }

  itKernel('a stop signal during the new pod\'s CNI ADD leaves nothing, and the result says "interrupted", not a failed command', async () => {
    const runId = newRunId();
    const ctl = new AbortController();
    const plane = await createBackend({ config: runConfigSchema.parse({ cni: 'calico', backend: 'local' }), backend: 'local', runId, shape: 'enforce', runner: new ExecRunner(ctl.signal), signal: ctl.signal, outDir: join(tmpdir(), runId) });
    // The signal arrives once the pod's sandbox exists, as its CNI ADD starts (the window of issue 26).
    const changes = plane.changes!;
    const prepare = changes.preparePod.bind(changes);
    changes.preparePod = async (pod) => {
      const p = await prepare(pod);
      return { ...p, attach: () => (ctl.abort(new InterruptedError('interrupted by SIGTERM')), p.attach()) };
    };
    const { result } = await executeEnforce({
      runId,
      backend: 'local',
      plane,
      signal: ctl.signal,
      config: { cni: 'calico', policies: 20, repetitions: 3, changes: ['allow-added', 'new-pod'], matchPosition: 'last', seed: 1, intervalUs: 1000, probeTimeoutMs: 50, deadlineMs: 2000, settle: 5 },
    });
    expect(namespacesOfRun(runId)).toEqual([]);
    expect(result.errors).toEqual([{ stage: 'interrupted', kind: 'interrupted', message: 'interrupted by SIGTERM during new-pod #1' }]);
    const text = formatEnforceSummary(result, null);
    expect(text).toMatch(/new-pod: [^\n]*\n  not measured \(interrupted\)/);
    expect(text).toMatch(/allow-added: [^\n]*\n  1 of 3 repetitions measured \(interrupted before the rest\)/);
    expect(text).not.toMatch(/not enforced within|failed \(/);
  });

  itKernel('bench enforce --cni flannel reports not enforced and returns at once', async () => {
    if (!existsSync(BENCH)) throw new Error(`${BENCH} missing: run npm run build first`);
    const out = tempDir('cb-enforce-');
    const t = Date.now();
    const r = await execa(process.execPath, [BENCH, 'enforce', '--cni', 'flannel', '--out', out, '--json'], { reject: false, timeout: 60_000 });
    expect(Date.now() - t).toBeLessThan(60_000);
    expect(r.exitCode).toBe(1);
    const j = JSON.parse(r.stdout) as { status: string; path: string; notEnforced: { probesOpen: number; probes: number } };
    expect(j.status).toBe('not-enforced');
    expect(j.notEnforced.probes).toBeGreaterThan(50);
    expect(j.notEnforced.probesOpen).toBe(j.notEnforced.probes);
    expect(enforceResultSchema.parse(JSON.parse(readFileSync(j.path, 'utf8'))).status).toBe('not-enforced');
  });

  itKernel('watch sees a refused port at once and stops on --until', async () => {
    // Loopback of a fresh namespace: nothing listens, so every connect is refused within microseconds.
    const ns = `cb-${newRunId()}-w`;
    await execa('ip', ['netns', 'add', ns]);
    try {
      await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const w = await startWatch(planWatch({ netns: ns, target: '127.0.0.1', port: SERVER_PORT, intervalUs: 500, timeoutMs: 50, maxMs: 5000, until: 'closed', settle: 20 }));
      const out = await w.done;
      expect(out.result.every((r) => r === 'ECONNREFUSED')).toBe(true);
      expect(out.result.length).toBeGreaterThanOrEqual(20);
      expect(out.result.length).toBeLessThan(500); // stopped on --until, long before --max-ms
      for (let i = 0; i < out.result.length; i++) expect(out.endNs[i]! - out.startNs[i]!).toBeLessThan(50e6);
    } finally {
      await execa('ip', ['netns', 'delete', ns], { reject: false });
    }
  });
});
