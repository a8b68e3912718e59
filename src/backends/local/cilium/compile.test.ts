import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, Inventory, PeerMatch, PodInfo, PortMatch, ResolvedRule } from '../../../policy/types.js';
import {
  ANY_IDENTITY,
  FIRST_POD_IDENTITY,
  LOCAL_IDENTITY_SCOPE,
  PolicyMapCapacityError,
  RESERVED_IDENTITY,
  agentEntries,
  compileCiliumState,
  newIdentityAllocation,
  portRangeToPrefixes,
  type CiliumState,
} from './compile.js';
import { diffCiliumState, renderFillInput } from './loader-input.js';
import { lockdownEntries, realizeOverflow } from './overflow.js';
import { applyCiliumState, ciliumPinDir, planCiliumInstall, readCiliumCounters } from './install.js';

const pod = (namespace: string, name: string, labels: Record<string, string>, ip: string, hostNetwork = false): PodInfo => ({
  name,
  namespace,
  labels,
  ip,
  node: 'n0',
  ports: [],
  hostNetwork,
});

const server = pod('prod', 'server', { app: 'server' }, '10.244.0.2');
const clientA = pod('prod', 'client-a', { app: 'client' }, '10.244.0.3');
const clientB = pod('prod', 'client-b', { app: 'client' }, '10.244.0.4'); // same labels as client-a
const other = pod('dev', 'client-c', { app: 'client' }, '10.244.1.5'); // same pod labels, other namespace
const inventory: Inventory = {
  namespaces: [
    { name: 'prod', labels: { env: 'prod' } },
    { name: 'dev', labels: { env: 'dev' } },
  ],
  pods: [server, clientA, clientB, other],
};

const ifindexOf = (p: PodInfo): number => 100 + inventory.pods.findIndex((q) => q.name === p.name && q.namespace === p.namespace);

function endpoint(p: PodInfo, ingress: ResolvedRule[] | undefined, egress?: ResolvedRule[]): EndpointPolicy {
  return {
    pod: p,
    ingress: { isolated: ingress !== undefined, policies: ingress ? [{ policy: `${p.namespace}/in`, rules: ingress }] : [] },
    egress: { isolated: egress !== undefined, policies: egress ? [{ policy: `${p.namespace}/out`, rules: egress }] : [] },
  };
}

const rule = (peers: PeerMatch[], ports: PortMatch[] | 'all'): ResolvedRule => ({ peers, ports });
const compile = (eps: EndpointPolicy[], capacity = 16384): CiliumState => compileCiliumState(eps, inventory, { capacity, ifindexOf });
const allEntriesOf = (s: CiliumState, podName: string) => s.policyMaps.find((m) => m.pod.endsWith(`/${podName}`))!.entries;
/** The entries the policies produced: after the ones the agent writes itself (compiled first). */
const entriesOf = (s: CiliumState, podName: string) => {
  const ep = s.endpoints.find((e) => e.pod.endsWith(`/${podName}`))!;
  return allEntriesOf(s, podName).slice(agentEntries(ep.ingressEnforced, ep.egressEnforced).length);
};

