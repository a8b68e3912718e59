import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runConfigSchema, type RunConfigInput } from '../../config/schema.js';
import { FakeRunner, type FakeHandler } from '../../exec/runner.js';
import { executeRun } from '../../run/run.js';
import { ClusterBackend } from '../cluster/backend.js';
import { restrictedProblems, runNames } from './manifests.js';
import { renderBackends } from './service-backends.js';
import { loadVersions } from './versions.js';
import { k8sServiceSet, serviceApplyOrder } from './services.js';
import { kubeProxyModeFromConfig, kubeProxyState, kubeServicesPosition, metricValue, serviceIpsElements } from './service-state.js';
import { fakeCluster } from './test-support/cluster.js';
import { ManifestError, validateManifests } from './validate.js';
import { serviceManifests } from '../../services/manifests.js';

const RUN_ID = 'abcde';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const out = () => {
  const d = mkdtempSync(join(tmpdir(), 'cb-k8s-svc-test-'));
  dirs.push(d);
  return d;
};
const config = (o: Partial<RunConfigInput> = {}) => runConfigSchema.parse({ cni: 'cilium', policies: 2, backend: 'cluster', samples: 12, warmup: 2, context: 'prod-eu', services: 3, ...o });

/** The API server's answer to `get services …`: a ClusterIP per name asked for. */
const servicesAnswer: FakeHandler = (argv) => {
  const i = argv.indexOf('services');
  if (argv.includes('get') && i > 0) {
    const names = argv.slice(i + 1, argv.indexOf('-o'));
    return { stdout: JSON.stringify({ items: names.map((n, k) => ({ metadata: { name: n }, spec: { clusterIP: `10.96.7.${k + 1}` } })) }) };
  }
  return undefined;
};
const configMap = (r: { stdout?: string; stderr?: string; exitCode?: number }): FakeHandler => (argv) => (argv.join(' ').includes('get configmap kube-proxy') ? r : undefined);
const both = (...hs: FakeHandler[]): FakeHandler => (argv, spec) => hs.map((h) => h(argv, spec)).find((r) => r !== undefined);
const NOT_FOUND = { exitCode: 1, stderr: 'Error from server (NotFound): configmaps "kube-proxy" not found' };
/** No kube-proxy on the cluster: neither its DaemonSet nor its ConfigMap. */
const noKubeProxy: FakeHandler = (argv) => {
  const a = argv.join(' ');
  return a.includes('get daemonset kube-proxy') ? { exitCode: 1, stderr: 'Error from server (NotFound): daemonsets.apps "kube-proxy" not found' } : a.includes('get configmap kube-proxy') ? NOT_FOUND : undefined;
};

async function run(cfg: ReturnType<typeof config>, handler: FakeHandler) {
  const d = out();
  const runner = fakeCluster(handler);
  const b = new ClusterBackend({ config: { ...cfg, out: d }, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(d, RUN_ID), probeIntervalMs: 0 });
  const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(d, RUN_ID) });
  return { result, cmds: runner.log.map((r) => r.argv.join(' ')), runner };
}

