// Resolves NetworkPolicy objects against an inventory into the per-pod form the data-plane compilers consume:
// selectors evaluated to pod lists, policyTypes defaults applied, named ports looked up.
//
// Decisions that the NetworkPolicy spec leaves to implementations, made here the way Calico and Cilium behave:
// - hostNetwork pods are not subject to policy and are never members of a podSelector/namespaceSelector peer
//   (both CNIs give them no workload endpoint / the host identity); an ipBlock can still match their node IP.
// - Egress named ports resolve against each destination pod. A rule with no `to` or with an ipBlock peer
//   resolves the name against every pod (inside that block) that declares it, as Calico's named-port ipsets
//   do and as the upstream conformance test "should allow egress access on one named port" (a rule with a
//   named port and no `to`) requires. An address outside the cluster declares no ports, so a named port never
//   matches it.
// - A rule whose ports all fail to resolve matches nothing and is dropped: a resolved rule never carries an
//   empty port list, which a compiler could mistake for "every port".
import { cidrStrictlyWithin, ipBlockContains, isIpv6, normalizeCidr, parseCidr } from './cidr.js';
import {
  SelectorCache,
  effectiveNamespaceLabels,
  isEmptySelector,
  selectorKey,
  validateSelector,
  type Labels,
  type ValidationIssue,
} from './selectors.js';
import type {
  EndpointPolicy,
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PeerMatch,
  PodInfo,
  PortMatch,
  Protocol,
  ResolvedPolicy,
  ResolvedRule,
  Inventory,
} from './types.js';

/** Resolved policies and pod lists are shared between endpoints (one object per policy when nothing in it is
 * pod-specific): treat them as read-only. */
export interface ResolvedPolicySet {
  /** One entry per pod that is subject to policy (every non-hostNetwork pod), ordered by namespace, then name. */
  endpoints: EndpointPolicy[];
  /** Pods with hostNetwork: true; NetworkPolicy does not apply to them. */
  hostNetworkPods: PodInfo[];
}

export interface PolicyTypes {
  ingress: boolean;
  egress: boolean;
}

/**
 * The API server's defaulting: with no (or empty) policyTypes, Ingress always, plus Egress when the policy
 * has at least one egress rule. `egress: []` therefore does not make a policy egress-isolating unless
 * policyTypes says Egress.
 */
