// A data plane on a real cluster, whichever provider brings the cluster: the provider provisions (kind creates, an
// existing cluster is validated), a deployment puts the workload on it — the benchmark's load pods, a workload of
// agnhost pods (the verification grid), or the benchmark's pods with the enforce probes and changes — and on the
// way out the provider releases what it made. One guard collects diagnostics on the first failed step. The kind
// and cluster backends are this with their provider and their model's wording.
import type { RunConfig } from '../../config/schema.js';
import { BenchError } from '../../errors.js';
import { ExecRunner, type Runner } from '../../exec/runner.js';
import type { PolicySet } from '../../policy/generate.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { Flow, Workload, WorkloadAddresses, WorkloadShape, WorkloadTarget } from '../../workload/workload.js';
import type { Attempt, BackendRunOptions, DataPlane, MeasureSettings, ModelDescription, PlaneChanges, PolicyInstallReport } from '../types.js';
import { EnforceDeployment } from './changes.js';
import type { K8sBackendOptions, K8sDeployment, K8sPlaneContext } from './deployment.js';
import { collectDiagnostics, planDiagnostics } from './diagnostics.js';
import { StepGuard } from './errors.js';
import { GridDeployment } from './grid.js';
import type { KubeTarget } from './kubectl.js';
import type { ClusterProvider, ProviderDescription } from './provider.js';
import { BenchmarkDeployment } from './benchmark.js';
import { K8sSession } from './session.js';
import { ClusterWorkloadDeployment } from './workload.js';
import { ClusterWorkloadEnforceDeployment } from './workload-enforce.js';
import type { Versions } from './versions.js';

export type { K8sBackendOptions } from './deployment.js';
export { DRY_RUN_NODES } from './session.js';

/** A real agent programs policy asynchronously (Felix, the Cilium agent): seconds, not the local model's instant. */
export const K8S_READINESS_TIMEOUT_MS = 20_000;

/** The runners a backend uses: the given ones, or real ones (the cleanup runner is not cancellable). */
export function backendRunners(o: Pick<BackendRunOptions, 'runner' | 'cleanupRunner' | 'signal'>): { runner: Runner; cleanupRunner: Runner } {
  return { runner: o.runner ?? new ExecRunner(o.signal), cleanupRunner: o.cleanupRunner ?? new ExecRunner() };
}

/** The deployments by workload shape. */
const DEPLOYMENTS: Record<WorkloadShape, (c: K8sPlaneContext) => K8sDeployment> = {
  benchmark: (c) => new BenchmarkDeployment(c),
  enforce: (c) => new EnforceDeployment(c, new BenchmarkDeployment(c)),
  'verify-grid': (c) => new GridDeployment(c),
  cluster: (c) => (c.opts.workloadChanges ? new ClusterWorkloadEnforceDeployment(c) : new ClusterWorkloadDeployment(c)),
};

export abstract class K8sBackend implements DataPlane {
  readonly probeTool = 'fortio';
  readonly settleMs = K8S_READINESS_TIMEOUT_MS;
  readonly cni: RunConfig['cni'];
  /** The cluster kubectl talks to. */
  readonly kube: KubeTarget;
  readonly session: K8sSession;
  readonly shape: WorkloadShape;
  protected readonly ctx: K8sPlaneContext;
  private readonly d: K8sDeployment;
  private downDone = false;

  constructor(
    readonly provider: ClusterProvider,
    protected readonly opts: K8sBackendOptions & { versions: Versions; runner: Runner; cleanupRunner: Runner },
  ) {
    this.cni = opts.config.cni;
    this.kube = provider.target;
    this.shape = opts.shape ?? 'benchmark';
    const agents = [...provider.profile.agents];
    const info = provider.info;
    this.session = new K8sSession({
      config: opts.config,
      runId: opts.runId,
      runner: opts.runner,
      cleanupRunner: opts.cleanupRunner,
      target: this.kube,
      versions: opts.versions,
      agents,
      enforcesPolicy: provider.profile.enforcesPolicy,
      sharedKernel: info.sharedKernel,
      nodeCgroups: info.nodeCgroups,
      peerPodCap: info.peerPodCap,
      peerNodes: info.peerNodes,
      outDir: opts.outDir,
      progress: opts.progress,
      signal: opts.signal,
      probeIntervalMs: opts.probeIntervalMs,
      enforcementTimeoutMs: opts.enforcementTimeoutMs,
    });
    const guard = new StepGuard(async (failed) => {
      if (!provider.worthDiagnosing(failed.step)) return undefined;
      opts.progress?.step(`step ${failed.step} failed; collecting diagnostics`);
      // Best effort: failing to collect diagnostics must not hide the step that failed.
      try {
        const namespaces = [...agents.map((a) => a.namespace), ...provider.info.diagnosticNamespaces, ...this.d.namespaces()];
        const dir = await collectDiagnostics(opts.cleanupRunner, `${opts.outDir}/diagnostics`, planDiagnostics(this.kube, { namespaces, agents }));
        await provider.collectDiagnostics(dir);
        return dir;
      } catch (d) {
        opts.progress?.step(`collecting diagnostics failed too: ${(d as Error).message}`);
        return undefined;
      }
    });
    this.ctx = { provider, guard, session: this.session, runner: opts.runner, cleanupRunner: opts.cleanupRunner, versions: opts.versions, config: opts.config, runId: opts.runId, opts, progress: opts.progress, agents };
    this.d = DEPLOYMENTS[this.shape](this.ctx);
  }

  get name() {
    return this.provider.name;
  }

  /** The load and probe wording of the benchmark on this provider (kind and cluster say it their way). */
  protected abstract benchmarkDescription(cluster: ProviderDescription): string;

  get model(): ModelDescription {
    const d = this.provider.describe();
    return { name: d.name, description: this.d.describe(d, this.benchmarkDescription(d)), enforcesPolicy: this.provider.profile.enforcesPolicy };
  }

  get topology() {
    return { nodes: this.ctx.nodeCount ?? this.provider.info.nodes ?? 0, placement: this.opts.config.placement, serverPods: 1 };
  }

  get target(): WorkloadTarget {
    return this.session.target;
  }

  get changes(): PlaneChanges | undefined {
    return this.d.changes;
  }

  fit(workload: Workload): Workload {
    return this.d.fit(workload);
  }

  up(workload: Workload): Promise<WorkloadAddresses> {
    return this.d.up(workload);
  }

  install(set: PolicySet): Promise<PolicyInstallReport> {
    return this.d.install(set);
  }

  probe(flow: Flow, timeoutMs: number): Promise<Attempt> {
    if (!this.d.probe) throw new BenchError('internal', `the ${this.shape} workload on ${this.name} has no single-probe path`);
    return this.d.probe(flow, timeoutMs);
  }

  measure(flow: Flow, metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    if (!this.d.measure) throw new BenchError('internal', `the ${this.shape} workload on ${this.name} measures nothing`);
    return this.d.measure(flow, metric, settings);
  }

  /** Releases the cluster (kind: deletes it); on a cluster that stays, first removes what the workload created. */
  async down(): Promise<void> {
    if (!this.downDone) {
      this.downDone = true;
      await this.d.teardown(!this.provider.info.deletesCluster);
    }
    await this.provider.release();
  }

  keepInstructions(): string[] {
    return this.provider.keepInstructions(this.d.keepNote());
  }
}
