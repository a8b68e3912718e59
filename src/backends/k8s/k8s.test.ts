import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../../config/schema.js';
import { benchmarkPolicySet } from '../../workload/benchmark.js';
import { CNI_PROFILES, PROFILED_CNIS, planCniInstall, planCniReady } from './cni.js';
import { NO_FELIX_CONFIGURATION, detectCnis as detectWithFelix, detectionRefusal, type FelixRead } from './detect.js';
import { cadvisorSpanMs, containerSeconds, cpuWindow, parseCadvisorCpu, rootSeconds } from './cpu.js';
import { FortioOutputError, errorsFromRetCodes, histogramResolutionUs, removeFailedDials, fortioLoadArgs, parseAccessLog, parseFortioLoad, samplesFromHistogram } from './fortio.js';
import { APPLY_CONCURRENCY, PEER_POD_CAP, PROBE_CONTAINER, renderPeerPods, selectPeers, ENCAPSULATION, pinToNode, restrictedProblems, renderCalicoInstallation, renderCiliumValues, renderKindConfig, renderNamespaces, renderWorkloads, runNames } from './manifests.js';
import { ManifestError, manifestProblems, validateManifests } from './validate.js';
import { CLUSTERS_DIR, loadVersions, parseVersions } from './versions.js';
import { toYaml } from './yaml.js';
import { cadvisorText, daemonSet, daemonSetList, fakeCluster } from './test-support/cluster.js';
import { K8sSession } from './session.js';
import { cadvisorSplitValid } from './measure.js';
import { mapBounded } from './pool.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';

const fixture = (n: string) => readFileSync(new URL(`./fixtures/${n}`, import.meta.url), 'utf8');
const v = loadVersions();

