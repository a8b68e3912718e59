// The project's central claim, checked end to end through the local backend: with 5000 policies selecting the
// server and the client's rule last, the iptables model pays per policy on every new connection and the eBPF
// model does not. Bounds are wide (measured: Calico ~35 µs → ~1600 µs; Cilium ~35 µs → ~33 µs), and each count is
// measured in blocks interleaved with the other's (pairP50s), so load from other tests cannot flip them.
import { describe, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { LocalBackend } from './backend.js';
import { resolveRunConfig } from '../../config/load.js';
import { newRunId } from '../../identity/run-id.js';
import { benchmarkPolicySet } from '../../workload/benchmark.js';
import { quantile, sortedCopy } from '../../stats/summary.js';
import { itKernel, namespacesOfRun, upBenchmark } from './test-support/kernel.js';
import type { CniName } from '../../config/schema.js';
import type { Flow } from '../../workload/workload.js';

const SAMPLES = 500;
/** Blocks per policy count, interleaved in time (0, 5000, 0, 5000, …); each count keeps its lowest block p50. */
const ROUNDS = 3;

interface Up {
  backend: LocalBackend;
  flow: Flow;
  runId: string;
  state: Record<string, unknown>;
}

async function upAt(cni: CniName, policies: number): Promise<Up> {
  const { config, problems } = resolveRunConfig({ cni, policies: String(policies), backend: 'local', samples: String(SAMPLES), warmup: '200' });
  if (!config) throw new Error(JSON.stringify(problems));
  const runId = newRunId();
  const backend = new LocalBackend({ config, runId });
  try {
    const flow = await upBenchmark(backend);
    const installed = await backend.install(benchmarkPolicySet(config));
    return { backend, flow, runId, state: installed.modelState };
  } catch (e) {
    await backend.down();
    throw e;
  }
}

async function blockP50(u: Up): Promise<number> {
  const m = await u.backend.measure(u.flow, 'connect', { samples: SAMPLES, warmup: 200, concurrency: 1, timeoutMs: 1000 });
  expect(m.errors).toEqual({});
  return quantile(sortedCopy(m.samplesNs), 0.5);
}

/**
 * Connect p50 at 0 and at 5000 policies, both data planes up at once and measured in alternating blocks; each keeps
 * its lowest block. Measured one after the other, tens of seconds apart, a shared machine's load can move one p50 by
 * ×1.8 against the other (44.7 against 25.4 µs for one flat data plane in CI, 2026-12-07): near Cilium's ×1.5 bound.
 * Interleaved, a burst slows one block of one count and the minimum drops it.
 */
async function pairP50s(cni: CniName): Promise<{ zero: number; many: number; blocks: { zero: number[]; many: number[] }; manyState: Record<string, unknown>; runIds: string[] }> {
  const zero = await upAt(cni, 0);
  let many: Up | undefined;
  try {
    many = await upAt(cni, 5000);
    const blocks = { zero: [] as number[], many: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      blocks.zero.push(await blockP50(zero));
      blocks.many.push(await blockP50(many));
    }
    console.log(`${cni}: connect p50 blocks (ns) at 0 ${blocks.zero.join('/')}, at 5000 ${blocks.many.join('/')}`);
    return { zero: Math.min(...blocks.zero), many: Math.min(...blocks.many), blocks, manyState: many.state, runIds: [zero.runId, many.runId] };
  } finally {
    await many?.backend.down();
    await zero.backend.down();
  }
}

function bpfProgramCount(): number {
  const out = execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  return (JSON.parse(out) as Array<{ name?: string }>).filter((p) => p.name === 'from_pod' || p.name === 'to_pod').length;
}

describe('policy scaling on the kernel', () => {
  itKernel('calico pays per policy on a new connection; cilium does not', async () => {
    const progsBefore = bpfProgramCount();
    const calico = await pairP50s('calico');
    const cilium = await pairP50s('cilium');
    expect(calico.manyState.iptablesRulesMaxPerNode).toBeGreaterThan(5000);
    expect(cilium.manyState.policyMapEntriesMaxPerEndpoint).toBe(5003); // + host ingress, egress allow-all
    // Calico: thousands of rules walked per SYN — far above its 0-policy floor (tens of µs).
    expect(calico.many).toBeGreaterThan(calico.zero * 5);
    expect(calico.many - calico.zero).toBeGreaterThan(200_000);
    // Cilium: two hash/LPM lookups whatever the count — within noise of its own floor.
    expect(cilium.many).toBeLessThan(cilium.zero * 1.5);
    expect(Math.abs(cilium.many - cilium.zero)).toBeLessThan(20_000);
    // Nothing left: namespaces, pins, BPF programs.
    for (const runId of [...calico.runIds, ...cilium.runIds]) {
      expect(namespacesOfRun(runId)).toEqual([]);
      expect(existsSync(`/sys/fs/bpf/cb-${runId}`)).toBe(false);
    }
    // Namespace teardown is asynchronous in the kernel (netns cleanup runs in a workqueue): programs held only
    // by a deleted namespace's tc hooks go a moment later.
    await expect.poll(bpfProgramCount, { timeout: 30_000, interval: 200 }).toBeLessThanOrEqual(progsBefore);
    // Four data planes up and torn down, Calico's at 5000 policies (~20 ms a connect on the loaded machine, 2100
    // connects): 118 s measured one after the other, over 180 s interleaved beside a kernel run; 23 s in CI.
  }, 600_000);

  // Cilium 1.18 does not fail an endpoint whose policy map overflows (pkg/endpoint/bpf.go syncPolicyMap): the
  // run completes, the overflow is recorded, and the probe says what the data plane did with the client.
  for (const [lockdown, verdict] of [
    [false, 'allowed'],
    [true, 'denied'],
  ] as const) {
    itKernel(`a policy set over the policy-map capacity completes and records the overflow (lockdown ${lockdown}: client ${verdict})`, async () => {
      const { config } = resolveRunConfig({ cni: 'cilium', policies: '300', backend: 'local', policyMapCapacity: '256', endpointLockdownOnPolicyOverflow: lockdown });
      const backend = new LocalBackend({ config: config!, runId: newRunId() });
      try {
        const flow = await upBenchmark(backend);
        const r = await backend.install(benchmarkPolicySet(config!));
        expect(r.modelState).toMatchObject({
          policyMapOverflowNeeded: 303,
          policyMapOverflowOutcome: lockdown ? 'lockdown' : 'stale',
          endpointLockdownOnPolicyOverflow: lockdown,
          overflowClientVerdict: verdict,
        });
        expect(Number(r.modelState.capacityOverflowEndpoints)).toBeGreaterThan(0);
        expect(String(r.modelState.capacityOverflow)).toMatch(/needs 303 policy-map entries, capacity 256/);
        const m = await backend.measure(flow, 'connect', { samples: 50, warmup: 0, concurrency: 1, timeoutMs: 300 });
        expect(m.samplesNs.length > 0).toBe(verdict === 'allowed');
      } finally {
        await backend.down();
      }
      expect(existsSync(`/sys/fs/bpf/cb-${backend.plan.runId}`)).toBe(false);
    });
  }
});
