// The cluster backend: an existing cluster, named explicitly by --context and/or --kubeconfig. It creates only
// its own labelled namespaces (and what is in them) and removes them afterwards; it never creates, changes or
// deletes a cluster, a CNI or anything outside those namespaces. It measures the CNI the cluster already runs,
// and refuses a --cni that contradicts it.
//
// Exercised on the machine this was written on: the plan (--dry-run) and the control flow with an injected
// runner. Not exercised there: a real cluster (none was reachable).
import type { RunConfig } from '../../config/schema.js';
import { ExecRunner, type Runner } from '../../exec/runner.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { BenchBackend, MeasureSettings, ModelDescription, PolicyInstallReport, PolicySet, BackendRunOptions } from '../types.js';
import { DISPLAY_NAME, cniProfile, detectCnis, detectionRefusal, type AgentRef, type CniProfile, type DetectedCni, type FelixConfigurationSpec } from '../k8s/cni.js';
import type { KindCni } from '../k8s/manifests.js';
import type { CommandResult, CommandSpec } from '../../exec/runner.js';
import { K8sStepError, step, type K8sStep } from '../k8s/errors.js';
import { kubectl, type KubeTarget } from '../k8s/kubectl.js';
import { PEER_POD_CAP, type Placement } from '../k8s/manifests.js';
import { K8sSession } from '../k8s/session.js';
import { loadVersions, type Versions } from '../k8s/versions.js';

export class ClusterTargetError extends Error {
  readonly kind = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'ClusterTargetError';
  }
}

export interface ClusterBackendOptions extends BackendRunOptions {
  outDir: string;
  versions?: Versions;
  probeIntervalMs?: number;
  enforcementTimeoutMs?: number;
}

/** Calico's FelixConfiguration `default` (bpfEnabled, nftablesMode), read if the CRD exists and RBAC allows; optional. */
export function planFelixConfigurationRead(t: KubeTarget): CommandSpec {
  return kubectl(t, ['get', 'felixconfigurations.crd.projectcalico.org', 'default', '-o', 'json', '--ignore-not-found'], "read Calico's FelixConfiguration (data plane mode), if any", { allowFailure: true });
}

/** The detected CNI matching --cni, or a ClusterTargetError naming everything that was found. */
export function confirmCni(daemonsetsJson: string, nodesJson: string, felix: CommandResult, wanted: KindCni): DetectedCni {
  let spec: FelixConfigurationSpec | undefined;
  if (felix.exitCode === 0 && felix.stdout.trim()) {
    try {
      spec = (JSON.parse(felix.stdout) as { spec?: FelixConfigurationSpec }).spec;
    } catch {
      spec = undefined;
    }
  }
  const d = detectCnis(daemonsetsJson, nodesJson, spec);
  const mine = d.found.find((f) => f.cni === wanted);
  if (!mine) throw new ClusterTargetError(detectionRefusal(d, wanted));
  return mine;
}

export const DRY_RUN_NODES: Placement = { serverNode: '<server-node>', clientNode: '<client-node>' };

interface NodeList {
  items?: Array<{
    metadata?: { name?: string; labels?: Record<string, string> };
    spec?: { unschedulable?: boolean; taints?: Array<{ effect?: string }> };
    status?: { conditions?: Array<{ type?: string; status?: string }> };
  }>;
}

