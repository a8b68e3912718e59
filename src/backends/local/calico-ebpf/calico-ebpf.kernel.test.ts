// The Calico-eBPF-style model on the real kernel, through the local backend: generated policy programs attached
// at tc on routed cali* veths, real TCP connections. Enforcement at a policy count that needs chained programs,
// incremental updates (a removed allow is enforced, a newly allowed client connects), teardown of every pin, and
// the scaling claim: a rule walk is O(n) in the policies, but far cheaper per policy than iptables.
import { existsSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { resolveRunConfig } from '../../../config/load.js';
import { ExecRunner } from '../../../exec/runner.js';
import { ROLE_LABEL } from '../../../policy/generate.js';
import { resolveEndpoints } from '../../../policy/resolve.js';
import type { CniName } from '../../../config/schema.js';
import { benchmarkPolicySet } from '../../../workload/benchmark.js';
import { quantile, sortedCopy } from '../../../stats/summary.js';
import { LocalBackend } from '../backend.js';
import { localModel } from '../models.js';
import { SERVER_PORT } from '../../../workload/workload.js';
import { newRunId } from '../../../identity/run-id.js';
import { itKernel, namespacesOfRun, tryConnect, upBenchmark } from '../test-support/kernel.js';
import { calicoEbpfPinDir, defaultCalicoEbpfBinaries, readCalicoEbpfStats } from './install.js';

const bin = defaultCalicoEbpfBinaries();
const built = existsSync(bin.loader) && existsSync(bin.object);

function config(cni: CniName, policies: number, samples = 300) {
  const { config: c, problems } = resolveRunConfig({ cni, policies: String(policies), backend: 'local', samples: String(samples), warmup: '100' });
  if (!c) throw new Error(JSON.stringify(problems));
  return c;
}

describe.skipIf(!built && process.env.CI !== 'true')('Calico-eBPF-style model on the kernel', () => {
  itKernel('enforces 5000 policies through chained programs, applies incremental changes, and leaves no pins', async () => {
    const cfg = config('calico-ebpf', 5000);
    const runId = newRunId();
    const backend = new LocalBackend({ config: cfg, runId });
    const model = localModel('calico-ebpf');
    try {
      const flow = await upBenchmark(backend);
      const set = benchmarkPolicySet(cfg);
      const installed = await backend.install(set);
      // 5000 filler rules plus the client's do not fit one program: the walk is chained by tail calls.
      expect(installed.modelState.maxProgramsPerChain).toBeGreaterThan(1);
      expect(installed.modelState.maxRulesPerChain).toBe(5001);
      expect(installed.modelState.ipSetEntries).toBeGreaterThanOrEqual(5001);
      expect(installed.modelState.rulesTraversedPerPolicy).toBe(1);

      const client = backend.plan.pods.find((p) => p.role === 'client')!;
      const server = backend.plan.pods.find((p) => p.role === 'server')!;
      // The client's rule is the last of the last program: reaching it proves the whole chain runs.
      const m = await backend.measure(flow, 'connect', { samples: 200, warmup: 20, concurrency: 1, timeoutMs: 1000 });
      expect(m.errors).toEqual({});
      expect(m.samplesNs.length).toBe(200);
      // A filler port is not the client's: dropped after the whole walk.
      expect(await tryConnect(client.netns, server.ip, 10000, 500)).toBe('timeout');

      const ctx = backend.modelContext!;
      const withPolicies = (policies: typeof set.policies) => {
        const inventory = backend.inventoryFor({ ...set, policies });
        return { ...ctx, inventory, endpoints: resolveEndpoints(inventory, policies).filter((e) => backend.plan.nodes.some((n) => n.name === e.pod.node)) };
      };
      const withoutClient = set.policies.filter((p) => p.metadata.labels?.[ROLE_LABEL] !== 'allow-client');
      expect(withoutClient.length).toBe(5000);

      // Removed allow: only the server's ingress chain is reloaded (into the other buffer), and it is enforced.
      const removed = await model.update!(withPolicies(withoutClient));
      expect(removed.changed.chainsReplaced).toBe(1);
      expect(removed.changed.programsLoaded).toBe(removed.state.maxProgramsPerChain);
      expect(removed.changed.setMembersAdded).toBe(0);
      expect(await tryConnect(client.netns, server.ip, SERVER_PORT, 500)).toBe('timeout');

      // Newly allowed: the client connects again after the next update.
      const added = await model.update!(withPolicies(set.policies));
      expect(added.changed.chainsReplaced).toBe(1);
      expect(await tryConnect(client.netns, server.ip, SERVER_PORT, 2000)).toBe('connected');

      // Established traffic skipped the walk: conntrack hits outnumber policy walks on the server's node.
      const stats = await readCalicoEbpfStats(new ExecRunner(), bin, calicoEbpfPinDir(runId, server.node.name));
      expect(stats!.counters.policyWalks).toBeGreaterThan(200);
      expect(stats!.counters.ctHits).toBeGreaterThan(stats!.counters.policyWalks);
      expect(stats!.counters.tailCallFailed).toBe(0);
      expect(stats!.policyPrograms).toBe(installed.modelState.policyPrograms);
    } finally {
      await backend.down();
    }
    expect(namespacesOfRun(runId)).toEqual([]);
    expect(existsSync(`/sys/fs/bpf/cb-${runId}`)).toBe(false);
  }, 300_000);

  itKernel('the rule walk is O(n) in the policies, yet far cheaper per policy than iptables', async () => {
    const p50 = async (cni: CniName, policies: number): Promise<number> => {
      const cfg = config(cni, policies, 1000);
      const runId = newRunId();
      const backend = new LocalBackend({ config: cfg, runId });
      try {
        const flow = await upBenchmark(backend);
        await backend.install(benchmarkPolicySet(cfg));
        const m = await backend.measure(flow, 'connect', { samples: 1000, warmup: 100, concurrency: 1, timeoutMs: 1000 });
        expect(m.errors).toEqual({});
        return quantile(sortedCopy(m.samplesNs), 0.5);
      } finally {
        await backend.down();
      }
    };
    const ebpf0 = await p50('calico-ebpf', 0);
    const calico0 = await p50('calico', 0);
    const ebpf10k = await p50('calico-ebpf', 10000);
    const calico10k = await p50('calico', 10000);
    console.log(`connect p50 µs: calico-ebpf 0 → 10000: ${(ebpf0 / 1e3).toFixed(0)} → ${(ebpf10k / 1e3).toFixed(0)}; calico: ${(calico0 / 1e3).toFixed(0)} → ${(calico10k / 1e3).toFixed(0)}`);
    // O(n): 10000 IP set lookups per SYN are visible above the floor.
    expect(ebpf10k - ebpf0).toBeGreaterThan(100_000);
    // Smaller per policy than iptables' rule walk (one LPM lookup against four iptables rules per policy).
    // Measured 3.2× under heavy load; the bound leaves room for a quiet machine, where the gap is narrower.
    expect(calico10k - calico0).toBeGreaterThan(1.5 * (ebpf10k - ebpf0));
  }, 600_000);
});
