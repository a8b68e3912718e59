// What every command checks of its resolved settings against the backend that will run them, in one wording: the
// target a cluster backend needs (and that the others refuse), and whether the backend runs the CNI at all.
import { BACKEND_DESCRIPTORS } from '../backends/factory.js';
import { checkBackendCni } from '../backends/registry.js';
import { cniEntry } from '../config/cnis.js';
import type { BackendName, RunConfig } from '../config/schema.js';
import type { Problem } from '../errors.js';

/** What the chosen backend needs to be told about its target (the cluster backend: which cluster; the others: nothing). */
export function targetProblems(backend: BackendName, config: Pick<RunConfig, 'context' | 'kubeconfig'>): Problem[] {
  if (BACKEND_DESCRIPTORS[backend].needsTarget) {
    return config.context || config.kubeconfig ? [] : [{ where: '--context', message: 'the cluster backend needs an explicit --context NAME (or --kubeconfig FILE); it never guesses which cluster to use' }];
  }
  return (['context', 'kubeconfig'] as const).filter((flag) => config[flag] !== undefined).map((flag) => ({ where: `--${flag}`, message: `only for --backend cluster (this run uses the ${backend} backend)` }));
}

/** The target, and the CNI on this backend (the no-CNI floor exists only where data planes are modelled). */
export function backendProblems(backend: BackendName, config: Pick<RunConfig, 'context' | 'kubeconfig' | 'cni'>): Problem[] {
  const floor = BACKEND_DESCRIPTORS[backend].onKubernetes && cniEntry(config.cni).floor === true;
  const unsupported = floor ? { where: '--cni', message: `'${config.cni}' has no real CNI on ${backend}; use the local backend for the no-policy-engine floor` } : checkBackendCni(backend, config.cni);
  return [...targetProblems(backend, config), ...(unsupported ? [unsupported] : [])];
}
