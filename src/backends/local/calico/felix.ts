// Felix's reading of a resolved policy, the same in its iptables and nftables data planes (Felix's rules/ code is
// shared by both through generictables; only the match and action builders differ). The iptables rendering
// (compile.ts) and the nftables rendering (../calico-nftables/compile.ts) both start here:
//
//   k8s policy ─► Calico rules (k8sRuleToCalico: one per peer × protocol, ports simplified)    felixRules
//   names: GetLengthLimitedID, the knp.default. policy name, PolicyGroup.UniqueID, set names
//   generictables.RuleHashes: the cali:<hash> of each rule, chained along its chain               chainedRuleHashes
//   the workload endpoints of a node, their interface names checked                              localWorkloads
//
// Where the nftables model reads upstream differently from the iptables model it says so at the call
// (selectorless grouping, set-name key, port simplification); those differences are kept, not decided here.
import { createHash } from 'node:crypto';
import type { EndpointPolicy, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';

/** Builds the compiler's own error for bad input (each rendering keeps its error class). */
export type Fail = (message: string) => Error;

/** Felix's default InterfacePrefixes: the dispatch only sees `cali…` interfaces. */
export const WORKLOAD_IFACE_PREFIX = 'cali';
/** Linux IFNAMSIZ - 1. */
export const MAX_IFACE_NAME = 15;
/** The one tier Kubernetes NetworkPolicies land in. */
export const TIER = 'default';
/** libcalico-go/lib/names/policy.go K8sNetworkPolicyNamePrefix. */
const KNP_PREFIX = 'knp.default.';
/** generictables HashLength. */
const RULE_HASH_LENGTH = 16;

export type PortRange = [number, number];

// ---- names ----

/** felix/hashutils GetLengthLimitedID: the suffix as is, or "_" and a truncated sha256 when it is too long. */
export function lengthLimitedId(prefix: string, suffix: string, maxLength: number): string {
  const total = prefix.length + suffix.length;
  if (total > maxLength || (total === maxLength && suffix.startsWith('_'))) {
    const hash = createHash('sha256').update(suffix).digest('base64url');
    return `${prefix}_${hash.slice(0, maxLength - 1 - prefix.length)}`;
  }
  return prefix + suffix;
}

/** The Calico name of a Kubernetes NetworkPolicy "ns/name": "ns/knp.default.name". */
export function calicoPolicyName(policyId: string): string {
  const slash = policyId.indexOf('/');
  return slash < 0 ? `${KNP_PREFIX}${policyId}` : `${policyId.slice(0, slash)}/${KNP_PREFIX}${policyId.slice(slash + 1)}`;
}

/**
 * PolicyGroup.UniqueID: a hash over tier, selector, direction, member count and member names, one per line.
 * Felix hashes with sha3-224 over the policy names; the nftables model hashes with sha224 over its chain names.
 */
export function policyGroupUid(direction: 'ingress' | 'egress', selector: string, members: readonly string[], algorithm: 'sha3-224' | 'sha224'): string {
  const h = createHash(algorithm);
  for (const s of [TIER, selector, direction === 'ingress' ? 'inbound' : 'outbound', String(members.length), ...members]) h.update(`${s}\n`);
  return h.digest('base64url');
}

/**
 * A selector's IP set. Felix names it after a hash of the selector text; the resolved policy carries what a peer
 * selects, not the text, so the set is named after the peer's place (`key`: direction, policy, rule, peer):
 * stable while members come and go, which is what lets an update be a member add/del as in Felix.
 */
export function peerSetName(prefix: string, key: string, hashLength: number): string {
  return prefix + createHash('sha256').update(key).digest('base64url').slice(0, hashLength);
}

/** generictables.RuleHashes: seeded with the chain name, each hash chains the previous one, so position and predecessors count. */
export function chainedRuleHashes(chainName: string, renderedForHashing: readonly string[]): string[] {
  let hash = createHash('sha224').update(chainName).digest();
  return renderedForHashing.map((text) => {
    hash = createHash('sha224').update(hash).update(text).digest();
    return hash.toString('base64url').slice(0, RULE_HASH_LENGTH);
  });
}

// ---- input checks ----

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** Canonical IPv4 network "a.b.c.d/p" (host bits cleared), or undefined for IPv6; throws on garbage. */
export function ipv4Net(text: string, what: string, fail: Fail): string | undefined {
  if (text.includes(':')) return undefined;
  const m = IPV4_CIDR.exec(text.trim());
  const octets = m ? [m[1], m[2], m[3], m[4]].map(Number) : [];
  const prefix = m?.[5] === undefined ? 32 : Number(m[5]);
  if (!m || octets.some((o) => o > 255) || prefix > 32) throw fail(`${what}: "${text}" is not an IPv4 address or CIDR`);
  const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const net = addr - (addr % size);
  const dotted = [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.');
  return `${dotted}/${prefix}`;
}

/** `why`: what the cali prefix is for, in the rendering's words. */
export function validateIfaceName(iface: string, pod: string, fail: Fail, why: string): void {
  if (iface.length === 0 || iface.length > MAX_IFACE_NAME) throw fail(`interface name "${iface}" of pod ${pod} must be 1-${MAX_IFACE_NAME} characters (Linux IFNAMSIZ)`);
  if (!/^[A-Za-z0-9_.-]+$/.test(iface)) throw fail(`interface name "${iface}" of pod ${pod} may only contain letters, digits, '_', '.', '-'`);
  if (!iface.startsWith(WORKLOAD_IFACE_PREFIX)) throw fail(`interface name "${iface}" of pod ${pod} must start with "${WORKLOAD_IFACE_PREFIX}" (${why})`);
}

export interface LocalWorkload {
  endpoint: EndpointPolicy;
  iface: string;
}

/**
 * The workload endpoints Felix on `node` renders: endpoints of other nodes and hostNetwork pods (no workload
 * interface) are left out; each interface checked and unique; sorted by interface, as Felix orders them.
 */
export function localWorkloads(node: string, endpoints: readonly EndpointPolicy[], ifaceOf: (pod: PodInfo) => string, fail: Fail, why: string): LocalWorkload[] {
  const local = endpoints.filter((e) => e.pod.node === node && !e.pod.hostNetwork).map((e) => ({ endpoint: e, iface: ifaceOf(e.pod) }));
  const seen = new Map<string, string>();
  for (const { endpoint, iface } of local) {
    const pod = `${endpoint.pod.namespace}/${endpoint.pod.name}`;
    validateIfaceName(iface, pod, fail, why);
    const other = seen.get(iface);
    if (other !== undefined) throw fail(`pods ${other} and ${pod} on node ${node} share interface ${iface}`);
    seen.set(iface, pod);
  }
  return local.sort((a, b) => (a.iface < b.iface ? -1 : a.iface > b.iface ? 1 : 0));
}

/** The profiles the Kubernetes datastore gives every pod: its namespace (allow all) and its service account (no rules). */
export function podProfiles(namespace: string): Array<{ id: string; allow: boolean }> {
  return [
    { id: `kns.${namespace}`, allow: true },
    { id: `ksa.${namespace}.default`, allow: false },
  ];
}

// ---- libcalico-go k8s conversion (k8sRuleToCalico) ----

export interface ProtocolPorts {
  /** Lower-case protocol, undefined for "every protocol". */
  protocol?: string;
  /** Sorted ranges; undefined for every port of the protocol. */
  ranges?: PortRange[];
}

/**
 * k8sRuleToCalico: one Calico rule per protocol (sorted), holding all that protocol's ports; a port without a
 * number, or no ports at all, means every port. `simplify: 'merge'` is libcalico-go's SimplifyPorts (overlapping
 * and adjacent ranges merged); the nftables model keeps each distinct range ('dedupe').
 */
export function protocolPorts(ports: PortMatch[] | 'all', what: string, fail: Fail, simplify: 'merge' | 'dedupe' = 'merge'): ProtocolPorts[] {
  if (ports === 'all') return [{}];
  const byProto = new Map<string, PortRange[] | undefined>();
  for (const p of ports) {
    const proto = p.protocol.toLowerCase();
    if (p.from === undefined) {
      byProto.set(proto, undefined);
      continue;
    }
    const to = p.to ?? p.from;
    for (const n of [p.from, to]) if (!Number.isInteger(n) || n < 1 || n > 65535) throw fail(`${what}: port ${n} is not in 1-65535`);
    if (to < p.from) throw fail(`${what}: port range ${p.from}-${to} ends before it starts`);
    if (byProto.has(proto) && byProto.get(proto) === undefined) continue; // every port already
    byProto.set(proto, [...(byProto.get(proto) ?? []), [p.from, to]]);
  }
  return [...byProto.keys()].sort().map((proto) => {
    const ranges = byProto.get(proto);
    if (!ranges) return { protocol: proto };
    const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (simplify === 'dedupe') return { protocol: proto, ranges: sorted.filter((r, i) => i === 0 || r[0] !== sorted[i - 1]![0] || r[1] !== sorted[i - 1]![1]) };
    const merged: PortRange[] = [];
    for (const r of sorted) {
      const last = merged.at(-1);
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    return { protocol: proto, ranges: merged };
  });
}

/** SplitPortList: groups of at most 15 multiport slots, a range taking two (Felix applies it in nftables mode too). */
export function splitPortRanges(ranges: readonly PortRange[]): PortRange[][] {
  const splits: PortRange[][] = [];
  let split: PortRange[] = [];
  let slots = 15;
  for (const r of ranges) {
    const need = r[0] === r[1] ? 1 : 2;
    if (slots < need) {
      splits.push(split);
      split = [];
      slots = 15;
    }
    split.push(r);
    slots -= need;
  }
  if (split.length) splits.push(split);
  return splits;
}

/** A Calico rule's peer: anything, a selector's members (an IP set), or an ipBlock. */
export type FelixPeer =
  | { kind: 'any' }
  /** `rule`/`peer`: the peer's place in the policy, which names its set. `nets`: members' canonical /32s, in pod order. */
  | { kind: 'set'; rule: number; peer: number; nets: string[] }
  | { kind: 'net'; net: string; except: string[] };

/** One Calico rule: one peer × one protocol, allowing. */
export interface FelixRule extends ProtocolPorts {
  peer: FelixPeer;
}

/**
 * A resolved policy's rules in one direction as Calico rules, in Felix's order (rule, then protocol, then peer).
 * Rules that cannot match IPv4 are left out as Felix's FilterRuleToIPVersion and filterNets do: an IPv6 ipBlock,
 * and an ipBlock whose excepts hold a negated catch-all.
 */
export function felixRules(policy: ResolvedPolicy, direction: 'ingress' | 'egress', fail: Fail, simplify: 'merge' | 'dedupe' = 'merge'): FelixRule[] {
  const out: FelixRule[] = [];
  policy.rules.forEach((rule, ri) => {
    const what = `policy ${policy.policy} ${direction} rule ${ri}`;
    // k8sRuleToCalico: protocols outside, peers inside (a rule with no peers left matches nothing).
    for (const pp of protocolPorts(rule.ports, what, fail, simplify)) {
      rule.peers.forEach((peer, pi) => {
        if (peer.kind === 'any') {
          out.push({ ...pp, peer: { kind: 'any' } });
        } else if (peer.kind === 'pods') {
          const nets = peer.pods.map((pod) => (pod.ip ? ipv4Net(pod.ip, `${what}: pod ${pod.namespace}/${pod.name}`, fail) : undefined)).filter((n): n is string => n !== undefined);
          out.push({ ...pp, peer: { kind: 'set', rule: ri, peer: pi, nets } });
        } else {
          const net = ipv4Net(peer.cidr, `${what}: ipBlock`, fail);
          if (net === undefined) return;
          const except = peer.except.map((e) => ipv4Net(e, `${what}: ipBlock except`, fail)).filter((e): e is string => e !== undefined);
          if (except.some((e) => e.endsWith('/0'))) return;
          out.push({ ...pp, peer: { kind: 'net', net, except } });
        }
      });
    }
  });
  return out;
}
