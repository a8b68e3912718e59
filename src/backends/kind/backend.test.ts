import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runConfigSchema, type RunConfigInput } from '../../config/schema.js';
import { FakeRunner } from '../../exec/runner.js';
import { executeRun } from '../../run/run.js';
import { fakeCluster, planText, PlanRunner } from '../k8s/test-support/cluster.js';
import { KindBackend, deleteKindCluster, findKindLeftovers, planCniPluginsFetch, verifySha256File } from './backend.js';
import { loadVersions } from '../k8s/versions.js';

const RUN_ID = 'abcde';
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cb-kind-test-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const config = (o: Partial<RunConfigInput> = {}) => runConfigSchema.parse({ cni: 'cilium', policies: 3, backend: 'kind', samples: 12, warmup: 2, ...o });

function backend(o: { cni?: 'flannel' | 'calico' | 'cilium'; runner: FakeRunner | PlanRunner; cleanup?: FakeRunner | PlanRunner; outDir: string; signal?: AbortSignal; placement?: 'cross-node' | 'same-node'; policies?: number }) {
  const cfg = config({ cni: o.cni ?? 'cilium', out: o.outDir, placement: o.placement ?? 'cross-node', policies: o.policies ?? 3, dryRun: o.runner instanceof PlanRunner });
  const b = new KindBackend({
    config: cfg,
    runId: RUN_ID,
    runner: o.runner,
    cleanupRunner: o.cleanup ?? o.runner,
    outDir: join(o.outDir, RUN_ID),
    cacheDir: '/var/cache/cni-bench-test',
    signal: o.signal,
    probeIntervalMs: 0,
    enforcementTimeoutMs: 50,
  });
  return { b, cfg };
}

describe('kind backend: dry-run plan', () => {
  for (const cni of ['flannel', 'calico', 'cilium'] as const) {
    it(`plans a complete ${cni} run (snapshot)`, async () => {
      const runner = new PlanRunner();
      const { b, cfg } = backend({ cni, runner, outDir: '/results' });
      const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: '/results/abcde' });
      expect(result.errors).toEqual([]);
      const argv = runner.specs.map((s) => s.argv);
      // Own kubeconfig on every kubectl/helm/kind call; never the user's.
      for (const a of argv.filter((x) => ['kubectl', 'helm'].includes(x[0]!))) expect(a).toContain('/results/abcde/kubeconfig');
      expect(argv.find((a) => a[1] === 'create' && a[2] === 'cluster')).toEqual(['kind', 'create', 'cluster', '--name', 'cb-abcde', '--config', '-', '--kubeconfig', '/results/abcde/kubeconfig', '--wait', '0s']);
      expect(argv.at(-1)).toEqual(['kind', 'delete', 'cluster', '--name', 'cb-abcde', '--kubeconfig', '/results/abcde/kubeconfig']);
      expect(planText(runner.specs)).toMatchSnapshot();
    });
  }

  it('flannel gets the bridge plugin into every node before its manifest; calico uses create for its CRDs', async () => {
    const f = new PlanRunner();
    await backend({ cni: 'flannel', runner: f, outDir: '/results' }).b.up();
    const fa = f.specs.map((s) => s.argv.join(' '));
    const cps = fa.filter((a) => a.startsWith('docker cp '));
    expect(cps).toEqual(['cb-abcde-control-plane', 'cb-abcde-worker', 'cb-abcde-worker2'].map((n) => `docker cp /var/cache/cni-bench-test/cni-plugins-v1.7.1-amd64/bridge ${n}:/opt/cni/bin/bridge`));
    expect(fa.findIndex((a) => a.includes('kube-flannel.yml'))).toBeGreaterThan(fa.indexOf(cps.at(-1)!));
    const c = new PlanRunner();
    await backend({ cni: 'calico', runner: c, outDir: '/results' }).b.up();
    const crds = c.specs.find((s) => s.argv.some((x) => x.endsWith('operator-crds.yaml')))!;
    expect(crds.argv.slice(3, 5)).toEqual(['create', '-f']);
  });

  it('same-node placement puts server and client on one worker', async () => {
    const r = new PlanRunner();
    await backend({ runner: r, outDir: '/results', placement: 'same-node' }).b.up();
    const workloads = r.specs.find((s) => s.purpose === 'create the server deployment and client pods')!.input!;
    expect(workloads.match(/kubernetes\.io\/hostname: (\S+)/g)!.map((x) => x.split(': ')[1])).toEqual(['cb-abcde-worker', 'cb-abcde-worker', 'cb-abcde-worker']);
  });

  it('applies 5000 policies in 11 server-side apply batches', async () => {
    const r = new PlanRunner();
    const { b, cfg } = backend({ runner: r, outDir: '/results', policies: 5000 });
    await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: '/results/abcde' });
    const applies = r.specs.filter((s) => s.argv.includes('--server-side'));
    expect(applies).toHaveLength(11);
    expect(applies[0]!.argv.slice(3)).toEqual(['apply', '--server-side', '--field-manager=cni-bench', '-f', '-']);
    const items = applies.map((s) => (JSON.parse(s.input!) as { items: unknown[] }).items.length);
    expect(items.reduce((a, b) => a + b, 0)).toBe(5001);
  });
});

