// The existing-cluster provider: a cluster named explicitly by --context and/or --kubeconfig, reached, read and
// left alone. Provisioning lists the nodes, detects the CNI it runs (refusing a --cni that contradicts it) and,
// for a benchmark, asks whether kubelet metrics may be read; release changes nothing.
import type { RunConfig } from '../../config/schema.js';
import type { CommandResult, CommandSpec, Runner } from '../../exec/runner.js';
import { BenchError } from '../../errors.js';
import { FELIX_CONFIGURATION, cniProfile, type CniProfile, type FelixConfigurationSpec, type KindCni } from '../k8s/cni.js';
import { detectCnis, detectionRefusal, type DetectedCni, type FelixRead } from '../k8s/detect.js';
import type { K8sStep, StepGuard } from '../k8s/errors.js';
import { kubectl, targetFlags, type KubeTarget } from '../k8s/kubectl.js';
import { PEER_POD_CAP, RUN_LABEL, type Placement } from '../k8s/manifests.js';
import type { ClusterProvider, KeepNote, ProviderDescription, ProviderInfo, ProvisionedCluster, ProvisionOptions } from '../k8s/provider.js';

export class ClusterTargetError extends BenchError {
  constructor(message: string) {
    super('usage', message);
  }
}

/**
 * Calico's FelixConfiguration `default`, where its data plane is set (bpfEnabled, nftablesMode). Allowed to fail: a
 * cluster without Calico has no such resource type; one with calico-node is refused when it cannot be read.
 */
export function planFelixConfigurationRead(t: KubeTarget): CommandSpec {
  return kubectl(t, ['get', FELIX_CONFIGURATION, 'default', '-o', 'json', '--ignore-not-found'], "read Calico's FelixConfiguration (data plane mode), if any", { allowFailure: true });
}

/** What the FelixConfiguration read says: its spec ({} when there is none), or why it could not be read. */
export function felixReadFrom(r: CommandResult): FelixRead {
  if (r.exitCode !== 0 || r.timedOut) return { unreadable: r.stderr.trim().split('\n').pop() || (r.timedOut ? 'timed out' : `kubectl exit ${r.exitCode}`) };
  if (!r.stdout.trim()) return { spec: {} };
  try {
    return { spec: (JSON.parse(r.stdout) as { spec?: FelixConfigurationSpec }).spec ?? {} };
  } catch (e) {
    return { unreadable: `its JSON does not parse: ${(e as Error).message}` };
  }
}

/** The RBAC rule the FelixConfiguration read needs, as the refusal names it. */
export const FELIX_RBAC_HINT = `grant this identity \`get\` on ${FELIX_CONFIGURATION}: the ClusterRole cni-bench in clusters/rbac-cluster-backend.yaml has it (kubectl apply -f clusters/rbac-cluster-backend.yaml, then bind cni-bench to the identity)`;

/** The detected CNI matching --cni, or a ClusterTargetError (exit 2) naming everything that was found or is missing. */
export function confirmCni(daemonsetsJson: string, nodesJson: string, felix: CommandResult, wanted: KindCni): DetectedCni {
  const d = detectCnis(daemonsetsJson, nodesJson, felixReadFrom(felix));
  // Guessing iptables would label an eBPF or nftables data plane's results as iptables.
  if (d.undecided.length) throw new ClusterTargetError(`${d.undecided.join('; ')}; ${FELIX_RBAC_HINT}`);
  const mine = d.found.find((f) => f.cni === wanted);
  if (!mine) throw new ClusterTargetError(detectionRefusal(d, wanted));
  return mine;
}

interface NodeList {
  items?: Array<{
    metadata?: { name?: string; labels?: Record<string, string> };
    spec?: { unschedulable?: boolean; taints?: Array<{ effect?: string }> };
    status?: { conditions?: Array<{ type?: string; status?: string }> };
  }>;
}

