import { describe, expect, it, vi } from 'vitest';
import type { CommandResult } from '../exec/runner.js';
import { fakeCluster, planText, PlanRunner } from '../backends/k8s/test-support/cluster.js';
import { ClusterTargetError } from '../backends/cluster/backend.js';
import { validateManifests } from '../backends/k8s/validate.js';
import { pinToNode } from '../backends/k8s/manifests.js';
import type { NetworkPolicy } from '../policy/types.js';
import { BUILTIN_CASES_DIR, loadCases, type VerifyCase } from './cases.js';
import { expectProbes } from './expect.js';
import { gridInventory, gridLayout, gridLayoutOf, gridWorkload, instantiatePolicies, planProbes, type GridAddresses, type ProbeSpec } from './grid.js';
import { EXTERNAL_STANDIN_IPS, gridNames, realInventory, rewritePolicies } from '../backends/k8s/grid-names.js';
import { renderGridNamespaces, renderGridPods } from '../backends/k8s/grid-manifests.js';
import { parseProbeResult, planProbeCommand } from '../backends/k8s/grid-probe.js';
import { casesOnGrid, planVerify, runVerify } from './run.js';
import { createBackend, plannedAddresses } from '../backends/factory.js';
import { runConfigSchema } from '../config/schema.js';
import type { Runner } from '../exec/runner.js';
import { podId } from '../workload/workload.js';

/** The grid's data plane as `bench verify --backend kind|cluster` builds it (the backend descriptor). */
const clusterGrid = (backend: 'kind' | 'cluster', o: { cni: 'calico' | 'cilium'; runId: string; outDir: string; context?: string; runner: Runner; cleanupRunner?: Runner; cacheDir?: string; kubeconfigDir?: string }) =>
  createBackend({ config: runConfigSchema.parse({ cni: o.cni, backend, context: o.context }), backend, runId: o.runId, shape: 'verify-grid', runner: o.runner, cleanupRunner: o.cleanupRunner ?? o.runner, outDir: o.outDir, cacheDir: o.cacheDir, kubeconfigDir: o.kubeconfigDir });

const RUN_ID = 'abcde';
const full = gridLayout();
/** The grid as a cluster runs it (fit: no external hosts, the run label on its namespaces). */
const workload = (await clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', context: 'fit', runner: new PlanRunner() })).fit(gridWorkload(full));
const layout = gridLayoutOf(workload);
const names = gridNames(RUN_ID, layout);
const IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.52';
const library = await (async () => {
  const ips = (await plannedAddresses(gridWorkload(full))).ips;
  const r = loadCases([BUILTIN_CASES_DIR], { layout: full, ips });
  if (r.problems.length) throw new Error(JSON.stringify(r.problems));
  return r.cases;
})();
const caseNamed = (n: string) => library.find((c) => c.name === n)!;

/** Where a cluster might put the grid: pods on two workers, the DNS pod on a third node. */
const addresses: GridAddresses = { ips: { ...EXTERNAL_STANDIN_IPS }, nodeOf: {} };
layout.pods.forEach((p, i) => {
  addresses.ips[p.id] = `10.244.${p.node + 1}.${10 + i}`;
  addresses.nodeOf[p.id] = p.namespace === 'kube-system' ? 'cp' : `w${p.node + 1}`;
});

const policy = (name: string, namespace: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec });

