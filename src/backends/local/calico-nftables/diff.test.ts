import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { modelSettings, type ModelContext } from '../types.js';
import { planTopology } from '../topology.js';
import { compileNftNode, endpointChainName, policyChainName, selectorSetName } from './compile.js';
import { diffNodePlans } from './diff.js';
import { calicoNftablesModel } from './model.js';

function pod(name: string, ip: string, node = 'n0'): PodInfo {
  return { name, namespace: 'default', labels: {}, ip, node, ports: [] };
}
const server = pod('server', '10.244.0.2');
const client = pod('client', '10.244.0.3');
const other = pod('other', '10.244.0.4');
const ifaceOf = (p: PodInfo): string => `cali${p.name.padStart(11, '0').slice(-11)}`;
const tcp = (port: number): PortMatch => ({ protocol: 'TCP', from: port, to: port });
const pods = (...ps: PodInfo[]): PeerMatch => ({ kind: 'pods', pods: ps });
const allow = (name: string, peers: PeerMatch[], ports: PortMatch[] = [tcp(8080)]): ResolvedPolicy => ({ policy: `default/${name}`, rules: [{ peers, ports }] });
const ep = (p: PodInfo, ingress: ResolvedPolicy[] = []): EndpointPolicy => ({ pod: p, ingress: { isolated: ingress.length > 0, policies: ingress }, egress: { isolated: false, policies: [] } });
const fillers = (n: number): ResolvedPolicy[] => Array.from({ length: n }, (_, i) => allow(`f${String(i).padStart(3, '0')}`, [pods(pod(`peer${i}`, `10.245.0.${i + 1}`, 'v'))], [tcp(10000 + i)]));
const compile = (eps: EndpointPolicy[]) => compileNftNode('n0', eps, ifaceOf);
const lines = (t: string): string[] => t.trim().split('\n').filter(Boolean);

describe('diffNodePlans', () => {
  const base = [ep(server, [...fillers(10), allow('zz-client', [pods(client)])]), ep(client), ep(other)];

  it('writes nothing when nothing changed', () => {
    const d = diffNodePlans(compile(base), compile(base));
    expect(d.transaction).toBe('');
    expect(Object.values(d.counts).every((v) => v === 0)).toBe(true);
  });

  it('a peer joining a selector is one set element add, no chain rewritten', () => {
    const joined = [ep(server, [...fillers(10), allow('zz-client', [pods(client, other)])]), ep(client), ep(other)];
    const d = diffNodePlans(compile(base), compile(joined));
    const set = selectorSetName('default/zz-client', 'ingress', 0, 0);
    expect(lines(d.transaction)).toEqual([`add element ip calico ${set} { 10.244.0.4 }`]);
    expect(d.counts).toMatchObject({ setElementsAdded: 1, chainsRewritten: 0, chainsAdded: 0 });
    // and leaving it is one delete
    expect(lines(diffNodePlans(compile(joined), compile(base)).transaction)).toEqual([`delete element ip calico ${set} { 10.244.0.4 }`]);
  });

  it('a new allow policy adds its chain and set and rewrites only the chain that jumps to it', () => {
    const added = [ep(server, [...fillers(10), allow('zz-client', [pods(client)]), allow('zzz-other', [pods(other)])]), ep(client), ep(other)];
    const before = compile(base);
    const after = compile(added);
    const d = diffNodePlans(before, after);
    const pi = policyChainName('ingress', 'default/zzz-other');
    const t = lines(d.transaction);
    expect(t).toContain(`add chain ip calico ${pi}`);
    expect(t.filter((l) => l.startsWith('add set'))).toHaveLength(1);
    // the group chain is content-named (Felix hashes its members), so the group is a new chain, the old one deleted,
    // and the endpoint chain's jump is rewritten
    expect(d.counts.chainsRewritten).toBe(1);
    expect(t).toContain(`flush chain ip calico ${endpointChainName('ingress', ifaceOf(server))}`);
    expect(d.counts.chainsAdded).toBe(2);
    expect(d.counts.chainsDeleted).toBe(1);
    expect(d.counts.rulesWritten).toBeLessThan(after.counts.rules / 2);
    // deletions come last, after every reference to the deleted chain is gone
    const del = t.findIndex((l) => l.startsWith('delete chain'));
    expect(del).toBeGreaterThan(t.findLastIndex((l) => l.startsWith('add rule')));
  });

  it('removing the client allow deletes its chain and set and rewrites the group', () => {
    const removed = [ep(server, fillers(10)), ep(client), ep(other)];
    const d = diffNodePlans(compile(base), compile(removed));
    expect(lines(d.transaction)).toContain(`delete chain ip calico ${policyChainName('ingress', 'default/zz-client')}`);
    expect(lines(d.transaction)).toContain(`delete set ip calico ${selectorSetName('default/zz-client', 'ingress', 0, 0)}`);
    expect(d.counts).toMatchObject({ setsDeleted: 1, chainsDeleted: 2, chainsAdded: 1 });
  });

  it('a new pod gets its endpoint chains and dispatch map elements', () => {
    const extra = pod('newpod', '10.244.0.9');
    const d = diffNodePlans(compile(base), compile([...base, ep(extra, [allow('zz-client', [pods(client)])])]));
    const t = lines(d.transaction);
    expect(t).toContain(`add chain ip calico ${endpointChainName('ingress', ifaceOf(extra))}`);
    expect(t).toContain(`add element ip calico filter-cali-to-wl-dispatch { "${ifaceOf(extra)}" : goto ${endpointChainName('ingress', ifaceOf(extra))} }`);
    expect(d.counts.mapElementsChanged).toBe(2);
    // pods with the same labels do not change a selector: the existing chains stay as they are
    expect(d.counts).toMatchObject({ chainsRewritten: 0, chainsDeleted: 0 });
    // map elements after the chains they point at
    expect(t.findIndex((l) => l.includes('filter-cali-to-wl-dispatch {'))).toBeGreaterThan(t.findIndex((l) => l.startsWith(`add chain ip calico ${endpointChainName('ingress', ifaceOf(extra))}`)));
  });
});

