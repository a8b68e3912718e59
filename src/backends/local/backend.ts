// The local backend: namespaces as nodes and pods on this machine's kernel, a CNI data-plane model on top. Its one
// bring-up takes any workload (the benchmark, the verification grid, the enforce topology): endpoint pods become
// namespaces, each serving its declared ports with cb-probe, hosts sit on the node network; policy states go to the
// model whole (install) or incrementally (changes); flows are probed with cb-probe check, watch and client.
import type { RunConfig } from '../../config/schema.js';
import { BenchError } from '../../errors.js';
import { ExecRunner, fullArgv, shellQuote, type Runner } from '../../exec/runner.js';
import { recordKeptRun, RUN_LOCK_DIR } from '../../identity/locks.js';
import type { PolicySet } from '../../policy/generate.js';
import type { ContainerPort, Inventory } from '../../policy/types.js';
import { parseCheckResult, planCheck, planServer, planWatch, startDetachedServer, startServer, startWatch, type RunningServer, type RunningWatch, type WatchSettings } from '../../probe/native.js';
import { choosePlacement, planRpsPinning, sharesOneCpu } from '../../probe/placement.js';
import type { CpuPlacement, MetricName, MetricResult } from '../../results/schema.js';
import { DEFAULT_TARGET, podId, type EndpointId, type Flow, type Workload, type WorkloadAddresses, type WorkloadPod, type WorkloadShape } from '../../workload/workload.js';
import type { AppliedChange, Attempt, BackendRunOptions, DataPlane, MeasureSettings, ModelDescription, NewPod, PlaneChanges, PolicyInstallReport, ServiceChanges } from '../types.js';
import { cpus as machineCpus } from 'node:os';
import { findAccounting, measureFlow, probeVerdict, type Accounting, type FlowEnds } from './measure.js';
import { collectGarbage, gcSummary } from './gc.js';
import { localModel } from './models.js';
import { LocalDataPlane } from './plane.js';
import { topologyNamespaces, type PodSpec, type Topology } from './topology.js';
import type { LocalModel, ModelContext } from './types.js';
import { layoutWorkload, planExternalHosts, podRequest, workloadInventory, type WorkloadLayout } from './workload.js';
import { OVERFLOW_KEYS, overflowEndpoints } from '../../results/capacity-overflow.js';
import { RunServices } from './services.js';

/** Endpoint servers started at once during bring-up. */
const SERVER_STARTERS = 4;

export interface LocalBackendOptions extends BackendRunOptions {
  /** Replaces the registered model (tests inject a deliberately broken compiler this way). */
  model?: LocalModel;
  /** Replace process starts (tests). */
  startServer?: typeof startServer;
  startWatch?: typeof startWatch;
}

const flowKey = (f: Flow) => `${f.from} -> ${f.to} ${f.protocol}/${f.port}`;

/**
 * Whether `--pin-cpu auto` pins, by workload: the benchmark's measured flow is pinned (client, server and softirq
 * on one CPU, see src/probe/placement.ts); the verification grid and the enforce watches are left to the scheduler,
 * as their figures were always measured.
 */
const AUTO_PINS: Record<WorkloadShape, boolean> = { benchmark: true, 'verify-grid': false, enforce: false, cluster: false };

export class LocalBackend implements DataPlane, PlaneChanges {
  readonly name = 'local' as const;
  readonly probeTool = 'cb-probe';
  readonly measureRounds = 10;
  /** The local install is synchronous: readiness probes should agree on their first round. */
  readonly settleMs = 2_000;
  readonly target = DEFAULT_TARGET;
  readonly clockDescription = 'CLOCK_MONOTONIC (probe starts and the change start on one clock)';
  readonly watchNote = 'one per change, started before it';
  readonly cni: RunConfig['cni'];
  readonly model: ModelDescription;
  readonly cpuPlacement: CpuPlacement;
  readonly impl: LocalModel;
  /** The settings it was built with. */
  readonly config: RunConfig;
  private readonly runner: Runner;
  private readonly cleanupRunner: Runner;
  private layout?: WorkloadLayout;
  private workload?: Workload;
  private plane?: LocalDataPlane;
  /** `--services`: the run's Service set on the CNI's service data plane; the measured flow goes to its ClusterIP. */
  private services?: RunServices;
  private readonly servers = new Map<EndpointId, RunningServer>();
  /** The declared ports of every pod, by id (runtime pods included). */
  private readonly declared = new Map<EndpointId, ContainerPort[]>();
  private policies: PolicySet = { policies: [], peers: [] };
  /** Measured flows a capacity overflow left denied (Cilium's lockdown, Calico-eBPF's dropped tail call). */
  private readonly deniedFlows = new Set<string>();

