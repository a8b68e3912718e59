import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { modelSettings, type ModelContext } from '../types.js';
import { planTopology } from '../topology.js';
import { MAX_SET_DELETIONS_PER_WRITE, planSetDeletions, planSetWrite, planTableWrite } from './apply.js';
import { compileNftNode, endpointChainName, policyChainName, selectorSetName, type NftNodePlan } from './compile.js';
import { parseTableListing, type ListedChain } from './listing.js';
import { calicoNftablesModel } from './model.js';
import { renderTableReset, ruleHashes } from './render.js';

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
const fillers = (n: number): ResolvedPolicy[] => Array.from({ length: n }, (_, i) => allow(`f${String(i).padStart(3, '0')}`, [pods(pod(`peer${i}`, `10.245.${(i + 1) >> 8}.${(i + 1) & 255}`, 'v'))], [tcp(10000 + i)]));
const compile = (eps: EndpointPolicy[]) => compileNftNode('n0', eps, ifaceOf);
const lines = (t: string | undefined): string[] => (t ?? '').trim().split('\n').filter(Boolean);

/** The table as `nft --json list` would show `plan` written, handles counted from `firstHandle`. */
function listingOf(plan: NftNodePlan, firstHandle = 1): Map<string, ListedChain> {
  let h = firstHandle;
  return new Map(plan.chains.map((c) => [c.name, { hashes: ruleHashes(c), handles: c.rules.map(() => h++) }]));
}
/** The same as nft --json prints it: the chain listing and the table listing. */
function jsonListingOf(plan: NftNodePlan): { chains: string; table: string } {
  const listed = listingOf(plan);
  const meta = { metainfo: { version: '1.0.6', json_schema_version: 1 } };
  const chains = [...listed.keys()].map((name, i) => ({ chain: { family: 'ip', table: 'calico', name, handle: 10_000 + i } }));
  const rules = [...listed.entries()].flatMap(([chain, l]) => l.hashes.map((hash, i) => ({ rule: { family: 'ip', table: 'calico', chain, handle: l.handles![i], comment: `cali:${hash}; x`, expr: [] } })));
  return { chains: JSON.stringify({ nftables: [meta, ...chains, { chain: { family: 'ip', table: 'other', name: 'x', handle: 1 } }] }), table: JSON.stringify({ nftables: [meta, { table: { family: 'ip', name: 'calico' } }, ...chains, ...rules] }) };
}

