// Per-node pod CIDRs for replaying a cluster on the local backend, whatever addresses its pods have: the node's
// spec.podCIDR(s) where the source names them, else derived from the pods on each node. Each node routes its
// CIDRs to its pods and every other node routes them via it, inside the run's namespaces only. Pure.
//
// Derived blocks: each pod's block is the widest prefix from /24 down to /32 around its address that holds no
// pod of another node. A cluster with one /24 per node (kind, kubeadm's 10.244.0.0/16, k3s's 10.42.0.0/16) gets
// exactly those /24s; Calico's IPAM blocks (/26 per node, several per node, from 192.168.0.0/16) get /24s where a
// /24 is one node's, and /25../26 where nodes share one. Two nodes with pods on one address cannot be replayed.
import { BenchError } from '../errors.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../policy/cidr.js';

export interface AddressedPod {
  /** namespace/name, for errors. */
  id: string;
  node: string;
  ip: string;
}

/** Addresses the local backend keeps for itself: no pod may have one (the node network, the routed gateway, …). */
export const RESERVED_RANGES: ReadonlyArray<{ cidr: string; what: string }> = [
  { cidr: '0.0.0.0/8', what: '"this network" (0.0.0.0/8)' },
  { cidr: '127.0.0.0/8', what: 'loopback (127.0.0.0/8)' },
  { cidr: '169.254.0.0/16', what: 'link-local (169.254.0.0/16; the routed models\' pod gateway 169.254.1.1)' },
  { cidr: '172.18.0.0/24', what: 'the local backend\'s node network (172.18.0.0/24: node and external-host addresses)' },
  { cidr: '224.0.0.0/3', what: 'multicast or reserved (224.0.0.0/3)' },
];

const FIRST_PREFIX = 24;

const blockOf = (ip: number, prefix: number): number => (prefix === 0 ? 0 : (ip & (~0 << (32 - prefix))) >>> 0);
const cidrText = (network: number, prefix: number) => `${formatIpv4(network)}/${prefix}`;

/** Whether `ip` (dotted) lies in one of `cidrs`. */
export function inCidrs(ip: string, cidrs: readonly string[]): boolean {
  const n = parseIpv4(ip);
  return n !== undefined && cidrs.some((c) => {
    const r = parseCidr(c);
    return n >= r.first && n <= r.last;
  });
}

/** The CIDR of `cidrs` holding `ip`, or undefined. */
export function cidrHolding(ip: string, cidrs: readonly string[]): string | undefined {
  const n = parseIpv4(ip);
  if (n === undefined) return undefined;
  return cidrs.find((c) => {
    const r = parseCidr(c);
    return n >= r.first && n <= r.last;
  });
}

function fail(problems: string[]): never {
  throw new BenchError('capacity', `the pod addresses cannot be routed on the local backend:\n  ${problems.slice(0, 8).join('\n  ')}${problems.length > 8 ? `\n  … and ${problems.length - 8} more` : ''}`);
}

/**
 * The pod CIDRs of each node that has pods, in `nodes` order: the declared ones (a Node's spec.podCIDRs) where
 * given, else the derived blocks. Throws a BenchError naming the pods for addresses no routing can hold: two nodes'
 * pods on one address, a pod outside its node's declared CIDRs, declared CIDRs of two nodes that overlap, an
 * address the local backend keeps for itself.
 */
