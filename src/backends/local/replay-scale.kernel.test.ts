// A replayed cluster at scale on the real kernel (issue 23 points 2 and 7): more than 500 real endpoints built by
// the batched bring-up, a sample of them probed; pod addresses far from 10.244.0.0/16 (Calico's /26 blocks in
// 192.168.0.0/16, k3s's 10.42.0.0/16) routed between nodes, on a routed and on a bridged (Flannel) model; a
// hostNetwork pod served from its node's namespace at the node's address.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect } from 'vitest';
import { runConfigSchema, type CniName } from '../../config/schema.js';
import { newRunId } from '../../identity/run-id.js';
import type { PodInfo } from '../../policy/types.js';
import type { ClusterWorkload } from '../../workload/cluster.js';
import { replayWorkload } from '../../workload/replay.js';
import type { Flow } from '../../workload/workload.js';
import { LocalBackend } from './backend.js';
import { itKernel, namespacesOfRun } from './test-support/kernel.js';

const live: LocalBackend[] = [];
afterEach(async () => {
  for (const b of live.splice(0)) await b.down();
});

const pod = (namespace: string, name: string, node: string, ip: string, port: number, hostNetwork = false): PodInfo => ({
  name,
  namespace,
  labels: { app: name.replace(/-\d+$/, '') },
  ip,
  node,
  ports: [{ containerPort: port, protocol: 'TCP' }],
  ...(hostNetwork ? { hostNetwork: true } : {}),
});

function cluster(name: string, pods: PodInfo[]): ClusterWorkload {
  const nodes = [...new Set(pods.map((p) => p.node))].sort();
  const namespaces = [...new Set(pods.map((p) => p.namespace))].map((n) => ({ name: n, labels: { 'kubernetes.io/metadata.name': n } }));
  return { name, inventory: { namespaces, pods }, policies: [], nodes, assignedAddresses: [], source: { kind: 'shape', file: `${name}.yaml`, seed: 1, scale: 1, apps: [], calls: [] } };
}

async function up(cni: CniName, w: ClusterWorkload, flows: Flow[], extraEndpoints = 0): Promise<LocalBackend> {
  const b = new LocalBackend({ config: runConfigSchema.parse({ cni, backend: 'local' }), runId: newRunId(), shape: 'cluster' });
  live.push(b);
  await b.up(b.fit(replayWorkload(w, flows, { extraEndpoints })));
  await b.install({ policies: [], peers: [] });
  return b;
}

const flow = (from: string, to: string, port: number): Flow => ({ from, to, port, protocol: 'TCP' });

describe('a replayed cluster at scale on the kernel', () => {
  itKernel(
    'more than 500 endpoints on four nodes are real: a sample connects across and within nodes; teardown leaves nothing',
    async () => {
      // 4 nodes × 130 pods, k3s-style addresses (10.42.<node>.0/24).
      const pods = Array.from({ length: 520 }, (_, i) => pod('apps', `web-${i}`, `k3s-${i % 4}`, `10.42.${i % 4}.${10 + Math.floor(i / 4)}`, 8080));
      const w = cluster('scale', pods);
      const b = await up('none', w, [flow('apps/web-0', 'apps/web-1', 8080)], 600);
      expect(b.plan.pods).toHaveLength(520);
      expect(b.plan.nodes.map((n) => n.podCidrs)).toEqual([['10.42.0.0/24'], ['10.42.1.0/24'], ['10.42.2.0/24'], ['10.42.3.0/24']]);
      for (const [from, to] of [[0, 519], [3, 516], [100, 404], [517, 2], [250, 254], [4, 8]] as const) {
        expect((await b.probe(flow(`apps/web-${from}`, `apps/web-${to}`, 8080), 1000)).outcome, `web-${from} -> web-${to}`).toBe('connected');
      }
      const runId = b.plan.runId;
      await b.down();
      live.splice(0);
      expect(namespacesOfRun(runId)).toEqual([]);
    },
    300_000,
  );

  for (const cni of ['none', 'flannel'] as const) {
    itKernel(`${cni}: pod addresses outside 10.244.0.0/16 are routed between nodes, and a hostNetwork pod serves from its node`, async () => {
      const w = cluster('odd', [
        // Calico IPAM blocks: two nodes share 192.168.5.0/24 in /26s.
        pod('a', 'api-0', 'worker-a', '192.168.5.3', 8080),
        pod('a', 'api-1', 'worker-b', '192.168.5.70', 8080),
        pod('b', 'db-0', 'worker-b', '10.42.7.9', 5432),
        pod('kube-system', 'exporter-0', 'worker-b', '10.0.0.12', 9100, true),
      ]);
      const flows = [flow('a/api-0', 'a/api-1', 8080), flow('a/api-0', 'b/db-0', 5432), flow('a/api-0', 'kube-system/exporter-0', 9100), flow('kube-system/exporter-0', 'a/api-0', 8080)];
      const b = await up(cni, w, flows);
      expect(b.plan.nodes.map((n) => n.podCidrs)).toEqual([['192.168.5.0/26'], ['10.42.7.0/24', '192.168.5.64/26']]);
      for (const f of flows) expect((await b.probe(f, 1000)).outcome, `${f.from} -> ${f.to}`).toBe('connected');
      // The hostNetwork pod's port is open in worker-b's namespace (node-1), not in a pod namespace of its own.
      const node = b.plan.nodes[1]!;
      expect(execFileSync('ip', ['netns', 'exec', node.netns, 'ss', '-Hltn', 'sport = :9100'], { encoding: 'utf8' })).toMatch(/9100/);
      expect(b.plan.pods.map((p) => p.name)).not.toContain('exporter-0');
      if (cni === 'flannel') {
        // No pod pair shares a node here, so every neighbour a connection needed on the pod network is a permanent
        // one (./bridge-neighbours.ts): the pods' gateway on eth0, the nodes' pods on cni0. A dynamic entry would
        // count against the one kernel-wide ARP table every replayed node shares, which 479 endpoints filled.
        const neighbours = (netns: string, dev: string) => execFileSync('ip', ['-4', '-n', netns, 'neigh', 'show', 'dev', dev, 'nud', 'all'], { encoding: 'utf8' }).trim().split('\n').filter((l) => l && !/NOARP/.test(l)); // multicast NOARP entries take no ARP
        for (const p of b.plan.pods) expect(neighbours(p.netns, 'eth0').filter((l) => !/PERMANENT/.test(l)), p.name).toEqual([]);
        for (const n of b.plan.nodes) {
          const onBridge = neighbours(n.netns, 'cni0');
          expect(onBridge.filter((l) => !/PERMANENT/.test(l)), n.name).toEqual([]);
          expect(onBridge).toHaveLength(b.plan.pods.filter((p) => p.node.index === n.index).length);
        }
      }
    }, 120_000);
  }
});