describe('pinned versions', () => {
  it('clusters/versions.yaml validates and names a source for every component', () => {
    for (const k of ['kind', 'flannel', 'calico', 'cilium', 'load'] as const) expect(v[k].source).toMatch(/^https:\/\//);
  });
  it('a malformed versions file is rejected with the key at fault', () => {
    const text = readFileSync(join(CLUSTERS_DIR, 'versions.yaml'), 'utf8').replace(/@sha256:[0-9a-f]{64}/, '');
    expect(() => parseVersions(text, 'v.yaml')).toThrow(/v\.yaml: kind\.nodeImage: must be kindest\/node/);
  });
});

describe('cluster backend RBAC (clusters/rbac-cluster-backend.yaml)', () => {
  it('is two valid ClusterRoles, nodes/proxy only in the optional one', () => {
    const docs = parseAllDocuments(readFileSync(join(CLUSTERS_DIR, 'rbac-cluster-backend.yaml'), 'utf8')).map((d) => d.toJSON() as { metadata: { name: string }; rules: Array<{ resources: string[]; verbs: string[] }> });
    for (const d of docs) expect(() => new ClusterRole(d as never).validate()).not.toThrow();
    expect(docs.map((d) => d.metadata.name)).toEqual(['cni-bench', 'cni-bench-node-metrics']);
    const base = docs[0]!.rules.flatMap((r) => r.resources);
    expect(base).not.toContain('nodes/proxy');
    // What the plans use: exec for probes, SSA (patch) for policies, daemonsets for detection.
    for (const r of ['pods/exec', 'networkpolicies', 'daemonsets', 'namespaces', 'felixconfigurations']) expect(base).toContain(r);
    expect(docs[0]!.rules.find((r) => r.resources.includes('networkpolicies'))!.verbs).toContain('patch');
    expect(docs[1]!.rules).toEqual([{ apiGroups: [''], resources: ['nodes/proxy'], verbs: ['get'] }]);
  });
});

describe('kind configs', () => {
  it.each(PROFILED_CNIS)('the committed clusters/kind/%s.yaml is what the backend renders, and valid', (cni) => {
    const rendered = renderKindConfig(CNI_PROFILES[cni], v);
    validateManifests([rendered]);
    expect(parse(readFileSync(join(CLUSTERS_DIR, 'kind', `${cni}.yaml`), 'utf8'))).toEqual(rendered);
  });
  it('the schema rejects what kind would reject', () => {
    const bad = { ...renderKindConfig(CNI_PROFILES.calico, v), networking: { kubeProxyMode: 'userspace', podSubnet: '10.0.0.0' } };
    const problems = manifestProblems(bad as never).join('\n');
    expect(problems).toMatch(/networking\.kubeProxyMode/);
    expect(problems).toMatch(/networking\.podSubnet: must be an IPv4 CIDR/);
    expect(manifestProblems({ ...renderKindConfig(CNI_PROFILES.calico, v), nodez: [] } as never).join()).toMatch(/Unrecognized key/);
    expect(manifestProblems({ ...renderKindConfig(CNI_PROFILES.calico, v), kubeadmConfigPatches: ['maxPods: 250'] } as never).join()).toMatch(/kubeadmConfigPatches\.0: must start with the kind/);
  });
});

describe('CNI install inputs', () => {
  it('the Calico Installation pool matches the kind podSubnet and uses the iptables data plane', () => {
    const inst = renderCalicoInstallation() as { spec: { calicoNetwork: { ipPools: Array<{ cidr: string }>; linuxDataplane: string } } };
    validateManifests([inst]);
    expect(inst.spec.calicoNetwork.ipPools[0]!.cidr).toBe((renderKindConfig(CNI_PROFILES.calico, v).networking as { podSubnet: string }).podSubnet);
    expect(inst.spec.calicoNetwork.linuxDataplane).toBe('Iptables');
    expect(manifestProblems({ ...inst, metadata: { name: 'other' } } as never).join()).toMatch(/metadata\.name/);
  });
  it('Cilium values carry the policy map capacity and are schema-checked', () => {
    expect(renderCiliumValues('cb-abcde', 4096).bpf.policyMapMax).toBe(4096);
    expect(() => renderCiliumValues('cb-abcde', 0)).toThrow(ManifestError);
  });
  it('calico installs its CRDs and operator with create, then its Installation', () => {
    const plan = planCniInstall('calico', { target: { kubeconfig: '/k' }, versions: v, clusterName: 'cb-x', policyMapCapacity: 16384 });
    expect(plan.map((c) => c.argv.slice(3, 5).join(' '))).toEqual(['create -f', 'create -f', 'wait --for=condition=Established', 'create -f']);
    expect(parse(plan[3]!.input!)).toMatchObject({ kind: 'Installation', metadata: { name: 'default' } });
  });
});

describe('policy apply: bounded concurrency, client policy last', () => {
  /** A cluster whose applies take a moment, so overlapping ones can be counted. */
  function slowCluster(fail?: (batch: string) => boolean) {
    const inner = fakeCluster((argv, spec) => (argv.includes('--server-side') && fail?.(spec.purpose ?? '') ? { exitCode: 1, stderr: 'Error from server (Forbidden)' } : undefined));
    let inflight = 0;
    const seen = { max: 0, finished: [] as string[], started: [] as string[] };
    const runner: Runner = {
      dryRun: false,
      log: inner.log,
      async run(spec: CommandSpec) {
        if (!spec.argv.includes('--server-side')) return inner.run(spec);
        seen.started.push(spec.purpose!);
        seen.max = Math.max(seen.max, ++inflight);
        await new Promise((r) => setTimeout(r, 3));
        try {
          return await inner.run(spec);
        } finally {
          inflight--;
          seen.finished.push(spec.purpose!);
        }
      },
    };
    return { runner, seen };
  }
  const session = (runner: Runner, policies: number, matchPosition: 'first' | 'last' = 'first') => {
    const s = new K8sSession({
      config: runConfigSchema.parse({ cni: 'cilium', policies, matchPosition, backend: 'kind' }),
      runId: 'abcde',
      runner,
      cleanupRunner: runner,
      target: { kubeconfig: '/k' },
      versions: v,
      agents: CNI_PROFILES.cilium.agents,
      enforcesPolicy: true,
      sharedKernel: true,
      outDir: '/tmp/unused',
      probeIntervalMs: 0,
    });
    s.placement = { serverNode: 'w1', clientNode: 'w2' };
    return s;
  };

  it('runs at most APPLY_CONCURRENCY kubectl processes, and applies the client policy only after every filler batch finished', async () => {
    const { runner, seen } = slowCluster();
    const s = session(runner, 3000);
    const cfg = runConfigSchema.parse({ cni: 'cilium', policies: 3000, matchPosition: 'first', backend: 'kind' });
    const report = await s.installPolicies(benchmarkPolicySet(cfg, s.target.namespaces, s.target.runLabel));
    expect(seen.max).toBe(APPLY_CONCURRENCY);
    expect(seen.started).toHaveLength(31);
    expect(seen.started.at(-1)).toBe("apply the client's policy last (the enforcement wait's barrier)");
    // The barrier: nothing else was still being applied when the client's policy started.
    expect(seen.finished.slice(0, 30).every((p) => p.startsWith('apply filler'))).toBe(true);
    expect(report.modelState).toMatchObject({ applyBatches: 31, applyConcurrency: 16, enforcementBarrier: 'client policy applied last', fillerPeersPresent: true, fillerPeersRunning: PEER_POD_CAP, fillerPeersNamed: 3000, encapsulation: ENCAPSULATION });
    // The peers exist (Ready) before the first filler lands.
    const log = runner.log.map((r) => r.argv.join(' '));
    const peersReady = log.findIndex((a) => a.includes('wait --for=condition=Ready pod -l cni-bench/role=peer'));
    expect(peersReady).toBeGreaterThan(log.findIndex((a) => a.endsWith('create -f -')));
    expect(peersReady).toBeLessThan(log.findIndex((a) => a.includes('--server-side')));
  });

  it('a failed batch stops new batches, waits for those in flight, and never applies the client policy', async () => {
    const { runner, seen } = slowCluster((purpose) => purpose.includes('batch 3/'));
    const s = session(runner, 2000);
    const cfg = runConfigSchema.parse({ cni: 'cilium', policies: 2000, matchPosition: 'first', backend: 'kind' });
    await expect(s.installPolicies(benchmarkPolicySet(cfg, s.target.namespaces, s.target.runLabel))).rejects.toThrow(/^step apply-policies failed: apply filler policies batch 3\/20 .*Forbidden/s);
    expect(seen.started.length).toBeLessThan(20);
    expect(seen.started.some((p) => p.includes("client's policy"))).toBe(false);
    expect(seen.finished).toHaveLength(seen.started.length);
  });

  it('a cAdvisor CPU split counts only when the kubelet samples span about the measured window', () => {
    expect(cadvisorSplitValid(30_000, 32_000)).toBe(true);
    expect(cadvisorSplitValid(0, 3_000)).toBe(false);
    expect(cadvisorSplitValid(15_000, 3_000)).toBe(false);
    expect(cadvisorSplitValid(null, 3_000)).toBe(false);
    const at = (sec: number, ts: number) => parseCadvisorCpu(cadvisorText(sec).replace(/ 1700000000000/g, ` ${ts}`));
    expect(cadvisorSpanMs({ cadvisor: new Map([['w1', at(1, 1_000)]]), kernels: [] }, { cadvisor: new Map([['w1', at(2, 16_000)]]), kernels: [] })).toBe(15_000);
  });

  it('mapBounded keeps the order of results', async () => {
    const out = await mapBounded([5, 1, 3], 2, async (x) => {
      await new Promise((r) => setTimeout(r, x));
      return x * 2;
    });
    expect(out).toEqual([10, 2, 6]);
  });
});

describe('workload manifests', () => {
  const n = runNames('abcde');
  it('pods are pinned by node name and pass the restricted Pod Security profile; namespaces enforce it', () => {
    const objs = renderWorkloads(n, { serverNode: 'ip-10-0-1-5.eu-west-1.compute.internal', clientNode: 'w2' }, v);
    for (const o of objs) {
      const spec = (o.kind === 'Deployment' ? (o.spec as { template: { spec: Record<string, unknown> } }).template.spec : o.spec) as Record<string, unknown>;
      expect(restrictedProblems(spec)).toEqual([]);
      expect(spec.nodeSelector).toBeUndefined();
      expect((spec.containers as Array<{ name: string; command?: string[] }>).find((c) => c.name === 'fortio')!.command).toEqual(['/usr/bin/fortio']);
    }
    expect((objs[0]!.spec as { template: { spec: { affinity: unknown } } }).template.spec.affinity).toEqual(pinToNode('ip-10-0-1-5.eu-west-1.compute.internal'));
    for (const ns of renderNamespaces(n)) expect(ns.metadata!.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    // The checker is not vacuous: a root container with default capabilities fails it.
    expect(restrictedProblems({ containers: [{ name: 'x' }] })).toEqual(['x: allowPrivilegeEscalation must be false', 'x: capabilities must drop ALL', 'x: runAsNonRoot must be true', 'x: seccompProfile must be RuntimeDefault or Localhost']);
  });
  it('namespaces, deployment and pods are valid and carry the run label', () => {
    const objs = [...renderNamespaces(n), ...renderWorkloads(n, { serverNode: 'w1', clientNode: 'w2' }, v)];
    validateManifests(objs);
    for (const o of objs) expect(o.metadata!.labels).toMatchObject({ 'cni-bench/run': 'abcde' });
    expect(toYaml(objs)).not.toMatch(/&a\d|\*a\d/);
  });
  it('invalid objects are reported all at once, by name', () => {
    const [ns] = renderNamespaces(n);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'x' }, spec: { containers: [{ image: 'x' }] } };
    const e = (() => {
      try {
        validateManifests([{ ...ns!, metadata: { name: 7 } }, pod, { apiVersion: 'x/v1', kind: 'Thing' }]);
      } catch (err) {
        return err as ManifestError;
      }
    })()!;
    expect(e.problems).toHaveLength(3);
    expect(e.problems[1]).toMatch(/^Pod x\/p: .*name/);
    expect(e.problems[2]).toMatch(/no schema for x\/v1\/Thing/);
  });
  it('the generated policies validate as networking.k8s.io/v1 NetworkPolicies', () => {
    const cfg = runConfigSchema.parse({ cni: 'calico', policies: 50 });
    const set = benchmarkPolicySet(cfg, { server: n.serverNamespace, client: n.clientNamespace }, n.runLabel);
    validateManifests(set.policies);
    expect(set.policies.every((p) => p.metadata.labels?.['cni-bench/run'] === 'abcde')).toBe(true);
  });
});

