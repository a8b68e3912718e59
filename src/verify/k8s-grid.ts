// The verification grid on a real cluster (`bench verify --backend kind|cluster`), run through the same case
// files as the local grid, on whatever cluster its provider brings (src/backends/k8s/provider.ts): kind creates
// one and deletes it afterwards, an existing cluster is validated and only the grid's namespaces are removed. As
// the upstream network-policy e2e suite builds it: namespaces x, y, z (cb-<runId>-x|y|z, see k8s-names.ts) with
// pods a, b, c, agnhost serving each port (k8s-manifests.ts), probes through `kubectl exec` (k8s-probe.ts).
import { resolve } from 'node:path';
import { ExecRunner, type CommandSpec, type Runner } from '../exec/runner.js';
import { collectDiagnostics, planDiagnostics } from '../backends/k8s/diagnostics.js';
import { StepGuard } from '../backends/k8s/errors.js';
import { kubectl, waitSpec, type KubeTarget } from '../backends/k8s/kubectl.js';
import { RUN_LABEL } from '../backends/k8s/manifests.js';
import type { ClusterProvider } from '../backends/k8s/provider.js';
import type { AgentRef } from '../backends/k8s/cni.js';
import { validateManifests } from '../backends/k8s/validate.js';
import { loadVersions, type Versions } from '../backends/k8s/versions.js';
import { toListJson, toYaml } from '../backends/k8s/yaml.js';
import type { BackendName, CniName } from '../config/schema.js';
import type { ModelDescription, Progress } from '../backends/types.js';
import type { Inventory, NetworkPolicy } from '../policy/types.js';
import type { VerifyCase } from './cases.js';
import type { Attempt } from './expect.js';
import { DNS_NAMESPACE, instantiatePolicies, planProbes, type EndpointId, type GridAddresses, type GridLayout, type ProbeSpec } from './grid.js';
import { EXTERNAL_STANDIN_IPS, gridNames, realNamespace, rewritePolicies, type GridNames } from './k8s-names.js';
import { containerName, renderExtraNamespace, renderGridNamespaces, renderGridPods } from './k8s-manifests.js';
import { DNS_SELECTOR, parseGridPods, parseProbeResult, pickDnsPod, planProbeCommand, type ProbeTool } from './k8s-probe.js';
import type { VerifyGrid } from './run.js';

/** A real agent programs policy asynchronously (Felix, the Cilium agent): seconds, not the local model's instant. */
export const K8S_READINESS_TIMEOUT_MS = 20_000;

export interface K8sVerifyGridOptions {
  /** Brings the cluster (see the backend descriptors in src/backends/factory.ts). */
  provider: ClusterProvider;
  runId: string;
  /** Diagnostics go here. */
  outDir: string;
  /** Leave the grid (cluster: namespaces; kind: the cluster) up after the run. */
  keep?: boolean;
  runner?: Runner;
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  versions?: Versions;
  /** How long the grid pods may take to become ready (image pull included). */
  podTimeoutS?: number;
}

export class K8sVerifyGrid implements VerifyGrid {
  readonly backend: BackendName;
  readonly cni: CniName;
  readonly readinessTimeoutMs = K8S_READINESS_TIMEOUT_MS;
  readonly target: KubeTarget;
  readonly provider: ClusterProvider;
  private agents: AgentRef[];
  private readonly versions: Versions;
  private readonly runner: Runner;
  private readonly cleanupRunner: Runner;
  private readonly guard: StepGuard;
  private names?: GridNames;
  private layout?: GridLayout;
  private addresses?: GridAddresses;
  private namespacesRequested = false;
  /** Case-file names of the pod-less namespaces created for cases' policies. */
  private readonly extraNamespaces = new Set<string>();
  private downDone = false;

  constructor(private readonly opts: K8sVerifyGridOptions) {
    this.provider = opts.provider;
    this.backend = opts.provider.name;
    this.cni = opts.provider.profile.cni;
    this.target = opts.provider.target;
    this.agents = [...opts.provider.profile.agents];
    this.versions = opts.versions ?? loadVersions();
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.cleanupRunner = opts.cleanupRunner ?? new ExecRunner();
    this.guard = new StepGuard(async (failed) => {
      if (!this.provider.worthDiagnosing(failed.step)) return undefined;
      this.opts.progress?.step(`step ${failed.step} failed; collecting diagnostics`);
      try {
        const grid = this.namespacesRequested ? Object.values(this.names?.namespaceOf ?? {}) : [];
        const namespaces = [...this.agents.map((a) => a.namespace), ...this.provider.info.diagnosticNamespaces, ...grid];
        const dir = await collectDiagnostics(this.cleanupRunner, resolve(this.opts.outDir, 'diagnostics'), planDiagnostics(this.target, { namespaces, agents: this.agents }));
        await this.provider.collectDiagnostics(dir);
        return dir;
      } catch (d) {
        this.opts.progress?.step(`collecting diagnostics failed too: ${(d as Error).message}`);
        return undefined;
      }
    });
  }

