// K8sServiceChanges alone on kind with kube-proxy in iptables mode: what each change applies or deletes, the
// address a new Service's watch starts on, and kube-proxy's sync histogram read on the client's node around it.
import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../../config/schema.js';
import { FakeRunner } from '../../exec/runner.js';
import type { WatchOutput } from '../../probe/watch.js';
import { enforceServices, INITIAL_SERVICE_STATE } from '../../enforce/services.js';
import type { MetricReader } from './agent-metrics.js';
import type { K8sPlaneContext } from './deployment.js';
import { runNames } from './manifests.js';
import { KUBE_PROXY_SYNC_METRIC, K8sServiceChanges, type TimedPlane } from './service-changes.js';
import { loadVersions } from './versions.js';

const settled: WatchOutput = { baseNs: 0n, intervalNs: 1_000_000, timeoutNs: 100_000_000, settledIndex: 0, realtime: false, startNs: [0], endNs: [1], result: ['open'] };

function setup(kubeProxy: 'iptables' | 'none') {
  let syncs = 0;
  const runner = new FakeRunner((argv) => {
    const a = argv.join(' ');
    if (a.includes('curl')) return { stdout: `${KUBE_PROXY_SYNC_METRIC}_bucket{le="+Inf"} ${syncs}\n${KUBE_PROXY_SYNC_METRIC}_sum ${syncs * 0.004}\n${KUBE_PROXY_SYNC_METRIC}_count ${syncs}\n` };
    if (a.includes('apply --server-side') || a.includes(' delete ')) syncs++;
    if (a.includes('get service bench-server -o')) return { stdout: '10.96.0.10' };
    if (a.includes('get service bench-server-added -o')) return { stdout: '10.96.0.11' };
    return undefined;
  });
  const names = runNames('abcde');
  const c = {
    runner,
    provider: { target: { kubeconfig: '/k' }, info: { kubeProxy, nodeCgroups: { provider: 'docker' } } },
    session: { names, serverIp: '10.244.1.5', placement: { serverNode: 'w1', clientNode: 'w2' } },
    config: runConfigSchema.parse({ cni: kubeProxy === 'none' ? 'cilium' : 'calico', backend: 'kind', services: 2 }),
    versions: loadVersions(),
    opts: {},
  } as unknown as K8sPlaneContext;
  const readings: Array<{ metric: string; before: unknown; after: unknown }> = [];
  const plane: TimedPlane = {
    // As the enforce deployment's change(): the reader before and after the API call.
    async change(issue, counts, reader?: MetricReader | null, absentNote?: string | null) {
      const before = reader ? (await reader.scrape(' before')).value : null;
      const commands = await issue();
      const after = reader ? (await reader.scrape(' after')).value : null;
      if (reader) readings.push({ metric: reader.metric, before, after });
      return { startNs: 0n, resolveMs: 0, report: { agentMs: 0, compileMs: 0, applyMs: 0, changed: counts, state: {} }, k8s: { command: commands.join(' && '), apiMs: 0, watchStartedMs: null, cniMetric: null, cniMetricNote: reader ? null : absentNote ?? null } };
    },
    watch: async () => ({ baseNs: 0n, done: Promise.resolve(settled), stop: async () => settled }),
    watchCommand: () => '',
  };
  const sets = enforceServices({ services: 2, endpointsPerService: 1, servicePosition: 'last', seed: 1 }, { ip: '10.244.1.5', namespace: names.serverNamespace, name: 'server-0', labels: { app: 'bench-server' }, targetPort: 8080 });
  return { runner, readings, sets, svc: new K8sServiceChanges({ c, plane, client: () => 'client' }) };
}

describe('K8sServiceChanges on kind', () => {
  it('applies only the Service a change alters, deletes a Service with its slice, and gives the new ClusterIP once it exists', async () => {
    const { runner, sets, svc } = setup('iptables');
    const installed = await svc.install(sets.setFor(INITIAL_SERVICE_STATE));
    expect(installed).toMatchObject({ dataPlane: 'kube-proxy-iptables', state: { kubeProxyMode: 'iptables', agentMetric: `${KUBE_PROXY_SYNC_METRIC} from kube-proxy on w2` } });
    expect(svc.frontOf(sets.probed)).toBe('10.96.0.10');
    expect(svc.frontOf(sets.added)).toBeNull();
    const from = runner.log.length;
    const removed = await svc.setServices(sets.setFor({ endpoint: false, added: false }));
    const applies = runner.log.slice(from).filter((r) => r.argv.includes('apply'));
    expect(applies).toHaveLength(1);
    const items = (JSON.parse(applies[0]!.input!) as { items: Array<{ kind: string; metadata: { name: string }; endpoints?: unknown[] }> }).items;
    expect(items.map((i) => `${i.kind}/${i.metadata.name}`)).toEqual(['Service/bench-server', 'EndpointSlice/bench-server-cb']);
    expect(items[1]!.endpoints).toEqual([]);
    expect(removed.ip).toBeUndefined();
    const added = await svc.setServices(sets.setFor({ endpoint: true, added: true }));
    expect(added.ip).toBe('10.96.0.11');
    expect(added.report.changed).toEqual({ servicesApplied: 2, servicesDeleted: 0 });
    const before = runner.log.length;
    await svc.setServices(sets.setFor({ endpoint: true, added: false }));
    const deletes = runner.log.slice(before).filter((r) => r.argv.includes('delete'));
    expect(runner.log.slice(before).filter((r) => r.argv.includes('apply'))).toEqual([]);
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.argv.join(' ')).toMatch(/delete service\/bench-server-added endpointslice\/bench-server-added-cb --ignore-not-found/);
    expect(svc.frontOf(sets.added)).toBeNull();
  });

  it("reads kube-proxy's sync histogram on the client's node around each change; none where the CNI replaces kube-proxy", async () => {
    const { runner, readings, sets, svc } = setup('iptables');
    await svc.install(sets.setFor(INITIAL_SERVICE_STATE));
    await svc.setServices(sets.setFor({ endpoint: false, added: false }));
    expect(readings).toEqual([{ metric: KUBE_PROXY_SYNC_METRIC, before: { sum: 0.004, count: 1 }, after: { sum: 0.008, count: 2 } }]);
    expect(runner.log.filter((r) => r.argv.includes('curl')).every((r) => r.argv.slice(0, 3).join(' ') === 'docker exec w2')).toBe(true);
    const ebpf = setup('none');
    const i = await ebpf.svc.install(ebpf.sets.setFor(INITIAL_SERVICE_STATE));
    expect(i.state.agentMetric).toMatch(/^not read: cilium replaces kube-proxy/);
    const c = await ebpf.svc.setServices(ebpf.sets.setFor({ endpoint: false, added: false }));
    expect(ebpf.readings).toEqual([]);
    expect(c.k8s!.cniMetricNote).toMatch(/^not read: cilium replaces kube-proxy/);
  });
});
