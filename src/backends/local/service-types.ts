// What a service data plane of the local backend is: the room a Service set goes to, as a CNI model is the room
// a policy set goes to. A model declares which one it runs beside (kube-proxy's iptables or nftables mode, or
// the CNI's own eBPF load balancer that replaces kube-proxy); the data plane renders the set as that agent
// would, installs it on every node of the topology, updates it incrementally, reports its state size, and tells
// the caller where a client must run for its connections to be translated.
import type { IptablesBackendName } from '../../config/schema.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import type { ServiceDelta, ServiceSet } from '../../services/types.js';
import type { PodSpec, Topology } from './topology.js';

export const SERVICE_DATA_PLANES = ['kube-proxy-iptables', 'kube-proxy-nftables', 'cilium-socket-lb', 'calico-ctlb'] as const;
export type ServiceDataPlaneName = (typeof SERVICE_DATA_PLANES)[number];

/**
 * How a new connection finds its Service, which is what decides how its cost grows with the Service count:
 * `rule-walk` tests one rule per Service port in order (O(n)); `verdict-map` looks the destination up in an
 * nftables map; `bpf-map` in a BPF hash or LPM map at connect() time.
 */
export type ServiceLookup = 'rule-walk' | 'verdict-map' | 'bpf-map';

export interface ServicePlaneSettings {
  /** kube-proxy iptables mode: which iptables binaries write the rules (as kubelet's on the node). */
  iptablesBackend: IptablesBackendName;
  /** The cluster's pod CIDR: kube-proxy's ClusterCIDR local-traffic detector (masquerade what is not from it). */
  clusterCidr: string;
}

export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';

export interface ServicePlaneContext {
  runner: Runner;
  /** Not cancellable: teardown after Ctrl-C. */
  cleanupRunner: Runner;
  topology: Topology;
  settings: ServicePlaneSettings;
}

/** Sizes of what the data plane holds: rules, chains, map entries… (numbers) and what wrote them (strings). */
export type ServiceState = Record<string, number | string>;

export interface ServiceInstallReport {
  /** Wall time of the whole install (every node, in parallel as each node's agent would), ms. */
  installMs: number;
  /** Per node, the agent's own apply (one transaction or one map write each), ms. */
  nodeMs: Record<string, number>;
  state: ServiceState;
}

export interface ServiceUpdateReport {
  /** Agent-side time of the change: the slowest node's apply, ms. */
  agentMs: number;
  nodeMs: Record<string, number>;
  /** What was written: rulesWritten, chainsWritten, elementsChanged, mapEntriesChanged… */
  changed: Record<string, number>;
  state: ServiceState;
}

/** One service data plane on one topology: created per run, it remembers what it installed. */
export interface ServiceDataPlane {
  readonly name: ServiceDataPlaneName;
  /** What runs, in the field's words, saying it is a model ("kube-proxy iptables mode, v1.33 rules, iptables-nft"). */
  readonly description: string;
  readonly lookup: ServiceLookup;
  /** The commands an install runs, without running them (pure: for --dry-run and plan snapshots). */
  plan(set: ServiceSet): CommandSpec[];
  install(set: ServiceSet): Promise<ServiceInstallReport>;
  /**
   * Writes only what differs from the installed set, as the agent's partial sync does. `delta` names the
   * Services the change touched, as the agent's watch hands them over; a data plane whose agent reconciles per
   * object uses it, one that re-renders its whole state reads `next` alone.
   */
  update(next: ServiceSet, delta?: ServiceDelta): Promise<ServiceUpdateReport>;
  /**
   * A client command as it must run for this data plane to see its connections. kube-proxy works on packets in
   * the node: unchanged. A socket-level balancer hooks connect() of the processes in its cgroup: the command is
   * placed in the node's cgroup of the run first.
   */
  wrapClient(spec: CommandSpec, pod: PodSpec): CommandSpec;
  /** Removes what deleting the namespaces does not (cgroups, BPF pins). Idempotent. */
  teardown(): Promise<void>;
}

export interface ServiceDataPlaneKind {
  name: ServiceDataPlaneName;
  description: string;
  lookup: ServiceLookup;
  create(ctx: ServicePlaneContext): ServiceDataPlane;
}
