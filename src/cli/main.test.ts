import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBench, tempDir } from './test-support/cli.js';
import { checkBackendCni, selectBackend } from '../backends/registry.js';
import { formatChecks, kernelAtLeast, runDoctor } from './doctor.js';
import { FakeRunner } from '../exec/runner.js';

describe('bench CLI input errors', () => {
  it('exits 2 and lists every problem', async () => {
    const r = await runBench(['run', '--cni', 'weave', '--policies', '-1', '--concurrency', 'x', '--backend', 'local']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cni: must be one of none, flannel, calico, cilium/);
    expect(r.stderr).toMatch(/--policies: must be at least 0/);
    expect(r.stderr).toMatch(/--concurrency: expected a whole number, got 'x'/);
  });

  it('names the scenario file and line of an unknown key', async () => {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(file, 'cni: calico\npolicies: 10\nwarmpu: 5\n');
    const r = await runBench(['run', '--scenario', file, '--backend', 'local']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:3:1: unknown key 'warmpu'`);
  });

  it('exits 2 on an unknown option', async () => {
    expect((await runBench(['run', '--cni', 'none', '--polices', '3'])).code).toBe(2);
  });

  it('prints generated policies as YAML', async () => {
    const r = await runBench(['policies', '--policies', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/kind: NetworkPolicy/g)).toHaveLength(3);
    expect(r.stdout).toContain('cni-bench/role: allow-client');
  });
});

describe('backend selection', () => {
  it('auto picks local without Docker and says why', () => {
    const s = selectBackend('auto', { dockerEngine: false, kind: false });
    expect(s.backend).toBe('local');
    expect(s.note).toMatch(/^backend: local \(auto: no Docker engine, no kind binary/);
  });

  it('an explicit backend is taken as given', () => {
    expect(selectBackend('local', { dockerEngine: true, kind: true })).toEqual({ backend: 'local' });
  });

  it('every local model is runnable on the local backend', () => {
    for (const cni of ['none', 'flannel', 'calico', 'cilium'] as const) expect(checkBackendCni('local', cni)).toBeUndefined();
  });
});

describe('bench doctor', () => {
  it('reports each missing tool with its fix', async () => {
    const runner = new FakeRunner((argv) => (argv[0] === 'ipset' || argv[0] === 'docker' ? { exitCode: 127, stderr: 'not found' } : { stdout: `${argv[0]} 1.0\n` }));
    const checks = await runDoctor(runner);
    const ipset = checks.find((c) => c.name === 'ipset')!;
    expect(ipset.ok).toBe(false);
    expect(ipset.fix).toMatch(/apt-get install -y ipset/);
    expect(checks.find((c) => c.name === 'iptables')!.ok).toBe(true);
    const text = formatChecks(checks);
    expect(text).toMatch(/local backend: NOT ready/);
    expect(text).toMatch(/FAIL ipset/);
  });

  it('compares kernel versions numerically', () => {
    expect(kernelAtLeast('6.18.44-fc', 5, 10)).toBe(true);
    expect(kernelAtLeast('5.9.0', 5, 10)).toBe(false);
    expect(kernelAtLeast('5.10.0', 5, 10)).toBe(true);
    expect(kernelAtLeast('4.19.1', 5, 10)).toBe(false);
  });
});
