// The benchmark workload on a cluster: the provider's cluster, the session's load pods (./session.ts), its install
// with the barrier, its measurements. The enforce deployment (./changes.ts) builds on this one.
import type { PolicySet } from '../../policy/generate.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import { podId, type Flow, type Workload, type WorkloadAddresses } from '../../workload/workload.js';
import type { MeasureSettings, PolicyInstallReport } from '../types.js';
import type { K8sDeployment, K8sPlaneContext } from './deployment.js';
import { CLIENT_POD, FORTIO_CONTAINER } from './manifests.js';
import type { KeepNote, ProviderDescription } from './provider.js';
import { K8sServices } from './services.js';
import { DRY_RUN_NODES } from './session.js';

/** The benchmark workload on a cluster: the session's load pods, its install with the barrier, its measurements. */
export class BenchmarkDeployment implements K8sDeployment {
  /** What the provider found out about the data plane (ProvisionedCluster.modelState), merged into the install's. */
  private provisioned: Record<string, string | number | boolean> = {};

  constructor(private readonly c: K8sPlaneContext) {}

  describe(_cluster: ProviderDescription, benchmark: string): string {
    return benchmark;
  }

  fit(workload: Workload): Workload {
    return workload;
  }

  async up(workload: Workload): Promise<WorkloadAddresses> {
    const { provider, guard, session } = this.c;
    const cluster = await provider.provision(guard, { checkKubeletMetrics: true });
    this.c.agents.splice(0, this.c.agents.length, ...cluster.agents);
    if (cluster.enforcesPolicy !== undefined) session.setEnforcesPolicy(cluster.enforcesPolicy);
    if (cluster.kubeletMetrics === false) session.disableCadvisor();
    this.provisioned = cluster.modelState ?? {};
    const picked = await guard.run('check-context', async () => cluster.place(this.c.config.placement));
    if (picked) this.c.nodeCount = picked.nodeCount;
    await guard.run('create-workloads', () => session.createWorkloads(picked?.placement ?? DRY_RUN_NODES));
    // The load pods are the session's own (a Deployment's server, the client pods); the server's address is known.
    const server = workload.pods.find((p) => p.role === 'server');
    return server ? { ips: { [podId(server)]: session.serverIp }, nodeOf: { [podId(server)]: session.placement?.serverNode ?? '' } } : { ips: {}, nodeOf: {} };
  }

  async install(set: PolicySet): Promise<PolicyInstallReport> {
    const report = await this.c.guard.run('apply-policies', async () => {
      const r = await this.c.session.installPolicies(set);
      // Into the session's own object: measure() keeps adding to it after this returns.
      Object.assign(r.modelState, this.provisioned);
      return r;
    });
    if (this.c.config.services === undefined) return report;
    // --services: after the policies are enforced, the Service set; from then on the load connects to its ClusterIP.
    const { session, provider } = this.c;
    const node = provider.info.nodeCgroups && session.placement ? { provider: provider.info.nodeCgroups.provider, node: session.placement.clientNode } : undefined;
    const services = new K8sServices({ runner: this.c.runner, target: provider.target, names: session.names, config: this.c.config, kubeProxy: provider.info.kubeProxy, nodeExec: node, progress: this.c.progress, signal: this.c.opts.signal, probeIntervalMs: this.c.opts.probeIntervalMs, backends: { placement: session.placement ?? { serverNode: '<server-node>', clientNode: '<client-node>' }, versions: this.c.versions } });
    const { record, front } = await this.c.guard.run('apply-services', () => services.install(session.serverIp));
    session.setFront(front);
    return { ...report, services: record };
  }

  measure(_flow: Flow, metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    return this.c.guard.run('measure', () => this.c.session.measure(metric, settings));
  }

  namespaces(): string[] {
    return this.c.session.createdNamespaces();
  }

  async teardown(clusterStays: boolean): Promise<void> {
    if (!clusterStays) return;
    this.c.progress?.step('deleting the run namespaces');
    await this.c.session.deleteNamespaces();
  }

  keepNote(): KeepNote {
    const n = this.c.session.names;
    return {
      namespaces: [n.serverNamespace, n.clientNamespace],
      examples: this.c.provider.info.deletesCluster
        ? ['get pods -A -o wide', `-n ${n.clientNamespace} exec -it ${CLIENT_POD} -c ${FORTIO_CONTAINER} -- fortio load -n 100 ${this.c.session.url}`]
        : [`get pods -n ${n.clientNamespace} -o wide`],
    };
  }
}
