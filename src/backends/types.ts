// The one interface every backend implements: bring a data plane up with a workload on it, hand it policy states
// (whole, or changed incrementally where its agent can), probe and measure the workload's flows, tear it down.
// `bench run`, `bench verify` and `bench enforce` all go through it; the backend descriptors (factory.ts) build it.
import type { BackendName, CniName, RunConfig } from '../config/schema.js';
import type { Runner } from '../exec/runner.js';
import type { CpuPlacement, MetricResult, MetricName, ServicesResult } from '../results/schema.js';
import type { RunningWatch, WatchSettings } from '../probe/native.js';
import type { ServiceDelta, ServiceSet } from '../services/types.js';
import type { EndpointId, Flow, PolicySet, Workload, WorkloadAddresses, WorkloadPod, WorkloadShape, WorkloadTarget } from '../workload/workload.js';

export interface ModelDescription {
  /** Short name: "Calico-style iptables model", "Cilium (kind)". */
  name: string;
  /** One line: what really runs. */
  description: string;
  enforcesPolicy: boolean;
}

export interface PolicyInstallReport {
  /** Counts describing the data plane after install (rules, ipsets, identities, map entries…). */
  modelState: Record<string, number | string | boolean>;
  installMs: number;
  /** `--services` (local backend): the Service set installed after the policies, on the CNI's service data plane. */
  services?: ServicesResult;
}

export interface MeasureSettings {
  samples: number;
  warmup: number;
  concurrency: number;
  timeoutMs: number;
  /** The machine's reference to measure beside the metric (src/run/interleave.ts); backends that cannot, ignore it. */
  reference?: { samples: number; warmup: number };
}

export interface Progress {
  /** A step of a long operation; the CLI shows it, tests ignore it. */
  step(message: string): void;
}

/** What one probe of a flow saw. */
export type Outcome = 'connected' | 'blocked';
export interface Attempt {
  outcome: Outcome;
  /** The probe's words: 'open', 'timeout ETIMEDOUT', 'refused ECONNREFUSED'… */
  reason: string;
}

/** What an incremental change cost the data plane's agent: only what differs is written (never a full reinstall). */
export interface AgentReport {
  /** Agent-side time: compile + apply, ms. */
  agentMs: number;
  compileMs: number;
  applyMs: number;
  /** What was rewritten: chainsRewritten, setMembersChanged, mapEntriesChanged, … */
  changed: Record<string, number>;
  /** The data plane's state after the change (same keys as install's). */
  state: Record<string, number | string | boolean>;
}

/** What a kind/cluster data plane records of one change besides the probes (an enforce observation's k8s). */
export interface K8sChangeRecord {
  command: string;
  apiMs: number;
  /** new-pod: the first probe started this long after the change (the pod had no address before). */
  watchStartedMs: number | null;
  cniMetric: { metric: string; pod: string; countDelta: number; sumDeltaMs: number; meanMs: number | null; scrapedAfterMs: number } | null;
  cniMetricNote: string | null;
}

/** One change handed to the data plane's agent. */
export interface AppliedChange {
  /** CLOCK_MONOTONIC (process.hrtime.bigint()) just before the new desired state was handed over. */
  startNs: bigint;
  /** Selector resolution of the new state (the agent's calculation graph), ms. */
  resolveMs: number;
  report: AgentReport;
  /** New pod: its CNI ADD (veth, the agent's closed attach where it has one, address, routes), ms; the change starts with it. */
  attachMs?: number;
  /** kind/cluster, new pod: its address, known only once the pod exists (NewPod.ip was null). */
  ip?: string;
  k8s?: K8sChangeRecord;
}

/** A pod joining a running workload: prepared (sandbox, server) before the change; attach() is the change. */
export interface NewPod {
  /** Its address before the change; null where it is known only once the pod exists (kind/cluster). */
  ip: string | null;
  attach(): Promise<AppliedChange>;
  remove(): Promise<void>;
}

/** The changes a data plane's agent takes incrementally, timed on one clock with the watches across them. */
export interface PlaneChanges {
  /** How a change's start and the probes are put on one clock (recorded with the result). */
  readonly clockDescription: string;
  /** How the watches run, for plans ("one per change, started before it"). */
  readonly watchNote: string;
  /** A new policy state. */
  setPolicies(set: PolicySet): Promise<AppliedChange>;
  /** New labels for a pod of the workload. */
  setLabels(pod: EndpointId, labels: Record<string, string>): Promise<AppliedChange>;
  /** A pod that joins the running workload (its sandbox and server now; its CNI ADD on attach). */
  preparePod(pod: WorkloadPod): Promise<NewPod>;
  /** Probes `target:port` from a pod continuously (cb-probe watch) until it settles, ends or is stopped. */
  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch>;
  /** The watch's command line, for dry-run plans. */
  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string;
  /** `bench enforce --services`: Service changes on the CNI's service data plane; absent where the backend has none. */
  readonly serviceChanges?: ServiceChanges;
  /**
   * The agents take a new state asynchronously (kind/cluster): an unmeasured state change is waited for (a watch
   * until it shows) before the change that starts from it. Absent: in force when setPolicies() returns.
   */
  readonly appliesAsynchronously?: boolean;
}

