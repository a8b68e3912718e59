import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runConfigSchema, type RunConfigInput } from '../../config/schema.js';
import { FakeRunner } from '../../exec/runner.js';
import { executeRun } from '../../run/run.js';
import { fakeCluster, planText, PlanRunner } from '../k8s/test-support/cluster.js';
import { parse, parseAllDocuments } from 'yaml';
import { PROFILED_CNIS, type KindCni } from '../k8s/cni.js';
import { validateManifests } from '../k8s/validate.js';
import { KindBackend, controlPlaneAddressFrom, deleteKindCluster, ensurePrivateDir, felixIptablesFlavour, findKindLeftovers, kindProvider, planBrNetfilter, planCniPluginsFetch, verifySha256File } from './backend.js';
import { loadVersions } from '../k8s/versions.js';
import { benchmarkWorkload } from '../../workload/benchmark.js';
import { StepGuard } from '../k8s/errors.js';
import { KindCluster } from './provider.js';

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

const KC_DIR = '/run/user/0/cni-bench-abcde';
const KC = `${KC_DIR}/kubeconfig`;

function backend(o: { cni?: KindCni; runner: FakeRunner | PlanRunner; cleanup?: FakeRunner | PlanRunner; outDir: string; signal?: AbortSignal; placement?: 'cross-node' | 'same-node'; policies?: number; engine?: string }) {
  const cfg = config({ cni: o.cni ?? 'cilium', out: o.outDir, placement: o.placement ?? 'cross-node', policies: o.policies ?? 3, dryRun: o.runner instanceof PlanRunner });
  const b = new KindBackend({
    config: cfg,
    runId: RUN_ID,
    runner: o.runner,
    cleanupRunner: o.cleanup ?? o.runner,
    outDir: join(o.outDir, RUN_ID),
    cacheDir: '/var/cache/cni-bench-test',
    kubeconfigDir: o.runner instanceof PlanRunner ? KC_DIR : join(o.outDir, `kc-${RUN_ID}`),
    signal: o.signal,
    probeIntervalMs: 0,
    enforcementTimeoutMs: 50,
    engine: o.engine,
  });
  return { b, cfg };
}

/** Where `rest` differs from `reference`: the lines between their common start and common end, as - and +. */
function differingLines(reference: string, rest: string): string {
  const a = reference.split('\n');
  const b = rest.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  return [...a.slice(start, a.length - end).map((l) => `- ${l}`), ...b.slice(start, b.length - end).map((l) => `+ ${l}`)].join('\n');
}

/** The plan of a complete dry run; the CNI's part (kind config, install, readiness) ends where CoreDNS is awaited. */
async function dryRunPlan(cni: KindCni) {
  const runner = new PlanRunner();
  const { b, cfg } = backend({ cni, runner, outDir: '/results' });
  const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: '/results/abcde' });
  const text = planText(runner.specs);
  const cut = text.indexOf('# wait for CoreDNS');
  return { runner, result, cniPart: text.slice(0, cut), rest: text.slice(cut) };
}

/** The backend's data plane brought up with the benchmark workload, as bench run does. */
const up = ({ b, cfg }: ReturnType<typeof backend>) => b.up(benchmarkWorkload(cfg, b.target));

