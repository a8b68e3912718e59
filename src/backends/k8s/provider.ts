// The cluster substrate under both `bench run` and `bench verify` on a real cluster, after kind's
// providers.Provider: a small interface with one folder per implementation (src/backends/kind/provider.ts
// creates and deletes a throw-away cluster; src/backends/cluster/provider.ts validates an existing one and
// leaves it alone). What runs on top — the benchmark's namespaces and pods (backend.ts) or the verification
// grid (./grid.ts) — never names a provider; it reads the capabilities below.
import type { KubeProxyMode } from '../../config/cnis.js';
import type { BackendName, RunConfig } from '../../config/schema.js';
import type { AgentRef, CniProfile } from './cni.js';
import type { K8sStep, StepGuard } from './errors.js';
import type { KubeTarget } from './kubectl.js';
import type { Placement } from './manifests.js';

/** What a provider can and cannot do, as data. */
export interface ProviderInfo {
  /** Releasing the cluster deletes everything in it (kind); otherwise the consumer removes its own namespaces. */
  deletesCluster: boolean;
  /** Every node shares one kernel (kind): one /proc/stat read covers them all. */
  sharedKernel: boolean;
  /** Per-container CPU read from cgroup v2 inside the node containers through this engine (kind: docker, podman…). */
  nodeCgroups?: { provider: string };
  /** At most this many filler peers run as pods. */
  peerPodCap: number;
  /** Nodes the peer pods are spread over (default: the client and server nodes). */
  peerNodes?: string[];
  /** Node count known before provisioning (kind creates a fixed number). */
  nodes?: number;
  /** Namespaces worth describing in diagnostics besides the agents' (the CNI's install namespaces). */
  diagnosticNamespaces: string[];
  /**
   * kube-proxy's mode when the provider set it (kind's kubeProxyMode; 'none' where the CNI replaces kube-proxy);
   * undefined on a cluster bench did not make, whose mode is read (./service-state.ts) and cannot be changed.
   */
  kubeProxy?: KubeProxyMode | 'none';
}

export interface ProvisionOptions {
  /** Ask whether this identity may read kubelet metrics (nodes/proxy): a benchmark's CPU figures need them. */
  checkKubeletMetrics?: boolean;
}

/** A cluster with its CNI ready, as the consumer may use it. */
export interface ProvisionedCluster {
  /** The CNI agents as they run on this cluster (their namespace depends on how it was installed). */
  agents: AgentRef[];
  /** Set when detection knows better than the profile (k3s' embedded policy controller). */
  enforcesPolicy?: boolean;
  /** False when the identity may not read kubelet metrics; undefined when not asked or not needed. */
  kubeletMetrics?: boolean;
  /** What provisioning found out about the data plane, for the result's modelState (kind: Felix's iptables flavour). */
  modelState?: Record<string, string | number | boolean>;
  /** Nodes for a placement; undefined when not known (a dry run against a cluster nobody has read). Throws when impossible. */
  place(placement: RunConfig['placement']): { placement: Placement; nodeCount: number } | undefined;
}

/** For --keep: what the consumer left in the cluster. */
export interface KeepNote {
  /** The consumer's namespaces. */
  namespaces: string[];
  /** kubectl arguments (after the target flags) worth running to look at it. */
  examples: string[];
  /** Said of what is left ("the last case's policies are still applied"). */
  note?: string;
  /** How a provider that keeps the whole cluster names the consumer's namespaces ("grid namespaces"). */
  label?: string;
}

export interface ProviderDescription {
  /** "Calico v3.30.2 (kind)", "Calico (existing cluster)". */
  name: string;
  /** What really runs, in detail (the node image, what was detected). */
  runs: string;
  /** The same in brief. */
  runsBrief: string;
}

export interface ClusterProvider {
  readonly name: Extract<BackendName, 'kind' | 'cluster'>;
  readonly target: KubeTarget;
  readonly profile: CniProfile;
  readonly info: ProviderInfo;
  /** Creates (kind) or reaches and validates (existing cluster) a cluster with the CNI ready; steps run under `guard`. */
  provision(guard: StepGuard, o?: ProvisionOptions): Promise<ProvisionedCluster>;
  /** Deletes the cluster if this provider created it; a no-op otherwise. Idempotent, safe after a failed provision. */
  release(): Promise<void>;
  /** Whether a failure at `step` leaves something worth collecting diagnostics from. */
  worthDiagnosing(step: K8sStep): boolean;
  /** Adds the provider's own diagnostics (kind: node logs) into `dir`. Best effort. */
  collectDiagnostics(dir: string): Promise<void>;
  describe(): ProviderDescription;
  keepInstructions(left: KeepNote): string[];
}
