// `bench run --backend cluster` as a user runs it (the built CLI), against a stand-in `kubectl` on PATH that answers
// like an operator-installed Calico cluster whose FelixConfiguration this identity may not read: the run must refuse
// with the usage exit code (2), naming the RBAC, and create nothing.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const cli = join(repo, 'dist/cli/main.js');
const work = mkdtempSync(join(tmpdir(), 'cb-refusal-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const nodes = JSON.stringify({
  items: ['w1', 'w2'].map((name) => ({ metadata: { name, labels: {} }, spec: {}, status: { conditions: [{ type: 'Ready', status: 'True' }] } })),
});
const daemonsets = JSON.stringify({
  items: [{ metadata: { namespace: 'calico-system', name: 'calico-node' }, spec: { template: { metadata: { labels: { 'k8s-app': 'calico-node' } }, spec: { containers: [{ name: 'calico-node', image: 'example/calico-node' }] } } } }],
});

/** A kubectl that logs its argv and answers the cluster backend's first reads. */
function fakeKubectl(felix: { exit: number; out: string; err: string }): string {
  const bin = join(work, `bin-${felix.exit}`);
  const log = join(bin, 'calls.log');
  writeFileSync(join(work, `nodes.json`), nodes);
  writeFileSync(join(work, `ds.json`), daemonsets);
  writeFileSync(join(work, `felix-${felix.exit}.json`), felix.out);
  const script = `#!/bin/sh
echo "$*" >> '${log}'
case "$*" in
  *"get nodes -o json"*) cat '${join(work, 'nodes.json')}' ;;
  *"get daemonsets -A -o json"*) cat '${join(work, 'ds.json')}' ;;
  *"get felixconfigurations.crd.projectcalico.org default"*) cat '${join(work, `felix-${felix.exit}.json`)}'; echo '${felix.err}' >&2; exit ${felix.exit} ;;
  *"auth can-i"*) echo yes ;;
esac
exit 0
`;
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'kubectl'), script);
  chmodSync(join(bin, 'kubectl'), 0o755);
  return bin;
}

function bench(bin: string, cni: string) {
  const kubeconfig = join(work, 'kubeconfig.yaml');
  writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
  return spawnSync(process.execPath, [cli, 'run', '--backend', 'cluster', '--kubeconfig', kubeconfig, '--cni', cni, '--policies', '3', '--out', join(work, 'results')], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1' },
    timeout: 120_000,
  });
}

describe('bench run --backend cluster: Calico whose FelixConfiguration cannot be read', () => {
  it('refuses with exit 2, naming the RBAC it needs, and creates nothing', () => {
    const bin = fakeKubectl({ exit: 1, out: '', err: 'Error from server (Forbidden): felixconfigurations.crd.projectcalico.org "default" is forbidden' });
    const r = bench(bin, 'calico');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/cannot tell which data plane calico-system\/calico-node runs/);
    expect(r.stdout + r.stderr).toMatch(/`get` on felixconfigurations\.crd\.projectcalico\.org: the ClusterRole cni-bench in clusters\/rbac-cluster-backend\.yaml/);
    const calls = readFileSync(join(bin, 'calls.log'), 'utf8');
    expect(calls).not.toMatch(/ (create|apply|delete) /);
  }, 120_000);

  it('with bpfEnabled: true readable, --cni calico is refused (exit 2) naming calico-ebpf', () => {
    const bin = fakeKubectl({ exit: 0, out: JSON.stringify({ spec: { bpfEnabled: true } }), err: '' });
    const r = bench(bin, 'calico');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/--cni calico contradicts the cluster, which runs calico-ebpf/);
  }, 120_000);
});
