import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../exec/runner.js';
import { InputError } from '../errors.js';
import { parseSnapshot } from '../workload/snapshot.js';
import { cmdSnapshot } from './commands/snapshot.js';
import { bufferIo, runBench, tempDir } from './test-support/cli.js';

const shopJson = readFileSync(join(import.meta.dirname, '..', 'workload', 'fixtures', 'shop-cluster.json'), 'utf8');
const GET = ['get', 'namespaces,pods,networkpolicies', '--all-namespaces', '-o', 'json'];

/** kubectl that answers the snapshot's get with `stdout` (or fails as told). */
const kubectlAnswering = (answer: { stdout?: string; exitCode?: number; stderr?: string }) => new FakeRunner((argv) => (argv[0] === 'kubectl' ? answer : { exitCode: 127, stderr: 'unexpected command' }));

describe('bench snapshot', () => {
  it('writes what kubectl returned, after the importer read it', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const runner = kubectlAnswering({ stdout: shopJson });
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(0);
    expect(runner.log.map((c) => c.argv)).toEqual([['kubectl', '--context', 'prod', ...GET]]);
    expect(readFileSync(out, 'utf8')).toBe(shopJson);
    expect(io.err()).toBe(`bench snapshot: wrote ${out}: 5 namespaces, 17 pods (2 more left out: finished, unscheduled or without an address), 13 NetworkPolicies, 3 nodes\n`);
  });

  it('names the kubeconfig when given, and writes to stdout with -o -', async () => {
    const dir = tempDir();
    const kc = join(dir, 'kubeconfig');
    writeFileSync(kc, 'apiVersion: v1\n');
    const runner = kubectlAnswering({ stdout: shopJson });
    const io = bufferIo();
    expect(await cmdSnapshot({ kubeconfig: kc, context: 'eu', output: '-' }, io, { runner })).toBe(0);
    expect(runner.log[0]!.argv).toEqual(['kubectl', '--kubeconfig', kc, '--context', 'eu', ...GET]);
    expect(io.out()).toBe(shopJson);
  });

  it('anonymizes with a salt it does not write, keeping what the importer reads', async () => {
    const dir = tempDir();
    const run = async (file: string, salt?: string) => {
      expect(await cmdSnapshot({ context: 'prod', output: join(dir, file), anonymize: true, salt }, bufferIo(), { runner: kubectlAnswering({ stdout: shopJson }) })).toBe(0);
      return readFileSync(join(dir, file), 'utf8');
    };
    const a = await run('a.json', 'salt-of-the-earth');
    expect(await run('b.json', 'salt-of-the-earth')).toBe(a);
    expect(await run('c.json')).not.toBe(a);
    for (const name of ['payments', 'frontend', 'shop-worker', 'salt-of-the-earth', 'managedFields']) expect(a).not.toContain(name);
    const w = parseSnapshot('a.json', a).workload!;
    expect(w.inventory.pods).toHaveLength(17);
    expect(w.policies).toHaveLength(13);
  });

  it('kubectl failing: its exit code and stderr named, nothing written', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const io = bufferIo();
    const runner = kubectlAnswering({ exitCode: 1, stderr: 'error: You must be logged in to the server (Unauthorized)\n' });
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(1);
    expect(io.err()).toBe(
      "bench snapshot: read the cluster's namespaces, pods and NetworkPolicies (read-only): kubectl --context prod get namespaces,pods,networkpolicies --all-namespaces -o json failed (exit code 1)\n  error: You must be logged in to the server (Unauthorized)\n  nothing written\n",
    );
    expect(existsSync(out)).toBe(false);
  });

  it('what kubectl returned that the importer cannot read: named, nothing written', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const io = bufferIo();
    const broken = shopJson.replace('"containerPort": 8080', '"containerPort": 0');
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner: kubectlAnswering({ stdout: broken }) })).toBe(1);
    expect(io.err()).toMatch(/^bench snapshot: what kubectl returned cannot be read as a workload; nothing written:\n {2}kubectl get \(context prod\)#\/items\/\d+\/spec\/containers\/0\/ports\/0\/containerPort: Pod shop\/frontend-5d8f7c9b6-2kq7x: /);
    expect(existsSync(out)).toBe(false);
  });

  it('--dry-run prints the command and runs nothing', async () => {
    const io = bufferIo();
    const dir = tempDir();
    expect(await cmdSnapshot({ context: 'prod', output: join(dir, 'x.json'), dryRun: true, anonymize: true }, io)).toBe(0);
    expect(io.out()).toBe(`# read the cluster's namespaces, pods and NetworkPolicies (read-only)\nkubectl --context prod ${GET.join(' ')}\n# then: check what came back with the workload importer, anonymize it and write ${join(dir, 'x.json')}\n`);
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });

  it('refuses bad input before asking the cluster anything (exit 2)', async () => {
    const dir = tempDir();
    const existing = join(dir, 'old.json');
    writeFileSync(existing, '{}');
    const r = await runBench(['snapshot', '-o', existing, '--salt', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--context: bench snapshot needs an explicit --context NAME or --kubeconfig FILE');
    expect(r.stderr).toContain(`-o: ${existing} exists; not overwriting it (use --force)`);
    expect(r.stderr).toContain('--salt: only with --anonymize');
    expect(r.stderr).toContain('--salt: use at least 8 characters');
    await expect(cmdSnapshot({ context: 'x' }, bufferIo(), { runner: kubectlAnswering({}) })).rejects.toThrow(InputError);
    const missingDir = await runBench(['snapshot', '--context', 'x', '-o', join(dir, 'no', 'such', 'c.json')]);
    expect(missingDir.code).toBe(2);
    expect(missingDir.stderr).toMatch(/does not exist; create it first/);
  });
});
