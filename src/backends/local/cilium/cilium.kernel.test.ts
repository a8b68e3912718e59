// The Cilium-style model on the real kernel: one node namespace, two routed pods, the BPF programs attached to
// their host-side veths, and real TCP connections that the policy maps allow or drop.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecRunner, type CommandSpec } from '../../../exec/runner.js';
import type { EndpointPolicy, Inventory, PeerMatch, PodInfo, PortMatch, ResolvedRule } from '../../../policy/types.js';
import { podKey } from '../../../policy/types.js';
import { kernelUnavailable, startEchoServer, tryConnect } from '../test-support/kernel.js';
import { PolicyMapCapacityError, compileCiliumState, type CiliumState } from './compile.js';
import { realizeOverflow } from './overflow.js';
import {
  applyCiliumState,
  ciliumPinDir,
  defaultCiliumBinaries,
  installCilium,
  readCiliumCounters,
  uninstallCilium,
  type CiliumAttachment,
} from './install.js';

const bin = defaultCiliumBinaries();
const unavailable =
  kernelUnavailable() ?? (existsSync(bin.loader) && existsSync(bin.object) ? undefined : 'cb-bpf not built (node scripts/build-native.mjs)');
const itKernel = (unavailable === undefined || process.env.CI === 'true' ? it : it.skip) as typeof it;

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
const rid = 'k' + Array.from({ length: 4 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
const nodeNs = `cb-${rid}-n0`;
const pin = ciliumPinDir(rid, 'n0');

const mkPod = (name: string, ip: string, labels: Record<string, string>): PodInfo => ({
  name,
  namespace: 'prod',
  labels,
  ip,
  node: 'n0',
  ports: [{ containerPort: 8080, protocol: 'TCP' }],
});
const podA = mkPod('pa', '10.244.0.2', { app: 'a' });
const podB = mkPod('pb', '10.244.0.3', { app: 'b' });
// Exists only in the inventory: an identity that policies can name but no packet of the test carries.
const podC = mkPod('pc', '10.244.9.9', { app: 'c' });
const inventory: Inventory = { namespaces: [{ name: 'prod', labels: { env: 'prod' } }], pods: [podA, podB, podC] };
const netnsOf = (p: PodInfo): string => `cb-${rid}-${p.name}`;
const attachments: CiliumAttachment[] = [podA, podB].map((p) => ({ pod: podKey(p), netns: nodeNs, ifname: `lxc${p.name}` }));

const runner = new ExecRunner();
let ifindexes = new Map<string, number>();
const stops: Array<() => Promise<void>> = [];

const rule = (peers: PeerMatch[], ports: PortMatch[] | 'all'): ResolvedRule => ({ peers, ports });
const tcp = (from: number, to = from): PortMatch => ({ protocol: 'TCP', from, to });
interface Dirs {
  ingress?: ResolvedRule[];
  egress?: ResolvedRule[];
}
function endpoint(pod: PodInfo, d: Dirs = {}): EndpointPolicy {
  const dir = (rules: ResolvedRule[] | undefined) => ({ isolated: rules !== undefined, policies: rules ? [{ policy: `prod/${pod.name}`, rules }] : [] });
  return { pod, ingress: dir(d.ingress), egress: dir(d.egress) };
}
function stateOf(a: Dirs, b: Dirs, capacity = 16384, onOverflow: 'throw' | 'report' = 'throw'): CiliumState {
  return compileCiliumState([endpoint(podA, a), endpoint(podB, b)], inventory, {
    capacity,
    onOverflow,
    ifindexOf: (p) => {
      const i = ifindexes.get(podKey(p));
      if (i === undefined) throw new Error(`no ifindex for ${podKey(p)}`);
      return i;
    },
  });
}
const apply = (s: CiliumState) => applyCiliumState(runner, bin, pin, s);

async function run(specs: CommandSpec[]): Promise<void> {
  for (const s of specs) await runner.run(s);
}

function topology(): CommandSpec[] {
  const ipn = (ns: string, ...args: string[]): CommandSpec => ({ argv: ['ip', '-n', ns, ...args] });
  const cmds: CommandSpec[] = [
    { argv: ['ip', 'netns', 'add', nodeNs] },
    ipn(nodeNs, 'link', 'set', 'lo', 'up'),
    { argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], netns: nodeNs },
  ];
  for (const p of [podA, podB]) {
    const ns = netnsOf(p);
    const hostIf = `lxc${p.name}`;
    cmds.push(
      { argv: ['ip', 'netns', 'add', ns] },
      ipn(ns, 'link', 'set', 'lo', 'up'),
      ipn(ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', hostIf, 'netns', nodeNs),
      ipn(nodeNs, 'link', 'set', hostIf, 'address', 'ee:ee:ee:ee:ee:ee'),
      ipn(nodeNs, 'link', 'set', hostIf, 'up'),
      { argv: ['sysctl', '-q', '-w', `net.ipv4.conf.${hostIf}.proxy_arp=1`], netns: nodeNs },
      ipn(nodeNs, 'route', 'add', `${p.ip}/32`, 'dev', hostIf, 'scope', 'link'),
      ipn(ns, 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0'),
      ipn(ns, 'link', 'set', 'eth0', 'up'),
      ipn(ns, 'neigh', 'add', '169.254.1.1', 'lladdr', 'ee:ee:ee:ee:ee:ee', 'dev', 'eth0', 'nud', 'permanent'),
      ipn(ns, 'route', 'add', '169.254.1.1/32', 'dev', 'eth0', 'scope', 'link'),
      ipn(ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink'),
    );
  }
  return cmds;
}

async function cleanup(): Promise<void> {
  for (const stop of stops.splice(0)) await stop().catch(() => undefined);
  await runner.run({ argv: [bin.loader, 'unload', '--pin', pin], allowFailure: true });
  for (const ns of [netnsOf(podA), netnsOf(podB), nodeNs]) await runner.run({ argv: ['ip', 'netns', 'del', ns], allowFailure: true });
}

describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')('Cilium-style eBPF model on the kernel', () => {
  beforeAll(async () => {
    try {
      await run(topology());
      ifindexes = await installCilium(runner, { binaries: bin, pinDir: pin, capacity: 16384, attachments });
      for (const [p, port] of [
        [podA, 8080],
        [podB, 8080],
        [podB, 8081],
      ] as const) {
        const s = await startEchoServer(netnsOf(p), port);
        stops.push(() => s.stop());
      }
    } catch (e) {
      await cleanup();
      throw e;
    }
  });
  afterAll(cleanup);

  itKernel('attaches to both veths and pins every map and program under the run id', () => {
    expect([...ifindexes.keys()].sort()).toEqual(['prod/pa', 'prod/pb']);
    expect(readdirSync(pin).sort()).toEqual(['config', 'counters', 'ct', 'endpoints', 'from_pod', 'ipcache', 'policy', 'to_pod']);
    const tc = execFileSync('tc', ['-n', nodeNs, 'filter', 'show', 'dev', 'lxcpa', 'ingress'], { encoding: 'utf8' });
    expect(tc).toMatch(/bpf.*from_pod/);
  });

  itKernel('lets pods without policy reach each other', async () => {
    await apply(stateOf({}, {}));
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080)).toBe('connected');
    expect(await tryConnect(netnsOf(podB), podA.ip, 8080)).toBe('connected');
    const stats = (await readCiliumCounters(runner, bin, pin))!;
    // No policy: the agent's allow-all entries allow (the datapath always looks up); replies skip policy.
    expect(stats.counters.allowed).toBeGreaterThan(0);
    expect(stats.counters.ctReplies).toBeGreaterThan(0);
    expect(stats.counters.drops).toBe(0);
  });

  itKernel('allows ingress the policy map allows and drops the rest', async () => {
    await apply(stateOf({}, { ingress: [rule([{ kind: 'pods', pods: [podA] }], [tcp(8080)])] }));
    const before = (await readCiliumCounters(runner, bin, pin))!.counters;
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080)).toBe('connected');
    expect(await tryConnect(netnsOf(podA), podB.ip, 8081, 800)).toBe('timeout');
    const after = (await readCiliumCounters(runner, bin, pin))!.counters;
    expect(after.drops).toBeGreaterThan(before.drops);
    expect(after.allowed).toBeGreaterThan(before.allowed);
    // Another identity in the rule instead of pa: pa's port 8080 is now denied too.
    await apply(stateOf({}, { ingress: [rule([{ kind: 'pods', pods: [podC] }], [tcp(8080)])] }));
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080, 800)).toBe('timeout');
    // pb's egress is not isolated: pb still reaches pa, and the reply passes pb's enforced ingress via conntrack.
    expect(await tryConnect(netnsOf(podB), podA.ip, 8080)).toBe('connected');
  });

  itKernel('enforces egress, with an any-peer port-range rule', async () => {
    await apply(stateOf({ egress: [rule([{ kind: 'any' }], [tcp(8081, 8090)])] }, {}));
    expect(await tryConnect(netnsOf(podA), podB.ip, 8081)).toBe('connected');
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080, 800)).toBe('timeout');
    // ports 'all' is a protocol wildcard: everything to pb passes.
    await apply(stateOf({ egress: [rule([{ kind: 'pods', pods: [podB] }], 'all')] }, {}));
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080)).toBe('connected');
  });

  itKernel('cuts an established connection at a later deny-all: forward packets are looked up, only replies skip', async () => {
    await apply(stateOf({}, {}));
    const script =
      `const s=require('net').connect(8080,'${podB.ip}');s.on('connect',()=>s.write('one\\n'));` +
      `s.on('data',d=>console.log('echo:'+d.toString().trim()));s.on('error',e=>console.log('error:'+e.code));` +
      `process.stdin.on('data',d=>s.write(d));`;
    const client = execa('ip', ['netns', 'exec', netnsOf(podA), process.execPath, '-e', script], { reject: false, buffer: false });
    let out = '';
    client.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (text: string, ms: number): Promise<boolean> => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if (out.includes(text)) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    };
    try {
      expect(await waitFor('echo:one', 5000)).toBe(true);
      const before = (await readCiliumCounters(runner, bin, pin))!.counters;
      expect(before.ctHits).toBeGreaterThan(0);
      await apply(stateOf({}, { ingress: [] })); // pb isolated for ingress, nothing allowed
      expect(await tryConnect(netnsOf(podA), podB.ip, 8080, 800)).toBe('timeout');
      // bpf_lxc.c ipv4_policy: CT_ESTABLISHED goes through policy_can_ingress4 like CT_NEW.
      client.stdin?.write('two\n');
      expect(await waitFor('echo:two', 1500)).toBe(false);
      expect((await readCiliumCounters(runner, bin, pin))!.counters.drops).toBeGreaterThan(before.drops);
    } finally {
      client.kill('SIGTERM');
      await client;
    }
  });

  itKernel('overflow as Cilium 1.18 realizes it: stale map by default (client allowed), lockdown denies it', async () => {
    await apply(stateOf({}, {}));
    // 65 port rules for pa + host ingress + egress allow-all = 67 entries for a 64-entry map.
    const tooMany: Dirs = { ingress: [rule([{ kind: 'pods', pods: [podA] }], Array.from({ length: 65 }, (_, i) => tcp(9000 + 2 * i)))] };
    expect(() => stateOf({}, tooMany, 64)).toThrow(/endpoint prod\/pb \(id 2\): policy map needs 67 entries/);
    const desired = stateOf({}, tooMany, 64, 'report');
    // The loader's own check, for an unrealized state that reached it anyway.
    const err = await apply(desired).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyMapCapacityError);
    expect((err as Error).message).toMatch(/prod\/pb .*needs 67 entries .* holds 64/);
    // Default: sync skipped, pb keeps its no-policy map: pa (not allowed by the intended policy on 8080) gets in.
    const stale = realizeOverflow(desired, { lockdown: false });
    expect(stale.overflows).toEqual([expect.objectContaining({ pod: 'prod/pb', outcome: 'stale', needed: 67 })]);
    await apply(stale.state);
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080)).toBe('connected');
    // Lockdown: deny entries for every protocol: new connections in both directions are dropped.
    await apply(realizeOverflow(desired, { lockdown: true }).state);
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080, 800)).toBe('timeout');
    expect(await tryConnect(netnsOf(podB), podA.ip, 8080, 800)).toBe('timeout');
    await apply(stateOf({}, {}));
  });

  itKernel('writes 10000 policies into one endpoint map quickly (measured)', async () => {
    const peers = Array.from({ length: 10000 }, (_, i) => mkPod(`peer-${i}`, `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, { app: `peer-${i}` }));
    const inv: Inventory = { ...inventory, pods: [...inventory.pods, ...peers] };
    const big: EndpointPolicy = {
      pod: podB,
      ingress: {
        isolated: true,
        policies: [
          ...peers.map((p, i) => ({ policy: `prod/p${i}`, rules: [rule([{ kind: 'pods', pods: [p] }], [tcp(8080)])] })),
          { policy: 'prod/zz-client', rules: [rule([{ kind: 'pods', pods: [podA] }], [tcp(8080)])] },
        ],
      },
      egress: { isolated: false, policies: [] },
    };
    const t0 = performance.now();
    const s = compileCiliumState([endpoint(podA), big], inv, { capacity: 16384, ifindexOf: (p) => ifindexes.get(podKey(p))! });
    const t1 = performance.now();
    const summary = (await apply(s))!;
    const t2 = performance.now();
    const stats = (await readCiliumCounters(runner, bin, pin))!;
    const pbMap = stats.maps.policy.endpoints['2']!;
    console.log(
      `cilium model: 10001 policies -> ${s.counts.policyEntriesPerEndpoint['prod/pb']} entries, ${s.counts.ipcacheEntries} ipcache entries; ` +
        `compile ${(t1 - t0).toFixed(1)} ms, fill ${(t2 - t1).toFixed(1)} ms (cb-bpf ${summary.ms.toFixed(1)} ms); ` +
        `policy map memlock ${pbMap.memlockBytes} B, ipcache memlock ${stats.maps.ipcache.memlockBytes} B, ct ${stats.maps.ct.memlockBytes} B`,
    );
    expect(summary.policy['2']).toBe(10003); // + host ingress + egress allow-all
    expect(pbMap.entries).toBe(10003);
    expect(t2 - t0).toBeLessThan(2000);
    expect(await tryConnect(netnsOf(podA), podB.ip, 8080)).toBe('connected');
  });

  itKernel('removes every pin on unload', async () => {
    await uninstallCilium(runner, bin, pin);
    expect(existsSync(pin)).toBe(false);
    expect(existsSync(`/sys/fs/bpf/cb-${rid}`)).toBe(false);
  });
});
