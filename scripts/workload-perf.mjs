#!/usr/bin/env node
// How long the pure workload steps take on a workload file (default: scenarios/workloads/large.yaml):
// generation, import of the same cluster as a kubectl List (JSON and YAML), policy resolution, flow choice, the
// probe-flow sample with Calico's and Cilium's expectations and their diff, findings, anonymization.
// Each step runs `reps` times in one process: the first (cold: modules and JIT warming) and the median of the
// rest are printed, in ms (performance.now(), microsecond resolution).
//   node scripts/workload-perf.mjs [shape.yaml] [reps]      (after npm run build)
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

const file = process.argv[2] ?? 'scenarios/workloads/large.yaml';
const reps = Number(process.argv[3] ?? 5);
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
