// What a Kubernetes data plane is built with, and how one shape of workload is put on a cluster (a deployment):
// the benchmark's load pods (./session.ts), a workload of agnhost pods (./grid.ts), the benchmark with the enforce
// probes and changes (./changes.ts). Types only; ./backend.ts picks the deployment by the workload's shape.
import type { RunConfig } from '../../config/schema.js';
import type { Runner } from '../../exec/runner.js';
import type { PolicySet } from '../../policy/generate.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { Flow, Workload, WorkloadAddresses } from '../../workload/workload.js';
import type { Attempt, BackendRunOptions, MeasureSettings, PlaneChanges, PolicyInstallReport, Progress } from '../types.js';
import type { AgentRef } from './cni.js';
import type { StepGuard } from './errors.js';
import type { ClusterProvider, KeepNote, ProviderDescription } from './provider.js';
import type { K8sSession } from './session.js';
import type { Versions } from './versions.js';
import type { Streamer } from './watch.js';

/** Test seams of the enforce deployment (src/backends/k8s/changes.ts). */
export interface EnforceTuning {
  /** How `kubectl exec -i … cb-probe watch` is started (tests: a fake stream). */
  streamer?: Streamer;
  /** Longest wait after a change's API call for the CNI's metric to move, ms (default 3000). */
  metricWaitMs?: number;
  metricPollMs?: number;
  /** Longest wait for a new pod's address, ms (default 60000). */
  podIpTimeoutMs?: number;
  podIpPollMs?: number;
  calibrationMarks?: number;
  now?: () => bigint;
  /** Longest wait for the Service changes' starting state to answer, ms (default 120 s + 10 ms per Service). */
  serviceWaitMs?: number;
}

export interface K8sBackendOptions extends BackendRunOptions {
  /** The run's results directory: diagnostics go here. */
  outDir: string;
  versions?: Versions;
  /** The cluster is this run's own (created and deleted by it), so bench may reconfigure it (switch agent metrics on). */
  ownsCluster?: boolean;
  /** Pods run on this machine's kernel, so their CLOCK_MONOTONIC is this machine's (kind). */
  sharesHostClock?: boolean;
  /** Tests: enforcement probe pacing and bound. */
  probeIntervalMs?: number;
  enforcementTimeoutMs?: number;
  enforce?: EnforceTuning;
  /** A cluster workload whose policies change (bench enforce --workload): ./workload-enforce.ts. */
  workloadChanges?: boolean;
}

/** What a deployment works with: the cluster, the run's benchmark pods, the runners. */
export interface K8sPlaneContext {
  readonly provider: ClusterProvider;
  readonly guard: StepGuard;
  readonly session: K8sSession;
  readonly runner: Runner;
  readonly cleanupRunner: Runner;
  readonly versions: Versions;
  readonly config: RunConfig;
  readonly runId: string;
  readonly opts: K8sBackendOptions;
  readonly progress?: Progress;
  /** The CNI agents as found on the cluster (replaced once it is provisioned: their namespace depends on the install). */
  readonly agents: AgentRef[];
  /** Nodes the placement found, once known. */
  nodeCount?: number;
}

/** How one shape of workload is put on a cluster and takes its policy states. */
export interface K8sDeployment {
  /** What runs, given the provider's words and the benchmark's load wording. */
  describe(cluster: ProviderDescription, benchmark: string): string;
  fit(workload: Workload): Workload;
  up(workload: Workload): Promise<WorkloadAddresses>;
  install(set: PolicySet): Promise<PolicyInstallReport>;
  probe?(flow: Flow, timeoutMs: number): Promise<Attempt>;
  measure?(flow: Flow, metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>>;
  readonly changes?: PlaneChanges;
  /** The namespaces it created so far (diagnostics describe them). */
  namespaces(): string[];
  /** Stops what it started, and removes its namespaces when the cluster stays. */
  teardown(clusterStays: boolean): Promise<void>;
  keepNote(): KeepNote;
}

