#!/usr/bin/env node
// What Felix's interval flag on selector sets costs the calico-nftables model: `bench run --cni calico-nftables`
// with `--nft-selector-sets interval` (Felix's declaration) and `hash`, at each policy count, the two kinds and the
// counts in a freshly shuffled order every repetition so a shared machine's drift hits both alike. Per kind: install
// time (and its set-transaction share) per count, connect p50 per count, and the connect p50 slope in ns/policy
// (least squares over every run).
//
//   node scripts/calico-nftables-set-flags.mjs [--counts 0,1000,2000,5000] [--repetitions 3] [--samples 1000] [--warmup 100]
//
// As root, after `npm run build`. Writes results/calico-nftables-set-flags-<time>.json and prints markdown tables.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countsFlag, intFlag, scriptArgs } from './script-args.mjs';

const USAGE = `usage: node scripts/calico-nftables-set-flags.mjs [--counts 0,1000,2000,5000] [--repetitions 3] [--samples 1000] [--warmup 100]
  --counts       policy counts, comma-separated (default 0,1000,2000,5000)
  --repetitions  runs of every (kind, count) point, in a fresh shuffled order each (default 3)
  --samples      connections measured per run (default 1000)
  --warmup       connections before measuring (default 100)
As root, after 'npm run build'.`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bench = join(root, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const { counts, repetitions, samples, warmup } = scriptArgs(
  'calico-nftables-set-flags',
  USAGE,
  {
    counts: { type: 'string', default: '0,1000,2000,5000' },
    repetitions: { type: 'string', default: '3' },
    samples: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '100' },
  },
  (v) => ({ counts: countsFlag(v, 'counts'), repetitions: intFlag(v, 'repetitions'), samples: String(intFlag(v, 'samples')), warmup: String(intFlag(v, 'warmup', 0)) }),
  args,
);
const KINDS = ['interval', 'hash'];

let seed = 11;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const shuffled = (xs) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

function run(kind, policies) {
  const argv = [bench, 'run', '--cni', 'calico-nftables', '--nft-selector-sets', kind, '--policies', String(policies), '--samples', samples, '--warmup', warmup, '--backend', 'local', '--json'];
  const r = JSON.parse(execFileSync(process.execPath, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] }));
  const s = r.modelState;
  return { kind, policies, status: r.status, installMs: r.timings.policyInstallMs, setWriteMs: s.nftSetWriteMs, listMs: s.nftListMs, tableWriteMs: s.nftTableWriteMs, connectP50Us: r.metrics.connect.p50 / 1000 };
}

const rows = [];
for (let rep = 1; rep <= repetitions; rep++) {
  for (const [kind, n] of shuffled(KINDS.flatMap((k) => counts.map((n) => [k, n])))) {
    process.stderr.write(`# repetition ${rep}: ${kind} sets @ ${n} policies\n`);
    rows.push({ rep, ...run(kind, n) });
  }
}

const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};
const slope = (pts) => {
  const mx = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const my = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  const sxy = pts.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const sxx = pts.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return sxx ? sxy / sxx : NaN;
};
const f = (x, d = 1) => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(d));

console.log(`| sets | policies | install s (median of ${repetitions}) | of which the set transaction s | connect p50 µs (median) |`);
console.log('|---|---:|---:|---:|---:|');
for (const kind of KINDS) {
  for (const n of counts) {
    const rs = rows.filter((r) => r.kind === kind && r.policies === n);
    console.log(`| ${kind} | ${n} | ${f(median(rs.map((r) => r.installMs)) / 1000, 2)} | ${f(median(rs.map((r) => r.setWriteMs)) / 1000, 2)} | ${f(median(rs.map((r) => r.connectP50Us)))} |`);
  }
}
console.log('\n| sets | connect p50 slope, ns/policy (least squares over every run) |');
console.log('|---|---:|');
for (const kind of KINDS) console.log(`| ${kind} | ${f(slope(rows.filter((r) => r.kind === kind).map((r) => [r.policies, r.connectP50Us * 1000])), 0)} |`);

const outDir = join(root, 'results');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `calico-nftables-set-flags-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ args, rows, loadavg: readFileSync('/proc/loadavg', 'utf8').trim() }, null, 2));
console.log(`\nraw: ${file}`);
