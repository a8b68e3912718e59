// Incremental policy changes in the Cilium-style model on the real kernel (issue 15): update() writes only the
// changed policy-map entries and ipcache entries through `cb-bpf delta`, and the data plane follows at once —
// a removed allow is enforced (new connections and the forward packets of established ones), a restored allow
// lets the client in again, and no policy map is rebuilt.
import { describe, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { LocalBackend } from '../backend.js';
import { resolveRunConfig } from '../../../config/load.js';
import { newRunId } from '../../../identity/run-id.js';
import { benchmarkPolicySet } from '../../../workload/benchmark.js';
import { ROLE_LABEL } from '../../../policy/generate.js';
import type { PolicySet } from '../../../policy/generate.js';
import type { Flow } from '../../../workload/workload.js';
import { itKernel, tryConnect, upBenchmark } from '../test-support/kernel.js';
import { defaultCiliumBinaries, readCiliumCounters, ciliumPinDir } from './install.js';
import { ExecRunner } from '../../../exec/runner.js';

const POLICIES = 200;

async function clientConnects(backend: LocalBackend, flow: Flow): Promise<boolean> {
  const m = await backend.measure(flow, 'connect', { samples: 3, warmup: 0, concurrency: 1, timeoutMs: 300 });
  return m.samplesNs.length === 3;
}

describe('Cilium model: incremental update on the kernel', () => {
  itKernel('removes and restores the client allow by changing one map entry per server endpoint', async () => {
    const { config, problems } = resolveRunConfig({ cni: 'cilium', policies: String(POLICIES), backend: 'local' });
    if (!config) throw new Error(JSON.stringify(problems));
    const backend = new LocalBackend({ config, runId: newRunId() });
    const bin = defaultCiliumBinaries();
    const serverNode = () => backend.plan.pods.find((p) => p.role === 'server')!.node.name;
    try {
      const flow = await upBenchmark(backend);
      const full = benchmarkPolicySet(config);
      const installed = await backend.install(full);
      expect(installed.modelState.policyMapEntriesMaxPerEndpoint).toBe(POLICIES + 3); // + client, host ingress, egress allow-all
      expect(await clientConnects(backend, flow)).toBe(true);

      // Remove the policy that allows the client.
      const without: PolicySet = { ...full, policies: full.policies.filter((p) => p.metadata.labels?.[ROLE_LABEL] !== 'allow-client') };
      const removed = (await backend.setPolicies(without)).report;
      expect(removed.changed).toMatchObject({ policyAdded: 0, policyMapsCreated: 0, podsAttached: 0, ipcacheAdded: 0 });
      // One entry per server endpoint: the client identity's port rule (the ipcache keeps the client's /32).
      const servers = backend.plan.pods.filter((p) => p.role === 'server').length;
      expect(removed.changed.policyDeleted).toBe(servers);
      expect(removed.agentMs).toBeGreaterThan(0);
      expect(removed.agentMs).toBeGreaterThanOrEqual(removed.compileMs);
      expect(await clientConnects(backend, flow)).toBe(false);
      const stats = (await readCiliumCounters(new ExecRunner(), bin, ciliumPinDir(backend.plan.runId, serverNode())))!;
      expect(Math.max(...Object.values(stats.maps.policy.endpoints).map((m) => m.entries))).toBe(POLICIES + 2);

      // Restore it: one add per server endpoint, the client connects again.
      const restored = (await backend.setPolicies(full)).report;
      expect(restored.changed).toMatchObject({ policyAdded: servers, policyDeleted: 0, policyMapsCreated: 0 });
      console.log(`cilium model update at ${POLICIES} policies: allow removed in ${removed.agentMs.toFixed(1)} ms, restored in ${restored.agentMs.toFixed(1)} ms agent time`);
      expect(await clientConnects(backend, flow)).toBe(true);

      // No change: nothing written.
      const same = (await backend.setPolicies(full)).report;
      expect(Object.entries(same.changed).filter(([, v]) => v !== 0)).toEqual([]);
    } finally {
      await backend.down();
    }
    expect(existsSync(`/sys/fs/bpf/cb-${backend.plan.runId}`)).toBe(false);
  });

  itKernel('attaches a pod that appeared after install and gives it its identity, ipcache entry and map', async () => {
    const { config, problems } = resolveRunConfig({ cni: 'cilium', policies: '50', backend: 'local' });
    if (!config) throw new Error(JSON.stringify(problems));
    const backend = new LocalBackend({ config, runId: newRunId() });
    let clientPod: (typeof backend.plan.pods)[number] | undefined;
    try {
      await upBenchmark(backend);
      clientPod = backend.plan.pods.find((p) => p.role === 'client')!;
      const set = benchmarkPolicySet(config);
      // The client pod exists in the kernel but not yet for the model (as a pod scheduled after the agent ran).
      const i = backend.plan.pods.findIndex((p) => p.role === 'client');
      const [client] = backend.plan.pods.splice(i, 1);
      await backend.install(set);
      const server = backend.plan.pods.find((p) => p.role === 'server')!;
      // Unknown to the ipcache, the client is reserved:world at the server, which no policy allows.
      expect(await tryConnect(client!.netns, server.ip, 8080, 500)).toBe('timeout');

      backend.plan.pods.splice(i, 0, client!);
      const r = (await backend.setPolicies(set)).report;
      // Every node's agent learns the new pod's /32 (each node has its own ipcache, as each Cilium agent does).
      expect(r.changed).toMatchObject({ podsAttached: 1, ipcacheAdded: backend.plan.nodes.length, ipcacheDeleted: 0, endpointsAdded: 1, policyMapsCreated: 1 });
      // The client's own map (host ingress + allow-all both ways) and the server's one new entry for its identity.
      expect(r.changed.policyAdded).toBe(3 + 1);
      expect(r.changed.policyDeleted).toBe(0);
      expect(await tryConnect(client!.netns, server.ip, 8080)).toBe('connected');
      console.log(`cilium model update: new pod attached and admitted in ${r.agentMs.toFixed(1)} ms agent time (compile ${r.compileMs.toFixed(1)} ms)`);
    } finally {
      if (clientPod && !backend.plan.pods.includes(clientPod)) backend.plan.pods.push(clientPod); // teardown must see every namespace
      await backend.down();
    }
  });
});
