#!/usr/bin/env node
// How long the pure workload steps take on a workload file (default: scenarios/workloads/large.yaml):
// generation, import of the same cluster as a kubectl List (JSON and YAML), policy resolution, flow choice, the
// probe-flow sample with Calico's and Cilium's expectations and their diff, findings, anonymization.
// Each step runs `reps` times in one process: the first (cold: modules and JIT warming) and the median of the
// rest are printed, in ms (performance.now(), microsecond resolution).
//   node scripts/workload-perf.mjs [shape.yaml] [reps]      (after npm run build)
// With --up CNI (root, the local backend): instead, the replay's set-up as `bench verify --workload FILE --cni CNI
// --max-flows N` does it (N default 500, seed 1): bring-up with its progress, install, teardown, each in s
// (wall clock, ms resolution), with this process's peak RSS (getrusage maxrss, kB resolution) and the summed RSS of
// every process in the run's namespaces (the endpoints' servers, /proc Pss, kB) once they all run.
//   node scripts/workload-perf.mjs [shape.yaml] --up calico [--max-flows 500]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadShape } from '../dist/workload/shape.js';
import { generateWorkload } from '../dist/workload/generate-shape.js';
import { workloadToList } from '../dist/workload/list.js';
import { loadSnapshot } from '../dist/workload/snapshot.js';
import { resolvePolicySet } from '../dist/policy/resolve.js';
import { chooseFlows, FlowSpace } from '../dist/workload/choose-flows.js';
import { probeFlows } from '../dist/workload/flows.js';
import { diffExpectations, expectFlows } from '../dist/workload/semantics.js';
import { findPolicyProblems } from '../dist/workload/findings.js';
import { anonymizeList } from '../dist/workload/anonymize.js';

const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args.splice(i, 2)[1];
};
const upCni = flag('--up');
const maxFlows = Number(flag('--max-flows') ?? 500);
const file = args[0] ?? 'scenarios/workloads/large.yaml';
const reps = Number(args[1] ?? 5);
if (upCni) {
  await measureSetUp(file, upCni, maxFlows);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'cb-workload-perf-'));
try {
  const w = generateWorkload(loadShape(file));
  const list = workloadToList(w);
  writeFileSync(join(dir, 'w.json'), JSON.stringify(list, null, 2));
  writeFileSync(join(dir, 'w.yaml'), stringify(list, { indentSeq: false }));
  const sample = probeFlows(w, { max: 2000, seed: 1 }).flows;
  console.log(`${file}: ${w.inventory.pods.length} pods, ${w.policies.length} policies, ${w.inventory.namespaces.length} namespaces, ${w.nodes.length} nodes`);
  const steps = [
    ['generate (parse the shape + generate)', () => generateWorkload(loadShape(file))],
    ['import the kubectl List, JSON', () => loadSnapshot(join(dir, 'w.json'))],
    ['import the kubectl List, YAML', () => loadSnapshot(join(dir, 'w.yaml'))],
    ['resolve the policy set (resolvePolicySet)', () => resolvePolicySet(w.inventory, w.policies)],
    ['choose flows (FlowSpace + chooseFlows, K=3)', () => chooseFlows(new FlowSpace(w), { random: 3, seed: 1 })],
    ['probe flows: seeded sample of 2000', () => probeFlows(w, { max: 2000, seed: 1 })],
    ['expectations: calico + cilium on the 2000', () => [expectFlows(w, 'calico', sample), expectFlows(w, 'cilium', sample)]],
    ['diff calico vs cilium on the 2000', () => diffExpectations(w, 'calico', 'cilium', sample)],
    ['findings (with flannel named)', () => findPolicyProblems(w, { cnis: ['flannel'] })],
    ['anonymize the List', () => anonymizeList(list, 'perf-salt-123')],
  ];
  for (const [name, fn] of steps) {
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      fn();
      times.push(performance.now() - t);
    }
    const rest = times.slice(1).sort((a, b) => a - b);
    const median = rest.length ? rest[Math.floor(rest.length / 2)] : times[0];
    console.log(`  ${name.padEnd(46)} first ${times[0].toFixed(1).padStart(7)} ms   median of the rest ${median.toFixed(1).padStart(7)} ms`);
  }
  const findings = findPolicyProblems(w, { cnis: ['flannel'] });
  const kinds = {};
  for (const f of findings) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
  console.log(`  findings: ${JSON.stringify(kinds)}; calico vs cilium differ on ${diffExpectations(w, 'calico', 'cilium', sample).length} of the 2000 sampled flows`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** The replay's set-up on the local backend, as verify does it, timed; RSS of this process and of the run's servers. */
async function measureSetUp(file, cni, max) {
  const { readdirSync, readFileSync, readlinkSync, statSync } = await import('node:fs');
  const { loadWorkload } = await import('../dist/workload/load.js');
  const { replayProbeFlows, replayWorkload } = await import('../dist/workload/replay.js');
  const { LocalBackend } = await import('../dist/backends/local/backend.js');
  const { runConfigSchema } = await import('../dist/config/schema.js');
  const { newRunId } = await import('../dist/identity/run-id.js');
  const t0 = performance.now();
  const secs = (t) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
  const cluster = loadWorkload(file);
  const sample = replayProbeFlows(cluster, { max, seed: 1 });
  const runId = newRunId();
  const plane = new LocalBackend({ config: runConfigSchema.parse({ cni, backend: 'local' }), runId, shape: 'cluster', progress: { step: (m) => console.log(`[${secs(t0).padStart(8)}] ${m}`) } });
  const workload = plane.fit(replayWorkload(cluster, sample.flows));
  const endpoints = workload.pods.filter((p) => p.presence === 'endpoint').length;
  console.log(`${file} on ${cni}: run ${runId}, ${workload.nodes} nodes, ${endpoints} endpoint pods, ${workload.pods.length - endpoints} address-only, ${sample.flows.length} flows (prepared in ${secs(t0)})`);
  let up = 0;
  let install = 0;
  let serversKb = 0;
  let processes = 0;
  try {
    let t = performance.now();
    await plane.up(workload);
    up = performance.now() - t;
    // Processes in the run's namespaces: /proc/<pid>/ns/net names the inode of a /run/netns file of the run.
    const inodes = new Set(readdirSync('/run/netns').filter((n) => n.startsWith(`cb-${runId}-`)).map((n) => statSync(`/run/netns/${n}`).ino));
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const ino = Number(/net:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1]);
        if (!inodes.has(ino)) continue;
        const m = /Pss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
        if (m) serversKb += Number(m[1]);
        processes++;
      } catch {
        // gone meanwhile
      }
    }
    t = performance.now();
    await plane.install(workload.policies);
    install = performance.now() - t;
  } finally {
    const t = performance.now();
    await plane.down();
    console.log(`set-up ${(up / 1000).toFixed(1)} s, install ${(install / 1000).toFixed(1)} s, teardown ${secs(t)} (wall clock; load average at the end ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
    console.log(`peak RSS of this process ${Math.round(process.resourceUsage().maxRSS / 1024)} MB; ${processes} processes in the run's namespaces ${Math.round(serversKb / 1024)} MB (proportional set size summed, shared pages split)`);
  }
}
