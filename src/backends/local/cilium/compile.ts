// Compiles resolved NetworkPolicy (EndpointPolicy) into the Cilium-style model's BPF map contents: security
// identities per distinct label set, the ipcache (prefix -> identity), one endpoint entry per pod veth, and one
// policy map per endpoint keyed by (identity, direction, protocol, port prefix). Pure: no I/O. What an overflowing
// map realizes is overflow.ts's; the loader's fill and delta inputs, loader-input.ts's.
//
// Fidelity to Cilium, and where the model differs:
// - Identities are allocated per distinct label set (pod labels, the namespace name, the namespace's labels),
//   from 256 upwards, deterministically (sorted label sets) instead of through the kvstore/CRD allocator.
// - ipBlock peers become CIDR identities (local scope, 1<<24 + n) for the cidr and each except prefix; the
//   ipcache's longest-prefix match then picks the most specific one. As in Cilium, a pod's own /32 entry wins
//   over any CIDR, so an ipBlock does not select pod IPs. 0.0.0.0/0 is reserved:world (2).
// - A rule without peers ('any') is identity 0, the wildcard the datapath looks up second.
// - Port ranges are expanded into aligned power-of-two port prefixes (Cilium 1.16+ LPM policy map).
// - IPv4 only: IPv6 ipBlocks produce no entries (they can never match an IPv4 packet).
// - hostNetwork pods are not Cilium endpoints and get no pod identity. The ipcache holds the node addresses as the
//   agent writes them (pkg/node/address.go + daemon/cmd ipcache upserts, Cilium 1.18): the node's own as
//   reserved:host (1), every other node's as reserved:remote-node (6). So host-originated traffic to a local pod
//   (a hostNetwork pod's, kubelet probes) meets the allow-localhost entry below and passes; from another node it
//   is remote-node, which neither a pod selector nor (policy-cidr-match-mode unset) an ipBlock selects.
// - Entries the agent adds itself (pkg/policy/mapstate.go, Cilium 1.18): an allow-all entry (identity 0, any
//   protocol) for each direction no policy isolates (allowAllIdentities), and reserved:host ingress allow-all
//   (determineAllowLocalhostIngress; allow-localhost "auto" becomes "always" in Kubernetes mode, daemon/cmd).
//   The datapath has no other "unenforced" switch, so these count against the policy map's capacity.
// - Identities and endpoint ids stay stable across recompiles when an IdentityAllocation is passed (as the
//   kvstore/CRD allocator keeps them): an incremental update then touches only what really changed.
import { formatIpv4, isIpv6, parseCidr, type Ipv4Cidr } from '../../../policy/cidr.js';
import type { EndpointPolicy, Inventory, PeerMatch, PodInfo, PortMatch, Protocol, ResolvedPolicy } from '../../../policy/types.js';
import { podKey } from '../../../policy/types.js';
import { BenchError } from '../../../errors.js';

/** Cilium's reserved identities used by the model (pkg/identity/numericidentity.go). */
export const RESERVED_IDENTITY = { host: 1, world: 2, remoteNode: 6 } as const;
/** Policy-map identity that matches every peer (an L3 wildcard entry). */
export const ANY_IDENTITY = 0;
/** First cluster-scoped identity. */
export const FIRST_POD_IDENTITY = 256;
/** Local-scope identities (CIDRs) have this bit set. */
export const LOCAL_IDENTITY_SCOPE = 1 << 24;
/** Real Cilium's default per-endpoint policy map size (helm value bpf.policyMapMax). */
export const DEFAULT_POLICY_MAP_CAPACITY = 16384;

export const PROTOCOL_NUMBER: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

export type Direction = 'ingress' | 'egress';

export interface CiliumIdentity {
  id: number;
  /** Cilium-style labels, e.g. `k8s:app=web`, `k8s:io.kubernetes.pod.namespace=default`, `cidr:10.0.0.0/8`. */
  labels: string[];
  /** namespace/name of the pods with this identity (empty for CIDR identities). */
  pods: string[];
}

