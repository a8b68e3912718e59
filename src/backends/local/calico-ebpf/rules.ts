// The rules of the Calico-eBPF model's policy programs: what a Kubernetes policy becomes in Calico (one rule per
// peer × protocol), the IP sets its peers need, and the BPF instructions of one rule as Felix's polprog writes
// them (felix/bpf/polprog/pol_prog_builder.go writeRule): protocol, inline CIDR and not-CIDR compares, the IP
// set lookup, ports, then — with policy debug on, Felix's default — the rule-id record, and the jump to "allow".
// A failed match jumps to the rule's end, i.e. the next rule.
import { createHash } from 'node:crypto';
import type { PeerMatch, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { Block, HELPER_MAP_LOOKUP_ELEM, JEQ, JEQ32, JGE, JLE, JLT, JNE, MAP_IP_SETS, R0, R1, R10, R2, R9 } from './asm.js';
import { BenchError } from '../../../errors.js';
import {
  KEY_ADDR,
  KEY_ID,
  KEY_PAD,
  KEY_PORT,
  KEY_PREFIX,
  KEY_PROTO,
  LOOKUP_PREFIXLEN,
  MAX_RULE_IDS,
  OFF_IPSET_KEY,
  ST_DPORT,
  ST_IP_DST,
  ST_IP_SRC,
  ST_PROTO,
  ST_RULE_IDS,
  ST_RULES_HIT,
  ST_SPORT,
} from './layout.js';

const PROTO_NUMBER: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };

/** A policy the model cannot compile (an address that is not IPv4, a port out of range): fix the policy. */
export class CalicoEbpfCompileError extends BenchError {
  constructor(message: string) {
    super('usage', `calico-ebpf model: ${message}`);
  }
}

export interface IpSet {
  /** 64-bit set id, 16 hex digits (big-endian in the key). */
  id: string;
  /** Members as CIDRs (pods: a.b.c.d/32). */
  members: string[];
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

/** 16 hex digits of a hash, never all zero (Felix's ids 0 mean "none"). */
function id64(identity: string): string {
  const id = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  return /^0+$/.test(id) ? '0000000000000001' : id;
}

/** Collects IP sets; a set is named after the selector's place (policy, direction, rule, peer), as Felix names
 * a set after its selector, so a peer joining changes members, not the programs. */
export class IpSetTable {
  readonly sets = new Map<string, IpSet>();

  setFor(identity: string, members: string[]): IpSet {
    const sorted = [...new Set(members)].sort();
    let id = id64(identity);
    const existing = this.sets.get(id);
    if (existing && existing.members.join(',') !== sorted.join(',')) id = id64(`${identity}|${sorted.join(',')}`);
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

/** One Calico rule, with the 64-bit id Felix records when it matches (its RuleMatchID). */
export interface RuleSpec {
  peer: PeerMatch;
  group: ProtoGroup;
  set?: IpSet;
  matchId: string;
}

/** The Calico rules a k8s policy becomes (peers × protocol groups), with the IP sets they use. */
export function policyRules(policy: ResolvedPolicy, direction: 'ingress' | 'egress', sets: IpSetTable): RuleSpec[] {
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
      for (const group of groups) out.push({ peer, group, set, matchId: id64(`rule|${policy.policy}|${direction}|${ri}|${pi}|${group.protocol ?? 'any'}`) });
    });
  });
  return out;
}

/**
 * Felix's writeRecordRuleID: append the rule's id to state->rule_ids unless MAX_RULE_IDS are recorded already,
 * in which case it goes straight to the action. Ten instructions (eleven slots) and one jump per rule.
 */
function writeRecordRuleId(b: Block, matchId: string, action: string): void {
  b.load8(R1, R9, ST_RULES_HIT).jumpImm(JGE, R1, MAX_RULE_IDS, action);
  b.mov64(R2, R1).addImm64(R2, 1).store8(R9, R2, ST_RULES_HIT);
  b.lshImm64(R1, 3).addImm64(R1, ST_RULE_IDS).loadImm64(R2, matchId).add64(R1, R9).store64(R1, R2, 0);
}

/** One Calico rule: the match criteria in Felix's order, falling through to "allow" (jump labels local but the shared ones). */
export function writeRule(b: Block, rule: RuleSpec, ingress: boolean, policyDebug: boolean): void {
  const { peer, group, set } = rule;
  const addrOff = ingress ? ST_IP_SRC : ST_IP_DST;
  const portOff = ingress ? ST_SPORT : ST_DPORT;
  let part = 0;
  const fresh = (): string => `part${part++}`;
  if (group.protocol !== undefined) {
    b.load8(R1, R9, ST_PROTO).jumpImm(JNE, R1, group.protocol, 'next');
  }
  if (peer.kind === 'cidr') {
    // Felix compares every CIDR, 0.0.0.0/0 included (its mask 0 always matches).
    const [net, prefix] = parseIpv4Cidr(peer.cidr, 'ipBlock')!;
    const match = fresh();
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    b.load32(R1, R9, addrOff).movImm32(R2, asLoadedWord(mask)).and32(R2, R1).jumpImm(JEQ32, R2, asLoadedWord(net), match);
    b.jump('next').label(match);
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
  if (policyDebug) writeRecordRuleId(b, rule.matchId, 'allow');
  b.jump('allow');
  b.label('next');
}
