#!/usr/bin/env node
// Diagnostic benchmark: connect p50 of the calico-ebpf model at 5000 and 10000 policies together with the CPU time
// ksoftirqd threads used meanwhile (how much of the rule walk ran deferred rather than inline in the sender).
// Usage (root, after npm run build): node scripts/calico-ebpf-softirq.mjs
import fs from 'node:fs';
import { LocalBackend } from '../dist/backends/local/backend.js';
import { resolveRunConfig } from '../dist/config/load.js';
import { newRunId } from '../dist/identity/run-id.js';
import { benchmarkPolicySet, benchmarkWorkload } from '../dist/workload/benchmark.js';
import { quantile, sortedCopy } from '../dist/stats/summary.js';
const ksoft = () => {
  let t = 0;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!st.includes('(ksoftirqd/')) continue;
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      t += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return t * 10; // ms (USER_HZ 100)
};
for (const n of [5000, 10000]) {
  const { config } = resolveRunConfig({ cni: 'calico-ebpf', policies: String(n), backend: 'local', samples: '500', warmup: '50' });
  const b = new LocalBackend({ config, runId: newRunId() });
  try {
    const workload = benchmarkWorkload(config, b.target);
    await b.up(workload);
    const flow = workload.flows[0];
    await b.install(benchmarkPolicySet(config));
    await new Promise((r) => setTimeout(r, 3000));
    const k0 = ksoft();
    const t0 = performance.now();
    const m = await b.measure(flow, 'connect', { samples: 500, warmup: 50, concurrency: 1, timeoutMs: 1000 });
    const wall = performance.now() - t0;
    const k1 = ksoft();
    console.log(`${n}: connect p50 ${(quantile(sortedCopy(m.samplesNs), 0.5) / 1e3).toFixed(0)} µs, wall ${wall.toFixed(0)} ms, ksoftirqd CPU ${k1 - k0} ms`);
  } finally {
    await b.down();
  }
}
