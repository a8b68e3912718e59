// The local backend: namespaces as nodes and pods on this machine's kernel, a CNI data-plane model on top,
// the native probe between a client pod and a server pod.
import type { RunConfig } from '../../config/schema.js';
import { ExecRunner, type Runner } from '../../exec/runner.js';
import { readCpuTimes, readProcessCpuNs } from '../../metrics/machine.js';
import { planClient, planServer, runClient, startDetachedServer, type RunningServer } from '../../probe/native.js';
import type { CpuPlacement, MetricName, MetricResult } from '../../results/schema.js';
import { choosePlacement, planRpsPinning, sharesOneCpu } from '../../probe/placement.js';
import { cpus as machineCpus } from 'node:os';
import type { BenchBackend, MeasureSettings, PolicyInstallReport, PolicySet, BackendRunOptions } from '../types.js';
import { localModel } from './models.js';
import type { ModelContext, ModelUpdateReport } from './types.js';
import { recordKeptRun, RUN_LOCK_DIR } from '../../identity/locks.js';
import { buildInventory, LocalDataPlane, planModelTopology } from './plane.js';
import { topologyNamespaces, type PodSpec, type Topology } from './topology.js';
import { SERVER_PORT } from '../../workload/workload.js';
import { OVERFLOW_KEYS, overflowEndpoints } from '../../results/capacity-overflow.js';

/** Connections probed after a capacity overflow, and measured per metric when they are denied. */
const OVERFLOW_PROBES = 5;

export interface LocalBackendOptions extends BackendRunOptions {
  nodes?: number;
}

export class LocalBackend implements BenchBackend {
  readonly name = 'local' as const;
  readonly probeTool = 'cb-probe';
  readonly cni: RunConfig['cni'];
  readonly model: { name: string; description: string; enforcesPolicy: boolean };
  readonly topology: { nodes: number; placement: 'cross-node' | 'same-node'; serverPods: number };
  readonly plan: Topology;
  readonly cpuPlacement: CpuPlacement;
  readonly measureRounds = 10;
  private readonly plane: LocalDataPlane;
  private readonly runner: Runner;
  private server?: RunningServer;
  /** Set when a capacity overflow left the client without access (Cilium's lockdown, Calico-eBPF's dropped tail call). */
  private clientDenied = false;

  constructor(private readonly opts: LocalBackendOptions) {
    this.cni = opts.config.cni;
    const model = localModel(opts.config.cni);
    this.model = { name: model.name, description: model.description, enforcesPolicy: model.enforcesPolicy };
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.plan = planModelTopology(model, { runId: opts.runId, placement: opts.config.placement, nodes: opts.nodes });
    this.plane = new LocalDataPlane({
      model,
      topology: this.plan,
      settings: opts.config,
      runner: this.runner,
      cleanupRunner: opts.cleanupRunner ?? new ExecRunner(),
      progress: opts.progress,
    });
    this.topology = { nodes: this.plan.nodes.length, placement: opts.config.placement, serverPods: this.plan.pods.filter((p) => p.role === 'server').length };
    this.cpuPlacement = choosePlacement(opts.config.pinCpu, machineCpus().length);
  }

  private get cpus(): number[] | undefined {
    return this.cpuPlacement.cpus ?? undefined;
  }

  /** Every veth end of the run, in the namespace it lives in (node uplinks, switch ports, pod and host sides). */
  private get veths(): Array<{ netns: string; dev: string }> {
    return [
      ...this.plan.nodes.flatMap((n) => [
        { netns: n.netns, dev: 'eth0' },
        { netns: this.plan.switchNs, dev: n.switchPort },
      ]),
      ...this.plan.pods.flatMap((p) => [
        { netns: p.netns, dev: 'eth0' },
        { netns: p.node.netns, dev: p.hostIf },
      ]),
    ];
  }

  private get client(): PodSpec {
    return this.plan.pods.find((p) => p.role === 'client')!;
  }
  private get serverPod(): PodSpec {
    return this.plan.pods.find((p) => p.role === 'server')!;
  }

  async up(): Promise<void> {
    const cpu = this.cpuPlacement.cpus?.[0];
    await this.plane.up({ commands: cpu === undefined ? [] : planRpsPinning(this.veths, cpu) });
    this.server = await this.plane.serve({ ...planServer({ netns: this.serverPod.netns, ports: [SERVER_PORT], cpus: this.cpus, batch: sharesOneCpu(this.cpuPlacement) }), purpose: 'start the probe server' });
  }

  async installPolicies(set: PolicySet): Promise<PolicyInstallReport> {
    const started = performance.now();
    if (this.plane.model.install) this.opts.progress?.step(`compiling and installing ${set.policies.length} policies`);
    const modelState = await this.plane.install(set.policies, buildInventory(this.plan, set));
    const installMs = performance.now() - started;
    // A data plane over its capacity does not fail the run (Cilium 1.18 and Felix keep the pod running with part
    // of its policy): measure what it now does with the client's connections, and record it next to the overflow.
    if (overflowEndpoints(modelState) > 0 && !this.runner.dryRun) {
      const probe = await runClient(this.runner, {
        ...planClient({ netns: this.client.netns, target: this.serverPod.ip, port: SERVER_PORT, mode: 'connect', samples: OVERFLOW_PROBES, warmup: 0, concurrency: 1, timeoutMs: 300, cpus: this.cpus }),
        purpose: 'probe whether the client still connects after the capacity overflow',
      });
      this.clientDenied = probe.samplesNs.length === 0;
      modelState[OVERFLOW_KEYS.clientVerdict] = this.clientDenied ? 'denied' : probe.samplesNs.length === OVERFLOW_PROBES ? 'allowed' : 'partly allowed';
    }
    return { modelState, installMs };
  }