export function effectivePolicyTypes(p: NetworkPolicy): PolicyTypes {
  const types = p.spec.policyTypes;
  if (!types || types.length === 0) {
    return { ingress: true, egress: (p.spec.egress?.length ?? 0) > 0 };
  }
  return { ingress: types.includes('Ingress'), egress: types.includes('Egress') };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Stable policy order: namespace, then name (the tie-break data planes use between equal-order policies). */
export function comparePolicies(a: NetworkPolicy, b: NetworkPolicy): number {
  return compareStrings(a.metadata.namespace, b.metadata.namespace) || compareStrings(a.metadata.name, b.metadata.name);
}

export function comparePods(a: PodInfo, b: PodInfo): number {
  return compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

export function hostNetworkPods(inv: Inventory): PodInfo[] {
  return inv.pods.filter((p) => p.hostNetwork === true).sort(comparePods);
}

export const DEFAULT_PROTOCOL: Protocol = 'TCP';

/** Container ports of `pod` named `name` with `protocol` (port names are unique per pod, so 0 or 1 normally). */
export function lookupNamedPort(pod: PodInfo, name: string, protocol: Protocol): number[] {
  return pod.ports.filter((cp) => cp.name === name && cp.protocol === protocol).map((cp) => cp.containerPort);
}

/** A numeric (or absent) port entry as a PortMatch; undefined when it can match nothing (endPort < port). */
function numericPortMatch(p: NetworkPolicyPort): PortMatch | undefined {
  const protocol = p.protocol ?? DEFAULT_PROTOCOL;
  if (p.port === undefined) return { protocol };
  const from = p.port as number;
  const to = p.endPort ?? from;
  return to < from ? undefined : { protocol, from, to };
}

/** Pods the selectors can see, indexed by namespace and by label so that 10k distinct selectors stay cheap. */
class InventoryIndex {
  readonly selectable: PodInfo[];
  readonly namespaces: string[];
  private readonly podsByNs = new Map<string, PodInfo[]>();
  private readonly nsLabels = new Map<string, Labels>();
  private readonly labelIndex = new Map<string, Map<string, PodInfo[]>>();
  private readonly selectors = new SelectorCache();
  private readonly podMemo = new Map<string, PodInfo[]>();
  private readonly nsMemo = new Map<string, string[]>();

  constructor(inv: Inventory) {
    this.selectable = inv.pods.filter((p) => p.hostNetwork !== true).sort(comparePods);
    for (const ns of inv.namespaces) this.nsLabels.set(ns.name, effectiveNamespaceLabels(ns.name, ns.labels));
    for (const pod of this.selectable) {
      let list = this.podsByNs.get(pod.namespace);
      if (!list) this.podsByNs.set(pod.namespace, (list = []));
      list.push(pod);
      // A pod in a namespace the inventory does not list still has the automatic name label.
      if (!this.nsLabels.has(pod.namespace)) {
        this.nsLabels.set(pod.namespace, effectiveNamespaceLabels(pod.namespace, {}));
      }
    }
    this.namespaces = [...this.nsLabels.keys()].sort(compareStrings);
  }

  private indexFor(ns: string): Map<string, PodInfo[]> {
    let idx = this.labelIndex.get(ns);
    if (!idx) {
      idx = new Map();
      for (const pod of this.podsByNs.get(ns) ?? []) {
        for (const [k, v] of Object.entries(pod.labels)) {
          const key = `${k}=${v}`;
          let list = idx.get(key);
          if (!list) idx.set(key, (list = []));
          list.push(pod);
        }
      }
      this.labelIndex.set(ns, idx);
    }
    return idx;
  }

  /** Pods of namespace `ns` matching `sel`, in name order. */
  podsInNamespace(ns: string, sel: LabelSelector): PodInfo[] {
    const memoKey = `${ns}\u0000${selectorKey(sel)}`;
    const hit = this.podMemo.get(memoKey);
    if (hit) return hit;
    const all = this.podsByNs.get(ns) ?? [];
    let result: PodInfo[];
    if (isEmptySelector(sel)) {
      result = all;
    } else {
      // Start from the smallest matchLabels bucket, then check the whole selector.
      let candidates = all;
      const pairs = Object.entries(sel.matchLabels ?? {});
      if (pairs.length > 0) {
        const idx = this.indexFor(ns);
        for (const [k, v] of pairs) {
          const bucket = idx.get(`${k}=${v}`) ?? [];
          if (bucket.length < candidates.length || candidates === all) candidates = bucket;
          if (candidates.length === 0) break;
        }
      }
      const m = this.selectors.matcher(sel);
      result = candidates.filter((p) => m(p.labels));
    }
    this.podMemo.set(memoKey, result);
    return result;
  }

  namespacesMatching(sel: LabelSelector): string[] {
    const key = selectorKey(sel);
    const hit = this.nsMemo.get(key);
    if (hit) return hit;
    const m = this.selectors.matcher(sel);
    const result = this.namespaces.filter((ns) => m(this.nsLabels.get(ns) ?? {}));
    this.nsMemo.set(key, result);
    return result;
  }

  /** Members of a podSelector/namespaceSelector peer of a policy in `policyNs`. */
  peerPods(policyNs: string, peer: NetworkPolicyPeer): PodInfo[] {
    if (!peer.namespaceSelector) {
      return peer.podSelector ? this.podsInNamespace(policyNs, peer.podSelector) : [];
    }
    const podSel = peer.podSelector ?? {};
    return this.namespacesMatching(peer.namespaceSelector).flatMap((ns) => this.podsInNamespace(ns, podSel));
  }
}

function resolvePeer(index: InventoryIndex, policyNs: string, peer: NetworkPolicyPeer): PeerMatch {
  if (peer.ipBlock) {
    const norm = (c: string) => (isIpv6(c) ? c : normalizeCidr(c));
    return { kind: 'cidr', cidr: norm(peer.ipBlock.cidr), except: (peer.ipBlock.except ?? []).map(norm) };
  }
  // A peer with neither selector is rejected by the API server; here it selects nobody.
  return { kind: 'pods', pods: index.peerPods(policyNs, peer) };
}

function resolvePeers(index: InventoryIndex, policyNs: string, peers: NetworkPolicyPeer[] | undefined): PeerMatch[] {
  if (!peers || peers.length === 0) return [{ kind: 'any' }];
  return peers.map((p) => resolvePeer(index, policyNs, p));
}

function hasNamedPort(ports: NetworkPolicyPort[] | undefined): boolean {
  return (ports ?? []).some((p) => typeof p.port === 'string');
}

/** Ingress: named ports resolve against the selected (destination) pod. */
function resolveIngressRule(peers: PeerMatch[], ports: NetworkPolicyPort[] | undefined, pod: PodInfo | undefined): ResolvedRule | undefined {
  if (!ports || ports.length === 0) return { peers, ports: 'all' };
  const out: PortMatch[] = [];
  for (const p of ports) {
    if (typeof p.port === 'string') {
      const protocol = p.protocol ?? DEFAULT_PROTOCOL;
      for (const n of pod ? lookupNamedPort(pod, p.port, protocol) : []) out.push({ protocol, from: n, to: n });
    } else {
      const m = numericPortMatch(p);
      if (m) out.push(m);
    }
  }
  return out.length > 0 ? { peers, ports: out } : undefined;
}

/** The pods a destination peer list can reach, for egress named-port lookup. */
function destinationPods(index: InventoryIndex, peers: PeerMatch[]): PodInfo[] {
  const members = new Set<PodInfo>();
  for (const peer of peers) {
    if (peer.kind === 'any') return index.selectable;
    if (peer.kind === 'pods') for (const p of peer.pods) members.add(p);
    else for (const p of index.selectable) if (ipBlockContains(peer, p.ip)) members.add(p);
  }
  return index.selectable.filter((p) => members.has(p));
}

/**
 * Egress: numeric ports keep the rule's peers; each named port is looked up on every destination pod, and the
 * pods are grouped by the number it resolves to, one rule per (protocol, number).
 */
function resolveEgressRule(index: InventoryIndex, peers: PeerMatch[], ports: NetworkPolicyPort[] | undefined): ResolvedRule[] {
  if (!ports || ports.length === 0) return [{ peers, ports: 'all' }];
  const numeric: PortMatch[] = [];
  const named: Array<{ name: string; protocol: Protocol }> = [];
  for (const p of ports) {
    if (typeof p.port === 'string') named.push({ name: p.port, protocol: p.protocol ?? DEFAULT_PROTOCOL });
    else {
      const m = numericPortMatch(p);
      if (m) numeric.push(m);
    }
  }
  const rules: ResolvedRule[] = numeric.length > 0 ? [{ peers, ports: numeric }] : [];
  if (named.length === 0) return rules;
  const groups = new Map<string, { protocol: Protocol; port: number; pods: Set<PodInfo> }>();
  for (const pod of destinationPods(index, peers)) {
    for (const { name, protocol } of named) {
      for (const port of lookupNamedPort(pod, name, protocol)) {
        const key = `${protocol}/${port}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { protocol, port, pods: new Set() }));
        g.pods.add(pod);
      }
    }
  }
  const sorted = [...groups.values()].sort((a, b) => compareStrings(a.protocol, b.protocol) || a.port - b.port);
  for (const g of sorted) {
    rules.push({ peers: [{ kind: 'pods', pods: [...g.pods] }], ports: [{ protocol: g.protocol, from: g.port, to: g.port }] });
  }
  return rules;
}

interface Pending {
  ingress: ResolvedPolicy[];
  egress: ResolvedPolicy[];
}

/** Resolves every policy against the inventory; see the file comment for the implementation-defined choices. */
export function resolvePolicySet(inv: Inventory, policies: readonly NetworkPolicy[]): ResolvedPolicySet {
  const index = new InventoryIndex(inv);
  const perPod = new Map<PodInfo, Pending>();
  for (const pod of index.selectable) perPod.set(pod, { ingress: [], egress: [] });

  for (const policy of [...policies].sort(comparePolicies)) {
    const ns = policy.metadata.namespace;
    const name = `${ns}/${policy.metadata.name}`;
    const selected = index.podsInNamespace(ns, policy.spec.podSelector);
    if (selected.length === 0) continue;
    const types = effectivePolicyTypes(policy);

    if (types.ingress) {
      const rules = (policy.spec.ingress ?? []).map((r) => ({ peers: resolvePeers(index, ns, r.from), ports: r.ports }));
      const perPodPorts = (policy.spec.ingress ?? []).some((r) => hasNamedPort(r.ports));
      const build = (pod: PodInfo | undefined): ResolvedPolicy => ({
        policy: name,
        rules: rules.flatMap((r) => resolveIngressRule(r.peers, r.ports, pod) ?? []),
      });
      // Without named ports the resolved policy is the same for every selected pod: share it.
      const shared = perPodPorts ? undefined : build(undefined);
      for (const pod of selected) perPod.get(pod)?.ingress.push(shared ?? build(pod));
    }
    if (types.egress) {
      const resolved: ResolvedPolicy = {
        policy: name,
        rules: (policy.spec.egress ?? []).flatMap((r) => resolveEgressRule(index, resolvePeers(index, ns, r.to), r.ports)),
      };
      for (const pod of selected) perPod.get(pod)?.egress.push(resolved);
    }
  }

  const endpoints: EndpointPolicy[] = index.selectable.map((pod) => {
    const p = perPod.get(pod) as Pending;
    return {
      pod,
      ingress: { isolated: p.ingress.length > 0, policies: p.ingress },
      egress: { isolated: p.egress.length > 0, policies: p.egress },
    };
  });
  return { endpoints, hostNetworkPods: hostNetworkPods(inv) };
}

export function resolveEndpoints(inv: Inventory, policies: readonly NetworkPolicy[]): EndpointPolicy[] {
  return resolvePolicySet(inv, policies).endpoints;
}

// ---- validation: what the API server would reject, reported all at once ----

const PROTOCOLS = new Set<string>(['TCP', 'UDP', 'SCTP']);
// IANA_SVC_NAME: 1-15 lowercase alphanumerics or '-', at least one letter, no leading/trailing/double '-'.
const SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*$/;

function validatePort(p: NetworkPolicyPort, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol)) {
    issues.push({ path: `${path}.protocol`, message: `unsupported protocol ${JSON.stringify(p.protocol)}; use TCP, UDP or SCTP` });
  }
  if (typeof p.port === 'string') {
    if (p.port.length > 15 || !SVC_NAME.test(p.port) || p.port.endsWith('-')) {
      issues.push({ path: `${path}.port`, message: `named port ${JSON.stringify(p.port)} must be an IANA service name (1-15 of a-z, 0-9, '-', with a letter)` });
    }
    if (p.endPort !== undefined) issues.push({ path: `${path}.endPort`, message: 'endPort requires a numeric port' });
  } else if (p.port !== undefined) {
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      issues.push({ path: `${path}.port`, message: 'must be an integer 1..65535' });
    }
  } else if (p.endPort !== undefined) {
    issues.push({ path: `${path}.endPort`, message: 'endPort requires port' });
  }
  if (p.endPort !== undefined && typeof p.port === 'number') {
    if (!Number.isInteger(p.endPort) || p.endPort > 65535) issues.push({ path: `${path}.endPort`, message: 'must be an integer up to 65535' });
    else if (p.endPort < p.port) issues.push({ path: `${path}.endPort`, message: `must be >= port (${p.port})` });
  }
  return issues;
}

function validatePeer(peer: NetworkPolicyPeer, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const hasSelector = peer.podSelector !== undefined || peer.namespaceSelector !== undefined;
  if (peer.ipBlock && hasSelector) {
    issues.push({ path, message: 'ipBlock cannot be combined with podSelector or namespaceSelector' });
  } else if (!peer.ipBlock && !hasSelector) {
    issues.push({ path, message: 'must specify podSelector, namespaceSelector or ipBlock' });
  }
  if (peer.podSelector) issues.push(...validateSelector(peer.podSelector, `${path}.podSelector`));
  if (peer.namespaceSelector) issues.push(...validateSelector(peer.namespaceSelector, `${path}.namespaceSelector`));
  if (peer.ipBlock) {
    const { cidr, except = [] } = peer.ipBlock;
    let cidrOk = true;
    if (isIpv6(cidr)) {
      issues.push({ path: `${path}.ipBlock.cidr`, message: 'IPv6 ipBlocks are not supported by the local models' });
      cidrOk = false;
    } else {
      try {
        parseCidr(cidr);
      } catch (e) {
        issues.push({ path: `${path}.ipBlock.cidr`, message: (e as Error).message });
        cidrOk = false;
      }
    }
    except.forEach((ex, i) => {
      const p = `${path}.ipBlock.except[${i}]`;
      try {
        parseCidr(ex);
        if (cidrOk && !cidrStrictlyWithin(ex, cidr)) issues.push({ path: p, message: `must be a strict subset of cidr ${cidr}` });
      } catch (e) {
        issues.push({ path: p, message: (e as Error).message });
      }
    });
  }
  return issues;
}

export function validatePolicy(p: NetworkPolicy, path = `${p.metadata?.namespace ?? '?'}/${p.metadata?.name ?? '?'}`): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (!p.metadata?.name) issues.push({ path: `${path}.metadata.name`, message: 'must not be empty' });
  if (!p.metadata?.namespace) issues.push({ path: `${path}.metadata.namespace`, message: 'must not be empty' });
  issues.push(...validateSelector(p.spec.podSelector, `${path}.spec.podSelector`));
  const types = p.spec.policyTypes ?? [];
  types.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') issues.push({ path: `${path}.spec.policyTypes[${i}]`, message: `must be Ingress or Egress, not ${JSON.stringify(t)}` });
  });
  if (new Set(types).size !== types.length) issues.push({ path: `${path}.spec.policyTypes`, message: 'must not repeat a type' });
  (p.spec.ingress ?? []).forEach((r, i) => {
    const rp = `${path}.spec.ingress[${i}]`;
    (r.from ?? []).forEach((peer, j) => issues.push(...validatePeer(peer, `${rp}.from[${j}]`)));
    (r.ports ?? []).forEach((port, j) => issues.push(...validatePort(port, `${rp}.ports[${j}]`)));
  });
  (p.spec.egress ?? []).forEach((r, i) => {
    const rp = `${path}.spec.egress[${i}]`;
    (r.to ?? []).forEach((peer, j) => issues.push(...validatePeer(peer, `${rp}.to[${j}]`)));
    (r.ports ?? []).forEach((port, j) => issues.push(...validatePort(port, `${rp}.ports[${j}]`)));
  });
  return issues;
}

/** Every policy's issues, plus duplicate namespace/name pairs. */
export function validatePolicies(policies: readonly NetworkPolicy[]): ValidationIssue[] {
  const seen = new Set<string>();
  const issues: ValidationIssue[] = [];
  for (const p of policies) {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    if (seen.has(key)) issues.push({ path: key, message: 'duplicate policy (same namespace and name)' });
    seen.add(key);
    issues.push(...validatePolicy(p));
  }
  return issues;
}
