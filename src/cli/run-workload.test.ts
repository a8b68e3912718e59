// bench run --workload: every input problem exits 2 before anything is built.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { runBench } from './test-support/cli.js';

const FILE = join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json');

describe('bench run --workload refusals (exit 2, before any work)', () => {
  it('settings that belong to the benchmark, --flows with --flow', async () => {
    const r = await runBench(['run', '--workload', FILE, '--cni', 'calico', '--policies', '10', '--placement', 'same-node', '--backend', 'kind']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--policies: the policies come from the --workload file/);
    expect(r.stderr).toMatch(/--placement: a workload places its pods/);
    expect(r.stderr).not.toMatch(/--backend/);
    const f = await runBench(['run', '--workload', FILE, '--cni', 'calico', '--flows', '2', '--flow', 'api/orders-0->db/postgres-0:5432']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/--flows: adds seeded random flows/);
  });

  it('a missing file, a flow naming no pod, a UDP flow', async () => {
    const m = await runBench(['run', '--workload', '/nonexistent/cluster.json', '--cni', 'calico']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/cluster\.json: workload file not found/);
    const f = await runBench(['run', '--workload', FILE, '--cni', 'calico', '--flow', 'api/orders-0->db/postgres-9:5432', '--flow', 'web/frontend-6c9f8b7d4-abcde->kube-system/coredns-5d78c9869d-x2k4p:53/UDP']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/no pod db\/postgres-9/);
  });

  it('--flow and --flows only with --workload', async () => {
    const r = await runBench(['run', '--cni', 'calico', '--backend', 'local', '--flows', '2', '--flow', 'a/b->c/d:80']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--flow: only with --workload FILE/);
    expect(r.stderr).toMatch(/--flows: only with --workload FILE/);
  });
});

describe('bench run --workload: the flows chosen', () => {
  it('are allowed as the data plane reads the policies: on Cilium no flow that only a pod-covering ipBlock admits', async () => {
    const { prepareRunCluster } = await import('./commands/run-workload.js');
    const { runConfigSchema } = await import('../config/schema.js');
    const { loadWorkload } = await import('../workload/load.js');
    const { DataPlaneExpectations } = await import('../workload/semantics.js');
    const cluster = loadWorkload(FILE);
    const key = (f: { from: string; to: string; port: number }) => `${f.from}->${f.to}:${f.port}`;
    const calico = await prepareRunCluster(runConfigSchema.parse({ cni: 'calico', workload: FILE }), {});
    const cilium = await prepareRunCluster(runConfigSchema.parse({ cni: 'cilium', workload: FILE }), {});
    // The seeded random flow on Calico is one the ipBlock admits; Cilium denies it, so it is not chosen there.
    expect(calico.cluster.flows.map(key)).toContain('web/frontend-6c9f8b7d4-abcde->db/postgres-0:5432');
    expect(cilium.cluster.flows.map(key)).not.toContain('web/frontend-6c9f8b7d4-abcde->db/postgres-0:5432');
    const onCilium = new DataPlaneExpectations(cluster, 'cilium');
    for (const f of cilium.cluster.flows) expect(onCilium.expect(f).allowed, key(f)).toBe(true);
    expect(cilium.cluster.workload.flows.every((f) => f.measured)).toBe(true);
  });
});
