// The reference evaluator: does NetworkPolicy allow this one connection? `bench verify` compares every data
// plane against it, so it works from the NetworkPolicy objects directly and shares no resolution code with
// resolve.ts (whose output the compilers consume) beyond selector, CIDR and policyTypes primitives: a bug in
// the resolver then shows up as a disagreement instead of being copied into the truth.
//
// Implementation-defined points follow Calico (and resolve.ts):
// - ipBlock matches by IP, pod IPs included. The spec says ipBlock is meant for cluster-external addresses
//   and that whether pod IPs match is implementation-defined; Calico matches any address in the block.
// - hostNetwork pods are not subject to policy and are never selected by pod/namespace selectors; an ipBlock
//   can match their (node) IP.
// - Named ports resolve against the destination pod in both directions (ingress: the selected pod; egress: the
//   peer). A destination that is not a pod declares no ports, so a named port never matches it.
import { ipBlockContains } from './cidr.js';
import { effectivePolicyTypes, lookupNamedPort, DEFAULT_PROTOCOL } from './resolve.js';
import { SelectorCache, effectiveNamespaceLabels, type LabelMatcher, type Labels } from './selectors.js';
import type { Inventory, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, PodInfo, Protocol } from './types.js';
import { BenchError } from '../errors.js';

/** A pod, or an address that is not a pod's (outside the cluster, or a node). */
export type Endpoint = PodInfo | { ip: string };

export interface Connection {
  src: Endpoint;
  dst: Endpoint;
  protocol: Protocol;
  port: number;
}

/**
 * - allowed: the pod is isolated in this direction and at least one selecting policy allows the connection;
 * - denied: isolated and no selecting policy allows it;
 * - not-isolated: no policy with this policyType selects the pod, so everything passes;
 * - not-subject: this side is not a pod subject to policy (an external address, or a hostNetwork pod).
 */
export type Decision = 'allowed' | 'denied' | 'not-isolated' | 'not-subject';

export interface Verdict {
  decision: Decision;
  /** namespace/name of the policies selecting the pod in this direction, in name order. */
  isolatedBy: string[];
  /** The isolating policies that allow the connection, in name order: the first is the one a data plane that
   * walks policies by name reaches first. */
  allowedBy: string[];
}

export interface ConnectionVerdict {
  allowed: boolean;
  ingress: Verdict;
  egress: Verdict;
  notes: string[];
}

interface CompiledPolicy {
  name: string;
  policy: NetworkPolicy;
  selects: LabelMatcher;
  ingress: boolean;
  egress: boolean;
}

/** What a connection's far side looks like to a rule: its address, and the pod behind it if it is one. */
interface Remote {
  ip: string;
  /** Set only for a pod on the pod network (hostNetwork pods are not selectable). */
  pod?: PodInfo;
}

function isPod(e: Endpoint): e is PodInfo {
  return 'name' in e && 'namespace' in e;
}

/** Policies compiled and grouped by namespace once, for evaluating many connections against one set. */
export class PolicyEvaluator {
  private readonly byNamespace = new Map<string, CompiledPolicy[]>();
  private readonly nsLabels = new Map<string, Labels>();
  private readonly podsByIp = new Map<string, PodInfo[]>();
  private readonly selectors = new SelectorCache();

  constructor(readonly inventory: Inventory, policies: readonly NetworkPolicy[]) {
    for (const ns of inventory.namespaces) this.nsLabels.set(ns.name, effectiveNamespaceLabels(ns.name, ns.labels));
    for (const pod of inventory.pods) {
      const list = this.podsByIp.get(pod.ip) ?? [];
      list.push(pod);
      this.podsByIp.set(pod.ip, list);
    }
    const sorted = [...policies].sort(
      (a, b) =>
        (a.metadata.namespace < b.metadata.namespace ? -1 : a.metadata.namespace > b.metadata.namespace ? 1 : 0) ||
        (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0),
    );
    for (const policy of sorted) {
      const types = effectivePolicyTypes(policy);
      const list = this.byNamespace.get(policy.metadata.namespace) ?? [];
      list.push({
        name: `${policy.metadata.namespace}/${policy.metadata.name}`,
        policy,
        selects: this.selectors.matcher(policy.spec.podSelector),
        ingress: types.ingress,
        egress: types.egress,
      });
      this.byNamespace.set(policy.metadata.namespace, list);
    }
  }

  private namespaceLabels(ns: string): Labels {
    return this.nsLabels.get(ns) ?? effectiveNamespaceLabels(ns, {});
  }

