#!/usr/bin/env node
// Benchmark: what the Felix 3.30 layout costs per policy on each iptables backend. Two calico topologies
// (cross-node, client's allow last), one per backend (legacy, nft); for each N (shuffled) each gets its ruleset
// installed into emptied tables, then every round measures connect p50 on both in a fresh shuffled order.
// The layout is the calico model's (src/backends/local/calico/compile.ts). The pre-3.28 layout this script once
// compared against (README: 1328 µs at 5000 policies on legacy) lived in calico/pre328.ts up to commit 9b652b1:
// check that commit out to measure it again.
// Prints a table of slopes (least squares of p50 over N, all rounds) in ns/policy and ns/rule traversed.
// Usage (root, after npm run build): node scripts/calico-layout-slope.mjs [Ns=1000,2500,5000,7500,10000] [samples=1000] [rounds=2]
import { ExecRunner } from '../dist/exec/runner.js';
import { LocalBackend } from '../dist/backends/local/backend.js';
import { resolveRunConfig } from '../dist/config/load.js';
import { newRunId } from '../dist/identity/run-id.js';
import { SERVER_PORT } from '../dist/workload/workload.js';
import { planClient, runClient } from '../dist/probe/native.js';
import { quantile, sortedCopy } from '../dist/stats/summary.js';
import { resolveEndpoints } from '../dist/policy/resolve.js';
import { benchmarkPolicySet, benchmarkWorkload } from '../dist/workload/benchmark.js';
import { compileCalicoNode } from '../dist/backends/local/calico/compile.js';
import { emptyView, installCalicoRules, iptablesBinaries } from '../dist/backends/local/calico/install.js';

const Ns = (process.argv[2] ?? '1000,2500,5000,7500,10000').split(',').map(Number);
const samples = Number(process.argv[3] ?? 1000);
const rounds = Number(process.argv[4] ?? 2);
const LAYOUTS = ['felix-3.30'];
const BACKENDS = ['legacy', 'nft'];

const { config } = resolveRunConfig({ cni: 'calico', backend: 'local', policies: '0', samples: String(samples), warmup: '0' });
const runner = new ExecRunner();
const median = (xs) => quantile(sortedCopy(xs), 0.5);

let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const shuffle = (xs) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

const EMPTY_TABLES = [
  '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT',
  '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT',
  '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
].join('\n');

async function reset(nodes) {
  for (const n of nodes) {
    for (const b of BACKENDS) await runner.run({ argv: [iptablesBinaries(b).restore], netns: n.netns, input: EMPTY_TABLES, timeoutMs: 900_000 });
    await runner.run({ argv: ['ipset', 'destroy'], netns: n.netns, timeoutMs: 900_000 });
  }
}

async function install(iptablesBackend, endpoints, nodes, ifaceOf) {
  for (const n of nodes) {
    await installCalicoRules(runner, n.netns, compileCalicoNode(n.name, endpoints, ifaceOf), { iptablesBackend, current: emptyView(), timeoutMs: 900_000 });
  }
}

function fit(points) {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.n, 0) / n;
  const my = points.reduce((a, p) => a + p.p50Ns, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.n - mx) ** 2, 0);
  const sxy = points.reduce((a, p) => a + (p.n - mx) * (p.p50Ns - my), 0);
  return { slope: sxy / sxx, intercept: my - (sxy / sxx) * mx };
}

const results = [];
// One topology per backend, so each ruleset is installed once per N and the measurements interleave: per N,
// every round measures both in a fresh shuffled order.
const configs = LAYOUTS.flatMap((layout) => BACKENDS.map((b) => ({ layout, backend: b, bench: new LocalBackend({ config, runId: newRunId() }) })));
process.on('SIGINT', () => process.exit(130));
try {
  for (const c of configs) await c.bench.up(benchmarkWorkload(config, c.bench.target));
  const traversed = {};
  for (const n of shuffle(Ns)) {
    const set = benchmarkPolicySet({ policies: n, matchPosition: 'last', seed: 1 });
    for (const c of configs) {
      const plan = c.bench.plan;
      const ifaceByPod = new Map(plan.pods.map((p) => [`${p.namespace}/${p.name}`, p.hostIf]));
      const ifaceOf = (pod) => ifaceByPod.get(`${pod.namespace}/${pod.name}`);
      const nodeNames = new Set(plan.nodes.map((x) => x.name));
      const eps = resolveEndpoints(c.bench.inventoryFor(set), set.policies).filter((e) => nodeNames.has(e.pod.node));
      const server = plan.pods.find((p) => p.role === 'server');
      traversed[n] = compileCalicoNode(server.node.name, eps, ifaceOf).rulesTraversedPerPolicy;
      await reset(plan.nodes);
      const t = performance.now();
      await install(c.backend, eps, plan.nodes, ifaceOf);
      c.installMs = Math.round(performance.now() - t);
      console.error(`${c.layout} ${c.backend} N=${n}: installed in ${c.installMs} ms`);
    }
    for (let r = 0; r < rounds; r++) {
      for (const c of shuffle(configs)) {
        const client = c.bench.plan.pods.find((p) => p.role === 'client');
        const server = c.bench.plan.pods.find((p) => p.role === 'server');
        const probe = (count) => planClient({ netns: client.netns, target: server.ip, port: SERVER_PORT, mode: 'connect', samples: count, warmup: 0, concurrency: 1, timeoutMs: 2000 });
        await runClient(runner, probe(100));
        const out = await runClient(runner, probe(samples));
        const p50Ns = median(out.samplesNs);
        results.push({ layout: c.layout, backend: c.backend, n, round: r, p50Ns, installMs: c.installMs, errors: out.errors });
        console.error(`round ${r + 1}/${rounds} ${c.layout} ${c.backend} N=${n}: connect p50 ${(p50Ns / 1000).toFixed(1)} µs`);
      }
    }
  }
  for (const c of configs) await reset(c.bench.plan.nodes);
  const rows = [];
  for (const layout of LAYOUTS) {
    for (const b of BACKENDS) {
      const pts = results.filter((x) => x.layout === layout && x.backend === b);
      const { slope, intercept } = fit(pts);
      const perPolicy = traversed[Ns.at(-1)];
      rows.push({ layout, backend: b, slopeNsPerPolicy: Math.round(slope), interceptUs: +(intercept / 1000).toFixed(1), rulesPerPolicy: perPolicy, nsPerRule: Math.round(slope / perPolicy) });
    }
  }
  console.log('| layout | iptables backend | connect p50 slope ns/policy | intercept µs | rules walked/policy | ns/rule |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.layout} | ${r.backend} | ${r.slopeNsPerPolicy} | ${r.interceptUs} | ${r.rulesPerPolicy} | ${r.nsPerRule} |`);
  console.log(JSON.stringify({ Ns, samples, rounds, rows, points: results }));
} finally {
  for (const c of configs) await c.bench.down();
}