/** Two Ready, schedulable, untainted nodes (workers first), or one for same-node placement. */
export function pickNodes(nodesJson: string, placement: 'cross-node' | 'same-node'): { placement: Placement; nodeCount: number } {
  const items = (JSON.parse(nodesJson) as NodeList).items ?? [];
  const usable = items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .filter((n) => !n.spec?.unschedulable && !(n.spec?.taints ?? []).some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute'))
    .map((n) => ({ name: n.metadata?.name ?? '', controlPlane: 'node-role.kubernetes.io/control-plane' in (n.metadata?.labels ?? {}) }))
    .filter((n) => n.name)
    .sort((a, b) => Number(a.controlPlane) - Number(b.controlPlane) || a.name.localeCompare(b.name));
  const need = placement === 'cross-node' ? 2 : 1;
  if (usable.length < need) {
    throw new Error(`${placement} placement needs ${need} Ready schedulable node${need > 1 ? 's' : ''} without NoSchedule taints; the cluster has ${usable.length}`);
  }
  const server = usable[0]!.name;
  return { placement: { serverNode: server, clientNode: placement === 'cross-node' ? usable[1]!.name : server }, nodeCount: items.length };
}

export class ClusterBackend implements BenchBackend {
  readonly name = 'cluster' as const;
  readonly probeTool = 'fortio';
  readonly cni: RunConfig['cni'];
  readonly target: KubeTarget;
  readonly session: K8sSession;
  private readonly profile: CniProfile;
  private readonly agents: AgentRef[];
  private readonly runner: Runner;
  private readonly cleanupRunner: Runner;
  private nodeCount = 0;
  private detected: string[] = [];
  private diagnosticsDir?: string;
  private downDone = false;

  constructor(private readonly opts: ClusterBackendOptions) {
    const { context, kubeconfig } = opts.config;
    if (!context && !kubeconfig) {
      // The current context is whatever the user last switched to: too easy to benchmark (and fill with
      // thousands of policies) the wrong cluster.
      throw new ClusterTargetError('the cluster backend needs an explicit --context NAME or --kubeconfig FILE; it never uses the current context implicitly');
    }
    this.target = { kubeconfig, context };
    this.cni = opts.config.cni;
    this.profile = cniProfile(opts.config.cni);
    // Replaced by the agent found on the cluster in up() (its namespace depends on how the CNI was installed).
    this.agents = [...this.profile.agents];
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.cleanupRunner = opts.cleanupRunner ?? new ExecRunner();
    this.session = new K8sSession({
      config: opts.config,
      runId: opts.runId,
      runner: this.runner,
      cleanupRunner: this.cleanupRunner,
      target: this.target,
      versions: opts.versions ?? loadVersions(),
      agents: this.agents,
      enforcesPolicy: this.profile.enforcesPolicy,
      sharedKernel: false,
      outDir: opts.outDir,
      progress: opts.progress,
      signal: opts.signal,
      probeIntervalMs: opts.probeIntervalMs,
      enforcementTimeoutMs: opts.enforcementTimeoutMs,
    });
  }

  get model(): ModelDescription {
    const where = this.target.context ? `context ${this.target.context}` : `kubeconfig ${this.target.kubeconfig}`;
    return {
      name: `${DISPLAY_NAME[this.profile.cni]} (existing cluster)`,
      description: `${this.profile.cni} as already installed on the cluster of ${where}${this.detected.length ? ` (detected: ${this.detected.join(', ')})` : ''}; connect measured by the static cb-probe in the client pod; at most ${PEER_POD_CAP} of the filler policies' peers run as pods (the others' selectors match no pod)`,
      enforcesPolicy: this.profile.enforcesPolicy,
    };
  }

  get topology() {
    return { nodes: this.nodeCount, placement: this.opts.config.placement, serverPods: 1 };
  }

  private async guarded<T>(fallback: K8sStep, fn: () => Promise<T>): Promise<T> {
    try {
      return await step(fallback, fn);
    } catch (e) {
      const err = e as K8sStepError;
      if (!this.diagnosticsDir && err.step !== 'check-context' && err.step !== 'detect-cni') {
        // Best effort: failing to collect diagnostics must not hide the step that failed.
        this.diagnosticsDir = await this.session.diagnostics().catch(() => undefined);
      }
      throw new K8sStepError(err.step, err.cause, this.diagnosticsDir);
    }
  }

  async up(): Promise<void> {
    const t = this.target;
    const nodes = await this.guarded('check-context', () => this.runner.run(kubectl(t, ['get', 'nodes', '-o', 'json'], 'reach the cluster and list its nodes')));
    const ds = await this.guarded('detect-cni', () => this.runner.run(kubectl(t, ['get', 'daemonsets', '-A', '-o', 'json'], 'detect the CNI the cluster runs (DaemonSet pod templates, every namespace)')));
    const felix = await this.guarded('detect-cni', () => this.runner.run(planFelixConfigurationRead(t)));
    // CPU per container comes from kubelet metrics through nodes/proxy, which exposes the whole kubelet API; an
    // identity bound only to the base ClusterRole (clusters/rbac-cluster-backend.yaml) runs without CPU figures.
    const canProxy = await this.guarded('check-context', () =>
      this.runner.run(kubectl(t, ['auth', 'can-i', 'get', 'nodes', '--subresource=proxy'], 'may this identity read kubelet metrics (nodes/proxy)? CPU figures need it', { allowFailure: true })),
    );
    if (!this.runner.dryRun && canProxy.stdout.trim() !== 'yes') this.session.disableCadvisor();
    let placement = DRY_RUN_NODES;
    if (!this.runner.dryRun) {
      await this.guarded('detect-cni', async () => {
        const mine = confirmCni(ds.stdout, nodes.stdout, felix, this.profile.cni);
        this.detected = [mine.found];
        this.agents.splice(0, this.agents.length, ...mine.agents);
        if (mine.enforcesPolicy !== undefined) this.session.setEnforcesPolicy(mine.enforcesPolicy);
      });
      const picked = await this.guarded('check-context', async () => pickNodes(nodes.stdout, this.opts.config.placement));
      placement = picked.placement;
      this.nodeCount = picked.nodeCount;
    }
    await this.guarded('create-workloads', () => this.session.createWorkloads(placement));
  }

  installPolicies(set: PolicySet): Promise<PolicyInstallReport> {
    return this.guarded('apply-policies', () => this.session.installPolicies(set));
  }

  measure(metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    return this.guarded('measure', () => this.session.measure(metric, settings));
  }

  /** Removes the run's own namespaces (selected by its run label), nothing else. */
  async down(): Promise<void> {
    if (this.downDone) return;
    this.downDone = true;
    this.opts.progress?.step('deleting the run namespaces');
    await this.session.deleteNamespaces();
  }

  keepInstructions(): string[] {
    const n = this.session.names;
    const flags = [this.target.kubeconfig ? `--kubeconfig ${this.target.kubeconfig}` : '', this.target.context ? `--context ${this.target.context}` : ''].filter(Boolean).join(' ');
    return [
      `left up: namespaces ${n.serverNamespace} ${n.clientNamespace} (run id ${this.opts.runId})`,
      `  kubectl ${flags} get pods -n ${n.clientNamespace} -o wide`,
      `remove with: kubectl ${flags} delete namespace -l cni-bench/run=${this.opts.runId}`,
    ];
  }
}