describe('Services on a cluster (--services)', () => {
  it('applies the Services server-side in the run namespace, waits on the last one, and measures through the ClusterIP', async () => {
    const { result, cmds, runner } = await run(config(), both(servicesAnswer, noKubeProxy));
    expect(result.errors).toEqual([]);
    expect(result.services).toMatchObject({ count: 3, endpointsPerService: 1, position: 'last', dataPlane: 'cilium-socket-lb', lookup: 'bpf-map', clusterIP: '10.96.7.1', port: 80 });
    expect(result.services!.state).toMatchObject({ kubeProxyMode: 'none', applyBatches: 2 });
    expect(String(result.services!.state.stateRead)).toMatch(/^not read/);
    const applies = runner.log.filter((r) => r.argv.includes('apply') && r.input?.includes('"kind":"Service"'));
    expect(applies.map((r) => r.argv.slice(3))).toEqual([
      ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'],
      ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'],
    ]);
    // Fillers (with their EndpointSlices at the server pod) first, the server's selector Service alone last.
    const last = JSON.parse(applies[1]!.input!) as { items: Array<{ metadata: { name: string; namespace: string }; spec: { selector?: object } }> };
    expect(last.items).toHaveLength(1);
    expect(last.items[0]).toMatchObject({ metadata: { name: 'bench-server', namespace: 'cb-abcde-server' }, spec: { selector: { app: 'bench-server' } } });
    const fillers = JSON.parse(applies[0]!.input!) as { items: Array<{ kind: string; endpoints?: Array<{ addresses: string[] }> }> };
    expect(fillers.items.filter((i) => i.kind === 'EndpointSlice').flatMap((i) => i.endpoints!.flatMap((e) => e.addresses))).toEqual(['10.244.1.5', '10.244.1.5', '10.244.1.5']);
    // The probe and the load go to the ClusterIP's port 80, not the pod.
    expect(cmds.some((c) => c.includes("fortio load -n 2 -c 1 -qps -1 -timeout 1s -json - http://10.96.7.1:80/"))).toBe(true);
    expect(cmds.filter((c) => c.includes('/probe/cb-probe client ')).every((c) => c.includes('--target 10.96.7.1 --port 80 '))).toBe(true);
    expect(cmds.filter((c) => /fortio load -n \d{3,}/.test(c)).every((c) => c.endsWith('http://10.96.7.1:80/'))).toBe(true);
  });

  it('batches many Services like the policies (100 objects per server-side apply)', async () => {
    const { result, runner } = await run(config({ services: 120 }), both(servicesAnswer, configMap({ stdout: 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ""\n' })));
    expect(result.errors).toEqual([]);
    const sizes = runner.log.filter((r) => r.argv.includes('apply') && r.input?.includes('"kind":"Service"')).map((r) => (JSON.parse(r.input!) as { items: unknown[] }).items.length);
    expect(sizes.slice(0, 3).sort()).toEqual([100, 100, 40]);
    expect(sizes[3]).toBe(1);
    expect(result.services!.state).toMatchObject({ kubeProxyMode: 'iptables', applyBatches: 4 });
    expect(result.services!.dataPlane).toBe('kube-proxy-iptables');
  });

  it('names kube-proxy where it runs beside a CNI that could replace it (Cilium without kubeProxyReplacement)', async () => {
    const { result } = await run(config({ services: 1 }), both(servicesAnswer, configMap({ stdout: 'mode: iptables\n' })));
    expect(result.errors).toEqual([]);
    expect(result.services).toMatchObject({ dataPlane: 'kube-proxy-iptables', lookup: 'rule-walk' });
    expect(result.services!.state).toMatchObject({ kubeProxyMode: 'iptables', stateRead: expect.stringMatching(/no node access/) });
  });

  it('a failed apply batch stops the run with the step named, and the namespaces are still removed', async () => {
    const failing: FakeHandler = (argv, spec) => (argv.includes('apply') && spec.input?.includes('"kind":"EndpointSlice"') ? { exitCode: 1, stderr: 'Error from server (Forbidden): endpointslices.discovery.k8s.io is forbidden' } : undefined);
    const { result, cmds } = await run(config(), both(failing, servicesAnswer, noKubeProxy));
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.message).toMatch(/^step apply-services failed: .*endpointslices.discovery.k8s.io is forbidden/s);
    expect(cmds.some((c) => c.includes('/probe/cb-probe client '))).toBe(false);
    expect(cmds.at(-1)).toMatch(/delete namespace -l cni-bench\/run=abcde/);
  });

  it("refuses --kube-proxy that differs from the cluster's mode, before applying any Service", async () => {
    const calico = (argv: string[]) => (argv.join(' ').includes('get daemonsets') ? { stdout: JSON.stringify({ items: [{ metadata: { namespace: 'kube-system', name: 'calico-node' }, spec: { template: { metadata: { labels: { 'k8s-app': 'calico-node' } }, spec: { containers: [{ name: 'calico-node', image: 'x' }] } } } }] }) } : undefined);
    const r = await run(config({ cni: 'calico', kubeProxy: 'iptables' }), both(calico, servicesAnswer, configMap({ stdout: 'mode: nftables\n' })));
    expect(r.result.errors[0]!.message).toMatch(/--kube-proxy iptables: this cluster's kube-proxy is in nftables mode \(ConfigMap kube-system\/kube-proxy config.conf mode: nftables\); bench cannot change an existing cluster's kube-proxy/);
    expect(r.result.errors[0]!.kind).toBe('usage');
    expect(r.cmds.some((c) => c.includes('apply') && c.includes('Service'))).toBe(false);
    expect(r.cmds.at(-1)).toMatch(/delete namespace -l cni-bench\/run=abcde/);
  });
});

describe('--endpoints-per-service E on a cluster: E real server pods', () => {
  /** The backends' pods as the API server lists them once their rollout is done; `ready` of them Ready. */
  const backendsAnswer = (ready: number, total = ready): FakeHandler => (argv) =>
    argv.join(' ').includes('get pods -l app=bench-server,cni-bench/role=service-backend')
      ? { stdout: JSON.stringify({ items: Array.from({ length: total }, (_, i) => ({ metadata: { name: `bench-backends-x-${i}` }, status: { podIP: `10.244.1.${20 + i}`, conditions: [{ type: 'Ready', status: i < ready ? 'True' : 'False' }] } })) }) }
      : undefined;

  it('starts E−1 backends beside the server, after they are Ready lists the E addresses in every filler slice, and records it', async () => {
    const { result, runner } = await run(config({ endpointsPerService: 3 }), both(backendsAnswer(2), servicesAnswer, noKubeProxy));
    expect(result.errors).toEqual([]);
    expect(result.services).toMatchObject({ endpointsPerService: 3, state: { endpoints: expect.stringMatching(/3 endpoints are the server pod 10\.244\.1\.5 and the 2 pods of Deployment bench-backends/) } });
    const create = runner.log.find((r) => r.purpose?.startsWith('create 2 more server pods'))!;
    expect(create.input).toMatch(/replicas: 2/);
    const order = runner.log.map((r) => r.purpose ?? '');
    expect(order.indexOf('wait until the 2 backends are Ready')).toBeLessThan(order.findIndex((p) => p.startsWith('apply filler Services')));
    const slices = runner.log.filter((r) => r.argv.includes('apply') && r.input?.includes('"EndpointSlice"')).flatMap((r) => (JSON.parse(r.input!) as { items: Array<{ kind: string; endpoints?: Array<{ addresses: string[] }> }> }).items.filter((i) => i.kind === 'EndpointSlice'));
    expect(slices).toHaveLength(3);
    for (const sl of slices) expect(sl.endpoints!.flatMap((e) => e.addresses)).toEqual(['10.244.1.5', '10.244.1.20', '10.244.1.21']);
  });

  it('a backend that never becomes Ready: a clear error naming the Deployment and the fix, and the namespaces are still removed', async () => {
    const { result, cmds } = await run(config({ endpointsPerService: 3 }), both(backendsAnswer(1, 2), servicesAnswer, noKubeProxy));
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.message).toMatch(/step apply-services failed: 1 of the 2 backends of Deployment cb-abcde-server\/bench-backends are Ready .*describe deployment bench-backends.*smaller --endpoints-per-service/);
    expect(cmds.some((c) => c.includes('apply') && c.includes('Service'))).toBe(false);
    expect(cmds.at(-1)).toMatch(/delete namespace -l cni-bench\/run=abcde/);
  });

  it('the backends Deployment validates, runs restricted, carries the run label and the server label under its own selector', () => {
    const n = runNames(RUN_ID);
    const d = renderBackends(n, { serverNode: 'w2', clientNode: 'w1' }, loadVersions(), 31) as unknown as { metadata: { labels: Record<string, string> }; spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> & { containers: unknown[] } } } };
    expect(() => validateManifests([d as never])).not.toThrow();
    expect(restrictedProblems(d.spec.template.spec)).toEqual([]);
    expect(d.spec.replicas).toBe(31);
    expect(d.spec.template.metadata.labels).toMatchObject({ app: 'bench-server', 'cni-bench/run': RUN_ID, 'cni-bench/role': 'service-backend' });
    expect(d.spec.selector.matchLabels).toEqual({ app: 'bench-server', 'cni-bench/role': 'service-backend' });
    expect(d.spec.template.spec.containers).toHaveLength(1);
  });
});

