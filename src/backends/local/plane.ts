// The local data plane: one topology of namespaces with one CNI model on it, the engine under the local backend
// (./backend.ts) whatever workload it carries. It brings the topology up (announced as a live run), adds
// and removes pods at run time, resolves a policy state to the model's endpoints, hands it to the model's
// install or incremental update, and tears everything down with a check that nothing of the run is left.
// The model is read only through what it declares; which model runs is the caller's choice (models.ts).
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { announceRun } from '../../identity/locks.js';
import { resolveEndpoints } from '../../policy/resolve.js';
import type { Inventory, NetworkPolicy } from '../../policy/types.js';
import { startServer, type RunningServer } from '../../probe/native.js';
import type { Progress } from '../types.js';
import { teardownLocal } from './teardown.js';
import {
  addPod,
  planPodAttachSteps,
  planPodSandbox,
  planTopologyUp,
  removePod,
  topologyNamespaces,
  type PodRequest,
  type PodSpec,
  type Topology,
} from './topology.js';
import { podAttachStep } from './pod-attach.js';
import { planTopologyUpBulk } from './topology-bulk.js';
import { modelSettings, type LocalModel, type ModelContext, type ModelSettings, type ModelState, type ModelUpdateReport } from './types.js';

export interface LocalDataPlaneOptions {
  model: LocalModel;
  topology: Topology;
  /** The settings the model reads (defaults for the rest). */
  settings?: Partial<ModelSettings>;
  runner: Runner;
  /** Not cancellable: teardown after Ctrl-C. */
  cleanupRunner: Runner;
  /** Steps of bring-up and teardown, when the caller reports them. */
  progress?: Progress;
  /** Replaces process starts (tests). */
  startServer?: typeof startServer;
}

/** An incremental change as the model's agent received it. */
export interface PlaneUpdate {
  /** Selector resolution of the new state (the agent's calculation graph), ms. */
  resolveMs: number;
  report: ModelUpdateReport;
}

/** From this many pods on, bring-up creates pods POD_WORKERS at a time (not in a dry run: plans stay in order). */
const PARALLEL_PODS_FROM = 32;
const POD_WORKERS = 4;
/** Bring-up reports its progress every this many pods. */
const PROGRESS_EVERY = 100;

/** The report of a change handed to a model without a policy engine: nothing to write, nothing enforced. */
const NO_POLICY_ENGINE: ModelUpdateReport = { agentMs: 0, compileMs: 0, applyMs: 0, changed: {}, state: { policiesEnforced: false } };

export class LocalDataPlane {
  readonly model: LocalModel;
  readonly topology: Topology;
  readonly settings: ModelSettings;
  readonly runner: Runner;
  readonly cleanupRunner: Runner;
  private readonly servers: RunningServer[] = [];
  /** Namespaces beyond the topology's (hosts added at bring-up, sandboxes of runtime pods), in creation order. */
  private readonly extraNamespaces: string[] = [];
  private lastCtx?: ModelContext;
  private upStarted = false;
  private downDone = false;

  constructor(private readonly opts: LocalDataPlaneOptions) {
    this.model = opts.model;
    this.topology = opts.topology;
    this.settings = modelSettings(opts.settings);
    this.runner = opts.runner;
    this.cleanupRunner = opts.cleanupRunner;
  }

  /** Whether up() was called (and so down() has something to remove). */
  get started(): boolean {
    return this.upStarted && !this.downDone;
  }

  /**
   * Builds the topology, then `extra` (commands that belong to the run: hosts beside the cluster, CPU pinning),
   * whose namespaces are torn down with it. The run is announced first so `bench gc` leaves it alone.
   */
  async up(extra: { commands?: readonly CommandSpec[]; namespaces?: readonly string[] } = {}): Promise<void> {
    this.upStarted = true;
    if (!this.runner.dryRun) announceRun(this.topology.runId);
    this.opts.progress?.step(`building ${this.topology.nodes.length} nodes and ${this.topology.pods.length} pods (${this.model.name})`);
    this.extraNamespaces.push(...(extra.namespaces ?? []));
    const all = [...planTopologyUp(this.topology), ...(extra.commands ?? [])];
    if (this.topology.pods.length < PARALLEL_PODS_FROM) {
      for (const cmd of all) await this.runner.run(cmd);
      return;
    }
    // Many pods: the batched plan (topology-bulk.ts). Each pod's own commands do not depend on another pod's, so
    // they run POD_WORKERS pods at a time (in a dry run in order); the rest in order.
    const t0 = performance.now();
    const bulk = planTopologyUpBulk(this.topology);
    for (const cmd of bulk.before) await this.runner.run(cmd);
    const pods = bulk.pods;
    let next = 0;
    let done = 0;
    let failed = false;
    const worker = async () => {
      while (next < pods.length && !failed) {
        try {
          for (const cmd of pods[next++]!) await this.runner.run(cmd);
        } catch (e) {
          failed = true;
          throw e;
        }
        if (++done % PROGRESS_EVERY === 0 && done < pods.length) this.opts.progress?.step(`  ${done} of ${pods.length} pods set up (${Math.round((performance.now() - t0) / 1000)} s)`);
      }
    };
    // Every pod in flight settles before an error goes up: teardown then finds what was created.
    const settled = await Promise.allSettled(Array.from({ length: this.runner.dryRun ? 1 : POD_WORKERS }, worker));
    const error = settled.find((r) => r.status === 'rejected');
    if (error) throw (error as PromiseRejectedResult).reason;
    for (const cmd of [...bulk.after, ...(extra.commands ?? [])]) await this.runner.run(cmd);
    this.opts.progress?.step(`  ${pods.length} pods set up in ${Math.round((performance.now() - t0) / 1000)} s`);
  }

