#!/usr/bin/env node
// What programming N policies costs the Felix-style models' agent: per data plane and policy count, a fresh local
// topology, one full install of the benchmark's policy set (the server's node holds N policies), the time of every
// write the model made (ipset restore and iptables-restore; nft set transaction, table listing, table transaction),
// then one incremental update (the client's allow removed) timed the same way. No latency is measured.
// Each is also given in CPU time of the write commands (theirs and the kernel work they do), which a loaded machine
// does not inflate as it does wall time.
//
//   node scripts/calico-install-time.mjs [--cni calico,canal,calico-nftables] [--policies 10000,50000]
//        [--iptables-backend nft|legacy] [--nft-selector-sets interval|hash] [--no-update]
//
// As root, after `npm run build`. Progress (writes running for more than a few seconds) goes to stderr; a markdown
// table and results/calico-install-time-<time>.json at the end.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackend } from '../dist/backends/factory.js';
import { onInterrupt } from '../dist/cli/process.js';
import { resolveRunConfig } from '../dist/config/load.js';
import { ExecRunner } from '../dist/exec/runner.js';
import { newRunId } from '../dist/identity/run-id.js';
import { ROLE_LABEL } from '../dist/policy/generate.js';
import { benchmarkWorkload } from '../dist/workload/benchmark.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const cnis = opt('cni', 'calico,canal,calico-nftables').split(',');
const counts = opt('policies', '10000,50000').split(',').map(Number);
const iptablesBackend = opt('iptables-backend', 'nft');
const nftSelectorSets = opt('nft-selector-sets', 'interval');
const withUpdate = !args.includes('--no-update');

const t0 = performance.now();
const progress = { step: (m) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)}s] ${m}\n`) };
// CPU time of this process's waited-for children (/proc/self/stat cutime + cstime, in 10 ms ticks): the writes' own
// CPU (ipset, iptables-restore, nft and the kernel work they do), which a loaded machine does not inflate as it does
// wall time. Installs run one at a time, so nothing else of ours ends inside the window.
const childCpuMs = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
};
const s = (ms) => (ms === undefined ? '' : (ms / 1000).toFixed(ms < 10_000 ? 2 : 1));

// Ctrl-C or SIGTERM (a `timeout` around a 50000-policy install) aborts the write in progress, as `bench run` does,
// and the finally below tears the topology down before the script exits; a second signal exits at once.
const interrupt = onInterrupt('stopping and tearing down');
const { signal } = interrupt;
const rows = [];
outer: for (const policies of counts) {
  for (const cni of cnis) {
    if (signal.aborted) break outer;
    const { config, problems } = resolveRunConfig({ cni, backend: 'local', policies: String(policies), iptablesBackend, nftSelectorSets, samples: '1', warmup: '0' });
    if (!config) throw new Error(JSON.stringify(problems));
    const runId = newRunId();
    const outDir = join(root, 'results', runId);
    const backend = await createBackend({ config, backend: 'local', runId, runner: new ExecRunner(signal), cleanupRunner: new ExecRunner(), signal, progress, outDir });
    const row = { cni, policies, iptablesBackend: cni === 'calico-nftables' ? undefined : iptablesBackend, nftSelectorSets: cni === 'calico-nftables' ? nftSelectorSets : undefined };
    try {
      const workload = benchmarkWorkload(config, backend.target);
      await backend.up(workload);
      const set = workload.policies;
      progress.step(`${cni} @ ${policies}: installing`);
      const cpu0 = childCpuMs();
      const installed = await backend.install(set);
      row.installCpuMs = childCpuMs() - cpu0;
      row.installMs = installed.installMs;
      row.install = installed.modelState;
      if (withUpdate) {
        progress.step(`${cni} @ ${policies}: removing the client's allow (incremental update)`);
        const cpu1 = childCpuMs();
        const { report } = await backend.changes.setPolicies({ ...set, policies: set.policies.filter((p) => p.metadata.labels?.[ROLE_LABEL] !== 'allow-client') });
        row.updateMs = report.agentMs;
        row.updateCpuMs = childCpuMs() - cpu1;
        row.update = { ...report.state, changed: report.changed };
      }
    } catch (e) {
      row[row.install ? 'updateError' : 'error'] = signal.aborted ? `interrupted (${signal.reason?.message ?? 'stopped'})` : String(e instanceof Error ? e.message : e).split('\n')[0];
    } finally {
      await backend.down();
    }
    progress.step(`${cni} @ ${policies}: install ${s(row.installMs)} s${row.error ? ` — ${row.error}` : ''}`);
    rows.push(row);
  }
}
interrupt.dispose();

console.log("| data plane | policies | install s | its CPU s | of which: sets s | rules/table s | listing s | rules | sets | update s (listing s) | nft calls over Felix's 30 s |");
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const m = r.install ?? {};
  const plane = r.cni === 'calico-nftables' ? `calico-nftables (${r.nftSelectorSets})` : `${r.cni} (iptables-${r.iptablesBackend})`;
  const sets = m.ipsetRestoreMs ?? m.nftSetWriteMs;
  const table = m.iptablesRestoreMs ?? m.nftTableWriteMs;
  const update = r.update ? `${s(r.updateMs)} (CPU ${s(r.updateCpuMs)})${r.update.nftListMs !== undefined ? ` (${s(r.update.nftListMs)})` : ''}` : r.updateError ? `failed: ${r.updateError}` : '';
  console.log(`| ${plane} | ${r.policies} | ${r.error ? `failed: ${r.error}` : s(r.installMs)} | ${s(r.installCpuMs)} | ${s(sets)} | ${s(table)} | ${s(m.nftListMs)} | ${m.iptablesRules ?? m.nftRules ?? ''} | ${m.ipsets ?? m.sets ?? ''} | ${update} | ${m.nftCallsOverFelixTimeout === undefined ? '' : m.nftCallsOverFelixTimeout + (r.update?.nftCallsOverFelixTimeout ?? 0)} |`);
}
const outDir = join(root, 'results');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `calico-install-time-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ args, rows, loadavg: readFileSync('/proc/loadavg', 'utf8').trim() }, null, 2));
console.log(`\nraw: ${file}`);
if (signal.aborted) process.exit(130);
