import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, Inventory, PeerMatch, PodInfo, PortMatch, ResolvedRule } from '../../../policy/types.js';
import {
  ANY_IDENTITY,
  FIRST_POD_IDENTITY,
  LOCAL_IDENTITY_SCOPE,
  PolicyMapCapacityError,
  RESERVED_IDENTITY,
  compileCiliumState,
  portRangeToPrefixes,
  renderFillInput,
  type CiliumState,
} from './compile.js';
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
const entriesOf = (s: CiliumState, podName: string) => s.policyMaps.find((m) => m.pod.endsWith(`/${podName}`))!.entries;

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

  it('leaves an unisolated direction without entries and marks enforcement per direction', () => {
    const s = compile([endpoint(server, [rule([{ kind: 'any' }], 'all')]), endpoint(clientA, undefined, []), endpoint(clientB, undefined)]);
    const ep = (n: string) => s.endpoints.find((e) => e.pod === `prod/${n}`)!;
    expect(ep('server')).toMatchObject({ ingressEnforced: true, egressEnforced: false, ifindex: ifindexOf(server) });
    expect(ep('client-a')).toMatchObject({ ingressEnforced: false, egressEnforced: true });
    expect(entriesOf(s, 'client-a')).toEqual([]); // isolated, nothing allowed
    expect(ep('client-b')).toMatchObject({ ingressEnforced: false, egressEnforced: false });
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
    expect(text.trim().split('\n')).toHaveLength(s.ipcache.length + 1 + 1);
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
      expect((e as Error).message).toMatch(/endpoint prod\/server \(id 1\): policy map needs 101 entries \(ingress 101, egress 0\) but holds 100 \(bpf.policyMapMax\)/);
      expect((e as PolicyMapCapacityError).overflows).toEqual([{ pod: 'prod/server', endpointId: 1, needed: 101, capacity: 100, ingress: 101, egress: 0 }]);
    }
    expect(compile([many(99)], 100).counts.policyEntriesPerEndpoint['prod/server']).toBe(100);
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
    expect(s.counts.policyEntriesPerEndpoint['prod/server']).toBe(10000);
    expect(text.length).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1000);
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