describe('fortio', () => {
  it('removes failed dials (recorded at ≈ the timeout before fortio checks the error) from connect samples, and says the resolution', () => {
    const hist = { Count: 5, Data: [{ Start: 0.0001, End: 0.00011, Count: 3 }, { Start: 0.9, End: 1.0, Count: 2 }] };
    const stdout = JSON.stringify({ DurationHistogram: { Count: 5 }, ConnectionStats: hist, RetCodes: { '200': 3, '-1': 2 } });
    const r = parseFortioLoad('connect', stdout, '', { timeoutMs: 1000 });
    expect(r.samplesNs).toHaveLength(3);
    expect(Math.max(...r.samplesNs)).toBeLessThan(110_000);
    expect(r.failedDialsRemoved).toBe(2);
    expect(r.errors).toEqual({ SOCKET_ERROR: 2 });
    expect(r.resolutionUs).toBe(100000);
    // A fast failure (refused) is not at the timeout: nothing real is cut to make the count match.
    expect(removeFailedDials([100_000, 120_000], 1, 1000)).toEqual({ samplesNs: [100_000, 120_000], removed: 0 });
    expect(histogramResolutionUs({ Count: 3, Data: [{ Start: 0.0001, End: 0.00011, Count: 3 }, { Start: 0.002, End: 0.003, Count: 0 }] })).toBe(10);
  });

  it('crr: raw samples from the access log, failed calls counted as errors', () => {
    const r = parseFortioLoad('crr', fixture('crr.json'), fixture('crr.stderr'));
    expect(r.samplesSource).toBe('access-log');
    expect(r.samplesNs).toHaveLength(11);
    expect(r.samplesNs[0]).toBe(412_000);
    expect(r.samplesNs).not.toContain(1_002_000);
    expect(r.errors).toEqual({ SOCKET_ERROR: 1 });
    expect(r.fortioVersion).toBe('1.73.2');
    expect(r.wallNs).toBeGreaterThan(5_000_000);
  });
  it('rr: access-log lines are picked out of fortio log lines; the call that opened the connection is not a sample', () => {
    const r = parseFortioLoad('rr', fixture('rr.json'), fixture('rr.stderr'));
    expect(r.samplesNs).toEqual([211, 182, 175, 179, 181, 177, 203, 176, 178, 180].map((us) => us * 1000));
    expect(r.handshakeCallsDropped).toBe(1);
  });
  it('rr: every thread drops its own first call (each thread opens its own connection); crr keeps all', () => {
    const line = (thread: number, iter: number, us: number) => `{"latency":${us / 1e6},"timestamp":${1_000_000 + thread * 10 + iter * 100},"thread":${thread},"iter":${iter},"ok":true,"details":"200"}`;
    const log = [line(0, 0, 400), line(1, 0, 420), line(0, 1, 180), line(1, 1, 190), line(0, 2, 181), line(1, 2, 191)].join('\n');
    const json = JSON.stringify({ DurationHistogram: { Count: 6 }, RetCodes: { '200': 6 } });
    expect(parseFortioLoad('rr', json, log).samplesNs).toEqual([180_000, 190_000, 181_000, 191_000]);
    expect(parseFortioLoad('crr', json, log).samplesNs).toHaveLength(6);
  });
  it('connect: reconstructed from the connection-time histogram, within bucket width', () => {
    const r = parseFortioLoad('connect', fixture('connect.json'), '');
    expect(r.samplesSource).toBe('histogram');
    expect(r.samplesNs).toHaveLength(12);
    const truth = [131, 122, 149, 128, 702, 125, 133, 121, 141, 127, 188, 129].sort((a, b) => a - b);
    r.samplesNs.forEach((s, i) => expect(Math.abs(s / 1000 - truth[i]!)).toBeLessThanOrEqual(50));
  });
  it('without access-log lines crr falls back to the histogram minus the errors', () => {
    const r = parseFortioLoad('crr', fixture('crr.json'), 'no access log here\n');
    expect(r.samplesSource).toBe('histogram');
    expect(r.samplesNs).toHaveLength(11);
  });
  it('lost access-log lines and non-JSON output are errors, not short samples', () => {
    const cut = fixture('crr.stderr').split('\n').filter((l, i) => i !== 3).join('\n');
    expect(() => parseFortioLoad('crr', fixture('crr.json'), cut)).toThrow(/11 entries for 12 calls/);
    expect(() => parseFortioLoad('crr', 'Error: unable to connect', '')).toThrow(FortioOutputError);
    expect(() => parseFortioLoad('crr', JSON.stringify({ Error: true, Message: 'bad url' }), '')).toThrow(/bad url/);
    expect(() => parseFortioLoad('crr', JSON.stringify({ error: true, message: 'no such host' }), '')).toThrow(/fortio could not run: no such host/);
  });
  it('histogram reconstruction spreads counts over each interval', () => {
    expect(samplesFromHistogram({ Count: 2, Data: [{ Start: 0, End: 1, Count: 2 }] })).toEqual([0.25, 0.75]);
    expect(parseAccessLog('{"latency":0.5,"timestamp":1,"thread":0,"iter":0,"ok":true}\n{"latency":0.')).toHaveLength(1);
    expect(errorsFromRetCodes({ '200': 5, '-1': 2, '503': 1 })).toEqual({ SOCKET_ERROR: 2, HTTP_503: 1 });
  });
  it('connect and crr run without keep-alive, rr with it; as many samples as asked', () => {
    const base = { url: 'http://1.2.3.4:8080/', samples: 1000, concurrency: 1, timeoutMs: 1000 };
    expect(fortioLoadArgs({ ...base, metric: 'connect' })).toContain('-keepalive=false');
    expect(fortioLoadArgs({ ...base, metric: 'crr' })).toContain('-keepalive=false');
    expect(fortioLoadArgs({ ...base, metric: 'rr' })).not.toContain('-keepalive=false');
    expect(fortioLoadArgs({ ...base, metric: 'crr' }).slice(2, 6)).toEqual(['-n', '1000', '-c', '1']);
    // rr: one more call per connection, whose handshake the parser drops (fortio makes no warm-up call with -n).
    expect(fortioLoadArgs({ ...base, metric: 'rr' }).slice(2, 6)).toEqual(['-n', '1001', '-c', '1']);
    expect(fortioLoadArgs({ ...base, metric: 'rr', concurrency: 4 }).slice(2, 6)).toEqual(['-n', '1004', '-c', '4']);
    expect(fortioLoadArgs({ ...base, metric: 'rr', samples: 4, concurrency: 4 }).slice(2, 6)).toEqual(['-n', '6', '-c', '2']);
  });
});