/** What the service data plane holds after a first sync: its name, what it models, its state size. */
export interface ServiceInstall {
  dataPlane: string;
  description: string;
  /** How a new connection finds its Service: rule-walk, verdict-map, bpf-map. */
  lookup: string;
  /** Wall time of the first sync, ms; null in a dry run. */
  installMs: number | null;
  state: Record<string, number | string>;
}

/** Service changes as the service data plane's agent takes them: only what differs is written. */
export interface ServiceChanges {
  /** The first sync of `set` (not a measured change). */
  install(set: ServiceSet): Promise<ServiceInstall>;
  /** A new Service set handed to the agent (kube-proxy's partial sync, nft transaction, BPF map writes), with the Services the change touched. */
  setServices(set: ServiceSet, delta?: ServiceDelta): Promise<AppliedChange>;
  /** A watch from a pod to a ClusterIP, run where the service data plane sees it (a socket balancer: in its cgroup). */
  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch>;
  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string;
  /**
   * kind/cluster: the API server assigns ClusterIPs, so the set's own are not the ones to probe: the address Service
   * `name` got (null before it exists: the watch then starts on the AppliedChange's ip). Absent: the set's ClusterIPs hold.
   */
  frontOf?(svc: { name: string }): string | null;
}

export interface DataPlane {
  readonly name: BackendName;
  readonly cni: CniName;
  readonly model: ModelDescription;
  /** The load generator that measures (cb-probe, fortio). */
  readonly probeTool: string;
  readonly topology: { nodes: number; placement: 'cross-node' | 'same-node'; serverPods: number };
  /** Where the probe's client, server and softirq work run, and why (backends that place work set it). */
  readonly cpuPlacement?: CpuPlacement;
  /** How many interleaved rounds a run measures in when the config does not say (src/run/interleave.ts); default 1. */
  readonly measureRounds?: number;
  /** How long a policy change may take to reach the data plane: readiness probes poll up to this long. */
  readonly settleMs: number;
  /** The names this data plane deploys a workload under; workload builders generate for them. */
  readonly target: WorkloadTarget;
  /** Incremental changes; absent where the agent has none (a local model without update()). */
  readonly changes?: PlaneChanges;
  /** `workload` as this data plane runs it: hosts it cannot build left out, namespaces labelled as they will be. Pure. */
  fit(workload: Workload): Workload;
  /**
   * Brings the data plane up with `workload` on it (nodes, the CNI, the endpoint pods serving their ports, the
   * hosts) and says where everything landed. No policy yet: install() brings the first state.
   */
  up(workload: Workload): Promise<WorkloadAddresses>;
  /** Replaces the policy state with `set` (a full install, as handed; not an incremental change). */
  install(set: PolicySet): Promise<PolicyInstallReport>;
  /** One attempt along a flow: a TCP connect or a UDP echo, bounded by timeoutMs. Throws only when it gives no verdict. */
  probe(flow: Flow, timeoutMs: number): Promise<Attempt>;
  /** Latency and CPU of `metric` along a flow. */
  measure(flow: Flow, metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>>;
  /** Removes everything the data plane created. Safe to call twice and after a failed up(). */
  down(): Promise<void>;
  /** For --keep: how to look at what was left up. */
  keepInstructions(): string[];
  /**
   * For --keep: hand what stays up over to nobody, so this process can exit (a local run's server is restarted
   * detached and the run is recorded for `bench gc`). Backends whose resources outlive the process anyway omit it.
   */
  detach?(): Promise<void>;
}

/** What every backend is built with (see factory.ts); backends add their own options on top. */
export interface BackendRunOptions {
  config: RunConfig;
  runId: string;
  /** The kind of workload the data plane will carry (a backend may prepare for it: images, wording). */
  shape?: WorkloadShape;
  /** Executes (or, in dry-run, records) commands; cancelled by `signal`. Default: a real ExecRunner. */
  runner?: Runner;
  /** Not cancellable: for teardown after Ctrl-C. */
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
}
