// A replayed cluster workload (`--workload FILE` on kind/cluster) on whatever cluster the provider brings: its
// namespaces as the run's own cb-<runId>-<name> (gc and parallel runs find and keep them apart), the pods
// ./workload-layout.ts chose as agnhost pods (./workload-manifests.ts), its policies as written but for the
// namespaces (./grid-names.ts), applied server-side in batches as the benchmark's are (./apply.ts), probes
// through `kubectl exec` as the verification grid's (./grid-probe.ts), and for `bench run` each measured flow
// measured with fortio in its source pod against fortio serving the destination's port (./fortio.ts: connect from
// fortio's connection-time histogram, CRR and RR from its access log; no per-container CPU split). Teardown deletes
// the namespaces by the run label; kind deletes the whole cluster.
import { BenchError } from '../../errors.js';
import type { CommandSpec } from '../../exec/runner.js';
import type { PolicySet } from '../../policy/generate.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import { podId, podOf, type EndpointId, type Flow, type Workload, type WorkloadAddresses } from '../../workload/workload.js';
import type { Attempt, MeasureSettings, PolicyInstallReport } from '../types.js';
import { parseFortioLoad, planFortioLoad } from './fortio.js';
import type { K8sDeployment, K8sPlaneContext } from './deployment.js';
import { gridNames, realNamespace, rewritePolicies, type GridNames } from './grid-names.js';
import { parseGridPods, parseProbeResult, planProbeCommand, type ProbeTool } from './grid-probe.js';
import { kubectl, waitSpec } from './kubectl.js';
import { applyInBatches } from './apply.js';
import { APPLY_CONCURRENCY, POLICY_BATCH_SIZE, PROBE_CONTAINER, PROBE_PATH, RUN_LABEL, probeContainer, probeVolume } from './manifests.js';
import { STATIC_PROBE_BIN, STATIC_PROBE_MISSING_HINT } from './session.js';
import { existsSync } from 'node:fs';
import type { KeepNote, ProviderDescription } from './provider.js';
import { validateManifests } from './validate.js';
import { probeContainerOf, renderWorkloadNamespaces, renderWorkloadPods, type FortioEnds } from './workload-manifests.js';
import { toYaml } from './yaml.js';

/** How long the pods may take to become ready (image pull included), s. */
const POD_TIMEOUT_S = 300;

export class ClusterWorkloadDeployment implements K8sDeployment {
  protected names?: GridNames;
  protected workload?: Workload;
  private addresses?: WorkloadAddresses;
  private namespacesRequested = false;
  private policiesApplied = false;
  /** The install report's modelState: measure() adds what it learns (histogram resolution, samples source). */
  private state: Record<string, number | string | boolean> = {};
  /** The measured flows' ends running fortio (bench run), by `ns/pod:port` (servers) and `ns/pod` (clients). */
  private fortio?: FortioEnds;
  /** Does the data plane enforce policy (detection may know better than the profile)? */
  private enforces = true;

  /**
   * `watchSources`: bench enforce --workload (./workload-enforce.ts): every flow's source gets the probe container
   * and the static cb-probe copied into it, for `cb-probe watch` behind `kubectl exec -i`.
   */
  constructor(
    protected readonly c: K8sPlaneContext,
    private readonly watchSources = false,
  ) {}

  describe(cluster: ProviderDescription): string {
    return `${cluster.runsBrief}; a replayed workload of agnhost pods (${this.c.versions.verify.agnhostImage}) serving their declared ports`;
  }

