// networking.k8s.io/v1 NetworkPolicy as plain data, and the cluster inventory policies are resolved against.
// Every backend consumes these same objects: the local models compile them, kind/cluster apply them.

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface IPBlock {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  protocol?: Protocol;
  /** Number, or the name of a container port declared by the pod it resolves against. */
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    podSelector: LabelSelector;
    policyTypes?: Array<'Ingress' | 'Egress'>;
    ingress?: NetworkPolicyIngressRule[];
    egress?: NetworkPolicyEgressRule[];
  };
}

// ---- inventory: what the policies are resolved against ----

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: Protocol;
}

export interface PodInfo {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ip: string;
  node: string;
  ports: ContainerPort[];
  /** hostNetwork pods are not subject to NetworkPolicy. */
  hostNetwork?: boolean;
}

export interface Inventory {
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
}

export function podKey(p: Pick<PodInfo, 'namespace' | 'name'>): string {
  return `${p.namespace}/${p.name}`;
}

export function policyKey(p: NetworkPolicy): string {
  return `${p.metadata.namespace}/${p.metadata.name}`;
}

// ---- resolved form: what the data-plane compilers consume ----
// Produced by src/policy/resolve.ts from an Inventory and a policy set. Selectors are already evaluated,
// named ports already looked up, policyTypes defaults already applied.

export type PeerMatch =
  /** A rule with no from/to: every source/destination, inside the cluster or not. */
  | { kind: 'any' }
  /** The pods a podSelector/namespaceSelector peer selects (possibly none). */
  | { kind: 'pods'; pods: PodInfo[] }
  /** An ipBlock peer. */
  | { kind: 'cidr'; cidr: string; except: string[] };

/** A port match with numbers resolved; `from === to` for a single port. */
export interface PortMatch {
  protocol: Protocol;
  /** undefined from/to: every port of that protocol. */
  from?: number;
  to?: number;
}

export interface ResolvedRule {
  /** OR of peers. */
  peers: PeerMatch[];
  /** OR of ports; 'all' when the rule lists no ports (every port, every protocol). */
  ports: PortMatch[] | 'all';
}

export interface ResolvedPolicy {
  /** namespace/name */
  policy: string;
  /** OR of rules; an empty list allows nothing (the policy only isolates). */
  rules: ResolvedRule[];
}

export interface EndpointDirection {
  /** True when at least one policy selecting this pod has this policyType: then only allowed traffic passes. */
  isolated: boolean;
  /** The selecting policies with this policyType, in a stable order (by namespace, then name). */
  policies: ResolvedPolicy[];
}

/** What applies to one pod, for traffic to it (ingress) and from it (egress). */
export interface EndpointPolicy {
  pod: PodInfo;
  ingress: EndpointDirection;
  egress: EndpointDirection;
}
