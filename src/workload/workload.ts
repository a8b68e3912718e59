// What runs and what policies select it. A workload is namespaces, pods (real endpoints, and pods that exist only
// as addresses in the data plane's state), hosts outside the cluster, the policy set, and the flows that are
// probed. Every backend brings its data plane up with a workload on it (DataPlane.up in src/backends/types.ts);
// the benchmark shape (./benchmark.ts), the verification grid (src/verify/grid.ts) and the enforce topology
// (src/enforce/plan.ts) are three workloads handed to that one bring-up. Pure data.
import type { PolicySet } from '../policy/generate.js';
import type { ContainerPort, NamespaceInfo, Protocol } from '../policy/types.js';

export type { PolicySet } from '../policy/generate.js';

/**
 * Which kind of workload this is. A backend that deploys a shape its own way (the benchmark's fortio server on
 * kind, say) reads it; results record it. `cluster`: a cluster's snapshot or a generated cluster shape replayed
 * (./replay.ts).
 */
export const WORKLOAD_SHAPES = ['benchmark', 'verify-grid', 'enforce', 'cluster'] as const;
export type WorkloadShape = (typeof WORKLOAD_SHAPES)[number];

/** A pod by `namespace/name`, or a host by its id (`ext1`). */
export type EndpointId = string;

export interface WorkloadPod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** The container ports it declares (named ports resolve against them); an endpoint that serves, serves these. */
  ports: ContainerPort[];
  /** Index of the node it runs on; the backend maps indices onto its nodes. */
  node: number;
  /**
   * endpoint: a real pod with an interface the data plane programs; address: it exists only as an address in the
   * data plane's state (ipset members, identities), never started (a filler's peer, most pods of a large cluster).
   */
  presence: 'endpoint' | 'address';
  /** Opens connections (client), serves its ports (server), or both. */
  role: 'client' | 'server' | 'both';
  /** A fixed address (a cluster snapshot keeps its pod IPs); absent: the backend assigns one. */
  ip?: string;
  /** Runs in its node's network namespace: not subject to NetworkPolicy. No backend places one yet. */
  hostNetwork?: boolean;
}

/** A host outside the cluster on the node network (an ipBlock target), serving `ports`. */
export interface WorkloadHost {
  id: EndpointId;
  ports: ContainerPort[];
  /** endpoint (default): built and serving; address: the data plane cannot build it, it only has an address. */
  presence?: 'endpoint' | 'address';
  /** Its address where fixed (a stand-in nothing answers, for a host a data plane cannot build). */
  ip?: string;
}

/** One connection the workload probes: from a pod or host, to a pod or host, on a port. */
export interface Flow {
  from: EndpointId;
  to: EndpointId;
  protocol: Protocol;
  port: number;
  /** Its latency is measured (bench run), not only its verdict probed. */
  measured?: boolean;
}

export interface Workload {
  shape: WorkloadShape;
  /** Nodes the pods are spread over (pod.node indexes them). */
  nodes: number;
  /** Every namespace the pods and policies live in, with its labels. */
  namespaces: NamespaceInfo[];
  pods: WorkloadPod[];
  hosts: WorkloadHost[];
  /** The policy state the data plane is brought to first (its peers are address-only pods). */
  policies: PolicySet;
  flows: Flow[];
  /**
   * A flow its policies deny on every data plane that enforces (no ipBlock decides it): a backend whose agents
   * program policy asynchronously (kind/cluster) measures only once it is blocked. Absent: none was asked for or found.
   */
  barrier?: Flow;
}

/** Where a backend placed the workload: an address per pod and host, and the node name of each pod. */
export interface WorkloadAddresses {
  ips: Record<EndpointId, string>;
  nodeOf: Record<EndpointId, string>;
}

/**
 * The names a backend deploys a workload under: the namespaces of the benchmark's server and client, and the label
 * every object of the run carries (kind/cluster: the one the teardown selects by). Workload builders generate for
 * exactly these names, so a backend applies what it is handed.
 */
export interface WorkloadTarget {
  namespaces: { server: string; client: string };
  runLabel?: Record<string, string>;
}

/** The benchmark's fixed names: namespaces where a backend gives none of its own (local), labels, the server port. */
export const SERVER_NAMESPACE = 'bench-server';
export const CLIENT_NAMESPACE = 'bench-client';
export const SERVER_LABELS = { app: 'bench-server' } as const;
export const CLIENT_LABELS = { app: 'bench-client' } as const;
export const SERVER_PORT = 8080;

/** The fixed names, for backends that do not give the workload their own (local). */
export const DEFAULT_TARGET: WorkloadTarget = { namespaces: { server: SERVER_NAMESPACE, client: CLIENT_NAMESPACE } };

export const podId = (p: { namespace: string; name: string }): EndpointId => `${p.namespace}/${p.name}`;

/** The pod of `id`, or undefined (a host, or no such pod). */
export const podOf = (w: Pick<Workload, 'pods'>, id: EndpointId): WorkloadPod | undefined => w.pods.find((p) => podId(p) === id);
