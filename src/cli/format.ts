// Terminal rendering of a run's result: one table a person can read at a glance.
import type { MetricResult, RunResult } from '../results/schema.js';
import { worstFlow } from '../run/run-flows.js';
import { METRICS } from '../results/schema.js';
import { cpuNote, cpuSummaryLine, cpuText, resolutionText } from '../results/cpu.js';
import { capacityOverflowOf } from '../results/capacity-overflow.js';
import { ONE_RUN_NOTE, type RepetitionSummary } from '../run/repetitions.js';
import { textTable } from '../text.js';

export const us = (ns: number | null | undefined, digits = 1) => (ns === null || ns === undefined || Number.isNaN(ns) ? '–' : (ns / 1000).toFixed(digits));

const LABEL: Record<(typeof METRICS)[number], string> = {
  connect: 'connect (new TCP connection)',
  crr: 'CRR (connect+req+resp+close)',
  rr: 'RR (request on kept connection)',
};

export function summaryJson(r: RunResult) {
  return {
    runId: r.runId,
    status: r.status,
    backend: r.meta.backend,
    cni: r.meta.cni,
    model: r.meta.model.name,
    policies: r.meta.policy.count,
    policiesEnforced: r.policiesEnforced,
    cpuPlacement: r.meta.cpuPlacement ?? null,
    ciLevel: 'within-run' as const,
    note: ONE_RUN_NOTE,
    modelState: r.modelState,
    services: r.services ?? null,
    timings: r.timings,
    metrics: Object.fromEntries(
      METRICS.map((m) => {
        const x = r.metrics[m];
        return [m, x ? { ...x.summary, errors: x.errors, cpu: x.cpu, stability: x.stability ?? null } : null];
      }),
    ),
    errors: r.errors,
    ...(r.flows ? { workload: r.meta.workload, flows: r.flows.map((f) => ({ from: f.from, to: f.to, port: f.port, protocol: f.protocol, reason: f.reason, rules: f.rules, allowed: f.allowed, metrics: Object.fromEntries(METRICS.map((m) => [m, f.metrics[m] ? { ...f.metrics[m].summary, errors: f.metrics[m].errors } : null])) })) } : {}),
  };
}

