// bench verify --workload: every input problem exits 2 before anything is built.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { runBench, tempDir } from './test-support/cli.js';

const FILE = join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json');

describe('bench verify --workload refusals (exit 2, before any work)', () => {
  it('bad flags: unknown CNI, --diff with one CNI, grid-only flags, another backend', async () => {
    const r = await runBench(['verify', '--workload', FILE, '--cni', 'calico,weave', '--backend', 'kind', '--list', '--policies', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cni: must be one of .*got "weave"/);
    expect(r.stderr).toMatch(/--backend: a --workload runs on the local backend only so far/);
    expect(r.stderr).toMatch(/--list: belongs to the grid cases/);
    expect(r.stderr).toMatch(/--policies: belongs to the grid cases/);
    const d = await runBench(['verify', '--workload', FILE, '--cni', 'calico', '--diff']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/--diff: compares data planes/);
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
