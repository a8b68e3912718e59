// Calico-eBPF-style data plane model, the pure part: compiles each local endpoint's resolved policies into BPF
// policy programs the way Felix's polprog builder does (projectcalico/calico felix/bpf/polprog), and the IP sets
// they look up into entries of one LPM trie keyed like Felix's (felix/bpf/ipsets):
//
//   header: r6 = ctx, r9 = &state (per-CPU map, filled by the fixed tc program from the packet)
//   for each policy of the default tier, for each rule (one per peer × protocol, as Calico's k8s conversion
//   splits them):  protocol? → CIDR / not-CIDR? → IP set lookup? → ports? → jump "allow"; a failed match jumps
//   to the rule's end, i.e. the next rule
//   end of tier: "deny"   allow/deny: write state->pol_rc and tail-call the fixed allow/deny program
//
// The verifier caps the jumps on one path (8192, Felix keeps 200 headroom) and a jump offset is 16 bits, so a
// long walk is split: at a rule boundary the program tail-calls the next sub-program of its chain. A chain can
// be at most 32 programs long: the kernel allows 33 tail calls per packet (entry → 32 programs → allow).
import { createHash } from 'node:crypto';
import type { EndpointDirection, EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import {
  Block,
  encodeInsns,
  HELPER_MAP_LOOKUP_ELEM,
  HELPER_TAIL_CALL,
  JEQ,
  JEQ32,
  JLE,
  JLT,
  JNE,
  MAP_IP_SETS,
  MAP_JUMP_POLICY,
  MAP_JUMP_STATIC,
  MAP_STATE,
  R0,
  R1,
  R10,
  R2,
  R3,
  R6,
  R9,
  type SymInsn,
} from './asm.js';
import { BenchError } from '../../../errors.js';

/** Felix: verifierMaxJumpsLimit (8192) − maxJumpsHeadroom (200). */
export const MAX_JUMPS_PER_PROGRAM = 8192 - 200;
/** A jump's offset is a signed 16-bit count of instructions: "allow" at the end must stay reachable. */
export const MAX_INSNS_PER_PROGRAM = 32_000;
/** Tail calls per packet (MAX_TAIL_CALL_CNT = 33): the entry program's one, then 31 between sub-programs, then allow. */
export const MAX_PROGRAMS_PER_CHAIN = 32;

// struct cali_state offsets (calico_ebpf.bpf.c).
const ST_IP_SRC = 0;
const ST_IP_DST = 4;
const ST_SPORT = 8;
const ST_DPORT = 10;
const ST_PROTO = 12;
const ST_POL_RC = 16;
const POL_ALLOW = 1;
const POL_DENY = 2;
const STATIC_ALLOW = 0;
const STATIC_DENY = 1;
const TC_ACT_SHOT = 2;

// Stack: the state map key at -4, the IP set key (20 bytes) below it, as Felix lays out its frame.
const OFF_STATE_KEY = -4;
const OFF_IPSET_KEY = -36;
// struct ip4_set_key offsets.
const KEY_PREFIX = 0;
const KEY_ID = 4;
const KEY_ADDR = 12;
const KEY_PORT = 16;
const KEY_PROTO = 18;
const KEY_PAD = 19;
/** A lookup key covers id, address, port and protocol: 64 + 32 + 16 + 8 (+ pad) bits, as Felix sets it. */
const LOOKUP_PREFIXLEN = 128;

const PROTO_NUMBER: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };

export class CalicoEbpfCompileError extends BenchError {
  constructor(message: string) {
    super('internal', message);
  }
}

/** A chain needs more programs than the tail-call limit allows: the endpoint cannot be programmed. */
export class PolicyProgramCapacityError extends BenchError {
  constructor(
    readonly pod: string,
    readonly direction: 'ingress' | 'egress',
    readonly programsNeeded: number,
    readonly rules: number,
  ) {
    super(
      'capacity',
      `calico-ebpf model: the ${direction} policy of pod ${pod} needs ${programsNeeded} chained BPF programs for ${rules} rules, ` +
        `more than the ${MAX_PROGRAMS_PER_CHAIN} the kernel's tail-call limit allows (33 per packet); Felix would fail to program this endpoint. ` +
        `Use fewer policies or rules selecting the pod.`,
    );
  }
}