  /** A bare address that belongs to a pod-network pod is that pod: data planes only ever see addresses. */
  private identify(e: Endpoint, role: string, notes: string[]): { ip: string; pod?: PodInfo; hostNetwork?: PodInfo } {
    if (isPod(e)) return e.hostNetwork ? { ip: e.ip, hostNetwork: e } : { ip: e.ip, pod: e };
    const owners = this.podsByIp.get(e.ip) ?? [];
    const pod = owners.find((p) => !p.hostNetwork);
    if (pod) {
      notes.push(`${role} ${e.ip} is pod ${pod.namespace}/${pod.name}`);
      return { ip: e.ip, pod };
    }
    const host = owners.find((p) => p.hostNetwork);
    return host ? { ip: e.ip, hostNetwork: host } : { ip: e.ip };
  }

  private peerMatches(policyNs: string, peer: NetworkPolicyPeer, remote: Remote, policyName: string, notes: string[]): boolean {
    if (peer.ipBlock) {
      const hit = ipBlockContains(peer.ipBlock, remote.ip);
      if (hit && remote.pod) {
        notes.push(`${policyName}: ipBlock ${peer.ipBlock.cidr} matched pod IP ${remote.ip} (implementation-defined; Calico matches it)`);
      }
      return hit;
    }
    if (!remote.pod || (!peer.podSelector && !peer.namespaceSelector)) return false;
    const nsOk = peer.namespaceSelector
      ? this.selectors.matcher(peer.namespaceSelector)(this.namespaceLabels(remote.pod.namespace))
      : remote.pod.namespace === policyNs;
    return nsOk && (!peer.podSelector || this.selectors.matcher(peer.podSelector)(remote.pod.labels));
  }

  private portMatches(ports: NetworkPolicyPort[] | undefined, conn: Connection, namedPortsOf: PodInfo | undefined): boolean {
    if (!ports || ports.length === 0) return true;
    return ports.some((p) => {
      const protocol = p.protocol ?? DEFAULT_PROTOCOL;
      if (protocol !== conn.protocol) return false;
      if (p.port === undefined) return true;
      if (typeof p.port === 'string') return namedPortsOf !== undefined && lookupNamedPort(namedPortsOf, p.port, protocol).includes(conn.port);
      return p.endPort === undefined ? conn.port === p.port : conn.port >= p.port && conn.port <= p.endPort;
    });
  }

  private side(
    direction: 'ingress' | 'egress',
    subject: { pod?: PodInfo; hostNetwork?: PodInfo },
    remote: Remote,
    conn: Connection,
    dstPod: PodInfo | undefined,
    notes: string[],
  ): Verdict {
    const verdict = (decision: Decision, isolatedBy: string[] = [], allowedBy: string[] = []): Verdict => ({ decision, isolatedBy, allowedBy });
    if (subject.hostNetwork) {
      const h = subject.hostNetwork;
      notes.push(`${direction}: ${h.namespace}/${h.name} is a hostNetwork pod; NetworkPolicy does not apply to it`);
      return verdict('not-subject');
    }
    const pod = subject.pod;
    if (!pod) return verdict('not-subject');
    const isolating = (this.byNamespace.get(pod.namespace) ?? []).filter((p) => p[direction] && p.selects(pod.labels));
    if (isolating.length === 0) return verdict('not-isolated');
    const allowedBy = isolating.filter((p) => {
      const rules =
        direction === 'ingress'
          ? (p.policy.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
          : (p.policy.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
      return rules.some(({ peers, ports }) => {
        const peerOk = !peers || peers.length === 0 || peers.some((peer) => this.peerMatches(pod.namespace, peer, remote, p.name, notes));
        return peerOk && this.portMatches(ports, conn, dstPod);
      });
    });
    return verdict(allowedBy.length > 0 ? 'allowed' : 'denied', isolating.map((p) => p.name), allowedBy.map((p) => p.name));
  }

  evaluate(conn: Connection): ConnectionVerdict {
    const notes: string[] = [];
    const src = this.identify(conn.src, 'source', notes);
    const dst = this.identify(conn.dst, 'destination', notes);
    const egress = this.side('egress', src, { ip: dst.ip, pod: dst.pod }, conn, dst.pod, notes);
    const ingress = this.side('ingress', dst, { ip: src.ip, pod: src.pod }, conn, dst.pod, notes);
    const passes = (v: Verdict) => v.decision !== 'denied';
    return { allowed: passes(egress) && passes(ingress), ingress, egress, notes };
  }
}

/**
 * Is the connection allowed? Egress of the source AND ingress of the destination; a side that is not a pod
 * subject to policy does not restrict. Pass a PolicyEvaluator built once when checking many connections.
 */
export function evaluateConnection(
  inv: Inventory,
  policies: readonly NetworkPolicy[] | PolicyEvaluator,
  conn: Connection,
): ConnectionVerdict {
  if (policies instanceof PolicyEvaluator) {
    if (policies.inventory !== inv) throw new BenchError('internal', 'evaluateConnection: the PolicyEvaluator was built for a different inventory');
    return policies.evaluate(conn);
  }
  return new PolicyEvaluator(inv, policies).evaluate(conn);
}
