#!/usr/bin/env node
// Benchmark: the probe's own floor. Builds the `none` topology (cross-node, 0 policies) and measures connect
// latency with cb-probe and with the minimal C connect() loop (dist/native/connect-loop) against the same server,
// alternating ROUNDS times so drift hits both alike. Prints both medians and their ratio (goal: <= 1.5).
// Usage (root, after npm run build): node scripts/probe-floor.mjs [samples=20000] [rounds=5]
import { ExecRunner } from '../dist/exec/runner.js';
import { LocalBackend } from '../dist/backends/local/backend.js';
import { resolveRunConfig } from '../dist/config/load.js';
import { newRunId } from '../dist/identity/run-id.js';
import { SERVER_PORT } from '../dist/workload/workload.js';
import { benchmarkWorkload } from '../dist/workload/benchmark.js';
import { planConnectLoop, planClient, runClient } from '../dist/probe/native.js';
import { quantile, sortedCopy } from '../dist/stats/summary.js';

const samples = Number(process.argv[2] ?? 20000);
const rounds = Number(process.argv[3] ?? 5);
const { config } = resolveRunConfig({ cni: 'none', backend: 'local', samples: String(samples), warmup: '0' });
const backend = new LocalBackend({ config, runId: newRunId() });
const runner = new ExecRunner();
const median = (xs) => quantile(sortedCopy(xs), 0.5);
try {
  const workload = benchmarkWorkload(config, backend.target);
  await backend.up(workload);
  const client = backend.plan.pods.find((p) => p.role === 'client');
  const server = backend.plan.pods.find((p) => p.role === 'server');
  // Warm both paths (ARP, route caches, page faults) before timing.
  await runner.run(planConnectLoop({ netns: client.netns, target: server.ip, port: SERVER_PORT, count: 2000 }));
  const probe = [];
  const loop = [];
  for (let r = 0; r < rounds; r++) {
    const out = await runClient(runner, planClient({ netns: client.netns, target: server.ip, port: SERVER_PORT, mode: 'connect', samples, warmup: 0, concurrency: 1, timeoutMs: 1000 }));
    probe.push(median(out.samplesNs));
    const l = await runner.run(planConnectLoop({ netns: client.netns, target: server.ip, port: SERVER_PORT, count: samples }));
    loop.push(Number(l.stdout.trim()));
    console.error(`round ${r + 1}/${rounds}: cb-probe p50 ${(probe.at(-1) / 1000).toFixed(1)} µs, connect-loop p50 ${(loop.at(-1) / 1000).toFixed(1)} µs`);
  }
  const p = median(probe);
  const l = median(loop);
  console.log(JSON.stringify({ topology: 'none, cross-node, 0 policies', samplesPerRound: samples, rounds, cbProbeConnectP50Us: +(p / 1000).toFixed(2), connectLoopP50Us: +(l / 1000).toFixed(2), ratio: +(p / l).toFixed(3) }));
} finally {
  await backend.down();
}
