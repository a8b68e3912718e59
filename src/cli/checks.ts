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

/**
 * Settings only the local backend reads (its models write the rules themselves): on a real cluster the agents pick
 * their own. Given there, they are refused in one wording rather than ignored.
 */
const LOCAL_ONLY: Record<string, string> = {
  iptablesBackend: "Felix and kube-proxy pick the node's iptables flavour themselves (kind records Felix's choice as modelState.iptablesBackend)",
};

export const isLocalOnlySetting = (key: string): boolean => key in LOCAL_ONLY;

/** The one refusal of a setting that only the local backend reads. */
export function localOnlyProblem(where: string, key: string, backend: BackendName): Problem {
  return { where, message: `only for the local backend, whose models write the rules themselves; on ${backend} ${LOCAL_ONLY[key] ?? 'nothing reads it'}. Leave it out, or use --backend local` };
}

/**
 * The target, the CNI on this backend (the no-CNI floor exists only where data planes are modelled), Services where
 * the backend cannot run them as asked, and `given` settings (flags or scenario keys) only the local backend reads.
 */
export function backendProblems(
  backend: BackendName,
  config: Pick<RunConfig, 'context' | 'kubeconfig' | 'cni'> & Partial<Pick<RunConfig, 'services' | 'endpointsPerService'>>,
  given: readonly { key: string; where: string }[] = [],
): Problem[] {
  const d = BACKEND_DESCRIPTORS[backend];
  const services: Problem[] = [];
  if (config.services !== undefined && !d.services) services.push({ where: '--services', message: `runs on the local backend only for now (the ${backend} backend does not create Services yet), got ${config.services}` });
  if (config.services !== undefined && d.services && (config.endpointsPerService ?? 1) > d.services.endpointsPerServiceMax) {
    services.push({ where: '--endpoints-per-service', message: `at most ${d.services.endpointsPerServiceMax} on ${backend}${d.onKubernetes ? ': every endpoint there is a real server pod on the server\'s node' : ''}, got ${config.endpointsPerService}` });
  }
  if (d.onKubernetes) for (const g of given) if (isLocalOnlySetting(g.key)) services.push(localOnlyProblem(g.where, g.key, backend));
  const floor = BACKEND_DESCRIPTORS[backend].onKubernetes && cniEntry(config.cni).floor === true;
  const unsupported = floor ? { where: '--cni', message: `'${config.cni}' has no real CNI on ${backend}; use the local backend for the no-policy-engine floor` } : checkBackendCni(backend, config.cni);
  return [...targetProblems(backend, config), ...(unsupported ? [unsupported] : []), ...services];
}