export interface IpSet {
  /** 64-bit set id, 16 hex digits (big-endian in the key). */
  id: string;
  /** Members as CIDRs (pods: a.b.c.d/32). */
  members: string[];
}

/** One endpoint-direction's policy as a chain of programs (empty when no policy selects that direction). */
export interface PolicyChain {
  pod: string;
  direction: 'ingress' | 'egress';
  /** Assembled programs; program k > 0 is reached by tail call from program k−1 (placeholder subProgram: k). */
  programs: SymInsn[][];
  /** Content hash of the chain (independent of where it is placed in the jump map): changed ⇔ must reload. */
  hash: string;
  policies: number;
  /** Rules a packet walks when none allows it (all of them). */
  rules: number;
}

export interface CalicoEbpfEndpoint {
  pod: string;
  podInfo: PodInfo;
  ingress: PolicyChain | undefined;
  egress: PolicyChain | undefined;
}

export interface CalicoEbpfCounts {
  endpoints: number;
  programs: number;
  instructions: number;
  ipSets: number;
  ipSetEntries: number;
  maxProgramsPerChain: number;
  maxRulesPerChain: number;
  /** Rules walked per policy on the endpoint-direction with the most policies (0 without policies). */
  rulesTraversedPerPolicy: number;
}

export interface CalicoEbpfNode {
  node: string;
  endpoints: CalicoEbpfEndpoint[];
  sets: Map<string, IpSet>;
  counts: CalicoEbpfCounts;
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** [network address as u32, prefix], or undefined for IPv6; throws on garbage. */
export function parseIpv4Cidr(text: string, what: string): [number, number] | undefined {
  if (text.includes(':')) return undefined;
  const m = IPV4_CIDR.exec(text.trim());
  const octets = m ? [m[1], m[2], m[3], m[4]].map(Number) : [];
  const prefix = m?.[5] === undefined ? 32 : Number(m[5]);
  if (!m || octets.some((o) => o > 255) || prefix > 32) throw new CalicoEbpfCompileError(`${what}: "${text}" is not an IPv4 address or CIDR`);
  const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return [addr - (addr % size), prefix];
}

/** A u32 in network byte order, read as the little-endian word a BPF_W load of it yields. */
function asLoadedWord(hostValue: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(hostValue >>> 0);
  return b.readInt32LE(0);
}

function setIdFor(identity: string): string {
  const id = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  return /^0+$/.test(id) ? '0000000000000001' : id;
}

/** Collects IP sets; a set is named after the selector's place (policy, direction, rule, peer), as Felix names
 * a set after its selector, so a peer joining changes members, not the programs. */
class IpSetTable {
  readonly sets = new Map<string, IpSet>();

