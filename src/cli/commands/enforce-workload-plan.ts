// `bench enforce --workload FILE --backend kind|cluster --dry-run`: the plan, per data plane — the cluster, the
// workload's namespaces and pods (the watched sources with the probe container), all its policies, then per change
// its starting state, the watches (cb-probe behind `kubectl exec -i`) and the change itself — through the one
// runner, nothing executed. One repetition is shown; the others repeat it.
import type { BackendName, CniName } from '../../config/schema.js';
import type { WorkloadChangePlan } from '../../enforce/workload-changes.js';
import type { PolicySet, Workload } from '../../workload/workload.js';
import type { WatchSettings } from '../../probe/native.js';
import type { ClusterWorkload } from '../../workload/cluster.js';

import type { ParsedEnforceFlags } from './enforce-flags.js';

export interface WorkloadEnforcePlanInput {
  config: ParsedEnforceFlags;
  backend: BackendName;
  cnis: readonly CniName[];
  cluster: ClusterWorkload;
  plan: WorkloadChangePlan;
  /** Per data plane, the workload as the backend runs it (layoutOnCluster) and its notes. */
  layouts: ReadonlyMap<CniName, { workload: Workload; notes: string[] }>;
}

export async function planWorkloadEnforce(o: WorkloadEnforcePlanInput): Promise<string> {
  const { resolve } = await import('node:path');
  const { DryRunRunner, renderPlan } = await import('../../exec/runner.js');
  const { newRunId } = await import('../../identity/run-id.js');
  const { createBackend } = await import('../../backends/factory.js');
  const { enforceConfigOf, MIN_TIMEOUT_MS, requireChanges } = await import('../../enforce/run.js');
  const { changeStates } = await import('../../enforce/workload-run.js');
  const { changeLabel } = await import('../../enforce/workload-changes.js');
  const e = enforceConfigOf(o.config);
  const lead = Math.max(20, Math.ceil((10 * e.intervalUs) / 1000));
  const settings = (until: 'open' | 'closed'): WatchSettings => ({ intervalUs: e.intervalUs, timeoutMs: e.probeTimeoutMs === 'auto' ? MIN_TIMEOUT_MS : e.probeTimeoutMs, maxMs: lead + e.deadlineMs, settle: e.settle, until });
  const out: string[] = [];
  for (const cni of o.cnis) {
    const runId = newRunId();
    const runner = new DryRunRunner();
    const layout = o.layouts.get(cni)!;
    const planned = o.plan.byCni.get(cni) ?? [];
    const plane = await createBackend({ config: { ...o.config, cni }, backend: o.backend, runId, shape: 'cluster', workloadChanges: true, runner, cleanupRunner: runner, outDir: resolve(o.config.out, runId) });
    const workload = plane.fit(layout.workload);
    const watches: string[] = [];
    try {
      const changes = requireChanges(plane);
      const addresses = await plane.up(workload);
      const full: PolicySet = { policies: o.cluster.policies, peers: [] };
      await plane.install(full);
      let current = full;
      for (const c of planned) {
        const states = changeStates(o.cluster, c.change);
        if (states.before.policies.length !== current.policies.length) await changes.setPolicies(states.before);
        for (const f of c.probed) watches.push(`${changeLabel(c.change)}: ${changes.watchCommand(f.from, addresses.ips[f.to]!, f.port, settings(f.after ? 'open' : 'closed'))}`);
        await changes.setPolicies(states.after);
        current = states.after;
      }
    } finally {
      await plane.down();
    }
    const running = workload.pods.filter((p) => p.presence === 'endpoint' && !p.hostNetwork).length;
    const enforces = plane.model.enforcesPolicy ? '' : `# ${plane.model.name} enforces no policy: each change is made and its flows watched across it (NO EFFECT expected)\n`;
    out.push(
      `# enforce plan for run ${runId}: workload ${o.cluster.name} on ${cni}, ${o.backend} backend (dry run: nothing was executed)\n` +
        `# ${running} pods in ${workload.namespaces.length} namespaces, ${o.cluster.policies.length} policies; ${planned.length} change${planned.length === 1 ? '' : 's'} (${planned.map((c) => changeLabel(c.change)).join(', ') || 'none'}), ${e.repetitions} repetitions (one shown; a state a change starts from is waited for before it)\n` +
        `# clock: ${requireChanges(plane).clockDescription}\n` +
        enforces +
        [...o.plan.notes, ...layout.notes].map((n) => `# note: ${n}\n`).join('') +
        `${renderPlan(runner.log)}\n# watch probes (${requireChanges(plane).watchNote}):\n${watches.map((w) => `#   ${w}`).join('\n')}\n`,
    );
  }
  return out.join('\n');
}
