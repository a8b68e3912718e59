// A run with --services on the kernel, through the local backend as bench run drives it: the CNI's service data
// plane is the one the catalogue names, the measured connections go to the server's ClusterIP and reach the server,
// and the policy applies after the translation, to the backend pod (as upstream's netpol suite assumes): the
// client is allowed while its policy is in place and denied once it is removed. Teardown leaves nothing.
import { describe, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { resolveRunConfig } from '../../config/load.js';
import { newRunId } from '../../identity/run-id.js';
import { benchmarkWorkload } from '../../workload/benchmark.js';
import { LocalBackend } from './backend.js';
import { cgroup2Root, runCgroupDir } from './cgroup.js';
import { itKernel, namespacesOfRun } from './test-support/kernel.js';

const CASES = [
  { cni: 'calico', plane: 'kube-proxy-iptables', kubeProxy: undefined },
  { cni: 'canal', plane: 'kube-proxy-nftables', kubeProxy: 'nftables' },
  { cni: 'calico-nftables', plane: 'kube-proxy-nftables', kubeProxy: undefined },
  { cni: 'cilium', plane: 'cilium-socket-lb', kubeProxy: undefined },
  { cni: 'calico-ebpf', plane: 'calico-ctlb', kubeProxy: undefined },
] as const;

describe('bench run --services on the local kernel', () => {
  for (const c of CASES) {
    itKernel(`${c.cni}: connects through ${c.plane} to the server's ClusterIP; the policy applies to the backend pod`, async () => {
      const { config, problems } = resolveRunConfig({ cni: c.cni, backend: 'local', policies: '5', services: '200', samples: '100', warmup: '0', ...(c.kubeProxy ? { kubeProxy: c.kubeProxy } : {}) });
      expect(problems).toEqual([]);
      const backend = new LocalBackend({ config: config!, runId: newRunId() });
      try {
        const workload = benchmarkWorkload(config!, backend.target);
        await backend.up(workload);
        const flow = workload.flows.find((f) => f.measured)!;
        const report = await backend.install(workload.policies);
        expect(report.services).toMatchObject({ count: 200, dataPlane: c.plane, position: 'last', port: 80 });
        expect(report.services!.clusterIP).toMatch(/^10\.(9[6-9]|10\d|11[01])\./);
        expect(report.services!.state.services).toBe(201);
        const m = await backend.measure(flow, 'connect', { samples: 100, warmup: 0, concurrency: 1, timeoutMs: 500 });
        expect(m.errors).toEqual({});
        expect(m.samplesNs).toHaveLength(100);
        // Without the policy that allows the client, the connection to the ClusterIP is denied at the backend pod.
        const allowsClient = workload.policies.policies.find((p) => p.spec.ingress?.[0]?.from?.[0]?.namespaceSelector)!;
        expect(allowsClient).toBeDefined();
        await backend.setPolicies({ ...workload.policies, policies: workload.policies.policies.filter((p) => p !== allowsClient) });
        expect((await backend.probe(flow, 300)).outcome).toBe('blocked');
        await backend.setPolicies(workload.policies);
        expect((await backend.probe(flow, 1000)).outcome).toBe('connected');
      } finally {
        await backend.down();
      }
      expect(namespacesOfRun(backend.plan.runId)).toEqual([]);
      expect(existsSync(runCgroupDir(cgroup2Root(), backend.plan.runId))).toBe(false);
    });
  }
});
