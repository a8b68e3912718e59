import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import {
  CalicoCompileError,
  MAX_CHAIN_NAME,
  MAX_IPSET_NAME,
  compileCalicoNode,
  lengthLimitedId,
  policyChainName,
  protocolPorts,
  renderChain,
  splitPortList,
  type CalicoNodeRules,
  type TableName,
} from './compile.js';
import { countCalicoRules, diffCalico, emptyView, installCalicoRules, parseCalicoState, planCalicoDelta, viewOf } from './install.js';

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

/** A chain's rules without the `-A <chain>` head and the cali:<hash> comment. */
function rulesOf(out: CalicoNodeRules, chain: string, table: TableName = 'filter'): string[] {
  const lines = out.tables.find((t) => t.table === table)!.chains.get(chain);
  if (!lines) throw new Error(`no chain ${chain}`);
  return lines.map((l) => l.replace(/^-A \S+ -m comment --comment "cali:[\w-]{16}" ?/, ''));
}

const filterChains = (out: CalicoNodeRules): string[] => [...out.tables.find((t) => t.table === 'filter')!.chains.keys()];

describe('compileCalicoNode (Felix v3.30.3 layout)', () => {
  it("reproduces Felix's rule hashes, so the rendered rules read like a real node's iptables-save", () => {
    const out = compileCalicoNode('n0', [endpoint(client)], ifaceOf);
    const filter = out.tables.find((t) => t.table === 'filter')!;
    // Hashes seen on real Calico nodes for the FORWARD hook and its appended accept rules.
    expect(filter.hooks).toEqual([
      '-I FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" --jump cali-FORWARD',
      '-A FORWARD -m comment --comment "cali:S93hcgKJrXEqnTfs" -m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 --jump ACCEPT',
      '-A FORWARD -m comment --comment "cali:mp77cMpurHhyjLrM" --jump MARK --set-mark 0x10000/0x10000',
    ]);
    expect(out.tables.find((t) => t.table === 'raw')!.hooks).toEqual(['-I PREROUTING -m comment --comment "cali:6gwbT8clXdHdC1b1" --jump cali-PREROUTING']);
    expect(renderChain({ name: 'cali-FORWARD', rules: [{ action: '--jump MARK --set-mark 0/0xe0000' }] })).toEqual([
      '-A cali-FORWARD -m comment --comment "cali:vjrMJCRpqwy5oRoX" --jump MARK --set-mark 0/0xe0000',
    ]);
  });

  it('renders raw and mangle PREROUTING as Felix does (marks, rpfilter, conntrack accept first)', () => {
    const out = compileCalicoNode('n0', [endpoint(client)], ifaceOf);
    expect(rulesOf(out, 'cali-PREROUTING', 'raw')).toEqual([
      '--jump MARK --set-mark 0/0x1b0000',
      '--in-interface cali+ --jump MARK --set-mark 0x80000/0x80000',
      '-m mark --mark 0x80000/0x80000 --jump cali-rpf-skip',
      '-m mark --mark 0x80000/0x80000 -m rpfilter --invert --validmark --jump DROP',
      '-m mark --mark 0/0x80000 --jump cali-from-host-endpoint',
      '-m mark --mark 0x10000/0x10000 --jump ACCEPT',
    ]);
    expect(rulesOf(out, 'cali-PREROUTING', 'mangle')[0]).toBe('-m conntrack --ctstate RELATED,ESTABLISHED --jump ACCEPT');
    expect(rulesOf(out, 'cali-FORWARD')).toEqual([
      '--jump MARK --set-mark 0/0x1a0000',
      '-m mark --mark 0/0x10000 --jump cali-from-hep-forward',
      '--in-interface cali+ --jump cali-from-wl-dispatch',
      '--out-interface cali+ --jump cali-to-wl-dispatch',
      '--jump cali-to-hep-forward',
      '--jump cali-cidr-block',
    ]);
  });

  it('inlines a single policy and renders its one-rule chain as a single rule with multiport', () => {
    const out = compileCalicoNode('n0', [endpoint(server, [allowFrom('allow-client', [pods(client)])]), endpoint(client)], ifaceOf);
    const pi = policyChainName('ingress', 'default/allow-client');
    expect(pi).toMatch(/^cali-pi-_[\w-]{19}$/);
    expect(rulesOf(out, 'cali-tw-cali0000000000a')).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED --jump ACCEPT',
      '-m conntrack --ctstate INVALID --jump DROP',
      '--jump MARK --set-mark 0/0x30000',
      '-m comment --comment "Start of tier default" --jump MARK --set-mark 0/0x20000',
      `-m mark --mark 0/0x20000 --jump ${pi}`,
      '-m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 --jump RETURN',
      '-m comment --comment "End of tier default. DROP if no policies passed packet" -m mark --mark 0/0x20000 --jump DROP',
      '--jump cali-pri-kns.default',
      '-m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 --jump RETURN',
      `--jump ${lengthLimitedId('cali-pri-', 'ksa.default.default')}`,
      '-m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 --jump RETURN',
      '-m comment --comment "DROP if no profiles matched" --jump DROP',
    ]);
    const [set] = [...out.ipsets.keys()];
    expect(rulesOf(out, pi)).toEqual([
      `-m comment --comment "Policy default/knp.default.allow-client ingress" -p tcp -m set --match-set ${set} src -m multiport --destination-ports 8080 --jump MARK --set-mark 0x10000/0x10000`,
    ]);
    expect(out.counts.groupChains).toBe(0);
    // a non-isolated direction goes straight to the profiles: kns allows by mark
    expect(rulesOf(out, 'cali-pri-kns.default')).toEqual(['-m comment --comment "Profile kns.default ingress" --jump MARK --set-mark 0x10000/0x10000']);
    expect(rulesOf(out, 'cali-fw-cali0000000000b')).toContain('-m comment --comment "DROP VXLAN encapped packets originating in workloads" -p 17 -m multiport --destination-ports 4789 --jump DROP');
  });

  it('groups same-selector policies into one cali-gi- chain with a return every 5 (returnStride)', () => {
    const policies = Array.from({ length: 12 }, (_, i) => allowFrom(`p-${String(i).padStart(2, '0')}`, [pods(client)], [tcp(10_000 + i)]));
    const out = compileCalicoNode('n0', [endpoint(server, policies), endpoint(client)], ifaceOf);
    const groups = filterChains(out).filter((c) => c.startsWith('cali-gi-'));
    expect(groups).toHaveLength(1);
    expect(groups[0]!.length).toBe(MAX_CHAIN_NAME);
    const g = rulesOf(out, groups[0]!);
    const pis = policies.map((p) => policyChainName('ingress', p.policy));
    const guarded = (i: number) => `-m mark --mark 0/0x30000 --jump ${pis[i]}`;
    const ret = '-m comment --comment "Return on verdict" -m mark ! --mark 0/0x30000 --jump RETURN';
    expect(g).toEqual([
      `--jump ${pis[0]}`, guarded(1), guarded(2), guarded(3), guarded(4),
      ret, `--jump ${pis[5]}`, guarded(6), guarded(7), guarded(8), guarded(9),
      ret, `--jump ${pis[10]}`, guarded(11),
    ]);
    const tw = rulesOf(out, 'cali-tw-cali0000000000a');
    expect(tw.filter((r) => r.includes('--jump cali-gi-'))).toEqual([`-m mark --mark 0/0x20000 --jump ${groups[0]}`]);
    expect(tw.some((r) => r.includes('cali-pi-'))).toBe(false);
    // 2 endpoint rules + 14 group rules + 12 one-rule policy chains, over 12 policies
    expect(out.rulesTraversedPerPolicy).toBeCloseTo((2 + 14 + 12) / 12, 3);
  });

  it('starts a new group where the selection changes, and inlines groups of one', () => {
    const a = allowFrom('a', [pods(client)]);
    const b = allowFrom('b', [pods(client)]);
    const onlyServer = allowFrom('c', [pods(client)]);
    const out = compileCalicoNode('n0', [endpoint(server, [a, b, onlyServer]), endpoint(client, [a, b])], ifaceOf);
    const tw = rulesOf(out, 'cali-tw-cali0000000000a').filter((r) => r.includes('--jump cali-g') || r.includes('--jump cali-pi'));
    expect(tw).toHaveLength(2);
    expect(tw[0]).toMatch(/--jump cali-gi-/);
    expect(tw[1]).toBe(`-m mark --mark 0/0x20000 --jump ${policyChainName('ingress', 'default/c')}`);
    // the client's group holds the same policies: the same chain, shared
    expect(rulesOf(out, 'cali-tw-cali0000000000b').find((r) => r.includes('--jump cali-gi-'))).toBe(tw[0]);
    expect(out.counts.groupChains).toBe(1);
  });

  it('renders one Calico rule per protocol × peer, each returning on the accept mark, trailing RETURN stripped', () => {
    const other = pod('other', '10.244.0.4');
    const p: ResolvedPolicy = {
      policy: 'default/multi',
      rules: [{ peers: [pods(client), pods(other)], ports: [tcp(443), tcp(80), { protocol: 'UDP', from: 53, to: 53 }] }],
    };
    const out = compileCalicoNode('n0', [endpoint(server, [p])], ifaceOf);
    const body = rulesOf(out, policyChainName('ingress', 'default/multi'));
    expect(body).toHaveLength(7);
    expect(body[0]).toMatch(/^-m comment --comment "Policy default\/knp.default.multi ingress" -p tcp -m set --match-set \S+ src -m multiport --destination-ports 80,443 --jump MARK/);
    expect(body[1]).toBe('-m mark --mark 0x10000/0x10000 --jump RETURN');
    expect(body[2]).toMatch(/^-p tcp -m set --match-set \S+ src -m multiport --destination-ports 80,443 --jump MARK/);
    expect(body[4]).toMatch(/^-p udp -m set .* --destination-ports 53 --jump MARK/);
    expect(body[6]).toMatch(/^-p udp .* --jump MARK --set-mark 0x10000\/0x10000$/);
  });

  it('renders ipBlock except as a negated match block on a scratch mark, leaving other peers their say', () => {
    const policy: ResolvedPolicy = {
      policy: 'default/block',
      rules: [{ peers: [{ kind: 'cidr', cidr: '10.244.0.0/16', except: ['10.244.0.3/32', '10.244.9.0/24'] }, pods(client)], ports: 'all' }],
    };
    const out = compileCalicoNode('n0', [endpoint(server, [policy])], ifaceOf);
    const body = rulesOf(out, policyChainName('ingress', 'default/block'));
    expect(body.slice(0, 5)).toEqual([
      '-m comment --comment "Policy default/knp.default.block ingress" --jump MARK --set-mark 0x80000/0x180000',
      '--source 10.244.0.3/32 --jump MARK --set-mark 0/0x80000',
      '--source 10.244.9.0/24 --jump MARK --set-mark 0/0x80000',
      '--source 10.244.0.0/16 -m mark --mark 0x80000/0x80000 --jump MARK --set-mark 0x10000/0x10000',
      '-m mark --mark 0x10000/0x10000 --jump RETURN',
    ]);
    expect(body[5]).toMatch(/^-m set --match-set \S+ src --jump MARK --set-mark 0x10000\/0x10000$/);
    expect(body).toHaveLength(6);
  });

  it('splits over 15 multiport slots into a port match block', () => {
    const ports = Array.from({ length: 14 }, (_, i) => tcp(100 + i * 2)).concat([tcp(200, 210)]);
    expect(splitPortList(protocolPorts(ports, 'x')[0]!.ranges!)).toHaveLength(2);
    const out = compileCalicoNode('n0', [endpoint(server, [allowFrom('ports', [{ kind: 'any' }], ports)])], ifaceOf);
    const body = rulesOf(out, policyChainName('ingress', 'default/ports'));
    expect(body[0]).toBe('-m comment --comment "Policy default/knp.default.ports ingress" --jump MARK --set-mark 0x0/0x180000');
    expect(body[1]).toMatch(/^-p tcp -m multiport --destination-ports 100,102,.*,126 --jump MARK --set-mark 0x80000\/0x80000$/);
    expect(body[2]).toBe('-p tcp -m multiport --destination-ports 200:210 --jump MARK --set-mark 0x80000/0x80000');
    expect(body[3]).toBe('-p tcp -m mark --mark 0x80000/0x80000 --jump MARK --set-mark 0x10000/0x10000');
  });

  it('merges port lists per protocol as the Kubernetes conversion does, and rejects impossible ports', () => {
    expect(protocolPorts('all', 'x')).toEqual([{}]);
    expect(protocolPorts([tcp(443), tcp(80), tcp(81), tcp(80), tcp(9000, 9010), tcp(9005, 9020)], 'x')).toEqual([
      { protocol: 'tcp', ranges: [[80, 81], [443, 443], [9000, 9020]] },
    ]);
    expect(protocolPorts([{ protocol: 'UDP' }, { protocol: 'UDP', from: 53, to: 53 }, tcp(80)], 'x')).toEqual([{ protocol: 'tcp', ranges: [[80, 80]] }, { protocol: 'udp' }]);
    expect(() => protocolPorts([tcp(0)], 'rule 1')).toThrow(/rule 1: port 0/);
    expect(() => protocolPorts([tcp(90, 80)], 'rule 1')).toThrow(/ends before it starts/);
  });

  it('renders egress policies into cali-po- chains matching the destination', () => {
    const egress: ResolvedPolicy = { policy: 'default/egress', rules: [{ peers: [pods(server)], ports: [tcp(8080)] }] };
    const out = compileCalicoNode('n0', [endpoint(client, [], [egress])], ifaceOf);
    const po = policyChainName('egress', 'default/egress');
    expect(po.startsWith('cali-po-')).toBe(true);
    expect(rulesOf(out, 'cali-fw-cali0000000000b')).toContain(`-m mark --mark 0/0x20000 --jump ${po}`);
    expect(rulesOf(out, po)[0]).toMatch(/-p tcp -m set --match-set cali40s:\S+ dst -m multiport --destination-ports 8080 --jump MARK/);
    expect(filterChains(out).some((c) => c.startsWith('cali-pi-'))).toBe(false);
  });

  it('normalises CIDRs, drops IPv6 peers and negated catch-alls, renders an empty policy as a comment-only rule', () => {
    const policy: ResolvedPolicy = {
      policy: 'default/cidrs',
      rules: [
        { peers: [{ kind: 'cidr', cidr: '10.1.2.3/8', except: [] }], ports: 'all' },
        { peers: [{ kind: 'cidr', cidr: 'fd00::/8', except: [] }], ports: 'all' },
        { peers: [{ kind: 'cidr', cidr: '10.0.0.0/8', except: ['0.0.0.0/0'] }], ports: 'all' },
      ],
    };
    const out = compileCalicoNode('n0', [endpoint(server, [policy, { policy: 'default/deny', rules: [] }])], ifaceOf);
    expect(rulesOf(out, policyChainName('ingress', 'default/cidrs'))).toEqual([
      '-m comment --comment "Policy default/knp.default.cidrs ingress" --source 10.0.0.0/8 --jump MARK --set-mark 0x10000/0x10000',
    ]);
    expect(rulesOf(out, policyChainName('ingress', 'default/deny'))).toEqual(['-m comment --comment "Policy default/knp.default.deny ingress"']);
    expect(() => compileCalicoNode('n0', [endpoint(server, [allowFrom('bad', [{ kind: 'cidr', cidr: '10.0.0.300/8', except: [] }])])], ifaceOf)).toThrow(/not an IPv4 address/);
  });

  it('creates ipsets as Felix does: hash:net, maxelem 1048576, no hash size; each set then its members, one COMMIT', () => {
    const out = compileCalicoNode('n0', [endpoint(server, [allowFrom('a', [pods(client)]), allowFrom('none', [pods()]), allowFrom('b', [pods(server, client)])])], ifaceOf);
    const lines = out.ipsetRestore.trim().split('\n');
    // felix/ipsets/ipsets.go writeUpdates: a set's members follow its create, before the next set's create
    const kinds = lines.map((l) => l.split(' ')[0]);
    expect(kinds.at(-1)).toBe('COMMIT');
    const setOf = (l: string) => l.split(' ')[1];
    for (let i = 1; i < lines.length - 1; i++) if (kinds[i] === 'add') expect(setOf(lines[i]!)).toBe(setOf(lines[i - 1]!));
    expect(kinds.filter((k) => k === 'create')).toHaveLength(3);
    for (const l of lines.filter((x) => x.startsWith('create'))) expect(l).toMatch(/^create cali40s:[\w-]{23} hash:net family inet maxelem 1048576$/);
    expect(lines.filter((l) => l.startsWith('add'))).toHaveLength(3);
    expect(out.counts.ipsetMembers).toBe(3);
  });

  it('keeps names within the kernel limits and rejects bad interface names', () => {
    const many = Array.from({ length: 50 }, (_, i) => allowFrom(`a-very-long-policy-name-that-goes-on-and-on-${i}`, [pods(client)]));
    const out = compileCalicoNode('n0', [endpoint(server, many, many)], ifaceOf);
    for (const c of filterChains(out)) expect(c.length).toBeLessThanOrEqual(MAX_CHAIN_NAME);
    for (const s of out.ipsets.keys()) expect(s.length).toBeLessThanOrEqual(MAX_IPSET_NAME);
    expect(() => compileCalicoNode('n0', [endpoint(server)], () => 'cali0123456789ab')).toThrow(CalicoCompileError);
    expect(() => compileCalicoNode('n0', [endpoint(server)], () => 'veth01')).toThrow(/must start with "cali"/);
    expect(() => compileCalicoNode('n0', [endpoint(server), endpoint(client)], () => 'cali01')).toThrow(/share interface/);
  });

  it('builds the dispatch tree on the character after the common prefix, unknown interfaces dropped', () => {
    const a = pod('a', '10.244.0.10');
    const b = pod('b', '10.244.0.11');
    const c = pod('c', '10.244.0.12');
    const names: Record<string, string> = { a: 'cali1aaaaaaaaaa', b: 'cali1bbbbbbbbbb', c: 'cali2cccccccccc' };
    const out = compileCalicoNode('n0', [endpoint(a), endpoint(b), endpoint(c)], (p) => names[p.name]!);
    expect(rulesOf(out, 'cali-to-wl-dispatch')).toEqual([
      '--out-interface cali1+ --goto cali-to-wl-dispatch-1',
      '--out-interface cali2cccccccccc --goto cali-tw-cali2cccccccccc',
      '-m comment --comment "Unknown interface" --jump DROP',
    ]);
    expect(rulesOf(out, 'cali-to-wl-dispatch-1')).toEqual([
      '--out-interface cali1aaaaaaaaaa --goto cali-tw-cali1aaaaaaaaaa',
      '--out-interface cali1bbbbbbbbbb --goto cali-tw-cali1bbbbbbbbbb',
      '-m comment --comment "Unknown interface" --jump DROP',
    ]);
  });

  it('compiles only the endpoints of the given node, deterministically', () => {
    const out = compileCalicoNode('n0', [endpoint(server), endpoint(remote, [allowFrom('r', [pods(client)])])], ifaceOf);
    expect(filterChains(out)).not.toContain('cali-tw-cali0000000000c');
    expect(filterChains(out)).toContain('cali-tw-cali0000000000a');
    expect(out.counts.ipsets).toBe(0);
    const eps = [endpoint(server, [allowFrom('a', [pods(client)])]), endpoint(client, [], [allowFrom('c', [pods(server)])])];
    expect(compileCalicoNode('n0', [...eps].reverse(), ifaceOf).iptablesRestore).toBe(compileCalicoNode('n0', eps, ifaceOf).iptablesRestore);
  });

  it('counts what it renders', () => {
    const out = compileCalicoNode('n0', [endpoint(server, [allowFrom('a', [pods(client), { kind: 'any' }], [tcp(80), tcp(443)])])], ifaceOf);
    const lines = out.iptablesRestore.split('\n');
    expect(out.counts.rules).toBe(lines.filter((l) => l.startsWith('-A ') || l.startsWith('-I ')).length);
    expect(out.counts.chains).toBe(lines.filter((l) => l.startsWith(':')).length);
    expect(lines.filter((l) => l === 'COMMIT')).toHaveLength(3);
  });
});