describe('Service set and manifests on kind/cluster', () => {
  const names = runNames(RUN_ID);
  it('every Service and EndpointSlice validates; a broken one does not', () => {
    const set = k8sServiceSet({ services: 50, servicePosition: 'first', seed: 1 }, names, '10.244.1.5');
    const objs = set.services.flatMap((s) => serviceManifests(s, { labels: names.runLabel, assignedByApiServer: true }));
    expect(objs).toHaveLength(101);
    expect(() => validateManifests(objs)).not.toThrow();
    expect(objs.every((o) => !('clusterIP' in ((o as { spec?: object }).spec ?? {})))).toBe(true);
    const broken = { ...objs[1]!, spec: { type: 'ClusterIP', ports: [{ protocol: 'TCP', port: 'eighty' }] } };
    expect(() => validateManifests([broken])).toThrow(ManifestError);
  });

  it('position first applies the server Service alone first and ends with a filler as the barrier', () => {
    const set = k8sServiceSet({ services: 4, servicePosition: 'first', seed: 1 }, names, '10.244.1.5');
    const o = serviceApplyOrder(set);
    expect(o.head.map((s) => s.name)).toEqual(['bench-server']);
    expect(o.body.map((s) => s.name)).toEqual(['svc-1', 'svc-2', 'svc-3']);
    expect(o.barrier.name).toBe('svc-4');
    const last = serviceApplyOrder(k8sServiceSet({ services: 0, servicePosition: 'last', seed: 1 }, names, '10.244.1.5'));
    expect([last.head, last.body, last.barrier.name]).toEqual([[], [], 'bench-server']);
  });
});

