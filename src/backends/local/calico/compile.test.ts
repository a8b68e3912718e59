import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { CalicoCompileError, MAX_CHAIN_NAME, MAX_IPSET_NAME, compileCalicoNode, renderPorts } from './compile.js';
import {
  countCalicoRules,
  installCalicoRules,
  parseCalicoState,
  planCalicoInstall,
  planCalicoUpdate,
  readCalicoCounters,
  renderIptablesTransaction,
} from './install.js';

function pod(name: string, ip: string, node = 'n0', labels: Record<string, string> = {}): PodInfo {
  return { name, namespace: 'default', labels, ip, node, ports: [] };
}

const server = pod('server', '10.244.0.2', 'n0', { app: 'server' });
const client = pod('client', '10.244.0.3', 'n0', { app: 'client' });
const remote = pod('remote', '10.244.1.2', 'n1', { app: 'remote' });

const IFACES: Record<string, string> = { server: 'cali0000000000a', client: 'cali0000000000b', remote: 'cali0000000000c' };
const ifaceOf = (p: PodInfo): string => IFACES[p.name] ?? `cali${p.name.padStart(11, '0').slice(-11)}`;

const tcp = (from: number, to = from): PortMatch => ({ protocol: 'TCP', from, to });
const pods = (...ps: PodInfo[]): PeerMatch => ({ kind: 'pods', pods: ps });

function allowFrom(name: string, peers: PeerMatch[], ports: PortMatch[] | 'all' = [tcp(8080)]): ResolvedPolicy {
  return { policy: `default/${name}`, rules: [{ peers, ports }] };
}

function endpoint(p: PodInfo, ingress: ResolvedPolicy[] = [], egress: ResolvedPolicy[] = []): EndpointPolicy {
  return {
    pod: p,
    ingress: { isolated: ingress.length > 0, policies: ingress },
    egress: { isolated: egress.length > 0, policies: egress },
  };
}

/** Rules of one chain, without the `-A <chain> ` head. */
function chainRules(text: string, chain: string): string[] {
  const head = `-A ${chain} `;
  return text
    .split('\n')
    .filter((l) => l.startsWith(head))
    .map((l) => l.slice(head.length));
}

function ipsetMembers(text: string, set: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`add ${set} `))
    .map((l) => l.split(' ')[2]!);
}