  /** An incremental change to `set` through the model's update() (issue 15): only what differs is written. */
  async updatePolicies(set: PolicySet): Promise<ModelUpdateReport> {
    if (!this.plane.model.update) throw new Error(`${this.model.name} has no incremental update`);
    this.clientDenied = false; // the install-time verdict no longer holds
    return (await this.plane.update(set.policies, buildInventory(this.plan, set))).report;
  }

  async measure(metric: MetricName, given: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    // Every connection of a denied client waits out its timeout: a few samples show the denial, thousands
    // would only take hours.
    const s = this.clientDenied ? { ...given, samples: Math.min(given.samples, OVERFLOW_PROBES), warmup: 0 } : given;
    const plan = (samples: number) =>
      planClient({ netns: this.client.netns, target: this.serverPod.ip, port: SERVER_PORT, mode: metric, samples, warmup: 0, concurrency: Math.min(s.concurrency, samples), timeoutMs: s.timeoutMs, cpus: this.cpus });
    // Warm-up is its own invocation so the CPU window below holds measured work only (plus one process start).
    if (s.warmup > 0) await runClient(this.runner, { ...plan(s.warmup), purpose: `warm up (${metric})` });
    const serverPid = this.server?.pid;
    const cpuBefore = readCpuTimes();
    const serverBefore = serverPid ? readProcessCpuNs(serverPid) : null;
    const out = await runClient(this.runner, { ...plan(s.samples), purpose: `measure ${metric}` });
    const cpuAfter = readCpuTimes();
    const serverAfter = serverPid ? readProcessCpuNs(serverPid) : null;
    const ops = out.samplesNs.length + Object.values(out.errors).reduce((a, b) => a + b, 0);
    const perOp = (ns: number) => (ops > 0 ? ns / 1000 / ops : 0);
    // /proc/stat covers the whole client invocation: its start and exit add a few ms of CPU, well under 1% of
    // the window at default sample counts, so the figures are not scaled. Its 10 ms tick is the resolution limit.
    const total = cpuAfter.busyNs - cpuBefore.busyNs;
    const softirq = cpuAfter.softirqNs - cpuBefore.softirqNs;
    const client = out.cpuUserNs + out.cpuSysNs;
    const server = serverBefore !== null && serverAfter !== null ? serverAfter - serverBefore : null;
    return {
      samplesNs: out.samplesNs,
      errors: out.errors,
      wallNs: out.wallNs,
      cpu: this.runner.dryRun
        ? null
        : {
            totalUsPerOp: perOp(total),
            probeClientUsPerOp: perOp(client),
            probeServerUsPerOp: server === null ? null : perOp(server),
            dataPlaneUsPerOp: perOp(Math.max(0, total - client - (server ?? 0))),
            softirqUsPerOp: perOp(softirq),
          },
    };
  }

  async down(): Promise<void> {
    await this.plane.down();
  }

  /**
   * --keep: the measured server is a child of this process (it would die with it, and holds its pipes open so the
   * process never exits); it is replaced by a detached one, and the run is recorded as kept rather than live, so
   * `bench gc --run <id>` removes it and nothing else mistakes it for a running benchmark.
   */
  async detach(): Promise<void> {
    if (!this.plane.started || this.runner.dryRun) return;
    if (this.server) await this.plane.stopServer(this.server);
    this.server = undefined;
    const spec = { ...planServer({ netns: this.serverPod.netns, ports: [SERVER_PORT] }), purpose: 'start the probe server (detached, --keep)' };
    const serverPid = await startDetachedServer(spec, `${RUN_LOCK_DIR}/${this.opts.runId}.server.log`);
    recordKeptRun({ runId: this.opts.runId, keptAt: new Date().toISOString(), namespaces: topologyNamespaces(this.plan), serverPid });
  }

  keepInstructions(): string[] {
    const c = this.client;
    const s = this.serverPod;
    return [
      `left up (run id ${this.opts.runId}); namespaces: ${topologyNamespaces(this.plan).join(' ')}`,
      `  client pod:  ip netns exec ${c.netns} bash     (${c.ip})`,
      `  server pod:  ip netns exec ${s.netns} bash     (${s.ip}:${SERVER_PORT})`,
      ...this.plan.nodes.map((n) => `  ${n.name}:      ip netns exec ${n.netns} bash     (${n.ip}; e.g. iptables-save, tc filter show dev <if> ingress)`),
      `remove with: bench gc --run ${this.opts.runId}`,
    ];
  }

  /** The context of the last install or update, for models' tests. */
  get modelContext(): ModelContext | undefined {
    return this.plane.modelContext;
  }
}
