// Sweep configuration: a matrix (CNIs × policy counts × repetitions) from flags and/or a scenario file, plus the
// settings every point shares, validated by the same rules as `bench run` (one config per point is checked by
// resolveRunConfig, so a sweep accepts exactly what a run accepts).
import { uniqueInOrder } from '../collections.js';
import { CNIS, MAX_POLICIES, MAX_SERVICES, type CniName, type RunConfig } from '../config/schema.js';
import { kubeProxyMismatch } from '../config/cnis.js';
import { checkSettingValue, resolveRunConfig, wholeNumberFlag, type LoadedScenario, type RawFlags } from '../config/load.js';
import type { Problem } from '../errors.js';
import { DEFAULT_ADAPTIVE } from '../stats/sequential.js';
import { DEFAULT_REPETITIONS, type SweepMatrix } from './plan.js';

export interface SweepConfig {
  matrix: SweepMatrix;
  /** A run config of the matrix's first point: the shared settings, validated. */
  base: RunConfig;
}

const asList = <T>(v: T | T[] | undefined): T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

function splitFlag(v: string | boolean | string[] | undefined): string[] | undefined {
  if (v === undefined || typeof v === 'boolean') return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

/** Each item of a list flag checked by its setting's rule, in the settings' words. */
function parseList<T>(key: 'cni' | 'policies' | 'services', items: string[], problems: Problem[]): T[] {
  const out: T[] = [];
  for (const item of items) {
    const r = checkSettingValue(key, item);
    if (r.problem) problems.push(r.problem);
    else out.push(r.value as T);
  }
  return out;
}

/** Flags win over the scenario; `--cni a,b` and `--policies 0,100` take comma-separated lists. */
export function resolveSweepConfig(flags: RawFlags, scenario?: LoadedScenario): { config?: SweepConfig; problems: Problem[] } {
  const problems: Problem[] = [];
  const { cni: cniFlag, policies: policiesFlag, services: servicesFlag, repetitions: repFlag, maxRepetitions: maxFlag, ...rest } = flags;
  const s = scenario?.scenario;
  const cniItems = splitFlag(cniFlag);
  const cnis = uniqueInOrder(cniItems ? parseList<CniName>('cni', cniItems, problems) : (asList(s?.cni) ?? []));
  const policyItems = splitFlag(policiesFlag);
  const policies = uniqueInOrder(policyItems ? parseList<number>('policies', policyItems, problems) : (asList(s?.policies) ?? [0])).sort((a, b) => a - b);
  const serviceItems = splitFlag(servicesFlag);
  const serviceList = serviceItems ? parseList<number>('services', serviceItems, problems) : asList(s?.services);
  const services = serviceList ? uniqueInOrder(serviceList).sort((a, b) => a - b) : undefined;
  if (serviceItems?.length === 0) problems.push({ where: '--services', message: `empty list: give at least one Service count (0..${MAX_SERVICES}), e.g. 0,1000,10000` });
  // Adaptive repetitions judge the curves along the one dimension the sweep varies (adaptive.ts sweepDimension):
  // the Service count at one policy count, or the policy count at one Service count. Varying both, a look would
  // have to decide a surface; such a sweep runs a fixed number (3 unless given).
  const repGiven = typeof repFlag === 'string' ? repFlag : undefined;
  const bothVary = (services?.length ?? 0) > 1 && policies.length > 1;
  if (bothVary && (repGiven?.trim() ?? s?.repetitions) === 'auto') problems.push({ where: '--repetitions', message: `a sweep over several Service counts and several policy counts runs a fixed number of repetitions (adaptive ones decide curves along one dimension: give one policy count to sweep --services, or one Service count to sweep --policies), got 'auto'` });
  // A workload has one policy set: no curve against policy count for an adaptive look to decide (a look finds
  // every verdict undecidable and stops after the first batch), so its sweep runs a fixed number, 3 unless given.
  const workload = typeof rest.workload === 'string' || s?.workload !== undefined;
  if (workload && (repGiven?.trim() ?? s?.repetitions) === 'auto') problems.push({ where: '--repetitions', message: `with --workload a sweep runs a fixed number of repetitions (adaptive ones decide verdicts of curves against the policy count; a workload has one policy set), got 'auto'` });
  if (workload && policyItems) problems.push({ where: '--policies', message: 'the policies come from the --workload file; drop --policies' });
  if (workload && services) problems.push({ where: '--services', message: 'not with --workload (a workload is measured pod to pod)' });
  const fixedByDefault = (bothVary || workload) && s?.repetitions === undefined;
  const { repetitions, adaptive } = repetitionsOf(repGiven ?? (fixedByDefault ? '3' : undefined), typeof maxFlag === 'string' ? maxFlag : undefined, s, problems);
  if (cniItems?.length === 0) problems.push({ where: '--cni', message: `empty list: give at least one of ${CNIS.join(', ')}` });
  if (policyItems?.length === 0) problems.push({ where: '--policies', message: `empty list: give at least one policy count (0..${MAX_POLICIES}), e.g. 0,100,1000` });
  if (cnis.length === 0 && !cniItems) problems.push({ where: '--cni', message: `required: a comma-separated list of ${CNIS.join(', ')} (or cni: in the scenario)`, missing: true });

  // Validate the shared settings through the run rules, with the matrix's first point standing in.
  let scenarioRest: LoadedScenario | undefined;
  if (scenario) {
    const { cni: _c, policies: _p, services: _s, ...settings } = scenario.scenario;
    scenarioRest = { path: scenario.path, scenario: settings };
  }
  const { config: base, problems: runProblems } = resolveRunConfig({ ...rest, cni: cnis[0] ?? 'none', policies: String(policies[0] ?? 0), ...(services ? { services: String(services[0]) } : {}) }, scenarioRest);
  problems.push(...runProblems);
  // Every CNI of the matrix runs beside the kube-proxy mode asked for (the first one was checked with the base).
  if (base?.kubeProxy) {
    for (const cni of cnis.slice(1)) {
      const mismatch = kubeProxyMismatch(cni, base.kubeProxy);
      if (mismatch) problems.push({ where: '--kube-proxy', message: `${mismatch}, got "${base.kubeProxy}"` });
    }
  }
  if (problems.length || !base) return { problems };
  return { config: { matrix: { cnis, policies, ...(services ? { services } : {}), repetitions, seed: base.seed, ...(adaptive ? { adaptive } : {}) }, base }, problems };
}

/**
 * `--repetitions auto` (the default) or a whole number; `--max-repetitions` only with auto. Flags win over the
 * scenario's `repetitions` and `maxRepetitions`.
 */
function repetitionsOf(flag: string | undefined, maxFlag: string | undefined, s: LoadedScenario['scenario'] | undefined, problems: Problem[]): Pick<SweepMatrix, 'repetitions' | 'adaptive'> {
  const given = flag?.trim() ?? s?.repetitions ?? DEFAULT_REPETITIONS;
  const max = wholeNumberFlag('--max-repetitions', maxFlag, { min: 2, max: 100 }, s?.maxRepetitions ?? DEFAULT_ADAPTIVE.max, problems);
  if (given !== 'auto') {
    if (maxFlag !== undefined) problems.push({ where: '--max-repetitions', message: `only with --repetitions auto (a fixed --repetitions ${String(given)} runs every point that many times)` });
    if (typeof given === 'number') return { repetitions: given };
    const text = given.trim();
    if (!/^[-+]?\d+$/.test(text)) {
      problems.push({ where: '--repetitions', message: `expected a whole number or 'auto', got '${given}'` });
      return { repetitions: 1 };
    }
    return { repetitions: wholeNumberFlag('--repetitions', text, { min: 1, max: 100 }, 1, problems) };
  }
  return { repetitions: max, adaptive: { ...DEFAULT_ADAPTIVE, min: Math.min(DEFAULT_ADAPTIVE.min, max), max } };
}