describe('kind backend: a run against a scripted cluster', () => {
  it('measures all three metrics and records enforcement and CPU', async () => {
    const out = tmp();
    const runner = fakeCluster();
    const { b, cfg } = backend({ runner, outDir: out });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('ok');
    expect(result.metrics.crr!.samplesNs).toHaveLength(11);
    expect(result.metrics.crr!.errors).toEqual({ SOCKET_ERROR: 1 });
    expect(result.metrics.rr!.samplesNs[0]).toBe(211_000);
    expect(result.metrics.connect!.samplesNs).toHaveLength(12);
    expect(result.metrics.crr!.cpu!.totalUsPerOp).toBeGreaterThan(0);
    expect(result.modelState).toMatchObject({ policiesApplied: 4, deniedConnectionBlocked: true, allowedConnectionWorks: true, crrSamplesSource: 'access-log', connectSamplesSource: 'histogram' });
    expect(runner.log.at(-1)!.argv.slice(0, 3)).toEqual(['kind', 'delete', 'cluster']);
  });

  it('a failing CNI install saves diagnostics, names the step and deletes the cluster', async () => {
    const out = tmp();
    const runner = fakeCluster((argv) => (argv.some((a) => a.endsWith('operator-crds.yaml')) ? { exitCode: 1, stderr: 'error: the server could not find the requested resource' } : undefined));
    const { b, cfg } = backend({ cni: 'calico', runner, outDir: out });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]).toMatchObject({ stage: 'setup', kind: 'k8s-step' });
    expect(result.errors[0]!.message).toMatch(/^step install-cni failed: .*operator-crds\.yaml.*\n.*could not find/s);
    const diag = join(out, RUN_ID, 'diagnostics');
    expect(readdirSync(diag).sort()).toEqual(
      ['events.txt', 'pods.txt', 'nodes.txt', 'describe-pods-calico-system.txt', 'describe-pods-tigera-operator.txt', 'logs-calico-system-calico-node.txt'].sort(),
    );
    expect(readFileSync(join(diag, 'events.txt'), 'utf8')).toMatch(/^\$ kubectl --kubeconfig \S+ get events -A/);
    const a = runner.log.map((r) => r.argv.join(' '));
    expect(a).toContain(`kind export logs ${join(diag, 'kind-logs')} --name cb-abcde`);
    expect(a.at(-1)).toBe(`kind delete cluster --name cb-abcde --kubeconfig ${join(out, RUN_ID, 'kubeconfig')}`);
    // Nothing after the failed step ran.
    expect(a.some((x) => x.includes('wait --for=condition=Ready nodes'))).toBe(false);
  });

  it('a readiness timeout reports the step that timed out', async () => {
    const out = tmp();
    const runner = fakeCluster((argv) => (argv.join(' ').includes('rollout status daemonset/cilium') ? { exitCode: 1, timedOut: true, durationMs: 315_000 } : undefined));
    const { b, cfg } = backend({ runner, outDir: out });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(result.errors[0]!.message).toMatch(/^step wait-cni-ready failed: .*timed out after 315000 ms/s);
    expect(existsSync(join(out, RUN_ID, 'diagnostics', 'logs-kube-system-cilium-agent.txt'))).toBe(true);
  });

  it('a data plane that never enforces fails the wait-enforcement step', async () => {
    const out = tmp();
    const runner = fakeCluster((argv) => (argv.join(' ').includes('fortio load -n 2 ') ? { stdout: JSON.stringify({ DurationHistogram: { Count: 2 }, RetCodes: { '200': 2 } }) } : undefined));
    const { b, cfg } = backend({ runner, outDir: out });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(result.errors[0]).toMatchObject({ stage: 'policy' });
    expect(result.errors[0]!.message).toMatch(/^step wait-enforcement failed: .*denied client connects/);
  });

  it('with --keep a failed run leaves the cluster up', async () => {
    const out = tmp();
    const runner = fakeCluster((argv) => (argv[0] === 'helm' ? { exitCode: 1 } : undefined));
    const cfg = config({ out, keep: true });
    const b = new KindBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(out, RUN_ID), probeIntervalMs: 0 });
    await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(runner.log.some((r) => r.argv.join(' ').startsWith('kind delete'))).toBe(false);
    expect(b.keepInstructions().join('\n')).toContain('kind delete cluster --name cb-abcde');
  });

  it('Ctrl-C during a wait stops the run and tears the cluster down with the cleanup runner', async () => {
    const out = tmp();
    const ctl = new AbortController();
    const runner = fakeCluster((argv) => {
      if (!argv.join(' ').includes('wait --for=condition=Ready nodes')) return undefined;
      ctl.abort(new Error('interrupted by SIGINT'));
      return { exitCode: 130, stderr: 'killed' };
    });
    const cleanup = new FakeRunner();
    const { b, cfg } = backend({ runner, cleanup, outDir: out, signal: ctl.signal });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID), signal: ctl.signal });
    expect(result.errors[0]).toMatchObject({ stage: 'interrupted' });
    expect(cleanup.log.at(-1)!.argv.join(' ')).toBe(`kind delete cluster --name cb-abcde --kubeconfig ${join(out, RUN_ID, 'kubeconfig')}`);
    expect(runner.log.some((r) => r.argv.join(' ').includes('rollout status'))).toBe(false);
    await b.down();
    expect(cleanup.log.filter((r) => r.argv[1] === 'delete')).toHaveLength(1);
  });
});

