// The flags of `bench enforce` and their checks, shared by the synthetic changes (./enforce.ts) and --workload
// (./enforce-workload.ts), which enforce.ts loads on demand: here, so neither imports the other back.
import { Option } from 'commander';
import { backendDescriptor } from '../../backends/factory.js';
import { resolveRunConfig } from '../../config/load.js';
import { POLICY_CHANGES, SERVICE_CHANGES, type BackendName, type RunConfig } from '../../config/schema.js';
import type { Problem } from '../../errors.js';
import { backendProblems } from '../checks.js';
import { commandDefaults, settingFlag, settingValues, settingsOf, type FlagList } from '../settings-flags.js';
import { givenSettings, inapplicableSettings } from '../applicability.js';

export type EnforceFlags = Record<string, string | boolean | undefined>;

export const enforceFlags = (): FlagList => [
  'cni',
  'policies',
  'enforceRepetitions',
  'changes',
  'backend',
  'intervalUs',
  'probeTimeoutMs',
  'deadlineMs',
  'settle',
  'matchPosition',
  'services',
  'endpointsPerService',
  'servicePosition',
  'kubeProxy',
  'bpfPolicyDebug',
  'seed',
  'pinCpu',
  'context',
  'kubeconfig',
  'out',
  'json',
  'dryRun',
  'workload',
  new Option('--change <op:ns/policy>', 'with --workload: remove:NS/POLICY (delete it from the live data plane) or add:NS/POLICY (start without it, add it); repeatable; default: a few chosen (seeded)').argParser((v: string, prev: string[] = []) => [...prev, v]),
  new Option('--flow <ns/pod->ns/pod:port>', 'with --workload: watch this TCP flow across the changes that flip it (repeatable; default: up to 2 flipped flows per change, seeded)').argParser((v: string, prev: string[] = []) => [...prev, v]),
];
/** The enforce settings, --workload aside (it branches to ./enforce-workload.ts). */
const SETTINGS = settingsOf(enforceFlags()).filter((k) => k !== 'workload');

/** The settings as enforce takes them (its --repetitions is enforceRepetitions), with the backend's checks. */
export type ParsedEnforceFlags = RunConfig & { repetitions: number };

/** Every problem at once, in the wording every command uses. */
export function parseEnforceFlags(flags: EnforceFlags): { ok: true; value: ParsedEnforceFlags } | { ok: false; problems: Problem[] } {
  const { config, problems } = resolveRunConfig(settingValues(flags, SETTINGS, 'enforce'), undefined, { defaults: commandDefaults('enforce'), flagOf: (k) => settingFlag(k, 'enforce') });
  if (!config) return { ok: false, problems };
  // With --services and no --changes, the Service changes are measured too.
  const measuresServiceChanges = config.backend === 'auto' || backendDescriptor(config.backend)!.serviceChanges;
  if (config.services !== undefined && flags.changes === undefined && measuresServiceChanges) config.changes = [...POLICY_CHANGES, ...SERVICE_CHANGES];
  const serviceChanges = config.changes.filter((c) => (SERVICE_CHANGES as readonly string[]).includes(c));
  if (serviceChanges.length && config.services === undefined) problems.push({ where: '--changes', message: `${serviceChanges.join(', ')} change a Service set, and there is none: add --services N (N filler Services beside the probed one; 0 for none)` });
  if (config.backend !== 'auto') problems.push(...enforceBackendProblems(config.backend, config, flags));
  problems.push(...inapplicableSettings(givenSettings(settingValues(flags, SETTINGS, 'enforce'), (k) => settingFlag(k, 'enforce')), { cnis: [config.cni], measure: 'enforce', command: 'enforce' }).problems);
  const twice = config.changes.filter((c, i) => config.changes.indexOf(c) !== i);
  if (twice.length) problems.push({ where: '--changes', message: `${[...new Set(twice)].join(', ')} given more than once in '${String(flags.changes)}'; list each change once (each runs once per repetition)` });
  return problems.length ? { ok: false, problems } : { ok: true, value: { ...config, repetitions: config.enforceRepetitions } };
}

/** The target and the CNI on this backend, and --pin-cpu, which places processes of this machine only. */
export function enforceBackendProblems(backend: BackendName, config: RunConfig, flags: EnforceFlags): Problem[] {
  const problems = backendProblems(backend, config);
  const serviceChanges = config.changes.filter((c) => (SERVICE_CHANGES as readonly string[]).includes(c));
  if (serviceChanges.length && !backendDescriptor(backend)!.serviceChanges) problems.push({ where: '--changes', message: `${serviceChanges.join(', ')} are measured on the local backend only for now (the ${backend} backend runs Services for bench run, not yet Service changes in enforce)` });
  if (backendDescriptor(backend)!.onKubernetes && flags.pinCpu !== undefined) problems.push({ where: '--pin-cpu', message: `applies to the local backend only (on ${backend} the probes run in pods), got '${String(flags.pinCpu)}'` });
  return problems;
}
