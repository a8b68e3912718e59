// bench sweep --workload FILE: the workload read and its flows chosen for every data plane of the matrix (as each
// point will choose them), so a bad file, a --flow naming no pod or a workload the local backend cannot hold
// exits 2 before any work. The matrix then has the workload's one policy count and records how flows are chosen.
import { InputError, type Problem } from '../../errors.js';
import type { SweepConfig } from '../../sweep/config.js';

export async function prepareWorkloadMatrix(config: SweepConfig, flags: { flow?: string[]; flows?: string }): Promise<{ notes: string[] } | { problems: Problem[] }> {
  const { prepareRunCluster } = await import('../../run/prepare-cluster.js');
  const { loadWorkload } = await import('../../workload/load.js');
  if (config.base.backend === 'auto') config.base.backend = 'local';
  const notes: string[] = [];
  const problems: Problem[] = [];
  for (const cni of config.matrix.cnis) {
    try {
      const { notes: n } = await prepareRunCluster({ ...config.base, cni }, flags);
      notes.push(...n.map((x) => `note (${cni}): ${x}`));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      // The same problem for every data plane (a bad file, a bad --flow) is said once.
      for (const p of e.problems) if (!problems.some((q) => q.where === p.where && q.message === p.message)) problems.push(p);
    }
  }
  if (problems.length) return { problems };
  const w = loadWorkload(config.base.workload!);
  const flows = flags.flows === undefined ? undefined : Number(flags.flows);
  config.matrix.policies = [w.policies.length];
  config.matrix.workload = { name: w.name, ...(flags.flow?.length ? { flow: flags.flow } : {}), ...(flows === undefined ? {} : { flows }) };
  return { notes };
}