  constructor(private readonly opts: LocalBackendOptions) {
    this.cni = opts.config.cni;
    this.config = opts.config;
    this.impl = opts.model ?? localModel(opts.config.cni);
    this.model = { name: this.impl.name, description: this.impl.description, enforcesPolicy: this.impl.enforcesPolicy };
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.cleanupRunner = opts.cleanupRunner ?? new ExecRunner();
    const pin = opts.config.pinCpu === 'auto' && !AUTO_PINS[opts.shape ?? 'benchmark'] ? 'off' : opts.config.pinCpu;
    this.cpuPlacement = choosePlacement(pin, machineCpus().length);
  }

  /** The topology of the workload brought up (models' tests read it). */
  get plan(): Topology {
    if (!this.layout) throw new BenchError('internal', 'the local data plane is not up: call up(workload) first');
    return this.layout.topology;
  }

  get topology(): DataPlane['topology'] {
    const t = this.layout?.topology;
    return { nodes: t?.nodes.length ?? 0, placement: this.opts.config.placement, serverPods: t?.pods.filter((p) => p.role === 'server').length ?? 0 };
  }

  /** Incremental changes: every model that enforces policy through update(), and the models without a policy engine. */
  get changes(): PlaneChanges | undefined {
    return this.impl.enforcesPolicy && !this.impl.update ? undefined : this;
  }

  private get cpus(): number[] | undefined {
    return this.cpuPlacement.cpus ?? undefined;
  }

  /** Every veth end of the run, in the namespace it lives in (node and host uplinks, switch ports, pod and host sides). */
  private veths(l: WorkloadLayout): Array<{ netns: string; dev: string }> {
    return [
      ...[...l.topology.nodes, ...l.hosts].flatMap((n) => [
        { netns: n.netns, dev: 'eth0' },
        { netns: l.topology.switchNs, dev: n.switchPort },
      ]),
      ...l.topology.pods.flatMap((p) => [
        { netns: p.netns, dev: 'eth0' },
        { netns: p.node.netns, dev: p.hostIf },
      ]),
    ];
  }

  fit(workload: Workload): Workload {
    return workload;
  }

