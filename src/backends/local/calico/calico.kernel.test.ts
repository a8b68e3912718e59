// Builds a one-node Calico-style topology (routed /32 veths, proxy ARP, no bridge), installs the compiled
// rules with the real iptables-restore/ipset, and sends real TCP connections through them.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ExecRunner, type CommandSpec } from '../../../exec/runner.js';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { compileCalicoNode, policyChainName } from './compile.js';
import { IPTABLES_BACKENDS, installCalicoRules, iptablesBinaries, readCalicoCounters, type IptablesBackend } from './install.js';

const hasTool = (argv: string[]): boolean => spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' }).status === 0;
const canRun =
  process.getuid?.() === 0 && hasTool(['ip', '-V']) && hasTool(['ipset', 'version']) && hasTool(['iptables-legacy-restore', '--version']);
const itKernel = canRun || process.env.CI === 'true' ? it : it.skip;

const rid = randomBytes(3).toString('hex').slice(0, 5);
const NODE_NS = `cb-${rid}-n0`;
const runner = new ExecRunner();

function calicoIface(podName: string): string {
  // Calico names the host side "cali" + 11 hex characters of a hash of the workload id.
  return `cali${createHash('sha1').update(`default.${podName}`).digest('hex').slice(0, 11)}`;
}

function mkPod(name: string, ip: string): PodInfo & { netns: string } {
  return { name, namespace: 'default', labels: { app: name }, ip, node: 'n0', ports: [], netns: `cb-${rid}-${name}` };
}
const server = mkPod('server', '10.244.0.2');
const client = mkPod('client', '10.244.0.3');
const other = mkPod('other', '10.244.0.4');
const PODS = [server, client, other];
const ifaceOf = (p: PodInfo): string => calicoIface(p.name);

const tcp = (port: number): PortMatch => ({ protocol: 'TCP', from: port, to: port });
const pods = (...ps: PodInfo[]): PeerMatch => ({ kind: 'pods', pods: ps });
const policy = (name: string, peers: PeerMatch[], ports: PortMatch[] | 'all' = [tcp(8080)]): ResolvedPolicy => ({
  policy: `default/${name}`,
  rules: [{ peers, ports }],
});
const denyAll = (name: string): ResolvedPolicy => ({ policy: `default/${name}`, rules: [] });

function endpoints(opts: { ingress?: Record<string, ResolvedPolicy[]>; egress?: Record<string, ResolvedPolicy[]> }): EndpointPolicy[] {
  return PODS.map((pod) => {
    const ing = opts.ingress?.[pod.name] ?? [];
    const eg = opts.egress?.[pod.name] ?? [];
    return { pod, ingress: { isolated: ing.length > 0, policies: ing }, egress: { isolated: eg.length > 0, policies: eg } };
  });
}

async function run(argv: string[], netns?: string, extra: Partial<CommandSpec> = {}): Promise<string> {
  return (await runner.run({ argv, netns, timeoutMs: 30_000, ...extra })).stdout;
}

