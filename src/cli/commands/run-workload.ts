// bench run --workload FILE: the file read, the flows chosen (the default spread, or the --flow ones) and the
// cluster laid out for the backend (local: src/workload/replay.ts; kind/cluster: src/backends/k8s/workload-layout.ts)
// — all before any work, every problem at once (exit 2).
import type { RunConfig } from '../../config/schema.js';
import type { Problem } from '../../errors.js';
import type { RunWorkloadFlags } from '../../run/prepare-cluster.js';

export { prepareRunCluster, type RunWorkloadFlags } from '../../run/prepare-cluster.js';

/** Problems with the workload flags given without --workload. */
export function workloadFlagProblems(config: Pick<RunConfig, 'workload'>, flags: RunWorkloadFlags): Problem[] {
  if (config.workload !== undefined) return [];
  return [...(flags.flow?.length ? [{ where: '--flow', message: 'only with --workload FILE' }] : []), ...(flags.flows !== undefined ? [{ where: '--flows', message: 'only with --workload FILE' }] : [])];
}

/** Problems of settings that mean nothing with a workload (its policies come from the file), given explicitly. */
export function workloadConflicts(config: Pick<RunConfig, 'workload' | 'backend' | 'placement'>, given: Record<string, unknown>): Problem[] {
  if (config.workload === undefined) return [];
  const out: Problem[] = [];
  if (given.policies !== undefined) out.push({ where: '--policies', message: 'the policies come from the --workload file; drop --policies' });
  if (given.matchPosition !== undefined) out.push({ where: '--match-position', message: 'belongs to the generated benchmark policies; not with --workload' });
  if (given.placement !== undefined) out.push({ where: '--placement', message: 'a workload places its pods on their own nodes (the same-node flow shows that case); not with --workload' });
  return out;
}