describe('identities', () => {
  it('allocates one identity per distinct label set, namespace labels included, deterministically', () => {
    const s = compile([endpoint(server, [])]);
    const byPod = new Map(s.identities.flatMap((i) => i.pods.map((p) => [p, i.id] as const)));
    expect(byPod.get('prod/client-a')).toBe(byPod.get('prod/client-b'));
    expect(byPod.get('dev/client-c')).not.toBe(byPod.get('prod/client-a'));
    expect(byPod.get('prod/server')).not.toBe(byPod.get('prod/client-a'));
    expect(new Set(byPod.values()).size).toBe(3);
    expect(Math.min(...byPod.values())).toBe(FIRST_POD_IDENTITY);
    const clientIdentity = s.identities.find((i) => i.pods.includes('prod/client-a'))!;
    expect(clientIdentity.labels).toEqual([
      'k8s:app=client',
      'k8s:io.cilium.k8s.namespace.labels.env=prod',
      'k8s:io.kubernetes.pod.namespace=prod',
    ]);
    // Same input in another order: same numbers.
    const again = compileCiliumState([endpoint(server, [])], { ...inventory, pods: [...inventory.pods].reverse() }, { capacity: 10, ifindexOf });
    expect(again.identities).toEqual(s.identities);
  });

  it('gives hostNetwork pods no pod identity and no ipcache entry', () => {
    const hostPod = pod('kube-system', 'agent', { app: 'agent' }, '172.18.0.2', true);
    const s = compileCiliumState([endpoint(server, [])], { ...inventory, pods: [...inventory.pods, hostPod] }, { capacity: 10, ifindexOf });
    expect(s.identities.some((i) => i.pods.includes('kube-system/agent'))).toBe(false);
    expect(s.ipcache.some((e) => e.prefix.startsWith('172.18.0.2'))).toBe(false);
  });
});

describe('ipcache', () => {
  it('maps pod /32s to pod identities, 0.0.0.0/0 to world, ipBlock cidr and except prefixes to CIDR identities', () => {
    const s = compile([endpoint(server, [rule([{ kind: 'cidr', cidr: '192.168.0.0/16', except: ['192.168.1.0/24', '192.168.2.7/32'] }], 'all')])]);
    const ipc = new Map(s.ipcache.map((e) => [e.prefix, e.identity]));
    expect(ipc.get('0.0.0.0/0')).toBe(RESERVED_IDENTITY.world);
    const serverId = s.identities.find((i) => i.pods.includes('prod/server'))!.id;
    expect(ipc.get('10.244.0.2/32')).toBe(serverId);
    expect(ipc.size).toBe(1 + 4 + 3);
    const cidrIds = ['192.168.0.0/16', '192.168.1.0/24', '192.168.2.7/32'].map((p) => ipc.get(p)!);
    expect(cidrIds).toEqual([LOCAL_IDENTITY_SCOPE + 1, LOCAL_IDENTITY_SCOPE + 2, LOCAL_IDENTITY_SCOPE + 3]);
    // Only the cidr's own identity is allowed; the except prefixes' identities are not.
    expect(entriesOf(s, 'server').map((e) => e.identity)).toEqual([LOCAL_IDENTITY_SCOPE + 1]);
  });

  it('allows nested prefixes of other rules that fall inside the cidr and outside its excepts', () => {
    const s = compile([
      endpoint(server, [
        rule([{ kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }], 'all'),
        rule([{ kind: 'cidr', cidr: '10.2.0.0/16', except: [] }], [{ protocol: 'TCP', from: 22, to: 22 }]),
        rule([{ kind: 'cidr', cidr: '10.1.5.0/24', except: [] }], [{ protocol: 'TCP', from: 23, to: 23 }]),
      ]),
    ]);
    const id = (p: string) => s.ipcache.find((e) => e.prefix === p)!.identity;
    const wildcard = entriesOf(s, 'server').filter((e) => e.protocol === 0).map((e) => e.identity).sort();
    // 10.2.0.0/16 is inside 10/8 (an address there must still match the /8 rule); 10.1.0.0/16 and 10.1.5.0/24 are excepted.
    expect(wildcard).toEqual([id('10.0.0.0/8'), id('10.2.0.0/16')].sort());
  });

  it("holds this node's addresses as reserved:host and the other nodes' as reserved:remote-node, over a /32 CIDR of one", () => {
    const nodeAddresses = { local: ['172.18.0.3'], remote: ['172.18.0.2', '172.18.0.4'] };
    // An ipBlock naming the local node's /32 and all of the node subnet: neither selects a node address.
    const eps = [endpoint(server, [rule([{ kind: 'cidr', cidr: '172.18.0.3/32', except: [] }, { kind: 'cidr', cidr: '172.18.0.0/16', except: [] }], 'all')])];
    const s = compileCiliumState(eps, inventory, { capacity: 100, ifindexOf, nodeAddresses });
    const ipc = s.ipcache.filter((e) => e.prefix.startsWith('172.18.0.'));
    expect(ipc.sort((a, b) => (a.prefix < b.prefix ? -1 : 1))).toEqual([
      { prefix: '172.18.0.0/16', identity: s.ipcache.find((e) => e.prefix === '172.18.0.0/16')!.identity },
      { prefix: '172.18.0.2/32', identity: RESERVED_IDENTITY.remoteNode },
      { prefix: '172.18.0.3/32', identity: RESERVED_IDENTITY.host },
      { prefix: '172.18.0.4/32', identity: RESERVED_IDENTITY.remoteNode },
    ]);
    // The agent's host ingress entry is what admits the local node; nothing admits remote-node.
    const ids = allEntriesOf(s, 'server').map((e) => e.identity);
    expect(ids).toContain(RESERVED_IDENTITY.host);
    expect(ids).not.toContain(RESERVED_IDENTITY.remoteNode);
  });

  it('treats 0.0.0.0/0 as world and still honours its excepts', () => {
    const s = compile([endpoint(server, undefined, [rule([{ kind: 'cidr', cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }], 'all')])]);
    const ids = entriesOf(s, 'server').map((e) => e.identity);
    expect(ids).toContain(RESERVED_IDENTITY.world);
    expect(ids).not.toContain(s.ipcache.find((e) => e.prefix === '10.0.0.0/8')!.identity);
  });
});

