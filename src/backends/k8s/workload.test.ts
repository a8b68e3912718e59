// A replayed workload (--workload) on kind/cluster: which pods run (the cap, the order), what is left out
// (hostNetwork pods, flows an ipBlock over snapshot addresses decides), the manifests (valid, the run's own
// namespaces, the workload's labels and ports), and the data plane's commands on a scripted cluster, failures included.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../exec/runner.js';
import { runConfigSchema } from '../../config/schema.js';
import type { NetworkPolicy } from '../../policy/types.js';
import { loadWorkload } from '../../workload/load.js';
import { flowKey } from '../../workload/flows.js';
import { replayProbeFlows } from '../../workload/replay.js';
import type { Workload } from '../../workload/workload.js';
import { ClusterBackend } from '../cluster/backend.js';
import { createBackend } from '../factory.js';
import { gridNames, rewritePolicies } from './grid-names.js';
import { fakeCluster } from './test-support/cluster.js';
import { validateManifests } from './validate.js';
import { layoutOnCluster } from './workload-layout.js';
import { renderWorkloadNamespaces, renderWorkloadPods } from './workload-manifests.js';
import type { Manifest } from './yaml.js';

const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const REPLAY = loadWorkload(file('../../workload/fixtures/replay-cluster.json'));
const SMALL = loadWorkload(file('../../../scenarios/workloads/small.yaml'));
const RUN_ID = 'abcde';
const IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.52';
const allFlows = (w: typeof REPLAY) => replayProbeFlows(w, { seed: 1 }).flows;
const running = (w: Workload) => w.pods.filter((p) => p.presence === 'endpoint').map((p) => `${p.namespace}/${p.name}`);