/** Two Ready, schedulable, untainted nodes (workers first), or one for same-node placement. */
export function pickNodes(nodesJson: string, placement: RunConfig['placement']): { placement: Placement; nodeCount: number } {
  const items = (JSON.parse(nodesJson) as NodeList).items ?? [];
  const usable = items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .filter((n) => !n.spec?.unschedulable && !(n.spec?.taints ?? []).some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute'))
    .map((n) => ({ name: n.metadata?.name ?? '', controlPlane: 'node-role.kubernetes.io/control-plane' in (n.metadata?.labels ?? {}) }))
    .filter((n) => n.name)
    .sort((a, b) => Number(a.controlPlane) - Number(b.controlPlane) || a.name.localeCompare(b.name));
  const need = placement === 'cross-node' ? 2 : 1;
  if (usable.length < need) {
    throw new BenchError('k8s-step', `${placement} placement needs ${need} Ready schedulable node${need > 1 ? 's' : ''} without NoSchedule taints; the cluster has ${usable.length}`);
  }
  const server = usable[0]!.name;
  return { placement: { serverNode: server, clientNode: placement === 'cross-node' ? usable[1]!.name : server }, nodeCount: items.length };
}

export interface ExistingClusterOptions {
  cni: RunConfig['cni'];
  runId: string;
  runner: Runner;
  context?: string;
  kubeconfig?: string;
  /** How the refusal without a target names the command ("the cluster backend", "verify on the cluster backend"). */
  who?: string;
}

export class ExistingCluster implements ClusterProvider {
  readonly name = 'cluster' as const;
  readonly target: KubeTarget;
  readonly profile: CniProfile;
  readonly info: ProviderInfo = { deletesCluster: false, sharedKernel: false, peerPodCap: PEER_POD_CAP, diagnosticNamespaces: [] };
  private detected: string[] = [];

  constructor(private readonly o: ExistingClusterOptions) {
    if (!o.context && !o.kubeconfig) {
      // The current context is whatever the user last switched to: too easy to benchmark (and fill with
      // thousands of policies) the wrong cluster.
      throw new ClusterTargetError(`${o.who ?? 'the cluster backend'} needs an explicit --context NAME or --kubeconfig FILE; it never uses the current context implicitly`);
    }
    this.target = { kubeconfig: o.kubeconfig, context: o.context };
    this.profile = cniProfile(o.cni);
  }

  describe(): ProviderDescription {
    const where = this.target.context ? `context ${this.target.context}` : `kubeconfig ${this.target.kubeconfig}`;
    const runs = `${this.profile.cni} as already installed on the cluster of ${where}${this.detected.length ? ` (detected: ${this.detected.join(', ')})` : ''}`;
    return { name: `${this.profile.displayName} (existing cluster)`, runs, runsBrief: runs };
  }

  async provision(guard: StepGuard, opts: ProvisionOptions = {}): Promise<ProvisionedCluster> {
    const t = this.target;
    const runner = this.o.runner;
    const nodes = await guard.run('check-context', () => runner.run(kubectl(t, ['get', 'nodes', '-o', 'json'], 'reach the cluster and list its nodes')));
    const ds = await guard.run('detect-cni', () => runner.run(kubectl(t, ['get', 'daemonsets', '-A', '-o', 'json'], 'detect the CNI the cluster runs (DaemonSet pod templates, every namespace)')));
    const felix = await guard.run('detect-cni', () => runner.run(planFelixConfigurationRead(t)));
    let kubeletMetrics: boolean | undefined;
    if (opts.checkKubeletMetrics) {
      // CPU per container comes from kubelet metrics through nodes/proxy, which exposes the whole kubelet API; an
      // identity bound only to the base ClusterRole (clusters/rbac-cluster-backend.yaml) runs without CPU figures.
      const canProxy = await guard.run('check-context', () =>
        runner.run(kubectl(t, ['auth', 'can-i', 'get', 'nodes', '--subresource=proxy'], 'may this identity read kubelet metrics (nodes/proxy)? CPU figures need it', { allowFailure: true })),
      );
      if (!runner.dryRun) kubeletMetrics = canProxy.stdout.trim() === 'yes';
    }
    if (runner.dryRun) return { agents: [...this.profile.agents], kubeletMetrics, place: () => undefined };
    const mine = await guard.run('detect-cni', async () => confirmCni(ds.stdout, nodes.stdout, felix, this.profile.cni));
    this.detected = [mine.found];
    return { agents: mine.agents, enforcesPolicy: mine.enforcesPolicy, kubeletMetrics, place: (p) => pickNodes(nodes.stdout, p) };
  }

  /** Nothing to release: the cluster is not ours. */
  async release(): Promise<void> {}

  /** Before the run created anything, the cluster's state is not the run's to diagnose. */
  worthDiagnosing(step: K8sStep): boolean {
    return step !== 'check-context' && step !== 'detect-cni';
  }

  async collectDiagnostics(_dir: string): Promise<void> {}

  keepInstructions(left: KeepNote): string[] {
    const flags = targetFlags(this.target).join(' ');
    return [
      `left up: namespaces ${left.namespaces.join(' ')} (run id ${this.o.runId}${left.note ? `; ${left.note}` : ''})`,
      ...left.examples.map((e) => `  kubectl ${flags} ${e}`),
      `remove with: kubectl ${flags} delete namespace -l ${RUN_LABEL}=${this.o.runId}`,
    ];
  }
}