describe("reading kube-proxy's mode and state", () => {
  it("takes the mode from config.conf, an empty one as kube-proxy's Linux default", () => {
    expect(kubeProxyModeFromConfig('kind: KubeProxyConfiguration\nmode: ""\n').mode).toBe('iptables');
    expect(kubeProxyModeFromConfig('kind: KubeProxyConfiguration\nmode: nftables\n').mode).toBe('nftables');
    expect(kubeProxyModeFromConfig('kind: KubeProxyConfiguration\nmode: ipvs\n').mode).toBe('ipvs');
    expect(kubeProxyModeFromConfig('').mode).toBe('unknown');
  });

  it('reads the iptables rule totals and the measured ClusterIP position on the client node (kind)', async () => {
    const metrics = [
      '# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge',
      'kubeproxy_sync_proxy_rules_iptables_total{table="filter"} 7',
      'kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 3021',
      'kubeproxy_sync_proxy_rules_duration_seconds_sum 1.5',
      'kubeproxy_sync_proxy_rules_duration_seconds_count 30',
    ].join('\n');
    const save = ['*nat', '-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -j KUBE-SVC-A', '-A KUBE-SERVICES -d 10.96.7.1/32 -p tcp -m comment --comment "cb-abcde-server/bench-server cluster IP" -j KUBE-SVC-B', '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS', 'COMMIT'].join('\n');
    expect(metricValue(metrics, 'kubeproxy_sync_proxy_rules_iptables_total', '{table="nat"}')).toBe(3021);
    expect(kubeServicesPosition(save, '10.96.7.1')).toEqual({ rules: 3, position: 2 });
    const runner = new FakeRunner((argv) => (argv.includes('curl') ? { stdout: metrics } : argv.includes('iptables-save') ? { stdout: save } : undefined));
    const s = await kubeProxyState(runner, { mode: 'iptables', source: 'x' }, '10.96.7.1', { provider: 'docker', node: 'cb-abcde-worker2' });
    expect(s).toMatchObject({ kubeProxyNatRules: 3021, kubeProxyFilterRules: 7, kubeProxySyncs: 30, kubeProxyMeanSyncMs: 50, kubeServicesRules: 3, kubeServicesPosition: 2 });
    expect(runner.log.map((r) => r.argv.slice(0, 3))).toEqual([
      ['docker', 'exec', 'cb-abcde-worker2'],
      ['docker', 'exec', 'cb-abcde-worker2'],
    ]);
  });

  it('counts the service-ips map in nftables mode (which exports no rule count), and says what it could not read', async () => {
    const map = 'table ip kube-proxy {\n\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = { 10.96.0.1 . tcp . 443 : goto service-2QRHZV4L-default/kubernetes/tcp/https,\n\t\t\t     10.96.7.1 . tcp . 80 : goto service-X-cb-abcde-server/bench-server/tcp/ }\n\t}\n}\n';
    expect(serviceIpsElements(map)).toBe(2);
    const runner = new FakeRunner((argv) => (argv.includes('nft') ? { stdout: map } : { exitCode: 7 }));
    const s = await kubeProxyState(runner, { mode: 'nftables', source: 'x' }, '10.96.7.1', { provider: 'docker', node: 'n' });
    expect(s).toMatchObject({ serviceIpsElements: 2, kubeProxyMetrics: expect.stringMatching(/^not read/) });
    expect(await kubeProxyState(runner, { mode: 'nftables', source: 'x' }, '10.96.7.1')).toEqual({ stateRead: expect.stringMatching(/^not read: .*no node access/) });
  });
});
