// Measuring the benchmark's flow on a cluster: connect with the project's own cb-probe in the client pod (exact
// per-sample latency), CRR and RR with fortio, each with the CPU of the measured window split between client,
// server, the CNI agents and the data plane (src/backends/k8s/cpu.ts says where each figure comes from).
import { BenchError } from '../../errors.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { parseClientOutput } from '../../probe/native.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { MeasureSettings, Progress } from '../types.js';
import type { AgentRef } from './cni.js';
import { cadvisorSpanMs, cgroupTargets, cpuWindow, parseCadvisorCpu, parseNodeCgroupRead, parseProcStat, planCadvisor, planNodeCgroupRead, planProcStat, type CgroupTarget, type CpuSnapshot } from './cpu.js';
import { step } from './errors.js';
import { parseFortioLoad, planFortioLoad } from './fortio.js';
import { kubectl, type KubeTarget } from './kubectl.js';
import { CLIENT_POD, FORTIO_CONTAINER, PROBE_CONTAINER, PROBE_PATH, type Placement, type RunNames } from './manifests.js';

/** What the measurement reads of the session: where the load pods are, and what the cluster lets it read. */
export interface MeasuredPods {
  runner: Runner;
  target: KubeTarget;
  names: RunNames;
  placement: Placement;
  serverPod: string;
  /** Where the load connects: the server pod's IP, or the ClusterIP of its Service (--services). */
  serverIp: string;
  serverPort: number;
  url: string;
  agents: readonly AgentRef[];
  /** True on kind: every node shares one kernel, so one /proc/stat read covers them all. */
  sharedKernel: boolean;
  nodeCgroups?: { provider: string };
  /** False when the identity may not `get nodes/proxy`: no per-container CPU. */
  cadvisor?: boolean;
  progress?: Progress;
  /** The install report's modelState: per-metric CPU figures the result schema has no field for go here. */
  state: Record<string, number | string | boolean>;
}

const NO_NODE_METRICS = 'not measured: no permission to get nodes/proxy (kubelet metrics); bind clusters/rbac-cluster-backend.yaml cni-bench-node-metrics to measure it';

/** cAdvisor deltas describe the window when their samples span 75-150% of it. */
export function cadvisorSplitValid(spanMs: number | null, windowMs: number): boolean {
  return spanMs !== null && windowMs > 0 && spanMs >= 0.75 * windowMs && spanMs <= 1.5 * windowMs;
}

export class K8sMeasure {
  private cgroupTargets?: Map<string, CgroupTarget[]>;

  constructor(private readonly pods: () => MeasuredPods) {}

  /** Once per run: the containerd ids of the load pods' and CNI agents' containers on the measured nodes. */
  private async resolveCgroupTargets(p: MeasuredPods, nodes: string[]): Promise<Map<string, CgroupTarget[]>> {
    if (this.cgroupTargets) return this.cgroupTargets;
    const map = new Map<string, CgroupTarget[]>();
    const ours = new Set([p.names.serverNamespace, p.names.clientNamespace]);
    const want = (t: Omit<CgroupTarget, 'id'>) => (ours.has(t.namespace) && (t.container === FORTIO_CONTAINER || t.container === PROBE_CONTAINER)) || p.agents.some((a) => a.namespace === t.namespace && a.container === t.container);
    for (const node of nodes) {
      const r = await p.runner.run(kubectl(p.target, ['get', 'pods', '-A', '--field-selector', `spec.nodeName=${node}`, '-o', 'json'], `find the containerd ids of the measured containers on ${node}`));
      map.set(node, p.runner.dryRun ? [] : cgroupTargets(r.stdout, want));
    }
    this.cgroupTargets = map;
    return map;
  }

