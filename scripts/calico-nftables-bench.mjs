#!/usr/bin/env node
// Side-by-side figures for the calico-nftables model: none, calico (iptables-legacy) and calico-nftables at the same
// policy counts, interleaved in one script run so a shared machine's drift hits all three alike. Per point: connect
// and CRR p50 with bootstrap 95% CIs, install time, model state; then `bench verify --cni calico-nftables`.
//
//   node scripts/calico-nftables-bench.mjs [--counts 0,1000,5000,10000] [--samples 1000] [--warmup 100] [--no-verify]
//
// As root, after `npm run build`. Writes results/calico-nftables-bench-<time>.json and prints a markdown table.
// Prints the install of 10000 policies split as Felix writes it (sets, table listing, table).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countsFlag, intFlag, scriptArgs } from './script-args.mjs';

const USAGE = `usage: node scripts/calico-nftables-bench.mjs [--counts 0,1000,5000,10000] [--samples 1000] [--warmup 100] [--no-verify]
  --counts     policy counts, comma-separated (default 0,1000,5000,10000)
  --samples    connections measured per point (default 1000)
  --warmup     connections before measuring (default 100)
  --no-verify  skip 'bench verify --cni calico-nftables' at the end
As root, after 'npm run build'.`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bench = join(root, 'dist', 'cli', 'main.js');
const { counts, samples, warmup, verifyAfter } = scriptArgs(
  'calico-nftables-bench',
  USAGE,
  {
    counts: { type: 'string', default: '0,1000,5000,10000' },
    samples: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '100' },
    'no-verify': { type: 'boolean', default: false },
  },
  (v) => ({ counts: countsFlag(v, 'counts'), samples: String(intFlag(v, 'samples')), warmup: String(intFlag(v, 'warmup', 0)), verifyAfter: !v['no-verify'] }),
);
const cnis = ['none', 'calico', 'calico-nftables'];

function run(cni, policies) {
  const argv = [bench, 'run', '--cni', cni, '--policies', String(policies), '--samples', samples, '--warmup', warmup, '--timeout-ms', '5000', '--backend', 'local', '--json'];
  const started = Date.now();
  const out = execFileSync(process.execPath, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  const r = JSON.parse(out);
  const m = (k) => ({ p50: r.metrics[k].p50 / 1000, ci: r.metrics[k].ci95.p50.map((x) => x / 1000), errors: r.metrics[k].errors });
  return { cni, policies, wallS: (Date.now() - started) / 1000, status: r.status, installMs: r.timings.policyInstallMs, connect: m('connect'), crr: m('crr'), modelState: r.modelState };
}

const rows = [];
for (const n of counts) {
  for (const cni of cnis) {
    process.stderr.write(`# ${cni} @ ${n} policies\n`);
    rows.push(run(cni, n));
  }
}

let verify = null;
if (verifyAfter) {
  const started = Date.now();
  let code = 0;
  let tail = '';
  try {
    tail = execFileSync(process.execPath, [bench, 'verify', '--cni', 'calico-nftables'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    code = e.status ?? 1;
    tail = String(e.stdout ?? '');
  }
  verify = { exitCode: code, wallS: (Date.now() - started) / 1000, summary: tail.trim().split('\n').slice(-2).join('\n') };
}

const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const ci = (m) => `${f(m.p50)} (${f(m.ci[0])}–${f(m.ci[1])})`;
console.log(`| cni | policies | connect p50 µs (95% CI) | CRR p50 µs (95% CI) | install s | rules | chains | sets | set elements | rules/policy |`);
console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const r of rows) {
  const s = r.modelState;
  const rules = s.nftRules ?? s.iptablesRules ?? '';
  const sets = s.sets ?? s.ipsets ?? '';
  const elems = s.setElements ?? s.ipsetMembers ?? '';
  console.log(`| ${r.cni} | ${r.policies} | ${ci(r.connect)} | ${ci(r.crr)} | ${(r.installMs / 1000).toFixed(2)} | ${rules} | ${s.chains ?? ''} | ${sets} | ${elems} | ${s.rulesTraversedPerPolicy ?? ''} |`);
}
const big = rows.find((r) => r.cni === 'calico-nftables' && r.policies === 10000);
if (big) {
  const m = big.modelState;
  console.log(`\ninstall at 10000 policies (${m.nftSelectorSets} sets): ${(big.installMs / 1000).toFixed(2)} s — set transaction ${m.nftSetWriteMs} ms, table listing ${m.nftListMs} ms, table transaction ${m.nftTableWriteMs} ms, compile ${m.compileMs} ms`);
}
if (verify) console.log(`\nbench verify --cni calico-nftables: exit ${verify.exitCode}, ${verify.wallS.toFixed(1)} s wall\n${verify.summary}`);

const outDir = join(root, 'results');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `calico-nftables-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ counts, samples: Number(samples), warmup: Number(warmup), rows, verify, loadavg: execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim() }, null, 2));
console.log(`\nraw: ${file}`);