export interface IpcacheEntry {
  /** a.b.c.d/len, host bits cleared. */
  prefix: string;
  identity: number;
}

export interface CiliumEndpoint {
  pod: string;
  endpointId: number;
  /** Host-side veth ifindex in the node namespace: the key of the endpoints map. */
  ifindex: number;
  ingressEnforced: boolean;
  egressEnforced: boolean;
}

/** One policy-map key. NetworkPolicy only allows; deny entries come from the endpoint lockdown on overflow. */
export interface PolicyMapEntry {
  deny?: boolean;
  identity: number;
  direction: Direction;
  /** IP protocol number; 0 = any protocol (then port and portPrefixBits are 0). */
  protocol: number;
  port: number;
  /** Leading port bits that must match: 16 = one port, 0 = every port. */
  portPrefixBits: number;
}

export interface EndpointPolicyMap {
  pod: string;
  endpointId: number;
  entries: PolicyMapEntry[];
}

export interface PolicyMapOverflow {
  pod: string;
  endpointId: number;
  needed: number;
  capacity: number;
  ingress: number;
  egress: number;
}

export interface CiliumState {
  capacity: number;
  identities: CiliumIdentity[];
  ipcache: IpcacheEntry[];
  endpoints: CiliumEndpoint[];
  policyMaps: EndpointPolicyMap[];
  counts: { identities: number; ipcacheEntries: number; policyEntriesPerEndpoint: Record<string, number> };
  /** Endpoints whose policy map would not fit (only with onOverflow: 'report'). */
  overflows: PolicyMapOverflow[];
}

function overflowText(o: PolicyMapOverflow): string {
  return (
    `endpoint ${o.pod} (id ${o.endpointId}): policy map needs ${o.needed} entries ` +
    `(ingress ${o.ingress}, egress ${o.egress}) but holds ${o.capacity} (bpf.policyMapMax)`
  );
}

/** Like Cilium's endpoint regeneration failure when a policy map is full. */
export class PolicyMapCapacityError extends BenchError {
  constructor(readonly overflows: PolicyMapOverflow[]) {
    super(
      'capacity',
      `Cilium model: endpoint regeneration failed, policy map full: ${overflows.map(overflowText).join('; ')}. ` +
        `Raise the policy-map capacity or reduce the policies selecting these pods.`,
    );
  }
}

/** Ids handed out so far, reused on the next compile (mutated: new label sets, CIDRs and endpoints are added). */
export interface IdentityAllocation {
  labelSets: Map<string, number>;
  cidrs: Map<string, number>;
  endpoints: Map<string, number>;
}

export const newIdentityAllocation = (): IdentityAllocation => ({ labelSets: new Map(), cidrs: new Map(), endpoints: new Map() });

function allocate(map: Map<string, number>, keys: string[], first: number): void {
  let next = Math.max(first - 1, ...map.values()) + 1;
  for (const k of keys) if (!map.has(k)) map.set(k, next++);
}

/** The endpoint id of a pod (allocated on first use, then stable). */
export function endpointIdOf(alloc: IdentityAllocation, pod: string): number {
  allocate(alloc.endpoints, [pod], 1);
  return alloc.endpoints.get(pod)!;
}

const ALL = { protocol: 0, port: 0, portPrefixBits: 0 } as const;

/**
 * What the agent writes into every endpoint's map on its own (see the header): host ingress, and allow-all for
 * each direction no policy isolates.
 */
export function agentEntries(ingressIsolated: boolean, egressIsolated: boolean): PolicyMapEntry[] {
  const out: PolicyMapEntry[] = [{ identity: RESERVED_IDENTITY.host, direction: 'ingress', ...ALL }];
  if (!ingressIsolated) out.push({ identity: ANY_IDENTITY, direction: 'ingress', ...ALL });
  if (!egressIsolated) out.push({ identity: ANY_IDENTITY, direction: 'egress', ...ALL });
  return out;
}

