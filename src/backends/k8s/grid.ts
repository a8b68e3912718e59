// A workload of agnhost pods on a real cluster (the verification grid of `bench verify --backend kind|cluster`), on
// whatever cluster the provider brings: kind creates one and deletes it afterwards, an existing cluster is
// validated and only the workload's namespaces are removed. As the upstream network-policy e2e suite builds it:
// the workload's namespaces as cb-<runId>-<name> (./grid-names.ts), each endpoint pod an agnhost pod serving its
// declared ports (./grid-manifests.ts), probes through `kubectl exec` (./grid-probe.ts). Pods in the cluster's own
// namespace (its DNS pods) are found by their labels and only read. Hosts outside the cluster do not exist here:
// they keep an address nothing answers (TEST-NET-2), so ipBlocks naming them still apply.
import { BenchError } from '../../errors.js';
import type { CommandSpec } from '../../exec/runner.js';
import type { PolicySet } from '../../policy/generate.js';
import { podId, podOf, type EndpointId, type Flow, type Workload, type WorkloadAddresses, type WorkloadPod } from '../../workload/workload.js';
import type { Attempt, PolicyInstallReport } from '../types.js';
import type { K8sDeployment, K8sPlaneContext } from './deployment.js';
import { containerName, renderExtraNamespace, renderGridNamespaces, renderGridPods } from './grid-manifests.js';
import { CLUSTER_NAMESPACE, gridNames, realNamespace, rewritePolicies, standInIp, type GridNames } from './grid-names.js';
import { DNS_SELECTOR, parseGridPods, parseProbeResult, pickDnsPod, planProbeCommand, type ProbeTool } from './grid-probe.js';
import { kubectl, waitSpec } from './kubectl.js';
import { RUN_LABEL } from './manifests.js';
import type { KeepNote, ProviderDescription } from './provider.js';
import { validateManifests } from './validate.js';
import { toListJson, toYaml } from './yaml.js';

/** How long the pods may take to become ready (image pull included), s. */
const POD_TIMEOUT_S = 300;

export class GridDeployment implements K8sDeployment {
  private names?: GridNames;
  private workload?: Workload;
  private addresses?: WorkloadAddresses;
  private namespacesRequested = false;
  /** Names (as the workload's policies say them) of the pod-less namespaces created for policies. */
  private readonly extraNamespaces = new Set<string>();

  constructor(private readonly c: K8sPlaneContext) {}

  describe(cluster: ProviderDescription): string {
    return `${cluster.runsBrief}; verification grid of agnhost pods (${this.c.versions.verify.agnhostImage})`;
  }

