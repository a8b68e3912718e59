import { describe, expect, it } from 'vitest';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { encodeInsns, isJumpClass, type SymInsn } from './asm.js';
import { MAX_JUMPS_PER_PROGRAM, MAX_PROGRAMS_PER_CHAIN, compileCalicoEbpfNode, type CalicoEbpfNode, type PolicyChain } from './compile.js';
import { runChain, type PacketState } from './interp.js';

function pod(name: string, ip: string, node = 'n0'): PodInfo {
  return { name, namespace: 'default', labels: {}, ip, node, ports: [] };
}
const server = pod('server', '10.244.0.2');
const client = pod('client', '10.244.1.3', 'n1');
const other = pod('other', '10.244.1.4', 'n1');

const tcp = (from: number, to = from): PortMatch => ({ protocol: 'TCP', from, to });
const udp = (from: number, to = from): PortMatch => ({ protocol: 'UDP', from, to });
const pods = (...ps: PodInfo[]): PeerMatch => ({ kind: 'pods', pods: ps });
const cidr = (c: string, except: string[] = []): PeerMatch => ({ kind: 'cidr', cidr: c, except });
const policy = (name: string, peers: PeerMatch[], ports: PortMatch[] | 'all' = [tcp(8080)]): ResolvedPolicy => ({ policy: `default/${name}`, rules: [{ peers, ports }] });

function endpoint(p: PodInfo, ingress?: ResolvedPolicy[], egress?: ResolvedPolicy[]): EndpointPolicy {
  return {
    pod: p,
    ingress: { isolated: ingress !== undefined, policies: ingress ?? [] },
    egress: { isolated: egress !== undefined, policies: egress ?? [] },
  };
}

const TCP = 6;
const UDP = 17;
const to = (src: string, dport: number, proto = TCP): PacketState => ({ src, dst: server.ip, sport: 40000, dport, proto });

function ingressOf(n: CalicoEbpfNode): PolicyChain {
  const c = n.endpoints.find((e) => e.pod === 'default/server')?.ingress;
  if (!c) throw new Error('no ingress chain');
  return c;
}
const verdict = (n: CalicoEbpfNode, pkt: PacketState): string => runChain(ingressOf(n).programs, n.sets.values(), pkt).verdict;

/** N fillers each allowing one never-seen peer on its own port, then the client's policy (the benchmark shape). */
function fillers(n: number): ResolvedPolicy[] {
  const out: ResolvedPolicy[] = [];
  for (let i = 0; i < n; i++) out.push(policy(`filler-${String(i).padStart(5, '0')}`, [pods(pod(`peer${i}`, `10.250.${(i >> 8) & 255}.${i & 255}`, 'n2'))], [tcp(10000 + (i % 50000))]));
  return out;
}