describe('CPU accounting', () => {
  it('parses cAdvisor counters per container and the node root', () => {
    const rows = parseCadvisorCpu(`${cadvisorText(4)}\ncontainer_cpu_usage_seconds_total{container="fortio",cpu="cpu00",namespace="cb-abcde-client",pod="bench-client"} 99 1`);
    expect(containerSeconds(rows, { namespace: 'cb-abcde-client', pod: 'bench-client', container: 'fortio' })).toBe(4);
    expect(containerSeconds(rows, { namespace: 'kube-system', container: 'cilium-agent' })).toBe(1);
    expect(rootSeconds(rows)).toBe(1012);
  });
  it('splits a window into client, server, agents and the rest', () => {
    const snap = (sec: number, busyNs: number) => ({ cadvisor: new Map([['w1', parseCadvisorCpu(cadvisorText(sec))]]), kernels: [{ busyNs, softirqNs: busyNs / 10 }] });
    const w = cpuWindow(snap(1, 1e9), snap(2, 5e9), {
      client: { namespace: 'cb-abcde-client', pod: 'bench-client', container: 'fortio' },
      server: { namespace: 'cb-abcde-server', pod: 'bench-server-7d9f-x2x', container: 'fortio' },
      agents: [{ namespace: 'kube-system', container: 'cilium-agent' }],
    }, 1000);
    expect(w.totalUsPerOp).toBeCloseTo(4000);
    expect(w.probeClientUsPerOp).toBeCloseTo(1000);
    expect(w.probeServerUsPerOp).toBeCloseTo(500);
    expect(w.dataPlaneUsPerOp).toBeCloseTo(2500);
    expect(w.agentsUsPerOp).toBeCloseTo(250);
    expect(w.softirqUsPerOp).toBeCloseTo(400);
  });
});