describe('k8s grid layout and manifests', () => {
  it('has no external hosts, and the grid namespaces carry the run label as they will on the cluster', () => {
    expect(layout.externals).toEqual([]);
    expect(layout.namespaces.map((n) => [n.name, n.labels])).toEqual([
      ['x', { ns: 'x', 'cni-bench/run': RUN_ID }],
      ['y', { ns: 'y', 'cni-bench/run': RUN_ID }],
      ['z', { ns: 'z', 'cni-bench/run': RUN_ID }],
      ['kube-system', {}],
    ]);
    expect(names.namespaceOf).toEqual({ x: 'cb-abcde-x', y: 'cb-abcde-y', z: 'cb-abcde-z' });
  });

  it('renders valid namespaces and agnhost pods: one container per port and protocol, named ports as on the local grid', () => {
    const ns = renderGridNamespaces(layout, names);
    const pods = renderGridPods(layout, names, ['w1', 'w2'], IMAGE);
    expect(() => validateManifests([...ns, ...pods])).not.toThrow();
    expect(ns.map((n) => n.metadata?.name)).toEqual(['cb-abcde-x', 'cb-abcde-y', 'cb-abcde-z']);
    // The cluster's DNS pods are used, never created.
    expect(pods.map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`)).toEqual(layout.pods.filter((p) => p.client).map((p) => `cb-abcde-${p.id}`));
    const xa = pods[0] as unknown as { metadata: { labels: object }; spec: { nodeSelector?: object; affinity: object; containers: Array<{ name: string; command: string[]; ports: object[] }> } };
    expect(xa.metadata.labels).toEqual({ pod: 'a' });
    // Pinned by node name (matchFields metadata.name), not the kubernetes.io/hostname label, which can differ from it.
    expect(xa.spec.nodeSelector).toBeUndefined();
    expect(xa.spec.affinity).toEqual(pinToNode('w1'));
    expect((pods[1] as unknown as typeof xa).spec.affinity).toEqual(pinToNode('w2'));
    // Pod Security: baseline, as the upstream netpol suite labels its namespaces (agnhost serves 80/81 as root).
    for (const n of ns) expect(n.metadata!.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'baseline' });
    expect(xa.spec.containers.map((c) => [c.name, c.command.join(' '), c.ports])).toEqual([
      ['cont-80-tcp', '/agnhost serve-hostname --tcp --http=false --port 80', [{ name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' }]],
      ['cont-81-tcp', '/agnhost serve-hostname --tcp --http=false --port 81', [{ name: 'serve-81-tcp', containerPort: 81, protocol: 'TCP' }]],
      ['cont-80-udp', '/agnhost serve-hostname --udp --http=false --port 80', [{ name: 'serve-80-udp', containerPort: 80, protocol: 'UDP' }]],
      ['cont-81-udp', '/agnhost serve-hostname --udp --http=false --port 81', [{ name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' }]],
    ]);
  });

  it('skips only the cases whose every probe involves an external host', () => {
    const extOnly: VerifyCase = { ...caseNamed('ipblock-except'), name: 'ext-only', probes: { from: ['ext1'] } };
    const r = casesOnGrid([caseNamed('ipblock-except'), extOnly], layout);
    expect(r.run.map((c) => c.name)).toEqual(['ipblock-except']);
    expect(r.skipped.map((s) => s.name)).toEqual(['ext-only']);
  });
});

describe('rewriting case policies to the real namespaces', () => {
  it('every built-in case rewrites to valid manifests in the grid namespaces, each with the run label', () => {
    for (const c of library) {
      const inst = instantiatePolicies(c.policies, addresses.ips);
      expect(inst.problems).toEqual([]);
      const real = rewritePolicies(inst.policies, names);
      expect(() => validateManifests(real), c.name).not.toThrow();
      for (const p of real) {
        expect(p.metadata.namespace).toMatch(/^cb-abcde-[a-z]$/);
        expect(p.metadata.labels).toMatchObject({ 'cni-bench/run': RUN_ID });
      }
    }
  });

  it('keeps an AND peer (namespaceSelector ns=y + podSelector pod=b) as one peer, labels unchanged', () => {
    const [p] = rewritePolicies(caseNamed('namespace-and-pod-selector-and').policies, names);
    expect(p!.metadata).toEqual({ name: 'allow-y-b', namespace: 'cb-abcde-x', labels: { 'cni-bench/run': RUN_ID } });
    expect(p!.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }]);
  });

  it('maps kubernetes.io/metadata.name in namespaceSelectors (matchLabels and matchExpressions), leaves kube-system and pod labels alone', () => {
    const input = [
      policy('and-by-name', 'x', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } }, podSelector: { matchLabels: { pod: 'b', 'kubernetes.io/metadata.name': 'y' } } }] }],
        egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['z', 'kube-system'] }, { key: 'ns', operator: 'NotIn', values: ['x'] }] } }] }],
        policyTypes: ['Ingress', 'Egress'],
      }),
    ];
    const [p] = rewritePolicies(input, names);
    expect(p!.spec.ingress![0]!.from![0]).toEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'cb-abcde-y' } },
      podSelector: { matchLabels: { pod: 'b', 'kubernetes.io/metadata.name': 'y' } },
    });
    expect(p!.spec.egress![0]!.to![0]!.namespaceSelector!.matchExpressions).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['cb-abcde-z', 'kube-system'] },
      { key: 'ns', operator: 'NotIn', values: ['x'] },
    ]);
    expect(input[0]!.metadata.namespace).toBe('x'); // the case's own objects are not modified
  });

  it('refuses a policy outside the grid namespaces (on a shared cluster it would reach pods that are not ours)', () => {
    expect(() => rewritePolicies([policy('dns', 'kube-system', { podSelector: {} })], names)).toThrow(/kube-system\/dns would apply to the cluster's own kube-system/);
  });

  it('gives the evaluator the same verdict on every probe with the real names as with the case-file names', () => {
    const realId = (id: string) => (id.includes('/') && names.namespaceOf[id.split('/')[0]!] ? `${names.namespaceOf[id.split('/')[0]!]}/${id.split('/')[1]}` : id);
    const inventory = gridInventory(layout, addresses);
    const real = realInventory(inventory, names);
    const realAddr = { ips: Object.fromEntries(Object.entries(addresses.ips).map(([k, v]) => [realId(k), v])) };
    const byName = policy('by-name', 'x', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }],
      egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['z'] }] } }] }],
      policyTypes: ['Ingress', 'Egress'],
    });
    const cases = [...library.map((c) => ({ name: c.name, policies: c.policies, probes: c.probes })), { name: 'by-name', policies: [byName], probes: undefined }];
    const verdicts = (c: (typeof cases)[number], rewrite: boolean) => {
      const probes = planProbes(layout, c.probes);
      const pols = instantiatePolicies(c.policies, addresses.ips).policies;
      const logical = expectProbes(inventory, pols, probes, addresses).expectations.map((e) => e.allowed);
      const realProbes: ProbeSpec[] = probes.map((p) => ({ ...p, from: realId(p.from), to: realId(p.to) }));
      const onCluster = expectProbes(real, rewrite ? rewritePolicies(pols, names) : pols, realProbes, realAddr).expectations.map((e) => e.allowed);
      return { logical, onCluster };
    };
    for (const c of cases) {
      const v = verdicts(c, true);
      expect(v.onCluster, c.name).toEqual(v.logical);
    }
    // The check can fail: without the rewrite, the by-name case decides differently on the real names.
    const unmapped = verdicts(cases.at(-1)!, false);
    expect(unmapped.onCluster).not.toEqual(unmapped.logical);
  });
});

describe('probes', () => {
  const base = { target: { context: 'prod-eu' }, namespace: 'cb-abcde-x', pod: 'a', container: 'cont-80-tcp', ip: '10.244.2.7', port: 81, timeoutMs: 1000, dns: false };

  it('execs agnhost connect as upstream does, and dig for UDP to the DNS pod', () => {
    expect(planProbeCommand({ ...base, protocol: 'TCP' }).spec.argv).toEqual([
      'kubectl', '--context', 'prod-eu', 'exec', '-n', 'cb-abcde-x', 'a', '-c', 'cont-80-tcp', '--', '/agnhost', 'connect', '10.244.2.7:81', '--timeout=1s', '--protocol=tcp',
    ]);
    expect(planProbeCommand({ ...base, protocol: 'UDP', timeoutMs: 300 }).spec.argv.slice(-3)).toEqual(['10.244.2.7:81', '--timeout=0.3s', '--protocol=udp']);
    expect(planProbeCommand({ ...base, protocol: 'TCP', ip: 'fd00::7' }).spec.argv).toContain('[fd00::7]:81');
    const dns = planProbeCommand({ ...base, protocol: 'UDP', port: 53, ip: '10.244.0.3', dns: true, timeoutMs: 300 });
    expect(dns.tool).toBe('dig');
    expect(dns.spec.argv.slice(10)).toEqual(['dig', '+search', '+tries=1', '+time=1', '-p', '53', '@10.244.0.3', 'kubernetes.default']);
    expect(planProbeCommand({ ...base, protocol: 'TCP', port: 53, dns: true }).tool).toBe('agnhost');
  });

  // Outputs written from agnhost's source (test/images/agnhost/connect/connect.go: the fixed stderr prefixes and
  // exit 1), kubectl exec's "command terminated with exit code N" line, and dig's exit codes (0 answer, 9 no
  // reply) — not captured from a cluster.
  const result = (o: Partial<CommandResult>): CommandResult => ({ argv: ['kubectl'], exitCode: 0, stdout: '', stderr: '', durationMs: 120, timedOut: false, ...o });
  it.each([
    ['TCP connected', 'agnhost', result({}), { outcome: 'connected', reason: 'connected' }],
    ['TCP timeout', 'agnhost', result({ exitCode: 1, stderr: 'TIMEOUT\ncommand terminated with exit code 1\n' }), { outcome: 'blocked', reason: 'timeout' }],
    ['TCP refused', 'agnhost', result({ exitCode: 1, stderr: 'REFUSED\ncommand terminated with exit code 1\n' }), { outcome: 'blocked', reason: 'refused' }],
    ['UDP timeout', 'agnhost', result({ exitCode: 1, stderr: 'TIMEOUT: read udp 10.244.1.4:41234->10.244.2.5:81: i/o timeout\ncommand terminated with exit code 1\n' }), { outcome: 'blocked', reason: 'timeout' }],
    ['UDP refused (ICMP port unreachable)', 'agnhost', result({ exitCode: 1, stderr: 'REFUSED: read udp 10.244.1.4:41234->10.244.2.5:81: read: connection refused\ncommand terminated with exit code 1\n' }), { outcome: 'blocked', reason: 'refused' }],
    ['TCP rejected with icmp-host-prohibited', 'agnhost', result({ exitCode: 1, stderr: 'OTHER: dial tcp 10.244.2.5:80: connect: no route to host\ncommand terminated with exit code 1\n' }), { outcome: 'blocked', reason: 'unreachable (ICMP)' }],
    ['DNS answered (NXDOMAIN counts)', 'dig', result({ stdout: ';; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 4242\n' }), { outcome: 'connected', reason: 'dns answer' }],
    ['DNS no reply', 'dig', result({ exitCode: 9, stdout: ';; connection timed out; no servers could be reached\n', stderr: 'command terminated with exit code 9\n' }), { outcome: 'blocked', reason: 'timeout (no DNS answer)' }],
  ] as const)('%s', (_name, tool, r, want) => {
    expect(parseProbeResult(r, tool)).toEqual(want);
  });

  it.each([
    ['the container is missing', 'agnhost', result({ exitCode: 1, stderr: 'error: unable to upgrade connection: container not found ("cont-80-tcp")\n' })],
    ['the pod is gone', 'agnhost', result({ exitCode: 1, stderr: 'Error from server (NotFound): pods "a" not found\n' })],
    ['agnhost cannot parse its target', 'agnhost', result({ exitCode: 1, stderr: 'UNKNOWN: address 10.244.2.5: missing port in address\ncommand terminated with exit code 1\n' })],
    ['another network error', 'agnhost', result({ exitCode: 1, stderr: 'OTHER: dial tcp 10.244.2.5:80: socket: too many open files\ncommand terminated with exit code 1\n' })],
    ['the binary is not in the image', 'agnhost', result({ exitCode: 127, stderr: 'exec: "/agnhost": stat /agnhost: no such file or directory\n' })],
    ['kubectl itself timed out', 'agnhost', result({ exitCode: 143, timedOut: true })],
    ['dig failed internally', 'dig', result({ exitCode: 10, stderr: 'dig: couldn\'t get address for \'@\': failure\n' })],
  ] as const)('no verdict when %s: throws', (_name, tool, r) => {
    expect(() => parseProbeResult(r, tool)).toThrow(/no (probe )?verdict|did not return/);
  });
});

/** A cluster with the grid pods ready and two CoreDNS pods, on top of the shared healthy fake. */
function gridCluster(extra?: (a: string) => Partial<CommandResult> | undefined) {
  return fakeCluster((argv) => {
    const a = argv.join(' ');
    const o = extra?.(a);
    if (o) return o;
    const podItem = (name: string, ns: string, ip: string, node: string, ports: object[] = [], labels: object = {}) => ({
      metadata: { name, namespace: ns, labels },
      spec: { nodeName: node, containers: [{ ports }] },
      status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
    });
    const m = /-n (cb-abcde-[xyz]) get pods -o json/.exec(a);
    if (m) {
      const ns = m[1]!;
      return { stdout: JSON.stringify({ items: ['a', 'b', 'c'].map((n, i) => podItem(n, ns, `10.244.${(i % 2) + 1}.${10 * ('xyz'.indexOf(ns.at(-1)!) + 1) + i}`, i % 2 ? 'w2' : 'w1')) }) };
    }
    if (a.includes('get pods -l k8s-app=kube-dns -o json')) {
      const ports = [{ name: 'dns', containerPort: 53, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }, { name: 'metrics', containerPort: 9153, protocol: 'TCP' }];
      return { stdout: JSON.stringify({ items: [podItem('coredns-7db6d8ff4d-zzz', 'kube-system', '10.244.0.4', 'cp', ports), podItem('coredns-7db6d8ff4d-aaa', 'kube-system', '10.244.0.3', 'cp', ports)] }) };
    }
    return undefined;
  });
}

describe('K8sVerifyGrid on an existing cluster', () => {
  it('refuses without an explicit context or kubeconfig', async () => {
    await expect(clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', runner: new PlanRunner() })).rejects.toThrow(ClusterTargetError);
  });

  it('builds the grid on the named context, uses the real DNS pods, and deletes only its own namespaces and policies', async () => {
    const runner = gridCluster();
    const grid = await clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', context: 'prod-eu', runner, cleanupRunner: runner });
    const addr = await grid.up(workload);
    expect(addr.ips['x/a']).toBe('10.244.1.10');
    expect(addr.ips['kube-system/coredns']).toBe('10.244.0.3');
    expect(addr.nodeOf['kube-system/coredns']).toBe('cp');
    expect(addr.ips.ext1).toBe('198.51.100.240');
    const { modelState } = await grid.install({ policies: caseNamed('namespace-and-pod-selector-and').policies, peers: [] });
    expect(modelState).toEqual({ policiesApplied: 1, policyNamespaces: 'cb-abcde-x' });
    await grid.down();
    await grid.down(); // idempotent
    const cmds = runner.log.map((r) => r.argv);
    for (const a of cmds) expect(a.slice(0, 3)).toEqual(['kubectl', '--context', 'prod-eu']);
    // Grid pods on the first two usable nodes (workers first), the namespaces created (never adopted).
    const pods = runner.log.find((r) => r.purpose === 'create the grid pods')!.input!;
    expect(pods).toMatch(/values:\n\s+- w1\n/);
    expect(pods).toMatch(/values:\n\s+- w2\n/);
    const deletes = cmds.filter((a) => a.includes('delete'));
    // Policies deleted namespace by namespace (the run's own), never with -A.
    expect(deletes.map((a) => a.slice(3).join(' '))).toEqual([
      ...['x', 'y', 'z'].map((n) => `-n cb-abcde-${n} delete networkpolicies -l cni-bench/run=abcde --ignore-not-found --wait=true`),
      'delete namespace -l cni-bench/run=abcde --ignore-not-found --wait=true --timeout=180s',
    ]);
    // kube-system is only ever read.
    for (const a of cmds.filter((x) => x.includes('kube-system'))) expect(a).toContain('get');
    const applied = JSON.parse(runner.log.find((r) => r.argv.includes('--server-side'))!.input!) as { items: NetworkPolicy[] };
    expect(applied.items.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['cb-abcde-x/allow-y-b']);
  });

  it('probes through kubectl exec and reports a probe that gives no verdict as an error', async () => {
    const runner = gridCluster((a) => {
      if (a.includes('10.244.2.21:80')) return { exitCode: 1, stderr: 'TIMEOUT\ncommand terminated with exit code 1\n' };
      if (a.includes('-n cb-abcde-z') && a.includes('exec')) return { exitCode: 1, stderr: 'Error from server (NotFound): pods "a" not found\n' };
      return undefined;
    });
    const grid = await clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', context: 'prod-eu', runner, cleanupRunner: runner });
    await grid.up(workload);
    expect(await grid.probe({ from: 'x/a', to: 'y/a', protocol: 'TCP', port: 80 }, 1000)).toEqual({ outcome: 'connected', reason: 'connected' });
    expect(await grid.probe({ from: 'x/a', to: 'y/b', protocol: 'TCP', port: 80 }, 1000)).toEqual({ outcome: 'blocked', reason: 'timeout' });
    await expect(grid.probe({ from: 'z/a', to: 'x/a', protocol: 'TCP', port: 80 }, 1000)).rejects.toThrow(/no probe verdict/);
    await expect(grid.probe({ from: 'ext1', to: 'x/a', protocol: 'TCP', port: 80 }, 1000)).rejects.toThrow(/not a probe the kind\/cluster grid can make/);
    const exec = runner.log.find((r) => r.argv.includes('exec'))!.argv;
    expect(exec.slice(3)).toEqual(['exec', '-n', 'cb-abcde-x', 'a', '-c', 'cont-80-tcp', '--', '/agnhost', 'connect', '10.244.1.20:80', '--timeout=1s', '--protocol=tcp']);
    await grid.down();
  });

  it('stops when --cni contradicts the CNI the cluster runs, before creating anything', async () => {
    const runner = gridCluster();
    const grid = await clusterGrid('cluster', { cni: 'calico', runId: RUN_ID, outDir: '/r', context: 'prod-eu', runner, cleanupRunner: runner });
    await expect(grid.up(workload)).rejects.toThrow(/step detect-cni failed: --cni calico contradicts the cluster, which runs cilium/);
    await grid.down();
    expect(runner.log.some((r) => r.argv.includes('create') || r.argv.includes('delete'))).toBe(false);
  });

  it("creates a pod-less namespace a case's policy lives in (selects-no-pod), once, with the run label", async () => {
    const runner = gridCluster();
    const grid = await clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', context: 'prod-eu', runner, cleanupRunner: runner });
    await grid.up(workload);
    const c = caseNamed('selects-no-pod');
    await grid.install({ policies: c.policies, peers: [] });
    await grid.install({ policies: c.policies, peers: [] });
    const creates = runner.log.filter((r) => r.argv.includes('create') && r.input?.includes('cb-abcde-w'));
    expect(creates).toHaveLength(1);
    expect(creates[0]!.input).toContain('cni-bench/run: abcde');
    const applied = JSON.parse(runner.log.filter((r) => r.argv.includes('--server-side')).at(-1)!.input!) as { items: NetworkPolicy[] };
    expect(applied.items.map((p) => p.metadata.namespace)).toContain('cb-abcde-w');
    await grid.down();
  });

  it('--keep leaves the namespaces up and says how to remove them', async () => {
    const runner = gridCluster();
    const grid = await clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', context: 'prod-eu', runner, cleanupRunner: runner });
    await runVerify({ plane: grid, workload, cases: [], keep: true });
    expect(runner.log.some((r) => r.argv.includes('delete'))).toBe(false);
    expect(grid.keepInstructions().at(-1)).toBe('remove with: kubectl --context prod-eu delete namespace -l cni-bench/run=abcde');
  });
});

describe('dry-run plans', () => {
  it('plans a small cluster verify: bring-up, one case, one probe of each kind, teardown (snapshot)', async () => {
    const runner = new PlanRunner();
    const grid = await clusterGrid('cluster', { cni: 'cilium', runId: RUN_ID, outDir: '/r', context: 'prod-eu', runner, cleanupRunner: runner });
    // A small grid (x/a, y/a and the DNS pod) keeps the snapshot readable; the full one only has more pods.
    const small = { ...workload, namespaces: workload.namespaces.filter((n) => n.name !== 'z'), pods: workload.pods.filter((p) => ['x/a', 'y/a', 'kube-system/coredns'].includes(podId(p))) };
    const counts = await planVerify(grid, small, [caseNamed('egress-deny-with-dns')], 1000);
    expect(counts).toEqual({ 'egress-deny-with-dns': 12 });
    // Every manifest in the plan is one the schemas accept.
    for (const s of runner.specs.filter((x) => x.input)) {
      const docs = s.input!.trim().startsWith('{') ? (JSON.parse(s.input!) as { items: object[] }).items : (await import('yaml')).parseAllDocuments(s.input!).map((d) => d.toJS() as object);
      expect(() => validateManifests(docs)).not.toThrow();
    }
    expect(planText(runner.specs)).toMatchSnapshot();
  });

  it('plans kind: the cluster and CNI exactly as bench run --backend kind does, the grid on its workers, the cluster deleted', async () => {
    const runner = new PlanRunner();
    const grid = await clusterGrid('kind', { cni: 'calico', runId: RUN_ID, outDir: '/results/abcde', runner, cleanupRunner: runner, cacheDir: '/c', kubeconfigDir: '/run/kc' });
    await planVerify(grid, workload, [caseNamed('default-deny-ingress')], 1000);
    const argv = runner.specs.map((s) => s.argv.join(' '));
    expect(argv[0]).toBe('kind create cluster --name cb-abcde --config - --kubeconfig /run/kc/kubeconfig --wait 0s');
    expect(argv.some((a) => a.includes('tigera-operator.yaml'))).toBe(true);
    expect(argv.some((a) => a.includes('rollout status daemonset/calico-node'))).toBe(true);
    const pods = runner.specs.find((s) => s.purpose === 'create the grid pods')!.input!;
    expect(pods).toMatch(/values:\n\s+- cb-abcde-worker\n/);
    expect(pods).toMatch(/values:\n\s+- cb-abcde-worker2\n/);
    for (const a of argv.filter((x) => x.startsWith('kubectl'))) expect(a).toContain('--kubeconfig /run/kc/kubeconfig');
    expect(argv.at(-1)).toBe('kind delete cluster --name cb-abcde --kubeconfig /run/kc/kubeconfig');
  });
});

describe('bench verify --backend kind|cluster (command)', () => {
  const flags = { backend: 'cluster', cases: [], case: ['named-ports'], out: '/tmp/cb-verify-test', cni: 'calico' };

  it('refuses the cluster backend without a context, and --cni none on a real cluster', async () => {
    const { cmdVerify } = await import('../cli/commands/verify.js');
    await expect(cmdVerify({ ...flags })).rejects.toThrow(/--context: the cluster backend needs an explicit --context/);
    await expect(cmdVerify({ ...flags, backend: 'kind', cni: 'none' })).rejects.toThrow(/--cni: 'none' has no real CNI on kind/);
    await expect(cmdVerify({ ...flags, backend: 'local', dryRun: true })).rejects.toThrow(/--dry-run: only for --backend kind\|cluster/);
  });

  it('--dry-run prints the whole plan with its manifests and runs nothing', async () => {
    const { cmdVerify } = await import('../cli/commands/verify.js');
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    try {
      expect(await cmdVerify({ ...flags, context: 'kind-x', dryRun: true })).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(out).toMatch(/^# verify plan for run [a-z][a-z0-9]{4} on the cluster backend \(dry run: nothing was executed\)/);
    expect(out).toMatch(/# 1 cases, 306 probes in all \(named-ports: 306\)/);
    expect(out).toContain('# note: external hosts ext1/ext2 do not exist on kind/cluster');
    expect(out).toContain("kubectl --context kind-x create -f - <<'EOF'\napiVersion: v1\nkind: Namespace");
    expect(out).toMatch(/kubectl --context kind-x delete namespace -l cni-bench\/run=[a-z0-9]{5} /);
  });
});