describe('port prefixes', () => {
  const covered = (blocks: { port: number; bits: number }[]): number[] =>
    blocks.flatMap((b) => Array.from({ length: 2 ** (16 - b.bits) }, (_, i) => b.port + i));

  it('expands [1000, 1999] into its minimal aligned blocks with exact coverage', () => {
    const blocks = portRangeToPrefixes(1000, 1999);
    expect(blocks).toEqual([
      { port: 1000, bits: 13 }, // 1000-1007
      { port: 1008, bits: 12 }, // 1008-1023
      { port: 1024, bits: 7 }, // 1024-1535
      { port: 1536, bits: 8 }, // 1536-1791
      { port: 1792, bits: 9 }, // 1792-1919
      { port: 1920, bits: 10 }, // 1920-1983
      { port: 1984, bits: 12 }, // 1984-1999
    ]);
    const ports = covered(blocks);
    expect(ports.length).toBe(1000);
    expect(new Set(ports).size).toBe(1000);
    expect(Math.min(...ports)).toBe(1000);
    expect(Math.max(...ports)).toBe(1999);
    for (const b of blocks) expect(b.port % 2 ** (16 - b.bits)).toBe(0);
  });

  it('covers random ranges exactly, and single ports and the full range with one block', () => {
    expect(portRangeToPrefixes(8080, 8080)).toEqual([{ port: 8080, bits: 16 }]);
    expect(portRangeToPrefixes(0, 65535)).toEqual([{ port: 0, bits: 0 }]);
    expect(portRangeToPrefixes(1, 65535)).toHaveLength(16);
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 65536;
    for (let i = 0; i < 200; i++) {
      const [lo, hi] = [rnd(), rnd()].sort((a, b) => a - b) as [number, number];
      const blocks = portRangeToPrefixes(lo, hi);
      // Contiguous, aligned blocks from lo to hi: exact coverage without materialising every port.
      let next = lo;
      for (const b of blocks) {
        expect(b.port).toBe(next);
        expect(b.port % 2 ** (16 - b.bits)).toBe(0);
        next += 2 ** (16 - b.bits);
      }
      expect(next).toBe(hi + 1);
      expect(blocks.length).toBeLessThanOrEqual(30); // at most 2 per bit
    }
    expect(() => portRangeToPrefixes(10, 9)).toThrow(RangeError);
  });

  it('writes range entries as port prefixes in the policy map', () => {
    const s = compile([endpoint(server, [rule([{ kind: 'pods', pods: [clientA] }], [{ protocol: 'UDP', from: 1000, to: 1999 }])])]);
    const e = entriesOf(s, 'server');
    expect(e).toHaveLength(7);
    expect(e.every((x) => x.protocol === 17 && x.direction === 'ingress')).toBe(true);
  });
});

