// The enforce summary a person reads: per change, time to enforcement (p50/p99 with CIs), the agent's own
// time, fail-open windows, and the resolution those figures can claim. Pure.
import { backendDescriptor } from '../backends/factory.js';
import type { EnforceResult } from './result.js';
import { capacityOverflowOf } from '../results/capacity-overflow.js';
import { CHANGE_SPECS } from './plan.js';

const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));
const ci = (c: [number | null, number | null]) => `[${f(c[0])}, ${f(c[1])}]`;

/** kind/cluster: the CNI's own figure and the clock bound of this change's observations. */
function k8sLines(r: EnforceResult, change: string): string[] {
  const obs = r.observations.filter((o) => o.change === change && o.k8s);
  if (!obs.length) return [];
  const cni = obs.map((o) => o.k8s!.cniMetric).filter((c): c is NonNullable<typeof c> => c !== null && c.countDelta > 0);
  const bounds = obs.map((o) => o.k8s!.clock?.boundNs ?? null).filter((b): b is number => b !== null);
  const note = obs.map((o) => o.k8s!.cniMetricNote).find((x) => x) ?? 'none';
  return [
    cni.length
      ? `  CNI's own figure     ${cni[0]!.metric}: mean ${f(cni.reduce((a, c) => a + c.sumDeltaMs, 0) / cni.reduce((a, c) => a + c.countDelta, 0))} ms over ${cni.length} of ${obs.length} repetitions`
      : `  CNI's own figure     not recorded: ${note}`,
    `  clock                ${bounds.length && Math.max(...bounds) === 0 ? 'one clock (verified on every watch)' : `probe times within ±${f(Math.max(...bounds) / 1e6, 2)} ms of this machine's clock (worst watch)`}`,
  ];
}

/** Service changes: what the agent wrote per change (the partial sync, the elements, the map entries), from the first repetition. */
function writtenLine(r: EnforceResult, change: string): string[] {
  if (CHANGE_SPECS[change as keyof typeof CHANGE_SPECS]?.family !== 'service') return [];
  const o = r.observations.find((x) => x.change === change);
  const w = o ? Object.entries(o.agent.changed).map(([k, v]) => `${k} ${v}`) : [];
  return w.length ? [`  written per change   ${w.join(', ')} (only what differs: the agent's partial sync or map writes)`] : [];
}

/** Service changes: the apply alone (slowest node), beside the diff of the whole set the model computes first. */
function applyNote(r: EnforceResult, change: string): string {
  if (CHANGE_SPECS[change as keyof typeof CHANGE_SPECS]?.family !== 'service') return '';
  const apply = r.observations.filter((o) => o.change === change).map((o) => o.agent.applyMs).sort((a, b) => a - b);
  return apply.length ? `   (apply alone, slowest node: median ${f(apply[Math.floor((apply.length - 1) / 2)])} ms)` : '';
}

