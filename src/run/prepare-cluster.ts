// A cluster-shaped workload prepared for one data plane: the file read, the flows chosen (the default spread, or
// the --flow ones) as that data plane reads the policies, and the cluster laid out for the backend (local:
// src/workload/replay.ts; kind/cluster: src/backends/k8s/workload-layout.ts) — all
// before any work, every problem at once (InputError, exit 2). bench run --workload and each point of
// bench sweep --workload call it.
import { wholeNumberFlag } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { BenchError, InputError, type Problem } from '../errors.js';
import type { RunCluster } from './run.js';

/** The flags that choose a workload's measured flows. */
export interface RunWorkloadFlags {
  flow?: string[];
  flows?: string;
}

/** Reads the workload, chooses its flows and lays it out for the backend; InputError (exit 2) on any problem. */
export async function prepareRunCluster(config: RunConfig, flags: RunWorkloadFlags): Promise<{ cluster: RunCluster; notes: string[] }> {
  const file = config.workload!;
  const problems: Problem[] = [];
  const k = wholeNumberFlag('--flows', flags.flows, { min: 0, max: 100 }, 3, problems);
  if (flags.flows !== undefined && flags.flow?.length) problems.push({ where: '--flows', message: 'adds seeded random flows to the default ones; not with --flow' });
  if (problems.length) throw new InputError(problems);
  const { loadWorkload } = await import('../workload/load.js');
  const { flowKey, resolveFlowSpecs } = await import('../workload/flows.js');
  const { chooseFlows } = await import('../workload/choose-flows.js');
  const { replayWorkload } = await import('../workload/replay.js');
  const { POLICY_SEMANTICS, withoutInClusterIpBlocks } = await import('../workload/semantics.js');
  const w = loadWorkload(file);
  // Flows are chosen as this data plane reads the policies: where an ipBlock never selects a pod (Cilium), a flow
  // only an ipBlock admits is denied there, and is not one to measure.
  const view = POLICY_SEMANTICS[config.cni].ipBlockSelects === 'outside-cluster' ? { ...w, policies: withoutInClusterIpBlocks(w.policies) } : w;
  let named;
  if (flags.flow?.length) {
    const r = resolveFlowSpecs(flags.flow, w);
    if (r.flows.some((f) => f.protocol !== 'TCP')) r.problems.push({ where: '--flow', message: 'bench run measures TCP connections (connect, CRR, RR): name TCP flows' });
    if (r.problems.length) throw new InputError(r.problems);
    named = r.flows;
  }
  const choice = chooseFlows(view, { random: k, seed: config.seed, named });
  const flows = choice.flows.filter((f) => f.protocol === 'TCP');
  const left = choice.flows.length - flows.length;
  const notes = [...choice.notes, ...(left ? [`${left} non-TCP flow${left === 1 ? '' : 's'} left out: bench run measures TCP`] : [])];
  for (const f of flows) if (!f.allowed) notes.push(`${f.from} -> ${f.to} ${f.port}/${f.protocol}: the policies deny it on ${config.cni} (reference evaluator under its semantics); its connects will time out`);
  if (!flows.length) throw new InputError([{ where: file, message: `no allowed TCP flow between its pods to measure${choice.notes.length ? ` (${choice.notes.join('; ')})` : ''}; name one with --flow` }]);
  const { backendDescriptor } = await import('../backends/factory.js');
  const onK8s = backendDescriptor(config.backend)?.onKubernetes ?? false;
  let workload;
  let measured = flows;
  try {
    if (onK8s) {
      const { layoutOnCluster } = await import('../backends/k8s/workload-layout.js');
      const layout = layoutOnCluster(w, flows, { seed: config.seed, barrier: true });
      notes.push(...layout.notes);
      const kept = new Set(layout.workload.flows.map(flowKey));
      measured = flows.filter((f) => kept.has(flowKey(f)));
      if (!measured.length) throw new InputError([{ where: file, message: `no flow left to measure on ${config.backend}: ${layout.leftOut[0]?.why ?? 'none chosen'}; name one with --flow` }]);
      workload = layout.workload;
    } else workload = replayWorkload(w, flows.map((f) => ({ ...f, measured: true })));
  } catch (e) {
    if (e instanceof BenchError && e.kind === 'capacity') throw new InputError([{ where: file, message: e.message }]);
    throw e;
  }
  workload = { ...workload, flows: workload.flows.map((f) => ({ ...f, measured: true })) };
  return { cluster: { name: w.name, file, workload, flows: measured.map((f) => ({ from: f.from, to: f.to, port: f.port, protocol: f.protocol, reason: f.reason, rules: f.cost.rules, allowed: f.allowed })) }, notes };
}
