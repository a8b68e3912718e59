// What a person reads after `bench enforce --workload FILE`: per change, the policy, the flows it flips on this data
// plane, the ones watched, time to enforcement with its resolution, the agent's own time, the fail-open window. Pure.
import { describeFlow } from './workload-changes.js';
import type { EnforceWorkloadResult, WorkloadChangeResult } from './workload-result.js';

const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));
const ci = (c: [number | null, number | null]) => `[${f(c[0])}, ${f(c[1])}]`;

/** A time to enforcement as a number only where its resolution is within 10% of it; else its bound. */
export function enforcedFigure(p50: number | null, resolutionMs: number | null): string {
  if (p50 === null || !Number.isFinite(p50)) return '—';
  if (resolutionMs === null || resolutionMs <= 0.1 * p50) return `${f(p50)} ms`;
  return `≤ ${f(p50 + resolutionMs)} ms (resolution ${f(resolutionMs, 2)} ms is over 10% of it)`;
}

function changeLines(r: EnforceWorkloadResult, c: WorkloadChangeResult): string[] {
  const lines = [`${c.change}: NetworkPolicy ${c.policy} ${c.op === 'remove' ? 'deleted from' : 'added to'} the live data plane (${c.why})`];
  const sample = c.affected.slice(0, 3).map(describeFlow);
  const where = r.meta.model.enforcesPolicy ? `on ${r.meta.cni}` : 'under the spec (where a policy engine enforces it)';
  lines.push(`  flips ${c.affectedCount} of the ${c.candidates} TCP flows it can decide (into or out of the pods it selects) ${where}${sample.length ? `, e.g. ${sample.join('; ')}` : ''}`);
  lines.push(`  watched              ${c.probed.map(describeFlow).join('; ')}`);
  if (c.noEffect) {
    lines.push(`  NO EFFECT: ${c.noEffect.reason}`);
    return lines;
  }
  const s = c.summary;
  if (!s || s.repetitions === 0) {
    lines.push('  not measured (the run stopped before this change)');
    return lines;
  }
  if (s.enforcedMs.count === 0) lines.push(`  not enforced within ${r.meta.probe.deadlineMs} ms in any of ${s.repetitions} repetitions`);
  else {
    lines.push(
      `  time to enforcement  p50 ${enforcedFigure(s.enforcedMs.p50, s.resolutionMedianMs)} ${ci(s.enforcedMs.ci95.p50)}   max ${f(s.enforcedMs.max)} ms   (n=${s.enforcedMs.count}; the first watched flow to show its new verdict)`,
      ...(c.probed.length > 1 && s.enforcedAllMs.count ? [`  all watched flows    p50 ${enforcedFigure(s.enforcedAllMs.p50, s.resolutionMs)} ${ci(s.enforcedAllMs.ci95.p50)}   max ${f(s.enforcedAllMs.max)} ms   (the last of the ${c.probed.length} to show its new verdict)`] : []),
      r.meta.backend === 'local'
        ? `  agent (update())     p50 ${f(s.agentMs.p50)} ms ${ci(s.agentMs.ci95.p50)}   (the model's own time to write the change)`
        : `  API call (kubectl)   p50 ${f(s.agentMs.p50)} ms ${ci(s.agentMs.ci95.p50)}   (kubectl's start to its return; the agents' own work is not seen from here)`,
      `  resolution           median ${f(s.resolutionMedianMs, 2)} ms, worst ${f(s.resolutionMs, 2)} ms (bracket between the last old-verdict and the first new-verdict probe start)`,
    );
  }
  if (s.notEnforced) lines.push(`  ${s.notEnforced} of ${s.repetitions} repetitions: no watched flow showed its new verdict within ${r.meta.probe.deadlineMs} ms`);
  if (s.preconditionFailures) lines.push(`  ${s.preconditionFailures} of ${s.repetitions} repetitions: a watched flow did not show its old verdict before the change (see the result file)`);
  if (s.failOpenMs) {
    lines.push(
      s.failOpenRepetitions === 0
        ? '  fail-open            none (no probe of a flow it denies connected after the change was handed over)'
        : `  fail-open            ${s.failOpenRepetitions} of ${s.repetitions} repetitions; window p50 ${f(s.failOpenMs.p50)} ms, max ${f(s.failOpenMs.max)} ms`,
    );
  }
  return lines;
}

export function formatWorkloadEnforce(r: EnforceWorkloadResult, path: string | null): string {
  const m = r.meta;
  const lines = [
    `bench enforce ${r.runId}: workload ${m.workload.name} (${m.workload.pods} pods, ${m.workload.endpoints} endpoints, ${m.workload.policies} policies) on ${m.cni} (${m.model.name}), ${m.repetitions} repetitions, ${m.backend} backend`,
    `probing: a TCP connect every ${m.probe.intervalUs} µs per watched flow, each with a ${m.probe.timeoutMs} ms timeout (${m.probe.timeoutFrom}); enforced = ${m.probe.settle} consecutive probes with the new verdict; clock ${m.probe.clock}`,
  ];
  if (!m.model.enforcesPolicy) lines.push('', `NOT ENFORCED: ${m.model.name} has no policy engine; the changes below have no effect on it (not a timeout).`);
  for (const c of r.changes) lines.push('', ...changeLines(r, c));
  for (const e of r.errors) lines.push('', `error (${e.stage}): ${e.message}`);
  if (path) lines.push('', `every probe outcome: ${path}`);
  return lines.join('\n');
}

/** The --json document of one data plane's run: per change, the policy, the flows and the figures. */
export function workloadEnforceDocument(r: EnforceWorkloadResult, path: string | null) {
  return {
    runId: r.runId,
    cni: r.meta.cni,
    status: r.status,
    path,
    changes: r.changes.map((c) => ({
      change: c.change,
      policy: c.policy,
      why: c.why,
      affectedCount: c.affectedCount,
      probed: c.probed,
      noEffect: c.noEffect,
      enforcedMs: c.summary ? { p50: c.summary.enforcedMs.p50, ci95: c.summary.enforcedMs.ci95.p50, max: c.summary.enforcedMs.max, count: c.summary.enforcedMs.count } : null,
      resolutionMs: c.summary ? { median: c.summary.resolutionMedianMs, worst: c.summary.resolutionMs } : null,
      agentMs: c.summary ? c.summary.agentMs.p50 : null,
      failOpen: c.summary?.failOpenMs ? { repetitions: c.summary.failOpenRepetitions, p50Ms: c.summary.failOpenMs.p50, maxMs: c.summary.failOpenMs.max } : null,
    })),
    errors: r.errors,
  };
}
