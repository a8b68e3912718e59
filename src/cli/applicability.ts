// Settings given for a run that nothing in it reads: a data plane's own setting on another CNI (the catalogue says
// which settings each CNI's agent reads), a setting of one measure on the other. Refused where no point of the run
// reads them; in a sweep whose points differ, accepted where some do, with a note saying which.
import { cniEntry, DATA_PLANE_SETTINGS, type DataPlaneSetting } from '../config/cnis.js';
import { CNIS, type CniName, type RunConfig } from '../config/schema.js';
import type { Problem } from '../errors.js';

export type Measure = RunConfig['measure'];

/** The settings only one measure reads: latency runs (bench run, latency sweeps) or enforce runs. */
export const MEASURE_SETTINGS: Record<Measure, readonly string[]> = {
  latency: ['samples', 'sampleBudgetMs', 'metrics', 'warmup', 'concurrency', 'rounds', 'timeoutMs'],
  enforce: ['enforceRepetitions', 'changes', 'intervalUs', 'probeTimeoutMs', 'deadlineMs', 'settle'],
};

/** A setting given by the user: its key, and where (the flag, or the scenario file's key). */
export interface GivenSetting {
  key: string;
  where: string;
}

const isDataPlaneSetting = (key: string): key is DataPlaneSetting => (DATA_PLANE_SETTINGS as readonly string[]).includes(key);
/**
 * The CNIs whose run reads `key`: their agent's own settings and, with Services, kube-proxy's — whose iptables mode
 * writes with the node's iptables flavour (`iptablesBackend`) beside every CNI that runs kube-proxy.
 */
const readers = (key: DataPlaneSetting, cnis: readonly CniName[], services = false) =>
  cnis.filter((c) => cniEntry(c).settings?.includes(key) || (services && key === 'iptablesBackend' && kubeProxyMayUseIptables(c)));

function kubeProxyMayUseIptables(cni: CniName): boolean {
  const p = cniEntry(cni).serviceProxy;
  return p.kind === 'kube-proxy' && p.modes.includes('iptables');
}

/** Problems for settings no point reads; notes for settings only some CNIs of a sweep read. */
export function inapplicableSettings(given: readonly GivenSetting[], run: { cnis: readonly CniName[]; measure: Measure; command: string; services?: boolean }): { problems: Problem[]; notes: string[] } {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const other: Measure = run.measure === 'latency' ? 'enforce' : 'latency';
  for (const g of given) {
    if (MEASURE_SETTINGS[other].includes(g.key)) {
      problems.push({ where: g.where, message: `belongs to ${other} measurements (${other === 'enforce' ? "bench enforce, or a sweep with measure: enforce" : 'bench run, or a sweep with measure: latency'}); this ${run.command} measures ${run.measure}, so nothing would read it` });
    } else if (isDataPlaneSetting(g.key)) {
      const some = readers(g.key, run.cnis, run.services);
      const kubeProxy = g.key === 'iptablesBackend' && !run.services && run.cnis.some(kubeProxyMayUseIptables) ? ' (with --services, kube-proxy in iptables mode would)' : '';
      if (some.length === 0) problems.push({ where: g.where, message: `applies to ${readers(g.key, CNIS).join(', ')} only; this ${run.command} measures ${run.cnis.join(', ')}, so nothing would read it${kubeProxy}` });
      const ignoring = run.cnis.filter((c) => !some.includes(c));
      if (some.length > 0 && ignoring.length > 0) notes.push(`note: ${g.where} applies to the ${some.join(', ')} points only (${ignoring.join(', ')} ${ignoring.length === 1 ? 'ignores' : 'ignore'} it)`);
    }
  }
  return { problems, notes };
}

/** The settings given as flags (each under its flag) and in a scenario file (each under `file: key`). */
export function givenSettings(flags: Record<string, unknown>, flagOf: (key: string) => string, scenario?: { path: string; keys: readonly string[] }): GivenSetting[] {
  const fromFlags = Object.keys(flags).filter((k) => flags[k] !== undefined).map((key) => ({ key, where: flagOf(key) }));
  const fromFile = (scenario?.keys ?? []).filter((k) => flags[k] === undefined).map((key) => ({ key, where: `${scenario!.path}: ${key}` }));
  return [...fromFlags, ...fromFile];
}
