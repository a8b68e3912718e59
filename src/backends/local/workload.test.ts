import { describe, expect, it, onTestFinished } from 'vitest';
import { runConfigSchema } from '../../config/schema.js';
import { FakeRunner } from '../../exec/runner.js';
import { NETNS_RE } from '../../identity/run-id.js';
import { gridLayout, gridWorkload } from '../../verify/grid.js';
import { LocalBackend } from './backend.js';
import { layoutWorkload, planExternalHosts } from './workload.js';

const layout = gridLayout();

describe('layoutWorkload (the verification grid)', () => {
  const plan = layoutWorkload(gridWorkload(layout), { runId: 'k3f9a', model: { attachment: 'routed', hostIfPrefix: 'cali' } });

  it('places the 10 grid pods alternately on two nodes and the external hosts above every node address', () => {
    expect(plan.topology.pods.map((p) => `${p.namespace}/${p.name}@${p.node.name}`)).toEqual([
      'x/a@node-0', 'x/b@node-1', 'x/c@node-0', 'y/a@node-1', 'y/b@node-0', 'y/c@node-1', 'z/a@node-0', 'z/b@node-1', 'z/c@node-0', 'kube-system/coredns@node-1',
    ]);
    expect(plan.addresses.ips).toMatchObject({ 'x/a': '10.244.0.2', 'x/b': '10.244.1.2', ext1: '172.18.0.240', ext2: '172.18.0.241' });
  });

  it('names every namespace so bench gc finds it by the run prefix', () => {
    for (const e of plan.hosts) expect(e.netns).toMatch(NETNS_RE);
    expect(plan.hosts.map((e) => e.netns)).toEqual(['cb-k3f9a-ext1', 'cb-k3f9a-ext2']);
  });

  it('routes each node pod CIDR via its node from the external hosts, and never touches the host namespace', () => {
    const cmds = planExternalHosts(plan.topology, plan.hosts);
    expect(cmds.filter((c) => c.argv.includes('route')).map((c) => c.argv.join(' '))).toEqual([
      'ip -n cb-k3f9a-ext1 route add 10.244.0.0/24 via 172.18.0.2 dev eth0',
      'ip -n cb-k3f9a-ext1 route add 10.244.1.0/24 via 172.18.0.3 dev eth0',
      'ip -n cb-k3f9a-ext2 route add 10.244.0.0/24 via 172.18.0.2 dev eth0',
      'ip -n cb-k3f9a-ext2 route add 10.244.1.0/24 via 172.18.0.3 dev eth0',
    ]);
    for (const c of cmds) {
      const inNs = c.netns !== undefined || (c.argv[0] === 'ip' && (c.argv[1] === '-n' || (c.argv[1] === 'netns' && c.argv[2] === 'add')));
      expect(inNs, c.argv.join(' ')).toBe(true);
    }
  });
});

describe('LocalBackend.probe', () => {
  it('runs one cb-probe check in the source pod and turns its answer into an outcome', async () => {
    const runner = new FakeRunner((argv) => (argv.includes('--udp') ? { exitCode: 1, stdout: 'timeout ETIMEDOUT\n' } : { stdout: 'open\n' }));
    const plane = new LocalBackend({
      config: runConfigSchema.parse({ cni: 'none', backend: 'local' }),
      runId: 'k3f9a',
      shape: 'verify-grid',
      runner,
      cleanupRunner: runner,
      startServer: async () => ({ pid: 1, exited: new Promise(() => undefined), stop: async () => undefined }),
    });
    // up() announces the run (a real lock file under /run/cni-bench): down() must release it, pass or fail.
    onTestFinished(() => plane.down());
    await plane.up(gridWorkload(layout));
    const before = runner.log.length;
    expect(await plane.probe({ from: 'x/a', to: 'y/b', protocol: 'TCP', port: 81 }, 300)).toEqual({ outcome: 'connected', reason: 'open' });
    expect(await plane.probe({ from: 'x/a', to: 'ext1', protocol: 'UDP', port: 80 }, 300)).toEqual({ outcome: 'blocked', reason: 'timeout ETIMEDOUT' });
    expect(runner.log[before + 1]!.argv.slice(0, 4)).toEqual(['ip', 'netns', 'exec', 'cb-k3f9a-p0']);
    expect(runner.log[before + 1]!.argv.slice(5)).toEqual(['check', '--target', '172.18.0.240', '--port', '80', '--udp', '--timeout-ms', '300']);
  });
});

describe('layoutWorkload (the benchmark and the enforce topology)', () => {
  const model = { attachment: 'routed', hostIfPrefix: 'cali' } as const;

  it("keeps the benchmark's namespace names (scripts and kept runs name them) and numbers every other workload's pods", async () => {
    const { benchmarkWorkload } = await import('../../workload/benchmark.js');
    const { enforceWorkload } = await import('../../enforce/plan.js');
    const cfg = runConfigSchema.parse({ cni: 'calico', policies: 3 });
    const bench = layoutWorkload(benchmarkWorkload(cfg), { runId: 'k3f9a', model });
    expect(bench.topology.pods.map((p) => [p.netns, p.ip])).toEqual([
      ['cb-k3f9a-client', '10.244.0.2'],
      ['cb-k3f9a-server0', '10.244.1.2'],
    ]);
    const enforce = layoutWorkload(enforceWorkload(cfg), { runId: 'k3f9a', model });
    expect(enforce.topology.pods.map((p) => `${p.name}@${p.netns}`)).toEqual(['client@cb-k3f9a-p0', 'server-0@cb-k3f9a-p1', 'intruder@cb-k3f9a-p2', 'joiner@cb-k3f9a-p3']);
  });

  it('gives the policy set its peers and the workload its address-only pods an address each, fixed ones kept', async () => {
    const { benchmarkWorkload } = await import('../../workload/benchmark.js');
    const { workloadInventory } = await import('./workload.js');
    const w = benchmarkWorkload(runConfigSchema.parse({ cni: 'calico', policies: 2 }));
    w.pods.push({ name: 'db', namespace: 'shop', labels: { app: 'db' }, ports: [], node: 0, presence: 'address', role: 'server', ip: '10.9.9.9' });
    const { topology } = layoutWorkload(w, { runId: 'k3f9a', model });
    const inv = workloadInventory(w, topology, w.policies, () => []);
    expect(inv.pods.map((p) => `${p.namespace}/${p.name} ${p.ip}`)).toEqual([
      'bench-client/client 10.244.0.2',
      'bench-server/server-0 10.244.1.2',
      'bench-server/peer-0 10.245.0.1',
      'bench-server/peer-1 10.245.0.2',
      'shop/db 10.9.9.9',
    ]);
    expect(inv.namespaces.map((n) => n.name)).toEqual(['bench-server', 'bench-client', 'shop']);
  });
});
