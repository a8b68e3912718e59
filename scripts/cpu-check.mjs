#!/usr/bin/env node
// Is CPU per connection measured where the work runs? (issue 20) Runs `bench run --cni none` at --samples 1000,
// 3000 and 10000, and `bench run --cni calico --policies 2000` beside a `none` run of the same size, then checks:
// - none: connect CPU per operation agrees within 20% across the three sample counts, and is at most the wall
//   time of a connect operation (everything runs on the one pinned CPU);
// - calico at 2000 policies: the CPU it adds over none is within ±30% of the mean connect latency it adds, because
//   the rule walk runs in softirq on the packet's path, inside the client's connect(). CPU per operation is a mean
//   over the operations, so it is the mean it must match; the p50 ratio is printed too, but a run whose connects
//   come in two modes (Calico at 2000 policies on this VM: p50 1.46 ms, mean 2.10 ms) moves it far from 1.
//
//   sudo node scripts/cpu-check.mjs [--policies 2000] [--calico-samples 1000] [--repeat 1] [--out DIR]
//
// Prints a JSON summary (every figure with its resolution) and writes DIR/cpu-check.json. Exit 0 when both hold.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { policies: { type: 'string', default: '2000' }, 'calico-samples': { type: 'string', default: '1000' }, repeat: { type: 'string', default: '1' }, out: { type: 'string' } } });
const policies = Number(args.policies);
const calicoSamples = Number(args['calico-samples']);
const repeat = Number(args.repeat);
if (!(Number.isInteger(policies) && policies > 0) || !(Number.isInteger(calicoSamples) && calicoSamples >= 100) || !(Number.isInteger(repeat) && repeat >= 1)) {
  console.error('cpu-check: --policies must be a whole number > 0, --calico-samples ≥ 100, --repeat ≥ 1');
  process.exit(2);
}
const out = resolve(args.out ?? join(root, 'results', `cpu-check-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`));
mkdirSync(out, { recursive: true });

function run(name, benchArgs) {
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'run', ...benchArgs, '--out', dir, '--json'], { encoding: 'utf8' });
  const id = readdirSync(dir).find((d) => !before.has(d));
  if (r.status !== 0 || !id) {
    console.error(`cpu-check: bench run ${benchArgs.join(' ')} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
    process.exit(1);
  }
  const result = JSON.parse(readFileSync(join(dir, id, 'result.json'), 'utf8'));
  const m = result.metrics.connect;
  const s = [...m.samplesNs].sort((a, b) => a - b);
  const p50 = s[Math.floor((s.length - 1) / 2)] / 1000;
  const mean = s.reduce((a, b) => a + b, 0) / s.length / 1000;
  const c = m.cpu;
  process.stderr.write(`${name}: connect p50 ${p50.toFixed(1)} µs, CPU ${c.totalUsPerOp.toFixed(1)} ±${c.resolutionUsPerOp.toFixed(2)} µs/op (client ${c.probeClientUsPerOp.toFixed(1)}, server ${c.probeServerUsPerOp?.toFixed(1)}, ksoftirqd ${c.softirqUsPerOp.toFixed(2)}), wall ${c.wallUsPerOp.toFixed(1)} µs/op\n`);
  return { runId: result.runId, connectP50Us: p50, connectMeanUs: mean, cpuUsPerOp: c.totalUsPerOp, resolutionUsPerOp: c.resolutionUsPerOp, clientUsPerOp: c.probeClientUsPerOp, serverUsPerOp: c.probeServerUsPerOp, softirqUsPerOp: c.softirqUsPerOp, wallUsPerOp: c.wallUsPerOp, source: c.source };
}

const t0 = Date.now();
const avg = (xs, k) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
const none = {};
for (const n of [1000, 3000, 10000]) none[n] = Array.from({ length: repeat }, (_, i) => run(`none-${n}-r${i + 1}`, ['--cni', 'none', '--samples', String(n)]));
const cpus = Object.values(none).map((xs) => avg(xs, 'cpuUsPerOp'));
const spread = Math.max(...cpus) / Math.min(...cpus) - 1;
const underWall = Object.values(none).flat().every((x) => x.cpuUsPerOp <= x.wallUsPerOp);
const pair = [];
for (let i = 0; i < repeat; i++) {
  const base = run(`none-${calicoSamples}-pair-r${i + 1}`, ['--cni', 'none', '--samples', String(calicoSamples)]);
  const cal = run(`calico-${policies}-r${i + 1}`, ['--cni', 'calico', '--policies', String(policies), '--samples', String(calicoSamples)]);
  pair.push({ none: base, calico: cal });
}
const cpuAdded = pair.reduce((a, p) => a + p.calico.cpuUsPerOp - p.none.cpuUsPerOp, 0) / pair.length;
const latAddedP50 = pair.reduce((a, p) => a + p.calico.connectP50Us - p.none.connectP50Us, 0) / pair.length;
const latAddedMean = pair.reduce((a, p) => a + p.calico.connectMeanUs - p.none.connectMeanUs, 0) / pair.length;
const ratioP50 = cpuAdded / latAddedP50;
const ratioMean = cpuAdded / latAddedMean;
const summary = {
  command: `node scripts/cpu-check.mjs --policies ${policies} --calico-samples ${calicoSamples} --repeat ${repeat}`,
  out,
  none: Object.fromEntries(Object.entries(none).map(([n, xs]) => [`samples ${n}`, { cpuUsPerOp: avg(xs, 'cpuUsPerOp'), resolutionUsPerOp: avg(xs, 'resolutionUsPerOp'), wallUsPerOp: avg(xs, 'wallUsPerOp'), connectP50Us: avg(xs, 'connectP50Us') }])),
  noneSpread: spread,
  noneAgreesWithin20: spread <= 0.2,
  noneCpuAtMostWall: underWall,
  calico: { policies, cpuAddedUsPerOp: cpuAdded, connectP50AddedUs: latAddedP50, connectMeanAddedUs: latAddedMean, cpuOverLatencyP50: ratioP50, cpuOverLatencyMean: ratioMean, runs: pair },
  calicoAgreesWithin30: Math.abs(ratioMean - 1) <= 0.3,
  seconds: Math.round((Date.now() - t0) / 1000),
  loadavg: (await import('node:os')).loadavg(),
};
writeFileSync(join(out, 'cpu-check.json'), `${JSON.stringify({ ...summary, noneRuns: none }, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
process.exitCode = summary.noneAgreesWithin20 && summary.noneCpuAtMostWall && summary.calicoAgreesWithin30 ? 0 : 1;
