// The cluster backend: an existing cluster, named explicitly by --context and/or --kubeconfig (./provider.ts). It
// creates only its own labelled namespaces (and what is in them) and removes them afterwards; it never creates,
// changes or deletes a cluster, a CNI or anything outside those namespaces. It measures the CNI the cluster already
// runs, and refuses a --cni that contradicts it.
//
// Exercised on the machine this was written on: the plan (--dry-run) and the control flow with an injected
// runner. Not exercised there: a real cluster (none was reachable).
import type { WorkloadShape } from '../../workload/workload.js';
import type { ProviderDescription } from '../k8s/provider.js';
import { K8sBackend, backendRunners, type K8sBackendOptions } from '../k8s/backend.js';
import { PEER_POD_CAP } from '../k8s/manifests.js';
import { loadVersions } from '../k8s/versions.js';
import { ExistingCluster } from './provider.js';

export { ClusterTargetError, confirmCni, pickNodes, planFelixConfigurationRead } from './provider.js';
export { DRY_RUN_NODES } from '../k8s/backend.js';

export type ClusterBackendOptions = K8sBackendOptions;

/** How the refusal without a target names the command, by the workload it was for. */
const WHO: Partial<Record<WorkloadShape, string>> = { 'verify-grid': 'verify on the cluster backend' };

export class ClusterBackend extends K8sBackend {
  constructor(opts: ClusterBackendOptions) {
    const runners = backendRunners(opts);
    const provider = new ExistingCluster({ cni: opts.config.cni, runId: opts.runId, runner: runners.runner, context: opts.config.context, kubeconfig: opts.config.kubeconfig, who: WHO[opts.shape ?? 'benchmark'] });
    super(provider, { ...opts, ...runners, versions: opts.versions ?? loadVersions() });
  }

  protected benchmarkDescription(d: ProviderDescription): string {
    return `${d.runs}; connect measured by the static cb-probe in the client pod; at most ${PEER_POD_CAP} of the filler policies' peers run as pods (the others' selectors match no pod)`;
  }
}