  setFor(identity: string, members: string[]): IpSet {
    const sorted = [...new Set(members)].sort();
    let id = setIdFor(identity);
    const existing = this.sets.get(id);
    if (existing && existing.members.join(',') !== sorted.join(',')) id = setIdFor(`${identity}|${sorted.join(',')}`);
    const set = this.sets.get(id) ?? { id, members: sorted };
    this.sets.set(id, set);
    return set;
  }
}

interface ProtoGroup {
  /** undefined: the rule lists no ports (any protocol). */
  protocol?: number;
  /** Empty with a protocol: every port of it. */
  ranges: Array<[number, number]>;
}

function validatePort(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CalicoEbpfCompileError(`${what}: port ${n} is not in 1-65535`);
}

/** Calico rules carry one protocol: a k8s rule's ports become one group per protocol. */
export function protoGroups(ports: PortMatch[] | 'all', what: string): ProtoGroup[] {
  if (ports === 'all') return [{ ranges: [] }];
  const byProto = new Map<number, { all: boolean; ranges: Array<[number, number]> }>();
  for (const p of ports) {
    const proto = PROTO_NUMBER[p.protocol];
    if (proto === undefined) throw new CalicoEbpfCompileError(`${what}: unknown protocol ${p.protocol}`);
    const g = byProto.get(proto) ?? { all: false, ranges: [] };
    byProto.set(proto, g);
    if (p.from === undefined) {
      g.all = true;
      continue;
    }
    const to = p.to ?? p.from;
    validatePort(p.from, what);
    validatePort(to, what);
    if (to < p.from) throw new CalicoEbpfCompileError(`${what}: port range ${p.from}-${to} ends before it starts`);
    g.ranges.push([p.from, to]);
  }
  return [...byProto.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([protocol, g]) => ({ protocol, ranges: g.all ? [] : [...new Map(g.ranges.map((r) => [`${r[0]}-${r[1]}`, r] as const)).values()].sort((a, b) => a[0] - b[0] || a[1] - b[1]) }));
}

const SHARED_LABELS = new Set(['allow', 'deny', 'exit']);

/** One Calico rule: the match criteria in Felix's order, falling through to "allow". */
function writeRule(b: Block, peer: PeerMatch, group: ProtoGroup, ingress: boolean, set: IpSet | undefined): void {
  const addrOff = ingress ? ST_IP_SRC : ST_IP_DST;
  const portOff = ingress ? ST_SPORT : ST_DPORT;
  let part = 0;
  const fresh = (): string => `part${part++}`;
  if (group.protocol !== undefined) {
    b.load8(R1, R9, ST_PROTO).jumpImm(JNE, R1, group.protocol, 'next');
  }
  if (peer.kind === 'cidr') {
    const [net, prefix] = parseIpv4Cidr(peer.cidr, 'ipBlock')!;
    if (prefix > 0) {
      const match = fresh();
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      b.load32(R1, R9, addrOff).movImm32(R2, asLoadedWord(mask)).and32(R2, R1).jumpImm(JEQ32, R2, asLoadedWord(net), match);
      b.jump('next').label(match);
    }
    for (const e of peer.except) {
      const parsed = parseIpv4Cidr(e, 'ipBlock except');
      if (!parsed) continue;
      const [enet, eprefix] = parsed;
      const emask = eprefix === 0 ? 0 : (0xffffffff << (32 - eprefix)) >>> 0;
      b.load32(R1, R9, addrOff).movImm32(R2, asLoadedWord(emask)).and32(R2, R1).jumpImm(JEQ32, R2, asLoadedWord(enet), 'next');
    }
  }
  if (set) {
    // Felix sets up the whole key for every lookup (setUpIPSetKey), so each IP set match costs the same.
    const k = OFF_IPSET_KEY;
    const id = Buffer.from(set.id, 'hex');
    b.movImm64(R1, 0).store8(R10, R1, k + KEY_PAD);
    b.movImm64(R1, LOOKUP_PREFIXLEN).store32(R10, R1, k + KEY_PREFIX);
    b.load32(R1, R9, addrOff).store32(R10, R1, k + KEY_ADDR);
    b.load16(R1, R9, portOff).store16(R10, R1, k + KEY_PORT);
    b.load8(R1, R9, ST_PROTO).store8(R10, R1, k + KEY_PROTO);
    b.movImm32(R1, id.readInt32LE(0)).store32(R10, R1, k + KEY_ID);
    b.movImm32(R1, id.readInt32LE(4)).store32(R10, R1, k + KEY_ID + 4);
    b.loadMapFd(R1, MAP_IP_SETS).mov64(R2, R10).addImm64(R2, k).call(HELPER_MAP_LOOKUP_ELEM);
    b.jumpImm(JEQ, R0, 0, 'next');
  }
  if (group.ranges.length > 0) {
    const match = fresh();
    b.load16(R1, R9, ST_DPORT);
    for (const [from, to] of group.ranges) {
      if (from === to) {
        b.jumpImm(JEQ, R1, from, match);
        continue;
      }
      const skip = fresh();
      b.jumpImm(JLT, R1, from, skip).jumpImm(JLE, R1, to, match).label(skip);
    }
    b.jump('next').label(match);
  }
  b.jump('allow');
  b.label('next');
}

function writeHeader(b: Block): void {
  b.mov64(R6, R1);
  b.movImm64(R1, 0).store32(R10, R1, OFF_STATE_KEY);
  b.mov64(R2, R10).addImm64(R2, OFF_STATE_KEY);
  b.loadMapFd(R1, MAP_STATE).call(HELPER_MAP_LOOKUP_ELEM);
  b.jumpImm(JEQ, R0, 0, 'exit');
  b.mov64(R9, R0);
}

function writeTailCall(b: Block, map: number, index: number | { subProgram: number }): void {
  b.mov64(R1, R6).loadMapFd(R2, map);
  if (typeof index === 'number') b.movImm32(R3, index);
  else b.movSubProgramIndex(R3, index.subProgram);
  b.call(HELPER_TAIL_CALL);
}

/**
 * deny / exit / allow targets. `next` set: this program ends by tail-calling sub-program `next` instead of
 * denying. Unreachable code is rejected by the verifier, so "allow" is written only where a rule jumps to it.
 */
function writeFooter(b: Block, next: number | undefined): void {
  if (next !== undefined) {
    // Falling off the last rule of this part continues the walk in the next program.
    writeTailCall(b, MAP_JUMP_POLICY, { subProgram: next });
  } else {
    b.label('deny');
    b.movImm32(R1, POL_DENY).store32(R9, R1, ST_POL_RC);
    writeTailCall(b, MAP_JUMP_STATIC, STATIC_DENY);
  }
  b.label('exit');
  b.movImm64(R0, TC_ACT_SHOT).exit();
  if (b.insns.some((i) => i.target === 'allow')) {
    b.label('allow');
    b.movImm32(R1, POL_ALLOW).store32(R9, R1, ST_POL_RC);
    writeTailCall(b, MAP_JUMP_STATIC, STATIC_ALLOW);
    b.movImm64(R0, TC_ACT_SHOT).exit(); // tail call failed: fail closed
  }
}

const FOOTER_INSNS = 40;

interface RuleSpec {
  peer: PeerMatch;
  group: ProtoGroup;
  set?: IpSet;
}

/** The Calico rules a k8s policy becomes (peers × protocol groups), with the IP sets they use. */
function policyRules(policy: ResolvedPolicy, direction: 'ingress' | 'egress', sets: IpSetTable): RuleSpec[] {
  const out: RuleSpec[] = [];
  policy.rules.forEach((rule, ri) => {
    const what = `policy ${policy.policy} ${direction} rule ${ri}`;
    const groups = protoGroups(rule.ports, what);
    rule.peers.forEach((peer, pi) => {
      let set: IpSet | undefined;
      if (peer.kind === 'cidr') {
        if (!parseIpv4Cidr(peer.cidr, `${what}: ipBlock`)) return; // an IPv6 block never matches IPv4 packets
        for (const e of peer.except) parseIpv4Cidr(e, `${what}: ipBlock except`);
      } else if (peer.kind === 'pods') {
        const members: string[] = [];
        for (const pod of peer.pods) {
          const net = pod.ip ? parseIpv4Cidr(pod.ip, `${what}: pod ${pod.namespace}/${pod.name}`) : undefined;
          if (net) members.push(`${pod.ip.trim()}/32`);
        }
        // An empty set still costs its lookup, as Felix's set for a selector that matches nothing does.
        set = sets.setFor(`${policy.policy}|${direction}|${ri}|${pi}`, members);
      }
      for (const group of groups) out.push({ peer, group, set });
    });
  });
  return out;
}

function chainFor(pod: string, dir: EndpointDirection, direction: 'ingress' | 'egress', sets: IpSetTable): PolicyChain | undefined {
  if (!dir.isolated) return undefined;
  const ingress = direction === 'ingress';
  const blocks: Block[] = [];
  let b = new Block();
  writeHeader(b);
  let rules = 0;
  let n = 0;
  const finish = (next: number | undefined): void => {
    writeFooter(b, next);
    blocks.push(b);
  };
  for (const policy of dir.policies) {
    for (const spec of policyRules(policy, direction, sets)) {
      const r = new Block();
      writeRule(r, spec.peer, spec.group, ingress, spec.set);
      if (b.jumps + r.jumps > MAX_JUMPS_PER_PROGRAM || b.insns.length + r.insns.length + FOOTER_INSNS > MAX_INSNS_PER_PROGRAM) {
        finish(blocks.length + 1);
        b = new Block();
        writeHeader(b);
      }
      b.append(r, `r${n++}_`, SHARED_LABELS);
      rules++;
    }
  }
  finish(undefined);
  if (blocks.length > MAX_PROGRAMS_PER_CHAIN) throw new PolicyProgramCapacityError(pod, direction, blocks.length, rules);
  const programs = blocks.map((blk) => blk.assemble());
  // Over the encoding with sub-programs numbered 0..n-1: the same code wherever the chain is placed.
  const h = createHash('sha256');
  for (const p of programs) h.update(encodeInsns(p, (k) => k)).update('|');
  const hash = h.digest('hex').slice(0, 20);
  return { pod, direction, programs, hash, policies: dir.policies.length, rules };
}

/**
 * Felix's default-deny policy program (felix/bpf-gpl/policy_default.c calico_tc_deny), which it puts in a new
 * workload's policy jump-map slot when it attaches the tc programs, before the real policy is compiled: the
 * same header and footer as a real chain, with no rule between them.
 */
export function defaultDenyChain(pod: string, direction: 'ingress' | 'egress'): PolicyChain {
  return chainFor(pod, { isolated: true, policies: [] }, direction, new IpSetTable())!;
}

/**
 * Compiles the policy programs and IP sets of one node from the endpoint policies of its pods. Endpoints on
 * other nodes and hostNetwork pods (no workload interface) are ignored.
 */
export function compileCalicoEbpfNode(node: string, endpoints: EndpointPolicy[]): CalicoEbpfNode {
  const sets = new IpSetTable();
  const out: CalicoEbpfEndpoint[] = [];
  const local = endpoints.filter((e) => e.pod.node === node && !e.pod.hostNetwork).sort((a, b) => (key(a.pod) < key(b.pod) ? -1 : 1));
  for (const e of local) {
    const pod = key(e.pod);
    out.push({ pod, podInfo: e.pod, ingress: chainFor(pod, e.ingress, 'ingress', sets), egress: chainFor(pod, e.egress, 'egress', sets) });
  }
  const chains = out.flatMap((e) => [e.ingress, e.egress]).filter((c): c is PolicyChain => c !== undefined);
  // Only the sets some program here looks up are written to this node's map.
  const widest = chains.reduce<PolicyChain | undefined>((w, c) => (!w || c.policies > w.policies ? c : w), undefined);
  const setList = [...sets.sets.values()];
  return {
    node,
    endpoints: out,
    sets: sets.sets,
    counts: {
      endpoints: out.length,
      programs: chains.reduce((s, c) => s + c.programs.length, 0),
      instructions: chains.reduce((s, c) => s + c.programs.reduce((t, p) => t + p.length, 0), 0),
      ipSets: setList.length,
      ipSetEntries: setList.reduce((s, x) => s + x.members.length, 0),
      maxProgramsPerChain: chains.reduce((m, c) => Math.max(m, c.programs.length), 0),
      maxRulesPerChain: chains.reduce((m, c) => Math.max(m, c.rules), 0),
      rulesTraversedPerPolicy: widest && widest.policies > 0 ? Math.round((widest.rules / widest.policies) * 100) / 100 : 0,
    },
  };
}

function key(p: Pick<PodInfo, 'namespace' | 'name'>): string {
  return `${p.namespace}/${p.name}`;
}
