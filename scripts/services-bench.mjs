#!/usr/bin/env node
// Connect p50 through each service data plane at a range of Service counts, on the local kernel: per point a fresh
// two-node topology (client on node-0, one backend pod on node-1), the Service set installed through the plane
// (install time recorded), then `--samples` new TCP connections to the probed ClusterIP with the native probe.
// Points are interleaved (every plane at one count before the next count) so a shared machine's drift hits all
// planes alike. No CPU pinning: absolute figures are noisier than `bench run`'s, ratios are what this is for.
//
//   node scripts/services-bench.mjs [--planes kube-proxy-iptables,kube-proxy-nftables,cilium-socket-lb,calico-ctlb]
//        [--counts 0,1000,10000,30000] [--samples 2000] [--position last] [--iptables-backend nft]
//
// As root, after `npm run build`. Writes results/services-bench-<time>.json and prints a markdown table.
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
const { ExecRunner, fullArgv } = await import(dist('exec/runner.js'));
const { newRunId } = await import(dist('identity/run-id.js'));
const { planTopology, planTopologyDown, planTopologyUp } = await import(dist('backends/local/topology.js'));
const { serviceDataPlane } = await import(dist('backends/local/service-planes.js'));
const { generateServiceSet } = await import(dist('services/generate.js'));
const { probedService } = await import(dist('services/types.js'));
const { parseClientOutput, planClient, planServer, startServer } = await import(dist('probe/native.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const planes = opt('planes', 'kube-proxy-iptables,kube-proxy-nftables,cilium-socket-lb,calico-ctlb').split(',');
const counts = opt('counts', '0,1000,10000,30000').split(',').map(Number);
const samples = Number(opt('samples', '2000'));
const position = opt('position', 'last');
const iptablesBackend = opt('iptables-backend', 'nft');

async function point(planeName, n) {
  const runner = new ExecRunner();
  const topology = planTopology({
    runId: newRunId(),
    attachment: 'routed',
    placement: 'cross-node',
    hostIfPrefix: 'veth',
    pods: [
      { name: 'client', namespace: 'bench-client', labels: { app: 'bench-client' }, role: 'client', node: 0 },
      { name: 'server-0', namespace: 'bench-server', labels: { app: 'bench-server' }, role: 'server', node: 1 },
    ],
  });
  const [client, backend] = topology.pods;
  const plane = serviceDataPlane(planeName).create({ runner, cleanupRunner: runner, topology, settings: { iptablesBackend, clusterCidr: '10.244.0.0/16' } });
  let server;
  try {
    for (const c of planTopologyUp(topology)) await runner.run(c);
    const set = generateServiceSet({
      services: n,
      endpointsPerService: 1,
      position,
      seed: 1,
      probed: { namespace: 'bench-server', name: 'bench-server', selector: { app: 'bench-server' }, port: { name: '', protocol: 'TCP', port: 80, targetPort: 8080 }, backends: [{ ip: backend.ip }] },
    });
    const install = await plane.install(set);
    server = await startServer(planServer({ netns: backend.netns, ports: [8080] }));
    const spec = plane.wrapClient(planClient({ netns: client.netns, target: probedService(set).clusterIP, port: 80, mode: 'connect', samples, warmup: Math.ceil(samples / 10), concurrency: 1, timeoutMs: 2000 }), client);
    const [file, ...rest] = fullArgv(spec);
    const r = await execa(file, rest, { reject: false, timeout: 600_000, maxBuffer: 256 << 20 });
    if (r.exitCode !== 0) throw new Error(`probe failed: ${r.stderr}`);
    const out = parseClientOutput(String(r.stdout));
    const s = [...out.samplesNs].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] / 1000;
    return { plane: planeName, services: n, installMs: install.installMs, nodeMs: install.nodeMs, p50: q(0.5), p90: q(0.9), p99: q(0.99), errors: out.errors, state: install.state };
  } finally {
    await server?.stop();
    await plane.teardown();
    for (const c of planTopologyDown(topology)) await runner.run(c);
  }
}

const rows = [];
const started = new Date();
for (const n of counts) {
  for (const p of planes) {
    process.stderr.write(`# ${p} @ ${n} services\n`);
    const row = await point(p, n);
    process.stderr.write(`  install ${row.installMs} ms, connect p50 ${row.p50.toFixed(1)} µs\n`);
    rows.push(row);
  }
}
mkdirSync(join(root, 'results'), { recursive: true });
const file = join(root, 'results', `services-bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ started, samples, position, iptablesBackend, load: (await import('node:os')).loadavg(), rows }, null, 2));
console.log(`| plane | services | install s | connect p50 µs | p90 µs | p99 µs |\n|---|---|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.plane} | ${r.services} | ${(r.installMs / 1000).toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.p99.toFixed(1)} |`);
console.log(`\n${file}`);