export interface CompileOptions {
  /** Stable ids across compiles (see IdentityAllocation); without it ids are assigned afresh in sorted order. */
  allocation?: IdentityAllocation;
  /** Entries per endpoint policy map (bpf.policyMapMax). */
  capacity: number;
  /** Host-side veth ifindex of a pod's endpoint, in its node namespace. */
  ifindexOf(pod: PodInfo): number;
  /** 'throw' (default): PolicyMapCapacityError; 'report': return the state with `overflows` filled. */
  onOverflow?: 'throw' | 'report';
  /** Node addresses for the ipcache: this node's (reserved:host) and the other nodes' (reserved:remote-node). */
  nodeAddresses?: { local: string[]; remote: string[] };
}

// ---- port prefixes ----

export interface PortPrefix {
  port: number;
  bits: number;
}

/** The minimal set of aligned power-of-two blocks covering exactly [from, to]. */
export function portRangeToPrefixes(from: number, to: number): PortPrefix[] {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > 65535 || from > to) {
    throw new RangeError(`invalid port range ${from}-${to}`);
  }
  const out: PortPrefix[] = [];
  let lo = from;
  while (lo <= to) {
    let size = lo === 0 ? 65536 : lo & -lo; // largest block aligned at lo
    while (lo + size - 1 > to) size /= 2;
    out.push({ port: lo, bits: 16 - Math.log2(size) });
    lo += size;
  }
  return out;
}

// ---- identities ----

function identityLabels(pod: PodInfo, nsLabels: Record<string, string> | undefined): string[] {
  const labels = Object.entries(pod.labels).map(([k, v]) => `k8s:${k}=${v}`);
  labels.push(`k8s:io.kubernetes.pod.namespace=${pod.namespace}`);
  for (const [k, v] of Object.entries(nsLabels ?? {})) labels.push(`k8s:io.cilium.k8s.namespace.labels.${k}=${v}`);
  return labels.sort();
}

function cmpCidr(a: Ipv4Cidr, b: Ipv4Cidr): number {
  return a.network - b.network || a.prefix - b.prefix;
}

function within(inner: Ipv4Cidr, outer: Ipv4Cidr): boolean {
  return inner.prefix >= outer.prefix && inner.first >= outer.first && inner.last <= outer.last;
}

const cidrText = (c: Ipv4Cidr): string => `${formatIpv4(c.network)}/${c.prefix}`;

function* peersOf(policies: ResolvedPolicy[]): Generator<PeerMatch> {
  for (const p of policies) for (const r of p.rules) yield* r.peers;
}

// ---- compile ----