  async up(workload: Workload): Promise<WorkloadAddresses> {
    const layout = layoutWorkload(workload, { runId: this.opts.runId, model: this.impl, placement: this.opts.config.placement });
    this.layout = layout;
    this.workload = workload;
    for (const p of workload.pods) this.declared.set(podId(p), p.ports);
    const plane = new LocalDataPlane({ model: this.impl, topology: layout.topology, settings: this.opts.config, runner: this.runner, cleanupRunner: this.cleanupRunner, progress: this.opts.progress, startServer: this.opts.startServer });
    this.plane = plane;
    const cpu = this.cpus?.[0];
    const pinning = cpu === undefined ? [] : planRpsPinning(this.veths(layout), cpu);
    await plane.up({ commands: [...planExternalHosts(layout.topology, layout.hosts), ...pinning], namespaces: layout.hosts.map((h) => h.netns) });
    // Servers start a few at a time (a replayed cluster has hundreds of endpoints; each start waits for its server).
    const byId = new Map(workload.pods.map((w) => [podId(w), w]));
    const serving = layout.topology.pods.filter((p) => byId.get(podId(p))!.role !== 'client');
    const t0 = performance.now();
    if (serving.length >= 32) this.opts.progress?.step(`starting the echo servers of ${serving.length} pods, ${SERVER_STARTERS} at a time`);
    let next = 0;
    let failed = false;
    const starter = async () => {
      while (next < serving.length && !failed) {
        const p = serving[next++]!;
        try {
          await this.serve(podId(p), p.netns, byId.get(podId(p))!.ports);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    // Every start settles before an error goes up, so teardown finds every server that was started.
    const settled = await Promise.allSettled(Array.from({ length: SERVER_STARTERS }, starter));
    const error = settled.find((r) => r.status === 'rejected');
    if (error) throw (error as PromiseRejectedResult).reason;
    if (serving.length >= 32) this.opts.progress?.step(`  ${serving.length} echo servers listening after ${Math.round((performance.now() - t0) / 1000)} s`);
    for (const [i, h] of workload.hosts.entries()) await this.serve(h.id, layout.hosts[i]!.netns, h.ports);
    // hostNetwork pods share their node's namespace: one server per node for all their ports.
    for (const netns of new Set(layout.nodePods.map((n) => n.netns))) {
      const on = layout.nodePods.filter((n) => n.netns === netns);
      const server = await this.serve(`hostNetwork pods of ${on[0]!.node}`, netns, on.flatMap((n) => byId.get(n.id)!.ports));
      if (server) for (const n of on) this.servers.set(n.id, server);
    }
    return layout.addresses;
  }

  /** cb-probe's echo server on every port the endpoint declares (TCP, and UDP where it declares UDP). */
  private async serve(id: EndpointId, netns: string, ports: readonly ContainerPort[]): Promise<RunningServer | undefined> {
    if (ports.length === 0) return undefined;
    const numbers = [...new Set(ports.map((p) => p.containerPort))].sort((a, b) => a - b);
    const spec = planServer({ netns, ports: numbers, udp: ports.some((p) => p.protocol === 'UDP'), cpus: this.cpus, batch: sharesOneCpu(this.cpuPlacement) });
    const server = await this.requirePlane().serve({ ...spec, purpose: `echo server of ${id}` });
    if (server) this.servers.set(id, server);
    return server;
  }

  private requirePlane(): LocalDataPlane {
    if (!this.plane || !this.workload) throw new BenchError('internal', 'the local data plane is not up: call up(workload) first');
    return this.plane;
  }

  /** What the model resolves policies against now: the workload's pods as they stand, and the current set's peers. */
  private inventory(): Inventory {
    return this.inventoryFor(this.policies);
  }

  /** What the model would resolve `set` against: the workload's pods as they stand, and the set's peers. */
  inventoryFor(set: PolicySet): Inventory {
    this.requirePlane();
    return workloadInventory(this.workload!, this.plan, set, (p) => this.declared.get(podId(p)) ?? []);
  }

  /** The namespace an endpoint runs in: an external host's, a hostNetwork pod's node's, or the pod's own. */
  private netnsOf(id: EndpointId): string {
    return this.layout?.hosts.find((h) => h.id === id)?.netns ?? this.layout?.nodePods.find((n) => n.id === id)?.netns ?? this.pod(id).netns;
  }

  private pod(id: EndpointId): PodSpec {
    const p = this.plan.pods.find((x) => podId(x) === id);
    if (!p) throw new BenchError('internal', `no pod ${id} in the local topology`);
    return p;
  }

  private ends(flow: Flow): FlowEnds {
    const src = this.netnsOf(flow.from);
    const target = this.layout?.addresses.ips[flow.to];
    if (!target) throw new BenchError('internal', `flow ${flowKey(flow)}: ${flow.to} is not an endpoint of the workload`);
    const services = this.services;
    if (services && flow.measured) {
      const client = this.pod(flow.from);
      return { netns: src, target: services.front.clusterIP, port: services.front.port, cpus: this.cpus, wrap: (spec) => services.wrap(spec, client) };
    }
    // verify --services: a pod's probe to a pod goes to the destination's Service (hosts outside have no ClusterIP route).
    const front = services && this.layout?.hosts.every((h) => h.id !== flow.from) ? services.frontOf(flow.to, flow.protocol, flow.port) : undefined;
    if (services && front) {
      const client = this.pod(flow.from);
      return { netns: src, target: front.clusterIP, port: front.port, cpus: this.cpus, wrap: (spec) => services.wrap(spec, client) };
    }
    return { netns: src, target, port: flow.port, cpus: this.cpus };
  }

  /** `--services`: the Service set on the CNI's service data plane, the measured flow's server behind its ClusterIP. */
  private async installServices(): Promise<PolicyInstallReport['services']> {
    const measured = this.workload!.flows.find((f) => f.measured);
    // Once per run: a verify grid installs a policy state per case, its Services stay.
    if (this.config.services === undefined || this.services || (!measured && this.workload!.shape !== 'verify-grid')) return undefined;
    const services = new RunServices({ config: this.config, model: this.impl, topology: this.plan, runner: this.runner, cleanupRunner: this.cleanupRunner });
    this.services = services;
    if (!measured) {
      const pods = this.plan.pods.map((p) => ({ id: podId(p), namespace: p.namespace, name: p.name, labels: p.labels, ip: p.ip, ports: this.declared.get(podId(p)) ?? [] }));
      this.opts.progress?.step(`installing a Service in front of every serving pod, and ${this.config.services} more (${services.plane.name})`);
      return services.installPods(pods);
    }
    this.opts.progress?.step(`installing ${this.config.services + 1} Services (${services.plane.name})`);
    return services.install(this.pod(measured.to), measured.port);
  }

  async install(set: PolicySet): Promise<PolicyInstallReport> {
    const plane = this.requirePlane();
    const started = performance.now();
    this.policies = set;
    if (plane.model.install) this.opts.progress?.step(`compiling and installing ${set.policies.length} policies`);
    const modelState = await plane.install(set.policies, this.inventory());
    const installMs = performance.now() - started;
    this.deniedFlows.clear();
    // A data plane over its capacity does not fail the run (Cilium 1.18 and Felix keep the pod running with part
    // of its policy): probe what it now does with the measured flow, and record it next to the overflow.
    const measured = this.workload!.flows.find((f) => f.measured);
    if (overflowEndpoints(modelState) > 0 && measured && !this.runner.dryRun) {
      const verdict = await probeVerdict(this.runner, this.ends(measured), 'probe whether the client still connects after the capacity overflow');
      if (verdict === 'denied') this.deniedFlows.add(flowKey(measured));
      modelState[OVERFLOW_KEYS.clientVerdict] = verdict;
    }
    const services = await this.installServices();
    return { modelState, installMs, ...(services ? { services } : {}) };
  }

  async probe(flow: Flow, timeoutMs: number): Promise<Attempt> {
    const e = this.ends(flow);
    const check = planCheck({ netns: e.netns, target: e.target, port: e.port, udp: flow.protocol === 'UDP', timeoutMs });
    const c = parseCheckResult(await this.runner.run(e.wrap ? e.wrap(check) : check));
    return { outcome: c.open ? 'connected' : 'blocked', reason: c.reason };
  }

  /** What the probe client accounts beside its samples (issue 20): found once, after the policies are installed. */
  private accounting?: Accounting;

  async measure(flow: Flow, metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    const cpus = this.cpus ?? machineCpus().map((_, i) => i);
    this.accounting ??= await findAccounting(this.runner, { runId: this.opts.runId, cpus, bpf: Boolean(this.requirePlane().model.bpfPrograms) });
    return measureFlow(this.runner, this.ends(flow), metric, settings, {
      serverPid: this.servers.get(flow.to)?.pid,
      denied: this.deniedFlows.has(flowKey(flow)),
      accounting: this.accounting,
      cpuCount: cpus.length,
      batchServer: sharesOneCpu(this.cpuPlacement),
    });
  }

  // ---- incremental changes (bench enforce): only what differs is written, never a full reinstall ----

  private async update(): Promise<AppliedChange> {
    const startNs = process.hrtime.bigint();
    const t = performance.now();
    const inventory = this.inventory();
    const inventoryMs = performance.now() - t;
    const { resolveMs, report } = await this.requirePlane().update(this.policies.policies, inventory);
    return { startNs, resolveMs: inventoryMs + resolveMs, report };
  }

  async setPolicies(set: PolicySet): Promise<AppliedChange> {
    this.policies = set;
    this.deniedFlows.clear(); // the install-time verdict no longer holds
    return this.update();
  }

  async setLabels(id: EndpointId, labels: Record<string, string>): Promise<AppliedChange> {
    this.pod(id).labels = { ...labels };
    return this.update();
  }

  async preparePod(pod: WorkloadPod): Promise<NewPod> {
    const plane = this.requirePlane();
    // Not in the topology until its CNI ADD: the agent must not see it before the pod has an interface.
    const spec = await plane.createPodSandbox(podRequest(pod));
    this.declared.set(podId(pod), pod.ports);
    const server = pod.role === 'client' ? undefined : await this.serve(podId(pod), spec.netns, pod.ports);
    return {
      ip: spec.ip,
      attach: async () => {
        // The pod appears when its CNI ADD starts: that is the change's start; the agent is told after it.
        const startNs = process.hrtime.bigint();
        const t = performance.now();
        await plane.attachPod(spec);
        const attachMs = performance.now() - t;
        return { ...(await this.update()), startNs, attachMs };
      },
      remove: async () => {
        if (server) {
          this.servers.delete(podId(pod));
          await plane.stopServer(server).catch(() => undefined);
        }
        await plane.removePod(spec);
        // The agent forgets the endpoint (not measured); after a stop signal the teardown removes everything anyway.
        if (!this.opts.signal?.aborted) await plane.update(this.policies.policies, this.inventory());
      },
    };
  }

  private planWatch(from: EndpointId, target: string, port: number, s: WatchSettings) {
    return planWatch({ netns: this.pod(from).netns, target, port, realtime: true, ...s, cpus: this.cpus });
  }

  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string {
    return shellQuote(fullArgv(this.planWatch(from, target, port, s)));
  }

  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch> {
    return (this.opts.startWatch ?? startWatch)(this.planWatch(from, target, port, s));
  }

  /**
   * `bench enforce --services`: the enforce Service states on the CNI's service data plane (the one `--services`
   * runs use), changed as its agent changes them; watches run where that data plane sees the client.
   */
  get serviceChanges(): ServiceChanges {
    const services = () => {
      if (!this.services) throw new BenchError('internal', 'Service changes before the Service set was installed');
      return this.services;
    };
    const wrapped = (from: EndpointId, target: string, port: number, s: WatchSettings) => services().wrap(this.planWatch(from, target, port, s), this.pod(from));
    return {
      install: async (set) => {
        this.services ??= new RunServices({ config: this.config, model: this.impl, topology: this.plan, runner: this.runner, cleanupRunner: this.cleanupRunner });
        const p = this.services.plane;
        this.opts.progress?.step(`installing ${set.services.length} Services (${p.name})`);
        return { dataPlane: p.name, description: p.description, lookup: p.lookup, ...(await this.services.installSet(set)) };
      },
      setServices: async (set, delta) => {
        const { startNs, wallMs, report } = await services().change(set, delta);
        // No selector to resolve: the EndpointSlices are handed to the agent as they stand. The agent's time is
        // all of it (rendering the diff, every node's apply); apply is the slowest node's.
        return { startNs, resolveMs: 0, report: { agentMs: wallMs, compileMs: Math.max(0, wallMs - report.agentMs), applyMs: report.agentMs, changed: report.changed, state: report.state } };
      },
      watch: (from, target, port, s) => (this.opts.startWatch ?? startWatch)(wrapped(from, target, port, s)),
      watchCommand: (from, target, port, s) => shellQuote(fullArgv(wrapped(from, target, port, s))),
    };
  }

  async down(): Promise<void> {
    try {
      await this.services?.teardown();
    } finally {
      await this.plane?.down();
    }
  }

  /**
   * --keep: the measured server is a child of this process (it would die with it, and holds its pipes open so the
   * process never exits); it is replaced by a detached one, and the run is recorded as kept rather than live, so
   * `bench gc --run <id>` removes it and nothing else mistakes it for a running benchmark.
   */
  async detach(): Promise<void> {
    const measured = this.workload?.flows.find((f) => f.measured);
    if (!this.plane?.started || this.runner.dryRun || !measured) return;
    const server = this.servers.get(measured.to);
    if (server) await this.plane.stopServer(server);
    this.servers.delete(measured.to);
    // The measured placement, kept: the same CPU and, when it shares the client's, SCHED_BATCH (issue 20 item 5).
    const spec = { ...planServer({ netns: this.pod(measured.to).netns, ports: [measured.port], cpus: this.cpus, batch: sharesOneCpu(this.cpuPlacement) }), purpose: 'start the probe server (detached, --keep)' };
    const serverPid = await startDetachedServer(spec, `${RUN_LOCK_DIR}/${this.opts.runId}.server.log`);
    recordKeptRun({ runId: this.opts.runId, keptAt: new Date().toISOString(), namespaces: topologyNamespaces(this.plan), serverPid });
  }

  keepInstructions(): string[] {
    const serving = (p: PodSpec) => this.declared.get(podId(p))?.[0]?.containerPort;
    return [
      `left up (run id ${this.opts.runId}); namespaces: ${topologyNamespaces(this.plan).join(' ')}`,
      ...this.plan.pods.map((p) => `  ${`${p.role === 'grid' ? p.name : p.role} pod:`.padEnd(12)} ip netns exec ${p.netns} bash     (${p.ip}${serving(p) ? `:${serving(p)}` : ''})`),
      ...this.plan.nodes.map((n) => `  ${n.name}:      ip netns exec ${n.netns} bash     (${n.ip}; e.g. iptables-save, tc filter show dev <if> ingress)`),
      `remove with: bench gc --run ${this.opts.runId}`,
    ];
  }

  /** The context of the last install or update, for models' tests. */
  get modelContext(): ModelContext | undefined {
    return this.plane?.modelContext;
  }
}

/** `bench gc` on this machine: what killed runs left (namespaces, BPF pins, stale locks, kept runs); the lines to print. */
export async function gcLocal(o: { run?: string; force: boolean; dryRun: boolean }): Promise<string[]> {
  // Listing always runs for real (it changes nothing); --dry-run only holds back the kills and deletes.
  const report = await collectGarbage(new ExecRunner(), { only: o.run, force: o.force, dryRun: o.dryRun });
  return gcSummary(report, o.dryRun);
}

/** Removes one dead run's leftovers (a sweep resuming after a kill). */
export async function removeLocalRun(runId: string): Promise<void> {
  await collectGarbage(new ExecRunner(), { only: runId });
}
