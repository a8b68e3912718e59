// The kind backend: a throw-away multi-node kind cluster per run (./provider.ts) with a real CNI installed from
// the pinned inputs in clusters/versions.yaml, the same policy set as every backend, fortio as the load generator.
//
// Exercised on the machine this was written on (no Docker engine, no internet): the complete plan (--dry-run),
// every generated manifest against its schema, and the control flow under an injected runner (failure at each
// step, diagnostics, teardown, cancellation). NOT exercised there: real kind/kubectl/helm/docker commands, the
// upstream manifests and charts themselves, and fortio's real output (the parser is tested against fixtures
// built from fortio's source, see src/backends/k8s/fixtures/README.md). The nightly workflow is what runs it.
import type { WorkloadShape } from '../../workload/workload.js';
import type { ProviderDescription } from '../k8s/provider.js';
import { K8sBackend, backendRunners, type K8sBackendOptions } from '../k8s/backend.js';
import type { ReadinessTimeouts } from '../k8s/cni.js';
import type { KindCni } from '../k8s/cni.js';
import { KIND_PEER_POD_CAP, type Placement } from '../k8s/manifests.js';
import { loadVersions, type Versions } from '../k8s/versions.js';
import { KindCluster } from './provider.js';

export { KIND_CLUSTER_RE, defaultCacheDir, defaultKubeconfigDir, deleteKindCluster, ensurePrivateDir, kindClusterName, planCniPluginsFetch, verifySha256File } from './provider.js';
export { controlPlaneAddressFrom, felixIptablesFlavour, kindProvider, planBrNetfilter, planImageLoad } from './node-plans.js';
export { findKindLeftovers, type KindLeftover } from './gc.js';

/** Images pulled once on the host and loaded into the nodes, by the workload the cluster will carry. */
const PRELOAD: Record<WorkloadShape, (v: Versions) => string[]> = {
  benchmark: (v) => [v.load.fortioImage, v.load.statImage],
  enforce: (v) => [v.load.fortioImage, v.load.statImage],
  'verify-grid': (v) => [v.verify.agnhostImage],
  // A replayed workload: agnhost serves its ports; fortio measures (bench run) the chosen flows.
  cluster: (v) => [v.verify.agnhostImage, v.load.fortioImage],
};

export interface KindBackendOptions extends K8sBackendOptions {
  readiness?: ReadinessTimeouts;
  /** Where downloaded CNI plugins are cached (default $XDG_CACHE_HOME or ~/.cache, then cni-bench). */
  cacheDir?: string;
  /** Where the cluster's kubeconfig goes (default outside the results, see KindClusterOptions). */
  kubeconfigDir?: string;
  /** Images pulled once on the host and loaded into the nodes. Default: the load images. */
  preloadImages?: string[];
  /** The container engine kind drives (default from KIND_EXPERIMENTAL_PROVIDER). */
  engine?: string;
}

export class KindBackend extends K8sBackend {
  declare readonly provider: KindCluster;

  constructor(opts: KindBackendOptions) {
    const versions = opts.versions ?? loadVersions();
    const runners = backendRunners(opts);
    const provider = new KindCluster({
      cni: opts.config.cni,
      runId: opts.runId,
      ...runners,
      versions,
      outDir: opts.outDir,
      policyMapCapacity: opts.config.policyMapCapacity,
      progress: opts.progress,
      readiness: opts.readiness,
      cacheDir: opts.cacheDir,
      kubeconfigDir: opts.kubeconfigDir,
      // bench enforce --workload: the watched sources' probe container (busybox) too.
      preloadImages: opts.preloadImages ?? [...PRELOAD[opts.shape ?? 'benchmark'](versions), ...(opts.workloadChanges ? [versions.load.statImage] : [])],
      engine: opts.engine,
      kubeProxy: opts.config.kubeProxy,
    });
    super(provider, { ...opts, ...runners, versions });
  }

  get clusterName(): string {
    return this.provider.clusterName;
  }

  get kubeconfig(): string {
    return this.provider.kubeconfig;
  }

  get profile() {
    return this.provider.profile;
  }

  /** The worker nodes' names (kind names them from the cluster's). */
  get workerNodes(): string[] {
    return this.provider.workerNodes;
  }

  get placement(): Placement {
    const w = this.workerNodes;
    return { serverNode: w[0]!, clientNode: this.opts.config.placement === 'same-node' ? w[0]! : w[1]! };
  }

  protected benchmarkDescription(d: ProviderDescription): string {
    return `${d.runs}; load: ${this.opts.versions.load.fortioImage}; connect measured by the static cb-probe in the client pod; at most ${KIND_PEER_POD_CAP} of the filler policies' peers run as pods (evenly spaced over the fillers; the others' selectors match no pod), where the local backend gives every peer an address`;
  }

  /** The cluster with its CNI installed and ready, nothing of the run's own in it yet. */
  async upCluster(): Promise<void> {
    await this.provider.provision(this.ctx.guard);
  }
}

export type { KindCni };

