#!/usr/bin/env node
// A/B of two builds of the Cilium model on this machine: the same `bench run --cni cilium` on each build,
// interleaved (A, B, A, B, …) so slow drift of a shared machine hits both alike, p50 of connect, CRR and RR per
// run, and the median over rounds side by side. Used for issue 13 (lookup semantics of Cilium 1.18) and
// reusable for any change to the model.
//
//   node scripts/cilium-ab.mjs --old /tmp/cilium-old --new . [--rounds 5] [--policies 0,1000] [--samples 3000]
//                              [--warmup 300] [--pin-cpu N]
//
// --old/--new are project roots whose dist/ is built (npm run build); the old one can be a copy of an earlier
// commit's dist/ next to its package.json and a node_modules link. Needs root (network namespaces, BPF).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    old: { type: 'string' },
    new: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    policies: { type: 'string', default: '0,1000' },
    samples: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '300' },
    'pin-cpu': { type: 'string' },
  },
});
if (!o.old || !o.new) {
  console.error('usage: node scripts/cilium-ab.mjs --old DIR --new DIR [--rounds N] [--policies a,b] [--samples N] [--warmup N] [--pin-cpu N]');
  process.exit(2);
}
const builds = { old: resolve(o.old), new: resolve(o.new) };
const counts = o.policies.split(',').map(Number);
const rounds = Number(o.rounds);
const out = mkdtempSync(join(tmpdir(), 'cilium-ab-'));
const metrics = ['connect', 'crr', 'rr'];
/** p50 in µs per [build][policies][metric] over rounds. */
const p50 = {};

function runOnce(build, policies) {
  const argv = [join(builds[build], 'dist', 'cli', 'main.js'), 'run', '--cni', 'cilium', '--backend', 'local', '--policies', String(policies),
    '--samples', o.samples, '--warmup', o.warmup, '--json', '--out', out];
  if (o['pin-cpu'] !== undefined) argv.push('--pin-cpu', o['pin-cpu']);
  const json = JSON.parse(execFileSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  if (json.status !== 'ok') throw new Error(`${build} run failed: ${JSON.stringify(json.errors)}`);
  return Object.fromEntries(metrics.map((m) => [m, json.metrics[m].p50 / 1000]));
}

try {
  for (let r = 0; r < rounds; r++) {
    for (const policies of counts) {
      // Alternate which build goes first each round.
      for (const build of r % 2 === 0 ? ['old', 'new'] : ['new', 'old']) {
        const got = runOnce(build, policies);
        for (const m of metrics) ((p50[build] ??= {})[policies] ??= {})[m] = [...(p50[build][policies][m] ?? []), got[m]];
        console.error(`round ${r + 1}/${rounds} ${build} ${policies} policies: ${metrics.map((m) => `${m} ${got[m].toFixed(1)}`).join(', ')} µs`);
      }
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`| policies | metric | old p50 µs (median of ${rounds}) | new p50 µs | new/old | old runs | new runs |`);
console.log('|---:|---|---:|---:|---:|---|---|');
for (const policies of counts) {
  for (const m of metrics) {
    const a = p50.old[policies][m];
    const b = p50.new[policies][m];
    const fmt = (xs) => xs.map((x) => x.toFixed(1)).join(' ');
    console.log(`| ${policies} | ${m} | ${median(a).toFixed(1)} | ${median(b).toFixed(1)} | ${(median(b) / median(a)).toFixed(3)} | ${fmt(a)} | ${fmt(b)} |`);
  }
}