async function buildTopology(): Promise<void> {
  await run(['ip', 'netns', 'add', NODE_NS]);
  await run(['ip', 'link', 'set', 'lo', 'up'], NODE_NS);
  await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], NODE_NS);
  // Stands in for the node's uplink: proxy ARP only answers for addresses routed out another interface.
  // (a veth pair inside the node namespace: the dummy driver is not always available)
  await run(['ip', 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1'], NODE_NS);
  await run(['ip', 'addr', 'add', '10.0.0.1/32', 'dev', 'uplink0'], NODE_NS);
  await run(['ip', 'link', 'set', 'uplink1', 'up'], NODE_NS);
  await run(['ip', 'link', 'set', 'uplink0', 'up'], NODE_NS);
  await run(['ip', 'route', 'add', 'default', 'dev', 'uplink0'], NODE_NS);
  for (const pod of PODS) {
    const iface = calicoIface(pod.name);
    await run(['ip', 'netns', 'add', pod.netns]);
    await run(['ip', '-n', NODE_NS, 'link', 'add', iface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
    await run(['ip', 'link', 'set', 'lo', 'up'], pod.netns);
    await run(['ip', 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0'], pod.netns);
    await run(['ip', 'link', 'set', 'eth0', 'up'], pod.netns);
    await run(['ip', 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link'], pod.netns);
    await run(['ip', 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink'], pod.netns);
    // What the Calico CNI plugin sets on the host side: answer ARP for the gateway at once.
    await run(['sysctl', '-qw', `net.ipv4.conf.${iface}.proxy_arp=1`, `net.ipv4.neigh.${iface}.proxy_delay=0`], NODE_NS);
    await run(['ip', 'link', 'set', iface, 'up'], NODE_NS);
    await run(['ip', 'route', 'add', `${pod.ip}/32`, 'dev', iface, 'scope', 'link'], NODE_NS);
  }
}

async function deleteTopology(): Promise<void> {
  for (const ns of [...PODS.map((p) => p.netns), NODE_NS]) {
    await runner.run({ argv: ['ip', 'netns', 'del', ns], allowFailure: true });
  }
}

/** Empties the raw, mangle and filter tables and ipsets of both iptables flavours, so each case starts from nothing. */
async function resetFirewall(): Promise<void> {
  const empty = [
    '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT',
    '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT',
    '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
  ].join('\n');
  for (const backend of ['legacy', 'nft'] as const) {
    await runner.run({ argv: [iptablesBinaries(backend).restore], netns: NODE_NS, input: empty, allowFailure: backend === 'nft' });
  }
  await run(['ipset', 'destroy'], NODE_NS);
}

async function install(backend: IptablesBackend, eps: EndpointPolicy[]): Promise<{ iptablesRestoreMs: number; rules: number }> {
  const rules = compileCalicoNode('n0', eps, ifaceOf);
  const r = await installCalicoRules(runner, NODE_NS, rules, { iptablesBackend: backend });
  return { iptablesRestoreMs: r.iptablesRestoreMs, rules: rules.counts.rules };
}

// Every pod runs an echo server on 8080 and 8081.
const SERVER_JS = `
const net = require('net');
let up = 0;
for (const port of [8080, 8081]) {
  net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(port, '0.0.0.0', () => { if (++up === 2) console.log('ready'); });
}`;

// argv: host port timeoutMs → prints connected | timeout | <error code>
const PROBE_JS = `
const net = require('net');
const [host, port, timeout] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
const t = setTimeout(() => { console.log('timeout'); s.destroy(); }, Number(timeout));
s.on('connect', () => { clearTimeout(t); console.log('connected'); s.destroy(); });
s.on('error', (e) => { clearTimeout(t); console.log(e.code); });`;

// argv: host port count → JSON array of connect() latencies in microseconds, after a warm-up.
const LATENCY_JS = `
const net = require('net');
const [host, port, count] = process.argv.slice(1);
const once = () => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const s = net.connect({ host, port: Number(port) });
  s.setTimeout(2000, () => { s.destroy(); reject(new Error('timeout')); });
  s.on('connect', () => { const us = Number(process.hrtime.bigint() - t0) / 1000; s.destroy(); resolve(us); });
  s.on('error', reject);
});
(async () => {
  for (let i = 0; i < 30; i++) await once();
  const out = [];
  for (let i = 0; i < Number(count); i++) out.push(await once());
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.message); process.exit(1); });`;

// argv: host port → prints "connected", then echoes each stdin line over one long-lived connection.
const HOLD_JS = `
const net = require('net');
const rl = require('readline').createInterface({ input: process.stdin });
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) }, () => console.log('connected'));
s.setEncoding('utf8');
s.on('data', (d) => process.stdout.write('echo:' + d));
s.on('error', (e) => console.log('error:' + e.code));
rl.on('line', (l) => s.write(l + '\\n'));
rl.on('close', () => s.destroy());`;

const children: ChildProcessWithoutNullStreams[] = [];

function startInNetns(netns: string, js: string, args: string[] = []): { child: ChildProcessWithoutNullStreams; lines: AsyncIterator<string> } {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', js, ...args]);
  children.push(child);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextLine(lines: AsyncIterator<string>, ms = 5000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('(no output)'), ms)));
  try {
    return await Promise.race([lines.next().then((r) => (r.done ? '(closed)' : r.value)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `connected`, `timeout` (dropped) or an error code such as ECONNREFUSED. */
async function probe(from: { netns: string }, to: PodInfo, port = 8080, timeoutMs = 700): Promise<string> {
  const out = await run([process.execPath, '-e', PROBE_JS, to.ip, String(port), String(timeoutMs)], from.netns);
  return out.trim();
}

async function connectLatencies(count: number): Promise<number[]> {
  const out = await run([process.execPath, '-e', LATENCY_JS, server.ip, '8080', String(count)], client.netns, { timeoutMs: 120_000 });
  return JSON.parse(out) as number[];
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** N policies selecting the server that allow peers other than the client, then the client's, last. */
function fillerEndpoints(n: number): EndpointPolicy[] {
  const peers = Array.from({ length: 50 }, (_, i) => ({ ...mkPod(`peer${i}`, `10.250.${i}.1`), node: 'n1' }));
  const fillers = Array.from({ length: n }, (_, i) => policy(`filler-${String(i).padStart(5, '0')}`, [pods(peers[i % peers.length]!)]));
  return endpoints({ ingress: { server: [...fillers, policy('zz-allow-client', [pods(client)])] } });
}

describe('Calico-style iptables model on the local kernel', () => {
  beforeAll(async () => {
    if (!canRun) return;
    await buildTopology();
    for (const pod of PODS) {
      const { lines } = startInNetns(pod.netns, SERVER_JS);
      expect(await nextLine(lines)).toBe('ready');
    }
  });

  afterAll(async () => {
    for (const c of children) c.kill();
    if (canRun) await deleteTopology();
  });

  beforeEach(async () => {
    if (canRun) await resetFirewall();
  });

  itKernel('reaches every pod before any rule is installed', async () => {
    expect(await probe(client, server)).toBe('connected');
    expect(await probe(server, other)).toBe('connected');
  });

  for (const backend of IPTABLES_BACKENDS) {
    itKernel(`[${backend}] allows the selected peer and port, drops the rest (timeout, not refused)`, async () => {
      await install(backend, endpoints({ ingress: { server: [policy('allow-client', [pods(client)])] } }));
      expect(await probe(client, server, 8080)).toBe('connected');
      expect(await probe(client, server, 8081)).toBe('timeout');
      expect(await probe(other, server, 8080)).toBe('timeout');
      // unselected pods stay reachable, in both directions
      expect(await probe(server, client, 8080)).toBe('connected');
      expect(await probe(other, client, 8081)).toBe('connected');
    });

    itKernel(`[${backend}] enforces egress policies on the client side`, async () => {
      await install(backend, endpoints({ egress: { client: [denyAll('deny-egress')] } }));
      expect(await probe(client, server)).toBe('timeout');
      expect(await probe(other, server)).toBe('connected');
      await install(backend, endpoints({ egress: { client: [policy('allow-egress-8080', [pods(server)])] } }));
      expect(await probe(client, server, 8080)).toBe('connected');
      expect(await probe(client, server, 8081)).toBe('timeout');
      expect(await probe(client, other, 8080)).toBe('timeout');
    });

    itKernel(`[${backend}] enforces ipBlock except, while another peer may still allow the excepted address`, async () => {
      const block: PeerMatch = { kind: 'cidr', cidr: '10.244.0.0/24', except: ['10.244.0.3/32'] };
      await install(backend, endpoints({ ingress: { server: [policy('block', [block], 'all')] } }));
      expect(await probe(other, server)).toBe('connected');
      expect(await probe(client, server)).toBe('timeout');
      await install(backend, endpoints({ ingress: { server: [policy('block', [block, pods(client)], 'all')] } }));
      expect(await probe(client, server)).toBe('connected');
    });

    itKernel(`[${backend}] keeps an established connection through a re-install that denies new ones`, async () => {
      await install(backend, endpoints({ ingress: { server: [policy('allow-client', [pods(client)])] } }));
      const before = await readCalicoCounters(runner, NODE_NS, { iptablesBackend: backend });
      const { child, lines } = startInNetns(client.netns, HOLD_JS, [server.ip, '8080']);
      expect(await nextLine(lines)).toBe('connected');
      child.stdin.write('one\n');
      expect(await nextLine(lines)).toBe('echo:one');

      await install(backend, endpoints({ ingress: { server: [denyAll('deny-all')] } }));
      expect(await probe(client, server)).toBe('timeout');
      child.stdin.write('two\n');
      expect(await nextLine(lines)).toBe('echo:two');
      child.stdin.end();

      // the old policy chain and its ipset went away; the FORWARD hook stayed single
      const after = await readCalicoCounters(runner, NODE_NS, { iptablesBackend: backend });
      expect(after.chains).toBe(before.chains);
      const save = await run([iptablesBinaries(backend).save, '-t', 'filter'], NODE_NS);
      expect(save).toContain(`:${policyChainName('ingress', 'default/deny-all')} `);
      expect(save).not.toContain(policyChainName('ingress', 'default/allow-client'));
      expect(save.match(/-j cali-FORWARD/g)).toHaveLength(1);
      expect((await run([iptablesBinaries(backend).save, '-t', 'raw'], NODE_NS)).match(/-j cali-PREROUTING/g)).toHaveLength(1);
      expect((await run(['ipset', 'list', '-n'], NODE_NS)).trim()).toBe('');
    });

    itKernel(`[${backend}] installs UDP, SCTP, port-range and multiport matches the kernel accepts`, async () => {
      const ports: PortMatch[] = [
        { protocol: 'UDP', from: 53, to: 53 },
        { protocol: 'SCTP', from: 5000, to: 5000 },
        { protocol: 'TCP', from: 8080, to: 8081 },
        { protocol: 'TCP', from: 9000, to: 9000 },
      ];
      await install(backend, endpoints({ ingress: { server: [policy('protocols', [pods(client)], ports)] } }));
      const save = await run([iptablesBinaries(backend).save, '-t', 'filter'], NODE_NS);
      // (iptables-save moves -p ahead of the comments and the set match)
      expect(save).toMatch(/-p sctp .*-m set .* -m multiport --dports 5000 /);
      expect(save).toMatch(/-p udp .*-m set .* -m multiport --dports 53 /);
      expect(save).toMatch(/-p tcp .*-m set .* -m multiport --dports 8080:8081,9000 /);
      expect(await probe(client, server, 8081)).toBe('connected');
      expect(await probe(other, server, 8081)).toBe('timeout');
    });
  }

  itKernel('makes new connections pay for every policy ahead of the allowing one', { timeout: 600_000 }, async () => {
    const figures: Record<string, number> = {};
    for (const n of [0, 1000, 5000]) {
      await resetFirewall();
      if (n > 0) {
        const r = await install('legacy', fillerEndpoints(n));
        figures[`legacy restore ms @${n}`] = Math.round(r.iptablesRestoreMs);
      }
      figures[`legacy p50 connect us @${n}`] = Math.round(p50(await connectLatencies(500)));
    }
    await resetFirewall();
    const nft = await install('nft', fillerEndpoints(5000));
    figures['nft restore ms @5000'] = Math.round(nft.iptablesRestoreMs);
    figures['nft p50 connect us @5000'] = Math.round(p50(await connectLatencies(500)));
    for (const backend of ['legacy', 'nft'] as const) {
      await resetFirewall();
      const r = await install(backend, fillerEndpoints(10_000));
      figures[`${backend} restore ms @10000`] = Math.round(r.iptablesRestoreMs);
    }
    console.log('calico model figures', figures);

    // The allowing policy is last, so every SYN walks all the policy chains (about 2.2 rules per policy in the
    // Felix 3.30 layout). The pre-3.28 layout measured p50 38 us @0, 310 us @1000, 1155 us @5000 on a quiet 2-CPU
    // VM; this one 98/3973/57237 us on the same VM at load average ~23. The bounds only ask for the O(n) shape.
    const at = (n: number): number => figures[`legacy p50 connect us @${n}`]!;
    expect(at(5000)).toBeGreaterThan(5 * at(0));
    expect(at(1000)).toBeGreaterThan(2 * at(0));
    expect(at(5000)).toBeGreaterThan(at(1000));
  });
});
