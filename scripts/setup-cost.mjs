#!/usr/bin/env node
// Where a local run's fixed cost goes (brief "setupfast"): a preload for `bench run` that logs every command the
// runner executes (and every process it starts) with its wall time, and the local backend's stages around them,
// as JSON lines to $SETUP_COST_LOG. Summarise a log with `node scripts/setup-cost.mjs summary FILE...`.
//
//   SETUP_COST_LOG=/tmp/x.jsonl sudo -E node --import ./scripts/setup-cost.mjs dist/cli/main.js run --cni calico ...
//   node scripts/setup-cost.mjs summary /tmp/x.jsonl
//
// Before and after, interleaved (A B A B ... for each data plane in turn, so drifting load hits both alike): the
// set-up + teardown of each run (its result's timings.setupMs + teardownMs), medians, spreads and the paired ratio.
// BASE is another built checkout (e.g. `git worktree add /tmp/base main && cd /tmp/base && npm ci && npm run build`).
//
//   sudo node scripts/setup-cost.mjs ab BASE [runs=10] [cni,cni,...]
import { appendFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const log = process.env.SETUP_COST_LOG;
if (process.argv[2] === 'summary') {
  for (const file of process.argv.slice(3)) summarise(file);
} else if (process.argv[2] === 'ab') {
  ab(resolve(process.argv[3]), Number(process.argv[4] ?? 10), (process.argv[5] ?? 'none,flannel,calico,cilium,calico-ebpf').split(','));
} else if (log) {
  const { ExecRunner } = await import('../dist/exec/runner.js');
  const { LocalBackend } = await import('../dist/backends/local/backend.js');
  const write = (o) => appendFileSync(log, `${JSON.stringify({ t: performance.now(), ...o })}\n`);
  const execute = ExecRunner.prototype.execute;
  ExecRunner.prototype.execute = async function (argv, spec) {
    const t0 = performance.now();
    const r = await execute.call(this, argv, spec);
    write({ kind: 'run', ms: performance.now() - t0, argv: argv.slice(0, 6).join(' '), lines: spec.input ? spec.input.split('\n').filter(Boolean).length : 0 });
    return r;
  };
  const launch = ExecRunner.prototype.launch;
  ExecRunner.prototype.launch = function (argv, spec, o) {
    write({ kind: 'start', argv: argv.slice(0, 6).join(' ') });
    return launch.call(this, argv, spec, o);
  };
  for (const stage of ['up', 'install', 'down']) {
    const f = LocalBackend.prototype[stage];
    LocalBackend.prototype[stage] = async function (...a) {
      write({ kind: 'stage', stage, edge: 'begin' });
      try {
        return await f.apply(this, a);
      } finally {
        write({ kind: 'stage', stage, edge: 'end' });
      }
    };
  }
}

function summarise(file) {
  const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  let stage = 'before';
  const by = new Map();
  const begin = new Map();
  for (const r of rows) {
    if (r.kind === 'stage') {
      if (r.edge === 'begin') begin.set(r.stage, r.t), (stage = r.stage);
      else {
        const s = by.get(r.stage) ?? { n: 0, ms: 0, wall: 0, cmds: new Map() };
        s.wall = r.t - begin.get(r.stage);
        by.set(r.stage, s);
        stage = `after ${r.stage}`;
      }
      continue;
    }
    const s = by.get(stage) ?? { n: 0, ms: 0, wall: 0, cmds: new Map() };
    by.set(stage, s);
    s.n++;
    s.ms += r.ms ?? 0;
    const key = r.argv.replace(/cb-\w+-\w+/g, 'NS').split(' ').slice(0, 5).join(' ');
    s.cmds.set(key, (s.cmds.get(key) ?? 0) + 1);
  }
  console.log(file);
  for (const [k, s] of by) {
    console.log(`  ${k.padEnd(14)} wall ${s.wall.toFixed(0).padStart(5)} ms, ${String(s.n).padStart(3)} processes (${s.ms.toFixed(0)} ms in commands run)`);
    for (const [c, n] of [...s.cmds].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`      ${String(n).padStart(3)}× ${c}`);
  }
}

function ab(base, runs, cnis) {
  const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const med = (a) => {
    const b = [...a].sort((x, y) => x - y);
    return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
  };
  const cost = (root, cni) => {
    const args = [join(root, 'dist/cli/main.js'), 'run', '--cni', cni, '--policies', '100', '--samples', '200', '--rounds', '1', '--out', '/tmp/setup-cost-results', '--json'];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${root}: bench run --cni ${cni} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    const t = JSON.parse(r.stdout).timings;
    return { setup: t.setupMs, teardown: t.teardownMs };
  };
  const rows = [];
  for (let i = 0; i < runs; i++) for (const cni of cnis) rows.push({ cni, base: cost(base, cni), here: cost(here, cni) });
  const span = (a) => `${med(a).toFixed(0)} ms [${Math.min(...a).toFixed(0)}..${Math.max(...a).toFixed(0)}]`;
  console.log(`set-up + teardown per run, median [min..max] of ${runs} interleaved runs (resolution 1 ms; base ${base}, new ${here})`);
  for (const cni of cnis) {
    const r = rows.filter((x) => x.cni === cni);
    const sum = (o) => o.setup + o.teardown;
    const ratio = r.map((x) => sum(x.here) / sum(x.base));
    console.log(`  ${cni.padEnd(12)} base ${span(r.map((x) => sum(x.base)))} (set-up ${span(r.map((x) => x.base.setup))}, teardown ${span(r.map((x) => x.base.teardown))})`);
    console.log(`  ${''.padEnd(12)} new  ${span(r.map((x) => sum(x.here)))} (set-up ${span(r.map((x) => x.here.setup))}, teardown ${span(r.map((x) => x.here.teardown))}); new/base paired ${med(ratio).toFixed(2)} [${Math.min(...ratio).toFixed(2)}..${Math.max(...ratio).toFixed(2)}]`);
  }
}