describe('compileCalicoEbpfNode: the rule walk', () => {
  it('allows only what a rule matches, and denies at the end of the tier', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, [policy('allow-client', [pods(client)])]), endpoint(client)]);
    expect(verdict(n, to(client.ip, 8080))).toBe('allow');
    expect(verdict(n, to(client.ip, 8081))).toBe('deny');
    expect(verdict(n, to(other.ip, 8080))).toBe('deny');
    expect(verdict(n, to(client.ip, 8080, UDP))).toBe('deny');
    // Only the local endpoint is compiled; the client (n1) is not on this node.
    expect(n.endpoints.map((e) => e.pod)).toEqual(['default/server']);
  });

  it('a direction no policy selects has no program (allowed by the entry program)', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, undefined, [policy('e', [pods(client)])])]);
    expect(n.endpoints[0]!.ingress).toBeUndefined();
    expect(n.endpoints[0]!.egress?.programs.length).toBe(1);
  });

  it('a policy without rules isolates: everything is denied', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, [{ policy: 'default/deny', rules: [] }])]);
    expect(verdict(n, to(client.ip, 8080))).toBe('deny');
    expect(ingressOf(n).rules).toBe(0);
  });

  it('port ranges, several protocols and "all ports" of a protocol', () => {
    const n = compileCalicoEbpfNode('n0', [
      endpoint(server, [policy('r', [pods(client)], [tcp(1000, 2000), udp(53), { protocol: 'TCP', from: 7000, to: 7000 }]), policy('all-udp', [pods(other)], [{ protocol: 'UDP' }])]),
    ]);
    for (const p of [1000, 1500, 2000, 7000]) expect(verdict(n, to(client.ip, p))).toBe('allow');
    for (const p of [999, 2001, 6999, 53]) expect(verdict(n, to(client.ip, p))).toBe('deny');
    expect(verdict(n, to(client.ip, 53, UDP))).toBe('allow');
    expect(verdict(n, to(other.ip, 12345, UDP))).toBe('allow');
    expect(verdict(n, to(other.ip, 12345, TCP))).toBe('deny');
    // Calico rules carry one protocol: the k8s rule became two (TCP, UDP), plus one for the second policy.
    expect(ingressOf(n).rules).toBe(3);
  });

  it('ipBlock with except: inline CIDR matches, the excepted range falls through to later rules', () => {
    const n = compileCalicoEbpfNode('n0', [
      endpoint(server, [policy('block', [cidr('192.168.0.0/16', ['192.168.1.0/24'])], 'all'), policy('host', [cidr('192.168.1.7/32')], [tcp(80)])]),
    ]);
    expect(verdict(n, to('192.168.2.1', 1))).toBe('allow');
    expect(verdict(n, to('192.168.1.1', 80))).toBe('deny');
    expect(verdict(n, to('192.168.1.7', 80))).toBe('allow');
    expect(verdict(n, to('192.169.0.1', 80))).toBe('deny');
    expect(verdict(n, to('10.0.0.1', 80, 1))).toBe('deny');
  });

  it('a rule with no peers and no ports allows everything; an IPv6 ipBlock never matches', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, [policy('v6', [cidr('fd00::/8')], 'all'), policy('any', [{ kind: 'any' }], 'all')])]);
    expect(verdict(n, to('1.2.3.4', 9, UDP))).toBe('allow');
    expect(ingressOf(n).rules).toBe(1);
  });

  it('egress rules match the destination', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, undefined, [policy('e', [pods(client)], [tcp(443)])])]);
    const chain = n.endpoints[0]!.egress!;
    const out = (dst: string, dport: number): string => runChain(chain.programs, n.sets.values(), { src: server.ip, dst, sport: 40000, dport, proto: TCP }).verdict;
    expect(out(client.ip, 443)).toBe('allow');
    expect(out(other.ip, 443)).toBe('deny');
  });

  it('IP sets: keyed by the selector place, an empty set still costs a lookup, members are /32 entries', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, [policy('none', [pods()]), policy('c', [pods(client, other)])])]);
    expect([...n.sets.values()].map((s) => s.members.length).sort()).toEqual([0, 2]);
    expect([...n.sets.values()].every((s) => /^[0-9a-f]{16}$/.test(s.id))).toBe(true);
    const r = runChain(ingressOf(n).programs, n.sets.values(), to(other.ip, 8080));
    expect(r).toMatchObject({ verdict: 'allow', ipSetLookups: 2 });
    expect(n.counts.ipSetEntries).toBe(2);
    // A peer joining changes members, not the program.
    const m = compileCalicoEbpfNode('n0', [endpoint(server, [policy('none', [pods(pod('new', '10.244.3.3', 'n1'))]), policy('c', [pods(client, other)])])]);
    expect(ingressOf(m).hash).toBe(ingressOf(n).hash);
    expect([...m.sets.keys()].sort()).toEqual([...n.sets.keys()].sort());
  });

  it('walks policies in order: a connection pays one IP set lookup per filler before its own rule', () => {
    const eps = [endpoint(server, [...fillers(200), policy('zz-client', [pods(client)])])];
    const n = compileCalicoEbpfNode('n0', eps);
    const r = runChain(ingressOf(n).programs, n.sets.values(), to(client.ip, 8080));
    expect(r.verdict).toBe('allow');
    expect(r.ipSetLookups).toBe(201);
    expect(n.counts.rulesTraversedPerPolicy).toBe(1);
    expect(n.counts.programs).toBe(1);
  });
});