describe('kind gc', () => {
  it('finds only cb-<runid> clusters and deletes them with a scratch kubeconfig', async () => {
    const r = new FakeRunner((argv) => (argv.join(' ') === 'kind get clusters' ? { stdout: 'cb-k3f9a\nkind\nmy-cb-x1234\ncb-toolong1\ncb-z0000\n' } : undefined));
    const found = await findKindLeftovers(r, '/nonexistent-lock-dir');
    expect(found).toEqual([
      { cluster: 'cb-k3f9a', runId: 'k3f9a', live: false },
      { cluster: 'cb-z0000', runId: 'z0000', live: false },
    ]);
    await deleteKindCluster(r, 'cb-k3f9a');
    expect(r.log.at(-1)!.argv.slice(0, 6)).toEqual(['kind', 'delete', 'cluster', '--name', 'cb-k3f9a', '--kubeconfig']);
    expect(r.log.at(-1)!.argv[6]).not.toMatch(/\.kube\/config$/);
    await expect(deleteKindCluster(r, 'kind')).rejects.toThrow(/not a cni-bench cluster/);
  });

  it('no kind binary means nothing to collect', async () => {
    expect(await findKindLeftovers(new FakeRunner(() => ({ exitCode: 127 })))).toEqual([]);
  });
});

describe('CNI plugins for flannel', () => {
  it('downloads the release and its checksum into the cache', () => {
    const f = planCniPluginsFetch(loadVersions(), '/c', 'arm64');
    expect(f.url).toBe('https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-arm64-v1.7.1.tgz');
    expect(f.commands.map((c) => c.argv[0])).toEqual(['curl', 'curl', 'mkdir', 'tar']);
  });

  it('rejects a download whose sha256 differs from the published one', () => {
    const d = tmp();
    writeFileSync(join(d, 'x.tgz'), 'hello');
    writeFileSync(join(d, 'x.tgz.sha256'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824  x.tgz\n');
    expect(() => verifySha256File(join(d, 'x.tgz'), join(d, 'x.tgz.sha256'))).not.toThrow();
    writeFileSync(join(d, 'x.tgz.sha256'), `${'0'.repeat(64)}  x.tgz\n`);
    expect(() => verifySha256File(join(d, 'x.tgz'), join(d, 'x.tgz.sha256'))).toThrow(/does not match/);
    expect(existsSync(join(d, 'x.tgz'))).toBe(false);
  });
});