describe('diffCalico: only what changed is written', () => {
  const fillers = (n: number, peers: PodInfo[]) => Array.from({ length: n }, (_, i) => allowFrom(`f-${i}`, [pods(peers[i % peers.length]!)], [tcp(10_000 + i)]));
  const p1 = pod('p1', '10.245.0.1');
  const p2 = pod('p2', '10.245.0.2');
  const base = compileCalicoNode('n0', [endpoint(server, fillers(8, [p1])), endpoint(client)], ifaceOf);

  it('writes everything, hooks included, into an empty node; nothing when nothing changed', () => {
    const first = diffCalico(emptyView(), base);
    expect(first.iptablesRestore).toBe(base.iptablesRestore);
    expect(first.changed.chainsWritten).toBe(base.counts.chains);
    expect(first.changed.setsCreated).toBe(base.counts.ipsets);
    const again = diffCalico(viewOf(base), base);
    expect(again).toEqual({ ipsetRestore: '', iptablesRestore: '', destroySets: [], setMatchesWritten: 0, changed: expect.objectContaining({ chainsWritten: 0, rulesWritten: 0, setMembersAdded: 0 }) });
    expect(planCalicoDelta('cb-x-n0', base, again)).toEqual([]);
  });

  it('a peer joining a selector is one ipset member add, no chain written', () => {
    const next = compileCalicoNode('n0', [endpoint(server, fillers(8, [p1]).map((p, i) => (i === 3 ? { ...p, rules: [{ ...p.rules[0]!, peers: [pods(p1, p2)] }] } : p))), endpoint(client)], ifaceOf);
    const d = diffCalico(viewOf(base), next);
    expect(d.iptablesRestore).toBe('');
    expect(d.ipsetRestore).toMatch(/^add cali40s:\S+ 10\.245\.0\.2\/32\nCOMMIT\n$/);
    expect(d.changed).toMatchObject({ chainsWritten: 0, setMembersAdded: 1, setMembersDeleted: 0, setsCreated: 0 });
    const back = diffCalico(viewOf(next), base);
    expect(back.ipsetRestore).toMatch(/^del cali40s:\S+ 10\.245\.0\.2\/32 --exist\nCOMMIT\n$/);
  });

  it('an added policy writes its chain, the group and the endpoint chain only; a removed one deletes its chain and set', () => {
    const more = compileCalicoNode('n0', [endpoint(server, [...fillers(8, [p1]), allowFrom('zz-new', [pods(p2)])]), endpoint(client)], ifaceOf);
    const d = diffCalico(viewOf(base), more);
    const declared = d.iptablesRestore.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1, l.indexOf(' ')));
    const group = filterChains(more).find((c) => c.startsWith('cali-gi-'))!;
    expect(declared.sort()).toEqual([filterChains(base).find((c) => c.startsWith('cali-gi-'))!, group, 'cali-tw-cali0000000000a', policyChainName('ingress', 'default/zz-new')].sort());
    expect(d.iptablesRestore.match(/^\*\w+/gm)).toEqual(['*filter']);
    expect(d.iptablesRestore).not.toContain('-I FORWARD');
    expect(d.changed).toMatchObject({ chainsWritten: 3, chainsDeleted: 1, setsCreated: 1, setMembersAdded: 1 });
    // the old group chain goes in the same COMMIT, after the endpoint chain stopped jumping to it
    expect(d.iptablesRestore.indexOf('-X cali-gi-')).toBeGreaterThan(d.iptablesRestore.lastIndexOf('-A cali-tw-'));
    const back = diffCalico(viewOf(more), base);
    expect(back.destroySets).toHaveLength(1);
    expect(back.iptablesRestore).toContain(`-X ${policyChainName('ingress', 'default/zz-new')}`);
  });

  it('a new pod gets its endpoint chains and dispatch entries', () => {
    const newPod = pod('newpod', '10.244.0.9');
    const next = compileCalicoNode('n0', [endpoint(server, fillers(8, [p1])), endpoint(client), endpoint(newPod)], ifaceOf);
    const d = diffCalico(viewOf(base), next);
    const declared = d.iptablesRestore.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1, l.indexOf(' ')));
    expect(declared).toEqual(expect.arrayContaining([`cali-tw-${ifaceOf(newPod)}`, `cali-fw-${ifaceOf(newPod)}`]));
    expect(declared.some((c) => c.startsWith('cali-from-wl-dispatch'))).toBe(true);
    expect(declared.some((c) => c.startsWith('cali-pi-'))).toBe(false);
  });

  it('reads what a node holds from iptables-save and rewrites it all (contents unknown), hooks kept', async () => {
    const save = [
      '*raw',
      ':PREROUTING ACCEPT [0:0]',
      ':cali-PREROUTING - [0:0]',
      '-A PREROUTING -m comment --comment "cali:6gwbT8clXdHdC1b1" -j cali-PREROUTING',
      'COMMIT',
      '*filter',
      ':FORWARD ACCEPT [0:0]',
      ':cali-FORWARD - [0:0]',
      ':cali-pi-_stalestalestalestale - [0:0]',
      '-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD',
      '-A FORWARD -j OTHER',
      '-A cali-FORWARD -m comment --comment "cali:W_vvds1Nw3n9QE2f" -j MARK --set-xmark 0x0/0x1a0000',
      'COMMIT',
    ].join('\n');
    const view = parseCalicoState(save, 'cali40s:a\nother\n');
    expect([...view.hooked].sort()).toEqual(['filter', 'raw']);
    expect(view.ipsets).toEqual(new Map([['cali40s:a', null]]));
    expect(countCalicoRules(save)).toEqual({ rules: 3, chains: 3 });
    const d = diffCalico(view, base);
    expect(d.iptablesRestore).not.toContain('-I FORWARD');
    expect(d.iptablesRestore).toContain('-I PREROUTING'); // mangle had no hook yet
    expect(d.iptablesRestore).toContain('-X cali-pi-_stalestalestalestale');
    expect(d.destroySets).toEqual(['cali40s:a']);

    const inputs: Array<{ argv: string[]; input?: string }> = [];
    const runner = new FakeRunner((argv, spec) => {
      inputs.push({ argv, input: spec.input });
      return argv.includes('iptables-nft-save') ? { stdout: save } : argv.includes('list') ? { stdout: 'cali40s:a\n' } : { stdout: '' };
    });
    const r = await installCalicoRules(runner, 'cb-x-n0', base);
    // felix/iptables/table.go's restore arguments: --noflush --verbose, and the xtables lock waited for
    expect(inputs.map((i) => i.argv.slice(4))).toEqual([
      ['iptables-nft-save'],
      ['ipset', 'list', '-n'],
      ['ipset', 'restore'],
      ['iptables-nft-restore', '--noflush', '--verbose', '--wait', '10', '--wait-interval', '50000'],
      ['ipset', 'destroy', 'cali40s:a'],
    ]);
    expect(r.changed.chainsDeleted).toBe(1);
  });
});
