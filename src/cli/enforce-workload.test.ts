// bench enforce --workload: every input problem exits 2 before anything is built (no run id, no namespace).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { runBench } from './test-support/cli.js';

const FILE = join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json');

describe('bench enforce --workload refusals (exit 2, before any work)', () => {
  it('an unknown policy, with the close names; a bad change; a change that flips no flow on that data plane', async () => {
    const r = await runBench(['enforce', '--workload', FILE, '--cni', 'calico', '--change', 'remove:api/allow-frontnd', '--change', 'drop:api/allow-frontend']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--change: 'remove:api\/allow-frontnd': workload replay-cluster has no NetworkPolicy api\/allow-frontnd \(close: api\/allow-frontend/);
    expect(r.stderr).toMatch(/'drop:api\/allow-frontend' is not remove:NAMESPACE\/POLICY or add:NAMESPACE\/POLICY/);
    const none = await runBench(['enforce', '--workload', FILE, '--cni', 'calico,cilium', '--change', 'remove:monitoring/allow-grafana']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/remove:monitoring\/allow-grafana flips no TCP flow between the workload's pods on calico/);
    expect(none.stderr).toMatch(/on cilium/);
  });

  it('settings of the synthetic changes and of the Services; --dry-run on the local backend', async () => {
    const r = await runBench(['enforce', '--workload', FILE, '--cni', 'calico', '--policies', '3', '--changes', 'allow-added', '--services', '2', '--kube-proxy', 'nftables', '--backend', 'kind', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--policies: not with --workload: the policies come from the --workload file/);
    expect(r.stderr).toMatch(/--changes: not with --workload: with --workload the changes name its policies/);
    expect(r.stderr).toMatch(/--services: not with --workload/);
    expect(r.stderr).toMatch(/--kube-proxy: not with --workload/);
    expect(r.stdout).toBe('');
    const local = await runBench(['enforce', '--workload', FILE, '--cni', 'calico', '--dry-run']);
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/--dry-run: only for --backend kind\|cluster/);
  });

  it('kind/cluster: an existing cluster runs one data plane; a CNI the backend has no profile for; a watched flow an ipBlock over snapshot addresses decides', async () => {
    const two = await runBench(['enforce', '--workload', FILE, '--backend', 'cluster', '--context', 'ctx', '--cni', 'calico,cilium', '--dry-run']);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/--cni: an existing cluster runs one data plane/);
    const none = await runBench(['enforce', '--workload', FILE, '--backend', 'kind', '--cni', 'calico,none', '--dry-run']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--cni: 'none' has no real CNI on kind/);
    const small = join(PACKAGE_ROOT, 'scenarios', 'workloads', 'small.yaml');
    const block = await runBench(['enforce', '--workload', small, '--backend', 'kind', '--cni', 'calico', '--change', 'remove:search/frontend-egress', '--flow', 'search/frontend-0->search/frontend-1:8443', '--dry-run']);
    expect(block.code).toBe(2);
    expect(block.stderr).toMatch(/--flow: search\/frontend-0->search\/frontend-1:8443\/TCP cannot be watched on kind: its verdict rests on an ipBlock covering snapshot pod addresses/);
    expect(block.stdout).toBe('');
  });

  it('--change and --flow only with --workload; a --flow no change flips; a CNI named twice; a missing file', async () => {
    const c = await runBench(['enforce', '--cni', 'calico', '--change', 'remove:a/b']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--change: only with --workload FILE/);
    const f = await runBench(['enforce', '--workload', FILE, '--cni', 'calico', '--change', 'remove:api/allow-frontend', '--flow', 'api/orders-0->db/postgres-0:5432']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/--flow: remove:api\/allow-frontend flips none of the flows named on calico; it flips e\.g\. web\/frontend-6c9f8b7d4-abcde -> api\/orders-/);
    const twice = await runBench(['enforce', '--workload', FILE, '--cni', 'calico,calico']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/--cni: names a CNI twice/);
    const m = await runBench(['enforce', '--workload', '/nonexistent/cluster.json', '--cni', 'calico']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/workload file not found/);
  });
});

describe('bench enforce --workload: the changes prepared', () => {
  it('default changes are chosen once and named; the watched flows are affected ones', async () => {
    const { prepareWorkloadEnforce } = await import('./commands/enforce-workload.js');
    const p = await prepareWorkloadEnforce({ workload: FILE, cni: 'cilium,calico' });
    expect(p.plan.notes[0]).toMatch(/remove:db\/allow-worker-cidr — its removal changes the most flows: 5$/);
    for (const cni of ['cilium', 'calico'] as const) {
      const [c] = p.plan.byCni.get(cni)!;
      expect(c!.probed.length).toBe(2);
      for (const f of c!.probed) expect(c!.affected).toContainEqual(f);
    }
  });
});