describe('calicoNftablesModel', () => {
  const topology = planTopology({ runId: 'k3f9a', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali' });
  const [clientPod, serverPod] = topology.pods;
  const info = (p: typeof clientPod): PodInfo => ({ name: p!.name, namespace: p!.namespace, labels: p!.labels, ip: p!.ip, node: p!.node.name, ports: [] });
  const ctxFor = (runner: FakeRunner, ingress: ResolvedPolicy[]): ModelContext => ({
    runner,
    cleanupRunner: runner,
    topology,
    inventory: { namespaces: [], pods: [] },
    endpoints: [ep(info(clientPod)), ep(info(serverPod), ingress)],
    settings: modelSettings(),
  });

  it('installs one nft -f transaction per node namespace and reports the model state', async () => {
    const runner = new FakeRunner();
    const state = await calicoNftablesModel.install!(ctxFor(runner, [...fillers(5), allow('zz', [pods(info(clientPod))])]));
    expect(runner.log.map((c) => c.argv.join(' '))).toEqual(['ip netns exec cb-k3f9a-n0 nft -f -', 'ip netns exec cb-k3f9a-n1 nft -f -']);
    expect(runner.log[1]!.input).toContain('filter-cali-gi-');
    expect(state).toMatchObject({ felixVersion: 'v3.30.7', sets: 6, setElements: 6, mapElements: 4 });
    expect(state.rulesTraversedPerPolicy).toBeCloseTo((2 + 6 + 1 + 6) / 6, 3);
    expect(typeof state.nftApplyMs).toBe('number');
  });

  it('update writes only the difference, and only on the node that changed', async () => {
    const runner = new FakeRunner();
    await calicoNftablesModel.install!(ctxFor(runner, fillers(5)));
    runner.log.length = 0;
    const report = await calicoNftablesModel.update!(ctxFor(runner, [...fillers(5), allow('zz', [pods(info(clientPod))])]));
    expect(runner.log).toHaveLength(1);
    expect(runner.log[0]!.argv).toEqual(['ip', 'netns', 'exec', 'cb-k3f9a-n1', 'nft', '-f', '-']);
    expect(runner.log[0]!.input).not.toContain('delete table');
    expect(report.changed).toMatchObject({ chainsAdded: 2, chainsDeleted: 1, setsAdded: 1 });
    expect(report.agentMs).toBeGreaterThanOrEqual(report.compileMs);
    expect(report.state.sets).toBe(6);
  });

  it('update before install says what to do', async () => {
    const other = planTopology({ runId: 'zz999', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali' });
    const runner = new FakeRunner();
    await expect(calicoNftablesModel.update!({ ...ctxFor(runner, []), topology: other })).rejects.toThrow(/call install\(\) first/);
  });
});