  private async snapshot(p: MeasuredPods): Promise<CpuSnapshot> {
    const nodes = [...new Set([p.placement.serverNode, p.placement.clientNode])];
    const cadvisor = new Map<string, ReturnType<typeof parseCadvisorCpu>>();
    if (p.nodeCgroups) {
      const targets = await this.resolveCgroupTargets(p, nodes);
      for (const node of nodes) {
        const mine = targets.get(node) ?? [];
        const r = await p.runner.run(planNodeCgroupRead(p.nodeCgroups.provider, node, mine.map((x) => x.id)));
        cadvisor.set(node, p.runner.dryRun ? [] : parseNodeCgroupRead(r.stdout, mine));
      }
    } else {
      for (const node of nodes) {
        const r = await p.runner.run(planCadvisor(p.target, node));
        cadvisor.set(node, p.runner.dryRun ? [] : parseCadvisorCpu(r.stdout));
      }
    }
    const readers: Array<[string, string]> = [[p.names.clientNamespace, CLIENT_POD]];
    if (!p.sharedKernel && p.placement.serverNode !== p.placement.clientNode) readers.push([p.names.serverNamespace, p.serverPod]);
    const kernels = [];
    for (const [ns, pod] of readers) {
      const r = await p.runner.run(planProcStat(p.target, ns, pod));
      if (!p.runner.dryRun) kernels.push(parseProcStat(r.stdout));
    }
    return { cadvisor, kernels };
  }

  /** The measured window's CPU, split by container, with the figures that say how far the split can be trusted. */
  private split(p: MeasuredPods, metric: MetricName, window: { before: CpuSnapshot; after: CpuSnapshot; ms: number }, ops: number, clientContainer: string): NonNullable<MetricResult['cpu']> {
    const w = cpuWindow(
      window.before,
      window.after,
      {
        client: { namespace: p.names.clientNamespace, pod: CLIENT_POD, container: clientContainer },
        server: { namespace: p.names.serverNamespace, pod: p.serverPod, container: FORTIO_CONTAINER },
        agents: p.agents.map((a) => ({ namespace: a.namespace, container: a.container })),
      },
      ops,
    );
    p.state[`${metric}AgentsCpuUsPerOp`] = w.agentsUsPerOp;
    p.state[`${metric}CpuSplitSource`] = p.nodeCgroups ? 'cgroup v2 cpu.stat in the kind nodes' : 'cAdvisor (kubelet stats, refreshed every 10-15 s)';
    if (!p.nodeCgroups) {
      const span = cadvisorSpanMs(window.before, window.after);
      p.state[`${metric}WindowMs`] = Math.round(window.ms);
      if (span !== null) p.state[`${metric}CadvisorSpanMs`] = span;
      // The split (client, server, agents) means something only when the kubelet's samples span about the
      // measured window; with windows of a few seconds they usually do not (stats refresh every 10-15 s).
      const valid = cadvisorSplitValid(span, window.ms);
      p.state[`${metric}CpuSplitValid`] = valid;
      if (!valid) p.progress?.step(`cpu split for ${metric} is not meaningful: kubelet samples span ${span ?? 'unknown'} ms of a ${Math.round(window.ms)} ms window (use more --samples for windows of 30 s or more)`);
    }
    if (w.nodesUsPerOp !== null) p.state[`${metric}NodesCpuUsPerOp`] = w.nodesUsPerOp;
    const { agentsUsPerOp: _a, nodesUsPerOp: _n, ...cpu } = w;
    return cpu;
  }

  /** Runs `spec` between two CPU snapshots (none when the cluster gives no per-container CPU). */
  private async window(p: MeasuredPods, spec: CommandSpec) {
    const cpuAllowed = Boolean(p.nodeCgroups) || p.cadvisor !== false;
    const before = cpuAllowed ? await this.snapshot(p) : undefined;
    const started = performance.now();
    const result = await p.runner.run(spec);
    const ms = performance.now() - started;
    const after = cpuAllowed ? await this.snapshot(p) : undefined;
    return { result, cpu: before && after ? { before, after, ms } : undefined };
  }

