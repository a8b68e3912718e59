#!/usr/bin/env node
// Where a local run's fixed cost goes (brief "setupfast"): a preload for `bench run` that logs every command the
// runner executes (and every process it starts) with its wall time, and the local backend's stages around them,
// as JSON lines to $SETUP_COST_LOG. Summarise a log with `node scripts/setup-cost.mjs summary FILE...`.
//
//   SETUP_COST_LOG=/tmp/x.jsonl sudo -E node --import ./scripts/setup-cost.mjs dist/cli/main.js run --cni calico ...
//   node scripts/setup-cost.mjs summary /tmp/x.jsonl
import { appendFileSync, readFileSync } from 'node:fs';

const log = process.env.SETUP_COST_LOG;
if (process.argv[2] === 'summary') {
  for (const file of process.argv.slice(3)) summarise(file);
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