  get model(): ModelDescription {
    const grid = `verification grid of agnhost pods (${this.versions.verify.agnhostImage})`;
    const d = this.provider.describe();
    return { name: d.name, description: `${d.runsBrief}; ${grid}`, enforcesPolicy: this.provider.profile.enforcesPolicy };
  }

  /** The cluster from the provider, and two nodes to spread the grid over (one if it has only one usable node). */
  private async clusterNodes(): Promise<string[]> {
    const cluster = await this.provider.provision(this.guard);
    this.agents = cluster.agents;
    return this.guard.run('check-context', async () => {
      let cross;
      try {
        cross = cluster.place('cross-node');
      } catch {
        return [cluster.place('same-node')!.placement.serverNode];
      }
      // Not known in a dry run against a cluster nobody has read.
      return cross ? [cross.placement.serverNode, cross.placement.clientNode] : ['<node-0>', '<node-1>'];
    });
  }

  async up(layout: GridLayout): Promise<GridAddresses> {
    if (layout.externals.length) throw new Error('the kind/cluster grid has no external hosts: build its layout with k8sLayout()');
    const names = gridNames(this.opts.runId, layout);
    this.names = names;
    this.layout = layout;
    const nodes = await this.clusterNodes();
    const namespaces = renderGridNamespaces(layout, names);
    const pods = renderGridPods(layout, names, nodes, this.versions.verify.agnhostImage);
    validateManifests([...namespaces, ...pods]);
    const t = this.target;
    const real = Object.values(names.namespaceOf);
    await this.guard.run('create-workloads', async () => {
      this.opts.progress?.step(`creating namespaces ${real.join(', ')} and ${pods.length} agnhost pods on ${[...new Set(nodes)].join(', ')}`);
      this.namespacesRequested = true;
      // `create`, not apply: a namespace of that name that is not ours stops the run instead of being adopted.
      await this.runner.run(kubectl(t, ['create', '-f', '-'], 'create the grid namespaces', { input: toYaml(namespaces) }));
      await this.runner.run(kubectl(t, ['create', '-f', '-'], 'create the grid pods', { input: toYaml(pods) }));
    });
    const ips: Record<EndpointId, string> = { ...EXTERNAL_STANDIN_IPS };
    const nodeOf: Record<EndpointId, string> = {};
    await this.guard.run('wait-workloads-ready', async () => {
      const s = this.opts.podTimeoutS ?? 300;
      for (const ns of real) await this.runner.run(waitSpec(t, ['-n', ns, 'wait', '--for=condition=Ready', 'pod', '--all'], s, `wait for the pods in ${ns}`));
      for (const [logical, ns] of Object.entries(names.namespaceOf)) {
        const r = await this.runner.run(kubectl(t, ['-n', ns, 'get', 'pods', '-o', 'json'], `read the pod IPs in ${ns}`));
        const expected = layout.pods.filter((p) => p.namespace === logical);
        if (this.runner.dryRun) {
          for (const p of expected) (ips[p.id] = `<ip of ${p.id}>`), (nodeOf[p.id] = nodes[p.node % nodes.length]!);
          continue;
        }
        const found = parseGridPods(r.stdout, ns, expected);
        Object.assign(ips, found.ips);
        Object.assign(nodeOf, found.nodeOf);
      }
      const dnsPods = layout.pods.filter((p) => p.namespace === DNS_NAMESPACE);
      if (dnsPods.length) {
        const r = await this.runner.run(kubectl(t, ['-n', DNS_NAMESPACE, 'get', 'pods', '-l', DNS_SELECTOR, '-o', 'json'], 'find the cluster DNS pods (read only)'));
        for (const d of dnsPods) {
          if (this.runner.dryRun) {
            (ips[d.id] = `<ip of a ${DNS_SELECTOR} pod>`), (nodeOf[d.id] = '<its node>');
            continue;
          }
          const pod = pickDnsPod(r.stdout, d);
          ips[d.id] = pod.ip;
          nodeOf[d.id] = pod.node;
        }
      }
    });
    this.addresses = { ips, nodeOf };
    return this.addresses;
  }

