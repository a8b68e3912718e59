// A cluster-shaped workload as plain data: the namespaces, pods and NetworkPolicy objects of a real cluster's
// snapshot (snapshot.ts) or of a generated shape (shape.ts, generate-shape.ts), with where it came from. Every
// pod has a node and an IPv4 address: taken from the source where it has them, assigned here where it does not
// (controllers standing in for their pods, generated shapes), on the local topology's scheme.
import { isIpv6, parseCidr } from '../policy/cidr.js';
import type { Inventory, NetworkPolicy } from '../policy/types.js';

export interface ClusterWorkload {
  /** What reports call it: the shape's name, or the snapshot file's base name. */
  name: string;
  inventory: Inventory;
  policies: NetworkPolicy[];
  /** Node names in natural order; every pod's node is one of them. */
  nodes: string[];
  /** Pod CIDRs of the nodes whose Node object the source has (spec.podCIDRs, IPv4), by node name. */
  nodePodCidrs?: Record<string, string[]>;
  /** `namespace/name` of the pods whose node and address were assigned here, not read from the source. */
  assignedAddresses: string[];
  source: SnapshotSource | ShapeSource;
}

/** How the pods of a Deployment, StatefulSet or DaemonSet were made up (the file had the controller, not its pods). */
export interface ExpandedController {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  /** namespace/name */
  name: string;
  pods: number;
}

/** Policies of another engine a snapshot holds, of one kind: counted, named, not replayed. */
export interface UnreplayedPolicies {
  kind: string;
  /** Its API group (cilium.io, projectcalico.org, policy.networking.k8s.io…). */
  group: string;
  /** Whose policies these are: Cilium, Calico, AdminNetworkPolicy API (sig-network), Antrea. */
  engine: string;
  /** namespace/name, or name for a cluster-scoped policy. */
  names: string[];
}

export interface SnapshotSource {
  kind: 'snapshot';
  file: string;
  format: 'json' | 'yaml';
  /** Items read, by kind. */
  items: Record<string, number>;
  /** Items of kinds a workload does not use (Service, ReplicaSet…), by kind: counted, not read. */
  ignoredKinds: Record<string, number>;
  /** Pods in the file that no data plane holds, and why (finished, not scheduled, no IPv4 address). */
  skippedPods: Array<{ pod: string; reason: string; labels?: Record<string, string> }>;
  /** Controllers that stood in for their pods. */
  expanded: ExpandedController[];
  /** Controllers whose pods are in the file, so they were not expanded. */
  representedByPods: string[];
  /** Namespaces made up from the names pods and policies use (the file lists no Namespace objects). */
  derivedNamespaces: string[];
  /** Policies of other engines (CiliumNetworkPolicy, Calico GlobalNetworkPolicy, AdminNetworkPolicy…) by kind. */
  unreplayedPolicies?: UnreplayedPolicies[];
  /** IPv6 ipBlock peers left out of the IPv4 replay, as `namespace/policy spec.egress[0].to[1]`. */
  ipv6Peers?: string[];
  /** Namespace items without the kubernetes.io/metadata.name label (a cluster before 1.21): the replay adds it. */
  namespacesWithoutNameLabel?: string[];
  /** Why the Nodes' spec.podCIDRs were not used as the nodes' routes (a pod outside its node's), if they were not. */
  nodeCidrsNotUsed?: string;
}

export interface ShapeApp {
  namespace: string;
  app: string;
  replicas: number;
  /** `port/PROTO` (and `name=` when named), as the app's containers declare them. */
  ports: string[];
  hostNetwork?: boolean;
}

export interface ShapeSource {
  kind: 'shape';
  file: string;
  seed: number;
  scale: number;
  apps: ShapeApp[];
  /** Who calls whom: `namespace/app` pairs. */
  calls: Array<{ from: string; to: string }>;
}

// ---- addresses: the local topology's scheme (src/backends/local/topology.ts) ----

/** Pod addresses on node i: 10.244.i.0/24, host addresses from .2 (.1 is left to the node, as the topology does). */
export const FIRST_POD_SLOT = 2;
export const LAST_POD_SLOT = 254;
/** Addresses a node's /24 pod CIDR holds for pods. */
export const MAX_PODS_PER_NODE = LAST_POD_SLOT - FIRST_POD_SLOT + 1;
/** 10.244.<i>.0/24 has room for node indexes 0..255; the local topology builds at most 200 nodes. */
export const MAX_ADDRESSED_NODES = 200;
/** Endpoint pods the local topology runs at once (why: src/backends/local/topology.ts, README "Workloads"). */
export const MAX_LOCAL_ENDPOINTS = 600;

export const podAddress = (nodeIndex: number, slot: number): string => `10.244.${nodeIndex}.${slot}`;
export const podCidrOf = (nodeIndex: number): string => `10.244.${nodeIndex}.0/24`;
/** A node's own address on the node network (what a hostNetwork pod on it has), as the local topology gives it. */
export const nodeAddress = (nodeIndex: number): string => `172.18.0.${nodeIndex + 2}`;

/** Natural order: node-2 before node-10. */
export const naturalCompare = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

/**
 * Hands out pod addresses per node, skipping addresses already taken by pods that have their own. Returns
 * undefined when the node's /24 is full or its index is beyond the scheme.
 */
export class AddressPlan {
  private readonly next = new Map<number, number>();
  constructor(private readonly taken: ReadonlySet<string>) {}

  podAddress(nodeIndex: number): string | undefined {
    if (nodeIndex >= MAX_ADDRESSED_NODES) return undefined;
    let slot = this.next.get(nodeIndex) ?? FIRST_POD_SLOT;
    while (slot <= LAST_POD_SLOT && this.taken.has(podAddress(nodeIndex, slot))) slot++;
    if (slot > LAST_POD_SLOT) return undefined;
    this.next.set(nodeIndex, slot + 1);
    return podAddress(nodeIndex, slot);
  }
}

/** An ipBlock as a test on a numeric IPv4 address (parsed once; checking thousands of pods stays cheap). */
export function ipBlockMatcher(block: { cidr: string; except?: string[] }): (ip: number | undefined) => boolean {
  const range = (c: string) => (isIpv6(c) ? undefined : parseCidr(c));
  const inside = range(block.cidr);
  const except = (block.except ?? []).map(range).filter((r) => r !== undefined);
  return (ip) => ip !== undefined && inside !== undefined && ip >= inside.first && ip <= inside.last && !except.some((e) => ip >= e.first && ip <= e.last);
}