describe('compileCalicoNode', () => {
  it('renders a small node as Felix lays it out', () => {
    const out = compileCalicoNode('n0', [endpoint(server, [allowFrom('allow-client', [pods(client)])]), endpoint(client)], ifaceOf);
    expect(out.ipsetRestore).toMatchInlineSnapshot(`
      "create cali40s:TgL7JsZ6iKJFwM2hM0abA_6 hash:net family inet hashsize 64 -exist
      add cali40s:TgL7JsZ6iKJFwM2hM0abA_6 10.244.0.3 -exist
      "
    `);
    expect(out.iptablesRestore).toMatchInlineSnapshot(`
      "*filter
      :cali-FORWARD - [0:0]
      :cali-from-wl-dispatch - [0:0]
      :cali-to-wl-dispatch - [0:0]
      :cali-tw-cali0000000000a - [0:0]
      :cali-fw-cali0000000000a - [0:0]
      :cali-tw-cali0000000000b - [0:0]
      :cali-fw-cali0000000000b - [0:0]
      :cali-pi-unTiWWaGh95NVhxgUjdF - [0:0]
      -I FORWARD 1 -m comment --comment "cali:forward-hook" -j cali-FORWARD
      -A cali-FORWARD -j MARK --set-xmark 0x0/0x30000
      -A cali-FORWARD -i cali+ -j cali-from-wl-dispatch
      -A cali-FORWARD -o cali+ -j cali-to-wl-dispatch
      -A cali-FORWARD -m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT
      -A cali-from-wl-dispatch -i cali0000000000a -g cali-fw-cali0000000000a
      -A cali-from-wl-dispatch -i cali0000000000b -g cali-fw-cali0000000000b
      -A cali-to-wl-dispatch -o cali0000000000a -g cali-tw-cali0000000000a
      -A cali-to-wl-dispatch -o cali0000000000b -g cali-tw-cali0000000000b
      -A cali-tw-cali0000000000a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A cali-tw-cali0000000000a -m conntrack --ctstate INVALID -j DROP
      -A cali-tw-cali0000000000a -j MARK --set-xmark 0x0/0x30000
      -A cali-tw-cali0000000000a -m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000
      -A cali-tw-cali0000000000a -m mark --mark 0x0/0x20000 -j cali-pi-unTiWWaGh95NVhxgUjdF
      -A cali-tw-cali0000000000a -m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN
      -A cali-tw-cali0000000000a -m comment --comment "Drop if no policies passed packet" -m mark --mark 0x0/0x20000 -j DROP
      -A cali-fw-cali0000000000a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A cali-fw-cali0000000000a -m conntrack --ctstate INVALID -j DROP
      -A cali-fw-cali0000000000a -j MARK --set-xmark 0x0/0x30000
      -A cali-fw-cali0000000000a -m comment --comment "No policy selects endpoint: allow" -j MARK --set-xmark 0x10000/0x10000
      -A cali-fw-cali0000000000a -m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 -j RETURN
      -A cali-tw-cali0000000000b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A cali-tw-cali0000000000b -m conntrack --ctstate INVALID -j DROP
      -A cali-tw-cali0000000000b -j MARK --set-xmark 0x0/0x30000
      -A cali-tw-cali0000000000b -m comment --comment "No policy selects endpoint: allow" -j MARK --set-xmark 0x10000/0x10000
      -A cali-tw-cali0000000000b -m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 -j RETURN
      -A cali-fw-cali0000000000b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A cali-fw-cali0000000000b -m conntrack --ctstate INVALID -j DROP
      -A cali-fw-cali0000000000b -j MARK --set-xmark 0x0/0x30000
      -A cali-fw-cali0000000000b -m comment --comment "No policy selects endpoint: allow" -j MARK --set-xmark 0x10000/0x10000
      -A cali-fw-cali0000000000b -m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 -j RETURN
      -A cali-pi-unTiWWaGh95NVhxgUjdF -m set --match-set cali40s:TgL7JsZ6iKJFwM2hM0abA_6 src -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x10000/0x10000
      -A cali-pi-unTiWWaGh95NVhxgUjdF -m mark --mark 0x10000/0x10000 -j RETURN
      COMMIT
      "
    `);
    expect(out.counts).toEqual({ rules: 33, chains: 8, ipsets: 1, ipsetMembers: 1 });
  });

  it('puts conntrack first, then policies in the given order, and the drop last', () => {
    const policies = ['p-b', 'p-a', 'p-c'].map((n) => allowFrom(n, [pods(client)]));
    const out = compileCalicoNode('n0', [endpoint(server, policies)], ifaceOf);
    const rules = chainRules(out.iptablesRestore, 'cali-tw-cali0000000000a');
    expect(rules[0]).toBe('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
    expect(rules[1]).toBe('-m conntrack --ctstate INVALID -j DROP');
    expect(rules[2]).toBe('-j MARK --set-xmark 0x0/0x30000');
    const jumps = rules.filter((r) => r.includes('-j cali-pi-')).map((r) => r.split('-j ')[1]);
    expect(jumps).toEqual(out.chains.filter((c) => c.startsWith('cali-pi-')));
    expect(jumps).toHaveLength(3);
    // each jump is guarded by the pass bit and followed by a return on the accept bit
    for (let i = 0; i < rules.length; i++) {
      if (!rules[i]!.includes('-j cali-pi-')) continue;
      expect(rules[i]).toMatch(/^-m mark --mark 0x0\/0x20000 -j cali-pi-/);
      expect(rules[i + 1]).toMatch(/-m mark --mark 0x10000\/0x10000 -j RETURN$/);
    }
    expect(rules.at(-1)).toBe('-m comment --comment "Drop if no policies passed packet" -m mark --mark 0x0/0x20000 -j DROP');
    // the chain order inside the file follows the policy order too
    const firstA = out.iptablesRestore.indexOf(`-A ${jumps[0]} `);
    const firstB = out.iptablesRestore.indexOf(`-A ${jumps[1]} `);
    expect(firstA).toBeGreaterThan(0);
    expect(firstA).toBeLessThan(firstB);
  });

  it('accepts unisolated directions by mark, leaving the other endpoint chain its say', () => {
    const out = compileCalicoNode('n0', [endpoint(client)], ifaceOf);
    for (const chain of ['cali-tw-cali0000000000b', 'cali-fw-cali0000000000b']) {
      const rules = chainRules(out.iptablesRestore, chain);
      expect(rules.some((r) => r.endsWith('-j DROP') && !r.includes('INVALID'))).toBe(false);
      expect(rules.some((r) => r.endsWith('-j ACCEPT') && !r.includes('ESTABLISHED'))).toBe(false);
      expect(rules.at(-2)).toMatch(/--set-xmark 0x10000\/0x10000$/);
      expect(rules.at(-1)).toMatch(/-m mark --mark 0x10000\/0x10000 -j RETURN$/);
    }
    expect(out.chains.some((c) => c.startsWith('cali-pi-') || c.startsWith('cali-po-'))).toBe(false);
    // the final verdict is cali-FORWARD's, after both dispatches
    const fwd = chainRules(out.iptablesRestore, 'cali-FORWARD');
    expect(fwd.at(-1)).toBe('-m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT');
  });

  it('renders egress policies into cali-po- chains matching the destination', () => {
    const egress: ResolvedPolicy = { policy: 'default/egress', rules: [{ peers: [pods(server)], ports: [tcp(8080)] }] };
    const out = compileCalicoNode('n0', [endpoint(client, [], [egress])], ifaceOf);
    const po = out.chains.filter((c) => c.startsWith('cali-po-'));
    expect(po).toHaveLength(1);
    expect(chainRules(out.iptablesRestore, 'cali-fw-cali0000000000b')).toContain(`-m mark --mark 0x0/0x20000 -j ${po[0]}`);
    const body = chainRules(out.iptablesRestore, po[0]!);
    expect(body[0]).toMatch(/^-m set --match-set cali40s:\S+ dst -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x10000\/0x10000$/);
    expect(out.chains.some((c) => c.startsWith('cali-pi-'))).toBe(false);
  });

  it('keeps ipBlock except out of that peer only, so another peer can still allow it', () => {
    const policy: ResolvedPolicy = {
      policy: 'default/block',
      rules: [
        {
          peers: [{ kind: 'cidr', cidr: '10.244.0.0/16', except: ['10.244.0.3/32', '10.244.9.0/24'] }, pods(client)],
          ports: 'all',
        },
      ],
    };
    const out = compileCalicoNode('n0', [endpoint(server, [policy])], ifaceOf);
    const body = chainRules(out.iptablesRestore, out.chains.find((c) => c.startsWith('cali-pi-'))!);
    const cidrRule = body.find((r) => r.startsWith('-s '))!;
    const m = /^-s 10\.244\.0\.0\/16 -m set ! --match-set (\S+) src -j MARK --set-xmark 0x10000\/0x10000$/.exec(cidrRule);
    expect(m).not.toBeNull();
    expect(ipsetMembers(out.ipsetRestore, m![1]!).sort()).toEqual(['10.244.0.3/32', '10.244.9.0/24']);
    // the except does not end the policy: the client peer's rule follows and no RETURN sits between
    const idx = body.indexOf(cidrRule);
    expect(body[idx + 1]).toMatch(/^-m set --match-set \S+ src -j MARK/);
    expect(body[idx + 2]).toBe('-m mark --mark 0x10000/0x10000 -j RETURN');
    expect(body.some((r) => r.includes('-j RETURN') && r.includes('10.244.0.3'))).toBe(false);
  });

  it('normalises CIDRs and skips IPv6 peers that can never match IPv4 packets', () => {
    const policy: ResolvedPolicy = {
      policy: 'default/cidrs',
      rules: [
        { peers: [{ kind: 'cidr', cidr: '10.1.2.3/8', except: [] }], ports: 'all' },
        { peers: [{ kind: 'cidr', cidr: 'fd00::/8', except: [] }], ports: 'all' },
      ],
    };
    const out = compileCalicoNode('n0', [endpoint(server, [policy])], ifaceOf);
    const body = chainRules(out.iptablesRestore, out.chains.find((c) => c.startsWith('cali-pi-'))!);
    expect(body).toEqual(['-s 10.0.0.0/8 -j MARK --set-xmark 0x10000/0x10000', '-m mark --mark 0x10000/0x10000 -j RETURN']);
    expect(() => compileCalicoNode('n0', [endpoint(server, [allowFrom('bad', [{ kind: 'cidr', cidr: '10.0.0.300/8', except: [] }])])], ifaceOf)).toThrow(
      /not an IPv4 address/,
    );
  });

  it('shares one ipset between peers with the same members', () => {
    const other = pod('other', '10.244.0.4');
    const out = compileCalicoNode(
      'n0',
      [
        endpoint(server, [allowFrom('a', [pods(client, other)]), allowFrom('b', [pods(other, client)])]),
        endpoint(client, [allowFrom('c', [pods(other, client, client)], [tcp(80)])]),
      ],
      ifaceOf,
    );
    expect(out.counts.ipsets).toBe(1);
    expect(out.counts.ipsetMembers).toBe(2);
    expect(ipsetMembers(out.ipsetRestore, out.ipsets[0]!)).toEqual(['10.244.0.3', '10.244.0.4']);
    // a selector that matches nothing still gets its (empty) set and rule
    const empty = compileCalicoNode('n0', [endpoint(server, [allowFrom('none', [pods()])])], ifaceOf);
    expect(empty.ipsetRestore).toMatch(/^create cali40s:\S+ hash:net family inet hashsize 64 -exist\n$/);
    expect(empty.counts.ipsetMembers).toBe(0);
  });

  it('keeps names within the kernel limits and rejects bad interface names', () => {
    const many = Array.from({ length: 50 }, (_, i) => allowFrom(`a-very-long-policy-name-that-goes-on-and-on-${i}`, [pods(client)]));
    const out = compileCalicoNode('n0', [endpoint(server, many, many)], ifaceOf);
    for (const c of out.chains) expect(c.length).toBeLessThanOrEqual(MAX_CHAIN_NAME);
    for (const s of out.ipsets) expect(s.length).toBeLessThanOrEqual(MAX_IPSET_NAME);
    expect(new Set(out.chains).size).toBe(out.chains.length);
    expect(() => compileCalicoNode('n0', [endpoint(server)], () => 'cali0123456789ab')).toThrow(CalicoCompileError);
    expect(() => compileCalicoNode('n0', [endpoint(server)], () => 'cali0123456789ab')).toThrow(/1-15 characters/);
    expect(() => compileCalicoNode('n0', [endpoint(server)], () => 'veth01')).toThrow(/must start with "cali"/);
    expect(() => compileCalicoNode('n0', [endpoint(server), endpoint(client)], () => 'cali01')).toThrow(/share interface/);
  });

  it('compiles only the endpoints of the given node', () => {
    const out = compileCalicoNode('n0', [endpoint(server), endpoint(remote, [allowFrom('r', [pods(client)])])], ifaceOf);
    expect(out.chains).not.toContain('cali-tw-cali0000000000c');
    expect(out.chains).toContain('cali-tw-cali0000000000a');
    expect(out.counts.ipsets).toBe(0);
  });

  it('gives a policy that resolved differently for two endpoints two chains', () => {
    const forServer: ResolvedPolicy = { policy: 'default/named-port', rules: [{ peers: [{ kind: 'any' }], ports: [tcp(8080)] }] };
    const forClient: ResolvedPolicy = { policy: 'default/named-port', rules: [{ peers: [{ kind: 'any' }], ports: [tcp(9090)] }] };
    const same = compileCalicoNode('n0', [endpoint(server, [forServer]), endpoint(client, [{ ...forServer }])], ifaceOf);
    expect(same.chains.filter((c) => c.startsWith('cali-pi-'))).toHaveLength(1);
    const diff = compileCalicoNode('n0', [endpoint(server, [forServer]), endpoint(client, [forClient])], ifaceOf);
    const pi = diff.chains.filter((c) => c.startsWith('cali-pi-'));
    expect(pi).toHaveLength(2);
    expect(chainRules(diff.iptablesRestore, pi[0]!)[0]).toContain('--dport 8080');
    expect(chainRules(diff.iptablesRestore, pi[1]!)[0]).toContain('--dport 9090');
  });

  it('is deterministic and independent of the endpoint order', () => {
    const eps = [
      endpoint(server, [allowFrom('a', [pods(client)]), allowFrom('b', [{ kind: 'cidr', cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] }])]),
      endpoint(client, [], [allowFrom('c', [pods(server)])]),
    ];
    const a = compileCalicoNode('n0', eps, ifaceOf);
    const b = compileCalicoNode('n0', [...eps].reverse(), ifaceOf);
    expect(b.iptablesRestore).toBe(a.iptablesRestore);
    expect(b.ipsetRestore).toBe(a.ipsetRestore);
    expect(b.counts).toEqual(a.counts);
  });

  it('counts what it renders', () => {
    const out = compileCalicoNode('n0', [endpoint(server, [allowFrom('a', [pods(client), { kind: 'any' }], [tcp(80), tcp(443)])])], ifaceOf);
    const lines = out.iptablesRestore.split('\n');
    expect(out.counts.rules).toBe(lines.filter((l) => l.startsWith('-A ') || l.startsWith('-I ')).length);
    expect(out.counts.chains).toBe(lines.filter((l) => l.startsWith(':')).length);
    expect(out.counts.chains).toBe(out.chains.length);
  });

  it('compiles 10000 policies for a few endpoints in well under a second', () => {
    const others = Array.from({ length: 200 }, (_, i) => pod(`peer${i}`, `10.245.${i >> 8}.${i & 255}`));
    const policies = Array.from({ length: 10_000 }, (_, i) =>
      allowFrom(`filler-${i}`, [pods(others[i % others.length]!)], [tcp(1000 + (i % 5000))]),
    );
    const eps = [server, client, pod('third', '10.244.0.4')].map((p) => endpoint(p, policies));
    const started = performance.now();
    const out = compileCalicoNode('n0', eps, ifaceOf);
    const ms = performance.now() - started;
    expect(out.counts.chains).toBe(3 + 6 + 10_000);
    expect(out.counts.ipsets).toBe(200);
    expect(ms).toBeLessThan(1000);
  });
});