describe('the writes Felix makes', () => {
  const base = [ep(server, [...fillers(10), allow('zz-client', [pods(client)])]), ep(client), ep(other)];

  it('installs a small node in two transactions: sets (with the interval flag) first, then the table (snapshot)', async () => {
    const plan = compile([ep(server, [...fillers(2), allow('zz-client', [pods(client, other)])]), ep(client)]);
    const sets = planSetWrite(undefined, plan, 'interval', renderTableReset('k3f9a'));
    const table = planTableWrite(undefined, plan, new Map(), 'interval');
    expect(lines(sets.write?.text).filter((l) => l.startsWith('add set'))).toHaveLength(3);
    for (const l of lines(sets.write?.text).filter((x) => x.startsWith('add set'))) expect(l).toMatch(/\{ type ipv4_addr ; flags interval ; \}$/);
    expect(sets.write?.text).not.toContain('add chain');
    expect(table.write?.text).not.toContain('add element ip calico cali40s');
    await expect(`# sets\n${sets.write!.text}# table\n${table.write!.text}`).toMatchFileSnapshot('__snapshots__/install-small.nft');
    // the hash variant: the same sets without the flag
    expect(planSetWrite(undefined, plan, 'hash').write!.text).not.toContain('flags interval');
    expect(sets.write!.work.intervalElements).toBe(4);
  });

  it('writes nothing when nothing changed', () => {
    const plan = compile(base);
    expect(planSetWrite(plan, plan, 'interval').write).toBeUndefined();
    expect(planTableWrite(plan, plan, listingOf(plan), 'interval').write).toBeUndefined();
    expect(planSetDeletions(plan, plan)).toEqual([]);
  });

  it('a peer joining a selector is one set element add in the set transaction; the table is not written', () => {
    const joined = compile([ep(server, [...fillers(10), allow('zz-client', [pods(client, other)])]), ep(client), ep(other)]);
    const before = compile(base);
    const set = selectorSetName('default/zz-client', 'ingress', 0, 0);
    expect(lines(planSetWrite(before, joined, 'interval').write?.text)).toEqual([`add element ip calico ${set} { 10.244.0.4 }`]);
    expect(planTableWrite(before, joined, listingOf(before), 'interval').write).toBeUndefined();
    expect(lines(planSetWrite(joined, before, 'interval').write?.text)).toEqual([`delete element ip calico ${set} { 10.244.0.4 }`]);
    // beside interval sets, nft reads every set's elements before it adds one: the write's cost counts that; hash sets do not
    expect(planSetWrite(before, joined, 'interval').write!.work.nameComparisons).toBeGreaterThanOrEqual(before.sets.length ** 2);
    expect(planSetWrite(before, joined, 'hash').write!.work.nameComparisons).toBeLessThan(before.sets.length ** 2);
  });

  it('a new allow: its set in the set transaction; in the table, new chains, the changed rule replaced by handle, the old group deleted last', () => {
    const before = compile(base);
    const after = compile([ep(server, [...fillers(10), allow('zz-client', [pods(client)]), allow('zzz-other', [pods(other)])]), ep(client), ep(other)]);
    const sets = planSetWrite(before, after, 'interval');
    const newSet = selectorSetName('default/zzz-other', 'ingress', 0, 0);
    expect(lines(sets.write?.text)).toEqual([`add set ip calico ${newSet} { type ipv4_addr ; flags interval ; }`, `add element ip calico ${newSet} { 10.244.0.4 }`]);
    const listed = listingOf(before);
    const table = planTableWrite(before, after, listed, 'interval');
    const t = lines(table.write?.text);
    const pi = policyChainName('ingress', 'default/zzz-other');
    expect(t).toContain(`add chain ip calico ${pi}`);
    // the set a written chain matches is declared again in the same transaction, before the rule naming it
    expect(t.findIndex((l) => l.startsWith(`add set ip calico ${newSet}`))).toBeLessThan(t.findIndex((l) => l.startsWith(`add rule ip calico ${pi} `)));
    // the endpoint chain's jump to the (content-named) group chain is replaced in place, by the listed handle
    const tw = endpointChainName('ingress', ifaceOf(server));
    // — and every rule after it, since each rule's hash chains in the one before (Felix replaces those too)
    const replaced = t.filter((l) => l.startsWith(`replace rule ip calico ${tw} handle `)).map((l) => Number(/handle (\d+)/.exec(l)![1]));
    const first = listed.get(tw)!.hashes.findIndex((h, i) => h !== ruleHashes(after.chains.find((c) => c.name === tw)!)[i]);
    expect(t.find((l) => l.startsWith(`replace rule ip calico ${tw} handle ${replaced[0]} `))).toMatch(/ jump filter-cali-gi-/);
    expect(replaced).toEqual(listed.get(tw)!.handles!.slice(first));
    expect(t).not.toContain(`flush chain ip calico ${tw}`);
    expect(table.counts).toMatchObject({ chainsAdded: 2, chainsRewritten: 1, chainsDeleted: 1 });
    expect(t.findIndex((l) => l.startsWith('delete chain'))).toBeGreaterThan(t.findLastIndex((l) => l.startsWith('add rule') || l.startsWith('replace rule')));
    // a replaced rule makes nft read every set's elements before it applies the transaction: its timeout counts that
    expect(table.write!.work.nameComparisons).toBeGreaterThanOrEqual(before.sets.length ** 2);
  });

  it('removing the client allow deletes its chain, and its set after the table stopped naming it', () => {
    const before = compile(base);
    const removed = compile([ep(server, fillers(10)), ep(client), ep(other)]);
    const table = planTableWrite(before, removed, listingOf(before), 'interval');
    expect(lines(table.write?.text)).toContain(`delete chain ip calico ${policyChainName('ingress', 'default/zz-client')}`);
    expect(table.counts).toMatchObject({ chainsDeleted: 2, chainsAdded: 1 });
    const deletions = planSetDeletions(before, removed);
    expect(deletions.map((d) => lines(d.write.text))).toEqual([[`delete set ip calico ${selectorSetName('default/zz-client', 'ingress', 0, 0)}`]]);
  });

  it('a chain the listing shows out of sync is rewritten though the plan did not change (loadDataplaneState)', () => {
    const plan = compile(base);
    const listed = listingOf(plan);
    const tw = endpointChainName('ingress', ifaceOf(server));
    listed.get(tw)!.hashes[4] = 'tampered00000000';
    const t = lines(planTableWrite(plan, plan, listed, 'interval').write?.text);
    expect(t).toEqual([expect.stringMatching(new RegExp(`^replace rule ip calico ${tw} handle ${listed.get(tw)!.handles![4]} `))]);
  });

  it('a new pod gets its endpoint chains, and its dispatch map elements after them', () => {
    const before = compile(base);
    const extra = pod('newpod', '10.244.0.9');
    const table = planTableWrite(before, compile([...base, ep(extra, [allow('zz-client', [pods(client)])])]), listingOf(before), 'interval');
    const t = lines(table.write?.text);
    const tw = endpointChainName('ingress', ifaceOf(extra));
    expect(t).toContain(`add chain ip calico ${tw}`);
    expect(t.findIndex((l) => l === `add element ip calico filter-cali-to-wl-dispatch { "${ifaceOf(extra)}" : goto ${tw} }`)).toBeGreaterThan(t.findIndex((l) => l === `add chain ip calico ${tw}`));
    expect(table.counts).toMatchObject({ mapElementsChanged: 2, chainsRewritten: 0, chainsDeleted: 0 });
  });

  it('deletes unused sets at most 500 per transaction', () => {
    const many = compile([ep(server, fillers(MAX_SET_DELETIONS_PER_WRITE + 20)), ep(client)]);
    const none = compile([ep(server), ep(client)]);
    expect(planSetDeletions(many, none).map((d) => d.sets)).toEqual([MAX_SET_DELETIONS_PER_WRITE, 20]);
  });

  it('reads the listing as knftables does: chains of the calico table, rule hashes from comments, handles', () => {
    const plan = compile(base);
    const { chains, table } = jsonListingOf(plan);
    const listed = parseTableListing(chains, table);
    expect([...listed.keys()]).toEqual(plan.chains.map((c) => c.name));
    expect(listed).toEqual(listingOf(plan));
    expect(parseTableListing('', '')).toEqual(new Map());
    expect(() => parseTableListing('{', '')).toThrow(/not JSON/);
  });
});