  /** Starts a server process of the run (stopped at teardown). Not in a dry run. */
  async serve(spec: CommandSpec): Promise<RunningServer | undefined> {
    if (this.runner.dryRun) return undefined;
    const server = await (this.opts.startServer ?? startServer)(spec);
    this.servers.push(server);
    return server;
  }

  /** Stops a server started by serve() before teardown. */
  async stopServer(server: RunningServer): Promise<void> {
    const i = this.servers.indexOf(server);
    if (i >= 0) this.servers.splice(i, 1);
    await server.stop();
  }

  pod(namespace: string, name: string): PodSpec | undefined {
    return this.topology.pods.find((p) => p.namespace === namespace && p.name === name);
  }

  /** What the model is handed for a policy state: the policies resolved per pod of this topology's nodes. */
  context(policies: NetworkPolicy[], inventory: Inventory): ModelContext {
    const nodeNames = new Set(this.topology.nodes.map((n) => n.name));
    const endpoints = resolveEndpoints(inventory, policies).filter((e) => nodeNames.has(e.pod.node));
    return { runner: this.runner, cleanupRunner: this.cleanupRunner, topology: this.topology, inventory, endpoints, settings: this.settings, progress: this.opts.progress };
  }

  /** The model's full install of a policy state; a model without a policy engine accepts and ignores it. */
  async install(policies: NetworkPolicy[], inventory: Inventory): Promise<ModelState> {
    const ctx = this.context(policies, inventory);
    this.lastCtx = ctx;
    if (!this.model.install) return { policiesAccepted: policies.length, policiesEnforced: false };
    return this.model.install(ctx);
  }

  /** The model's incremental update to a new policy state (a model without a policy engine is told nothing). */
  async update(policies: NetworkPolicy[], inventory: Inventory): Promise<PlaneUpdate> {
    const t = performance.now();
    const ctx = this.context(policies, inventory);
    const resolveMs = performance.now() - t;
    this.lastCtx = ctx;
    if (!this.model.update) return { resolveMs, report: NO_POLICY_ENGINE };
    return { resolveMs, report: await this.model.update(ctx) };
  }

  /** The context of the last install or update (models' tests read it). */
  get modelContext(): ModelContext | undefined {
    return this.lastCtx;
  }

  /**
   * A pod's sandbox, as the container runtime makes it before the CNI is called. The pod is not in the topology
   * (so no model sees it) until attachPod.
   */
  async createPodSandbox(req: PodRequest): Promise<PodSpec> {
    const pod = addPod(this.topology, req, this.model.hostIfPrefix);
    this.topology.pods.splice(this.topology.pods.indexOf(pod), 1);
    this.extraNamespaces.push(pod.netns);
    for (const cmd of planPodSandbox(pod)) await this.runner.run(cmd);
    return pod;
  }

  /** The CNI ADD of a sandboxed pod: it joins the topology and gets its interface, address and routes. */
  async attachPod(pod: PodSpec): Promise<void> {
    this.topology.pods.push(pod);
    const { link, connect } = planPodAttachSteps(this.topology, pod);
    for (const cmd of link) await this.runner.run(cmd);
    // The agent's part of the CNI ADD (models that have one): programs attached closed before the pod is up and routed.
    await podAttachStep(this.model)?.attachPod({ runner: this.runner, topology: this.topology }, pod);
    for (const cmd of connect) await this.runner.run(cmd);
  }

  /**
   * Deletes a runtime pod: its namespace and veth, and its place in the topology. Cleanup, so not cancellable (a
   * stop signal during it must not skip the delete); the namespace stays on the teardown's list unless it is gone.
   */
  async removePod(pod: PodSpec): Promise<void> {
    let deleted = true;
    for (const cmd of removePod(this.topology, pod)) {
      const r = await this.cleanupRunner.run(cmd);
      if (cmd.argv[1] === 'netns' && cmd.argv[2] === 'delete') deleted = r.exitCode === 0;
    }
    const i = this.extraNamespaces.indexOf(pod.netns);
    if (i >= 0 && deleted) this.extraNamespaces.splice(i, 1);
  }

  /** Every namespace of the run, in creation order. */
  get namespaces(): string[] {
    return [...topologyNamespaces(this.topology), ...this.extraNamespaces];
  }

  async down(): Promise<void> {
    if (this.downDone || !this.upStarted) return;
    this.downDone = true;
    this.opts.progress?.step('tearing down');
    await teardownLocal({ runner: this.cleanupRunner, topology: this.topology, model: this.model, servers: this.servers, namespaces: this.namespaces });
  }
}
