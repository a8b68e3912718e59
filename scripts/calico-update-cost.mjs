#!/usr/bin/env node
// Benchmark: what an incremental policy change costs the Felix-layout models' "agent" (model.update: compile +
// apply of only what changed) next to a full install, at N filler policies. Changes, in order: the client's
// allow removed, added back, a label-selected allow added, the client joining that selector (one set member).
// Usage (root, after npm run build): node scripts/calico-update-cost.mjs [cni=calico] [Ns=1000,10000] [backends=nft,legacy]
import { LocalBackend } from '../dist/backends/local/backend.js';
import { localModel } from '../dist/backends/local/models.js';
import { resolveRunConfig } from '../dist/config/load.js';
import { resolveEndpoints } from '../dist/policy/resolve.js';
import { benchmarkPolicySet, benchmarkWorkload } from '../dist/workload/benchmark.js';
import { CLIENT_NAMESPACE, SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from '../dist/workload/workload.js';
import { newRunId } from '../dist/identity/run-id.js';

const cni = process.argv[2] ?? 'calico';
const Ns = (process.argv[3] ?? '1000,10000').split(',').map(Number);
const backends = (process.argv[4] ?? 'nft,legacy').split(',');
const trusted = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'zz-allow-trusted', namespace: SERVER_NAMESPACE },
  spec: {
    podSelector: { matchLabels: { ...SERVER_LABELS } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': CLIENT_NAMESPACE } }, podSelector: { matchLabels: { trust: 'yes' } } }], ports: [{ protocol: 'TCP', port: SERVER_PORT }] }],
  },
};

const rows = [];
for (const iptablesBackend of backends) {
  for (const n of Ns) {
    const { config } = resolveRunConfig({ cni, backend: 'local', policies: String(n), iptablesBackend, samples: '1', warmup: '0' });
    const backend = new LocalBackend({ config, runId: newRunId() });
    const model = localModel(cni);
    try {
      const workload = benchmarkWorkload(config, backend.target);
      await backend.up(workload);
      const set = benchmarkPolicySet(config);
      const install = await backend.install(set);
      rows.push({ backend: iptablesBackend, n, change: 'full install (resolve + compile + apply)', agentMs: Math.round(install.installMs), changed: `${install.modelState.chains} chains, ${install.modelState.ipsets} sets` });
      const base = backend.modelContext;
      const nodes = new Set(backend.plan.nodes.map((x) => x.name));
      const client = backend.plan.pods.find((p) => p.role === 'client');
      const ctx = (policies, inventory = base.inventory) => ({ ...base, inventory, endpoints: resolveEndpoints(inventory, policies).filter((e) => nodes.has(e.pod.node)) });
      const without = set.policies.filter((p) => p.metadata.labels?.['cni-bench/role'] !== 'allow-client');
      const labelled = { ...base.inventory, pods: base.inventory.pods.map((p) => (p.name === client.name && p.namespace === client.namespace ? { ...p, labels: { ...p.labels, trust: 'yes' } } : p)) };
      const steps = [
        ['allow removed', ctx(without)],
        ['allow added', ctx(set.policies)],
        ['label-selected allow added', ctx([...without, trusted])],
        ['peer joins selector', ctx([...without, trusted], labelled)],
      ];
      for (const [change, c] of steps) {
        const r = await model.update(c);
        const ch = r.changed;
        rows.push({ backend: iptablesBackend, n, change, agentMs: Math.round(r.agentMs), compileMs: Math.round(r.compileMs), applyMs: Math.round(r.applyMs), changed: `${ch.chainsWritten} chains (${ch.rulesWritten} rules) written, ${ch.chainsDeleted} deleted, +${ch.setMembersAdded}/-${ch.setMembersDeleted} members, +${ch.setsCreated}/-${ch.setsDestroyed} sets` });
        console.error(`${cni} ${iptablesBackend} N=${n} ${change}: agent ${Math.round(r.agentMs)} ms`);
      }
    } finally {
      await backend.down();
    }
  }
}
console.log(`| ${cni}: iptables backend | N | change | agent ms (compile + apply) | what was written |`);
console.log('|---|---:|---|---:|---|');
for (const r of rows) console.log(`| ${r.backend} | ${r.n} | ${r.change} | ${r.agentMs}${r.compileMs !== undefined ? ` (${r.compileMs} + ${r.applyMs})` : ''} | ${r.changed} |`);
