#!/usr/bin/env node
// Benchmark: the Calico-eBPF-style model side by side with the Calico (iptables) and Cilium models, at several
// policy counts. Repetitions are interleaved (every CNI × count once per round) so a shared machine's drift
// hits all alike. Per point: connect and CRR p50 pooled over rounds with a bootstrap CI, the per-run p50s,
// cost per policy ((p50(N) − p50(0)) / N) and per rule walked, install time, model state.
// Usage (root, after npm run build): node scripts/bench-calico-ebpf.mjs [samples=2000] [rounds=2] [counts=0,1000,5000,10000] [cnis=calico,cilium,calico-ebpf]
import { LocalBackend } from '../dist/backends/local/backend.js';
import { resolveRunConfig } from '../dist/config/load.js';
import { newRunId } from '../dist/identity/run-id.js';
import { benchmarkPolicySet, benchmarkWorkload } from '../dist/workload/benchmark.js';
import { bootstrapQuantiles, quantile, sortedCopy } from '../dist/stats/summary.js';

const samples = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 2);
const counts = (process.argv[4] ?? '0,1000,5000,10000').split(',').map(Number);
const cnis = (process.argv[5] ?? 'calico,cilium,calico-ebpf').split(',');
const warmup = Math.max(100, Math.round(samples / 10));

const results = new Map(); // `${cni}@${n}` → { connect: [], crr: [], runP50: {connect:[], crr:[]}, installMs: [], state }
const key = (cni, n) => `${cni}@${n}`;

async function one(cni, policies) {
  const { config, problems } = resolveRunConfig({ cni, policies: String(policies), backend: 'local', samples: String(samples), warmup: String(warmup) });
  if (!config) throw new Error(JSON.stringify(problems));
  const backend = new LocalBackend({ config, runId: newRunId() });
  const r = results.get(key(cni, policies)) ?? { connect: [], crr: [], runP50: { connect: [], crr: [] }, installMs: [], state: null };
  results.set(key(cni, policies), r);
  try {
    const workload = benchmarkWorkload(config, backend.target);
    await backend.up(workload);
    const flow = workload.flows[0];
    const t = performance.now();
    const installed = await backend.install(benchmarkPolicySet(config));
    r.installMs.push(performance.now() - t);
    r.state = installed.modelState;
    for (const metric of ['connect', 'crr']) {
      const m = await backend.measure(flow, metric, { samples, warmup, concurrency: 1, timeoutMs: 1000 });
      const errs = Object.values(m.errors).reduce((a, b) => a + b, 0);
      if (errs) console.error(`  ${cni}@${policies} ${metric}: ${errs} errors ${JSON.stringify(m.errors)}`);
      r[metric].push(...m.samplesNs);
      r.runP50[metric].push(quantile(sortedCopy(m.samplesNs), 0.5));
    }
  } finally {
    await backend.down();
  }
  console.error(`  ${cni}@${policies}: install ${(r.installMs.at(-1) / 1000).toFixed(2)} s, connect p50 ${(r.runP50.connect.at(-1) / 1000).toFixed(1)} µs, crr p50 ${(r.runP50.crr.at(-1) / 1000).toFixed(1)} µs`);
}

const started = performance.now();
for (let round = 0; round < rounds; round++) {
  console.error(`round ${round + 1}/${rounds}`);
  // Alternate the order each round so no CNI always runs first.
  const order = round % 2 === 0 ? cnis : [...cnis].reverse();
  for (const n of counts) for (const cni of order) await one(cni, n);
}

const us = (ns) => +(ns / 1000).toFixed(1);
const table = [];
for (const cni of cnis) {
  const base = results.get(key(cni, counts[0]));
  for (const n of counts) {
    const r = results.get(key(cni, n));
    const row = { cni, policies: n, installS: +(quantile(sortedCopy(r.installMs), 0.5) / 1000).toFixed(2) };
    for (const metric of ['connect', 'crr']) {
      const sorted = sortedCopy(r[metric]);
      const p50 = quantile(sorted, 0.5);
      const [ci] = bootstrapQuantiles(sorted, [0.5], { seed: 1 });
      row[`${metric}P50Us`] = us(p50);
      row[`${metric}CiUs`] = [us(ci[0]), us(ci[1])];
      row[`${metric}RunP50sUs`] = r.runP50[metric].map(us);
      if (n > 0 && counts[0] === 0) {
        const perPolicy = (p50 - quantile(sortedCopy(base[metric]), 0.5)) / n;
        row[`${metric}NsPerPolicy`] = Math.round(perPolicy);
        const rules = Number(r.state?.rulesTraversedPerPolicy ?? 0);
        if (rules > 0) row[`${metric}NsPerRule`] = Math.round(perPolicy / rules);
      }
    }
    const s = r.state ?? {};
    row.state = Object.fromEntries(
      ['policyPrograms', 'instructions', 'ipSetEntries', 'maxProgramsPerChain', 'rulesTraversedPerPolicy', 'iptablesRulesMaxPerNode', 'ipsetMembers', 'policyMapEntriesMaxPerEndpoint'].filter((k) => k in s).map((k) => [k, s[k]]),
    );
    table.push(row);
  }
}
console.log(JSON.stringify({ samplesPerRun: samples, rounds, wallS: +((performance.now() - started) / 1000).toFixed(0), points: table }, null, 1));