describe('kind backend: dry-run plan', () => {
  // The whole plan of several CNIs is in src/cli/__snapshots__/plans (run-kind-*.txt); here the snapshot is each
  // CNI's own part and where the rest of its plan differs from calico's (steps only some CNIs take).
  let reference: string;
  beforeAll(async () => {
    reference = (await dryRunPlan('calico')).rest;
  });
  for (const cni of PROFILED_CNIS) {
    it(`plans a complete ${cni} run (snapshot of its CNI part, and of the rest where it differs from calico's)`, async () => {
      const { runner, result, cniPart, rest } = await dryRunPlan(cni);
      expect(result.errors).toEqual([]);
      const argv = runner.specs.map((s) => s.argv);
      // Own kubeconfig on every kubectl/helm/kind call; never the user's, and never inside the results directory.
      for (const a of argv.filter((x) => ['kubectl', 'helm'].includes(x[0]!))) expect(a).toContain(KC);
      expect(argv.flat().some((x) => x.startsWith('/results/abcde/kubeconfig'))).toBe(false);
      expect(argv.find((a) => a[1] === 'create' && a[2] === 'cluster')).toEqual(['kind', 'create', 'cluster', '--name', 'cb-abcde', '--config', '-', '--kubeconfig', KC, '--wait', '0s']);
      expect(argv.at(-1)).toEqual(['kind', 'delete', 'cluster', '--name', 'cb-abcde', '--kubeconfig', KC]);
      // Every manifest in the plan is one the schemas accept (kind config, Calico Installation, ConfigMap, workloads, policies).
      for (const s of runner.specs.filter((x) => x.input && x.argv.includes('-f'))) {
        const docs = s.input!.trimStart().startsWith('{') ? (JSON.parse(s.input!) as { items: object[] }).items : parseAllDocuments(s.input!).map((d) => d.toJSON() as object);
        expect(() => validateManifests(docs)).not.toThrow();
      }
      expect(`${cniPart}--- the rest of the plan, where it differs from calico's:\n${differingLines(reference, rest)}\n`).toMatchSnapshot();
    });
  }

  it('flannel: br_netfilter is loaded and the bridge plugin mounted (extraMounts, no docker cp) before its manifest', async () => {
    const f = new PlanRunner();
    await up(backend({ cni: 'flannel', runner: f, outDir: '/results' }));
    const fa = f.specs.map((s) => s.argv.join(' '));
    expect(fa.some((a) => /^(docker|podman|nerdctl|finch) cp /.test(a))).toBe(false);
    const config = parse(f.specs.find((s) => s.argv[1] === 'create' && s.argv[2] === 'cluster')!.input!) as { nodes: Array<{ extraMounts?: unknown[] }> };
    for (const n of config.nodes) {
      expect(n.extraMounts).toEqual([{ hostPath: '/var/cache/cni-bench-test/cni-plugins-v1.7.1-amd64/bridge', containerPath: '/opt/cni/bin/bridge', readOnly: true }]);
    }
    const modprobe = fa.indexOf('docker exec cb-abcde-control-plane modprobe br_netfilter');
    expect(modprobe).toBeGreaterThan(fa.findIndex((a) => a.startsWith('kind create cluster')));
    expect(fa[modprobe + 1]).toBe('docker exec cb-abcde-control-plane test -e /proc/sys/net/bridge/bridge-nf-call-iptables');
    expect(fa.findIndex((a) => a.includes('kube-flannel.yml'))).toBeGreaterThan(modprobe + 1);
  });

  it("canal does not load br_netfilter (canal.yaml's flannel v0.24.4 has no such check, its CNI chain no bridge); only flannel does", async () => {
    const c = new PlanRunner();
    await up(backend({ cni: 'canal', runner: c, outDir: '/results' }));
    const ca = c.specs.map((s) => s.argv.join(' '));
    const canal = ca.findIndex((a) => a.endsWith('manifests/canal.yaml'));
    expect(ca[canal]).toContain('create -f https://raw.githubusercontent.com/projectcalico/calico/v3.30.3/manifests/canal.yaml');
    expect(ca).toContain(`kubectl --kubeconfig ${KC} -n kube-system rollout status daemonset/canal --timeout=300s`);
    for (const cni of ['canal', 'calico', 'calico-ebpf', 'calico-nftables', 'cilium'] as const) {
      const r = new PlanRunner();
      await up(backend({ cni, runner: r, outDir: '/results' }));
      expect(r.specs.some((s) => s.argv.includes('modprobe') || s.argv.includes('/proc/sys/net/bridge/bridge-nf-call-iptables')), cni).toBe(false);
    }
  });

  it('pulls the load images once on the host, saves them with the engine and loads the archives before the CNI', async () => {
    const r = new PlanRunner();
    await up(backend({ runner: r, outDir: '/results' }));
    const a = r.specs.map((s) => s.argv.join(' '));
    const load = a.indexOf(`kind load image-archive ${KC_DIR}/images/image-0.tar ${KC_DIR}/images/image-1.tar --name cb-abcde`);
    expect(load).toBeGreaterThan(a.findIndex((x) => x.startsWith('kind create cluster')));
    expect(a.slice(load - 6, load)).toEqual([
      'docker image inspect --format {{.Id}} fortio/fortio:1.73.2',
      'docker pull --quiet fortio/fortio:1.73.2',
      'docker image inspect --format {{.Id}} busybox:1.37.0',
      'docker pull --quiet busybox:1.37.0',
      `docker save -o ${KC_DIR}/images/image-0.tar fortio/fortio:1.73.2`,
      `docker save -o ${KC_DIR}/images/image-1.tar busybox:1.37.0`,
    ]);
    // `kind load docker-image` runs `docker save` whatever the engine: never used.
    expect(a.some((x) => x.startsWith('kind load docker-image'))).toBe(false);
    expect(a.findIndex((x) => x.startsWith('helm install'))).toBeGreaterThan(load);
    // On a host that has them (the second point of a sweep), nothing is pulled.
    const runner = fakeCluster();
    const out = tmp();
    await up(backend({ runner, outDir: out }));
    expect(runner.log.some((r) => r.argv[1] === 'pull')).toBe(false);
    expect(runner.log.some((r) => r.argv.join(' ').startsWith('kind load image-archive'))).toBe(true);
    // The archives do not outlive the load.
    expect(existsSync(join(out, `kc-${RUN_ID}`, 'images'))).toBe(false);
  });

  it('with podman (or nerdctl) the images are saved by that engine, one archive each, and loaded with kind load image-archive', async () => {
    for (const engine of ['podman', 'nerdctl']) {
      const out = tmp();
      const runner = fakeCluster();
      const { b, cfg } = backend({ runner, outDir: out, engine, cni: 'calico' });
      const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
      expect(result.errors).toEqual([]);
      const a = runner.log.map((r) => r.argv.join(' '));
      const dir = join(out, `kc-${RUN_ID}`, 'images');
      expect(a).toContain(`${engine} save -o ${dir}/image-0.tar fortio/fortio:1.73.2`);
      expect(a).toContain(`${engine} save -o ${dir}/image-1.tar busybox:1.37.0`);
      expect(a).toContain(`kind load image-archive ${dir}/image-0.tar ${dir}/image-1.tar --name cb-abcde`);
      expect(a.some((x) => x.startsWith('docker ') || x.startsWith('kind load docker-image'))).toBe(false);
      // Node commands (Felix's iptables read, the cgroup CPU reads) go through the same engine.
      expect(runner.log.filter((r) => r.argv[1] === 'exec' && r.argv[2]!.startsWith('cb-abcde-')).every((r) => r.argv[0] === engine)).toBe(true);
    }
  });

  it('the kind provider is the one kind uses (KIND_EXPERIMENTAL_PROVIDER), not a hard-coded docker', () => {
    expect(kindProvider({})).toBe('docker');
    expect(kindProvider({ KIND_EXPERIMENTAL_PROVIDER: 'podman' })).toBe('podman');
    expect(kindProvider({ KIND_EXPERIMENTAL_PROVIDER: 'nerdctl.lima' })).toBe('nerdctl.lima');
    expect(kindProvider({ KIND_EXPERIMENTAL_PROVIDER: 'rm -rf /' })).toBe('docker');
    expect(planBrNetfilter('podman', 'n')[0]!.argv).toEqual(['podman', 'exec', 'n', 'modprobe', 'br_netfilter']);
  });

  it('calico installs its CRDs and operator with create; eBPF adds the API server endpoint and no kube-proxy; nftables has kube-proxy in nftables mode', async () => {
    const c = new PlanRunner();
    await up(backend({ cni: 'calico', runner: c, outDir: '/results' }));
    const crds = c.specs.find((s) => s.argv.some((x) => x.endsWith('operator-crds.yaml')))!;
    expect(crds.argv.slice(3, 5)).toEqual(['create', '-f']);
    const e = new PlanRunner();
    await up(backend({ cni: 'calico-ebpf', runner: e, outDir: '/results' }));
    const cluster = parse(e.specs.find((s) => s.argv[1] === 'create' && s.argv[2] === 'cluster')!.input!) as { networking: Record<string, unknown> };
    expect(cluster.networking).toMatchObject({ kubeProxyMode: 'none', podSubnet: '10.244.0.0/16' });
    const purposes = e.specs.map((s) => s.purpose ?? '');
    const cm = e.specs[purposes.findIndex((p) => p.startsWith('tell the operator'))]!;
    // The dry run cannot know the address: it says where it comes from, and it is never the node's name.
    expect(parse(cm.input!)).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kubernetes-services-endpoint', namespace: 'tigera-operator' },
      data: { KUBERNETES_SERVICE_HOST: '<InternalIP of cb-abcde-control-plane, looked up at run time>', KUBERNETES_SERVICE_PORT: '6443' },
    });
    const lookup = purposes.findIndex((p) => p.startsWith("look up cb-abcde-control-plane's InternalIP"));
    expect(e.specs[lookup]!.argv.slice(3)).toEqual(['get', 'node', 'cb-abcde-control-plane', '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}']);
    expect(lookup).toBeGreaterThan(purposes.indexOf('create the kind cluster'));
    expect(lookup).toBeLessThan(purposes.findIndex((p) => p.startsWith('tell the operator')));
    expect(purposes.indexOf('restart the operator so it reads the API server endpoint')).toBeGreaterThan(purposes.indexOf('install the tigera operator'));
    const inst = parse(e.specs.find((s) => s.purpose?.startsWith('create the calico Installation'))!.input!) as { spec: { calicoNetwork: { linuxDataplane: string } } };
    expect(inst.spec.calicoNetwork.linuxDataplane).toBe('BPF');
    // Ready means the operator has switched Felix to BPF, which it does only after calico-node rolled out.
    const argv = e.specs.map((s) => s.argv.slice(3).join(' '));
    const switched = argv.indexOf('wait --for=jsonpath={.spec.bpfEnabled}=true felixconfigurations.crd.projectcalico.org/default --timeout=300s');
    expect(switched).toBeGreaterThan(argv.indexOf('-n calico-system rollout status daemonset/calico-node --timeout=300s'));
    const n = new PlanRunner();
    await up(backend({ cni: 'calico-nftables', runner: n, outDir: '/results' }));
    expect((parse(n.specs.find((s) => s.argv[1] === 'create' && s.argv[2] === 'cluster')!.input!) as { networking: Record<string, unknown> }).networking.kubeProxyMode).toBe('nftables');
    expect(n.specs.find((s) => s.purpose?.startsWith('create the calico Installation'))!.input).toMatch(/linuxDataplane: Nftables/);
    expect(n.specs.some((s) => s.argv.includes('--for=jsonpath={.spec.nftablesMode}=Enabled'))).toBe(true);
    // Neither the iptables data plane nor the others look up the address.
    expect(c.specs.some((s) => s.argv.includes('node') && s.argv.includes('get'))).toBe(false);
  });

  it('calico-ebpf writes the InternalIP the cluster reports into the services endpoint (verify and enforce provision the same way)', async () => {
    const runner = fakeCluster((argv) => (argv.join(' ').includes('InternalIP') ? { stdout: 'fc00:f853:ccd:e793::3 172.18.0.4' } : undefined));
    await up(backend({ cni: 'calico-ebpf', runner, outDir: tmp() }));
    const cm = runner.log.find((r) => r.purpose?.startsWith('tell the operator'))!;
    expect((parse(cm.input!) as { data: Record<string, string> }).data).toEqual({ KUBERNETES_SERVICE_HOST: '172.18.0.4', KUBERNETES_SERVICE_PORT: '6443' });
    // No address: the install stops there, before any ConfigMap naming something unusable.
    const none = fakeCluster((argv) => (argv.join(' ').includes('InternalIP') ? { stdout: '' } : undefined));
    const out = tmp();
    const { b, cfg } = backend({ cni: 'calico-ebpf', runner: none, outDir: out });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(result.errors[0]!.message).toMatch(/^step install-cni failed: node cb-abcde-control-plane reports no InternalIP/);
    expect(none.log.some((r) => r.purpose?.startsWith('tell the operator'))).toBe(false);
    // bench verify provisions through the same provider (src/backends/factory.ts), with its agnhost image.
    const v = new FakeRunner((argv) => (argv.join(' ').includes('InternalIP') ? { stdout: '172.18.0.5' } : undefined));
    const verifyCluster = new KindCluster({ cni: 'calico-ebpf', runId: RUN_ID, runner: v, cleanupRunner: v, versions: loadVersions(), outDir: join(tmp(), RUN_ID), kubeconfigDir: join(tmp(), 'kc'), policyMapCapacity: 16384, preloadImages: [loadVersions().verify.agnhostImage], engine: 'podman' });
    await verifyCluster.provision(new StepGuard(async () => undefined));
    expect((parse(v.log.find((r) => r.purpose?.startsWith('tell the operator'))!.input!) as { data: Record<string, string> }).data.KUBERNETES_SERVICE_HOST).toBe('172.18.0.5');
    expect(v.log.some((r) => r.argv.slice(0, 3).join(' ') === 'kind load image-archive')).toBe(true);
    expect(controlPlaneAddressFrom('172.18.0.2\n', 'n')).toBe('172.18.0.2');
    expect(controlPlaneAddressFrom('fc00::2', 'n')).toBe('fc00::2');
    expect(() => controlPlaneAddressFrom('cb-x-control-plane', 'n')).toThrow(/reports no InternalIP/);
  });

  it('records which iptables flavour Felix chose (calico, canal), as local results do', async () => {
    for (const cni of ['calico', 'canal'] as const) {
      const out = tmp();
      const runner = fakeCluster();
      const { b, cfg } = backend({ cni, runner, outDir: out });
      const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
      expect(result.errors).toEqual([]);
      expect(result.modelState).toMatchObject({ iptablesBackend: 'nft', iptablesBackendSource: expect.stringMatching(/^detected by Felix; 2 cali- chains in iptables-nft, 0 in iptables-legacy \(filter table of cb-abcde-worker/) });
      // Measurement figures still land in the same modelState.
      expect(result.modelState).toMatchObject({ crrSamplesSource: 'access-log' });
    }
    const out = tmp();
    const cilium = fakeCluster();
    const { b, cfg } = backend({ runner: cilium, outDir: out });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: join(out, RUN_ID) });
    expect(result.modelState.iptablesBackend).toBeUndefined();
    expect(cilium.log.some((r) => r.argv.some((x) => x.startsWith('iptables-')))).toBe(false);
    expect(felixIptablesFlavour('', ':cali-INPUT - [0:0]\n', 'cali-', 'w').iptablesBackend).toBe('legacy');
    expect(felixIptablesFlavour('', '', 'cali-', 'w')).toMatchObject({ iptablesBackend: 'unknown' });
  });

  it('runs up to 300 filler peers, spread over both workers even with same-node placement, with the kubelet room for them', async () => {
    const runner = new PlanRunner();
    const { b, cfg } = backend({ runner, outDir: '/results', placement: 'same-node', policies: 1000 });
    const { result } = await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: '/results/abcde' });
    expect(result.errors).toEqual([]);
    const kindConfig = parse(runner.specs.find((s) => s.argv[1] === 'create' && s.argv[2] === 'cluster')!.input!) as { kubeadmConfigPatches: string[] };
    expect(kindConfig.kubeadmConfigPatches.map((x) => parse(x))).toEqual([{ kind: 'KubeletConfiguration', maxPods: 250 }]);
    const creates = runner.specs.filter((s) => s.purpose?.startsWith('create filler peer pods '));
    expect(creates.map((s) => s.purpose)).toEqual(Array.from({ length: 15 }, (_, i) => `create filler peer pods ${i + 1}/15 (20)`));
    const peers = creates.flatMap((c) => parseAllDocuments(c.input!).map((d) => d.toJSON()));
    expect(peers).toHaveLength(300);
    const perNode = new Map<string, number>();
    for (const p of peers) {
      const node = p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0] as string;
      perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    expect(Object.fromEntries(perNode)).toEqual({ 'cb-abcde-worker': 150, 'cb-abcde-worker2': 150 });
    expect(result.modelState).toMatchObject({ fillerPeersRunning: 300, fillerPeersNamed: 1000, fillerPeersCap: 300, fillerPeersPresent: true });
    expect(result.meta.model.description).toMatch(/at most 300 of the filler policies' peers run as pods/);
  });

  it('same-node placement puts server and client on one worker', async () => {
    const r = new PlanRunner();
    await up(backend({ runner: r, outDir: '/results', placement: 'same-node' }));
    const workloads = parseAllDocuments(r.specs.find((s) => s.purpose === 'create the server deployment and client pods')!.input!).map((d) => d.toJSON());
    // Pinned by node name (matchFields metadata.name), not by the kubernetes.io/hostname label, which can differ.
    const pins = workloads.map((w) => {
      const spec = w.kind === 'Deployment' ? w.spec.template.spec : w.spec;
      expect(spec.nodeSelector).toBeUndefined();
      return spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0];
    });
    expect(pins).toEqual(Array.from({ length: 3 }, () => ({ key: 'metadata.name', operator: 'In', values: ['cb-abcde-worker'] })));
  });

  it('applies 5000 policies in batches of 100, then the client policy alone, last (whatever the match position)', async () => {
    for (const matchPosition of ['first', 'last'] as const) {
      const r = new PlanRunner();
      const cfg = config({ cni: 'cilium', out: '/results', policies: 5000, matchPosition, dryRun: true });
      const b = new KindBackend({ config: cfg, runId: RUN_ID, runner: r, cleanupRunner: r, outDir: '/results/abcde', kubeconfigDir: KC_DIR, cacheDir: '/c' });
      await executeRun({ runId: RUN_ID, config: cfg, backend: b, outDir: '/results/abcde' });
      const applies = r.specs.filter((s) => s.argv.includes('--server-side'));
      expect(applies).toHaveLength(51);
      expect(applies[0]!.argv.slice(3)).toEqual(['apply', '--server-side', '--field-manager=cni-bench', '-f', '-']);
      const items = applies.map((s) => (JSON.parse(s.input!) as { items: Array<{ metadata: { labels: Record<string, string> } }> }).items);
      expect(items.reduce((a, b) => a + b.length, 0)).toBe(5001);
      expect(items.at(-1)!.map((p) => p.metadata.labels['cni-bench/role'])).toEqual(['allow-client']);
      expect(items.slice(0, -1).flat().every((p) => p.metadata.labels['cni-bench/role'] === 'filler')).toBe(true);
    }
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
    // rr: the call that opened the connection is dropped; the first sample is a request on the kept connection.
    expect(result.metrics.rr!.samplesNs[0]).toBe(211_000);
    expect(result.metrics.rr!.samplesNs).toHaveLength(10);
    expect(result.modelState).toMatchObject({ rrHandshakeCallsDropped: 1 });
    expect(runner.log.filter((r) => r.argv.includes('-access-log-file') && !r.argv.includes('-keepalive=false')).map((r) => r.argv.slice(r.argv.lastIndexOf('-n'), r.argv.lastIndexOf('-n') + 4).join(' '))).toEqual(['-n 3 -c 1', '-n 13 -c 1']);
    expect(result.metrics.connect!.samplesNs).toHaveLength(12);
    expect(result.metrics.crr!.cpu!.totalUsPerOp).toBeGreaterThan(0);
    // Per-container CPU from cgroup v2 in the node containers (not stale cAdvisor): the scripted counters grow 1000
    // µs (client) and 500 µs (server) per step, so the split must come out 2:1.
    const cpu = result.metrics.crr!.cpu!;
    expect(cpu.probeClientUsPerOp).toBeGreaterThan(0);
    expect(cpu.probeServerUsPerOp! / cpu.probeClientUsPerOp).toBeCloseTo(0.5, 6);
    expect(result.modelState).toMatchObject({ crrCpuSplitSource: 'cgroup v2 cpu.stat in the kind nodes' });
    const reads = runner.log.filter((r) => r.argv[1] === 'exec' && r.argv[3] === 'sh');
    expect(reads[0]!.argv.slice(0, 5)).toEqual(['docker', 'exec', 'cb-abcde-worker', 'sh', '-c']);
    // The ids of the measured containers only (fortio, the CNI agent), never other pods'.
    // fortio and the probe container of the client pod, the server's fortio, the CNI agent.
    expect(reads[0]!.argv.slice(7).map((x) => x[0])).toEqual(['a', 'e', 'b', 'c']);
    expect(result.modelState).toMatchObject({ policiesApplied: 4, deniedConnectionBlocked: true, allowedConnectionWorks: true, crrSamplesSource: 'access-log', connectSamplesSource: 'cb-probe', fillerPeersRunning: 3, fillerPeersNamed: 3 });
    // connect: the probe container's CPU is the client's (scripted 2000 µs per step against the server's 500).
    const ccpu = result.metrics.connect!.cpu!;
    expect(ccpu.probeServerUsPerOp! / ccpu.probeClientUsPerOp).toBeCloseTo(0.25, 6);
    // The probe is copied in and checked before the peers are created, and the peers before the first policy.
    const seq = runner.log.map((r) => r.argv.join(' '));
    const cp = seq.findIndex((a) => a.includes(' cp ') && a.endsWith(':/probe/cb-probe -c probe'));
    const peers = seq.findIndex((a) => a.includes('pod -l cni-bench/role=peer'));
    expect(cp).toBeGreaterThan(0);
    expect(peers).toBeGreaterThan(cp);
    expect(peers).toBeLessThan(seq.findIndex((a) => a.includes('--server-side')));
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
    expect(a.at(-1)).toBe(`kind delete cluster --name cb-abcde --kubeconfig ${join(out, `kc-${RUN_ID}`, 'kubeconfig')}`);
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
    const b = new KindBackend({ config: cfg, runId: RUN_ID, runner, cleanupRunner: runner, outDir: join(out, RUN_ID), kubeconfigDir: join(out, 'kc'), probeIntervalMs: 0 });
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
    expect(cleanup.log.at(-1)!.argv.join(' ')).toBe(`kind delete cluster --name cb-abcde --kubeconfig ${join(out, `kc-${RUN_ID}`, 'kubeconfig')}`);
    expect(runner.log.some((r) => r.argv.join(' ').includes('rollout status'))).toBe(false);
    await b.down();
    expect(cleanup.log.filter((r) => r.argv[1] === 'delete')).toHaveLength(1);
  });
});

describe('kind kubeconfig directory', () => {
  it('is created private, and a directory others can read is refused', async () => {
    const { chmodSync, statSync, mkdirSync: mk } = await import('node:fs');
    const d = join(tmp(), 'kc');
    ensurePrivateDir(d);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    const open = join(tmp(), 'open');
    mk(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    expect(() => ensurePrivateDir(open)).toThrow(/not a private directory/);
    // A person fixes it (exit 2 with the fix), not a bug report.
    expect(() => ensurePrivateDir(open)).toThrow(expect.objectContaining({ kind: 'usage' }));
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