describe('layoutOnCluster: which pods run, what is left out', () => {
  it('runs every pod-network pod under the cap, leaves hostNetwork pods and the flows an ipBlock over snapshot addresses decides', () => {
    const l = layoutOnCluster(REPLAY, allFlows(REPLAY), { seed: 1 });
    expect(running(l.workload)).toHaveLength(6);
    expect(running(l.workload)).not.toContain('kube-system/node-exporter-7fq2m');
    expect(l.leftOut.map((x) => flowKey(x.flow)).sort()).toEqual(['api/orders-0->db/postgres-0:5432/TCP', 'web/frontend-6c9f8b7d4-abcde->db/postgres-0:5432/TCP']);
    expect(l.workload.flows.length).toBe(allFlows(REPLAY).length - 2);
    expect(l.notes.join('\n')).toMatch(/1 hostNetwork pod left out \(kube-system\/node-exporter-7fq2m\)/);
    expect(l.notes.join('\n')).toMatch(/ipBlocks of db\/allow-worker-cidr cover snapshot pod addresses and are applied as written/);
    // The cluster assigns the addresses: none is carried over.
    expect(l.workload.pods.every((p) => p.ip === undefined)).toBe(true);
  });

  it('over the cap: the flows\' ends first, then a seeded choice of the others, the same for the same seed', () => {
    const flow = { from: 'shop/frontend-0', to: 'shop/db-0', port: 8443, protocol: 'TCP' as const };
    const a = layoutOnCluster(SMALL, [flow], { seed: 7, cap: 5 });
    const b = layoutOnCluster(SMALL, [flow], { seed: 7, cap: 5 });
    expect(running(a.workload)).toHaveLength(5);
    expect(running(a.workload)).toEqual(expect.arrayContaining(['shop/frontend-0', 'shop/db-0']));
    expect(running(b.workload)).toEqual(running(a.workload));
    expect(a.notes[0]).toMatch(/^5 of the 44 pod-network pods run \(cap 5\): the probed flows' ends, then a seeded choice \(seed 7\); the other 39 do not exist on the cluster/);
    // Without a cap problem the seed decides the others.
    const seeds = new Set([1, 2, 3, 4, 5].map((seed) => running(layoutOnCluster(SMALL, [flow], { seed, cap: 5 }).workload).join(',')));
    expect(seeds.size).toBeGreaterThan(1);
  });

  it('refuses a flow from a hostNetwork pod, more flow ends than the cap, a namespace too long to prefix', () => {
    const host = { from: 'kube-system/node-exporter-7fq2m', to: 'db/postgres-0', port: 5432, protocol: 'TCP' as const };
    expect(() => layoutOnCluster(REPLAY, [host], { seed: 1 })).toThrow(/kube-system\/node-exporter-7fq2m is a hostNetwork pod, which kind\/cluster leave out/);
    const flows = allFlows(SMALL).slice(0, 40);
    expect(() => layoutOnCluster(SMALL, flows, { seed: 1, cap: 3 })).toThrow(/distinct pods at their ends; kind\/cluster run at most 3 pods/);
    const long = 'n'.repeat(60);
    const w = { ...REPLAY, inventory: { ...REPLAY.inventory, namespaces: [...REPLAY.inventory.namespaces, { name: long, labels: {} }] } };
    expect(() => layoutOnCluster(w, [], { seed: 1 })).toThrow(/as the run's cb-<runId>-n+ it would be longer than Kubernetes' 63 characters/);
  });
});

describe('workload manifests', () => {
  const names = (w: Workload) => gridNames(RUN_ID, w, []);

  it('every namespace the run\'s own (kube-system too), the workload\'s labels copied but the name label, all valid', () => {
    const { workload } = layoutOnCluster(REPLAY, allFlows(REPLAY), { seed: 1 });
    const ns = renderWorkloadNamespaces(workload.namespaces, names(workload));
    const pods = renderWorkloadPods(workload.pods, names(workload), ['w1', 'w2'], IMAGE);
    const policies = rewritePolicies(workload.policies.policies, names(workload));
    expect(() => validateManifests([...ns, ...pods, ...policies])).not.toThrow();
    expect(ns.map((n) => n.metadata!.name)).toEqual(['cb-abcde-kube-system', 'cb-abcde-web', 'cb-abcde-api', 'cb-abcde-db', 'cb-abcde-monitoring']);
    expect(ns[1]!.metadata!.labels).toEqual({ team: 'web', 'cni-bench/run': RUN_ID, 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/warn': 'baseline', 'pod-security.kubernetes.io/audit': 'baseline' });
    expect(policies.find((p) => p.metadata.name === 'node-exporter-ingress')!.metadata.namespace).toBe('cb-abcde-kube-system');
    const dns = pods.find((p) => p.metadata!.name!.startsWith('coredns'))! as Manifest & { spec: { containers: Array<{ name: string; command: string[]; ports: object[] }> } };
    expect(dns.metadata!.namespace).toBe('cb-abcde-kube-system');
    expect(dns.metadata!.labels).toEqual({ 'k8s-app': 'kube-dns', 'pod-template-hash': '5d78c9869d' });
    expect(dns.spec.containers.map((c) => [c.name, c.command.join(' '), c.ports])).toEqual([
      ['cont-53-udp', '/agnhost serve-hostname --udp --http=false --port 53', [{ name: 'dns', containerPort: 53, protocol: 'UDP' }]],
      ['cont-53-tcp', '/agnhost serve-hostname --tcp --http=false --port 53', [{ name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }]],
    ]);
    expect(pods.some((p) => p.metadata!.name!.startsWith('node-exporter'))).toBe(false);
  });

  it('rewrites namespaceSelectors on kubernetes.io/metadata.name to the prefixed names; the generated shape validates', () => {
    const { workload } = layoutOnCluster(SMALL, allFlows(SMALL), { seed: 1 });
    const policies = rewritePolicies(workload.policies.policies, names(workload));
    const pods = renderWorkloadPods(workload.pods, names(workload), ['w1', 'w2'], IMAGE);
    expect(() => validateManifests([...renderWorkloadNamespaces(workload.namespaces, names(workload)), ...pods, ...policies])).not.toThrow();
    const dns = policies.find((p) => p.metadata.namespace === 'cb-abcde-shop' && p.metadata.name === 'allow-dns')!;
    expect(dns.spec.egress![0]!.to![0]!.namespaceSelector).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': 'cb-abcde-kube-system' } });
    const text = JSON.stringify(policies);
    for (const ns of SMALL.inventory.namespaces) expect(text).not.toContain(`"kubernetes.io/metadata.name":"${ns.name}"`);
  });

  it('a pod without ports gets an idle container to probe from; SCTP ports are served by agnhost porter', () => {
    const base = { namespace: 'a', labels: { app: 'x' }, node: 0, presence: 'endpoint' as const, role: 'both' as const };
    const pods = renderWorkloadPods(
      [
        { ...base, name: 'client', ports: [] },
        { ...base, name: 'sctp', ports: [{ containerPort: 9999, protocol: 'SCTP' }] },
      ],
      gridNames(RUN_ID, { namespaces: [{ name: 'a', labels: {} }] }, []),
      ['w1'],
      IMAGE,
    ) as Array<Manifest & { spec: { containers: Array<{ name: string; command: string[]; env?: object[] }> } }>;
    expect(() => validateManifests(pods)).not.toThrow();
    expect(pods[0]!.spec.containers.map((c) => [c.name, c.command])).toEqual([['cont-idle', ['/agnhost', 'pause']]]);
    expect(pods[1]!.spec.containers[0]).toMatchObject({ name: 'cont-9999-sctp', command: ['/agnhost', 'porter'], env: [{ name: 'SERVE_SCTP_PORT_9999', value: 'foo' }] });
  });
});

/** A cluster that runs the workload: each run namespace's pods ready with an address. */
function workloadCluster(w: Workload, extra?: (a: string) => Partial<CommandResult> | undefined) {
  let n = 10;
  return fakeCluster((argv) => {
    const a = argv.join(' ');
    const o = extra?.(a);
    if (o) return o;
    const m = /-n cb-abcde-(\S+) get pods -o json/.exec(a);
    if (!m) return undefined;
    const items = w.pods
      .filter((p) => p.namespace === m[1] && p.presence === 'endpoint' && !p.hostNetwork)
      .map((p) => ({ metadata: { name: p.name, namespace: `cb-abcde-${p.namespace}` }, spec: { nodeName: 'w1', containers: [] }, status: { phase: 'Running', podIP: `10.244.1.${n++}`, conditions: [{ type: 'Ready', status: 'True' }] } }));
    return { stdout: JSON.stringify({ items }) };
  });
}

const plane = (runner: ReturnType<typeof fakeCluster>) =>
  createBackend({ config: runConfigSchema.parse({ cni: 'cilium', backend: 'cluster', context: 'prod-eu' }), backend: 'cluster', runId: RUN_ID, shape: 'cluster', runner, cleanupRunner: runner, outDir: '/r' });

describe('a replayed workload on an existing cluster (scripted)', () => {
  it('creates its namespaces and pods, applies the policies in server-side batches, probes by exec, deletes only its namespaces', async () => {
    const { workload } = layoutOnCluster(REPLAY, allFlows(REPLAY), { seed: 1 });
    // 120 policies: two batches of at most 100, as the benchmark's are applied.
    const many: NetworkPolicy[] = Array.from({ length: 120 }, (_, i) => ({ ...workload.policies.policies[i % 7]!, metadata: { ...workload.policies.policies[i % 7]!.metadata, name: `p-${i}` } }));
    const runner = workloadCluster(workload);
    const p = await plane(runner);
    const fitted = p.fit(workload);
    const addr = await p.up(fitted);
    expect(addr.ips['db/postgres-0']).toMatch(/^10\.244\.1\.\d+$/);
    const { modelState } = await p.install({ policies: many, peers: [] });
    expect(modelState).toMatchObject({ policiesApplied: 120, applyBatches: 2 });
    expect(await p.probe({ from: 'web/frontend-6c9f8b7d4-abcde', to: 'db/postgres-0', port: 5432, protocol: 'TCP' }, 1000)).toEqual({ outcome: 'connected', reason: 'connected' });
    await p.down();
    const cmds = runner.log.map((r) => r.argv.slice(3).join(' '));
    const applies = runner.log.filter((r) => r.argv.includes('--server-side'));
    expect(applies.map((r) => (JSON.parse(r.input!) as { items: unknown[] }).items.length)).toEqual([100, 20]);
    const exec = cmds.find((c) => c.startsWith('exec'))!;
    expect(exec).toMatch(/^exec -n cb-abcde-web frontend-6c9f8b7d4-abcde -c cont-8080-tcp -- \/agnhost connect 10\.244\.1\.\d+:5432 --timeout=1s --protocol=tcp$/);
    // The cluster's own kube-system is never written to; the workload's is cb-abcde-kube-system.
    for (const c of cmds) expect(c).not.toMatch(/(^|\s)kube-system/);
    expect(cmds.filter((c) => c.includes('delete'))).toEqual(['delete namespace -l cni-bench/run=abcde --ignore-not-found --wait=true --timeout=180s']);
  });

  it('a failed apply stops with the step and kubectl\'s words, and the namespaces are still deleted on the way out', async () => {
    const { workload } = layoutOnCluster(REPLAY, allFlows(REPLAY), { seed: 1 });
    const runner = workloadCluster(workload, (a) => (a.includes('--server-side') ? { exitCode: 1, stderr: 'Error from server (Forbidden): networkpolicies.networking.k8s.io is forbidden\n' } : undefined));
    const p = await plane(runner);
    await p.up(p.fit(workload));
    await expect(p.install(workload.policies)).rejects.toThrow(/^step apply-policies failed: apply the workload's policies, batch 1\/1 \(8\).*Forbidden/s);
    await p.down();
    expect(runner.log.at(-1)!.argv.slice(3).join(' ')).toBe('delete namespace -l cni-bench/run=abcde --ignore-not-found --wait=true --timeout=180s');
  });

  it('a pod that never becomes ready stops the bring-up; teardown removes what was created', async () => {
    const { workload } = layoutOnCluster(REPLAY, allFlows(REPLAY), { seed: 1 });
    const runner = workloadCluster(workload, (a) => (a.includes('-n cb-abcde-db wait') ? { exitCode: 1, stderr: 'error: timed out waiting for the condition on pods/postgres-0\n' } : undefined));
    const p = await plane(runner);
    await expect(p.up(p.fit(workload))).rejects.toThrow(/^step wait-workloads-ready failed: wait for the pods in cb-abcde-db.*timed out/s);
    await p.down();
    expect(runner.log.some((r) => r.argv.slice(3).join(' ').startsWith('delete namespace -l cni-bench/run=abcde'))).toBe(true);
  });

  it('bench run: fortio serves the measured port and loads it from the source pod; other flows are refused', async () => {
    const flow = { from: 'web/frontend-6c9f8b7d4-abcde', to: 'api/orders-0', port: 9000, protocol: 'TCP' as const };
    const { workload } = layoutOnCluster(REPLAY, [flow], { seed: 1 });
    const w = { ...workload, flows: workload.flows.map((f) => ({ ...f, measured: true })) };
    const runner = workloadCluster(w);
    const p = await plane(runner);
    await p.up(w);
    const { modelState } = await p.install(w.policies);
    const settings = { samples: 12, warmup: 0, concurrency: 1, timeoutMs: 1000 };
    const crr = await p.measure(flow, 'crr', settings);
    expect(crr.samplesNs.length).toBeGreaterThan(0);
    expect(crr.cpu).toBeNull();
    expect(modelState.crrSamplesSource).toBe('access-log');
    const pods = runner.log.find((r) => r.purpose?.startsWith("create the workload's"))!.input!;
    // The destination's measured port is fortio's HTTP echo, every other fortio listener off; the source has a fortio client.
    expect(pods).toMatch(/name: cont-9000-tcp\n\s+image: fortio\/fortio:[\d.]+\n[\s\S]*?- -http-port\n\s+- "9000"\n\s+- -grpc-port\n\s+- disabled/);
    expect(pods).toMatch(/name: fortio\n\s+image: fortio\/fortio/);
    const load = runner.log.find((r) => r.purpose?.startsWith('measure crr'))!.argv.slice(3).join(' ');
    expect(load).toMatch(/^exec -n cb-abcde-web frontend-6c9f8b7d4-abcde -c fortio -- \/usr\/bin\/fortio load -n 12 .* -keepalive=false .* http:\/\/10\.244\.1\.\d+:9000\/$/);
    await expect(p.measure({ ...flow, to: 'db/postgres-0', port: 5432 }, 'crr', settings)).rejects.toThrow(/not a measured TCP flow of the workload/);
    await p.down();
  });

  it('bench run waits until a flow the policies deny is blocked, and stops when it never is', async () => {
    const flow = { from: 'web/frontend-6c9f8b7d4-abcde', to: 'api/orders-0', port: 9000, protocol: 'TCP' as const };
    const { workload, notes } = layoutOnCluster(REPLAY, [flow], { seed: 1, barrier: true });
    // web/allow-api admits only the api namespace and app=orders: the first pod in order (coredns) is denied.
    expect(workload.barrier).toEqual({ from: 'kube-system/coredns-5d78c9869d-x2k4p', to: 'web/frontend-6c9f8b7d4-abcde', port: 8080, protocol: 'TCP' });
    expect(notes.join('\n')).toMatch(/measured once the policies are enforced: kube-system\/coredns-5d78c9869d-x2k4p->web\/frontend-6c9f8b7d4-abcde:8080\/TCP/);
    const w = { ...workload, flows: workload.flows.map((f) => ({ ...f, measured: true })) };
    let barrierProbes = 0;
    const blockedOnThird = workloadCluster(w, (a) => (a.includes(':8080 --timeout') && ++barrierProbes >= 3 ? { exitCode: 1, stderr: 'TIMEOUT\n' } : undefined));
    const opts = { config: runConfigSchema.parse({ cni: 'cilium', backend: 'cluster', context: 'prod-eu' }), runId: RUN_ID, shape: 'cluster' as const, outDir: '/r', probeIntervalMs: 0 };
    const p = new ClusterBackend({ ...opts, runner: blockedOnThird, cleanupRunner: blockedOnThird });
    await p.up(w);
    const { modelState } = await p.install(w.policies);
    expect(modelState).toMatchObject({ enforcementBarrier: 'kube-system/coredns-5d78c9869d-x2k4p -> web/frontend-6c9f8b7d4-abcde:8080 blocked (timeout)', enforcementProbes: 3 });
    await p.down();
    const never = workloadCluster(w);
    const q = new ClusterBackend({ ...opts, runner: never, cleanupRunner: never, enforcementTimeoutMs: 0 });
    await q.up(w);
    await expect(q.install(w.policies)).rejects.toThrow(/^step wait-enforcement failed: after 1 probes kube-system\/coredns-5d78c9869d-x2k4p -> web\/frontend-6c9f8b7d4-abcde:8080 still connects, though the policies deny it/);
    await q.down();
  });
});