describe('CNI detection', () => {
  const detectCnis = (json: string, nodes?: string, felix: FelixRead = NO_FELIX_CONFIGURATION) => detectWithFelix(json, nodes, felix);
  const cnis = (json: string, nodes?: string, felix?: FelixRead) => detectCnis(json, nodes, felix).found.map((d) => d.cni);
  const flannelDs = (where: string) => daemonSet(where, ['kube-flannel'], { app: 'flannel' });
  const calicoDs = (where: string, env: Record<string, string> = {}) => daemonSet(where, [{ name: 'calico-node', env }], { 'k8s-app': 'calico-node' });
  const nodeList = (kubelet: string, annotations: Record<string, string> = {}) => JSON.stringify({ items: [{ metadata: { annotations }, status: { nodeInfo: { kubeletVersion: kubelet } } }] });

  it('recognises each CNI from pod templates, in whatever namespace its install put it', () => {
    expect(cnis(daemonSetList(daemonSet('kube-system/kube-proxy', ['kube-proxy']), daemonSet('kube-system/cilium', ['cilium-agent'], { 'k8s-app': 'cilium' })))).toEqual(['cilium']);
    // Cilium outside kube-system, and its Envoy DaemonSet counted with it.
    const c = detectCnis(daemonSetList(daemonSet('cilium/cilium', ['cilium-agent'], { 'k8s-app': 'cilium' }), daemonSet('cilium/cilium-envoy', ['cilium-envoy'], { 'k8s-app': 'cilium-envoy' }))).found[0]!;
    expect(c.agents.map((x) => `${x.namespace}/${x.daemonset}:${x.container}`)).toEqual(['cilium/cilium:cilium-agent', 'cilium/cilium-envoy:cilium-envoy']);
    // GKE Dataplane V2.
    const gke = detectCnis(daemonSetList(daemonSet('kube-system/anetd', ['cilium-agent'], { 'k8s-app': 'cilium' }))).found[0]!;
    expect(gke).toMatchObject({ cni: 'cilium', found: 'kube-system/anetd (GKE Dataplane V2, Cilium)' });
    expect(detectCnis(daemonSetList(calicoDs('calico-system/calico-node'))).found[0]!.agents[0]!.namespace).toBe('calico-system');
    expect(detectCnis(daemonSetList(calicoDs('kube-system/calico-node'))).found[0]!.agents[0]!.namespace).toBe('kube-system');
    expect(cnis(daemonSetList(flannelDs('kube-flannel/kube-flannel-ds')))).toEqual(['flannel']);
    expect(cnis(daemonSetList(daemonSet('kube-system/kindnet', ['kindnet-cni'])))).toEqual([]);
  });

  it('Canal is Calico policy on Flannel, never flannel: one DaemonSet (canal, rke2-canal) or two', () => {
    for (const where of ['kube-system/canal', 'kube-system/rke2-canal']) {
      const d = detectCnis(daemonSetList(daemonSet(where, ['calico-node', 'kube-flannel'], { 'k8s-app': 'canal' })));
      expect(d.found.map((f) => f.cni)).toEqual(['canal']);
      expect(d.found[0]!.agents.map((a) => a.container)).toEqual(['calico-node', 'kube-flannel']);
      expect(d.found[0]!.agents[0]!.selector).toBe('k8s-app=canal');
    }
    expect(cnis(daemonSetList(calicoDs('kube-system/calico-node'), flannelDs('kube-flannel/kube-flannel-ds')))).toEqual(['canal']);
  });

  it("tells Calico's data planes apart by the FelixConfiguration, where the operator writes them; an env var on calico-node wins, as in Felix", () => {
    // Operator installs: no FELIX_* env on calico-node (tigera/operator v1.38.6), the setting is in FelixConfiguration default.
    expect(cnis(daemonSetList(calicoDs('calico-system/calico-node')), undefined, { spec: { bpfEnabled: true } })).toEqual(['calico-ebpf']);
    expect(cnis(daemonSetList(calicoDs('calico-system/calico-node')), undefined, { spec: { nftablesMode: 'Enabled', bpfEnabled: false } })).toEqual(['calico-nftables']);
    expect(cnis(daemonSetList(calicoDs('calico-system/calico-node')), undefined, { spec: { nftablesMode: 'Disabled', bpfEnabled: false } })).toEqual(['calico']);
    expect(cnis(daemonSetList(calicoDs('calico-system/calico-node')), undefined, { spec: {} })).toEqual(['calico']);
    // A manifest install may set the env; Felix lets it override the datastore (config_params.go SourcesInDescendingOrder).
    expect(cnis(daemonSetList(calicoDs('kube-system/calico-node', { FELIX_BPFENABLED: 'true' })))).toEqual(['calico-ebpf']);
    expect(cnis(daemonSetList(calicoDs('kube-system/calico-node', { FELIX_BPFENABLED: 'false' })), undefined, { spec: { bpfEnabled: true } })).toEqual(['calico']);
    expect(cnis(daemonSetList(calicoDs('kube-system/calico-node', { FELIX_NFTABLESMODE: 'Enabled' })))).toEqual(['calico-nftables']);
  });

  it("k3s' embedded flannel (no DaemonSet) and its policy controller; EKS aws-node named in the refusal", () => {
    const k3s = detectCnis(daemonSetList(), nodeList('v1.31.4+k3s1', { 'flannel.alpha.coreos.com/backend-type': 'vxlan' })).found;
    expect(k3s).toMatchObject([{ cni: 'flannel', agents: [], enforcesPolicy: true }]);
    expect(detectCnis(daemonSetList(), nodeList('v1.31.4', { 'flannel.alpha.coreos.com/backend-type': 'vxlan' })).found).toEqual([]);
    const eks = detectCnis(daemonSetList(daemonSet('kube-system/aws-node', ['aws-node', 'aws-eks-nodeagent'], { 'k8s-app': 'aws-node' })));
    expect(eks.found).toEqual([]);
    expect(detectionRefusal(eks, 'cilium')).toMatch(/contradicts the cluster, which runs kube-system\/aws-node \(AWS VPC CNI, with its eBPF network policy agent\); bench has no profile/);
    const canal = detectCnis(daemonSetList(daemonSet('kube-system/rke2-canal', ['calico-node', 'kube-flannel'])));
    expect(detectionRefusal(canal, 'flannel')).toBe('--cni flannel contradicts the cluster, which runs canal (kube-system/rke2-canal (calico-node + kube-flannel)); run with --cni canal');
    expect(detectionRefusal(detectCnis(daemonSetList()), 'calico')).toMatch(/^no known CNI agent on the cluster \(looked in every namespace/);
  });
});

describe('filler peers as pods (the same experiment as the local backend, capped)', () => {
  const n = runNames('abcde');
  const cfg = (policies: number) => runConfigSchema.parse({ cni: 'calico', policies, matchPosition: 'last', backend: 'kind' });
  const set = (policies: number) => benchmarkPolicySet(cfg(policies), { server: n.serverNamespace, client: n.clientNamespace }, n.runLabel);

  it('selectPeers keeps every peer up to the cap, then spreads the cap evenly over the fillers', () => {
    expect(selectPeers([1, 2, 3], 64)).toEqual([1, 2, 3]);
    const chosen = selectPeers(Array.from({ length: 5000 }, (_, i) => i), 64);
    expect(chosen).toHaveLength(64);
    expect(new Set(chosen).size).toBe(64);
    expect(chosen[0]).toBe(0);
    expect(chosen.at(-1)).toBeGreaterThan(4900);
    expect(() => selectPeers([1], -1)).toThrow(/cap must be an integer/);
  });

  it('each peer pod carries exactly the label its filler selects, validates, is restricted, and is selected by its filler only', () => {
    const s = set(200);
    const chosen = selectPeers(s.peers, PEER_POD_CAP);
    const pods = renderPeerPods(n, chosen, { serverNode: 'w1', clientNode: 'w2' }, v);
    validateManifests(pods);
    expect(pods).toHaveLength(PEER_POD_CAP);
    const fillers = s.policies.filter((p) => p.metadata.labels?.['cni-bench/role'] === 'filler');
    for (const pod of pods as Array<{ metadata: { name: string; namespace: string; labels: Record<string, string> }; spec: Record<string, unknown> }>) {
      expect(pod.metadata.namespace).toBe(n.serverNamespace);
      expect(restrictedProblems(pod.spec)).toEqual([]);
      const selecting = fillers.filter((f) => Object.entries(f.spec.ingress![0]!.from![0]!.podSelector!.matchLabels!).every(([k, val]) => pod.metadata.labels[k] === val));
      expect(selecting).toHaveLength(1);
      // Not a server: no filler's podSelector (the server's labels) matches a peer, so peers are never isolated.
      expect(Object.entries(fillers[0]!.spec.podSelector.matchLabels!).every(([k, val]) => pod.metadata.labels[k] === val)).toBe(false);
    }
    // Spread over both nodes.
    const nodes = new Set(pods.map((p) => JSON.stringify((p as { spec: { affinity: unknown } }).spec.affinity)));
    expect(nodes.size).toBe(2);
  });

  it('the client pod carries the probe container with its emptyDir, restricted like the rest', () => {
    const client = renderWorkloads(n, { serverNode: 'w1', clientNode: 'w2' }, v).find((o) => (o as { metadata: { name: string } }).metadata.name === 'bench-client') as {
      spec: { containers: Array<{ name: string; volumeMounts?: Array<{ mountPath: string }> }>; volumes: Array<{ name: string; emptyDir?: object }> };
    };
    const probe = client.spec.containers.find((c) => c.name === PROBE_CONTAINER)!;
    expect(probe.volumeMounts).toEqual([{ name: PROBE_CONTAINER, mountPath: '/probe' }]);
    expect(client.spec.volumes).toEqual([{ name: PROBE_CONTAINER, emptyDir: { sizeLimit: '16Mi' } }]);
    expect(restrictedProblems(client.spec as unknown as Record<string, unknown>)).toEqual([]);
  });
});

describe('cb-probe in the client pod: failure paths', () => {
  const session = (runner: Runner, probeBinary: string) =>
    new K8sSession({
      config: runConfigSchema.parse({ cni: 'cilium', policies: 3, backend: 'kind' }),
      runId: 'abcde',
      runner,
      cleanupRunner: runner,
      target: { kubeconfig: '/k' },
      versions: v,
      agents: CNI_PROFILES.cilium.agents,
      enforcesPolicy: true,
      sharedKernel: true,
      outDir: '/tmp/unused',
      probeIntervalMs: 0,
      probeBinary,
    });
  const here = new URL(import.meta.url).pathname;

  it('a missing static probe stops the run before any copy, and says how to build it', async () => {
    const runner = fakeCluster();
    await expect(session(runner, '/nonexistent/cb-probe-static').createWorkloads({ serverNode: 'w1', clientNode: 'w2' })).rejects.toThrow(/step install-probe failed: .*cb-probe-static is missing.*libc6-dev.*npm run build/s);
    expect(runner.log.some((r) => r.argv.includes('cp'))).toBe(false);
  });

  it('a probe that cannot reach the server before any policy fails install-probe with what it printed', async () => {
    const runner = fakeCluster((argv) => (argv.join(' ').includes('/probe/cb-probe check') ? { exitCode: 1, stdout: 'timeout ETIMEDOUT\n' } : undefined));
    await expect(session(runner, here).createWorkloads({ serverNode: 'w1', clientNode: 'w2' })).rejects.toThrow(/step install-probe failed: cb-probe in cb-abcde-client\/bench-client could not connect .*timeout ETIMEDOUT/s);
    const cp = runner.log.find((r) => r.argv.includes('cp'))!;
    expect(cp.argv.slice(-4)).toEqual([here, 'cb-abcde-client/bench-client:/probe/cb-probe', '-c', 'probe']);
  });

  it('connect samples come from cb-probe (errors by errno) and truncated probe output is an error, not numbers', async () => {
    let truncated = false;
    const runner = fakeCluster((argv) => {
      if (!argv.join(' ').includes('/probe/cb-probe client ')) return undefined;
      return truncated ? { stdout: '{"mode":"connect","samples_ns":[1,2' } : { stdout: JSON.stringify({ mode: 'connect', samples_ns: [120000, 130000], errors: { ETIMEDOUT: 1 }, wall_ns: 9, cpu_user_ns: 1, cpu_sys_ns: 2, started_ns: 1, ended_ns: 10 }) };
    });
    const s = session(runner, here);
    await s.createWorkloads({ serverNode: 'w1', clientNode: 'w2' });
    const m = await s.measure('connect', { samples: 3, warmup: 1, concurrency: 1, timeoutMs: 1000 });
    expect(m.samplesNs).toEqual([120000, 130000]);
    expect(m.errors).toEqual({ ETIMEDOUT: 1 });
    const probeCalls = runner.log.filter((r) => r.argv.includes('client') && r.argv.includes('/probe/cb-probe')).map((r) => r.argv.slice(r.argv.indexOf('--')));
    // Warm-up first, on its own (outside the CPU window), then the measured call without warm-up.
    expect(probeCalls).toEqual([
      ['--', '/probe/cb-probe', 'client', '--target', '10.244.1.5', '--port', '8080', '--mode', 'connect', '--samples', '1', '--warmup', '0', '--concurrency', '1', '--timeout-ms', '1000'],
      ['--', '/probe/cb-probe', 'client', '--target', '10.244.1.5', '--port', '8080', '--mode', 'connect', '--samples', '3', '--warmup', '0', '--concurrency', '1', '--timeout-ms', '1000'],
    ]);
    // No fortio run measures connect any more.
    expect(runner.log.some((r) => r.argv.includes('load') && !r.argv.includes('2'))).toBe(false);
    truncated = true;
    await expect(s.measure('connect', { samples: 3, warmup: 0, concurrency: 1, timeoutMs: 1000 })).rejects.toThrow(/step measure failed: cb-probe client output is not valid JSON/);
  });
});
