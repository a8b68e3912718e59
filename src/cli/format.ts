// Terminal rendering of a run's result: one table a person can read at a glance.
import type { RunResult } from '../results/schema.js';
import { METRICS } from '../results/schema.js';

export const us = (ns: number | null | undefined, digits = 1) => (ns === null || ns === undefined || Number.isNaN(ns) ? '–' : (ns / 1000).toFixed(digits));

export function table(rows: string[][], align: Array<'l' | 'r'> = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) => r.map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n');
}

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
    modelState: r.modelState,
    timings: r.timings,
    metrics: Object.fromEntries(
      METRICS.map((m) => {
        const x = r.metrics[m];
        return [m, x ? { ...x.summary, errors: x.errors, cpu: x.cpu } : null];
      }),
    ),
    errors: r.errors,
  };
}

export function formatRunSummary(r: RunResult, path: string | null): string {
  const out: string[] = [];
  out.push(`${r.meta.cni} on ${r.meta.backend}: ${r.meta.model.name} — ${r.meta.policy.count} policies (client rule ${r.meta.policy.matchPosition}), ${r.meta.topology.placement}`);
  out.push(`  ${r.meta.model.description}`);
  if (!r.policiesEnforced) out.push(`  NetworkPolicy is NOT enforced by this data plane: the policies were accepted and ignored.`);
  const state = Object.entries(r.modelState).map(([k, v]) => `${k}=${String(v)}`).join(', ');
  if (state) out.push(`  data plane state: ${state}`);
  const overflow = r.modelState.policyMapOverflow;
  if (typeof overflow === 'string') out.push(`  POLICY MAP OVERFLOW: ${overflow}; the client was ${String(r.modelState.overflowClientVerdict ?? 'not probed')} afterwards`);
  out.push('');
  const rows: string[][] = [['metric (µs)', 'n', 'p50', 'p50 95% CI', 'p90', 'p99', 'p99 95% CI', 'p999', 'errors', 'CPU µs/op: all CPUs (probe client+server)']];
  for (const m of METRICS) {
    const x = r.metrics[m];
    if (!x) {
      rows.push([LABEL[m], '–', '–', '', '', '', '', '', '', '']);
      continue;
    }
    const s = x.summary;
    const errs = Object.values(x.errors).reduce((a, b) => a + b, 0);
    const ci = (p: [number | null, number | null]) => `${us(p[0])}–${us(p[1])}`;
    const cpu = x.cpu ? `${x.cpu.totalUsPerOp.toFixed(1)} (${x.cpu.probeClientUsPerOp.toFixed(1)}+${(x.cpu.probeServerUsPerOp ?? 0).toFixed(1)})` : '–';
    rows.push([LABEL[m], String(s.count), us(s.p50), ci(s.ci95.p50), us(s.p90), us(s.p99), ci(s.ci95.p99), us(s.p999), String(errs), cpu]);
  }
  out.push(table(rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  out.push('');
  const t = r.timings;
  const sec = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(2)}s`);
  out.push(`  setup ${sec(t.setupMs)}, policy install ${sec(t.policyInstallMs)}, measure ${sec(t.measureMs)}, teardown ${sec(t.teardownMs)}, total ${sec(t.totalMs)}`);
  for (const e of r.errors) out.push(`  ERROR (${e.stage}${e.kind ? `, ${e.kind}` : ''}): ${e.message}`);
  if (path) out.push(`  result: ${path}`);
  return out.join('\n');
}
