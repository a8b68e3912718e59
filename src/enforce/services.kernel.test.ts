// bench enforce's Service changes on the kernel: real namespaces, the real service data plane (kube-proxy's
// iptables partial sync; Calico eBPF's and Cilium's socket-level balancers through BPF map writes), real watch
// probes to a ClusterIP at 1 ms. Only robust effects are asserted: the precondition held, the change was seen,
// and once it was, no connection reached a removed endpoint again.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { createBackend } from '../backends/factory.js';
import { cgroup2Root, runCgroupDir } from '../backends/local/cgroup.js';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { runConfigSchema, SERVICE_CHANGES, type CniName } from '../config/schema.js';
import { ExecRunner } from '../exec/runner.js';
import { newRunId } from '../identity/run-id.js';
import { enforceResultSchema } from './result.js';
import { executeEnforce } from './run.js';

const CASES: Array<{ cni: CniName; dataPlane: string }> = [
  { cni: 'calico', dataPlane: 'kube-proxy-iptables' },
  { cni: 'calico-ebpf', dataPlane: 'calico-ctlb' },
  { cni: 'cilium', dataPlane: 'cilium-socket-lb' },
];

describe('bench enforce: Service changes on the kernel', () => {
  for (const { cni, dataPlane } of CASES) {
    itKernel(`${cni} (${dataPlane}): an endpoint removed stops being reached and stays so, an endpoint and a Service added start being reached`, async () => {
      const runId = newRunId();
      const config = runConfigSchema.parse({ cni, backend: 'local', services: 50 });
      const plane = await createBackend({ config, backend: 'local', runId, shape: 'enforce', runner: new ExecRunner(), outDir: join(tmpdir(), runId) });
      const { result } = await executeEnforce({
        runId,
        backend: 'local',
        plane,
        config: { cni, policies: 5, repetitions: 2, changes: [...SERVICE_CHANGES], matchPosition: 'last', seed: 1, intervalUs: 1000, probeTimeoutMs: 'auto', deadlineMs: 10_000, settle: 5, services: 50, endpointsPerService: 2, servicePosition: 'last' },
      });
      expect(result.errors).toEqual([]);
      expect(() => enforceResultSchema.parse(JSON.parse(JSON.stringify(result)))).not.toThrow();
      expect(result.services?.dataPlane).toBe(dataPlane);
      expect(result.services?.state.services).toBe(51);
      expect(result.observations).toHaveLength(6);
      for (const o of result.observations) {
        const what = `${o.change} #${o.repetition}`;
        // Before the change the ClusterIP gave the old verdict (a Service without endpoints refuses, a ClusterIP no
        // Service holds reaches nothing), after it the new one: the probes really went through the data plane.
        expect(o.preconditionHeld, what).toBe(true);
        expect(o.enforcedMs, what).not.toBeNull();
        expect(o.relapses, what).toBe(0);
        expect(Object.values(o.agent.changed).some((v) => v > 0), what).toBe(true);
      }
      const removed = result.observations.filter((o) => o.change === 'endpoint-removed');
      for (const o of removed) {
        // No connection reached the removed endpoint after the flip; the window ends where the flip starts.
        expect(o.failOpen).not.toBeNull();
        expect(o.failOpen!.lastLeakMs ?? 0).toBeLessThan(o.enforcedMs!);
        // In ms as enforcedMs was derived (startUs / 1000): µs / 1000 * 1000 can exceed the µs it came from and
        // drop the flip probe itself (the watch stops after exactly `settle` of them).
        const after = o.probes.result.filter((r, i) => o.probes.startUs[i]! / 1000 >= o.enforcedMs!);
        expect(after.length).toBeGreaterThanOrEqual(5);
        expect(after.every((r) => r !== 'open')).toBe(true);
      }
      // Programming a change is not instantaneous (a process writes rules or map entries): connections still reached
      // the removed endpoint after the change was handed over, in at least one repetition.
      expect(removed.some((o) => o.failOpen!.leaked > 0)).toBe(true);
      expect(await namespacesOfRun(runId)).toEqual([]);
      expect(existsSync(runCgroupDir(cgroup2Root(), runId))).toBe(false);
    }, 180_000);
  }
});
