// Terminal rendering of a verification: one compact matrix per case (sources down, destinations across, one
// character per port/protocol), the mismatches in words, and the verdict per CNI.
import type { GridLayout } from './grid.js';
import type { CaseResult, ProbeResult } from './expect.js';
import type { VerifyReport } from './run.js';
import { textTable } from '../text.js';

export const CELL = {
  connected: '.',
  blocked: 'x',
  /** connected, but the specification says deny */
  denyConnected: 'C',
  /** blocked, but the specification says allow */
  allowBlocked: 'B',
  notProbed: '-',
} as const;

const shortName = (id: string) => (id.includes('/') && id.startsWith('kube-system/') ? 'dns' : id);

/** Port/protocol order within a cell, per destination. */
function cellPorts(layout: GridLayout): Map<string, string[]> {
  const order = (ports: Array<{ protocol: string; containerPort: number }>) =>
    [...ports].sort((a, b) => (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : a.containerPort - b.containerPort)).map((p) => `${p.protocol}/${p.containerPort}`);
  return new Map([...layout.pods.map((p) => [p.id, order(p.ports)] as const), ...layout.externals.map((e) => [e.id, order(e.ports)] as const)]);
}

export function legend(layout: GridLayout): string {
  const ports = cellPorts(layout);
  const sample = (id: string | undefined) => (id ? ports.get(id)!.join(' ') : '');
  const pod = layout.pods.find((p) => p.client)?.id;
  const dns = layout.pods.find((p) => !p.client)?.id;
  const ext = layout.externals[0]?.id;
  return [
    `matrix: rows are sources, columns destinations; one character per port, in the order ${sample(pod)} (dns: ${sample(dns)}; external hosts: ${sample(ext)})`,
    `  ${CELL.connected} connected and ${CELL.blocked} blocked, both as the specification says;  ${CELL.denyConnected} connected but should be denied;  ${CELL.allowBlocked} blocked but should be allowed;  ${CELL.notProbed} not probed`,
  ].join('\n');
}

function cellChar(r: ProbeResult | undefined): string {
  if (!r) return CELL.notProbed;
  if (r.observed === 'connected') return r.allowed ? CELL.connected : CELL.denyConnected;
  return r.allowed ? CELL.allowBlocked : CELL.blocked;
}

export function renderMatrix(layout: GridLayout, probes: readonly ProbeResult[]): string {
  const ports = cellPorts(layout);
  const byKey = new Map(probes.map((p) => [`${p.from}|${p.to}|${p.protocol}/${p.port}`, p]));
  const sources = [...layout.pods.filter((p) => p.client).map((p) => p.id), ...layout.externals.map((e) => e.id)];
  const destinations = [...layout.pods.map((p) => p.id), ...layout.externals.map((e) => e.id)];
  const rows: string[][] = [['', ...destinations.map(shortName)]];
  for (const src of sources) {
    if (!probes.some((p) => p.from === src)) continue;
    rows.push([src, ...destinations.map((dst) => ports.get(dst)!.map((pp) => cellChar(byKey.get(`${src}|${dst}|${pp}`))).join(''))]);
  }
  return textTable(rows);
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const indent = (text: string, by = '      ') => text.split('\n').map((l) => (l ? by + l : l)).join('\n');

export function renderCase(layout: GridLayout, r: CaseResult, opts: { maxMismatches?: number } = {}): string {
  const max = opts.maxMismatches ?? 20;
  const label = r.status === 'pass' ? 'PASS ' : r.status === 'fail' ? 'FAIL ' : 'ERROR';
  const out: string[] = [];
  const detail =
    r.status === 'error'
      ? r.error ?? ''
      : `${r.probes.length} probes${r.mismatches.length ? `, ${r.mismatches.length} differ from the specification` : ''}; apply ${secs(r.timings.applyMs)}, probe ${secs(r.timings.probeMs)}`;
  out.push(`${label} ${r.name} — ${detail}`);
  out.push(indent(r.description.trim()));
  if (r.probes.length) out.push(indent(renderMatrix(layout, r.probes)));
  for (const m of r.mismatches.slice(0, max)) {
    out.push(`      ${m.kind}: ${m.from} -> ${m.to} ${m.protocol}/${m.port} (${m.reason}${m.attempts > 1 ? `, ${m.attempts} attempts` : ''})`);
  }
  if (r.mismatches.length > max) out.push(`      … and ${r.mismatches.length - max} more (see --json)`);
  if (r.flaky.length) out.push(`      flaky (passed on retry): ${r.flaky.map((f) => `${f.from} -> ${f.to} ${f.protocol}/${f.port}`).join(', ')}`);
  for (const n of r.notes) out.push(`      note: ${n}`);
  return out.join('\n');
}

export function renderHeader(report: Pick<VerifyReport, 'cni' | 'backend' | 'model'>, layout: GridLayout, caseCount: number): string {
  return [
    `bench verify: ${report.cni} on ${report.backend} — ${report.model.name}`,
    `  ${report.model.description}`,
    `  ${caseCount} cases on a grid of ${layout.pods.length} pods (${layout.namespaces.map((n) => n.name).join(', ')}) and ${layout.externals.length} external hosts`,
    legend(layout),
    '',
  ].join('\n');
}

export function renderSummary(report: VerifyReport): string {
  const v = report.verdict;
  const lines = [
    `${report.cni} on ${report.backend} (${report.model.name}): ${v.text}`,
    `  ${v.cases} cases, ${v.cases - v.failed} passed, ${v.failed} failed; ${v.probes} probes, ${v.expectedDeny} expected denies of which ${v.denyConnected} connected; ${secs(report.timings.totalMs)} (grid up ${secs(report.timings.setupMs)}, cases ${secs(report.timings.casesMs)}, teardown ${secs(report.timings.teardownMs)})`,
  ];
  if (report.services) {
    lines.push(`  through Services: every probe from a pod to a pod went to the destination's own ClusterIP (port + 10000) on ${report.services.dataPlane}, ${report.services.count} more Services beside; the verdicts are the backend pod's, after the translation`);
  }
  if (v.kind === 'not-enforced') {
    lines.push('  every connection the policies deny went through: this data plane has no NetworkPolicy engine (or it is not running)');
  }
  return lines.join('\n');
}