describe('policy map entries', () => {
  it("maps ports 'all' to a protocol wildcard and a protocol without port to every port of it", () => {
    const s = compile([
      endpoint(server, [rule([{ kind: 'pods', pods: [clientA] }], 'all'), rule([{ kind: 'pods', pods: [other] }], [{ protocol: 'SCTP' }])]),
    ]);
    const id = (p: PodInfo) => s.identities.find((i) => i.pods.includes(`${p.namespace}/${p.name}`))!.id;
    expect(entriesOf(s, 'server')).toEqual([
      { identity: id(clientA), direction: 'ingress', protocol: 0, port: 0, portPrefixBits: 0 },
      { identity: id(other), direction: 'ingress', protocol: 132, port: 0, portPrefixBits: 0 },
    ]);
  });

  it("maps an 'any' peer to identity 0 and de-duplicates pods sharing an identity", () => {
    const s = compile([
      endpoint(server, [rule([{ kind: 'any' }], [{ protocol: 'TCP', from: 80, to: 80 }]), rule([{ kind: 'pods', pods: [clientA, clientB] }], [{ protocol: 'TCP', from: 443 }])]),
    ]);
    const e = entriesOf(s, 'server');
    expect(e[0]).toEqual({ identity: ANY_IDENTITY, direction: 'ingress', protocol: 6, port: 80, portPrefixBits: 16 });
    expect(e).toHaveLength(2); // client-a and client-b share one identity
  });

  it('covers an unisolated direction with the agent\'s allow-all entry, adds host ingress, and marks enforcement per direction', () => {
    const s = compile([endpoint(server, [rule([{ kind: 'any' }], 'all')]), endpoint(clientA, undefined, []), endpoint(clientB, undefined)]);
    const ep = (n: string) => s.endpoints.find((e) => e.pod === `prod/${n}`)!;
    expect(ep('server')).toMatchObject({ ingressEnforced: true, egressEnforced: false, ifindex: ifindexOf(server) });
    expect(ep('client-a')).toMatchObject({ ingressEnforced: false, egressEnforced: true });
    expect(entriesOf(s, 'client-a')).toEqual([]); // isolated, nothing allowed
    const all = { protocol: 0, port: 0, portPrefixBits: 0 };
    // Egress isolated: only host ingress and ingress allow-all (pkg/policy mapstate allowAllIdentities).
    expect(allEntriesOf(s, 'client-a')).toEqual([
      { identity: RESERVED_IDENTITY.host, direction: 'ingress', ...all },
      { identity: ANY_IDENTITY, direction: 'ingress', ...all },
    ]);
    expect(allEntriesOf(s, 'server')).toContainEqual({ identity: ANY_IDENTITY, direction: 'egress', ...all });
    expect(allEntriesOf(s, 'server')).not.toContainEqual({ identity: RESERVED_IDENTITY.world, direction: 'ingress', ...all });
    expect(ep('client-b')).toMatchObject({ ingressEnforced: false, egressEnforced: false });
    expect(allEntriesOf(s, 'client-b')).toHaveLength(3);
    expect(s.endpoints.map((e) => e.endpointId)).toEqual([1, 2, 3]);
  });

  it('renders the loader input', () => {
    const s = compile([endpoint(server, [rule([{ kind: 'pods', pods: [clientA] }], [{ protocol: 'TCP', from: 8080, to: 8081 }])])]);
    const text = renderFillInput(s);
    const cid = s.identities.find((i) => i.pods.includes('prod/client-a'))!.id;
    expect(text).toContain('ipcache 0.0.0.0/0 2\n');
    expect(text).toContain(`ipcache 10.244.0.3/32 ${cid}\n`);
    expect(text).toContain(`endpoint ${ifindexOf(server)} 1 1 0\n`);
    expect(text).toContain(`policy 1 ${cid} ingress 6 8080 15\n`);
    expect(text).toContain(`policy 1 ${RESERVED_IDENTITY.host} ingress 0 0 0\n`);
    expect(text.trim().split('\n')).toHaveLength(s.ipcache.length + 1 + 3); // 1 policy entry + host ingress + egress allow-all
  });
});

