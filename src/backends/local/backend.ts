// The local backend: namespaces as nodes and pods on this machine's kernel, a CNI data-plane model on top,
// the native probe between a client pod and a server pod.
import type { RunConfig } from '../../config/schema.js';
import { ExecRunner, type Runner } from '../../exec/runner.js';
import { ksoftirqdPids, softirqCharging, windowCpu, type SoftirqCharging } from '../../metrics/cpu.js';
import { parseBpfProgs, planBpfProgs, planClient, planServer, runClient, startDetachedServer, type RunningServer } from '../../probe/native.js';
import { BPFFS_ROOT } from './bpf/native.js';
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

/** Connections probed after a policy-map overflow, and measured per metric when they are denied. */
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
  /** Set when a policy-map overflow left the client without access (endpoint lockdown). */
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
    // A policy map that overflowed does not fail the run (Cilium 1.18 keeps the pod running): measure what the
    // data plane now does with the client's connections, and record it next to the overflow.
    if (Number(modelState.policyMapOverflowEndpoints ?? 0) > 0 && !this.runner.dryRun) {
      const probe = await runClient(this.runner, {
        ...planClient({ netns: this.client.netns, target: this.serverPod.ip, port: SERVER_PORT, mode: 'connect', samples: OVERFLOW_PROBES, warmup: 0, concurrency: 1, timeoutMs: 300, cpus: this.cpus }),
        purpose: 'probe whether the client still connects after the policy-map overflow',
      });
      this.clientDenied = probe.samplesNs.length === 0;
      modelState.overflowClientVerdict = this.clientDenied ? 'denied' : probe.samplesNs.length === OVERFLOW_PROBES ? 'allowed' : 'partly allowed';
    }
    return { modelState, installMs };
  }

  /** An incremental change to `set` through the model's update() (issue 15): only what differs is written. */
  async updatePolicies(set: PolicySet): Promise<ModelUpdateReport> {
    if (!this.plane.model.update) throw new Error(`${this.model.name} has no incremental update`);
    this.clientDenied = false; // the install-time verdict no longer holds
    return (await this.plane.update(set.policies, buildInventory(this.plan, set))).report;
  }

  /** What the probe client accounts beside its samples (issue 20): found once, after the policies are installed. */
  private accounting?: { softirqPids: number[]; bpfProgIds: number[]; softirq: SoftirqCharging };

  private async accountingTargets(): Promise<NonNullable<LocalBackend['accounting']>> {
    if (this.accounting) return this.accounting;
    const cpus = this.cpus ?? machineCpus().map((_, i) => i);
    // The BPF models pin their programs under /sys/fs/bpf/cb-<run id>/; their run time is the data plane's CPU.
    const bpfDir = `${BPFFS_ROOT}/cb-${this.opts.runId}`;
    const listed = this.plane.model.install ? await this.runner.run(planBpfProgs(bpfDir)) : null;
    this.accounting = this.runner.dryRun
      ? { softirqPids: [], bpfProgIds: [], softirq: { inTasks: null, how: 'dry run' } }
      : { softirqPids: ksoftirqdPids(cpus), bpfProgIds: listed ? parseBpfProgs(listed.stdout) : [], softirq: softirqCharging() };
    return this.accounting;
  }

  async measure(metric: MetricName, given: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    // Every connection of a denied client waits out its timeout: a few samples show the denial, thousands
    // would only take hours.
    const s = this.clientDenied ? { ...given, samples: Math.min(given.samples, OVERFLOW_PROBES), warmup: 0 } : given;
    const acct = await this.accountingTargets();
    const serverPid = this.server?.pid ?? null;
    const concurrency = Math.min(s.concurrency, s.samples);
    // Warm-up, window and reference in one invocation: the client reads every CPU clock at the window's edges.
    const out = await runClient(this.runner, {
      ...planClient({
        netns: this.client.netns, target: this.serverPod.ip, port: SERVER_PORT, mode: metric, samples: s.samples, warmup: s.warmup, concurrency, timeoutMs: s.timeoutMs, cpus: this.cpus,
        accountPids: [...(serverPid === null ? [] : [serverPid]), ...acct.softirqPids],
        bpfProgIds: acct.bpfProgIds,
        reference: s.reference && s.reference.samples > 0 ? { ...s.reference, batchServer: sharesOneCpu(this.cpuPlacement) } : undefined,
      }),
      purpose: `measure ${metric}`,
    });
    // A dry run measures nothing: say so with an empty result rather than invent numbers.
    if (this.runner.dryRun) return { samplesNs: [], errors: {}, wallNs: 0, cpu: null };
    const ops = out.samplesNs.length + Object.values(out.errors).reduce((a, b) => a + b, 0);
    const cpu = windowCpu(out, { ops, concurrency, serverPid, softirqPids: acct.softirqPids, cpus: this.cpus?.length ?? machineCpus().length, softirq: acct.softirq });
    return { samplesNs: out.samplesNs, errors: out.errors, wallNs: out.wallNs, cpu, ...(out.reference ? { reference: out.reference } : {}) };
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
    // The measured placement, kept: the same CPU and, when it shares the client's, SCHED_BATCH (issue 20 item 5).
    const spec = { ...planServer({ netns: this.serverPod.netns, ports: [SERVER_PORT], cpus: this.cpus, batch: sharesOneCpu(this.cpuPlacement) }), purpose: 'start the probe server (detached, --keep)' };
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