describe('renderPorts', () => {
  it('renders single ports, ranges, multiport, protocol-only and all', () => {
    expect(renderPorts('all', 'x')).toEqual(['']);
    expect(renderPorts([tcp(80)], 'x')).toEqual(['-p tcp -m tcp --dport 80']);
    expect(renderPorts([tcp(8000, 8100)], 'x')).toEqual(['-p tcp -m tcp --dport 8000:8100']);
    expect(renderPorts([tcp(443), tcp(80), tcp(80), tcp(9000, 9010)], 'x')).toEqual(['-p tcp -m multiport --dports 80,443,9000:9010']);
    expect(renderPorts([{ protocol: 'UDP' }, { protocol: 'UDP', from: 53, to: 53 }, tcp(80)], 'x')).toEqual(['-p tcp -m tcp --dport 80', '-p udp']);
    expect(renderPorts([{ protocol: 'SCTP', from: 5000, to: 5000 }], 'x')).toEqual(['-p sctp -m sctp --dport 5000']);
    expect(renderPorts([], 'x')).toEqual([]);
  });

  it('splits multiport at 15 slots, a range counting two', () => {
    const ports = Array.from({ length: 14 }, (_, i) => tcp(100 + i)).concat([tcp(200, 210)]);
    const out = renderPorts(ports, 'x');
    expect(out).toHaveLength(2);
    expect(out[0]!.split('--dports ')[1]!.split(',')).toHaveLength(14);
    expect(out[1]).toBe('-p tcp -m tcp --dport 200:210'.replace('-m tcp --dport', '-m multiport --dports'));
  });

  it('rejects impossible ports', () => {
    expect(() => renderPorts([tcp(0)], 'rule 1')).toThrow(/rule 1: port 0/);
    expect(() => renderPorts([tcp(90, 80)], 'rule 1')).toThrow(/ends before it starts/);
    expect(() => renderPorts([tcp(70000)], 'rule 1')).toThrow(/not in 1-65535/);
  });
});

