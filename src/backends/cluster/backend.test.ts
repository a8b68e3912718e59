import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runConfigSchema, type RunConfigInput } from '../../config/schema.js';
import { executeRun } from '../../run/run.js';
import { daemonSet, daemonSetList, fakeCluster, PlanRunner } from '../k8s/test-support/cluster.js';
import { ClusterBackend, ClusterTargetError, pickNodes } from './backend.js';

const RUN_ID = 'abcde';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const out = () => {
  const d = mkdtempSync(join(tmpdir(), 'cb-cluster-test-'));
  dirs.push(d);
  return d;
};
const config = (o: Partial<RunConfigInput> = {}) => runConfigSchema.parse({ cni: 'cilium', policies: 3, backend: 'cluster', samples: 12, warmup: 2, context: 'prod-eu', ...o });

describe('cluster backend', () => {
  it('refuses to run without an explicit context or kubeconfig', () => {
    const { context: _c, ...rest } = config();
    expect(() => new ClusterBackend({ config: { ...rest }, runId: RUN_ID, outDir: '/x', runner: new PlanRunner() })).toThrow(ClusterTargetError);
  });

  it('runs against the named context, and deletes only its own namespaces by run label', async () => {
    const d = out();
    const runner = fakeCluster();
    const cfg = config({ out: d });
    const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) });
    expect(result.errors).toEqual([]);
    expect(result.meta.topology).toEqual({ nodes: 3, placement: 'cross-node', serverPods: 1 });
    expect(result.modelState).toMatchObject({ serverNode: 'w1', clientNode: 'w2' });
    const cmds = runner.log.map((r) => r.argv);
    for (const a of cmds) expect(a.slice(0, 3)).toEqual(['kubectl', '--context', 'prod-eu']);
    // Nothing cluster-wide is created or deleted: no kind, no helm, no CNI manifests, deletes only by run label.
    expect(cmds.some((a) => a[0] !== 'kubectl')).toBe(false);
    const deletes = cmds.filter((a) => a.includes('delete'));
    expect(deletes).toEqual([['kubectl', '--context', 'prod-eu', 'delete', 'namespace', '-l', 'cni-bench/run=abcde', '--ignore-not-found', '--wait=true', '--timeout=180s']]);
    const creates = runner.log.filter((r) => r.argv.includes('create'));
    // namespaces, workloads, the filler peer pods (the default config's policies, capped).
    expect(creates).toHaveLength(3);
    // /proc/stat is read on both nodes (they do not share a kernel, unlike kind's).
    expect(cmds.filter((a) => a.includes('/proc/stat') && a.includes('bench-server-7d9f-x2x'))).not.toHaveLength(0);
  });

  it('refuses a --cni that contradicts what the cluster runs, and creates nothing', async () => {
    const d = out();
    const runner = fakeCluster();
    const cfg = config({ cni: 'calico', out: d });
    const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID) });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) });
    expect(result.errors[0]!.message).toMatch(/^step detect-cni failed: --cni calico contradicts the cluster, which runs cilium/);
    expect(runner.log.some((r) => r.argv.includes('create') || r.argv.includes('delete'))).toBe(false);
  });

  it('uses the agent where this cluster has it (manifest-installed calico in kube-system)', async () => {
    const d = out();
    const runner = fakeCluster((argv) =>
      argv.join(' ').includes('get daemonsets') ? { stdout: daemonSetList(daemonSet('kube-system/calico-node', ['calico-node'], { 'k8s-app': 'calico-node' })) } : undefined,
    );
    const cfg = config({ cni: 'calico', out: d, placement: 'same-node' });
    const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) });
    expect(result.errors).toEqual([]);
    expect(result.modelState).toMatchObject({ serverNode: 'w1', clientNode: 'w1' });
    expect(result.meta.model.description).toMatch(/detected: kube-system\/calico-node/);
  });

  describe("Calico's data plane comes from the FelixConfiguration default (the operator sets no FELIX_* env)", () => {
    // An operator-installed calico-node: no FELIX_BPFENABLED / FELIX_NFTABLESMODE in its template (tigera/operator v1.38.6).
    const calicoCluster = (felix: { stdout?: string; stderr?: string; exitCode?: number }) =>
      fakeCluster((argv) => {
        const a = argv.join(' ');
        if (a.includes('get daemonsets')) return { stdout: daemonSetList(daemonSet('calico-system/calico-node', ['calico-node'], { 'k8s-app': 'calico-node' })) };
        if (a.includes('get felixconfigurations.crd.projectcalico.org default')) return felix;
        return undefined;
      });
    const run = async (cni: 'calico' | 'calico-ebpf', runner: ReturnType<typeof fakeCluster>) => {
      const d = out();
      const cfg = config({ cni, out: d });
      const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
      return (await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) })).result;
    };
    const bpf = { stdout: JSON.stringify({ apiVersion: 'crd.projectcalico.org/v1', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { bpfEnabled: true, nftablesMode: 'Disabled' } }) };

    it('bpfEnabled: true is calico-ebpf: measured as such, and --cni calico is refused naming it', async () => {
      const ok = await run('calico-ebpf', calicoCluster(bpf));
      expect(ok.errors).toEqual([]);
      expect(ok.meta.model.description).toMatch(/detected: calico-system\/calico-node \(eBPF data plane\)/);
      const refused = await run('calico', calicoCluster(bpf));
      expect(refused.errors[0]).toMatchObject({ kind: 'usage' });
      expect(refused.errors[0]!.message).toMatch(/--cni calico contradicts the cluster, which runs calico-ebpf \(calico-system\/calico-node \(eBPF data plane\)\); run with --cni calico-ebpf/);
    });

    it('an unreadable FelixConfiguration is a refusal (exit 2) naming the RBAC, never a guess of iptables; nothing is created', async () => {
      const runner = calicoCluster({ exitCode: 1, stderr: 'Error from server (Forbidden): felixconfigurations.crd.projectcalico.org "default" is forbidden: User "ci" cannot get resource "felixconfigurations" in API group "crd.projectcalico.org" at the cluster scope' });
      const result = await run('calico', runner);
      expect(result.status).toBe('failed');
      expect(result.errors).toHaveLength(1);
      expect(result.errors[0]).toMatchObject({ stage: 'setup', kind: 'usage' });
      expect(result.errors[0]!.message).toMatch(/^step detect-cni failed: cannot tell which data plane calico-system\/calico-node runs: .*FelixConfiguration "default".*reading it failed: Error from server \(Forbidden\)/);
      expect(result.errors[0]!.message).toMatch(/get` on felixconfigurations\.crd\.projectcalico\.org.*clusters\/rbac-cluster-backend\.yaml/);
      expect(runner.log.some((r) => r.argv.includes('create') || r.argv.includes('delete'))).toBe(false);
      // A cluster without calico-node does not need it: Cilium is measured though the read fails.
      const cilium = fakeCluster((argv) => (argv.join(' ').includes('felixconfigurations') ? { exitCode: 1, stderr: 'error: the server doesn\'t have a resource type "felixconfigurations"' } : undefined));
      const d = out();
      const cfg = config({ out: d });
      const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner: cilium, cleanupRunner: cilium, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
      expect((await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) })).result.errors).toEqual([]);
    });
  });

  it('without nodes/proxy permission it measures latency and records why CPU is missing, never reading kubelet metrics', async () => {
    const d = out();
    const runner = fakeCluster((argv) => (argv.join(' ').includes('auth can-i') ? { stdout: 'no\n', exitCode: 1 } : undefined));
    const cfg = config({ out: d });
    const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) });
    expect(result.errors).toEqual([]);
    expect(result.metrics.crr!.samplesNs.length).toBeGreaterThan(0);
    expect(result.metrics.crr!.cpu).toBeNull();
    expect(String(result.modelState.cpu)).toMatch(/no permission to get nodes\/proxy/);
    expect(runner.log.some((r) => r.argv.join(' ').includes('/proxy/metrics'))).toBe(false);
  });

  it('on an RKE2 Canal cluster: --cni canal measures with both containers as agents; --cni flannel is refused, naming canal', async () => {
    const d = out();
    const rke2 = (argv: string[]) =>
      argv.join(' ').includes('get daemonsets') ? { stdout: daemonSetList(daemonSet('kube-system/rke2-canal', ['calico-node', 'kube-flannel'], { 'k8s-app': 'canal' })) } : undefined;
    const runner = fakeCluster(rke2);
    const cfg = config({ cni: 'canal', out: d });
    const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) });
    expect(result.errors).toEqual([]);
    expect(result.meta.model).toMatchObject({ name: 'Canal (existing cluster)', enforcesPolicy: true });
    expect(result.modelState).toMatchObject({ deniedConnectionBlocked: true });
    const r2 = fakeCluster(rke2);
    const cfg2 = config({ cni: 'flannel', out: d });
    const b2 = new ClusterBackend({ config: cfg2, runId: RUN_ID, runner: r2, cleanupRunner: r2, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
    const { result: refused } = await executeRun({ runId: RUN_ID, config: cfg2, backend: b2, outDir: join(d, RUN_ID) });
    expect(refused.errors[0]!.message).toMatch(/--cni flannel contradicts the cluster, which runs canal \(kube-system\/rke2-canal.*run with --cni canal/);
  });

  it('dry run plans workloads, policies and measurement without touching the cluster', async () => {
    const runner = new PlanRunner();
    const cfg = config({ kubeconfig: '/home/me/eks.yaml', context: undefined, dryRun: true });
    const b = new ClusterBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: '/r/abcde' });
    await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: '/r/abcde' });
    const purposes = runner.specs.map((s) => s.purpose);
    expect(purposes.slice(0, 5)).toEqual([
      'reach the cluster and list its nodes',
      'detect the CNI the cluster runs (DaemonSet pod templates, every namespace)',
      "read Calico's FelixConfiguration (data plane mode), if any",
      'may this identity read kubelet metrics (nodes/proxy)? CPU figures need it',
      'create the run namespaces',
    ]);
    expect(runner.specs.every((s) => s.argv.slice(0, 3).join(' ') === 'kubectl --kubeconfig /home/me/eks.yaml')).toBe(true);
  });

  it('picks Ready, schedulable workers and refuses when there are not enough', () => {
    const node = (name: string, ready = true, extra: object = {}) => ({ metadata: { name }, spec: extra, status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } });
    const list = (...items: object[]) => JSON.stringify({ items });
    expect(pickNodes(list(node('b'), node('a'), node('c', false)), 'cross-node').placement).toEqual({ serverNode: 'a', clientNode: 'b' });
    expect(() => pickNodes(list(node('a'), node('b', true, { unschedulable: true })), 'cross-node')).toThrow(/needs 2 Ready schedulable nodes/);
    expect(pickNodes(list(node('a')), 'same-node').placement).toEqual({ serverNode: 'a', clientNode: 'a' });
  });
});
