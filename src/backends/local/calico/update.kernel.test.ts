// Incremental updates of the Felix-layout models (calico, canal) on the real kernel: the benchmark topology with
// filler policies, then policy and label changes handed to model.update() — never a reinstall — and real TCP
// connections to see each new verdict.
import { describe, expect } from 'vitest';
import { resolveRunConfig } from '../../../config/load.js';
import type { CniName, IptablesBackendName } from '../../../config/schema.js';
import { resolveEndpoints } from '../../../policy/resolve.js';
import type { Inventory, NetworkPolicy } from '../../../policy/types.js';
import { benchmarkPolicySet } from '../../../workload/benchmark.js';
import { LocalBackend } from '../backend.js';
import { localModel } from '../models.js';
import type { ModelContext } from '../types.js';
import { itKernel, tryConnect, upBenchmark } from '../test-support/kernel.js';
import { CLIENT_NAMESPACE, SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from '../../../workload/workload.js';
import { newRunId } from '../../../identity/run-id.js';

const CASES: Array<[CniName, IptablesBackendName]> = [
  ['calico', 'nft'],
  ['calico', 'legacy'],
  ['canal', 'nft'],
];

/** Allows pods labelled trust=yes in the client namespace to reach the server port. */
const trusted: NetworkPolicy = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'zz-allow-trusted', namespace: SERVER_NAMESPACE },
  spec: {
    podSelector: { matchLabels: { ...SERVER_LABELS } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': CLIENT_NAMESPACE } }, podSelector: { matchLabels: { trust: 'yes' } } }],
        ports: [{ protocol: 'TCP', port: SERVER_PORT }],
      },
    ],
  },
};

for (const [cni, iptablesBackend] of CASES) {
  describe(`${cni} model update() on iptables-${iptablesBackend}`, () => {
    itKernel('enforces an added allow, a removed allow and a label change without a reinstall', { timeout: 180_000 }, async () => {
      const { config } = resolveRunConfig({ cni, backend: 'local', policies: '300', iptablesBackend, samples: '1', warmup: '0' });
      const backend = new LocalBackend({ config: config!, runId: newRunId() });
      const model = localModel(cni);
      try {
        await upBenchmark(backend);
        const set = benchmarkPolicySet(config!);
        await backend.install(set); // the client's allow is the last of 301 policies
        const base = backend.modelContext!;
        const client = backend.plan.pods.find((p) => p.role === 'client')!;
        const server = backend.plan.pods.find((p) => p.role === 'server')!;
        const connect = () => tryConnect(client.netns, server.ip, SERVER_PORT, 500);
        const nodes = new Set(backend.plan.nodes.map((n) => n.name));
        const ctxFor = (policies: NetworkPolicy[], inventory: Inventory = base.inventory): ModelContext => ({
          ...base,
          inventory,
          endpoints: resolveEndpoints(inventory, policies).filter((e) => nodes.has(e.pod.node)),
        });
        expect(await connect()).toBe('connected');

        // Allow removed: only the server's group chain and endpoint chain change, the client's set goes.
        const withoutClient = set.policies.filter((p) => p.metadata.labels?.['cni-bench/role'] !== 'allow-client');
        expect(withoutClient).toHaveLength(set.policies.length - 1);
        const removed = await model.update!(ctxFor(withoutClient));
        expect(await connect()).toBe('timeout');
        expect(removed.changed.chainsWritten).toBeLessThanOrEqual(3);
        expect(removed.changed.chainsDeleted).toBeGreaterThanOrEqual(1);
        expect(removed.changed.setsDestroyed).toBe(1);
        expect(removed.agentMs).toBeCloseTo(removed.compileMs + removed.applyMs, 5);

        // Allow added back.
        const added = await model.update!(ctxFor(set.policies));
        expect(await connect()).toBe('connected');
        expect(added.changed.chainsWritten).toBeLessThanOrEqual(4);
        expect(added.changed.setsCreated).toBe(1);

        // A policy for trust=yes pods instead: denied until the client gains the label, which is one set member.
        const byLabel = [...withoutClient, trusted];
        await model.update!(ctxFor(byLabel));
        expect(await connect()).toBe('timeout');
        const labelled: Inventory = {
          ...base.inventory,
          pods: base.inventory.pods.map((p) => (p.name === client.name && p.namespace === client.namespace ? { ...p, labels: { ...p.labels, trust: 'yes' } } : p)),
        };
        const joined = await model.update!(ctxFor(byLabel, labelled));
        expect(await connect()).toBe('connected');
        expect(joined.changed).toMatchObject({ chainsWritten: 0, setMembersAdded: 1, setMembersDeleted: 0, setsCreated: 0 });
        expect(joined.state.iptablesBackend).toBe(iptablesBackend);

        // Nothing changed: nothing written.
        const idle = await model.update!(ctxFor(byLabel, labelled));
        expect(idle.changed).toMatchObject({ chainsWritten: 0, rulesWritten: 0, setMembersAdded: 0, setMembersDeleted: 0 });
      } finally {
        await backend.down();
      }
    });
  });
}