describe('calicoNftablesModel', () => {
  const topology = planTopology({ runId: 'k3f9a', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali' });
  const [clientPod, serverPod] = topology.pods;
  const info = (p: typeof clientPod): PodInfo => ({ name: p!.name, namespace: p!.namespace, labels: p!.labels, ip: p!.ip, node: p!.node.name, ports: [] });
  const ctxFor = (runner: FakeRunner, ingress: ResolvedPolicy[], settings = modelSettings()): ModelContext => ({
    runner,
    cleanupRunner: runner,
    topology,
    inventory: { namespaces: [], pods: [] },
    endpoints: [ep(info(clientPod)), ep(info(serverPod), ingress)],
    settings,
  });
  /** A kernel stand-in: answers each listing with what the last table write on that node left. */
  function fakeKernel(): FakeRunner {
    const tables = new Map<string, NftNodePlan>();
    const runner: FakeRunner = new FakeRunner((argv) => {
      const netns = argv[3]!;
      if (!argv.includes('--json')) return undefined;
      const plan = tables.get(netns);
      if (!plan) return { exitCode: 1, stderr: 'Error: No such file or directory' };
      return { stdout: argv.includes('chains') ? jsonListingOf(plan).chains : jsonListingOf(plan).table };
    });
    return Object.assign(runner, { tables });
  }
  const commands = (r: FakeRunner): string[] => r.log.map((c) => c.argv.slice(3).join(' '));

  it('installs each node as Felix does: set transaction, table listing, table transaction', async () => {
    const runner = new FakeRunner();
    const state = await calicoNftablesModel.install!(ctxFor(runner, [...fillers(5), allow('zz', [pods(info(clientPod))])]));
    const node = (ns: string) => [`${ns} nft -f -`, `${ns} nft --json list chains ip`, `${ns} nft --json list table ip calico`, `${ns} nft -f -`];
    expect(commands(runner)).toEqual([...node('cb-k3f9a-n0'), ...node('cb-k3f9a-n1')]);
    expect(runner.log[4]!.input).toContain('add table ip calico { comment "cni-bench run k3f9a');
    expect(runner.log[4]!.input).toContain('flags interval');
    expect(runner.log[7]!.input).toContain('filter-cali-gi-');
    expect(state).toMatchObject({ felixVersion: 'v3.30.7', nftSelectorSets: 'interval', sets: 6, setElements: 6, mapElements: 4, nftCallsOverFelixTimeout: 0 });
    expect(state.rulesTraversedPerPolicy).toBeCloseTo((2 + 6 + 1 + 6) / 6, 3);
    for (const k of ['nftApplyMs', 'nftSetWriteMs', 'nftListMs', 'nftTableWriteMs']) expect(typeof state[k]).toBe('number');
    const hash = await calicoNftablesModel.install!(ctxFor(new FakeRunner(), fillers(1), modelSettings({ nftSelectorSets: 'hash' })));
    expect(hash.nftSelectorSets).toBe('hash');
  });

  it('re-lists the table before writing to it again after a write, never twice without one (post-write invalidation)', async () => {
    const runner = fakeKernel() as FakeRunner & { tables: Map<string, NftNodePlan> };
    const ctx = (ingress: ResolvedPolicy[]) => ctxFor(runner, ingress);
    const server = 'cb-k3f9a-n1';
    const planOf = (ingress: ResolvedPolicy[], node = 'node-1') => compileNftNode(node, ctx(ingress).endpoints, (p) => topology.pods.find((x) => x.name === p.name)!.hostIf);
    await calicoNftablesModel.install!(ctx(fillers(5)));
    runner.tables.set(server, planOf(fillers(5)));
    runner.tables.set('cb-k3f9a-n0', planOf(fillers(5), 'node-0'));
    runner.log.length = 0;

    // An added allow: its set, then the listing (the install wrote the table), then the table, on the server's node only.
    const withAllow = [...fillers(5), allow('zz', [pods(info(clientPod))])];
    const added = await calicoNftablesModel.update!(ctx(withAllow));
    runner.tables.set(server, planOf(withAllow));
    expect(commands(runner)).toEqual([`${server} nft -f -`, `${server} nft --json list chains ip`, `${server} nft --json list table ip calico`, `${server} nft -f -`]);
    expect(runner.log[3]!.input).toMatch(/^replace rule ip calico filter-cali-tw-\S+ handle \d+ /m);
    expect(runner.log[3]!.input).not.toContain('delete table');
    expect(added.changed).toMatchObject({ setsAdded: 1, chainsAdded: 2, chainsDeleted: 1, chainsRewritten: 1 });
    expect(Number(added.state.nftListMs)).toBeGreaterThanOrEqual(0);

    // The client joins a second allow's selector: a set element only; the table was written, so it is listed again.
    const other = pod('c2', '10.244.1.77', 'node-0');
    const joined = [...fillers(5), allow('zz', [pods(info(clientPod), other)])];
    runner.log.length = 0;
    await calicoNftablesModel.update!(ctx(joined));
    expect(commands(runner)).toEqual([`${server} nft -f -`, `${server} nft --json list chains ip`, `${server} nft --json list table ip calico`]);
    // and once more: nothing was written to the table since it was listed, so no listing
    runner.log.length = 0;
    await calicoNftablesModel.update!(ctx(withAllow));
    expect(commands(runner)).toEqual([`${server} nft -f -`]);
    expect(runner.log[0]!.input).toMatch(/^delete element ip calico cali40s-\S+ \{ 10\.244\.1\.77 \}$/m);
  });

  it('update before install, or with other set flags than installed, says what to do', async () => {
    const other = planTopology({ runId: 'zz999', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali' });
    const runner = new FakeRunner();
    await expect(calicoNftablesModel.update!({ ...ctxFor(runner, []), topology: other })).rejects.toThrow(/call install\(\) first/);
    await calicoNftablesModel.install!(ctxFor(runner, fillers(1)));
    await expect(calicoNftablesModel.update!(ctxFor(runner, fillers(1), modelSettings({ nftSelectorSets: 'hash' })))).rejects.toThrow(/--nft-selector-sets hash/);
  });
});
