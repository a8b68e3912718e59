// The small interface every backend implements. A run drives it: up -> installPolicies -> measure* -> down.
import type { BackendName, CniName, RunConfig } from '../config/schema.js';
import type { Runner } from '../exec/runner.js';
import type { CpuPlacement, MetricResult, MetricName } from '../results/schema.js';
import type { NetworkPolicy } from '../policy/types.js';
import type { PeerPodSpec } from '../policy/generate.js';
import type { WorkloadTarget } from '../workload/workload.js';

export interface ModelDescription {
  /** Short name: "Calico-style iptables model", "Cilium (kind)". */
  name: string;
  /** One line: what really runs. */
  description: string;
  enforcesPolicy: boolean;
}

export interface PolicySet {
  policies: NetworkPolicy[];
  /** Peer pods the policies name; backends that can, account for them without running them. */
  peers: PeerPodSpec[];
}

export interface PolicyInstallReport {
  /** Counts describing the data plane after install (rules, ipsets, identities, map entries…). */
  modelState: Record<string, number | string | boolean>;
  installMs: number;
}

export interface MeasureSettings {
  samples: number;
  warmup: number;
  concurrency: number;
  timeoutMs: number;
  /** The machine's reference to measure beside the metric (src/run/interleave.ts); backends that cannot, ignore it. */
  reference?: { samples: number; warmup: number };
}

/** What every backend is built with (see factory.ts); backends add their own options on top. */
export interface BackendRunOptions {
  config: RunConfig;
  runId: string;
  /** Executes (or, in dry-run, records) commands; cancelled by `signal`. Default: a real ExecRunner. */
  runner?: Runner;
  /** Not cancellable: for teardown after Ctrl-C. */
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
}

export interface Progress {
  /** A step of a long operation; the CLI shows it, tests ignore it. */
  step(message: string): void;
}

export interface BenchBackend {
  readonly name: BackendName;
  readonly cni: CniName;
  readonly model: ModelDescription;
  /** The load generator that produced the samples (cb-probe, fortio). */
  readonly probeTool: string;
  readonly topology: { nodes: number; placement: 'cross-node' | 'same-node'; serverPods: number };
  /** Where the probe's client, server and softirq work run, and why (backends that place work set it). */
  readonly cpuPlacement?: CpuPlacement;
  /** How many interleaved rounds a run measures in when the config does not say (src/run/interleave.ts); default 1. */
  readonly measureRounds?: number;
  /**
   * The namespaces (and run label) this backend deploys the workload under; the orchestrator generates the policy
   * set for them and the backend applies it as handed. Omitted: the fixed names (DEFAULT_WORKLOAD).
   */
  readonly workload?: WorkloadTarget;
  up(): Promise<void>;
  /** Applies `set` exactly as handed (generated for `workload`). */
  installPolicies(set: PolicySet): Promise<PolicyInstallReport>;
  measure(metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>>;
  /** Removes everything the run created. Safe to call twice and after a failed up(). */
  down(): Promise<void>;
  /** For --keep: how to look at what was left up. */
  keepInstructions(): string[];
  /**
   * For --keep: hand what stays up over to nobody, so this process can exit (a local run's server is restarted
   * detached and the run is recorded for `bench gc`). Backends whose resources outlive the process anyway omit it.
   */
  detach?(): Promise<void>;
}