describe('Calico install planning', () => {
  const rules = compileCalicoNode('n0', [endpoint(server, [allowFrom('a', [pods(client)])]), endpoint(client)], ifaceOf);

  it('restores ipsets, then one iptables transaction, inside the node namespace', () => {
    const plan = planCalicoInstall('cb-x-n0', rules);
    expect(plan.map((c) => c.argv)).toEqual([['ipset', 'restore', '-exist'], ['iptables-legacy-restore', '--noflush']]);
    expect(plan.every((c) => c.netns === 'cb-x-n0')).toBe(true);
    expect(plan[0]!.input).toBe(rules.ipsetRestore);
    expect(plan[1]!.input).toBe(rules.iptablesRestore);
    expect(planCalicoInstall('cb-x-n0', rules, { iptablesBackend: 'nft' })[1]!.argv[0]).toBe('iptables-nft-restore');
  });

  it('updates without a second hook, flushing kept chains and deleting stale ones in the same commit', () => {
    const current = { hookPresent: true, chains: [...rules.chains, 'cali-pi-oldoldoldoldoldoldol'], ipsets: ['cali40s:old', ...rules.ipsets] };
    const text = renderIptablesTransaction(rules, current);
    expect(text).not.toContain('-j cali-FORWARD');
    expect(text.startsWith('*filter\n:cali-pi-oldoldoldoldoldoldol - [0:0]\n')).toBe(true);
    expect(text.endsWith('-X cali-pi-oldoldoldoldoldoldol\nCOMMIT\n')).toBe(true);
    for (const c of rules.chains) expect(text).toContain(`:${c} - [0:0]\n`);
    expect(text.match(/^COMMIT$/gm)).toHaveLength(1);
    const plan = planCalicoUpdate('cb-x-n0', rules, current);
    expect(plan.map((c) => c.argv)).toEqual([
      ['ipset', 'restore', '-exist'],
      ['iptables-legacy-restore', '--noflush'],
      ['ipset', 'destroy', 'cali40s:old'],
    ]);
    expect(plan[2]!.allowFailure).toBe(true);
  });

  it('reads the installed state and counts from iptables-save', async () => {
    const save = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':cali-FORWARD - [0:0]',
      ':cali-tw-cali0000000000a - [0:0]',
      '-A FORWARD -m comment --comment "cali:forward-hook" -j cali-FORWARD',
      '-A FORWARD -j OTHER',
      '-A cali-FORWARD -j MARK --set-xmark 0x0/0x30000',
      '-A cali-tw-cali0000000000a -j DROP',
      'COMMIT',
    ].join('\n');
    expect(parseCalicoState(save, 'cali40s:a\nother\n')).toEqual({
      hookPresent: true,
      chains: ['cali-FORWARD', 'cali-tw-cali0000000000a'],
      ipsets: ['cali40s:a'],
    });
    expect(countCalicoRules(save)).toEqual({ rules: 3, chains: 2 });
    const runner = new FakeRunner((argv) => (argv.includes('iptables-legacy-save') ? { stdout: save } : { stdout: 'cali40s:a\n' }));
    expect(await readCalicoCounters(runner, 'cb-x-n0')).toEqual({ rules: 3, chains: 2 });
    expect(runner.log[0]!.argv).toEqual(['ip', 'netns', 'exec', 'cb-x-n0', 'iptables-legacy-save', '-t', 'filter']);

    // installCalicoRules reads that state and so leaves the existing hook alone
    const inputs: string[] = [];
    const r2 = new FakeRunner((argv, spec) => {
      if (spec.input !== undefined) inputs.push(spec.input);
      return argv.includes('iptables-legacy-save') ? { stdout: save } : { stdout: '' };
    });
    await installCalicoRules(r2, 'cb-x-n0', rules);
    expect(inputs[1]).not.toContain('-j cali-FORWARD');
    expect(inputs[1]).toContain(':cali-pi-');
  });
});