const jumpsOf = (p: SymInsn[]): number => p.filter((i) => isJumpClass(i.code)).length;
const slots = (p: SymInsn[][]): number => p.reduce((s, x) => s + x.length, 0);

describe('compileCalicoEbpfNode: what a rule costs, counted as Felix counts it', () => {
  const cost = (policyDebug: boolean) => {
    const one = ingressOf(compileCalicoEbpfNode('n0', [endpoint(server, fillers(1))], { policyDebug }));
    const two = ingressOf(compileCalicoEbpfNode('n0', [endpoint(server, fillers(2))], { policyDebug }));
    return { insns: slots(two.programs) - slots(one.programs), jumps: jumpsOf(two.programs[0]!) - jumpsOf(one.programs[0]!) };
  };

  it('a filler rule is 37 instruction slots and 7 jump-class instructions with policy debug on (Felix default), 26 and 6 off', () => {
    // proto (2 slots, 1 jump) + IP set lookup (20, 2: the call counts) + port (3, 2) + rule-id record (11, 1) + jump to allow (1, 1).
    expect(cost(true)).toEqual({ insns: 37, jumps: 7 });
    expect(cost(false)).toEqual({ insns: 26, jumps: 6 });
  });

  it('calls and exits count against the jump budget', () => {
    const p = ingressOf(compileCalicoEbpfNode('n0', [endpoint(server, fillers(1))])).programs[0]!;
    const calls = p.filter((i) => i.code === 0x85).length;
    const exits = p.filter((i) => i.code === 0x95).length;
    expect(calls).toBeGreaterThan(0);
    expect(exits).toBeGreaterThan(0);
    expect(jumpsOf(p)).toBe(p.filter((i) => [0x05, 0x15, 0x16, 0x35, 0x55, 0xa5, 0xb5].includes(i.code)).length + calls + exits);
  });

  it('with policy debug the matching rule records its id; without, nothing is recorded', () => {
    const eps = (d: boolean) => compileCalicoEbpfNode('n0', [endpoint(server, [...fillers(3), policy('zz-client', [pods(client)])])], { policyDebug: d });
    const on = runChain(ingressOf(eps(true)).programs, eps(true).sets.values(), to(client.ip, 8080));
    expect(on.verdict).toBe('allow');
    expect(on.ruleIds).toHaveLength(1);
    expect(on.ruleIds[0]).toMatch(/^[0-9a-f]{16}$/);
    // Another rule, another id.
    const filler = runChain(ingressOf(eps(true)).programs, eps(true).sets.values(), to('10.250.0.1', 10001));
    expect(filler.verdict).toBe('allow');
    expect(filler.ruleIds).toHaveLength(1);
    expect(filler.ruleIds[0]).not.toBe(on.ruleIds[0]);
    expect(runChain(ingressOf(eps(false)).programs, eps(false).sets.values(), to(client.ip, 8080))).toMatchObject({ verdict: 'allow', ruleIds: [] });
  });
});