export function compileCiliumState(endpoints: EndpointPolicy[], inventory: Inventory, opts: CompileOptions): CiliumState {
  if (!Number.isInteger(opts.capacity) || opts.capacity < 1) throw new RangeError(`policy-map capacity must be a positive integer, got ${opts.capacity}`);

  // Every pod the state can name: the inventory, the endpoints, and peers (should all be in the inventory).
  const pods = new Map<string, PodInfo>();
  const addPod = (p: PodInfo): void => {
    if (!p.hostNetwork && !pods.has(podKey(p))) pods.set(podKey(p), p);
  };
  inventory.pods.forEach(addPod);
  for (const ep of endpoints) {
    addPod(ep.pod);
    for (const peer of [...peersOf(ep.ingress.policies), ...peersOf(ep.egress.policies)]) if (peer.kind === 'pods') peer.pods.forEach(addPod);
  }
  const nsLabels = new Map(inventory.namespaces.map((n) => [n.name, n.labels]));

  const bySet = new Map<string, { labels: string[]; pods: string[] }>();
  for (const [key, pod] of pods) {
    const labels = identityLabels(pod, nsLabels.get(pod.namespace));
    const setKey = labels.join('\n');
    const entry = bySet.get(setKey) ?? { labels, pods: [] };
    entry.pods.push(key);
    bySet.set(setKey, entry);
  }
  const alloc = opts.allocation ?? newIdentityAllocation();
  const identities: CiliumIdentity[] = [];
  const podIdentity = new Map<string, number>();
  const setKeys = [...bySet.keys()].sort();
  allocate(alloc.labelSets, setKeys, FIRST_POD_IDENTITY);
  setKeys.forEach((setKey) => {
    const { labels, pods: members } = bySet.get(setKey)!;
    const id = alloc.labelSets.get(setKey)!;
    members.sort();
    identities.push({ id, labels, pods: members });
    for (const m of members) podIdentity.set(m, id);
  });

  // CIDR identities: every ipBlock cidr and except prefix of every policy on these endpoints.
  const cidrs = new Map<string, Ipv4Cidr>();
  for (const ep of endpoints) {
    for (const peer of [...peersOf(ep.ingress.policies), ...peersOf(ep.egress.policies)]) {
      if (peer.kind !== 'cidr' || isIpv6(peer.cidr)) continue;
      for (const text of [peer.cidr, ...peer.except.filter((e) => !isIpv6(e))]) {
        const c = parseCidr(text);
        cidrs.set(cidrText(c), c);
      }
    }
  }
  const cidrList = [...cidrs.values()].filter((c) => c.prefix > 0).sort(cmpCidr);
  const cidrIdentity = new Map<string, number>();
  allocate(alloc.cidrs, cidrList.map(cidrText), LOCAL_IDENTITY_SCOPE + 1);
  cidrList.forEach((c) => {
    const id = alloc.cidrs.get(cidrText(c))!;
    cidrIdentity.set(cidrText(c), id);
    identities.push({ id, labels: [`cidr:${cidrText(c)}`], pods: [] });
  });

  const ipcache: IpcacheEntry[] = [{ prefix: '0.0.0.0/0', identity: RESERVED_IDENTITY.world }];
  for (const c of cidrList) ipcache.push({ prefix: cidrText(c), identity: cidrIdentity.get(cidrText(c))! });
  // A node address's reserved identity wins over a /32 CIDR identity of the same prefix (one ipcache key).
  const nodeIps = opts.nodeAddresses ?? { local: [], remote: [] };
  const nodeEntries = [
    ...nodeIps.local.filter((a) => !isIpv6(a)).map((ip) => ({ prefix: `${ip}/32`, identity: RESERVED_IDENTITY.host })),
    ...nodeIps.remote.filter((a) => !isIpv6(a)).map((ip) => ({ prefix: `${ip}/32`, identity: RESERVED_IDENTITY.remoteNode })),
  ];
  const nodePrefixes = new Set(nodeEntries.map((e) => e.prefix));
  for (let i = ipcache.length - 1; i >= 0; i--) if (nodePrefixes.has(ipcache[i]!.prefix)) ipcache.splice(i, 1);
  ipcache.push(...nodeEntries);
  for (const [key, pod] of [...pods].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!isIpv6(pod.ip)) ipcache.push({ prefix: `${pod.ip}/32`, identity: podIdentity.get(key)! });
  }

  // Identities an ipBlock allows: every prefix inside the cidr and outside every except (see header).
  const cidrPeerCache = new Map<string, number[]>();
  const identitiesOfCidrPeer = (peer: Extract<PeerMatch, { kind: 'cidr' }>): number[] => {
    if (isIpv6(peer.cidr)) return [];
    const cacheKey = `${peer.cidr}|${peer.except.join(',')}`;
    let ids = cidrPeerCache.get(cacheKey);
    if (!ids) {
      const outer = parseCidr(peer.cidr);
      const excepts = peer.except.filter((e) => !isIpv6(e)).map((e) => parseCidr(e));
      ids = cidrList.filter((c) => within(c, outer) && !excepts.some((e) => within(c, e))).map((c) => cidrIdentity.get(cidrText(c))!);
      if (outer.prefix === 0) ids.push(RESERVED_IDENTITY.world);
      cidrPeerCache.set(cacheKey, ids);
    }
    return ids;
  };

  const identitiesOfPeer = (peer: PeerMatch): number[] => {
    switch (peer.kind) {
      case 'any':
        return [ANY_IDENTITY];
      case 'pods':
        return peer.pods.filter((p) => !p.hostNetwork).map((p) => podIdentity.get(podKey(p))!);
      case 'cidr':
        return identitiesOfCidrPeer(peer);
    }
  };

  const portKeys = (ports: PortMatch[] | 'all'): Array<{ protocol: number; port: number; bits: number }> => {
    if (ports === 'all') return [{ protocol: 0, port: 0, bits: 0 }];
    const out: Array<{ protocol: number; port: number; bits: number }> = [];
    for (const pm of ports) {
      const protocol = PROTOCOL_NUMBER[pm.protocol];
      if (pm.from === undefined) {
        out.push({ protocol, port: 0, bits: 0 });
        continue;
      }
      for (const b of portRangeToPrefixes(pm.from, pm.to ?? pm.from)) out.push({ protocol, port: b.port, bits: b.bits });
    }
    return out;
  };

  const sortedEndpoints = endpoints.filter((e) => !e.pod.hostNetwork).sort((a, b) => (podKey(a.pod) < podKey(b.pod) ? -1 : 1));
  const cEndpoints: CiliumEndpoint[] = [];
  const policyMaps: EndpointPolicyMap[] = [];
  const overflows: PolicyMapOverflow[] = [];
  const perEndpoint: Record<string, number> = {};

  allocate(alloc.endpoints, sortedEndpoints.map((e) => podKey(e.pod)), 1);
  sortedEndpoints.forEach((ep) => {
    const pod = podKey(ep.pod);
    const endpointId = alloc.endpoints.get(pod)!;
    cEndpoints.push({ pod, endpointId, ifindex: opts.ifindexOf(ep.pod), ingressEnforced: ep.ingress.isolated, egressEnforced: ep.egress.isolated });
    const entries: PolicyMapEntry[] = [];
    const seen = new Set<string>();
    const sizes = { ingress: 0, egress: 0 };
    const add = (e: PolicyMapEntry): void => {
      const key = policyEntryKey(e);
      if (seen.has(key)) return;
      seen.add(key);
      entries.push(e);
      sizes[e.direction]++;
    };
    for (const e of agentEntries(ep.ingress.isolated, ep.egress.isolated)) add(e);
    for (const direction of ['ingress', 'egress'] as const) {
      const dir = ep[direction];
      if (!dir.isolated) continue; // covered by the agent's allow-all entry above
      for (const policy of dir.policies) {
        for (const rule of policy.rules) {
          const ports = portKeys(rule.ports);
          for (const peer of rule.peers) {
            for (const identity of identitiesOfPeer(peer)) {
              for (const p of ports) add({ identity, direction, protocol: p.protocol, port: p.port, portPrefixBits: p.bits });
            }
          }
        }
      }
    }
    policyMaps.push({ pod, endpointId, entries });
    perEndpoint[pod] = entries.length;
    if (entries.length > opts.capacity) {
      overflows.push({ pod, endpointId, needed: entries.length, capacity: opts.capacity, ...sizes });
    }
  });

  if (overflows.length && (opts.onOverflow ?? 'throw') === 'throw') throw new PolicyMapCapacityError(overflows);

  return {
    capacity: opts.capacity,
    identities,
    ipcache,
    endpoints: cEndpoints,
    policyMaps,
    counts: { identities: identities.length, ipcacheEntries: ipcache.length, policyEntriesPerEndpoint: perEndpoint },
    overflows,
  };
}

/** Identity of a policy-map key (the verdict is the value, not part of the key). */
export const policyEntryKey = (e: PolicyMapEntry): string => `${e.identity}|${e.direction}|${e.protocol}|${e.port}|${e.portPrefixBits}`;
