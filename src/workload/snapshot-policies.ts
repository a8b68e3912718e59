// What a snapshot's policies become in the replay, which is IPv4 and Kubernetes NetworkPolicy only. Pure.
//
// - An IPv6 ipBlock peer (a dual-stack cluster's `::/0`) matches no address the replay holds: the peer is left out,
//   and a rule whose peers were all IPv6 ipBlocks is left out whole (it matches no IPv4 connection; with an empty
//   peer list it would match every one). policyTypes is written out first, so a policy whose every egress rule
//   was IPv6 still isolates egress, as it does on the cluster for IPv4 traffic.
// - Policies of other engines (CiliumNetworkPolicy, Calico's NetworkPolicy and GlobalNetworkPolicy,
//   AdminNetworkPolicy…) are not replayed; they are counted per kind, with their names, for a finding.
import { isIP } from 'node:net';
import { isIpv6 } from '../policy/cidr.js';
import { effectivePolicyTypes } from '../policy/resolve.js';
import type { NetworkPolicy, NetworkPolicyPeer } from '../policy/types.js';
import type { UnreplayedPolicies } from './cluster.js';
import { apiGroup, POLICY_ENGINE_GROUPS as POLICY_GROUPS } from './k8s-objects.js';

/** Whether an item of this kind and apiVersion is a policy of another engine (a kind ending in Policy, in one of their groups). */
export function isUnreplayedPolicy(kind: string, apiVersion: unknown): boolean {
  return /Policy$/.test(kind) && Object.hasOwn(POLICY_GROUPS, apiGroup(apiVersion));
}

/** Adds an item to the per-kind count. */
export function countUnreplayed(out: UnreplayedPolicies[], kind: string, apiVersion: string, name: string): void {
  const group = apiGroup(apiVersion);
  let entry = out.find((e) => e.kind === kind && e.group === group);
  if (!entry) {
    entry = { kind, group, engine: POLICY_GROUPS[group]!, names: [] };
    out.push(entry);
  }
  entry.names.push(name);
}

/** An IPv6 CIDR as the API server accepts it (address/prefix, prefix 0-128), or a reason it is not one. */
export function ipv6CidrProblem(cidr: string): string | undefined {
  const [addr, prefix, extra] = cidr.split('/');
  if (extra !== undefined || prefix === undefined || !/^\d{1,3}$/.test(prefix) || Number(prefix) > 128 || isIP(addr ?? '') !== 6) return `invalid IPv6 CIDR ${JSON.stringify(cidr)}: expected address/prefix, prefix 0-128`;
  return undefined;
}

const isV6Peer = (p: NetworkPolicyPeer): boolean => p.ipBlock !== undefined && isIpv6(p.ipBlock.cidr);

/** The kubectl paths of a policy's IPv6 ipBlock peers (`spec.egress[0].to[1]`). */
export function ipv6PeerPaths(p: NetworkPolicy): string[] {
  const out: string[] = [];
  (p.spec.ingress ?? []).forEach((r, i) => (r.from ?? []).forEach((x, j) => isV6Peer(x) && out.push(`spec.ingress[${i}].from[${j}]`)));
  (p.spec.egress ?? []).forEach((r, i) => (r.to ?? []).forEach((x, j) => isV6Peer(x) && out.push(`spec.egress[${i}].to[${j}]`)));
  return out;
}

/** The policy as the IPv4 replay holds it: IPv6 ipBlock peers left out (see the top of this file). Unchanged when it has none. */
export function ipv4View(p: NetworkPolicy): NetworkPolicy {
  if (!ipv6PeerPaths(p).length) return p;
  const types = effectivePolicyTypes(p);
  const keep = <R>(rules: R[] | undefined, peersOf: (r: R) => NetworkPolicyPeer[] | undefined, withPeers: (r: R, peers: NetworkPolicyPeer[]) => R): R[] | undefined =>
    rules?.flatMap((r) => {
      const peers = peersOf(r);
      if (!peers?.length) return [r];
      const v4 = peers.filter((x) => !isV6Peer(x));
      return v4.length ? [withPeers(r, v4)] : [];
    });
  const ingress = keep(p.spec.ingress, (r) => r.from, (r, from) => ({ ...r, from }));
  const egress = keep(p.spec.egress, (r) => r.to, (r, to) => ({ ...r, to }));
  return {
    ...p,
    spec: {
      ...p.spec,
      policyTypes: [...(types.ingress ? (['Ingress'] as const) : []), ...(types.egress ? (['Egress'] as const) : [])],
      ...(ingress ? { ingress } : {}),
      ...(egress ? { egress } : {}),
    },
  };
}