describe('capacity', () => {
  const many = (n: number): EndpointPolicy =>
    endpoint(server, [rule([{ kind: 'pods', pods: [clientA] }], Array.from({ length: n }, (_, i) => ({ protocol: 'TCP' as const, from: 1 + i, to: 1 + i }))), rule([{ kind: 'any' }], [{ protocol: 'UDP', from: 53, to: 53 }])]);

  it('throws PolicyMapCapacityError naming the endpoint and entries needed vs capacity', () => {
    expect(() => compile([many(100)], 100)).toThrow(PolicyMapCapacityError);
    try {
      compile([many(100)], 100);
    } catch (e) {
      // 101 from the policies, plus host ingress and egress allow-all the agent adds itself.
      expect((e as Error).message).toMatch(/endpoint prod\/server \(id 1\): policy map needs 103 entries \(ingress 102, egress 1\) but holds 100 \(bpf.policyMapMax\)/);
      expect((e as PolicyMapCapacityError).overflows).toEqual([{ pod: 'prod/server', endpointId: 1, needed: 103, capacity: 100, ingress: 102, egress: 1 }]);
    }
    expect(compile([many(97)], 100).counts.policyEntriesPerEndpoint['prod/server']).toBe(100);
  });

  it("reports instead of throwing with onOverflow 'report'", () => {
    const s = compileCiliumState([many(100)], inventory, { capacity: 100, ifindexOf, onOverflow: 'report' });
    expect(s.overflows).toHaveLength(1);
  });

  it('turns the loader overflow exit into the same error', async () => {
    const s = compileCiliumState([many(100)], inventory, { capacity: 100, ifindexOf, onOverflow: 'report' });
    const runner = new FakeRunner(() => ({ exitCode: 3, stderr: '{"error":"policy-map-full","endpoint":1,"needed":101,"capacity":100}\n' }));
    const bin = { loader: '/x/cb-bpf', object: '/x/o' };
    await expect(applyCiliumState(runner, bin, '/sys/fs/bpf/cb-abcde/n0', s)).rejects.toThrow(/prod\/server .*needs 101 entries/);
  });

  it('compiles 10000 policies for a few endpoints in well under a second', () => {
    const peers = Array.from({ length: 10000 }, (_, i) => pod('load', `peer-${i}`, { app: `peer-${i}` }, `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`));
    const inv: Inventory = { namespaces: inventory.namespaces, pods: [...inventory.pods, ...peers] };
    const eps = [server, clientA, clientB].map((p) => ({
      pod: p,
      ingress: {
        isolated: true,
        policies: peers.map((peer, i) => ({ policy: `prod/p${i}`, rules: [rule([{ kind: 'pods', pods: [peer] }], [{ protocol: 'TCP' as const, from: 8080, to: 8080 }])] })),
      },
      egress: { isolated: false, policies: [] },
    }));
    const t0 = performance.now();
    const s = compileCiliumState(eps, inv, { capacity: 16384, ifindexOf: () => 7 });
    const text = renderFillInput(s);
    const ms = performance.now() - t0;
    expect(s.counts.policyEntriesPerEndpoint['prod/server']).toBe(10002); // + host ingress + egress allow-all
    expect(text.length).toBeGreaterThan(0);
    expect(ms).toBeLessThan(5000); // a loose bound for a shared, loaded machine: catches quadratic blow-ups, not drift
  });
});

