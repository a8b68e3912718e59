// `bench enforce` on the local backend: the enforce topology (client, server, intruder, joiner) in namespaces,
// the model's full install once as setup, then every measured change through the model's incremental
// update() — never a reinstall — with watch probes running across it.
import type { CniName, RunConfig } from '../config/schema.js';
import { ExecRunner, fullArgv, shellQuote, type Runner } from '../exec/runner.js';
import { localModel } from '../backends/local/models.js';
import { buildInventory, LocalDataPlane, planModelTopology } from '../backends/local/plane.js';
import type { PodSpec, Topology } from '../backends/local/topology.js';
import type { LocalModel, ModelUpdateReport } from '../backends/local/types.js';
import { SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from '../workload/workload.js';
import type { PolicySet, Progress } from '../backends/types.js';
import type { Inventory } from '../policy/types.js';
import { planServer, planWatch, startServer, startWatch, type RunningWatch, type WatchSettings } from '../probe/native.js';
import { enforcePods } from './plan.js';
import { BenchError } from '../errors.js';

export class EnforceUnsupportedError extends BenchError {
  constructor(message: string) {
    super('usage', message);
  }
}

/** One change handed to the model's agent. */
export interface AppliedChange {
  /** CLOCK_MONOTONIC (process.hrtime.bigint()) just before the new desired state was handed over. */
  startNs: bigint;
  /** Selector resolution of the new state (the agent's calculation graph), ms. */
  resolveMs: number;
  report: ModelUpdateReport;
  /** For a new pod: the CNI ADD (veth, the agent's closed attach where it has one, address, routes), ms. The change starts with it (startNs); the agent is told after. */
  attachMs?: number;
  /** kind/cluster, new pod: its address, known only once the pod exists (prepareServerPod gave null). */
  ip?: string;
  /** kind/cluster: how the change went through the API server, and the CNI's own figure (src/enforce/k8s.ts). */
  k8s?: K8sChangeRecord;
}

/** What a kind/cluster plane records of one change besides the probes (the result's observation.k8s). */
export interface K8sChangeRecord {
  command: string;
  apiMs: number;
  /** new-pod: the first probe started this long after the change (the pod had no address before). */
  watchStartedMs: number | null;
  cniMetric: { metric: string; pod: string; countDelta: number; sumDeltaMs: number; meanMs: number | null; scrapedAfterMs: number } | null;
  cniMetricNote: string | null;
}

export interface EnforceDataPlane {
  readonly cni: CniName;
  readonly model: { name: string; description: string; enforcesPolicy: boolean };
  /** How the change's start and the probes are put on one clock (the result's meta.probe.clock); default: one local CLOCK_MONOTONIC. */
  readonly clockDescription?: string;
  up(): Promise<void>;
  /** The initial state, by the model's full install (setup, not measured). */
  install(set: PolicySet): Promise<Record<string, number | string | boolean>>;
  /** A new policy state, incrementally. */
  setPolicies(set: PolicySet): Promise<AppliedChange>;
  /** A pod's labels change (inventory), incrementally. */
  setLabels(pod: string, labels: Record<string, string>): Promise<AppliedChange>;
  /**
   * Creates a server pod's sandbox and echo server; `attach` does its CNI ADD and tells the agent. kind/cluster:
   * ip is null — the pod is created by attach() (the change) and its address is known only then (AppliedChange.ip).
   */
  prepareServerPod(name: string): Promise<{ ip: string | null; attach(): Promise<AppliedChange>; remove(): Promise<void> }>;
  ipOf(pod: string): string;
  watch(from: string, target: string, s: WatchSettings): Promise<RunningWatch>;
  down(): Promise<void>;
}

export interface LocalEnforceOptions {
  cni: CniName;
  runId: string;
  config?: Partial<RunConfig>;
  runner?: Runner;
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  /** Replaces the registered model (tests). */
  model?: LocalModel;
  /** Replace process starts (tests). */
  startWatch?: typeof startWatch;
  startServer?: typeof startServer;
  pinCpu?: number;
}

export class LocalEnforcePlane implements EnforceDataPlane {
  readonly cni: CniName;
  readonly model: { name: string; description: string; enforcesPolicy: boolean };
  readonly topology: Topology;
  private readonly plane: LocalDataPlane;
  private policies: PolicySet = { policies: [], peers: [] };
  private labels = new Map<string, Record<string, string>>();

  constructor(private readonly opts: LocalEnforceOptions) {
    this.cni = opts.cni;
    const model = opts.model ?? localModel(opts.cni);
    if (model.enforcesPolicy && !model.update) {
      throw new EnforceUnsupportedError(
        `the ${model.name} has no incremental update() yet, and enforcement latency must come from an incremental change, never a full reinstall; ` +
          `use a data plane whose local model implements update(), or merge the branch that adds it`,
      );
    }
    this.model = { name: model.name, description: model.description, enforcesPolicy: model.enforcesPolicy };
    this.topology = planModelTopology(model, { runId: opts.runId, placement: 'cross-node', pods: enforcePods() });
    this.plane = new LocalDataPlane({
      model,
      topology: this.topology,
      settings: opts.config,
      runner: opts.runner ?? new ExecRunner(opts.signal),
      cleanupRunner: opts.cleanupRunner ?? new ExecRunner(),
      progress: opts.progress,
      startServer: opts.startServer,
    });
  }

  private pod(name: string): PodSpec {
    const p = this.topology.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod ${name} in the enforce topology`);
    return p;
  }

  ipOf(pod: string): string {
    return this.pod(pod).ip;
  }

  private get cpus(): number[] | undefined {
    return this.opts.pinCpu === undefined ? undefined : [this.opts.pinCpu];
  }

  async up(): Promise<void> {
    await this.plane.up();
    await this.plane.serve({ ...planServer({ netns: this.pod('server-0').netns, ports: [SERVER_PORT] }), purpose: 'echo server of server-0' });
  }

  /** The inventory of the current state: labels changed at run time override the planned ones. */
  private inventory(): Inventory {
    for (const p of this.topology.pods) {
      const l = this.labels.get(p.name);
      if (l) p.labels = { ...l };
    }
    return buildInventory(this.topology, this.policies);
  }

  async install(set: PolicySet): Promise<Record<string, number | string | boolean>> {
    this.policies = set;
    if (this.plane.model.install) this.opts.progress?.step(`installing ${set.policies.length} policies (initial state, full install)`);
    return this.plane.install(set.policies, this.inventory());
  }

  private async update(): Promise<AppliedChange> {
    const startNs = process.hrtime.bigint();
    const t = performance.now();
    const inventory = this.inventory();
    const inventoryMs = performance.now() - t;
    const { resolveMs, report } = await this.plane.update(this.policies.policies, inventory);
    return { startNs, resolveMs: inventoryMs + resolveMs, report };
  }

  async setPolicies(set: PolicySet): Promise<AppliedChange> {
    this.policies = set;
    return this.update();
  }

  async setLabels(pod: string, labels: Record<string, string>): Promise<AppliedChange> {
    this.pod(pod);
    this.labels.set(pod, { ...labels });
    return this.update();
  }

  async prepareServerPod(name: string): Promise<{ ip: string; attach(): Promise<AppliedChange>; remove(): Promise<void> }> {
    // Not in the topology until its CNI ADD: the agent must not see it before the pod has an interface.
    const pod = await this.plane.createPodSandbox({ name, namespace: SERVER_NAMESPACE, labels: { ...SERVER_LABELS }, role: 'server', node: 1 });
    const server = await this.plane.serve({ ...planServer({ netns: pod.netns, ports: [SERVER_PORT] }), purpose: `echo server of ${name}` });
    return {
      ip: pod.ip,
      attach: async () => {
        // The pod appears when its CNI ADD starts: that is the change's start; the agent is told after it.
        const startNs = process.hrtime.bigint();
        const t = performance.now();
        await this.plane.attachPod(pod);
        const attachMs = performance.now() - t;
        return { ...(await this.update()), startNs, attachMs };
      },
      remove: async () => {
        if (server) await this.plane.stopServer(server).catch(() => undefined);
        await this.plane.removePod(pod);
        // The agent forgets the endpoint (not measured).
        await this.plane.update(this.policies.policies, this.inventory());
      },
    };
  }

  watchSpec(from: string, target: string, s: WatchSettings): string {
    return shellQuote(fullArgv(planWatch({ netns: this.pod(from).netns, target, port: SERVER_PORT, realtime: true, ...s, cpus: this.cpus })));
  }

  async watch(from: string, target: string, s: WatchSettings): Promise<RunningWatch> {
    const start = this.opts.startWatch ?? startWatch;
    return start(planWatch({ netns: this.pod(from).netns, target, port: SERVER_PORT, realtime: true, ...s, cpus: this.cpus }));
  }

  async down(): Promise<void> {
    await this.plane.down();
  }
}
