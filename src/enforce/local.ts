// `bench enforce` on the local backend: the enforce topology (client, server, intruder, joiner) in namespaces,
// the model's full install once as setup, then every measured change through the model's incremental
// update() — never a reinstall — with watch probes running across it.
import { runConfigSchema, type CniName, type RunConfig } from '../config/schema.js';
import { ExecRunner, fullArgv, shellQuote, type Runner } from '../exec/runner.js';
import { announceRun } from '../identity/locks.js';
import { teardownLocal } from '../backends/local/teardown.js';
import { buildInventory } from '../backends/local/backend.js';
import { localModel, type LocalModel, type ModelContext, type ModelUpdateReport } from '../backends/local/models.js';
import { podAttachStep } from '../backends/local/pod-attach.js';
import { addPod, planPodAttachSteps, planPodSandbox, planTopology, planTopologyUp, removePod, topologyNamespaces, type PodSpec, type Topology } from '../backends/local/topology.js';
import { SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from '../workload/workload.js';
import type { PolicySet, Progress } from '../backends/types.js';
import { resolveEndpoints } from '../policy/resolve.js';
import { planServer, planWatch, startServer, startWatch, type RunningServer, type RunningWatch, type WatchSettings } from '../probe/native.js';
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
  private readonly impl: LocalModel;
  private readonly runner: Runner;
  private readonly cleanupRunner: Runner;
  private readonly config: RunConfig;
  private readonly servers: RunningServer[] = [];
  private readonly extraNamespaces: string[] = [];
  private policies: PolicySet = { policies: [], peers: [] };
  private labels = new Map<string, Record<string, string>>();
  private upStarted = false;
  private downDone = false;

  constructor(private readonly opts: LocalEnforceOptions) {
    this.cni = opts.cni;
    this.impl = opts.model ?? localModel(opts.cni);
    if (this.impl.enforcesPolicy && !this.impl.update) {
      throw new EnforceUnsupportedError(
        `the ${this.impl.name} has no incremental update() yet, and enforcement latency must come from an incremental change, never a full reinstall; ` +
          `use a data plane whose local model implements update(), or merge the branch that adds it`,
      );
    }
    this.model = { name: this.impl.name, description: this.impl.description, enforcesPolicy: this.impl.enforcesPolicy };
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.cleanupRunner = opts.cleanupRunner ?? new ExecRunner();
    this.config = runConfigSchema.parse({ cni: opts.cni, backend: 'local', policies: 0, ...opts.config });
    this.topology = planTopology({
      runId: opts.runId,
      attachment: this.impl.attachment,
      hostIfPrefix: this.impl.hostIfPrefix,
      placement: 'cross-node',
      pods: enforcePods(),
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
    this.upStarted = true;
    if (!this.runner.dryRun) announceRun(this.opts.runId);
    this.opts.progress?.step(`building ${this.topology.nodes.length} nodes and ${this.topology.pods.length} pods (${this.impl.name})`);
    for (const cmd of planTopologyUp(this.topology)) await this.runner.run(cmd);
    if (this.runner.dryRun) return;
    const start = this.opts.startServer ?? startServer;
    this.servers.push(await start({ ...planServer({ netns: this.pod('server-0').netns, ports: [SERVER_PORT] }), purpose: 'echo server of server-0' }));
  }

  private context(): ModelContext {
    const topology = this.topology;
    // Labels changed at run time override the planned ones (the pod objects of the topology keep theirs).
    for (const p of topology.pods) {
      const l = this.labels.get(p.name);
      if (l) p.labels = { ...l };
    }
    const inventory = buildInventory(topology, this.policies);
    const nodeNames = new Set(topology.nodes.map((n) => n.name));
    const endpoints = resolveEndpoints(inventory, this.policies.policies).filter((e) => nodeNames.has(e.pod.node));
    return { runner: this.runner, cleanupRunner: this.cleanupRunner, topology, inventory, endpoints, config: { ...this.config, policies: this.policies.policies.length } };
  }

  async install(set: PolicySet): Promise<Record<string, number | string | boolean>> {
    this.policies = set;
    if (!this.impl.install) return { policiesAccepted: set.policies.length, policiesEnforced: false };
    this.opts.progress?.step(`installing ${set.policies.length} policies (initial state, full install)`);
    return this.impl.install(this.context());
  }

  private async update(): Promise<AppliedChange> {
    const startNs = process.hrtime.bigint();
    const t = performance.now();
    const ctx = this.context();
    const resolveMs = performance.now() - t;
    if (!this.impl.update) {
      // No policy engine: nothing to hand over; the change is "applied" and nothing will enforce it.
      return { startNs, resolveMs, report: { agentMs: 0, compileMs: 0, applyMs: 0, changed: {}, state: { policiesEnforced: false } } };
    }
    const report = await this.impl.update(ctx);
    return { startNs, resolveMs, report };
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
    const pod = addPod(this.topology, { name, namespace: SERVER_NAMESPACE, labels: { ...SERVER_LABELS }, role: 'server', node: 1 }, this.impl.hostIfPrefix);
    // Not in the topology until its CNI ADD: the agent must not see it before the pod has an interface.
    this.topology.pods.splice(this.topology.pods.indexOf(pod), 1);
    this.extraNamespaces.push(pod.netns);
    for (const cmd of planPodSandbox(pod)) await this.runner.run(cmd);
    let server: RunningServer | undefined;
    if (!this.runner.dryRun) {
      const start = this.opts.startServer ?? startServer;
      server = await start({ ...planServer({ netns: pod.netns, ports: [SERVER_PORT] }), purpose: `echo server of ${name}` });
      this.servers.push(server);
    }
    return {
      ip: pod.ip,
      attach: async () => {
        // The pod appears when its CNI ADD starts: that is the change's start; the agent is told after it.
        const startNs = process.hrtime.bigint();
        this.topology.pods.push(pod);
        const t = performance.now();
        const { link, connect } = planPodAttachSteps(this.topology, pod);
        for (const cmd of link) await this.runner.run(cmd);
        // The agent's part of the CNI ADD: programs attached closed before the pod is up and routed.
        await podAttachStep(this.impl)?.attachPod({ runner: this.runner, topology: this.topology }, pod);
        for (const cmd of connect) await this.runner.run(cmd);
        const attachMs = performance.now() - t;
        return { ...(await this.update()), startNs, attachMs };
      },
      remove: async () => {
        await server?.stop().catch(() => undefined);
        for (const cmd of removePod(this.topology, pod)) await this.runner.run(cmd);
        this.extraNamespaces.splice(this.extraNamespaces.indexOf(pod.netns), 1);
        // The agent forgets the endpoint (not measured).
        if (this.impl.update) await this.impl.update(this.context());
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
    if (this.downDone || !this.upStarted) return;
    this.downDone = true;
    this.opts.progress?.step('tearing down');
    await teardownLocal({
      runner: this.cleanupRunner,
      topology: this.topology,
      model: this.impl,
      servers: this.servers,
      namespaces: [...topologyNamespaces(this.topology), ...this.extraNamespaces],
    });
  }
}