describe('overflow as Cilium 1.18 realizes it', () => {
  const many = (n: number): EndpointPolicy => endpoint(server, [rule([{ kind: 'pods', pods: [clientA] }], Array.from({ length: n }, (_, i) => ({ protocol: 'TCP' as const, from: 1 + i, to: 1 + i })))]);
  const over = () => compileCiliumState([many(300), endpoint(clientA, [])], inventory, { capacity: 256, ifindexOf, onOverflow: 'report' });

  it('default: the overflowing endpoint keeps the no-policy map a pod has before its policies (stale, fail-open)', () => {
    const { state, overflows } = realizeOverflow(over(), { lockdown: false });
    expect(overflows).toEqual([expect.objectContaining({ pod: 'prod/server', needed: 302, capacity: 256, outcome: 'stale', realizedEntries: 3 })]);
    expect(allEntriesOf(state, 'server')).toEqual(agentEntries(false, false));
    // The endpoint that fits is untouched.
    expect(allEntriesOf(state, 'client-a')).toEqual(allEntriesOf(over(), 'client-a'));
  });

  it('default on an update: the map keeps what it held; a new endpoint that never synced has an empty map', () => {
    const held = [{ identity: 300, direction: 'ingress' as const, protocol: 6, port: 80, portPrefixBits: 16 }];
    const { state } = realizeOverflow(over(), { lockdown: false, previous: new Map([['prod/server', held]]) });
    expect(allEntriesOf(state, 'server')).toEqual(held);
    expect(allEntriesOf(realizeOverflow(over(), { lockdown: false, previous: new Map() }).state, 'server')).toEqual([]);
  });

  it('lockdown: deny entries for TCP, UDP and SCTP in both directions replace the map', () => {
    const { state, overflows } = realizeOverflow(over(), { lockdown: true });
    expect(overflows[0]!.outcome).toBe('lockdown');
    expect(allEntriesOf(state, 'server')).toEqual(lockdownEntries());
    expect(lockdownEntries()).toHaveLength(6);
    expect(lockdownEntries().every((e) => e.deny && e.identity === ANY_IDENTITY && e.portPrefixBits === 0)).toBe(true);
    const id = state.endpoints.find((e) => e.pod === 'prod/server')!.endpointId;
    expect(renderFillInput(state)).toContain(`policy ${id} 0 ingress 6 0 0 deny\n`);
  });
});