  /** The run label on every namespace the run creates (the evaluator then sees what the CNI sees); hosts as stand-ins. */
  fit(workload: Workload): Workload {
    return {
      ...workload,
      namespaces: workload.namespaces.map((n) => (n.name === CLUSTER_NAMESPACE ? { ...n, labels: { ...n.labels } } : { ...n, labels: { ...n.labels, [RUN_LABEL]: this.c.runId } })),
      pods: workload.pods.map((p) => ({ ...p, labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })) })),
      hosts: workload.hosts.map((h, i) => ({ ...h, presence: 'address' as const, ip: h.ip ?? standInIp(i) })),
      flows: workload.flows.filter((f) => podOf(workload, f.from) && podOf(workload, f.to)),
    };
  }

  /** The cluster from the provider, and two nodes to spread the pods over (one if it has only one usable node). */
  private async clusterNodes(): Promise<string[]> {
    const { provider, guard } = this.c;
    const cluster = await provider.provision(guard);
    this.c.agents.splice(0, this.c.agents.length, ...cluster.agents);
    return guard.run('check-context', async () => {
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

  async up(workload: Workload): Promise<WorkloadAddresses> {
    if (workload.hosts.some((h) => h.presence !== 'address')) throw new BenchError('internal', 'a cluster has no hosts outside it: fit() the workload first');
    const { guard, runner } = this.c;
    const t = this.c.provider.target;
    const names = gridNames(this.c.runId, workload);
    this.names = names;
    this.workload = workload;
    const nodes = await this.clusterNodes();
    const namespaces = renderGridNamespaces(workload, names);
    const pods = renderGridPods({ pods: workload.pods.filter((p) => p.presence === 'endpoint') }, names, nodes, this.c.versions.verify.agnhostImage);
    validateManifests([...namespaces, ...pods]);
    const real = Object.values(names.namespaceOf);
    await guard.run('create-workloads', async () => {
      this.c.progress?.step(`creating namespaces ${real.join(', ')} and ${pods.length} agnhost pods on ${[...new Set(nodes)].join(', ')}`);
      this.namespacesRequested = true;
      // `create`, not apply: a namespace of that name that is not ours stops the run instead of being adopted.
      await runner.run(kubectl(t, ['create', '-f', '-'], 'create the grid namespaces', { input: toYaml(namespaces) }));
      await runner.run(kubectl(t, ['create', '-f', '-'], 'create the grid pods', { input: toYaml(pods) }));
    });
    const ips: Record<EndpointId, string> = Object.fromEntries(workload.hosts.map((h) => [h.id, h.ip!]));
    const nodeOf: Record<EndpointId, string> = {};
    await guard.run('wait-workloads-ready', async () => {
      for (const ns of real) await runner.run(waitSpec(t, ['-n', ns, 'wait', '--for=condition=Ready', 'pod', '--all'], POD_TIMEOUT_S, `wait for the pods in ${ns}`));
      for (const [logical, ns] of Object.entries(names.namespaceOf)) {
        const r = await runner.run(kubectl(t, ['-n', ns, 'get', 'pods', '-o', 'json'], `read the pod IPs in ${ns}`));
        const expected = workload.pods.filter((p) => p.namespace === logical);
        if (runner.dryRun) {
          for (const p of expected) (ips[podId(p)] = `<ip of ${podId(p)}>`), (nodeOf[podId(p)] = nodes[p.node % nodes.length]!);
          continue;
        }
        const found = parseGridPods(r.stdout, ns, expected);
        Object.assign(ips, found.ips);
        Object.assign(nodeOf, found.nodeOf);
      }
      const clusterPods = workload.pods.filter((p) => p.namespace === CLUSTER_NAMESPACE);
      if (clusterPods.length) {
        const r = await runner.run(kubectl(t, ['-n', CLUSTER_NAMESPACE, 'get', 'pods', '-l', DNS_SELECTOR, '-o', 'json'], 'find the cluster DNS pods (read only)'));
        for (const d of clusterPods) {
          if (runner.dryRun) {
            (ips[podId(d)] = `<ip of a ${DNS_SELECTOR} pod>`), (nodeOf[podId(d)] = '<its node>');
            continue;
          }
          const pod = pickDnsPod(r.stdout, d);
          ips[podId(d)] = pod.ip;
          nodeOf[podId(d)] = pod.node;
        }
      }
    });
    this.addresses = { ips, nodeOf };
    return this.addresses;
  }

  /** Replaces the policies: the previous set deleted namespace by namespace, then `set` applied server-side. */
  async install(set: PolicySet): Promise<PolicyInstallReport> {
    const started = performance.now();
    const names = this.requireNames();
    const { policies } = set;
    const real = rewritePolicies(policies, names);
    const extra = [...new Set(policies.map((p) => p.metadata.namespace))].filter((ns) => !(ns in names.namespaceOf) && !this.extraNamespaces.has(ns)).map((ns) => renderExtraNamespace(ns, names));
    validateManifests([...extra, ...real]);
    const t = this.c.provider.target;
    const runner = this.c.runner;
    const selector = `${RUN_LABEL}=${names.runId}`;
    const modelState = await this.c.guard.run('apply-policies', async () => {
      if (extra.length) {
        for (const n of extra) this.extraNamespaces.add(n.metadata!.labels!.ns!);
        await runner.run(kubectl(t, ['create', '-f', '-'], `create ${extra.map((n) => n.metadata!.name).join(', ')} (a namespace without pods the case's policies live in)`, { input: toYaml(extra) }));
      }
      // The previous set goes first, so a policy the new one does not name cannot linger. Namespace by namespace
      // (the run's own), not -A: a cluster-wide delete needs cluster-wide RBAC and could reach another run's
      // objects should a label ever be shared.
      for (const ns of this.policyNamespaces()) {
        await runner.run(kubectl(t, ['-n', ns, 'delete', 'networkpolicies', '-l', selector, '--ignore-not-found', '--wait=true'], `delete the previous case's policies in ${ns}`));
      }
      if (real.length) {
        await runner.run(kubectl(t, ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'], `apply ${real.length} NetworkPolicies (server-side)`, { input: toListJson(real) }));
      }
      return { policiesApplied: real.length, policyNamespaces: [...new Set(real.map((p) => p.metadata.namespace))].join(' ') };
    });
    return { modelState, installMs: performance.now() - started };
  }

  /** The command one probe runs (the dry-run plan shows a few). */
  probeCommand(flow: Flow, timeoutMs: number): { spec: CommandSpec; tool: ProbeTool } {
    const names = this.requireNames();
    const w = this.workload!;
    const src: WorkloadPod | undefined = podOf(w, flow.from);
    const dst = podOf(w, flow.to);
    const ip = this.addresses?.ips[flow.to];
    if (!src || !(src.namespace in names.namespaceOf) || !dst || !ip || src.ports.length === 0) {
      throw new BenchError('internal', `probe ${flow.from} -> ${flow.to}: not a probe the kind/cluster grid can make (grid pods to grid or DNS pods)`);
    }
    const first = src.ports[0]!;
    return planProbeCommand({
      target: this.c.provider.target,
      namespace: names.namespaceOf[src.namespace]!,
      pod: src.name,
      container: containerName(first.containerPort, first.protocol),
      ip,
      port: flow.port,
      protocol: flow.protocol,
      timeoutMs,
      dns: dst.namespace === CLUSTER_NAMESPACE,
    });
  }

  async probe(flow: Flow, timeoutMs: number): Promise<Attempt> {
    const { spec, tool } = this.probeCommand(flow, timeoutMs);
    return parseProbeResult(await this.c.runner.run(spec), tool);
  }

  namespaces(): string[] {
    return this.namespacesRequested ? Object.values(this.names?.namespaceOf ?? {}) : [];
  }

  /** Deletes the namespaces, selected by the run label only. */
  async teardown(clusterStays: boolean): Promise<void> {
    if (!clusterStays || !this.namespacesRequested) return;
    this.c.progress?.step('deleting the grid namespaces');
    await this.c.cleanupRunner.run(
      kubectl(this.c.provider.target, ['delete', 'namespace', '-l', `${RUN_LABEL}=${this.c.runId}`, '--ignore-not-found', '--wait=true', '--timeout=180s'], 'delete the grid namespaces', { timeoutMs: 200_000 }),
    );
  }

  keepNote(): KeepNote {
    const n = this.names;
    return { namespaces: Object.values(n?.namespaceOf ?? {}), examples: ['get pods -A -l pod -o wide'], note: "the last case's policies are still applied", label: n ? 'grid namespaces' : undefined };
  }

  /** Every namespace of the run that can hold a policy: the workload's and the pod-less ones created so far. */
  private policyNamespaces(): string[] {
    const names = this.requireNames();
    return [...new Set([...Object.values(names.namespaceOf), ...[...this.extraNamespaces].map((ns) => realNamespace(names, ns))])];
  }

  private requireNames(): GridNames {
    if (!this.names) throw new BenchError('internal', 'the grid is not up');
    return this.names;
  }
}
