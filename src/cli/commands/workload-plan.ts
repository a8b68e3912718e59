// `bench verify --workload FILE --backend kind|cluster --dry-run`: the plan, per data plane — the cluster, the
// workload's namespaces and pods, its policies, one example probe per protocol (the rest are the same command to
// other pods), the teardown — through the one runner, nothing executed.
import type { BackendName, CniName, RunConfig } from '../../config/schema.js';
import type { Flow, Workload } from '../../workload/workload.js';

export interface WorkloadPlanInput {
  config: RunConfig;
  backend: BackendName;
  cnis: readonly CniName[];
  /** The workload as the backend runs it (layoutOnCluster). */
  workload: Workload;
  name: string;
  flowChoice: string;
  notes: readonly string[];
  timeoutMs: number;
}

/** One flow per protocol: the plan shows the command each kind of probe runs. */
export function exampleFlows(flows: readonly Flow[]): Flow[] {
  const seen = new Map<string, Flow>();
  for (const f of flows) if (!seen.has(f.protocol)) seen.set(f.protocol, f);
  return [...seen.values()];
}

export async function planWorkloadVerify(o: WorkloadPlanInput): Promise<number> {
  const { resolve } = await import('node:path');
  const { DryRunRunner, renderPlan } = await import('../../exec/runner.js');
  const { newRunId } = await import('../../identity/run-id.js');
  const { createBackend } = await import('../../backends/factory.js');
  const out: string[] = [];
  for (const cni of o.cnis) {
    const runId = newRunId();
    const runner = new DryRunRunner();
    const plane = await createBackend({ config: { ...o.config, cni }, backend: o.backend, runId, shape: 'cluster', runner, cleanupRunner: runner, outDir: resolve(o.config.out, runId) });
    const workload = plane.fit(o.workload);
    try {
      await plane.up(workload);
      await plane.install(workload.policies);
      for (const f of exampleFlows(workload.flows)) await plane.probe(f, o.timeoutMs);
    } finally {
      await plane.down();
    }
    const running = workload.pods.filter((p) => p.presence === 'endpoint' && !p.hostNetwork).length;
    out.push(
      `# verify plan for run ${runId}: workload ${o.name} on ${cni}, ${o.backend} backend (dry run: nothing was executed)\n` +
        `# ${running} pods in ${workload.namespaces.length} namespaces, ${workload.policies.policies.length} policies; ${workload.flows.length} flows to probe (${o.flowChoice}); the example probes below stand for the rest\n` +
        o.notes.map((n) => `# note: ${n}\n`).join('') +
        `${renderPlan(runner.log)}\n`,
    );
  }
  process.stdout.write(out.join('\n'));
  return 0;
}