describe('incremental update', () => {
  const allowFrom = (...peers: PodInfo[]) => endpoint(server, [rule([{ kind: 'pods', pods: peers }], [{ protocol: 'TCP', from: 8080 }])]);

  it('keeps identities and endpoint ids stable when label sets and endpoints are added', () => {
    const alloc = newIdentityAllocation();
    const a = compileCiliumState([allowFrom(clientA), endpoint(clientB, undefined)], inventory, { capacity: 100, ifindexOf, allocation: alloc });
    const newcomer = pod('prod', 'aaa', { app: 'aaa' }, '10.244.0.9'); // sorts first by labels and by name
    const inv2: Inventory = { ...inventory, pods: [...inventory.pods, newcomer] };
    const b = compileCiliumState([allowFrom(clientA), endpoint(clientB, undefined), endpoint(newcomer, undefined)], inv2, { capacity: 100, ifindexOf: () => 200, allocation: alloc });
    for (const i of a.identities) expect(b.identities.find((x) => x.labels.join() === i.labels.join())!.id).toBe(i.id);
    for (const e of a.endpoints) expect(b.endpoints.find((x) => x.pod === e.pod)!.endpointId).toBe(e.endpointId);
    expect(b.endpoints.find((x) => x.pod === 'prod/aaa')!.endpointId).toBe(3);
  });

  it('diffs only what changed: an allow added for one peer is one policy-map add on one endpoint', () => {
    const alloc = newIdentityAllocation();
    const before = compileCiliumState([allowFrom(clientA), endpoint(clientB, undefined)], inventory, { capacity: 100, ifindexOf, allocation: alloc });
    const after = compileCiliumState([allowFrom(clientA, other), endpoint(clientB, undefined)], inventory, { capacity: 100, ifindexOf, allocation: alloc });
    const d = diffCiliumState(before, after);
    const otherId = after.identities.find((i) => i.pods.includes('dev/client-c'))!.id;
    const ep = after.endpoints.find((e) => e.pod === 'prod/server')!.endpointId;
    expect(d.lines).toEqual([`+policy ${ep} ${otherId} ingress 6 8080 16`]);
    expect(d.counts).toMatchObject({ policyAdded: 1, policyDeleted: 0, ipcacheAdded: 0, endpointsTouched: 1 });
    // And back: one delete.
    expect(diffCiliumState(after, before).lines).toEqual([`-policy ${ep} ${otherId} ingress 6 8080 16`]);
    expect(diffCiliumState(after, after).lines).toEqual([]);
  });

  it('diffs a new pod into an ipcache add, an endpoint add and its map entries; a removed one into deletes', () => {
    const alloc = newIdentityAllocation();
    const inv1: Inventory = { ...inventory, pods: inventory.pods.filter((p) => p.name !== 'client-b') };
    const before = compileCiliumState([allowFrom(clientA)], inv1, { capacity: 100, ifindexOf, allocation: alloc });
    const after = compileCiliumState([allowFrom(clientA), endpoint(clientB, [])], inventory, { capacity: 100, ifindexOf, allocation: alloc });
    const d = diffCiliumState(before, after);
    expect(d.lines).toContain(`+ipcache 10.244.0.4/32 ${after.ipcache.find((e) => e.prefix === '10.244.0.4/32')!.identity}`);
    const idB = after.endpoints.find((e) => e.pod === 'prod/client-b')!.endpointId;
    expect(idB).toBe(2); // a new endpoint id, although client-b sorts before server, which keeps 1
    expect(after.endpoints.find((e) => e.pod === 'prod/server')!.endpointId).toBe(1);
    expect(d.lines.filter((l) => l.startsWith('+endpoint'))).toEqual([`+endpoint ${ifindexOf(clientB)} ${idB} 1 0`]);
    expect(d.counts).toMatchObject({ ipcacheAdded: 1, endpointsAdded: 1, policyAdded: 2, policyDeleted: 0 }); // host ingress + egress allow-all
    const back = diffCiliumState(after, before);
    expect(back.lines).toContain('-ipcache 10.244.0.4/32');
    expect(back.lines).toContain(`-endpoint ${ifindexOf(clientB)} ${idB}`);
    expect(back.counts.policyDeleted).toBe(0); // its map goes with the endpoint, not entry by entry
  });
});

describe('install plan', () => {
  it('loads once, attaches per endpoint, and reads counters through the runner', async () => {
    const bin = { loader: '/opt/cb-bpf', object: '/opt/m.o' };
    const pin = ciliumPinDir('abcde', 'n0');
    expect(pin).toBe('/sys/fs/bpf/cb-abcde/n0');
    const plan = planCiliumInstall({ binaries: bin, pinDir: pin, capacity: 16384, attachments: [{ pod: 'prod/server', netns: 'cb-abcde-n0', ifname: 'lxc123' }] });
    expect(plan.load.argv).toEqual(['/opt/cb-bpf', 'load', '--obj', '/opt/m.o', '--pin', pin, '--capacity', '16384']);
    expect(plan.attach[0]!.argv).toEqual(['/opt/cb-bpf', 'attach', '--pin', pin, '--netns', 'cb-abcde-n0', '--ifname', 'lxc123']);
    expect(plan.attach[0]!.netns).toBeUndefined(); // cb-bpf does its own setns, keeping the host's bpffs view
    const runner = new FakeRunner(() => ({ stdout: '{"counters":{"drops":3},"maps":{}}' }));
    expect((await readCiliumCounters(runner, bin, pin))!.counters.drops).toBe(3);
    expect(() => ciliumPinDir('../x', 'n0')).toThrow();
  });
});