  /** connect: the project's own probe in the client pod (exact per-sample latency, fortio's histogram is not). */
  private planProbeConnect(p: MeasuredPods, s: MeasureSettings, samples: number, purpose: string): CommandSpec {
    // Warm-up is its own invocation (as on the local backend), outside the CPU window; the measured one has none.
    const args = [PROBE_PATH, 'client', '--target', p.serverIp, '--port', String(p.serverPort), '--mode', 'connect', '--samples', String(samples), '--warmup', '0', '--concurrency', String(s.concurrency), '--timeout-ms', String(s.timeoutMs)];
    return kubectl(p.target, ['exec', '-n', p.names.clientNamespace, CLIENT_POD, '-c', PROBE_CONTAINER, '--', ...args], purpose, {
      timeoutMs: Math.max(120_000, samples * 50 + 60_000),
    });
  }

  async measure(metric: MetricName, s: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    const p = this.pods();
    const none = { samplesNs: [], errors: {}, wallNs: 0, cpu: null };
    return step('measure', async () => {
      if (metric === 'connect') {
        if (s.warmup > 0) await p.runner.run(this.planProbeConnect(p, s, s.warmup, 'warm up (connect) with cb-probe'));
        const { result, cpu } = await this.window(p, this.planProbeConnect(p, s, s.samples, 'measure connect with cb-probe'));
        p.state.connectSamplesSource = 'cb-probe';
        if (p.runner.dryRun) return none;
        let out;
        try {
          out = parseClientOutput(result.stdout);
        } catch (e) {
          throw new BenchError('probe', `${(e as Error).message}${result.stderr.trim() ? `; stderr: ${result.stderr.trim()}` : ''}`);
        }
        if (!cpu) {
          p.state.cpu = NO_NODE_METRICS;
          return { samplesNs: out.samplesNs, errors: out.errors, wallNs: out.wallNs, cpu: null };
        }
        const ops = out.samplesNs.length + Object.values(out.errors).reduce((a, b) => a + b, 0);
        const split = this.split(p, 'connect', cpu, ops, PROBE_CONTAINER);
        // The probe's own CPU over its measured window (getrusage), as on the local backend.
        p.state.connectProbeCpuUsPerOp = ops > 0 ? Math.round(((out.cpuUserNs + out.cpuSysNs) / 1000 / ops) * 100) / 100 : 0;
        return { samplesNs: out.samplesNs, errors: out.errors, wallNs: out.wallNs, cpu: split };
      }
      const load = { target: p.target, namespace: p.names.clientNamespace, pod: CLIENT_POD, url: p.url, metric, concurrency: s.concurrency, timeoutMs: s.timeoutMs };
      if (s.warmup > 0) await p.runner.run(planFortioLoad({ ...load, samples: Math.max(2, s.warmup) }, `warm up (${metric})`));
      const { result, cpu } = await this.window(p, planFortioLoad({ ...load, samples: s.samples }, `measure ${metric} with fortio`));
      // Without nodes/proxy there is no per-container CPU; the kernel-wide figure alone would be split wrongly.
      if (!cpu) p.state.cpu = NO_NODE_METRICS;
      if (p.runner.dryRun) return none;
      const parsed = parseFortioLoad(metric, result.stdout, result.stderr, { timeoutMs: s.timeoutMs });
      if (!cpu) return { samplesNs: parsed.samplesNs, errors: parsed.errors, wallNs: parsed.wallNs, cpu: null };
      if (parsed.resolutionUs !== undefined) p.state[`${metric}HistogramResolutionUs`] = parsed.resolutionUs;
      if (parsed.failedDialsRemoved !== undefined) p.state[`${metric}FailedDialsRemoved`] = parsed.failedDialsRemoved;
      if (parsed.handshakeCallsDropped !== undefined) p.state[`${metric}HandshakeCallsDropped`] = parsed.handshakeCallsDropped;
      const ops = parsed.samplesNs.length + Object.values(parsed.errors).reduce((a, b) => a + b, 0);
      const split = this.split(p, metric, cpu, ops, FORTIO_CONTAINER);
      p.state[`${metric}SamplesSource`] = parsed.samplesSource;
      if (parsed.fortioVersion) p.state.fortioVersion = parsed.fortioVersion;
      return { samplesNs: parsed.samplesNs, errors: parsed.errors, wallNs: parsed.wallNs, cpu: split };
    });
  }
}