/** bench run --workload: one row per measured flow, then the worst one. */
function flowTable(r: RunResult): string[] {
  const flows = r.flows ?? [];
  if (!flows.length) return [];
  const p50 = (m: MetricResult | null) => us(m?.summary.p50);
  const rows: string[][] = [['flow', 'chosen as', 'rules in path', 'connect p50 µs', 'CRR p50 µs', 'RR p50 µs', 'errors']];
  for (const f of flows) {
    const errs = METRICS.reduce((n, m) => n + Object.values(f.metrics[m]?.errors ?? {}).reduce((a, b) => a + b, 0), 0);
    rows.push([`${f.from} -> ${f.to}:${f.port}${f.allowed ? '' : ' (denied)'}`, f.reason, String(f.rules), p50(f.metrics.connect), p50(f.metrics.crr), p50(f.metrics.rr), String(errs)]);
  }
  const worst = worstFlow(flows);
  return [
    textTable(rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r']),
    `  worst flow (highest connect p50): ${worst.from} -> ${worst.to}:${worst.port}, ${worst.rules} rules in its path; the metrics table below is its`,
    '',
  ];
}

export function formatRunSummary(r: RunResult, path: string | null): string {
  const out: string[] = [];
  const w = r.meta.workload;
  out.push(
    w
      ? `${r.meta.cni} on ${r.meta.backend}: ${r.meta.model.name} — workload ${w.name}: ${w.policies} policies, ${w.pods} pods (${w.endpoints} endpoints, the rest address-only) on ${w.nodes} nodes, ${r.flows?.length ?? 0} flows`
      : `${r.meta.cni} on ${r.meta.backend}: ${r.meta.model.name} — ${r.meta.policy.count} policies (client rule ${r.meta.policy.matchPosition}), ${r.meta.topology.placement}`,
  );
  out.push(`  ${r.meta.model.description}`);
  if (!r.policiesEnforced) out.push(`  NetworkPolicy is NOT enforced by this data plane: the policies were accepted and ignored.`);
  const state = Object.entries(r.modelState).map(([k, v]) => `${k}=${String(v)}`).join(', ');
  if (state) out.push(`  data plane state: ${state}`);
  const svc = r.services;
  if (svc) {
    const install = svc.installMs === null ? '' : `, first sync ${(svc.installMs / 1000).toFixed(1)} s`;
    out.push(`  Services: ${svc.count + 1} (${svc.count} others, ${svc.endpointsPerService} endpoint(s) each; the server's ${svc.position}), client connects to ${svc.clusterIP}:${svc.port} — ${svc.description}${install}`);
    out.push(`  service data plane state: ${Object.entries(svc.state).map(([k, v]) => `${k}=${String(v)}`).join(', ')}`);
  }
  const overflow = capacityOverflowOf(r.modelState);
  if (overflow) out.push(`  CAPACITY OVERFLOW: ${overflow.summary}; the client was ${overflow.clientVerdict ?? 'not probed'} afterwards`);
  out.push('');
  out.push(...flowTable(r));
  const rows: string[][] = [['metric (µs)', 'n', 'p50', 'p50 95% CI', 'p90', 'p99', 'p99 95% CI', 'p999', 'errors', 'CPU µs/op (resolution)']];
  for (const m of METRICS) {
    const x = r.metrics[m];
    if (!x) {
      rows.push([LABEL[m], '–', '–', '', '', '', '', '', '', '']);
      continue;
    }
    const s = x.summary;
    const errs = Object.values(x.errors).reduce((a, b) => a + b, 0);
    const ci = (p: [number | null, number | null]) => `${us(p[0])}–${us(p[1])}`;
    const cpu = cpuSummaryLine(r, x);
    rows.push([LABEL[m], String(s.count), us(s.p50), ci(s.ci95.p50), us(s.p90), us(s.p99), ci(s.ci95.p99), us(s.p999), String(errs), cpu]);
  }
  out.push(textTable(rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  out.push('');
  out.push(`  ${ONE_RUN_NOTE}`);
  const cpuAbout = cpuNote(r);
  if (cpuAbout) out.push(`  ${cpuAbout}`);
  for (const m of METRICS) {
    const st = r.metrics[m]?.stability;
    if (st?.flagged) out.push(`  UNSTABLE ${m}: ${st.reason} — the CI above is around a mixture, not one steady state`);
  }
  const pl = r.meta.cpuPlacement;
  if (pl) out.push(`  CPU placement: ${pl.mode}${pl.cpus ? ` (CPU ${pl.cpus.join(',')})` : ''} — ${pl.reason}`);
  const rounds = r.meta.probe.rounds ?? 1;
  if (rounds > 1) out.push(`  measured in ${rounds} interleaved rounds of connect, CRR and RR (--rounds), so all three see the same machine conditions`);
  const t = r.timings;
  const sec = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(2)}s`);
  out.push(`  setup ${sec(t.setupMs)}, policy install ${sec(t.policyInstallMs)}, measure ${sec(t.measureMs)}, teardown ${sec(t.teardownMs)}, total ${sec(t.totalMs)}`);
  for (const e of r.errors) out.push(`  ERROR (${e.stage}${e.kind ? `, ${e.kind}` : ''}): ${e.message}`);
  if (path) out.push(`  result: ${path}`);
  return out.join('\n');
}

/** Terminal table of N repetitions of one point: run-level values and CIs, the within-run CI beside them. */
export function formatRepetitionSummary(s: RepetitionSummary, results: RunResult[], groupDir: string | null): string {
  const out: string[] = [];
  const first = results[0]!;
  out.push(`${first.meta.cni} on ${first.meta.backend}: ${first.meta.model.name} — ${first.meta.policy.count} policies, ${results.length} repetitions (${results.filter((r) => r.status === 'ok').length} ok)`);
  out.push('');
  const ci = (p: [number, number]) => `${us(p[0])}–${us(p[1])}`;
  const rows: string[][] = [['metric (µs)', 'runs', 'p50', 'p50 95% CI (runs)', 'p50 per run', 'p50 within-run CI', 'p99', 'p99 95% CI (runs)', 'CPU µs/op (resolution)']];
  for (const m of METRICS) {
    const x = s.metrics[m];
    if (!x) {
      rows.push([LABEL[m], '0', '–', '', '', '', '', '', '']);
      continue;
    }
    rows.push([LABEL[m], String(x.runs), us(x.p50.value), ci(x.p50.ci95), x.p50.perRun.map((v) => us(v)).join(' '), ci(x.p50.withinRunCi95), us(x.p99.value), ci(x.p99.ci95), x.cpuUsPerOp ? `${cpuText(x.cpuUsPerOp.value, x.cpuUsPerOp.resolutionUsPerOp)} (${resolutionText(x.cpuUsPerOp.resolutionUsPerOp)})` : '–']);
  }
  out.push(textTable(rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  out.push('');
  out.push(`  ${s.note}`);
  for (const m of METRICS) {
    const u = s.metrics[m]?.unstable ?? [];
    if (u.length) out.push(`  UNSTABLE ${m} in ${u.length} of ${s.metrics[m]!.runs} runs (${u.map((x) => x.runId).join(', ')}); e.g. ${u[0]!.reason}`);
  }
  const pl = first.meta.cpuPlacement;
  if (pl) out.push(`  CPU placement: ${pl.mode}${pl.cpus ? ` (CPU ${pl.cpus.join(',')})` : ''} — ${pl.reason}`);
  for (const r of results) for (const e of r.errors) out.push(`  ERROR run ${r.runId} (${e.stage}${e.kind ? `, ${e.kind}` : ''}): ${e.message}`);
  if (groupDir) out.push(`  results: ${groupDir} (summary.json and one result.json per repetition)`);
  return out.join('\n');
}