  async applyPolicies(policies: NetworkPolicy[], _inventory: Inventory): Promise<Record<string, number | string | boolean>> {
    const names = this.requireNames();
    const real = rewritePolicies(policies, names);
    const extra = [...new Set(policies.map((p) => p.metadata.namespace))].filter((ns) => !(ns in names.namespaceOf) && !this.extraNamespaces.has(ns)).map((ns) => renderExtraNamespace(ns, names));
    validateManifests([...extra, ...real]);
    const t = this.target;
    const selector = `${RUN_LABEL}=${names.runId}`;
    return this.guard.run('apply-policies', async () => {
      if (extra.length) {
        for (const n of extra) this.extraNamespaces.add(n.metadata!.labels!.ns!);
        await this.runner.run(kubectl(t, ['create', '-f', '-'], `create ${extra.map((n) => n.metadata!.name).join(', ')} (a namespace without pods the case's policies live in)`, { input: toYaml(extra) }));
      }
      // The previous case's set goes first, so a policy the new case does not name cannot linger. Namespace by
      // namespace (the run's own), not -A: a cluster-wide delete needs cluster-wide RBAC and could reach another
      // run's objects should a label ever be shared.
      for (const ns of this.policyNamespaces()) {
        await this.runner.run(kubectl(t, ['-n', ns, 'delete', 'networkpolicies', '-l', selector, '--ignore-not-found', '--wait=true'], `delete the previous case's policies in ${ns}`));
      }
      if (real.length) {
        await this.runner.run(kubectl(t, ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'], `apply ${real.length} NetworkPolicies (server-side)`, { input: toListJson(real) }));
      }
      return { policiesApplied: real.length, policyNamespaces: [...new Set(real.map((p) => p.metadata.namespace))].join(' ') };
    });
  }

  /** The command one probe runs (the dry-run plan shows a few). */
  probeCommand(p: ProbeSpec, timeoutMs: number): { spec: CommandSpec; tool: ProbeTool } {
    const names = this.requireNames();
    const layout = this.layout!;
    const src = layout.pods.find((x) => x.id === p.from);
    const dst = layout.pods.find((x) => x.id === p.to);
    const ip = this.addresses?.ips[p.to];
    if (!src || !(src.namespace in names.namespaceOf) || !dst || !ip) throw new Error(`probe ${p.from} -> ${p.to}: not a probe the kind/cluster grid can make (grid pods to grid or DNS pods)`);
    const first = src.ports[0]!;
    return planProbeCommand({
      target: this.target,
      namespace: names.namespaceOf[src.namespace]!,
      pod: src.name,
      container: containerName(first.containerPort, first.protocol),
      ip,
      port: p.port,
      protocol: p.protocol,
      timeoutMs,
      dns: dst.namespace === DNS_NAMESPACE,
    });
  }

  async probe(p: ProbeSpec, timeoutMs: number): Promise<Attempt> {
    const { spec, tool } = this.probeCommand(p, timeoutMs);
    return parseProbeResult(await this.runner.run(spec), tool);
  }

  /** Deletes the grid namespaces, selected by the run label only, or with the cluster when the provider made it. */
  async down(): Promise<void> {
    if (this.downDone || this.opts.keep) return;
    this.downDone = true;
    if (this.provider.info.deletesCluster) {
      await this.provider.release();
      return;
    }
    if (this.namespacesRequested) {
      this.opts.progress?.step('deleting the grid namespaces');
      await this.cleanupRunner.run(
        kubectl(this.target, ['delete', 'namespace', '-l', `${RUN_LABEL}=${this.opts.runId}`, '--ignore-not-found', '--wait=true', '--timeout=180s'], 'delete the grid namespaces', { timeoutMs: 200_000 }),
      );
    }
    await this.provider.release();
  }

  keepInstructions(): string[] {
    const n = this.names;
    return this.provider.keepInstructions({
      namespaces: Object.values(n?.namespaceOf ?? {}),
      examples: ['get pods -A -l pod -o wide'],
      note: "the last case's policies are still applied",
      label: n ? 'grid namespaces' : undefined,
    });
  }

  /** Every namespace of the run that can hold a case's policies: the grid's and the pod-less ones created so far. */
  private policyNamespaces(): string[] {
    const names = this.requireNames();
    return [...new Set([...Object.values(names.namespaceOf), ...[...this.extraNamespaces].map((ns) => realNamespace(names, ns))])];
  }

  private requireNames(): GridNames {
    if (!this.names) throw new Error('the grid is not up');
    return this.names;
  }
}

/**
 * `bench verify --dry-run` on kind/cluster: every command the grid would run, manifests included — bring-up, each
 * case's delete + apply, one example probe of each kind (a case runs every probe of its matrix like these),
 * teardown — recorded by the grid's dry-run runner. Returns how many probes each case would make.
 */
export async function planK8sVerify(grid: VerifyGrid, layout: GridLayout, cases: readonly VerifyCase[], timeoutMs: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  try {
    const addresses = await grid.up(layout);
    let examplesShown = false;
    for (const c of cases) {
      const inst = instantiatePolicies(c.policies, addresses.ips);
      if (inst.problems.length) throw new Error(`case ${c.name}: ${inst.problems.map((p) => p.message).join('; ')}`);
      await grid.applyPolicies(inst.policies, { namespaces: [], pods: [] });
      const probes = planProbes(layout, c.probes);
      counts[c.name] = probes.length;
      if (!examplesShown) {
        examplesShown = true;
        // One per (destination kind, protocol): TCP and UDP to a grid pod, TCP and UDP (dig) to the DNS pod.
        const examples = new Map<string, ProbeSpec>();
        for (const p of probes) {
          const key = `${p.to.startsWith(`${DNS_NAMESPACE}/`) ? 'dns' : 'pod'} ${p.protocol}`;
          if (!examples.has(key)) examples.set(key, p);
        }
        for (const p of examples.values()) await grid.probe(p, timeoutMs);
      }
    }
  } finally {
    await grid.down();
  }
  return counts;
}

