// The loopback reference beside a Services run (issue 24): the socket-level Service load balancers (Cilium's
// socket LB, Calico's CTLB) hook connect() in the node cgroup the client starts in, so a reference measured from
// there would run the data plane's program on each of its connects. The client moves itself to the run's
// `reference` cgroup (beside the node cgroups, unhooked) before the reference: the program's own counters grow by
// the metric's connects and not by the reference's, and the probe's count of the run's BPF program runs over the
// reference stays near 0 (not one per connect). Teardown leaves no cgroup behind.
import { describe, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { resolveRunConfig } from '../../config/load.js';
import { newRunId } from '../../identity/run-id.js';
import { benchmarkWorkload } from '../../workload/benchmark.js';
import { LocalBackend } from './backend.js';
import { cgroup2Root, referenceCgroupDir, runCgroupDir } from './cgroup.js';
import { itKernel, namespacesOfRun } from './test-support/kernel.js';

const CASES = [
  { cni: 'cilium', plane: 'cilium-socket-lb' },
  { cni: 'calico-ebpf', plane: 'calico-ctlb' },
] as const;

const SAMPLES = 40;
const REFERENCE = 300;

interface WithCounters {
  services: { plane: { counters(node: string): Promise<Record<string, number>> } };
}

describe('the loopback reference of a Services run runs outside the socket hook', () => {
  for (const c of CASES) {
    itKernel(`${c.cni}: ${c.plane}'s connect hook runs on the metric's connects only, not on the reference's`, async () => {
      const { config, problems } = resolveRunConfig({ cni: c.cni, backend: 'local', policies: '0', services: '20', samples: String(SAMPLES), warmup: '0' });
      expect(problems).toEqual([]);
      const backend = new LocalBackend({ config: config!, runId: newRunId() });
      try {
        const workload = benchmarkWorkload(config!, backend.target);
        await backend.up(workload);
        const flow = workload.flows.find((f) => f.measured)!;
        await backend.install(workload.policies);
        expect(existsSync(referenceCgroupDir(cgroup2Root(), backend.plan.runId))).toBe(true);
        const counters = (backend as unknown as WithCounters).services.plane;
        const client = backend.plan.nodes[0]!.name;
        const before = await counters.counters(client);
        const m = await backend.measure(flow, 'connect', { samples: SAMPLES, warmup: 0, concurrency: 1, timeoutMs: 1000, reference: { samples: REFERENCE, warmup: 0 } });
        const after = await counters.counters(client);
        expect(m.errors).toEqual({});
        expect(m.samplesNs).toHaveLength(SAMPLES);
        expect(m.reference?.samplesNs).toHaveLength(REFERENCE);
        // The hook translated the metric's connects to the ClusterIP; the reference's 300 loopback connects did not
        // pass it (on the old code: lookups grew by 340).
        expect(after.translated! - before.translated!).toBe(SAMPLES);
        expect(after.lookups! - before.lookups!).toBe(SAMPLES);
        // The probe's own count over the reference, of every program of the run (the CNI model's tc programs too,
        // which may see a last segment of the metric's connections): far below one run per reference connect.
        expect(m.reference?.bpfRunCnt).toBeLessThan(REFERENCE / 10);
      } finally {
        await backend.down();
      }
      expect(namespacesOfRun(backend.plan.runId)).toEqual([]);
      expect(existsSync(runCgroupDir(cgroup2Root(), backend.plan.runId))).toBe(false);
    }, 300_000);
  }
});
