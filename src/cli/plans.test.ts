// Snapshot of every dry-run plan the CLI prints (run, sweep, verify, enforce on each backend), taken from the
// source through the CLI's own entry point, in-process (each case as a fresh `bench`: the seeded run-id sequence
// starts again). Guards refactors: the commands and manifests a plan names must not change unless a change means
// them to. Run ids and machine-specific paths are normalised before comparing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartRunIdSequence } from '../identity/run-id.js';
import { runBench } from './test-support/cli.js';
import { cgroup2Root } from '../backends/local/cgroup.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const work = mkdtempSync(join(tmpdir(), 'cb-plans-'));
const ENV = { NO_COLOR: '1', CNI_BENCH_RUN_ID_SEED: 'plans' } as const;
const saved = Object.fromEntries(Object.keys(ENV).map((k) => [k, process.env[k]]));
beforeAll(() => Object.assign(process.env, ENV));
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(work, { recursive: true, force: true });
});

const kubeconfig = join(work, 'kubeconfig.yaml');
writeFileSync(
  kubeconfig,
  'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: ctx, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: x}}]\ncurrent-context: ctx\n',
);

async function plan(args: string[]): Promise<string> {
  restartRunIdSequence();
  const r = await runBench([...args, '--out', join(work, 'results')]);
  // Run ids come from a fixed seed; the sweep id carries a timestamp.
  const text = `exit ${r.code}\n${r.stdout}${r.stderr ? `--- stderr\n${r.stderr}` : ''}`;
  return text
    .replaceAll(work, '<work>')
    .replaceAll(repo, '<repo>')
    // Tests run with a temp directory of their own (src/test-support/temp-guard.ts); a plan names it as /tmp.
    .replaceAll(`${tmpdir()}/`, '/tmp/')
    // Where cgroup v2 is mounted differs between machines (/sys/fs/cgroup, /sys/fs/cgroup/unified).
    .replaceAll(`${cgroup2Root()}/cb-`, '<cgroup2>/cb-')
    .replace(/\/run\/user\/\d+\//g, '/run/user/<uid>/')
    .replace(/sweep-\d{8}-\d{6}-[a-z0-9]{4}/g, 'sweep-<id>')
    .replace(/\[\s*\d+\.\d+s\]/g, '[t]');
}

const kc = ['--kubeconfig', kubeconfig, '--context', 'ctx'];
const cases: Record<string, string[]> = {
  'run local cilium': ['run', '--backend', 'local', '--cni', 'cilium', '--policies', '3', '--dry-run'],
  'run local calico': ['run', '--backend', 'local', '--cni', 'calico', '--policies', '3', '--dry-run'],
  'run local calico-nftables': ['run', '--backend', 'local', '--cni', 'calico-nftables', '--policies', '3', '--dry-run'],
  'run local calico-ebpf': ['run', '--backend', 'local', '--cni', 'calico-ebpf', '--policies', '3', '--dry-run'],
  'run local canal': ['run', '--backend', 'local', '--cni', 'canal', '--policies', '3', '--dry-run'],
  'run local flannel': ['run', '--backend', 'local', '--cni', 'flannel', '--policies', '3', '--dry-run'],
  'run local none': ['run', '--backend', 'local', '--cni', 'none', '--policies', '0', '--dry-run'],
  'run local calico services': ['run', '--backend', 'local', '--cni', 'calico', '--policies', '2', '--services', '2', '--dry-run'],
  'run local cilium services': ['run', '--backend', 'local', '--cni', 'cilium', '--policies', '2', '--services', '2', '--dry-run'],
  'run kind cilium': ['run', '--backend', 'kind', '--cni', 'cilium', '--policies', '3', '--dry-run'],
  'run kind calico': ['run', '--backend', 'kind', '--cni', 'calico', '--policies', '3', '--dry-run'],
  'run kind flannel': ['run', '--backend', 'kind', '--cni', 'flannel', '--policies', '3', '--dry-run'],
  'run kind calico-ebpf': ['run', '--backend', 'kind', '--cni', 'calico-ebpf', '--policies', '3', '--dry-run'],
  'run cluster calico': ['run', '--backend', 'cluster', ...kc, '--cni', 'calico', '--policies', '3', '--dry-run'],
  'run kind calico services': ['run', '--backend', 'kind', '--cni', 'calico', '--policies', '2', '--services', '3', '--kube-proxy', 'nftables', '--service-position', 'first', '--dry-run'],
  'run kind cilium services': ['run', '--backend', 'kind', '--cni', 'cilium', '--policies', '2', '--services', '2', '--dry-run'],
  'run kind cilium services endpoints': ['run', '--backend', 'kind', '--cni', 'cilium', '--policies', '2', '--services', '2', '--endpoints-per-service', '3', '--dry-run'],
  'run cluster calico services': ['run', '--backend', 'cluster', ...kc, '--cni', 'calico', '--policies', '2', '--services', '2', '--dry-run'],
  'run workload kind calico': ['run', '--workload', join(repo, 'src/workload/fixtures/replay-cluster.json'), '--backend', 'kind', '--cni', 'calico', '--flows', '1', '--dry-run'],
  'run workload cluster cilium': ['run', '--workload', join(repo, 'scenarios/workloads/small.yaml'), '--backend', 'cluster', ...kc, '--cni', 'cilium', '--flow', 'shop/frontend-0->shop/db-0:8443', '--dry-run'],
  'sweep smoke': ['sweep', '--scenario', join(repo, 'scenarios/smoke.yaml'), '--dry-run'],
  'sweep workload small': ['sweep', '--workload', join(repo, 'scenarios/workloads/small.yaml'), '--cni', 'none,flannel,calico,cilium', '--dry-run'],
  'verify kind calico': ['verify', '--backend', 'kind', '--cni', 'calico', '--dry-run'],
  'verify kind cilium': ['verify', '--backend', 'kind', '--cni', 'cilium', '--dry-run'],
  'verify cluster cilium': ['verify', '--backend', 'cluster', ...kc, '--cni', 'cilium', '--dry-run'],
  'verify workload kind calico cilium diff': ['verify', '--workload', join(repo, 'src/workload/fixtures/replay-cluster.json'), '--backend', 'kind', '--cni', 'calico,cilium', '--diff', '--dry-run'],
  'verify workload cluster cilium': ['verify', '--workload', join(repo, 'scenarios/workloads/small.yaml'), '--backend', 'cluster', ...kc, '--cni', 'cilium', '--flow', 'shop/frontend-0->shop/db-0:8443', '--flow', 'search/api-0->search/worker-0:30004/UDP', '--dry-run'],
  'enforce local calico': ['enforce', '--backend', 'local', '--cni', 'calico', '--policies', '10', '--dry-run'],
  'enforce local cilium': ['enforce', '--backend', 'local', '--cni', 'cilium', '--policies', '10', '--dry-run'],
  'enforce kind cilium': ['enforce', '--backend', 'kind', '--cni', 'cilium', '--policies', '3', '--dry-run'],
  'enforce kind calico': ['enforce', '--backend', 'kind', '--cni', 'calico', '--policies', '3', '--dry-run'],
  'enforce cluster calico': ['enforce', '--backend', 'cluster', ...kc, '--cni', 'calico', '--policies', '3', '--dry-run'],
  'enforce kind cilium services': ['enforce', '--backend', 'kind', '--cni', 'cilium', '--policies', '3', '--services', '100', '--changes', 'endpoint-removed,endpoint-added,service-added', '--dry-run'],
  'enforce kind calico services': ['enforce', '--backend', 'kind', '--cni', 'calico', '--policies', '2', '--services', '2', '--changes', 'endpoint-removed,endpoint-added,service-added', '--dry-run'],
  'enforce cluster calico services': ['enforce', '--backend', 'cluster', ...kc, '--cni', 'calico', '--policies', '2', '--services', '2', '--dry-run'],
  'enforce workload kind calico flannel': ['enforce', '--workload', join(repo, 'src/workload/fixtures/replay-cluster.json'), '--backend', 'kind', '--cni', 'calico,flannel', '--dry-run'],
  'enforce workload cluster cilium': ['enforce', '--workload', join(repo, 'src/workload/fixtures/replay-cluster.json'), '--backend', 'cluster', ...kc, '--cni', 'cilium', '--change', 'add:api/allow-frontend', '--change', 'remove:web/allow-api', '--dry-run'],
};

describe('dry-run plans (snapshot of the source, through the CLI entry point)', () => {
  for (const [name, args] of Object.entries(cases)) {
    it(name, async () => {
      await expect(await plan(args)).toMatchFileSnapshot(join(here, '__snapshots__/plans', `${name.replaceAll(' ', '-')}.txt`));
    }, 60_000);
  }
});