  /** The run label on every namespace (the CNI sees it there); only the pods that run can be flows' ends. */
  fit(workload: Workload): Workload {
    const runs = (id: EndpointId) => podOf(workload, id)?.presence === 'endpoint';
    return {
      ...workload,
      namespaces: workload.namespaces.map((n) => ({ ...n, labels: { ...n.labels, [RUN_LABEL]: this.c.runId } })),
      pods: workload.pods.map((p) => ({ ...p, labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })) })),
      flows: workload.flows.filter((f) => runs(f.from) && runs(f.to)),
    };
  }

  /** The cluster from the provider, and the nodes the pods are spread over (two, or one if that is all it has). */
  private async clusterNodes(): Promise<string[]> {
    const { provider, guard } = this.c;
    const cluster = await provider.provision(guard);
    this.c.agents.splice(0, this.c.agents.length, ...cluster.agents);
    this.enforces = cluster.enforcesPolicy ?? provider.profile.enforcesPolicy;
    return guard.run('check-context', async () => {
      let cross;
      try {
        cross = cluster.place('cross-node');
      } catch {
        return [cluster.place('same-node')!.placement.serverNode];
      }
      return cross ? [cross.placement.serverNode, cross.placement.clientNode] : ['<node-0>', '<node-1>'];
    });
  }

  async up(workload: Workload): Promise<WorkloadAddresses> {
    if (workload.hosts.length) throw new BenchError('internal', 'a replayed workload on a cluster has no hosts outside it');
    const { guard, runner } = this.c;
    const t = this.c.provider.target;
    // Every namespace is the run's own, its kube-system too: the cluster's own is never touched.
    const names = gridNames(this.c.runId, workload, []);
    this.names = names;
    this.workload = workload;
    const nodes = await this.clusterNodes();
    const namespaces = renderWorkloadNamespaces(workload.namespaces, names);
    // The measured flows' ends (bench run) run fortio on the measured port, and a fortio client at the source.
    const measured = workload.flows.filter((f) => f.measured && f.protocol === 'TCP');
    const fortio = (this.fortio = measured.length ? { image: this.c.versions.load.fortioImage, servers: new Set(measured.map((f) => `${f.to}:${f.port}`)), clients: new Set(measured.map((f) => f.from)) } : undefined);
    const sources = this.watchSources ? [...new Set(workload.flows.map((f) => f.from))] : [];
    const watch = sources.length ? { sources: new Set(sources), container: probeContainer(this.c.versions), volume: probeVolume } : undefined;
    const pods = renderWorkloadPods(workload.pods, names, nodes, this.c.versions.verify.agnhostImage, fortio, watch);
    validateManifests([...namespaces, ...pods]);
    const running = workload.pods.filter((p) => p.presence === 'endpoint' && !p.hostNetwork);
    const withPods = [...new Set(running.map((p) => p.namespace))];
    await guard.run('create-workloads', async () => {
      this.c.progress?.step(`creating ${namespaces.length} namespaces (cb-${this.c.runId}-*) and ${pods.length} agnhost pods on ${[...new Set(nodes)].join(', ')}`);
      this.namespacesRequested = true;
      // `create`, not apply: a namespace of that name that is not ours stops the run instead of being adopted.
      await runner.run(kubectl(t, ['create', '-f', '-'], 'create the workload namespaces', { input: toYaml(namespaces) }));
      if (pods.length) await runner.run(kubectl(t, ['create', '-f', '-'], `create the workload's ${pods.length} pods`, { input: toYaml(pods), timeoutMs: 180_000 }));
    });
    const ips: Record<EndpointId, string> = {};
    const nodeOf: Record<EndpointId, string> = {};
    await guard.run('wait-workloads-ready', async () => {
      for (const logical of withPods) {
        const ns = realNamespace(names, logical);
        await runner.run(waitSpec(t, ['-n', ns, 'wait', '--for=condition=Ready', 'pod', '--all'], POD_TIMEOUT_S, `wait for the pods in ${ns}`));
        const r = await runner.run(kubectl(t, ['-n', ns, 'get', 'pods', '-o', 'json'], `read the pod IPs in ${ns}`));
        const expected = running.filter((p) => p.namespace === logical);
        if (runner.dryRun) {
          for (const p of expected) (ips[podId(p)] = `<ip of ${podId(p)}>`), (nodeOf[podId(p)] = nodes[p.node % nodes.length]!);
          continue;
        }
        // Keyed by the workload's names (ns/pod as in the file), read from the run's namespace.
        const found = parseGridPods(r.stdout, ns, expected);
        Object.assign(ips, found.ips);
        Object.assign(nodeOf, found.nodeOf);
      }
    });
    if (sources.length) await guard.run('install-probe', () => this.copyProbe(sources));
    this.addresses = { ips, nodeOf };
    return this.addresses;
  }

  /** The static cb-probe into the probe container of each watched source, as the synthetic enforce's probe pods. */
  private async copyProbe(sources: readonly string[]): Promise<void> {
    const t = this.c.provider.target;
    if (!this.c.runner.dryRun && !existsSync(STATIC_PROBE_BIN)) throw new BenchError('usage', STATIC_PROBE_MISSING_HINT);
    for (const id of sources) {
      const pod = podOf(this.workload!, id)!;
      const where = `${realNamespace(this.names!, pod.namespace)}/${pod.name}`;
      await this.c.runner.run(kubectl(t, ['cp', STATIC_PROBE_BIN, `${where}:${PROBE_PATH}`, '-c', PROBE_CONTAINER], `copy the static cb-probe into ${where}`, { timeoutMs: 60_000 }));
      await this.c.runner.run(kubectl(t, ['exec', '-n', realNamespace(this.names!, pod.namespace), pod.name, '-c', PROBE_CONTAINER, '--', 'chmod', '0755', PROBE_PATH], `make the probe in ${where} executable`, { timeoutMs: 30_000 }));
    }
  }

  /** The policies in the run's namespaces, server-side applied in batches; a previous set is deleted first. */
  async install(set: PolicySet): Promise<PolicyInstallReport> {
    const started = performance.now();
    const names = this.requireNames();
    const real = rewritePolicies(set.policies, names);
    validateManifests(real);
    const t = this.c.provider.target;
    const runner = this.c.runner;
    const modelState = await this.c.guard.run('apply-policies', async () => {
      if (this.policiesApplied) {
        for (const ns of Object.values(names.namespaceOf)) {
          await runner.run(kubectl(t, ['-n', ns, 'delete', 'networkpolicies', '-l', `${RUN_LABEL}=${names.runId}`, '--ignore-not-found', '--wait=true'], `delete the previous policies in ${ns}`));
        }
      }
      this.policiesApplied = true;
      this.c.progress?.step(`applying ${real.length} NetworkPolicies: ${Math.ceil(real.length / POLICY_BATCH_SIZE)} server-side apply batches, ${APPLY_CONCURRENCY} kubectl processes at a time`);
      const batches = await applyInBatches(runner, t, real, { what: "the workload's policies," });
      this.state = { policiesApplied: real.length, applyBatches: batches, policyNamespaces: new Set(real.map((p) => p.metadata.namespace)).size };
      return this.state;
    });
    const barrier = this.workload?.barrier;
    if (barrier && this.enforces) Object.assign(this.state, await this.waitEnforcement(barrier, performance.now()));
    else this.state.enforcementBarrier = barrier ? 'none (the data plane enforces no policy)' : 'none (no flow between the running pods that the policies deny everywhere)';
    return { modelState, installMs: performance.now() - started };
  }

  /**
   * Agents program policy asynchronously (Felix, the Cilium agent): probes the barrier flow, which the policies
   * deny, until it is blocked. Stops the run when it still connects after the timeout (2 min by default, as the
   * benchmark's wait).
   */
  private async waitEnforcement(barrier: Flow, appliedAt: number): Promise<Record<string, number | string>> {
    const deadline = appliedAt + (this.c.opts.enforcementTimeoutMs ?? 120_000);
    const key = `${barrier.from} -> ${barrier.to}:${barrier.port}`;
    return this.c.guard.run('wait-enforcement', async () => {
      this.c.progress?.step(`waiting until the policies are enforced (${key}, which they deny, is blocked)`);
      for (let probes = 1; ; probes++) {
        const a = await this.probe(barrier, 1000);
        if (this.c.runner.dryRun || a.outcome === 'blocked') return { enforcementBarrier: `${key} blocked (${a.reason})`, enforcementProbes: probes, enforcementMs: Math.round(performance.now() - appliedAt) };
        if (performance.now() > deadline) throw new BenchError('k8s-step', `after ${probes} probes ${key} still connects, though the policies deny it: they are not enforced`);
        await new Promise((r) => setTimeout(r, this.c.opts.probeIntervalMs ?? 1000));
      }
    });
  }

  /** The command one probe runs (the dry-run plan shows a few). */
  probeCommand(flow: Flow, timeoutMs: number): { spec: CommandSpec; tool: ProbeTool } {
    const names = this.requireNames();
    const src = podOf(this.workload!, flow.from);
    const dst = podOf(this.workload!, flow.to);
    const ip = this.addresses?.ips[flow.to];
    if (!src || src.presence !== 'endpoint' || !dst || !ip) throw new BenchError('internal', `probe ${flow.from} -> ${flow.to}: not between two running pods of the workload`);
    return planProbeCommand({
      target: this.c.provider.target,
      namespace: realNamespace(names, src.namespace),
      pod: src.name,
      container: probeContainerOf(src),
      ip,
      port: flow.port,
      protocol: flow.protocol,
      timeoutMs,
      // The workload's DNS pods are agnhost pods here, answering any UDP datagram: no dig.
      dns: false,
    });
  }

  async probe(flow: Flow, timeoutMs: number): Promise<Attempt> {
    const { spec, tool } = this.probeCommand(flow, timeoutMs);
    return parseProbeResult(await this.c.runner.run(spec), tool);
  }

  /** One metric of one measured flow: fortio load in the source pod (a separate warm-up invocation first). */
  async measure(flow: Flow, metric: MetricName, s: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    const names = this.requireNames();
    const src = podOf(this.workload!, flow.from);
    const ip = this.addresses?.ips[flow.to];
    if (!src || !ip || !this.fortio?.clients.has(flow.from) || !this.fortio.servers.has(`${flow.to}:${flow.port}`)) {
      throw new BenchError('internal', `measure ${flow.from} -> ${flow.to}:${flow.port}: not a measured TCP flow of the workload (no fortio at its ends)`);
    }
    const runner = this.c.runner;
    const url = `http://${ip.includes(':') ? `[${ip}]` : ip}:${flow.port}/`;
    const load = { target: this.c.provider.target, namespace: realNamespace(names, src.namespace), pod: src.name, url, metric, concurrency: s.concurrency, timeoutMs: s.timeoutMs };
    return this.c.guard.run('measure', async () => {
        if (s.warmup > 0) await runner.run(planFortioLoad({ ...load, samples: Math.max(2, s.warmup) }, `warm up (${metric}) ${flow.from} -> ${flow.to}:${flow.port}`));
        const r = await runner.run(planFortioLoad({ ...load, samples: s.samples }, `measure ${metric} ${flow.from} -> ${flow.to}:${flow.port} with fortio`));
        this.state.cpu = 'not measured for a workload on kind/cluster (no per-container CPU split of its pods)';
        if (runner.dryRun) return { samplesNs: [], errors: {}, wallNs: 0, cpu: null };
        const parsed = parseFortioLoad(metric, r.stdout, r.stderr, { timeoutMs: s.timeoutMs });
        this.state[`${metric}SamplesSource`] = parsed.samplesSource;
        if (parsed.resolutionUs !== undefined) this.state[`${metric}HistogramResolutionUs`] = parsed.resolutionUs;
        if (parsed.fortioVersion) this.state.fortioVersion = parsed.fortioVersion;
        return { samplesNs: parsed.samplesNs, errors: parsed.errors, wallNs: parsed.wallNs, cpu: null };
    });
  }

  namespaces(): string[] {
    return this.namespacesRequested ? Object.values(this.names?.namespaceOf ?? {}) : [];
  }

  /** Deletes the namespaces, selected by the run label only. */
  async teardown(clusterStays: boolean): Promise<void> {
    if (!clusterStays || !this.namespacesRequested) return;
    this.c.progress?.step('deleting the workload namespaces');
    await this.c.cleanupRunner.run(
      kubectl(this.c.provider.target, ['delete', 'namespace', '-l', `${RUN_LABEL}=${this.c.runId}`, '--ignore-not-found', '--wait=true', '--timeout=180s'], 'delete the workload namespaces', { timeoutMs: 200_000 }),
    );
  }

  keepNote(): KeepNote {
    const n = this.names;
    return { namespaces: Object.values(n?.namespaceOf ?? {}), examples: [`get pods -A -l ${RUN_LABEL} -o wide`, `get networkpolicies -A -l ${RUN_LABEL}`], note: "the workload's policies are still applied", label: n ? 'workload namespaces' : undefined };
  }

  private requireNames(): GridNames {
    if (!this.names) throw new BenchError('internal', 'the workload is not up');
    return this.names;
  }
}