export function formatEnforceSummary(r: EnforceResult, path: string | null): string {
  const m = r.meta;
  const lines = [
    `bench enforce ${r.runId}: ${m.cni} (${m.model.name}), ${m.policy.count} filler policies, ${m.repetitions} repetitions, ${m.backend} backend`,
    `probing: a TCP connect every ${m.probe.intervalUs} µs, each with a ${m.probe.timeoutMs} ms timeout (${m.probe.timeoutFrom}); enforced = ${m.probe.settle} consecutive probes with the new verdict; clock ${m.probe.clock}`,
  ];
  if (r.services) {
    const st = r.services.state;
    const size = ['services', 'endpoints', 'natRules', 'nftRules', 'mapElements', 'mapEntries'].filter((k) => typeof st[k] === 'number').map((k) => `${k} ${st[k]}`);
    lines.push(`Services: ${r.services.description}; first (full) sync ${r.services.installMs === null ? '—' : `${r.services.installMs} ms`}${size.length ? ` for ${size.join(', ')}` : ''}`);
  }
  // As bench run says it: a data plane over its capacity keeps running with part of its policy.
  const overflow = capacityOverflowOf(r.modelState);
  const changeOverflow = r.observations.find((o) => o.capacityOverflow)?.capacityOverflow;
  if (overflow) lines.push('', `CAPACITY OVERFLOW at install: ${overflow.summary}; the client was ${overflow.clientVerdict ?? 'not probed'} afterwards${overflow.advice ? ` (${overflow.advice})` : ''}`);
  else if (changeOverflow) lines.push('', `CAPACITY OVERFLOW during the changes: ${changeOverflow}`);
  if (r.notEnforced) {
    const services = r.summary.length ? ' (the Service changes below are the service data plane\'s, which runs without one)' : '';
    lines.push('', `NOT ENFORCED: ${r.notEnforced.reason}. No policy change was measured: there is nothing that enforces policy here${services}.`);
  }
  const interrupted = r.errors.some((e) => e.kind === 'interrupted');
  for (const s of r.summary) {
    lines.push('', `${s.change}: ${s.title}`);
    if (s.repetitions === 0) {
      lines.push(`  not measured (${interrupted ? 'interrupted' : 'the run stopped before this change'})`);
      continue;
    }
    if (s.repetitions < m.repetitions) lines.push(`  ${s.repetitions} of ${m.repetitions} repetitions measured (${interrupted ? 'interrupted' : 'the run stopped'} before the rest)`);
    if (s.enforcedMs.count === 0) {
      lines.push(`  not enforced within ${m.probe.deadlineMs} ms in any of ${s.repetitions} repetitions`);
    } else {
      lines.push(
        `  time to enforcement  p50 ${f(s.enforcedMs.p50)} ms ${ci(s.enforcedMs.ci95.p50)}   p99 ${f(s.enforcedMs.p99)} ms ${ci(s.enforcedMs.ci95.p99)}   max ${f(s.enforcedMs.max)} ms   (n=${s.enforcedMs.count})`,
        ...(s.cniAddMs && s.cniAddMs.count
          ? [`  of which CNI ADD     p50 ${f(s.cniAddMs.p50)} ms ${ci(s.cniAddMs.ci95.p50)}   (the pod's interface and routes, before the agent is told; the change starts with it)`]
          : []),
        ...writtenLine(r, s.change),
        !backendDescriptor(m.backend)?.onKubernetes
          ? `  ${CHANGE_SPECS[s.change].family === 'service' ? 'agent (diff + apply)' : 'agent (update())    '} p50 ${f(s.agentMs.p50)} ms ${ci(s.agentMs.ci95.p50)}   p99 ${f(s.agentMs.p99)} ms${applyNote(r, s.change)}`
          : `  API call (kubectl)   p50 ${f(s.agentMs.p50)} ms ${ci(s.agentMs.ci95.p50)}   p99 ${f(s.agentMs.p99)} ms   (part of the time to enforcement)`,
        ...k8sLines(r, s.change),
        `  resolution           median ${f(s.resolutionMedianMs, 2)} ms, worst ${f(s.resolutionMs, 2)} ms (bracket between the last old-verdict and the first new-verdict probe start)`,
      );
    }
    // Why a verdict was not the change's: the policy did not fit (the data plane runs with part of it).
    const over = r.observations.filter((o) => o.change === s.change && o.capacityOverflow).length;
    const why = over ? `: the data plane was over its capacity in ${over} of them, so the verdict was the overflow's, not the change's` : '';
    if (s.notEnforced) lines.push(`  ${s.notEnforced} of ${s.repetitions} repetitions: new verdict not seen within ${m.probe.deadlineMs} ms${why}`);
    if (s.preconditionFailures) lines.push(`  ${s.preconditionFailures} of ${s.repetitions} repetitions: the old verdict was not in place before the change${overflow || over ? ' (the data plane was over its capacity: see CAPACITY OVERFLOW above)' : ' (see the result file)'}`);
    if (over && !s.notEnforced && !s.preconditionFailures) lines.push(`  over capacity after ${over} of ${s.repetitions} repetitions of this change (see CAPACITY OVERFLOW above)`);
    if (s.failOpenMs && CHANGE_SPECS[s.change].family === 'service') {
      lines.push(
        s.failOpenRepetitions === 0
          ? `  blackhole            none (no connection reached the removed endpoint after the change was handed over)`
          : `  blackhole            ${s.failOpenRepetitions} of ${s.repetitions} repetitions: connections still reached the removed endpoint for p50 ${f(s.failOpenMs.p50)} ms, max ${f(s.failOpenMs.max)} ms after the change`,
      );
    } else if (s.failOpenMs) {
      lines.push(
        s.failOpenRepetitions === 0
          ? `  fail-open            none (no probe that must be denied connected)`
          : `  fail-open            ${s.failOpenRepetitions} of ${s.repetitions} repetitions; window p50 ${f(s.failOpenMs.p50)} ms, max ${f(s.failOpenMs.max)} ms`,
      );
    }
  }
  for (const e of r.errors) lines.push('', `error (${e.stage}): ${e.message}`);
  if (path) lines.push('', `every probe outcome: ${path}`);
  return lines.join('\n');
}