describe('compileCalicoEbpfNode: program splitting', () => {
  const big = compileCalicoEbpfNode('n0', [endpoint(server, [...fillers(5000), policy('zz-client', [pods(client)])])]);
  const chain = ingressOf(big);

  it('splits where Felix does: at the first rule after the jump count reached 7992, so each program holds 1141 filler rules', () => {
    expect(chain.programs.length).toBe(Math.ceil(5001 / 1141));
    for (const p of chain.programs.slice(0, -1)) {
      // Felix checks before each rule, so a program may pass the limit by one rule; the verifier's 8192 holds.
      expect(jumpsOf(p)).toBeGreaterThanOrEqual(MAX_JUMPS_PER_PROGRAM);
      expect(jumpsOf(p)).toBeLessThan(8192);
    }
    expect(big.counts.maxProgramsPerChain).toBe(chain.programs.length);
    expect(big.counts.instructions).toBe(slots(chain.programs));
  });

  it('programs past 32767 instructions reach their end through trampolines, every offset within 16 bits', () => {
    expect(chain.programs[0]!.length).toBeGreaterThan(32_767);
    expect(chain.programs.reduce((m, p) => p.reduce((n, i) => Math.max(n, Math.abs(i.off)), m), 0)).toBeLessThanOrEqual(32_767);
    // The first filler's allow jumps over 40000 instructions to "allow", relayed by the trampoline.
    expect(runChain(chain.programs, big.sets.values(), to('10.250.0.0', 10000))).toMatchObject({ verdict: 'allow', programsRun: 1 });
  });

  it('the chain reaches the last rule through every program, and denies after it', () => {
    const last = runChain(chain.programs, big.sets.values(), to(client.ip, 8080));
    expect(last).toMatchObject({ verdict: 'allow', programsRun: chain.programs.length, ipSetLookups: 5001 });
    expect(runChain(chain.programs, big.sets.values(), to(other.ip, 8080)).verdict).toBe('deny');
    // A filler's own peer is allowed in whichever program holds its rule.
    expect(runChain(chain.programs, big.sets.values(), to('10.250.11.184', 10000 + 3000)).verdict).toBe('allow');
  }, 30_000);

  it('sub-program tail calls are resolved through the placement given at encoding', () => {
    const first = chain.programs[0]!;
    const at = first.findIndex((i) => i.subProgram === 1);
    expect(at).toBeGreaterThan(0);
    // mov64 r3, imm: opcode 0xb7, dst 3; imm = the jump map index the placement gives sub-program 1.
    const hex = encodeInsns(first, (k) => 1000 + k).slice(at * 16, at * 16 + 16);
    expect(hex).toBe('b7030000e9030000');
  });
});

describe("compileCalicoEbpfNode: Felix's cap of 24 programs per chain", () => {
  // 24 programs × 1141 filler rules: the last that fits.
  const FITS = MAX_PROGRAMS_PER_CHAIN * 1141;

  it('holds 27384 rules per endpoint direction with policy debug on, 31968 (24 × 1332) with it off', () => {
    expect(ingressOf(compileCalicoEbpfNode('n0', [endpoint(server, fillers(FITS))])).overflow).toBeUndefined();
    // What the 24 live programs of a chain one rule too long hold is the capacity.
    expect(ingressOf(compileCalicoEbpfNode('n0', [endpoint(server, fillers(31969))], { policyDebug: false })).overflow).toEqual({ programsNeeded: 25, rulesLive: 31968 });
  }, 120_000);

  it('an overflowing chain keeps its first 24 programs: a rule in them still allows, the client rule after them is dropped at the failed tail call', () => {
    const n = compileCalicoEbpfNode('n0', [endpoint(server, [...fillers(30000), policy('zz-client', [pods(client)])])]);
    const c = ingressOf(n);
    expect(c.programs).toHaveLength(MAX_PROGRAMS_PER_CHAIN);
    expect(c.overflow).toEqual({ programsNeeded: 27, rulesLive: FITS });
    expect(c.rules).toBe(30001);
    expect(n.overflows).toEqual([{ pod: 'default/server', direction: 'ingress', rules: 30001, rulesLive: FITS, programsNeeded: 27 }]);
    // The last program's tail call names sub-program 24, which is not there.
    expect(c.programs[MAX_PROGRAMS_PER_CHAIN - 1]!.some((i) => i.subProgram === MAX_PROGRAMS_PER_CHAIN)).toBe(true);
    expect(runChain(c.programs, n.sets.values(), to('10.250.0.5', 10005)).verdict).toBe('allow');
    expect(runChain(c.programs, n.sets.values(), to(client.ip, 8080))).toMatchObject({ verdict: 'drop', programsRun: MAX_PROGRAMS_PER_CHAIN });
    expect(runChain(c.programs, n.sets.values(), to(other.ip, 8080)).verdict).toBe('drop');
  }, 120_000);
});
