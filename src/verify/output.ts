// Machine-readable verification output: JSON (the verdict feeds the selection report's "enforces NetworkPolicy"
// column) and JUnit XML for CI, one <testcase> per policy case.
import type { GridLayout } from './grid.js';
import { renderMatrix } from './render.js';
import type { VerifyReport } from './run.js';

export function verifyJson(report: VerifyReport) {
  return {
    kind: 'cni-bench/verify',
    version: 1,
    backend: report.backend,
    cni: report.cni,
    model: report.model,
    startedAt: report.startedAt,
    settings: report.settings,
    verdict: report.verdict,
    timings: report.timings,
    ...(report.services ? { services: report.services } : {}),
    addresses: report.addresses.ips,
    cases: report.cases.map((c) => ({
      name: c.name,
      description: c.description,
      source: c.source,
      status: c.status,
      error: c.error,
      probes: c.probes.length,
      mismatches: c.mismatches,
      flaky: c.flaky,
      notes: c.notes,
      modelState: c.modelState,
      timings: c.timings,
      results: c.probes.map((p) => ({
        from: p.from,
        to: p.to,
        protocol: p.protocol,
        port: p.port,
        expected: p.allowed ? 'allow' : 'deny',
        observed: p.observed,
        attempts: p.attempts.length,
        reason: p.attempts[p.attempts.length - 1]?.reason ?? '',
      })),
    })),
  };
}

// XML 1.0 allows tab, newline, carriage return and code points from 0x20 up (minus surrogates and FFFE/FFFF).
const INVALID_XML = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function xmlEscape(text: string): string {
  return text
    .replace(INVALID_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const attrs = (a: Record<string, string | number>) =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join('');
const seconds = (ms: number) => (ms / 1000).toFixed(3);

export function verifyJunit(report: VerifyReport, layout: GridLayout): string {
  const failures = report.cases.filter((c) => c.status === 'fail').length;
  const errors = report.cases.filter((c) => c.status === 'error').length;
  const suite = `bench verify ${report.cni} (${report.backend}: ${report.model.name})`;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(`<testsuites${attrs({ name: 'bench verify', tests: report.cases.length, failures, errors, time: seconds(report.timings.totalMs) })}>`);
  out.push(`  <testsuite${attrs({ name: suite, tests: report.cases.length, failures, errors, skipped: 0, time: seconds(report.timings.casesMs), timestamp: report.startedAt.replace(/\.\d+Z$/, '') })}>`);
  out.push('    <properties>');
  for (const [name, value] of Object.entries({ backend: report.backend, cni: report.cni, model: report.model.name, verdict: report.verdict.text, 'verdict.kind': report.verdict.kind })) {
    out.push(`      <property${attrs({ name, value })}/>`);
  }
  out.push('    </properties>');
  for (const c of report.cases) {
    const t = c.timings.applyMs + c.timings.readyMs + c.timings.probeMs;
    out.push(`    <testcase${attrs({ name: c.name, classname: `verify.${report.cni}`, file: c.source.replace(/:\d+:\d+$/, ''), time: seconds(t) })}>`);
    if (c.status === 'fail') {
      const body = [
        ...c.mismatches.map((m) => `${m.kind}: ${m.from} -> ${m.to} ${m.protocol}/${m.port} (${m.reason})`),
        '',
        renderMatrix(layout, c.probes),
      ].join('\n');
      out.push(`      <failure${attrs({ type: 'mismatch', message: `${c.mismatches.length} of ${c.probes.length} probes differ from the NetworkPolicy specification` })}>${xmlEscape(body)}</failure>`);
    } else if (c.status === 'error') {
      out.push(`      <error${attrs({ type: 'error', message: c.error ?? 'error' })}>${xmlEscape(c.error ?? '')}</error>`);
    }
    const sysout = [c.description.trim(), ...c.notes.map((n) => `note: ${n}`), ...c.flaky.map((f) => `flaky (passed on retry): ${f.from} -> ${f.to} ${f.protocol}/${f.port}`)].join('\n');
    out.push(`      <system-out>${xmlEscape(sysout)}</system-out>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>');
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}
