// bench verify --workload: every input problem exits 2 before anything is built.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { runBench, tempDir } from './test-support/cli.js';

const FILE = join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json');

describe('bench verify --workload refusals (exit 2, before any work)', () => {
  it('bad flags: unknown CNI, --diff with one CNI, grid-only flags, cluster-only flags on local, several CNIs on one cluster', async () => {
    const r = await runBench(['verify', '--workload', FILE, '--cni', 'calico,weave', '--backend', 'kind', '--list', '--policies', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cni: must be one of .*got "weave"/);
    expect(r.stderr).not.toMatch(/--backend/);
    const l = await runBench(['verify', '--workload', FILE, '--cni', 'calico', '--backend', 'local', '--dry-run', '--context', 'x']);
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(/--dry-run: only for --backend kind\|cluster/);
    expect(l.stderr).toMatch(/--context: only for --backend kind\|cluster/);
    const c = await runBench(['verify', '--workload', FILE, '--cni', 'calico,cilium', '--diff', '--backend', 'cluster', '--context', 'x', '--dry-run']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--cni: an existing cluster runs one data plane/);
    const a = await runBench(['verify', '--workload', FILE, '--cni', 'calico', '--backend', 'auto']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--backend: must be one of local, kind, cluster, got "auto"/);
    const n = await runBench(['verify', '--workload', FILE, '--cni', 'none', '--backend', 'kind', '--dry-run']);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/--cni: 'none' has no real CNI on kind/);
    expect(r.stderr).toMatch(/--list: belongs to the grid cases/);
    expect(r.stderr).toMatch(/--policies: belongs to the grid cases/);
    const d = await runBench(['verify', '--workload', FILE, '--cni', 'calico', '--diff']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/--diff: compares data planes/);
  });

  it('the Service flags are refused, not ignored: the flows are probed pod to pod', async () => {
    const r = await runBench(['verify', '--workload', FILE, '--cni', 'calico', '--services', '10', '--kube-proxy', 'nftables']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--services: verify --workload probes the flows pod to pod, not through Services/);
    expect(r.stderr).toMatch(/--kube-proxy: verify --workload probes the flows pod to pod/);
  });

  it('a bad file names the item and field; a bad --flow names the pod', async () => {
    const dir = tempDir();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'x' }, spec: { containers: [{ name: 'c', ports: [{ containerPort: 'eighty' }] }] } }] }));
    const r = await runBench(['verify', '--workload', bad, '--cni', 'calico']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad.json#/items/0/spec/containers/0/ports/0/containerPort');
    const f = await runBench(['verify', '--workload', FILE, '--cni', 'calico', '--flow', 'api/orders-9->db/postgres-0:5432']);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/no pod api\/orders-9 in workload replay-cluster \(pods in api: orders-0, orders-1\)/);
  });

  it('--flow and --diff only with --workload', async () => {
    const r = await runBench(['verify', '--cni', 'calico', '--flow', 'a/b->c/d:80', '--diff']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--flow: only with --workload FILE/);
    expect(r.stderr).toMatch(/--diff: only with --workload FILE/);
  });
});
