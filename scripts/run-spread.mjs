#!/usr/bin/env node
// Do consecutive runs agree? (issue 9: five consecutive `bench run --cni none` with default flags agree on
// connect, CRR and RR p50 within 10%.) Runs `bench run` N times in a row with the flags given after `--`, then
// prints each run's p50 per metric and the spread (max/min − 1) per metric.
//
//   sudo node scripts/run-spread.mjs [--runs 5] [--out DIR] [-- --cni none ...]
//
// Exit 0 when every metric's spread is within --within (default 10%), 1 otherwise.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dash = process.argv.indexOf('--');
const own = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const benchArgs = dash < 0 ? ['--cni', 'none'] : process.argv.slice(dash + 1);
const { values: args } = parseArgs({ args: own, options: { runs: { type: 'string', default: '5' }, out: { type: 'string' }, within: { type: 'string', default: '10' } } });
const runs = Number(args.runs);
const within = Number(args.within) / 100;
if (!(Number.isInteger(runs) && runs >= 2)) {
  console.error(`run-spread: --runs must be a whole number ≥ 2 (got ${args.runs})`);
  process.exit(2);
}
const out = resolve(args.out ?? join(root, 'results', `run-spread-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`));
mkdirSync(out, { recursive: true });

const rows = [];
for (let i = 1; i <= runs; i++) {
  const before = new Set(readdirSync(out));
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'run', ...benchArgs, '--out', out], { encoding: 'utf8' });
  const dir = readdirSync(out).find((d) => !before.has(d));
  if (r.status !== 0 || !dir) {
    console.error(`run-spread: run ${i} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
    process.exit(1);
  }
  const result = JSON.parse(readFileSync(join(out, dir, 'result.json'), 'utf8'));
  const p50 = Object.fromEntries(['connect', 'crr', 'rr'].map((m) => [m, result.metrics[m].summary.p50 / 1000]));
  // CPU per connect operation with its resolution, and the machine's loopback reference (issue 20; absent in older builds).
  const cpu = result.metrics.connect.cpu;
  const refP50 = (m) => {
    const xs = [...(result.metrics[m].reference?.samplesNs ?? [])].sort((a, b) => a - b);
    return xs.length ? xs[Math.floor((xs.length - 1) / 2)] / 1000 : null;
  };
  const reference = Object.fromEntries(['connect', 'crr', 'rr'].map((m) => [m, refP50(m)]));
  rows.push({ runId: result.runId, ...p50, connectCpuUsPerOp: cpu?.totalUsPerOp ?? null, connectCpuResolutionUsPerOp: cpu?.resolutionUsPerOp ?? null, referenceP50Us: reference, unstable: ['connect', 'crr', 'rr'].filter((m) => result.metrics[m].stability?.flagged) });
  const cpuText = cpu?.resolutionUsPerOp !== undefined ? (cpu.resolutionUsPerOp <= 0.1 * cpu.totalUsPerOp ? `${cpu.totalUsPerOp.toFixed(1)} ±${cpu.resolutionUsPerOp.toFixed(2)}` : `below resolution (±${cpu.resolutionUsPerOp.toFixed(1)})`) : 'not recorded';
  process.stderr.write(`run ${i}/${runs} ${result.runId}: connect ${p50.connect.toFixed(1)} µs, CRR ${p50.crr.toFixed(1)} µs, RR ${p50.rr.toFixed(1)} µs; CPU per connect ${cpuText} µs; loopback reference connect ${reference.connect?.toFixed(1) ?? '–'} µs\n`);
}
const spread = Object.fromEntries(
  ['connect', 'crr', 'rr'].map((m) => {
    const xs = rows.map((r) => r[m]);
    return [m, { minUs: Math.min(...xs), maxUs: Math.max(...xs), spread: Math.max(...xs) / Math.min(...xs) - 1 }];
  }),
);
const pass = Object.values(spread).every((s) => s.spread <= within);
const summary = { command: `node scripts/run-spread.mjs --runs ${runs} -- ${benchArgs.join(' ')}`, out, runs: rows, spread, within, pass, rrBelowCrrInEveryRun: rows.every((r) => r.rr < r.crr), loadavg: (await import('node:os')).loadavg() };
writeFileSync(join(out, 'run-spread.json'), `${JSON.stringify(summary, null, 2)}\n`);
for (const [m, s] of Object.entries(spread)) console.log(`${m.padEnd(8)} p50 ${s.minUs.toFixed(1)}–${s.maxUs.toFixed(1)} µs  spread ${(s.spread * 100).toFixed(1)}%  ${s.spread <= within ? 'ok' : 'OUTSIDE'} (within ${(within * 100).toFixed(0)}%)`);
console.log(`result: ${join(out, 'run-spread.json')}`);
process.exitCode = pass ? 0 : 1;
