// The benchmark on a real cluster, whichever provider brings the cluster: the provider provisions (kind creates,
// an existing cluster is validated), the session deploys the run's namespaces and load pods, applies the handed
// policy set and measures; on the way out the provider releases what it made. One guard collects diagnostics on
// the first failed step. The kind and cluster backends are this with their provider and their model's wording.
import type { RunConfig } from '../../config/schema.js';
import { ExecRunner, type Runner } from '../../exec/runner.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { WorkloadTarget } from '../../workload/workload.js';
import type { BackendRunOptions, BenchBackend, MeasureSettings, ModelDescription, PolicyInstallReport, PolicySet } from '../types.js';
import type { AgentRef } from './cni.js';
import { StepGuard } from './errors.js';
import type { KubeTarget } from './kubectl.js';
import { CLIENT_POD, FORTIO_CONTAINER, type Placement } from './manifests.js';
import type { ClusterProvider } from './provider.js';
import { K8sSession } from './session.js';
import type { Versions } from './versions.js';

export const DRY_RUN_NODES: Placement = { serverNode: '<server-node>', clientNode: '<client-node>' };

export interface K8sBackendOptions extends BackendRunOptions {
  /** The run's results directory: diagnostics go here. */
  outDir: string;
  versions?: Versions;
  /** Tests: enforcement probe pacing and bound. */
  probeIntervalMs?: number;
  enforcementTimeoutMs?: number;
}

/** The runners a backend uses: the given ones, or real ones (the cleanup runner is not cancellable). */
export function backendRunners(o: Pick<BackendRunOptions, 'runner' | 'cleanupRunner' | 'signal'>): { runner: Runner; cleanupRunner: Runner } {
  return { runner: o.runner ?? new ExecRunner(o.signal), cleanupRunner: o.cleanupRunner ?? new ExecRunner() };
}

export abstract class K8sBackend implements BenchBackend {
  readonly probeTool = 'fortio';
  readonly cni: RunConfig['cni'];
  readonly target: KubeTarget;
  readonly session: K8sSession;
  protected readonly guard: StepGuard;
  /** The agents as found on the cluster (replaced in up(): their namespace depends on how the CNI was installed). */
  protected readonly agents: AgentRef[];
  private nodeCount?: number;
  /** What the provider found out about the data plane (ProvisionedCluster.modelState), merged into the result's. */
  private provisioned: Record<string, string | number | boolean> = {};
  private downDone = false;

  constructor(
    readonly provider: ClusterProvider,
    protected readonly opts: K8sBackendOptions & { versions: Versions; runner: Runner; cleanupRunner: Runner },
  ) {
    this.cni = opts.config.cni;
    this.target = provider.target;
    this.agents = [...provider.profile.agents];
    const info = provider.info;
    this.session = new K8sSession({
      config: opts.config,
      runId: opts.runId,
      runner: opts.runner,
      cleanupRunner: opts.cleanupRunner,
      target: this.target,
      versions: opts.versions,
      agents: this.agents,
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
    this.guard = new StepGuard(async (failed) => {
      if (!provider.worthDiagnosing(failed.step)) return undefined;
      opts.progress?.step(`step ${failed.step} failed; collecting diagnostics`);
      // Best effort: failing to collect diagnostics must not hide the step that failed.
      try {
        const dir = await this.session.diagnostics(provider.info.diagnosticNamespaces);
        await provider.collectDiagnostics(dir);
        return dir;
      } catch (d) {
        opts.progress?.step(`collecting diagnostics failed too: ${(d as Error).message}`);
        return undefined;
      }
    });
  }

  get name() {
    return this.provider.name;
  }

  abstract get model(): ModelDescription;

  get topology() {
    return { nodes: this.nodeCount ?? this.provider.info.nodes ?? 0, placement: this.opts.config.placement, serverPods: 1 };
  }

  get workload(): WorkloadTarget {
    return this.session.workload;
  }

  async up(): Promise<void> {
    const cluster = await this.provider.provision(this.guard, { checkKubeletMetrics: true });
    this.agents.splice(0, this.agents.length, ...cluster.agents);
    if (cluster.enforcesPolicy !== undefined) this.session.setEnforcesPolicy(cluster.enforcesPolicy);
    if (cluster.kubeletMetrics === false) this.session.disableCadvisor();
    this.provisioned = cluster.modelState ?? {};
    const picked = await this.guard.run('check-context', async () => cluster.place(this.opts.config.placement));
    if (picked) this.nodeCount = picked.nodeCount;
    await this.guard.run('create-workloads', () => this.session.createWorkloads(picked?.placement ?? DRY_RUN_NODES));
  }

  installPolicies(set: PolicySet): Promise<PolicyInstallReport> {
    return this.guard.run('apply-policies', async () => {
      const report = await this.session.installPolicies(set);
      // Into the session's own object: measure() keeps adding to it after this returns.
      Object.assign(report.modelState, this.provisioned);
      return report;
    });
  }

  measure(metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    return this.guard.run('measure', () => this.session.measure(metric, settings));
  }

  /** Releases the cluster (kind: deletes it); on a cluster that stays, first removes the run's own namespaces. */
  async down(): Promise<void> {
    if (!this.provider.info.deletesCluster && !this.downDone) {
      this.downDone = true;
      this.opts.progress?.step('deleting the run namespaces');
      await this.session.deleteNamespaces();
    }
    await this.provider.release();
  }

  keepInstructions(): string[] {
    const n = this.session.names;
    return this.provider.keepInstructions({
      namespaces: [n.serverNamespace, n.clientNamespace],
      examples: this.provider.info.deletesCluster
        ? ['get pods -A -o wide', `-n ${n.clientNamespace} exec -it ${CLIENT_POD} -c ${FORTIO_CONTAINER} -- fortio load -n 100 ${this.session.url}`]
        : [`get pods -n ${n.clientNamespace} -o wide`],
    });
  }
}