export function planPodCidrs(pods: readonly AddressedPod[], opts: { declared?: Readonly<Record<string, readonly string[]>> } = {}): Map<string, string[]> {
  const problems: string[] = [];
  const reserved = RESERVED_RANGES.map((r) => ({ ...r, range: parseCidr(r.cidr) }));
  const addressed: Array<AddressedPod & { n: number }> = [];
  const byAddress = new Map<number, AddressedPod>();
  for (const p of pods) {
    const n = parseIpv4(p.ip);
    if (n === undefined) {
      problems.push(`pod ${p.id}: ${JSON.stringify(p.ip)} is not an IPv4 address`);
      continue;
    }
    const r = reserved.find((x) => n >= x.range.first && n <= x.range.last);
    if (r) {
      problems.push(`pod ${p.id} has address ${p.ip}, in ${r.what}: give it another address in the file`);
      continue;
    }
    const other = byAddress.get(n);
    if (other && other.node !== p.node) problems.push(`pods ${other.id} (node ${other.node}) and ${p.id} (node ${p.node}) both have address ${p.ip}: one address cannot be routed to two nodes`);
    else if (other) problems.push(`pods ${other.id} and ${p.id} both have address ${p.ip}`);
    byAddress.set(n, p);
    addressed.push({ ...p, n });
  }
  const declared = opts.declared ?? {};
  const declaredRanges = Object.entries(declared).flatMap(([node, cidrs]) => cidrs.map((c) => ({ node, cidr: c, range: parseCidr(c) })));
  for (const [i, a] of declaredRanges.entries()) {
    for (const b of declaredRanges.slice(i + 1)) {
      if (a.node !== b.node && a.range.first <= b.range.last && b.range.first <= a.range.last) problems.push(`nodes ${a.node} and ${b.node} declare overlapping pod CIDRs ${a.cidr} and ${b.cidr} (spec.podCIDRs): a route cannot lead to both`);
    }
  }
  // Which nodes have a pod in each block, for every prefix from /24 to /32.
  const owners = new Map<string, string | null>();
  for (const p of addressed) {
    for (let prefix = FIRST_PREFIX; prefix <= 32; prefix++) {
      const key = `${prefix}/${blockOf(p.n, prefix)}`;
      const seen = owners.get(key);
      if (seen === undefined) owners.set(key, p.node);
      else if (seen !== null && seen !== p.node) owners.set(key, null);
    }
  }
  const out = new Map<string, Array<{ network: number; prefix: number }>>();
  for (const p of addressed) {
    const own = declared[p.node];
    if (own) {
      if (!inCidrs(p.ip, own)) problems.push(`pod ${p.id} has address ${p.ip}, outside its node ${p.node}'s pod CIDRs ${own.join(', ')} (spec.podCIDRs): correct the pod's address or the node's CIDRs`);
      continue;
    }
    let prefix = FIRST_PREFIX;
    while (prefix < 32 && owners.get(`${prefix}/${blockOf(p.n, prefix)}`) !== p.node) prefix++;
    const list = out.get(p.node) ?? [];
    list.push({ network: blockOf(p.n, prefix), prefix });
    out.set(p.node, list);
  }
  for (const [node, own] of Object.entries(declared)) {
    const derivedElsewhere = addressed.find((p) => p.node !== node && inCidrs(p.ip, own) && !declared[p.node]);
    if (derivedElsewhere) problems.push(`pod ${derivedElsewhere.id} on node ${derivedElsewhere.node} has address ${derivedElsewhere.ip}, inside node ${node}'s pod CIDRs ${own.join(', ')}`);
  }
  if (problems.length) fail(problems);
  const result = new Map<string, string[]>();
  const nodes = [...new Set(pods.map((p) => p.node))];
  for (const node of nodes) {
    if (declared[node]) {
      result.set(node, [...declared[node]!]);
      continue;
    }
    // Widest first; a block inside a wider one of the same node adds nothing.
    const blocks = (out.get(node) ?? []).sort((a, b) => a.prefix - b.prefix || a.network - b.network);
    const kept: typeof blocks = [];
    for (const b of blocks) {
      if (!kept.some((k) => blockOf(b.network, k.prefix) === k.network && k.prefix <= b.prefix)) kept.push(b);
    }
    result.set(node, kept.sort((a, b) => a.network - b.network || a.prefix - b.prefix).map((b) => cidrText(b.network, b.prefix)));
  }
  return result;
}

/** A /24 in 10.244.0.0/16 that overlaps none of `used` (a node without pods needs a CIDR of its own). */
export function spareCidr(used: readonly string[]): string {
  const ranges = used.map(parseCidr);
  for (let i = 0; i < 256; i++) {
    const first = parseIpv4(`10.244.${i}.0`)!;
    const last = first + 255;
    if (!ranges.some((r) => r.first <= last && first <= r.last)) return `10.244.${i}.0/24`;
  }
  throw new BenchError('capacity', 'no /24 of 10.244.0.0/16 is free of the workload\'s pod addresses for a node without pods');
}
